//! Every way a command fails; `main` prints the message as one line, `kpl: <message>`.

use std::io;
use std::path::PathBuf;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// A file named on the command line could not be read.
    #[error("cannot read {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A file named on the command line could not be written.
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The stream cannot be written: no credentials, no answer, no such stream.
    #[error("cannot write to stream {stream}: {reason}")]
    StreamCheck {
        /// The stream's name or ARN.
        stream: String,
        /// Why, from `ListShards`.
        reason: String,
    },
    /// Standard input could not be read.
    #[error("cannot read standard input: {0}")]
    Stdin(io::Error),
    /// Standard output could not be written.
    #[error("cannot write standard output: {0}")]
    Stdout(io::Error),
    /// A KPL properties file holds an invalid setting.
    #[error("{}: {source}", path.display())]
    Properties {
        /// The file.
        path: PathBuf,
        /// The setting and what is wrong with it.
        source: kpl_core::ConfigError,
    },
    /// A KPL properties file's connection settings (endpoint, proxy, certificates, ...) cannot be applied.
    #[error("{}: {source}", path.display())]
    ConnectionSettings {
        /// The file.
        path: PathBuf,
        /// The setting and what is wrong with it.
        source: kpl_tokio::ConnectionSettingsError,
    },
    /// The producer settings the options make are invalid.
    #[error("invalid producer settings: {0}")]
    Config(#[from] kpl_core::ConfigError),
    /// The simulated Kinesis rejected its configuration.
    #[error("mock Kinesis: {0}")]
    MockConfig(#[from] kpl_mock_backend::ConfigError),
    /// The simulated Kinesis refused to create the stream.
    #[error("mock Kinesis: {0}")]
    Mock(#[from] kpl_mock_backend::MockError),
    /// The producer could not start.
    #[error(transparent)]
    Spawn(#[from] kpl_tokio::SpawnError),
    /// The producer did not shut down cleanly.
    #[error(transparent)]
    Shutdown(#[from] kpl_tokio::ShutdownError),
    /// The producer refused a benchmark record.
    #[error("the producer refused a record: {0}")]
    Put(#[from] kpl_tokio::PutError),
    /// A task of ours panicked or was cancelled.
    #[error("internal error: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// A latency histogram could not be created.
    #[error("latency histogram: {0}")]
    Histogram(#[from] hdrhistogram::CreationError),
    /// The `--plot` chart could not be drawn.
    #[error("cannot draw {}: {message}", path.display())]
    Plot {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No AWS region was given or configured.
    #[error("no AWS region: pass --region, set AWS_REGION, set Region in --config, or configure a profile")]
    NoRegion,
    /// A length-delimited frame ends before its declared length.
    #[error("record {record}: the input ends inside the record ({got} of {expected} bytes)")]
    Truncated {
        /// The record's number (from 1).
        record: u64,
        /// Bytes read.
        got: u64,
        /// Bytes the frame declared (the 4 bytes of the length prefix, when that is what is cut).
        expected: u64,
    },
    /// Records were not written (reported grouped by error before this).
    #[error("{} of {} records failed", crate::failures::thousands(*failed), crate::failures::thousands(*total))]
    RecordsFailed {
        /// Records not written.
        failed: u64,
        /// Records read.
        total: u64,
    },
    /// The input of `deagg` is not `get-records` JSON.
    #[error("the input is not get-records JSON ({0}); use --raw for the bytes of one record")]
    Json(#[from] serde_json::Error),
    /// The input of `deagg` cannot be read as Kinesis records.
    #[error(transparent)]
    Input(#[from] crate::deagg::InputError),
    /// A record's `Data` is not base64.
    #[error("record {sequence_number}: Data is not base64: {source}")]
    Base64 {
        /// The record's sequence number.
        sequence_number: String,
        /// What is wrong.
        source: base64::DecodeError,
    },
    /// A user record's data is not UTF-8 text, under `--utf8`.
    #[error(
        "record {sequence_number} sub-record {sub_sequence_number}: data is not UTF-8 (leave out --utf8 for base64)"
    )]
    NotUtf8 {
        /// The Kinesis record's sequence number.
        sequence_number: String,
        /// The user record's position in it.
        sub_sequence_number: u64,
    },
    /// Kinesis records could not be deaggregated (each was reported on its own line).
    #[error("{0} Kinesis records could not be deaggregated")]
    Undecodable(u64),
    /// `kpl agent`: the configuration is invalid.
    #[error(transparent)]
    AgentConfig(#[from] kpl_agent::config::ConfigError),
    /// `kpl agent` could not run.
    #[error(transparent)]
    Agent(#[from] kpl_agent::shell::AgentError),
    /// `kpl agent status`: no status to show.
    #[error(transparent)]
    AgentStatus(#[from] kpl_agent::shell::StatusError),
    /// `kpl agent`: no region, or no signal handlers.
    #[error(transparent)]
    AgentSetup(#[from] kpl_agent::shell::SetupError),
}
