//! The `marque` command line and settings errors, through the real binary.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn marque() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_marque"));
    cmd.env_clear().env("RUST_LOG", "warn").stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to its end, capturing stdout and stderr.
fn finish(mut cmd: Command) -> Output {
    wait(
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Waits for `child` (killed after 30 s: a command that should have failed started instead).
fn wait(mut child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "marque did not exit; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `marque ARGS…` with an empty environment.
fn run(args: &[&str]) -> Output {
    let mut cmd = marque();
    cmd.args(args);
    finish(cmd)
}

/// A settings file that is removed on drop.
struct TomlFile(PathBuf);

impl TomlFile {
    fn new(text: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "marque-cli-{}-{}.toml",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        Self(path)
    }
}

impl Drop for TomlFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts exit code 1 and a single stderr line that names `key`.
fn assert_refused(out: &Output, key: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{key}: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(err.contains(key), "`{key}` not named: {err}");
}

#[test]
fn bad_environment_values_stop_start_up_naming_the_variable() {
    for (var, value) in [
        ("PORT", "70000"),
        ("PORT", "0"),
        ("WORKERS", "0"),
        ("MAX_VERIFICATION_ATTEMPTS", "0"),
        ("DATABASE_URL_MARQUE_KG", ""),
        ("ALLOWED_ORIGINS", "not a url"),
        ("ALLOWED_ORIGINS", "shop.example"),
        ("OTP_EXPIRY_MINUTES_US", "ten"),
        ("SECRET_KEY", "short"),
    ] {
        let mut cmd = marque();
        cmd.env(var, value);
        assert_refused(&finish(cmd), var);
    }
}

#[test]
fn bad_file_keys_stop_start_up_naming_the_key() {
    for (text, key) in [
        ("prot = 8000\n", "prot"),
        ("port = 0\n", "port"),
        ("port = 70000\n", "port"),
        ("workers = 0\n", "workers"),
        (
            "[markets.kg]\ndatabase_url = \"\"\n",
            "markets.kg.database_url",
        ),
        (
            "[markets.kg]\nsms_sender = \"Shop\"\n",
            "markets.kg.sms_sender",
        ),
        (
            "[markets.us]\notp_expiry_minutes = \"ten\"\n",
            "markets.us.otp_expiry_minutes",
        ),
        ("allowed_origins = [\"shop.example\"]\n", "allowed_origins"),
    ] {
        let file = TomlFile::new(text);
        let mut cmd = marque();
        cmd.arg("--config").arg(&file.0);
        let out = finish(cmd);
        assert_refused(&out, key);
        assert!(stderr(&out).contains(&*file.0.to_string_lossy()));
    }
}

#[test]
fn a_missing_settings_file_is_an_error() {
    let out = run(&["--config", "/nonexistent/marque.toml", "config"]);
    assert_refused(&out, "--config");
}

#[test]
fn the_environment_wins_over_the_file_named_by_marque_config() {
    let file = TomlFile::new("port = 9001\nmax_verification_attempts = 5\n");
    let mut cmd = marque();
    cmd.env("MARQUE_CONFIG", &file.0)
        .env("PORT", "9002")
        .arg("config");
    let out = finish(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: toml::Table = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    assert_eq!(printed["port"].as_integer(), Some(9002));
    assert_eq!(printed["max_verification_attempts"].as_integer(), Some(5));
}

#[test]
fn marque_config_redacts_secrets() {
    let mut cmd = marque();
    cmd.env("SECRET_KEY", "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")
        .env(
            "DATABASE_URL_MARQUE_US",
            "postgres://marque:hunter2@db.example/us",
        )
        .arg("config");
    let out = finish(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains("s3cr3t") && !text.contains("hunter2"),
        "{text}"
    );
    let printed: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(
        printed["markets"]["us"]["database_url"].as_str(),
        Some("postgres://marque:***@db.example/us")
    );
}

#[test]
fn help_and_version_exit_zero() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["--version"],
        &["-V"],
        &["config", "--help"],
    ] {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(!out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&["--version"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn unknown_and_extra_arguments_are_refused() {
    for args in [
        &["serve", "--port", "9999"][..],
        &["serve", "extra"],
        &["start"],
        &["--verbose"],
        &["openapi", "openapi"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("Usage"), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    for command in ["openapi", "config"] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader); // every write now fails with EPIPE
        let child = marque()
            .arg(command)
            .stdout(writer)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait(child);
        assert!(out.status.success(), "{command}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{command}");
    }
}

/// `MARQUE_ENV=production` with an otherwise acceptable environment, plus `extra`.
fn production(extra: &[(&str, String)]) -> Output {
    let mut cmd = marque();
    cmd.env("MARQUE_ENV", "production")
        .env("SECRET_KEY", "/Psw5IwSfCXydU40JSmwScmD0iQ5aIXU/4WqyjIEE58=");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    finish(cmd)
}

#[test]
fn production_refuses_unsafe_settings_naming_each() {
    let day = |n: i64| (chrono::Utc::now() + chrono::Duration::days(n)).to_rfc3339();
    let kg = (
        "DATABASE_URL_MARQUE_KG",
        "sqlite:///nonexistent/kg.db".to_owned(),
    );
    let us = (
        "DATABASE_URL_MARQUE_US",
        "sqlite:///nonexistent/us.db".to_owned(),
    );
    let numbers = ("TEST_PHONE_NUMBERS", "+996555000001=123456".to_owned());
    // No implicit SQLite file.
    assert_refused(&production(&[]), "DATABASE_URL_MARQUE_KG");
    assert_refused(
        &production(std::slice::from_ref(&kg)),
        "DATABASE_URL_MARQUE_US",
    );
    // Test numbers need an end at most 30 days ahead.
    assert_refused(
        &production(&[kg.clone(), us.clone(), numbers.clone()]),
        "TEST_PHONE_NUMBERS_VALID_UNTIL",
    );
    let far = ("TEST_PHONE_NUMBERS_VALID_UNTIL", day(45));
    assert_refused(
        &production(&[kg.clone(), us.clone(), numbers.clone(), far]),
        "TEST_PHONE_NUMBERS_VALID_UNTIL",
    );
    // The console provider prints every code.
    let near = ("TEST_PHONE_NUMBERS_VALID_UNTIL", day(7));
    assert_refused(
        &production(&[kg.clone(), us.clone(), numbers, near]),
        "SMS_PROVIDER",
    );
    assert_refused(&production(&[kg, us]), "SMS_PROVIDER");
}

/// Issue 12 item 4: in production a weak `SECRET_KEY` stops start-up with one line naming
/// `SECRET_KEY` and the command that makes a good one; the key itself is never echoed. A key
/// from `openssl rand -base64 32` passes this check (other production refusals may follow).
#[test]
fn production_refuses_a_weak_secret_key() {
    for key in [
        "a".repeat(44),
        "0".repeat(64),
        "changemechangemechangemechangeme".to_owned(),
    ] {
        let mut cmd = marque();
        cmd.args(["config"])
            .env("MARQUE_ENV", "production")
            .env("SECRET_KEY", &key);
        let out = finish(cmd);
        assert_refused(&out, "SECRET_KEY");
        let err = stderr(&out);
        assert!(err.contains("openssl rand -base64 32"), "{err}");
        assert!(!err.contains(&key), "the key is echoed: {err}");
    }
    let mut cmd = marque();
    cmd.args(["config"])
        .env("MARQUE_ENV", "production")
        .env("SECRET_KEY", "/Psw5IwSfCXydU40JSmwScmD0iQ5aIXU/4WqyjIEE58=");
    let out = finish(cmd);
    assert!(!stderr(&out).contains("SECRET_KEY"), "{}", stderr(&out));
}

/// Logs to a pipe or a file carry no ANSI colour codes (issue 11); `LOG_FORMAT=json` is JSON.
#[test]
fn logs_into_a_pipe_have_no_colour_codes() {
    let (kg, us) = (
        marque_testkit::TestDatabase::sqlite(),
        marque_testkit::TestDatabase::sqlite(),
    );
    for format in ["text", "json"] {
        let mut cmd = marque();
        cmd.arg("migrate")
            .env("RUST_LOG", "info")
            .env("LOG_FORMAT", format)
            .env("DATABASE_URL_MARQUE_KG", kg.url())
            .env("DATABASE_URL_MARQUE_US", us.url());
        let out = finish(cmd);
        let err = stderr(&out);
        assert!(out.status.success(), "{format}: {err}");
        assert!(err.contains("migrations applied"), "{format}: {err}");
        assert!(!err.contains('\u{1b}'), "{format}: {err:?}");
        if format == "json" {
            for line in err.lines() {
                serde_json::from_str::<serde_json::Value>(line).unwrap();
            }
        }
    }
}

/// Issue 8: with a real SMS provider, production passes its checks (`marque config` applies
/// them); the provider's token is never printed.
#[test]
fn production_accepts_a_real_sms_provider_and_redacts_its_token() {
    let mut cmd = marque();
    cmd.arg("config")
        .env("MARQUE_ENV", "production")
        .env("SECRET_KEY", "/Psw5IwSfCXydU40JSmwScmD0iQ5aIXU/4WqyjIEE58=")
        .env("DATABASE_URL_MARQUE_KG", "postgres://db/kg")
        .env("DATABASE_URL_MARQUE_US", "postgres://db/us")
        .env("SMS_PROVIDER", "twilio")
        .env("TWILIO_ACCOUNT_SID", "AC0123")
        .env("TWILIO_AUTH_TOKEN", "twilio-token-never-printed")
        .env("TWILIO_FROM", "+15005550006")
        // Issue 10: production refuses the console for email too.
        .env("EMAIL_PROVIDER", "smtp")
        .env(
            "SMTP_URL",
            "smtps://mailer:smtp-password-never-printed@smtp.shop.example",
        )
        .env("SMTP_FROM", "Shop <no-reply@shop.example>")
        .env("PUBLIC_BASE_URL", "https://auth.shop.example");
    let out = finish(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("smtp-password-never-printed"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("sms_provider = \"twilio\""), "{stdout}");
    assert!(!stdout.contains("twilio-token-never-printed"));
    assert!(!stderr(&out).contains("twilio-token-never-printed"));
}

/// A port nothing listens on right now (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `marque openapi` names the service's server (issue 11): `PUBLIC_BASE_URL`, else
/// `http://HOST:PORT`, so clients generated from it need no hand edit.
#[test]
fn openapi_names_the_server_from_the_settings() {
    let server_url = |vars: &[(&str, &str)]| {
        let mut cmd = marque();
        cmd.arg("openapi");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        // Not `finish`: the document outgrows the pipe while `wait` polls; `output` reads it.
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{vars:?}: {}", stderr(&out));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["servers"][0]["url"].as_str().unwrap().to_owned()
    };
    assert_eq!(server_url(&[]), "http://127.0.0.1:8000");
    assert_eq!(
        server_url(&[("HOST", "0.0.0.0"), ("PORT", "9123")]),
        "http://127.0.0.1:9123"
    );
    assert_eq!(
        server_url(&[("PUBLIC_BASE_URL", "https://auth.shop.example/")]),
        "https://auth.shop.example"
    );
}

/// `marque healthcheck` (the image's HEALTHCHECK) exits 1 when nothing answers and 0 once the
/// service at HOST:PORT is ready.
#[test]
fn healthcheck_follows_the_readiness_of_the_service() {
    let port = free_port().to_string();
    let healthcheck = || {
        let mut cmd = marque();
        cmd.arg("healthcheck").env("PORT", &port);
        finish(cmd)
    };
    let out = healthcheck();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("/health/ready"), "{}", stderr(&out));

    let (kg, us) = (
        marque_testkit::TestDatabase::sqlite(),
        marque_testkit::TestDatabase::sqlite(),
    );
    let mut server = marque()
        .arg("serve")
        .env("PORT", &port)
        .env("DATABASE_URL_MARQUE_KG", kg.url())
        .env("DATABASE_URL_MARQUE_US", us.url())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ready = loop {
        if healthcheck().status.success() {
            break true;
        }
        if Instant::now() > deadline || server.try_wait().unwrap().is_some() {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let out = server.wait_with_output().unwrap();
    assert!(ready, "never ready; server stderr: {}", stderr(&out));
}
