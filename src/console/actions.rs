//! The console's buttons: each reads its form and calls the operation the admin API calls,
//! then names the page to show next (or says, for a person, what was wrong).

use std::time::Duration;

use hyper::StatusCode;
use serde_json::{Map, Value};

use super::PREFIX;
use crate::app::App;
use crate::callback::check_delay;
use crate::fault::rules::parse_rule_fields;
use crate::fault::CallbackFault;
use crate::journey::create;
use crate::journey::record::{AutoComplete, BoundBy, Ending};
use crate::journey::service::CreateOptions;
use crate::wire::ApiError;

/// The name of the inbox the create form offers for callbacks.
pub const CONSOLE_INBOX: &str = "console";

/// Why an action was not done: a status and a sentence for a person.
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

impl Refused {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refused {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Refused::new(StatusCode::BAD_REQUEST, message)
    }
}

/// The shared store (`--store redis://`) is out of reach: the provider's 503, said on the page.
fn unavailable(e: crate::shared::Unavailable) -> Refused {
    Refused::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused::new(e.status, e.message)
    }
}

impl From<crate::journey::JourneyError> for Refused {
    fn from(e: crate::journey::JourneyError) -> Self {
        let message = e.to_string();
        let status = ApiError::from(e).status;
        // The provider's wording of a 5xx says nothing; this one is for a person.
        Refused::new(status, message)
    }
}

/// Where to go after an action, or why it was not done.
pub type Done = Result<String, Refused>;

/// A submitted form: its fields, trimmed, the empty ones left out.
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.trim().to_string()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
        )
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, key: &str, label: &str) -> Result<&str, Refused> {
        self.get(key)
            .ok_or_else(|| Refused::bad(format!("{label} is required.")))
    }
}

/// The page of one journey.
fn journey_page(id: &str) -> String {
    format!(
        "{PREFIX}journeys/{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    )
}

/// A number field of the create form, into the create body.
fn number(form: &Form, key: &str, into: &mut Map<String, Value>) -> Result<(), Refused> {
    if let Some(text) = form.get(key) {
        // Whole numbers stay whole (`3`, not `3.0`), as an app's JSON would send them.
        let value = match text.parse::<i64>() {
            Ok(n) => serde_json::Number::from(n),
            Err(_) => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .ok_or_else(|| Refused::bad(format!("{key} must be a number, not {text:?}.")))?,
        };
        into.insert(key.to_string(), Value::Number(value));
    }
    Ok(())
}

/// The create form: the body an app would send to create-journey-url, checked by the same
/// rules, and the options its `X-Mock-*` headers would give.
pub fn create(app: &App, form: &Form) -> Done {
    let mut config = Map::new();
    let callback_url = match (form.get("callbackUrl"), form.get("toInbox")) {
        (Some(url), _) => Some(url.to_string()),
        (None, Some(_)) => Some(inbox_url(app, CONSOLE_INBOX)),
        (None, None) => None,
    };
    if let Some(url) = callback_url {
        config.insert("callbackUrl".into(), url.into());
    }
    for key in [
        "authKeyForCallback",
        "successRedirectUrl",
        "failureRedirectUrl",
    ] {
        if let Some(value) = form.get(key) {
            config.insert(key.into(), value.into());
        }
    }
    for key in [
        "redirectTime",
        "journeyLinkValidity",
        "journeySessionExpiry",
    ] {
        number(form, key, &mut config)?;
    }
    let mut body = Map::new();
    body.insert(
        "flowId".into(),
        form.get("flowId").unwrap_or("qa-console").into(),
    );
    if let Some(user) = form.get("userId") {
        body.insert("userId".into(), user.into());
    }
    body.insert("processingConfig".into(), Value::Object(config));
    let text = Value::Object(body).to_string();
    let request = create::parse(text.as_bytes()).map_err(|e| Refused::bad(e.0))?;

    let max = app.config().callbacks.max_delay;
    let callback_delay = match form.get("callbackDelay") {
        Some(text) => {
            let d = crate::time::parse_duration(text)
                .map_err(|e| Refused::bad(format!("Callback delay: {e}")))?;
            check_delay(d, max, "callback delay").map_err(Refused::bad)?;
            Some(d)
        }
        None => None,
    };
    let callback_fault = match form.get("callbackFault") {
        Some(text) => {
            let fault: CallbackFault = text
                .parse()
                .map_err(|e| Refused::bad(format!("Callback fault: {e}")))?;
            if let Some(d) = fault.delay {
                check_delay(d, max, "callback fault").map_err(Refused::bad)?;
            }
            Some(fault)
        }
        None => None,
    };
    let auto_complete = match form.get("autoComplete") {
        None | Some("server") => AutoComplete::Server,
        Some(text) => {
            AutoComplete::parse(text).map_err(|e| Refused::bad(format!("Auto-complete: {e}")))?
        }
    };
    let catalogue = app.catalogue();
    let name = form.required("scenario", "A scenario")?;
    let scenario = crate::app::named_scenario(&catalogue, name, "scenario")?;
    let record = app.journeys().create(
        request,
        scenario,
        BoundBy::Admin,
        CreateOptions {
            callback_delay,
            callback_fault,
            auto_complete,
        },
    )?;
    tracing::info!(journey_id = %record.id, scenario = %scenario.name, "journey created from the console");
    Ok(journey_page(&record.id))
}

/// End a journey now with the chosen scenario (`POST /__admin/journeys/{id}/complete`).
pub fn complete(app: &App, id: &str, form: &Form) -> Done {
    let catalogue = app.catalogue();
    let name = form.required("scenario", "A scenario")?;
    let scenario = crate::app::named_scenario(&catalogue, name, "scenario")?;
    app.journeys().complete(id, Some(scenario), Ending::Admin)?;
    Ok(journey_page(id))
}

/// Bind another scenario (`PUT /__admin/journeys/{id}`).
pub fn rebind(app: &App, id: &str, form: &Form) -> Done {
    let catalogue = app.catalogue();
    let name = form.required("scenario", "A scenario")?;
    let scenario = crate::app::named_scenario(&catalogue, name, "scenario")?;
    app.journeys().bind(id, scenario)?;
    Ok(journey_page(id))
}

/// Deliver the callback again (`POST /__admin/callbacks/{id}/redeliver`).
pub fn redeliver(app: &App, id: &str) -> Done {
    app.journeys().redeliver(id)?;
    Ok(journey_page(id))
}

/// Forget everything (`POST /__admin/reset`).
pub fn reset(app: &App) -> Done {
    app.reset();
    tracing::info!("console reset: journeys, callbacks, cached bodies, the journal, fault rules and the inbox forgotten");
    Ok(PREFIX.to_string())
}

/// Add a fault rule (`POST /__admin/faults`), from the form's fields.
pub fn add_fault(app: &App, form: &Form) -> Done {
    let mut map = Map::new();
    for key in ["inject", "journeyId", "route"] {
        if let Some(value) = form.get(key) {
            map.insert(key.into(), value.into());
        }
    }
    if let Some(text) = form.get("probability") {
        let p: f64 = text
            .parse()
            .map_err(|_| Refused::bad(format!("probability must be a number, not {text:?}.")))?;
        map.insert("probability".into(), Value::from(p));
    }
    if let Some(text) = form.get("times") {
        let n: u64 = text
            .parse()
            .map_err(|_| Refused::bad(format!("times must be a whole number, not {text:?}.")))?;
        map.insert("times".into(), Value::from(n));
    }
    let spec = parse_rule_fields(&map).map_err(Refused::bad)?;
    // The rule as the admin API would have received it: with a shared store, that is what
    // the other replicas read back.
    let body = serde_json::to_vec(&Value::Object(map)).unwrap_or_default();
    let view = app.add_fault(spec, &body).map_err(unavailable)?;
    tracing::info!(rule = %view, "fault rule added from the console");
    Ok(format!("{PREFIX}faults"))
}

/// Remove a fault rule (`DELETE /__admin/faults/{id}`).
pub fn delete_fault(app: &App, n: &str) -> Done {
    let missing = || {
        Refused::new(
            StatusCode::NOT_FOUND,
            format!("There is no fault rule {n}."),
        )
    };
    let id: u64 = n.parse().map_err(|_| missing())?;
    app.remove_fault(id)
        .map_err(unavailable)?
        .ok_or_else(missing)?;
    Ok(format!("{PREFIX}faults"))
}

/// Empty the request journal (`DELETE /__admin/requests`).
pub fn clear_requests(app: &App) -> Done {
    app.clear_journal();
    Ok(format!("{PREFIX}requests"))
}

/// Empty one inbox (`DELETE /__admin/inbox/{name}`).
pub fn clear_inbox(app: &App, name: &str) -> Done {
    app.inbox().clear(name);
    Ok(format!("{PREFIX}inbox"))
}

/// The URL of inbox `name` that a callback can reach: on the admin listener with
/// `--admin-bind` (the provider port answers 404 under `/__admin/` then), else where
/// `journeyUrl`s point.
pub fn inbox_url(app: &App, name: &str) -> String {
    let base = match app.config().admin_bind {
        Some(admin) if admin.ip().is_unspecified() => format!("http://localhost:{}", admin.port()),
        Some(admin) => format!("http://{admin}"),
        None => app.journeys().settings().public_url.clone(),
    };
    format!("{base}{}{name}", crate::callback::policy::INBOX_PREFIX)
}

/// How long a duration reads in a form's hint.
pub fn shown(d: Option<Duration>) -> String {
    d.map_or_else(
        || "never".to_string(),
        |d| humantime::format_duration(d).to_string(),
    )
}
