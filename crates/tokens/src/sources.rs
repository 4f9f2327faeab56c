//! Where a verifier gets keys and revocations: normally the auth service over
//! gRPC; the auth service itself plugs in its own database.

use std::sync::Arc;

use folio_proto::auth::{
    GetJwksRequest, Jwk, ListRevocationsRequest, ListRevocationsResponse,
    auth_internal_service_client::AuthInternalServiceClient, auth_service_client::AuthServiceClient,
};
use futures::future::BoxFuture;
use tonic::transport::Channel;

use super::service_token::ServiceTokenProvider;

/// Supplies the published signing keys.
pub trait KeySource: Send + Sync + 'static {
    /// Every key a valid token may be signed with.
    fn fetch_keys(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>>;
}

/// Supplies the revocations in force.
pub trait RevocationSource: Send + Sync + 'static {
    /// Revocations newer than `since_version` (see `ListRevocations`).
    fn fetch_revocations(&self, since_version: i64) -> BoxFuture<'_, anyhow::Result<ListRevocationsResponse>>;
}

/// Keys from `AuthService.GetJwks`.
#[derive(Clone)]
pub struct GrpcKeySource {
    client: AuthServiceClient<Channel>,
}

impl GrpcKeySource {
    /// Reads keys through `channel` (to the auth service).
    pub fn new(channel: Channel) -> Self {
        Self { client: AuthServiceClient::new(channel) }
    }
}

impl KeySource for GrpcKeySource {
    fn fetch_keys(&self) -> BoxFuture<'_, anyhow::Result<Vec<Jwk>>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let mut request = tonic::Request::new(GetJwksRequest {});
            request.set_timeout(std::time::Duration::from_secs(3));
            Ok(client.get_jwks(request).await?.into_inner().keys)
        })
    }
}

/// Revocations from `AuthInternalService.ListRevocations`, called with this
/// service's own token (scope `auth:internal`).
#[derive(Clone)]
pub struct GrpcRevocationSource {
    client: AuthInternalServiceClient<Channel>,
    tokens: Arc<ServiceTokenProvider>,
}

impl GrpcRevocationSource {
    /// Reads revocations through `channel`, authenticating with `tokens`.
    pub fn new(channel: Channel, tokens: Arc<ServiceTokenProvider>) -> Self {
        Self { client: AuthInternalServiceClient::new(channel), tokens }
    }
}

impl RevocationSource for GrpcRevocationSource {
    fn fetch_revocations(&self, since_version: i64) -> BoxFuture<'_, anyhow::Result<ListRevocationsResponse>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let mut request = self.tokens.authorize(ListRevocationsRequest { since_version }).await?;
            request.set_timeout(std::time::Duration::from_secs(3));
            Ok(client.list_revocations(request).await?.into_inner())
        })
    }
}
