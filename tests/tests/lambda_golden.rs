//! Golden Lambda events: `kpl_deagg::lambda` gives the same user records as the official Python module
//! (`aws-kinesis-agg`'s `deaggregate_records`, run by `tests/py/agg_oracle.py` on the very same event).
//!
//! The events hold aggregates built by `aws-kinesis-agg`'s own aggregator, Kinesis records written by our
//! producer (`kpl-core` against the simulated Kinesis), plain records and damaged aggregates. Every field
//! is compared: sequence number, sub-sequence number, partition key, explicit hash key, data, whether
//! aggregated, approximate arrival time and the event's metadata. Two documented differences are checked as
//! such: Python reports the table's first explicit hash key for a sub-record without one (we compare with
//! the sub-record's own field, and check Python's reported key where there is one), and a damaged aggregate
//! passes through unchanged in Python and in our `Mode::KclCompatible`, while our strict default reports it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests may panic on what they do not expect.

use std::time::Instant;

use bytes::Bytes;
use kpl_core::{Event, Producer, ProducerConfig, StreamTarget};
use kpl_deagg::lambda::aws_lambda_events::event::kinesis::KinesisEvent;
use kpl_deagg::lambda::{LambdaUserRecord, deaggregate_event};
use kpl_deagg::{AggregateBuilder, DeaggError, Deaggregator, MAGIC, Mode};
use kpl_mock_backend::{MockConfig, MockKinesis};
use kpl_tests::python::{AWS_KINESIS_AGG, PythonEnv};
use kpl_tests::{to_hex, workspace_root};
use serde_json::{Value, json};

/// The stream the oracle's events name.
const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/golden";

/// A user record to aggregate: partition key, explicit hash key, data.
type Input = (String, Option<u128>, Vec<u8>);

fn input(partition_key: &str, explicit_hash_key: Option<u128>, data: &str) -> Input {
    (partition_key.to_owned(), explicit_hash_key, data.as_bytes().to_vec())
}

fn user_records_json(inputs: &[Input]) -> Value {
    inputs
        .iter()
        .map(|(key, ehk, data)| {
            json!({"pk_hex": to_hex(key.as_bytes()), "ehk": ehk.map(|k| k.to_string()), "data_hex": to_hex(data)})
        })
        .collect()
}

/// One Kinesis record of the event: its sequence number and what it holds.
fn event_record(sequence_number: usize, partition_key: &str, shard: &str, content: (&str, Value)) -> Value {
    let mut record = json!({
        // Lambda's sequence numbers are 56 digits; distinct ones in event order.
        "sequenceNumber": format!("4959033827149025660855969253836157109592157598913658{sequence_number:04}"),
        // Millisecond precision, as Lambda delivers it; three digits, since aws_lambda_events 1.2.1 reads
        // fewer wrong (see `kpl_deagg::lambda`).
        "approximateArrivalTimestamp": 1_700_000_000.0 + sequence_number as f64 + (101 + 2 * (sequence_number % 400)) as f64 / 1000.0,
        "partitionKey": partition_key,
        "shardId": shard,
    });
    record[content.0] = content.1;
    record
}

fn python() -> PythonEnv {
    PythonEnv::ensure(&AWS_KINESIS_AGG).unwrap_or_else(|error| {
        panic!("cannot set up the aws-kinesis-agg reference environment (this test never skips):\n{error}")
    })
}

/// A user record reduced to what both implementations report.
#[derive(Debug, Clone, PartialEq)]
struct Compared {
    sequence_number: String,
    sub_sequence_number: u64,
    aggregated: bool,
    partition_key: String,
    explicit_hash_key: Option<String>,
    arrival_millis: i64,
    event_source: Option<String>,
    event_source_arn: Option<String>,
    event_id: Option<String>,
    aws_region: Option<String>,
    data: Vec<u8>,
}

fn ours(user: &LambdaUserRecord) -> Compared {
    let text = |field: &Option<std::sync::Arc<str>>| field.as_deref().map(str::to_owned);
    Compared {
        sequence_number: user.record.sequence_number.to_string(),
        sub_sequence_number: user.record.sub_sequence_number,
        aggregated: user.record.aggregated,
        partition_key: user.record.partition_key.to_string(),
        explicit_hash_key: text(&user.record.explicit_hash_key),
        arrival_millis: user.approximate_arrival_timestamp.timestamp_millis(),
        event_source: text(&user.event_source),
        event_source_arn: text(&user.event_source_arn),
        event_id: text(&user.event_id),
        aws_region: text(&user.aws_region),
        data: user.record.data.to_vec(),
    }
}

fn theirs(line: &Value) -> Compared {
    let text = |name: &str| line[name].as_str().map(str::to_owned);
    let aggregated = line["aggregated"].as_bool().unwrap();
    let own = text("ownExplicitHashKey");
    if own.is_some() {
        assert_eq!(
            text("explicitHashKey"),
            own,
            "Python reports a sub-record's own explicit hash key: {line}"
        );
    }
    Compared {
        sequence_number: text("sequenceNumber").unwrap(),
        // A record passed through has none in Python's output; ours numbers it 0, as the KCL does.
        sub_sequence_number: line["subSequenceNumber"].as_u64().unwrap_or(0),
        aggregated,
        partition_key: text("partitionKey").unwrap(),
        explicit_hash_key: own,
        arrival_millis: (line["approximateArrivalTimestamp"].as_f64().unwrap() * 1000.0).round() as i64,
        event_source: text("eventSource"),
        event_source_arn: text("eventSourceARN"),
        event_id: text("eventID"),
        aws_region: text("awsRegion"),
        data: kpl_tests::from_hex(line["data_hex"].as_str().unwrap()).unwrap(),
    }
}

/// Has Python build the event from `records` and deaggregate it: the event, and its user records.
fn python_event(env: &PythonEnv, records: Vec<Value>) -> (KinesisEvent, Vec<Compared>) {
    let request = json!({"op": "lambda_event", "records": records}).to_string();
    let output = env
        .run_script(&workspace_root().join("tests/py/agg_oracle.py"), &request)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut lines = output.lines();
    let event: KinesisEvent = serde_json::from_str(lines.next().expect("the event")).unwrap();
    let users = lines.map(|line| theirs(&serde_json::from_str(line).unwrap())).collect();
    (event, users)
}

fn assert_same(ours: &[Compared], theirs: &[Compared]) {
    assert_eq!(ours.len(), theirs.len(), "user records: ours {ours:#?}\ntheirs {theirs:#?}");
    for (position, (ours, theirs)) in ours.iter().zip(theirs).enumerate() {
        assert_eq!(ours, theirs, "user record {position}");
    }
}

/// Kinesis records in the layout aws-kinesis-agg builds: every one of them.
fn python_made_records() -> Vec<Value> {
    let key_256_chars: String = "ключ🔑".chars().cycle().take(256).collect();
    let filler: String = (0..20_000).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    let aggregates: Vec<Vec<Input>> = vec![
        (0..5).map(|i| input(&format!("user-{i}"), None, &format!("value-{i}"))).collect(),
        vec![
            input("e1", Some(0), "zero"),
            input("e2", None, "none: Python reports e1's key for it"),
            input("e3", Some(u128::MAX), "max"),
            input("e2", Some(1 << 127), "half"),
        ],
        vec![input("ключ-🔑", None, "cyrillic and emoji"), input("日本語", Some(12_345), "cjk")],
        vec![input(&key_256_chars, None, ""), input("x", None, ""), input("x", None, &filler)],
        // aws-kinesis-agg wraps even a single record.
        vec![input("only", Some(42), "the only record")],
    ];
    let mut records: Vec<Value> = aggregates
        .iter()
        .enumerate()
        .map(|(i, inputs)| {
            event_record(i, "outer", "shardId-000000000000", ("user_records", user_records_json(inputs)))
        })
        .collect();
    let plain = ("data_hex", json!(to_hex(b"a plain record")));
    records.push(event_record(records.len(), "plain-key", "shardId-000000000001", plain));
    records
}

#[test]
fn events_of_aws_kinesis_agg_aggregates_deaggregate_as_in_python() {
    let env = python();
    let (event, expected) = python_event(&env, python_made_records());
    assert_eq!(expected.len(), 5 + 4 + 2 + 3 + 1 + 1, "Python's user records: {expected:#?}");
    let out = deaggregate_event(event.clone());
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    assert_same(&out.records.iter().map(ours).collect::<Vec<_>>(), &expected);
    // Both modes agree on valid input.
    let kcl = Deaggregator::new(Mode::KclCompatible).deaggregate_event(event);
    assert_eq!(kcl, out);
    assert!(expected.iter().all(|user| user.event_source_arn.as_deref() == Some(STREAM_ARN)));
    assert!(expected.iter().any(|user| user.explicit_hash_key.is_none() && user.aggregated));
    assert!(expected.iter().any(|user| !user.aggregated));
}

/// Kinesis records as our producer wrote them to the simulated Kinesis, by shard.
fn produced_by_our_producer(inputs: &[Input]) -> Vec<(String, kpl_deagg::ReceivedRecord)> {
    let mut backend = MockKinesis::new(MockConfig::calm(), 3).unwrap();
    backend.create_stream("golden", 2).unwrap();
    let mut producer = Producer::new(ProducerConfig::builder().build().unwrap(), 3);
    let stream = StreamTarget::name("golden");
    let mut now = Instant::now();
    let mut shard_map = false;
    producer.add_stream(now, stream.clone()).unwrap();
    let mut completed = 0;
    let mut put = false;
    while completed < inputs.len() {
        // Put once the shard map is known, so that every record is aggregated per shard.
        if shard_map && !put {
            for (key, ehk, data) in inputs {
                let mut record = kpl_core::UserRecord::new(stream.clone(), key.clone(), data.clone());
                if let Some(ehk) = ehk {
                    record = record.with_explicit_hash_key(ehk.to_string());
                }
                producer.put_record(now, record).unwrap();
            }
            put = true;
        }
        while let Some(transmit) = producer.poll_transmit(now) {
            backend.handle_request(now, transmit.id, transmit.request).unwrap();
        }
        while let Some(event) = producer.poll_event() {
            match event {
                Event::RecordCompleted(outcome) => {
                    outcome.result.unwrap();
                    completed += 1;
                }
                Event::ShardMapUpdated { .. } => shard_map = true,
                _ => {}
            }
        }
        if completed == inputs.len() {
            break;
        }
        if shard_map && !put {
            continue;
        }
        let next = [producer.poll_timeout(), backend.poll_timeout()].into_iter().flatten().min();
        now = next.expect("the producer waits on something").max(now);
        while let Some((id, response)) = backend.poll_response(now) {
            producer.handle_response(now, id, response);
        }
        producer.handle_timeout(now);
    }
    backend
        .shards("golden")
        .unwrap()
        .iter()
        .flat_map(|shard| shard.received_records().map(|r| (shard.id().as_str().to_owned(), r)))
        .collect()
}

#[test]
fn events_of_our_producers_records_deaggregate_as_in_python() {
    let inputs: Vec<Input> = (0..300u32)
        .map(|i| {
            let ehk = (i % 7 == 0).then(|| u128::from(i) << 100);
            input(&format!("customer-{}", i % 40), ehk, &format!("{{\"order\":{i}}}"))
        })
        .collect();
    let written = produced_by_our_producer(&inputs);
    assert!(written.len() < inputs.len() / 4, "the producer aggregated: {} Kinesis records", written.len());
    let records: Vec<Value> = written
        .iter()
        .enumerate()
        .map(|(i, (shard, record))| {
            event_record(i, &record.partition_key, shard, ("data_hex", json!(to_hex(&record.data))))
        })
        .collect();
    let env = python();
    let (event, expected) = python_event(&env, records);
    let out = deaggregate_event(event);
    assert!(out.failures.is_empty(), "{:?}", out.failures);
    let ours: Vec<Compared> = out.records.iter().map(ours).collect();
    assert_same(&ours, &expected);
    // And they are the records put, each once.
    let mut got: Vec<(String, Option<String>, Vec<u8>)> =
        ours.into_iter().map(|u| (u.partition_key, u.explicit_hash_key, u.data)).collect();
    let mut put: Vec<(String, Option<String>, Vec<u8>)> =
        inputs.into_iter().map(|(key, ehk, data)| (key, ehk.map(|k| k.to_string()), data)).collect();
    got.sort();
    put.sort();
    assert_eq!(got, put);
}

#[test]
fn a_damaged_aggregate_passes_through_in_python_and_kcl_mode_and_fails_in_strict_mode() {
    let mut builder = AggregateBuilder::new();
    builder.add("a", None, &Bytes::from_static(b"one"));
    builder.add("b", None, &Bytes::from_static(b"two"));
    let good = builder.to_aggregated_bytes().to_vec();
    let mut bad_checksum = good.clone();
    *bad_checksum.last_mut().unwrap() ^= 1;
    // The magic and a valid digest of bytes that are not a protobuf.
    let garbage = [0xffu8, 0xff, 0xff];
    let mut bad_protobuf = MAGIC.to_vec();
    bad_protobuf.extend_from_slice(&garbage);
    bad_protobuf.extend_from_slice(&md5_of(&garbage));
    let too_short = MAGIC.to_vec();
    let blobs = [&good, &bad_checksum, &bad_protobuf, &too_short];
    let records: Vec<Value> = blobs
        .iter()
        .enumerate()
        .map(|(i, blob)| event_record(i, "outer", "shardId-000000000000", ("data_hex", json!(to_hex(blob)))))
        .collect();
    let env = python();
    let (event, expected) = python_event(&env, records);
    assert_eq!(expected.len(), 2 + 3, "Python passes the damaged records through: {expected:#?}");

    let kcl = Deaggregator::new(Mode::KclCompatible).deaggregate_event(event.clone());
    assert!(kcl.failures.is_empty());
    assert_same(&kcl.records.iter().map(ours).collect::<Vec<_>>(), &expected);

    let strict = deaggregate_event(event);
    let delivered: Vec<&str> = strict.records.iter().map(|u| &*u.record.sequence_number).collect();
    assert_eq!(delivered, [expected[0].sequence_number.as_str(); 2]);
    let failures: Vec<(&str, &DeaggError)> =
        strict.failures.iter().map(|f| (f.sequence_number.as_str(), &f.error)).collect();
    assert_eq!(failures.len(), 3, "{failures:?}");
    assert_eq!(failures[0], (expected[2].sequence_number.as_str(), &DeaggError::ChecksumMismatch));
    assert!(matches!(failures[1].1, DeaggError::Protobuf(_)), "{failures:?}");
    assert_eq!(failures[2].1, &DeaggError::TooShort { len: 4 });
    let items: Vec<String> = strict
        .batch_item_failures()
        .batch_item_failures
        .into_iter()
        .map(|item| item.item_identifier.unwrap())
        .collect();
    assert_eq!(items, failures.iter().map(|(sequence, _)| sequence.to_string()).collect::<Vec<_>>());
}

fn md5_of(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}
