//! The cache of rendered bodies: a repeated get-journey is a lookup, not a render.
//!
//! It is `quick_cache`'s S3-FIFO cache: a new body enters a small probationary queue and is
//! dropped first unless it is read again, so a burst of one-off journey ids (a test suite
//! inventing a new id per test) does not push out the bodies that are being polled. It is
//! bounded twice, by entry count and by bytes, so memory stays flat however many distinct
//! journey ids arrive and however large the templates are: an entry weighs its body and key,
//! and never less than the byte budget divided by the entry count, so that a total weight
//! within the budget also keeps the count within its bound. A large cache is split in shards
//! by key, each with its own lock and its share of both bounds, so that requests on different
//! journeys do not wait on one lock; a lock is held for one map operation and never across
//! rendering or I/O, and evicted bodies are freed after it is released.

use std::hash::Hash;

use bytes::Bytes;
use quick_cache::{sync::Cache, Equivalent, OptionsBuilder, Weighter};

/// The default of `--cache-bytes`: 16 MiB, the budget the default 1,024 entries had at
/// [`DEFAULT_BYTES_PER_ENTRY`] each before it was a flag of its own.
pub const DEFAULT_BYTES: u64 = 16 << 20;

/// The byte budget per entry of [`BodyCache::new`]: twice a bundled body (about 8 KB), so that
/// with bundled templates the entry count is the bound that binds.
pub const DEFAULT_BYTES_PER_ENTRY: u64 = 16 * 1024;

/// A cache of at least `MAX_SHARDS * MIN_PER_SHARD` entries has `MAX_SHARDS` shards, a smaller
/// one fewer (a power of two, as quick_cache wants), so that no shard is too small to keep a
/// fair share of its journeys.
const MAX_SHARDS: usize = 16;
const MIN_PER_SHARD: usize = 256;

/// Rendered bodies by (journey id, variant). The variant distinguishes the renders of one
/// journey (scenario, journey state) so that a new state is a miss, not a stale hit.
///
/// The key is the id and variant themselves, compared in full on every lookup, so two pairs
/// whose hashes collide are two entries, never a wrong body.
pub struct BodyCache {
    /// `None` when caching is off (0 entries or 0 bytes).
    inner: Option<Cache<Key, Bytes, Weigh, foldhash::fast::RandomState>>,
}

#[derive(PartialEq, Eq, Hash)]
struct Key {
    id: Box<str>,
    variant: u64,
}

/// A key borrowed from the request, so that a lookup allocates nothing. Its fields hash in the
/// same order and the same way as [`Key`]'s (`&str` and `Box<str>` both hash as `str`).
#[derive(Hash)]
struct Lookup<'a> {
    id: &'a str,
    variant: u64,
}

impl Equivalent<Key> for Lookup<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.variant == key.variant && self.id == &*key.id
    }
}

/// An entry's weight in bytes, raised to `floor` (a shard's byte budget over its entry
/// count) so that the byte bound also bounds the count.
#[derive(Clone)]
struct Weigh {
    floor: u64,
}

impl Weighter<Key, Bytes> for Weigh {
    fn weight(&self, key: &Key, body: &Bytes) -> u64 {
        let bytes = body.len() + key.id.len() + std::mem::size_of::<Key>();
        (bytes as u64).max(self.floor)
    }
}

impl BodyCache {
    /// A cache of at most `entries` bodies and `entries` × [`DEFAULT_BYTES_PER_ENTRY`] bytes;
    /// 0 entries caches nothing.
    pub fn new(entries: usize) -> Self {
        Self::with_budget(
            entries,
            (entries as u64).saturating_mul(DEFAULT_BYTES_PER_ENTRY),
        )
    }

    /// A cache of at most `entries` bodies and `bytes` bytes of bodies and keys; either at 0
    /// caches nothing. A body larger than about 97% of a shard's share of `bytes` is not kept.
    pub fn with_budget(entries: usize, bytes: u64) -> Self {
        if entries == 0 || bytes == 0 {
            return BodyCache { inner: None };
        }
        let shards = (entries / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        // Rounded down to a power of two: quick_cache would round up, and split the bounds
        // over more shards than they were divided by here.
        let shards = 1usize << shards.ilog2();
        let shard_entries = (entries / shards) as u64;
        let shard_bytes = bytes / shards as u64;
        let floor = (shard_bytes / shard_entries).max(1);
        // Within both bounds: `shard_entries` entries of at least `floor` each, or fewer when
        // the budget is under a byte per entry.
        let shard_weight = (shard_entries * floor).min(shard_bytes);
        let mut options = OptionsBuilder::new();
        options
            .shards(shards)
            .estimated_items_capacity(entries)
            .weight_capacity(shard_weight * shards as u64);
        if shard_entries == 1 {
            // quick_cache refuses an entry heavier than its hot queue's share (97% by
            // default); a one-entry shard needs all of it to hold its one body.
            options.hot_allocation(1.0);
        }
        // `build` fails only when a capacity is left unset; both are set above.
        let inner = options.build().ok().map(|options| {
            Cache::with_options(
                options,
                Weigh { floor },
                // Seeded per process, so ids cannot be chosen to collide.
                foldhash::fast::RandomState::default(),
                Default::default(),
            )
        });
        BodyCache { inner }
    }

    /// The body cached for (`id`, `variant`), if any; a lookup allocates nothing.
    pub fn get(&self, id: &str, variant: u64) -> Option<Bytes> {
        self.inner.as_ref()?.get(&Lookup { id, variant })
    }

    /// Caches `body` for (`id`, `variant`), in place of any body cached for that pair. Room is
    /// made before it goes in, so its own insert never evicts it; a body heavier than about
    /// 97% of its shard's byte budget is not kept.
    pub fn insert(&self, id: &str, variant: u64, body: Bytes) {
        if let Some(cache) = &self.inner {
            let key = Key {
                id: id.into(),
                variant,
            };
            cache.insert(key, body);
        }
    }

    pub fn len(&self) -> usize {
        self.inner.as_ref().map_or(0, |cache| cache.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes it holds, by its own weighing of each entry (never more than its budget).
    pub fn bytes(&self) -> u64 {
        self.inner.as_ref().map_or(0, |cache| cache.weight())
    }

    pub fn clear(&self) {
        if let Some(cache) = &self.inner {
            cache.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_found_under_its_id_and_variant_only() {
        let cache = BodyCache::with_budget(1024, 4 << 20);
        cache.insert("success-1", 7, Bytes::from_static(b"{}"));
        assert_eq!(cache.get("success-1", 7).as_deref(), Some(&b"{}"[..]));
        assert_eq!(cache.get("success-1", 8), None);
        assert_eq!(cache.get("success-2", 7), None);
    }

    fn put(cache: &BodyCache, id: &str, variant: u64, body: &'static [u8]) {
        cache.insert(id, variant, Bytes::from_static(body));
    }

    /// A body that names its key, so that a wrong hit shows which key it belonged to.
    fn body_of(id: &str, variant: u64) -> Bytes {
        Bytes::from(format!("{id}/{variant}"))
    }

    #[test]
    fn a_hit_returns_the_inserted_body_and_an_unknown_key_misses() {
        let cache = BodyCache::new(8);
        put(&cache, "a", 1, b"a1");
        assert_eq!(cache.get("a", 1).as_deref(), Some(&b"a1"[..]));
        assert_eq!(cache.get("a", 2), None);
        assert_eq!(cache.get("b", 1), None);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn distinct_keys_never_return_each_others_body() {
        let cache = BodyCache::new(1024);
        // Same id with other variants, same variant with other ids, ids that are prefixes of
        // each other or differ only at the end.
        let ids = [
            "a",
            "ab",
            "abc",
            "b",
            "success-1",
            "success-10",
            "success-1 ",
            "",
        ];
        let variants = [0, 1, 2, u64::MAX, 1 << 63];
        for id in ids {
            for variant in variants {
                cache.insert(id, variant, body_of(id, variant));
            }
        }
        assert_eq!(cache.len(), ids.len() * variants.len());
        for id in ids {
            for variant in variants {
                assert_eq!(cache.get(id, variant), Some(body_of(id, variant)));
            }
        }
        assert_eq!(cache.get("abcd", 1), None);
        assert_eq!(cache.get("a", 3), None);
    }

    #[test]
    fn a_repeated_insert_keeps_one_entry() {
        let cache = BodyCache::new(8);
        put(&cache, "a", 1, b"first");
        put(&cache, "a", 1, b"first");
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("a", 1).as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn never_holds_more_entries_than_its_capacity() {
        for capacity in [1, 2, 3, 64, 300, 5000] {
            let cache = BodyCache::new(capacity);
            for i in 0..capacity * 3 {
                let id = format!("id-{i}");
                cache.insert(&id, 1, body_of(&id, 1));
                assert!(cache.len() <= capacity, "{capacity}: {}", cache.len());
            }
            // The body just inserted is always kept: room is made before it goes in.
            let last = format!("id-{}", capacity * 3 - 1);
            assert_eq!(cache.get(&last, 1), Some(body_of(&last, 1)), "{capacity}");
        }
    }

    #[test]
    fn never_holds_more_bytes_than_its_budget() {
        // Room for 100 small bodies but only a few kilobyte-sized ones.
        let cache = BodyCache::with_budget(100, 10_000);
        let big = Bytes::from(vec![b'x'; 1000]);
        for i in 0..200 {
            cache.insert(&format!("id-{i}"), 1, big.clone());
            // Each entry weighs more than its 1,000-byte body.
            assert!(cache.len() <= 9, "{}", cache.len());
        }
        assert!(cache.get("id-199", 1).is_some());
    }

    #[test]
    fn hostile_ids_stay_within_the_byte_budget() {
        // 60,000-character journey ids, each with a body that repeats its id.
        let budget = 1 << 20;
        let cache = BodyCache::with_budget(1024, budget);
        let long = "x".repeat(60_000);
        for i in 0..500 {
            let id = format!("{long}{i}");
            cache.insert(&id, 1, Bytes::from(id.repeat(3)));
            assert!(cache.bytes() <= budget, "{}", cache.bytes());
        }
        assert!(cache.len() < 10, "{}", cache.len());
    }

    #[test]
    fn a_body_larger_than_the_budget_is_not_kept() {
        let cache = BodyCache::with_budget(4, 1000);
        cache.insert("big", 1, Bytes::from(vec![b'x'; 2000]));
        assert_eq!(cache.get("big", 1), None);
        assert!(cache.is_empty());
        put(&cache, "small", 1, b"s");
        assert_eq!(cache.get("small", 1).as_deref(), Some(&b"s"[..]));
    }

    #[test]
    fn a_large_cache_holds_most_of_its_capacity() {
        let capacity = MAX_SHARDS * MIN_PER_SHARD;
        let cache = BodyCache::new(capacity);
        for i in 0..capacity * 2 {
            put(&cache, &format!("id-{i}"), 1, b"x");
        }
        assert!(cache.len() <= capacity);
        // The keys spread over all shards, and every shard fills to its share.
        assert!(cache.len() > capacity * 9 / 10, "{}", cache.len());
    }

    #[test]
    fn a_body_read_again_outlives_a_burst_of_one_off_journeys() {
        let cache = BodyCache::new(100);
        put(&cache, "polled", 1, b"p");
        for i in 0..1000 {
            put(&cache, &format!("once-{i}"), 1, b"x");
            assert!(cache.get("polled", 1).is_some(), "evicted after {i}");
        }
    }

    #[test]
    fn zero_entries_or_bytes_caches_nothing() {
        for cache in [BodyCache::new(0), BodyCache::with_budget(10, 0)] {
            put(&cache, "a", 1, b"x");
            assert!(cache.is_empty());
            assert_eq!(cache.get("a", 1), None);
            cache.clear();
        }
    }

    #[test]
    fn clear_empties_the_cache() {
        let cache = BodyCache::new(MAX_SHARDS * MIN_PER_SHARD);
        for i in 0..100 {
            put(&cache, &format!("id-{i}"), 1, b"x");
        }
        assert_eq!(cache.len(), 100);
        cache.clear();
        assert!(cache.is_empty());
        assert_eq!(cache.get("id-1", 1), None);
    }
}
