//! One flow of `agent.json`: which files, into which stream, framed how.

use std::path::PathBuf;
use std::time::Duration;

use regex::bytes::Regex;
use serde_json::Value;

use super::{ConfigError, Fields, Setting, processing};
use crate::core::firehose::{MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES};
use crate::core::{FirehoseConfig, FramingConfig, InitialPosition, OversizePolicy, Processor, TailerConfig};

/// The longest partition key (Kinesis: 256 characters): framing keeps records this much under the
/// producer's `MaxUserRecordSize`, which counts the key (the agent: 1 MiB minus the key's length).
pub const MAX_PARTITION_KEY_LEN: usize = 256;

/// How a record's partition key is chosen.
#[derive(Debug, Clone)]
pub enum PartitionKeyOption {
    /// `RANDOM` (the agent's default): the decimal text of a uniform random number in [0, 1e6).
    Random,
    /// `DETERMINISTIC`: the lowercase hex MD5 of the record (the agent hashes a whole 5 MiB buffer by
    /// mistake, see kinesis-agent.md (c); we hash the record, as documented).
    Deterministic,
    /// Ours, `partitionKeyField`: the value of this top-level field of the record, a JSON object (a
    /// record that is not, or lacks it, gets a random key and is counted).
    Field(String),
    /// Ours, `partitionKeyRegex`: the first capture group of this regex in the record (else its whole
    /// match; a record without a match gets a random key and is counted).
    Regex(Regex),
}

/// Where a flow's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `kinesisStream`: a Kinesis data stream, through the producer (KPL aggregation, per-shard limits,
    /// retries until written).
    KinesisStream(String),
    /// `deliveryStream`: a Firehose delivery stream, in `PutRecordBatch` calls batched by `batching`
    /// (`maxBufferSizeRecords`, `maxBufferSizeBytes`, `maxBufferAgeMillis`, `aggregatedRecordSizeBytes`,
    /// `retryInitialBackoffMillis`, `retryMaxBackoffMillis`); see [`crate::core::firehose`].
    DeliveryStream {
        /// The delivery stream's name.
        name: String,
        /// The batching settings.
        batching: FirehoseConfig,
    },
}

impl Destination {
    /// The stream's name.
    pub fn name(&self) -> &str {
        match self {
            Destination::KinesisStream(name) | Destination::DeliveryStream { name, .. } => name,
        }
    }
}

impl std::fmt::Display for Destination {
    /// As the agent's `Destination` metric dimension: `KinesisStream:<name>`, `DeliveryStream:<name>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::KinesisStream(name) => write!(f, "KinesisStream:{name}"),
            Destination::DeliveryStream { name, .. } => write!(f, "DeliveryStream:{name}"),
        }
    }
}

/// One flow.
#[derive(Debug, Clone)]
pub struct FlowConfig {
    /// `filePattern`: a glob of absolute paths, wildcards allowed in any component (`**` too; the agent
    /// allows them only in the file name). Names ending `.gz`, `.bz2`, `.zip` are skipped, as by the agent.
    pub file_pattern: String,
    /// `deliveryStream` (checked first, as by the agent) or `kinesisStream`.
    pub destination: Destination,
    /// `initialPosition` (`END_OF_FILE`, the default, or `START_OF_FILE`): where files found at startup
    /// without a checkpoint start. Files found later are read from their start.
    pub initial_position: InitialPosition,
    /// `partitionKeyOption` (`RANDOM`, `DETERMINISTIC`), or ours: `partitionKeyField`, `partitionKeyRegex`.
    pub partition_key: PartitionKeyOption,
    /// Framing: `multiLineStartPattern`, `skipHeaderLines`, `truncatedRecordTerminator`, and ours:
    /// `maxRecordSizeBytes` (default 1 MiB − 256), `oversizeRecordPolicy` (`TRUNCATE`, `SPLIT`, `DROP`),
    /// `stripCarriageReturn` (false), `multiLineFlushMillis` (1000), `partialLineFlushMillis` (5000; 0:
    /// never, the agent's behaviour).
    pub framing: FramingConfig,
    /// `minTimeBetweenFilePollsMillis` (default 100, 1..=60000): the pause between two rounds of reads.
    pub min_time_between_file_polls: Duration,
    /// `maxTimeBetweenFileTrackerRefreshMillis` (default 10000): the longest time between two directory
    /// scans; change notifications trigger scans sooner.
    pub max_time_between_file_tracker_refresh: Duration,
    /// Ours, `rotateWaitMillis` (default 60000): a rotated file from which nothing could be read for this
    /// long is closed (it stays open while it is being read).
    pub rotate_wait: Duration,
    /// Ours, `closeInactiveMillis` (default 5000): a rotated file read to its end is closed after this
    /// much quiet.
    pub close_inactive: Duration,
    /// Ours, `copyTruncateHoldMillis` (default 5000): how long a likely copytruncate copy waits for the
    /// truncation before it is read as a new file.
    pub copy_hold: Duration,
    /// `dataProcessingOptions`: the converters applied to each record, in order (see
    /// [`crate::core::processors`] for each and where it differs from the agent).
    pub processor: Processor,
    /// Ours, `deadLetterFile`: records a converter could not convert are appended to this file (one
    /// JSON line each: flow, file, offset, converter, reason, record) instead of being dropped or sent
    /// raw as the agent does. The file is created if needed (not its directory); checkpoints pass such a
    /// record only once the file is synced to disk. If it cannot be written, the record is sent raw and
    /// the error logged.
    pub dead_letter_file: Option<PathBuf>,
    /// Every key of the flow read, with its effective value and where it came from (`kpl agent check`;
    /// a reload compares flows by it).
    pub effective: Vec<Setting>,
}

impl FlowConfig {
    /// The flow's id, as the agent forms it: `kinesis:<stream>:<pattern>`, `fh:<stream>:<pattern>`.
    pub fn id(&self) -> String {
        match &self.destination {
            Destination::KinesisStream(name) => format!("kinesis:{name}:{}", self.file_pattern),
            Destination::DeliveryStream { name, .. } => format!("fh:{name}:{}", self.file_pattern),
        }
    }

    /// The tailer settings, with this flow's share of `maxOpenFiles`.
    pub fn tailer_config(&self, max_open_files: usize) -> TailerConfig {
        TailerConfig {
            flow: self.id(),
            framing: self.framing.clone(),
            initial_position: self.initial_position,
            rotate_wait: self.rotate_wait,
            close_inactive: self.close_inactive,
            copy_hold: self.copy_hold,
            max_open_files,
        }
    }
}

/// How the flows of a configuration differ from those of another (a reload), by flow id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlowDiff {
    /// Ids only in the new configuration.
    pub added: Vec<String>,
    /// Ids only in the old one.
    pub removed: Vec<String>,
    /// Ids in both, with a different effective setting (a key's value, a processing option).
    pub changed: Vec<String>,
    /// Ids in both, with the same effective settings.
    pub unchanged: Vec<String>,
}

/// A flow's effective settings without their place (index in `flows`, file): what makes it behave.
fn behaviour(flow: &FlowConfig) -> Vec<(&str, &str, &str)> {
    flow.effective
        .iter()
        .map(|setting| {
            let within = setting.scope.split_once(' ').map_or("", |(_, rest)| rest);
            (within, setting.key.as_str(), setting.value.as_str())
        })
        .collect()
}

/// How `new` differs from `old`, flow by flow (ids in each list in `new`'s order, removed ones in
/// `old`'s).
pub fn diff_flows(old: &[FlowConfig], new: &[FlowConfig]) -> FlowDiff {
    let mut diff = FlowDiff::default();
    for flow in new {
        match old.iter().find(|before| before.id() == flow.id()) {
            None => diff.added.push(flow.id()),
            Some(before) if behaviour(before) != behaviour(flow) => diff.changed.push(flow.id()),
            Some(_) => diff.unchanged.push(flow.id()),
        }
    }
    diff.removed =
        old.iter().map(FlowConfig::id).filter(|id| !new.iter().any(|flow| flow.id() == *id)).collect();
    diff
}

/// The flows under `flows` of `fields`.
pub(super) fn flows(
    fields: &mut Fields,
    warnings: &mut Vec<String>,
    strict: bool,
) -> Result<Vec<FlowConfig>, ConfigError> {
    let items = match fields.take("flows") {
        None => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(ConfigError::Invalid {
                context: fields.context.clone(),
                key: "flows".into(),
                value: other.to_string(),
                expected: "a list of flows".into(),
            });
        }
    };
    let mut flows = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let mut fields = Fields::new(item, &fields.file, format!("flows[{index}]"))?;
        let mut flow = flow(&mut fields, warnings)?;
        flow.effective = fields.finish(strict, warnings)?;
        flows.push(flow);
    }
    Ok(flows)
}

fn millis(fields: &mut Fields, key: &str, default: u64, min: u64, max: u64) -> Result<Duration, ConfigError> {
    fields.number(key, default, min, max).map(Duration::from_millis)
}

fn regex(fields: &mut Fields, key: &str, anchored: bool) -> Result<Option<Regex>, ConfigError> {
    let Some(pattern) = fields.string(key)? else { return Ok(None) };
    // `lookingAt()`: the agent's multi-line pattern matches at the line's start.
    let source = if anchored { format!("^(?:{pattern})") } else { pattern.clone() };
    Regex::new(&source).map(Some).map_err(|error| ConfigError::Invalid {
        context: fields.context.clone(),
        key: key.into(),
        value: format!("{pattern:?}"),
        expected: format!("a regular expression ({error})"),
    })
}

fn flow(fields: &mut Fields, warnings: &mut Vec<String>) -> Result<FlowConfig, ConfigError> {
    // A flow with `deliveryStream` is a Firehose flow, whatever else it has (`FileFlowFactory`).
    let firehose = fields.string("deliveryStream")?;
    if firehose.is_none() {
        fields.unsupported(
            &["aggregatedRecordSizeBytes"],
            "a Firehose setting; Streams flows use KPL aggregation",
        )?;
    }
    fields.unsupported(&["fileFooterPattern"], "not supported yet")?;
    let converters = processing::converters(fields, warnings)?;
    let dead_letter_file = fields.string("deadLetterFile")?.map(PathBuf::from);
    let file_pattern = fields.required("filePattern")?;
    let kinesis_stream = match &firehose {
        Some(_) => {
            fields.no_effect(
                &["kinesisStream"],
                "deliveryStream makes it a Firehose flow, as with the agent",
                warnings,
            );
            String::new()
        }
        None => fields.required("kinesisStream")?,
    };
    let initial_position = fields.choice(
        "initialPosition",
        InitialPosition::EndOfFile,
        &[("END_OF_FILE", InitialPosition::EndOfFile), ("START_OF_FILE", InitialPosition::StartOfFile)],
        warnings,
    )?;
    let option = fields.choice(
        "partitionKeyOption",
        false,
        &[("RANDOM", false), ("DETERMINISTIC", true)],
        warnings,
    )?;
    let partition_key =
        match (fields.string("partitionKeyField")?, regex(fields, "partitionKeyRegex", false)?) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    context: fields.context.clone(),
                    key: "partitionKeyField".into(),
                    value: "and partitionKeyRegex".into(),
                    expected: "one of them".into(),
                });
            }
            (Some(field), None) => PartitionKeyOption::Field(field),
            (None, Some(regex)) => PartitionKeyOption::Regex(regex),
            (None, None) if option => PartitionKeyOption::Deterministic,
            (None, None) => PartitionKeyOption::Random,
        };
    // Validated as the agent does. Streams flows: batching is the producer's (RecordMaxBufferedTime,
    // CollectionMaxCount, CollectionMaxSize), shared by all flows. Firehose flows: the batcher's.
    let max_buffer_age = millis(fields, "maxBufferAgeMillis", 60_000, 1000, 900_000)?;
    let max_batch_records = fields.number("maxBufferSizeRecords", 500, 1, MAX_BATCH_RECORDS as u64)?;
    let batch_bytes_limit = if firehose.is_some() { MAX_BATCH_BYTES as u64 } else { 5 << 20 };
    let max_batch_bytes = fields.number("maxBufferSizeBytes", batch_bytes_limit, 1, batch_bytes_limit)?;
    let mut no_effect = vec![
        "publishQueueCapacity",
        "waitOnFullPublishQueueMillis",
        "waitOnEmptyPublishQueueMillis",
        "log.emitInternalMetrics",
    ];
    let destination = match firehose {
        Some(name) => Destination::DeliveryStream {
            name,
            batching: FirehoseConfig {
                aggregated_record_size: fields.number(
                    "aggregatedRecordSizeBytes",
                    0,
                    0,
                    MAX_RECORD_BYTES as u64,
                )? as usize,
                max_batch_records: max_batch_records as usize,
                max_batch_bytes: max_batch_bytes as usize,
                max_buffer_age,
                retry_initial: millis(fields, "retryInitialBackoffMillis", 100, 1, 3_600_000)?,
                retry_max: millis(fields, "retryMaxBackoffMillis", 10_000, 1, 3_600_000)?,
                ..FirehoseConfig::default()
            },
        },
        None => {
            no_effect.extend(["retryInitialBackoffMillis", "retryMaxBackoffMillis"]);
            // Read and range-checked as the agent does (so its files load), but batching is the producer's;
            // said by `check` only: these keys are in nearly every agent.json, a warning each would be noise.
            for key in ["maxBufferAgeMillis", "maxBufferSizeRecords", "maxBufferSizeBytes"] {
                let why = "no effect on a Kinesis stream flow: the producer batches (RecordMaxBufferedTime, \
                           CollectionMaxCount, CollectionMaxSize)";
                fields.note(key, why.into());
            }
            Destination::KinesisStream(kinesis_stream)
        }
    };
    fields.no_effect(
        &no_effect,
        "queueing and retries are the producer's (Firehose flows: the batcher's); memory is bounded by memoryBudgetBytes",
        warnings,
    );
    // Firehose: 1,000 KiB per record; Streams: 1 MiB less the partition key.
    let (default_max, max_max) = match destination {
        Destination::DeliveryStream { .. } => (MAX_RECORD_BYTES as u64, MAX_RECORD_BYTES as u64),
        Destination::KinesisStream(_) => ((1 << 20) - 256, (10 << 20) - 256),
    };
    let max_record_size = fields.number("maxRecordSizeBytes", default_max, 64, max_max)?;
    let terminator = fields.string("truncatedRecordTerminator")?.unwrap_or_else(|| "\n".into());
    fields.show_default("truncatedRecordTerminator", "\"\\n\"");
    if terminator.len() as u64 >= max_record_size {
        return Err(ConfigError::Invalid {
            context: fields.context.clone(),
            key: "truncatedRecordTerminator".into(),
            value: format!("{terminator:?}"),
            expected: "shorter than the maximum record size".into(),
        });
    }
    let partial = fields.number("partialLineFlushMillis", 5000, 0, 3_600_000)?;
    let framing = FramingConfig {
        max_record_size: max_record_size as usize,
        oversize: fields.choice(
            "oversizeRecordPolicy",
            OversizePolicy::Truncate,
            &[
                ("TRUNCATE", OversizePolicy::Truncate),
                ("SPLIT", OversizePolicy::Split),
                ("DROP", OversizePolicy::Drop),
            ],
            warnings,
        )?,
        truncated_record_terminator: terminator.into_bytes(),
        strip_cr: fields.boolean("stripCarriageReturn", false)?,
        multi_line_start: regex(fields, "multiLineStartPattern", true)?,
        multi_line_flush: millis(fields, "multiLineFlushMillis", 1000, 1, 3_600_000)?,
        partial_line_flush: (partial > 0).then(|| Duration::from_millis(partial)),
        skip_header_lines: fields.number("skipHeaderLines", 0, 0, u64::from(u32::MAX))?,
    };
    let processor = Processor::new(converters, dead_letter_file.is_some(), framing.max_record_size);
    Ok(FlowConfig {
        file_pattern,
        destination,
        initial_position,
        partition_key,
        framing,
        min_time_between_file_polls: millis(fields, "minTimeBetweenFilePollsMillis", 100, 1, 60_000)?,
        max_time_between_file_tracker_refresh: millis(
            fields,
            "maxTimeBetweenFileTrackerRefreshMillis",
            10_000,
            100,
            3_600_000,
        )?,
        rotate_wait: millis(fields, "rotateWaitMillis", 60_000, 0, 86_400_000)?,
        close_inactive: millis(fields, "closeInactiveMillis", 5000, 0, 86_400_000)?,
        copy_hold: millis(fields, "copyTruncateHoldMillis", 5000, 0, 3_600_000)?,
        processor,
        dead_letter_file,
        effective: Vec::new(),
    })
}
