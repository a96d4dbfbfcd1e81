//! Settings of the metrics readers: the KPL's `Metrics*` keys and its additional dimensions.

use std::collections::BTreeMap;
use std::time::Duration;

use kpl_core::{MetricName, MetricsGranularity, MetricsLevel};

/// Longest `MetricsUploadDelay` the KPL allows.
const MAX_UPLOAD_DELAY: Duration = Duration::from_millis(60_000);
/// Longest namespace, in characters (the KPL's `(?!AWS/).{1,255}`).
const MAX_NAMESPACE_CHARS: usize = 255;
/// CloudWatch's limits on a dimension's name and value, in characters.
const MAX_DIMENSION_NAME_CHARS: usize = 255;
const MAX_DIMENSION_VALUE_CHARS: usize = 1024;
/// CloudWatch takes 30 dimensions per datum; the KPL's own take up to 3 (ErrorCode, StreamName, ShardId).
const MAX_EXTRA_DIMENSIONS: usize = 27;
/// Dimension names the KPL uses itself.
const RESERVED_DIMENSIONS: [&str; 4] = ["MetricName", "ErrorCode", "StreamName", "ShardId"];

/// A dimension added to every metric from a granularity on (the KPL's
/// `addAdditionalMetricsDimension(key, value, granularity)`): global ones come right after the metric name,
/// stream ones after the stream name, shard ones after the shard id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraDimension {
    /// The dimension's name.
    pub name: String,
    /// Its value.
    pub value: String,
    /// Where in the dimension list it goes; it is left out of metrics coarser than this.
    pub granularity: MetricsGranularity,
}

/// A metrics setting out of range; `key` names the setting (the KPL's key when read from properties).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsConfigError {
    /// Not `none`, `summary` or `detailed`.
    #[error("{key}: {value:?} is not none, summary or detailed")]
    Level {
        /// The setting.
        key: &'static str,
        /// What it was given.
        value: String,
    },
    /// Not `global`, `stream` or `shard`.
    #[error("{key}: {value:?} is not global, stream or shard")]
    Granularity {
        /// The setting.
        key: &'static str,
        /// What it was given.
        value: String,
    },
    /// Not 1 to 255 characters on one line, or starting with `AWS/` (reserved for AWS services).
    #[error("{key}: {value:?} must be 1 to 255 characters on one line and not start with \"AWS/\"")]
    Namespace {
        /// The setting.
        key: &'static str,
        /// What it was given.
        value: String,
    },
    /// Not 1 to 60000 milliseconds.
    #[error("{key}: {value} is not a whole number of milliseconds from 1 to 60000")]
    UploadDelay {
        /// The setting.
        key: &'static str,
        /// What it was given.
        value: String,
    },
    /// An extra dimension CloudWatch would refuse, or one named like the KPL's own.
    #[error("{key}: dimension {name:?}={value:?}: {reason}")]
    Dimension {
        /// The setting.
        key: &'static str,
        /// The dimension's name.
        name: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How the KPL's metrics are reported: which ones (level), how finely (granularity), where (namespace,
/// extra dimensions) and how often (upload delay). The KPL's defaults: detailed, shard,
/// `KinesisProducerLibrary`, 60 s, no extra dimension.
///
/// Read from a KPL `.properties` file's `MetricsLevel`, `MetricsGranularity`, `MetricsNamespace` and
/// `MetricsUploadDelay` with [`from_settings`](Self::from_settings) on
/// [`LoadedProperties::other_settings`](kpl_core::LoadedProperties).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    level: MetricsLevel,
    granularity: MetricsGranularity,
    namespace: String,
    upload_delay: Duration,
    extra_dimensions: Vec<ExtraDimension>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            level: MetricsLevel::Detailed,
            granularity: MetricsGranularity::Shard,
            namespace: "KinesisProducerLibrary".to_owned(),
            upload_delay: MAX_UPLOAD_DELAY,
            extra_dimensions: Vec::new(),
        }
    }
}

impl MetricsConfig {
    /// Reads the KPL's `Metrics*` keys from `settings` (as `ProducerConfig::from_properties` passes them
    /// through); keys absent keep their defaults, other keys are ignored.
    pub fn from_settings(settings: &BTreeMap<String, String>) -> Result<Self, MetricsConfigError> {
        let mut config = Self::default();
        let get = |key: &str| settings.get(key).map(|value| value.trim());
        if let Some(value) = get("MetricsLevel") {
            config.level = parse_level("MetricsLevel", value)?;
        }
        if let Some(value) = get("MetricsGranularity") {
            config.granularity = parse_granularity("MetricsGranularity", value)?;
        }
        if let Some(value) = get("MetricsNamespace") {
            config.namespace = check_namespace("MetricsNamespace", value)?;
        }
        if let Some(value) = get("MetricsUploadDelay") {
            let invalid =
                || MetricsConfigError::UploadDelay { key: "MetricsUploadDelay", value: value.to_owned() };
            let millis: u64 = value.parse().map_err(|_| invalid())?;
            config.upload_delay = check_upload_delay("MetricsUploadDelay", Duration::from_millis(millis))?;
        }
        Ok(config)
    }

    /// Which metrics are reported (default detailed: all of them).
    pub fn level(mut self, level: MetricsLevel) -> Self {
        self.level = level;
        self
    }

    /// How finely (default shard).
    pub fn granularity(mut self, granularity: MetricsGranularity) -> Self {
        self.granularity = granularity;
        self
    }

    /// The CloudWatch namespace (default `KinesisProducerLibrary`): 1 to 255 characters, not `AWS/...`.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Result<Self, MetricsConfigError> {
        self.namespace = check_namespace("metrics_namespace", &namespace.into())?;
        Ok(self)
    }

    /// How often metrics are uploaded (default 60 s): 1 ms to 60 s.
    pub fn upload_delay(mut self, delay: Duration) -> Result<Self, MetricsConfigError> {
        self.upload_delay = check_upload_delay("metrics_upload_delay", delay)?;
        Ok(self)
    }

    /// Adds a dimension to every metric from `granularity` on (the KPL's `addAdditionalMetricsDimension`).
    pub fn extra_dimension(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
        granularity: MetricsGranularity,
    ) -> Result<Self, MetricsConfigError> {
        let (name, value) = (name.into(), value.into());
        let reason = if self.extra_dimensions.len() >= MAX_EXTRA_DIMENSIONS {
            Some("CloudWatch takes at most 30 dimensions per metric, 3 of them the KPL's")
        } else if RESERVED_DIMENSIONS.contains(&name.as_str()) {
            Some("the KPL sets this dimension itself")
        } else if !(1..=MAX_DIMENSION_NAME_CHARS).contains(&name.chars().count()) {
            Some("a name is 1 to 255 characters")
        } else if !(1..=MAX_DIMENSION_VALUE_CHARS).contains(&value.chars().count()) {
            Some("a value is 1 to 1024 characters")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(MetricsConfigError::Dimension { key: "extra_dimension", name, value, reason });
        }
        self.extra_dimensions.push(ExtraDimension { name, value, granularity });
        Ok(self)
    }

    /// The level.
    pub fn metrics_level(&self) -> MetricsLevel {
        self.level
    }

    /// The granularity.
    pub fn metrics_granularity(&self) -> MetricsGranularity {
        self.granularity
    }

    /// The namespace.
    pub fn metrics_namespace(&self) -> &str {
        &self.namespace
    }

    /// The upload delay.
    pub fn metrics_upload_delay(&self) -> Duration {
        self.upload_delay
    }

    /// The extra dimensions, in the order added.
    pub fn extra_dimensions(&self) -> &[ExtraDimension] {
        &self.extra_dimensions
    }

    /// Whether `name` is reported at this level.
    pub fn reports(&self, name: MetricName) -> bool {
        self.level != MetricsLevel::None && name.level() <= self.level
    }
}

fn parse_level(key: &'static str, value: &str) -> Result<MetricsLevel, MetricsConfigError> {
    match value {
        "none" => Ok(MetricsLevel::None),
        "summary" => Ok(MetricsLevel::Summary),
        "detailed" => Ok(MetricsLevel::Detailed),
        _ => Err(MetricsConfigError::Level { key, value: value.to_owned() }),
    }
}

fn parse_granularity(key: &'static str, value: &str) -> Result<MetricsGranularity, MetricsConfigError> {
    match value {
        "global" => Ok(MetricsGranularity::Global),
        "stream" => Ok(MetricsGranularity::Stream),
        "shard" => Ok(MetricsGranularity::Shard),
        _ => Err(MetricsConfigError::Granularity { key, value: value.to_owned() }),
    }
}

/// The KPL's `(?!AWS/).{1,255}`, where `.` is any character but a line terminator (Java's).
fn check_namespace(key: &'static str, value: &str) -> Result<String, MetricsConfigError> {
    let line_terminator = |c: char| matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let chars = value.chars().count();
    if value.starts_with("AWS/")
        || !(1..=MAX_NAMESPACE_CHARS).contains(&chars)
        || value.contains(line_terminator)
    {
        return Err(MetricsConfigError::Namespace { key, value: value.to_owned() });
    }
    Ok(value.to_owned())
}

fn check_upload_delay(key: &'static str, delay: Duration) -> Result<Duration, MetricsConfigError> {
    if delay < Duration::from_millis(1) || delay > MAX_UPLOAD_DELAY {
        return Err(MetricsConfigError::UploadDelay { key, value: format!("{} ms", delay.as_millis()) });
    }
    Ok(delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn reads_the_kpl_keys_with_their_defaults() {
        let config = MetricsConfig::from_settings(&BTreeMap::new()).unwrap();
        assert_eq!(config, MetricsConfig::default());
        assert_eq!(config.metrics_upload_delay(), Duration::from_secs(60));
        let config = MetricsConfig::from_settings(&settings(&[
            ("MetricsLevel", "summary"),
            ("MetricsGranularity", "stream "),
            ("MetricsNamespace", "MyApp/Producer"),
            ("MetricsUploadDelay", "1500"),
            ("RecordTtl", "ignored here"),
        ]))
        .unwrap();
        assert_eq!(config.metrics_level(), MetricsLevel::Summary);
        assert_eq!(config.metrics_granularity(), MetricsGranularity::Stream);
        assert_eq!(config.metrics_namespace(), "MyApp/Producer");
        assert_eq!(config.metrics_upload_delay(), Duration::from_millis(1500));
        assert!(config.reports(MetricName::UserRecordsPut));
        assert!(!config.reports(MetricName::RequestTime));
        assert!(!MetricsConfig::default().level(MetricsLevel::None).reports(MetricName::UserRecordsPut));
    }

    #[test]
    fn refuses_what_the_kpl_refuses_naming_the_key() {
        let error =
            |key: &str, value: &str| MetricsConfig::from_settings(&settings(&[(key, value)])).unwrap_err();
        assert_eq!(
            error("MetricsLevel", "Detailed"),
            MetricsConfigError::Level { key: "MetricsLevel", value: "Detailed".into() }
        );
        assert!(matches!(error("MetricsGranularity", "host"), MetricsConfigError::Granularity { .. }));
        for namespace in ["AWS/Kinesis", "", "a\nb", &"n".repeat(256)] {
            assert!(
                matches!(
                    error("MetricsNamespace", namespace),
                    MetricsConfigError::Namespace { key: "MetricsNamespace", .. }
                ),
                "{namespace:?}"
            );
        }
        assert!(MetricsConfig::from_settings(&settings(&[("MetricsNamespace", &"é".repeat(255))])).is_ok());
        for delay in ["0", "60001", "-1", "1s"] {
            let message = error("MetricsUploadDelay", delay).to_string();
            assert!(message.starts_with("MetricsUploadDelay: "), "{message}");
        }
        assert!(MetricsConfig::from_settings(&settings(&[("MetricsUploadDelay", "60000")])).is_ok());
        assert!(MetricsConfig::default().upload_delay(Duration::ZERO).is_err());
        let dimension =
            MetricsConfig::default().extra_dimension("StreamName", "x", MetricsGranularity::Global);
        assert!(matches!(dimension, Err(MetricsConfigError::Dimension { .. })));
        let config =
            MetricsConfig::default().extra_dimension("Host", "web-1", MetricsGranularity::Global).unwrap();
        assert_eq!(config.extra_dimensions().len(), 1);
    }
}
