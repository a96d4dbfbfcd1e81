//! Stream layout and routing.

use kpl_core::{PutRecordsRequest, Request, RequestErrorKind, StreamTarget};
use kpl_deagg::partition_key_hash;
use kpl_mock_backend::{MockError, MockKinesis};

use crate::*;

/// floor(2^128 / n) for the shard counts the layout test checks by value.
const WIDTHS: [(u32, u128); 4] = [
    (2, 170_141_183_460_469_231_731_687_303_715_884_105_728),
    (3, 113_427_455_640_312_821_154_458_202_477_256_070_485),
    (4, 85_070_591_730_234_615_865_843_651_857_942_052_864),
    (16, 21_267_647_932_558_653_966_460_912_964_485_513_216),
];

#[test]
fn shards_split_the_key_space_as_kinesis_does() {
    for count in [1u32, 2, 3, 4, 16] {
        let mut kinesis = kinesis(steady(), count);
        let listed = list_all(&mut kinesis, epoch(), true, 1000);
        assert_eq!(listed.len(), count as usize);
        let width = WIDTHS.iter().find(|(n, _)| *n == count).map(|&(_, width)| width);
        for (i, shard) in listed.iter().enumerate() {
            assert_eq!(shard.shard_id.as_str(), format!("shardId-{i:012}"));
            assert!(shard.is_open);
            let last = i + 1 == listed.len();
            match width {
                // One shard: the whole space.
                None => assert_eq!((shard.starting_hash_key, shard.ending_hash_key), (0, u128::MAX)),
                Some(width) => {
                    assert_eq!(shard.starting_hash_key, width * i as u128, "{count} shards, shard {i}");
                    let end = if last { u128::MAX } else { width * (i as u128 + 1) - 1 };
                    assert_eq!(shard.ending_hash_key, end, "{count} shards, shard {i}");
                }
            }
            if !last {
                assert_eq!(shard.ending_hash_key + 1, listed[i + 1].starting_hash_key);
            }
        }
        assert_eq!(listed[0].starting_hash_key, 0);
        assert_eq!(listed[listed.len() - 1].ending_hash_key, u128::MAX);
        // The accessors describe the same shards.
        let described: Vec<_> =
            kinesis.shards(STREAM).unwrap().iter().map(|shard| shard.description()).collect();
        assert_eq!(described, listed);
    }
}

#[test]
fn create_stream_refuses_no_shards_and_taken_names() {
    let mut kinesis = kinesis(steady(), 2);
    assert_eq!(kinesis.create_stream("empty", 0), Err(MockError::NoShards));
    assert_eq!(kinesis.create_stream(STREAM, 3), Err(MockError::StreamExists { stream: STREAM.to_owned() }));
    assert_eq!(kinesis.shards(STREAM).unwrap().len(), 2);
    assert!(kinesis.shards("empty").is_none());
}

#[test]
fn explicit_hash_keys_route_to_the_shard_holding_them_range_ends_included() {
    let mut kinesis = kinesis(steady(), 3);
    let ranges: Vec<_> = kinesis.shards(STREAM).unwrap().iter().map(|shard| shard.hash_range()).collect();
    let mut entries = Vec::new();
    let mut expected = Vec::new();
    for (i, range) in ranges.iter().enumerate() {
        for key in [*range.start(), range.start() + 1, range.end() - 1, *range.end()] {
            entries.push(entry("k", Some(key), "x"));
            expected.push((format!("shardId-{i:012}"), key));
        }
    }
    let results = put_ok(&mut kinesis, epoch(), entries);
    for (result, (shard, key)) in results.iter().zip(&expected) {
        assert_eq!(written(result).0, shard, "hash key {key}");
    }
    for (i, range) in ranges.iter().enumerate() {
        let log = kinesis.committed(STREAM, &format!("shardId-{i:012}")).unwrap();
        assert_eq!(log.len(), 4);
        assert!(log.iter().all(|record| range.contains(&record.hash_key)));
    }
}

#[test]
fn partition_keys_route_by_their_md5() {
    let mut kinesis = kinesis(steady(), 16);
    let keys: Vec<String> = (0..200).map(|i| format!("customer-{i}")).collect();
    let results = put_ok(&mut kinesis, epoch(), keys.iter().map(|key| entry(key, None, "x")).collect());
    let shards = kinesis.shards(STREAM).unwrap();
    for (key, result) in keys.iter().zip(&results) {
        let hash = partition_key_hash(key);
        let holder = shards.iter().find(|shard| shard.hash_range().contains(&hash)).unwrap();
        assert_eq!(written(result).0, holder.id().as_str(), "{key}");
        let record = holder.committed().iter().find(|record| &record.partition_key == key).unwrap();
        assert_eq!(record.hash_key, hash);
        assert_eq!(record.explicit_hash_key, None);
    }
    // 200 keys land on every one of 16 shards.
    assert!(shards.iter().all(|shard| !shard.committed().is_empty()));
}

#[test]
fn streams_are_found_by_arn_of_the_mocks_account_and_region() {
    let mut kinesis = kinesis(steady(), 1);
    let arn = kinesis.stream_arn(STREAM);
    assert_eq!(arn, "arn:aws:kinesis:us-east-1:123456789012:stream/orders");
    let by_arn = |arn: &str| {
        Request::PutRecords(PutRecordsRequest::new(StreamTarget::arn(arn), vec![entry("k", None, "x")]))
    };
    let results = put_results(call(&mut kinesis, epoch(), 1, by_arn(&arn)).1);
    assert_eq!(written(&results[0]).0, "shardId-000000000000");
    let other_account = "arn:aws:kinesis:us-east-1:999999999999:stream/orders";
    let error = put_error(call(&mut kinesis, epoch(), 2, by_arn(other_account)).1);
    assert_error(
        &error,
        RequestErrorKind::StreamNotFound,
        "ResourceNotFoundException",
        "Stream orders under account 123456789012 not found.",
    );
}

#[test]
fn unknown_streams_are_not_found() {
    let mut kinesis = MockKinesis::new(steady(), 1).unwrap();
    let error = put_err(&mut kinesis, epoch(), vec![entry("k", None, "x")]);
    assert_error(
        &error,
        RequestErrorKind::StreamNotFound,
        "ResourceNotFoundException",
        "Stream orders under account 123456789012 not found.",
    );
    let error = list_error(call(&mut kinesis, epoch(), 1, list(None, 100, true)).1);
    assert_error(&error, RequestErrorKind::StreamNotFound, "ResourceNotFoundException", "Stream orders …");
    assert_eq!(kinesis.stats().rejected_requests, 2);
    assert_eq!(
        kinesis.split_shard(epoch(), STREAM, "shardId-000000000000", 5),
        Err(MockError::StreamNotFound { stream: STREAM.to_owned() })
    );
}
