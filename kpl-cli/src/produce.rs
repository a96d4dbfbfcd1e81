//! `kpl produce`: records from standard input into a Kinesis stream, through the producer and the AWS SDK.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use clap::ValueEnum;
use kpl_tokio::{
    AwsBackend, DeliveryError, KinesisProducer, ProducerConfig, PutError, RecordError, StreamTarget,
    UserRecord,
};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};

use crate::error::CliError;
use crate::rng::Rng;
use crate::track::{Completion, Tracker};

const EXAMPLES: &str = "\
Examples:
  seq 1000 | kpl produce --stream orders --region us-east-1
  kpl produce --stream orders --key-field customer < orders.jsonl   # key from each line's JSON
  kpl produce --stream orders --framing length < records.bin        # 4-byte big-endian length, then data
  kpl produce --stream orders --config kpl.properties < lines.txt   # the KPL's settings: RecordTtl, ...
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
    kpl produce --stream orders --region us-east-1 --endpoint-url http://127.0.0.1:4567   # kinesalite

Each record that is not written is reported on standard error as `record N: <error>` (N counts from 1),
and the exit code is then 1. Credentials come from the AWS default chain (environment, ~/.aws, SSO,
instance role).";

/// Options of `kpl produce`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct ProduceArgs {
    /// The stream: its name, or its ARN (`arn:...`).
    #[arg(long)]
    stream: String,
    /// Send to this endpoint instead of the region's: a local server such as kinesalite, a VPC endpoint.
    #[arg(long, value_name = "URL")]
    endpoint_url: Option<String>,
    /// The AWS region [default: Region in --config, else AWS_REGION or the profile's].
    #[arg(long)]
    region: Option<String>,
    /// A KPL properties file (RecordTtl, AggregationEnabled, RateLimit, ...) [default: the KPL's defaults].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// How records are delimited: `line` drops the newline (and a `\r` before it); `length` reads a 4-byte
    /// big-endian length before each record.
    #[arg(long, value_enum, default_value_t = Framing::Line)]
    framing: Framing,
    /// Take each record's partition key from this field of the record, a JSON object.
    #[arg(long, value_name = "NAME", group = "partition_key")]
    key_field: Option<String>,
    /// Give every record this partition key [default: a random key per record].
    #[arg(long, value_name = "KEY", group = "partition_key")]
    key: Option<String>,
}

/// How records are delimited on standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Framing {
    /// One record per line.
    Line,
    /// A 4-byte big-endian length, then that many bytes.
    Length,
}

/// Reads standard input into the stream, reports every record not written, and fails if any was not.
pub async fn run(args: ProduceArgs) -> Result<(), CliError> {
    let (config, file_region) = load_config(args.config.as_deref())?;
    let backend = aws_backend(args.region.clone().or(file_region), args.endpoint_url.as_deref()).await?;
    // Long enough for every record to reach its TTL, so none is cut short by the shutdown.
    let shutdown_timeout =
        config.record_ttl().saturating_add(config.request_timeout()).saturating_add(Duration::from_secs(5));
    let max_record_size = usize::try_from(config.max_record_size()).unwrap_or(usize::MAX);
    let producer = KinesisProducer::builder(config, backend).spawn()?;
    let stream = match args.stream.strip_prefix("arn:") {
        Some(_) => StreamTarget::arn(&args.stream),
        None => StreamTarget::name(&args.stream),
    };
    let mut keys = match (&args.key, &args.key_field) {
        (Some(key), _) => KeySource::Fixed(key.clone()),
        (None, Some(field)) => KeySource::Field(field.clone()),
        (None, None) => KeySource::Random(Rng::new(crate::rng::entropy_seed())),
    };
    let (tracker, results) = Tracker::spawn(0u64, |failed: &mut u64, done: Completion<u64>| {
        if let Err(error) = done.result {
            report(done.tag, &describe(&error));
            *failed += 1;
        }
    });

    let started = Instant::now();
    let mut frames = Frames::new(BufReader::new(tokio::io::stdin()), args.framing, max_record_size);
    let mut refused = 0;
    // Stop reading at an input error, but deliver what was read before it.
    let read = loop {
        let frame = match frames.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        let number = frames.count();
        let put = match frame {
            Frame::Record(data) => match keys.key(&data) {
                Ok(key) => {
                    producer.put(UserRecord::new(stream.clone(), key, data)).await.map_err(|e| e.to_string())
                }
                Err(message) => Err(message),
            },
            Frame::Oversized(size) => {
                Err(PutError::RecordTooLarge { size, max: max_record_size }.to_string())
            }
        };
        match put {
            Ok(future) => tracker.track(number, Instant::now(), future),
            Err(message) => {
                report(number, &message);
                refused += 1;
            }
        }
    };
    drop(tracker);
    let shutdown = producer.shutdown(shutdown_timeout).await;
    let failed = results.await? + refused;
    read?;
    if failed > 0 {
        return Err(CliError::RecordsFailed { failed, total: frames.count() });
    }
    shutdown?;
    println!("{} records written to {stream} in {:.2} s", frames.count(), started.elapsed().as_secs_f64());
    Ok(())
}

/// One line on standard error for a record not written.
fn report(record: u64, error: &str) {
    eprintln!("record {record}: {}", crate::one_line(error));
}

/// A delivery error, with the last attempt's error when the record ran out of time or tries.
fn describe(error: &DeliveryError) -> String {
    match error {
        DeliveryError::Failed(failure) if !matches!(failure.error, RecordError::Rejected(_)) => {
            match failure.attempts.iter().rev().find_map(|attempt| attempt.error.as_ref()) {
                Some(last) => format!("{failure} (last error: {}: {})", last.code, last.message),
                None => failure.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// The producer settings (the KPL's defaults, or the file's) and the file's `Region`, warning on standard
/// error about what the file does that is ignored.
fn load_config(path: Option<&Path>) -> Result<(ProducerConfig, Option<String>), CliError> {
    let Some(path) = path else {
        return Ok((ProducerConfig::default(), None));
    };
    let text = std::fs::read_to_string(path)
        .map_err(|source| CliError::ReadFile { path: path.to_owned(), source })?;
    let mut loaded = ProducerConfig::from_properties(&text)
        .map_err(|source| CliError::Properties { path: path.to_owned(), source })?;
    for warning in &loaded.warnings {
        eprintln!("kpl: warning: {}: {warning}", path.display());
    }
    let region = loaded.other_settings.remove("Region");
    if !loaded.other_settings.is_empty() {
        let keys: Vec<&str> = loaded.other_settings.keys().map(String::as_str).collect();
        eprintln!("kpl: warning: {}: not used by kpl produce: {}", path.display(), keys.join(", "));
    }
    Ok((loaded.config, region))
}

/// The SDK's default chain, with `region` and `endpoint_url` when given.
async fn aws_backend(region: Option<String>, endpoint_url: Option<&str>) -> Result<AwsBackend, CliError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(region) = region {
        loader = loader.region(Region::new(region));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        return Err(CliError::NoRegion);
    }
    Ok(AwsBackend::from_conf(aws_sdk_kinesis::Config::from(&sdk_config)))
}

/// Where partition keys come from.
#[derive(Debug)]
enum KeySource {
    Fixed(String),
    Field(String),
    Random(Rng),
}

impl KeySource {
    /// The partition key of a record, or why it has none.
    fn key(&mut self, data: &[u8]) -> Result<String, String> {
        match self {
            Self::Fixed(key) => Ok(key.clone()),
            Self::Random(rng) => Ok(format!("{:032x}", rng.next_u128())),
            Self::Field(field) => {
                let value: Value = serde_json::from_slice(data).map_err(|e| {
                    format!("not JSON ({e}), so it has no {field:?} field for the partition key")
                })?;
                match value.get(field.as_str()) {
                    Some(Value::String(text)) => Ok(text.clone()),
                    Some(scalar @ (Value::Number(_) | Value::Bool(_))) => Ok(scalar.to_string()),
                    Some(_) => Err(format!("field {field:?} is not a string, number or boolean")),
                    None => Err(format!("no field {field:?} for the partition key")),
                }
            }
        }
    }
}

/// One record read.
#[derive(Debug, PartialEq, Eq)]
enum Frame {
    Record(Vec<u8>),
    /// A length-delimited record over the largest record size, skipped unread.
    Oversized(usize),
}

/// Records out of a byte stream.
struct Frames<R> {
    input: R,
    framing: Framing,
    max_record_size: usize,
    count: u64,
}

impl<R: AsyncBufRead + Unpin> Frames<R> {
    fn new(input: R, framing: Framing, max_record_size: usize) -> Self {
        Self { input, framing, max_record_size, count: 0 }
    }

    /// Records read so far: the number of the last one.
    fn count(&self) -> u64 {
        self.count
    }

    /// The next record; `None` at the end of the input.
    async fn next(&mut self) -> Result<Option<Frame>, CliError> {
        let frame = match self.framing {
            Framing::Line => self.next_line().await?,
            Framing::Length => self.next_length_delimited().await?,
        };
        self.count += u64::from(frame.is_some());
        Ok(frame)
    }

    async fn next_line(&mut self) -> Result<Option<Frame>, CliError> {
        let mut line = Vec::new();
        if self.input.read_until(b'\n', &mut line).await.map_err(CliError::Stdin)? == 0 {
            return Ok(None);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        }
        Ok(Some(Frame::Record(line)))
    }

    async fn next_length_delimited(&mut self) -> Result<Option<Frame>, CliError> {
        let record = self.count + 1;
        let mut prefix = Vec::with_capacity(4);
        let got = (&mut self.input).take(4).read_to_end(&mut prefix).await.map_err(CliError::Stdin)?;
        let prefix: [u8; 4] = match prefix.try_into() {
            Ok(prefix) => prefix,
            Err(_) if got == 0 => return Ok(None),
            Err(_) => return Err(CliError::Truncated { record, got: got as u64, expected: 4 }),
        };
        let len = u32::from_be_bytes(prefix);
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        let mut body = (&mut self.input).take(u64::from(len));
        let (got, frame) = if size > self.max_record_size {
            // Not worth holding in memory: it will not be sent.
            let skipped =
                tokio::io::copy(&mut body, &mut tokio::io::sink()).await.map_err(CliError::Stdin)?;
            (skipped, Frame::Oversized(size))
        } else {
            let mut data = Vec::with_capacity(size);
            body.read_to_end(&mut data).await.map_err(CliError::Stdin)?;
            (data.len() as u64, Frame::Record(data))
        };
        if got < u64::from(len) {
            return Err(CliError::Truncated { record, got, expected: u64::from(len) });
        }
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(input: &[u8], framing: Framing) -> (Vec<Frame>, Option<String>) {
        let mut frames = Frames::new(input, framing, 10);
        let mut out = Vec::new();
        loop {
            match frames.next().await {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => return (out, None),
                Err(error) => return (out, Some(error.to_string())),
            }
        }
    }

    fn record(data: &[u8]) -> Frame {
        Frame::Record(data.to_vec())
    }

    #[tokio::test]
    async fn lines_lose_their_line_ends_only() {
        let (frames, error) = read_all(b"a\nb\r\n\n c \nlast", Framing::Line).await;
        assert_eq!(frames, [record(b"a"), record(b"b"), record(b""), record(b" c "), record(b"last")]);
        assert_eq!(error, None);
        assert_eq!(read_all(b"", Framing::Line).await.0, []);
    }

    #[tokio::test]
    async fn length_delimited_records_are_read_skipped_or_reported_truncated() {
        let mut input = vec![0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
        input.extend([0, 0, 0, 11]);
        input.extend([b'x'; 11]);
        input.extend([0, 0, 0, 1, b'!']);
        let (frames, error) = read_all(&input, Framing::Length).await;
        assert_eq!(frames, [record(b"hi"), record(b""), Frame::Oversized(11), record(b"!")]);
        assert_eq!(error, None);

        let (frames, error) = read_all(&[0, 0, 0, 3, b'a', b'b'], Framing::Length).await;
        assert_eq!(frames, []);
        assert_eq!(error.as_deref(), Some("record 1: the input ends inside the record (2 of 3 bytes)"));
        let (frames, error) = read_all(&[0, 0, 0, 1, b'a', 0, 0], Framing::Length).await;
        assert_eq!(frames, [record(b"a")]);
        assert_eq!(error.as_deref(), Some("record 2: the input ends inside the record (2 of 4 bytes)"));
    }

    #[test]
    fn partition_keys_come_from_a_json_field() {
        let mut keys = KeySource::Field("id".to_owned());
        assert_eq!(keys.key(br#"{"id":"a-1","x":2}"#), Ok("a-1".to_owned()));
        assert_eq!(keys.key(br#"{"id":42}"#), Ok("42".to_owned()));
        assert!(keys.key(br#"{"id":null}"#).is_err());
        assert!(keys.key(br#"{"other":1}"#).unwrap_err().contains("no field \"id\""));
        assert!(keys.key(b"not json").unwrap_err().starts_with("not JSON"));
        let mut random = KeySource::Random(Rng::new(1));
        assert_ne!(random.key(b""), random.key(b""));
    }
}
