//! The proto2 messages of the aggregated format, read with prost. Only the decoder uses them; the encoder
//! writes the same bytes by hand (see `builder`), so that each checks the other.
//!
//! The schema's `required` fields are declared `optional` here: prost does not check that a required field
//! was present, while the KCL's Java parser rejects such a message (and then delivers the record unchanged).
//! The decoder checks presence itself with [`AggregatedRecord::missing_required_field`].

/// A key/value tag. Never written by the KPL; decoded and ignored.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Tag {
    #[prost(string, optional, tag = "1")]
    pub key: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// One user record inside an aggregate.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Record {
    #[prost(uint64, optional, tag = "1")]
    pub partition_key_index: Option<u64>,
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub data: Option<bytes::Bytes>,
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// The aggregate: key tables and records.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct AggregatedRecord {
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<Record>,
}

impl AggregatedRecord {
    /// The first required field that is absent, as `(sub-record position, field name)`.
    pub fn missing_required_field(&self) -> Option<(usize, &'static str)> {
        self.records.iter().enumerate().find_map(|(position, record)| {
            if record.partition_key_index.is_none() {
                Some((position, "partition_key_index"))
            } else if record.data.is_none() {
                Some((position, "data"))
            } else if record.tags.iter().any(|tag| tag.key.is_none()) {
                Some((position, "tags.key"))
            } else {
                None
            }
        })
    }
}
