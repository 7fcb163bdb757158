//! `bulkhead plugin test <plugin.wasm> <cases...>`: a line per case, then exactly
//! `N passed, M failed`; or, with `--format junit`, JUnit XML for CI test reporters. The exit
//! status is 1 on any failed case, load error or malformed (or empty) case file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use bulkhead_sdk_testing::cases::run_case_files;

use super::{CacheArgs, LimitArgs};

/// Arguments of `bulkhead plugin test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// The plugin component (`.wasm`, built for wasm32-wasip2).
    pub plugin: PathBuf,
    /// JSON case files (see the plugin author guide for the format).
    #[arg(required = true)]
    pub cases: Vec<PathBuf>,
    /// Output: `text` (a line per case, then `N passed, M failed`) or `junit` (JUnit XML on
    /// standard output, the summary on standard error).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Limits and config for the plugin.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// The compile cache.
    #[command(flatten)]
    pub cache: CacheArgs,
}

/// How `bulkhead plugin test` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A line per case, then `N passed, M failed` as the last line.
    Text,
    /// A JUnit XML document: one testsuite named after the plugin file, one testcase per case.
    Junit,
}

/// Runs the cases. Returns an error for load problems; exits the process with status 1 after
/// printing the report when a case fails, so the summary stays the last line.
pub fn run(args: TestArgs) -> anyhow::Result<()> {
    let limits = args.limits.limits();
    let runtime = super::runtime_with_cache(&limits, Some(&args.cache))?;
    let text = args.format == Format::Text;
    let report = run_case_files(&runtime, &args.plugin, &args.cases, &limits, |outcome| {
        if text {
            println!("{}", outcome.line());
        }
    })
    .with_context(|| format!("while testing {}", args.plugin.display()))?;
    match args.format {
        Format::Text => println!("{}", report.summary()),
        Format::Junit => {
            print!("{}", report.junit(&args.plugin.display().to_string()));
            eprintln!("{}", report.summary());
        }
    }
    if report.failed() > 0 {
        // `exit` skips destructors: flush what the report printed first.
        let _ = std::io::stdout().flush();
        std::process::exit(1);
    }
    Ok(())
}
