//! A protocol bridge on 127.0.0.1 between aws-sdk-cloudwatch and moto.
//!
//! The SDK speaks CloudWatch's Smithy RPC v2 CBOR protocol only; moto implements CloudWatch over the awsQuery
//! and AWS JSON 1.0 protocols and has no plan for CBOR (getmoto/moto#9195). Both protocols carry the same
//! Smithy data model, so the bridge decodes each CBOR request body into the equivalent JSON (timestamps,
//! CBOR tag 1, become epoch seconds as AWS JSON writes them), forwards it to moto as an AWS JSON 1.0
//! request of the same operation (credentials and signature headers passed through; moto does not check
//! signatures), and encodes moto's JSON answer back into CBOR. It counts the requests it bridged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};
use serde_json::{Map, Number, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::{Message, read_message};

/// The CloudWatch service name in both protocols' operation paths and targets.
const SERVICE: &str = "GraniteServiceVersion20100801";

/// A running bridge; stopped when dropped.
pub struct CborBridge {
    endpoint: String,
    /// Requests bridged, by outcome.
    pub forwarded: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CborBridge {
    /// A bridge to moto at `upstream` (`http://127.0.0.1:PORT`).
    pub async fn start(upstream: &str) -> CborBridge {
        let upstream = upstream.strip_prefix("http://").expect("an http endpoint").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let forwarded = Arc::new(AtomicUsize::new(0));
        let counter = forwarded.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, counter) = (upstream.clone(), counter.clone());
                tokio::spawn(async move {
                    if let Err(error) = serve(client, &upstream, &counter).await {
                        eprintln!("cbor bridge: {error}");
                    }
                });
            }
        });
        CborBridge { endpoint, forwarded, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

impl Drop for CborBridge {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(client: TcpStream, upstream: &str, forwarded: &AtomicUsize) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    while let Some(request) = read_message(&mut client_read).await? {
        let operation = request
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|path| path.strip_prefix(&format!("/service/{SERVICE}/operation/")))
            .map(str::to_owned)
            .ok_or_else(|| std::io::Error::other(format!("not a CBOR operation: {}", request.start)))?;
        let input = if request.body.is_empty() { Value::Object(Map::new()) } else { to_json(&request.body)? };
        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .filter(|(name, _)| {
                let name = name.to_ascii_lowercase();
                name == "authorization" || name.starts_with("x-amz-date") || name == "x-amz-security-token"
            })
            .cloned()
            .collect();
        headers.push(("host".into(), upstream.into()));
        headers.push(("content-type".into(), "application/x-amz-json-1.0".into()));
        headers.push(("x-amz-target".into(), format!("{SERVICE}.{operation}")));
        let forward =
            Message { start: "POST / HTTP/1.1".into(), headers, body: input.to_string().into_bytes() };
        let server = TcpStream::connect(upstream).await?;
        let (server_read, mut server_write) = server.into_split();
        server_write.write_all(&forward.encode()).await?;
        let answer =
            read_message(&mut BufReader::new(server_read)).await?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        forwarded.fetch_add(1, Ordering::SeqCst);
        let output: Value = if answer.body.is_empty() {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice(&answer.body).map_err(std::io::Error::other)?
        };
        let status = answer.start.split_once(' ').map_or("500 Internal Server Error", |(_, status)| status);
        let response = Message {
            start: format!("HTTP/1.1 {status}"),
            headers: vec![
                ("content-type".into(), "application/cbor".into()),
                ("smithy-protocol".into(), "rpc-v2-cbor".into()),
            ],
            body: to_cbor(&output)?,
        };
        client_write.write_all(&response.encode()).await?;
    }
    Ok(())
}

fn cbor_error(error: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(format!("CBOR: {error}"))
}

/// The JSON value of a CBOR document.
fn to_json(bytes: &[u8]) -> std::io::Result<Value> {
    decode(&mut Decoder::new(bytes))
}

fn decode(d: &mut Decoder<'_>) -> std::io::Result<Value> {
    let number =
        |n: Option<Number>| n.map(Value::Number).ok_or_else(|| cbor_error("a number JSON cannot hold"));
    Ok(match d.datatype().map_err(cbor_error)? {
        Type::Bool => Value::Bool(d.bool().map_err(cbor_error)?),
        Type::Null | Type::Undefined => {
            d.skip().map_err(cbor_error)?;
            Value::Null
        }
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => number(Some(d.u64().map_err(cbor_error)?.into()))?,
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => number(Some(d.i64().map_err(cbor_error)?.into()))?,
        Type::F16 | Type::F32 | Type::F64 => number(Number::from_f64(d.f64().map_err(cbor_error)?))?,
        Type::String | Type::StringIndef => {
            let mut text = String::new();
            for chunk in d.str_iter().map_err(cbor_error)? {
                text.push_str(chunk.map_err(cbor_error)?);
            }
            Value::String(text)
        }
        Type::Array | Type::ArrayIndef => {
            let length = d.array().map_err(cbor_error)?;
            let mut items = Vec::new();
            while length.is_none_or(|n| (items.len() as u64) < n) {
                if length.is_none() && d.datatype().map_err(cbor_error)? == Type::Break {
                    d.skip().map_err(cbor_error)?;
                    break;
                }
                items.push(decode(d)?);
            }
            Value::Array(items)
        }
        Type::Map | Type::MapIndef => {
            let length = d.map().map_err(cbor_error)?;
            let mut entries = Map::new();
            let mut read = 0u64;
            while length.is_none_or(|n| read < n) {
                if length.is_none() && d.datatype().map_err(cbor_error)? == Type::Break {
                    d.skip().map_err(cbor_error)?;
                    break;
                }
                let key = d.str().map_err(cbor_error)?.to_owned();
                entries.insert(key, decode(d)?);
                read += 1;
            }
            Value::Object(entries)
        }
        // Timestamps: tag 1 over epoch seconds, which is how AWS JSON writes them.
        Type::Tag => {
            let tag = d.tag().map_err(cbor_error)?;
            if tag != Tag::new(1) {
                return Err(cbor_error(format!("unexpected tag {tag:?}")));
            }
            decode(d)?
        }
        other => return Err(cbor_error(format!("unexpected {other:?}"))),
    })
}

/// The CBOR document of a JSON value (answers hold maps, arrays, strings and numbers).
fn to_cbor(value: &Value) -> std::io::Result<Vec<u8>> {
    let mut e = Encoder::new(Vec::new());
    encode(&mut e, value)?;
    Ok(e.into_writer())
}

fn encode(e: &mut Encoder<Vec<u8>>, value: &Value) -> std::io::Result<()> {
    match value {
        Value::Null => e.null().map(drop),
        Value::Bool(b) => e.bool(*b).map(drop),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => e.u64(u).map(drop),
            (None, Some(i)) => e.i64(i).map(drop),
            _ => e.f64(n.as_f64().unwrap_or(f64::NAN)).map(drop),
        },
        Value::String(s) => e.str(s).map(drop),
        Value::Array(items) => {
            e.array(items.len() as u64).map_err(cbor_error)?;
            return items.iter().try_for_each(|item| encode(e, item));
        }
        Value::Object(entries) => {
            e.map(entries.len() as u64).map_err(cbor_error)?;
            for (key, item) in entries {
                e.str(key).map_err(cbor_error)?;
                encode(e, item)?;
            }
            return Ok(());
        }
    }
    .map_err(cbor_error)
}
