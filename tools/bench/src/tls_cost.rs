//! What TLS costs at the front door (issue 18): the same load through the
//! gateway and through nginx, each in plaintext and with TLS on its public
//! port (TLS 1.3, the same ECDSA P-256 certificate of a CA made for the
//! run), in alternated rounds. CPU per call is read from `/proc` as in the
//! front-door comparison; upstream hops stay plaintext, so the difference
//! is the public port's TLS alone.

use std::path::Path;

use folio_testkit::{TestCa, probe::SpawnedBinary};
use folio_tls::{ClientTls, ClientTlsSettings};

use crate::{
    cpu,
    front_door::{Bench, Nginx, ROUNDS, Rpc, Target},
    load::{Run, wait_until_ready},
    processes::gateway_env,
};

/// Starts a TLS gateway and TLS nginx beside the plaintext ones and prints
/// CPU per call and throughput of each pair.
pub async fn run(
    bench: &Bench,
    gateway: &SpawnedBinary,
    gateway_binary: &str,
    dir: &Path,
    auth_addr: &str,
    ledger_addr: &str,
    nginx_binary: &str,
) -> anyhow::Result<()> {
    let ca = TestCa::new("bench");
    let served = ca.issue_for(None, &["localhost", "127.0.0.1"], "front-door");
    let (cert, key) = (served.cert.display().to_string(), served.key.display().to_string());
    let mut env: Vec<(&str, &str)> = gateway_env(auth_addr, ledger_addr).to_vec();
    env.extend([("FOLIO__SERVER__TLS_CERT_FILE", cert.as_str()), ("FOLIO__SERVER__TLS_KEY_FILE", key.as_str())]);
    let gateway_tls = SpawnedBinary::start(gateway_binary, dir, &env).await;
    let nginx = Nginx::start(nginx_binary, ledger_addr, None)?;
    let nginx_tls = Nginx::start(nginx_binary, ledger_addr, Some((&served.cert, &served.key)))?;
    let settings = ClientTlsSettings { tls_ca_file: Some(ca.ca_file()), ..Default::default() };
    let tls = ClientTls::from_settings(&settings)?.ok_or_else(|| anyhow::anyhow!("no client TLS"))?;
    let redis = cpu::find_process("redis-server", ":6379");
    let gateway_pids =
        |process: &SpawnedBinary| -> Vec<u32> { process.child.id().into_iter().chain(redis.iter().copied()).collect() };
    let targets = [
        Target { channels: channels(&gateway.grpc_addr.to_string(), None)?, pids: gateway_pids(gateway) },
        Target {
            channels: channels(&gateway_tls.grpc_addr.to_string(), Some(&tls))?,
            pids: gateway_pids(&gateway_tls),
        },
        Target { channels: channels(&nginx.addr, None)?, pids: cpu::with_children(nginx.pid()) },
        Target { channels: channels(&nginx_tls.addr, Some(&tls))?, pids: cpu::with_children(nginx_tls.pid()) },
    ];
    for target in &targets {
        wait_until_ready(&target.channels[0], &bench.token).await?;
    }
    println!("# tls cost: gateway and nginx, plaintext and TLS 1.3 (ECDSA P-256) on the public port; {ROUNDS} rounds");
    for rpc in [Rpc::CreateTransfer, Rpc::GetBalance] {
        let runs = alternated(bench, &targets, rpc).await?;
        let per_call = |run: &Run| run.cpu.service_us_per(run.done as f64);
        let added = |plain: &Run, tls: &Run| {
            let base = per_call(plain);
            if base > 0.0 { (per_call(tls) - base) / base * 100.0 } else { 0.0 }
        };
        let [gw, gw_tls, ng, ng_tls] = &runs;
        println!(
            "front_door_tls {:<14} proxy_cpu_us_per_call gateway plain={:.0} tls={:.0} (+{:.0}%) nginx plain={:.0} \
             tls={:.0} (+{:.0}%); calls/s gateway plain={:.0} tls={:.0} nginx plain={:.0} tls={:.0}; failures={}/{}/{}/{}",
            rpc.name(),
            per_call(gw),
            per_call(gw_tls),
            added(gw, gw_tls),
            per_call(ng),
            per_call(ng_tls),
            added(ng, ng_tls),
            gw.transfers_per_sec,
            gw_tls.transfers_per_sec,
            ng.transfers_per_sec,
            ng_tls.transfers_per_sec,
            gw.failures,
            gw_tls.failures,
            ng.failures,
            ng_tls.failures,
        );
    }
    Ok(())
}

/// Eight channels to `addr`, over TLS when `tls` is given.
fn channels(addr: &str, tls: Option<&ClientTls>) -> anyhow::Result<Vec<tonic::transport::Channel>> {
    (0..8).map(|_| folio_proto::client::lazy_channel_with(addr, tls)).collect()
}

/// `rpc` at `bench.callers` against each target in turn, `ROUNDS` times.
pub async fn alternated<const N: usize>(bench: &Bench, targets: &[Target; N], rpc: Rpc) -> anyhow::Result<[Run; N]> {
    let mut runs: [Run; N] = std::array::from_fn(|_| Run::empty());
    let slice = bench.phase / ROUNDS;
    for _ in 0..ROUNDS {
        for (run, target) in runs.iter_mut().zip(targets) {
            let taken = std::mem::replace(run, Run::empty());
            *run = taken.merge(rpc.drive(bench, target, bench.callers, slice).await?);
        }
    }
    Ok(runs)
}
