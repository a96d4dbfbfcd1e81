//! The producer state machine.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use kpl_deagg::{AggregateLimits, partition_key_hash};

use crate::config::admission::{validate_record, validate_stream};
use crate::config::{AggregationPolicy, ProducerConfig, ShardMapWait};
use crate::event::Event;
use crate::ids::{FlushId, RecordId, RequestId, ShardId, StreamTarget};
use crate::limiter::ShardLimiter;
use crate::map::DetMap;
use crate::metrics::{
    self, Dimensions, Metric, MetricName, MetricSample, Metrics, MetricsGranularity, MetricsQuery,
    MetricsQueryError, MetricsRollup, Series, Span, Stat,
};
use crate::oldest::OldestTracker;
use crate::pending::{KinesisRecordState, PendingRecord};
use crate::record::{
    AttemptError, PutError, RecordError, RecordFailure, RecordOutcome, RecordReceipt, UserRecord,
};
use crate::request::{
    ListShardsOutput, ListShardsRequest, PutRecordsEntry, PutRecordsRequest, PutRecordsResultEntry, Request,
    RequestError, RequestErrorKind, Response, Transmit,
};
use crate::rng::SplitMix64;
use crate::shard_map::covers_key_space;
use crate::stats::ProducerStats;
use crate::stream::{AggBuffer, AggKey, Fetch, LIST_SHARDS_MAX_BACKOFF, Stream};
use crate::time::{deadline_after, earliest, has_passed};

/// Bytes of one shard's records in a request that make the collector send at once: bursts to one shard
/// get throttled, so no shard accumulates more (the KPL's rule).
const SHARD_BYTES_FLUSH: usize = 256 * 1024;
/// Most extra time an aggregate gets to be collected into a request (the KPL's `putrecords_buffer_duration`).
const MAX_COLLECTION_WINDOW: Duration = Duration::from_millis(50);
/// `MaxResults` of a `ListShards` page.
const LIST_SHARDS_PAGE: u32 = 1000;
/// Error code of the per-entry throttling result.
const THROTTLED: &str = "ProvisionedThroughputExceededException";

/// Something the producer wakes up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// An aggregation buffer's deadline.
    Aggregate(u32, AggKey),
    /// A shard's limiter has tokens for its queue's head.
    Limiter(u32, u32),
    /// The collector's deadline.
    Collect(u32),
    /// Retry a failed `ListShards`.
    Fetch(u32),
    /// Held records may have expired.
    Held(u32),
    /// Holding for the first shard map may have to give up.
    MapWait(u32),
}

/// A node of a metric's dimension tree: name, error code, stream index, shard slot.
type NodeKey<'a> = (MetricName, Option<&'a str>, Option<u32>, Option<u32>);

/// A flush whose records have not all completed.
#[derive(Debug)]
struct PendingFlush {
    id: FlushId,
    /// The stream flushed, or `None` for all.
    stream: Option<u32>,
    /// It covers the records with smaller ids (all accepted before it).
    before: RecordId,
    /// Covered records not completed yet.
    remaining: u64,
}

/// A request the adapter holds.
#[derive(Debug)]
enum InFlight {
    Put { stream: u32, records: Vec<KinesisRecordState>, started: Instant },
    ListShards { stream: u32 },
}

/// The sans-IO producer.
///
/// # Call contract
///
/// Methods fall into four groups, as in quinn-proto:
/// - **(A) getters** (`outstanding_records`, `stats`, ...) read state and change nothing;
/// - **(B) inputs**: [`handle_response`](Self::handle_response), [`handle_timeout`](Self::handle_timeout);
/// - **(C) commands**: [`put_record`](Self::put_record), [`flush`](Self::flush), [`close`](Self::close);
/// - **(D) outputs**: [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// After any (B) or (C) call, drain (D) in this order: `poll_transmit` until `None`, `poll_event` until
/// `None`, then read `poll_timeout` and call `handle_timeout` once that instant is reached. Calls may be
/// batched (many `put_record`s, then one drain).
///
/// `now` must never go backwards; an earlier `now` is treated as the latest one seen. The producer never
/// reads a clock itself, and all randomness (retry jitter) comes from the seed given to [`new`](Self::new):
/// the same calls with the same `now`s produce the same outputs.
///
/// Every [`Transmit`] must get exactly one `handle_response` with its id, in any order. The adapter applies
/// `request_timeout` and reports a request that outlives it as [`RequestErrorKind::Timeout`] (the records
/// are retried and may be duplicated). A response for an unknown id (late, duplicated, or never sent) is
/// ignored and counted in [`ProducerStats::unknown_responses`]; a response of the wrong kind for its id is
/// treated as a transient failure of that request.
///
/// `handle_timeout` with a `now` at or past `poll_timeout` always makes progress: afterwards
/// `poll_timeout` is later, or `None`. Calling it early does nothing.
///
/// Every record `put_record` accepts completes exactly once, as an [`Event::RecordCompleted`].
#[derive(Debug)]
pub struct Producer {
    config: ProducerConfig,
    streams: Vec<Stream>,
    stream_index: DetMap<StreamTarget, u32>,
    timers: BTreeSet<(Instant, Timer)>,
    /// Records waiting out a retry backoff, by due time and then order of failure.
    retries: BTreeMap<(Instant, u64), (u32, PendingRecord)>,
    /// Requests built and waiting for a free connection.
    ready: VecDeque<(u32, Vec<KinesisRecordState>)>,
    in_flight: BTreeMap<RequestId, InFlight>,
    puts_in_flight: usize,
    /// Aggregation buffers and collectors that fell due during the current input (see `settle`).
    due_buffers: Vec<(u32, AggKey)>,
    due_collectors: Vec<u32>,
    events: VecDeque<Event>,
    rng: SplitMix64,
    next_record_id: u64,
    next_request_id: u64,
    next_seq: u64,
    outstanding_bytes: usize,
    oldest: OldestTracker,
    /// Flushes waiting for their records, in the order they were asked for.
    flushes: Vec<PendingFlush>,
    next_flush_id: u64,
    backpressured: bool,
    closed: bool,
    drained: bool,
    last_now: Option<Instant>,
    stats: ProducerStats,
    metrics: Metrics,
}

impl Producer {
    /// A producer with this configuration, drawing retry jitter from `seed`.
    pub fn new(config: ProducerConfig, seed: u64) -> Self {
        Self {
            config,
            streams: Vec::new(),
            stream_index: DetMap::default(),
            timers: BTreeSet::new(),
            retries: BTreeMap::new(),
            ready: VecDeque::new(),
            in_flight: BTreeMap::new(),
            puts_in_flight: 0,
            due_buffers: Vec::new(),
            due_collectors: Vec::new(),
            events: VecDeque::new(),
            rng: SplitMix64::new(seed),
            next_record_id: 0,
            next_request_id: 0,
            next_seq: 0,
            outstanding_bytes: 0,
            oldest: OldestTracker::default(),
            flushes: Vec::new(),
            next_flush_id: 0,
            backpressured: false,
            closed: false,
            drained: false,
            last_now: None,
            stats: ProducerStats::default(),
            metrics: Metrics::default(),
        }
    }

    // ---------------------------------------------------------------------------------------------
    // (A) getters

    /// The configuration.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Records accepted and not yet completed.
    pub fn outstanding_records(&self) -> usize {
        self.oldest.len()
    }

    /// Bytes (data plus partition keys) of the outstanding records.
    pub fn outstanding_bytes(&self) -> usize {
        self.outstanding_bytes
    }

    /// When the oldest outstanding record was put.
    pub fn oldest_record_put_at(&self) -> Option<Instant> {
        self.oldest.oldest()
    }

    /// Requests handed out and not yet answered.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Counters since the producer was created.
    pub fn stats(&self) -> &ProducerStats {
        &self.stats
    }

    /// The KPL's metrics so far, cumulative, each at its finest granularity (shard where the KPL has one,
    /// else stream). [`metrics_query`](Self::metrics_query) gives windows and the stream and global views.
    pub fn metrics(&self) -> Vec<MetricSample> {
        let mut samples = Vec::new();
        let now = self.last_now;
        self.each_series(|name, stream, slot, code, series| {
            let stat = match now {
                Some(now) => self.series_stat(name, stream, series, &Span::Cumulative, now),
                None => series.stat(&Span::Cumulative),
            };
            if stat.count > 0 {
                let stream = &self.streams[stream as usize];
                samples.push(MetricSample {
                    name,
                    stream: stream.target.clone(),
                    shard_id: slot.map(|slot| stream.shards[slot as usize].id.clone()),
                    error_code: code.map(str::to_owned),
                    stat,
                });
            }
        });
        samples
    }

    /// The KPL's metrics over `query.window` (cumulative, the last 1 to 60 seconds, or given seconds of
    /// [`metrics_second`](Self::metrics_second)), summed up the dimension tree (shard, stream, global) to
    /// `query.granularity`, as the KPL's `getMetrics(name, windowSeconds)`. Nodes with no observation in the
    /// window are left out. A getter: `now` only places the window (it changes nothing).
    pub fn metrics_query(
        &self,
        now: Instant,
        query: &MetricsQuery,
    ) -> Result<Vec<Metric>, MetricsQueryError> {
        let span = Span::resolve(query.window, self.metrics_second(now))?;
        let shard_level = query.granularity == MetricsGranularity::Shard;
        let stream_level = query.granularity >= MetricsGranularity::Stream;
        // `None`s sort first, so coarser nodes come first.
        let mut nodes: BTreeMap<NodeKey<'_>, Stat> = BTreeMap::new();
        self.each_series(|name, stream, slot, code, series| {
            if query.name.is_some_and(|wanted| wanted != name) {
                return;
            }
            let stat = self.series_stat(name, stream, series, &span, now);
            if stat.count == 0 {
                return;
            }
            let stream = stream_level.then_some(stream);
            let slot = slot.filter(|_| shard_level);
            let mut add = |key| nodes.entry(key).or_default().merge(&stat);
            match query.rollup {
                MetricsRollup::Leaves => add((name, code, stream, slot)),
                MetricsRollup::Tree => {
                    add((name, None, None, None));
                    if code.is_some() {
                        add((name, code, None, None));
                    }
                    if stream.is_some() {
                        add((name, code, stream, None));
                        if slot.is_some() {
                            add((name, code, stream, slot));
                        }
                    }
                }
            }
        });
        Ok(nodes
            .into_iter()
            .map(|((name, code, stream, slot), stat)| {
                let stream = stream.map(|s| &self.streams[s as usize]);
                Metric {
                    name,
                    error_code: code.map(str::to_owned),
                    stream: stream.map(|stream| stream.target.clone()),
                    shard_id: stream.zip(slot).map(|(stream, slot)| stream.shards[slot as usize].id.clone()),
                    stat,
                }
            })
            .collect())
    }

    /// The second of the producer's clock that `now` falls in: whole seconds since the first `now` it was
    /// given (its metrics' one-second buckets; see [`MetricsWindow::Seconds`](crate::MetricsWindow)).
    pub fn metrics_second(&self, now: Instant) -> u64 {
        self.metrics.second_of(now)
    }

    /// A series' observations in `span`; for `UserRecordsPending`, with the samples due by `now` and not
    /// taken yet (nothing changed since the last call, so they are known).
    fn series_stat(&self, name: MetricName, stream: u32, series: &Series, span: &Span, now: Instant) -> Stat {
        let mut stat = series.stat(span);
        if name == MetricName::UserRecordsPending {
            let pending = self.streams[stream as usize].pending as f64;
            stat.merge(&span.samples(pending, self.metrics.ticks_due(now)));
        }
        stat
    }

    /// Calls `f` with every metric series at its finest dimensions: stream index, shard slot, error code.
    fn each_series<'a>(
        &'a self,
        mut f: impl FnMut(MetricName, u32, Option<u32>, Option<&'a str>, &'a Series),
    ) {
        for (index, stream) in self.streams.iter().enumerate() {
            f(MetricName::UserRecordsReceived, index as u32, None, None, &stream.user_records_received);
            f(MetricName::UserRecordsPending, index as u32, None, None, &stream.pending_samples);
        }
        for (name, dimensions, series) in self.metrics.iter() {
            f(name, dimensions.stream, dimensions.slot, dimensions.error_code.as_deref(), series);
        }
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    // ---------------------------------------------------------------------------------------------
    // (C) commands

    /// Accepts a record, or refuses it with a typed error (nothing is buffered then, and no other record is
    /// affected). An accepted record completes exactly once, as an [`Event::RecordCompleted`].
    pub fn put_record(&mut self, now: Instant, record: UserRecord) -> Result<RecordId, PutError> {
        let now = self.clock(now);
        if self.closed {
            return Err(PutError::Closed);
        }
        let explicit_hash_key = validate_record(&self.config, &record)?;
        let cost = record.size();
        let outstanding_records = self.oldest.len();
        if !self.config.admits(outstanding_records, self.outstanding_bytes, cost) {
            self.backpressured = true;
            self.stats.backpressure_rejections += 1;
            return Err(PutError::Backpressure {
                outstanding_records,
                outstanding_bytes: self.outstanding_bytes,
            });
        }
        let stream = self.stream_for(now, record.stream);
        let id = RecordId(self.next_record_id);
        self.next_record_id += 1;
        let expiration = deadline_after(now, self.config.record_ttl());
        let hash_key = explicit_hash_key.unwrap_or_else(|| partition_key_hash(&record.partition_key));
        let pending = PendingRecord {
            id,
            partition_key: record.partition_key,
            explicit_hash_key,
            hash_key,
            data: record.data,
            arrival: now,
            deadline: earliest(deadline_after(now, self.config.record_max_buffered_time()), expiration),
            expiration,
            attempts: Vec::new(),
            maybe_duplicated: false,
            isolated: false,
        };
        self.outstanding_bytes += cost;
        self.oldest.push(id, now);
        self.stats.user_records_received += 1;
        let second = self.metrics.second();
        let counted = &mut self.streams[stream as usize];
        counted.user_records_received.observe(second, 1.0);
        counted.pending += 1;
        self.route(now, stream, pending);
        self.settle(now);
        Ok(id)
    }

    /// Starts listing a stream's shards before its first record, so that the first records are already
    /// aggregated per shard. Optional: `put_record` does the same for a stream it has not seen.
    pub fn add_stream(&mut self, now: Instant, stream: StreamTarget) -> Result<(), PutError> {
        self.clock(now);
        validate_stream(&stream)?;
        self.stream_for(now, stream);
        Ok(())
    }

    /// Sends everything buffered now, ignoring buffering deadlines but still within the rate limits and the
    /// in-flight cap: of one stream, or of all with `None`. Records waiting out a retry backoff keep waiting;
    /// records held for a stream's first shard map go out as soon as it arrives.
    ///
    /// Returns the flush's id: [`Event::FlushCompleted`] with it follows once every record accepted before
    /// this call (of that stream, or of all streams with `None`) has completed, successfully or not; at once
    /// when none is outstanding. Records accepted after the call do not hold it up.
    pub fn flush(&mut self, now: Instant, stream: Option<&StreamTarget>) -> FlushId {
        let now = self.clock(now);
        let id = FlushId(self.next_flush_id);
        self.next_flush_id += 1;
        let index = stream.and_then(|target| self.stream_index.get(target).copied());
        let remaining = match (stream, index) {
            (None, _) => self.oldest.len() as u64,
            (Some(_), Some(s)) => self.streams[s as usize].pending,
            // A stream never seen has nothing outstanding.
            (Some(_), None) => 0,
        };
        if remaining == 0 {
            self.events.push_back(Event::FlushCompleted(id));
        } else {
            let before = RecordId(self.next_record_id);
            self.flushes.push(PendingFlush { id, stream: index, before, remaining });
        }
        self.send_buffered(now, stream);
        id
    }

    /// Sends everything buffered now (see [`flush`](Self::flush)).
    fn send_buffered(&mut self, now: Instant, stream: Option<&StreamTarget>) {
        let selected: Vec<u32> = match stream {
            Some(target) => self.stream_index.get(target).copied().into_iter().collect(),
            None => (0..self.streams.len() as u32).collect(),
        };
        for s in selected {
            let mut keys: Vec<AggKey> = self.streams[s as usize].buffers.keys().copied().collect();
            keys.sort_unstable();
            for key in keys {
                self.finish_buffer(now, s, key);
            }
            let stream = &mut self.streams[s as usize];
            stream.flush_through = self.next_seq;
            // Records held for the shard map go out as soon as it arrives (or the hold gives up).
            for record in &mut stream.held {
                record.deadline = earliest(Some(now), record.expiration);
            }
            if !stream.collector.records.is_empty() {
                self.send_collected(s);
            }
        }
        self.settle(now);
    }

    /// Flushes everything and refuses new records; [`Event::Drained`] follows once the last outstanding
    /// record completed.
    pub fn close(&mut self, now: Instant) {
        let now = self.clock(now);
        self.closed = true;
        self.send_buffered(now, None);
        self.check_drained();
    }

    // ---------------------------------------------------------------------------------------------
    // (B) inputs

    /// The response to a request from [`poll_transmit`](Self::poll_transmit).
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: Response) {
        let now = self.clock(now);
        let Some(flight) = self.in_flight.remove(&id) else {
            self.stats.unknown_responses += 1;
            return;
        };
        match flight {
            InFlight::Put { stream, records, started } => {
                self.puts_in_flight -= 1;
                let result = match response {
                    Response::PutRecords(result) => result,
                    Response::ListShards(_) => Err(mismatched_response()),
                };
                self.on_put_records(now, stream, records, started, result);
            }
            InFlight::ListShards { stream } => {
                let result = match response {
                    Response::ListShards(result) => result,
                    Response::PutRecords(_) => Err(mismatched_response()),
                };
                self.on_list_shards(now, stream, result);
            }
        }
        self.settle(now);
    }

    /// Time passed: fire whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.clock(now);
        while let Some(&(at, timer)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.pop_first();
            self.fire(now, at, timer);
        }
        while let Some(entry) = self.retries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (stream, record) = entry.remove();
            if has_passed(record.expiration, now) {
                self.fail_expired(stream, record);
            } else {
                self.route(now, stream, record);
            }
        }
        self.settle(now);
    }

    // ---------------------------------------------------------------------------------------------
    // (D) outputs

    /// The next request to send, if any: shard listings first, then PutRecords while fewer than
    /// `max_connections` are in flight.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let now = self.clock(now);
        if let Some(transmit) = self.next_list_shards() {
            return Some(transmit);
        }
        if self.puts_in_flight >= self.config.max_connections() {
            return None;
        }
        let (stream, records) = loop {
            let (stream, records) = self.ready.pop_front()?;
            // A request can wait long for a connection: records whose TTL passed meanwhile fail now (and the
            // rest of their aggregate is re-aggregated) rather than being sent late.
            let (expired, records): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|record| has_passed(record.expiration, now));
            for record in expired {
                self.expire(now, stream, record);
            }
            // Expiring re-routes the rest of an aggregate: what that made due goes out with it.
            self.settle(now);
            if !records.is_empty() {
                break (stream, records);
            }
        };
        let id = self.next_request_id();
        let mut user_records = 0;
        let mut entries = Vec::with_capacity(records.len());
        for record in &records {
            entries.push(PutRecordsEntry {
                partition_key: record.entry.partition_key.clone(),
                explicit_hash_key: Some(record.entry.explicit_hash_key.to_string()),
                data: record.entry.data.clone(),
            });
            user_records += record.users.len();
            let mut buffering = Stat::default();
            for user in &record.users {
                let since = user.attempts.last().map_or(user.arrival, |attempt| attempt.ended);
                buffering.observe(millis(now.saturating_duration_since(since)));
            }
            let shard = dims(stream, record.slot, None);
            self.metrics.merge(MetricName::BufferingTime, shard.clone(), &buffering);
            self.metrics.observe(MetricName::UserRecordsPerKinesisRecord, shard, record.users.len() as f64);
        }
        let per_stream = dims(stream, None, None);
        self.metrics.observe(
            MetricName::KinesisRecordsPerPutRecordsRequest,
            per_stream.clone(),
            records.len() as f64,
        );
        self.metrics.observe(MetricName::UserRecordsPerPutRecordsRequest, per_stream, user_records as f64);
        let target = self.streams[stream as usize].target.clone();
        self.stats.put_records_requests += 1;
        self.in_flight.insert(id, InFlight::Put { stream, records, started: now });
        self.puts_in_flight += 1;
        Some(Transmit { id, request: Request::PutRecords(PutRecordsRequest { stream: target, entries }) })
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called; `None` when nothing is waiting on time.
    pub fn poll_timeout(&self) -> Option<Instant> {
        debug_assert!(
            self.due_buffers.is_empty() && self.due_collectors.is_empty(),
            "an input left due work unsettled: it would wait for no timer"
        );
        if self.drained {
            // Closed with nothing left: no more work, not even refreshing a shard map.
            return None;
        }
        let timer = self.timers.first().map(|&(at, _)| at);
        let retry = self.retries.first_key_value().map(|(&(at, _), _)| at);
        earliest(timer, retry)
    }

    // ---------------------------------------------------------------------------------------------
    // Intake

    fn clock(&mut self, now: Instant) -> Instant {
        let now = self.last_now.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        if let Some(ticks) = self.metrics.advance(now) {
            // Nothing changed between the previous call and this one: what is outstanding now was
            // outstanding at each of these ticks.
            for stream in &mut self.streams {
                stream.pending_samples.sample(stream.pending as f64, ticks.clone());
            }
        }
        now
    }

    fn stream_for(&mut self, now: Instant, target: StreamTarget) -> u32 {
        if let Some(&index) = self.stream_index.get(&target) {
            return index;
        }
        let index = self.streams.len() as u32;
        self.stream_index.insert(target.clone(), index);
        let holds = self.config.aggregation() == AggregationPolicy::PerShard
            && self.config.shard_map_wait() == ShardMapWait::Hold;
        let hold_until = holds.then(|| deadline_after(now, self.config.shard_map_wait_timeout())).flatten();
        self.streams.push(Stream::new(target, hold_until));
        index
    }

    fn aggregate_limits(&self) -> AggregateLimits {
        AggregateLimits {
            max_size: self.config.aggregation_max_size() as usize,
            max_count: usize::try_from(self.config.aggregation_max_count()).unwrap_or(usize::MAX),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        RequestId(self.next_request_id - 1)
    }

    /// Sends a record on its way: into an aggregation buffer, alone into a Kinesis record, or into the
    /// hold for the shard map.
    fn route(&mut self, now: Instant, s: u32, record: PendingRecord) {
        let stream = &mut self.streams[s as usize];
        let slot = stream.map.as_ref().and_then(|map| map.predict(record.hash_key));
        let policy = self.config.aggregation();
        let key = match (policy, slot) {
            _ if record.isolated => None,
            (AggregationPolicy::PerShard, Some(slot)) => Some(AggKey::Shard(slot)),
            (AggregationPolicy::PerShard, None)
                if stream.map.is_none()
                    && !stream.map_unavailable
                    && self.config.shard_map_wait() == ShardMapWait::Hold =>
            {
                if let Some(expiration) = record.expiration {
                    self.timers.insert((expiration, Timer::Held(s)));
                }
                // Armed by the records that wait (the same timer each time), so an idle producer sleeps.
                if let Some(until) = stream.hold_until {
                    self.timers.insert((until, Timer::MapWait(s)));
                }
                stream.held.push(record);
                return;
            }
            // With no shard map to be had, records of one hash key still share aggregates: they land on one
            // shard whatever the map.
            (AggregationPolicy::PerShard, None) if stream.map_unavailable => {
                Some(AggKey::HashKey(record.hash_key))
            }
            (AggregationPolicy::SameHashKey, _) => Some(AggKey::HashKey(record.hash_key)),
            _ => None,
        };
        match key {
            Some(key) => self.aggregate(now, s, key, record),
            None => {
                let mut alone = AggBuffer::default();
                let limits = self.aggregate_limits();
                // An empty buffer takes any record.
                if alone.try_add(record, limits).is_ok() {
                    let seq = self.next_seq();
                    if let Some(kinesis_record) = alone.take(seq, slot) {
                        self.enqueue(now, s, kinesis_record);
                    }
                }
            }
        }
    }

    fn aggregate(&mut self, now: Instant, s: u32, key: AggKey, record: PendingRecord) {
        let limits = self.aggregate_limits();
        let buffer = self.streams[s as usize].buffers.entry(key).or_default();
        let before = buffer.deadline;
        if let Err(record) = buffer.try_add(record, limits) {
            // Full: send what it holds, start a new one with the record (an empty buffer takes anything).
            self.finish_buffer(now, s, key);
            self.aggregate(now, s, key, record);
            return;
        }
        let buffer = &self.streams[s as usize].buffers[&key];
        if buffer.len() as u64 >= limits.max_count as u64 {
            self.finish_buffer(now, s, key);
        } else if has_passed(buffer.deadline, now) {
            // Already due (a held or retried record, or no buffering time): send it once this input is
            // done, with whatever else the input brings, rather than alone now.
            if !has_passed(before, now) {
                self.due_buffers.push((s, key));
            }
        } else if buffer.deadline != before
            && let Some(deadline) = buffer.deadline
        {
            self.timers.insert((deadline, Timer::Aggregate(s, key)));
        }
    }

    /// Turns an aggregation buffer into a Kinesis record and sends it on.
    fn finish_buffer(&mut self, now: Instant, s: u32, key: AggKey) {
        let seq = self.next_seq();
        let stream = &mut self.streams[s as usize];
        let record = match key {
            // A shard's buffer is kept, empty, so its allocations serve the next aggregate.
            AggKey::Shard(slot) => {
                stream.buffers.get_mut(&key).and_then(|buffer| buffer.take(seq, Some(slot)))
            }
            // Hash keys are unbounded in number: their buffers go.
            AggKey::HashKey(hash_key) => {
                let slot = stream.map.as_ref().and_then(|map| map.predict(hash_key));
                stream.buffers.remove(&key).and_then(|mut buffer| buffer.take(seq, slot))
            }
        };
        if let Some(record) = record {
            self.enqueue(now, s, record);
        }
    }

    /// A Kinesis record goes to its shard's limiter, or straight to the collector when no shard is predicted.
    fn enqueue(&mut self, now: Instant, s: u32, record: KinesisRecordState) {
        match record.slot {
            Some(slot) => {
                let shard = &mut self.streams[s as usize].shards[slot as usize];
                shard.queue_expiry = earliest(shard.queue_expiry, record.expiration);
                shard.queue.push_back(record);
                self.drain_shard(now, s, slot);
            }
            None => self.collect(now, s, record),
        }
    }

    /// Lets a shard's queued Kinesis records through as fast as its limiter allows.
    fn drain_shard(&mut self, now: Instant, s: u32, slot: u32) {
        self.expire_queued(now, s, slot);
        loop {
            let shard = &mut self.streams[s as usize].shards[slot as usize];
            let Some(head) = shard.queue.front() else {
                shard.wake = None;
                return;
            };
            match shard.limiter.try_take(now, head.wire_size()) {
                Ok(()) => {
                    if let Some(record) = shard.queue.pop_front() {
                        self.collect(now, s, record);
                    }
                }
                Err(tokens_at) => {
                    // Wake for the tokens, or for the first TTL in the queue if that comes sooner: a record
                    // stuck behind a slow shard still fails at its TTL, not when the queue moves.
                    let at = earliest(Some(tokens_at), shard.queue_expiry).unwrap_or(tokens_at);
                    // One wake-up per shard: a timer already due earlier re-evaluates then. (A timer per
                    // attempt would multiply, each stale one re-arming another: a busy loop.)
                    if shard.wake.is_none_or(|wake| wake > at) {
                        shard.wake = Some(at);
                        self.timers.insert((at, Timer::Limiter(s, slot)));
                    }
                    return;
                }
            }
        }
    }

    /// Takes the Kinesis records whose earliest TTL passed out of a shard's queue, wherever they wait in it.
    fn expire_queued(&mut self, now: Instant, s: u32, slot: u32) {
        let shard = &mut self.streams[s as usize].shards[slot as usize];
        if !has_passed(shard.queue_expiry, now) {
            return;
        }
        let (expired, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut shard.queue)
            .into_iter()
            .partition(|record| has_passed(record.expiration, now));
        shard.queue_expiry = kept.iter().fold(None, |acc, record| earliest(acc, record.expiration));
        shard.queue = kept;
        for record in expired {
            self.expire(now, s, record);
        }
    }

    /// A Kinesis record whose earliest TTL passed: its expired records fail, the others are re-routed.
    fn expire(&mut self, now: Instant, s: u32, record: KinesisRecordState) {
        for user in record.users {
            if has_passed(user.expiration, now) {
                self.fail_expired(s, user);
            } else {
                self.route(now, s, user);
            }
        }
    }

    /// Adds a Kinesis record to the next PutRecords request of its stream.
    fn collect(&mut self, now: Instant, s: u32, mut record: KinesisRecordState) {
        let max_count = self.config.collection_max_count() as usize;
        let max_size = usize::try_from(self.config.collection_max_size()).unwrap_or(usize::MAX);
        if self.config.aggregation() != AggregationPolicy::Off {
            // Give an aggregate sent by its deadline a little time to share a request.
            let window = MAX_COLLECTION_WINDOW.min(self.config.record_max_buffered_time().mul_f64(0.2));
            let extended = deadline_after(now, window);
            record.deadline = earliest(record.deadline.max(extended), record.expiration);
        }
        let isolated = record.isolated();
        let stream = &mut self.streams[s as usize];
        let collector = &stream.collector;
        if !collector.records.is_empty()
            && (isolated
                || collector.records.len() + 1 > max_count
                || collector.size + record.wire_size() > max_size)
        {
            self.send_collected(s);
        }
        let stream = &mut self.streams[s as usize];
        let before = stream.collector.deadline;
        let was_due = stream.collector.flush_requested || has_passed(before, now);
        stream.collector.flush_requested |= record.seq < stream.flush_through;
        let shard_bytes = stream.collector.add(record);
        let collector = &stream.collector;
        if isolated
            || collector.records.len() >= max_count
            || collector.size >= max_size
            || shard_bytes >= SHARD_BYTES_FLUSH
        {
            self.send_collected(s);
        } else if collector.flush_requested || has_passed(collector.deadline, now) {
            // Due: send once this input is done, so that everything it releases shares requests.
            if !was_due {
                self.due_collectors.push(s);
            }
        } else if collector.deadline != before
            && let Some(deadline) = collector.deadline
        {
            self.timers.insert((deadline, Timer::Collect(s)));
        }
    }

    /// Sends the aggregation buffers and requests that fell due during an input. Called at the end of every
    /// input and command, so that records released together (a shard map arriving for held records, retries
    /// coming due, a limiter letting a backlog through) are aggregated and collected together.
    fn settle(&mut self, now: Instant) {
        while !self.due_buffers.is_empty() || !self.due_collectors.is_empty() {
            for (s, key) in std::mem::take(&mut self.due_buffers) {
                if self.streams[s as usize].buffers.get(&key).is_some_and(|b| has_passed(b.deadline, now)) {
                    self.finish_buffer(now, s, key);
                }
            }
            for s in std::mem::take(&mut self.due_collectors) {
                let collector = &self.streams[s as usize].collector;
                if collector.flush_requested || has_passed(collector.deadline, now) {
                    self.send_collected(s);
                }
            }
        }
    }

    fn send_collected(&mut self, s: u32) {
        let records = self.streams[s as usize].collector.take();
        if !records.is_empty() {
            self.ready.push_back((s, records));
        }
    }

    /// A timer set for `at` fired. Timers are never cancelled; one that no longer matches the state is stale
    /// and does nothing.
    fn fire(&mut self, now: Instant, at: Instant, timer: Timer) {
        match timer {
            Timer::Aggregate(s, key) => {
                let due =
                    self.streams[s as usize].buffers.get(&key).is_some_and(|b| has_passed(b.deadline, now));
                if due {
                    self.finish_buffer(now, s, key);
                }
            }
            Timer::Limiter(s, slot) => {
                let shard = &mut self.streams[s as usize].shards[slot as usize];
                if shard.wake == Some(at) {
                    shard.wake = None;
                    self.drain_shard(now, s, slot);
                }
            }
            Timer::Collect(s) => {
                if has_passed(self.streams[s as usize].collector.deadline, now) {
                    self.send_collected(s);
                }
            }
            Timer::Fetch(s) => {
                let stream = &mut self.streams[s as usize];
                if matches!(stream.fetch, Fetch::Waiting { until } if until <= now) {
                    stream.fetch = Fetch::Wanted { next_token: None, shards: Vec::new() };
                }
            }
            Timer::MapWait(s) => {
                let stream = &self.streams[s as usize];
                if stream.map.is_none() && stream.hold_until.is_some_and(|until| until <= now) {
                    let waited = self.config.shard_map_wait_timeout();
                    self.map_unavailable(
                        now,
                        s,
                        format!("no shard map within shard_map_wait_timeout ({waited:?})"),
                    );
                }
            }
            Timer::Held(s) => {
                let held = std::mem::take(&mut self.streams[s as usize].held);
                let (expired, kept): (Vec<_>, Vec<_>) =
                    held.into_iter().partition(|record| has_passed(record.expiration, now));
                self.streams[s as usize].held = kept;
                for record in expired {
                    self.fail_expired(s, record);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Shard map

    fn next_list_shards(&mut self) -> Option<Transmit> {
        if self.drained {
            return None;
        }
        let s = self.streams.iter().position(|stream| matches!(stream.fetch, Fetch::Wanted { .. }))?;
        let id = self.next_request_id();
        let stream = &mut self.streams[s];
        let Fetch::Wanted { next_token, shards } =
            std::mem::replace(&mut stream.fetch, Fetch::InFlight { shards: Vec::new() })
        else {
            return None;
        };
        stream.fetch = Fetch::InFlight { shards };
        self.in_flight.insert(id, InFlight::ListShards { stream: s as u32 });
        self.stats.list_shards_requests += 1;
        Some(Transmit {
            id,
            request: Request::ListShards(ListShardsRequest {
                stream: stream.target.clone(),
                only_open_shards: next_token.is_none(),
                next_token,
                max_results: LIST_SHARDS_PAGE,
            }),
        })
    }

    fn on_list_shards(&mut self, now: Instant, s: u32, result: Result<ListShardsOutput, RequestError>) {
        let stream = &mut self.streams[s as usize];
        let Fetch::InFlight { shards: mut listing, .. } = std::mem::replace(&mut stream.fetch, Fetch::Idle)
        else {
            return;
        };
        let complete = match result {
            Ok(page) => {
                listing.extend(page.shards);
                match page.next_token {
                    Some(token) => {
                        stream.fetch = Fetch::Wanted { next_token: Some(token), shards: listing };
                        return;
                    }
                    None => {
                        covers_key_space(&listing.iter().filter(|shard| shard.is_open).collect::<Vec<_>>())
                    }
                }
            }
            Err(error) => {
                // A refusal will not heal by waiting (a role allowed only PutRecords, a missing stream):
                // stop holding now; PutRecords then tells each record what is wrong.
                if matches!(error.kind, RequestErrorKind::Fatal | RequestErrorKind::StreamNotFound)
                    && stream.map.is_none()
                    && stream.hold_until.is_some()
                {
                    self.map_unavailable(now, s, format!("ListShards failed: {error}"));
                }
                false
            }
        };
        let stream = &mut self.streams[s as usize];
        if !complete {
            // Failed, or caught mid-reshard with gaps: list again after a backoff.
            let until = now + stream.fetch_backoff;
            stream.fetch = Fetch::Waiting { until };
            stream.fetch_backoff = stream.fetch_backoff.mul_f64(1.5).min(LIST_SHARDS_MAX_BACKOFF);
            self.timers.insert((until, Timer::Fetch(s)));
            self.stats.list_shards_failures += 1;
            return;
        }
        let (percent, records, bytes) = (
            self.config.rate_limit(),
            self.config.shard_max_records_per_second(),
            self.config.shard_max_bytes_per_second(),
        );
        let first_map = stream.map.is_none();
        let open_shards = stream.install_map(now, listing, || ShardLimiter::new(percent, records, bytes));
        self.events.push_back(Event::ShardMapUpdated { stream: stream.target.clone(), open_shards });
        for record in std::mem::take(&mut stream.held) {
            self.route(now, s, record);
        }
        if first_map {
            self.reroute_unpredicted(now, s);
        }
    }

    /// Gives up holding for the first shard map: held records go out aggregated by hash key, and so do later
    /// ones until a listing succeeds. Reported once per stream.
    fn map_unavailable(&mut self, now: Instant, s: u32, reason: String) {
        let stream = &mut self.streams[s as usize];
        stream.hold_until = None;
        if stream.map_unavailable {
            return;
        }
        stream.map_unavailable = true;
        self.stats.shard_map_fallbacks += 1;
        self.events.push_back(Event::ShardMapUnavailable { stream: stream.target.clone(), reason });
        for record in std::mem::take(&mut stream.held) {
            self.route(now, s, record);
        }
    }

    /// With the first shard map, records that were to go out unaggregated and unlimited (collected, or in
    /// requests waiting for a connection) go back through aggregation and the limiter instead: a burst put
    /// before the map arrived would otherwise hit the shards all at once.
    fn reroute_unpredicted(&mut self, now: Instant, s: u32) {
        let mut users = Vec::new();
        let collected = self.streams[s as usize].collector.take();
        for record in collected {
            if record.slot.is_some() {
                self.streams[s as usize].collector.add(record);
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
        if let Some(deadline) = self.streams[s as usize].collector.deadline {
            self.timers.insert((deadline, Timer::Collect(s)));
        }
        for user in users {
            self.route(now, s, user);
        }
    }

    /// Lists the shards again, unless a listing is already under way or the map is newer than the evidence
    /// (a request that started before the last refresh says nothing about the current map).
    fn invalidate_map(&mut self, s: u32, request_started: Instant) {
        let stream = &mut self.streams[s as usize];
        if matches!(stream.fetch, Fetch::Idle) && stream.map_updated_at.is_none_or(|at| request_started >= at)
        {
            stream.fetch = Fetch::Wanted { next_token: None, shards: Vec::new() };
        }
    }

    // ---------------------------------------------------------------------------------------------
    // Results

    fn on_put_records(
        &mut self,
        now: Instant,
        s: u32,
        records: Vec<KinesisRecordState>,
        started: Instant,
        result: Result<Vec<PutRecordsResultEntry>, RequestError>,
    ) {
        self.metrics.observe(
            MetricName::RequestTime,
            dims(s, None, None),
            millis(now.saturating_duration_since(started)),
        );
        let mut retry = Retry::default();
        match result {
            Ok(entries) if entries.len() == records.len() => {
                for (record, entry) in records.into_iter().zip(entries) {
                    self.on_entry(now, s, record, started, entry, &mut retry);
                }
            }
            Ok(entries) => {
                let error = AttemptError {
                    code: "Record Count Mismatch".into(),
                    message: format!("{} results for {} entries", entries.len(), records.len()),
                };
                for record in records {
                    retry.push(record, error.clone(), false);
                }
            }
            Err(error) => {
                self.stats.request_errors += 1;
                let attempt_error = AttemptError {
                    code: error.code.clone().unwrap_or_else(|| format!("{:?}", error.kind)),
                    message: error.message.clone(),
                };
                self.metrics.observe(MetricName::AllErrors, dims(s, None, None), 1.0);
                self.metrics.observe(MetricName::ErrorsByCode, dims(s, None, Some(&attempt_error.code)), 1.0);
                match error.kind {
                    RequestErrorKind::Throttling if self.config.fail_if_throttled() => {
                        for record in records {
                            self.fail_all(s, record, started, now, &attempt_error, || {
                                RecordError::Throttled { message: error.message.clone() }
                            });
                        }
                    }
                    RequestErrorKind::Throttling
                    | RequestErrorKind::Transient
                    | RequestErrorKind::Timeout => {
                        let ambiguous = error.kind == RequestErrorKind::Timeout;
                        for record in records {
                            if error.kind == RequestErrorKind::Throttling
                                && let Some(slot) = record.slot
                            {
                                self.throttled(now, s, slot);
                            }
                            retry.push(record, attempt_error.clone(), ambiguous);
                        }
                    }
                    RequestErrorKind::InvalidRequest => {
                        self.on_invalid_request(now, s, records, started, &error, &attempt_error);
                    }
                    RequestErrorKind::StreamNotFound | RequestErrorKind::Fatal => {
                        if error.kind == RequestErrorKind::StreamNotFound {
                            self.invalidate_map(s, started);
                        }
                        for record in records {
                            self.fail_all(s, record, started, now, &attempt_error, || {
                                RecordError::Rejected(error.clone())
                            });
                        }
                    }
                }
            }
        }
        self.schedule_retries(now, s, started, retry);
    }

    /// A request refused for its content: only the entries that caused it fail (see
    /// [`RequestErrorKind::InvalidRequest`]). An entry the error names, or any entry when it names none, is
    /// a suspect. A suspect of one user record fails if it was named or alone in its request; a suspect
    /// aggregate's user records are retried each alone; the other entries are re-sent at once. Every round
    /// fails or isolates at least one suspect, so this ends.
    fn on_invalid_request(
        &mut self,
        now: Instant,
        s: u32,
        records: Vec<KinesisRecordState>,
        started: Instant,
        error: &RequestError,
        attempt_error: &AttemptError,
    ) {
        let named = error.named_entries(records.len());
        let alone = records.len() == 1;
        for (index, record) in records.into_iter().enumerate() {
            let suspect = named.is_empty() || named.binary_search(&index).is_ok();
            if suspect && record.users.len() == 1 && (alone || !named.is_empty()) {
                self.fail_all(s, record, started, now, attempt_error, || {
                    RecordError::Rejected(error.clone())
                });
                continue;
            }
            for mut user in record.users {
                user.push_attempt(started, now, Some(attempt_error.clone()));
                if has_passed(user.expiration, now) {
                    self.fail_expired(s, user);
                    continue;
                }
                self.stats.retries += 1;
                user.isolated |= suspect;
                user.deadline = earliest(Some(now), user.expiration);
                self.route(now, s, user);
            }
        }
    }

    fn on_entry(
        &mut self,
        now: Instant,
        s: u32,
        record: KinesisRecordState,
        started: Instant,
        entry: PutRecordsResultEntry,
        retry: &mut Retry,
    ) {
        match entry {
            PutRecordsResultEntry::Success { shard_id, sequence_number } => {
                if let Some(slot) = record.slot {
                    self.streams[s as usize].shards[slot as usize].failures = 0;
                } else {
                    self.streams[s as usize].unpredicted_failures = 0;
                }
                let stream = &self.streams[s as usize];
                let predicted = record.slot.map(|slot| &stream.shards[slot as usize].id);
                if predicted.is_some_and(|predicted| *predicted != shard_id) {
                    self.stats.wrong_shard += 1;
                    self.invalidate_map(s, started);
                    // Kinesis routed it by its first record's hash key. The KCL drops a whole aggregate if any
                    // record in it is outside the shard, so succeed only if every one is inside; otherwise
                    // retry them all (the written copy is dropped by KCL consumers).
                    let stream = &self.streams[s as usize];
                    let all_inside = record.users.len() == 1
                        || stream.shard(&shard_id).is_some_and(|shard| {
                            record.users.iter().all(|user| shard.contains(user.hash_key))
                        });
                    if !all_inside {
                        let error = AttemptError {
                            code: "Wrong Shard".into(),
                            message: format!("written to {shard_id}, which does not hold all of its records"),
                        };
                        retry.push(record, error, true);
                        return;
                    }
                }
                self.succeed(s, record, started, now, shard_id, sequence_number);
            }
            PutRecordsResultEntry::Failure { error_code, error_message } => {
                let shard = dims(s, record.slot, None);
                self.metrics.observe(MetricName::KinesisRecordsPut, shard.clone(), 0.0);
                self.metrics.observe(MetricName::AllErrors, shard, 1.0);
                self.metrics.observe(MetricName::ErrorsByCode, dims(s, record.slot, Some(&error_code)), 1.0);
                let throttled = error_code == THROTTLED;
                if throttled {
                    self.stats.throttled_entries += 1;
                    if let Some(slot) = record.slot {
                        self.throttled(now, s, slot);
                    }
                } else {
                    self.stats.failed_entries += 1;
                }
                let error = AttemptError { code: error_code, message: error_message };
                if throttled && self.config.fail_if_throttled() {
                    let message = error.message.clone();
                    self.fail_all(s, record, started, now, &error, || RecordError::Throttled {
                        message: message.clone(),
                    });
                } else {
                    retry.push(record, error, false);
                }
            }
        }
    }

    fn throttled(&mut self, now: Instant, s: u32, slot: u32) {
        let stream = &mut self.streams[s as usize];
        let shard = &mut stream.shards[slot as usize];
        if let Some(rate_factor) = shard.limiter.on_throttled(now) {
            self.events.push_back(Event::ShardThrottled {
                stream: stream.target.clone(),
                shard_id: shard.id.clone(),
                rate_factor,
            });
        }
    }

    /// Puts failed Kinesis records' user records into backoff: one delay per shard per response, with full
    /// jitter, doubling with the shard's consecutive failures.
    fn schedule_retries(&mut self, now: Instant, s: u32, started: Instant, retry: Retry) {
        let mut delays: BTreeMap<Option<u32>, Duration> = BTreeMap::new();
        for (record, error, ambiguous) in retry.records {
            let delay = match delays.get(&record.slot) {
                Some(&delay) => delay,
                None => {
                    let delay = self.backoff(s, record.slot);
                    delays.insert(record.slot, delay);
                    delay
                }
            };
            let due = deadline_after(now, delay);
            for mut user in record.users {
                user.push_attempt(started, now, Some(error.clone()));
                user.maybe_duplicated |= ambiguous;
                if has_passed(user.expiration, now) {
                    self.fail_expired(s, user);
                    continue;
                }
                self.stats.retries += 1;
                let Some(due) = earliest(due, user.expiration) else {
                    // Neither a due time nor an expiration fits in an `Instant`: retry right away.
                    self.route(now, s, user);
                    continue;
                };
                let half_buffer = self.config.record_max_buffered_time() / 2;
                user.deadline = earliest(deadline_after(due, half_buffer), user.expiration);
                let order = self.next_seq();
                self.retries.insert((due, order), (s, user));
            }
        }
    }

    fn backoff(&mut self, s: u32, slot: Option<u32>) -> Duration {
        let stream = &mut self.streams[s as usize];
        let failures = match slot {
            Some(slot) => &mut stream.shards[slot as usize].failures,
            None => &mut stream.unpredicted_failures,
        };
        let exponent = (*failures).min(30);
        *failures = failures.saturating_add(1);
        let cap = self
            .config
            .retry_initial_backoff()
            .saturating_mul(1u32 << exponent)
            .min(self.config.retry_max_backoff());
        let micros = u64::try_from(cap.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(self.rng.below_or_equal(micros))
    }

    fn succeed(
        &mut self,
        s: u32,
        record: KinesisRecordState,
        started: Instant,
        now: Instant,
        shard_id: ShardId,
        sequence_number: String,
    ) {
        self.stats.kinesis_records_put += 1;
        let shard = dims(s, self.streams[s as usize].slot_by_id.get(&shard_id).copied(), None);
        self.metrics.observe(MetricName::KinesisRecordsPut, shard.clone(), 1.0);
        self.metrics.observe(MetricName::KinesisRecordsDataPut, shard.clone(), record.wire_size() as f64);
        self.metrics.observe(MetricName::AllErrors, shard.clone(), 0.0);
        let mut batch = metrics::Batch::default();
        // Shared by every user record of the aggregate.
        let sequence_number: std::sync::Arc<str> = sequence_number.into();
        for mut user in record.users {
            user.push_attempt(started, now, None);
            self.stats.user_records_put += 1;
            batch.user_records_put.observe(1.0);
            batch.user_records_data_put.observe(user.data.len() as f64);
            batch.retries_per_record.observe((user.attempts.len() - 1) as f64);
            let cost = user.cost();
            let receipt = RecordReceipt {
                shard_id: shard_id.clone(),
                sequence_number: sequence_number.clone(),
                attempts: user.attempts,
                maybe_duplicated: user.maybe_duplicated,
                put_time: user.arrival,
            };
            self.complete(s, user.id, cost, Ok(receipt));
        }
        batch.merge_into(&mut self.metrics, &shard);
    }

    fn fail_all(
        &mut self,
        s: u32,
        record: KinesisRecordState,
        started: Instant,
        now: Instant,
        error: &AttemptError,
        reason: impl Fn() -> RecordError,
    ) {
        for mut user in record.users {
            user.push_attempt(started, now, Some(error.clone()));
            self.fail(s, user, reason());
        }
    }

    fn fail_expired(&mut self, s: u32, record: PendingRecord) {
        self.stats.user_records_expired += 1;
        self.metrics.observe(MetricName::UserRecordExpired, dims(s, None, None), 1.0);
        let attempts = record.attempts.len();
        self.fail(s, record, RecordError::Expired { attempts });
    }

    fn fail(&mut self, s: u32, record: PendingRecord, error: RecordError) {
        self.stats.user_records_failed += 1;
        let stream = dims(s, None, None);
        self.metrics.observe(MetricName::UserRecordsPut, stream.clone(), 0.0);
        self.metrics.observe(
            MetricName::RetriesPerRecord,
            stream,
            record.attempts.len().saturating_sub(1) as f64,
        );
        let cost = record.cost();
        let returned = self.config.return_user_record_on_failure().then(|| {
            Box::new(UserRecord {
                stream: self.streams[s as usize].target.clone(),
                partition_key: record.partition_key.clone(),
                explicit_hash_key: record.explicit_hash_key.map(|key| key.to_string()),
                data: record.data.clone(),
            })
        });
        let failure = RecordFailure {
            error,
            attempts: record.attempts,
            maybe_duplicated: record.maybe_duplicated,
            put_time: record.arrival,
            record: returned,
        };
        self.complete(s, record.id, cost, Err(failure));
    }

    fn complete(&mut self, s: u32, id: RecordId, cost: usize, result: Result<RecordReceipt, RecordFailure>) {
        self.outstanding_bytes -= cost;
        self.oldest.complete(id);
        let stream = &mut self.streams[s as usize];
        stream.pending -= 1;
        let stream = stream.target.clone();
        self.events.push_back(Event::RecordCompleted(RecordOutcome { id, stream, result }));
        if !self.flushes.is_empty() {
            self.flush_progress(s, id);
        }
        if self.backpressured
            && (self.oldest.len() as u64) < self.config.max_outstanding_records()
            && (self.outstanding_bytes as u64) < self.config.max_outstanding_bytes()
        {
            self.backpressured = false;
            self.events.push_back(Event::CapacityAvailable);
        }
        self.check_drained();
    }

    /// Record `id` of stream `s` completed: counts it against the flushes that cover it, and reports those
    /// it completes, in the order they were asked for.
    fn flush_progress(&mut self, s: u32, id: RecordId) {
        let events = &mut self.events;
        self.flushes.retain_mut(|flush| {
            if id < flush.before && flush.stream.is_none_or(|stream| stream == s) {
                flush.remaining -= 1;
                if flush.remaining == 0 {
                    events.push_back(Event::FlushCompleted(flush.id));
                    return false;
                }
            }
            true
        });
    }

    fn check_drained(&mut self) {
        if self.closed && !self.drained && self.oldest.len() == 0 {
            self.drained = true;
            self.events.push_back(Event::Drained);
        }
    }
}

fn dims(stream: u32, slot: Option<u32>, error_code: Option<&str>) -> Dimensions {
    Dimensions { stream, slot, error_code: error_code.map(str::to_owned) }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn mismatched_response() -> RequestError {
    RequestError::new(RequestErrorKind::Transient, None, "response of the wrong kind for this request")
}

/// Kinesis records of one response to retry, with the error of this attempt and whether it was ambiguous.
#[derive(Default)]
struct Retry {
    records: Vec<(KinesisRecordState, AttemptError, bool)>,
}

impl Retry {
    fn push(&mut self, record: KinesisRecordState, error: AttemptError, ambiguous: bool) {
        self.records.push((record, error, ambiguous));
    }
}
