//! Reading the metrics: every series at its finest dimensions, and windowed, rolled-up queries
//! ([`Producer::metrics`](crate::Producer::metrics), [`Producer::metrics_query`](crate::Producer::metrics_query)).

use std::collections::BTreeMap;
use std::time::Instant;

use super::series::{Series, Span};
use super::telemetry::Telemetry;
use super::{
    Metric, MetricName, MetricSample, MetricsGranularity, MetricsQuery, MetricsQueryError, MetricsRollup,
    Stat,
};
use crate::ids::{ShardId, ShardSlot, StreamIx, StreamTarget};

/// The names behind the indexes the metrics are kept under.
pub(crate) trait Names {
    /// The stream at index `s`.
    fn stream(&self, s: StreamIx) -> &StreamTarget;
    /// The shard in `slot` of stream `s`.
    fn shard(&self, s: StreamIx, slot: ShardSlot) -> &ShardId;
}

/// A node of a metric's dimension tree: name, error code, stream, shard.
type NodeKey<'a> = (MetricName, Option<&'a str>, Option<StreamIx>, Option<ShardSlot>);

impl Telemetry {
    /// Every series with an observation, cumulative, at its finest dimensions; `UserRecordsPending` with the
    /// samples due by `now` (the latest call's).
    pub(crate) fn samples(&self, now: Option<Instant>, names: &impl Names) -> Vec<MetricSample> {
        let mut samples = Vec::new();
        self.each_series(|name, s, slot, code, series| {
            let stat = match now {
                Some(now) => self.series_stat(name, s, series, &Span::Cumulative, now),
                None => series.stat(&Span::Cumulative),
            };
            if stat.count > 0 {
                samples.push(MetricSample {
                    name,
                    stream: names.stream(s).clone(),
                    shard_id: slot.map(|slot| names.shard(s, slot).clone()),
                    error_code: code.map(str::to_owned),
                    stat,
                });
            }
        });
        samples
    }

    /// The metrics over `query.window`, summed up the dimension tree to `query.granularity`.
    pub(crate) fn query(
        &self,
        now: Instant,
        query: &MetricsQuery,
        names: &impl Names,
    ) -> Result<Vec<Metric>, MetricsQueryError> {
        let span = Span::resolve(query.window, self.second_of(now))?;
        let shard_level = query.granularity == MetricsGranularity::Shard;
        let stream_level = query.granularity >= MetricsGranularity::Stream;
        // `None`s sort first, so coarser nodes come first.
        let mut nodes: BTreeMap<NodeKey<'_>, Stat> = BTreeMap::new();
        self.each_series(|name, s, slot, code, series| {
            if query.name.is_some_and(|wanted| wanted != name) {
                return;
            }
            let stat = self.series_stat(name, s, series, &span, now);
            if stat.count == 0 {
                return;
            }
            let stream = stream_level.then_some(s);
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
            .map(|((name, code, stream, slot), stat)| Metric {
                name,
                error_code: code.map(str::to_owned),
                stream: stream.map(|s| names.stream(s).clone()),
                shard_id: stream.zip(slot).map(|(s, slot)| names.shard(s, slot).clone()),
                stat,
            })
            .collect())
    }

    /// The second of the producer's clock that `now` falls in.
    pub(crate) fn second_of(&self, now: Instant) -> u64 {
        self.metrics.second_of(now)
    }

    /// A series' observations in `span`; for `UserRecordsPending`, with the samples due by `now` and not
    /// taken yet (nothing changed since the last call, so they are known).
    fn series_stat(&self, name: MetricName, s: StreamIx, series: &Series, span: &Span, now: Instant) -> Stat {
        let mut stat = series.stat(span);
        if name == MetricName::UserRecordsPending {
            let pending = self.streams[s.index()].pending as f64;
            stat.merge(&span.samples(pending, self.metrics.ticks_due(now)));
        }
        stat
    }

    /// Calls `f` with every metric series at its finest dimensions: stream, shard, error code.
    fn each_series<'a>(
        &'a self,
        mut f: impl FnMut(MetricName, StreamIx, Option<ShardSlot>, Option<&'a str>, &'a Series),
    ) {
        for (index, stream) in self.streams.iter().enumerate() {
            let s = StreamIx(index as u32);
            f(MetricName::UserRecordsReceived, s, None, None, &stream.received);
            f(MetricName::UserRecordsPending, s, None, None, &stream.pending_samples);
        }
        for (name, dimensions, series) in self.metrics.iter() {
            f(name, dimensions.stream, dimensions.slot, dimensions.error_code.as_deref(), series);
        }
    }
}
