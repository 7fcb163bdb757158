//! `[nri.validation]`: which fields each of the node's other NRI plugins may adjust, by the names
//! of NRI's `Field` enum. What a pending adjustment is judged by lives in
//! [`crate::nri_validation`].

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// NRI's adjustable fields (`api.proto`'s `Field` enum), by number, as bulkhead names them.
pub const FIELDS: &[(i32, &str)] = &[
    (1, "annotations"),
    (2, "mounts"),
    (3, "oci-hooks"),
    (4, "devices"),
    (5, "cdi-devices"),
    (6, "env"),
    (7, "args"),
    (8, "mem-limit"),
    (9, "mem-reservation"),
    (10, "mem-swap-limit"),
    (11, "mem-kernel-limit"),
    (12, "mem-tcp-limit"),
    (13, "mem-swappiness"),
    (14, "mem-disable-oom-killer"),
    (15, "mem-use-hierarchy"),
    (16, "cpu-shares"),
    (17, "cpu-quota"),
    (18, "cpu-period"),
    (19, "cpu-realtime-runtime"),
    (20, "cpu-realtime-period"),
    (21, "cpuset-cpus"),
    (22, "cpuset-mems"),
    (23, "pids-limit"),
    (24, "hugepage-limits"),
    (25, "blockio-class"),
    (26, "rdt-class"),
    (27, "cgroups-unified"),
    (28, "cgroups-path"),
    (29, "oom-score-adj"),
    (30, "rlimits"),
    (31, "io-priority"),
    (32, "seccomp-policy"),
    (33, "namespace"),
    (34, "sysctl"),
    (35, "linux-net-devices"),
    (36, "linux-sched"),
    (37, "rdt-clos-id"),
    (38, "rdt-schemata"),
    (39, "rdt-enable-monitoring"),
    (40, "memory-policy"),
];

/// The name of NRI field `number`, or `field-<n>` for one this table does not know yet.
pub fn field_name(number: i32) -> String {
    FIELDS.iter().find(|(n, _)| *n == number).map_or_else(
        || format!("field-{number}"),
        |(_, name)| (*name).to_string(),
    )
}

/// `[nri.validation]`: whether bulkhead validates other NRI plugins' adjustments, and what each
/// may touch. Off by default; it needs containerd 2.2 or later (NRI v0.10).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValidationConfig {
    /// Validate. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// NRI plugin name (as registered, without its index) → the fields it may adjust, by the
    /// names of [`FIELDS`]. A plugin not listed may adjust nothing.
    #[serde(default)]
    pub plugins: BTreeMap<String, BTreeSet<String>>,
}

impl ValidationConfig {
    /// Refuses field names NRI does not have, naming the key.
    pub fn validate(&self) -> Result<(), Error> {
        for (plugin, fields) in &self.plugins {
            if let Some(unknown) = fields
                .iter()
                .find(|f| !FIELDS.iter().any(|(_, name)| name == f))
            {
                return Err(Error::InvalidConfig {
                    key: format!("nri.validation.plugins.{plugin}"),
                    reason: format!(
                        "unknown NRI field {unknown:?} (known: {})",
                        FIELDS
                            .iter()
                            .map(|(_, n)| *n)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_names_are_config_errors_naming_the_plugin() {
        let config: ValidationConfig = toml::from_str("[plugins]\nx = [\"cpu-sets\"]\n").unwrap();
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("nri.validation.plugins.x"), "{message}");
        assert!(message.contains("\"cpu-sets\""), "{message}");
    }

    #[test]
    fn field_names_cover_the_enum_and_name_newer_fields_by_number() {
        assert_eq!(field_name(32), "seccomp-policy");
        assert_eq!(field_name(99), "field-99");
        let numbers: Vec<i32> = FIELDS.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=40).collect::<Vec<_>>());
    }
}
