//! `bulkhead plugin test <plugin.wasm> <cases...>`: a line per case, then exactly
//! `N passed, M failed`; exit status 1 on any failed case, load error or malformed case file.

use std::path::PathBuf;

use anyhow::Context;
use bulkhead_sdk_testing::cases::run_case_files;

use super::LimitArgs;

/// Arguments of `bulkhead plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`, built for wasm32-wasip2).
    pub plugin: PathBuf,
    /// JSON case files (see the plugin author guide for the format).
    #[arg(required = true)]
    pub cases: Vec<PathBuf>,
    /// Limits and config for the plugin.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs the cases. Returns an error for load problems; exits the process with status 1 after
/// printing the summary when a case fails, so the summary stays the last line.
pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let limits = args.limits.limits();
    let runtime = super::runtime(&limits)?;
    let report = run_case_files(&runtime, &args.plugin, &args.cases, &limits, |outcome| {
        println!("{}", outcome.line());
    })
    .with_context(|| format!("while testing {}", args.plugin.display()))?;
    println!("{}", report.summary());
    if report.failed() > 0 {
        std::process::exit(1);
    }
    Ok(())
}
