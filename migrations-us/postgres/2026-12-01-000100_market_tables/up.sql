-- Shopper account data that differs by market (US): delivery addresses and saved payment
-- methods. Runs after the common tree (`migrations-common/`), whose `users` it references.
-- Rows belong to a user and go with the account (ON DELETE CASCADE). At most one default address
-- and one default payment method per user (partial unique indexes); the application keeps exactly
-- one while the user has any. Timestamps are UTC, written by the application.
-- Folded from the pre-release migrations; append-only from here on (see
-- ../../migrations-common/README.md).

-- US addresses: street address, second line, city, USPS state code, ZIP or ZIP+4.
CREATE TABLE user_addresses (
    id             BIGSERIAL PRIMARY KEY,
    user_id        BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT      NULL,
    street_address TEXT      NOT NULL,
    address_line2  TEXT      NULL,
    city           TEXT      NOT NULL,
    state          TEXT      NOT NULL                     -- USPS Publication 28, Appendix B
        CHECK (state IN (
            'AL', 'AK', 'AZ', 'AR', 'CA', 'CO', 'CT', 'DE', 'DC', 'FL', 'GA', 'HI', 'ID', 'IL',
            'IN', 'IA', 'KS', 'KY', 'LA', 'ME', 'MD', 'MA', 'MI', 'MN', 'MS', 'MO', 'MT', 'NE',
            'NV', 'NH', 'NJ', 'NM', 'NY', 'NC', 'ND', 'OH', 'OK', 'OR', 'PA', 'RI', 'SC', 'SD',
            'TN', 'TX', 'UT', 'VT', 'VA', 'WA', 'WV', 'WI', 'WY', 'AS', 'GU', 'MP', 'PR', 'VI'
        )),
    zip_code       TEXT      NOT NULL,                    -- 12345 or 12345-6789
    is_default     BOOLEAN   NOT NULL DEFAULT FALSE,
    created_at     TIMESTAMP NOT NULL,
    updated_at     TIMESTAMP NOT NULL
);
CREATE INDEX user_addresses_user_id_idx ON user_addresses (user_id);
CREATE UNIQUE INDEX user_addresses_one_default_idx ON user_addresses (user_id) WHERE is_default;

-- Saved payment methods. Never a card number: brand, last four digits, expiry and holder name only
-- (PCI DSS 3.3/3.4), or a payment processor's token.
CREATE TABLE user_payment_methods (
    id               BIGSERIAL PRIMARY KEY,
    user_id          BIGINT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    payment_type     TEXT      NOT NULL
        CHECK (payment_type IN ('card', 'paypal', 'apple_pay', 'google_pay')),
    card_type        TEXT      NULL
        CHECK (card_type IN ('visa', 'mastercard', 'amex', 'discover')),
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
