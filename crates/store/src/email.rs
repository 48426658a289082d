//! [`EmailRepository`] on a market database (issue 10), and the helpers the phone-login store
//! shares with it (attaching a number to an email account, account deletion).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use marque_domain::challenge::FailureState;
use marque_domain::email::{
    AddressMail, ChangePassword, EmailIdentity, EmailRepository, EmailSignIn, LinkEmail,
    LinkOutcome, LoginState, LoginThrottle, MailIf, MailOutcome, PreparedMail, RegisterEmail,
    ResetPassword, StoredLogin, TokenOwner, TokenPurpose, failure_key,
};
use marque_domain::{
    AuditEvent, ClientInfo, NewRefreshToken, NewSession, RateLimitCheck, RepoError, User, UserId,
    VerifyOutcome,
};
use marque_markets::Market;
use tracing::instrument;

use crate::MarketStore;
use crate::audit::insert_audit;
use crate::auth::{
    has_session_with_agent, hit_limits, insert_refresh, insert_session, store_failures,
};
use crate::connection::{DbConnection, lock_failures};
use crate::models::{USER_COLUMNS, UserRow, to_db};
use crate::schema::{
    account_deletions, email_identities, email_tokens, outbox, phone_failures, rate_limits,
    sessions, users,
};
use crate::store::TxError;

/// The stored address and verification time of `user`, if any.
pub(crate) fn email_of(
    conn: &mut DbConnection,
    user: i64,
) -> QueryResult<Option<(String, Option<NaiveDateTime>)>> {
    email_identities::table
        .find(user)
        .select((email_identities::email, email_identities::verified_at))
        .first(conn)
        .optional()
}

/// Puts a stored address on a user read from its row.
pub(crate) fn set_email(user: &mut User, email: Option<(String, Option<NaiveDateTime>)>) {
    if let Some((address, verified_at)) = email {
        user.email = Some(address);
        user.email_verified = verified_at.is_some();
    }
}

/// Removes what is keyed by `user`'s address rather than by the account (mail queued to it, its
/// failure record and limit bucket), inside the deletion's transaction. The identity and tokens
/// themselves go by `ON DELETE CASCADE`.
pub(crate) fn forget_address_of(conn: &mut DbConnection, user: i64) -> QueryResult<()> {
    let found = email_identities::table
        .find(user)
        .select((email_identities::email, email_identities::email_key))
        .first::<(String, String)>(conn)
        .optional()?;
    if let Some((email, key)) = found {
        diesel::delete(outbox::table.filter(outbox::recipient.eq(&email))).execute(conn)?;
        diesel::delete(phone_failures::table.find(failure_key(&key))).execute(conn)?;
        diesel::delete(rate_limits::table.find(format!("email:to:{key}"))).execute(conn)?;
        diesel::delete(email_identities::table.find(user)).execute(conn)?;
    }
    Ok(())
}

/// Attaches `phone` to `user` (an email user adding a number, while it has none); `false` when
/// another account has the number (or `user` got another number meanwhile).
pub(crate) fn attach_phone(
    conn: &mut DbConnection,
    user: i64,
    phone: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let owner = users::table
        .filter(users::phone_number.eq(phone))
        .select(users::id)
        .first::<i64>(conn)
        .optional()?;
    match owner {
        Some(id) => Ok(id == user),
        None => {
            let set = conn.transaction(|conn| {
                diesel::update(
                    users::table
                        .find(user)
                        .filter(users::phone_number.is_null()),
                )
                .set((
                    users::phone_number.eq(phone),
                    users::is_verified.eq(true),
                    users::updated_at.eq(now),
                ))
                .execute(conn)
            });
            match set {
                Ok(n) => Ok(n == 1),
                Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// Signs account `user` in inside the caller's transaction (a right password, or a code that
/// attached a number): a disabled account is refused; else `last_login` is set, the session and
/// refresh token are stored and the `sign_in` audit row is written (`via`).
pub(crate) fn open_user_session(
    conn: &mut DbConnection,
    market: Market,
    user: i64,
    session: &NewSession,
    refresh: &NewRefreshToken,
    at: (DateTime<Utc>, NaiveDateTime),
    via: &'static str,
) -> Result<VerifyOutcome, TxError> {
    let active = users::table
        .find(user)
        .select(users::is_active)
        .first::<bool>(conn)
        .optional()?;
    match active {
        None => return Ok(VerifyOutcome::NoActiveCode),
        Some(false) => return Ok(VerifyOutcome::Disabled),
        Some(true) => {}
    }
    let row = diesel::update(users::table.find(user))
        .set((users::last_login.eq(at.1), users::updated_at.eq(at.1)))
        .returning(USER_COLUMNS)
        .get_result::<UserRow>(conn)?;
    let known_device = has_session_with_agent(conn, user, session.user_agent.as_deref())?;
    insert_session(conn, user, session)?;
    insert_refresh(conn, &session.id, refresh, at.1)?;
    let client = ClientInfo {
        ip: session.client_ip.clone(),
        user_agent: session.user_agent.clone(),
    };
    let event = AuditEvent::SignIn {
        session: session.id.clone(),
        new_user: false,
        via,
    };
    insert_audit(conn, at.0, Some(UserId(user)), &client, &event)?;
    let email = email_of(conn, user)?;
    let mut user = row.into_user(market)?;
    set_email(&mut user, email);
    Ok(VerifyOutcome::Verified {
        user,
        is_new_user: false,
        known_device,
    })
}

/// Whether the address bucket admits one more email (hit in a savepoint: a refusal undoes only
/// the hit, and the email is skipped).
fn address_admits(
    conn: &mut DbConnection,
    check: &RateLimitCheck,
    at: DateTime<Utc>,
) -> Result<bool, TxError> {
    let hit = conn.transaction(|conn| hit_limits(conn, std::slice::from_ref(check), at));
    match hit {
        Ok(()) => Ok(true),
        Err(TxError::RateLimited(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Queues `mail` to `recipient` for account `user` (address key `key`): its token, retiring the
/// account's live tokens of the same purpose, and its outbox row.
fn queue_mail(
    conn: &mut DbConnection,
    mail: &PreparedMail,
    user: i64,
    key: &str,
    recipient: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    retire_tokens(conn, mail, user, now)?;
    if let Some(token) = &mail.token {
        diesel::insert_into(email_tokens::table)
            .values((
                email_tokens::token_hash.eq(token.hash.as_slice()),
                email_tokens::purpose.eq(token.purpose.as_str()),
                email_tokens::user_id.eq(user),
                email_tokens::email_key.eq(key),
                email_tokens::created_at.eq(now),
                email_tokens::expires_at.eq(to_db(token.expires_at)),
            ))
            .execute(conn)?;
    }
    crate::outbox::insert_outbox(conn, &mail.outbox, recipient, None, now)
}

/// A user id no account has (ids start at 1): [`retire_tokens`] for an unknown address.
const NO_ACCOUNT: i64 = 0;

/// Marks used the live tokens of account `user` with the purpose of `mail`'s token (none when
/// `mail` carries no token).
fn retire_tokens(
    conn: &mut DbConnection,
    mail: &PreparedMail,
    user: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if let Some(token) = &mail.token {
        diesel::update(
            email_tokens::table
                .filter(email_tokens::user_id.eq(user))
                .filter(email_tokens::purpose.eq(token.purpose.as_str()))
                .filter(email_tokens::used_at.is_null()),
        )
        .set(email_tokens::used_at.eq(now))
        .execute(conn)?;
    }
    Ok(())
}

/// `(user, email, verified)` of the identity with address key `key`.
fn identity_by_key(
    conn: &mut DbConnection,
    key: &str,
) -> QueryResult<Option<(i64, String, Option<NaiveDateTime>)>> {
    email_identities::table
        .filter(email_identities::email_key.eq(key))
        .select((
            email_identities::user_id,
            email_identities::email,
            email_identities::verified_at,
        ))
        .first(conn)
        .optional()
}

/// Uses the live token with `hash` of `purpose`: `(user, address key)` when it was live.
fn use_token(
    conn: &mut DbConnection,
    purpose: TokenPurpose,
    hash: &[u8],
    now: NaiveDateTime,
) -> QueryResult<Option<(i64, String)>> {
    diesel::update(
        email_tokens::table
            .filter(email_tokens::token_hash.eq(hash))
            .filter(email_tokens::purpose.eq(purpose.as_str()))
            .filter(email_tokens::used_at.is_null())
            .filter(email_tokens::expires_at.gt(now)),
    )
    .set(email_tokens::used_at.eq(now))
    .returning((email_tokens::user_id, email_tokens::email_key))
    .get_result(conn)
    .optional()
}

/// Ends every active session of `user`.
fn revoke_all(conn: &mut DbConnection, user: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::user_id.eq(user))
            .filter(sessions::revoked_at.is_null()),
    )
    .set(sessions::revoked_at.eq(now))
    .execute(conn)
}

impl EmailRepository for MarketStore {
    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn delete_email_account(
        &self,
        user: UserId,
        client: &ClientInfo,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let at = now;
        let now = to_db(now);
        self.write(|conn| {
            let found = users::table
                .find(user.0)
                .filter(users::phone_number.is_null())
                .select(users::id)
                .first::<i64>(conn)
                .optional()?;
            if found.is_none() {
                return Ok(false);
            }
            forget_address_of(conn, user.0)?;
            // Sessions, refresh tokens, tokens and account data go with the user (ON DELETE
            // CASCADE).
            diesel::delete(users::table.find(user.0)).execute(conn)?;
            diesel::insert_into(account_deletions::table)
                .values((
                    account_deletions::user_id.eq(user.0),
                    account_deletions::deleted_at.eq(now),
                ))
                .execute(conn)?;
            insert_audit(conn, at, Some(user), client, &AuditEvent::AccountDeleted)?;
            Ok(true)
        })
    }

    fn market(&self) -> Market {
        MarketStore::market(self)
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn email_exists(&self, key: &str) -> Result<bool, RepoError> {
        self.read(|conn| Ok(identity_by_key(conn, key)?.is_some()))
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn register(&self, cmd: RegisterEmail) -> Result<MailOutcome, RepoError> {
        let now = to_db(cmd.now);
        let key = cmd.email.key();
        let address = cmd.email.as_str();
        self.with_conn(|conn| {
            let outcome = crate::connection::write_tx(conn, |conn| {
                hit_limits(conn, &cmd.limits.ip, cmd.now)?;
                let existing = identity_by_key(conn, &key)?;
                let created = match existing {
                    Some(_) => None,
                    None => conn
                        .transaction(|conn| {
                            let user: i64 = diesel::insert_into(users::table)
                                .values((
                                    users::phone_number.eq(None::<String>),
                                    users::full_name.eq(cmd.full_name.as_ref().map(|n| n.as_str())),
                                    users::is_verified.eq(false),
                                    users::is_active.eq(true),
                                    users::created_at.eq(now),
                                    users::updated_at.eq(now),
                                ))
                                .returning(users::id)
                                .get_result(conn)?;
                            diesel::insert_into(email_identities::table)
                                .values((
                                    email_identities::user_id.eq(user),
                                    email_identities::email.eq(address),
                                    email_identities::email_key.eq(&key),
                                    email_identities::password_hash.eq(&cmd.password_hash),
                                    email_identities::created_at.eq(now),
                                    email_identities::updated_at.eq(now),
                                ))
                                .execute(conn)?;
                            Ok::<_, DieselError>(user)
                        })
                        .map(Some)
                        .or_else(|e| match e {
                            // Registered meanwhile by a concurrent request: it exists.
                            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                                Ok(None)
                            }
                            e => Err(e),
                        })?,
                };
                if !address_admits(conn, &cmd.limits.address, cmd.now)? {
                    return Ok(MailOutcome::Done);
                }
                match created {
                    Some(user) => queue_mail(conn, &cmd.verify_mail, user, &key, address, now)?,
                    None => {
                        if let Some((user, stored, _)) = identity_by_key(conn, &key)? {
                            queue_mail(conn, &cmd.exists_mail, user, &key, &stored, now)?;
                        }
                    }
                }
                Ok(MailOutcome::Done)
            });
            match outcome {
                Err(TxError::RateLimited(r)) => Ok(MailOutcome::RateLimited(r)),
                other => other,
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn confirm_email(
        &self,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<UserId>, RepoError> {
        let now = to_db(now);
        self.write(|conn| {
            let Some((user, key)) = use_token(conn, TokenPurpose::Verify, token_hash, now)? else {
                return Ok(None);
            };
            // Only the address the token was sent to, if the account still has it.
            let n = diesel::update(
                email_identities::table
                    .filter(email_identities::user_id.eq(user))
                    .filter(email_identities::email_key.eq(&key)),
            )
            .set(
                email_identities::verified_at.eq(diesel::dsl::case_when(
                    email_identities::verified_at.is_null(),
                    Some(now),
                )
                .otherwise(email_identities::verified_at)),
            )
            .execute(conn)?;
            Ok((n == 1).then_some(UserId(user)))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn mail_address(&self, cmd: AddressMail) -> Result<MailOutcome, RepoError> {
        let now = to_db(cmd.now);
        self.with_conn(|conn| {
            let outcome = crate::connection::write_tx(conn, |conn| {
                hit_limits(conn, &cmd.limits.ip, cmd.now)?;
                // The same statements for a known and an unknown address, as far as they can
                // be (OWASP Forgot Password Cheat Sheet: "the same logic is followed, instead of
                // using a quick exit"), so the answer's timing does not tell which it was: the
                // address's bucket is hit either way (which also limits probing one address),
                // and an unknown address retires the live tokens of no account. What remains is
                // the known address's two inserts (token and outbox row).
                let identity = identity_by_key(conn, &cmd.key)?;
                let wanted = match (&identity, cmd.only_if) {
                    (None, _) => false,
                    (Some((_, _, verified)), MailIf::Unverified) => verified.is_none(),
                    (Some(_), MailIf::Exists) => true,
                };
                let admitted = address_admits(conn, &cmd.limits.address, cmd.now)?;
                match identity {
                    Some((user, stored, _)) if wanted && admitted => {
                        queue_mail(conn, &cmd.mail, user, &cmd.key, &stored, now)?;
                    }
                    _ => retire_tokens(conn, &cmd.mail, NO_ACCOUNT, now)?,
                }
                Ok(MailOutcome::Done)
            });
            match outcome {
                Err(TxError::RateLimited(r)) => Ok(MailOutcome::RateLimited(r)),
                other => other,
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn login_state(
        &self,
        key: &str,
        ip_limits: &[RateLimitCheck],
        now: DateTime<Utc>,
    ) -> Result<LoginState, RepoError> {
        let at = now;
        self.with_conn(|conn| {
            let outcome = crate::connection::write_tx(conn, |conn| {
                hit_limits(conn, ip_limits, at)?;
                let failures = phone_failures::table
                    .find(failure_key(key))
                    .select(crate::models::FailureRow::as_select())
                    .first::<crate::models::FailureRow>(conn)
                    .optional()?;
                if let Some(wait) = failures.and_then(|f| f.state().locked(at)) {
                    return Ok(LoginState::Locked(wait));
                }
                let stored = email_identities::table
                    .filter(email_identities::email_key.eq(key))
                    .select((
                        email_identities::user_id,
                        email_identities::password_hash,
                        email_identities::verified_at,
                    ))
                    .first::<(i64, String, Option<NaiveDateTime>)>(conn)
                    .optional()?;
                Ok(LoginState::Ready(stored.map(|(user, hash, verified)| {
                    StoredLogin {
                        user: UserId(user),
                        password_hash: hash,
                        verified: verified.is_some(),
                    }
                })))
            });
            match outcome {
                Err(TxError::RateLimited(r)) => Ok(LoginState::RateLimited(r)),
                other => other,
            }
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn login_failed(
        &self,
        failure_key: &str,
        throttle: &LoginThrottle,
        now: DateTime<Utc>,
    ) -> Result<(FailureState, bool), RepoError> {
        let at = now;
        let now = to_db(now);
        self.write(|conn| {
            let state = lock_failures(conn, failure_key, now)?
                .map(|row| row.state())
                .unwrap_or_default();
            let (next, locked) = throttle.record_failure(state, at);
            store_failures(conn, failure_key, &next, now)?;
            Ok((next, locked))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = cmd.user.0))]
    fn login_succeeded(&self, cmd: EmailSignIn) -> Result<VerifyOutcome, RepoError> {
        let market = self.market();
        let now = to_db(cmd.now);
        self.write(|conn| {
            let state = lock_failures(conn, &cmd.failure_key, now)?
                .map(|row| row.state())
                .unwrap_or_default();
            if let Some(retry_after) = state.locked(cmd.now) {
                return Ok(VerifyOutcome::Locked {
                    retry_after,
                    just_locked: false,
                    user: Some(cmd.user),
                });
            }
            if state != FailureState::default() {
                store_failures(conn, &cmd.failure_key, &FailureState::default(), now)?;
            }
            open_user_session(
                conn,
                market,
                cmd.user.0,
                &cmd.session,
                &cmd.refresh,
                (cmd.now, now),
                "password",
            )
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn token_owner(
        &self,
        purpose: TokenPurpose,
        token_hash: &[u8],
        now: DateTime<Utc>,
    ) -> Result<Option<TokenOwner>, RepoError> {
        let now = to_db(now);
        self.read(|conn| {
            Ok(email_tokens::table
                .inner_join(
                    email_identities::table.on(email_identities::user_id
                        .eq(email_tokens::user_id)
                        .and(email_identities::email_key.eq(email_tokens::email_key))),
                )
                .filter(email_tokens::token_hash.eq(token_hash))
                .filter(email_tokens::purpose.eq(purpose.as_str()))
                .filter(email_tokens::used_at.is_null())
                .filter(email_tokens::expires_at.gt(now))
                .select((email_tokens::user_id, email_identities::email))
                .first::<(i64, String)>(conn)
                .optional()?
                .map(|(user, email)| TokenOwner {
                    user: UserId(user),
                    email,
                }))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code()))]
    fn reset_password(&self, cmd: ResetPassword) -> Result<Option<UserId>, RepoError> {
        let now = to_db(cmd.now);
        self.write(|conn| {
            let Some((user, key)) = use_token(conn, TokenPurpose::Reset, &cmd.token_hash, now)?
            else {
                return Ok(None);
            };
            let Some((_, stored, verified)) = identity_by_key(conn, &key)? else {
                return Ok(None);
            };
            diesel::update(email_identities::table.find(user))
                .set((
                    email_identities::password_hash.eq(&cmd.password_hash),
                    // The link proved the address.
                    email_identities::verified_at.eq(verified.unwrap_or(now)),
                    email_identities::updated_at.eq(now),
                ))
                .execute(conn)?;
            diesel::delete(phone_failures::table.find(failure_key(&key))).execute(conn)?;
            revoke_all(conn, user, now)?;
            queue_mail(conn, &cmd.mail, user, &key, &stored, now)?;
            Ok(Some(UserId(user)))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = user.0))]
    fn identity(&self, user: UserId) -> Result<Option<EmailIdentity>, RepoError> {
        self.read(|conn| {
            Ok(email_identities::table
                .find(user.0)
                .select((
                    email_identities::email,
                    email_identities::verified_at,
                    email_identities::password_hash,
                ))
                .first::<(String, Option<NaiveDateTime>, String)>(conn)
                .optional()?
                .map(|(email, verified, password_hash)| EmailIdentity {
                    email,
                    verified: verified.is_some(),
                    password_hash,
                }))
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = cmd.user.0))]
    fn change_password(&self, cmd: ChangePassword) -> Result<bool, RepoError> {
        let now = to_db(cmd.now);
        self.write(|conn| {
            let found = email_identities::table
                .find(cmd.user.0)
                .select((email_identities::email, email_identities::email_key))
                .first::<(String, String)>(conn)
                .optional()?;
            let Some((stored, key)) = found else {
                return Ok(false);
            };
            diesel::update(email_identities::table.find(cmd.user.0))
                .set((
                    email_identities::password_hash.eq(&cmd.password_hash),
                    email_identities::updated_at.eq(now),
                ))
                .execute(conn)?;
            revoke_all(conn, cmd.user.0, now)?;
            queue_mail(conn, &cmd.mail, cmd.user.0, &key, &stored, now)?;
            Ok(true)
        })
    }

    #[instrument(level = "debug", skip_all, fields(market = self.code(), user = cmd.user.0))]
    fn link_email(&self, cmd: LinkEmail) -> Result<LinkOutcome, RepoError> {
        let now = to_db(cmd.now);
        let key = cmd.email.key();
        let address = cmd.email.as_str();
        let user = cmd.user.0;
        self.with_conn(|conn| {
            let outcome = crate::connection::write_tx(conn, |conn| {
                hit_limits(conn, &cmd.limits.ip, cmd.now)?;
                let own = email_identities::table
                    .find(user)
                    .select(email_identities::verified_at)
                    .first::<Option<NaiveDateTime>>(conn)
                    .optional()?;
                if let Some(Some(_)) = own {
                    return Ok(LinkOutcome::AlreadyLinked);
                }
                let taken = identity_by_key(conn, &key)?;
                let mail_ok = address_admits(conn, &cmd.limits.address, cmd.now)?;
                match taken {
                    Some((owner, stored, _)) if owner != user => {
                        if mail_ok {
                            queue_mail(conn, &cmd.exists_mail, owner, &key, &stored, now)?;
                        }
                    }
                    _ => {
                        // Replaces an unverified address of the account, if any.
                        diesel::delete(email_identities::table.find(user)).execute(conn)?;
                        diesel::insert_into(email_identities::table)
                            .values((
                                email_identities::user_id.eq(user),
                                email_identities::email.eq(address),
                                email_identities::email_key.eq(&key),
                                email_identities::password_hash.eq(&cmd.password_hash),
                                email_identities::created_at.eq(now),
                                email_identities::updated_at.eq(now),
                            ))
                            .execute(conn)?;
                        if mail_ok {
                            queue_mail(conn, &cmd.verify_mail, user, &key, address, now)?;
                        }
                    }
                }
                Ok(LinkOutcome::Done)
            });
            match outcome {
                Err(TxError::RateLimited(r)) => Ok(LinkOutcome::RateLimited(r)),
                other => other,
            }
        })
    }
}
