//! The producer: the call contract and the API, over a router between the pipeline's stages.
//!
//! A user record goes `put_record` → aggregation (`aggregate.rs`; or held for the first shard map,
//! `listing.rs`) → its shard's queue and rate limiter (`shard_queue.rs`) → collection into a PutRecords
//! request (`collect.rs`) → `poll_transmit` → `handle_response` (`response.rs`: success, retry through the
//! backoff queue of `retry.rs`, or failure) → completion (`completion.rs`) → `poll_event`. Each stage owns
//! its data, rules and timers and hands back what it releases; `routing.rs` passes records between them and
//! fires their timers in time order; every event is counted once by the telemetry sink (`metrics/`).

mod response;
mod routing;

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use kpl_deagg::AggregateLimits;

use crate::aggregate::Aggregation;
use crate::collect::{Collection, RequestLimits};
use crate::completion::Completion;
use crate::config::admission::{validate_content, validate_record, validate_size, validate_stream};
use crate::config::{AggregationPolicy, ProducerConfig, ShardMapWait};
use crate::drain::DrainRates;
use crate::event::Event;
use crate::ids::{FlushId, RecordId, RequestId, StreamIx, StreamTarget};
use crate::listing::Listing;
use crate::metrics::{Metric, MetricSample, MetricsQuery, MetricsQueryError, Telemetry};
use crate::outgoing::{AcceptedRecord, OutgoingRecord, request_context};
use crate::record::{PreparedRecord, PutError, UserRecord};
use crate::request::{
    PutRecordsEntry, PutRecordsRequest, Request, RequestError, RequestErrorKind, Response, Transmit,
};
use crate::retry::Retries;
use crate::shard_queue::{ShardQueues, ShardRate};
use crate::stats::ProducerStats;
use crate::time::{deadline_after, earliest, has_passed};

/// A request the adapter holds.
#[derive(Debug)]
enum InFlight {
    Put { stream: StreamIx, records: Vec<OutgoingRecord>, started: Instant },
    ListShards { stream: StreamIx },
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
    listing: Listing,
    aggregation: Aggregation,
    shard_queues: ShardQueues,
    collection: Collection,
    retries: Retries,
    completion: Completion,
    drain: DrainRates,
    telemetry: Telemetry,
    in_flight: BTreeMap<RequestId, InFlight>,
    puts_in_flight: usize,
    events: VecDeque<Event>,
    next_request_id: u64,
    last_now: Option<Instant>,
}

impl Producer {
    /// A producer with this configuration, drawing retry jitter from `seed`.
    pub fn new(config: ProducerConfig, seed: u64) -> Self {
        let aggregate_limits = AggregateLimits {
            max_size: config.aggregation_max_size() as usize,
            max_count: usize::try_from(config.aggregation_max_count()).unwrap_or(usize::MAX),
        };
        let request_limits = RequestLimits {
            max_count: config.collection_max_count() as usize,
            max_size: usize::try_from(config.collection_max_size()).unwrap_or(usize::MAX),
            window: (config.aggregation() != AggregationPolicy::Off)
                .then(|| RequestLimits::window_for(config.record_max_buffered_time())),
        };
        let rate = ShardRate {
            percent: config.rate_limit(),
            records_per_second: config.shard_max_records_per_second(),
            bytes_per_second: config.shard_max_bytes_per_second(),
        };
        Self {
            listing: Listing::default(),
            aggregation: Aggregation::new(aggregate_limits),
            shard_queues: ShardQueues::new(rate),
            collection: Collection::new(request_limits),
            retries: Retries::new(config.retry_initial_backoff(), config.retry_max_backoff(), seed),
            completion: Completion::default(),
            drain: DrainRates::default(),
            telemetry: Telemetry::default(),
            in_flight: BTreeMap::new(),
            puts_in_flight: 0,
            events: VecDeque::new(),
            next_request_id: 0,
            last_now: None,
            config,
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
        self.completion.outstanding_records()
    }

    /// Bytes (data plus partition keys) of the outstanding records.
    pub fn outstanding_bytes(&self) -> usize {
        self.completion.outstanding_bytes()
    }

    /// When the oldest outstanding record was put.
    pub fn oldest_record_put_at(&self) -> Option<Instant> {
        self.completion.oldest_put_at()
    }

    /// Requests handed out and not yet answered.
    pub fn requests_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Counters since the producer was created.
    pub fn stats(&self) -> &ProducerStats {
        self.telemetry.stats()
    }

    /// The KPL's metrics so far, cumulative, each at its finest granularity (shard where the KPL has one,
    /// else stream). [`metrics_query`](Self::metrics_query) gives windows and the stream and global views.
    pub fn metrics(&self) -> Vec<MetricSample> {
        self.telemetry.samples(self.last_now, &self.listing)
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
        self.telemetry.query(now, query, &self.listing)
    }

    /// The second of the producer's clock that `now` falls in: whole seconds since the first `now` it was
    /// given (its metrics' one-second buckets; see [`MetricsWindow::Seconds`](crate::MetricsWindow)).
    pub fn metrics_second(&self, now: Instant) -> u64 {
        self.telemetry.second_of(now)
    }

    /// Each stream's drain-rate estimate at `now`, in the order the streams were first seen: user-record
    /// bytes (data plus partition keys) per second its shards write, measured from PutRecords results while
    /// they throttle, otherwise its open shards' quota ([`ProducerConfig::quota_drain_rate`]; one shard
    /// before its map is known). [`ProducerConfig::stream_admission_limit`] turns a rate into the most the
    /// stream may hold; an adapter that admits records itself applies it with
    /// [`ProducerConfig::admits_to_stream`], as `put_record` does. A getter: `now` only ages the
    /// measurement.
    pub fn drain_rates(&self, now: Instant) -> impl Iterator<Item = (&StreamTarget, u64)> + '_ {
        self.listing.streams().map(move |s| (self.listing.target(s), self.drain.rate(&self.config, s, now)))
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.completion.is_closed()
    }

    // ---------------------------------------------------------------------------------------------
    // (C) commands

    /// Accepts a record, or refuses it with a typed error (nothing is buffered then, and no other record is
    /// affected). An accepted record completes exactly once, as an [`Event::RecordCompleted`].
    pub fn put_record(&mut self, now: Instant, record: UserRecord) -> Result<RecordId, PutError> {
        let now = self.enter(now);
        if self.completion.is_closed() {
            return Err(PutError::Closed);
        }
        // A stream seen before was checked then: only the record's content is.
        let known = self.listing.find_for_put(&record.stream);
        let explicit_hash_key = match known {
            Some(_) => validate_content(&self.config, &record)?,
            None => validate_record(&self.config, &record)?,
        };
        self.accept(now, known, PreparedRecord::hashed(record, explicit_hash_key))
    }

    /// [`put_record`](Self::put_record) of a record checked and hashed beforehand by
    /// [`ProducerConfig::prepare`] (on another thread, say). Its size is checked again against this
    /// producer's `max_record_size`, in case it was prepared under another configuration; the other rules
    /// do not depend on the configuration. As with `put_record`, a refused record is dropped: clone it first
    /// to put it again after `Backpressure`.
    pub fn put_prepared(&mut self, now: Instant, prepared: PreparedRecord) -> Result<RecordId, PutError> {
        let now = self.enter(now);
        if self.completion.is_closed() {
            return Err(PutError::Closed);
        }
        validate_size(&self.config, &prepared.record)?;
        let known = self.listing.find_for_put(&prepared.record.stream);
        self.accept(now, known, prepared)
    }

    /// Takes a checked record of stream `known` (`None`: a stream not seen before) under the limits.
    fn accept(
        &mut self,
        now: Instant,
        known: Option<StreamIx>,
        prepared: PreparedRecord,
    ) -> Result<RecordId, PutError> {
        let PreparedRecord { record, hash_key, has_explicit_hash_key } = prepared;
        let cost = record.size();
        if let Err(refused) = self.completion.admit(&self.config, cost) {
            self.telemetry.refused_for_backpressure();
            return Err(refused);
        }
        let s = match known {
            Some(s) => {
                if !self.drain.admits(&self.config, s, now, cost) {
                    self.telemetry.refused_for_backpressure();
                    return Err(self.completion.refuse());
                }
                s
            }
            None => self.stream_for(now, record.stream),
        };
        let id = self.completion.accept(now, cost);
        self.drain.accepted(s, cost);
        let expiration = deadline_after(now, self.config.record_ttl());
        let accepted = AcceptedRecord {
            id,
            partition_key: record.partition_key,
            hash_key,
            has_explicit_hash_key,
            data: record.data,
            arrival: now,
            deadline: earliest(deadline_after(now, self.config.record_max_buffered_time()), expiration),
            expiration,
            retried: None,
        };
        self.telemetry.accepted(s);
        self.route(now, s, accepted);
        self.send_due(now);
        Ok(id)
    }

    /// Starts listing a stream's shards before its first record, so that the first records are already
    /// aggregated per shard. Optional: `put_record` does the same for a stream it has not seen.
    pub fn add_stream(&mut self, now: Instant, stream: StreamTarget) -> Result<(), PutError> {
        self.enter(now);
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
        let now = self.enter(now);
        let index = stream.and_then(|target| self.listing.find(target));
        let outstanding = match (stream, index) {
            (None, _) => self.completion.outstanding_records() as u64,
            (Some(_), Some(s)) => self.telemetry.pending(s),
            // A stream never seen has nothing outstanding.
            (Some(_), None) => 0,
        };
        let id = self.completion.flush(index, outstanding, &mut self.events);
        self.send_buffered(now, stream);
        id
    }

    /// Flushes everything and refuses new records; [`Event::Drained`] follows once the last outstanding
    /// record completed.
    pub fn close(&mut self, now: Instant) {
        let now = self.enter(now);
        self.completion.close();
        self.send_buffered(now, None);
        self.completion.check_drained(&mut self.events);
    }

    // ---------------------------------------------------------------------------------------------
    // (B) inputs

    /// The response to a request from [`poll_transmit`](Self::poll_transmit).
    pub fn handle_response(&mut self, now: Instant, id: RequestId, response: Response) {
        let now = self.enter(now);
        let Some(flight) = self.in_flight.remove(&id) else {
            self.telemetry.unknown_response();
            return;
        };
        match (flight, response) {
            (InFlight::Put { stream, records, started }, response) => {
                self.puts_in_flight -= 1;
                let result = match response {
                    Response::PutRecords(result) => result,
                    Response::ListShards(_) => Err(mismatched_response()),
                };
                self.on_put_records(now, stream, started, records, result);
            }
            (InFlight::ListShards { stream }, response) => {
                let result = match response {
                    Response::ListShards(result) => result,
                    Response::PutRecords(_) => Err(mismatched_response()),
                };
                self.on_list_shards(now, stream, result);
            }
        }
        self.send_due(now);
    }

    /// Time passed: fire whatever is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.enter(now);
        self.fire_timers(now);
        while let Some((s, record)) = self.retries.pop_due(now) {
            if has_passed(record.expiration, now) {
                self.fail_expired(s, record);
            } else {
                self.route(now, s, record);
            }
        }
        self.send_due(now);
    }

    // ---------------------------------------------------------------------------------------------
    // (D) outputs

    /// The next request to send, if any: shard listings first, then PutRecords while fewer than
    /// `max_connections` are in flight.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Transmit> {
        let now = self.enter(now);
        if !self.completion.is_drained()
            && let Some((s, request)) = self.listing.next_request()
        {
            let id = self.next_request_id();
            self.in_flight.insert(id, InFlight::ListShards { stream: s });
            self.telemetry.list_shards_sent();
            return Some(Transmit { id, request: Request::ListShards(request) });
        }
        if self.puts_in_flight >= self.config.max_connections() {
            return None;
        }
        let (s, records) = loop {
            let (s, records) = self.collection.pop_ready()?;
            // A request can wait long for a connection: records whose TTL passed meanwhile fail now (and the
            // rest of their aggregate is re-aggregated) rather than being sent late.
            let (expired, records): (Vec<_>, Vec<_>) =
                records.into_iter().partition(|record| has_passed(record.expiration, now));
            for record in expired {
                self.expire(now, s, record);
            }
            // Expiring re-routes the rest of an aggregate: what that made due goes out with it.
            self.send_due(now);
            if !records.is_empty() {
                break (s, records);
            }
        };
        let id = self.next_request_id();
        let entries = records
            .iter()
            .map(|record| PutRecordsEntry {
                partition_key: record.entry.partition_key.clone(),
                explicit_hash_key: Some(record.entry.explicit_hash_key.to_string()),
                data: record.entry.data.clone(),
            })
            .collect();
        let (attempt, shards) = request_context(&records);
        self.telemetry.put_sent(now, s, &records);
        let stream = self.listing.target(s).clone();
        self.in_flight.insert(id, InFlight::Put { stream: s, records, started: now });
        self.puts_in_flight += 1;
        let request = PutRecordsRequest { stream, entries, attempt, shards };
        Some(Transmit { id, request: Request::PutRecords(request) })
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` should next be called; `None` when nothing is waiting on time.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        debug_assert!(
            !self.aggregation.has_due() && !self.collection.has_due(),
            "an input left due work unsettled: it would wait for no timer"
        );
        if self.completion.is_drained() {
            // Closed with nothing left: no more work, not even refreshing a shard map.
            return None;
        }
        earliest(self.next_timer_at(), self.retries.next_due())
    }

    // ---------------------------------------------------------------------------------------------
    // Intake

    /// Every call that changes state starts here: `now` is clamped ([`clock`](Self::clock)), and the
    /// telemetry samples what was outstanding up to it (its `UserRecordsPending` ticks).
    fn enter(&mut self, now: Instant) -> Instant {
        let (now, moved) = self.clock(now);
        if moved {
            self.telemetry.advance(now);
        }
        now
    }

    /// Clamps `now` to the latest seen (it never goes backwards); also says whether time moved. (At the
    /// same instant nothing is due to the telemetry: calls come in batches at one `now`.)
    fn clock(&mut self, now: Instant) -> (Instant, bool) {
        let last = self.last_now;
        let now = last.map_or(now, |last| last.max(now));
        self.last_now = Some(now);
        (now, last != Some(now))
    }

    fn stream_for(&mut self, now: Instant, target: StreamTarget) -> StreamIx {
        if let Some(s) = self.listing.find(&target) {
            return s;
        }
        let holds = self.config.aggregation() == AggregationPolicy::PerShard
            && self.config.shard_map_wait() == ShardMapWait::Hold;
        let hold_until = holds.then(|| deadline_after(now, self.config.shard_map_wait_timeout())).flatten();
        let s = self.listing.add(target, hold_until);
        self.aggregation.stream_added();
        self.shard_queues.stream_added();
        self.collection.stream_added();
        self.drain.stream_added();
        self.telemetry.stream_added();
        s
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request_id += 1;
        RequestId(self.next_request_id - 1)
    }
}

fn mismatched_response() -> RequestError {
    RequestError::new(RequestErrorKind::Transient, None, "response of the wrong kind for this request")
}
