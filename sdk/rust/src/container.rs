//! Lookups on the [`Container`] view that every policy ends up writing.

use crate::{Capability, Container};

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
