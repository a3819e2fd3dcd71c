//! [`RedisStore`]: the journey store of replicas that share one Redis (`--store redis://…`).
//!
//! Each journey is a hash `otk:j:{id}` (its record as JSON, its revision, its creation number
//! and its weight); `otk:age`, `otk:run` and `otk:fin` order the ids by creation number, all
//! of them and the running and finished ones, as [`MemoryStore`](super::MemoryStore)'s
//! indexes do, so eviction is the same rule (the oldest finished first, the oldest running
//! only when none has finished) over the same bounds (`--max-journeys`, `--journey-bytes`).
//!
//! Every write is one Lua script, which Redis runs alone: an insert checks the id is free,
//! evicts, and takes the next revision from `otk:rev` (never reset, so no revision is ever
//! reused and a replica's body cache keyed by revision never serves a stale body). An update
//! is optimistic: read the record, apply the change here, and write it back only if its
//! revision is still the one read (compare-and-set in the script), else read again and
//! re-apply. Two replicas completing one journey at once: one write wins; the other re-reads
//! a finished journey and its change refuses, as it would have under the memory store's lock.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::{
    AutoComplete, BoundBy, CallbackState, CallbackStatus, Ending, JourneyRecord, State,
};
use super::store::{weigh, weigh_within, JourneyStore, StoreError, StorePage};
use crate::shared::{Redis, Unavailable};

/// Every key the store writes starts with this (`otk:*` is what a reset deletes).
pub const PREFIX: &str = "otk:";

/// Tries of one update against writes of other replicas before it gives up (each loss means
/// another write won, so the journey changed under us: rarely more than a few).
const CAS_TRIES: usize = 64;

/// Lua shared by the scripts: evict the oldest finished journey, else the oldest running one,
/// never `keep`.
const EVICT: &str = r#"
local function evict(keep)
  for _, set in ipairs({'otk:fin', 'otk:run'}) do
    for _, id in ipairs(redis.call('ZRANGE', set, 0, 1)) do
      if id ~= keep then
        local key = 'otk:j:' .. id
        local w = tonumber(redis.call('HGET', key, 'w') or '0')
        redis.call('DEL', key)
        redis.call('ZREM', 'otk:age', id)
        redis.call('ZREM', 'otk:fin', id)
        redis.call('ZREM', 'otk:run', id)
        redis.call('DECRBY', 'otk:bytes', w)
        return true
      end
    end
  end
  return false
end
local function bytes() return tonumber(redis.call('GET', 'otk:bytes') or '0') end
"#;

/// ARGV: id, doc, weight, terminal (0/1), capacity, budget. Returns {revision, seq}, or {-1}
/// when the id is taken.
const INSERT: &str = r#"
local key = 'otk:j:' .. ARGV[1]
if redis.call('EXISTS', key) == 1 then return {-1} end
local w = tonumber(ARGV[3])
while redis.call('ZCARD', 'otk:age') >= tonumber(ARGV[5]) or bytes() + w > tonumber(ARGV[6]) do
  if not evict('') then break end
end
local rev = redis.call('INCR', 'otk:rev')
local seq = redis.call('INCR', 'otk:seq')
redis.call('HSET', key, 'doc', ARGV[2], 'rev', rev, 'seq', seq, 'w', w)
redis.call('ZADD', 'otk:age', seq, ARGV[1])
if ARGV[4] == '1' then redis.call('ZADD', 'otk:fin', seq, ARGV[1]) else redis.call('ZADD', 'otk:run', seq, ARGV[1]) end
redis.call('INCRBY', 'otk:bytes', w)
return {rev, seq}
"#;

/// ARGV: id, expected revision, doc, weight, terminal (0/1), budget. Returns {revision}, {0}
/// when another write came first, {-1} when the journey is gone.
const UPDATE: &str = r#"
local key = 'otk:j:' .. ARGV[1]
local current = redis.call('HGET', key, 'rev')
if not current then return {-1} end
if current ~= ARGV[2] then return {0} end
local seq = redis.call('HGET', key, 'seq')
local old = tonumber(redis.call('HGET', key, 'w') or '0')
local rev = redis.call('INCR', 'otk:rev')
redis.call('HSET', key, 'doc', ARGV[3], 'rev', rev, 'w', ARGV[4])
redis.call('INCRBY', 'otk:bytes', tonumber(ARGV[4]) - old)
if ARGV[5] == '1' then
  redis.call('ZREM', 'otk:run', ARGV[1]); redis.call('ZADD', 'otk:fin', seq, ARGV[1])
else
  redis.call('ZREM', 'otk:fin', ARGV[1]); redis.call('ZADD', 'otk:run', seq, ARGV[1])
end
while bytes() > tonumber(ARGV[6]) do
  if not evict(ARGV[1]) then break end
end
return {rev}
"#;

/// Forget every journey (the revision counter stays).
const CLEAR: &str = r#"
for _, id in ipairs(redis.call('ZRANGE', 'otk:age', 0, -1)) do redis.call('DEL', 'otk:j:' .. id) end
redis.call('DEL', 'otk:age', 'otk:run', 'otk:fin', 'otk:bytes', 'otk:seq', 'otk:deadlines')
return 1
"#;

/// ARGV: now, most. Takes the journeys whose deadline has come (`otk:deadlines`, written by
/// `watch`), so that one replica applies each even when the one whose timer it was is gone.
const DUE: &str = r#"
local ids = redis.call('ZRANGEBYSCORE', 'otk:deadlines', '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do redis.call('ZREM', 'otk:deadlines', id) end
return ids
"#;

/// The journeys of every replica, in Redis.
pub struct RedisStore {
    redis: Arc<Redis>,
    capacity: usize,
    budget: usize,
    insert: redis::Script,
    update: redis::Script,
    clear: redis::Script,
    due: redis::Script,
}

impl RedisStore {
    /// A store of at most `capacity` journeys (at least one) and `bytes` bytes, on `redis`.
    pub fn new(redis: Arc<Redis>, capacity: usize, bytes: u64) -> RedisStore {
        RedisStore {
            redis,
            capacity: capacity.max(1),
            budget: usize::try_from(bytes).unwrap_or(usize::MAX),
            insert: redis::Script::new(&format!("{EVICT}{INSERT}")),
            update: redis::Script::new(&format!("{EVICT}{UPDATE}")),
            clear: redis::Script::new(CLEAR),
            due: redis::Script::new(DUE),
        }
    }

    fn read(&self, id: &str) -> Result<Option<JourneyRecord>, Unavailable> {
        let key = format!("{PREFIX}j:{id}");
        let (doc, rev): (Option<Vec<u8>>, Option<u64>) = self
            .redis
            .call(|c| redis::cmd("HMGET").arg(&key).arg("doc").arg("rev").query(c))?;
        match (doc, rev) {
            (Some(doc), Some(rev)) => Ok(decode(id, &doc, rev)),
            _ => Ok(None),
        }
    }

    fn write_back(&self, record: &JourneyRecord, expected: u64) -> Result<i64, Unavailable> {
        let doc = encode(record);
        let terminal = u8::from(record.state.is_terminal());
        let answer: Vec<i64> = self.redis.call(|c| {
            self.update
                .arg(&record.id)
                .arg(expected)
                .arg(doc.as_bytes())
                .arg(weigh(record))
                .arg(terminal)
                .arg(self.budget)
                .invoke(c)
        })?;
        Ok(answer.first().copied().unwrap_or(-1))
    }
}

impl JourneyStore for RedisStore {
    fn insert(&self, mut record: JourneyRecord) -> Result<JourneyRecord, StoreError> {
        let bytes = weigh_within(&record, self.budget)?;
        let doc = encode(&record);
        let terminal = u8::from(record.state.is_terminal());
        let answer: Vec<i64> = self
            .redis
            .call(|c| {
                self.insert
                    .arg(&record.id)
                    .arg(doc.as_bytes())
                    .arg(bytes)
                    .arg(terminal)
                    .arg(self.capacity)
                    .arg(self.budget)
                    .invoke(c)
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match answer.first().copied() {
            Some(rev) if rev > 0 => {
                record.revision = rev.unsigned_abs();
                Ok(record)
            }
            _ => Err(StoreError::Exists(record.id)),
        }
    }

    fn get(&self, id: &str) -> Option<JourneyRecord> {
        self.read(id).ok().flatten()
    }

    fn contains(&self, id: &str) -> bool {
        let key = format!("{PREFIX}j:{id}");
        // Unknown when Redis is away: say taken, so that a fresh id is drawn rather than a
        // used one reused; the insert then says the store is unavailable.
        self.redis
            .call(|c| redis::cmd("EXISTS").arg(&key).query::<bool>(c))
            .unwrap_or(true)
    }

    fn update(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut JourneyRecord) -> bool,
    ) -> Option<JourneyRecord> {
        for _ in 0..CAS_TRIES {
            let current = self.read(id).ok()??;
            let mut changed = current.clone();
            if !change(&mut changed) {
                return Some(current);
            }
            match self.write_back(&changed, current.revision).ok()? {
                -1 => return None,
                0 => continue, // another replica wrote first: read it again
                rev => {
                    changed.revision = rev.unsigned_abs();
                    return Some(changed);
                }
            }
        }
        tracing::error!(
            journey_id = id,
            "journey update lost {CAS_TRIES} races in a row; given up"
        );
        None
    }

    fn page(&self, after: u64, limit: usize, max_bytes: usize) -> StorePage {
        let limit = limit.max(1);
        let listed: Result<Vec<(String, u64)>, Unavailable> = self.redis.call(|c| {
            redis::cmd("ZRANGEBYSCORE")
                .arg(format!("{PREFIX}age"))
                .arg(format!("({after}"))
                .arg("+inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(limit + 1)
                .query(c)
        });
        let Ok(listed) = listed else {
            return StorePage::default();
        };
        let mut pipe = redis::pipe();
        for (id, _) in &listed {
            pipe.cmd("HMGET")
                .arg(format!("{PREFIX}j:{id}"))
                .arg("doc")
                .arg("rev")
                .arg("w");
        }
        type Fields = (Option<Vec<u8>>, Option<u64>, Option<usize>);
        let Ok(fields) = self.redis.call(|c| pipe.query::<Vec<Fields>>(c)) else {
            return StorePage::default();
        };
        let mut page = StorePage::default();
        let mut bytes = 0usize;
        let mut last = None;
        for ((id, seq), (doc, rev, w)) in listed.iter().zip(fields) {
            let (Some(doc), Some(rev)) = (doc, rev) else {
                continue; // evicted between the two reads
            };
            let w = w.unwrap_or(0);
            let full = page.records.len() >= limit
                || (!page.records.is_empty() && bytes.saturating_add(w) > max_bytes);
            if full {
                page.next = last;
                break;
            }
            if let Some(record) = decode(id, &doc, rev) {
                bytes = bytes.saturating_add(w);
                page.records.push(record);
                last = Some(*seq);
            }
        }
        page
    }

    fn len(&self) -> usize {
        self.redis
            .call(|c| redis::cmd("ZCARD").arg(format!("{PREFIX}age")).query(c))
            .unwrap_or(0)
    }

    fn bytes(&self) -> usize {
        self.redis
            .call(|c| {
                redis::cmd("GET")
                    .arg(format!("{PREFIX}bytes"))
                    .query::<Option<usize>>(c)
            })
            .ok()
            .flatten()
            .unwrap_or(0)
    }

    fn clear(&self) {
        if let Err(e) = self.redis.call(|c| self.clear.invoke::<i64>(c)) {
            tracing::error!(error = %e, "the shared journeys were not cleared");
        }
    }

    fn watch(&self, id: &str, at: i64) {
        let watched = self.redis.call(|c| {
            redis::cmd("ZADD")
                .arg(format!("{PREFIX}deadlines"))
                .arg(at)
                .arg(id)
                .query::<i64>(c)
        });
        if let Err(e) = watched {
            // Its own replica's timer, or the next read, still applies it.
            tracing::debug!(journey_id = id, error = %e, "deadline not shared");
        }
    }

    fn due(&self, now: i64, limit: usize) -> Vec<String> {
        self.redis
            .call(|c| self.due.arg(now).arg(limit.max(1)).invoke(c))
            .unwrap_or_default()
    }

    fn unavailable(&self) -> Option<String> {
        self.redis
            .is_degraded()
            .then(|| format!("the shared store {} is unavailable; try again when it is back (the mock recovers by itself)", self.redis.url()))
    }
}

/// A record as Redis keeps it (its revision beside it, in the hash).
#[derive(Serialize, Deserialize)]
struct Stored {
    flow_id: String,
    flow_version: u32,
    flow_test: bool,
    db_id: String,
    user_id: String,
    processing_config: Map<String, Value>,
    user_info: Map<String, Value>,
    scenario: String,
    scenario_terminal: bool,
    bound_by: BoundBy,
    state: State,
    outcome: Option<String>,
    ended_by: Option<Ending>,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    updated_at: i64,
    callback: StoredCallback,
    #[serde(default)]
    auto_complete: StoredAutoComplete,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    ip_check: Option<bool>,
}

/// [`AutoComplete`] as stored: the server's setting, never, or after this many milliseconds.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum StoredAutoComplete {
    #[default]
    Server,
    Off,
    AfterMs(u64),
}

#[derive(Serialize, Deserialize)]
struct StoredCallback {
    status: CallbackStatus,
    sent: bool,
    attempts: u32,
    delay_ms: Option<u64>,
    webhook_id: Option<String>,
    /// The fault as written (`drop`, `delay:2s;duplicate`...), parsed again when read.
    fault: Option<String>,
}

fn encode(r: &JourneyRecord) -> String {
    let stored = Stored {
        flow_id: r.flow_id.clone(),
        flow_version: r.flow_version,
        flow_test: r.flow_test,
        db_id: r.db_id.clone(),
        user_id: r.user_id.clone(),
        processing_config: r.processing_config.clone(),
        user_info: r.user_info.clone(),
        scenario: r.scenario.clone(),
        scenario_terminal: r.scenario_terminal,
        bound_by: r.bound_by,
        state: r.state,
        outcome: r.outcome.clone(),
        ended_by: r.ended_by,
        created_at: r.created_at,
        started_at: r.started_at,
        completed_at: r.completed_at,
        updated_at: r.updated_at,
        callback: StoredCallback {
            status: r.callback.status,
            sent: r.callback.sent,
            attempts: r.callback.attempts,
            delay_ms: r
                .callback
                .delay
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            webhook_id: r.callback.webhook_id.clone(),
            fault: r.callback.fault.as_ref().map(|f| f.text().to_string()),
        },
        auto_complete: match r.auto_complete {
            AutoComplete::Server => StoredAutoComplete::Server,
            AutoComplete::Off => StoredAutoComplete::Off,
            AutoComplete::After(d) => {
                StoredAutoComplete::AfterMs(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }
        },
        document: r.document.clone(),
        ip_check: r.ip_check,
    };
    // Plain data (strings, numbers, JSON maps): serializing it cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

fn decode(id: &str, doc: &[u8], revision: u64) -> Option<JourneyRecord> {
    let s: Stored = match serde_json::from_slice(doc) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(journey_id = id, error = %e, "a journey in the shared store does not read back (written by another version?); treated as absent");
            return None;
        }
    };
    Some(JourneyRecord {
        id: id.to_string(),
        flow_id: s.flow_id,
        flow_version: s.flow_version,
        flow_test: s.flow_test,
        db_id: s.db_id,
        user_id: s.user_id,
        processing_config: s.processing_config,
        user_info: s.user_info,
        scenario: s.scenario,
        scenario_terminal: s.scenario_terminal,
        bound_by: s.bound_by,
        state: s.state,
        outcome: s.outcome,
        ended_by: s.ended_by,
        created_at: s.created_at,
        started_at: s.started_at,
        completed_at: s.completed_at,
        updated_at: s.updated_at,
        callback: CallbackState {
            status: s.callback.status,
            sent: s.callback.sent,
            attempts: s.callback.attempts,
            delay: s.callback.delay_ms.map(Duration::from_millis),
            webhook_id: s.callback.webhook_id,
            fault: s.callback.fault.and_then(|f| f.parse().ok()),
        },
        auto_complete: match s.auto_complete {
            StoredAutoComplete::Server => AutoComplete::Server,
            StoredAutoComplete::Off => AutoComplete::Off,
            StoredAutoComplete::AfterMs(ms) => AutoComplete::After(Duration::from_millis(ms)),
        },
        document: s.document,
        ip_check: s.ip_check,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::store::tests::record;

    #[test]
    fn a_record_reads_back_as_written() {
        let mut r = record("A");
        r.state = State::Completed;
        r.outcome = Some("success".into());
        r.callback.fault = Some("delay:2s;duplicate".parse().unwrap());
        r.callback.delay = Some(Duration::from_millis(1500));
        r.user_info.insert("name".into(), "Asha".into());
        r.auto_complete = AutoComplete::After(Duration::from_millis(2500));
        r.document = Some("in_dl".into());
        r.ip_check = Some(false);
        let back = decode("A", encode(&r).as_bytes(), 7).unwrap();
        assert_eq!(back.revision, 7);
        assert_eq!(encode(&back), encode(&r));
        assert!(decode("A", b"{not json", 1).is_none());
    }
}
