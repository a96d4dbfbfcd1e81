//! The Kinesis Agent's converters (`dataProcessingOptions`), each with the agent's exact behaviour by
//! default (`shared/reference/kinesis-agent.md` (b), from `processing/processors/*.java`) and its fixes
//! as opt-in options:
//!
//! - [`SingleLine`] (`SINGLELINE`), [`CsvToJson`] (`CSVTOJSON`), [`LogToJson`] (`LOGTOJSON`),
//!   [`AddMetadata`] (`ADDMETADATA`), [`AddEc2Metadata`] (`ADDEC2METADATA`, its metadata read by the
//!   shell through IMDSv2);
//! - [`json`]: JSON text as the agent's Jackson writes it (field order kept, compact or pretty).
//!
//! Every converter reads the record as UTF-8 with invalid bytes replaced by U+FFFD (Java's decoding), and
//! every JSON converter removes one trailing `\n` from its input and appends `\n` to its output.

mod csv;
mod ec2;
pub mod json;
mod log;
mod metadata;
mod single_line;

use std::time::SystemTime;

pub use self::csv::{CsvMode, CsvToJson};
pub use self::ec2::{AddEc2Metadata, Ec2Metadata, IDENTITY_DOCUMENT_PATH};
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
