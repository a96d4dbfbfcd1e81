//! Record validation and admission: the rules `put_record` applies before it takes a record, kept apart
//! from the state machine so that an adapter refusing records on another task applies the same ones.

use kpl_deagg::limits::{MAX_PARTITION_KEY_LENGTH, is_valid_stream_arn, is_valid_stream_name, utf16_length};
use kpl_deagg::parse_explicit_hash_key;

use super::ProducerConfig;
use crate::ids::StreamTarget;
use crate::record::{PutError, UserRecord};

impl ProducerConfig {
    /// Checks a record as [`Producer::put_record`](crate::Producer::put_record) does (stream, partition key, explicit hash key, size),
    /// without a producer: an adapter whose producer lives on another task refuses bad records at once.
    pub fn check_record(&self, record: &UserRecord) -> Result<(), PutError> {
        validate_record(self, record).map(drop)
    }

    /// The backpressure rule of [`Producer::put_record`](crate::Producer::put_record): whether a record of `size` bytes
    /// ([`UserRecord::size`]) is accepted while `outstanding_records` records of `outstanding_bytes` bytes
    /// are outstanding. A record larger than the byte limit is still taken when nothing else is
    /// outstanding, or it could never be.
    pub fn admits(&self, outstanding_records: usize, outstanding_bytes: usize, size: usize) -> bool {
        (outstanding_records as u64) < self.max_outstanding_records()
            && (outstanding_records == 0
                || (outstanding_bytes.saturating_add(size)) as u64 <= self.max_outstanding_bytes())
    }
}

/// Checks a record; returns its explicit hash key, parsed.
pub(crate) fn validate_record(
    config: &ProducerConfig,
    record: &UserRecord,
) -> Result<Option<u128>, PutError> {
    validate_stream(&record.stream)?;
    validate_content(config, record)
}

/// Checks a record's partition key, explicit hash key and size (its stream is checked apart: a stream the
/// producer already knows was checked when it was first seen); returns its explicit hash key, parsed.
pub(crate) fn validate_content(
    config: &ProducerConfig,
    record: &UserRecord,
) -> Result<Option<u128>, PutError> {
    let key = &record.partition_key;
    if key.is_empty() {
        return Err(PutError::EmptyPartitionKey);
    }
    // A key of at most 256 bytes has at most 256 UTF-16 units: count only when it could matter.
    if key.len() > MAX_PARTITION_KEY_LENGTH {
        let length = utf16_length(key);
        if length > MAX_PARTITION_KEY_LENGTH {
            return Err(PutError::PartitionKeyTooLong { length });
        }
    }
    let explicit_hash_key = record.explicit_hash_key.as_deref().map(parse_explicit_hash_key).transpose()?;
    let size = record.size();
    let max = config.max_record_size() as usize;
    if size > max {
        return Err(PutError::RecordTooLarge { size, max });
    }
    Ok(explicit_hash_key)
}

/// Checks a stream's name or ARN.
pub(crate) fn validate_stream(stream: &StreamTarget) -> Result<(), PutError> {
    let valid = match stream {
        StreamTarget::Name(name) => is_valid_stream_name(name),
        StreamTarget::Arn(arn) => is_valid_stream_arn(arn),
    };
    if !valid {
        return Err(PutError::InvalidStream(stream.to_string()));
    }
    Ok(())
}
