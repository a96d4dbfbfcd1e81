//! `kpl deagg`: the user records inside Kinesis records, one JSON object per line.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::ops::RangeInclusive;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use kpl_deagg::{DeaggError, Deaggregator, Mode, ReceivedRecord, UserRecord};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

const EXAMPLES: &str = "\
Examples:
  aws kinesis get-records --shard-iterator \"$IT\" | kpl deagg
  kpl deagg --utf8 page1.json page2.json                # data as text instead of base64
  kpl deagg --raw record.bin                            # the bytes of one Kinesis record
  kpl deagg --strict --hash-range 0..170141183460469231731687303715884105727 < records.json

Each output line: {\"sequence_number\", \"sub_sequence_number\", \"partition_key\", \"explicit_hash_key\",
\"aggregated\", \"data\"}. With --raw, a record that is not an aggregate has no sequence number or partition
key (null). A Kinesis record that cannot be deaggregated is reported on standard error, `record <sequence
number>: <error>`, and the exit code is then 1; one the hash-range filter drops is reported the same way
but is not an error (the KCL drops it silently).";

/// Options of `kpl deagg`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct DeaggArgs {
    /// Files to read, in order [default: standard input]. Each holds `aws kinesis get-records` JSON
    /// ({"Records": [...]}; several documents may follow each other), or with --raw one record's bytes.
    #[arg(value_name = "FILE")]
    files: Vec<PathBuf>,
    /// The input is the bytes of one Kinesis record, not JSON.
    #[arg(long)]
    raw: bool,
    /// Print data as UTF-8 text instead of base64 (an error for data that is not UTF-8).
    #[arg(long)]
    utf8: bool,
    /// Report a record that starts like an aggregate but is not a valid one, instead of passing it on
    /// unchanged as the KCL does.
    #[arg(long)]
    strict: bool,
    /// Drop aggregates holding a user record outside this shard's hash-key range, as the KCL does.
    /// START and END are decimal, both included, as ListShards reports them.
    #[arg(long, value_name = "START..END", value_parser = parse_hash_range)]
    hash_range: Option<RangeInclusive<u128>>,
}

/// A page of `aws kinesis get-records` output; other fields are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetRecordsOutput {
    records: Vec<JsonRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonRecord {
    sequence_number: String,
    partition_key: String,
    /// Base64.
    data: String,
    /// Not in GetRecords output, but accepted (e.g. from a Lambda event converted by hand).
    #[serde(default)]
    explicit_hash_key: Option<String>,
}

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    sequence_number: Option<&'a str>,
    sub_sequence_number: u64,
    partition_key: Option<&'a str>,
    explicit_hash_key: Option<&'a str>,
    aggregated: bool,
    data: Cow<'a, str>,
}

/// Prints the user records of every record read; fails if any record could not be deaggregated.
pub fn run(args: &DeaggArgs) -> Result<(), CliError> {
    let mode = if args.strict { Mode::Strict } else { Mode::KclCompatible };
    let deaggregator = match &args.hash_range {
        Some(range) => Deaggregator::new(mode).with_hash_range(range.clone()),
        None => Deaggregator::new(mode),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut undecodable = 0;
    for input in inputs(&args.files)? {
        for record in records(&input, args.raw)? {
            let sequence_number = record.sequence_number.clone();
            match deaggregator.deaggregate(record) {
                Ok(users) => {
                    for user in users {
                        print_user(&mut out, &user, args)?;
                    }
                }
                Err(error) => {
                    let who =
                        if args.raw { "the record".to_owned() } else { format!("record {sequence_number}") };
                    eprintln!("{who}: {error}");
                    undecodable += u64::from(!matches!(error, DeaggError::OutOfShardRange { .. }));
                }
            }
        }
    }
    out.flush().map_err(CliError::Stdout)?;
    if undecodable > 0 {
        return Err(CliError::Undecodable(undecodable));
    }
    Ok(())
}

/// The contents of each file, or of standard input.
fn inputs(files: &[PathBuf]) -> Result<Vec<Vec<u8>>, CliError> {
    if files.is_empty() {
        let mut input = Vec::new();
        std::io::stdin().lock().read_to_end(&mut input).map_err(CliError::Stdin)?;
        return Ok(vec![input]);
    }
    files
        .iter()
        .map(|path| std::fs::read(path).map_err(|source| CliError::ReadFile { path: path.clone(), source }))
        .collect()
}

/// The Kinesis records in one input.
fn records(input: &[u8], raw: bool) -> Result<Vec<ReceivedRecord>, CliError> {
    if raw {
        return Ok(vec![ReceivedRecord {
            data: Bytes::copy_from_slice(input),
            partition_key: String::new(),
            explicit_hash_key: None,
            sequence_number: String::new(),
        }]);
    }
    let mut records = Vec::new();
    for page in serde_json::Deserializer::from_slice(input).into_iter::<GetRecordsOutput>() {
        for record in page?.records {
            let data = STANDARD.decode(&record.data).map_err(|source| CliError::Base64 {
                sequence_number: record.sequence_number.clone(),
                source,
            })?;
            records.push(ReceivedRecord {
                data: Bytes::from(data),
                partition_key: record.partition_key,
                explicit_hash_key: record.explicit_hash_key,
                sequence_number: record.sequence_number,
            });
        }
    }
    Ok(records)
}

fn print_user(out: &mut impl Write, user: &UserRecord, args: &DeaggArgs) -> Result<(), CliError> {
    // A raw record that is not an aggregate carries no sequence number or partition key of its own.
    let keyed = !args.raw || user.aggregated;
    let data = if args.utf8 {
        Cow::Borrowed(std::str::from_utf8(&user.data).map_err(|_| CliError::NotUtf8 {
            sequence_number: user.sequence_number.to_string(),
            sub_sequence_number: user.sub_sequence_number,
        })?)
    } else {
        Cow::Owned(STANDARD.encode(&user.data))
    };
    let line = Line {
        sequence_number: if args.raw { None } else { Some(&user.sequence_number) },
        sub_sequence_number: user.sub_sequence_number,
        partition_key: keyed.then_some(&*user.partition_key),
        explicit_hash_key: user.explicit_hash_key.as_deref(),
        aggregated: user.aggregated,
        data,
    };
    serde_json::to_writer(&mut *out, &line).map_err(|error| CliError::Stdout(error.into()))?;
    writeln!(out).map_err(CliError::Stdout)
}

/// `START..END`, both decimal hash keys, END included.
fn parse_hash_range(text: &str) -> Result<RangeInclusive<u128>, String> {
    let (start, end) = text
        .split_once("..")
        .ok_or("expected START..END, e.g. 0..340282366920938463463374607431768211455")?;
    let key = |text: &str| {
        text.parse::<u128>().map_err(|_| format!("{text:?} is not a decimal hash key (0 to 2^128-1)"))
    };
    let (start, end) = (key(start)?, key(end)?);
    if start > end {
        return Err(format!("{start} is after {end}"));
    }
    Ok(start..=end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_ranges_are_inclusive_decimal_pairs() {
        assert_eq!(parse_hash_range("0..10"), Ok(0..=10));
        assert_eq!(parse_hash_range(&format!("5..{}", u128::MAX)), Ok(5..=u128::MAX));
        assert!(parse_hash_range("10..0").is_err());
        assert!(parse_hash_range("0-10").is_err());
        assert!(parse_hash_range("0..x").is_err());
        assert!(parse_hash_range("-1..3").is_err());
    }

    #[test]
    fn pages_may_follow_each_other() {
        let input = br#"{"Records":[{"SequenceNumber":"1","PartitionKey":"k","Data":"aGk=","ApproximateArrivalTimestamp":1}],"NextShardIterator":"x"}
            {"Records":[]}"#;
        let pages = records(input, false).unwrap();
        assert_eq!(pages.len(), 1);
        assert_eq!(&pages[0].data[..], b"hi");
        assert!(matches!(
            records(
                b"{\"Records\":[{\"SequenceNumber\":\"1\",\"PartitionKey\":\"k\",\"Data\":\"!\"}]}",
                false
            ),
            Err(CliError::Base64 { .. })
        ));
        assert!(matches!(records(b"[]", false), Err(CliError::Json(_))));
    }
}
