//! The processing step between framing and delivery: the Kinesis Agent's `dataProcessingOptions`, its
//! converters applied in order (`AgentDataConverterChain.java`, `AbstractParser.java` L470–510).
//!
//! A record a converter cannot convert is never lost silently: it is counted ([`ProcessingStats`]) and
//! handed back as [`Processed::Unconverted`] with what to do with it:
//! - by default, the agent's choice: a record LOGTOJSON cannot match is dropped (the agent's "skipped"),
//!   and one a converter fails on is sent raw, unconverted (the agent's "processing error");
//! - with a dead-letter file (`deadLetterFile`, ours), it goes there instead, with the reason; the shell
//!   writes it.
//!
//! Unlike the agent, which converts before it truncates, records are converted after framing; a converted
//! record over the flow's maximum size is a failure (sent raw, which is within the limit).

use std::time::{Instant, SystemTime};

use bytes::Bytes;

use super::FileKey;
use super::processors::{AddEc2Metadata, Converted, Converter, Ec2Metadata, RecordContext};

/// What to do with a record that could not be converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Do not send it (the agent's choice for a LOGTOJSON mismatch); counted.
    Drop,
    /// Send the raw record as read (the agent's choice for a converter's failure); counted.
    SendRaw,
    /// Write it to the flow's dead-letter file (ours, `deadLetterFile`).
    DeadLetter,
}

/// A record a converter could not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconverted {
    /// The record as read, before any converter.
    pub record: Bytes,
    /// The converter's option name (`LOGTOJSON`...).
    pub converter: &'static str,
    /// Why.
    pub reason: String,
    /// What to do with it.
    pub disposition: Disposition,
}

/// What the chain made of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Processed {
    /// Send this.
    Send(Bytes),
    /// Nothing to send by design (a CSV header row); the record's bytes count as delivered.
    Skip,
    /// Not converted: see its disposition.
    Unconverted(Unconverted),
}

/// Counters of a chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessingStats {
    /// Records converted by every converter.
    pub converted: u64,
    /// Records consumed by design (CSV header rows).
    pub consumed: u64,
    /// Unconverted records dropped (the agent's `TotalRecordsSkipped`).
    pub dropped: u64,
    /// Unconverted records sent raw (the agent's `TotalDataProcessingErrors`).
    pub sent_raw: u64,
    /// Unconverted records handed to the dead-letter file.
    pub dead_lettered: u64,
}

/// A flow's processing chain (empty: records go out as framed).
#[derive(Debug, Clone, Default)]
pub struct Processor {
    converters: Vec<Converter>,
    dead_letter: bool,
    max_record_size: usize,
    stats: ProcessingStats,
}

impl Processor {
    /// A chain of `converters`, applied in order. With `dead_letter`, unconverted records go to the
    /// dead-letter file; a converted record over `max_record_size` bytes is a failure.
    pub fn new(converters: Vec<Converter>, dead_letter: bool, max_record_size: usize) -> Processor {
        Processor { converters, dead_letter, max_record_size, stats: ProcessingStats::default() }
    }

    /// The converters.
    pub fn converters(&self) -> &[Converter] {
        &self.converters
    }

    /// Whether unconverted records go to a dead-letter file.
    pub fn dead_letter(&self) -> bool {
        self.dead_letter
    }

    /// The counters so far.
    pub fn stats(&self) -> ProcessingStats {
        self.stats
    }

    /// An ADDEC2METADATA converter whose metadata should be read at `now` (the shell reads it from its
    /// endpoint and calls [`Processor::ec2_metadata_read`]).
    pub fn ec2_metadata_due(&self, now: Instant) -> Option<&AddEc2Metadata> {
        self.ec2_converters().find(|converter| converter.refresh_due(now))
    }

    /// The outcome of reading the EC2 metadata at `now` (None: it failed), for every ADDEC2METADATA
    /// converter of the chain.
    pub fn ec2_metadata_read(&mut self, metadata: Option<Ec2Metadata>, now: Instant) {
        for converter in &mut self.converters {
            if let Converter::AddEc2Metadata(converter) = converter {
                converter.refreshed(metadata.clone(), now);
            }
        }
    }

    /// Whether a CSVTOJSON converter with `headerRow` wants the first line of file `key` before the record
    /// at `start` is processed (the shell then reads it and calls [`Processor::header_line`]).
    pub fn wants_header(&self, key: FileKey, start: u64) -> bool {
        self.converters.iter().any(|converter| match converter {
            Converter::CsvToJson(csv) => csv.wants_header(key, start),
            _ => false,
        })
    }

    /// The first line of file `key`, read from the file.
    pub fn header_line(&mut self, key: FileKey, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        for converter in &mut self.converters {
            if let Converter::CsvToJson(csv) = converter {
                csv.header_line(key, &line);
            }
        }
    }

    fn ec2_converters(&self) -> impl Iterator<Item = &AddEc2Metadata> {
        self.converters.iter().filter_map(|converter| match converter {
            Converter::AddEc2Metadata(converter) => Some(converter),
            _ => None,
        })
    }

    /// Processes one record of file `key` starting at byte `start`, at wall-clock time `now`.
    pub fn process(&mut self, key: FileKey, start: u64, data: Bytes, now: SystemTime) -> Processed {
        if self.converters.is_empty() {
            return Processed::Send(data);
        }
        let context = RecordContext { key, start, now };
        let mut text = String::from_utf8_lossy(&data).into_owned();
        for converter in &mut self.converters {
            let name = converter.name();
            let (reason, agent_choice) = match converter.convert(&text, &context) {
                Converted::Text(converted) => {
                    text = converted;
                    continue;
                }
                Converted::Consumed => {
                    self.stats.consumed += 1;
                    return Processed::Skip;
                }
                Converted::Skipped(reason) => (reason, Disposition::Drop),
                Converted::Failed(reason) => (reason, Disposition::SendRaw),
            };
            return self.unconverted(data, name, reason, agent_choice);
        }
        if text.len() > self.max_record_size {
            let reason = format!(
                "the converted record has {} bytes, over the maximum record size ({})",
                text.len(),
                self.max_record_size
            );
            let name = self.converters.last().map_or("", Converter::name);
            return self.unconverted(data, name, reason, Disposition::SendRaw);
        }
        self.stats.converted += 1;
        Processed::Send(Bytes::from(text))
    }

    fn unconverted(
        &mut self,
        record: Bytes,
        converter: &'static str,
        reason: String,
        agent_choice: Disposition,
    ) -> Processed {
        let disposition = if self.dead_letter { Disposition::DeadLetter } else { agent_choice };
        match disposition {
            Disposition::Drop => self.stats.dropped += 1,
            Disposition::SendRaw => self.stats.sent_raw += 1,
            Disposition::DeadLetter => self.stats.dead_lettered += 1,
        }
        Processed::Unconverted(Unconverted { record, converter, reason, disposition })
    }
}
