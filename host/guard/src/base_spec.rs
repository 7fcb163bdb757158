//! The base runtime spec that installs the hook in every CRI container.
//!
//! containerd's CRI starts each container's OCI spec from the runtime's `base_runtime_spec`
//! file when one is configured, and otherwise from its built-in default spec
//! (`oci.GenerateSpec`, what `ctr oci spec` prints) **minus its default rlimits**: without a
//! base spec CRI also applies `WithoutDefaultSecuritySettings`, which drops `RLIMIT_NOFILE
//! 1024` so containers inherit containerd's limits (containerd/cri#515); with a base spec it
//! takes the file as it is. Copying `ctr oci spec` verbatim would therefore cap every
//! container at 1024 open files — measured: that was the one difference in the stored spec.
//!
//! So the base spec written here is the built-in default captured from containerd 2.1.9, with
//! `process.rlimits` removed, plus one `createRuntime` hook: with it, a container's stored spec
//! differs from one made without a base spec only by the hook (verified by comparing the two
//! on the test bed). Its `cgroupsPath` of `/default` is replaced per container by CRI, as with
//! the built-in default.

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

/// The spec CRI starts from when no base spec is configured: [`CONTAINERD_DEFAULT_SPEC`]
/// without `process.rlimits`.
pub fn cri_default_spec() -> Value {
    let mut spec: Value =
        serde_json::from_str(CONTAINERD_DEFAULT_SPEC).expect("the embedded default spec is JSON");
    if let Some(process) = spec.get_mut("process").and_then(Value::as_object_mut) {
        process.remove("rlimits");
    }
    spec
}

/// [`cri_default_spec`] with the guard hook appended to `hooks.createRuntime`.
pub fn base_spec(config: &HookConfig) -> Value {
    let mut spec = cri_default_spec();
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
        assert_eq!(spec, cri_default_spec(), "nothing but the hook differs");
    }

    #[test]
    fn base_spec_has_no_default_rlimits() {
        let spec = base_spec(&HookConfig::new("/bin/bulkhead-guard"));
        assert!(spec["process"].get("rlimits").is_none());
        let mut default: Value = serde_json::from_str(CONTAINERD_DEFAULT_SPEC).unwrap();
        default["process"]
            .as_object_mut()
            .unwrap()
            .remove("rlimits")
            .expect("ctr oci spec has RLIMIT_NOFILE 1024");
        assert_eq!(cri_default_spec(), default);
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
