//! Builds the first-party plugins in `plugins/` as `wasm32-wasip2` components, so the daemon can
//! embed them: the baseline policy needs no separate install step.
//!
//! The nested `cargo build` gets its own target directory (the outer cargo holds the lock on
//! its own for the whole build) and builds in release mode: these are what nodes run.

use std::path::PathBuf;
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Directory names under `plugins/`; packages are `bulkhead-plugin-<name>`.
const PLUGINS: &[&str] = &["image-policy", "seccomp", "capabilities", "secrets"];

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace = manifest_dir.join("../..");
    for watched in ["plugins", "sdk/rust", "sdk/wit"] {
        println!(
            "cargo:rerun-if-changed={}",
            workspace.join(watched).display()
        );
    }
    // <target>/<profile>/build/<pkg>-<hash>/out -> <target>/builtin-plugins
    let target_dir = out_dir.ancestors().nth(4).map_or_else(
        || out_dir.join("builtin-plugins"),
        |t| t.join("builtin-plugins"),
    );

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .current_dir(&workspace)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Settings meant for the outer, native build must not leak into this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER");
    for plugin in PLUGINS {
        build
            .arg("--package")
            .arg(format!("bulkhead-plugin-{plugin}"));
    }
    let status = build
        .status()
        .expect("running cargo for the first-party plugins");
    assert!(
        status.success(),
        "building the first-party plugins for {TARGET} failed (is the target installed? `rustup target add {TARGET}`)"
    );

    let mut table = String::from(
        "/// The embedded components, by directory name.\nconst EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for plugin in PLUGINS {
        let file = target_dir
            .join(TARGET)
            .join("release")
            .join(format!("bulkhead_plugin_{}.wasm", plugin.replace('-', "_")));
        assert!(file.exists(), "expected {} after the build", file.display());
        table.push_str(&format!(
            "    ({plugin:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("embedded.rs"), table).expect("writing embedded.rs");
}
