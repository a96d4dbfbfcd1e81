//! State shared by the handles and the driver: the one admission gauge and the command queue.
//!
//! Handles append commands to one `Vec` under a mutex and wake the driver only when the queue was empty;
//! the driver swaps the whole `Vec` out, so a burst of puts costs it one lock and one wake-up, not one
//! channel message per record.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use kpl_core::{Producer, ProducerConfig, PutError, RecordReceipt, StreamTarget, UserRecord};
use tokio::sync::{Notify, oneshot};

use crate::error::{DeliveryError, ShutdownError};

/// What a record's result is.
pub(crate) type RecordResult = Result<RecordReceipt, DeliveryError>;

/// A read of the driver's core, run on the driver.
pub(crate) type Inspect = Box<dyn FnOnce(&Producer, Instant) + Send>;

/// Where results of tagged puts go (a [`Completions`](crate::Completions) queue), without its tag type.
pub(crate) trait Sink: Send + Sync {
    /// Hands over results, each under the key its tag was kept under, in one go; leaves `results` empty.
    fn deliver(&self, results: &mut Vec<(u64, RecordResult)>);
}

/// Where a record's result goes.
pub(crate) enum Reply {
    /// The [`RecordFuture`](crate::RecordFuture) of a `put`: a `futures` oneshot, which, unlike tokio's,
    /// does not count against tokio's cooperative budget (see `RecordFuture`).
    Future(futures::channel::oneshot::Sender<RecordResult>),
    /// A tagged put: its tag waits in `sink` under `key`.
    Sink { sink: Arc<dyn Sink>, key: u64 },
}

/// A record admitted by a handle (its `size` counted in the gauge) on its way to the core.
pub(crate) struct Admitted {
    pub(crate) record: UserRecord,
    pub(crate) size: usize,
    pub(crate) reply: Reply,
}

/// A request from a handle to the driver.
pub(crate) enum Command {
    /// A record, already checked and admitted.
    Put(Admitted),
    /// Flush, and reply once every record put before this completed (of one stream, or all).
    Flush { stream: Option<StreamTarget>, reply: oneshot::Sender<()> },
    /// Read the core.
    Inspect(Inspect),
    /// Close, drain, stop; fail what is left when the timeout passes.
    Shutdown { timeout: Duration, reply: oneshot::Sender<Result<(), ShutdownError>> },
    /// The last handle was dropped: close and drain, then stop.
    LastHandleDropped,
}

/// The producer's one admission gauge: records and bytes admitted and not yet completed. The core is given
/// no limits of its own (see `Driver::new`), so this is the only place a record is held back; a rule on
/// more than counts (bytes a stream can drain within the TTL, say) goes in [`admit`](Self::admit).
#[derive(Debug, Default)]
struct Admission {
    records: usize,
    /// Data plus partition keys ([`UserRecord::size`]).
    bytes: usize,
}

impl Admission {
    /// Counts a record of `size` bytes in, under `config`'s `max_outstanding_records` and
    /// `max_outstanding_bytes` (the core's rule, [`ProducerConfig::admits`]), or says why not.
    fn admit(&mut self, config: &ProducerConfig, size: usize) -> Result<(), PutError> {
        if !config.admits(self.records, self.bytes, size) {
            return Err(PutError::Backpressure {
                outstanding_records: self.records,
                outstanding_bytes: self.bytes,
            });
        }
        self.records += 1;
        self.bytes += size;
        Ok(())
    }

    fn release(&mut self, records: usize, bytes: usize) {
        self.records -= records;
        self.bytes -= bytes;
    }
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
    admission: Admission,
    /// False once shutdown began or the driver stopped.
    accepting: bool,
    /// The driver is gone: commands would never be read.
    stopped: bool,
}

/// How far [`Shared::submit`] got.
pub(crate) enum Submitted {
    /// Every record was queued or refused.
    All,
    /// The next record does not fit under the limits now: it is left where it was.
    Full(PutError),
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

    /// Checks, admits and queues records for the driver under one lock: `next`, then the rest of
    /// `records`, until one does not fit (it is left in `next`). A record that can never be taken (invalid,
    /// or the producer is closed) goes to `refuse` with its tag; an admitted one is queued with the reply
    /// `reply` makes of its tag. Wakes the driver once.
    pub(crate) fn submit<T>(
        &self,
        next: &mut Option<(T, UserRecord)>,
        records: &mut impl Iterator<Item = (T, UserRecord)>,
        mut reply: impl FnMut(T) -> Reply,
        mut refuse: impl FnMut(T, UserRecord, PutError),
    ) -> Submitted {
        let mut state = self.lock();
        let was_empty = state.commands.is_empty();
        let submitted = loop {
            let Some((tag, record)) = next.take() else { break Submitted::All };
            let checked =
                if state.accepting { self.config.check_record(&record) } else { Err(PutError::Closed) };
            if let Err(error) = checked {
                refuse(tag, record, error);
            } else {
                let size = record.size();
                if let Err(error) = state.admission.admit(&self.config, size) {
                    *next = Some((tag, record));
                    break Submitted::Full(error);
                }
                state.commands.push(Command::Put(Admitted { record, size, reply: reply(tag) }));
            }
            *next = records.next();
        };
        let wake = was_empty && !state.commands.is_empty();
        drop(state);
        if wake {
            self.driver.wake();
        }
        submitted
    }

    /// Queues a command other than a put; gives it back if the driver is gone.
    #[allow(clippy::result_large_err, reason = "the command goes back to its caller without an allocation")]
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
        self.lock().admission.release(records, bytes);
        self.capacity.notify_waiters();
    }

    /// Records admitted and not yet completed.
    pub(crate) fn outstanding_records(&self) -> usize {
        self.lock().admission.records
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
