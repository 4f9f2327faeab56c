//! Service accounts: creation, secrets, the client-credentials grant, and
//! accounts declared in configuration.

use folio_common::validate::TextRule;
use folio_common::{
    auth::{Principal, scopes},
    db::{RetryPolicy, TxError, run_in_tx},
    error::{Failure, FolioError, Reason},
};
use sea_orm::sea_query::ExprTrait as _;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{AuthCore, known_subset, page_size, require_operator};
use crate::domain::tokens::{AccessToken, Subject, hashes_equal, new_client_secret, secret_hash};
use crate::settings::DeclaredServiceAccount;
use crate::store::{
    audit::{self, Action},
    entities::service_accounts,
    revocations::{self, Kind},
};

/// A service account as stored.
pub type ServiceAccount = service_accounts::Model;

/// The scopes of a stored account.
pub fn scopes_of(account: &ServiceAccount) -> Vec<String> {
    account.scopes.split_whitespace().map(str::to_owned).collect()
}

fn validate_scopes(requested: &[String]) -> Result<String, Failure> {
    Ok(known_subset("scopes", requested, scopes::ALL)?.join(" "))
}

impl AuthCore {
    /// CreateServiceAccount (operator): the secret is returned here only.
    pub async fn create_service_account(
        &self,
        principal: &Principal,
        name: &str,
        requested: &[String],
    ) -> Result<(ServiceAccount, String), Failure> {
        require_operator(principal)?;
        folio_common::validate::checked_text("name", name, TextRule::Line)?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(FolioError::invalid_field("name", "must be 1..100 characters").into());
        }
        let granted = validate_scopes(requested)?;
        let secret = new_client_secret();
        let client_id = uuid::Uuid::new_v4().to_string();
        let account = run_in_tx(&self.db, "auth_create_service_account", RetryPolicy::default(), |tx| {
            let (client_id, granted, hash) = (client_id.clone(), granted.clone(), secret_hash(&secret));
            async move {
                let now = self.now(&*tx).await?;
                let account = service_accounts::ActiveModel {
                    client_id: Set(client_id.clone()),
                    name: Set(name.to_owned()),
                    scopes: Set(granted.clone()),
                    secret_hash: Set(hash),
                    disabled: Set(false),
                    created_at: Set(now),
                    updated_at: Set(now),
                }
                .insert(&*tx)
                .await
                .map_err(|error| match error.sql_err() {
                    Some(SqlErr::UniqueConstraintViolation(_)) => Failure::from(FolioError::new(
                        Reason::ServiceAccountExists,
                        "a service account with this name exists",
                    )),
                    _ => Failure::from(error),
                })?;
                audit::append(
                    &*tx,
                    now,
                    &principal.subject,
                    Action::ServiceAccountCreated,
                    &client_id,
                    json!({ "scopes": granted }),
                )
                .await?;
                Ok::<_, TxError<Failure>>(account)
            }
        })
        .await?;
        Ok((account, secret))
    }

    /// The suite's own service accounts come from configuration (DESIGN §2):
    /// disabling or re-keying one through the API would take every service
    /// that uses it down, so that is done where it was declared.
    fn refuse_if_provisioned(&self, client_id: &str) -> Result<(), Failure> {
        let declared = self.settings.declared_service_accounts().map_err(Failure::Internal)?;
        if declared.iter().any(|account| account.client_id == client_id) {
            return Err(FolioError::new(
                Reason::ServiceAccountProvisioned,
                "this service account is provisioned from configuration; change it there",
            )
            .into());
        }
        Ok(())
    }

    async fn find_service_account(&self, client_id: &str) -> Result<ServiceAccount, Failure> {
        folio_common::validate::checked_text("client_id", client_id, TextRule::Line)?;
        service_accounts::Entity::find_by_id(client_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| FolioError::new(Reason::ServiceAccountNotFound, "no such service account").into())
    }

    /// ListServiceAccounts (operator).
    pub async fn list_service_accounts(
        &self,
        principal: &Principal,
        size: i32,
        token: &str,
    ) -> Result<(Vec<ServiceAccount>, String), Failure> {
        require_operator(principal)?;
        let limit = page_size(size, 50, 200)?;
        let mut query = service_accounts::Entity::find()
            .order_by_asc(service_accounts::Column::CreatedAt)
            .order_by_asc(service_accounts::Column::ClientId);
        if let Some((at, id)) = self.page_tokens.decode(token)? {
            query = query.filter(
                service_accounts::Column::CreatedAt
                    .gt(at)
                    .or(service_accounts::Column::CreatedAt.eq(at).and(service_accounts::Column::ClientId.gt(id))),
            );
        }
        let page = query.limit(limit + 1).all(&self.db).await?;
        Ok(folio_common::paging::finish_page(page, limit, |a| self.page_tokens.encode(a.created_at, &a.client_id)))
    }

    /// RotateServiceAccountSecret (operator): the old secret stops working.
    pub async fn rotate_service_account_secret(
        &self,
        principal: &Principal,
        client_id: &str,
    ) -> Result<String, Failure> {
        require_operator(principal)?;
        let account = self.find_service_account(client_id).await?;
        self.refuse_if_provisioned(client_id)?;
        let secret = new_client_secret();
        let now = self.now(&self.db).await?;
        service_accounts::ActiveModel {
            secret_hash: Set(secret_hash(&secret)),
            updated_at: Set(now),
            ..account.into()
        }
        .update(&self.db)
        .await?;
        audit::append(&self.db, now, &principal.subject, Action::ServiceAccountSecretRotated, client_id, json!({}))
            .await?;
        Ok(secret)
    }

    /// DisableServiceAccount (operator): its tokens are refused within seconds.
    pub async fn disable_service_account(
        &self,
        principal: &Principal,
        client_id: &str,
    ) -> Result<ServiceAccount, Failure> {
        require_operator(principal)?;
        let account = self.find_service_account(client_id).await?;
        self.refuse_if_provisioned(client_id)?;
        let account = run_in_tx(&self.db, "auth_disable_service_account", RetryPolicy::default(), |tx| {
            let account = account.clone();
            async move {
                let now = self.now(&*tx).await?;
                let id = account.client_id.clone();
                let account =
                    service_accounts::ActiveModel { disabled: Set(true), updated_at: Set(now), ..account.into() }
                        .update(&*tx)
                        .await?;
                revocations::add(&*tx, Kind::ServiceAccount, &id, now).await?;
                audit::append(&*tx, now, &principal.subject, Action::ServiceAccountDisabled, &id, json!({})).await?;
                Ok::<_, TxError<Failure>>(account)
            }
        })
        .await?;
        self.nudge_verifiers().await;
        Ok(account)
    }

    /// IssueServiceToken: the client-credentials grant. Unknown ids and wrong
    /// secrets answer alike; requested scopes must be a subset of the granted.
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        secret: &SecretString,
        requested: &[String],
    ) -> Result<(AccessToken, Vec<String>), Failure> {
        folio_common::validate::checked_text("client_id", client_id, TextRule::Line)?;
        folio_common::validate::lines("scopes", requested)?;
        let account = service_accounts::Entity::find_by_id(client_id.to_owned()).one(&self.db).await?;
        let presented = secret_hash(secret.expose_secret());
        // Compare against something even for unknown ids, in constant time.
        let stored = account.as_ref().map_or_else(|| "0".repeat(presented.len()), |a| a.secret_hash.clone());
        let matches = hashes_equal(&presented, &stored);
        let (Some(account), true) = (account, matches) else {
            return Err(FolioError::new(Reason::InvalidCredentials, "client id or secret is wrong").into());
        };
        if account.disabled {
            return Err(FolioError::new(Reason::UserDisabled, "this service account is disabled").into());
        }
        let available = scopes_of(&account);
        let granted = if requested.is_empty() {
            available
        } else {
            if let Some(missing) = requested.iter().find(|s| !available.contains(s)) {
                return Err(FolioError::new(
                    Reason::MissingScope,
                    format!("scope {:?} is not granted to this account", folio_common::error::echo(missing)),
                )
                .with_metadata("scope", folio_common::error::echo(missing))
                .into());
            }
            requested.to_vec()
        };
        let token =
            self.issuer.access_token(Subject::Service { client_id: &account.client_id, scopes: &granted }).await?;
        Ok((token, granted))
    }

    /// Creates or updates the service accounts declared in configuration.
    pub async fn provision_service_accounts(&self, declared: &[DeclaredServiceAccount]) -> anyhow::Result<()> {
        for account in declared {
            let hash = secret_hash(account.secret.expose_secret());
            let scopes = account.scopes.join(" ");
            let now = folio_common::db::now(&self.db).await?.timestamp_micros();
            match service_accounts::Entity::find_by_id(account.client_id.clone()).one(&self.db).await? {
                Some(existing) if hashes_equal(&existing.secret_hash, &hash) && existing.scopes == scopes => {}
                Some(existing) => {
                    service_accounts::ActiveModel {
                        secret_hash: Set(hash),
                        scopes: Set(scopes),
                        updated_at: Set(now),
                        ..existing.into()
                    }
                    .update(&self.db)
                    .await?;
                }
                None => {
                    service_accounts::ActiveModel {
                        client_id: Set(account.client_id.clone()),
                        name: Set(account.client_id.clone()),
                        scopes: Set(scopes.clone()),
                        secret_hash: Set(hash),
                        disabled: Set(false),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(&self.db)
                    .await?;
                    audit::append(
                        &self.db,
                        now,
                        "config",
                        Action::ServiceAccountCreated,
                        &account.client_id,
                        json!({ "scopes": scopes }),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// RotateSigningKey (operator).
    pub async fn rotate_signing_key(&self, principal: &Principal) -> Result<(String, i64), Failure> {
        require_operator(principal)?;
        let delay = std::time::Duration::from_secs(self.settings.key_activation_delay_secs);
        let (kid, signs_from) = self.keyring.rotate(delay).await?;
        let now = self.now(&self.db).await?;
        audit::append(
            &self.db,
            now,
            &principal.subject,
            Action::SigningKeyRotated,
            &kid,
            json!({ "signs_from": signs_from }),
        )
        .await?;
        Ok((kid, signs_from))
    }

    /// ListRevocations (scope `auth:internal`).
    pub async fn list_revocations(
        &self,
        principal: &Principal,
        since: i64,
    ) -> Result<folio_proto::auth::ListRevocationsResponse, Failure> {
        principal.require_scope(scopes::AUTH_INTERNAL)?;
        Ok(crate::store::revocations::in_force(&self.db, since).await?)
    }
}
