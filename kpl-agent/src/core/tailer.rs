//! The tailer of one flow: which files to read from where, what their bytes frame into, and how far each
//! file's delivery got. Sans-IO: the shell observes the file system and reads; this decides.
//!
//! # Call contract
//!
//! 1. At start, [`Tailer::new`] gets the checkpoints saved by earlier runs.
//! 2. On every directory scan, [`Tailer::on_scan`] gets one [`Observation`] per file matched by the
//!    flow's pattern (plus, on the first scan, the files in [`Tailer::leftover_dirs`], `matched: false`)
//!    and returns [`Action`]s: open a file at an offset, reopen one elsewhere (copytruncate), close one.
//!    After an `Open` or `Reopen`, or when [`Tailer::has_unsaved_files`] (a file waiting for a
//!    descriptor), save [`Tailer::dirty_checkpoints`] before reading: a file is in the store before
//!    anything of it is sent, so that a crash can find it again even once it is rotated out of the
//!    pattern.
//! 3. Between scans the shell reads each file of [`Tailer::readable`] that has grown and passes
//!    [`Tailer::check_handle`] at its offset, and hands the bytes to [`Tailer::on_data`] (or, when a read returns nothing, calls [`Tailer::on_eof`]); records come out.
//! 4. Each record's outcome: [`Tailer::on_delivered`] once the producer confirmed it written.
//! 5. [`Tailer::poll`] regularly (quiet-time flushes, closing drained rotated files), and
//!    [`Tailer::dirty_checkpoints`] / [`Tailer::checkpoints_saved`] to persist progress.
//!
//! # Rotation decisions
//!
//! - **Rename** (`app.log` → `app.log.1`, a new `app.log`): the same (device, inode) under a new name is
//!   the same file; reading goes on. A new file is read from offset 0.
//! - **Deleted or renamed out of the pattern** (`compress-then-delete` included): the file stays open and is
//!   read to its end, then closed once quiet for `close_inactive`, or when nothing could be read from it
//!   for `rotate_wait` (a stalled flow; a [`Notice::GaveUp`]). On Linux the open descriptor keeps a deleted file readable.
//! - **copytruncate**: the same inode now starts with other bytes, or is shorter than what was read. The
//!   copy is found by its fingerprint, and reading resumes in the copy at the same offset (records in flight
//!   keep their offsets); the truncated file is new content, read from 0. Without a copy, what had not been
//!   read is gone: a [`Notice::TruncatedWithoutCopy`] says so. A new file whose first KiB matches a live
//!   file is held back for `copy_hold` (it is likely the copy of a copytruncate about to happen); after
//!   that it is read from 0 (a plain copy: sent twice rather than never).
//! - **Restart**: a file whose (device, inode) has a checkpoint and whose head matches the checkpoint's
//!   fingerprint resumes there; one that shrank below it was truncated while we were stopped and is read
//!   from 0 ([`Notice::ShrankWhileStopped`]); one with another head is a reused inode, new content, read
//!   from 0 ([`Notice::InodeReused`]). Files found on the first scan without a checkpoint start at
//!   `initialPosition`; every later file at 0. `END_OF_FILE` starts at a line boundary, as the agent
//!   does: the line being written is sent whole ([`Framer::at_end`]; nothing is saved for the file
//!   until that boundary is found, so a crash before it starts over).
//! - **Completed ranges**: a checkpoint saves, besides its offset, the longest ranges above it that are
//!   confirmed ([`MAX_SAVED_RANGES`]); after a restart, a record read again that lies wholly inside one
//!   is not sent again ([`TailerStats::already_delivered`]).
//!
//! # Open files
//!
//! At most [`TailerConfig::max_open_files`] files are open at once. Below the limit every tracked file
//! is open, as without one. At the limit, a file with bytes to read waits for a descriptor (it is
//! tracked, its progress kept; nothing of it is skipped), and open files read to their end give theirs
//! up first ([`Action::Release`]; live files before rotated ones, the longest quiet first). A released
//! live file is reopened when a scan sees it grown; a released rotated file is looked for by identity
//! in its directory ([`Tailer::waiting_dirs`]) and reopened if found grown. Waiting is counted and said
//! ([`Notice::OpenFilesLimit`], [`Notice::ClosedEarly`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use std::collections::BTreeSet;

use crate::core::framing::{Framed, Framer, FramingConfig, SkipReason};
use crate::core::identity::{FINGERPRINT_MAX_LEN, FileId, Fingerprint};
use crate::core::notice::Notice;
use crate::core::progress::Progress;

/// How many completed ranges above its offset a checkpoint saves at most (the longest): each costs
/// about 20 bytes in the store, and any subset is safe to save.
pub const MAX_SAVED_RANGES: usize = 32;

/// A file tracked by a tailer (stable while the file is read, through renames and copytruncate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey(pub u64);

/// Where reading starts in a file found at startup without a checkpoint (`initialPosition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitialPosition {
    /// From its first byte.
    StartOfFile,
    /// From its current end (the Kinesis Agent's default).
    #[default]
    EndOfFile,
}

/// A file as one scan saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Its path.
    pub path: PathBuf,
    /// Its (device, inode).
    pub id: FileId,
    /// Its size in bytes.
    pub size: u64,
    /// Its first bytes, up to [`FINGERPRINT_MAX_LEN`].
    pub head: Vec<u8>,
    /// Whether the flow's pattern matched it (`false`: a file in [`Tailer::leftover_dirs`]).
    pub matched: bool,
}

/// A file's saved progress: what the checkpoint store keeps, keyed by (device, inode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedCheckpoint {
    /// The file's (device, inode).
    pub id: FileId,
    /// The fingerprint of its first bytes when saved.
    pub fingerprint: Fingerprint,
    /// Every byte below this was confirmed written.
    pub offset: u64,
    /// Its path when saved.
    pub path: PathBuf,
    /// The flow that read it (its id, [`crate::config::FlowConfig::id`]).
    pub flow: String,
    /// Byte ranges `[start, end)` above `offset` confirmed written too (sorted, disjoint, at most
    /// [`MAX_SAVED_RANGES`]): after a restart, a record lying wholly inside one is not sent again.
    pub completed: Vec<(u64, u64)>,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Open `path`, check that it is still `id` (else [`Tailer::on_open_failed`]), and read it from
    /// `offset`.
    Open {
        /// The file.
        key: FileKey,
        /// Where it is.
        path: PathBuf,
        /// What it must be.
        id: FileId,
        /// Where reading starts.
        offset: u64,
    },
    /// Close the file's handle and open `path` (a copytruncate's copy) instead, as with `Open`.
    Reopen {
        /// The file.
        key: FileKey,
        /// The copy.
        path: PathBuf,
        /// The copy's (device, inode).
        id: FileId,
        /// Where reading goes on.
        offset: u64,
    },
    /// Close the file's handle now, without reading (its descriptor goes to a file waiting for one); the
    /// file stays tracked and is opened again with an `Open` when it has bytes to read.
    Release {
        /// The file.
        key: FileKey,
    },
    /// Read the file to its end (as between scans, [`Tailer::check_handle`] first), close its handle,
    /// then call [`Tailer::on_closed`]: it was rotated away and is drained, or given up.
    Close {
        /// The file.
        key: FileKey,
    },
}

/// A record framed from a file: `data` came from bytes `[start, end)` of file `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailRecord {
    /// The file.
    pub key: FileKey,
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// The record.
    pub data: Bytes,
}

/// What [`Tailer::check_handle`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleCheck {
    /// Still the content being read: read it.
    Same,
    /// The content changed: do not read it until the next scan decides.
    Wait,
    /// The content changed in a file rotated away: the handle now belongs to `new_key` (the new content,
    /// read from 0; save checkpoints first, as after an `Open`), and the old key is closed without
    /// reopening.
    Replaced {
        /// The key the handle moves to.
        new_key: FileKey,
    },
}

/// Settings of a tailer.
#[derive(Debug, Clone)]
pub struct TailerConfig {
    /// The flow's id, saved with its checkpoints.
    pub flow: String,
    /// Framing.
    pub framing: FramingConfig,
    /// Where files found at startup without a checkpoint start.
    pub initial_position: InitialPosition,
    /// A file gone from the pattern from which nothing could be read for this long (since it went, or
    /// since its last bytes: a stalled flow) is closed, read to its end or not ([`Notice::GaveUp`]). While
    /// it is being read (a backlog), it stays open.
    pub rotate_wait: Duration,
    /// A file gone from the pattern and read to its end is closed once no byte arrived for this long.
    pub close_inactive: Duration,
    /// How long a new file looking like a copy of a live file is held back (see the module doc).
    pub copy_hold: Duration,
    /// Most files open at once (at least 1; see "Open files" in the module doc).
    pub max_open_files: usize,
}

/// Counters of a tailer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailerStats {
    /// Records framed.
    pub records: u64,
    /// Records truncated to the maximum size.
    pub truncated: u64,
    /// Records dropped for their size.
    pub dropped_oversize: u64,
    /// Bytes discarded after a truncated or dropped start.
    pub discarded_bytes: u64,
    /// Header lines skipped.
    pub header_lines: u64,
    /// Anomalies (notices that name a decision taken on unexpected file-system state).
    pub anomalies: u64,
    /// Records read again after a restart and not sent: an earlier run had them confirmed.
    pub already_delivered: u64,
    /// Bytes read and skipped to find the start of a file's last line (`END_OF_FILE`).
    pub before_start_bytes: u64,
    /// Files closed early, read to their end, to free a descriptor.
    pub closed_early: u64,
}

/// One tracked file as `kpl agent status` and the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// The key the shell knows it by.
    pub key: FileKey,
    /// Its path when last seen.
    pub path: PathBuf,
    /// Its (device, inode).
    pub id: FileId,
    /// Where the next read starts: every byte below was read.
    pub read_offset: u64,
    /// The checkpoint: every byte below was confirmed written (or skipped by design).
    pub checkpoint: u64,
    /// The checkpoint last committed to the store, if any.
    pub saved_checkpoint: Option<u64>,
    /// Records issued and not yet confirmed (in the producer, or waiting for a retry).
    pub in_flight_records: usize,
    /// Whether it is open for reading (else it waits for its last records, or is detached).
    pub open: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matched by the pattern.
    Live,
    /// No longer matched since `since`; read to its end, then closed.
    Gone { since: Instant },
    /// Told to close: the shell reads it to its end, closes it and calls [`Tailer::on_closed`].
    Closing,
    /// Handle closed; kept until its records complete.
    Closed,
    /// Its content is gone (truncated without a copy): its records complete, its checkpoint is not saved.
    Detached,
}

/// Whether the shell holds a tracked file open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handle {
    /// Open: it counts against `max_open_files`.
    Open,
    /// Not open (new, or released): waiting for a descriptor since `since`.
    Waiting { since: Instant },
}

#[derive(Debug)]
struct Tracked {
    id: FileId,
    path: PathBuf,
    /// The file's first bytes as known (read, or seen by a scan), up to 1 KiB.
    head: Vec<u8>,
    fingerprint: Fingerprint,
    framer: Framer,
    progress: Progress,
    state: State,
    at_eof: bool,
    last_data: Instant,
    saved_offset: Option<u64>,
    saved_completed: Vec<(u64, u64)>,
    /// Its path in the store: a rename (a rotation) makes the checkpoint dirty, so that `kpl agent status`
    /// and the logs name the file where it is.
    saved_path: Option<PathBuf>,
    handle: Handle,
    /// Its size at its path as the last scan saw it (`None`: a rotated file not found by that scan).
    observed_size: Option<u64>,
}

impl Tracked {
    /// Whether it is read or to be read (not closing or closed).
    fn is_tracked_open(&self) -> bool {
        matches!(self.state, State::Live | State::Gone { .. })
    }

    /// Whether the shell holds it open.
    fn has_handle(&self) -> bool {
        self.handle == Handle::Open && matches!(self.state, State::Live | State::Gone { .. } | State::Closing)
    }

    /// Whether it waits for a descriptor with bytes to read.
    fn waits_with_data(&self) -> bool {
        matches!(self.handle, Handle::Waiting { .. })
            && self.is_tracked_open()
            && self.observed_size.is_some_and(|size| size > self.framer.consumed())
    }
}

/// The tailer of one flow (see the module documentation).
#[derive(Debug)]
pub struct Tailer {
    config: TailerConfig,
    files: BTreeMap<FileKey, Tracked>,
    next_key: u64,
    scanned: bool,
    saved: Vec<SavedCheckpoint>,
    /// New files held back as likely copies: id → since.
    held: BTreeMap<FileId, Instant>,
    notices: Vec<Notice>,
    stats: TailerStats,
    /// Whether files waited with bytes to read at the last balance (to say it once when it begins).
    limit_reached: bool,
}

mod scan;

impl Tailer {
    /// A tailer with the checkpoints saved by earlier runs (all flows': a file keeps its progress when its
    /// flow is renamed).
    pub fn new(config: TailerConfig, saved: Vec<SavedCheckpoint>) -> Tailer {
        Tailer {
            config,
            files: BTreeMap::new(),
            next_key: 0,
            scanned: false,
            saved,
            held: BTreeMap::new(),
            notices: Vec::new(),
            stats: TailerStats::default(),
            limit_reached: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> &TailerConfig {
        &self.config
    }

    /// Directories holding files of this flow's saved checkpoints not claimed yet: files a crash left
    /// unfinished, which may have been rotated out of the pattern (and renamed, even while we were
    /// stopped). On the first scan the shell observes every file in them, `matched: false`; those still
    /// the file a checkpoint was saved for (same inode, same head) are read to their end.
    pub fn leftover_dirs(&self) -> std::collections::BTreeSet<PathBuf> {
        self.saved
            .iter()
            .filter(|row| row.flow == self.config.flow)
            .filter_map(|row| row.path.parent().map(PathBuf::from))
            .collect()
    }

    /// Directories of rotated files released early ([`Action::Release`]): on every scan the shell
    /// observes every file in them, `matched: false`, so that they are found again by identity.
    pub fn waiting_dirs(&self) -> BTreeSet<PathBuf> {
        self.files
            .values()
            .filter(|file| matches!(file.state, State::Gone { .. }) && file.handle != Handle::Open)
            .filter_map(|file| file.path.parent().map(PathBuf::from))
            .collect()
    }

    /// Files to read (open ones), with the offset the next read starts at.
    pub fn readable(&self) -> impl Iterator<Item = (FileKey, u64)> + '_ {
        self.files
            .iter()
            .filter(|(_, file)| file.has_handle())
            .map(|(key, file)| (*key, file.framer.consumed()))
    }

    /// Where the next read of file `key` starts, if it is open.
    pub fn read_offset(&self, key: FileKey) -> Option<u64> {
        self.files.get(&key).filter(|file| file.has_handle()).map(|file| file.framer.consumed())
    }

    /// Whether a file tracked for reading has no checkpoint saved yet (see the call contract).
    pub fn has_unsaved_files(&self) -> bool {
        self.files.values().any(|file| {
            file.is_tracked_open() && file.saved_offset.is_none() && !file.framer.seeking_line_start()
        })
    }

    /// Files open (holding a descriptor).
    pub fn open_files(&self) -> usize {
        self.files.values().filter(|file| file.has_handle()).count()
    }

    /// Files waiting for a descriptor with bytes to read.
    pub fn waiting_files(&self) -> usize {
        self.files.values().filter(|file| file.waits_with_data()).count()
    }

    /// The path of a tracked file.
    pub fn path(&self, key: FileKey) -> Option<&std::path::Path> {
        self.files.get(&key).map(|file| file.path.as_path())
    }

    /// The (device, inode) of the files this tailer reads or waits on.
    pub fn tracked_ids(&self) -> impl Iterator<Item = FileId> + '_ {
        self.files.values().filter(|file| file.state != State::Detached).map(|file| file.id)
    }

    /// Before reading file `key`: its open handle's current size and first bytes (up to
    /// [`FINGERPRINT_MAX_LEN`]). Without this check, bytes of a
    /// truncated and refilled file could be taken for the old content.
    pub fn check_handle(&mut self, key: FileKey, size: u64, head: &[u8], now: Instant) -> HandleCheck {
        let Some(file) = self.files.get_mut(&key) else { return HandleCheck::Wait };
        if size >= file.framer.consumed() && file.fingerprint.matches(head) {
            return HandleCheck::Same;
        }
        let (State::Gone { .. } | State::Closing) = file.state else {
            // The next scan decides, and can find the copy of a copytruncate.
            return HandleCheck::Wait;
        };
        // Gone from the pattern, so no copy can be found: the old content is lost past what was read.
        let (id, path, state, read_to) = (file.id, file.path.clone(), file.state, file.framer.consumed());
        file.state = State::Detached;
        self.stats.anomalies += 1;
        self.notices.push(Notice::TruncatedWithoutCopy { path: path.clone(), read_to });
        let obs = Observation { path, id, size, head: head.to_vec(), matched: false };
        // Found while closing: the new content is read as a rotated file's (closed once drained), not
        // left closing with nobody to close it.
        let state = if state == State::Closing { State::Gone { since: now } } else { state };
        let new_key = self.track(obs, 0, "new content after a truncation", state, now);
        if let Some(file) = self.files.get_mut(&new_key) {
            file.handle = Handle::Open;
        }
        HandleCheck::Replaced { new_key }
    }

    /// Bytes of file `key` read at its offset at `now`; the records they complete go to `out`.
    pub fn on_data(&mut self, key: FileKey, data: &[u8], now: Instant, out: &mut Vec<TailRecord>) {
        let Some(file) = self.files.get_mut(&key) else { return };
        if data.is_empty() {
            file.at_eof = true;
            return;
        }
        file.at_eof = false;
        file.last_data = now;
        // Bytes read at the end of the known head extend it: the fingerprint then covers what was read,
        // so that a truncation refilled past the read offset is seen.
        if file.head.len() < FINGERPRINT_MAX_LEN && file.head.len() as u64 == file.framer.consumed() {
            let more = (FINGERPRINT_MAX_LEN - file.head.len()).min(data.len());
            file.head.extend_from_slice(&data[..more]);
            file.fingerprint = Fingerprint::of(&file.head);
        }
        let mut framed = Vec::new();
        file.framer.push(&self.config.framing, data, now, &mut framed);
        Self::account(key, file, framed, &mut self.stats, &mut self.notices, out);
    }

    /// A read of file `key` returned nothing: it is at its end for now.
    pub fn on_eof(&mut self, key: FileKey) {
        if let Some(file) = self.files.get_mut(&key) {
            file.at_eof = true;
        }
    }

    /// The shell could not open file `key` as it was told (it vanished, or its path is another file now).
    pub fn on_open_failed(&mut self, key: FileKey, reason: &str) {
        let Some(file) = self.files.get_mut(&key) else { return };
        let untouched =
            file.progress.outstanding() == 0 && file.framer.held_bytes() == 0 && file.saved_offset.is_none();
        if untouched {
            // Nothing was read from it: the next scan finds it again, if it is still there.
            self.notices.push(Notice::OpenFailed { path: file.path.clone(), reason: reason.to_owned() });
            self.files.remove(&key);
            return;
        }
        self.stats.anomalies += 1;
        if let (State::Live | State::Gone { .. }, Handle::Open) = (file.state, file.handle) {
            // Reopening a file read before (released, or a copytruncate's copy): it waits again, and a
            // scan that finds it by identity reopens it.
            self.notices.push(Notice::OpenFailed { path: file.path.clone(), reason: reason.to_owned() });
            file.handle = Handle::Waiting { since: file.last_data };
            file.observed_size = None;
            return;
        }
        self.notices.push(Notice::LostHandle { path: file.path.clone(), reason: reason.to_owned() });
        file.state = State::Detached;
    }

    /// The record of file `key` starting at `start` was written.
    pub fn on_delivered(&mut self, key: FileKey, start: u64) {
        if let Some(file) = self.files.get_mut(&key) {
            file.progress.confirm(start);
        }
    }

    /// Quiet-time flushes and closing of rotated files read to their end: records go to `out`, actions
    /// are returned.
    pub fn poll(&mut self, now: Instant, out: &mut Vec<TailRecord>) -> Vec<Action> {
        let mut actions = Vec::new();
        for (key, file) in &mut self.files {
            let mut close = false;
            if let State::Gone { since } = file.state {
                let quiet = now.saturating_duration_since(file.last_data) >= self.config.close_inactive;
                if file.at_eof && quiet {
                    close = true;
                } else if now.saturating_duration_since(since.max(file.last_data)) >= self.config.rotate_wait
                {
                    self.stats.anomalies += 1;
                    let offset = file.framer.consumed();
                    self.notices.push(Notice::GaveUp { path: file.path.clone(), offset });
                    close = true;
                }
            }
            if !matches!(file.state, State::Live | State::Gone { .. }) {
                continue;
            }
            if close {
                file.state = State::Closing;
                actions.push(Action::Close { key: *key });
                continue;
            }
            let mut framed = Vec::new();
            file.framer.poll(&self.config.framing, now, false, &mut framed);
            Self::account(*key, file, framed, &mut self.stats, &mut self.notices, out);
        }
        // Forget closed files once every record completed and the final checkpoint was saved (or their
        // inode holds another file now, whose checkpoint is the one that counts).
        let reused = self.open_ids();
        self.files.retain(|_, file| match file.state {
            State::Closed => {
                file.progress.outstanding() > 0
                    || (file.saved_offset != Some(file.progress.low_water()) && !reused.contains(&file.id))
            }
            State::Detached => file.progress.outstanding() > 0,
            State::Live | State::Gone { .. } | State::Closing => true,
        });
        self.balance(now, &mut actions);
        actions
    }

    /// Opens waiting files within `max_open_files`, those with bytes to read first; at the limit, files
    /// read to their end give up their descriptors to those (see "Open files" in the module doc).
    fn balance(&mut self, now: Instant, actions: &mut Vec<Action>) {
        let limit = self.config.max_open_files.max(1);
        let mut open = self.open_files();
        let mut waiting: Vec<(bool, Instant, FileKey)> = (self.files.iter())
            .filter_map(|(key, file)| match file.handle {
                Handle::Waiting { since } if file.is_tracked_open() => {
                    let found = file.observed_size.is_some();
                    found.then_some((!file.waits_with_data(), since, *key))
                }
                _ => None,
            })
            .collect();
        // Bytes to read first, then the longest waiting.
        waiting.sort_unstable();
        // Idle: read to its end and nothing arriving; live files first, then the longest quiet.
        let mut idle: Vec<(bool, Instant, FileKey)> = (self.files.iter())
            .filter(|(_, file)| file.has_handle() && file.is_tracked_open() && file.at_eof)
            .map(|(key, file)| (matches!(file.state, State::Gone { .. }), file.last_data, *key))
            .collect();
        idle.sort_unstable();
        let mut idle = idle.into_iter();
        let mut stuck = 0;
        for (idle_file, _, key) in waiting {
            if open >= limit {
                if idle_file {
                    continue;
                }
                let Some((rotated, _, victim)) = idle.next() else {
                    stuck += 1;
                    continue;
                };
                let Some(file) = self.files.get_mut(&victim) else { continue };
                file.handle = Handle::Waiting { since: now };
                file.observed_size = (!rotated).then(|| file.framer.consumed());
                // A rotated file may have grown since it was read to its end: it is closed only once a
                // scan finds it at its end (or after rotateWaitMillis if none finds it).
                file.at_eof &= !rotated;
                self.stats.closed_early += 1;
                // Routine for a live file (counted only); a rotated one is warned about.
                if rotated {
                    self.stats.anomalies += 1;
                    self.notices.push(Notice::ClosedEarly { path: file.path.clone() });
                }
                actions.push(Action::Release { key: victim });
                open -= 1;
            }
            let Some(file) = self.files.get_mut(&key) else { continue };
            file.handle = Handle::Open;
            let (path, id, offset) = (file.path.clone(), file.id, file.framer.consumed());
            actions.push(Action::Open { key, path, id, offset });
            open += 1;
        }
        if stuck > 0 && !self.limit_reached {
            self.stats.anomalies += 1;
            self.notices.push(Notice::OpenFilesLimit { waiting: stuck, limit });
        }
        self.limit_reached = stuck > 0;
    }

    /// The (device, inode) of the files open.
    fn open_ids(&self) -> std::collections::BTreeSet<FileId> {
        self.files
            .values()
            .filter(|file| matches!(file.state, State::Live | State::Gone { .. } | State::Closing))
            .map(|file| file.id)
            .collect()
    }

    /// File `key` (told to [`Action::Close`]) was read to its end and closed: what its framing held is
    /// sent now (a final line without `\n` included).
    pub fn on_closed(&mut self, key: FileKey, now: Instant, out: &mut Vec<TailRecord>) {
        let Some(file) = self.files.get_mut(&key) else { return };
        if file.state != State::Closing {
            return;
        }
        let mut framed = Vec::new();
        file.framer.poll(&self.config.framing, now, true, &mut framed);
        Self::account(key, file, framed, &mut self.stats, &mut self.notices, out);
        file.state = State::Closed;
    }

    /// Checkpoints that changed since they were last saved (at most one per (device, inode): a closed
    /// file whose inode now holds an open one has nothing left to save).
    pub fn dirty_checkpoints(&self) -> Vec<SavedCheckpoint> {
        let open = self.open_ids();
        self.files
            .values()
            .filter(|file| match file.state {
                State::Detached => false,
                State::Closed => !open.contains(&file.id),
                State::Live | State::Gone { .. } | State::Closing => true,
            })
            // Not at a line start yet (`END_OF_FILE`): nothing of it was sent, and a restart starts over.
            .filter(|file| !file.framer.seeking_line_start())
            .filter_map(|file| {
                let completed = file.progress.completed_above(MAX_SAVED_RANGES);
                let offset = file.progress.low_water();
                let clean = file.saved_offset == Some(offset)
                    && file.saved_completed == completed
                    && file.saved_path.as_ref() == Some(&file.path);
                (!clean).then(|| SavedCheckpoint {
                    id: file.id,
                    fingerprint: file.fingerprint,
                    offset,
                    path: file.path.clone(),
                    flow: self.config.flow.clone(),
                    completed,
                })
            })
            .collect()
    }

    /// `rows` (from [`dirty_checkpoints`](Self::dirty_checkpoints)) are durably stored.
    pub fn checkpoints_saved(&mut self, rows: &[SavedCheckpoint]) {
        for row in rows {
            let saved = self.files.values_mut().find(|file| {
                file.id == row.id && file.fingerprint == row.fingerprint && file.state != State::Detached
            });
            if let Some(file) = saved {
                file.saved_offset = Some(row.offset);
                file.saved_completed.clone_from(&row.completed);
                file.saved_path = Some(row.path.clone());
            }
        }
    }

    /// Bytes read and not yet confirmed written (held by framing, in flight, or being retried): what the
    /// memory budget counts.
    pub fn unconfirmed_bytes(&self) -> u64 {
        self.files.values().map(|file| file.framer.consumed() - file.progress.low_water()).sum()
    }

    /// Records issued and not yet confirmed.
    pub fn outstanding_records(&self) -> usize {
        self.files.values().map(|file| file.progress.outstanding()).sum()
    }

    /// Files tracked (open, or waiting for their records).
    pub fn tracked_files(&self) -> usize {
        self.files.len()
    }

    /// The notices since the last call (warnings and information to log, with the decision taken).
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Every tracked file, in key order.
    pub fn files(&self) -> impl Iterator<Item = FileStatus> + '_ {
        self.files.iter().map(|(key, file)| FileStatus {
            key: *key,
            path: file.path.clone(),
            id: file.id,
            read_offset: file.framer.consumed(),
            checkpoint: file.progress.low_water(),
            saved_checkpoint: file.saved_offset,
            in_flight_records: file.progress.outstanding(),
            open: matches!(file.state, State::Live | State::Gone { .. } | State::Closing),
        })
    }

    /// The counters.
    pub fn stats(&self) -> TailerStats {
        self.stats
    }

    /// Framed items into progress, counters and records.
    fn account(
        key: FileKey,
        file: &mut Tracked,
        framed: Vec<Framed>,
        stats: &mut TailerStats,
        notices: &mut Vec<Notice>,
        out: &mut Vec<TailRecord>,
    ) {
        for item in framed {
            let contiguous = match item {
                Framed::Record { start, end, .. } if file.progress.completed_before(start, end) => {
                    stats.already_delivered += 1;
                    file.progress.skip(start, end)
                }
                Framed::Record { start, end, data, truncated } => {
                    stats.records += 1;
                    stats.truncated += u64::from(truncated);
                    out.push(TailRecord { key, start, end, data });
                    file.progress.issue(start, end)
                }
                Framed::Skip { start, end, reason } => {
                    match reason {
                        SkipReason::Header => stats.header_lines += 1,
                        SkipReason::Oversize => stats.dropped_oversize += 1,
                        SkipReason::DiscardedTail => stats.discarded_bytes += end - start,
                        SkipReason::BeforeStart => stats.before_start_bytes += end - start,
                    }
                    file.progress.skip(start, end)
                }
            };
            if let Err(error) = contiguous {
                // The framer's ranges are contiguous by construction (property-tested); should that ever
                // break, the checkpoint stops moving for this file instead of passing unsent bytes.
                stats.anomalies += 1;
                notices.push(Notice::Internal { path: file.path.clone(), message: error.to_string() });
                file.state = State::Detached;
            }
        }
    }
}

#[cfg(test)]
#[path = "tailer_tests.rs"]
mod tests;
