//! A `Backend` of your own: where the producer's Kinesis calls go. This one wraps another backend to
//! count requests and time them (a place for your own metrics, tracing or a different HTTP client), around
//! the in-process mock Kinesis. Everything it needs comes from `kpl-tokio`.
//!
//! ```sh
//! cargo run -p kpl-tokio --example custom_backend
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kpl_tokio::{
    Backend, KinesisProducer, MockBackend, MockConfig, MockKinesis, ProducerConfig, Request, Response,
    StreamTarget, async_trait,
};

/// Counts and times the calls of the backend it wraps.
struct Timed<B> {
    inner: B,
    put_requests: AtomicU64,
    put_entries: AtomicU64,
    put_micros: AtomicU64,
}

#[async_trait]
impl<B: Backend> Backend for Timed<B> {
    /// Sends the request once: retries, backoff and throttling are the producer's. A whole-request failure
    /// is a `RequestError` whose `RequestErrorKind` says how the producer reacts. `ListShards` and any other
    /// call go through untouched.
    async fn send(&self, request: Request) -> Response {
        let Request::PutRecords(put) = &request else { return self.inner.send(request).await };
        let entries = put.entries.len() as u64;
        let started = Instant::now();
        let response = self.inner.send(request).await;
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.put_requests.fetch_add(1, Ordering::Relaxed);
        self.put_entries.fetch_add(entries, Ordering::Relaxed);
        self.put_micros.fetch_add(micros, Ordering::Relaxed);
        response
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut kinesis = MockKinesis::new(MockConfig::calm(), 42)?;
    kinesis.create_stream("orders", 4)?;
    let backend = std::sync::Arc::new(Timed {
        inner: MockBackend::new(kinesis),
        put_requests: AtomicU64::new(0),
        put_entries: AtomicU64::new(0),
        put_micros: AtomicU64::new(0),
    });
    // An `Arc<B>` is a backend too: keep a handle to read the counters.
    let producer = KinesisProducer::builder(ProducerConfig::default(), backend.clone()).spawn()?;
    let stream = StreamTarget::name("orders");
    let mut results = Vec::new();
    for i in 0..10_000 {
        results.push(producer.put_data(&stream, format!("order-{i}"), format!("{{\"order\": {i}}}")).await?);
    }
    for result in results {
        result.await?;
    }
    producer.shutdown(Duration::from_secs(30)).await?;
    let requests = backend.put_requests.load(Ordering::Relaxed).max(1);
    println!(
        "{requests} PutRecords, {} Kinesis records, {} µs per request on average",
        backend.put_entries.load(Ordering::Relaxed),
        backend.put_micros.load(Ordering::Relaxed) / requests
    );
    Ok(())
}
