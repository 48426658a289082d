//! A real SMTP server for email tests (issue 10): mailin's SMTP state machine (RFC 5321) on a
//! socket of our own, on `127.0.0.1` and a free port, capturing every accepted message; plain,
//! with STARTTLS (RFC 3207) or with implicit TLS (RFC 8314) on a self-signed certificate
//! (rcgen, rustls with ring).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder};
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// How the server secures connections.
#[derive(Clone)]
enum Security {
    Plain,
    StartTls(Arc<ServerConfig>),
    Implicit(Arc<ServerConfig>),
}

/// One message the server accepted: the envelope and the raw data (headers and body, as sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedMail {
    /// `MAIL FROM` address.
    pub from: String,
    /// `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message as received after `DATA` (dot-unstuffed, CRLF line ends).
    pub data: Vec<u8>,
    /// Whether it came over TLS (STARTTLS or implicit).
    pub tls: bool,
}

#[derive(Default)]
struct State {
    messages: Vec<CapturedMail>,
    /// Replies to the next `RCPT TO` commands, in order, instead of 250.
    rcpt_replies: VecDeque<(u16, String)>,
    credentials: Option<(String, String)>,
    connections: usize,
}

/// An SMTP server in the test process, stopped when the test binary exits. Plain SMTP by
/// default; [`SmtpServer::with_starttls`] and [`SmtpServer::with_implicit_tls`] speak TLS; with
/// [`SmtpServer::with_credentials`] it offers `AUTH PLAIN` and refuses mail until the client
/// authenticates.
pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    certificate: Option<Vec<u8>>,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// Starts a server accepting any sender and recipient.
    pub fn start() -> Self {
        Self::spawn(State::default(), Security::Plain, None)
    }

    /// Starts a server that requires `AUTH PLAIN` with `user` and `password` (offered on the
    /// plain connection: a test server only); other credentials get `535`.
    pub fn with_credentials(user: &str, password: &str) -> Self {
        let state = State {
            credentials: Some((user.to_owned(), password.to_owned())),
            ..State::default()
        };
        Self::spawn(state, Security::Plain, None)
    }

    /// Starts a server offering STARTTLS with a self-signed certificate for `localhost` and
    /// `127.0.0.1` ([`SmtpServer::certificate_der`]).
    pub fn with_starttls() -> Self {
        let (config, der) = tls_config();
        Self::spawn(State::default(), Security::StartTls(config), Some(der))
    }

    /// Starts a server speaking TLS from the first byte (`smtps://`), with a self-signed
    /// certificate for `localhost` and `127.0.0.1` ([`SmtpServer::certificate_der`]).
    pub fn with_implicit_tls() -> Self {
        let (config, der) = tls_config();
        Self::spawn(State::default(), Security::Implicit(config), Some(der))
    }

    /// The server's certificate (DER), for a client to trust; `None` without TLS.
    pub fn certificate_der(&self) -> Option<Vec<u8>> {
        self.certificate.clone()
    }

    fn spawn(state: State, security: Security, certificate: Option<Vec<u8>>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let auth = state.credentials.is_some();
        let state = Arc::new(Mutex::new(state));
        let shared = Arc::clone(&state);
        std::thread::Builder::new()
            .name(format!("smtp-{}", addr.port()))
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let state = Arc::clone(&shared);
                    let security = security.clone();
                    std::thread::spawn(move || serve(stream, state, auth, &security));
                }
            })
            .unwrap();
        Self {
            addr,
            state,
            certificate,
        }
    }

    /// `smtp://127.0.0.1:<port>` (plain SMTP).
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far, in order.
    pub fn messages(&self) -> Vec<CapturedMail> {
        self.lock().messages.clone()
    }

    /// Connections accepted so far (a refused STARTTLS, say, leaves one and no message).
    pub fn connections(&self) -> usize {
        self.lock().connections
    }

    /// Answers the next `RCPT TO` with `code` and `text` (e.g. `451`: try later; `550`: no such
    /// mailbox) instead of 250. Calls queue up: each scripted reply is used once.
    pub fn reply_to_next_rcpt(&self, code: u16, text: &str) {
        self.lock().rcpt_replies.push_back((code, text.to_owned()));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One session's handler: the transaction in progress and the shared state.
struct Session {
    state: Arc<Mutex<State>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
    authenticated: bool,
    /// Set by the socket loop once the connection speaks TLS.
    tls: Arc<AtomicBool>,
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Handler for Session {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        if self.lock().credentials.is_some() && !self.authenticated {
            return mailin::response::AUTHENTICATION_REQUIRED;
        }
        from.clone_into(&mut self.from);
        self.to.clear();
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        if let Some((code, text)) = self.lock().rcpt_replies.pop_front() {
            return Response::custom(code, text);
        }
        self.to.push(to.to_owned());
        mailin::response::OK
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _8bit: bool, _to: &[String]) -> Response {
        self.data.clear();
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mail = CapturedMail {
            from: self.from.clone(),
            to: self.to.clone(),
            data: std::mem::take(&mut self.data),
            tls: self.tls.load(Ordering::SeqCst),
        };
        self.lock().messages.push(mail);
        mailin::response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        let ok = self
            .lock()
            .credentials
            .as_ref()
            .is_some_and(|(u, p)| u == user && p == password);
        self.authenticated = ok;
        if ok {
            mailin::response::AUTH_OK
        } else {
            mailin::response::INVALID_CREDENTIALS
        }
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1`, as a rustls server configuration
/// (ring provider), and its DER.
fn tls_config() -> (Arc<ServerConfig>, Vec<u8>) {
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let der = certified.cert.der().to_vec();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![CertificateDer::from(der.clone())], key.into())
            .unwrap();
    (Arc::new(config), der)
}

/// What ended a stretch of conversation.
enum Ended<S> {
    Closed,
    /// The client sent STARTTLS and got 220: continue over TLS on this stream.
    Upgrade(S),
}

fn serve(stream: TcpStream, state: Arc<Mutex<State>>, auth: bool, security: &Security) {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .connections += 1;
    let remote = stream
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let tls = Arc::new(AtomicBool::new(false));
    let mut builder = SessionBuilder::new("smtp.test");
    if matches!(security, Security::StartTls(_)) {
        builder.enable_start_tls();
    }
    if auth {
        builder
            .enable_auth(AuthMechanism::Plain)
            .insecure_enable_plaintext_auth();
    }
    let handler = Session {
        state,
        from: String::new(),
        to: Vec::new(),
        data: Vec::new(),
        authenticated: false,
        tls: Arc::clone(&tls),
    };
    let mut session = builder.build(remote, handler);
    let greeting = session.greeting();
    match security {
        Security::Plain => {
            let _ = talk(&mut session, stream, Some(&greeting));
        }
        Security::Implicit(config) => {
            let Ok(conn) = ServerConnection::new(Arc::clone(config)) else {
                return;
            };
            session.tls_active();
            tls.store(true, Ordering::SeqCst);
            let _ = talk(
                &mut session,
                StreamOwned::new(conn, stream),
                Some(&greeting),
            );
        }
        Security::StartTls(config) => {
            if let Ended::Upgrade(stream) = talk(&mut session, stream, Some(&greeting)) {
                let Ok(conn) = ServerConnection::new(Arc::clone(config)) else {
                    return;
                };
                session.tls_active();
                tls.store(true, Ordering::SeqCst);
                let _ = talk(&mut session, StreamOwned::new(conn, stream), None);
            }
        }
    }
}

/// Reads commands and writes replies on `stream` until the session ends or upgrades to TLS.
fn talk<S: Read + Write>(
    session: &mut mailin::Session<Session>,
    stream: S,
    greeting: Option<&Response>,
) -> Ended<S> {
    let mut reader = BufReader::new(stream);
    if let Some(greeting) = greeting {
        let w = reader.get_mut();
        if greeting.write_to(w).and_then(|()| w.flush()).is_err() {
            return Ended::Closed;
        }
    }
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return Ended::Closed,
            Ok(_) => {}
        }
        let response = session.process(&line);
        let w = reader.get_mut();
        let written = response.write_to(w).and_then(|()| w.flush());
        match response.action {
            Action::NoReply => {}
            Action::Reply if written.is_ok() => {}
            Action::Reply | Action::Close => return Ended::Closed,
            // The client waits for the 220 before its TLS hello: nothing is left in the buffer.
            Action::UpgradeTls => return Ended::Upgrade(reader.into_inner()),
        }
    }
}
