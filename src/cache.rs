//! The cache of rendered bodies: a repeated get-journey is a lookup, not a render.
//!
//! Bounded by entry count, oldest-inserted dropped first, so memory stays flat however many
//! distinct journey ids a test suite invents. The lock is held for one map operation and
//! never across rendering or I/O.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};
use std::sync::Mutex;

use bytes::Bytes;

/// Rendered bodies by (journey id, variant). The variant distinguishes the renders of one
/// journey (scenario, journey state) so that a new state is a miss, not a stale hit.
///
/// Entries are keyed by a hash of (id, variant), computed before the lock is taken; the entry
/// keeps the id and variant, so two pairs that share a hash are a miss, never a wrong body.
/// A miss on a new id costs one allocation (the id, kept once) and the lock for two small
/// map operations.
pub struct BodyCache {
    capacity: usize,
    hasher: RandomState,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Entry, BuildHasherDefault<Prehashed>>,
    /// Keys in insertion order with the sequence number of that insertion, so that an entry
    /// replaced since (a hash collision) is not dropped by its predecessor's turn.
    order: VecDeque<(u64, u64)>,
    next: u64,
}

struct Entry {
    id: Box<str>,
    variant: u64,
    seq: u64,
    body: Bytes,
}

/// The map's keys are hashes already; hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this keeps any other use correct, if slower.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

impl BodyCache {
    pub fn new(capacity: usize) -> Self {
        BodyCache {
            capacity,
            hasher: RandomState::new(),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn key(&self, id: &str, variant: u64) -> u64 {
        self.hasher.hash_one((id, variant))
    }

    pub fn get(&self, id: &str, variant: u64) -> Option<Bytes> {
        let key = self.key(id, variant);
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .entries
            .get(&key)
            .filter(|e| e.variant == variant && &*e.id == id)
            .map(|e| e.body.clone())
    }

    pub fn insert(&self, id: &str, variant: u64, body: Bytes) {
        if self.capacity == 0 {
            return;
        }
        let key = self.key(id, variant);
        let entry_id: Box<str> = id.into();
        // Dropped after the lock is released: freeing a body is not the lock's business.
        let mut evicted = Vec::new();
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            if inner
                .entries
                .get(&key)
                .is_some_and(|e| e.variant == variant && *e.id == *id)
            {
                return;
            }
            let seq = inner.next;
            inner.next += 1;
            let entry = Entry {
                id: entry_id,
                variant,
                seq,
                body,
            };
            if let Some(old) = inner.entries.insert(key, entry) {
                evicted.push(old);
            }
            inner.order.push_back((key, seq));
            while inner.order.len() > self.capacity {
                let Some((old_key, old_seq)) = inner.order.pop_front() else {
                    break;
                };
                if inner
                    .entries
                    .get(&old_key)
                    .is_some_and(|e| e.seq == old_seq)
                {
                    evicted.extend(inner.entries.remove(&old_key));
                }
            }
        }
        drop(evicted);
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entries
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
    fn a_repeated_insert_keeps_the_first_body_and_one_entry() {
        let cache = BodyCache::new(2);
        cache.insert("a", 1, Bytes::from_static(b"first"));
        cache.insert("a", 1, Bytes::from_static(b"second"));
        cache.insert("b", 1, Bytes::from_static(b"b1"));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 1).as_deref(), Some(&b"first"[..]));
        assert_eq!(cache.get("a", 2), None);
        assert_eq!(cache.get("c", 1), None);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BodyCache::new(0);
        cache.insert("a", 1, Bytes::from_static(b"x"));
        assert!(cache.is_empty());
        assert_eq!(cache.get("a", 1), None);
    }
}
