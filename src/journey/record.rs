//! One created journey as the store keeps it: what the app sent, the scenario it is bound to,
//! where it is in its lifecycle, and how its callback went.

use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::render::facts::{Journey, UserInfo};
use crate::scenario::Scenario;
use crate::time::iso_from_millis;

/// Where a journey is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created; the link has not been opened.
    Created,
    /// The hosted page was opened.
    InProgress,
    /// Ended with a scenario whose status is `COMPLETED`.
    Completed,
    /// Ended with any other terminal scenario.
    Terminated,
    /// The link or the session ran out of time.
    Expired,
}

impl State {
    /// Whether the journey has ended (completed, terminated or expired).
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Completed | State::Terminated | State::Expired)
    }

    /// The name the admin API and the hosted page use (`in_progress`...).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::InProgress => "in_progress",
            State::Completed => "completed",
            State::Terminated => "terminated",
            State::Expired => "expired",
        }
    }
}

/// What ended a journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// A tester submitted the hosted page.
    HostedPage,
    /// `POST /__admin/journeys/{id}/complete`, `PUT` of a terminal scenario, or the library.
    Admin,
    /// `--auto-complete-after` passed with the link unopened.
    AutoComplete,
    /// `journeyLinkValidity` passed before the journey ended.
    LinkExpired,
    /// `journeySessionExpiry` passed after the page was opened.
    SessionExpired,
}

/// How the journey got its scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundBy {
    /// `X-Mock-Scenario` on the create call.
    Header,
    /// `userInfo.externalReferenceId` = `scenario:<name>`.
    ExternalReferenceId,
    /// `--default-scenario`.
    Default,
    /// `PUT /__admin/journeys/{id}`.
    Admin,
    /// Chosen when completing (hosted page or admin).
    Completion,
}

/// Where the journey's callback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallbackStatus {
    /// No callback (no `callbackUrl`, or the journey has not ended).
    #[default]
    None,
    /// Queued, waiting for an attempt or between retries.
    Pending,
    /// A delivery got a 2xx.
    Delivered,
    /// Every attempt failed, the receiver answered 410 Gone, or the URL was refused.
    Failed,
    /// Dropped by a `drop` fault, or left undelivered by a shutdown.
    Lost,
}

/// Whether a journey left unopened completes by itself: the server's `--auto-complete-after`,
/// or what its create call asked (`X-Mock-Auto-Complete`; the console's create form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoComplete {
    /// `--auto-complete-after`.
    #[default]
    Server,
    /// Never: the journey waits for the hosted page, the admin API or its expiry.
    Off,
    /// This long after creation.
    After(Duration),
}

impl AutoComplete {
    /// How long after creation the journey completes by itself, given the server's setting.
    pub fn after(self, server: Option<Duration>) -> Option<Duration> {
        match self {
            AutoComplete::Server => server,
            AutoComplete::Off => None,
            AutoComplete::After(d) => Some(d),
        }
    }

    /// `off`, or a duration (`30s`).
    pub fn parse(text: &str) -> Result<AutoComplete, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("never") {
            return Ok(AutoComplete::Off);
        }
        crate::time::parse_duration(text)
            .map(AutoComplete::After)
            .map_err(|e| format!("{text:?} is neither `off` nor a duration such as `30s`: {e}"))
    }
}

/// The callback side of a journey.
#[derive(Debug, Clone, Default)]
pub struct CallbackState {
    pub status: CallbackStatus,
    /// `callbackSent`: true once any delivery got a 2xx.
    pub sent: bool,
    /// Attempts made, over every delivery.
    pub attempts: u32,
    /// The `X-Mock-Callback-Delay` of the create call, which overrides every other delay.
    pub delay: Option<Duration>,
    /// The Standard Webhooks message id, kept so a redelivery carries the same one.
    pub webhook_id: Option<String>,
    /// What happens to the callback (`X-Mock-Callback-Fault`, or the admin API); `None`: the
    /// scenario's `[callback] fault`, if any.
    pub fault: Option<crate::fault::CallbackFault>,
}

/// A journey made by create-journey-url or the admin API.
#[derive(Debug, Clone)]
pub struct JourneyRecord {
    pub id: String,
    pub flow_id: String,
    pub flow_version: u32,
    pub flow_test: bool,
    pub db_id: String,
    pub user_id: String,
    /// The effective `processingConfig`: the provider's defaults under what the app sent.
    pub processing_config: Map<String, Value>,
    /// `userInfo`, only the fields the app sent.
    pub user_info: Map<String, Value>,
    /// The scenario the journey ends with unless completion names another.
    pub scenario: String,
    /// Whether that scenario ends a journey (a non-terminal binding never auto-completes).
    pub scenario_terminal: bool,
    pub bound_by: BoundBy,
    pub state: State,
    /// The scenario whose document a terminal journey answers with.
    pub outcome: Option<String>,
    pub ended_by: Option<Ending>,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub updated_at: i64,
    pub callback: CallbackState,
    /// Whether it completes by itself while unopened.
    pub auto_complete: AutoComplete,
    /// The document family the journey was created with (`X-Mock-Document` or
    /// `userInfo.id`), by name; `None` leaves it to the scenario and the id.
    pub document: Option<String>,
    /// `X-Mock-Ip-Check` of the create call; `None` leaves it to the scenario.
    pub ip_check: Option<bool>,
    /// Set by the store on every write, never reused: rendered bodies are cached under it.
    pub revision: u64,
}

/// The provider's sample lifetimes, used when the app sends none.
const DEFAULT_LINK_VALIDITY_S: f64 = 3600.0;
const DEFAULT_SESSION_EXPIRY_S: f64 = 600.0;

fn seconds_to_ms(value: Option<&Value>, default: f64) -> i64 {
    let seconds = value.and_then(Value::as_f64).unwrap_or(default);
    // Validated positive at creation; clamp anyway so arithmetic can never overflow.
    (seconds * 1000.0).clamp(0.0, 1e15) as i64
}

/// What a JSON value holds on the heap, near enough to count it against a byte budget: its
/// strings' and arrays' allocations, and per object member its key, its value's slot and
/// the map's index and hash.
pub fn json_heap_bytes(value: &Value) -> usize {
    const SLOT: usize = std::mem::size_of::<Value>();
    match value {
        Value::String(s) => s.len(),
        Value::Array(items) => {
            items.len() * SLOT + items.iter().map(json_heap_bytes).sum::<usize>()
        }
        Value::Object(map) => map_heap_bytes(map),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// [`json_heap_bytes`] of a JSON object.
pub fn map_heap_bytes(map: &Map<String, Value>) -> usize {
    const MEMBER: usize = std::mem::size_of::<String>()
        + std::mem::size_of::<Value>()
        + 2 * std::mem::size_of::<u64>();
    map.iter()
        .map(|(key, value)| MEMBER + key.len() + json_heap_bytes(value))
        .sum()
}

impl JourneyRecord {
    /// What the record holds on the heap (its strings and JSON), counted against the journey
    /// store's byte budget.
    pub fn heap_bytes(&self) -> usize {
        let strings = [
            &self.id,
            &self.flow_id,
            &self.db_id,
            &self.user_id,
            &self.scenario,
        ];
        strings.iter().map(|s| s.len()).sum::<usize>()
            + self.outcome.as_ref().map_or(0, String::len)
            + self.document.as_ref().map_or(0, String::len)
            + self.callback.webhook_id.as_ref().map_or(0, String::len)
            + self
                .callback
                .fault
                .as_ref()
                .map_or(0, |f| std::mem::size_of_val(f) + f.text().len())
            + map_heap_bytes(&self.processing_config)
            + map_heap_bytes(&self.user_info)
    }

    /// A journey bound to `scenario` and created at `now`: not opened, nothing ended, no
    /// callback yet. The caller fills in the flow, the user and what the app sent.
    pub fn new(id: String, scenario: &Scenario, bound_by: BoundBy, now: i64) -> Self {
        JourneyRecord {
            id,
            flow_id: String::new(),
            flow_version: 1,
            flow_test: false,
            db_id: String::new(),
            user_id: String::new(),
            processing_config: Map::new(),
            user_info: Map::new(),
            scenario: scenario.name.clone(),
            document: None,
            ip_check: None,
            scenario_terminal: scenario.terminal,
            bound_by,
            state: State::Created,
            outcome: None,
            ended_by: None,
            created_at: now,
            started_at: None,
            completed_at: None,
            updated_at: now,
            callback: CallbackState::default(),
            auto_complete: AutoComplete::Server,
            revision: 0,
        }
    }

    /// `journeyLinkValidity` in milliseconds.
    pub fn link_validity_ms(&self) -> i64 {
        seconds_to_ms(
            self.processing_config.get("journeyLinkValidity"),
            DEFAULT_LINK_VALIDITY_S,
        )
    }

    /// `journeySessionExpiry` in milliseconds.
    pub fn session_expiry_ms(&self) -> i64 {
        seconds_to_ms(
            self.processing_config.get("journeySessionExpiry"),
            DEFAULT_SESSION_EXPIRY_S,
        )
    }

    fn config_str(&self, key: &str) -> Option<&str> {
        self.processing_config
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    pub fn callback_url(&self) -> Option<&str> {
        self.config_str("callbackUrl")
    }

    pub fn auth_key(&self) -> Option<&str> {
        self.processing_config
            .get("authKeyForCallback")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    pub fn success_redirect_url(&self) -> Option<&str> {
        self.config_str("successRedirectUrl")
    }

    pub fn failure_redirect_url(&self) -> Option<&str> {
        self.config_str("failureRedirectUrl")
    }

    /// `redirectTime` in whole seconds.
    pub fn redirect_time(&self) -> u64 {
        self.processing_config
            .get("redirectTime")
            .and_then(Value::as_f64)
            .map(|s| s.clamp(0.0, 86_400.0).round() as u64)
            .unwrap_or(0)
    }

    /// The facts a template sees. The analysis timestamps sit just before completion (or the
    /// last update while the journey runs), as the provider's do.
    pub fn to_journey(&self, client_id: &str, callback_sent: bool) -> Journey {
        let end = self.completed_at.unwrap_or(self.updated_at);
        let floor = self.started_at.unwrap_or(self.created_at);
        Journey {
            id: self.id.clone(),
            flow_id: self.flow_id.clone(),
            flow_version: self.flow_version,
            db_id: self.db_id.clone(),
            client_id: client_id.to_string(),
            user_id: self.user_id.clone(),
            processing_config: std::sync::Arc::new(self.processing_config.clone()),
            user_info: UserInfo::Supplied(self.user_info.clone()),
            created_at: self.created_at,
            started_at: self.started_at,
            completed_at: self.completed_at,
            updated_at: iso_from_millis(self.updated_at),
            document_completed_at: iso_from_millis((end - 20_000).max(floor)),
            selfie_completed_at: iso_from_millis((end - 5_000).max(floor)),
            callback_sent,
            ip_check: true,
        }
    }

    /// What the admin API shows of the journey.
    pub fn view(&self, journey_url: &str) -> Value {
        json!({
            "journeyId": self.id,
            "journeyUrl": journey_url,
            "state": self.state,
            "scenario": self.scenario,
            "boundBy": self.bound_by,
            "outcome": self.outcome,
            "endedBy": self.ended_by,
            "flow": { "flowId": self.flow_id, "version": self.flow_version, "test": self.flow_test },
            "userId": self.user_id,
            "processingConfig": self.processing_config,
            "userInfo": self.user_info,
            "document": self.document,
            "ipCheck": self.ip_check,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "completedAt": self.completed_at,
            "updatedAt": iso_from_millis(self.updated_at),
            "callback": {
                "url": self.callback_url(),
                "status": self.callback.status,
                "sent": self.callback.sent,
                "attempts": self.callback.attempts,
                "delayOverride": self.callback.delay.map(|d| humantime::format_duration(d).to_string()),
                "webhookId": self.callback.webhook_id,
                "fault": self.callback.fault,
            },
            "autoComplete": match self.auto_complete {
                AutoComplete::Server => Value::Null,
                AutoComplete::Off => Value::from("off"),
                AutoComplete::After(d) => Value::from(humantime::format_duration(d).to_string()),
            },
            "revision": self.revision,
        })
    }
}
