//! [`TcpProxy`]: a database that can be switched off and on without touching the server.
//!
//! The store under test connects to the proxy's port; [`TcpProxy::stop`] closes the listening
//! socket (new connections are refused, as by a stopped PostgreSQL) and cuts every relayed
//! connection; [`TcpProxy::start`] listens on the same port again. The shared PostgreSQL
//! cluster is never stopped.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A TCP relay from `127.0.0.1:port` to an upstream address.
pub struct TcpProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    running: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl TcpProxy {
    /// A running proxy on a free local port to `upstream`.
    pub fn start_to(upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let mut proxy = Self {
            addr: listener.local_addr()?,
            upstream,
            running: None,
            streams: Arc::default(),
        };
        proxy.serve(listener);
        Ok(proxy)
    }

    /// A proxy to the server of the `postgres://` URL `url`, and `url` rewritten to go through
    /// it.
    pub fn to_postgres(url: &str) -> io::Result<(Self, String)> {
        use std::net::ToSocketAddrs;
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or(rest);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host_port = if host_port.contains(':') {
            host_port.to_owned()
        } else {
            format!("{host_port}:5432")
        };
        let upstream = host_port
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("no address"))?;
        let proxy = Self::start_to(upstream)?;
        let url = proxy.rewrite_url(url);
        Ok((proxy, url))
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's.
    pub fn rewrite_url(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let userinfo = authority
            .rsplit_once('@')
            .map(|(u, _)| format!("{u}@"))
            .unwrap_or_default();
        format!("{scheme}://{userinfo}127.0.0.1:{}/{path}", self.port())
    }

    fn serve(&mut self, listener: TcpListener) {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, streams, upstream) = (stop.clone(), self.streams.clone(), self.upstream);
        let thread = std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let mut list = streams.lock().unwrap();
                for s in [&client, &server] {
                    if let Ok(c) = s.try_clone() {
                        list.push(c);
                    }
                }
                drop(list);
                relay(client, server);
            }
        });
        self.running = Some((stop, thread));
    }

    /// Refuses new connections and cuts the open ones.
    pub fn stop(&mut self) {
        if let Some((flag, thread)) = self.running.take() {
            flag.store(true, Ordering::SeqCst);
            // Wakes the accept loop, which then drops the listener.
            drop(TcpStream::connect(self.addr));
            thread.join().unwrap();
        }
        for s in self.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Listens on the same port again.
    pub fn start(&mut self) -> io::Result<()> {
        if self.running.is_none() {
            let listener = TcpListener::bind(self.addr)?;
            self.serve(listener);
        }
        Ok(())
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Copies both ways until either side closes.
fn relay(a: TcpStream, b: TcpStream) {
    for (mut from, mut to) in [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ]
    .into_iter()
    .filter_map(|(x, y)| Some((x.ok()?, y.ok()?)))
    {
        std::thread::spawn(move || {
            let _ = io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Both);
            let _ = from.shutdown(Shutdown::Both);
        });
    }
}
