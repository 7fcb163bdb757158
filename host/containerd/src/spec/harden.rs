//! Pure hardening of an OCI runtime spec, and the check that a spec carries it.
//!
//! Each function changes only what it names and only toward safety: capability sets shrink,
//! never grow; seccomp, no_new_privileges and a read-only rootfs are switched on, never off.
//! [`Hardening::verify`] is run on the spec *read back from containerd* after the update, so a
//! change that containerd dropped or rewrote is caught and reported by name.

use std::fmt;

use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilities, LinuxSeccomp, Process, Root, Spec,
};

/// A set of hardening changes for one container, as the engine merged them from plugins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hardening {
    /// Keep only these capabilities in every set (bounding, effective, inheritable, permitted,
    /// ambient). A capability the container did not have is *not* added.
    pub keep_only_capabilities: Option<Capabilities>,
    /// Remove these capabilities from every set.
    pub drop_capabilities: Capabilities,
    /// Replace the seccomp profile with this one.
    pub seccomp: Option<LinuxSeccomp>,
    /// Set `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// Set `root.readonly`.
    pub readonly_rootfs: bool,
    /// Set these environment variables (replacing an existing value of the same key).
    pub env: Vec<(String, String)>,
}

/// The five capability sets of a process, named for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CapabilitySet {
    /// Limits what can ever be gained.
    Bounding,
    /// What the kernel checks.
    Effective,
    /// Kept across execve for privileged programs.
    Inheritable,
    /// The limiting superset of effective.
    Permitted,
    /// Kept across execve of unprivileged programs.
    Ambient,
}

impl CapabilitySet {
    /// All five, in the order the spec lists them.
    pub const ALL: [CapabilitySet; 5] = [
        Self::Bounding,
        Self::Effective,
        Self::Inheritable,
        Self::Permitted,
        Self::Ambient,
    ];

    /// The set's entries in `caps` (`None` when the set is absent).
    pub fn of(self, caps: &LinuxCapabilities) -> Option<&Capabilities> {
        match self {
            Self::Bounding => caps.bounding().as_ref(),
            Self::Effective => caps.effective().as_ref(),
            Self::Inheritable => caps.inheritable().as_ref(),
            Self::Permitted => caps.permitted().as_ref(),
            Self::Ambient => caps.ambient().as_ref(),
        }
    }

    fn set(self, caps: &mut LinuxCapabilities, value: Capabilities) {
        match self {
            Self::Bounding => caps.set_bounding(Some(value)),
            Self::Effective => caps.set_effective(Some(value)),
            Self::Inheritable => caps.set_inheritable(Some(value)),
            Self::Permitted => caps.set_permitted(Some(value)),
            Self::Ambient => caps.set_ambient(Some(value)),
        };
    }
}

/// A requested change that the spec does not carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The spec has no `process` section to carry process settings.
    Process,
    /// A capability that should be gone is still in a set.
    Capability {
        /// The set still holding it.
        set: CapabilitySet,
        /// The capability.
        capability: Capability,
    },
    /// The seccomp profile is absent or not the requested one.
    Seccomp,
    /// `noNewPrivileges` is not set.
    NoNewPrivileges,
    /// The rootfs is not read-only.
    ReadonlyRootfs,
    /// An environment variable is absent or has another value.
    Env {
        /// The variable's name.
        key: String,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Process => f.write_str("spec has no process section"),
            Self::Capability { set, capability } => {
                write!(f, "capability CAP_{capability} still in {set:?} set")
            }
            Self::Seccomp => f.write_str("seccomp profile not set"),
            Self::NoNewPrivileges => f.write_str("no_new_privileges not set"),
            Self::ReadonlyRootfs => f.write_str("rootfs not read-only"),
            Self::Env { key } => write!(f, "environment variable {key} not set"),
        }
    }
}

impl Hardening {
    /// True when nothing is requested (no update needs to be made).
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Applies every requested change to `spec`.
    pub fn apply(&self, spec: &mut Spec) {
        if let Some(keep) = &self.keep_only_capabilities {
            keep_only_capabilities(spec, keep);
        }
        if !self.drop_capabilities.is_empty() {
            drop_capabilities(spec, &self.drop_capabilities);
        }
        if let Some(seccomp) = &self.seccomp {
            set_seccomp(spec, seccomp.clone());
        }
        if self.no_new_privileges {
            set_no_new_privileges(spec);
        }
        if self.readonly_rootfs {
            set_readonly_rootfs(spec);
        }
        for (key, value) in &self.env {
            add_env(spec, key, value);
        }
    }

    /// Checks that `spec` carries every requested change; the first one it lacks otherwise.
    ///
    /// # Errors
    /// The [`Missing`] change.
    pub fn verify(&self, spec: &Spec) -> Result<(), Missing> {
        let process = spec.process().as_ref();
        let needs_process = self.keep_only_capabilities.is_some()
            || !self.drop_capabilities.is_empty()
            || self.no_new_privileges
            || !self.env.is_empty();
        if needs_process && process.is_none() {
            return Err(Missing::Process);
        }
        let caps = process.and_then(|p| p.capabilities().as_ref());
        let capability_wanted =
            self.keep_only_capabilities.is_some() || !self.drop_capabilities.is_empty();
        if capability_wanted {
            let Some(caps) = caps else {
                // Absent capabilities leave the runtime's defaults in force: not verified.
                let capability = self
                    .drop_capabilities
                    .iter()
                    .next()
                    .copied()
                    .unwrap_or(Capability::SysAdmin);
                return Err(Missing::Capability {
                    set: CapabilitySet::Bounding,
                    capability,
                });
            };
            for set in CapabilitySet::ALL {
                let Some(present) = set.of(caps) else {
                    // An absent set is an empty set to the runtime, but we always write it.
                    continue;
                };
                let extra = present.iter().find(|c| {
                    self.drop_capabilities.contains(c)
                        || self
                            .keep_only_capabilities
                            .as_ref()
                            .is_some_and(|keep| !keep.contains(c))
                });
                if let Some(&capability) = extra {
                    return Err(Missing::Capability { set, capability });
                }
            }
        }
        if let Some(wanted) = &self.seccomp
            && spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) != Some(wanted)
        {
            return Err(Missing::Seccomp);
        }
        if self.no_new_privileges && process.and_then(Process::no_new_privileges) != Some(true) {
            return Err(Missing::NoNewPrivileges);
        }
        if self.readonly_rootfs && spec.root().as_ref().and_then(Root::readonly) != Some(true) {
            return Err(Missing::ReadonlyRootfs);
        }
        for (key, value) in &self.env {
            if env_value(spec, key) != Some(value.as_str()) {
                return Err(Missing::Env { key: key.clone() });
            }
        }
        Ok(())
    }
}

/// Intersects every capability set with `keep`. Sets are written explicitly, even when absent
/// before: an absent `capabilities` object leaves the runtime's defaults in force, so "keep
/// only" must spell out what is kept.
pub fn keep_only_capabilities(spec: &mut Spec, keep: &Capabilities) {
    edit_capabilities(spec, |set| set.retain(|c| keep.contains(c)));
}

/// Removes `drop` from every capability set (making absent sets explicit, as above).
pub fn drop_capabilities(spec: &mut Spec, drop: &Capabilities) {
    edit_capabilities(spec, |set| set.retain(|c| !drop.contains(c)));
}

fn edit_capabilities(spec: &mut Spec, mut edit: impl FnMut(&mut Capabilities)) {
    let process = process_mut(spec);
    let mut caps = process
        .capabilities()
        .clone()
        .unwrap_or_else(empty_capabilities);
    for set in CapabilitySet::ALL {
        let mut value = set.of(&caps).cloned().unwrap_or_default();
        edit(&mut value);
        set.set(&mut caps, value);
    }
    process.set_capabilities(Some(caps));
}

fn empty_capabilities() -> LinuxCapabilities {
    let mut caps = LinuxCapabilities::default();
    for set in CapabilitySet::ALL {
        set.set(&mut caps, Capabilities::new());
    }
    caps
}

/// Replaces the seccomp profile.
pub fn set_seccomp(spec: &mut Spec, seccomp: LinuxSeccomp) {
    let linux = spec.linux_mut().get_or_insert_with(|| {
        LinuxBuilder::default()
            .build()
            .expect("an empty linux section always builds")
    });
    linux.set_seccomp(Some(seccomp));
}

/// Sets `process.noNewPrivileges`: setuid binaries and file capabilities grant nothing.
pub fn set_no_new_privileges(spec: &mut Spec) {
    process_mut(spec).set_no_new_privileges(Some(true));
}

/// Makes the root filesystem read-only.
pub fn set_readonly_rootfs(spec: &mut Spec) {
    spec.root_mut()
        .get_or_insert_with(Root::default)
        .set_readonly(Some(true));
}

/// Sets `key=value` in the process environment, replacing every earlier entry for `key`.
pub fn add_env(spec: &mut Spec, key: &str, value: &str) {
    let process = process_mut(spec);
    let prefix = format!("{key}=");
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    env.retain(|e| !e.starts_with(&prefix) && e != key);
    env.push(format!("{key}={value}"));
    process.set_env(Some(env));
}

/// The effective value of `key` (the last entry wins, as in execve's environment lookup).
fn env_value<'a>(spec: &'a Spec, key: &str) -> Option<&'a str> {
    let env = spec.process().as_ref()?.env().as_ref()?;
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix(key)?.strip_prefix('='))
}

/// The process section; created empty when absent (a spec without one cannot run anyway).
fn process_mut(spec: &mut Spec) -> &mut Process {
    spec.process_mut().get_or_insert_with(|| {
        let mut process = Process::default();
        process.set_capabilities(None);
        process
    })
}

#[cfg(test)]
mod tests {
    use oci_spec::runtime::{LinuxSeccompAction, LinuxSeccompBuilder, LinuxSyscallBuilder};

    use super::*;

    fn spec() -> Spec {
        // Shaped like containerd's CRI default (abbreviated): no inheritable or ambient set.
        serde_json::from_str(
            r#"{"ociVersion": "1.2.1", "root": {"path": "rootfs"},
                "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/", "env": ["TERM=xterm"],
                  "capabilities": {
                    "bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_KILL"],
                    "effective": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_KILL"],
                    "permitted": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID", "CAP_KILL"]}}}"#,
        )
        .unwrap()
    }

    fn caps(spec: &Spec) -> &LinuxCapabilities {
        spec.process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap()
    }

    fn mkdir_denied() -> LinuxSeccomp {
        LinuxSeccompBuilder::default()
            .default_action(LinuxSeccompAction::ScmpActAllow)
            .syscalls(vec![
                LinuxSyscallBuilder::default()
                    .names(vec!["mkdir".to_owned(), "mkdirat".to_owned()])
                    .action(LinuxSeccompAction::ScmpActErrno)
                    .errno_ret(1u32)
                    .build()
                    .unwrap(),
            ])
            .build()
            .unwrap()
    }

    #[test]
    fn keep_only_intersects_every_set_and_never_adds() {
        let mut s = spec();
        keep_only_capabilities(
            &mut s,
            &[Capability::NetBindService, Capability::SysAdmin].into(),
        );
        let only: Capabilities = [Capability::NetBindService].into();
        for set in CapabilitySet::ALL {
            let expected = match set {
                CapabilitySet::Inheritable | CapabilitySet::Ambient => Capabilities::new(),
                _ => only.clone(),
            };
            assert_eq!(set.of(caps(&s)), Some(&expected), "{set:?}");
        }
    }

    #[test]
    fn drop_removes_from_every_set() {
        let mut s = spec();
        drop_capabilities(&mut s, &[Capability::Setuid, Capability::Chown].into());
        for set in [
            CapabilitySet::Bounding,
            CapabilitySet::Effective,
            CapabilitySet::Permitted,
        ] {
            let left = set.of(caps(&s)).unwrap();
            assert_eq!(
                left,
                &[Capability::NetBindService, Capability::Kill].into(),
                "{set:?}"
            );
        }
    }

    #[test]
    fn capability_edits_make_absent_capabilities_explicit_and_empty() {
        let mut s = spec();
        s.process_mut().as_mut().unwrap().set_capabilities(None);
        drop_capabilities(&mut s, &[Capability::SysAdmin].into());
        for set in CapabilitySet::ALL {
            assert_eq!(set.of(caps(&s)), Some(&Capabilities::new()));
        }
    }

    #[test]
    fn seccomp_is_set_even_without_a_linux_section() {
        let mut s = spec();
        s.set_linux(None);
        set_seccomp(&mut s, mkdir_denied());
        assert_eq!(
            s.linux().as_ref().unwrap().seccomp().as_ref(),
            Some(&mkdir_denied())
        );
    }

    #[test]
    fn no_new_privileges_and_readonly_rootfs_are_switched_on() {
        let mut s = spec();
        set_no_new_privileges(&mut s);
        set_readonly_rootfs(&mut s);
        assert_eq!(
            s.process().as_ref().unwrap().no_new_privileges(),
            Some(true)
        );
        assert_eq!(s.root().as_ref().unwrap().readonly(), Some(true));
    }

    #[test]
    fn add_env_replaces_existing_key() {
        let mut s = spec();
        add_env(&mut s, "TERM", "dumb");
        add_env(&mut s, "NEW", "1");
        let env = s.process().as_ref().unwrap().env().clone().unwrap();
        assert_eq!(env.iter().filter(|e| e.starts_with("TERM=")).count(), 1);
        assert_eq!(env_value(&s, "TERM"), Some("dumb"));
        assert_eq!(env_value(&s, "NEW"), Some("1"));
        assert_eq!(env_value(&s, "NE"), None);
    }

    #[test]
    fn verify_passes_after_apply() {
        let hardening = Hardening {
            keep_only_capabilities: Some([Capability::NetBindService].into()),
            drop_capabilities: [Capability::Kill].into(),
            seccomp: Some(mkdir_denied()),
            no_new_privileges: true,
            readonly_rootfs: true,
            env: vec![("A".into(), "b".into())],
        };
        let mut s = spec();
        assert!(hardening.verify(&s).is_err());
        hardening.apply(&mut s);
        assert_eq!(hardening.verify(&s), Ok(()));
        assert!(!hardening.is_empty());
        assert!(Hardening::default().is_empty());
    }

    #[test]
    fn verify_names_what_is_missing() {
        let s = spec();
        let check = |h: Hardening| h.verify(&s).unwrap_err();
        assert!(matches!(
            check(Hardening {
                drop_capabilities: [Capability::Setuid].into(),
                ..Default::default()
            }),
            Missing::Capability {
                capability: Capability::Setuid,
                ..
            }
        ));
        assert_eq!(
            check(Hardening {
                seccomp: Some(mkdir_denied()),
                ..Default::default()
            }),
            Missing::Seccomp
        );
        assert_eq!(
            check(Hardening {
                no_new_privileges: true,
                ..Default::default()
            }),
            Missing::NoNewPrivileges
        );
        assert_eq!(
            check(Hardening {
                readonly_rootfs: true,
                ..Default::default()
            }),
            Missing::ReadonlyRootfs
        );
        assert_eq!(
            check(Hardening {
                env: vec![("X".into(), "1".into())],
                ..Default::default()
            }),
            Missing::Env { key: "X".into() }
        );
        let mut no_process = s.clone();
        no_process.set_process(None);
        assert_eq!(
            Hardening {
                no_new_privileges: true,
                ..Default::default()
            }
            .verify(&no_process),
            Err(Missing::Process)
        );
    }

    #[test]
    fn verify_detects_a_different_seccomp_profile() {
        let mut s = spec();
        let mut other = mkdir_denied();
        other.set_default_action(LinuxSeccompAction::ScmpActLog);
        set_seccomp(&mut s, other);
        let h = Hardening {
            seccomp: Some(mkdir_denied()),
            ..Default::default()
        };
        assert_eq!(h.verify(&s), Err(Missing::Seccomp));
    }

    #[test]
    fn missing_is_readable() {
        let m = Missing::Capability {
            set: CapabilitySet::Effective,
            capability: Capability::SysAdmin,
        };
        assert_eq!(
            m.to_string(),
            "capability CAP_SYS_ADMIN still in Effective set"
        );
    }
}
