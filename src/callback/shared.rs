//! Callbacks that replicas share (`--store redis://…`): each delivery is delivered once
//! across them, whichever replica ended its journey, and by another if that one dies.
//!
//! A delivery is a job in Redis (`otk:cb:job:{n}`, its document, URL, webhook id and the
//! number of its next attempt) and a member of the sorted set `otk:cb:due`, scored by when
//! its next attempt is due. Every replica claims due jobs in one script that moves each
//! claimed job's score a *lease* ahead (the attempt timeout and a margin): while the lease
//! runs nobody else claims it; the claiming replica attempts, then either ends the job
//! (delivered, or no more attempts) or moves its score to the next retry, in one
//! transaction with the attempt's entry in the shared log. A replica that dies mid-attempt
//! never does either, its lease runs out, and another replica attempts again with the same
//! `webhook-id`: delivery is at least once, as the Standard Webhooks receivers expect.
//!
//! The shared log (`otk:cb:log`, `otk:cb:lost`) is capped like the memory one
//! (`--callback-log-entries`); each attempt names the replica that made it. The counters
//! (`otk:cb:stats`) are shared too; intake slots stay per replica.

use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::log::{Attempt, Lost};
use super::{Delivery, Dispatcher, End, Settled};
use crate::shared::{Redis, Unavailable};
use crate::time::now_millis;

const DUE: &str = "otk:cb:due";
const NEXT: &str = "otk:cb:next";
const LOG: &str = "otk:cb:log";
const LOST: &str = "otk:cb:lost";
const STATS: &str = "otk:cb:stats";

fn job_key(id: u64) -> String {
    format!("otk:cb:job:{id}")
}

/// How often a replica looks for due callbacks when nothing wakes it sooner.
const POLL: Duration = Duration::from_millis(100);

/// Jobs claimed in one go.
const BATCH: usize = 32;

/// ARGV: now, lease (ms), most. Returns id, job, id, job... of the jobs due, each now leased.
const CLAIM: &str = r#"
local now = tonumber(ARGV[1])
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', 'otk:cb:due', '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local job = redis.call('GET', 'otk:cb:job:' .. id)
  if job then
    redis.call('ZADD', 'otk:cb:due', now + tonumber(ARGV[2]), id)
    table.insert(out, id)
    table.insert(out, job)
  else
    redis.call('ZREM', 'otk:cb:due', id)
  end
end
return out
"#;

/// A delivery as Redis keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    journey_id: String,
    url: String,
    auth_key: Option<String>,
    /// The document (JSON, so text).
    body: String,
    webhook_id: String,
    wrong_auth: bool,
    /// The number of the next attempt (1: the first).
    attempt: u32,
}

/// An attempt as the shared log keeps it: the memory log's, and the replica that made it.
#[derive(Serialize, Deserialize)]
struct LoggedAttempt {
    journey_id: String,
    delivery: u64,
    attempt: u32,
    url: String,
    webhook_id: String,
    scheduled_at: String,
    started_at: String,
    duration_ms: u64,
    outcome: String,
    status: Option<u16>,
    error: Option<String>,
    detail: Option<String>,
    final_attempt: bool,
    replica: String,
    #[serde(default)]
    next_attempt_at: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct LoggedLost {
    journey_id: String,
    delivery: Option<u64>,
    reason: String,
    at: String,
    replica: String,
}

/// The words the log uses, back from text (an unknown one reads as `other`).
fn word(text: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == text)
        .copied()
        .unwrap_or("other")
}

const OUTCOMES: &[&str] = &["delivered", "failed"];
const ERRORS: &[&str] = &[
    "timeout",
    "refused",
    "reset",
    "dns",
    "tls",
    "invalid_url",
    "non_2xx",
    "gone",
    "self_callback",
    "not_allowed",
    "other",
];
const REASONS: &[&str] = &["fault", "shutdown", "reset", "evicted", "error", "store"];

/// The shared schedule of one replica.
pub(super) struct Schedule {
    redis: Arc<Redis>,
    claim: redis::Script,
    lease: Duration,
    log_entries: usize,
}

impl Schedule {
    pub(super) fn new(redis: Arc<Redis>, attempt_timeout: Duration, log_entries: usize) -> Self {
        Schedule {
            redis,
            claim: redis::Script::new(CLAIM),
            lease: attempt_timeout.saturating_add(Duration::from_secs(5)),
            log_entries: log_entries.max(1),
        }
    }

    pub(super) fn replica(&self) -> &str {
        self.redis.replica()
    }

    /// Queue `delivery`, due after its delay; its number among every replica's deliveries.
    pub(super) fn push(&self, delivery: &Delivery) -> Result<u64, Unavailable> {
        let job = Job {
            journey_id: delivery.journey_id.clone(),
            url: delivery.url.clone(),
            auth_key: delivery.auth_key.clone(),
            body: String::from_utf8_lossy(&delivery.body).into_owned(),
            webhook_id: delivery.webhook_id.clone(),
            wrong_auth: delivery.wrong_auth,
            attempt: 1,
        };
        let due = now_millis().saturating_add(millis(delivery.delay));
        let text = serde_json::to_string(&job).unwrap_or_default();
        let id: u64 = self.redis.call(|c| redis::cmd("INCR").arg(NEXT).query(c))?;
        self.redis.call(|c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(job_key(id))
                .arg(&text)
                .ignore()
                .cmd("ZADD")
                .arg(DUE)
                .arg(due)
                .arg(id)
                .ignore()
                .cmd("HINCRBY")
                .arg(STATS)
                .arg("created")
                .arg(1)
                .ignore()
                .query::<()>(c)
        })?;
        Ok(id)
    }

    /// Claim the jobs that are due, each leased to this replica.
    fn claim(&self) -> Result<Vec<(u64, Job)>, Unavailable> {
        let raw: Vec<String> = self.redis.call(|c| {
            self.claim
                .arg(now_millis())
                .arg(millis(self.lease))
                .arg(BATCH)
                .invoke(c)
        })?;
        let mut jobs = Vec::new();
        for pair in raw.chunks(2) {
            let [id, job] = pair else { continue };
            match (id.parse::<u64>(), serde_json::from_str::<Job>(job)) {
                (Ok(id), Ok(job)) => jobs.push((id, job)),
                _ => tracing::error!(job = %id, "a shared callback does not read back; skipped"),
            }
        }
        Ok(jobs)
    }

    /// The attempt is the delivery's last: the job ends, and the log and counters say how.
    fn finish(&self, id: u64, end: End, logged: &Attempt) -> Result<(), Unavailable> {
        let entry = self.entry(logged);
        let counter = match end {
            End::Delivered => "delivered",
            End::Failed => "failed",
        };
        self.redis.call(|c| {
            redis::pipe()
                .atomic()
                .cmd("ZREM")
                .arg(DUE)
                .arg(id)
                .ignore()
                .cmd("DEL")
                .arg(job_key(id))
                .ignore()
                .cmd("HINCRBY")
                .arg(STATS)
                .arg(counter)
                .arg(1)
                .ignore()
                .push_capped(LOG, &entry, self.log_entries)
                .query::<()>(c)
        })
    }

    /// The attempt failed and another follows `wait` from now, by whichever replica.
    fn retry(
        &self,
        id: u64,
        job: &Job,
        wait: Duration,
        logged: &Attempt,
    ) -> Result<(), Unavailable> {
        let entry = self.entry(logged);
        let text = serde_json::to_string(job).unwrap_or_default();
        let due = now_millis().saturating_add(millis(wait));
        self.redis.call(|c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(job_key(id))
                .arg(&text)
                .ignore()
                .cmd("ZADD")
                .arg(DUE)
                .arg("XX")
                .arg(due)
                .arg(id)
                .ignore()
                .push_capped(LOG, &entry, self.log_entries)
                .query::<()>(c)
        })
    }

    /// A callback lost on this replica, for every replica's log.
    pub(super) fn lost(&self, lost: &Lost) {
        let entry = LoggedLost {
            journey_id: lost.journey_id.clone(),
            delivery: lost.delivery,
            reason: lost.reason.to_string(),
            at: lost.at.clone(),
            replica: self.replica().to_string(),
        };
        let text = serde_json::to_string(&entry).unwrap_or_default();
        let result = self.redis.call(|c| {
            redis::pipe()
                .push_capped(LOST, &text, self.log_entries)
                .query::<()>(c)
        });
        if let Err(e) = result {
            tracing::warn!(journey_id = %lost.journey_id, error = %e, "a lost callback is in this replica's log only");
        }
    }

    /// Every replica's attempts and lost callbacks, oldest first.
    pub(super) fn logs(&self) -> Result<(Vec<Attempt>, Vec<Lost>), Unavailable> {
        let (attempts, lost): (Vec<String>, Vec<String>) = self.redis.call(|c| {
            redis::pipe()
                .cmd("LRANGE")
                .arg(LOG)
                .arg(0)
                .arg(-1)
                .cmd("LRANGE")
                .arg(LOST)
                .arg(0)
                .arg(-1)
                .query(c)
        })?;
        let attempts = attempts
            .iter()
            .filter_map(|t| serde_json::from_str::<LoggedAttempt>(t).ok())
            .map(|a| Attempt {
                journey_id: a.journey_id,
                delivery: a.delivery,
                attempt: a.attempt,
                url: a.url,
                webhook_id: a.webhook_id,
                scheduled_at: a.scheduled_at,
                started_at: a.started_at,
                duration_ms: a.duration_ms,
                outcome: word(&a.outcome, OUTCOMES),
                status: a.status,
                error: a.error.as_deref().map(|e| word(e, ERRORS)),
                detail: a.detail,
                final_attempt: a.final_attempt,
                next_attempt_at: a.next_attempt_at,
                replica: Some(a.replica),
            })
            .collect();
        let lost = lost
            .iter()
            .filter_map(|t| serde_json::from_str::<LoggedLost>(t).ok())
            .map(|l| Lost {
                journey_id: l.journey_id,
                delivery: l.delivery,
                reason: word(&l.reason, REASONS),
                at: l.at,
            })
            .collect();
        Ok((attempts, lost))
    }

    /// Every replica's counters: created, delivered, failed, and pending (jobs not ended).
    pub(super) fn counts(&self) -> Result<[u64; 4], Unavailable> {
        let (fields, pending): (Vec<Option<u64>>, u64) = self.redis.call(|c| {
            redis::pipe()
                .cmd("HMGET")
                .arg(STATS)
                .arg("created")
                .arg("delivered")
                .arg("failed")
                .cmd("ZCARD")
                .arg(DUE)
                .query(c)
        })?;
        let at = |i: usize| fields.get(i).copied().flatten().unwrap_or(0);
        Ok([at(0), at(1), at(2), pending])
    }

    /// `POST /__admin/reset`: forget every job and the shared log and counters; returns
    /// how many jobs were pending (counted as cancelled by the reset).
    pub(super) fn reset(&self) -> Result<u64, Unavailable> {
        let ids: Vec<u64> = self
            .redis
            .call(|c| redis::cmd("ZRANGE").arg(DUE).arg(0).arg(-1).query(c))?;
        self.redis.call(|c| {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for id in &ids {
                pipe.cmd("DEL").arg(job_key(*id)).ignore();
            }
            pipe.cmd("DEL")
                .arg(DUE)
                .arg(LOG)
                .arg(LOST)
                .arg(STATS)
                .ignore()
                .query::<()>(c)
        })?;
        Ok(ids.len() as u64)
    }

    fn entry(&self, a: &Attempt) -> String {
        let entry = LoggedAttempt {
            journey_id: a.journey_id.clone(),
            delivery: a.delivery,
            attempt: a.attempt,
            url: a.url.clone(),
            webhook_id: a.webhook_id.clone(),
            scheduled_at: a.scheduled_at.clone(),
            started_at: a.started_at.clone(),
            duration_ms: a.duration_ms,
            outcome: a.outcome.to_string(),
            status: a.status,
            error: a.error.map(str::to_string),
            detail: a.detail.clone(),
            final_attempt: a.final_attempt,
            replica: self.replica().to_string(),
            next_attempt_at: a.next_attempt_at.clone(),
        };
        serde_json::to_string(&entry).unwrap_or_default()
    }
}

/// Appending to a capped Redis list inside a pipeline: the callback log and the lost list keep
/// their last `--callback-log-entries`.
trait PushCapped {
    fn push_capped(&mut self, key: &str, entry: &str, keep: usize) -> &mut Self;
}

impl PushCapped for redis::Pipeline {
    fn push_capped(&mut self, key: &str, entry: &str, keep: usize) -> &mut Self {
        self.cmd("RPUSH")
            .arg(key)
            .arg(entry)
            .ignore()
            .cmd("LTRIM")
            .arg(key)
            .arg(-(keep as i64))
            .arg(-1)
            .ignore()
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Run a blocking Redis call off the runtime's threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Unavailable> + Send + 'static,
) -> Result<T, Unavailable> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Unavailable {
            url: String::new(),
            detail: format!("the Redis call's thread failed: {e}"),
        })
    })
}

impl Dispatcher {
    /// Start claiming shared callbacks on this replica, until the dispatcher is gone or its
    /// drain begins.
    pub(crate) fn start_shared(self: &Arc<Self>) {
        if self.shared.is_none() {
            return;
        }
        let Some(runtime) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            tracing::error!(
                "no runtime to deliver shared callbacks on; this replica delivers none"
            );
            return;
        };
        runtime.spawn(claim_loop(Arc::downgrade(self)));
    }

    /// One claimed job: its attempt, then its end or its next due time, in Redis.
    async fn run_shared(self: Arc<Self>, id: u64, mut job: Job) {
        let delivery = Delivery {
            journey_id: job.journey_id.clone(),
            url: job.url.clone(),
            auth_key: job.auth_key.clone(),
            body: Bytes::from(job.body.clone()),
            delay: Duration::ZERO,
            webhook_id: job.webhook_id.clone(),
            wrong_auth: job.wrong_auth,
        };
        let attempt = job.attempt;
        let (mut logged, retry_after) = self
            .attempt(id, attempt, tokio::time::Instant::now(), &delivery)
            .await;
        logged.replica = self.shared.as_ref().map(|s| s.replica().to_string());
        let end = End::after(&logged);
        // The journey learns the outcome before the attempt is logged (as in memory).
        let observer = self.observer.clone();
        let journey_id = job.journey_id.clone();
        let _ = blocking(move || {
            match end {
                Some(End::Delivered) => {
                    observer.settled(&journey_id, Settled::Delivered { attempts: attempt })
                }
                Some(End::Failed) => {
                    observer.settled(&journey_id, Settled::Failed { attempts: attempt })
                }
                None => observer.attempted(&journey_id),
            }
            Ok(())
        })
        .await;
        let me = self.clone();
        let written = match end {
            Some(end) => {
                if end == End::Failed {
                    tracing::warn!(journey_id = %job.journey_id, delivery = id, attempts = attempt, "callback failed: no more attempts");
                }
                blocking(move || match &me.shared {
                    Some(s) => s.finish(id, end, &logged),
                    None => Ok(()),
                })
                .await
            }
            None => {
                let wait = match retry_after {
                    Some(asked) => asked.min(self.settings.backoff_max),
                    None => self.backoff(attempt),
                };
                job.attempt += 1;
                blocking(move || match &me.shared {
                    Some(s) => s.retry(id, &job, wait, &logged),
                    None => Ok(()),
                })
                .await
            }
        };
        if let Err(e) = written {
            // The lease runs out and another replica attempts again: at least once.
            tracing::warn!(delivery = id, error = %e, "a callback attempt's outcome did not reach the shared store; it will be attempted again");
        }
    }
}

/// Claim due jobs and deliver each in a task of its own; woken early when this replica
/// queues one.
async fn claim_loop(me: Weak<Dispatcher>) {
    loop {
        let Some(dispatcher) = me.upgrade() else {
            return;
        };
        if dispatcher.drain.borrow().is_some() {
            return;
        }
        let wake = dispatcher.wake.clone();
        let claimer = dispatcher.clone();
        let claimed = blocking(move || match &claimer.shared {
            Some(s) => s.claim(),
            None => Ok(Vec::new()),
        })
        .await;
        let full = match claimed {
            Ok(jobs) => {
                let full = jobs.len() >= BATCH;
                for (id, job) in jobs {
                    tokio::spawn(dispatcher.clone().run_shared(id, job));
                }
                full
            }
            Err(_) => false, // logged by the store; health says degraded
        };
        drop(dispatcher);
        if !full {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}
