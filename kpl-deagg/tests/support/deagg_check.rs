//! The deaggregation check shared by the fuzz target (`fuzz/fuzz_targets/deaggregate.rs`, which includes this
//! file with `#[path]`) and the stable test that replays the fuzz corpus (`tests/fuzz_corpus.rs`).
//!
//! [`check_deaggregate`] feeds arbitrary bytes to the deaggregator in both modes, with and without a hash
//! range, and panics if any answer is inconsistent: whatever the input, the decoder must not panic, must not
//! produce more data than it was given, and the modes and filters must agree with each other.
//!
//! [`check_input`] runs it on the bytes as given and on the bytes framed as an aggregate with a correct MD5:
//! random mutations almost never keep the checksum right, so without the second form a fuzzer would hardly
//! ever get past it into the protobuf decoder.

use bytes::Bytes;
use kpl_deagg::{AggregateBuilder, DeaggError, Deaggregator, MAGIC, Mode, ReceivedRecord, UserRecord};
use md5::{Digest, Md5};

const OUTER_PARTITION_KEY: &str = "outer-key";
const SEQUENCE_NUMBER: &str = "49590338271490256608559692538361571095921575989136588898";

fn received(data: &Bytes) -> ReceivedRecord {
    ReceivedRecord {
        data: data.clone(),
        partition_key: OUTER_PARTITION_KEY.to_owned(),
        explicit_hash_key: None,
        sequence_number: SEQUENCE_NUMBER.to_owned(),
    }
}

fn run(deaggregator: &Deaggregator, data: &Bytes) -> Result<Vec<UserRecord>, DeaggError> {
    deaggregator.deaggregate(received(data)).map(Iterator::collect)
}

/// The input delivered unchanged, as one plain record.
fn assert_plain(records: &[UserRecord], data: &Bytes) {
    assert_eq!(records.len(), 1, "a plain record yields exactly one user record");
    let record = &records[0];
    assert!(!record.aggregated);
    assert_eq!(record.data, *data);
    assert_eq!(&*record.partition_key, OUTER_PARTITION_KEY);
    assert_eq!(record.sub_sequence_number, 0);
    assert_eq!(&*record.sequence_number, SEQUENCE_NUMBER);
}

/// Whether an error is one that KCL-compatible mode turns into a plain record.
fn is_malformed(error: &DeaggError) -> bool {
    matches!(
        error,
        DeaggError::TooShort { .. }
            | DeaggError::ChecksumMismatch
            | DeaggError::Protobuf(_)
            | DeaggError::MissingRequiredField { .. }
    )
}

/// Checks the records of a successfully deaggregated aggregate and returns them.
fn assert_sane_aggregate(records: &[UserRecord], data: &Bytes) {
    // Each sub-record costs at least two bytes of protobuf (its tag and length), and the data are slices
    // of the input: nothing can be amplified.
    assert!(records.len() <= data.len() / 2, "{} records out of {} bytes", records.len(), data.len());
    let total: usize = records.iter().map(|r| r.data.len()).sum();
    assert!(total <= data.len(), "{total} bytes of data out of {} bytes", data.len());
    for (position, record) in records.iter().enumerate() {
        assert!(record.aggregated);
        assert_eq!(record.sub_sequence_number, position as u64);
        assert_eq!(&*record.sequence_number, SEQUENCE_NUMBER);
        let expected_hash = match &record.explicit_hash_key {
            Some(text) => kpl_deagg::parse_explicit_hash_key(text).ok(),
            None => Some(kpl_deagg::partition_key_hash(&record.partition_key)),
        };
        assert_eq!(expected_hash, Some(record.hash_key));
    }
}

/// Re-encodes decoded records with the builder and checks that decoding gives them back.
fn assert_reencodes(records: &[UserRecord]) {
    if records.is_empty() {
        // An aggregate of no records re-encodes to magic and digest only, which is too short to be one.
        return;
    }
    let mut builder = AggregateBuilder::new();
    for record in records {
        builder.add(
            &record.partition_key,
            record.explicit_hash_key.as_ref().map(|_| record.hash_key),
            &record.data,
        );
    }
    let predicted = builder.aggregated_len();
    let blob = builder.to_aggregated_bytes();
    assert_eq!(blob.len(), predicted);
    let again = run(&Deaggregator::new(Mode::Strict), &blob).unwrap_or_else(|e| panic!("re-encoded: {e}"));
    assert_eq!(again.len(), records.len());
    for (a, b) in again.iter().zip(records) {
        assert_eq!(a.partition_key, b.partition_key);
        assert_eq!(a.explicit_hash_key, b.explicit_hash_key);
        assert_eq!(a.hash_key, b.hash_key);
        assert_eq!(a.data, b.data);
        assert_eq!(a.sub_sequence_number, b.sub_sequence_number);
    }
}

/// Deaggregates `input` every way there is and panics on any inconsistency.
pub fn check_deaggregate(input: &[u8]) {
    let data = Bytes::copy_from_slice(input);
    let strict = run(&Deaggregator::new(Mode::Strict), &data);
    let kcl = run(&Deaggregator::new(Mode::KclCompatible), &data);

    let aggregated = match (&strict, &kcl) {
        (Ok(s), Ok(k)) => {
            assert_eq!(s, k, "modes agree on what they both accept");
            if s.first().is_some_and(|r| !r.aggregated) {
                assert_plain(s, &data);
                None
            } else {
                assert_sane_aggregate(s, &data);
                assert_reencodes(s);
                Some(s.clone())
            }
        }
        (Err(error), Ok(k)) => {
            assert!(is_malformed(error), "KCL mode accepted what strict mode rejected with {error}");
            assert_plain(k, &data);
            None
        }
        (Err(s), Err(k)) => {
            assert_eq!(s, k, "an error that is not about malformed bytes is the same in both modes");
            assert!(!is_malformed(s), "KCL mode must deliver a malformed record as plain, not fail with {s}");
            None
        }
        (Ok(_), Err(k)) => panic!("strict mode accepted what KCL mode rejected with {k}"),
    };

    // Hash-range filters: the full range changes nothing; a partial one keeps the whole aggregate or drops it
    // all, naming the first sub-record outside.
    let mut ranges = vec![0..=u128::MAX, 0..=u128::MAX / 2, u128::MAX / 2 + 1..=u128::MAX];
    if let Some(first) = aggregated.as_ref().and_then(|r| r.first()) {
        ranges.push(first.hash_key..=first.hash_key);
    }
    for range in ranges {
        for mode in [Mode::Strict, Mode::KclCompatible] {
            let filtered = run(&Deaggregator::new(mode).with_hash_range(range.clone()), &data);
            let unfiltered = if mode == Mode::Strict { &strict } else { &kcl };
            match &aggregated {
                Some(records) => match records.iter().position(|r| !range.contains(&r.hash_key)) {
                    None => assert_eq!(filtered.as_ref(), Ok(records)),
                    Some(outside) => assert_eq!(
                        filtered,
                        Err(DeaggError::OutOfShardRange {
                            record: outside,
                            hash_key: records[outside].hash_key,
                            start: *range.start(),
                            end: *range.end(),
                        })
                    ),
                },
                None => match unfiltered {
                    // Plain records are never filtered (the KCL passes them through).
                    Ok(_) => assert_eq!(&filtered, unfiltered),
                    // A broken aggregate stays broken, unless the filter stops at an earlier sub-record.
                    Err(_) => assert!(
                        &filtered == unfiltered
                            || matches!(filtered, Err(DeaggError::OutOfShardRange { .. })),
                        "{filtered:?} vs {unfiltered:?}"
                    ),
                },
            }
        }
    }
}

/// Runs [`check_deaggregate`] on `input`, and on `input` framed as an aggregate: magic, then `input` as the
/// protobuf, then its MD5.
pub fn check_input(input: &[u8]) {
    check_deaggregate(input);
    let mut framed = Vec::with_capacity(input.len() + 20);
    framed.extend_from_slice(&MAGIC);
    framed.extend_from_slice(input);
    framed.extend_from_slice(&Md5::digest(input));
    check_deaggregate(&framed);
}
