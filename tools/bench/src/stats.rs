//! Latency percentiles.

use std::time::Duration;

/// Sorted latencies of one run.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// From unsorted samples.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    /// Both sets of samples.
    pub fn merge(self, other: Latencies) -> Self {
        let mut all = self.0;
        all.extend(other.0);
        Self::new(all)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p`-th percentile in milliseconds (0 with no samples).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)].as_secs_f64() * 1000.0
    }
}
