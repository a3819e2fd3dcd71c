//! The router: a request in, its response out, for any body type.
//!
//! It reads the path once, hands the request to its surface (the provider API in
//! [`crate::api`], the admin API in [`crate::admin`], the QA console in [`crate::console`],
//! the hosted page in [`crate::page`]; `/favicon.ico` gets a 204 that is not journaled),
//! reads the body under `--max-body-bytes` when there is one, and gives the surface's
//! [`Outcome`] to the one wrapper, [`App::conclude`], which records it and turns it into the
//! response. Each surface first checks the head alone (route, method, token, headers), so
//! those errors come before a body is read, as the provider's do.
//!
//! A body is read within a deadline counted from the head's arrival (`--body-read-timeout`,
//! or `--request-timeout` when shorter), else the answer is a 408 in the provider's format;
//! only a request with a body arms that timer. On HTTP/2, an answer found before the body
//! ended (a 413, any error from the head) waits until the rest of the body is read and
//! dropped, within the same deadline and a byte budget, so that it ends the stream instead of
//! being followed by a reset that some clients take for a failure.
//!
//! The server (`crate::server`) calls [`respond`] for every request on a socket; [`oneshot`]
//! answers one request without a socket, the same way, for tests and embedders.
//!
//! A request with no body to read and no fault to act out (the hot path) is answered here
//! and now, with no future of its own: whatever a request's future holds, hyper moves it,
//! whole, and a future able to hold every path was kilobytes.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{HeaderValue, CONNECTION};
use hyper::{HeaderMap, Request, Response, StatusCode, Version};

use crate::app::{App, Concluded, Outcome, Trace};
use crate::config::Config;
use crate::wire::conn::Connection;
use crate::wire::{drain, read_body, ApiError, Body, RouteKind};

/// One request's answer: ready now, or the work still to do (which owns what it needs, so
/// that the request can be answered, or handed on, while hyper still holds its head).
pub enum Answer {
    Now(Response<Body>),
    Later(Pin<Box<dyn Future<Output = Response<Body>> + Send>>),
}

/// Which listener a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The provider port: the whole mock, unless `--admin-bind` serves the admin API apart.
    Provider,
    /// The `--admin-bind` port: the admin API only.
    Admin,
}

/// Where a request is going, once its path has been read.
enum Surface<'a> {
    Admin,
    /// The QA console (`/__admin/ui/`), and the admin root a browser opens.
    Console,
    Page,
    /// `/favicon.ico`, which browsers ask for on every page: a 204, not provider traffic.
    Favicon,
    Provider(RouteKind, Option<&'a str>),
    /// Not served on this listener (the admin listener serves the admin API only).
    NotHere,
}

#[inline(always)]
fn surface(path: &str, on: Listener, admin_apart: bool) -> Surface<'_> {
    if path.starts_with("/__admin") && crate::console::owns(path) {
        if on == Listener::Admin || !admin_apart {
            return Surface::Console;
        }
        return Surface::Provider(RouteKind::Other, None);
    }
    if path.starts_with(crate::admin::PREFIX) {
        if on == Listener::Admin || !admin_apart {
            return Surface::Admin;
        }
        // The admin API has a listener of its own: here its paths are unknown, like any other.
        return Surface::Provider(RouteKind::Other, None);
    }
    if on == Listener::Admin {
        return Surface::NotHere;
    }
    if path.starts_with(crate::page::PREFIX) {
        return Surface::Page;
    }
    if path == "/favicon.ico" {
        return Surface::Favicon;
    }
    let (route, journey_id) = RouteKind::of_path(path);
    Surface::Provider(route, journey_id)
}

/// `f` inside `span`, when there is a span (debug logging on): entering a span that is off
/// still costs a call into the subscriber.
fn within<T>(span: &tracing::Span, f: impl FnOnce() -> T) -> T {
    if span.is_disabled() {
        f()
    } else {
        span.in_scope(f)
    }
}

/// Answer one request on `conn`, which came in on the provider port. Never fails: every error
/// is a response in the provider's format (or, for a connection fault, the connection ends
/// without one).
pub fn respond<B>(app: &Arc<App>, request: Request<B>, conn: &Arc<Connection>) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    respond_on(app, request, conn, Listener::Provider)
}

/// [`respond`] for a request that came in on listener `on`.
pub fn respond_on<B>(
    app: &Arc<App>,
    request: Request<B>,
    conn: &Arc<Connection>,
    on: Listener,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let started = Instant::now();
    let span = tracing::debug_span!(
        "request",
        id = app.next_request_id(),
        method = %request.method(),
        path = %request.uri().path(),
        scenario = tracing::field::Empty,
        status = tracing::field::Empty,
        latency_us = tracing::field::Empty,
    );
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |t| t.as_str().len());
    if target > MAX_TARGET_BYTES {
        return target_too_long(app, request, started, span, conn);
    }
    let max_journey_id = app.config().max_journey_id;
    let admin_apart = app.config().admin_bind.is_some();
    match surface(request.uri().path(), on, admin_apart) {
        Surface::Provider(route, journey_id) => {
            // A journey id over the limit is answered 414 and not kept in the journal.
            let too_long = journey_id.is_some_and(|id| id.len() > max_journey_id);
            let trace = Trace::new(
                route,
                request.method().clone(),
                request.uri().path(),
                journey_id.filter(|_| !too_long),
            );
            provider(app, request, too_long, trace, started, span, conn)
        }
        Surface::Admin => {
            // The token first (a caller without it learns nothing of the routes), then the
            // route, then the id's length.
            let prepared =
                within(&span, || crate::admin::prepare(app, &request)).and_then(|call| {
                    if admin_journey_id_too_long(request.uri().path(), max_journey_id) {
                        Err(ApiError::journey_id_too_long(max_journey_id))
                    } else {
                        Ok(call)
                    }
                });
            plain(
                app,
                request,
                prepared,
                crate::admin::handle,
                started,
                span,
                conn,
            )
        }
        Surface::Console => {
            let prepared = within(&span, || crate::console::prepare(app, &request));
            plain(
                app,
                request,
                prepared,
                crate::console::handle,
                started,
                span,
                conn,
            )
        }
        Surface::Favicon => settle(app, Outcome::plain(Ok(favicon())), started, span, conn),
        Surface::Page => {
            let prepared = within(&span, || crate::page::prepare(&request));
            plain(
                app,
                request,
                prepared,
                crate::page::handle,
                started,
                span,
                conn,
            )
        }
        Surface::NotHere => {
            let missing = ApiError::route_not_found(request.method(), request.uri().path());
            settle(app, Outcome::plain(Err(missing)), started, span, conn)
        }
    }
}

/// `204 No Content` for `/favicon.ico`, cached for a day: the pages say they have no icon, and
/// a browser that asks anyway is not provider traffic, so it is neither journaled nor counted.
fn favicon() -> Response<crate::wire::Body> {
    let mut response = Response::new(crate::wire::full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

/// The longest request target (path and query) answered; longer ones get a 414. hyper's own
/// bound is 64 KiB; ours keeps a long path out of 404 messages and the journal.
const MAX_TARGET_BYTES: usize = 8 * 1024;

/// The 414 of a request target over [`MAX_TARGET_BYTES`]. Answered before routing, so neither
/// recorded nor counted: like the errors hyper answers itself, it never reached a route.
#[cold]
#[inline(never)]
fn target_too_long<B>(
    app: &Arc<App>,
    request: Request<B>,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_long = ApiError::uri_too_long(format!(
        "Request target is longer than the limit of {MAX_TARGET_BYTES} bytes"
    ));
    let never = |_: &App, never: std::convert::Infallible, _: &[u8]| match never {};
    plain(app, request, Err(too_long), never, started, span, conn)
}

/// Whether an admin path has a part longer than the longest journey id: the admin routes'
/// fixed parts are short, and every other part is a journey id (or a fault rule's number).
fn admin_journey_id_too_long(path: &str, limit: usize) -> bool {
    path.len() > limit && path.split('/').any(|part| part.len() > limit)
}

/// Answer one request without a socket, exactly as [`respond`] does on one; connection
/// faults (reset, empty, hang), which need a socket, answer 502 as a gateway would.
pub async fn oneshot<B>(app: &Arc<App>, request: Request<B>) -> Response<Body>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = Arc::new(Connection::detached());
    match respond(app, request, &conn) {
        Answer::Now(response) => response,
        Answer::Later(later) => later.await,
    }
}

/// A provider request: checked from its head (a 414 when its journey id is too long), its
/// body read if it has one, its work done, concluded.
fn provider<B>(
    app: &Arc<App>,
    request: Request<B>,
    journey_id_too_long: bool,
    mut trace: Trace,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let prepared = if journey_id_too_long {
        Err(ApiError::journey_id_too_long(app.config().max_journey_id))
    } else {
        within(&span, || crate::api::prepare(app, &request, trace.route))
    };
    let answer = match prepared {
        Ok(call) if !request.body().is_end_stream() => {
            return later(
                app,
                request,
                Use::Read,
                started,
                span,
                conn,
                |app, path, body, span| {
                    let answer = body.and_then(|body| {
                        within(span, || {
                            crate::api::work(app, call, path, &body, &mut trace)
                        })
                    });
                    Outcome {
                        answer,
                        trace: Some(trace),
                    }
                },
            );
        }
        Ok(call) => within(&span, || {
            crate::api::work(app, call, request.uri().path(), &[], &mut trace)
        }),
        Err(e) if drains(&request) => {
            return later(
                app,
                request,
                Use::Drop,
                started,
                span,
                conn,
                |_, _, _, _| Outcome {
                    answer: Err(e),
                    trace: Some(trace),
                },
            );
        }
        Err(e) => Err(e),
    };
    let outcome = Outcome {
        answer,
        trace: Some(trace),
    };
    settle(app, outcome, started, span, conn)
}

/// How an admin or page surface answers a request whose head it checked.
type Handle<C> = fn(&App, C, &[u8]) -> Result<Response<Body>, ApiError>;

/// An admin or page request: `prepared` is what its surface found from the head, `handle`
/// answers it with its body.
fn plain<B, C>(
    app: &Arc<App>,
    request: Request<B>,
    prepared: Result<C, ApiError>,
    handle: Handle<C>,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    C: Send + 'static,
{
    let answer = match prepared {
        Ok(call) if !request.body().is_end_stream() => {
            return later(
                app,
                request,
                Use::Read,
                started,
                span,
                conn,
                move |app, _, body, span| {
                    Outcome::plain(body.and_then(|body| within(span, || handle(app, call, &body))))
                },
            );
        }
        Ok(call) => within(&span, || handle(app, call, &[])),
        Err(e) if drains(&request) => {
            return later(
                app,
                request,
                Use::Drop,
                started,
                span,
                conn,
                |_, _, _, _| Outcome::plain(Err(e)),
            );
        }
        Err(e) => Err(e),
    };
    settle(app, Outcome::plain(answer), started, span, conn)
}

/// Whether an answer found from the head alone waits for the body to be read and dropped
/// first: on HTTP/2, so that the answer ends the stream (see [`crate::wire::drain`]).
fn drains<B: hyper::body::Body>(request: &Request<B>) -> bool {
    request.version() == Version::HTTP_2 && !request.body().is_end_stream()
}

/// What [`later`] does with a request's body.
enum Use {
    /// Read it for the work, within its [`BodyBudget`].
    Read,
    /// Read and drop it (HTTP/2, answered from the head): the work gets an empty body.
    Drop,
}

/// The answer of a request with a body still to come: `work` gets the body, or the error that
/// answers the request instead (a 413, a 408), and decides the outcome.
// Never inlined: kept out of the callers, whose path without a body is the hot one.
#[inline(never)]
fn later<B, W>(
    app: &Arc<App>,
    request: Request<B>,
    body_use: Use,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
    work: W,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    W: FnOnce(&App, &str, Result<Bytes, ApiError>, &tracing::Span) -> Outcome + Send + 'static,
{
    let budget = BodyBudget::new(app.config(), request.version(), started);
    let (app, conn) = (Arc::clone(app), Arc::clone(conn));
    Answer::Later(Box::pin(async move {
        let (parts, body) = request.into_parts();
        let mut body = pin!(body);
        let read = match body_use {
            Use::Read => budget.read(&parts.headers, body.as_mut()).await,
            Use::Drop => Ok(Bytes::new()),
        };
        if read.is_err() || matches!(body_use, Use::Drop) {
            budget.drain(body.as_mut()).await;
        }
        let outcome = work(&app, parts.uri.path(), read, &span);
        let response = match app.conclude(outcome, started, &span, &conn) {
            Concluded::Now(response) => response,
            Concluded::Act(acting) => app.act(*acting, &span, &conn).await,
        };
        budget.finish(response)
    }))
}

/// Bytes of an HTTP/2 body answered early that are read and dropped at least, besides
/// `--max-body-bytes` (see [`crate::wire::drain`]).
const MIN_DRAIN_BYTES: usize = 64 * 1024;

/// What reading one request's body may take: `--max-body-bytes`, and time until a deadline
/// counted from the arrival of its head: `--body-read-timeout`, or `--request-timeout` when
/// that is shorter. (The connection's task holds the whole request, its head included, to
/// `--request-timeout`; see `server::connection`.) A timer is armed only for a request that
/// has a body to read.
struct BodyBudget {
    limit: usize,
    timeout: Duration,
    deadline: tokio::time::Instant,
    /// `--request-timeout` is the shorter, so the 408 names the whole request.
    whole_request: bool,
    http2: bool,
}

impl BodyBudget {
    fn new(config: &Config, version: Version, started: Instant) -> Self {
        let timeout = config.body_read_timeout.min(config.request_timeout);
        BodyBudget {
            limit: config.max_body_bytes,
            timeout,
            deadline: tokio::time::Instant::from_std(started) + timeout,
            whole_request: config.request_timeout < config.body_read_timeout,
            http2: version == Version::HTTP_2,
        }
    }

    /// The whole body: 413 past the limit, 408 past the deadline, 400 when it breaks off.
    async fn read<B>(&self, headers: &HeaderMap, body: Pin<&mut B>) -> Result<Bytes, ApiError>
    where
        B: hyper::body::Body,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        match tokio::time::timeout_at(self.deadline, read_body(headers, body, self.limit)).await {
            Ok(read) => read,
            Err(_) => {
                let what = if self.whole_request {
                    "The request did not arrive in full"
                } else {
                    "The request body did not arrive"
                };
                Err(ApiError::request_timeout(format!(
                    "{what} within {} of its head",
                    humantime::format_duration(self.timeout)
                )))
            }
        }
    }

    /// After an answer found before the body ended: on HTTP/2, read and drop the rest of it,
    /// within the same deadline and a byte budget, so that the answer ends the stream.
    async fn drain<B>(&self, body: Pin<&mut B>)
    where
        B: hyper::body::Body,
    {
        if self.http2 && !body.is_end_stream() {
            let budget = self.limit.max(MIN_DRAIN_BYTES);
            let _ = tokio::time::timeout_at(self.deadline, drain(body, budget)).await;
        }
    }

    /// A 408 on HTTP/1.1 says that the connection closes (hyper closes it: the rest of the
    /// body was never read).
    fn finish(&self, mut response: Response<Body>) -> Response<Body> {
        if response.status() == StatusCode::REQUEST_TIMEOUT && !self.http2 {
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The answer of a concluded request: now, or once its fault is acted out. Inlined: the
/// outcome is a few hundred bytes, and each call it passes through by value copies it.
#[inline(always)]
fn settle(
    app: &Arc<App>,
    outcome: Outcome,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
) -> Answer {
    match app.conclude(outcome, started, &span, conn) {
        Concluded::Now(response) => Answer::Now(response),
        Concluded::Act(acting) => {
            let (app, conn) = (Arc::clone(app), Arc::clone(conn));
            Answer::Later(Box::pin(
                async move { app.act(*acting, &span, &conn).await },
            ))
        }
    }
}
