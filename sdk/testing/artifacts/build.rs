//! Builds the test plugins in `../plugins/` for `wasm32-wasip2` and writes their paths into
//! `$OUT_DIR/plugins.rs` (the pattern of wasmtime's test-programs artifacts crate).
//!
//! The nested `cargo build` (see `bulkhead-component-build`) gets its **own target directory**:
//! the outer cargo holds the lock on its target directory for the whole build, so sharing it
//! would deadlock. Plugins are built in release mode (what operators run, and what the benchmarks
//! must measure) without debug info.

use std::path::PathBuf;

/// Plugin crates under `../plugins/<dir>`, package `bulkhead-test-plugin-<dir>`.
const PLUGINS: &[&str] = &["noop", "realistic", "hostile", "scripted", "wrong-version"];

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let sdk = manifest_dir.join("../..");
    for watched in [
        "testing/plugins",
        "rust/src",
        "rust/Cargo.toml",
        "../proto/wit",
    ] {
        println!("cargo:rerun-if-changed={}", sdk.join(watched).display());
    }

    // <target>/<profile>/build/<pkg>-<hash>/out -> <target>/wasm-plugins
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));

    let packages: Vec<String> = PLUGINS
        .iter()
        .map(|plugin| format!("bulkhead-test-plugin-{plugin}"))
        .collect();
    let files = bulkhead_component_build::build(&manifest_dir, &packages, &target_dir);

    let mut consts = String::new();
    for (plugin, path) in PLUGINS.iter().zip(&files) {
        consts.push_str(&format!(
            "/// Path of the built `{plugin}` test plugin component.\npub const {}: &str = {:?};\n",
            plugin.to_uppercase().replace('-', "_"),
            path.display().to_string()
        ));
    }
    std::fs::write(out_dir.join("plugins.rs"), consts).expect("writing plugins.rs");
}
