//! Service accounts: creation, secrets, the client-credentials grant, and
//! accounts declared in configuration.

use folio_errors::validate::TextRule;
use folio_errors::{Failure, FolioError, Reason};
use folio_storage::db::{RetryPolicy, TxError, run_in_tx};
use folio_tokens::{Principal, scopes};
use sea_orm::SqlErr;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::{AuthCore, page_size, require_operator};
use crate::domain::{
    fields::known_subset,
    records::ServiceAccount,
    tokens::{AccessToken, Subject, hashes_equal, new_client_secret, secret_hash},
};
use crate::settings::DeclaredServiceAccount;
use crate::store::{
    self,
    audit::{self, Action},
    revocations::{self, Kind},
};

fn validate_scopes(requested: &[String]) -> Result<Vec<String>, Failure> {
    Ok(known_subset("scopes", requested, scopes::ALL)?.into_iter().map(str::to_owned).collect())
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
        folio_errors::validate::checked_text("name", name, TextRule::Line)?;
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
                let account = ServiceAccount {
                    client_id: client_id.clone(),
                    name: name.to_owned(),
                    scopes: granted.clone(),
                    secret_hash: hash,
                    disabled: false,
                    created_at: now,
                    updated_at: now,
                };
                store::service_accounts::insert(&*tx, &account).await.map_err(|error| match error.sql_err() {
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
                    json!({ "scopes": granted.join(" ") }),
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
        folio_errors::validate::checked_text("client_id", client_id, TextRule::Line)?;
        store::service_accounts::find(&self.db, client_id)
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
        let after = self.page_tokens.decode(token)?;
        let page = store::service_accounts::page(&self.db, after, limit + 1).await?;
        Ok(folio_storage::paging::finish_page(page, limit, |a| self.page_tokens.encode(a.created_at, &a.client_id)))
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
        store::service_accounts::set_secret(&self.db, &account.client_id, secret_hash(&secret), None, now).await?;
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
                store::service_accounts::disable(&*tx, &id, now).await?;
                let account = ServiceAccount { disabled: true, updated_at: now, ..account };
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
        folio_errors::validate::checked_text("client_id", client_id, TextRule::Line)?;
        folio_errors::validate::lines("scopes", requested)?;
        let account = store::service_accounts::find(&self.db, client_id).await?;
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
        let available = account.scopes.clone();
        let granted = if requested.is_empty() {
            available
        } else {
            if let Some(missing) = requested.iter().find(|s| !available.contains(s)) {
                return Err(FolioError::new(
                    Reason::MissingScope,
                    format!("scope {:?} is not granted to this account", folio_errors::echo(missing)),
                )
                .with_metadata("scope", folio_errors::echo(missing))
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
            let now = store::now(&self.db).await?;
            match store::service_accounts::find(&self.db, &account.client_id).await? {
                Some(existing) if hashes_equal(&existing.secret_hash, &hash) && existing.scopes.join(" ") == scopes => {
                }
                Some(existing) => {
                    let client_id = &existing.client_id;
                    store::service_accounts::set_secret(&self.db, client_id, hash, Some(&account.scopes), now).await?;
                }
                None => {
                    let created = ServiceAccount {
                        client_id: account.client_id.clone(),
                        name: account.client_id.clone(),
                        scopes: account.scopes.clone(),
                        secret_hash: hash,
                        disabled: false,
                        created_at: now,
                        updated_at: now,
                    };
                    store::service_accounts::insert(&self.db, &created).await?;
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
