//! `kpl agent`'s operations as processes: `check` printing the effective configuration, and a running
//! agent against kinesalite reloaded by SIGHUP (a flow added) and seen by `kpl agent status`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{kpl_command, run, text};
use kpl_tests::kinesalite::{Kinesalite, client, create_stream, read_stream};

#[test]
fn check_prints_every_key_with_its_value_and_origin() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("agent.d")).unwrap();
    let config = dir.path().join("agent.json");
    fs::write(
        &config,
        r#"{ // comments allowed
          "kinesis.region": "eu-west-1", "cloudwatch.emitMetrics": "no", "maxSendingThreads": 8,
          "flows": [{"filePattern": "/var/log/httpd/access*", "kinesisStream": "web",
            "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]}]}"#,
    )
    .unwrap();
    let extra = dir.path().join("agent.d/csv.json");
    fs::write(&extra, r#"{"flows": [{"filePattern": "/data/*.csv", "kinesisStream": "csv"}]}"#).unwrap();
    let output = run(
        kpl_command()
            .args(["agent", "check", "--config"])
            .arg(&config)
            .args(["--checkpoint-file", "/tmp/c.redb"]),
        b"",
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    let (file, extra) = (config.display().to_string(), extra.display().to_string());
    for line in [
        r#"checkpointFile = "/tmp/c.redb"  # command line"#.to_owned(),
        format!(r#"kinesis.region = "eu-west-1"  # {file}"#),
        format!("cloudwatch.emitMetrics = false  # {file}"),
        "cloudwatch.namespace = \"AWSKinesisAgent\"  # default".to_owned(),
        format!("maxSendingThreads = 8  # {file} (no effect: sending is the producer's"),
        "flow kinesis:web:/var/log/httpd/access*".to_owned(),
        format!("  dataProcessingOptions[0].logFormat = COMBINEDAPACHELOG  # {file}"),
        "  dataProcessingOptions[0].allowIPv6 = false  # default".to_owned(),
        "  initialPosition = END_OF_FILE  # default".to_owned(),
        format!(r#"  kinesisStream = "csv"  # {extra}"#),
        "# OK: 2 flows, 1 warning".to_owned(),
    ] {
        assert!(out.contains(&line), "no {line:?} in\n{out}");
    }
    // An invalid configuration: exit 1, the reason on standard error.
    fs::write(
        &config,
        r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s", "maxBufferAgeMillis": 5}]}"#,
    )
    .unwrap();
    let output = run(kpl_command().args(["agent", "check", "--config"]).arg(&config), b"");
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("maxBufferAgeMillis = 5"), "{}", text(&output.stderr));
}

fn agent_json(dir: &Path, endpoint: &str, flows: &[&str]) -> String {
    let flows: Vec<String> = flows
        .iter()
        .map(|name| {
            format!(
                r#"{{"filePattern": "{}/{name}/*.log", "kinesisStream": "logs", "initialPosition": "START_OF_FILE"}}"#,
                dir.display()
            )
        })
        .collect();
    format!(
        r#"{{"kinesis.endpoint": "{endpoint}", "kinesis.region": "us-east-1",
            "awsAccessKeyId": "AKIDTEST", "awsSecretAccessKey": "secret", "cloudwatch.emitMetrics": false,
            "checkpointFile": "{}/state/checkpoints.redb", "checkpointIntervalMillis": 100,
            "flows": [{}]}}"#,
        dir.display(),
        flows.join(", ")
    )
}

/// The lines in the stream, sorted.
async fn lines(server: &Kinesalite) -> Vec<String> {
    let mut lines: Vec<String> = read_stream(&client(server.endpoint()), "logs")
        .await
        .iter()
        .flat_map(|shard| {
            shard.users.records.iter().map(|user| String::from_utf8(user.data.to_vec()).unwrap())
        })
        .collect();
    lines.sort();
    lines
}

async fn wait_for_count(server: &Kinesalite, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lines = lines(server).await;
        if lines.len() >= count || Instant::now() > deadline {
            return lines;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn signal(agent: &Child, name: &str) {
    assert!(Command::new("kill").args([name, &agent.id().to_string()]).status().unwrap().success());
}

fn status(config: &Path) -> String {
    let output = run(kpl_command().args(["agent", "status", "--config"]).arg(config), b"");
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout).to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_adds_a_flow_and_status_shows_the_running_agents_files() {
    let server = Kinesalite::start();
    create_stream(&client(server.endpoint()), "logs", 1).await;
    let dir = tempfile::tempdir().unwrap();
    for sub in ["a", "b"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let config = dir.path().join("agent.json");
    fs::write(&config, agent_json(dir.path(), server.endpoint(), &["a"])).unwrap();
    let a: String = (0..100).map(|n| format!("a-{n:03}\n")).collect();
    fs::write(dir.path().join("a/app.log"), &a).unwrap();
    let log = dir.path().join("agent.log");
    let mut agent = kpl_command()
        .args(["agent", "--config"])
        .arg(&config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    assert_eq!(wait_for_count(&server, 100).await.len(), 100, "{}", fs::read_to_string(&log).unwrap());

    // Flow b added; its file, written before the reload, is read from its start.
    let b: String = (0..50).map(|n| format!("b-{n:03}\n")).collect();
    fs::write(dir.path().join("b/other.log"), &b).unwrap();
    fs::write(&config, agent_json(dir.path(), server.endpoint(), &["a", "b"])).unwrap();
    signal(&agent, "-HUP");
    let lines = wait_for_count(&server, 150).await;
    let logs = fs::read_to_string(&log).unwrap();
    let mut expected: Vec<String> = a.lines().chain(b.lines()).map(|line| format!("{line}\n")).collect();
    expected.sort();
    assert_eq!(lines, expected, "every line once\n{logs}");
    assert!(logs.contains("configuration reloaded"), "{logs}");

    // status: both files, read and checkpointed to their end.
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = loop {
        let shown = status(&config);
        let done = |path: &str, size: usize| {
            shown.lines().any(|line| {
                line.ends_with(path)
                    && line.split_whitespace().filter(|cell| *cell == size.to_string()).count() >= 3
            })
        };
        if (done("a/app.log", a.len()) && done("b/other.log", b.len())) || Instant::now() > deadline {
            break shown;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(shown.starts_with(&format!("running (pid {})", agent.id())), "{shown}");
    for (path, size) in [("a/app.log", a.len()), ("b/other.log", b.len())] {
        let line =
            shown.lines().find(|line| line.ends_with(path)).unwrap_or_else(|| panic!("{path} in {shown}"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        // read, checkpoint, saved, in flight, size, path
        assert_eq!(
            cells[..5],
            [size.to_string().as_str(), &size.to_string(), &size.to_string(), "0", &size.to_string()],
            "{shown}"
        );
    }

    signal(&agent, "-TERM");
    assert!(agent.wait().unwrap().success());
    let stopped = status(&config);
    assert!(stopped.starts_with("not running: checkpoints from the store"), "{stopped}");
    assert_eq!(
        stopped.lines().filter(|line| line.starts_with("  ") && line.ends_with(".log")).count(),
        2,
        "{stopped}"
    );
}
