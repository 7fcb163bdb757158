//! Conversions between the WIT bindings' types and `bulkhead-core`'s domain types, for every ABI
//! version the host runs.
//!
//! Input (a [`ContainerView`]) converts infallibly. Output (a plugin's decision) is where untrusted
//! data enters the host, so it converts fallibly: capability names are parsed, profile names are
//! resolved against the profiles the host holds, and every mutation is validated before the
//! engine ever sees it.
//!
//! 0.3.0 and 0.2.0 have distinct generated types of the same shape (0.3.0 adds the
//! `use-seccomp-profile` mutation), so `abi_conversions!` writes the same functions into
//! [`current`] and into [`v0_2`] (which 0.1.0 shares): one text, no drift between versions.

use std::sync::Arc;

use bulkhead_core::decision::{self as core_decision, Capability, Decision, Mutation, Verdict};
use bulkhead_core::seccomp_profiles::HeldProfiles;
use bulkhead_core::view::{self, ContainerView, DecisionPoint, Labels};

use crate::info::PluginInfo;

/// Longest profile name quoted back in an error: the name comes from the plugin.
const MAX_QUOTED_NAME: usize = 128;

fn pairs(labels: &Labels) -> Vec<(String, String)> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn capabilities(names: Vec<String>) -> Result<Vec<Capability>, bulkhead_core::Error> {
    names.iter().map(|n| n.parse()).collect()
}

/// `use-seccomp-profile(name)`: the profile the host holds under `name`, shared, not copied.
fn held_profile(profiles: &HeldProfiles, name: String) -> Result<Mutation, bulkhead_core::Error> {
    match profiles.get(&name) {
        Some(held) => Ok(Mutation::SetSeccomp(Arc::clone(&held.profile))),
        None => Err(bulkhead_core::Error::InvalidMutation {
            mutation: "use-seccomp-profile",
            reason: format!(
                "the host holds no seccomp profile named {:?} (it holds: {})",
                bulkhead_core::text::bounded(&name, MAX_QUOTED_NAME),
                profiles.names().collect::<Vec<_>>().join(", ")
            ),
        }),
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

/// The conversions for one ABI version's generated types, `$wit`; `$by_name` is the mutation
/// case naming a held seccomp profile, for versions that have it.
macro_rules! abi_conversions {
    ($($wit:ident)::+ $(, $by_name:ident)?) => {
        use super::*;
        use $($wit)::+ as wit;

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

        pub(crate) fn seccomp_to_wit(p: &core_decision::SeccompProfile) -> wit::SeccompProfile {
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

        pub(crate) fn seccomp_from_wit(p: wit::SeccompProfile) -> core_decision::SeccompProfile {
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


        /// Converts and validates a plugin's decision. Any error means the plugin produced output the
        /// host must not apply.
        pub(crate) fn decision_from_wit(
                    d: wit::Decision,
                    #[allow(unused_variables, reason = "only ABIs with profiles by reference read it")]
                    profiles: &HeldProfiles,
                ) -> Result<Decision, bulkhead_core::Error> {
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
                        wit::Mutation::SetSeccomp(p) => Mutation::SetSeccomp(Arc::new(seccomp_from_wit(p))),
                        $(wit::Mutation::$by_name(name) => held_profile(profiles, name)?,)?
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

        /// Metadata as the host keeps it.
        pub(crate) fn plugin_info_from_wit(info: wit::PluginInfo) -> PluginInfo {
            PluginInfo {
                name: info.name,
                version: info.version,
                decision_points: info
                    .decision_points
                    .into_iter()
                    .map(decision_point_from_wit)
                    .collect(),
            }
        }

        /// A plugin's own error answer: its kind, as WIT names it, and its message.
        pub(crate) fn reported_from_wit(reported: wit::PluginError) -> (&'static str, String) {
            match reported {
                wit::PluginError::InvalidConfig(m) => ("invalid-config", m),
                wit::PluginError::Unsupported(m) => ("unsupported", m),
                wit::PluginError::Internal(m) => ("internal", m),
            }
        }
    };
}

/// `bulkhead:plugin@0.3.0`.
pub(crate) mod current {
    abi_conversions!(crate::bindings::types, UseSeccompProfile);
}

/// `bulkhead:plugin@0.2.0` and 0.1.0.
pub(crate) mod v0_2 {
    abi_conversions!(crate::bindings::v0_2::bulkhead::plugin::types);
}

#[cfg(test)]
mod tests {
    use super::current::*;
    use super::*;
    use crate::bindings::types as wit;

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
        let err = decision_from_wit(d, &HeldProfiles::default()).unwrap_err();
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
            decision_from_wit(d, &HeldProfiles::default())
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

    #[test]
    fn a_held_profile_is_shared_not_copied() {
        let profiles = HeldProfiles::default();
        let d = wit::Decision {
            verdict: wit::Verdict::Allow,
            mutations: vec![wit::Mutation::UseSeccompProfile("default".into())],
        };
        let decision = decision_from_wit(d, &profiles).unwrap();
        let Mutation::SetSeccomp(profile) = &decision.mutations[0] else {
            panic!("expected set-seccomp, got {decision:?}");
        };
        let held = &profiles.get("default").unwrap().profile;
        assert!(Arc::ptr_eq(profile, held));
    }

    #[test]
    fn a_profile_the_host_does_not_hold_is_refused_naming_what_it_holds() {
        let d = wit::Decision {
            verdict: wit::Verdict::Allow,
            mutations: vec![wit::Mutation::UseSeccompProfile("unconfined\n".into())],
        };
        let message = decision_from_wit(d, &HeldProfiles::default())
            .unwrap_err()
            .to_string();
        assert!(message.contains("use-seccomp-profile"), "{message}");
        assert!(message.contains("no seccomp profile named"), "{message}");
        assert!(message.contains("default, strict"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn older_abi_types_convert_the_same_way() {
        let mut v = ContainerView::default();
        v.pod.labels.insert("app".into(), "web".into());
        let old = super::v0_2::container_to_wit(&v);
        assert_eq!(old.pod.labels, container_to_wit(&v).pod.labels);
        use crate::bindings::v0_2::bulkhead::plugin::types as old_wit;
        let d = old_wit::Decision {
            verdict: old_wit::Verdict::Deny("no".into()),
            mutations: vec![old_wit::Mutation::SetNoNewPrivileges],
        };
        let decision = super::v0_2::decision_from_wit(d, &HeldProfiles::default()).unwrap();
        assert_eq!(decision.verdict, Verdict::Deny("no".into()));
        assert_eq!(decision.mutations, vec![Mutation::SetNoNewPrivileges]);
    }
}
