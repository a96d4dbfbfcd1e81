//! Waits for the results of the records put, on a task of its own, and hands each to a sink as it arrives,
//! with the time from put to result. Putting and waiting for results are separate tasks, so a producer that
//! applies backpressure does not delay when results are seen.

use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use kpl_tokio::{DeliveryError, RecordFuture, RecordReceipt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The result of one record.
#[derive(Debug)]
pub struct Completion<T> {
    /// What the putter attached to the record.
    pub tag: T,
    /// Written, or why not.
    pub result: Result<RecordReceipt, DeliveryError>,
    /// From the start of the put to the result.
    pub latency: Duration,
}

/// Where records' futures are handed over; dropping it lets the task finish once every result is in.
#[derive(Debug)]
pub struct Tracker<T> {
    sender: mpsc::UnboundedSender<(T, Instant, RecordFuture)>,
}

impl<T: Send + 'static> Tracker<T> {
    /// Starts the task calling `on_result` with `state` and each result; it returns the state once the
    /// tracker is dropped and every result tracked has arrived.
    pub fn spawn<S, F>(mut state: S, mut on_result: F) -> (Self, JoinHandle<S>)
    where
        S: Send + 'static,
        F: FnMut(&mut S, Completion<T>) + Send + 'static,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<(T, Instant, RecordFuture)>();
        let task = tokio::spawn(async move {
            let mut pending = FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    received = receiver.recv(), if open => match received {
                        Some((tag, put_at, future)) => pending.push(async move {
                            let result = future.await;
                            Completion { tag, result, latency: put_at.elapsed() }
                        }),
                        None => open = false,
                    },
                    Some(completion) = pending.next(), if !pending.is_empty() => on_result(&mut state, completion),
                    else => break,
                }
            }
            state
        });
        (Self { sender }, task)
    }

    /// Waits for `future`'s result; `put_at` is when the put started.
    pub fn track(&self, tag: T, put_at: Instant, future: RecordFuture) {
        // Refused only once the task is gone, which awaiting its handle reports.
        let _ = self.sender.send((tag, put_at, future));
    }
}
