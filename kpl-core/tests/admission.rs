//! Drain-time admission on virtual time: under sustained overload with no faults, `put_record` holds
//! records back instead of letting them expire in the queues; records still expire when the service fails
//! them past their TTL; and the drain rate follows what the shards accept.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Harness, Reply, epoch, stream};
use kpl_core::{
    Event, ProducerConfig, PutError, RecordError, Request, RequestError, RequestErrorKind, UserRecord,
};

const MIB: usize = 1024 * 1024;
/// The longest virtual time between two rounds of puts.
const STEP: Duration = Duration::from_millis(10);

/// Kinesis's per-shard quotas, per whole second of virtual time: 1 MiB (data plus partition keys) and 1,000
/// Kinesis records; entries over either are throttled.
#[derive(Default)]
struct Quota {
    /// (second, bytes, records) used per shard id.
    used: BTreeMap<String, (u64, usize, usize)>,
}

impl Quota {
    fn reply(&mut self, h: &Harness, request: &Request) -> Reply {
        let Request::PutRecords(put) = request else { return Reply::Success };
        let second = h.now.duration_since(epoch()).as_secs();
        let codes = put
            .entries
            .iter()
            .map(|entry| {
                let hash_key: u128 = entry.explicit_hash_key.as_deref().unwrap().parse().unwrap();
                let shard = h
                    .shards
                    .iter()
                    .find(|s| (s.starting_hash_key..=s.ending_hash_key).contains(&hash_key))
                    .unwrap();
                let used = self.used.entry(shard.shard_id.to_string()).or_default();
                if used.0 != second {
                    *used = (second, 0, 0);
                }
                let size = entry.partition_key.len() + entry.data.len();
                if used.1 + size > MIB || used.2 + 1 > 1000 {
                    return Some("ProvisionedThroughputExceededException");
                }
                used.1 += size;
                used.2 += 1;
                None
            })
            .collect();
        Reply::Entries(codes)
    }
}

/// What an overload run saw.
#[derive(Default)]
struct Run {
    accepted: usize,
    refused: usize,
    /// Accepted after the first record expired.
    accepted_after_expiry: usize,
    peak_outstanding_bytes: usize,
}

impl Run {
    fn expired(h: &Harness) -> usize {
        h.outcomes
            .values()
            .filter(|o| matches!(&o.result, Err(f) if matches!(f.error, RecordError::Expired { .. })))
            .count()
    }
}

/// Offers `per_second` records of `size` bytes a second for `duration`, waiting for nothing (a put refused
/// for backpressure is dropped: the offer is open loop), answering each request with `reply`.
fn overload(
    h: &mut Harness,
    per_second: usize,
    size: usize,
    duration: Duration,
    mut reply: impl FnMut(&Harness, &Request) -> Reply,
) -> Run {
    let mut run = Run::default();
    let start = h.now;
    let end = h.now + duration;
    let mut offered = 0;
    let data = vec![7u8; size];
    let mut key = 0usize;
    let mut seen = h.events.len();
    let mut expired = false;
    while h.now < end {
        let due = (h.now - start).as_millis() as usize * per_second / 1000;
        for _ in offered..due {
            key += 1;
            let record = UserRecord::new(stream(), format!("key-{key:08}"), data.clone());
            match h.producer.put_record(h.now, record.clone()) {
                Ok(id) => {
                    h.put.insert(id, record);
                    run.accepted += 1;
                    if expired {
                        run.accepted_after_expiry += 1;
                    }
                }
                Err(PutError::Backpressure { .. }) => run.refused += 1,
                Err(error) => panic!("refused: {error}"),
            }
        }
        offered = offered.max(due);
        run.peak_outstanding_bytes = run.peak_outstanding_bytes.max(h.producer.outstanding_bytes());
        while let Some(transmit) = h.producer.poll_transmit(h.now) {
            let chosen = reply(h, &transmit.request);
            h.answer(transmit, chosen);
        }
        h.drain_events();
        expired |= h.events[seen..].iter().any(|event| {
            matches!(event, Event::RecordCompleted(o) if matches!(&o.result, Err(f) if matches!(f.error, RecordError::Expired { .. })))
        });
        seen = h.events.len();
        let next = h.now + STEP;
        h.now = h.producer.poll_timeout().map_or(next, |at| at.clamp(h.now, next));
        h.producer.handle_timeout(h.now);
    }
    run
}

fn rate(h: &Harness, now: Instant) -> u64 {
    h.producer.drain_rates(now).next().expect("one stream").1
}

#[test]
fn sustained_overload_holds_puts_back_and_no_record_expires() {
    // One shard (1 MiB/s) offered 2 MiB/s for two TTLs, with the KPL's default TTL and limits.
    let config = ProducerConfig::builder().build().unwrap();
    let mut h = Harness::new(config.clone(), 1);
    h.start();
    let mut quota = Quota::default();
    let run = overload(&mut h, 4000, 500, Duration::from_secs(60), |h, r| quota.reply(h, r));
    assert_eq!(Run::expired(&h), 0, "no record expires although the stream is overloaded");
    assert!(
        run.refused > run.accepted / 2,
        "puts were held back: {} refused, {} accepted",
        run.refused,
        run.accepted
    );
    // What the stream holds stays within its drain window (10 s) at what one shard takes.
    let limit = config.stream_admission_limit(MIB as u64).unwrap() as usize;
    assert!(run.peak_outstanding_bytes <= limit, "{} bytes outstanding", run.peak_outstanding_bytes);
    // Everything accepted is written once the offer stops.
    h.producer.close(h.now);
    let mut quota = Quota::default();
    overload(&mut h, 0, 0, Duration::from_secs(30), |h, r| quota.reply(h, r));
    assert!(matches!(h.events.last(), Some(Event::Drained)));
    assert_eq!(h.succeeded(), run.accepted);
}

#[test]
fn without_the_drain_window_the_same_overload_expires_records() {
    // The KPL's behaviour (no drain-time rule): the queue grows past what drains within the TTL.
    let config = ProducerConfig::builder().drain_window_percent(0).build().unwrap();
    let mut h = Harness::new(config, 1);
    h.start();
    let mut quota = Quota::default();
    let run = overload(&mut h, 4000, 500, Duration::from_secs(60), |h, r| quota.reply(h, r));
    assert_eq!(run.refused, 0);
    assert!(Run::expired(&h) > 0, "records expired queued behind the shard quota");
}

#[test]
fn records_still_expire_when_the_service_fails_them_past_their_ttl() {
    let ttl = Duration::from_secs(5);
    let config = ProducerConfig::builder().record_ttl(ttl).build().unwrap();
    let mut h = Harness::new(config, 1);
    h.start();
    let failing = RequestError::new(RequestErrorKind::Transient, Some("InternalFailure"), "down");
    let run = overload(&mut h, 1000, 500, Duration::from_secs(20), |_, _| Reply::Error(failing.clone()));
    let expired = Run::expired(&h);
    assert!(expired > 0, "records expire while every request fails");
    assert_eq!(h.succeeded(), 0);
    assert!(run.accepted_after_expiry > 0, "the stream is not shut out: puts go on being accepted");
    for outcome in h.outcomes.values() {
        let failure = outcome.result.as_ref().unwrap_err();
        assert!(matches!(failure.error, RecordError::Expired { .. }), "{:?}", failure.error);
        assert!(!failure.attempts.is_empty(), "each was tried");
    }
}

#[test]
fn the_drain_rate_follows_what_the_shards_accept() {
    let config = ProducerConfig::builder().build().unwrap();
    let mut h = Harness::new(config.clone(), 2);
    // Before any map: one shard's quota.
    h.producer.add_stream(h.now, stream()).unwrap();
    assert_eq!(rate(&h, h.now), MIB as u64);
    h.run(Duration::ZERO, |_| Reply::Success);
    assert_eq!(rate(&h, h.now), 2 * MIB as u64, "two shards' quota once the map is known");
    // Saturated, the rate is what the two shards write (a little under their quota: aggregation overhead).
    let mut quota = Quota::default();
    overload(&mut h, 8000, 500, Duration::from_secs(20), |h, r| quota.reply(h, r));
    let two = rate(&h, h.now);
    assert_eq!(Run::expired(&h), 0);
    assert!((3 * MIB as u64 / 2..=2 * MIB as u64).contains(&two), "two shards drain {two} B/s");
    // The shards double (the stream was resharded): the producer relists on the wrong-shard answer, and the
    // rate follows what the four shards write.
    h.shards = common::even_shards(4);
    let mut quota = Quota::default();
    overload(&mut h, 16000, 500, Duration::from_secs(20), |h, r| quota.reply(h, r));
    let four = rate(&h, h.now);
    assert!(
        four >= 2 * two * 9 / 10 && four <= 4 * MIB as u64,
        "four shards drain {four} B/s, two drained {two}"
    );
}
