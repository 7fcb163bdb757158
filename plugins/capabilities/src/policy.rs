//! The capability rules, as pure functions of the container view and the operator's config, so
//! they unit-test natively with plain `cargo test`.
//!
//! At `post-create-container` (the first point where the capability sets are known):
//! - deny rules, skipped in `exempt-namespaces`: `deny-privileged`, then
//!   `deny-added-capabilities` (a bounding-set capability outside [`RUNTIME_DEFAULT`]);
//! - hardening, applied everywhere: `drop` removes capabilities from every set, and `profile =
//!   "restricted"` keeps only `CAP_NET_BIND_SERVICE` and sets `no_new_privileges` (only in
//!   `restricted-namespaces` when that list is not empty).

use bulkhead_sdk::{Capability, Container, Decision, DecisionPoint, PluginError, parse_config};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// The plugin's name, as in its metadata and at the start of every deny reason.
pub const NAME: &str = "capabilities";

/// containerd's default capability set: what a container gets when its pod adds nothing.
pub const RUNTIME_DEFAULT: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// What the restricted profile keeps.
pub const RESTRICTED_KEEP: &[Capability] = &[Capability::NetBindService];

/// A named capability profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// Keep only `CAP_NET_BIND_SERVICE` and set `no_new_privileges` (Kubernetes' "restricted"
    /// Pod Security Standard).
    Restricted,
}

/// The operator's settings (the plugin's `[plugins.config]` table). Every key is optional.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Capabilities dropped from every container (`CAP_NET_RAW`, `NET_RAW` or `net_raw`).
    #[serde(deserialize_with = "capability_names")]
    pub drop: Vec<Capability>,
    /// Deny privileged containers. Default true.
    pub deny_privileged: bool,
    /// Deny containers whose bounding set holds a capability outside [`RUNTIME_DEFAULT`].
    /// Default true.
    pub deny_added_capabilities: bool,
    /// Namespaces the deny rules skip (the drops and the profile still apply).
    pub exempt_namespaces: Vec<String>,
    /// A capability profile to apply. Default none.
    pub profile: Option<Profile>,
    /// Where `profile` applies; empty means every namespace.
    pub restricted_namespaces: Vec<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            drop: Vec::new(),
            deny_privileged: true,
            deny_added_capabilities: true,
            exempt_namespaces: Vec::new(),
            profile: None,
            restricted_namespaces: Vec::new(),
        }
    }
}

fn capability_names<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Capability>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|name| name.parse::<Capability>().map_err(D::Error::custom))
        .collect()
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

    /// Checks what the types cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (key, list) in [
            ("exempt-namespaces", &self.exempt_namespaces),
            ("restricted-namespaces", &self.restricted_namespaces),
        ] {
            if let Some(bad) = list.iter().find(|ns| ns.trim().is_empty()) {
                return Err(format!("config key `{key}`: {bad:?} is not a namespace"));
            }
        }
        if !self.restricted_namespaces.is_empty() && self.profile.is_none() {
            return Err(
                "config key `restricted-namespaces`: set without `profile = \"restricted\"`, it does nothing"
                    .into(),
            );
        }
        Ok(())
    }
}

/// Bounding-set entries outside the runtime default set, as the view spells them. A name this
/// build does not know counts as added: it is certainly not in the default set.
fn added_capabilities(container: &Container) -> Vec<&str> {
    container
        .capabilities
        .bounding
        .iter()
        .filter(|name| {
            !name
                .parse::<Capability>()
                .is_ok_and(|cap| RUNTIME_DEFAULT.contains(&cap))
        })
        .map(String::as_str)
        .collect()
}

/// Judges one container.
pub fn judge(container: &Container, config: &Config) -> Decision {
    if container.event != DecisionPoint::PostCreateContainer {
        return Decision::allow();
    }
    let namespace = container.pod.namespace.as_str();
    let exempt = config.exempt_namespaces.iter().any(|ns| ns == namespace);
    if !exempt {
        if config.deny_privileged && container.privileged {
            return Decision::deny(format!(
                "{NAME}: privileged container {:?} is denied (rule deny-privileged)",
                container.name
            ));
        }
        let added = added_capabilities(container);
        if config.deny_added_capabilities && !added.is_empty() {
            return Decision::deny(format!(
                "{NAME}: {} outside the runtime default set (rule deny-added-capabilities)",
                if added.len() == 1 {
                    format!("capability {} is", added[0])
                } else {
                    format!("capabilities {} are", added.join(", "))
                }
            ));
        }
    }
    let mut decision = Decision::allow();
    if !config.drop.is_empty() {
        decision = decision.drop_capabilities(config.drop.iter().copied());
    }
    let restricted_here = config.restricted_namespaces.is_empty()
        || config
            .restricted_namespaces
            .iter()
            .any(|ns| ns == namespace);
    if config.profile == Some(Profile::Restricted) && restricted_here {
        decision = decision.keep_only_capabilities(RESTRICTED_KEEP.iter().copied());
        if !container.no_new_privileges {
            decision = decision.no_new_privileges();
        }
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_sdk::{Capabilities, Image, Mutation, Pod, Process};

    /// A post-create container in `namespace` with the runtime default capabilities.
    fn container(namespace: &str) -> Container {
        let defaults: Vec<String> = RUNTIME_DEFAULT.iter().map(|c| c.name().into()).collect();
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
                registry: "docker.io".into(),
                repository: "library/busybox".into(),
                tag: Some("latest".into()),
                ..Default::default()
            },
            process: Process {
                cwd: "/".into(),
                ..Default::default()
            },
            capabilities: Capabilities {
                bounding: defaults.clone(),
                effective: defaults.clone(),
                permitted: defaults,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn privileged(namespace: &str) -> Container {
        let mut c = container(namespace);
        c.privileged = true;
        c.capabilities.bounding = Capability::ALL.iter().map(|c| c.name().into()).collect();
        c
    }

    fn config(json: &str) -> Config {
        Config::from_json(json).unwrap()
    }

    fn config_error(json: &str) -> String {
        match Config::from_json(json) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("expected a config error for {json}, got {other:?}"),
        }
    }

    fn reason(c: &Container, cfg: &Config) -> String {
        judge(c, cfg)
            .deny_reason()
            .unwrap_or("<allowed>")
            .to_string()
    }

    #[test]
    fn defaults_allow_an_ordinary_container_unchanged() {
        let cfg = config("");
        assert_eq!(cfg, Config::default());
        assert!(cfg.deny_privileged && cfg.deny_added_capabilities);
        let d = judge(&container("team-a"), &cfg);
        assert!(d.is_allow() && d.mutations.is_empty());
    }

    #[test]
    fn deny_privileged() {
        assert_eq!(
            reason(&privileged("team-a"), &config("{}")),
            r#"capabilities: privileged container "app" is denied (rule deny-privileged)"#
        );
        let off = config(r#"{"deny-privileged": false, "deny-added-capabilities": false}"#);
        assert!(judge(&privileged("team-a"), &off).is_allow());
    }

    #[test]
    fn deny_added_capabilities() {
        let mut c = container("team-a");
        c.capabilities.bounding.push("CAP_SYS_ADMIN".into());
        c.capabilities.bounding.push("CAP_NET_ADMIN".into());
        assert_eq!(
            reason(&c, &config("")),
            "capabilities: capabilities CAP_SYS_ADMIN, CAP_NET_ADMIN are outside the runtime default set (rule deny-added-capabilities)"
        );
        c.capabilities.bounding.pop();
        assert!(reason(&c, &config("")).contains("capability CAP_SYS_ADMIN is outside"));
        // A capability this build does not know is not a default one either.
        let mut future = container("team-a");
        future.capabilities.bounding.push("CAP_FUTURE".into());
        assert!(!judge(&future, &config("")).is_allow());
        let off = config(r#"{"deny-added-capabilities": false}"#);
        assert!(judge(&c, &off).is_allow());
    }

    #[test]
    fn privileged_is_reported_as_added_when_only_that_rule_is_on() {
        let cfg = config(r#"{"deny-privileged": false}"#);
        assert!(reason(&privileged("a"), &cfg).ends_with("(rule deny-added-capabilities)"));
    }

    #[test]
    fn exempt_namespaces_skip_denies_not_drops() {
        let cfg = config(r#"{"exempt-namespaces": ["kube-system"], "drop": ["NET_RAW"]}"#);
        let d = judge(&privileged("kube-system"), &cfg);
        assert!(d.is_allow());
        assert!(
            matches!(&d.mutations[..], [Mutation::DropCapabilities(c)] if c == &["CAP_NET_RAW"])
        );
        assert!(!judge(&privileged("team-a"), &cfg).is_allow());
    }

    #[test]
    fn drop_removes_capabilities() {
        let cfg = config(r#"{"drop": ["CAP_NET_RAW", "mknod"]}"#);
        let d = judge(&container("a"), &cfg);
        assert!(d.is_allow());
        assert!(
            matches!(&d.mutations[..], [Mutation::DropCapabilities(c)] if c == &["CAP_NET_RAW", "CAP_MKNOD"])
        );
    }

    #[test]
    fn restricted_profile_everywhere() {
        let cfg = config(r#"{"profile": "restricted"}"#);
        let d = judge(&container("a"), &cfg);
        assert!(d.is_allow());
        assert!(
            matches!(&d.mutations[..], [Mutation::KeepOnlyCapabilities(c), Mutation::SetNoNewPrivileges] if c == &["CAP_NET_BIND_SERVICE"])
        );
        let mut nnp = container("a");
        nnp.no_new_privileges = true;
        assert_eq!(judge(&nnp, &cfg).mutations.len(), 1, "NNP already on");
    }

    #[test]
    fn restricted_namespaces() {
        let cfg = config(r#"{"profile": "restricted", "restricted-namespaces": ["team-a"]}"#);
        assert_eq!(judge(&container("team-a"), &cfg).mutations.len(), 2);
        assert!(judge(&container("team-b"), &cfg).mutations.is_empty());
    }

    #[test]
    fn only_post_create_is_judged() {
        let mut c = privileged("a");
        c.event = DecisionPoint::CreateContainer;
        assert!(judge(&c, &config("")).is_allow());
    }

    #[test]
    fn config_errors_name_the_key() {
        let err = config_error(r#"{"drop": ["CAP_FLY"]}"#);
        assert!(
            err.starts_with("capabilities: config key `drop`") && err.contains("CAP_FLY"),
            "{err}"
        );
        assert!(config_error(r#"{"profile": "lenient"}"#).contains("`profile`"));
        assert!(config_error(r#"{"deny-privileged": "no"}"#).contains("`deny-privileged`"));
        assert!(
            config_error(r#"{"exempt-namespace": ["kube-system"]}"#).contains("`exempt-namespace`")
        );
        assert!(
            config_error(r#"{"restricted-namespaces": ["a"]}"#).contains("`restricted-namespaces`")
        );
        assert!(config_error(r#"{"exempt-namespaces": [""]}"#).contains("`exempt-namespaces`"));
    }
}
