//! The callback log: every delivery attempt, and every callback that was never attempted to
//! the end (fault, shutdown, reset, eviction), kept in memory for `GET /__admin/callbacks`.
//!
//! Bounded by `--callback-log-entries`; the oldest entries are dropped first. Each kind is kept
//! in a [`Ring`](crate::ring::Ring), whose slot locks are held for one push or one copy, never
//! across an attempt.

use serde::Serialize;

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
