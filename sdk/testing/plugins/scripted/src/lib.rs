//! A plugin that does what its operator config says, so e2e tests can put any decision in front
//! of a real containerd without a plugin crate per case.
//!
//! Config (JSON, as bulkhead passes a `[plugins.config]` table), every key optional:
//! `name` (default `scripted`), `points` (decision points, default `["post-create-container"]`),
//! `deny` (reason), `loop` (spin forever), `keep-only` / `drop` (capability names),
//! `seccomp-errno` (syscalls denied with EPERM from an allow-by-default profile),
//! `seccomp-allow-only` (syscalls allowed from an EPERM-by-default profile), `no-new-privileges`,
//! `readonly-rootfs`, `env` and `annotations` (objects of strings), `seccomp-allow-all` (an
//! allow-everything profile), `seccomp-profile` (the name of a profile the host holds),
//! `mounts` (objects with `source`, `destination`, `type`,
//! `options`), `rlimits` (objects with `kind`, `soft`, `hard`), `secrets` (objects with
//! `secret`, `target`, `mode`), and `deny-bytes` (deny with a reason of that many bytes).
//!
//! Because it asks for whatever its config says, it doubles as the hostile third-party plugin
//! of the grant tests: everything it asks for beyond its grants must be refused by the host.

use bulkhead_sdk::{
    Capability, Container, Decision, DecisionPoint, Mount, Plugin, PluginError, PluginInfo,
    SeccompAction, SeccompBuilder,
};
use serde_json::Value;

/// The scripted plugin.
pub struct Scripted;

fn config() -> Value {
    serde_json::from_str(&bulkhead_sdk::config()).unwrap_or(Value::Null)
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn capabilities(value: &Value) -> Result<Vec<Capability>, PluginError> {
    strings(value)
        .iter()
        .map(|name| {
            name.parse()
                .map_err(|_| PluginError::InvalidConfig(format!("unknown capability {name}")))
        })
        .collect()
}

fn point(name: &str) -> Option<DecisionPoint> {
    Some(match name {
        "create-container" => DecisionPoint::CreateContainer,
        "post-create-container" => DecisionPoint::PostCreateContainer,
        "start-container" => DecisionPoint::StartContainer,
        _ => return None,
    })
}

/// The decision the config describes.
pub fn decide(config: &Value) -> Result<Decision, PluginError> {
    if config["loop"].as_bool() == Some(true) {
        #[allow(clippy::empty_loop, reason = "the point of this plugin mode")]
        loop {}
    }
    if let Some(reason) = config["deny"].as_str() {
        return Ok(Decision::deny(reason));
    }
    if let Some(bytes) = config["deny-bytes"].as_u64() {
        return Ok(Decision::deny("x".repeat(bytes as usize)));
    }
    let mut decision = Decision::allow();
    if config.get("keep-only").is_some() {
        decision = decision.keep_only_capabilities(capabilities(&config["keep-only"])?);
    }
    if config.get("drop").is_some() {
        decision = decision.drop_capabilities(capabilities(&config["drop"])?);
    }
    let errno = strings(&config["seccomp-errno"]);
    if !errno.is_empty() {
        decision = decision.seccomp(
            SeccompBuilder::new(SeccompAction::Allow)
                .errno(errno, 1)
                .build(),
        );
    }
    let allow_only = strings(&config["seccomp-allow-only"]);
    if !allow_only.is_empty() {
        decision = decision.seccomp(
            SeccompBuilder::new(SeccompAction::Errno)
                .allow(allow_only)
                .build(),
        );
    }
    if config["seccomp-allow-all"].as_bool() == Some(true) {
        decision = decision.seccomp(SeccompBuilder::new(SeccompAction::Allow).build());
    }
    if let Some(name) = config["seccomp-profile"].as_str() {
        decision = decision.use_seccomp_profile(name);
    }
    for mount in config["mounts"].as_array().into_iter().flatten() {
        decision = decision.mount(Mount {
            destination: mount["destination"].as_str().unwrap_or_default().into(),
            source: mount["source"].as_str().unwrap_or_default().into(),
            fs_type: mount["type"].as_str().unwrap_or("bind").into(),
            options: strings(&mount["options"]),
        });
    }
    for limit in config["rlimits"].as_array().into_iter().flatten() {
        decision = decision.rlimit(
            limit["kind"].as_str().unwrap_or_default(),
            limit["soft"].as_u64().unwrap_or_default(),
            limit["hard"].as_u64().unwrap_or_default(),
        );
    }
    for secret in config["secrets"].as_array().into_iter().flatten() {
        decision = decision.mount_secret(
            secret["secret"].as_str().unwrap_or_default(),
            secret["target"].as_str().unwrap_or_default(),
            secret["mode"].as_u64().unwrap_or(0o400) as u32,
        );
    }
    if config["no-new-privileges"].as_bool() == Some(true) {
        decision = decision.no_new_privileges();
    }
    if config["readonly-rootfs"].as_bool() == Some(true) {
        decision = decision.readonly_rootfs();
    }
    if let Some(env) = config["env"].as_object() {
        for (name, value) in env {
            decision = decision.env(name, value.as_str().unwrap_or_default());
        }
    }
    if let Some(annotations) = config["annotations"].as_object() {
        for (key, value) in annotations {
            decision = decision.annotation(key, value.as_str().unwrap_or_default());
        }
    }
    Ok(decision)
}

impl Plugin for Scripted {
    fn metadata() -> PluginInfo {
        let config = config();
        let name = config["name"].as_str().unwrap_or("scripted").to_string();
        let mut points: Vec<DecisionPoint> = strings(&config["points"])
            .iter()
            .filter_map(|p| point(p))
            .collect();
        if points.is_empty() {
            points.push(DecisionPoint::PostCreateContainer);
        }
        PluginInfo::new(name, "0.1.0", points)
    }

    fn check_container(_container: Container) -> Result<Decision, PluginError> {
        decide(&config())
    }
}

bulkhead_sdk::export_plugin!(Scripted);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deny_wins_over_mutations() {
        let decision = decide(&json!({"deny": "no", "drop": ["CAP_NET_RAW"]})).unwrap();
        assert_eq!(decision.deny_reason(), Some("no"));
    }

    #[test]
    fn unknown_capability_is_a_config_error() {
        assert!(decide(&json!({"drop": ["CAP_NOPE"]})).is_err());
    }

    #[test]
    fn hostile_requests_come_out_as_asked() {
        let decision = decide(&json!({
            "mounts": [{"source": "/", "destination": "/host", "options": ["rbind", "rw"]}],
            "rlimits": [{"kind": "RLIMIT_NOFILE", "soft": 1, "hard": 2}],
            "secrets": [{"secret": "token", "target": "/run/token", "mode": 292}],
            "seccomp-allow-all": true
        }))
        .unwrap();
        assert_eq!(decision.mutations.len(), 4);
        let long = decide(&json!({"deny-bytes": 10})).unwrap();
        assert_eq!(long.deny_reason(), Some("xxxxxxxxxx"));
    }

    #[test]
    fn empty_config_allows() {
        assert!(decide(&Value::Null).unwrap().is_allow());
    }
}
