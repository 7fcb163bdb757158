//! The author's signing key, and signing a manifest digest the way `cosign sign --key` does.
//!
//! cosign's own encrypted private key format (`ENCRYPTED SIGSTORE PRIVATE KEY`, scrypt +
//! secretbox) is not read: keys are unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as
//! `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256` writes. Signatures are what
//! cosign produces: ECDSA P-256 over SHA-256 of the payload bytes, DER-encoded, standard base64.
//! RustCrypto signs deterministically (RFC 6979) where cosign draws a random nonce; both verify
//! the same way.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey as EcdsaSigningKey};
use p256::elliptic_curve::zeroize::Zeroizing;
use p256::pkcs8::der::{Decode, pem};
use p256::pkcs8::spki::ObjectIdentifier;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, PrivateKeyInfo};

use crate::public_key::{MAX_PEM_LEN, algorithm_name, oid};
use crate::{PublicKey, SignatureError, payload};

const PRIVATE_KEY_LABEL: &str = "PRIVATE KEY";

/// How many 32-byte draws [`SigningKey::generate`] makes before giving up. A draw is unusable
/// only if it is zero or not below the curve order, with probability about 2^-32 each.
const GENERATE_ATTEMPTS: usize = 8;

/// An ECDSA P-256 private key that signs manifest digests.
///
/// `Debug` prints only the public key's fingerprint; the secret leaves only through
/// [`SigningKey::to_pkcs8_pem`], in a buffer wiped on drop.
pub struct SigningKey {
    key: EcdsaSigningKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let public = self.public_key();
        f.debug_struct("SigningKey")
            .field("public_key", &public.fingerprint())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A signed simple-signing payload: what goes into a cosign signature manifest.
///
/// `payload` is the layer blob (media type [`crate::SIMPLE_SIGNING_MEDIA_TYPE`]) and
/// `signature_b64` the value of its [`crate::SIGNATURE_ANNOTATION`] annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPayload {
    /// The simple-signing JSON, byte for byte as cosign writes it.
    pub payload: Vec<u8>,
    /// Standard base64 of the DER ECDSA signature over `payload`.
    pub signature_b64: String,
}

impl SigningKey {
    /// A fresh random key from the operating system's random source, for a new key pair.
    pub fn generate() -> Result<Self, SignatureError> {
        for _ in 0..GENERATE_ATTEMPTS {
            let mut bytes = Zeroizing::new([0u8; 32]);
            getrandom::fill(bytes.as_mut_slice()).map_err(|e| SignatureError::Random {
                reason: e.to_string(),
            })?;
            if let Ok(key) = EcdsaSigningKey::from_slice(bytes.as_slice()) {
                return Ok(Self { key });
            }
        }
        Err(SignatureError::Random {
            reason: "no usable key after several draws".to_owned(),
        })
    }

    /// Reads an unencrypted PKCS#8 PEM EC P-256 private key (`-----BEGIN PRIVATE KEY-----`).
    ///
    /// Refuses cosign's encrypted key format, SEC1 `EC PRIVATE KEY` PEMs and keys of other
    /// algorithms or curves, saying which. Errors never include key material.
    pub fn from_pkcs8_pem(pem_text: &str) -> Result<Self, SignatureError> {
        let invalid = |reason: String| SignatureError::PrivateKeyPem { reason };
        if pem_text.len() > MAX_PEM_LEN {
            return Err(invalid(format!(
                "{} bytes, more than {MAX_PEM_LEN}",
                pem_text.len()
            )));
        }
        let pem_text = pem_text.trim();
        let label = pem::decode_label(pem_text.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        if label != PRIVATE_KEY_LABEL {
            return Err(invalid(wrong_label_hint(label)));
        }
        let (_, der) = pem::decode_vec(pem_text.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let der = Zeroizing::new(der);
        let info = PrivateKeyInfo::from_der(&der)
            .map_err(|e| invalid(format!("not a PKCS#8 PrivateKeyInfo: {e}")))?;
        let curve = info
            .algorithm
            .parameters
            .and_then(|any| any.decode_as::<ObjectIdentifier>().ok());
        if info.algorithm.oid != oid::EC_PUBLIC_KEY || curve != Some(oid::P256) {
            let algorithm = algorithm_name(info.algorithm.oid, curve);
            return Err(invalid(format!(
                "key is {algorithm}; only ECDSA P-256 keys are supported"
            )));
        }
        let key = EcdsaSigningKey::from_pkcs8_der(&der)
            .map_err(|e| invalid(format!("not a valid P-256 private key: {e}")))?;
        Ok(Self { key })
    }

    /// The key as unencrypted PKCS#8 PEM, for writing a newly generated key to a file the
    /// author keeps private. The text is wiped from memory when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, SignatureError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| SignatureError::PrivateKeyPem {
                reason: format!("cannot encode key: {e}"),
            })
    }

    /// The public half, to publish (as [`PublicKey::to_pem`]) for operators to verify with.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying_key(*self.key.verifying_key())
    }

    /// Signs `manifest_digest` as an artifact of the repository `docker_reference`, as
    /// `cosign sign --key` does: builds the simple-signing payload (no optional annotations)
    /// and signs its bytes.
    ///
    /// `docker_reference` is the repository without tag or digest (`ghcr.io/org/plugin`), which
    /// is what cosign writes; `manifest_digest` is `sha256:<64 lowercase hex>`. Both are checked,
    /// so no signature is ever made over a payload a verifier would refuse.
    pub fn sign_manifest(
        &self,
        docker_reference: &str,
        manifest_digest: &str,
    ) -> Result<SignedPayload, SignatureError> {
        let payload = payload::build(docker_reference, manifest_digest)?;
        let signature: Signature = self.key.sign(&payload);
        let signature_b64 = STANDARD.encode(signature.to_der().as_bytes());
        Ok(SignedPayload {
            payload,
            signature_b64,
        })
    }
}

/// What a PEM block with another label probably is, and what to give instead.
fn wrong_label_hint(label: &str) -> String {
    let hint = if label.contains("ENCRYPTED") {
        "cosign's encrypted key format is not supported; use an unencrypted PKCS#8 P-256 key"
    } else if label == "EC PRIVATE KEY" {
        "this is a SEC1 key; convert it with `openssl pkcs8 -topk8 -nocrypt`"
    } else if label == "PUBLIC KEY" {
        "this is a public key; signing needs the private key"
    } else {
        "expected -----BEGIN PRIVATE KEY-----"
    };
    format!("PEM block is {label:?}: {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::public_key::tests::OPENSSL_P256_PUB;

    /// The private half of [`OPENSSL_P256_PUB`], generated once with `openssl genpkey`.
    /// A test key only: it signs nothing but test vectors.
    const OPENSSL_P256_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgGiz0ca9a3UK6fjRF
9XtDEZqKnS38yhdMUUzYANVfonahRANCAARKeRItrMVRr/g3sQ2s0A9hrzw7Ayx5
+5qrToHFFrVc7JJHNLhE3+cFUVara1+EbUvlWgMnUsq20egTKjmP42QC
-----END PRIVATE KEY-----
";
    const OPENSSL_P384_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDD+EU/K6UONdwApjBTe
Ma3V16Kw5K24ndQyYY95J3LDoOQgjnEaRGafCsLBGearsTmhZANiAARUrjKd0TjR
8zFWZp468qlYjBpWxF+CdvARNc3GM8FfwzEDhl5r1jpIUqKCbffA3Okxtf9voWVw
OT4Iwcva3QLcQ7D1Fd8/rdZZ3dc1/O5VQPmjd/hu3EEPFWK/YpJHnlw=
-----END PRIVATE KEY-----";
    const OPENSSL_SEC1_KEY: &str = "-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIEDp9oV/sxFFbeeEeRA+VIxKEwevVnPBHACYm47RV8JuoAoGCCqGSM49
AwEHoUQDQgAEfFA0sgGapHsw7VlVNSc779iDTuvG5pk3psBZp5QwZBUtjtSxWBvy
vYyTTqWgZWn57AUKwVJ+zgnTF5tD5h8qpg==
-----END EC PRIVATE KEY-----";

    fn invalid(pem: &str) -> String {
        match SigningKey::from_pkcs8_pem(pem) {
            Err(SignatureError::PrivateKeyPem { reason }) => reason,
            other => panic!("expected PrivateKeyPem, got {other:?}"),
        }
    }

    #[test]
    fn openssl_pkcs8_key_is_read_and_matches_its_public_key() {
        let key = SigningKey::from_pkcs8_pem(OPENSSL_P256_KEY).unwrap();
        assert_eq!(
            key.public_key(),
            PublicKey::from_pem(OPENSSL_P256_PUB).unwrap()
        );
        assert_eq!(key.to_pkcs8_pem().unwrap().as_str(), OPENSSL_P256_KEY);
    }

    #[test]
    fn generated_keys_differ_and_round_trip_through_pem() {
        let a = SigningKey::generate().unwrap();
        let b = SigningKey::generate().unwrap();
        assert_ne!(a.public_key(), b.public_key());
        let reread = SigningKey::from_pkcs8_pem(&a.to_pkcs8_pem().unwrap()).unwrap();
        assert_eq!(reread.public_key(), a.public_key());
    }

    #[test]
    fn debug_does_not_show_the_secret() {
        let key = SigningKey::from_pkcs8_pem(OPENSSL_P256_KEY).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains("<redacted>"));
        assert!(debug.contains(key.public_key().fingerprint()));
    }

    #[test]
    fn payload_is_byte_for_byte_cosigns() {
        let key = SigningKey::from_pkcs8_pem(OPENSSL_P256_KEY).unwrap();
        let digest = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f";
        let signed = key.sign_manifest("example.com/test/image", digest).unwrap();
        // sigstore/sigstore pkg/signature/payload: the expected marshalling with no claims.
        assert_eq!(
            String::from_utf8(signed.payload).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"example.com/test/image"},"image":{"docker-manifest-digest":"sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn bad_reference_or_digest_is_not_signed() {
        let key = SigningKey::from_pkcs8_pem(OPENSSL_P256_KEY).unwrap();
        let digest = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f";
        assert!(matches!(
            key.sign_manifest("example.com/x\"}", digest),
            Err(SignatureError::InvalidReference { .. })
        ));
        assert!(matches!(
            key.sign_manifest("example.com/x", "sha256:d34db33f"),
            Err(SignatureError::InvalidDigest { .. })
        ));
    }

    #[test]
    fn other_key_formats_are_refused_with_a_hint() {
        assert!(invalid(OPENSSL_P384_KEY).contains("ECDSA P-384"));
        assert!(invalid(OPENSSL_SEC1_KEY).contains("openssl pkcs8 -topk8 -nocrypt"));
        assert!(invalid(OPENSSL_P256_PUB).contains("public key"));
        let cosign = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----";
        assert!(invalid(cosign).contains("encrypted key format is not supported"));
        invalid("");
        invalid("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----");
    }
}
