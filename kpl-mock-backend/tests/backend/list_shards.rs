//! `ListShards`: paging, tokens and the open-shard filter.

use kpl_core::{ListShardsRequest, Request, RequestErrorKind, StreamTarget};
use kpl_mock_backend::NEXT_TOKEN_LIFETIME;

use crate::*;

fn ids(shards: &[kpl_core::ShardDescription]) -> Vec<&str> {
    shards.iter().map(|shard| shard.shard_id.as_str()).collect()
}

#[test]
fn pages_follow_max_results_and_tokens() {
    let mut kinesis = kinesis(steady(), 5);
    let now = epoch();
    let first = list_page(call(&mut kinesis, now, 1, list(None, 2, true)).1);
    assert_eq!(ids(&first.shards), ["shardId-000000000000", "shardId-000000000001"]);
    // A follow-up is identified by its token alone: the stream it names and its filter are ignored.
    let follow_up = |token: String| {
        Request::ListShards(ListShardsRequest {
            stream: StreamTarget::name("not-a-stream"),
            next_token: Some(token),
            max_results: 2,
            only_open_shards: false,
        })
    };
    let second = list_page(call(&mut kinesis, now, 2, follow_up(first.next_token.clone().unwrap())).1);
    assert_eq!(ids(&second.shards), ["shardId-000000000002", "shardId-000000000003"]);
    let third = list_page(call(&mut kinesis, now, 3, follow_up(second.next_token.clone().unwrap())).1);
    assert_eq!(ids(&third.shards), ["shardId-000000000004"]);
    assert_eq!(third.next_token, None);
    // A token can be used again while it is valid.
    let again = list_page(call(&mut kinesis, now, 4, follow_up(first.next_token.unwrap())).1);
    assert_eq!(again.shards, second.shards);
}

#[test]
fn no_token_after_a_last_page_that_is_exactly_full() {
    let mut kinesis = kinesis(steady(), 4);
    let first = list_page(call(&mut kinesis, epoch(), 1, list(None, 2, true)).1);
    let second = list_page(call(&mut kinesis, epoch(), 2, list(first.next_token, 2, true)).1);
    assert_eq!(ids(&second.shards), ["shardId-000000000002", "shardId-000000000003"]);
    assert_eq!(second.next_token, None);
    let whole = list_page(call(&mut kinesis, epoch(), 3, list(None, 4, true)).1);
    assert_eq!(whole.shards.len(), 4);
    assert_eq!(whole.next_token, None);
}

#[test]
fn the_open_shard_filter_hides_closed_shards_and_the_token_keeps_it() {
    let mut kinesis = kinesis(steady(), 2);
    let now = epoch();
    kinesis.split_shard(now, STREAM, "shardId-000000000000", 1 << 100).unwrap();
    let everything = list_all(&mut kinesis, now, false, 1);
    assert_eq!(
        ids(&everything),
        ["shardId-000000000000", "shardId-000000000001", "shardId-000000000002", "shardId-000000000003"]
    );
    assert_eq!(everything.iter().map(|shard| shard.is_open).collect::<Vec<_>>(), [false, true, true, true]);
    // Follow-ups of `list_all` ask for no filter; the first page's filter carries over in the token.
    let open = list_all(&mut kinesis, now, true, 1);
    assert_eq!(ids(&open), ["shardId-000000000001", "shardId-000000000002", "shardId-000000000003"]);
    assert!(open.iter().all(|shard| shard.is_open));
}

#[test]
fn tokens_expire_after_300_seconds_and_unknown_ones_are_refused() {
    let mut kinesis = kinesis(steady(), 3);
    let now = epoch();
    let token = list_page(call(&mut kinesis, now, 1, list(None, 1, true)).1).next_token.unwrap();
    let at_expiry = now + NEXT_TOKEN_LIFETIME;
    let page = list_page(call(&mut kinesis, at_expiry, 2, list(Some(token.clone()), 1, true)).1);
    assert_eq!(ids(&page.shards), ["shardId-000000000001"]);
    let expired = list_error(call(&mut kinesis, at_expiry + ms(1), 3, list(Some(token), 1, true)).1);
    assert_error(
        &expired,
        RequestErrorKind::Fatal,
        "ExpiredNextTokenException",
        "The NextToken has expired; a NextToken is valid for 300 seconds.",
    );
    let unknown = list_error(call(&mut kinesis, now, 4, list(Some("bogus".into()), 1, true)).1);
    assert_error(
        &unknown,
        RequestErrorKind::InvalidRequest,
        "InvalidArgumentException",
        "Invalid NextToken: bogus.",
    );
    assert_eq!(kinesis.stats().rejected_requests, 2);
    assert_eq!(kinesis.stats().list_shards_requests, 4);
}

#[test]
fn max_results_must_be_within_1_to_10000() {
    let mut kinesis = kinesis(steady(), 1);
    let zero = list_error(call(&mut kinesis, epoch(), 1, list(None, 0, true)).1);
    assert_error(
        &zero,
        RequestErrorKind::InvalidRequest,
        "ValidationException",
        "1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have \
         value greater than or equal to 1",
    );
    let above = list_error(call(&mut kinesis, epoch(), 2, list(None, 10_001, true)).1);
    assert_error(
        &above,
        RequestErrorKind::InvalidRequest,
        "ValidationException",
        "1 validation error detected: Value '10001' at 'maxResults' failed to satisfy constraint: Member must \
         have value less than or equal to 10000",
    );
    assert_eq!(list_page(call(&mut kinesis, epoch(), 3, list(None, 10_000, true)).1).shards.len(), 1);
}
