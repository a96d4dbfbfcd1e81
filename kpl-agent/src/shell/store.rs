//! The checkpoint store: a redb database (pure Rust, ACID, crash-safe: a commit is durable once it
//! returns, and a crash mid-commit leaves the previous state). One row per file, keyed by
//! (device, inode); the value is a small JSON object (fingerprint, offset, completed ranges above it,
//! path, flow, time saved).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::{Value, json};

use crate::core::{FileId, Fingerprint, SavedCheckpoint};

const CHECKPOINTS: TableDefinition<(u64, u64), &str> = TableDefinition::new("checkpoints_v1");

/// A checkpoint store failure.
#[derive(Debug, thiserror::Error)]
#[error("checkpoint store {path}: {message}")]
pub struct StoreError {
    /// The database file.
    pub path: PathBuf,
    /// What failed.
    pub message: String,
}

/// The checkpoint database.
pub struct CheckpointStore {
    db: Database,
    path: PathBuf,
}

impl std::fmt::Debug for CheckpointStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointStore").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Where checkpoints go when `checkpointFile` is not set: `$STATE_DIRECTORY` (systemd's
/// `StateDirectory=`), else `/var/lib/kpl-agent` if it can be created, else
/// `$XDG_STATE_HOME/kpl-agent` or `~/.local/state/kpl-agent`. Never tmpfs (the Kinesis Agent's
/// `/var/run/aws-kinesis-agent` is wiped at reboot on many systems, and every file is then sent again).
pub fn default_checkpoint_file() -> PathBuf {
    const NAME: &str = "checkpoints.redb";
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|dir| !dir.is_empty()) {
        // systemd may pass several, separated by ':'; the first is ours.
        let first = dir.to_string_lossy().split(':').next().unwrap_or_default().to_owned();
        return PathBuf::from(first).join(NAME);
    }
    let system = Path::new("/var/lib/kpl-agent");
    if std::fs::create_dir_all(system).is_ok() && !is_read_only(system) {
        return system.join(NAME);
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    state.join("kpl-agent").join(NAME)
}

fn is_read_only(dir: &Path) -> bool {
    let probe = dir.join(".kpl-agent-write-test");
    let writable = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    !writable
}

fn unix_ms(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl CheckpointStore {
    /// Opens (or creates) the database at `path`, creating its directory.
    pub fn open(path: &Path) -> Result<CheckpointStore, StoreError> {
        let fail = |message: String| StoreError { path: path.to_owned(), message };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| fail(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| fail(e.to_string()))?;
        Ok(CheckpointStore { db, path: path.to_owned() })
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn fail(&self, error: impl std::fmt::Display) -> StoreError {
        StoreError { path: self.path.clone(), message: error.to_string() }
    }

    /// Every checkpoint, after deleting those not saved for `ttl` (`checkpointTimeToLiveDays`, applied at
    /// startup as the agent does). Rows that do not decode are skipped with a warning.
    pub fn load(&self, ttl: Duration, now: SystemTime) -> Result<Vec<SavedCheckpoint>, StoreError> {
        let oldest = unix_ms(now).saturating_sub(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let write = self.db.begin_write().map_err(|e| self.fail(e))?;
        let mut rows = Vec::new();
        {
            let mut table = write.open_table(CHECKPOINTS).map_err(|e| self.fail(e))?;
            table
                .retain(|_, value| {
                    serde_json::from_str::<Value>(value)
                        .ok()
                        .and_then(|v| v["saved_at_ms"].as_u64())
                        .unwrap_or(0)
                        >= oldest
                })
                .map_err(|e| self.fail(e))?;
            for entry in table.iter().map_err(|e| self.fail(e))? {
                let (key, value) = entry.map_err(|e| self.fail(e))?;
                let (dev, ino) = key.value();
                match decode(FileId { dev, ino }, value.value()) {
                    Some(row) => rows.push(row),
                    None => tracing::warn!(dev, ino, "checkpoint store: a row does not decode; ignored"),
                }
            }
        }
        write.commit().map_err(|e| self.fail(e))?;
        Ok(rows)
    }

    /// Saves `rows` in one durable transaction.
    pub fn save(&self, rows: &[SavedCheckpoint], now: SystemTime) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let write = self.db.begin_write().map_err(|e| self.fail(e))?;
        {
            let mut table = write.open_table(CHECKPOINTS).map_err(|e| self.fail(e))?;
            for row in rows {
                let value = encode(row, unix_ms(now));
                table.insert((row.id.dev, row.id.ino), value.as_str()).map_err(|e| self.fail(e))?;
            }
        }
        write.commit().map_err(|e| self.fail(e))
    }

    /// Every row, for `kpl agent` status output and tests.
    pub fn rows(&self) -> Result<Vec<SavedCheckpoint>, StoreError> {
        let read = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = match read.open_table(CHECKPOINTS) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.fail(e)),
        };
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| self.fail(e))? {
            let (key, value) = entry.map_err(|e| self.fail(e))?;
            let (dev, ino) = key.value();
            rows.extend(decode(FileId { dev, ino }, value.value()));
        }
        Ok(rows)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn encode(row: &SavedCheckpoint, saved_at_ms: u64) -> String {
    json!({
        "fingerprint_len": row.fingerprint.len,
        "fingerprint_md5": hex(&row.fingerprint.digest),
        "offset": row.offset,
        "completed": row.completed,
        "path": row.path.to_string_lossy(),
        "flow": row.flow,
        "saved_at_ms": saved_at_ms,
    })
    .to_string()
}

fn decode(id: FileId, text: &str) -> Option<SavedCheckpoint> {
    let value: Value = serde_json::from_str(text).ok()?;
    let digest_hex = value["fingerprint_md5"].as_str()?;
    let mut digest = [0u8; 16];
    if digest_hex.len() != 32 {
        return None;
    }
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(digest_hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(SavedCheckpoint {
        id,
        fingerprint: Fingerprint { len: u32::try_from(value["fingerprint_len"].as_u64()?).ok()?, digest },
        offset: value["offset"].as_u64()?,
        path: PathBuf::from(value["path"].as_str()?),
        flow: value["flow"].as_str()?.to_owned(),
        // Rows saved before completed ranges were kept have none.
        completed: match &value["completed"] {
            Value::Null => Vec::new(),
            ranges => serde_json::from_value(ranges.clone()).ok()?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ino: u64, offset: u64) -> SavedCheckpoint {
        SavedCheckpoint {
            id: FileId { dev: 1, ino },
            fingerprint: Fingerprint::of(b"head\n"),
            offset,
            path: PathBuf::from("/var/log/app.log"),
            flow: "kinesis:s:/var/log/*.log".into(),
            completed: vec![(offset + 10, offset + 30), (offset + 40, offset + 41)],
        }
    }

    #[test]
    fn rows_survive_reopening_and_expire_after_their_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/checkpoints.redb");
        let now = SystemTime::now();
        {
            let store = CheckpointStore::open(&path).unwrap();
            store.save(&[row(1, 10), row(2, 20)], now - Duration::from_secs(86_400 * 8)).unwrap();
            store.save(&[row(2, 25), row(3, 30)], now).unwrap();
        }
        let store = CheckpointStore::open(&path).unwrap();
        let mut rows = store.load(Duration::from_secs(86_400 * 7), now).unwrap();
        rows.sort_by_key(|row| row.id);
        assert_eq!(rows, vec![row(2, 25), row(3, 30)], "row 1 was older than the TTL");
        assert_eq!(store.rows().unwrap().len(), 2, "and is deleted");
    }
}
