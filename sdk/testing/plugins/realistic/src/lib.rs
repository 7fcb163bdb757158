//! A plugin shaped like a real baseline policy: it reads most of the container view and answers
//! with a handful of mutations. The runtime benchmarks use it to price a realistic call.
//!
//! Config: a comma-separated list of allowed registries (empty: any registry).

use bulkhead_sdk::{
    Capability, Container, Decision, DecisionPoint, Plugin, PluginError, PluginInfo, SeccompBuilder,
};

/// A small baseline policy.
pub struct Baseline;

/// Pod annotation that exempts a pod from the privileged check.
pub const ALLOW_PRIVILEGED: &str = "bulkhead.dev/allow-privileged";

/// The policy itself, separate from the export glue so it tests natively.
pub fn judge(c: &Container, allowed_registries: &str) -> Decision {
    if c.privileged && c.pod_annotation(ALLOW_PRIVILEGED) != Some("true") {
        return Decision::deny(format!("container {} is privileged", c.name));
    }
    let ns = &c.host_namespaces;
    if ns.network || ns.pid || ns.ipc {
        return Decision::deny("host namespaces are not allowed");
    }
    if !allowed_registries.is_empty()
        && !allowed_registries
            .split(',')
            .any(|r| r.trim() == c.image.registry)
    {
        return Decision::deny(format!("registry {} is not allowed", c.image.registry));
    }
    if c.mounts.iter().any(|m| m.source.ends_with(".sock")) {
        return Decision::deny("mounting a runtime socket is not allowed");
    }
    let mut d = Decision::allow();
    let risky = [
        Capability::NetRaw,
        Capability::SysAdmin,
        Capability::SysPtrace,
        Capability::SysModule,
    ];
    let present: Vec<Capability> = risky
        .into_iter()
        .filter(|cap| c.has_effective_capability(*cap))
        .collect();
    if !present.is_empty() {
        d = d.drop_capabilities(present);
    }
    if !c.no_new_privileges {
        d = d.no_new_privileges();
    }
    if c.seccomp.is_none() {
        d = d.seccomp(
            SeccompBuilder::new(bulkhead_sdk::SeccompAction::Allow)
                .errno(
                    [
                        "kexec_load",
                        "kexec_file_load",
                        "open_by_handle_at",
                        "init_module",
                        "finit_module",
                    ],
                    1,
                )
                .errno(
                    [
                        "bpf",
                        "perf_event_open",
                        "userfaultfd",
                        "keyctl",
                        "add_key",
                        "request_key",
                    ],
                    1,
                )
                .build(),
        );
    }
    if c.runs_as_root() && c.label("bulkhead.dev/readonly") == Some("true") {
        d = d.readonly_rootfs();
    }
    d.annotation("bulkhead.dev/checked-by", "baseline")
}

impl Plugin for Baseline {
    fn metadata() -> PluginInfo {
        PluginInfo::new("baseline", "0.1.0", [DecisionPoint::PostCreateContainer])
    }

    fn check_container(container: Container) -> Result<Decision, PluginError> {
        Ok(judge(&container, &bulkhead_sdk::config()))
    }
}

bulkhead_sdk::export_plugin!(Baseline);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn privileged_needs_the_pod_annotation() {
        let mut c = Container {
            privileged: true,
            ..Container::default()
        };
        assert!(!judge(&c, "").is_allow());
        c.pod
            .annotations
            .push((ALLOW_PRIVILEGED.into(), "true".into()));
        assert!(judge(&c, "").is_allow());
    }

    #[test]
    fn unconfined_container_gets_hardened() {
        let mut c = Container::default();
        c.capabilities.effective = vec!["CAP_NET_RAW".into(), "CAP_CHOWN".into()];
        let d = judge(&c, "");
        // drop NET_RAW, no_new_privileges, seccomp, annotation
        assert_eq!(d.mutations.len(), 4);
    }
}
