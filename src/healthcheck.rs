//! `marque healthcheck`: asks the local service's `GET /health/ready` and exits 0 on `200`, 1
//! otherwise. It is the container image's `HEALTHCHECK`, so the image needs no curl: one
//! HTTP/1.1 request over a [`TcpStream`] with a deadline, no HTTP client stack.
//!
//! The address is the service's own `HOST` and `PORT` (a wildcard `HOST` such as `0.0.0.0` is
//! asked on the loopback address of its family), read from the same settings as `serve`.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::Settings;

/// How long the whole check may take: `/health/ready` answers within 1 s by design (a market
/// database that does not answer in time counts as down), so 3 s leaves room for a busy host.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Why the service is not ready.
#[derive(Debug, thiserror::Error)]
pub enum HealthcheckError {
    /// `HOST` does not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Connecting, writing or reading failed (refused, timed out, reset).
    #[error("GET /health/ready at {addr}")]
    Io {
        /// The address asked.
        addr: SocketAddr,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// The service answered with another status than 200 (or not HTTP at all).
    #[error("GET /health/ready at {addr} answered `{status_line}`")]
    NotReady {
        /// The address asked.
        addr: SocketAddr,
        /// The answer's first line.
        status_line: String,
    },
}

/// `http://{host}:{port}` where this process can reach the service of `settings` (a wildcard
/// `HOST` becomes the loopback address).
pub fn local_base_url(settings: &Settings) -> String {
    let host = connect_host(settings.server.host.as_str());
    let port = settings.server.port.get();
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V6(ip)) => format!("http://[{ip}]:{port}"),
        _ => format!("http://{host}:{port}"),
    }
}

/// The service's base URL for clients: `PUBLIC_BASE_URL`, else [`local_base_url`].
pub fn public_base_url(settings: &Settings) -> String {
    match &settings.delivery.public_base_url {
        Some(url) => url.as_str().to_owned(),
        None => local_base_url(settings),
    }
}

/// Asks `GET /health/ready` of the service of `settings`, within [`TIMEOUT`].
pub fn check(settings: &Settings) -> Result<(), HealthcheckError> {
    let host = connect_host(settings.server.host.as_str());
    let port = u16::try_from(settings.server.port.get()).unwrap_or(0);
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|_| HealthcheckError::Resolve(host.clone()))?
            .collect(),
    };
    let mut last = HealthcheckError::Resolve(host.clone());
    for addr in addrs {
        match ask(addr, &host, TIMEOUT) {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The host to connect to for a listen address: wildcards become loopback.
fn connect_host(host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_unspecified() => Ipv4Addr::LOCALHOST.to_string(),
        Ok(IpAddr::V6(ip)) if ip.is_unspecified() => Ipv6Addr::LOCALHOST.to_string(),
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_owned(),
    }
}

/// One request to `addr`; `Ok` when the status is 200.
fn ask(addr: SocketAddr, host: &str, timeout: Duration) -> Result<(), HealthcheckError> {
    let io = |source| HealthcheckError::Io { addr, source };
    let deadline = Instant::now() + timeout;
    let left = || {
        deadline
            .saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_write_timeout(Some(left())).map_err(io)?;
    let host_header = match addr.ip() {
        IpAddr::V6(_) if host.parse::<Ipv6Addr>().is_ok() => format!("[{host}]:{}", addr.port()),
        _ => format!("{host}:{}", addr.port()),
    };
    write!(
        stream,
        "GET /health/ready HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: marque-healthcheck\r\n\
         Connection: close\r\n\r\n"
    )
    .map_err(io)?;
    // Only the status line matters; it is the first line of the answer.
    let mut head = Vec::with_capacity(256);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 1024 {
        stream.set_read_timeout(Some(left())).map_err(io)?;
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or_default().trim().to_owned();
    let mut parts = status_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some(version), Some("200")) if version.starts_with("HTTP/1.") => Ok(()),
        _ => Err(HealthcheckError::NotReady { addr, status_line }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_asked_on_loopback() {
        assert_eq!(connect_host("0.0.0.0"), "127.0.0.1");
        assert_eq!(connect_host("::"), "::1");
        assert_eq!(connect_host("[::]"), "::1");
        assert_eq!(connect_host("10.0.0.7"), "10.0.0.7");
        assert_eq!(connect_host("localhost"), "localhost");
    }
}
