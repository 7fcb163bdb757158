//! Which seccomp profile a container gets, as a pure function of the container view and the
//! operator's config, so it unit-tests natively.
//!
//! At `post-create-container` a container that runs unconfined (no seccomp profile in its spec)
//! gets a profile, chosen in this order:
//! 1. the pod annotation the operator named in `annotation`, if the pod sets it (the profile must
//!    be in `allowed-annotation-profiles`, otherwise the container is denied);
//! 2. the profile `namespace-profiles` maps the pod's namespace to;
//! 3. `default-profile` (bulkhead's built-in `default` unless configured).
//!
//! A container that already carries a profile keeps it, unless `override-existing` is set.

use std::collections::BTreeMap;

use bulkhead_sdk::{Container, Decision, DecisionPoint, PluginError, SeccompProfile, parse_config};
use serde::Deserialize;

use crate::builtin;
use crate::profile::ProfileConfig;

/// The plugin's name, as in its metadata and at the start of every deny reason.
pub const NAME: &str = "seccomp";

/// The operator's settings (the plugin's `[plugins.config]` table). Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The profile for containers nothing else selects a profile for. Default `default`.
    pub default_profile: String,
    /// Operator-defined profiles by name (may not reuse a built-in name).
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// Namespace -> profile name.
    pub namespace_profiles: BTreeMap<String, String>,
    /// Pod annotation key through which a pod may pick a profile by name. None: disabled.
    pub annotation: Option<String>,
    /// Profile names a pod may pick through `annotation`.
    pub allowed_annotation_profiles: Vec<String>,
    /// Replace profiles containers already carry. Default false: they keep theirs.
    pub override_existing: bool,
    /// `SCMP_ARCH_*` names the built-in profiles apply to. Default x86_64 and x86.
    pub architectures: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            default_profile: builtin::DEFAULT.into(),
            profiles: BTreeMap::new(),
            namespace_profiles: BTreeMap::new(),
            annotation: None,
            allowed_annotation_profiles: Vec::new(),
            override_existing: false,
            architectures: builtin::default_architectures(),
        }
    }
}

impl Config {
    /// Parses and validates the operator's config (JSON, as the daemon passes the TOML table).
    /// Empty text is the default config.
    pub fn from_json(text: &str) -> Result<Config, PluginError> {
        let config: Config = parse_config(NAME, text)?;
        config
            .validate()
            .map_err(|reason| PluginError::InvalidConfig(format!("{NAME}: {reason}")))?;
        Ok(config)
    }

    /// Checks every operator profile against the syscall table and every profile reference,
    /// naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.architectures.is_empty() {
            return Err("config key `architectures`: list at least one architecture".into());
        }
        for (i, arch) in self.architectures.iter().enumerate() {
            if !crate::profile::is_known_architecture(arch) {
                return Err(format!(
                    "config key `architectures`: unknown architecture {arch:?}"
                ));
            }
            if self.architectures[..i].contains(arch) {
                return Err(format!(
                    "config key `architectures`: {arch:?} is listed twice"
                ));
            }
        }
        for (name, profile) in &self.profiles {
            if builtin::NAMES.contains(&name.as_str()) {
                return Err(format!(
                    "config key `profiles.{name}`: {name:?} is a built-in profile; pick another name"
                ));
            }
            profile.to_profile().map_err(|reason| {
                format!("config key `profiles.{name}`: profile {name:?}: {reason}")
            })?;
        }
        let exists =
            |name: &str| builtin::NAMES.contains(&name) || self.profiles.contains_key(name);
        if !exists(&self.default_profile) {
            return Err(format!(
                "config key `default-profile`: no profile named {:?}",
                self.default_profile
            ));
        }
        for (namespace, name) in &self.namespace_profiles {
            if !exists(name) {
                return Err(format!(
                    "config key `namespace-profiles.{namespace}`: no profile named {name:?}"
                ));
            }
        }
        for name in &self.allowed_annotation_profiles {
            if !exists(name) {
                return Err(format!(
                    "config key `allowed-annotation-profiles`: no profile named {name:?}"
                ));
            }
        }
        if self
            .annotation
            .as_deref()
            .is_some_and(|key| key.trim().is_empty())
        {
            return Err("config key `annotation`: the annotation key is empty".into());
        }
        Ok(())
    }

    /// The profile called `name` (built-in or operator-defined), validated.
    pub fn profile(&self, name: &str) -> Result<SeccompProfile, PluginError> {
        if let Some(profile) = self.profiles.get(name) {
            return profile.to_profile().map_err(|reason| {
                PluginError::InvalidConfig(format!(
                    "{NAME}: config key `profiles.{name}`: profile {name:?}: {reason}"
                ))
            });
        }
        builtin::profile(name, &self.architectures)
            .ok_or_else(|| PluginError::InvalidConfig(format!("{NAME}: no profile named {name:?}")))
    }
}

/// Judges one container: the profile to apply, or a deny when the pod asked for a profile it
/// may not pick.
pub fn judge(container: &Container, config: &Config) -> Result<Decision, PluginError> {
    if container.event != DecisionPoint::PostCreateContainer {
        return Ok(Decision::allow());
    }
    if container.seccomp.is_some() && !config.override_existing {
        return Ok(Decision::allow());
    }
    let requested = config
        .annotation
        .as_deref()
        .and_then(|key| Some((key, container.pod_annotation(key)?.trim())));
    let name = match requested {
        Some((key, name)) => {
            if !config.allowed_annotation_profiles.iter().any(|p| p == name) {
                return Ok(Decision::deny(format!(
                    "{NAME}: profile {name:?} requested by pod annotation {key:?} is not allowed (rule allowed-annotation-profiles)"
                )));
            }
            name
        }
        None => config
            .namespace_profiles
            .get(&container.pod.namespace)
            .unwrap_or(&config.default_profile),
    };
    Ok(Decision::allow().seccomp(config.profile(name)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_sdk::{Image, Mutation, Pod, Process, SeccompAction, SeccompBuilder};

    /// An unconfined container in `namespace` at post-create.
    fn container(namespace: &str) -> Container {
        Container {
            event: DecisionPoint::PostCreateContainer,
            id: "c1".into(),
            name: "app".into(),
            pod_sandbox_id: "p1".into(),
            pod: Pod {
                name: "web".into(),
                namespace: namespace.into(),
                uid: "u1".into(),
                ..Default::default()
            },
            image: Image {
                reference: "busybox".into(),
                normalized: "docker.io/library/busybox:latest".into(),
                registry: "docker.io".into(),
                repository: "library/busybox".into(),
                tag: Some("latest".into()),
                ..Default::default()
            },
            process: Process {
                cwd: "/".into(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    const WEB: &str = r#"{"default-action": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_ERRNO"}]}"#;

    fn config(json: &str) -> Config {
        Config::from_json(json).unwrap()
    }

    fn config_error(json: &str) -> String {
        match Config::from_json(json) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("expected a config error for {json}, got {other:?}"),
        }
    }

    /// The profile a decision applies, if any.
    fn applied(decision: &Decision) -> Option<&SeccompProfile> {
        decision.mutations.iter().find_map(|m| match m {
            Mutation::SetSeccomp(p) => Some(p),
            _ => None,
        })
    }

    /// Asserts `decision` applies the built-in profile `name` (the WIT types have no
    /// `PartialEq`; their Debug output is complete).
    #[track_caller]
    fn assert_builtin(decision: &Decision, name: &str) {
        let expected = builtin::profile(name, &builtin::default_architectures()).unwrap();
        assert_eq!(
            format!("{:?}", applied(decision)),
            format!("{:?}", Some(&expected))
        );
    }

    #[test]
    fn unconfined_container_gets_the_builtin_default() {
        let d = judge(&container("team-a"), &config("")).unwrap();
        assert!(d.is_allow());
        assert_builtin(&d, "default");
    }

    #[test]
    fn existing_profile_is_kept() {
        let mut c = container("team-a");
        c.seccomp = Some(SeccompBuilder::new(SeccompAction::Allow).build());
        let d = judge(&c, &config("{}")).unwrap();
        assert!(d.is_allow() && d.mutations.is_empty());
    }

    #[test]
    fn override_existing_replaces_it() {
        let mut c = container("team-a");
        c.seccomp = Some(SeccompBuilder::new(SeccompAction::Allow).build());
        let d = judge(&c, &config(r#"{"override-existing": true}"#)).unwrap();
        assert_builtin(&d, "default");
    }

    #[test]
    fn default_profile_picks_strict_or_an_operator_profile() {
        let d = judge(&container("a"), &config(r#"{"default-profile": "strict"}"#)).unwrap();
        assert_builtin(&d, "strict");
        let cfg = config(&format!(
            r#"{{"default-profile": "web", "profiles": {{"web": {WEB}}}}}"#
        ));
        let d = judge(&container("a"), &cfg).unwrap();
        assert!(matches!(
            applied(&d).unwrap().default_action,
            SeccompAction::Allow
        ));
    }

    #[test]
    fn namespace_profiles() {
        let cfg = config(r#"{"namespace-profiles": {"batch": "strict"}}"#);
        let strict = judge(&container("batch"), &cfg).unwrap();
        assert_builtin(&strict, "strict");
        let other = judge(&container("web"), &cfg).unwrap();
        assert_builtin(&other, "default");
    }

    #[test]
    fn annotation_selects_an_allowed_profile() {
        let cfg = config(&format!(
            r#"{{"annotation": "seccomp.bulkhead.dev/profile", "allowed-annotation-profiles": ["web"],
                "profiles": {{"web": {WEB}}}, "namespace-profiles": {{"a": "strict"}}}}"#
        ));
        let mut c = container("a");
        c.pod
            .annotations
            .push(("seccomp.bulkhead.dev/profile".into(), "web".into()));
        let d = judge(&c, &cfg).unwrap();
        assert!(matches!(
            applied(&d).unwrap().default_action,
            SeccompAction::Allow
        ));
        c.pod.annotations[0].1 = "default".into();
        let reason = judge(&c, &cfg).unwrap().deny_reason().unwrap().to_string();
        assert_eq!(
            reason,
            r#"seccomp: profile "default" requested by pod annotation "seccomp.bulkhead.dev/profile" is not allowed (rule allowed-annotation-profiles)"#
        );
    }

    #[test]
    fn annotation_is_ignored_when_not_configured() {
        let mut c = container("a");
        c.pod
            .annotations
            .push(("seccomp.bulkhead.dev/profile".into(), "nope".into()));
        let d = judge(&c, &config("")).unwrap();
        assert_builtin(&d, "default");
    }

    #[test]
    fn only_post_create_is_judged() {
        let mut c = container("a");
        c.event = DecisionPoint::CreateContainer;
        assert!(judge(&c, &config("")).unwrap().mutations.is_empty());
    }

    #[test]
    fn unknown_syscall_in_a_profile_names_profile_and_syscall() {
        let err = config_error(
            r#"{"profiles": {"web": {"default-action": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["read", "opena"], "action": "SCMP_ACT_ALLOW"}]}}}"#,
        );
        assert!(err.contains("`profiles.web`"), "{err}");
        assert!(err.contains(r#"unknown syscall "opena""#), "{err}");
    }

    #[test]
    fn unknown_action_names_the_key() {
        let err = config_error(r#"{"profiles": {"web": {"default-action": "SCMP_ACT_MAYBE"}}}"#);
        assert!(
            err.contains("`profiles`") && err.contains("SCMP_ACT_MAYBE"),
            "{err}"
        );
    }

    #[test]
    fn references_must_name_profiles() {
        assert!(config_error(r#"{"default-profile": "nope"}"#).contains("`default-profile`"));
        assert!(
            config_error(r#"{"namespace-profiles": {"a": "nope"}}"#)
                .contains("`namespace-profiles.a`")
        );
        assert!(
            config_error(r#"{"allowed-annotation-profiles": ["nope"]}"#)
                .contains("`allowed-annotation-profiles`")
        );
        assert!(
            config_error(&format!(r#"{{"profiles": {{"default": {WEB}}}}}"#)).contains("built-in")
        );
    }

    #[test]
    fn unknown_key_and_wrong_type_are_named() {
        assert!(config_error(r#"{"default": "strict"}"#).contains("`default`"));
        let err = config_error(r#"{"override-existing": "yes"}"#);
        assert!(
            err.starts_with("seccomp: config key `override-existing`"),
            "{err}"
        );
    }

    #[test]
    fn architectures_pick_what_the_builtin_profiles_cover() {
        let config = Config::from_json(r#"{"architectures": ["SCMP_ARCH_X86_64"]}"#).unwrap();
        let profile = config.profile("default").unwrap();
        assert_eq!(profile.architectures, ["SCMP_ARCH_X86_64"]);
        // Only the filter's coverage changes, not its rules.
        let both = Config::default().profile("default").unwrap();
        assert_eq!(both.architectures, ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"]);
        assert_eq!(profile.syscalls.len(), both.syscalls.len());
    }

    #[test]
    fn architectures_must_be_known_listed_once_and_not_empty() {
        for (config, expected) in [
            (r#"{"architectures": []}"#, "at least one"),
            (
                r#"{"architectures": ["SCMP_ARCH_Z80"]}"#,
                "unknown architecture",
            ),
            (
                r#"{"architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86_64"]}"#,
                "listed twice",
            ),
        ] {
            let Err(PluginError::InvalidConfig(message)) = Config::from_json(config) else {
                panic!("{config} was accepted");
            };
            assert!(
                message.contains("`architectures`") && message.contains(expected),
                "{message}"
            );
        }
    }
}
