//! `kpl`: the Kinesis producer from the command line.
//!
//! - `kpl bench`: the producer against the in-process simulated Kinesis, with a throughput and latency
//!   summary;
//! - `kpl produce`: standard input, one record per line (or length-prefixed), into a real stream;
//! - `kpl deagg`: the user records inside Kinesis records (`aws kinesis get-records` output, Lambda Kinesis
//!   events, one raw record, or a stream read directly with `--stream`);
//! - `kpl agent`: log files into streams from the Kinesis Agent's `agent.json` (and `check`, `status`).
//!
//! Every error is one line on standard error, `kpl: <message>`, with exit code 1; usage errors exit with 2.
#![forbid(unsafe_code)]

mod agent;
mod bench;
mod deagg;
mod error;
mod failures;
mod input;
mod keys;
mod logging;
mod produce;
mod progress;
mod properties;
mod rng;

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Parser, Subcommand};

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  kpl bench                                        # 10 s against the in-process mock Kinesis
  kpl bench --keys hot --shard-limits on --json    # one hot partition key, machine-readable summary
  seq 1000 | kpl produce --stream orders --region us-east-1
  aws kinesis get-records --shard-iterator \"$IT\" | kpl deagg --utf8";

/// The Kinesis Producer Library from the command line.
#[derive(Debug, Parser)]
#[command(name = "kpl", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    verbosity: logging::Verbosity,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmark the producer against the in-process simulated Kinesis (no network, no AWS account).
    Bench(bench::BenchArgs),
    /// Put records read from standard input into a Kinesis stream (AWS or a local server).
    Produce(produce::ProduceArgs),
    /// Print the user records inside Kinesis records, one JSON object per line.
    Deagg(deagg::DeaggArgs),
    /// Tail log files into streams, as the Kinesis Agent does (its agent.json), losing nothing.
    Agent(agent::AgentArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    let default_level = if matches!(cli.command, Command::Agent(_)) { "info" } else { "error" };
    logging::install(cli.verbosity, default_level);
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kpl: {}", one_line(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), CliError> {
    match command {
        Command::Bench(args) => runtime()?.block_on(bench::run(args)),
        Command::Produce(args) => runtime()?.block_on(produce::run(args)),
        Command::Deagg(args) => deagg::run(&args),
        Command::Agent(args) => runtime()?.block_on(agent::run(args)),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(CliError::Runtime)
}

/// Help and version go out as clap prints them; a usage error becomes one line, with clap's exit code (2).
fn usage_error(error: &clap::Error) -> ExitCode {
    let code = u8::try_from(error.exit_code()).unwrap_or(2);
    match error.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // Nothing better to do if standard output or error is gone.
            let _ = error.print();
        }
        _ => {
            // clap's message is its first paragraph (a list of missing arguments spans lines); usage and
            // tips follow.
            let rendered = error.to_string();
            let message = one_line(rendered.split("\n\n").next().unwrap_or_default());
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("kpl: {message} (see --help)");
        }
    }
    ExitCode::from(code)
}

/// `message` on one line: line breaks of a wrapped error become spaces.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn messages_are_flattened_to_one_line() {
        assert_eq!(one_line("a\n  b\tc "), "a b c");
    }
}
