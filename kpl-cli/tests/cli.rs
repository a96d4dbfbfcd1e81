//! `kpl bench`, `kpl deagg` and argument errors, run as processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{kpl_command, run, text};
use serde_json::{Value, json};

/// Runs `kpl args...` with `stdin`.
fn kpl(args: &[&str], stdin: &[u8]) -> Output {
    run(kpl_command().args(args), stdin)
}

/// Asserts `kpl` failed with `code` and said why in one line, `kpl: ...` containing `expected`.
fn assert_one_line_error(output: &Output, code: i32, expected: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("kpl: ") && stderr.contains(expected), "{stderr:?} lacks {expected:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("Error {"), "{stderr:?}");
}

#[test]
fn bench_reports_a_sane_summary_as_json() {
    for extra in [
        &[][..],
        &["--keys", "explicit", "--aggregation", "off", "--shard-limits", "off", "--concurrency", "1"],
    ] {
        let mut args = vec!["bench", "--records", "2000", "--json"];
        args.extend(extra);
        let output = kpl(&args, b"");
        assert!(output.status.success(), "{args:?}: {}", text(&output.stderr));
        let report: Value = serde_json::from_slice(&output.stdout).expect("the summary is JSON");
        let number = |field: &str| report[field].as_f64().unwrap_or_else(|| panic!("no {field}: {report}"));
        assert_eq!(report["records"], 2000);
        assert_eq!(report["failed"], 0);
        assert!(number("records_per_second") > 0.0, "{report}");
        assert!(number("megabytes_per_second") > 0.0, "{report}");
        assert!(number("requests") >= 1.0 && number("kinesis_records_per_request") >= 1.0, "{report}");
        let per_kinesis_record = number("user_records_per_kinesis_record");
        if extra.is_empty() {
            assert!(per_kinesis_record > 1.0, "aggregation is on: {report}");
        } else {
            assert_eq!(per_kinesis_record, 1.0, "aggregation is off: {report}");
        }
        let latency = &report["latency_ms"];
        let (p50, p99, max) = (
            latency["p50"].as_f64().unwrap(),
            latency["p99"].as_f64().unwrap(),
            latency["max"].as_f64().unwrap(),
        );
        assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{latency}");
        assert!(report["peak_memory_bytes"].as_u64().unwrap() > 0, "{report}");

        // Percentiles in order, from the histogram.
        let percentiles: Vec<f64> =
            ["p50", "p90", "p99", "p99.9", "max"].iter().map(|p| latency[p].as_f64().unwrap()).collect();
        assert!(percentiles.windows(2).all(|pair| pair[0] <= pair[1]), "{latency}");
        // Every record has the same size: the peak bytes outstanding is the peak records times 100.
        let peak = report["peak_outstanding_records"].as_u64().unwrap();
        assert!(peak >= 1, "{report}");
        assert_eq!(report["peak_outstanding_bytes"].as_u64(), Some(peak * 100), "{report}");
        // The per-shard table adds up to the totals.
        let shards = report["per_shard"].as_array().unwrap();
        assert_eq!(shards.len(), 4);
        let sum = |field: &str| shards.iter().map(|shard| shard[field].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum("user_records"), 2000);
        assert_eq!(sum("user_bytes"), 2000 * 100);
        let kinesis_records = (number("user_records_per_kinesis_record").recip() * 2000.0).round() as u64;
        assert_eq!(sum("kinesis_records"), kinesis_records, "{report}");
        assert!(shards.iter().all(|shard| shard["user_records"].as_u64().unwrap() > 0), "{report}");
        let utilisation = report["utilisation_percent"]["bytes"].as_f64().unwrap();
        let expected = sum("kinesis_bytes") as f64 / (4.0 * 1048576.0 * number("seconds").max(1.0)) * 100.0;
        assert!((utilisation - expected).abs() < 1e-6 * expected.max(1.0), "{utilisation} {expected}");
        assert!(report["bottleneck"]["kind"].is_string() && report["bottleneck"]["detail"].is_string());
        assert_eq!(report["producer_settings"]["CollectionMaxCount"], 500);
    }
}

#[test]
fn bench_shows_the_saturated_shard_of_a_hot_key() {
    let output = kpl(&["bench", "--records", "20000", "--keys", "hot", "--hot-share", "0.9", "--json"], b"");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let shards = report["per_shard"].as_array().unwrap();
    let hot = shards.iter().max_by_key(|shard| shard["user_records"].as_u64().unwrap()).unwrap();
    assert!(hot["user_records"].as_u64().unwrap() >= 18_000, "{report}");
    assert_eq!(report["bottleneck"]["kind"], "shard-quota", "{report}");
    let detail = report["bottleneck"]["detail"].as_str().unwrap();
    assert!(detail.contains(hot["shard_id"].as_str().unwrap()), "{detail}");
    // The hot shard did most of the stream's work, at most its quota.
    let hot_bytes = hot["utilisation_percent"]["bytes"].as_f64().unwrap();
    assert!(hot_bytes > 3.0 * report["utilisation_percent"]["bytes"].as_f64().unwrap(), "{report}");
}

#[test]
fn bench_offers_an_open_loop_rate_and_writes_a_timeline_and_a_plot() {
    let dir = std::env::temp_dir().join(format!("kpl-cli-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, svg) = (dir.join("run.csv"), dir.join("run.svg"));
    let output = kpl(
        &[
            "bench",
            "--rate",
            "2000",
            "--duration",
            "3",
            "--shards",
            "2",
            "--json",
            "--timeline",
            csv.to_str().unwrap(),
            "--plot",
            svg.to_str().unwrap(),
        ],
        b"",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    // 2,000 records/s for 3 s, each task on its own schedule.
    let records = report["records"].as_u64().unwrap();
    assert!((5990..=6000).contains(&records), "{report}");
    assert_eq!(report["offered_records_per_second"], 2000);
    assert_eq!(report["bottleneck"]["kind"], "none", "{report}");

    let timeline = std::fs::read_to_string(&csv).unwrap();
    let svg = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let mut rows = timeline.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    for column in ["time_s", "records_per_s", "latency_p99_ms", "outstanding_records", "outstanding_bytes"] {
        assert!(header.contains(&column), "{header:?}");
    }
    let rows: Vec<Vec<f64>> =
        rows.map(|row| row.split(',').map(|cell| cell.parse().unwrap()).collect()).collect();
    assert!((3..=5).contains(&rows.len()), "{timeline}");
    // The rates over each interval add up to the records.
    let (time, rate) = (0, 1);
    let mut previous = 0.0;
    let completed: f64 = rows
        .iter()
        .map(|row| {
            let span = row[time] - previous;
            previous = row[time];
            row[rate] * span
        })
        .sum();
    assert!((completed - records as f64).abs() < 1.0, "{completed} of {records}: {timeline}");
    assert!(svg.starts_with("<svg") && svg.contains("Throughput") && svg.contains("Latency"), "{svg:.200}");
}

#[test]
fn bench_uses_a_kpl_properties_file() {
    let config = std::env::temp_dir().join(format!("kpl-cli-bench-{}.properties", std::process::id()));
    std::fs::write(&config, "AggregationMaxCount = 10\nRecordMaxBufferedTime = 50\nShardMapWait = Hold\n")
        .unwrap();
    let path = config.to_str().unwrap();
    let output = kpl(&["bench", "--records", "2000", "--json", "--config", path], b"");
    let both = kpl(&["bench", "--config", path, "--aggregation", "off"], b"");
    std::fs::remove_file(&config).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let settings = &report["producer_settings"];
    assert_eq!(settings["from"], path);
    assert_eq!(settings["AggregationMaxCount"], 10);
    assert_eq!(settings["RecordMaxBufferedTime"], 50);
    assert_eq!(settings["ShardMapWait"], "Hold");
    let per_kinesis_record = report["user_records_per_kinesis_record"].as_f64().unwrap();
    assert!(per_kinesis_record > 1.0 && per_kinesis_record <= 10.0, "{report}");
    assert_one_line_error(&both, 2, "cannot be used with");
}

#[test]
fn bench_prints_a_text_summary() {
    let output = kpl(&["bench", "--records", "500", "--keys", "hot", "--shards", "2"], b"");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let summary = text(&output.stdout);
    for expected in [
        "500 records of 100 bytes, hot keys, 2 shards",
        "user records/s",
        "% of bytes (2 × 1 MiB/s)",
        "bottleneck",
        "p50",
        "p99.9",
        "peak memory",
        "RecordMaxBufferedTime 100 ms",
        "Kinesis records",
        "shardId-000000000000",
        "shardId-000000000001",
    ] {
        assert!(summary.contains(expected), "{summary} lacks {expected:?}");
    }
    // No progress bar: standard error is not a terminal.
    assert_eq!(text(&output.stderr), "");
}

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden").join(format!("{name}.hex"));
    let hex = std::fs::read_to_string(&path).unwrap();
    let hex = hex.trim().as_bytes();
    let digit = |c: u8| (c as char).to_digit(16).unwrap() as u8;
    hex.chunks_exact(2).map(|pair| digit(pair[0]) << 4 | digit(pair[1])).collect()
}

const SEQUENCE_NUMBER: &str = "49590338271490256608559692538361571095921575989136588898";

/// What `aws kinesis get-records` prints for a shard holding `blob`, with the outer keys the KPL uses.
fn get_records_json(blob: &[u8]) -> Vec<u8> {
    let page = json!({
        "Records": [{
            "SequenceNumber": SEQUENCE_NUMBER,
            "ApproximateArrivalTimestamp": "2024-05-01T12:00:00.000000+00:00",
            "Data": STANDARD.encode(blob),
            "PartitionKey": "a",
        }],
        "NextShardIterator": "AAAA",
        "MillisBehindLatest": 0,
    });
    page.to_string().into_bytes()
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout).lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
}

fn user(sub: u64, partition_key: &str, explicit_hash_key: Option<String>, data: Value) -> Value {
    json!({
        "sequence_number": SEQUENCE_NUMBER,
        "sub_sequence_number": sub,
        "partition_key": partition_key,
        "explicit_hash_key": explicit_hash_key,
        "aggregated": true,
        "approximate_arrival_timestamp": "2024-05-01T12:00:00.000Z",
        "data": data,
    })
}

#[test]
fn deagg_prints_the_user_records_of_golden_aggregates() {
    // The inputs of tests/golden/explicit_hash_keys.hex (see kpl-tests' golden_vectors.rs).
    let output = kpl(&["deagg", "--utf8"], &get_records_json(&golden("explicit_hash_keys")));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let max = u128::MAX.to_string();
    let half = (1u128 << 127).to_string();
    let expected = [
        ("e1", Some("0"), "zero"),
        ("e2", Some(max.as_str()), "max"),
        ("e3", Some(half.as_str()), "half"),
        ("e4", Some("0"), "zero again"),
        ("e5", None, "none"),
        ("e6", Some(max.as_str()), "max again"),
    ];
    let expected: Vec<Value> = expected
        .iter()
        .enumerate()
        .map(|(i, (key, ehk, data))| user(i as u64, key, ehk.map(str::to_owned), json!(data)))
        .collect();
    assert_eq!(lines(&output.stdout), expected);

    // 300 records in two-byte table indices, data as base64.
    let output = kpl(&["deagg"], &get_records_json(&golden("hundreds_of_records")));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let expected: Vec<Value> = (0..300u32)
        .map(|i| {
            let key = format!("pk-{:04}", i % 150);
            let ehk = (i % 3 != 0).then(|| (u128::from(i) * 1_000_003 + (1 << 100)).to_string());
            let data: Vec<u8> =
                (0..(i % 50) as usize).map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8)).collect();
            user(u64::from(i), &key, ehk, json!(STANDARD.encode(data)))
        })
        .collect();
    assert_eq!(lines(&output.stdout), expected);
}

#[test]
fn deagg_reads_raw_records_and_filters_and_checks_like_the_kcl() {
    let blob = golden("one_record_with_explicit_hash_key");
    let output = kpl(&["deagg", "--raw"], &blob);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let mut expected = user(0, "only", Some("42".to_owned()), json!(""));
    expected["sequence_number"] = Value::Null;
    expected.as_object_mut().unwrap().remove("approximate_arrival_timestamp");
    assert_eq!(lines(&output.stdout), [expected]);

    // Hash keys 0 and 2^128-1 are outside 1..100: the KCL drops the aggregate, which is no error.
    let output = kpl(&["deagg", "--hash-range", "1..100"], &get_records_json(&golden("explicit_hash_keys")));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stdout.is_empty());
    assert!(
        text(&output.stderr).contains(&format!("record {SEQUENCE_NUMBER}: ")),
        "{}",
        text(&output.stderr)
    );

    // A broken digest: passed on unchanged as the KCL does, an error with --strict.
    let mut broken = golden("distinct_keys");
    *broken.last_mut().unwrap() ^= 1;
    let output = kpl(&["deagg"], &get_records_json(&broken));
    assert!(output.status.success(), "{}", text(&output.stderr));
    let delivered = lines(&output.stdout);
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0]["aggregated"], false);
    assert_eq!(delivered[0]["data"], STANDARD.encode(&broken));
    let output = kpl(&["deagg", "--strict"], &get_records_json(&broken));
    assert_eq!(output.status.code(), Some(1));
    let stderr: Vec<&str> = text(&output.stderr).lines().collect();
    assert!(stderr[0].starts_with(&format!("record {SEQUENCE_NUMBER}: ")), "{stderr:?}");
    assert_eq!(stderr[1..], ["kpl: 1 Kinesis records could not be deaggregated"]);
}

#[test]
fn errors_are_one_line_with_exit_code_1_or_2_for_usage() {
    assert_one_line_error(&kpl(&["bench", "--records", "many"], b""), 2, "invalid value 'many'");
    assert_one_line_error(&kpl(&["bench", "--shards", "0"], b""), 2, "--shards");
    assert_one_line_error(&kpl(&["bench", "--hot-share", "2"], b""), 2, "not a share between 0 and 1");
    assert_one_line_error(&kpl(&["produce"], b""), 2, "--stream");
    assert_one_line_error(
        &kpl(&["produce", "--stream", "s", "--key", "k", "--key-field", "f"], b""),
        2,
        "cannot be used with",
    );
    assert_one_line_error(&kpl(&["deagg", "--hash-range", "9..1"], b""), 2, "9 is after 1");
    assert_one_line_error(&kpl(&["launch"], b""), 2, "unrecognized subcommand");
    assert_one_line_error(
        &kpl(&["deagg"], b"{\"Records\": 3}"),
        1,
        "document 1 is not get-records output or a Lambda Kinesis event",
    );
    assert_one_line_error(&kpl(&["deagg", "--utf8"], &get_records_json(&[0xff, 0xfe])), 1, "is not UTF-8");
    assert_one_line_error(
        &kpl(&["deagg", "/nonexistent/records.json"], b""),
        1,
        "cannot read /nonexistent/records.json",
    );
    let config = std::env::temp_dir().join(format!("kpl-cli-test-{}.properties", std::process::id()));
    std::fs::write(&config, "RecordTtl = 10\n").unwrap();
    let output = kpl(
        &["produce", "--stream", "s", "--region", "us-east-1", "--config", config.to_str().unwrap()],
        b"",
    );
    std::fs::remove_file(&config).unwrap();
    assert_one_line_error(&output, 1, "RecordTtl");

    let help = kpl(&["--help"], b"");
    assert!(help.status.success());
    assert!(text(&help.stdout).contains("Examples:"));
    for command in ["bench", "produce", "deagg"] {
        let help = kpl(&[command, "--help"], b"");
        assert!(help.status.success() && text(&help.stdout).contains("Examples:"), "{command}");
    }
}
