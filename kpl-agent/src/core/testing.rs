//! Test support: a virtual file system with Unix semantics (inodes, links, open handles keeping deleted
//! files readable, inode numbers reused), and a harness driving a [`Tailer`] on it with a virtual clock, an
//! out-of-order "producer", a checkpoint store and crashes.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

const DEV: u64 = 7;

#[derive(Debug, Default)]
struct Inode {
    data: Vec<u8>,
    links: usize,
    handles: usize,
}

/// The virtual file system. Lines are `NNNNNNNN\n` (9 bytes, unique numbers).
#[derive(Debug, Default)]
pub struct VirtualFs {
    inodes: BTreeMap<u64, Inode>,
    names: BTreeMap<PathBuf, u64>,
    next_ino: u64,
    /// Freed inode numbers, reused newest first (as ext4 often does).
    free: Vec<u64>,
    next_line: u64,
    /// Lines destroyed while no handle held them and no other file had them, not delivered then.
    pub lost_without_blame: BTreeSet<u64>,
}

/// Line numbers in `data` (complete lines only).
pub fn lines_in(data: &[u8]) -> Vec<u64> {
    data.split(|&b| b == b'\n')
        .filter(|l| l.len() == 8)
        .filter_map(|l| std::str::from_utf8(l).ok()?.parse().ok())
        .collect()
}

impl VirtualFs {
    fn create(&mut self, path: &Path) -> u64 {
        let ino = self.free.pop().unwrap_or_else(|| {
            self.next_ino += 1;
            self.next_ino
        });
        self.inodes.insert(ino, Inode { data: Vec::new(), links: 1, handles: 0 });
        self.names.insert(path.to_owned(), ino);
        ino
    }

    /// Appends `count` new lines to `path` (created if missing); returns the first line number.
    pub fn write_lines(&mut self, path: &str, count: u64) -> u64 {
        let path = Path::new(path);
        let ino = match self.names.get(path) {
            Some(ino) => *ino,
            None => self.create(path),
        };
        let first = self.next_line;
        let inode = self.inodes.get_mut(&ino).unwrap();
        for n in first..first + count {
            inode.data.extend_from_slice(format!("{n:08}\n").as_bytes());
        }
        self.next_line += count;
        first
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.names.contains_key(Path::new(path))
    }

    /// Every line number written so far.
    pub fn written(&self) -> u64 {
        self.next_line
    }

    /// `mv from to` (replacing `to`).
    pub fn rename(&mut self, from: &str, to: &str, delivered: &BTreeSet<u64>) {
        let Some(ino) = self.names.remove(Path::new(from)) else { return };
        self.unlink(to, delivered);
        self.names.insert(PathBuf::from(to), ino);
    }

    /// `rm path`.
    pub fn unlink(&mut self, path: &str, delivered: &BTreeSet<u64>) {
        let Some(ino) = self.names.remove(Path::new(path)) else { return };
        self.inodes.get_mut(&ino).unwrap().links -= 1;
        self.maybe_free(ino, delivered);
    }

    /// `cp from to`.
    pub fn copy(&mut self, from: &str, to: &str, delivered: &BTreeSet<u64>) {
        let Some(&src) = self.names.get(Path::new(from)) else { return };
        let data = self.inodes[&src].data.clone();
        self.unlink(to, delivered);
        let ino = self.create(Path::new(to));
        self.inodes.get_mut(&ino).unwrap().data = data;
    }

    /// `truncate -s 0 path`.
    pub fn truncate(&mut self, path: &str, delivered: &BTreeSet<u64>) {
        let Some(&ino) = self.names.get(Path::new(path)) else { return };
        let old = std::mem::take(&mut self.inodes.get_mut(&ino).unwrap().data);
        self.blame_free_losses(&old, delivered);
    }

    fn maybe_free(&mut self, ino: u64, delivered: &BTreeSet<u64>) {
        let inode = &self.inodes[&ino];
        if inode.links == 0 && inode.handles == 0 {
            let old = self.inodes.remove(&ino).unwrap().data;
            self.free.push(ino);
            self.blame_free_losses(&old, delivered);
        }
    }

    /// Lines of destroyed content that no other file has and that were not delivered.
    fn blame_free_losses(&mut self, old: &[u8], delivered: &BTreeSet<u64>) {
        let elsewhere: BTreeSet<u64> = self.inodes.values().flat_map(|inode| lines_in(&inode.data)).collect();
        for line in lines_in(old) {
            if !delivered.contains(&line) && !elsewhere.contains(&line) {
                self.lost_without_blame.insert(line);
            }
        }
    }

    /// What a scan sees: every name for which `matches` holds.
    pub fn observe(&self, matches: impl Fn(&str) -> bool) -> Vec<Observation> {
        self.names
            .iter()
            .filter(|(path, _)| matches(&path.to_string_lossy()))
            .map(|(path, ino)| {
                let data = &self.inodes[ino].data;
                Observation {
                    path: path.clone(),
                    id: FileId { dev: DEV, ino: *ino },
                    size: data.len() as u64,
                    head: data[..data.len().min(FINGERPRINT_MAX_LEN)].to_vec(),
                    matched: true,
                }
            })
            .collect()
    }
}

/// A tailer driven on a [`VirtualFs`]: handles, an out-of-order producer, a store, crashes.
pub struct Harness {
    pub tailer: Tailer,
    handles: BTreeMap<FileKey, u64>,
    pub now: Instant,
    in_flight: Vec<TailRecord>,
    pub delivered: BTreeSet<u64>,
    pub deliveries: u64,
    pub store: BTreeMap<FileId, SavedCheckpoint>,
    exact: bool,
    max_open_files: usize,
}

/// The settings the harness uses.
pub fn config() -> TailerConfig {
    TailerConfig {
        flow: "kinesis:s:app.log".into(),
        framing: FramingConfig { partial_line_flush: None, ..FramingConfig::default() },
        initial_position: InitialPosition::StartOfFile,
        rotate_wait: Duration::from_secs(600),
        close_inactive: Duration::from_secs(1),
        copy_hold: Duration::from_secs(5),
        max_open_files: 1000,
    }
}

impl Harness {
    /// `exact`: the pattern is `app.log` only; otherwise every name starting with `app.log`.
    pub fn new(exact: bool) -> Harness {
        Harness::with_max_open_files(exact, config().max_open_files)
    }

    /// [`Harness::new`] with at most `max_open_files` open.
    pub fn with_max_open_files(exact: bool, max_open_files: usize) -> Harness {
        Harness {
            tailer: Tailer::new(TailerConfig { max_open_files, ..config() }, Vec::new()),
            handles: BTreeMap::new(),
            now: Instant::now(),
            in_flight: Vec::new(),
            delivered: BTreeSet::new(),
            deliveries: 0,
            store: BTreeMap::new(),
            exact,
            max_open_files,
        }
    }

    /// Whether the tailer holds `path` open.
    pub fn holds(&self, fs: &VirtualFs, path: &str) -> bool {
        fs.names.get(Path::new(path)).is_some_and(|ino| self.handles.values().any(|held| held == ino))
    }

    fn release(&mut self, fs: &mut VirtualFs, key: FileKey) {
        if let Some(ino) = self.handles.remove(&key) {
            fs.inodes.get_mut(&ino).unwrap().handles -= 1;
            let delivered = self.delivered.clone();
            fs.maybe_free(ino, &delivered);
        }
    }

    fn open(&mut self, fs: &mut VirtualFs, key: FileKey, path: &Path, id: FileId) {
        match fs.names.get(path) {
            Some(&ino) if ino == id.ino => {
                fs.inodes.get_mut(&ino).unwrap().handles += 1;
                self.handles.insert(key, ino);
            }
            _ => self.tailer.on_open_failed(key, "not there"),
        }
    }

    pub fn apply(&mut self, fs: &mut VirtualFs, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Open { key, path, id, .. } => self.open(fs, key, &path, id),
                Action::Reopen { key, path, id, .. } => {
                    self.release(fs, key);
                    self.open(fs, key, &path, id);
                }
                Action::Release { key } => self.release(fs, key),
                Action::Close { key } => {
                    let holder = self.read_file(fs, key, 4096);
                    if holder == key {
                        self.release(fs, key);
                    }
                    let mut out = Vec::new();
                    self.tailer.on_closed(key, self.now, &mut out);
                    self.in_flight.extend(out);
                }
            }
        }
    }

    pub fn scan(&mut self, fs: &mut VirtualFs) {
        let exact = self.exact;
        let mut observations =
            fs.observe(|name| if exact { name == "app.log" } else { name.starts_with("app.log") });
        // One directory: every file in it is a candidate for a rotated file released early.
        if !self.tailer.waiting_dirs().is_empty() {
            observations
                .extend(fs.observe(|_| true).into_iter().map(|obs| Observation { matched: false, ..obs }));
        }
        let actions = self.tailer.on_scan(self.now, observations);
        self.apply_and_record(fs, actions);
    }

    /// The number of handles held.
    pub fn handles(&self) -> usize {
        self.handles.len()
    }

    /// Applies actions; after an open, saves checkpoints before anything is read (the contract).
    fn apply_and_record(&mut self, fs: &mut VirtualFs, actions: Vec<Action>) {
        let opened = actions.iter().any(|a| matches!(a, Action::Open { .. } | Action::Reopen { .. }));
        self.apply(fs, actions);
        if opened || self.tailer.has_unsaved_files() {
            self.save();
        }
    }

    /// Reads every open file to its end, in chunks of `chunk` bytes.
    pub fn read(&mut self, fs: &mut VirtualFs, chunk: usize) {
        let readable: Vec<FileKey> = self.tailer.readable().map(|(key, _)| key).collect();
        for key in readable {
            self.read_file(fs, key, chunk);
        }
    }

    /// Reads one file to its end, as the shell does; returns the key now holding its handle.
    fn read_file(&mut self, fs: &mut VirtualFs, mut key: FileKey, chunk: usize) -> FileKey {
        let Some(&ino) = self.handles.get(&key) else { return key };
        let data = &fs.inodes[&ino].data;
        let head = &data[..data.len().min(FINGERPRINT_MAX_LEN)];
        match self.tailer.check_handle(key, data.len() as u64, head, self.now) {
            HandleCheck::Same => {}
            HandleCheck::Wait => return key,
            HandleCheck::Replaced { new_key } => {
                self.handles.remove(&key);
                self.handles.insert(new_key, ino);
                self.save();
                key = new_key;
            }
        }
        let Some(mut offset) = self.tailer.read_offset(key) else { return key };
        loop {
            let start = (offset as usize).min(data.len());
            let end = (start + chunk).min(data.len());
            if start == end {
                self.tailer.on_eof(key);
                return key;
            }
            let mut out = Vec::new();
            self.tailer.on_data(key, &data[start..end], self.now, &mut out);
            self.in_flight.extend(out);
            offset = end as u64;
        }
    }

    /// Confirms the in-flight records picked by `pick` (out of order).
    pub fn deliver(&mut self, mut pick: impl FnMut(usize) -> bool) {
        let mut kept = Vec::new();
        for (i, record) in std::mem::take(&mut self.in_flight).into_iter().enumerate() {
            if pick(i) {
                self.delivered.extend(lines_in(&record.data));
                self.deliveries += lines_in(&record.data).len() as u64;
                self.tailer.on_delivered(record.key, record.start);
            } else {
                kept.push(record);
            }
        }
        self.in_flight = kept;
    }

    pub fn poll(&mut self, fs: &mut VirtualFs, advance: Duration) {
        self.now += advance;
        let mut out = Vec::new();
        let actions = self.tailer.poll(self.now, &mut out);
        self.in_flight.extend(out);
        self.apply_and_record(fs, actions);
    }

    pub fn save(&mut self) {
        let rows = self.tailer.dirty_checkpoints();
        for row in &rows {
            self.store.insert(row.id, row.clone());
        }
        self.tailer.checkpoints_saved(&rows);
    }

    /// `kill -9`: handles close, records in flight are lost, unsaved progress too; then a restart.
    pub fn crash_and_restart(&mut self, fs: &mut VirtualFs) {
        self.crash_and_restart_after(fs, |_| {});
    }

    /// [`crash_and_restart`](Self::crash_and_restart), with `meanwhile` done to the files while stopped.
    pub fn crash_and_restart_after(&mut self, fs: &mut VirtualFs, meanwhile: impl FnOnce(&mut VirtualFs)) {
        for key in self.handles.keys().copied().collect::<Vec<_>>() {
            self.release(fs, key);
        }
        self.in_flight.clear();
        meanwhile(fs);
        let saved: Vec<SavedCheckpoint> = self.store.values().cloned().collect();
        self.tailer = Tailer::new(TailerConfig { max_open_files: self.max_open_files, ..config() }, saved);
        // One directory: every file in it is a candidate leftover.
        let mut observations =
            if self.tailer.leftover_dirs().is_empty() { Vec::new() } else { fs.observe(|_| true) };
        for obs in &mut observations {
            obs.matched = false;
        }
        let exact = self.exact;
        observations
            .extend(fs.observe(|name| if exact { name == "app.log" } else { name.starts_with("app.log") }));
        let actions = self.tailer.on_scan(self.now, observations);
        self.apply_and_record(fs, actions);
    }

    /// The property: every line below a saved checkpoint, in the file it was saved for, was delivered.
    pub fn check_checkpoints(&self, fs: &VirtualFs) -> Result<(), String> {
        for row in self.store.values() {
            let Some(inode) = fs.inodes.get(&row.id.ino) else { continue };
            if !row.fingerprint.matches(&inode.data) {
                continue;
            }
            let below = &inode.data[..(row.offset as usize).min(inode.data.len())];
            if let Some(line) = lines_in(below).into_iter().find(|line| !self.delivered.contains(line)) {
                return Err(format!("line {line} is below the checkpoint {row:?} and was never delivered"));
            }
            for &(start, end) in &row.completed {
                let (start, end) = (start as usize, (end as usize).min(inode.data.len()));
                let Some(range) = inode.data.get(start..end) else { continue };
                if let Some(line) = lines_in(range).into_iter().find(|line| !self.delivered.contains(line)) {
                    return Err(format!(
                        "line {line} is in a completed range of {row:?} and was never delivered"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Scans, reads, delivers everything and lets time pass until nothing is left.
    pub fn drain(&mut self, fs: &mut VirtualFs) {
        for _ in 0..20 {
            self.scan(fs);
            self.read(fs, 4096);
            self.poll(fs, Duration::from_secs(3));
            self.deliver(|_| true);
            self.save();
        }
    }
}
