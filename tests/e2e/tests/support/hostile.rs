//! A hostile caller beside a well-behaved one (DESIGN §5a): the well-behaved
//! customer's calls are counted, and every answer anyone gets is checked
//! for the codes no caller may ever see.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use folio_proto::{account::GetAccountRequest, ledger::AccountKind};
use tokio::task::JoinHandle;
use tonic::Code;

use super::{Stack, bearer, posted};

/// What the well-behaved customer saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Calls answered OK.
    pub ok: usize,
    /// Every other answer, as `CODE REASON`.
    pub failed: Vec<String>,
}

impl Tally {
    /// Prints how many well-behaved calls failed.
    pub fn report(&self, scenario: &str) {
        eprintln!("{scenario}: {} of {} well-behaved calls failed", self.failed.len(), self.ok + self.failed.len());
    }

    /// Panics with the collateral failures, if any.
    pub fn assert_no_collateral(&self, scenario: &str) {
        let total = self.ok + self.failed.len();
        self.report(scenario);
        assert!(total > 0, "{scenario}: the well-behaved customer made no call");
        assert!(self.failed.is_empty(), "{scenario}: {} of {total} failed: {:?}", self.failed.len(), self.failed);
    }
}

/// A code no caller may ever be answered with.
pub fn assert_never_internal(status: &tonic::Status, what: &str) {
    assert!(
        !matches!(status.code(), Code::Internal | Code::Unknown),
        "{what} answered {:?}: {}",
        status.code(),
        status.message()
    );
}

/// `CODE REASON` of a status.
pub fn describe(status: &tonic::Status) -> String {
    format!("{:?} {}", status.code(), folio_errors::reason_of(status).unwrap_or_default())
}

/// The well-behaved customer: an account funded by the operator, then
/// transfers of 1 to a second account and reads of the first, from
/// `workers` clients, until `stop` is set.
pub struct Bystander {
    pub token: String,
    pub account: String,
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<Tally>>,
}

impl Bystander {
    /// Starts the traffic, as fast as it goes.
    pub async fn start(stack: &Stack, operator: &str, workers: usize) -> Self {
        Self::start_paced(stack, operator, workers, std::time::Duration::ZERO).await
    }

    /// Starts the traffic, each worker waiting `pace` between calls.
    pub async fn start_paced(stack: &Stack, operator: &str, workers: usize, pace: std::time::Duration) -> Self {
        let (_, token) = stack.customer().await;
        let account = stack.funded(&token, operator, 1_000_000).await;
        let other = stack.open(&token, AccountKind::Customer).await;
        let stop = Arc::new(AtomicBool::new(false));
        let workers = (0..workers)
            .map(|worker| {
                let (mut ledger, mut accounts) = (stack.ledger(), stack.accounts());
                let (token, account, other, stop) = (token.clone(), account.clone(), other.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut round = 0usize;
                    // At least a few calls each, however soon the stop comes.
                    while round < 5 || !stop.load(Ordering::Relaxed) {
                        round += 1;
                        tokio::time::sleep(pace).await;
                        let result = if (round + worker).is_multiple_of(2) {
                            ledger.create_transfer(bearer(posted(&account, &other, 1), &token)).await.map(|_| ())
                        } else {
                            let request = GetAccountRequest { account_id: account.clone() };
                            accounts.get_account(bearer(request, &token)).await.map(|_| ())
                        };
                        match result {
                            Ok(()) => tally.ok += 1,
                            // Every failure is collateral, INTERNAL included.
                            Err(status) => tally.failed.push(describe(&status)),
                        }
                    }
                    tally
                })
            })
            .collect();
        Self { token, account, stop, workers }
    }

    /// Stops the traffic and adds up what it saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for worker in self.workers {
            let tally = worker.await.unwrap();
            total.ok += tally.ok;
            total.failed.extend(tally.failed);
        }
        total
    }
}
