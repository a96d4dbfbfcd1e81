//! The three things the driver needs from an async runtime: a clock, timers and spawning.

use std::future::Future;
use std::time::Instant;

/// An async runtime the producer's driver runs on, as quinn's `Runtime`: the clock, timers and task
/// spawning, nothing else. [`TokioRuntime`] is the default; `SmolRuntime` (feature `smol`) and
/// `AsyncStdRuntime` (feature `async-std`) are the others shipped.
///
/// The clock must be the runtime's own, so that a paused or simulated clock (tokio's `start_paused`) drives
/// the producer's timers too.
pub trait Runtime: Clone + Send + Sync + 'static {
    /// A timer future.
    type Sleep: Future<Output = ()> + Send + 'static;

    /// The current time on the runtime's clock.
    fn now(&self) -> Instant;

    /// A future that completes once [`now`](Self::now) reaches `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Self::Sleep;

    /// Runs `task` in the background to completion.
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static);
}

/// Tokio. Time is tokio's clock, so `#[tokio::test(start_paused = true)]` runs the producer on virtual
/// time. Its methods must be called from within a tokio runtime, as the producer does (it calls them only
/// from its own tasks); [`ProducerBuilder::spawn`](crate::ProducerBuilder::spawn) checks that for you.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl Runtime for TokioRuntime {
    type Sleep = tokio::time::Sleep;

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        tokio::time::sleep_until(tokio::time::Instant::from_std(deadline))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(tokio::spawn(task));
    }
}

/// async-std (feature `async-std`). async-std is discontinued upstream (RUSTSEC-2025-0052): this adapter is
/// kept small, for applications that cannot move yet. aws-sdk-kinesis's HTTP client needs tokio, so on
/// async-std use the mock backend or a [`Backend`](crate::Backend) of your own.
#[cfg(feature = "async-std")]
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

#[cfg(feature = "async-std")]
impl Runtime for AsyncStdRuntime {
    type Sleep = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        Box::pin(async_std::task::sleep(deadline.saturating_duration_since(Instant::now())))
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        drop(async_std::task::spawn(task));
    }
}

/// smol (feature `smol`): tasks on smol's global executor (`smol::spawn`, detached), timers from async-io
/// (`smol::Timer`), the system clock. aws-sdk-kinesis's HTTP client needs tokio, so on smol use the mock
/// backend or a [`Backend`](crate::Backend) of your own (smol's `async-compat` can host a tokio-based one).
#[cfg(feature = "smol")]
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

#[cfg(feature = "smol")]
impl Runtime for SmolRuntime {
    type Sleep = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Self::Sleep {
        let timer = smol::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        smol::spawn(task).detach();
    }
}
