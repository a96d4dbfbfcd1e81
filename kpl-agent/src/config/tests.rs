use std::time::Duration;

use super::*;
use crate::core::{InitialPosition, OversizePolicy};

const SAMPLE: &str = r#"
{
  // The AWS guide's sample, with comments.
  "cloudwatch.emitMetrics": false,
  "kinesis.endpoint": "http://127.0.0.1:4567",
  /* a block comment */
  "flows": [
    {
      "filePattern": "/var/log/app/*.log",
      "kinesisStream": "app-logs",
      "initialPosition": "START_OF_FILE",
      "maxBufferAgeMillis": "1000",
      "partitionKeyOption": "DETERMINISTIC",
      "multiLineStartPattern": "\\d{4}-"
    }
  ]
}
"#;

fn parse_ok(text: &str) -> Loaded {
    parse("agent.json", text, &[], false).unwrap()
}

#[test]
fn the_agents_format_is_read_with_comments_strings_for_numbers_and_its_defaults() {
    let loaded = parse_ok(SAMPLE);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let config = loaded.config;
    assert_eq!(config.kinesis_endpoint.as_deref(), Some("http://127.0.0.1:4567"));
    assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
    assert_eq!(config.checkpoint_ttl, Duration::from_secs(7 * 86_400));
    assert!(config.producer.record_ttl() > Duration::from_secs(86_400 * 365 * 1000), "no TTL by default");
    assert_eq!(config.producer.shard_map_wait(), kpl_tokio::ShardMapWait::Hold);
    let flow = &config.flows[0];
    assert_eq!(flow.id(), "kinesis:app-logs:/var/log/app/*.log");
    assert_eq!(flow.initial_position, InitialPosition::StartOfFile);
    assert!(matches!(flow.partition_key, PartitionKeyOption::Deterministic));
    assert!(flow.framing.multi_line_start.as_ref().unwrap().is_match(b"2026-01 x"));
    assert!(!flow.framing.multi_line_start.as_ref().unwrap().is_match(b"at 2026-01"));
    assert_eq!(flow.framing.max_record_size, (1 << 20) - 256);
    assert_eq!(flow.framing.oversize, OversizePolicy::Truncate);
    assert_eq!(flow.min_time_between_file_polls, Duration::from_millis(100));
}

#[test]
fn unknown_keys_are_warned_about_and_refused_with_strict() {
    let text =
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "initialPostion": "START_OF_FILE"}]}"#;
    let loaded = parse_ok(text);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("initialPostion"), "{:?}", loaded.warnings);
    let error = parse("agent.json", text, &[], true).unwrap_err();
    assert!(matches!(error, ConfigError::Unknown { ref keys, .. } if keys == &["initialPostion"]), "{error}");
}

#[test]
fn keys_without_effect_are_named_and_unsupported_ones_refused() {
    let loaded = parse_ok(
        r#"{"maxSendingThreads": 4, "log.level": "DEBUG",
        "flows": [{"filePattern": "/a", "kinesisStream": "s", "publishQueueCapacity": 10}]}"#,
    );
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(loaded.warnings.iter().any(|w| w.contains("log.level has no effect")));
    for text in [
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "aggregatedRecordSizeBytes": 100}]}"#,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions": [{"optionName": "USINGPLUGGIN"}]}]}"#,
        r#"{"userDefinedCredentialsProvider.classname": "x.Y", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#,
    ] {
        assert!(
            matches!(parse("agent.json", text, &[], false), Err(ConfigError::Unsupported { .. })),
            "{text}"
        );
    }
}

#[test]
fn values_are_checked_against_the_agents_ranges_and_enums() {
    let bad = [
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "maxBufferAgeMillis": 999}]}"#,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "maxBufferSizeRecords": "501"}]}"#,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "initialPosition": "MIDDLE"}]}"#,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "multiLineStartPattern": "("}]}"#,
        r#"{"flows": [{"filePattern": "/a"}]}"#,
        r#"{"flows": []}"#,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s"}, {"filePattern": "/a", "kinesisStream": "s"}]}"#,
        r#"{"producer": {"MaxUserRecordSize": 100000}, "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#,
    ];
    for text in bad {
        assert!(parse("agent.json", text, &[], false).is_err(), "{text}");
    }
    let loaded = parse_ok(
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s",
        "initialPosition": "start_of_file", "stripCarriageReturn": "yes", "partialLineFlushMillis": 0}]}"#,
    );
    let flow = &loaded.config.flows[0];
    assert_eq!(flow.initial_position, InitialPosition::StartOfFile);
    assert!(flow.framing.strip_cr);
    assert_eq!(flow.framing.partial_line_flush, None);
    assert_eq!(loaded.warnings.len(), 1, "a case-insensitive enum is warned about");
}

#[test]
fn agent_d_files_add_flows_and_a_broken_one_is_skipped_with_a_warning() {
    let extra = vec![
        (
            "agent.d/b.json".to_string(),
            r#"{"flows": [{"filePattern": "/b", "kinesisStream": "s2"}], "x": 1}"#.into(),
        ),
        ("agent.d/c.json".to_string(), "{ not json".to_string()),
    ];
    let loaded = parse("agent.json", SAMPLE, &extra, false).unwrap();
    assert_eq!(loaded.config.flows.len(), 2);
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(parse("agent.json", SAMPLE, &extra, true).is_err());
}

#[test]
fn the_producer_object_holds_kpl_settings() {
    let loaded = parse_ok(
        r#"{"producer": {"AggregationEnabled": false, "RecordTtl": 60000, "RateLimit": "90"},
        "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#,
    );
    let producer = &loaded.config.producer;
    assert_eq!(producer.aggregation(), kpl_tokio::AggregationPolicy::Off);
    assert_eq!(producer.record_ttl(), Duration::from_secs(60));
    assert_eq!(producer.rate_limit(), 90);
}

#[test]
fn cloudwatch_and_role_keys_are_read_with_the_agents_defaults() {
    let defaults = parse_ok(r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#).config;
    assert!(defaults.cloudwatch.emit_metrics, "the agent emits metrics by default");
    assert_eq!(defaults.cloudwatch.namespace, "AWSKinesisAgent");
    assert_eq!(defaults.cloudwatch.upload_interval, Duration::from_secs(30));
    assert_eq!((defaults.assume_role, defaults.sts_endpoint), (None, None));
    let loaded = parse_ok(
        r#"{"cloudwatch.emitMetrics": "no", "cloudwatch.endpoint": "http://127.0.0.1:1",
        "cloudwatch.metricsBufferTimeMillis": 500, "cloudwatch.tagInstance": true,
        "assumeRoleARN": "arn:aws:iam::1:role/x", "assumeRoleExternalId": "ext", "sts.endpoint": "sts.local",
        "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#,
    );
    let config = loaded.config;
    assert!(!config.cloudwatch.emit_metrics);
    assert_eq!(config.cloudwatch.endpoint.as_deref(), Some("http://127.0.0.1:1"));
    assert_eq!(config.cloudwatch.upload_interval, Duration::from_millis(500));
    assert_eq!(
        config.assume_role,
        Some(AssumeRole { arn: "arn:aws:iam::1:role/x".into(), external_id: Some("ext".into()) })
    );
    assert_eq!(config.sts_endpoint.as_deref(), Some("sts.local"));
    assert_eq!(loaded.warnings.len(), 1, "tagInstance has no effect: {:?}", loaded.warnings);
    let orphan = r#"{"assumeRoleExternalId": "ext", "flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#;
    assert!(matches!(parse("agent.json", orphan, &[], false), Err(ConfigError::Missing { .. })));
}

fn setting<'a>(settings: &'a [Setting], scope: &str, key: &str) -> &'a Setting {
    let found = settings.iter().find(|s| s.scope == scope && s.key == key);
    found.unwrap_or_else(|| panic!("no {scope} {key} in {settings:#?}"))
}

#[test]
fn every_key_read_is_reported_with_its_value_and_origin() {
    let extra = vec![(
        "agent.d/b.json".to_string(),
        r#"{"flows": [{"filePattern": "/b", "kinesisStream": "s2",
            "dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"]}]}],
            "x": 1}"#
            .into(),
    )];
    let config = parse("agent.json", SAMPLE, &extra, false).unwrap().config;
    let top = &config.effective;
    let ttl = setting(top, "", "checkpointTimeToLiveDays");
    assert_eq!((ttl.value.as_str(), &ttl.origin), ("7", &Origin::Default));
    let endpoint = setting(top, "", "kinesis.endpoint");
    assert_eq!(endpoint.value, "\"http://127.0.0.1:4567\"");
    assert_eq!(endpoint.origin, Origin::File("agent.json".into()));
    assert_eq!(setting(top, "", "cloudwatch.emitMetrics").value, "false");
    assert_eq!(setting(top, "", "producer.ShardMapWait").origin, Origin::Default);
    let ignored = setting(top, "", "x");
    assert_eq!(ignored.origin, Origin::File("agent.d/b.json".into()));
    assert!(ignored.note.as_deref().unwrap().contains("no effect"), "{ignored:?}");

    let flow = &config.flows[0].effective;
    let position = setting(flow, "flows[0]", "initialPosition");
    assert_eq!(
        (position.value.as_str(), &position.origin),
        ("START_OF_FILE", &Origin::File("agent.json".into()))
    );
    let age = setting(flow, "flows[0]", "maxBufferAgeMillis");
    assert_eq!(age.value, "1000", "a string read as the number it holds");
    assert!(age.note.as_deref().is_some_and(|note| note.contains("no effect")), "{age:?}");
    let oversize = setting(flow, "flows[0]", "oversizeRecordPolicy");
    assert_eq!((oversize.value.as_str(), &oversize.origin), ("TRUNCATE", &Origin::Default));
    assert_eq!(setting(flow, "flows[0]", "dataProcessingOptions").value, "[]");

    let other = &config.flows[1].effective;
    let stream = setting(other, "flows[0]", "kinesisStream");
    assert_eq!(stream.origin, Origin::File("agent.d/b.json".into()));
    let option = setting(other, "flows[0] dataProcessingOptions[0]", "optionName");
    assert_eq!(option.value, "\"CSVTOJSON\"");
    assert_eq!(setting(other, "flows[0] dataProcessingOptions[0]", "delimiter").origin, Origin::Default);
}

#[test]
fn flows_are_diffed_by_id_and_effective_settings() {
    let flows = |text: &str| parse_ok(text).config.flows;
    let old = flows(
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s"}, {"filePattern": "/b", "kinesisStream": "s"},
            {"filePattern": "/c", "kinesisStream": "s"}]}"#,
    );
    let new = flows(
        r#"{"flows": [{"filePattern": "/b", "kinesisStream": "s"},
            {"filePattern": "/a", "kinesisStream": "s", "dataProcessingOptions": [{"optionName": "ADDBRACKETS"}]},
            {"filePattern": "/d", "kinesisStream": "s"}]}"#,
    );
    let diff = diff_flows(&old, &new);
    assert_eq!(diff.added, ["kinesis:s:/d"]);
    assert_eq!(diff.removed, ["kinesis:s:/c"]);
    assert_eq!(diff.changed, ["kinesis:s:/a"]);
    assert_eq!(diff.unchanged, ["kinesis:s:/b"], "moved in the list, not changed");
    let same = diff_flows(&old, &old);
    assert_eq!(
        (same.added.len(), same.removed.len(), same.changed.len(), same.unchanged.len()),
        (0, 0, 0, 3)
    );
}

#[test]
fn firehose_flows_take_the_agents_keys_and_limits() {
    let loaded = parse_ok(
        r#"{"firehose.endpoint": "firehose.example", "flows": [
        {"filePattern": "/a", "deliveryStream": "fh", "kinesisStream": "ignored",
         "aggregatedRecordSizeBytes": 4096, "maxBufferAgeMillis": 2000, "maxBufferSizeRecords": 100,
         "retryInitialBackoffMillis": 50}]}"#,
    );
    let config = loaded.config;
    assert_eq!(config.firehose_endpoint.as_deref(), Some("firehose.example"));
    let flow = &config.flows[0];
    assert_eq!(flow.id(), "fh:fh:/a", "deliveryStream wins, as with the agent");
    assert_eq!(flow.destination.to_string(), "DeliveryStream:fh");
    let Destination::DeliveryStream { batching, .. } = &flow.destination else { panic!("{flow:?}") };
    assert_eq!(batching.aggregated_record_size, 4096);
    assert_eq!(batching.max_buffer_age, Duration::from_secs(2));
    assert_eq!((batching.max_batch_records, batching.max_batch_bytes), (100, 4 << 20));
    assert_eq!(batching.retry_initial, Duration::from_millis(50));
    assert_eq!(flow.framing.max_record_size, 1000 << 10, "1,000 KiB per Firehose record");
    for text in [
        r#"{"flows": [{"filePattern": "/a", "deliveryStream": "s", "aggregatedRecordSizeBytes": 1024001}]}"#,
        r#"{"flows": [{"filePattern": "/a", "deliveryStream": "s", "maxBufferSizeBytes": 4194305}]}"#,
        r#"{"flows": [{"filePattern": "/a", "deliveryStream": "s", "maxRecordSizeBytes": 1024001}]}"#,
    ] {
        assert!(parse("agent.json", text, &[], false).is_err(), "{text}");
    }
}

#[test]
fn secrets_are_never_shown_but_a_change_is_seen() {
    let with = |secret: &str| {
        let text = format!(
            r#"{{"awsAccessKeyId": "AKIDTEST", "awsSecretAccessKey": "{secret}",
                "producer": {{"ProxyPassword": "{secret}"}},
                "flows": [{{"filePattern": "/a", "kinesisStream": "s"}}]}}"#
        );
        parse_ok(&text).config.effective
    };
    let (first, second) = (with("wJalrXUtnFEMI/K7MDENG"), with("another-secret"));
    for key in ["awsSecretAccessKey", "producer.ProxyPassword"] {
        let shown = &setting(&first, "", key).value;
        assert!(shown.starts_with("(redacted, md5 ") && !shown.contains("wJalr"), "{key} = {shown}");
        assert_ne!(shown, &setting(&second, "", key).value, "a changed {key} shows as changed");
    }
    assert_eq!(setting(&first, "", "awsAccessKeyId").value, "\"AKIDTEST\"", "the key id is not a secret");
    let unset = parse_ok(r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s"}]}"#).config.effective;
    assert_eq!(setting(&unset, "", "awsSecretAccessKey").value, "(unset)");
}
