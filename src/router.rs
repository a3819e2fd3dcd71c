//! The router: a request in, its response out, for any body type.
//!
//! It reads the path once, hands the request to its surface (the provider API in
//! [`crate::api`], the admin API in [`crate::admin`], the hosted page in [`crate::page`]),
//! reads the body under `--max-body-bytes` when there is one, and gives the surface's
//! [`Outcome`] to the one wrapper, [`App::conclude`], which records it and turns it into the
//! response. Each surface first checks the head alone (route, method, token, headers), so
//! those errors come before a body is read, as the provider's do.
//!
//! The server (`crate::server`) calls [`respond`] for every request on a socket; [`oneshot`]
//! answers one request without a socket, the same way, for tests and embedders.
//!
//! A request with no body to read and no fault to act out (the hot path) is answered here
//! and now, with no future of its own: whatever a request's future holds, hyper moves it,
//! whole, and a future able to hold every path was kilobytes.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use hyper::{Request, Response};

use crate::app::{App, Concluded, Outcome, Trace};
use crate::wire::conn::Connection;
use crate::wire::{read_body, ApiError, Body, RouteKind};

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
    Page,
    Provider(RouteKind, Option<&'a str>),
    /// Not served on this listener (the admin listener serves the admin API only).
    NotHere,
}

fn surface(path: &str, on: Listener, admin_apart: bool) -> Surface<'_> {
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
    let admin_apart = app.config().admin_bind.is_some();
    match surface(request.uri().path(), on, admin_apart) {
        Surface::Provider(route, journey_id) => {
            let trace = Trace::new(
                route,
                request.method().clone(),
                request.uri().path(),
                journey_id,
            );
            provider(app, request, trace, started, span, conn)
        }
        Surface::Admin => plain(
            app,
            request,
            |request| crate::admin::prepare(app, request),
            crate::admin::handle,
            started,
            span,
            conn,
        ),
        Surface::Page => plain(
            app,
            request,
            crate::page::prepare,
            crate::page::handle,
            started,
            span,
            conn,
        ),
        Surface::NotHere => {
            let missing = ApiError::route_not_found(request.method(), request.uri().path());
            settle(app, Outcome::plain(Err(missing)), started, span, conn)
        }
    }
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

/// A provider request: checked from its head, its body read if it has one, its work done,
/// concluded.
fn provider<B>(
    app: &Arc<App>,
    request: Request<B>,
    mut trace: Trace,
    started: Instant,
    span: tracing::Span,
    conn: &Arc<Connection>,
) -> Answer
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let answer = match within(&span, || crate::api::prepare(app, &request, trace.route)) {
        Ok(call) if !request.body().is_end_stream() => {
            let limit = app.config().max_body_bytes;
            let (app, conn) = (Arc::clone(app), Arc::clone(conn));
            return Answer::Later(Box::pin(async move {
                let (parts, body) = request.into_parts();
                let answer = match read_body(&parts.headers, body, limit).await {
                    Ok(body) => within(&span, || {
                        crate::api::work(&app, call, parts.uri.path(), &body, &mut trace)
                    }),
                    Err(e) => Err(e),
                };
                let outcome = Outcome {
                    answer,
                    trace: Some(trace),
                };
                match app.conclude(outcome, started, &span, &conn) {
                    Concluded::Now(response) => response,
                    Concluded::Act(acting) => app.act(*acting, &span, &conn).await,
                }
            }));
        }
        Ok(call) => within(&span, || {
            crate::api::work(app, call, request.uri().path(), &[], &mut trace)
        }),
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

/// An admin or page request: `prepare` checks its head, `handle` answers it with its body.
fn plain<B, C>(
    app: &Arc<App>,
    request: Request<B>,
    prepare: impl FnOnce(&Request<B>) -> Result<C, ApiError>,
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
    let answer = match within(&span, || prepare(&request)) {
        Ok(call) if !request.body().is_end_stream() => {
            let limit = app.config().max_body_bytes;
            let (app, conn) = (Arc::clone(app), Arc::clone(conn));
            return Answer::Later(Box::pin(async move {
                let (parts, body) = request.into_parts();
                let answer = match read_body(&parts.headers, body, limit).await {
                    Ok(body) => within(&span, || handle(&app, call, &body)),
                    Err(e) => Err(e),
                };
                match app.conclude(Outcome::plain(answer), started, &span, &conn) {
                    Concluded::Now(response) => response,
                    Concluded::Act(acting) => app.act(*acting, &span, &conn).await,
                }
            }));
        }
        Ok(call) => within(&span, || handle(app, call, &[])),
        Err(e) => Err(e),
    };
    settle(app, Outcome::plain(answer), started, span, conn)
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
