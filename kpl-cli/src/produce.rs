//! `kpl produce`: records from standard input into a Kinesis stream, through the producer and the AWS SDK.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use indicatif::ProgressBar;
use kpl_core::ListShardsRequest;
use kpl_tokio::{
    AwsBackend, Backend, Completion, DeliveryError, KinesisProducer, LoadedProperties, ProducerConfig,
    ProducerStats, RecordError, Request, StreamTarget, UserRecord,
};
use tokio::io::BufReader;

use crate::error::CliError;
use crate::failures::{Failures, count, thousands};
use crate::input::{Frame, Frames, Framing};
use crate::keys::{KeySource, PartitionKeys};
use crate::rng::Rng;

const EXAMPLES: &str = "\
Examples:
  seq 1000 | kpl produce --stream orders --region us-east-1
  kpl produce --stream orders --key-field customer < orders.jsonl   # key from each line's JSON
  kpl produce --stream orders --framing length < records.bin        # 4-byte big-endian length, then data
  kpl produce --stream orders --config kpl.properties < lines.txt   # the KPL's settings: RecordTtl, ...
  kpl produce --stream orders --profile prod --errors failed.jsonl < lines.txt
  AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
    kpl produce --stream orders --region us-east-1 --endpoint-url http://127.0.0.1:4567   # kinesalite

Before reading any input, kpl checks that the credentials resolve and the stream exists (one ListShards,
at most 10 s); if ListShards is denied (a role allowed only PutRecords), it warns and goes on.
Records not written are reported on standard error grouped by error, `N records failed: <error>
(records 1, 2, ...)`, where a record's number is its line number (or position, with --framing length),
and the exit code is then 1; --errors FILE lists every one of them. A line over the largest record size
(1 MiB, or MaxUserRecordSize) is refused as soon as it passes the limit, and the rest of it is skipped
without being held in memory. On success, a summary goes to standard output. Credentials come from the
AWS default chain (environment, ~/.aws, SSO, instance role), or --profile.

With --key-field (and --ehk-field), a field's key is its text as written: a string unescaped, a number
digit for digit (12345678901234567890123, 1.50 and 1e3 unchanged), true and false as `true` and `false`;
a record whose field is null, an object or an array, or that is not a JSON object, is refused alone.";

/// How long the check that the stream exists may take: long enough for a slow credential chain (SSO, an
/// instance role) and one request, short enough to fail an unreachable endpoint quickly.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(10);

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
    /// The named profile of ~/.aws/config and ~/.aws/credentials to take credentials and region from.
    #[arg(long, value_name = "NAME")]
    profile: Option<String>,
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
    /// Take each record's explicit hash key (a decimal in 0..2^128-1, which picks the shard instead of the
    /// partition key's MD5) from this field of the record, a JSON object.
    #[arg(long, value_name = "NAME")]
    ehk_field: Option<String>,
    /// Write every record not written to FILE, one JSON object per line: `{"record": N, "error": "..."}`.
    #[arg(long, value_name = "FILE")]
    errors: Option<PathBuf>,
}

/// A record put: its number and size in bytes.
type Tag = (u64, u64);

/// What the results of the records put add up to.
#[derive(Debug, Default)]
struct Written {
    bytes: u64,
    error: Option<CliError>,
}

/// Reads standard input into the stream, reports the records not written, and fails if any was not.
pub async fn run(args: ProduceArgs) -> Result<(), CliError> {
    let (config, loaded) = load_config(args.config.as_deref())?;
    let backend = aws_backend(&args, loaded.as_ref()).await?;
    let stream = match args.stream.strip_prefix("arn:") {
        Some(_) => StreamTarget::arn(&args.stream),
        None => StreamTarget::name(&args.stream),
    };
    check_stream(&backend, &stream).await?;
    // Long enough for every record to reach its TTL, so none is cut short by the shutdown.
    let shutdown_timeout =
        config.record_ttl().saturating_add(config.request_timeout()).saturating_add(Duration::from_secs(5));
    let max_record_size = usize::try_from(config.max_record_size()).unwrap_or(usize::MAX);
    let producer = KinesisProducer::builder(config, backend).spawn()?;
    let partition = match (&args.key, &args.key_field) {
        (Some(key), _) => PartitionKeys::Fixed(key.clone()),
        (None, Some(field)) => PartitionKeys::Field(field.clone()),
        (None, None) => PartitionKeys::Random(Rng::new(crate::rng::entropy_seed())),
    };
    let mut keys = KeySource { partition, explicit_hash_key_field: args.ehk_field.clone() };
    let failures = Arc::new(Mutex::new(Failures::new(args.errors.as_deref())?));
    let (tracker, completions) = producer.with_completions::<Tag>();
    let results = tokio::spawn({
        let failures = Arc::clone(&failures);
        let mut written = Written::default();
        async move {
            completions
                .for_each(|done: Completion<Tag>| {
                    let (number, size) = done.tag;
                    match done.result {
                        Ok(_) => written.bytes += size,
                        Err(error) => {
                            let (error, detail) = describe(&error);
                            let added = lock(&failures).add(number, &error, &detail);
                            written.error = written.error.take().or(added.err());
                        }
                    }
                })
                .await;
            written
        }
    });
    let bar = progress_bar();

    let started = Instant::now();
    let mut frames = Frames::new(BufReader::new(tokio::io::stdin()), args.framing, max_record_size);
    // Stop reading at an input error, but deliver what was read before it.
    let read = loop {
        let frame = match frames.next().await {
            Ok(Some(frame)) => frame,
            Ok(None) => break Ok(()),
            Err(error) => break Err(error),
        };
        bar.inc(1);
        let number = frames.count();
        let put = match frame {
            Frame::Record(data) => {
                let size = data.len() as u64;
                match keys.keys(&data) {
                    Ok(keys) => {
                        let mut record = UserRecord::new(stream.clone(), keys.partition_key, data);
                        record.explicit_hash_key = keys.explicit_hash_key;
                        tracker.put((number, size), record).await.map_err(|refused| refused.error.to_string())
                    }
                    Err(message) => Err(message),
                }
            }
            Frame::Oversized(size) => {
                Err(format!("record of {size} bytes (data alone) is over the {max_record_size} byte limit"))
            }
        };
        match put {
            Ok(()) => {}
            Err(message) => {
                if let Err(error) = lock(&failures).add(number, &message, &message) {
                    break Err(error);
                }
            }
        }
    };
    drop(tracker);
    producer.flush().await;
    let written = results.await?;
    let stats = producer.stats().await.unwrap_or_default();
    let shutdown = producer.shutdown(shutdown_timeout).await;
    bar.finish_and_clear();
    let failed = {
        let mut failures = lock(&failures);
        eprint!("{}", failures.finish()?);
        failures.total()
    };
    read?;
    if let Some(error) = written.error {
        return Err(error);
    }
    if failed > 0 {
        return Err(CliError::RecordsFailed { failed, total: frames.count() });
    }
    shutdown?;
    println!("{}", success_summary(frames.count(), written.bytes, &stream, &stats, started.elapsed()));
    Ok(())
}

fn lock(failures: &Mutex<Failures>) -> MutexGuard<'_, Failures> {
    failures.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `2,000 records (25,780 bytes) written to lines in 0.41 s: 4 Kinesis records (500.0 records each),
/// 2 PutRecords requests, 0 retries of records, 0 throttled Kinesis records`.
fn success_summary(
    records: u64,
    bytes: u64,
    stream: &StreamTarget,
    stats: &ProducerStats,
    time: Duration,
) -> String {
    let per_kinesis_record =
        if stats.kinesis_records_put > 0 { records as f64 / stats.kinesis_records_put as f64 } else { 0.0 };
    format!(
        "{} ({} bytes) written to {stream} in {:.2} s: {} ({per_kinesis_record:.1} records each), {}, {}, {}",
        count(records, "record", "records"),
        thousands(bytes),
        time.as_secs_f64(),
        count(stats.kinesis_records_put, "Kinesis record", "Kinesis records"),
        count(stats.put_records_requests, "PutRecords request", "PutRecords requests"),
        count(stats.retries, "retry of a record", "retries of records"),
        count(stats.throttled_entries, "throttled Kinesis record", "throttled Kinesis records"),
    )
}

/// A spinner on standard error, when it is a terminal: records read, and their rate.
fn progress_bar() -> ProgressBar {
    let bar = crate::progress::on_stderr(None, "{spinner} {elapsed} {human_pos} records read, {rate}");
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Fails in one line, within [`PREFLIGHT_TIMEOUT`], when the stream cannot be written: no credentials, no
/// endpoint, no such stream. A `ListShards` that is denied (a role allowed only `PutRecords`) says nothing
/// about `PutRecords`: warn and go on.
async fn check_stream(backend: &impl Backend, stream: &StreamTarget) -> Result<(), CliError> {
    let request = ListShardsRequest {
        stream: stream.clone(),
        next_token: None,
        max_results: 1,
        only_open_shards: false,
    };
    let listed = tokio::time::timeout(PREFLIGHT_TIMEOUT, backend.send(Request::ListShards(request))).await;
    let reason = match listed.map(|response| response.error().cloned()) {
        Ok(None) => return Ok(()),
        Ok(Some(error)) if error.code.as_deref() == Some("AccessDeniedException") => {
            eprintln!(
                "kpl: warning: cannot check stream {stream} (ListShards denied: {}); going on",
                crate::one_line(&error.message)
            );
            return Ok(());
        }
        // The SDK reports a credential chain that found nothing as a dispatch failure; say what it is.
        Ok(Some(error))
            if error.code.as_deref() == Some("DispatchFailure") && error.message.contains("credential") =>
        {
            let message =
                error.message.trim_start_matches("dispatch failure: ").trim_start_matches("other: ");
            format!(
                "no usable AWS credentials (environment, --profile, ~/.aws, SSO, instance role): {message}"
            )
        }
        Ok(Some(error)) => match error.code {
            Some(code) => format!("{code}: {}", error.message),
            None => error.message,
        },
        Err(_) => format!("no answer within {} s", PREFLIGHT_TIMEOUT.as_secs()),
    };
    Err(CliError::StreamCheck { stream: stream.to_string(), reason })
}

/// A delivery error as reported: what records failing alike share (no attempt count), and the whole of it
/// for the `--errors` file. An expired record's report names its last attempt's error.
fn describe(error: &DeliveryError) -> (String, String) {
    let DeliveryError::Failed(failure) = error else {
        return (error.to_string(), error.to_string());
    };
    let last = failure.attempts.iter().rev().find_map(|attempt| attempt.error.as_ref());
    let last = last.map_or_else(String::new, |last| format!("; last error: {}: {}", last.code, last.message));
    match &failure.error {
        RecordError::Rejected(request) => {
            let code = request.code.as_deref().map_or_else(String::new, |code| format!("{code}: "));
            let text = format!("rejected by Kinesis: {code}{}", request.message);
            (text.clone(), text)
        }
        RecordError::Expired { .. } => {
            (format!("expired (RecordTtl) before it was written{last}"), format!("{failure}{last}"))
        }
        _ => (format!("{failure}{last}"), format!("{failure}{last}")),
    }
}

/// The producer settings (the KPL's defaults, or the file's) and the file, warning on standard error about
/// the file's settings that kpl produce does not apply.
fn load_config(path: Option<&Path>) -> Result<(ProducerConfig, Option<LoadedProperties>), CliError> {
    let Some(path) = path else {
        return Ok((ProducerConfig::default(), None));
    };
    let loaded = crate::properties::load(path)?;
    for setting in kpl_tokio::unapplied_settings(&loaded) {
        eprintln!("kpl: warning: {}: {setting}", path.display());
    }
    let metrics: Vec<&str> = loaded
        .other_settings
        .keys()
        .map(String::as_str)
        .filter(|key| key.starts_with("Metrics") || key.starts_with("Cloudwatch"))
        .collect();
    if !metrics.is_empty() {
        eprintln!(
            "kpl: warning: {}: kpl produce uploads no metrics: {} not used",
            path.display(),
            metrics.join(", ")
        );
    }
    Ok((loaded.config.clone(), Some(loaded)))
}

/// The SDK's default chain (or `--profile`), with the file's connection settings (region, endpoint, proxy,
/// certificates, connect timeout), then `--region` and `--endpoint-url`, which win over the file.
async fn aws_backend(args: &ProduceArgs, loaded: Option<&LoadedProperties>) -> Result<AwsBackend, CliError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let (Some(loaded), Some(path)) = (loaded, &args.config) {
        loader = kpl_tokio::kinesis_config_loader(loader, loaded)
            .map_err(|source| CliError::ConnectionSettings { path: path.clone(), source })?;
    }
    if let Some(region) = &args.region {
        loader = loader.region(Region::new(region.clone()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    let sdk_config = loader.load().await;
    if sdk_config.region().is_none() {
        return Err(CliError::NoRegion);
    }
    Ok(AwsBackend::from_sdk_config(&sdk_config))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use kpl_core::{ListShardsOutput, RequestErrorKind};
    use kpl_tokio::RequestError;
    use kpl_tokio::Response;

    use super::*;

    /// Answers `ListShards` with `answer` (never, for `None`).
    struct Lister(Option<Result<ListShardsOutput, RequestError>>);

    #[async_trait]
    impl Backend for Lister {
        async fn send(&self, request: Request) -> Response {
            assert!(matches!(request, Request::ListShards(_)), "the check only lists shards");
            match &self.0 {
                Some(answer) => Response::ListShards(answer.clone()),
                None => std::future::pending().await,
            }
        }
    }

    fn refused(kind: RequestErrorKind, code: &str, message: &str) -> Lister {
        Lister(Some(Err(RequestError::new(kind, Some(code), message))))
    }

    #[tokio::test(start_paused = true)]
    async fn the_stream_check_passes_fails_or_warns() {
        let stream = StreamTarget::name("orders");
        let listed = Lister(Some(Ok(ListShardsOutput { shards: Vec::new(), next_token: None })));
        assert!(check_stream(&listed, &stream).await.is_ok());
        // A role allowed only PutRecords: the check cannot tell, so the run goes on.
        let denied = refused(RequestErrorKind::Fatal, "AccessDeniedException", "not authorized");
        assert!(check_stream(&denied, &stream).await.is_ok());

        let missing = refused(
            RequestErrorKind::StreamNotFound,
            "ResourceNotFoundException",
            "Stream orders not found.",
        );
        assert_eq!(
            check_stream(&missing, &stream).await.unwrap_err().to_string(),
            "cannot write to stream orders: ResourceNotFoundException: Stream orders not found."
        );
        let no_credentials = refused(
            RequestErrorKind::Transient,
            "DispatchFailure",
            "dispatch failure: other: no credentials found in chain",
        );
        assert_eq!(
            check_stream(&no_credentials, &stream).await.unwrap_err().to_string(),
            "cannot write to stream orders: no usable AWS credentials (environment, --profile, ~/.aws, SSO, \
             instance role): no credentials found in chain"
        );
        let started = tokio::time::Instant::now();
        assert_eq!(
            check_stream(&Lister(None), &stream).await.unwrap_err().to_string(),
            "cannot write to stream orders: no answer within 10 s"
        );
        assert_eq!(started.elapsed(), PREFLIGHT_TIMEOUT);
    }
}
