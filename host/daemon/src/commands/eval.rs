//! `bulkhead eval --plugin P.wasm [--plugin Q.wasm ...] --container view.json`: one container
//! view in, the decision out as JSON — for debugging policy without a cluster.
//!
//! With one plugin it prints that plugin's decision. With several it runs them in order and
//! prints each decision and the merged result, merged by the same rules the daemon uses.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use bulkhead_core::view::ContainerView;

use super::LimitArgs;

/// Arguments of `bulkhead eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// A plugin component; repeat for a chain, in order.
    #[arg(long = "plugin", value_name = "WASM", required = true)]
    pub plugins: Vec<PathBuf>,
    /// The container view as JSON (`-` reads standard input).
    #[arg(long, value_name = "FILE")]
    pub container: PathBuf,
    /// Limits and config for the plugins.
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Runs the plugins over the view and prints JSON.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let text = if args.container.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("while reading the view from stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.container)
            .with_context(|| format!("while reading {}", args.container.display()))?
    };
    let view: ContainerView = serde_json::from_str(&text).with_context(|| {
        format!(
            "while parsing the container view {}",
            args.container.display()
        )
    })?;

    let limits = args.limits.limits();
    let runtime = super::runtime(&limits)?;
    let mut decisions = Vec::new();
    for path in &args.plugins {
        let plugin = runtime.load(path, limits.clone())?;
        let decision = plugin.check_container(&view)?;
        decisions.push((plugin.name().to_owned(), decision));
    }
    let output = match decisions.as_slice() {
        [(_, only)] => serde_json::to_value(only)?,
        many => {
            let merged =
                bulkhead_core::merge::merge(many.iter().map(|(name, d)| (name.as_str(), d)));
            serde_json::json!({
                "plugins": many
                    .iter()
                    .map(|(name, d)| serde_json::json!({ "plugin": name, "decision": d }))
                    .collect::<Vec<_>>(),
                "merged": merged,
            })
        }
    };
    println!("{}", serde_json::to_string_pretty(&output)?);
    Ok(())
}
