//! Which fault a provider request gets, and the random draws behind it.
//!
//! Sources, first match wins: the request's `X-Mock-Fault` header; an admin rule for the
//! request's journey id; a global admin rule (oldest first within each); the fault of the
//! scenario chosen for the request (get-journey only). A rule may apply with a probability
//! and only to the first N requests it matches; its draws come from its own seeded RNG, so
//! the same sequence of requests meets the same faults on every run.
//!
//! The hot path pays for this only when a fault exists: with no admin rule, [`Rules::pick`]
//! reads one atomic flag; a scenario without a fault has nothing to look at.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::Fault;
use crate::hash::stable_seed;
use crate::wire::RouteKind;

/// Where a request's fault came from, as the journal reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    /// An admin rule for this journey id.
    JourneyRule,
    /// A global admin rule.
    Rule,
    Scenario,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Header => "header",
            Source::JourneyRule => "journey_rule",
            Source::Rule => "rule",
            Source::Scenario => "scenario",
        }
    }
}

/// The fault one request gets, its random delay already drawn.
#[derive(Debug, Clone)]
pub struct Planned {
    pub fault: Arc<Fault>,
    pub delay: Option<Duration>,
    pub source: Source,
}

/// A scenario's `[fault]` table.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioFault {
    #[serde(serialize_with = "fault_text")]
    pub inject: Arc<Fault>,
    /// 0 to 1; 1 applies to every request.
    pub probability: f64,
    /// The RNG seed; `None`: from `--seed` and the scenario name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Only the first N requests that render the scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
}

fn fault_text<S: serde::Serializer>(fault: &Arc<Fault>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(fault.text())
}

/// A scenario fault while a catalogue is served: its counters and RNG.
pub struct ScenarioFaultState {
    spec: ScenarioFault,
    matched: AtomicU64,
    rng: Mutex<ChaCha8Rng>,
}

impl ScenarioFaultState {
    pub fn new(spec: ScenarioFault, global_seed: u64, scenario: &str) -> Self {
        let seed = spec.seed.unwrap_or_else(|| {
            stable_seed(global_seed, &format!("\u{0}fault-scenario-{scenario}"))
        });
        ScenarioFaultState {
            spec,
            matched: AtomicU64::new(0),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// The fault for one more request rendering the scenario, if it applies this time.
    pub fn pick(&self) -> Option<Planned> {
        let n = self.matched.fetch_add(1, Ordering::Relaxed);
        if self.spec.times.is_some_and(|times| n >= times) {
            return None;
        }
        let fault = &self.spec.inject;
        let delay = if self.spec.probability < 1.0 || fault.is_random() {
            let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
            if self.spec.probability < 1.0 && rng.random::<f64>() >= self.spec.probability {
                return None;
            }
            fault.draw_delay(&mut *rng)
        } else {
            fault.draw_delay(&mut rand::rng())
        };
        Some(Planned {
            fault: fault.clone(),
            delay,
            source: Source::Scenario,
        })
    }
}

/// An admin rule as posted to `/__admin/faults`.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    pub inject: Arc<Fault>,
    pub journey_id: Option<String>,
    pub route: Option<RouteKind>,
    pub probability: f64,
    pub seed: Option<u64>,
    pub times: Option<u64>,
}

struct Rule {
    id: u64,
    spec: RuleSpec,
    seed: u64,
    matched: u64,
    applied: u64,
    rng: ChaCha8Rng,
}

impl Rule {
    fn view(&self) -> Value {
        json!({
            "id": self.id,
            "inject": self.spec.inject.text().as_ref(),
            "journeyId": self.spec.journey_id,
            "route": self.spec.route.map(RouteKind::as_str),
            "probability": self.spec.probability,
            "seed": self.seed,
            "times": self.spec.times,
            "matched": self.matched,
            "applied": self.applied,
            "exhausted": self.exhausted(),
        })
    }

    fn exhausted(&self) -> bool {
        self.spec.times.is_some_and(|t| self.matched >= t)
    }

    fn matches(&self, route: RouteKind, journey_id: Option<&str>, scoped: bool) -> bool {
        if self.exhausted() || self.spec.route.is_some_and(|r| r != route) {
            return false;
        }
        match (&self.spec.journey_id, scoped) {
            (Some(id), true) => journey_id == Some(id.as_str()),
            (None, false) => true,
            _ => false,
        }
    }
}

#[derive(Default)]
struct Inner {
    rules: Vec<Rule>,
    next_id: u64,
}

/// The admin rules, and the RNG of header faults.
pub struct Rules {
    seed: u64,
    any: AtomicBool,
    inner: Mutex<Inner>,
    header_rng: Mutex<ChaCha8Rng>,
}

impl Rules {
    pub fn new(seed: u64) -> Self {
        Rules {
            seed,
            any: AtomicBool::new(false),
            inner: Mutex::new(Inner::default()),
            header_rng: Mutex::new(ChaCha8Rng::seed_from_u64(stable_seed(
                seed,
                "\u{0}fault-header",
            ))),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plan for a fault from the `X-Mock-Fault` header.
    pub fn header(&self, fault: Fault) -> Planned {
        let delay = if fault.is_random() {
            let mut rng = self.header_rng.lock().unwrap_or_else(|p| p.into_inner());
            fault.draw_delay(&mut *rng)
        } else {
            fault.draw_delay(&mut rand::rng())
        };
        Planned {
            fault: Arc::new(fault),
            delay,
            source: Source::Header,
        }
    }

    /// The first admin rule that applies to this request: rules for its journey id first,
    /// then global ones, oldest first. A rule that matches but whose draw fails lets the next
    /// one try.
    pub fn pick(&self, route: RouteKind, journey_id: Option<&str>) -> Option<Planned> {
        if !self.any.load(Ordering::Relaxed) {
            return None;
        }
        let mut inner = self.lock();
        for scoped in [true, false] {
            for rule in inner.rules.iter_mut() {
                if !rule.matches(route, journey_id, scoped) {
                    continue;
                }
                rule.matched += 1;
                let p = rule.spec.probability;
                if p < 1.0 && rule.rng.random::<f64>() >= p {
                    continue;
                }
                rule.applied += 1;
                return Some(Planned {
                    fault: rule.spec.inject.clone(),
                    delay: rule.spec.inject.draw_delay(&mut rule.rng),
                    source: if scoped {
                        Source::JourneyRule
                    } else {
                        Source::Rule
                    },
                });
            }
        }
        None
    }

    /// Add a rule; returns its view.
    pub fn add(&self, spec: RuleSpec) -> Value {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        self.insert(&mut inner, id, spec)
    }

    /// Add a rule under an id given elsewhere (a shared store's, the same on every replica);
    /// one already there under that id is kept, counters and all. Returns its view.
    pub fn add_with_id(&self, id: u64, spec: RuleSpec) -> Value {
        let mut inner = self.lock();
        if let Some(rule) = inner.rules.iter().find(|r| r.id == id) {
            return rule.view();
        }
        inner.next_id = inner.next_id.max(id);
        let view = self.insert(&mut inner, id, spec);
        inner.rules.sort_by_key(|r| r.id);
        view
    }

    /// The ids of the rules held, oldest first.
    pub fn ids(&self) -> Vec<u64> {
        self.lock().rules.iter().map(|r| r.id).collect()
    }

    fn insert(&self, inner: &mut Inner, id: u64, spec: RuleSpec) -> Value {
        let seed = spec
            .seed
            .unwrap_or_else(|| stable_seed(self.seed, &format!("\u{0}fault-rule-{id}")));
        let rule = Rule {
            id,
            spec,
            seed,
            matched: 0,
            applied: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
        };
        let view = rule.view();
        inner.rules.push(rule);
        self.any.store(true, Ordering::Relaxed);
        view
    }

    /// Every rule, oldest first, with its counters.
    pub fn list(&self) -> Vec<Value> {
        self.lock().rules.iter().map(Rule::view).collect()
    }

    /// Remove one rule; its last view, or `None` if there is no such rule.
    pub fn remove(&self, id: u64) -> Option<Value> {
        let mut inner = self.lock();
        let position = inner.rules.iter().position(|r| r.id == id)?;
        let rule = inner.rules.remove(position);
        self.any.store(!inner.rules.is_empty(), Ordering::Relaxed);
        Some(rule.view())
    }

    /// Remove every rule; how many there were.
    pub fn clear(&self) -> usize {
        let mut inner = self.lock();
        let n = inner.rules.len();
        inner.rules.clear();
        self.any.store(false, Ordering::Relaxed);
        n
    }
}

/// Read a rule from a `POST /__admin/faults` body. Messages are Joi-like, naming the field.
pub fn parse_rule(body: &[u8]) -> Result<RuleSpec, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!("Request body is not valid JSON: {e}; send {{\"inject\": \"status:503\"}}")
    })?;
    let Value::Object(map) = value else {
        return Err("value must be of type object".to_string());
    };
    parse_rule_fields(&map)
}

/// Read a rule from its fields (a JSON object's, or the library's `FaultRule`).
pub fn parse_rule_fields(map: &Map<String, Value>) -> Result<RuleSpec, String> {
    const FIELDS: [&str; 6] = [
        "inject",
        "journeyId",
        "route",
        "probability",
        "seed",
        "times",
    ];
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "{unknown} is not allowed (fields: {})",
            FIELDS.join(", ")
        ));
    }
    let inject = match map.get("inject") {
        None => return Err("inject is required".to_string()),
        Some(Value::String(s)) => s.parse::<Fault>().map_err(|e| format!("inject: {e}"))?,
        Some(_) => return Err("inject must be a string".to_string()),
    };
    let journey_id = match map.get("journeyId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::String(_)) => return Err("journeyId is not allowed to be empty".to_string()),
        Some(_) => return Err("journeyId must be a string".to_string()),
    };
    let route =
        match map.get("route") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(RouteKind::parse_provider(s).ok_or_else(|| {
                "route must be one of [create-journey-url, get-journey]".to_string()
            })?),
            Some(_) => return Err("route must be a string".to_string()),
        };
    if journey_id.is_some() && route == Some(RouteKind::CreateJourneyUrl) {
        return Err(
            "journeyId cannot go with route create-journey-url: a create call has no journey id yet"
                .to_string(),
        );
    }
    let probability = match map.get("probability") {
        None => 1.0,
        Some(v) => match v.as_f64() {
            Some(p) if (0.0..=1.0).contains(&p) => p,
            Some(_) => return Err("probability must be between 0 and 1".to_string()),
            None => return Err("probability must be a number".to_string()),
        },
    };
    let seed = match map.get("seed") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| "seed must be a non-negative integer".to_string())?,
        ),
    };
    let times = match map.get("times") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => Some(n),
            _ => return Err("times must be an integer of at least 1".to_string()),
        },
    };
    Ok(RuleSpec {
        inject: Arc::new(inject),
        journey_id,
        route,
        probability,
        seed,
        times,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> RuleSpec {
        parse_rule(body.as_bytes()).unwrap()
    }

    #[test]
    fn journey_rules_come_before_global_ones_and_times_runs_out() {
        let rules = Rules::new(0);
        assert!(rules.pick(RouteKind::GetJourney, Some("a")).is_none());
        rules.add(spec(r#"{"inject": "status:500"}"#));
        rules.add(spec(
            r#"{"inject": "status:503", "journeyId": "a", "times": 2}"#,
        ));
        let pick = |id| {
            rules
                .pick(RouteKind::GetJourney, Some(id))
                .map(|p| (p.fault.to_string(), p.source))
        };
        assert_eq!(pick("a"), Some(("status:503".into(), Source::JourneyRule)));
        assert_eq!(pick("a"), Some(("status:503".into(), Source::JourneyRule)));
        assert_eq!(pick("a"), Some(("status:500".into(), Source::Rule)));
        assert_eq!(pick("b"), Some(("status:500".into(), Source::Rule)));
        let list = rules.list();
        assert_eq!(list[1]["exhausted"], true);
        assert_eq!(list[1]["matched"], 2);
        assert_eq!(rules.clear(), 2);
        assert!(pick("a").is_none());
    }

    #[test]
    fn a_seeded_probability_gives_the_same_sequence_every_time() {
        let run = || {
            let rules = Rules::new(0);
            rules.add(spec(
                r#"{"inject": "reset", "probability": 0.5, "seed": 42}"#,
            ));
            (0..64)
                .map(|_| rules.pick(RouteKind::GetJourney, None).is_some())
                .collect::<Vec<_>>()
        };
        let first = run();
        assert_eq!(first, run());
        let hits = first.iter().filter(|h| **h).count();
        assert!((16..48).contains(&hits), "{hits} of 64 at p = 0.5");
    }

    #[test]
    fn routes_filter_and_bad_rules_are_refused() {
        let rules = Rules::new(0);
        rules.add(spec(
            r#"{"inject": "empty", "route": "create-journey-url"}"#,
        ));
        assert!(rules.pick(RouteKind::GetJourney, Some("x")).is_none());
        assert!(rules.pick(RouteKind::CreateJourneyUrl, None).is_some());
        for (body, needle) in [
            (
                r#"{"inject": "reset", "colour": 1}"#,
                "colour is not allowed",
            ),
            (r#"{}"#, "inject is required"),
            (r#"{"inject": "explode"}"#, "inject:"),
            (
                r#"{"inject": "reset", "probability": 2}"#,
                "between 0 and 1",
            ),
            (r#"{"inject": "reset", "times": 0}"#, "at least 1"),
            (
                r#"{"inject": "reset", "route": "x"}"#,
                "route must be one of",
            ),
            (r#"[1]"#, "type object"),
        ] {
            let e = parse_rule(body.as_bytes()).unwrap_err();
            assert!(e.contains(needle), "{body}: {e}");
        }
    }
}
