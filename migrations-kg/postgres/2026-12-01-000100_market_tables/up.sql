-- Shopper account data that differs by market (KG): delivery addresses and saved payment
-- methods. Runs after the common tree (`migrations-common/`), whose `users` it references.
-- Rows belong to a user and go with the account (ON DELETE CASCADE). At most one default address
-- and one default payment method per user (partial unique indexes); the application keeps exactly
-- one while the user has any. Timestamps are UTC, written by the application.
-- Folded from the pre-release migrations; append-only from here on (see
-- ../../migrations-common/README.md).

-- Kyrgyz addresses: street, building, apartment, city, region (ISO 3166-2:KG code), postal code.
CREATE TABLE user_addresses (
    id           BIGSERIAL PRIMARY KEY,
    user_id      BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title        TEXT      NULL,
    street       TEXT      NOT NULL,
    building     TEXT      NOT NULL,
    apartment    TEXT      NULL,
    city         TEXT      NOT NULL,
    region_code  TEXT      NOT NULL
        CHECK (region_code IN ('GB', 'GO', 'B', 'C', 'J', 'N', 'O', 'T', 'Y')),
    postal_code  TEXT      NULL,                          -- 6 digits, 7xxxxx
    is_default   BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);
CREATE INDEX user_addresses_user_id_idx ON user_addresses (user_id);
CREATE UNIQUE INDEX user_addresses_one_default_idx ON user_addresses (user_id) WHERE is_default;

-- Saved payment methods. Never a card number: brand, last four digits, expiry and holder name only
-- (PCI DSS 3.3/3.4), or a payment processor's token.
CREATE TABLE user_payment_methods (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    payment_type     TEXT      NOT NULL
        CHECK (payment_type IN ('card', 'cash_on_delivery', 'bank_transfer')),
    card_type        TEXT      NULL
        CHECK (card_type IN ('visa', 'mastercard', 'elcart')),
    card_last4       TEXT      NULL CHECK (length(card_last4) = 4),
    expiry_month     INTEGER   NULL CHECK (expiry_month BETWEEN 1 AND 12),
    expiry_year      INTEGER   NULL CHECK (expiry_year BETWEEN 2000 AND 2099),
    card_holder_name TEXT      NULL,
    provider_token   TEXT      NULL,
    is_default       BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL,
    CHECK ((payment_type = 'card') = (card_type IS NOT NULL AND card_last4 IS NOT NULL)),
    CHECK ((expiry_month IS NULL) = (expiry_year IS NULL))
);
CREATE INDEX user_payment_methods_user_id_idx ON user_payment_methods (user_id);
CREATE UNIQUE INDEX user_payment_methods_one_default_idx
    ON user_payment_methods (user_id) WHERE is_default;
