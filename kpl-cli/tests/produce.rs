//! `kpl produce` as a process against kinesalite, read back with GetRecords and deaggregated. The server
//! and the SDK helpers come from the workspace's test harness, `kpl_tests::kinesalite` (it installs
//! kinesalite from npm into `target/kinesalite` on first use).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{kpl_command, run, run_streaming, text};
use kpl_tests::kinesalite::{Kinesalite, client, read_stream};

async fn create_stream(server: &Kinesalite, name: &str, shards: i32) {
    kpl_tests::kinesalite::create_stream(&client(server.endpoint()), name, shards).await;
}

/// `kpl produce --region us-east-1 --endpoint-url <endpoint>` with no AWS configuration from the machine:
/// no credentials, no profile, no instance metadata.
fn produce_command(endpoint: &str) -> Command {
    let mut command = kpl_command();
    command
        .args(["produce", "--region", "us-east-1", "--endpoint-url", endpoint])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/nonexistent/kpl-cli-test/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/kpl-cli-test/credentials");
    for variable in [
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "RUST_LOG",
    ] {
        command.env_remove(variable);
    }
    command
}

/// The same with test credentials in the environment.
fn produce_with_credentials(server: &Kinesalite, args: &[&str]) -> Command {
    let mut command = produce_command(server.endpoint());
    command.env("AWS_ACCESS_KEY_ID", "AKIDTEST").env("AWS_SECRET_ACCESS_KEY", "secret").args(args);
    command
}

/// Runs `kpl produce` against `server`, with test credentials, `args` and `stdin`.
fn produce(server: &Kinesalite, args: &[&str], stdin: Vec<u8>) -> Output {
    run(&mut produce_with_credentials(server, args), &stdin)
}

/// Every user record in the stream, as a KCL consumer of each shard reads it: (partition key, data), sorted.
async fn stream_contents(server: &Kinesalite, stream: &str) -> Vec<(String, Vec<u8>)> {
    let mut users = Vec::new();
    for shard in read_stream(&client(server.endpoint()), stream).await {
        assert!(shard.users.rejected.is_empty(), "{}: {:?}", shard.shard_id, shard.users.rejected);
        users.extend(
            shard.users.records.into_iter().map(|user| (user.partition_key.to_string(), user.data.to_vec())),
        );
    }
    users.sort();
    users
}

#[tokio::test]
async fn every_line_reaches_the_stream_keyed_by_its_json_field() {
    let server = Kinesalite::start();
    create_stream(&server, "lines", 3).await;
    let n = 2_000;
    let input: String = (0..n).map(|i| format!("{{\"user\":\"user-{}\",\"n\":{i}}}\r\n", i % 37)).collect();
    let output = produce(&server, &["--stream", "lines", "--key-field", "user"], input.into_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    // One line of summary; nothing on standard error (no progress bar: it is not a terminal).
    let summary = text(&output.stdout);
    assert_eq!(summary.lines().count(), 1, "{summary}");
    let bytes: usize = (0..n).map(|i| format!("{{\"user\":\"user-{}\",\"n\":{i}}}", i % 37).len()).sum();
    let bytes = format!("{},{:03}", bytes / 1000, bytes % 1000);
    assert!(summary.starts_with(&format!("2,000 records ({bytes} bytes) written")), "{summary}");
    for figure in [
        " bytes) written to lines in ",
        " Kinesis record",
        " records each), ",
        "PutRecords request",
        "throttled Kinesis record",
    ] {
        assert!(summary.contains(figure), "{summary} lacks {figure:?}");
    }
    assert_eq!(text(&output.stderr), "");

    let users = stream_contents(&server, "lines").await;
    let mut expected: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            (format!("user-{}", i % 37), format!("{{\"user\":\"user-{}\",\"n\":{i}}}", i % 37).into_bytes())
        })
        .collect();
    expected.sort();
    assert_eq!(users.len(), expected.len());
    assert!(users == expected, "the stream does not hold exactly the lines put");
}

#[tokio::test]
async fn length_delimited_binary_records_keep_every_byte() {
    let server = Kinesalite::start();
    create_stream(&server, "frames", 2).await;
    let records: Vec<Vec<u8>> =
        (0..500u32).map(|i| (0..i % 300).map(|j| (i.wrapping_mul(7) + j) as u8).collect()).collect();
    let mut input = Vec::new();
    for record in &records {
        input.extend(u32::try_from(record.len()).unwrap().to_be_bytes());
        input.extend(record);
    }
    let output = produce(&server, &["--stream", "frames", "--framing", "length"], input);
    assert!(output.status.success(), "{}", text(&output.stderr));

    let users = stream_contents(&server, "frames").await;
    // Random partition keys: spread over keys, each record under its own.
    let keys: BTreeMap<&str, usize> = users.iter().fold(BTreeMap::new(), |mut keys, (key, _)| {
        *keys.entry(key.as_str()).or_default() += 1;
        keys
    });
    assert_eq!(keys.len(), records.len());
    let mut data: Vec<Vec<u8>> = users.into_iter().map(|(_, data)| data).collect();
    let mut expected = records;
    data.sort();
    expected.sort();
    assert!(data == expected, "the stream does not hold exactly the records put");
}

#[tokio::test]
async fn failed_records_are_grouped_by_error_and_fail_the_run() {
    let server = Kinesalite::start();
    create_stream(&server, "mixed", 1).await;

    // Record 2 is over 1 MiB: refused, the others written.
    let big = "x".repeat(1024 * 1024 + 10);
    let input = format!("first\n{big}\nthird\n");
    let output = produce(&server, &["--stream", "mixed", "--key", "k"], input.into_bytes());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr: Vec<&str> = text(&output.stderr).lines().collect();
    assert_eq!(
        stderr,
        [
            "1 record failed: record of 1048586 bytes (data alone) is over the 1048576 byte limit (record 2)",
            "kpl: 1 of 3 records failed"
        ]
    );
    let users = stream_contents(&server, "mixed").await;
    assert_eq!(users, [("k".to_owned(), b"first".to_vec()), ("k".to_owned(), b"third".to_vec())]);

    // 2,000 records failing alike are one line, with the first record numbers; --errors has them all.
    let errors = std::env::temp_dir().join(format!("kpl-cli-errors-{}.jsonl", std::process::id()));
    let input: String = (1..=2000)
        .map(|i| if i == 1000 { "{\"user\":\"u\"}\n".to_owned() } else { format!("{{\"n\":{i}}}\n") })
        .collect();
    let output = produce(
        &server,
        &["--stream", "mixed", "--key-field", "user", "--errors", errors.to_str().unwrap()],
        input.into_bytes(),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr: Vec<&str> = text(&output.stderr).lines().collect();
    assert_eq!(
        stderr,
        [
            "1,999 records failed: no field \"user\" for the partition key (records 1, 2, 3, 4, 5, ...)",
            "kpl: 1,999 of 2,000 records failed"
        ]
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&errors)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    std::fs::remove_file(&errors).unwrap();
    let numbers: Vec<u64> = lines.iter().map(|line| line["record"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (1..=2000).filter(|&i| i != 1000).collect::<Vec<u64>>());
    assert!(lines.iter().all(|line| line["error"] == "no field \"user\" for the partition key"));

    // The settings file is read, and what kpl does not use in it is warned about.
    let config = std::env::temp_dir().join(format!("kpl-cli-produce-{}.properties", std::process::id()));
    std::fs::write(&config, "RecordTtl = 3000\nLogLevel = info\nBogusSetting = 1\n").unwrap();
    let output = produce(
        &server,
        &["--stream", "mixed", "--key", "k", "--config", config.to_str().unwrap()],
        b"fourth\n".to_vec(),
    );
    std::fs::remove_file(&config).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("warning") && stderr.contains("BogusSetting"), "{stderr}");
    assert!(stderr.contains("LogLevel is not applied: logs go through `tracing`"), "{stderr}");
}

#[tokio::test]
async fn a_huge_line_is_refused_without_being_held_and_the_lines_around_it_are_written() {
    let server = Kinesalite::start();
    create_stream(&server, "huge", 1).await;
    const HUGE: usize = 64 * 1024 * 1024;
    for args in [&["--key", "k"][..], &["--key-field", "id"][..]] {
        let output =
            run_streaming(produce_with_credentials(&server, &["--stream", "huge"]).args(args), |input| {
                input.write_all(b"{\"id\":\"k\",\"v\":1}\n{\"id\":\"k\",\"v\":\"")?;
                let chunk = vec![b'x'; 1024 * 1024];
                for _ in 0..HUGE / chunk.len() {
                    input.write_all(&chunk)?;
                }
                input.write_all(b"\"}\n{\"id\":\"k\",\"v\":3}\n")
            });
        assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
        let stderr: Vec<&str> = text(&output.stderr).lines().collect();
        let size = HUGE + r#"{"id":"k","v":""}"#.len();
        assert_eq!(
            stderr,
            [
                format!(
                    "1 record failed: record of {size} bytes (data alone) is over the 1048576 byte limit (record 2)"
                ),
                "kpl: 1 of 3 records failed".to_owned()
            ],
            "{args:?}"
        );
    }
    let users = stream_contents(&server, "huge").await;
    let small = |v: u8| ("k".to_owned(), format!("{{\"id\":\"k\",\"v\":{v}}}").into_bytes());
    assert_eq!(users, [small(1), small(1), small(3), small(3)]);
}

#[tokio::test]
async fn json_keys_are_the_fields_text_and_bad_ones_fail_alone() {
    let server = Kinesalite::start();
    create_stream(&server, "by-field", 2).await;
    let lines = [
        r#"{"id": 12345678901234567890123}"#,
        r#"{"id": 12345678901234567890124}"#,
        r#"{"id":1.50}"#,
        r#"{"id":1e3}"#,
        r#"{"id":"a\u0031"}"#,
        r#"{"id":true}"#,
        r#"{"id":null}"#,
        r#"{"id":{"a":1}}"#,
        r#"{"id":[1]}"#,
    ];
    let input: String = lines.iter().map(|line| format!("{line}\n")).collect();
    let output = produce(&server, &["--stream", "by-field", "--key-field", "id"], input.into_bytes());
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr: Vec<&str> = text(&output.stderr).lines().collect();
    let refused = |kind: &str, record: u32| {
        format!(
            "1 record failed: field \"id\" is {kind}, which cannot be a partition key (a string, number or \
             boolean can) (record {record})"
        )
    };
    assert_eq!(
        stderr,
        [
            refused("null", 7),
            refused("an object", 8),
            refused("an array", 9),
            "kpl: 3 of 9 records failed".to_owned()
        ]
    );
    let keys: Vec<String> =
        stream_contents(&server, "by-field").await.into_iter().map(|(key, _)| key).collect();
    let mut expected = ["12345678901234567890123", "12345678901234567890124", "1.50", "1e3", "a1", "true"]
        .map(str::to_owned);
    expected.sort();
    assert_eq!(keys, expected);
}

#[tokio::test]
async fn explicit_hash_keys_from_a_field_pick_the_shard() {
    let server = Kinesalite::start();
    create_stream(&server, "ehk", 2).await;
    let max = u128::MAX.to_string();
    let input = format!("{{\"h\":\"0\",\"v\":\"low\"}}\n{{\"h\":{max},\"v\":\"high\"}}\n");
    let output =
        produce(&server, &["--stream", "ehk", "--key", "same", "--ehk-field", "h"], input.into_bytes());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let low = br#"{"h":"0","v":"low"}"#.to_vec();
    let high = format!("{{\"h\":{max},\"v\":\"high\"}}").into_bytes();
    let shards = read_stream(&client(server.endpoint()), "ehk").await;
    assert_eq!(shards.len(), 2);
    for shard in shards {
        let data: Vec<Vec<u8>> = shard.users.records.iter().map(|user| user.data.to_vec()).collect();
        let expected = if shard.range.contains(&0) { &low } else { &high };
        assert_eq!(data, std::slice::from_ref(expected), "{}", shard.shard_id);
    }
}

/// Runs `command` with endless input (until it stops reading) and returns its output and how long it took.
fn run_with_endless_input(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let output = run_streaming(command, |input| {
        let lines = "record\n".repeat(10_000);
        // Up to 1 GiB: a kpl that read before checking would still end, with a failed record per line.
        for _ in 0..(1 << 30) / lines.len() {
            input.write_all(lines.as_bytes())?;
        }
        Ok(())
    });
    (output, started.elapsed())
}

#[tokio::test]
async fn a_stream_that_cannot_be_written_fails_in_one_line_before_any_input_is_read() {
    let server = Kinesalite::start();
    let (output, took) =
        run_with_endless_input(&mut produce_with_credentials(&server, &["--stream", "missing"]));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kpl: cannot write to stream missing: ResourceNotFoundException: "),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");

    // No credentials anywhere.
    let mut command = produce_command(server.endpoint());
    let (output, took) = run_with_endless_input(command.args(["--stream", "missing"]));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("kpl: cannot write to stream missing: ") && stderr.contains("credentials"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");

    // Nothing listening at the endpoint.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut command = produce_command(&endpoint);
    command.env("AWS_ACCESS_KEY_ID", "AKIDTEST").env("AWS_SECRET_ACCESS_KEY", "secret");
    let (output, took) = run_with_endless_input(command.args(["--stream", "orders"]));
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("kpl: cannot write to stream orders: "), "{stderr}");
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn credentials_and_region_come_from_the_named_profile() {
    let server = Kinesalite::start();
    create_stream(&server, "profiled", 1).await;
    let dir = std::env::temp_dir().join(format!("kpl-cli-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), "[profile kpltest]\nregion = us-east-1\n").unwrap();
    std::fs::write(
        dir.join("credentials"),
        "[kpltest]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = secret\n",
    )
    .unwrap();
    let profiled = |args: &[&str]| {
        let mut command = kpl_command();
        command
            .args(["produce", "--endpoint-url", server.endpoint(), "--stream", "profiled", "--key", "p"])
            .args(args)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", dir.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", dir.join("credentials"))
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_SESSION_TOKEN");
        run(&mut command, b"from-profile\n")
    };
    // Without --profile: no region (the default profile has none).
    let output = profiled(&[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).starts_with("kpl: no AWS region"), "{}", text(&output.stderr));
    let output = profiled(&["--profile", "kpltest"]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(stream_contents(&server, "profiled").await, [("p".to_owned(), b"from-profile".to_vec())]);
}

#[tokio::test]
async fn records_failing_alike_after_the_check_are_one_line_each_kind() {
    let server = Kinesalite::start();
    create_stream(&server, "dies", 1).await;
    let config = std::env::temp_dir().join(format!("kpl-cli-dies-{}.properties", std::process::id()));
    std::fs::write(&config, "RecordTtl = 1000\n").unwrap();
    let mut command = produce_with_credentials(
        &server,
        &["--stream", "dies", "--key", "k", "--config", config.to_str().unwrap()],
    );
    let output = run_streaming(&mut command, move |input| {
        // Twice a pipe's buffer: once this is written, kpl is reading, past its check of the stream.
        input.write_all(&b"x\n".repeat(64 * 1024))?;
        // The server goes away: every record from here fails, with the same error or one of a few.
        drop(server);
        input.write_all(&b"y\n".repeat(2000))
    });
    std::fs::remove_file(&config).unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!((2..=5).contains(&lines.len()), "not grouped: {stderr}");
    let last = lines[lines.len() - 1];
    let failed: u64 = last
        .strip_prefix("kpl: ")
        .and_then(|rest| rest.split(" of ").next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap_or_else(|| panic!("{last}"));
    assert!(failed >= 2000, "{stderr}");
    let grouped: u64 = lines[..lines.len() - 1]
        .iter()
        .map(|line| line.split(" record").next().unwrap().replace(',', "").parse::<u64>().unwrap())
        .sum();
    assert_eq!(grouped, failed, "{stderr}");
    let expired = "failed: expired (RecordTtl) before it was written; last error: ";
    assert!(lines.iter().any(|line| line.contains(expired)), "{stderr}");
}

#[tokio::test]
async fn the_librarys_logs_follow_verbose_quiet_and_rust_log() {
    let server = Kinesalite::start();
    create_stream(&server, "logged", 2).await;
    let refreshed = "shard map refreshed";
    let by_default = produce(&server, &["--stream", "logged"], b"a\nb\n".to_vec());
    assert!(by_default.status.success(), "{}", text(&by_default.stderr));
    assert!(!text(&by_default.stderr).contains(refreshed), "{}", text(&by_default.stderr));
    let verbose = produce(&server, &["-v", "--stream", "logged"], b"a\nb\n".to_vec());
    let stderr = text(&verbose.stderr);
    assert!(verbose.status.success(), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.contains("INFO") && line.contains(refreshed) && line.contains("stream=logged")),
        "{stderr}"
    );
    let overridden =
        run(produce_with_credentials(&server, &["--stream", "logged", "-v"]).env("RUST_LOG", "off"), b"c\n");
    assert!(overridden.status.success(), "{}", text(&overridden.stderr));
    assert!(!text(&overridden.stderr).contains(refreshed), "{}", text(&overridden.stderr));
}
