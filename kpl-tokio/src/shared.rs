//! State shared by the handles and the driver: the intake queue of commands and the admission gauge.
//!
//! Handles append commands to one `Vec` under a mutex and wake the driver only when the queue was empty;
//! the driver swaps the whole `Vec` out, so a burst of puts costs it one lock and one wake-up, not one
//! channel message per record.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use kpl_core::{Producer, ProducerConfig, PutError, RecordReceipt, StreamTarget, UserRecord};
use tokio::sync::{Notify, oneshot};

use crate::error::{DeliveryError, ShutdownError};

/// What a record's future resolves to.
pub(crate) type RecordResult = Result<RecordReceipt, DeliveryError>;

/// A read of the driver's core, run on the driver.
pub(crate) type Inspect = Box<dyn FnOnce(&Producer, Instant) + Send>;

/// A request from a handle to the driver.
pub(crate) enum Command {
    /// A record, already checked and admitted (`size` bytes counted in the gauge).
    Put { record: UserRecord, size: usize, reply: oneshot::Sender<RecordResult> },
    /// Reply once every record put before this completed (of one stream, or all).
    Flush { stream: Option<StreamTarget>, reply: oneshot::Sender<()> },
    /// Read the core.
    Inspect(Inspect),
    /// Close, drain, stop; fail what is left when the timeout passes.
    Shutdown { timeout: Duration, reply: oneshot::Sender<Result<(), ShutdownError>> },
    /// The last handle was dropped: close and drain, then stop.
    Release,
}

pub(crate) struct Shared {
    pub(crate) config: ProducerConfig,
    state: Mutex<State>,
    /// The driver's task.
    pub(crate) driver: AtomicWaker,
    /// Puts waiting for capacity.
    pub(crate) capacity: Notify,
}

#[derive(Default)]
struct State {
    commands: Vec<Command>,
    /// Records admitted and not completed, and their bytes (data plus partition keys).
    outstanding_records: usize,
    outstanding_bytes: usize,
    /// False once shutdown began or the driver stopped.
    accepting: bool,
    /// The driver is gone: commands would never be read.
    stopped: bool,
}

/// Why a record was not submitted.
pub(crate) enum Refusal {
    /// Over the outstanding limits: the record comes back with the error.
    Full(UserRecord, PutError),
    /// Refused for good.
    Refused(PutError),
}

impl Shared {
    pub(crate) fn new(config: ProducerConfig) -> Self {
        Self {
            config,
            state: Mutex::new(State { accepting: true, ..State::default() }),
            driver: AtomicWaker::new(),
            capacity: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks and admits a record and queues it for the driver.
    #[allow(
        clippy::result_large_err,
        reason = "a refused record goes back to its caller without an allocation"
    )]
    pub(crate) fn submit(&self, record: UserRecord) -> Result<oneshot::Receiver<RecordResult>, Refusal> {
        if let Err(error) = self.config.check_record(&record) {
            return Err(Refusal::Refused(error));
        }
        let size = record.size();
        let mut state = self.lock();
        if !state.accepting {
            return Err(Refusal::Refused(PutError::Closed));
        }
        if !self.config.admits(state.outstanding_records, state.outstanding_bytes, size) {
            let error = PutError::Backpressure {
                outstanding_records: state.outstanding_records,
                outstanding_bytes: state.outstanding_bytes,
            };
            return Err(Refusal::Full(record, error));
        }
        state.outstanding_records += 1;
        state.outstanding_bytes += size;
        let (reply, receiver) = oneshot::channel();
        let wake = state.commands.is_empty();
        state.commands.push(Command::Put { record, size, reply });
        drop(state);
        if wake {
            self.driver.wake();
        }
        Ok(receiver)
    }

    /// Queues a command other than a put; gives it back if the driver is gone.
    pub(crate) fn send(&self, command: Command) -> Result<(), Command> {
        let mut state = self.lock();
        if state.stopped {
            return Err(command);
        }
        if matches!(command, Command::Shutdown { .. }) {
            state.accepting = false;
        }
        let wake = state.commands.is_empty();
        state.commands.push(command);
        drop(state);
        if wake {
            self.driver.wake();
        }
        Ok(())
    }

    /// Swaps the queued commands into `into` (which must be empty).
    pub(crate) fn take_commands(&self, into: &mut Vec<Command>) {
        std::mem::swap(&mut self.lock().commands, into);
    }

    /// Gives back the capacity of completed records and wakes the puts waiting for it.
    pub(crate) fn release(&self, records: usize, bytes: usize) {
        let mut state = self.lock();
        state.outstanding_records -= records;
        state.outstanding_bytes -= bytes;
        drop(state);
        self.capacity.notify_waiters();
    }

    /// Records admitted and not yet completed.
    pub(crate) fn outstanding_records(&self) -> usize {
        self.lock().outstanding_records
    }

    /// The driver stopped: refuse everything from now on and hand back what is still queued.
    pub(crate) fn stop(&self) -> Vec<Command> {
        let mut state = self.lock();
        state.accepting = false;
        state.stopped = true;
        let commands = std::mem::take(&mut state.commands);
        drop(state);
        self.capacity.notify_waiters();
        commands
    }
}
