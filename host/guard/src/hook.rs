//! The hook's decision: given the OCI state runc passes on stdin, may this container be
//! created?
//!
//! runc runs `createRuntime` hooks while creating the task (CRI StartContainer, before NRI
//! StartContainer and before `runc start`), with the OCI state — `id`, `bundle`, `annotations`
//! — on stdin. A non-zero exit makes runc fail the create; nothing of the container's own
//! process has run by then. The rules:
//!
//! - a CRI **sandbox** (`io.kubernetes.cri.container-type: sandbox`) passes: it only runs the
//!   node's pause image, and bulkhead cannot patch a sandbox spec before its task is created;
//! - a CRI **workload** (any other container type, `container` today) passes only with a
//!   [`MARKER_ANNOTATION`] that [`verify`]s for its id;
//! - a container without the CRI type annotation is not CRI-managed (base runtime specs only
//!   apply to CRI containers, so this means someone put the hook elsewhere) and passes unless
//!   `strict`.
//!
//! Everything that goes wrong on a workload — no key, unreadable state — refuses it: the hook
//! exists to fail closed.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::{Error, GuardKey, MARKER_ANNOTATION, Result, verify};

/// Annotation CRI sets on every container it creates: `sandbox` or `container`.
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";
/// The [`CONTAINER_TYPE_ANNOTATION`] value of a pod sandbox (pause) container.
pub const CONTAINER_TYPE_SANDBOX: &str = "sandbox";

/// The parts of the OCI state (runtime-spec `state.md`) the hook reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct State {
    /// The container id; the marker is computed over it.
    pub id: String,
    /// Absolute path of the bundle; `config.json` there holds the spec.
    #[serde(default)]
    pub bundle: Option<PathBuf>,
    /// The spec's annotations (runc copies them into the state).
    #[serde(default)]
    pub annotations: Option<HashMap<String, String>>,
}

impl State {
    /// Parses the state JSON runc writes to the hook's stdin.
    ///
    /// # Errors
    /// [`Error::State`] when it is not JSON or has no `id`.
    pub fn parse(json: &[u8]) -> Result<Self> {
        serde_json::from_slice(json).map_err(|source| Error::State { source })
    }

    /// The container's annotations: from the state, or from `<bundle>/config.json` when the
    /// state carries none (runtimes differ on whether they copy them).
    ///
    /// # Errors
    /// [`Error::BundleRead`], [`Error::BundleParse`] when the fallback is needed and fails.
    pub fn annotations(&self) -> Result<HashMap<String, String>> {
        match (&self.annotations, &self.bundle) {
            (Some(annotations), _) if !annotations.is_empty() => Ok(annotations.clone()),
            (_, Some(bundle)) if !bundle.as_os_str().is_empty() => {
                bundle_annotations(&bundle.join("config.json"))
            }
            _ => Ok(HashMap::new()),
        }
    }
}

/// Annotations of the OCI spec at `path` (nothing else of it is decoded).
fn bundle_annotations(path: &Path) -> Result<HashMap<String, String>> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        annotations: Option<HashMap<String, String>>,
    }
    let json = std::fs::read(path).map_err(|source| Error::BundleRead {
        path: path.to_owned(),
        source,
    })?;
    let config: Config = serde_json::from_slice(&json).map_err(|source| Error::BundleParse {
        path: path.to_owned(),
        source,
    })?;
    Ok(config.annotations.unwrap_or_default())
}

/// What the hook decided for one container.
#[derive(Debug)]
pub enum Decision {
    /// Create it (exit 0).
    Allow(Allowed),
    /// Refuse it (non-zero exit, the reason on stderr).
    Refuse(Refusal),
}

impl Decision {
    /// Whether the container may be created.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }
}

/// Why a container was let through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allowed {
    /// A CRI pod sandbox.
    Sandbox,
    /// A CRI workload whose marker verified.
    Marked,
    /// Not a CRI container, and the hook is not strict.
    NotCri,
}

/// Why a container was refused. `Display` is the message for the hook's stderr, which runc
/// and containerd pass on to the CRI caller.
#[derive(Debug)]
pub enum Refusal {
    /// A CRI workload without a marker: bulkhead never admitted it (down, or it denied it).
    NoMarker {
        /// The container id.
        id: String,
    },
    /// A marker that does not verify: not written by bulkhead on this node for this id.
    BadMarker {
        /// The container id.
        id: String,
    },
    /// Not a CRI container and the hook runs with `--strict`.
    NotCri {
        /// The container id.
        id: String,
    },
    /// The decision could not be made (no key, unreadable state): refused to fail closed.
    Error {
        /// The container id, when known.
        id: Option<String>,
        /// What went wrong.
        error: Error,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoMarker { id } => write!(
                f,
                "refusing container {id}: no {MARKER_ANNOTATION} annotation, bulkhead did not \
                 admit it (is bulkhead running?)"
            ),
            Refusal::BadMarker { id } => write!(
                f,
                "refusing container {id}: its {MARKER_ANNOTATION} annotation was not written \
                 by bulkhead on this node for this container"
            ),
            Refusal::NotCri { id } => write!(
                f,
                "refusing container {id}: not a CRI container and the guard is strict"
            ),
            Refusal::Error {
                id: Some(id),
                error,
            } => {
                write!(f, "refusing container {id}: cannot check it: {error}")
            }
            Refusal::Error { id: None, error } => {
                write!(f, "refusing container: cannot check it: {error}")
            }
        }
    }
}

/// Decides for a container with id `id` and `annotations`.
///
/// `key` is only called for a CRI workload, so sandboxes and non-CRI containers never touch the
/// key file (and still start if it is missing).
pub fn decide(
    id: &str,
    annotations: &HashMap<String, String>,
    strict: bool,
    key: impl FnOnce() -> Result<GuardKey>,
) -> Decision {
    let refuse = |refusal| Decision::Refuse(refusal);
    match annotations
        .get(CONTAINER_TYPE_ANNOTATION)
        .map(String::as_str)
    {
        Some(CONTAINER_TYPE_SANDBOX) => Decision::Allow(Allowed::Sandbox),
        None if strict => refuse(Refusal::NotCri { id: id.to_owned() }),
        None => Decision::Allow(Allowed::NotCri),
        // `container`, or a type this version does not know: a workload, marker required.
        Some(_) => {
            let Some(marker) = annotations.get(MARKER_ANNOTATION) else {
                return refuse(Refusal::NoMarker { id: id.to_owned() });
            };
            match key() {
                Ok(key) if verify(&key, id, marker) => Decision::Allow(Allowed::Marked),
                Ok(_) => refuse(Refusal::BadMarker { id: id.to_owned() }),
                Err(error) => refuse(Refusal::Error {
                    id: Some(id.to_owned()),
                    error,
                }),
            }
        }
    }
}

/// The whole hook: the OCI state JSON from stdin in, a decision out.
///
/// The key file at `key_path` is read only when a workload's marker must be checked.
pub fn check(state_json: &[u8], key_path: &Path, strict: bool) -> Decision {
    let state = match State::parse(state_json) {
        Ok(state) => state,
        Err(error) => return Decision::Refuse(Refusal::Error { id: None, error }),
    };
    let annotations = match state.annotations() {
        Ok(annotations) => annotations,
        Err(error) => {
            return Decision::Refuse(Refusal::Error {
                id: Some(state.id),
                error,
            });
        }
    };
    decide(&state.id, &annotations, strict, || GuardKey::load(key_path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;
    use crate::{KEY_LEN, marker};

    const ID: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";

    /// A key file in a fresh directory, and the key.
    fn key_file() -> (tempfile::TempDir, PathBuf, GuardKey) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guard.key");
        std::fs::write(&path, [0x42; KEY_LEN]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (dir, path, GuardKey::from_bytes([0x42; KEY_LEN]))
    }

    /// OCI state as runc 1.1 writes it for a createRuntime hook.
    fn state(id: &str, annotations: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "ociVersion": "1.0.2-dev",
            "id": id,
            "status": "creating",
            "pid": 4242,
            "bundle": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/x",
            "annotations": annotations,
        }))
        .unwrap()
    }

    fn workload(marker: Option<&str>) -> serde_json::Value {
        let mut annotations = json!({
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": "app",
            "io.kubernetes.cri.sandbox-id": "sandbox0",
        });
        if let Some(marker) = marker {
            annotations[MARKER_ANNOTATION] = json!(marker);
        }
        annotations
    }

    #[test]
    fn sandbox_passes_without_a_key() {
        let json = state(ID, json!({"io.kubernetes.cri.container-type": "sandbox"}));
        let decision = check(&json, Path::new("/nonexistent/guard.key"), true);
        assert!(
            matches!(decision, Decision::Allow(Allowed::Sandbox)),
            "{decision:?}"
        );
    }

    #[test]
    fn workload_without_marker_is_refused() {
        let (_dir, path, _) = key_file();
        let decision = check(&state(ID, workload(None)), &path, false);
        let Decision::Refuse(refusal) = decision else {
            panic!("allowed: {decision:?}");
        };
        assert!(matches!(refusal, Refusal::NoMarker { .. }));
        let message = refusal.to_string();
        assert!(message.contains(ID), "{message}");
        assert!(message.contains(MARKER_ANNOTATION), "{message}");
    }

    #[test]
    fn workload_with_valid_marker_passes() {
        let (_dir, path, key) = key_file();
        let decision = check(&state(ID, workload(Some(&marker(&key, ID)))), &path, true);
        assert!(
            matches!(decision, Decision::Allow(Allowed::Marked)),
            "{decision:?}"
        );
    }

    #[test]
    fn marker_of_another_container_is_refused() {
        let (_dir, path, key) = key_file();
        let other = marker(&key, "another-container");
        let decision = check(&state(ID, workload(Some(&other))), &path, false);
        assert!(
            matches!(decision, Decision::Refuse(Refusal::BadMarker { .. })),
            "{decision:?}"
        );
    }

    #[test]
    fn marker_under_another_key_is_refused() {
        let (_dir, path, _) = key_file();
        let foreign = marker(&GuardKey::from_bytes([1; KEY_LEN]), ID);
        let decision = check(&state(ID, workload(Some(&foreign))), &path, false);
        assert!(
            matches!(decision, Decision::Refuse(Refusal::BadMarker { .. })),
            "{decision:?}"
        );
    }

    #[test]
    fn workload_is_refused_when_the_key_is_unusable() {
        let (dir, path, key) = key_file();
        let m = marker(&key, ID);
        let missing = check(
            &state(ID, workload(Some(&m))),
            &dir.path().join("nope"),
            false,
        );
        assert!(
            matches!(
                missing,
                Decision::Refuse(Refusal::Error {
                    error: Error::KeyRead { .. },
                    ..
                })
            ),
            "{missing:?}"
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = check(&state(ID, workload(Some(&m))), &path, false);
        assert!(
            matches!(
                open,
                Decision::Refuse(Refusal::Error {
                    error: Error::KeyPermissions { .. },
                    ..
                })
            ),
            "{open:?}"
        );
    }

    #[test]
    fn unknown_container_types_need_a_marker() {
        let (_dir, path, _) = key_file();
        let json = state(ID, json!({"io.kubernetes.cri.container-type": "ephemeral"}));
        assert!(!check(&json, &path, false).is_allowed());
    }

    #[test]
    fn non_cri_containers_pass_unless_strict() {
        let (_dir, path, _) = key_file();
        let json = state(ID, json!({"org.example": "x"}));
        assert!(matches!(
            check(&json, &path, false),
            Decision::Allow(Allowed::NotCri)
        ));
        assert!(matches!(
            check(&json, &path, true),
            Decision::Refuse(Refusal::NotCri { .. })
        ));
    }

    #[test]
    fn annotations_come_from_the_bundle_when_the_state_has_none() {
        let (dir, path, key) = key_file();
        let bundle = dir.path().join("bundle");
        std::fs::create_dir(&bundle).unwrap();
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&json!({
                "ociVersion": "1.2.1",
                "process": {"args": ["sh"], "cwd": "/"},
                "annotations": workload(Some(&marker(&key, ID))),
            }))
            .unwrap(),
        )
        .unwrap();
        let json = serde_json::to_vec(&json!({
            "ociVersion": "1.0.2", "id": ID, "status": "creating", "pid": 1,
            "bundle": bundle,
        }))
        .unwrap();
        assert!(matches!(
            check(&json, &path, true),
            Decision::Allow(Allowed::Marked)
        ));

        // The same bundle without the marker: refused.
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec(&json!({"annotations": workload(None)})).unwrap(),
        )
        .unwrap();
        assert!(matches!(
            check(&json, &path, true),
            Decision::Refuse(Refusal::NoMarker { .. })
        ));
    }

    #[test]
    fn unreadable_state_or_bundle_refuses() {
        let (dir, path, _) = key_file();
        let garbage = check(b"not json", &path, false);
        assert!(matches!(
            garbage,
            Decision::Refuse(Refusal::Error { id: None, .. })
        ));
        let json = serde_json::to_vec(&json!({
            "id": ID, "bundle": dir.path().join("no-such-bundle"),
        }))
        .unwrap();
        let missing = check(&json, &path, false);
        assert!(
            matches!(
                missing,
                Decision::Refuse(Refusal::Error {
                    error: Error::BundleRead { .. },
                    ..
                })
            ),
            "{missing:?}"
        );
    }
}
