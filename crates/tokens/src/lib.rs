//! Access tokens: verification against auth's published keys, revocations,
//! the caller's [`Principal`], and a service's own token.

mod layer;
mod principal;
mod remote;
mod service_token;
mod sources;
mod verifier;

pub use layer::{
    AuthLayer, Authenticate, CLIENT_IP_HEADER, ClientIp, GATEWAY_CLIENT_ID, GATEWAY_IDENTITY, GATEWAY_TOKEN_HEADER,
    PUBLIC_RPCS, bearer_token, is_public,
};
pub use principal::{AccessClaims, Principal, PrincipalKind, principal, roles, scopes};
pub use remote::{RemoteAuth, ServiceClientSettings, remote_auth};
pub use service_token::ServiceTokenProvider;
pub use sources::{GrpcKeySource, GrpcRevocationSource, KeySource, RevocationSource};
pub use verifier::{AUDIENCE, ISSUER, MAX_ACCESS_TOKEN_LIFETIME, REVOCATION_CHANNEL, TokenVerifier, VerifierSettings};
