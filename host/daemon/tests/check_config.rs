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

const NO_MKDIR: &str = "[seccomp.profiles.no-mkdir]\ndefault-action = \"SCMP_ACT_ALLOW\"\nsyscalls = [{ names = [\"mkdir\", \"mkdirat\"], action = \"SCMP_ACT_ERRNO\" }]\n";

#[test]
fn held_seccomp_profiles_are_listed_with_their_digests() {
    let out = check_config(&format!(
        "{NO_MKDIR}[[plugins]]\nbuiltin = \"seccomp\"\n[plugins.config]\ndefault-profile = \"no-mkdir\"\n"
    ));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("#   {name} (")))
            .unwrap_or_else(|| panic!("no line for {name}:\n{stdout}"))
            .to_string()
    };
    assert!(line("default").contains("built-in"), "{stdout}");
    assert!(line("strict").contains("built-in"), "{stdout}");
    let no_mkdir = line("no-mkdir");
    assert!(
        no_mkdir.contains("[seccomp.profiles]") && no_mkdir.contains(" sha256:"),
        "{no_mkdir}"
    );
}

#[test]
fn a_broken_held_profile_fails_the_check_naming_its_key() {
    let out = check_config(&NO_MKDIR.replace("\"mkdirat\"", "\"mkdirt\""));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config passed: {stderr}");
    assert!(
        stderr.contains("seccomp.profiles.no-mkdir") && stderr.contains("\"mkdirt\""),
        "{stderr}"
    );
}

#[test]
fn a_seccomp_plugin_naming_a_profile_the_host_does_not_hold_fails_the_check() {
    let out = check_config(
        "[[plugins]]\nbuiltin = \"seccomp\"\n[plugins.config]\nnamespace-profiles = { batch = \"no-mkdir\" }\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config passed: {stderr}");
    assert!(
        stderr.contains("namespace-profiles.batch") && stderr.contains("no-mkdir"),
        "{stderr}"
    );
}

#[test]
fn the_seccomp_plugins_old_profile_keys_point_to_the_host_config() {
    let out = check_config(
        "[[plugins]]\nbuiltin = \"seccomp\"\n[plugins.config]\narchitectures = [\"SCMP_ARCH_X86_64\"]\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check-config passed: {stderr}");
    assert!(stderr.contains("[seccomp] architectures"), "{stderr}");
}

#[test]
fn a_plugin_file_that_is_not_its_pinned_content_fails_the_check() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let wasm = std::fs::read(bulkhead_test_plugins::SCRIPTED).unwrap();
    let pin: String = Sha256::digest(&wasm)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let copy = dir.path().join("plugin.wasm");
    std::fs::write(&copy, &wasm).unwrap();
    let entry = format!(
        "[[plugins]]\npath = {:?}\nsha256 = \"sha256:{pin}\"\n[plugins.config]\nname = \"pinned\"\n",
        copy.display().to_string()
    );
    let out = check_config(&entry);
    assert!(
        out.status.success(),
        "the pinned file was refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Someone with write access to the plugin directory swaps the component.
    let mut tampered = wasm;
    tampered.extend_from_slice(b"\0\0\0\0");
    std::fs::write(&copy, tampered).unwrap();
    let out = check_config(&entry);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a tampered file passed: {stderr}");
    assert!(stderr.contains("plugins[0]"), "{stderr}");
    assert!(
        stderr.contains(&format!("not the pinned sha256:{pin}")),
        "{stderr}"
    );
}
