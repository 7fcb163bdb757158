//! Conversions between bulkhead's typed decisions and the OCI runtime spec (`oci-spec`).
//!
//! Both sides follow the OCI JSON format for seccomp and capabilities, so conversion goes
//! through that JSON: one well-defined mapping instead of a hand-written field copy that could
//! drift from either type.

use bulkhead_core::decision::{Capability, SeccompProfile};
use oci_spec::runtime::{Capabilities, LinuxSeccomp};
use serde_json::{Map, Value, json};

/// An OCI mount as the runtime's NRI view writes one (paths as text, absent fields empty).
pub fn mount_from_oci(mount: &oci_spec::runtime::Mount) -> bulkhead_core::event::Mount {
    bulkhead_core::event::Mount {
        destination: mount.destination().display().to_string(),
        kind: mount.typ().clone().unwrap_or_default(),
        source: mount
            .source()
            .as_ref()
            .map(|s| s.display().to_string())
            .unwrap_or_default(),
        options: mount.options().clone().unwrap_or_default(),
    }
}

/// A bulkhead seccomp profile as an OCI `LinuxSeccomp`.
pub fn seccomp_to_oci(profile: &SeccompProfile) -> Result<LinuxSeccomp, String> {
    let mut root = Map::new();
    root.insert(
        "defaultAction".into(),
        Value::String(profile.default_action.oci_name().into()),
    );
    if let Some(errno) = profile.default_errno {
        root.insert("defaultErrnoRet".into(), json!(errno));
    }
    if !profile.architectures.is_empty() {
        root.insert("architectures".into(), json!(profile.architectures));
    }
    let syscalls: Vec<Value> = profile
        .syscalls
        .iter()
        .map(|rule| {
            let mut entry = Map::new();
            entry.insert("names".into(), json!(rule.names));
            entry.insert(
                "action".into(),
                Value::String(rule.action.oci_name().into()),
            );
            if let Some(errno) = rule.errno {
                entry.insert("errnoRet".into(), json!(errno));
            }
            if !rule.args.is_empty() {
                let args: Vec<Value> = rule
                    .args
                    .iter()
                    .map(|arg| {
                        json!({
                            "index": arg.index,
                            "value": arg.value,
                            "valueTwo": arg.value_two,
                            "op": arg.op.oci_name(),
                        })
                    })
                    .collect();
                entry.insert("args".into(), Value::Array(args));
            }
            Value::Object(entry)
        })
        .collect();
    root.insert("syscalls".into(), Value::Array(syscalls));
    serde_json::from_value(Value::Object(root)).map_err(|e| format!("seccomp profile: {e}"))
}

/// An OCI `LinuxSeccomp` as a bulkhead profile, for the container view. `None` when the spec's
/// profile uses something bulkhead's type cannot express (the view then reports a profile with
/// only its default action, so plugins still see that one is present).
pub fn seccomp_from_oci(seccomp: &LinuxSeccomp) -> Option<SeccompProfile> {
    let oci = serde_json::to_value(seccomp).ok()?;
    let get = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    let syscalls: Option<Vec<Value>> = oci.get("syscalls").and_then(Value::as_array).map(|rules| {
        rules
            .iter()
            .map(|rule| {
                let args: Vec<Value> = rule
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|args| {
                        args.iter()
                            .map(|a| {
                                json!({
                                    "index": get(a, "index"),
                                    "value": get(a, "value"),
                                    "value-two": a.get("valueTwo").cloned().unwrap_or(json!(0)),
                                    "op": get(a, "op"),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let mut entry = json!({
                    "names": get(rule, "names"),
                    "action": get(rule, "action"),
                    "args": args,
                });
                if let Some(errno) = rule.get("errnoRet").filter(|v| !v.is_null()) {
                    entry["errno"] = errno.clone();
                }
                entry
            })
            .collect()
    });
    let mut profile = json!({
        "default-action": get(&oci, "defaultAction"),
        "syscalls": syscalls.unwrap_or_default(),
    });
    if let Some(errno) = oci.get("defaultErrnoRet").filter(|v| !v.is_null()) {
        profile["default-errno"] = errno.clone();
    }
    if let Some(arches) = oci.get("architectures").filter(|v| !v.is_null()) {
        profile["architectures"] = arches.clone();
    }
    serde_json::from_value(profile).ok()
}

/// bulkhead capabilities as an `oci-spec` capability set.
pub fn capabilities_to_oci<'a>(caps: impl IntoIterator<Item = &'a Capability>) -> Capabilities {
    caps.into_iter()
        .filter_map(|cap| serde_json::from_value(Value::String(cap.name().to_string())).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bulkhead_core::decision::{SeccompAction, SeccompArg, SeccompOperator, SeccompSyscall};

    fn deny_mkdir() -> SeccompProfile {
        SeccompProfile {
            default_action: SeccompAction::Allow,
            default_errno: None,
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: vec![
                SeccompSyscall {
                    names: vec!["mkdir".into(), "mkdirat".into()],
                    action: SeccompAction::Errno,
                    errno: Some(1),
                    args: Vec::new(),
                },
                SeccompSyscall {
                    names: vec!["personality".into()],
                    action: SeccompAction::Allow,
                    errno: None,
                    args: vec![SeccompArg {
                        index: 0,
                        value: 8,
                        value_two: 0,
                        op: SeccompOperator::EqualTo,
                    }],
                },
            ],
        }
    }

    #[test]
    fn seccomp_round_trips_through_oci() {
        let profile = deny_mkdir();
        let oci = seccomp_to_oci(&profile).unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(json["syscalls"][0]["action"], "SCMP_ACT_ERRNO");
        assert_eq!(json["syscalls"][0]["errnoRet"], 1);
        assert_eq!(json["syscalls"][1]["args"][0]["op"], "SCMP_CMP_EQ");
        assert_eq!(seccomp_from_oci(&oci), Some(profile));
    }

    #[test]
    fn capabilities_convert_by_name() {
        let caps = capabilities_to_oci(&[Capability::NetBindService, Capability::NetRaw]);
        assert_eq!(caps.len(), 2);
        assert!(caps.contains(&oci_spec::runtime::Capability::NetBindService));
    }
}
