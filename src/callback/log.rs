//! The callback log: every delivery attempt, and every callback that was never attempted to
//! the end (fault, shutdown, reset, eviction), kept in memory for `GET /__admin/callbacks`.
//!
//! Bounded by `--callback-log-entries`; the oldest entries are dropped first. Each kind is kept
//! in a [`Log`] on a [`Ring`], whose slot locks are held for one push or one copy, never
//! across an attempt.
//!
//! Bounded by `--callback-log-bytes` too, as the request journal is (see [`crate::ring`]):
//! three quarters of the budget for attempts, a quarter for lost callbacks; each entry may
//! hold an equal share of what the ring's slots leave, and a longer journey id, URL or error
//! detail is kept cut, ending in `…` (the longest string is cut first; the timestamps never
//! are). A `journeyId` filter does not find a cut id by its whole text.

use serde::Serialize;

use crate::ring::{Budget, Ring};
use crate::text::{cut_marked, fair_cap};

/// The default of `--callback-log-bytes`.
pub const DEFAULT_BYTES: u64 = 8 << 20;

/// One attempt to deliver one callback.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// The journey whose callback this is.
    pub journey_id: String,
    /// The delivery this attempt belongs to (a redelivery is a new delivery).
    pub delivery: u64,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    /// Where it was sent (`callbackUrl`).
    pub url: String,
    /// The Standard Webhooks message id, the same on every attempt of a delivery.
    pub webhook_id: String,
    /// When the attempt was due (ISO-8601 UTC).
    pub scheduled_at: String,
    /// When it started (ISO-8601 UTC).
    pub started_at: String,
    /// How long the attempt took, to its answer or its failure.
    pub duration_ms: u64,
    /// `delivered` or `failed`.
    pub outcome: &'static str,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it failed: `timeout`, `refused`, `reset`, `dns`, `tls`, `invalid_url`, `non_2xx`,
    /// `gone` (410: no more attempts), `self_callback` (the URL reaches this mock itself: not
    /// sent), `not_allowed` (outside `--callback-allow`: not sent), `other`.
    pub error: Option<&'static str>,
    /// Detail for a human (the transport error's text).
    pub detail: Option<String>,
    /// Whether this was the delivery's last attempt (delivered, or attempts exhausted).
    #[serde(rename = "final")]
    pub final_attempt: bool,
    /// When the next attempt is due (ISO-8601 UTC), after a failed attempt that is not the
    /// last; `null` otherwise.
    pub next_attempt_at: Option<String>,
    /// The replica that made it, when replicas share a store (`--store redis://…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
}

/// A callback that was not delivered and will not be retried by this process.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lost {
    /// The journey whose callback was lost.
    pub journey_id: String,
    /// The delivery it belonged to, when one had been queued.
    pub delivery: Option<u64>,
    /// `fault` (a `drop` callback fault), `shutdown` (cancelled by it, or its journey was
    /// still running), `reset` (cancelled by it), `evicted` (its journey left the store before
    /// it ended) or `error` (its document could not be made; see the log).
    pub reason: &'static str,
    /// When it was lost (ISO-8601 UTC).
    pub at: String,
}

/// An entry of the callback log: whose it is, and what it holds on the heap.
pub trait Logged: Clone {
    /// The journey the entry is about.
    fn journey_id(&self) -> &str;
    /// The bytes its strings hold.
    fn heap_bytes(&self) -> usize;
    /// The strings, for [`Log::push`] to cut when they hold more than the entry's share.
    fn strings(&mut self) -> Vec<&mut String>;
}

impl Logged for Attempt {
    fn journey_id(&self) -> &str {
        &self.journey_id
    }

    fn heap_bytes(&self) -> usize {
        self.journey_id.len()
            + self.url.len()
            + self.webhook_id.len()
            + self.scheduled_at.len()
            + self.started_at.len()
            + self.detail.as_ref().map_or(0, String::len)
            + self.next_attempt_at.as_ref().map_or(0, String::len)
    }

    fn strings(&mut self) -> Vec<&mut String> {
        let mut strings = vec![
            &mut self.journey_id,
            &mut self.url,
            &mut self.webhook_id,
            &mut self.scheduled_at,
            &mut self.started_at,
        ];
        strings.extend(self.detail.as_mut());
        strings
    }
}

impl Logged for Lost {
    fn journey_id(&self) -> &str {
        &self.journey_id
    }

    fn heap_bytes(&self) -> usize {
        self.journey_id.len() + self.at.len()
    }

    fn strings(&mut self) -> Vec<&mut String> {
        vec![&mut self.journey_id, &mut self.at]
    }
}

/// What an entry is given at least: a URL of a hundred bytes, two timestamps and the ids
/// fit whole (attempts); a journey id and a timestamp (lost callbacks).
const MIN_ATTEMPT_HEAP: usize = 256;
const MIN_LOST_HEAP: usize = 96;

/// One kind of entry of the callback log, bounded in entries and bytes.
pub struct Log<T> {
    ring: Ring<T>,
    heap_per_entry: usize,
}

/// The attempts' log: `entries` at most, within three quarters of `bytes`.
pub fn attempt_log(entries: usize, bytes: u64) -> Log<Attempt> {
    Log::new(entries, bytes / 4 * 3, MIN_ATTEMPT_HEAP)
}

/// The lost callbacks' log: `entries` at most, within a quarter of `bytes`.
pub fn lost_log(entries: usize, bytes: u64) -> Log<Lost> {
    Log::new(entries, bytes / 4, MIN_LOST_HEAP)
}

impl<T: Logged> Log<T> {
    fn new(entries: usize, bytes: u64, min_heap: usize) -> Self {
        let budget = Budget::new::<T>(entries, bytes, min_heap);
        if budget.capacity < entries {
            tracing::warn!(
                entries,
                bytes,
                kept = budget.capacity,
                "--callback-log-bytes cannot hold --callback-log-entries entries: the log keeps fewer"
            );
        }
        Log {
            ring: Ring::new(budget.capacity),
            heap_per_entry: budget.heap_per_entry,
        }
    }

    /// Keep `entry`, its strings cut to its share of the budget first if they need to be.
    pub fn push(&self, mut entry: T) -> u64 {
        if entry.heap_bytes() > self.heap_per_entry {
            let mut strings = entry.strings();
            let lens: Vec<usize> = strings.iter().map(|s| s.len()).collect();
            let cap = fair_cap(&lens, self.heap_per_entry);
            for s in strings.iter_mut() {
                if let Some(cut) = cut_marked(s, cap) {
                    **s = cut;
                }
            }
        }
        self.ring.push(entry)
    }

    /// Every entry `keep` accepts, oldest first.
    pub fn snapshot(&self, keep: impl Fn(&T) -> bool) -> Vec<T> {
        self.ring.snapshot(keep)
    }

    /// The oldest `limit` entries after position `after` (0: the first), only `journey_id`'s
    /// when given; the position of the last one (`after` when there is none), where the next
    /// page starts; and whether more follow.
    pub fn page(&self, after: u64, limit: usize, journey_id: Option<&str>) -> (Vec<T>, u64, bool) {
        let (entries, more) = self.ring.page(after, limit, |e| {
            journey_id.is_none_or(|j| e.journey_id() == j)
        });
        let at = entries.last().map_or(after, |(seq, _)| *seq);
        (entries.into_iter().map(|(_, e)| e).collect(), at, more)
    }

    /// The bytes it holds: its slots and its entries' strings (within its budget).
    pub fn bytes(&self) -> usize {
        self.ring.bytes(T::heap_bytes)
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Forget every entry; how many there were.
    pub fn clear(&self) -> usize {
        self.ring.clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(journey_id: &str, url: &str, detail: &str) -> Attempt {
        Attempt {
            journey_id: journey_id.into(),
            delivery: 1,
            attempt: 1,
            url: url.into(),
            webhook_id: format!("msg_{journey_id}"),
            scheduled_at: "2026-01-01T10:00:00.000Z".into(),
            started_at: "2026-01-01T10:00:00.000Z".into(),
            duration_ms: 1,
            outcome: "failed",
            status: Some(500),
            error: Some("non_2xx"),
            detail: Some(detail.into()),
            final_attempt: false,
            next_attempt_at: None,
            replica: None,
        }
    }

    #[test]
    fn hostile_attempts_stay_within_the_byte_budget() {
        let budget = 256 * 1024;
        let log = attempt_log(10_000, budget);
        let long = "x".repeat(100_000);
        for i in 0..2_000 {
            log.push(attempt(
                &format!("J{i}{long}"),
                &format!("http://h/{long}"),
                &long,
            ));
            assert!(log.bytes() as u64 <= budget / 4 * 3, "{}", log.bytes());
        }
        let kept = log.snapshot(|_| true);
        assert!(!kept.is_empty());
        // The timestamps are never cut; the long strings are, and say so.
        assert_eq!(kept[0].started_at, "2026-01-01T10:00:00.000Z");
        assert!(kept[0].url.ends_with('…'), "{}", kept[0].url);
        let lost = lost_log(10_000, budget);
        for i in 0..2_000 {
            lost.push(Lost {
                journey_id: format!("{i}{long}"),
                delivery: None,
                reason: "reset",
                at: "2026-01-01T10:00:00.000Z".into(),
            });
            assert!(lost.bytes() as u64 <= budget / 4);
        }
    }

    #[test]
    fn an_ordinary_attempt_is_kept_whole_and_paged_by_journey() {
        let log = attempt_log(100, DEFAULT_BYTES);
        for i in 0..30 {
            log.push(attempt(
                if i % 3 == 0 { "A" } else { "B" },
                "https://app.example.test/otk/callback",
                "the receiver answered 500 Internal Server Error",
            ));
        }
        let whole = attempt(
            "A",
            "https://app.example.test/otk/callback",
            "the receiver answered 500 Internal Server Error",
        );
        assert_eq!(log.snapshot(|_| true)[0].url, whole.url);
        let mut seen = 0;
        let mut after = 0;
        loop {
            let (page, at, more) = log.page(after, 4, Some("A"));
            assert!(page.iter().all(|a| a.journey_id == "A"));
            seen += page.len();
            if !more {
                break;
            }
            after = at;
        }
        assert_eq!(seen, 10);
    }
}
