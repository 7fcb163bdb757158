//! Turns NRI wire messages into `bulkhead-core` domain types.
//!
//! Only this module knows the wire layout; everything past it sees [`Pod`] and [`Container`].
//! Unknown enum values decode to their "unknown" variant rather than failing: newer runtimes may
//! send states this version does not know, and an event must still be answered.

use bulkhead_core::decision::SeccompProfile;
use bulkhead_core::event::{
    Container, ContainerState, Mount, Namespace, Pod, RequestedSeccomp, Rlimit,
};
use bulkhead_core::nri_validation::OwnedField;
use bulkhead_proto::nri;

use super::handler::{Adjustment, PendingAdjustment};

/// The pod of a wire message; a missing pod becomes an empty one.
pub fn pod(pod: Option<nri::PodSandbox>) -> Pod {
    let Some(pod) = pod else {
        return Pod::default();
    };
    Pod {
        id: pod.id,
        name: pod.name,
        uid: pod.uid,
        namespace: pod.namespace,
        labels: pod.labels,
        annotations: pod.annotations,
        runtime_handler: pod.runtime_handler,
        namespaces: pod
            .linux
            .map(|linux| linux.namespaces.into_iter().map(namespace).collect())
            .unwrap_or_default(),
    }
}

/// A validation request: the container's owners flattened into one list, simple fields first,
/// each in field order, entries sorted (deterministic reasons for the same adjustment).
pub fn pending_adjustment(request: nri::ValidateContainerAdjustmentRequest) -> PendingAdjustment {
    let container = request.container.map(container);
    let mut owners = request.owners.map(|o| o.owners).unwrap_or_default();
    let fields = container
        .as_ref()
        .and_then(|c| owners.remove(&c.id))
        .unwrap_or_default();
    let mut owned: Vec<OwnedField> = fields
        .simple
        .into_iter()
        .map(|(field, plugin)| OwnedField {
            field,
            entry: None,
            plugin,
        })
        .collect();
    owned.sort_by_key(|o| o.field);
    let mut compound: Vec<OwnedField> = fields
        .compound
        .into_iter()
        .flat_map(|(field, entries)| {
            entries
                .owners
                .into_iter()
                .map(move |(entry, plugin)| OwnedField {
                    field,
                    entry: Some(entry),
                    plugin,
                })
        })
        .collect();
    compound.sort_by(|a, b| (a.field, &a.entry).cmp(&(b.field, &b.entry)));
    owned.extend(compound);
    PendingAdjustment {
        pod: pod(request.pod),
        container,
        owned,
    }
}

/// The container of a wire message.
pub fn container(container: nri::Container) -> Container {
    let state = match nri::ContainerState::try_from(container.state) {
        Ok(nri::ContainerState::ContainerCreated) => ContainerState::Created,
        Ok(nri::ContainerState::ContainerPaused) => ContainerState::Paused,
        Ok(nri::ContainerState::ContainerRunning) => ContainerState::Running,
        Ok(nri::ContainerState::ContainerStopped) => ContainerState::Stopped,
        Ok(nri::ContainerState::ContainerUnknown) | Err(_) => ContainerState::Unknown,
    };
    Container {
        id: container.id,
        pod_id: container.pod_sandbox_id,
        name: container.name,
        state,
        labels: container.labels,
        annotations: container.annotations,
        args: container.args,
        env: container.env,
        mounts: container
            .mounts
            .into_iter()
            .map(|m| Mount {
                destination: m.destination,
                kind: m.r#type,
                source: m.source,
                options: m.options,
            })
            .collect(),
        rlimits: container
            .rlimits
            .into_iter()
            .map(|r| Rlimit {
                kind: r.r#type,
                soft: r.soft,
                hard: r.hard,
            })
            .collect(),
        requested_seccomp: container
            .linux
            .as_ref()
            .and_then(|linux| linux.seccomp_profile.as_ref())
            .and_then(requested_seccomp),
        namespaces: container
            .linux
            .map(|linux| linux.namespaces.into_iter().map(namespace).collect())
            .unwrap_or_default(),
        pid: (container.pid != 0).then_some(container.pid),
    }
}

/// NRI's `SecurityProfile` (v0.10+): 0 runtime default, 1 unconfined, 2 localhost. A type this
/// version does not know is treated as not reported.
fn requested_seccomp(profile: &nri::SecurityProfile) -> Option<RequestedSeccomp> {
    match profile.profile_type {
        0 => Some(RequestedSeccomp::RuntimeDefault),
        1 => Some(RequestedSeccomp::Unconfined),
        2 => Some(RequestedSeccomp::Localhost(profile.localhost_ref.clone())),
        _ => None,
    }
}

/// NRI's `LinuxSeccomp`: OCI names for actions and operators, as the runtime writes them into
/// the spec.
fn seccomp_policy(profile: &SeccompProfile) -> nri::LinuxSeccomp {
    nri::LinuxSeccomp {
        default_action: profile.default_action.oci_name().into(),
        default_errno: profile
            .default_errno
            .map(|value| nri::OptionalUInt32 { value }),
        architectures: profile.architectures.clone(),
        syscalls: profile
            .syscalls
            .iter()
            .map(|rule| nri::LinuxSyscall {
                names: rule.names.clone(),
                action: rule.action.oci_name().into(),
                errno_ret: rule.errno.map(|value| nri::OptionalUInt32 { value }),
                args: rule
                    .args
                    .iter()
                    .map(|arg| nri::LinuxSeccompArg {
                        index: arg.index,
                        value: arg.value,
                        value_two: arg.value_two,
                        op: arg.op.oci_name().into(),
                    })
                    .collect(),
            })
            .collect(),
        ..nri::LinuxSeccomp::default()
    }
}

fn namespace(namespace: nri::LinuxNamespace) -> Namespace {
    Namespace {
        kind: namespace.r#type,
        path: namespace.path,
    }
}

/// The wire form of an [`Adjustment`].
pub fn adjustment(adjustment: &Adjustment) -> nri::ContainerAdjustment {
    nri::ContainerAdjustment {
        annotations: adjustment.annotations.iter().cloned().collect(),
        mounts: adjustment
            .mounts
            .iter()
            .map(|m| nri::Mount {
                destination: m.destination.clone(),
                r#type: m.kind.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect(),
        env: adjustment
            .env
            .iter()
            .map(|(key, value)| nri::KeyValue {
                key: key.clone(),
                value: value.clone(),
            })
            .collect(),
        rlimits: adjustment
            .rlimits
            .iter()
            .map(|r| nri::PosixRlimit {
                r#type: r.kind.clone(),
                hard: r.hard,
                soft: r.soft,
            })
            .collect(),
        linux: adjustment
            .seccomp
            .as_deref()
            .map(|profile| nri::LinuxContainerAdjustment {
                seccomp_policy: Some(seccomp_policy(profile)),
                ..nri::LinuxContainerAdjustment::default()
            }),
        ..nri::ContainerAdjustment::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_fields_carry_over() {
        let wire = nri::Container {
            id: "c1".into(),
            pod_sandbox_id: "p1".into(),
            name: "app".into(),
            state: nri::ContainerState::ContainerRunning as i32,
            args: vec!["sleep".into(), "1".into()],
            env: vec!["A=b".into()],
            mounts: vec![nri::Mount {
                destination: "/data".into(),
                r#type: "bind".into(),
                source: "/srv".into(),
                options: vec!["ro".into()],
            }],
            linux: Some(nri::LinuxContainer {
                namespaces: vec![nri::LinuxNamespace {
                    r#type: "pid".into(),
                    path: String::new(),
                }],
                ..Default::default()
            }),
            pid: 42,
            rlimits: vec![nri::PosixRlimit {
                r#type: "RLIMIT_NOFILE".into(),
                hard: 2,
                soft: 1,
            }],
            ..Default::default()
        };
        let container = container(wire);
        assert_eq!(container.id, "c1");
        assert_eq!(container.pod_id, "p1");
        assert_eq!(container.state, ContainerState::Running);
        assert_eq!(container.mounts[0].kind, "bind");
        assert_eq!(container.namespaces[0].kind, "pid");
        assert_eq!(container.rlimits[0].soft, 1);
        assert_eq!(container.pid, Some(42));
    }

    #[test]
    fn the_requested_seccomp_profile_is_read_from_v0_10_containers() {
        let with = |profile_type: i32| {
            container(nri::Container {
                linux: Some(nri::LinuxContainer {
                    seccomp_profile: Some(nri::SecurityProfile {
                        profile_type,
                        localhost_ref: "profiles/web.json".into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .requested_seccomp
        };
        assert_eq!(with(0), Some(RequestedSeccomp::RuntimeDefault));
        assert_eq!(with(1), Some(RequestedSeccomp::Unconfined));
        assert_eq!(
            with(2),
            Some(RequestedSeccomp::Localhost("profiles/web.json".into()))
        );
        assert_eq!(with(7), None, "an unknown type is not a request");
        assert_eq!(container(nri::Container::default()).requested_seccomp, None);
    }

    #[test]
    fn a_seccomp_adjustment_is_written_as_the_oci_profile() {
        use bulkhead_core::decision::{SeccompAction, SeccompArg, SeccompOperator, SeccompSyscall};
        let profile = SeccompProfile {
            default_action: SeccompAction::Errno,
            default_errno: Some(1),
            architectures: vec!["SCMP_ARCH_X86_64".into()],
            syscalls: vec![SeccompSyscall {
                names: vec!["personality".into()],
                action: SeccompAction::Allow,
                errno: None,
                args: vec![SeccompArg {
                    index: 0,
                    value: 8,
                    value_two: 0,
                    op: SeccompOperator::EqualTo,
                }],
            }],
        };
        let wire = adjustment(&Adjustment {
            seccomp: Some(std::sync::Arc::new(profile)),
            ..Adjustment::default()
        });
        let policy = wire.linux.unwrap().seccomp_policy.unwrap();
        assert_eq!(policy.default_action, "SCMP_ACT_ERRNO");
        assert_eq!(policy.default_errno, Some(nri::OptionalUInt32 { value: 1 }));
        assert_eq!(policy.architectures, ["SCMP_ARCH_X86_64"]);
        assert_eq!(policy.syscalls[0].action, "SCMP_ACT_ALLOW");
        assert_eq!(policy.syscalls[0].args[0].op, "SCMP_CMP_EQ");
        assert_eq!(policy.syscalls[0].args[0].value, 8);
        assert!(
            adjustment(&Adjustment::default()).linux.is_none(),
            "no Linux adjustment without a profile: a v0.8 runtime never sees the field"
        );
    }

    #[test]
    fn unknown_state_and_zero_pid_decode_leniently() {
        let container = container(nri::Container {
            state: 99,
            ..Default::default()
        });
        assert_eq!(container.state, ContainerState::Unknown);
        assert_eq!(container.pid, None);
    }

    #[test]
    fn missing_pod_is_empty() {
        assert_eq!(pod(None), Pod::default());
    }

    #[test]
    fn pod_namespaces_come_from_linux() {
        let pod = pod(Some(nri::PodSandbox {
            namespace: "default".into(),
            linux: Some(nri::LinuxPodSandbox {
                namespaces: vec![nri::LinuxNamespace {
                    r#type: "ipc".into(),
                    path: "/proc/1/ns/ipc".into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }));
        assert_eq!(pod.namespace, "default");
        assert_eq!(pod.namespaces[0].path, "/proc/1/ns/ipc");
    }
}
