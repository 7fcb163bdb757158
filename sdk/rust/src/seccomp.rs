//! A builder for OCI seccomp profiles.
//!
//! ```
//! use bulkhead_sdk::{SeccompAction, SeccompBuilder};
//!
//! let profile = SeccompBuilder::new(SeccompAction::Allow)
//!     .errno(["ptrace", "kexec_load", "bpf"], 1)
//!     .build();
//! assert_eq!(profile.syscalls.len(), 1);
//! ```

use crate::{SeccompAction, SeccompArg, SeccompOperator, SeccompProfile, SeccompSyscall};

/// Builds a [`SeccompProfile`] rule by rule (first matching rule wins at run time).
#[derive(Debug, Clone)]
pub struct SeccompBuilder {
    profile: SeccompProfile,
}

impl SeccompBuilder {
    /// Starts a profile whose unmatched syscalls get `default_action`.
    pub fn new(default_action: SeccompAction) -> Self {
        SeccompBuilder {
            profile: SeccompProfile {
                default_action,
                default_errno: None,
                architectures: Vec::new(),
                syscalls: Vec::new(),
            },
        }
    }

    /// Starts a deny-by-default profile: unmatched syscalls fail with `errno`.
    pub fn deny_by_default(errno: u32) -> Self {
        let mut builder = SeccompBuilder::new(SeccompAction::Errno);
        builder.profile.default_errno = Some(errno);
        builder
    }

    /// Restricts the profile to these OCI architectures (`SCMP_ARCH_X86_64`, ...).
    pub fn architectures<S: Into<String>>(mut self, arches: impl IntoIterator<Item = S>) -> Self {
        self.profile.architectures = arches.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a rule applying `action` to `names`.
    pub fn rule<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
        action: SeccompAction,
    ) -> Self {
        self.profile.syscalls.push(SeccompSyscall {
            names: names.into_iter().map(Into::into).collect(),
            action,
            errno: None,
            args: Vec::new(),
        });
        self
    }

    /// Allows `names`.
    pub fn allow<S: Into<String>>(self, names: impl IntoIterator<Item = S>) -> Self {
        self.rule(names, SeccompAction::Allow)
    }

    /// Makes `names` fail with `errno`.
    pub fn errno<S: Into<String>>(
        mut self,
        names: impl IntoIterator<Item = S>,
        errno: u32,
    ) -> Self {
        self = self.rule(names, SeccompAction::Errno);
        if let Some(last) = self.profile.syscalls.last_mut() {
            last.errno = Some(errno);
        }
        self
    }

    /// Adds an argument condition to the last rule (ignored when there is no rule yet).
    pub fn when_arg(mut self, index: u32, op: SeccompOperator, value: u64) -> Self {
        if let Some(last) = self.profile.syscalls.last_mut() {
            last.args.push(SeccompArg {
                index,
                value,
                value_two: 0,
                op,
            });
        }
        self
    }

    /// The finished profile.
    pub fn build(self) -> SeccompProfile {
        self.profile
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_by_default_with_allow_list() {
        let p = SeccompBuilder::deny_by_default(1)
            .architectures(["SCMP_ARCH_X86_64"])
            .allow(["read", "write"])
            .rule(["personality"], SeccompAction::Allow)
            .when_arg(0, SeccompOperator::EqualTo, 8)
            .build();
        assert!(matches!(p.default_action, SeccompAction::Errno));
        assert_eq!(p.default_errno, Some(1));
        assert_eq!(p.syscalls[1].args.len(), 1);
    }
}
