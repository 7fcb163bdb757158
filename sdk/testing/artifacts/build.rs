//! Builds the test plugins in `../plugins/` for `wasm32-wasip2` and writes their paths into
//! `$OUT_DIR/plugins.rs` (the pattern of wasmtime's test-programs artifacts crate).
//!
//! The nested `cargo build` gets its **own target directory**: the outer cargo holds the lock on
//! its target directory for the whole build, so sharing it would deadlock. Plugins are built in
//! release mode (what operators run, and what the benchmarks must measure) without debug info.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Plugin crates under `../plugins/<dir>`, package `bulkhead-test-plugin-<dir>`.
const PLUGINS: &[&str] = &["noop", "realistic", "hostile", "scripted", "wrong-version"];
const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let sdk = manifest_dir.join("../..");
    for watched in ["testing/plugins", "rust/src", "rust/Cargo.toml", "wit"] {
        println!("cargo:rerun-if-changed={}", sdk.join(watched).display());
    }

    // <target>/<profile>/build/<pkg>-<hash>/out -> <target>/wasm-plugins
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&manifest_dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Flags and wrappers meant for the outer (native) build must not leak into this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER");
    for plugin in PLUGINS {
        cmd.arg("--package")
            .arg(format!("bulkhead-test-plugin-{plugin}"));
    }
    let status = cmd.status().expect("running cargo for the test plugins");
    assert!(
        status.success(),
        "building the test plugins for {TARGET} failed (is the target installed? `rustup target add {TARGET}`)"
    );

    let mut consts = String::new();
    for plugin in PLUGINS {
        let file = format!("bulkhead_test_plugin_{}.wasm", plugin.replace('-', "_"));
        let path = target_dir.join(TARGET).join("release").join(file);
        assert!(
            Path::new(&path).exists(),
            "expected {} after the build",
            path.display()
        );
        consts.push_str(&format!(
            "/// Path of the built `{plugin}` test plugin component.\npub const {}: &str = {:?};\n",
            plugin.to_uppercase().replace('-', "_"),
            path.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("plugins.rs"), consts).expect("writing plugins.rs");
}
