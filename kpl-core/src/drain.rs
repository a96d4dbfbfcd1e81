//! Drain rates: how fast each stream's shards take its user records, measured from PutRecords results, and
//! the bytes each stream holds. Admission ([`ProducerConfig::admits_to_stream`]) bounds what a stream may
//! hold by what it drains in a fraction of the TTL, so records are held back at `put` instead of expiring
//! in a queue.

use std::time::{Duration, Instant};

use crate::config::{AggregationPolicy, ProducerConfig};
use crate::ids::StreamIx;

/// How long a rate measured while the shards throttled stands for the stream's capacity after the last
/// throttling: shards that have not throttled for this long have room again, and the quota applies.
const SATURATION_MEMORY: Duration = Duration::from_secs(10);

/// The shortest period a saturated rate is measured over (one second, the period of Kinesis's quotas).
const PERIOD: Duration = Duration::from_secs(1);

/// The drain state of one stream.
#[derive(Debug)]
struct StreamDrain {
    /// Bytes (data plus partition keys) of the stream's outstanding user records.
    outstanding_bytes: usize,
    /// Open shards in the last map; 1 until a map is known (every stream has at least one).
    open_shards: usize,
    /// User records accepted by `put_record`, and their bytes: the mean user record size.
    put_records: u64,
    put_bytes: u64,
    /// User bytes per Kinesis record written, a moving average (weight 1/8 to each new record); `None`
    /// before the first one.
    bytes_per_kinesis_record: Option<u64>,
    /// The measuring period in progress: when it began, user bytes written in it, whether a shard
    /// throttled in it.
    period_start: Option<Instant>,
    period_bytes: u64,
    period_throttled: bool,
    /// User bytes per second written over the periods in which a shard throttled (the shards' capacity), a
    /// moving average (weight 1/2 to each period).
    saturated_bytes_per_second: Option<u64>,
    last_throttled: Option<Instant>,
    /// The admission limit last computed (`ProducerConfig::stream_admission_limit` of the rate), kept off
    /// the per-record path: recomputed once `stale` (what it depends on changed) or at `limit_until` (when
    /// the measurement it used ages out).
    limit: Option<u64>,
    stale: bool,
    limit_until: Option<Instant>,
}

impl Default for StreamDrain {
    fn default() -> Self {
        Self {
            outstanding_bytes: 0,
            open_shards: 1,
            put_records: 0,
            put_bytes: 0,
            bytes_per_kinesis_record: None,
            period_start: None,
            period_bytes: 0,
            period_throttled: false,
            saturated_bytes_per_second: None,
            last_throttled: None,
            limit: None,
            stale: true,
            limit_until: None,
        }
    }
}

impl StreamDrain {
    /// Closes the measuring period if it lasted [`PERIOD`]; starts one if none runs.
    fn roll(&mut self, now: Instant) {
        let Some(start) = self.period_start else {
            self.period_start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < PERIOD {
            return;
        }
        if self.period_throttled {
            let millis = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX).max(1);
            let rate = self.period_bytes.saturating_mul(1000) / millis;
            self.saturated_bytes_per_second =
                Some(self.saturated_bytes_per_second.map_or(rate, |old| old / 2 + rate / 2));
        }
        self.period_start = Some(now);
        self.period_bytes = 0;
        self.period_throttled = false;
    }

    /// The drain-rate estimate at `now`, in user-record bytes (data plus partition keys) per second: what
    /// the shards were measured to write while they throttled within the last [`SATURATION_MEMORY`],
    /// otherwise the quota of the open shards ([`ProducerConfig::quota_drain_rate`]). A measurement counts
    /// between a quarter of the quota (so a stream recovers at once after a burst of throttling) and the
    /// quota (a shard bursts above its quota for a moment, never for long). Unaggregated, a Kinesis record
    /// is one user record, so the quota's record count is converted with the mean user record size until
    /// records were written; aggregated, only the byte quota counts until then. Also returns until when the
    /// measurement it used stands (`None`: it used none).
    fn rate(&self, config: &ProducerConfig, now: Instant) -> (u64, Option<Instant>) {
        let mean_put = (self.put_records > 0).then(|| self.put_bytes / self.put_records);
        let per_kinesis_record = self
            .bytes_per_kinesis_record
            .or(mean_put.filter(|_| config.aggregation() == AggregationPolicy::Off));
        let quota = config.quota_drain_rate(self.open_shards, per_kinesis_record);
        match (self.saturated_bytes_per_second, self.last_throttled) {
            (Some(measured), Some(at)) if now.saturating_duration_since(at) < SATURATION_MEMORY => {
                (measured.min(quota).max(quota / 4), at.checked_add(SATURATION_MEMORY))
            }
            _ => (quota, None),
        }
    }
}

/// Every stream's drain state, by stream index.
#[derive(Debug, Default)]
pub(crate) struct DrainRates {
    streams: Vec<StreamDrain>,
}

impl DrainRates {
    pub(crate) fn stream_added(&mut self) {
        self.streams.push(StreamDrain::default());
    }

    /// `put_record` accepted a record of `cost` bytes into stream `s`.
    pub(crate) fn accepted(&mut self, s: StreamIx, cost: usize) {
        let stream = &mut self.streams[s.index()];
        stream.outstanding_bytes += cost;
        stream.put_records += 1;
        // Unaggregated, the mean record size converts the record quota (see `StreamDrain::rate`).
        stream.stale |= stream.bytes_per_kinesis_record.is_none();
        stream.put_bytes = stream.put_bytes.saturating_add(cost as u64);
    }

    /// A record of `cost` bytes of stream `s` completed.
    pub(crate) fn completed(&mut self, s: StreamIx, cost: usize) {
        let stream = &mut self.streams[s.index()];
        stream.outstanding_bytes = stream.outstanding_bytes.saturating_sub(cost);
    }

    /// A new shard map of stream `s` has `open_shards` open shards.
    pub(crate) fn map_installed(&mut self, s: StreamIx, open_shards: usize) {
        let stream = &mut self.streams[s.index()];
        stream.open_shards = open_shards.max(1);
        stream.stale = true;
    }

    /// A shard of stream `s` wrote a Kinesis record holding `user_bytes` bytes of user records.
    pub(crate) fn written(&mut self, now: Instant, s: StreamIx, user_bytes: usize) {
        let stream = &mut self.streams[s.index()];
        stream.roll(now);
        let bytes = user_bytes as u64;
        stream.period_bytes = stream.period_bytes.saturating_add(bytes);
        stream.bytes_per_kinesis_record =
            Some(stream.bytes_per_kinesis_record.map_or(bytes, |old| old - old / 8 + bytes / 8));
        stream.stale = true;
    }

    /// A shard of stream `s` throttled a Kinesis record: the stream is writing at its shards' capacity.
    pub(crate) fn throttled(&mut self, now: Instant, s: StreamIx) {
        let stream = &mut self.streams[s.index()];
        stream.roll(now);
        stream.period_throttled = true;
        stream.last_throttled = Some(now);
        stream.stale = true;
    }

    /// Stream `s`'s drain-rate estimate at `now` (see `StreamDrain::rate`).
    pub(crate) fn rate(&self, config: &ProducerConfig, s: StreamIx, now: Instant) -> u64 {
        self.streams[s.index()].rate(config, now).0
    }

    /// Whether stream `s` takes a record of `cost` bytes at `now` under its drain-time limit
    /// ([`ProducerConfig::admits_to_stream`]).
    pub(crate) fn admits(&mut self, config: &ProducerConfig, s: StreamIx, now: Instant, cost: usize) -> bool {
        let stream = &mut self.streams[s.index()];
        if stream.stale || stream.limit_until.is_some_and(|until| now >= until) {
            let (rate, until) = stream.rate(config, now);
            stream.limit = config.stream_admission_limit(rate);
            stream.limit_until = until;
            stream.stale = false;
        }
        config.admits_to_stream(stream.outstanding_bytes, stream.limit, cost)
    }
}
