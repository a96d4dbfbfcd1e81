//! Golden tests of the processors (`dataProcessingOptions`), read from `agent.json` as the agent's users
//! write them: every behaviour of `shared/reference/kinesis-agent.md` (b), in our own test data, and our
//! opt-in fixes. Files under `tests/data/processing/` hold whole logs and the JSON lines expected from
//! them (a dropped line is absent, as in the agent's `apache_test_log_json`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kpl_agent::config::{ConfigError, parse};
use kpl_agent::core::{Disposition, FileKey, Processed, ProcessingStats, Processor};

const FILE: FileKey = FileKey(1);
/// 2026-11-03T14:05:01.042Z.
const NOW_MS: u64 = 1_793_714_701_042;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(NOW_MS)
}

fn flow_with(options: &str, extra: &str) -> Result<Processor, ConfigError> {
    let text = format!(
        r#"{{"flows": [{{"filePattern": "/logs/*.log", "kinesisStream": "s", {extra}
            "dataProcessingOptions": {options}}}]}}"#
    );
    parse("agent.json", &text, &[], true).map(|loaded| loaded.config.flows[0].processor.clone())
}

fn chain(options: &str) -> Processor {
    flow_with(options, "").unwrap_or_else(|error| panic!("{options}: {error}"))
}

fn refused(options: &str) -> String {
    match flow_with(options, "") {
        Ok(_) => panic!("accepted: {options}"),
        Err(error) => error.to_string(),
    }
}

/// Processes `record` as a record in the middle of a file (not a header row).
fn process(chain: &mut Processor, record: &str) -> Processed {
    chain.process(FILE, 100, Bytes::copy_from_slice(record.as_bytes()), now())
}

fn sent(chain: &mut Processor, record: &str) -> String {
    match process(chain, record) {
        Processed::Send(data) => String::from_utf8(data.to_vec()).unwrap(),
        other => panic!("{record:?} was not converted: {other:?}"),
    }
}

fn dropped(chain: &mut Processor, record: &str) {
    match process(chain, record) {
        Processed::Unconverted(unconverted) => {
            assert_eq!(unconverted.disposition, Disposition::Drop, "{record:?}");
            assert_eq!(unconverted.record, record.as_bytes(), "the raw record is handed back");
        }
        other => panic!("{record:?} was not dropped: {other:?}"),
    }
}

fn log(format: &str) -> Processor {
    chain(&format!(r#"[{{"optionName": "LOGTOJSON", "logFormat": "{format}"}}]"#))
}

/// Each line of `tests/data/processing/{input}` through `chain`: the JSON lines sent, in order.
fn golden(chain: &mut Processor, input: &str, expected: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/processing/");
    let input = std::fs::read_to_string(format!("{dir}{input}")).unwrap();
    let expected = std::fs::read_to_string(format!("{dir}{expected}")).unwrap();
    let out: String = input
        .split_inclusive('\n')
        .filter_map(|line| match process(chain, line) {
            Processed::Send(data) => Some(String::from_utf8(data.to_vec()).unwrap()),
            _ => None,
        })
        .collect();
    assert_eq!(out, expected);
}

#[test]
fn singleline_trims_like_java_and_joins_with_nothing() {
    let mut chain = chain(r#"[{"optionName": "SINGLELINE"}]"#);
    assert_eq!(sent(&mut chain, "  {\n    \"a\": 1,\r\n\t\"b\": 2\n}\n\n\n"), "{\"a\": 1,\"b\": 2}\n");
    assert_eq!(sent(&mut chain, "one line"), "one line\n");
    assert_eq!(sent(&mut chain, "a\n\n b\n"), "ab\n", "an empty middle piece stays (empty)");
}

#[test]
fn singleline_options_keep_whitespace_and_escape_new_lines() {
    let mut no_trim = chain(r#"[{"optionName": "SINGLELINE", "parseOptions": ["NO_TRIM"]}]"#);
    assert_eq!(sent(&mut no_trim, "  a \r\n\tb\n"), "  a \r\tb\n");
    let mut escape = chain(r#"[{"optionName": "SINGLELINE", "parseOptions": ["ESCAPE_NEW_LINE"]}]"#);
    assert_eq!(sent(&mut escape, "at x\n   at y\n\n at z\n"), "at x\\nat y\\n\\nat z\n");
    let mut both = chain(r#"[{"optionName": "SINGLELINE", "parseOptions": ["NO_TRIM", "ESCAPE_NEW_LINE"]}]"#);
    assert_eq!(sent(&mut both, " a\n b \n"), " a\\n b \n");
    assert!(refused(r#"[{"optionName": "SINGLELINE", "parseOptions": ["NOTRIM"]}]"#).contains("NOTRIM"));
}

#[test]
fn csv_columns_go_to_names_missing_and_trailing_empty_ones_are_null_extra_ones_ignored() {
    let mut chain =
        chain(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["id", "name", "city", "zip"]}]"#);
    assert_eq!(
        sent(&mut chain, "7, Ada ,Paris,75001\n"),
        "{\"id\":\"7\",\"name\":\" Ada \",\"city\":\"Paris\",\"zip\":\"75001\"}\n",
        "whitespace is kept"
    );
    assert_eq!(sent(&mut chain, "7,Ada\n"), "{\"id\":\"7\",\"name\":\"Ada\",\"city\":null,\"zip\":null}\n");
    assert_eq!(
        sent(&mut chain, "7,,Paris,,\n"),
        "{\"id\":\"7\",\"name\":\"\",\"city\":\"Paris\",\"zip\":null}\n",
        "a middle empty column is empty, a trailing one is missing (Java's split)"
    );
    assert_eq!(sent(&mut chain, ",,,\n"), "{\"id\":null,\"name\":null,\"city\":null,\"zip\":null}\n");
    assert_eq!(
        sent(&mut chain, "1,2,3,4,5,6\n"),
        "{\"id\":\"1\",\"name\":\"2\",\"city\":\"3\",\"zip\":\"4\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "1,2,3,4\r\n"),
        "{\"id\":\"1\",\"name\":\"2\",\"city\":\"3\",\"zip\":\"4\\r\"}\n",
        "only \\n is stripped: a CRLF file keeps \\r in the last field"
    );
    assert_eq!(
        sent(&mut chain, "1,multi\nline,3,4\n"),
        "{\"id\":\"1\",\"name\":\"multi\\nline\",\"city\":\"3\",\"zip\":\"4\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "1,\"Paris, France\",3\n"),
        "{\"id\":\"1\",\"name\":\"\\\"Paris\",\"city\":\" France\\\"\",\"zip\":\"3\"}\n",
        "no quoting: a quoted delimiter breaks the row"
    );
}

#[test]
fn csv_delimiter_is_a_java_regex() {
    let mut tab =
        chain(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "delimiter": "\\t"}]"#);
    assert_eq!(sent(&mut tab, "x\t y\n"), "{\"a\":\"x\",\"b\":\" y\"}\n");
    let mut pipe =
        chain(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b", "c"], "delimiter": "|"}]"#);
    assert_eq!(
        sent(&mut pipe, "ab|c\n"),
        "{\"a\":\"a\",\"b\":\"b\",\"c\":\"|\"}\n",
        "\"|\" splits everywhere"
    );
    let mut escaped =
        chain(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "delimiter": "\\s*;\\s*"}]"#);
    assert_eq!(sent(&mut escaped, "x ; y\n"), "{\"a\":\"x\",\"b\":\"y\"}\n");
    assert!(
        refused(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimiter": "("}]"#)
            .contains("delimiter")
    );
    assert!(refused(r#"[{"optionName": "CSVTOJSON"}]"#).contains("customFieldNames is required"));
}

#[test]
fn csv_rfc4180_mode_reads_quotes_and_keeps_empty_columns_as_empty_strings() {
    let mut chain = chain(
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["id", "name", "note", "zip"], "rfc4180": true}]"#,
    );
    assert_eq!(
        sent(&mut chain, "1,\"Paris, France\",\"say \"\"hi\"\"\",\r\n"),
        "{\"id\":\"1\",\"name\":\"Paris, France\",\"note\":\"say \\\"hi\\\"\",\"zip\":\"\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "1,\"two\nlines\"\n"),
        "{\"id\":\"1\",\"name\":\"two\\nlines\",\"note\":null,\"zip\":null}\n"
    );
    match process(&mut chain, "1,2\n3,4\n") {
        Processed::Unconverted(unconverted) => {
            assert_eq!(unconverted.disposition, Disposition::SendRaw, "a failure sends the raw record");
            assert!(unconverted.reason.contains("several CSV rows"), "{}", unconverted.reason);
        }
        other => panic!("{other:?}"),
    }
    let mut tab = chain_tab();
    assert_eq!(sent(&mut tab, "\"a\tb\"\tc\n"), "{\"x\":\"a\\tb\",\"y\":\"c\"}\n");
    let error = refused(
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "rfc4180": true, "delimiter": ", "}]"#,
    );
    assert!(error.contains("one ASCII character"), "{error}");
}

fn chain_tab() -> Processor {
    chain(
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["x", "y"], "rfc4180": "yes", "delimiter": "\\t"}]"#,
    )
}

#[test]
fn csv_header_row_names_the_columns_of_each_file() {
    let mut chain = chain(r#"[{"optionName": "CSVTOJSON", "headerRow": true, "rfc4180": true}]"#);
    let at = |chain: &mut Processor, key: u64, start: u64, line: &str| {
        chain.process(FileKey(key), start, Bytes::copy_from_slice(line.as_bytes()), now())
    };
    assert_eq!(at(&mut chain, 1, 0, "id,name\n"), Processed::Skip, "the header row is not sent");
    assert_eq!(at(&mut chain, 2, 0, "code,city,zip\n"), Processed::Skip);
    assert_eq!(
        at(&mut chain, 1, 8, "1,Ada\n"),
        Processed::Send(Bytes::from("{\"id\":\"1\",\"name\":\"Ada\"}\n"))
    );
    assert_eq!(
        at(&mut chain, 2, 14, "75,Paris\n"),
        Processed::Send(Bytes::from("{\"code\":\"75\",\"city\":\"Paris\",\"zip\":null}\n"))
    );
    // A file resumed past its start: its header was not seen.
    match at(&mut chain, 3, 40, "9,Bob\n") {
        Processed::Unconverted(unconverted) => assert_eq!(unconverted.disposition, Disposition::SendRaw),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        chain.stats(),
        ProcessingStats { converted: 2, consumed: 2, sent_raw: 1, ..Default::default() }
    );
    let mut fallback =
        self::chain(r#"[{"optionName": "CSVTOJSON", "headerRow": true, "customFieldNames": ["a", "b"]}]"#);
    assert_eq!(
        at(&mut fallback, 3, 40, "9,Bob\n"),
        Processed::Send(Bytes::from("{\"a\":\"9\",\"b\":\"Bob\"}\n"))
    );
}

#[test]
fn common_apache_log() {
    let mut chain = log("COMMONAPACHELOG");
    let expected = "{\"host\":\"10.1.2.3\",\"ident\":null,\"authuser\":null,\"datetime\":\"03/Nov/2026:14:05:01 +0100\",\
                    \"request\":\"GET / HTTP/1.1\",\"response\":\"200\",\"bytes\":\"5120\"}\n";
    let line = "10.1.2.3 - - [03/Nov/2026:14:05:01 +0100] \"GET / HTTP/1.1\" 200 5120";
    assert_eq!(sent(&mut chain, &format!("{line}\n")), expected);
    assert_eq!(
        sent(&mut chain, &format!("{line} \"-\" \"curl/8.5.0\"\n")),
        expected,
        "the rest of the line is ignored"
    );
    dropped(&mut chain, "10.1.2.3 - - [03/Nov/2026:14:05:01 +0100] \"GET / HTTP/1.1\" 200\n");
    assert_eq!(chain.stats(), ProcessingStats { converted: 2, dropped: 1, ..Default::default() });
}

#[test]
fn combined_apache_log_golden() {
    golden(&mut log("COMBINEDAPACHELOG"), "access.log", "access.json");
}

#[test]
fn combined_apache_log_with_ipv6_and_empty_fields() {
    let mut chain = chain(
        r#"[{"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG", "allowIPv6": true, "allowEmptyFields": true}]"#,
    );
    golden(&mut chain, "access.log", "access-lenient.json");
    let error = refused(r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "allowIPv6": true}]"#);
    assert!(error.contains("Apache formats only"), "{error}");
}

#[test]
fn apache_error_log_with_and_without_module_and_thread_id() {
    let mut chain = log("APACHEERRORLOG");
    assert_eq!(
        sent(
            &mut chain,
            "[Tue Nov 03 14:05:01.250113 2026] [proxy:warn] [pid 9120:tid 140233] [client 10.1.2.3:51234] AH01144: No protocol handler\n"
        ),
        "{\"timestamp\":\"Tue Nov 03 14:05:01.250113 2026\",\"module\":\"proxy\",\"severity\":\"warn\",\"processid\":\"9120\",\
         \"threadid\":\"140233\",\"client\":\"10.1.2.3:51234\",\"message\":\"AH01144: No protocol handler\"}\n"
    );
    assert_eq!(
        sent(
            &mut chain,
            "[Tuesday November 3 14:05:02 2026] [error] [pid 9121] [client web7.example.org] File does not exist: -\n"
        ),
        "{\"timestamp\":\"Tuesday November 3 14:05:02 2026\",\"module\":null,\"severity\":\"error\",\"processid\":\"9121\",\
         \"threadid\":null,\"client\":\"web7.example.org\",\"message\":\"File does not exist: -\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "[Tue Nov 03 14:05:03 2026] [core:error] [pid 9122] [client 10.1.2.3] -\n"),
        "{\"timestamp\":\"Tue Nov 03 14:05:03 2026\",\"module\":\"core\",\"severity\":\"error\",\"processid\":\"9122\",\
         \"threadid\":null,\"client\":\"10.1.2.3\",\"message\":null}\n",
        "a message of exactly - is null (Apache formats)"
    );
    // Apache 2.4 lines without a client, and IPv6 clients, are dropped.
    dropped(
        &mut chain,
        "[Tue Nov 03 14:05:04.000001 2026] [mpm_event:notice] [pid 1:tid 2] AH00489: resuming normal operations\n",
    );
    let ipv6 = "[Tue Nov 03 14:05:05 2026] [ssl:info] [pid 3] [client 2001:db8::17:443] handshake done\n";
    dropped(&mut chain, ipv6);
    let mut lenient =
        self::chain(r#"[{"optionName": "LOGTOJSON", "logFormat": "APACHEERRORLOG", "allowIPv6": true}]"#);
    assert!(sent(&mut lenient, ipv6).contains("\"client\":\"2001:db8::17:443\""));
}

#[test]
fn syslog_golden_with_and_without_pid() {
    golden(&mut log("SYSLOG"), "syslog.log", "syslog.json");
}

#[test]
fn syslog_priority_is_opt_in_and_crlf_lines_do_not_match() {
    let line = "<34>Nov 13 14:05:05 web7 su[77]: 'su root' failed\n";
    dropped(&mut log("SYSLOG"), line);
    let mut chain = chain(r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "allowPriority": true}]"#);
    assert_eq!(
        sent(&mut chain, line),
        "{\"timestamp\":\"Nov 13 14:05:05\",\"hostname\":\"web7\",\"program\":\"su\",\"processid\":\"77\",\"message\":\"'su root' failed\"}\n"
    );
    // Java's `.` does not match `\r`: the agent drops CRLF lines (stripCarriageReturn avoids it).
    dropped(&mut chain, "Nov 13 14:05:05 web7 su[77]: failed\r\n");
}

#[test]
fn rfc3339_syslog() {
    let mut chain = log("RFC3339SYSLOG");
    assert_eq!(
        sent(&mut chain, "2026-11-03T14:05:01.123456+01:00 web7 nginx[812]: reloaded\n"),
        "{\"timestamp\":\"2026-11-03T14:05:01.123456+01:00\",\"hostname\":\"web7\",\"program\":\"nginx\",\"processid\":\"812\",\"message\":\"reloaded\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "2026-11-03T13:05:01Z web7 nginx: -\n"),
        "{\"timestamp\":\"2026-11-03T13:05:01Z\",\"hostname\":\"web7\",\"program\":\"nginx\",\"processid\":null,\"message\":\"-\"}\n",
        "syslog formats keep -"
    );
    dropped(&mut chain, "<165>1 2026-11-03T13:05:01Z web7 nginx 812 ID47 - reloaded\n");
}

#[test]
fn rfc5424_syslog_is_ours() {
    let mut chain = log("RFC5424SYSLOG");
    assert_eq!(
        sent(
            &mut chain,
            "<165>1 2026-11-03T13:05:01.003Z web7.example.org evntslog 812 ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"App \\\"x\\\"\"] An event\n"
        ),
        "{\"priority\":\"165\",\"version\":\"1\",\"timestamp\":\"2026-11-03T13:05:01.003Z\",\"hostname\":\"web7.example.org\",\
         \"appname\":\"evntslog\",\"procid\":\"812\",\"msgid\":\"ID47\",\
         \"structureddata\":\"[exampleSDID@32473 iut=\\\"3\\\" eventSource=\\\"App \\\\\\\"x\\\\\\\"\\\"]\",\"message\":\"An event\"}\n"
    );
    assert_eq!(
        sent(&mut chain, "<34>1 - - su - - -\n"),
        "{\"priority\":\"34\",\"version\":\"1\",\"timestamp\":null,\"hostname\":null,\"appname\":\"su\",\"procid\":null,\
         \"msgid\":null,\"structureddata\":null,\"message\":null}\n"
    );
    dropped(&mut chain, "Nov 13 14:05:05 web7 su[77]: not RFC 5424\n");
}

#[test]
fn custom_field_names_and_match_patterns() {
    let mut renamed = chain(
        r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "customFieldNames": ["ts", "host", "prog", "pid", "msg"]}]"#,
    );
    assert_eq!(
        sent(&mut renamed, "Nov  3 14:05:01 web7 cron[1]: ok\n"),
        "{\"ts\":\"Nov  3 14:05:01\",\"host\":\"web7\",\"prog\":\"cron\",\"pid\":\"1\",\"msg\":\"ok\"}\n"
    );
    let error = refused(r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "customFieldNames": ["a"]}]"#);
    assert!(error.contains("has 5 fields"), "{error}");
    // With an Apache format, `-` is null in a custom pattern too; with a syslog format it is kept.
    let pattern = r#""matchPattern": "^(\\S+) (\\S+) \\[([^\\]]+)\\] (\\d{3})( .*)?$", "customFieldNames": ["ip", "user", "at", "status", "rest"]"#;
    let line = "10.1.2.3 - [03/Nov/2026] 200\n";
    let mut apache =
        chain(&format!(r#"[{{"optionName": "LOGTOJSON", "logFormat": "COMMONAPACHELOG", {pattern}}}]"#));
    assert_eq!(
        sent(&mut apache, line),
        "{\"ip\":\"10.1.2.3\",\"user\":null,\"at\":\"03/Nov/2026\",\"status\":\"200\",\"rest\":null}\n"
    );
    let mut syslog = chain(&format!(r#"[{{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", {pattern}}}]"#));
    assert_eq!(
        sent(&mut syslog, line),
        "{\"ip\":\"10.1.2.3\",\"user\":\"-\",\"at\":\"03/Nov/2026\",\"status\":\"200\",\"rest\":null}\n"
    );
    dropped(&mut syslog, "10.1.2.3 - [03/Nov/2026] 2000\n");
    // The agent drops every record when the counts differ; we refuse the configuration.
    let error = refused(
        r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(a)(b)", "customFieldNames": ["a"]}]"#,
    );
    assert!(error.contains("2 groups"), "{error}");
    let error = refused(r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "(a)"}]"#);
    assert!(error.contains("requires customFieldNames"), "{error}");
    assert!(refused(r#"[{"optionName": "LOGTOJSON"}]"#).contains("logFormat is required"));
    assert!(refused(r#"[{"optionName": "LOGTOJSON", "logFormat": "RFC3164SYSLOG"}]"#).contains("one of"));
}

#[test]
fn pretty_print_is_jacksons() {
    let mut chain = chain(
        r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "jsonFormat": "PRETTYPRINT"}]"#,
    );
    assert_eq!(sent(&mut chain, "1\n"), "{\n  \"a\" : \"1\",\n  \"b\" : null\n}\n");
}

#[test]
fn add_metadata_wraps_the_record_with_metadata_in_order_and_a_utc_timestamp() {
    let mut chain = chain(
        r#"[{"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"zone": "eu", "app": {"name": "shop", "tier": 2}}}]"#,
    );
    assert_eq!(
        sent(&mut chain, "{\"x\": 1}\n"),
        "{\"ts\":\"2026-11-03T14:05:01.042Z\",\"metadata\":{\"zone\":\"eu\",\"app\":{\"name\":\"shop\",\"tier\":2}},\"data\":\"{\\\"x\\\": 1}\"}\n"
    );
    let mut no_ts = self::chain(r#"[{"optionName": "ADDMETADATA", "metadata": "web"}]"#);
    assert_eq!(sent(&mut no_ts, "line\n"), "{\"metadata\":\"web\",\"data\":\"line\"}\n");
    let mut boolean = self::chain(r#"[{"optionName": "ADDMETADATA", "timestamp": true}]"#);
    assert!(sent(&mut boolean, "x").starts_with("{\"ts\":\"2026-11-03T14:05:01.042Z\",\"metadata\":null,"));
    assert!(refused(r#"[{"optionName": "ADDMETADATA", "timestamp": "yes"}]"#).contains("timestamp"));
}

#[test]
fn converters_run_in_order_and_a_drop_stops_the_chain() {
    let mut chain = chain(
        r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}, {"optionName": "ADDMETADATA", "metadata": {"k": "v"}}]"#,
    );
    assert_eq!(
        sent(&mut chain, "Nov  3 14:05:01 web7 cron: ok\n"),
        "{\"metadata\":{\"k\":\"v\"},\"data\":\"{\\\"timestamp\\\":\\\"Nov  3 14:05:01\\\",\\\"hostname\\\":\\\"web7\\\",\
         \\\"program\\\":\\\"cron\\\",\\\"processid\\\":null,\\\"message\\\":\\\"ok\\\"}\"}\n"
    );
    dropped(&mut chain, "not syslog\n");
    let mut brackets = self::chain(r#"[{"optionName": "SINGLELINE"}, {"optionName": "ADDBRACKETS"}]"#);
    assert_eq!(sent(&mut brackets, "\"a\": 1,\n \"b\": 2\n"), "{\"a\": 1,\"b\": 2\n}");
    let mut single = self::chain(
        r#"[{"optionName": "SINGLELINE"}, {"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"]}]"#,
    );
    assert_eq!(sent(&mut single, " 1,\n 2 \n"), "{\"a\":\"1\",\"b\":\"2\"}\n");
}

#[test]
fn invalid_utf8_is_read_as_java_reads_it() {
    let mut chain = chain(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"]}]"#);
    let processed = chain.process(FILE, 1, Bytes::from_static(b"\xff,b\n"), now());
    assert_eq!(processed, Processed::Send(Bytes::from("{\"a\":\"\u{fffd}\",\"b\":\"b\"}\n")));
}

#[test]
fn with_a_dead_letter_file_unconverted_records_go_there_and_too_large_ones_are_failures() {
    let text = r#"[{"optionName": "LOGTOJSON", "logFormat": "SYSLOG"}]"#;
    let mut chain = flow_with(text, r#""deadLetterFile": "/var/lib/kpl/dead.jsonl","#).unwrap();
    match process(&mut chain, "not syslog\n") {
        Processed::Unconverted(unconverted) => {
            assert_eq!(unconverted.disposition, Disposition::DeadLetter);
            assert_eq!(
                (unconverted.converter, unconverted.record.as_ref()),
                ("LOGTOJSON", &b"not syslog\n"[..])
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(chain.stats().dead_lettered, 1);
    let mut small = flow_with(
        r#"[{"optionName": "ADDMETADATA", "metadata": {"a long key": "and a longer value than fits"}}]"#,
        r#""maxRecordSizeBytes": 64,"#,
    )
    .unwrap();
    match process(&mut small, "short\n") {
        Processed::Unconverted(unconverted) => {
            assert_eq!(unconverted.disposition, Disposition::SendRaw);
            assert!(unconverted.reason.contains("over the maximum record size"), "{}", unconverted.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_and_unsupported_options_are_refused() {
    let error = refused(r#"[{"optionName": "CSVTOJSON", "customFieldNames": ["a"], "delimeter": ";"}]"#);
    assert!(error.contains("unknown keys: delimeter"), "{error}");
    assert!(refused(r#"[{"optionName": "TOJSON"}]"#).contains("optionName \"TOJSON\""));
    assert!(refused(r#"[{"optionName": "USINGPLUGGIN", "className": "x.Y"}]"#).contains("not supported"));
    let error = refused(r#"[{"optionName": "ADDEC2METADATA", "imdsEndpoint": "169.254.169.254"}]"#);
    assert!(error.contains("imdsEndpoint"), "{error}");
    assert!(refused(r#"{"optionName": "SINGLELINE"}"#).contains("a list of processing options"));
    // Enum values are case-sensitive in the agent: we accept them with a warning.
    let text = r#"{"flows": [{"filePattern": "/a", "kinesisStream": "s",
        "dataProcessingOptions": [{"optionName": "LOGTOJSON", "logFormat": "syslog"}]}]}"#;
    let loaded = parse("agent.json", text, &[], true).unwrap();
    assert!(loaded.warnings.iter().any(|w| w.contains("read as \"SYSLOG\"")), "{:?}", loaded.warnings);
}
