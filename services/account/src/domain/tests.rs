//! The account rules, without a database or a ledger.

use std::collections::{BTreeMap, HashMap};

use folio_errors::{FolioError, Reason};

use super::*;

const OWNER: &str = "0190a5a0-0000-7000-8000-000000000001";
const STRANGER: &str = "0190a5a0-0000-7000-8000-000000000002";
const REQUEST: &str = "0190a5a0-0000-7000-8000-0000000000aa";

fn customer(subject: &str) -> Caller {
    Caller { subject: subject.to_owned(), manage_any: false, read_any: false }
}

fn operator() -> Caller {
    Caller { subject: "operator".to_owned(), manage_any: true, read_any: true }
}

fn reader() -> Caller {
    Caller { subject: "risk-service".to_owned(), manage_any: false, read_any: true }
}

fn account(status: AccountStatus) -> Account {
    Account {
        id: "0190a5a0-0000-7000-8000-0000000000ff".to_owned(),
        owner_id: OWNER.to_owned(),
        asset_code: "USD".to_owned(),
        display_name: "Main".to_owned(),
        metadata: BTreeMap::new(),
        kind: AccountKind::Customer,
        status,
        overdraft_limit: 0,
        version: 3,
        revision: 7,
        created_by: OWNER.to_owned(),
        created_at: 1,
        updated_at: 2,
    }
}

fn reason<T: std::fmt::Debug>(result: Result<T, FolioError>) -> Reason {
    result.expect_err("refused").reason()
}

fn new_account() -> NewAccount {
    NewAccount {
        request_id: REQUEST.to_owned(),
        asset_code: "USD".to_owned(),
        display_name: "Main".to_owned(),
        ..NewAccount::default()
    }
}

#[test]
fn numbers_round_trip_and_unknown_ones_are_none() {
    for status in [AccountStatus::Pending, AccountStatus::Active, AccountStatus::Frozen, AccountStatus::Closed] {
        assert_eq!(AccountStatus::from_number(status as i32), Some(status));
    }
    for kind in [AccountKind::Customer, AccountKind::System] {
        assert_eq!(AccountKind::from_number(kind as i32), Some(kind));
    }
    assert_eq!(AccountStatus::from_number(0), None);
    assert_eq!(AccountStatus::from_number(5), None);
    assert_eq!(AccountKind::from_number(3), None);
}

#[test]
fn only_the_owner_and_readers_see_an_account() {
    let active = account(AccountStatus::Active);
    assert!(customer(OWNER).may_read(&active).is_ok());
    assert!(reader().may_read(&active).is_ok());
    assert!(operator().may_read(&active).is_ok());
    assert_eq!(reason(customer(STRANGER).may_read(&active)), Reason::NotAccountOwner);
}

#[test]
fn only_the_owner_and_managers_change_an_account_and_readers_do_not() {
    let active = account(AccountStatus::Active);
    assert!(customer(OWNER).may_change(&active).is_ok());
    assert!(operator().may_change(&active).is_ok());
    assert_eq!(reason(customer(STRANGER).may_change(&active)), Reason::NotAccountOwner);
    assert_eq!(reason(reader().may_change(&active)), Reason::NotAccountOwner);
    let refused = customer(OWNER).require_manager().expect_err("owners are not managers");
    assert_eq!(refused.reason(), Reason::MissingRole);
}

#[test]
fn a_list_shows_the_callers_own_unless_it_reads_any() {
    assert_eq!(customer(OWNER).list_owner(None).ok(), Some(Some(OWNER.to_owned())));
    assert_eq!(customer(OWNER).list_owner(Some(OWNER.to_owned())).ok(), Some(Some(OWNER.to_owned())));
    assert_eq!(reason(customer(OWNER).list_owner(Some(STRANGER.to_owned()))), Reason::NotAccountOwner);
    assert_eq!(reader().list_owner(None).ok(), Some(None));
    assert_eq!(operator().list_owner(Some(STRANGER.to_owned())).ok(), Some(Some(STRANGER.to_owned())));
}

#[test]
fn freezing_is_for_operators_and_an_owner_cannot_close_what_an_operator_froze() {
    let active = account(AccountStatus::Active);
    let frozen = account(AccountStatus::Frozen);
    assert_eq!(reason(customer(OWNER).may_set_status(&active, AccountStatus::Frozen)), Reason::MissingRole);
    assert_eq!(reason(customer(OWNER).may_set_status(&frozen, AccountStatus::Active)), Reason::MissingRole);
    assert!(operator().may_set_status(&active, AccountStatus::Frozen).is_ok());
    assert!(operator().may_set_status(&frozen, AccountStatus::Active).is_ok());
    assert!(customer(OWNER).may_set_status(&active, AccountStatus::Closed).is_ok());
    assert_eq!(reason(customer(OWNER).may_set_status(&frozen, AccountStatus::Closed)), Reason::AccountFrozen);
    assert!(operator().may_set_status(&frozen, AccountStatus::Closed).is_ok());
    assert_eq!(reason(customer(STRANGER).may_set_status(&active, AccountStatus::Closed)), Reason::NotAccountOwner);
}

#[test]
fn only_a_settled_account_changes_status() {
    let pending = account(AccountStatus::Pending);
    let closed = account(AccountStatus::Closed);
    assert_eq!(reason(operator().may_set_status(&pending, AccountStatus::Frozen)), Reason::AccountPending);
    assert_eq!(reason(operator().may_set_status(&closed, AccountStatus::Active)), Reason::AccountClosed);
    assert_eq!(reason(customer(OWNER).may_set_status(&closed, AccountStatus::Closed)), Reason::AccountClosed);
}

#[test]
fn an_update_needs_the_current_etag_and_an_open_account() {
    let active = account(AccountStatus::Active);
    let rename = Changes { display_name: Some("Savings".to_owned()), ..Changes::default() }.validate().unwrap();
    assert!(rename.check(&customer(OWNER), &active, "\"7\"").is_ok());
    assert_eq!(reason(rename.check(&customer(OWNER), &active, "\"6\"")), Reason::EtagMismatch);
    assert_eq!(reason(rename.check(&customer(STRANGER), &active, "\"7\"")), Reason::NotAccountOwner);
    let closed = account(AccountStatus::Closed);
    assert_eq!(reason(rename.check(&customer(OWNER), &closed, "\"7\"")), Reason::AccountClosed);
    let renamed = rename.apply_local(&active);
    assert_eq!((renamed.display_name.as_str(), renamed.revision), ("Savings", active.revision));
}

#[test]
fn an_overdraft_limit_is_for_operators_and_never_negative() {
    let active = account(AccountStatus::Active);
    let limit = |value| Changes { overdraft_limit: Some(value), ..Changes::default() }.validate().unwrap();
    assert_eq!(reason(limit(100).check(&customer(OWNER), &active, "\"7\"")), Reason::MissingRole);
    assert!(limit(100).check(&operator(), &active, "\"7\"").is_ok());
    assert_eq!(reason(limit(-1).check(&operator(), &active, "\"7\"")), Reason::InvalidField);
}

#[test]
fn update_text_follows_the_text_rules() {
    let empty = Changes { display_name: Some(String::new()), ..Changes::default() };
    assert_eq!(reason(empty.validate()), Reason::InvalidField);
    let control = Changes { display_name: Some("a\u{0}b".to_owned()), ..Changes::default() };
    assert_eq!(reason(control.validate()), Reason::InvalidField);
}

#[test]
fn the_ledgers_state_replaces_ours_and_the_version_never_goes_back() {
    let active = account(AccountStatus::Active);
    let ahead = LedgerState { status: AccountStatus::Frozen, overdraft_limit: 50, version: 9 };
    let after = active.with_ledger_state(ahead);
    assert_eq!((after.status, after.overdraft_limit, after.version), (AccountStatus::Frozen, 50, 9));
    let behind = LedgerState { status: AccountStatus::Active, overdraft_limit: 0, version: 1 };
    assert_eq!(active.with_ledger_state(behind).version, 3);
}

#[test]
fn a_customer_creates_for_itself_and_only_operators_set_owner_kind_or_limit() {
    let created = new_account().validate(&customer(OWNER)).unwrap();
    assert_eq!((created.owner_id.as_str(), created.kind, created.overdraft_limit), (OWNER, AccountKind::Customer, 0));
    let for_other = NewAccount { owner_id: STRANGER.to_owned(), ..new_account() };
    assert_eq!(reason(for_other.validate(&customer(OWNER))), Reason::MissingRole);
    let system = NewAccount { kind: AccountKind::System as i32, ..new_account() };
    assert_eq!(reason(system.validate(&customer(OWNER))), Reason::MissingRole);
    let overdraft = NewAccount { overdraft_limit: 10, ..new_account() };
    assert_eq!(reason(overdraft.validate(&customer(OWNER))), Reason::MissingRole);

    let by_operator = NewAccount {
        owner_id: STRANGER.to_owned(),
        kind: AccountKind::System as i32,
        overdraft_limit: 10,
        ..new_account()
    };
    let created = by_operator.validate(&operator()).unwrap();
    assert_eq!((created.owner_id.as_str(), created.kind, created.overdraft_limit), (STRANGER, AccountKind::System, 10));
}

#[test]
fn a_create_with_bad_fields_is_refused_naming_the_field() {
    let cases = [
        ("request_id", NewAccount { request_id: "not-a-uuid".to_owned(), ..new_account() }),
        ("asset_code", NewAccount { asset_code: "usd".to_owned(), ..new_account() }),
        ("display_name", NewAccount { display_name: String::new(), ..new_account() }),
        ("owner_id", NewAccount { owner_id: "x".to_owned(), ..new_account() }),
        ("kind", NewAccount { kind: 9, ..new_account() }),
        ("overdraft_limit", NewAccount { overdraft_limit: -1, ..new_account() }),
    ];
    for (field, request) in cases {
        let refused = request.validate(&operator()).expect_err(field);
        assert_eq!(refused.reason(), Reason::InvalidField, "{field}");
        assert!(format!("{refused:?}").contains(field), "{field}: {refused:?}");
    }
}

#[test]
fn a_retry_repeats_the_request_hash_and_any_other_field_changes_it() {
    let first = new_account().validate(&customer(OWNER)).unwrap().request_hash;
    assert_eq!(new_account().validate(&customer(OWNER)).unwrap().request_hash, first);
    let renamed = NewAccount { display_name: "Other".to_owned(), ..new_account() };
    assert_ne!(renamed.validate(&customer(OWNER)).unwrap().request_hash, first);
    let labelled = NewAccount { metadata: HashMap::from([("k".to_owned(), "v".to_owned())]), ..new_account() };
    assert_ne!(labelled.validate(&customer(OWNER)).unwrap().request_hash, first);
    assert_ne!(new_account().validate(&customer(STRANGER)).unwrap().request_hash, first, "another owner");
}
