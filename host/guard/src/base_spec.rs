//! The base runtime spec that installs the hook in every CRI container.
//!
//! containerd's CRI starts each container's OCI spec from the runtime's `base_runtime_spec`
//! file when one is configured, and from its built-in default spec otherwise
//! (`oci.GenerateSpec`, what `ctr oci spec` prints). The base spec written here is that
//! built-in default — captured verbatim from containerd 2.1.9 — plus one `createRuntime` hook,
//! so turning the guard on changes nothing else about any container. (Its `cgroupsPath` of
//! `/default` is replaced per container by CRI, as with the built-in default.)

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::DEFAULT_KEY_PATH;

/// containerd 2.1.9's default Linux spec, exactly as `ctr oci spec` prints it.
pub const CONTAINERD_DEFAULT_SPEC: &str = include_str!("containerd-2.1-default-spec.json");

/// Default for [`HookConfig::timeout_seconds`]: the hook takes about a millisecond; anything
/// near this means the node is in trouble, and runc then fails the create (closed).
pub const DEFAULT_HOOK_TIMEOUT_SECONDS: u32 = 10;

/// How the hook is invoked from the base spec.
#[derive(Debug, Clone)]
pub struct HookConfig {
    /// Absolute path of the `bulkhead-guard` binary (resolved in the host's mount namespace:
    /// `createRuntime` hooks run in the runtime's namespaces).
    pub hook_path: PathBuf,
    /// The key file the hook reads.
    pub key_path: PathBuf,
    /// Refuse containers that are not CRI-managed too.
    pub strict: bool,
    /// runc kills the hook and fails the create after this long.
    pub timeout_seconds: u32,
}

impl HookConfig {
    /// The hook at `hook_path` with the default key path, not strict, the default timeout.
    pub fn new(hook_path: impl Into<PathBuf>) -> Self {
        Self {
            hook_path: hook_path.into(),
            key_path: PathBuf::from(DEFAULT_KEY_PATH),
            strict: false,
            timeout_seconds: DEFAULT_HOOK_TIMEOUT_SECONDS,
        }
    }

    /// The OCI hook entry (`path`, `args` with `argv[0]`, `timeout`).
    pub fn hook(&self) -> Value {
        let mut args = vec![
            "bulkhead-guard".to_owned(),
            "hook".to_owned(),
            "--key".to_owned(),
            self.key_path.to_string_lossy().into_owned(),
        ];
        if self.strict {
            args.push("--strict".to_owned());
        }
        json!({
            "path": self.hook_path.to_string_lossy(),
            "args": args,
            "timeout": self.timeout_seconds,
        })
    }
}

/// containerd's default spec with the guard hook appended to `hooks.createRuntime`.
pub fn base_spec(config: &HookConfig) -> Value {
    let mut spec: Value =
        serde_json::from_str(CONTAINERD_DEFAULT_SPEC).expect("the embedded default spec is JSON");
    let root = spec
        .as_object_mut()
        .expect("the embedded default spec is an object");
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("hooks is an object");
    hooks
        .entry("createRuntime")
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .expect("createRuntime is an array")
        .push(config.hook());
    spec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_spec_is_the_default_plus_one_create_runtime_hook() {
        let mut config = HookConfig::new("/usr/local/bin/bulkhead-guard");
        config.key_path = "/etc/bulkhead/other.key".into();
        let mut spec = base_spec(&config);
        let hooks = spec.as_object_mut().unwrap().remove("hooks").unwrap();
        assert_eq!(
            hooks,
            json!({"createRuntime": [{
                "path": "/usr/local/bin/bulkhead-guard",
                "args": ["bulkhead-guard", "hook", "--key", "/etc/bulkhead/other.key"],
                "timeout": DEFAULT_HOOK_TIMEOUT_SECONDS,
            }]})
        );
        let default: Value = serde_json::from_str(CONTAINERD_DEFAULT_SPEC).unwrap();
        assert_eq!(spec, default, "nothing but the hook differs");
    }

    #[test]
    fn strict_is_passed_to_the_hook() {
        let mut config = HookConfig::new("/bin/bulkhead-guard");
        config.strict = true;
        assert_eq!(config.hook()["args"][4], "--strict");
    }

    #[test]
    fn embedded_default_looks_like_containerd_2_1() {
        let default: Value = serde_json::from_str(CONTAINERD_DEFAULT_SPEC).unwrap();
        assert_eq!(default["ociVersion"], "1.2.1");
        assert_eq!(default["process"]["noNewPrivileges"], true);
        assert_eq!(
            default["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert!(default.get("hooks").is_none());
    }
}
