//! Loading KPL `.properties` files: the KPL's sample file, every key, the Java syntax, and the errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use kpl_core::{AggregationPolicy, ConfigError, LoadedProperties, ProducerConfig, ShardMapWait};

/// The KPL's `java/amazon-kinesis-producer-sample/default_config.properties`: every key and value as in
/// the file, commented-out keys included; the long explanatory comments are shortened. The stored copy
/// of the file we could read predates `MaxUserRecordSize`; its line, with the `;`, is as quoted in
/// `kpl-internals.md` §4.
const KPL_SAMPLE: &str = r"# You can load a properties file with
# KinesisProducerConfiguration.fromPropertiesFile(String)
#
# Any fields not found in the properties file will take on default values.
#
# The values loaded are checked against any constraints that each respective
# field may have. If there are invalid values an IllegalArgumentException will
# be thrown.


# Enable aggregation. With aggregation, multiple user records are packed into
# a single KinesisRecord. If disabled, each user record is sent in its own
# KinesisRecord.
#
# Default: true
AggregationEnabled = true

# Maximum number of items to pack into an aggregated record.
#
# Default: 4294967295
# Minimum: 1
# Maximum (inclusive): 9223372036854775807
AggregationMaxCount = 4294967295

# Maximum number of bytes to pack into an aggregated Kinesis record.
#
# Default: 51200
# Minimum: 64
# Maximum (inclusive): 1048576
AggregationMaxSize = 51200

# Maximum number of items to pack into an PutRecords request.
#
# Default: 500
# Minimum: 1
# Maximum (inclusive): 500
CollectionMaxCount = 500

# Maximum amount of data to send with a PutRecords request.
#
# Default: 5242880
# Minimum: 52224
# Maximum (inclusive): 9223372036854775807
CollectionMaxSize = 5242880

# Timeout (milliseconds) for establishing TLS connections.
#
# Default: 6000
# Minimum: 100
# Maximum (inclusive): 300000
ConnectTimeout = 6000

# Use a custom Kinesis and CloudWatch endpoint.
#
# Expected pattern: ^([A-Za-z0-9-\\.]+)?$
# KinesisEndpoint = 

# If true, throttled puts are not retried.
#
# Default: false
FailIfThrottled = false

# Minimum level of logs.
#
# Default: info
# Expected pattern: info|warning|error
LogLevel = info

# Maximum number of connections to open to the backend.
#
# Default: 24
# Minimum: 1
# Maximum (inclusive): 256
MaxConnections = 24

# Controls the granularity of metrics that are uploaded to CloudWatch.
#
# Default: shard
# Expected pattern: global|stream|shard
MetricsGranularity = shard

# Controls the number of metrics that are uploaded to CloudWatch.
#
# Default: detailed
# Expected pattern: none|summary|detailed
MetricsLevel = detailed

# The namespace to upload metrics under.
#
# Default: KinesisProducerLibrary
# Expected pattern: (?!AWS/).{1,255}
MetricsNamespace = KinesisProducerLibrary

# Delay (in milliseconds) between each metrics upload.
#
# Default: 60000
# Minimum: 1
# Maximum (inclusive): 60000
MetricsUploadDelay = 60000

# Minimum number of connections to keep open to the backend.
#
# Default: 1
# Minimum: 1
# Maximum (inclusive): 16
MinConnections = 1

# Server port to connect to. Only useful with KinesisEndpoint.
#
# Default: 443
# Minimum: 1
# Maximum (inclusive): 65535
KinesisPort = 443

# Limits the maximum allowed put rate for a shard, as a percentage of the
# backend limits.
#
# Default: 150
# Minimum: 1
# Maximum (inclusive): 9223372036854775807
RateLimit = 150

# Maximum amount of time (milliseconds) a record may spend being buffered
# before it gets sent.
#
# Default: 100
# Maximum (inclusive): 9223372036854775807
RecordMaxBufferedTime = 100

# Set a time-to-live on records (milliseconds).
#
# Default: 30000
# Minimum: 100
# Maximum (inclusive): 9223372036854775807
RecordTtl = 30000

# Which region to send records to.
#
# Expected pattern: ^([a-z]+-[a-z]+-[0-9])?$
# Region = 

# The maximum total time (milliseconds) elapsed between when we begin a HTTP
# request and receiving all of the response.
#
# Default: 6000
# Minimum: 100
# Maximum (inclusive): 600000
RequestTimeout = 6000

# Verify the endpoint's certificate.
#
# Default: true
VerifyCertificate = true

# Sets the threading model that the native process will use.
#
# Default = PER_REQUEST
ThreadingModel = PER_REQUEST

# Sets the maximum number of threads that the native process' thread pool will be configured with.
#
# Default: 0
#ThreadPoolSize = 0

# Maximum size of a user record (data plus partition key), in bytes.
#
# Default: 1048576
MaxUserRecordSize = 1048576;
";

fn load(text: &str) -> LoadedProperties {
    ProducerConfig::from_properties(text).expect("loads")
}

fn error(text: &str) -> ConfigError {
    ProducerConfig::from_properties(text).expect_err("rejected")
}

fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|&(key, value)| (key.to_owned(), value.to_owned())).collect()
}

#[test]
fn the_kpl_sample_loads_as_the_defaults() {
    let loaded = load(KPL_SAMPLE);
    assert_eq!(loaded.config, ProducerConfig::builder().build().expect("defaults"));
    assert_eq!(
        loaded.other_settings,
        settings(&[
            ("ConnectTimeout", "6000"),
            ("KinesisPort", "443"),
            ("LogLevel", "info"),
            ("MetricsGranularity", "shard"),
            ("MetricsLevel", "detailed"),
            ("MetricsNamespace", "KinesisProducerLibrary"),
            ("MetricsUploadDelay", "60000"),
            ("MinConnections", "1"),
            ("ThreadingModel", "PER_REQUEST"),
            ("VerifyCertificate", "true"),
        ])
    );
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].contains("MaxUserRecordSize") && loaded.warnings[0].contains(';'));
}

#[test]
fn every_core_key_maps_to_its_setting() {
    let loaded = load(
        "AggregationEnabled = false
         AggregationMaxCount = 1000
         AggregationMaxSize = 102400
         CollectionMaxCount = 250
         CollectionMaxSize = 2097152
         RecordMaxBufferedTime = 250
         RecordTtl = 60000
         MaxConnections = 48
         RequestTimeout = 10000
         RateLimit = 80
         FailIfThrottled = true
         MaxUserRecordSize = 2097152
         ShardMaxRecordsPerSecond = 2000
         ShardMaxBytesPerSecond = 2097152
         MaxOutstandingRecords = 5000
         MaxOutstandingBytes = 1048576
         RetryInitialBackoff = 50
         RetryMaxBackoff = 2000
         ShardMapWait = SendUnaggregated
         ShardMapWaitTimeout = 2500",
    );
    let expected = ProducerConfig::builder()
        .aggregation(AggregationPolicy::Off)
        .aggregation_max_count(1000)
        .aggregation_max_size(102_400)
        .collection_max_count(250)
        .collection_max_size(2_097_152)
        .record_max_buffered_time(Duration::from_millis(250))
        .record_ttl(Duration::from_secs(60))
        .max_connections(48)
        .request_timeout(Duration::from_secs(10))
        .rate_limit(80)
        .fail_if_throttled(true)
        .max_record_size(2_097_152)
        .shard_max_records_per_second(2000)
        .shard_max_bytes_per_second(2_097_152)
        .max_outstanding_records(5000)
        .max_outstanding_bytes(1_048_576)
        .retry_initial_backoff(Duration::from_millis(50))
        .retry_max_backoff(Duration::from_secs(2))
        .shard_map_wait(ShardMapWait::SendUnaggregated)
        .shard_map_wait_timeout(Duration::from_millis(2500))
        .build()
        .expect("valid");
    assert_eq!(loaded.config, expected);
    assert!(loaded.warnings.is_empty() && loaded.other_settings.is_empty());
}

#[test]
fn aggregation_policy_key_and_its_agreement_with_aggregation_enabled() {
    let same = load("AggregationPolicy = SameHashKey").config;
    assert_eq!(same.aggregation(), AggregationPolicy::SameHashKey);
    let agreed = load("AggregationEnabled = true\nAggregationPolicy = sameHashKey").config;
    assert_eq!(agreed.aggregation(), AggregationPolicy::SameHashKey);
    assert_eq!(
        load("AggregationEnabled=false\nAggregationPolicy=Off").config.aggregation(),
        AggregationPolicy::Off
    );
    assert!(matches!(
        error("AggregationPolicy = PerShard\nAggregationEnabled = false"),
        ConfigError::Inconsistent(_)
    ));
    assert!(matches!(
        error("AggregationEnabled = true\nAggregationPolicy = Off"),
        ConfigError::Inconsistent(_)
    ));
    assert!(matches!(
        error("AggregationPolicy = Sometimes"),
        ConfigError::InvalidValue { key, .. } if key == "AggregationPolicy"
    ));
}

#[test]
fn unknown_keys_warn_and_are_ignored() {
    let loaded = load("NoSuchSetting = 3\nrecordTtl = 5000\nPort = 443\n# Not = a key\n");
    assert_eq!(loaded.config, ProducerConfig::default());
    assert!(loaded.other_settings.is_empty());
    assert_eq!(loaded.warnings.len(), 3, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].starts_with("line 1: unknown key \"NoSuchSetting\""));
    assert!(loaded.warnings[1].contains("\"recordTtl\"") && loaded.warnings[1].contains("case-sensitive"));
    assert!(loaded.warnings[2].starts_with("line 3: unknown key \"Port\""));
}

#[test]
fn keys_of_other_layers_pass_through_as_written() {
    let loaded = load(
        "Region = us-west-2\n\
         KinesisEndpoint =\n\
         MetricsLevel = none\n\
         ProxyPassword = se;cret;\n\
         CaCertPath = C:\\\\certs\\\\ca.pem\n\
         MetricsNamespace = My\\u00e9App   \n\
         RecordTtl = 1000\n",
    );
    assert_eq!(
        loaded.config,
        ProducerConfig::builder().record_ttl(Duration::from_secs(1)).build().expect("valid")
    );
    assert_eq!(
        loaded.other_settings,
        settings(&[
            ("CaCertPath", "C:\\certs\\ca.pem"),
            ("KinesisEndpoint", ""),
            ("MetricsLevel", "none"),
            ("MetricsNamespace", "MyéApp"),
            ("ProxyPassword", "se;cret;"),
            ("Region", "us-west-2"),
        ])
    );
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn bad_values_name_the_key() {
    let not_a_number = error("RecordTtl = 30s");
    assert_eq!(
        not_a_number,
        ConfigError::InvalidValue {
            key: "RecordTtl".into(),
            value: "30s".into(),
            reason: "expected a whole number of milliseconds".into()
        }
    );
    assert!(matches!(
        error("AggregationEnabled = yes"),
        ConfigError::InvalidValue { key, value, .. } if key == "AggregationEnabled" && value == "yes"
    ));
    assert!(
        matches!(error("FailIfThrottled = 1"), ConfigError::InvalidValue { key, .. } if key == "FailIfThrottled")
    );
    assert!(matches!(
        error("RateLimit = -5"),
        ConfigError::InvalidValue { key, reason, .. } if key == "RateLimit" && reason.starts_with("negative")
    ));
    assert!(matches!(
        error("AggregationMaxCount = 99999999999999999999"),
        ConfigError::InvalidValue { key, reason, .. } if key == "AggregationMaxCount" && reason == "too large"
    ));
    assert!(
        matches!(error("CollectionMaxSize ="), ConfigError::InvalidValue { key, .. } if key == "CollectionMaxSize")
    );
    assert!(
        matches!(error("ShardMapWait = Wait"), ConfigError::InvalidValue { key, .. } if key == "ShardMapWait")
    );
    assert!(matches!(
        error("MaxUserRecordSize = 1048576;;"),
        ConfigError::InvalidValue { key, .. } if key == "MaxUserRecordSize"
    ));
    assert_eq!(
        error("CollectionMaxCount = 501"),
        ConfigError::OutOfRange { setting: "CollectionMaxCount", value: "501".into(), range: "1..=500" }
    );
    assert!(matches!(error("RecordTtl = 99"), ConfigError::OutOfRange { setting: "RecordTtl", .. }));
    assert!(matches!(error("MaxConnections = 0"), ConfigError::OutOfRange { setting: "MaxConnections", .. }));
    // AggregationMaxSize counts the aggregate's key: an aggregate of exactly CollectionMaxSize fits.
    assert!(matches!(
        error("AggregationMaxSize = 1048577\nCollectionMaxSize = 1048576"),
        ConfigError::Inconsistent(_)
    ));
    assert!(
        ProducerConfig::from_properties("AggregationMaxSize = 1048576\nCollectionMaxSize = 1048576").is_ok()
    );
    assert!(matches!(
        error("Region = eu\\u00zz"),
        ConfigError::InvalidValue { key, reason, .. } if key == "Region" && reason.starts_with("line 1: malformed")
    ));
}

#[test]
fn separators_comments_and_blank_lines() {
    let loaded = load(
        "\u{feff}# comment\r\n\
         ! also a comment\r\n\
         \r\n\
         \t  \r\n\
         RecordTtl=1000\r\n\
         RateLimit: 90\r\
         CollectionMaxCount 100\n\
         \x20\x20MaxConnections   =   8   \n\
         FailIfThrottled = TRUE\n\
         \x20 # RecordMaxBufferedTime = 1\n",
    );
    let expected = ProducerConfig::builder()
        .record_ttl(Duration::from_secs(1))
        .rate_limit(90)
        .collection_max_count(100)
        .max_connections(8)
        .fail_if_throttled(true)
        .build()
        .expect("valid");
    assert_eq!(loaded.config, expected);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // As in Java, one separator is consumed; a second belongs to the value.
    assert!(matches!(
        error("AggregationMaxCount = = 5"),
        ConfigError::InvalidValue { value, .. } if value == "= 5"
    ));
}

#[test]
fn continuations_escapes_and_the_trailing_semicolon() {
    let loaded = load(
        "Record\\\n\
         \x20   Ttl = 12\\\n\
         \t 000\n\
         # a comment ending in a backslash does not continue \\\n\
         RateLimit = 90 ;\n\
         Collection\\u004dax\\u0043ount\\=x = 5\n\
         MetricsNamespace = a\\\\\n\
         MaxConnections = 8\n",
    );
    assert_eq!(
        loaded.config,
        ProducerConfig::builder()
            .record_ttl(Duration::from_secs(12))
            .rate_limit(90)
            .max_connections(8)
            .build()
            .expect("valid")
    );
    assert_eq!(loaded.other_settings, settings(&[("MetricsNamespace", "a\\")]));
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings[0].starts_with("line 5: the trailing ';' after RateLimit"));
    assert!(loaded.warnings[1].starts_with("line 6: unknown key \"CollectionMaxCount=x\""));
}

#[test]
fn a_repeated_key_warns_and_the_last_value_wins() {
    let loaded = load("RecordTtl = 1000\nRecordTtl = 2000\n");
    assert_eq!(loaded.config.record_ttl(), Duration::from_secs(2));
    assert_eq!(
        loaded.warnings,
        vec!["line 2: RecordTtl was already set on line 1; the last value wins".to_owned()]
    );
}
