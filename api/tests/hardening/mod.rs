//! The API's public surface as an attacker probes it, over loopback on the
//! real server: bounded metrics under odd methods and paths, the header-read
//! (and keep-alive idle) timeout against silent, slowloris and idle
//! connections, the per-address and total connection caps, JSON errors from
//! every layer (axum's 405, hyper's own 400 and 431, unknown paths), the
//! security headers, and short echoes of long bad input.
//!
//! Each scenario connects from its own loopback address (127.0.0.x), so one
//! scenario's per-address counts never touch another's.

use crate::common::*;
use proofpool_api::types::ErrorBody;
use proofpool_api::{ApiState, ServeConfig};
use proofpool_devtools::TempDir;
use proofpool_store::{Store, StoreOptions};
use reqwest::StatusCode;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// An API over an empty store, with a web app of two files.
async fn server(config: ServeConfig) -> (TempDir, Server, SocketAddr) {
    let dir = TempDir::new("api-hardening").unwrap();
    let store = Store::open(&dir.sqlite_url("api.db"), &StoreOptions::default())
        .await
        .unwrap();
    let web = dir.path().join("web");
    std::fs::create_dir_all(web.join("assets")).unwrap();
    std::fs::write(
        web.join("index.html"),
        "<!doctype html><title>proofpool</title>",
    )
    .unwrap();
    std::fs::write(web.join("assets/app.js"), "console.log(1)").unwrap();
    let mut state = ApiState::new(store, dir.path().join("epochs"), domain());
    state.web_dir = Some(web);
    let api = Server::start_with(state, config).await;
    let addr = api.base.trim_start_matches("http://").parse().unwrap();
    (dir, api, addr)
}

/// A connection to `addr` from 127.0.0.`from`.
async fn connect_from(from: u8, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, from), 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// An answer as read off the socket.
#[derive(Debug)]
struct Answer {
    status: u16,
    /// The head, lowercased.
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::trim)
        })
    }

    fn error(&self) -> ErrorBody {
        assert!(
            self.header("content-type")
                .is_some_and(|ct| ct.starts_with("application/json")),
            "not JSON: {self:?}"
        );
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    fn has_security_headers(&self) -> bool {
        self.header("content-security-policy")
            .is_some_and(|v| v.contains("frame-ancestors 'none'"))
            && self.header("x-content-type-options") == Some("nosniff")
            && self.header("x-frame-options") == Some("deny")
            && self.header("referrer-policy") == Some("no-referrer")
    }
}

/// Reads one answer (head and a `content-length` body) from `stream`.
async fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .expect("an answer within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + len {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the body was cut short");
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Some(Answer { status, head, body })
}

/// Sends `request` on a new connection from 127.0.0.`from` and reads the answer.
async fn exchange(from: u8, addr: SocketAddr, request: &[u8]) -> Answer {
    let mut stream = connect_from(from, addr).await;
    stream.write_all(request).await.unwrap();
    read_answer(&mut stream).await.expect("an answer")
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes()
}

/// How long until the server closes `stream` (reading and dropping
/// whatever it sends), at most `limit`.
async fn closed_after(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut sink = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut sink)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// The `/metrics` page's lines.
async fn metric_lines(api: &Server) -> Vec<String> {
    let text = api.raw("/metrics").await.text().await.unwrap();
    text.lines().map(str::to_owned).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_bounded_under_odd_methods_and_paths() {
    let (_dir, api, addr) = server(ServeConfig::default()).await;
    // Every kind of request once: known and odd methods on a route, on an
    // unknown API path, on the web app's pages and on unknown files.
    let kinds = |i: usize| -> Vec<Vec<u8>> {
        let odd = format!("X{}{}", "M".repeat(i % 900), i);
        vec![
            format!("{odd} /api/v1/summary HTTP/1.1\r\nhost: x\r\n\r\n").into_bytes(),
            format!(
                "{odd} /nowhere/{i}/{} HTTP/1.1\r\nhost: x\r\n\r\n",
                "p".repeat(i % 500)
            )
            .into_bytes(),
            get(&format!("/api/v1/no/{i}{}", "q".repeat(i % 700))),
            get(&format!("/miner/0x{i:040x}")),
            get(&format!("/assets/{i}.js")),
            get(&format!("/api/v1/epochs/{i}/proof/0x{i:040x}")),
            format!("POST /api/v1/miners/{i} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n")
                .into_bytes(),
        ]
    };
    // Every series the flood can touch, once (a long path segment is a 404
    // whatever the method; a short one, 405 for any method but GET), and
    // /metrics itself.
    for i in [1, 300] {
        for request in kinds(i) {
            exchange(2, addr, &request).await;
        }
    }
    metric_lines(&api).await;
    let before = metric_lines(&api).await;
    let mut stream = connect_from(2, addr).await;
    for i in 1..=1000 {
        for request in kinds(i) {
            stream.write_all(&request).await.unwrap();
            let answer = read_answer(&mut stream).await.expect("kept alive");
            assert!(answer.status >= 200, "{answer:?}");
        }
    }
    let after = metric_lines(&api).await;
    assert_eq!(
        before.len(),
        after.len(),
        "new series appeared: {:?}",
        after
            .iter()
            .filter(|l| !before
                .iter()
                .any(|b| b.split(' ').next() == l.split(' ').next()))
            .collect::<Vec<_>>()
    );
    assert!(
        after.iter().any(|l| l.starts_with(
            "proofpool_api_requests_total{route=\"/api/v1/summary\",method=\"other\",status=\"405\"} 1002"
        )),
        "{after:#?}"
    );
    assert!(
        !after.iter().any(|l| l.contains("XMM")),
        "a raw method leaked into a label"
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_idle_connections_are_closed_by_the_header_read_timeout() {
    let timeout = Duration::from_secs(1);
    let (_dir, api, addr) = server(ServeConfig {
        header_read_timeout: timeout,
        ..ServeConfig::default()
    })
    .await;
    let limit = Duration::from_secs(5);

    // Silent: connects and sends nothing.
    let mut silent = connect_from(3, addr).await;
    let after = closed_after(&mut silent, limit).await.expect("closed");
    assert!(after >= timeout - Duration::from_millis(100), "{after:?}");

    // Slowloris: a request head one byte every 200 ms, never finished
    // within the timeout.
    let mut slow = connect_from(3, addr).await;
    let started = Instant::now();
    let head = b"GET /api/v1/summary HTTP/1.1\r\nhost: x\r\nx-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let mut closed = false;
    for &byte in head {
        if slow.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut probe = [0u8; 64];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(200), slow.read(&mut probe)).await
        {
            closed = true;
            break;
        }
    }
    assert!(closed, "a slowloris sender finished its head");
    assert!(started.elapsed() < limit, "{:?}", started.elapsed());

    // Idle keep-alive: one request answered, then nothing.
    let mut idle = connect_from(3, addr).await;
    idle.write_all(&get("/healthz")).await.unwrap();
    let answer = read_answer(&mut idle).await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.has_security_headers(), "{answer:?}");
    let after = closed_after(&mut idle, limit)
        .await
        .expect("closed when idle");
    assert!(after >= timeout - Duration::from_millis(100), "{after:?}");

    // A client that keeps asking is served for as long as it asks.
    let mut busy = connect_from(3, addr).await;
    for _ in 0..6 {
        busy.write_all(&get("/healthz")).await.unwrap();
        assert_eq!(read_answer(&mut busy).await.unwrap().status, 200);
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_capped_per_address_and_in_total() {
    let (_dir, api, addr) = server(ServeConfig {
        header_read_timeout: Duration::from_secs(30),
        max_connections: 6,
        max_connections_per_ip: 4,
    })
    .await;
    // Four from one address are served; the fifth is told why and closed.
    let mut four = Vec::new();
    for _ in 0..4 {
        let mut s = connect_from(4, addr).await;
        s.write_all(&get("/healthz")).await.unwrap();
        assert_eq!(read_answer(&mut s).await.unwrap().status, 200);
        four.push(s);
    }
    let mut fifth = connect_from(4, addr).await;
    let refused = read_answer(&mut fifth).await.expect("a 429");
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.error().error.contains("at most 4"), "{refused:?}");
    assert!(refused.has_security_headers());
    assert!(
        closed_after(&mut fifth, Duration::from_secs(2))
            .await
            .is_some()
    );
    // Another address still gets in, up to the total of six.
    let mut two = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(5, addr).await;
        s.write_all(&get("/healthz")).await.unwrap();
        assert_eq!(read_answer(&mut s).await.unwrap().status, 200);
        two.push(s);
    }
    // The seventh waits in the backlog, unanswered, until one closes.
    let mut seventh = connect_from(6, addr).await;
    seventh.write_all(&get("/healthz")).await.unwrap();
    let mut probe = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(700), seventh.read(&mut probe))
            .await
            .is_err(),
        "served past max_connections"
    );
    drop(two.pop());
    assert_eq!(read_answer(&mut seventh).await.unwrap().status, 200);
    drop((four, two, seventh));
    let m = api.raw("/metrics").await.text().await.unwrap();
    assert!(
        m.contains("proofpool_api_connections_refused_total{reason=\"per_ip\"} 1"),
        "{m}"
    );
    api.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_with_security_headers() {
    let (_dir, api, addr) = server(ServeConfig::default()).await;

    // axum's 405, with its Allow header kept.
    let r = exchange(
        7,
        addr,
        b"POST /api/v1/summary HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 405);
    assert!(r.error().error.contains("POST is not allowed"), "{r:?}");
    assert!(
        r.header("allow").is_some_and(|a| a.contains("get")),
        "{r:?}"
    );
    assert!(r.has_security_headers(), "{r:?}");

    // hyper's own answers: not HTTP, a head too large, a URI too long.
    let r = exchange(7, addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().error.contains("not valid HTTP"), "{r:?}");
    assert!(r.has_security_headers(), "{r:?}");
    let big = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    let r = exchange(7, addr, big.as_bytes()).await;
    assert_eq!(r.status, 431, "{r:?}");
    assert!(r.error().error.contains("too large"), "{r:?}");
    let long_uri = get(&format!("/api/v1/miners/0x{}", "a".repeat(70_000)));
    let mut s = connect_from(7, addr).await;
    // The server may answer and close before it has read it all.
    let _unread = s.write_all(&long_uri).await;
    let r = read_answer(&mut s).await.expect("an answer");
    assert!(matches!(r.status, 414 | 431), "{r:?}");
    assert!(!r.error().error.is_empty());

    // Unknown API paths, with and without the trailing slash, never the app.
    for path in ["/api/", "/api", "/api/v1/", "/api/v1/miners/0x1/extra"] {
        let r = exchange(7, addr, &get(path)).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.error().error.contains("no API endpoint"), "{path}: {r:?}");
    }
    // Unknown files are 404s; the app's pages and files are served.
    for path in [
        "/.env",
        "/x.js",
        "/assets/nope.js",
        "/assets/",
        "/miner",
        "/wp-login.php",
    ] {
        let r = exchange(7, addr, &get(path)).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert!(r.error().error.contains("nothing at"), "{path}: {r:?}");
        assert!(r.has_security_headers(), "{r:?}");
    }
    for path in [
        "/",
        "/auditor",
        "/auditor/",
        &format!("/miner/{A}"),
        &format!("/miner/{A}/"),
    ] {
        let r = exchange(7, addr, &get(path)).await;
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert!(r.body.contains("<title>proofpool</title>"), "{path}");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.has_security_headers(), "{path}: {r:?}");
    }
    let r = exchange(7, addr, &get("/assets/app.js")).await;
    assert_eq!((r.status, r.body.as_str()), (200, "console.log(1)"));
    assert!(r.has_security_headers(), "{r:?}");

    // Long bad input is quoted back only as a short prefix.
    let long = "z".repeat(10_000);
    for path in [
        format!("/api/v1/miners/{long}"),
        format!("/api/v1/epochs/{long}"),
        format!("/api/v1/miners?{long}=1"),
        format!("/api/v1/miners?limit={long}"),
        format!("/api/v1/{long}"),
        format!("/{long}"),
    ] {
        let r = exchange(7, addr, &get(&path)).await;
        assert!(matches!(r.status, 400 | 404), "{r:?}");
        let e = r.error().error;
        assert!(
            e.len() < 400,
            "{} bytes of error for {} bytes of input",
            e.len(),
            path.len()
        );
        assert!(e.contains("(10000 bytes)") || e.contains("bytes)"), "{e}");
    }
    api.err(
        "/api/v1/nope",
        StatusCode::NOT_FOUND,
        None,
        "no API endpoint",
    )
    .await;
    api.shutdown().await;
}
