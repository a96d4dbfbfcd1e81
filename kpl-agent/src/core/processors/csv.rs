//! `CSVTOJSON` (`CSVToJSONDataConverter.java` L57–82): a delimited line to a JSON object.

use std::collections::{HashMap, VecDeque};

use regex::Regex;

use super::json::{Field, JsonFormat, object_line};
use super::{Converted, RecordContext, java_split, strip_newline};
use crate::core::FileKey;

/// The most files whose header row is remembered at once (oldest forgotten first).
pub const MAX_HEADER_FILES: usize = 4096;

/// How a line is cut into columns.
#[derive(Debug, Clone)]
pub enum CsvMode {
    /// The agent's: `delimiter` is a regular expression given to Java's `String.split` (so `"|"` splits
    /// between every character and `"\\t"` is a TAB); no quoting; trailing empty columns are dropped (and
    /// so become null).
    Agent(Regex),
    /// Ours, `"rfc4180": true`: RFC 4180 quoting (`"a,b"`, `""` for a quote) through the `csv` crate's
    /// parser (`csv-core`), with a one-byte delimiter; a trailing `\r` ends the row; empty columns are
    /// empty strings, not null.
    Rfc4180(Box<Rfc4180>),
}

/// An RFC 4180 row parser, built once (its DFA) and reset for each record.
#[derive(Debug)]
pub struct Rfc4180 {
    delimiter: u8,
    reader: csv_core::Reader,
    output: Vec<u8>,
    ends: Vec<usize>,
}

/// Built again: csv-core 0.1.13's `Dfa::clone` copies only the transition table (not the output table
/// or the byte classes), so a cloned reader misparses every row.
impl Clone for Rfc4180 {
    fn clone(&self) -> Rfc4180 {
        Rfc4180::new(self.delimiter)
    }
}

impl Rfc4180 {
    /// A parser with this delimiter.
    pub fn new(delimiter: u8) -> Rfc4180 {
        let reader = csv_core::ReaderBuilder::new().delimiter(delimiter).build();
        Rfc4180 { delimiter, reader, output: Vec::new(), ends: Vec::new() }
    }

    /// The columns of the one row in `line`.
    fn row(&mut self, line: &[u8]) -> Result<Vec<String>, String> {
        use csv_core::ReadRecordResult;
        self.reader.reset();
        // Unquoting only shrinks a row, and it has at most one field per byte, plus one.
        self.output.resize(line.len(), 0);
        self.ends.resize(line.len() + 1, 0);
        let (mut result, read, written, mut fields) =
            self.reader.read_record(line, &mut self.output, &mut self.ends);
        if result == ReadRecordResult::InputEmpty {
            // No terminator at the end: an empty input ends the row (end positions count from the row's
            // start, across calls).
            let (output, ends) = (&mut self.output[written..], &mut self.ends[fields..]);
            let (last, _, _, more) = self.reader.read_record(&[], output, ends);
            (result, fields) = (last, fields + more);
        } else if line[read..].iter().any(|byte| !matches!(byte, b'\r' | b'\n')) {
            return Err("several CSV rows in one record (a line break outside quotes)".into());
        }
        if result == ReadRecordResult::End {
            return Ok(Vec::new());
        }
        let mut start = 0;
        Ok((self.ends[..fields].iter())
            .map(|&end| {
                let field = String::from_utf8_lossy(&self.output[start..end]).into_owned();
                start = end;
                field
            })
            .collect())
    }
}

/// `CSVTOJSON`: `customFieldNames` (required unless `headerRow`), `delimiter` (default `,`).
///
/// Column *i* goes to the *i*-th name; missing columns are null, extra columns are ignored, whitespace is
/// kept. Ours, `"headerRow": true`: the first line of each file names the columns. As a record (offset 0)
/// it is not sent; for a file whose first line was not seen as a record (resumed from a checkpoint past
/// it, or skipped by `skipHeaderLines`), the shell reads it from the file ([`CsvToJson::wants_header`],
/// [`CsvToJson::header_line`]). If that fails, `customFieldNames`, if given, names the columns;
/// without it, the record cannot be converted.
#[derive(Debug, Clone)]
pub struct CsvToJson {
    field_names: Vec<String>,
    mode: CsvMode,
    header_row: bool,
    format: JsonFormat,
    headers: HashMap<FileKey, Vec<String>>,
    header_order: VecDeque<FileKey>,
}

impl CsvToJson {
    /// A converter; `field_names` may be empty only with `header_row`.
    pub fn new(field_names: Vec<String>, mode: CsvMode, header_row: bool, format: JsonFormat) -> CsvToJson {
        CsvToJson {
            field_names,
            mode,
            header_row,
            format,
            headers: HashMap::new(),
            header_order: VecDeque::new(),
        }
    }

    fn columns(&mut self, line: &str) -> Result<Vec<String>, String> {
        match &mut self.mode {
            CsvMode::Agent(delimiter) => {
                Ok(java_split(line, delimiter).into_iter().map(str::to_owned).collect())
            }
            CsvMode::Rfc4180(reader) => reader.row(line.as_bytes()),
        }
    }

    /// Converts one record.
    pub fn convert(&mut self, text: &str, context: &RecordContext) -> Converted {
        let line = strip_newline(text);
        let columns = match self.columns(line) {
            Ok(columns) => columns,
            Err(reason) => return Converted::Failed(reason),
        };
        if self.header_row && context.start == 0 {
            self.remember(context.key, columns);
            return Converted::Consumed;
        }
        let names = match self.headers.get(&context.key) {
            Some(names) if self.header_row => names,
            _ if self.field_names.is_empty() => {
                return Converted::Failed(
                    "the file's header row was not seen (read from a checkpoint past its start) and no \
                     customFieldNames are given"
                        .into(),
                );
            }
            _ => &self.field_names,
        };
        let fields: Vec<(&str, Field<'_>)> = (names.iter().enumerate())
            .map(|(index, name)| (name.as_str(), Field::Text(columns.get(index).map(String::as_str))))
            .collect();
        Converted::Text(object_line(&fields, self.format))
    }

    /// Whether the header row of file `key` is wanted before its record at `start` is converted.
    pub fn wants_header(&self, key: FileKey, start: u64) -> bool {
        self.header_row && start > 0 && !self.headers.contains_key(&key)
    }

    /// The first line of file `key` (its `\n` optional), read from the file.
    pub fn header_line(&mut self, key: FileKey, line: &str) {
        if let Ok(names) = self.columns(strip_newline(line)) {
            self.remember(key, names);
        }
    }

    fn remember(&mut self, key: FileKey, names: Vec<String>) {
        if self.headers.insert(key, names).is_none() {
            self.header_order.push_back(key);
            if self.header_order.len() > MAX_HEADER_FILES
                && let Some(oldest) = self.header_order.pop_front()
            {
                self.headers.remove(&oldest);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4180_rows_also_after_a_clone() {
        let mut parser = Rfc4180::new(b',').clone();
        let mut row = |line: &str| parser.row(line.as_bytes());
        assert_eq!(row("id,name"), Ok(vec!["id".to_owned(), "name".to_owned()]));
        assert_eq!(row("a,\"b,c\",\r"), Ok(vec!["a".to_owned(), "b,c".to_owned(), String::new()]));
        assert_eq!(row(""), Ok(vec![]));
        assert!(row("1,2\n3,4").is_err());
        let mut csv = CsvToJson::new(
            Vec::new(),
            CsvMode::Rfc4180(Box::new(Rfc4180::new(b','))),
            true,
            JsonFormat::Compact,
        );
        let context = RecordContext { key: FileKey(1), start: 0, now: std::time::SystemTime::now() };
        assert_eq!(csv.convert("id,name\n", &context), Converted::Consumed);
    }
}
