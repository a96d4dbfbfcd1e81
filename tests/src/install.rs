//! Installing an outside tool into `target/<dir>` once, safely when several test processes race.
//!
//! [`install_once`] builds the install in a private staging directory, writes a marker file inside it last,
//! and renames it into place only then. A rename onto an existing directory fails, so when test processes
//! race, one wins, the others see its finished install and throw their own away; a half-built install is
//! never visible under the final name. Threads of one process are serialised by a mutex so that they do not
//! build it twice. Used by [`crate::python`] (virtualenvs) and `crate::kinesalite` (npm).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::workspace_root;

/// Name of the file, inside a finished install, that says what it was built with.
pub const MARKER: &str = ".kpl-ready";

/// Serialises installs between the threads of one test process.
static SETUP: Mutex<()> = Mutex::new(());

/// A name no other process or thread will use.
fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Makes `target/<dir_name>` (under the workspace root) a finished install, once, and returns what `ready`
/// makes of it.
///
/// `ready(dir, marker)` looks at a finished install (`marker` is the text of its [`MARKER`] file) and returns
/// `Some` if it is the one wanted and still works. If there is none such, `build(staging)` creates the
/// directory `staging` and installs into it, returning the marker text; the marker is then written and the
/// staging directory renamed into place, replacing a stale install. Fails with what went wrong, never
/// returning without a ready install.
pub fn install_once<T>(
    dir_name: &str,
    ready: impl Fn(&Path, &str) -> Option<T>,
    build: impl FnOnce(&Path) -> Result<String, String>,
) -> Result<T, String> {
    let target = workspace_root().join("target");
    let dir = target.join(dir_name);
    let existing =
        |dir: &Path| fs::read_to_string(dir.join(MARKER)).ok().and_then(|marker| ready(dir, &marker));
    if let Some(found) = existing(&dir) {
        return Ok(found);
    }
    // A panicking test thread cannot leave the `()` inside in a bad state.
    let _guard = SETUP.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = existing(&dir) {
        return Ok(found);
    }
    fs::create_dir_all(&target).map_err(|e| format!("cannot create {}: {e}", target.display()))?;
    let staging = target.join(format!("{dir_name}.staging-{}", unique_suffix()));
    if let Err(error) = build(&staging).and_then(|marker| write_marker(&staging, &marker)) {
        let _ = fs::remove_dir_all(&staging);
        return Err(error);
    }
    move_into_place(&staging, &dir, dir_name, existing)?;
    existing(&dir)
        .ok_or_else(|| format!("{} was installed but is not usable under its final name", dir.display()))
}

/// Writes the marker of a finished install, atomically.
fn write_marker(staging: &Path, text: &str) -> Result<(), String> {
    let marker = staging.join(MARKER);
    let partial = staging.join(format!("{MARKER}.partial"));
    fs::File::create(&partial)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| fs::rename(&partial, &marker))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))
}

/// Renames the finished `staging` to `dir`, replacing a stale `dir`, or keeps a good `dir` that another
/// process put there first.
fn move_into_place<T>(
    staging: &Path,
    dir: &Path,
    dir_name: &str,
    existing: impl Fn(&Path) -> Option<T>,
) -> Result<(), String> {
    for _ in 0..3 {
        if fs::rename(staging, dir).is_ok() {
            return Ok(());
        }
        if existing(dir).is_some() {
            // Another process won the race with an equivalent install.
            let _ = fs::remove_dir_all(staging);
            return Ok(());
        }
        // A stale or broken install (other packages, a removed interpreter): move it aside first.
        let aside = dir.with_file_name(format!("{dir_name}.stale-{}", unique_suffix()));
        if fs::rename(dir, &aside).is_ok() {
            let _ = fs::remove_dir_all(&aside);
        }
    }
    let _ = fs::remove_dir_all(staging);
    Err(format!("cannot move the new install to {}", dir.display()))
}

/// A finished command's status and everything it printed, for an error message.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command` (`what` names it in errors) with no input; fails with everything it printed unless it succeeds.
pub fn run(command: &mut Command, what: &str) -> Result<Output, String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() { Ok(output) } else { Err(format!("{what} failed: {}", describe(&output))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_once_then_finds_the_install() {
        let name = format!("install-once-test-{}", unique_suffix());
        let ready =
            |dir: &Path, marker: &str| (marker == "v1" && dir.join("tool").is_file()).then_some(marker.len());
        let built = install_once(&name, ready, |staging| {
            fs::create_dir_all(staging).map_err(|e| e.to_string())?;
            fs::write(staging.join("tool"), "").map_err(|e| e.to_string())?;
            Ok("v1".to_owned())
        });
        let again = install_once(&name, ready, |_| Err("built twice".to_owned()));
        let failed = install_once(&format!("{name}-failed"), ready, |_| Err("no tool".to_owned()));
        let dir = workspace_root().join("target").join(&name);
        let _ = fs::remove_dir_all(&dir);
        assert_eq!(built, Ok(2));
        assert_eq!(again, Ok(2));
        assert_eq!(failed, Err("no tool".to_owned()));
        assert!(!dir.with_file_name(format!("{name}-failed")).exists());
    }
}
