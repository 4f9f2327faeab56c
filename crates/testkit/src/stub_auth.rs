//! A stand-in for the auth service's key and revocation RPCs, served over
//! real gRPC on port 0, for testing verifiers without the whole auth service.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use folio_proto::auth::{
    GetJwksRequest, GetJwksResponse, IssueServiceTokenRequest, IssueServiceTokenResponse, Jwk, ListRevocationsRequest,
    ListRevocationsResponse,
    auth_internal_service_server::{AuthInternalService, AuthInternalServiceServer},
    auth_service_server::AuthServiceServer,
};
use folio_proto::stand_in::AuthServiceStandIn;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::keys::{TestClaims, TestKeys};

#[derive(Default)]
struct State {
    keys: Vec<Jwk>,
    revocations: ListRevocationsResponse,
}

/// The stand-in server. Dropping it stops the server.
pub struct StubAuth {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Clone)]
struct Handler {
    state: Arc<Mutex<State>>,
    jwks_fetches: Arc<AtomicUsize>,
    service_keys: Arc<TestKeys>,
}

impl StubAuth {
    /// Starts serving `keys` (and issuing service tokens signed with `service_keys`).
    pub async fn start(keys: Vec<Jwk>, service_keys: Arc<TestKeys>) -> Self {
        let state = Arc::new(Mutex::new(State {
            keys,
            revocations: ListRevocationsResponse { version: 1, ..Default::default() },
        }));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let handler = Handler { state: Arc::clone(&state), jwks_fetches: Arc::clone(&jwks_fetches), service_keys };
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(AuthServiceServer::new(handler.clone()))
                .add_service(AuthInternalServiceServer::new(handler))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self { addr, state, jwks_fetches, _stop: stop }
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the published keys.
    pub fn set_keys(&self, keys: Vec<Jwk>) {
        self.state.lock().expect("lock").keys = keys;
    }

    /// How often GetJwks was called.
    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Revokes a session; verifiers learn of it on their next poll.
    pub fn revoke_session(&self, session_id: &str) {
        let mut state = self.state.lock().expect("lock");
        state.revocations.revoked_session_ids.push(session_id.to_owned());
        state.revocations.version += 1;
    }
}

#[tonic::async_trait]
impl AuthServiceStandIn for Handler {
    async fn get_jwks(&self, _request: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
        let keys = self.state.lock().map_err(|_| Status::internal("lock"))?.keys.clone();
        Ok(Response::new(GetJwksResponse { keys }))
    }

    async fn issue_service_token(
        &self,
        request: Request<IssueServiceTokenRequest>,
    ) -> Result<Response<IssueServiceTokenResponse>, Status> {
        let request = request.into_inner();
        let scopes: Vec<&str> = request.scopes.iter().map(String::as_str).collect();
        let claims = TestClaims::service(&request.client_id, &scopes);
        let token = self.service_keys.sign(&claims);
        Ok(Response::new(IssueServiceTokenResponse {
            access_token: token,
            access_token_expires_at: Some(prost_types::Timestamp { seconds: claims.exp, nanos: 0 }),
            scopes: request.scopes,
        }))
    }
}

#[tonic::async_trait]
impl AuthInternalService for Handler {
    async fn list_revocations(
        &self,
        request: Request<ListRevocationsRequest>,
    ) -> Result<Response<ListRevocationsResponse>, Status> {
        if request.metadata().get("authorization").is_none() {
            return Err(Status::unauthenticated("service token required"));
        }
        let since = request.into_inner().since_version;
        let state = self.state.lock().map_err(|_| Status::internal("lock"))?;
        if since == state.revocations.version {
            return Ok(Response::new(ListRevocationsResponse {
                version: since,
                unchanged: true,
                ..Default::default()
            }));
        }
        Ok(Response::new(state.revocations.clone()))
    }
}
