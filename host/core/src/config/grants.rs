//! What the operator lets each plugin ask for: `[plugins.grants]` per plugin, and the host-level
//! secret grants in `[[secrets.grants]]`.
//!
//! A plugin's answer is only a request; the host applies a mutation only when the plugin's
//! grants cover it (see [`crate::grants`] for the checker). Without a `[plugins.grants]` table a
//! plugin loaded by path may only **tighten** a container — the kinds in [`TIGHTENING`], each
//! judged against the container's current spec — and a built-in plugin gets exactly the kinds it
//! needs. Everything that could weaken a container or reach into the host (environment,
//! annotations, host mounts, secrets) needs an explicit, scoped grant.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::invalid;
use crate::decision::{MutationKind, is_secret_name};
use crate::error::Error;

/// Mutation kinds that can only make a container safer (each still judged against the
/// container's current spec): the default grant of a plugin loaded by path.
pub const TIGHTENING: [MutationKind; 6] = [
    MutationKind::DropCapabilities,
    MutationKind::KeepOnlyCapabilities,
    MutationKind::SetSeccomp,
    MutationKind::SetNoNewPrivileges,
    MutationKind::SetReadonlyRootfs,
    MutationKind::AddRlimit,
];

/// Environment variables no grant can cover: they change what code the container runs.
pub const FORBIDDEN_ENV: [&str; 2] = ["LD_*", "PATH"];

/// Annotation prefixes no grant can cover: the runtime, runc, CRI, Kata, CRIU, CDI and bulkhead
/// itself interpret them.
pub const RESERVED_ANNOTATION_PREFIXES: [&str; 7] = [
    "io.kubernetes.",
    "io.containerd.",
    "io.bulkhead.",
    "run.oci.",
    "io.katacontainers.",
    "org.criu.",
    "cdi.k8s.io/",
];

/// `[plugins.grants]`: what one plugin may ask for beyond the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Grants {
    /// Which tightening kinds the plugin may return. Absent: every kind in [`TIGHTENING`] for a
    /// plugin loaded by path, the kinds a built-in plugin needs for a built-in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutations: Option<BTreeSet<MutationKind>>,
    /// Environment variables the plugin may set: exact names, or a prefix ending in `*`
    /// (`OTEL_*`). Never `LD_*` or `PATH`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// Annotation key prefixes the plugin may set (`example.com/`). Never a prefix in
    /// [`RESERVED_ANNOTATION_PREFIXES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<String>,
    /// Host directories the plugin may bind-mount into containers (the directory or anything
    /// under it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountGrant>,
}

/// One host directory a plugin may bind-mount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MountGrant {
    /// Absolute host path; mount sources must be it or lie under it.
    pub source: String,
    /// Mount as the plugin asks. Default false: the mount is forced `ro,nosuid,nodev`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub writable: bool,
}

/// One `[[secrets.grants]]` entry: these plugins may mount these secrets into containers of
/// these namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretGrant {
    /// Plugin names (as their metadata declares them, e.g. `secrets`).
    pub plugins: Vec<String>,
    /// Pod namespaces (`*` = every namespace).
    pub namespaces: Vec<String>,
    /// Secret names.
    pub secrets: Vec<String>,
}

impl SecretGrant {
    /// Whether this entry lets `plugin` mount `secret` into a pod of `namespace`.
    pub fn covers(&self, plugin: &str, namespace: &str, secret: &str) -> bool {
        self.plugins.iter().any(|p| p == plugin)
            && self.namespaces.iter().any(|n| n == "*" || n == namespace)
            && self.secrets.iter().any(|s| s == secret)
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), Error> {
        for (key, list) in [
            ("plugins", &self.plugins),
            ("namespaces", &self.namespaces),
            ("secrets", &self.secrets),
        ] {
            if list.is_empty() {
                return Err(invalid(
                    &format!("{at}.{key}"),
                    "must not be empty (the grant would grant nothing)".into(),
                ));
            }
            if let Some(blank) = list.iter().find(|v| v.trim().is_empty()) {
                return Err(invalid(
                    &format!("{at}.{key}"),
                    format!("{blank:?} is not a name"),
                ));
            }
        }
        if let Some(bad) = self.secrets.iter().find(|s| !is_secret_name(s)) {
            return Err(invalid(
                &format!("{at}.secrets"),
                format!("{bad:?} is not a secret name (letters, digits, `-`, `_` or `.`)"),
            ));
        }
        Ok(())
    }
}

impl Grants {
    /// Whether `name` may be set: granted and not forbidden.
    pub fn covers_env(&self, name: &str) -> bool {
        !is_forbidden_env(name) && self.env.iter().any(|pattern| env_matches(pattern, name))
    }

    /// Whether annotation `key` may be set: granted and not reserved.
    pub fn covers_annotation(&self, key: &str) -> bool {
        !is_reserved_annotation(key) && self.annotations.iter().any(|p| key.starts_with(p.as_str()))
    }

    pub(super) fn validate(&self, at: &str) -> Result<(), Error> {
        if let Some(kinds) = &self.mutations
            && let Some(scoped) = kinds.iter().find(|k| !TIGHTENING.contains(k))
        {
            let key = match scoped {
                MutationKind::AddEnv => "env",
                MutationKind::AddAnnotation => "annotations",
                MutationKind::AddMount => "mounts",
                _ => "[[secrets.grants]] plugins",
            };
            return Err(invalid(
                &format!("{at}.grants.mutations"),
                format!("{} is granted by `{key}`, not listed here", scoped.name()),
            ));
        }
        for pattern in &self.env {
            let name = pattern.strip_suffix('*').unwrap_or(pattern);
            let plain = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if (name.is_empty() && pattern != "*") || !plain {
                return Err(invalid(
                    &format!("{at}.grants.env"),
                    format!(
                        "{pattern:?} is not a variable name or a prefix ending in `*` (letters, digits, `_`)"
                    ),
                ));
            }
            if FORBIDDEN_ENV
                .iter()
                .any(|f| env_patterns_overlap_fully(f, pattern))
            {
                return Err(invalid(
                    &format!("{at}.grants.env"),
                    format!(
                        "{pattern:?} can never be granted (LD_* and PATH change what code runs)"
                    ),
                ));
            }
        }
        for prefix in &self.annotations {
            if prefix.is_empty() || prefix.chars().any(char::is_whitespace) {
                return Err(invalid(
                    &format!("{at}.grants.annotations"),
                    format!("{prefix:?} is not an annotation key prefix"),
                ));
            }
            if is_reserved_annotation(prefix) {
                return Err(invalid(
                    &format!("{at}.grants.annotations"),
                    format!(
                        "{prefix:?} is reserved: the runtime or bulkhead interprets these annotations"
                    ),
                ));
            }
        }
        for (i, mount) in self.mounts.iter().enumerate() {
            let source = &mount.source;
            if !source.starts_with('/') || source.split('/').any(|c| c == ".." || c == ".") {
                return Err(invalid(
                    &format!("{at}.grants.mounts[{i}].source"),
                    format!("{source:?} must be an absolute path without `.` or `..`"),
                ));
            }
            if source.trim_end_matches('/').is_empty() {
                return Err(invalid(
                    &format!("{at}.grants.mounts[{i}].source"),
                    "\"/\" would grant the whole host; name a directory".into(),
                ));
            }
        }
        Ok(())
    }
}

/// Whether environment variable `name` can never be set by a plugin.
pub fn is_forbidden_env(name: &str) -> bool {
    name.starts_with("LD_") || name == "PATH"
}

/// Whether annotation `key` lies under a reserved prefix.
pub fn is_reserved_annotation(key: &str) -> bool {
    RESERVED_ANNOTATION_PREFIXES
        .iter()
        .any(|prefix| key.starts_with(prefix))
}

fn env_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// Whether every name `grant` covers is forbidden by `forbidden` (a grant that could only ever
/// name forbidden variables is a configuration mistake worth refusing).
fn env_patterns_overlap_fully(forbidden: &str, grant: &str) -> bool {
    let grant_prefix = grant.strip_suffix('*');
    match (forbidden.strip_suffix('*'), grant_prefix) {
        (Some(f), Some(g)) => g.starts_with(f),
        (Some(f), None) => grant.starts_with(f),
        (None, Some(_)) => false,
        (None, None) => grant == forbidden,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(toml_text: &str) -> Result<Grants, Error> {
        let grants: Grants =
            toml::from_str(toml_text).map_err(|e| Error::ConfigSyntax(e.to_string()))?;
        grants.validate("plugins[0]")?;
        Ok(grants)
    }

    #[test]
    fn env_grants_match_exact_names_and_prefixes() {
        let g = grants("env = [\"APP_MODE\", \"OTEL_*\"]").unwrap();
        assert!(g.covers_env("APP_MODE"));
        assert!(g.covers_env("OTEL_ENDPOINT"));
        assert!(!g.covers_env("APP_MODE_2"));
        assert!(!g.covers_env("HOME"));
    }

    #[test]
    fn ld_and_path_are_never_covered_even_by_a_wildcard() {
        let g = grants("env = [\"*\"]").unwrap();
        assert!(g.covers_env("HOME"));
        assert!(!g.covers_env("LD_PRELOAD"));
        assert!(!g.covers_env("PATH"));
    }

    #[test]
    fn granting_forbidden_env_is_a_config_error() {
        for bad in ["LD_PRELOAD", "LD_*", "PATH"] {
            let err = grants(&format!("env = [{bad:?}]")).unwrap_err();
            assert!(
                err.to_string().starts_with("plugins[0].grants.env:"),
                "{err}"
            );
        }
        assert!(grants("env = [\"A B\"]").is_err());
    }

    #[test]
    fn annotation_grants_are_prefixes_outside_the_reserved_ones() {
        let g = grants("annotations = [\"example.com/\", \"io.\"]").unwrap();
        assert!(g.covers_annotation("example.com/team"));
        assert!(g.covers_annotation("io.example/x"));
        assert!(!g.covers_annotation("io.kubernetes.cri.container-type"));
        assert!(!g.covers_annotation("io.bulkhead.guard"));
        assert!(!g.covers_annotation("other.org/x"));
        let err = grants("annotations = [\"io.bulkhead.\"]").unwrap_err();
        assert!(err.to_string().contains("reserved"), "{err}");
        assert!(grants("annotations = [\"run.oci.keep\"]").is_err());
    }

    #[test]
    fn mount_grants_are_absolute_directories_not_the_root() {
        assert!(grants("mounts = [{ source = \"/srv/shared\" }]").is_ok());
        for bad in ["srv", "/", "/srv/../etc", "//"] {
            let err = grants(&format!("mounts = [{{ source = {bad:?} }}]")).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("plugins[0].grants.mounts[0].source:"),
                "{err}"
            );
        }
    }

    #[test]
    fn mutations_lists_only_tightening_kinds() {
        let g = grants("mutations = [\"drop-capabilities\"]").unwrap();
        assert_eq!(g.mutations, Some([MutationKind::DropCapabilities].into()));
        let err = grants("mutations = [\"add-env\"]").unwrap_err();
        assert!(err.to_string().contains("granted by `env`"), "{err}");
        assert!(grants("mutations = [\"make-root\"]").is_err());
    }

    #[test]
    fn secret_grants_cover_plugin_namespace_and_name() {
        let grant = SecretGrant {
            plugins: vec!["secrets".into()],
            namespaces: vec!["team-a".into()],
            secrets: vec!["db".into()],
        };
        assert!(grant.covers("secrets", "team-a", "db"));
        assert!(!grant.covers("other", "team-a", "db"));
        assert!(!grant.covers("secrets", "team-b", "db"));
        assert!(!grant.covers("secrets", "team-a", "api"));
        let everywhere = SecretGrant {
            namespaces: vec!["*".into()],
            ..grant.clone()
        };
        assert!(everywhere.covers("secrets", "any", "db"));
    }

    #[test]
    fn secret_grants_need_every_list() {
        let mut grant = SecretGrant {
            plugins: vec!["secrets".into()],
            namespaces: vec!["*".into()],
            secrets: vec!["db".into()],
        };
        assert!(grant.validate("secrets.grants[0]").is_ok());
        grant.plugins.clear();
        let err = grant.validate("secrets.grants[0]").unwrap_err();
        assert!(
            err.to_string().starts_with("secrets.grants[0].plugins:"),
            "{err}"
        );
        grant.plugins = vec!["secrets".into()];
        grant.secrets = vec!["../etc".into()];
        assert!(grant.validate("secrets.grants[0]").is_err());
    }
}
