//! The sans-IO core: every decision of the agent, with no I/O, no clock and no randomness of its own.
//! Time comes in as `now`, the file system as [`Observation`]s and bytes read, and decisions go out as
//! [`Action`]s and [`TailRecord`]s (the same poll-style shape as `kpl_core::Producer`).
//!
//! - [`identity`]: (device, inode) plus a fingerprint of the first bytes;
//! - [`framing`]: bytes into records with their byte ranges;
//! - [`progress`]: checkpoint arithmetic tied to delivery;
//! - [`tailer`]: one flow's discovery diffing, rotation decisions and per-file state;
//! - [`metrics`]: the agent's CloudWatch metrics (names, dimension, deltas) from counters and gauges;
//! - [`firehose`]: batching, record joining and per-record retries of Firehose flows;
//! - [`process`]: the processing step between framing and delivery, the chain of
//!   [`processors`] (the agent's `dataProcessingOptions`).

pub mod firehose;
pub mod framing;
pub mod identity;
pub mod metrics;
pub mod notice;
pub mod process;
pub mod processors;
pub mod progress;
pub mod tailer;

pub use firehose::{BatchOutcome, FirehoseBatcher, FirehoseConfig, FirehoseStats, Part, PutBatch};
pub use framing::{Framed, Framer, FramingConfig, OversizePolicy, SkipReason};
pub use identity::{FINGERPRINT_MAX_LEN, FileId, Fingerprint};
pub use notice::Notice;
pub use process::{Disposition, Processed, ProcessingStats, Processor, Unconverted};
pub use progress::{NotContiguous, Progress};
#[cfg(test)]
mod testing;

pub use tailer::{
    Action, FileKey, FileStatus, HandleCheck, InitialPosition, Observation, SavedCheckpoint, TailRecord,
    Tailer, TailerConfig, TailerStats,
};
