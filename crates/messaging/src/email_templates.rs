//! The text of emails (issue 10): subject, plain-text and HTML bodies per [`EmailKind`] and
//! language, from minijinja templates.
//!
//! Why minijinja rather than askama: the two bodies are one layout each with the per-kind
//! sentences from a table, so there is little for compile-time checking to catch that the
//! exhaustive tests below do not; minijinja adds no proc-macro to the build, escapes HTML by the
//! template's file name (`.html`), and leaves room for operator-supplied templates later.

use marque_domain::{EmailKind, EmailPayload};
use marque_markets::Language;
use minijinja::{AutoEscape, Environment, context};

/// Path of the verification link (`GET`, the email-account routes), relative to
/// `PUBLIC_BASE_URL`; the token goes in `?token=`.
pub const VERIFY_EMAIL_PATH: &str = "/api/v1/auth/email/verify";
/// Path of the password reset form (`GET`), relative to `PUBLIC_BASE_URL`; `?token=`.
pub const RESET_PASSWORD_PATH: &str = "/api/v1/auth/email/reset-password";

const TEXT_TEMPLATE: &str = "email.txt";
const HTML_TEMPLATE: &str = "email.html";

const TEXT_BODY: &str = "\
{{ intro }}
{%- if link %}

{{ action }}:
{{ link }}

{{ validity }}
{%- endif %}
{%- if guidance %}

{{ guidance }}
{%- endif %}

{{ outro }}

— {{ app }}
";

const HTML_BODY: &str = r#"<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ subject }}</title>
</head>
<body style="margin:0;padding:24px;background:#f4f4f5;font-family:Arial,Helvetica,sans-serif;color:#18181b;">
<div style="max-width:560px;margin:0 auto;background:#ffffff;border-radius:8px;padding:32px;">
<h1 style="font-size:20px;margin:0 0 16px;">{{ subject }}</h1>
<p style="font-size:15px;line-height:1.5;">{{ intro }}</p>
{%- if link %}
<p style="margin:24px 0;"><a href="{{ link }}" style="display:inline-block;background:#2563eb;color:#ffffff;text-decoration:none;padding:12px 20px;border-radius:6px;font-weight:bold;">{{ action }}</a></p>
<p style="font-size:15px;line-height:1.5;">{{ validity }}</p>
<p style="font-size:13px;line-height:1.5;color:#52525b;">{{ copy_hint }}<br><span style="word-break:break-all;">{{ link }}</span></p>
{%- endif %}
{%- if guidance %}
<p style="font-size:15px;line-height:1.5;">{{ guidance }}</p>
{%- endif %}
<p style="font-size:13px;line-height:1.5;color:#52525b;">{{ outro }}</p>
<p style="font-size:13px;color:#52525b;">— {{ app }}</p>
</div>
</body>
</html>
"#;

/// An email's rendered parts.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line.
    pub subject: String,
    /// Plain-text body (the link appears once, on a line of its own).
    pub text: String,
    /// HTML body: values escaped, no external resources, the link as a button and as text.
    pub html: String,
}

impl std::fmt::Debug for RenderedEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedEmail")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// The templates of emails: `{{ app }}` is `APP_NAME`, links start with `PUBLIC_BASE_URL`.
/// Templates are parsed once, in [`EmailTemplates::new`].
pub struct EmailTemplates {
    app: String,
    base_url: String,
    env: Environment<'static>,
}

impl std::fmt::Debug for EmailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailTemplates")
            .field("app", &self.app)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Clone for EmailTemplates {
    fn clone(&self) -> Self {
        Self::new(&self.app, &self.base_url)
    }
}

impl Default for EmailTemplates {
    /// `Marque`, links on `http://127.0.0.1:8000` (the development server's default address).
    fn default() -> Self {
        Self::new("Marque", "http://127.0.0.1:8000")
    }
}

/// The sentences of one kind of email in one language; each may use `{{ app }}`.
struct Strings {
    subject: &'static str,
    intro: &'static str,
    /// Label of the link (kinds with a link).
    action: &'static str,
    /// A paragraph after the link, or the advice of kinds without one.
    guidance: &'static str,
    outro: &'static str,
}

fn strings(kind: EmailKind, lang: Language) -> Strings {
    match (kind, lang) {
        (EmailKind::VerifyAddress, Language::En) => Strings {
            subject: "Confirm your email address for {{ app }}",
            intro: "A {{ app }} account was created with this email address. To confirm that \
                    the address is yours, open the link below.",
            action: "Confirm email address",
            guidance: "",
            outro: "If you did not create an account, ignore this email: nothing will happen.",
        },
        (EmailKind::VerifyAddress, Language::Ru) => Strings {
            subject: "Подтвердите адрес электронной почты для {{ app }}",
            intro: "С этим адресом электронной почты создан аккаунт {{ app }}. Чтобы \
                    подтвердить, что адрес ваш, откройте ссылку ниже.",
            action: "Подтвердить адрес",
            guidance: "",
            outro: "Если вы не создавали аккаунт, просто проигнорируйте это письмо.",
        },
        (EmailKind::AlreadyRegistered, Language::En) => Strings {
            subject: "You already have a {{ app }} account",
            intro: "Someone tried to create a {{ app }} account with this email address, but \
                    it already has one.",
            action: "",
            guidance: "To sign in, use your password in {{ app }}. If you forgot it, choose \
                       “Forgot password” on the sign-in screen and we will email you a link to \
                       set a new one.",
            outro: "If this was not you, ignore this email: your account has not changed.",
        },
        (EmailKind::AlreadyRegistered, Language::Ru) => Strings {
            subject: "У вас уже есть аккаунт {{ app }}",
            intro: "Кто-то попытался создать аккаунт {{ app }} с этим адресом электронной \
                    почты, но аккаунт с ним уже есть.",
            action: "",
            guidance: "Чтобы войти, используйте свой пароль в {{ app }}. Если вы его забыли, \
                       выберите «Забыли пароль?» на экране входа, и мы пришлём ссылку, чтобы \
                       задать новый.",
            outro: "Если это были не вы, проигнорируйте письмо: с вашим аккаунтом ничего не \
                    произошло.",
        },
        (EmailKind::ResetPassword, Language::En) => Strings {
            subject: "Reset your {{ app }} password",
            intro: "We received a request to reset the password of your {{ app }} account. To \
                    choose a new password, open the link below.",
            action: "Choose a new password",
            guidance: "",
            outro: "If you did not ask for this, ignore this email: your password stays the \
                    same.",
        },
        (EmailKind::ResetPassword, Language::Ru) => Strings {
            subject: "Сброс пароля {{ app }}",
            intro: "Мы получили запрос на сброс пароля вашего аккаунта {{ app }}. Чтобы задать \
                    новый пароль, откройте ссылку ниже.",
            action: "Задать новый пароль",
            guidance: "",
            outro: "Если вы не запрашивали сброс, проигнорируйте письмо: пароль останется \
                    прежним.",
        },
        (EmailKind::PasswordChanged, Language::En) => Strings {
            subject: "Your {{ app }} password was changed",
            intro: "The password of your {{ app }} account was just changed, and every device \
                    signed in to it was signed out.",
            action: "",
            guidance: "If this was you, there is nothing to do.",
            outro: "If it was not you, reset your password right away with “Forgot password” \
                    on the {{ app }} sign-in screen, and contact {{ app }} support.",
        },
        (EmailKind::PasswordChanged, Language::Ru) => Strings {
            subject: "Пароль {{ app }} изменён",
            intro: "Пароль вашего аккаунта {{ app }} только что изменён, и все устройства, на \
                    которых был выполнен вход, вышли из аккаунта.",
            action: "",
            guidance: "Если это сделали вы, ничего делать не нужно.",
            outro: "Если это были не вы, сразу сбросьте пароль через «Забыли пароль?» на экране \
                    входа {{ app }} и свяжитесь со службой поддержки {{ app }}.",
        },
    }
}

/// "valid for …" of a link living `minutes`: whole hours when it is a multiple of 60.
fn validity(lang: Language, minutes: u32) -> String {
    let (n, hours) = if minutes >= 60 && minutes.is_multiple_of(60) {
        (minutes / 60, true)
    } else {
        (minutes, false)
    };
    match lang {
        Language::En => {
            let unit = match (hours, n) {
                (true, 1) => "hour",
                (true, _) => "hours",
                (false, 1) => "minute",
                (false, _) => "minutes",
            };
            format!("The link is valid for {n} {unit} and works once.")
        }
        Language::Ru => {
            let unit = if hours {
                ru_plural(n, "час", "часа", "часов")
            } else {
                ru_plural(n, "минуту", "минуты", "минут")
            };
            format!("Ссылка действует {n} {unit} и срабатывает один раз.")
        }
    }
}

/// The Russian noun form after the number `n` (1 час, 2 часа, 5 часов, 21 час, 11 часов).
fn ru_plural(n: u32, one: &'static str, few: &'static str, many: &'static str) -> &'static str {
    match (n % 10, n % 100) {
        (1, r) if r != 11 => one,
        (2..=4, r) if !(12..=14).contains(&r) => few,
        _ => many,
    }
}

fn copy_hint(lang: Language) -> &'static str {
    match lang {
        Language::En => "If the button does not work, copy this address into your browser:",
        Language::Ru => "Если кнопка не работает, скопируйте этот адрес в браузер:",
    }
}

impl EmailTemplates {
    /// Templates for `app` (`APP_NAME`) with links on `base_url` (`PUBLIC_BASE_URL`, a trailing
    /// `/` is dropped).
    pub fn new(app: &str, base_url: &str) -> Self {
        let mut env = Environment::new();
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        // Built-in templates, tested below: they always parse.
        for (name, source) in [(TEXT_TEMPLATE, TEXT_BODY), (HTML_TEMPLATE, HTML_BODY)] {
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "email template does not parse");
            }
        }
        Self {
            app: app.to_owned(),
            base_url: base_url.trim_end_matches('/').to_owned(),
            env,
        }
    }

    /// The link of `payload`: `{base}/api/v1/auth/email/verify?token=…` or
    /// `{base}/api/v1/auth/email/reset-password?token=…` (token percent-encoded); `None` for
    /// kinds without a token.
    pub fn link(&self, payload: &EmailPayload) -> Option<String> {
        let path = match payload.kind {
            EmailKind::VerifyAddress => VERIFY_EMAIL_PATH,
            EmailKind::ResetPassword => RESET_PASSWORD_PATH,
            EmailKind::AlreadyRegistered | EmailKind::PasswordChanged => return None,
        };
        let token: String =
            url::form_urlencoded::byte_serialize(payload.token.as_bytes()).collect();
        Some(format!("{}{path}?token={token}", self.base_url))
    }

    /// Subject, plain text and HTML of `payload` in `lang`.
    ///
    /// Errors: a template fails to render (a bug: the built-in templates are tested for every
    /// kind and language); the message says which, never a value.
    pub fn render(
        &self,
        lang: Language,
        payload: &EmailPayload,
    ) -> Result<RenderedEmail, minijinja::Error> {
        let s = strings(payload.kind, lang);
        let app = &self.app;
        let line = |t: &str| self.env.render_str(t, context! { app });
        let subject = line(s.subject)?;
        let link = self.link(payload);
        let ctx = context! {
            lang => lang.code(),
            app,
            subject => &subject,
            intro => line(s.intro)?,
            action => line(s.action)?,
            guidance => line(s.guidance)?,
            outro => line(s.outro)?,
            link => link,
            validity => validity(lang, payload.ttl_minutes),
            copy_hint => copy_hint(lang),
        };
        let text = self.env.get_template(TEXT_TEMPLATE)?.render(&ctx)?;
        let html = self.env.get_template(HTML_TEMPLATE)?.render(&ctx)?;
        Ok(RenderedEmail {
            subject,
            text,
            html,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// minijinja's HTML escaping (OWASP's rule 1 set, `/` included).
    fn html_escaped(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#x27;")
            .replace('/', "&#x2f;")
    }

    fn payload(kind: EmailKind) -> EmailPayload {
        let (token, ttl_minutes) = match kind {
            EmailKind::VerifyAddress => ("tok-EN_123", 1440),
            EmailKind::ResetPassword => ("tok-EN_123", 60),
            _ => ("", 0),
        };
        EmailPayload {
            kind,
            token: token.into(),
            ttl_minutes,
        }
    }

    #[test]
    fn every_kind_renders_in_both_languages_with_the_link_once_in_text() {
        let t = EmailTemplates::new("Shop", "https://auth.shop.example/");
        for kind in EmailKind::ALL {
            for lang in [Language::Ru, Language::En] {
                let p = payload(kind);
                let e = t.render(lang, &p).unwrap();
                assert!(
                    e.subject.contains("Shop"),
                    "{kind:?} {lang:?}: {}",
                    e.subject
                );
                assert!(!e.subject.contains('\n'));
                assert!(e.text.ends_with("— Shop\n"), "{}", e.text);
                assert!(e.html.starts_with("<!DOCTYPE html>"));
                assert!(e.html.contains(&format!("<html lang=\"{}\">", lang.code())));
                match t.link(&p) {
                    Some(link) => {
                        let path = if kind == EmailKind::VerifyAddress {
                            "verify"
                        } else {
                            "reset-password"
                        };
                        assert_eq!(
                            link,
                            format!(
                                "https://auth.shop.example/api/v1/auth/email/{path}?token=tok-EN_123"
                            )
                        );
                        assert_eq!(e.text.matches(&link).count(), 1, "{}", e.text);
                        assert!(e.text.contains(&format!("\n{link}\n")));
                        let shown = html_escaped(&link);
                        assert!(e.html.contains(&format!("href=\"{shown}\"")), "{}", e.html);
                        assert!(e.html.contains(&format!(">{shown}</span>")));
                    }
                    None => {
                        assert!(!e.text.contains("http"), "{}", e.text);
                        assert!(!e.html.contains("href"), "{}", e.html);
                    }
                }
                // No external resources of any kind.
                for banned in ["<img", "<link", "<script", "src=", "url(", "@import"] {
                    assert!(!e.html.contains(banned), "{kind:?} {lang:?} has {banned}");
                }
                let cyrillic = e.text.chars().any(|c| ('а'..='я').contains(&c));
                assert_eq!(cyrillic, lang == Language::Ru, "{}", e.text);
            }
        }
    }

    #[test]
    fn validity_is_in_the_language_with_plural_forms() {
        let t = EmailTemplates::default();
        let verify = t
            .render(Language::En, &payload(EmailKind::VerifyAddress))
            .unwrap();
        assert!(
            verify.text.contains("valid for 24 hours"),
            "{}",
            verify.text
        );
        let reset = t
            .render(Language::En, &payload(EmailKind::ResetPassword))
            .unwrap();
        assert!(reset.text.contains("valid for 1 hour "), "{}", reset.text);
        let ru = t
            .render(Language::Ru, &payload(EmailKind::VerifyAddress))
            .unwrap();
        assert!(ru.text.contains("действует 24 часа"), "{}", ru.text);
        assert_eq!(
            validity(Language::Ru, 60),
            "Ссылка действует 1 час и срабатывает один раз."
        );
        assert!(validity(Language::Ru, 300).contains("5 часов"));
        assert!(validity(Language::Ru, 21 * 60).contains("21 час "));
        assert!(validity(Language::Ru, 11 * 60).contains("11 часов"));
        assert!(validity(Language::Ru, 30).contains("30 минут "));
        assert!(validity(Language::Ru, 2).contains("2 минуты"));
        assert!(validity(Language::En, 90).contains("90 minutes"));
    }

    #[test]
    fn values_are_escaped_in_html_and_tokens_encoded_in_links() {
        let t = EmailTemplates::new("<b>Shop</b> & \"Co\"", "https://a.example");
        let p = EmailPayload {
            kind: EmailKind::ResetPassword,
            token: "a+b/c=d&e<f".into(),
            ttl_minutes: 60,
        };
        let e = t.render(Language::En, &p).unwrap();
        assert!(!e.html.contains("<b>Shop</b>"), "{}", e.html);
        assert!(
            e.html
                .contains("&lt;b&gt;Shop&lt;&#x2f;b&gt; &amp; &quot;Co&quot;"),
            "{}",
            e.html
        );
        let link = "https://a.example/api/v1/auth/email/reset-password?token=a%2Bb%2Fc%3Dd%26e%3Cf";
        assert_eq!(t.link(&p).as_deref(), Some(link));
        assert_eq!(e.text.matches(link).count(), 1);
        // Plain text is not HTML-escaped.
        assert!(e.text.contains("<b>Shop</b> & \"Co\""), "{}", e.text);
        assert_eq!(e.subject, "Reset your <b>Shop</b> & \"Co\" password");
    }
}
