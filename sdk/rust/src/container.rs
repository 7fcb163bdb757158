//! Lookups on the [`Container`] view that every policy ends up writing, and empty defaults so
//! native unit tests can write `Container { privileged: true, ..Container::default() }`.

use crate::{
    Capabilities, Capability, Container, DecisionPoint, HostNamespaces, Image, Pod, Process, User,
};

impl Default for Container {
    /// An empty view at `create-container`: root user, no capabilities, no seccomp, no host
    /// namespaces. Meant for tests; bulkhead always sends a filled-in view.
    fn default() -> Self {
        Container {
            event: DecisionPoint::CreateContainer,
            id: String::new(),
            name: String::new(),
            pod_sandbox_id: String::new(),
            pod: Pod::default(),
            image: Image::default(),
            process: Process::default(),
            capabilities: Capabilities::default(),
            seccomp: None,
            no_new_privileges: false,
            readonly_rootfs: false,
            privileged: false,
            host_namespaces: HostNamespaces::default(),
            mounts: Vec::new(),
            annotations: Vec::new(),
            labels: Vec::new(),
        }
    }
}

impl Default for Pod {
    fn default() -> Self {
        Pod {
            name: String::new(),
            namespace: String::new(),
            uid: String::new(),
            labels: Vec::new(),
            annotations: Vec::new(),
        }
    }
}

impl Default for Image {
    fn default() -> Self {
        Image {
            reference: String::new(),
            normalized: String::new(),
            digest: None,
            registry: String::new(),
            repository: String::new(),
            tag: None,
            config: None,
        }
    }
}

impl Default for Process {
    fn default() -> Self {
        Process {
            args: Vec::new(),
            env: Vec::new(),
            user: User::default(),
            cwd: String::new(),
        }
    }
}

impl Default for User {
    fn default() -> Self {
        User {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            username: None,
        }
    }
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            bounding: Vec::new(),
            effective: Vec::new(),
            permitted: Vec::new(),
            inheritable: Vec::new(),
            ambient: Vec::new(),
        }
    }
}

impl Default for HostNamespaces {
    fn default() -> Self {
        HostNamespaces {
            network: false,
            pid: false,
            ipc: false,
            uts: false,
            user: false,
            cgroup: false,
        }
    }
}

fn lookup<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

impl Container {
    /// A container annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.annotations, key)
    }

    /// A container label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        lookup(&self.labels, key)
    }

    /// A pod annotation's value (where Kubernetes users put per-pod exceptions).
    pub fn pod_annotation(&self, key: &str) -> Option<&str> {
        lookup(&self.pod.annotations, key)
    }

    /// A pod label's value.
    pub fn pod_label(&self, key: &str) -> Option<&str> {
        lookup(&self.pod.labels, key)
    }

    /// Whether `cap` is in the effective set (names are compared in any accepted spelling).
    pub fn has_effective_capability(&self, cap: Capability) -> bool {
        self.capabilities
            .effective
            .iter()
            .any(|name| name.parse::<Capability>() == Ok(cap))
    }

    /// Whether the process runs as uid 0.
    pub fn runs_as_root(&self) -> bool {
        self.process.user.uid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_on_a_default_view() {
        let mut c = Container {
            privileged: true,
            ..Container::default()
        };
        c.pod.annotations.push(("a".into(), "1".into()));
        c.capabilities.effective.push("NET_RAW".into());
        assert_eq!(c.pod_annotation("a"), Some("1"));
        assert_eq!(c.annotation("a"), None);
        assert!(c.has_effective_capability(Capability::NetRaw));
        assert!(c.runs_as_root());
    }
}
