//! Discovery diffing: one scan's observations against the files tracked (see the rotation decisions in
//! the parent module's documentation).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Instant;

use super::{Action, FileKey, Handle, InitialPosition, Observation, SavedCheckpoint, State, Tailer, Tracked};
use crate::core::framing::Framer;
use crate::core::identity::Fingerprint;
use crate::core::notice::Notice;
use crate::core::progress::Progress;

/// Names the Kinesis Agent always skips (`SourceFile.java`): compressed rotations.
const COMPRESSED_SUFFIXES: [&str; 3] = [".gz", ".bz2", ".zip"];

fn is_compressed(path: &Path) -> bool {
    let name = path.file_name().map(|name| name.to_string_lossy()).unwrap_or_default();
    COMPRESSED_SUFFIXES.iter().any(|suffix| name.ends_with(suffix))
}

/// One scan's working state.
struct Scan {
    now: Instant,
    seen: BTreeSet<FileKey>,
    actions: Vec<Action>,
}

impl Tailer {
    /// A directory scan's observations (see the module contract); returns what the shell must do.
    pub fn on_scan(&mut self, now: Instant, observations: Vec<Observation>) -> Vec<Action> {
        let mut scan = Scan { now, seen: BTreeSet::new(), actions: Vec::new() };
        // A rotated file without a descriptor is known only where this scan finds it.
        for file in self.files.values_mut() {
            if let (State::Gone { .. }, Handle::Waiting { .. }) = (file.state, file.handle) {
                file.observed_size = None;
            }
        }
        let (matched, leftovers): (Vec<_>, Vec<_>) = observations.into_iter().partition(|obs| obs.matched);
        let mut truncated = Vec::new();
        let mut fresh = Vec::new();
        for obs in matched.into_iter().filter(|obs| !is_compressed(&obs.path)) {
            let Some(key) = self.open_key(obs.id.dev, obs.id.ino) else {
                fresh.push(obs);
                continue;
            };
            scan.seen.insert(key);
            let Some(file) = self.files.get_mut(&key) else { continue };
            if !file.fingerprint.matches(&obs.head) || obs.size < file.framer.consumed() {
                truncated.push((key, obs));
                continue;
            }
            if file.path != obs.path {
                self.notices.push(Notice::Renamed { from: file.path.clone(), to: obs.path.clone() });
                file.path = obs.path.clone();
            }
            if let State::Gone { .. } = file.state {
                self.notices.push(Notice::Back { path: obs.path.clone() });
                file.state = State::Live;
            }
            file.observed_size = Some(obs.size);
            // Grown since it was last read to its end: not idle (its descriptor is not given away).
            file.at_eof &= obs.size <= file.framer.consumed();
            if obs.head.len() > file.head.len() {
                file.fingerprint = Fingerprint::of(&obs.head);
                file.head = obs.head;
            }
        }
        for (key, obs) in truncated {
            self.truncated(&mut scan, key, obs, &mut fresh);
        }
        self.discover(&mut scan, fresh);
        for obs in leftovers {
            self.resume_leftover(&mut scan, obs);
        }
        for (key, file) in &mut self.files {
            if file.state == State::Live && !scan.seen.contains(key) {
                self.notices.push(Notice::Gone { path: file.path.clone() });
                file.state = State::Gone { since: now };
                if file.handle != Handle::Open {
                    file.observed_size = None;
                }
            }
        }
        self.scanned = true;
        self.balance(now, &mut scan.actions);
        scan.actions
    }

    /// The key of the open file with this (device, inode), if any.
    fn open_key(&self, dev: u64, ino: u64) -> Option<FileKey> {
        self.files
            .iter()
            .find(|(_, file)| {
                file.id.dev == dev
                    && file.id.ino == ino
                    && matches!(file.state, State::Live | State::Gone { .. })
            })
            .map(|(key, _)| *key)
    }

    /// File `key`'s inode holds other content now (copytruncate): resume in its copy if there is one, and
    /// read the new content from 0.
    fn truncated(&mut self, scan: &mut Scan, key: FileKey, obs: Observation, fresh: &mut Vec<Observation>) {
        let Some(file) = self.files.get_mut(&key) else { return };
        let offset = file.framer.consumed();
        let copy = fresh.iter().position(|o| o.id != obs.id && file.fingerprint.matches(&o.head));
        if let Some(index) = copy {
            let copy = fresh.remove(index);
            self.held.remove(&copy.id);
            self.notices.push(Notice::CopyTruncated {
                path: obs.path.clone(),
                copy: copy.path.clone(),
                offset,
            });
            self.stats.anomalies += 1;
            file.id = copy.id;
            file.path = copy.path.clone();
            file.state = State::Live;
            file.at_eof = false;
            file.observed_size = Some(copy.size);
            // Without a descriptor, it waits for one as before (in the copy now).
            if file.handle == Handle::Open {
                scan.actions.push(Action::Reopen { key, path: copy.path, id: copy.id, offset });
            }
        } else {
            self.notices.push(Notice::TruncatedWithoutCopy { path: obs.path.clone(), read_to: offset });
            self.stats.anomalies += 1;
            file.state = State::Detached;
            scan.actions.push(Action::Close { key });
        }
        self.start(scan, obs, 0, "new content after a truncation", State::Live);
    }

    /// Files not tracked: resumed from a checkpoint, held back as a likely copy, or started.
    fn discover(&mut self, scan: &mut Scan, fresh: Vec<Observation>) {
        // Checkpoints of the same inode first, so that a copy cannot claim its original's checkpoint. A
        // checkpoint whose inode holds other content now stays available: its content may be in a copy
        // (a copytruncate while we were stopped), found by fingerprint below.
        let mut rest = Vec::new();
        for obs in fresh {
            let Some(index) = self.saved.iter().position(|row| row.id == obs.id) else {
                rest.push(obs);
                continue;
            };
            let row = &self.saved[index];
            if !row.fingerprint.matches(&obs.head) {
                self.stats.anomalies += 1;
                self.notices.push(Notice::InodeReused { path: obs.path.clone(), id: obs.id });
                self.start(scan, obs, 0, "other content than at the checkpoint", State::Live);
            } else if obs.size < row.offset {
                self.stats.anomalies += 1;
                let (path, checkpoint, size) = (obs.path.clone(), row.offset, obs.size);
                self.notices.push(Notice::ShrankWhileStopped { path, checkpoint, size });
                self.start(scan, obs, 0, "truncated while stopped", State::Live);
            } else {
                let row = self.saved.remove(index);
                self.resume(scan, obs, row, "checkpoint", State::Live);
            }
        }
        let mut held = BTreeMap::new();
        for obs in rest {
            let moved = self.saved.iter().position(|row| {
                row.fingerprint.is_full() && row.fingerprint.matches(&obs.head) && row.offset <= obs.size
            });
            if let Some(index) = moved {
                let row = self.saved.remove(index);
                let why = "checkpoint of the same content (a copy or a move while stopped)";
                self.resume(scan, obs, row, why, State::Live);
                continue;
            }
            let looks_like_a_copy = self.scanned
                && self.files.values().any(|file| {
                    file.state == State::Live
                        && file.fingerprint.is_full()
                        && file.fingerprint.matches(&obs.head)
                });
            if looks_like_a_copy {
                let since = self.held.get(&obs.id).copied().unwrap_or(scan.now);
                if scan.now.saturating_duration_since(since) < self.config.copy_hold {
                    held.insert(obs.id, since);
                    continue;
                }
            }
            let (offset, why) = match (self.scanned, self.config.initial_position) {
                (true, _) => (0, "new file"),
                (false, InitialPosition::StartOfFile) => (0, "initialPosition START_OF_FILE"),
                (false, InitialPosition::EndOfFile) => {
                    // From the start of its last line, found by reading the end of the file.
                    let framer = Framer::at_end(obs.size);
                    let why = "initialPosition END_OF_FILE (the start of its last line)";
                    let key = self.start(scan, obs, framer.consumed(), why, State::Live);
                    if let Some(file) = self.files.get_mut(&key) {
                        file.framer = framer;
                    }
                    continue;
                }
            };
            self.start(scan, obs, offset, why, State::Live);
        }
        self.held = held;
    }

    /// A file in [`Tailer::leftover_dirs`]: resumed (and closed once read) if it is still the file its
    /// checkpoint was saved for.
    fn resume_leftover(&mut self, scan: &mut Scan, obs: Observation) {
        if let Some(key) = self.open_key(obs.id.dev, obs.id.ino) {
            self.found_again(key, obs);
            return;
        }
        let flow = &self.config.flow;
        let Some(index) = self.saved.iter().position(|row| {
            &row.flow == flow
                && row.id == obs.id
                && row.fingerprint.matches(&obs.head)
                && row.offset <= obs.size
        }) else {
            return;
        };
        let row = self.saved.remove(index);
        let gone = State::Gone { since: scan.now };
        self.resume(scan, obs, row, "checkpoint of a rotated file left unfinished", gone);
    }

    /// A rotated file without a descriptor (released early), found by identity outside the pattern: it
    /// is reopened if it grew.
    fn found_again(&mut self, key: FileKey, obs: Observation) {
        let Some(file) = self.files.get_mut(&key) else { return };
        let waiting = matches!(file.handle, Handle::Waiting { .. });
        if !(waiting && matches!(file.state, State::Gone { .. })) {
            return;
        }
        if !file.fingerprint.matches(&obs.head) || obs.size < file.framer.consumed() {
            // Other content now: what it held past the read offset cannot be found.
            return;
        }
        if file.path != obs.path {
            self.notices.push(Notice::Renamed { from: file.path.clone(), to: obs.path.clone() });
            file.path = obs.path;
        }
        file.at_eof = obs.size <= file.framer.consumed();
        file.observed_size = Some(obs.size);
    }

    /// Starts tracking a file at its saved checkpoint, with the ranges above it confirmed then.
    fn resume(
        &mut self,
        scan: &mut Scan,
        obs: Observation,
        row: SavedCheckpoint,
        why: &'static str,
        state: State,
    ) {
        let key = self.start(scan, obs, row.offset, why, state);
        if let Some(file) = self.files.get_mut(&key) {
            file.progress = Progress::resuming(row.offset, &row.completed);
        }
    }

    /// Starts tracking a file at `offset`; [`Tailer::balance`] opens it.
    fn start(
        &mut self,
        scan: &mut Scan,
        obs: Observation,
        offset: u64,
        why: &'static str,
        state: State,
    ) -> FileKey {
        let key = self.track(obs, offset, why, state, scan.now);
        scan.seen.insert(key);
        key
    }

    /// Starts tracking a file at `offset`.
    pub(super) fn track(
        &mut self,
        obs: Observation,
        offset: u64,
        why: &'static str,
        state: State,
        now: Instant,
    ) -> FileKey {
        let key = FileKey(self.next_key);
        self.next_key += 1;
        self.notices.push(Notice::Opened { path: obs.path.clone(), offset, why });
        let observed_size = Some(obs.size);
        self.files.insert(
            key,
            Tracked {
                id: obs.id,
                path: obs.path,
                fingerprint: Fingerprint::of(&obs.head),
                head: obs.head,
                framer: Framer::new(offset, &self.config.framing),
                progress: Progress::starting_at(offset),
                state,
                at_eof: false,
                last_data: now,
                saved_offset: None,
                saved_completed: Vec::new(),
                saved_path: None,
                handle: Handle::Waiting { since: now },
                observed_size,
            },
        );
        key
    }
}
