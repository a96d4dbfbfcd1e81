//! Events the producer reports through `Producer::poll_event`.

use crate::ids::{FlushId, ShardId, StreamTarget};
use crate::record::RecordOutcome;

/// Something the application (or the adapter) should learn about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A record completed, successfully or not. Exactly once per accepted record.
    RecordCompleted(RecordOutcome),
    /// A stream's shard map was fetched.
    ShardMapUpdated {
        /// The stream.
        stream: StreamTarget,
        /// Number of open shards.
        open_shards: usize,
    },
    /// No shard map could be had for a stream under [`ShardMapWait::Hold`](crate::ShardMapWait::Hold):
    /// `ListShards` was refused, or no listing succeeded within `shard_map_wait_timeout`. Until a listing
    /// succeeds (it is retried in the background, then [`Event::ShardMapUpdated`] follows), the stream's
    /// records are aggregated only with records of the same hash key. Reported once per stream.
    ShardMapUnavailable {
        /// The stream.
        stream: StreamTarget,
        /// Why: the `ListShards` error, or the wait that ran out.
        reason: String,
    },
    /// A shard throttled us; the limiter now sends to it at this share of the configured rate.
    ShardThrottled {
        /// The stream.
        stream: StreamTarget,
        /// The shard.
        shard_id: ShardId,
        /// Share of the configured rate now allowed, in (0, 1].
        rate_factor: f64,
    },
    /// Outstanding records and bytes fell back under the limits after a `PutError::Backpressure`.
    CapacityAvailable,
    /// Every record accepted before this [`Producer::flush`](crate::Producer::flush) (of its stream, or of all
    /// streams) has completed, successfully or not: its [`Event::RecordCompleted`]s come before this.
    /// Exactly once per flush; right away (at the next `poll_event`) when none was outstanding.
    FlushCompleted(FlushId),
    /// After `close`, the last outstanding record completed.
    Drained,
}
