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

mod delivery;
pub mod log;
pub mod signing;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderName;
use serde::Serialize;
use tokio::sync::{watch, Notify};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::client::OutboundClient;
use crate::time::{iso_from_millis, now_millis};
use delivery::later;
use log::{Attempt, Lost};
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
    /// The longest wait between two attempts.
    pub backoff_max: Duration,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Sign attempts with Standard Webhooks headers.
    pub signing_key: Option<SigningKey>,
    /// Deliveries not yet settled, at most.
    pub queue_capacity: usize,
    /// Attempts (and lost callbacks) kept for the admin API.
    pub log_entries: usize,
    /// Bytes the callback log may hold (see [`log`]).
    pub log_bytes: u64,
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
            log_bytes: log::DEFAULT_BYTES,
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
    /// The `wrong_auth` callback fault: the auth header carries [`WRONG_AUTH_KEY`] instead of
    /// `authKeyForCallback` (sent even when the journey has no key).
    pub wrong_auth: bool,
}

/// The key a `wrong_auth` callback fault sends in the auth header.
pub const WRONG_AUTH_KEY: &str = "otk-mock-wrong-auth-key";

/// What callback faults did, for metrics.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultStats {
    /// Callbacks never sent because of a `drop` fault.
    pub dropped: u64,
    /// Extra deliveries queued by a `duplicate` fault.
    pub duplicated: u64,
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
    /// The most deliveries that may be pending (`--callback-queue`).
    pub capacity: usize,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Deliveries whose every attempt failed.
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
    /// The runtime deliveries run on: the one the dispatcher was made in, so that a callback
    /// queued from elsewhere (a test's own runtime, through the library API) still runs
    /// beside the server that owns it.
    runtime: Option<tokio::runtime::Handle>,
    queue: Mutex<Queue>,
    /// The instant after which nothing more is attempted, once a drain has begun.
    drain: watch::Sender<Option<Instant>>,
    idle: Notify,
    attempts: log::Log<Attempt>,
    lost: log::Log<Lost>,
    delivered: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    undelivered: AtomicU64,
    fault_dropped: AtomicU64,
    fault_duplicated: AtomicU64,
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
            attempts: log::attempt_log(settings.log_entries, settings.log_bytes),
            lost: log::lost_log(settings.log_entries, settings.log_bytes),
            auth_header,
            client,
            observer,
            runtime: tokio::runtime::Handle::try_current().ok(),
            queue: Mutex::new(Queue::default()),
            drain: watch::channel(None).0,
            idle: Notify::new(),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
            fault_dropped: AtomicU64::new(0),
            fault_duplicated: AtomicU64::new(0),
            settings,
        }
    }

    pub fn settings(&self) -> &CallbackSettings {
        &self.settings
    }

    /// Accept a delivery, or refuse it at once. Never waits.
    pub fn enqueue(self: &Arc<Self>, delivery: Delivery) -> Result<u64, EnqueueError> {
        let Some(runtime) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
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

    /// The logs of attempts and of lost callbacks, for paged reads.
    pub fn logs(&self) -> (&log::Log<Attempt>, &log::Log<Lost>) {
        (&self.attempts, &self.lost)
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

    /// A `drop` callback fault: the callback is never sent; it is listed under `lost` with
    /// reason `fault`, and the journey's callback status is `lost`.
    pub fn drop_by_fault(&self, journey_id: &str) {
        self.fault_dropped.fetch_add(1, Ordering::Relaxed);
        self.lose(journey_id, None, "fault", ());
    }

    /// A `duplicate` callback fault queued an extra delivery.
    pub fn duplicated_by_fault(&self) {
        self.fault_duplicated.fetch_add(1, Ordering::Relaxed);
    }

    pub fn fault_stats(&self) -> FaultStats {
        FaultStats {
            dropped: self.fault_dropped.load(Ordering::Relaxed),
            duplicated: self.fault_duplicated.load(Ordering::Relaxed),
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
            &self.fault_dropped,
            &self.fault_duplicated,
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
        if reason != "queue_full" && reason != "fault" {
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
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An observer for tests that need none.
    pub(crate) struct Nobody;
    impl DeliveryObserver for Nobody {
        fn attempted(&self, _: &str) {}
        fn settled(&self, _: &str, _: Settled) {}
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
            wrong_auth: false,
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
