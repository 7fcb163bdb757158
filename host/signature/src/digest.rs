//! Manifest digests: their syntax, and the tag under which cosign stores an artifact's signatures.
//!
//! Only `sha256` digests are accepted, spelled as registries and cosign spell them: `sha256:`
//! then 64 lowercase hex digits. Checking the syntax once, here, lets the payload check compare
//! digests as plain strings: two spellings of one digest cannot both be valid.

use crate::SignatureError;
use crate::error::shorten;

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// Checks that `digest` is `sha256:<64 lowercase hex digits>`.
pub(crate) fn check_digest(digest: &str) -> Result<(), SignatureError> {
    let valid = digest.strip_prefix(PREFIX).is_some_and(|hex| {
        hex.len() == HEX_LEN && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    });
    if valid {
        Ok(())
    } else {
        Err(SignatureError::InvalidDigest {
            digest: shorten(digest),
        })
    }
}

/// The tag cosign stores the signatures of `manifest_digest` under, in the artifact's own
/// repository: `sha256:abc…` becomes `sha256-abc….sig`.
///
/// The fetching side resolves `<repository>:<this tag>` to find the signature manifest. The
/// digest is checked first, so a malformed one can never produce a tag that names something
/// else.
pub fn signature_tag(manifest_digest: &str) -> Result<String, SignatureError> {
    check_digest(manifest_digest)?;
    Ok(format!("sha256-{}.sig", &manifest_digest[PREFIX.len()..]))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

    #[test]
    fn signature_tag_is_cosigns_spelling() {
        assert_eq!(
            signature_tag(DIGEST).unwrap(),
            "sha256-6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b.sig"
        );
    }

    #[test]
    fn malformed_digests_are_refused() {
        for bad in [
            "",
            "sha256:",
            "6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
            "sha512:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
            "sha256:6C3C624B58DBBCD3C0DD82B4C53F04194D1247C6EEBDAAB7C610CF7D66709B3B",
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3",
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b0",
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3g",
            "sha256:../../6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d6670",
            "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709bé",
        ] {
            assert!(
                matches!(
                    signature_tag(bad),
                    Err(SignatureError::InvalidDigest { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
    }
}
