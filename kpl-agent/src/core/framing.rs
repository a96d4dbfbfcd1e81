//! Framing: a file's bytes into records, each with the byte range `[start, end)` it came from.
//!
//! - A record is a line, its `\n` kept (as the Kinesis Agent sends it); `\r` before the `\n` is dropped
//!   when `strip_cr` is set.
//! - With a multi-line start pattern, a record runs from a line matching it (at the line's start, Java's
//!   `lookingAt`) to the next such line, or until no byte arrived for `multi_line_flush`: unlike the agent,
//!   a stack trace written in several writes stays one record.
//! - A final line without `\n` is sent after `partial_line_flush` of quiet (the agent never sends it).
//! - A record over `max_record_size` is truncated to the limit with the terminator on a UTF-8 boundary
//!   (the agent's behaviour, which may cut a character), split into several records, or dropped; the rest
//!   of an overlong line is discarded (counted as [`SkipReason::DiscardedTail`]) as it arrives, so memory
//!   stays within the limit whatever the line length.
//!
//! Every byte pushed ends up in exactly one [`Framed`] item, in file order: ranges are contiguous, which is
//! what checkpoints are computed from.

use std::time::{Duration, Instant};

use bytes::Bytes;
use regex::bytes::Regex;

/// What happens to a record over the maximum size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OversizePolicy {
    /// Cut it to the maximum, ending with the terminator (the Kinesis Agent's behaviour).
    #[default]
    Truncate,
    /// Send it as several records of at most the maximum each.
    Split,
    /// Do not send it (counted).
    Drop,
}

/// Framing settings of a flow.
#[derive(Debug, Clone)]
pub struct FramingConfig {
    /// Largest record in bytes (the Kinesis Agent: 1 MiB minus the partition key).
    pub max_record_size: usize,
    /// What happens to larger ones.
    pub oversize: OversizePolicy,
    /// Appended to a truncated record (`truncatedRecordTerminator`, default `"\n"`); shorter than
    /// `max_record_size`.
    pub truncated_record_terminator: Vec<u8>,
    /// Drop a `\r` before the `\n`.
    pub strip_cr: bool,
    /// Lines matching this (anchored at the line's start) begin a record (`multiLineStartPattern`).
    pub multi_line_start: Option<Regex>,
    /// Quiet time after which a multi-line record is complete.
    pub multi_line_flush: Duration,
    /// Quiet time after which a final line without `\n` is sent; `None`: never (the agent's behaviour).
    pub partial_line_flush: Option<Duration>,
    /// Lines skipped at the start of a file read from offset 0 (`skipHeaderLines`).
    pub skip_header_lines: u64,
}

impl Default for FramingConfig {
    fn default() -> Self {
        FramingConfig {
            max_record_size: 1024 * 1024 - 256,
            oversize: OversizePolicy::Truncate,
            truncated_record_terminator: b"\n".to_vec(),
            strip_cr: false,
            multi_line_start: None,
            multi_line_flush: Duration::from_secs(1),
            partial_line_flush: Some(Duration::from_secs(5)),
            skip_header_lines: 0,
        }
    }
}

/// Why bytes were not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// A header line (`skipHeaderLines`).
    Header,
    /// A record over the maximum, with [`OversizePolicy::Drop`].
    Oversize,
    /// The rest of an overlong line after its truncated or dropped start.
    DiscardedTail,
    /// Bytes read only to find where the last line of a file starts, when reading starts at its end
    /// (`initialPosition` `END_OF_FILE`, [`Framer::at_end`]): the lines complete before the end.
    BeforeStart,
}

/// How far back from a file's end [`Framer::at_end`] looks for the start of its last line (the Kinesis
/// Agent looks in its last read buffer, 4 or 5 MiB; a last line longer than this is skipped whole).
pub const END_WINDOW: u64 = 64 << 10;

/// One framed item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// A record to send, from the bytes `[start, end)`.
    Record {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// The record.
        data: Bytes,
        /// Whether it was cut to the maximum size.
        truncated: bool,
    },
    /// Bytes `[start, end)` not sent.
    Skip {
        /// First byte.
        start: u64,
        /// One past the last byte.
        end: u64,
        /// Why.
        reason: SkipReason,
    },
}

/// The framing state of one file.
#[derive(Debug)]
pub struct Framer {
    /// End of the last item emitted: the pending record starts here.
    emitted: u64,
    /// Offset after the last byte pushed.
    consumed: u64,
    /// Start of the current, incomplete line.
    line_start: u64,
    /// The current line's bytes `[line_start, consumed)`.
    line: Vec<u8>,
    /// Multi-line: the complete lines of the pending record, `[emitted, line_start)`.
    record: Vec<u8>,
    headers_left: u64,
    /// The rest of the current line is discarded (after an oversize record, or at a start mid-line).
    discarding: Option<SkipReason>,
    /// Lines ending at or before this offset are skipped ([`Framer::at_end`]).
    skip_until: u64,
    last_data: Option<Instant>,
}

impl Framer {
    /// A framer for a file read from `offset` on; header lines are skipped only from offset 0.
    pub fn new(offset: u64, config: &FramingConfig) -> Framer {
        Framer {
            emitted: offset,
            consumed: offset,
            line_start: offset,
            line: Vec::new(),
            record: Vec::new(),
            headers_left: if offset == 0 { config.skip_header_lines } else { 0 },
            discarding: None,
            skip_until: 0,
            last_data: None,
        }
    }

    /// A framer for a file of `size` bytes read from the start of its last line (`initialPosition`
    /// `END_OF_FILE`, as the Kinesis Agent starts: after the last line boundary): reading starts
    /// [`END_WINDOW`] before the end (at [`consumed`](Self::consumed)); the bytes up to the first `\n`
    /// there and the lines that end by `size` are skipped ([`SkipReason::BeforeStart`]), and the line
    /// being written at `size` is sent whole once complete. Never a fragment: a last line longer than the
    /// window is skipped whole.
    pub fn at_end(size: u64) -> Framer {
        let start = size.saturating_sub(END_WINDOW);
        Framer {
            emitted: start,
            consumed: start,
            line_start: start,
            line: Vec::new(),
            record: Vec::new(),
            headers_left: 0,
            discarding: (start > 0).then_some(SkipReason::BeforeStart),
            skip_until: size,
            last_data: None,
        }
    }

    /// Whether its offsets are not at a line start yet ([`Framer::at_end`] before the first `\n`):
    /// there is no checkpoint to save, and a restart starts over.
    pub fn seeking_line_start(&self) -> bool {
        self.discarding == Some(SkipReason::BeforeStart)
    }

    /// Where the next read starts: the offset after the last byte pushed.
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// Bytes pushed and held, not yet in an item.
    pub fn held_bytes(&self) -> u64 {
        self.consumed - self.emitted
    }

    /// The next bytes of the file, read at [`consumed`](Self::consumed), arriving at `now`.
    pub fn push(&mut self, config: &FramingConfig, mut data: &[u8], now: Instant, out: &mut Vec<Framed>) {
        if data.is_empty() {
            return;
        }
        self.last_data = Some(now);
        while !data.is_empty() {
            let (part, rest) = match data.iter().position(|&b| b == b'\n') {
                Some(i) => data.split_at(i + 1),
                None => (data, &[][..]),
            };
            let ends_line = part.last() == Some(&b'\n');
            self.take(config, part, ends_line, out);
            if ends_line {
                self.end_line(config, out);
            }
            data = rest;
        }
    }

    /// Sends what waited long enough: a multi-line record after `multi_line_flush`, a final line without
    /// `\n` after `partial_line_flush`. With `force` (the file was rotated away and read to its end),
    /// sends everything held at once.
    pub fn poll(&mut self, config: &FramingConfig, now: Instant, force: bool, out: &mut Vec<Framed>) {
        if force && self.seeking_line_start() {
            // The file is finished: what was skipped was its last, partial line.
            self.discarding = None;
        }
        let Some(last) = self.last_data else { return };
        let quiet = now.saturating_duration_since(last);
        let partial_due = force || config.partial_line_flush.is_some_and(|wait| quiet >= wait);
        if !self.line.is_empty() && partial_due {
            // The line being written when reading started at the end is sent, not skipped.
            self.skip_until = self.skip_until.min(self.line_start);
            self.end_line(config, out);
        }
        let record_due = force || partial_due || quiet >= config.multi_line_flush;
        if self.line.is_empty() && !self.record.is_empty() && record_due {
            self.emit_record(out);
        }
    }

    /// Appends bytes of the current line, enforcing the size limit as they come.
    fn take(&mut self, config: &FramingConfig, part: &[u8], ends_line: bool, out: &mut Vec<Framed>) {
        self.consumed += part.len() as u64;
        if let Some(reason) = self.discarding {
            out.push(Framed::Skip { start: self.emitted, end: self.consumed, reason });
            self.emitted = self.consumed;
            self.line_start = self.consumed;
            if ends_line {
                self.discarding = None;
            }
            return;
        }
        self.line.extend_from_slice(part);
        let max = config.max_record_size;
        if self.consumed <= self.skip_until {
            // A line before the start (at most END_WINDOW bytes), or the start of the last one.
            return;
        }
        if self.headers_left > 0 {
            // A header line is skipped whole: no need to keep more of it than the limit.
            self.line.truncate(max);
            return;
        }
        if self.record.len() + self.line.len() <= max {
            return;
        }
        let mut data = std::mem::take(&mut self.record);
        data.append(&mut self.line);
        match config.oversize {
            OversizePolicy::Truncate => {
                let term = &config.truncated_record_terminator;
                let keep = utf8_boundary(&data, max.saturating_sub(term.len()));
                data.truncate(keep);
                data.extend_from_slice(term);
                let (start, end) = (self.emitted, self.consumed);
                out.push(Framed::Record { start, end, data: data.into(), truncated: true });
            }
            OversizePolicy::Drop => {
                out.push(Framed::Skip {
                    start: self.emitted,
                    end: self.consumed,
                    reason: SkipReason::Oversize,
                });
            }
            OversizePolicy::Split => {
                while data.len() > max {
                    let cut = utf8_boundary(&data, max);
                    let cut = if cut == 0 { max } else { cut };
                    let start = self.emitted;
                    self.emitted += cut as u64;
                    let chunk = data.drain(..cut).collect::<Vec<u8>>();
                    out.push(Framed::Record {
                        start,
                        end: self.emitted,
                        data: chunk.into(),
                        truncated: false,
                    });
                }
                // The rest is the start of the next record; a `\n` in it still ends the line.
                self.line = data;
                self.line_start = self.emitted;
                return;
            }
        }
        self.emitted = self.consumed;
        self.line_start = self.consumed;
        // The line's `\n` is in `part` when it ended here; otherwise the rest of the line is discarded.
        self.discarding = (!ends_line).then_some(SkipReason::DiscardedTail);
        if ends_line {
            // Nothing of this line is left for `end_line`.
            self.line_start = self.consumed;
        }
    }

    /// The current line is complete (it ends with `\n`, or it is a final line sent after quiet time).
    fn end_line(&mut self, config: &FramingConfig, out: &mut Vec<Framed>) {
        if self.line.is_empty() && self.line_start == self.consumed {
            // Already emitted (an oversize line) or discarded.
            return;
        }
        if self.headers_left > 0 || self.consumed <= self.skip_until {
            let reason = if self.headers_left > 0 { SkipReason::Header } else { SkipReason::BeforeStart };
            self.headers_left = self.headers_left.saturating_sub(1);
            self.line.clear();
            out.push(Framed::Skip { start: self.emitted, end: self.consumed, reason });
            self.emitted = self.consumed;
            self.line_start = self.consumed;
            return;
        }
        let mut line = std::mem::take(&mut self.line);
        if config.strip_cr && line.ends_with(b"\r\n") {
            line.remove(line.len() - 2);
        }
        match &config.multi_line_start {
            None => {
                let (start, end) = (self.emitted, self.consumed);
                out.push(Framed::Record { start, end, data: line.into(), truncated: false });
                self.emitted = self.consumed;
            }
            Some(pattern) => {
                let text = line.strip_suffix(b"\n").unwrap_or(&line);
                if !self.record.is_empty() && pattern.is_match(text) {
                    self.emit_record(out);
                }
                self.record.append(&mut line);
            }
        }
        self.line_start = self.consumed;
    }

    /// Emits the pending multi-line record, `[emitted, line_start)`.
    fn emit_record(&mut self, out: &mut Vec<Framed>) {
        let data = std::mem::take(&mut self.record);
        let (start, end) = (self.emitted, self.line_start);
        out.push(Framed::Record { start, end, data: data.into(), truncated: false });
        self.emitted = self.line_start;
    }
}

/// The largest cut ≤ `limit` that does not split a UTF-8 sequence (bytes that are not UTF-8 are cut at
/// `limit`).
fn utf8_boundary(data: &[u8], limit: usize) -> usize {
    if limit >= data.len() {
        return data.len();
    }
    let is_continuation = |b: u8| b & 0xC0 == 0x80;
    (limit.saturating_sub(3)..=limit).rev().find(|&k| !is_continuation(data[k])).unwrap_or(limit)
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
