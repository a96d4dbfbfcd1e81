//! The decoder's KCL semantics (`AggregatorUtil.deaggregate`): malformed aggregates pass through as plain
//! records in KCL-compatible mode and give typed errors in strict mode; the hash-range filter drops a whole
//! aggregate; broken key indices are typed errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on what they do not expect.

use bytes::Bytes;
use kpl_deagg::{AggregateBuilder, DeaggError, Deaggregator, MAGIC, Mode, ReceivedRecord, UserRecord};
use md5::{Digest, Md5};

const SEQUENCE_NUMBER: &str = "49590338271490256608559692538361571095921575989136588898";

fn received(data: impl Into<Bytes>) -> ReceivedRecord {
    ReceivedRecord {
        data: data.into(),
        partition_key: "outer".to_owned(),
        explicit_hash_key: None,
        sequence_number: SEQUENCE_NUMBER.to_owned(),
    }
}

fn deaggregate(deaggregator: &Deaggregator, data: &[u8]) -> Result<Vec<UserRecord>, DeaggError> {
    deaggregator.deaggregate(received(data.to_vec())).map(Iterator::collect)
}

fn strict(data: &[u8]) -> Result<Vec<UserRecord>, DeaggError> {
    deaggregate(&Deaggregator::new(Mode::Strict), data)
}

fn kcl(data: &[u8]) -> Result<Vec<UserRecord>, DeaggError> {
    deaggregate(&Deaggregator::new(Mode::KclCompatible), data)
}

/// Magic ‖ protobuf ‖ MD5(protobuf).
fn frame(protobuf: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(protobuf);
    out.extend_from_slice(&Md5::digest(protobuf));
    out
}

/// Three records with explicit hash keys 10, 20 and 30.
fn aggregate_10_20_30() -> Vec<u8> {
    let mut builder = AggregateBuilder::new();
    builder.add("x", Some(10), &Bytes::from_static(b"ten"));
    builder.add("y", Some(20), &Bytes::from_static(b"twenty"));
    builder.add("z", Some(30), &Bytes::from_static(b"thirty"));
    builder.to_aggregated_bytes().to_vec()
}

/// The record delivered unchanged: what the KCL does with anything that is not a valid aggregate.
fn assert_passed_through(records: Result<Vec<UserRecord>, DeaggError>, data: &[u8]) {
    let records = records.expect("KCL mode delivers a malformed aggregate as a plain record");
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(&record.data[..], data);
    assert!(!record.aggregated);
    assert_eq!(record.sub_sequence_number, 0);
    assert_eq!(&*record.partition_key, "outer");
    assert_eq!(record.hash_key, kpl_deagg::partition_key_hash("outer"));
    assert_eq!(&*record.sequence_number, SEQUENCE_NUMBER);
}

#[test]
fn valid_aggregate_decodes_in_both_modes() {
    let blob = aggregate_10_20_30();
    for records in [strict(&blob), kcl(&blob)] {
        let records = records.expect("valid");
        let keys: Vec<_> =
            records.iter().map(|r| (&*r.partition_key, r.hash_key, r.sub_sequence_number)).collect();
        assert_eq!(keys, [("x", 10, 0), ("y", 20, 1), ("z", 30, 2)]);
        assert!(records.iter().all(|r| r.aggregated));
    }
}

#[test]
fn records_without_the_magic_are_plain_in_both_modes() {
    for data in [&b""[..], b"abc", &MAGIC[..3], b"\xF3\x89\x9A\xC3 almost the magic", b"plain data"] {
        assert_passed_through(strict(data), data);
        assert_passed_through(kcl(data), data);
    }
}

#[test]
fn bad_md5() {
    let mut blob = aggregate_10_20_30();
    let last = blob.len() - 1;
    blob[last] ^= 0x80;
    assert_eq!(strict(&blob), Err(DeaggError::ChecksumMismatch));
    assert_passed_through(kcl(&blob), &blob);

    // A flipped protobuf byte also breaks the checksum.
    let mut blob = aggregate_10_20_30();
    blob[MAGIC.len() + 2] ^= 1;
    assert_eq!(strict(&blob), Err(DeaggError::ChecksumMismatch));
    assert_passed_through(kcl(&blob), &blob);
}

#[test]
fn truncated() {
    // No more than a digest after the magic: the KCL's `remaining <= DIGEST_SIZE` check.
    for len in MAGIC.len()..=MAGIC.len() + 16 {
        let blob = [&MAGIC[..], &[0u8; 16]].concat()[..len].to_vec();
        assert_eq!(strict(&blob), Err(DeaggError::TooShort { len }));
        assert_passed_through(kcl(&blob), &blob);
    }
    // Cut anywhere: the last 16 bytes are no longer the digest.
    let full = aggregate_10_20_30();
    for cut in MAGIC.len() + 17..full.len() {
        let blob = &full[..cut];
        assert_eq!(strict(blob), Err(DeaggError::ChecksumMismatch), "cut at {cut}");
        assert_passed_through(kcl(blob), blob);
    }
}

#[test]
fn bad_protobuf_with_a_good_md5() {
    let full = aggregate_10_20_30();
    let protobuf = &full[MAGIC.len()..full.len() - 16];
    let cases = [
        // Truncated inside a record.
        protobuf[..protobuf.len() - 2].to_vec(),
        // A varint that never ends.
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        // Wire type 7 does not exist.
        vec![0x0f, 0x00],
        // A partition key that is not UTF-8.
        b"\x0a\x02\xff\xfe\x1a\x05\x08\x00\x1a\x01x".to_vec(),
    ];
    for protobuf in cases {
        let blob = frame(&protobuf);
        assert!(
            matches!(strict(&blob), Err(DeaggError::Protobuf(_))),
            "{protobuf:02x?}: {:?}",
            strict(&blob)
        );
        assert_passed_through(kcl(&blob), &blob);
    }
}

#[test]
fn missing_required_fields_are_malformed_as_in_the_kcl() {
    // The KCL's Java parser rejects a message lacking a proto2 `required` field, then delivers the record
    // unchanged; prost alone would have decoded defaults.
    let cases = [
        // records [{data "x"}]: no partition_key_index.
        (&b"\x0a\x01k\x1a\x03\x1a\x01x"[..], 0, "partition_key_index"),
        // records [{0, "x"}, {0}]: the second has no data.
        (b"\x0a\x01k\x1a\x05\x08\x00\x1a\x01x\x1a\x02\x08\x00", 1, "data"),
        // records [{0, "x", tags [{value "v"}]}]: the tag has no key.
        (b"\x0a\x01k\x1a\x0a\x08\x00\x1a\x01x\x22\x03\x12\x01v", 0, "tags.key"),
    ];
    for (protobuf, record, field) in cases {
        let blob = frame(protobuf);
        assert_eq!(strict(&blob), Err(DeaggError::MissingRequiredField { record, field }));
        assert_passed_through(kcl(&blob), &blob);
    }
    // A complete tag is decoded and ignored.
    let blob = frame(b"\x0a\x01k\x1a\x0d\x08\x00\x1a\x01x\x22\x06\x0a\x01t\x12\x01v");
    let records = strict(&blob).expect("tags are allowed");
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0].data[..], b"x");
}

#[test]
fn hash_range_filter_drops_the_whole_aggregate() {
    let blob = aggregate_10_20_30();
    for mode in [Mode::Strict, Mode::KclCompatible] {
        // Inclusive at both ends.
        let inside = Deaggregator::new(mode).with_hash_range(10..=30);
        assert_eq!(deaggregate(&inside, &blob).map(|r| r.len()), Ok(3));

        let drops_last = Deaggregator::new(mode).with_hash_range(0..=29);
        assert_eq!(
            deaggregate(&drops_last, &blob),
            Err(DeaggError::OutOfShardRange { record: 2, hash_key: 30, start: 0, end: 29 })
        );
        let drops_first = Deaggregator::new(mode).with_hash_range(11..=u128::MAX);
        assert_eq!(
            deaggregate(&drops_first, &blob),
            Err(DeaggError::OutOfShardRange { record: 0, hash_key: 10, start: 11, end: u128::MAX })
        );

        // A plain record is never filtered, as in the KCL.
        let plain = deaggregate(&drops_first, b"plain").expect("plain");
        assert_eq!(plain.len(), 1);
        assert!(!plain[0].aggregated);
    }

    // In a batch, the dropped aggregate is reported and the others are delivered.
    let deaggregator = Deaggregator::new(Mode::KclCompatible).with_hash_range(0..=25);
    let mut fits = AggregateBuilder::new();
    fits.add("p", Some(1), &Bytes::from_static(b"a"));
    fits.add("q", Some(25), &Bytes::from_static(b"b"));
    let batch = deaggregator.deaggregate_all([
        ReceivedRecord { sequence_number: "1".into(), ..received(fits.to_aggregated_bytes()) },
        ReceivedRecord { sequence_number: "2".into(), ..received(aggregate_10_20_30()) },
        ReceivedRecord { sequence_number: "3".into(), ..received(&b"plain"[..]) },
    ]);
    let delivered: Vec<_> =
        batch.records.iter().map(|r| (&*r.sequence_number, r.sub_sequence_number)).collect();
    assert_eq!(delivered, [("1", 0), ("1", 1), ("3", 0)]);
    assert_eq!(
        batch.rejected,
        [("2".to_owned(), DeaggError::OutOfShardRange { record: 2, hash_key: 30, start: 0, end: 25 })]
    );
}

#[test]
fn key_index_out_of_range_is_a_typed_error() {
    // partition_key_table ["k"], records [{0, "x"}, {5, "y"}], with a correct MD5.
    let blob = frame(b"\x0a\x01k\x1a\x05\x08\x00\x1a\x01x\x1a\x05\x08\x05\x1a\x01y");
    let expected = DeaggError::PartitionKeyIndexOutOfRange { record: 1, index: 5, table_len: 1 };
    assert_eq!(strict(&blob), Err(expected.clone()));
    assert_eq!(kcl(&blob), Err(expected));

    // An index beyond usize on any platform.
    let blob = frame(b"\x0a\x01k\x1a\x0e\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01\x1a\x01x");
    let expected = DeaggError::PartitionKeyIndexOutOfRange { record: 0, index: u64::MAX, table_len: 1 };
    assert_eq!(strict(&blob), Err(expected));

    // partition_key_table ["k"], explicit_hash_key_table ["7"], records [{0, ehk 0, "x"}, {0, ehk 1, "y"}].
    let blob = frame(b"\x0a\x01k\x12\x017\x1a\x07\x08\x00\x10\x00\x1a\x01x\x1a\x07\x08\x00\x10\x01\x1a\x01y");
    let expected = DeaggError::ExplicitHashKeyIndexOutOfRange { record: 1, index: 1, table_len: 1 };
    assert_eq!(strict(&blob), Err(expected.clone()));
    assert_eq!(kcl(&blob), Err(expected));
}

#[test]
fn invalid_explicit_hash_key_in_the_table_is_a_typed_error() {
    for (text, source) in [
        (&b"01"[..], kpl_deagg::HashKeyError::LeadingZero),
        (b"340282366920938463463374607431768211456", kpl_deagg::HashKeyError::OutOfRange),
        (b"12a", kpl_deagg::HashKeyError::NotADigit { offset: 2 }),
    ] {
        let mut protobuf = b"\x0a\x01k\x12".to_vec();
        protobuf.push(text.len() as u8);
        protobuf.extend_from_slice(text);
        protobuf.extend_from_slice(b"\x1a\x07\x08\x00\x10\x00\x1a\x01x");
        let blob = frame(&protobuf);
        let expected = DeaggError::InvalidExplicitHashKey { record: 0, source };
        assert_eq!(strict(&blob), Err(expected.clone()));
        assert_eq!(kcl(&blob), Err(expected));
    }
}

#[test]
fn an_aggregate_of_no_records_yields_nothing() {
    // partition_key_table ["k"] and no records: valid, and empty (the KCL emits nothing either).
    let blob = frame(b"\x0a\x01k");
    assert_eq!(strict(&blob), Ok(vec![]));
    assert_eq!(kcl(&blob), Ok(vec![]));
}
