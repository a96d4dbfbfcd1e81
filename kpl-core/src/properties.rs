//! KPL `.properties` files: the settings file a KPL user already has, loaded unchanged. See
//! [`ProducerConfig::from_properties`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{AggregationPolicy, ConfigError, ProducerConfig, ShardMapWait};

/// The KPL keys that configure the layers around the core (the adapter: endpoints, TLS, proxy, credentials,
/// threads; metrics upload; logging), or the Java wrapper only. A properties file's values for them are
/// returned in [`LoadedProperties::other_settings`], as written; the core does not validate them.
pub const NON_CORE_KPL_KEYS: &[&str] = &[
    "CaCertFile",
    "CaCertPath",
    "CloudwatchEndpoint",
    "CloudwatchPort",
    "ConnectTimeout",
    "CredentialsRefreshDelay",
    "DaemonHealthCheckTimeoutMs",
    "EnableCoreDumps",
    "EnableDaemonHealthCheck",
    "EnableOldestFutureTracker",
    "GlueSchemaRegistryPropertiesFilePath",
    "KinesisEndpoint",
    "KinesisPort",
    "LogLevel",
    "MetricsGranularity",
    "MetricsLevel",
    "MetricsNamespace",
    "MetricsUploadDelay",
    "MinConnections",
    "NativeExecutable",
    "ProxyHost",
    "ProxyPassword",
    "ProxyPort",
    "ProxyUserName",
    "Region",
    "StsEndpoint",
    "StsPort",
    "TempDirectory",
    "ThreadPoolSize",
    "ThreadingModel",
    "UserRecordTimeoutInMillis",
    "VerifyCertificate",
];

/// Our key choosing the [`AggregationPolicy`] by name (the KPL only has `AggregationEnabled`).
const AGGREGATION_POLICY_KEY: &str = "AggregationPolicy";
/// The KPL key that [`AGGREGATION_POLICY_KEY`] must agree with when both are given.
const AGGREGATION_ENABLED_KEY: &str = "AggregationEnabled";

/// A loaded KPL properties file.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoadedProperties {
    /// The core settings, validated; keys the file does not set keep their defaults.
    pub config: ProducerConfig,
    /// The values of the file's [`NON_CORE_KPL_KEYS`], by key, as written (unescaped and trimmed, nothing
    /// else): not validated here, for the adapter and metrics layers to check.
    pub other_settings: BTreeMap<String, String>,
    /// Things the file does that the KPL would not notice or would not accept, one line each with its line
    /// number: unknown keys (ignored), repeated keys, a dropped trailing `;`. Worth logging.
    pub warnings: Vec<String>,
}

impl ProducerConfig {
    /// Loads the text of a KPL `.properties` file, so a KPL user's file works unchanged. The caller reads the
    /// file: the core does no I/O. Keys are the KPL's: the names of `KinesisProducerConfiguration`'s setters
    /// without `set`, case-sensitive, e.g. `RecordTtl = 30000`.
    ///
    /// - **Core settings** map onto [`ProducerConfigBuilder`](crate::ProducerConfigBuilder) and the result goes
    ///   through its `build()`, so ranges and range errors ([`ConfigError::OutOfRange`], naming the key) are the
    ///   builder's. The KPL's: `AggregationEnabled`, `AggregationMaxCount`, `AggregationMaxSize`,
    ///   `CollectionMaxCount`, `CollectionMaxSize`, `RecordMaxBufferedTime`, `RecordTtl`, `MaxConnections`,
    ///   `RequestTimeout`, `RateLimit`, `FailIfThrottled`, `ReturnUserRecordOnFailure`, `MaxUserRecordSize`. Ours, in the same style:
    ///   `ShardMaxRecordsPerSecond`, `ShardMaxBytesPerSecond`, `MaxOutstandingRecords`, `MaxOutstandingBytes`,
    ///   `RetryInitialBackoff`, `RetryMaxBackoff`, `ShardMapWait` (`Hold`, the default, or `SendUnaggregated`),
    ///   `ShardMapWaitTimeout` and
    ///   `AggregationPolicy` (`PerShard`, `SameHashKey` or `Off`; if `AggregationEnabled` is also given, the two
    ///   must agree). Times are milliseconds, as in the KPL.
    /// - **KPL settings of other layers** ([`NON_CORE_KPL_KEYS`]: region, endpoints, ports, TLS, proxy,
    ///   credentials refresh, metrics, logging, threading, ...) are recognized but not the core's: their values
    ///   come back unvalidated in [`LoadedProperties::other_settings`] for the adapter and metrics layers to
    ///   check.
    /// - **Any other key** is ignored with a warning, as the KPL logs and ignores it.
    ///
    /// The syntax is Java's `Properties.load`: `key = value`, `key=value`, `key: value` or `key value`; lines
    /// whose first non-blank character is `#` or `!` are comments; blank lines are skipped; a line ending in an
    /// odd number of backslashes continues on the next (whose leading blanks are dropped); `\t`, `\n`, `\r`,
    /// `\f`, `\uXXXX` and `\c` (any other character: itself) are escapes. As in Java, a repeated key's last value
    /// wins (we also warn). Where we differ from the KPL, we are stricter or say so:
    ///
    /// - Trailing whitespace of a value is trimmed (Java keeps it, and `RecordTtl = 100 ` then fails to parse).
    /// - Booleans must be `true` or `false`, in any case: Java's `Boolean.valueOf` silently reads anything else,
    ///   `yes` or `1` included, as `false`; we reject it.
    /// - Numbers are decimal, with an optional `+`; negative ones are rejected as such.
    /// - One trailing `;` after a core setting's value is dropped, with a warning: the KPL's own sample
    ///   `default_config.properties` has `MaxUserRecordSize = 1048576;`, which the Java KPL fails to parse.
    ///   Values in `other_settings` are kept as written, since a `;` may belong to a password or a namespace.
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidValue`] for a core value that does not parse (or a malformed `\uXXXX` escape),
    /// and otherwise whatever [`ProducerConfigBuilder::build`](crate::ProducerConfigBuilder::build)
    /// rejects; each names the KPL key.
    pub fn from_properties(text: &str) -> Result<LoadedProperties, ConfigError> {
        let mut builder = ProducerConfig::builder();
        let mut other_settings = BTreeMap::new();
        let mut warnings = Vec::new();
        let mut first_seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut aggregation_enabled = None;
        let mut policy = None;
        for Entry { line, key, value } in entries(text)? {
            if let Some(first) = first_seen.get(&key) {
                warnings
                    .push(format!("line {line}: {key} was already set on line {first}; the last value wins"));
            } else {
                first_seen.insert(key.clone(), line);
            }
            if NON_CORE_KPL_KEYS.contains(&key.as_str()) {
                other_settings.insert(key, value);
                continue;
            }
            let (core_value, had_semicolon) = match value.strip_suffix(';') {
                Some(stripped) => (stripped.trim_end_matches(is_blank), true),
                None => (value.as_str(), false),
            };
            let known = if key == AGGREGATION_POLICY_KEY {
                policy = Some(parse_policy(&key, core_value)?);
                true
            } else {
                let known = builder.set_by_kpl_key(&key, core_value)?;
                if key == AGGREGATION_ENABLED_KEY {
                    aggregation_enabled = Some(parse_value::<bool>(&key, core_value)?);
                }
                known
            };
            if !known {
                warnings.push(format!(
                    "line {line}: unknown key {key:?} ignored (keys are case-sensitive, as in the KPL)"
                ));
            } else if had_semicolon {
                warnings.push(format!("line {line}: the trailing ';' after {key} = {value} was ignored"));
            }
        }
        if let Some(policy) = policy {
            if let Some(enabled) = aggregation_enabled
                && enabled != (policy != AggregationPolicy::Off)
            {
                return Err(ConfigError::Inconsistent(format!(
                    "{AGGREGATION_ENABLED_KEY} = {enabled} contradicts {AGGREGATION_POLICY_KEY} = {policy:?}"
                )));
            }
            builder = builder.aggregation(policy);
        }
        Ok(LoadedProperties { config: builder.build()?, other_settings, warnings })
    }
}

/// A properties-file value's type: how its text parses. The error is the reason, for
/// [`ConfigError::InvalidValue`].
pub(crate) trait KplValue: Sized {
    /// Parses the (trimmed) text.
    fn parse_kpl(text: &str) -> Result<Self, String>;
}

impl KplValue for u64 {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        parse_whole(text, "a whole number")
    }
}

impl KplValue for usize {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        let value = parse_whole(text, "a whole number")?;
        usize::try_from(value).map_err(|_| "too large".to_owned())
    }
}

/// Milliseconds, as every KPL time setting.
impl KplValue for Duration {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        parse_whole(text, "a whole number of milliseconds").map(Duration::from_millis)
    }
}

impl KplValue for bool {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        one_of(text, &[("true", true), ("false", false)])
    }
}

/// As the KPL's `AggregationEnabled`: `true` is [`AggregationPolicy::PerShard`], `false` is
/// [`AggregationPolicy::Off`].
impl KplValue for AggregationPolicy {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        bool::parse_kpl(text).map(|on| if on { AggregationPolicy::PerShard } else { AggregationPolicy::Off })
    }
}

impl KplValue for ShardMapWait {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        one_of(text, &[("SendUnaggregated", ShardMapWait::SendUnaggregated), ("Hold", ShardMapWait::Hold)])
    }
}

/// Parses `value`, the text of `key`, naming both in the error.
pub(crate) fn parse_value<T: KplValue>(key: &str, value: &str) -> Result<T, ConfigError> {
    T::parse_kpl(value).map_err(|reason| invalid(key, value, reason))
}

/// Parses our `AggregationPolicy` key.
fn parse_policy(key: &str, value: &str) -> Result<AggregationPolicy, ConfigError> {
    let choices = [
        ("PerShard", AggregationPolicy::PerShard),
        ("SameHashKey", AggregationPolicy::SameHashKey),
        ("Off", AggregationPolicy::Off),
    ];
    one_of(value, &choices).map_err(|reason| invalid(key, value, reason))
}

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue { key: key.to_owned(), value: value.to_owned(), reason }
}

/// A non-negative decimal integer, as Java's `Long.valueOf` reads it (an optional `+`, digits) but unsigned.
fn parse_whole(text: &str, expected: &str) -> Result<u64, String> {
    text.parse::<u64>().map_err(|error| match error.kind() {
        std::num::IntErrorKind::PosOverflow => "too large".to_owned(),
        _ if text.is_empty() => format!("no value: expected {expected}"),
        _ if text.starts_with('-') => format!("negative: expected {expected}"),
        _ => format!("expected {expected}"),
    })
}

/// One of `choices` by name, in any case.
fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|&(_, value)| value).ok_or_else(
        || {
            let names: Vec<&str> = choices.iter().map(|&(name, _)| name).collect();
            format!("expected one of {}", names.join(", "))
        },
    )
}

/// One `key = value` of the file, unescaped and trimmed.
struct Entry {
    /// The 1-based line the entry starts on.
    line: usize,
    key: String,
    value: String,
}

/// Java's blanks in a properties file.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\x0c')
}

/// Lines ended by `\n`, `\r\n` or `\r`, as Java's `Properties.load` reads them.
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let remaining = rest?;
        match remaining.find(['\n', '\r']) {
            None => {
                rest = None;
                Some(remaining)
            }
            Some(end) => {
                let terminator = if remaining[end..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&remaining[end + terminator..]);
                Some(&remaining[..end])
            }
        }
    })
}

/// The file's entries, in order: comments and blank lines skipped, continuation lines joined.
fn entries(text: &str) -> Result<Vec<Entry>, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = physical_lines(text).enumerate();
    let mut entries = Vec::new();
    while let Some((index, first)) = lines.next() {
        let mut current = first.trim_start_matches(is_blank);
        if current.is_empty() || current.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = String::new();
        loop {
            let trailing_backslashes = current.len() - current.trim_end_matches('\\').len();
            if trailing_backslashes % 2 == 0 {
                logical.push_str(current);
                break;
            }
            logical.push_str(&current[..current.len() - 1]);
            match lines.next() {
                Some((_, next)) => current = next.trim_start_matches(is_blank),
                None => break,
            }
        }
        let line = index + 1;
        let (raw_key, raw_value) = split_entry(&logical);
        let malformed = |reason: String| invalid(raw_key, raw_value, format!("line {line}: {reason}"));
        let key = unescape(raw_key).map_err(malformed)?;
        let value = unescape(raw_value).map_err(malformed)?;
        entries.push(Entry { line, key, value });
    }
    Ok(entries)
}

/// Splits a logical line into its raw key and raw value. The key ends at the first unescaped `=`, `:` or
/// blank; blanks, at most one `=` or `:`, and blanks again separate it from the value.
fn split_entry(line: &str) -> (&str, &str) {
    let mut escaped = false;
    let mut key_end = line.len();
    for (at, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = at;
            break;
        }
    }
    let rest = line[key_end..].trim_start_matches(is_blank);
    let value = match rest.strip_prefix(['=', ':']) {
        Some(after) => after.trim_start_matches(is_blank),
        None => rest,
    };
    (&line[..key_end], value)
}

/// Resolves escapes as Java's `Properties.load` does and drops unescaped trailing blanks.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut keep = 0;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            if !is_blank(c) {
                keep = out.len();
            }
            continue;
        }
        let resolved = match chars.next() {
            // A lone backslash at the very end (a continuation at the end of the file): dropped, as by Java.
            None => break,
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('f') => '\x0c',
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                let code = if hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    u32::from_str_radix(&hex, 16).ok()
                } else {
                    None
                };
                code.and_then(char::from_u32).ok_or_else(|| {
                    format!("malformed escape \\u{hex}: expected \\u and 4 hex digits of a character")
                })?
            }
            Some(other) => other,
        };
        out.push(resolved);
        keep = out.len();
    }
    out.truncate(keep);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            loaded.warnings[1].contains("\"recordTtl\"") && loaded.warnings[1].contains("case-sensitive")
        );
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
    fn non_core_keys_are_sorted_unique_and_not_core_keys() {
        assert!(NON_CORE_KPL_KEYS.windows(2).all(|pair| pair[0] < pair[1]));
        let mut builder = ProducerConfig::builder();
        for key in NON_CORE_KPL_KEYS {
            assert_eq!(builder.set_by_kpl_key(key, "1"), Ok(false), "{key}");
            assert_ne!(*key, AGGREGATION_POLICY_KEY);
        }
        assert_eq!(builder.set_by_kpl_key(AGGREGATION_ENABLED_KEY, "true"), Ok(true));
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
        assert!(matches!(
            error("MaxConnections = 0"),
            ConfigError::OutOfRange { setting: "MaxConnections", .. }
        ));
        // AggregationMaxSize counts the aggregate's key: an aggregate of exactly CollectionMaxSize fits.
        assert!(matches!(
            error("AggregationMaxSize = 1048577\nCollectionMaxSize = 1048576"),
            ConfigError::Inconsistent(_)
        ));
        assert!(
            ProducerConfig::from_properties("AggregationMaxSize = 1048576\nCollectionMaxSize = 1048576")
                .is_ok()
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
}
