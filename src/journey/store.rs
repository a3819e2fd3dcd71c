//! Where created journeys live: a small trait, so that a shared store can be added later, and
//! an in-memory implementation.
//!
//! [`MemoryStore`] is bounded by `--max-journeys` and by `--journey-bytes`: each journey is
//! weighed when it is stored and again whenever it changes (its strings, its
//! `processingConfig` and `userInfo` as JSON, and its share of the indexes), and the store
//! never holds more than either bound. When a new journey would pass a bound, the oldest
//! *finished* journey is evicted first; only when none has finished is the oldest running one
//! evicted (logged as a warning). A journey heavier than the whole byte budget is refused. An
//! evicted journey's id answers statelessly again, as an id that was never created does.
//!
//! Every operation is O(log n) or O(1) in the number of journeys: besides the map by id, the
//! store keeps its journeys by age (a creation number) in two ordered sets, running and
//! finished, so eviction takes the first of one of them instead of scanning, and a page of
//! the listing starts where the last one ended. Every write takes the lock for one map
//! operation and gives the record a new revision; nothing awaits while holding it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use super::record::JourneyRecord;

/// The default of `--journey-bytes`: 24 MiB, room for the default 10,000 journeys at about
/// 2.4 KB each, what a create call with a callback URL and a name weighs.
pub const DEFAULT_BYTES: u64 = 24 << 20;

/// Why a store refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("a journey with id {0} already exists")]
    Exists(String),
    #[error("the journey would take {bytes} bytes, more than the store's whole budget of {budget} bytes (--journey-bytes)")]
    TooLarge { bytes: usize, budget: usize },
    /// A shared store that cannot be reached (see `crate::shared`).
    #[error("{0}")]
    Unavailable(String),
}

/// One page of the journeys, oldest first, and where the next one starts.
#[derive(Debug, Clone, Default)]
pub struct StorePage {
    pub records: Vec<JourneyRecord>,
    /// The position to read the next page after; `None` on the last page.
    pub next: Option<u64>,
}

/// The journeys a mock instance knows.
pub trait JourneyStore: Send + Sync {
    /// Add a new journey; returns it as stored (with its revision).
    fn insert(&self, record: JourneyRecord) -> Result<JourneyRecord, StoreError>;
    /// A copy of the journey with this id.
    fn get(&self, id: &str) -> Option<JourneyRecord>;
    /// Whether a journey has this id (without copying it).
    fn contains(&self, id: &str) -> bool {
        self.get(id).is_some()
    }
    /// Change a journey in place. `change` returns whether it changed anything; if it did,
    /// the record gets a new revision. Returns the record as it is afterwards. `change` runs
    /// under the store's lock: it must be quick and must not block.
    fn update(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut JourneyRecord) -> bool,
    ) -> Option<JourneyRecord>;
    /// The oldest journeys created after position `after` (0: from the first), at most
    /// `limit` of them (at least one) and no more than `max_bytes` of them by the store's
    /// weighing (but always one, if there is one).
    fn page(&self, after: u64, limit: usize, max_bytes: usize) -> StorePage;
    /// Every journey, oldest first, read a page at a time so that no one read holds the
    /// store for long.
    fn list(&self) -> Vec<JourneyRecord> {
        let mut all = Vec::new();
        let mut after = 0;
        loop {
            let page = self.page(after, 256, usize::MAX);
            all.extend(page.records);
            match page.next {
                Some(next) => after = next,
                None => return all,
            }
        }
    }
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The bytes the journeys take, by the store's own weighing.
    fn bytes(&self) -> usize;
    /// Forget every journey.
    fn clear(&self);
    /// Why the store cannot answer now (a shared store out of reach), for a 503; `None`
    /// while it can. A read that found nothing means "not created" only when this is `None`.
    fn unavailable(&self) -> Option<String> {
        None
    }
    /// Note that journey `id` has a deadline at `at` (epoch ms), for [`JourneyStore::due`].
    /// A store that only this process uses needs none: its own timers see to deadlines.
    fn watch(&self, _id: &str, _at: i64) {}
    /// Take (at most `limit` of) the journeys whose watched deadline is at or before `now`,
    /// so that whoever takes them applies it, even when the process whose timer it was is
    /// gone. Empty for a store that only this process uses.
    fn due(&self, _now: i64, _limit: usize) -> Vec<String> {
        Vec::new()
    }
}

/// The in-memory store.
pub struct MemoryStore {
    capacity: usize,
    budget: usize,
    inner: Mutex<Inner>,
}

/// One journey as kept: the record, its age and its weight.
struct Stored {
    record: JourneyRecord,
    /// Its creation number: its position by age.
    seq: u64,
    /// What it weighs, as last counted.
    bytes: usize,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, Stored, foldhash::fast::RandomState>,
    /// Every journey's id by creation number: the listing's order.
    by_age: BTreeMap<u64, String>,
    /// Creation numbers of the journeys that have not ended, and of those that have: the
    /// oldest of each is the first in its set.
    running: BTreeSet<u64>,
    finished: BTreeSet<u64>,
    /// The sum of the journeys' weights.
    bytes: usize,
    next_seq: u64,
    /// Never reset, so that a revision is never reused, even across `clear`.
    next_revision: u64,
}

/// What a journey costs the store besides its record's heap: its slot in the map, its id
/// twice (the map's key and the age index's value), its entries in the ordered indexes, and a
/// share of their nodes.
pub(super) fn weigh(record: &JourneyRecord) -> usize {
    const FIXED: usize = std::mem::size_of::<(String, Stored)>()
        + std::mem::size_of::<(u64, String)>()
        + std::mem::size_of::<u64>()
        + 64;
    FIXED + record.heap_bytes() + 2 * record.id.len()
}

/// What `record` weighs, or why no store of `budget` bytes can hold it (a 413 to the app):
/// the one rule both stores apply before an insert.
pub(super) fn weigh_within(record: &JourneyRecord, budget: usize) -> Result<usize, StoreError> {
    let bytes = weigh(record);
    if bytes > budget {
        return Err(StoreError::TooLarge { bytes, budget });
    }
    Ok(bytes)
}

impl Inner {
    fn revise(&mut self, record: &mut JourneyRecord) {
        self.next_revision += 1;
        record.revision = self.next_revision;
    }

    fn states(&mut self, terminal: bool) -> &mut BTreeSet<u64> {
        if terminal {
            &mut self.finished
        } else {
            &mut self.running
        }
    }

    /// Evict the oldest finished journey, else the oldest running one, never `keep`;
    /// whether one was evicted.
    fn evict_one(&mut self, keep: Option<u64>) -> bool {
        let other = |set: &BTreeSet<u64>| set.iter().copied().find(|seq| Some(*seq) != keep);
        let (seq, finished) = match (other(&self.finished), other(&self.running)) {
            (Some(seq), _) => (seq, true),
            (None, Some(seq)) => (seq, false),
            (None, None) => return false,
        };
        self.states(finished).remove(&seq);
        let Some(id) = self.by_age.remove(&seq) else {
            return false;
        };
        if let Some(stored) = self.records.remove(&id) {
            self.bytes -= stored.bytes;
        }
        if finished {
            tracing::debug!(journey_id = %id, "journey store full: evicted the oldest finished journey");
        } else {
            tracing::warn!(journey_id = %id, "journey store full and no journey has finished: evicted the oldest running one (raise --max-journeys or --journey-bytes)");
        }
        true
    }
}

impl MemoryStore {
    /// A store of at most `capacity` journeys (at least one) and `bytes` bytes.
    pub fn new(capacity: usize, bytes: u64) -> Self {
        MemoryStore {
            capacity: capacity.max(1),
            budget: usize::try_from(bytes).unwrap_or(usize::MAX),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl JourneyStore for MemoryStore {
    fn insert(&self, mut record: JourneyRecord) -> Result<JourneyRecord, StoreError> {
        let bytes = weigh_within(&record, self.budget)?;
        let mut inner = self.lock();
        if inner.records.contains_key(&record.id) {
            return Err(StoreError::Exists(record.id));
        }
        while inner.records.len() >= self.capacity || inner.bytes + bytes > self.budget {
            if !inner.evict_one(None) {
                break;
            }
        }
        inner.revise(&mut record);
        inner.next_seq += 1;
        let seq = inner.next_seq;
        inner.by_age.insert(seq, record.id.clone());
        inner.states(record.state.is_terminal()).insert(seq);
        inner.bytes += bytes;
        let stored = Stored {
            record: record.clone(),
            seq,
            bytes,
        };
        inner.records.insert(record.id.clone(), stored);
        Ok(record)
    }

    fn get(&self, id: &str) -> Option<JourneyRecord> {
        self.lock().records.get(id).map(|s| s.record.clone())
    }

    fn contains(&self, id: &str) -> bool {
        self.lock().records.contains_key(id)
    }

    fn update(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut JourneyRecord) -> bool,
    ) -> Option<JourneyRecord> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let stored = inner.records.get_mut(id)?;
        let was_terminal = stored.record.state.is_terminal();
        if !change(&mut stored.record) {
            return Some(stored.record.clone());
        }
        inner.next_revision += 1;
        stored.record.revision = inner.next_revision;
        let bytes = weigh(&stored.record);
        inner.bytes = inner.bytes - stored.bytes + bytes;
        stored.bytes = bytes;
        let seq = stored.seq;
        let is_terminal = stored.record.state.is_terminal();
        let record = stored.record.clone();
        if was_terminal != is_terminal {
            inner.states(was_terminal).remove(&seq);
            inner.states(is_terminal).insert(seq);
        }
        // A journey that grew may push the store past its budget: others make room.
        while inner.bytes > self.budget {
            if !inner.evict_one(Some(seq)) {
                break;
            }
        }
        Some(record)
    }

    fn page(&self, after: u64, limit: usize, max_bytes: usize) -> StorePage {
        let inner = self.lock();
        let limit = limit.max(1);
        let mut page = StorePage::default();
        let mut bytes = 0usize;
        let mut last = None;
        for (seq, id) in inner.by_age.range(after.saturating_add(1)..) {
            let Some(stored) = inner.records.get(id) else {
                continue;
            };
            let full = page.records.len() >= limit
                || (!page.records.is_empty() && bytes.saturating_add(stored.bytes) > max_bytes);
            if full {
                page.next = last;
                break;
            }
            bytes = bytes.saturating_add(stored.bytes);
            page.records.push(stored.record.clone());
            last = Some(*seq);
        }
        page
    }

    fn len(&self) -> usize {
        self.lock().records.len()
    }

    fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.records.clear();
        inner.by_age.clear();
        inner.running.clear();
        inner.finished.clear();
        inner.bytes = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::journey::record::{BoundBy, CallbackState, State};
    use serde_json::Map;

    pub fn record(id: &str) -> JourneyRecord {
        JourneyRecord {
            id: id.into(),
            flow_id: "flow".into(),
            flow_version: 1,
            flow_test: false,
            db_id: "0".repeat(24),
            user_id: "user".into(),
            processing_config: crate::render::facts::default_processing_config(),
            user_info: Map::new(),
            scenario: "success".into(),
            scenario_terminal: true,
            bound_by: BoundBy::Default,
            state: State::Created,
            outcome: None,
            ended_by: None,
            created_at: 0,
            started_at: None,
            completed_at: None,
            updated_at: 0,
            callback: CallbackState::default(),
            auto_complete: Default::default(),
            document: None,
            ip_check: None,
            revision: 0,
        }
    }

    #[test]
    fn evicts_the_oldest_finished_journey_first() {
        let store = MemoryStore::new(2, DEFAULT_BYTES);
        store.insert(record("A")).unwrap();
        store.insert(record("B")).unwrap();
        store.update("B", &mut |r| {
            r.state = State::Completed;
            true
        });
        store.insert(record("C")).unwrap();
        let ids: Vec<String> = store.list().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["A", "C"]);
        // None finished: the oldest goes.
        store.insert(record("D")).unwrap();
        let ids: Vec<String> = store.list().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, ["C", "D"]);
    }

    #[test]
    fn eviction_follows_age_and_state_through_changes() {
        let store = MemoryStore::new(3, DEFAULT_BYTES);
        for id in ["A", "B", "C"] {
            store.insert(record(id)).unwrap();
        }
        let finish = |id: &str| {
            store.update(id, &mut |r| {
                r.state = State::Completed;
                true
            });
        };
        finish("C");
        finish("B");
        // B and C have ended; B is the older.
        store.insert(record("D")).unwrap();
        let ids = |s: &MemoryStore| s.list().into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(&store), ["A", "C", "D"]);
        store.insert(record("E")).unwrap();
        assert_eq!(ids(&store), ["A", "D", "E"]);
        // None finished: the oldest running one.
        store.insert(record("F")).unwrap();
        assert_eq!(ids(&store), ["D", "E", "F"]);
    }

    #[test]
    fn hostile_journeys_stay_within_the_byte_budget() {
        let budget = 1 << 20;
        let store = MemoryStore::new(10_000, budget);
        let big = "x".repeat(60_000);
        for i in 0..100 {
            let mut r = record(&format!("{big}{i}"));
            r.flow_id = big.clone();
            r.user_info.insert("name".into(), big.clone().into());
            store.insert(r).unwrap();
            assert!(store.bytes() <= budget as usize, "{}", store.bytes());
            // The store's count agrees with weighing what it holds.
            let held: usize = store.list().iter().map(weigh).sum();
            assert_eq!(held, store.bytes());
        }
        assert!(store.len() < 100);
        assert!(store.get(&format!("{big}0")).is_none());
        // A journey that grows past the budget pushes the others out, never itself.
        let last = format!("{big}99");
        store.update(&last, &mut |r| {
            r.user_info
                .insert("more".into(), "y".repeat(100_000).into());
            true
        });
        assert!(store.bytes() <= budget as usize);
        assert!(store.get(&last).is_some());
        // One heavier than the whole budget is refused.
        let mut huge = record("H");
        huge.flow_id = "z".repeat(budget as usize);
        assert!(matches!(
            store.insert(huge),
            Err(StoreError::TooLarge { .. })
        ));
        store.clear();
        assert_eq!(store.bytes(), 0);
    }

    #[test]
    fn pages_walk_every_journey_once_within_their_limits() {
        let store = MemoryStore::new(1000, DEFAULT_BYTES);
        for i in 0..250 {
            store.insert(record(&format!("J{i:03}"))).unwrap();
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = store.page(after, 100, usize::MAX);
            assert!(page.records.len() <= 100);
            seen.extend(page.records.into_iter().map(|r| r.id));
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let expected: Vec<String> = (0..250).map(|i| format!("J{i:03}")).collect();
        assert_eq!(seen, expected);
        // A byte limit shortens a page, but never below one journey.
        assert_eq!(store.page(0, 100, 1).records.len(), 1);
        assert_eq!(store.list().len(), 250);
    }

    #[test]
    fn revisions_change_on_every_write_and_survive_clear() {
        let store = MemoryStore::new(10, DEFAULT_BYTES);
        let a = store.insert(record("A")).unwrap();
        assert_eq!(
            store.insert(record("A")).unwrap_err(),
            StoreError::Exists("A".into())
        );
        let same = store.update("A", &mut |_| false).unwrap();
        assert_eq!(same.revision, a.revision);
        let changed = store.update("A", &mut |r| {
            r.updated_at = 5;
            true
        });
        assert!(changed.unwrap().revision > a.revision);
        store.clear();
        assert!(store.is_empty());
        assert!(store.insert(record("A")).unwrap().revision > a.revision + 1);
    }
}
