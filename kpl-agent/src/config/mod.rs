//! `agent.json`: the Kinesis Agent's configuration read unchanged (comments allowed), plus the flows of
//! the files in an `agent.d/` directory beside it, plus our own keys where the agent has none.
//!
//! Keys, defaults and ranges are the agent's (`AgentConfiguration.java`, `FileFlow.java`; see
//! `shared/reference/kinesis-agent.md` (a)). Where we differ, the docs of [`AgentConfig`] and
//! [`FlowConfig`] say so. Unknown keys are warned about (an error with `strict`); agent keys that have no
//! effect here are warned about by name with the reason; keys whose meaning we cannot honour (Java
//! credential providers, `fileFooterPattern`) are errors, never silently ignored.

mod fields;
mod flow;
mod processing;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kpl_tokio::ProducerConfig;
use serde_json::Value;

use crate::core::metrics::NAMESPACE;
use fields::Fields;
pub use flow::{Destination, FlowConfig, FlowDiff, MAX_PARTITION_KEY_LEN, PartitionKeyOption, diff_flows};

/// A configuration that cannot be used; each names the file, the place and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not JSON (comments allowed).
    #[error("{context}: not valid JSON: {message}")]
    Json {
        /// The file.
        context: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A required key is missing.
    #[error("{context}: {key} is required")]
    Missing {
        /// Where.
        context: String,
        /// The key.
        key: String,
    },
    /// A value of the wrong type or out of range.
    #[error("{context}: {key} = {value}: expected {expected}")]
    Invalid {
        /// Where.
        context: String,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// A key whose meaning kpl agent cannot honour.
    #[error("{context}: {key} is not supported: {why}")]
    Unsupported {
        /// Where.
        context: String,
        /// The key.
        key: String,
        /// Why, and what to do instead.
        why: String,
    },
    /// A processing option (`dataProcessingOptions`) that cannot work.
    #[error("{context}: {why}")]
    Processing {
        /// Where: the flow and the option's index.
        context: String,
        /// Why.
        why: String,
    },
    /// Unknown keys, with `--strict`.
    #[error("{context}: unknown keys: {}", keys.join(", "))]
    Unknown {
        /// Where.
        context: String,
        /// The keys.
        keys: Vec<String>,
    },
    /// No flow at all.
    #[error("no flows: agent.json (or agent.d/) must define at least one flow")]
    NoFlows,
    /// Two flows with the same id (stream and pattern).
    #[error("two flows have the id {0}")]
    DuplicateFlow(String),
    /// The producer settings (`producer`) are invalid.
    #[error("producer: {0}")]
    Producer(#[from] kpl_core::ConfigError),
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The flows: which files go to which stream.
    pub flows: Vec<FlowConfig>,
    /// `checkpointFile`: where checkpoints are stored. Our store is a redb database, not the agent's
    /// SQLite file, and its default is not on tmpfs (see [`crate::shell::default_checkpoint_file`]).
    pub checkpoint_file: Option<PathBuf>,
    /// `checkpointTimeToLiveDays` (default 7, 1..=3650): checkpoints not updated for this long are
    /// deleted at startup.
    pub checkpoint_ttl: Duration,
    /// `kinesis.endpoint`: the Kinesis endpoint (a URL, or a host name taken as `https://`).
    pub kinesis_endpoint: Option<String>,
    /// `firehose.endpoint`: the Firehose endpoint of `deliveryStream` flows (a URL, or a host name taken
    /// as `https://`). Their region is `kinesis.region` (the agent has no `firehose.region`).
    pub firehose_endpoint: Option<String>,
    /// `kinesis.region` (default: the AWS SDK's region chain).
    pub kinesis_region: Option<String>,
    /// `awsAccessKeyId` and `awsSecretAccessKey`: static credentials, used instead of the SDK's chain.
    pub static_credentials: Option<(String, String)>,
    /// `assumeRoleARN` and `assumeRoleExternalId`: the role assumed with the credentials above (static,
    /// else the SDK's chain), through STS `AssumeRole` with the session name `AWSKinesisAgent` for an
    /// hour, renewed before it expires, as the agent does.
    pub assume_role: Option<AssumeRole>,
    /// `sts.endpoint`: the STS endpoint for `assumeRoleARN` (a URL, or a host name taken as `https://`).
    pub sts_endpoint: Option<String>,
    /// The `cloudwatch.*` keys: the agent's metrics.
    pub cloudwatch: CloudWatchConfig,
    /// `shutdownTimeoutMillis` (default 10000): how long a stop may take to deliver what was read.
    pub shutdown_timeout: Duration,
    /// `log.statusReportingPeriodSeconds` (default 30, 1..=86400): how often progress is logged.
    pub status_reporting_period: Duration,
    /// Ours, `memoryBudgetBytes` (default 64 MiB, at least 4 MiB): the bytes read and not yet confirmed
    /// written, plus [`RECORD_OVERHEAD`](crate::shell::RECORD_OVERHEAD) per record in flight, for all
    /// flows together (framing, producer, retries). When it is reached, reading pauses.
    pub memory_budget_bytes: u64,
    /// Ours, `maxOpenFiles` (default 512, at least 1): the most files open at once, shared equally by
    /// the flows (each gets at least one). A file beyond it waits for a descriptor and loses nothing;
    /// files read to their end give theirs up first (see [`crate::core::tailer`], "Open files"). The
    /// default stays well under the usual `ulimit -n` of 1,024, leaving room for connections; the
    /// Kinesis Agent keeps one open file per flow.
    pub max_open_files: usize,
    /// Ours, `checkpointIntervalMillis` (default 1000, 10..=60000): how often checkpoints are committed.
    pub checkpoint_interval: Duration,
    /// Every top-level key read, with its effective value and where it came from (flows' keys are in
    /// [`FlowConfig::effective`]).
    pub effective: Vec<Setting>,
    /// Ours, `producer`: the KPL's settings as an object of `.properties` keys
    /// (`{"AggregationEnabled": true, "RateLimit": 100}`). Unlike the KPL, `RecordTtl` defaults to
    /// "never" (the agent retries until written, the file being the buffer) and `ShardMapWait` to `Hold`
    /// (records wait for the shard map to be aggregated: a backlog read at startup would otherwise go out
    /// unaggregated; a stream whose shards cannot be listed then stalls, with a warning).
    pub producer: ProducerConfig,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Not given: the default.
    Default,
    /// Given in this file (`agent.json`, or a file of `agent.d/`).
    File(String),
    /// Given on the command line (it overrides the file).
    CommandLine,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(file) => f.write_str(file),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// One key of the effective configuration, as `kpl agent check` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// Where in its file: empty for the top level, `flows[1]`, `flows[1] dataProcessingOptions[0]`.
    pub scope: String,
    /// The key, as in `agent.json` (`producer.RateLimit` for the KPL settings).
    pub key: String,
    /// The effective value: JSON-like (strings quoted), `(unset)` for an optional key not given.
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
    /// What else to know: no effect (and why), unknown, read case-insensitively.
    pub note: Option<String>,
}

/// A role to assume (`assumeRoleARN`, `assumeRoleExternalId`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// The role's ARN.
    pub arn: String,
    /// The external id the role's trust policy asks for, if any.
    pub external_id: Option<String>,
}

/// The `cloudwatch.*` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudWatchConfig {
    /// `cloudwatch.emitMetrics` (default true, as the agent's): upload the agent's metrics (see
    /// [`crate::core::metrics`]); needs `cloudwatch:PutMetricData`. Failed uploads are logged and their
    /// data dropped; records are never held back by them.
    pub emit_metrics: bool,
    /// `cloudwatch.endpoint`: the CloudWatch endpoint (a URL, or a host name taken as `https://`); the
    /// region and credentials are the ones Kinesis uses.
    pub endpoint: Option<String>,
    /// `cloudwatch.namespace` (default `AWSKinesisAgent`).
    pub namespace: String,
    /// `cloudwatch.metricsBufferTimeMillis` (default 30000, 100..=3600000): how often metrics are
    /// uploaded, one batch each time (counters as their increase since the previous upload).
    pub upload_interval: Duration,
}

/// A configuration and the warnings about it.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: AgentConfig,
    /// Warnings: unknown keys, keys without effect, agent.d files skipped.
    pub warnings: Vec<String>,
}

/// `RecordTtl` for agent flows: the KPL's maximum (Java's `Long.MAX_VALUE` milliseconds), i.e. never.
const RECORD_TTL_NEVER: &str = "9223372036854775807";

/// Reads `path` and the files of `agent.d/` beside it (each adds flows; one that does not parse is skipped
/// with a warning, as the agent does, or is an error with `strict`).
pub fn load(path: &Path, strict: bool) -> Result<Loaded, ConfigError> {
    let text = read(path)?;
    let mut extra = Vec::new();
    let dir = path.parent().unwrap_or(Path::new(".")).join("agent.d");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            extra.push((file.display().to_string(), read(&file)?));
        }
    }
    parse(&path.display().to_string(), &text, &extra, strict)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })
}

/// JSON with `//`, `/* */` and `#` comments, as Jackson's `ALLOW_COMMENTS` (and YAML-style) reads it.
fn json(name: &str, text: &str) -> Result<Value, ConfigError> {
    serde_json::from_reader(json_comments::StripComments::new(text.as_bytes()))
        .map_err(|error| ConfigError::Json { context: name.into(), message: error.to_string() })
}

/// Parses `agent.json`'s text (`name` is for messages) and the `(name, text)` of agent.d files.
pub fn parse(
    name: &str,
    text: &str,
    agent_d: &[(String, String)],
    strict: bool,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let mut agent_d_settings = Vec::new();
    let mut top = Fields::new(json(name, text)?, name, String::new())?;
    let mut flows = flow::flows(&mut top, &mut warnings, strict)?;
    for (file, text) in agent_d {
        let parsed = json(file, text).and_then(|value| Fields::new(value, file, String::new()));
        let mut extra = match parsed {
            Ok(extra) => extra,
            Err(error) if !strict => {
                warnings.push(format!("{error}: file skipped (as the Kinesis Agent does)"));
                continue;
            }
            Err(error) => return Err(error),
        };
        flows.extend(flow::flows(&mut extra, &mut warnings, strict)?);
        let ignored = extra.no_effect_all("only flows are read from agent.d files", &mut warnings);
        agent_d_settings.extend(ignored);
    }
    if flows.is_empty() {
        return Err(ConfigError::NoFlows);
    }
    let mut ids: Vec<String> = flows.iter().map(FlowConfig::id).collect();
    ids.sort();
    if let Some(pair) = ids.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(ConfigError::DuplicateFlow(pair[0].clone()));
    }
    let mut config = top_level(&mut top, flows, &mut warnings)?;
    config.effective = top.finish(strict, &mut warnings)?;
    config.effective.extend(agent_d_settings);
    let limit = config.producer.max_record_size();
    for flow in config.flows.iter().filter(|flow| matches!(flow.destination, Destination::KinesisStream(_))) {
        let needed = flow.framing.max_record_size as u64 + flow::MAX_PARTITION_KEY_LEN as u64;
        if needed > limit {
            return Err(ConfigError::Invalid {
                context: format!("flow {}", flow.id()),
                key: "maxRecordSizeBytes".into(),
                value: flow.framing.max_record_size.to_string(),
                expected: format!(
                    "at most the producer's MaxUserRecordSize ({limit}) minus 256 for the partition key"
                ),
            });
        }
    }
    Ok(Loaded { config, warnings })
}

fn top_level(
    top: &mut Fields,
    flows: Vec<FlowConfig>,
    warnings: &mut Vec<String>,
) -> Result<AgentConfig, ConfigError> {
    top.unsupported(
        &["userDefinedCredentialsProvider.classname"],
        "use the AWS SDK's credential chain (AWS_PROFILE with role_arn, AWS_ROLE_ARN, instance roles)",
    )?;
    top.no_effect(&["userDefinedCredentialsProvider.location"], "no Java credential providers", warnings);
    top.no_effect(
        &["cloudwatch.metricsQueueSize", "cloudwatch.tagInstance", "log.emitMetrics", "log.emitInternalMetrics"],
        "metrics are uploaded as one batch per cloudwatch.metricsBufferTimeMillis and logged in the progress lines",
        warnings,
    );
    top.no_effect(
        &["checkpoints.queryTimeoutSeconds", "checkpoints.connectionTimeoutSeconds"],
        "the checkpoint store is an embedded redb database",
        warnings,
    );
    top.no_effect(
        &[
            "maxSendingThreads",
            "maxSendingThreadsPerCore",
            "sendingThreadsMaxQueueSize",
            "sendingThreadsKeepAliveMillis",
            "maxConnections",
            "connectionTimeoutMillis",
            "socketTimeoutMillis",
            "connectionTTLMillis",
            "useTcpKeepAlive",
            "useHttpGzip",
            "userAgent",
            "userAgentOverride",
        ],
        "sending is the producer's: set MaxConnections, RequestTimeout... in `producer`",
        warnings,
    );
    top.no_effect(
        &["log.level", "log.file", "log.maxBackupIndex", "log.maxFileSize"],
        "removed from the Kinesis Agent in 2018; set RUST_LOG",
        warnings,
    );
    let key_id = top.string("awsAccessKeyId")?;
    let secret = top.string("awsSecretAccessKey")?;
    let static_credentials = match (key_id, secret) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (None, None) => None,
        _ => {
            return Err(ConfigError::Missing {
                context: top.context.clone(),
                key: "awsAccessKeyId and awsSecretAccessKey (both or neither)".into(),
            });
        }
    };
    let assume_role = match (top.string("assumeRoleARN")?, top.string("assumeRoleExternalId")?) {
        (Some(arn), external_id) => Some(AssumeRole { arn, external_id }),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(ConfigError::Missing {
                context: top.context.clone(),
                key: "assumeRoleARN (assumeRoleExternalId is set)".into(),
            });
        }
    };
    Ok(AgentConfig {
        flows,
        assume_role,
        sts_endpoint: top.string("sts.endpoint")?,
        cloudwatch: CloudWatchConfig {
            emit_metrics: top.boolean("cloudwatch.emitMetrics", true)?,
            endpoint: top.string("cloudwatch.endpoint")?,
            namespace: namespace(top)?,
            upload_interval: Duration::from_millis(top.number(
                "cloudwatch.metricsBufferTimeMillis",
                30_000,
                100,
                3_600_000,
            )?),
        },
        checkpoint_file: top.string("checkpointFile")?.map(PathBuf::from),
        checkpoint_ttl: Duration::from_secs(86_400 * top.number("checkpointTimeToLiveDays", 7, 1, 3650)?),
        kinesis_endpoint: top.string("kinesis.endpoint")?,
        kinesis_region: top.string("kinesis.region")?,
        firehose_endpoint: top.string("firehose.endpoint")?,
        static_credentials,
        shutdown_timeout: Duration::from_millis(top.number("shutdownTimeoutMillis", 10_000, 0, 3_600_000)?),
        status_reporting_period: Duration::from_secs(top.number(
            "log.statusReportingPeriodSeconds",
            30,
            1,
            86_400,
        )?),
        memory_budget_bytes: top.number("memoryBudgetBytes", 64 << 20, 4 << 20, u64::MAX >> 1)?,
        max_open_files: usize::try_from(top.number("maxOpenFiles", 512, 1, 1 << 24)?).unwrap_or(512),
        checkpoint_interval: Duration::from_millis(top.number(
            "checkpointIntervalMillis",
            1000,
            10,
            60_000,
        )?),
        producer: producer(top, warnings)?,
        effective: Vec::new(),
    })
}

/// `cloudwatch.namespace`, checked as CloudWatch wants it.
fn namespace(top: &mut Fields) -> Result<String, ConfigError> {
    let namespace = top.string("cloudwatch.namespace")?.unwrap_or_else(|| NAMESPACE.into());
    top.show_default("cloudwatch.namespace", &format!("{namespace:?}"));
    match kpl_tokio::MetricsConfig::default().namespace(namespace.clone()) {
        Ok(_) => Ok(namespace),
        Err(error) => Err(ConfigError::Invalid {
            context: top.context.clone(),
            key: "cloudwatch.namespace".into(),
            value: format!("{namespace:?}"),
            expected: error.to_string(),
        }),
    }
}

/// The `producer` object as KPL properties, with `RecordTtl` defaulting to never.
fn producer(top: &mut Fields, warnings: &mut Vec<String>) -> Result<ProducerConfig, ConfigError> {
    let object = match top.take("producer") {
        None => serde_json::Map::new(),
        Some(Value::Object(object)) => object,
        Some(other) => {
            return Err(ConfigError::Invalid {
                context: top.context.clone(),
                key: "producer".into(),
                value: other.to_string(),
                expected: "an object of KPL settings".into(),
            });
        }
    };
    let mut properties = String::new();
    if !object.contains_key("RecordTtl") {
        properties.push_str(&format!("RecordTtl = {RECORD_TTL_NEVER}\n"));
        top.record("producer.RecordTtl", format!("{RECORD_TTL_NEVER} (never)"), false);
    }
    // A backlog read at startup would otherwise go out unaggregated before the first ListShards answer.
    if !object.contains_key("ShardMapWait") {
        properties.push_str("ShardMapWait = Hold\n");
        top.record("producer.ShardMapWait", "Hold", false);
    }
    for (key, value) in &object {
        let value = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        properties.push_str(&format!("{key} = {value}\n"));
        top.record(&format!("producer.{key}"), value, true);
    }
    top.record("producer.*", "the KPL's defaults", false);
    let loaded = ProducerConfig::from_properties(&properties)?;
    warnings.extend(loaded.warnings.iter().map(|warning| format!("producer: {warning}")));
    if !loaded.other_settings.is_empty() {
        let keys: Vec<&str> = loaded.other_settings.keys().map(String::as_str).collect();
        warnings.push(format!("producer: settings not used by kpl agent: {}", keys.join(", ")));
    }
    Ok(loaded.config)
}

#[cfg(test)]
mod tests;
