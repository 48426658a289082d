//! Database URLs: the backend is chosen from the scheme here (not by diesel's derived
//! `establish`, which hides the real error), and every message that may echo the URL is
//! scrubbed of its password.

use std::path::PathBuf;
use std::time::Duration;

use crate::Backend;

/// Where a market's database lives, parsed from its URL.
#[derive(Clone)]
pub(crate) enum Target {
    /// A PostgreSQL server (libpq URL).
    Postgres {
        /// The URL handed to libpq (with `connect_timeout` added when missing).
        url: String,
        /// `host[:port]/database`, without credentials: safe for messages.
        display: String,
        /// Password spellings (raw and percent-decoded) to scrub from messages.
        secrets: Vec<String>,
    },
    /// An SQLite file.
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
}

impl Target {
    /// Parses `url`. The error never quotes the URL (it may hold a password).
    pub(crate) fn parse(url: &str, connect_timeout: Duration) -> Result<Self, String> {
        let url = url.trim();
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            return Ok(parse_postgres(url, rest, connect_timeout));
        }
        if let Some(rest) = url.strip_prefix("sqlite://") {
            return parse_sqlite(rest);
        }
        if url.starts_with("sqlite:") {
            return Err(if url.contains(":memory:") {
                "in-memory SQLite (sqlite::memory:) is not supported: every pooled connection \
                 would get its own empty database; use sqlite://path/to/file.db"
                    .to_owned()
            } else {
                "SQLite URLs have the form sqlite://relative/path.db or sqlite:///absolute/path.db"
                    .to_owned()
            });
        }
        Err(
            "unsupported database URL scheme (expected postgres://, postgresql:// or sqlite://)"
                .to_owned(),
        )
    }

    /// The backend the URL selects.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Postgres { .. } => Backend::Postgres,
            Self::Sqlite { .. } => Backend::Sqlite,
        }
    }

    /// Where the database is, without credentials.
    pub(crate) fn display(&self) -> String {
        match self {
            Self::Postgres { display, .. } => display.clone(),
            Self::Sqlite { path } => path.display().to_string(),
        }
    }

    /// `message` with every spelling of the URL's password replaced by `***`.
    pub(crate) fn redact(&self, message: &str) -> String {
        match self {
            Self::Postgres { secrets, .. } => redact(message, secrets),
            Self::Sqlite { .. } => message.to_owned(),
        }
    }
}

fn parse_sqlite(rest: &str) -> Result<Target, String> {
    if rest.is_empty() {
        return Err("the SQLite URL names no file (expected sqlite://path/to/file.db)".to_owned());
    }
    if rest.starts_with(":memory:") || rest.contains("mode=memory") {
        return Err(
            "in-memory SQLite is not supported: every pooled connection would get its \
                    own empty database; use sqlite://path/to/file.db"
                .to_owned(),
        );
    }
    if rest.contains('?') {
        return Err("query parameters are not supported in SQLite URLs".to_owned());
    }
    Ok(Target::Sqlite {
        path: PathBuf::from(rest),
    })
}

fn parse_postgres(url: &str, rest: &str, connect_timeout: Duration) -> Target {
    // libpq looks for the credentials separator `@` before the first `/`.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let mut secrets = Vec::new();
    let host = match (authority.find('@'), authority.rfind('@')) {
        (Some(first), Some(last)) => {
            for userinfo in [&authority[..first], &authority[..last]] {
                if let Some((_, password)) = userinfo.split_once(':') {
                    push_secret(&mut secrets, password);
                }
            }
            &authority[last + 1..]
        }
        _ => authority,
    };
    let host = host.split('?').next().unwrap_or_default();
    let path_and_query = &rest[authority_end..];
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    // Also look for `?password=` before the first `/` (`postgres://host?password=…`).
    let query = query.or_else(|| authority.split_once('?').map(|(_, q)| q));
    let mut has_timeout = false;
    for pair in query.unwrap_or_default().split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "password" => push_secret(&mut secrets, value),
            "connect_timeout" => has_timeout = true,
            _ => {}
        }
    }
    let database = path.trim_start_matches('/');
    let display = match (host.is_empty(), database.is_empty()) {
        (true, true) => "(default host)".to_owned(),
        (true, false) => format!("(default host)/{database}"),
        (false, true) => host.to_owned(),
        (false, false) => format!("{host}/{database}"),
    };
    let display = redact(&display, &secrets);
    let mut url = url.to_owned();
    if !has_timeout {
        // libpq waits for the OS TCP timeout (minutes) without it; it counts whole seconds and
        // treats values below 2 as 2.
        let secs = connect_timeout.as_secs() + u64::from(connect_timeout.subsec_nanos() > 0);
        let sep = if url.contains('?') { '&' } else { '?' };
        url.push_str(&format!("{sep}connect_timeout={}", secs.max(2)));
    }
    Target::Postgres {
        url,
        display,
        secrets,
    }
}

fn push_secret(secrets: &mut Vec<String>, raw: &str) {
    if raw.is_empty() {
        return;
    }
    secrets.push(raw.to_owned());
    if let Some(decoded) = percent_decode(raw).filter(|d| d != raw && !d.is_empty()) {
        secrets.push(decoded);
    }
    // Longest first, so a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Replaces every occurrence of each secret in `message` by `***`.
pub(crate) fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets {
        if !secret.is_empty() && out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn postgres_urls_are_parsed_and_redacted() {
        let t = Target::parse(
            "postgres://app:s%40cret@db.example:5432/marque_kg?sslmode=require",
            T,
        )
        .unwrap();
        assert_eq!(t.backend(), Backend::Postgres);
        assert_eq!(t.display(), "db.example:5432/marque_kg");
        let Target::Postgres { url, .. } = &t else {
            panic!()
        };
        assert!(url.ends_with("sslmode=require&connect_timeout=5"));
        assert_eq!(t.redact("bad s%40cret and s@cret"), "bad *** and ***");
        let t = Target::parse(
            "postgresql://host/db?password=topsecret&connect_timeout=3",
            T,
        )
        .unwrap();
        assert_eq!(t.redact("x topsecret"), "x ***");
        let Target::Postgres { url, .. } = &t else {
            panic!()
        };
        assert!(url.ends_with("connect_timeout=3"));
        let t = Target::parse("postgres://postgres@127.0.0.1", Duration::from_millis(10)).unwrap();
        assert_eq!(t.display(), "127.0.0.1");
        let Target::Postgres { url, .. } = &t else {
            panic!()
        };
        assert_eq!(url, "postgres://postgres@127.0.0.1?connect_timeout=2");
    }

    #[test]
    fn sqlite_urls() {
        let t = Target::parse("sqlite://data/kg.db", T).unwrap();
        assert_eq!(t.backend(), Backend::Sqlite);
        assert_eq!(t.display(), "data/kg.db");
        assert_eq!(
            Target::parse("sqlite:///tmp/x.db", T).unwrap().display(),
            "/tmp/x.db"
        );
        for bad in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://",
            "sqlite:x.db",
            "mysql://x",
        ] {
            assert!(Target::parse(bad, T).is_err(), "{bad}");
        }
        let err = Target::parse("secret://u:topsecret@h/db", T).err().unwrap();
        assert!(!err.contains("topsecret"));
    }
}
