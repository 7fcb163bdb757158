//! Security facts read out of a stored OCI spec, in the plain shape policy plugins see.
//!
//! NRI v0.8 does not carry any of these, so they come from the spec containerd stored for the
//! container (readable from PostCreateContainer on).

use std::collections::BTreeSet;
use std::path::{Component, Path};

use oci_spec::runtime::{LinuxCapabilities, LinuxDeviceType, LinuxNamespaceType, Mount, Spec};

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
    /// A writable sysfs is mounted at `/sys` — only privileged containers get one. See
    /// [`writable_sysfs`] for the exact rule, which errs toward "writable".
    pub sysfs_writable: bool,
    /// The device cgroup allows every device (`allow: true, access: rwm`, no type or numbers).
    pub all_devices_allowed: bool,
    /// No `maskedPaths` and no `readonlyPaths` (`/proc/kcore`, `/proc/sys`, … are open). True for
    /// privileged containers, but also whenever the CRI caller sends no masked paths (kubelet
    /// always sends them), so it is reported, not used to decide.
    pub proc_unmasked: bool,
}

impl Privileged {
    /// The decision: `CAP_SYS_ADMIN` *and* either a writable sysfs or every device allowed.
    /// Each alone is possible without `privileged: true` (added capabilities; a sysfs mount);
    /// together they are what CRI does. Either second sign suffices because a pod can take one
    /// away without becoming less privileged: a volume at `/sys` makes containerd drop its
    /// sysfs mount, but a process holding `CAP_SYS_ADMIN` and every device mounts one itself.
    fn decide(&self) -> bool {
        self.sys_admin && (self.sysfs_writable || self.all_devices_allowed)
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
    let sysfs_writable = spec
        .mounts()
        .as_ref()
        .is_some_and(|mounts| writable_sysfs(mounts));
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

/// Whether any mount at `/sys` gives the container a writable sysfs: a `sysfs` mount, or a bind
/// of the host's `/sys` (or a path under it), that is not read-only.
///
/// The rule is written to err toward "privileged", since a missed privileged container is the
/// dangerous mistake:
/// - *Any* such mount counts, not only the last one at `/sys` (the one the process sees): a
///   privileged container with a read-only bind stacked over its writable sysfs still has that
///   sysfs underneath, and with `CAP_SYS_ADMIN` it can unmount the cover. So a cover never
///   makes a container look unprivileged.
/// - A bind of some other directory at `/sys` (a CRI volume) is a plain directory, not a sysfs,
///   and does not count, writable or not: a pod cannot look privileged, or hide that it is not,
///   by mounting a volume there.
/// - The destination is compared after lexical cleaning (`/sys/`, `//sys`, `/./sys`, `sys` are
///   `/sys`), as the runtime resolves it.
/// - `ro`/`rw` are read like the runtime reads them, the last one wins (`["ro", "rw"]` is
///   writable); `rro` (recursive read-only) also makes the mount read-only.
fn writable_sysfs(mounts: &[Mount]) -> bool {
    mounts.iter().any(|m| {
        let options = m.options().as_deref().unwrap_or_default();
        if !is_sys(m.destination()) || read_only(options) {
            return false;
        }
        let bind = m.typ().as_deref() == Some("bind")
            || options.iter().any(|o| o == "bind" || o == "rbind");
        match m.typ().as_deref() {
            Some("sysfs") => true,
            _ => bind && m.source().as_deref().is_some_and(under_sys),
        }
    })
}

/// `path` lexically cleaned (`.`, `..`, repeated and trailing `/` resolved), as its normal
/// components; a relative path counts from `/`, as a mount destination in the rootfs does.
fn clean(path: &Path) -> Vec<&std::ffi::OsStr> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::ParentDir => {
                parts.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    parts
}

/// Whether a mount destination is `/sys`.
fn is_sys(destination: &Path) -> bool {
    clean(destination) == ["sys"]
}

/// Whether a bind source is the host's `/sys` or inside it.
fn under_sys(source: &Path) -> bool {
    source.is_absolute() && clean(source).first().is_some_and(|first| *first == "sys")
}

/// Whether mount options leave the mount read-only: the last of `ro`/`rw` is `ro`, or the last
/// of `rro`/`rrw` is `rro`.
fn read_only(options: &[String]) -> bool {
    let (mut ro, mut rro) = (false, false);
    for option in options {
        match option.as_str() {
            "ro" => ro = true,
            "rw" => ro = false,
            "rro" => rro = true,
            "rrw" => rro = false,
            _ => {}
        }
    }
    ro || rro
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

    /// What CRI writes for `privileged: true`: every capability and a writable sysfs.
    fn privileged_spec() -> String {
        CRI_SPEC
            .replace(r#""CAP_KILL"]"#, r#""CAP_KILL", "CAP_SYS_ADMIN"]"#)
            .replace(
                r#""options": ["nosuid", "ro"]"#,
                r#""options": ["nosuid", "rw"]"#,
            )
    }

    /// `json` with `mount` (a JSON object) appended to its mounts, after the sysfs one.
    fn with_mount(json: &str, mount: &str) -> Spec {
        let anchor = r#""options": ["nosuid", "#;
        let at = json.find(anchor).unwrap();
        let end = at + json[at..].find('}').unwrap() + 1;
        spec(&format!("{}, {mount}{}", &json[..end], &json[end..]))
    }

    #[test]
    fn readonly_bind_over_a_writable_sysfs_is_still_privileged() {
        let covered = with_mount(
            &privileged_spec(),
            r#"{"destination": "/sys", "type": "bind", "source": "/srv/empty", "options": ["rbind", "ro"]}"#,
        );
        assert_eq!(covered.mounts().as_ref().unwrap().len(), 3);
        let f = facts(&covered);
        assert!(f.privilege.sysfs_writable && f.privileged);
    }

    #[test]
    fn a_volume_at_sys_is_not_a_writable_sysfs() {
        // CAP_SYS_ADMIN added, CRI's read-only sysfs, and a writable volume mounted over /sys.
        let only_cap = CRI_SPEC.replace(r#""CAP_KILL"]"#, r#""CAP_KILL", "CAP_SYS_ADMIN"]"#);
        for options in [r#"["rbind", "rw"]"#, r#"["rbind"]"#, r#"["rbind", "ro"]"#] {
            let volume = with_mount(
                &only_cap,
                &format!(
                    r#"{{"destination": "/sys", "type": "bind", "source": "/var/lib/kubelet/pods/x", "options": {options}}}"#
                ),
            );
            let f = facts(&volume);
            assert!(!f.privilege.sysfs_writable && !f.privileged, "{options}");
        }
        // But a writable bind of the host's own /sys is a writable sysfs.
        let host_sys = with_mount(
            &only_cap,
            r#"{"destination": "/sys", "type": "bind", "source": "/sys", "options": ["rbind", "rw"]}"#,
        );
        assert!(facts(&host_sys).privileged);
        let host_sys_untyped = with_mount(
            &only_cap,
            r#"{"destination": "/sys/", "source": "/sys/./", "options": ["rbind"]}"#,
        );
        assert!(facts(&host_sys_untyped).privileged);
    }

    #[test]
    fn a_privileged_container_whose_sysfs_a_volume_replaced_is_still_privileged() {
        // containerd drops its own sysfs mount when a CRI volume targets /sys; the container
        // keeps CAP_SYS_ADMIN and every device, enough to mount a sysfs itself.
        let replaced = CRI_SPEC
            .replace(r#""CAP_KILL"]"#, r#""CAP_KILL", "CAP_SYS_ADMIN"]"#)
            .replace(
                r#""type": "sysfs", "source": "sysfs""#,
                r#""type": "bind", "source": "/srv/empty""#,
            )
            .replace(
                r#""maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]"#,
                r#""resources": {"devices": [{"allow": true, "access": "rwm"}]}"#,
            );
        let f = facts(&spec(&replaced));
        assert!(!f.privilege.sysfs_writable, "{:?}", f.privilege);
        assert!(f.privilege.all_devices_allowed && f.privileged);
    }

    #[test]
    fn sys_destination_is_compared_cleaned() {
        for destination in ["/sys/", "//sys", "/./sys", "/proc/../sys", "sys"] {
            let s = privileged_spec().replace(
                r#""destination": "/sys""#,
                &format!(r#""destination": "{destination}""#),
            );
            assert!(facts(&spec(&s)).privileged, "{destination}");
        }
        let s = privileged_spec().replace(r#""destination": "/sys""#, r#""destination": "/sys/x""#);
        assert!(!facts(&spec(&s)).privileged);
    }

    #[test]
    fn last_of_ro_and_rw_wins() {
        for (options, writable) in [
            (r#"["ro", "rw"]"#, true),
            (r#"["rw", "ro"]"#, false),
            (r#"["rw", "rro"]"#, false),
            (r#"["rro", "rrw"]"#, true),
            (r#"["nosuid"]"#, true),
        ] {
            let s = privileged_spec().replace(
                r#""options": ["nosuid", "rw"]"#,
                &format!(r#""options": {options}"#),
            );
            assert_eq!(
                facts(&spec(&s)).privilege.sysfs_writable,
                writable,
                "{options}"
            );
        }
    }

    #[test]
    fn empty_spec_has_safe_defaults() {
        let f = facts(&spec(r#"{"ociVersion": "1.2.1"}"#));
        assert_eq!(f.uid, 0);
        assert!(!f.seccomp && !f.no_new_privileges && !f.readonly_rootfs && !f.privileged);
        assert_eq!(f.host_namespaces.len(), 5);
    }
}
