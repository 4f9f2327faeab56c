//! Table models of the `auth` schema (see the initial migration). Times are
//! microseconds since the epoch from the database clock.

macro_rules! entity {
    ($module:ident, $table:literal, { $($body:tt)* }) => {
        #[allow(missing_docs)]
        pub mod $module {
            use sea_orm::entity::prelude::*;

            #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
            #[sea_orm(table_name = $table)]
            pub struct Model {
                $($body)*
            }

            #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
            pub enum Relation {}

            impl ActiveModelBehavior for ActiveModel {}
        }
    };
}

entity!(users, "users", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    /// Comma-separated role names.
    pub roles: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
});

entity!(password_credentials, "password_credentials", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: String,
    /// PHC string: algorithm, parameters, salt and hash.
    pub password_hash: String,
    pub updated_at: i64,
});

entity!(sessions, "sessions", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    pub client_ip: String,
    pub user_agent: String,
});

entity!(refresh_tokens, "refresh_tokens", {
    /// SHA-256 of the token, hex; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub session_id: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
});

entity!(service_accounts, "service_accounts", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub client_id: String,
    #[sea_orm(unique)]
    pub name: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// SHA-256 of the client secret, hex.
    pub secret_hash: String,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
});

entity!(signing_keys, "signing_keys", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub kid: String,
    /// Ed25519 public key, base64url.
    pub public_key: String,
    /// PKCS#8 private key sealed with the key-encryption key.
    pub encrypted_private_key: String,
    pub created_at: i64,
    pub signs_from: i64,
    pub retired_at: Option<i64>,
});

entity!(revocations, "revocations", {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `session`, `token`, `user` or `service_account`.
    pub kind: String,
    pub subject: String,
    pub created_at: i64,
    /// After this no token it covers can be valid; `None`: until lifted.
    pub expires_at: Option<i64>,
});

entity!(revocation_version, "revocation_version", {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    pub version: i64,
});

entity!(audit_log, "audit_log", {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    /// JSON object.
    pub detail: String,
});
