//! Property tests: whatever valid user records go into the builder come back out of the deaggregator, in
//! order, and the builder's size predictions are exact.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on what they do not expect.

use bytes::Bytes;
use kpl_deagg::{
    AGGREGATE_PARTITION_KEY, AggregateBuilder, AggregateLimits, Deaggregator, Mode, ReceivedRecord,
    UserRecord, partition_key_hash,
};
use proptest::prelude::*;

const SEQUENCE_NUMBER: &str = "49590338271490256608559692538361571095921575989136588898";

#[derive(Debug, Clone)]
struct Input {
    partition_key: String,
    explicit_hash_key: Option<u128>,
    data: Bytes,
}

impl Input {
    fn hash_key(&self) -> u128 {
        self.explicit_hash_key.unwrap_or_else(|| partition_key_hash(&self.partition_key))
    }
}

/// A partition key: 1..=256 Unicode characters, often from a small pool so that keys repeat.
fn partition_key() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "\\PC{1,256}",
        1 => "[a-z]{1,40}",
        2 => prop::sample::select(vec!["k0", "k1", "ключ-🔑", "a"]).prop_map(str::to_owned),
    ]
}

/// An explicit hash key, often absent, often at the bounds or repeated.
fn explicit_hash_key() -> impl Strategy<Value = Option<u128>> {
    prop_oneof![
        3 => Just(None),
        1 => any::<u128>().prop_map(Some),
        1 => prop::sample::select(vec![0, 1, 42, u128::MAX]).prop_map(Some),
    ]
}

fn data() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        1 => Just(Bytes::new()),
        4 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from),
        1 => prop::collection::vec(any::<u8>(), 128..1500).prop_map(Bytes::from),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (partition_key(), explicit_hash_key(), data())
        .prop_map(|(partition_key, explicit_hash_key, data)| Input { partition_key, explicit_hash_key, data })
}

fn inputs() -> impl Strategy<Value = Vec<Input>> {
    prop_oneof![
        4 => prop::collection::vec(input(), 0..12),
        // Enough distinct keys for table indices of two varint bytes.
        1 => prop::collection::vec(input(), 130..260),
    ]
}

fn decode(mode: Mode, data: Bytes) -> Vec<UserRecord> {
    let received = ReceivedRecord {
        data,
        partition_key: AGGREGATE_PARTITION_KEY.to_owned(),
        explicit_hash_key: None,
        sequence_number: SEQUENCE_NUMBER.to_owned(),
    };
    match Deaggregator::new(mode).deaggregate(received) {
        Ok(records) => records.collect(),
        Err(error) => panic!("deaggregation failed: {error}"),
    }
}

fn assert_same(decoded: &[UserRecord], inputs: &[Input]) -> Result<(), TestCaseError> {
    prop_assert_eq!(decoded.len(), inputs.len());
    for (position, (out, input)) in decoded.iter().zip(inputs).enumerate() {
        prop_assert_eq!(&*out.partition_key, input.partition_key.as_str());
        let explicit_hash_key = input.explicit_hash_key.map(|k| k.to_string());
        prop_assert_eq!(out.explicit_hash_key.as_deref(), explicit_hash_key.as_deref());
        prop_assert_eq!(out.hash_key, input.hash_key());
        prop_assert_eq!(&out.data, &input.data);
        prop_assert_eq!(out.sub_sequence_number, position as u64);
        prop_assert!(out.aggregated);
        prop_assert_eq!(&*out.sequence_number, SEQUENCE_NUMBER);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn builder_then_deaggregator_gives_the_records_back(inputs in inputs()) {
        let mut builder = AggregateBuilder::new();
        prop_assert_eq!(builder.encoded_len(), 0);
        for input in &inputs {
            let predicted = builder.encoded_len_with(&input.partition_key, input.explicit_hash_key, input.data.len());
            builder.add(&input.partition_key, input.explicit_hash_key, &input.data);
            prop_assert_eq!(builder.encoded_len(), predicted);
        }
        prop_assert_eq!(builder.len(), inputs.len());

        let aggregated = builder.to_aggregated_bytes();
        prop_assert_eq!(aggregated.len(), builder.aggregated_len());
        if !inputs.is_empty() {
            assert_same(&decode(Mode::Strict, aggregated.clone()), &inputs)?;
        }

        let predicted = builder.encoded_len();
        let finished = builder.finish();
        prop_assert!(builder.is_empty());
        match (inputs.as_slice(), finished) {
            ([], finished) => prop_assert_eq!(finished, None),
            ([only], Some(record)) => {
                prop_assert_eq!(&record.data, &only.data);
                prop_assert_eq!(record.data.len(), predicted);
                prop_assert_eq!(record.partition_key, only.partition_key.clone());
                prop_assert_eq!(record.explicit_hash_key, only.hash_key());
                prop_assert_eq!(record.user_records, 1);
            }
            ([first, ..], Some(record)) => {
                prop_assert_eq!(&record.data, &aggregated);
                prop_assert_eq!(record.data.len(), predicted);
                prop_assert_eq!(record.partition_key.as_str(), AGGREGATE_PARTITION_KEY);
                prop_assert_eq!(record.explicit_hash_key, first.hash_key());
                prop_assert_eq!(record.user_records, inputs.len());
                assert_same(&decode(Mode::KclCompatible, record.data), &inputs)?;
            }
            (_, None) => prop_assert!(false, "finish returned nothing for {} records", inputs.len()),
        }
    }

    #[test]
    fn try_add_never_exceeds_the_limits_except_with_one_record(
        inputs in prop::collection::vec(input(), 1..80),
        max_size in 64usize..3000,
        max_count in 1usize..20,
    ) {
        let limits = AggregateLimits { max_size, max_count };
        let mut builder = AggregateBuilder::new();
        let mut finished = Vec::new();
        for input in &inputs {
            let expected = builder.encoded_len_with(&input.partition_key, input.explicit_hash_key, input.data.len());
            match builder.try_add(&input.partition_key, input.explicit_hash_key, &input.data, limits) {
                Ok(()) => prop_assert_eq!(builder.encoded_len(), expected),
                Err(full) => {
                    // It refused only because the record really did not fit.
                    prop_assert!(!builder.is_empty());
                    // The limit counts the Kinesis record: the aggregate plus its outer key.
                    prop_assert_eq!(full.size_after, expected + AGGREGATE_PARTITION_KEY.len());
                    prop_assert_eq!(full.count_after, builder.len() + 1);
                    prop_assert!(full.size_after > max_size || full.count_after > max_count);
                    finished.extend(builder.finish());
                    // An empty builder takes any record.
                    prop_assert_eq!(
                        builder.try_add(&input.partition_key, input.explicit_hash_key, &input.data, limits),
                        Ok(())
                    );
                }
            }
        }
        finished.extend(builder.finish());

        let mut decoded = Vec::new();
        for record in &finished {
            prop_assert!(record.user_records <= max_count);
            let record_size = record.partition_key.len() + record.data.len();
            prop_assert!(
                record_size <= max_size || record.user_records == 1,
                "{} bytes with the key for {} records over a limit of {}", record_size, record.user_records, max_size
            );
            if record.user_records == 1 {
                decoded.push((record.partition_key.clone(), record.explicit_hash_key, record.data.clone()));
            } else {
                for user in decode(Mode::Strict, record.data.clone()) {
                    decoded.push((user.partition_key.to_string(), user.hash_key, user.data));
                }
            }
        }
        // Nothing lost, nothing reordered.
        let expected: Vec<_> = inputs.iter().map(|i| (i.partition_key.clone(), i.hash_key(), i.data.clone())).collect();
        prop_assert_eq!(decoded, expected);
    }
}

#[test]
fn single_record_finishes_raw_but_can_be_wrapped() {
    let data = Bytes::from_static(b"lonely");
    let mut builder = AggregateBuilder::new();
    builder.add("only", Some(7), &data);
    let wrapped = builder.to_aggregated_bytes();
    assert_eq!(wrapped.len(), builder.aggregated_len());
    let inputs = [Input { partition_key: "only".into(), explicit_hash_key: Some(7), data: data.clone() }];
    assert_same(&decode(Mode::Strict, wrapped), &inputs).expect("wrapped single record");
    let record = builder.finish().expect("one record");
    assert_eq!(record.data, data);
    assert_eq!(record.partition_key, "only");
    assert_eq!(record.explicit_hash_key, 7);
}
