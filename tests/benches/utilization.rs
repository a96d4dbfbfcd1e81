//! Shard utilisation: one producer saturating a 1-shard and a 16-shard stream for 10 virtual minutes against
//! the simulated Kinesis with its real per-shard limits (1000 records/s, 1 MiB/s). Prints the share of the
//! byte quota achieved and the share of entries throttled, for the KPL's default `RateLimit` (150 %) and for
//! 100 %. Benchmark output, not an assertion: `cargo bench -p kpl-tests --bench utilization`.
#![allow(missing_docs, clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use kpl_core::{Event, Producer, ProducerConfig, PutError, StreamTarget, UserRecord};
use kpl_mock_backend::{MIB, MockConfig, MockKinesis};
use kpl_tests::sim::rng::SplitMix64;

const RUN: Duration = Duration::from_secs(600);
const RECORD: usize = 2000;

struct Outcome {
    byte_share: f64,
    throttled_share: f64,
    user_records_put: u64,
    expired: u64,
}

fn saturate(shards: u32, rate_limit: u64) -> Outcome {
    let mut backend = MockKinesis::new(MockConfig { retain_committed: false, ..MockConfig::calm() }, 7)
        .expect("valid mock");
    backend.create_stream("utilisation", shards).expect("new stream");
    let config = ProducerConfig::builder()
        .rate_limit(rate_limit)
        // A few seconds of backlog at the shard rate: well inside the 30 s TTL.
        .max_outstanding_bytes(4 * u64::from(shards) * MIB as u64)
        .build()
        .expect("valid config");
    let mut producer = Producer::new(config, 7);
    let stream = StreamTarget::name("utilisation");
    let mut rng = SplitMix64::new(1);
    let data = bytes::Bytes::from(vec![0x5Au8; RECORD]);
    let mut now = Instant::now();
    // Learn the shard map before the load starts: otherwise the first backlog goes out unaggregated and
    // unlimited (`ShardMapWait::SendUnaggregated`, the KPL's way) and is mostly throttled.
    producer.add_stream(now, stream.clone()).expect("valid stream");
    while !matches!(producer.poll_event(), Some(Event::ShardMapUpdated { .. })) {
        while let Some(transmit) = producer.poll_transmit(now) {
            backend.handle_request(now, transmit.id, transmit.request).expect("simulated request");
        }
        now = backend.poll_timeout().expect("the listing is answered");
        while let Some((id, response)) = backend.poll_response(now) {
            producer.handle_response(now, id, response);
        }
    }
    let end = now + RUN;
    let mut expired = 0;
    let mut user_records_put = 0;
    while now < end {
        // The application always has more to send: fill up to the backpressure limit.
        loop {
            let key = format!("{:032x}", rng.next_u64());
            let record = UserRecord::new(stream.clone(), key, data.clone());
            match producer.put_record(now, record) {
                Ok(_) => {}
                Err(PutError::Backpressure { .. }) => break,
                Err(error) => panic!("{error}"),
            }
        }
        while let Some(transmit) = producer.poll_transmit(now) {
            backend.handle_request(now, transmit.id, transmit.request).expect("simulated request");
        }
        while let Some(event) = producer.poll_event() {
            if let Event::RecordCompleted(outcome) = event {
                match outcome.result {
                    Ok(_) => user_records_put += 1,
                    Err(_) => expired += 1,
                }
            }
        }
        let next = [producer.poll_timeout(), backend.poll_timeout()].into_iter().flatten().min();
        now = next.expect("a saturated producer always waits on something").max(now);
        while let Some((id, response)) = backend.poll_response(now) {
            producer.handle_response(now, id, response);
        }
        producer.handle_timeout(now);
    }
    let stats = backend.stats();
    let quota = f64::from(shards) * MIB as f64 * RUN.as_secs_f64();
    Outcome {
        byte_share: stats.bytes_committed as f64 / quota,
        throttled_share: stats.entries_throttled as f64 / stats.entries_received.max(1) as f64,
        user_records_put,
        expired,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass nothing: skip the long run then.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    println!(
        "shard utilisation, {} virtual minutes, {RECORD}-byte records, Kinesis limits",
        RUN.as_secs() / 60
    );
    for shards in [1, 16] {
        for rate_limit in [150, 100] {
            let wall = Instant::now();
            let outcome = saturate(shards, rate_limit);
            println!(
                "{shards:>2} shard(s), RateLimit {rate_limit:>3}%: {:5.1}% of the byte quota, {:5.2}% of entries \
                 throttled, {} user records put, {} failed ({:.1} s wall)",
                outcome.byte_share * 100.0,
                outcome.throttled_share * 100.0,
                outcome.user_records_put,
                outcome.expired,
                wall.elapsed().as_secs_f64()
            );
        }
    }
}
