//! A forward HTTP proxy on 127.0.0.1, as a corporate proxy would be: clients send it absolute-form requests
//! (`POST http://127.0.0.1:PORT/ HTTP/1.1`) with `Proxy-Authorization`; it checks the credentials (407
//! otherwise), forwards the request in origin form to the named host and relays the answer. It counts what
//! it forwarded and refused, so a test can tell that a client really went through it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::proxy::{Message, read_message};

/// What went through.
#[derive(Debug, Default)]
pub struct Forwarded {
    /// Requests forwarded, with the right credentials.
    pub requests: AtomicUsize,
    /// Requests refused with 407: no or wrong credentials, or not in absolute form.
    pub refused: AtomicUsize,
}

/// A running proxy; stopped when dropped.
pub struct ForwardProxy {
    port: u16,
    pub forwarded: Arc<Forwarded>,
    task: tokio::task::JoinHandle<()>,
}

impl ForwardProxy {
    /// A proxy accepting `user`/`password` with basic authentication.
    pub async fn start(user: &str, password: &str) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let credentials = format!("{user}:{password}");
        let expected = Arc::new(format!("Basic {}", aws_smithy_types::base64::encode(credentials)));
        let forwarded = Arc::new(Forwarded::default());
        let counts = forwarded.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (expected, counts) = (expected.clone(), counts.clone());
                tokio::spawn(async move {
                    let _ = serve(client, &expected, &counts).await;
                });
            }
        });
        ForwardProxy { port, forwarded, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(client: TcpStream, expected: &str, counts: &Forwarded) -> std::io::Result<()> {
    let (client_read, mut client_write) = client.into_split();
    let mut client_read = BufReader::new(client_read);
    let mut upstream: Option<(
        String,
        BufReader<tokio::net::tcp::OwnedReadHalf>,
        tokio::net::tcp::OwnedWriteHalf,
    )> = None;
    while let Some(mut request) = read_message(&mut client_read).await? {
        let target = absolute_target(&request.start);
        let authorized = request.header("proxy-authorization") == Some(expected);
        let Some((method, authority, path, version)) = target.filter(|_| authorized) else {
            counts.refused.fetch_add(1, Ordering::SeqCst);
            let refusal = Message {
                start: "HTTP/1.1 407 Proxy Authentication Required".into(),
                headers: vec![("proxy-authenticate".into(), "Basic realm=\"test\"".into())],
                body: Vec::new(),
            };
            client_write.write_all(&refusal.encode()).await?;
            continue;
        };
        counts.requests.fetch_add(1, Ordering::SeqCst);
        request.start = format!("{method} {path} {version}");
        request.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("proxy-authorization"));
        if upstream.as_ref().is_none_or(|(connected, _, _)| *connected != authority) {
            let (read, write) = TcpStream::connect(&authority).await?.into_split();
            upstream = Some((authority, BufReader::new(read), write));
        }
        let Some((_, server_read, server_write)) = upstream.as_mut() else { unreachable!() };
        server_write.write_all(&request.encode()).await?;
        let response = read_message(server_read).await?.ok_or(std::io::ErrorKind::UnexpectedEof)?;
        client_write.write_all(&response.encode()).await?;
    }
    Ok(())
}

/// `POST http://host:port/path HTTP/1.1` as (method, authority, path, version).
fn absolute_target(start: &str) -> Option<(String, String, String, String)> {
    let mut parts = start.split(' ');
    let (method, uri, version) = (parts.next()?, parts.next()?, parts.next()?);
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |slash| rest.split_at(slash));
    Some((method.into(), authority.into(), path.into(), version.into()))
}
