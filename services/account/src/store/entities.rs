//! Table models of the `account` schema.

#[allow(missing_docs)]
pub mod accounts {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub owner_id: String,
        pub asset_code: String,
        pub display_name: String,
        /// JSON object of strings.
        pub metadata: String,
        /// Proto numbering of `AccountKind`.
        pub kind: i16,
        /// Proto numbering of `AccountStatus`.
        pub status: i16,
        pub overdraft_limit: i64,
        /// The last ledger-change version applied.
        pub version: i64,
        /// Bumped on every change; the etag.
        pub revision: i64,
        pub created_by: String,
        pub request_id: String,
        pub request_hash: String,
        pub created_at: i64,
        pub updated_at: i64,
        /// The last ledger change's outcome is unknown: re-read the ledger.
        pub resync_due: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[allow(missing_docs)]
pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        pub attempts: i32,
        pub next_attempt_at: i64,
        pub last_error: String,
        pub done: bool,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[allow(missing_docs)]
pub mod status_changes {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "status_changes")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub account_id: String,
        pub from_status: i16,
        pub to_status: i16,
        pub actor: String,
        pub reason: String,
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
