//! Security facts read out of a stored OCI spec, in the plain shape policy plugins see.
//!
//! NRI v0.8 does not carry any of these, so they come from the spec containerd stored for the
//! container (readable from PostCreateContainer on).

use std::collections::BTreeSet;

use oci_spec::runtime::{LinuxCapabilities, LinuxDeviceType, LinuxNamespaceType, Spec};

use super::harden::CapabilitySet;

/// What a container will run with, as far as security policy is concerned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpecFacts {
    /// Capabilities per set, as `CAP_*` names, sorted.
    pub capabilities: CapabilitySets,
    /// A seccomp profile is present (containers without one are unconfined).
    pub seccomp: bool,
    /// The profile's default action (`SCMP_ACT_ERRNO` for containerd's default profile).
    pub seccomp_default_action: Option<String>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `root.readonly`.
    pub readonly_rootfs: bool,
    /// The process uid (0 = root).
    pub uid: u32,
    /// The process gid.
    pub gid: u32,
    /// Supplementary gids.
    pub additional_gids: Vec<u32>,
    /// The container is privileged: see [`Privileged`].
    pub privileged: bool,
    /// The signs of privilege found, each true for a CRI privileged container.
    pub privilege: Privileged,
    /// Namespaces shared with the host, among `pid`, `network`, `ipc`, `uts` and `mount`; see
    /// [`facts_in_pod`] for how pod-level sharing is seen.
    pub host_namespaces: Vec<String>,
    /// The AppArmor profile, when one is set.
    pub apparmor_profile: Option<String>,
}

/// Capability names per set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    /// Bounding set.
    pub bounding: Vec<String>,
    /// Effective set.
    pub effective: Vec<String>,
    /// Inheritable set.
    pub inheritable: Vec<String>,
    /// Permitted set.
    pub permitted: Vec<String>,
    /// Ambient set.
    pub ambient: Vec<String>,
}

/// What containerd's CRI plugin does to the spec of a privileged container. CRI writes no
/// annotation for privileged-ness (checked on containerd 2.1.9: the annotations of a privileged
/// container are the usual `io.kubernetes.cri.*` ones), so it is recognised by its effects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Privileged {
    /// `CAP_SYS_ADMIN` is in the bounding set (privileged containers get every capability).
    pub sys_admin: bool,
    /// `/sys` is mounted without `ro` — only privileged containers get a writable sysfs.
    pub sysfs_writable: bool,
    /// The device cgroup allows every device (`allow: true, access: rwm`, no type or numbers).
    pub all_devices_allowed: bool,
    /// No `maskedPaths` and no `readonlyPaths` (`/proc/kcore`, `/proc/sys`, … are open). True for
    /// privileged containers, but also whenever the CRI caller sends no masked paths (kubelet
    /// always sends them), so it is reported, not used to decide.
    pub proc_unmasked: bool,
}

impl Privileged {
    /// The decision: every capability *and* a writable sysfs. Either alone is possible without
    /// `privileged: true` (added capabilities; a sysfs mount), together they are what CRI does.
    fn decide(&self) -> bool {
        self.sys_admin && self.sysfs_writable
    }
}

/// The namespace kinds whose absence means "shared with the host". User, cgroup and time
/// namespaces are absent for ordinary CRI containers too, so their absence says nothing.
const CHECKED_NAMESPACES: [(LinuxNamespaceType, &str); 5] = [
    (LinuxNamespaceType::Pid, "pid"),
    (LinuxNamespaceType::Network, "network"),
    (LinuxNamespaceType::Ipc, "ipc"),
    (LinuxNamespaceType::Uts, "uts"),
    (LinuxNamespaceType::Mount, "mount"),
];

/// Reads the policy-relevant facts out of a container's spec alone.
///
/// Host namespaces found this way are only those the container does not join through its pod;
/// use [`facts_in_pod`] with the pod sandbox's spec to see pod-level host namespaces too.
pub fn facts(spec: &Spec) -> SpecFacts {
    facts_in_pod(spec, None)
}

/// Reads the policy-relevant facts out of a container's spec and its pod sandbox's spec.
///
/// CRI containers join their pod's namespaces by path (`/proc/<pause pid>/ns/net`), so a
/// host-network pod shows up only in the *sandbox* spec, which has no network entry at all.
/// A kind counts as shared with the host when the container has no entry for it, or joins it by
/// path and the sandbox has no entry for it.
pub fn facts_in_pod(spec: &Spec, sandbox: Option<&Spec>) -> SpecFacts {
    let process = spec.process().as_ref();
    let linux = spec.linux().as_ref();
    let capabilities = process
        .and_then(|p| p.capabilities().as_ref())
        .map(capability_sets)
        .unwrap_or_default();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let entry = |spec: &Spec, kind: LinuxNamespaceType| {
        spec.linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_ref())
            .and_then(|ns| ns.iter().find(|n| n.typ() == kind).cloned())
    };
    let host_namespaces = CHECKED_NAMESPACES
        .iter()
        .filter(|(kind, _)| match entry(spec, *kind) {
            None => true,
            Some(joined) if joined.path().is_some() => {
                sandbox.is_some_and(|sandbox| entry(sandbox, *kind).is_none())
            }
            Some(_) => false,
        })
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let all_devices_allowed = linux
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
        .is_some_and(|devices| {
            devices.iter().any(|d| {
                d.allow()
                    && d.typ().is_none_or(|t| t == LinuxDeviceType::A)
                    && d.major().is_none()
                    && d.minor().is_none()
                    && d.access().as_deref() == Some("rwm")
            })
        });
    let proc_unmasked = linux.is_none_or(|l| {
        l.masked_paths().as_ref().is_none_or(Vec::is_empty)
            && l.readonly_paths().as_ref().is_none_or(Vec::is_empty)
    });
    let sysfs_writable = spec.mounts().as_ref().is_some_and(|mounts| {
        mounts.iter().any(|m| {
            m.destination().as_os_str() == "/sys"
                && !m
                    .options()
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|o| o == "ro"))
        })
    });
    let privilege = Privileged {
        sys_admin: capabilities.bounding.iter().any(|c| c == "CAP_SYS_ADMIN"),
        sysfs_writable,
        all_devices_allowed,
        proc_unmasked,
    };
    let user = process.map(|p| p.user());
    SpecFacts {
        seccomp: seccomp.is_some(),
        seccomp_default_action: seccomp.map(|s| serde_name(&s.default_action())),
        no_new_privileges: process.and_then(|p| p.no_new_privileges()).unwrap_or(false),
        readonly_rootfs: spec
            .root()
            .as_ref()
            .and_then(|r| r.readonly())
            .unwrap_or(false),
        uid: user.map_or(0, |u| u.uid()),
        gid: user.map_or(0, |u| u.gid()),
        additional_gids: user
            .and_then(|u| u.additional_gids().clone())
            .unwrap_or_default(),
        privileged: privilege.decide(),
        privilege,
        host_namespaces,
        apparmor_profile: process.and_then(|p| p.apparmor_profile().clone()),
        capabilities,
    }
}

fn capability_sets(caps: &LinuxCapabilities) -> CapabilitySets {
    let names = |set: CapabilitySet| -> Vec<String> {
        set.of(caps)
            .map(|s| {
                s.iter()
                    .map(|c| format!("CAP_{c}"))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect()
            })
            .unwrap_or_default()
    };
    CapabilitySets {
        bounding: names(CapabilitySet::Bounding),
        effective: names(CapabilitySet::Effective),
        inheritable: names(CapabilitySet::Inheritable),
        permitted: names(CapabilitySet::Permitted),
        ambient: names(CapabilitySet::Ambient),
    }
}

/// The name a value serializes to (the spec's own spelling, e.g. `SCMP_ACT_ERRNO`).
fn serde_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trimmed from what containerd 2.1's CRI plugin stores for an ordinary container.
    const CRI_SPEC: &str = r#"{
      "ociVersion": "1.2.1",
      "process": {
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [1000, 10]},
        "args": ["sleep", "1000"], "cwd": "/",
        "capabilities": {
          "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"],
          "effective": ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE"],
          "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"]
        },
        "apparmorProfile": "cri-containerd.apparmor.d"
      },
      "root": {"path": "rootfs"},
      "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "ro"]}
      ],
      "linux": {
        "namespaces": [{"type": "pid"}, {"type": "ipc", "path": "/proc/42/ns/ipc"}, {"type": "mount"},
                       {"type": "uts", "path": "/proc/42/ns/uts"}],
        "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": []},
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]
      }
    }"#;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn ordinary_container() {
        let f = facts(&spec(CRI_SPEC));
        assert_eq!(
            f.capabilities.effective,
            ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        );
        assert!(f.capabilities.ambient.is_empty());
        assert!(f.seccomp);
        assert_eq!(f.seccomp_default_action.as_deref(), Some("SCMP_ACT_ERRNO"));
        assert!(!f.no_new_privileges);
        assert!(!f.readonly_rootfs);
        assert_eq!(
            (f.uid, f.gid, f.additional_gids.as_slice()),
            (1000, 1000, &[1000, 10][..])
        );
        assert!(!f.privileged);
        assert_eq!(
            f.apparmor_profile.as_deref(),
            Some("cri-containerd.apparmor.d")
        );
    }

    #[test]
    fn missing_namespace_entries_are_host_namespaces() {
        // The container has no network entry: shared with the host whatever the pod does.
        assert_eq!(facts(&spec(CRI_SPEC)).host_namespaces, ["network"]);
        let mut s = spec(CRI_SPEC);
        s.linux_mut().as_mut().unwrap().set_namespaces(None);
        assert_eq!(
            facts(&s).host_namespaces,
            ["pid", "network", "ipc", "uts", "mount"]
        );
    }

    #[test]
    fn namespaces_joined_from_a_host_namespace_pod_are_host_namespaces() {
        // As containerd 2.1 writes a host-network pod: the container joins the sandbox's net,
        // ipc and uts by path; the sandbox itself has no network and no uts entry.
        let container = spec(&CRI_SPEC.replace(
            r#"{"type": "mount"},"#,
            r#"{"type": "mount"}, {"type": "network", "path": "/proc/42/ns/net"},"#,
        ));
        let sandbox = spec(
            r#"{"ociVersion": "1.2.1", "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"},
                {"type": "mount"}]}}"#,
        );
        assert!(facts(&container).host_namespaces.is_empty());
        assert_eq!(
            facts_in_pod(&container, Some(&sandbox)).host_namespaces,
            ["network", "uts"]
        );
    }

    #[test]
    fn privileged_needs_all_capabilities_and_a_writable_sysfs() {
        let privileged = CRI_SPEC
            .replace(r#""CAP_KILL"]"#, r#""CAP_KILL", "CAP_SYS_ADMIN"]"#)
            .replace(r#""options": ["nosuid", "ro"]"#, r#""options": ["nosuid", "rw"]"#)
            .replace(
                r#""maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]"#,
                r#""maskedPaths": [], "resources": {"devices": [{"allow": true, "access": "rwm"}]}"#,
            );
        let f = facts(&spec(&privileged));
        let all = Privileged {
            sys_admin: true,
            sysfs_writable: true,
            all_devices_allowed: true,
            proc_unmasked: true,
        };
        assert_eq!(f.privilege, all);
        assert!(f.privileged);
        // CAP_SYS_ADMIN alone (capabilities: add: [SYS_ADMIN]) is not "privileged".
        let only_cap = CRI_SPEC.replace(r#""CAP_KILL"]"#, r#""CAP_KILL", "CAP_SYS_ADMIN"]"#);
        let f = facts(&spec(&only_cap));
        assert!(f.privilege.sys_admin && !f.privileged);
        assert!(!f.privilege.all_devices_allowed && !f.privilege.proc_unmasked);
    }

    #[test]
    fn empty_spec_has_safe_defaults() {
        let f = facts(&spec(r#"{"ociVersion": "1.2.1"}"#));
        assert_eq!(f.uid, 0);
        assert!(!f.seccomp && !f.no_new_privileges && !f.readonly_rootfs && !f.privileged);
        assert_eq!(f.host_namespaces.len(), 5);
    }
}
