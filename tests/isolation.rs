//! Failure isolation (issue 11), in a test binary of its own: it compares the healthy market's
//! latency with and without the other market's database, so no other end-to-end test may load
//! the machine between its two phases (cargo runs test binaries one after another).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[allow(dead_code, unused_macros)]
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/isolation.rs"]
mod isolation;
