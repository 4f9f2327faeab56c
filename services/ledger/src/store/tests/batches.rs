//! Writing a batch and reading its rows back.

use std::collections::BTreeSet;

use super::Store;
use crate::domain::{AccountKind, Kind, Op, Status, tests::request, tests::resolve};
use crate::store::{self, accounts, statements};

fn ids(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|id| (*id).to_owned()).collect()
}

fn transfer(id: &str, debit: &str, credit: &str, amount: i64, kind: Kind) -> Op {
    Op::Transfer(request(id, debit, credit, amount, kind).into())
}

async fn book(store: &Store) {
    store.asset("USD").await;
    store.account("bank", AccountKind::System).await;
    store.account("a1", AccountKind::Customer).await;
    store.account("a2", AccountKind::Customer).await;
}

pub async fn a_written_batch_reads_back_as_the_rules_made_it(store: Store) {
    book(&store).await;
    let made = store
        .commit(vec![transfer("t1", "bank", "a1", 100, Kind::Posted), transfer("t2", "a1", "a2", 30, Kind::Posted)])
        .await;
    assert!(made[0].sequence > 0 && made[1].sequence > made[0].sequence, "sequences increase: {made:?}");
    let mut stored = store::transfers_by_id(&store.db, &ids(&["t1", "t2", "t3"]), false).await.unwrap();
    stored.sort_by_key(|t| t.sequence);
    assert_eq!(stored, made, "every field reads back as written, and unknown ids are absent");

    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    let (a2, _) = accounts::account(&store.db, "a2").await.unwrap();
    let (bank, _) = accounts::account(&store.db, "bank").await.unwrap();
    assert_eq!((a1.totals.posted(), a1.entry_count), (Some(70), 2));
    assert_eq!((a2.totals.posted(), a2.entry_count), (Some(30), 1));
    assert_eq!((bank.totals.posted(), bank.entry_count), (Some(-100), 1));
    assert_eq!(a1.last_entry_at, made[1].created_at, "the account remembers its last entry's time");
}

pub async fn accounts_lock_in_id_order_and_unknown_ids_are_absent(store: Store) {
    book(&store).await;
    let tx = folio_storage::db::begin_write(&store.db, None).await.unwrap();
    let locked = store::lock_accounts(&tx, &ids(&["a2", "zz", "bank", "a1"])).await.unwrap();
    assert_eq!(locked.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["a1", "a2", "bank"]);
    assert!(store::lock_accounts(&tx, &BTreeSet::new()).await.unwrap().is_empty());
    tx.rollback().await.unwrap();
}

pub async fn a_resolved_hold_and_a_reversal_are_found_again(store: Store) {
    book(&store).await;
    store.commit(vec![transfer("t1", "bank", "a1", 100, Kind::Posted)]).await;
    store.commit(vec![transfer("h1", "a1", "a2", 40, Kind::Pending)]).await;
    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    assert_eq!((a1.totals.debits_pending, a1.totals.available()), (40, Some(60)), "the hold is held");
    store.commit(vec![Op::Transfer(resolve("p1", "h1", 0, Kind::PostPending).into())]).await;
    let hold = store::transfers_by_id(&store.db, &ids(&["h1"]), false).await.unwrap();
    assert_eq!(hold[0].status, Status::PostedFromPending);
    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    assert_eq!((a1.totals.debits_pending, a1.totals.posted()), (0, Some(60)));
    store.commit(vec![transfer("t2", "bank", "a1", 50, Kind::Posted)]).await;

    let reverse = Op::Reverse {
        id: "r1".to_owned(),
        original: "t1".to_owned(),
        description: String::new(),
        request_hash: "r1".to_owned(),
    };
    let reversal = store.commit(vec![reverse]).await.remove(0);
    assert_eq!(reversal.reverses_transfer_id.as_deref(), Some("t1"));
    let (a1, _) = accounts::account(&store.db, "a1").await.unwrap();
    assert_eq!(a1.totals.posted(), Some(10), "the reversal took the 100 back");
    let reversed = store::reversed_among(&store.db, &ids(&["t1", "t2", "p1", "h1"])).await.unwrap();
    assert_eq!(reversed, ["t1"]);
}

pub async fn holds_past_their_deadline_are_listed_for_the_sweeper(store: Store) {
    book(&store).await;
    store.commit(vec![transfer("t1", "bank", "a1", 100, Kind::Posted)]).await;
    let long_ago = store.now().await - 120_000_000;
    store.commit_at(Some(long_ago), vec![transfer("old", "a1", "a2", 10, Kind::Pending)]).await;
    store.commit(vec![transfer("new", "a1", "a2", 10, Kind::Pending)]).await;
    assert_eq!(statements::expired_holds(&store.db, 10).await.unwrap(), ["old"]);
    let swept = store.commit_at(None, vec![Op::Expire("old".to_owned())]).await;
    assert!(matches!(swept.as_slice(), [Ok(None)]), "an expiry creates no transfer");
    assert!(statements::expired_holds(&store.db, 10).await.unwrap().is_empty());
    let old = store::transfers_by_id(&store.db, &ids(&["old"]), false).await.unwrap();
    assert_eq!(old[0].status, Status::Expired);
}
