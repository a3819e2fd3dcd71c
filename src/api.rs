//! The provider surface: the two routes an app under test calls, answered as the provider
//! answers them, as plain functions over the [`App`].
//!
//! Order of checks for every provider request: route (404), the journey id's length (414,
//! get-journey, checked by the router, which has the id at hand), method (405),
//! `Authorization` (401), the `X-Mock-*` headers (400), a JSON `Content-Type` (415,
//! create-journey-url) — all from the head alone — then body size (413, read by the router),
//! then the route's own work ([`work`]).
//!
//! Scenario selection for get-journey, first match wins: the journey's binding (a journey
//! created here or bound through the admin API), the journey-id prefix, `X-Mock-Scenario`,
//! the default (or 404 under `--strict`).
//!
//! A fault (`crate::fault`) is decided only once the request has passed every check and its
//! scenario is known, so a fault never hides a mistake in the request: a `status:` fault
//! answers instead of the work (nothing is created), every other outcome spoils the answer of
//! work that was done (a create-journey-url call did create its journey). What the work found
//! out goes into the request's [`Trace`]; the app records it ([`App::conclude`]).

use std::time::Duration;

use hyper::header::{HeaderName, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};

use crate::app::{named_scenario, App, Trace};
use crate::callback::check_delay;
use crate::catalogue::Choice;
use crate::fault::{CallbackFault, Fault};
use crate::journal::ShortStr;
use crate::journey::create;
use crate::journey::record::{AutoComplete, BoundBy};
use crate::journey::service::CreateOptions;
use crate::scenario::Selection;
use crate::wire::{
    get_journey_id, json_response, json_value_response, ApiError, Body, RouteKind,
    AUTO_COMPLETE_HEADER, CALLBACK_DELAY_HEADER, CALLBACK_FAULT_HEADER, DOCUMENT_HEADER,
    FAULT_HEADER, IP_CHECK_HEADER, SCENARIO_HEADER,
};

/// What a provider request asks, read from its head.
pub enum Call {
    Create {
        header: Option<String>,
        fault: Option<Fault>,
        options: CreateOptions,
        document: Document,
    },
    Get {
        header: Option<String>,
        fault: Option<Fault>,
        document: Document,
    },
}

/// `X-Mock-Document` and `X-Mock-Ip-Check` of a request, checked.
#[derive(Debug, Default, Clone)]
pub struct Document {
    family: Option<&'static str>,
    ip_check: Option<bool>,
}

impl Document {
    fn read<B>(request: &Request<B>) -> Result<Document, ApiError> {
        let families = crate::render::family::bundled();
        let family = parsed_header(request, &DOCUMENT_HEADER, "X-Mock-Document", |text| {
            let name = text.trim();
            families.find(name).map(|f| f.name.as_str()).ok_or_else(|| {
                format!(
                    "{name:?} is not a document family; known: {}",
                    families.names()
                )
            })
        })?;
        let ip_check = parsed_header(
            request,
            &IP_CHECK_HEADER,
            "X-Mock-Ip-Check",
            |text| match text.trim().to_ascii_lowercase().as_str() {
                "on" | "true" => Ok(true),
                "off" | "false" => Ok(false),
                other => Err(format!("{other:?} is neither on nor off")),
            },
        )?;
        Ok(Document { family, ip_check })
    }

    fn choice(&self) -> Choice<'static> {
        Choice {
            document: self.family,
            ip_check: self.ip_check,
        }
    }
}

/// What a provider request asks, once it has passed the checks that come before its body is
/// read: route (404), method (405), `Authorization` (401), and the `X-Mock-*` headers (400).
pub fn prepare<B>(app: &App, request: &Request<B>, route: RouteKind) -> Result<Call, ApiError> {
    match route {
        RouteKind::Other => Err(ApiError::route_not_found(
            request.method(),
            request.uri().path(),
        )),
        RouteKind::CreateJourneyUrl => {
            if *request.method() != Method::POST {
                return Err(ApiError::method_not_allowed(request.method(), "POST"));
            }
            authorize(app, request)?;
            let call = if has_mock_headers(request) {
                let header = scenario_header(request)?;
                let max = app.config().callbacks.max_delay;
                let delay = callback_delay_header(request)?;
                if let Some(d) = delay {
                    check_delay(d, max, "X-Mock-Callback-Delay").map_err(ApiError::bad_request)?;
                }
                let fault = fault_header(request)?;
                let callback_fault = callback_fault_header(request)?;
                if let Some(d) = callback_fault.as_ref().and_then(|f| f.delay) {
                    check_delay(d, max, "X-Mock-Callback-Fault").map_err(ApiError::bad_request)?;
                }
                Call::Create {
                    header,
                    fault,
                    options: CreateOptions {
                        callback_delay: delay,
                        callback_fault,
                        auto_complete: auto_complete_header(request)?,
                    },
                    document: Document::read(request)?,
                }
            } else {
                Call::Create {
                    header: None,
                    fault: None,
                    options: CreateOptions::default(),
                    document: Document::default(),
                }
            };
            json_content_type(request)?;
            Ok(call)
        }
        RouteKind::GetJourney => {
            if !matches!(*request.method(), Method::POST | Method::GET) {
                return Err(ApiError::method_not_allowed(request.method(), "GET, POST"));
            }
            authorize(app, request)?;
            if !has_mock_headers(request) {
                return Ok(Call::Get {
                    header: None,
                    fault: None,
                    document: Document::default(),
                });
            }
            Ok(Call::Get {
                header: scenario_header(request)?,
                fault: fault_header(request)?,
                document: Document::read(request)?,
            })
        }
    }
}

/// The route's own work on the request at `path`, once the body is read. What it finds out
/// goes into `trace`.
pub fn work(
    app: &App,
    call: Call,
    path: &str,
    body: &[u8],
    trace: &mut Trace,
) -> Result<Response<Body>, ApiError> {
    match call {
        Call::Create {
            header,
            fault,
            options,
            document,
        } => create_journey(
            app,
            body,
            header.as_deref(),
            options,
            fault,
            document,
            trace,
        ),
        Call::Get {
            header,
            fault,
            document,
        } => get_journey(
            app,
            get_journey_id(path),
            header.as_deref(),
            fault,
            document,
            trace,
        ),
    }
}

fn authorize<B>(app: &App, request: &Request<B>) -> Result<(), ApiError> {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if app.config().accepts(token) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

// The request's parts, each read and checked before the body: grouping them would only
// rename the list.
#[allow(clippy::too_many_arguments)]
fn create_journey(
    app: &App,
    body: &[u8],
    header: Option<&str>,
    options: CreateOptions,
    fault: Option<Fault>,
    document: Document,
    trace: &mut Trace,
) -> Result<Response<Body>, ApiError> {
    let mut request = create::parse(body).map_err(|e| ApiError::bad_request(e.0))?;
    request.document = document.family.map(str::to_string);
    request.ip_check = document.ip_check;
    let loaded = app.live().load();
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
        (None, None) => (app.default_scenario(catalogue)?, BoundBy::Default),
    };
    record_scenario(scenario.name.as_str());
    trace.scenario = loaded.info(scenario).and_then(|i| i.key);
    trace.selection = Some(match bound_by {
        BoundBy::Header => "header",
        BoundBy::ExternalReferenceId => "external_reference_id",
        _ => "default",
    });
    trace.fault = app.decide(fault, trace.route, None, None);
    trace.fault_status()?;
    let record = app
        .journeys()
        .create(request, scenario, bound_by, options)?;
    trace.journey_id = Some(ShortStr::new(&record.id));
    let answer = serde_json::json!({
        "flow": {
            "flowId": record.flow_id,
            "version": record.flow_version,
            "test": record.flow_test,
        },
        "result": {
            "journeyId": record.id,
            "journeyUrl": app.journeys().journey_url(&record.id),
            "createdAt": record.created_at,
            "ttl": create::ttl(record.link_validity_ms() as f64 / 1000.0),
        }
    });
    Ok(json_value_response(StatusCode::OK, &answer))
}

fn get_journey(
    app: &App,
    id: &str,
    header: Option<&str>,
    fault: Option<Fault>,
    document: Document,
    trace: &mut Trace,
) -> Result<Response<Body>, ApiError> {
    let loaded = app.live().load();
    if let Some(record) = app.journeys().get(id) {
        record_scenario(record.scenario.as_str());
        tracing::debug!(selection = Selection::Binding.as_str(), "scenario selected");
        let info = loaded.info_by_name(&record.scenario);
        trace.scenario = info.and_then(|i| i.key);
        trace.selection = Some(Selection::Binding.as_str());
        trace.fault = app.decide(fault, trace.route, Some(id), info);
        trace.fault_status()?;
        return Ok(json_response(app.journey_body_in(
            &loaded,
            &record,
            document.choice(),
        )?));
    }
    // A shared store out of reach cannot say whether the id was created: only an id that
    // names its scenario is answered (as stateless, which it is unless bound by the admin
    // API); any other waits for the store.
    if let Some(why) = app.journeys().unavailable() {
        if loaded.catalogue.by_prefix(id).is_none() {
            let mut error = ApiError::unavailable(why);
            error.headers.push(("retry-after", "1".to_string()));
            return Err(error);
        }
    }
    let (scenario, selection) = app.select(&loaded.catalogue, id, header)?;
    record_scenario(scenario.name.as_str());
    tracing::debug!(selection = selection.as_str(), "scenario selected");
    let info = loaded.info(scenario);
    trace.scenario = info.and_then(|i| i.key);
    trace.selection = Some(selection.as_str());
    trace.fault = app.decide(fault, trace.route, Some(id), info);
    trace.fault_status()?;
    let body = app.stateless_body_in(&loaded, scenario, id, document.choice())?;
    Ok(json_response(body))
}

/// A create call's body is JSON by its `Content-Type`, else a 415: `application/json` or any
/// `application/*+json`, in any case, parameters allowed (`; charset=utf-8`). A missing one is
/// refused too: the provider's documented call sends `application/json`, and its server
/// (Express, by its `Cannot POST` 404s) reads a body only under a JSON type, so an app that
/// leaves it out would fail there; the mock says so rather than pass.
fn json_content_type<B>(request: &Request<B>) -> Result<(), ApiError> {
    match request.headers().get(CONTENT_TYPE) {
        None => Err(ApiError::unsupported_media_type(
            "Content-Type is missing; send the body as application/json",
        )),
        Some(value) if value.to_str().is_ok_and(is_json_media_type) => Ok(()),
        Some(_) => Err(ApiError::unsupported_media_type(
            "Content-Type must be application/json",
        )),
    }
}

/// `application/json` or `application/*+json`, parameters aside, in any case.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.as_bytes();
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
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

/// A `X-Mock-*` header read with `parse`; a value that is not visible ASCII or does not
/// parse is a 400 naming the header (`label`).
fn parsed_header<B, T, E: std::fmt::Display>(
    request: &Request<B>,
    name: &HeaderName,
    label: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, ApiError> {
    let Some(value) = request.headers().get(name) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::bad_request(format!("{label} must be visible ASCII")))?;
    parse(text)
        .map(Some)
        .map_err(|e| ApiError::bad_request(format!("{label}: {e}")))
}

/// `X-Mock-Callback-Delay` of a create call, by the crate's one duration rule.
fn callback_delay_header<B>(request: &Request<B>) -> Result<Option<Duration>, ApiError> {
    parsed_header(
        request,
        &CALLBACK_DELAY_HEADER,
        "X-Mock-Callback-Delay",
        crate::time::parse_duration,
    )
}

/// `X-Mock-Auto-Complete` of a create call: `off`, or a duration (`30s`) instead of
/// `--auto-complete-after` for this journey.
fn auto_complete_header<B>(request: &Request<B>) -> Result<AutoComplete, ApiError> {
    Ok(parsed_header(
        request,
        &AUTO_COMPLETE_HEADER,
        "X-Mock-Auto-Complete",
        AutoComplete::parse,
    )?
    .unwrap_or_default())
}

/// `X-Mock-Fault`: a fault for this request.
fn fault_header<B>(request: &Request<B>) -> Result<Option<Fault>, ApiError> {
    parsed_header(request, &FAULT_HEADER, "X-Mock-Fault", str::parse)
}

/// `X-Mock-Callback-Fault` of a create call: this journey's callback fault.
fn callback_fault_header<B>(request: &Request<B>) -> Result<Option<CallbackFault>, ApiError> {
    parsed_header(
        request,
        &CALLBACK_FAULT_HEADER,
        "X-Mock-Callback-Fault",
        str::parse,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_json_with_any_parameters_in_any_case() {
        for json in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON;charset=UTF-8",
            " application/json ",
            "application/vnd.api+json",
            "application/merge-patch+JSON; q=1",
        ] {
            assert!(is_json_media_type(json), "{json}");
        }
        for other in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "text/json",
            "application/jsonx",
            "application/+json",
            "application",
            "json",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!is_json_media_type(other), "{other}");
        }
    }
}
