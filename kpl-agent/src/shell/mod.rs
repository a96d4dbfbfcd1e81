//! The tokio shell: watches directories, reads files, stores checkpoints, and delivers records through
//! `kpl_tokio::KinesisProducer` (or Firehose `PutRecordBatch` calls), taking back each record's result.
//! Every decision is the core's.

mod agent;
mod aws;
mod discovery;
mod firehose;
mod flow;
mod imds;
mod keys;
mod metrics;
mod processing;
mod status;
mod store;

pub use agent::{AgentError, RECORD_OVERHEAD, RunControls, RunSummary, run, run_with, run_with_progress};
pub use aws::{SetupError, aws_backend, cloudwatch_uploader, reload_on_sighup, sdk_config, stop_on_signals};
pub use firehose::firehose_client;
pub use status::{AgentStatus, FileRow, StatusError, StatusSource, read_status, status_file};
pub use store::{CheckpointStore, StoreError, default_checkpoint_file};
