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
use crate::refresh::{self, RefreshJudgement, RefreshState, SessionState};
use crate::{
    AuthRepository, BucketState, ChallengeState, ChallengeStatus, DeleteAccount, IssueChallenge,
    IssueOutcome, Judgement, NewOutboxMessage, OutboxMessage, OutboxRepository, ProfileUpdate,
    RepoError, RevokeScope, RotateOutcome, RotateRefresh, SessionId, SessionInfo, User, UserId,
    VerifyChallenge, VerifyOutcome,
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
    created_at: DateTime<Utc>,
    last_seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked: bool,
    user_agent: Option<String>,
    client_ip: Option<String>,
}

#[derive(Debug, Clone)]
struct RefreshRow {
    session: SessionId,
    hash: Vec<u8>,
    expires_at: DateTime<Utc>,
    rotated_at: Option<DateTime<Utc>>,
    successor: Option<usize>,
    successor_sealed: Option<Vec<u8>>,
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
    refresh: Vec<RefreshRow>,
    outbox: Vec<OutboxRow>,
    deletions: Vec<UserId>,
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
        let (verdict, _) =
            judge_newest(s, cmd.phone.e164(), cmd.now, cmd.max_attempts, cmd.matches);
        if verdict != Judgement::Accept {
            return Ok(verdict.refusal());
        }
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
                let next = s.users.iter().map(|u| u.id.0).max().unwrap_or(0) + 1;
                let next = next.max(s.deletions.iter().map(|u| u.0 + 1).max().unwrap_or(0));
                let u = User {
                    id: UserId(next),
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
        let known_device = !is_new_user
            && s.sessions
                .values()
                .any(|r| r.user == user.id && r.user_agent == cmd.session.user_agent);
        s.sessions.insert(
            cmd.session.id.clone(),
            SessionRow {
                user: user.id,
                created_at: cmd.session.created_at,
                last_seen_at: cmd.session.created_at,
                expires_at: cmd.session.expires_at,
                revoked: false,
                user_agent: cmd.session.user_agent.clone(),
                client_ip: cmd.session.client_ip.clone(),
            },
        );
        s.refresh.push(RefreshRow {
            session: cmd.session.id.clone(),
            hash: cmd.refresh.token_hash.clone(),
            expires_at: cmd.refresh.expires_at,
            rotated_at: None,
            successor: None,
            successor_sealed: None,
        });
        Ok(VerifyOutcome::Verified {
            user,
            is_new_user,
            known_device,
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

    fn revoke_sessions(
        &self,
        user: UserId,
        scope: &RevokeScope,
        _now: DateTime<Utc>,
    ) -> Result<u64, RepoError> {
        let mut s = self.lock()?;
        let mut n = 0;
        for (id, row) in s.sessions.iter_mut() {
            let in_scope = match scope {
                RevokeScope::One(one) => id == one,
                RevokeScope::All => true,
                RevokeScope::AllExcept(keep) => id != keep,
            };
            if in_scope && row.user == user && !row.revoked {
                row.revoked = true;
                n += 1;
            }
        }
        Ok(n)
    }

    fn list_sessions(
        &self,
        user: UserId,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionInfo>, RepoError> {
        let s = self.lock()?;
        let mut list: Vec<SessionInfo> = s
            .sessions
            .iter()
            .filter(|(_, r)| r.user == user && !r.revoked && r.expires_at > now)
            .map(|(id, r)| SessionInfo {
                id: id.clone(),
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
                user_agent: r.user_agent.clone(),
                client_ip: r.client_ip.clone(),
            })
            .collect();
        list.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.0.cmp(&a.id.0))
        });
        Ok(list)
    }

    fn rotate_refresh(&self, cmd: RotateRefresh<'_>) -> Result<RotateOutcome, RepoError> {
        let mut s = self.lock()?;
        let s = &mut *s;
        let Some(idx) = s.refresh.iter().position(|r| r.hash == cmd.token_hash) else {
            return Ok(RotateOutcome::Invalid);
        };
        let row = s.refresh[idx].clone();
        let successor_replayable = row.successor_sealed.is_some()
            && row
                .successor
                .is_some_and(|i| s.refresh[i].rotated_at.is_none());
        let token = RefreshState {
            expires_at: row.expires_at,
            rotated_at: row.rotated_at,
            successor_replayable,
        };
        let Some(session) = s.sessions.get_mut(&row.session) else {
            return Ok(RotateOutcome::Invalid);
        };
        let state = SessionState {
            revoked: session.revoked,
            expires_at: session.expires_at,
        };
        Ok(
            match refresh::judge(Some(&token), Some(&state), cmd.now, cmd.grace) {
                RefreshJudgement::Invalid => RotateOutcome::Invalid,
                RefreshJudgement::Reuse => {
                    session.revoked = true;
                    RotateOutcome::Reused
                }
                RefreshJudgement::Replay => {
                    let next = row
                        .successor
                        .map(|i| s.refresh[i].expires_at)
                        .unwrap_or(row.expires_at);
                    RotateOutcome::Replayed {
                        session: row.session.clone(),
                        user: session.user,
                        successor_sealed: row.successor_sealed.clone().unwrap_or_default(),
                        refresh_expires_at: next,
                    }
                }
                RefreshJudgement::Rotate => {
                    let deadline = refresh::session_deadline(
                        session.created_at,
                        cmd.now,
                        cmd.idle,
                        cmd.max_lifetime,
                    );
                    session.expires_at = deadline;
                    session.last_seen_at = cmd.now;
                    let user = session.user;
                    s.refresh.push(RefreshRow {
                        session: row.session.clone(),
                        hash: cmd.successor_hash.clone(),
                        expires_at: deadline,
                        rotated_at: None,
                        successor: None,
                        successor_sealed: None,
                    });
                    let succ = s.refresh.len() - 1;
                    let r = &mut s.refresh[idx];
                    r.rotated_at = Some(cmd.now);
                    r.successor = Some(succ);
                    r.successor_sealed = Some(cmd.successor_sealed.clone());
                    RotateOutcome::Rotated {
                        session: row.session,
                        user,
                        refresh_expires_at: deadline,
                    }
                }
            },
        )
    }

    fn delete_account(&self, cmd: DeleteAccount<'_>) -> Result<VerifyOutcome, RepoError> {
        let mut s = self.lock()?;
        let s = &mut *s;
        let phone = cmd.phone.e164();
        let (verdict, _) = judge_newest(s, phone, cmd.now, cmd.max_attempts, cmd.matches);
        if verdict != Judgement::Accept {
            return Ok(verdict.refusal());
        }
        let Some(pos) = s.users.iter().position(|u| u.id == cmd.user) else {
            return Ok(VerifyOutcome::NoActiveCode);
        };
        let user = s.users.remove(pos);
        let sessions: Vec<SessionId> = s
            .sessions
            .iter()
            .filter(|(_, r)| r.user == cmd.user)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &sessions {
            s.sessions.remove(id);
        }
        // Keep indexes stable: blank the rows of deleted sessions instead of removing them.
        for r in s
            .refresh
            .iter_mut()
            .filter(|r| sessions.contains(&r.session))
        {
            r.hash.clear();
            r.successor_sealed = None;
        }
        s.challenges.retain(|c| c.phone != phone);
        s.buckets.remove(&format!("send:phone:{phone}"));
        for o in s.outbox.iter_mut().filter(|o| o.msg.recipient == phone) {
            o.msg.sealed_body.clear();
            o.msg.recipient.clear();
            o.status = OutboxStatus::Expired;
        }
        s.account.delete_user(cmd.user);
        s.deletions.push(cmd.user);
        Ok(VerifyOutcome::Verified {
            user,
            is_new_user: false,
            known_device: true,
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
        .ok_or_else(|| RepoError::Other(format!("no outbox row {id}").into()))
}

/// Judges an attempt on the newest challenge of `phone` and applies a refusal's writes; on
/// `Accept` marks the challenge consumed.
fn judge_newest(
    s: &mut State,
    phone: &str,
    now: DateTime<Utc>,
    max_attempts: u32,
    matches: &(dyn Fn(&[u8]) -> bool + Sync),
) -> (Judgement, Option<usize>) {
    let idx = s.challenges.iter().rposition(|c| c.phone == phone);
    let ok = idx.is_some_and(|i| matches(&s.challenges[i].hash));
    let verdict = judge(idx.map(|i| &s.challenges[i].state), now, max_attempts, ok);
    if let Some(i) = idx {
        let c = &mut s.challenges[i];
        match verdict {
            Judgement::Accept => c.state.status = ChallengeStatus::Consumed,
            Judgement::Reject {
                attempts, status, ..
            } => {
                c.state.attempts = attempts;
                c.state.status = status;
            }
            Judgement::Expired => c.state.status = ChallengeStatus::Expired,
            Judgement::AttemptsExceeded | Judgement::NoActiveCode => {}
        }
    }
    (verdict, idx)
}
