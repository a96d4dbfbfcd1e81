//! `ADDMETADATA` (`AddMetadataConverter.java` L58–83): the record wrapped in an object with fixed
//! metadata and, optionally, a timestamp.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::json::{Field, JsonFormat, object_line};
use super::strip_newline;

/// `ADDMETADATA`: `{"ts"?: "<UTC time>", "metadata": <metadata>, "data": "<record>"}` and `\n`.
///
/// `metadata` is the configuration's value written as it is (key order kept); `data` is the record
/// without its trailing `\n`, as a string (a JSON record is not nested: it is escaped, as by the agent).
/// `ts` is the processing time in UTC, `yyyy-MM-ddTHH:mm:ss.SSSZ`.
#[derive(Debug, Clone)]
pub struct AddMetadata {
    /// `metadata` (null when absent, as in the agent).
    pub metadata: Value,
    /// `timestamp`: add `ts`.
    pub timestamp: bool,
    /// `jsonFormat`.
    pub json: JsonFormat,
}

impl AddMetadata {
    /// Converts one record at `now`.
    pub fn convert(&self, text: &str, now: SystemTime) -> String {
        let ts = self.timestamp.then(|| utc_millis(now));
        let mut fields = Vec::with_capacity(3);
        if let Some(ts) = &ts {
            fields.push(("ts", Field::Text(Some(ts.as_str()))));
        }
        fields.push(("metadata", Field::Json(&self.metadata)));
        fields.push(("data", Field::Text(Some(strip_newline(text)))));
        object_line(&fields, self.json)
    }
}

/// `now` as `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` in UTC (times before 1970 are written as 1970-01-01).
pub(crate) fn utc_millis(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:03}Z", utc_seconds(since.as_secs()), since.subsec_millis())
}

/// `now` as `yyyy-MM-dd'T'HH:mm:ss+0000` (Java's `yyyy-MM-dd'T'HH:mm:ssZ` in UTC).
pub(crate) fn utc_with_offset(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}+0000", utc_seconds(since.as_secs()))
}

/// Seconds since 1970 as `yyyy-MM-ddTHH:mm:ss`.
fn utc_seconds(seconds: u64) -> String {
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn timestamps_are_utc_with_milliseconds() {
        let at = |ms: u64| utc_millis(UNIX_EPOCH + Duration::from_millis(ms));
        assert_eq!(at(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year) 23:59:59.999.
        assert_eq!(at(951_868_799_999), "2000-02-29T23:59:59.999Z");
        // 2026-11-30T17:10:48.123Z.
        assert_eq!(at(1_796_058_648_123), "2026-11-30T17:10:48.123Z");
        assert_eq!(at(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(
            utc_with_offset(UNIX_EPOCH + Duration::from_millis(1_796_058_648_123)),
            "2026-11-30T17:10:48+0000"
        );
    }
}
