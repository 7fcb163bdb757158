//! bulkhead's containerd gRPC layer: what NRI v0.8 does not tell a plugin, and the one way to
//! change what NRI cannot.
//!
//! NRI v0.8 (containerd 2.0/2.1) carries neither the image digest nor the security-relevant parts
//! of the OCI spec (capabilities, seccomp, user, no_new_privileges, read-only rootfs). This crate
//! gets them from containerd's own gRPC API on its main socket, and hardens a container by
//! patching its stored spec with `Containers.Update` — done in the NRI PostCreateContainer
//! handler, the task created at start then reads the patched spec — and reading it back to prove
//! every change took.
//!
//! - [`mod@reference`]: image reference normalization (`busybox` → `docker.io/library/busybox:latest`);
//! - [`client`]: the gRPC channel, with the containerd namespace header on every request;
//! - [`image`]: image name, digest or id → digests and image config, cached by digest;
//! - [`spec`]: the stored OCI spec: read, facts for policy, pure hardening functions, update and
//!   verify;
//! - [`container`]: one CRI container inspected in one go — spec, facts (with its pod's
//!   namespaces) and the exact image CRI created it from; its record labels and CRI config (what
//!   NRI builds labels and pod metadata from).
//!
//! Plain containerd gRPC calls are safe inside NRI handlers (unlike CRI or NRI calls, which
//! deadlock on containerd's NRI lock).
//!
//! ```no_run
//! # async fn demo() -> bulkhead_containerd::Result<()> {
//! use bulkhead_containerd::{Containerd, Hardening};
//! use oci_spec::runtime::Capability;
//!
//! let containerd = Containerd::connect("/run/containerd/containerd.sock").await?;
//! let image = containerd.resolve_image("busybox").await?;
//! println!("{} is {}", image.as_written, image.digest);
//!
//! let inspection = containerd.inspect("0123abcd").await?; // at NRI PostCreateContainer
//! println!("privileged: {}", inspection.facts.privileged);
//!
//! let hardening = Hardening {
//!     keep_only_capabilities: Some([Capability::NetBindService].into()),
//!     no_new_privileges: true,
//!     ..Hardening::default()
//! };
//! let outcome = containerd.harden("0123abcd", &hardening).await?; // read, patch, update, verify
//! println!("hardened in {:?}", outcome.elapsed);
//! # Ok(()) }
//! ```

pub mod client;
pub mod container;
mod error;
pub mod image;
pub mod reference;
pub mod spec;

pub use client::{Containerd, DEFAULT_NAMESPACE};
pub use container::{CriConfig, CriImageSpec, CriMetadata, CriRecord, Inspection, StoredContainer};
pub use error::{Error, Result};
pub use image::{ImageConfig, ImageInfo};
pub use reference::Reference;
pub use spec::{HardenOutcome, Hardening, Missing, SpecFacts};
