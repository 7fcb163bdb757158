//! The daemon's configuration: its TOML schema, documented defaults and validation.
//!
//! Parsing is strict (unknown keys are errors naming the key) and every setting has a default, so
//! an empty file — or no file — is a complete configuration. Reading the file is the daemon's job;
//! this module only turns text into a validated [`Config`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// Default path of containerd's NRI socket.
pub const DEFAULT_NRI_SOCKET: &str = "/var/run/nri/nri.sock";
/// Default path of containerd's gRPC socket.
pub const DEFAULT_CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// The whole daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
}

impl Default for NriConfig {
    fn default() -> Self {
        NriConfig {
            socket: default_nri_socket(),
            plugin_name: default_plugin_name(),
            plugin_index: default_plugin_index(),
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
        if self.nri.socket.as_os_str().is_empty() {
            return Err(invalid("nri.socket", "must not be empty".into()));
        }
        if self.containerd.socket.as_os_str().is_empty() {
            return Err(invalid("containerd.socket", "must not be empty".into()));
        }
        if self.containerd.namespace.is_empty() {
            return Err(invalid("containerd.namespace", "must not be empty".into()));
        }
        Ok(())
    }
}

fn invalid(key: &str, reason: String) -> Error {
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
    fn unknown_log_format_is_rejected() {
        let err = Config::from_toml("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(err.to_string().contains("xml"), "{err}");
    }
}
