//! The agent's main loop: scans, reads within the memory budget, puts records into the producer, takes
//! back their results, saves checkpoints, and stops on request.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use kpl_tokio::{Backend, DeliveryError, KinesisProducer, PutError, RecordReceipt, UserRecord};
use tokio::sync::{mpsc, watch};

use super::aws::SetupError;
use super::discovery::{self, Wakeups};
use super::firehose::{firehose_client, put_record_batch};
use super::flow::{FlowRuntime, Room, Sink};
use super::metrics::MetricsPublisher;
#[path = "reload.rs"]
mod reload;
use super::status;
use super::store::{CheckpointStore, StoreError};
use crate::config::{AgentConfig, Destination, FlowConfig};
use crate::core::metrics::FlowMetrics;
use crate::core::{BatchOutcome, FileId, FileKey, Part, Processed, TailRecord};

/// What the budget counts per record in flight besides its bytes: our delivery state and the producer's
/// (its record, its share of an aggregate and a request being built). Measured: about 1.4 KiB per record
/// of peak resident memory with 100,000 records in flight.
pub const RECORD_OVERHEAD: u64 = 1536;
/// Scan interval without change notifications.
const POLL_SCAN_EVERY: Duration = Duration::from_secs(1);
/// Retry pause of a record the producer failed (it has no TTL by default, so this is for errors that do
/// not heal by themselves: a missing stream, denied access), doubled per failure up to the maximum.
const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How often a pending reload checks whether its retiring flows are done.
const RELOAD_CHECK_EVERY: Duration = Duration::from_millis(50);
/// Most records read and not yet confirmed. Measured with the benchmark (1,000 files, simulated Kinesis,
/// debug build): 1,024 → 6,300 lines/s, 2,048 → 11,600, 4,096 → 27,000-30,000, 8,192 → 13,300, 10,000
/// → 9,900, 40,000 → 2,100. Up to 4,096 throughput follows the records in flight (response latency plus
/// the producer's RecordMaxBufferedTime). The fall past it was kpl-tokio's per-record futures counting
/// against tokio's cooperative budget (fixed: they no longer do); 4,096 already reaches 0.62 of the
/// producer alone (release build, same benchmark: 42,000 lines/s), so it stays, bounding the re-sent
/// window after a crash.
const MAX_RECORDS_IN_FLIGHT: usize = 4096;
/// Reading resumes when this fraction of the budget (1/N) is free.
const RESUME_FRACTION: u64 = 8;
/// Records not written after this long are warned about at each progress report.
const STALL_WARNING: Duration = Duration::from_secs(30);
/// The shortest time between two rounds of reads.
const ROUND_SPACING: Duration = Duration::from_millis(10);
/// The agent could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// The checkpoint store failed at startup.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The producer could not start.
    #[error(transparent)]
    Spawn(#[from] kpl_tokio::SpawnError),
    /// The Firehose client of `deliveryStream` flows could not be set up.
    #[error(transparent)]
    Setup(#[from] SetupError),
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Records framed from files.
    pub records_read: u64,
    /// Records the producer confirmed written.
    pub records_delivered: u64,
    /// Failed deliveries (each retried).
    pub delivery_failures: u64,
    /// Records the producer refused as invalid (logged, counted, skipped).
    pub records_refused: u64,
    /// Records a converter (`dataProcessingOptions`) could not convert: dropped, sent raw or written to
    /// the dead-letter file, as configured (per flow in the progress log).
    pub records_unconverted: u64,
    /// Whether the stop was graceful (every record read was delivered) or cut short.
    pub drained: bool,
}

struct Delivery {
    /// The flow's [`FlowRuntime::uid`] (flows come and go with reloads).
    flow: u64,
    key: FileKey,
    start: u64,
    record: UserRecord,
    attempt: u32,
}

type Completion = (Delivery, Result<RecordReceipt, DeliveryError>);
/// A `PutRecordBatch` answered: the flow's [`FlowRuntime::uid`], the call's id, the outcome.
type FirehoseAnswer = (u64, u64, BatchOutcome);

/// The running agent.
struct Agent {
    config: AgentConfig,
    producer: KinesisProducer,
    store: CheckpointStore,
    flows: Vec<FlowRuntime>,
    completions: FuturesUnordered<BoxFuture<'static, Completion>>,
    retries: VecDeque<(Instant, Delivery)>,
    summary: RunSummary,
    metrics: MetricsPublisher,
    /// The next [`FlowRuntime::uid`].
    next_uid: u64,
    /// A reload waiting for its retiring flows.
    pending_reload: Option<reload::PendingReload>,
    status_file: Option<std::path::PathBuf>,
    /// Whether writing the status file failed last time (logged once per run of failures).
    status_failed: bool,
    /// The client of `deliveryStream` flows (when there are some), and their calls.
    firehose: Option<aws_sdk_firehose::Client>,
    firehose_calls: FuturesUnordered<BoxFuture<'static, FirehoseAnswer>>,
}

/// Runs the agent until `stop` receives a message (graceful: deliver what was read within
/// `shutdownTimeoutMillis`, save checkpoints) or a second one (at once; checkpoints stay correct either
/// way). The producer is built on `backend` with the configuration's settings.
pub async fn run<B: Backend>(
    config: AgentConfig,
    backend: B,
    store: CheckpointStore,
    stop: mpsc::Receiver<()>,
) -> Result<RunSummary, AgentError> {
    run_with(config, backend, store, RunControls::new(stop)).await
}

/// [`run`], publishing the counters to `progress` as they change (for tests, benchmarks, status).
pub async fn run_with_progress<B: Backend>(
    config: AgentConfig,
    backend: B,
    store: CheckpointStore,
    stop: mpsc::Receiver<()>,
    progress: watch::Sender<RunSummary>,
) -> Result<RunSummary, AgentError> {
    run_with(config, backend, store, RunControls { progress, ..RunControls::new(stop) }).await
}

/// What drives and observes a run besides its configuration.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunControls {
    /// One message: stop gracefully; a second one: stop at once.
    pub stop: mpsc::Receiver<()>,
    /// The counters, published as they change.
    pub progress: watch::Sender<RunSummary>,
    /// Uploads the agent's metrics (see [`crate::core::metrics`]) every
    /// `cloudwatch.metricsBufferTimeMillis`, when given (see [`cloudwatch_uploader`](super::cloudwatch_uploader)).
    pub cloudwatch: Option<kpl_tokio::CloudWatchUploader>,
    /// Where to write the status `kpl agent status` reads (see [`status_file`](super::status_file)),
    /// at every checkpoint commit and when stopping.
    pub status_file: Option<std::path::PathBuf>,
    /// New configurations to run (see [`reload_on_sighup`](super::reload_on_sighup)): flows are diffed
    /// by id and effective settings; removed and changed flows stop reading, deliver what they read
    /// (within `shutdownTimeoutMillis`) and save their checkpoints; then added and changed flows start,
    /// their files resuming at their checkpoints (keyed by file identity). Unchanged flows run on
    /// untouched. Of the top-level keys, `memoryBudgetBytes`, `checkpointIntervalMillis`,
    /// `log.statusReportingPeriodSeconds`, `shutdownTimeoutMillis` and
    /// `cloudwatch.metricsBufferTimeMillis` apply at once; the others need a restart (warned about).
    pub reload: Option<mpsc::Receiver<AgentConfig>>,
}

impl RunControls {
    /// Controls with `stop` only: no metrics upload, nobody watching the counters.
    pub fn new(stop: mpsc::Receiver<()>) -> RunControls {
        RunControls {
            stop,
            progress: watch::channel(RunSummary::default()).0,
            cloudwatch: None,
            status_file: None,
            reload: None,
        }
    }
}

/// [`run`] with every control.
pub async fn run_with<B: Backend>(
    config: AgentConfig,
    backend: B,
    store: CheckpointStore,
    controls: RunControls,
) -> Result<RunSummary, AgentError> {
    let RunControls { mut stop, progress, cloudwatch, status_file, mut reload } = controls;
    let saved = store.load(config.checkpoint_ttl, SystemTime::now())?;
    tracing::info!(checkpoints = saved.len(), store = %store.path().display(), "starting");
    let producer = KinesisProducer::builder(config.producer.clone(), backend).spawn()?;
    let now = Instant::now();
    let share = open_files_share(&config, config.flows.len());
    let flows: Vec<FlowRuntime> = (config.flows.iter().zip(0..))
        .map(|(flow, uid)| FlowRuntime::new(flow.clone(), saved.clone(), share, now, uid))
        .collect();
    let mut agent = Agent {
        config,
        producer,
        store,
        completions: FuturesUnordered::new(),
        retries: VecDeque::new(),
        summary: RunSummary::default(),
        metrics: MetricsPublisher::new(cloudwatch),
        status_file,
        status_failed: false,
        next_uid: flows.len() as u64,
        flows,
        pending_reload: None,
        firehose: None,
        firehose_calls: FuturesUnordered::new(),
    };
    let starting = agent.config.flows.clone();
    agent.firehose_client_for(&starting).await?;
    let wakeups = Arc::new(Wakeups::default());
    let (mut watcher, mut tick) = agent.watch(&wakeups);
    let (mut scan_due, mut first, mut woken) = (true, true, true);
    let mut next_save = Instant::now() + agent.config.checkpoint_interval;
    let mut next_progress = Instant::now() + agent.config.status_reporting_period;
    let mut next_upload = Instant::now() + agent.config.cloudwatch.upload_interval;
    let (mut next_round, mut next_tick) = (Instant::now(), Instant::now());
    loop {
        let now = Instant::now();
        // A round (scans due, reads, flushes, puts) when woken (a change, freed budget) or on the tick,
        // and never closer than ROUND_SPACING: not once per completion or per write event.
        if now >= next_round && (woken || now >= next_tick) {
            agent.round(now, scan_due, first, watcher.is_some()).await;
            (scan_due, first, woken) = (false, false, false);
            (next_round, next_tick) = (now + ROUND_SPACING, now + tick);
        }
        if now >= next_save {
            agent.save();
            next_save = now + agent.config.checkpoint_interval;
        }
        progress.send_if_modified(|published| std::mem::replace(published, agent.summary) != agent.summary);
        if now >= next_progress {
            let oldest = agent.producer.oldest_record_age().await;
            agent.log_progress(oldest, now);
            next_progress = now + agent.config.status_reporting_period;
        }
        if agent.finish_reload(now) {
            (watcher, tick) = agent.watch(&wakeups);
            (scan_due, woken) = (true, true);
            next_save = next_save.min(now + agent.config.checkpoint_interval);
            next_progress = next_progress.min(now + agent.config.status_reporting_period);
            next_upload = next_upload.min(now + agent.config.cloudwatch.upload_interval);
        }
        if now >= next_upload {
            let figures = agent.flow_metrics(now);
            agent.metrics.publish(&figures);
            agent.metrics.upload(&figures);
            next_upload = now + agent.config.cloudwatch.upload_interval;
        }
        // A Firehose buffer that has waited maxBufferAgeMillis (or a retry due) makes a round.
        let batching = agent.flows.iter().filter_map(FlowRuntime::firehose_wakeup).min();
        woken |= batching.is_some_and(|at| at <= now);
        let mut wake_at = if woken { next_round } else { next_tick.min(next_save).min(next_upload) };
        if agent.pending_reload.is_some() {
            // Retiring flows are checked for completion on every completion and at least this often.
            wake_at = wake_at.min(now + RELOAD_CHECK_EVERY);
        }
        let wake_at = batching.map_or(wake_at, |at| wake_at.min(at.max(next_round)));
        tokio::select! {
            biased;
            _ = stop.recv() => break,
            Some(done) = agent.completions.next(), if !agent.completions.is_empty() => {
                agent.completed(done);
                while let Some(Some(done)) = agent.completions.next().now_or_never() {
                    agent.completed(done);
                }
                woken = true;
            }
            Some(answer) = agent.firehose_calls.next(), if !agent.firehose_calls.is_empty() => {
                agent.firehose_answered(answer);
                woken = true;
            }
            // Before the wakeups: lines written after a reload are read by the new flows.
            Some(config) = next_reload(&mut reload) => {
                match agent.firehose_client_for(&config.flows).await {
                    Ok(()) => agent.reload(config, now),
                    Err(error) => tracing::error!(%error, "reload refused: no Firehose client for its deliveryStream flows"),
                }
                woken = true;
            }
            _ = wakeups.scan.notified() => (scan_due, woken) = (true, true),
            _ = wakeups.data.notified() => woken = true,
            _ = tokio::time::sleep_until(wake_at.into()) => {}
        }
    }
    agent.stop(&mut stop).await;
    progress.send_replace(agent.summary);
    Ok(agent.summary)
}

/// Each flow's share of `maxOpenFiles` when `flows` flows run (at least one).
fn open_files_share(config: &AgentConfig, flows: usize) -> usize {
    (config.max_open_files / flows.max(1)).max(1)
}

/// The next configuration from `reload`, if there is a channel (else never).
async fn next_reload(reload: &mut Option<mpsc::Receiver<AgentConfig>>) -> Option<AgentConfig> {
    match reload {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}

impl Agent {
    /// Watches the flows' patterns (`None`: polling only), and the round tick (the shortest
    /// `minTimeBetweenFilePollsMillis`).
    fn watch(&self, wakeups: &Arc<Wakeups>) -> (Option<notify::RecommendedWatcher>, Duration) {
        let patterns: Vec<&str> = self.flows.iter().map(|flow| flow.config.file_pattern.as_str()).collect();
        let watcher = discovery::watch(&patterns, wakeups.clone());
        let tick = self.flows.iter().map(|f| f.config.min_time_between_file_polls).min().unwrap_or_default();
        (watcher, tick)
    }

    /// Bytes the budget has left.
    fn room(&self) -> u64 {
        let used: u64 = self
            .flows
            .iter()
            .map(|flow| {
                flow.tailer.unconfirmed_bytes() + flow.tailer.outstanding_records() as u64 * RECORD_OVERHEAD
            })
            .sum();
        self.config.memory_budget_bytes.saturating_sub(used)
    }

    /// One round: scans that are due, reads, quiet-time flushes, puts, retries.
    async fn round(&mut self, now: Instant, scan_due: bool, first: bool, watching: bool) {
        let mut records: Vec<(usize, TailRecord)> = Vec::new();
        let mut out = Vec::new();
        for index in 0..self.flows.len() {
            let flow = &self.flows[index];
            if flow.retiring || !(first || flow.fresh || scan_due || now >= flow.next_scan) {
                continue;
            }
            let claimed: HashSet<FileId> = (self.flows.iter().enumerate())
                .filter(|(other, _)| *other != index)
                .flat_map(|(_, other)| other.file_ids())
                .collect();
            let flow = &mut self.flows[index];
            let every =
                if watching { flow.config.max_time_between_file_tracker_refresh } else { POLL_SCAN_EVERY };
            flow.next_scan = now + every;
            flow.needs_save |= flow.scan(now, first || flow.fresh, &claimed, &mut out);
            flow.fresh = false;
            records.extend(out.drain(..).map(|record| (index, record)));
        }
        // A file is in the store before anything of it is sent (the tailer's contract).
        if self.flows.iter().any(|flow| flow.needs_save) {
            self.save();
        }
        // Reading resumes once an eighth of the budget is free, not at every byte freed: records then go
        // to the producer in large batches (its cost per batch grows with the records outstanding).
        let in_flight: usize = self.flows.iter().map(|flow| flow.tailer.outstanding_records()).sum();
        let mut room = Room { bytes: self.room(), records: MAX_RECORDS_IN_FLIGHT.saturating_sub(in_flight) };
        if room.bytes < self.config.memory_budget_bytes / RESUME_FRACTION
            || room.records < MAX_RECORDS_IN_FLIGHT / RESUME_FRACTION as usize
        {
            room = Room { bytes: 0, records: 0 };
        }
        // Reading paused on a full budget: Firehose buffers go now instead of after maxBufferAgeMillis
        // (a joined record can hold more lines than the records in flight allowed).
        let paused = room.bytes == 0 || room.records == 0;
        for (index, flow) in self.flows.iter_mut().enumerate() {
            if flow.retiring {
                continue;
            }
            if !flow.needs_save {
                flow.read_round(&mut room, now, &mut out);
            }
            let actions = flow.tailer.poll(now, &mut out);
            flow.apply(actions, now, &mut out);
            records.extend(out.drain(..).map(|record| (index, record)));
            for notice in flow.tailer.take_notices() {
                if notice.is_anomaly() {
                    tracing::warn!(flow = %flow.config.id(), "{notice}");
                } else {
                    tracing::info!(flow = %flow.config.id(), "{notice}");
                }
            }
        }
        self.summary.records_read += records.len() as u64;
        for flow in &mut self.flows {
            flow.refresh_ec2_metadata(now).await;
        }
        for (flow, record) in records {
            self.send(flow, record).await;
        }
        while let Some((at, _)) = self.retries.front() {
            if *at > now {
                break;
            }
            if let Some((_, delivery)) = self.retries.pop_front() {
                self.put(delivery).await;
            }
        }
        while let Some(Some(done)) = self.completions.next().now_or_never() {
            self.completed(done);
        }
        self.call_firehose(now, paused);
    }

    /// Makes the `PutRecordBatch` calls the Firehose flows' batchers decide at `now` (all that waits
    /// with `flush`; a retiring flow's, at once).
    fn call_firehose(&mut self, now: Instant, flush: bool) {
        let Some(client) = &self.firehose else { return };
        for flow in &mut self.flows {
            let uid = flow.uid;
            let Sink::Firehose { name, batcher } = &mut flow.sink else { continue };
            for batch in batcher.poll(now, flush || flow.retiring) {
                let (client, name, id) = (client.clone(), name.clone(), batch.id);
                self.firehose_calls
                    .push(async move { (uid, id, put_record_batch(client, name, batch).await) }.boxed());
            }
        }
    }

    /// Sets up the Firehose client if `flows` has `deliveryStream` flows and there is none yet.
    async fn firehose_client_for(&mut self, flows: &[FlowConfig]) -> Result<(), SetupError> {
        let needed = flows.iter().any(|f| matches!(f.destination, Destination::DeliveryStream { .. }));
        if needed && self.firehose.is_none() {
            self.firehose = Some(firehose_client(&self.config).await?);
        }
        Ok(())
    }

    /// A `PutRecordBatch` answered: the lines of the records written are confirmed, the others retried.
    /// The agent's metrics count Firehose records (a joined record is one).
    fn firehose_answered(&mut self, (uid, id, outcome): FirehoseAnswer) {
        // A flow removed by a reload: its lines are read again from its checkpoints.
        let Some(flow) = self.flows.iter_mut().find(|flow| flow.uid == uid) else { return };
        let Sink::Firehose { batcher, .. } = &mut flow.sink else { return };
        let before = batcher.stats();
        let written = batcher.on_result(id, outcome, Instant::now());
        let after = batcher.stats();
        let failures = after.record_failures - before.record_failures;
        let error = batcher.take_last_error();
        flow.send.records_sent += after.records_written - before.records_written;
        flow.send.record_send_errors += failures;
        flow.send.record_send_attempts += after.records_written - before.records_written + failures;
        flow.send.service_errors += after.failed_calls - before.failed_calls;
        self.summary.records_delivered += written.len() as u64;
        self.summary.delivery_failures += failures;
        for part in written {
            flow.unacked.remove(&(part.key, part.start));
            flow.tailer.on_delivered(part.key, part.start);
        }
        if let Some(error) = error.filter(|_| failures > 0) {
            flow.failed(failures, &error);
        }
        self.call_firehose(Instant::now(), false);
    }

    /// Processes a framed record and puts it into the producer (or its flow's Firehose batcher).
    async fn send(&mut self, index: usize, record: TailRecord) {
        let flow = &mut self.flows[index];
        flow.provide_header(record.key, record.start);
        let processed =
            flow.config.processor.process(record.key, record.start, record.data, SystemTime::now());
        let data = match processed {
            Processed::Send(data) => Some(data),
            Processed::Skip => None,
            Processed::Unconverted(unconverted) => {
                self.summary.records_unconverted += 1;
                flow.unconverted(record.key, record.start, unconverted)
            }
        };
        let Some(data) = data else {
            flow.tailer.on_delivered(record.key, record.start);
            return;
        };
        flow.unacked.insert((record.key, record.start), Instant::now());
        let stream = match &mut flow.sink {
            Sink::Kinesis(stream) => stream.clone(),
            Sink::Firehose { batcher, .. } => {
                batcher.push(Part { key: record.key, start: record.start }, &data, Instant::now());
                return;
            }
        };
        let key = flow.keys.key(&data);
        let user = UserRecord::new(stream, key, data);
        let uid = flow.uid;
        self.put(Delivery { flow: uid, key: record.key, start: record.start, record: user, attempt: 0 })
            .await;
    }

    async fn put(&mut self, delivery: Delivery) {
        match self.producer.put(delivery.record.clone()).await {
            Ok(future) => self.completions.push(async move { (delivery, future.await) }.boxed()),
            // Stopping: the record stays above the checkpoint and is read again after the restart.
            Err(PutError::Closed) => {}
            Err(error) => {
                // Invalid as a record (framing keeps records within the size limit, so this is not
                // expected): it can never be written, so it must not stall its file forever.
                let Some(flow) = self.flow_mut(delivery.flow) else { return };
                let path =
                    flow.tailer.path(delivery.key).map(|p| p.display().to_string()).unwrap_or_default();
                tracing::error!(path, offset = delivery.start, %error, "the producer refused a record; skipped");
                flow.refused += 1;
                flow.unacked.remove(&(delivery.key, delivery.start));
                flow.tailer.on_delivered(delivery.key, delivery.start);
                self.summary.records_refused += 1;
            }
        }
    }

    fn completed(&mut self, (delivery, result): Completion) {
        // A flow removed by a reload: its file is read again from its checkpoint by the flow that
        // takes it over.
        let Some(flow) = self.flow_mut(delivery.flow) else { return };
        flow.count_attempts(&delivery.record, &result);
        match result {
            Ok(_) => {
                flow.unacked.remove(&(delivery.key, delivery.start));
                flow.tailer.on_delivered(delivery.key, delivery.start);
                self.summary.records_delivered += 1;
            }
            // Maybe written, maybe not: it stays above the checkpoint, so it is sent again after a restart.
            Err(DeliveryError::ShutdownTimedOut | DeliveryError::DriverStopped) => {}
            Err(error) => {
                flow.failed(1, &error);
                self.summary.delivery_failures += 1;
                let pause = RETRY_FIRST.saturating_mul(1 << delivery.attempt.min(5)).min(RETRY_MAX);
                let retry = Delivery { attempt: delivery.attempt + 1, ..delivery };
                self.retries.push_back((Instant::now() + pause, retry));
            }
        }
    }

    /// The running flow `uid`, if it still runs.
    fn flow_mut(&mut self, uid: u64) -> Option<&mut FlowRuntime> {
        self.flows.iter_mut().find(|flow| flow.uid == uid)
    }

    /// Commits every changed checkpoint in one transaction.
    fn save(&mut self) {
        // A checkpoint passes dead-lettered records only once they are on disk.
        for flow in &mut self.flows {
            if let Err(error) = flow.sync_dead_letter() {
                tracing::error!(flow = %flow.config.id(), %error, "cannot sync the dead-letter file; checkpoints not saved");
                return;
            }
        }
        let rows: Vec<_> = self.flows.iter().flat_map(|flow| flow.tailer.dirty_checkpoints()).collect();
        match self.store.save(&rows, SystemTime::now()) {
            Ok(()) => {
                for flow in &mut self.flows {
                    flow.tailer.checkpoints_saved(&rows);
                    flow.needs_save = false;
                }
            }
            Err(error) => tracing::error!(%error, "checkpoints not saved; retrying at the next interval"),
        }
        self.write_status(true);
    }

    /// Writes the status file, if there is one (`running`: false when stopping).
    fn write_status(&mut self, running: bool) {
        let Some(path) = &self.status_file else { return };
        match status::write(path, &self.flows, running) {
            Ok(()) => self.status_failed = false,
            Err(error) if !self.status_failed => {
                tracing::warn!(path = %path.display(), %error, "cannot write the status file; kpl agent status cannot see this agent");
                self.status_failed = true;
            }
            Err(_) => {}
        }
    }

    /// Every flow's figures at `now`.
    fn flow_metrics(&self, now: Instant) -> Vec<FlowMetrics> {
        self.flows.iter().map(|flow| flow.metrics(now)).collect()
    }

    /// Logs the counters and every flow's figures (the ones uploaded to CloudWatch, as totals; the facade
    /// is set to them too); `oldest` is the age of the oldest record in the producer.
    fn log_progress(&self, oldest: Option<Duration>, now: Instant) {
        // Whatever the cause (a stream missing, no permission to list its shards, throttling), records
        // that wait long are said out loud: the flow stalls and drops nothing.
        if let Some(age) = oldest.filter(|age| *age >= STALL_WARNING) {
            tracing::warn!(
                oldest_record_age_s = age.as_secs(),
                outstanding = self.producer.outstanding_records(),
                "records are waiting to be written (does the stream exist? are ListShards and PutRecords \
                 allowed?); reading pauses when the memory budget is full, nothing is dropped"
            );
        }
        tracing::info!(
            read = self.summary.records_read,
            delivered = self.summary.records_delivered,
            failures = self.summary.delivery_failures,
            budget_left = self.room(),
            "progress"
        );
        let figures = self.flow_metrics(now);
        self.metrics.publish(&figures);
        for (flow, figures) in self.flows.iter().zip(&figures) {
            let stats = flow.tailer.stats();
            let processing = flow.config.processor.stats();
            let age_ms = figures.oldest_unacked_age.map_or(0, |age| age.as_millis() as u64);
            tracing::info!(
                flow = %figures.flow,
                files = flow.open_files(),
                records = stats.records,
                record_send_attempts = figures.send.record_send_attempts,
                records_sent = figures.send.records_sent,
                record_send_errors = figures.send.record_send_errors,
                bytes_sent = figures.send.bytes_sent,
                service_errors = figures.send.service_errors,
                bytes_behind = figures.bytes_behind,
                files_behind = figures.files_behind,
                checkpoint_lag_bytes = figures.checkpoint_lag_bytes,
                oldest_unacked_age_ms = age_ms,
                unconfirmed_bytes = flow.tailer.unconfirmed_bytes(),
                truncated = stats.truncated,
                rotation_anomalies = figures.rotation_anomalies,
                dropped_unconverted = figures.dropped.unconverted,
                dropped_oversize = figures.dropped.oversize,
                dropped_refused = figures.dropped.refused,
                key_fallbacks = flow.keys.fallbacks,
                unconverted_sent_raw = processing.sent_raw,
                dead_lettered = processing.dead_lettered,
                "progress"
            );
        }
    }

    /// Stops reading, delivers what was read within `shutdownTimeoutMillis` (or until a second stop),
    /// saves checkpoints.
    async fn stop(&mut self, stop: &mut mpsc::Receiver<()>) {
        let timeout = self.config.shutdown_timeout;
        tracing::info!(timeout_ms = timeout.as_millis() as u64, "stopping: delivering what was read");
        // Keep a margin to save checkpoints and stop the producer within the timeout.
        let deadline = Instant::now() + timeout.saturating_sub(Duration::from_millis(500));
        let producer = self.producer.clone();
        tokio::spawn(async move { producer.flush().await });
        self.retries.clear();
        self.call_firehose(Instant::now(), true);
        let mut cut_short = false;
        while !self.completions.is_empty() || !self.firehose_calls.is_empty() {
            tokio::select! {
                biased;
                // A second stop (a closed channel is none: it can send nothing more).
                Some(()) = stop.recv() => { cut_short = true; break; }
                Some(done) = self.completions.next(), if !self.completions.is_empty() => self.completed(done),
                Some(answer) = self.firehose_calls.next(), if !self.firehose_calls.is_empty() => {
                    self.firehose_answered(answer);
                    self.call_firehose(Instant::now(), true);
                }
                _ = tokio::time::sleep_until(deadline.into()) => { cut_short = true; break; }
            }
        }
        self.retries.clear();
        self.save();
        self.summary.drained =
            !cut_short && self.flows.iter().all(|flow| flow.tailer.outstanding_records() == 0);
        if cut_short {
            tracing::warn!(
                "stopped before every record was confirmed; they are sent again after the restart"
            );
        }
        self.write_status(false);
        // The final figures, in the log (the counts since the last CloudWatch upload are not uploaded).
        self.log_progress(None, Instant::now());
        let _ = self.producer.shutdown(Duration::from_millis(100)).await;
        tracing::info!(delivered = self.summary.records_delivered, "stopped");
    }
}
