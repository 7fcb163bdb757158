//! Operator-defined seccomp profiles, as written in the plugin's config: the OCI `LinuxSeccomp`
//! shape with bulkhead's kebab-case keys (the same JSON shape bulkhead's core uses), checked
//! against the x86_64 syscall table before use.
//!
//! ```toml
//! [plugins.config.profiles.web]
//! default-action = "SCMP_ACT_ERRNO"
//! syscalls = [{ names = ["read", "write", "exit_group"], action = "SCMP_ACT_ALLOW" }]
//! ```

use bulkhead_sdk::{SeccompAction, SeccompArg, SeccompOperator, SeccompProfile, SeccompSyscall};
use serde::Deserialize;

use crate::syscalls;

/// OCI architecture names runc (libseccomp) understands.
const KNOWN_ARCHITECTURES: &[&str] = &[
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

/// Largest errno Linux defines.
const MAX_ERRNO: u32 = 4095;

/// A seccomp action, spelled as in OCI profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(
    missing_docs,
    reason = "each variant is the OCI action of the same name"
)]
pub enum Action {
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

impl From<Action> for SeccompAction {
    fn from(a: Action) -> SeccompAction {
        match a {
            Action::KillProcess => SeccompAction::KillProcess,
            Action::KillThread => SeccompAction::KillThread,
            Action::Trap => SeccompAction::Trap,
            Action::Errno => SeccompAction::Errno,
            Action::Trace => SeccompAction::Trace,
            Action::Allow => SeccompAction::Allow,
            Action::Log => SeccompAction::Log,
            Action::Notify => SeccompAction::Notify,
        }
    }
}

/// An argument comparison, spelled as in OCI profiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[allow(
    missing_docs,
    reason = "each variant is the OCI operator of the same name"
)]
pub enum Operator {
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

impl From<Operator> for SeccompOperator {
    fn from(o: Operator) -> SeccompOperator {
        match o {
            Operator::NotEqual => SeccompOperator::NotEqual,
            Operator::LessThan => SeccompOperator::LessThan,
            Operator::LessEqual => SeccompOperator::LessEqual,
            Operator::EqualTo => SeccompOperator::EqualTo,
            Operator::GreaterEqual => SeccompOperator::GreaterEqual,
            Operator::GreaterThan => SeccompOperator::GreaterThan,
            Operator::MaskedEqual => SeccompOperator::MaskedEqual,
        }
    }
}

/// One argument condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ArgConfig {
    /// Argument index, 0 to 5.
    pub index: u32,
    /// Value compared against.
    pub value: u64,
    /// Expected masked result for `SCMP_CMP_MASKED_EQ` (default 0).
    #[serde(default)]
    pub value_two: u64,
    /// Comparison.
    pub op: Operator,
}

/// One rule of an operator profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleConfig {
    /// x86_64 syscall names.
    pub names: Vec<String>,
    /// Action when one of them is called.
    pub action: Action,
    /// errno for `SCMP_ACT_ERRNO` (default EPERM).
    #[serde(default)]
    pub errno: Option<u32>,
    /// Argument conditions, all of which must hold.
    #[serde(default)]
    pub args: Vec<ArgConfig>,
}

/// An operator-defined profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ProfileConfig {
    /// Action for syscalls no rule matches.
    pub default_action: Action,
    /// errno for a `SCMP_ACT_ERRNO` default action (default EPERM).
    #[serde(default)]
    pub default_errno: Option<u32>,
    /// OCI architectures; empty means the node's native one.
    #[serde(default)]
    pub architectures: Vec<String>,
    /// Rules, first match wins.
    #[serde(default)]
    pub syscalls: Vec<RuleConfig>,
}

/// Whether runc (libseccomp) knows the architecture `name`.
pub fn is_known_architecture(name: &str) -> bool {
    KNOWN_ARCHITECTURES.contains(&name)
}

impl ProfileConfig {
    /// Checks the profile and turns it into the WIT profile. The error says what is wrong,
    /// naming the rule and syscall; the caller adds the profile's name.
    pub fn to_profile(&self) -> Result<SeccompProfile, String> {
        check_errno("default-errno", self.default_action, self.default_errno)?;
        for arch in &self.architectures {
            if !is_known_architecture(arch) {
                return Err(format!("unknown architecture {arch:?}"));
            }
        }
        let mut rules = Vec::with_capacity(self.syscalls.len());
        for (i, rule) in self.syscalls.iter().enumerate() {
            if rule.names.is_empty() {
                return Err(format!("syscalls[{i}] has no names"));
            }
            if let Some(name) = rule.names.iter().find(|n| !syscalls::is_known(n)) {
                return Err(format!(
                    "syscalls[{i}] names unknown syscall {name:?} (not an x86_64 syscall)"
                ));
            }
            check_errno(&format!("syscalls[{i}].errno"), rule.action, rule.errno)?;
            if let Some(arg) = rule.args.iter().find(|a| a.index > 5) {
                return Err(format!(
                    "syscalls[{i}] has argument index {}, past 5",
                    arg.index
                ));
            }
            rules.push(SeccompSyscall {
                names: rule.names.clone(),
                action: rule.action.into(),
                errno: rule.errno,
                args: rule
                    .args
                    .iter()
                    .map(|a| SeccompArg {
                        index: a.index,
                        value: a.value,
                        value_two: a.value_two,
                        op: a.op.into(),
                    })
                    .collect(),
            });
        }
        let default_errno = match self.default_action {
            Action::Errno => Some(self.default_errno.unwrap_or(crate::builtin::EPERM)),
            _ => None,
        };
        Ok(SeccompProfile {
            default_action: self.default_action.into(),
            default_errno,
            architectures: self.architectures.clone(),
            syscalls: rules,
        })
    }
}

fn check_errno(field: &str, action: Action, errno: Option<u32>) -> Result<(), String> {
    match errno {
        Some(_) if action != Action::Errno => Err(format!(
            "{field} is set but the action is not SCMP_ACT_ERRNO"
        )),
        Some(n) if n > MAX_ERRNO => Err(format!("{field} {n} is past {MAX_ERRNO}")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> ProfileConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn valid_profile_converts() {
        let p = parse(
            r#"{"default-action": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                             {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                              "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
                             {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errno": 38}]}"#,
        )
        .to_profile()
        .unwrap();
        assert_eq!(p.default_errno, Some(1), "EPERM unless said otherwise");
        assert_eq!(p.syscalls.len(), 3);
        assert_eq!(p.syscalls[1].args[0].value, 8);
        assert_eq!(p.syscalls[2].errno, Some(38));
    }

    #[test]
    fn unknown_syscall_is_named() {
        let err = parse(
            r#"{"default-action": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["ptrace", "socketcall"], "action": "SCMP_ACT_ERRNO"}]}"#,
        )
        .to_profile()
        .unwrap_err();
        assert!(
            err.contains(r#"syscalls[0] names unknown syscall "socketcall""#),
            "{err}"
        );
    }

    #[test]
    fn unknown_action_is_a_parse_error() {
        let err = serde_json::from_str::<ProfileConfig>(r#"{"default-action": "SCMP_ACT_MAYBE"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("SCMP_ACT_MAYBE"), "{err}");
    }

    #[test]
    fn errno_needs_the_errno_action() {
        let err = parse(r#"{"default-action": "SCMP_ACT_ALLOW", "default-errno": 1}"#)
            .to_profile()
            .unwrap_err();
        assert!(err.contains("default-errno"), "{err}");
    }

    #[test]
    fn bad_architecture_and_argument_index_are_rejected() {
        let arch = parse(r#"{"default-action": "SCMP_ACT_ALLOW", "architectures": ["x86_64"]}"#);
        assert!(arch.to_profile().unwrap_err().contains("architecture"));
        let index = parse(
            r#"{"default-action": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ioctl"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(index.to_profile().unwrap_err().contains("past 5"));
    }

    #[test]
    fn empty_rule_is_rejected() {
        let p = parse(
            r#"{"default-action": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_LOG"}]}"#,
        );
        assert!(p.to_profile().unwrap_err().contains("no names"));
    }
}
