//! KPL `.properties` files read from disk, and what the library does with each of the KPL's settings that
//! are not the core's ([`NON_CORE_KPL_KEYS`](crate::NON_CORE_KPL_KEYS)).

use std::path::{Path, PathBuf};

use kpl_core::{ConfigError, LoadedProperties, ProducerConfig};

/// A properties file that could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PropertiesFileError {
    /// The file could not be read (or is not UTF-8).
    #[error("cannot read {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A core setting is invalid (see [`ProducerConfig::from_properties`]).
    #[error("{path:?}: {source}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The setting and what is wrong with it.
        source: ConfigError,
    },
}

/// Reads and loads a KPL `.properties` file, like the KPL's `KinesisProducerConfiguration.fromPropertiesFile`:
/// [`ProducerConfig::from_properties`] on its text. Then apply its connection settings with
/// `kinesis_config_loader` (feature `aws`), its metrics settings with
/// [`MetricsConfig::from_settings`](crate::MetricsConfig::from_settings), and log its
/// [`warnings`](LoadedProperties::warnings) and [`unapplied_settings`].
///
/// # Errors
///
/// [`PropertiesFileError::Read`] when the file cannot be read as UTF-8 text (Java reads ISO-8859-1; write
/// non-ASCII characters as `\uXXXX` escapes), [`PropertiesFileError::Invalid`] for an invalid core setting.
pub fn from_properties_file(path: impl AsRef<Path>) -> Result<LoadedProperties, PropertiesFileError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path)
        .map_err(|source| PropertiesFileError::Read { path: path.to_owned(), source })?;
    ProducerConfig::from_properties(&text)
        .map_err(|source| PropertiesFileError::Invalid { path: path.to_owned(), source })
}

/// A setting of a properties file that the library does not apply, and why. Report it to the user: the KPL
/// would have acted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnappliedSetting {
    /// The KPL key, e.g. `ThreadPoolSize`.
    pub key: String,
    /// Why it has no effect here, and what to do instead.
    pub reason: &'static str,
}

impl std::fmt::Display for UnappliedSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is not applied: {}", self.key, self.reason)
    }
}

/// What the library does with a KPL setting that is not the core's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handling {
    /// Applied by the connection settings (`kinesis_config_loader`, `cloudwatch_config_loader`) or
    /// [`MetricsConfig::from_settings`](crate::MetricsConfig::from_settings).
    Applied,
    /// Never applied, for this reason.
    NotApplied(&'static str),
}

const NO_CHILD_PROCESS: &str = "there is no native child process: the producer runs inside your program";
const NO_THREAD_POOL: &str = "there is no thread pool: requests are tasks on your async runtime";

/// Each of [`NON_CORE_KPL_KEYS`](crate::NON_CORE_KPL_KEYS) with what the library does with it (a test checks that none is missing).
pub(crate) fn handling(key: &str) -> Option<Handling> {
    use Handling::{Applied, NotApplied};
    Some(match key {
        "Region" | "KinesisEndpoint" | "KinesisPort" | "CloudwatchEndpoint" | "CloudwatchPort"
        | "CaCertFile" | "CaCertPath" | "ConnectTimeout" | "ProxyHost" | "ProxyPort" | "ProxyUserName"
        | "ProxyPassword" | "VerifyCertificate" | "MetricsGranularity" | "MetricsLevel"
        | "MetricsNamespace" | "MetricsUploadDelay" => Applied,
        "CredentialsRefreshDelay" => NotApplied(
            "credentials are cached and refreshed by the AWS SDK's credentials provider, before they expire",
        ),
        "StsEndpoint" | "StsPort" => NotApplied(
            "give the aws-config loader a credentials provider built with your STS endpoint instead",
        ),
        "LogLevel" => {
            NotApplied("logs go through `tracing`: set the level in your subscriber's filter (RUST_LOG)")
        }
        "ThreadingModel" | "ThreadPoolSize" => NotApplied(NO_THREAD_POOL),
        "NativeExecutable"
        | "TempDirectory"
        | "EnableCoreDumps"
        | "EnableDaemonHealthCheck"
        | "DaemonHealthCheckTimeoutMs" => NotApplied(NO_CHILD_PROCESS),
        "MinConnections" => {
            NotApplied("the SDK's HTTP client opens connections on demand and keeps them pooled")
        }
        "UserRecordTimeoutInMillis" => NotApplied(
            "bound the wait on a record's result yourself, e.g. tokio::time::timeout(.., record_future)",
        ),
        "EnableOldestFutureTracker" => {
            NotApplied("the oldest record's age is always tracked: oldest_record_age()")
        }
        "GlueSchemaRegistryPropertiesFilePath" => NotApplied("the AWS Glue Schema Registry is not supported"),
        "ReturnUserRecordOnFailure" => {
            NotApplied("a failed record's data is not returned with its failure yet")
        }
        _ => return None,
    })
}

/// The settings of `loaded` that no part of the library applies, each once, in key order: the KPL settings
/// that have no equivalent here (threading, the native process, `LogLevel`, ...), `VerifyCertificate =
/// false` (certificates are always verified: the AWS SDK's HTTPS clients cannot turn verification off), and
/// `KinesisPort` or `CloudwatchPort` without its endpoint (the region's endpoint keeps its own port).
/// Unknown keys are not listed here: [`ProducerConfig::from_properties`] warns about them.
pub fn unapplied_settings(loaded: &LoadedProperties) -> Vec<UnappliedSetting> {
    let settings = &loaded.other_settings;
    let set = |key: &str| settings.get(key).is_some_and(|value| !value.is_empty());
    settings
        .iter()
        .filter_map(|(key, value)| {
            let reason = match handling(key)? {
                Handling::NotApplied(reason) => reason,
                Handling::Applied if key == "VerifyCertificate" && value.eq_ignore_ascii_case("false") => {
                    "certificates are always verified: the AWS SDK's HTTPS clients cannot turn verification off"
                }
                Handling::Applied if key == "KinesisPort" && !set("KinesisEndpoint") => {
                    "without KinesisEndpoint, the region's endpoint is used on its own port"
                }
                Handling::Applied if key == "CloudwatchPort" && !set("CloudwatchEndpoint") => {
                    "without CloudwatchEndpoint, the region's endpoint is used on its own port"
                }
                Handling::Applied => return None,
            };
            Some(UnappliedSetting { key: key.clone(), reason })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use kpl_core::NON_CORE_KPL_KEYS;

    use super::*;

    #[test]
    fn every_kpl_key_outside_the_core_has_a_handling() {
        for key in NON_CORE_KPL_KEYS {
            assert!(handling(key).is_some(), "{key}");
        }
    }

    #[test]
    fn unapplied_settings_are_listed_once_by_key() {
        let loaded = ProducerConfig::from_properties(
            "ThreadPoolSize = 4\nThreadPoolSize = 8\nRegion = eu-west-1\nVerifyCertificate = FALSE\n\
             KinesisPort = 4443\nCloudwatchEndpoint = localhost\nCloudwatchPort = 4444\nMetricsLevel = none\n",
        )
        .unwrap();
        let keys: Vec<_> = unapplied_settings(&loaded).into_iter().map(|setting| setting.key).collect();
        assert_eq!(keys, ["KinesisPort", "ThreadPoolSize", "VerifyCertificate"]);
        let loaded = ProducerConfig::from_properties("VerifyCertificate = true\n").unwrap();
        assert!(unapplied_settings(&loaded).is_empty());
    }

    #[test]
    fn files_are_read_and_their_errors_name_the_file() {
        let missing = std::env::temp_dir().join("kpl-tokio-no-such-file.properties");
        assert!(matches!(from_properties_file(&missing), Err(PropertiesFileError::Read { .. })));
        let path =
            std::env::temp_dir().join(format!("kpl-tokio-properties-{}.properties", std::process::id()));
        std::fs::write(&path, "RecordTtl = 1000\nLogLevel = info\nReturnUserRecordOnFailure = true\n")
            .unwrap();
        let loaded = from_properties_file(&path).unwrap();
        assert_eq!(loaded.config.record_ttl(), std::time::Duration::from_millis(1000));
        assert!(loaded.config.return_user_record_on_failure());
        std::fs::write(&path, "RecordTtl = soon\n").unwrap();
        let error = from_properties_file(&path).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(error, PropertiesFileError::Invalid { .. }), "{error}");
    }
}
