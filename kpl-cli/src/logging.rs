//! The producer's `tracing` events on standard error. kpl reports failed records itself, so by default only
//! errors are logged (a request refused for good: access denied, no such stream); `-v` adds the producer's
//! warnings and info (retried request failures, expiries, shard maps, throttling summaries) and the AWS
//! SDK's warnings, `-vv` debug, `-vvv` trace of everything; `-q` logs nothing.
//! `RUST_LOG`, when set, wins (tracing-subscriber's `EnvFilter` syntax, e.g. `RUST_LOG=kpl_tokio=debug`).

use clap::ArgAction;
use tracing_subscriber::EnvFilter;

/// `-v` / `-q`, accepted before or after the subcommand.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Verbosity {
    /// More log output on standard error: -v the producer's warnings and info, -vv debug, -vvv trace
    /// [default: errors only].
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    /// No log output on standard error (records that fail are still reported).
    #[arg(short, long, action = ArgAction::Count, global = true, conflicts_with = "verbose")]
    quiet: u8,
}

impl Verbosity {
    /// The filter the flags ask for: the producer's crates at the level asked, others one level below;
    /// `default` without flags.
    fn filter(self, default: &'static str) -> &'static str {
        match (self.verbose, self.quiet) {
            (0, 0) => default,
            (0, _) => "off",
            (1, _) => "warn,kpl_tokio=info,kpl_core=info",
            (2, _) => "info,kpl_tokio=debug,kpl_core=debug",
            _ => "trace",
        }
    }
}

/// Installs the subscriber: `RUST_LOG` if it is set, else the flags' level, else `default` (`"error"` for
/// the commands that report failed records themselves, `"info"` for the agent, a daemon whose progress lines
/// are its report).
pub fn install(verbosity: Verbosity, default: &'static str) {
    let filter = match std::env::var_os(EnvFilter::DEFAULT_ENV) {
        Some(_) => EnvFilter::from_default_env(),
        None => EnvFilter::new(verbosity.filter(default)),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Fails only if a subscriber is already installed, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_choose_the_level() {
        let filter = |verbose, quiet| Verbosity { verbose, quiet }.filter("error");
        assert_eq!(filter(0, 0), "error");
        assert_eq!(filter(1, 0), "warn,kpl_tokio=info,kpl_core=info");
        assert_eq!(filter(2, 0), "info,kpl_tokio=debug,kpl_core=debug");
        assert_eq!(
            [filter(3, 0), filter(9, 0), filter(0, 1), filter(0, 2)],
            ["trace", "trace", "off", "off"]
        );
        // The agent's default is info; -q still silences it.
        let agent = |verbose, quiet| Verbosity { verbose, quiet }.filter("info");
        assert_eq!([agent(0, 0), agent(0, 1)], ["info", "off"]);
        for verbosity in [(0, 0), (1, 0), (2, 0), (0, 1), (0, 2)] {
            assert!(EnvFilter::try_new(filter(verbosity.0, verbosity.1)).is_ok());
        }
    }
}
