//! `SplitShard` and `MergeShards`: ids, ranges, lineage, closed flags and routing afterwards.

use kpl_mock_backend::MockError;

use crate::*;

/// Writes one record with this explicit hash key; returns the shard that took it.
fn route(kinesis: &mut MockKinesis, key: u128) -> String {
    written(&put_ok(kinesis, epoch() + ms(5000), vec![entry("k", Some(key), "x")])[0]).0.to_owned()
}

#[test]
fn split_closes_the_parent_and_opens_two_children_with_the_next_ids() {
    let mut kinesis = kinesis(steady(), 2);
    let parent = kinesis.shard(STREAM, "shardId-000000000000").unwrap().hash_range();
    let (start, end) = (*parent.start(), *parent.end());
    let at = epoch() + ms(100);
    let middle = end / 2 + 1;
    let children = kinesis.split_shard(at, STREAM, "shardId-000000000000", middle).unwrap();
    assert_eq!(children.map(|id| id.to_string()), ["shardId-000000000002", "shardId-000000000003"]);

    let closed = kinesis.shard(STREAM, "shardId-000000000000").unwrap();
    assert!(!closed.is_open());
    assert_eq!(closed.closed_at(), Some(at));
    let lower = kinesis.shard(STREAM, "shardId-000000000002").unwrap();
    assert_eq!(lower.hash_range(), start..=middle - 1);
    assert_eq!(lower.parent_shard_id().map(|id| id.as_str()), Some("shardId-000000000000"));
    assert_eq!(lower.adjacent_parent_shard_id(), None);
    let upper = kinesis.shard(STREAM, "shardId-000000000003").unwrap();
    assert_eq!(upper.hash_range(), middle..=end);
    assert!(lower.is_open() && upper.is_open());
    assert!(kinesis.shard(STREAM, "shardId-000000000001").unwrap().is_open());

    assert_eq!(route(&mut kinesis, start), "shardId-000000000002");
    assert_eq!(route(&mut kinesis, middle - 1), "shardId-000000000002");
    assert_eq!(route(&mut kinesis, middle), "shardId-000000000003");
    assert_eq!(route(&mut kinesis, end), "shardId-000000000003");
    assert_eq!(route(&mut kinesis, end + 1), "shardId-000000000001");
    assert!(kinesis.committed(STREAM, "shardId-000000000000").unwrap().is_empty());
}

#[test]
fn split_keys_must_be_inside_the_shard_as_the_service_requires() {
    let mut kinesis = kinesis(steady(), 2);
    let range = kinesis.shard(STREAM, "shardId-000000000001").unwrap().hash_range();
    let (start, end) = (*range.start(), *range.end());
    for key in [start, start + 1, end, 0] {
        let error = kinesis.split_shard(epoch(), STREAM, "shardId-000000000001", key).unwrap_err();
        assert!(matches!(error, MockError::InvalidSplitKey { .. }), "{key}: {error}");
    }
    let error = kinesis.split_shard(epoch(), STREAM, "shardId-000000000001", end).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "NewStartingHashKey {end} used in SplitShard() on shard shardId-000000000001 in stream orders is not \
             both greater than one plus the shard's StartingHashKey {start} and less than the shard's \
             EndingHashKey {end}."
        )
    );
    // The narrowest legal splits.
    let [low, high] = kinesis.split_shard(epoch(), STREAM, "shardId-000000000001", start + 2).unwrap();
    assert_eq!(kinesis.shard(STREAM, low.as_str()).unwrap().hash_range(), start..=start + 1);
    let [_, top] = kinesis.split_shard(epoch(), STREAM, high.as_str(), end - 1).unwrap();
    assert_eq!(kinesis.shard(STREAM, top.as_str()).unwrap().hash_range(), end - 1..=end);
    assert_eq!(
        kinesis.split_shard(epoch(), STREAM, "shardId-000000000001", start + 5),
        Err(MockError::ShardClosed { stream: STREAM.to_owned(), shard: "shardId-000000000001".to_owned() })
    );
    assert_eq!(
        kinesis.split_shard(epoch(), STREAM, "shardId-000000000099", start + 5),
        Err(MockError::ShardNotFound { stream: STREAM.to_owned(), shard: "shardId-000000000099".to_owned() })
    );
}

#[test]
fn merge_closes_both_parents_and_opens_one_child_over_both_ranges() {
    let mut kinesis = kinesis(steady(), 3);
    let at = epoch() + ms(100);
    // Either order: here the adjacent shard is the lower one.
    let child = kinesis.merge_shards(at, STREAM, "shardId-000000000002", "shardId-000000000001").unwrap();
    assert_eq!(child.as_str(), "shardId-000000000003");
    let merged = kinesis.shard(STREAM, "shardId-000000000003").unwrap();
    let one = kinesis.shard(STREAM, "shardId-000000000001").unwrap().hash_range();
    assert_eq!(merged.hash_range(), *one.start()..=u128::MAX);
    assert_eq!(merged.parent_shard_id().map(|id| id.as_str()), Some("shardId-000000000002"));
    assert_eq!(merged.adjacent_parent_shard_id().map(|id| id.as_str()), Some("shardId-000000000001"));
    for parent in ["shardId-000000000001", "shardId-000000000002"] {
        assert_eq!(kinesis.shard(STREAM, parent).unwrap().closed_at(), Some(at));
    }
    assert_eq!(route(&mut kinesis, *one.start()), "shardId-000000000003");
    assert_eq!(route(&mut kinesis, u128::MAX), "shardId-000000000003");
    assert_eq!(route(&mut kinesis, *one.start() - 1), "shardId-000000000000");
    let open = list_all(&mut kinesis, epoch(), true, 100);
    assert_eq!(
        open.iter().map(|shard| shard.shard_id.as_str()).collect::<Vec<_>>(),
        ["shardId-000000000000", "shardId-000000000003"]
    );
}

#[test]
fn merge_refuses_shards_that_do_not_meet_or_are_closed() {
    let mut kinesis = kinesis(steady(), 3);
    let not_adjacent = MockError::NotAdjacent {
        stream: STREAM.to_owned(),
        shard: "shardId-000000000000".to_owned(),
        adjacent: "shardId-000000000002".to_owned(),
    };
    assert_eq!(
        kinesis.merge_shards(epoch(), STREAM, "shardId-000000000000", "shardId-000000000002"),
        Err(not_adjacent)
    );
    assert!(matches!(
        kinesis.merge_shards(epoch(), STREAM, "shardId-000000000000", "shardId-000000000000"),
        Err(MockError::NotAdjacent { .. })
    ));
    kinesis.merge_shards(epoch(), STREAM, "shardId-000000000000", "shardId-000000000001").unwrap();
    assert!(matches!(
        kinesis.merge_shards(epoch(), STREAM, "shardId-000000000001", "shardId-000000000002"),
        Err(MockError::ShardClosed { .. })
    ));
    // The child merges on with the remaining shard, and the map still covers everything.
    kinesis.merge_shards(epoch(), STREAM, "shardId-000000000003", "shardId-000000000002").unwrap();
    let open = list_all(&mut kinesis, epoch(), true, 100);
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].starting_hash_key, open[0].ending_hash_key), (0, u128::MAX));
    assert_eq!(route(&mut kinesis, 12345), "shardId-000000000004");
}
