//! Unit tests of the rules of DESIGN §3, on a batch in memory: each test
//! names the rule it checks and fails if the rule is broken.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on broken fixtures

mod authority;
mod holds;
mod journal;
mod movement;

use std::collections::BTreeMap;

use folio_errors::{FolioError, Reason};
use folio_tokens::{Principal, PrincipalKind};

use super::{
    Account, AccountKind, AccountStatus, Actor, BatchState, Kind, Movement, NewTransfer, Op, Request, Resolution,
    Resolve, Totals, Transfer,
};

/// The batch clock (µs).
const NOW: i64 = 1_700_000_000_000_000;

/// A batch holding `accounts`, USD and EUR registered.
fn batch(accounts: &[Account]) -> BatchState {
    let mut state = BatchState::default();
    state.now = NOW;
    state.assets = ["USD", "EUR"].into_iter().map(str::to_owned).collect();
    state.accounts = accounts.iter().map(|a| (a.id.clone(), a.clone())).collect();
    state
}

pub(crate) fn account(id: &str, owner: &str, kind: AccountKind) -> Account {
    Account {
        id: id.to_owned(),
        owner_id: owner.to_owned(),
        asset_code: "USD".to_owned(),
        kind,
        status: AccountStatus::Active,
        overdraft_limit: 0,
        totals: Totals::default(),
        entry_count: 0,
        last_entry_at: 0,
    }
}

/// Alice's and Bob's customer accounts and the bank's system account.
fn book() -> BatchState {
    batch(&[
        account("alice", "u-alice", AccountKind::Customer),
        account("bob", "u-bob", AccountKind::Customer),
        account("bank", "u-bank", AccountKind::System),
    ])
}

pub(crate) fn request(id: &str, debit: &str, credit: &str, amount: i64, kind: Kind) -> Movement {
    Movement {
        request: client_request(id, format!("{id}|{debit}|{credit}|{amount}|{kind:?}")),
        debit_account_id: debit.to_owned(),
        credit_account_id: credit.to_owned(),
        amount,
        asset_code: "USD".to_owned(),
        hold_seconds: (kind == Kind::Pending).then_some(60),
    }
}

/// Posts `amount` of `hold` (0: all of it), or voids it; accounts and asset
/// left out (they are the hold's).
pub(crate) fn resolve(id: &str, hold: &str, amount: i64, kind: Kind) -> Resolution {
    Resolution {
        request: client_request(id, format!("{id}|{hold}|{amount}|{kind:?}")),
        pending_id: hold.to_owned(),
        action: match kind {
            Kind::PostPending => Resolve::Post((amount > 0).then_some(amount)),
            _ => Resolve::Void,
        },
        debit_account_id: None,
        credit_account_id: None,
        asset_code: None,
    }
}

fn client_request(id: &str, request_hash: String) -> Request {
    Request { id: id.to_owned(), description: String::new(), metadata: BTreeMap::new(), request_hash }
}

fn user(subject: &str) -> Actor {
    principal(subject, PrincipalKind::User { session_id: "s".to_owned() }, &["customer"], &[])
}

pub(crate) fn operator() -> Actor {
    principal("u-operator", PrincipalKind::User { session_id: "s".to_owned() }, &["operator"], &[])
}

fn service(scope: &str) -> Actor {
    principal("svc", PrincipalKind::Service, &[], &[scope])
}

fn principal(subject: &str, kind: PrincipalKind, roles: &[&str], granted: &[&str]) -> Actor {
    Actor::from_principal(&Principal {
        subject: subject.to_owned(),
        kind,
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        scopes: granted.iter().map(|s| (*s).to_owned()).collect(),
        token_id: "jti".to_owned(),
        expires_at: i64::MAX,
    })
}

/// Applies a transfer request as `actor`.
fn apply(state: &mut BatchState, request: impl Into<NewTransfer>, actor: &Actor) -> Result<Transfer, FolioError> {
    state.apply(&Op::Transfer(request.into()), actor).map(|t| t.expect("a transfer answers a transfer"))
}

/// Funds `account` with `amount` from the bank.
fn fund(state: &mut BatchState, account: &str, amount: i64) {
    let id = format!("fund-{account}-{}", state.created.len());
    apply(state, request(&id, "bank", account, amount, Kind::Posted), &operator()).unwrap();
}

fn reason<T: std::fmt::Debug>(result: Result<T, FolioError>) -> Reason {
    result.expect_err("the rule should refuse this").reason()
}

fn totals(state: &BatchState, account: &str) -> Totals {
    state.accounts[account].totals
}
