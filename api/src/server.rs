//! The HTTP/1.1 server around the router: connection caps, hyper's
//! header-read timeout, graceful shutdown, and JSON for the errors hyper
//! answers by itself.
//!
//! Accepting: the loop takes a permit of [`ServeConfig::max_connections`]
//! before it accepts, so past the cap new connections wait in the kernel's
//! backlog instead of costing a descriptor and a task. An accepted
//! connection whose address (IPv6: its /64) already has
//! [`ServeConfig::max_connections_per_ip`] open is answered 429 with a JSON
//! body and closed before a byte is read.
//!
//! Serving: hyper's HTTP/1 connection with a timer, so that its
//! `header_read_timeout` applies: a connection must send a complete request
//! head within that time of opening, and again within that time of its
//! previous answer. That one setting closes silent connections, slowloris
//! senders (one byte every few seconds never completes a head) and idle
//! keep-alive connections alike. Request heads are capped at
//! [`MAX_HEADER_BYTES`]. Handlers are bounded by tower-http's request
//! timeout ([`crate::REQUEST_TIMEOUT`]) in the router.
//!
//! hyper answers a request head it cannot parse (400), one that is too
//! large (431) or a URI that is too long (414) itself, with an empty body,
//! before any middleware runs. [`JsonParseErrors`] wraps the socket and
//! rewrites exactly those answers into the API's JSON error shape.

use crate::Shared;
use crate::layers::SECURITY_HEADERS;
use crate::metrics::Throttle;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use proofpool_primitives::ip_key;
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// Default [`ServeConfig::header_read_timeout`].
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`ServeConfig::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 2048;
/// Default [`ServeConfig::max_connections_per_ip`].
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 64;
/// Largest request head (request line and headers) accepted; larger ones
/// are answered 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Open files a process keeps besides the API's connections (the database,
/// epoch files being served, listeners; in the devnet, the pool's own),
/// out of which [`ServeConfig::within_open_files`] takes half.
pub const FILES_BESIDES_CONNECTIONS: u64 = 256;

/// How long shutdown waits for requests in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(35);

/// The server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// A connection must send a complete request head within this long of
    /// opening, and of its previous answer (the keep-alive idle timeout).
    pub header_read_timeout: Duration,
    /// Most connections served at once; further ones wait to be accepted.
    pub max_connections: usize,
    /// Most connections from one address (IPv6: one /64); 0 for no limit,
    /// which an API behind a reverse proxy needs.
    pub max_connections_per_ip: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
        }
    }
}

impl ServeConfig {
    /// This config with `max_connections` lowered, if need be, to half of
    /// what `open_file_limit` leaves after [`FILES_BESIDES_CONNECTIONS`]: a
    /// connection is a descriptor, and past the limit `accept` fails for
    /// everyone in the process (in the devnet, the pool's miners too).
    pub fn within_open_files(self, open_file_limit: u64) -> Self {
        let room = open_file_limit.saturating_sub(FILES_BESIDES_CONNECTIONS) / 2;
        let room = usize::try_from(room).unwrap_or(usize::MAX).max(1);
        Self {
            max_connections: self.max_connections.min(room),
            ..self
        }
    }

    /// This config within the process's current open-file limit (see
    /// [`ServeConfig::within_open_files`]); unchanged if it cannot be read.
    pub fn within_process_limit(self) -> Self {
        match rlimit::Resource::NOFILE.get() {
            Ok((soft, _)) => self.within_open_files(soft),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open-file limit");
                self
            }
        }
    }
}

/// Serves `router` on `listener` under `config` until `shutdown` resolves,
/// then stops accepting and lets requests in flight finish (for at most
/// 35 s).
pub(crate) async fn run<F>(
    listener: TcpListener,
    router: Router,
    app: Shared,
    config: ServeConfig,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES.max(8192));
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let per_ip = Arc::new(PerIp::new(config.max_connections_per_ip));
    let refusals = Throttle::default();
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = limit.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(slot) = per_ip.admit(peer.ip()) else {
            app.metrics
                .connections_refused_per_ip
                .fetch_add(1, Ordering::Relaxed);
            if let Some(n) = refusals.hit(Instant::now()) {
                tracing::warn!(
                    refused = n,
                    ip = %ip_key(peer.ip()),
                    limit = config.max_connections_per_ip,
                    "connections refused: their address had max_connections_per_ip open \
                     (proofpool_api_connections_refused_total)"
                );
            }
            refuse(&stream, config.max_connections_per_ip);
            continue;
        };
        let io = TokioIo::new(JsonParseErrors::new(stream));
        let conn = http.serve_connection(io, TowerToHyperService::new(router.clone()));
        let conn = graceful.watch(conn);
        let app = app.clone();
        app.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        app.metrics
            .connections_total
            .fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            app.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight {} s after shutdown began; dropping them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}

/// Answers a connection over its address's cap with a 429 and closes it.
/// The answer is one non-blocking write into a fresh socket's empty send
/// buffer; if even that fails, the client sees the connection close.
fn refuse(stream: &TcpStream, limit: usize) {
    let body = format!(
        "{{\"error\":\"too many connections from your address (at most {limit}); close some and retry\"}}"
    );
    let answer = raw_answer("429 Too Many Requests", &body, &[("retry-after", "10")]);
    if let Err(e) = stream.try_write(&answer) {
        tracing::trace!(error = %e, "cannot answer a refused connection");
    }
}

/// A complete `connection: close` answer with a JSON body and the security
/// headers, for the answers made below the router.
fn raw_answer(status: &str, json: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        json.len()
    );
    for (name, value) in SECURITY_HEADERS.iter().chain(extra) {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}

/// Open connections per address key.
#[derive(Debug)]
struct PerIp {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerIp {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the limit.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        if self.limit == 0 {
            return Some(IpSlot {
                table: None,
                key: ip,
            });
        }
        let key = ip_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(key).or_default();
        if *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            table: Some(self.clone()),
            key,
        })
    }
}

/// One connection's place in [`PerIp`], given back on drop; addresses with
/// no connection left are forgotten, so the table holds only live ones.
struct IpSlot {
    table: Option<Arc<PerIp>>,
    key: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let Some(table) = &self.table else { return };
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// The answers hyper makes itself, recognised by their status line, with
/// the message each becomes.
const AUTOMATIC: [(&[u8], &str, &str); 3] = [
    (
        b"HTTP/1.1 400 Bad Request\r\n",
        "400 Bad Request",
        "the request is not valid HTTP/1.1",
    ),
    (
        b"HTTP/1.1 414 URI Too Long\r\n",
        "414 URI Too Long",
        "the request's URI is too long",
    ),
    (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        "431 Request Header Fields Too Large",
        "the request's head is too large (at most 16384 bytes)",
    ),
];

/// The JSON answer that replaces `head`, if `head` is one of hyper's own
/// error answers: one of [`AUTOMATIC`]'s status lines, no body
/// (`content-length: 0`), written whole. No handler answers so: an error
/// from the router always has a JSON body.
fn replacement(head: &[u8]) -> Option<Vec<u8>> {
    let (_, status, message) = AUTOMATIC.iter().find(|(line, ..)| head.starts_with(line))?;
    let empty = head
        .windows(21)
        .any(|w| w.eq_ignore_ascii_case(b"\r\ncontent-length: 0\r\n"));
    if !empty || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    Some(raw_answer(
        status,
        &format!("{{\"error\":\"{message}\"}}"),
        &[],
    ))
}

/// A socket that rewrites hyper's own error answers (see [`replacement`])
/// into JSON. It reports itself as not vectored, so hyper flattens each
/// answer's head into one buffer and hands it over in one write.
pub(crate) struct JsonParseErrors<S> {
    inner: S,
    /// A replacement answer and how much of it is written.
    pending: Option<(Vec<u8>, usize)>,
}

impl<S> JsonParseErrors<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self {
            inner,
            pending: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> JsonParseErrors<S> {
    /// Writes out the pending replacement, if any.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.pending {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonParseErrors<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonParseErrors<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        if let Some(answer) = replacement(buf) {
            this.pending = Some((answer, 0));
            // The rest goes out on the flush that follows.
            if let Poll::Ready(Err(e)) = this.drain(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrites_only_hypers_empty_error_answers() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper_431).unwrap()).unwrap();
        assert!(answer.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(answer.contains("content-type: application/json\r\n"));
        assert!(answer.contains("x-content-type-options: nosniff\r\n"));
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}\r\n", body.len())));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert!(json["error"].as_str().unwrap().contains("too large"));
        // A handler's 400 has a body; a 200 is never touched.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 57\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").is_none());
        // Half a head is not rewritten.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n").is_none());
    }

    #[test]
    fn the_connection_cap_keeps_to_half_the_spare_descriptors() {
        let c = ServeConfig::default();
        assert_eq!(c.within_open_files(1_048_576).max_connections, 2048);
        assert_eq!(c.within_open_files(1024).max_connections, 384);
        assert_eq!(c.within_open_files(100).max_connections, 1);
    }

    #[test]
    fn per_ip_slots_are_given_back() {
        let table = Arc::new(PerIp::new(2));
        let ip: IpAddr = "127.0.0.9".parse().unwrap();
        let a = table.admit(ip).unwrap();
        let b = table.admit(ip).unwrap();
        assert!(table.admit(ip).is_none());
        assert!(table.admit("127.0.0.10".parse().unwrap()).is_some());
        drop(a);
        let c = table.admit(ip).unwrap();
        drop((b, c));
        assert!(table.open.lock().unwrap().is_empty());
        let unlimited = Arc::new(PerIp::new(0));
        let slots: Vec<_> = (0..100).filter_map(|_| unlimited.admit(ip)).collect();
        assert_eq!(slots.len(), 100);
    }
}
