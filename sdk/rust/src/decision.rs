//! Builders for [`Decision`]: start from [`Decision::allow`] or [`Decision::deny`] and chain the
//! hardening you want.
//!
//! ```
//! use bulkhead_sdk::{Capability, Decision};
//!
//! let d = Decision::allow()
//!     .drop_capabilities([Capability::NetRaw, Capability::SysAdmin])
//!     .no_new_privileges()
//!     .env("GODEBUG", "madvdontneed=1");
//! assert!(d.is_allow());
//! assert_eq!(d.mutations.len(), 3);
//! ```

use crate::{Capability, Decision, Mount, Mutation, Rlimit, SeccompProfile, SecretMount, Verdict};

impl Decision {
    /// Allow the container, changing nothing (yet).
    pub fn allow() -> Decision {
        Decision {
            verdict: Verdict::Allow,
            mutations: Vec::new(),
        }
    }

    /// Refuse the container. The reason reaches whoever created it (kubectl, the CRI caller) and
    /// the audit log, so say what to change.
    pub fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            verdict: Verdict::Deny(reason.into()),
            mutations: Vec::new(),
        }
    }

    /// True when the verdict is allow.
    pub fn is_allow(&self) -> bool {
        matches!(self.verdict, Verdict::Allow)
    }

    /// The deny reason, if denied.
    pub fn deny_reason(&self) -> Option<&str> {
        match &self.verdict {
            Verdict::Deny(reason) => Some(reason),
            Verdict::Allow => None,
        }
    }

    /// Adds any mutation.
    pub fn with(mut self, mutation: Mutation) -> Decision {
        self.mutations.push(mutation);
        self
    }

    /// Removes these capabilities from every set.
    pub fn drop_capabilities(self, caps: impl IntoIterator<Item = Capability>) -> Decision {
        self.with(Mutation::DropCapabilities(
            caps.into_iter().map(String::from).collect(),
        ))
    }

    /// Removes every capability not listed from every set.
    pub fn keep_only_capabilities(self, caps: impl IntoIterator<Item = Capability>) -> Decision {
        self.with(Mutation::KeepOnlyCapabilities(
            caps.into_iter().map(String::from).collect(),
        ))
    }

    /// Applies a seccomp profile (see [`crate::SeccompBuilder`]).
    pub fn seccomp(self, profile: SeccompProfile) -> Decision {
        self.with(Mutation::SetSeccomp(profile))
    }

    /// Applies the seccomp profile the host holds under `name` (see [`crate::seccomp_profiles`]):
    /// bulkhead's built-in `default` or `strict`, or one of the operator's. Cheaper than
    /// [`Decision::seccomp`]: the profile never crosses into the plugin and back.
    pub fn use_seccomp_profile(self, name: impl Into<String>) -> Decision {
        self.with(Mutation::UseSeccompProfile(name.into()))
    }

    /// Turns `no_new_privileges` on.
    pub fn no_new_privileges(self) -> Decision {
        self.with(Mutation::SetNoNewPrivileges)
    }

    /// Makes the root filesystem read-only.
    pub fn readonly_rootfs(self) -> Decision {
        self.with(Mutation::SetReadonlyRootfs)
    }

    /// Adds or replaces an environment variable.
    pub fn env(self, name: impl Into<String>, value: impl Into<String>) -> Decision {
        self.with(Mutation::AddEnv((name.into(), value.into())))
    }

    /// Adds or replaces a container annotation.
    pub fn annotation(self, key: impl Into<String>, value: impl Into<String>) -> Decision {
        self.with(Mutation::AddAnnotation((key.into(), value.into())))
    }

    /// Adds a resource limit, e.g. `rlimit("RLIMIT_NOFILE", 1024, 4096)`.
    pub fn rlimit(self, kind: impl Into<String>, soft: u64, hard: u64) -> Decision {
        self.with(Mutation::AddRlimit(Rlimit {
            kind: kind.into(),
            hard,
            soft,
        }))
    }

    /// Adds a mount.
    pub fn mount(self, mount: Mount) -> Decision {
        self.with(Mutation::AddMount(mount))
    }

    /// Asks the host to mount the granted secret `secret` at `target` with `mode`. The plugin
    /// never sees the secret's value.
    pub fn mount_secret(
        self,
        secret: impl Into<String>,
        target: impl Into<String>,
        mode: u32,
    ) -> Decision {
        self.with(Mutation::MountSecret(SecretMount {
            secret: secret.into(),
            target: target.into(),
            mode,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_keeps_reason() {
        let d = Decision::deny("no");
        assert!(!d.is_allow());
        assert_eq!(d.deny_reason(), Some("no"));
    }

    #[test]
    fn builders_append_in_order() {
        let d = Decision::allow()
            .keep_only_capabilities([Capability::Chown])
            .readonly_rootfs()
            .mount_secret("db", "/run/secrets/db", 0o400);
        assert!(
            matches!(&d.mutations[0], Mutation::KeepOnlyCapabilities(c) if c == &["CAP_CHOWN"])
        );
        assert!(matches!(d.mutations[1], Mutation::SetReadonlyRootfs));
        assert!(matches!(&d.mutations[2], Mutation::MountSecret(s) if s.mode == 0o400));
    }
}
