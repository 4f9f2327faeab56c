//! The account service's use cases: each loads accounts from the store,
//! lets the domain decide, asks the ledger where it is authoritative, and
//! records the outcome. The outbox worker and the repair pass finish what a
//! ledger that did not answer left undone.

mod create;
mod ledger_change;
pub mod ledger_client;
mod lifecycle;
pub mod outbox;

use std::time::Instant;

use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{ReadAfter, Reads};
use folio_storage::paging::PageTokens;
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction};

use crate::domain::Account;
use crate::store;
use ledger_client::Ledger;

/// Everything the use cases need.
#[derive(Clone)]
pub struct AccountCore {
    db: DatabaseConnection,
    /// GetAccount and ListAccounts, on a replica where they may be (DESIGN §6).
    reads: Reads,
    ledger: Ledger,
    page_tokens: PageTokens,
}

fn not_found() -> Failure {
    FolioError::new(Reason::AccountNotFound, "no such account").into()
}

impl AccountCore {
    /// Use cases over `db` (reads through `reads`), calling `ledger`.
    pub fn new(db: DatabaseConnection, reads: Reads, ledger: Ledger, page_tokens: PageTokens) -> Self {
        Self { db, reads, ledger, page_tokens }
    }

    /// The position a write that finished at `committed` answers with
    /// (`x-folio-read-after`): later than this service's commit and than
    /// the ledger's, which came before it on the same primary.
    pub async fn position_after(&self, committed: Instant) -> Result<Option<ReadAfter>, Failure> {
        Ok(self.reads.position_after(committed).await?)
    }

    async fn find(&self, db: &impl ConnectionTrait, id: &str) -> Result<Account, Failure> {
        store::accounts::find(db, id).await?.ok_or_else(not_found)
    }

    async fn lock(&self, tx: &DatabaseTransaction, id: &str) -> Result<Account, Failure> {
        store::accounts::lock(tx, id).await?.ok_or_else(not_found)
    }
}
