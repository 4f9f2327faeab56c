//! Opening and changing accounts, and registering assets.

use folio_errors::{Failure, Reason};

use super::Store;
use crate::domain::{AccountChange, AccountKind, AccountStatus, Kind, Op, tests::request};
use crate::store::{accounts, assets};

fn reason<T>(result: Result<T, Failure>) -> Option<Reason> {
    result.err().and_then(|failure| failure.reason())
}

pub async fn opening_is_idempotent_and_refuses_an_id_with_other_fields(store: Store) {
    store.asset("USD").await;
    store.asset("EUR").await;
    let (first, version) =
        accounts::open_account(&store.db, "a1", "u1", "USD", AccountKind::Customer, 50).await.unwrap();
    assert_eq!((first.status, first.overdraft_limit, version, first.entry_count), (AccountStatus::Active, 50, 0, 0));
    let (again, _) = accounts::open_account(&store.db, "a1", "u1", "USD", AccountKind::Customer, 50).await.unwrap();
    assert_eq!(again, first, "opening again answers the account as it is");
    for (owner, asset, kind) in
        [("u2", "USD", AccountKind::Customer), ("u1", "EUR", AccountKind::Customer), ("u1", "USD", AccountKind::System)]
    {
        let other = accounts::open_account(&store.db, "a1", owner, asset, kind, 50).await;
        assert_eq!(reason(other), Some(Reason::AccountExists), "{owner} {asset} {kind:?}");
    }
    let (system, _) = accounts::open_account(&store.db, "s1", "u1", "USD", AccountKind::System, 50).await.unwrap();
    assert_eq!(system.overdraft_limit, 0, "a system account has no overdraft limit");
}

pub async fn an_account_needs_a_registered_asset(store: Store) {
    let opened = accounts::open_account(&store.db, "a1", "u1", "XAU", AccountKind::Customer, 0).await;
    assert_eq!(reason(opened), Some(Reason::AssetNotFound));
    assert_eq!(reason(accounts::account(&store.db, "a1").await), Some(Reason::AccountNotFound));
}

pub async fn a_change_applies_only_past_the_last_version(store: Store) {
    store.asset("USD").await;
    store.account("a1", AccountKind::Customer).await;
    let frozen = AccountChange::Status(AccountStatus::Frozen);
    let (account, version, applied) = accounts::change_account(&store.db, "a1", frozen, 1).await.unwrap();
    assert_eq!((account.status, version, applied), (AccountStatus::Frozen, 1, true));
    let active = AccountChange::Status(AccountStatus::Active);
    let (account, version, applied) = accounts::change_account(&store.db, "a1", active, 1).await.unwrap();
    assert_eq!((account.status, version, applied), (AccountStatus::Frozen, 1, false), "not past version 1");
    let limit = AccountChange::OverdraftLimit(700);
    let (account, version, applied) = accounts::change_account(&store.db, "a1", limit, 5).await.unwrap();
    assert_eq!((account.overdraft_limit, account.status, version, applied), (700, AccountStatus::Frozen, 5, true));
    assert_eq!(accounts::account(&store.db, "a1").await.unwrap().1, 5, "the version is stored");
    let missing = accounts::change_account(&store.db, "nope", limit, 1).await;
    assert_eq!(reason(missing), Some(Reason::AccountNotFound));
}

pub async fn closing_needs_zero_balances_and_a_closed_account_changes_no_more(store: Store) {
    store.asset("USD").await;
    store.account("bank", AccountKind::System).await;
    store.account("a1", AccountKind::Customer).await;
    store.commit(vec![Op::Transfer(request("t1", "bank", "a1", 10, Kind::Posted).into())]).await;
    let close = AccountChange::Status(AccountStatus::Closed);
    assert_eq!(reason(accounts::change_account(&store.db, "a1", close, 1).await), Some(Reason::BalanceNotZero));
    store.commit(vec![Op::Transfer(request("t2", "a1", "bank", 10, Kind::Posted).into())]).await;
    let (account, _, applied) = accounts::change_account(&store.db, "a1", close, 2).await.unwrap();
    assert_eq!((account.status, applied), (AccountStatus::Closed, true));
    let reopen = AccountChange::Status(AccountStatus::Active);
    assert_eq!(reason(accounts::change_account(&store.db, "a1", reopen, 3).await), Some(Reason::AccountClosed));
}

pub async fn assets_page_by_code_and_a_taken_code_is_refused(store: Store) {
    for code in ["USD", "EUR", "GBP"] {
        store.asset(code).await;
    }
    assert_eq!(reason(assets::create_asset(&store.db, "EUR", 2, "again").await), Some(Reason::AssetExists));
    let first = assets::list_assets(&store.db, "", 2).await.unwrap();
    assert_eq!(first.iter().map(|a| a.code.as_str()).collect::<Vec<_>>(), ["EUR", "GBP"]);
    let rest = assets::list_assets(&store.db, "GBP", 2).await.unwrap();
    assert_eq!(rest.iter().map(|a| (a.code.as_str(), a.scale)).collect::<Vec<_>>(), [("USD", 2)]);
}
