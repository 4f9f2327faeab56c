//! Who may act: new transfers by the debit account's owner, an operator or
//! `ledger:write`; post and void by the hold's initiator, an operator or
//! `ledger:write`; reads by the owner, an operator or `ledger:read`.

use super::*;

#[test]
fn only_the_debit_owner_an_operator_or_ledger_write_move_money() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    let mv = |id: &str| request(id, "alice", "bob", 1, Kind::Posted);
    assert_eq!(reason(apply(&mut state, mv("t1"), &user("u-bob"))), Reason::NotAccountOwner);
    assert_eq!(reason(apply(&mut state, mv("t2"), &service("ledger:read"))), Reason::NotAccountOwner);
    apply(&mut state, mv("t3"), &user("u-alice")).unwrap();
    apply(&mut state, mv("t4"), &operator()).unwrap();
    apply(&mut state, mv("t5"), &service("ledger:write")).unwrap();
}

#[test]
fn only_the_holds_initiator_an_operator_or_ledger_write_resolve_it() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    for hold in ["h1", "h2", "h3"] {
        apply(&mut state, request(hold, "alice", "bob", 1, Kind::Pending), &user("u-alice")).unwrap();
    }
    // Bob is the credit side's owner, not the initiator.
    let by_bob = apply(&mut state, resolve("r0", "h1", 0, Kind::PostPending), &user("u-bob"));
    assert_eq!(reason(by_bob), Reason::NotAccountOwner);
    apply(&mut state, resolve("r1", "h1", 0, Kind::PostPending), &user("u-alice")).unwrap();
    apply(&mut state, resolve("r2", "h2", 0, Kind::VoidPending), &operator()).unwrap();
    apply(&mut state, resolve("r3", "h3", 0, Kind::PostPending), &service("ledger:write")).unwrap();
}

#[test]
fn only_the_owner_an_operator_or_ledger_read_read() {
    assert!(user("u-alice").may_read("u-alice").is_ok());
    assert_eq!(user("u-bob").may_read("u-alice").unwrap_err().reason(), Reason::NotAccountOwner);
    assert!(operator().may_read("u-alice").is_ok());
    assert!(service("ledger:read").may_read("u-alice").is_ok());
    assert!(service("accounts:read").may_read("u-alice").is_err());
}

#[test]
fn reversals_need_an_operator_or_ledger_write() {
    assert_eq!(user("u-alice").may_reverse().unwrap_err().reason(), Reason::MissingRole);
    assert!(operator().may_reverse().is_ok());
    assert!(service("ledger:write").may_reverse().is_ok());
}
