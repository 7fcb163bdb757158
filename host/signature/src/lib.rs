//! bulkhead-signature: cosign-compatible signing and verification of OCI artifacts, with keys.
//!
//! Plugins pulled from an OCI registry are only run if a key the operator trusts signed the
//! exact manifest that was pulled. This crate is that check, in the format cosign uses for key
//! pairs (`cosign generate-key-pair`, `cosign sign --key`), so authors can sign with cosign and
//! operators verify with bulkhead, or the other way round. It is pure and offline: no network,
//! no transparency log, no certificates (keyless signing is out of scope). Fetching is the
//! caller's job:
//!
//! 1. resolve the artifact's manifest digest, say `sha256:abc…`;
//! 2. fetch the manifest tagged [`signature_tag`]`(digest)` (`sha256-abc….sig`) in the same
//!    repository; each layer of media type [`SIMPLE_SIGNING_MEDIA_TYPE`] is one signature: its
//!    blob is the payload (check the blob against its descriptor digest, as for any blob) and its
//!    [`SIGNATURE_ANNOTATION`] annotation the base64 signature;
//! 3. hand those pairs and the configured keys to [`verify_any`].
//!
//! - [`PublicKey`]: an operator's trusted key (`cosign.pub`), named in logs by its fingerprint;
//! - [`SigningKey`]: an author's key (unencrypted PKCS#8 PEM) and [`SigningKey::sign_manifest`];
//! - [`verify`] / [`verify_any`]: the checks, which refuse a genuine signature made for another
//!   digest.
//!
//! ```
//! use bulkhead_signature::{SigningKey, PublicKey, verify_any};
//!
//! # fn main() -> Result<(), bulkhead_signature::SignatureError> {
//! let digest = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
//!
//! // The author, once: a key pair; cosign.pub goes to operators.
//! let author = SigningKey::generate()?;
//! let cosign_pub = author.public_key().to_pem()?;
//! // At release: sign the pushed manifest's digest.
//! let signed = author.sign_manifest("ghcr.io/example/plugin", digest)?;
//!
//! // The operator: trust the key, verify what the registry returned.
//! let trusted = [PublicKey::from_pem(&cosign_pub)?];
//! let signatures = [(signed.payload, signed.signature_b64)];
//! let (fingerprint, seen) = verify_any(&trusted, &signatures, digest)?;
//! assert_eq!(fingerprint, trusted[0].fingerprint());
//! assert_eq!(seen.docker_reference, "ghcr.io/example/plugin");
//!
//! // The same signature does not vouch for any other manifest.
//! let other = "sha256:d34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33fd34db33f";
//! assert!(verify_any(&trusted, &signatures, other).is_err());
//! # Ok(()) }
//! ```

mod digest;
mod error;
mod payload;
mod public_key;
mod signing_key;
mod verify;

pub use digest::signature_tag;
pub use error::SignatureError;
pub use p256::elliptic_curve::zeroize::Zeroizing;
pub use payload::VerifiedPayload;
pub use public_key::PublicKey;
pub use signing_key::{SignedPayload, SigningKey};
pub use verify::{MAX_PAYLOAD_LEN, MAX_SIGNATURE_LEN, MAX_SIGNATURES, verify, verify_any};

/// Media type of a layer of a cosign signature manifest whose blob is a simple-signing payload.
/// Layers of other media types in the signature manifest are not signatures of this kind.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Annotation, on a signature layer's descriptor, holding the standard base64 DER ECDSA
/// signature over the layer blob.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The `critical.type` of a cosign image signature payload. Any other type is another kind of
/// signed statement and is refused.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";
