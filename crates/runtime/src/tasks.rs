//! Background work on a timer that stops with the service.

use std::{future::Future, time::Duration};

use tokio_util::sync::CancellationToken;

/// Runs `pass` every `interval` (a slow pass delays the next, never overlaps
/// it) until `shutdown`.
pub fn spawn_every<F, Fut>(interval: Duration, shutdown: CancellationToken, mut pass: F) -> tokio::task::JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut every = tokio::time::interval(interval);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = every.tick() => pass().await,
            }
        }
    })
}
