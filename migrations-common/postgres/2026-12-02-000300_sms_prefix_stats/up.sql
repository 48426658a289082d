-- SMS-pumping guard (issue 12, item 14): messages per number prefix (country code + first three
-- national digits) in the current UTC hour, and the prefix's usual hourly rate (an exponentially
-- weighted average over about a day, in thousandths of a message) for the velocity alarm.
-- One row per prefix; no personal data (a prefix names an operator range or area code).
CREATE TABLE sms_prefix_stats (
    prefix         TEXT      PRIMARY KEY,
    hour_start     TIMESTAMP NOT NULL,
    sent           INTEGER   NOT NULL CHECK (sent >= 0),
    baseline_milli BIGINT    NOT NULL CHECK (baseline_milli >= 0)
);
