//! What the agent's shell tests share.
// Each test binary uses a part of it.
#![allow(dead_code)]

use std::time::Duration;

use kpl_agent::config::AgentConfig;
use kpl_agent::shell::{AgentError, CheckpointStore, RunControls, RunSummary, run_with};
use kpl_tokio::Backend;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Waits until `done` holds for the agent's published counters (at most 60 s: a bound on a stuck run, not
/// a timing assertion).
pub async fn wait_for(
    progress: &mut watch::Receiver<RunSummary>,
    done: impl Fn(&RunSummary) -> bool,
) -> RunSummary {
    tokio::time::timeout(Duration::from_secs(60), progress.wait_for(|summary| done(summary)))
        .await
        .expect("in time")
        .map(|summary| *summary)
        .expect("running")
}

/// An agent running in this process that takes new configurations as SIGHUP would bring them.
pub struct Reloadable {
    pub agent: JoinHandle<Result<RunSummary, AgentError>>,
    pub stop: mpsc::Sender<()>,
    pub reload: mpsc::Sender<AgentConfig>,
    pub watching: watch::Receiver<RunSummary>,
}

/// Starts the agent on `config` with `backend` and `store`; `status_file` as `kpl agent status` reads it.
pub fn start_reloadable<B: Backend>(
    config: AgentConfig,
    backend: B,
    store: CheckpointStore,
    status_file: Option<std::path::PathBuf>,
) -> Reloadable {
    let (stop, stopped) = mpsc::channel(2);
    let (reload, reloads) = mpsc::channel(1);
    let (progress, watching) = watch::channel(RunSummary::default());
    let mut controls = RunControls::new(stopped);
    controls.progress = progress;
    controls.reload = Some(reloads);
    controls.status_file = status_file;
    let agent = tokio::spawn(run_with(config, backend, store, controls));
    Reloadable { agent, stop, reload, watching }
}
