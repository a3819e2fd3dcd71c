//! The one wrapper: what a surface decided for a request ([`Outcome`]) becomes the response,
//! the journal entry, the metrics and the fault's act, here and nowhere else.
//!
//! A surface never writes to the journal or the metrics: it says what it found out (route,
//! journey, scenario and why, the fault it picked) in the outcome's [`Trace`], and
//! [`App::conclude`] records it. Provider requests carry a trace; admin and page requests
//! (not provider traffic) do not, and are only answered.
//!
//! Order for a provider request: the surface checks it and selects a scenario, the fault is
//! decided ([`App::decide`]); a `status:` fault answers instead of the work; the work is done;
//! then here the delay is held, the outcome spoils the answer (malformed, truncated) or ends
//! the connection (reset, empty, hang), the request is recorded, and the answer goes out. The
//! journal entry is written before the answer is handed over, so a test that asks the journal
//! after its response never races the server.

use std::time::Instant;

use bytes::Bytes;
use hyper::header::{HeaderValue, CONTENT_LENGTH};
use hyper::{Method, Response, StatusCode};

use super::App;
use crate::fault::rules::Planned;
use crate::fault::Outcome as FaultOutcome;
use crate::journal::{Entry, ShortStr};
use crate::wire::conn::Connection;
use crate::wire::{full, ApiError, Body, RouteKind, FAULT_HEADER};

/// What a surface decided for one request.
pub struct Outcome {
    /// The answer the work gave (an error becomes the provider's error response).
    pub answer: Result<Response<Body>, ApiError>,
    /// For provider traffic: what the journal and the metrics learn, and the fault.
    pub trace: Option<Trace>,
}

/// What handling a provider request found out.
pub struct Trace {
    pub route: RouteKind,
    pub method: Method,
    /// The path, kept only for [`RouteKind::Other`] (provider paths are rebuilt when read).
    pub other_path: Option<Box<str>>,
    pub journey_id: Option<ShortStr>,
    /// The chosen scenario's key (see `crate::metrics::Metrics::scenario_key`).
    pub scenario: Option<u32>,
    /// Why the scenario was chosen (`binding`, `prefix`, `header`, `default`...).
    pub selection: Option<&'static str>,
    pub fault: Option<Planned>,
}

impl Trace {
    /// A provider request on `route`, before the surface has looked at it.
    pub fn new(route: RouteKind, method: Method, path: &str, journey_id: Option<&str>) -> Self {
        Trace {
            route,
            method,
            other_path: (route == RouteKind::Other).then(|| path.into()),
            journey_id: journey_id.map(ShortStr::new),
            scenario: None,
            selection: None,
            fault: None,
        }
    }

    /// The error a `status:` fault answers with, if the request got one: the surface answers
    /// it instead of doing the work.
    pub fn fault_status(&self) -> Result<(), ApiError> {
        match self.fault.as_ref().and_then(|p| p.fault.outcome) {
            Some(FaultOutcome::Status { code, retry_after }) => {
                Err(ApiError::injected(code, retry_after))
            }
            _ => Ok(()),
        }
    }
}

impl Outcome {
    /// The outcome of a request that is not provider traffic (admin, hosted page).
    pub fn plain(answer: Result<Response<Body>, ApiError>) -> Self {
        Outcome {
            answer,
            trace: None,
        }
    }
}

/// A provider request whose fault has something to act out.
pub struct Acting {
    plan: Planned,
    response: Response<Body>,
    entry: Entry,
    started: Instant,
}

/// A concluded request: its response now, or a fault still to act out ([`App::act`]).
pub enum Concluded {
    Now(Response<Body>),
    Act(Box<Acting>),
}

/// Whether a fault's outcome ends the connection without a response: a reset, empty or hang
/// outcome, on a connection with a socket behind it (without one, `spoil` answers a 502).
fn ends_connection(outcome: Option<FaultOutcome>, conn: &Connection) -> bool {
    matches!(
        outcome,
        Some(FaultOutcome::Reset | FaultOutcome::Empty | FaultOutcome::Hang)
    ) && conn.is_attached()
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

impl App {
    /// The response, the journal entry and the metrics of a request whose work is done, and
    /// its fault: the response now, unless the fault has something to act out.
    pub fn conclude(
        &self,
        outcome: Outcome,
        started: Instant,
        span: &tracing::Span,
        conn: &Connection,
    ) -> Concluded {
        let Outcome { answer, trace } = outcome;
        let Some(mut trace) = trace else {
            let response = self.respond_to(answer, span, false);
            return Concluded::Now(finish(response, span, started));
        };
        let plan = trace.fault.take();
        let response = self.respond_to(answer, span, plan.is_some());
        let mut entry = Entry {
            time_ms: self.millis_at(started),
            method: trace.method,
            route: trace.route,
            other_path: trace.other_path,
            journey_id: trace.journey_id,
            scenario: trace.scenario,
            selection: trace.selection,
            status: Some(response.status().as_u16()),
            latency_us: 0,
            fault: None,
            fault_source: None,
            truncated: false,
        };
        let Some(plan) = plan else {
            self.record(entry, started);
            return Concluded::Now(finish(response, span, started));
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
            return Concluded::Act(Box::new(acting));
        }
        Concluded::Now(finish(self.spoil(acting), span, started))
    }

    /// Act out a fault: hold the answer for its delay, then end the connection or answer.
    pub async fn act(
        &self,
        acting: Acting,
        span: &tracing::Span,
        conn: &Connection,
    ) -> Response<Body> {
        // A deliberate wait, bounded by --fault-max-wait, not by --request-timeout.
        let _held = conn.hold();
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
            if outcome == Some(FaultOutcome::Hang) {
                self.hold(self.config.fault_max_wait).await;
            }
            conn.abort(outcome == Some(FaultOutcome::Reset)).await;
            // `abort` never returns; should that ever change, answer as a gateway would.
            return ApiError::injected(StatusCode::BAD_GATEWAY, None).into_response();
        }
        let started = acting.started;
        finish(self.spoil(acting), span, started)
    }

    /// The response of a surface's answer: an error in the provider's format, logged when it
    /// is ours (a 5xx that no fault injected).
    fn respond_to(
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
            Some(FaultOutcome::Reset | FaultOutcome::Empty | FaultOutcome::Hang) => {
                // No socket to act on (the app is driven without the server).
                response = ApiError::injected(StatusCode::BAD_GATEWAY, None).into_response();
            }
            Some(FaultOutcome::Malformed) => response = malformed(response),
            Some(FaultOutcome::Truncated) => response = truncated(response),
            Some(FaultOutcome::Status { .. }) | None => {}
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
        if let Some(shared) = &self.shared_journal {
            shared.push(&entry, &self.metrics.scenario_names());
        }
        self.journal.push(entry);
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
