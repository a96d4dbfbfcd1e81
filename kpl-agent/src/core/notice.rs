//! What a tailer tells its operator: each notice names what it saw and the decision it took.

use std::path::PathBuf;

use crate::core::identity::FileId;

/// A tailer's notice. [`Notice::is_anomaly`] ones are warnings (and counted in
/// [`TailerStats::anomalies`](crate::core::TailerStats)); the others are information.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A file starts being read.
    Opened {
        /// Its path.
        path: PathBuf,
        /// Where reading starts.
        offset: u64,
        /// Why there: "checkpoint", "initialPosition START_OF_FILE", "new file", ...
        why: &'static str,
    },
    /// A file was renamed; reading goes on.
    Renamed {
        /// The old path.
        from: PathBuf,
        /// The new path.
        to: PathBuf,
    },
    /// A file no longer matches the pattern (renamed away or deleted): it is read to its end, then closed.
    Gone {
        /// Its last path.
        path: PathBuf,
    },
    /// A file that had gone matches again.
    Back {
        /// Its path.
        path: PathBuf,
    },
    /// A rotated file was closed before it was read to its end: nothing could be read from it for
    /// `rotateWaitMillis`.
    GaveUp {
        /// Its path.
        path: PathBuf,
        /// How far it was read.
        offset: u64,
    },
    /// copytruncate: the file was truncated and its copy found; reading resumes in the copy.
    CopyTruncated {
        /// The truncated file.
        path: PathBuf,
        /// The copy.
        copy: PathBuf,
        /// The offset reading resumes at, in the copy.
        offset: u64,
    },
    /// A file was truncated (or its content replaced) and no copy of it was found: what it held past
    /// `read_to` and had not been read is lost; its new content is read from 0.
    TruncatedWithoutCopy {
        /// The file.
        path: PathBuf,
        /// How far it had been read.
        read_to: u64,
    },
    /// A file shorter than its checkpoint at startup: truncated while the agent was stopped; read from 0.
    ShrankWhileStopped {
        /// The file.
        path: PathBuf,
        /// Its checkpoint.
        checkpoint: u64,
        /// Its size.
        size: u64,
    },
    /// A checkpoint's (device, inode) now holds other content (the inode was reused, or the file was
    /// truncated and rewritten while we were stopped): its content is new, read from 0. The checkpoint
    /// still applies to a copy of the old content, found by fingerprint.
    InodeReused {
        /// The file.
        path: PathBuf,
        /// Its (device, inode).
        id: FileId,
    },
    /// A file could not be opened as planned (it vanished between the scan and the open); the next scan
    /// decides again.
    OpenFailed {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file being read could not be (re)opened: what it held past the read offset is not read.
    LostHandle {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Files with bytes to read wait for a descriptor: `maxOpenFiles` is reached and every open file is
    /// being read. They are read as descriptors free up; nothing is skipped. Said when waiting begins.
    OpenFilesLimit {
        /// Files with bytes to read and no descriptor.
        waiting: usize,
        /// The flow's share of `maxOpenFiles`.
        limit: usize,
    },
    /// A rotated file read to its end was closed before `closeInactiveMillis` to give its descriptor to
    /// a file with bytes to read: it is looked for by identity (device, inode and first bytes) in its
    /// directory and reopened if found grown; bytes written to it once it has left that directory cannot
    /// be read. (Live files closed early are counted only: a scan reopens them when they grow.)
    ClosedEarly {
        /// The file.
        path: PathBuf,
    },
    /// A bug: framing produced a range that does not follow the previous one. The file's checkpoint stops.
    Internal {
        /// The file.
        path: PathBuf,
        /// What happened.
        message: String,
    },
}

impl Notice {
    /// Whether this is an anomaly (a warning) rather than information.
    pub fn is_anomaly(&self) -> bool {
        !matches!(
            self,
            Notice::Opened { .. } | Notice::Renamed { .. } | Notice::Gone { .. } | Notice::Back { .. }
        )
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Opened { path, offset, why } => {
                write!(f, "{}: reading from offset {offset} ({why})", path.display())
            }
            Notice::Renamed { from, to } => {
                write!(f, "{} was renamed to {}: reading goes on", from.display(), to.display())
            }
            Notice::Gone { path } => write!(
                f,
                "{} no longer matches the pattern (rotated or deleted): reading it to its end before closing it",
                path.display()
            ),
            Notice::Back { path } => write!(f, "{} matches the pattern again", path.display()),
            Notice::GaveUp { path, offset } => write!(
                f,
                "{}: rotated away and nothing could be read from it for rotateWaitMillis; closed at offset {offset}, the rest is not sent",
                path.display()
            ),
            Notice::CopyTruncated { path, copy, offset } => write!(
                f,
                "{} was truncated (copytruncate); resuming in its copy {} at offset {offset}, and reading the new content from 0",
                path.display(),
                copy.display()
            ),
            Notice::TruncatedWithoutCopy { path, read_to } => write!(
                f,
                "{} was truncated and no copy was found: bytes written past offset {read_to} before the truncation were not read and are lost; reading the new content from 0",
                path.display()
            ),
            Notice::ShrankWhileStopped { path, checkpoint, size } => write!(
                f,
                "{} is shorter ({size} bytes) than its checkpoint ({checkpoint}): truncated while the agent was stopped; reading it from 0",
                path.display()
            ),
            Notice::InodeReused { path, id } => write!(
                f,
                "{}: inode {id} has a checkpoint but other content (inode reused, or rewritten while stopped): reading it as new content from 0",
                path.display()
            ),
            Notice::OpenFailed { path, reason } => {
                write!(f, "{}: cannot open ({reason}); the next scan decides again", path.display())
            }
            Notice::LostHandle { path, reason } => write!(
                f,
                "{}: cannot reopen ({reason}); what it held past the read offset is not sent",
                path.display()
            ),
            Notice::OpenFilesLimit { waiting, limit } => write!(
                f,
                "{waiting} files with bytes to read wait for a descriptor (maxOpenFiles: {limit} for this flow); they are read as descriptors free up, nothing is skipped"
            ),
            Notice::ClosedEarly { path } => write!(
                f,
                "{}: rotated, read to its end and closed before closeInactiveMillis to free a descriptor; looked for by identity in its directory and reopened if it grows there",
                path.display()
            ),
            Notice::Internal { path, message } => {
                write!(f, "{}: internal error ({message}); its checkpoint stops here", path.display())
            }
        }
    }
}
