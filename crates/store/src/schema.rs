//! diesel table definitions of the authentication tables.
//!
//! Most tables are alike in every market (`migrations-common/`). Addresses and payment methods
//! are created per market (`migrations-kg/`, `migrations-us/`): payment methods differ only in
//! the values their CHECK constraints allow, so one `table!` serves both; addresses differ in
//! their columns, so `user_addresses` here has the shared columns and [`kg`] / [`us`] the rest.
//! Only portable SQL types are used so one query serves PostgreSQL and SQLite.

diesel::table! {
    /// Shoppers of the market.
    users (id) {
        /// Row id.
        id -> BigInt,
        /// E.164 number, unique; NULL for an email account without a phone (issue 10).
        phone_number -> Nullable<Text>,
        /// Display name.
        full_name -> Nullable<Text>,
        /// Avatar URL.
        profile_image_url -> Nullable<Text>,
        /// Whether the number was verified.
        is_verified -> Bool,
        /// Whether the account is enabled.
        is_active -> Bool,
        /// Last successful verification (UTC).
        last_login -> Nullable<Timestamp>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// One-time-code challenges.
    phone_verifications (id) {
        /// Row id; the newest challenge of a number has the highest id.
        id -> BigInt,
        /// E.164 number.
        phone_number -> Text,
        /// HMAC of the code.
        code_hash -> Binary,
        /// `ChallengeStatus::as_str`.
        status -> Text,
        /// Wrong tries so far.
        attempts -> Integer,
        /// Client IP at issue time.
        client_ip -> Nullable<Text>,
        /// Issue time (UTC).
        created_at -> Timestamp,
        /// Expiry (UTC).
        expires_at -> Timestamp,
        /// When the code was used.
        consumed_at -> Nullable<Timestamp>,
        /// `OtpPurpose::as_str` (`login`, `delete_account`).
        purpose -> Text,
        /// The challenge's unguessable id (base64url, 128 bits); `NULL` on rows older than it.
        challenge_id -> Nullable<Text>,
        /// `Channel::as_str` of the first channel tried.
        channel -> Text,
    }
}

diesel::table! {
    /// Consecutive wrong codes per number, across challenges, and the lock they lead to.
    phone_failures (phone_number) {
        /// E.164 number.
        phone_number -> Text,
        /// Wrong codes since the last success or lock.
        consecutive -> Integer,
        /// End of the current lock (UTC).
        locked_until -> Nullable<Timestamp>,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Login sessions.
    sessions (id) {
        /// UUID v4 text.
        id -> Text,
        /// Owner.
        user_id -> BigInt,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Natural end (UTC).
        expires_at -> Timestamp,
        /// Last use (UTC).
        last_seen_at -> Timestamp,
        /// Revocation time, if revoked.
        revoked_at -> Nullable<Timestamp>,
        /// Client `User-Agent` at login.
        user_agent -> Nullable<Text>,
        /// Client IP at login.
        client_ip -> Nullable<Text>,
    }
}

diesel::table! {
    /// Fixed-window rate-limit buckets.
    rate_limits (bucket) {
        /// Bucket key.
        bucket -> Text,
        /// Opening of the current window (UTC).
        window_started_at -> Timestamp,
        /// Hits admitted in the window; 0 marks a row only created to be locked.
        hits -> Integer,
        /// Last admitted hit (UTC).
        last_hit_at -> Timestamp,
    }
}

diesel::table! {
    /// Delivery outbox.
    outbox (id) {
        /// Row id.
        id -> BigInt,
        /// `Channel::as_str`.
        channel -> Text,
        /// E.164 recipient.
        recipient -> Text,
        /// Sealed body; empty once scrubbed.
        payload -> Binary,
        /// `pending`, `sent`, `failed` or `expired`.
        status -> Text,
        /// Failed delivery attempts.
        attempts -> Integer,
        /// Not before this instant (UTC).
        next_attempt_at -> Timestamp,
        /// Lease of the worker delivering it.
        locked_until -> Nullable<Timestamp>,
        /// Pointless after this instant (UTC).
        expires_at -> Timestamp,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Delivery time.
        sent_at -> Nullable<Timestamp>,
        /// Last provider error (truncated).
        last_error -> Nullable<Text>,
        /// The challenge whose code this is.
        challenge_id -> Nullable<Text>,
        /// Channels still to fall back to, comma-separated, in order.
        fallback_channels -> Text,
        /// The first channel tried, once fallen back.
        fallback_from -> Nullable<Text>,
        /// Provider that took it (`twilio`…).
        provider -> Nullable<Text>,
        /// The provider's id of the message.
        provider_message_id -> Nullable<Text>,
        /// `delivered` or `undelivered`, from the provider's report.
        delivery_status -> Nullable<Text>,
        /// When the provider reported it delivered (UTC).
        delivered_at -> Nullable<Timestamp>,
        /// SMS segments billed.
        segments -> Nullable<Integer>,
    }
}

diesel::table! {
    /// Messages per number prefix in the current hour and the prefix's usual hourly rate (SMS
    /// pumping guard).
    sms_prefix_stats (prefix) {
        /// Country calling code and first three national digits, e.g. `+996505`.
        prefix -> Text,
        /// Start of the counted hour (UTC).
        hour_start -> Timestamp,
        /// Messages in that hour.
        sent -> Integer,
        /// Usual messages per hour before it, in thousandths.
        baseline_milli -> BigInt,
    }
}

diesel::joinable!(sessions -> users (user_id));

diesel::table! {
    /// Refresh tokens (hashes only).
    refresh_tokens (id) {
        /// Row id.
        id -> BigInt,
        /// Session the token belongs to.
        session_id -> Text,
        /// SHA-256 of the token text.
        token_hash -> Binary,
        /// Issue time (UTC).
        created_at -> Timestamp,
        /// Expiry (UTC).
        expires_at -> Timestamp,
        /// When it was exchanged for its successor.
        rotated_at -> Nullable<Timestamp>,
        /// The successor's row id.
        successor_id -> Nullable<BigInt>,
        /// MAC of the client that rotated it (user agent + IP prefix), for grace-window replays.
        rotated_client -> Nullable<Binary>,
    }
}

diesel::table! {
    /// Audit trail of deleted accounts, without personal data.
    account_deletions (id) {
        /// Row id.
        id -> BigInt,
        /// Id the deleted account had.
        user_id -> BigInt,
        /// Deletion time (UTC).
        deleted_at -> Timestamp,
    }
}

diesel::table! {
    /// Audit log of security events (never a code or a token).
    audit_log (id) {
        /// Row id.
        id -> BigInt,
        /// When it happened (UTC).
        occurred_at -> Timestamp,
        /// `AuditEvent::kind`.
        event -> Text,
        /// The user concerned.
        user_id -> Nullable<BigInt>,
        /// Client IP.
        client_ip -> Nullable<Text>,
        /// Client `User-Agent` (truncated).
        user_agent -> Nullable<Text>,
        /// `AuditEvent::detail`.
        detail -> Nullable<Text>,
    }
}

diesel::joinable!(refresh_tokens -> sessions (session_id));

diesel::table! {
    /// Messenger logins (issue 9): pending, then completed with sealed tokens until polled.
    messenger_logins (id) {
        /// `login_id`.
        id -> Text,
        /// `whatsapp` or `telegram`.
        channel -> Text,
        /// HMAC of the nonce.
        nonce_hash -> Binary,
        /// HMAC of the poll secret.
        poll_secret_hash -> Binary,
        /// `pending`, `claimed`, `completed`, `consumed` or `failed`.
        status -> Text,
        /// HMAC of the Telegram user id that pressed Start.
        telegram_user_hash -> Nullable<Binary>,
        /// Sealed tokens of a completed login, until the poll takes them.
        result -> Nullable<Binary>,
        /// Error code of a failed login.
        error -> Nullable<Text>,
        /// The starting app's `User-Agent`.
        user_agent -> Nullable<Text>,
        /// Start time (UTC).
        created_at -> Timestamp,
        /// Expiry (UTC).
        expires_at -> Timestamp,
        /// Completion time (UTC).
        completed_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Webhook events already handled (`wa:<wamid>`, `tg:<update_id>`).
    messenger_seen (event_id) {
        /// Event id.
        event_id -> Text,
        /// When it was first received (UTC).
        received_at -> Timestamp,
    }
}

diesel::table! {
    /// Telegram accounts linked to users.
    telegram_links (telegram_user_id) {
        /// Telegram user id.
        telegram_user_id -> BigInt,
        /// The linked user.
        user_id -> BigInt,
        /// Link time (UTC).
        linked_at -> Timestamp,
    }
}

diesel::joinable!(telegram_links -> users (user_id));

diesel::table! {
    /// Email addresses and passwords of accounts (issue 10).
    email_identities (user_id) {
        /// The account (one identity per account).
        user_id -> BigInt,
        /// The address as typed, domain lower-cased.
        email -> Text,
        /// The address lower-cased, unique.
        email_key -> Text,
        /// Argon2id PHC string.
        password_hash -> Text,
        /// When the address was verified (UTC).
        verified_at -> Nullable<Timestamp>,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::joinable!(email_identities -> users (user_id));

diesel::table! {
    /// Email verification and password-reset link tokens (HMACs only; issue 10).
    email_tokens (id) {
        /// Row id.
        id -> BigInt,
        /// HMAC of the token.
        token_hash -> Binary,
        /// `verify` or `reset`.
        purpose -> Text,
        /// The account.
        user_id -> BigInt,
        /// Key of the address the token was sent to.
        email_key -> Text,
        /// Issue time (UTC).
        created_at -> Timestamp,
        /// Expiry (UTC).
        expires_at -> Timestamp,
        /// When used or retired (UTC).
        used_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(email_tokens -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    phone_verifications,
    sessions,
    rate_limits,
    sms_prefix_stats,
    outbox,
    refresh_tokens,
    account_deletions,
    audit_log,
    telegram_links,
    email_identities,
    email_tokens
);

diesel::table! {
    /// Delivery addresses: the columns every market's `user_addresses` has (ownership, default
    /// flag, times). The market-specific postal columns are in [`kg::user_addresses`] and
    /// [`us::user_addresses`] — the same table seen with its market's columns.
    user_addresses (id) {
        /// Row id.
        id -> BigInt,
        /// Owner.
        user_id -> BigInt,
        /// The shopper's name for the address.
        title -> Nullable<Text>,
        /// Whether it is the owner's default (at most one per owner).
        is_default -> Bool,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

/// The KG schema's market-specific tables.
pub mod kg {
    diesel::table! {
        /// Kyrgyz delivery addresses.
        user_addresses (id) {
            /// Row id.
            id -> BigInt,
            /// Owner.
            user_id -> BigInt,
            /// The shopper's name for the address.
            title -> Nullable<Text>,
            /// Street, e.g. `ул. Юнусалиева`.
            street -> Text,
            /// Building number.
            building -> Text,
            /// Apartment.
            apartment -> Nullable<Text>,
            /// City.
            city -> Text,
            /// ISO 3166-2:KG subdivision code (`GB`, `C`…).
            region_code -> Text,
            /// 6-digit postal code.
            postal_code -> Nullable<Text>,
            /// Whether it is the owner's default.
            is_default -> Bool,
            /// Creation time (UTC).
            created_at -> Timestamp,
            /// Last change (UTC).
            updated_at -> Timestamp,
        }
    }
}

/// The US schema's market-specific tables.
pub mod us {
    diesel::table! {
        /// US delivery addresses.
        user_addresses (id) {
            /// Row id.
            id -> BigInt,
            /// Owner.
            user_id -> BigInt,
            /// The shopper's name for the address.
            title -> Nullable<Text>,
            /// First line, e.g. `123 Main St`.
            street_address -> Text,
            /// Second line.
            address_line2 -> Nullable<Text>,
            /// City.
            city -> Text,
            /// USPS state code.
            state -> Text,
            /// ZIP or ZIP+4.
            zip_code -> Text,
            /// Whether it is the owner's default.
            is_default -> Bool,
            /// Creation time (UTC).
            created_at -> Timestamp,
            /// Last change (UTC).
            updated_at -> Timestamp,
        }
    }
}

diesel::table! {
    /// Saved payment methods (never a card number).
    user_payment_methods (id) {
        /// Row id.
        id -> BigInt,
        /// Owner.
        user_id -> BigInt,
        /// `PaymentType::as_str`.
        payment_type -> Text,
        /// `CardBrand::as_str`, cards only.
        card_type -> Nullable<Text>,
        /// Last four digits, cards only.
        card_last4 -> Nullable<Text>,
        /// Expiry month 1–12.
        expiry_month -> Nullable<Integer>,
        /// Expiry year, four digits.
        expiry_year -> Nullable<Integer>,
        /// Name on the card.
        card_holder_name -> Nullable<Text>,
        /// Payment processor's token.
        provider_token -> Nullable<Text>,
        /// Whether it is the owner's default (at most one per owner).
        is_default -> Bool,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// Last change (UTC).
        updated_at -> Timestamp,
    }
}

diesel::table! {
    /// Notifications to shoppers.
    user_notifications (id) {
        /// Row id; newer notifications have higher ids.
        id -> BigInt,
        /// Recipient.
        user_id -> BigInt,
        /// `NotificationKind::as_str`.
        notification_type -> Text,
        /// Title.
        title -> Text,
        /// Text.
        message -> Text,
        /// The order it concerns.
        order_id -> Nullable<BigInt>,
        /// Whether it was read.
        is_read -> Bool,
        /// Creation time (UTC).
        created_at -> Timestamp,
        /// When it was first marked read (UTC).
        read_at -> Nullable<Timestamp>,
    }
}
