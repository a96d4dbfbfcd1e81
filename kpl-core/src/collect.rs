//! Collection: Kinesis records gathered into PutRecords requests, one collector per stream, sent when a
//! request is full, when a shard's share of it is, or at the earliest deadline of its records. Finished
//! requests wait in the ready queue for a free connection. Owns the collectors, their timers and the queue.

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use crate::ids::{ShardSlot, StreamIx};
use crate::map::DetMap;
use crate::outgoing::{AcceptedRecord, OutgoingRecord};
use crate::time::{deadline_after, earliest, has_passed};

/// Bytes of one shard's records in a request that make the collector send at once: bursts to one shard
/// get throttled, so no shard accumulates more (the KPL's rule).
const SHARD_BYTES_FLUSH: usize = 256 * 1024;
/// Most extra time an aggregate gets to be collected into a request (the KPL's `putrecords_buffer_duration`).
const MAX_COLLECTION_WINDOW: Duration = Duration::from_millis(50);
/// Share of `RecordMaxBufferedTime` the collection window may add: small enough that a record's total
/// delay stays close to what the user configured (20% over at most), large enough to let aggregates
/// finished around the same deadline share a request.
const COLLECTION_WINDOW_SHARE: f64 = 0.2;

/// Kinesis records being collected into the next PutRecords request of a stream.
#[derive(Debug, Default)]
struct Collector {
    records: Vec<OutgoingRecord>,
    size: usize,
    shard_bytes: DetMap<ShardSlot, usize>,
    deadline: Option<Instant>,
    /// A record buffered before a `flush` is here: send without waiting for the deadline.
    flush_requested: bool,
    /// Kinesis records created before this sequence number are being flushed.
    flush_through: u64,
}

impl Collector {
    /// Adds a record; returns the bytes now collected for its shard.
    fn add(&mut self, record: OutgoingRecord) -> usize {
        let size = record.wire_size();
        self.size += size;
        self.deadline = earliest(self.deadline, record.deadline);
        let shard_bytes = match record.slot {
            Some(slot) => {
                let bytes = self.shard_bytes.entry(slot).or_default();
                *bytes += size;
                *bytes
            }
            None => 0,
        };
        self.records.push(record);
        shard_bytes
    }

    fn is_due(&self, now: Instant) -> bool {
        self.flush_requested || has_passed(self.deadline, now)
    }

    /// Takes everything collected.
    fn take(&mut self) -> Vec<OutgoingRecord> {
        self.size = 0;
        self.deadline = None;
        self.flush_requested = false;
        self.shard_bytes.clear();
        std::mem::take(&mut self.records)
    }
}

/// Limits of one PutRecords request, and how long an aggregate may wait for company.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestLimits {
    /// `CollectionMaxCount`: entries per request.
    pub(crate) max_count: usize,
    /// `CollectionMaxSize`: bytes (partition keys plus data) per request.
    pub(crate) max_size: usize,
    /// Extra time an aggregate gets to share a request; `None` when aggregation is off (records go by their
    /// own deadlines, as the KPL's).
    pub(crate) window: Option<Duration>,
}

impl RequestLimits {
    /// The window for records buffered up to `record_max_buffered_time`.
    pub(crate) fn window_for(record_max_buffered_time: Duration) -> Duration {
        MAX_COLLECTION_WINDOW.min(record_max_buffered_time.mul_f64(COLLECTION_WINDOW_SHARE))
    }
}

/// The collection stage of every stream, and the requests ready to go.
#[derive(Debug)]
pub(crate) struct Collection {
    limits: RequestLimits,
    collectors: Vec<Collector>,
    /// Requests built and waiting for a free connection.
    ready: VecDeque<(StreamIx, Vec<OutgoingRecord>)>,
    /// Collector deadlines. Never cancelled: a stale one finds its collector not due and does nothing.
    timers: BTreeSet<(Instant, StreamIx)>,
    /// Collectors that fell due during the current input, sent once it is done.
    due: Vec<StreamIx>,
}

impl Collection {
    pub(crate) fn new(limits: RequestLimits) -> Self {
        Self {
            limits,
            collectors: Vec::new(),
            ready: VecDeque::new(),
            timers: BTreeSet::new(),
            due: Vec::new(),
        }
    }

    pub(crate) fn stream_added(&mut self) {
        self.collectors.push(Collector::default());
    }

    /// Adds a Kinesis record to the next PutRecords request of its stream; sends the request when it is
    /// full, or when the record must go alone.
    pub(crate) fn collect(&mut self, now: Instant, s: StreamIx, mut record: OutgoingRecord) {
        let RequestLimits { max_count, max_size, window } = self.limits;
        if let Some(window) = window {
            // Give an aggregate sent by its deadline a little time to share a request.
            let extended = deadline_after(now, window);
            record.deadline = earliest(record.deadline.max(extended), record.expiration);
        }
        let isolated = record.isolated();
        let collector = &self.collectors[s.index()];
        if !collector.records.is_empty()
            && (isolated
                || collector.records.len() + 1 > max_count
                || collector.size + record.wire_size() > max_size)
        {
            self.send(s);
        }
        let collector = &mut self.collectors[s.index()];
        let before = collector.deadline;
        let was_due = collector.is_due(now);
        collector.flush_requested |= record.seq < collector.flush_through;
        let shard_bytes = collector.add(record);
        if isolated
            || collector.records.len() >= max_count
            || collector.size >= max_size
            || shard_bytes >= SHARD_BYTES_FLUSH
        {
            self.send(s);
        } else if collector.is_due(now) {
            // Due: send once this input is done, so that everything it releases shares requests.
            if !was_due {
                self.due.push(s);
            }
        } else if collector.deadline != before
            && let Some(deadline) = collector.deadline
        {
            self.timers.insert((deadline, s));
        }
    }

    /// A flush: Kinesis records created before `through` go without waiting, and what is collected goes now.
    pub(crate) fn flush(&mut self, s: StreamIx, through: u64) {
        self.collectors[s.index()].flush_through = through;
        if !self.collectors[s.index()].records.is_empty() {
            self.send(s);
        }
    }

    /// Sends what stream `s` collected, if anything.
    fn send(&mut self, s: StreamIx) {
        let records = self.collectors[s.index()].take();
        if !records.is_empty() {
            self.ready.push_back((s, records));
        }
    }

    /// Sends the collector of `s` if it is due at `now`.
    fn send_if_due(&mut self, now: Instant, s: StreamIx) {
        if self.collectors[s.index()].is_due(now) {
            self.send(s);
        }
    }

    /// Sends the collectors that fell due during this input (and still are).
    pub(crate) fn send_due(&mut self, now: Instant) {
        for s in std::mem::take(&mut self.due) {
            self.send_if_due(now, s);
        }
    }

    pub(crate) fn has_due(&self) -> bool {
        !self.due.is_empty()
    }

    /// The next request to send, with its stream.
    pub(crate) fn pop_ready(&mut self) -> Option<(StreamIx, Vec<OutgoingRecord>)> {
        self.ready.pop_front()
    }

    /// With the first shard map, takes back the user records of stream `s` that were to go out unaggregated
    /// and unlimited (collected, or in requests waiting for a connection), to go through aggregation and
    /// the limiter instead: a burst put before the map arrived would otherwise hit the shards all at once.
    pub(crate) fn take_unpredicted(&mut self, s: StreamIx) -> Vec<AcceptedRecord> {
        let mut users = Vec::new();
        let collector = &mut self.collectors[s.index()];
        for record in collector.take() {
            if record.slot.is_some() {
                collector.add(record);
            } else {
                users.extend(record.users);
            }
        }
        for (stream, requests) in &mut self.ready {
            if *stream == s {
                let (unpredicted, predicted): (Vec<_>, Vec<_>) =
                    std::mem::take(requests).into_iter().partition(|record| record.slot.is_none());
                users.extend(unpredicted.into_iter().flat_map(|record| record.users));
                *requests = predicted;
            }
        }
        self.ready.retain(|(_, requests)| !requests.is_empty());
        // What stays collected may now have a later deadline than the timer set for it.
        if let Some(deadline) = self.collectors[s.index()].deadline {
            self.timers.insert((deadline, s));
        }
        users
    }

    /// The earliest timer, stale or not.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.first().map(|&(at, _)| at)
    }

    /// Fires the earliest timer: sends its collector if its deadline passed.
    pub(crate) fn fire_timer(&mut self, now: Instant) {
        if let Some((_, s)) = self.timers.pop_first()
            && has_passed(self.collectors[s.index()].deadline, now)
        {
            self.send(s);
        }
    }
}
