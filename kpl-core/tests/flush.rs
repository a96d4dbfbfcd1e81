//! `Producer::flush` reports its own completion: `Event::FlushCompleted` once every record accepted before it
//! (of its stream, or of all) completed. Driven through the public API on virtual time.
#![allow(clippy::disallowed_methods, clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{Harness, Reply, stream};
use kpl_core::{
    Event, FlushId, ProducerConfig, RecordId, RequestError, RequestErrorKind, StreamTarget, UserRecord,
};

/// Where `event` sits in what the harness collected.
fn position(h: &Harness, wanted: &Event) -> Option<usize> {
    h.events.iter().position(|event| event == wanted)
}

fn completed_at(h: &Harness, id: FlushId) -> Option<usize> {
    position(h, &Event::FlushCompleted(id))
}

fn record_completed_at(h: &Harness, id: RecordId) -> usize {
    h.events
        .iter()
        .position(|event| matches!(event, Event::RecordCompleted(outcome) if outcome.id == id))
        .expect("the record completed")
}

fn put_on(h: &mut Harness, target: &StreamTarget, key: &str) -> RecordId {
    let record = UserRecord::new(target.clone(), key, &b"payload"[..]);
    let id = h.producer.put_record(h.now, record.clone()).expect("accepted");
    h.put.insert(id, record);
    id
}

#[test]
fn a_flush_with_nothing_outstanding_completes_at_once() {
    let mut h = Harness::new(ProducerConfig::default(), 1);
    let all = h.producer.flush(h.now, None);
    let unknown = h.producer.flush(h.now, Some(&StreamTarget::name("never-seen")));
    assert_ne!(all, unknown, "every flush has its own id");
    h.drain_events();
    assert_eq!(h.events, vec![Event::FlushCompleted(all), Event::FlushCompleted(unknown)]);
}

#[test]
fn a_flush_completes_after_the_last_record_accepted_before_it() {
    // Buffering long enough that nothing goes out before the flush asks.
    let config = ProducerConfig::builder()
        .record_max_buffered_time(Duration::from_secs(60))
        .record_ttl(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut h = Harness::new(config, 2);
    h.start();
    let before: Vec<RecordId> = (0..20).map(|i| h.put(&format!("key-{i}"), b"x")).collect();
    let flush = h.producer.flush(h.now, None);
    // Put after the flush: buffered for a minute, they must not hold it up.
    let after = h.put("late", b"y");
    h.drain_events();
    assert_eq!(completed_at(&h, flush), None, "nothing was sent yet");
    h.run(Duration::from_secs(1), |_| Reply::Success);
    let flushed = completed_at(&h, flush).expect("the flush completed within a second");
    assert!(before.iter().all(|&id| record_completed_at(&h, id) < flushed));
    assert!(!h.outcomes.contains_key(&after), "the later record still waits for its buffering time");
    assert_eq!(h.events.iter().filter(|e| matches!(e, Event::FlushCompleted(_))).count(), 1);
}

#[test]
fn a_flush_of_one_stream_waits_for_that_stream_only() {
    let config = ProducerConfig::builder()
        .record_max_buffered_time(Duration::from_secs(60))
        .record_ttl(Duration::from_secs(120))
        .build()
        .unwrap();
    let mut h = Harness::new(config, 1);
    h.start();
    let other = StreamTarget::name("other-stream");
    let mine = put_on(&mut h, &stream(), "a");
    let theirs = put_on(&mut h, &other, "b");
    // The other stream refuses everything: its records fail, which completes them too.
    let denied = RequestError::new(RequestErrorKind::Fatal, Some("AccessDeniedException"), "no");
    let mut responder = |request: &kpl_core::Request| match request {
        kpl_core::Request::PutRecords(put) if put.stream == other => Reply::Error(denied.clone()),
        _ => Reply::Success,
    };
    let one = h.producer.flush(h.now, Some(&stream()));
    h.run(Duration::from_secs(1), &mut responder);
    let one_at = completed_at(&h, one).expect("the stream's flush completed");
    assert!(record_completed_at(&h, mine) < one_at);
    assert!(!h.outcomes.contains_key(&theirs), "the other stream waits for its buffering time");
    // A flush of every stream waits for the other stream's record, and completes once it failed.
    let all = h.producer.flush(h.now, None);
    h.drain_events();
    assert_eq!(completed_at(&h, all), None);
    h.run(Duration::from_secs(10), &mut responder);
    let all_at = completed_at(&h, all).expect("the global flush completed");
    assert!(h.outcomes[&theirs].result.is_err());
    assert!(record_completed_at(&h, theirs) < all_at);
}

#[test]
fn flushes_complete_after_retries_and_close_reports_none() {
    let mut h = Harness::new(ProducerConfig::default(), 1);
    h.start();
    let id = h.put("k", b"v");
    let flush = h.producer.flush(h.now, None);
    let throttled = Reply::Entries(vec![Some("ProvisionedThroughputExceededException")]);
    h.run(Duration::ZERO, |_| throttled.clone());
    h.drain_events();
    assert_eq!(completed_at(&h, flush), None, "the record is waiting out its backoff");
    h.run(Duration::from_secs(5), |_| Reply::Success);
    let flushed = completed_at(&h, flush).expect("completed once the retry succeeded");
    assert!(record_completed_at(&h, id) < flushed);
    assert_eq!(h.outcomes[&id].result.as_ref().unwrap().attempts.len(), 2);
    // `close` flushes too, but reports `Drained`, not a flush nobody asked for.
    h.put("k", b"w");
    h.producer.close(h.now);
    h.run(Duration::from_secs(5), |_| Reply::Success);
    assert_eq!(h.events.iter().filter(|e| matches!(e, Event::FlushCompleted(_))).count(), 1);
    assert_eq!(h.events.last(), Some(&Event::Drained));
}
