//! Which secrets a container gets, as a pure function of the container view and the operator's
//! grants, so it unit-tests natively with plain `cargo test`.
//!
//! A pod asks for a secret with a pod annotation `secrets.bulkhead.dev/<secret-name>` whose value
//! is the absolute file path the secret should appear at inside the container. At
//! `post-create-container`, every request must be well-formed and granted to the pod's namespace
//! by one of the operator's `grants`; then each becomes a `mount-secret` mutation (mode 0400)
//! that the host fulfils. Any ungranted or malformed request denies the container.
//!
//! The plugin only ever handles secret *names*: the host looks up and mounts the values.

use bulkhead_sdk::{Container, Decision, DecisionPoint, PluginError, parse_config};
use serde::Deserialize;

/// The plugin's name, as in its metadata and at the start of every deny reason.
pub const NAME: &str = "secrets";

/// Prefix of the pod annotations that request secrets.
pub const ANNOTATION_PREFIX: &str = "secrets.bulkhead.dev/";

/// File mode of a mounted secret: readable by its owner only.
pub const MODE: u32 = 0o400;

/// Longest secret name accepted (a Kubernetes object name's limit).
const MAX_NAME: usize = 253;

/// The operator's settings (the plugin's `[plugins.config]` table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// Which namespaces may have which secrets. Default: none (every request is denied).
    pub grants: Vec<Grant>,
}

/// One grant: these namespaces may mount these secrets.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grant {
    /// Namespaces (`*` = every namespace).
    pub namespaces: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
}

impl Grant {
    fn grants(&self, namespace: &str, secret: &str) -> bool {
        self.namespaces
            .iter()
            .any(|ns| ns == "*" || ns == namespace)
            && self.secrets.iter().any(|s| s == secret)
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

    /// Checks what the types cannot, naming the key at fault.
    pub fn validate(&self) -> Result<(), String> {
        for (i, grant) in self.grants.iter().enumerate() {
            if grant.namespaces.is_empty() {
                return Err(format!(
                    "config key `grants[{i}].namespaces`: empty, so the grant grants nothing (use [\"*\"] for every namespace)"
                ));
            }
            if let Some(ns) = grant.namespaces.iter().find(|ns| ns.trim().is_empty()) {
                return Err(format!(
                    "config key `grants[{i}].namespaces`: {ns:?} is not a namespace"
                ));
            }
            if let Some(name) = grant.secrets.iter().find(|s| !is_secret_name(s)) {
                return Err(format!(
                    "config key `grants[{i}].secrets`: {name:?} is not a secret name (lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit)"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` is a secret name: `[a-z0-9][a-z0-9._-]*`, at most 253 characters.
pub fn is_secret_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= MAX_NAME
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Whether `target` is a usable file path inside the container: absolute, not `/` itself, and
/// without `..` components or NUL bytes.
pub fn is_target_path(target: &str) -> bool {
    target.starts_with('/')
        && !target.trim_matches('/').is_empty()
        && !target.contains('\0')
        && !target.split('/').any(|c| c == "..")
}

/// Judges one container: a `mount-secret` per granted request, or a deny for the first request
/// that is malformed or not granted.
pub fn judge(container: &Container, config: &Config) -> Decision {
    if container.event != DecisionPoint::PostCreateContainer {
        return Decision::allow();
    }
    let namespace = container.pod.namespace.as_str();
    let mut decision = Decision::allow();
    let mut targets: Vec<&str> = Vec::new();
    for (key, value) in &container.pod.annotations {
        let Some(secret) = key.strip_prefix(ANNOTATION_PREFIX) else {
            continue;
        };
        let target = value.trim();
        if !is_secret_name(secret) {
            return Decision::deny(format!(
                "{NAME}: annotation {key:?} names an invalid secret {secret:?} (lower-case letters, digits, `.`, `_` and `-`, starting with a letter or digit)"
            ));
        }
        if !is_target_path(target) {
            return Decision::deny(format!(
                "{NAME}: target {target:?} of secret {secret:?} must be an absolute file path without `..`"
            ));
        }
        if targets.contains(&target) {
            return Decision::deny(format!(
                "{NAME}: two secrets are requested at the same target {target:?}"
            ));
        }
        if !config.grants.iter().any(|g| g.grants(namespace, secret)) {
            return Decision::deny(format!(
                "{NAME}: secret {secret:?} is not granted to namespace {namespace:?}"
            ));
        }
        targets.push(target);
        decision = decision.mount_secret(secret, target, MODE);
    }
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_sdk::{Image, Mutation, Pod, Process};

    /// A post-create container in `namespace` whose pod has `annotations`.
    fn container(namespace: &str, annotations: &[(&str, &str)]) -> Container {
        Container {
            event: DecisionPoint::PostCreateContainer,
            id: "c1".into(),
            name: "app".into(),
            pod_sandbox_id: "p1".into(),
            pod: Pod {
                name: "web".into(),
                namespace: namespace.into(),
                uid: "u1".into(),
                annotations: annotations
                    .iter()
                    .map(|(k, v)| ((*k).into(), (*v).into()))
                    .collect(),
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
            ..Default::default()
        }
    }

    const GRANTS: &str = r#"{"grants": [
        {"namespaces": ["team-a"], "secrets": ["db-password", "api.token"]},
        {"namespaces": ["*"], "secrets": ["ca-bundle"]}]}"#;

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

    /// The (secret, target, mode) of every mount-secret mutation.
    fn mounts(d: &Decision) -> Vec<(String, String, u32)> {
        d.mutations
            .iter()
            .filter_map(|m| match m {
                Mutation::MountSecret(s) => Some((s.secret.clone(), s.target.clone(), s.mode)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn no_requests_allow_unchanged() {
        let c = container("team-a", &[("other.io/x", "y")]);
        for cfg in [config(""), config(GRANTS)] {
            let d = judge(&c, &cfg);
            assert!(d.is_allow() && d.mutations.is_empty());
        }
    }

    #[test]
    fn granted_requests_become_mounts() {
        let c = container(
            "team-a",
            &[
                ("secrets.bulkhead.dev/db-password", "/run/secrets/db"),
                ("secrets.bulkhead.dev/ca-bundle", "/etc/ssl/ca.pem"),
            ],
        );
        let d = judge(&c, &config(GRANTS));
        assert!(d.is_allow());
        assert_eq!(
            mounts(&d),
            [
                ("db-password".into(), "/run/secrets/db".into(), 0o400),
                ("ca-bundle".into(), "/etc/ssl/ca.pem".into(), 0o400),
            ]
        );
    }

    #[test]
    fn ungranted_request_is_denied() {
        let c = container("team-b", &[("secrets.bulkhead.dev/db-password", "/run/db")]);
        assert_eq!(
            reason(&c, &config(GRANTS)),
            r#"secrets: secret "db-password" is not granted to namespace "team-b""#
        );
        let c = container("team-a", &[("secrets.bulkhead.dev/db-password", "/run/db")]);
        assert!(reason(&c, &config("")).contains("is not granted"));
    }

    #[test]
    fn wildcard_namespace_grants_everywhere() {
        let c = container("anything", &[("secrets.bulkhead.dev/ca-bundle", "/ca.pem")]);
        assert!(judge(&c, &config(GRANTS)).is_allow());
    }

    #[test]
    fn invalid_secret_names_are_denied() {
        for name in ["DB", "-db", ".db", "db/x", "", "a b"] {
            let key = format!("secrets.bulkhead.dev/{name}");
            let c = container("team-a", &[(key.as_str(), "/run/x")]);
            assert!(
                reason(&c, &config(GRANTS)).contains("invalid secret"),
                "{name:?}"
            );
        }
        assert!(is_secret_name("db-password.v2_1"));
        assert!(!is_secret_name(&"a".repeat(254)));
    }

    #[test]
    fn invalid_targets_are_denied() {
        for target in [
            "run/db",
            "/",
            "/run/../etc/shadow",
            "..",
            "",
            "/a/..",
            "/a\0b",
        ] {
            let c = container("team-a", &[("secrets.bulkhead.dev/db-password", target)]);
            assert!(
                reason(&c, &config(GRANTS)).contains("must be an absolute file path"),
                "{target:?}"
            );
        }
        assert!(is_target_path("/run/secrets/db..bak"));
    }

    #[test]
    fn one_target_per_secret() {
        let c = container(
            "team-a",
            &[
                ("secrets.bulkhead.dev/db-password", "/run/s"),
                ("secrets.bulkhead.dev/api.token", "/run/s"),
            ],
        );
        assert!(reason(&c, &config(GRANTS)).contains("same target"));
    }

    #[test]
    fn only_post_create_is_judged() {
        let mut c = container("team-b", &[("secrets.bulkhead.dev/db-password", "/run/db")]);
        c.event = DecisionPoint::CreateContainer;
        assert!(judge(&c, &config(GRANTS)).is_allow());
    }

    #[test]
    fn config_errors_name_the_key() {
        assert!(config_error(r#"{"grant": []}"#).contains("`grant`"));
        let err = config_error(r#"{"grants": [{"namespaces": ["a"]}]}"#);
        assert!(err.contains("`grants`") && err.contains("secrets"), "{err}");
        assert!(
            config_error(r#"{"grants": [{"namespaces": ["a"], "secrets": ["Bad"]}]}"#)
                .contains("`grants[0].secrets`")
        );
        assert!(
            config_error(r#"{"grants": [{"namespaces": [], "secrets": ["a"]}]}"#)
                .contains("`grants[0].namespaces`")
        );
        assert!(config_error(r#"{"grants": "all"}"#).contains("`grants`"));
    }
}
