//! The console's pages: each reads what the matching admin route reads and renders it.

use hyper::{Response, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};

use super::actions::{inbox_url, shown, CONSOLE_INBOX};
use super::{assets, html, PREFIX};
use crate::app::App;
use crate::journal::Filter;
use crate::journey::JourneyRecord;
use crate::wire::{ApiError, Body};

/// Rows a listing shows at most (the admin API pages further).
const ROWS: usize = 200;

/// What every page knows of the request.
pub struct View<'a> {
    pub protected: bool,
    pub query: &'a str,
}

/// One journey as a table row shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Row {
    id: String,
    url: String,
    state: &'static str,
    scenario: String,
    outcome: Option<String>,
    ended_by: Option<Value>,
    callback: Value,
    callback_url: Option<String>,
    created_at: String,
}

fn row(app: &App, record: &JourneyRecord) -> Row {
    let view = record.view(&app.journeys().journey_url(&record.id));
    Row {
        id: record.id.clone(),
        url: app.journeys().journey_url(&record.id),
        state: record.state.as_str(),
        scenario: record.scenario.clone(),
        outcome: record.outcome.clone(),
        ended_by: view.get("endedBy").cloned().filter(|v| !v.is_null()),
        callback: view["callback"]["status"].clone(),
        callback_url: record.callback_url().map(str::to_string),
        created_at: crate::time::iso_from_millis(record.created_at),
    }
}

/// A page: `template` with the context every page has, and `fill`'s.
fn page(
    view: &View<'_>,
    template: &str,
    section: &str,
    status: StatusCode,
    fill: impl FnOnce(&mut tera::Context),
) -> Result<Response<Body>, ApiError> {
    let mut context = tera::Context::new();
    context.insert("prefix", PREFIX);
    context.insert("section", section);
    context.insert("protected", &view.protected);
    fill(&mut context);
    Ok(html(status, assets::render(template, &context)?))
}

/// Names, descriptions and whether they end a journey, for the scenario pickers.
fn scenario_choices(app: &App) -> Vec<Value> {
    app.catalogue()
        .scenarios()
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "terminal": s.terminal,
                "status": s.status,
                "default": s.name == app.config().default_scenario,
            })
        })
        .collect()
}

/// `/__admin/ui/`: create a journey, and every journey.
pub fn journeys(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let (records, _) = app.journeys().page(0, ROWS, 4 << 20);
    let rows: Vec<Row> = records.iter().rev().map(|r| row(app, r)).collect();
    let config = app.config();
    let inbox_url = inbox_url(app, CONSOLE_INBOX);
    page(view, "journeys.html", "journeys", StatusCode::OK, |c| {
        c.insert("journeys", &rows);
        c.insert("total", &app.journeys().len());
        c.insert("scenarios", &scenario_choices(app));
        c.insert("autoCompleteAfter", &shown(config.auto_complete_after));
        c.insert("inboxUrl", &inbox_url);
        c.insert("inboxName", CONSOLE_INBOX);
    })
}

/// `/__admin/ui/journeys/{id}`: one journey, its link and QR code, its actions and callbacks.
pub fn journey(app: &App, view: &View<'_>, id: &str) -> Result<Response<Body>, ApiError> {
    let Some(record) = app.journeys().get(id) else {
        return problem(
            app,
            view,
            StatusCode::NOT_FOUND,
            "Journey not found",
            &format!(
                "No journey {id} was created on this mock (or a reset or eviction forgot it)."
            ),
        );
    };
    let url = app.journeys().journey_url(&record.id);
    let detail = record.view(&url);
    // With a shared store, every replica's attempts (as GET /__admin/callbacks shows them).
    let shared = app.callbacks().shared_logs();
    let (attempts, _) = match &shared {
        Some((attempts, lost)) => (attempts, lost),
        None => app.callbacks().logs(),
    };
    let (attempts, _, _) = attempts.page(0, ROWS, Some(id));
    let callback = callback_sent(app, &record);
    let document = app
        .journey_body(&record)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    page(view, "journey.html", "journeys", StatusCode::OK, |c| {
        c.insert("journey", &row(app, &record));
        c.insert(
            "detail",
            &serde_json::to_string_pretty(&detail).unwrap_or_default(),
        );
        c.insert("ended", &record.state.is_terminal());
        c.insert("qr", &assets::qr_svg(&url));
        c.insert("attempts", &attempts);
        c.insert("document", &document);
        c.insert("callbackSent", &callback);
        c.insert("scenarios", &scenario_choices(app));
    })
}

/// What each attempt of an ended journey's callback sends: its headers and its body, as the
/// dispatcher builds them (the body is rendered at the end and never changes; a redelivery
/// sends it again). `None` before the end, or without a `callbackUrl`.
fn callback_sent(app: &App, record: &JourneyRecord) -> Option<Value> {
    let url = record.callback_url()?;
    if !record.state.is_terminal() {
        return None;
    }
    let settings = &app.config().callbacks;
    let mut headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        (
            "User-Agent".to_string(),
            concat!("otk-mock/", env!("CARGO_PKG_VERSION")).to_string(),
        ),
    ];
    let ended_with = record.outcome.as_deref().unwrap_or(&record.scenario);
    let scenario_fault = app
        .catalogue()
        .find(ended_with)
        .and_then(|s| s.callback_fault.clone());
    let wrong_auth = record
        .callback
        .fault
        .clone()
        .or(scenario_fault)
        .is_some_and(|f| f.wrong_auth);
    let key = if wrong_auth {
        Some(crate::callback::WRONG_AUTH_KEY)
    } else {
        record.auth_key()
    };
    if let Some(key) = key {
        headers.push((settings.auth_header.clone(), key.to_string()));
    }
    if settings.signing_key.is_some() {
        for (name, value) in [
            ("webhook-id", format!("msg_{}", record.id)),
            (
                "webhook-timestamp",
                "<the attempt's time, epoch seconds>".to_string(),
            ),
            (
                "webhook-signature",
                "v1,<HMAC-SHA256 of id, timestamp and body>".to_string(),
            ),
        ] {
            headers.push((name.to_string(), value));
        }
    }
    let body = app
        .journeys()
        .document(record, true)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok());
    Some(json!({ "url": url, "headers": headers, "body": body }))
}

/// `/__admin/ui/scenarios`: the catalogue, each with a preview and `curl` lines.
pub fn scenarios(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let catalogue = app.catalogue();
    let base = &app.journeys().settings().public_url;
    let list: Vec<Value> = catalogue
        .scenarios()
        .iter()
        .map(|s| {
            let id = format!("{}-001", s.name);
            let preview = app
                .stateless_body(s, &id)
                .ok()
                .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                .and_then(|v| serde_json::to_string_pretty(&v).ok());
            json!({
                "name": s.name,
                "aliases": s.aliases,
                "description": s.description,
                "status": s.status,
                "step": s.step,
                "message": s.message,
                "terminal": s.terminal,
                "default": s.name == app.config().default_scenario,
                "preview": preview,
                "curlPrefix": format!(
                    "curl -s -X POST {base}/api/v3/otk-service/get-journey/{id} -H 'Authorization: any-token'"
                ),
                "curlHeader": format!(
                    "curl -s -X POST {base}/api/v3/otk-service/get-journey/ANY-ID -H 'Authorization: any-token' -H 'X-Mock-Scenario: {}'",
                    s.name
                ),
            })
        })
        .collect();
    page(view, "scenarios.html", "scenarios", StatusCode::OK, |c| {
        c.insert("scenarios", &list);
    })
}

/// `/__admin/ui/callbacks`: every attempt, the lost ones, the counters.
pub fn callbacks(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let callbacks = app.callbacks();
    // With a shared store, every replica's attempts (as GET /__admin/callbacks shows them).
    let shared = callbacks.shared_logs();
    let (attempts, lost) = match &shared {
        Some((attempts, lost)) => (attempts, lost),
        None => callbacks.logs(),
    };
    let (mut attempts, _, _) = attempts.page(0, ROWS, None);
    let (lost, _, _) = lost.page(0, ROWS, None);
    attempts.reverse();
    page(view, "callbacks.html", "callbacks", StatusCode::OK, |c| {
        c.insert("stats", &callbacks.stats());
        c.insert("attempts", &attempts);
        c.insert("lost", &lost);
    })
}

/// `/__admin/ui/inbox`: the inboxes.
pub fn inboxes(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let names: Vec<Value> = app
        .inbox()
        .names()
        .into_iter()
        .map(|(name, count)| json!({ "name": name, "count": count }))
        .collect();
    page(view, "inbox.html", "inbox", StatusCode::OK, |c| {
        c.insert("names", &names);
        c.insert("name", &Value::Null);
        c.insert("example", &inbox_url(app, "my-app"));
    })
}

/// `/__admin/ui/inbox/{name}`: what one inbox received, newest first.
pub fn inbox(app: &App, view: &View<'_>, name: &str) -> Result<Response<Body>, ApiError> {
    if let Err(e) = crate::inbox::check_name(name) {
        return problem(
            app,
            view,
            StatusCode::BAD_REQUEST,
            "No such inbox",
            &e.to_string(),
        );
    }
    let mut received = app.inbox().list(name);
    received.reverse();
    let received: Vec<Value> = received
        .into_iter()
        .map(|r| {
            let pretty = serde_json::from_str::<Value>(&r.body)
                .ok()
                .and_then(|v| serde_json::to_string_pretty(&v).ok());
            let mut v = json!(r);
            v["pretty"] = json!(pretty);
            v
        })
        .collect();
    page(view, "inbox.html", "inbox", StatusCode::OK, |c| {
        c.insert("name", name);
        c.insert("received", &received);
        c.insert("url", &inbox_url(app, name));
    })
}

/// `/__admin/ui/requests?journeyId=…&path=…&status=…&since=…`: the journal, filtered.
pub fn requests(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(view.query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    let values: serde_json::Map<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
        .collect();
    let filter = match Filter::from_pairs(pairs) {
        Ok(filter) => filter,
        Err(message) => {
            return page(
                view,
                "requests.html",
                "requests",
                StatusCode::BAD_REQUEST,
                |c| {
                    c.insert("error", &message);
                    c.insert("filter", &values);
                    c.insert("requests", &Vec::<Value>::new());
                    c.insert("count", &0);
                },
            )
        }
    };
    let count = app.request_count(&filter);
    // The newest page: skip to the last ROWS entries the filter accepts.
    let skip = count.saturating_sub(ROWS);
    let mut list = Vec::new();
    let mut after = 0;
    let mut seen = 0;
    loop {
        let page = app.requests_page(&filter, after, 1000);
        for entry in page.requests {
            if seen >= skip {
                list.push(entry);
            }
            seen += 1;
        }
        match page.next {
            Some(next) if list.len() < ROWS => after = next,
            _ => break,
        }
    }
    list.reverse();
    page(view, "requests.html", "requests", StatusCode::OK, |c| {
        c.insert("error", &Value::Null);
        c.insert("filter", &values);
        c.insert("requests", &list);
        c.insert("count", &count);
    })
}

/// `/__admin/ui/faults`: the rules, and a form to add one.
pub fn faults(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    page(view, "faults.html", "faults", StatusCode::OK, |c| {
        c.insert("faults", &app.faults().list());
    })
}

/// `/__admin/ui/faults/check?inject=…`: whether a fault parses, for the form's check as
/// one types: `{"ok": true}` or `{"ok": false, "message": …}`, by the parser that adding it
/// uses.
pub fn check_fault(query: &str) -> Response<Body> {
    let inject = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "inject")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let answer = if inject.trim().is_empty() {
        json!({ "ok": false, "message": "inject is required" })
    } else {
        match inject.parse::<crate::fault::Fault>() {
            Ok(_) => json!({ "ok": true }),
            Err(e) => json!({ "ok": false, "message": e.to_string() }),
        }
    };
    crate::wire::json_value_response(StatusCode::OK, &answer)
}

/// `/__admin/ui/health`: what `GET /__admin/health` says.
pub fn health(app: &App, view: &View<'_>) -> Result<Response<Body>, ApiError> {
    let health = crate::admin::health(app);
    page(view, "health.html", "health", StatusCode::OK, |c| {
        c.insert("health", &health);
        c.insert(
            "uptime",
            &humantime::format_duration(std::time::Duration::from_secs(app.uptime().as_secs()))
                .to_string(),
        );
    })
}

/// The sign-in form (with `--admin-token`).
pub fn login(
    app: &App,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let view = View {
        protected: app.config().admin_token.is_some(),
        query: "",
    };
    page(&view, "login.html", "login", status, |c| {
        c.insert("error", &error);
    })
}

/// A page that says what went wrong, and offers a way back.
pub fn problem(
    _app: &App,
    view: &View<'_>,
    status: StatusCode,
    title: &str,
    text: &str,
) -> Result<Response<Body>, ApiError> {
    page(view, "problem.html", "", status, |c| {
        c.insert("title", title);
        c.insert("text", text);
        c.insert("status", &status.as_u16());
    })
}
