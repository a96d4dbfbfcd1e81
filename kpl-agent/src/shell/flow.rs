//! One flow at run time: its tailer, the open files, and the reads.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::Instant;

use kpl_tokio::StreamTarget;

use super::agent::RECORD_OVERHEAD;
use super::discovery::{self, read_head};
use super::keys::KeyChooser;
use super::processing::ProcessingRuntime;
use crate::config::{Destination, FlowConfig};
use crate::core::metrics::SendCounters;
use crate::core::{
    Action, FileId, FileKey, FirehoseBatcher, HandleCheck, SavedCheckpoint, TailRecord, Tailer,
};

/// At most one error line per flow this often about records not written (with the count since).
const FAILURE_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
/// Most bytes read from one file in one round, so that one busy file does not starve the others.
const MAX_READ_PER_FILE: u64 = 1 << 20;
/// One read call.
const READ_CHUNK: usize = 64 << 10;

/// What a round may still read: bytes (the budget's, each record costing
/// [`RECORD_OVERHEAD`] more) and records (the in-flight cap). A chunk read may pass the record cap by the
/// records it holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Room {
    pub(crate) bytes: u64,
    pub(crate) records: usize,
}

/// Where a flow's records go at run time.
pub(crate) enum Sink {
    /// Through the producer, to this stream.
    Kinesis(StreamTarget),
    /// To this delivery stream, batched.
    Firehose { name: String, batcher: Box<FirehoseBatcher> },
}

/// A flow's run-time state.
pub(crate) struct FlowRuntime {
    pub(crate) config: FlowConfig,
    pub(crate) sink: Sink,
    pub(crate) tailer: Tailer,
    pub(crate) keys: KeyChooser,
    pub(super) files: HashMap<FileKey, File>,
    pub(crate) next_scan: Instant,
    /// The handle of a file moved to a new key (`HandleCheck::Replaced`): checkpoints must be saved.
    pub(crate) needs_save: bool,
    /// When delivery failures were last logged, and how many since.
    pub(crate) last_failure_log: Option<Instant>,
    pub(crate) failures_unlogged: u64,
    /// The processing step's run-time state (dead-letter file, warnings).
    pub(super) processing: ProcessingRuntime,
    /// Delivery counters (the agent's metrics).
    pub(crate) send: SendCounters,
    /// Records the producer refused as invalid.
    pub(crate) refused: u64,
    /// Records handed to the producer and not confirmed yet (file, start) → when they were read.
    pub(crate) unacked: HashMap<(FileKey, u64), Instant>,
    /// Unique in the run: deliveries name their flow by it (flows come and go with reloads).
    pub(crate) uid: u64,
    /// Not scanned yet: its first scan also looks at the directories of its leftover checkpoints.
    pub(crate) fresh: bool,
    /// Removed or changed by a reload: reads nothing more, and goes once its records complete.
    pub(crate) retiring: bool,
}

/// Opens `path` and checks it is still `id`.
fn open_checked(path: &Path, id: FileId) -> Result<File, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if (meta.dev(), meta.ino()) != (id.dev, id.ino) {
        return Err("the path is another file now".into());
    }
    Ok(file)
}

impl FlowRuntime {
    /// The flow, with the checkpoints saved by earlier runs, its share of `maxOpenFiles` and its
    /// [`uid`](Self::uid).
    pub(crate) fn new(
        config: FlowConfig,
        saved: Vec<SavedCheckpoint>,
        max_open_files: usize,
        now: Instant,
        uid: u64,
    ) -> FlowRuntime {
        let sink = match &config.destination {
            Destination::KinesisStream(name) => Sink::Kinesis(StreamTarget::name(name)),
            Destination::DeliveryStream { name, batching } => Sink::Firehose {
                name: name.clone(),
                batcher: Box::new(FirehoseBatcher::new(batching.clone())),
            },
        };
        let tailer = Tailer::new(config.tailer_config(max_open_files), saved);
        let keys = KeyChooser::new(config.partition_key.clone());
        FlowRuntime {
            config,
            sink,
            tailer,
            keys,
            files: HashMap::new(),
            next_scan: now,
            needs_save: false,
            last_failure_log: None,
            failures_unlogged: 0,
            processing: ProcessingRuntime::default(),
            send: SendCounters::default(),
            refused: 0,
            unacked: HashMap::new(),
            uid,
            fresh: true,
            retiring: false,
        }
    }

    /// `count` records not written (`error`: why): logged at error at most every `FAILURE_LOG_EVERY`
    /// per flow, with the count since.
    pub(crate) fn failed(&mut self, count: u64, error: &dyn std::fmt::Display) {
        self.failures_unlogged += count;
        let now = Instant::now();
        if self.last_failure_log.is_none_or(|at| now.duration_since(at) >= FAILURE_LOG_EVERY) {
            tracing::error!(
                flow = %self.config.id(),
                failures = self.failures_unlogged,
                %error,
                "records not written; the flow stalls on them and retries (nothing is dropped)"
            );
            self.last_failure_log = Some(now);
            self.failures_unlogged = 0;
        }
    }

    /// When the flow's Firehose batcher has something to do next.
    pub(crate) fn firehose_wakeup(&self) -> Option<Instant> {
        match &self.sink {
            Sink::Firehose { batcher, .. } => batcher.next_wakeup(),
            Sink::Kinesis(_) => None,
        }
    }

    /// Open files.
    pub(crate) fn open_files(&self) -> usize {
        self.files.len()
    }

    /// The (device, inode) of the files this flow reads.
    pub(crate) fn file_ids(&self) -> impl Iterator<Item = FileId> + '_ {
        self.tailer.tracked_ids()
    }

    /// Scans the pattern (and, on the first scan, the directories of leftover checkpoints), applies the
    /// tailer's actions; returns whether files were opened (checkpoints must be saved before reading).
    /// Files in `claimed` are read by another flow: a file feeds one flow (its checkpoint is keyed by the
    /// file alone), so they are left out.
    pub(crate) fn scan(
        &mut self,
        now: Instant,
        first: bool,
        claimed: &HashSet<FileId>,
        out: &mut Vec<TailRecord>,
    ) -> bool {
        let mut observations = discovery::observe(&self.config.file_pattern);
        let mut dirs = self.tailer.waiting_dirs();
        if first {
            dirs.extend(self.tailer.leftover_dirs());
        }
        observations.extend(discovery::observe_dirs(&dirs));
        observations.retain(|obs| {
            let taken = claimed.contains(&obs.id) && obs.matched;
            if taken {
                tracing::debug!(path = %obs.path.display(), flow = %self.config.id(), "read by another flow; skipped");
            }
            !taken
        });
        let actions = self.tailer.on_scan(now, observations);
        let opened = actions.iter().any(|a| matches!(a, Action::Open { .. } | Action::Reopen { .. }));
        self.apply(actions, now, out);
        opened || self.tailer.has_unsaved_files()
    }

    /// Applies actions of the tailer; after an open, checkpoints must be saved before reading
    /// (`needs_save`).
    pub(crate) fn apply(&mut self, actions: Vec<Action>, now: Instant, out: &mut Vec<TailRecord>) {
        for action in actions {
            match action {
                Action::Open { key, path, id, .. } => {
                    self.open(key, &path, id);
                    self.needs_save = true;
                }
                Action::Reopen { key, path, id, .. } => {
                    self.files.remove(&key);
                    self.open(key, &path, id);
                    self.needs_save = true;
                }
                Action::Release { key } => {
                    self.files.remove(&key);
                }
                Action::Close { key } => {
                    // Read what is left: the file was quiet at its end, so little or nothing; past the
                    // budget by at most one round's read of one file.
                    let mut room =
                        Room { bytes: MAX_READ_PER_FILE * (1 + RECORD_OVERHEAD), records: usize::MAX };
                    let holder = self.read_file(key, MAX_READ_PER_FILE, &mut room, now, out);
                    if holder == key {
                        self.files.remove(&key);
                    }
                    self.tailer.on_closed(key, now, out);
                }
            }
        }
    }

    fn open(&mut self, key: FileKey, path: &Path, id: FileId) {
        match open_checked(path, id) {
            Ok(file) => {
                self.files.insert(key, file);
            }
            Err(reason) => self.tailer.on_open_failed(key, &reason),
        }
    }

    /// Reads the open files within `room` (the memory budget left); framed records go to `out`.
    pub(crate) fn read_round(&mut self, room: &mut Room, now: Instant, out: &mut Vec<TailRecord>) {
        let keys: Vec<FileKey> = self.tailer.readable().map(|(key, _)| key).collect();
        for key in keys {
            if room.bytes == 0 || room.records == 0 {
                return;
            }
            self.read_file(key, MAX_READ_PER_FILE, room, now, out);
        }
    }

    /// Reads one file from its offset, up to `cap` bytes and `room`; returns the key now holding its
    /// handle (it moves when the content under it was replaced).
    fn read_file(
        &mut self,
        key: FileKey,
        cap: u64,
        room: &mut Room,
        now: Instant,
        out: &mut Vec<TailRecord>,
    ) -> FileKey {
        let Some(mut offset) = self.tailer.read_offset(key) else { return key };
        let Some(file) = self.files.get(&key) else { return key };
        let Ok(size) = file.metadata().map(|meta| meta.len()) else { return key };
        if size == offset {
            self.tailer.on_eof(key);
            return key;
        }
        let Ok(head) = read_head(file) else { return key };
        match self.tailer.check_handle(key, size, &head, now) {
            HandleCheck::Same => {}
            HandleCheck::Wait => return key,
            HandleCheck::Replaced { new_key } => {
                if let Some(file) = self.files.remove(&key) {
                    self.files.insert(new_key, file);
                }
                self.needs_save = true;
                // Read it after the checkpoints are saved (the next round).
                return new_key;
            }
        }
        let Some(file) = self.files.get(&key) else { return key };
        let mut budget = cap;
        let mut buffer = vec![0; READ_CHUNK];
        loop {
            // Each byte read may end a record (a line can be one byte), which then costs the overhead
            // too: reading at most room / (1 + overhead) bytes keeps the budget whatever the framing.
            let affordable = room.bytes / (1 + RECORD_OVERHEAD);
            let want = READ_CHUNK.min(usize::try_from(budget.min(affordable)).unwrap_or(READ_CHUNK));
            if want == 0 || room.records == 0 {
                break;
            }
            match file.read_at(&mut buffer[..want], offset) {
                Ok(0) => {
                    self.tailer.on_eof(key);
                    break;
                }
                Ok(n) => {
                    let before = out.len();
                    self.tailer.on_data(key, &buffer[..n], now, out);
                    let records = (out.len() - before) as u64;
                    offset += n as u64;
                    budget -= n as u64;
                    room.bytes = room.bytes.saturating_sub(n as u64 + records * RECORD_OVERHEAD);
                    room.records = room.records.saturating_sub(records as usize);
                }
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => {
                    let path = self.tailer.path(key).map(|p| p.display().to_string()).unwrap_or_default();
                    tracing::warn!(path, %error, "read failed; retrying on the next round");
                    break;
                }
            }
        }
        key
    }
}
