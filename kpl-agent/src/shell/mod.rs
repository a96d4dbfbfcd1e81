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
mod processing;
mod store;

pub use agent::{AgentError, RECORD_OVERHEAD, RunSummary, run, run_with_progress};
pub use aws::{SetupError, aws_backend, sdk_config, stop_on_signals};
pub use firehose::firehose_client;
pub use store::{CheckpointStore, StoreError, default_checkpoint_file};
