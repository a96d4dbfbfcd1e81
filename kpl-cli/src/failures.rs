//! Records `kpl produce` did not write, grouped by error: a million records failing for one reason are one
//! line, `1,000,000 records failed: <error> (records 1, 2, 3, 4, 5, ...)`, with the full list, one JSON line
//! per record, in the file of `--errors`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::CliError;

/// Record numbers shown with each error.
const NUMBERS_SHOWN: usize = 5;

/// Distinct errors listed; the others are summed up in one line.
const GROUPS_SHOWN: usize = 10;

/// One line of the `--errors` file.
#[derive(Debug, Serialize)]
struct ErrorLine<'a> {
    /// The record's number: its line number with line framing, counting from 1.
    record: u64,
    /// Why it was not written.
    error: &'a str,
}

/// The records that failed with one error.
#[derive(Debug)]
struct Group {
    /// When the error was first seen, to list groups in order.
    first_seen: usize,
    count: u64,
    first_records: Vec<u64>,
}

/// Failed records, grouped by error message, and written to the `--errors` file as they come.
#[derive(Debug)]
pub struct Failures {
    groups: HashMap<String, Group>,
    total: u64,
    file: Option<(PathBuf, BufWriter<File>)>,
}

impl Failures {
    /// Creates the `--errors` file, when there is one (emptied if it exists).
    pub fn new(errors_file: Option<&Path>) -> Result<Self, CliError> {
        let file = match errors_file {
            Some(path) => {
                let file = File::create(path)
                    .map_err(|source| CliError::WriteFile { path: path.to_owned(), source })?;
                Some((path.to_owned(), BufWriter::new(file)))
            }
            None => None,
        };
        Ok(Self { groups: HashMap::new(), total: 0, file })
    }

    /// Records not written.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Notes that record `number` failed with `error`, grouped with the others of the same `error`; the
    /// `--errors` file gets `detail`, which may hold what differs from record to record (attempts made).
    pub fn add(&mut self, number: u64, error: &str, detail: &str) -> Result<(), CliError> {
        let error = crate::one_line(error);
        if let Some((path, file)) = &mut self.file {
            let line = serde_json::to_string(&ErrorLine { record: number, error: &crate::one_line(detail) })?;
            writeln!(file, "{line}").map_err(|source| CliError::WriteFile { path: path.clone(), source })?;
        }
        self.total += 1;
        let first_seen = self.groups.len();
        let group =
            self.groups.entry(error).or_insert(Group { first_seen, count: 0, first_records: Vec::new() });
        group.count += 1;
        if group.first_records.len() < NUMBERS_SHOWN {
            group.first_records.push(number);
        }
        Ok(())
    }

    /// Flushes the `--errors` file, and returns the report of the failures so far: one line per distinct error (at most
    /// [`GROUPS_SHOWN`], then one for the rest), each ending in a newline.
    pub fn finish(&mut self) -> Result<String, CliError> {
        if let Some((path, file)) = &mut self.file {
            file.flush().map_err(|source| CliError::WriteFile { path: path.clone(), source })?;
        }
        let mut groups: Vec<(String, Group)> = std::mem::take(&mut self.groups).into_iter().collect();
        groups.sort_by_key(|(_, group)| group.first_seen);
        let mut report = String::new();
        for (error, group) in groups.iter().take(GROUPS_SHOWN) {
            let numbers: Vec<String> = group.first_records.iter().map(u64::to_string).collect();
            let more = if group.count > group.first_records.len() as u64 { ", ..." } else { "" };
            let noun = if group.count == 1 { "record" } else { "records" };
            let _ = writeln!(
                report,
                "{} failed: {error} ({noun} {}{more})",
                count(group.count, "record", "records"),
                numbers.join(", ")
            );
        }
        if groups.len() > GROUPS_SHOWN {
            let rest: u64 = groups[GROUPS_SHOWN..].iter().map(|(_, group)| group.count).sum();
            let _ = writeln!(
                report,
                "{} more records failed with {} other errors{}",
                thousands(rest),
                groups.len() - GROUPS_SHOWN,
                if self.file.is_some() { "" } else { " (list them all with --errors FILE)" }
            );
        }
        Ok(report)
    }
}

/// `n` and what it counts, singular or plural: `1 record`, `1,998 records`.
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// `n` with a comma between groups of three digits: `1,998`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_get_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1998), "1,998");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn identical_errors_are_one_line_with_the_first_record_numbers() {
        let mut failures = Failures::new(None).unwrap();
        for number in 1..=1998 {
            failures.add(number, "no credentials\n  in the chain", "").unwrap();
        }
        failures.add(2000, "too big", "").unwrap();
        assert_eq!(failures.total(), 1999);
        assert_eq!(
            failures.finish().unwrap(),
            "1,998 records failed: no credentials in the chain (records 1, 2, 3, 4, 5, ...)\n\
             1 record failed: too big (record 2000)\n"
        );
    }

    #[test]
    fn beyond_ten_errors_the_rest_are_summed_up() {
        let mut failures = Failures::new(None).unwrap();
        for number in 1..=13 {
            failures.add(number, &format!("error {number}"), "").unwrap();
        }
        let report = failures.finish().unwrap();
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "1 record failed: error 1 (record 1)");
        assert_eq!(lines[10], "3 more records failed with 3 other errors (list them all with --errors FILE)");
    }

    #[test]
    fn the_errors_file_has_one_json_line_per_record() {
        let path = std::env::temp_dir().join(format!("kpl-failures-{}.jsonl", std::process::id()));
        let mut failures = Failures::new(Some(&path)).unwrap();
        failures.add(3, "expired", "a \"quoted\" error after 3 attempts").unwrap();
        failures.add(9, "expired", "a \"quoted\" error after 4 attempts").unwrap();
        assert_eq!(failures.finish().unwrap(), "2 records failed: expired (records 3, 9)\n");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            text,
            "{\"record\":3,\"error\":\"a \\\"quoted\\\" error after 3 attempts\"}\n\
             {\"record\":9,\"error\":\"a \\\"quoted\\\" error after 4 attempts\"}\n"
        );
    }
}
