//! The daemon's configuration: its TOML schema, documented defaults and validation.
//!
//! Parsing is strict (unknown keys are errors naming the key) and every setting has a default, so
//! an empty file — or no file — is a complete configuration. Reading the file is the daemon's job;
//! this module only turns text into a validated [`Config`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;

mod grants;
mod plugins;
mod seccomp;
mod validation;

pub use grants::{
    FORBIDDEN_ENV, Grants, MountGrant, RESERVED_ANNOTATION_PREFIXES, SecretGrant, TIGHTENING,
    is_forbidden_env, is_reserved_annotation,
};
pub use plugins::{
    Builtin, FailurePolicy, MAX_PLUGIN_MEMORY_MIB, MAX_PLUGIN_TIME_BUDGET_MS, PluginConfig,
    PluginMode, baseline_plugins,
};
pub use seccomp::SeccompConfig;
pub(crate) use seccomp::held_profile as held_seccomp_profile;
pub use validation::{FIELDS, ValidationConfig, field_name};

/// Default path of containerd's NRI socket.
pub const DEFAULT_NRI_SOCKET: &str = "/var/run/nri/nri.sock";
/// Default path of containerd's gRPC socket.
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// The whole daemon configuration. [`Config::default`] is what runs without a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// How to reach containerd's NRI socket and register there.
    #[serde(default)]
    pub nri: NriConfig,
    /// How to reach containerd's gRPC API.
    #[serde(default)]
    pub containerd: ContainerdConfig,
    /// Log output.
    #[serde(default)]
    pub log: LogConfig,
    /// `[[plugins]]`: the plugin chain, run in this order on every decision point. Absent: the
    /// embedded first-party plugins with the baseline policy ([`baseline_plugins`]); `plugins =
    /// []` runs none.
    #[serde(default = "baseline_plugins")]
    pub plugins: Vec<PluginConfig>,
    /// Where granted secrets come from and where they are materialized.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Where decisions are recorded.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Process-wide plugin sandbox settings.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// The fail-closed guard (see docs/guard.md).
    #[serde(default)]
    pub guard: GuardConfig,
    /// Seccomp profiles the host holds for plugins to name: the built-ins' architectures and the
    /// operator's own profiles.
    #[serde(default)]
    pub seccomp: SeccompConfig,
    /// Where `/metrics`, `/healthz` and `/readyz` are served.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// How `oci` plugins are pulled.
    #[serde(default)]
    pub registry: RegistryConfig,
}

/// `[registry]`: reaching the OCI registries `oci` plugins come from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RegistryConfig {
    /// Registries (`host:port`, as references write them) spoken to in plain HTTP. Loopback
    /// registries always may; every other one is HTTPS. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure: Vec<String>,
    /// A docker-style `config.json` with registry credentials. Default: none (anonymous).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_file: Option<PathBuf>,
    /// cosign public keys (PEM, ECDSA P-256) a plugin's signature must verify with. Default:
    /// none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<PathBuf>,
    /// Whether `oci` plugins must carry a signature by one of `keys`: `required` (default) or
    /// `off`; a plugin's own `verify` overrides it.
    #[serde(default)]
    pub verify: Verify,
}

/// Whether an `oci` plugin's cosign signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verify {
    /// A signature by one of `[registry] keys` over the pinned digest, or the plugin does not
    /// load.
    #[default]
    Required,
    /// The digest pin alone.
    Off,
}

/// Default `[metrics] address`: loopback only; a DaemonSet with host networking sets
/// `0.0.0.0:9464` so that the kubelet's probes reach it.
pub const DEFAULT_METRICS_ADDRESS: &str = "127.0.0.1:9464";

/// `[metrics]`: the Prometheus endpoint, with the liveness and readiness probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MetricsConfig {
    /// `ip:port`, or an absolute path for a unix socket (mode 0600); empty turns the endpoint
    /// off. Default `127.0.0.1:9464`.
    #[serde(default = "default_metrics_address")]
    pub address: String,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            address: default_metrics_address(),
        }
    }
}

fn default_metrics_address() -> String {
    DEFAULT_METRICS_ADDRESS.into()
}

impl MetricsConfig {
    fn validate(&self) -> Result<(), Error> {
        let address = self.address.trim();
        if address.is_empty()
            || address.starts_with('/')
            || address.parse::<std::net::SocketAddr>().is_ok()
        {
            return Ok(());
        }
        Err(invalid(
            "metrics.address",
            format!(
                "must be ip:port (e.g. {DEFAULT_METRICS_ADDRESS}), an absolute unix socket path, or empty to turn the endpoint off; got {address:?}"
            ),
        ))
    }
}

/// `[guard]`: marks every container bulkhead checked, for the OCI hook that refuses unmarked
/// ones while bulkhead is down.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct GuardConfig {
    /// The node's guard key (`bulkhead-guard init-key`); unset (default) disables marking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            nri: NriConfig::default(),
            containerd: ContainerdConfig::default(),
            log: LogConfig::default(),
            plugins: baseline_plugins(),
            secrets: SecretsConfig::default(),
            audit: AuditConfig::default(),
            sandbox: SandboxConfig::default(),
            guard: GuardConfig::default(),
            seccomp: SeccompConfig::default(),
            metrics: MetricsConfig::default(),
            registry: RegistryConfig::default(),
        }
    }
}

/// `[secrets]`: the directory provider and the tmpfs secrets are materialized on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SecretsConfig {
    /// Directory holding one file per secret, named after the secret. Default
    /// `/etc/bulkhead/secrets`.
    #[serde(default = "default_secrets_provider_dir")]
    pub provider_dir: PathBuf,
    /// Where bulkhead mounts its private tmpfs and writes granted secrets, one directory per
    /// container. Default `/run/bulkhead/secrets`.
    #[serde(default = "default_secrets_runtime_dir")]
    pub runtime_dir: PathBuf,
    /// `[[secrets.grants]]`: which plugins may mount which secrets into which namespaces. The
    /// host checks every `mount-secret` against these before anything is read or written.
    /// Default: none, so no secret is ever mounted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<SecretGrant>,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig {
            provider_dir: default_secrets_provider_dir(),
            runtime_dir: default_secrets_runtime_dir(),
            grants: Vec::new(),
        }
    }
}

fn default_secrets_provider_dir() -> PathBuf {
    PathBuf::from("/etc/bulkhead/secrets")
}

fn default_secrets_runtime_dir() -> PathBuf {
    PathBuf::from("/run/bulkhead/secrets")
}

/// Where audit records go when `[audit] path` is `-`.
pub const AUDIT_STDOUT: &str = "-";

/// `[audit]`: the decision log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AuditConfig {
    /// File the JSON-lines audit log is appended to; `-` (default) writes to standard output,
    /// next to the daemon's own log on standard error.
    #[serde(default = "default_audit_path")]
    pub path: PathBuf,
    /// Record, with each decision, the container view the plugins were given — the real input
    /// for a plugin's case files. Environment values are replaced by `<redacted>` (pod env may
    /// carry Kubernetes secrets); names stay. Default false: views make records several KiB.
    #[serde(default)]
    pub include_view: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: default_audit_path(),
            include_view: false,
        }
    }
}

fn default_audit_path() -> PathBuf {
    PathBuf::from(AUDIT_STDOUT)
}

/// `[sandbox]`: the plugin runtime shared by all plugins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct SandboxConfig {
    /// Directory of compiled plugin artifacts (keyed by wasmtime version and plugin digest), so
    /// restarts skip compilation. Default `/var/cache/bulkhead`; empty disables the cache.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: default_cache_dir(),
        }
    }
}

fn default_cache_dir() -> PathBuf {
    PathBuf::from("/var/cache/bulkhead")
}

/// `[nri]`: registration with the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct NriConfig {
    /// Path of the runtime's NRI socket. Default `/var/run/nri/nri.sock`.
    #[serde(default = "default_nri_socket")]
    pub socket: PathBuf,
    /// Name bulkhead registers under. Default `bulkhead`.
    #[serde(default = "default_plugin_name")]
    pub plugin_name: String,
    /// Two-digit position among the runtime's NRI plugins (lower runs first). Default `50`.
    #[serde(default = "default_plugin_index")]
    pub plugin_index: String,
    /// `[nri.validation]`: judge other NRI plugins' adjustments (containerd 2.2+). Off by
    /// default.
    #[serde(default)]
    pub validation: ValidationConfig,
}

impl Default for NriConfig {
    fn default() -> Self {
        NriConfig {
            socket: default_nri_socket(),
            plugin_name: default_plugin_name(),
            plugin_index: default_plugin_index(),
            validation: ValidationConfig::default(),
        }
    }
}

/// `[containerd]`: the gRPC API used for image facts and stored-spec patches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ContainerdConfig {
    /// Path of containerd's gRPC socket. Default `/run/containerd/containerd.sock`.
    #[serde(default = "default_containerd_socket")]
    pub socket: PathBuf,
    /// containerd namespace of CRI containers. Default `k8s.io`.
    #[serde(default = "default_containerd_namespace")]
    pub namespace: String,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        ContainerdConfig {
            socket: default_containerd_socket(),
            namespace: default_containerd_namespace(),
        }
    }
}

/// `[log]`: how the daemon writes its own log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LogConfig {
    /// `text` (default) for people, `json` for log pipelines.
    #[serde(default)]
    pub format: LogFormat,
}

/// Format of the daemon's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

fn default_nri_socket() -> PathBuf {
    PathBuf::from(DEFAULT_NRI_SOCKET)
}

fn default_plugin_name() -> String {
    "bulkhead".into()
}

fn default_plugin_index() -> String {
    "50".into()
}

fn default_containerd_socket() -> PathBuf {
    PathBuf::from(DEFAULT_CONTAINERD_SOCKET)
}

fn default_containerd_namespace() -> String {
    "k8s.io".into()
}

impl Config {
    /// Parses and validates a TOML configuration.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        let config: Config =
            toml::from_str(text).map_err(|e| Error::ConfigSyntax(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules the schema cannot express. Each rule names its key.
    pub fn validate(&self) -> Result<(), Error> {
        let index = &self.nri.plugin_index;
        if index.len() != 2 || !index.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "nri.plugin-index",
                format!("must be exactly two digits (00-99), got {index:?}"),
            ));
        }
        let name = &self.nri.plugin_name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return Err(invalid(
                "nri.plugin-name",
                format!(
                    "must be non-empty and use only letters, digits, '-', '_' or '.', got {name:?}"
                ),
            ));
        }
        self.nri.validation.validate()?;
        self.metrics.validate()?;
        for (i, plugin) in self.plugins.iter().enumerate() {
            if plugin.oci.is_some()
                && plugin.verify.unwrap_or(self.registry.verify) == Verify::Required
                && self.registry.keys.is_empty()
            {
                return Err(invalid(
                    &format!("plugins[{i}].verify"),
                    "signatures are required (the default) but [registry] keys names no cosign public key: add one, or set verify = \"off\" to rely on the digest pin alone".into(),
                ));
            }
        }
        if self.nri.socket.as_os_str().is_empty() {
            return Err(invalid("nri.socket", "must not be empty".into()));
        }
        if self.containerd.socket.as_os_str().is_empty() {
            return Err(invalid("containerd.socket", "must not be empty".into()));
        }
        if self.containerd.namespace.is_empty() {
            return Err(invalid("containerd.namespace", "must not be empty".into()));
        }
        for (i, plugin) in self.plugins.iter().enumerate() {
            plugin.validate(&format!("plugins[{i}]"))?;
        }
        for (i, grant) in self.secrets.grants.iter().enumerate() {
            grant.validate(&format!("secrets.grants[{i}]"))?;
        }
        if !self.secrets.runtime_dir.is_absolute() {
            return Err(invalid(
                "secrets.runtime-dir",
                "must be an absolute path".into(),
            ));
        }
        if self.audit.path.as_os_str().is_empty() {
            return Err(invalid(
                "audit.path",
                "must not be empty (use \"-\" for standard output)".into(),
            ));
        }
        self.seccomp.validate()?;
        Ok(())
    }
}

pub(crate) fn invalid(key: &str, reason: String) -> Error {
    Error::InvalidConfig {
        key: key.into(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_documented_defaults() {
        let config = Config::from_toml("").unwrap();
        assert_eq!(config.nri.socket, PathBuf::from("/var/run/nri/nri.sock"));
        assert_eq!(config.nri.plugin_name, "bulkhead");
        assert_eq!(config.nri.plugin_index, "50");
        assert_eq!(
            config.containerd.socket,
            PathBuf::from("/run/containerd/containerd.sock")
        );
        assert_eq!(config.containerd.namespace, "k8s.io");
        assert_eq!(config.log.format, LogFormat::Text);
        assert_eq!(config.plugins, baseline_plugins());
        assert_eq!(
            config.secrets.provider_dir,
            PathBuf::from("/etc/bulkhead/secrets")
        );
    }

    #[test]
    fn metrics_address_is_an_ip_port_a_socket_path_or_off() {
        assert_eq!(
            Config::from_toml("").unwrap().metrics.address,
            DEFAULT_METRICS_ADDRESS
        );
        for good in [
            "",
            "0.0.0.0:9464",
            "[::1]:9464",
            "/run/bulkhead/metrics.sock",
        ] {
            let text = format!("[metrics]\naddress = {good:?}\n");
            assert!(Config::from_toml(&text).is_ok(), "{good}");
        }
        for bad in ["9464", "localhost:9464", "metrics.sock", "0.0.0.0"] {
            let text = format!("[metrics]\naddress = {bad:?}\n");
            let error = Config::from_toml(&text).unwrap_err().to_string();
            assert!(error.contains("metrics.address"), "{bad}: {error}");
        }
        let error = Config::from_toml("[metrics]\nport = 1\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("port"), "{error}");
    }

    #[test]
    fn baseline_is_the_four_builtins_with_the_contract_policy() {
        let names: Vec<_> = baseline_plugins()
            .iter()
            .map(PluginConfig::source)
            .collect();
        assert_eq!(
            names,
            [
                "builtin:image-policy",
                "builtin:seccomp",
                "builtin:capabilities",
                "builtin:secrets"
            ]
        );
        let capabilities = &baseline_plugins()[2];
        assert_eq!(
            capabilities.config_json(),
            r#"{"deny-added-capabilities":true,"deny-privileged":true,"drop":["CAP_NET_RAW"],"exempt-namespaces":["kube-system"]}"#
        );
        assert!(
            baseline_plugins()
                .iter()
                .all(|p| p.failure_policy == FailurePolicy::Deny)
        );
    }

    #[test]
    fn an_empty_plugin_list_runs_no_plugins() {
        assert!(
            Config::from_toml("plugins = []\n")
                .unwrap()
                .plugins
                .is_empty()
        );
    }

    #[test]
    fn builtin_entries_parse() {
        let config = Config::from_toml("[[plugins]]\nbuiltin = \"seccomp\"\n").unwrap();
        assert_eq!(config.plugins[0].builtin, Some(Builtin::Seccomp));
        let err = Config::from_toml("[[plugins]]\nbuiltin = \"selinux\"\n").unwrap_err();
        assert!(err.to_string().contains("selinux"), "{err}");
    }

    #[test]
    fn path_and_builtin_together_are_rejected() {
        let err = Config::from_toml("[[plugins]]\nbuiltin = \"seccomp\"\npath = \"/a.wasm\"\n")
            .unwrap_err();
        assert!(
            err.to_string().starts_with("plugins[0]: needs exactly one"),
            "{err}"
        );
    }

    #[test]
    fn secret_grants_parse_and_are_validated() {
        let config = Config::from_toml(
            "[[secrets.grants]]\nplugins = [\"secrets\"]\nnamespaces = [\"team-a\"]\nsecrets = [\"db\"]\n",
        )
        .unwrap();
        assert!(config.secrets.grants[0].covers("secrets", "team-a", "db"));
        let err = Config::from_toml(
            "[[secrets.grants]]\nplugins = []\nnamespaces = [\"*\"]\nsecrets = [\"db\"]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("secrets.grants[0].plugins:"),
            "{err}"
        );
    }

    #[test]
    fn plugin_grants_parse_and_are_validated() {
        let config = Config::from_toml(
            "[[plugins]]\npath = \"/p.wasm\"\n[plugins.grants]\nenv = [\"APP_MODE\"]\nmounts = [{ source = \"/srv/x\" }]\n",
        )
        .unwrap();
        let plugin = &config.plugins[0];
        assert_eq!(plugin.grants().env, ["APP_MODE"]);
        assert_eq!(plugin.allowed_kinds(), TIGHTENING.into_iter().collect());
        let err = Config::from_toml(
            "[[plugins]]\npath = \"/p.wasm\"\n[plugins.grants]\nenv = [\"LD_PRELOAD\"]\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("plugins[0].grants.env:"),
            "{err}"
        );
        let err =
            Config::from_toml("[[plugins]]\npath = \"/p.wasm\"\n[plugins.grants]\nenvv = []\n")
                .unwrap_err();
        assert!(err.to_string().contains("envv"), "{err}");
    }

    #[test]
    fn builtins_default_to_the_kinds_they_need() {
        let config = Config::default();
        let kinds: Vec<_> = config
            .plugins
            .iter()
            .map(|p| p.allowed_kinds().len())
            .collect();
        assert_eq!(kinds, [0, 1, 3, 0]);
    }

    #[test]
    fn secrets_runtime_dir_must_be_absolute() {
        let err = Config::from_toml("[secrets]\nruntime-dir = \"run/s\"\n").unwrap_err();
        assert!(err.to_string().starts_with("secrets.runtime-dir:"), "{err}");
    }

    #[test]
    fn every_key_can_be_set() {
        let config = Config::from_toml(
            r#"
            [nri]
            socket = "/tmp/nri.sock"
            plugin-name = "guard"
            plugin-index = "07"
            [containerd]
            socket = "/tmp/c.sock"
            namespace = "other"
            [log]
            format = "json"
            "#,
        )
        .unwrap();
        assert_eq!(config.nri.plugin_index, "07");
        assert_eq!(config.nri.plugin_name, "guard");
        assert_eq!(config.containerd.namespace, "other");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::from_toml("[nri]\nsockett = \"/x\"\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("sockett"), "{message}");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn unknown_section_is_named() {
        let err = Config::from_toml("[nrii]\n").unwrap_err();
        assert!(err.to_string().contains("nrii"), "{err}");
    }

    #[test]
    fn wrong_type_is_reported() {
        let err = Config::from_toml("[nri]\nplugin-index = 50\n").unwrap_err();
        assert!(err.to_string().contains("plugin-index"), "{err}");
    }

    #[test]
    fn plugin_index_must_be_two_digits() {
        for bad in ["5", "500", "ab", ""] {
            let err = Config::from_toml(&format!("[nri]\nplugin-index = {bad:?}\n")).unwrap_err();
            assert!(err.to_string().starts_with("nri.plugin-index:"), "{err}");
        }
    }

    #[test]
    fn plugin_name_must_be_a_plain_word() {
        let err = Config::from_toml("[nri]\nplugin-name = \"a b\"\n").unwrap_err();
        assert!(err.to_string().starts_with("nri.plugin-name:"), "{err}");
        let err = Config::from_toml("[nri]\nplugin-name = \"\"\n").unwrap_err();
        assert!(err.to_string().starts_with("nri.plugin-name:"), "{err}");
    }

    #[test]
    fn sockets_and_namespace_must_not_be_empty() {
        for (toml, key) in [
            ("[nri]\nsocket = \"\"\n", "nri.socket"),
            ("[containerd]\nsocket = \"\"\n", "containerd.socket"),
            ("[containerd]\nnamespace = \"\"\n", "containerd.namespace"),
        ] {
            let err = Config::from_toml(toml).unwrap_err();
            assert!(err.to_string().starts_with(key), "{err}");
        }
    }

    #[test]
    fn plugin_entries_get_documented_defaults() {
        let config = Config::from_toml("[[plugins]]\npath = \"/p/a.wasm\"\n").unwrap();
        let plugin = &config.plugins[0];
        assert_eq!(plugin.mode, PluginMode::Enforce);
        assert_eq!(plugin.failure_policy, FailurePolicy::Deny);
        assert_eq!(plugin.time_budget_ms, 100);
        assert_eq!(plugin.memory_limit_mib, 16);
        assert_eq!(plugin.config_json(), "{}");
        assert_eq!(config.audit.path, PathBuf::from("-"));
        assert_eq!(
            config.sandbox.cache_dir,
            PathBuf::from("/var/cache/bulkhead")
        );
    }

    #[test]
    fn plugin_entries_keep_their_order_and_settings() {
        let config = Config::from_toml(
            r#"
            [[plugins]]
            path = "/p/first.wasm"
            mode = "audit"
            failure-policy = "allow"
            time-budget-ms = 250
            memory-limit-mib = 32
            [plugins.config]
            deny-tags = ["latest"]
            [[plugins]]
            path = "/p/second.wasm"
            "#,
        )
        .unwrap();
        assert_eq!(config.plugins.len(), 2);
        assert_eq!(config.plugins[0].mode, PluginMode::Audit);
        assert_eq!(config.plugins[0].failure_policy, FailurePolicy::Allow);
        assert_eq!(config.plugins[0].time_budget_ms, 250);
        assert_eq!(
            config.plugins[0].config_json(),
            r#"{"deny-tags":["latest"]}"#
        );
        assert_eq!(
            config.plugins[1].path,
            Some(PathBuf::from("/p/second.wasm"))
        );
    }

    #[test]
    fn plugin_without_path_is_rejected() {
        let err = Config::from_toml("[[plugins]]\nmode = \"audit\"\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("plugins[0]: needs exactly one of `path`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_plugin_key_is_named() {
        let err = Config::from_toml("[[plugins]]\npath = \"/a\"\ntime-budget = 5\n").unwrap_err();
        assert!(err.to_string().contains("time-budget"), "{err}");
    }

    #[test]
    fn plugin_mode_and_failure_policy_are_closed_sets() {
        let err =
            Config::from_toml("[[plugins]]\npath = \"/a\"\nmode = \"observe\"\n").unwrap_err();
        assert!(err.to_string().contains("observe"), "{err}");
        let err = Config::from_toml("[[plugins]]\npath = \"/a\"\nfailure-policy = \"open\"\n")
            .unwrap_err();
        assert!(err.to_string().contains("open"), "{err}");
    }

    #[test]
    fn plugin_time_budget_must_fit_the_runtime_deadline() {
        for bad in [0, 1001] {
            let err = Config::from_toml(&format!(
                "[[plugins]]\npath = \"/a\"\ntime-budget-ms = {bad}\n"
            ))
            .unwrap_err();
            assert!(
                err.to_string().starts_with("plugins[0].time-budget-ms:"),
                "{err}"
            );
        }
    }

    #[test]
    fn plugin_memory_limit_is_bounded() {
        for bad in [0, 513] {
            let err = Config::from_toml(&format!(
                "[[plugins]]\npath = \"/a\"\nmemory-limit-mib = {bad}\n"
            ))
            .unwrap_err();
            assert!(
                err.to_string().starts_with("plugins[0].memory-limit-mib:"),
                "{err}"
            );
        }
    }

    #[test]
    fn plugin_path_must_not_be_empty() {
        let err = Config::from_toml("[[plugins]]\npath = \"\"\n").unwrap_err();
        assert!(err.to_string().starts_with("plugins[0].path:"), "{err}");
    }

    #[test]
    fn audit_path_must_not_be_empty() {
        let err = Config::from_toml("[audit]\npath = \"\"\n").unwrap_err();
        assert!(err.to_string().starts_with("audit.path:"), "{err}");
    }

    #[test]
    fn unknown_log_format_is_rejected() {
        let err = Config::from_toml("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }
}
