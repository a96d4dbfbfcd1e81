//! The processors' cost per record, against a baseline in the same run: the baseline is the least any
//! converter does (the record decoded as UTF-8 and copied into new bytes). Prints records/s of each chain
//! and its ratio to the baseline.
//!
//! `cargo bench -p kpl-agent --bench processors -- [RECORDS]` (default 200,000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use kpl_agent::config::parse;
use kpl_agent::core::{FileKey, Processor};

const CHAINS: [(&str, &str, &str); 6] = [
    ("SINGLELINE", r#"[{"optionName": "SINGLELINE"}]"#, "  at com.example.Foo.bar(Foo.java:42)\n"),
    (
        "CSVTOJSON",
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["id", "user", "city", "zip", "note"]}]"#,
        "12345,ada,Paris,75001,first order of the day\n",
    ),
    (
        "CSVTOJSON rfc4180",
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["id", "user", "city", "zip", "note"], "rfc4180": true}]"#,
        "12345,ada,\"Paris, France\",75001,first order of the day\n",
    ),
    (
        "LOGTOJSON COMBINEDAPACHELOG",
        r#"[{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"}]"#,
        "10.1.2.3 - - [03/Nov/2026:14:05:01 +0100] \"GET /index.html HTTP/1.1\" 200 5120 \"-\" \"curl/8.5.0\"\n",
    ),
    (
        "LOGTOJSON SYSLOG",
        r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}]"#,
        "Nov  3 14:05:01 web7 sshd[4021]: Accepted publickey for deploy from 10.1.2.3 port 52114 ssh2\n",
    ),
    (
        "ADDMETADATA",
        r#"[{"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"site": "eu-1", "tier": 2}}]"#,
        "{\"msg\": \"an application event\", \"level\": \"info\"}\n",
    ),
];

fn chain(options: &str) -> Processor {
    let text = format!(
        r#"{{"flows": [{{"filePattern": "/logs/*.log", "kinesisStream": "s", "dataProcessingOptions": {options}}}]}}"#
    );
    parse("agent.json", &text, &[], true).unwrap().config.flows[0].processor.clone()
}

/// Records per second of `work` over `records` records.
fn rate(records: usize, mut work: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    for n in 0..records {
        work(n);
    }
    records as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let records: usize = std::env::args().nth(1).and_then(|arg| arg.parse().ok()).unwrap_or(200_000);
    let now = SystemTime::now();
    println!("{records} records per chain");
    for (name, options, line) in CHAINS {
        let data = Bytes::from_static(line.as_bytes());
        let baseline = rate(records, |_| {
            black_box(Bytes::from(String::from_utf8_lossy(black_box(&data)).into_owned()));
        });
        let mut chain = chain(options);
        let processed = rate(records, |n| {
            black_box(chain.process(FileKey(1), n as u64 + 1, data.clone(), now));
        });
        assert_eq!(chain.stats().converted, records as u64, "{name}: every record converted");
        println!(
            "{name:<28} {processed:>12.0} records/s   baseline {baseline:>12.0} records/s   ratio {:.3}",
            processed / baseline
        );
    }
}
