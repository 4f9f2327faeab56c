//! Auth verifies its own callers' tokens like every service does, but reads
//! keys and revocations straight from its own keyring and schema.

use std::sync::Arc;

use folio_proto::auth::{Jwk, ListRevocationsResponse};
use folio_tokens::{KeySource, RevocationSource, TokenVerifier, VerifierSettings};
use futures::future::BoxFuture;
use sea_orm::DatabaseConnection;

use super::keyring::Keyring;

struct LocalKeys(Keyring);

impl KeySource for LocalKeys {
    fn fetch_keys(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        Box::pin(self.0.published())
    }
}

struct LocalRevocations(DatabaseConnection);

impl RevocationSource for LocalRevocations {
    fn fetch_revocations(&self, since_version: i64) -> BoxFuture<'_, anyhow::Result<ListRevocationsResponse>> {
        Box::pin(async move { Ok(crate::store::revocations::in_force(&self.0, since_version).await?) })
    }
}

/// A verifier over auth's own keys and revocations.
pub fn local_verifier(keyring: Keyring, db: DatabaseConnection) -> TokenVerifier {
    TokenVerifier::new(Arc::new(LocalKeys(keyring)), Arc::new(LocalRevocations(db)), VerifierSettings::default())
}
