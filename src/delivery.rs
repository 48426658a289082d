//! Delivery wiring: the providers of each market's channels, their callback checkers and the
//! message templates, from the settings (issue 8).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use marque_domain::{
    Channel, Clock, DeliveryCallback, MessageSender, MessengerConfig, MessengerWebhook, OtpPurpose,
    ReplySender, WidgetVerifier,
};
use marque_markets::Market;
use marque_messaging::{
    ConsoleSender, EmailSenders, EmailTemplates, MessageTemplates, Senders, SmsWebhook, SmtpConfig,
    SmtpMailer, Sns, SnsConfig, TelegramBot, TelegramGateway, TelegramGatewayConfig,
    TelegramReportCallback, TelegramWebhook, TelegramWidget, Twilio, TwilioConfig, TwilioFrom,
    TwilioStatusCallback, WebhookConfig, WhatsApp, WhatsAppConfig, WhatsAppReplies,
    WhatsAppWebhook,
};

use crate::settings::{Config, EmailProvider, MarketSettings, SmsProvider};

/// Path of Twilio's status callback (`StatusCallback` = `PUBLIC_BASE_URL` + this).
pub const TWILIO_STATUS_PATH: &str = "/api/v1/delivery/twilio/status";
/// Path of the Telegram Gateway's delivery reports (`callback_url` = `PUBLIC_BASE_URL` + this).
pub const TELEGRAM_REPORT_PATH: &str = "/api/v1/delivery/telegram/report";

/// The templates of code messages: `APP_NAME`, `OTP_AUTOFILL_DOMAIN`, and each market's
/// `SMS_TEMPLATE_{MARKET}` / `SMS_DELETE_ACCOUNT_TEMPLATE_{MARKET}`.
pub fn templates(config: &Config) -> MessageTemplates {
    let d = &config.settings.delivery;
    let mut overrides = BTreeMap::new();
    for market in Market::ALL {
        let m = config.settings.market(market);
        if let Some(t) = m.sms_template {
            overrides.insert((market, OtpPurpose::Login), t.as_str().to_owned());
        }
        if let Some(t) = m.sms_delete_account_template {
            overrides.insert((market, OtpPurpose::DeleteAccount), t.as_str().to_owned());
        }
    }
    MessageTemplates {
        app: d.app_name.as_str().to_owned(),
        overrides,
        autofill_domain: d
            .otp_autofill_domain
            .as_ref()
            .map(|t| t.as_str().to_owned()),
    }
}

/// The email templates (issue 10): `{{ app }}` is `APP_NAME`; links start with
/// `PUBLIC_BASE_URL`, or without it (development) with this server's own address,
/// `http://HOST:port` (`127.0.0.1` for an unspecified `HOST`), `port` being the one bound.
pub fn email_templates(config: &Config, port: u16) -> EmailTemplates {
    let d = &config.settings.delivery;
    let base = d.public_base_url.as_ref().map_or_else(
        || {
            let host = config.settings.server.host.as_str();
            let host = match host.parse::<std::net::IpAddr>() {
                Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
                Ok(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                _ => host.to_owned(),
            };
            format!("http://{host}:{port}")
        },
        |u| u.as_str().to_owned(),
    );
    EmailTemplates::new(d.app_name.as_str(), &base)
}

/// The mail transport of every market (issue 10, `EMAIL_PROVIDER`): the console, or one SMTP
/// transport (`SMTP_URL`, `SMTP_FROM`, checked when the settings were read) shared by every
/// market. Call inside the Tokio runtime (the SMTP connection pool needs it).
///
/// Errors: the SMTP settings are missing or malformed (naming the key, never its value).
pub fn email_senders(config: &Config) -> anyhow::Result<EmailSenders> {
    let d = &config.settings.delivery;
    let sender: Arc<dyn marque_domain::EmailSender> = match d.email_provider {
        EmailProvider::Console => Arc::new(ConsoleSender::default()),
        EmailProvider::Smtp => {
            let url = d.smtp_url.as_ref().context("SMTP_URL is required")?;
            let from = d.smtp_from.as_ref().context("SMTP_FROM is required")?;
            Arc::new(
                SmtpMailer::new(&SmtpConfig {
                    url: url.secret().clone(),
                    from: from.as_str().to_owned(),
                })
                .context("SMTP_URL / SMTP_FROM")?,
            )
        }
    };
    tracing::info!(provider = sender.name(), "email transport");
    Ok(EmailSenders::everywhere(sender))
}

fn callback_url(config: &Config, path: &str) -> Option<String> {
    let base = config.settings.delivery.public_base_url.as_ref()?;
    Some(format!("{}{path}", base.as_str()))
}

/// The providers of every market's channels (`AuthConfig::channels`, already narrowed to the
/// configured ones). One HTTP client serves every provider, and one provider instance every
/// market that uses it (Twilio: one per sender, since a market may send from its own).
///
/// Errors: a provider that cannot be built from its settings (a malformed webhook secret).
pub fn senders(
    config: &Config,
    http: &reqwest::Client,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Senders> {
    let d = &config.settings.delivery;
    // One provider per name; Twilio one per sender, since markets may send from their own.
    let mut built: BTreeMap<String, Arc<dyn MessageSender>> = BTreeMap::new();
    let mut senders = Senders::default();
    for market in Market::ALL {
        let m = config.settings.market(market);
        for channel in config.auth.channels(market) {
            let key: &'static str = match channel {
                Channel::Sms => m.sms_provider.unwrap_or(SmsProvider::Console).as_str(),
                Channel::WhatsApp => "whatsapp",
                Channel::Telegram => "telegram",
                Channel::Email => continue,
            };
            let id = match key {
                "twilio" => format!("twilio:{:?}", twilio_from(&m)),
                other => other.to_owned(),
            };
            let sender = match built.get(&id) {
                Some(s) => Arc::clone(s),
                None => {
                    let s = build(config, &m, key, http, clock)?;
                    built.insert(id, Arc::clone(&s));
                    s
                }
            };
            senders = senders.with(market, *channel, sender);
        }
    }
    tracing::info!(?senders, public_base_url = ?d.public_base_url.as_ref().map(|u| u.as_str()),
        "delivery providers");
    Ok(senders)
}

/// The Twilio sender of a market (its own `TWILIO_FROM_{MARKET}` pair, else the top-level one,
/// as [`crate::Settings::market`] resolved them).
fn twilio_from(market: &MarketSettings) -> Option<TwilioFrom> {
    let text = |t: &Option<crate::settings::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    match (
        text(&market.twilio_from),
        text(&market.twilio_messaging_service_sid),
    ) {
        (Some(n), _) => Some(TwilioFrom::Number(n)),
        (None, Some(sid)) => Some(TwilioFrom::MessagingService(sid)),
        (None, None) => None,
    }
}

/// One provider by its settings name, for `market`. The settings were checked when read: every credential a
/// provider in use needs is present.
fn build(
    config: &Config,
    market: &MarketSettings,
    name: &str,
    http: &reqwest::Client,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Arc<dyn MessageSender>> {
    let d = &config.settings.delivery;
    let text = |t: &Option<crate::settings::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    let missing = |key: &str| anyhow::anyhow!("{key} is required");
    Ok(match name {
        "twilio" => {
            let from = twilio_from(market).ok_or_else(|| missing("TWILIO_FROM"))?;
            Arc::new(Twilio::new(
                TwilioConfig {
                    base_url: d.twilio_base_url.as_str().to_owned(),
                    account_sid: text(&d.twilio_account_sid)
                        .ok_or_else(|| missing("TWILIO_ACCOUNT_SID"))?,
                    auth_token: d
                        .twilio_auth_token
                        .as_ref()
                        .ok_or_else(|| missing("TWILIO_AUTH_TOKEN"))?
                        .secret()
                        .clone(),
                    from,
                    status_callback: callback_url(config, TWILIO_STATUS_PATH),
                },
                http.clone(),
            ))
        }
        "sns" => Arc::new(Sns::new(
            SnsConfig {
                region: text(&d.aws_region).ok_or_else(|| missing("AWS_REGION"))?,
                endpoint_url: d.sns_endpoint_url.as_ref().map(|u| u.as_str().to_owned()),
                access_key_id: text(&d.aws_access_key_id)
                    .ok_or_else(|| missing("AWS_ACCESS_KEY_ID"))?,
                secret_access_key: d
                    .aws_secret_access_key
                    .as_ref()
                    .ok_or_else(|| missing("AWS_SECRET_ACCESS_KEY"))?
                    .secret()
                    .clone(),
                sender_id: text(&d.sns_sender_id),
            },
            http.clone(),
        )),
        "webhook" => Arc::new(
            SmsWebhook::new(
                WebhookConfig {
                    url: d
                        .sms_webhook_url
                        .as_ref()
                        .ok_or_else(|| missing("SMS_WEBHOOK_URL"))?
                        .as_str()
                        .to_owned(),
                    secret: d
                        .sms_webhook_secret
                        .as_ref()
                        .ok_or_else(|| missing("SMS_WEBHOOK_SECRET"))?
                        .secret()
                        .clone(),
                },
                http.clone(),
            )
            .context("SMS_WEBHOOK_URL / SMS_WEBHOOK_SECRET")?,
        ),
        "whatsapp" => {
            let languages = Market::ALL
                .iter()
                .filter_map(|m| {
                    let lang = config.settings.market(*m).whatsapp_template_language?;
                    Some((*m, lang.as_str().to_owned()))
                })
                .collect();
            Arc::new(WhatsApp::new(
                WhatsAppConfig {
                    base_url: d.whatsapp_api_base_url.as_str().to_owned(),
                    phone_number_id: text(&d.whatsapp_phone_number_id)
                        .ok_or_else(|| missing("WHATSAPP_PHONE_NUMBER_ID"))?,
                    access_token: d
                        .whatsapp_access_token
                        .as_ref()
                        .ok_or_else(|| missing("WHATSAPP_ACCESS_TOKEN"))?
                        .secret()
                        .clone(),
                    template_name: text(&d.whatsapp_template_name)
                        .ok_or_else(|| missing("WHATSAPP_TEMPLATE_NAME"))?,
                    languages,
                },
                http.clone(),
            ))
        }
        "telegram" => Arc::new(
            TelegramGateway::new(
                TelegramGatewayConfig {
                    base_url: d.telegram_gateway_base_url.as_str().to_owned(),
                    token: d
                        .telegram_gateway_token
                        .as_ref()
                        .ok_or_else(|| missing("TELEGRAM_GATEWAY_TOKEN"))?
                        .secret()
                        .clone(),
                    callback_url: callback_url(config, TELEGRAM_REPORT_PATH),
                },
                http.clone(),
            )
            .with_clock(Arc::clone(clock)),
        ),
        _ => Arc::new(ConsoleSender::default()),
    })
}

/// The checkers of the delivery reports of the providers in use (Twilio, the Telegram Gateway).
pub fn callbacks(config: &Config, clock: &Arc<dyn Clock>) -> Vec<Arc<dyn DeliveryCallback>> {
    let d = &config.settings.delivery;
    let mut out: Vec<Arc<dyn DeliveryCallback>> = Vec::new();
    let uses = |provider: SmsProvider| {
        Market::ALL.iter().any(|m| {
            config.auth.channels(*m).contains(&Channel::Sms)
                && config.settings.market(*m).sms_provider == Some(provider)
        })
    };
    if uses(SmsProvider::Twilio)
        && let Some(token) = &d.twilio_auth_token
    {
        out.push(Arc::new(TwilioStatusCallback::new(token.secret().clone())));
    }
    let telegram = Market::ALL
        .iter()
        .any(|m| config.auth.channels(*m).contains(&Channel::Telegram));
    if telegram && let Some(token) = &d.telegram_gateway_token {
        out.push(Arc::new(TelegramReportCallback::with_clock(
            token.secret().clone(),
            Arc::clone(clock),
        )));
    }
    out
}

/// The shared HTTP client of the providers.
///
/// Errors: the TLS backend cannot start.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    marque_messaging::provider_client().context("building the providers' HTTP client")
}

/// Path of the WhatsApp webhook (the Callback URL of the Meta app = `PUBLIC_BASE_URL` + this).
pub const WHATSAPP_WEBHOOK_PATH: &str = "/api/v1/whatsapp/webhook";
/// Path of the Telegram webhook (`setWebhook` `url` = `PUBLIC_BASE_URL` + this).
pub const TELEGRAM_WEBHOOK_PATH: &str = "/api/v1/telegram/webhook";

/// Messenger login's pieces (issue 9), from the settings: the service's configuration, the
/// webhooks and widget check of the configured channels, and the reply senders of the worker.
pub struct MessengerWiring {
    /// The service's configuration.
    pub config: MessengerConfig,
    /// One webhook checker per configured channel.
    pub webhooks: Vec<Arc<dyn MessengerWebhook>>,
    /// The Login Widget check (with Telegram).
    pub widget: Option<Arc<dyn WidgetVerifier>>,
    /// The reply senders of the configured channels.
    pub replies: Vec<(Channel, Arc<dyn ReplySender>)>,
}

impl MessengerWiring {
    /// Whether any messenger login is configured.
    pub fn any(&self) -> bool {
        !self.webhooks.is_empty()
    }
}

/// Messenger login from the settings: WhatsApp when `WHATSAPP_BUSINESS_NUMBER`,
/// `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_APP_SECRET`, `WHATSAPP_PHONE_NUMBER_ID` and
/// `WHATSAPP_ACCESS_TOKEN` are set; Telegram when `TELEGRAM_BOT_USERNAME`, `TELEGRAM_BOT_TOKEN`
/// and `TELEGRAM_WEBHOOK_SECRET` are. A channel with only some of them is left off, with a
/// warning.
pub fn messenger(config: &Config, http: &reqwest::Client) -> MessengerWiring {
    let s = &config.settings.messenger;
    let d = &config.settings.delivery;
    let text = |t: &Option<crate::settings::Text>| t.as_ref().map(|t| t.as_str().to_owned());
    let secret =
        |t: &Option<crate::settings::ProviderSecret>| t.as_ref().map(|t| t.secret().clone());
    let mut wiring = MessengerWiring {
        config: MessengerConfig {
            ttl: chrono::Duration::seconds(
                i64::try_from(s.messenger_login_ttl_seconds.get()).unwrap_or(300),
            ),
            default_market: config.settings.server.default_market,
            whatsapp_number: None,
            telegram_bot: None,
        },
        webhooks: Vec::new(),
        widget: None,
        replies: Vec::new(),
    };
    let wa = (
        text(&s.whatsapp_business_number),
        secret(&s.whatsapp_verify_token),
        secret(&s.whatsapp_app_secret),
        text(&d.whatsapp_phone_number_id),
        secret(&d.whatsapp_access_token),
    );
    match wa {
        (Some(number), Some(verify), Some(app), Some(phone_id), Some(token)) => {
            wiring.config.whatsapp_number = Some(number.trim_start_matches('+').to_owned());
            wiring
                .webhooks
                .push(Arc::new(WhatsAppWebhook::new(app, verify)));
            wiring.replies.push((
                Channel::WhatsApp,
                Arc::new(WhatsAppReplies::new(
                    d.whatsapp_api_base_url.as_str().to_owned(),
                    phone_id,
                    token,
                    http.clone(),
                )),
            ));
        }
        (None, None, None, _, _) => {}
        _ => tracing::warn!(
            "WhatsApp login is off: it needs WHATSAPP_BUSINESS_NUMBER, WHATSAPP_VERIFY_TOKEN, \
             WHATSAPP_APP_SECRET, WHATSAPP_PHONE_NUMBER_ID and WHATSAPP_ACCESS_TOKEN"
        ),
    }
    let tg = (
        text(&s.telegram_bot_username),
        secret(&s.telegram_bot_token),
        secret(&s.telegram_webhook_secret),
    );
    match tg {
        (Some(bot), Some(token), Some(hook)) => {
            wiring.config.telegram_bot = Some(bot.trim_start_matches('@').to_owned());
            wiring.webhooks.push(Arc::new(TelegramWebhook::new(hook)));
            wiring.widget = Some(Arc::new(TelegramWidget::new(token.clone())));
            wiring.replies.push((
                Channel::Telegram,
                Arc::new(TelegramBot::new(
                    s.telegram_bot_api_base_url.as_str().to_owned(),
                    token,
                    http.clone(),
                )),
            ));
        }
        (None, None, None) => {}
        _ => tracing::warn!(
            "Telegram login is off: it needs TELEGRAM_BOT_USERNAME, TELEGRAM_BOT_TOKEN and \
             TELEGRAM_WEBHOOK_SECRET"
        ),
    }
    wiring
}
