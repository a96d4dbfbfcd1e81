//! The processing step at run time: what the core's processors need from the outside world (a CSV
//! header row read from the file, the EC2 instance metadata) and what they hand back (records for the
//! dead-letter file).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use bytes::Bytes;

use super::flow::FlowRuntime;
use super::imds;
use crate::core::{Disposition, FileKey, Unconverted};

/// A flow's processing state in the shell.
#[derive(Debug, Default)]
pub(crate) struct ProcessingRuntime {
    /// `deadLetterFile`, once opened, and whether it has lines not yet synced to disk.
    dead_letter: Option<File>,
    dead_letter_unsynced: bool,
    /// Whether an unconverted record was warned about (the first one is; the rest are counted).
    warned_unconverted: bool,
}

impl FlowRuntime {
    /// Carries out the disposition of a record a converter could not convert; returns what to send, if
    /// anything. A dead-letter write that fails sends the raw record instead (loudly): nothing is lost.
    pub(crate) fn unconverted(
        &mut self,
        key: FileKey,
        start: u64,
        unconverted: Unconverted,
    ) -> Option<Bytes> {
        let path = self.tailer.path(key).map(|p| p.display().to_string()).unwrap_or_default();
        let Unconverted { record, converter, reason, disposition } = unconverted;
        tracing::debug!(flow = %self.config.id(), path, offset = start, converter, reason, ?disposition, "record not converted");
        if !self.processing.warned_unconverted {
            self.processing.warned_unconverted = true;
            let what = match disposition {
                Disposition::Drop => {
                    "dropped, as the Kinesis Agent does; set deadLetterFile to keep such records"
                }
                Disposition::SendRaw => {
                    "sent raw, as the Kinesis Agent does; set deadLetterFile to keep such records apart"
                }
                Disposition::DeadLetter => "written to the dead-letter file",
            };
            tracing::warn!(flow = %self.config.id(), path, offset = start, converter, reason, "a record could not be converted: {what} (counted in the progress log; later ones are logged at debug)");
        }
        match disposition {
            Disposition::Drop => None,
            Disposition::SendRaw => Some(record),
            Disposition::DeadLetter => {
                let line = serde_json::json!({
                    "flow": self.config.id(),
                    "file": path,
                    "offset": start,
                    "converter": converter,
                    "reason": reason,
                    "record": String::from_utf8_lossy(&record),
                });
                match self.write_dead_letter(&format!("{line}\n")) {
                    Ok(()) => None,
                    Err(error) => {
                        tracing::error!(flow = %self.config.id(), %error, "cannot write the dead-letter file; the record is sent raw");
                        Some(record)
                    }
                }
            }
        }
    }

    /// Flushes the dead-letter file to disk (before checkpoints that pass its records are saved).
    pub(crate) fn sync_dead_letter(&mut self) -> std::io::Result<()> {
        match &self.processing.dead_letter {
            Some(file) if self.processing.dead_letter_unsynced => {
                file.sync_data()?;
                self.processing.dead_letter_unsynced = false;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn write_dead_letter(&mut self, line: &str) -> std::io::Result<()> {
        let file = match &mut self.processing.dead_letter {
            Some(file) => file,
            None => {
                let path = self
                    .config
                    .dead_letter_file
                    .as_ref()
                    .ok_or_else(|| std::io::Error::other("no deadLetterFile"))?;
                self.processing.dead_letter.insert(OpenOptions::new().create(true).append(true).open(path)?)
            }
        };
        // One write of the whole line, so that concurrent appenders do not interleave within it.
        file.write_all(line.as_bytes())?;
        self.processing.dead_letter_unsynced = true;
        Ok(())
    }

    /// Gives the processor the first line of file `key` when a CSV header row is wanted for its record at
    /// `start` (a file resumed past its first line), read through the open handle (the same file, whatever
    /// its name now). Bounded by the maximum record size.
    pub(crate) fn provide_header(&mut self, key: FileKey, start: u64) {
        if !self.config.processor.wants_header(key, start) {
            return;
        }
        let Some(file) = self.files.get(&key) else { return };
        let limit = self.config.framing.max_record_size.min(usize::try_from(start).unwrap_or(usize::MAX));
        let mut line = vec![0; limit];
        let mut read = 0;
        while read < limit {
            match file.read_at(&mut line[read..], read as u64) {
                Ok(0) => break,
                Ok(n) => read += n,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    tracing::warn!(flow = %self.config.id(), %error, "cannot read the CSV header row");
                    return;
                }
            }
            if line[..read].contains(&b'\n') {
                break;
            }
        }
        let end = line[..read].iter().position(|byte| *byte == b'\n').unwrap_or(read);
        self.config.processor.header_line(key, &line[..end]);
    }

    /// Reads the EC2 instance metadata for ADDEC2METADATA when it is due (at the start, then every
    /// `metadataTTL`); a failure is warned about and records pass without it until the next try, as in the
    /// agent.
    pub(crate) async fn refresh_ec2_metadata(&mut self, now: Instant) {
        let Some(converter) = self.config.processor.ec2_metadata_due(now) else { return };
        let (endpoint, tags) = (converter.endpoint().map(str::to_owned), converter.tags());
        let metadata = match imds::read_identity(endpoint.as_deref(), tags).await {
            Ok(metadata) => {
                tracing::info!(flow = %self.config.id(), "EC2 instance metadata read");
                Some(metadata)
            }
            Err(error) => {
                tracing::warn!(flow = %self.config.id(), %error, "cannot read the EC2 instance metadata (IMDSv2); ADDEC2METADATA passes records unchanged until it can");
                None
            }
        };
        self.config.processor.ec2_metadata_read(metadata, now);
    }
}
