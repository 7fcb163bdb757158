//! Linux capability names, parsed once so that a typo in a plugin or a case file is an error
//! instead of a capability silently left in place.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

macro_rules! capabilities {
    ($($variant:ident = $name:literal,)*) => {
        /// A Linux capability (see `capabilities(7)`).
        ///
        /// Typed so that "drop `CAP_NET_RAWW`" fails validation: a misspelt drop would otherwise
        /// leave the capability granted while the policy looks applied.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        #[allow(missing_docs, reason = "the kernel's names document themselves")]
        pub enum Capability {
            $($variant,)*
        }

        impl Capability {
            /// Every capability the kernel defines, in kernel order.
            pub const ALL: &[Capability] = &[$(Capability::$variant,)*];

            /// The kernel's name, `CAP_*`, as the OCI spec writes it.
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

/// Written by hand because the type (de)serializes through `String`: the schema lists the names
/// the parser accepts, so an editor can complete and check them. The kernel's `CAP_*` name is
/// what bulkhead writes; the short upper- and lower-case forms (`NET_RAW`, `net_raw`) are what
/// Kubernetes manifests use. (The parser also ignores case and surrounding blanks entirely; the
/// schema keeps to these three spellings.)
impl schemars::JsonSchema for Capability {
    fn schema_name() -> Cow<'static, str> {
        "Capability".into()
    }

    fn schema_id() -> Cow<'static, str> {
        "bulkhead_core::decision::Capability".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let kernel: Vec<&str> = Capability::ALL.iter().map(|c| c.name()).collect();
        let short: Vec<&str> = kernel
            .iter()
            .map(|name| name.trim_start_matches("CAP_"))
            .collect();
        let lower: Vec<String> = short.iter().map(|name| name.to_ascii_lowercase()).collect();
        schemars::json_schema!({
            "description": "A Linux capability (see capabilities(7)).",
            "type": "string",
            "anyOf": [
                {"description": "The kernel's name, as bulkhead writes it.", "enum": kernel},
                {"description": "Without `CAP_`, as Kubernetes writes it.", "enum": short},
                {"description": "Lower case, without `CAP_`.", "enum": lower},
            ]
        })
    }
}

impl FromStr for Capability {
    type Err = Error;

    /// Accepts `CAP_NET_RAW`, and also `NET_RAW` or `net_raw` (the forms Kubernetes manifests use).
    fn from_str(s: &str) -> Result<Self, Error> {
        let upper = s.trim().to_ascii_uppercase();
        let wanted = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        Capability::ALL
            .iter()
            .copied()
            .find(|cap| cap.name() == wanted)
            .ok_or_else(|| Error::UnknownCapability { name: s.to_owned() })
    }
}

impl TryFrom<String> for Capability {
    type Error = Error;

    fn try_from(value: String) -> Result<Self, Error> {
        value.parse()
    }
}

impl From<Capability> for String {
    fn from(cap: Capability) -> String {
        cap.name().to_owned()
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_and_short_names() {
        assert_eq!("CAP_NET_RAW".parse::<Capability>(), Ok(Capability::NetRaw));
        assert_eq!("net_raw".parse::<Capability>(), Ok(Capability::NetRaw));
        assert_eq!("SYS_ADMIN".parse::<Capability>(), Ok(Capability::SysAdmin));
    }

    #[test]
    fn rejects_unknown_names() {
        let err = "CAP_NET_RAWW".parse::<Capability>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown capability `CAP_NET_RAWW` (expected a kernel name such as CAP_NET_RAW)"
        );
    }

    #[test]
    fn serde_round_trips_as_kernel_name() {
        let json = serde_json::to_string(&Capability::Bpf).unwrap();
        assert_eq!(json, "\"CAP_BPF\"");
        assert!(serde_json::from_str::<Capability>("\"CAP_NOPE\"").is_err());
    }

    #[test]
    fn schema_lists_every_spelling_the_parser_takes() {
        let schema = schemars::schema_for!(Capability);
        let spellings: Vec<&str> = schema.as_value()["anyOf"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|branch| branch["enum"].as_array().unwrap())
            .map(|name| name.as_str().unwrap())
            .collect();
        assert_eq!(spellings.len(), 3 * Capability::ALL.len());
        assert!(spellings.contains(&"CAP_NET_RAW") && spellings.contains(&"net_raw"));
        for name in spellings {
            assert!(name.parse::<Capability>().is_ok(), "{name}");
        }
    }

    #[test]
    fn every_name_parses_back() {
        assert_eq!(Capability::ALL.len(), 41);
        for cap in Capability::ALL {
            assert_eq!(cap.name().parse::<Capability>(), Ok(*cap));
        }
    }
}
