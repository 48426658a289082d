//! Send-codes of one market decided in shared transactions: group commit for the rate limits
//! (issue 13).
//!
//! Every send-code locks rows that every other send-code of the market also locks — the SMS day
//! bucket, the prefix counters, a busy client IP's bucket — and holds them until its commit. One
//! transaction per code serialised the market on those rows (a send-code spent most of its time
//! waiting for them, and PostgreSQL most of its CPU waking the waiters). Here the codes that
//! arrive while a transaction runs wait in a queue; the next transaction takes them all (up to
//! [`MAX_BATCH`]) and decides them one after the other on the locked rows, as if each had been
//! issued alone ([`crate::auth::issue_many`]), so the shared rows are locked and written once per
//! batch. Limits still hold across instances: the batch locks the same rows in the same order as
//! any other transaction.
//!
//! No thread of its own: the first waiting caller runs the next batch (leader), the others sleep
//! until their outcome is in; a leader whose batch is done hands over to a waiting caller. At most
//! one batch per market runs at a time in an instance, on one pooled connection, so a burst of
//! send-codes takes one connection, not one each.
//!
//! The same queue ([`Batcher`]) serves the reads of a market's counters that every send-code of
//! the *other* markets makes ([`BucketReads`]: one `SELECT` for the keys of every waiting read).

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use marque_domain::{BucketState, IssueChallenge, IssueOutcome, RepoError};

use crate::MarketStore;
use crate::connection::write_tx_async_commit;
use crate::store::TxError;

/// Most codes decided in one transaction. Bounds a batch's statement arrays and the time its
/// rows stay locked.
pub(crate) const MAX_BATCH: usize = 64;

/// Requests of one kind waiting to be served together, by whichever waiting caller comes first
/// (shared by the clones of a [`MarketStore`]). `T` is a request, `R` its answer.
#[derive(Debug)]
pub(crate) struct Batcher<T, R> {
    state: Mutex<QueueState<T, R>>,
    /// Signalled when a batch ends: its answers are in, and the queue may need a new leader.
    batch_done: Condvar,
}

impl<T, R> Default for Batcher<T, R> {
    fn default() -> Self {
        Self {
            state: Mutex::new(QueueState {
                next_ticket: 0,
                waiting: VecDeque::new(),
                leader: false,
                done: HashMap::new(),
            }),
            batch_done: Condvar::new(),
        }
    }
}

#[derive(Debug)]
struct QueueState<T, R> {
    /// Next ticket number.
    next_ticket: u64,
    /// Requests waiting for a batch, oldest first.
    waiting: VecDeque<(u64, T)>,
    /// Whether a caller is running a batch now.
    leader: bool,
    /// Answers of finished batches not yet collected, by ticket.
    done: HashMap<u64, R>,
}

/// Takes the next batch of requests from the waiting ones (their tickets and the requests).
pub(crate) type Take<T> = fn(&mut VecDeque<(u64, T)>) -> (Vec<u64>, Vec<T>);

impl<T, R> Batcher<T, R> {
    /// Queues `request` and returns its answer. Blocks the calling thread until then; meanwhile
    /// it may serve batches of other callers' requests: `take` picks a batch from the waiting
    /// requests, `run` answers it (one answer per request, in order), `panicked` stands in for
    /// the answers of a batch whose `run` panicked (the panic then goes on in the caller that
    /// ran it).
    pub(crate) fn submit(
        &self,
        request: T,
        take: Take<T>,
        run: impl Fn(&[T]) -> Vec<R>,
        panicked: impl Fn() -> R,
    ) -> R {
        let mut state = self.lock();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.waiting.push_back((ticket, request));
        loop {
            if let Some(answer) = state.done.remove(&ticket) {
                return answer;
            }
            if state.leader {
                state = self
                    .batch_done
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            let (tickets, batch) = take(&mut state.waiting);
            state.leader = true;
            drop(state);
            let answers = catch_unwind(AssertUnwindSafe(|| run(&batch)));
            state = self.lock();
            state.leader = false;
            let panic = match answers {
                Ok(answers) => {
                    state.done.extend(tickets.into_iter().zip(answers));
                    None
                }
                Err(panic) => {
                    for t in tickets {
                        state.done.insert(t, panicked());
                    }
                    Some(panic)
                }
            };
            self.batch_done.notify_all();
            if let Some(panic) = panic {
                drop(state);
                resume_unwind(panic);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, QueueState<T, R>> {
        // A panic while the lock is held cannot leave the state half-changed (every change is a
        // single step), so a poisoned lock is still good.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The queue of one market's send-codes.
pub(crate) type IssueQueue = Batcher<IssueChallenge, Result<IssueOutcome, RepoError>>;

impl IssueQueue {
    /// Issues `cmd` in the next batch and returns its own outcome (what
    /// [`marque_domain::AuthRepository::issue_challenge`] returns).
    ///
    /// Errors: when the batch's transaction fails (database unreachable, a statement failed),
    /// every code of the batch gets the failure ([`RepoError::Unavailable`] or
    /// [`RepoError::Other`], as the batch's), and nothing of the batch was written.
    pub(crate) fn issue(
        &self,
        store: &MarketStore,
        cmd: IssueChallenge,
    ) -> Result<IssueOutcome, RepoError> {
        self.submit(
            cmd,
            take_batch,
            |batch| run_batch(store, batch),
            || Err(RepoError::Other("send-code batch panicked".into())),
        )
    }
}

/// The queue of one market's reads of rate-limit buckets (each request a list of bucket keys;
/// the answer their states, in order, `None` for a bucket with no hits).
pub(crate) type BucketReads = Batcher<Vec<String>, Result<Vec<Option<BucketState>>, RepoError>>;

impl BucketReads {
    /// The states of `keys`, read together with the other reads waiting at the time: one
    /// statement for all of them (every send-code reads its client's counts in the other markets
    /// — issue 13). A read that waited sees the counts as of its batch's statement, which ran
    /// after it was asked for: never older.
    pub(crate) fn read(
        &self,
        store: &MarketStore,
        keys: Vec<String>,
    ) -> Result<Vec<Option<BucketState>>, RepoError> {
        self.submit(
            keys,
            |waiting| {
                let n = waiting.len().min(MAX_BATCH);
                waiting.drain(..n).unzip()
            },
            |batch| {
                let all: Vec<&str> = batch
                    .iter()
                    .flatten()
                    .map(String::as_str)
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                match store.read_buckets(&all) {
                    Ok(states) => batch
                        .iter()
                        .map(|keys| {
                            Ok(keys
                                .iter()
                                .map(|k| states.get(k.as_str()).copied().flatten())
                                .collect())
                        })
                        .collect(),
                    Err(e) => BatchFailed::answers(e, batch.len()),
                }
            },
            || Err(RepoError::Other("bucket read batch panicked".into())),
        )
    }
}

impl MarketStore {
    /// Issues `cmds` in shared transactions, without waiting for other callers' codes: the
    /// codes are taken in order into batches of at most 64 (a later code of a number
    /// and purpose that already has one in the batch goes into the next), each decided as if its
    /// codes were issued one after the other ([`marque_domain::AuthRepository::issue_challenge`]
    /// for one). One outcome per code, in the order of `cmds`.
    ///
    /// Errors: the first failed batch's error ([`RepoError::Unavailable`] or
    /// [`RepoError::Other`]); the batches before it are committed, it and those after are not.
    pub fn issue_challenges(
        &self,
        cmds: Vec<IssueChallenge>,
    ) -> Result<Vec<IssueOutcome>, RepoError> {
        let n = cmds.len();
        let mut waiting: VecDeque<(u64, IssueChallenge)> = (0u64..).zip(cmds).collect();
        // By ticket (the index in `cmds`): a deferred code is answered after later ones.
        let mut outcomes: Vec<Option<IssueOutcome>> = vec![None; n];
        while !waiting.is_empty() {
            let (tickets, batch) = take_batch(&mut waiting);
            for (ticket, outcome) in tickets.into_iter().zip(run_batch(self, &batch)) {
                outcomes[ticket as usize] = Some(outcome?);
            }
        }
        Ok(outcomes.into_iter().flatten().collect())
    }
}

/// Takes the next batch from `waiting`: the oldest codes, up to [`MAX_BATCH`], skipping (and
/// leaving queued) a code whose number and purpose already has one in the batch.
fn take_batch(waiting: &mut VecDeque<(u64, IssueChallenge)>) -> (Vec<u64>, Vec<IssueChallenge>) {
    let mut tickets = Vec::new();
    let mut batch: Vec<IssueChallenge> = Vec::new();
    let mut left = VecDeque::new();
    while let Some((ticket, cmd)) = waiting.pop_front() {
        let repeated = batch
            .iter()
            .any(|c| c.phone == cmd.phone && c.purpose == cmd.purpose);
        if repeated {
            left.push_back((ticket, cmd));
        } else {
            tickets.push(ticket);
            batch.push(cmd);
        }
        if batch.len() == MAX_BATCH {
            break;
        }
    }
    left.append(waiting);
    *waiting = left;
    (tickets, batch)
}

/// Runs one batch in its own transaction; one outcome per code, in order.
fn run_batch(
    store: &MarketStore,
    batch: &[IssueChallenge],
) -> Vec<Result<IssueOutcome, RepoError>> {
    // Through the `metrics` facade (a no-op without a recorder); documented in
    // docs/operations.md.
    metrics::histogram!("marque_send_code_batch_size", "market" => store.market().code())
        .record(batch.len() as f64);
    let outcome = store.with_conn(|conn| {
        // The counters every send-code locks are held only until the commit is in memory, not
        // through the WAL flush (see `write_tx_async_commit` for what that trades).
        match write_tx_async_commit(conn, |conn| crate::auth::issue_many(conn, batch)) {
            // Every code was refused: rolled back, nothing written.
            Err(TxError::Refused(outcomes)) => Ok(outcomes),
            other => other,
        }
    });
    match outcome {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(e) => BatchFailed::answers(e, batch.len()),
    }
}

/// The failure of a batch, as each of its requests reports it (the cause is shared).
#[derive(Debug, thiserror::Error)]
#[error("the batch this request was served in failed")]
struct BatchFailed(#[source] Arc<RepoError>);

impl BatchFailed {
    /// The answers of a batch of `n` requests that failed with `e`: for each, a [`RepoError`] of
    /// the same kind as `e` (so a database outage is still a 503), with `e` as the shared source.
    fn answers<T>(e: RepoError, n: usize) -> Vec<Result<T, RepoError>> {
        let shared = Arc::new(e);
        (0..n)
            .map(|_| {
                let wrapped = Box::new(BatchFailed(Arc::clone(&shared)));
                Err(match *shared {
                    RepoError::Unavailable(_) => RepoError::Unavailable(wrapped),
                    RepoError::Other(_) => RepoError::Other(wrapped),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use marque_domain::{Channel, OtpPurpose};
    use marque_markets::PhoneNumber;

    use super::*;

    fn cmd(e164: &str, purpose: OtpPurpose) -> IssueChallenge {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap();
        IssueChallenge {
            phone: PhoneNumber::parse(e164, None).unwrap(),
            code_hash: vec![0; 32],
            purpose,
            challenge_id: e164.to_owned(),
            channel: Channel::Sms,
            check_lock: true,
            now,
            expires_at: now,
            client_ip: None,
            limits: Vec::new(),
            outbox: None,
            sms: None,
        }
    }

    #[test]
    fn a_batch_takes_the_oldest_codes_once_per_number_and_purpose_up_to_the_bound() {
        let mut waiting: VecDeque<(u64, IssueChallenge)> = VecDeque::new();
        waiting.push_back((0, cmd("+996505325311", OtpPurpose::Login)));
        waiting.push_back((1, cmd("+996505325311", OtpPurpose::Login)));
        waiting.push_back((2, cmd("+996505325311", OtpPurpose::DeleteAccount)));
        for i in 0..70u64 {
            waiting.push_back((3 + i, cmd(&format!("+9965553{i:05}"), OtpPurpose::Login)));
        }
        let (tickets, batch) = take_batch(&mut waiting);
        assert_eq!(batch.len(), MAX_BATCH);
        // Ticket 1 repeats ticket 0's number and purpose: it waits; another purpose does not.
        assert_eq!(&tickets[..3], &[0, 2, 3]);
        assert_eq!(tickets.len(), MAX_BATCH);
        // What is left keeps its order, the skipped code first.
        let left: Vec<u64> = waiting.iter().map(|(t, _)| *t).collect();
        assert_eq!(left[0], 1);
        assert_eq!(left[1..], (65..73).collect::<Vec<_>>()[..]);
        let (tickets, _) = take_batch(&mut waiting);
        assert_eq!(tickets, [vec![1], (65..73).collect()].concat());
        assert!(waiting.is_empty());
    }
}
