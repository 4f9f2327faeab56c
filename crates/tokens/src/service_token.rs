//! A service's own access token, obtained from auth by client credentials and
//! renewed before it expires.

use std::time::{Duration, Instant};

use folio_proto::auth::{IssueServiceTokenRequest, auth_service_client::AuthServiceClient};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tonic::transport::Channel;

use folio_telemetry::inject_into_metadata;

struct CachedToken {
    bearer: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    renew_at: Instant,
}

/// Obtains and caches this service's access token.
pub struct ServiceTokenProvider {
    client: AuthServiceClient<Channel>,
    client_id: String,
    client_secret: SecretString,
    scopes: Vec<String>,
    cached: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for ServiceTokenProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokenProvider").field("client_id", &self.client_id).finish_non_exhaustive()
    }
}

impl ServiceTokenProvider {
    /// A provider for `client_id` asking for `scopes` (empty: all of the account's).
    pub fn new(channel: Channel, client_id: String, client_secret: SecretString, scopes: Vec<String>) -> Self {
        Self { client: AuthServiceClient::new(channel), client_id, client_secret, scopes, cached: Mutex::new(None) }
    }

    /// The `authorization` value to send, fetching a new token when the cached
    /// one has less than a fifth of its life left.
    pub async fn bearer(&self) -> anyhow::Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>> {
        let mut cached = self.cached.lock().await;
        if let Some(token) = cached.as_ref()
            && Instant::now() < token.renew_at
        {
            return Ok(token.bearer.clone());
        }
        let mut request = tonic::Request::new(IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.expose_secret().to_owned(),
            scopes: self.scopes.clone(),
        });
        request.set_timeout(Duration::from_secs(5));
        let response = self.client.clone().issue_service_token(request).await?.into_inner();
        let lifetime = response
            .access_token_expires_at
            .map(|at| at.seconds - chrono::Utc::now().timestamp())
            .unwrap_or(60)
            .clamp(1, 15 * 60);
        let bearer = format!("Bearer {}", response.access_token).parse()?;
        let renew_in = Duration::from_secs(u64::try_from(lifetime).unwrap_or(1)).mul_f64(0.8);
        *cached = Some(CachedToken { bearer: Clone::clone(&bearer), renew_at: Instant::now() + renew_in });
        Ok(bearer)
    }

    /// Forgets the cached token (after an `UNAUTHENTICATED` answer, say).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    /// Wraps `message` in a request carrying this service's token and the
    /// current trace context.
    pub async fn authorize<T>(&self, message: T) -> anyhow::Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("authorization", self.bearer().await?);
        inject_into_metadata(request.metadata_mut());
        Ok(request)
    }
}
