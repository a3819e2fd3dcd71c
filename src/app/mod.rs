//! The app: the state every request shares, and the one wrapper that turns what a surface
//! decided ([`Outcome`]) into the response, the journal entry, the metrics and the fault's act
//! (`outcome`).
//!
//! The surfaces above (the provider API in `crate::api`, `crate::admin`, `crate::page`) are
//! plain functions over an [`App`]; the router (`crate::router`) reads a request, hands it to
//! one of them and gives the outcome to [`App::conclude`]. Nothing here knows a path or a
//! header: the app holds the domain (catalogue, journeys, callbacks, journal, faults, metrics,
//! the body cache) and the operations that span several parts of it (render a journey's body
//! through the cache, reset, install a reloaded catalogue).

mod outcome;
mod replicas;

pub use outcome::{Acting, Concluded, Outcome, Trace};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use crate::cache::BodyCache;
use crate::callback::{Dispatcher, Stats};
use crate::catalogue::{Catalogue, Choice};
use crate::config::Config;
use crate::fault::rules::{Planned, Rules};
use crate::fault::Fault;
use crate::inbox::Inbox;
use crate::journal::{Filter, Journal, RecordedRequest, SharedJournal};
use crate::journey::service::{JourneySettings, StoreObserver};
use crate::journey::shared_store::RedisStore;
use crate::journey::{JourneyRecord, JourneyStore, Journeys, MemoryStore};
use crate::live::{Live, Loaded, ScenarioInfo};
use crate::metrics::{ConnectionCounts, Gauges, Metrics};
use crate::render::shadow::Shadow;
use crate::scenario::{Scenario, Selection};
use crate::shared::{Redis, StoreSpec};
use crate::wire::{ApiError, RouteKind, ENVELOPE_OPEN};

/// The state every request shares.
pub struct App {
    config: Config,
    live: Arc<Live>,
    cache: BodyCache,
    journeys: Arc<Journeys>,
    next_request_id: AtomicU64,
    journal: Journal,
    inbox: Inbox,
    faults: Rules,
    metrics: Metrics,
    /// Counted by the server's accept loop, when there is one.
    connections: Arc<ConnectionCounts>,
    stopping: watch::Sender<bool>,
    started: Instant,
    /// `started` as epoch milliseconds: request times are read from the monotonic clock
    /// that also times them, and one clock read is saved per request.
    started_ms: i64,
    /// `--verify-fast-path`: given to every catalogue served, so its counts outlive reloads.
    shadow: Option<Arc<Shadow>>,
    /// `--store redis://…`: the Redis that replicas share.
    redis: Option<Arc<Redis>>,
    /// With it, the journal of every replica (this one's own is kept too).
    shared_journal: Option<SharedJournal>,
    /// The last reset epoch this replica has acted on (see `replicas`).
    synced_epoch: AtomicU64,
}

/// The Redis of `--store`, if it names one. Its URL was checked at start-up
/// (`shared::check`); should the client still refuse it, the mock runs on its own memory
/// and says so.
fn shared_redis(spec: &StoreSpec) -> Option<Arc<Redis>> {
    let StoreSpec::Redis(url) = spec else {
        return None;
    };
    match Redis::new(url) {
        Ok(redis) => Some(Arc::new(redis)),
        Err(e) => {
            tracing::error!(error = %e, "--store: the Redis client refused the URL; serving from memory alone");
            None
        }
    }
}

impl App {
    /// The app for `config`; `journeyUrl`s start with `config.public_url`, or with
    /// `http://<config.bind>` when it is not set (the server sets it from the bound address).
    pub fn new(config: Config, mut catalogue: Catalogue) -> Self {
        warn_missing_lifecycle_scenarios(&config, &catalogue);
        let shadow = Shadow::new(config.verify_fast_path).map(Arc::new);
        catalogue.set_shadow(shadow.clone());
        let metrics = Metrics::default();
        let live = Arc::new(Live::new(catalogue, &metrics));
        let redis = shared_redis(&config.store);
        let store: Arc<dyn JourneyStore> = match &redis {
            Some(redis) => Arc::new(RedisStore::new(
                redis.clone(),
                config.max_journeys,
                config.journey_bytes,
            )),
            None => Arc::new(MemoryStore::new(config.max_journeys, config.journey_bytes)),
        };
        let callbacks = Arc::new(Dispatcher::new(
            config.callbacks.clone(),
            Arc::new(StoreObserver(store.clone())),
            redis.clone(),
        ));
        callbacks.start_shared();
        let journeys = Journeys::new(
            store,
            live.clone(),
            callbacks,
            JourneySettings {
                policy: crate::journey::lifecycle::Policy {
                    auto_complete_after: config.auto_complete_after,
                },
                in_progress_scenario: config.in_progress_scenario.clone(),
                expired_scenario: config.expired_scenario.clone(),
                public_url: config.public_base(config.bind),
                callback_delay: config.callbacks.delay,
            },
        );
        App {
            synced_epoch: AtomicU64::new(0),
            shared_journal: redis
                .as_ref()
                .map(|r| SharedJournal::new(r.clone(), config.journal_entries)),
            redis,
            shadow,
            cache: BodyCache::with_budget(config.cache_entries, config.cache_bytes),
            journal: Journal::new(config.journal_entries, config.journal_bytes),
            inbox: Inbox::default(),
            faults: Rules::new(config.seed),
            metrics,
            connections: Arc::default(),
            live,
            journeys,
            next_request_id: AtomicU64::new(1),
            stopping: watch::channel(false).0,
            started: Instant::now(),
            started_ms: crate::time::now_millis(),
            config,
        }
    }

    /// The Redis replicas share (`--store redis://…`), if any.
    pub fn redis(&self) -> Option<&Arc<Redis>> {
        self.redis.as_ref()
    }

    pub fn journeys(&self) -> &Arc<Journeys> {
        &self.journeys
    }

    pub fn callbacks(&self) -> &Arc<Dispatcher> {
        self.journeys.callbacks()
    }

    /// Callback counters (created, delivered, failed, cancelled, pending...).
    pub fn callback_stats(&self) -> Stats {
        self.callbacks().stats()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalogue being served now (a hot reload may replace it at any time).
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.live.catalogue()
    }

    /// The catalogue being served now, with its generation and per-scenario state.
    pub fn live(&self) -> &Live {
        &self.live
    }

    /// The body cache (tests look at how full it is).
    #[doc(hidden)]
    pub fn cache(&self) -> &BodyCache {
        &self.cache
    }

    /// Connections open, refused and so on, for the server to count and metrics to show.
    pub fn connection_counts(&self) -> &Arc<ConnectionCounts> {
        &self.connections
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal's entries that `filter` accepts, oldest first (`GET /__admin/requests`);
    /// with a shared store, every replica's.
    pub fn requests(&self, filter: &Filter) -> Vec<RecordedRequest> {
        let names = self.metrics.scenario_names();
        match self.shared_view(&names) {
            Some(journal) => journal.query(filter, &names),
            None => self.journal.query(filter, &names),
        }
    }

    /// One page of the journal's entries that `filter` accepts: the oldest `limit` with ids
    /// above `after` (`GET /__admin/requests`).
    pub fn requests_page(&self, filter: &Filter, after: u64, limit: usize) -> crate::journal::Page {
        let names = self.metrics.scenario_names();
        match self.shared_view(&names) {
            Some(journal) => journal.page(filter, after, limit, &names),
            None => self.journal.page(filter, after, limit, &names),
        }
    }

    /// How many journal entries `filter` accepts (`POST /__admin/requests/count`).
    pub fn request_count(&self, filter: &Filter) -> usize {
        let names = self.metrics.scenario_names();
        match self.shared_view(&names) {
            Some(journal) => journal.count(filter, &names),
            None => self.journal.count(filter, &names),
        }
    }

    /// `DELETE /__admin/requests`: forget the journal (every replica's, when shared); how
    /// many entries this replica held.
    pub fn clear_journal(&self) -> usize {
        if let Some(shared) = &self.shared_journal {
            shared.clear();
        }
        self.journal.clear()
    }

    /// Every replica's journal, read now; `None` with the memory store, or when Redis is
    /// away (the admin API answers 503 then; the library falls back to this replica's).
    fn shared_view(&self, names: &[Arc<str>]) -> Option<Journal> {
        let shared = self.shared_journal.as_ref()?;
        match shared.read(self.config.journal_bytes, names) {
            Ok(journal) => Some(journal),
            Err(e) => {
                tracing::warn!(error = %e, "the shared journal cannot be read: this replica's own answers");
                None
            }
        }
    }

    /// The callback inbox (`/__admin/inbox/{name}`).
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    pub fn faults(&self) -> &Rules {
        &self.faults
    }

    /// A number for the next request's log span.
    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Epoch milliseconds at `at` (an instant of this run).
    fn millis_at(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.started).as_millis();
        self.started_ms
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }

    /// How long the app has been up.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Changes to `true` when the server begins to shut down.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Tell held requests (delays, hangs) and the watcher that the server is stopping.
    pub fn begin_shutdown(&self) {
        self.stopping.send_replace(true);
    }

    /// Pick the scenario of `catalogue` for a journey read by id: prefix, header, default (or
    /// 404 under `--strict`).
    pub fn select<'c>(
        &self,
        catalogue: &'c Catalogue,
        journey_id: &str,
        header: Option<&str>,
    ) -> Result<(&'c Scenario, Selection), ApiError> {
        let from_header = match header {
            Some(name) => Some(named_scenario(catalogue, name, "X-Mock-Scenario")?),
            None => None,
        };
        if let Some(s) = catalogue.by_prefix(journey_id) {
            return Ok((s, Selection::Prefix));
        }
        if let Some(s) = from_header {
            return Ok((s, Selection::Header));
        }
        if self.config.strict {
            return Err(ApiError::journey_not_found());
        }
        self.default_scenario(catalogue)
            .map(|s| (s, Selection::Default))
    }

    /// `--default-scenario` in `catalogue` (every catalogue served has it: start-up and
    /// reloads refuse one without it).
    pub fn default_scenario<'c>(&self, catalogue: &'c Catalogue) -> Result<&'c Scenario, ApiError> {
        catalogue.find(&self.config.default_scenario).ok_or_else(|| {
            tracing::error!(scenario = %self.config.default_scenario, "the default scenario is not in the catalogue");
            ApiError::internal()
        })
    }

    /// The `{"result": …}` body of a journey known only by id, rendered with the catalogue
    /// being served now: from the cache, or rendered and cached.
    pub fn stateless_body(&self, scenario: &Scenario, id: &str) -> Result<Bytes, ApiError> {
        self.stateless_body_in(&self.live.load(), scenario, id, Choice::default())
    }

    /// [`App::stateless_body`] with the catalogue a request already holds.
    pub fn stateless_body_in(
        &self,
        loaded: &Loaded,
        scenario: &Scenario,
        id: &str,
        choice: Choice<'_>,
    ) -> Result<Bytes, ApiError> {
        // A request that chooses the document or the IP check is rendered for itself: the
        // cache keeps what the id alone gives.
        let cached = choice.document.is_none() && choice.ip_check.is_none();
        let variant = generation_variant(variant_of(&scenario.name), loaded.generation);
        if cached {
            if let Some(body) = self.cache.get(id, variant) {
                return Ok(body);
            }
        }
        // The document is rendered straight into its envelope: one buffer, no copy.
        let mut out = Vec::with_capacity(9 * 1024);
        out.extend_from_slice(ENVELOPE_OPEN);
        loaded
            .catalogue
            .stateless_into(scenario, id, choice, &mut out)
            .map_err(|e| {
                tracing::error!(error = %e, scenario = %scenario.name, "render failed");
                ApiError::internal()
            })?;
        out.push(b'}');
        let body = Bytes::from(out);
        if cached {
            self.cache.insert(id, variant, body.clone());
        }
        Ok(body)
    }

    /// The `{"result": …}` body of a created journey, cached under its revision, which changes
    /// with every change of the journey (state, binding, `callbackSent`), so nothing stale is
    /// ever served.
    pub fn journey_body(&self, record: &JourneyRecord) -> Result<Bytes, ApiError> {
        self.journey_body_in(&self.live.load(), record, Choice::default())
    }

    /// [`App::journey_body`] with the catalogue a request already holds.
    pub fn journey_body_in(
        &self,
        loaded: &Loaded,
        record: &JourneyRecord,
        choice: Choice<'_>,
    ) -> Result<Bytes, ApiError> {
        let cached = choice.document.is_none() && choice.ip_check.is_none();
        let variant = generation_variant((1u64 << 63) | record.revision, loaded.generation);
        if cached {
            if let Some(body) = self.cache.get(&record.id, variant) {
                return Ok(body);
            }
        }
        // Into its envelope, as a stateless journey's body is.
        let mut out = Vec::with_capacity(9 * 1024);
        out.extend_from_slice(ENVELOPE_OPEN);
        self.journeys.document_into(record, choice, &mut out)?;
        out.push(b'}');
        let body = Bytes::from(out);
        if cached {
            self.cache.insert(&record.id, variant, body.clone());
        }
        Ok(body)
    }

    /// The fault for a provider request that passed its checks: the header's, an admin
    /// rule's, or (get-journey) the scenario's.
    pub fn decide(
        &self,
        header: Option<Fault>,
        route: RouteKind,
        journey_id: Option<&str>,
        scenario: Option<&ScenarioInfo>,
    ) -> Option<Planned> {
        if let Some(fault) = header {
            return Some(self.faults.header(fault));
        }
        if let Some(planned) = self.faults.pick(route, journey_id) {
            return Some(planned);
        }
        if route == RouteKind::GetJourney {
            return scenario?.fault.as_ref()?.pick();
        }
        None
    }

    /// Forget every created journey, callback, cached body, journal entry, fault rule and
    /// inbox (`POST /__admin/reset`).
    pub fn reset(&self) {
        self.journeys.reset();
        self.cache.clear();
        self.journal.clear();
        self.faults.clear();
        self.inbox.reset();
        if let Some(shared) = &self.shared_journal {
            shared.clear();
        }
        self.reset_shared();
    }

    /// Serve `catalogue` from now on (a hot reload). Cached bodies of the old catalogue are
    /// dropped, and its generation is no longer part of any cache key a request asks for.
    pub fn install(&self, mut catalogue: Catalogue) {
        if let Err(message) = check_catalogue(&self.config, &catalogue) {
            self.reload_failed(format!("the new catalogue cannot be served: {message}"));
            return;
        }
        warn_missing_lifecycle_scenarios(&self.config, &catalogue);
        catalogue.set_shadow(self.shadow.clone());
        let scenarios = catalogue.scenarios().len();
        let generation = self.live.swap(catalogue, &self.metrics);
        self.cache.clear();
        self.metrics.reload(true);
        tracing::info!(scenarios, generation, "catalogue reloaded");
    }

    /// A reload did not give a catalogue: keep serving the last good one, and say why.
    pub fn reload_failed(&self, message: String) {
        tracing::warn!(
            "catalogue reload failed; still serving the last good catalogue: {}",
            message.trim_end()
        );
        self.metrics.reload(false);
        self.live.failed(message);
    }

    /// The metrics text for `GET /__admin/metrics`.
    pub fn metrics_text(&self) -> String {
        let stats = self.callbacks().stats();
        let faults = self.callbacks().fault_stats();
        self.metrics.render(&Gauges {
            callbacks_created: stats.created,
            callbacks_delivered: stats.delivered,
            callbacks_failed: stats.failed,
            callbacks_cancelled: stats.cancelled,
            callbacks_refused: stats.refused,
            callbacks_undelivered: stats.undelivered,
            callbacks_fault_dropped: faults.dropped,
            callbacks_duplicated: faults.duplicated,
            callback_queue_depth: stats.reserved + stats.queued,
            callback_queue_capacity: stats.capacity,
            callback_retrying: stats.retrying,
            callback_retry_capacity: stats.retry_capacity,
            scenarios: self.live.load().catalogue.scenarios().len(),
            journeys: self.journeys.len(),
            journal_entries: self.journal.len(),
            connections: self.connections.read(),
            fast_path_checks: self.shadow.as_ref().map_or(0, |s| s.checks()),
            fast_path_differences: self.shadow.as_ref().map_or(0, |s| s.differences()),
        })
    }

    /// Hold a request for `d` (at most `--fault-max-wait`), or until shutdown begins.
    async fn hold(&self, d: Duration) {
        let mut stopping = self.stopping.subscribe();
        if *stopping.borrow_and_update() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(d.min(self.config.fault_max_wait)) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Whether `catalogue` can be served with `config`: it must have the default scenario (the
/// in-progress and expired ones are only warned about). `serve`, the library and reloads
/// all ask this.
pub fn check_catalogue(config: &Config, catalogue: &Catalogue) -> Result<(), String> {
    if catalogue.find(&config.default_scenario).is_none() {
        return Err(format!(
            "--default-scenario {:?} is not in the catalogue; known scenarios: {}",
            config.default_scenario,
            catalogue.names().join(", ")
        ));
    }
    Ok(())
}

fn warn_missing_lifecycle_scenarios(config: &Config, catalogue: &Catalogue) {
    // Not a lifecycle matter, but checked at the same two moments (start-up and reloads): a
    // scenario's callback delay over --callback-max-delay is cut to it, and said once here.
    let max = config.callbacks.max_delay;
    for scenario in catalogue.scenarios() {
        let fault_delay = scenario.callback_fault.as_ref().and_then(|f| f.delay);
        for delay in [scenario.callback_delay, fault_delay].into_iter().flatten() {
            if let Err(message) = crate::callback::check_delay(delay, max, &scenario.name) {
                tracing::warn!(scenario = %scenario.name, "callback delay cut to the maximum: {message}");
            }
        }
    }
    for warning in lifecycle_warnings(config, catalogue) {
        tracing::warn!("{warning}");
    }
}

/// What `serve` warns about but serves anyway (and `validate` prints): an in-progress or
/// expired scenario the catalogue lacks.
pub fn lifecycle_warnings(config: &Config, catalogue: &Catalogue) -> Vec<String> {
    [
        ("--in-progress-scenario", &config.in_progress_scenario),
        ("--expired-scenario", &config.expired_scenario),
    ]
    .into_iter()
    .filter(|(_, name)| catalogue.find(name).is_none())
    .map(|(flag, name)| {
        format!("{flag} {name:?} names no scenario of the catalogue; such journeys render their bound scenario with the status patched")
    })
    .collect()
}

/// The scenario of `catalogue` named `name` for a request, or a 400 listing the known ones.
pub fn named_scenario<'c>(
    catalogue: &'c Catalogue,
    name: &str,
    origin: &str,
) -> Result<&'c Scenario, ApiError> {
    catalogue.find(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{origin} names no scenario: {name:?}; known scenarios: {}",
            catalogue.names().join(", ")
        ))
    })
}

/// A cache variant of one catalogue generation: a reload changes every key, so a body
/// rendered from an old catalogue is never found again.
fn generation_variant(variant: u64, generation: u64) -> u64 {
    variant
        ^ generation
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(17)
}

/// A stable number for a cache variant name.
fn variant_of(name: &str) -> u64 {
    crate::hash::fnv64(name.as_bytes())
}
