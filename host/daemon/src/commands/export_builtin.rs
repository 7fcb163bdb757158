//! `bulkhead plugin export-builtin NAME -o FILE`: writes an embedded first-party plugin's
//! component to a file, so `bulkhead eval`, `bulkhead plugin test` and authors' tests can run the
//! exact bytes a node runs.

use std::path::PathBuf;

use anyhow::Context;
use bulkhead_core::config::Builtin;

/// Arguments of `bulkhead plugin export-builtin`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// image-policy, seccomp, capabilities or secrets.
    #[arg(value_parser = parse_builtin)]
    pub name: Builtin,
    /// Where to write the `.wasm`.
    #[arg(long, short, value_name = "FILE")]
    pub output: PathBuf,
}

/// Writes the component.
pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let bytes = bulkhead_builtin::component(args.name);
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("while writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} bytes) to {}",
        args.name.name(),
        bytes.len(),
        args.output.display()
    );
    Ok(())
}

fn parse_builtin(name: &str) -> Result<Builtin, String> {
    Builtin::ALL
        .into_iter()
        .find(|b| b.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = Builtin::ALL.iter().map(|b| b.name()).collect();
            format!("not a built-in plugin; one of {}", names.join(", "))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_exported_as_a_component() {
        let dir = tempfile::tempdir().unwrap();
        for builtin in Builtin::ALL {
            let output = dir.path().join(format!("{}.wasm", builtin.name()));
            run(ExportArgs {
                name: builtin,
                output: output.clone(),
            })
            .unwrap();
            let bytes = std::fs::read(&output).unwrap();
            assert_eq!(&bytes[..4], b"\0asm", "{}", builtin.name());
        }
        assert!(
            parse_builtin("selinux")
                .unwrap_err()
                .contains("image-policy")
        );
    }
}
