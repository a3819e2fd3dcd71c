//! The control plane's side of every provider request: what handling it found out (route,
//! journey, scenario and why), the fault it gets and how that fault is applied, its record
//! in the journal and the metrics; and the swap of the catalogue under `--watch`.
//!
//! Order for one request: checks and scenario selection ([`super`]), then the fault is
//! decided ([`App::decide`]); a `status:` fault answers instead of the work; the work is done;
//! the delay is held; the outcome spoils the answer (malformed, truncated) or ends the
//! connection (reset, empty, hang); the request is recorded; the answer goes out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::{Method, Request, Response};

use super::{
    read_body_of, warn_missing_lifecycle_scenarios, Answer, App, CALLBACK_FAULT_HEADER,
    FAULT_HEADER,
};
use crate::catalogue::Catalogue;
use crate::error::ApiError;
use crate::fault::rules::Planned;
use crate::fault::{CallbackFault, Fault, Outcome};
use crate::journal::{Entry, RouteKind, ShortStr};
use crate::live::ScenarioInfo;
use crate::metrics::Gauges;
use crate::server::{full, Body, Connection};

/// `f` inside `span`, when there is a span (debug logging on): entering a span that is off
/// still costs a call into the subscriber.
fn within<T>(span: &tracing::Span, f: impl FnOnce() -> T) -> T {
    if span.is_disabled() {
        f()
    } else {
        span.in_scope(f)
    }
}

/// Whether a fault's outcome ends the connection without a response: a reset, empty or hang
/// outcome, on a connection with a socket behind it (without one, `spoil` answers a 502).
fn ends_connection(outcome: Option<Outcome>, conn: &Connection) -> bool {
    matches!(
        outcome,
        Some(Outcome::Reset | Outcome::Empty | Outcome::Hang)
    ) && conn.is_attached()
}

/// What the journal entry of a provider request keeps from its head.
pub(super) struct Meta {
    started: Instant,
    time_ms: i64,
    method: Method,
    other_path: Option<Box<str>>,
}

/// A provider request whose fault has something to act out.
pub(super) struct Acting {
    plan: Planned,
    response: Response<Body>,
    entry: Entry,
    started: Instant,
}

pub(super) enum Settled {
    Now(Response<Body>),
    Act(Box<Acting>),
}

/// What handling a provider request found out, for the journal, metrics and faults.
pub(super) struct Note {
    pub(super) route: RouteKind,
    pub(super) journey_id: Option<ShortStr>,
    /// The chosen scenario's key (see [`crate::metrics::Metrics::scenario_key`]).
    pub(super) scenario: Option<u32>,
    pub(super) selection: Option<&'static str>,
    pub(super) fault: Option<Planned>,
}

impl Note {
    /// The error a `status:` fault answers with, if the request got one.
    pub(super) fn fault_status(&self) -> Result<(), ApiError> {
        match self.fault.as_ref().and_then(|p| p.fault.outcome) {
            Some(Outcome::Status { code, retry_after }) => {
                Err(ApiError::injected(code, retry_after))
            }
            _ => Ok(()),
        }
    }
}

impl App {
    /// Serve `catalogue` from now on (a hot reload). Cached bodies of the old catalogue are
    /// dropped, and its generation is no longer part of any cache key a request asks for.
    pub fn install(&self, catalogue: Catalogue) {
        if catalogue.find(&self.config.default_scenario).is_none() {
            self.reload_failed(format!(
                "the new catalogue has no scenario {:?} (--default-scenario); known scenarios: {}",
                self.config.default_scenario,
                catalogue.names().join(", ")
            ));
            return;
        }
        warn_missing_lifecycle_scenarios(&self.config, &catalogue);
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
            callbacks_delivered: stats.delivered,
            callbacks_failed: stats.failed,
            callbacks_dropped: stats.dropped,
            callbacks_undelivered: stats.undelivered,
            callbacks_fault_dropped: faults.dropped,
            callbacks_duplicated: faults.duplicated,
            callback_queue_depth: stats.pending,
            callback_queue_capacity: stats.capacity,
            scenarios: self.live.load().catalogue.scenarios().len(),
            journeys: self.journeys.len(),
            journal_entries: self.journal.len(),
        })
    }

    /// A provider request: check it, read its body, do its work, apply its fault if it got
    /// one, record it, answer. Only reading a body and acting out a fault (a delay, or ending
    /// the connection) need a future; everything else is answered now.
    pub(super) fn provider(
        self: &Arc<Self>,
        request: Request<Incoming>,
        mut note: Note,
        started: Instant,
        span: tracing::Span,
        conn: &Arc<Connection>,
    ) -> Answer {
        let meta = Meta {
            started,
            time_ms: self.millis_at(started),
            method: request.method().clone(),
            other_path: (note.route == RouteKind::Other).then(|| request.uri().path().into()),
        };
        let answer = match within(&span, || self.provider_call(&request, &note)) {
            Ok(call) if !hyper::body::Body::is_end_stream(request.body()) => {
                let limit = self.config.max_body_bytes;
                let (app, conn) = (Arc::clone(self), Arc::clone(conn));
                return Answer::Later(Box::pin(async move {
                    let (parts, body) = request.into_parts();
                    let answer = match read_body_of(&parts.headers, body, limit).await {
                        Ok(body) => within(&span, || {
                            app.provider_work(call, parts.uri.path(), &body, &mut note)
                        }),
                        Err(e) => Err(e),
                    };
                    match app.settle(answer, note, meta, &span, &conn) {
                        Settled::Now(response) => response,
                        Settled::Act(acting) => app.act(*acting, &span, &conn).await,
                    }
                }));
            }
            Ok(call) => within(&span, || {
                self.provider_work(call, request.uri().path(), &[], &mut note)
            }),
            Err(e) => Err(e),
        };
        match self.settle(answer, note, meta, &span, conn) {
            Settled::Now(response) => Answer::Now(response),
            Settled::Act(acting) => {
                let (app, conn) = (Arc::clone(self), Arc::clone(conn));
                Answer::Later(Box::pin(
                    async move { app.act(*acting, &span, &conn).await },
                ))
            }
        }
    }

    /// The answer, the journal entry and the fault of a request whose work is done: the
    /// response now, unless the fault has something to act out.
    fn settle(
        &self,
        answer: Result<Response<Body>, ApiError>,
        mut note: Note,
        meta: Meta,
        span: &tracing::Span,
        conn: &Connection,
    ) -> Settled {
        let plan = note.fault.take();
        let response = self.answer(answer, span, plan.is_some());
        let mut entry = Entry {
            time_ms: meta.time_ms,
            method: meta.method,
            route: note.route,
            other_path: meta.other_path,
            journey_id: note.journey_id.take(),
            scenario: note.scenario.take(),
            selection: note.selection,
            status: Some(response.status().as_u16()),
            latency_us: 0,
            fault: None,
            fault_source: None,
        };
        let started = meta.started;
        let Some(plan) = plan else {
            self.record(entry, started);
            return Settled::Now(super::finish(response, span, started));
        };
        self.metrics.fault(&plan.fault);
        entry.fault = Some(plan.fault.text().clone());
        entry.fault_source = Some(plan.source.as_str());
        tracing::debug!(parent: span, fault = %plan.fault, source = plan.source.as_str(), "fault injected");
        let ends_connection = ends_connection(plan.fault.outcome, conn);
        let acting = Acting {
            plan,
            response,
            entry,
            started,
        };
        if acting.plan.delay.is_some() || ends_connection {
            return Settled::Act(Box::new(acting));
        }
        Settled::Now(super::finish(self.spoil(acting), span, started))
    }

    /// Act out a fault: hold the answer for its delay, then end the connection or answer.
    async fn act(&self, acting: Acting, span: &tracing::Span, conn: &Connection) -> Response<Body> {
        if let Some(delay) = acting.plan.delay {
            self.hold(delay).await;
        }
        let outcome = acting.plan.fault.outcome;
        if ends_connection(outcome, conn) {
            let Acting {
                mut entry, started, ..
            } = acting;
            entry.status = None;
            self.record(entry, started);
            if outcome == Some(Outcome::Hang) {
                self.hold(self.config.fault_max_wait).await;
            }
            conn.abort(outcome == Some(Outcome::Reset)).await;
            // `abort` never returns; should that ever change, answer as a gateway would.
            return ApiError::injected(hyper::StatusCode::BAD_GATEWAY, None).into_response();
        }
        let started = acting.started;
        super::finish(self.spoil(acting), span, started)
    }

    /// The answer as the fault spoils it (malformed, truncated; a connection fault with no
    /// socket to act on answers as a gateway would), marked with `X-Mock-Fault`, recorded.
    fn spoil(&self, acting: Acting) -> Response<Body> {
        let Acting {
            plan,
            mut response,
            mut entry,
            started,
        } = acting;
        match plan.fault.outcome {
            Some(Outcome::Reset | Outcome::Empty | Outcome::Hang) => {
                // No socket to act on (the app is embedded without the server).
                response = ApiError::injected(hyper::StatusCode::BAD_GATEWAY, None).into_response();
            }
            Some(Outcome::Malformed) => response = malformed(response),
            Some(Outcome::Truncated) => response = truncated(response),
            Some(Outcome::Status { .. }) | None => {}
        }
        if let Ok(value) = HeaderValue::from_str(plan.fault.text()) {
            response.headers_mut().insert(FAULT_HEADER, value);
        }
        entry.status = Some(response.status().as_u16());
        self.record(entry, started);
        response
    }

    /// Journal and metrics, before the answer goes out.
    fn record(&self, mut entry: Entry, started: Instant) {
        let latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        entry.latency_us = latency_us;
        self.metrics
            .request(entry.route, entry.scenario, entry.status, latency_us);
        self.journal.push(entry);
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
    /// The fault for a provider request that passed its checks: the header's, an admin
    /// rule's, or (get-journey) the scenario's.
    pub(super) fn decide(
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
}

/// The `malformed` fault: the same status and headers, and the first half of the body, which
/// is therefore not JSON (the length is right: the connection stays usable).
fn malformed(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = body.bytes().cloned().unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(CONTENT_LENGTH);
    let mut response = Response::from_parts(parts, full(cut));
    if response.body().bytes().is_none() {
        // An empty body is not JSON either, but say so plainly.
        *response.body_mut() = full(Bytes::from_static(b"<"));
    }
    response
}

/// The `truncated` fault: `Content-Length` of the whole body, and only its first half sent
/// before the connection closes.
fn truncated(response: Response<Body>) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    let bytes = body.bytes().cloned().unwrap_or_default();
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(bytes.len().max(1) as u64));
    Response::from_parts(parts, Body::cut(bytes.slice(..bytes.len() / 2)))
}

/// `X-Mock-Fault`: a fault for this request.
pub(super) fn fault_header<B>(request: &Request<B>) -> Result<Option<Fault>, ApiError> {
    let Some(value) = request.headers().get(&FAULT_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Mock-Fault must be visible ASCII"))?;
    text.parse()
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("X-Mock-Fault: {e}")))
}

/// `X-Mock-Callback-Fault` of a create call: this journey's callback fault.
pub(super) fn callback_fault_header<B>(
    request: &Request<B>,
) -> Result<Option<CallbackFault>, ApiError> {
    let Some(value) = request.headers().get(&CALLBACK_FAULT_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request("X-Mock-Callback-Fault must be visible ASCII"))?;
    text.parse()
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("X-Mock-Callback-Fault: {e}")))
}
