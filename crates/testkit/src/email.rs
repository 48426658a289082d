//! Reading emails the service queued (issue 10): the newest email outbox row of a recipient,
//! opened with the test's sealing key. Until a mail transport delivers them, this is how tests
//! follow the links they carry.

use diesel::prelude::*;
use marque_domain::{EmailPayload, PayloadSealer};

#[derive(QueryableByName)]
struct Payload {
    #[diesel(sql_type = diesel::sql_types::Binary)]
    payload: Vec<u8>,
}

/// The newest email queued to `to` in the database at `db_url` (`sqlite://…` or
/// `postgres://…`), opened with `sealer`; `None` when there is none (or it was scrubbed).
pub fn latest_email(db_url: &str, sealer: &PayloadSealer, to: &str) -> Option<EmailPayload> {
    emails(db_url, sealer, to).pop()
}

/// Every email queued to `to`, oldest first (scrubbed ones left out).
pub fn emails(db_url: &str, sealer: &PayloadSealer, to: &str) -> Vec<EmailPayload> {
    let sql = format!(
        "SELECT payload FROM outbox WHERE channel = 'email' AND recipient = '{}' ORDER BY id",
        to.replace('\'', "''")
    );
    let rows: Vec<Payload> = if let Some(path) = db_url.strip_prefix("sqlite://") {
        let mut c = crate::sqlite_connection(path);
        diesel::sql_query(sql).load(&mut c).unwrap()
    } else {
        let mut c = PgConnection::establish(db_url).unwrap();
        diesel::sql_query(sql).load(&mut c).unwrap()
    };
    rows.into_iter()
        .filter_map(|r| sealer.open(&r.payload).ok())
        .filter_map(|bytes| EmailPayload::decode(&bytes))
        .collect()
}
