//! The text of code messages: templates per market and purpose, the WebOTP / iOS autofill line,
//! and the SMS segment count.

use std::collections::BTreeMap;

use marque_markets::{Market, OtpCode, OtpPurpose, otp_template};

/// Templates of code messages. Placeholders: `{app}` (the shop's name), `{code}` (the six
/// digits), `{minutes}` (the code's lifetime). Defaults: the market language's
/// ([`marque_markets::otp_template`]); each market may override its login and its
/// account-deletion template.
#[derive(Debug, Clone)]
pub struct MessageTemplates {
    /// `{app}` (`APP_NAME`, default `Marque`).
    pub app: String,
    /// Overrides per market and purpose (`SMS_TEMPLATE_{MARKET}`,
    /// `SMS_DELETE_ACCOUNT_TEMPLATE_{MARKET}`).
    pub overrides: BTreeMap<(Market, OtpPurpose), String>,
    /// `OTP_AUTOFILL_DOMAIN`: when set, SMS end with the origin-bound line `@domain #code`
    /// (WICG WebOTP "origin-bound one-time codes", which iOS security-code autofill also reads).
    pub autofill_domain: Option<String>,
}

impl Default for MessageTemplates {
    fn default() -> Self {
        Self {
            app: "Marque".into(),
            overrides: BTreeMap::new(),
            autofill_domain: None,
        }
    }
}

/// A rendered SMS and its billed size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedSms {
    /// The text.
    pub text: String,
    /// Segments it is billed as ([`sms_segments`]).
    pub segments: u32,
}

impl MessageTemplates {
    /// The template in force for `market` and `purpose`.
    pub fn template(&self, market: Market, purpose: OtpPurpose) -> &str {
        self.overrides
            .get(&(market, purpose))
            .map_or_else(|| otp_template(market.language(), purpose), String::as_str)
    }

    /// The message text for `market`: the template with its placeholders filled, without the
    /// autofill line (messenger channels).
    pub fn render(
        &self,
        market: Market,
        purpose: OtpPurpose,
        code: &OtpCode,
        minutes: u32,
    ) -> String {
        // One pass, so a value that happens to contain `{code}` is not expanded again.
        let template = self.template(market, purpose);
        let mut out = String::with_capacity(template.len() + 16);
        let mut rest = template;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            let (value, len) = if tail.starts_with("{code}") {
                (code.as_str().to_owned(), "{code}".len())
            } else if tail.starts_with("{minutes}") {
                (minutes.to_string(), "{minutes}".len())
            } else if tail.starts_with("{app}") {
                (self.app.clone(), "{app}".len())
            } else {
                ("{".to_owned(), 1)
            };
            out.push_str(&value);
            rest = &tail[len..];
        }
        out.push_str(rest);
        out
    }

    /// The SMS text: [`MessageTemplates::render`], then, with an autofill domain, a last line
    /// `@shop.example #123456`; with its segment count.
    pub fn render_sms(
        &self,
        market: Market,
        purpose: OtpPurpose,
        code: &OtpCode,
        minutes: u32,
    ) -> RenderedSms {
        let mut text = self.render(market, purpose, code, minutes);
        if let Some(domain) = &self.autofill_domain {
            text.push_str(&format!("\n\n@{domain} #{}", code.as_str()));
        }
        let segments = sms_segments(&text);
        RenderedSms { text, segments }
    }
}

/// GSM 03.38 basic character set (3GPP TS 23.038 §6.2.1), one septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table, two septets each (escape + character).
const GSM7_EXTENDED: &str = "^{}\\[~]|€\x0c";

/// Segments an SMS of `text` is sent and billed as (3GPP TS 23.038, TS 23.040): in GSM-7 when
/// every character is in the GSM 03.38 tables — one segment up to 160 septets, else 153 per
/// segment (the rest carries the concatenation header); otherwise in UCS-2 — one segment up to
/// 70 UTF-16 units, else 67 per segment. An empty text is one segment.
pub fn sms_segments(text: &str) -> u32 {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, multi) = if gsm {
        (septets, 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    let n = if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> OtpCode {
        OtpCode::parse("123456").unwrap()
    }

    #[test]
    fn default_templates_fit_one_segment_in_the_market_language() {
        let t = MessageTemplates::default();
        for market in Market::ALL {
            for purpose in [OtpPurpose::Login, OtpPurpose::DeleteAccount] {
                let sms = t.render_sms(market, purpose, &code(), 10);
                assert_eq!(sms.segments, 1, "{market:?} {purpose:?}: {}", sms.text);
                assert!(sms.text.contains("123456"));
            }
        }
        let ru = t.render(Market::Kg, OtpPurpose::Login, &code(), 10);
        assert_eq!(
            ru,
            "Marque: ваш код 123456. Действует 10 мин. Никому не сообщайте."
        );
        assert!(ru.chars().count() <= 70);
        let en = t.render(Market::Us, OtpPurpose::Login, &code(), 5);
        assert_eq!(
            en,
            "Marque: your code is 123456. It expires in 5 min. Do not share it."
        );
    }

    #[test]
    fn overrides_and_placeholders() {
        let mut t = MessageTemplates {
            app: "Shop {code}".into(),
            ..MessageTemplates::default()
        };
        t.overrides.insert(
            (Market::Kg, OtpPurpose::Login),
            "{app} — {code} ({minutes} мин) {unknown} {".into(),
        );
        assert_eq!(
            t.render(Market::Kg, OtpPurpose::Login, &code(), 3),
            "Shop {code} — 123456 (3 мин) {unknown} {"
        );
        assert!(
            t.render(Market::Us, OtpPurpose::Login, &code(), 3)
                .starts_with("Shop {code}: your code")
        );
    }

    #[test]
    fn autofill_line_is_last_and_origin_bound() {
        let t = MessageTemplates {
            autofill_domain: Some("shop.example".into()),
            ..MessageTemplates::default()
        };
        let sms = t.render_sms(Market::Us, OtpPurpose::Login, &code(), 10);
        assert!(
            sms.text.ends_with("\n\n@shop.example #123456"),
            "{}",
            sms.text
        );
        assert_eq!(sms.segments, 1);
        let ru = t.render_sms(Market::Kg, OtpPurpose::Login, &code(), 10);
        assert_eq!(
            ru.segments, 2,
            "the Russian text and the line exceed 70 UTF-16 units"
        );
    }

    #[test]
    fn segment_counts_follow_3gpp() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        // Extension characters take two septets.
        assert_eq!(sms_segments(&"€".repeat(80)), 1);
        assert_eq!(sms_segments(&"€".repeat(81)), 2);
        assert_eq!(sms_segments(&"ж".repeat(70)), 1);
        assert_eq!(sms_segments(&"ж".repeat(71)), 2);
        assert_eq!(sms_segments(&"ж".repeat(134)), 2);
        assert_eq!(sms_segments(&"ж".repeat(135)), 3);
        // One character outside GSM-7 switches the whole text to UCS-2.
        assert_eq!(sms_segments(&format!("{}ж", "a".repeat(70))), 2);
        // An emoji is two UTF-16 units.
        assert_eq!(sms_segments(&"😀".repeat(35)), 1);
        assert_eq!(sms_segments(&"😀".repeat(36)), 2);
    }
}
