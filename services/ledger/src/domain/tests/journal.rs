//! The batch as a whole: entries gapless per account and never back in
//! time, a failed operation undone without touching its neighbours, and
//! every asset summing to zero after every step.

use std::collections::HashMap;

use super::*;

#[test]
fn entries_are_gapless_per_account_and_never_go_back_in_time() {
    let mut state = book();
    // Bob's last entry was stamped after this batch's clock (a transaction
    // that started later committed first).
    state.accounts.get_mut("bob").unwrap().last_entry_at = NOW + 5;
    state.accounts.get_mut("bob").unwrap().entry_count = 7;
    fund(&mut state, "alice", 100);
    fund(&mut state, "bob", 1);
    apply(&mut state, request("t1", "alice", "bob", 1, Kind::Posted), &user("u-alice")).unwrap();
    let bob: Vec<_> = state.entries.iter().filter(|e| e.account_id == "bob").collect();
    assert_eq!(bob.iter().map(|e| e.account_sequence).collect::<Vec<_>>(), [8, 9]);
    assert!(bob.iter().all(|e| e.created_at == NOW + 5), "Bob's entries never go back in time");
    // Both sides of one change share one time (the change's event time),
    // the later of the two accounts' last: Alice's side of t1 takes Bob's.
    let alice: Vec<_> = state.entries.iter().filter(|e| e.account_id == "alice").collect();
    assert_eq!(alice.iter().map(|e| (e.account_sequence, e.created_at)).collect::<Vec<_>>(), [(1, NOW), (2, NOW + 5)]);
    let events = state.events();
    assert_eq!(events.last().map(|e| e.occurred_at), Some(NOW + 5), "t1's event time");
}

#[test]
fn rolling_back_an_operation_leaves_the_batch_as_before_it() {
    let mut state = book();
    fund(&mut state, "alice", 100);
    apply(&mut state, request("hold", "alice", "bob", 10, Kind::Pending), &user("u-alice")).unwrap();
    let before = (state.accounts.clone(), state.transfers.clone(), state.entries.clone(), state.created.len());
    let savepoint = state.savepoint();
    // An atomic group: three operations that succeed, then one that fails.
    apply(&mut state, request("t1", "alice", "bob", 5, Kind::Posted), &user("u-alice")).unwrap();
    apply(&mut state, resolve("r1", "hold", 0, Kind::PostPending), &user("u-alice")).unwrap();
    let reversal = Op::Reverse {
        id: "rev".to_owned(),
        original: "t1".to_owned(),
        description: String::new(),
        request_hash: "rev".to_owned(),
    };
    state.apply(&reversal, &operator()).unwrap();
    assert!(apply(&mut state, request("t2", "alice", "bob", 1_000, Kind::Posted), &user("u-alice")).is_err());
    state.rollback_to(savepoint);
    assert_eq!((state.accounts.clone(), state.transfers.clone(), state.entries.clone(), state.created.len()), before);
    assert!(state.resolved_holds.is_empty() && state.reversed.is_empty());
    // The neighbour before the group is untouched and the batch goes on.
    assert_eq!(state.transfers["hold"].status, crate::domain::Status::Pending);
    apply(&mut state, request("t1", "alice", "bob", 5, Kind::Posted), &user("u-alice")).unwrap();
}

/// A small deterministic generator (no dependency for one test).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

#[test]
fn every_asset_sums_to_zero_posted_and_pending_after_every_operation() {
    let mut state = book();
    state.accounts.get_mut("bob").unwrap().overdraft_limit = 40;
    let names = ["alice", "bob", "bank"];
    let mut random = Lcg(42);
    let mut holds = Vec::new();
    let (mut applied, mut refused) = (0, 0);
    for step in 0..2_000 {
        let savepoint = state.savepoint();
        let id = format!("op{step}");
        let pick = |r: &mut Lcg| names[usize::try_from(r.below(3)).unwrap()];
        let (debit, credit) = (pick(&mut random), pick(&mut random));
        let amount = i64::try_from(random.below(60)).unwrap() + 1;
        let result = match random.below(5) {
            0 | 1 => apply(&mut state, request(&id, debit, credit, amount, Kind::Posted), &operator()),
            2 => apply(&mut state, request(&id, debit, credit, amount, Kind::Pending), &operator())
                .inspect(|t| holds.push(t.id.clone())),
            3 if !holds.is_empty() => {
                let hold = holds.swap_remove(usize::try_from(random.below(holds.len() as u64)).unwrap());
                apply(&mut state, resolve(&id, &hold, amount, Kind::PostPending), &operator())
            }
            _ if !holds.is_empty() => {
                let hold = holds.swap_remove(usize::try_from(random.below(holds.len() as u64)).unwrap());
                apply(&mut state, resolve(&id, &hold, 0, Kind::VoidPending), &operator())
            }
            _ => continue,
        };
        match result {
            Ok(_) => applied += 1,
            Err(_) => {
                refused += 1;
                state.rollback_to(savepoint);
            }
        }
        let (mut posted, mut pending) = (HashMap::new(), HashMap::new());
        for account in state.accounts.values() {
            *posted.entry(&account.asset_code).or_insert(0) += account.totals.posted().unwrap();
            *pending.entry(&account.asset_code).or_insert(0) +=
                account.totals.credits_pending - account.totals.debits_pending;
            if account.kind == AccountKind::Customer {
                assert!(account.totals.available().unwrap() >= -account.overdraft_limit, "step {step}");
            }
        }
        assert!(posted.values().all(|sum| *sum == 0), "posted sums {posted:?} after step {step}");
        assert!(pending.values().all(|sum| *sum == 0), "pending sums {pending:?} after step {step}");
    }
    assert!(applied > 500 && refused > 50, "the walk exercised both paths: {applied} applied, {refused} refused");
}
