//! Deterministic simulation: the producer (`kpl-core`) against the simulated Kinesis (`kpl-mock-backend`) on
//! virtual time, driven by a seeded workload, with the reference [`model`] checking invariants after every
//! step. One master seed decides everything (the shape of the workload, which faults are on and how often,
//! the producer's settings), so any failure replays exactly from its seed.

pub mod model;
pub mod rng;
pub mod script;
pub mod workload;

use std::time::{Duration, Instant};

use kpl_core::{
    AggregationPolicy, Event, Producer, ProducerConfig, PutError, Request, Response, ShardMapWait,
    StreamTarget, UserRecord,
};
use kpl_mock_backend::{Faults, MockConfig, MockKinesis, RequestFaults, ShardLimits};

use model::Model;
use rng::SplitMix64;
use script::Script;
use workload::{Action, Actions, Workload, WorkloadParams};

const STREAM: &str = "sim-stream";

/// Whether faults last the whole run, or stop part-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Faults throughout: nothing may ever be wrong.
    Safety,
    /// Faults stop at a random point: after that, everything must complete.
    Liveness,
}

/// What one run did, for the closing report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Records accepted.
    pub records: u64,
    /// Records written.
    pub succeeded: u64,
    /// Records failed (expired, throttled, rejected).
    pub failed: u64,
    /// Records lost: accepted and never completed (must be 0).
    pub lost: u64,
    /// Extra copies a KCL consumer would see (each flagged as possibly duplicated).
    pub duplicates: u64,
    /// Faults injected by kind: dropped requests, lost responses, throttled requests, 500s, 503s, entry
    /// failures.
    pub faults: [u64; 6],
    /// Entries the backend throttled for the shard limits.
    pub entries_throttled: u64,
    /// Reshards performed.
    pub reshards: u64,
    /// Simulation steps.
    pub steps: u64,
    /// A digest of every input and output, to compare runs.
    pub trace: u64,
}

/// The fault settings of a seed: each kind on or off, at a random intensity (swarm testing).
fn draw_faults(rng: &mut SplitMix64) -> Faults {
    let mut p = |max: f64| if rng.chance(0.4) { rng.unit() * max } else { 0.0 };
    let put_records = RequestFaults {
        drop_request: p(0.05),
        lose_response: p(0.05),
        throttle: p(0.1),
        internal_failure: p(0.1),
        service_unavailable: p(0.1),
        duplicate_response: p(0.05),
    };
    let list_shards = RequestFaults {
        drop_request: p(0.1),
        lose_response: p(0.1),
        throttle: p(0.2),
        internal_failure: p(0.1),
        service_unavailable: p(0.1),
        duplicate_response: p(0.05),
    };
    Faults { put_records, list_shards, entry_internal_failure: p(0.2) }
}

/// The producer's settings of a seed. `later` draws the settings added after seeds were first recorded, so
/// that those seeds keep their original settings and faults.
fn draw_config(rng: &mut SplitMix64, later: &mut SplitMix64) -> ProducerConfig {
    let policy = match rng.below(10) {
        0 => AggregationPolicy::Off,
        1 => AggregationPolicy::SameHashKey,
        _ => AggregationPolicy::PerShard,
    };
    let builder = ProducerConfig::builder()
        .aggregation(policy)
        .aggregation_max_size(1000 + rng.below(50_200))
        .collection_max_count(1 + rng.below(500))
        .record_max_buffered_time(Duration::from_millis(rng.below(200)))
        .record_ttl(Duration::from_millis(1000 + rng.below(20_000)))
        .max_connections(1 + rng.below(24) as usize)
        .request_timeout(Duration::from_millis(500 + rng.below(3000)))
        .rate_limit(50 + rng.below(101))
        .fail_if_throttled(rng.chance(0.1))
        .max_outstanding_records(if rng.chance(0.3) { 10 + rng.below(500) } else { 1_000_000 })
        .retry_max_backoff(Duration::from_millis(100 + rng.below(3000)))
        .shard_map_wait(if later.chance(0.2) { ShardMapWait::SendUnaggregated } else { ShardMapWait::Hold })
        .shard_map_wait_timeout(Duration::from_millis(later.below(8000)));
    builder.build().unwrap_or_else(|error| panic!("drawn config is invalid: {error}"))
}

/// FNV-1a over text, to digest a trace without keeping it.
fn digest(state: &mut u64, text: &str) {
    for byte in text.bytes() {
        *state = (*state ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
}

/// One simulated run.
pub struct Sim {
    epoch: Instant,
    now: Instant,
    producer: Producer,
    backend: MockKinesis,
    workload: Box<dyn Actions>,
    model: Model,
    mode: Mode,
    heal_at: Instant,
    /// Open shard ranges the stream has had, oldest first.
    layouts: Vec<Vec<(u128, u128)>>,
    /// Which layout the last `ListShards` sent was listing, and whether the producer's map is the current
    /// layout (then its limiter governs what each shard receives).
    listing_layout: usize,
    map_is_current: bool,
    /// Per open shard of the current layout: entries and bytes sent in the last second.
    sent: std::collections::BTreeMap<(u128, u128), std::collections::VecDeque<(Instant, usize)>>,
    /// A put refused for backpressure, to retry when capacity is back.
    waiting: Option<UserRecord>,
    closed_at: Option<Instant>,
    report: Report,
}

impl Sim {
    /// Sets up the run of `seed` in `mode`, driven by a seeded workload.
    pub fn new(seed: u64, mode: Mode, epoch: Instant) -> Self {
        Self::with_actions(seed, mode, epoch, |rng, epoch| {
            let params = WorkloadParams::draw(rng);
            Box::new(Workload::new(rng::derive(seed, 2), params, StreamTarget::name(STREAM), epoch))
        })
    }

    /// Sets up a run driven by actions decoded from `bytes` (the fuzzer's input): the first eight bytes seed
    /// the settings and faults, the rest are the actions.
    pub fn from_bytes(bytes: &[u8], epoch: Instant) -> Self {
        let (head, tail) = bytes.split_at(bytes.len().min(8));
        let mut seed = [0u8; 8];
        seed[..head.len()].copy_from_slice(head);
        let mode = if tail.len() % 2 == 0 { Mode::Safety } else { Mode::Liveness };
        Self::with_actions(u64::from_le_bytes(seed), mode, epoch, |_, epoch| {
            Box::new(Script::decode(tail, &StreamTarget::name(STREAM), epoch))
        })
    }

    fn with_actions(
        seed: u64,
        mode: Mode,
        epoch: Instant,
        actions: impl FnOnce(&mut SplitMix64, Instant) -> Box<dyn Actions>,
    ) -> Self {
        let mut rng = SplitMix64::new(rng::derive(seed, 0));
        let config = draw_config(&mut rng, &mut SplitMix64::new(rng::derive(seed, 4)));
        let mut mock = MockConfig::calm();
        mock.request_timeout = config.request_timeout();
        mock.latency = Duration::from_millis(rng.below(50));
        mock.jitter = Duration::from_millis(rng.below(50));
        mock.shard_limits = rng.chance(0.8).then_some(ShardLimits::KINESIS);
        mock.faults = draw_faults(&mut rng);
        let mut backend = MockKinesis::new(mock, rng::derive(seed, 1)).unwrap_or_else(|e| panic!("{e}"));
        let shards = 1 + rng.below(8) as u32;
        backend.create_stream(STREAM, shards).unwrap_or_else(|e| panic!("{e}"));
        let workload = actions(&mut rng, epoch);
        let model = Model::new(&config);
        let heal_at = epoch + Duration::from_millis(rng.below(10_000));
        let mut sim = Self {
            epoch,
            now: epoch,
            producer: Producer::new(config, rng::derive(seed, 3)),
            backend,
            workload,
            model,
            mode,
            heal_at,
            layouts: Vec::new(),
            listing_layout: 0,
            map_is_current: false,
            sent: std::collections::BTreeMap::new(),
            waiting: None,
            closed_at: None,
            report: Report::default(),
        };
        sim.record_layout();
        sim
    }

    fn record_layout(&mut self) {
        let shards = self.backend.shards(STREAM).unwrap_or_default();
        let layout = shards
            .iter()
            .filter(|shard| shard.is_open())
            .map(|shard| (*shard.hash_range().start(), *shard.hash_range().end()))
            .collect();
        self.layouts.push(layout);
    }

    /// Runs to the end: the workload closes the producer, and everything must drain.
    pub fn run(mut self) -> Result<Report, String> {
        let planned_puts = self.workload.planned_puts() as u64;
        loop {
            self.drain()?;
            let next = [self.producer.poll_timeout(), self.backend.poll_timeout(), self.workload.next_at()]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = next else { break };
            if next < self.now {
                return Err(format!("a timeout in the past: {:?} before now", self.now - next));
            }
            self.now = next;
            self.report.steps += 1;
            let elapsed = (self.now - self.epoch).as_secs() + 1;
            if self.report.steps > 200 * (planned_puts + 1) + 2000 * elapsed {
                return Err(format!("busy loop: {} steps in {elapsed} s", self.report.steps));
            }
            if self.mode == Mode::Liveness && self.now >= self.heal_at {
                self.backend.set_faults(Faults::NONE).map_err(|e| e.to_string())?;
            }
            while let Some((id, response)) = self.backend.poll_response(self.now) {
                self.trace(&format!("response {id:?} {}", summary(&response)));
                self.producer.handle_response(self.now, id, response);
            }
            for action in self.workload.take_due(self.now) {
                self.act(action)?;
            }
            self.producer.handle_timeout(self.now);
        }
        self.finish()
    }

    fn act(&mut self, action: Action) -> Result<(), String> {
        match action {
            Action::Put(record) => {
                if self.waiting.is_some() {
                    // Keep order behind the record waiting for capacity: this one is dropped from the
                    // workload, as an application blocked on `put` would not have produced it yet.
                    return Ok(());
                }
                self.put(record)?;
            }
            Action::Flush => {
                let id = self.producer.flush(self.now, None);
                self.model.on_flush(id)?;
            }
            Action::Close => {
                self.closed_at = Some(self.now);
                self.producer.close(self.now);
            }
            Action::Reshard { split, at } => self.reshard(split, at)?,
        }
        Ok(())
    }

    fn put(&mut self, record: UserRecord) -> Result<(), String> {
        match self.producer.put_record(self.now, record.clone()) {
            Ok(id) => {
                self.model.on_put(id, &record, self.now)?;
                self.trace(&format!("put {id:?}"));
                let limit = self.producer.config().max_outstanding_bytes() as usize;
                if self.producer.outstanding_bytes() > limit && self.producer.outstanding_records() > 1 {
                    return Err("outstanding bytes above the limit".into());
                }
            }
            Err(PutError::Backpressure { .. }) => self.waiting = Some(record),
            Err(PutError::Closed) if self.closed_at.is_some() => {}
            Err(error) => return Err(format!("a valid record was refused: {error}")),
        }
        Ok(())
    }

    fn reshard(&mut self, split: bool, at: f64) -> Result<(), String> {
        let shards = self.backend.shards(STREAM).unwrap_or_default();
        let open: Vec<_> = shards.iter().filter(|shard| shard.is_open()).cloned().collect();
        let point = (u128::MAX as f64 * at) as u128;
        let Some(index) = open.iter().position(|shard| shard.hash_range().contains(&point)) else {
            return Ok(());
        };
        let shard = &open[index];
        let (start, end) = (*shard.hash_range().start(), *shard.hash_range().end());
        let done = if split {
            let middle = start + (end - start) / 2;
            middle > start + 1
                && self.backend.split_shard(self.now, STREAM, shard.id().as_str(), middle).is_ok()
        } else {
            let neighbour = open.get(index + 1).or_else(|| index.checked_sub(1).and_then(|i| open.get(i)));
            neighbour.is_some_and(|other| {
                self.backend.merge_shards(self.now, STREAM, shard.id().as_str(), other.id().as_str()).is_ok()
            })
        };
        if done {
            self.report.reshards += 1;
            self.record_layout();
            self.map_is_current = false;
            self.sent.clear();
            self.trace(&format!("reshard split={split} at={at}"));
        }
        Ok(())
    }

    /// Hands every request to the backend and checks every event, as the call contract says.
    fn drain(&mut self) -> Result<(), String> {
        while let Some(transmit) = self.producer.poll_transmit(self.now) {
            self.model.check_request(&transmit.request, &self.layouts)?;
            match &transmit.request {
                Request::ListShards(list) if list.next_token.is_none() => {
                    self.listing_layout = self.layouts.len()
                }
                Request::PutRecords(put) if self.map_is_current => self.check_rate(put)?,
                _ => {}
            }
            self.trace(&format!("transmit {:?} {}", transmit.id, request_summary(&transmit.request)));
            self.backend
                .handle_request(self.now, transmit.id, transmit.request)
                .map_err(|e| e.to_string())?;
        }
        let mut capacity = false;
        while let Some(event) = self.producer.poll_event() {
            self.model.on_event(&event, self.now)?;
            self.trace(&event_summary(&event));
            capacity |= matches!(event, Event::CapacityAvailable);
            if matches!(event, Event::ShardMapUpdated { .. }) {
                self.map_is_current = self.listing_layout == self.layouts.len();
            }
        }
        if capacity && let Some(record) = self.waiting.take() {
            self.put(record)?;
            // A put may have produced output: drain again.
            return self.drain();
        }
        if let Some(timeout) = self.producer.poll_timeout()
            && timeout < self.now
        {
            return Err("poll_timeout in the past after a full drain".into());
        }
        Ok(())
    }

    /// Per shard, what the producer sends in any one second stays within what its limiter allows: a full
    /// bucket (one second at `rate_limit`%) plus a second of refill. Records sent unpredicted before the map
    /// arrived may share a request with them: one request's worth of slack.
    fn check_rate(&mut self, put: &kpl_core::PutRecordsRequest) -> Result<(), String> {
        let config = self.producer.config();
        let percent = config.rate_limit() as f64 / 100.0;
        let max_records = 2.0 * percent * config.shard_max_records_per_second() as f64 + 500.0;
        let max_bytes = 2.0 * percent * config.shard_max_bytes_per_second() as f64 + 5.0 * 1024.0 * 1024.0;
        let layout = self.layouts.last().cloned().unwrap_or_default();
        for entry in &put.entries {
            let Some(hash) = entry.explicit_hash_key.as_deref().and_then(|text| text.parse::<u128>().ok())
            else {
                continue;
            };
            let Some(&range) = layout.iter().find(|(start, end)| (*start..=*end).contains(&hash)) else {
                continue;
            };
            let window = self.sent.entry(range).or_default();
            window.push_back((self.now, entry.partition_key.len() + entry.data.len()));
            while window.front().is_some_and(|&(at, _)| at + Duration::from_secs(1) <= self.now) {
                window.pop_front();
            }
            let bytes: usize = window.iter().map(|&(_, size)| size).sum();
            if window.len() as f64 > max_records || bytes as f64 > max_bytes {
                return Err(format!("a shard got {} entries, {bytes} bytes in one second", window.len()));
            }
        }
        Ok(())
    }

    fn trace(&mut self, text: &str) {
        digest(&mut self.report.trace, &format!("{:?} {text}\n", self.now - self.epoch));
    }

    fn finish(mut self) -> Result<Report, String> {
        let Some(closed_at) = self.closed_at else { return Err("the workload never closed".into()) };
        let Some(drained_at) = self.model.drained_at else {
            return Err(format!("no Drained: {} records outstanding", self.producer.outstanding_records()));
        };
        // Everything is bounded by the TTL: the last record completes within it, plus a request's time.
        let config = self.producer.config();
        let bound = config.record_ttl()
            + config.request_timeout()
            + config.retry_max_backoff()
            + Duration::from_secs(1);
        let last_put = self.model.accepted.values().map(|a| a.put_at).max().unwrap_or(closed_at);
        if drained_at > last_put.max(closed_at) + bound {
            return Err(format!(
                "drained {:?} after the last put, {:?} after close (TTL {:?}, request timeout {:?}, backoff {:?})",
                drained_at - last_put,
                drained_at - closed_at,
                config.record_ttl(),
                config.request_timeout(),
                config.retry_max_backoff()
            ));
        }
        let shards: Vec<_> = self
            .backend
            .shards(STREAM)
            .unwrap_or_default()
            .iter()
            .map(|shard| {
                let range = (*shard.hash_range().start(), *shard.hash_range().end());
                let records = shard.committed().iter().map(|record| record.to_received()).collect();
                (shard.id().to_string(), range, records)
            })
            .collect();
        self.report.duplicates = self.model.check_stream(&shards)? as u64;
        self.report.records = self.model.accepted.len() as u64;
        self.report.succeeded = self.model.outcomes.values().filter(|o| o.result.is_ok()).count() as u64;
        self.report.failed = self.report.records - self.report.succeeded;
        self.report.lost = (self.model.accepted.len() - self.model.outcomes.len()) as u64;
        let stats = self.backend.stats();
        let faults = &stats.faults;
        self.report.faults = [
            faults.dropped_requests,
            faults.lost_responses,
            faults.throttled_requests,
            faults.internal_failures,
            faults.service_unavailable,
            faults.entry_internal_failures,
        ];
        self.report.entries_throttled = stats.entries_throttled;
        if self.mode == Mode::Liveness && self.report.lost > 0 {
            return Err("records lost".into());
        }
        Ok(self.report)
    }
}

fn request_summary(request: &Request) -> String {
    match request {
        Request::PutRecords(put) => {
            let entries: Vec<_> =
                put.entries.iter().map(|e| (e.explicit_hash_key.clone(), e.data.len())).collect();
            format!("put {entries:?}")
        }
        other => format!("{other:?}"),
    }
}

fn summary(response: &Response) -> String {
    format!("{response:?}")
}

fn event_summary(event: &Event) -> String {
    match event {
        Event::RecordCompleted(outcome) => match &outcome.result {
            Ok(receipt) => format!(
                "ok {:?} {} {} attempts={}",
                outcome.id,
                receipt.shard_id,
                receipt.sequence_number,
                receipt.attempts.len()
            ),
            Err(failure) => format!("failed {:?} {}", outcome.id, failure.error),
        },
        other => format!("{other:?}"),
    }
}

/// Runs a simulation driven by `bytes` (see [`Sim::from_bytes`]), twice, and checks that both runs agree.
pub fn run_bytes(bytes: &[u8]) -> Result<Report, String> {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    #[allow(clippy::disallowed_methods)]
    let epoch = *EPOCH.get_or_init(Instant::now);
    let first = Sim::from_bytes(bytes, epoch).run()?;
    let second = Sim::from_bytes(bytes, epoch).run()?;
    if first != second {
        return Err(format!("two runs of the same input differ: {first:?} vs {second:?}"));
    }
    Ok(first)
}

/// Runs `seed` in `mode`, twice, and checks that both runs agree exactly.
pub fn run_seed(seed: u64, mode: Mode, epoch: Instant) -> Result<Report, String> {
    let first = Sim::new(seed, mode, epoch).run()?;
    let second = Sim::new(seed, mode, epoch).run()?;
    if first != second {
        return Err(format!("two runs of the same seed differ: {first:?} vs {second:?}"));
    }
    Ok(first)
}
