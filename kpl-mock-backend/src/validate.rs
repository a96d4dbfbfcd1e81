//! `PutRecords` validation, in the service's two stages and with its error codes:
//!
//! 1. Constraints of the API model, checked before anything else (even before the stream is looked up):
//!    `ValidationException`, listing every violation as `N validation errors detected: ...; ...`, with
//!    1-based member positions. These are 1..=500 entries, a partition key of 1..=256 UTF-16 code units (as the service
//!    and kinesalite count), data of
//!    at most the record size limit, and an explicit hash key matching `0|([1-9]\d{0,38})`.
//! 2. Arguments, checked once the stream is known: `InvalidArgumentException`, first failure only. These
//!    are an explicit hash key above 2^128 − 1, a record whose data plus partition key exceed the record
//!    size limit, and a request whose data plus partition keys exceed the request size limit.

use kpl_core::{PutRecordsEntry, RequestError, RequestErrorKind};
use kpl_deagg::limits::{MAX_PARTITION_KEY_LENGTH, MAX_REQUEST_ENTRIES, utf16_length};
use kpl_deagg::{HashKeyError, parse_explicit_hash_key, partition_key_hash};

use crate::config::{MIB, MockConfig};

/// Most digits an explicit hash key may have by the API's pattern.
const MAX_EXPLICIT_HASH_KEY_DIGITS: usize = 39;

/// A whole-request client error (HTTP 400) with code `code`, classed as an adapter classes it.
pub(crate) fn client_error(code: &str, message: impl Into<String>) -> RequestError {
    RequestError::new(RequestErrorKind::of_service_error(Some(code), 400), Some(code), message)
}

/// Stage 1: the API model's constraints.
pub(crate) fn check_constraints(
    entries: &[PutRecordsEntry],
    max_record_size: usize,
) -> Result<(), RequestError> {
    let mut violations = Vec::new();
    if entries.is_empty() {
        violations.push(length_violation("records", None, "greater than or equal to", 1));
    }
    if entries.len() > MAX_REQUEST_ENTRIES {
        violations.push(length_violation("records", None, "less than or equal to", MAX_REQUEST_ENTRIES));
    }
    for (position, entry) in (1..).zip(entries) {
        let key = &entry.partition_key;
        let key_field = format!("records.{position}.member.partitionKey");
        if key.is_empty() {
            violations.push(length_violation(&key_field, Some(key), "greater than or equal to", 1));
        } else if utf16_length(key) > MAX_PARTITION_KEY_LENGTH {
            violations.push(length_violation(
                &key_field,
                Some(key),
                "less than or equal to",
                MAX_PARTITION_KEY_LENGTH,
            ));
        }
        if entry.data.len() > max_record_size {
            let field = format!("records.{position}.member.data");
            violations.push(length_violation(&field, None, "less than or equal to", max_record_size));
        }
        if let Some(text) = entry.explicit_hash_key.as_deref().filter(|text| !matches_pattern(text)) {
            violations.push(format!(
                "Value '{text}' at 'records.{position}.member.explicitHashKey' failed to satisfy constraint: \
                 Member must satisfy regular expression pattern: 0|([1-9]\\d{{0,38}})"
            ));
        }
    }
    match violations.len() {
        0 => Ok(()),
        1 => Err(client_error(
            "ValidationException",
            format!("1 validation error detected: {}", violations[0]),
        )),
        n => Err(client_error(
            "ValidationException",
            format!("{n} validation errors detected: {}", violations.join("; ")),
        )),
    }
}

fn length_violation(field: &str, value: Option<&str>, relation: &str, bound: usize) -> String {
    let value = value.map(|value| format!(" '{value}'")).unwrap_or_default();
    format!(
        "Value{value} at '{field}' failed to satisfy constraint: Member must have length {relation} {bound}"
    )
}

/// Whether an explicit hash key matches `0|([1-9]\d{0,38})` (its value may still be above 2^128 − 1).
fn matches_pattern(text: &str) -> bool {
    match parse_explicit_hash_key(text) {
        Ok(_) => true,
        Err(HashKeyError::OutOfRange) => text.len() <= MAX_EXPLICIT_HASH_KEY_DIGITS,
        Err(_) => false,
    }
}

/// Stage 2: the arguments. Returns the hash key of every entry.
pub(crate) fn check_arguments(
    entries: &[PutRecordsEntry],
    config: &MockConfig,
) -> Result<Vec<u128>, RequestError> {
    let invalid = |message: String| client_error("InvalidArgumentException", message);
    let mut total = 0usize;
    let mut hash_keys = Vec::with_capacity(entries.len());
    for (position, entry) in (1..).zip(entries) {
        let hash_key = match entry.explicit_hash_key.as_deref() {
            Some(text) => parse_explicit_hash_key(text).map_err(|_| {
                invalid(format!(
                    "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. \
                     Specified value was {text}"
                ))
            })?,
            None => partition_key_hash(&entry.partition_key),
        };
        let size = entry.partition_key.len() + entry.data.len();
        if size > config.max_record_size {
            // The service's wording for this case is not documented; this one says what is wrong.
            return Err(invalid(format!(
                "Record size of {size} bytes (data and partition key) at 'records.{position}' exceeds the \
                 maximum record size of {} bytes.",
                config.max_record_size
            )));
        }
        total += size;
        hash_keys.push(hash_key);
    }
    if total > config.max_request_size {
        // The service says "5 MB" for its 5 MiB.
        let limit = match (config.max_request_size / MIB, config.max_request_size) {
            (mib, bytes) if mib * MIB == bytes => format!("{mib} MB"),
            (_, bytes) => format!("{bytes} bytes"),
        };
        return Err(invalid(format!("Records size exceeds {limit} limit")));
    }
    Ok(hash_keys)
}
