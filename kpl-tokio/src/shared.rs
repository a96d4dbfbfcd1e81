//! State shared by the handles and the driver: the one admission gauge and the command queue.
//!
//! Handles append commands to one `Vec` under a mutex and wake the driver only when the queue was empty;
//! the driver swaps the whole `Vec` out, so a burst of puts costs it one lock and one wake-up, not one
//! channel message per record.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::task::AtomicWaker;
use kpl_core::{
    PreparedRecord, Producer, ProducerConfig, PutError, RecordReceipt, StreamIndex, StreamTarget,
};
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

/// A record admitted by a handle (its `size` counted in the gauge, under its stream's `gauge` slot) on its
/// way to the core.
pub(crate) struct Admitted {
    /// Checked and hashed on the caller's thread (see `ProducerConfig::prepare`).
    pub(crate) record: PreparedRecord,
    pub(crate) size: usize,
    pub(crate) gauge: GaugeSlot,
    pub(crate) reply: Reply,
}

/// A stream's slot in the admission gauge, handed out at its first put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GaugeSlot(pub(crate) u32);

/// Capacity to give back to the gauge: records, their bytes, and their bytes per stream (by gauge slot).
#[derive(Debug, Default)]
pub(crate) struct Released {
    pub(crate) records: usize,
    pub(crate) bytes: usize,
    /// Bytes per gauge slot; a slot past the end released nothing.
    pub(crate) streams: Vec<usize>,
}

impl Released {
    /// Counts a record of `size` bytes of the stream in `gauge`.
    pub(crate) fn add(&mut self, gauge: GaugeSlot, size: usize) {
        self.records += 1;
        self.bytes += size;
        let slot = gauge.0 as usize;
        if self.streams.len() <= slot {
            self.streams.resize(slot + 1, 0);
        }
        self.streams[slot] += size;
    }
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

/// The producer's one admission gauge: records and bytes admitted and not yet completed, in all and per
/// stream. The core is given no limits of its own (see `Driver::new`), so this is the only place a record is
/// held back, under the core's rules: `max_outstanding_records` and `max_outstanding_bytes`
/// ([`ProducerConfig::admits`]), and per stream the drain-time limit
/// ([`ProducerConfig::admits_to_stream`]) of the drain rate the driver reads from the core after each round
/// ([`Producer::drain_rates`](kpl_core::Producer::drain_rates)).
#[derive(Debug, Default)]
struct Admission {
    records: usize,
    /// Data plus partition keys ([`UserRecord::size`]).
    bytes: usize,
    /// Per stream, by gauge slot.
    streams: Vec<StreamGauge>,
    slots: StreamIndex<GaugeSlot>,
}

/// One stream's share of the gauge.
#[derive(Debug)]
struct StreamGauge {
    bytes: usize,
    /// [`ProducerConfig::stream_admission_limit`] of its drain rate; `None`: no limit.
    limit: Option<u64>,
}

impl Admission {
    /// The gauge slot of `stream`, added with the initial limit if it is new.
    fn slot(&mut self, config: &ProducerConfig, stream: &StreamTarget) -> GaugeSlot {
        match self.slots.get(stream) {
            Some(slot) => slot,
            None => self.add(stream, config.initial_stream_admission_limit()),
        }
    }

    fn add(&mut self, stream: &StreamTarget, limit: Option<u64>) -> GaugeSlot {
        let slot = GaugeSlot(self.streams.len() as u32);
        self.streams.push(StreamGauge { bytes: 0, limit });
        self.slots.insert(stream.clone(), slot);
        slot
    }

    /// Counts a record of `stream` of `size` bytes in, under the limits, or says why not.
    fn admit(
        &mut self,
        config: &ProducerConfig,
        stream: &StreamTarget,
        size: usize,
    ) -> Result<GaugeSlot, PutError> {
        if !config.admits(self.records, self.bytes, size) {
            return Err(self.backpressure());
        }
        let slot = self.slot(config, stream);
        let gauge = &mut self.streams[slot.0 as usize];
        if !config.admits_to_stream(gauge.bytes, gauge.limit, size) {
            return Err(self.backpressure());
        }
        gauge.bytes += size;
        self.records += 1;
        self.bytes += size;
        Ok(slot)
    }

    fn backpressure(&self) -> PutError {
        PutError::Backpressure { outstanding_records: self.records, outstanding_bytes: self.bytes }
    }

    fn release(&mut self, released: &Released) {
        self.records -= released.records;
        self.bytes -= released.bytes;
        for (gauge, bytes) in self.streams.iter_mut().zip(&released.streams) {
            gauge.bytes -= bytes;
        }
    }

    /// Sets a stream's limit from its drain rate; says whether it rose.
    fn set_drain_rate(
        &mut self,
        config: &ProducerConfig,
        stream: &StreamTarget,
        bytes_per_second: u64,
    ) -> bool {
        let limit = config.stream_admission_limit(bytes_per_second);
        match self.slots.peek(stream) {
            Some(slot) => {
                let gauge = &mut self.streams[slot.0 as usize];
                let rose = limit.is_none_or(|new| gauge.limit.is_some_and(|old| new > old));
                gauge.limit = limit;
                rose
            }
            None => {
                self.add(stream, limit);
                false
            }
        }
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

    /// Admits and queues records for the driver under one lock: `next`, then the rest of `records`, until
    /// one does not fit (it is left in `next`). Records come prepared (`ProducerConfig::prepare`, on the
    /// caller's thread, outside the lock: checked, and hashed, which the driver would otherwise do for every
    /// record on its one task). A record put once the producer is closed goes to `refuse` with its tag; an
    /// admitted one is queued with the reply `reply` makes of its tag. Wakes the driver once.
    pub(crate) fn submit<T>(
        &self,
        next: &mut Option<(T, PreparedRecord)>,
        records: &mut impl Iterator<Item = (T, PreparedRecord)>,
        mut reply: impl FnMut(T) -> Reply,
        mut refuse: impl FnMut(T, PreparedRecord, PutError),
    ) -> Submitted {
        let mut state = self.lock();
        let was_empty = state.commands.is_empty();
        let submitted = loop {
            let Some((tag, record)) = next.take() else { break Submitted::All };
            if !state.accepting {
                refuse(tag, record, PutError::Closed);
            } else {
                let size = record.record().size();
                let gauge = match state.admission.admit(&self.config, &record.record().stream, size) {
                    Ok(gauge) => gauge,
                    Err(error) => {
                        *next = Some((tag, record));
                        break Submitted::Full(error);
                    }
                };
                state.commands.push(Command::Put(Admitted { record, size, gauge, reply: reply(tag) }));
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

    /// Gives back the capacity of completed records (and empties `released`) and wakes the puts waiting
    /// for it.
    pub(crate) fn release(&self, released: &mut Released) {
        self.lock().admission.release(released);
        released.records = 0;
        released.bytes = 0;
        released.streams.iter_mut().for_each(|bytes| *bytes = 0);
        self.capacity.notify_waiters();
    }

    /// Sets the streams' drain-time limits from their drain rates (bytes per second, from
    /// [`Producer::drain_rates`](kpl_core::Producer::drain_rates)); wakes the waiting puts if one rose.
    pub(crate) fn set_drain_rates(&self, rates: &[(StreamTarget, u64)]) {
        let mut state = self.lock();
        let mut rose = false;
        for (stream, rate) in rates {
            rose |= state.admission.set_drain_rate(&self.config, stream, *rate);
        }
        drop(state);
        if rose {
            self.capacity.notify_waiters();
        }
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
