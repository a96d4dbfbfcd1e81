//! The adapter's errors. Refusals at `put` time are the core's [`PutError`](kpl_core::PutError).

use kpl_core::RecordFailure;

/// Why a record that `put` accepted was not written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The producer gave up on it: its TTL passed, it was throttled with `fail_if_throttled`, or Kinesis
    /// rejected it. Carries every attempt.
    #[error(transparent)]
    Failed(#[from] RecordFailure),
    /// [`shutdown`](crate::KinesisProducer::shutdown)'s timeout passed before it completed. It may still
    /// have been written (a request carrying it may have been in flight).
    #[error("the shutdown timeout passed before the record completed; it may or may not have been written")]
    ShutdownTimedOut,
    /// The driver task stopped before the record completed: its runtime was shut down, or it panicked. It
    /// may or may not have been written.
    #[error("the producer's driver stopped before the record completed; it may or may not have been written")]
    DriverStopped,
}

/// [`shutdown`](crate::KinesisProducer::shutdown) did not complete every record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ShutdownError {
    /// The timeout passed; this many records were failed with [`DeliveryError::ShutdownTimedOut`].
    #[error("shutdown timed out with {abandoned} records outstanding; they failed with ShutdownTimedOut")]
    TimedOut {
        /// Records failed by the timeout.
        abandoned: usize,
    },
    /// The driver task stopped on its own (its runtime was shut down, or it panicked).
    #[error("the producer's driver stopped before shutdown completed")]
    DriverStopped,
}

/// The producer could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// [`ProducerBuilder::spawn`](crate::ProducerBuilder::spawn) was called outside a tokio runtime: call
    /// it from async code, or use `spawn_on` with a runtime.
    #[error("no tokio runtime here: build the producer inside a runtime, or use spawn_on")]
    NoTokioRuntime,
}
