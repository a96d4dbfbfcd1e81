//! What the agent's shell tests share.

use std::time::Duration;

use kpl_agent::shell::RunSummary;
use tokio::sync::watch;

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
