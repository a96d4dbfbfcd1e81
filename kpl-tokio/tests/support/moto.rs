//! moto, a server implementing AWS APIs, installed by the tests themselves and run per test.
//!
//! [`Moto::start`] makes `target/moto-venv` hold the pinned `moto[server]` (through the workspace's Python
//! helper, `kpl_tests::python`, which installs once and safely when test processes race), then starts moto's
//! threaded server on 127.0.0.1 with a port the OS chooses, in a Python process of ours that prints the port,
//! answers `dump` requests with every metric datum moto stored (its name, dimensions in order, unit and
//! statistic set, read from moto's own backend), and exits when its standard input closes: the server dies
//! with its guard, even when the test panics. Anything missing (python3, venv or pip, PyPI) fails the test
//! with what the tools said: it never skips.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kpl_tests::python::{MOTO, PythonEnv};
use serde_json::Value;

/// Runs moto's server; on each `dump NAMESPACE` line, prints one JSON line of the data stored under it.
const SERVER: &str = r#"
import json, sys
from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.cloudwatch.models import cloudwatch_backends

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print("PORT", server.get_host_and_port()[1], flush=True)
for line in sys.stdin:
    namespace = line.split(" ", 1)[1].strip()
    data = []
    for account, regions in cloudwatch_backends.items():
        for region, backend in regions.items():
            for datum in backend.get_all_metrics():
                if datum.namespace != namespace:
                    continue
                data.append({
                    "name": datum.name,
                    "dimensions": [[d.name, d.value] for d in datum.dimensions],
                    "unit": datum.unit,
                    "count": getattr(datum, "sample_count", None),
                    "sum": getattr(datum, "sum", None),
                    "min": getattr(datum, "min", None),
                    "max": getattr(datum, "max", None),
                })
    print(json.dumps(data), flush=True)
server.stop()
"#;

/// A running moto server; stopped when dropped.
pub struct Moto {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    endpoint: String,
}

impl Moto {
    /// Installs moto if needed and starts a server. Panics, with the reason, if it cannot.
    pub fn start() -> Moto {
        let env = PythonEnv::ensure(&MOTO).unwrap_or_else(|e| panic!("cannot install moto from PyPI: {e}"));
        let mut child = env
            .command()
            .arg("-c")
            .arg(SERVER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run moto's Python: {e}"));
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (sender, first) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = sender.send(line);
            stdout
        });
        let line = first.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let Some(port) = line.trim().strip_prefix("PORT ").and_then(|p| p.parse::<u16>().ok()) else {
            let _ = child.kill();
            let mut stderr = String::new();
            let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut stderr));
            panic!("moto did not start (first line {line:?}):\n{stderr}");
        };
        let stdout = reader.join().expect("reader thread");
        let moto = Moto { child, stdin, stdout, endpoint: format!("http://127.0.0.1:{port}") };
        moto.wait_until_answering(port);
        moto
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn wait_until_answering(&self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = TcpStream::connect(("127.0.0.1", port)).and_then(|mut stream| {
                stream.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
                let mut status = [0u8; 12];
                stream.read_exact(&mut status)?;
                Ok(status)
            });
            match answer {
                Ok(status) if status.ends_with(b"200") => return,
                _ if Instant::now() > deadline => panic!("moto on port {port} does not answer: {answer:?}"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Every metric datum moto stored in `namespace`, as moto holds it.
    pub fn metric_data(&mut self, namespace: &str) -> Vec<Value> {
        let stdin = self.stdin.as_mut().expect("open stdin");
        writeln!(stdin, "dump {namespace}").and_then(|()| stdin.flush()).expect("ask moto for its data");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("moto's data");
        let data: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("moto's data {line:?}: {e}"));
        data.as_array().cloned().unwrap_or_default()
    }
}

/// A stored datum's dimensions as `name=value,...`, in moto's order.
pub fn dimensions(datum: &Value) -> String {
    let pairs = datum["dimensions"].as_array().expect("dimensions").iter();
    let pairs: Vec<String> = pairs
        .map(|d| format!("{}={}", d[0].as_str().expect("name"), d[1].as_str().expect("value")))
        .collect();
    pairs.join(",")
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Closing its standard input ends the server; kill it if it does not go.
        drop(self.stdin.take());
        for _ in 0..50 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
