//! Observing the file system for the core: glob expansion, `stat`, the first bytes of files, and change
//! notifications (`notify`: inotify on Linux) that trigger scans and reads.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher as _};
use tokio::sync::Notify;

use crate::core::{FINGERPRINT_MAX_LEN, FileId, Observation};

/// Every regular file `pattern` matches (wildcards in any component, `**` included).
pub(crate) fn observe(pattern: &str) -> Vec<Observation> {
    let paths = match glob::glob(pattern) {
        Ok(paths) => paths,
        Err(error) => {
            tracing::error!(pattern, %error, "filePattern is not a valid glob");
            return Vec::new();
        }
    };
    paths.filter_map(Result::ok).filter_map(|path| observe_path(&path, true)).collect()
}

/// Every regular file in `dirs`, as not matched (candidates for leftover checkpoints).
pub(crate) fn observe_dirs(dirs: &BTreeSet<PathBuf>) -> Vec<Observation> {
    let mut observations = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        observations.extend(entries.filter_map(Result::ok).filter_map(|e| observe_path(&e.path(), false)));
    }
    observations
}

fn observe_path(path: &Path, matched: bool) -> Option<Observation> {
    let file = File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() {
        return None;
    }
    let head = read_head(&file).ok()?;
    let id = FileId { dev: meta.dev(), ino: meta.ino() };
    Some(Observation { path: path.to_owned(), id, size: meta.len(), head, matched })
}

/// The first bytes of an open file, up to [`FINGERPRINT_MAX_LEN`].
pub(crate) fn read_head(file: &File) -> io::Result<Vec<u8>> {
    let mut head = vec![0; FINGERPRINT_MAX_LEN];
    let mut filled = 0;
    while filled < head.len() {
        match file.read_at(&mut head[filled..], filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    head.truncate(filled);
    Ok(head)
}

/// The directory to watch for a pattern (its components before the first wildcard), and whether
/// wildcards follow in directory components (then it is watched recursively).
fn watch_root(pattern: &str) -> (PathBuf, bool) {
    let path = Path::new(pattern);
    let components: Vec<Component<'_>> = path.components().collect();
    let is_wild = |c: &Component<'_>| c.as_os_str().to_string_lossy().contains(['*', '?', '[', '{']);
    let first_wild = components.iter().position(is_wild).unwrap_or(components.len());
    let root: PathBuf = components[..first_wild.min(components.len().saturating_sub(1))].iter().collect();
    (root, first_wild + 1 < components.len())
}

/// What change notifications wake up.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    /// A file was created, renamed or removed: scan.
    pub(crate) scan: Notify,
    /// A file was written: read.
    pub(crate) data: Notify,
}

/// Change notifications on the patterns' directories; `None` if they cannot be set up (then the shell
/// scans on a short timer instead).
pub(crate) fn watch(patterns: &[&str], wakeups: Arc<Wakeups>) -> Option<notify::RecommendedWatcher> {
    let handler = move |event: notify::Result<notify::Event>| match event.map(|e| e.kind) {
        Ok(EventKind::Create(_) | EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))) => {
            wakeups.scan.notify_one();
            wakeups.data.notify_one();
        }
        Ok(EventKind::Modify(_)) => wakeups.data.notify_one(),
        Ok(_) => {}
        // A lost event (queue overflow): scan, to be sure.
        Err(_) => wakeups.scan.notify_one(),
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "no change notifications; scanning every second instead");
            return None;
        }
    };
    for pattern in patterns {
        let (root, recursive) = watch_root(pattern);
        let mode = if recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
        if let Err(error) = watcher.watch(&root, mode) {
            tracing::warn!(root = %root.display(), %error, "cannot watch; scanning every second instead");
            return None;
        }
    }
    Some(watcher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watch_root_is_the_literal_prefix() {
        assert_eq!(watch_root("/var/log/app/*.log"), (PathBuf::from("/var/log/app"), false));
        assert_eq!(watch_root("/var/log/app.log"), (PathBuf::from("/var/log"), false));
        assert_eq!(watch_root("/var/log/*/app.log"), (PathBuf::from("/var/log"), true));
        assert_eq!(watch_root("/srv/**/*.log"), (PathBuf::from("/srv"), true));
    }

    #[test]
    fn files_are_observed_with_identity_size_and_head() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x.log"), b"hello\n").unwrap();
        std::fs::write(dir.path().join("a/y.txt"), b"no\n").unwrap();
        let pattern = format!("{}/*/*.log", dir.path().display());
        let found = observe(&pattern);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].size, &found[0].head[..], found[0].matched), (6, &b"hello\n"[..], true));
        let all = observe_dirs(&BTreeSet::from([dir.path().join("a")]));
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|o| !o.matched));
    }
}
