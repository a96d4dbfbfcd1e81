//! `kpl agent`: the Kinesis Agent done right (see the `kpl-agent` crate).

use std::path::PathBuf;

use kpl_agent::config::{AgentConfig, load};
use kpl_agent::shell::{
    CheckpointStore, RunControls, aws_backend, cloudwatch_uploader, default_checkpoint_file, run_with,
    sdk_config, stop_on_signals,
};

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  kpl agent --config /etc/aws-kinesis-agent/agent.json
  kpl agent --config agent.json --check          # validate, print the flows, exit
  RUST_LOG=kpl_agent=debug kpl agent --config agent.json

agent.json is the Kinesis Agent's format (comments allowed); files in agent.d/ beside it add flows.
SIGTERM or SIGINT stops gracefully within shutdownTimeoutMillis; a second one stops at once.
Checkpoints survive a kill -9: lines are sent again only from what was in flight.";

/// Options of `kpl agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct AgentArgs {
    /// The agent configuration (the Kinesis Agent's agent.json format).
    #[arg(long, value_name = "FILE", default_value = "/etc/aws-kinesis-agent/agent.json")]
    config: PathBuf,
    /// Unknown keys and broken agent.d files are errors, not warnings.
    #[arg(long)]
    strict: bool,
    /// The checkpoint database [default: checkpointFile, else /var/lib/kpl-agent/checkpoints.redb].
    #[arg(long, value_name = "FILE")]
    checkpoint_file: Option<PathBuf>,
    /// Check the configuration, print the flows, and exit.
    #[arg(long)]
    check: bool,
}

/// Runs the agent until SIGTERM or SIGINT. Logs go through the subscriber `main` installed (info by
/// default for the agent).
pub async fn run(args: AgentArgs) -> Result<(), CliError> {
    let loaded = load(&args.config, args.strict)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let config: AgentConfig = loaded.config;
    let path = args
        .checkpoint_file
        .or_else(|| config.checkpoint_file.clone())
        .unwrap_or_else(default_checkpoint_file);
    if args.check {
        for flow in &config.flows {
            println!("{}", flow.id());
        }
        println!("checkpoints: {}", path.display());
        return Ok(());
    }
    let store = CheckpointStore::open(&path).map_err(kpl_agent::shell::AgentError::from)?;
    let sdk = sdk_config(&config).await?;
    let backend = aws_backend(&config, &sdk);
    let mut controls = RunControls::new(stop_on_signals()?);
    controls.cloudwatch = cloudwatch_uploader(&config, &sdk);
    let summary = run_with(config, backend, store, controls).await?;
    tracing::info!(?summary, "done");
    Ok(())
}
