//! Records out of `kpl produce`'s standard input, one per line or length-prefixed, with memory bounded by the
//! largest record size whatever the input: a record over it is refused as soon as it passes the limit, and
//! the rest of it is read past (and counted) without being held.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::error::CliError;

/// How records are delimited on standard input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Framing {
    /// One record per line.
    Line,
    /// A 4-byte big-endian length, then that many bytes.
    Length,
}

/// One record read.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A record within the largest record size.
    Record(Vec<u8>),
    /// A record of this many bytes, over the largest record size: skipped, never held in memory.
    Oversized(u64),
}

/// Records out of a byte stream.
pub struct Frames<R> {
    input: R,
    framing: Framing,
    max_record_size: usize,
    count: u64,
    /// The largest line buffer ever allocated, for the tests that check it stays bounded.
    #[cfg(test)]
    held_peak: usize,
}

impl<R: AsyncBufRead + Unpin> Frames<R> {
    /// Records of at most `max_record_size` bytes out of `input`.
    pub fn new(input: R, framing: Framing, max_record_size: usize) -> Self {
        Self {
            input,
            framing,
            max_record_size,
            count: 0,
            #[cfg(test)]
            held_peak: 0,
        }
    }

    /// Records read so far: the number of the last one (its line number with line framing).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The next record; `None` at the end of the input.
    pub async fn next(&mut self) -> Result<Option<Frame>, CliError> {
        let frame = match self.framing {
            Framing::Line => self.next_line().await?,
            Framing::Length => self.next_length_delimited().await?,
        };
        self.count += u64::from(frame.is_some());
        Ok(frame)
    }

    /// The next line without its `\n` (and a `\r` before it). At most `max_record_size + 1` bytes are ever
    /// held (the `+ 1` for a `\r` that may turn out to end the line).
    async fn next_line(&mut self) -> Result<Option<Frame>, CliError> {
        let mut line = Vec::new();
        // Bytes of the line before its `\n`, and the last of them.
        let mut size = 0u64;
        let mut last = None;
        let mut held = true;
        let mut ended = false;
        loop {
            let chunk = self.input.fill_buf().await.map_err(CliError::Stdin)?;
            if chunk.is_empty() {
                break;
            }
            let end = chunk.iter().position(|&byte| byte == b'\n');
            let part = &chunk[..end.unwrap_or(chunk.len())];
            size += part.len() as u64;
            last = part.last().copied().or(last);
            if held && line.len() + part.len() <= self.max_record_size.saturating_add(1) {
                line.extend_from_slice(part);
                #[cfg(test)]
                {
                    self.held_peak = self.held_peak.max(line.capacity());
                }
            } else if held {
                // Over the limit whatever its ending: let go of what was held, and only count from here.
                held = false;
                line = Vec::new();
            }
            let used = part.len() + usize::from(end.is_some());
            self.input.consume(used);
            if end.is_some() {
                ended = true;
                break;
            }
        }
        if !ended && size == 0 {
            return Ok(None);
        }
        if ended && last == Some(b'\r') {
            size -= 1;
            line.truncate(line.len().saturating_sub(1));
        }
        if !held || size > self.max_record_size as u64 {
            return Ok(Some(Frame::Oversized(size)));
        }
        Ok(Some(Frame::Record(line)))
    }

    async fn next_length_delimited(&mut self) -> Result<Option<Frame>, CliError> {
        let record = self.count + 1;
        let mut prefix = Vec::with_capacity(4);
        let got = (&mut self.input).take(4).read_to_end(&mut prefix).await.map_err(CliError::Stdin)?;
        let prefix: [u8; 4] = match prefix.try_into() {
            Ok(prefix) => prefix,
            Err(_) if got == 0 => return Ok(None),
            Err(_) => return Err(CliError::Truncated { record, got: got as u64, expected: 4 }),
        };
        let len = u32::from_be_bytes(prefix);
        let size = usize::try_from(len).unwrap_or(usize::MAX);
        let mut body = (&mut self.input).take(u64::from(len));
        let (got, frame) = if size > self.max_record_size {
            // Not worth holding in memory: it will not be sent.
            let skipped =
                tokio::io::copy(&mut body, &mut tokio::io::sink()).await.map_err(CliError::Stdin)?;
            (skipped, Frame::Oversized(u64::from(len)))
        } else {
            let mut data = Vec::with_capacity(size);
            body.read_to_end(&mut data).await.map_err(CliError::Stdin)?;
            (data.len() as u64, Frame::Record(data))
        };
        if got < u64::from(len) {
            return Err(CliError::Truncated { record, got, expected: u64::from(len) });
        }
        Ok(Some(frame))
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, BufReader, ReadBuf};

    use super::*;

    async fn read_all(input: &[u8], framing: Framing) -> (Vec<Frame>, Option<String>) {
        let mut frames = Frames::new(input, framing, 10);
        let mut out = Vec::new();
        loop {
            match frames.next().await {
                Ok(Some(frame)) => out.push(frame),
                Ok(None) => return (out, None),
                Err(error) => return (out, Some(error.to_string())),
            }
        }
    }

    fn record(data: &[u8]) -> Frame {
        Frame::Record(data.to_vec())
    }

    #[tokio::test]
    async fn lines_lose_their_line_ends_only() {
        let (frames, error) = read_all(b"a\nb\r\n\n c \nlast", Framing::Line).await;
        assert_eq!(frames, [record(b"a"), record(b"b"), record(b""), record(b" c "), record(b"last")]);
        assert_eq!(error, None);
        assert_eq!(read_all(b"", Framing::Line).await.0, []);
        assert_eq!(read_all(b"\r", Framing::Line).await.0, [record(b"\r")]);
    }

    #[tokio::test]
    async fn lines_are_refused_at_the_exact_limit_whatever_their_ending() {
        // The limit is 10 bytes of data; a `\r\n` ending does not count, a lone `\r` does.
        let input = b"0123456789\n0123456789\r\n0123456789A\n0123456789\r\r\n0123456789\r";
        let (frames, error) = read_all(input, Framing::Line).await;
        assert_eq!(
            frames,
            [
                record(b"0123456789"),
                record(b"0123456789"),
                Frame::Oversized(11),
                Frame::Oversized(11),
                Frame::Oversized(11),
            ]
        );
        assert_eq!(error, None);
    }

    /// `len` bytes of `x`, then `tail`, handed out at most `chunk` bytes per read.
    struct LongLine {
        left: u64,
        tail: &'static [u8],
        chunk: usize,
    }

    impl AsyncRead for LongLine {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let room = buf.remaining().min(self.chunk);
            if self.left > 0 {
                let n = room.min(usize::try_from(self.left).unwrap_or(usize::MAX));
                buf.put_slice(&vec![b'x'; n]);
                self.left -= n as u64;
            } else {
                let n = room.min(self.tail.len());
                let tail = self.tail;
                buf.put_slice(&tail[..n]);
                self.tail = &tail[n..];
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_huge_line_is_counted_not_held() {
        let len = 50 * 1024 * 1024;
        let input = BufReader::new(LongLine { left: len, tail: b"\nafter\n", chunk: 64 * 1024 });
        let mut frames = Frames::new(input, Framing::Line, 1000);
        assert_eq!(frames.next().await.unwrap(), Some(Frame::Oversized(len)));
        assert_eq!(frames.next().await.unwrap(), Some(record(b"after")));
        assert_eq!(frames.next().await.unwrap(), None);
        assert_eq!(frames.count(), 2);
        assert!(frames.held_peak <= 2 * 1001, "{} bytes held", frames.held_peak);
    }

    #[tokio::test]
    async fn length_delimited_records_are_read_skipped_or_reported_truncated() {
        let mut input = vec![0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0];
        input.extend([0, 0, 0, 11]);
        input.extend([b'x'; 11]);
        input.extend([0, 0, 0, 1, b'!']);
        let (frames, error) = read_all(&input, Framing::Length).await;
        assert_eq!(frames, [record(b"hi"), record(b""), Frame::Oversized(11), record(b"!")]);
        assert_eq!(error, None);

        let (frames, error) = read_all(&[0, 0, 0, 3, b'a', b'b'], Framing::Length).await;
        assert_eq!(frames, []);
        assert_eq!(error.as_deref(), Some("record 1: the input ends inside the record (2 of 3 bytes)"));
        let (frames, error) = read_all(&[0, 0, 0, 1, b'a', 0, 0], Framing::Length).await;
        assert_eq!(frames, [record(b"a")]);
        assert_eq!(error.as_deref(), Some("record 2: the input ends inside the record (2 of 4 bytes)"));
    }
}
