//! Building a plugin crate into a component from a test, so `cargo test` alone exercises the
//! real `.wasm`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::Error;

/// The target plugins are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds the plugin crate at `crate_dir` for `wasm32-wasip2` in release mode and returns the
/// component's path.
///
/// The build uses its own target directory (`<crate_dir>/target/bulkhead-component`): the
/// `cargo test` that runs this may still hold the lock on the usual one. Call it once per test
/// binary (e.g. behind a `OnceLock`); cargo makes repeated builds cheap.
///
/// `BULKHEAD_COMPONENT_TARGET_DIR` overrides the directory, so several plugin crates built in one
/// run (a CI job testing many plugins) share one build of the SDK and its dependencies.
pub fn build_component(crate_dir: &Path) -> Result<PathBuf, Error> {
    let target_dir = std::env::var_os("BULKHEAD_COMPONENT_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate_dir.join("target").join("bulkhead-component"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--lib",
            "--message-format=json-render-diagnostics",
        ])
        .args(["--target", TARGET])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| Error::Build {
            reason: format!("cannot run cargo: {e}"),
        })?;
    if !output.status.success() {
        return Err(Error::Build {
            reason: format!(
                "cargo exited with {} (is the target installed? `rustup target add {TARGET}`)\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ),
        });
    }
    // The last compiler artifact with a .wasm file is the plugin itself.
    let stdout = String::from_utf8_lossy(&output.stdout);
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| {
            msg["filenames"]
                .as_array()?
                .iter()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(".wasm"))
                .map(PathBuf::from)
        })
        .next_back()
        .ok_or_else(|| Error::Build {
            reason: "cargo produced no .wasm (is crate-type = [\"cdylib\"] set?)".into(),
        })
}
