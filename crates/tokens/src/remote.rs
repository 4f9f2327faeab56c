//! Wiring for services other than auth: verify tokens with auth's published
//! keys and revocations, and call other services with this service's own token.

use std::sync::Arc;

use futures::future::BoxFuture;
use secrecy::SecretString;

use super::{
    GrpcKeySource, GrpcRevocationSource, RevocationSource, ServiceTokenProvider, TokenVerifier, VerifierSettings,
};
use folio_proto::client::lazy_channel_with;
use serde::Deserialize;

/// What a service needs to authenticate callers and itself.
pub struct RemoteAuth {
    /// Verifies incoming tokens.
    pub verifier: TokenVerifier,
    /// This service's own token, when credentials are configured.
    pub tokens: Option<Arc<ServiceTokenProvider>>,
}

/// A service's own client credentials (`service_client.*`,
/// `FOLIO__SERVICE_CLIENT__*`), for calls to other services.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServiceClientSettings {
    /// Client id.
    pub id: Option<String>,
    /// Client secret.
    pub secret: Option<secrecy::SecretString>,
}

/// Builds the verifier and token provider from auth's address and this
/// service's `client` credentials. Without credentials, revocations cannot be
/// fetched and every token is refused with `DEPENDENCY_UNAVAILABLE` (failing
/// closed).
pub fn remote_auth(
    auth_address: &str,
    client: &ServiceClientSettings,
    tls: Option<&folio_tls::ClientTls>,
    settings: VerifierSettings,
) -> anyhow::Result<RemoteAuth> {
    let channel = lazy_channel_with(auth_address, tls)?;
    let tokens = match (&client.id, &client.secret) {
        (Some(id), Some(secret)) => Some(Arc::new(ServiceTokenProvider::new(
            channel.clone(),
            id.clone(),
            SecretString::from(secrecy::ExposeSecret::expose_secret(secret).to_owned()),
            Vec::new(),
        ))),
        _ => {
            tracing::warn!(
                "no service_client credentials (FOLIO__SERVICE_CLIENT__ID/SECRET): revocations cannot be \
                 fetched, so every access token will be refused"
            );
            None
        }
    };
    let revocations: Arc<dyn RevocationSource> = match &tokens {
        Some(tokens) => Arc::new(GrpcRevocationSource::new(channel.clone(), Arc::clone(tokens))),
        None => Arc::new(NoCredentials),
    };
    let verifier = TokenVerifier::new(Arc::new(GrpcKeySource::new(channel)), revocations, settings);
    Ok(RemoteAuth { verifier, tokens })
}

struct NoCredentials;

impl RevocationSource for NoCredentials {
    fn fetch_revocations(
        &self,
        _since_version: i64,
    ) -> BoxFuture<'_, anyhow::Result<folio_proto::auth::ListRevocationsResponse>> {
        Box::pin(async { anyhow::bail!("no service credentials configured to read revocations") })
    }
}
