//! The cache of rendered bodies: a repeated get-journey is a lookup, not a render.
//!
//! Bounded by entry count, oldest-inserted dropped first, so memory stays flat however many
//! distinct journey ids a test suite invents. The lock is held for one map operation and
//! never across rendering or I/O.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// Rendered bodies by (journey id, variant). The variant distinguishes the renders of one
/// journey (scenario, journey state) so that a new state is a miss, not a stale hit.
pub struct BodyCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Box<str>, Vec<(u64, Bytes)>>,
    order: VecDeque<(Box<str>, u64)>,
}

impl BodyCache {
    pub fn new(capacity: usize) -> Self {
        BodyCache {
            capacity,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn get(&self, id: &str, variant: u64) -> Option<Bytes> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(id)?
            .iter()
            .find(|(v, _)| *v == variant)
            .map(|(_, b)| b.clone())
    }

    pub fn insert(&self, id: &str, variant: u64, body: Bytes) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let slot = inner.entries.entry(id.into()).or_default();
        if slot.iter().any(|(v, _)| *v == variant) {
            return;
        }
        slot.push((variant, body));
        inner.order.push_back((id.into(), variant));
        while inner.order.len() > self.capacity {
            let Some((old_id, old_variant)) = inner.order.pop_front() else {
                break;
            };
            if let Some(slot) = inner.entries.get_mut(&old_id) {
                slot.retain(|(v, _)| *v != old_variant);
                if slot.is_empty() {
                    inner.entries.remove(&old_id);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .order
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.entries.clear();
        inner.order.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_and_drops_the_oldest() {
        let cache = BodyCache::new(2);
        cache.insert("a", 1, Bytes::from_static(b"a1"));
        cache.insert("a", 2, Bytes::from_static(b"a2"));
        cache.insert("b", 1, Bytes::from_static(b"b1"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 1), None);
        assert_eq!(cache.get("a", 2).as_deref(), Some(&b"a2"[..]));
        assert_eq!(cache.get("b", 1).as_deref(), Some(&b"b1"[..]));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BodyCache::new(0);
        cache.insert("a", 1, Bytes::from_static(b"x"));
        assert!(cache.is_empty());
        assert_eq!(cache.get("a", 1), None);
    }
}
