//! bulkhead's built-in seccomp profiles, `default` and `strict`: allow-lists written for this
//! project, in the spirit of container runtimes' default profiles. The host holds them (see
//! [`super::HeldProfiles`]) so a plugin names a profile instead of sending ~300 syscall names
//! across the guest boundary for every container.
//!
//! Both deny every syscall they do not list with EPERM, and both carry [`RUNTIME`]: what runc
//! itself still calls after it has loaded the filter (dropping privileges, closing descriptors,
//! the Go runtime's threads and signals, and the final `execve` of the container's process).
//! Without those the container would never start.
//!
//! Left out of both on purpose: namespace and mount control (`unshare`, `setns`, `mount`,
//! `umount2`, `pivot_root`, the new mount API), kernel modules and kexec, `bpf`,
//! `perf_event_open`, `ptrace` and cross-process memory access, the kernel keyring, `userfaultfd`,
//! `io_uring`, handle-based opens, clock and host administration (`settimeofday`, `reboot`,
//! `swapon`, `acct`, ...) and NUMA memory policy.

use crate::decision::{SeccompAction, SeccompArg, SeccompOperator, SeccompProfile, SeccompSyscall};

/// Name of the built-in profile every unconfined container gets unless the operator chooses.
pub const DEFAULT: &str = "default";
/// Name of the smaller built-in allow-list.
pub const STRICT: &str = "strict";

/// The built-in profile names.
pub const NAMES: &[&str] = &[DEFAULT, STRICT];

/// errno for syscalls a built-in profile does not list.
pub const EPERM: u32 = 1;
/// errno `clone3` gets, so that libcs fall back to `clone`, whose flags the filter can inspect.
pub const ENOSYS: u32 = 38;

/// Architectures the built-in profiles apply to by default: x86_64 and 32-bit x86. Not x32:
/// mainstream distribution kernels are built without it (`CONFIG_X86_X32_ABI`), and runc's
/// filter work grows with names × architectures, so listing it roughly doubled the start cost of
/// a hardened container for nothing. Leaving an ABI out is never weaker: calls from an
/// architecture the filter does not list are refused, not allowed. A fleet without 32-bit
/// workloads can list x86_64 alone (`[seccomp] architectures`) and halve the filter again.
pub const ARCHITECTURES: &[&str] = &["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"];

/// `clone` flags that create namespaces (CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
/// NEWNET): `clone` is allowed only when none of them is set, like `unshare`, which is not
/// allowed at all.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `personality` values allowed: `PER_LINUX`, `PER_LINUX32`, `UNAME26`, `PER_LINUX32|UNAME26`
/// and the query value `0xffffffff`. Others (e.g. `ADDR_NO_RANDOMIZE`) are refused.
pub const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// What runc (and the Go runtime inside it) still calls after loading the filter, up to and
/// including the `execve` of the container's first process.
#[rustfmt::skip]
pub const RUNTIME: &[&str] = &[
    "execve", "exit", "exit_group", "futex", "nanosleep", "sched_yield", "sched_getaffinity",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "tgkill", "gettid", "getpid",
    "getppid", "mmap", "munmap", "madvise", "mprotect", "brk", "read", "write", "close",
    "close_range", "openat", "fstat", "fstatfs", "statfs", "newfstatat", "getdents64", "fcntl",
    "epoll_pwait", "epoll_ctl", "prctl", "capget", "capset", "setgroups", "setresuid", "setresgid",
    "setuid", "setgid", "chdir", "fchdir", "getuid", "getgid", "geteuid", "getegid", "arch_prctl",
    "set_robust_list", "set_tid_address", "rseq", "clock_gettime", "getrandom", "prlimit64",
];

/// What the `default` profile adds to [`RUNTIME`]: what ordinary workloads need. Process
/// lifecycle, identity, signals, time, memory, files and directories, polling (epoll, not
/// io_uring), IPC, sockets (raw ones too, for `ping`).
#[rustfmt::skip]
pub const DEFAULT_EXTRA: &[&str] = &[
    // Processes and threads (`clone` and `personality` are added with argument filters).
    "execveat", "fork", "vfork", "wait4", "waitid", "getpgid", "getpgrp", "setpgid", "getsid",
    "setsid", "get_robust_list", "getrlimit", "setrlimit", "getrusage", "times", "uname", "sysinfo",
    "getcpu", "sched_setaffinity", "sched_getparam", "sched_setparam", "sched_getscheduler",
    "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
    "sched_rr_get_interval", "sched_getattr", "sched_setattr", "getpriority", "setpriority",
    "ioprio_get", "ioprio_set", "membarrier", "futex_waitv", "futex_wait", "futex_wake",
    "futex_requeue", "pidfd_open", "pidfd_send_signal", "kill", "tkill", "seccomp",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self", "chroot",
    // Identity.
    "getgroups", "getresuid", "getresgid", "setreuid", "setregid", "setfsuid", "setfsgid",
    // Signals and timers.
    "rt_sigpending", "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "rt_sigsuspend",
    "pause", "alarm", "signalfd", "signalfd4", "getitimer", "setitimer", "timer_create",
    "timer_settime", "timer_gettime", "timer_getoverrun", "timer_delete", "restart_syscall",
    // Time.
    "clock_getres", "clock_nanosleep", "gettimeofday", "time", "timerfd_create", "timerfd_settime",
    "timerfd_gettime",
    // Memory.
    "mremap", "mincore", "msync", "mlock", "mlock2", "munlock", "mlockall", "munlockall",
    "memfd_create", "pkey_alloc", "pkey_free", "pkey_mprotect", "map_shadow_stack", "mseal",
    // Files and directories.
    "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev", "preadv2", "pwritev2", "open",
    "openat2", "creat", "lseek", "stat", "lstat", "statx", "access", "faccessat", "faccessat2",
    "readlink", "readlinkat", "getdents", "getcwd", "mkdir", "mkdirat", "rmdir", "rename",
    "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat", "symlink", "symlinkat",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "umask",
    "truncate", "ftruncate", "fallocate", "fadvise64", "readahead", "fsync", "fdatasync", "sync",
    "syncfs", "sync_file_range", "flock", "ioctl", "dup", "dup2", "dup3", "pipe", "pipe2",
    "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "utime", "utimes", "utimensat",
    "futimesat", "mknod", "mknodat", "getxattr", "lgetxattr", "fgetxattr", "listxattr",
    "llistxattr", "flistxattr", "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr",
    "fremovexattr", "getxattrat", "listxattrat", "setxattrat", "removexattrat", "inotify_init",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch", "eventfd", "eventfd2", "cachestat",
    // Waiting for descriptors and asynchronous I/O (not io_uring).
    "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_wait",
    "epoll_pwait2", "io_setup", "io_destroy", "io_getevents", "io_pgetevents", "io_submit",
    "io_cancel",
    // System V and POSIX IPC (namespaced per pod).
    "shmget", "shmat", "shmdt", "shmctl", "semget", "semop", "semtimedop", "semctl", "msgget",
    "msgsnd", "msgrcv", "msgctl", "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive",
    "mq_notify", "mq_getsetattr",
    // Sockets.
    "socket", "socketpair", "connect", "accept", "accept4", "bind", "listen", "getsockname",
    "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
    "sendmmsg", "recvmmsg", "shutdown",
];

/// What the `strict` profile adds to [`RUNTIME`]: enough for a program that works on the
/// descriptors and files it opens, with threads, time and signals. No sockets, no directory or
/// ownership changes, no IPC, no asynchronous I/O, no inotify.
#[rustfmt::skip]
pub const STRICT_EXTRA: &[&str] = &[
    "wait4", "kill", "getgroups", "getrlimit", "uname", "restart_syscall", "rt_sigpending",
    "rt_sigtimedwait", "rt_sigsuspend", "clock_getres", "clock_nanosleep", "gettimeofday", "mremap",
    "readv", "writev", "pread64", "pwrite64", "open", "lseek", "stat", "lstat", "statx", "access",
    "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd", "ioctl", "dup", "dup2", "dup3",
    "pipe2", "poll", "ppoll", "epoll_create1", "epoll_wait", "eventfd2", "futex_waitv",
];

/// [`ARCHITECTURES`] as config values.
pub fn default_architectures() -> Vec<String> {
    ARCHITECTURES.iter().map(|a| a.to_string()).collect()
}

/// A built-in profile by name, for `architectures` (the operator's `[seccomp] architectures`, by
/// default [`ARCHITECTURES`]); `None` for a name that is not built in.
///
/// Rules, in order (the order the seccomp plugin always produced, so digests carry over): one
/// allow rule for [`RUNTIME`] and the profile's extra list; `clone` without namespace flags;
/// `clone3` failing with ENOSYS; and for `default` one `personality` rule per allowed value.
pub fn profile(name: &str, architectures: &[String]) -> Option<SeccompProfile> {
    let extra = match name {
        DEFAULT => DEFAULT_EXTRA,
        STRICT => STRICT_EXTRA,
        _ => return None,
    };
    let mut syscalls = vec![
        rule(RUNTIME.iter().chain(extra).copied(), SeccompAction::Allow),
        SeccompSyscall {
            args: vec![arg0(SeccompOperator::MaskedEqual, CLONE_NAMESPACE_FLAGS)],
            ..rule(["clone"], SeccompAction::Allow)
        },
        SeccompSyscall {
            errno: Some(ENOSYS),
            ..rule(["clone3"], SeccompAction::Errno)
        },
    ];
    if name == DEFAULT {
        syscalls.extend(PERSONALITIES.iter().map(|&persona| SeccompSyscall {
            args: vec![arg0(SeccompOperator::EqualTo, persona)],
            ..rule(["personality"], SeccompAction::Allow)
        }));
    }
    Some(SeccompProfile {
        default_action: SeccompAction::Errno,
        default_errno: Some(EPERM),
        architectures: architectures.to_vec(),
        syscalls,
    })
}

/// A rule applying `action` to `names`, without errno or conditions.
fn rule<'a>(names: impl IntoIterator<Item = &'a str>, action: SeccompAction) -> SeccompSyscall {
    SeccompSyscall {
        names: names.into_iter().map(String::from).collect(),
        action,
        errno: None,
        args: Vec::new(),
    }
}

/// A condition on the first argument (`value-two` 0, as the SDK's builder writes it).
fn arg0(op: SeccompOperator, value: u64) -> SeccompArg {
    SeccompArg {
        index: 0,
        value,
        value_two: 0,
        op,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::KNOWN_ARCHITECTURES;
    use crate::seccomp_profiles::syscalls;

    fn allowed(profile: &SeccompProfile) -> Vec<&str> {
        profile
            .syscalls
            .iter()
            .filter(|rule| rule.action == SeccompAction::Allow)
            .flat_map(|rule| rule.names.iter().map(String::as_str))
            .collect()
    }

    #[test]
    fn every_listed_name_is_an_x86_64_syscall() {
        for list in [RUNTIME, DEFAULT_EXTRA, STRICT_EXTRA] {
            for name in list {
                assert!(syscalls::is_known(name), "{name}");
            }
        }
    }

    #[test]
    fn lists_have_no_duplicates() {
        for extra in [DEFAULT_EXTRA, STRICT_EXTRA] {
            let mut all: Vec<&str> = RUNTIME.iter().chain(extra).copied().collect();
            let len = all.len();
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), len);
        }
    }

    #[test]
    fn default_denies_with_eperm_on_x86() {
        let p = profile(DEFAULT, &default_architectures()).unwrap();
        assert_eq!(p.default_action, SeccompAction::Errno);
        assert_eq!(p.default_errno, Some(EPERM));
        assert_eq!(p.architectures, ARCHITECTURES);
    }

    #[test]
    fn default_runs_busybox_basics() {
        let p = profile(DEFAULT, &default_architectures()).unwrap();
        let allowed = allowed(&p);
        // sh -c, sleep, cat, id, ls, touch, mkdir, ping, and runc's last steps.
        for name in [
            "execve",
            "wait4",
            "nanosleep",
            "clock_nanosleep",
            "openat",
            "read",
            "write",
            "sendfile",
            "getuid",
            "getgroups",
            "getdents64",
            "newfstatat",
            "statx",
            "ioctl",
            "utimensat",
            "mkdir",
            "mkdirat",
            "socket",
            "sendto",
            "recvfrom",
            "setsockopt",
            "capset",
            "setresuid",
            "close_range",
            "prctl",
            "rt_sigaction",
        ] {
            assert!(allowed.contains(&name), "{name}");
        }
        assert!(allowed.contains(&"clone"), "fork and threads");
    }

    #[test]
    fn dangerous_calls_are_not_allowed() {
        for name in [DEFAULT, STRICT] {
            let p = profile(name, &default_architectures()).unwrap();
            let allowed = allowed(&p);
            for bad in [
                "unshare",
                "setns",
                "mount",
                "umount2",
                "pivot_root",
                "kexec_load",
                "kexec_file_load",
                "init_module",
                "finit_module",
                "delete_module",
                "bpf",
                "ptrace",
                "perf_event_open",
                "userfaultfd",
                "keyctl",
                "add_key",
                "open_by_handle_at",
                "io_uring_setup",
                "process_vm_readv",
                "fsopen",
                "move_mount",
                "reboot",
                "settimeofday",
                "swapon",
            ] {
                assert!(!allowed.contains(&bad), "{name} allows {bad}");
            }
        }
    }

    #[test]
    fn clone_cannot_create_namespaces_and_clone3_falls_back() {
        let p = profile(DEFAULT, &default_architectures()).unwrap();
        let clone = p.syscalls.iter().find(|r| r.names == ["clone"]).unwrap();
        assert_eq!(clone.args.len(), 1);
        assert_eq!(clone.args[0].op, SeccompOperator::MaskedEqual);
        assert_eq!(clone.args[0].value, CLONE_NAMESPACE_FLAGS);
        assert_eq!(clone.args[0].value_two, 0);
        let clone3 = p.syscalls.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(clone3.action, SeccompAction::Errno);
        assert_eq!(clone3.errno, Some(ENOSYS));
    }

    #[test]
    fn strict_is_smaller_than_default() {
        let strict = profile(STRICT, &default_architectures()).unwrap();
        let default = profile(DEFAULT, &default_architectures()).unwrap();
        let (s, d) = (allowed(&strict), allowed(&default));
        assert!(s.len() < d.len());
        assert!(s.iter().all(|name| d.contains(name)), "strict is a subset");
        assert!(!s.contains(&"socket") && !s.contains(&"mkdir"));
        assert!(profile("nope", &default_architectures()).is_none());
    }

    #[test]
    fn rules_keep_the_plugin_order() {
        let p = profile(DEFAULT, &default_architectures()).unwrap();
        let heads: Vec<&str> = p.syscalls.iter().map(|r| r.names[0].as_str()).collect();
        assert_eq!(
            heads,
            [
                "execve",
                "clone",
                "clone3",
                "personality",
                "personality",
                "personality",
                "personality",
                "personality"
            ]
        );
        assert_eq!(
            p.syscalls[0].names.len(),
            RUNTIME.len() + DEFAULT_EXTRA.len()
        );
        let personas: Vec<u64> = p.syscalls[3..].iter().map(|r| r.args[0].value).collect();
        assert_eq!(personas, PERSONALITIES);
        assert!(p.syscalls[3..].iter().all(|r| r.args.len() == 1
            && r.args[0].index == 0
            && r.args[0].op == SeccompOperator::EqualTo));
        let strict = profile(STRICT, &default_architectures()).unwrap();
        assert_eq!(strict.syscalls.len(), 3, "no personality rules");
    }

    #[test]
    fn builtins_pass_validation_on_every_architecture() {
        let every: Vec<String> = KNOWN_ARCHITECTURES.iter().map(|a| a.to_string()).collect();
        for name in NAMES {
            for architectures in [default_architectures(), every.clone()] {
                let p = profile(name, &architectures).unwrap();
                assert_eq!(p.validate(), Ok(()), "{name}");
                assert_eq!(p.architectures, architectures);
            }
        }
    }
}
