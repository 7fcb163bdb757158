//! Builds the first-party plugins in `plugins/` as `wasm32-wasip2` components, so the daemon can
//! embed them: the baseline policy needs no separate install step.
//!
//! The nested `cargo build` (see `bulkhead-component-build`) gets its own target directory (the
//! outer cargo holds the lock on its own for the whole build) and builds in release mode: these
//! are what nodes run.

use std::path::PathBuf;

/// Directory names under `plugins/`; packages are `bulkhead-plugin-<name>`.
const PLUGINS: &[&str] = &["image-policy", "seccomp", "capabilities", "secrets"];

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let workspace = manifest_dir.join("../..");
    for watched in ["plugins", "sdk/rust", "proto/wit"] {
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

    let packages: Vec<String> = PLUGINS
        .iter()
        .map(|plugin| format!("bulkhead-plugin-{plugin}"))
        .collect();
    let files = bulkhead_component_build::build(&workspace, &packages, &target_dir);

    let mut table = String::from(
        "/// The embedded components, by directory name.\nconst EMBEDDED: &[(&str, &[u8])] = &[\n",
    );
    for (plugin, file) in PLUGINS.iter().zip(&files) {
        table.push_str(&format!(
            "    ({plugin:?}, include_bytes!({:?})),\n",
            file.display().to_string()
        ));
    }
    table.push_str("];\n");
    std::fs::write(out_dir.join("embedded.rs"), table).expect("writing embedded.rs");
}
