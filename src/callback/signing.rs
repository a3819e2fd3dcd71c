//! Standard Webhooks signatures for callbacks (`--callback-signing-secret`).
//!
//! Each attempt carries `webhook-id`, `webhook-timestamp` (Unix seconds of the attempt) and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`, as the Standard
//! Webhooks specification writes them, so a receiver can verify otk-mock's callbacks with any
//! Standard Webhooks library. The HMAC, SHA-256 and base64 come from the RustCrypto `hmac` and
//! `sha2` crates and the `base64` crate: signing code is not a place for home-made crypto.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The secret callbacks are signed with.
///
/// A secret written `whsec_<base64>` (the Standard Webhooks form) is base64-decoded and the
/// decoded bytes are the HMAC key; any other text is used as the key byte for byte (its UTF-8).
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret, not even in a debug dump of the configuration.
        write!(f, "SigningKey({} bytes)", self.0.len())
    }
}

/// Why a signing secret was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigningKeyError {
    #[error("the signing secret is empty")]
    Empty,
    #[error("the part after `whsec_` is not standard base64 ({0}); give the secret as Standard Webhooks prints it, or without the `whsec_` prefix to use the text itself")]
    NotBase64(String),
}

impl SigningKey {
    /// Read a secret as given on the command line.
    pub fn parse(text: &str) -> Result<SigningKey, SigningKeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(SigningKeyError::Empty);
        }
        match text.strip_prefix("whsec_") {
            Some(encoded) => {
                let key = STANDARD
                    .decode(encoded)
                    .map_err(|e| SigningKeyError::NotBase64(e.to_string()))?;
                if key.is_empty() {
                    return Err(SigningKeyError::Empty);
                }
                Ok(SigningKey(key))
            }
            None => Ok(SigningKey(text.as_bytes().to_vec())),
        }
    }

    /// The key bytes the HMAC uses.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// The `webhook-signature` value for one attempt: `v1,<base64 signature>`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC accepts keys of any length; the error arm cannot happen but must not panic.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.0) else {
            return String::new();
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // The example from the Standard Webhooks specification's reference implementations.
        let key = SigningKey::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = key.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn raw_secrets_are_used_as_text_and_bad_ones_refused() {
        assert_eq!(SigningKey::parse("s3cret").unwrap().bytes(), b"s3cret");
        assert_eq!(SigningKey::parse("  "), Err(SigningKeyError::Empty));
        assert!(matches!(
            SigningKey::parse("whsec_%%%"),
            Err(SigningKeyError::NotBase64(_))
        ));
        assert_eq!(
            format!("{:?}", SigningKey::parse("abc").unwrap()),
            "SigningKey(3 bytes)"
        );
    }
}
