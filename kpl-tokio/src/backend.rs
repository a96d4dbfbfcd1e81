//! Where requests go: the core's request values in, its response values out.

use std::sync::Arc;

use async_trait::async_trait;
use kpl_core::{Request, Response};

/// Sends the core's requests to Kinesis (or anything that answers like it). One method, shaped like the
/// core's values: a [`Request`] in, the [`Response`] of the same kind out (see
/// [`RequestKind::failure`](kpl_core::RequestKind::failure) to fail a request as a whole).
///
/// Implementations send the request once (no retries: the core decides those) and classify failures into
/// [`RequestErrorKind`](kpl_core::RequestErrorKind)s. The driver applies `request_timeout` around each call
/// and answers a call that panics or is cancelled itself, so `send` needs no timeout of its own.
///
/// Implemented by [`AwsBackend`](crate::AwsBackend) (feature `aws`), `MockBackend` (feature `mock`) and
/// `Arc<B>`. To wrap a backend (to count, time or fault its calls), match the kinds you care about and
/// pass the rest on:
///
/// ```
/// use kpl_tokio::{Backend, Request, Response, async_trait};
///
/// struct Counted<B> { inner: B, puts: std::sync::atomic::AtomicU64 }
///
/// #[async_trait]
/// impl<B: Backend> Backend for Counted<B> {
///     async fn send(&self, request: Request) -> Response {
///         if let Request::PutRecords(_) = &request {
///             self.puts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         }
///         self.inner.send(request).await
///     }
/// }
/// ```
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Sends `request` once and returns its response, of the same kind: a `ListShards` page, or one
    /// `PutRecords` result per entry in request order, or the error that failed the whole request.
    async fn send(&self, request: Request) -> Response;
}

#[async_trait]
impl<B: Backend + ?Sized> Backend for Arc<B> {
    async fn send(&self, request: Request) -> Response {
        (**self).send(request).await
    }
}
