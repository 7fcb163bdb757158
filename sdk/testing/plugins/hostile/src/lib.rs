//! A deliberately misbehaving plugin. The operator config string picks the misbehaviour, so one
//! component covers every failure the runtime must contain:
//!
//! `loop`, `grow-memory`, `recurse`, `panic`, `log-flood`, `bad-capability`, `bad-seccomp`,
//! `report-error`, `read-clock` (a WASI call that is not granted), `hash-map` (std's
//! `HashMap`, whose seed the host supplies), `sleep-ish` (slow but finite
//! work), anything else: allow.

use std::hint::black_box;

use bulkhead_sdk::{
    Container, Decision, DecisionPoint, LogLevel, Mutation, Plugin, PluginError, PluginInfo,
    SeccompAction, SeccompBuilder,
};

/// Misbehaves as configured.
pub struct Hostile;

fn recurse(depth: u64) -> u64 {
    // The exit is never taken, but the compiler cannot know; not a tail call, so each level
    // keeps a frame alive until the stack runs out.
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(depth) + recurse(black_box(depth + 1)) + 1
}

impl Plugin for Hostile {
    fn metadata() -> PluginInfo {
        PluginInfo::new("hostile", "0.1.0", [DecisionPoint::CreateContainer])
    }

    fn check_container(_container: Container) -> Result<Decision, PluginError> {
        match bulkhead_sdk::config().as_str() {
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "grow-memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recurse" => {
                black_box(recurse(0));
                Ok(Decision::allow())
            }
            "panic" => panic!("hostile plugin panics on purpose"),
            "log-flood" => {
                for i in 0..100_000 {
                    bulkhead_sdk::log(LogLevel::Info, &format!("flood line {i}"));
                }
                Ok(Decision::allow())
            }
            "bad-capability" => {
                Ok(Decision::allow().with(Mutation::DropCapabilities(vec!["CAP_NET_RAWW".into()])))
            }
            "bad-seccomp" => Ok(Decision::allow().seccomp(
                SeccompBuilder::new(SeccompAction::Allow)
                    .errno(["open at", "ptrace"], 1)
                    .build(),
            )),
            "report-error" => Err(PluginError::InvalidConfig(
                "hostile wants a different config".into(),
            )),
            "read-clock" => {
                let now = std::time::SystemTime::now();
                Ok(Decision::deny(format!("clock says {now:?}")))
            }
            "hash-map" => {
                // Needs wasi:random/insecure-seed, which the host answers with a constant.
                let mut seen = std::collections::HashMap::new();
                seen.insert("key", 1);
                Ok(Decision::deny(format!("map has {} entry", seen.len())))
            }
            "sleep-ish" => {
                let mut acc = 0u64;
                for i in 0..20_000_000u64 {
                    acc = black_box(acc ^ i);
                }
                Ok(Decision::deny(format!("done {acc}")))
            }
            _ => Ok(Decision::allow()),
        }
    }
}

bulkhead_sdk::export_plugin!(Hostile);
