//! Shared by the kpl-cli tests: running `kpl` as a process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{ChildStdin, Command, Output, Stdio};

/// `kpl`, the binary under test, with no arguments yet.
pub fn kpl_command() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kpl"))
}

/// Runs `command` with `stdin` as its standard input and waits for it.
pub fn run(command: &mut Command, stdin: &[u8]) -> Output {
    let stdin = stdin.to_vec();
    run_streaming(command, move |input| input.write_all(&stdin))
}

/// Runs `command` with what `write` writes (as it goes, through a pipe) as its standard input, and waits
/// for it.
pub fn run_streaming(
    command: &mut Command,
    write: impl FnOnce(&mut ChildStdin) -> std::io::Result<()> + Send + 'static,
) -> Output {
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run kpl");
    let mut input = child.stdin.take().unwrap();
    // Written from a thread: kpl may fill its output pipes before it reads everything. kpl may also stop
    // reading early (a failed check), which breaks the pipe: not the test's concern.
    let writer = std::thread::spawn(move || {
        let _ = write(&mut input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    output
}

/// Output as text.
pub fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}
