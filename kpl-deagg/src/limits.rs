//! The Kinesis Data Streams API's limits on what a producer sends, each with the unit the service counts it
//! in. The producer's validation, its aggregator and collector, and the simulated Kinesis all use these, so
//! they cannot disagree at a boundary.
//!
//! Source: the `PutRecords` and `ListShards` API references (`PutRecordsRequestEntry`, `StreamName`,
//! `StreamARN`). Lengths of text are counted as the service counts them: in UTF-16 code units (Java's
//! `String.length()`), as the Java KPL's own check and the Kinesis emulators (kinesalite) do, so that a key of
//! 129 emoji (258 units) is refused by the producer rather than by the service.

/// Most UTF-16 code units in a partition key (`PutRecordsRequestEntry.PartitionKey`: length 1..=256).
pub const MAX_PARTITION_KEY_LENGTH: usize = 256;

/// Most UTF-16 code units in a stream name (`StreamName`: length 1..=128, pattern `[a-zA-Z0-9_.-]+`).
pub const MAX_STREAM_NAME_LENGTH: usize = 128;

/// Most UTF-16 code units in a stream ARN (`StreamARN`: length 1..=2048).
pub const MAX_STREAM_ARN_LENGTH: usize = 2048;

/// Largest Kinesis record a stream accepts by default, counted as data plus partition key: 1 MiB. Whether the
/// service counts the key is not settled by its documentation; counting it costs at most a few bytes per
/// record and is safe either way.
pub const MAX_RECORD_SIZE: usize = 1024 * 1024;

/// Largest `PutRecords` request, data plus partition keys of every entry: 5 MiB.
pub const MAX_REQUEST_SIZE: usize = 5 * 1024 * 1024;

/// Most entries in one `PutRecords` request.
pub const MAX_REQUEST_ENTRIES: usize = 500;

/// Length of `text` in UTF-16 code units, the unit of every length limit in the Kinesis API.
pub fn utf16_length(text: &str) -> usize {
    // Every code unit takes at least one UTF-8 byte: a text of at most `n` bytes has at most `n` units, so
    // the count is only needed when it could matter to a caller comparing with a limit.
    text.chars().map(char::len_utf16).sum()
}

/// Whether `name` is a valid stream name: 1..=128 characters of `[a-zA-Z0-9_.-]`.
pub fn is_valid_stream_name(name: &str) -> bool {
    (1..=MAX_STREAM_NAME_LENGTH).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `arn` is a valid stream ARN: at most 2048 UTF-16 code units, of the shape
/// `arn:<partition aws…>:kinesis:<region>:<12-digit account>:stream/<valid stream name>` (the API's pattern
/// `arn:aws.*:kinesis:.*:\d{12}:stream/\S+`, with the name held to the stream-name rule).
pub fn is_valid_stream_arn(arn: &str) -> bool {
    if arn.is_empty() || utf16_length(arn) > MAX_STREAM_ARN_LENGTH {
        return false;
    }
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("kinesis"), Some(_region), Some(account), Some(resource)) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    partition.starts_with("aws")
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.strip_prefix("stream/").is_some_and(is_valid_stream_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_count_utf16_code_units() {
        assert_eq!(utf16_length("abc"), 3);
        assert_eq!(utf16_length("é"), 1); // two UTF-8 bytes, one unit
        assert_eq!(utf16_length("\u{1F511}"), 2); // four UTF-8 bytes, a surrogate pair
        assert_eq!(utf16_length(&"\u{1F511}".repeat(129)), 258);
    }

    #[test]
    fn stream_names_and_arns() {
        assert!(is_valid_stream_name("orders_v2.eu-1"));
        assert!(is_valid_stream_name(&"s".repeat(128)));
        assert!(!is_valid_stream_name(&"s".repeat(129)));
        assert!(!is_valid_stream_name(""));
        assert!(!is_valid_stream_name("my stream"));
        assert!(!is_valid_stream_name("strëam"));
        assert!(is_valid_stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/orders"));
        assert!(is_valid_stream_arn("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/orders"));
        assert!(!is_valid_stream_arn("arn:aws:kinesis:us-east-1:12345:stream/orders"));
        assert!(!is_valid_stream_arn("arn:aws:sqs:us-east-1:123456789012:stream/orders"));
        assert!(!is_valid_stream_arn("arn:aws:kinesis:us-east-1:123456789012:stream/"));
        assert!(!is_valid_stream_arn("orders"));
    }
}
