//! A bounded ring of the newest entries, for logs written on the request path (the request
//! journal, the callback log) and read by the admin API.
//!
//! A push must not wait for another push: each slot has its own lock, and one atomic counter
//! hands every push its sequence number and, through it, its slot (`seq % capacity`). Two
//! pushes contend only when they land on the same slot, `capacity` pushes apart. Slots are
//! allocated a chunk at a time as the ring fills, so a large ring that is never used costs
//! next to nothing. Readers copy what they want slot by slot and order it by sequence number;
//! they never hold more than one slot's lock.
//!
//! A ring is bounded in bytes as well as entries without giving up any of that: its slots are
//! fixed, so what can grow is only what an entry holds on the heap. [`Budget`] turns a byte
//! budget into a capacity and a heap share per entry; the owner cuts each entry to its share
//! before the push (a few comparisons when it fits, as nearly every entry does), and the ring
//! then holds at most `capacity` slots and `capacity` shares, within the budget. Evicting by
//! bytes instead would need one count shared by every push, which is the contention the ring
//! exists to avoid.

use std::cmp::Ordering as Order;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Slots are allocated this many at a time, as the ring fills.
pub(crate) const CHUNK: usize = 1024;

/// One slot: the entry kept there and its sequence number, which orders the copies a reader
/// makes and lets a late push see that its slot already holds something newer.
type Slot<T> = Mutex<Option<(u64, T)>>;

/// Up to [`CHUNK`] slots, allocated by the first push that needs one of them.
type Chunk<T> = OnceLock<Box<[Slot<T>]>>;

/// A bounded ring that keeps the newest `capacity` entries, each with the sequence number its
/// push was given.
///
/// What it promises:
///
/// - Sequence numbers start at 1, are unique and increase in the order pushes take them;
///   [`clear`](Ring::clear) does not reset them.
/// - When no push or clear is in flight, the ring holds exactly the entries with the
///   `capacity` highest numbers among those pushed since the last clear (all of them, if
///   fewer). A push that took its number first but reaches its slot last never replaces the
///   newer entry there.
/// - An entry whose push returned before a read began is in that read, unless a newer entry
///   has taken its slot (it is then no longer among the newest) or a clear has removed it. So
///   what is recorded before a response goes out is seen by anyone who asks after it.
/// - A read is oldest first, with no entry twice. It is not one instant: slots are read one
///   at a time, so while pushes are in flight it can miss an entry whose push has its number
///   but has not written yet, and can show an entry that is about to be replaced.
pub struct Ring<T> {
    capacity: usize,
    chunks: Box<[Chunk<T>]>,
    /// The number the next push takes.
    next: AtomicU64,
}

/// How a byte budget is spent on a ring of entries of type `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// How many entries the ring keeps.
    pub capacity: usize,
    /// What one entry may hold on the heap, in bytes.
    pub heap_per_entry: usize,
}

impl Budget {
    /// `entries` entries of `T` within `bytes`, each entry given at least `min_heap` bytes of
    /// heap: fewer entries when the budget cannot give each its minimum, and each entry an
    /// equal share of what the slots leave.
    pub fn new<T>(entries: usize, bytes: u64, min_heap: usize) -> Budget {
        let slot = Ring::<T>::slot_bytes();
        let bytes = usize::try_from(bytes).unwrap_or(usize::MAX);
        let capacity = entries.min(bytes / (slot + min_heap));
        let heap_per_entry = match capacity {
            0 => 0,
            n => bytes / n - slot,
        };
        Budget {
            capacity,
            heap_per_entry,
        }
    }
}

/// A copy of one entry with its sequence number, ordered by the number alone (for the heap
/// that keeps the oldest entries of a page).
struct Numbered<T>(u64, T);

impl<T> PartialEq for Numbered<T> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl<T> Eq for Numbered<T> {}

impl<T> PartialOrd for Numbered<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Order> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Numbered<T> {
    fn cmp(&self, other: &Self) -> Order {
        self.0.cmp(&other.0)
    }
}

fn lock<T>(slot: &Slot<T>) -> MutexGuard<'_, Option<(u64, T)>> {
    // A panic elsewhere while a slot was locked leaves a whole entry or none: still readable.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T> Ring<T> {
    /// A ring keeping the newest `capacity` entries; 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        Ring {
            capacity,
            chunks: (0..capacity.div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
            next: AtomicU64::new(1),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// What one slot costs, whether it holds an entry or not.
    pub fn slot_bytes() -> usize {
        std::mem::size_of::<Slot<T>>()
    }

    /// The bytes the ring holds: its allocated slots, and `heap` of every entry in them.
    pub fn bytes(&self, heap: impl Fn(&T) -> usize) -> usize {
        self.slots()
            .map(|slot| Self::slot_bytes() + lock(slot).as_ref().map_or(0, |(_, e)| heap(e)))
            .sum()
    }

    /// Keep `entry`, dropping the oldest when full; the sequence number it was given, or 0
    /// when the capacity is 0 (nothing is kept, and no number is taken).
    pub fn push(&self, entry: T) -> u64 {
        if self.capacity == 0 {
            return 0;
        }
        // Relaxed: the number only has to be unique; the slot's lock orders the entry itself.
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        self.put(seq, entry);
        seq
    }

    /// Write entry `seq` to its slot unless the slot already holds a newer one.
    fn put(&self, seq: u64, entry: T) {
        let index = (seq % self.capacity as u64) as usize;
        let Some(chunk) = self.chunks.get(index / CHUNK) else {
            return;
        };
        let slots = chunk.get_or_init(|| {
            let len = CHUNK.min(self.capacity - index / CHUNK * CHUNK);
            (0..len).map(|_| Mutex::new(None)).collect()
        });
        let Some(slot) = slots.get(index % CHUNK) else {
            return;
        };
        let mut guard = lock(slot);
        let stale = guard.as_ref().is_some_and(|(resident, _)| *resident > seq);
        // Whichever entry loses is dropped after the lock is released, not under it.
        let loser = if stale {
            Some((seq, entry))
        } else {
            guard.replace((seq, entry))
        };
        drop(guard);
        drop(loser);
    }

    /// Every slot allocated so far.
    fn slots(&self) -> impl Iterator<Item = &Slot<T>> {
        self.chunks
            .iter()
            .filter_map(OnceLock::get)
            .flat_map(|chunk| chunk.iter())
    }

    /// A copy of the entries `keep` accepts, oldest first, each with its sequence number.
    pub fn snapshot_with_seq(&self, keep: impl Fn(&T) -> bool) -> Vec<(u64, T)>
    where
        T: Clone,
    {
        let mut kept: Vec<(u64, T)> = self
            .slots()
            .filter_map(|slot| lock(slot).as_ref().filter(|(_, e)| keep(e)).cloned())
            .collect();
        kept.sort_unstable_by_key(|(seq, _)| *seq);
        kept
    }

    /// A copy of the entries `keep` accepts, oldest first.
    pub fn snapshot(&self, keep: impl Fn(&T) -> bool) -> Vec<T>
    where
        T: Clone,
    {
        self.snapshot_with_seq(keep)
            .into_iter()
            .map(|(_, e)| e)
            .collect()
    }

    /// One page of a read: the oldest `limit` entries `keep` accepts whose sequence numbers
    /// are above `after`, oldest first with their numbers, and whether more such entries
    /// follow them. Paging with the last number of each page as the next `after` walks every
    /// entry kept, once; entries dropped from the ring between two pages are not seen (they
    /// are no longer among the newest), entries pushed meanwhile are. Copies at most
    /// `limit + 1` entries, whatever the ring holds.
    pub fn page(&self, after: u64, limit: usize, keep: impl Fn(&T) -> bool) -> (Vec<(u64, T)>, bool)
    where
        T: Clone,
    {
        let want = limit.saturating_add(1);
        // The oldest `want` so far; its top is the newest of them, the first to give way.
        let mut oldest: BinaryHeap<Numbered<T>> = BinaryHeap::new();
        for slot in self.slots() {
            let guard = lock(slot);
            let Some((seq, entry)) = guard.as_ref() else {
                continue;
            };
            let newer_than_all =
                oldest.len() == want && oldest.peek().is_some_and(|top| top.0 < *seq);
            if *seq <= after || newer_than_all || !keep(entry) {
                continue;
            }
            let copy = Numbered(*seq, entry.clone());
            drop(guard);
            oldest.push(copy);
            if oldest.len() > want {
                oldest.pop();
            }
        }
        let mut page: Vec<(u64, T)> = oldest
            .into_sorted_vec()
            .into_iter()
            .map(|Numbered(seq, e)| (seq, e))
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }

    /// How many entries `keep` accepts.
    pub fn count(&self, keep: impl Fn(&T) -> bool) -> usize {
        self.slots()
            .filter(|slot| lock(slot).as_ref().is_some_and(|(_, e)| keep(e)))
            .count()
    }

    pub fn len(&self) -> usize {
        self.count(|_| true)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forget every entry; how many there were.
    pub fn clear(&self) -> usize {
        self.slots()
            .filter(|slot| {
                // Taken under the lock, dropped after it.
                let taken = lock(slot).take();
                taken.is_some()
            })
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_in_order_with_their_numbers() {
        let ring = Ring::new(2);
        assert_eq!(ring.push("a"), 1);
        ring.push("b");
        ring.push("c");
        assert_eq!(ring.snapshot(|_| true), ["b", "c"]);
        assert_eq!(ring.snapshot_with_seq(|e| *e == "c"), [(3, "c")]);
        assert_eq!(ring.clear(), 2);
    }

    #[test]
    fn keeps_the_newest_entries_oldest_first() {
        let ring = Ring::new(3);
        let seqs: Vec<u64> = (0..5).map(|i| ring.push(i)).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.snapshot(|_| true), [2, 3, 4]);
        assert_eq!(ring.snapshot_with_seq(|_| true), [(3, 2), (4, 3), (5, 4)]);
        assert_eq!(ring.snapshot(|e| e % 2 == 0), [2, 4]);
        assert_eq!(ring.count(|e| *e > 2), 2);
    }

    #[test]
    fn a_ring_not_yet_full_keeps_everything() {
        let ring = Ring::new(10);
        assert!(ring.is_empty());
        ring.push("a");
        ring.push("b");
        assert_eq!(ring.len(), 2);
        assert_eq!(ring.snapshot(|_| true), ["a", "b"]);
    }

    #[test]
    fn capacity_zero_keeps_nothing() {
        let ring = Ring::new(0);
        assert_eq!(ring.push(1), 0);
        assert!(ring.is_empty());
        assert!(ring.snapshot(|_| true).is_empty());
        assert_eq!(ring.clear(), 0);
    }

    #[test]
    fn clear_forgets_entries_but_not_the_numbering() {
        let ring = Ring::new(4);
        for i in 0..6 {
            ring.push(i);
        }
        assert_eq!(ring.clear(), 4);
        assert!(ring.is_empty());
        assert_eq!(ring.push(10), 7);
        assert_eq!(ring.snapshot_with_seq(|_| true), [(7, 10)]);
    }

    #[test]
    fn a_large_ring_wraps_across_chunks() {
        let ring = Ring::new(CHUNK + 10);
        for i in 0..3 * CHUNK {
            ring.push(i);
        }
        let all = ring.snapshot(|_| true);
        assert_eq!(all.len(), CHUNK + 10);
        let newest: Vec<usize> = (2 * CHUNK - 10..3 * CHUNK).collect();
        assert_eq!(all, newest);
    }

    #[test]
    fn pages_walk_every_entry_once_in_order() {
        let ring = Ring::new(CHUNK + 7);
        for i in 0..2 * CHUNK as u64 {
            ring.push(i);
        }
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let (page, more) = ring.page(after, 100, |e| e % 3 != 0);
            assert!(page.len() <= 100);
            seen.extend(page.iter().map(|(_, e)| *e));
            match page.last() {
                Some((seq, _)) if more => after = *seq,
                _ => break,
            }
        }
        let expected: Vec<u64> = ring.snapshot(|e| e % 3 != 0).into_iter().collect();
        assert_eq!(seen, expected);
        assert_eq!(ring.page(0, 0, |_| true), (vec![], true));
        assert_eq!(ring.page(u64::MAX, 10, |_| true), (vec![], false));
    }

    #[test]
    fn a_budget_gives_each_entry_a_share_and_counts_the_slots() {
        let slot = Ring::<String>::slot_bytes();
        let budget = Budget::new::<String>(100, (100 * (slot + 50)) as u64, 10);
        assert_eq!(
            budget,
            Budget {
                capacity: 100,
                heap_per_entry: 50
            }
        );
        // Too small for 100 entries of their minimum: fewer entries.
        let small = Budget::new::<String>(100, (10 * (slot + 10)) as u64, 10);
        assert_eq!(small.capacity, 10);
        assert_eq!(Budget::new::<String>(100, 0, 10).capacity, 0);
        let ring = Ring::new(3);
        ring.push("abc".to_string());
        assert_eq!(ring.bytes(String::len), 3 * slot + 3);
    }

    #[test]
    fn a_late_push_does_not_replace_a_newer_entry() {
        // Entries 2 and 4 share a slot of a ring of 2; 4 wrote first.
        let ring = Ring::new(2);
        ring.put(4, "new");
        ring.put(2, "late");
        ring.put(3, "other");
        assert_eq!(ring.snapshot_with_seq(|_| true), [(3, "other"), (4, "new")]);
    }

    #[test]
    fn concurrent_pushes_keep_exactly_the_newest() {
        const THREADS: usize = 4;
        const PER_THREAD: usize = 5_000;
        const CAPACITY: usize = CHUNK + 300;
        let ring = Ring::new(CAPACITY);
        let mut seqs: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..THREADS)
                .map(|t| {
                    let ring = &ring;
                    s.spawn(move || {
                        (0..PER_THREAD)
                            .map(|i| ring.push((t, i)))
                            .collect::<Vec<u64>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let total = (THREADS * PER_THREAD) as u64;
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=total).collect::<Vec<u64>>());

        let kept = ring.snapshot_with_seq(|_| true);
        let kept_seqs: Vec<u64> = kept.iter().map(|(seq, _)| *seq).collect();
        let newest: Vec<u64> = (total - CAPACITY as u64 + 1..=total).collect();
        assert_eq!(kept_seqs, newest);
        // Each thread's own entries stay in the order it pushed them.
        for t in 0..THREADS {
            let mine: Vec<usize> = kept
                .iter()
                .filter(|(_, (thread, _))| *thread == t)
                .map(|(_, (_, i))| *i)
                .collect();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "thread {t}");
        }
    }
}
