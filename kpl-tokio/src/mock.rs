//! The simulated Kinesis of `kpl-mock-backend`, in process, on the runtime's clock.

use std::collections::{HashMap, HashSet};
use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use async_trait::async_trait;
use futures::future::select;
use kpl_core::{Request, RequestError, RequestErrorKind, RequestId, Response};
use kpl_mock_backend::MockKinesis;
use tokio::sync::Notify;

use crate::backend::Backend;
use crate::runtime::{Runtime, TokioRuntime};

/// A [`Backend`] answering from a [`MockKinesis`] in the same process: no network, no AWS account. Each
/// response arrives after the mock's latency, measured on the runtime's clock (virtual under tokio's
/// `start_paused`), with the mock's faults. For tests and demos; read what was written with
/// [`with_kinesis`](Self::with_kinesis).
#[derive(Debug)]
pub struct MockBackend<R: Runtime = TokioRuntime> {
    state: Mutex<MockState>,
    /// Responses were moved to `ready`.
    arrived: Notify,
    runtime: R,
}

#[derive(Debug)]
struct MockState {
    kinesis: MockKinesis,
    next_id: u64,
    /// Responses due and not yet picked up by their caller.
    ready: HashMap<RequestId, Response>,
    /// Requests whose caller gave up (timed out): their responses are thrown away.
    abandoned: HashSet<RequestId>,
}

impl MockBackend<TokioRuntime> {
    /// A backend for a producer on tokio.
    pub fn new(kinesis: MockKinesis) -> Self {
        Self::with_runtime(kinesis, TokioRuntime)
    }
}

impl<R: Runtime> MockBackend<R> {
    /// A backend for a producer on `runtime`.
    pub fn with_runtime(kinesis: MockKinesis, runtime: R) -> Self {
        let state = MockState { kinesis, next_id: 0, ready: HashMap::new(), abandoned: HashSet::new() };
        Self { state: Mutex::new(state), arrived: Notify::new(), runtime }
    }

    fn lock(&self) -> MutexGuard<'_, MockState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the mock, with the runtime's current time: to read committed records and statistics,
    /// reshard, or change faults.
    pub fn with_kinesis<T>(&self, f: impl FnOnce(&mut MockKinesis, Instant) -> T) -> T {
        let now = self.runtime.now();
        f(&mut self.lock().kinesis, now)
    }

    /// Sends `request` and waits for its response.
    async fn exchange(&self, request: Request) -> Response {
        let id = {
            let mut state = self.lock();
            let id = RequestId(state.next_id);
            state.next_id += 1;
            let kind = request.kind();
            if let Err(error) = state.kinesis.handle_request(self.runtime.now(), id, request) {
                return kind.failure(RequestError::new(RequestErrorKind::Fatal, None, error.to_string()));
            }
            id
        };
        let mut waiting = Waiting { backend: self, id, answered: false };
        loop {
            let mut arrived = pin!(self.arrived.notified());
            arrived.as_mut().enable();
            let due = {
                let mut state = self.lock();
                self.deliver(&mut state);
                if let Some(response) = state.ready.remove(&id) {
                    waiting.answered = true;
                    return response;
                }
                state.kinesis.poll_timeout()
            };
            match due {
                Some(due) => {
                    select(arrived, pin!(self.runtime.sleep_until(due))).await;
                }
                None => arrived.await,
            }
        }
    }

    /// Moves every due response to `ready` and wakes the callers.
    fn deliver(&self, state: &mut MockState) {
        let now = self.runtime.now();
        let mut delivered = false;
        while let Some((id, response)) = state.kinesis.poll_response(now) {
            if !state.abandoned.remove(&id) {
                state.ready.insert(id, response);
                delivered = true;
            }
        }
        if delivered {
            self.arrived.notify_waiters();
        }
    }
}

/// Forgets a request whose caller stopped waiting (the driver's `request_timeout`).
struct Waiting<'a, R: Runtime> {
    backend: &'a MockBackend<R>,
    id: RequestId,
    answered: bool,
}

impl<R: Runtime> Drop for Waiting<'_, R> {
    fn drop(&mut self) {
        if !self.answered {
            let mut state = self.backend.lock();
            if state.ready.remove(&self.id).is_none() {
                state.abandoned.insert(self.id);
            }
        }
    }
}

#[async_trait]
impl<R: Runtime> Backend for MockBackend<R> {
    async fn send(&self, request: Request) -> Response {
        self.exchange(request).await
    }
}
