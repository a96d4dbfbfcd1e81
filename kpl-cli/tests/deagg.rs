//! `kpl deagg` as a process: Lambda Kinesis events, mixed inputs, and bounded memory on endless input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Stdio;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use common::{kpl_command, run, text};
use kpl_deagg::AggregateBuilder;
use serde_json::{Value, json};

const ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/orders";

/// A Lambda Kinesis event record, as Lambda delivers it.
fn lambda_record(sequence_number: &str, data: &[u8], arrival: f64) -> Value {
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": "a",
            "sequenceNumber": sequence_number,
            "data": STANDARD.encode(data),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{sequence_number}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
        "awsRegion": "us-east-1",
        "eventSourceARN": ARN,
    })
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout).lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
}

#[test]
fn deagg_reads_a_lambda_test_event_and_get_records_output_after_it() {
    let mut builder = AggregateBuilder::new();
    for i in 0..5 {
        builder.add(&format!("user-{i}"), (i == 3).then_some(77), &Bytes::from(format!("value-{i}")));
    }
    let event = json!({"Records": [
        lambda_record("100", &builder.to_aggregated_bytes(), 1_700_000_000.25),
        lambda_record("200", b"plain", 1_700_000_001.0),
    ]});
    let page = json!({"Records": [{"SequenceNumber": "300", "PartitionKey": "p", "Data": STANDARD.encode(b"paged"),
        "ApproximateArrivalTimestamp": "2024-05-01T12:00:00.000000+00:00"}], "NextShardIterator": "x"});
    let input = format!("{event}\n{page}");
    let output = run(kpl_command().args(["deagg", "--utf8"]), input.as_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut expected: Vec<Value> = (0..5)
        .map(|i| {
            json!({
                "sequence_number": "100", "sub_sequence_number": i, "partition_key": format!("user-{i}"),
                "explicit_hash_key": (i == 3).then_some("77"), "aggregated": true,
                "approximate_arrival_timestamp": "2023-11-14T22:13:20.250Z", "event_source_arn": ARN,
                "data": format!("value-{i}"),
            })
        })
        .collect();
    expected.push(json!({
        "sequence_number": "200", "sub_sequence_number": 0, "partition_key": "a", "explicit_hash_key": null,
        "aggregated": false, "approximate_arrival_timestamp": "2023-11-14T22:13:21.000Z", "event_source_arn": ARN,
        "data": "plain",
    }));
    expected.push(json!({
        "sequence_number": "300", "sub_sequence_number": 0, "partition_key": "p", "explicit_hash_key": null,
        "aggregated": false, "approximate_arrival_timestamp": "2024-05-01T12:00:00.000Z", "data": "paged",
    }));
    assert_eq!(lines(&output.stdout), expected);
}

#[test]
fn a_damaged_aggregate_in_a_lambda_event_is_reported_by_sequence_number() {
    let mut builder = AggregateBuilder::new();
    builder.add("a", None, &Bytes::from_static(b"one"));
    builder.add("b", None, &Bytes::from_static(b"two"));
    let mut damaged = builder.to_aggregated_bytes().to_vec();
    *damaged.last_mut().unwrap() ^= 1;
    let event = json!({"Records": [lambda_record("7", &damaged, 1.0), lambda_record("8", b"ok", 1.0)]});
    let output = run(kpl_command().args(["deagg", "--strict", "--utf8"]), event.to_string().as_bytes());
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).lines().collect::<Vec<_>>(),
        ["record 7: aggregated record checksum mismatch", "kpl: 1 Kinesis records could not be deaggregated"]
    );
    let delivered = lines(&output.stdout);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["data"], "ok");
}

/// Runs `kpl args...` with an endless standard input made of `head` then `filler` repeated, and returns
/// kpl's output and how many bytes it took before it stopped reading (1 GiB at most: then it never stopped).
fn endless_input(args: &[&str], head: &[u8], filler: u8) -> (std::process::Output, u64) {
    let mut child = kpl_command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let head = head.to_vec();
    let writer = std::thread::spawn(move || {
        let chunk = vec![filler; 1 << 16];
        let mut written = 0u64;
        if stdin.write_all(&head).is_err() {
            return written;
        }
        // kpl's exit closes the pipe: the write fails and the loop ends.
        while written < 1 << 30 && stdin.write_all(&chunk).is_ok() {
            written += chunk.len() as u64;
        }
        written
    });
    let output = child.wait_with_output().unwrap();
    (output, writer.join().unwrap())
}

#[test]
fn an_endless_document_or_raw_record_is_refused_at_its_limit_without_being_read_whole() {
    let (output, written) = endless_input(&["deagg"], br#"{"Records":[{"SequenceNumber":"1","Data":""#, b'A');
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "kpl: document 1 is larger than 33554432 bytes, the most one document may hold"
    );
    // What it read is the 32 MiB limit; the rest is what the pipe held when it stopped.
    assert!(written < 40 << 20, "kpl read {written} bytes");

    let (output, written) = endless_input(&["deagg", "--raw"], b"", 0);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).trim_end(),
        "kpl: the record is larger than 10485760 bytes, the largest Kinesis record"
    );
    assert!(written < 16 << 20, "kpl read {written} bytes");
}
