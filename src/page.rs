//! The hosted journey page, `/journey/{journeyId}`: what `journeyUrl` opens.
//!
//! The provider's page walks the user through consent, document capture and a selfie; the
//! mock's lets a tester pick the outcome instead. `GET` opens the journey (created → in
//! progress) and shows a form listing every terminal scenario of the catalogue but the
//! expired one (expiry comes from the clock), the bound scenario first and preselected;
//! `POST` (an `application/x-www-form-urlencoded` body with `outcome=<scenario>`, one of
//! those offered) ends the journey with it and answers `303 See Other` to the same
//! `GET /journey/{id}` (post/redirect/get: Back and reload never resubmit), which then shows
//! the result. The result page redirects to `successRedirectUrl` (status `COMPLETED`) or
//! `failureRedirectUrl` (any other end) after `redirectTime` seconds with a meta refresh. No
//! JavaScript. No redirect when the URL is empty or not http(s). `HEAD` answers as `GET`
//! would, without a body and without opening the journey (a link preview is not a visit).
//!
//! An unknown journey gets a 404 page, an expired one a 410 page, a second submission a 409
//! page, an outcome that the form does not offer a 400 form that says so. Pages are Tera
//! templates under `templates/html/`, HTML-escaped.

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::app::App;
use crate::journey::create::is_http_url;
use crate::journey::record::{Ending, State};
use crate::journey::{JourneyError, JourneyRecord};
use crate::time::iso_from_millis;
use crate::wire::{full, ApiError, Body};

/// The path prefix of the hosted page.
pub const PREFIX: &str = "/journey/";

const JOURNEY_PAGE: &str = "html/journey.html.tera";
const RESULT_PAGE: &str = "html/result.html.tera";
const MESSAGE_PAGE: &str = "html/message.html.tera";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JourneyView {
    id: String,
    state: &'static str,
    flow_id: String,
    user_id: String,
    scenario: String,
    created_at: String,
    started_at: Option<String>,
    user_info: String,
    processing_config: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Outcome<'a> {
    name: &'a str,
    description: &'a str,
    status: &'a str,
    step: &'a str,
    message: &'a str,
    selected: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultView {
    scenario: String,
    status: String,
    step: String,
    message: String,
    success: bool,
    redirect_url: Option<String>,
    /// A configured redirect URL that is not http(s), shown but not followed.
    ignored_url: Option<String>,
    redirect_time: u64,
    /// Why the journey ended without a tester, when it did (auto-completion).
    ended_by_itself: Option<String>,
    /// Whether to say that failed checks still complete a journey.
    completed_note: bool,
}

/// What a hosted-page request asks, from its head.
pub enum Call {
    /// The path names no journey (`/journey/`, `/journey/a/b`).
    NoJourney,
    Show(String),
    /// `HEAD`: what `GET` would answer, without opening the journey.
    Peek(String),
    Submit(String),
}

/// The checks on a hosted-page request's head: a path that names no journey gets the 404
/// page whatever the method; then only GET, HEAD and POST (405).
pub fn prepare<B>(request: &Request<B>) -> Result<Call, ApiError> {
    let id = match request.uri().path().strip_prefix(PREFIX) {
        Some(id) if !id.is_empty() && !id.contains('/') => id.to_string(),
        _ => return Ok(Call::NoJourney),
    };
    match *request.method() {
        Method::GET => Ok(Call::Show(id)),
        Method::HEAD => Ok(Call::Peek(id)),
        Method::POST => Ok(Call::Submit(id)),
        ref other => Err(ApiError::method_not_allowed(other, "GET, HEAD, POST")),
    }
}

/// Answer one hosted-page request, its body read.
pub fn handle(app: &App, call: Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    match call {
        Call::NoJourney => message(
            app,
            StatusCode::NOT_FOUND,
            "Journey not found",
            "This link does not lead to a journey.",
            None,
        ),
        Call::Show(id) => show(app, &id, true),
        Call::Peek(id) => show(app, &id, false).map(|response| {
            let (mut parts, body) = response.into_parts();
            let length = body.bytes().map_or(0, |b| b.len());
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
            Response::from_parts(parts, full(Bytes::new()))
        }),
        Call::Submit(id) => submit(app, &id, body),
    }
}

/// The page of journey `id`; `open`: a visit, which opens a journey not yet opened.
fn show(app: &App, id: &str, open: bool) -> Result<Response<Body>, ApiError> {
    let Some(record) = app.journeys().get(id) else {
        return not_found(app, id);
    };
    match record.state {
        State::Expired => expired(app, &record),
        State::Completed | State::Terminated => result(app, &record, StatusCode::OK, None),
        State::Created | State::InProgress if open => {
            let record = app.journeys().open(id).unwrap_or(record);
            // It may have ended between the two reads.
            if record.state.is_terminal() {
                return show(app, id, false);
            }
            form(app, &record, StatusCode::OK, None)
        }
        State::Created | State::InProgress => form(app, &record, StatusCode::OK, None),
    }
}

/// Whether the form offers `scenario` as an outcome: it ends a journey, and it is not the
/// expired scenario (expiry comes from the clock, not from a choice).
fn offered(app: &App, scenario: &crate::scenario::Scenario) -> bool {
    scenario.terminal && scenario.name != app.config().expired_scenario
}

/// `303 See Other` to the journey's page, after a submission that ended it.
fn see_page(id: &str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::SEE_OTHER;
    let location = format!(
        "{PREFIX}{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn submit(app: &App, id: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let Some(record) = app.journeys().get(id) else {
        return not_found(app, id);
    };
    match record.state {
        State::Expired => return expired(app, &record),
        State::Completed | State::Terminated => {
            return result(
                app,
                &record,
                StatusCode::CONFLICT,
                Some("This journey had already ended; nothing was changed."),
            )
        }
        State::Created | State::InProgress => {}
    }
    let outcome = form_urlencoded::parse(body)
        .find(|(k, _)| k == "outcome")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty());
    let Some(name) = outcome else {
        return form(
            app,
            &record,
            StatusCode::BAD_REQUEST,
            Some("Choose an outcome."),
        );
    };
    let catalogue = app.catalogue();
    let Some(scenario) = catalogue.find(&name).filter(|s| offered(app, s)) else {
        let text = format!(
            "{name:?} is not one of the outcomes this page offers. Choose one of the list."
        );
        return form(app, &record, StatusCode::BAD_REQUEST, Some(&text));
    };
    match app
        .journeys()
        .complete(id, Some(scenario), Ending::HostedPage)
    {
        Ok(record) => Ok(see_page(&record.id)),
        Err(JourneyError::NotTerminal(name)) => {
            let text = format!("Scenario {name} does not end a journey. Choose another.");
            form(app, &record, StatusCode::BAD_REQUEST, Some(&text))
        }
        Err(JourneyError::Ended { .. }) => show(app, id, false),
        Err(JourneyError::NotFound(_)) => not_found(app, id),
        Err(e) => Err(e.into()),
    }
}

fn pretty(map: &serde_json::Map<String, Value>) -> String {
    serde_json::to_string_pretty(map).unwrap_or_default()
}

fn journey_view(record: &JourneyRecord) -> JourneyView {
    JourneyView {
        id: record.id.clone(),
        state: record.state.as_str(),
        flow_id: record.flow_id.clone(),
        user_id: record.user_id.clone(),
        scenario: record.scenario.clone(),
        created_at: iso_from_millis(record.created_at),
        started_at: record.started_at.map(iso_from_millis),
        user_info: pretty(&record.user_info),
        processing_config: pretty(&record.processing_config),
    }
}

fn form(
    app: &App,
    record: &JourneyRecord,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let catalogue = app.catalogue();
    let default = &app.config().default_scenario;
    let mut offers: Vec<&crate::scenario::Scenario> = catalogue
        .scenarios()
        .iter()
        .filter(|s| offered(app, s))
        .collect();
    // The preselected outcome first, then the default (`success`), then the catalogue's
    // order: on a phone the likely choice and the button are on the first screen.
    offers.sort_by_key(|s| (s.name != record.scenario, s.name != *default));
    let outcomes: Vec<Outcome> = offers
        .into_iter()
        .map(|s| Outcome {
            name: &s.name,
            description: &s.description,
            status: &s.status,
            step: &s.step,
            message: &s.message,
            selected: s.name == record.scenario,
        })
        .collect();
    let mut context = tera::Context::new();
    context.insert("journey", &journey_view(record));
    context.insert("outcomes", &outcomes);
    context.insert("error", &error);
    context.insert("action", &format!("{PREFIX}{}", record.id));
    page(app, JOURNEY_PAGE, &context, status)
}

fn result(
    app: &App,
    record: &JourneyRecord,
    status: StatusCode,
    note: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let name = record
        .outcome
        .clone()
        .unwrap_or_else(|| record.scenario.clone());
    let catalogue = app.catalogue();
    let scenario = catalogue.find(&name);
    let success = record.state == State::Completed;
    let configured = if success {
        record.success_redirect_url()
    } else {
        record.failure_redirect_url()
    };
    let (redirect_url, ignored_url) = match configured {
        Some(url) if is_http_url(url) => (Some(url.to_string()), None),
        Some(url) => (None, Some(url.to_string())),
        None => (None, None),
    };
    let ended_by_itself = match record.ended_by {
        Some(Ending::AutoComplete) => {
            let after = record
                .auto_complete
                .after(app.config().auto_complete_after)
                .map(|d| humantime::format_duration(d).to_string())
                .unwrap_or_default();
            Some(format!(
                "This journey completed by itself {after} after it was created, before its \
                 link was opened (the mock's --auto-complete-after). To choose the outcome \
                 here, create the journey with auto-complete off (the console's create form, \
                 or the header X-Mock-Auto-Complete: off) or start the mock with \
                 --auto-complete-after never."
            ))
        }
        _ => None,
    };
    let view = ResultView {
        ended_by_itself,
        completed_note: success,
        status: scenario.map(|s| s.status.clone()).unwrap_or_default(),
        step: scenario.map(|s| s.step.clone()).unwrap_or_default(),
        message: scenario.map(|s| s.message.clone()).unwrap_or_default(),
        scenario: name,
        success,
        redirect_url,
        ignored_url,
        redirect_time: record.redirect_time(),
    };
    let mut context = tera::Context::new();
    context.insert("journey", &journey_view(record));
    context.insert("result", &view);
    context.insert("note", &note);
    page(app, RESULT_PAGE, &context, status)
}

fn expired(app: &App, record: &JourneyRecord) -> Result<Response<Body>, ApiError> {
    let (title, text) = match record.ended_by {
        Some(Ending::SessionExpired) => ("Journey session expired", "The session of this journey expired (journeySessionExpiry) before it was finished. Ask for a new link."),
        _ => ("Journey link expired", "This journey link has expired (journeyLinkValidity) and can no longer be used. Ask for a new link."),
    };
    message(app, StatusCode::GONE, title, text, Some(record))
}

fn not_found(app: &App, id: &str) -> Result<Response<Body>, ApiError> {
    // Not found, or not known: a shared store out of reach cannot say.
    if let Some(why) = app.journeys().unavailable() {
        return message(
            app,
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again in a moment",
            &why,
            None,
        );
    }
    let text = format!(
        "No journey {id} was created on this server (or it was forgotten by a reset or evicted)."
    );
    message(app, StatusCode::NOT_FOUND, "Journey not found", &text, None)
}

fn message(
    app: &App,
    status: StatusCode,
    title: &str,
    text: &str,
    record: Option<&JourneyRecord>,
) -> Result<Response<Body>, ApiError> {
    let mut context = tera::Context::new();
    context.insert("title", title);
    context.insert("text", text);
    context.insert("status", &status.as_u16());
    context.insert("journey", &record.map(journey_view));
    page(app, MESSAGE_PAGE, &context, status)
}

fn page(
    app: &App,
    template: &str,
    context: &tera::Context,
    status: StatusCode,
) -> Result<Response<Body>, ApiError> {
    let html = app
        .catalogue()
        .renderer()
        .render_page(template, context)
        .map_err(|e| {
            tracing::error!(error = %e, "page render failed");
            ApiError::internal()
        })?;
    let mut response = Response::new(full(html));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
