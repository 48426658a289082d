//! The browser fixture works: a tiny HTML form served by the test, filled and submitted in
//! headless Chromium, and the answer page read back.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use marque_testkit::Browser;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const FORM: &str = r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>Form</title></head>
<body><form method="post" action="/submit">
<label for="name">Name</label><input id="name" name="name" value="placeholder">
<button id="send" type="submit">Send</button></form></body></html>"#;

/// Answers `GET /` with the form and `POST /submit` with a page greeting the posted name; one
/// request per connection.
async fn serve(listener: tokio::net::TcpListener) {
    loop {
        let (mut stream, _) = listener.accept().await.unwrap();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Read the head, then as much body as Content-Length says.
            let (head_end, length) = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                    break (i + 4, length);
                }
            };
            while buf.len() < head_end + length {
                let n = stream.read(&mut chunk).await.unwrap();
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
            let page = if head.starts_with("POST /submit ") {
                let name: String = url_decoded(&body, "name");
                let escaped = name.replace('&', "&amp;").replace('<', "&lt;");
                format!(
                    "<!DOCTYPE html><html><body><p id=\"greeting\">Hello, {escaped}!</p></body></html>"
                )
            } else {
                FORM.to_owned()
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
            stream.write_all(answer.as_bytes()).await.unwrap();
        });
    }
}

/// The value of `key` in a form-encoded body.
fn url_decoded(body: &str, key: &str) -> String {
    url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn headless_chromium_fills_and_submits_a_form() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(serve(listener));

    browser.open(&format!("{base}/")).await;
    assert_eq!(browser.value("name").await, "placeholder");
    browser.fill("name", "Ада <Lovelace>").await;
    assert_eq!(browser.value("name").await, "Ада <Lovelace>");
    browser.click("send").await;
    assert_eq!(browser.text("greeting").await, "Hello, Ада <Lovelace>!");
    assert_eq!(browser.current_url().await, format!("{base}/submit"));
    assert!(!browser.has("name").await, "the form page is gone");
}
