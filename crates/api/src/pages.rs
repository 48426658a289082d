//! The small server-rendered pages of email accounts (issue 10): the result of a verification
//! link and the password-reset form, in the market's language.
//!
//! Every page is self-contained: inline CSS only, no script, no image, no font, no external
//! resource, under a strict `Content-Security-Policy` (`default-src 'none'`; inline styles only;
//! the form may post only to this origin; no framing), with `Referrer-Policy: no-referrer` (the
//! URL holds a link token: no other site may see it) and `Cache-Control: no-store`. Every value
//! put into the HTML is escaped.
//!
//! Stable element ids for browser tests: the password input `new_password`, the submit button
//! `submit`, an error `error`, the page's message `message`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use marque_markets::{Language, MessageKey, text};

/// `Content-Security-Policy` of the pages: nothing may load; inline styles only (the page has no
/// script at all); forms post to this origin only; no framing; no `<base>`.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The reset form's path (its `action`).
pub const RESET_PATH: &str = "/api/v1/auth/email/reset-password";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;\
background:#f4f5f7;color:#1f2328;margin:0;padding:2rem 1rem}\
main{max-width:26rem;margin:0 auto;background:#fff;border-radius:12px;padding:2rem;\
box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.4rem;margin:0 0 1rem}\
label{display:block;font-weight:600;margin:1rem 0 .4rem}\
input{box-sizing:border-box;width:100%;padding:.7rem;font-size:1rem;border:1px solid #c9ccd1;\
border-radius:8px}button{margin-top:1.2rem;width:100%;padding:.8rem;font-size:1rem;border:0;\
border-radius:8px;background:#1f6feb;color:#fff;cursor:pointer}\
.hint{color:#59636e;font-size:.9rem}#error{color:#b42318;background:#fef3f2;padding:.7rem;\
border-radius:8px}";

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (HTML, escaped by the caller).
fn page(lang: Language, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main><h1>{title}</h1>{body}</main></body></html>\n",
        lang = lang.code(),
        title = escape(title),
    )
}

/// The response carrying `html`, with the pages' security headers.
pub fn respond(status: StatusCode, html: String) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header(("Content-Type", "text/html; charset=utf-8"))
        .insert_header(("Content-Security-Policy", PAGE_CSP))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(html)
}

/// A page saying one thing (`key`), e.g. "your address is verified".
pub fn message(status: StatusCode, lang: Language, key: MessageKey) -> HttpResponse {
    let said = text(key, lang);
    let body = format!("<p id=\"message\">{}</p>", escape(said));
    respond(status, page(lang, said, &body))
}

/// The reset form for `token` with its `csrf_token`, showing `error` (a message key) when the
/// last try was refused.
pub fn reset_form(
    status: StatusCode,
    lang: Language,
    token: &str,
    csrf_token: &str,
    error: Option<MessageKey>,
) -> HttpResponse {
    let error = error
        .map(|k| {
            format!(
                "<p id=\"error\" role=\"alert\">{}</p>",
                escape(text(k, lang))
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<form method=\"post\" action=\"{RESET_PATH}\">\
         <input type=\"hidden\" name=\"token\" value=\"{token}\">\
         <input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
         {error}\
         <label for=\"new_password\">{label}</label>\
         <input id=\"new_password\" name=\"new_password\" type=\"password\" \
         autocomplete=\"new-password\" required autofocus>\
         <p class=\"hint\">{hint}</p>\
         <button id=\"submit\" type=\"submit\">{submit}</button></form>",
        token = escape(token),
        csrf = escape(csrf_token),
        label = escape(text(MessageKey::ResetPageLabel, lang)),
        hint = escape(text(MessageKey::ResetPageHint, lang)),
        submit = escape(text(MessageKey::ResetPageSubmit, lang)),
    );
    respond(
        status,
        page(lang, text(MessageKey::ResetPageTitle, lang), &body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_and_ids_are_stable() {
        assert_eq!(
            escape("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        let html = page(Language::Ru, "t<", "");
        assert!(html.contains("<html lang=\"ru\">") && html.contains("t&lt;"));
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(!html.contains("<script"));
    }
}
