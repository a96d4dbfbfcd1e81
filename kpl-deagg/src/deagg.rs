//! Decoding: Kinesis records as a consumer reads them, back into user records, with the KCL's semantics
//! (`AggregatorUtil.deaggregate`).

use std::ops::RangeInclusive;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use prost::Message;

use crate::hash::{HashKeyError, parse_explicit_hash_key, partition_key_hash};
use crate::proto::AggregatedRecord;
use crate::{DIGEST_LEN, MAGIC};

/// A Kinesis record as a consumer receives it (GetRecords, SubscribeToShard, a Lambda event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedRecord {
    /// The record's data blob.
    pub data: Bytes,
    /// The record's partition key.
    pub partition_key: String,
    /// The record's explicit hash key, where the source reports one (GetRecords does not).
    pub explicit_hash_key: Option<String>,
    /// The record's sequence number.
    pub sequence_number: String,
}

/// One user record recovered from a Kinesis record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user record's partition key.
    pub partition_key: Arc<str>,
    /// The user record's explicit hash key, if it had one.
    pub explicit_hash_key: Option<Arc<str>>,
    /// The hash key that routed it: the explicit hash key, else the MD5 of the partition key.
    pub hash_key: u128,
    /// The user data: a slice of the Kinesis record's data, not a copy.
    pub data: Bytes,
    /// Sequence number of the Kinesis record that carried it.
    pub sequence_number: Arc<str>,
    /// Position among the user records of its Kinesis record (0 for a plain record).
    pub sub_sequence_number: u64,
    /// Whether it came out of an aggregate.
    pub aggregated: bool,
}

/// How to treat a record that starts with the magic bytes but is not a valid aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// As the KCL does: deliver it unchanged as a plain record.
    #[default]
    KclCompatible,
    /// Return a typed error.
    Strict,
}

/// Why a Kinesis record could not be deaggregated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeaggError {
    /// The magic is followed by no more than a digest's worth of bytes (strict mode).
    #[error("aggregated record of {len} bytes is too short")]
    TooShort {
        /// Length of the whole record.
        len: usize,
    },
    /// The MD5 after the protobuf does not match it (strict mode).
    #[error("aggregated record checksum mismatch")]
    ChecksumMismatch,
    /// The protobuf does not parse (strict mode).
    #[error("aggregated record protobuf is invalid: {0}")]
    Protobuf(#[from] prost::DecodeError),
    /// The protobuf parses but a sub-record lacks a field the proto2 schema marks `required` (strict mode).
    /// The KCL's parser rejects such a message, so in KCL-compatible mode the record is delivered unchanged.
    #[error("sub-record {record} lacks the required field {field}")]
    MissingRequiredField {
        /// Position of the sub-record.
        record: usize,
        /// Name of the missing field.
        field: &'static str,
    },
    /// A sub-record points past the end of the partition key table.
    #[error("sub-record {record}: partition key index {index} is out of a table of {table_len}")]
    PartitionKeyIndexOutOfRange {
        /// Position of the sub-record.
        record: usize,
        /// The index it holds.
        index: u64,
        /// Length of the table.
        table_len: usize,
    },
    /// A sub-record points past the end of the explicit hash key table.
    #[error("sub-record {record}: explicit hash key index {index} is out of a table of {table_len}")]
    ExplicitHashKeyIndexOutOfRange {
        /// Position of the sub-record.
        record: usize,
        /// The index it holds.
        index: u64,
        /// Length of the table.
        table_len: usize,
    },
    /// An explicit hash key is not a valid decimal 128-bit value.
    #[error("sub-record {record}: invalid explicit hash key: {source}")]
    InvalidExplicitHashKey {
        /// Position of the sub-record (0 for a plain record).
        record: usize,
        /// What is wrong with it.
        source: HashKeyError,
    },
    /// A sub-record hashes outside the shard's range. As the KCL does, the whole aggregate is dropped: it was
    /// mis-routed, and the producer re-sent its records to the right shard.
    #[error("sub-record {record}: hash key {hash_key} is outside the shard's range {start}..={end}")]
    OutOfShardRange {
        /// Position of the first sub-record found outside.
        record: usize,
        /// Its hash key.
        hash_key: u128,
        /// Start of the shard's range.
        start: u128,
        /// End of the shard's range (inclusive).
        end: u128,
    },
}

/// Deaggregates Kinesis records into user records.
#[derive(Debug, Clone, Default)]
pub struct Deaggregator {
    mode: Mode,
    hash_range: Option<RangeInclusive<u128>>,
}

/// The user records of one Kinesis record, in order.
#[derive(Debug, Clone)]
pub struct UserRecords {
    inner: std::vec::IntoIter<UserRecord>,
}

impl Iterator for UserRecords {
    type Item = UserRecord;

    fn next(&mut self) -> Option<UserRecord> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for UserRecords {}

/// The outcome of deaggregating a batch with [`Deaggregator::deaggregate_all`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    /// Every user record recovered, in order.
    pub records: Vec<UserRecord>,
    /// Kinesis records that yielded nothing, by sequence number, with the reason.
    pub rejected: Vec<(String, DeaggError)>,
}

/// What the bytes of a record turned out to be.
enum Parsed {
    Plain,
    Aggregated(AggregatedRecord),
    Malformed(DeaggError),
}

fn parse(data: &Bytes) -> Parsed {
    if data.len() < MAGIC.len() || data[..MAGIC.len()] != MAGIC {
        return Parsed::Plain;
    }
    if data.len() - MAGIC.len() <= DIGEST_LEN {
        return Parsed::Malformed(DeaggError::TooShort { len: data.len() });
    }
    let protobuf_end = data.len() - DIGEST_LEN;
    let protobuf = data.slice(MAGIC.len()..protobuf_end);
    if Md5::digest(&protobuf)[..] != data[protobuf_end..] {
        return Parsed::Malformed(DeaggError::ChecksumMismatch);
    }
    match AggregatedRecord::decode(protobuf) {
        Ok(aggregate) => match aggregate.missing_required_field() {
            None => Parsed::Aggregated(aggregate),
            Some((record, field)) => Parsed::Malformed(DeaggError::MissingRequiredField { record, field }),
        },
        Err(error) => Parsed::Malformed(DeaggError::Protobuf(error)),
    }
}

impl Deaggregator {
    /// A deaggregator in the given mode, with no hash-range filter.
    pub fn new(mode: Mode) -> Self {
        Self { mode, hash_range: None }
    }

    /// Drops (and reports) aggregates holding a sub-record outside `range`: pass the shard's hash-key range,
    /// as the KCL does.
    pub fn with_hash_range(mut self, range: RangeInclusive<u128>) -> Self {
        self.hash_range = Some(range);
        self
    }

    /// The user records of one Kinesis record.
    pub fn deaggregate(&self, record: ReceivedRecord) -> Result<UserRecords, DeaggError> {
        let records = match parse(&record.data) {
            Parsed::Aggregated(aggregate) => self.unpack(aggregate, &record.sequence_number)?,
            Parsed::Malformed(error) if self.mode == Mode::Strict => return Err(error),
            Parsed::Plain | Parsed::Malformed(_) => vec![plain(record)?],
        };
        Ok(UserRecords { inner: records.into_iter() })
    }

    /// Deaggregates a batch, collecting every user record and every rejected Kinesis record.
    pub fn deaggregate_all(&self, records: impl IntoIterator<Item = ReceivedRecord>) -> Batch {
        let mut batch = Batch::default();
        for record in records {
            let sequence_number = record.sequence_number.clone();
            match self.deaggregate(record) {
                Ok(user_records) => batch.records.extend(user_records),
                Err(error) => batch.rejected.push((sequence_number, error)),
            }
        }
        batch
    }

    fn unpack(
        &self,
        aggregate: AggregatedRecord,
        sequence_number: &str,
    ) -> Result<Vec<UserRecord>, DeaggError> {
        let sequence_number: Arc<str> = Arc::from(sequence_number);
        let partition_keys: Vec<Arc<str>> =
            aggregate.partition_key_table.into_iter().map(Arc::from).collect();
        let explicit_hash_keys: Vec<Arc<str>> =
            aggregate.explicit_hash_key_table.into_iter().map(Arc::from).collect();
        let mut out = Vec::with_capacity(aggregate.records.len());
        for (position, record) in aggregate.records.into_iter().enumerate() {
            // `parse` has checked that the required fields are present.
            let partition_key_index = record.partition_key_index.unwrap_or_default();
            let partition_key = usize::try_from(partition_key_index)
                .ok()
                .and_then(|i| partition_keys.get(i))
                .ok_or(DeaggError::PartitionKeyIndexOutOfRange {
                    record: position,
                    index: partition_key_index,
                    table_len: partition_keys.len(),
                })?
                .clone();
            let explicit_hash_key = match record.explicit_hash_key_index {
                None => None,
                Some(index) => Some(
                    usize::try_from(index)
                        .ok()
                        .and_then(|i| explicit_hash_keys.get(i))
                        .ok_or(DeaggError::ExplicitHashKeyIndexOutOfRange {
                            record: position,
                            index,
                            table_len: explicit_hash_keys.len(),
                        })?
                        .clone(),
                ),
            };
            let hash_key = effective_hash_key(&partition_key, explicit_hash_key.as_deref(), position)?;
            if let Some(range) = &self.hash_range
                && !range.contains(&hash_key)
            {
                return Err(DeaggError::OutOfShardRange {
                    record: position,
                    hash_key,
                    start: *range.start(),
                    end: *range.end(),
                });
            }
            out.push(UserRecord {
                partition_key,
                explicit_hash_key,
                hash_key,
                data: record.data.unwrap_or_default(),
                sequence_number: sequence_number.clone(),
                sub_sequence_number: position as u64,
                aggregated: true,
            });
        }
        Ok(out)
    }
}

fn effective_hash_key(
    partition_key: &str,
    explicit_hash_key: Option<&str>,
    record: usize,
) -> Result<u128, DeaggError> {
    match explicit_hash_key {
        Some(text) => parse_explicit_hash_key(text)
            .map_err(|source| DeaggError::InvalidExplicitHashKey { record, source }),
        None => Ok(partition_key_hash(partition_key)),
    }
}

/// A record that is not an aggregate, delivered as it is.
fn plain(record: ReceivedRecord) -> Result<UserRecord, DeaggError> {
    let hash_key = effective_hash_key(&record.partition_key, record.explicit_hash_key.as_deref(), 0)?;
    Ok(UserRecord {
        partition_key: Arc::from(record.partition_key),
        explicit_hash_key: record.explicit_hash_key.map(Arc::from),
        hash_key,
        data: record.data,
        sequence_number: Arc::from(record.sequence_number),
        sub_sequence_number: 0,
        aggregated: false,
    })
}
