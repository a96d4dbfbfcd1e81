//! KPL aggregates through `PutRecords`, the committed log and the KCL's deaggregation.

use bytes::Bytes;
use kpl_deagg::{AggregateBuilder, DeaggError, Mode};

use crate::*;

#[test]
fn an_aggregate_comes_back_as_its_user_records() {
    let mut kinesis = kinesis(steady(), 4);
    let range = kinesis.shard(STREAM, "shardId-000000000002").unwrap().hash_range();
    let users: Vec<(String, Option<u128>, Bytes)> = (0..50u32)
        .map(|i| {
            let key = format!("user-{}", i % 7);
            let explicit = (i % 3 == 0).then(|| range.start() + u128::from(i) * 1_000_003);
            (key, explicit, Bytes::from(format!("payload {i} ").repeat(i as usize + 1)))
        })
        .collect();
    let mut builder = AggregateBuilder::new();
    // The KPL puts only records predicted to one shard in an aggregate: give the keyless ones an explicit
    // key too, the first's, so that the whole aggregate belongs to shard 2.
    let routed = |(key, explicit, data): &(String, Option<u128>, Bytes)| {
        (key.clone(), explicit.or(Some(*range.start())), data.clone())
    };
    let users: Vec<_> = users.iter().map(routed).collect();
    for (key, explicit, data) in &users {
        builder.add(key, *explicit, data);
    }
    let record = builder.finish().unwrap();
    assert_eq!(record.user_records, 50);

    let aggregate = entry(&record.partition_key, Some(record.explicit_hash_key), record.data.clone());
    let results =
        put_ok(&mut kinesis, epoch(), vec![aggregate, entry("plain", Some(*range.end()), "just me")]);
    let (shard, sequence) = written(&results[0]);
    assert_eq!(shard, "shardId-000000000002");

    let shard = kinesis.shard(STREAM, "shardId-000000000002").unwrap();
    let received: Vec<_> = shard.received_records().collect();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].explicit_hash_key, None, "GetRecords returns no explicit hash key");
    assert_eq!(received[0].partition_key, "a");
    assert_eq!(received[0].data, record.data);

    let batch = shard.deaggregate(Mode::Strict);
    assert!(batch.rejected.is_empty(), "{:?}", batch.rejected);
    assert_eq!(batch.records.len(), 51);
    for (i, (user, (key, explicit, data))) in batch.records.iter().zip(&users).enumerate() {
        assert_eq!(&*user.partition_key, key);
        assert_eq!(user.explicit_hash_key.as_deref(), explicit.map(|k| k.to_string()).as_deref());
        assert_eq!(&user.data, data);
        assert_eq!(&*user.sequence_number, sequence);
        assert_eq!(user.sub_sequence_number, i as u64);
        assert!(user.aggregated);
    }
    let plain = &batch.records[50];
    assert_eq!((&*plain.partition_key, &plain.data[..], plain.aggregated), ("plain", &b"just me"[..], false));
}

#[test]
fn an_aggregate_with_a_user_record_outside_its_shard_is_dropped_by_the_kcl_filter() {
    let mut kinesis = kinesis(steady(), 2);
    let mut builder = AggregateBuilder::new();
    builder.add("in", Some(1), &Bytes::from_static(b"first"));
    builder.add("out", Some(u128::MAX), &Bytes::from_static(b"second"));
    let record = builder.finish().unwrap();
    let results = put_ok(
        &mut kinesis,
        epoch(),
        vec![entry(&record.partition_key, Some(record.explicit_hash_key), record.data)],
    );
    assert_eq!(written(&results[0]).0, "shardId-000000000000");
    let shard = kinesis.shard(STREAM, "shardId-000000000000").unwrap();
    let batch = shard.deaggregate(Mode::KclCompatible);
    assert!(batch.records.is_empty());
    assert!(matches!(
        batch.rejected[..],
        [(_, DeaggError::OutOfShardRange { record: 1, hash_key: u128::MAX, .. })]
    ));
}
