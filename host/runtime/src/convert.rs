//! Conversions between the WIT bindings' types and `bulkhead-core`'s domain types.
//!
//! Input (a [`ContainerView`]) converts infallibly. Output (a plugin's decision) is where untrusted
//! data enters the host, so it converts fallibly: capability names are parsed and every mutation is
//! validated before the engine ever sees it.

use bulkhead_core::decision::{self as core_decision, Capability, Decision, Mutation, Verdict};
use bulkhead_core::view::{self, ContainerView, DecisionPoint, Labels};

use crate::bindings::types as wit;

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

pub(crate) fn decision_point_to_wit(point: DecisionPoint) -> wit::DecisionPoint {
    match point {
        DecisionPoint::CreateContainer => wit::DecisionPoint::CreateContainer,
        DecisionPoint::PostCreateContainer => wit::DecisionPoint::PostCreateContainer,
        DecisionPoint::StartContainer => wit::DecisionPoint::StartContainer,
        DecisionPoint::UpdateContainer => wit::DecisionPoint::UpdateContainer,
    }
}

pub(crate) fn decision_point_from_wit(point: wit::DecisionPoint) -> DecisionPoint {
    match point {
        wit::DecisionPoint::CreateContainer => DecisionPoint::CreateContainer,
        wit::DecisionPoint::PostCreateContainer => DecisionPoint::PostCreateContainer,
        wit::DecisionPoint::StartContainer => DecisionPoint::StartContainer,
        wit::DecisionPoint::UpdateContainer => DecisionPoint::UpdateContainer,
    }
}

fn mount_to_wit(m: &view::Mount) -> wit::Mount {
    wit::Mount {
        destination: m.destination.clone(),
        source: m.source.clone(),
        fs_type: m.fs_type.clone(),
        options: m.options.clone(),
    }
}

fn mount_from_wit(m: wit::Mount) -> view::Mount {
    view::Mount {
        destination: m.destination,
        source: m.source,
        fs_type: m.fs_type,
        options: m.options,
    }
}

/// Builds the WIT `container` record a plugin receives.
pub(crate) fn container_to_wit(v: &ContainerView) -> wit::Container {
    wit::Container {
        event: decision_point_to_wit(v.event),
        id: v.id.clone(),
        name: v.name.clone(),
        pod_sandbox_id: v.pod_sandbox_id.clone(),
        pod: wit::Pod {
            name: v.pod.name.clone(),
            namespace: v.pod.namespace.clone(),
            uid: v.pod.uid.clone(),
            labels: pairs(&v.pod.labels),
            annotations: pairs(&v.pod.annotations),
        },
        image: wit::Image {
            reference: v.image.reference.clone(),
            normalized: v.image.normalized.clone(),
            digest: v.image.digest.clone(),
            registry: v.image.registry.clone(),
            repository: v.image.repository.clone(),
            tag: v.image.tag.clone(),
            config: v.image.config.as_ref().map(|c| wit::ImageConfig {
                user: c.user.clone(),
                env: c.env.clone(),
                labels: pairs(&c.labels),
            }),
        },
        process: wit::Process {
            args: v.process.args.clone(),
            env: v.process.env.clone(),
            user: wit::User {
                uid: v.process.user.uid,
                gid: v.process.user.gid,
                additional_gids: v.process.user.additional_gids.clone(),
                username: v.process.user.username.clone(),
            },
            cwd: v.process.cwd.clone(),
        },
        capabilities: wit::Capabilities {
            bounding: v.capabilities.bounding.clone(),
            effective: v.capabilities.effective.clone(),
            permitted: v.capabilities.permitted.clone(),
            inheritable: v.capabilities.inheritable.clone(),
            ambient: v.capabilities.ambient.clone(),
        },
        seccomp: v.seccomp.as_ref().map(seccomp_to_wit),
        no_new_privileges: v.no_new_privileges,
        readonly_rootfs: v.readonly_rootfs,
        privileged: v.privileged,
        host_namespaces: wit::HostNamespaces {
            network: v.host_namespaces.network,
            pid: v.host_namespaces.pid,
            ipc: v.host_namespaces.ipc,
            uts: v.host_namespaces.uts,
            user: v.host_namespaces.user,
            cgroup: v.host_namespaces.cgroup,
        },
        mounts: v.mounts.iter().map(mount_to_wit).collect(),
        annotations: pairs(&v.annotations),
        labels: pairs(&v.labels),
    }
}

macro_rules! map_enum {
    ($to:ident, $from:ident, $core:ty, $wit:ty, [$($v:ident),*]) => {
        fn $to(x: $core) -> $wit {
            match x { $(<$core>::$v => <$wit>::$v,)* }
        }
        fn $from(x: $wit) -> $core {
            match x { $(<$wit>::$v => <$core>::$v,)* }
        }
    };
}

map_enum!(
    action_to_wit,
    action_from_wit,
    core_decision::SeccompAction,
    wit::SeccompAction,
    [
        KillProcess,
        KillThread,
        Trap,
        Errno,
        Trace,
        Allow,
        Log,
        Notify
    ]
);
map_enum!(
    op_to_wit,
    op_from_wit,
    core_decision::SeccompOperator,
    wit::SeccompOperator,
    [
        NotEqual,
        LessThan,
        LessEqual,
        EqualTo,
        GreaterEqual,
        GreaterThan,
        MaskedEqual
    ]
);

fn seccomp_to_wit(p: &core_decision::SeccompProfile) -> wit::SeccompProfile {
    wit::SeccompProfile {
        default_action: action_to_wit(p.default_action),
        default_errno: p.default_errno,
        architectures: p.architectures.clone(),
        syscalls: p
            .syscalls
            .iter()
            .map(|s| wit::SeccompSyscall {
                names: s.names.clone(),
                action: action_to_wit(s.action),
                errno: s.errno,
                args: s
                    .args
                    .iter()
                    .map(|a| wit::SeccompArg {
                        index: a.index,
                        value: a.value,
                        value_two: a.value_two,
                        op: op_to_wit(a.op),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn seccomp_from_wit(p: wit::SeccompProfile) -> core_decision::SeccompProfile {
    core_decision::SeccompProfile {
        default_action: action_from_wit(p.default_action),
        default_errno: p.default_errno,
        architectures: p.architectures,
        syscalls: p
            .syscalls
            .into_iter()
            .map(|s| core_decision::SeccompSyscall {
                names: s.names,
                action: action_from_wit(s.action),
                errno: s.errno,
                args: s
                    .args
                    .into_iter()
                    .map(|a| core_decision::SeccompArg {
                        index: a.index,
                        value: a.value,
                        value_two: a.value_two,
                        op: op_from_wit(a.op),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn capabilities(names: Vec<String>) -> Result<Vec<Capability>, bulkhead_core::Error> {
    names.iter().map(|n| n.parse()).collect()
}

/// Converts and validates a plugin's decision. Any error means the plugin produced output the
/// host must not apply.
pub(crate) fn decision_from_wit(d: wit::Decision) -> Result<Decision, bulkhead_core::Error> {
    let verdict = match d.verdict {
        wit::Verdict::Allow => Verdict::Allow,
        wit::Verdict::Deny(reason) => Verdict::Deny(reason),
    };
    let mutations = d
        .mutations
        .into_iter()
        .map(|m| {
            Ok(match m {
                wit::Mutation::DropCapabilities(c) => Mutation::DropCapabilities(capabilities(c)?),
                wit::Mutation::KeepOnlyCapabilities(c) => {
                    Mutation::KeepOnlyCapabilities(capabilities(c)?)
                }
                wit::Mutation::SetSeccomp(p) => Mutation::SetSeccomp(seccomp_from_wit(p)),
                wit::Mutation::SetNoNewPrivileges => Mutation::SetNoNewPrivileges,
                wit::Mutation::SetReadonlyRootfs => Mutation::SetReadonlyRootfs,
                wit::Mutation::AddEnv((name, value)) => Mutation::AddEnv { name, value },
                wit::Mutation::AddAnnotation((key, value)) => {
                    Mutation::AddAnnotation { key, value }
                }
                wit::Mutation::AddRlimit(r) => Mutation::AddRlimit(core_decision::Rlimit {
                    kind: r.kind,
                    hard: r.hard,
                    soft: r.soft,
                }),
                wit::Mutation::AddMount(m) => Mutation::AddMount(mount_from_wit(m)),
                wit::Mutation::MountSecret(s) => {
                    Mutation::MountSecret(core_decision::SecretMount {
                        secret: s.secret,
                        target: s.target,
                        mode: s.mode,
                    })
                }
            })
        })
        .collect::<Result<Vec<_>, bulkhead_core::Error>>()?;
    let decision = Decision { verdict, mutations };
    decision.validate()?;
    Ok(decision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_converts_with_sorted_labels() {
        let mut v = ContainerView::default();
        v.pod.annotations.insert("b".into(), "2".into());
        v.pod.annotations.insert("a".into(), "1".into());
        v.event = DecisionPoint::StartContainer;
        let w = container_to_wit(&v);
        assert_eq!(
            w.pod.annotations,
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(matches!(w.event, wit::DecisionPoint::StartContainer));
    }

    #[test]
    fn unknown_capability_in_output_is_rejected() {
        let d = wit::Decision {
            verdict: wit::Verdict::Allow,
            mutations: vec![wit::Mutation::DropCapabilities(vec!["CAP_FLY".into()])],
        };
        let err = decision_from_wit(d).unwrap_err();
        assert!(err.to_string().contains("CAP_FLY"));
    }

    #[test]
    fn malformed_seccomp_in_output_is_rejected() {
        let d = wit::Decision {
            verdict: wit::Verdict::Allow,
            mutations: vec![wit::Mutation::SetSeccomp(wit::SeccompProfile {
                default_action: wit::SeccompAction::Allow,
                default_errno: None,
                architectures: vec![],
                syscalls: vec![wit::SeccompSyscall {
                    names: vec!["Not A Syscall".into()],
                    action: wit::SeccompAction::Errno,
                    errno: Some(1),
                    args: vec![],
                }],
            })],
        };
        assert!(
            decision_from_wit(d)
                .unwrap_err()
                .to_string()
                .contains("not a syscall name")
        );
    }

    #[test]
    fn seccomp_round_trips() {
        let json = r#"{"default-action":"SCMP_ACT_ERRNO","default-errno":1,
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":1,"value":2,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#;
        let p: core_decision::SeccompProfile = serde_json::from_str(json).unwrap();
        assert_eq!(seccomp_from_wit(seccomp_to_wit(&p)), p);
    }
}
