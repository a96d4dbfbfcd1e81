//! Shared by the kpl-cli tests: running `kpl` as a process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// `kpl`, the binary under test, with no arguments yet.
pub fn kpl_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kpl"))
}

/// Runs `command` with `stdin` as its standard input and waits for it.
pub fn run(command: &mut Command, stdin: &[u8]) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run kpl");
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    // Written from a thread: kpl may fill its output pipes before it reads everything.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Output as text.
pub fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}
