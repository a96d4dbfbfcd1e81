//! Delivery to a Firehose delivery stream (`deliveryStream` flows), sans-IO: which lines go into which
//! Firehose record (`aggregatedRecordSizeBytes` joins whole lines), which records into which
//! `PutRecordBatch` call (the service's limits), and what a call's answer means for each record (written:
//! its lines are confirmed; failed: retried alone after a backoff, never dropped).
//!
//! # Call contract
//!
//! 1. [`FirehoseBatcher::push`] each record a flow sends, with the [`Part`] the tailer gave it.
//! 2. [`FirehoseBatcher::poll`] regularly (at the latest at [`FirehoseBatcher::next_wakeup`]): it returns
//!    the calls to make now. Each [`PutBatch`] is one `PutRecordBatch`, its records in order.
//! 3. A call's answer goes to [`FirehoseBatcher::on_result`]; it returns the parts now written, for
//!    [`crate::core::Tailer::on_delivered`].
//!
//! Limits (`PutRecordBatch` in the Firehose API reference): at most [`MAX_BATCH_RECORDS`] records and
//! [`MAX_BATCH_BYTES`] per call, [`MAX_RECORD_BYTES`] per record. A call goes when it is full, when its
//! oldest record waited `maxBufferAgeMillis`, or on a flush; at most `max_calls_in_flight` at once.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::core::tailer::FileKey;

/// Most records in one `PutRecordBatch` call (the Firehose API's limit).
pub const MAX_BATCH_RECORDS: usize = 500;
/// Most bytes of data in one `PutRecordBatch` call: 4 MiB (the Firehose API's limit).
pub const MAX_BATCH_BYTES: usize = 4 << 20;
/// Largest Firehose record before base64: 1,000 KiB (the Firehose API's limit; the agent's maximum record
/// size for Firehose flows).
pub const MAX_RECORD_BYTES: usize = 1000 << 10;

/// A record of a file, as the tailer issued it: what is confirmed once the Firehose record holding it is
/// written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// The file.
    pub key: FileKey,
    /// The record's first byte in it.
    pub start: u64,
}

/// Settings of a flow's batching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirehoseConfig {
    /// `aggregatedRecordSizeBytes` (0: off): whole lines are joined into one Firehose record of at most
    /// this many bytes (a line longer than it goes alone).
    pub aggregated_record_size: usize,
    /// `maxBufferSizeRecords` (at most [`MAX_BATCH_RECORDS`]): records per call.
    pub max_batch_records: usize,
    /// `maxBufferSizeBytes` (at most [`MAX_BATCH_BYTES`]): bytes per call.
    pub max_batch_bytes: usize,
    /// `maxBufferAgeMillis`: the longest a record waits for its call to fill.
    pub max_buffer_age: Duration,
    /// `retryInitialBackoffMillis`: the first pause before a failed record is sent again, doubled per
    /// failure of the same record up to `retry_max`.
    pub retry_initial: Duration,
    /// `retryMaxBackoffMillis`.
    pub retry_max: Duration,
    /// Calls at once (bounds memory with the agent's budget).
    pub max_calls_in_flight: usize,
}

impl Default for FirehoseConfig {
    /// The agent's defaults (`FirehoseConstants.java`, `FileFlow.java`).
    fn default() -> Self {
        FirehoseConfig {
            aggregated_record_size: 0,
            max_batch_records: MAX_BATCH_RECORDS,
            max_batch_bytes: MAX_BATCH_BYTES,
            max_buffer_age: Duration::from_secs(60),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_secs(10),
            max_calls_in_flight: 4,
        }
    }
}

/// One `PutRecordBatch` call to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutBatch {
    /// Its id, for [`FirehoseBatcher::on_result`].
    pub id: u64,
    /// The records' data, in order.
    pub records: Vec<Bytes>,
}

/// The answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The call was answered: per record, in order, `None` when written, else its error code
    /// (`RequestResponses[i].ErrorCode`). A missing entry counts as failed.
    Answered(Vec<Option<String>>),
    /// The call failed as a whole (its message): every record is sent again.
    Failed(String),
}

/// Counters of a batcher.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FirehoseStats {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed as a whole.
    pub failed_calls: u64,
    /// Records written.
    pub records_written: u64,
    /// Record failures (each retried).
    pub record_failures: u64,
    /// Lines sent inside joined records (`aggregatedRecordSizeBytes`).
    pub joined_lines: u64,
}

#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    parts: Vec<Part>,
    /// When its first line came.
    since: Instant,
    failures: u32,
    not_before: Instant,
}

/// One flow's Firehose batching (see the module documentation).
#[derive(Debug)]
pub struct FirehoseBatcher {
    config: FirehoseConfig,
    joining: Option<Pending>,
    queue: VecDeque<Pending>,
    retries: Vec<Pending>,
    in_flight: BTreeMap<u64, Vec<Pending>>,
    next_id: u64,
    stats: FirehoseStats,
    last_error: Option<String>,
}

impl FirehoseBatcher {
    /// A batcher; sizes are capped at the service's limits.
    pub fn new(mut config: FirehoseConfig) -> FirehoseBatcher {
        config.max_batch_records = config.max_batch_records.clamp(1, MAX_BATCH_RECORDS);
        config.max_batch_bytes = config.max_batch_bytes.clamp(1, MAX_BATCH_BYTES);
        config.aggregated_record_size = config.aggregated_record_size.min(MAX_RECORD_BYTES);
        config.max_calls_in_flight = config.max_calls_in_flight.max(1);
        FirehoseBatcher {
            config,
            joining: None,
            queue: VecDeque::new(),
            retries: Vec::new(),
            in_flight: BTreeMap::new(),
            next_id: 0,
            stats: FirehoseStats::default(),
            last_error: None,
        }
    }

    /// A record to send (`data`: at most [`MAX_RECORD_BYTES`]; framing keeps records within the flow's
    /// maximum, which is capped there), arriving at `now`.
    pub fn push(&mut self, part: Part, data: &[u8], now: Instant) {
        let limit = self.config.aggregated_record_size;
        if let Some(joining) = &mut self.joining
            && joining.data.len() + data.len() <= limit
        {
            joining.data.extend_from_slice(data);
            joining.parts.push(part);
            return;
        }
        if let Some(done) = self.joining.take() {
            self.queue_record(done);
        }
        let pending =
            Pending { data: data.to_vec(), parts: vec![part], since: now, failures: 0, not_before: now };
        if data.len() < limit {
            self.joining = Some(pending);
        } else {
            self.queue_record(pending);
        }
    }

    fn queue_record(&mut self, pending: Pending) {
        if pending.parts.len() > 1 {
            self.stats.joined_lines += pending.parts.len() as u64;
        }
        self.queue.push_back(pending);
    }

    /// The calls to make at `now`; with `flush`, everything waiting goes (within the calls in flight).
    pub fn poll(&mut self, now: Instant, flush: bool) -> Vec<PutBatch> {
        let age = self.config.max_buffer_age;
        let due =
            self.joining.as_ref().is_some_and(|j| flush || now.saturating_duration_since(j.since) >= age);
        if due && let Some(done) = self.joining.take() {
            self.queue_record(done);
        }
        // Records due for a retry go first: they are the oldest.
        let (due, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.retries).into_iter().partition(|p| p.not_before <= now);
        self.retries = later;
        let retrying = !due.is_empty();
        for pending in due.into_iter().rev() {
            self.queue.push_front(pending);
        }
        let mut batches = Vec::new();
        while self.in_flight.len() < self.config.max_calls_in_flight && !self.queue.is_empty() {
            let records = self.next_batch_records();
            // Full: the next record would not fit.
            let full = records == self.config.max_batch_records || records < self.queue.len();
            let old = self.queue.front().is_some_and(|p| now.saturating_duration_since(p.since) >= age);
            if !(full || old || flush || retrying) {
                break;
            }
            let taken: Vec<Pending> = self.queue.drain(..records).collect();
            let id = self.next_id;
            self.next_id += 1;
            self.stats.calls += 1;
            let data = taken.iter().map(|p| Bytes::copy_from_slice(&p.data)).collect();
            self.in_flight.insert(id, taken);
            batches.push(PutBatch { id, records: data });
        }
        batches
    }

    /// How many records from the front of the queue make the next call.
    fn next_batch_records(&self) -> usize {
        let (mut records, mut bytes) = (0, 0);
        for pending in &self.queue {
            let size = pending.data.len();
            if records == self.config.max_batch_records
                || (records > 0 && bytes + size > self.config.max_batch_bytes)
            {
                break;
            }
            records += 1;
            bytes += size;
        }
        records
    }

    /// The answer to call `id` at `now`: the parts now written. Failed records wait their backoff and go
    /// again.
    pub fn on_result(&mut self, id: u64, outcome: BatchOutcome, now: Instant) -> Vec<Part> {
        let Some(records) = self.in_flight.remove(&id) else { return Vec::new() };
        let answers: Vec<Option<String>> = match outcome {
            BatchOutcome::Answered(answers) => answers,
            BatchOutcome::Failed(message) => {
                self.stats.failed_calls += 1;
                self.last_error = Some(message.clone());
                vec![Some(message); records.len()]
            }
        };
        let mut written = Vec::new();
        for (index, mut pending) in records.into_iter().enumerate() {
            match answers.get(index) {
                Some(None) => {
                    self.stats.records_written += 1;
                    written.extend_from_slice(&pending.parts);
                }
                failed => {
                    self.stats.record_failures += 1;
                    let code =
                        failed.and_then(Clone::clone).unwrap_or_else(|| "no answer for the record".into());
                    self.last_error = Some(code);
                    let pause = self.config.retry_initial.saturating_mul(1 << pending.failures.min(16));
                    pending.failures += 1;
                    pending.not_before = now + pause.min(self.config.retry_max);
                    self.retries.push(pending);
                }
            }
        }
        written
    }

    /// When [`poll`](Self::poll) has something to do next without new records (`None`: nothing waits,
    /// or no call can be made before an answer comes).
    pub fn next_wakeup(&self) -> Option<Instant> {
        if self.in_flight.len() >= self.config.max_calls_in_flight {
            return None;
        }
        let age = self.config.max_buffer_age;
        let joining = self.joining.as_ref().map(|j| j.since + age);
        let queued = self.queue.front().map(|p| p.since + age);
        let retry = self.retries.iter().map(|p| p.not_before).min();
        [joining, queued, retry].into_iter().flatten().min()
    }

    /// Calls made and not answered.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Records waiting for a call or a retry (joined ones count once).
    pub fn waiting_records(&self) -> usize {
        self.queue.len() + self.retries.len() + usize::from(self.joining.is_some())
    }

    /// The counters.
    pub fn stats(&self) -> FirehoseStats {
        self.stats
    }

    /// The last error (a failed call's message or a record's error code), taken.
    pub fn take_last_error(&mut self) -> Option<String> {
        self.last_error.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(start: u64) -> Part {
        Part { key: FileKey(1), start }
    }

    fn batching(max_calls_in_flight: usize) -> FirehoseBatcher {
        FirehoseBatcher::new(FirehoseConfig { max_calls_in_flight, ..FirehoseConfig::default() })
    }

    fn lines(batcher: &mut FirehoseBatcher, count: u64, size: usize, now: Instant) {
        for n in 0..count {
            batcher.push(part(n * size as u64), &vec![b'x'; size], now);
        }
    }

    /// A batcher with `count` records of 10 bytes, and its first call (flushed).
    fn first_call(count: u64) -> (FirehoseBatcher, PutBatch, Instant) {
        let now = Instant::now();
        let mut batcher = FirehoseBatcher::new(FirehoseConfig::default());
        lines(&mut batcher, count, 10, now);
        let batch = batcher.poll(now, true).remove(0);
        (batcher, batch, now)
    }

    #[test]
    fn calls_hold_at_most_500_records_and_4_mib() {
        let now = Instant::now();
        let mut batcher = batching(100);
        lines(&mut batcher, 1200, 100, now);
        let sizes: Vec<usize> = batcher.poll(now, false).iter().map(|b| b.records.len()).collect();
        assert_eq!(sizes, vec![500, 500], "full calls go at once; the rest waits for the buffer age");
        let sizes: Vec<usize> =
            batcher.poll(now + Duration::from_secs(60), false).iter().map(|b| b.records.len()).collect();
        assert_eq!(sizes, vec![200]);
        let mut big = batching(100);
        lines(&mut big, 20, MAX_RECORD_BYTES, now);
        let batches = big.poll(now, true);
        for batch in &batches {
            let bytes: usize = batch.records.iter().map(Bytes::len).sum();
            assert!(bytes <= MAX_BATCH_BYTES, "{bytes}");
        }
        assert_eq!(batches.iter().map(|b| b.records.len()).sum::<usize>(), 20);
        assert_eq!(batches[0].records.len(), 4, "4 records of 1,000 KiB fit in 4 MiB, 5 do not");
    }

    #[test]
    fn a_partial_failure_retries_only_the_failed_records_after_a_backoff() {
        let (mut batcher, batch, now) = first_call(3);
        let answer = BatchOutcome::Answered(vec![None, Some("ServiceUnavailableException".into()), None]);
        assert_eq!(batcher.on_result(batch.id, answer, now), vec![part(0), part(20)]);
        assert!(batcher.poll(now + Duration::from_millis(99), false).is_empty(), "backoff");
        let retry = batcher.poll(now + Duration::from_millis(100), false).remove(0);
        assert_eq!(retry.records.len(), 1);
        // A whole call failing retries its records, with a doubled pause.
        assert!(batcher.on_result(retry.id, BatchOutcome::Failed("timeout".into()), now).is_empty());
        assert_eq!(batcher.next_wakeup(), Some(now + Duration::from_millis(200)));
        let again = batcher.poll(now + Duration::from_millis(200), false).remove(0);
        assert_eq!(batcher.on_result(again.id, BatchOutcome::Answered(vec![None]), now), vec![part(10)]);
        let stats = batcher.stats();
        assert_eq!((stats.records_written, stats.record_failures, stats.failed_calls), (3, 2, 1));
        assert_eq!(batcher.waiting_records(), 0);
    }

    #[test]
    fn a_missing_answer_counts_as_failed() {
        let (mut batcher, batch, now) = first_call(2);
        assert_eq!(batcher.on_result(batch.id, BatchOutcome::Answered(vec![None]), now), vec![part(0)]);
        assert_eq!(batcher.waiting_records(), 1);
    }

    #[test]
    fn aggregated_records_join_whole_lines_up_to_the_size() {
        let now = Instant::now();
        let config = FirehoseConfig { aggregated_record_size: 25, ..FirehoseConfig::default() };
        let mut batcher = FirehoseBatcher::new(config);
        for (n, line) in
            ["aaaaaaaaa\n", "bbbbbbbbb\n", "ccccc\n", "ddd\n", "a line over the size limit\n", "e\n"]
                .iter()
                .enumerate()
        {
            batcher.push(part(n as u64), line.as_bytes(), now);
        }
        let batch = batcher.poll(now, true).remove(0);
        let records: Vec<&[u8]> = batch.records.iter().map(|r| &r[..]).collect();
        assert_eq!(
            records,
            vec![&b"aaaaaaaaa\nbbbbbbbbb\n"[..], b"ccccc\nddd\n", b"a line over the size limit\n", b"e\n"]
        );
        let written = batcher.on_result(
            batch.id,
            BatchOutcome::Answered(vec![None, None, Some("x".into()), None]),
            now,
        );
        assert_eq!(
            written,
            vec![part(0), part(1), part(2), part(3), part(5)],
            "a joined record confirms all its lines"
        );
        assert_eq!(batcher.stats().joined_lines, 4);
    }

    #[test]
    fn calls_in_flight_are_bounded_and_a_buffer_waits_for_its_age() {
        let now = Instant::now();
        let mut batcher = batching(1);
        lines(&mut batcher, 10, 10, now);
        assert!(batcher.poll(now, false).is_empty(), "not full, not old");
        assert_eq!(batcher.next_wakeup(), Some(now + Duration::from_secs(60)));
        let first = batcher.poll(now + Duration::from_secs(60), false);
        assert_eq!(first.len(), 1);
        lines(&mut batcher, 600, 10, now);
        assert!(batcher.poll(now + Duration::from_secs(61), false).is_empty(), "one call at a time");
        batcher.on_result(first[0].id, BatchOutcome::Answered(vec![None; 10]), now);
        assert_eq!(batcher.poll(now + Duration::from_secs(61), false).len(), 1);
    }
}
