//! What the driver logs about requests and expiries, at a rate a busy producer can afford: the first
//! whole-request failure of each kind (and the first expiry) is logged at once, repeats are counted and
//! summarised once per [`LOG_INTERVAL`]; shard throttling is summarised per stream per interval, never one
//! line per shard. Summaries are written when the driver next runs (and all of them when it stops).
//!
//! Levels: `error` for failures retrying will not cure (access denied, stream not found, a request Kinesis
//! refuses), `warn` for the transient and ambiguous ones (5xx, timeouts, connections lost), `info` for
//! throttling, which is Kinesis's normal flow control. Logged fields are the stream, the operation, the error
//! class, code and message (cut to 512 characters by the backends): never credentials or record data.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kpl_core::{RequestError, RequestErrorKind, ShardId, StreamTarget};
use tracing::{error, info, warn};

/// How often repeats of one failure, and a stream's throttling, are summarised.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// A request in flight, as the log names it.
#[derive(Debug, Clone)]
pub(crate) struct RequestLabel {
    pub(crate) operation: &'static str,
    pub(crate) stream: StreamTarget,
}

/// One kind of failure: the same operation on the same stream failing the same way.
#[derive(Debug, PartialEq, Eq)]
struct FailureKey {
    operation: &'static str,
    stream: StreamTarget,
    kind: RequestErrorKind,
    code: Option<String>,
}

struct Failures {
    key: FailureKey,
    /// When it was last logged.
    logged_at: Instant,
    /// Occurrences since then, not logged yet.
    unlogged: u64,
    /// The newest message.
    message: String,
}

struct Throttles {
    stream: StreamTarget,
    since: Instant,
    shards: BTreeSet<ShardId>,
    events: u64,
    lowest_rate_factor: f64,
}

/// Records that expired (their `record_ttl` passed before they were written).
struct Expired {
    logged_at: Instant,
    unlogged: usize,
}

/// The driver's request log; `now` comes from the runtime's clock.
#[derive(Default)]
pub(crate) struct RequestLog {
    failures: Vec<Failures>,
    throttles: Vec<Throttles>,
    expired: Option<Expired>,
}

impl RequestLog {
    /// A request failed as a whole. Throttling is counted with the stream's throttling summary.
    pub(crate) fn request_failed(&mut self, now: Instant, label: &RequestLabel, error: &RequestError) {
        if error.kind == RequestErrorKind::Throttling {
            self.throttled(now, &label.stream, None, None);
            return;
        }
        let key = FailureKey {
            operation: label.operation,
            stream: label.stream.clone(),
            kind: error.kind,
            code: error.code.clone(),
        };
        match self.failures.iter_mut().find(|failures| failures.key == key) {
            Some(failures) => {
                failures.unlogged += 1;
                failures.message.clone_from(&error.message);
            }
            None => {
                log_failure(&key, &error.message, 1, None);
                self.failures.push(Failures { key, logged_at: now, unlogged: 0, message: String::new() });
            }
        }
    }

    /// A shard throttled a request of `stream`; the limiter now sends to it at `rate_factor`.
    pub(crate) fn shard_throttled(
        &mut self,
        now: Instant,
        stream: &StreamTarget,
        shard: ShardId,
        rate_factor: f64,
    ) {
        self.throttled(now, stream, Some(shard), Some(rate_factor));
    }

    fn throttled(
        &mut self,
        now: Instant,
        stream: &StreamTarget,
        shard: Option<ShardId>,
        rate_factor: Option<f64>,
    ) {
        let index = match self.throttles.iter().position(|throttles| throttles.stream == *stream) {
            Some(index) => index,
            None => {
                self.throttles.push(Throttles {
                    stream: stream.clone(),
                    since: now,
                    shards: BTreeSet::new(),
                    events: 0,
                    lowest_rate_factor: 1.0,
                });
                self.throttles.len() - 1
            }
        };
        let throttles = &mut self.throttles[index];
        throttles.events += 1;
        throttles.shards.extend(shard);
        if let Some(rate_factor) = rate_factor {
            throttles.lowest_rate_factor = throttles.lowest_rate_factor.min(rate_factor);
        }
    }

    /// `records` records expired: the first of them are logged at once, later ones once per interval.
    pub(crate) fn records_expired(&mut self, now: Instant, records: usize) {
        match &mut self.expired {
            Some(expired) => expired.unlogged += records,
            None => {
                log_expired(records, None);
                self.expired = Some(Expired { logged_at: now, unlogged: 0 });
            }
        }
    }

    /// Logs the summaries whose interval has passed (every one with `all`, when the driver stops).
    pub(crate) fn summarise(&mut self, now: Instant, all: bool) {
        let due = |since: Instant| all || now.saturating_duration_since(since) >= LOG_INTERVAL;
        self.failures.retain_mut(|failures| {
            if !due(failures.logged_at) {
                return true;
            }
            if failures.unlogged == 0 {
                // Quiet for a whole interval: the next occurrence is news again.
                return false;
            }
            let elapsed = now.saturating_duration_since(failures.logged_at);
            log_failure(&failures.key, &failures.message, failures.unlogged, Some(elapsed));
            failures.logged_at = now;
            failures.unlogged = 0;
            true
        });
        if let Some(expired) = &mut self.expired
            && due(expired.logged_at)
        {
            if expired.unlogged == 0 {
                self.expired = None;
            } else {
                log_expired(expired.unlogged, Some(now.saturating_duration_since(expired.logged_at)));
                expired.logged_at = now;
                expired.unlogged = 0;
            }
        }
        self.throttles.retain(|throttles| {
            if !due(throttles.since) {
                return true;
            }
            info!(
                stream = %throttles.stream,
                shards = throttles.shards.len(),
                throttles = throttles.events,
                lowest_rate_factor = throttles.lowest_rate_factor,
                seconds = now.saturating_duration_since(throttles.since).as_secs_f64(),
                "stream throttled; the producer slowed down to the shards' rate"
            );
            false
        });
    }
}

fn log_expired(records: usize, over: Option<Duration>) {
    let seconds = over.map(|over| over.as_secs_f64());
    warn!(records, seconds, "records expired: their record_ttl passed before they were written");
}

fn log_failure(key: &FailureKey, message: &str, count: u64, over: Option<Duration>) {
    let (operation, stream, kind, code) = (key.operation, &key.stream, key.kind, key.code.as_deref());
    let seconds = over.map(|over| over.as_secs_f64());
    match kind {
        RequestErrorKind::Fatal | RequestErrorKind::StreamNotFound | RequestErrorKind::InvalidRequest => {
            error!(
                operation, %stream, ?kind, code, %message, count, seconds, "request failed"
            )
        }
        _ => warn!(operation, %stream, ?kind, code, %message, count, seconds, "request failed; retrying"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex, PoisonError};

    use super::*;

    /// The log lines `run` writes, without ANSI colours or timestamps.
    fn lines(run: impl FnOnce()) -> Vec<String> {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .without_time()
            .with_writer(move || SharedWriter(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, run);
        let text = String::from_utf8(buffer.lock().unwrap_or_else(PoisonError::into_inner).clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    struct SharedWriter(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedWriter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn label(stream: &str) -> RequestLabel {
        RequestLabel { operation: "PutRecords", stream: StreamTarget::name(stream) }
    }

    #[test]
    fn repeated_failures_are_logged_once_then_summarised_per_interval() {
        let start = crate::runtime::Runtime::now(&crate::TokioRuntime);
        let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "not allowed");
        let unavailable =
            RequestError::new(RequestErrorKind::Transient, Some("ServiceUnavailable"), "try later");
        let logged = lines(|| {
            let mut log = RequestLog::default();
            for i in 0..100 {
                log.request_failed(start + Duration::from_millis(i), &label("orders"), &denied);
                log.summarise(start + Duration::from_millis(i), false);
            }
            log.request_failed(start, &label("orders"), &unavailable);
            log.summarise(start + LOG_INTERVAL, false);
            // Quiet for an interval: forgotten, so the next one is logged at once.
            log.summarise(start + 2 * LOG_INTERVAL, false);
            log.request_failed(start + 2 * LOG_INTERVAL, &label("orders"), &denied);
        });
        assert_eq!(logged.len(), 4, "{logged:#?}");
        assert!(
            logged[0].starts_with("ERROR") && logged[0].contains("AccessDeniedException"),
            "{}",
            logged[0]
        );
        assert!(logged[0].contains("count=1"), "{}", logged[0]);
        assert!(logged[1].starts_with(" WARN") && logged[1].contains("ServiceUnavailable"), "{}", logged[1]);
        assert!(logged[2].starts_with("ERROR") && logged[2].contains("count=99"), "{}", logged[2]);
        assert!(logged[3].contains("count=1") && !logged[3].contains("seconds"), "{}", logged[3]);
    }

    #[test]
    fn expiries_are_logged_at_once_then_summarised() {
        let start = crate::runtime::Runtime::now(&crate::TokioRuntime);
        let logged = lines(|| {
            let mut log = RequestLog::default();
            for i in 0..10 {
                log.records_expired(start + Duration::from_millis(i), 100);
                log.summarise(start + Duration::from_millis(i), false);
            }
            log.summarise(start + LOG_INTERVAL, false);
        });
        assert_eq!(logged.len(), 2, "{logged:#?}");
        assert!(logged[0].contains("records=100") && !logged[0].contains("seconds"), "{}", logged[0]);
        assert!(logged[1].contains("records=900 seconds=10"), "{}", logged[1]);
    }

    #[test]
    fn throttling_is_one_line_per_stream_per_interval() {
        let start = crate::runtime::Runtime::now(&crate::TokioRuntime);
        let logged = lines(|| {
            let mut log = RequestLog::default();
            for i in 0..64_u32 {
                let at = start + Duration::from_millis(u64::from(i));
                log.shard_throttled(
                    at,
                    &StreamTarget::name("orders"),
                    ShardId::from(format!("shard-{}", i % 8).as_str()),
                    0.5,
                );
                log.summarise(at, false);
            }
            let whole_request =
                RequestError::new(RequestErrorKind::Throttling, Some("LimitExceededException"), "slow");
            log.request_failed(start, &label("clicks"), &whole_request);
            log.summarise(start + LOG_INTERVAL, false);
        });
        assert_eq!(logged.len(), 2, "{logged:#?}");
        let orders = logged.iter().find(|line| line.contains("stream=orders")).unwrap();
        assert!(
            orders.starts_with(" INFO") && orders.contains("shards=8") && orders.contains("throttles=64"),
            "{orders}"
        );
        assert!(orders.contains("lowest_rate_factor=0.5"), "{orders}");
        let clicks = logged.iter().find(|line| line.contains("stream=clicks")).unwrap();
        assert!(clicks.contains("shards=0") && clicks.contains("throttles=1"), "{clicks}");
    }
}
