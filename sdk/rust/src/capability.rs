//! Linux capabilities as a Rust enum, so a plugin cannot misspell one (the host would reject
//! the decision as invalid output).

use std::fmt;
use std::str::FromStr;

macro_rules! capabilities {
    ($($variant:ident = $name:literal,)*) => {
        /// A Linux capability (see `capabilities(7)`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[allow(missing_docs, reason = "the kernel's names document themselves")]
        pub enum Capability {
            $($variant,)*
        }

        impl Capability {
            /// Every capability, in kernel order.
            pub const ALL: &[Capability] = &[$(Capability::$variant,)*];

            /// The kernel name (`CAP_NET_RAW`), which is what the WIT carries.
            pub fn name(self) -> &'static str {
                match self {
                    $(Capability::$variant => $name,)*
                }
            }
        }
    };
}

capabilities! {
    Chown = "CAP_CHOWN",
    DacOverride = "CAP_DAC_OVERRIDE",
    DacReadSearch = "CAP_DAC_READ_SEARCH",
    Fowner = "CAP_FOWNER",
    Fsetid = "CAP_FSETID",
    Kill = "CAP_KILL",
    Setgid = "CAP_SETGID",
    Setuid = "CAP_SETUID",
    Setpcap = "CAP_SETPCAP",
    LinuxImmutable = "CAP_LINUX_IMMUTABLE",
    NetBindService = "CAP_NET_BIND_SERVICE",
    NetBroadcast = "CAP_NET_BROADCAST",
    NetAdmin = "CAP_NET_ADMIN",
    NetRaw = "CAP_NET_RAW",
    IpcLock = "CAP_IPC_LOCK",
    IpcOwner = "CAP_IPC_OWNER",
    SysModule = "CAP_SYS_MODULE",
    SysRawio = "CAP_SYS_RAWIO",
    SysChroot = "CAP_SYS_CHROOT",
    SysPtrace = "CAP_SYS_PTRACE",
    SysPacct = "CAP_SYS_PACCT",
    SysAdmin = "CAP_SYS_ADMIN",
    SysBoot = "CAP_SYS_BOOT",
    SysNice = "CAP_SYS_NICE",
    SysResource = "CAP_SYS_RESOURCE",
    SysTime = "CAP_SYS_TIME",
    SysTtyConfig = "CAP_SYS_TTY_CONFIG",
    Mknod = "CAP_MKNOD",
    Lease = "CAP_LEASE",
    AuditWrite = "CAP_AUDIT_WRITE",
    AuditControl = "CAP_AUDIT_CONTROL",
    Setfcap = "CAP_SETFCAP",
    MacOverride = "CAP_MAC_OVERRIDE",
    MacAdmin = "CAP_MAC_ADMIN",
    Syslog = "CAP_SYSLOG",
    WakeAlarm = "CAP_WAKE_ALARM",
    BlockSuspend = "CAP_BLOCK_SUSPEND",
    AuditRead = "CAP_AUDIT_READ",
    Perfmon = "CAP_PERFMON",
    Bpf = "CAP_BPF",
    CheckpointRestore = "CAP_CHECKPOINT_RESTORE",
}

/// A string that names no capability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCapability(pub String);

impl fmt::Display for UnknownCapability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown capability `{}`", self.0)
    }
}

impl std::error::Error for UnknownCapability {}

impl FromStr for Capability {
    type Err = UnknownCapability;

    /// Accepts `CAP_NET_RAW`, `NET_RAW` and `net_raw`, as the view's capability sets and
    /// Kubernetes manifests write them.
    fn from_str(s: &str) -> Result<Self, UnknownCapability> {
        let upper = s.trim().to_ascii_uppercase();
        let wanted = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        Capability::ALL
            .iter()
            .copied()
            .find(|c| c.name() == wanted)
            .ok_or_else(|| UnknownCapability(s.to_owned()))
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Capability> for String {
    fn from(c: Capability) -> String {
        c.name().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Capability::ALL {
            assert_eq!(c.name().parse::<Capability>(), Ok(*c));
        }
        assert_eq!("sys_admin".parse::<Capability>(), Ok(Capability::SysAdmin));
        assert!("CAP_FLY".parse::<Capability>().is_err());
    }
}
