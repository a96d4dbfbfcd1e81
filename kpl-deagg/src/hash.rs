//! 128-bit hash keys: how Kinesis routes a record to a shard.
//!
//! A partition key is hashed with MD5 and the digest read as a big-endian unsigned 128-bit integer; an
//! explicit hash key is that integer written in decimal. Both the KPL (`user_record.cc`) and the KCL
//! (`new BigInteger(1, md5(pk))`) do exactly this.

use md5::{Digest, Md5};

/// The hash key of a partition key: MD5 of its UTF-8 bytes, read as a big-endian `u128`.
pub fn partition_key_hash(partition_key: &str) -> u128 {
    u128::from_be_bytes(Md5::digest(partition_key.as_bytes()).into())
}

/// Why a string is not a valid explicit hash key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashKeyError {
    /// The string is empty.
    #[error("explicit hash key is empty")]
    Empty,
    /// A character other than an ASCII digit, at this byte offset.
    #[error("explicit hash key has a non-digit at byte {offset}")]
    NotADigit {
        /// Byte offset of the first offending character.
        offset: usize,
    },
    /// More than one digit with a leading zero, which Kinesis rejects (`0|([1-9]\d{0,38})`).
    #[error("explicit hash key has a leading zero")]
    LeadingZero,
    /// The value is above 2^128 − 1.
    #[error("explicit hash key is above 2^128-1")]
    OutOfRange,
}

/// Parses an explicit hash key as Kinesis accepts it: decimal digits, no sign, no leading zero,
/// at most 2^128 − 1.
pub fn parse_explicit_hash_key(text: &str) -> Result<u128, HashKeyError> {
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return Err(HashKeyError::Empty);
    }
    if let Some(offset) = bytes.iter().position(|b| !b.is_ascii_digit()) {
        return Err(HashKeyError::NotADigit { offset });
    }
    if bytes.len() > 1 && bytes[0] == b'0' {
        return Err(HashKeyError::LeadingZero);
    }
    bytes.iter().try_fold(0u128, |acc, &digit| {
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .ok_or(HashKeyError::OutOfRange)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_key_hash_is_big_endian_md5() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(partition_key_hash("a"), 0x0cc1_75b9_c0f1_b6a8_31c3_99e2_6977_2661_u128);
    }

    #[test]
    fn explicit_hash_key_bounds() {
        assert_eq!(parse_explicit_hash_key("0"), Ok(0));
        assert_eq!(parse_explicit_hash_key("340282366920938463463374607431768211455"), Ok(u128::MAX));
        assert_eq!(
            parse_explicit_hash_key("340282366920938463463374607431768211456"),
            Err(HashKeyError::OutOfRange)
        );
        assert_eq!(
            parse_explicit_hash_key("9999999999999999999999999999999999999999999"),
            Err(HashKeyError::OutOfRange)
        );
        assert_eq!(parse_explicit_hash_key(""), Err(HashKeyError::Empty));
        assert_eq!(parse_explicit_hash_key("01"), Err(HashKeyError::LeadingZero));
        assert_eq!(parse_explicit_hash_key("-1"), Err(HashKeyError::NotADigit { offset: 0 }));
        assert_eq!(parse_explicit_hash_key("12 "), Err(HashKeyError::NotADigit { offset: 2 }));
        assert_eq!(parse_explicit_hash_key("１"), Err(HashKeyError::NotADigit { offset: 0 }));
    }
}
