//! The admin API, `/__admin/…`: journeys (list, read, bind a scenario, complete now),
//! the callback log (every attempt, redelivery) and reset. JSON in, JSON out, no
//! authentication (it is a test tool's control plane; do not expose it), errors in the
//! provider's format like every other route.
//!
//! | Method and path | Does |
//! |---|---|
//! | `GET /__admin/journeys` | every created journey, oldest first |
//! | `GET /__admin/journeys/{id}` | one journey |
//! | `PUT /__admin/journeys/{id}` `{"scenario": …}` | bind a scenario (creates the journey if unknown: 201) |
//! | `POST /__admin/journeys/{id}/complete` `[{"scenario": …}]` | end it now |
//! | `GET /__admin/callbacks[?journeyId=…]` | every attempt, lost callbacks, counters |
//! | `POST /__admin/callbacks/{journeyId}/redeliver` | deliver the callback again (202) |
//! | `POST /__admin/reset` | forget journeys, callbacks and cached bodies |

use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::journey::record::Ending;
use crate::journey::JourneyRecord;
use crate::routes::{json_value_response, read_body, App};
use crate::scenario::Scenario;
use crate::server::Body;

/// The path prefix of every admin route.
pub const PREFIX: &str = "/__admin/";

enum Route {
    Journeys,
    Journey(String),
    Complete(String),
    Callbacks,
    Redeliver(String),
    Reset,
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
            ["callbacks"] => Route::Callbacks,
            ["callbacks", id_part, "redeliver"] => Route::Redeliver(id(id_part)?),
            ["reset"] => Route::Reset,
            _ => return None,
        })
    }

    fn allowed(&self) -> &'static [Method] {
        match self {
            Route::Journeys | Route::Callbacks => &[Method::GET],
            Route::Journey(_) => &[Method::GET, Method::PUT],
            Route::Complete(_) | Route::Redeliver(_) | Route::Reset => &[Method::POST],
        }
    }
}

/// Answer one admin request.
pub async fn route(app: &App, request: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = request.uri().path().to_string();
    let route =
        Route::parse(&path).ok_or_else(|| ApiError::route_not_found(request.method(), &path))?;
    let method = request.method().clone();
    if !route.allowed().contains(&method) {
        let allow: Vec<&str> = route.allowed().iter().map(Method::as_str).collect();
        return Err(ApiError::method_not_allowed(&method, &allow.join(", ")));
    }
    let query = request.uri().query().unwrap_or("").to_string();
    let body = read_body(request, app.config().max_body_bytes).await?;
    let journeys = app.journeys();
    match route {
        Route::Journeys => {
            let list: Vec<Value> = journeys.list().iter().map(|r| view(app, r)).collect();
            Ok(ok(json!({ "count": list.len(), "journeys": list })))
        }
        Route::Journey(id) if method == Method::GET => {
            let record = journeys.get(&id).ok_or_else(ApiError::journey_not_found)?;
            Ok(ok(view(app, &record)))
        }
        Route::Journey(id) => {
            let name = scenario_field(&body)?
                .ok_or_else(|| ApiError::bad_request("scenario is required"))?;
            let scenario = app.named_scenario(&name, "scenario")?;
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
            let scenario: Option<&Scenario> = match scenario_field(&body)? {
                Some(name) => Some(app.named_scenario(&name, "scenario")?),
                None => None,
            };
            let record = journeys.complete(&id, scenario, Ending::Admin)?;
            Ok(ok(view(app, &record)))
        }
        Route::Callbacks => {
            let journey_id = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "journeyId")
                .map(|(_, v)| v.into_owned());
            let callbacks = app.callbacks();
            Ok(ok(json!({
                "stats": callbacks.stats(),
                "attempts": callbacks.attempts(journey_id.as_deref()),
                "lost": callbacks.lost(journey_id.as_deref()),
            })))
        }
        Route::Redeliver(id) => {
            let delivery = journeys.redeliver(&id)?;
            Ok(json_value_response(
                StatusCode::ACCEPTED,
                &json!({ "journeyId": id, "delivery": delivery }),
            ))
        }
        Route::Reset => {
            app.reset();
            tracing::info!("admin reset: journeys, callbacks and cached bodies forgotten");
            Ok(ok(json!({ "reset": true })))
        }
    }
}

fn ok(value: Value) -> Response<Body> {
    json_value_response(StatusCode::OK, &value)
}

fn view(app: &App, record: &JourneyRecord) -> Value {
    record.view(&app.journeys().journey_url(&record.id))
}

/// The optional `{"scenario": "<name>"}` body. An empty body has none; anything else must be
/// that object and nothing more.
fn scenario_field(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "Request body is not valid JSON: {e}; send {{\"scenario\": \"<name>\"}}"
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request("value must be of type object"));
    };
    if let Some(unknown) = map.keys().find(|k| *k != "scenario") {
        return Err(ApiError::bad_request(format!("{unknown} is not allowed")));
    }
    match map.get("scenario") {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_string())),
        Some(Value::String(_)) => Err(ApiError::bad_request("scenario is not allowed to be empty")),
        Some(_) => Err(ApiError::bad_request("scenario must be a string")),
    }
}
