//! One test per rule of the grant checker, each with the hostile request it stops.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::*;
use crate::config::{MountGrant, TIGHTENING};
use crate::decision::{Capability, SeccompAction, SeccompProfile, SeccompSyscall};

fn tightening() -> BTreeSet<MutationKind> {
    TIGHTENING.into_iter().collect()
}

fn mount(source: &str, destination: &str, options: &[&str]) -> Mutation {
    Mutation::AddMount(Mount {
        destination: destination.into(),
        source: source.into(),
        fs_type: "bind".into(),
        options: options.iter().map(|o| o.to_string()).collect(),
    })
}

fn secret(name: &str, target: &str, mode: u32) -> Mutation {
    Mutation::MountSecret(SecretMount {
        secret: name.into(),
        target: target.into(),
        mode,
    })
}

fn rlimit(kind: &str, soft: u64, hard: u64) -> Rlimit {
    Rlimit {
        kind: kind.into(),
        soft,
        hard,
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        default_action: SeccompAction::Errno,
        default_errno: None,
        architectures: vec!["SCMP_ARCH_X86_64".into()],
        syscalls: vec![SeccompSyscall {
            names: vec!["read".into(), "write".into(), "mkdir".into()],
            action: SeccompAction::Allow,
            errno: None,
            args: vec![],
        }],
    }
}

/// A fixture: grants and a container with RuntimeDefault, a few mounts and NOFILE 1024.
struct Case {
    kinds: BTreeSet<MutationKind>,
    grants: Grants,
    secrets: Vec<SecretGrant>,
    seccomp: Option<SeccompProfile>,
    mounts: Vec<Mount>,
    rlimits: BTreeMap<String, Rlimit>,
}

impl Case {
    fn new() -> Case {
        Case {
            kinds: tightening(),
            grants: Grants::default(),
            secrets: Vec::new(),
            seccomp: Some(runtime_default()),
            mounts: vec![
                Mount {
                    destination: "/etc/hosts".into(),
                    source: "/var/lib/x/hosts".into(),
                    fs_type: "bind".into(),
                    options: vec![],
                },
                Mount {
                    destination: "/data".into(),
                    source: "/srv/volume".into(),
                    fs_type: "bind".into(),
                    options: vec![],
                },
            ],
            rlimits: [(
                "RLIMIT_NOFILE".to_string(),
                rlimit("RLIMIT_NOFILE", 1024, 1024),
            )]
            .into(),
        }
    }

    fn judge_at(&self, with_spec: bool, mutations: Vec<Mutation>) -> Result<Decision, Violation> {
        let allowance = Allowance {
            plugin: "third-party",
            kinds: &self.kinds,
            grants: &self.grants,
            secrets: &self.secrets,
        };
        let spec = CurrentSpec {
            seccomp: self.seccomp.as_ref(),
            mounts: &self.mounts,
            rlimits: &self.rlimits,
        };
        let subject = Subject {
            namespace: "team-a",
            spec: with_spec.then_some(spec),
        };
        judge(
            &allowance,
            &subject,
            Decision {
                verdict: crate::decision::Verdict::Allow,
                mutations,
            },
        )
    }

    fn judge(&self, mutations: Vec<Mutation>) -> Result<Decision, Violation> {
        self.judge_at(true, mutations)
    }
}

fn refused(result: Result<Decision, Violation>) -> String {
    result
        .expect_err("the mutation must be refused")
        .to_string()
}

#[test]
fn tightening_kinds_pass_by_default() {
    let case = Case::new();
    let decision = case
        .judge(vec![
            Mutation::DropCapabilities(vec![Capability::NetRaw]),
            Mutation::KeepOnlyCapabilities(vec![Capability::Chown]),
            Mutation::SetNoNewPrivileges,
            Mutation::SetReadonlyRootfs,
        ])
        .unwrap();
    assert_eq!(decision.mutations.len(), 4);
}

#[test]
fn a_tightening_kind_outside_an_explicit_list_is_refused() {
    let mut case = Case::new();
    case.kinds = [MutationKind::DropCapabilities].into();
    let message = refused(case.judge(vec![Mutation::SetReadonlyRootfs]));
    assert_eq!(
        message,
        "set-readonly-rootfs refused: the plugin has no grant for set-readonly-rootfs"
    );
}

#[test]
fn the_host_root_cannot_be_mounted_without_a_grant() {
    let case = Case::new();
    let message = refused(case.judge(vec![mount("/", "/host", &["rbind", "rw"])]));
    assert!(
        message.contains("outside the plugin's mount grants"),
        "{message}"
    );
    assert!(message.starts_with("add-mount / at /host"), "{message}");
}

#[test]
fn granted_bind_mounts_are_forced_read_only_nosuid_nodev() {
    let mut case = Case::new();
    case.grants.mounts = vec![MountGrant {
        source: "/srv/shared".into(),
        writable: false,
    }];
    let decision = case
        .judge(vec![mount(
            "/srv/shared/team",
            "/shared",
            &["rbind", "rw", "suid"],
        )])
        .unwrap();
    let Mutation::AddMount(applied) = &decision.mutations[0] else {
        panic!("expected a mount");
    };
    assert_eq!(applied.options, ["rbind", "ro", "nosuid", "nodev"]);
    // A sibling directory sharing the prefix as a string is not under the grant.
    assert!(
        case.judge(vec![mount("/srv/shared-other", "/x", &[])])
            .is_err()
    );
    // Nor is a path climbing out of it.
    assert!(
        case.judge(vec![mount("/srv/shared/../../etc", "/x", &[])])
            .is_err()
    );
}

#[test]
fn a_writable_grant_keeps_the_plugins_options() {
    let mut case = Case::new();
    case.grants.mounts = vec![MountGrant {
        source: "/srv/shared".into(),
        writable: true,
    }];
    let decision = case
        .judge(vec![mount("/srv/shared", "/shared", &["rbind", "rw"])])
        .unwrap();
    let Mutation::AddMount(applied) = &decision.mutations[0] else {
        panic!("expected a mount");
    };
    assert_eq!(applied.options, ["rbind", "rw"]);
}

#[test]
fn mounts_never_go_over_proc_sys_or_dev() {
    let mut case = Case::new();
    case.grants.mounts = vec![MountGrant {
        source: "/srv".into(),
        writable: true,
    }];
    for destination in [
        "/sys",
        "/sys/fs/cgroup",
        "/proc",
        "/proc/sys",
        "/dev",
        "/dev/shm",
        "/",
    ] {
        let message = refused(case.judge(vec![mount("/srv", destination, &[])]));
        assert!(message.contains("destination"), "{destination}: {message}");
    }
    // Not even a sysfs: only bind mounts are grantable.
    let sysfs = Mutation::AddMount(Mount {
        destination: "/mnt/sys".into(),
        source: "sysfs".into(),
        fs_type: "sysfs".into(),
        options: vec!["rw".into()],
    });
    assert!(refused(case.judge(vec![sysfs])).contains("only bind mounts"));
}

#[test]
fn mounts_never_replace_or_hide_an_existing_one() {
    let mut case = Case::new();
    case.grants.mounts = vec![MountGrant {
        source: "/srv".into(),
        writable: false,
    }];
    let message = refused(case.judge(vec![mount("/srv", "/data", &[])]));
    assert!(
        message.contains("replace or hide the container's mount at /data"),
        "{message}"
    );
    let message = refused(case.judge(vec![mount("/srv", "/etc", &[])]));
    assert!(message.contains("/etc/hosts"), "{message}");
    assert!(case.judge(vec![mount("/srv", "/extra", &[])]).is_ok());
    // Before the spec is known only the spec-free rules apply; PostCreate judges again.
    assert!(
        case.judge_at(false, vec![mount("/srv", "/data", &[])])
            .is_ok()
    );
}

#[test]
fn seccomp_must_be_at_least_as_strict_as_the_current_profile() {
    let case = Case::new();
    let allow_all = SeccompProfile {
        default_action: SeccompAction::Allow,
        default_errno: None,
        architectures: vec![],
        syscalls: vec![],
    };
    let message = refused(case.judge(vec![Mutation::SetSeccomp(Arc::new(allow_all.clone()))]));
    assert!(message.contains("current profile blocks"), "{message}");
    let mut stricter = runtime_default();
    stricter.syscalls[0].names.retain(|n| n != "mkdir");
    assert!(
        case.judge(vec![Mutation::SetSeccomp(Arc::new(stricter))])
            .is_ok()
    );
    // An unconfined container may get any profile.
    let mut unconfined = Case::new();
    unconfined.seccomp = None;
    assert!(
        unconfined
            .judge(vec![Mutation::SetSeccomp(Arc::new(allow_all))])
            .is_ok()
    );
}

#[test]
fn rlimits_only_go_down() {
    let case = Case::new();
    assert!(
        case.judge(vec![Mutation::AddRlimit(rlimit(
            "RLIMIT_NOFILE",
            512,
            1024
        ))])
        .is_ok()
    );
    let message = refused(case.judge(vec![Mutation::AddRlimit(rlimit(
        "RLIMIT_NOFILE",
        1024,
        1_048_576,
    ))]));
    assert!(message.contains("limits only go down"), "{message}");
    // A limit whose current value is unknown cannot be shown to go down.
    let message = refused(case.judge(vec![Mutation::AddRlimit(rlimit("RLIMIT_MEMLOCK", 1, 1))]));
    assert!(message.contains("unknown"), "{message}");
}

#[test]
fn env_needs_a_grant_and_never_reaches_ld_or_path() {
    let mut case = Case::new();
    let add = |name: &str| Mutation::AddEnv {
        name: name.into(),
        value: "x".into(),
    };
    assert!(refused(case.judge(vec![add("APP_MODE")])).contains("no env grant for APP_MODE"));
    case.grants.env = vec!["*".into()];
    assert!(case.judge(vec![add("APP_MODE")]).is_ok());
    assert!(refused(case.judge(vec![add("LD_PRELOAD")])).contains("never"));
    assert!(refused(case.judge(vec![add("PATH")])).contains("never"));
}

#[test]
fn annotations_need_a_grant_and_never_a_reserved_prefix() {
    let mut case = Case::new();
    let add = |key: &str| Mutation::AddAnnotation {
        key: key.into(),
        value: "x".into(),
    };
    assert!(case.judge(vec![add("example.com/a")]).is_err());
    case.grants.annotations = vec!["example.com/".into(), "io.".into()];
    assert!(case.judge(vec![add("example.com/a")]).is_ok());
    for reserved in [
        "io.bulkhead.guard",
        "io.kubernetes.cri.container-type",
        "run.oci.hooks",
        "io.katacontainers.config",
        "org.criu.config",
    ] {
        let message = refused(case.judge(vec![add(reserved)]));
        assert!(
            message.contains("runtime interprets"),
            "{reserved}: {message}"
        );
    }
}

#[test]
fn secrets_need_a_host_grant_for_plugin_namespace_and_name() {
    let mut case = Case::new();
    let message = refused(case.judge(vec![secret("db", "/run/secrets/db", 0o400)]));
    assert!(message.contains("no [[secrets.grants]] entry"), "{message}");
    case.secrets = vec![SecretGrant {
        plugins: vec!["third-party".into()],
        namespaces: vec!["team-a".into()],
        secrets: vec!["db".into()],
    }];
    assert!(
        case.judge(vec![secret("db", "/run/secrets/db", 0o400)])
            .is_ok()
    );
    assert!(
        case.judge(vec![secret("db", "/run/secrets/db", 0o440)])
            .is_ok()
    );
    assert!(
        case.judge(vec![secret("api", "/run/secrets/api", 0o400)])
            .is_err()
    );
    case.secrets[0].plugins = vec!["secrets".into()];
    assert!(
        case.judge(vec![secret("db", "/run/secrets/db", 0o400)])
            .is_err()
    );
}

#[test]
fn secret_modes_are_0400_or_0440_and_targets_follow_mount_rules() {
    let mut case = Case::new();
    case.secrets = vec![SecretGrant {
        plugins: vec!["third-party".into()],
        namespaces: vec!["*".into()],
        secrets: vec!["db".into()],
    }];
    let message = refused(case.judge(vec![secret("db", "/run/db", 0o444)]));
    assert!(message.contains("mode 0444"), "{message}");
    assert!(case.judge(vec![secret("db", "/proc/db", 0o400)]).is_err());
    assert!(case.judge(vec![secret("db", "/data", 0o400)]).is_err());
}

#[test]
fn one_bad_mutation_fails_the_whole_decision() {
    let case = Case::new();
    let result = case.judge(vec![
        Mutation::SetNoNewPrivileges,
        Mutation::AddEnv {
            name: "LD_PRELOAD".into(),
            value: "/evil.so".into(),
        },
    ]);
    let violation = result.unwrap_err();
    assert_eq!(violation.mutation, "add-env LD_PRELOAD");
    assert_eq!(
        violation.kind(),
        "add-env",
        "the metrics label: the kind alone"
    );
}

#[test]
fn descriptions_never_carry_values() {
    let described = describe(&Mutation::AddEnv {
        name: "TOKEN".into(),
        value: "hunter2".into(),
    });
    assert_eq!(described, "add-env TOKEN");
}
