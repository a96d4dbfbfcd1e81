//! `kpl agent`: tails log files into Kinesis streams through the producer (and into Firehose delivery
//! streams), and loses nothing.
//!
//! The Kinesis Agent's job (its `agent.json` read unchanged), done with the KPL's aggregation, per-shard
//! rate limits and retries, and with checkpoints tied to delivery: a file's checkpoint is the offset below
//! which every record was confirmed written, so a crash never skips a record still being retried.
//!
//! - [`core`]: the sans-IO decisions (discovery diffing, identity and rotation, open files, framing,
//!   checkpoints, Firehose batching);
//! - [`config`]: `agent.json` and `agent.d/`;
//! - [`shell`]: the tokio shell (watching, reading, the checkpoint store, delivery through
//!   `kpl_tokio::KinesisProducer` or `PutRecordBatch` calls, signals).
#![forbid(unsafe_code)]

pub mod config;
pub mod core;
pub mod shell;
