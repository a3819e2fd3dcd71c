//! Scenarios: the model of one outcome (`scenarios/<name>.toml`), and how a request picks one.
//!
//! A scenario is data: a description, the Tera template that renders its journey document,
//! the status it ends in, aliases, variables for the template, callback settings, and the
//! faults it injects (`[fault]` for get-journey, `[callback] fault` for its callback). Loading
//! and checking the files is [`loader`]'s job; this module owns the model and selection.

pub mod bundled;
pub mod loader;
pub mod walk;

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

/// One outcome a journey can have.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// The file stem: `liveness_failed` for `scenarios/liveness_failed.toml`.
    pub name: String,
    pub description: String,
    /// The template's name under the templates directory (`journey/success.json.tera`).
    pub template: String,
    pub aliases: Vec<String>,
    /// `currentStatus`, `step` and `message` of the rendered document.
    pub status: String,
    pub step: String,
    pub message: String,
    /// Whether a journey in this scenario has ended (callbacks are sent only for those).
    pub terminal: bool,
    /// Values for the template, under `vars` in its context.
    pub variables: Map<String, Value>,
    /// `document = "<family>"`: the document family of this scenario's journeys, unless the
    /// journey names one (`userInfo.id`, `X-Mock-Document`). Checked against the families
    /// when the catalogue loads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
    /// `ip_check = false`: the flow's IP check is off (`ipAddresses` holds only the provider's
    /// message), unless the journey says otherwise (`X-Mock-Ip-Check`).
    pub ip_check: bool,
    /// What OCR made of the document, read from the variables that say it.
    #[serde(skip)]
    pub ocr: Ocr,
    /// Callback settings: `[callback] delay = "2s"`.
    #[serde(skip_serializing_if = "Option::is_none", with = "duration_opt")]
    pub callback_delay: Option<Duration>,
    /// `[callback] fault = "duplicate"`: what happens to this scenario's callbacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_fault: Option<crate::fault::CallbackFault>,
    /// `[fault]`: a fault injected into get-journey requests that render this scenario.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::fault::rules::ScenarioFault>,
    /// Where the scenario came from, for messages.
    #[serde(skip)]
    pub source: String,
}

/// What OCR made of a scenario's document, from its `[variables]`: `documentExpired`,
/// `documentHolder = "other"`, `notExtracted = ["dateOfBirth", ...]` (and the older
/// `dateOfIssueExtracted = false`), `ocrUnreadable`, `ocrMismatch = "<role>"`. The roles are
/// checked against the document model when the catalogue loads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ocr {
    /// The extracted dates are an expired document's.
    pub expired: bool,
    /// The document names `person.other`, not the person the pre-fill names.
    pub other_holder: bool,
    /// Roles OCR did not read: their fields are absent, each has a `NOT_EXTRACTED` item.
    pub not_extracted: Vec<String>,
    /// OCR read nothing but the side: `extractedFields` holds only the family's literals.
    pub unreadable: bool,
    /// A role on which OCR and the MRZ or barcode disagree.
    pub mismatch: Option<String>,
}

impl Ocr {
    /// Read from a scenario's variables; a variable of the wrong type is `(name, why)`.
    pub fn from_variables(vars: &Map<String, Value>) -> Result<Ocr, (String, String)> {
        let flag = |name: &str| -> Result<bool, (String, String)> {
            match vars.get(name) {
                None => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err((name.into(), "must be true or false".into())),
            }
        };
        let mut not_extracted = match vars.get("notExtracted") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    (
                        "notExtracted".to_string(),
                        "must be a list of role names".to_string(),
                    )
                })?,
            Some(_) => return Err(("notExtracted".into(), "must be a list of role names".into())),
        };
        if vars.get("dateOfIssueExtracted") == Some(&Value::Bool(false))
            && !not_extracted.iter().any(|r| r == "dateOfIssue")
        {
            not_extracted.push("dateOfIssue".into());
        }
        let holder = match vars.get("documentHolder") {
            None => false,
            Some(Value::String(s)) if s == "other" => true,
            Some(Value::String(s)) if s == "self" => false,
            Some(_) => {
                return Err((
                    "documentHolder".into(),
                    "must be \"self\" or \"other\"".into(),
                ))
            }
        };
        let mismatch = match vars.get("ocrMismatch") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(("ocrMismatch".into(), "must be a role name".into())),
        };
        Ok(Ocr {
            expired: flag("documentExpired")?,
            other_holder: holder,
            not_extracted,
            unreadable: flag("ocrUnreadable")?,
            mismatch,
        })
    }
}

impl Scenario {
    /// Whether `key` names this scenario, by name or alias.
    pub fn is_named(&self, key: &str) -> bool {
        self.name == key || self.aliases.iter().any(|a| a == key)
    }
}

mod duration_opt {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&humantime::format_duration(*d).to_string()),
            None => s.serialize_none(),
        }
    }
}

/// Why a scenario was chosen for a request, as the journal and logs report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// The journey was created or bound with this scenario.
    Binding,
    /// The journey id starts with the scenario's name or alias and `-` or `_`.
    Prefix,
    /// The `X-Mock-Scenario` request header named it.
    Header,
    /// Nothing else matched: `--default-scenario`.
    Default,
}

impl Selection {
    pub fn as_str(self) -> &'static str {
        match self {
            Selection::Binding => "binding",
            Selection::Prefix => "prefix",
            Selection::Header => "header",
            Selection::Default => "default",
        }
    }
}

/// Scenario names and aliases, for the prefix of a journey id. The longest one wins, so that
/// `liveness_failed_retry-1` is not taken for `liveness_failed`.
#[derive(Debug, Clone, Default)]
pub struct PrefixIndex {
    keys: HashMap<Box<str>, usize, foldhash::fast::RandomState>,
    longest: usize,
}

impl PrefixIndex {
    pub fn new<'a>(scenarios: impl IntoIterator<Item = &'a Scenario>) -> Self {
        let mut index = PrefixIndex::default();
        for (i, s) in scenarios.into_iter().enumerate() {
            for key in std::iter::once(&s.name).chain(&s.aliases) {
                index.longest = index.longest.max(key.len());
                // A key two scenarios share (the loader refuses it) goes to the first.
                index.keys.entry(key.as_str().into()).or_insert(i);
            }
        }
        index
    }

    /// The index of the scenario whose name or alias, followed by `-` or `_`, starts `id`.
    /// Each `-` or `_` of the id, from the last, ends a candidate: one hash lookup each,
    /// rather than a comparison with every key.
    pub fn lookup(&self, id: &str) -> Option<usize> {
        let head = &id.as_bytes()[..id.len().min(self.longest + 1)];
        head.iter()
            .enumerate()
            .rev()
            .filter(|(_, b)| matches!(b, b'-' | b'_'))
            // `-` and `_` are ASCII, so the cut is on a character boundary.
            .find_map(|(at, _)| self.keys.get(id.get(..at)?).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(name: &str, aliases: &[&str]) -> Scenario {
        Scenario {
            name: name.into(),
            description: String::new(),
            template: String::new(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            status: String::new(),
            step: String::new(),
            message: String::new(),
            terminal: true,
            variables: Map::new(),
            document: None,
            ip_check: true,
            ocr: Ocr::default(),
            callback_delay: None,
            callback_fault: None,
            fault: None,
            source: String::new(),
        }
    }

    #[test]
    fn prefix_needs_a_separator_and_prefers_the_longest_key() {
        let all = [
            scenario("liveness_failed", &["lf"]),
            scenario("liveness", &[]),
            scenario("success", &["ok"]),
        ];
        let index = PrefixIndex::new(&all);
        assert_eq!(index.lookup("liveness_failed-42"), Some(0));
        assert_eq!(index.lookup("liveness_failed_42"), Some(0));
        assert_eq!(index.lookup("liveness-1"), Some(1));
        assert_eq!(index.lookup("lf-9"), Some(0));
        assert_eq!(index.lookup("ok_x"), Some(2));
        assert_eq!(index.lookup("success"), None);
        assert_eq!(index.lookup("successful-1"), None);
        assert_eq!(index.lookup("Q7K2M9X4ZA"), None);
        assert_eq!(index.lookup(""), None);
    }
}
