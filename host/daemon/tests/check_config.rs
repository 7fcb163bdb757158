//! `bulkhead check-config` as an operator runs it: a plugin config the plugin itself rejects
//! fails the check (and so `bulkhead run` at start), naming the entry, the plugin and the key —
//! instead of saying "valid" and refusing every container later.

use std::process::{Command, Output};

fn check_config(toml: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bulkhead.toml");
    let cache = dir.path().join("cache");
    std::fs::write(
        &path,
        format!(
            "{toml}\n[sandbox]\ncache-dir = {:?}\n",
            cache.display().to_string()
        ),
    )
    .unwrap();
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("runs bulkhead")
}

#[test]
fn a_misspelled_builtin_key_fails_the_check_naming_it() {
    let out = check_config(
        "[[plugins]]\nbuiltin = \"image-policy\"\n[plugins.config]\ndeny-lastest = true\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config passed: {stderr}");
    assert!(stderr.contains("plugins[0]"), "{stderr}");
    assert!(stderr.contains("deny-lastest"), "{stderr}");
    assert!(stderr.contains("config key `deny-lastest`"), "{stderr}");
}

#[test]
fn a_mistyped_builtin_value_fails_the_check() {
    let out = check_config(
        "[[plugins]]\nbuiltin = \"capabilities\"\n[plugins.config]\ndrop = \"CAP_NET_RAW\"\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config passed: {stderr}");
    assert!(stderr.contains("drop"), "{stderr}");
}

#[test]
fn a_valid_config_passes_and_prints_the_grants() {
    let out = check_config(
        "[[plugins]]\nbuiltin = \"capabilities\"\n[plugins.config]\ndrop = [\"CAP_NET_RAW\"]\n",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "may tighten: drop-capabilities, keep-only-capabilities, set-no-new-privileges"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("may bind-mount: none"), "{stdout}");
}
