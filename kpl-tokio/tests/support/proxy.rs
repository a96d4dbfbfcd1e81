//! A fault-injecting HTTP/1.1 proxy on 127.0.0.1 in front of kinesalite, which never throttles or fails on
//! its own. It forwards every request and, for `PutRecords`, can:
//! - throttle single entries: they are taken out of the request before it is forwarded (so they are not
//!   written, as with a real throttle) and answered `ProvisionedThroughputExceededException` in place;
//! - answer whole requests with HTTP 500 `InternalFailure` or 503 `ServiceUnavailable` without forwarding;
//! - hold requests for a while before forwarding them.
//!
//! For `ListShards` it can hold requests, or refuse them as a role allowed only `PutRecords` is refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What to inject.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    /// Throttle every n-th PutRecords entry (0: never).
    pub throttle_every_entry: usize,
    /// Answer every n-th PutRecords request with a 500 or 503, alternately (0: never).
    pub fail_every_request: usize,
    /// Hold every PutRecords request this long before forwarding it.
    pub delay: Duration,
    /// Hold every ListShards request this long before forwarding it.
    pub list_shards_delay: Duration,
    /// Answer every ListShards with HTTP 400 `AccessDeniedException`.
    pub refuse_list_shards: bool,
}

/// Counts of what was injected.
#[derive(Debug, Default)]
pub struct Injected {
    pub put_requests: AtomicUsize,
    pub entries: AtomicUsize,
    pub throttled_entries: AtomicUsize,
    pub internal_failures: AtomicUsize,
    pub service_unavailable: AtomicUsize,
    pub list_shards_refused: AtomicUsize,
}

/// A running proxy; stopped when dropped.
pub struct FaultProxy {
    endpoint: String,
    pub injected: Arc<Injected>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://127.0.0.1:PORT`) following `plan`.
    pub async fn start(upstream: &str, plan: Plan) -> FaultProxy {
        let upstream = upstream.strip_prefix("http://").expect("an http endpoint").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let injected = Arc::new(Injected::default());
        let counts = injected.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let counts = counts.clone();
                tokio::spawn(async move {
                    let _ = serve(client, &upstream, plan, &counts).await;
                });
            }
        });
        FaultProxy { endpoint, injected, task }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP/1.1 message: start line, headers, body.
pub struct Message {
    pub start: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Message {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether a PutRecords body still has entries to forward.
    fn body_has_records(&self) -> bool {
        serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|body| body["Records"].as_array().map(|records| !records.is_empty()))
            .unwrap_or(true)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{}\r\n", self.start);
        for (name, value) in &self.headers {
            if !name.eq_ignore_ascii_case("content-length") {
                out.push_str(&format!("{name}: {value}\r\n"));
            }
        }
        out.push_str(&format!("content-length: {}\r\n\r\n", self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

pub async fn read_message<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<Message>> {
    let mut start = String::new();
    if reader.read_line(&mut start).await? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).await?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut message = Message { start: start.trim_end().to_owned(), headers, body: Vec::new() };
    let length: usize = message.header("content-length").map_or(0, |v| v.parse().unwrap_or(0));
    message.body.resize(length, 0);
    reader.read_exact(&mut message.body).await?;
    Ok(Some(message))
}

fn error_response(status: &str, kind: &str) -> Message {
    let body = serde_json::json!({ "__type": kind, "message": format!("{kind} injected by the test proxy") });
    Message {
        start: format!("HTTP/1.1 {status}"),
        headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
        body: body.to_string().into_bytes(),
    }
}

async fn serve(client: TcpStream, upstream: &str, plan: Plan, counts: &Injected) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let server = TcpStream::connect(upstream).await?;
    let (server_read, mut server_write) = server.into_split();
    let mut server_read = BufReader::new(server_read);
    while let Some(mut request) = read_message(&mut client_read).await? {
        let is_put = request.header("x-amz-target").is_some_and(|t| t.ends_with(".PutRecords"));
        if request.header("x-amz-target").is_some_and(|t| t.ends_with(".ListShards")) {
            if plan.refuse_list_shards {
                counts.list_shards_refused.fetch_add(1, Ordering::SeqCst);
                client_write
                    .write_all(&error_response("400 Bad Request", "AccessDeniedException").encode())
                    .await?;
                continue;
            }
            tokio::time::sleep(plan.list_shards_delay).await;
        }
        let mut throttled = Vec::new();
        if is_put {
            let n = counts.put_requests.fetch_add(1, Ordering::SeqCst) + 1;
            if plan.fail_every_request > 0 && n.is_multiple_of(plan.fail_every_request) {
                let response = if (n / plan.fail_every_request) % 2 == 1 {
                    counts.internal_failures.fetch_add(1, Ordering::SeqCst);
                    error_response("500 Internal Server Error", "InternalFailure")
                } else {
                    counts.service_unavailable.fetch_add(1, Ordering::SeqCst);
                    error_response("503 Service Unavailable", "ServiceUnavailable")
                };
                client_write.write_all(&response.encode()).await?;
                continue;
            }
            tokio::time::sleep(plan.delay).await;
            if plan.throttle_every_entry > 0 {
                let mut body: Value = serde_json::from_slice(&request.body).unwrap();
                let records = body["Records"].as_array_mut().unwrap();
                let mut kept = Vec::new();
                for (index, record) in records.drain(..).enumerate() {
                    let entry = counts.entries.fetch_add(1, Ordering::SeqCst) + 1;
                    if entry.is_multiple_of(plan.throttle_every_entry) {
                        throttled.push(index);
                    } else {
                        kept.push(record);
                    }
                }
                *records = kept;
                request.body = body.to_string().into_bytes();
            }
        }
        let mut response = if throttled.is_empty() || request.body_has_records() {
            server_write.write_all(&request.encode()).await?;
            read_message(&mut server_read).await?.ok_or(std::io::ErrorKind::UnexpectedEof)?
        } else {
            // Every entry was throttled: nothing to forward.
            Message {
                start: "HTTP/1.1 200 OK".into(),
                headers: vec![("content-type".into(), "application/x-amz-json-1.1".into())],
                body: br#"{"FailedRecordCount":0,"Records":[]}"#.to_vec(),
            }
        };
        if !throttled.is_empty() && response.start.contains(" 200 ") {
            let mut body: Value = serde_json::from_slice(&response.body).unwrap();
            let results = body["Records"].as_array_mut().unwrap();
            for &index in &throttled {
                let failure = serde_json::json!({
                    "ErrorCode": "ProvisionedThroughputExceededException",
                    "ErrorMessage": "Rate exceeded for shard (injected by the test proxy)",
                });
                results.insert(index, failure);
            }
            counts.throttled_entries.fetch_add(throttled.len(), Ordering::SeqCst);
            let failed = body["FailedRecordCount"].as_u64().unwrap_or(0) + throttled.len() as u64;
            body["FailedRecordCount"] = failed.into();
            response.body = body.to_string().into_bytes();
        }
        client_write.write_all(&response.encode()).await?;
    }
    Ok(())
}
