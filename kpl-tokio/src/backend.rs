//! Where requests go: the Kinesis API as two async calls on the core's value types.

use std::sync::Arc;

use async_trait::async_trait;
use kpl_core::{ListShardsOutput, ListShardsRequest, PutRecordsRequest, PutRecordsResultEntry, RequestError};

/// The two Kinesis calls the producer makes. Implementations send the request once (no retries: the core
/// decides those) and classify failures into [`RequestErrorKind`](kpl_core::RequestErrorKind)s. The driver
/// applies `request_timeout` around each call.
///
/// Implemented by [`AwsBackend`](crate::AwsBackend) (feature `aws`) and [`MockBackend`](crate::MockBackend).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// One page of `ListShards`.
    async fn list_shards(&self, request: ListShardsRequest) -> Result<ListShardsOutput, RequestError>;

    /// `PutRecords`: one result per entry, in request order.
    async fn put_records(
        &self,
        request: PutRecordsRequest,
    ) -> Result<Vec<PutRecordsResultEntry>, RequestError>;
}

#[async_trait]
impl<B: Backend + ?Sized> Backend for Arc<B> {
    async fn list_shards(&self, request: ListShardsRequest) -> Result<ListShardsOutput, RequestError> {
        (**self).list_shards(request).await
    }

    async fn put_records(
        &self,
        request: PutRecordsRequest,
    ) -> Result<Vec<PutRecordsResultEntry>, RequestError> {
        (**self).put_records(request).await
    }
}
