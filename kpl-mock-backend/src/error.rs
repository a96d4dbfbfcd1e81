//! Errors of the mock's own operations (creating streams, resharding, accepting requests). Errors of the
//! simulated API calls are not here: they are answered as [`kpl_core::RequestError`]s.

/// An operation on the mock was refused. Messages follow the service's where it has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// `CreateStream` of a name already taken (`ResourceInUseException`).
    #[error("Stream {stream} already exists.")]
    StreamExists {
        /// The stream.
        stream: String,
    },
    /// `CreateStream` with no shards.
    #[error("A stream needs at least one shard.")]
    NoShards,
    /// No stream of that name (`ResourceNotFoundException`).
    #[error("Stream {stream} not found.")]
    StreamNotFound {
        /// The stream.
        stream: String,
    },
    /// No shard of that id in the stream (`ResourceNotFoundException`).
    #[error("Could not find shard {shard} in stream {stream}.")]
    ShardNotFound {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
    },
    /// The shard was already split or merged.
    #[error(
        "Shard {shard} in stream {stream} has already been merged or split, and thus is not eligible for resharding."
    )]
    ShardClosed {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
    },
    /// `SplitShard` with a key the service refuses (`InvalidArgumentException`).
    #[error(
        "NewStartingHashKey {key} used in SplitShard() on shard {shard} in stream {stream} is not both greater \
         than one plus the shard's StartingHashKey {start} and less than the shard's EndingHashKey {end}."
    )]
    InvalidSplitKey {
        /// The stream.
        stream: String,
        /// The shard.
        shard: String,
        /// The key given.
        key: u128,
        /// The shard's `StartingHashKey`.
        start: u128,
        /// The shard's `EndingHashKey`.
        end: u128,
    },
    /// `MergeShards` of shards whose ranges do not meet (`InvalidArgumentException`).
    #[error(
        "Shards {shard} and {adjacent} in stream {stream} are not an adjacent pair of shards eligible for merging"
    )]
    NotAdjacent {
        /// The stream.
        stream: String,
        /// `ShardToMerge`.
        shard: String,
        /// `AdjacentShardToMerge`.
        adjacent: String,
    },
    /// A kind of request the mock does not simulate (the core's `Request` may grow).
    #[error("the mock does not simulate this request: {0}")]
    UnsupportedRequest(String),
}
