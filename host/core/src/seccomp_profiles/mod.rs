//! The seccomp profiles the host holds: bulkhead's built-ins and the operator's `[seccomp]`
//! profiles, each checked once when the configuration is loaded and then shared by name.
//!
//! A plugin that wants a profile names it instead of building it, so ~300 syscall names do not
//! cross the guest boundary for every container, and the audit log can record the name and the
//! [digest](SeccompProfile::digest) rather than the whole profile.
//!
//! ```
//! use bulkhead_core::seccomp_profiles::{HeldProfiles, builtin};
//!
//! let held = HeldProfiles::default();
//! assert_eq!(held.names().collect::<Vec<_>>(), [builtin::DEFAULT, builtin::STRICT]);
//! assert!(held.get("default").unwrap().digest.starts_with("sha256:"));
//! ```

pub mod builtin;
pub mod syscalls;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{SeccompConfig, held_seccomp_profile};
use crate::decision::SeccompProfile;
use crate::error::Error;

/// One profile the host holds, with what the audit log and the plugin API need to refer to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldProfile {
    /// The name plugins use (`default`, `strict` or the operator's `[seccomp.profiles.<name>]`).
    pub name: String,
    /// The profile, validated; shared so applying it to a container does not copy it.
    pub profile: Arc<SeccompProfile>,
    /// [`SeccompProfile::digest`], computed once: identifies the exact rules in audit records.
    pub digest: String,
    /// Whether it is one of bulkhead's built-ins rather than the operator's.
    pub builtin: bool,
}

impl HeldProfile {
    fn new(name: &str, profile: SeccompProfile, builtin: bool) -> HeldProfile {
        HeldProfile {
            name: name.into(),
            digest: profile.digest(),
            profile: Arc::new(profile),
            builtin,
        }
    }
}

/// Every profile the host holds, by name. Built from the validated configuration; the runtime
/// shares it (in an `Arc`) and replaces it whole on reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldProfiles {
    by_name: BTreeMap<String, HeldProfile>,
}

impl HeldProfiles {
    /// The built-in profiles for `config.architectures` and the operator's profiles, each
    /// checked (errors name the key, as [`SeccompConfig::validate`] does). A `SCMP_ACT_ERRNO`
    /// default action without `default-errno` is held with EPERM.
    pub fn from_config(config: &SeccompConfig) -> Result<HeldProfiles, Error> {
        config.validate_architectures()?;
        let mut held = HeldProfiles::builtins(&config.architectures);
        for (name, profile) in &config.profiles {
            let profile = held_seccomp_profile(name, profile)?;
            held.by_name
                .insert(name.clone(), HeldProfile::new(name, profile, false));
        }
        Ok(held)
    }

    /// The profile called `name`, built-in or the operator's.
    pub fn get(&self, name: &str) -> Option<&HeldProfile> {
        self.by_name.get(name)
    }

    /// Every name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Every profile, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = &HeldProfile> {
        self.by_name.values()
    }

    /// Only the built-ins, for `architectures` (already checked by the caller).
    fn builtins(architectures: &[String]) -> HeldProfiles {
        let by_name = builtin::NAMES
            .iter()
            .filter_map(|&name| {
                let profile = builtin::profile(name, architectures)?;
                Some((name.to_string(), HeldProfile::new(name, profile, true)))
            })
            .collect();
        HeldProfiles { by_name }
    }
}

impl Default for HeldProfiles {
    /// The built-in profiles for [`builtin::ARCHITECTURES`]: what runs without a `[seccomp]`
    /// table.
    fn default() -> Self {
        HeldProfiles::builtins(&builtin::default_architectures())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decision::SeccompAction;

    fn config(toml: &str) -> SeccompConfig {
        Config::from_toml(toml).unwrap().seccomp
    }

    #[test]
    fn default_holds_the_builtins_for_the_default_architectures() {
        let held = HeldProfiles::default();
        assert_eq!(
            held,
            HeldProfiles::from_config(&SeccompConfig::default()).unwrap()
        );
        assert_eq!(held.names().collect::<Vec<_>>(), ["default", "strict"]);
        for profile in held.iter() {
            assert!(profile.builtin);
            assert_eq!(profile.profile.architectures, builtin::ARCHITECTURES);
            assert_eq!(
                *profile.profile,
                builtin::profile(&profile.name, &builtin::default_architectures()).unwrap()
            );
        }
    }

    #[test]
    fn builtins_follow_the_configured_architectures() {
        let held = HeldProfiles::from_config(&config(
            "[seccomp]\narchitectures = [\"SCMP_ARCH_X86_64\"]\n",
        ))
        .unwrap();
        let default = held.get(builtin::DEFAULT).unwrap();
        assert_eq!(default.profile.architectures, ["SCMP_ARCH_X86_64"]);
        assert_ne!(
            default.digest,
            HeldProfiles::default()
                .get(builtin::DEFAULT)
                .unwrap()
                .digest,
            "the architectures are part of the profile"
        );
    }

    #[test]
    fn operator_profiles_are_held_beside_the_builtins() {
        let held = HeldProfiles::from_config(&config(
            r#"
            [seccomp.profiles.web]
            default-action = "SCMP_ACT_ERRNO"
            syscalls = [{ names = ["read", "write", "exit_group"], action = "SCMP_ACT_ALLOW" }]
            [seccomp.profiles.audit-all]
            default-action = "SCMP_ACT_LOG"
            "#,
        ))
        .unwrap();
        assert_eq!(
            held.names().collect::<Vec<_>>(),
            ["audit-all", "default", "strict", "web"]
        );
        let web = held.get("web").unwrap();
        assert!(!web.builtin);
        assert_eq!(web.name, "web");
        assert_eq!(web.profile.default_action, SeccompAction::Errno);
        assert_eq!(
            web.profile.default_errno,
            Some(builtin::EPERM),
            "EPERM filled in"
        );
        assert!(
            web.profile.architectures.is_empty(),
            "operator profiles keep theirs"
        );
        assert_eq!(web.digest, web.profile.digest());
        assert_eq!(held.get("audit-all").unwrap().profile.default_errno, None);
        assert!(held.get("nope").is_none());
        let digests: Vec<&str> = held.iter().map(|p| p.digest.as_str()).collect();
        assert!(
            digests
                .iter()
                .enumerate()
                .all(|(i, d)| !digests[..i].contains(d))
        );
    }

    #[test]
    fn from_config_rejects_what_validate_rejects() {
        let mut bad = SeccompConfig::default();
        bad.architectures.clear();
        let err = HeldProfiles::from_config(&bad).unwrap_err().to_string();
        assert!(err.starts_with("seccomp.architectures:"), "{err}");

        let mut bad = SeccompConfig::default();
        let profile = builtin::profile(builtin::STRICT, &[]).unwrap();
        bad.profiles.insert(builtin::STRICT.into(), profile.clone());
        let err = HeldProfiles::from_config(&bad).unwrap_err().to_string();
        assert!(err.starts_with("seccomp.profiles.strict:"), "{err}");

        let mut bad = SeccompConfig::default();
        let mut typo = profile;
        typo.syscalls[0].names.push("opena".into());
        bad.profiles.insert("mine".into(), typo);
        let err = HeldProfiles::from_config(&bad).unwrap_err();
        assert_eq!(err, bad.validate().unwrap_err());
        assert!(err.to_string().contains("\"opena\""), "{err}");
    }
}
