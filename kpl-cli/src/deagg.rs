//! `kpl deagg`: the user records inside Kinesis records, one JSON object per line.
//!
//! Input is read one JSON document at a time (or, with `--raw`, one record per input), each bounded
//! ([`MAX_DOCUMENT_BYTES`], [`MAX_RAW_RECORD_BYTES`]), and its user records are written before the next is
//! read: memory stays bounded by those limits whatever the size of the input.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::rc::Rc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use kpl_deagg::lambda::aws_lambda_events::event::kinesis::KinesisEventRecord;
use kpl_deagg::{DeaggError, Deaggregator, Mode, ReceivedRecord, UserRecord};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

const MIB: u64 = 1 << 20;

/// The largest JSON document read, in bytes (32 MiB). One `GetRecords` page holds at most 10 MiB of data
/// (13.4 MiB in base64, plus each record's other fields) and one Lambda invocation's payload at most 6 MB
/// (AWS Lambda quotas), so every real page and event fits with room to spare.
pub const MAX_DOCUMENT_BYTES: u64 = 32 * MIB;

/// The largest record read with `--raw`, in bytes (10 MiB): the largest record Kinesis stores (1 MiB by
/// default, up to 10 MiB on a stream configured for larger records; also the top of the KPL's
/// `MaxUserRecordSize` range).
pub const MAX_RAW_RECORD_BYTES: u64 = 10 * MIB;

const EXAMPLES: &str = "\
Examples:
  aws kinesis get-records --shard-iterator \"$IT\" | kpl deagg
  kpl deagg --utf8 page1.json page2.json                # data as text instead of base64
  kpl deagg --utf8 lambda-test-event.json               # a Lambda Kinesis event
  kpl deagg --raw record.bin                            # the bytes of one Kinesis record
  kpl deagg --strict --hash-range 0..170141183460469231731687303715884105727 < records.json
  kpl deagg --stream orders --region us-east-1          # every shard, from TRIM_HORIZON until caught up
  kpl deagg --stream orders --from latest --duration 60 # what arrives in the next minute

Input: `aws kinesis get-records` output ({\"Records\": [{\"SequenceNumber\", \"PartitionKey\", \"Data\", ..}]})
or a Lambda Kinesis event ({\"Records\": [{\"kinesis\": {..}, \"eventSourceARN\", ..}]}), told apart record by
record; several documents may follow each other. Each document may be at most 32 MiB, a --raw record at
most 10 MiB (the largest Kinesis record); anything larger is refused without being read whole.

Each output line: {\"sequence_number\", \"sub_sequence_number\", \"partition_key\", \"explicit_hash_key\",
\"aggregated\", \"data\"}, with \"approximate_arrival_timestamp\" (RFC 3339, UTC) where the input has one and
\"event_source_arn\" for a Lambda event. With --raw, a record that is not an aggregate has no sequence number
or partition key (null). A Kinesis record that cannot be deaggregated is reported on standard error,
`record <sequence number>: <error>`, and the exit code is then 1; one the hash-range filter drops is
reported the same way but is not an error (the KCL drops it silently).";

/// Options of `kpl deagg`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DeaggArgs {
    /// Files to read, in order [default: standard input]. Each holds `aws kinesis get-records` output or
    /// Lambda Kinesis events (several documents may follow each other), or with --raw one record's bytes.
    #[arg(value_name = "FILE", conflicts_with = "stream")]
    files: Vec<PathBuf>,
    /// The input is the bytes of one Kinesis record, not JSON.
    #[arg(long, conflicts_with = "stream")]
    raw: bool,
    /// Read this stream directly, every shard (closed ones too), instead of files: until every shard is
    /// caught up, or for --duration. Each line then names its shard ("shard_id"), and each shard's
    /// aggregates are filtered by its own hash-key range, as the KCL does.
    #[arg(long, value_name = "NAME")]
    stream: Option<String>,
    /// With --stream: where each shard is read from (the ShardIteratorType).
    #[arg(long, value_enum, default_value_t = StartingPosition::TrimHorizon, requires = "stream")]
    from: StartingPosition,
    /// With --stream: read for this many seconds (following new records), instead of stopping once every
    /// shard is caught up.
    #[arg(long, value_name = "SECONDS", requires = "stream")]
    duration: Option<u64>,
    /// With --stream: the AWS region [default: AWS_REGION or the profile's].
    #[arg(long, requires = "stream")]
    region: Option<String>,
    /// With --stream: send to this endpoint instead of the region's (a local server such as kinesalite).
    #[arg(long, value_name = "URL", requires = "stream")]
    endpoint_url: Option<String>,
    /// Print data as UTF-8 text instead of base64 (an error for data that is not UTF-8).
    #[arg(long)]
    utf8: bool,
    /// Report a record that starts like an aggregate but is not a valid one, instead of passing it on
    /// unchanged as the KCL does.
    #[arg(long)]
    strict: bool,
    /// Drop aggregates holding a user record outside this shard's hash-key range, as the KCL does.
    /// START and END are decimal, both included, as ListShards reports them.
    #[arg(long, value_name = "START..END", value_parser = parse_hash_range, conflicts_with = "stream")]
    hash_range: Option<RangeInclusive<u128>>,
}

/// Where `--stream` starts reading each shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StartingPosition {
    /// The oldest record still in the shard (TRIM_HORIZON).
    TrimHorizon,
    /// Only records written after the start (LATEST).
    Latest,
}

/// Why the input of `kpl deagg` cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A document is not JSON of either accepted shape.
    #[error(
        "document {document} is not get-records output or a Lambda Kinesis event ({source}); use --raw for the \
         bytes of one record"
    )]
    Json {
        /// The document's number in its input (from 1).
        document: u64,
        /// What serde_json found.
        source: serde_json::Error,
    },
    /// A document passes [`MAX_DOCUMENT_BYTES`].
    #[error("document {document} is larger than {limit} bytes, the most one document may hold")]
    DocumentTooLarge {
        /// The document's number in its input (from 1).
        document: u64,
        /// The limit, in bytes.
        limit: u64,
    },
    /// A record of a document is of neither shape.
    #[error(
        "document {document} record {record}: neither a Lambda Kinesis event record (no \"kinesis\") nor a \
         get-records record (no {missing:?})"
    )]
    UnknownRecord {
        /// The document's number in its input (from 1).
        document: u64,
        /// The record's number in the document (from 1).
        record: u64,
        /// A field a get-records record must have.
        missing: &'static str,
    },
    /// A `--raw` record passes [`MAX_RAW_RECORD_BYTES`].
    #[error("the record is larger than {limit} bytes, the largest Kinesis record")]
    RecordTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A Kinesis call of `--stream` failed.
    #[error("{operation} on stream {stream}: {message}")]
    Stream {
        /// The API operation.
        operation: &'static str,
        /// The stream.
        stream: String,
        /// The SDK's error, with its context.
        message: String,
    },
    /// An arrival time is neither epoch seconds nor an RFC 3339 time.
    #[error("record {sequence_number}: the approximate arrival timestamp {value} is not a time")]
    Timestamp {
        /// The record's sequence number.
        sequence_number: String,
        /// The value found.
        value: String,
    },
}

/// A document: `get-records` output or a Lambda Kinesis event; other fields are ignored.
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "Records")]
    records: Vec<DocumentRecord>,
}

/// A record of either shape: a Lambda event record has `kinesis`, a get-records record the PascalCase fields.
#[derive(Debug, Deserialize)]
struct DocumentRecord {
    kinesis: Option<LambdaKinesis>,
    #[serde(rename = "eventSourceARN")]
    event_source_arn: Option<String>,
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "eventID")]
    event_id: Option<String>,
    #[serde(rename = "awsRegion")]
    aws_region: Option<String>,
    #[serde(rename = "SequenceNumber")]
    sequence_number: Option<String>,
    #[serde(rename = "PartitionKey")]
    partition_key: Option<String>,
    /// Base64.
    #[serde(rename = "Data")]
    data: Option<String>,
    /// Not in GetRecords output, but accepted.
    #[serde(rename = "ExplicitHashKey")]
    explicit_hash_key: Option<String>,
    /// Epoch seconds (AWS CLI v1) or RFC 3339 text (v2).
    #[serde(rename = "ApproximateArrivalTimestamp")]
    approximate_arrival_timestamp: Option<serde_json::Value>,
}

/// The `kinesis` part of a Lambda event record. Read here rather than as `aws_lambda_events`' `KinesisRecord`,
/// whose parser misreads arrival times written with fewer than three decimals (see `kpl_deagg::lambda`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LambdaKinesis {
    #[serde(default)]
    partition_key: String,
    #[serde(default)]
    sequence_number: String,
    /// Base64.
    data: String,
    /// Epoch seconds.
    approximate_arrival_timestamp: Option<serde_json::Value>,
}

/// What an output line says besides the user record.
#[derive(Debug, Clone, Copy, Default)]
struct Context<'a> {
    shard_id: Option<&'a str>,
    approximate_arrival_timestamp: Option<DateTime<Utc>>,
    event_source_arn: Option<&'a str>,
}

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    shard_id: Option<&'a str>,
    sequence_number: Option<&'a str>,
    sub_sequence_number: u64,
    partition_key: Option<&'a str>,
    explicit_hash_key: Option<&'a str>,
    aggregated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    approximate_arrival_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_source_arn: Option<&'a str>,
    data: std::borrow::Cow<'a, str>,
}

/// The size limits input is read under.
#[derive(Debug, Clone, Copy)]
struct Limits {
    document: u64,
    raw_record: u64,
}

const LIMITS: Limits = Limits { document: MAX_DOCUMENT_BYTES, raw_record: MAX_RAW_RECORD_BYTES };

/// Writes user records as lines and reports Kinesis records that yield none.
struct Printer<W> {
    out: W,
    utf8: bool,
    raw: bool,
    undecodable: u64,
}

impl<W: Write> Printer<W> {
    /// The user records of `outcome` (each `user(item)`) with `context`, or its error on standard error,
    /// `record <sequence number>: <error>`.
    fn print<T>(
        &mut self,
        sequence_number: &str,
        outcome: Result<impl IntoIterator<Item = T>, DeaggError>,
        context: Context<'_>,
        user: impl Fn(&T) -> &UserRecord,
    ) -> Result<(), CliError> {
        match outcome {
            Ok(users) => {
                for item in users {
                    self.line(user(&item), context)?;
                }
            }
            Err(error) => {
                let who =
                    if self.raw { "the record".to_owned() } else { format!("record {sequence_number}") };
                eprintln!("{who}: {error}");
                self.undecodable += u64::from(!matches!(error, DeaggError::OutOfShardRange { .. }));
            }
        }
        Ok(())
    }

    fn line(&mut self, user: &UserRecord, context: Context<'_>) -> Result<(), CliError> {
        // A raw record that is not an aggregate carries no sequence number or partition key of its own.
        let keyed = !self.raw || user.aggregated;
        let data = if self.utf8 {
            std::borrow::Cow::Borrowed(std::str::from_utf8(&user.data).map_err(|_| CliError::NotUtf8 {
                sequence_number: user.sequence_number.to_string(),
                sub_sequence_number: user.sub_sequence_number,
            })?)
        } else {
            std::borrow::Cow::Owned(STANDARD.encode(&user.data))
        };
        let line = Line {
            shard_id: context.shard_id,
            sequence_number: if self.raw { None } else { Some(&user.sequence_number) },
            sub_sequence_number: user.sub_sequence_number,
            partition_key: keyed.then_some(&*user.partition_key),
            explicit_hash_key: user.explicit_hash_key.as_deref(),
            aggregated: user.aggregated,
            approximate_arrival_timestamp: context
                .approximate_arrival_timestamp
                .map(|time| time.to_rfc3339_opts(SecondsFormat::Millis, true)),
            event_source_arn: context.event_source_arn,
            data,
        };
        serde_json::to_writer(&mut self.out, &line).map_err(|error| CliError::Stdout(error.into()))?;
        writeln!(self.out).map_err(CliError::Stdout)
    }

    /// Flushes; fails if any Kinesis record could not be deaggregated.
    fn finish(mut self) -> Result<(), CliError> {
        self.out.flush().map_err(CliError::Stdout)?;
        if self.undecodable > 0 {
            return Err(CliError::Undecodable(self.undecodable));
        }
        Ok(())
    }
}

fn deaggregator(strict: bool, hash_range: Option<&RangeInclusive<u128>>) -> Deaggregator {
    let deaggregator = Deaggregator::new(if strict { Mode::Strict } else { Mode::KclCompatible });
    match hash_range {
        Some(range) => deaggregator.with_hash_range(range.clone()),
        None => deaggregator,
    }
}

/// Prints the user records of every record read; fails if any record could not be deaggregated.
pub fn run(args: &DeaggArgs) -> Result<(), CliError> {
    let deaggregator = deaggregator(args.strict, args.hash_range.as_ref());
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut printer = Printer { out, utf8: args.utf8, raw: args.raw, undecodable: 0 };
    if let Some(stream) = &args.stream {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(CliError::Runtime)?;
        runtime.block_on(stream::read(stream, args, &mut printer))?;
        return printer.finish();
    }
    if args.files.is_empty() {
        read_input(std::io::stdin().lock(), args.raw, LIMITS, &deaggregator, &mut printer).map_err(
            |error| match error {
                CliError::ReadFile { source, .. } => CliError::Stdin(source),
                other => other,
            },
        )?;
    }
    for path in &args.files {
        let file = File::open(path).map_err(|source| CliError::ReadFile { path: path.clone(), source })?;
        read_input(file, args.raw, LIMITS, &deaggregator, &mut printer).map_err(|error| match error {
            CliError::ReadFile { source, .. } => CliError::ReadFile { path: path.clone(), source },
            other => other,
        })?;
    }
    printer.finish()
}

/// Reads one input (a file, or standard input) to its end, printing as it goes. A read error comes back
/// as `CliError::ReadFile` with an empty path, for the caller to name the input.
fn read_input(
    input: impl Read,
    raw: bool,
    limits: Limits,
    deaggregator: &Deaggregator,
    printer: &mut Printer<impl Write>,
) -> Result<(), CliError> {
    let read_error = |source| CliError::ReadFile { path: PathBuf::new(), source };
    if raw {
        let record = read_raw(input, limits.raw_record).map_err(|error| match error {
            RawError::Io(source) => read_error(source),
            RawError::TooLarge => CliError::Input(InputError::RecordTooLarge { limit: limits.raw_record }),
        })?;
        let outcome = deaggregator.deaggregate(record);
        return printer.print("", outcome, Context::default(), |user| user);
    }
    let budget = Rc::new(Cell::new(limits.document));
    let reader = Budgeted { inner: BufReader::new(input), left: budget.clone() };
    let mut document = 0;
    for parsed in serde_json::Deserializer::from_reader(reader).into_iter::<Document>() {
        document += 1;
        let parsed = parsed.map_err(|source| match source.io_error_kind() {
            Some(_) if budget.get() == 0 => {
                CliError::Input(InputError::DocumentTooLarge { document, limit: limits.document })
            }
            Some(_) => read_error(std::io::Error::from(source)),
            None => CliError::Input(InputError::Json { document, source }),
        })?;
        for (record, index) in parsed.records.into_iter().zip(1..) {
            print_document_record(record, document, index, deaggregator, printer)?;
        }
        budget.set(limits.document);
    }
    Ok(())
}

fn print_document_record(
    record: DocumentRecord,
    document: u64,
    index: u64,
    deaggregator: &Deaggregator,
    printer: &mut Printer<impl Write>,
) -> Result<(), CliError> {
    if let Some(kinesis) = record.kinesis {
        let sequence_number = kinesis.sequence_number;
        let data = decode_data(&sequence_number, &kinesis.data)?;
        let approximate_arrival_timestamp =
            optional_arrival_time(&sequence_number, kinesis.approximate_arrival_timestamp)?;
        let mut event_record = KinesisEventRecord::default();
        event_record.kinesis.data.0 = data;
        event_record.kinesis.partition_key = kinesis.partition_key;
        event_record.kinesis.sequence_number = sequence_number.clone();
        event_record.event_source_arn.clone_from(&record.event_source_arn);
        event_record.event_source = record.event_source;
        event_record.event_id = record.event_id;
        event_record.aws_region = record.aws_region;
        let outcome = deaggregator.deaggregate_event_record(event_record);
        let event_source_arn = record.event_source_arn.as_deref();
        let context = Context { shard_id: None, approximate_arrival_timestamp, event_source_arn };
        return printer.print(&sequence_number, outcome, context, |user| &user.record);
    }
    let missing = |missing| CliError::Input(InputError::UnknownRecord { document, record: index, missing });
    let sequence_number = record.sequence_number.ok_or_else(|| missing("SequenceNumber"))?;
    let partition_key = record.partition_key.ok_or_else(|| missing("PartitionKey"))?;
    let data = decode_data(&sequence_number, &record.data.ok_or_else(|| missing("Data"))?)?;
    let approximate_arrival_timestamp =
        optional_arrival_time(&sequence_number, record.approximate_arrival_timestamp)?;
    let received = ReceivedRecord {
        data: Bytes::from(data),
        partition_key,
        explicit_hash_key: record.explicit_hash_key,
        sequence_number: sequence_number.clone(),
    };
    let context = Context { shard_id: None, approximate_arrival_timestamp, event_source_arn: None };
    printer.print(&sequence_number, deaggregator.deaggregate(received), context, |user| user)
}

fn decode_data(sequence_number: &str, base64: &str) -> Result<Vec<u8>, CliError> {
    STANDARD
        .decode(base64)
        .map_err(|source| CliError::Base64 { sequence_number: sequence_number.to_owned(), source })
}

fn optional_arrival_time(
    sequence_number: &str,
    value: Option<serde_json::Value>,
) -> Result<Option<DateTime<Utc>>, CliError> {
    let Some(value) = value else { return Ok(None) };
    match arrival_time(&value) {
        Some(time) => Ok(Some(time)),
        None => Err(CliError::Input(InputError::Timestamp {
            sequence_number: sequence_number.to_owned(),
            value: value.to_string(),
        })),
    }
}

/// An arrival time as the AWS CLI or Lambda writes it: epoch seconds (v1) or RFC 3339 text (v2).
fn arrival_time(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::Number(seconds) => {
            let millis = (seconds.as_f64()? * 1000.0).round();
            // In range of i64 milliseconds for any time chrono can represent.
            DateTime::from_timestamp_millis(millis as i64).filter(|_| millis.abs() < 1e15)
        }
        serde_json::Value::String(text) => {
            DateTime::parse_from_rfc3339(text).ok().map(|time| time.with_timezone(&Utc))
        }
        _ => None,
    }
}

enum RawError {
    Io(std::io::Error),
    TooLarge,
}

/// One raw record: the whole input, refused as soon as it passes `limit` bytes.
fn read_raw(input: impl Read, limit: u64) -> Result<ReceivedRecord, RawError> {
    let mut data = Vec::new();
    input.take(limit.saturating_add(1)).read_to_end(&mut data).map_err(RawError::Io)?;
    if data.len() as u64 > limit {
        return Err(RawError::TooLarge);
    }
    Ok(ReceivedRecord {
        data: Bytes::from(data),
        partition_key: String::new(),
        explicit_hash_key: None,
        sequence_number: String::new(),
    })
}

/// A reader that fails once `left` bytes have been read; the caller resets `left` between documents.
struct Budgeted<R> {
    inner: R,
    left: Rc<Cell<u64>>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.left.get();
        if left == 0 && !buf.is_empty() {
            return Err(std::io::Error::other("the document passes its size limit"));
        }
        let len = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = self.inner.read(&mut buf[..len])?;
        self.left.set(left - read as u64);
        Ok(read)
    }
}

/// `kpl deagg --stream`: a stream read directly, shard by shard in turn.
mod stream {
    use std::ops::RangeInclusive;
    use std::time::Duration;

    use aws_config::{BehaviorVersion, Region};
    use aws_sdk_kinesis::Client;
    use aws_sdk_kinesis::error::{DisplayErrorContext, ProvideErrorMetadata};
    use aws_sdk_kinesis::types::ShardIteratorType;
    use bytes::Bytes;
    use chrono::DateTime;
    use kpl_deagg::ReceivedRecord;
    use tokio::time::Instant;

    use super::{Context, DeaggArgs, InputError, Printer, StartingPosition, deaggregator};
    use crate::error::CliError;

    /// Most records one GetRecords call returns (the API's maximum).
    const GET_RECORDS_LIMIT: i32 = 10_000;
    /// Pause between two rounds over the shards: at most 5 GetRecords calls per shard per second, the
    /// API's per-shard limit.
    const ROUND_INTERVAL: Duration = Duration::from_millis(200);
    /// Pause after a shard throttles a read.
    const THROTTLED_BACKOFF: Duration = Duration::from_secs(1);

    /// One shard being read.
    struct ShardReader {
        shard_id: String,
        deaggregator: kpl_deagg::Deaggregator,
        /// `None` once a closed shard is read to its end.
        iterator: Option<String>,
        caught_up: bool,
    }

    fn failed<E: ProvideErrorMetadata + std::error::Error + 'static>(
        operation: &'static str,
        stream: &str,
        error: aws_sdk_kinesis::error::SdkError<E, aws_sdk_kinesis::config::http::HttpResponse>,
    ) -> CliError {
        CliError::Input(InputError::Stream {
            operation,
            stream: stream.to_owned(),
            message: DisplayErrorContext(&error).to_string(),
        })
    }

    async fn client(args: &DeaggArgs) -> Result<Client, CliError> {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(region) = &args.region {
            loader = loader.region(Region::new(region.clone()));
        }
        if let Some(url) = &args.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let sdk_config = loader.load().await;
        match sdk_config.region() {
            Some(_) => Ok(Client::new(&sdk_config)),
            None => Err(CliError::NoRegion),
        }
    }

    /// Every shard of `stream` with its hash-key range, closed ones included.
    async fn list_shards(
        client: &Client,
        stream: &str,
    ) -> Result<Vec<(String, RangeInclusive<u128>)>, CliError> {
        let mut shards = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            // ListShards takes either the stream or a continuation token, not both.
            let request = match &next_token {
                Some(token) => client.list_shards().next_token(token),
                None => client.list_shards().stream_name(stream),
            };
            let page = request.send().await.map_err(|error| failed("ListShards", stream, error))?;
            for shard in page.shards() {
                let range = shard.hash_key_range().and_then(|range| {
                    Some(range.starting_hash_key().parse().ok()?..=range.ending_hash_key().parse().ok()?)
                });
                // A range that does not parse filters nothing rather than everything.
                shards.push((shard.shard_id().to_owned(), range.unwrap_or(0..=u128::MAX)));
            }
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                return Ok(shards);
            }
        }
    }

    /// Reads every shard of `stream` in turn, printing user records as they come, until every shard is
    /// caught up (GetRecords reports it 0 ms behind, or a server that does not say returns nothing) or
    /// closed and read, or until `--duration` has passed.
    pub(super) async fn read(
        stream: &str,
        args: &DeaggArgs,
        printer: &mut Printer<impl std::io::Write>,
    ) -> Result<(), CliError> {
        let client = client(args).await?;
        let deadline = args.duration.map(|seconds| Instant::now() + Duration::from_secs(seconds));
        let iterator_type = match args.from {
            StartingPosition::TrimHorizon => ShardIteratorType::TrimHorizon,
            StartingPosition::Latest => ShardIteratorType::Latest,
        };
        let mut readers = Vec::new();
        for (shard_id, range) in list_shards(&client, stream).await? {
            let iterator = client
                .get_shard_iterator()
                .stream_name(stream)
                .shard_id(&shard_id)
                .shard_iterator_type(iterator_type.clone())
                .send()
                .await
                .map_err(|error| failed("GetShardIterator", stream, error))?
                .shard_iterator()
                .map(str::to_owned);
            let deaggregator = deaggregator(args.strict, Some(&range));
            readers.push(ShardReader { shard_id, deaggregator, iterator, caught_up: false });
        }
        eprintln!(
            "kpl: reading {} shards of {stream} from {} {}",
            readers.len(),
            iterator_type.as_str(),
            match args.duration {
                Some(seconds) => format!("for {seconds} s"),
                None => "until caught up".to_owned(),
            }
        );
        loop {
            let reading = readers.iter().any(|reader| reader.iterator.is_some());
            let done = match deadline {
                Some(deadline) => Instant::now() >= deadline || !reading,
                None => readers.iter().all(|reader| reader.caught_up || reader.iterator.is_none()),
            };
            if done {
                return Ok(());
            }
            for reader in readers.iter_mut() {
                read_once(&client, stream, reader, printer).await?;
            }
            tokio::time::sleep(ROUND_INTERVAL).await;
        }
    }

    /// One GetRecords call on `reader`'s shard, its user records printed.
    async fn read_once(
        client: &Client,
        stream: &str,
        reader: &mut ShardReader,
        printer: &mut Printer<impl std::io::Write>,
    ) -> Result<(), CliError> {
        let Some(iterator) = reader.iterator.take() else { return Ok(()) };
        let page = match client.get_records().shard_iterator(&iterator).limit(GET_RECORDS_LIMIT).send().await
        {
            Ok(page) => page,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_provisioned_throughput_exceeded_exception()) =>
            {
                reader.iterator = Some(iterator);
                tokio::time::sleep(THROTTLED_BACKOFF).await;
                return Ok(());
            }
            Err(error) => return Err(failed("GetRecords", stream, error)),
        };
        for record in page.records() {
            let arrival = record
                .approximate_arrival_timestamp()
                .and_then(|time| DateTime::from_timestamp(time.secs(), time.subsec_nanos()));
            let context = Context {
                shard_id: Some(&reader.shard_id),
                approximate_arrival_timestamp: arrival,
                event_source_arn: None,
            };
            let sequence_number = record.sequence_number();
            let received = ReceivedRecord {
                data: Bytes::copy_from_slice(record.data().as_ref()),
                partition_key: record.partition_key().unwrap_or_default().to_owned(),
                explicit_hash_key: None,
                sequence_number: sequence_number.to_owned(),
            };
            printer
                .print(sequence_number, reader.deaggregator.deaggregate(received), context, |user| user)?;
        }
        reader.caught_up = match page.millis_behind_latest() {
            Some(behind) => behind == 0,
            None => page.records().is_empty(),
        };
        reader.iterator = page.next_shard_iterator().map(str::to_owned);
        Ok(())
    }
}

/// `START..END`, both decimal hash keys, END included.
fn parse_hash_range(text: &str) -> Result<RangeInclusive<u128>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or("expected START..END, e.g. 0..340282366920938463463374607431768211455")?;
    let key = |text: &str| {
        text.parse::<u128>().map_err(|_| format!("{text:?} is not a decimal hash key (0 to 2^128-1)"))
    };
    let (start, end) = (key(start)?, key(end)?);
    if start > end {
        return Err(format!("{start} is after {end}"));
    }
    Ok(start..=end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ranges_are_inclusive_decimal_pairs() {
        assert_eq!(parse_hash_range("0..10"), Ok(0..=10));
        assert_eq!(parse_hash_range(&format!("5..{}", u128::MAX)), Ok(5..=u128::MAX));
        assert!(parse_hash_range("10..0").is_err());
        assert!(parse_hash_range("0-10").is_err());
        assert!(parse_hash_range("0..x").is_err());
        assert!(parse_hash_range("-1..3").is_err());
    }

    /// What `read_input` prints for `input`, or its error.
    fn read(input: &[u8], raw: bool, limits: Limits) -> Result<Vec<serde_json::Value>, CliError> {
        let mut printer = Printer { out: Vec::new(), utf8: true, raw, undecodable: 0 };
        read_input(input, raw, limits, &Deaggregator::default(), &mut printer)?;
        let text = String::from_utf8(printer.out).unwrap();
        Ok(text.lines().map(|line| serde_json::from_str(line).unwrap()).collect())
    }

    const GET_RECORDS: &str = r#"{"Records":[{"SequenceNumber":"1","PartitionKey":"k","Data":"aGk=",
        "ApproximateArrivalTimestamp":1700000000.25}],"NextShardIterator":"x"}"#;
    const LAMBDA: &str = r#"{"Records":[{"kinesis":{"kinesisSchemaVersion":"1.0","partitionKey":"p",
        "sequenceNumber":"2","data":"aG8=","approximateArrivalTimestamp":1700000001.5},"eventSource":"aws:kinesis",
        "eventSourceARN":"arn:aws:kinesis:us-east-1:123456789012:stream/s","awsRegion":"us-east-1"}]}"#;

    #[test]
    fn get_records_pages_and_lambda_events_may_follow_each_other() {
        let input = format!("{GET_RECORDS}\n{{\"Records\":[]}} {LAMBDA}{GET_RECORDS}");
        let lines = read(input.as_bytes(), false, LIMITS).unwrap();
        let summary: Vec<_> = lines
            .iter()
            .map(|line| {
                (
                    line["sequence_number"].as_str().unwrap(),
                    line["partition_key"].as_str().unwrap(),
                    line["data"].as_str().unwrap(),
                    line["approximate_arrival_timestamp"].as_str().unwrap(),
                    line.get("event_source_arn").and_then(|arn| arn.as_str()),
                )
            })
            .collect();
        let get_records = ("1", "k", "hi", "2023-11-14T22:13:20.250Z", None);
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/s";
        assert_eq!(
            summary,
            [get_records, ("2", "p", "ho", "2023-11-14T22:13:21.500Z", Some(arn)), get_records]
        );
    }

    #[test]
    fn bad_documents_are_named() {
        let base64 = br#"{"Records":[{"SequenceNumber":"1","PartitionKey":"k","Data":"!"}]}"#;
        assert!(matches!(read(base64, false, LIMITS), Err(CliError::Base64 { .. })));
        assert!(matches!(
            read(format!("{GET_RECORDS} []").as_bytes(), false, LIMITS),
            Err(CliError::Input(InputError::Json { document: 2, .. }))
        ));
        let neither = br#"{"Records":[{"SequenceNumber":"1","Data":""}]}"#;
        assert!(matches!(
            read(neither, false, LIMITS),
            Err(CliError::Input(InputError::UnknownRecord {
                document: 1,
                record: 1,
                missing: "PartitionKey"
            }))
        ));
        let time = br#"{"Records":[{"SequenceNumber":"1","PartitionKey":"k","Data":"","ApproximateArrivalTimestamp":"soon"}]}"#;
        assert!(matches!(read(time, false, LIMITS), Err(CliError::Input(InputError::Timestamp { .. }))));
    }

    #[test]
    fn each_document_and_raw_record_is_bounded() {
        let limit = GET_RECORDS.len() as u64;
        let limits = Limits { document: limit, raw_record: 4 };
        // Each document within the limit, whatever their number.
        let many = GET_RECORDS.repeat(20);
        assert_eq!(read(many.as_bytes(), false, limits).unwrap().len(), 20);
        let larger = GET_RECORDS.replace("aGk=", "aGkhaGk=");
        let input = format!("{GET_RECORDS}{GET_RECORDS} {larger}");
        assert!(matches!(
            read(input.as_bytes(), false, Limits { document: limit, raw_record: 4 }),
            Err(CliError::Input(InputError::DocumentTooLarge { document: 3, limit: l })) if l == limit
        ));
        assert_eq!(read(b"abcd", true, limits).unwrap().len(), 1);
        assert!(matches!(
            read(b"abcde", true, limits),
            Err(CliError::Input(InputError::RecordTooLarge { limit: 4 }))
        ));
    }

    #[test]
    fn the_budget_stops_reading_at_the_limit() {
        // An endless input: reading stops after the limit, with an error.
        let mut reader = Budgeted { inner: std::io::repeat(b' '), left: Rc::new(Cell::new(10)) };
        let mut sink = Vec::new();
        let error = reader.read_to_end(&mut sink).unwrap_err();
        assert_eq!(sink.len(), 10);
        assert_eq!(error.kind(), std::io::ErrorKind::Other);
        assert!(read_raw(std::io::repeat(0), 100).is_err());
    }
}
