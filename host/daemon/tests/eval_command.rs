//! `bulkhead eval --config` as an operator runs it: the real binary over a TOML chain of the
//! scripted test plugin (whose answer and decision points come from its `[plugins.config]`), or
//! the built-in baseline, with the view on disk. Checks that the offline run decides as the
//! daemon would: decision points, modes, failure policies, grants, and exit status 2 on a deny.

use std::path::Path;
use std::process::{Command, Output};

use bulkhead_test_plugins::{HOSTILE, SCRIPTED};
use serde_json::Value;

/// A post-create view of an unremarkable container in namespace `default`.
const POST_CREATE_VIEW: &str =
    r#"{"event": "post-create-container", "name": "web", "pod": {"namespace": "default"}}"#;

fn bulkhead(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(args)
        .output()
        .expect("runs bulkhead")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// One `[[plugins]]` entry for the scripted plugin: `settings` are the entry's own keys,
/// `config` the body of its `[plugins.config]` table.
fn scripted(settings: &str, config: &str) -> String {
    format!("[[plugins]]\npath = {SCRIPTED:?}\n{settings}\n[plugins.config]\n{config}\n\n")
}

/// Runs `bulkhead eval` over `view` with a config of `entries`; returns the status code, the
/// parsed JSON result and standard error.
fn eval(entries: &[String], view: &str, extra: &[&str]) -> (i32, Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "bulkhead.toml", &entries.concat());
    let view = write(dir.path(), "view.json", view);
    let mut args = vec!["eval", "--config", &config, "--container", &view];
    args.extend_from_slice(extra);
    finish(bulkhead(&args))
}

fn finish(out: Output) -> (i32, Value, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out.status.code().expect("exited");
    let result = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}), status {code}: {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (code, result, stderr)
}

fn run<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["plugins"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no run of {name} in {result:#}"))
}

#[test]
fn enforcing_deny_exits_2_and_the_audit_run_is_reported_beside_it() {
    let (code, result, stderr) = eval(
        &[
            scripted(
                "",
                r#"name = "enforcer"
deny = "enforcer says no""#,
            ),
            scripted(
                r#"mode = "audit""#,
                r#"name = "auditor"
deny = "auditor says no""#,
            ),
        ],
        POST_CREATE_VIEW,
        &[],
    );
    assert_eq!(code, 2, "{result:#}\n{stderr}");
    assert_eq!(result["event"], "post-create-container");
    let reason = result["merged"]["verdict"]["deny"].as_str().unwrap();
    assert!(reason.contains("enforcer says no"), "{reason}");
    assert!(
        !reason.contains("auditor"),
        "audit runs never decide: {reason}"
    );
    let auditor = run(&result, "auditor");
    assert_eq!(auditor["mode"], "audit");
    assert_eq!(
        auditor["outcome"]["decided"]["verdict"]["deny"],
        "auditor says no"
    );
    assert!(auditor["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(auditor["duration-us"].is_u64());
    assert_eq!(run(&result, "enforcer")["mode"], "enforce");
    assert!(result.get("would-refuse").is_none(), "{result:#}");
    assert_eq!(stderr, "", "quiet without -v");
}

#[test]
fn audit_only_deny_allows_and_says_what_would_have_been_refused() {
    let (code, result, _) = eval(
        &[scripted(
            r#"mode = "audit""#,
            r#"name = "auditor"
deny = "auditor says no""#,
        )],
        POST_CREATE_VIEW,
        &[],
    );
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(result["merged"]["verdict"], "allow");
    let would = result["would-refuse"].as_str().unwrap();
    assert!(would.contains("auditor says no"), "{would}");
}

#[test]
fn ungranted_env_fails_the_plugin_and_failure_policy_allow_lets_it_through() {
    let (code, result, _) = eval(
        &[scripted(
            r#"failure-policy = "allow""#,
            r#"name = "envy"
env = { APP_MODE = "debug" }"#,
        )],
        POST_CREATE_VIEW,
        &[],
    );
    assert_eq!(code, 0, "{result:#}");
    let failed = &run(&result, "envy")["outcome"]["failed"];
    assert_eq!(failed["kind"], "not-granted", "{result:#}");
    assert_eq!(failed["policy"], "allow");
    assert!(failed["violation"]["missing"].is_string(), "{result:#}");
    assert_eq!(result["merged"]["verdict"], "allow");
    assert!(
        result["merged"]["mutations"].get("env").is_none(),
        "an ungranted env var is never merged: {result:#}"
    );
}

#[test]
fn granted_env_is_merged() {
    let (code, result, _) = eval(
        &[format!(
            "{}[plugins.grants]\nenv = [\"APP_MODE\"]\n",
            scripted("", "name = \"envy\"\nenv = { APP_MODE = \"debug\" }")
        )],
        POST_CREATE_VIEW,
        &[],
    );
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(
        result["merged"]["mutations"]["env"]["APP_MODE"]["value"], "debug",
        "{result:#}"
    );
}

#[test]
fn without_config_the_builtin_baseline_denies_a_privileged_container() {
    let dir = tempfile::tempdir().unwrap();
    let view = write(
        dir.path(),
        "view.json",
        r#"{"event": "post-create-container", "name": "web", "privileged": true,
            "pod": {"namespace": "default"}}"#,
    );
    let (code, result, stderr) = finish(bulkhead(&["eval", "--container", &view]));
    assert_eq!(code, 2, "{result:#}\n{stderr}");
    let reason = result["merged"]["verdict"]["deny"].as_str().unwrap();
    assert!(reason.contains("privileged"), "{reason}");
    let names: Vec<&str> = result["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(names.contains(&"capabilities"), "{names:?}");
}

#[test]
fn a_plugin_not_wanting_the_decision_point_is_listed_as_skipped() {
    let (code, result, stderr) = eval(
        &[
            scripted(
                "",
                "name = \"early\"\npoints = [\"create-container\"]\ndeny = \"no\"",
            ),
            scripted("", "name = \"late\"\npoints = [\"post-create-container\"]"),
        ],
        POST_CREATE_VIEW,
        &["-v"],
    );
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(result["skipped"], serde_json::json!(["early"]));
    let runs = result["plugins"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{result:#}");
    assert_eq!(runs[0]["name"], "late");
    // -v: each call with its time, and each skip.
    assert!(stderr.contains("eval: late (enforce) allowed"), "{stderr}");
    assert!(stderr.contains(" ms"), "{stderr}");
    assert!(
        stderr.contains("eval: early skipped: it does not want post-create-container"),
        "{stderr}"
    );
}

#[test]
fn a_looping_plugin_times_out_and_the_chain_goes_on() {
    let (code, result, _) = eval(
        &[
            scripted("time-budget-ms = 20", "name = \"spinner\"\nloop = true"),
            scripted("", "name = \"after\""),
        ],
        POST_CREATE_VIEW,
        &[],
    );
    let failed = &run(&result, "spinner")["outcome"]["failed"];
    assert_eq!(failed["kind"], "timeout", "{result:#}");
    assert_eq!(failed["policy"], "deny");
    assert_eq!(
        run(&result, "after")["outcome"]["decided"]["verdict"],
        "allow"
    );
    // The default failure policy (deny) refuses the container.
    assert_eq!(code, 2, "{result:#}");
    let reason = result["merged"]["verdict"]["deny"].as_str().unwrap();
    assert!(reason.contains("timeout"), "{reason}");
}

#[test]
fn a_create_container_view_is_judged_without_a_spec() {
    // At create-container only the grant rules that need no spec apply; the view's event is
    // reported back.
    let (code, result, _) = eval(
        &[scripted(
            "",
            "name = \"early\"\npoints = [\"create-container\"]",
        )],
        r#"{"name": "web"}"#,
        &[],
    );
    assert_eq!(code, 0, "{result:#}");
    assert_eq!(result["event"], "create-container");
    assert_eq!(
        run(&result, "early")["outcome"]["decided"]["verdict"],
        "allow"
    );
}

#[test]
fn load_errors_exit_1_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let view = write(dir.path(), "view.json", POST_CREATE_VIEW);
    let missing = dir.path().join("absent.toml").display().to_string();
    let out = bulkhead(&["eval", "--config", &missing, "--container", &view]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
    assert!(out.stdout.is_empty());

    let config = write(
        dir.path(),
        "bad.toml",
        "[[plugins]]\npath = \"/nonexistent/p.wasm\"\n",
    );
    let out = bulkhead(&["eval", "--config", &config, "--container", &view]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/p.wasm"));
}

#[test]
fn verbose_shows_plugin_log_lines_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let view = write(dir.path(), "view.json", r#"{"name": "web"}"#);
    let args = [
        "eval",
        "--plugin",
        HOSTILE,
        "--plugin-config",
        "log-flood",
        // 100 000 log calls: far more than the default budget in a debug build.
        "--time-budget",
        "5000",
        "--container",
        &view,
    ];
    let quiet = bulkhead(&args);
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );

    let loud = bulkhead(&[&args[..], &["-v"]].concat());
    assert!(loud.status.success());
    let stderr = String::from_utf8_lossy(&loud.stderr);
    assert!(stderr.contains("flood line 0"), "{stderr}");
    assert!(
        stderr.contains("plugin=\"hostile\"") || stderr.contains("plugin=hostile"),
        "{stderr}"
    );
    assert!(stderr.contains("eval: hostile allowed"), "{stderr}");
}

#[test]
fn a_malformed_command_line_exits_1_not_the_deny_status() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bulkhead"))
        .args(["eval", "--no-such-flag"])
        .output()
        .expect("runs bulkhead");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--no-such-flag"));
}
