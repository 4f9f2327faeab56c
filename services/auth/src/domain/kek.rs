//! The key-encryption key: seals signing keys at rest (ChaCha20-Poly1305,
//! the key id bound as associated data).

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, aead::Aead, aead::Payload};
use secrecy::{ExposeSecret, SecretBox};

/// The key-encryption key that seals private keys at rest.
pub struct Kek(SecretBox<[u8; 32]>);

impl Kek {
    /// From base64 of 32 bytes.
    pub fn from_base64(encoded: &str) -> anyhow::Result<Self> {
        let bytes = STANDARD.decode(encoded.trim()).context("`auth.key_encryption_key` is not base64")?;
        let key: [u8; 32] =
            bytes.try_into().map_err(|_| anyhow::anyhow!("`auth.key_encryption_key` must decode to 32 bytes"))?;
        Ok(Self(SecretBox::new(Box::new(key))))
    }

    /// A fresh random key, base64.
    pub fn generate_base64() -> String {
        STANDARD.encode(rand::random::<[u8; 32]>())
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(self.0.expose_secret().into())
    }

    /// nonce ‖ ciphertext, base64; `kid` is bound as associated data so a
    /// sealed key cannot be swapped onto another row.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> anyhow::Result<String> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .cipher()
            .encrypt((&nonce).into(), Payload { msg: plaintext, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("sealing a signing key failed"))?;
        Ok(STANDARD.encode([nonce.as_slice(), &sealed].concat()))
    }

    pub fn open(&self, kid: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let raw = STANDARD.decode(sealed).context("sealed key is not base64")?;
        anyhow::ensure!(raw.len() > 12, "sealed key too short");
        let (nonce, ciphertext) = raw.split_at(12);
        self.cipher()
            .decrypt(nonce.into(), Payload { msg: ciphertext, aad: kid.as_bytes() })
            .map_err(|_| anyhow::anyhow!("signing key {kid} does not open with the configured key-encryption key"))
    }
}
