//! Holds: resolved once (post, void or expiry), never past their deadline,
//! on their own accounts; a partial post releases the rest.

use super::*;
use crate::domain::Status;

/// Alice holds 80 of her 100 for Bob.
fn held() -> BatchState {
    let mut state = book();
    fund(&mut state, "alice", 100);
    apply(&mut state, request("hold", "alice", "bob", 80, Kind::Pending), &user("u-alice")).unwrap();
    state
}

#[test]
fn a_hold_resolves_once() {
    for (first, second) in [(Kind::PostPending, Kind::VoidPending), (Kind::VoidPending, Kind::PostPending)] {
        let mut state = held();
        apply(&mut state, resolve("r1", "hold", 0, first), &user("u-alice")).unwrap();
        let again = apply(&mut state, resolve("r2", "hold", 0, second), &user("u-alice"));
        assert_eq!(reason(again), Reason::PendingTransferAlreadyResolved, "{second:?} after {first:?}");
    }
    let mut state = held();
    state.now = state.transfers["hold"].expires_at.unwrap();
    state.apply(&Op::Expire("hold".to_owned()), &Actor::system()).unwrap();
    assert_eq!(state.transfers["hold"].status, Status::Expired);
    let late = apply(&mut state, resolve("r1", "hold", 0, Kind::PostPending), &user("u-alice"));
    assert_eq!(reason(late), Reason::PendingTransferExpired);
}

#[test]
fn past_its_deadline_a_hold_is_expired_before_the_sweeper_runs() {
    for kind in [Kind::PostPending, Kind::VoidPending] {
        let mut state = held();
        state.now = state.transfers["hold"].expires_at.unwrap();
        assert_eq!(state.transfers["hold"].status, Status::Pending, "the sweeper has not run");
        let late = apply(&mut state, resolve("r1", "hold", 0, kind), &user("u-alice"));
        assert_eq!(reason(late), Reason::PendingTransferExpired, "{kind:?}");
    }
}

#[test]
fn a_partial_post_releases_the_remainder_and_more_than_held_is_refused() {
    let mut state = held();
    let too_much = apply(&mut state, resolve("r0", "hold", 81, Kind::PostPending), &user("u-alice"));
    assert_eq!(reason(too_much), Reason::AmountExceedsPending);
    let posted = apply(&mut state, resolve("r1", "hold", 30, Kind::PostPending), &user("u-alice")).unwrap();
    assert_eq!((posted.amount, posted.status), (30, Status::Posted));
    assert_eq!(state.transfers["hold"].status, Status::PostedFromPending);
    let alice = totals(&state, "alice");
    assert_eq!((alice.posted(), alice.debits_pending, alice.available()), (Some(70), 0, Some(70)));
    assert_eq!((totals(&state, "bob").posted(), totals(&state, "bob").credits_pending), (Some(30), 0));
}

#[test]
fn posting_zero_posts_the_whole_hold_and_a_void_releases_it() {
    let mut state = held();
    let posted = apply(&mut state, resolve("r1", "hold", 0, Kind::PostPending), &user("u-alice")).unwrap();
    assert_eq!(posted.amount, 80);
    assert_eq!(totals(&state, "bob").posted(), Some(80));
    let mut state = held();
    let voided = apply(&mut state, resolve("r1", "hold", 5, Kind::VoidPending), &user("u-alice")).unwrap();
    assert_eq!((voided.amount, voided.status), (80, Status::Voided), "a void releases the whole hold");
    assert_eq!(totals(&state, "alice").available(), Some(100));
}

#[test]
fn a_resolution_names_the_holds_accounts_and_asset_or_none() {
    let mut state = held();
    let mut wrong = resolve("r1", "hold", 0, Kind::PostPending);
    wrong.credit_account_id = Some("alice".to_owned());
    assert_eq!(reason(apply(&mut state, wrong, &user("u-alice"))), Reason::InvalidField);
    let mut wrong = resolve("r2", "hold", 0, Kind::PostPending);
    wrong.asset_code = Some("EUR".to_owned());
    assert_eq!(reason(apply(&mut state, wrong, &user("u-alice"))), Reason::AssetMismatch);
    let mut right = resolve("r3", "hold", 0, Kind::PostPending);
    (right.debit_account_id, right.credit_account_id, right.asset_code) =
        (Some("alice".to_owned()), Some("bob".to_owned()), Some("USD".to_owned()));
    apply(&mut state, right, &user("u-alice")).unwrap();
    let unknown = apply(&mut state, resolve("r4", "fund-alice-0", 0, Kind::VoidPending), &operator());
    assert_eq!(reason(unknown), Reason::PendingTransferNotFound, "a posted transfer is not a hold");
}

#[test]
fn a_repeated_resolution_returns_the_original_after_the_hold_resolved() {
    let mut state = held();
    let post = resolve("r1", "hold", 10, Kind::PostPending);
    let original = apply(&mut state, post.clone(), &user("u-alice")).unwrap();
    assert_eq!(apply(&mut state, post, &user("u-alice")).unwrap(), original);
}

#[test]
fn expiry_releases_a_due_open_hold_and_nothing_else() {
    let mut state = held();
    state.apply(&Op::Expire("hold".to_owned()), &Actor::system()).unwrap();
    assert_eq!(state.transfers["hold"].status, Status::Pending, "not due yet");
    state.now = state.transfers["hold"].expires_at.unwrap();
    state.apply(&Op::Expire("hold".to_owned()), &Actor::system()).unwrap();
    assert_eq!(state.transfers["hold"].status, Status::Expired);
    assert_eq!((totals(&state, "alice").available(), totals(&state, "bob").credits_pending), (Some(100), 0));
    let entries = state.entries.len();
    state.apply(&Op::Expire("hold".to_owned()), &Actor::system()).unwrap();
    assert_eq!(state.entries.len(), entries, "a second expiry writes nothing");
}
