//! End-to-end test fixtures for bulkhead: a private containerd 2.1 (or 1.7, see [`Containerd`])
//! with NRI enabled, real runc containers, driven through the Kubernetes CRI API exactly as a
//! kubelet would.
//!
//! Every e2e test starts its own [`Testbed`]: a containerd with its own root, state, sockets and
//! images, in a short directory under the test bed state directory (`$BULKHEAD_TESTBED`, default
//! `<repo>/.testbed`). Tests therefore run in parallel and leave nothing behind: dropping the
//! [`Testbed`] kills every container, stops containerd and unmounts everything it mounted.
//!
//! The heavy lifting is in two scripts that the README demo and CI share with these fixtures:
//! `tests/testbed/setup.sh` (once per machine: Debian packages, containerd 2.1 and 1.7 unpacked
//! privately, the test images) and `tests/testbed/containerd.sh up|down|restart DIR`.
//!
//! ```no_run
//! use bulkhead_e2e::{ContainerSpec, Testbed, images};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let testbed = Testbed::start().await?;
//! let pod = testbed.run_pod("demo", "default").await?;
//! let id = testbed
//!     .create_container(&pod, ContainerSpec::new("app", images::BUSYBOX).command(["sleep", "3600"]))
//!     .await?;
//! testbed.start_container(&id).await?;
//! let (code, stdout, _stderr) = testbed.exec_sync(&id, ["id", "-u"]).await?;
//! assert_eq!((code, stdout.trim()), (0, "0"));
//! testbed.stop_and_remove_pod(&pod).await?;
//! # Ok(())
//! # }
//! ```

pub mod bench;
mod bulkhead;
mod cri;
pub mod kube;
mod process;
pub mod registry;
mod testbed;

pub use bulkhead::{
    bulkhead_binary, events_for_container, http_get, log_records, metrics_address, plugin_entry,
};
pub use cri::{ContainerSpec, Pod, status_field};
pub use process::Process;
pub use testbed::{Containerd, Testbed, mounts_under, state_dir};

/// The CRI API types (`k8s_cri::v1`), re-exported so tests can tweak any field of a
/// [`ContainerSpec`] or call the raw clients without naming the crate themselves.
pub use k8s_cri::v1 as cri_api;

/// The images the test bed imports into every containerd (built by `tests/testbed/images.py`
/// from Debian's static busybox; add one there with a single line).
pub mod images {
    /// The CRI sandbox image containerd 2.1 pins (the test bed configures 1.7 to use it too); its
    /// entrypoint sleeps forever.
    pub const PAUSE: &str = "registry.k8s.io/pause:3.10";
    /// busybox, runs as root (config `User` empty), command `sh`.
    pub const BUSYBOX: &str = "docker.io/library/busybox:latest";
    /// The same content as [`BUSYBOX`] under a pinned tag.
    pub const BUSYBOX_1_36: &str = "docker.io/library/busybox:1.36";
    /// busybox whose image config says `User: "1000:1000"`.
    pub const BUSYBOX_NONROOT: &str = "docker.io/bulkhead/busybox-nonroot:1.0";
    /// The same content as [`BUSYBOX`] from another registry, for image-policy tests.
    pub const QUAY_BUSYBOX: &str = "quay.io/bulkhead-test/busybox:1.0";
}
