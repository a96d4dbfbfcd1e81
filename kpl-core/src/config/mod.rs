//! Producer configuration: the KPL's settings, names (in snake_case), defaults and ranges.

pub(crate) mod admission;
mod error;
pub(crate) mod properties;
pub(crate) mod value;

use std::time::Duration;

pub use error::ConfigError;
use value::one_of;
pub use value::{KplValue, parse_value};

/// How user records are packed into Kinesis records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AggregationPolicy {
    /// As the KPL: one aggregate per predicted shard, from the shard map. Until the map is known, records
    /// follow [`ShardMapWait`].
    #[default]
    PerShard,
    /// Aggregate only records with the same hash key (the same partition key, or the same explicit hash
    /// key): correct with no shard map at all, since such records always land on the same shard.
    SameHashKey,
    /// One Kinesis record per user record (the KPL's `AggregationEnabled = false`).
    Off,
}

/// What to do with records while a stream's shard map is not known yet.
///
/// The default differs from the KPL on purpose: the KPL sends every record put before the first
/// `ListShards` answer alone and unlimited, so a producer that starts and writes at once (every CLI run,
/// every short-lived job, every restart) pays up to 500 times the PUT units and throttles its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShardMapWait {
    /// Send them unaggregated and not rate-limited, as the KPL does.
    SendUnaggregated,
    /// Hold them until the map arrives, then aggregate them per shard. Bounded: if `ListShards` is refused
    /// (a role allowed only `PutRecords` gets `AccessDeniedException`) or no map has arrived within
    /// `shard_map_wait_timeout`, the stream falls back to aggregating records with the same hash key only,
    /// which needs no map and is always KCL-safe (such an aggregate lands on its records' own shard), and
    /// reports [`Event::ShardMapUnavailable`](crate::Event::ShardMapUnavailable). The listing goes on in the
    /// background; per-shard aggregation resumes once it succeeds.
    #[default]
    Hold,
}

const MIB: u64 = 1024 * 1024;

/// As the KPL's `AggregationEnabled`: `true` is [`AggregationPolicy::PerShard`], `false` is
/// [`AggregationPolicy::Off`].
impl KplValue for AggregationPolicy {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        <bool as KplValue>::parse_kpl(text)
            .map(|on| if on { AggregationPolicy::PerShard } else { AggregationPolicy::Off })
    }
}

impl KplValue for ShardMapWait {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        one_of(text, &[("SendUnaggregated", ShardMapWait::SendUnaggregated), ("Hold", ShardMapWait::Hold)])
    }
}

/// Declares the settings once: field, type, default, KPL name, range check and doc. Generates the
/// config's getters, the builder's setters and the properties-file key mapping from that single list.
macro_rules! settings {
    ($( $(#[doc = $doc:literal])* $field:ident : $ty:ty = $default:expr, $kpl:literal, $check:expr ; )*) => {
        /// Validated producer settings. Build with [`ProducerConfig::builder`].
        #[derive(Debug, Clone, PartialEq)]
        pub struct ProducerConfig {
            $( $field: $ty, )*
        }

        impl Default for ProducerConfig {
            fn default() -> Self {
                Self { $( $field: $default, )* }
            }
        }

        impl ProducerConfig {
            $( $(#[doc = $doc])* pub fn $field(&self) -> $ty { self.$field.clone() } )*

            /// Checks every setting against its KPL range.
            fn check_ranges(&self) -> Result<(), ConfigError> {
                $( ($check)($kpl, self.$field.clone())?; )*
                Ok(())
            }
        }

        impl ProducerConfigBuilder {
            $( $(#[doc = $doc])* pub fn $field(mut self, value: $ty) -> Self { self.config.$field = value; self } )*

            /// Sets the setting whose KPL key is `key` from its properties-file text; `Ok(false)` if no
            /// setting has that key. Used by `ProducerConfig::from_properties`.
            pub(crate) fn set_by_kpl_key(&mut self, key: &str, value: &str) -> Result<bool, ConfigError> {
                match key {
                    $( $kpl => self.config.$field = parse_value($kpl, value)?, )*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}

fn any<T>(_: &'static str, _: T) -> Result<(), ConfigError> {
    Ok(())
}

fn range_u64(
    min: u64,
    max: u64,
    text: &'static str,
) -> impl Fn(&'static str, u64) -> Result<(), ConfigError> {
    move |setting, value| {
        if (min..=max).contains(&value) {
            Ok(())
        } else {
            Err(ConfigError::OutOfRange { setting, value: value.to_string(), range: text })
        }
    }
}

fn range_usize(
    min: u64,
    max: u64,
    text: &'static str,
) -> impl Fn(&'static str, usize) -> Result<(), ConfigError> {
    move |setting, value| range_u64(min, max, text)(setting, value as u64)
}

fn range_ms(
    min: u64,
    max: u64,
    text: &'static str,
) -> impl Fn(&'static str, Duration) -> Result<(), ConfigError> {
    move |setting, value: Duration| {
        let ms = u64::try_from(value.as_millis()).unwrap_or(u64::MAX);
        range_u64(min, max, text)(setting, ms)
    }
}

settings! {
    /// How records are aggregated (`AggregationEnabled = false` is [`AggregationPolicy::Off`]).
    aggregation: AggregationPolicy = AggregationPolicy::PerShard, "AggregationEnabled", any;
    /// Most user records in one aggregate (`AggregationMaxCount`, 1..=2^63−1, default 4294967295).
    aggregation_max_count: u64 = 4_294_967_295, "AggregationMaxCount", range_u64(1, i64::MAX as u64, "1..=2^63-1");
    /// Largest aggregated Kinesis record in bytes (`AggregationMaxSize`, 64..=10 MiB, default 51200), counted
    /// as Kinesis counts a record: magic, protobuf, digest and the one-byte outer partition key. The KPL leaves
    /// the key out and so builds records one byte over a limit of exactly 1 MiB; this producer does not.
    aggregation_max_size: u64 = 51_200, "AggregationMaxSize", range_u64(64, 10 * MIB, "64..=10485760");
    /// Most Kinesis records in one PutRecords (`CollectionMaxCount`, 1..=500, default 500).
    collection_max_count: u64 = 500, "CollectionMaxCount", range_u64(1, 500, "1..=500");
    /// Largest PutRecords in bytes, partition keys included (`CollectionMaxSize`, ≥ 52224, default 5 MiB).
    collection_max_size: u64 = 5 * MIB, "CollectionMaxSize", range_u64(52_224, i64::MAX as u64, "52224..=2^63-1");
    /// How long a record may wait to be batched (`RecordMaxBufferedTime`, default 100 ms).
    record_max_buffered_time: Duration = Duration::from_millis(100), "RecordMaxBufferedTime", range_ms(0, i64::MAX as u64, "0..=2^63-1 ms");
    /// The whole life of a record, retries included (`RecordTtl`, ≥ 100 ms, default 30 s). A huge value
    /// means "never expire": deadlines saturate instead of overflowing.
    record_ttl: Duration = Duration::from_secs(30), "RecordTtl", range_ms(100, u64::MAX, "100..=2^63-1 ms");
    /// Most requests in flight at once (`MaxConnections`, 1..=256, default 24).
    max_connections: usize = 24, "MaxConnections", range_usize(1, 256, "1..=256");
    /// How long the adapter waits for a response before reporting a timeout (`RequestTimeout`,
    /// 100..=600000 ms, default 6000 ms).
    request_timeout: Duration = Duration::from_millis(6000), "RequestTimeout", range_ms(100, 600_000, "100..=600000 ms");
    /// Per-shard send rate as a percentage of the shard limits (`RateLimit`, ≥ 1, default 150).
    rate_limit: u64 = 150, "RateLimit", range_u64(1, i64::MAX as u64, "1..=2^63-1");
    /// Records per second one shard accepts (Kinesis: 1000).
    shard_max_records_per_second: u64 = 1000, "ShardMaxRecordsPerSecond", range_u64(1, u32::MAX as u64, "1..=4294967295");
    /// Bytes per second one shard accepts, partition keys included (Kinesis: 1 MiB).
    shard_max_bytes_per_second: u64 = MIB, "ShardMaxBytesPerSecond", range_u64(1, u32::MAX as u64, "1..=4294967295");
    /// Fail records on throttling instead of retrying them (`FailIfThrottled`, default false).
    fail_if_throttled: bool = false, "FailIfThrottled", any;
    /// Hand a failed record back with its failure, in [`RecordFailure::record`](crate::RecordFailure::record)
    /// (`ReturnUserRecordOnFailure`, default false: the data is dropped when the record fails).
    return_user_record_on_failure: bool = false, "ReturnUserRecordOnFailure", any;
    /// Largest user record, data plus partition key (`MaxUserRecordSize`, 64..=10 MiB, default 1 MiB).
    max_record_size: u64 = MIB, "MaxUserRecordSize", range_u64(64, 10 * MIB, "64..=10485760");
    /// Most records accepted and not yet completed; past it `put_record` returns `Backpressure`
    /// (default 200,000). Each outstanding record costs about 530 bytes of memory beyond its data and key
    /// through kpl-tokio's `put` (a future each), about 360 in tagged batches (`cargo bench -p kpl-cli
    /// --bench memory`), so the default keeps a producer offered far more than its
    /// streams take near 200 MiB (`kpl bench --records 1500000`: 1,000,000 records peaked at 664 MiB
    /// resident); it is still about 0.13 s of the fastest producer path (1.5 M records/s), far more than a
    /// stream needs in flight to run at its shards' quota.
    max_outstanding_records: u64 = 200_000, "MaxOutstandingRecords", range_u64(1, i64::MAX as u64, "1..=2^63-1");
    /// Most bytes (data plus partition keys) accepted and not yet completed (default 256 MiB).
    max_outstanding_bytes: u64 = 256 * MIB, "MaxOutstandingBytes", range_u64(1, i64::MAX as u64, "1..=2^63-1");
    /// The drain window, as a percentage of `record_ttl` (`DrainWindowPercent`, our own key, 0..=100, default
    /// 33): a stream holds at most what it drains in this time, so a record accepted under sustained overload
    /// waits about this long for its shards and has the rest of its TTL for retries (see
    /// [`admits_to_stream`](ProducerConfig::admits_to_stream)). 0 turns the rule off, as in the KPL, which
    /// queues until the TTL expires records or memory runs out.
    drain_window_percent: u64 = 33, "DrainWindowPercent", range_u64(0, 100, "0..=100");
    /// What to do with records while the shard map is unknown (default [`ShardMapWait::Hold`]; the KPL's is
    /// `SendUnaggregated`).
    shard_map_wait: ShardMapWait = ShardMapWait::Hold, "ShardMapWait", any;
    /// With [`ShardMapWait::Hold`], how long after a stream's first record (or `add_stream`) records wait for
    /// its first shard map before falling back to same-hash-key aggregation (`ShardMapWaitTimeout`, our own
    /// key, 0..=3600000 ms, default 5000 ms: a few `ListShards` retries).
    shard_map_wait_timeout: Duration = Duration::from_secs(5), "ShardMapWaitTimeout", range_ms(0, 3_600_000, "0..=3600000 ms");
    /// First retry backoff; each further failure on the shard doubles it, with full jitter (default 100 ms).
    retry_initial_backoff: Duration = Duration::from_millis(100), "RetryInitialBackoff", range_ms(1, 3_600_000, "1..=3600000 ms");
    /// Largest retry backoff (default 5 s).
    retry_max_backoff: Duration = Duration::from_secs(5), "RetryMaxBackoff", range_ms(1, 3_600_000, "1..=3600000 ms");
}

/// Builds a [`ProducerConfig`], starting from the KPL's defaults.
#[derive(Debug, Clone, Default)]
pub struct ProducerConfigBuilder {
    config: ProducerConfig,
}

impl ProducerConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> ProducerConfigBuilder {
        ProducerConfigBuilder::default()
    }

    /// A builder starting from these settings.
    pub fn to_builder(&self) -> ProducerConfigBuilder {
        ProducerConfigBuilder { config: self.clone() }
    }
}

impl ProducerConfigBuilder {
    /// The KPL's `AggregationEnabled`: `false` is [`AggregationPolicy::Off`], `true` is
    /// [`AggregationPolicy::PerShard`].
    pub fn aggregation_enabled(self, enabled: bool) -> Self {
        self.aggregation(if enabled { AggregationPolicy::PerShard } else { AggregationPolicy::Off })
    }

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<ProducerConfig, ConfigError> {
        let config = self.config;
        config.check_ranges()?;
        // AggregationMaxSize bounds the whole Kinesis record, outer partition key included.
        if config.aggregation != AggregationPolicy::Off
            && config.aggregation_max_size > config.collection_max_size
        {
            return Err(ConfigError::Inconsistent(format!(
                "AggregationMaxSize {} does not fit in CollectionMaxSize {}",
                config.aggregation_max_size, config.collection_max_size
            )));
        }
        // Records wait up to RecordMaxBufferedTime before they are sent: with a TTL no longer than that, a
        // record that does not fill an aggregate or a request expires before it is ever sent.
        if config.record_max_buffered_time >= config.record_ttl {
            return Err(ConfigError::Inconsistent(format!(
                "RecordMaxBufferedTime {} ms is not below RecordTtl {} ms: records would expire unsent",
                config.record_max_buffered_time.as_millis(),
                config.record_ttl.as_millis()
            )));
        }
        if config.retry_initial_backoff > config.retry_max_backoff {
            return Err(ConfigError::Inconsistent(
                "RetryInitialBackoff is larger than RetryMaxBackoff".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_kpls_and_valid() {
        let config = ProducerConfig::builder().build().expect("defaults are valid");
        assert_eq!(config.aggregation_max_size(), 51_200);
        assert_eq!(config.collection_max_count(), 500);
        assert_eq!(config.collection_max_size(), 5 * MIB);
        assert_eq!(config.rate_limit(), 150);
        assert_eq!(config.record_ttl(), Duration::from_secs(30));
        assert_eq!(config.max_connections(), 24);
    }

    #[test]
    fn out_of_range_names_the_setting() {
        let error = ProducerConfig::builder().collection_max_count(501).build();
        assert_eq!(
            error,
            Err(ConfigError::OutOfRange {
                setting: "CollectionMaxCount",
                value: "501".into(),
                range: "1..=500"
            })
        );
        let error = ProducerConfig::builder().record_ttl(Duration::from_millis(99)).build();
        assert!(matches!(error, Err(ConfigError::OutOfRange { setting: "RecordTtl", .. })));
        assert!(ProducerConfig::builder().record_ttl(Duration::MAX).build().is_ok());
    }

    #[test]
    fn records_must_be_sent_before_their_ttl() {
        let at = |buffered: u64, ttl: u64| {
            ProducerConfig::builder()
                .record_max_buffered_time(Duration::from_millis(buffered))
                .record_ttl(Duration::from_millis(ttl))
                .build()
        };
        assert!(
            matches!(at(30_000, 30_000), Err(ConfigError::Inconsistent(message)) if message.contains("expire unsent"))
        );
        assert!(matches!(at(60_000, 30_000), Err(ConfigError::Inconsistent(_))));
        assert!(at(29_999, 30_000).is_ok());
    }

    #[test]
    fn an_aggregate_must_fit_a_request() {
        let error =
            ProducerConfig::builder().aggregation_max_size(10 * MIB).collection_max_size(5 * MIB).build();
        assert!(matches!(error, Err(ConfigError::Inconsistent(_))));
        let off = ProducerConfig::builder().aggregation_enabled(false).aggregation_max_size(10 * MIB).build();
        assert!(off.is_ok());
    }
}
