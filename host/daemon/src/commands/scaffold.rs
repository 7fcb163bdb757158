//! `bulkhead plugin new NAME`: a new plugin crate laid out as the author guide describes — the
//! policy as a pure module with unit tests, the export glue, a case file, a CI script — that
//! builds, tests and loads as generated, so an author starts from something that works.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Arguments of `bulkhead plugin new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name (lower-case letters, digits and `-`): the crate, the directory and the
    /// name in its metadata.
    pub name: String,
    /// Where to create the crate [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// A local checkout's SDK (`<bulkhead>/sdk/rust`) to depend on by path; without it the crate
    /// depends on bulkhead's git repository.
    #[arg(long, value_name = "PATH")]
    pub sdk_path: Option<PathBuf>,
}

/// The files of a new plugin crate: (path in the crate, template).
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../templates/plugin/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../templates/plugin/src/lib.rs.tmpl"),
    ),
    (
        "src/policy.rs",
        include_str!("../../templates/plugin/src/policy.rs.tmpl"),
    ),
    (
        "cases.json",
        include_str!("../../templates/plugin/cases.json.tmpl"),
    ),
    ("ci.sh", include_str!("../../templates/plugin/ci.sh.tmpl")),
    (
        ".gitignore",
        include_str!("../../templates/plugin/gitignore.tmpl"),
    ),
];

/// Creates the crate and says what to run next.
pub fn run(args: NewArgs) -> anyhow::Result<()> {
    let name = &args.name;
    check_name(name)?;
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() {
        bail!("{} already exists; choose another --dir", dir.display());
    }
    let sdk = match &args.sdk_path {
        Some(path) => {
            let path = std::fs::canonicalize(path)
                .with_context(|| format!("--sdk-path {}", path.display()))?;
            if !path.join("Cargo.toml").exists() {
                bail!("--sdk-path {}: no Cargo.toml there", path.display());
            }
            format!("path = {:?}", path.display().to_string())
        }
        None => "git = \"https://github.com/bulkhead-dev/bulkhead\"".to_string(),
    };
    write_crate(&dir, name, &sdk)?;
    let crate_name = name.replace('-', "_");
    println!("created {} ({name})", dir.display());
    println!("next:");
    println!("  cd {} && cargo test", dir.display());
    println!("  cargo build --release --target wasm32-wasip2");
    println!("  bulkhead plugin test target/wasm32-wasip2/release/{crate_name}.wasm cases.json");
    Ok(())
}

/// Writes every template into `dir`, filled in.
fn write_crate(dir: &Path, name: &str, sdk: &str) -> anyhow::Result<()> {
    let crate_name = name.replace('-', "_");
    for (file, template) in FILES {
        let path = dir.join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{sdk}}", sdk);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        if file.ends_with(".sh") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    Ok(())
}

/// A name that is a valid crate name, plugin name and directory name at once.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-')
        && name.len() <= 64;
    if !ok {
        bail!(
            "{name:?} is not a plugin name: lower-case letters, digits and '-', starting with a letter"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(check_name("no-root").is_ok());
        for bad in ["", "No-Root", "1st", "a_b", "trailing-", "../x"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_are_filled_in_and_an_existing_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no-root");
        write_crate(&target, "no-root", "path = \"/sdk\"").unwrap();
        let manifest = std::fs::read_to_string(target.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"no-root\""), "{manifest}");
        assert!(
            manifest.contains("bulkhead-sdk = { path = \"/sdk\""),
            "{manifest}"
        );
        let ci = std::fs::read_to_string(target.join("ci.sh")).unwrap();
        assert!(ci.contains("release/no_root.wasm"), "{ci}");
        for (file, _) in FILES {
            let text = std::fs::read_to_string(target.join(file)).unwrap();
            assert!(!text.contains("{{"), "{file} has an unfilled placeholder");
        }
        let err = run(NewArgs {
            name: "no-root".into(),
            dir: Some(target),
            sdk_path: None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}
