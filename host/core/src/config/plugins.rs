//! The `[[plugins]]` entries: which plugins run, in which mode, under which limits and failure
//! policy — and the baseline chain that runs when none are configured.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::grants::{Grants, TIGHTENING};
use super::invalid;
use crate::decision::MutationKind;
use crate::error::Error;

/// Whether a plugin's decisions are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginMode {
    /// Denials refuse containers and mutations are applied (default).
    #[default]
    Enforce,
    /// The decision is made and audited, and nothing is applied: for trying out a policy.
    Audit,
}

/// What a plugin's failure (trap, timeout, memory limit, error, invalid output, or no budget
/// left to run it) means for the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailurePolicy {
    /// Refuse the container (fail closed; default).
    #[default]
    Deny,
    /// Let the container through without this plugin's decision; the audit record says why.
    Allow,
}

/// Largest per-call time budget a plugin may be given: the whole chain must answer inside
/// containerd's request timeout (2 s by default), with room for the host's own work.
pub const MAX_PLUGIN_TIME_BUDGET_MS: u64 = 1000;
/// Largest memory cap a plugin may be given.
pub const MAX_PLUGIN_MEMORY_MIB: u64 = 512;

/// The first-party plugins embedded in the `bulkhead` binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// Registry, repository, tag and digest rules; root images.
    ImagePolicy,
    /// A default seccomp profile for unconfined containers, named profiles.
    Seccomp,
    /// Capability drops, privileged and added-capability denials.
    Capabilities,
    /// Secret mounts by pod annotation, under the operator's grants.
    Secrets,
}

impl Builtin {
    /// Every embedded plugin, in baseline order.
    pub const ALL: [Builtin; 4] = [
        Builtin::ImagePolicy,
        Builtin::Seccomp,
        Builtin::Capabilities,
        Builtin::Secrets,
    ];

    /// The mutation kinds the plugin needs: exactly what its code returns (its default grant).
    pub fn needed_kinds(self) -> BTreeSet<MutationKind> {
        use MutationKind::*;
        match self {
            Builtin::ImagePolicy | Builtin::Secrets => BTreeSet::new(),
            Builtin::Seccomp => [SetSeccomp].into(),
            Builtin::Capabilities => {
                [DropCapabilities, KeepOnlyCapabilities, SetNoNewPrivileges].into()
            }
        }
    }

    /// The plugin's name (as in `builtin = "..."` and its metadata).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::ImagePolicy => "image-policy",
            Builtin::Seccomp => "seccomp",
            Builtin::Capabilities => "capabilities",
            Builtin::Secrets => "secrets",
        }
    }
}

/// One `[[plugins]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PluginConfig {
    /// The plugin component (`.wasm`). Exactly one of `path` and `builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// An embedded first-party plugin. Exactly one of `path` and `builtin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
    /// A component in an OCI registry, pinned by digest: `registry/repository[:tag]@sha256:<hex>`.
    /// Exactly one of `path`, `builtin` and `oci`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<String>,
    /// For `oci`: `required` or `off`, overriding `[registry] verify`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<super::Verify>,
    /// The sha256 the `path` file must have (`sha256:<hex>` or `<hex>`): a file with any other
    /// content is refused before it is compiled. Built-ins are pinned by the binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// `enforce` (default) or `audit`.
    #[serde(default)]
    pub mode: PluginMode,
    /// `deny` (default) or `allow`: what a failure of this plugin means.
    #[serde(default)]
    pub failure_policy: FailurePolicy,
    /// Wall-clock budget of one call, in milliseconds. Default 100, at most 1000.
    #[serde(default = "default_time_budget_ms")]
    pub time_budget_ms: u64,
    /// Memory cap of one plugin instance, in MiB. Default 16, at most 512.
    #[serde(default = "default_memory_limit_mib")]
    pub memory_limit_mib: u64,
    /// The plugin's own settings; handed to it as a JSON document by the `config` import.
    #[serde(default)]
    pub config: toml::Table,
    /// `[plugins.grants]`: what the plugin may ask for beyond tightening. Absent: a plugin
    /// loaded by path may only tighten, a built-in gets the kinds it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Grants>,
}

impl PluginConfig {
    /// An entry for an embedded plugin with default limits and `config`.
    pub fn builtin(builtin: Builtin, config: toml::Table) -> PluginConfig {
        PluginConfig {
            path: None,
            builtin: Some(builtin),
            oci: None,
            verify: None,
            sha256: None,
            mode: PluginMode::default(),
            failure_policy: FailurePolicy::default(),
            time_budget_ms: default_time_budget_ms(),
            memory_limit_mib: default_memory_limit_mib(),
            config,
            grants: None,
        }
    }

    /// The entry's grants (the defaults when it has no `[plugins.grants]` table).
    pub fn grants(&self) -> Grants {
        self.grants.clone().unwrap_or_default()
    }

    /// The tightening kinds the plugin may return: its `grants.mutations`, or every tightening
    /// kind for a plugin loaded by path and exactly the needed ones for a built-in.
    pub fn allowed_kinds(&self) -> BTreeSet<MutationKind> {
        if let Some(kinds) = self.grants.as_ref().and_then(|g| g.mutations.clone()) {
            return kinds;
        }
        match self.builtin {
            Some(builtin) => builtin.needed_kinds(),
            None => TIGHTENING.into_iter().collect(),
        }
    }

    /// What the entry loads, for messages: the path, `builtin:<name>` or the OCI reference.
    pub fn source(&self) -> String {
        match (&self.path, self.builtin, &self.oci) {
            (Some(path), _, _) => path.display().to_string(),
            (None, Some(builtin), _) => format!("builtin:{}", builtin.name()),
            (None, None, Some(reference)) => reference.clone(),
            (None, None, None) => "<no path, builtin or oci>".into(),
        }
    }

    /// The pinned digest as the runtime writes digests (`sha256:<lowercase hex>`), if pinned.
    pub fn pinned_digest(&self) -> Option<String> {
        self.sha256.as_deref().map(|pin| {
            format!(
                "sha256:{}",
                pin.trim_start_matches("sha256:").to_ascii_lowercase()
            )
        })
    }

    /// The plugin's settings as the JSON text its `config` import returns.
    pub fn config_json(&self) -> String {
        serde_json::to_string(&self.config).unwrap_or_else(|_| "{}".into())
    }
}

/// The baseline policy (the contract of running without a config file):
/// - image-policy with empty lists (denies nothing until configured);
/// - seccomp: unconfined containers get bulkhead's default profile;
/// - capabilities: drop NET_RAW everywhere; deny privileged containers and containers adding
///   capabilities outside the runtime's default set, with namespace `kube-system` exempt;
/// - secrets with no grants.
pub fn baseline_plugins() -> Vec<PluginConfig> {
    let table = |text: &str| text.parse::<toml::Table>().unwrap_or_default();
    vec![
        PluginConfig::builtin(Builtin::ImagePolicy, toml::Table::new()),
        PluginConfig::builtin(Builtin::Seccomp, toml::Table::new()),
        PluginConfig::builtin(
            Builtin::Capabilities,
            table(
                r#"
                drop = ["CAP_NET_RAW"]
                deny-privileged = true
                deny-added-capabilities = true
                exempt-namespaces = ["kube-system"]
                "#,
            ),
        ),
        PluginConfig::builtin(Builtin::Secrets, table("grants = []")),
    ]
}

impl PluginConfig {
    pub(super) fn validate(&self, at: &str) -> Result<(), Error> {
        let sources = [
            self.path.is_some(),
            self.builtin.is_some(),
            self.oci.is_some(),
        ];
        if sources.iter().filter(|set| **set).count() != 1 {
            return Err(invalid(
                at,
                "needs exactly one of `path` (a .wasm file), `builtin` (image-policy, seccomp, capabilities, secrets) or `oci` (a registry reference pinned by digest)".into(),
            ));
        }
        if self
            .path
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Err(invalid(&format!("{at}.path"), "must not be empty".into()));
        }
        if self.verify.is_some() && self.oci.is_none() {
            return Err(invalid(
                &format!("{at}.verify"),
                "applies to `oci` plugins (a `path` plugin is pinned with `sha256`)".into(),
            ));
        }
        if let Some(reference) = &self.oci {
            let pinned = reference
                .rsplit_once("@sha256:")
                .is_some_and(|(name, hex)| {
                    !name.is_empty()
                        && hex.len() == 64
                        && hex
                            .bytes()
                            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                });
            if !pinned {
                return Err(invalid(
                    &format!("{at}.oci"),
                    format!(
                        "must be pinned by digest, `registry/repository[:tag]@sha256:<64 hex>` (`bulkhead plugin push` prints it), got {reference:?}: a tag can move"
                    ),
                ));
            }
        }
        if let Some(pin) = &self.sha256 {
            let hex = pin.strip_prefix("sha256:").unwrap_or(pin);
            if self.path.is_none() {
                return Err(invalid(
                    &format!("{at}.sha256"),
                    "pins a `path` plugin; built-ins are pinned by the bulkhead binary, `oci` references by their digest".into(),
                ));
            }
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    &format!("{at}.sha256"),
                    format!(
                        "must be 64 hex digits, optionally after `sha256:` (`sha256sum` of the .wasm file), got {pin:?}"
                    ),
                ));
            }
        }
        if !(1..=MAX_PLUGIN_TIME_BUDGET_MS).contains(&self.time_budget_ms) {
            return Err(invalid(
                &format!("{at}.time-budget-ms"),
                format!(
                    "must be between 1 and {MAX_PLUGIN_TIME_BUDGET_MS} (the chain must answer inside containerd's request timeout), got {}",
                    self.time_budget_ms
                ),
            ));
        }
        if let Some(grants) = &self.grants {
            grants.validate(at)?;
        }
        if !(1..=MAX_PLUGIN_MEMORY_MIB).contains(&self.memory_limit_mib) {
            return Err(invalid(
                &format!("{at}.memory-limit-mib"),
                format!(
                    "must be between 1 and {MAX_PLUGIN_MEMORY_MIB}, got {}",
                    self.memory_limit_mib
                ),
            ));
        }
        Ok(())
    }
}

fn default_time_budget_ms() -> u64 {
    100
}

fn default_memory_limit_mib() -> u64 {
    16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> Result<PluginConfig, Error> {
        let entry: PluginConfig = toml::from_str(text).unwrap();
        entry.validate("plugins[0]").map(|()| entry)
    }

    #[test]
    fn a_pin_is_a_sha256_of_a_path_plugin() {
        let hex = "AB".repeat(32);
        let pinned = entry(&format!("path = \"/p.wasm\"\nsha256 = \"{hex}\"")).unwrap();
        assert_eq!(
            pinned.pinned_digest().unwrap(),
            format!("sha256:{}", "ab".repeat(32))
        );
        let prefixed = entry(&format!("path = \"/p.wasm\"\nsha256 = \"sha256:{hex}\"")).unwrap();
        assert_eq!(prefixed.pinned_digest(), pinned.pinned_digest());
        assert_eq!(entry("path = \"/p.wasm\"").unwrap().pinned_digest(), None);
        for bad in ["abc", "sha512:00", &"g".repeat(64)] {
            let error = entry(&format!("path = \"/p.wasm\"\nsha256 = \"{bad}\""))
                .unwrap_err()
                .to_string();
            assert!(error.contains("plugins[0].sha256"), "{bad}: {error}");
        }
        let error = entry(&format!("builtin = \"seccomp\"\nsha256 = \"{hex}\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("built-ins are pinned"), "{error}");
    }

    #[test]
    fn an_oci_plugin_is_pinned_by_digest() {
        let hex = "ab".repeat(32);
        let pinned = entry(&format!(
            "oci = \"127.0.0.1:5000/plugins/deny:1.0@sha256:{hex}\""
        ))
        .unwrap();
        assert_eq!(
            pinned.source(),
            format!("127.0.0.1:5000/plugins/deny:1.0@sha256:{hex}")
        );
        assert_eq!(pinned.allowed_kinds(), TIGHTENING.into_iter().collect());
        for bad in [
            "127.0.0.1:5000/plugins/deny:1.0",
            "registry.example/p@sha256:abc",
            &format!("@sha256:{hex}"),
            &format!("r.example/p@sha256:{}", "AB".repeat(32)),
        ] {
            let error = entry(&format!("oci = {bad:?}")).unwrap_err().to_string();
            assert!(error.contains("plugins[0].oci"), "{bad}: {error}");
        }
        let error = entry(&format!(
            "oci = \"r.example/p@sha256:{hex}\"\npath = \"/p.wasm\""
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("exactly one of"), "{error}");
        let error = entry(&format!(
            "oci = \"r.example/p@sha256:{hex}\"\nsha256 = \"{hex}\""
        ))
        .unwrap_err()
        .to_string();
        assert!(error.contains("plugins[0].sha256"), "{error}");
    }

    #[test]
    fn builtins_need_exactly_what_they_return() {
        assert!(Builtin::ImagePolicy.needed_kinds().is_empty());
        assert!(Builtin::Secrets.needed_kinds().is_empty());
        assert_eq!(
            Builtin::Seccomp.needed_kinds(),
            [MutationKind::SetSeccomp].into()
        );
        assert!(
            !Builtin::Capabilities
                .needed_kinds()
                .contains(&MutationKind::SetSeccomp)
        );
    }
}
