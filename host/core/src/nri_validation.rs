//! Validating what *other* NRI plugins on the node do to a container (NRI v0.10 and later).
//!
//! containerd 2.2+ asks validator plugins about every container's pending adjustment, with the
//! name of the plugin that set each field. bulkhead applies its grant model to them: an NRI
//! plugin may only touch the fields the operator granted it (`[nri.validation.plugins]`), and
//! nobody — granted or not — sets what bulkhead never lets its own plugins set (loader
//! variables, reserved annotations, mounts over the kernel's file systems). A refusal names the
//! plugin and the field. Pure, so every rule is unit-tested here.

use crate::config::{ValidationConfig, field_name, is_forbidden_env, is_reserved_annotation};

/// Kernel file systems no NRI plugin may mount over or under.
const KERNEL_TREES: &[&str] = &["/proc", "/sys", "/dev"];

/// One adjusted field of a pending adjustment and the plugin that set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedField {
    /// NRI's field number ([`crate::config::FIELDS`]).
    pub field: i32,
    /// For fields with entries: which one (the env name, annotation key, mount destination).
    pub entry: Option<String>,
    /// The owning plugin as the runtime names it (`10-example`).
    pub plugin: String,
}

/// The plugin name without the two-digit index the runtime puts in front (`10-example`).
fn bare_name(plugin: &str) -> &str {
    match plugin.split_once('-') {
        Some((index, name)) if index.len() == 2 && index.bytes().all(|b| b.is_ascii_digit()) => {
            name
        }
        _ => plugin,
    }
}

/// Judges a pending adjustment: `Err(reason)` names the first plugin and field at fault.
/// `own_name` is bulkhead's own registration name; its adjustments were judged already.
pub fn judge(
    owned: &[OwnedField],
    config: &ValidationConfig,
    own_name: &str,
) -> Result<(), String> {
    for owned in owned {
        // A simple field set by several plugins carries them comma-separated.
        for plugin in owned.plugin.split(',').map(str::trim) {
            let name = bare_name(plugin);
            if name == own_name {
                continue;
            }
            let field = field_name(owned.field);
            let entry = owned.entry.as_deref().unwrap_or_default();
            if let Some(reason) = never_allowed(&field, entry) {
                return Err(format!(
                    "NRI plugin {plugin} {reason}; no NRI plugin may, whatever it is granted"
                ));
            }
            let granted = config
                .plugins
                .get(name)
                .is_some_and(|fields| fields.contains(&field));
            if !granted {
                let what = if entry.is_empty() {
                    format!("`{field}`")
                } else {
                    format!("`{field}` ({entry})")
                };
                return Err(format!(
                    "NRI plugin {plugin} adjusted {what}, which [nri.validation.plugins] does not grant it"
                ));
            }
        }
    }
    Ok(())
}

/// What bulkhead refuses whoever asks: the same rules its own plugins' grants can never lift.
fn never_allowed(field: &str, entry: &str) -> Option<String> {
    match field {
        "env" if is_forbidden_env(entry) => Some(format!("set the loader variable {entry}")),
        "annotations" if is_reserved_annotation(entry) => {
            Some(format!("set the reserved annotation {entry}"))
        }
        "mounts"
            if entry == "/"
                || KERNEL_TREES
                    .iter()
                    .any(|tree| entry == *tree || entry.starts_with(&format!("{tree}/"))) =>
        {
            Some(format!("mounted over {entry}"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_text: &str) -> ValidationConfig {
        let config: ValidationConfig = toml::from_str(toml_text).unwrap();
        config.validate().unwrap();
        config
    }

    fn owned(field: i32, entry: Option<&str>, plugin: &str) -> OwnedField {
        OwnedField {
            field,
            entry: entry.map(str::to_owned),
            plugin: plugin.into(),
        }
    }

    const GRANTS: &str = "enabled = true\n[plugins]\ntopology = [\"cpuset-cpus\", \"cpuset-mems\"]\ninjector = [\"env\", \"mounts\", \"annotations\"]\n";

    #[test]
    fn granted_fields_pass_and_bulkheads_own_are_not_judged_again() {
        let config = config(GRANTS);
        let adjustment = [
            owned(21, None, "10-topology"),
            owned(6, Some("TRACE_ID"), "20-injector"),
            owned(32, None, "50-bulkhead"),
        ];
        assert_eq!(judge(&adjustment, &config, "bulkhead"), Ok(()));
    }

    #[test]
    fn an_ungranted_field_is_refused_naming_plugin_and_field() {
        let config = config(GRANTS);
        let reason = judge(&[owned(32, None, "10-topology")], &config, "bulkhead").unwrap_err();
        assert!(reason.contains("10-topology"), "{reason}");
        assert!(reason.contains("`seccomp-policy`"), "{reason}");
        // A plugin nobody listed may touch nothing.
        let reason = judge(&[owned(1, Some("a"), "30-stranger")], &config, "bulkhead").unwrap_err();
        assert!(
            reason.contains("30-stranger") && reason.contains("`annotations` (a)"),
            "{reason}"
        );
    }

    #[test]
    fn every_plugin_of_a_shared_simple_field_must_hold_the_grant() {
        let config = config(GRANTS);
        let reason = judge(
            &[owned(21, None, "10-topology,40-rogue")],
            &config,
            "bulkhead",
        )
        .unwrap_err();
        assert!(reason.contains("40-rogue"), "{reason}");
    }

    #[test]
    fn loader_variables_reserved_annotations_and_kernel_mounts_are_refused_even_when_granted() {
        let config = config(GRANTS);
        for (field, entry, expected) in [
            (6, "LD_PRELOAD", "loader variable LD_PRELOAD"),
            (1, "io.kubernetes.cri.sandbox-id", "reserved annotation"),
            (2, "/proc/sys", "mounted over /proc/sys"),
            (2, "/", "mounted over /"),
        ] {
            let reason = judge(
                &[owned(field, Some(entry), "20-injector")],
                &config,
                "bulkhead",
            )
            .unwrap_err();
            assert!(reason.contains(expected), "{reason}");
            assert!(reason.contains("whatever it is granted"), "{reason}");
        }
        // Names that merely start alike are fine.
        assert_eq!(
            judge(
                &[owned(2, Some("/procedures"), "20-injector")],
                &config,
                "bulkhead"
            ),
            Ok(())
        );
    }
}
