//! The grammar of KPL setting values, as written in a `.properties` file: whole numbers, milliseconds,
//! booleans and names. A leaf: the builder's key mapping, the `.properties` loader and the layers above
//! (metrics settings) parse values with it, so one value is read the same way everywhere.

use std::time::Duration;

use super::error::ConfigError;
use crate::metrics::{MetricsGranularity, MetricsLevel};

/// A KPL setting value's type: how its text parses. The error is the reason, for
/// [`ConfigError::InvalidValue`]. Names (booleans, enums) are matched in any case; numbers are decimal.
pub trait KplValue: Sized {
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

/// Parses `value`, the text of `key`, naming both in the error.
pub fn parse_value<T: KplValue>(key: &str, value: &str) -> Result<T, ConfigError> {
    T::parse_kpl(value).map_err(|reason| invalid(key, value, reason))
}

pub(crate) fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
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
pub(crate) fn one_of<T: Copy>(text: &str, choices: &[(&str, T)]) -> Result<T, String> {
    choices.iter().find(|(name, _)| name.eq_ignore_ascii_case(text)).map(|&(_, value)| value).ok_or_else(
        || {
            let names: Vec<&str> = choices.iter().map(|&(name, _)| name).collect();
            format!("expected one of {}", names.join(", "))
        },
    )
}

/// The KPL's `MetricsLevel`: `none`, `summary` or `detailed`.
impl KplValue for MetricsLevel {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        let choices = [
            ("none", MetricsLevel::None),
            ("summary", MetricsLevel::Summary),
            ("detailed", MetricsLevel::Detailed),
        ];
        one_of(text, &choices)
    }
}

/// The KPL's `MetricsGranularity`: `global`, `stream` or `shard`.
impl KplValue for MetricsGranularity {
    fn parse_kpl(text: &str) -> Result<Self, String> {
        let choices = [
            ("global", MetricsGranularity::Global),
            ("stream", MetricsGranularity::Stream),
            ("shard", MetricsGranularity::Shard),
        ];
        one_of(text, &choices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_settings_read_with_the_same_grammar() {
        assert_eq!(parse_value::<MetricsLevel>("MetricsLevel", "summary"), Ok(MetricsLevel::Summary));
        assert_eq!(MetricsGranularity::parse_kpl("Shard"), Ok(MetricsGranularity::Shard));
        let error = parse_value::<MetricsGranularity>("MetricsGranularity", "region").unwrap_err();
        assert_eq!(
            error.to_string(),
            "MetricsGranularity = \"region\": expected one of global, stream, shard"
        );
    }
}
