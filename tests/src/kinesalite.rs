//! kinesalite, a Kinesis-compatible server, installed by the tests themselves and run per test.
//!
//! [`Kinesalite::start`] installs `kinesalite@3.3.3` from npm into `target/kinesalite` (under the workspace
//! root) on first use, then starts a server on 127.0.0.1 with a port the OS chooses. The install is
//! idempotent and safe when test processes race: it is built in a private staging directory and renamed
//! into place only once complete, with a marker file written last (the approach of `tests/src/python.rs`);
//! threads of one process are serialised by a mutex. Anything missing (node, npm, the registry) fails the
//! test with what the tools said: these tests never skip.
//!
//! The server dies with its guard (even when the test panics), and with the test process: it exits when its
//! standard input, held by the guard, closes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, PoisonError, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The package installed.
const PACKAGE: &str = "kinesalite@3.3.3";
/// Written inside a finished install, holding [`PACKAGE`].
const MARKER: &str = ".kpl-ready";

/// Starts kinesalite on loopback with short stream state transitions, prints the port, and exits when its
/// standard input closes.
const SERVER: &str = r#"
const kinesalite = require('kinesalite');
const server = kinesalite({ createStreamMs: 10, deleteStreamMs: 10, updateStreamMs: 10, shardLimit: 100 });
server.listen(0, '127.0.0.1', (err) => {
  if (err) { console.error(err); process.exit(1); }
  console.log('PORT ' + server.address().port);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
"#;

/// A running kinesalite; stopped when dropped.
pub struct Kinesalite {
    child: Child,
    endpoint: String,
}

impl Kinesalite {
    /// Installs kinesalite if needed and starts a server. Panics, with the reason, if it cannot.
    pub fn start() -> Kinesalite {
        let dir = ensure_installed();
        let mut child = Command::new("node")
            .arg("-e")
            .arg(SERVER)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node (the kinesalite tests need Node.js on PATH): {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, port) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = sender.send(line);
        });
        let line = port.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let Some(port) = line.trim().strip_prefix("PORT ").and_then(|p| p.parse::<u16>().ok()) else {
            let _ = child.kill();
            let output = child.wait_with_output().expect("kinesalite exited");
            panic!(
                "kinesalite did not start (first line {line:?}):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        Kinesalite { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for Kinesalite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("kpl-tokio is in the workspace").to_owned()
}

fn is_ready(dir: &Path) -> bool {
    fs::read_to_string(dir.join(MARKER)).is_ok_and(|marker| marker == PACKAGE)
        && dir.join("node_modules/kinesalite/package.json").is_file()
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

fn run(command: &mut Command, what: &str) {
    let output = command.stdin(Stdio::null()).output().unwrap_or_else(|e| {
        panic!(
            "{what}: cannot run {:?} (the kinesalite tests need Node.js and npm): {e}",
            command.get_program()
        )
    });
    assert!(
        output.status.success(),
        "{what} failed: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `target/kinesalite` holding kinesalite, installed now if it is not there yet.
fn ensure_installed() -> PathBuf {
    static SETUP: Mutex<()> = Mutex::new(());
    let dir = workspace_root().join("target").join("kinesalite");
    if is_ready(&dir) {
        return dir;
    }
    let _guard = SETUP.lock().unwrap_or_else(PoisonError::into_inner);
    if is_ready(&dir) {
        return dir;
    }
    let staging = dir.with_file_name(format!("kinesalite.staging-{}", unique_suffix()));
    fs::create_dir_all(&staging).expect("create the staging directory");
    let manifest = r#"{ "name": "kpl-kinesalite", "private": true, "description": "kinesalite for the kpl-tokio tests" }"#;
    fs::write(staging.join("package.json"), manifest).expect("write package.json");
    run(
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE])
            .current_dir(&staging),
        "npm install kinesalite",
    );
    run(
        Command::new("node").args(["-e", "require('kinesalite')"]).current_dir(&staging),
        "loading kinesalite",
    );
    fs::write(staging.join(MARKER), PACKAGE).expect("write the marker");
    for _ in 0..3 {
        if fs::rename(&staging, &dir).is_ok() {
            return dir;
        }
        if is_ready(&dir) {
            // Another process finished first.
            let _ = fs::remove_dir_all(&staging);
            return dir;
        }
        // A stale or broken install: move it aside, then retry.
        let aside = dir.with_file_name(format!("kinesalite.stale-{}", unique_suffix()));
        if fs::rename(&dir, &aside).is_ok() {
            let _ = fs::remove_dir_all(&aside);
        }
    }
    let _ = fs::remove_dir_all(&staging);
    panic!("cannot move the kinesalite install into {}", dir.display());
}
