//! What replicas keep in step through the shared store besides journeys, callbacks and the
//! journal: the admin fault rules and resets; and the journeys' deadlines, which every
//! replica's sync task applies as they come (`Journeys::sweep`), so that a journey whose
//! replica died still auto-completes or expires, and its callback still goes out.
//!
//! A fault rule added, removed or cleared through any replica is written to Redis
//! (`otk:faults`, the rule's body by id, ids from `otk:faults:next`) and a version
//! (`otk:faults:ver`) is bumped; a reset bumps `otk:epoch`. Each replica's sync task reads
//! both every [`SYNC`] and, when one moved, applies it: the rules it lacks are added under
//! the shared id (their `times` and counters are each replica's own), the ones gone are
//! removed; after a reset elsewhere it forgets its own caches, journal and logs. The replica
//! that took the admin call applies it at once, so its own answer already shows it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::Value;

use super::App;
use crate::fault::rules::{parse_rule, RuleSpec};
use crate::shared::{Redis, Unavailable};

const RULES: &str = "otk:faults";
const NEXT: &str = "otk:faults:next";
const VERSION: &str = "otk:faults:ver";
const EPOCH: &str = "otk:epoch";

/// How often a replica looks for rules and resets made through the others.
pub const SYNC: Duration = Duration::from_millis(100);

impl App {
    /// Start keeping this replica in step with the others (with a shared store only).
    pub fn start_replica_sync(self: &Arc<Self>) {
        if self.redis.is_none() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!("no runtime to sync fault rules and resets on");
            return;
        };
        runtime.spawn(sync_loop(Arc::downgrade(self)));
    }

    /// `POST /__admin/faults`: the rule for every replica (with a shared store), and here.
    pub fn add_fault(&self, spec: RuleSpec, body: &[u8]) -> Result<Value, Unavailable> {
        let Some(redis) = &self.redis else {
            return Ok(self.faults.add(spec));
        };
        let id: u64 = redis.call(|c| redis::cmd("INCR").arg(NEXT).query(c))?;
        redis.call(|c| {
            redis::pipe()
                .atomic()
                .cmd("HSET")
                .arg(RULES)
                .arg(id)
                .arg(body)
                .ignore()
                .cmd("INCR")
                .arg(VERSION)
                .ignore()
                .query::<()>(c)
        })?;
        Ok(self.faults.add_with_id(id, spec))
    }

    /// `DELETE /__admin/faults/{id}`: the rule's last view here, if it was here.
    pub fn remove_fault(&self, id: u64) -> Result<Option<Value>, Unavailable> {
        if let Some(redis) = &self.redis {
            redis.call(|c| {
                redis::pipe()
                    .atomic()
                    .cmd("HDEL")
                    .arg(RULES)
                    .arg(id)
                    .ignore()
                    .cmd("INCR")
                    .arg(VERSION)
                    .ignore()
                    .query::<()>(c)
            })?;
        }
        Ok(self.faults.remove(id))
    }

    /// `DELETE /__admin/faults`: how many rules this replica held.
    pub fn clear_faults(&self) -> Result<usize, Unavailable> {
        if let Some(redis) = &self.redis {
            clear_shared_faults(redis)?;
        }
        Ok(self.faults.clear())
    }

    /// A reset through this replica: the others hear of it by the epoch.
    pub(super) fn reset_shared(&self) {
        let Some(redis) = &self.redis else {
            return;
        };
        let bumped = clear_shared_faults(redis)
            .and_then(|_| redis.call(|c| redis::cmd("INCR").arg(EPOCH).query::<u64>(c)));
        match bumped {
            Ok(epoch) => self
                .synced_epoch
                .store(epoch, std::sync::atomic::Ordering::Relaxed),
            Err(e) => tracing::error!(error = %e, "the other replicas did not hear of the reset"),
        }
    }

    /// Forget what this replica keeps of its own (after a reset through another): cached
    /// bodies, its journal, its callback logs, its fault rules.
    fn forget_local(&self) {
        self.cache.clear();
        self.journal.clear();
        self.faults.clear();
        self.callbacks().forget_local();
    }
}

fn clear_shared_faults(redis: &Redis) -> Result<(), Unavailable> {
    redis.call(|c| {
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(RULES)
            .ignore()
            .cmd("INCR")
            .arg(VERSION)
            .ignore()
            .query::<()>(c)
    })
}

/// What the sync task read: the reset epoch, the rules' version, and the rules if it moved.
struct Seen {
    epoch: u64,
    version: u64,
    rules: Option<Vec<(u64, Vec<u8>)>>,
}

fn read(redis: &Redis, known_version: u64) -> Result<Seen, Unavailable> {
    let (epoch, version): (Option<u64>, Option<u64>) = redis.call(|c| {
        redis::pipe()
            .cmd("GET")
            .arg(EPOCH)
            .cmd("GET")
            .arg(VERSION)
            .query(c)
    })?;
    let version = version.unwrap_or(0);
    let rules = if version != known_version {
        let all: Vec<(u64, Vec<u8>)> = redis.call(|c| redis::cmd("HGETALL").arg(RULES).query(c))?;
        Some(all)
    } else {
        None
    };
    Ok(Seen {
        epoch: epoch.unwrap_or(0),
        version,
        rules,
    })
}

async fn sync_loop(me: Weak<App>) {
    let mut version = 0u64;
    let mut first = true;
    loop {
        let Some(app) = me.upgrade() else {
            return;
        };
        let Some(redis) = app.redis.clone() else {
            return;
        };
        let known = version;
        let seen = tokio::task::spawn_blocking(move || read(&redis, known)).await;
        if let Ok(Ok(seen)) = seen {
            let ours = app
                .synced_epoch
                .swap(seen.epoch, std::sync::atomic::Ordering::Relaxed);
            if ours != seen.epoch && !first {
                tracing::info!(
                    "reset through another replica: this one's caches, journal and logs forgotten"
                );
                app.forget_local();
            }
            if let Some(rules) = seen.rules {
                apply_rules(&app, rules);
            }
            version = seen.version;
            first = false;
        }
        let sweeper = app.journeys().clone();
        let _ = tokio::task::spawn_blocking(move || sweeper.sweep()).await;
        drop(app);
        tokio::time::sleep(SYNC).await;
    }
}

/// Make this replica's rules the shared ones: add the missing, remove the gone.
fn apply_rules(app: &App, rules: Vec<(u64, Vec<u8>)>) {
    let shared: Vec<u64> = rules.iter().map(|(id, _)| *id).collect();
    for id in app.faults.ids() {
        if !shared.contains(&id) {
            app.faults.remove(id);
        }
    }
    let mut rules = rules;
    rules.sort_by_key(|(id, _)| *id);
    for (id, body) in rules {
        match parse_rule(&body) {
            Ok(spec) => {
                app.faults.add_with_id(id, spec);
            }
            Err(e) => {
                tracing::error!(rule = id, error = %e, "a shared fault rule does not read back; skipped")
            }
        }
    }
}
