//! New transfers: idempotency, the accounts' checks, the balance limit.

use super::*;

#[test]
fn a_posted_transfer_moves_money_and_writes_one_entry_per_side() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let transfer = apply(&mut state, request("t1", "alice", "bob", 30, Kind::Posted), &user("u-alice")).unwrap();
    assert_eq!((transfer.amount, transfer.initiated_by.as_str(), transfer.created_at), (30, "u-alice", NOW));
    assert_eq!(totals(&state, "alice").posted(), Some(70));
    assert_eq!(totals(&state, "bob").posted(), Some(30));
    let entries: Vec<_> = state.entries.iter().filter(|e| e.transfer_id == "t1").collect();
    assert_eq!(entries.len(), 2, "one entry per side");
    assert_eq!(entries[0].totals, totals(&state, "alice"), "an entry carries the account's totals after it");
}

#[test]
fn a_known_id_returns_the_original_even_after_the_account_froze() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let first = request("t1", "alice", "bob", 30, Kind::Posted);
    let original = apply(&mut state, first.clone(), &user("u-alice")).unwrap();
    state.accounts.get_mut("alice").unwrap().status = AccountStatus::Frozen;
    let repeat = apply(&mut state, first.clone(), &user("u-alice")).unwrap();
    assert_eq!(repeat, original);
    assert_eq!(totals(&state, "alice").posted(), Some(70), "a repeat moves nothing");
    let mut changed = first;
    changed.amount = 31;
    changed.request.request_hash.push('*');
    assert_eq!(reason(apply(&mut state, changed, &user("u-alice"))), Reason::TransferIdReused);
}

#[test]
fn authorization_comes_before_idempotency() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let first = request("t1", "alice", "bob", 30, Kind::Posted);
    apply(&mut state, first.clone(), &user("u-alice")).unwrap();
    // Someone else replaying Alice's id learns nothing about her transfer.
    assert_eq!(reason(apply(&mut state, first, &user("u-bob"))), Reason::NotAccountOwner);
}

#[test]
fn a_rejected_transfer_leaves_no_record_and_its_id_may_be_used_again() {
    let mut state = book();
    let too_much = request("t1", "alice", "bob", 30, Kind::Posted);
    assert_eq!(reason(apply(&mut state, too_much, &user("u-alice"))), Reason::InsufficientFunds);
    assert!(state.created.iter().all(|t| t.id != "t1") && !state.transfers.contains_key("t1"));
    fund(&mut state, "alice", 100);
    let other_fields = request("t1", "alice", "bob", 10, Kind::Posted);
    assert_eq!(apply(&mut state, other_fields, &user("u-alice")).unwrap().amount, 10);
}

#[test]
fn both_accounts_must_exist_be_active_and_share_the_asset() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let alice = user("u-alice");
    let mut euro = account("euro", "u-bob", AccountKind::Customer);
    euro.asset_code = "EUR".to_owned();
    state.accounts.insert("euro".to_owned(), euro);
    let to = |id: &str, credit: &str| request(id, "alice", credit, 1, Kind::Posted);
    assert_eq!(reason(apply(&mut state, to("a", "nobody"), &alice)), Reason::AccountNotFound);
    assert_eq!(reason(apply(&mut state, to("b", "euro"), &alice)), Reason::AssetMismatch);
    let mut gold = to("c", "bob");
    gold.asset_code = "GOLD".to_owned();
    assert_eq!(reason(apply(&mut state, gold, &alice)), Reason::AssetNotFound);
    for (status, expected) in
        [(AccountStatus::Frozen, Reason::AccountFrozen), (AccountStatus::Closed, Reason::AccountClosed)]
    {
        state.accounts.get_mut("bob").unwrap().status = status;
        let refused = apply(&mut state, to(&format!("{status:?}"), "bob"), &alice).unwrap_err();
        assert_eq!(refused.reason(), expected);
        state.accounts.get_mut("bob").unwrap().status = AccountStatus::Active;
        state.accounts.get_mut("alice").unwrap().status = status;
        let refused = apply(&mut state, to(&format!("{status:?}-debit"), "bob"), &alice).unwrap_err();
        assert_eq!(refused.reason(), expected, "a {status:?} debit account");
        state.accounts.get_mut("alice").unwrap().status = AccountStatus::Active;
    }
    assert_eq!(totals(&state, "alice").posted(), Some(100), "nothing refused moved money");
}

#[test]
fn a_customer_never_goes_below_minus_its_overdraft_limit() {
    let mut state = book();
    state.accounts.get_mut("alice").unwrap().overdraft_limit = 50;
    fund(&mut state, "alice", 100);
    let alice = user("u-alice");
    apply(&mut state, request("t1", "alice", "bob", 150, Kind::Posted), &alice).unwrap();
    assert_eq!(totals(&state, "alice").available(), Some(-50));
    assert_eq!(
        reason(apply(&mut state, request("t2", "alice", "bob", 1, Kind::Posted), &alice)),
        Reason::InsufficientFunds
    );
    // System accounts may go anywhere.
    apply(&mut state, request("t3", "bank", "bob", 1_000_000, Kind::Posted), &operator()).unwrap();
}

#[test]
fn held_money_is_not_available() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let alice = user("u-alice");
    apply(&mut state, request("hold", "alice", "bob", 80, Kind::Pending), &alice).unwrap();
    assert_eq!((totals(&state, "alice").posted(), totals(&state, "alice").available()), (Some(100), Some(20)));
    assert_eq!(
        reason(apply(&mut state, request("t2", "alice", "bob", 21, Kind::Posted), &alice)),
        Reason::InsufficientFunds
    );
    apply(&mut state, request("t3", "alice", "bob", 20, Kind::Posted), &alice).unwrap();
}

#[test]
fn an_amount_that_would_overflow_a_total_is_refused() {
    let mut state = book();
    state.accounts.get_mut("bob").unwrap().totals.credits_posted = i64::MAX - 5;
    let refused = apply(&mut state, request("t1", "bank", "bob", 6, Kind::Posted), &operator());
    assert_eq!(reason(refused), Reason::InvalidAmount);
    assert_eq!(totals(&state, "bob").credits_posted, i64::MAX - 5);
}

#[test]
fn a_reversal_swaps_the_sides_once_and_only_of_posted_transfers() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    apply(&mut state, request("t1", "alice", "bob", 30, Kind::Posted), &user("u-alice")).unwrap();
    let reverse = |id: &str, original: &str| Op::Reverse {
        id: id.to_owned(),
        original: original.to_owned(),
        description: String::new(),
        request_hash: format!("{id}|{original}"),
    };
    let reversal = state.apply(&reverse("r1", "t1"), &service("ledger:write")).unwrap().unwrap();
    assert_eq!((reversal.debit_account_id.as_str(), reversal.credit_account_id.as_str()), ("bob", "alice"));
    assert_eq!(reversal.reverses_transfer_id.as_deref(), Some("t1"));
    assert_eq!(totals(&state, "alice").posted(), Some(100));
    assert_eq!(reason(state.apply(&reverse("r2", "t1"), &operator())), Reason::AlreadyReversed);
    apply(&mut state, request("hold", "alice", "bob", 5, Kind::Pending), &user("u-alice")).unwrap();
    assert_eq!(reason(state.apply(&reverse("r3", "hold"), &operator())), Reason::NotReversible);
    assert_eq!(reason(state.apply(&reverse("r4", "missing"), &operator())), Reason::TransferNotFound);
}

#[test]
fn the_two_sides_must_be_different_accounts() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let to_herself = request("t1", "alice", "alice", 10, Kind::Posted);
    assert_eq!(reason(apply(&mut state, to_herself, &operator())), Reason::SameAccount);
    assert_eq!(totals(&state, "alice").posted(), Some(100));
}
