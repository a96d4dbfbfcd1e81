//! The Kinesis Agent's converters (`dataProcessingOptions`), each with the agent's exact behaviour by
//! default (`shared/reference/kinesis-agent.md` (b), from `processing/processors/*.java` and its tests)
//! and its fixes as opt-in options:
//!
//! - [`SingleLine`] (`SINGLELINE`), [`CsvToJson`] (`CSVTOJSON`), [`LogToJson`] (`LOGTOJSON`),
//!   [`AddMetadata`] (`ADDMETADATA`), [`AddEc2Metadata`] (`ADDEC2METADATA`, its metadata read by the
//!   shell through IMDSv2);
//! - [`json`]: JSON text as the agent's Jackson writes it (field order kept, compact or pretty).
//!
//! Every converter reads the record as UTF-8 with invalid bytes replaced by U+FFFD (Java's decoding), and
//! every JSON converter removes one trailing `\n` from its input and appends `\n` to its output. Every
//! value it writes is a string or null (`response` and `bytes` too).
//!
//! # Options (in a flow's `dataProcessingOptions`, applied in order)
//!
//! | `optionName` | keys (agent's) | keys (ours, opt-in) |
//! |---|---|---|
//! | `SINGLELINE` | `parseOptions`: `NO_TRIM`, `ESCAPE_NEW_LINE` | |
//! | `CSVTOJSON` | `customFieldNames` (required unless `headerRow`), `delimiter` (a regex, default `,`), `jsonFormat` | `rfc4180` (quoting; `delimiter` then one character, or `\t`), `headerRow` |
//! | `LOGTOJSON` | `logFormat` (`COMMONAPACHELOG`, `COMBINEDAPACHELOG`, `APACHEERRORLOG`, `SYSLOG`, `RFC3339SYSLOG`), `matchPattern`, `customFieldNames`, `jsonFormat` | `logFormat` `RFC5424SYSLOG`; `allowIPv6`, `allowEmptyFields` (Apache formats); `allowPriority` (`SYSLOG`, `RFC3339SYSLOG`) |
//! | `ADDMETADATA` | `metadata` (any JSON), `timestamp` (`"true"`), `jsonFormat` | |
//! | `ADDEC2METADATA` | `metadataTTL` (seconds, 3600), `logFormat` (accepted, unused, as by the agent), `jsonFormat` | `imdsEndpoint` (an `http://` URL; default: the AWS SDK's, `AWS_EC2_METADATA_SERVICE_ENDPOINT`), `tagsFromInstanceMetadata` |
//!
//! `ADDBRACKETS` (undocumented in the agent) wraps the record in `{` and `}`, its `\n` inside.
//! `jsonFormat` is `COMPACT` (default) or `PRETTYPRINT` (Jackson's pretty printer; undocumented in the
//! agent). A flow's `deadLetterFile` (ours) keeps the records a converter could not convert (see
//! [`crate::core::process`]).
//!
//! # Where we differ from the agent
//!
//! - Configuration: an option with an unknown key, an unknown `optionName` or `parseOptions` entry, a
//!   `matchPattern` whose group count differs from `customFieldNames` (the agent drops every record), or
//!   a `timestamp` other than true/false (the agent reads `"yes"` as false and fails on a JSON boolean;
//!   we take `true`, `"true"`, `false`, `"false"`) is refused at startup. `USINGPLUGGIN` (Java
//!   plug-ins) is refused. Enum values are accepted in any case, with a warning.
//! - Regular expressions (`delimiter`, `matchPattern`) are the `regex` crate's: Java's syntax for
//!   everything but look-around and back-references (refused at startup), and `\w`, `\d`, `\s`, `.` with
//!   Unicode meanings (a `.` also matches `\r`). The built-in patterns keep Java's ASCII meanings.
//! - Conversion runs after framing, so a record is truncated (or split) before it is converted, and a
//!   converted record over the maximum record size is sent raw (the agent truncates the JSON).
//! - A record that cannot be converted is counted and logged (the first at WARN with the reason), where
//!   the agent logs a bare "1 record parsed but skipped".
//! - ADDEC2METADATA: `metadataTimestamp` is in UTC (`+0000`; the agent uses the host's time zone), and
//!   `tags` come from the instance metadata with `tagsFromInstanceMetadata` (the agent calls EC2
//!   `DescribeTags`), so there is none without it.

mod csv;
mod ec2;
pub mod json;
mod log;
mod metadata;
mod single_line;

use std::time::SystemTime;

pub use self::csv::{CsvMode, CsvToJson, Rfc4180};
pub use self::ec2::{AddEc2Metadata, Ec2Metadata, IDENTITY_DOCUMENT_PATH, TAGS_PATH};
pub use self::log::{LogFormat, LogToJson, LogToJsonOptions};
pub use self::metadata::AddMetadata;
pub use self::single_line::SingleLine;
pub use json::JsonFormat;

use super::FileKey;

/// Where a record comes from and when it is processed (the core has no clock: `now` comes in).
#[derive(Debug, Clone, Copy)]
pub struct RecordContext {
    /// The file.
    pub key: FileKey,
    /// The record's first byte in the file (0: the file's first record, a CSV header row).
    pub start: u64,
    /// The wall-clock time, for ADDMETADATA's `ts`.
    pub now: SystemTime,
}

/// What one converter made of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converted {
    /// The converted text.
    Text(String),
    /// Consumed by design, nothing to send: a CSV header row (with `headerRow`).
    Consumed,
    /// Not converted; the agent returns null, so the record is skipped (LOGTOJSON: no match).
    Skipped(String),
    /// Not converted; the agent throws, so the raw record is sent.
    Failed(String),
}

/// One converter of a chain.
#[derive(Debug, Clone)]
pub enum Converter {
    /// `SINGLELINE`.
    SingleLine(SingleLine),
    /// `CSVTOJSON`.
    CsvToJson(CsvToJson),
    /// `LOGTOJSON`.
    LogToJson(LogToJson),
    /// `ADDMETADATA`.
    AddMetadata(AddMetadata),
    /// `ADDEC2METADATA`.
    AddEc2Metadata(AddEc2Metadata),
    /// `ADDBRACKETS` (undocumented in the agent, `BracketsDataConverter.java`): `{`, the record as it is
    /// (its `\n` included), `}`.
    AddBrackets,
}

impl Converter {
    /// The agent's option name (`optionName`).
    pub fn name(&self) -> &'static str {
        match self {
            Converter::SingleLine(_) => "SINGLELINE",
            Converter::CsvToJson(_) => "CSVTOJSON",
            Converter::LogToJson(_) => "LOGTOJSON",
            Converter::AddMetadata(_) => "ADDMETADATA",
            Converter::AddEc2Metadata(_) => "ADDEC2METADATA",
            Converter::AddBrackets => "ADDBRACKETS",
        }
    }

    /// Converts `text`.
    pub fn convert(&mut self, text: &str, context: &RecordContext) -> Converted {
        match self {
            Converter::SingleLine(converter) => Converted::Text(converter.convert(text)),
            Converter::CsvToJson(converter) => converter.convert(text, context),
            Converter::LogToJson(converter) => converter.convert(text),
            Converter::AddMetadata(converter) => Converted::Text(converter.convert(text, context.now)),
            Converter::AddEc2Metadata(converter) => converter.convert(text),
            Converter::AddBrackets => Converted::Text(format!("{{{text}}}")),
        }
    }
}

/// `text` without one trailing `\n` (what every JSON converter of the agent does first).
pub(crate) fn strip_newline(text: &str) -> &str {
    text.strip_suffix('\n').unwrap_or(text)
}

/// Java's `String.trim()`: every character up to U+0020 (`\r`, `\t` and other controls too) removed at
/// both ends.
pub(crate) fn java_trim(text: &str) -> &str {
    text.trim_matches(|c: char| c <= ' ')
}

/// Java's `String.split(regex)` (limit 0): a zero-width match at the start makes no leading empty piece,
/// no match at all gives the whole text, and trailing empty pieces are removed.
pub(crate) fn java_split<'t>(text: &'t str, delimiter: &regex::Regex) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut index = 0;
    let mut matched = false;
    for found in delimiter.find_iter(text) {
        if found.start() == 0 && found.end() == 0 {
            continue;
        }
        matched = true;
        pieces.push(&text[index..found.start()]);
        index = found.end();
    }
    if !matched {
        return vec![text];
    }
    pieces.push(&text[index..]);
    while pieces.last().is_some_and(|piece| piece.is_empty()) {
        pieces.pop();
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split<'t>(text: &'t str, delimiter: &str) -> Vec<&'t str> {
        java_split(text, &regex::Regex::new(delimiter).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn split_is_javas() {
        assert_eq!(split("a,b,,c,,", ","), ["a", "b", "", "c"]);
        assert_eq!(split("", ","), [""]);
        assert_eq!(split(",", ","), Vec::<&str>::new());
        assert_eq!(split(",a", ","), ["", "a"]);
        assert_eq!(split("abc", "|"), ["a", "b", "c"]);
        assert_eq!(split("a\tb", "\\t"), ["a", "b"]);
        assert_eq!(split("a1b22c", "[0-9]+"), ["a", "b", "c"]);
    }

    #[test]
    fn trim_is_javas() {
        assert_eq!(java_trim("\r\t a b\u{1} \r"), "a b");
        assert_eq!(java_trim("\u{a0}x\u{a0}"), "\u{a0}x\u{a0}");
    }
}
