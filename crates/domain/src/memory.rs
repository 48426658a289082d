//! An in-memory implementation of the repository ports, for tests of the layers above the store
//! (domain services, delivery worker, HTTP handlers) and for demos. It follows the same rules as
//! `marque-store` (it calls the same pure functions) but keeps state in one process: never use it
//! where several instances must agree.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use marque_markets::Market;

mod account;

use crate::challenge::judge;
use crate::{
    AuthRepository, BucketState, ChallengeState, ChallengeStatus, IssueChallenge, IssueOutcome,
    Judgement, NewOutboxMessage, OutboxMessage, OutboxRepository, ProfileUpdate, RepoError,
    SessionId, User, UserId, VerifyChallenge, VerifyOutcome,
};

#[derive(Debug, Clone)]
struct Challenge {
    phone: String,
    hash: Vec<u8>,
    state: ChallengeState,
}

#[derive(Debug, Clone)]
struct SessionRow {
    user: UserId,
    expires_at: DateTime<Utc>,
    revoked: bool,
    created_at: DateTime<Utc>,
    user_agent: Option<String>,
}

/// Status of a message in [`InMemoryStore`]'s outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting for delivery.
    Pending,
    /// Delivered.
    Sent,
    /// Given up.
    Failed,
    /// Expired before delivery.
    Expired,
}

#[derive(Debug, Clone)]
struct OutboxRow {
    msg: NewOutboxMessage,
    status: OutboxStatus,
    attempts: u32,
    next_attempt_at: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
struct State {
    buckets: HashMap<String, BucketState>,
    challenges: Vec<Challenge>,
    users: Vec<User>,
    sessions: HashMap<SessionId, SessionRow>,
    outbox: Vec<OutboxRow>,
    account: account::AccountState,
}

/// One market's state in memory.
#[derive(Debug)]
pub struct InMemoryStore {
    market: Market,
    state: Mutex<State>,
    down: std::sync::atomic::AtomicBool,
}

impl InMemoryStore {
    /// An empty store for `market`.
    pub fn new(market: Market) -> Self {
        Self {
            market,
            state: Mutex::default(),
            down: Default::default(),
        }
    }

    /// Makes every call fail with [`RepoError::Unavailable`] (or work again), to test outages.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, std::sync::atomic::Ordering::SeqCst);
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, RepoError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(RepoError::Unavailable("store is down".into()));
        }
        Ok(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Number of users stored.
    pub fn user_count(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .users
            .len()
    }

    /// Status and attempts of every outbox message, oldest first.
    pub fn outbox_statuses(&self) -> Vec<(OutboxStatus, u32, bool)> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.outbox
            .iter()
            .map(|r| (r.status, r.attempts, r.msg.sealed_body.is_empty()))
            .collect()
    }

    /// Sealed bodies of pending messages for `recipient`, oldest first.
    pub fn pending_bodies(&self, recipient: &str) -> Vec<Vec<u8>> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.outbox
            .iter()
            .filter(|r| r.status == OutboxStatus::Pending && r.msg.recipient == recipient)
            .map(|r| r.msg.sealed_body.clone())
            .collect()
    }
}

impl AuthRepository for InMemoryStore {
    fn market(&self) -> Market {
        self.market
    }

    fn ping(&self) -> Result<(), RepoError> {
        self.lock().map(|_| ())
    }

    fn issue_challenge(&self, cmd: IssueChallenge) -> Result<IssueOutcome, RepoError> {
        let mut s = self.lock()?;
        let mut admitted = Vec::new();
        for check in &cmd.limits {
            match check.policy.admit(s.buckets.get(&check.bucket), cmd.now) {
                Ok(state) => admitted.push((check.bucket.clone(), state)),
                Err(retry) => return Ok(IssueOutcome::RateLimited(retry)),
            }
        }
        s.buckets.extend(admitted);
        for c in s
            .challenges
            .iter_mut()
            .filter(|c| c.phone == cmd.phone.e164())
        {
            if c.state.status == ChallengeStatus::Active {
                c.state.status = ChallengeStatus::Superseded;
            }
        }
        s.challenges.push(Challenge {
            phone: cmd.phone.e164().to_owned(),
            hash: cmd.code_hash,
            state: ChallengeState {
                attempts: 0,
                expires_at: cmd.expires_at,
                status: ChallengeStatus::Active,
            },
        });
        if let Some(msg) = cmd.outbox {
            s.outbox.push(OutboxRow {
                msg,
                status: OutboxStatus::Pending,
                attempts: 0,
                next_attempt_at: cmd.now,
                locked_until: None,
            });
        }
        Ok(IssueOutcome::Issued)
    }

    fn verify_challenge(&self, cmd: VerifyChallenge<'_>) -> Result<VerifyOutcome, RepoError> {
        let mut s = self.lock()?;
        let s = &mut *s;
        let newest = s
            .challenges
            .iter_mut()
            .rev()
            .find(|c| c.phone == cmd.phone.e164());
        let matches = newest.as_ref().is_some_and(|c| (cmd.matches)(&c.hash));
        let verdict = judge(
            newest.as_ref().map(|c| &c.state),
            cmd.now,
            cmd.max_attempts,
            matches,
        );
        let Some(c) = newest else {
            return Ok(VerifyOutcome::NoActiveCode);
        };
        Ok(match verdict {
            Judgement::Accept => {
                c.state.status = ChallengeStatus::Consumed;
                let existing = s.users.iter_mut().find(|u| u.phone == *cmd.phone);
                let is_new_user = existing.is_none();
                let user = match existing {
                    Some(u) => {
                        u.last_login = Some(cmd.now);
                        u.updated_at = cmd.now;
                        u.is_verified = true;
                        u.clone()
                    }
                    None => {
                        let u = User {
                            id: UserId(s.users.len() as i64 + 1),
                            phone: cmd.phone.clone(),
                            full_name: None,
                            profile_image_url: None,
                            is_verified: true,
                            last_login: Some(cmd.now),
                            created_at: cmd.now,
                            updated_at: cmd.now,
                        };
                        s.users.push(u.clone());
                        u
                    }
                };
                s.sessions.insert(
                    cmd.session.id.clone(),
                    SessionRow {
                        user: user.id,
                        expires_at: cmd.session.expires_at,
                        revoked: false,
                        created_at: cmd.session.created_at,
                        user_agent: cmd.session.user_agent.clone(),
                    },
                );
                VerifyOutcome::Verified { user, is_new_user }
            }
            Judgement::Reject {
                attempts,
                status,
                attempts_left,
            } => {
                c.state.attempts = attempts;
                c.state.status = status;
                VerifyOutcome::WrongCode { attempts_left }
            }
            Judgement::Expired => {
                c.state.status = ChallengeStatus::Expired;
                VerifyOutcome::Expired
            }
            Judgement::AttemptsExceeded => VerifyOutcome::AttemptsExceeded,
            Judgement::NoActiveCode => VerifyOutcome::NoActiveCode,
        })
    }

    fn active_session(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, RepoError> {
        let s = self.lock()?;
        Ok(s.sessions
            .get(session)
            .filter(|r| r.user == user && !r.revoked && r.expires_at > now)
            .map(|r| r.expires_at))
    }

    fn session_user(
        &self,
        session: &SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError> {
        if self.active_session(session, user, now)?.is_none() {
            return Ok(None);
        }
        Ok(self.lock()?.users.iter().find(|u| u.id == user).cloned())
    }

    fn update_profile(
        &self,
        user: UserId,
        update: &ProfileUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<User>, RepoError> {
        let mut s = self.lock()?;
        let Some(u) = s.users.iter_mut().find(|u| u.id == user) else {
            return Ok(None);
        };
        if let Some(v) = &update.full_name {
            u.full_name = v.clone();
        }
        if let Some(v) = &update.profile_image_url {
            u.profile_image_url = v.clone();
        }
        u.updated_at = now;
        Ok(Some(u.clone()))
    }

    fn revoke_session(&self, session: &SessionId, _now: DateTime<Utc>) -> Result<bool, RepoError> {
        let mut s = self.lock()?;
        Ok(match s.sessions.get_mut(session) {
            Some(r) if !r.revoked => {
                r.revoked = true;
                true
            }
            _ => false,
        })
    }
}

impl OutboxRepository for InMemoryStore {
    fn market(&self) -> Market {
        self.market
    }

    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        let mut s = self.lock()?;
        let mut out = Vec::new();
        for (i, r) in s.outbox.iter_mut().enumerate() {
            if out.len() >= limit as usize {
                break;
            }
            let free = r.locked_until.is_none_or(|t| t < now);
            if r.status == OutboxStatus::Pending && r.next_attempt_at <= now && free {
                r.locked_until = Some(lease_until);
                out.push(OutboxMessage {
                    id: i as i64 + 1,
                    channel: r.msg.channel,
                    recipient: r.msg.recipient.clone(),
                    sealed_body: r.msg.sealed_body.clone(),
                    attempts: r.attempts,
                    expires_at: r.msg.expires_at,
                });
            }
        }
        Ok(out)
    }

    fn mark_sent(&self, id: i64, _now: DateTime<Utc>) -> Result<(), RepoError> {
        self.finish(id, OutboxStatus::Sent)
    }

    fn mark_failed(
        &self,
        id: i64,
        _now: DateTime<Utc>,
        retry_at: Option<DateTime<Utc>>,
        _error: &str,
    ) -> Result<(), RepoError> {
        match retry_at {
            None => self.finish(id, OutboxStatus::Failed),
            Some(at) => {
                let mut s = self.lock()?;
                let r = row(&mut s, id)?;
                r.attempts += 1;
                r.next_attempt_at = at;
                r.locked_until = None;
                Ok(())
            }
        }
    }

    fn mark_expired(&self, id: i64, _now: DateTime<Utc>) -> Result<(), RepoError> {
        self.finish(id, OutboxStatus::Expired)
    }
}

impl InMemoryStore {
    fn finish(&self, id: i64, status: OutboxStatus) -> Result<(), RepoError> {
        let mut s = self.lock()?;
        let r = row(&mut s, id)?;
        if status == OutboxStatus::Failed {
            r.attempts += 1;
        }
        r.status = status;
        r.locked_until = None;
        r.msg.sealed_body.clear();
        Ok(())
    }
}

fn row(s: &mut State, id: i64) -> Result<&mut OutboxRow, RepoError> {
    usize::try_from(id - 1)
        .ok()
        .and_then(|i| s.outbox.get_mut(i))
        .ok_or_else(|| RepoError::Other(format!("no outbox row {id}")))
}
