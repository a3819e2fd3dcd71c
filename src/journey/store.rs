//! Where created journeys live: a small trait, so that a shared store can be added later, and
//! an in-memory implementation.
//!
//! [`MemoryStore`] is bounded by `--max-journeys`. When a new journey would pass the bound,
//! the oldest *finished* journey is evicted first; only when none has finished is the oldest
//! running one evicted (logged as a warning). An evicted journey's id answers statelessly
//! again, as an id that was never created does. Every write takes the lock for one map
//! operation and gives the record a new revision; nothing awaits while holding it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::record::JourneyRecord;

/// Why a store refused a write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("a journey with id {0} already exists")]
    Exists(String),
}

/// The journeys a mock instance knows.
pub trait JourneyStore: Send + Sync {
    /// Add a new journey; returns it as stored (with its revision).
    fn insert(&self, record: JourneyRecord) -> Result<JourneyRecord, StoreError>;
    /// A copy of the journey with this id.
    fn get(&self, id: &str) -> Option<JourneyRecord>;
    /// Change a journey in place. `change` returns whether it changed anything; if it did,
    /// the record gets a new revision. Returns the record as it is afterwards. `change` runs
    /// under the store's lock: it must be quick and must not block.
    fn update(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut JourneyRecord) -> bool,
    ) -> Option<JourneyRecord>;
    /// Every journey, oldest first.
    fn list(&self) -> Vec<JourneyRecord>;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Forget every journey.
    fn clear(&self);
}

/// The in-memory store.
pub struct MemoryStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    records: HashMap<String, JourneyRecord, foldhash::fast::RandomState>,
    /// Ids in creation order.
    order: VecDeque<String>,
    /// Never reset, so that a revision is never reused, even across `clear`.
    next_revision: u64,
}

impl Inner {
    fn revise(&mut self, record: &mut JourneyRecord) {
        self.next_revision += 1;
        record.revision = self.next_revision;
    }

    fn evict_one(&mut self) {
        let position = self
            .order
            .iter()
            .position(|id| self.records.get(id).is_some_and(|r| r.state.is_terminal()));
        let finished = position.is_some();
        let Some(id) = position
            .and_then(|i| self.order.remove(i))
            .or_else(|| self.order.pop_front())
        else {
            return;
        };
        self.records.remove(&id);
        if finished {
            tracing::debug!(journey_id = %id, "journey store full: evicted the oldest finished journey");
        } else {
            tracing::warn!(journey_id = %id, "journey store full and no journey has finished: evicted the oldest running one (raise --max-journeys)");
        }
    }
}

impl MemoryStore {
    /// A store of at most `capacity` journeys (at least one).
    pub fn new(capacity: usize) -> Self {
        MemoryStore {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl JourneyStore for MemoryStore {
    fn insert(&self, mut record: JourneyRecord) -> Result<JourneyRecord, StoreError> {
        let mut inner = self.lock();
        if inner.records.contains_key(&record.id) {
            return Err(StoreError::Exists(record.id));
        }
        while inner.records.len() >= self.capacity {
            inner.evict_one();
        }
        inner.revise(&mut record);
        inner.order.push_back(record.id.clone());
        inner.records.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    fn get(&self, id: &str) -> Option<JourneyRecord> {
        self.lock().records.get(id).cloned()
    }

    fn update(
        &self,
        id: &str,
        change: &mut dyn FnMut(&mut JourneyRecord) -> bool,
    ) -> Option<JourneyRecord> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let record = inner.records.get_mut(id)?;
        if change(record) {
            inner.next_revision += 1;
            record.revision = inner.next_revision;
        }
        Some(record.clone())
    }

    fn list(&self) -> Vec<JourneyRecord> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .filter_map(|id| inner.records.get(id).cloned())
            .collect()
    }

    fn len(&self) -> usize {
        self.lock().records.len()
    }

    fn clear(&self) {
        let mut inner = self.lock();
        inner.records.clear();
        inner.order.clear();
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
            revision: 0,
        }
    }

    #[test]
    fn evicts_the_oldest_finished_journey_first() {
        let store = MemoryStore::new(2);
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
    fn revisions_change_on_every_write_and_survive_clear() {
        let store = MemoryStore::new(10);
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
