//! How the simulated Kinesis behaves: its limits, its latency and the faults it injects.

use std::time::Duration;

/// One mebibyte, the unit of Kinesis's size limits.
pub const MIB: usize = 1024 * 1024;

/// The largest `max_record_size` a stream can have (Kinesis allows up to 10 MiB per record).
pub const MAX_RECORD_SIZE_LIMIT: usize = 10 * MIB;

/// Per-shard write limits, each over a rolling second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardLimits {
    /// Records a shard takes per second.
    pub records_per_second: u64,
    /// Bytes a shard takes per second, counting partition keys and data.
    pub bytes_per_second: u64,
}

impl ShardLimits {
    /// The limits of a provisioned Kinesis shard: 1000 records and 1 MiB per second.
    pub const KINESIS: Self = Self { records_per_second: 1000, bytes_per_second: MIB as u64 };
}

/// Probabilities of whole-request faults, each drawn independently per request. Each is in `0.0..=1.0`;
/// 0.0 never fires and 1.0 always does.
///
/// Per request, the dice are rolled in this order: `drop_request` (if it fires, nothing else is rolled),
/// `lose_response` (rolled for every request not dropped: a throttled or refused request can lose its answer
/// too), then `throttle`, `internal_failure` and `service_unavailable`, the first that fires deciding the
/// answer. A request no fault stops is then processed as the service would. Last, for an answer not lost,
/// `duplicate_response`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RequestFaults {
    /// The request never reaches the service: nothing is written, and the mock answers
    /// [`RequestErrorKind::Timeout`](kpl_core::RequestErrorKind::Timeout) after `request_timeout`, as the
    /// adapter would.
    pub drop_request: f64,
    /// The request is processed (and possibly written) but its answer is lost: the mock answers
    /// `Timeout` after `request_timeout`. An ambiguous success: the records may be duplicated by retries.
    pub lose_response: f64,
    /// The answer arrives twice, the copy after a latency of its own (before or after the original): the
    /// producer must ignore the second.
    pub duplicate_response: f64,
    /// Throttled as a whole (`Throttling`): `LimitExceededException` for `ListShards`,
    /// `ProvisionedThroughputExceededException` for `PutRecords`.
    pub throttle: f64,
    /// HTTP 500 `InternalFailure` (`Transient`).
    pub internal_failure: f64,
    /// HTTP 503 `ServiceUnavailable` (`Transient`).
    pub service_unavailable: f64,
}

impl RequestFaults {
    /// No faults.
    pub const NONE: Self = Self {
        drop_request: 0.0,
        lose_response: 0.0,
        duplicate_response: 0.0,
        throttle: 0.0,
        internal_failure: 0.0,
        service_unavailable: 0.0,
    };

    fn check(&self, api: &'static str) -> Result<(), ConfigError> {
        check_probability(api, "drop_request", self.drop_request)?;
        check_probability(api, "lose_response", self.lose_response)?;
        check_probability(api, "duplicate_response", self.duplicate_response)?;
        check_probability(api, "throttle", self.throttle)?;
        check_probability(api, "internal_failure", self.internal_failure)?;
        check_probability(api, "service_unavailable", self.service_unavailable)
    }
}

/// Every fault the mock injects.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Faults {
    /// Faults of `PutRecords` requests.
    pub put_records: RequestFaults,
    /// Faults of `ListShards` requests.
    pub list_shards: RequestFaults,
    /// Probability that one `PutRecords` entry fails alone with `InternalFailure` (the others of the request
    /// are unaffected).
    pub entry_internal_failure: f64,
}

impl Faults {
    /// No faults.
    pub const NONE: Self = Self {
        put_records: RequestFaults::NONE,
        list_shards: RequestFaults::NONE,
        entry_internal_failure: 0.0,
    };

    /// A rough service: a few percent of everything goes wrong, `ListShards` a little less often.
    pub fn hostile() -> Self {
        let put_records = RequestFaults {
            drop_request: 0.01,
            lose_response: 0.01,
            duplicate_response: 0.01,
            throttle: 0.03,
            internal_failure: 0.01,
            service_unavailable: 0.01,
        };
        let list_shards = RequestFaults {
            drop_request: 0.01,
            lose_response: 0.01,
            duplicate_response: 0.01,
            throttle: 0.02,
            internal_failure: 0.01,
            service_unavailable: 0.01,
        };
        Self { put_records, list_shards, entry_internal_failure: 0.02 }
    }

    /// Checks every probability is in `0.0..=1.0`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.put_records.check("put_records")?;
        self.list_shards.check("list_shards")?;
        check_probability("entry", "internal_failure", self.entry_internal_failure)
    }
}

fn check_probability(api: &'static str, fault: &'static str, value: f64) -> Result<(), ConfigError> {
    if (0.0..=1.0).contains(&value) { Ok(()) } else { Err(ConfigError::Probability { api, fault, value }) }
}

/// Configuration of a [`MockKinesis`](crate::MockKinesis). Build it from [`MockConfig::calm`] (the default)
/// or [`MockConfig::hostile`] and change fields: `MockConfig { latency: .., ..MockConfig::calm() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct MockConfig {
    /// Per-shard write limits; `None` switches them off.
    pub shard_limits: Option<ShardLimits>,
    /// Largest record, data plus partition key, in bytes: 1 MiB by default, at most
    /// [`MAX_RECORD_SIZE_LIMIT`].
    pub max_record_size: usize,
    /// Largest `PutRecords` request, data plus partition keys of every entry: 5 MiB by default.
    pub max_request_size: usize,
    /// Time from a request to its response.
    pub latency: Duration,
    /// Extra latency drawn uniformly from `0..=jitter` per response; responses can overtake each other.
    pub jitter: Duration,
    /// When a request is dropped or its response lost, the mock answers `Timeout` this long after the
    /// request, playing the adapter's part. The KPL's `RequestTimeout` default is 6 s.
    pub request_timeout: Duration,
    /// Faults injected.
    pub faults: Faults,
    /// Keep every committed record (data included) for tests to read back. Off, only the counters and
    /// sequence numbers advance: for long saturation runs that would otherwise hold gigabytes.
    pub retain_committed: bool,
    /// The account the stream ARNs and error messages name.
    pub account_id: String,
    /// The region the stream ARNs name.
    pub region: String,
}

impl MockConfig {
    /// A healthy service: Kinesis's limits, 20 ms ± 10 ms latency, no faults.
    pub fn calm() -> Self {
        Self {
            shard_limits: Some(ShardLimits::KINESIS),
            max_record_size: kpl_deagg::limits::MAX_RECORD_SIZE,
            max_request_size: kpl_deagg::limits::MAX_REQUEST_SIZE,
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(10),
            request_timeout: Duration::from_secs(6),
            faults: Faults::NONE,
            retain_committed: true,
            account_id: "123456789012".to_owned(),
            region: "us-east-1".to_owned(),
        }
    }

    /// A rough service: [`Faults::hostile`] and latencies from 50 to 250 ms, so responses often arrive out
    /// of order.
    pub fn hostile() -> Self {
        Self {
            latency: Duration::from_millis(50),
            jitter: Duration::from_millis(200),
            faults: Faults::hostile(),
            ..Self::calm()
        }
    }

    /// Checks the configuration is one a Kinesis stream could have.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if matches!(self.shard_limits, Some(l) if l.records_per_second == 0 || l.bytes_per_second == 0) {
            return Err(ConfigError::ZeroShardLimit);
        }
        if !(1..=MAX_RECORD_SIZE_LIMIT).contains(&self.max_record_size) {
            return Err(ConfigError::MaxRecordSize(self.max_record_size));
        }
        if self.max_request_size == 0 {
            return Err(ConfigError::ZeroMaxRequestSize);
        }
        self.faults.validate()
    }
}

impl Default for MockConfig {
    fn default() -> Self {
        Self::calm()
    }
}

/// A configuration no Kinesis stream could have.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A fault probability outside `0.0..=1.0` (or NaN).
    #[error("{api}.{fault} is {value}, not a probability in 0.0..=1.0")]
    Probability {
        /// The API (or `entry`) it applies to.
        api: &'static str,
        /// The fault.
        fault: &'static str,
        /// The value given.
        value: f64,
    },
    /// A per-shard limit of zero.
    #[error("a per-shard limit is zero; use `shard_limits: None` to switch the limits off")]
    ZeroShardLimit,
    /// `max_record_size` outside `1..=10 MiB`.
    #[error("max_record_size is {0} bytes, not in 1..={MAX_RECORD_SIZE_LIMIT}")]
    MaxRecordSize(usize),
    /// `max_request_size` of zero.
    #[error("max_request_size is zero")]
    ZeroMaxRequestSize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_out_of_range_values_are_not() {
        assert_eq!(MockConfig::default(), MockConfig::calm());
        MockConfig::calm().validate().unwrap();
        MockConfig::hostile().validate().unwrap();
        let mut config = MockConfig::calm();
        config.faults.put_records.throttle = 1.5;
        assert!(matches!(config.validate(), Err(ConfigError::Probability { fault: "throttle", .. })));
        config.faults.put_records.throttle = f64::NAN;
        assert!(config.validate().is_err());
        let config = MockConfig { max_record_size: 10 * MIB + 1, ..MockConfig::calm() };
        assert_eq!(config.validate(), Err(ConfigError::MaxRecordSize(10 * MIB + 1)));
        MockConfig { max_record_size: 10 * MIB, shard_limits: None, ..MockConfig::calm() }
            .validate()
            .unwrap();
        let zero = ShardLimits { records_per_second: 0, ..ShardLimits::KINESIS };
        assert_eq!(
            MockConfig { shard_limits: Some(zero), ..MockConfig::calm() }.validate(),
            Err(ConfigError::ZeroShardLimit)
        );
        assert_eq!(
            MockConfig { max_request_size: 0, ..MockConfig::calm() }.validate(),
            Err(ConfigError::ZeroMaxRequestSize)
        );
    }
}
