//! Properties of the processors on arbitrary records: no panic, every record accounted for in the
//! counters, and what a JSON converter sends is one JSON object and a `\n` (or the raw record, counted).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::SystemTime;

use bytes::Bytes;
use kpl_agent::config::parse;
use kpl_agent::core::{Disposition, FileKey, Processed, Processor};
use proptest::prelude::*;

const JSON_CHAINS: [&str; 6] = [
    r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b", "c"], "delimiter": "[,;]"}]"#,
    r#"[{"optionName": "CSVTOJSON", "headerRow": true, "rfc4180": true}]"#,
    r#"[{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG", "allowIPv6": true}]"#,
    r#"[{"optionName": "LOGTOJSON", "logFormat": "RFC5424SYSLOG"}]"#,
    r#"[{"optionName": "SINGLELINE"}, {"optionName": "ADDMETADATA", "metadata": {"k": [1, "v"]}, "timestamp": true}]"#,
    r#"[{"optionName": "ADDMETADATA", "jsonFormat": "PRETTYPRINT"}, {"optionName": "ADDEC2METADATA"}]"#,
];

fn chain(options: &str) -> Processor {
    let text = format!(
        r#"{{"flows": [{{"filePattern": "/l/*.log", "kinesisStream": "s", "dataProcessingOptions": {options}}}]}}"#
    );
    parse("agent.json", &text, &[], true).unwrap().config.flows[0].processor.clone()
}

/// Records of log-like bytes: printable text with quotes, brackets, delimiters, line breaks and a few
/// invalid UTF-8 bytes.
fn record() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        "[ -~]{0,12}".prop_map(String::into_bytes),
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"-".to_vec()),
        Just(b"[pid 1]".to_vec()),
        Just("é€".as_bytes().to_vec()),
        Just(vec![0xff, 0xc3]),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn every_record_is_converted_or_accounted_for(records in prop::collection::vec(record(), 1..20)) {
        for options in JSON_CHAINS {
            let mut chain = chain(options);
            for (index, data) in records.iter().enumerate() {
                let processed = chain.process(FileKey(1), index as u64, Bytes::from(data.clone()), SystemTime::now());
                match processed {
                    Processed::Send(sent) => {
                        let text = std::str::from_utf8(&sent).unwrap();
                        prop_assert!(text.ends_with('\n'), "{options}: {text:?}");
                        let value: serde_json::Value = serde_json::from_str(text).unwrap();
                        prop_assert!(value.is_object(), "{options}: {text:?}");
                    }
                    Processed::Skip => prop_assert_eq!(index, 0, "only a header row is consumed"),
                    Processed::Unconverted(unconverted) => {
                        prop_assert_eq!(unconverted.record.as_ref(), data.as_slice());
                        prop_assert_ne!(unconverted.disposition, Disposition::DeadLetter);
                    }
                }
            }
            let stats = chain.stats();
            let total = stats.converted + stats.consumed + stats.dropped + stats.sent_raw + stats.dead_lettered;
            prop_assert_eq!(total, records.len() as u64, "{}", options);
        }
    }
}
