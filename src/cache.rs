//! The cache of rendered bodies: a repeated get-journey is a lookup, not a render.
//!
//! Bounded by entry count, oldest-inserted dropped first, so memory stays flat however many
//! distinct journey ids a test suite invents. A large cache is split in shards by key, each
//! with its own lock and its share of the capacity, so that requests on different journeys
//! do not wait on one lock; a lock is held for one map operation and never across rendering
//! or I/O.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::Mutex;

use bytes::Bytes;

/// Rendered bodies by (journey id, variant). The variant distinguishes the renders of one
/// journey (scenario, journey state) so that a new state is a miss, not a stale hit.
///
/// Entries are keyed by a hash of (id, variant), computed before the lock is taken; the entry
/// keeps the id and variant, so two pairs that share a hash are a miss, never a wrong body.
pub struct BodyCache {
    /// Entries per shard.
    capacity: usize,
    /// Seeded per process, so ids cannot be chosen to collide.
    hasher: foldhash::fast::RandomState,
    shards: Box<[Mutex<Inner>]>,
}

/// Shards of a cache of at least `SHARDS * MIN_PER_SHARD` entries (a smaller one has one).
const SHARDS: usize = 16;
const MIN_PER_SHARD: usize = 256;

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

fn lock(shard: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

impl BodyCache {
    pub fn new(capacity: usize) -> Self {
        let shards = if capacity >= SHARDS * MIN_PER_SHARD {
            SHARDS
        } else {
            1
        };
        BodyCache {
            capacity: capacity / shards,
            hasher: foldhash::fast::RandomState::default(),
            shards: (0..shards).map(|_| Mutex::new(Inner::default())).collect(),
        }
    }

    /// The shard of a key, locked. The top bits choose it: the map inside uses the low ones.
    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, Inner> {
        let index = ((key >> 58) as usize) % self.shards.len();
        lock(&self.shards[index])
    }

    fn key(&self, id: &str, variant: u64) -> u64 {
        self.hasher.hash_one((id, variant))
    }

    pub fn get(&self, id: &str, variant: u64) -> Option<Bytes> {
        let key = self.key(id, variant);
        let inner = self.shard(key);
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
            let mut inner = self.shard(key);
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
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        for shard in self.shards.iter() {
            let mut inner = lock(shard);
            inner.entries.clear();
            inner.order.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(cache: &BodyCache, id: &str, variant: u64, body: &'static [u8]) {
        cache.insert(id, variant, Bytes::from_static(body));
    }

    #[test]
    fn keeps_at_most_capacity_and_drops_the_oldest() {
        let cache = BodyCache::new(2);
        put(&cache, "a", 1, b"a1");
        put(&cache, "a", 2, b"a2");
        put(&cache, "b", 1, b"b1");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 1), None);
        assert_eq!(cache.get("a", 2).as_deref(), Some(&b"a2"[..]));
        assert_eq!(cache.get("b", 1).as_deref(), Some(&b"b1"[..]));
    }

    #[test]
    fn a_repeated_insert_keeps_the_first_body_and_one_entry() {
        let cache = BodyCache::new(2);
        put(&cache, "a", 1, b"kept");
        cache.insert("a", 1, Bytes::from_static(b"later"));
        put(&cache, "b", 1, b"b1");
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("a", 1).as_deref(), Some(&b"kept"[..]));
        assert_eq!(cache.get("a", 2), None);
        assert_eq!(cache.get("c", 1), None);
    }

    #[test]
    fn a_large_cache_is_sharded_and_still_bounded() {
        let capacity = SHARDS * MIN_PER_SHARD;
        let cache = BodyCache::new(capacity);
        assert_eq!(cache.shards.len(), SHARDS);
        for i in 0..capacity * 2 {
            put(&cache, &format!("id-{i}"), 1, b"x");
        }
        assert!(cache.len() <= capacity);
        // Every shard is full: the keys spread over all of them.
        assert!(cache.len() > capacity * 9 / 10, "{}", cache.len());
        let last = format!("id-{}", capacity * 2 - 1);
        assert_eq!(cache.get(&last, 1).as_deref(), Some(&b"x"[..]));
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = BodyCache::new(0);
        put(&cache, "a", 1, b"x");
        assert!(cache.is_empty());
        assert_eq!(cache.get("a", 1), None);
    }
}
