//! The example handler, called with a Lambda Kinesis test event as Lambda would deliver it (no deployment):
//! an aggregate of five user records, a plain record and a damaged aggregate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kpl_deagg::AggregateBuilder;
use kpl_deagg::lambda::aws_lambda_events::event::kinesis::KinesisEvent;
use kpl_deagg_lambda_example::handler;
use lambda_runtime::tracing::subscriber;
use lambda_runtime::{Context, LambdaEvent};

/// Log output, shared with the subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn event_record(sequence_number: &str, data: &[u8]) -> String {
    format!(
        r#"{{"kinesis": {{"kinesisSchemaVersion": "1.0", "partitionKey": "a", "sequenceNumber": "{sequence_number}",
            "data": "{}", "approximateArrivalTimestamp": 1700000000.5}},
          "eventSource": "aws:kinesis", "eventVersion": "1.0",
          "eventID": "shardId-000000000000:{sequence_number}", "eventName": "aws:kinesis:record",
          "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role", "awsRegion": "us-east-1",
          "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders"}}"#,
        STANDARD.encode(data)
    )
}

#[tokio::test(flavor = "current_thread")]
async fn the_handler_logs_every_user_record_and_reports_the_damaged_one() {
    let mut builder = AggregateBuilder::new();
    for i in 0..5 {
        builder.add(&format!("user-{i}"), None, &Bytes::from(format!("value-{i}")));
    }
    let aggregate = builder.to_aggregated_bytes();
    let mut damaged = aggregate.to_vec();
    damaged[10] ^= 0x40;
    let payload = format!(
        r#"{{"Records": [{}, {}, {}]}}"#,
        event_record("49590338271490256608559692538361571095921575989136588898", &aggregate),
        event_record("49590338271490256608559692540925702759324208523137515618", b"plain"),
        event_record("49590338271490256608559692540925702759324208523137515619", &damaged),
    );
    let event: KinesisEvent = serde_json::from_str(&payload).unwrap();

    let logs = Captured::default();
    let writer = logs.clone();
    let collector = subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    let guard = lambda_runtime::tracing::subscriber::util::SubscriberInitExt::set_default(collector);
    let response = handler(LambdaEvent::new(event, Context::default())).await.unwrap();
    drop(guard);

    let failures: Vec<_> =
        response.batch_item_failures.iter().map(|item| item.item_identifier.clone().unwrap()).collect();
    assert_eq!(failures, ["49590338271490256608559692540925702759324208523137515619"]);
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let user_lines: Vec<&str> = logs.lines().filter(|line| line.contains("user record")).collect();
    assert_eq!(user_lines.len(), 6, "{logs}");
    for (i, line) in user_lines.iter().take(5).enumerate() {
        assert!(line.contains(&format!("sub_sequence_number={i} partition_key=\"user-{i}\"")), "{logs}");
        assert!(
            line.contains("sequence_number=\"49590338271490256608559692538361571095921575989136588898\"")
        );
    }
    assert!(user_lines[5].contains("partition_key=\"a\" bytes=5"), "{logs}");
    let error_lines: Vec<&str> = logs.lines().filter(|line| line.contains("ERROR")).collect();
    assert_eq!(error_lines.len(), 1, "{logs}");
    assert!(error_lines[0].contains("515619: aggregated record checksum mismatch"), "{logs}");
}
