//! `bulkhead-guard`: the OCI hook that refuses CRI containers bulkhead did not admit, and the
//! two commands an operator needs to install it (see `docs/guard.md`).
//!
//! The `hook` command runs for every container on the node, so it is a small synchronous
//! program: parse the state, maybe read a 32-byte key, one HMAC, exit.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use bulkhead_guard::base_spec::{HookConfig, base_spec};
use bulkhead_guard::hook::{Decision, check};
use bulkhead_guard::{DEFAULT_KEY_PATH, GuardKey};

const USAGE: &str = "\
usage:
  bulkhead-guard hook [--key PATH] [--strict]
      OCI createRuntime hook: reads the OCI state on stdin, exits 0 to let the container be
      created, 1 (reason on stderr) to refuse it.
  bulkhead-guard init-key [PATH]
      writes a new random key (mode 0600); never replaces an existing one.
  bulkhead-guard print-base-spec [--key PATH] [--hook-path PATH] [--strict] [--timeout SECONDS]
      prints containerd 2.1's default spec plus the hook, for containerd's base_runtime_spec.
      --hook-path defaults to this binary's own path.

PATH defaults to /etc/bulkhead/guard.key.";

/// Exit code for a refused container (any non-zero fails the create).
const REFUSED: u8 = 1;
/// Exit code for bad usage or a failed command.
const FAILED: u8 = 2;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let result = match command.as_deref() {
        Some("hook") => return hook(&rest),
        Some("init-key") => init_key(&rest),
        Some("print-base-spec") => print_base_spec(&rest),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown or missing command\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bulkhead-guard: {message}");
            ExitCode::from(FAILED)
        }
    }
}

/// Options shared by the commands; each accepts only the ones it documents.
#[derive(Debug, Default)]
struct Options {
    key: Option<PathBuf>,
    hook_path: Option<PathBuf>,
    strict: bool,
    timeout: Option<u32>,
    positional: Vec<String>,
}

fn parse(args: &[String], allowed: &[&str]) -> Result<Options, String> {
    let mut options = Options::default();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => (name, Some(value.to_owned())),
            _ => (arg.as_str(), None),
        };
        if !name.starts_with("--") {
            options.positional.push(arg.clone());
            continue;
        }
        if !allowed.contains(&name) {
            return Err(format!("unknown option {name}\n{USAGE}"));
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "--key" => options.key = Some(value()?.into()),
            "--hook-path" => options.hook_path = Some(value()?.into()),
            "--timeout" => {
                let text = value()?;
                options.timeout = Some(
                    text.parse()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or_else(|| format!("--timeout: not a positive number: {text}"))?,
                );
            }
            "--strict" => options.strict = true,
            _ => unreachable!("allowed options are handled above"),
        }
    }
    Ok(options)
}

fn hook(args: &[String]) -> ExitCode {
    let options = match parse(args, &["--key", "--strict"]) {
        Ok(options) if options.positional.is_empty() => options,
        Ok(_) => {
            eprintln!("bulkhead-guard: hook takes no arguments\n{USAGE}");
            return ExitCode::from(FAILED);
        }
        Err(message) => {
            eprintln!("bulkhead-guard: {message}");
            return ExitCode::from(FAILED);
        }
    };
    let key_path = options.key.unwrap_or_else(|| DEFAULT_KEY_PATH.into());
    let mut state = Vec::with_capacity(4096);
    if let Err(error) = std::io::stdin().lock().read_to_end(&mut state) {
        eprintln!("bulkhead-guard: refusing container: cannot read the OCI state: {error}");
        return ExitCode::from(REFUSED);
    }
    match check(&state, &key_path, options.strict) {
        Decision::Allow(_) => ExitCode::SUCCESS,
        Decision::Refuse(refusal) => {
            eprintln!("bulkhead-guard: {refusal}");
            ExitCode::from(REFUSED)
        }
    }
}

fn init_key(args: &[String]) -> Result<(), String> {
    let options = parse(args, &[])?;
    let path = match options.positional.as_slice() {
        [] => PathBuf::from(DEFAULT_KEY_PATH),
        [path] => PathBuf::from(path),
        _ => return Err(format!("init-key takes one PATH\n{USAGE}")),
    };
    GuardKey::generate(&path).map_err(|e| e.to_string())?;
    eprintln!("bulkhead-guard: wrote a new key to {}", path.display());
    Ok(())
}

fn print_base_spec(args: &[String]) -> Result<(), String> {
    let options = parse(args, &["--key", "--hook-path", "--strict", "--timeout"])?;
    if !options.positional.is_empty() {
        return Err(format!("print-base-spec takes no arguments\n{USAGE}"));
    }
    let hook_path = match options.hook_path {
        Some(path) => path,
        None => std::env::current_exe()
            .map_err(|e| format!("cannot find this binary's path (use --hook-path): {e}"))?,
    };
    if !hook_path.is_absolute() {
        return Err(format!(
            "--hook-path must be absolute: {}",
            hook_path.display()
        ));
    }
    let mut config = HookConfig::new(hook_path);
    if let Some(key) = options.key {
        config.key_path = key;
    }
    config.strict = options.strict;
    if let Some(timeout) = options.timeout {
        config.timeout_seconds = timeout;
    }
    let spec = base_spec(&config);
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &spec)
        .map_err(|e| e.to_string())
        .and_then(|()| writeln!(out).map_err(|e| e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_take_separate_or_inline_values() {
        let options = parse(
            &args(&[
                "--key",
                "/k",
                "--hook-path=/h",
                "--strict",
                "--timeout",
                "3",
            ]),
            &["--key", "--hook-path", "--strict", "--timeout"],
        )
        .unwrap();
        assert_eq!(options.key.unwrap(), PathBuf::from("/k"));
        assert_eq!(options.hook_path.unwrap(), PathBuf::from("/h"));
        assert!(options.strict);
        assert_eq!(options.timeout, Some(3));
        assert!(options.positional.is_empty());
    }

    #[test]
    fn options_a_command_does_not_take_are_refused() {
        let error = parse(&args(&["--hook-path", "/h"]), &["--key", "--strict"]).unwrap_err();
        assert!(error.starts_with("unknown option --hook-path"), "{error}");
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&args(&["--key"]), &["--key"]).is_err());
        for timeout in ["0", "-1", "soon"] {
            assert!(parse(&args(&["--timeout", timeout]), &["--timeout"]).is_err());
        }
    }

    #[test]
    fn positional_arguments_are_kept() {
        let options = parse(&args(&["/etc/bulkhead/guard.key"]), &[]).unwrap();
        assert_eq!(options.positional, ["/etc/bulkhead/guard.key"]);
    }
}
