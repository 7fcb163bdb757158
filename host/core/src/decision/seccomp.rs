//! A seccomp profile as a plugin may request it: the OCI `LinuxSeccomp` shape, typed, with the
//! checks that keep a malformed profile from ever reaching the runtime.
//!
//! JSON uses bulkhead's kebab-case field names, and the OCI constant names for actions and
//! operators (`SCMP_ACT_ERRNO`, `SCMP_CMP_EQ`) so that rules read as they do in OCI profiles.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// What a seccomp rule does when it matches (OCI `SCMP_ACT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = accept_kill_alias)]
#[allow(
    missing_docs,
    reason = "each variant is the OCI action of the same name"
)]
pub enum SeccompAction {
    #[serde(rename = "SCMP_ACT_KILL_PROCESS")]
    KillProcess,
    #[serde(rename = "SCMP_ACT_KILL_THREAD", alias = "SCMP_ACT_KILL")]
    KillThread,
    #[serde(rename = "SCMP_ACT_TRAP")]
    Trap,
    #[serde(rename = "SCMP_ACT_ERRNO")]
    Errno,
    #[serde(rename = "SCMP_ACT_TRACE")]
    Trace,
    #[serde(rename = "SCMP_ACT_ALLOW")]
    Allow,
    #[serde(rename = "SCMP_ACT_LOG")]
    Log,
    #[serde(rename = "SCMP_ACT_NOTIFY")]
    Notify,
}

impl SeccompAction {
    /// The OCI constant, as runtimes write it into a spec (`SCMP_ACT_ERRNO`).
    pub fn oci_name(self) -> &'static str {
        match self {
            SeccompAction::KillProcess => "SCMP_ACT_KILL_PROCESS",
            SeccompAction::KillThread => "SCMP_ACT_KILL_THREAD",
            SeccompAction::Trap => "SCMP_ACT_TRAP",
            SeccompAction::Errno => "SCMP_ACT_ERRNO",
            SeccompAction::Trace => "SCMP_ACT_TRACE",
            SeccompAction::Allow => "SCMP_ACT_ALLOW",
            SeccompAction::Log => "SCMP_ACT_LOG",
            SeccompAction::Notify => "SCMP_ACT_NOTIFY",
        }
    }
}

/// Lists the older name `SCMP_ACT_KILL` (a serde alias of `SCMP_ACT_KILL_THREAD`) in the schema
/// too, since the parser accepts it.
fn accept_kill_alias(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(names)) = schema.get_mut("enum") {
        names.push("SCMP_ACT_KILL".into());
    }
}

/// How a seccomp argument condition compares (OCI `SCMP_CMP_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[allow(
    missing_docs,
    reason = "each variant is the OCI operator of the same name"
)]
pub enum SeccompOperator {
    #[serde(rename = "SCMP_CMP_NE")]
    NotEqual,
    #[serde(rename = "SCMP_CMP_LT")]
    LessThan,
    #[serde(rename = "SCMP_CMP_LE")]
    LessEqual,
    #[serde(rename = "SCMP_CMP_EQ")]
    EqualTo,
    #[serde(rename = "SCMP_CMP_GE")]
    GreaterEqual,
    #[serde(rename = "SCMP_CMP_GT")]
    GreaterThan,
    #[serde(rename = "SCMP_CMP_MASKED_EQ")]
    MaskedEqual,
}

impl SeccompOperator {
    /// The OCI constant (`SCMP_CMP_EQ`).
    pub fn oci_name(self) -> &'static str {
        match self {
            SeccompOperator::NotEqual => "SCMP_CMP_NE",
            SeccompOperator::LessThan => "SCMP_CMP_LT",
            SeccompOperator::LessEqual => "SCMP_CMP_LE",
            SeccompOperator::EqualTo => "SCMP_CMP_EQ",
            SeccompOperator::GreaterEqual => "SCMP_CMP_GE",
            SeccompOperator::GreaterThan => "SCMP_CMP_GT",
            SeccompOperator::MaskedEqual => "SCMP_CMP_MASKED_EQ",
        }
    }
}

/// One argument condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeccompArg {
    /// Argument index, 0..=5.
    pub index: u32,
    /// Value compared against.
    pub value: u64,
    /// Second value (expected masked result for `SCMP_CMP_MASKED_EQ`).
    #[serde(default)]
    pub value_two: u64,
    /// Comparison.
    pub op: SeccompOperator,
}

/// One rule: the action for a set of syscalls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeccompSyscall {
    /// Syscall names, e.g. `ptrace`.
    pub names: Vec<String>,
    /// Action when one of them is called (and `args` hold).
    pub action: SeccompAction,
    /// errno for `SCMP_ACT_ERRNO` (EPERM when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SeccompArg>,
}

/// An OCI `LinuxSeccomp` profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeccompProfile {
    /// Action for syscalls no rule matches.
    pub default_action: SeccompAction,
    /// errno for a `SCMP_ACT_ERRNO` default action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno: Option<u32>,
    /// OCI architecture names (`SCMP_ARCH_X86_64`, ...). Empty: the native one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("items" = {"type": "string", "enum": KNOWN_ARCHITECTURES}))]
    pub architectures: Vec<String>,
    /// Rules.
    #[serde(default)]
    pub syscalls: Vec<SeccompSyscall>,
}

/// Architecture names libseccomp (and so runc) understands.
pub const KNOWN_ARCHITECTURES: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_LOONGARCH64",
];

/// Largest errno Linux defines (MAX_ERRNO); anything above is not an error return.
const MAX_ERRNO: u32 = 4095;
/// Longest syscall name accepted; real ones are far shorter.
const MAX_SYSCALL_NAME: usize = 64;

impl SeccompProfile {
    /// Checks what the type cannot: syscall name syntax, argument indexes, errno only with an
    /// errno action, known architectures. runc would reject (or worse, misapply) such a profile
    /// at container start; catching it here names the plugin that produced it.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |reason: String| Err(Error::InvalidSeccomp { reason });
        check_errno("default-errno", self.default_action, self.default_errno).or_else(fail)?;
        for arch in &self.architectures {
            if !KNOWN_ARCHITECTURES.contains(&arch.as_str()) {
                return fail(format!("unknown architecture `{arch}`"));
            }
        }
        for (i, rule) in self.syscalls.iter().enumerate() {
            if rule.names.is_empty() {
                return fail(format!("syscalls[{i}] has no names"));
            }
            for name in &rule.names {
                if !is_syscall_name(name) {
                    return fail(format!(
                        "syscalls[{i}]: `{name}` is not a syscall name (lower-case letters, digits and `_`)"
                    ));
                }
            }
            check_errno(&format!("syscalls[{i}].errno"), rule.action, rule.errno).or_else(fail)?;
            for arg in &rule.args {
                if arg.index > 5 {
                    return fail(format!(
                        "syscalls[{i}]: argument index {} is past 5",
                        arg.index
                    ));
                }
            }
        }
        Ok(())
    }
}

impl SeccompProfile {
    /// `sha256:` and the lower-case hex SHA-256 of the profile's JSON, keys sorted: names the
    /// exact rules in audit records without repeating them. The same bytes the audit log has
    /// always hashed (`serde_json::Value::to_string`), so digests of a profile stay comparable
    /// across releases.
    pub fn digest(&self) -> String {
        // Serializing plain structs, strings and integers into a `Value` cannot fail.
        let json = serde_json::to_value(self).expect("a seccomp profile serializes to JSON");
        format!("sha256:{:x}", Sha256::digest(json.to_string().as_bytes()))
    }
}

fn check_errno(field: &str, action: SeccompAction, errno: Option<u32>) -> Result<(), String> {
    match errno {
        Some(_) if action != SeccompAction::Errno => Err(format!(
            "{field} is set but the action is not SCMP_ACT_ERRNO"
        )),
        Some(n) if n > MAX_ERRNO => Err(format!("{field} {n} is past {MAX_ERRNO}")),
        _ => Ok(()),
    }
}

fn is_syscall_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
        && name.len() <= MAX_SYSCALL_NAME
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: &str) -> SeccompProfile {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn oci_names_are_the_serialized_names() {
        use SeccompAction as A;
        use SeccompOperator as O;
        for action in [
            A::KillProcess,
            A::KillThread,
            A::Trap,
            A::Errno,
            A::Trace,
            A::Allow,
            A::Log,
            A::Notify,
        ] {
            assert_eq!(serde_json::to_value(action).unwrap(), action.oci_name());
        }
        for op in [
            O::NotEqual,
            O::LessThan,
            O::LessEqual,
            O::EqualTo,
            O::GreaterEqual,
            O::GreaterThan,
            O::MaskedEqual,
        ] {
            assert_eq!(serde_json::to_value(op).unwrap(), op.oci_name());
        }
    }

    #[test]
    fn valid_profile_passes() {
        let p = profile(
            r#"{"default-action":"SCMP_ACT_ERRNO","default-errno":1,
                "architectures":["SCMP_ARCH_X86_64"],
                "syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"},
                            {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                             "args":[{"index":0,"value":8,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn unknown_action_is_a_parse_error() {
        let err = serde_json::from_str::<SeccompProfile>(r#"{"default-action":"SCMP_ACT_MAYBE"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("SCMP_ACT_MAYBE"), "{err}");
    }

    #[test]
    fn bad_syscall_name_is_rejected() {
        let p = profile(
            r#"{"default-action":"SCMP_ACT_ALLOW","syscalls":[{"names":["open at"],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("`open at` is not a syscall name"), "{err}");
    }

    #[test]
    fn empty_rule_is_rejected() {
        let p = profile(
            r#"{"default-action":"SCMP_ACT_ALLOW","syscalls":[{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#,
        );
        assert!(p.validate().unwrap_err().to_string().contains("no names"));
    }

    #[test]
    fn errno_needs_errno_action() {
        let p = profile(r#"{"default-action":"SCMP_ACT_ALLOW","default-errno":1}"#);
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("default-errno")
        );
    }

    #[test]
    fn argument_index_past_five_is_rejected() {
        let p = profile(
            r#"{"default-action":"SCMP_ACT_ALLOW","syscalls":[{"names":["ioctl"],"action":"SCMP_ACT_ERRNO",
                "args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(p.validate().unwrap_err().to_string().contains("index 6"));
    }

    #[test]
    fn unknown_architecture_is_rejected() {
        let p = profile(r#"{"default-action":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#);
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("SCMP_ARCH_Z80")
        );
    }

    #[test]
    fn digest_is_sha256_of_the_sorted_json() {
        let p = profile(r#"{"default-action":"SCMP_ACT_LOG"}"#);
        // sha256 of `{"default-action":"SCMP_ACT_LOG","syscalls":[]}`.
        let json = serde_json::to_value(&p).unwrap().to_string();
        assert_eq!(json, r#"{"default-action":"SCMP_ACT_LOG","syscalls":[]}"#);
        assert_eq!(
            p.digest(),
            format!("sha256:{:x}", Sha256::digest(json.as_bytes()))
        );
        assert_eq!(p.digest().len(), "sha256:".len() + 64);
        assert!(
            p.digest()[7..]
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
    }

    #[test]
    fn digest_is_stable_and_tells_profiles_apart() {
        let json = r#"{"default-action":"SCMP_ACT_ERRNO","default-errno":1,
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW"}]}"#;
        let a = profile(json);
        assert_eq!(a.digest(), profile(json).digest());
        assert_eq!(a.digest(), a.clone().digest());
        let mut b = a.clone();
        b.syscalls[0].names.push("write".into());
        assert_ne!(a.digest(), b.digest());
        let mut c = a.clone();
        c.default_errno = Some(13);
        assert_ne!(a.digest(), c.digest());
    }
}
