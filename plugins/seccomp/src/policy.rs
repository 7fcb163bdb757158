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
//!
//! The profiles themselves are held by the host (its built-ins and the operator's
//! `[seccomp.profiles]`): the plugin names one (`use-seccomp-profile`) and never copies it.

use std::collections::BTreeMap;

use bulkhead_sdk::{Container, Decision, DecisionPoint, PluginError, parse_config};
use serde::Deserialize;
use serde::de::IgnoredAny;

/// The plugin's name, as in its metadata and at the start of every deny reason.
pub const NAME: &str = "seccomp";

/// The profile containers get when the operator configures nothing: the host's built-in.
pub const DEFAULT_PROFILE: &str = "default";

/// The operator's settings (the plugin's `[plugins.config]` table). Every key is optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// The profile for containers nothing else selects a profile for. Default `default`.
    pub default_profile: String,
    /// Namespace -> profile name.
    pub namespace_profiles: BTreeMap<String, String>,
    /// Pod annotation key through which a pod may pick a profile by name. None: disabled.
    pub annotation: Option<String>,
    /// Profile names a pod may pick through `annotation`.
    pub allowed_annotation_profiles: Vec<String>,
    /// Replace profiles containers already carry. Default false: they keep theirs.
    pub override_existing: bool,
    /// Former key: profiles are now defined in the host's config. Refused with a pointer there.
    profiles: Option<IgnoredAny>,
    /// Former key: now `[seccomp] architectures` in the host's config. Refused likewise.
    architectures: Option<IgnoredAny>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            default_profile: DEFAULT_PROFILE.into(),
            namespace_profiles: BTreeMap::new(),
            annotation: None,
            allowed_annotation_profiles: Vec::new(),
            override_existing: false,
            profiles: None,
            architectures: None,
        }
    }
}

impl Config {
    /// Parses the operator's config (JSON, as the daemon passes the TOML table). Empty text is
    /// the default config. Checks nothing against the host; see [`Config::validate`].
    pub fn from_json(text: &str) -> Result<Config, PluginError> {
        parse_config(NAME, text)
    }

    /// Checks every profile reference against the names the host holds (`held`), and the keys
    /// that moved to the host's config, naming the key at fault.
    pub fn validate(&self, held: &[String]) -> Result<(), PluginError> {
        let fail = |reason: String| Err(PluginError::InvalidConfig(format!("{NAME}: {reason}")));
        if self.profiles.is_some() {
            return fail(
                "config key `profiles`: seccomp profiles are held by the host now; define them \
                 as `[seccomp.profiles.<name>]` in bulkhead's config and name them here"
                    .into(),
            );
        }
        if self.architectures.is_some() {
            return fail(
                "config key `architectures`: set it as `[seccomp] architectures` in bulkhead's \
                 config, where the built-in profiles are held"
                    .into(),
            );
        }
        let exists = |name: &str| held.iter().any(|h| h == name);
        let known = || held.join(", ");
        if !exists(&self.default_profile) {
            return fail(format!(
                "config key `default-profile`: the host holds no profile named {:?} (it holds: {})",
                self.default_profile,
                known()
            ));
        }
        for (namespace, name) in &self.namespace_profiles {
            if !exists(name) {
                return fail(format!(
                    "config key `namespace-profiles.{namespace}`: the host holds no profile named {name:?} (it holds: {})",
                    known()
                ));
            }
        }
        for name in &self.allowed_annotation_profiles {
            if !exists(name) {
                return fail(format!(
                    "config key `allowed-annotation-profiles`: the host holds no profile named {name:?} (it holds: {})",
                    known()
                ));
            }
        }
        if self
            .annotation
            .as_deref()
            .is_some_and(|key| key.trim().is_empty())
        {
            return fail("config key `annotation`: the annotation key is empty".into());
        }
        Ok(())
    }
}

/// Judges one container: the profile to apply, or a deny when the pod asked for a profile it
/// may not pick.
pub fn judge(container: &Container, config: &Config) -> Decision {
    if container.event != DecisionPoint::PostCreateContainer {
        return Decision::allow();
    }
    if container.seccomp.is_some() && !config.override_existing {
        return Decision::allow();
    }
    let requested = config
        .annotation
        .as_deref()
        .and_then(|key| Some((key, container.pod_annotation(key)?.trim())));
    let name = match requested {
        Some((key, name)) => {
            if !config.allowed_annotation_profiles.iter().any(|p| p == name) {
                return Decision::deny(format!(
                    "{NAME}: profile {name:?} requested by pod annotation {key:?} is not allowed (rule allowed-annotation-profiles)"
                ));
            }
            name
        }
        None => config
            .namespace_profiles
            .get(&container.pod.namespace)
            .unwrap_or(&config.default_profile),
    };
    Decision::allow().use_seccomp_profile(name)
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

    /// What the host holds in these tests: its built-ins and one operator profile, `web`.
    fn held() -> Vec<String> {
        ["default", "strict", "web"].map(String::from).to_vec()
    }

    fn config(json: &str) -> Config {
        let config = Config::from_json(json).unwrap();
        config.validate(&held()).unwrap();
        config
    }

    fn config_error(json: &str) -> String {
        match Config::from_json(json).and_then(|c| c.validate(&held())) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("expected a config error for {json}, got {other:?}"),
        }
    }

    /// The profile name a decision applies, if any.
    fn applied(decision: &Decision) -> Option<&str> {
        decision.mutations.iter().find_map(|m| match m {
            Mutation::UseSeccompProfile(name) => Some(name.as_str()),
            _ => None,
        })
    }

    #[test]
    fn unconfined_container_gets_the_builtin_default() {
        let d = judge(&container("team-a"), &config(""));
        assert!(d.is_allow());
        assert_eq!(applied(&d), Some("default"));
        assert_eq!(d.mutations.len(), 1);
    }

    #[test]
    fn existing_profile_is_kept() {
        let mut c = container("team-a");
        c.seccomp = Some(SeccompBuilder::new(SeccompAction::Allow).build());
        let d = judge(&c, &config("{}"));
        assert!(d.is_allow() && d.mutations.is_empty());
    }

    #[test]
    fn override_existing_replaces_it() {
        let mut c = container("team-a");
        c.seccomp = Some(SeccompBuilder::new(SeccompAction::Allow).build());
        let d = judge(&c, &config(r#"{"override-existing": true}"#));
        assert_eq!(applied(&d), Some("default"));
    }

    #[test]
    fn default_profile_picks_strict_or_an_operator_profile() {
        let d = judge(&container("a"), &config(r#"{"default-profile": "strict"}"#));
        assert_eq!(applied(&d), Some("strict"));
        let d = judge(&container("a"), &config(r#"{"default-profile": "web"}"#));
        assert_eq!(applied(&d), Some("web"));
    }

    #[test]
    fn namespace_profiles() {
        let cfg = config(r#"{"namespace-profiles": {"batch": "strict"}}"#);
        assert_eq!(applied(&judge(&container("batch"), &cfg)), Some("strict"));
        assert_eq!(applied(&judge(&container("web"), &cfg)), Some("default"));
    }

    #[test]
    fn annotation_selects_an_allowed_profile() {
        let cfg = config(
            r#"{"annotation": "seccomp.bulkhead.dev/profile", "allowed-annotation-profiles": ["web"],
                "namespace-profiles": {"a": "strict"}}"#,
        );
        let mut c = container("a");
        c.pod
            .annotations
            .push(("seccomp.bulkhead.dev/profile".into(), "web".into()));
        assert_eq!(applied(&judge(&c, &cfg)), Some("web"));
        c.pod.annotations[0].1 = "default".into();
        let reason = judge(&c, &cfg).deny_reason().unwrap().to_string();
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
        assert_eq!(applied(&judge(&c, &config(""))), Some("default"));
    }

    #[test]
    fn only_post_create_is_judged() {
        let mut c = container("a");
        c.event = DecisionPoint::CreateContainer;
        assert!(judge(&c, &config("")).mutations.is_empty());
    }

    #[test]
    fn references_must_name_profiles_the_host_holds() {
        let err = config_error(r#"{"default-profile": "nope"}"#);
        assert!(err.contains("`default-profile`"), "{err}");
        assert!(err.contains("it holds: default, strict, web"), "{err}");
        assert!(
            config_error(r#"{"namespace-profiles": {"a": "nope"}}"#)
                .contains("`namespace-profiles.a`")
        );
        assert!(
            config_error(r#"{"allowed-annotation-profiles": ["nope"]}"#)
                .contains("`allowed-annotation-profiles`")
        );
    }

    #[test]
    fn keys_that_moved_to_the_host_say_where_they_went() {
        let err = config_error(r#"{"profiles": {"web": {"default-action": "SCMP_ACT_ALLOW"}}}"#);
        assert!(
            err.contains("`profiles`") && err.contains("[seccomp.profiles.<name>]"),
            "{err}"
        );
        let err = config_error(r#"{"architectures": ["SCMP_ARCH_X86_64"]}"#);
        assert!(
            err.contains("`architectures`") && err.contains("[seccomp] architectures"),
            "{err}"
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
}
