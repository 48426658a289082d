//! The access log records the client IP the limits use (issue 12, item 13): `X-Forwarded-For` is
//! believed only from `TRUSTED_PROXIES`, never just because a client sent it. Runs the real server
//! (`marque_api::server`) over TCP with a global log capture, so it is its own test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use marque_api::{ApiState, HttpSettings};
mod common;

use common::{Logs, capture_logs};

/// Starts the server with `trusted` proxies; returns its address.
fn start(trusted: &[&str]) -> String {
    let (services, data) = common::state(Utc::now(), "+996555000001");
    // The temporary databases must outlive the server, which runs until the test process ends.
    std::mem::forget(services);
    let mut state: ApiState = Arc::try_unwrap(data.into_inner()).ok().unwrap();
    state.trusted_proxies = trusted.iter().map(|t| t.parse().unwrap()).collect();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let settings = HttpSettings {
        workers: Some(1),
        ..HttpSettings::default()
    };
    let server = marque_api::server(listener, state, settings).unwrap();
    actix_web::rt::spawn(server);
    addr
}

/// Sends one GET with `X-Forwarded-For: xff` and marks it with `tag` (in the target).
async fn get(addr: &str, xff: &str, tag: &str) {
    get_with(addr, &format!("X-Forwarded-For: {xff}"), tag).await;
}

/// Sends one GET with the header line `header` and marks it with `tag` (in the target).
async fn get_with(addr: &str, header: &str, tag: &str) {
    let (addr, req) = (
        addr.to_owned(),
        format!(
            "GET /api/v1/auth/markets?{tag} HTTP/1.1\r\nHost: x\r\n{header}\r\n\
             Connection: close\r\n\r\n"
        ),
    );
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    })
    .await
    .unwrap();
}

/// The access-log line (span close) of the request marked `tag`.
async fn access_line(logs: &Logs, tag: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(line) = logs
            .text()
            .lines()
            .find(|l| l.contains(&format!("?{tag}")) && l.contains("close"))
        {
            return line.to_owned();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{}", logs.text());
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn the_access_log_records_the_client_ip_the_limits_use() {
    let logs = capture_logs(tracing::Level::INFO);

    // No trusted proxy: the socket peer, whatever the client writes.
    let direct = start(&[]);
    get(&direct, "6.6.6.6", "direct").await;
    let line = access_line(&logs, "direct").await;
    assert!(line.contains("http.client_ip=127.0.0.1"), "{line}");
    assert!(!line.contains("6.6.6.6"), "{line}");

    // Behind a trusted proxy that appends ip:port: the entry it wrote, not the client's own.
    let proxied = start(&["127.0.0.1/32"]);
    get(&proxied, "6.6.6.6, 198.51.100.7:5678", "proxied").await;
    let line = access_line(&logs, "proxied").await;
    assert!(line.contains("http.client_ip=198.51.100.7"), "{line}");
    assert!(!line.contains("6.6.6.6"), "{line}");

    // An entry the proxy chain cannot vouch for: the last trusted hop.
    get(&proxied, "6.6.6.6, unknown", "unreadable").await;
    let line = access_line(&logs, "unreadable").await;
    assert!(line.contains("http.client_ip=127.0.0.1"), "{line}");

    // The request id (issue 11): the incoming one when sane, else a new one, in the request's
    // span, so on every line logged while it runs.
    get_with(&direct, "X-Request-Id: ticket-4711", "with-id").await;
    let line = access_line(&logs, "with-id").await;
    assert!(line.contains("request_id=ticket-4711"), "{line}");
    get_with(&direct, "X-Request-Id: no good", "bad-id").await;
    let line = access_line(&logs, "bad-id").await;
    assert!(line.contains("request_id="), "{line}");
    assert!(!line.contains("no good"), "{line}");
}

/// Client errors are the client's: no WARN (or ERROR) line for a 404, 405 or a bad body; the
/// access line notes the status.
#[actix_web::test]
async fn client_errors_are_not_warnings() {
    let logs = capture_logs(tracing::Level::INFO);
    let addr = start(&[]);
    for (request, tag) in [
        ("GET /api/v1/nope?{tag} HTTP/1.1\r\nHost: x\r\n", "e404"),
        ("PATCH /health?{tag} HTTP/1.1\r\nHost: x\r\n", "e405"),
        (
            "POST /api/v1/auth/send-code?{tag} HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: 1\r\n\r\n{",
            "e400",
        ),
    ] {
        let request = request.replace("{tag}", tag);
        let request = if request.ends_with('{') {
            request.replace("\r\n\r\n{", "\r\nConnection: close\r\n\r\n{")
        } else {
            format!("{request}Connection: close\r\n\r\n")
        };
        raw(&addr, request).await;
        let line = access_line(&logs, tag).await;
        assert!(line.contains(" INFO "), "{line}");
        let text = logs.text();
        let noisy: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("?{tag}")))
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        assert!(noisy.is_empty(), "{noisy:?}");
    }
}

/// Sends `request` as it is and reads the answer.
async fn raw(addr: &str, request: String) {
    let addr = addr.to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert!(
            out.starts_with(b"HTTP/1.1 4"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    })
    .await
    .unwrap();
}
