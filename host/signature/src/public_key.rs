//! The operator's verification key: an ECDSA P-256 public key in PEM, as `cosign.pub`.
//!
//! `cosign generate-key-pair` writes the public half as a PEM SubjectPublicKeyInfo
//! (`-----BEGIN PUBLIC KEY-----`). Only P-256 is accepted; a key of any other algorithm is refused
//! by name, so a misconfigured key is found when the config is loaded, not when the first
//! signature fails to verify.

use std::fmt;

use p256::ecdsa::VerifyingKey;
use p256::pkcs8::der::{Decode, pem};
use p256::pkcs8::spki::{ObjectIdentifier, SubjectPublicKeyInfoRef};
use p256::pkcs8::{DecodePublicKey, EncodePublicKey, LineEnding};
use sha2::{Digest, Sha256};

use crate::SignatureError;
use crate::digest::hex;

/// Longest PEM text read, in bytes: a P-256 public key is under 200; anything much larger is not
/// a key and is refused before decoding.
pub(crate) const MAX_PEM_LEN: usize = 16 * 1024;

const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// DER of a P-256 SubjectPublicKeyInfo up to the uncompressed point: SEQUENCE { SEQUENCE {
/// id-ecPublicKey, prime256v1 }, BIT STRING (66 bytes) { 0 unused bits, ... } }. Followed by the
/// 65-byte point it is the whole SPKI, so the fingerprint needs no fallible encoder.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// An ECDSA P-256 public key that signatures are verified with.
///
/// Keys are named in logs and errors by [`PublicKey::fingerprint`], never by their PEM. Two
/// encodings of one key (compressed or not) are equal and have the same fingerprint.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    fingerprint: String,
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl PublicKey {
    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding an ECDSA P-256 key, such as the
    /// `cosign.pub` that `cosign generate-key-pair` writes.
    ///
    /// Refuses, saying why: text that is not PEM, a PEM of another kind (a private key or a
    /// certificate given by mistake), a key of another algorithm or curve (RSA, Ed25519, P-384,
    /// ...), and a P-256 point that is not on the curve.
    pub fn from_pem(pem_text: &str) -> Result<Self, SignatureError> {
        let invalid = |reason: String| SignatureError::PublicKeyPem { reason };
        if pem_text.len() > MAX_PEM_LEN {
            return Err(invalid(format!(
                "{} bytes, more than {MAX_PEM_LEN}",
                pem_text.len()
            )));
        }
        let (label, der) =
            pem::decode_vec(pem_text.trim().as_bytes()).map_err(|e| invalid(e.to_string()))?;
        if label != PUBLIC_KEY_LABEL {
            return Err(invalid(wrong_label_hint(label)));
        }
        let spki = SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| invalid(format!("not a SubjectPublicKeyInfo: {e}")))?;
        let parameters = spki
            .algorithm
            .parameters
            .and_then(|any| any.decode_as::<ObjectIdentifier>().ok());
        if spki.algorithm.oid != oid::EC_PUBLIC_KEY || parameters != Some(oid::P256) {
            return Err(SignatureError::UnsupportedKey {
                algorithm: algorithm_name(spki.algorithm.oid, parameters),
            });
        }
        let key = VerifyingKey::from_public_key_der(&der)
            .map_err(|e| invalid(format!("not a valid P-256 public key: {e}")))?;
        Ok(Self::from_verifying_key(key))
    }

    /// Wraps a key already checked to be P-256, computing its fingerprint.
    pub(crate) fn from_verifying_key(key: VerifyingKey) -> Self {
        let point = key.to_encoded_point(false);
        let mut spki = Sha256::new();
        spki.update(P256_SPKI_PREFIX);
        spki.update(point.as_bytes());
        let fingerprint = hex(&spki.finalize());
        Self { key, fingerprint }
    }

    /// Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo (uncompressed point): a short,
    /// stable name for the key in logs and errors, the same as
    /// `openssl pkey -pubin -in cosign.pub -outform DER | sha256sum` prints.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key as PEM `PUBLIC KEY`, in the form cosign writes `cosign.pub` (for an author command
    /// that creates a key pair).
    pub fn to_pem(&self) -> Result<String, SignatureError> {
        self.key
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SignatureError::PublicKeyPem {
                reason: format!("cannot encode key: {e}"),
            })
    }

    /// The underlying RustCrypto key, for verification.
    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// What a PEM block with another label probably is, and what to give instead.
fn wrong_label_hint(label: &str) -> String {
    let hint = if label.contains("PRIVATE KEY") {
        "this is a private key; configure the public key (cosign.pub) instead"
    } else if label == "CERTIFICATE" {
        "this is a certificate; give its public key (openssl x509 -pubkey -noout)"
    } else {
        "expected -----BEGIN PUBLIC KEY-----"
    };
    format!("PEM block is {label:?}: {hint}")
}

/// Object identifiers of the key algorithms and curves named in errors.
pub(crate) mod oid {
    use p256::pkcs8::spki::ObjectIdentifier;

    /// id-ecPublicKey (RFC 5480): an elliptic curve key; the curve is in the parameters.
    pub const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// secp256r1, a.k.a. P-256 or prime256v1: the one curve accepted.
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

    /// Known algorithms and curves, by OID, for naming refused keys.
    pub const NAMES: &[(&str, &str)] = &[
        ("1.3.132.0.34", "ECDSA P-384"),
        ("1.3.132.0.35", "ECDSA P-521"),
        ("1.3.132.0.10", "ECDSA secp256k1"),
        ("1.3.101.112", "Ed25519"),
        ("1.3.101.113", "Ed448"),
        ("1.2.840.113549.1.1.1", "RSA"),
        ("1.2.840.113549.1.1.10", "RSA-PSS"),
        ("1.2.840.10040.4.1", "DSA"),
    ];
}

/// A readable name for a key algorithm (and, for EC keys, its curve).
pub(crate) fn algorithm_name(
    algorithm: ObjectIdentifier,
    curve: Option<ObjectIdentifier>,
) -> String {
    let name = |id: ObjectIdentifier| {
        let dotted = id.to_string();
        oid::NAMES
            .iter()
            .find(|(known, _)| *known == dotted)
            .map_or_else(|| format!("OID {dotted}"), |(_, name)| (*name).to_owned())
    };
    if algorithm == oid::EC_PUBLIC_KEY {
        match curve {
            Some(curve) => name(curve),
            None => "an EC key without a named curve".to_owned(),
        }
    } else {
        name(algorithm)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A P-256 key generated once with `openssl genpkey`; its public half.
    pub(crate) const OPENSSL_P256_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESnkSLazFUa/4N7ENrNAPYa88OwMs
efuaq06BxRa1XOySRzS4RN/nBVFWq2tfhG1L5VoDJ1LKttHoEyo5j+NkAg==
-----END PUBLIC KEY-----
";
    /// `openssl pkey -pubin -outform DER | sha256sum` of [`OPENSSL_P256_PUB`].
    const OPENSSL_P256_FINGERPRINT: &str =
        "d45876b19dfa3bd4e1f404380007bed9acf4221106dfacb38aa024aada7dd60a";

    const P384_PUB: &str = "-----BEGIN PUBLIC KEY-----
MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEz0FxN8qpNGcP4RY08mHgR36cHC4SmOIc
iwBKxC08OgWnlGByBTLhIPkWsYIbEWpKi1wSKsmENa+o+0JQtlwZlsDQK6bSSot1
xZo38rD9OqJWnfRSZFz8LWmc3Epm/MaB
-----END PUBLIC KEY-----";
    const SECP256K1_PUB: &str = "-----BEGIN PUBLIC KEY-----
MFYwEAYHKoZIzj0CAQYFK4EEAAoDQgAEXRKzpDukG5geCYHAI8du286Qmu6Fe+Db
paY9IsKBQyluxD7yFUv9vfN2nf5cDxaq0J4Tv4sCRPH6i+hPn0YXKw==
-----END PUBLIC KEY-----";
    const ED25519_PUB: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAjsNEYgjG3FBoQlciTHQPYrdvyQz9LNJSQCKzotX6hmQ=
-----END PUBLIC KEY-----";
    const RSA_PUB: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDREjMKIq5DZm1729iiXagqhbO9
gL6Gh/ctj78cG8cQ/b1vJbpGX3FWvWn2JgNTqSU2YSvJUKDtHIfTmmcGFZrQTLp4
/+xXaHTPwkYtVmlj+UrkQv1VYlRu/pTScX8bgVZh1t/HmmLgnQYBNjuVoahh9VJC
0qor55qgDgaU5ujsvQIDAQAB
-----END PUBLIC KEY-----";

    fn unsupported(pem: &str) -> String {
        match PublicKey::from_pem(pem) {
            Err(SignatureError::UnsupportedKey { algorithm }) => algorithm,
            other => panic!("expected UnsupportedKey, got {other:?}"),
        }
    }

    fn invalid(pem: &str) -> String {
        match PublicKey::from_pem(pem) {
            Err(SignatureError::PublicKeyPem { reason }) => reason,
            other => panic!("expected PublicKeyPem, got {other:?}"),
        }
    }

    #[test]
    fn openssl_p256_key_is_read_and_fingerprinted_like_sha256sum() {
        let key = PublicKey::from_pem(OPENSSL_P256_PUB).unwrap();
        assert_eq!(key.fingerprint(), OPENSSL_P256_FINGERPRINT);
        assert_eq!(
            format!("{key:?}"),
            format!("PublicKey {{ fingerprint: {OPENSSL_P256_FINGERPRINT:?} }}")
        );
    }

    #[test]
    fn pem_round_trips() {
        let key = PublicKey::from_pem(OPENSSL_P256_PUB).unwrap();
        assert_eq!(key.to_pem().unwrap(), OPENSSL_P256_PUB);
    }

    #[test]
    fn surrounding_whitespace_is_tolerated() {
        let padded = format!("\n  {OPENSSL_P256_PUB}\n\n");
        assert_eq!(
            PublicKey::from_pem(&padded).unwrap(),
            PublicKey::from_pem(OPENSSL_P256_PUB).unwrap()
        );
    }

    #[test]
    fn other_curves_and_algorithms_are_refused_by_name() {
        assert_eq!(unsupported(P384_PUB), "ECDSA P-384");
        assert_eq!(unsupported(SECP256K1_PUB), "ECDSA secp256k1");
        assert_eq!(unsupported(ED25519_PUB), "Ed25519");
        assert_eq!(unsupported(RSA_PUB), "RSA");
        let message = PublicKey::from_pem(ED25519_PUB).unwrap_err().to_string();
        assert_eq!(
            message,
            "public key is Ed25519; only ECDSA P-256 keys are supported (as cosign generates)"
        );
    }

    #[test]
    fn private_keys_and_certificates_are_refused_with_a_hint() {
        let private = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----";
        assert!(invalid(private).contains("configure the public key"));
        let cosign = "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----";
        assert!(invalid(cosign).contains("private key"));
        let cert = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----";
        assert!(invalid(cert).contains("openssl x509 -pubkey"));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "not a key",
            "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAESnkSLazFUa/4N7ENrNAPYa88OwMs\n-----END PUBLIC KEY-----",
        ] {
            invalid(bad);
        }
    }

    #[test]
    fn point_off_the_curve_is_refused() {
        // OPENSSL_P256_PUB with the last byte of the point's y coordinate changed.
        let (_, mut der) = pem::decode_vec(OPENSSL_P256_PUB.as_bytes()).unwrap();
        let last = der.len() - 1;
        der[last] ^= 1;
        let pem = pem::encode_string(PUBLIC_KEY_LABEL, LineEnding::LF, &der).unwrap();
        assert!(invalid(&pem).contains("not a valid P-256 public key"));
    }

    #[test]
    fn oversized_pem_is_refused_before_decoding() {
        let huge = "A".repeat(MAX_PEM_LEN + 1);
        assert!(invalid(&huge).contains("more than"));
    }
}
