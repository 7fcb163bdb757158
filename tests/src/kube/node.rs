//! [`Node`]: a directory standing in for a node's root file system, where a pod template's
//! `hostPath` volumes resolve and its ConfigMap volumes are written; and [`ConfigMap`].

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;

use super::{check_fields, string, string_map};
use crate::Testbed;

/// A ConfigMap's name and data, to change before [`Node::add_config_map`] (e.g. a port).
#[derive(Debug, Clone)]
pub struct ConfigMap {
    /// `metadata.name`.
    pub name: String,
    /// `data`: file name to content.
    pub data: BTreeMap<String, String>,
}

impl ConfigMap {
    /// Reads a ConfigMap object.
    pub fn from_object(object: &Value) -> anyhow::Result<ConfigMap> {
        if object["kind"] != "ConfigMap" {
            bail!("not a ConfigMap: kind {}", object["kind"]);
        }
        Ok(ConfigMap {
            name: string(object, "/metadata/name")?,
            data: string_map(object.get("data"))?,
        })
    }
}

/// A directory of the test bed standing in for a node's root file system: `hostPath` volumes
/// resolve inside it, ConfigMap volumes are written beside it, and it is a shared mount, as `/`
/// is on a systemd host, so `HostToContainer` and `Bidirectional` propagation work.
#[derive(Debug)]
pub struct Node {
    root: PathBuf,
    config_maps: PathBuf,
}

impl Node {
    /// A node root in `testbed`'s directory (torn down with it) where containerd's sockets are
    /// at `sockets` (node path, test bed socket) pairs, e.g. `/run/containerd/containerd.sock`.
    ///
    /// The sockets are hard links to the test bed's, made before the root becomes a mount
    /// point of its own (links cannot cross mounts).
    pub fn create(testbed: &Testbed, sockets: &[(&str, &Path)]) -> anyhow::Result<Node> {
        let node = Node {
            root: testbed.dir().join("node"),
            config_maps: testbed.dir().join("configmaps"),
        };
        std::fs::create_dir_all(&node.root)?;
        for (node_path, socket) in sockets {
            let link = node.host_path(node_path);
            std::fs::create_dir_all(link.parent().context("a socket path has a directory")?)?;
            std::fs::hard_link(socket, &link).with_context(|| {
                format!("while linking {} at {}", socket.display(), link.display())
            })?;
        }
        let root = node.root.display().to_string();
        run(Command::new("mount").args(["--bind", &root, &root]))?;
        run(Command::new("mount").args(["--make-rshared", &root]))?;
        Ok(node)
    }

    /// Where the node's `path` is on this machine.
    pub fn host_path(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// Writes `config_map`'s files where its volumes will be mounted from.
    pub fn add_config_map(&self, config_map: &ConfigMap) -> anyhow::Result<()> {
        let dir = self.config_maps.join(&config_map.name);
        std::fs::create_dir_all(&dir)?;
        for (file, content) in &config_map.data {
            std::fs::write(dir.join(file), content)?;
        }
        Ok(())
    }

    /// The host path a volume is mounted from, and whether a kubelet forces it read-only.
    pub(super) fn volume_source(&self, volume: &Value) -> anyhow::Result<(PathBuf, bool)> {
        let name = string(volume, "/name")?;
        if let Some(host_path) = volume.get("hostPath") {
            let path = self.host_path(&string(host_path, "/path")?);
            check_host_path(&path, host_path["type"].as_str().unwrap_or(""))
                .with_context(|| format!("volume {name}"))?;
            return Ok((path, false));
        }
        if let Some(config_map) = volume.get("configMap") {
            check_fields(config_map, &["name"], &[], &format!("volume {name}"))?;
            let dir = self.config_maps.join(string(config_map, "/name")?);
            if !dir.is_dir() {
                bail!("volume {name}: ConfigMap {} was not added", dir.display());
            }
            return Ok((dir, true));
        }
        bail!("volume {name}: only hostPath and configMap volumes are supported: {volume}")
    }
}

/// What the kubelet checks (or creates) for a `hostPath` volume of type `kind`.
fn check_host_path(path: &Path, kind: &str) -> anyhow::Result<()> {
    let metadata = std::fs::metadata(path);
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => Ok(std::fs::create_dir_all(path)?),
        "Directory" if metadata.as_ref().is_ok_and(|m| m.is_dir()) => Ok(()),
        "Socket" if metadata.as_ref().is_ok_and(|m| m.file_type().is_socket()) => Ok(()),
        "File" if metadata.as_ref().is_ok_and(|m| m.is_file()) => Ok(()),
        _ => bail!("hostPath {} is not a {kind}", path.display()),
    }
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("while running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_types_are_checked_like_a_kubelet() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        assert!(check_host_path(&missing, "Directory").is_err());
        check_host_path(&missing, "DirectoryOrCreate").unwrap();
        check_host_path(&missing, "Directory").unwrap();
        assert!(check_host_path(&missing, "Socket").is_err());
    }
}
