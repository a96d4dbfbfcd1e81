//! Identifiers: of records, requests, streams and shards.

use std::fmt;
use std::sync::Arc;

/// Identifies one accepted user record. Never reused within a producer, and assigned in increasing order
/// (an adapter may keep per-record state in a queue indexed from the oldest outstanding id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u64);

/// Identifies one request handed to the adapter. Never reused within a producer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// Identifies one [`Producer::flush`](crate::Producer::flush). Never reused within a producer, and assigned in
/// increasing order. [`Event::FlushCompleted`](crate::Event::FlushCompleted) carries it once every record
/// the flush covers has completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlushId(pub u64);

/// The stream a record goes to: by name, or by ARN (which also names the account and region).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamTarget {
    /// A stream name, e.g. `orders`.
    Name(Arc<str>),
    /// A stream ARN, e.g. `arn:aws:kinesis:us-east-1:123456789012:stream/orders`.
    Arn(Arc<str>),
}

/// Streams and a small value for each (an index, a slot), with the stream looked up last remembered: a run
/// of puts to one stream, with clones of one `StreamTarget`, costs a pointer comparison per lookup, not a
/// hash of the stream's name. The producer keeps its streams' indexes in one; an adapter can keep its own
/// per-stream state the same way.
#[derive(Debug, Clone)]
pub struct StreamIndex<V: Copy> {
    values: crate::map::DetMap<StreamTarget, V>,
    last: Option<(StreamTarget, V)>,
}

impl<V: Copy> Default for StreamIndex<V> {
    fn default() -> Self {
        Self { values: crate::map::DetMap::default(), last: None }
    }
}

impl<V: Copy> StreamIndex<V> {
    /// The value of `stream`, remembering it for the next lookup.
    pub fn get(&mut self, stream: &StreamTarget) -> Option<V> {
        if let Some((last, value)) = &self.last
            && last.same_allocation(stream)
        {
            return Some(*value);
        }
        let value = *self.values.get(stream)?;
        self.last = Some((stream.clone(), value));
        Some(value)
    }

    /// The value of `stream`, without remembering it (for a caller that cannot borrow mutably).
    pub fn peek(&self, stream: &StreamTarget) -> Option<V> {
        self.values.get(stream).copied()
    }

    /// Sets the value of `stream`.
    pub fn insert(&mut self, stream: StreamTarget, value: V) {
        if self.last.as_ref().is_some_and(|(last, _)| *last == stream) {
            self.last = None;
        }
        self.values.insert(stream, value);
    }
}

impl StreamTarget {
    /// A target by stream name.
    pub fn name(name: &str) -> Self {
        Self::Name(Arc::from(name))
    }

    /// A target by stream ARN.
    pub fn arn(arn: &str) -> Self {
        Self::Arn(Arc::from(arn))
    }

    /// Whether both are the same allocation (so certainly equal): a check cheaper than comparing text.
    pub fn same_allocation(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Name(a), Self::Name(b)) | (Self::Arn(a), Self::Arn(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// The stream's name: the name itself, or the part of the ARN after `stream/`.
    pub fn stream_name(&self) -> &str {
        match self {
            Self::Name(name) => name,
            Self::Arn(arn) => arn.rsplit_once("stream/").map_or(arn, |(_, name)| name),
        }
    }
}

impl fmt::Display for StreamTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(name) => f.write_str(name),
            Self::Arn(arn) => f.write_str(arn),
        }
    }
}

/// A shard id as Kinesis writes it, e.g. `shardId-000000000003`. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId(Arc<str>);

impl ShardId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for ShardId {
    fn from(id: &str) -> Self {
        Self(Arc::from(id))
    }
}

impl From<String> for ShardId {
    fn from(id: String) -> Self {
        Self(Arc::from(id))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stream's index in the producer, in the order it was first seen. Internal: it indexes every stage's
/// per-stream state, and the metrics' dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct StreamIx(pub(crate) u32);

impl StreamIx {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A shard's slot within its stream, in the order shards were first listed; a shard keeps its slot after it
/// closes. Internal, as [`StreamIx`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct ShardSlot(pub(crate) u32);

impl ShardSlot {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_index_finds_streams_by_name_and_a_new_value_replaces_the_remembered_one() {
        let mut index = StreamIndex::default();
        let orders = StreamTarget::name("orders");
        index.insert(orders.clone(), 1);
        index.insert(StreamTarget::arn("arn:aws:kinesis:us-east-1:123456789012:stream/orders"), 2);
        // Another allocation of the same name is found by its text; the clone then by its pointer.
        assert_eq!(index.get(&StreamTarget::name("orders")), Some(1));
        assert_eq!(index.get(&orders), Some(1));
        assert_eq!(index.get(&StreamTarget::name("other")), None);
        // The remembered stream's value changes: the next lookup sees the new one.
        index.insert(StreamTarget::name("orders"), 3);
        assert_eq!((index.get(&orders), index.peek(&orders)), (Some(3), Some(3)));
    }
}
