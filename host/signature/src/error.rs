//! The one error type of bulkhead-signature.
//!
//! Messages are written for the operator who reads them in a log or a refused pull: they say
//! which check failed and, where it helps, which key (by fingerprint) or which digests were
//! involved. Anything that came from the registry (a digest, a type string) is shortened before
//! it is stored, so a hostile signature artifact cannot flood the logs through an error. No
//! variant carries private key material.

/// What can go wrong parsing keys, signing, or verifying a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not a PEM-encoded SubjectPublicKeyInfo (`-----BEGIN PUBLIC KEY-----`),
    /// as `cosign generate-key-pair` writes to `cosign.pub`.
    #[error("invalid public key PEM: {reason}")]
    PublicKeyPem {
        /// What is wrong with it.
        reason: String,
    },
    /// A well-formed public key of an algorithm or curve other than ECDSA P-256.
    #[error("public key is {algorithm}; only ECDSA P-256 keys are supported (as cosign generates)")]
    UnsupportedKey {
        /// The algorithm (and curve) found, by name where known, else by OID.
        algorithm: String,
    },
    /// The private key is not an unencrypted PKCS#8 PEM EC P-256 key
    /// (`-----BEGIN PRIVATE KEY-----`).
    #[error("invalid private key PEM: {reason}")]
    PrivateKeyPem {
        /// What is wrong with it.
        reason: String,
    },
    /// The operating system gave no random bytes for a new key.
    #[error("cannot get random bytes for a new signing key: {reason}")]
    Random {
        /// The error the OS returned.
        reason: String,
    },
    /// A manifest digest is not `sha256:` followed by 64 lowercase hex digits.
    #[error("invalid manifest digest {digest:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest {
        /// The digest (shortened).
        digest: String,
    },
    /// A docker reference to sign is empty, too long, or has characters outside a repository
    /// name (letters, digits, `.`, `_`, `-`, `/`, `:`, `[`, `]`).
    #[error(
        "invalid docker reference {reference:?}: expected a repository such as ghcr.io/org/plugin"
    )]
    InvalidReference {
        /// The reference (shortened).
        reference: String,
    },
    /// The payload is larger than [`crate::MAX_PAYLOAD_LEN`]; refused before any parsing.
    #[error("signed payload is {len} bytes, more than the {max} allowed")]
    PayloadTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The base64 signature is longer than [`crate::MAX_SIGNATURE_LEN`]; refused before decoding.
    #[error("signature is {len} bytes of base64, more than the {max} allowed")]
    SignatureTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The signature is not standard base64 of a DER-encoded ECDSA signature.
    #[error("malformed signature encoding: {reason}")]
    SignatureEncoding {
        /// Which layer is broken (base64 or DER) and how.
        reason: String,
    },
    /// The signature is well-formed but was not made over this payload with this key.
    #[error("signature does not verify with key {fingerprint}")]
    BadSignature {
        /// [`crate::PublicKey::fingerprint`] of the key tried.
        fingerprint: String,
    },
    /// The signed payload is not a simple-signing JSON document of the expected shape.
    #[error("signed payload is not a cosign simple-signing document: {reason}")]
    PayloadNotJson {
        /// The parse error (shortened).
        reason: String,
    },
    /// The signed payload's `critical.type` is not `cosign container image signature`: it is
    /// some other kind of signed statement and must not be taken as a signature of the image.
    #[error("signed payload has type {found:?}, expected {expected:?}", expected = crate::COSIGN_SIGNATURE_TYPE)]
    PayloadType {
        /// The type found (shortened).
        found: String,
    },
    /// The signature is genuine but was made for another manifest: a signature copied from a
    /// different (signed) artifact. Accepting it would let anyone who can push to the registry
    /// swap in any artifact the key ever signed.
    #[error("signed payload is for manifest {signed}, not the artifact's {expected}")]
    DigestMismatch {
        /// The digest in the signed payload (shortened).
        signed: String,
        /// The digest of the artifact being verified.
        expected: String,
    },
    /// [`crate::verify_any`] was given no keys: nothing could ever verify.
    #[error("no public keys configured to verify signatures with")]
    NoKeys,
    /// [`crate::verify_any`] was given no signatures: the artifact is unsigned.
    #[error("artifact has no signatures")]
    NoSignatures,
    /// [`crate::verify_any`] was given more than [`crate::MAX_SIGNATURES`] signatures.
    #[error("artifact has {count} signatures, more than the {max} checked")]
    TooManySignatures {
        /// How many there were.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// [`crate::verify_any`]: no signature verified with any key. Lists why each failed, bounded.
    #[error("no valid signature among {count}: {}{}", failures.join("; "), omitted_note(*omitted))]
    NoValidSignature {
        /// How many signatures were tried.
        count: usize,
        /// One short line per signature, in order, for the first few.
        failures: Vec<String>,
        /// How many more failed and are not listed.
        omitted: usize,
    },
}

fn omitted_note(omitted: usize) -> String {
    if omitted == 0 {
        String::new()
    } else {
        format!("; and {omitted} more")
    }
}

/// Longest piece of untrusted text kept in an error, in characters.
pub(crate) const MAX_ERROR_TEXT: usize = 100;

/// `text` cut to [`MAX_ERROR_TEXT`] characters, with an ellipsis when cut.
pub(crate) fn shorten(text: &str) -> String {
    shorten_to(text, MAX_ERROR_TEXT)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn shorten_to(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_short_text() {
        assert_eq!(shorten("sha256:abc"), "sha256:abc");
    }

    #[test]
    fn shorten_cuts_long_text_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_TEXT + 50);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), MAX_ERROR_TEXT + 3);
        assert!(short.ends_with("..."));
    }

    #[test]
    fn no_valid_signature_lists_failures_and_the_rest() {
        let error = SignatureError::NoValidSignature {
            count: 5,
            failures: vec!["signature 1: a".into(), "signature 2: b".into()],
            omitted: 3,
        };
        assert_eq!(
            error.to_string(),
            "no valid signature among 5: signature 1: a; signature 2: b; and 3 more"
        );
    }
}
