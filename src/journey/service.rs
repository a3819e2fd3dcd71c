//! [`Journeys`]: created journeys from creation to callback. It ties the store, the lifecycle
//! rules, the catalogue (to render documents) and the callback dispatcher together, so that
//! the provider routes, the hosted page and the admin API all change journeys the same way.
//!
//! Every change is one [`JourneyStore::update`] whose closure decides under the lock (so two
//! completions cannot both win); rendering, enqueueing callbacks and arming timers happen
//! after the lock is released.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;

use super::create::{journey_id, CreateRequest};
use super::lifecycle::{self, next_due, Due, Policy};
use super::record::{AutoComplete, BoundBy, CallbackState, CallbackStatus, Ending, JourneyRecord};
use super::store::{JourneyStore, StoreError};
use crate::callback::{Delivery, DeliveryObserver, Dispatcher, EnqueueError, Settled};
use crate::catalogue::Catalogue;
use crate::fault::CallbackFault;
use crate::live::Live;
use crate::render::person;
use crate::scenario::Scenario;
use crate::time::now_millis;

/// Settings of the journey lifecycle.
#[derive(Debug, Clone)]
pub struct JourneySettings {
    pub policy: Policy,
    /// The scenario that renders a running journey.
    pub in_progress_scenario: String,
    /// The scenario that renders an expired journey.
    pub expired_scenario: String,
    /// The base of `journeyUrl`, without a trailing `/`.
    pub public_url: String,
    /// The callback delay when neither the journey nor its scenario sets one.
    pub callback_delay: Duration,
}

/// What a create call asks beyond its body (the provider API's `X-Mock-*` headers, the
/// console's form).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Overrides every other callback delay.
    pub callback_delay: Option<Duration>,
    /// What happens to the callback.
    pub callback_fault: Option<CallbackFault>,
    /// Whether it completes by itself while unopened.
    pub auto_complete: AutoComplete,
}

/// Why a journey operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JourneyError {
    #[error("journey {0} was not created here")]
    NotFound(String),
    #[error("journey {id} has already ended ({state})")]
    Ended { id: String, state: &'static str },
    #[error("scenario {0} does not end a journey (terminal = false); name a terminal scenario")]
    NotTerminal(String),
    #[error("journey {0} has no callbackUrl")]
    NoCallbackUrl(String),
    #[error("journey {0} has not ended, so it has no callback yet")]
    NotEnded(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("the callback was not queued: {0}")]
    Queue(#[from] EnqueueError),
    /// The shared store cannot be reached: the message says which and that it recovers.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// How a refused journey operation is answered on the wire.
impl From<JourneyError> for crate::wire::ApiError {
    fn from(error: JourneyError) -> Self {
        use crate::wire::ApiError;
        use JourneyError as E;
        match &error {
            E::NotFound(_) => ApiError::journey_not_found(),
            E::Ended { .. } | E::NotEnded(_) | E::NoCallbackUrl(_) => {
                ApiError::conflict(error.to_string())
            }
            E::NotTerminal(_) => ApiError::bad_request(error.to_string()),
            E::Queue(EnqueueError::Full) => {
                // A capacity of the whole mock, not this client's rate: 503, as a provider's
                // gateway answers when it cannot take more, with a hint to come back soon.
                let mut e = ApiError::unavailable(error.to_string());
                e.headers.push(("retry-after", "1".to_string()));
                e
            }
            E::Queue(EnqueueError::Closed) | E::Queue(EnqueueError::Store) => {
                ApiError::unavailable(error.to_string())
            }
            E::Unavailable(message) => {
                let mut e = ApiError::unavailable(message.clone());
                e.headers.push(("retry-after", "1".to_string()));
                e
            }
            E::TooLarge(message) => ApiError::new(
                hyper::StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                message.clone(),
            ),
            E::Internal(detail) => {
                tracing::error!(error = %detail, "journey operation failed");
                ApiError::internal()
            }
        }
    }
}

/// The journeys of one mock instance.
pub struct Journeys {
    store: Arc<dyn JourneyStore>,
    /// The catalogue being served (a hot reload may replace it); read it per operation.
    live: Arc<Live>,
    callbacks: Arc<Dispatcher>,
    pub(super) settings: JourneySettings,
    next_id: AtomicU64,
    me: Weak<Journeys>,
    /// The runtime deadline timers run on: the one the journeys were made in (see the
    /// callback dispatcher's, for why).
    runtime: Option<tokio::runtime::Handle>,
}

/// Tells the store how each callback delivery went.
pub struct StoreObserver(pub Arc<dyn JourneyStore>);

impl DeliveryObserver for StoreObserver {
    fn attempted(&self, journey_id: &str) {
        self.0.update(journey_id, &mut |r| {
            r.callback.attempts += 1;
            true
        });
    }

    fn settled(&self, journey_id: &str, outcome: Settled) {
        self.0.update(journey_id, &mut |r| {
            match outcome {
                Settled::Delivered { .. } => {
                    r.callback.attempts += 1;
                    r.callback.sent = true;
                    r.callback.status = CallbackStatus::Delivered;
                }
                Settled::Failed { .. } => {
                    r.callback.attempts += 1;
                    r.callback.status = CallbackStatus::Failed;
                }
                Settled::Lost => r.callback.status = CallbackStatus::Lost,
            }
            true
        });
    }
}

impl Journeys {
    pub fn new(
        store: Arc<dyn JourneyStore>,
        live: Arc<Live>,
        callbacks: Arc<Dispatcher>,
        settings: JourneySettings,
    ) -> Arc<Journeys> {
        Arc::new_cyclic(|me| Journeys {
            store,
            live,
            callbacks,
            settings,
            next_id: AtomicU64::new(0),
            me: me.clone(),
            runtime: tokio::runtime::Handle::try_current().ok(),
        })
    }

    pub fn callbacks(&self) -> &Arc<Dispatcher> {
        &self.callbacks
    }

    pub fn settings(&self) -> &JourneySettings {
        &self.settings
    }

    /// The catalogue being served now.
    pub(super) fn catalogue(&self) -> Arc<Catalogue> {
        self.live.catalogue()
    }

    /// How many journeys are kept.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the store cannot answer now (a shared store out of reach), if it cannot.
    pub fn unavailable(&self) -> Option<String> {
        self.store.unavailable()
    }

    /// The error for a journey the store did not return: not created here, or (the store
    /// being out of reach) not known.
    fn missing(&self, id: &str) -> JourneyError {
        match self.store.unavailable() {
            Some(message) => JourneyError::Unavailable(message),
            None => JourneyError::NotFound(id.to_string()),
        }
    }

    /// `<public url>/journey/<id>`.
    pub fn journey_url(&self, id: &str) -> String {
        format!("{}/journey/{id}", self.settings.public_url)
    }

    /// A fresh id: drawn from the seed and a counter (so a run with one seed creates the same
    /// ids in the same order), skipping any id already in use.
    fn fresh_id(&self) -> String {
        let mut tries = 0;
        loop {
            let n = self.next_id.fetch_add(1, Ordering::Relaxed);
            let mut rng = person::journey_rng(self.catalogue().seed(), &format!("\u{0}create-{n}"));
            let id = journey_id(&mut rng);
            // Bounded: a shared store out of reach says every id is taken, and the insert
            // then tells the caller why.
            tries += 1;
            if tries > 64 || !self.store.contains(&id) {
                return id;
            }
        }
    }

    /// Create a journey from a checked request, bound to `scenario`.
    pub fn create(
        &self,
        request: CreateRequest,
        scenario: &Scenario,
        bound_by: BoundBy,
        options: CreateOptions,
    ) -> Result<JourneyRecord, JourneyError> {
        let processing_config = request.effective_processing_config();
        let catalogue = self.catalogue();
        let mut attempt = 0;
        loop {
            let id = self.fresh_id();
            let (facts, _) = catalogue.stateless_journey(&id);
            let now = now_millis();
            let record = JourneyRecord {
                flow_id: request.flow_id.clone(),
                db_id: facts.db_id,
                user_id: request.user_id.clone().unwrap_or(facts.user_id),
                processing_config: processing_config.clone(),
                user_info: request.user_info.clone(),
                // The header wins over userInfo.id: it is the tester's word.
                document: request
                    .document
                    .clone()
                    .or_else(|| request.id_family().map(str::to_string)),
                ip_check: request.ip_check,
                callback: CallbackState {
                    delay: options.callback_delay,
                    fault: options.callback_fault.clone(),
                    ..CallbackState::default()
                },
                auto_complete: options.auto_complete,
                ..JourneyRecord::new(id, scenario, bound_by, now)
            };
            // Its callback's capacity is promised now, or the app hears that it cannot be.
            let reserved = record.callback_url().is_some();
            if reserved {
                self.callbacks.reserve(&record.id)?;
            }
            let id = record.id.clone();
            match self.store.insert(record) {
                Ok(record) => {
                    tracing::info!(journey_id = %record.id, scenario = %record.scenario, "journey created");
                    self.arm(&record);
                    return Ok(record);
                }
                Err(e) => {
                    if reserved {
                        self.callbacks.release(&id, None);
                    }
                    match e {
                        // Another create took the id between the check and the insert: draw again.
                        StoreError::Exists(_) if attempt < 8 => attempt += 1,
                        e @ StoreError::TooLarge { .. } => {
                            return Err(JourneyError::TooLarge(e.to_string()))
                        }
                        StoreError::Unavailable(message) => {
                            return Err(JourneyError::Unavailable(message))
                        }
                        e => return Err(JourneyError::Internal(e.to_string())),
                    }
                }
            }
        }
    }

    /// The journey, with any deadline that has passed applied first.
    pub fn get(&self, id: &str) -> Option<JourneyRecord> {
        let mut ended = false;
        let record = self
            .store
            .update(id, &mut |r| match next_due(r, &self.settings.policy) {
                Some((at, due)) if at <= now_millis() => {
                    ended = self.apply(r, due, at);
                    ended
                }
                _ => false,
            })?;
        if ended {
            self.after_end(&record);
        }
        Some(record)
    }

    /// Every journey, oldest first, each brought up to date (read from the store a page at
    /// a time).
    pub fn list(&self) -> Vec<JourneyRecord> {
        self.store
            .list()
            .into_iter()
            .filter_map(|r| self.get(&r.id))
            .collect()
    }

    /// The oldest journeys created after position `after` (0: the first), at most `limit`
    /// and about `max_bytes` of them (always one, if any), each brought up to date; and the
    /// position to read the next page after, on every page but the last.
    pub fn page(
        &self,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> (Vec<JourneyRecord>, Option<u64>) {
        let page = self.store.page(after, limit, max_bytes);
        let records = page
            .records
            .into_iter()
            .filter_map(|r| self.get(&r.id))
            .collect();
        (records, page.next)
    }

    /// The bytes the store's journeys take, by its own weighing.
    pub fn bytes(&self) -> usize {
        self.store.bytes()
    }

    /// The hosted page was opened.
    pub fn open(&self, id: &str) -> Option<JourneyRecord> {
        self.get(id)?;
        let now = now_millis();
        let mut opened = false;
        let record = self.store.update(id, &mut |r| {
            opened = lifecycle::open(r, now);
            opened
        })?;
        if opened {
            tracing::info!(journey_id = %id, "journey opened");
            self.arm(&record);
        }
        Some(record)
    }

    /// End a running journey now: with `scenario` when given (it must be terminal, and
    /// becomes the binding), else with the bound scenario.
    pub fn complete(
        &self,
        id: &str,
        scenario: Option<&Scenario>,
        ending: Ending,
    ) -> Result<JourneyRecord, JourneyError> {
        let current = self.get(id).ok_or_else(|| self.missing(id))?;
        let catalogue = self.catalogue();
        let chosen = match scenario {
            Some(s) => s,
            None => catalogue.find(&current.scenario).ok_or_else(|| {
                JourneyError::Internal(format!("bound scenario {} is gone", current.scenario))
            })?,
        };
        if !chosen.terminal {
            return Err(JourneyError::NotTerminal(chosen.name.clone()));
        }
        let now = now_millis();
        let record = self.update_running(id, |r| {
            if scenario.is_some() && r.scenario != chosen.name {
                r.scenario = chosen.name.clone();
                r.scenario_terminal = true;
                r.bound_by = BoundBy::Completion;
            }
            self.end(r, chosen, ending, now)
        })?;
        tracing::info!(journey_id = %id, scenario = %chosen.name, ending = ?ending, "journey ended");
        self.after_end(&record);
        Ok(record)
    }

    /// Bind `scenario` to a journey (`PUT /__admin/journeys/{id}`). A running journey will end
    /// with it; an id never created becomes a journey that has already ended with it (or, for
    /// a non-terminal scenario, one that is in progress), its flow, user and pre-fill drawn
    /// from the id as a stateless journey's are. Returns the journey and whether it was made.
    pub fn bind(
        &self,
        id: &str,
        scenario: &Scenario,
    ) -> Result<(JourneyRecord, bool), JourneyError> {
        if self.get(id).is_none() {
            let (facts, _) = self.catalogue().stateless_journey(id);
            let now = now_millis();
            let mut record = JourneyRecord {
                flow_id: facts.flow_id,
                flow_version: facts.flow_version,
                db_id: facts.db_id,
                user_id: facts.user_id,
                processing_config: std::sync::Arc::unwrap_or_clone(facts.processing_config),
                user_info: facts.user_info.into_map(),
                ..JourneyRecord::new(id.to_string(), scenario, BoundBy::Admin, now)
            };
            if scenario.terminal {
                self.end(&mut record, scenario, Ending::Admin, now);
            } else {
                lifecycle::open(&mut record, now);
            }
            match self.store.insert(record) {
                Ok(record) => {
                    self.arm(&record);
                    return Ok((record, true));
                }
                Err(StoreError::Exists(_)) => {} // created meanwhile: bind it below
                Err(e @ StoreError::TooLarge { .. }) => {
                    return Err(JourneyError::TooLarge(e.to_string()))
                }
                Err(StoreError::Unavailable(message)) => {
                    return Err(JourneyError::Unavailable(message))
                }
            }
        }
        let record = self.update_running(id, |r| {
            r.scenario = scenario.name.clone();
            r.scenario_terminal = scenario.terminal;
            r.bound_by = BoundBy::Admin;
            true
        })?;
        // The binding may change the next deadline (a non-terminal one never auto-completes).
        self.arm(&record);
        Ok((record, false))
    }

    /// Change a journey that has not ended (`change` says whether it changed anything): the
    /// journey after the change, `NotFound`, or `Ended` (nothing changed).
    fn update_running(
        &self,
        id: &str,
        mut change: impl FnMut(&mut JourneyRecord) -> bool,
    ) -> Result<JourneyRecord, JourneyError> {
        let mut ended = None;
        let record = self
            .store
            .update(id, &mut |r| {
                if r.state.is_terminal() {
                    ended = Some(JourneyError::Ended {
                        id: r.id.clone(),
                        state: r.state.as_str(),
                    });
                    return false;
                }
                change(r)
            })
            .ok_or_else(|| self.missing(id))?;
        match ended {
            Some(error) => Err(error),
            None => Ok(record),
        }
    }

    /// Set (or, with `None`, clear) the callback fault of a journey that has not ended.
    pub fn set_callback_fault(
        &self,
        id: &str,
        fault: Option<CallbackFault>,
    ) -> Result<JourneyRecord, JourneyError> {
        self.get(id).ok_or_else(|| self.missing(id))?;
        self.update_running(id, |r| {
            r.callback.fault = fault.clone();
            true
        })
    }

    /// Queue a new delivery of an ended journey's callback, with the same body and webhook id.
    pub fn redeliver(&self, id: &str) -> Result<u64, JourneyError> {
        let record = self.get(id).ok_or_else(|| self.missing(id))?;
        if !record.state.is_terminal() {
            return Err(JourneyError::NotEnded(id.to_string()));
        }
        if record.callback_url().is_none() {
            return Err(JourneyError::NoCallbackUrl(id.to_string()));
        }
        // A redelivery is QA's way to recover: it is sent as it is, without the callback fault,
        // and needs an intake slot of its own.
        self.dispatch(&record, false)
    }

    /// Forget every journey and callback.
    pub fn reset(&self) {
        self.callbacks.reset();
        self.store.clear();
    }

    /// Apply a due time-based transition inside the store's lock.
    fn apply(&self, r: &mut JourneyRecord, due: Due, at: i64) -> bool {
        match due {
            Due::AutoComplete => match self.catalogue().find(&r.scenario) {
                Some(s) => self.end(r, s, Ending::AutoComplete, at),
                None => false,
            },
            Due::LinkExpiry | Due::SessionExpiry => {
                let name = self.settings.expired_scenario.clone();
                lifecycle::end(r, &name, false, due.ending(), at)
            }
        }
    }

    /// End `r` with `scenario` (completed when its status is `COMPLETED`).
    fn end(&self, r: &mut JourneyRecord, scenario: &Scenario, ending: Ending, at: i64) -> bool {
        lifecycle::end(
            r,
            &scenario.name,
            scenario.status == "COMPLETED",
            ending,
            at,
        )
    }

    /// After a journey ended: its callback, if it has a URL, in the intake slot its creation
    /// reserved.
    fn after_end(&self, record: &JourneyRecord) {
        if record.callback_url().is_some() {
            match self.dispatch(record, true) {
                Ok(_) => {}
                // Logged as undelivered by the dispatcher.
                Err(JourneyError::Queue(_)) => {}
                Err(e) => {
                    tracing::warn!(journey_id = %record.id, error = %e, "callback not queued");
                    self.callbacks.release(&record.id, Some("error"));
                }
            }
        }
    }

    /// With a shared store: apply the deadlines that have come, whichever replica armed
    /// them (one that died never will); the store hands each to one replica. Returns how
    /// many journeys it looked at.
    pub fn sweep(&self) -> usize {
        let due = self.store.due(now_millis(), 256);
        for id in &due {
            // A read applies the deadline, and the one replica whose write wins sends the
            // callback; a deadline that moved (the page was opened) was watched again.
            self.get(id);
        }
        due.len()
    }

    /// Shutdown: end now every running journey whose next deadline (auto-completion, link or
    /// session expiry) falls within `window`, so that its callback is attempted while the
    /// dispatcher drains. Returns how many ended.
    pub fn end_due_within(&self, window: Duration) -> usize {
        if self.callbacks.is_shared() {
            // Shared journeys outlive this replica: the others apply their deadlines (and
            // send their callbacks) on time.
            return 0;
        }
        let now = now_millis();
        let horizon = now.saturating_add(i64::try_from(window.as_millis()).unwrap_or(i64::MAX));
        let mut ended = 0;
        for running in self.store.list() {
            if running.state.is_terminal() {
                continue;
            }
            let mut changed = false;
            let Some(record) = self.store.update(&running.id, &mut |r| {
                changed = match next_due(r, &self.settings.policy) {
                    Some((at, due)) if at <= horizon => self.apply(r, due, at.min(now)),
                    _ => false,
                };
                changed
            }) else {
                continue;
            };
            if changed {
                tracing::info!(journey_id = %record.id, "journey ended early: its deadline falls within the callback drain window");
                self.after_end(&record);
                ended += 1;
            }
        }
        ended
    }

    /// Render the callback body once and queue a delivery of it, with the journey's (or else
    /// its scenario's) callback fault when `with_fault` (a journey's own callback, in the
    /// slot reserved at its creation; else a redelivery, which needs a free slot). Returns
    /// the delivery's number (the first one's, for a duplicate; 0 when the fault dropped it).
    fn dispatch(&self, record: &JourneyRecord, with_fault: bool) -> Result<u64, JourneyError> {
        let url = record
            .callback_url()
            .ok_or_else(|| JourneyError::NoCallbackUrl(record.id.clone()))?
            .to_string();
        let document = self.document(record, true)?;
        let body = serde_json::to_vec(&document)
            .map(Bytes::from)
            .map_err(|e| JourneyError::Internal(e.to_string()))?;
        let catalogue = self.catalogue();
        let scenario = record
            .outcome
            .as_deref()
            .and_then(|name| catalogue.find(name));
        let scenario_delay = scenario.and_then(|s| s.callback_delay);
        let fault = if with_fault {
            record
                .callback
                .fault
                .clone()
                .or_else(|| scenario.and_then(|s| s.callback_fault.clone()))
        } else {
            None
        };
        let delay = record
            .callback
            .delay
            .or(scenario_delay)
            .unwrap_or(self.settings.callback_delay);
        let webhook_id = format!("msg_{}", record.id);
        self.store.update(&record.id, &mut |r| {
            r.callback.status = CallbackStatus::Pending;
            r.callback.webhook_id = Some(webhook_id.clone());
            true
        });
        let fault = fault.unwrap_or_default();
        if fault.drop {
            tracing::info!(journey_id = %record.id, "callback dropped by its fault");
            self.callbacks.drop_by_fault(&record.id);
            return Ok(0);
        }
        let delivery = Delivery {
            journey_id: record.id.clone(),
            url,
            auth_key: record.auth_key().map(str::to_string),
            body,
            delay: delay.saturating_add(fault.delay.unwrap_or_default()),
            webhook_id,
            wrong_auth: fault.wrong_auth,
        };
        let enqueue = |delivery| {
            if with_fault {
                self.callbacks.enqueue_promised(delivery)
            } else {
                self.callbacks.enqueue(delivery)
            }
        };
        let first = if fault.duplicate {
            let first = enqueue(delivery.clone())?;
            self.callbacks.duplicated_by_fault();
            first
        } else {
            0
        };
        let last = enqueue(delivery)?;
        Ok(if first > 0 { first } else { last })
    }

    /// Arm a timer for the journey's next deadline, so that it changes on time even if
    /// nobody reads it (its callback must go out). Reads apply due deadlines too, so a timer
    /// that fires late or not at all changes nothing a client can see.
    fn arm(&self, record: &JourneyRecord) {
        let Some((at, _)) = next_due(record, &self.settings.policy) else {
            return;
        };
        // A shared store keeps it too: if this replica dies, another applies it (`sweep`).
        self.store.watch(&record.id, at);
        let Some(runtime) = self
            .runtime
            .clone()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
        else {
            return;
        };
        let me = self.me.clone();
        let id = record.id.clone();
        runtime.spawn(async move {
            loop {
                let wait = at.saturating_sub(now_millis());
                if wait > 0 {
                    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
                }
                let Some(journeys) = me.upgrade() else {
                    return;
                };
                let Some(record) = journeys.get(&id) else {
                    // Evicted from the store before it ended (or forgotten by a reset): it
                    // will never end, so the slot its callback held is freed and the loss said.
                    journeys.callbacks.release(&id, Some("evicted"));
                    return;
                };
                // Still the same deadline ahead (the wall clock moved back): wait again.
                // Anything else means it was applied, or replaced by another timer's.
                match next_due(&record, &journeys.settings.policy) {
                    Some((next, _)) if next == at && next > now_millis() => continue,
                    _ => return,
                }
            }
        });
    }
}
