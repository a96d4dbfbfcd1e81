//! `kpl agent`: the Kinesis Agent done right (see the `kpl-agent` crate).

use std::path::{Path, PathBuf};

use kpl_agent::config::{AgentConfig, Loaded, Origin, Setting, load};
use kpl_agent::shell::{
    CheckpointStore, RunControls, aws_backend, cloudwatch_uploader, default_checkpoint_file, read_status,
    run_with, sdk_config, status_file, stop_on_signals,
};

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  kpl agent --config /etc/aws-kinesis-agent/agent.json
  kpl agent check --config agent.json      # validate, print every key's value and where it came from
  kpl agent status --config agent.json     # per file: read offset, checkpoint, records in flight
  RUST_LOG=kpl_agent=debug kpl agent --config agent.json

agent.json is the Kinesis Agent's format (comments allowed); files in agent.d/ beside it add flows.
SIGTERM or SIGINT stops gracefully within shutdownTimeoutMillis; a second one stops at once.
SIGHUP reloads agent.json and agent.d/: flows added, removed or changed; files keep their checkpoints.
Checkpoints survive a kill -9: lines are sent again only from what was in flight.";

/// Options of `kpl agent`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct AgentArgs {
    #[command(subcommand)]
    command: Option<AgentCommand>,
    /// The agent configuration (the Kinesis Agent's agent.json format).
    #[arg(long, global = true, value_name = "FILE", default_value = "/etc/aws-kinesis-agent/agent.json")]
    config: PathBuf,
    /// Unknown keys and broken agent.d files are errors, not warnings.
    #[arg(long, global = true)]
    strict: bool,
    /// The checkpoint database [default: checkpointFile, else /var/lib/kpl-agent/checkpoints.redb].
    #[arg(long, global = true, value_name = "FILE")]
    checkpoint_file: Option<PathBuf>,
    /// The same as `kpl agent check`.
    #[arg(long, hide = true)]
    check: bool,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    /// Run the agent (the default).
    Run,
    /// Validate the configuration and print it: every key, its effective value and where it came from
    /// (default, agent.json, `agent.d/<file>`, command line), processors included.
    Check,
    /// Show, per file, the read offset, the checkpoint and the records in flight of the agent running
    /// with this configuration (its status file), or the stored checkpoints if none runs.
    Status,
}

/// Runs the subcommand: the agent (until SIGTERM or SIGINT; logs go through the subscriber `main`
/// installed, info by default), `check` or `status`.
pub async fn run(args: AgentArgs) -> Result<(), CliError> {
    let loaded = load(&args.config, args.strict)?;
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    let (path, origin) = match (&args.checkpoint_file, &loaded.config.checkpoint_file) {
        (Some(path), _) => (path.clone(), Origin::CommandLine),
        (None, Some(path)) => (path.clone(), Origin::File(args.config.display().to_string())),
        (None, None) => (default_checkpoint_file(), Origin::Default),
    };
    match args.command {
        _ if args.check => check(&args.config, &loaded, &path, origin),
        Some(AgentCommand::Check) => check(&args.config, &loaded, &path, origin),
        Some(AgentCommand::Status) => status(&path),
        Some(AgentCommand::Run) | None => run_agent(args.config, loaded.config, &path).await,
    }
}

async fn run_agent(config_path: PathBuf, config: AgentConfig, path: &Path) -> Result<(), CliError> {
    let store = CheckpointStore::open(path).map_err(kpl_agent::shell::AgentError::from)?;
    let sdk = sdk_config(&config).await?;
    let backend = aws_backend(&config, &sdk);
    let mut controls = RunControls::new(stop_on_signals()?);
    controls.cloudwatch = cloudwatch_uploader(&config, &sdk);
    controls.status_file = Some(status_file(path));
    controls.reload = Some(kpl_agent::shell::reload_on_sighup(config_path, false)?);
    let summary = run_with(config, backend, store, controls).await?;
    tracing::info!(
        read = summary.records_read,
        delivered = summary.records_delivered,
        failures = summary.delivery_failures,
        refused = summary.records_refused,
        unconverted = summary.records_unconverted,
        drained = summary.drained,
        "done"
    );
    Ok(())
}

/// `kpl agent check`: the effective configuration on standard output, one key a line:
/// `key = value  # origin (note)`, top-level keys first, then each flow under its id.
fn check(config: &Path, loaded: &Loaded, checkpoint_file: &Path, origin: Origin) -> Result<(), CliError> {
    let mut out = String::new();
    out.push_str(&format!("# kpl agent: the effective configuration of {}\n", config.display()));
    let checkpoint = Setting {
        scope: String::new(),
        key: "checkpointFile".into(),
        value: format!("{:?}", checkpoint_file.display().to_string()),
        origin,
        note: None,
    };
    let top = loaded.config.effective.iter().filter(|s| s.key != "checkpointFile");
    for setting in std::iter::once(&checkpoint).chain(top) {
        out.push_str(&line("", setting));
    }
    for flow in &loaded.config.flows {
        out.push_str(&format!("\nflow {}\n", flow.id()));
        for setting in &flow.effective {
            // `flows[0] dataProcessingOptions[1]` → `dataProcessingOptions[1].`
            let within =
                setting.scope.split_once(' ').map(|(_, rest)| format!("{rest}.")).unwrap_or_default();
            out.push_str(&line(&within, setting));
        }
    }
    let count = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    out.push_str(&format!(
        "\n# OK: {}, {}\n",
        count(loaded.config.flows.len(), "flow"),
        count(loaded.warnings.len(), "warning")
    ));
    print!("{out}");
    Ok(())
}

fn line(prefix: &str, setting: &Setting) -> String {
    let indent = if setting.scope.is_empty() { "" } else { "  " };
    let note = setting.note.as_ref().map(|note| format!(" ({note})")).unwrap_or_default();
    format!("{indent}{prefix}{} = {}  # {}{note}\n", setting.key, setting.value, setting.origin)
}

/// `kpl agent status`: the table of [`kpl_agent::shell::AgentStatus`].
fn status(checkpoint_file: &Path) -> Result<(), CliError> {
    let status = read_status(checkpoint_file)?;
    print!("{status}");
    Ok(())
}
