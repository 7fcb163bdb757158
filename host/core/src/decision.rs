//! What a plugin answers about a container: a verdict and typed hardening mutations.
//!
//! The Wasm runtime converts a plugin's WIT `decision` into these types and calls
//! [`Decision::validate`], so the engine, the audit log and `bulkhead eval` only ever see decisions
//! that can be applied as written. The same types are the JSON of case files (kebab-case, unknown
//! fields rejected).

mod capability;
mod seccomp;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use capability::Capability;
pub use seccomp::{
    KNOWN_ARCHITECTURES, SeccompAction, SeccompArg, SeccompOperator, SeccompProfile, SeccompSyscall,
};

use crate::error::Error;
use crate::view::Mount;

/// Whether the container may run. JSON: `"allow"` or `{"deny": "reason"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The container may run (with the decision's mutations applied).
    #[default]
    Allow,
    /// The container is refused; the reason reaches the CRI caller and the audit log.
    Deny(String),
}

/// A plugin's whole answer for one container at one decision point.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Decision {
    /// Allow or deny.
    #[serde(default)]
    pub verdict: Verdict,
    /// Hardening to apply, in the plugin's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mutations: Vec<Mutation>,
}

/// A resource limit (OCI `POSIXRlimit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rlimit {
    /// Limit name, e.g. `RLIMIT_NOFILE`.
    #[schemars(extend("enum" = KNOWN_RLIMITS))]
    pub kind: String,
    /// Hard limit.
    pub hard: u64,
    /// Soft limit (at most `hard`).
    pub soft: u64,
}

/// A request to mount a secret by name; the host checks grants and materializes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretMount {
    /// Secret name in the operator's provider (never the value).
    pub secret: String,
    /// Absolute file path inside the container.
    pub target: String,
    /// File mode (0o400 when not given).
    #[serde(default = "default_secret_mode")]
    pub mode: u32,
}

fn default_secret_mode() -> u32 {
    0o400
}

/// One hardening change. Every variant moves toward safety: capability sets only shrink and
/// flags can only be switched on, which is what lets the engine merge several plugins' answers.
///
/// JSON is externally tagged: `{"drop-capabilities": ["CAP_NET_RAW"]}`, `"set-no-new-privileges"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mutation {
    /// Remove these capabilities from every set.
    DropCapabilities(Vec<Capability>),
    /// Remove every capability not listed from every set.
    KeepOnlyCapabilities(Vec<Capability>),
    /// Apply this seccomp profile. A plugin's `use-seccomp-profile` arrives here as the profile
    /// the host holds under that name.
    // Shared: a held profile is one allocation for every decision naming it; merging and
    // auditing copy none.
    SetSeccomp(Arc<SeccompProfile>),
    /// Turn `no_new_privileges` on.
    SetNoNewPrivileges,
    /// Make the root filesystem read-only.
    SetReadonlyRootfs,
    /// Add or replace an environment variable.
    AddEnv {
        /// Variable name.
        name: String,
        /// Value.
        value: String,
    },
    /// Add or replace a container annotation.
    AddAnnotation {
        /// Annotation key.
        key: String,
        /// Value.
        value: String,
    },
    /// Add a resource limit.
    AddRlimit(Rlimit),
    /// Add a mount.
    AddMount(Mount),
    /// Mount a granted secret.
    MountSecret(SecretMount),
}

/// The kinds of [`Mutation`], as grants and audit records name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[allow(
    missing_docs,
    reason = "each kind is the Mutation variant of the same name"
)]
pub enum MutationKind {
    DropCapabilities,
    KeepOnlyCapabilities,
    SetSeccomp,
    SetNoNewPrivileges,
    SetReadonlyRootfs,
    AddEnv,
    AddAnnotation,
    AddRlimit,
    AddMount,
    MountSecret,
}

impl MutationKind {
    /// The kebab-case name, as in JSON, TOML and the WIT.
    pub fn name(self) -> &'static str {
        match self {
            MutationKind::DropCapabilities => "drop-capabilities",
            MutationKind::KeepOnlyCapabilities => "keep-only-capabilities",
            MutationKind::SetSeccomp => "set-seccomp",
            MutationKind::SetNoNewPrivileges => "set-no-new-privileges",
            MutationKind::SetReadonlyRootfs => "set-readonly-rootfs",
            MutationKind::AddEnv => "add-env",
            MutationKind::AddAnnotation => "add-annotation",
            MutationKind::AddRlimit => "add-rlimit",
            MutationKind::AddMount => "add-mount",
            MutationKind::MountSecret => "mount-secret",
        }
    }
}

impl std::fmt::Display for MutationKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Most mutations one decision may carry; real plugins return a handful.
pub const MAX_MUTATIONS: usize = 128;
/// Most bytes of text (names, values, paths, syscall names) one decision may carry, deny reason
/// excluded (it is cut, not refused). Bounds what a plugin makes the host hold and write.
pub const MAX_DECISION_BYTES: usize = 256 * 1024;

/// Whether `name` is a plain secret name: non-empty letters, digits, `-`, `_` or `.`, not
/// starting with `.` (so it is one file name inside the provider directory).
pub fn is_secret_name(name: &str) -> bool {
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
    !name.is_empty() && !name.starts_with('.') && name.len() <= 253 && name.bytes().all(plain)
}

/// rlimit names the OCI runtime accepts.
pub const KNOWN_RLIMITS: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

impl Decision {
    /// A decision that allows the container and changes nothing.
    pub fn allow() -> Decision {
        Decision::default()
    }

    /// A decision that refuses the container for `reason`.
    pub fn deny(reason: impl Into<String>) -> Decision {
        Decision {
            verdict: Verdict::Deny(reason.into()),
            mutations: Vec::new(),
        }
    }

    /// True when the verdict is [`Verdict::Deny`].
    pub fn is_deny(&self) -> bool {
        matches!(self.verdict, Verdict::Deny(_))
    }

    /// Checks every mutation (see [`Mutation::validate`]) and the size of the whole: at most
    /// [`MAX_MUTATIONS`] mutations and [`MAX_DECISION_BYTES`] of text.
    pub fn validate(&self) -> Result<(), Error> {
        if self.mutations.len() > MAX_MUTATIONS {
            return Err(Error::OversizedDecision {
                reason: format!(
                    "{} mutations, at most {MAX_MUTATIONS} are accepted",
                    self.mutations.len()
                ),
            });
        }
        let bytes: usize = self.mutations.iter().map(Mutation::text_bytes).sum();
        if bytes > MAX_DECISION_BYTES {
            return Err(Error::OversizedDecision {
                reason: format!(
                    "{bytes} bytes of mutations, at most {MAX_DECISION_BYTES} are accepted"
                ),
            });
        }
        self.mutations.iter().try_for_each(Mutation::validate)
    }
}

impl Mutation {
    /// The kebab-case name of the variant, as in JSON and the WIT.
    pub fn kind(&self) -> &'static str {
        self.mutation_kind().name()
    }

    /// The variant's kind, as grants name it.
    pub fn mutation_kind(&self) -> MutationKind {
        match self {
            Mutation::DropCapabilities(_) => MutationKind::DropCapabilities,
            Mutation::KeepOnlyCapabilities(_) => MutationKind::KeepOnlyCapabilities,
            Mutation::SetSeccomp(_) => MutationKind::SetSeccomp,
            Mutation::SetNoNewPrivileges => MutationKind::SetNoNewPrivileges,
            Mutation::SetReadonlyRootfs => MutationKind::SetReadonlyRootfs,
            Mutation::AddEnv { .. } => MutationKind::AddEnv,
            Mutation::AddAnnotation { .. } => MutationKind::AddAnnotation,
            Mutation::AddRlimit(_) => MutationKind::AddRlimit,
            Mutation::AddMount(_) => MutationKind::AddMount,
            Mutation::MountSecret(_) => MutationKind::MountSecret,
        }
    }

    /// Bytes of text the mutation carries (for the decision size limit).
    fn text_bytes(&self) -> usize {
        match self {
            Mutation::DropCapabilities(caps) | Mutation::KeepOnlyCapabilities(caps) => {
                caps.len() * 8
            }
            Mutation::SetSeccomp(profile) => {
                profile.architectures.iter().map(String::len).sum::<usize>()
                    + profile
                        .syscalls
                        .iter()
                        .map(|rule| {
                            16 + rule.args.len() * 24
                                + rule.names.iter().map(String::len).sum::<usize>()
                        })
                        .sum::<usize>()
            }
            Mutation::SetNoNewPrivileges | Mutation::SetReadonlyRootfs => 0,
            Mutation::AddEnv { name, value } => name.len() + value.len(),
            Mutation::AddAnnotation { key, value } => key.len() + value.len(),
            Mutation::AddRlimit(limit) => limit.kind.len() + 16,
            Mutation::AddMount(mount) => {
                mount.destination.len()
                    + mount.source.len()
                    + mount.fs_type.len()
                    + mount.options.iter().map(String::len).sum::<usize>()
            }
            Mutation::MountSecret(secret) => secret.secret.len() + secret.target.len(),
        }
    }

    /// Checks what the types cannot express: a well-formed seccomp profile, known rlimit names,
    /// absolute paths, plain environment names and secret names. A mutation that passes can be
    /// applied without further interpretation.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |reason: String| {
            Err(Error::InvalidMutation {
                mutation: self.kind(),
                reason,
            })
        };
        match self {
            Mutation::DropCapabilities(_)
            | Mutation::KeepOnlyCapabilities(_)
            | Mutation::SetNoNewPrivileges
            | Mutation::SetReadonlyRootfs => Ok(()),
            Mutation::SetSeccomp(profile) => profile.validate(),
            Mutation::AddEnv { name, .. } => {
                if name.is_empty() || name.contains('=') || name.contains('\0') {
                    return fail(format!(
                        "environment name {name:?} must be non-empty without `=`"
                    ));
                }
                Ok(())
            }
            Mutation::AddAnnotation { key, .. } => {
                if key.is_empty() {
                    return fail("annotation key must not be empty".into());
                }
                Ok(())
            }
            Mutation::AddRlimit(limit) => {
                if !KNOWN_RLIMITS.contains(&limit.kind.as_str()) {
                    return fail(format!("unknown rlimit `{}`", limit.kind));
                }
                if limit.soft > limit.hard {
                    return fail(format!(
                        "soft limit {} is above hard limit {}",
                        limit.soft, limit.hard
                    ));
                }
                Ok(())
            }
            Mutation::AddMount(mount) => {
                if !mount.destination.starts_with('/') {
                    return fail(format!(
                        "destination {:?} must be absolute",
                        mount.destination
                    ));
                }
                Ok(())
            }
            Mutation::MountSecret(secret) => {
                if !is_secret_name(&secret.secret) {
                    return fail(format!(
                        "secret name {:?} must be non-empty letters, digits, `-`, `_` or `.`",
                        secret.secret
                    ));
                }
                if !secret.target.starts_with('/') || secret.target.split('/').any(|c| c == "..") {
                    return fail(format!(
                        "target {:?} must be absolute without `..`",
                        secret.target
                    ));
                }
                if secret.mode > 0o777 {
                    return fail(format!("mode {:o} is not a permission mode", secret.mode));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_json_is_allow() {
        let d: Decision = serde_json::from_str("{}").unwrap();
        assert_eq!(d, Decision::allow());
        let d: Decision = serde_json::from_str(r#"{"verdict":{"deny":"no"}}"#).unwrap();
        assert_eq!(d, Decision::deny("no"));
    }

    #[test]
    fn mutations_use_kebab_case_tags() {
        let d: Decision = serde_json::from_str(
            r#"{"verdict":"allow","mutations":[{"drop-capabilities":["NET_RAW"]},"set-no-new-privileges",
                {"add-env":{"name":"A","value":"b"}},{"mount-secret":{"secret":"db","target":"/run/db"}}]}"#,
        )
        .unwrap();
        assert_eq!(
            d.mutations[0],
            Mutation::DropCapabilities(vec![Capability::NetRaw])
        );
        assert_eq!(d.mutations[1], Mutation::SetNoNewPrivileges);
        assert!(matches!(&d.mutations[3], Mutation::MountSecret(s) if s.mode == 0o400));
        assert_eq!(d.validate(), Ok(()));
    }

    #[test]
    fn unknown_fields_and_capabilities_are_rejected() {
        assert!(serde_json::from_str::<Decision>(r#"{"verdikt":"allow"}"#).is_err());
        let err = serde_json::from_str::<Decision>(
            r#"{"mutations":[{"drop-capabilities":["CAP_NOPE"]}]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("CAP_NOPE"), "{err}");
    }

    #[test]
    fn rlimit_rules() {
        let m = |kind: &str, soft, hard| {
            Mutation::AddRlimit(Rlimit {
                kind: kind.into(),
                hard,
                soft,
            })
        };
        assert_eq!(m("RLIMIT_NOFILE", 10, 20).validate(), Ok(()));
        assert!(m("RLIMIT_FILES", 10, 20).validate().is_err());
        assert!(m("RLIMIT_NOFILE", 30, 20).validate().is_err());
    }

    #[test]
    fn oversized_decisions_are_rejected() {
        let many = Decision {
            verdict: Verdict::Allow,
            mutations: vec![Mutation::SetNoNewPrivileges; MAX_MUTATIONS + 1],
        };
        assert!(matches!(
            many.validate(),
            Err(Error::OversizedDecision { .. })
        ));
        let big = Decision {
            verdict: Verdict::Allow,
            mutations: vec![Mutation::AddEnv {
                name: "A".into(),
                value: "x".repeat(MAX_DECISION_BYTES),
            }],
        };
        let err = big.validate().unwrap_err().to_string();
        assert!(err.contains("bytes of mutations"), "{err}");
        let fine = Decision {
            verdict: Verdict::Allow,
            mutations: vec![Mutation::SetNoNewPrivileges; MAX_MUTATIONS],
        };
        assert_eq!(fine.validate(), Ok(()));
    }

    #[test]
    fn secret_and_env_rules() {
        let secret = |name: &str, target: &str| {
            Mutation::MountSecret(SecretMount {
                secret: name.into(),
                target: target.into(),
                mode: 0o400,
            })
        };
        assert_eq!(secret("db-password", "/run/secrets/db").validate(), Ok(()));
        assert!(secret("../etc", "/run/x").validate().is_err());
        assert!(secret("db", "run/x").validate().is_err());
        assert!(secret("db", "/run/../etc/shadow").validate().is_err());
        let env = Mutation::AddEnv {
            name: "A=B".into(),
            value: String::new(),
        };
        assert_eq!(
            env.validate().unwrap_err().to_string(),
            "invalid add-env mutation: environment name \"A=B\" must be non-empty without `=`"
        );
    }
}
