//! A real browser for tests (issue 10): headless Chromium driven over WebDriver (W3C) through
//! `chromedriver`, with the `fantoccini` client.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`; `.ci/run` installs them). Without `chromedriver`, [`Browser::start`]
//! says so on stderr and returns `None` (the test skips) — unless `CI` is set, where it fails.
//! `CHROMEDRIVER` and `CHROMIUM` override the two paths.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// How long [`Browser`]'s lookups wait for an element to appear (page loads, redirects).
pub const BROWSER_WAIT: Duration = Duration::from_secs(10);

/// Chromium's switches: headless, no sandbox (containers run as root), and nothing that reaches
/// for the network on its own — on this closed network background requests (component
/// updates, sync, QUIC probes) make Chromium stall or fail.
const CHROMIUM_ARGS: [&str; 11] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--lang=en-US",
];

/// A headless Chromium session. Dropping it ends the session (Chromium quits), stops
/// `chromedriver` (by its process id) and removes the temporary profile.
pub struct Browser {
    client: Client,
    driver: Child,
    port: u16,
    session: Option<String>,
    profile: PathBuf,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("chromedriver_pid", &self.driver.id())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

fn which(var: &str, default: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from(default);
    if default.is_file() {
        return Some(default);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn skip(why: &str) -> Option<Browser> {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}, and CI is set: browser tests must run in CI (apt-get install chromium \
         chromium-driver)"
    );
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        // Past the test harness's output capture, like the PostgreSQL notice.
        let _ = writeln!(
            std::io::stderr(),
            "\n\
             ************************************************************************\n\
             * BROWSER TESTS SKIPPED: {why}.\n\
             * Install them: apt-get install chromium chromium-driver\n\
             ************************************************************************\n"
        );
    });
    None
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Browser {
    /// Starts `chromedriver` on a free port and opens a headless Chromium session with a fresh
    /// temporary profile; `None` (after a notice on stderr) when `chromedriver` or `chromium`
    /// is not installed.
    ///
    /// # Panics
    /// When they are missing and `CI` is set, or when they are installed but do not start.
    pub async fn start() -> Option<Self> {
        let Some(driver_path) = which("CHROMEDRIVER", "/usr/bin/chromedriver", "chromedriver")
        else {
            return skip("chromedriver is not installed");
        };
        let Some(chromium) = which("CHROMIUM", "/usr/bin/chromium", "chromium") else {
            return skip("chromium is not installed");
        };
        static PROFILES: AtomicU64 = AtomicU64::new(0);
        let profile = std::env::temp_dir().join(format!(
            "marque-chromium-{}-{}",
            std::process::id(),
            PROFILES.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&profile).unwrap();
        let port = free_port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", driver_path.display()));
        let client = match connect(port, &chromium, &profile).await {
            Ok(c) => c,
            Err(e) => {
                let mut driver = driver;
                let _ = driver.kill();
                let _ = driver.wait();
                let _ = std::fs::remove_dir_all(&profile);
                panic!("chromedriver/chromium did not start a session: {e}");
            }
        };
        let mut browser = Self {
            client,
            driver,
            port,
            session: None,
            profile,
        };
        browser.session = browser.client.session_id().await.ok().flatten();
        Some(browser)
    }

    /// The WebDriver client, for anything the helpers below do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for the page to load.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The element with id `id`, waiting up to [`BROWSER_WAIT`] for it to appear.
    pub async fn element(&self, id: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(BROWSER_WAIT)
            .for_element(Locator::Id(id))
            .await
            .unwrap_or_else(|e| panic!("no element #{id}: {e}"))
    }

    /// Whether an element with id `id` is on the page now (no waiting).
    pub async fn has(&self, id: &str) -> bool {
        self.client.find(Locator::Id(id)).await.is_ok()
    }

    /// Replaces the value of the input with id `id` by typing `text` into it.
    pub async fn fill(&self, id: &str, text: &str) {
        let input = self.element(id).await;
        input.clear().await.unwrap();
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
    }

    /// Clicks the element with id `id` (a submit button: waits for the next page to load).
    pub async fn click(&self, id: &str) {
        self.element(id)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking #{id}: {e}"));
    }

    /// The rendered text of the element with id `id`.
    pub async fn text(&self, id: &str) -> String {
        self.element(id).await.text().await.unwrap()
    }

    /// The current value of the input with id `id`.
    pub async fn value(&self, id: &str) -> String {
        self.element(id)
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// The address of the page shown.
    pub async fn current_url(&self) -> String {
        self.client.current_url().await.unwrap().to_string()
    }

    /// The page's HTML as the browser has it now.
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }
}

async fn connect(
    port: u16,
    chromium: &std::path::Path,
    profile: &std::path::Path,
) -> Result<Client, String> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    // chromedriver takes a moment to listen.
    let mut ready = false;
    for _ in 0..200 {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    if !ready {
        return Err(format!("chromedriver is not listening on {addr}"));
    }
    let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| (*a).to_owned()).collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    let mut caps = fantoccini::wd::Capabilities::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://{addr}"))
        .await
        .map_err(|e| e.to_string())
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End the session first so chromedriver quits Chromium (a plain blocking request: no
        // runtime in `drop`), then stop chromedriver itself, by its pid.
        if let Some(session) = &self.session {
            let _ = delete_session(self.port, session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `DELETE /session/{id}` (W3C WebDriver "Delete Session"), over a blocking socket.
fn delete_session(port: u16, session: &str) -> std::io::Result<()> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    // Read the whole answer (chromedriver answers once Chromium has quit) but not until EOF:
    // it may keep the connection open despite `Connection: close`.
    let mut answer = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        answer.extend_from_slice(&chunk[..n]);
        if let Some(i) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..i]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if answer.len() >= i + 4 + length {
                return Ok(());
            }
        }
    }
}
