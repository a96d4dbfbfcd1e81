//! A new configuration while the agent runs (SIGHUP): flows diffed, progress kept.
//!
//! Removed and changed flows retire: they read nothing more, deliver what they read, and once their
//! records complete (or `shutdownTimeoutMillis` passed) their checkpoints are committed and they go.
//! Then the added and changed flows start with the checkpoints in the store: a file keeps its progress
//! whatever flow reads it (checkpoints are keyed by file identity), so a changed flow resumes where the
//! retired one stopped, and a record cut short by the timeout is read again, never skipped.

use std::collections::HashMap;
use std::time::Instant;

use super::{Agent, FlowRuntime};
use crate::config::{AgentConfig, FlowConfig, diff_flows};

/// Top-level keys a reload applies at once; the others need a restart.
const LIVE_KEYS: &[&str] = &[
    "memoryBudgetBytes",
    "checkpointIntervalMillis",
    "log.statusReportingPeriodSeconds",
    "shutdownTimeoutMillis",
    "cloudwatch.metricsBufferTimeMillis",
];

/// A reload waiting for its retiring flows.
pub(super) struct PendingReload {
    /// The flows to start once they are gone.
    starting: Vec<FlowConfig>,
    /// When to stop waiting for their records.
    deadline: Instant,
    /// A configuration that came meanwhile: applied next.
    next: Option<AgentConfig>,
}

impl Agent {
    /// Starts running `new` (see [`RunControls::reload`](super::RunControls::reload)).
    pub(super) fn reload(&mut self, new: AgentConfig, now: Instant) {
        if let Some(pending) = &mut self.pending_reload {
            tracing::info!("a reload is under way; the new configuration is applied after it");
            pending.next = Some(new);
            return;
        }
        let running: Vec<FlowConfig> = self.flows.iter().map(|flow| flow.config.clone()).collect();
        let diff = diff_flows(&running, &new.flows);
        tracing::info!(
            added = ?diff.added,
            removed = ?diff.removed,
            changed = ?diff.changed,
            unchanged = diff.unchanged.len(),
            "reloading the configuration"
        );
        let before: HashMap<(&str, &str), &str> = (self.config.effective.iter())
            .map(|setting| ((setting.scope.as_str(), setting.key.as_str()), setting.value.as_str()))
            .collect();
        for setting in &new.effective {
            let key = (setting.scope.as_str(), setting.key.as_str());
            if !LIVE_KEYS.contains(&key.1) && before.get(&key) != Some(&setting.value.as_str()) {
                tracing::warn!(key = key.1, value = setting.value, "changed; takes effect after a restart");
            }
        }
        self.config.memory_budget_bytes = new.memory_budget_bytes;
        self.config.checkpoint_interval = new.checkpoint_interval;
        self.config.status_reporting_period = new.status_reporting_period;
        self.config.shutdown_timeout = new.shutdown_timeout;
        self.config.cloudwatch.upload_interval = new.cloudwatch.upload_interval;
        for flow in &mut self.flows {
            let id = flow.config.id();
            flow.retiring = diff.removed.contains(&id) || diff.changed.contains(&id);
        }
        let starting = new.flows.into_iter().filter(|flow| !diff.unchanged.contains(&flow.id())).collect();
        let deadline = now + self.config.shutdown_timeout;
        self.pending_reload = Some(PendingReload { starting, deadline, next: None });
    }

    /// Completes a pending reload once its retiring flows are done: returns whether the flows changed
    /// (the caller watches the new patterns).
    pub(super) fn finish_reload(&mut self, now: Instant) -> bool {
        let Some(pending) = &self.pending_reload else { return false };
        let retiring = self.flows.iter().filter(|flow| flow.retiring);
        let in_flight: usize = retiring.map(|flow| flow.tailer.outstanding_records()).sum();
        if in_flight > 0 && now < pending.deadline {
            return false;
        }
        self.save();
        // The checkpoints the new flows start from; without them they could start at their initial
        // position, so the reload waits for the store.
        let saved = match self.store.rows() {
            Ok(saved) => saved,
            Err(error) => {
                tracing::error!(%error, "reload: cannot read the checkpoints; retrying");
                return false;
            }
        };
        let Some(pending) = self.pending_reload.take() else { return false };
        if in_flight > 0 {
            tracing::warn!(
                records = in_flight,
                "removed or changed flows still had records in flight after shutdownTimeoutMillis; \
                 they are read again from their checkpoints"
            );
        }
        self.flows.retain(|flow| !flow.retiring);
        let running: Vec<u64> = self.flows.iter().map(|flow| flow.uid).collect();
        self.retries.retain(|(_, delivery)| running.contains(&delivery.flow));
        let share = super::open_files_share(&self.config, self.flows.len() + pending.starting.len());
        for config in pending.starting {
            let uid = self.next_uid;
            self.next_uid += 1;
            self.flows.push(FlowRuntime::new(config, saved.clone(), share, now, uid));
        }
        self.config.flows = self.flows.iter().map(|flow| flow.config.clone()).collect();
        tracing::info!(flows = self.flows.len(), "configuration reloaded");
        if let Some(next) = pending.next {
            self.reload(next, now);
        }
        true
    }
}
