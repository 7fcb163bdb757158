//! Builds plugin crates as `wasm32-wasip2` components from a build script, for crates that embed
//! or point at them (`bulkhead-builtin`, `bulkhead-test-plugins`).
//!
//! The nested `cargo build` must get its **own target directory**: the outer cargo holds the lock
//! on its target directory for the whole build, so sharing it would deadlock. Components are built
//! in release mode (what nodes run, and what benchmarks must measure) without debug info, and
//! with the flags and wrappers meant for the outer, native build scrubbed from the environment.
//!
//! No dependencies: it is a build-dependency, compiled before anything else.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The target components are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds `packages` (cdylib crates of the workspace that holds `dir`) for [`TARGET`] in release
/// mode into `target_dir`, and returns their `.wasm` files in the order of `packages`.
///
/// Runs `$CARGO` (the cargo running the build script) in `dir`. Panics, which fails the build
/// script with the message, when cargo cannot run, the build fails (typically: the target is not
/// installed) or a component is missing afterwards.
pub fn build(dir: &Path, packages: &[impl AsRef<str>], target_dir: &Path) -> Vec<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir)
        .current_dir(dir)
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", "debuginfo")
        // Settings meant for the outer, native build must not leak into this one.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER");
    let packages: Vec<&str> = packages.iter().map(AsRef::as_ref).collect();
    for package in &packages {
        cmd.arg("--package").arg(package);
    }
    let names = packages.join(", ");
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {names} for {TARGET}: {e}"));
    assert!(
        status.success(),
        "building {names} for {TARGET} failed (is the target installed? `rustup target add {TARGET}`)"
    );
    packages
        .iter()
        .map(|package| {
            let file = target_dir
                .join(TARGET)
                .join("release")
                .join(format!("{}.wasm", package.replace('-', "_")));
            assert!(file.exists(), "expected {} after the build", file.display());
            file
        })
        .collect()
}
