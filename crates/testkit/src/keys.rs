//! Ed25519 keys that mint access tokens the way auth does, and the broken
//! tokens verifiers must refuse.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use folio_proto::auth::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// An Ed25519 signing key with its key id.
pub struct TestKeys {
    /// The key id tokens name.
    pub kid: String,
    signing: SigningKey,
}

/// Claims of a test token; fields mirror Folio's access-token claims.
#[derive(Debug, Clone, Serialize)]
pub struct TestClaims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject.
    pub sub: String,
    /// Session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Token id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Roles.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Scopes, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl TestClaims {
    /// A valid five-minute user token with a fresh session.
    pub fn user(subject: &str, roles: &[&str]) -> Self {
        let now = chrono::Utc::now().timestamp();
        Self {
            iss: "folio-auth".to_owned(),
            aud: "folio".to_owned(),
            sub: subject.to_owned(),
            sid: Some(uuid::Uuid::new_v4().to_string()),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            nbf: now,
            exp: now + 300,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            scope: None,
        }
    }

    /// A valid five-minute service token.
    pub fn service(client_id: &str, scopes: &[&str]) -> Self {
        Self { sid: None, roles: Vec::new(), scope: Some(scopes.join(" ")), ..Self::user(client_id, &[]) }
    }
}

impl TestKeys {
    /// A fresh random key.
    pub fn generate() -> Self {
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        Self { kid: uuid::Uuid::new_v4().simple().to_string(), signing }
    }

    /// The public key as auth publishes it.
    pub fn jwk(&self) -> Jwk {
        Jwk {
            kty: "OKP".to_owned(),
            crv: "Ed25519".to_owned(),
            x: URL_SAFE_NO_PAD.encode(self.signing.verifying_key().to_bytes()),
            kid: self.kid.clone(),
            alg: "EdDSA".to_owned(),
            r#use: "sig".to_owned(),
        }
    }

    /// The raw public key bytes.
    pub fn public_bytes(&self) -> [u8; 32] {
        self.signing.verifying_key().to_bytes()
    }

    /// Signs `claims` as a proper access token.
    pub fn sign(&self, claims: &TestClaims) -> String {
        self.sign_with(claims, Some("at+jwt"), Some(&self.kid))
    }

    /// Signs with EdDSA but a chosen `typ` and `kid`.
    pub fn sign_with(&self, claims: &TestClaims, typ: Option<&str>, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = typ.map(str::to_owned);
        header.kid = kid.map(str::to_owned);
        let der = self.signing.to_pkcs8_der().expect("pkcs8");
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).expect("sign")
    }

    /// The classic confusion attack: HS256 keyed with the public key.
    pub fn sign_hs256_with_public_key(&self, claims: &TestClaims) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(self.kid.clone());
        let encoded = jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&self.public_bytes()));
        encoded.expect("sign hs256")
    }

    /// An unsigned token (`alg: none`).
    pub fn unsigned(&self, claims: &TestClaims) -> String {
        let header = serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": self.kid});
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_string(claims).expect("claims"));
        format!("{header}.{payload}.")
    }
}
