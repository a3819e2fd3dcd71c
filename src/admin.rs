//! The admin API, `/__admin/…`: journeys (list, read, bind a scenario, complete now, set a
//! callback fault), the callback log (every attempt, redelivery), the request journal, fault
//! rules, health, metrics and reset. JSON in, JSON out (metrics: OpenMetrics text), errors in
//! the provider's format like every other route.
//!
//! Without `--admin-token` anyone who reaches the port may use it (a test tool's control
//! plane on loopback). With it, every route but `GET /__admin/health` (which orchestrators
//! probe without credentials) needs `Authorization: Bearer <token>`, the metrics and the
//! request journal included: the journal and the journey listing show journey ids and
//! `authKeyForCallback`, and Prometheus sends a bearer token as easily as none. A request
//! without it gets the provider's 401 before its route is even looked up. `--admin-bind` moves
//! all of this to a listener of its own (see `crate::server`).
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /__admin/journeys[?limit=…&cursor=…]` | created journeys, oldest first, a page at a time |
//! | `GET /__admin/journeys/{id}` | one journey |
//! | `PUT /__admin/journeys/{id}` `{"scenario": …}` | bind a scenario (creates the journey if unknown: 201) |
//! | `POST /__admin/journeys/{id}/complete` `[{"scenario": …}]` | end it now |
//! | `GET /__admin/callbacks[?journeyId=…&limit=…&cursor=…]` | attempts and lost callbacks, a page at a time; counters |
//! | `POST /__admin/callbacks/{journeyId}/redeliver` | deliver the callback again (202) |
//! | `PUT`/`DELETE /__admin/journeys/{id}/callback-fault` `{"fault": …}` | set or clear its callback fault |
//! | `GET`/`DELETE /__admin/requests[?journeyId=…&path=…&status=…&since=…&scenario=…&limit=…&cursor=…]` | the request journal, a page at a time |
//! | `POST /__admin/requests/count` `{filter}` | `{"count": N}` |
//! | `GET`/`POST`/`DELETE /__admin/faults` | fault rules: list, add (201), remove all |
//! | `GET`/`DELETE /__admin/faults/{id}` | one rule |
//! | `GET /__admin/health` | catalogue size, generation, last reload error |
//! | `GET /__admin/metrics` | OpenMetrics text (Prometheus scrapes it) |
//! | `POST /__admin/reset` | forget journeys, callbacks, cached bodies, the journal, fault rules and the inbox |
//! | `GET`/`DELETE /__admin/inbox/{name}` | what the callback inbox `name` received, as JSON; empty it |
//! | any other method on `/__admin/inbox/{name}` | keep the request (headers, body) in inbox `name`: no token needed |
//!
//! The QA console (`crate::console`, `/__admin/ui/`) is the same operations in HTML. With
//! `--admin-token`, its login form sets the token in a cookie, which every admin route
//! accepts as it accepts the bearer token (`SameSite=Strict`: another site's page cannot send
//! it).
//!
//! The three listings are paged, so that no answer grows with what the mock holds: `limit`
//! entries at most (default 100, at most 1,000; journeys also stop at about 4 MiB), oldest
//! first, and `next`, the `cursor` that gives the next page with the same parameters (`null`
//! on the last page). A cursor is opaque: the position after which the next page starts, so
//! paging never repeats nor skips an entry that is kept; entries dropped by the bounds
//! between two pages are not seen, entries added meanwhile are, at the end.

use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::app::{named_scenario, App};
use crate::callback::check_delay;
use crate::fault::rules::parse_rule;
use crate::fault::CallbackFault;
use crate::journal::Filter;
use crate::journey::record::Ending;
use crate::journey::JourneyRecord;
use crate::scenario::Scenario;
use crate::time::iso_from_millis;
use crate::wire::{full, json_value_response, ApiError, Body};

/// The path prefix of every admin route.
pub const PREFIX: &str = "/__admin/";

/// Entries in a page of a listing, unless `limit` says otherwise, and the most it may say.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// About the most a page of journeys holds, by the store's weighing (a journey may carry up
/// to a request body's worth of `processingConfig` and `userInfo`).
const MAX_PAGE_BYTES: usize = 4 << 20;

/// A listing's `limit` and `cursor`, and its other query parameters.
struct Paging {
    limit: usize,
    /// The positions after which the page starts, one per list (0: from the first).
    after: Vec<u64>,
    rest: Vec<(String, String)>,
}

impl Paging {
    /// From a listing's query; its cursor holds `lists` positions.
    fn read(query: &str, lists: usize) -> Result<Paging, ApiError> {
        let mut paging = Paging {
            limit: DEFAULT_PAGE,
            after: vec![0; lists],
            rest: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*key {
                "limit" => {
                    paging.limit = value
                        .trim()
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_PAGE).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!(
                                "limit {value:?} must be a number from 1 to {MAX_PAGE}"
                            ))
                        })?
                }
                "cursor" => {
                    let after: Option<Vec<u64>> =
                        value.split('.').map(|p| p.parse().ok()).collect();
                    paging.after = after.filter(|a| a.len() == lists).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "cursor {value:?} is not one this listing gave; pass the `next` of the previous page"
                        ))
                    })?;
                }
                _ => paging.rest.push((key.into_owned(), value.into_owned())),
            }
        }
        Ok(paging)
    }
}

/// The `next` of a page: for each list, the position of the last entry given (or where the
/// page started, when it gave none) and whether more follow; `null` when no list has more.
fn next_cursor(lists: &[(u64, bool)]) -> Value {
    if !lists.iter().any(|(_, more)| *more) {
        return Value::Null;
    }
    let parts: Vec<String> = lists.iter().map(|(at, _)| at.to_string()).collect();
    Value::String(parts.join("."))
}

enum Route {
    Journeys,
    Journey(String),
    Complete(String),
    CallbackFault(String),
    Callbacks,
    Redeliver(String),
    Requests,
    RequestCount,
    Faults,
    Fault(u64),
    Health,
    Metrics,
    Reset,
    Inbox(String),
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let rest = path.strip_prefix(PREFIX)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let id = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Some(match parts.as_slice() {
            ["journeys"] => Route::Journeys,
            ["journeys", id_part] => Route::Journey(id(id_part)?),
            ["journeys", id_part, "complete"] => Route::Complete(id(id_part)?),
            ["journeys", id_part, "callback-fault"] => Route::CallbackFault(id(id_part)?),
            ["callbacks"] => Route::Callbacks,
            ["callbacks", id_part, "redeliver"] => Route::Redeliver(id(id_part)?),
            ["requests"] => Route::Requests,
            ["requests", "count"] => Route::RequestCount,
            ["faults"] => Route::Faults,
            ["faults", n] => Route::Fault(n.parse().ok()?),
            ["health"] => Route::Health,
            ["metrics"] => Route::Metrics,
            ["reset"] => Route::Reset,
            ["inbox", name] => Route::Inbox(id(name)?),
            _ => return None,
        })
    }

    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Journeys | Route::Callbacks | Route::Health | Route::Metrics => &[Method::GET],
            Route::Journey(_) => &[Method::GET, Method::PUT],
            Route::CallbackFault(_) => &[Method::PUT, Method::DELETE],
            Route::Requests | Route::Fault(_) => &[Method::GET, Method::DELETE],
            Route::Faults => &[Method::GET, Method::POST, Method::DELETE],
            Route::Complete(_) | Route::Redeliver(_) | Route::RequestCount | Route::Reset => {
                &[Method::POST]
            }
            // Any method is kept, but these two read and empty the box.
            Route::Inbox(_) => &[],
        }
    }
}

/// An admin request whose head passed the checks.
pub struct Call {
    route: Route,
    method: Method,
    query: String,
    /// The request's headers, for a request the inbox keeps.
    headers: Vec<(String, String)>,
}

/// Whether a request on an inbox route is one to keep (not a read or an emptying).
fn inbox_keeps(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::DELETE)
}

/// The checks on an admin request's head: the admin token (401; health is open), route (404),
/// method (405). The token comes first, so a caller without it learns nothing of the routes.
pub fn prepare<B>(app: &App, request: &Request<B>) -> Result<Call, ApiError> {
    let path = request.uri().path();
    let route = Route::parse(path);
    let method = request.method().clone();
    // Health is for orchestrators, and the inbox takes callbacks, which carry no admin token
    // (it only keeps what it gets); reading the inbox needs the token.
    let open = match &route {
        Some(Route::Health) => true,
        Some(Route::Inbox(_)) => inbox_keeps(&method),
        _ => false,
    };
    if !open {
        authorize(app, request)?;
    }
    let route = route.ok_or_else(|| ApiError::route_not_found(request.method(), path))?;
    if let Route::Inbox(name) = &route {
        crate::inbox::check_name(name).map_err(|e| ApiError::bad_request(e.to_string()))?;
    } else if !route.allowed().contains(&method) {
        let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        return Err(ApiError::method_not_allowed(&method, &allow.join(", ")));
    }
    let headers = if matches!(route, Route::Inbox(_)) && inbox_keeps(&method) {
        request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(Call {
        route,
        method,
        query: request.uri().query().unwrap_or("").to_string(),
        headers,
    })
}

/// The name of the cookie the console's login form sets: the admin token.
pub const TOKEN_COOKIE: &str = "otk_mock_admin";

/// Whether the request carries the admin token (or none is needed): as a bearer token, or in
/// the console's cookie.
pub fn authorized<B>(app: &App, request: &Request<B>) -> bool {
    let Some(token) = &app.config().admin_token else {
        return true;
    };
    let bearer_ok = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()))
        .is_some_and(|p| token.matches(p));
    bearer_ok
        || cookie(request, TOKEN_COOKIE)
            .map(cookie_decode)
            .is_some_and(|p| token.matches(p.as_bytes()))
}

/// A token as the console's cookie holds it: percent-encoded, since a token may hold `;` or
/// spaces, which a cookie value may not.
pub fn cookie_encode(token: &str) -> String {
    form_urlencoded::byte_serialize(token.as_bytes()).collect()
}

/// The token a cookie value holds ([`cookie_encode`]).
fn cookie_decode(value: &str) -> String {
    form_urlencoded::parse(format!("t={value}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The value of cookie `name` of a request, if it has one.
pub fn cookie<'r, B>(request: &'r Request<B>, name: &str) -> Option<&'r str> {
    request
        .headers()
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// With `--admin-token`, the request must carry `Authorization: Bearer <token>`.
fn authorize<B>(app: &App, request: &Request<B>) -> Result<(), ApiError> {
    if authorized(app, request) {
        return Ok(());
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|value| bearer(value.as_bytes()));
    tracing::warn!(
        path = %request.uri().path(),
        credentials = if presented.is_some() { "wrong bearer token" } else { "no bearer token" },
        "admin request refused"
    );
    let mut error = ApiError::unauthorized();
    error.message =
        "Authorization Failed: the admin API needs Authorization: Bearer <admin token>".into();
    error.headers.push((
        "www-authenticate",
        r#"Bearer realm="otk-mock admin""#.into(),
    ));
    Err(error)
}

/// The token of an `Authorization: Bearer <token>` value (the scheme in any case).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case(b"bearer") || !rest.first()?.is_ascii_whitespace() {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Answer one admin request, its body read.
pub fn handle(app: &App, call: Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let Call {
        route,
        method,
        query,
        headers,
    } = call;
    let journeys = app.journeys();
    // Everything but health and metrics reads or writes what replicas share: while the
    // shared store is out of reach, say so rather than answer for this replica alone.
    if !matches!(route, Route::Health | Route::Metrics) {
        if let Some(why) = journeys.unavailable() {
            let mut error = ApiError::unavailable(why);
            error.headers.push(("retry-after", "1".to_string()));
            return Err(error);
        }
    }
    match route {
        Route::Journeys => {
            let paging = Paging::read(&query, 1)?;
            let (records, next) = journeys.page(paging.after[0], paging.limit, MAX_PAGE_BYTES);
            let list: Vec<Value> = records.iter().map(|r| view(app, r)).collect();
            Ok(ok(json!({
                "count": list.len(),
                "journeys": list,
                "next": next.map_or(Value::Null, |at| next_cursor(&[(at, true)])),
            })))
        }
        Route::Journey(id) if method == Method::GET => {
            let record = journeys.get(&id).ok_or_else(ApiError::journey_not_found)?;
            Ok(ok(view(app, &record)))
        }
        Route::Journey(id) => {
            let name = scenario_field(body)?
                .ok_or_else(|| ApiError::bad_request("scenario is required"))?;
            let catalogue = app.catalogue();
            let scenario = named_scenario(&catalogue, &name, "scenario")?;
            let (record, created) = journeys.bind(&id, scenario)?;
            tracing::info!(journey_id = %id, scenario = %scenario.name, created, "scenario bound");
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_value_response(status, &view(app, &record)))
        }
        Route::Complete(id) => {
            let catalogue = app.catalogue();
            let scenario: Option<&Scenario> = match scenario_field(body)? {
                Some(name) => Some(named_scenario(&catalogue, &name, "scenario")?),
                None => None,
            };
            let record = journeys.complete(&id, scenario, Ending::Admin)?;
            Ok(ok(view(app, &record)))
        }
        Route::Callbacks => {
            let paging = Paging::read(&query, 2)?;
            let journey_id = paging
                .rest
                .iter()
                .find(|(k, _)| k == "journeyId")
                .map(|(_, v)| v.as_str());
            let callbacks = app.callbacks();
            // With a shared store, every replica's attempts, read now.
            let shared = callbacks.shared_logs();
            let (attempts, lost) = match &shared {
                Some((attempts, lost)) => (attempts, lost),
                None => callbacks.logs(),
            };
            let (attempts, attempts_at, more_attempts) =
                attempts.page(paging.after[0], paging.limit, journey_id);
            let (lost, lost_at, more_lost) = lost.page(paging.after[1], paging.limit, journey_id);
            Ok(ok(json!({
                "stats": callbacks.stats(),
                "attempts": attempts,
                "lost": lost,
                "next": next_cursor(&[(attempts_at, more_attempts), (lost_at, more_lost)]),
            })))
        }
        Route::Redeliver(id) => {
            let delivery = journeys.redeliver(&id)?;
            Ok(json_value_response(
                StatusCode::ACCEPTED,
                &json!({ "journeyId": id, "delivery": delivery }),
            ))
        }
        Route::CallbackFault(id) => {
            let fault = if method == Method::DELETE {
                None
            } else {
                let fault = callback_fault_field(body)?;
                if let Some(d) = fault.delay {
                    check_delay(d, app.config().callbacks.max_delay, "fault")
                        .map_err(ApiError::bad_request)?;
                }
                Some(fault)
            };
            let record = journeys.set_callback_fault(&id, fault)?;
            Ok(ok(view(app, &record)))
        }
        Route::Requests if method == Method::GET => {
            let paging = Paging::read(&query, 1)?;
            let filter = Filter::from_pairs(paging.rest).map_err(ApiError::bad_request)?;
            let page = app.requests_page(&filter, paging.after[0], paging.limit);
            Ok(ok(json!({
                "count": page.requests.len(),
                "requests": page.requests,
                "next": page.next.map_or(Value::Null, |at| next_cursor(&[(at, true)])),
            })))
        }
        Route::Requests => Ok(ok(json!({ "deleted": app.clear_journal() }))),
        Route::RequestCount => {
            let filter = Filter::from_json(body).map_err(ApiError::bad_request)?;
            Ok(ok(json!({ "count": app.request_count(&filter) })))
        }
        Route::Faults if method == Method::GET => Ok(ok(json!({ "faults": app.faults().list() }))),
        Route::Faults if method == Method::POST => {
            let spec = parse_rule(body).map_err(ApiError::bad_request)?;
            let view = app.add_fault(spec, body).map_err(store_error)?;
            tracing::info!(rule = %view, "fault rule added");
            Ok(json_value_response(StatusCode::CREATED, &view))
        }
        Route::Faults => Ok(ok(
            json!({ "deleted": app.clear_faults().map_err(store_error)? }),
        )),
        Route::Fault(n) if method == Method::GET => app
            .faults()
            .list()
            .into_iter()
            .find(|r| r["id"] == n)
            .map(ok)
            .ok_or_else(|| no_rule(n)),
        Route::Fault(n) => app
            .remove_fault(n)
            .map_err(store_error)?
            .map(ok)
            .ok_or_else(|| no_rule(n)),
        Route::Health => Ok(ok(health(app))),
        Route::Metrics => {
            let mut response = Response::new(full(app.metrics_text()));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            Ok(response)
        }
        Route::Inbox(name) if method == Method::GET || method == Method::HEAD => {
            let received = app.inbox().list(&name);
            Ok(ok(
                json!({ "name": name, "count": received.len(), "requests": received }),
            ))
        }
        Route::Inbox(name) if method == Method::DELETE => {
            Ok(ok(json!({ "deleted": app.inbox().clear(&name) })))
        }
        Route::Inbox(name) => {
            let seq = app
                .inbox()
                .push(
                    &name,
                    crate::inbox::Incoming {
                        method: method.as_str(),
                        query: (!query.is_empty()).then_some(query.as_str()),
                        headers,
                        body,
                        at_ms: crate::time::now_millis(),
                    },
                )
                .map_err(|e| ApiError::bad_request(e.to_string()))?;
            tracing::info!(inbox = %name, seq, "inbox received a request");
            Ok(ok(json!({ "inbox": name, "received": seq })))
        }
        Route::Reset => {
            app.reset();
            tracing::info!("admin reset: journeys, callbacks, cached bodies, the journal and fault rules forgotten");
            Ok(ok(json!({ "reset": true })))
        }
    }
}

/// A shared store that did not take an admin change: 503, naming it.
fn store_error(e: crate::shared::Unavailable) -> ApiError {
    let mut error = ApiError::unavailable(e.to_string());
    error.headers.push(("retry-after", "1".to_string()));
    error
}

fn no_rule(id: u64) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("Fault rule {id} not found"),
    )
}

/// `GET /__admin/health`: the server answers only once a catalogue is loaded, so it is `ok`,
/// or `degraded` while a shared store is out of reach (still a 200: the replica serves
/// stateless journeys, and restarting it would not bring Redis back); a failed reload is
/// reported beside the catalogue still being served.
pub fn health(app: &App) -> Value {
    let loaded = app.live().load();
    let config = app.config();
    let source = |dir: &Option<std::path::PathBuf>| match dir {
        Some(d) => d.display().to_string(),
        None => "bundled".to_string(),
    };
    // A degraded store is tried again here, so health sees it come back.
    let store = match app.redis() {
        None => json!({"kind": "memory"}),
        Some(redis) => {
            let reachable = !redis.is_degraded() || redis.check().is_ok();
            json!({
                "kind": "redis",
                "url": redis.url().as_str(),
                "replica": redis.replica(),
                "reachable": reachable,
            })
        }
    };
    let degraded = store["reachable"] == json!(false);
    json!({
        "status": if degraded { "degraded" } else { "ok" },
        "store": store,
        "catalogue": {
            "scenarios": loaded.catalogue.scenarios().len(),
            "generation": loaded.generation,
            "loadedAt": iso_from_millis(loaded.loaded_at),
            "scenariosFrom": source(&config.source.scenarios_dir),
            "templatesFrom": source(&config.source.templates_dir),
        },
        "watch": config.watch,
        "lastReloadError": app.live().last_error().map(|e| json!({
            "at": iso_from_millis(e.at),
            "message": e.message,
        })),
        "journeys": app.journeys().len(),
        "journalEntries": app.journal().len(),
        "callbackQueue": app.callbacks().stats().pending,
        "uptimeSeconds": app.uptime().as_secs(),
    })
}

/// The `{"fault": "<callback fault>"}` body of `PUT …/callback-fault`.
fn callback_fault_field(body: &[u8]) -> Result<CallbackFault, ApiError> {
    string_field(body, "fault", r#"{"fault": "duplicate"}"#)?
        .ok_or_else(|| ApiError::bad_request("fault is required"))?
        .parse()
        .map_err(|e| ApiError::bad_request(format!("fault: {e}")))
}

fn ok(value: Value) -> Response<Body> {
    json_value_response(StatusCode::OK, &value)
}

fn view(app: &App, record: &JourneyRecord) -> Value {
    record.view(&app.journeys().journey_url(&record.id))
}

/// The optional `{"scenario": "<name>"}` body.
fn scenario_field(body: &[u8]) -> Result<Option<String>, ApiError> {
    string_field(body, "scenario", r#"{"scenario": "<name>"}"#)
}

/// The `{"<field>": "<text>"}` body of an admin call, trimmed. An empty body, or one without
/// the field, has none; anything else must be that object and nothing more (`example` shows
/// it in the error).
fn string_field(body: &[u8], field: &str, example: &str) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Request body is not valid JSON: {e}; send {example}"
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request("value must be of type object"));
    };
    if let Some(unknown) = map.keys().find(|k| *k != field) {
        return Err(ApiError::bad_request(format!("{unknown} is not allowed")));
    }
    match map.get(field) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(ApiError::bad_request(format!(
            "{field} is not allowed to be empty"
        ))),
        Some(_) => Err(ApiError::bad_request(format!("{field} must be a string"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_field_bodies_name_what_is_wrong() {
        assert_eq!(scenario_field(b"  ").unwrap(), None);
        assert_eq!(scenario_field(b"{}").unwrap(), None);
        assert_eq!(
            scenario_field(br#"{"scenario": " lf "}"#)
                .unwrap()
                .as_deref(),
            Some("lf")
        );
        for (body, needle) in [
            (
                &br#"{"scenario": ""}"#[..],
                "scenario is not allowed to be empty",
            ),
            (br#"{"scenario": 1}"#, "scenario must be a string"),
            (br#"{"scenario": "x", "y": 1}"#, "y is not allowed"),
            (br#"["x"]"#, "value must be of type object"),
            (b"{", r#"send {"scenario": "<name>"}"#),
        ] {
            let e = scenario_field(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains(needle), "{e}");
        }
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer   abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearerabc"), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"abc"), None);
        assert!(
            callback_fault_field(br#"{"fault": "duplicate"}"#)
                .unwrap()
                .duplicate
        );
        for (body, needle) in [
            (&b""[..], "fault is required"),
            (br#"{"fault": "explode"}"#, "fault: "),
            (b"nope", r#"send {"fault": "duplicate"}"#),
        ] {
            let e = callback_fault_field(body).unwrap_err();
            assert!(e.message.contains(needle), "{e}");
        }
    }
}
