//! Composing the decisions of a plugin chain into one outcome.
//!
//! Rules (DESIGN §4): any deny wins; mutations compose monotonically toward safety — capability
//! sets only shrink (drops accumulate, keep-only sets intersect), no_new_privileges and a
//! read-only rootfs only switch on, a later seccomp profile must be at least as strict as the one
//! already chosen, and two plugins setting the same env variable, annotation, mount target or
//! secret target to different values is a conflict. A conflict is reported with both plugin
//! names and refuses the container: bulkhead cannot know which of two contradictory hardenings
//! the operator meant, and applying neither would fail open.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;

use crate::decision::{
    Capability, Decision, Mutation, Rlimit, SeccompProfile, SecretMount, Verdict,
};
use crate::grants::at_least_as_strict;
use crate::view::Mount;

/// Everything the chain asked for, merged, with the plugin that asked for each part.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct MergedMutations {
    /// Keep only these capabilities (the intersection of every keep-only request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_only_capabilities: Option<BTreeSet<Capability>>,
    /// Remove these capabilities (the union of every drop request).
    #[serde(skip_serializing_if = "BTreeSet::is_empty")]
    pub drop_capabilities: BTreeSet<Capability>,
    /// The seccomp profile to set, and which plugin chose it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Chosen<Arc<SeccompProfile>>>,
    /// Set no_new_privileges.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_new_privileges: bool,
    /// Make the root filesystem read-only.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub readonly_rootfs: bool,
    /// Environment variables to set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Chosen<String>>,
    /// Annotations to set.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Chosen<String>>,
    /// Resource limits, by name; two requests for one limit keep the lower values.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rlimits: BTreeMap<String, Rlimit>,
    /// Mounts to add, by destination.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub mounts: BTreeMap<String, Chosen<Mount>>,
    /// Secrets to mount, by target path.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, Chosen<SecretMount>>,
}

/// A value and the plugin that asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chosen<T> {
    /// The plugin.
    pub plugin: String,
    /// What it asked for.
    pub value: T,
}

/// Two plugins asked for incompatible things.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Conflict {
    /// The plugin whose request came first in the chain.
    pub first: String,
    /// The plugin whose request could not be combined with it.
    pub second: String,
    /// What they disagree on.
    pub what: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "plugins {} and {} conflict: {}",
            self.first, self.second, self.what
        )
    }
}

/// The merged outcome of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Merged {
    /// Allow, or deny with a reason naming the plugin (or the conflicting plugins).
    pub verdict: Verdict,
    /// What to apply when the verdict is allow.
    pub mutations: MergedMutations,
    /// Every conflict found (any conflict makes the verdict a deny).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

impl MergedMutations {
    /// True when nothing is to be changed.
    pub fn is_empty(&self) -> bool {
        self == &MergedMutations::default()
    }

    /// Adds one plugin's mutations; returns the conflicts they caused.
    pub fn add(&mut self, plugin: &str, mutations: &[Mutation]) -> Vec<Conflict> {
        let mut conflicts = Vec::new();
        let mut conflict = |first: &str, what: String| {
            conflicts.push(Conflict {
                first: first.to_string(),
                second: plugin.to_string(),
                what,
            })
        };
        for mutation in mutations {
            match mutation {
                Mutation::DropCapabilities(caps) => {
                    self.drop_capabilities.extend(caps.iter().copied());
                }
                Mutation::KeepOnlyCapabilities(caps) => {
                    let keep: BTreeSet<Capability> = caps.iter().copied().collect();
                    self.keep_only_capabilities = Some(match self.keep_only_capabilities.take() {
                        Some(current) => current.intersection(&keep).copied().collect(),
                        None => keep,
                    });
                }
                Mutation::SetSeccomp(profile) => match &self.seccomp {
                    None => {
                        self.seccomp = Some(Chosen {
                            plugin: plugin.to_string(),
                            value: profile.clone(),
                        })
                    }
                    Some(current) if current.value == *profile => {}
                    Some(current) if at_least_as_strict(profile, &current.value) => {
                        self.seccomp = Some(Chosen {
                            plugin: plugin.to_string(),
                            value: profile.clone(),
                        })
                    }
                    Some(current) => conflict(
                        &current.plugin,
                        "the later seccomp profile permits syscalls the earlier one blocks".into(),
                    ),
                },
                Mutation::SetNoNewPrivileges => self.no_new_privileges = true,
                Mutation::SetReadonlyRootfs => self.readonly_rootfs = true,
                Mutation::AddEnv { name, value } => {
                    if let Some((first, what)) = set_once(
                        &mut self.env,
                        name,
                        value.clone(),
                        plugin,
                        "environment variable",
                    ) {
                        conflict(&first, what);
                    }
                }
                Mutation::AddAnnotation { key, value } => {
                    if let Some((first, what)) = set_once(
                        &mut self.annotations,
                        key,
                        value.clone(),
                        plugin,
                        "annotation",
                    ) {
                        conflict(&first, what);
                    }
                }
                Mutation::AddRlimit(limit) => {
                    let merged = match self.rlimits.get(&limit.kind) {
                        Some(current) => Rlimit {
                            kind: limit.kind.clone(),
                            hard: current.hard.min(limit.hard),
                            soft: current.soft.min(limit.soft),
                        },
                        None => limit.clone(),
                    };
                    self.rlimits.insert(limit.kind.clone(), merged);
                }
                Mutation::AddMount(mount) => {
                    if let Some((first, what)) = set_once(
                        &mut self.mounts,
                        &mount.destination,
                        mount.clone(),
                        plugin,
                        "mount at",
                    ) {
                        conflict(&first, what);
                    }
                }
                Mutation::MountSecret(secret) => {
                    if let Some((first, what)) = set_once(
                        &mut self.secrets,
                        &secret.target,
                        secret.clone(),
                        plugin,
                        "secret at",
                    ) {
                        conflict(&first, what);
                    }
                }
            }
        }
        conflicts
    }
}

/// Records `value` under `key` unless another plugin set a different value there; returns the
/// earlier plugin and a description on conflict.
fn set_once<T: PartialEq>(
    map: &mut BTreeMap<String, Chosen<T>>,
    key: &str,
    value: T,
    plugin: &str,
    what: &str,
) -> Option<(String, String)> {
    match map.get(key) {
        Some(current) if current.value == value => None,
        Some(current) => Some((
            current.plugin.clone(),
            format!("different values for {what} {key}"),
        )),
        None => {
            map.insert(
                key.to_string(),
                Chosen {
                    plugin: plugin.to_string(),
                    value,
                },
            );
            None
        }
    }
}

/// Merges the decisions of enforcing plugins, in chain order.
pub fn merge<'a>(decisions: impl IntoIterator<Item = (&'a str, &'a Decision)>) -> Merged {
    let mut merged = Merged::default();
    let mut denials = Vec::new();
    for (plugin, decision) in decisions {
        if let Verdict::Deny(reason) = &decision.verdict {
            // Plugins often start their reasons with their own name; say it once.
            let reason = reason
                .strip_prefix(plugin)
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(reason);
            denials.push(format!("{plugin}: {reason}"));
        }
        let conflicts = merged.mutations.add(plugin, &decision.mutations);
        merged.conflicts.extend(conflicts);
    }
    if !denials.is_empty() {
        merged.verdict = Verdict::Deny(format!("denied by {}", denials.join("; ")));
    } else if !merged.conflicts.is_empty() {
        let list: Vec<String> = merged.conflicts.iter().map(ToString::to_string).collect();
        merged.verdict = Verdict::Deny(format!("conflicting hardening: {}", list.join("; ")));
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::{SeccompAction, SeccompSyscall};

    fn profile(default: SeccompAction, rules: &[(&[&str], SeccompAction)]) -> SeccompProfile {
        SeccompProfile {
            default_action: default,
            default_errno: None,
            architectures: Vec::new(),
            syscalls: rules
                .iter()
                .map(|(names, action)| SeccompSyscall {
                    names: names.iter().map(|n| n.to_string()).collect(),
                    action: *action,
                    errno: None,
                    args: Vec::new(),
                })
                .collect(),
        }
    }

    fn allow_list(names: &[&str]) -> SeccompProfile {
        profile(SeccompAction::Errno, &[(names, SeccompAction::Allow)])
    }

    fn deny_list(names: &[&str]) -> SeccompProfile {
        profile(SeccompAction::Allow, &[(names, SeccompAction::Errno)])
    }

    fn decision(mutations: Vec<Mutation>) -> Decision {
        Decision {
            verdict: Verdict::Allow,
            mutations,
        }
    }

    #[test]
    fn any_deny_wins_and_names_the_plugin() {
        let allow = Decision::allow();
        let deny = Decision::deny("image is revoked");
        let merged = merge([("caps", &allow), ("images", &deny)]);
        assert_eq!(
            merged.verdict,
            Verdict::Deny("denied by images: image is revoked".into())
        );
    }

    #[test]
    fn a_plugin_naming_itself_in_its_reason_is_named_once() {
        let deny = Decision::deny("images: tag latest");
        let merged = merge([("images", &deny)]);
        assert_eq!(
            merged.verdict,
            Verdict::Deny("denied by images: tag latest".into())
        );
    }

    #[test]
    fn drops_accumulate_and_keep_only_sets_intersect() {
        use Capability::*;
        let a = decision(vec![
            Mutation::DropCapabilities(vec![NetRaw]),
            Mutation::KeepOnlyCapabilities(vec![NetBindService, Chown]),
        ]);
        let b = decision(vec![
            Mutation::DropCapabilities(vec![SysAdmin]),
            Mutation::KeepOnlyCapabilities(vec![NetBindService, Kill]),
        ]);
        let merged = merge([("a", &a), ("b", &b)]);
        assert_eq!(merged.verdict, Verdict::Allow);
        assert_eq!(
            merged.mutations.drop_capabilities,
            [NetRaw, SysAdmin].into_iter().collect()
        );
        assert_eq!(
            merged.mutations.keep_only_capabilities,
            Some([NetBindService].into_iter().collect())
        );
    }

    #[test]
    fn flags_only_switch_on() {
        let a = decision(vec![Mutation::SetNoNewPrivileges]);
        let b = decision(vec![Mutation::SetReadonlyRootfs]);
        let merged = merge([("a", &a), ("b", &b)]);
        assert!(merged.mutations.no_new_privileges && merged.mutations.readonly_rootfs);
    }

    #[test]
    fn a_stricter_later_seccomp_profile_replaces_the_earlier() {
        let loose = decision(vec![Mutation::SetSeccomp(Arc::new(allow_list(&[
            "read", "write", "mkdir",
        ])))]);
        let strict = decision(vec![Mutation::SetSeccomp(Arc::new(allow_list(&[
            "read", "write",
        ])))]);
        let merged = merge([("loose", &loose), ("strict", &strict)]);
        assert!(merged.conflicts.is_empty());
        assert_eq!(merged.mutations.seccomp.unwrap().plugin, "strict");
    }

    #[test]
    fn a_looser_later_seccomp_profile_is_a_conflict_naming_both_plugins() {
        let strict = decision(vec![Mutation::SetSeccomp(Arc::new(allow_list(&["read"])))]);
        let loose = decision(vec![Mutation::SetSeccomp(Arc::new(deny_list(&["mkdir"])))]);
        let merged = merge([("strict", &strict), ("loose", &loose)]);
        assert_eq!(merged.conflicts.len(), 1);
        assert_eq!(merged.conflicts[0].first, "strict");
        assert_eq!(merged.conflicts[0].second, "loose");
        let Verdict::Deny(reason) = merged.verdict else {
            panic!("a conflict must refuse the container");
        };
        assert!(
            reason.contains("strict") && reason.contains("loose"),
            "{reason}"
        );
    }

    #[test]
    fn the_same_profile_twice_is_no_conflict() {
        let a = decision(vec![Mutation::SetSeccomp(Arc::new(allow_list(&["read"])))]);
        let merged = merge([("a", &a), ("b", &a)]);
        assert!(merged.conflicts.is_empty());
        assert_eq!(merged.mutations.seccomp.unwrap().plugin, "a");
    }

    #[test]
    fn env_and_annotations_conflict_only_on_different_values() {
        let a = decision(vec![Mutation::AddEnv {
            name: "MODE".into(),
            value: "safe".into(),
        }]);
        let same = a.clone();
        let other = decision(vec![Mutation::AddEnv {
            name: "MODE".into(),
            value: "fast".into(),
        }]);
        assert!(merge([("a", &a), ("b", &same)]).conflicts.is_empty());
        let merged = merge([("a", &a), ("c", &other)]);
        assert_eq!(
            merged.conflicts[0].what,
            "different values for environment variable MODE"
        );
    }

    #[test]
    fn rlimits_keep_the_lower_values() {
        let limit = |soft, hard| {
            decision(vec![Mutation::AddRlimit(Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                soft,
                hard,
            })])
        };
        let (a, b) = (limit(100, 1000), limit(200, 500));
        let merged = merge([("a", &a), ("b", &b)]);
        let nofile = &merged.mutations.rlimits["RLIMIT_NOFILE"];
        assert_eq!((nofile.soft, nofile.hard), (100, 500));
    }

    #[test]
    fn no_decisions_allow_and_change_nothing() {
        let merged = merge([]);
        assert_eq!(merged.verdict, Verdict::Allow);
        assert!(merged.mutations.is_empty());
    }
}
