//! Callbacks: POSTing a finished journey's document to the app's `callbackUrl` (spec §6).
//!
//! A [`Delivery`] is one document for one URL. [`Dispatcher::enqueue`] accepts it or refuses it
//! at once (it never waits), so dispatch cannot slow a response. Each accepted delivery is a
//! Tokio task: it sleeps until due, attempts, and on failure sleeps for a capped exponential
//! backoff with jitter before the next attempt, sending the same body bytes every time. The
//! number of deliveries not yet settled (waiting, between retries, or in flight) is bounded by
//! `--callback-queue`; past it a delivery is refused, logged and counted.
//!
//! Delivered means a 2xx within the per-attempt timeout. Redirects are not followed (a 3xx is
//! a failure like any non-2xx). Every attempt goes to the [`log`] and to `tracing`.
//!
//! On shutdown, [`Dispatcher::drain`] lets deliveries due within the drain window make their
//! attempts and logs every other one as undelivered, naming its journey.

pub mod log;
pub mod signing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::Method;
use rand::RngExt;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::client::OutboundClient;
use crate::render::time::{iso_from_millis, now_millis};
use log::{Attempt, Log, Lost};
pub use signing::SigningKey;

/// How callbacks are delivered: the `--callback-*` flags.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// The delay before the first attempt when neither the journey nor its scenario sets one.
    pub delay: Duration,
    /// Each attempt must be answered (fully) within this.
    pub timeout: Duration,
    /// The header that carries `authKeyForCallback`.
    pub auth_header: String,
    /// The wait after the first failed attempt; doubled after each further one, up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Sign attempts with Standard Webhooks headers.
    pub signing_key: Option<SigningKey>,
    /// Deliveries not yet settled, at most.
    pub queue_capacity: usize,
    /// Attempts (and lost callbacks) kept for the admin API.
    pub log_entries: usize,
    /// On shutdown, deliveries due within this long are still attempted.
    pub drain_window: Duration,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            delay: Duration::ZERO,
            timeout: Duration::from_secs(10),
            auth_header: "Authorization".to_string(),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_attempts: 8,
            signing_key: None,
            queue_capacity: 1024,
            log_entries: 10_000,
            drain_window: Duration::from_secs(5),
        }
    }
}

/// One callback to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub journey_id: String,
    pub url: String,
    /// `authKeyForCallback`, sent in the auth header when set.
    pub auth_key: Option<String>,
    /// The bare journey document, exactly the bytes every attempt sends.
    pub body: Bytes,
    /// How long after enqueueing the first attempt is due.
    pub delay: Duration,
    /// The Standard Webhooks message id (`webhook-id`), the same on every attempt.
    pub webhook_id: String,
}

/// How a delivery ended, as the journey store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// A 2xx answer, after this many attempts.
    Delivered { attempts: u32 },
    /// Every attempt failed.
    Failed { attempts: u32 },
    /// Never attempted to the end: queue full, shutdown or reset.
    Lost,
}

/// What the dispatcher tells the journey store about its deliveries.
pub trait DeliveryObserver: Send + Sync {
    /// An attempt for `journey_id` finished without delivering (more may follow).
    fn attempted(&self, journey_id: &str);
    /// A delivery for `journey_id` is over.
    fn settled(&self, journey_id: &str, outcome: Settled);
}

/// Why a delivery was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    #[error("the callback queue is full")]
    Full,
    #[error("the server is shutting down")]
    Closed,
}

/// Counters for the admin API.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Deliveries waiting, between retries or in flight.
    pub pending: usize,
    pub capacity: usize,
    pub delivered: u64,
    pub failed: u64,
    /// Refused because the queue was full.
    pub dropped: u64,
    /// Left undelivered by shutdown or reset.
    pub undelivered: u64,
}

struct Pending {
    journey_id: String,
    abort: Option<AbortHandle>,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<u64, Pending>,
    next_delivery: u64,
    closed: bool,
}

/// The callback dispatcher. Cheap to share: wrap it in an `Arc`.
pub struct Dispatcher {
    settings: CallbackSettings,
    auth_header: Option<HeaderName>,
    client: Option<OutboundClient>,
    observer: Arc<dyn DeliveryObserver>,
    queue: Mutex<Queue>,
    /// The instant after which nothing more is attempted, once a drain has begun.
    drain: watch::Sender<Option<Instant>>,
    idle: Notify,
    attempts: Log<Attempt>,
    lost: Log<Lost>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    undelivered: AtomicU64,
}

impl Dispatcher {
    pub fn new(settings: CallbackSettings, observer: Arc<dyn DeliveryObserver>) -> Dispatcher {
        let client = match OutboundClient::new() {
            Ok(client) => Some(client),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the callback client; every callback will fail");
                None
            }
        };
        let auth_header = match HeaderName::try_from(settings.auth_header.as_str()) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::error!(header = %settings.auth_header, error = %e, "--callback-auth-header is not a header name; authKeyForCallback will not be sent");
                None
            }
        };
        Dispatcher {
            attempts: Log::new(settings.log_entries),
            lost: Log::new(settings.log_entries),
            auth_header,
            client,
            observer,
            queue: Mutex::new(Queue::default()),
            drain: watch::channel(None).0,
            idle: Notify::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            settings,
        }
    }

    pub fn settings(&self) -> &CallbackSettings {
        &self.settings
    }

    /// Accept a delivery, or refuse it at once. Never waits.
    pub fn enqueue(self: &Arc<Self>, delivery: Delivery) -> Result<u64, EnqueueError> {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(journey_id = %delivery.journey_id, "no runtime to deliver a callback on");
            return Err(self.lose(&delivery.journey_id, None, "shutdown", EnqueueError::Closed));
        };
        let id = {
            let mut queue = self.lock();
            if queue.closed {
                drop(queue);
                return Err(self.lose(
                    &delivery.journey_id,
                    None,
                    "shutdown",
                    EnqueueError::Closed,
                ));
            }
            if queue.pending.len() >= self.settings.queue_capacity {
                drop(queue);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    journey_id = %delivery.journey_id,
                    capacity = self.settings.queue_capacity,
                    "callback queue full: callback dropped (raise --callback-queue)"
                );
                return Err(self.lose(
                    &delivery.journey_id,
                    None,
                    "queue_full",
                    EnqueueError::Full,
                ));
            }
            queue.next_delivery += 1;
            let id = queue.next_delivery;
            queue.pending.insert(
                id,
                Pending {
                    journey_id: delivery.journey_id.clone(),
                    abort: None,
                },
            );
            id
        };
        tracing::debug!(journey_id = %delivery.journey_id, delivery = id, delay = ?delivery.delay, "callback queued");
        let task = runtime.spawn(self.clone().run(id, delivery));
        if let Some(pending) = self.lock().pending.get_mut(&id) {
            pending.abort = Some(task.abort_handle());
        }
        Ok(id)
    }

    /// Every attempt, oldest first; only those for `journey_id` when given.
    pub fn attempts(&self, journey_id: Option<&str>) -> Vec<Attempt> {
        self.attempts
            .snapshot(|a| journey_id.is_none_or(|j| a.journey_id == j))
    }

    /// Every callback lost to a full queue, a shutdown or a reset.
    pub fn lost(&self, journey_id: Option<&str>) -> Vec<Lost> {
        self.lost
            .snapshot(|l| journey_id.is_none_or(|j| l.journey_id == j))
    }

    pub fn stats(&self) -> Stats {
        Stats {
            pending: self.lock().pending.len(),
            capacity: self.settings.queue_capacity,
            delivered: self.delivered.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            undelivered: self.undelivered.load(Ordering::Relaxed),
        }
    }

    /// Cancel every pending delivery and forget the log (`POST /__admin/reset`).
    pub fn reset(&self) {
        let pending: Vec<Pending> = self.lock().pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Some(abort) = p.abort {
                abort.abort();
            }
        }
        self.attempts.clear();
        self.lost.clear();
        for counter in [
            &self.delivered,
            &self.failed,
            &self.dropped,
            &self.undelivered,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
        self.idle.notify_waiters();
    }

    /// Shut down: refuse new deliveries, let those due within the drain window make their
    /// attempts, and log every other one as undelivered with its journey id.
    pub async fn drain(&self) {
        let deadline = later(self.settings.drain_window);
        self.lock().closed = true;
        self.drain.send_replace(Some(deadline));
        loop {
            let notified = self.idle.notified();
            if self.lock().pending.is_empty() {
                return;
            }
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let left: Vec<(u64, Pending)> = self.lock().pending.drain().collect();
        for (id, pending) in left {
            if let Some(abort) = pending.abort {
                abort.abort();
            }
            tracing::warn!(journey_id = %pending.journey_id, delivery = id, "callback undelivered: still in flight at the end of the drain window");
            self.lose(&pending.journey_id, Some(id), "shutdown", ());
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Record a lost callback and tell the store; returns `error` for the caller's convenience.
    fn lose<E>(
        &self,
        journey_id: &str,
        delivery: Option<u64>,
        reason: &'static str,
        error: E,
    ) -> E {
        if reason != "queue_full" {
            self.undelivered.fetch_add(1, Ordering::Relaxed);
        }
        self.lost.push(Lost {
            journey_id: journey_id.to_string(),
            delivery,
            reason,
            at: iso_from_millis(now_millis()),
        });
        self.observer.settled(journey_id, Settled::Lost);
        error
    }

    fn finish(&self, id: u64) {
        let mut queue = self.lock();
        queue.pending.remove(&id);
        let empty = queue.pending.is_empty();
        drop(queue);
        if empty {
            self.idle.notify_waiters();
        }
    }

    /// One delivery, from its first attempt to its last.
    async fn run(self: Arc<Self>, id: u64, delivery: Delivery) {
        let mut drain = self.drain.subscribe();
        let mut due = later(delivery.delay);
        let mut attempt = 1u32;
        loop {
            if !wait_until(due, &mut drain).await {
                tracing::warn!(journey_id = %delivery.journey_id, delivery = id, attempt, "callback undelivered: not due before the end of the drain window");
                self.lose(&delivery.journey_id, Some(id), "shutdown", ());
                break;
            }
            let delivered = self.attempt(id, attempt, due, &delivery).await;
            let last = delivered || attempt >= self.settings.max_attempts;
            if delivered {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.observer.settled(
                    &delivery.journey_id,
                    Settled::Delivered { attempts: attempt },
                );
                break;
            }
            if last {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(journey_id = %delivery.journey_id, delivery = id, attempts = attempt, "callback failed: attempts exhausted");
                self.observer
                    .settled(&delivery.journey_id, Settled::Failed { attempts: attempt });
                break;
            }
            self.observer.attempted(&delivery.journey_id);
            due = later(self.backoff(attempt));
            attempt += 1;
        }
        self.finish(id);
    }

    /// The wait after failed attempt `n` (1-based): `initial × 2^(n-1)`, capped at the maximum,
    /// then "equal jitter" (a uniform draw from the upper half) so that many failing
    /// callbacks do not retry in lockstep.
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .settings
            .backoff_initial
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(30)))
            .min(self.settings.backoff_max);
        let half = base / 2;
        let extra = rand::rng().random_range(0..=half.as_micros().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_micros(extra)
    }

    /// One attempt: returns whether it delivered. Logged either way.
    async fn attempt(&self, id: u64, attempt: u32, due: Instant, delivery: &Delivery) -> bool {
        let scheduled_at = now_millis()
            - i64::try_from(Instant::now().saturating_duration_since(due).as_millis()).unwrap_or(0);
        let started_at = now_millis();
        let started = Instant::now();
        let mut headers = vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                USER_AGENT,
                HeaderValue::from_static(concat!("otk-mock/", env!("CARGO_PKG_VERSION"))),
            ),
        ];
        if let (Some(name), Some(key)) = (&self.auth_header, &delivery.auth_key) {
            match HeaderValue::from_str(key) {
                Ok(value) => headers.push((name.clone(), value)),
                Err(_) => {
                    tracing::warn!(journey_id = %delivery.journey_id, "authKeyForCallback cannot be sent in a header (control characters); sent without it")
                }
            }
        }
        if let Some(key) = &self.settings.signing_key {
            let timestamp = started_at.div_euclid(1000);
            let signature = key.sign(&delivery.webhook_id, timestamp, &delivery.body);
            for (name, value) in [
                ("webhook-id", delivery.webhook_id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.push((HeaderName::from_static(name), value));
                }
            }
        }
        let result = match &self.client {
            Some(client) => {
                client
                    .send(
                        Method::POST,
                        &delivery.url,
                        &headers,
                        delivery.body.clone(),
                        self.settings.timeout,
                    )
                    .await
            }
            None => Err(crate::client::OutboundError {
                kind: crate::client::OutboundErrorKind::Other,
                detail: "no callback client".to_string(),
            }),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (delivered, status, error, detail) = match result {
            Ok(response) if response.status.is_success() => {
                (true, Some(response.status.as_u16()), None, None)
            }
            Ok(response) => (
                false,
                Some(response.status.as_u16()),
                Some("non_2xx"),
                Some(format!("the receiver answered {}", response.status)),
            ),
            Err(e) => (false, None, Some(e.kind.as_str()), Some(e.detail)),
        };
        let final_attempt = delivered || attempt >= self.settings.max_attempts;
        tracing::info!(
            journey_id = %delivery.journey_id,
            delivery = id,
            attempt,
            scheduled_at = %iso_from_millis(scheduled_at),
            started_at = %iso_from_millis(started_at),
            duration_ms,
            status = status.unwrap_or(0),
            error = error.unwrap_or(""),
            final_attempt,
            "callback attempt {}",
            if delivered { "delivered" } else { "failed" }
        );
        self.attempts.push(Attempt {
            journey_id: delivery.journey_id.clone(),
            delivery: id,
            attempt,
            url: delivery.url.clone(),
            webhook_id: delivery.webhook_id.clone(),
            scheduled_at: iso_from_millis(scheduled_at),
            started_at: iso_from_millis(started_at),
            duration_ms,
            outcome: if delivered { "delivered" } else { "failed" },
            status,
            error,
            detail,
            final_attempt,
        });
        delivered
    }
}

/// `d` from now; a duration too long for the clock (`X-Mock-Callback-Delay: 10000y`) means
/// "in thirty years" rather than an overflow.
fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Sleep until `due`; `false` when a drain has begun whose deadline comes before `due`.
async fn wait_until(due: Instant, drain: &mut watch::Receiver<Option<Instant>>) -> bool {
    loop {
        let deadline = *drain.borrow_and_update();
        if deadline.is_some_and(|d| due > d) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due) => return true,
            changed = drain.changed() => {
                if changed.is_err() {
                    // The dispatcher is gone; nobody will drain: just wait.
                    tokio::time::sleep_until(due).await;
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nobody;
    impl DeliveryObserver for Nobody {
        fn attempted(&self, _: &str) {}
        fn settled(&self, _: &str, _: Settled) {}
    }

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_the_upper_half() {
        let dispatcher = Dispatcher::new(
            CallbackSettings {
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_millis(350),
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
        );
        for _ in 0..50 {
            let one = dispatcher.backoff(1);
            assert!(one >= Duration::from_millis(50) && one <= Duration::from_millis(100));
            let two = dispatcher.backoff(2);
            assert!(two >= Duration::from_millis(100) && two <= Duration::from_millis(200));
            let capped = dispatcher.backoff(40);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350));
        }
    }

    #[test]
    fn absurd_delays_do_not_overflow_the_clock() {
        assert!(later(Duration::MAX) > Instant::now());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_counts() {
        let dispatcher = Arc::new(Dispatcher::new(
            CallbackSettings {
                queue_capacity: 1,
                delay: Duration::from_secs(60),
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
        ));
        let delivery = Delivery {
            journey_id: "J1".into(),
            url: "http://127.0.0.1:9/".into(),
            auth_key: None,
            body: Bytes::from_static(b"{}"),
            delay: Duration::from_secs(60),
            webhook_id: "msg_1".into(),
        };
        assert!(dispatcher.enqueue(delivery.clone()).is_ok());
        assert_eq!(dispatcher.enqueue(delivery), Err(EnqueueError::Full));
        let stats = dispatcher.stats();
        assert_eq!((stats.pending, stats.dropped), (1, 1));
        assert_eq!(dispatcher.lost(Some("J1"))[0].reason, "queue_full");
        dispatcher.reset();
        assert_eq!(dispatcher.stats().pending, 0);
    }
}
