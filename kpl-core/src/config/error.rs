//! Configuration errors, named by the KPL key.

/// An invalid setting, named by its KPL key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value outside the setting's range.
    #[error("{setting} = {value} is out of range ({range})")]
    OutOfRange {
        /// The KPL name of the setting, e.g. `AggregationMaxSize`.
        setting: &'static str,
        /// The value given.
        value: String,
        /// The allowed range.
        range: &'static str,
    },
    /// Settings that cannot hold together.
    #[error("inconsistent settings: {0}")]
    Inconsistent(String),
    /// A properties-file value that does not parse.
    #[error("{key} = {value:?}: {reason}")]
    InvalidValue {
        /// The key as written in the file.
        key: String,
        /// The value as written.
        value: String,
        /// What was expected.
        reason: String,
    },
}
