//! Callbacks: POSTing a finished journey's document to the app's `callbackUrl` (spec §6).
//!
//! A [`Delivery`] is one document for one URL. Each accepted delivery is a Tokio task: it
//! sleeps until due, attempts, and on failure sleeps for a capped exponential backoff with
//! jitter (or the receiver's `Retry-After`, capped the same way) before the next attempt,
//! sending the same body bytes every time. A 410 Gone stops the retries, as Standard Webhooks
//! receivers expect.
//!
//! # Intake, retries, and nothing dropped silently
//!
//! Capacity is promised when a journey with a `callbackUrl` is *created*, not when it ends:
//! [`Dispatcher::reserve`] takes an intake slot for the running journey, and the create call
//! is refused (503) when none is free, so the app learns it at once instead of its callback
//! vanishing minutes later. When the journey ends its slot becomes the delivery's
//! ([`Dispatcher::enqueue_promised`], never refused for capacity), which holds it until its
//! first attempt is over; a delivery that must retry then moves to the retry set and frees
//! the slot. So `--callback-queue` bounds running journeys with callbacks plus deliveries
//! waiting for their first attempt, and `--callback-retry-queue` bounds deliveries between
//! retries; while the retry set is full, new reservations are refused too, so at most
//! `queue + retry queue` deliveries are ever kept. A redelivery needs a free slot of its own
//! ([`Dispatcher::enqueue`]); a `duplicate` fault's second delivery takes one if free and
//! goes over the bound otherwise (by at most one per journey).
//!
//! Every delivery created ends exactly once, under the queue's lock: delivered, failed
//! (attempts exhausted, 410 Gone, or a destination refused by [`policy`]), or cancelled (a
//! reset or a shutdown), so [`Stats`] always balances:
//! `created = delivered + failed + cancelled + pending`. A callback that will never be created
//! although its journey has a `callbackUrl` (the journey was evicted from the store before it
//! ended, or was still running at shutdown) is logged as lost and counted as `undelivered`.
//!
//! Delivered means a 2xx within the per-attempt timeout. Redirects are not followed (a 3xx is
//! a failure like any non-2xx). Every attempt goes to the [`log`] and to `tracing`.
//!
//! On shutdown, [`Dispatcher::drain`] lets deliveries due within the drain window make their
//! attempts and logs every other one as undelivered, naming its journey.

mod delivery;
pub mod log;
pub mod policy;
mod shared;
pub mod signing;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::header::HeaderName;
use serde::Serialize;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::client::OutboundClient;
use crate::time::{iso_from_millis, now_millis};
use delivery::later;
use log::{Attempt, Lost};
pub use policy::{AllowRule, Destinations, OwnListener};
pub use signing::SigningKey;

/// How callbacks are delivered: the `--callback-*` flags.
#[derive(Debug, Clone)]
pub struct CallbackSettings {
    /// The delay before the first attempt when neither the journey nor its scenario sets one.
    pub delay: Duration,
    /// The longest delay before a first attempt (`--callback-max-delay`): a create call or an
    /// admin call asking for more is refused, and any other delay is cut to it.
    pub max_delay: Duration,
    /// Each attempt must be answered (fully) within this.
    pub timeout: Duration,
    /// The header that carries `authKeyForCallback`.
    pub auth_header: String,
    /// The wait after the first failed attempt; doubled after each further one, up to `backoff_max`.
    pub backoff_initial: Duration,
    /// The longest wait between two attempts, a receiver's `Retry-After` included.
    pub backoff_max: Duration,
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Sign attempts with Standard Webhooks headers.
    pub signing_key: Option<SigningKey>,
    /// Intake slots (`--callback-queue`): running journeys with a `callbackUrl` plus
    /// deliveries waiting for (or making) their first attempt, at most.
    pub queue_capacity: usize,
    /// Deliveries waiting between retries, at most (`--callback-retry-queue`); while it is
    /// full, new journeys with a `callbackUrl` are refused.
    pub retry_capacity: usize,
    /// Attempts (and lost callbacks) kept for the admin API.
    pub log_entries: usize,
    /// Bytes the callback log may hold (see `callback::log`).
    pub log_bytes: u64,
    /// On shutdown, deliveries due within this long are still attempted.
    pub drain_window: Duration,
    /// Attempts in flight at once, at most (`--callback-concurrency`): each holds a connection
    /// to a receiver, so a burst of callbacks cannot exhaust file descriptors.
    pub concurrency: usize,
    /// Where callbacks may go (`--callback-allow`; empty: anywhere).
    pub allow: Vec<AllowRule>,
    /// This mock's own listeners, which callbacks never reach (set by the server once bound).
    pub own_listeners: Vec<OwnListener>,
}

impl Default for CallbackSettings {
    fn default() -> Self {
        CallbackSettings {
            delay: Duration::ZERO,
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            auth_header: "Authorization".to_string(),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            max_attempts: 8,
            signing_key: None,
            queue_capacity: 10_000,
            retry_capacity: 10_000,
            log_entries: 10_000,
            log_bytes: log::DEFAULT_BYTES,
            drain_window: Duration::from_secs(5),
            concurrency: 256,
            allow: Vec::new(),
            own_listeners: Vec::new(),
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
    /// How long after enqueueing the first attempt is due (cut to `max_delay`).
    pub delay: Duration,
    /// The Standard Webhooks message id (`webhook-id`), the same on every attempt.
    pub webhook_id: String,
    /// The `wrong_auth` callback fault: the auth header carries [`WRONG_AUTH_KEY`] instead of
    /// `authKeyForCallback` (sent even when the journey has no key).
    pub wrong_auth: bool,
}

/// Whether a callback delay asked for in a request (`what`: the header or field it came in)
/// is within `--callback-max-delay`; the error names both.
pub fn check_delay(delay: Duration, max: Duration, what: &str) -> Result<(), String> {
    if delay <= max {
        return Ok(());
    }
    Err(format!(
        "{what}: {} is longer than the longest callback delay, {} (--callback-max-delay)",
        humantime::format_duration(delay),
        humantime::format_duration(max)
    ))
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
    /// Every attempt failed, the receiver answered 410 Gone, or the destination was refused.
    Failed { attempts: u32 },
    /// Never attempted to the end: dropped by a fault, or cancelled by a shutdown.
    Lost,
}

/// What the dispatcher tells the journey store about its deliveries.
pub trait DeliveryObserver: Send + Sync {
    /// An attempt for `journey_id` finished without delivering (more may follow).
    fn attempted(&self, journey_id: &str);
    /// A delivery for `journey_id` is over.
    fn settled(&self, journey_id: &str, outcome: Settled);
}

/// Why a callback was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnqueueError {
    #[error("the callback intake is full (raise --callback-queue, or --callback-retry-queue when callbacks are retrying)")]
    Full,
    #[error("the server is shutting down")]
    Closed,
    /// The shared store (`--store redis://…`) did not take it.
    #[error(
        "the shared store is unavailable; try again when it is back (the mock recovers by itself)"
    )]
    Store,
}

/// Counters for the admin API, read together under one lock.
///
/// `created = delivered + failed + cancelled + pending` at every instant, and
/// `pending = queued + retrying`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Stats {
    /// Deliveries made: first ones, redeliveries, and a `duplicate` fault's second ones.
    pub created: u64,
    /// Deliveries that got a 2xx.
    pub delivered: u64,
    /// Deliveries that ended without one: attempts exhausted, 410 Gone, or a destination
    /// refused (the mock itself, or outside `--callback-allow`).
    pub failed: u64,
    /// Deliveries ended by a reset or a shutdown before they settled.
    pub cancelled: u64,
    /// Deliveries not settled yet: `queued + retrying`.
    pub pending: usize,
    /// Deliveries waiting for, or making, their first attempt (they hold intake slots).
    pub queued: usize,
    /// Deliveries waiting between retries, or retrying.
    pub retrying: usize,
    /// Running journeys with a `callbackUrl`, each holding an intake slot for its callback.
    pub reserved: usize,
    /// Intake slots (`--callback-queue`): `reserved + queued` stays within it.
    pub capacity: usize,
    /// Retry slots (`--callback-retry-queue`).
    pub retry_capacity: usize,
    /// Create and redelivery calls refused (503) because the intake was full: the caller was
    /// told, and no callback was created.
    pub refused: u64,
    /// Callbacks that will never be created although their journey has a `callbackUrl`: the
    /// journey was still running at shutdown, or evicted from the store before it ended.
    /// Deliveries a shutdown cancelled count here too (and in `cancelled`).
    pub undelivered: u64,
}

struct Pending {
    journey_id: String,
    abort: Option<AbortHandle>,
    /// Past its first attempt: in the retry set, not the intake.
    retrying: bool,
}

#[derive(Default)]
struct Queue {
    pending: HashMap<u64, Pending>,
    /// Running journeys holding an intake slot.
    reserved: HashSet<String>,
    queued: usize,
    retrying: usize,
    next_delivery: u64,
    closed: bool,
    created: u64,
    delivered: u64,
    failed: u64,
    cancelled: u64,
    refused: u64,
    undelivered: u64,
}

impl Queue {
    fn intake(&self) -> usize {
        self.reserved.len() + self.queued
    }

    /// Take delivery `id` out of the pending set; `None` if something else (a reset, a
    /// shutdown) already ended it.
    fn remove(&mut self, id: u64) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        if pending.retrying {
            self.retrying -= 1;
        } else {
            self.queued -= 1;
        }
        Some(pending)
    }

    /// End every pending delivery as cancelled.
    fn cancel_all(&mut self) -> Vec<(u64, Pending)> {
        let all: Vec<(u64, Pending)> = self.pending.drain().collect();
        self.queued = 0;
        self.retrying = 0;
        self.cancelled += all.len() as u64;
        all
    }
}

/// How a delivery settled, for [`Dispatcher::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Delivered,
    Failed,
}

impl End {
    /// How the delivery of this attempt ended, or `None` when another attempt follows.
    fn after(logged: &Attempt) -> Option<End> {
        if logged.outcome == "delivered" {
            Some(End::Delivered)
        } else if logged.final_attempt {
            Some(End::Failed)
        } else {
            None
        }
    }
}

/// The callback dispatcher. Cheap to share: wrap it in an `Arc`.
pub struct Dispatcher {
    settings: CallbackSettings,
    destinations: Destinations,
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
    /// Permits for attempts in flight.
    in_flight: Semaphore,
    attempts: log::Log<Attempt>,
    lost: log::Log<Lost>,
    fault_dropped: AtomicU64,
    fault_duplicated: AtomicU64,
    /// With `--store redis://…`: the schedule every replica shares (see `shared`).
    shared: Option<shared::Schedule>,
    /// Wakes this replica's claimer when it queues a shared delivery.
    wake: Arc<Notify>,
}

impl Dispatcher {
    /// A dispatcher; with `shared`, deliveries go to the schedule replicas share there, and
    /// [`Dispatcher::start_shared`] starts claiming them.
    pub fn new(
        settings: CallbackSettings,
        observer: Arc<dyn DeliveryObserver>,
        shared: Option<Arc<crate::shared::Redis>>,
    ) -> Dispatcher {
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
            in_flight: Semaphore::new(settings.concurrency.clamp(1, Semaphore::MAX_PERMITS)),
            destinations: Destinations {
                own: settings.own_listeners.clone(),
                allow: settings.allow.clone(),
            },
            auth_header,
            client,
            observer,
            runtime: tokio::runtime::Handle::try_current().ok(),
            queue: Mutex::new(Queue::default()),
            drain: watch::channel(None).0,
            idle: Notify::new(),
            fault_dropped: AtomicU64::new(0),
            fault_duplicated: AtomicU64::new(0),
            shared: shared
                .map(|redis| shared::Schedule::new(redis, settings.timeout, settings.log_entries)),
            wake: Arc::new(Notify::new()),
            settings,
        }
    }

    pub fn settings(&self) -> &CallbackSettings {
        &self.settings
    }

    /// Whether deliveries go to a schedule that replicas share.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// Take an intake slot for the callback of `journey_id`, a journey being created with a
    /// `callbackUrl`: refused when the intake or the retry set is full, or at shutdown.
    pub fn reserve(&self, journey_id: &str) -> Result<(), EnqueueError> {
        let mut queue = self.lock();
        if queue.closed {
            return Err(EnqueueError::Closed);
        }
        if self.shared.is_some() {
            // A shared journey may end on any replica, which would never give this one's
            // slot back: with a shared store the schedule in Redis holds deliveries, and
            // the intake bound is not kept (README, "Running several replicas").
            return Ok(());
        }
        if queue.intake() >= self.settings.queue_capacity
            || queue.retrying >= self.settings.retry_capacity
        {
            queue.refused += 1;
            let (intake, retrying) = (queue.intake(), queue.retrying);
            drop(queue);
            // Debug only: the refused request is logged (a warning) where every answer is.
            tracing::debug!(
                journey_id,
                intake,
                capacity = self.settings.queue_capacity,
                retrying,
                retry_capacity = self.settings.retry_capacity,
                "callback intake full: journey refused with 503 (raise --callback-queue or --callback-retry-queue)"
            );
            return Err(EnqueueError::Full);
        }
        queue.reserved.insert(journey_id.to_string());
        Ok(())
    }

    /// Give back the intake slot of `journey_id` unused: its journey was not created after
    /// all, ended without a callback to send, or (`lost`: with the reason logged and counted
    /// as undelivered) will never end here. Returns whether it held one.
    pub fn release(&self, journey_id: &str, lost: Option<&'static str>) -> bool {
        let mut queue = self.lock();
        let held = queue.reserved.remove(journey_id);
        if held && lost.is_some() {
            queue.undelivered += 1;
        }
        drop(queue);
        if let (true, Some(reason)) = (held, lost) {
            tracing::warn!(
                journey_id,
                reason,
                "callback will never be sent: its journey is gone before it ended"
            );
            self.lose(journey_id, None, reason);
        }
        held
    }

    /// Accept a delivery that needs an intake slot of its own (a redelivery), or refuse it at
    /// once. Never waits.
    pub fn enqueue(self: &Arc<Self>, delivery: Delivery) -> Result<u64, EnqueueError> {
        self.admit(delivery, false)
    }

    /// Accept the delivery of a journey that has just ended, in the slot its creation
    /// reserved (or over the bound, when it holds none: a callback the create call was
    /// promised is never refused for capacity). Refused only at shutdown.
    pub fn enqueue_promised(self: &Arc<Self>, delivery: Delivery) -> Result<u64, EnqueueError> {
        self.admit(delivery, true)
    }

    fn admit(
        self: &Arc<Self>,
        mut delivery: Delivery,
        promised: bool,
    ) -> Result<u64, EnqueueError> {
        delivery.delay = delivery.delay.min(self.settings.max_delay);
        let runtime = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok());
        let id = {
            let mut queue = self.lock();
            let held = promised && queue.reserved.remove(&delivery.journey_id);
            if queue.closed || runtime.is_none() {
                if promised {
                    queue.undelivered += 1;
                    drop(queue);
                    tracing::warn!(journey_id = %delivery.journey_id, "callback undelivered: the server is shutting down");
                    self.lose(&delivery.journey_id, None, "shutdown");
                }
                return Err(EnqueueError::Closed);
            }
            if !held && !promised && queue.intake() >= self.settings.queue_capacity {
                queue.refused += 1;
                drop(queue);
                tracing::debug!(journey_id = %delivery.journey_id, capacity = self.settings.queue_capacity, "callback intake full: redelivery refused (raise --callback-queue)");
                return Err(EnqueueError::Full);
            }
            if self.shared.is_some() {
                drop(queue);
                return self.admit_shared(&delivery);
            }
            queue.next_delivery += 1;
            queue.created += 1;
            queue.queued += 1;
            let id = queue.next_delivery;
            queue.pending.insert(
                id,
                Pending {
                    journey_id: delivery.journey_id.clone(),
                    abort: None,
                    retrying: false,
                },
            );
            id
        };
        tracing::debug!(journey_id = %delivery.journey_id, delivery = id, delay = ?delivery.delay, "callback queued");
        let Some(runtime) = runtime else {
            return Err(EnqueueError::Closed); // checked above, under the lock
        };
        let task = runtime.spawn(self.clone().run(id, delivery));
        if let Some(pending) = self.lock().pending.get_mut(&id) {
            pending.abort = Some(task.abort_handle());
        }
        Ok(id)
    }

    /// A delivery for the schedule replicas share: written there, claimed by whichever
    /// replica is free when it is due.
    fn admit_shared(&self, delivery: &Delivery) -> Result<u64, EnqueueError> {
        let Some(shared) = &self.shared else {
            return Err(EnqueueError::Closed);
        };
        match shared.push(delivery) {
            Ok(id) => {
                tracing::debug!(journey_id = %delivery.journey_id, delivery = id, delay = ?delivery.delay, "callback queued in the shared store");
                if delivery.delay.is_zero() {
                    self.wake.notify_one();
                }
                Ok(id)
            }
            Err(e) => {
                tracing::error!(journey_id = %delivery.journey_id, error = %e, "callback not queued: the shared store is unavailable");
                self.lose(&delivery.journey_id, None, "store");
                Err(EnqueueError::Store)
            }
        }
    }

    /// Every attempt, oldest first; only those for `journey_id` when given. With a shared
    /// store, every replica's.
    pub fn attempts(&self, journey_id: Option<&str>) -> Vec<Attempt> {
        let keep = |a: &Attempt| journey_id.is_none_or(|j| a.journey_id == j);
        match self.shared_logs() {
            Some((attempts, _)) => attempts.snapshot(keep),
            None => self.attempts.snapshot(keep),
        }
    }

    /// Every callback lost: dropped by a fault, cancelled by a shutdown or a reset, or never
    /// created because its journey was still running at shutdown or was evicted.
    pub fn lost(&self, journey_id: Option<&str>) -> Vec<Lost> {
        let keep = |l: &Lost| journey_id.is_none_or(|j| l.journey_id == j);
        match self.shared_logs() {
            Some((_, lost)) => lost.snapshot(keep),
            None => self.lost.snapshot(keep),
        }
    }

    /// The logs of attempts and of lost callbacks, for paged reads.
    pub fn logs(&self) -> (&log::Log<Attempt>, &log::Log<Lost>) {
        (&self.attempts, &self.lost)
    }

    /// With a shared store: every replica's logs, read now into logs of their own (which
    /// page as the memory ones do); `None` with the memory store, or when Redis is away
    /// (this replica's own logs are the best left to show).
    pub fn shared_logs(&self) -> Option<(log::Log<Attempt>, log::Log<Lost>)> {
        let (attempts, lost) = self.shared.as_ref()?.logs().ok()?;
        let entries = self.settings.log_entries;
        let bytes = self.settings.log_bytes;
        let (a, l) = (
            log::attempt_log(entries, bytes),
            log::lost_log(entries, bytes),
        );
        for attempt in attempts {
            a.push(attempt);
        }
        for one in lost {
            l.push(one);
        }
        Some((a, l))
    }

    pub fn stats(&self) -> Stats {
        let shared = self.shared.as_ref().and_then(|s| s.counts().ok());
        let queue = self.lock();
        if let Some([created, delivered, failed, pending]) = shared {
            // Every replica's deliveries; reservations and refusals are this replica's.
            let pending = usize::try_from(pending).unwrap_or(usize::MAX);
            return Stats {
                created,
                delivered,
                failed,
                cancelled: created.saturating_sub(delivered + failed + pending as u64),
                pending,
                queued: pending,
                retrying: 0,
                reserved: queue.reserved.len(),
                capacity: self.settings.queue_capacity,
                retry_capacity: self.settings.retry_capacity,
                refused: queue.refused,
                undelivered: queue.undelivered,
            };
        }
        Stats {
            created: queue.created,
            delivered: queue.delivered,
            failed: queue.failed,
            cancelled: queue.cancelled,
            pending: queue.queued + queue.retrying,
            queued: queue.queued,
            retrying: queue.retrying,
            reserved: queue.reserved.len(),
            capacity: self.settings.queue_capacity,
            retry_capacity: self.settings.retry_capacity,
            refused: queue.refused,
            undelivered: queue.undelivered,
        }
    }

    /// A `drop` callback fault: the callback is never sent; it is listed under `lost` with
    /// reason `fault`, and the journey's callback status is `lost`. Its intake slot is freed.
    pub fn drop_by_fault(&self, journey_id: &str) {
        self.lock().reserved.remove(journey_id);
        self.fault_dropped.fetch_add(1, Ordering::Relaxed);
        self.lose(journey_id, None, "fault");
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

    /// `POST /__admin/reset`: forget the log and the counters, cancel every pending delivery
    /// and free every reservation (the journeys are forgotten too). The fresh log and counters
    /// show what the reset cancelled: each as lost with reason `reset`, counted as created and
    /// cancelled, so the balance holds across it.
    pub fn reset(&self) {
        let cancelled = {
            let mut queue = self.lock();
            let closed = queue.closed;
            let next_delivery = queue.next_delivery;
            let mut old = Queue {
                closed,
                next_delivery,
                ..Queue::default()
            };
            std::mem::swap(&mut *queue, &mut old);
            let cancelled = old.cancel_all();
            queue.created = cancelled.len() as u64;
            queue.cancelled = cancelled.len() as u64;
            cancelled
        };
        if let Some(shared) = &self.shared {
            if let Err(e) = shared.reset() {
                tracing::error!(error = %e, "the shared callbacks were not reset");
            }
        }
        self.attempts.clear();
        self.lost.clear();
        self.fault_dropped.store(0, Ordering::Relaxed);
        self.fault_duplicated.store(0, Ordering::Relaxed);
        for (id, pending) in cancelled {
            if let Some(abort) = pending.abort {
                abort.abort();
            }
            self.lost.push(Lost {
                journey_id: pending.journey_id,
                delivery: Some(id),
                reason: "reset",
                at: iso_from_millis(now_millis()),
            });
        }
        self.idle.notify_waiters();
    }

    /// A reset through another replica (shared store): forget this replica's own logs; the
    /// shared schedule and counters were reset there.
    pub fn forget_local(&self) {
        self.attempts.clear();
        self.lost.clear();
        self.fault_dropped.store(0, Ordering::Relaxed);
        self.fault_duplicated.store(0, Ordering::Relaxed);
    }

    /// Shut down: refuse new deliveries, let those due within the drain window make their
    /// attempts, and log every other one as undelivered with its journey id, and so every
    /// journey still running with a `callbackUrl`.
    pub async fn drain(&self) {
        let deadline = later(self.settings.drain_window);
        let running: Vec<String> = {
            let mut queue = self.lock();
            queue.closed = true;
            let running: Vec<String> = queue.reserved.drain().collect();
            if self.shared.is_some() {
                // Shared journeys live on in Redis: another replica ends them and delivers.
                Vec::new()
            } else {
                queue.undelivered += running.len() as u64;
                running
            }
        };
        for journey_id in running {
            tracing::warn!(%journey_id, "callback undelivered: its journey was still running at shutdown");
            self.lose(&journey_id, None, "shutdown");
        }
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
        let left = {
            let mut queue = self.lock();
            let left = queue.cancel_all();
            queue.undelivered += left.len() as u64;
            left
        };
        for (id, pending) in left {
            if let Some(abort) = pending.abort {
                abort.abort();
            }
            tracing::warn!(journey_id = %pending.journey_id, delivery = id, "callback undelivered: still in flight at the end of the drain window");
            self.lose(&pending.journey_id, Some(id), "shutdown");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Delivery `id` ended: counted once, whoever ends it. `false` when a reset or a shutdown
    /// ended it first (and counted it).
    fn settle(&self, id: u64, end: End) -> bool {
        let mut queue = self.lock();
        if queue.remove(id).is_none() {
            return false;
        }
        match end {
            End::Delivered => queue.delivered += 1,
            End::Failed => queue.failed += 1,
        }
        let idle = queue.pending.is_empty();
        drop(queue);
        if idle {
            self.idle.notify_waiters();
        }
        true
    }

    /// Delivery `id` failed its first attempt and will retry: it leaves the intake for the
    /// retry set. `false` when it was cancelled meanwhile.
    fn to_retry(&self, id: u64) -> bool {
        let mut queue = self.lock();
        let Some(pending) = queue.pending.get_mut(&id) else {
            return false;
        };
        if !pending.retrying {
            pending.retrying = true;
            queue.queued -= 1;
            queue.retrying += 1;
        }
        true
    }

    /// A shutdown ends delivery `id` before it is due.
    fn cancel(&self, id: u64, journey_id: &str, reason: &'static str) {
        let mut queue = self.lock();
        if queue.remove(id).is_none() {
            return;
        }
        queue.cancelled += 1;
        queue.undelivered += 1;
        let idle = queue.pending.is_empty();
        drop(queue);
        self.lose(journey_id, Some(id), reason);
        if idle {
            self.idle.notify_waiters();
        }
    }

    /// Record a lost callback and tell the store.
    fn lose(&self, journey_id: &str, delivery: Option<u64>, reason: &'static str) {
        let lost = Lost {
            journey_id: journey_id.to_string(),
            delivery,
            reason,
            at: iso_from_millis(now_millis()),
        };
        if let Some(shared) = &self.shared {
            shared.lost(&lost);
        }
        self.lost.push(lost);
        self.observer.settled(journey_id, Settled::Lost);
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

    fn delivery(journey_id: &str) -> Delivery {
        Delivery {
            journey_id: journey_id.into(),
            url: "http://127.0.0.1:9/".into(),
            auth_key: None,
            body: Bytes::from_static(b"{}"),
            delay: Duration::from_secs(60),
            webhook_id: format!("msg_{journey_id}"),
            wrong_auth: false,
        }
    }

    fn balanced(stats: &Stats) -> bool {
        stats.created == stats.delivered + stats.failed + stats.cancelled + stats.pending as u64
            && stats.pending == stats.queued + stats.retrying
    }

    #[tokio::test]
    async fn running_journeys_and_first_attempts_share_the_intake_and_a_full_one_refuses() {
        let dispatcher = Arc::new(Dispatcher::new(
            CallbackSettings {
                queue_capacity: 2,
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
            None,
        ));
        dispatcher.reserve("J1").unwrap();
        dispatcher.reserve("J2").unwrap();
        assert_eq!(dispatcher.reserve("J3"), Err(EnqueueError::Full));
        // J1 ends: its delivery takes the slot J1 held, so the intake is still full.
        dispatcher.enqueue_promised(delivery("J1")).unwrap();
        assert_eq!(dispatcher.reserve("J3"), Err(EnqueueError::Full));
        // A redelivery needs a slot of its own.
        assert_eq!(dispatcher.enqueue(delivery("J1")), Err(EnqueueError::Full));
        // J2 ends without a callback to send: its slot is free again.
        assert!(dispatcher.release("J2", None));
        dispatcher.reserve("J3").unwrap();
        let stats = dispatcher.stats();
        assert_eq!(
            (stats.reserved, stats.queued, stats.created, stats.refused),
            (1, 1, 1, 3)
        );
        assert!(balanced(&stats), "{stats:?}");
        // A promised callback is never refused for capacity: J3's duplicate goes over.
        dispatcher.enqueue_promised(delivery("J3")).unwrap();
        dispatcher.enqueue_promised(delivery("J3")).unwrap();
        assert_eq!(dispatcher.stats().queued, 3);

        dispatcher.reset();
        let stats = dispatcher.stats();
        assert_eq!((stats.created, stats.cancelled, stats.pending), (3, 3, 0));
        assert!(balanced(&stats), "{stats:?}");
        assert!(dispatcher.lost(None).iter().all(|l| l.reason == "reset"));
        dispatcher.reserve("J4").unwrap();
    }

    #[tokio::test]
    async fn delays_are_cut_to_the_maximum() {
        let dispatcher = Arc::new(Dispatcher::new(
            CallbackSettings {
                max_delay: Duration::from_millis(50),
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
            None,
        ));
        let mut long = delivery("J1");
        long.delay = Duration::MAX;
        dispatcher.enqueue(long).unwrap();
        // Due after 50 ms, not never: the dead URL fails at once, and the delivery retries.
        let deadline = Instant::now() + Duration::from_secs(20);
        while dispatcher.attempts(None).is_empty() {
            assert!(Instant::now() < deadline, "the first attempt never came");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(dispatcher.stats().retrying, 1);
    }

    #[tokio::test]
    async fn shutdown_logs_running_journeys_and_late_deliveries_as_undelivered() {
        let dispatcher = Arc::new(Dispatcher::new(
            CallbackSettings {
                drain_window: Duration::from_millis(10),
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
            None,
        ));
        dispatcher.reserve("running").unwrap();
        dispatcher.reserve("ended").unwrap();
        dispatcher.enqueue_promised(delivery("ended")).unwrap();
        dispatcher.drain().await;
        let stats = dispatcher.stats();
        assert_eq!(
            (
                stats.cancelled,
                stats.undelivered,
                stats.reserved,
                stats.pending
            ),
            (1, 2, 0, 0)
        );
        assert!(balanced(&stats), "{stats:?}");
        let mut lost: Vec<(String, &str)> = dispatcher
            .lost(None)
            .into_iter()
            .map(|l| (l.journey_id, l.reason))
            .collect();
        lost.sort();
        assert_eq!(
            lost,
            [("ended".into(), "shutdown"), ("running".into(), "shutdown")]
        );
        assert_eq!(dispatcher.reserve("late"), Err(EnqueueError::Closed));
    }
}
