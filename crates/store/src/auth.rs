//! [`AuthRepository`] on a market database.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use marque_domain::challenge::{self, ChallengeStatus, FailureState, Judgement};
use marque_domain::refresh::{self, RefreshJudgement, RefreshState, SessionState};
use marque_domain::sms_guard::{BudgetGuard, BudgetTrip, PrefixAlarm, PrefixState, SmsGuards};
use marque_domain::{
    AttemptGuard, AuditEvent, AuthRepository, BucketState, Channel, ClientInfo, CodeCheck,
    DeleteAccount, IssueChallenge, IssueOutcome, NewRefreshToken, NewSession, OtpPurpose,
    ProfileUpdate, RateLimitCheck, RateLimitPolicy, RepoError, RetryAfter, RevokeScope,
    RotateOutcome, RotateRefresh, SessionId, SessionInfo, SignInProven, TelegramLink, User, UserId,
    VerifyChallenge, VerifyOutcome,
};
use marque_markets::Market;
use tracing::instrument;

use crate::MarketStore;
use crate::audit::insert_audit;
use crate::connection::{
    DbConnection, lock_failures, lock_refresh, lock_rows, newest_challenge, write_tx,
};
use crate::models::{BucketRow, SessionRow, USER_COLUMNS, UserRow, from_db, to_db, to_i32};
use crate::pg_batch::{
    IssueInserts, ReturningSignIn, ReturningSignInRow, SetChallengeStatus, StoreCounters,
};
use crate::schema::{
    account_deletions, audit_log, email_identities, outbox, phone_failures, phone_verifications,
    rate_limits, refresh_tokens, sessions, sms_prefix_stats, telegram_links, users,
};
use crate::store::TxError;

/// Outbox status of a message waiting for delivery.
pub(crate) const OUTBOX_PENDING: &str = "pending";

/// Stands in for a stored hash when the number has no challenge, so the comparison still runs.
const NO_HASH: [u8; 32] = [0; 32];

/// Profile columns to change; `None` leaves a column alone, `Some(None)` sets NULL.
#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct ProfileChanges<'a> {
    full_name: Option<Option<&'a str>>,
    profile_image_url: Option<Option<&'a str>>,
    updated_at: NaiveDateTime,
}

impl AuthRepository for MarketStore {
    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn ping(&self) -> Result<(), RepoError> {
        self.read(|conn| {
            diesel::sql_query("SELECT 1").execute(conn)?;
            Ok(())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn issue_challenge(&self, cmd: IssueChallenge) -> Result<IssueOutcome, RepoError> {
        // Queued with the market's other send-codes of the moment and decided with them in one
        // transaction (`crate::batching`, issue 13).
        self.issue_queue().issue(self, cmd)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn bucket_states(&self, buckets: &[&str]) -> Result<Vec<Option<BucketState>>, RepoError> {
        // Read together with the other reads of the moment (`crate::batching`, issue 13).
        let keys = buckets.iter().map(|&k| k.to_owned()).collect();
        self.bucket_reads().read(self, keys)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn verify_challenge(&self, cmd: VerifyChallenge<'_>) -> Result<VerifyOutcome, RepoError> {
        let attempt = CodeAttempt::new(OtpPurpose::Login, &cmd.check);
        let (market, phone, now) = (self.market(), attempt.phone, to_db(attempt.now));
        self.with_accepted_code(attempt, |conn| {
            if let Some(user) = cmd.attach_to {
                // An email user adds this number (issue 10).
                if !crate::email::attach_phone(conn, user.0, phone, now)? {
                    return Ok(VerifyOutcome::PhoneInUse);
                }
                return crate::email::open_user_session(
                    conn,
                    market,
                    user.0,
                    &cmd.session,
                    &cmd.refresh,
                    (attempt.now, now),
                    "code",
                );
            }
            // Told only after a right code (the code is consumed), so a stranger learns nothing.
            open_session(
                conn,
                market,
                phone,
                &cmd.session,
                &cmd.refresh,
                (attempt.now, now),
                "code",
            )
        })
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(market = self.code(), user = user.0, session = session.0.as_str())
    )]
    fn active_session(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        let now = to_db(now);
        self.read(|conn| {
            let expires = on_backend!(conn, |c| sessions::table
                .filter(sessions::id.eq(session.0.as_str()))
                .filter(sessions::user_id.eq(user.0))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now))
                .select(sessions::expires_at)
                .first::<NaiveDateTime>(c)
                .optional())?;
            Ok(expires.map(from_db))
        })
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(market = self.code(), user = user.0, session = session.0.as_str())
    )]
    fn session_user(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError> {
        let market = self.market();
        let now = to_db(now);
        let row = self.read(|conn| {
            Ok(on_backend!(conn, |c| sessions::table
                .inner_join(users::table)
                .left_join(email_identities::table.on(email_identities::user_id.eq(users::id)))
                .filter(sessions::id.eq(session.0.as_str()))
                .filter(sessions::user_id.eq(user.0))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now))
                .filter(users::is_active.eq(true))
                // A constant column tuple, not `UserRow::as_select()`: diesel's `SelectBy` has no
                // static query id, so every call would render the SQL text again (quoting each
                // identifier) just to find the prepared statement — measurable on the hottest
                // read there is (issue 13).
                .select((
                    USER_COLUMNS,
                    (email_identities::email, email_identities::verified_at).nullable(),
                ))
                .first::<(UserRow, Option<(String, Option<NaiveDateTime>)>)>(c)
                .optional())?)
        })?;
        let Some((row, email)) = row else {
            return Ok(None);
        };
        let mut user = row.into_user(market)?;
        crate::email::set_email(&mut user, email);
        Ok(Some(user))
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn update_profile(
        &self,
        user: UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError> {
        let market = self.market();
        let changes = ProfileChanges {
            full_name: update
                .full_name
                .as_ref()
                .map(|v| v.as_ref().map(|n| n.as_str())),
            profile_image_url: update
                .profile_image_url
                .as_ref()
                .map(|v| v.as_ref().map(|u| u.as_str())),
            updated_at: to_db(now),
        };
        let row = self.with_conn(|conn| {
            let row = diesel::update(users::table.find(user.0))
                .set(&changes)
                .returning(USER_COLUMNS)
                .get_result::<UserRow>(conn)
                .optional()?;
            let email = crate::email::email_of(conn, user.0)?;
            Ok(row.map(|r| (r, email)))
        })?;
        let Some((row, email)) = row else {
            return Ok(None);
        };
        let mut user = row.into_user(market)?;
        crate::email::set_email(&mut user, email);
        Ok(Some(user))
    }

    #[instrument(
        level = "debug",
        skip_all,
        fields(market = self.code(), session = session.0.as_str())
    )]
    fn revoke_session(&self, session: &SessionId, now: DateTime<Utc>) -> Result<bool, RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            let n = diesel::update(
                sessions::table
                    .filter(sessions::id.eq(session.0.as_str()))
                    .filter(sessions::revoked_at.is_null()),
            )
            .set(sessions::revoked_at.eq(now))
            .execute(conn)?;
            Ok(n == 1)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn revoke_sessions(
        &self,
        user: UserId,
        scope: &RevokeScope,
        now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let now = to_db(now);
        self.with_conn(|conn| {
            let mine = sessions::table
                .filter(sessions::user_id.eq(user.0))
                .filter(sessions::revoked_at.is_null());
            let set = sessions::revoked_at.eq(now);
            let n = match scope {
                RevokeScope::One(id) => diesel::update(mine.filter(sessions::id.eq(id.0.as_str())))
                    .set(set)
                    .execute(conn)?,
                RevokeScope::All => diesel::update(mine).set(set).execute(conn)?,
                RevokeScope::AllExcept(id) => {
                    diesel::update(mine.filter(sessions::id.ne(id.0.as_str())))
                        .set(set)
                        .execute(conn)?
                }
            };
            Ok(n as u64)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, RepoError> {
        let now = to_db(now);
        let rows = self.read(|conn| {
            Ok(sessions::table
                .filter(sessions::user_id.eq(user.0))
                .filter(sessions::revoked_at.is_null())
                .filter(sessions::expires_at.gt(now))
                .order((sessions::created_at.desc(), sessions::id.desc()))
                .select(SessionRow::as_select())
                .load::<SessionRow>(conn)?)
        })?;
        Ok(rows.into_iter().map(SessionRow::into_info).collect())
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn rotate_refresh(&self, cmd: RotateRefresh<'_>) -> Result<RotateOutcome, RepoError> {
        let now = to_db(cmd.now);
        self.write(|conn| {
            let Some(token) = lock_refresh(conn, cmd.token_hash)? else {
                return Ok(RotateOutcome::Invalid);
            };
            let session = sessions::table
                .find(token.session_id.as_str())
                .select(SessionRow::as_select())
                .first::<SessionRow>(conn)
                .optional()?;
            let Some(session) = session else {
                return Ok(RotateOutcome::Invalid);
            };
            let successor = match token.successor_id {
                Some(id) => refresh_tokens::table
                    .find(id)
                    .select((refresh_tokens::rotated_at, refresh_tokens::expires_at))
                    .first::<(Option<NaiveDateTime>, NaiveDateTime)>(conn)
                    .optional()?,
                None => None,
            };
            let state = RefreshState {
                expires_at: from_db(token.expires_at),
                rotated_at: token.rotated_at.map(from_db),
                successor_replayable: successor.is_some_and(|(rotated, _)| rotated.is_none()),
                same_client: token
                    .rotated_client
                    .as_deref()
                    .is_some_and(|c| c == cmd.client_binding.as_slice()),
            };
            let live = SessionState {
                revoked: session.revoked_at.is_some(),
                expires_at: from_db(session.expires_at),
            };
            let sid = SessionId(session.id.clone());
            let user = UserId(session.user_id);
            // A disabled account refreshes nothing (item 17).
            let active = users::table
                .find(session.user_id)
                .select(users::is_active)
                .first::<bool>(conn)
                .optional()?;
            if active != Some(true) {
                return Ok(RotateOutcome::Invalid);
            }
            Ok(
                match refresh::judge(Some(&state), Some(&live), cmd.now, cmd.grace) {
                    RefreshJudgement::Invalid => RotateOutcome::Invalid,
                    RefreshJudgement::Reuse => {
                        diesel::update(sessions::table.find(session.id.as_str()))
                            .filter(sessions::revoked_at.is_null())
                            .set(sessions::revoked_at.eq(now))
                            .execute(conn)?;
                        let event = AuditEvent::RefreshReuse { session: sid };
                        insert_audit(conn, cmd.now, Some(user), cmd.client, &event)?;
                        RotateOutcome::Reused
                    }
                    RefreshJudgement::Replay => RotateOutcome::Replayed {
                        session: sid,
                        user,
                        refresh_expires_at: from_db(
                            successor.map_or(token.expires_at, |(_, expires)| expires),
                        ),
                    },
                    RefreshJudgement::Rotate => {
                        let deadline = refresh::session_deadline(
                            from_db(session.created_at),
                            cmd.now,
                            cmd.idle,
                            cmd.max_lifetime,
                        );
                        let next = NewRefreshToken {
                            token_hash: cmd.successor_hash.clone(),
                            expires_at: deadline,
                        };
                        let next_id = insert_refresh(conn, &sid, &next, now)?;
                        diesel::update(refresh_tokens::table.find(token.id))
                            .set((
                                refresh_tokens::rotated_at.eq(now),
                                refresh_tokens::successor_id.eq(next_id),
                                refresh_tokens::rotated_client.eq(cmd.client_binding.as_slice()),
                            ))
                            .execute(conn)?;
                        diesel::update(sessions::table.find(session.id.as_str()))
                            .set((
                                sessions::expires_at.eq(to_db(deadline)),
                                sessions::last_seen_at.eq(now),
                            ))
                            .execute(conn)?;
                        RotateOutcome::Rotated {
                            session: sid,
                            user,
                            refresh_expires_at: deadline,
                        }
                    }
                },
            )
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = cmd.user.0))]
    fn delete_account(&self, cmd: DeleteAccount<'_>) -> Result<VerifyOutcome, RepoError> {
        let attempt = CodeAttempt::new(OtpPurpose::DeleteAccount, &cmd.check);
        let (market, phone, now) = (self.market(), attempt.phone, to_db(attempt.now));
        self.with_accepted_code(attempt, |conn| {
            let user = users::table
                .find(cmd.user.0)
                .select(UserRow::as_select())
                .first::<UserRow>(conn)
                .optional()?;
            let Some(user) = user.filter(|u| u.phone_number.as_deref() == Some(phone)) else {
                return Ok(VerifyOutcome::NoActiveCode);
            };
            // The email identity and its tokens go with the user (ON DELETE CASCADE); mail
            // queued to the address and its failure record go explicitly (issue 10).
            crate::email::forget_address_of(conn, cmd.user.0)?;
            // Sessions, refresh tokens and account data go with the user (ON DELETE
            // CASCADE); what is keyed by the number goes explicitly.
            diesel::delete(users::table.find(cmd.user.0)).execute(conn)?;
            diesel::delete(
                phone_verifications::table.filter(phone_verifications::phone_number.eq(phone)),
            )
            .execute(conn)?;
            diesel::delete(outbox::table.filter(outbox::recipient.eq(phone))).execute(conn)?;
            let bucket = marque_domain::rate_limit::phone_send_bucket(cmd.check.phone);
            diesel::delete(rate_limits::table.find(bucket)).execute(conn)?;
            // Audit rows keep who did what, but not the number of a deleted account.
            diesel::update(
                audit_log::table.filter(audit_log::detail.like(format!("%phone={phone}%"))),
            )
            .set(audit_log::detail.eq(None::<String>))
            .execute(conn)?;
            diesel::delete(phone_failures::table.find(phone)).execute(conn)?;
            diesel::insert_into(account_deletions::table)
                .values((
                    account_deletions::user_id.eq(cmd.user.0),
                    account_deletions::deleted_at.eq(now),
                ))
                .execute(conn)?;
            let event = AuditEvent::AccountDeleted;
            insert_audit(conn, attempt.now, Some(cmd.user), cmd.client, &event)?;
            Ok(VerifyOutcome::Verified {
                user: user.into_user(market)?,
                is_new_user: false,
                known_device: true,
            })
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), via = cmd.via))]
    fn sign_in_proven(&self, cmd: SignInProven<'_>) -> Result<VerifyOutcome, RepoError> {
        let (market, phone, now) = (self.market(), cmd.phone.e164(), to_db(cmd.now));
        self.write(|conn| {
            // The failure lock of "safe to expose" holds for every way of proving the number.
            let failures = lock_failures(conn, phone, now)?.map(|row| row.state());
            if let Some(retry_after) = failures.and_then(|f| f.locked(cmd.now)) {
                return Ok(VerifyOutcome::Locked {
                    retry_after,
                    just_locked: false,
                    user: None,
                });
            }
            let outcome = open_session(
                conn,
                market,
                phone,
                &cmd.session,
                &cmd.refresh,
                (cmd.now, now),
                cmd.via,
            )?;
            if let (VerifyOutcome::Verified { user, .. }, Some(telegram)) =
                (&outcome, cmd.link_telegram)
            {
                diesel::delete(
                    telegram_links::table.filter(
                        telegram_links::telegram_user_id
                            .eq(telegram)
                            .or(telegram_links::user_id.eq(user.id.0)),
                    ),
                )
                .execute(conn)?;
                diesel::insert_into(telegram_links::table)
                    .values((
                        telegram_links::telegram_user_id.eq(telegram),
                        telegram_links::user_id.eq(user.id.0),
                        telegram_links::linked_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(outcome)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn telegram_user_phone(&self, telegram_user: i64) -> Result<Option<String>, RepoError> {
        self.read(|conn| {
            Ok(telegram_links::table
                .inner_join(users::table)
                .filter(telegram_links::telegram_user_id.eq(telegram_user))
                .select(users::phone_number)
                .first::<Option<String>>(conn)
                .optional()?
                .flatten())
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn telegram_link(&self, user: UserId) -> Result<Option<TelegramLink>, RepoError> {
        let row = self.read(|conn| {
            Ok(telegram_links::table
                .filter(telegram_links::user_id.eq(user.0))
                .select((telegram_links::telegram_user_id, telegram_links::linked_at))
                .first::<(i64, NaiveDateTime)>(conn)
                .optional()?)
        })?;
        Ok(row.map(|(telegram_user_id, at)| TelegramLink {
            telegram_user_id,
            linked_at: from_db(at),
        }))
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn unlink_telegram(&self, user: UserId) -> Result<bool, RepoError> {
        self.with_conn(|conn| {
            let n =
                diesel::delete(telegram_links::table.filter(telegram_links::user_id.eq(user.0)))
                    .execute(conn)?;
            Ok(n > 0)
        })
    }
}

/// An attempt at a code of a number.
#[derive(Clone, Copy)]
struct CodeAttempt<'a> {
    /// The number, E.164.
    phone: &'a str,
    /// Only challenges of this purpose are considered.
    purpose: OtpPurpose,
    /// The challenge the client names, if any (else the newest of the purpose).
    challenge_id: Option<&'a str>,
    /// Attempt time.
    now: DateTime<Utc>,
    /// Wrong tries allowed per code.
    max_attempts: u32,
    /// Compares the presented code with a stored hash, in constant time.
    matches: &'a (dyn Fn(&[u8]) -> bool + Sync),
    /// Per-IP limit and failure lock.
    guard: &'a AttemptGuard,
}

impl<'a> CodeAttempt<'a> {
    /// An attempt at a code of `purpose`, as `check` presents it.
    fn new(purpose: OtpPurpose, check: &'a CodeCheck<'_>) -> Self {
        Self {
            phone: check.phone.e164(),
            purpose,
            challenge_id: check.challenge_id,
            now: check.now,
            max_attempts: check.max_attempts,
            matches: check.matches,
            guard: &check.guard,
        }
    }
}

impl MarketStore {
    /// The states of the buckets `keys` (one read; `None` for a bucket with no hits), by key.
    pub(crate) fn read_buckets<'a>(
        &self,
        keys: &[&'a str],
    ) -> Result<BTreeMap<&'a str, Option<BucketState>>, RepoError> {
        self.read(|conn| {
            // Every send-code reads the other market's counters: on the backend's own
            // connection (`on_backend!`).
            let rows: Vec<(String, BucketRow)> = on_backend!(conn, |c| rate_limits::table
                .filter(rate_limits::bucket.eq_any(keys))
                .select((
                    rate_limits::bucket,
                    (
                        rate_limits::window_started_at,
                        rate_limits::hits,
                        rate_limits::last_hit_at,
                    ),
                ))
                .load(c))?;
            Ok(keys
                .iter()
                .map(|&k| {
                    let state = rows
                        .iter()
                        .find(|(key, row)| key == k && row.hits > 0)
                        .map(|(_, row)| row.state());
                    (k, state)
                })
                .collect())
        })
    }

    /// Decides `attempt` in one write transaction: the guard's buckets (a refusal rolls back and
    /// answers `RateLimited`), the number's failure lock (`Locked`), then the verdict on the
    /// challenge. A wrong code counts against the number (and may lock it: `Locked` with
    /// `just_locked`); a right one resets the count and runs `then` in the same transaction. A
    /// refused attempt commits what judging recorded and returns the refusal.
    fn with_accepted_code(
        &self,
        attempt: CodeAttempt<'_>,
        then: impl FnOnce(&mut DbConnection) -> Result<VerifyOutcome, TxError>,
    ) -> Result<VerifyOutcome, RepoError> {
        let market = self.market();
        let now = to_db(attempt.now);
        self.with_conn(|conn| {
            let outcome = write_tx(conn, |conn| {
                hit_limits(conn, &attempt.guard.limits, attempt.now)?;
                let failures = match attempt.guard.failures {
                    Some(policy) => {
                        let state = lock_failures(conn, attempt.phone, now)?
                            .map(|row| row.state())
                            .unwrap_or_default();
                        if let Some(retry_after) = state.locked(attempt.now) {
                            return Ok(VerifyOutcome::Locked {
                                retry_after,
                                just_locked: false,
                                user: None,
                            });
                        }
                        Some((policy, state))
                    }
                    None => None,
                };
                let verdict = judge_challenge(conn, market, &attempt)?;
                match (verdict, failures) {
                    (Judgement::Accept, Some((_, state))) if state != FailureState::default() => {
                        store_failures(conn, attempt.phone, &FailureState::default(), now)?;
                    }
                    (Judgement::Reject { .. }, Some((policy, state))) => {
                        let (next, locked) = policy.record_failure(state, attempt.now);
                        store_failures(conn, attempt.phone, &next, now)?;
                        if let (true, Some(until)) = (locked, next.locked_until) {
                            let user = users::table
                                .filter(users::phone_number.eq(attempt.phone))
                                .select(users::id)
                                .first::<i64>(conn)
                                .optional()?;
                            return Ok(VerifyOutcome::Locked {
                                retry_after: RetryAfter::until(attempt.now, until),
                                just_locked: true,
                                user: user.map(UserId),
                            });
                        }
                    }
                    _ => {}
                }
                if verdict != Judgement::Accept {
                    return Ok(verdict.refusal());
                }
                then(conn)
            });
            match outcome {
                // Rolled back: nothing was written.
                Err(TxError::RateLimited(retry)) => Ok(VerifyOutcome::RateLimited(retry)),
                other => other,
            }
        })
    }
}

/// Updates the row of `$table` whose key column `$key` is `$id` with `$values` (a tuple of
/// `column.eq(value)`), or inserts it with that key when there is none.
macro_rules! upsert {
    ($conn:expr, $table:ident, $key:ident = $id:expr, $values:expr) => {{
        let values = $values;
        let updated = diesel::update($table::table.find($id))
            .set(values)
            .execute($conn)?;
        if updated == 0 {
            diesel::insert_into($table::table)
                .values(($table::$key.eq($id), values))
                .execute($conn)?;
        }
    }};
}

/// Writes the wrong-code record of `phone`.
pub(crate) fn store_failures(
    conn: &mut DbConnection,
    phone: &str,
    state: &FailureState,
    now: NaiveDateTime,
) -> QueryResult<()> {
    upsert!(
        conn,
        phone_failures,
        phone_number = phone,
        (
            phone_failures::consecutive.eq(to_i32(state.consecutive)),
            phone_failures::locked_until.eq(state.locked_until.map(to_db)),
            phone_failures::updated_at.eq(now),
        )
    );
    Ok(())
}

/// Hits every bucket of `limits` inside a write transaction; `Err(TxError::RateLimited)` (which
/// rolls everything back) at the first refusal.
pub(crate) fn hit_limits(
    conn: &mut DbConnection,
    limits: &[RateLimitCheck],
    at: DateTime<Utc>,
) -> Result<(), TxError> {
    let next = admit_limits(conn, limits, at)?;
    store_counters(conn, &next, &BTreeMap::new())?;
    Ok(())
}

/// Locks every bucket of `limits` (in key order, in one statement on PostgreSQL) and decides
/// each hit with its policy; the new states, by bucket, for the caller to write. At the first
/// refusal `Err(TxError::RateLimited)`, which rolls everything back.
fn admit_limits<'a>(
    conn: &mut DbConnection,
    limits: &'a [RateLimitCheck],
    at: DateTime<Utc>,
) -> Result<BTreeMap<&'a str, BucketState>, TxError> {
    // Lock every bucket before deciding, in key order, so two requests sharing buckets never
    // wait on each other crosswise.
    let keys = sorted_keys(limits);
    let locked = lock_rows(conn, &[], &keys, &[], to_db(at))?;
    decide_limits(limits, &locked.buckets, at)
}

/// The distinct bucket keys of `limits`, sorted: the order in which they are locked.
fn sorted_keys(limits: &[RateLimitCheck]) -> Vec<&str> {
    sorted_distinct(limits.iter().map(|check| check.bucket.as_str()))
}

/// `keys` without repeats, sorted: the order rows are locked in.
fn sorted_distinct<'a>(keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    keys.into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// Decides each hit of `limits` with its policy on the locked `states` (a bucket hit twice sees
/// its first hit); the new states, by bucket. At the first refusal `Err(TxError::RateLimited)`.
fn decide_limits<'a>(
    limits: &'a [RateLimitCheck],
    states: &BTreeMap<&str, Option<BucketState>>,
    at: DateTime<Utc>,
) -> Result<BTreeMap<&'a str, BucketState>, TxError> {
    let mut next_states: BTreeMap<&'a str, BucketState> = BTreeMap::new();
    for check in limits {
        let bucket = check.bucket.as_str();
        let current = match next_states.get(bucket) {
            Some(hit) => Some(*hit),
            None => states.get(bucket).copied().flatten(),
        };
        let next = check
            .policy
            .admit_shared(current.as_ref(), at, check.elsewhere)
            .map_err(TxError::RateLimited)?;
        next_states.insert(bucket, next);
    }
    Ok(next_states)
}

/// Writes the new states of locked counters — buckets and prefixes: one statement on PostgreSQL
/// ([`StoreCounters`]), one per row on SQLite.
fn store_counters(
    conn: &mut DbConnection,
    states: &BTreeMap<&str, BucketState>,
    prefixes: &BTreeMap<&str, PrefixState>,
) -> Result<(), TxError> {
    if states.is_empty() && prefixes.is_empty() {
        return Ok(());
    }
    if let DbConnection::Pg(pg) = conn {
        let mut statement = StoreCounters::default();
        for (bucket, state) in states {
            statement.buckets.push(bucket, state);
        }
        for (prefix, state) in prefixes {
            statement.prefixes.push(prefix);
            statement.hour_start.push(to_db(state.hour_start));
            statement.sent.push(to_i32(state.sent));
            statement
                .baseline_milli
                .push(baseline_to_db(state.baseline));
        }
        let written: i64 = statement.get_result(pg)?;
        // Every row was locked, so it exists: anything else is a bug, and the transaction rolls
        // back rather than let a hit go uncounted.
        if usize::try_from(written).ok() != Some(states.len() + prefixes.len()) {
            return Err(TxError::Db(DieselError::NotFound));
        }
        return Ok(());
    }
    for (bucket, state) in states {
        store_bucket(conn, bucket, state)?;
    }
    for (key, next) in prefixes {
        upsert!(
            conn,
            sms_prefix_stats,
            prefix = *key,
            (
                sms_prefix_stats::hour_start.eq(to_db(next.hour_start)),
                sms_prefix_stats::sent.eq(to_i32(next.sent)),
                sms_prefix_stats::baseline_milli.eq(baseline_to_db(next.baseline)),
            )
        );
    }
    Ok(())
}

/// Decides and writes a batch of send-codes inside one write transaction, as if each were issued
/// alone in the order given (`cmds` holds at most one code per number and purpose, see
/// [`crate::batching`]): every shared row the decisions read is locked in one go (one
/// statement on PostgreSQL) — the numbers' failure records, the buckets in key order, then the
/// SMS day, then the prefixes — then each code is decided on the states its predecessors left:
/// the number's failure lock ([`IssueOutcome::Locked`]), its limits
/// ([`IssueOutcome::RateLimited`]), the SMS-pumping guards ([`IssueOutcome::BudgetExceeded`]). A
/// refused code writes nothing and leaves the counters as they were for the next. The admitted
/// codes' rows (previous code superseded, new code, its message) and the new counters are
/// written with one statement each. So the rows every send-code of a market locks (the SMS day,
/// an IP's bucket, a prefix) are locked once per batch, not once per code (issue 13).
///
/// One outcome per command, in order. When every code was refused,
/// `Err(TxError::Refused(outcomes))`: the caller rolls back (nothing, not even a placeholder
/// row, is written) and answers the outcomes.
pub(crate) fn issue_many(
    conn: &mut DbConnection,
    cmds: &[IssueChallenge],
) -> Result<Vec<IssueOutcome>, TxError> {
    let Some(first) = cmds.first() else {
        return Ok(Vec::new());
    };
    let failure_keys =
        sorted_distinct(cmds.iter().filter(|c| c.check_lock).map(|c| c.phone.e164()));
    let days: BTreeSet<&str> = cmds
        .iter()
        .filter_map(|c| c.sms.as_ref().map(|g| g.daily.bucket.as_str()))
        .collect();
    // The request buckets in key order, then the SMS day (the order every send-code locks).
    let mut keys = sorted_distinct(
        cmds.iter()
            .flat_map(|c| c.limits.iter().map(|check| check.bucket.as_str()))
            .filter(|k| !days.contains(k)),
    );
    keys.extend(days.iter().copied());
    let prefixes = sorted_distinct(
        cmds.iter()
            .filter_map(|c| c.sms.as_ref().map(|g| g.prefix.prefix.as_str())),
    );
    let locked = lock_rows(conn, &failure_keys, &keys, &prefixes, to_db(first.now))?;
    let mut buckets = locked.buckets;
    let mut prefix_states = locked.prefixes;
    let mut bucket_writes: BTreeMap<&str, BucketState> = BTreeMap::new();
    let mut prefix_writes: BTreeMap<&str, PrefixState> = BTreeMap::new();
    let mut outcomes = Vec::with_capacity(cmds.len());
    let mut admitted: Vec<&IssueChallenge> = Vec::with_capacity(cmds.len());
    for cmd in cmds {
        if cmd.check_lock {
            let failures = locked.failures.get(cmd.phone.e164()).cloned().flatten();
            if let Some(retry) = failures.and_then(|f| f.state().locked(cmd.now)) {
                outcomes.push(IssueOutcome::Locked(retry));
                continue;
            }
        }
        let mut next = match decide_limits(&cmd.limits, &buckets, cmd.now) {
            Ok(next) => next,
            Err(TxError::RateLimited(retry)) => {
                outcomes.push(IssueOutcome::RateLimited(retry));
                continue;
            }
            Err(other) => return Err(other),
        };
        let mut outcome = IssueOutcome::Issued;
        if let Some(guards) = &cmd.sms {
            let day_key = guards.daily.bucket.as_str();
            let day = buckets.get(day_key).copied().flatten();
            let prefix_key = guards.prefix.prefix.as_str();
            let prefix_state = prefix_states.get(prefix_key).copied().flatten();
            let admitted = match decide_sms_guards(guards, day, prefix_state, cmd.now) {
                Ok(admitted) => admitted,
                Err(TxError::BudgetExceeded(trip)) => {
                    outcomes.push(IssueOutcome::BudgetExceeded(trip));
                    continue;
                }
                Err(other) => return Err(other),
            };
            next.insert(day_key, admitted.day);
            prefix_states.insert(prefix_key, Some(admitted.prefix));
            prefix_writes.insert(prefix_key, admitted.prefix);
            if let Some(alarm) = admitted.alarm {
                outcome = IssueOutcome::IssuedWithAlarm(alarm);
            }
        }
        for (key, state) in next {
            buckets.insert(key, Some(state));
            bucket_writes.insert(key, state);
        }
        outcomes.push(outcome);
        admitted.push(cmd);
    }
    if admitted.is_empty() {
        return Err(TxError::Refused(outcomes));
    }
    insert_issues(conn, &admitted)?;
    store_counters(conn, &bucket_writes, &prefix_writes)?;
    Ok(outcomes)
}

/// What the SMS-pumping guards admitted: the new `sms:day` bucket and prefix counters (not yet
/// written) and the prefix alarm this message raised, if any.
struct SmsAdmitted {
    day: BucketState,
    prefix: PrefixState,
    alarm: Option<PrefixAlarm>,
}

/// Decides the SMS-pumping guards of a message on the locked `sms:day` bucket (`day`) and prefix
/// counters (`prefix_state`), after the per-number and per-IP limits admitted it: the market's
/// daily budget and the total over markets, then the prefix's hourly limit.
/// `Err(TxError::BudgetExceeded)` rolls everything back; otherwise the new counters, for the
/// caller to write, and `alarm` when this message crossed the prefix's alarm line.
fn decide_sms_guards(
    guards: &SmsGuards,
    day: Option<BucketState>,
    prefix_state: Option<PrefixState>,
    now: DateTime<Utc>,
) -> Result<SmsAdmitted, TxError> {
    let daily = &guards.daily;
    let trip = |guard, retry_after| {
        TxError::BudgetExceeded(BudgetTrip {
            guard,
            prefix: None,
            retry_after,
        })
    };
    let next_day = daily
        .policy
        .admit(day.as_ref(), now)
        .map_err(|r| trip(BudgetGuard::MarketDaily, r))?;
    let total = RateLimitPolicy {
        max_hits: guards.total_daily_limit,
        ..daily.policy
    };
    total
        .admit_shared(day.as_ref(), now, daily.elsewhere)
        .map_err(|r| trip(BudgetGuard::TotalDaily, r))?;
    let prefix = &guards.prefix;
    let (next, alarm) = prefix
        .admit(prefix_state.as_ref(), now)
        .map_err(|retry_after| {
            TxError::BudgetExceeded(BudgetTrip {
                guard: BudgetGuard::PrefixHourly,
                prefix: Some(prefix.prefix.clone()),
                retry_after,
            })
        })?;
    Ok(SmsAdmitted {
        day: next_day,
        prefix: next,
        alarm,
    })
}

/// The numbers' rows of admitted codes: each number's previous active code of the purpose
/// superseded, the new code and its outbox message. One statement on PostgreSQL
/// ([`IssueInserts`]); on SQLite three per code, inside the same immediate transaction.
fn insert_issues(conn: &mut DbConnection, cmds: &[&IssueChallenge]) -> Result<(), TxError> {
    if let DbConnection::Pg(pg) = conn {
        let mut statement = IssueInserts::default();
        let mut messages = 0;
        for cmd in cmds {
            let message = cmd.outbox.as_ref();
            messages += usize::from(message.is_some());
            statement.phone.push(cmd.phone.e164());
            statement.code_hash.push(cmd.code_hash.as_slice());
            statement.client_ip.push(cmd.client_ip.as_deref());
            statement.now.push(to_db(cmd.now));
            statement.expires_at.push(to_db(cmd.expires_at));
            statement.purpose.push(cmd.purpose.as_str());
            statement.challenge_id.push(cmd.challenge_id.as_str());
            statement.channel.push(cmd.channel.as_str());
            statement
                .message_channel
                .push(message.map(|m| m.channel.as_str()));
            statement
                .fallback_channels
                .push(message.map(|m| Channel::join(&m.fallback)));
            statement
                .recipient
                .push(message.map(|m| m.recipient.as_str()));
            statement
                .payload
                .push(message.map(|m| m.sealed_body.as_slice()));
            statement
                .message_expires_at
                .push(message.map(|m| to_db(m.expires_at)));
        }
        let written: i64 = statement.get_result(pg)?;
        if usize::try_from(written).ok() != Some(cmds.len() + messages) {
            return Err(TxError::Db(DieselError::NotFound));
        }
        return Ok(());
    }
    for cmd in cmds {
        let phone = cmd.phone.e164();
        let purpose = cmd.purpose.as_str();
        let now = to_db(cmd.now);
        diesel::update(
            phone_verifications::table
                .filter(phone_verifications::phone_number.eq(phone))
                .filter(phone_verifications::purpose.eq(purpose))
                .filter(phone_verifications::status.eq(ChallengeStatus::Active.as_str())),
        )
        .set(phone_verifications::status.eq(ChallengeStatus::Superseded.as_str()))
        .execute(conn)?;
        diesel::insert_into(phone_verifications::table)
            .values((
                phone_verifications::phone_number.eq(phone),
                phone_verifications::code_hash.eq(cmd.code_hash.as_slice()),
                phone_verifications::status.eq(ChallengeStatus::Active.as_str()),
                phone_verifications::attempts.eq(0),
                phone_verifications::client_ip.eq(cmd.client_ip.as_deref()),
                phone_verifications::created_at.eq(now),
                phone_verifications::expires_at.eq(to_db(cmd.expires_at)),
                phone_verifications::purpose.eq(purpose),
                phone_verifications::challenge_id.eq(cmd.challenge_id.as_str()),
                phone_verifications::channel.eq(cmd.channel.as_str()),
            ))
            .execute(conn)?;
        if let Some(message) = &cmd.outbox {
            crate::outbox::insert_outbox(
                conn,
                message,
                &message.recipient,
                Some(cmd.challenge_id.as_str()),
                now,
            )?;
        }
    }
    Ok(())
}

/// The baseline (messages per hour) in thousandths, as stored.
fn baseline_to_db(baseline: f64) -> i64 {
    // Finite and non-negative by construction; the cast saturates anyway.
    (baseline.max(0.0) * 1000.0).round() as i64
}

fn store_bucket(conn: &mut DbConnection, bucket: &str, state: &BucketState) -> QueryResult<()> {
    upsert!(
        conn,
        rate_limits,
        bucket = bucket,
        (
            rate_limits::window_started_at.eq(to_db(state.window_started_at)),
            rate_limits::hits.eq(to_i32(state.hits)),
            rate_limits::last_hit_at.eq(to_db(state.last_hit_at)),
        )
    );
    Ok(())
}

/// Records a successful verification on the number's user, creating it when new.
fn sign_in(
    conn: &mut DbConnection,
    phone: &str,
    now: NaiveDateTime,
) -> QueryResult<(UserRow, bool)> {
    // One round trip for the common case (a returning user): update by number, returning the row.
    let login = |conn: &mut DbConnection| {
        diesel::update(users::table.filter(users::phone_number.eq(phone)))
            .set((
                users::last_login.eq(now),
                users::is_verified.eq(true),
                users::updated_at.eq(now),
            ))
            .returning(USER_COLUMNS)
            .get_result::<UserRow>(conn)
            .optional()
    };
    if let Some(row) = login(conn)? {
        return Ok((row, false));
    }
    // In a savepoint: if another transaction created the user meanwhile, the unique violation
    // rolls back only the insert and the existing row is signed in instead.
    let created = conn.transaction(|conn| {
        diesel::insert_into(users::table)
            .values((
                users::phone_number.eq(phone),
                users::is_verified.eq(true),
                users::is_active.eq(true),
                users::last_login.eq(now),
                users::created_at.eq(now),
                users::updated_at.eq(now),
            ))
            .returning(USER_COLUMNS)
            .get_result::<UserRow>(conn)
    });
    match created {
        Ok(row) => Ok((row, true)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let row = login(conn)?.ok_or(DieselError::NotFound)?;
            Ok((row, false))
        }
        Err(e) => Err(e),
    }
}

/// Signs a proven number in inside the caller's transaction: a disabled account is refused;
/// otherwise the user is created if new, the session and its refresh token are stored and the
/// `sign_in` audit row (with how the number was proven, `via`) is written. `at` is the sign-in
/// time, as given and as stored.
fn open_session(
    conn: &mut DbConnection,
    market: Market,
    phone: &str,
    session: &NewSession,
    refresh: &NewRefreshToken,
    at: (DateTime<Utc>, NaiveDateTime),
    via: &'static str,
) -> Result<VerifyOutcome, TxError> {
    if let DbConnection::Pg(pg) = conn
        && let Some(outcome) = sign_in_returning(pg, market, phone, session, refresh, at, via)?
    {
        return Ok(outcome);
    }
    if is_disabled(conn, phone)? {
        return Ok(VerifyOutcome::Disabled);
    }
    let (user, is_new_user) = sign_in(conn, phone, at.1)?;
    let known_device =
        !is_new_user && has_session_with_agent(conn, user.id, session.user_agent.as_deref())?;
    insert_session(conn, user.id, session)?;
    insert_refresh(conn, &session.id, refresh, at.1)?;
    let client = ClientInfo {
        ip: session.client_ip.clone(),
        user_agent: session.user_agent.clone(),
    };
    let event = AuditEvent::SignIn {
        session: session.id.clone(),
        new_user: is_new_user,
        via,
    };
    insert_audit(conn, at.0, Some(UserId(user.id)), &client, &event)?;
    Ok(VerifyOutcome::Verified {
        user: user.into_user(market)?,
        is_new_user,
        known_device,
    })
}

/// [`open_session`] for a returning, active user on PostgreSQL, in one statement
/// ([`ReturningSignIn`]): the same rows as the portable path (login recorded, session, refresh
/// token, `sign_in` audit row). `None` when the number has no active user (new, or disabled):
/// nothing was written, and the portable path decides.
fn sign_in_returning(
    pg: &mut diesel::PgConnection,
    market: Market,
    phone: &str,
    session: &NewSession,
    refresh: &NewRefreshToken,
    at: (DateTime<Utc>, NaiveDateTime),
    via: &'static str,
) -> Result<Option<VerifyOutcome>, TxError> {
    let client = ClientInfo {
        ip: session.client_ip.clone(),
        user_agent: session.user_agent.clone(),
    };
    let event = AuditEvent::SignIn {
        session: session.id.clone(),
        new_user: false,
        via,
    };
    let audit_user_agent = crate::audit::audit_user_agent(&client);
    let detail = event.detail();
    let statement = ReturningSignIn {
        phone,
        now: at.1,
        session_id: session.id.0.as_str(),
        session_expires_at: to_db(session.expires_at),
        user_agent: session.user_agent.as_deref(),
        client_ip: session.client_ip.as_deref(),
        refresh_hash: refresh.token_hash.as_slice(),
        refresh_expires_at: to_db(refresh.expires_at),
        audit_event: event.kind(),
        audit_user_agent: audit_user_agent.as_deref(),
        audit_detail: detail.as_deref(),
    };
    let row = statement.get_result::<ReturningSignInRow>(pg).optional()?;
    let Some((
        id,
        phone_number,
        full_name,
        profile_image_url,
        is_verified,
        last_login,
        created_at,
        updated_at,
        known_device,
    )) = row
    else {
        return Ok(None);
    };
    let user = UserRow {
        id,
        // The signed-in number's own row: never NULL.
        phone_number: Some(phone_number),
        full_name,
        profile_image_url,
        is_verified,
        last_login,
        created_at,
        updated_at,
    };
    Ok(Some(VerifyOutcome::Verified {
        user: user.into_user(market)?,
        is_new_user: false,
        known_device,
    }))
}

/// Whether the number belongs to a disabled account.
pub(crate) fn is_disabled(conn: &mut DbConnection, phone: &str) -> QueryResult<bool> {
    let active = users::table
        .filter(users::phone_number.eq(phone))
        .select(users::is_active)
        .first::<bool>(conn)
        .optional()?;
    Ok(active == Some(false))
}

pub(crate) fn insert_session(
    conn: &mut DbConnection,
    user: i64,
    session: &NewSession,
) -> QueryResult<()> {
    let created_at = to_db(session.created_at);
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(session.id.0.as_str()),
            sessions::user_id.eq(user),
            sessions::created_at.eq(created_at),
            sessions::expires_at.eq(to_db(session.expires_at)),
            sessions::last_seen_at.eq(created_at),
            sessions::user_agent.eq(session.user_agent.as_deref()),
            sessions::client_ip.eq(session.client_ip.as_deref()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Judges an attempt on the newest challenge of `phone` (locked until the transaction ends) and
/// writes the verdict to it: consumed, a wrong try counted (dead at the limit), or expired.
fn judge_challenge(
    conn: &mut DbConnection,
    market: Market,
    attempt: &CodeAttempt<'_>,
) -> Result<Judgement, TxError> {
    let CodeAttempt {
        phone,
        purpose,
        challenge_id,
        now,
        max_attempts,
        matches,
        ..
    } = *attempt;
    let row = newest_challenge(conn, phone, purpose.as_str(), challenge_id)?;
    // Compared whatever the row's state, so timing does not tell which branch ran.
    let ok = matches(row.as_ref().map_or(&NO_HASH[..], |r| &r.code_hash));
    let ok = ok && row.is_some();
    let state = row.as_ref().map(|r| r.state(market)).transpose()?;
    let verdict = challenge::judge(state.as_ref(), now, max_attempts, ok);
    let (Some(row), Some(state)) = (row, state) else {
        return Ok(verdict);
    };
    let (status, attempts, consumed_at) = match verdict {
        Judgement::Accept => (ChallengeStatus::Consumed, None, Some(to_db(now))),
        Judgement::Reject {
            attempts, status, ..
        } => (status, Some(to_i32(attempts)), None),
        Judgement::Expired if state.status != ChallengeStatus::Expired => {
            (ChallengeStatus::Expired, None, None)
        }
        _ => return Ok(verdict),
    };
    if let DbConnection::Pg(pg) = conn {
        let statement = SetChallengeStatus {
            id: row.id,
            status: status.as_str(),
            attempts,
            consumed_at,
        };
        statement.execute(pg)?;
        return Ok(verdict);
    }
    let this = phone_verifications::table.find(row.id);
    diesel::update(this)
        .set((
            phone_verifications::status.eq(status.as_str()),
            attempts.map(|a| phone_verifications::attempts.eq(a)),
            consumed_at.map(|at| phone_verifications::consumed_at.eq(at)),
        ))
        .execute(conn)?;
    Ok(verdict)
}

pub(crate) fn insert_refresh(
    conn: &mut DbConnection,
    session: &SessionId,
    token: &NewRefreshToken,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::session_id.eq(session.0.as_str()),
            refresh_tokens::token_hash.eq(token.token_hash.as_slice()),
            refresh_tokens::created_at.eq(now),
            refresh_tokens::expires_at.eq(to_db(token.expires_at)),
        ))
        .returning(refresh_tokens::id)
        .get_result(conn)
}

/// Whether `user` already has a session (of any state) signed in with `user_agent`.
pub(crate) fn has_session_with_agent(
    conn: &mut DbConnection,
    user: i64,
    user_agent: Option<&str>,
) -> QueryResult<bool> {
    let mine = sessions::table
        .filter(sessions::user_id.eq(user))
        .select(sessions::id);
    let found = match user_agent {
        Some(ua) => mine
            .filter(sessions::user_agent.eq(ua))
            .first::<String>(conn)
            .optional()?,
        None => mine
            .filter(sessions::user_agent.is_null())
            .first::<String>(conn)
            .optional()?,
    };
    Ok(found.is_some())
}
