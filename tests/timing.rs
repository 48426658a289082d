//! Email sign-in timing (issue 10), in a test binary of its own: it compares response times, so
//! no other end-to-end test may load the machine meanwhile (cargo runs test binaries one after
//! another).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "api/email_timing.rs"]
mod email_timing;
#[allow(dead_code, unused_macros)]
#[path = "api/helpers.rs"]
mod helpers;
