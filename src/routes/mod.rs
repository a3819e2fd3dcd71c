//! The provider surface: the routes an app under test calls, as the provider answers them,
//! and the dispatch of everything else to the hosted journey page ([`crate::page`],
//! `/journey/…`) and the admin API ([`crate::admin`], `/__admin/…`).
//!
//! Order of checks for every provider request: route (404), method (405), `Authorization`
//! (401), body size (413), then the route's own work. Errors become responses only in
//! [`App::respond`], through [`ApiError::into_response`].
//!
//! Scenario selection for get-journey, first match wins: the journey's binding (a journey
//! created here or bound through the admin API), the journey-id prefix, `X-Mock-Scenario`,
//! the default (or 404 under `--strict`).
//!
//! Every provider request (anything outside `/__admin/` and `/journey/`) is recorded in the
//! [`Journal`] and counted in the [`Metrics`] before its answer is handed to hyper
//! (`control.rs`, which also applies faults and swaps the catalogue on reload). A fault
//! ([`crate::fault`]) is decided only once the request has passed every check and its
//! scenario is known, so a fault never hides a mistake in the request: a `status:` fault
//! answers instead of the work (nothing is created), every other outcome spoils the answer
//! of work that was done (a create-journey-url call did create its journey).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use tokio::sync::watch;
use tracing::Instrument;

mod control;

use control::{callback_fault_header, fault_header, Note};

use crate::cache::BodyCache;
use crate::callback::{Dispatcher, Stats};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::error::{ApiError, JSON_UTF8_VALUE};
use crate::fault::rules::Rules;
use crate::fault::{CallbackFault, Fault};
use crate::journal::{Journal, RouteKind, ShortStr};
use crate::journey::create;
use crate::journey::record::BoundBy;
use crate::journey::service::{JourneySettings, StoreObserver};
use crate::journey::{JourneyRecord, JourneyStore, Journeys, MemoryStore};
use crate::live::{Live, Loaded};
use crate::metrics::Metrics;
use crate::scenario::{Scenario, Selection};
use crate::server::{full, Body, Connection};

/// The path prefix of every provider route.
pub const API_PREFIX: &str = "/api/v3/otk-service/";
// Header names as `HeaderName`s: a lookup by `&str` parses and checks the name every time.
/// The header QA and tests use to choose a scenario for one request.
pub const SCENARIO_HEADER: HeaderName = HeaderName::from_static("x-mock-scenario");
/// The header of a create call that sets that journey's callback delay.
pub const CALLBACK_DELAY_HEADER: HeaderName = HeaderName::from_static("x-mock-callback-delay");
/// The header that injects a fault into one provider request (see [`crate::fault`]).
pub const FAULT_HEADER: HeaderName = HeaderName::from_static("x-mock-fault");
/// The header of a create call that sets that journey's callback fault.
pub const CALLBACK_FAULT_HEADER: HeaderName = HeaderName::from_static("x-mock-callback-fault");

/// The state every request handler shares.
pub struct App {
    config: Config,
    live: Arc<Live>,
    cache: BodyCache,
    journeys: Arc<Journeys>,
    next_request_id: AtomicU64,
    journal: Journal,
    faults: Rules,
    metrics: Metrics,
    stopping: watch::Sender<bool>,
    started: Instant,
    /// `started` as epoch milliseconds: request times are read from the monotonic clock
    /// that also times them, and one clock read is saved per request.
    started_ms: i64,
}

/// One request's answer: ready now, or the work still to do (which owns what it needs, so
/// that the request can be answered, or handed on, while hyper still holds its head).
pub enum Answer {
    Now(Response<Body>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

/// What a provider request asks (see [`App::provider_call`]).
enum Call {
    Create {
        header: Option<String>,
        delay: Option<Duration>,
        fault: Option<Fault>,
        callback_fault: Option<CallbackFault>,
    },
    Get {
        header: Option<String>,
        fault: Option<Fault>,
    },
}

/// The request's span gets its status and latency (when debug logging is on).
fn finish(response: Response<Body>, span: &tracing::Span, started: Instant) -> Response<Body> {
    if !span.is_disabled() {
        span.record("status", response.status().as_u16());
        span.record("latency_us", started.elapsed().as_micros() as u64);
        tracing::debug!(parent: span, "answered");
    }
    response
}

/// Where a request is going, once its path has been read.
enum Surface<'a> {
    Admin,
    Page,
    Provider(RouteKind, Option<&'a str>),
}

fn surface(path: &str) -> Surface<'_> {
    if path.starts_with(crate::admin::PREFIX) {
        return Surface::Admin;
    }
    if path.starts_with(crate::page::PREFIX) {
        return Surface::Page;
    }
    if path.strip_prefix(API_PREFIX) == Some("create-journey-url") {
        return Surface::Provider(RouteKind::CreateJourneyUrl, None);
    }
    match journey_id_of(path) {
        Some(id) => Surface::Provider(RouteKind::GetJourney, Some(id)),
        None => Surface::Provider(RouteKind::Other, None),
    }
}

/// The journey id of a get-journey path.
fn journey_id_of(path: &str) -> Option<&str> {
    path.strip_prefix(API_PREFIX)?
        .strip_prefix("get-journey/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

impl App {
    /// The app for `config`; `journeyUrl`s start with `config.public_url`, or with
    /// `http://<config.bind>` when it is not set (the server sets it from the bound address).
    pub fn new(config: Config, catalogue: Catalogue) -> Self {
        warn_missing_lifecycle_scenarios(&config, &catalogue);
        let metrics = Metrics::default();
        let live = Arc::new(Live::new(catalogue, &metrics));
        let store: Arc<dyn JourneyStore> = Arc::new(MemoryStore::new(config.max_journeys));
        let callbacks = Arc::new(Dispatcher::new(
            config.callbacks.clone(),
            Arc::new(StoreObserver(store.clone())),
        ));
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
            cache: BodyCache::new(config.cache_entries),
            journal: Journal::new(config.journal_entries),
            faults: Rules::new(config.seed),
            metrics,
            live,
            journeys,
            next_request_id: AtomicU64::new(1),
            stopping: watch::channel(false).0,
            started: Instant::now(),
            started_ms: crate::time::now_millis(),
            config,
        }
    }

    pub fn journeys(&self) -> &Arc<Journeys> {
        &self.journeys
    }

    pub fn callbacks(&self) -> &Arc<Dispatcher> {
        self.journeys.callbacks()
    }

    /// Callback counters (pending, delivered, failed, dropped, undelivered).
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

    pub fn cache(&self) -> &BodyCache {
        &self.cache
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The journal's entries that `filter` accepts, oldest first (`GET /__admin/requests`).
    pub fn requests(&self, filter: &crate::journal::Filter) -> Vec<serde_json::Value> {
        self.journal.query(filter, &self.metrics.scenario_names())
    }

    /// How many journal entries `filter` accepts (`POST /__admin/requests/count`).
    pub fn request_count(&self, filter: &crate::journal::Filter) -> usize {
        self.journal.count(filter, &self.metrics.scenario_names())
    }

    pub fn faults(&self) -> &Rules {
        &self.faults
    }

    /// How long the app has been up.
    /// Epoch milliseconds at `at` (an instant of this run).
    fn millis_at(&self, at: Instant) -> i64 {
        let since = at.saturating_duration_since(self.started).as_millis();
        self.started_ms
            .saturating_add(i64::try_from(since).unwrap_or(i64::MAX))
    }

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

    /// Answer one request on `conn`. Never fails: every error is a response in the provider's
    /// format (or, for a connection fault, the connection ends without one).
    ///
    /// A provider request with no body to read and no fault to act out (the hot path) is
    /// answered here and now, with no future of its own: whatever a request's future holds,
    /// hyper moves it, whole, and a future able to hold every path was kilobytes.
    pub fn respond(self: &Arc<Self>, request: Request<Incoming>, conn: &Arc<Connection>) -> Answer {
        let started = Instant::now();
        let span = tracing::debug_span!(
            "request",
            id = self.next_request_id.fetch_add(1, Ordering::Relaxed),
            method = %request.method(),
            path = %request.uri().path(),
            scenario = tracing::field::Empty,
            status = tracing::field::Empty,
            latency_us = tracing::field::Empty,
        );
        match surface(request.uri().path()) {
            surface @ (Surface::Admin | Surface::Page) => {
                let admin = matches!(surface, Surface::Admin);
                let app = Arc::clone(self);
                Answer::Later(Box::pin(async move {
                    let answer = if admin {
                        crate::admin::route(&app, request)
                            .instrument(span.clone())
                            .await
                    } else {
                        crate::page::route(&app, request)
                            .instrument(span.clone())
                            .await
                    };
                    finish(app.answer(answer, &span, false), &span, started)
                }))
            }
            Surface::Provider(route, journey_id) => {
                let note = Note {
                    route,
                    journey_id: journey_id.map(ShortStr::new),
                    scenario: None,
                    selection: None,
                    fault: None,
                };
                self.provider(request, note, started, span, conn)
            }
        }
    }

    /// [`App::respond`], awaited.
    pub async fn handle(
        self: &Arc<Self>,
        request: Request<Incoming>,
        conn: &Arc<Connection>,
    ) -> Response<Body> {
        match self.respond(request, conn) {
            Answer::Now(response) => response,
            Answer::Later(later) => later.await,
        }
    }

    fn answer(
        &self,
        answer: Result<Response<Body>, ApiError>,
        span: &tracing::Span,
        injected: bool,
    ) -> Response<Body> {
        match answer {
            Ok(response) => response,
            Err(error) => {
                if error.status.is_server_error() && !injected {
                    tracing::warn!(parent: span, %error, "request failed");
                }
                error.into_response()
            }
        }
    }

    /// What a provider request asks, read from its head once it has passed the checks that
    /// come before its body is read: route (404), method (405), `Authorization` (401), and
    /// the `X-Mock-*` headers (400).
    fn provider_call(&self, request: &Request<Incoming>, note: &Note) -> Result<Call, ApiError> {
        match note.route {
            RouteKind::Other => Err(ApiError::route_not_found(
                request.method(),
                request.uri().path(),
            )),
            RouteKind::CreateJourneyUrl => {
                if *request.method() != Method::POST {
                    return Err(ApiError::method_not_allowed(request.method(), "POST"));
                }
                self.authorize(request)?;
                if !has_mock_headers(request) {
                    return Ok(Call::Create {
                        header: None,
                        delay: None,
                        fault: None,
                        callback_fault: None,
                    });
                }
                Ok(Call::Create {
                    header: scenario_header(request)?,
                    delay: callback_delay_header(request)?,
                    fault: fault_header(request)?,
                    callback_fault: callback_fault_header(request)?,
                })
            }
            RouteKind::GetJourney => {
                if !matches!(*request.method(), Method::POST | Method::GET) {
                    return Err(ApiError::method_not_allowed(request.method(), "GET, POST"));
                }
                self.authorize(request)?;
                if !has_mock_headers(request) {
                    return Ok(Call::Get {
                        header: None,
                        fault: None,
                    });
                }
                Ok(Call::Get {
                    header: scenario_header(request)?,
                    fault: fault_header(request)?,
                })
            }
        }
    }

    /// The route's own work, once the body is read.
    fn provider_work(
        &self,
        call: Call,
        path: &str,
        body: &[u8],
        note: &mut Note,
    ) -> Result<Response<Body>, ApiError> {
        match call {
            Call::Create {
                header,
                delay,
                fault,
                callback_fault,
            } => self.create_journey(body, header.as_deref(), delay, callback_fault, fault, note),
            Call::Get { header, fault } => {
                let id = journey_id_of(path).unwrap_or_default();
                self.get_journey(id, header.as_deref(), fault, note)
            }
        }
    }

    fn authorize<B>(&self, request: &Request<B>) -> Result<(), ApiError> {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or("");
        if self.config.accepts(token) {
            Ok(())
        } else {
            Err(ApiError::unauthorized())
        }
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

    fn create_journey(
        &self,
        body: &[u8],
        header: Option<&str>,
        callback_delay: Option<Duration>,
        callback_fault: Option<CallbackFault>,
        fault: Option<Fault>,
        note: &mut Note,
    ) -> Result<Response<Body>, ApiError> {
        let request = create::parse(body).map_err(|e| ApiError::bad_request(e.0))?;
        let loaded = self.live.load();
        let catalogue = &*loaded.catalogue;
        let (scenario, bound_by) = match (header, request.scenario_reference()) {
            (Some(name), _) => (
                named_scenario(catalogue, name, "X-Mock-Scenario")?,
                BoundBy::Header,
            ),
            (None, Some(name)) => (
                named_scenario(catalogue, name, "userInfo.externalReferenceId")?,
                BoundBy::ExternalReferenceId,
            ),
            (None, None) => (self.default_scenario(catalogue)?, BoundBy::Default),
        };
        record_scenario(scenario.name.as_str());
        note.scenario = loaded.info(scenario).and_then(|i| i.key);
        note.selection = Some(match bound_by {
            BoundBy::Header => "header",
            BoundBy::ExternalReferenceId => "external_reference_id",
            _ => "default",
        });
        note.fault = self.decide(fault, note.route, None, None);
        note.fault_status()?;
        let record =
            self.journeys
                .create(request, scenario, bound_by, callback_delay, callback_fault)?;
        note.journey_id = Some(ShortStr::new(&record.id));
        let answer = serde_json::json!({
            "flow": {
                "flowId": record.flow_id,
                "version": record.flow_version,
                "test": record.flow_test,
            },
            "result": {
                "journeyId": record.id,
                "journeyUrl": self.journeys.journey_url(&record.id),
                "createdAt": record.created_at,
                "ttl": create::ttl(record.link_validity_ms() as f64 / 1000.0),
            }
        });
        Ok(json_value_response(hyper::StatusCode::OK, &answer))
    }

    fn default_scenario<'c>(&self, catalogue: &'c Catalogue) -> Result<&'c Scenario, ApiError> {
        catalogue.find(&self.config.default_scenario).ok_or_else(|| {
            tracing::error!(scenario = %self.config.default_scenario, "the default scenario is not in the catalogue");
            ApiError::internal()
        })
    }

    fn get_journey(
        &self,
        id: &str,
        header: Option<&str>,
        fault: Option<Fault>,
        note: &mut Note,
    ) -> Result<Response<Body>, ApiError> {
        let loaded = self.live.load();
        if let Some(record) = self.journeys.get(id) {
            record_scenario(record.scenario.as_str());
            tracing::debug!(selection = Selection::Binding.as_str(), "scenario selected");
            let info = loaded.info_by_name(&record.scenario);
            note.scenario = info.and_then(|i| i.key);
            note.selection = Some(Selection::Binding.as_str());
            note.fault = self.decide(fault, note.route, Some(id), info);
            note.fault_status()?;
            return Ok(json_response(self.journey_body_in(&loaded, &record)?));
        }
        let (scenario, selection) = self.select(&loaded.catalogue, id, header)?;
        record_scenario(scenario.name.as_str());
        tracing::debug!(selection = selection.as_str(), "scenario selected");
        let info = loaded.info(scenario);
        note.scenario = info.and_then(|i| i.key);
        note.selection = Some(selection.as_str());
        note.fault = self.decide(fault, note.route, Some(id), info);
        note.fault_status()?;
        let body = self.stateless_body_in(&loaded, scenario, id)?;
        Ok(json_response(body))
    }

    /// The `{"result": …}` body of a journey known only by id, rendered with the catalogue
    /// being served now: from the cache, or rendered and cached.
    pub fn stateless_body(&self, scenario: &Scenario, id: &str) -> Result<Bytes, ApiError> {
        self.stateless_body_in(&self.live.load(), scenario, id)
    }

    fn stateless_body_in(
        &self,
        loaded: &Loaded,
        scenario: &Scenario,
        id: &str,
    ) -> Result<Bytes, ApiError> {
        let variant = generation_variant(variant_of(&scenario.name), loaded.generation);
        if let Some(body) = self.cache.get(id, variant) {
            return Ok(body);
        }
        // The document is rendered straight into its envelope: one buffer, no copy.
        let mut out = Vec::with_capacity(9 * 1024);
        out.extend_from_slice(ENVELOPE_OPEN);
        loaded
            .catalogue
            .stateless_into(scenario, id, &mut out)
            .map_err(|e| {
                tracing::error!(error = %e, scenario = %scenario.name, "render failed");
                ApiError::internal()
            })?;
        out.push(b'}');
        let body = Bytes::from(out);
        self.cache.insert(id, variant, body.clone());
        Ok(body)
    }
}

impl App {
    /// The `{"result": …}` body of a created journey, cached under its revision, which changes
    /// with every change of the journey (state, binding, `callbackSent`), so nothing stale is
    /// ever served.
    pub fn journey_body(&self, record: &JourneyRecord) -> Result<Bytes, ApiError> {
        self.journey_body_in(&self.live.load(), record)
    }

    fn journey_body_in(&self, loaded: &Loaded, record: &JourneyRecord) -> Result<Bytes, ApiError> {
        let variant = generation_variant((1u64 << 63) | record.revision, loaded.generation);
        if let Some(body) = self.cache.get(&record.id, variant) {
            return Ok(body);
        }
        let document = self.journeys.document(record, false)?;
        let body = envelope(&document)?;
        self.cache.insert(&record.id, variant, body.clone());
        Ok(body)
    }

    /// Forget every created journey, callback, cached body, journal entry and fault rule
    /// (`POST /__admin/reset`).
    pub fn reset(&self) {
        self.journeys.reset();
        self.cache.clear();
        self.journal.clear();
        self.faults.clear();
    }
}

fn warn_missing_lifecycle_scenarios(config: &Config, catalogue: &Catalogue) {
    for (flag, name) in [
        ("--in-progress-scenario", &config.in_progress_scenario),
        ("--expired-scenario", &config.expired_scenario),
    ] {
        if catalogue.find(name).is_none() {
            tracing::warn!(scenario = %name, "{flag} names no scenario of the catalogue; such journeys render their bound scenario with the status patched");
        }
    }
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

/// A JSON response with `status` for a value.
pub fn json_value_response(status: hyper::StatusCode, value: &serde_json::Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = json_response(Bytes::from(body));
    *response.status_mut() = status;
    response
}

/// `X-Mock-Callback-Delay` of a create call, by the crate's one duration rule.
fn callback_delay_header<B>(request: &Request<B>) -> Result<Option<Duration>, ApiError> {
    let Some(value) = request.headers().get(&CALLBACK_DELAY_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Mock-Callback-Delay must be visible ASCII"))?;
    crate::time::parse_duration(text)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("X-Mock-Callback-Delay: {e}")))
}

/// `{"result": document}` as bytes.
pub fn envelope(document: &serde_json::Value) -> Result<Bytes, ApiError> {
    let mut out = Vec::with_capacity(8 * 1024);
    out.extend_from_slice(br#"{"result":"#);
    serde_json::to_writer(&mut out, document).map_err(|e| {
        tracing::error!(error = %e, "cannot serialize a document");
        ApiError::internal()
    })?;
    out.push(b'}');
    Ok(Bytes::from(out))
}

/// What opens a get-journey body; `}` closes it.
const ENVELOPE_OPEN: &[u8] = br#"{"result":"#;

/// `{"result": document}` around an already serialized document.
pub fn envelope_bytes(document: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(document.len() + 11);
    out.extend_from_slice(ENVELOPE_OPEN);
    out.extend_from_slice(document);
    out.push(b'}');
    Bytes::from(out)
}

/// A stable number for a cache variant name.
fn variant_of(name: &str) -> u64 {
    crate::hash::fnv64(name.as_bytes())
}

/// A 200 with a JSON body.
pub fn json_response(body: Bytes) -> Response<Body> {
    let mut response = Response::new(full(body));
    response.headers_mut().insert(CONTENT_TYPE, JSON_UTF8_VALUE);
    response
}

/// Whether the request has any `X-Mock-*` header. Most have none, and one pass over the
/// names is cheaper than a hashed lookup of each.
fn has_mock_headers<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .keys()
        .any(|name| name.as_str().starts_with("x-mock-"))
}

/// Name the scenario on the request's span. Only when that span exists: finding the current
/// span asks the subscriber, on every request, for a span that is off unless debug is on.
fn record_scenario(name: &str) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::Span::current().record("scenario", name);
    }
}

fn scenario_header<B>(request: &Request<B>) -> Result<Option<String>, ApiError> {
    match request.headers().get(&SCENARIO_HEADER) {
        None => Ok(None),
        Some(value) => match value.to_str() {
            Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
            _ => Err(ApiError::bad_request(
                "X-Mock-Scenario must be a scenario name in visible ASCII",
            )),
        },
    }
}

/// Read the whole body, answering 413 past `limit` (by `Content-Length` up front, or while
/// reading a chunked body).
pub async fn read_body(request: Request<Incoming>, limit: usize) -> Result<Bytes, ApiError> {
    let (parts, body) = request.into_parts();
    read_body_of(&parts.headers, body, limit).await
}

/// [`read_body`] of a request taken apart.
pub async fn read_body_of(
    headers: &hyper::HeaderMap,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, ApiError> {
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::payload_too_large(limit));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::payload_too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "the request body could not be read: {e}"
        ))),
    }
}
