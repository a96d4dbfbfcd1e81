//! The producer against a real Kinesis-compatible server: kinesalite, installed and started by the test
//! setup (see `kpl_tests::kinesalite`), with a fault-injecting proxy in front of it where needed. Each test
//! starts its own server and creates its own stream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use kpl_deagg::DeaggError;
use kpl_tests::kinesalite::{Kinesalite, ShardContents, client, create_stream, read_stream, wait_active};
use kpl_tokio::{
    DeliveryError, ProducerConfig, PutError, RecordFuture, RecordReceipt, ShardMapWait, ShutdownError,
    StreamTarget, UserRecord,
};
use support::producer;
use support::proxy::{FaultProxy, Plan};

/// The data of record `index`: its index first, then filler up to `size` bytes.
fn data(index: u32, size: usize) -> Vec<u8> {
    let mut data = index.to_be_bytes().to_vec();
    data.resize(size.max(4), b'x');
    data
}

fn index_of(data: &[u8]) -> u32 {
    u32::from_be_bytes(data[..4].try_into().unwrap())
}

/// Mixed sizes: mostly 20 to 220 bytes, one in a hundred 2 KB, one in a thousand 20 KB.
fn size_of(index: u32) -> usize {
    match index {
        i if i % 1000 == 0 => 20_000,
        i if i % 100 == 0 => 2_000,
        i => 20 + (i as usize * 7919) % 200,
    }
}

/// 36-byte partition keys, `keys` distinct ones.
fn key_of(index: u32, keys: u32) -> String {
    format!("partition-key-{:022}", index % keys)
}

/// Every user record a KCL consumer reads, by record index: (shard, sequence number) of each copy. Checks
/// that no aggregate was dropped by the KCL's hash-range filter, unless `wrong_shard_allowed`.
fn copies(shards: &[ShardContents], wrong_shard_allowed: bool) -> BTreeMap<u32, Vec<(String, String)>> {
    let mut copies: BTreeMap<u32, Vec<(String, String)>> = BTreeMap::new();
    for shard in shards {
        for (sequence_number, error) in &shard.users.rejected {
            assert!(
                wrong_shard_allowed && matches!(error, DeaggError::OutOfShardRange { .. }),
                "{} dropped {sequence_number}: {error:?}",
                shard.shard_id
            );
        }
        for user in &shard.users.records {
            assert!(
                shard.range.contains(&user.hash_key),
                "{} holds a record outside its range",
                shard.shard_id
            );
            copies
                .entry(index_of(&user.data))
                .or_default()
                .push((shard.shard_id.clone(), user.sequence_number.to_string()));
        }
    }
    copies
}

/// Checks that the records of each partition key are in put order: within each Kinesis record always, and
/// along the whole shard for the keys in `ordered_keys`.
fn check_order(shards: &[ShardContents], ordered_keys: &BTreeSet<String>) -> usize {
    let mut checked = 0;
    for shard in shards {
        let mut last: BTreeMap<&str, (&str, u32)> = BTreeMap::new();
        for user in &shard.users.records {
            let index = index_of(&user.data);
            let key = &*user.partition_key;
            if let Some((sequence_number, previous)) = last.insert(key, (&user.sequence_number, index))
                && (sequence_number == &*user.sequence_number || ordered_keys.contains(key))
            {
                assert!(previous < index, "key {key}: record {index} after {previous} on {}", shard.shard_id);
                checked += 1;
            }
        }
    }
    checked
}

async fn await_all(futures: Vec<RecordFuture>) -> Vec<RecordReceipt> {
    let mut receipts = Vec::with_capacity(futures.len());
    for future in futures {
        receipts.push(future.await.unwrap());
    }
    receipts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_records_arrive_once_on_their_shards_in_order() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "bulk", 4).await;
    // Hold the first records until the shard map is known, so that they are aggregated too.
    let config = ProducerConfig::builder().shard_map_wait(ShardMapWait::Hold).build().unwrap();
    let producer = producer(server.endpoint(), config);
    let stream = StreamTarget::name("bulk");
    const RECORDS: u32 = 100_000;
    const KEYS: u32 = 1000;
    let mut futures = Vec::with_capacity(RECORDS as usize);
    for index in 0..RECORDS {
        let record = UserRecord::new(stream.clone(), key_of(index, KEYS), data(index, size_of(index)));
        futures.push(producer.put(record).await.unwrap());
    }
    let receipts = await_all(futures).await;
    let stats = producer.stats().await.unwrap();
    assert!(stats.kinesis_records_put * 20 < stats.user_records_put, "records were aggregated: {stats:?}");
    producer.shutdown(Duration::from_secs(30)).await.unwrap();

    let shards = read_stream(&client, "bulk").await;
    assert_eq!(shards.len(), 4);
    let copies = copies(&shards, false);
    assert_eq!(copies.len(), RECORDS as usize, "every record was read back");
    for (index, receipt) in receipts.iter().enumerate() {
        let found = &copies[&(index as u32)];
        // More than once only after an ambiguous attempt (a request timed out on a loaded machine), and then
        // flagged: the KCL contract.
        assert!(
            found.len() == 1 || receipt.maybe_duplicated,
            "record {index} read back {} times, not flagged: {found:?}",
            found.len()
        );
        assert!(
            found.iter().any(|(shard, sequence_number)| receipt.shard_id.as_str() == shard
                && &*receipt.sequence_number == sequence_number),
            "the receipt names the shard and sequence number holding record {index}: {receipt:?} {found:?}"
        );
    }
    // Requests run concurrently (up to max_connections), so Kinesis may write two requests to one shard in
    // either order, as with the KPL: put order per key holds within each Kinesis record.
    let checked = check_order(&shards, &BTreeSet::new());
    assert!(checked > 1000, "pairs of one key in one Kinesis record: {checked}");
}

/// With one request in flight at a time, the records of a partition key that were never retried are in put
/// order along the whole shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_connection_records_stay_in_put_order_per_key() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "ordered", 2).await;
    let config =
        ProducerConfig::builder().max_connections(1).shard_map_wait(ShardMapWait::Hold).build().unwrap();
    let producer = producer(server.endpoint(), config);
    let stream = StreamTarget::name("ordered");
    const RECORDS: u32 = 20_000;
    const KEYS: u32 = 50;
    let mut futures = Vec::new();
    for index in 0..RECORDS {
        futures.push(
            producer.put_data(&stream, key_of(index, KEYS), data(index, size_of(index))).await.unwrap(),
        );
    }
    let receipts = await_all(futures).await;
    producer.shutdown(Duration::from_secs(30)).await.unwrap();
    let retried: BTreeSet<String> = receipts
        .iter()
        .enumerate()
        .filter(|(_, receipt)| receipt.attempts.len() > 1)
        .map(|(index, _)| key_of(index as u32, KEYS))
        .collect();
    let ordered: BTreeSet<String> =
        (0..KEYS).map(|k| key_of(k, KEYS)).filter(|k| !retried.contains(k)).collect();
    assert!(ordered.len() > KEYS as usize / 2, "most keys were never retried: {}", retried.len());
    let shards = read_stream(&client, "ordered").await;
    assert_eq!(copies(&shards, false).len(), RECORDS as usize);
    let checked = check_order(&shards, &ordered);
    assert!(checked > RECORDS as usize / 2, "pairs checked: {checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_split_while_producing_loses_nothing() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "resharded", 2).await;
    let producer = producer(server.endpoint(), ProducerConfig::default());
    let stream = StreamTarget::name("resharded");
    let mut futures = Vec::new();
    let mut index = 0u32;
    for round in 0..20 {
        if round == 8 {
            let shards = read_stream(&client, "resharded").await;
            let first = &shards[0];
            let middle = first.range.start() + (first.range.end() - first.range.start()) / 2;
            client
                .split_shard()
                .stream_name("resharded")
                .shard_to_split(&first.shard_id)
                .new_starting_hash_key(middle.to_string())
                .send()
                .await
                .unwrap();
            wait_active(&client, "resharded").await;
        }
        for _ in 0..1000 {
            futures.push(producer.put_data(&stream, key_of(index, 5000), data(index, 100)).await.unwrap());
            index += 1;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receipts = await_all(futures).await;
    producer.shutdown(Duration::from_secs(30)).await.unwrap();

    let shards = read_stream(&client, "resharded").await;
    assert_eq!(shards.len(), 4, "the parent (closed) and its two children, plus the other shard");
    assert_eq!(shards.iter().filter(|s| !s.is_open).count(), 1);
    // Aggregates written to a child that does not hold all their records (routed with the parent's map)
    // are dropped by the KCL filter; the producer retried their records.
    let copies = copies(&shards, true);
    assert_eq!(copies.len(), index as usize, "nothing lost");
    for (i, receipt) in receipts.iter().enumerate() {
        let found = &copies[&(i as u32)];
        // A record retried after an ambiguous attempt may be in the stream twice; the KCL filter above
        // already dropped copies written to the wrong shard.
        assert!(found.len() == 1 || receipt.maybe_duplicated, "record {i}: {found:?}");
        assert!(found.iter().any(|(shard, _)| shard == receipt.shard_id.as_str()));
    }
    let children: usize = shards
        .iter()
        .filter(|s| s.shard_id.as_str() >= "shardId-000000000002")
        .map(|s| s.users.records.len())
        .sum();
    assert!(children > 0, "records were written to the new shards after the split");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_entries_and_server_errors_are_retried_and_nothing_is_lost() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "faulty", 2).await;
    let plan = Plan { throttle_every_entry: 3, fail_every_request: 4, ..Plan::default() };
    let proxy = FaultProxy::start(server.endpoint(), plan).await;
    // Unaggregated, so that entries are user records and some of every request get throttled.
    let config = ProducerConfig::builder()
        .aggregation_enabled(false)
        .retry_initial_backoff(Duration::from_millis(20))
        .retry_max_backoff(Duration::from_millis(200))
        .build()
        .unwrap();
    let producer = producer(proxy.endpoint(), config);
    let stream = StreamTarget::name("faulty");
    let mut futures = Vec::new();
    for index in 0..3000 {
        futures.push(producer.put_data(&stream, key_of(index, 300), data(index, 50)).await.unwrap());
    }
    let receipts = await_all(futures).await;
    let stats = producer.stats().await.unwrap();
    producer.shutdown(Duration::from_secs(30)).await.unwrap();

    let injected = &proxy.injected;
    assert!(injected.throttled_entries.load(Ordering::SeqCst) > 0);
    assert!(injected.internal_failures.load(Ordering::SeqCst) > 0);
    assert!(injected.service_unavailable.load(Ordering::SeqCst) > 0);
    let codes: BTreeSet<String> = receipts
        .iter()
        .flat_map(|receipt| receipt.attempts.iter().filter_map(|attempt| attempt.error.as_ref()))
        .map(|error| error.code.clone())
        .collect();
    let expected = ["InternalFailure", "ProvisionedThroughputExceededException", "ServiceUnavailable"];
    assert_eq!(codes, expected.iter().map(|c| c.to_string()).collect(), "each fault shows in the attempts");
    assert!(stats.throttled_entries > 0 && stats.request_errors > 0, "{stats:?}");
    assert!(receipts.iter().all(|receipt| receipt.attempts.last().is_some_and(|a| a.error.is_none())));
    let copies = copies(&read_stream(&client, "faulty").await, false);
    assert_eq!(copies.len(), 3000, "nothing lost");
    assert!(copies.values().all(|found| found.len() == 1), "nothing duplicated: every fault was unambiguous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_record_is_refused_on_the_client_and_the_others_are_written() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "sizes", 1).await;
    let producer = producer(server.endpoint(), ProducerConfig::default());
    let stream = StreamTarget::name("sizes");
    let key = key_of(0, 1);
    let largest = 1024 * 1024 - key.len();
    let before = producer.put_data(&stream, key.clone(), data(0, 100)).await.unwrap();
    let refused = producer.put_data(&stream, key.clone(), data(1, largest + 1)).await.unwrap_err();
    assert_eq!(refused, PutError::RecordTooLarge { size: 1024 * 1024 + 1, max: 1024 * 1024 });
    let at_limit = producer.put_data(&stream, key.clone(), data(2, largest)).await.unwrap();
    let after = producer.put_data(&stream, key.clone(), data(3, 100)).await.unwrap();
    await_all(vec![before, at_limit, after]).await;
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let copies = copies(&read_stream(&client, "sizes").await, false);
    assert_eq!(copies.keys().copied().collect::<Vec<_>>(), vec![0, 2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_records_in_flight() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "closing", 2).await;
    let producer = producer(server.endpoint(), ProducerConfig::default());
    let stream = StreamTarget::name("closing");
    let mut futures = Vec::new();
    for index in 0..5000 {
        futures.push(producer.put_data(&stream, key_of(index, 100), data(index, 200)).await.unwrap());
    }
    assert!(producer.outstanding_records() > 0, "records are still outstanding when shutdown starts");
    producer.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(producer.outstanding_records(), 0);
    await_all(futures).await;
    assert_eq!(copies(&read_stream(&client, "closing").await, false).len(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_timeout_fails_the_records_still_in_flight() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "slow", 1).await;
    let plan = Plan { delay: Duration::from_secs(3), ..Plan::default() };
    let proxy = FaultProxy::start(server.endpoint(), plan).await;
    let producer = producer(proxy.endpoint(), ProducerConfig::default());
    let stream = StreamTarget::name("slow");
    let mut futures = Vec::new();
    for index in 0..100 {
        futures.push(producer.put_data(&stream, key_of(index, 10), data(index, 100)).await.unwrap());
    }
    let started = std::time::Instant::now();
    let result = producer.shutdown(Duration::from_millis(500)).await;
    assert!(started.elapsed() < Duration::from_secs(2), "shutdown kept to its timeout");
    assert_eq!(result, Err(ShutdownError::TimedOut { abandoned: 100 }));
    for future in futures {
        assert_eq!(future.await.unwrap_err(), DeliveryError::ShutdownTimedOut);
    }
}

/// Short records put the moment the producer starts, as `kpl produce` and every short-lived job do.
async fn put_at_start(
    producer: &kpl_tokio::KinesisProducer,
    stream: &StreamTarget,
    keys: u32,
) -> Vec<RecordReceipt> {
    let mut futures = Vec::new();
    for index in 0..3000 {
        futures.push(producer.put_data(stream, key_of(index, keys), data(index, 30)).await.unwrap());
    }
    await_all(futures).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_put_before_a_slow_shard_map_are_aggregated_from_the_first() {
    // As reported: with the KPL's SendUnaggregated, 3,000 short records put while ListShards took 20 ms went
    // out as 3,000 Kinesis records. Held for the map (the default), they are aggregated per shard.
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "slow-map", 2).await;
    let plan = Plan { list_shards_delay: Duration::from_millis(500), ..Plan::default() };
    let proxy = FaultProxy::start(server.endpoint(), plan).await;
    let producer = producer(proxy.endpoint(), ProducerConfig::default());
    put_at_start(&producer, &StreamTarget::name("slow-map"), 3000).await;
    let stats = producer.stats().await.unwrap();
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    assert_eq!(stats.user_records_put, 3000);
    assert_eq!(stats.shard_map_fallbacks, 0);
    assert!(stats.kinesis_records_put <= 8, "one aggregate per shard and 50 KB: {stats:?}");
    assert_eq!(copies(&read_stream(&client, "slow-map").await, false).len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_list_shards_falls_back_to_kcl_safe_same_key_aggregation() {
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "no-list", 4).await;
    let plan = Plan { refuse_list_shards: true, ..Plan::default() };
    let proxy = FaultProxy::start(server.endpoint(), plan).await;
    let producer = producer(proxy.endpoint(), ProducerConfig::default());
    let started = std::time::Instant::now();
    put_at_start(&producer, &StreamTarget::name("no-list"), 10).await;
    let elapsed = started.elapsed();
    let stats = producer.stats().await.unwrap();
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    assert!(proxy.injected.list_shards_refused.load(Ordering::SeqCst) >= 1);
    assert!(elapsed < Duration::from_secs(4), "no waiting out the hold on a refusal: {elapsed:?}");
    assert_eq!((stats.user_records_put, stats.shard_map_fallbacks), (3000, 1), "{stats:?}");
    assert!(stats.kinesis_records_put <= 20, "aggregated by key (10 keys): {stats:?}");
    // Every aggregate lies within its shard's range: a KCL consumer drops none.
    assert_eq!(copies(&read_stream(&client, "no-list").await, false).len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_key_over_256_utf16_units_is_refused_at_put_and_the_others_are_written() {
    // As reported: 129 × U+1F511 (129 code points, 258 UTF-16 units) was accepted, and the server's refusal of
    // the request failed all three records in 9 of 20 runs.
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "keys-utf16", 1).await;
    let config = ProducerConfig::builder().aggregation_enabled(false).build().unwrap();
    let producer = producer(server.endpoint(), config);
    let stream = StreamTarget::name("keys-utf16");
    let first = producer.put_data(&stream, "a1", data(1, 10)).await.unwrap();
    let refused = producer.put_data(&stream, "\u{1F511}".repeat(129), data(2, 10)).await.unwrap_err();
    assert_eq!(refused, PutError::PartitionKeyTooLong { length: 258 });
    let third = producer.put_data(&stream, "a3", data(3, 10)).await.unwrap();
    await_all(vec![first, third]).await;
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let copies = copies(&read_stream(&client, "keys-utf16").await, false);
    assert_eq!(copies.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_the_stream_refuses_fails_alone() {
    // As reported: MaxUserRecordSize = 10 MiB and a stream that takes 1 MiB records; `small-1`, a 2 MiB record
    // and `small-3` shared a request, the server refused it naming only the big one, and all three failed.
    let server = Kinesalite::start();
    let client = client(server.endpoint());
    create_stream(&client, "big-one", 1).await;
    let config = ProducerConfig::builder().max_record_size(10 * 1024 * 1024).build().unwrap();
    let producer = producer(server.endpoint(), config);
    let stream = StreamTarget::name("big-one");
    let small_1 = producer.put_data(&stream, "k", data(1, 10)).await.unwrap();
    let big = producer.put_data(&stream, "k", data(2, 2 * 1024 * 1024)).await.unwrap();
    let small_3 = producer.put_data(&stream, "k", data(3, 10)).await.unwrap();
    let DeliveryError::Failed(failure) = big.await.unwrap_err() else { panic!("the big record failed") };
    assert!(
        matches!(&failure.error, kpl_tokio::RecordError::Rejected(error) if error.kind == kpl_tokio::RequestErrorKind::InvalidRequest),
        "{failure:?}"
    );
    await_all(vec![small_1, small_3]).await;
    producer.shutdown(Duration::from_secs(10)).await.unwrap();
    let copies = copies(&read_stream(&client, "big-one").await, false);
    assert_eq!(copies.keys().copied().collect::<Vec<_>>(), vec![1, 3]);
}
