//! Defences at the HTTP edge, before any handler (issue 12, items 1 and 2; `docs/security.md`).
//!
//! - **No `Transfer-Encoding`.** actix-http 3.20 (GHSA-9w4r-xc43-v236) ends a chunked body at a
//!   bare LF after the last chunk and reads the following bytes as trailers, so the body of the
//!   next request runs as a request of its own — one a front proxy never saw. Our API takes small
//!   JSON bodies that always have a length, so any request with `Transfer-Encoding` gets 400
//!   `unsupported_transfer_encoding` with `Connection: close`, and the connection is *poisoned*:
//!   actix may already have parsed what followed on it (it decodes a whole read buffer at once and
//!   queues pipelined requests even behind a `Connection: close` response), so any later request
//!   on it gets no response at all — the connection is aborted once the 400 has been written.
//! - **Body deadline.** A request whose `Content-Length` is never fulfilled held its connection
//!   forever (actix times out only idle connections and slow heads). The body must arrive within
//!   `body_read_timeout` of the head, else 408 `request_timeout` and the connection is closed. A
//!   handler that has its body is never cut off, however long it works.
//! - **Connections per client IP.** Each socket peer may hold `max_connections_per_ip` open
//!   connections (IPv6 counted per /64, which one subscriber usually holds); more get 429
//!   `too_many_connections` and are closed. Peers in `TRUSTED_PROXIES` are not counted: one proxy
//!   connection carries many clients, and the proxy is where per-client connection limits belong
//!   (e.g. nginx `limit_conn`). Only live connections count.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_util::{Stream, StreamExt};
use ipnet::{IpNet, Ipv6Net};

use crate::client_ip::normalize;
use crate::error::{ApiError, ErrorKind};
use crate::extract::fallback_lang;

/// Settings of the edge defences.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    /// Time from the request head to the end of its body (`BODY_READ_TIMEOUT_SECONDS`).
    pub body_read_timeout: Duration,
    /// Open connections per client IP; 0 = unlimited (`MAX_CONNECTIONS_PER_IP`).
    pub max_connections_per_ip: usize,
}

impl Default for EdgeSettings {
    fn default() -> Self {
        Self {
            body_read_timeout: Duration::from_secs(30),
            max_connections_per_ip: 64,
        }
    }
}

/// Counts open connections per client address, across all workers.
#[derive(Debug)]
pub struct ConnectionLimiter {
    max: usize,
    trusted: Vec<IpNet>,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl ConnectionLimiter {
    /// At most `max` connections per address (0 = unlimited); `trusted` peers are not counted.
    pub fn new(max: usize, trusted: Vec<IpNet>) -> Arc<Self> {
        Arc::new(Self {
            max,
            trusted,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// IPv4 addresses count alone, IPv6 per /64.
    fn key(ip: IpAddr) -> IpAddr {
        match normalize(ip) {
            IpAddr::V6(v6) => {
                Ipv6Net::new(v6, 64).map_or(IpAddr::V6(v6), |n| IpAddr::V6(n.network()))
            }
            v4 => v4,
        }
    }

    /// A slot for a new connection from `peer`; `Err(())` when its address is at the limit.
    fn acquire(self: &Arc<Self>, peer: IpAddr) -> Result<Option<Slot>, ()> {
        if self.max == 0 || self.trusted.iter().any(|n| n.contains(&normalize(peer))) {
            return Ok(None);
        }
        let key = Self::key(peer);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return Err(());
        }
        *n += 1;
        Ok(Some(Slot {
            limiter: self.clone(),
            key,
        }))
    }

    /// Open connections counted for `ip`'s key (for tests and metrics).
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&Self::key(ip)).copied().unwrap_or(0)
    }
}

/// One counted connection; dropping it (the connection ended) frees the slot.
#[derive(Debug)]
struct Slot {
    limiter: Arc<ConnectionLimiter>,
    key: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .limiter
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Per-connection state, stored in the connection's data by [`on_connect`].
#[derive(Clone)]
struct Connection(Rc<ConnectionState>);

struct ConnectionState {
    /// A request on this connection was refused: nothing after it may be answered.
    poisoned: Cell<bool>,
    /// The refused request's body, kept unread so that actix closes the connection after the
    /// response instead of draining (and parsing) what follows.
    held_payload: RefCell<Option<Payload>>,
    /// The client address was at its connection limit when this connection opened.
    over_limit: bool,
    _slot: Option<Slot>,
}

/// The `HttpServer::on_connect` hook: counts the connection against its peer's limit.
pub fn on_connect(
    limiter: Arc<ConnectionLimiter>,
) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    move |io, ext| {
        let peer = io
            .downcast_ref::<actix_web::rt::net::TcpStream>()
            .and_then(|s| s.peer_addr().ok());
        let (slot, over_limit) = match peer.map(|p| limiter.acquire(p.ip())) {
            Some(Ok(slot)) => (slot, false),
            Some(Err(())) => (None, true),
            None => (None, false),
        };
        ext.insert(Connection(Rc::new(ConnectionState {
            poisoned: Cell::new(false),
            held_payload: RefCell::new(None),
            over_limit,
            _slot: slot,
        })));
    }
}

/// The edge middleware (use with `actix_web::middleware::from_fn`), outside every middleware
/// that may answer by itself (CORS preflights) and inside request tracing and security headers,
/// which then cover its responses.
pub async fn guard<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
    body_read_timeout: Duration,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let conn = req.conn_data::<Connection>().cloned();
    if let Some(c) = &conn {
        if c.0.poisoned.get() {
            return Ok(abort(req).await);
        }
        if c.0.over_limit {
            tracing::info!("connection refused: too many connections from this address");
            return Ok(refuse(req, ErrorKind::TooManyConnections, conn.as_ref()));
        }
    }
    if req.headers().contains_key(header::TRANSFER_ENCODING) {
        tracing::info!("request with Transfer-Encoding refused; closing the connection");
        return Ok(refuse(
            req,
            ErrorKind::UnsupportedTransferEncoding,
            conn.as_ref(),
        ));
    }
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0");
    if !has_body {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    // The body reader sees an error when the deadline passes first; its response (whatever it
    // made of the error) is then replaced by 408.
    let timed_out = Rc::new(Cell::new(false));
    let payload = Deadline {
        inner: req.take_payload(),
        timer: Box::pin(actix_web::rt::time::sleep(body_read_timeout)),
        done: false,
        timed_out: timed_out.clone(),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(payload),
    });
    let res = next.call(req).await?;
    if !timed_out.get() {
        return Ok(res.map_into_left_body());
    }
    tracing::info!(
        timeout_secs = body_read_timeout.as_secs_f64(),
        "request body not received in time; closing the connection"
    );
    // actix closes a connection whose body was not read to the end; say so in the response and
    // answer nothing after it.
    if let Some(c) = &conn {
        c.0.poisoned.set(true);
    }
    let (http_req, _) = res.into_parts();
    let mut res =
        ApiError::new(ErrorKind::RequestTimeout, fallback_lang(&http_req)).error_response();
    res.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(http_req, res).map_into_right_body())
}

/// `kind` as a JSON error with `Connection: close`; the connection answers nothing more.
fn refuse<B>(
    mut req: ServiceRequest,
    kind: ErrorKind,
    conn: Option<&Connection>,
) -> ServiceResponse<EitherBody<B>> {
    let payload = req.take_payload();
    if let Some(c) = conn {
        c.0.poisoned.set(true);
        *c.0.held_payload.borrow_mut() = Some(payload);
    }
    let mut res = ApiError::new(kind, fallback_lang(req.request())).error_response();
    res.head_mut().set_connection_type(ConnectionType::Close);
    req.into_response(res).map_into_right_body()
}

/// A request that followed a refused one on the same connection (already parsed by actix, e.g.
/// a smuggled one): it gets no response. We let the dispatcher write out what it holds (the
/// refusal), then fail the response body, which makes actix drop the connection.
async fn abort<B>(req: ServiceRequest) -> ServiceResponse<EitherBody<B>> {
    tracing::info!("request after a refused request on the same connection: aborting it");
    yield_once().await;
    req.into_response(HttpResponse::Ok().body(BoxBody::new(Abort)))
        .map_into_right_body()
}

/// Returns `Pending` once (after asking to be polled again), so the HTTP dispatcher flushes its
/// write buffer in between.
async fn yield_once() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await;
}

/// A response body that fails at once: actix then drops the connection without writing it.
struct Abort;

impl MessageBody for Abort {
    type Error = std::io::Error;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(Some(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "request after a refused request on the same connection",
        ))))
    }
}

/// The request body, failing with `TimedOut` once `timer` fires before its end.
struct Deadline {
    inner: Payload,
    timer: Pin<Box<actix_web::rt::time::Sleep>>,
    done: bool,
    timed_out: Rc<Cell<bool>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(None | Some(Err(_))) = item {
            self.done = true;
            return item;
        }
        // Checked on data too: a body trickling in byte by byte is no faster than none.
        if self.timer.as_mut().poll(cx).is_ready() {
            self.done = true;
            self.timed_out.set(true);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request body not received in time",
            )))));
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_counted_per_address_and_per_ipv6_64_until_dropped() {
        let limiter = ConnectionLimiter::new(2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "203.0.113.5".parse().unwrap();
        let one = limiter.acquire(a).unwrap();
        let two = limiter
            .acquire("::ffff:203.0.113.5".parse().unwrap())
            .unwrap();
        assert!(one.is_some() && two.is_some());
        assert!(limiter.acquire(a).is_err());
        assert!(limiter.acquire("203.0.113.6".parse().unwrap()).is_ok());
        drop(one);
        assert_eq!(limiter.open(a), 1);
        let three = limiter.acquire(a).unwrap();
        assert!(three.is_some());
        drop((two, three));
        assert_eq!(limiter.open(a), 0);

        let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let _x = limiter.acquire(v6).unwrap();
        let _y = limiter
            .acquire("2001:db8:1:2:ffff::9".parse().unwrap())
            .unwrap();
        assert!(limiter.acquire("2001:db8:1:2::3".parse().unwrap()).is_err());
        assert!(limiter.acquire("2001:db8:1:3::1".parse().unwrap()).is_ok());

        // Trusted proxies are not counted; 0 means no limit.
        for _ in 0..5 {
            assert!(
                limiter
                    .acquire("10.1.2.3".parse().unwrap())
                    .unwrap()
                    .is_none()
            );
        }
        let unlimited = ConnectionLimiter::new(0, vec![]);
        for _ in 0..5 {
            assert!(unlimited.acquire(a).unwrap().is_none());
        }
    }
}
