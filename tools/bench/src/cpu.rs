//! Where the CPU of a phase went: the ledger process, every PostgreSQL
//! process, and this load generator, read from `/proc` (Linux only; zeros
//! elsewhere). On a small machine the three share the cores, so CPU per
//! transfer says more about what to optimise than throughput alone.

use std::fs;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds used so far by the three parties.
#[derive(Clone, Copy, Default)]
pub struct CpuTimes {
    service: f64,
    postgres: f64,
    bench: f64,
}

impl CpuTimes {
    /// Reads the counters now; `service` are the processes under test
    /// (a proxy and the Redis server it consults count as one party).
    pub fn now(service: &[u32]) -> Self {
        Self {
            service: service.iter().map(|pid| process_seconds(*pid)).sum(),
            postgres: postgres_seconds(),
            bench: process_seconds(std::process::id()),
        }
    }

    /// The CPU used from `earlier` to `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            service: self.service - earlier.service,
            postgres: self.postgres - earlier.postgres,
            bench: self.bench - earlier.bench,
        }
    }

    /// Two amounts of CPU used, added.
    pub fn plus(&self, other: &Self) -> Self {
        Self {
            service: self.service + other.service,
            postgres: self.postgres + other.postgres,
            bench: self.bench + other.bench,
        }
    }

    /// The service's CPU, in microseconds per unit of work.
    pub fn service_us_per(&self, units: f64) -> f64 {
        if units > 0.0 { self.service * 1e6 / units } else { 0.0 }
    }

    /// This amount of CPU, in microseconds per unit of work.
    pub fn per_unit_us(&self, units: f64) -> String {
        let per = |seconds: f64| if units > 0.0 { seconds * 1e6 / units } else { 0.0 };
        format!(
            "cpu_us_per_op service={:.0} postgres={:.0} bench={:.0}",
            per(self.service),
            per(self.postgres),
            per(self.bench)
        )
    }
}

/// utime + stime of one process, in seconds (0 if it cannot be read).
pub fn process_seconds(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    parse_stat(&stat).map_or(0.0, |(_, seconds)| seconds)
}

/// The command name and CPU seconds of a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(&str, f64)> {
    // The name is in parentheses and may contain spaces; fields follow the last ')'.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?;
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) / TICKS_PER_SEC))
}

/// The CPU seconds of every live process named `postgres`.
fn postgres_seconds() -> f64 {
    processes()
        .filter_map(|(_, stat)| parse_stat(&stat).filter(|(name, _)| *name == "postgres").map(|(_, seconds)| seconds))
        .sum()
}

/// A `/proc/<pid>/status` size field (`VmRSS`, `VmHWM`, ...) in MiB; 0 if
/// it cannot be read.
pub fn status_mib(pid: u32, field: &str) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Every live process: its pid and its `/proc/<pid>/stat` line.
fn processes() -> impl Iterator<Item = (u32, String)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)))
}

/// `parent` and its children (nginx's master and its workers).
pub fn with_children(parent: u32) -> Vec<u32> {
    let mut pids = vec![parent];
    pids.extend(processes().filter(|(_, stat)| parent_of(stat) == Some(parent)).map(|(pid, _)| pid));
    pids
}

/// The parent pid in a `/proc/<pid>/stat` line (field 4).
fn parent_of(stat: &str) -> Option<u32> {
    let close = stat.rfind(')')?;
    stat.get(close + 2..)?.split_whitespace().nth(1)?.parse().ok()
}

/// Processes named `name` whose command line contains `needle` (the Redis
/// server the gateway uses, told apart from test servers by its port).
pub fn find_process(name: &str, needle: &str) -> Vec<u32> {
    processes()
        .filter(|(_, stat)| parse_stat(stat).is_some_and(|(n, _)| n == name))
        .filter(|(pid, _)| {
            fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(needle))
        })
        .map(|(pid, _)| pid)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parentheses() {
        let line = "42 (post gres) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 100 0 0";
        let (name, seconds) = parse_stat(line).unwrap();
        assert_eq!(name, "post gres");
        assert!((seconds - 3.0).abs() < 1e-9, "{seconds}");
    }
}
