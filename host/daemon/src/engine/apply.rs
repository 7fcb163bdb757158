//! Applying merged mutations to a container's stored OCI spec, and proving they took.
//!
//! On containerd 2.1 (NRI v0.8) capabilities, seccomp, no_new_privileges and a read-only rootfs
//! cannot be adjusted through NRI; the stored spec is patched with `Containers.Update` during
//! PostCreateContainer instead, and the task created at start reads it. Every patch is read back
//! and checked (from the committed record containerd's Update returns); anything missing is an
//! error, and the engine then refuses the start.

use std::time::{Duration, Instant};

use bulkhead_containerd::spec::StoredSpec;
use bulkhead_containerd::{Containerd, Hardening};
use bulkhead_core::event::Rlimit as EventRlimit;
use bulkhead_core::merge::MergedMutations;
use oci_spec::runtime::{
    Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType, Spec,
};

use super::oci;
use bulkhead_nri::Adjustment;

/// Extra changes the engine makes besides the hardening proper.
#[derive(Debug, Default, Clone)]
pub struct Extras {
    /// Annotations to set in the spec (plugin annotations, the guard marker).
    pub annotations: Vec<(String, String)>,
    /// Bind mounts to add (plugin mounts, materialized secrets).
    pub mounts: Vec<Mount>,
}

/// What a successful patch took.
#[derive(Debug, Clone, Copy)]
pub struct Patched {
    /// Read + update + read-back + verify.
    pub elapsed: Duration,
}

/// Builds the spec-level part of `mutations`.
pub fn hardening(mutations: &MergedMutations) -> Result<Hardening, String> {
    Ok(Hardening {
        keep_only_capabilities: mutations
            .keep_only_capabilities
            .as_ref()
            .map(oci::capabilities_to_oci),
        drop_capabilities: oci::capabilities_to_oci(&mutations.drop_capabilities),
        seccomp: mutations
            .seccomp
            .as_ref()
            .map(|chosen| oci::seccomp_to_oci(&chosen.value))
            .transpose()?,
        no_new_privileges: mutations.no_new_privileges,
        readonly_rootfs: mutations.readonly_rootfs,
        env: mutations
            .env
            .iter()
            .map(|(name, chosen)| (name.clone(), chosen.value.clone()))
            .collect(),
    })
}

/// The plugin-requested annotations and mounts of `mutations`.
pub fn extras(mutations: &MergedMutations) -> Result<Extras, String> {
    let annotations = mutations
        .annotations
        .iter()
        .map(|(key, chosen)| (key.clone(), chosen.value.clone()))
        .collect();
    let mounts = mutations
        .mounts
        .values()
        .map(|chosen| {
            let m = &chosen.value;
            if m.fs_type.is_empty() || m.fs_type == "bind" {
                check_bind_source(&m.source)?;
            }
            MountBuilder::default()
                .destination(&m.destination)
                .source(&m.source)
                .typ(if m.fs_type.is_empty() {
                    "bind"
                } else {
                    &m.fs_type
                })
                .options(m.options.clone())
                .build()
                .map_err(|e| format!("mount {}: {e}", m.destination))
        })
        .collect::<Result<_, _>>()?;
    Ok(Extras {
        annotations,
        mounts,
    })
}

/// The NRI adjustment carrying `mutations`, when every one of them is of a kind the runtime
/// applies natively at CreateContainer (env, annotations, mounts, rlimits; and the seccomp
/// profile when `seccomp_natively`: an NRI v0.10+ runtime, for a container that asked to run
/// unconfined): the runtime then builds the container with them and no stored-spec round trip
/// is needed. `None` when there is nothing to apply or anything needs the stored-spec patch
/// (capabilities, no_new_privileges, read-only rootfs — which no NRI version can set — seccomp
/// otherwise, and secrets, which need the process user from the stored spec).
pub fn native_adjustment(
    mutations: &MergedMutations,
    seccomp_natively: bool,
) -> Result<Option<Adjustment>, String> {
    let needs_the_spec = mutations.keep_only_capabilities.is_some()
        || !mutations.drop_capabilities.is_empty()
        || (mutations.seccomp.is_some() && !seccomp_natively)
        || mutations.no_new_privileges
        || mutations.readonly_rootfs
        || !mutations.secrets.is_empty();
    let nothing = mutations.env.is_empty()
        && mutations.annotations.is_empty()
        && mutations.mounts.is_empty()
        && mutations.rlimits.is_empty()
        && mutations.seccomp.is_none();
    if needs_the_spec || nothing {
        return Ok(None);
    }
    let extras = extras(mutations)?;
    Ok(Some(Adjustment {
        seccomp: mutations
            .seccomp
            .as_ref()
            .map(|chosen| chosen.value.clone()),
        env: mutations
            .env
            .iter()
            .map(|(name, chosen)| (name.clone(), chosen.value.clone()))
            .collect(),
        annotations: extras.annotations,
        mounts: extras.mounts.iter().map(oci::mount_from_oci).collect(),
        rlimits: mutations
            .rlimits
            .values()
            .map(|limit| EventRlimit {
                kind: limit.kind.clone(),
                soft: limit.soft,
                hard: limit.hard,
            })
            .collect(),
    }))
}

/// Refuses a bind source that is not its own canonical path. The grant checker judged the path
/// as written; a symbolic link under a granted directory (which a container with that directory
/// mounted writable could plant) would otherwise carry the mount anywhere on the host.
fn check_bind_source(source: &str) -> Result<(), String> {
    let written = std::path::Path::new(source);
    let real = std::fs::canonicalize(written)
        .map_err(|e| format!("mount source {source} cannot be resolved: {e}"))?;
    if real != written.components().collect::<std::path::PathBuf>() {
        return Err(format!(
            "mount source {source} resolves to {} through a symbolic link; refused",
            real.display()
        ));
    }
    Ok(())
}

/// Patches, stores, reads back and verifies. Starts from `stored` when the caller has just read
/// it (the NRI PostCreate handler runs under containerd's NRI lock, so nothing else rewrites the
/// spec in between), otherwise reads it.
pub async fn patch_spec(
    containerd: &Containerd,
    container_id: &str,
    stored: Option<StoredSpec>,
    hardening: &Hardening,
    extras: &Extras,
    rlimits: &MergedMutations,
) -> Result<Patched, String> {
    let started = Instant::now();
    let rlimits = rlimit_list(rlimits)?;
    let mut stored = match stored {
        Some(stored) => stored,
        None => containerd
            .get_stored_spec(container_id)
            .await
            .map_err(|e| e.to_string())?,
    };
    hardening.apply(&mut stored.spec);
    apply_extras(&mut stored.spec, extras, &rlimits);
    // The reply carries the committed record: verify that, not a second read.
    let written = containerd
        .update_stored_spec(container_id, &stored)
        .await
        .map_err(|e| e.to_string())?;
    hardening
        .verify(&written)
        .map_err(|missing| format!("after the update: {missing}"))?;
    verify_extras(&written, extras, &rlimits)?;
    Ok(Patched {
        elapsed: started.elapsed(),
    })
}

fn rlimit_list(mutations: &MergedMutations) -> Result<Vec<PosixRlimit>, String> {
    mutations
        .rlimits
        .values()
        .map(|limit| {
            let kind: PosixRlimitType =
                serde_json::from_value(serde_json::Value::String(limit.kind.clone()))
                    .map_err(|e| format!("rlimit {}: {e}", limit.kind))?;
            PosixRlimitBuilder::default()
                .typ(kind)
                .hard(limit.hard)
                .soft(limit.soft)
                .build()
                .map_err(|e| format!("rlimit {}: {e}", limit.kind))
        })
        .collect()
}

fn apply_extras(spec: &mut Spec, extras: &Extras, rlimits: &[PosixRlimit]) {
    if !extras.annotations.is_empty() {
        let mut annotations = spec.annotations().clone().unwrap_or_default();
        for (key, value) in &extras.annotations {
            annotations.insert(key.clone(), value.clone());
        }
        spec.set_annotations(Some(annotations));
    }
    if !extras.mounts.is_empty() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for mount in &extras.mounts {
            mounts.retain(|m| m.destination() != mount.destination());
            mounts.push(mount.clone());
        }
        spec.set_mounts(Some(mounts));
    }
    if !rlimits.is_empty()
        && let Some(process) = spec.process_mut()
    {
        let mut current = process.rlimits().clone().unwrap_or_default();
        for limit in rlimits {
            current.retain(|l| l.typ() != limit.typ());
            current.push(*limit);
        }
        process.set_rlimits(Some(current));
    }
}

fn verify_extras(spec: &Spec, extras: &Extras, rlimits: &[PosixRlimit]) -> Result<(), String> {
    let annotations = spec.annotations().clone().unwrap_or_default();
    for (key, value) in &extras.annotations {
        if annotations.get(key) != Some(value) {
            return Err(format!("after the update: annotation {key} not set"));
        }
    }
    let mounts = spec.mounts().clone().unwrap_or_default();
    for mount in &extras.mounts {
        if !mounts.contains(mount) {
            return Err(format!(
                "after the update: mount at {} missing",
                mount.destination().display()
            ));
        }
    }
    let present = spec
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone())
        .unwrap_or_default();
    for limit in rlimits {
        if !present.contains(limit) {
            return Err(format!(
                "after the update: rlimit {:?} not set",
                limit.typ()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen<T>(value: T) -> bulkhead_core::merge::Chosen<T> {
        bulkhead_core::merge::Chosen {
            plugin: "p".into(),
            value,
        }
    }

    #[test]
    fn env_annotations_mounts_and_rlimits_go_to_the_runtime_natively() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().to_str().unwrap().to_string();
        let mut mutations = MergedMutations::default();
        mutations.env.insert("MODE".into(), chosen("strict".into()));
        mutations
            .annotations
            .insert("example.com/tier".into(), chosen("gold".into()));
        mutations.mounts.insert(
            "/data".into(),
            chosen(bulkhead_core::view::Mount {
                destination: "/data".into(),
                source: source.clone(),
                fs_type: String::new(),
                options: vec!["rbind".into(), "ro".into()],
            }),
        );
        mutations.rlimits.insert(
            "RLIMIT_NOFILE".into(),
            bulkhead_core::decision::Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 512,
                soft: 256,
            },
        );
        let adjustment = native_adjustment(&mutations, false).unwrap().unwrap();
        assert_eq!(adjustment.env, [("MODE".to_string(), "strict".to_string())]);
        assert_eq!(
            adjustment.annotations,
            [("example.com/tier".to_string(), "gold".to_string())]
        );
        assert_eq!(adjustment.mounts.len(), 1);
        assert_eq!(adjustment.mounts[0].destination, "/data");
        assert_eq!(adjustment.mounts[0].kind, "bind");
        assert_eq!(adjustment.mounts[0].source, source);
        assert_eq!(adjustment.mounts[0].options, ["rbind", "ro"]);
        assert_eq!(
            (adjustment.rlimits[0].soft, adjustment.rlimits[0].hard),
            (256, 512)
        );
    }

    #[test]
    fn anything_nri_cannot_set_keeps_the_whole_decision_on_the_spec_patch() {
        let mut mutations = MergedMutations::default();
        assert_eq!(
            native_adjustment(&mutations, false),
            Ok(None),
            "nothing to apply"
        );
        mutations.env.insert("MODE".into(), chosen("strict".into()));
        mutations.no_new_privileges = true;
        assert_eq!(native_adjustment(&mutations, false), Ok(None));
        mutations.no_new_privileges = false;
        mutations
            .drop_capabilities
            .insert("CAP_NET_RAW".parse().unwrap());
        assert_eq!(native_adjustment(&mutations, false), Ok(None));
    }

    #[test]
    fn a_seccomp_profile_goes_natively_only_where_the_runtime_applies_it() {
        let profile = std::sync::Arc::new(bulkhead_core::decision::SeccompProfile {
            default_action: bulkhead_core::decision::SeccompAction::Errno,
            default_errno: None,
            architectures: Vec::new(),
            syscalls: Vec::new(),
        });
        let mut mutations = MergedMutations {
            seccomp: Some(chosen(profile.clone())),
            ..MergedMutations::default()
        };
        assert_eq!(
            native_adjustment(&mutations, false),
            Ok(None),
            "NRI v0.8, or a container not known to be unconfined: the verified patch"
        );
        let adjustment = native_adjustment(&mutations, true).unwrap().unwrap();
        assert!(
            std::sync::Arc::ptr_eq(adjustment.seccomp.as_ref().unwrap(), &profile),
            "the held profile is passed on, not copied"
        );
        mutations.no_new_privileges = true;
        assert_eq!(
            native_adjustment(&mutations, true),
            Ok(None),
            "with anything NRI cannot set, everything stays on the patch"
        );
    }

    #[test]
    fn a_native_bind_mount_through_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("link")).unwrap();
        let mut mutations = MergedMutations::default();
        mutations.mounts.insert(
            "/host".into(),
            chosen(bulkhead_core::view::Mount {
                destination: "/host".into(),
                source: dir.path().join("link").to_string_lossy().into_owned(),
                fs_type: "bind".into(),
                options: vec!["rbind".into(), "ro".into()],
            }),
        );
        let error = native_adjustment(&mutations, false).unwrap_err();
        assert!(error.contains("symbolic link"), "{error}");
    }

    #[test]
    fn bind_sources_must_be_canonical() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink("/", dir.path().join("link")).unwrap();
        check_bind_source(real.to_str().unwrap()).unwrap();
        check_bind_source(&format!("{}/", real.display())).unwrap();
        let err = check_bind_source(dir.path().join("link").to_str().unwrap()).unwrap_err();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(check_bind_source("/nonexistent/bulkhead").is_err());
    }
}
