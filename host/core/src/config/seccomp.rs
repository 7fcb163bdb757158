//! `[seccomp]`: the seccomp profiles the host holds, so a plugin can name a profile instead of
//! sending a few hundred syscall names across the guest boundary for every container.
//!
//! The host always holds bulkhead's built-in profiles (`default`, `strict`, see
//! [`crate::seccomp_profiles::builtin`]) for the architectures listed here, and the operator's
//! own profiles in the same kebab-case shape as a decision's [`SeccompProfile`]:
//!
//! ```toml
//! [seccomp]
//! architectures = ["SCMP_ARCH_X86_64"]
//!
//! [seccomp.profiles.web]
//! default-action = "SCMP_ACT_ERRNO"
//! syscalls = [
//!     { names = ["read", "write", "exit_group"], action = "SCMP_ACT_ALLOW" },
//!     { names = ["personality"], action = "SCMP_ACT_ALLOW", args = [{ index = 0, value = 8, op = "SCMP_CMP_EQ" }] },
//! ]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::invalid;
use crate::decision::{KNOWN_ARCHITECTURES, SeccompAction, SeccompProfile};
use crate::error::Error;
use crate::seccomp_profiles::{builtin, syscalls};

/// `[seccomp]`: architectures of the built-in profiles and the operator's own profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SeccompConfig {
    /// `SCMP_ARCH_*` names the built-in profiles apply to. Default x86_64 and x86
    /// ([`builtin::ARCHITECTURES`]); each listed architecture makes runc's filter bigger.
    #[serde(default = "builtin::default_architectures")]
    pub architectures: Vec<String>,
    /// `[seccomp.profiles.<name>]`: the operator's profiles by name, checked against the x86_64
    /// syscall table. Names are lower-case words and may not reuse a built-in name. Default none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub profiles: BTreeMap<String, SeccompProfile>,
}

impl Default for SeccompConfig {
    fn default() -> Self {
        SeccompConfig {
            architectures: builtin::default_architectures(),
            profiles: BTreeMap::new(),
        }
    }
}

impl SeccompConfig {
    /// Checks the architectures and every operator profile, naming the key at fault
    /// (`seccomp.architectures`, `seccomp.profiles.<name>`).
    pub fn validate(&self) -> Result<(), Error> {
        self.validate_architectures()?;
        for (name, profile) in &self.profiles {
            held_profile(name, profile)?;
        }
        Ok(())
    }

    /// The `architectures` rule alone: non-empty, known to libseccomp, no duplicates.
    pub(crate) fn validate_architectures(&self) -> Result<(), Error> {
        const KEY: &str = "seccomp.architectures";
        if self.architectures.is_empty() {
            return Err(invalid(KEY, "list at least one architecture".into()));
        }
        for (i, arch) in self.architectures.iter().enumerate() {
            if !KNOWN_ARCHITECTURES.contains(&arch.as_str()) {
                return Err(invalid(
                    KEY,
                    format!(
                        "unknown architecture {arch:?} (expected a name such as SCMP_ARCH_X86_64)"
                    ),
                ));
            }
            if self.architectures[..i].contains(arch) {
                return Err(invalid(KEY, format!("{arch:?} is listed twice")));
            }
        }
        Ok(())
    }
}

/// Checks the operator profile `name` and returns it as the host holds it: a `SCMP_ACT_ERRNO`
/// default action without `default-errno` gets EPERM, as the seccomp plugin always filled in.
/// Errors name the key `seccomp.profiles.<name>`.
pub(crate) fn held_profile(name: &str, profile: &SeccompProfile) -> Result<SeccompProfile, Error> {
    let key = format!("seccomp.profiles.{name}");
    if name.is_empty()
        || !name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
    {
        return Err(invalid(
            &key,
            format!(
                "a profile name must be non-empty and use only a-z, 0-9, '-', '_' or '.', got {name:?}"
            ),
        ));
    }
    if builtin::NAMES.contains(&name) {
        return Err(invalid(
            &key,
            format!("{name:?} is a built-in profile; pick another name"),
        ));
    }
    profile
        .validate()
        .map_err(|e| invalid(&key, e.to_string()))?;
    for (i, rule) in profile.syscalls.iter().enumerate() {
        if let Some(unknown) = rule.names.iter().find(|n| !syscalls::is_known(n)) {
            return Err(invalid(
                &key,
                format!("syscalls[{i}] names unknown syscall {unknown:?} (not an x86_64 syscall)"),
            ));
        }
    }
    let mut held = profile.clone();
    if held.default_action == SeccompAction::Errno {
        held.default_errno.get_or_insert(builtin::EPERM);
    }
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// The error of a config whose `[seccomp]` table is `table`.
    fn error(table: &str) -> String {
        Config::from_toml(&format!("[seccomp]\n{table}"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn absent_table_gives_builtin_architectures_and_no_profiles() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.seccomp, SeccompConfig::default());
        assert_eq!(
            config.seccomp.architectures,
            ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]
        );
        assert!(config.seccomp.profiles.is_empty());
    }

    #[test]
    fn operator_profiles_parse_from_toml() {
        let config = Config::from_toml(
            r#"
            [seccomp]
            architectures = ["SCMP_ARCH_X86_64"]
            [seccomp.profiles.web]
            default-action = "SCMP_ACT_ERRNO"
            architectures = ["SCMP_ARCH_X86_64"]
            syscalls = [
                { names = ["read", "write", "exit_group"], action = "SCMP_ACT_ALLOW" },
                { names = ["personality"], action = "SCMP_ACT_ALLOW", args = [{ index = 0, value = 8, op = "SCMP_CMP_EQ" }] },
                { names = ["clone"], action = "SCMP_ACT_ALLOW", args = [{ index = 0, value = 0x7E020000, value-two = 0, op = "SCMP_CMP_MASKED_EQ" }] },
                { names = ["clone3"], action = "SCMP_ACT_ERRNO", errno = 38 },
            ]
            "#,
        )
        .unwrap();
        assert_eq!(config.seccomp.architectures, ["SCMP_ARCH_X86_64"]);
        let web = &config.seccomp.profiles["web"];
        assert_eq!(web.default_action, SeccompAction::Errno);
        assert_eq!(
            web.default_errno, None,
            "filled in by the store, not the parser"
        );
        assert_eq!(web.syscalls.len(), 4);
        assert_eq!(web.syscalls[0].errno, None);
        assert_eq!(web.syscalls[1].args[0].value, 8);
        assert_eq!(web.syscalls[1].args[0].value_two, 0);
        assert_eq!(web.syscalls[2].args[0].value, 0x7E02_0000);
        assert_eq!(web.syscalls[3].errno, Some(38));
    }

    #[test]
    fn minimal_profile_needs_only_a_default_action() {
        let config =
            Config::from_toml("[seccomp.profiles.open]\ndefault-action = \"SCMP_ACT_LOG\"\n")
                .unwrap();
        let open = &config.seccomp.profiles["open"];
        assert!(open.architectures.is_empty() && open.syscalls.is_empty());
        let err = error("[seccomp.profiles.none]\nsyscalls = []\n");
        assert!(err.contains("default-action"), "{err}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = error("arches = []\n");
        assert!(err.contains("arches"), "{err}");
        let err =
            error("[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_LOG\"\ndefault_errno = 1\n");
        assert!(err.contains("default_errno"), "{err}");
    }

    #[test]
    fn architectures_must_not_be_empty() {
        let err = error("architectures = []\n");
        assert!(
            err.starts_with("seccomp.architectures: list at least"),
            "{err}"
        );
    }

    #[test]
    fn architectures_must_be_known() {
        let err = error("architectures = [\"x86_64\"]\n");
        assert!(
            err.starts_with("seccomp.architectures: unknown architecture \"x86_64\""),
            "{err}"
        );
    }

    #[test]
    fn architectures_must_not_repeat() {
        let err = error("architectures = [\"SCMP_ARCH_X86\", \"SCMP_ARCH_X86\"]\n");
        assert!(
            err.starts_with("seccomp.architectures: \"SCMP_ARCH_X86\" is listed twice"),
            "{err}"
        );
    }

    #[test]
    fn profile_may_not_reuse_a_builtin_name() {
        for name in builtin::NAMES {
            let err = error(&format!(
                "[seccomp.profiles.{name}]\ndefault-action = \"SCMP_ACT_LOG\"\n"
            ));
            assert!(
                err.starts_with(&format!(
                    "seccomp.profiles.{name}: \"{name}\" is a built-in"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn profile_name_must_be_a_plain_word() {
        for (quoted, shown) in [
            ("\"\"", ""),
            ("\"Web\"", "Web"),
            ("\"a b\"", "a b"),
            ("\"w/x\"", "w/x"),
        ] {
            let err = error(&format!(
                "[seccomp.profiles.{quoted}]\ndefault-action = \"SCMP_ACT_LOG\"\n"
            ));
            assert!(
                err.starts_with(&format!("seccomp.profiles.{shown}: a profile name must")),
                "{err}"
            );
        }
        let ok = Config::from_toml(
            "[seccomp.profiles.\"web-v1.2_x\"]\ndefault-action = \"SCMP_ACT_LOG\"\n",
        );
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn profile_must_pass_core_validation() {
        let err = error(
            "[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_ALLOW\"\ndefault-errno = 1\n",
        );
        assert!(
            err.starts_with("seccomp.profiles.web: invalid seccomp profile: default-errno"),
            "{err}"
        );
        let err = error(
            "[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_ALLOW\"\narchitectures = [\"SCMP_ARCH_Z80\"]\n",
        );
        assert!(
            err.starts_with("seccomp.profiles.web: invalid seccomp profile"),
            "{err}"
        );
        let err = error(
            "[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_ALLOW\"\nsyscalls = [{ names = [\"ioctl\"], action = \"SCMP_ACT_LOG\", args = [{ index = 6, value = 1, op = \"SCMP_CMP_EQ\" }] }]\n",
        );
        assert!(
            err.starts_with("seccomp.profiles.web:") && err.contains("index 6"),
            "{err}"
        );
    }

    #[test]
    fn profile_syscalls_must_be_x86_64_syscalls() {
        let err = error(
            "[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_ALLOW\"\nsyscalls = [{ names = [\"ptrace\", \"opena\"], action = \"SCMP_ACT_ERRNO\" }]\n",
        );
        assert_eq!(
            err,
            r#"seccomp.profiles.web: syscalls[0] names unknown syscall "opena" (not an x86_64 syscall)"#
        );
        let err = error(
            "[seccomp.profiles.web]\ndefault-action = \"SCMP_ACT_ALLOW\"\nsyscalls = [{ names = [\"socketcall\"], action = \"SCMP_ACT_ERRNO\" }]\n",
        );
        assert!(err.contains("\"socketcall\""), "32-bit only: {err}");
    }

    #[test]
    fn errno_default_action_gets_eperm_when_held() {
        let profile: SeccompProfile =
            toml::from_str("default-action = \"SCMP_ACT_ERRNO\"\n").unwrap();
        let held = held_profile("web", &profile).unwrap();
        assert_eq!(held.default_errno, Some(builtin::EPERM));
        let profile: SeccompProfile =
            toml::from_str("default-action = \"SCMP_ACT_ERRNO\"\ndefault-errno = 13\n").unwrap();
        assert_eq!(
            held_profile("web", &profile).unwrap().default_errno,
            Some(13)
        );
        let profile: SeccompProfile =
            toml::from_str("default-action = \"SCMP_ACT_LOG\"\n").unwrap();
        assert_eq!(held_profile("web", &profile).unwrap().default_errno, None);
    }
}
