//! Python environments for cross-implementation tests, created by the tests themselves.
//!
//! [`PythonEnv::ensure`] makes `target/<name>` (under the workspace root) a virtualenv holding pinned
//! packages, once; later calls, in this process or any other, find it ready and return at once.
//!
//! Concurrency: the environment is built in a private staging directory and renamed into place only once
//! it is complete and a marker file listing its packages is written inside it ([`crate::install`]).
//!
//! Where `python3 -m venv` is unavailable (Debian's `python3` without `python3-venv`), the packages are
//! installed with `python3 -m pip install --target` into the same directory and found through
//! `PYTHONPATH`; if pip is missing too, [`PythonEnv::ensure`] fails with a message saying what to install.
//!
//! A new kind of reference test (kinesalite, moto, ...) declares its own [`Requirements`] with a distinct
//! directory name, or extends an existing list (a changed list rebuilds the environment).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::install::{describe, install_once, run};

/// What a Python environment must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirements {
    /// Directory name under the workspace's `target/`.
    pub dir_name: &'static str,
    /// Pip requirement specifiers, pinned.
    pub packages: &'static [&'static str],
    /// Python statements that must run without error once the packages are installed.
    pub probe: &'static str,
}

/// The reference implementation of the aggregation format: `aws-kinesis-agg` from PyPI.
///
/// It imports `six` without declaring it (its metadata lists only `protobuf`), so `six` is pinned here too.
/// `protobuf` 4.25 runs its generated `messages_pb2` on every Python from 3.8 to 3.13.
pub const AWS_KINESIS_AGG: Requirements = Requirements {
    dir_name: "py-venv",
    packages: &["aws-kinesis-agg==1.2.3", "protobuf==4.25.8", "six==1.17.0"],
    probe: "import aws_kinesis_agg.aggregator, aws_kinesis_agg.deaggregator",
};

/// moto, a server that implements AWS APIs (CloudWatch's `PutMetricData` among them), to test the CloudWatch
/// uploader against. It pulls boto3 and botocore in; they are pinned too, since botocore's service models
/// decide how moto parses requests.
pub const MOTO: Requirements = Requirements {
    dir_name: "moto-venv",
    packages: &["moto[server]==5.2.5", "boto3==1.44.5", "botocore==1.44.5"],
    probe: "import moto.moto_server.threaded_moto_server, boto3",
};

/// How the packages were installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// A virtualenv: run its own interpreter.
    Venv,
    /// `pip install --target`: run the system interpreter with `PYTHONPATH` set.
    Target,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Venv => "venv",
            Layout::Target => "target",
        }
    }
}

/// A ready Python environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonEnv {
    dir: PathBuf,
    layout: Layout,
    system_python: String,
}

/// The interpreter used to create environments: `$KPL_PYTHON`, else `python3`.
fn system_python() -> String {
    std::env::var("KPL_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn marker_text(requirements: &Requirements, layout: Layout) -> String {
    let mut text = format!("layout {}\n", layout.name());
    for package in requirements.packages {
        text.push_str(package);
        text.push('\n');
    }
    text
}

impl PythonEnv {
    /// The environment described by `requirements`, creating it if needed. Fails (with everything pip and
    /// Python said) if it cannot be created; never silently returns without the packages.
    pub fn ensure(requirements: &Requirements) -> Result<PythonEnv, String> {
        install_once(
            requirements.dir_name,
            |dir, marker| Self::existing(dir, marker, requirements),
            |staging| Self::build(staging, requirements).map(|layout| marker_text(requirements, layout)),
        )
    }

    /// The finished environment at `dir`, with marker text `marker`, if it was built from `requirements`
    /// and still works.
    fn existing(dir: &Path, marker: &str, requirements: &Requirements) -> Option<PythonEnv> {
        let layout = [Layout::Venv, Layout::Target]
            .into_iter()
            .find(|&layout| marker == marker_text(requirements, layout))?;
        let env = PythonEnv { dir: dir.to_owned(), layout, system_python: system_python() };
        // The interpreter a venv points at may have been removed or upgraded since.
        let probe = env.command().args(["-c", requirements.probe]).stdin(Stdio::null()).output();
        probe.ok().filter(|o| o.status.success()).map(|_| env)
    }

    /// Builds a complete environment in `staging`; its marker is written by [`install_once`].
    fn build(staging: &Path, requirements: &Requirements) -> Result<Layout, String> {
        let python = system_python();
        run(Command::new(&python).arg("--version"), "checking for python3").map_err(|e| {
            format!("{e}\nThe cross-implementation tests need python3 (3.8+); set KPL_PYTHON to use another.")
        })?;
        let pip_flags = ["--disable-pip-version-check", "--no-input", "--quiet"];
        let venv = run(Command::new(&python).arg("-m").arg("venv").arg(staging), "python3 -m venv");
        let layout = match venv {
            Ok(_) => {
                let env = PythonEnv {
                    dir: staging.to_owned(),
                    layout: Layout::Venv,
                    system_python: python.clone(),
                };
                run(
                    env.command().args(["-m", "pip", "install"]).args(pip_flags).args(requirements.packages),
                    "pip install into the virtualenv",
                )?;
                Layout::Venv
            }
            Err(venv_error) => {
                // Debian's python3 without python3-venv: install with the system pip instead.
                let _ = fs::remove_dir_all(staging);
                let site = staging.join("site-packages");
                let installed = run(
                    Command::new(&python)
                        .args(["-m", "pip", "install"])
                        .args(pip_flags)
                        .arg("--target")
                        .arg(&site)
                        .args(requirements.packages),
                    "python3 -m pip install --target",
                );
                if let Err(pip_error) = installed {
                    return Err(format!(
                        "cannot set up a Python environment.\n{venv_error}\n{pip_error}\n\
                         Install the venv module (Debian/Ubuntu: apt-get install python3-venv) or pip \
                         (apt-get install python3-pip)."
                    ));
                }
                Layout::Target
            }
        };
        let env = PythonEnv { dir: staging.to_owned(), layout, system_python: python };
        run(env.command().args(["-c", requirements.probe]), "importing the installed packages")?;
        Ok(layout)
    }

    /// The environment's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The interpreter, with the environment set up: `python` arguments follow.
    pub fn command(&self) -> Command {
        let mut command = match self.layout {
            Layout::Venv => Command::new(self.dir.join("bin").join("python")),
            Layout::Target => Command::new(&self.system_python),
        };
        command.env_remove("PYTHONHOME").env("PYTHONNOUSERSITE", "1").env("PYTHONDONTWRITEBYTECODE", "1");
        match self.layout {
            Layout::Venv => command.env_remove("PYTHONPATH"),
            Layout::Target => command.env("PYTHONPATH", self.dir.join("site-packages")),
        };
        command
    }

    /// Runs `script` with `stdin` as its standard input and returns its standard output; fails with
    /// everything it printed if it exits with an error or writes to standard error.
    pub fn run_script(&self, script: &Path, stdin: &str) -> Result<String, String> {
        let mut child = self
            .command()
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        // Write from another thread: the script may fill its stdout pipe before reading all of stdin.
        let writer = child.stdin.take().map(|mut pipe| {
            let input = stdin.to_owned();
            std::thread::spawn(move || pipe.write_all(input.as_bytes()))
        });
        let output = child.wait_with_output().map_err(|e| format!("{}: {e}", script.display()))?;
        if let Some(writer) = writer {
            match writer.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    return Err(format!("writing to {}: {e}\n{}", script.display(), describe(&output)));
                }
                Err(_) => return Err(format!("writing to {} panicked", script.display())),
            }
        }
        if !output.status.success() || !output.stderr.is_empty() {
            return Err(format!("{}: {}", script.display(), describe(&output)));
        }
        String::from_utf8(output.stdout)
            .map_err(|e| format!("{}: output is not UTF-8: {e}", script.display()))
    }
}
