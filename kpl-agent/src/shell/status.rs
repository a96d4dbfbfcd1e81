//! `kpl agent status`: what a running agent exposes, and how it is read.
//!
//! The running agent writes a status file beside its checkpoint store ([`status_file`]:
//! `checkpoints.redb` → `checkpoints.status.json`) at every checkpoint commit
//! (`checkpointIntervalMillis`), replacing it atomically (a temporary file renamed over it), and a last
//! time when it stops (`"running": false`). It holds the agent's process id, the time it was written,
//! and per flow and per file: the path, (device, inode), the read offset, the checkpoint (every byte
//! below confirmed written), the checkpoint last committed to the store, the records in flight and the
//! file's size. A file, not a socket: readable with `cat`/`jq` and by unprivileged tools, nothing for
//! the agent to serve, and still there after a crash (its process id then names a dead process).
//!
//! [`read_status`] reads it; when the agent is not running, the checkpoint store is read instead (it is
//! locked while an agent holds it open).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::flow::FlowRuntime;
use super::store::CheckpointStore;

/// The status file of the agent whose checkpoint store is `checkpoint_file`.
pub fn status_file(checkpoint_file: &Path) -> PathBuf {
    checkpoint_file.with_extension("status.json")
}

/// Writes the status of `flows` to `path` (see the module doc), atomically.
pub(crate) fn write(path: &Path, flows: &[FlowRuntime], running: bool) -> std::io::Result<()> {
    let flows: Vec<Value> = flows
        .iter()
        .map(|flow| {
            let files: Vec<Value> = flow
                .tailer
                .files()
                .map(|file| {
                    let size = flow.files.get(&file.key).and_then(|handle| handle.metadata().ok());
                    json!({
                        "path": file.path.to_string_lossy(),
                        "dev": file.id.dev,
                        "ino": file.id.ino,
                        "read_offset": file.read_offset,
                        "checkpoint": file.checkpoint,
                        "saved_checkpoint": file.saved_checkpoint,
                        "in_flight_records": file.in_flight_records,
                        "size": size.map(|meta| meta.len()),
                        "open": file.open,
                    })
                })
                .collect();
            json!({"flow": flow.config.id(), "files": files})
        })
        .collect();
    let status = json!({
        "pid": std::process::id(),
        "running": running,
        "written_at_ms": unix_ms(SystemTime::now()),
        "flows": flows,
    });
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(status.to_string().as_bytes())?;
    drop(file);
    std::fs::rename(&temporary, path)
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Where a status came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusSource {
    /// The status file of a running agent (this process id).
    Running {
        /// Its process id.
        pid: u32,
    },
    /// The checkpoint store: no agent is running (a status file, if any, was left by one that stopped
    /// or died; it is shown only for the times it reports).
    Store,
}

/// One file's row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    /// The flow's id.
    pub flow: String,
    /// The file's path when last seen.
    pub path: PathBuf,
    /// Where the next read starts (a running agent only).
    pub read_offset: Option<u64>,
    /// The checkpoint: every byte below confirmed written (a running agent only; its committed
    /// value is `saved_checkpoint`).
    pub checkpoint: Option<u64>,
    /// The checkpoint in the store.
    pub saved_checkpoint: Option<u64>,
    /// Records in flight (a running agent only).
    pub in_flight_records: Option<u64>,
    /// The file's size (a running agent only, for open files).
    pub size: Option<u64>,
}

/// What `kpl agent status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentStatus {
    /// Where it came from.
    pub source: StatusSource,
    /// How old the status file is (a running agent only).
    pub age: Option<Duration>,
    /// Every file, by flow then path.
    pub files: Vec<FileRow>,
}

/// Why no status could be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The status file is not what an agent writes.
    #[error("{path}: not a kpl agent status file: {message}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No agent runs and the checkpoint store cannot be read.
    #[error("no running agent writes {status}, and the checkpoint store cannot be read: {source}")]
    Store {
        /// The status file looked for.
        status: PathBuf,
        /// Why the store could not be read.
        source: super::StoreError,
    },
}

/// The status of the agent whose checkpoint store is `checkpoint_file`: its status file if it runs,
/// else the checkpoint store.
pub fn read_status(checkpoint_file: &Path) -> Result<AgentStatus, StatusError> {
    let path = status_file(checkpoint_file);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let unreadable =
            |message: &str| StatusError::Unreadable { path: path.clone(), message: message.into() };
        let value: Value = serde_json::from_str(&text).map_err(|e| unreadable(&e.to_string()))?;
        let pid = value["pid"]
            .as_u64()
            .and_then(|pid| u32::try_from(pid).ok())
            .ok_or_else(|| unreadable("no pid"))?;
        let running =
            value["running"].as_bool().unwrap_or(false) && Path::new(&format!("/proc/{pid}")).exists();
        if running {
            let written = UNIX_EPOCH + Duration::from_millis(value["written_at_ms"].as_u64().unwrap_or(0));
            let age = SystemTime::now().duration_since(written).unwrap_or_default();
            let files = rows(&value).ok_or_else(|| unreadable("no flows"))?;
            return Ok(AgentStatus { source: StatusSource::Running { pid }, age: Some(age), files });
        }
    }
    if !checkpoint_file.exists() {
        let message = "no such file (no agent ran with it)".to_owned();
        let source = super::StoreError { path: checkpoint_file.to_owned(), message };
        return Err(StatusError::Store { status: path, source });
    }
    let store = CheckpointStore::open(checkpoint_file)
        .and_then(|store| store.rows())
        .map_err(|source| StatusError::Store { status: path.clone(), source })?;
    let mut files: Vec<FileRow> = store
        .into_iter()
        .map(|row| FileRow {
            flow: row.flow,
            path: row.path,
            read_offset: None,
            checkpoint: None,
            saved_checkpoint: Some(row.offset),
            in_flight_records: None,
            size: None,
        })
        .collect();
    files.sort_by(|a, b| (&a.flow, &a.path).cmp(&(&b.flow, &b.path)));
    Ok(AgentStatus { source: StatusSource::Store, age: None, files })
}

fn rows(value: &Value) -> Option<Vec<FileRow>> {
    let mut rows = Vec::new();
    for flow in value["flows"].as_array()? {
        let id = flow["flow"].as_str()?;
        for file in flow["files"].as_array()? {
            rows.push(FileRow {
                flow: id.to_owned(),
                path: PathBuf::from(file["path"].as_str()?),
                read_offset: file["read_offset"].as_u64(),
                checkpoint: file["checkpoint"].as_u64(),
                saved_checkpoint: file["saved_checkpoint"].as_u64(),
                in_flight_records: file["in_flight_records"].as_u64(),
                size: file["size"].as_u64(),
            });
        }
    }
    Some(rows)
}

impl std::fmt::Display for AgentStatus {
    /// A table: one line per file (`-` for what is not known), under a line saying where it came from.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.source, self.age) {
            (StatusSource::Running { pid }, age) => {
                let age = age.unwrap_or_default().as_secs_f64();
                writeln!(f, "running (pid {pid}), status written {age:.1} s ago")?
            }
            (StatusSource::Store, _) => writeln!(f, "not running: checkpoints from the store")?,
        }
        let cell = |value: Option<u64>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mut flow = None;
        for row in &self.files {
            if flow != Some(&row.flow) {
                writeln!(f, "{}", row.flow)?;
                writeln!(
                    f,
                    "  {:>12} {:>12} {:>12} {:>9} {:>12}  path",
                    "read", "checkpoint", "saved", "in-flight", "size"
                )?;
                flow = Some(&row.flow);
            }
            writeln!(
                f,
                "  {:>12} {:>12} {:>12} {:>9} {:>12}  {}",
                cell(row.read_offset),
                cell(row.checkpoint),
                cell(row.saved_checkpoint),
                cell(row.in_flight_records),
                cell(row.size),
                row.path.display()
            )?;
        }
        if self.files.is_empty() {
            writeln!(f, "no files")?;
        }
        Ok(())
    }
}
