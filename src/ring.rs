//! A bounded ring of the newest entries, for logs written on the request path (the request
//! journal, the callback log) and read by the admin API.
//!
//! A push must not wait for another push: each slot has its own lock, and one atomic counter
//! hands every push its sequence number and, through it, its slot (`seq % capacity`). Two
//! pushes contend only when they land on the same slot, `capacity` pushes apart. Slots are
//! allocated a chunk at a time as the ring fills, so a large ring that is never used costs
//! next to nothing. Readers copy what they want slot by slot and order it by sequence number;
//! they never hold more than one slot's lock.

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
