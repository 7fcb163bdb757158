//! Which NRI contract a runtime speaks, and what bulkhead can rely on at each level: one row per
//! level, each unit-tested, so the engine asks the table instead of comparing version strings.
//!
//! A runtime's level comes from the NRI version it reports in `ConfigureRequest` (NRI v0.12 and
//! later), else from its own version (containerd's releases pin one NRI module each: 2.0 and 2.1
//! v0.8, 2.2.0 v0.10, 2.2.1+ v0.11, 2.3 v0.12; 1.7 an older one).

use std::fmt;

/// An NRI contract level, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NriLevel {
    /// What containerd 1.7 speaks: an NRI API before v0.8.
    Before0_8,
    /// NRI v0.8 and v0.9 (containerd 2.0, 2.1).
    V0_8,
    /// NRI v0.10 (containerd 2.2.0): validation, seccomp and namespace adjustments,
    /// `required_plugins`.
    V0_10,
    /// NRI v0.11 (containerd 2.2.1 and later 2.2 releases).
    V0_11,
    /// NRI v0.12 and later (containerd 2.3): version exchange, one RPC per lifecycle event.
    V0_12,
}

/// What a runtime at one [`NriLevel`] does for a plugin. Every field is something bulkhead
/// either relies on or must work around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelCapabilities {
    /// The runtime calls one RPC per lifecycle event (`PostCreateContainer`, `StartContainer`,
    /// ...) instead of `StateChange`, and records a deprecation for plugins that do not answer
    /// them.
    pub per_event_rpcs: bool,
    /// The runtime sends its NRI version in `ConfigureRequest` and reads the plugin's from
    /// `RegisterPluginRequest`.
    pub version_exchange: bool,
    /// A CreateContainer adjustment can set env, annotations, mounts and rlimits, which the
    /// runtime applies while building the container.
    pub native_env_mounts_rlimits: bool,
    /// A CreateContainer adjustment can set the seccomp profile (`seccomp_policy`).
    pub native_seccomp: bool,
    /// Capabilities, `no_new_privileges` and a read-only root filesystem can be changed through
    /// NRI. No level can: they always go through the verified stored-spec patch.
    pub native_capabilities: bool,
    /// `ValidateContainerAdjustment` exists: a validator sees every plugin's adjustments.
    pub validation: bool,
    /// The runtime can refuse to create containers while a named plugin is absent
    /// (`required_plugins`). Even then, the first container after the plugin goes away is not
    /// refused: containerd counts a disconnected plugin as present until its next request.
    pub required_plugins: bool,
    /// `io.kubernetes.cri.image-name` holds the image name the caller asked for. containerd 1.7
    /// writes the image's first stored name instead, so the request is read from the container
    /// record at PostCreate.
    pub annotates_requested_image: bool,
    /// A refusal at CreateContainer reaches the CRI caller as the container's creation error.
    pub create_refusal_reaches_caller: bool,
    /// A refusal at StartContainer reaches the CRI caller, and no process of the container
    /// runs. (PostCreateContainer refusals are not honoured at any level: bulkhead decides
    /// there and refuses at StartContainer.)
    pub start_refusal_reaches_caller: bool,
}

impl NriLevel {
    /// Every level, oldest first.
    pub const ALL: [NriLevel; 5] = [
        NriLevel::Before0_8,
        NriLevel::V0_8,
        NriLevel::V0_10,
        NriLevel::V0_11,
        NriLevel::V0_12,
    ];

    /// The NRI version this level stands for, as NRI writes versions.
    pub fn name(self) -> &'static str {
        match self {
            NriLevel::Before0_8 => "before v0.8",
            NriLevel::V0_8 => "v0.8",
            NriLevel::V0_10 => "v0.10",
            NriLevel::V0_11 => "v0.11",
            NriLevel::V0_12 => "v0.12",
        }
    }

    /// The containerd releases at this level.
    pub fn containerd_releases(self) -> &'static str {
        match self {
            NriLevel::Before0_8 => "1.7",
            NriLevel::V0_8 => "2.0, 2.1",
            NriLevel::V0_10 => "2.2.0",
            NriLevel::V0_11 => "2.2.1 and later 2.2",
            NriLevel::V0_12 => "2.3",
        }
    }

    /// The level of a runtime: the NRI version it reported (`reported_nri`, empty before
    /// v0.12), else what its release ships. `None` for a runtime this table does not know (it
    /// is then treated as [`NriLevel::V0_8`], the contract bulkhead was built on, by the caller).
    pub fn of_runtime(name: &str, version: &str, reported_nri: &str) -> Option<NriLevel> {
        if let Some((0, minor)) = major_minor(reported_nri) {
            return Some(match minor {
                0..=7 => NriLevel::Before0_8,
                8 | 9 => NriLevel::V0_8,
                10 => NriLevel::V0_10,
                11 => NriLevel::V0_11,
                _ => NriLevel::V0_12,
            });
        }
        if name != "containerd" {
            return None;
        }
        let (major, minor) = major_minor(version)?;
        let patch = version_numbers(version).nth(2).unwrap_or(0);
        Some(match (major, minor) {
            (1, _) => NriLevel::Before0_8,
            (2, 0 | 1) => NriLevel::V0_8,
            (2, 2) if patch == 0 => NriLevel::V0_10,
            (2, 2) => NriLevel::V0_11,
            (2, _) | (3.., _) => NriLevel::V0_12,
            (0, _) => return None,
        })
    }

    /// What a runtime at this level does for a plugin.
    pub fn capabilities(self) -> LevelCapabilities {
        let at_least = |level: NriLevel| self >= level;
        LevelCapabilities {
            per_event_rpcs: at_least(NriLevel::V0_12),
            version_exchange: at_least(NriLevel::V0_12),
            native_env_mounts_rlimits: true,
            native_seccomp: at_least(NriLevel::V0_10),
            native_capabilities: false,
            validation: at_least(NriLevel::V0_10),
            required_plugins: at_least(NriLevel::V0_10),
            annotates_requested_image: at_least(NriLevel::V0_8),
            create_refusal_reaches_caller: true,
            start_refusal_reaches_caller: true,
        }
    }
}

impl fmt::Display for NriLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The leading numbers of a version text: `v2.1.9+unknown` gives 2, 1, 9.
fn version_numbers(text: &str) -> impl Iterator<Item = u64> + '_ {
    text.trim()
        .trim_start_matches('v')
        .split(['.', '-', '+'])
        .map_while(|part| part.parse().ok())
}

fn major_minor(text: &str) -> Option<(u64, u64)> {
    let mut numbers = version_numbers(text);
    Some((numbers.next()?, numbers.next()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_nri_version_decides_the_level() {
        assert_eq!(
            NriLevel::of_runtime("containerd", "2.3.4", "v0.12.2"),
            Some(NriLevel::V0_12)
        );
        // Whatever the runtime calls itself, the NRI version it speaks wins.
        assert_eq!(
            NriLevel::of_runtime("cri-o", "1.34.0", "v0.11.0"),
            Some(NriLevel::V0_11)
        );
        assert_eq!(
            NriLevel::of_runtime("containerd", "2.9.0", "0.13.1"),
            Some(NriLevel::V0_12)
        );
    }

    #[test]
    fn without_one_containerds_release_decides() {
        let level = |version| NriLevel::of_runtime("containerd", version, "");
        assert_eq!(level("v1.7.24"), Some(NriLevel::Before0_8));
        assert_eq!(level("1.7.24"), Some(NriLevel::Before0_8));
        assert_eq!(level("v2.0.5"), Some(NriLevel::V0_8));
        assert_eq!(level("2.1.9+unknown"), Some(NriLevel::V0_8));
        assert_eq!(level("v2.2.0"), Some(NriLevel::V0_10));
        assert_eq!(level("v2.2.7"), Some(NriLevel::V0_11));
        assert_eq!(level("v2.3.4"), Some(NriLevel::V0_12));
        assert_eq!(level("garbage"), None);
        assert_eq!(NriLevel::of_runtime("cri-o", "1.34.0", ""), None);
    }

    #[test]
    fn only_v0_12_calls_per_event_rpcs_and_exchanges_versions() {
        for level in NriLevel::ALL {
            let caps = level.capabilities();
            assert_eq!(caps.per_event_rpcs, level == NriLevel::V0_12, "{level}");
            assert_eq!(caps.version_exchange, level == NriLevel::V0_12, "{level}");
        }
    }

    #[test]
    fn validation_seccomp_adjustment_and_required_plugins_start_at_v0_10() {
        for level in NriLevel::ALL {
            let caps = level.capabilities();
            let from_v0_10 = level >= NriLevel::V0_10;
            assert_eq!(caps.validation, from_v0_10, "{level}");
            assert_eq!(caps.native_seccomp, from_v0_10, "{level}");
            assert_eq!(caps.required_plugins, from_v0_10, "{level}");
        }
    }

    #[test]
    fn no_level_sets_capabilities_and_every_level_honours_create_and_start_refusals() {
        for level in NriLevel::ALL {
            let caps = level.capabilities();
            assert!(!caps.native_capabilities, "{level}");
            assert!(caps.native_env_mounts_rlimits, "{level}");
            assert!(caps.create_refusal_reaches_caller, "{level}");
            assert!(caps.start_refusal_reaches_caller, "{level}");
        }
    }

    #[test]
    fn only_containerd_1_7_misnames_the_image() {
        for level in NriLevel::ALL {
            assert_eq!(
                level.capabilities().annotates_requested_image,
                level != NriLevel::Before0_8,
                "{level}"
            );
        }
    }

    /// The table of docs/operator-guide.md, rendered from [`NriLevel::capabilities`].
    fn table_rows() -> Vec<String> {
        let yes = |b: bool| if b { "yes" } else { "no" };
        NriLevel::ALL
            .into_iter()
            .map(|level| {
                let c = level.capabilities();
                let events = if c.per_event_rpcs {
                    "one RPC per event"
                } else {
                    "StateChange"
                };
                format!(
                    "| {} | {} | {events} | {} / {} | {} | {} | {} | {} | {} |",
                    level.containerd_releases(),
                    level.name(),
                    yes(c.create_refusal_reaches_caller),
                    yes(c.start_refusal_reaches_caller),
                    yes(c.native_env_mounts_rlimits),
                    yes(c.native_seccomp),
                    yes(c.validation),
                    yes(c.required_plugins),
                    yes(c.annotates_requested_image),
                )
            })
            .collect()
    }

    #[test]
    fn operator_guide_table_matches() {
        let guide = include_str!("../../../docs/operator-guide.md");
        let start = guide.find("<!-- nri-levels:").expect("table start marker");
        let end = guide
            .find("<!-- /nri-levels -->")
            .expect("table end marker");
        let rows: Vec<&str> = guide[start..end]
            .lines()
            .filter(|l| {
                l.starts_with("| ") && !l.starts_with("| containerd |") && !l.starts_with("| ---")
            })
            .collect();
        assert_eq!(
            rows,
            table_rows(),
            "docs/operator-guide.md's NRI table is stale; the rows above are what the code says"
        );
    }
}
