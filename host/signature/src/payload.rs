//! cosign's "simple signing" payload: the JSON document a signature is made over.
//!
//! ```json
//! {"critical":{"identity":{"docker-reference":"ghcr.io/org/plugin"},
//!              "image":{"docker-manifest-digest":"sha256:…"},
//!              "type":"cosign container image signature"},
//!  "optional":null}
//! ```
//!
//! (one line, no spaces, in exactly this member order: Go's `encoding/json` output of sigstore's
//! `SimpleContainerImage`; `optional` is `null` without annotations, an object with them). The
//! format comes from containers/image's signature format, whose rule is kept here: everything in
//! `critical` must be understood, so unknown members there (and at the top level) are refused,
//! as are duplicate members — two parsers must never read two different digests from one
//! signed document.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::digest::check_digest;
use crate::error::shorten;
use crate::{COSIGN_SIGNATURE_TYPE, SignatureError};

/// Longest docker reference signed, in bytes (a repository name is at most 255 in practice).
const MAX_REFERENCE_LEN: usize = 512;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SimpleSigning {
    critical: Critical,
    #[serde(default)]
    optional: Option<Map<String, Value>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// What a verified signature vouches for.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPayload {
    /// `critical.identity.docker-reference`: the repository the signer said the artifact is
    /// from. cosign does not check it against where the artifact was pulled from; a caller that
    /// wants to pin it compares it itself.
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`, always equal to the digest verified against.
    pub manifest_digest: String,
    /// `optional`: annotations the signer added (`cosign sign -a key=value`); empty when none.
    pub annotations: Map<String, Value>,
}

/// The payload cosign signs for `manifest_digest` in repository `docker_reference`.
///
/// The reference is limited to the characters of a repository name, which Go's encoder and
/// serde_json write identically (neither escapes them), so the bytes are cosign's exactly.
pub(crate) fn build(
    docker_reference: &str,
    manifest_digest: &str,
) -> Result<Vec<u8>, SignatureError> {
    check_reference(docker_reference)?;
    check_digest(manifest_digest)?;
    let document = SimpleSigning {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_owned(),
            },
            image: Image {
                docker_manifest_digest: manifest_digest.to_owned(),
            },
            kind: COSIGN_SIGNATURE_TYPE.to_owned(),
        },
        optional: None,
    };
    serde_json::to_vec(&document).map_err(|e| SignatureError::PayloadNotJson {
        reason: e.to_string(),
    })
}

/// Parses a signed payload and checks it is a cosign image signature for `expected_digest`
/// (whose syntax the caller has checked).
pub(crate) fn check(
    payload: &[u8],
    expected_digest: &str,
) -> Result<VerifiedPayload, SignatureError> {
    let document: SimpleSigning =
        serde_json::from_slice(payload).map_err(|e| SignatureError::PayloadNotJson {
            reason: shorten(&e.to_string()),
        })?;
    let critical = document.critical;
    if critical.kind != COSIGN_SIGNATURE_TYPE {
        return Err(SignatureError::PayloadType {
            found: shorten(&critical.kind),
        });
    }
    if critical.image.docker_manifest_digest != expected_digest {
        return Err(SignatureError::DigestMismatch {
            signed: shorten(&critical.image.docker_manifest_digest),
            expected: expected_digest.to_owned(),
        });
    }
    Ok(VerifiedPayload {
        docker_reference: critical.identity.docker_reference,
        manifest_digest: critical.image.docker_manifest_digest,
        annotations: document.optional.unwrap_or_default(),
    })
}

/// Checks `reference` is non-empty, bounded, and made of repository-name characters only
/// (letters, digits, `.`, `_`, `-`, `/`, `:` and `[`, `]` for a registry host and port).
fn check_reference(reference: &str) -> Result<(), SignatureError> {
    let valid = !reference.is_empty()
        && reference.len() <= MAX_REFERENCE_LEN
        && reference.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'[' | b']')
        });
    if valid {
        Ok(())
    } else {
        Err(SignatureError::InvalidReference {
            reference: shorten(reference),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f";
    const OTHER: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    fn payload(critical_extra: &str, rest: &str) -> String {
        format!(
            r#"{{"critical":{{"identity":{{"docker-reference":"example.com/app"}},"image":{{"docker-manifest-digest":"{DIGEST}"}},"type":"cosign container image signature"{critical_extra}}}{rest}}}"#
        )
    }

    #[test]
    fn built_payload_is_checked_back() {
        let built = build("registry.local:5000/team/app", DIGEST).unwrap();
        let seen = check(&built, DIGEST).unwrap();
        assert_eq!(seen.docker_reference, "registry.local:5000/team/app");
        assert_eq!(seen.manifest_digest, DIGEST);
        assert!(seen.annotations.is_empty());
    }

    #[test]
    fn annotations_are_returned() {
        let text = payload(
            "",
            r#","optional":{"creator":"atomic","timestamp":1458239713}"#,
        );
        let seen = check(text.as_bytes(), DIGEST).unwrap();
        assert_eq!(seen.annotations["creator"], "atomic");
        assert_eq!(seen.annotations["timestamp"], 1458239713);
    }

    #[test]
    fn optional_may_be_null_or_missing() {
        check(payload("", r#","optional":null"#).as_bytes(), DIGEST).unwrap();
        check(payload("", "").as_bytes(), DIGEST).unwrap();
        assert!(matches!(
            check(payload("", r#","optional":5"#).as_bytes(), DIGEST),
            Err(SignatureError::PayloadNotJson { .. })
        ));
    }

    #[test]
    fn other_digest_is_refused() {
        let error = check(payload("", "").as_bytes(), OTHER).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("signed payload is for manifest {DIGEST}, not the artifact's {OTHER}")
        );
    }

    #[test]
    fn other_type_is_refused() {
        let text = payload("", "").replace(
            "cosign container image signature",
            "atomic container signature",
        );
        assert_eq!(
            check(text.as_bytes(), DIGEST).unwrap_err(),
            SignatureError::PayloadType {
                found: "atomic container signature".into()
            }
        );
    }

    #[test]
    fn unknown_critical_members_are_refused() {
        let text = payload(r#","extra":1"#, "");
        assert!(matches!(
            check(text.as_bytes(), DIGEST),
            Err(SignatureError::PayloadNotJson { .. })
        ));
        let top = payload("", r#","extra":1"#);
        assert!(matches!(
            check(top.as_bytes(), DIGEST),
            Err(SignatureError::PayloadNotJson { .. })
        ));
    }

    #[test]
    fn duplicate_digest_member_is_refused() {
        let text = payload("", "").replace(
            r#""image":{"#,
            &format!(r#""image":{{"docker-manifest-digest":"{OTHER}","#),
        );
        assert!(matches!(
            check(text.as_bytes(), OTHER),
            Err(SignatureError::PayloadNotJson { .. })
        ));
        assert!(matches!(
            check(text.as_bytes(), DIGEST),
            Err(SignatureError::PayloadNotJson { .. })
        ));
    }

    #[test]
    fn non_json_and_wrong_shapes_are_refused() {
        for bad in [
            &b""[..],
            b"null",
            b"[]",
            b"{}",
            b"\xff\xfe",
            b"{\"critical\":{}}",
            &[b'['; 10_000],
        ] {
            assert!(matches!(
                check(bad, DIGEST),
                Err(SignatureError::PayloadNotJson { .. })
            ));
        }
    }

    #[test]
    fn references_outside_the_repository_alphabet_are_not_signed() {
        for bad in [
            "",
            "a b",
            "x\"y",
            "a<b",
            "repo@sha256:abc",
            "é",
            &"a".repeat(MAX_REFERENCE_LEN + 1),
        ] {
            assert!(
                matches!(
                    build(bad, DIGEST),
                    Err(SignatureError::InvalidReference { .. })
                ),
                "{bad:?}"
            );
        }
        build("[::1]:5000/a_b/c-d.e", DIGEST).unwrap();
    }
}
