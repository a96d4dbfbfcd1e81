//! KPL `.properties` files: the settings file a KPL user already has, loaded unchanged. See
//! [`ProducerConfig::from_properties`].

use std::collections::BTreeMap;

use super::value::{invalid, one_of, parse_value};
use super::{AggregationPolicy, ConfigError, ProducerConfig};

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

/// Parses our `AggregationPolicy` key.
fn parse_policy(key: &str, value: &str) -> Result<AggregationPolicy, ConfigError> {
    let choices = [
        ("PerShard", AggregationPolicy::PerShard),
        ("SameHashKey", AggregationPolicy::SameHashKey),
        ("Off", AggregationPolicy::Off),
    ];
    one_of(value, &choices).map_err(|reason| invalid(key, value, reason))
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
}
