//! Verifying cosign signatures of a manifest digest with the operator's keys.
//!
//! One signature is checked in this order, cheapest and least trusting first: sizes, then the
//! base64 and DER encoding, then the ECDSA signature over the payload bytes, and only then is
//! the (now authenticated) payload parsed and its type and digest compared. The payload is
//! never parsed unless a configured key signed it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Verifier;

use crate::digest::check_digest;
use crate::error::shorten_to;
use crate::payload::{self, VerifiedPayload};
use crate::{PublicKey, SignatureError};

/// Largest payload accepted, in bytes. cosign's payloads are about 250 bytes plus annotations.
pub const MAX_PAYLOAD_LEN: usize = 64 * 1024;

/// Largest base64 signature accepted, in bytes. A DER P-256 signature is at most 72 bytes, 96
/// in base64.
pub const MAX_SIGNATURE_LEN: usize = 1024;

/// Most signatures [`verify_any`] looks at for one artifact. Each costs one ECDSA verification
/// per key; a registry offering more is refused rather than trusted to be patient with.
pub const MAX_SIGNATURES: usize = 64;

/// How many per-signature reasons a [`SignatureError::NoValidSignature`] lists.
const MAX_LISTED_FAILURES: usize = 8;

/// Longest per-signature reason, in characters: room for a fingerprint and two digests.
const MAX_FAILURE_LEN: usize = 320;

/// Verifies one cosign signature: `signature_b64` (the [`crate::SIGNATURE_ANNOTATION`] value)
/// must be `key`'s ECDSA P-256 / SHA-256 signature over exactly `payload` (the layer blob), and
/// the payload must be a cosign image signature for `expected_digest` — the digest of the
/// manifest actually pulled.
///
/// Returns what the payload says. A genuine signature for another digest is refused
/// ([`SignatureError::DigestMismatch`]): otherwise a signature could be copied onto any other
/// artifact the key ever signed.
pub fn verify(
    key: &PublicKey,
    payload: &[u8],
    signature_b64: &str,
    expected_digest: &str,
) -> Result<VerifiedPayload, SignatureError> {
    check_digest(expected_digest)?;
    let signature = decode(payload, signature_b64)?;
    check_signature(key, payload, &signature)?;
    payload::check(payload, expected_digest)
}

/// Verifies an artifact that has several signatures against several trusted keys: accepted as
/// soon as any signature (a `(payload, signature_b64)` pair, one per layer of the signature
/// manifest) verifies with any key. Returns the fingerprint of that key and what it signed.
///
/// When none does, the error lists briefly why each signature failed (the first few), so an
/// operator can tell "signed with a key we do not trust" from "signed for another artifact".
pub fn verify_any(
    keys: &[PublicKey],
    signatures: &[(Vec<u8>, String)],
    expected_digest: &str,
) -> Result<(String, VerifiedPayload), SignatureError> {
    check_digest(expected_digest)?;
    if keys.is_empty() {
        return Err(SignatureError::NoKeys);
    }
    if signatures.is_empty() {
        return Err(SignatureError::NoSignatures);
    }
    if signatures.len() > MAX_SIGNATURES {
        return Err(SignatureError::TooManySignatures {
            count: signatures.len(),
            max: MAX_SIGNATURES,
        });
    }
    let mut failures = Vec::new();
    for (index, (payload, signature_b64)) in signatures.iter().enumerate() {
        match verify_with_keys(keys, payload, signature_b64, expected_digest) {
            Ok(accepted) => return Ok(accepted),
            Err(reason) => {
                if failures.len() < MAX_LISTED_FAILURES {
                    failures.push(format!(
                        "signature {}: {}",
                        index + 1,
                        shorten_to(&reason, MAX_FAILURE_LEN)
                    ));
                }
            }
        }
    }
    Err(SignatureError::NoValidSignature {
        count: signatures.len(),
        omitted: signatures.len() - failures.len(),
        failures,
    })
}

/// One signature against every key; the reason it failed, in a few words, if it did.
fn verify_with_keys(
    keys: &[PublicKey],
    payload: &[u8],
    signature_b64: &str,
    expected_digest: &str,
) -> Result<(String, VerifiedPayload), String> {
    let signature = decode(payload, signature_b64).map_err(|e| e.to_string())?;
    let key = keys
        .iter()
        .find(|key| check_signature(key, payload, &signature).is_ok())
        .ok_or_else(|| match keys {
            [key] => format!("does not verify with key {}", key.fingerprint()),
            _ => format!("does not verify with any of the {} keys", keys.len()),
        })?;
    let seen = payload::check(payload, expected_digest)
        .map_err(|e| format!("signed by key {}, but {e}", key.fingerprint()))?;
    Ok((key.fingerprint().to_owned(), seen))
}

/// Bounds the inputs, then decodes the base64 DER signature.
fn decode(payload: &[u8], signature_b64: &str) -> Result<Signature, SignatureError> {
    if payload.len() > MAX_PAYLOAD_LEN {
        return Err(SignatureError::PayloadTooLarge {
            len: payload.len(),
            max: MAX_PAYLOAD_LEN,
        });
    }
    if signature_b64.len() > MAX_SIGNATURE_LEN {
        return Err(SignatureError::SignatureTooLarge {
            len: signature_b64.len(),
            max: MAX_SIGNATURE_LEN,
        });
    }
    let der = STANDARD
        .decode(signature_b64)
        .map_err(|e| SignatureError::SignatureEncoding {
            reason: format!("not standard base64: {e}"),
        })?;
    Signature::from_der(&der).map_err(|_| SignatureError::SignatureEncoding {
        reason: "not a DER-encoded ECDSA P-256 signature".to_owned(),
    })
}

fn check_signature(
    key: &PublicKey,
    payload: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    key.verifying_key()
        .verify(payload, signature)
        .map_err(|_| SignatureError::BadSignature {
            fingerprint: key.fingerprint().to_owned(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SigningKey;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
    const OTHER: &str = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f";
    const REPO: &str = "ghcr.io/bulkhead-dev/plugins/deny-latest";

    fn signed(key: &SigningKey, digest: &str) -> (Vec<u8>, String) {
        let signed = key.sign_manifest(REPO, digest).unwrap();
        (signed.payload, signed.signature_b64)
    }

    #[test]
    fn round_trip() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, DIGEST);
        let seen = verify(&key.public_key(), &payload, &signature, DIGEST).unwrap();
        assert_eq!(seen.docker_reference, REPO);
        assert_eq!(seen.manifest_digest, DIGEST);
    }

    #[test]
    fn wrong_key_is_refused_by_fingerprint() {
        let (signer, other) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let (payload, signature) = signed(&signer, DIGEST);
        let error = verify(&other.public_key(), &payload, &signature, DIGEST).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "signature does not verify with key {}",
                other.public_key().fingerprint()
            )
        );
    }

    #[test]
    fn genuine_signature_for_another_digest_is_refused() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, OTHER);
        assert_eq!(
            verify(&key.public_key(), &payload, &signature, DIGEST).unwrap_err(),
            SignatureError::DigestMismatch {
                signed: OTHER.into(),
                expected: DIGEST.into()
            }
        );
    }

    #[test]
    fn tampered_payload_is_refused() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, OTHER);
        // The attacker rewrites the digest to the artifact's: the signature no longer matches.
        let forged = String::from_utf8(payload).unwrap().replace(OTHER, DIGEST);
        assert!(matches!(
            verify(&key.public_key(), forged.as_bytes(), &signature, DIGEST),
            Err(SignatureError::BadSignature { .. })
        ));
        // Even whitespace the JSON parser would not care about breaks the signature.
        let (payload, signature) = signed(&key, DIGEST);
        let mut spaced = payload.clone();
        spaced.push(b' ');
        assert!(matches!(
            verify(&key.public_key(), &spaced, &signature, DIGEST),
            Err(SignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_signatures_are_refused_as_encoding_errors() {
        let key = SigningKey::generate().unwrap();
        let (payload, _) = signed(&key, DIGEST);
        for bad in [
            "",
            "!!!",
            "MEUCIQ",
            "AAAA",
            "MAYCAAECAQE=",
            "MEQCIEap8SztITpq2TgzsJqIW+BB54EID7bW9cqSq8wNiF+9AiANSNvW5AzX/xriM32LwUsj9GqeEUEXsZg5EnQxud1GiQ==AA",
        ] {
            let error = verify(&key.public_key(), &payload, bad, DIGEST).unwrap_err();
            assert!(
                matches!(error, SignatureError::SignatureEncoding { .. }),
                "{bad:?}: {error:?}"
            );
        }
    }

    #[test]
    fn every_changed_byte_is_refused_without_panic() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, DIGEST);
        let public = key.public_key();
        for i in 0..payload.len() {
            let mut changed = payload.clone();
            changed[i] ^= 0x01;
            assert!(
                verify(&public, &changed, &signature, DIGEST).is_err(),
                "payload byte {i}"
            );
        }
        let der = STANDARD.decode(&signature).unwrap();
        for i in 0..der.len() {
            let mut changed = der.clone();
            changed[i] ^= 0x01;
            let changed = STANDARD.encode(changed);
            assert!(
                verify(&public, &payload, &changed, DIGEST).is_err(),
                "signature byte {i}"
            );
        }
    }

    #[test]
    fn well_formed_but_wrong_signature_does_not_verify() {
        let key = SigningKey::generate().unwrap();
        let (payload, _) = signed(&key, DIGEST);
        // SEQUENCE { INTEGER 1, INTEGER 1 }: valid DER, valid scalars, not a signature.
        assert!(matches!(
            verify(&key.public_key(), &payload, "MAYCAQECAQE=", DIGEST),
            Err(SignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn raw_r_s_signature_is_not_taken_for_der() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, DIGEST);
        let der = STANDARD.decode(signature).unwrap();
        let raw = Signature::from_der(&der).unwrap().to_bytes();
        let error = verify(&key.public_key(), &payload, &STANDARD.encode(raw), DIGEST).unwrap_err();
        assert!(matches!(error, SignatureError::SignatureEncoding { .. }));
    }

    #[test]
    fn high_s_signatures_verify_as_go_makes_them() {
        // Go's ecdsa.SignASN1 does not normalize s; cosign signatures may have a high s.
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, DIGEST);
        let signature = Signature::from_der(&STANDARD.decode(signature).unwrap()).unwrap();
        let (r, s) = signature.split_scalars();
        let flipped = Signature::from_scalars(r, -*s).unwrap();
        let flipped = STANDARD.encode(flipped.to_der().as_bytes());
        verify(&key.public_key(), &payload, &flipped, DIGEST).unwrap();
    }

    #[test]
    fn oversized_inputs_are_refused_before_parsing() {
        let key = SigningKey::generate().unwrap();
        let big = vec![b'{'; MAX_PAYLOAD_LEN + 1];
        assert_eq!(
            verify(&key.public_key(), &big, "AAAA", DIGEST).unwrap_err(),
            SignatureError::PayloadTooLarge {
                len: MAX_PAYLOAD_LEN + 1,
                max: MAX_PAYLOAD_LEN
            }
        );
        let long = "A".repeat(MAX_SIGNATURE_LEN + 4);
        assert_eq!(
            verify(&key.public_key(), b"{}", &long, DIGEST).unwrap_err(),
            SignatureError::SignatureTooLarge {
                len: MAX_SIGNATURE_LEN + 4,
                max: MAX_SIGNATURE_LEN
            }
        );
    }

    #[test]
    fn signed_non_json_payload_is_refused_after_the_signature_check() {
        let key = SigningKey::generate().unwrap();
        let (_, signature) = signed(&key, DIGEST);
        // Unsigned garbage fails on the signature, never reaching the JSON parser.
        assert!(matches!(
            verify(&key.public_key(), b"not json", &signature, DIGEST),
            Err(SignatureError::BadSignature { .. })
        ));
    }

    #[test]
    fn malformed_expected_digest_is_refused() {
        let key = SigningKey::generate().unwrap();
        let (payload, signature) = signed(&key, DIGEST);
        let upper = DIGEST.to_uppercase();
        assert!(matches!(
            verify(&key.public_key(), &payload, &signature, &upper),
            Err(SignatureError::InvalidDigest { .. })
        ));
    }

    #[test]
    fn verify_any_accepts_any_signature_with_any_key() {
        let (a, b, c) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let signatures = vec![
            signed(&c, DIGEST),              // untrusted key
            signed(&a, OTHER),               // trusted key, another artifact
            (b"junk".to_vec(), "!!".into()), // garbage
            signed(&b, DIGEST),              // the good one
        ];
        let keys = [a.public_key(), b.public_key()];
        let (fingerprint, seen) = verify_any(&keys, &signatures, DIGEST).unwrap();
        assert_eq!(fingerprint, b.public_key().fingerprint());
        assert_eq!(seen.manifest_digest, DIGEST);
    }

    #[test]
    fn verify_any_says_why_each_signature_failed() {
        let (a, b, c) = (
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
            SigningKey::generate().unwrap(),
        );
        let signatures = vec![
            signed(&c, DIGEST),
            signed(&a, OTHER),
            (b"junk".to_vec(), "!!".into()),
        ];
        let keys = [a.public_key(), b.public_key()];
        let error = verify_any(&keys, &signatures, DIGEST).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("no valid signature among 3: "), "{text}");
        assert!(
            text.contains("signature 1: does not verify with any of the 2 keys"),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "signature 2: signed by key {}, but signed payload is for manifest {OTHER}",
                a.public_key().fingerprint()
            )),
            "{text}"
        );
        assert!(
            text.contains("signature 3: malformed signature encoding"),
            "{text}"
        );
    }

    #[test]
    fn verify_any_bounds_its_error() {
        let key = SigningKey::generate().unwrap();
        let junk = (vec![b'x'; 10], "A".repeat(MAX_SIGNATURE_LEN));
        let signatures = vec![junk; MAX_SIGNATURES];
        let error = verify_any(&[key.public_key()], &signatures, DIGEST).unwrap_err();
        let SignatureError::NoValidSignature {
            count,
            failures,
            omitted,
        } = &error
        else {
            panic!("{error:?}");
        };
        assert_eq!(
            (*count, failures.len(), *omitted),
            (
                MAX_SIGNATURES,
                MAX_LISTED_FAILURES,
                MAX_SIGNATURES - MAX_LISTED_FAILURES
            )
        );
        assert!(error.to_string().len() < 3000);
    }

    #[test]
    fn verify_any_refuses_empty_and_excessive_inputs() {
        let key = SigningKey::generate().unwrap();
        let one = vec![signed(&key, DIGEST)];
        assert_eq!(
            verify_any(&[], &one, DIGEST).unwrap_err(),
            SignatureError::NoKeys
        );
        assert_eq!(
            verify_any(&[key.public_key()], &[], DIGEST).unwrap_err(),
            SignatureError::NoSignatures
        );
        let many = vec![signed(&key, DIGEST); MAX_SIGNATURES + 1];
        assert_eq!(
            verify_any(&[key.public_key()], &many, DIGEST).unwrap_err(),
            SignatureError::TooManySignatures {
                count: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES
            }
        );
    }
}
