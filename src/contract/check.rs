//! `contract check`: recorded files in, one verdict per file out.
//!
//! A file is a get-journey response when it is an object whose only key is `result` holding an
//! object, and a callback body when it is a bare journey document; nothing else is accepted.
//! It is compared with the scenario given, or else with every scenario whose *rendered*
//! `currentStatus` and `step` equal the file's: several scenarios can share a status (all the
//! `COMPLETED`/`COMPLETE` ones, for example), and a recording of one real journey need only
//! match one of them. The file is compatible when any candidate is; the report names that
//! scenario, or the closest one: fewest errors, then fewest warnings, then the most values in
//! common with a render (so that a recording of a passing journey is named after `success`
//! rather than after another scenario with the same shape), then catalogue order.

use crate::text::strip_position;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::diff::{agreement, compare, Finding, Severity};
use super::mock::{BodyKind, MockShape, RENDERS};
use super::schema::{MapPaths, Schema};
use crate::catalogue::Catalogue;

/// Why a file could not be checked (exit 2). Each names its file, and the fix where there is
/// one.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{file}: cannot read: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: no .json files in this directory")]
    NoJsonFiles { file: String },
    #[error("{file}:{line}:{column}: invalid JSON: {message}")]
    InvalidJson {
        file: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{file}: {reason}")]
    NotAJourney { file: String, reason: String },
    #[error("{file}: no scenario to compare with: {reason}; name one with --scenario NAME")]
    NoScenario { file: String, reason: String },
    #[error("--scenario {name:?} is not in the catalogue; known scenarios: {known}")]
    UnknownScenario { name: String, known: String },
    #[error("scenario `{scenario}` does not render: {message}")]
    Render { scenario: String, message: String },
}

/// A recorded file, read and classified.
#[derive(Debug, Clone)]
pub struct Recording {
    /// The file, as given or found (for messages).
    pub file: String,
    pub kind: BodyKind,
    /// The journey document (for a get-journey response, what is inside `result`).
    pub document: Value,
}

impl Recording {
    /// `currentStatus` and `step` of the document, if they are strings.
    pub fn status(&self) -> (Option<&str>, Option<&str>) {
        (
            self.document.get("currentStatus").and_then(Value::as_str),
            self.document.get("step").and_then(Value::as_str),
        )
    }
}

/// The keys of which a bare journey document has at least one.
const DOCUMENT_KEYS: &[&str] = &[
    "currentStatus",
    "step",
    "journeyId",
    "flow",
    "processingConfig",
];

/// Tell a get-journey response from a callback body by looking at it.
pub fn classify(file: &str, value: Value) -> Result<Recording, InputError> {
    let not = |reason: String| InputError::NotAJourney {
        file: file.to_string(),
        reason,
    };
    let Value::Object(mut object) = value else {
        return Err(not(format!(
            "the top level is {}, not a journey: expected a get-journey response \
             ({{\"result\": {{...}}}}) or a callback body (the bare journey document)",
            kind_name(&value)
        )));
    };
    if object.len() == 1 && object.contains_key("result") {
        return match object.remove("result") {
            Some(document @ Value::Object(_)) => Ok(Recording {
                file: file.to_string(),
                kind: BodyKind::GetJourney,
                document,
            }),
            Some(other) => Err(not(format!(
                "`result` is {}, not the journey document object",
                kind_name(&other)
            ))),
            None => Err(not("`result` is missing".to_string())),
        };
    }
    if object.contains_key("error") && !DOCUMENT_KEYS.iter().any(|k| object.contains_key(*k)) {
        return Err(not(
            "this is an error response ({\"error\": ...}), not a journey".to_string(),
        ));
    }
    if DOCUMENT_KEYS.iter().any(|k| object.contains_key(*k)) {
        return Ok(Recording {
            file: file.to_string(),
            kind: BodyKind::Callback,
            document: Value::Object(object),
        });
    }
    Err(not(format!(
        "neither a get-journey response ({{\"result\": {{...}}}}) nor a callback body \
         (a journey document has at least one of {})",
        DOCUMENT_KEYS.join(", ")
    )))
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Read and classify one file.
pub fn read(path: &Path) -> Result<Recording, InputError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| InputError::Unreadable {
        file: file.clone(),
        source,
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| InputError::InvalidJson {
        file: file.clone(),
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    })?;
    classify(&file, value)
}

/// The files named on the command line: files as given, directories searched (recursively)
/// for `*.json`, sorted. Problems are returned beside the files found.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let before = files.len();
                walk(path, &mut files, &mut errors);
                files[before..].sort();
                if files.len() == before {
                    errors.push(InputError::NoJsonFiles {
                        file: path.display().to_string(),
                    });
                }
            }
            Ok(_) => files.push(path.clone()),
            Err(source) => errors.push(InputError::Unreadable {
                file: path.display().to_string(),
                source,
            }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) => {
            errors.push(InputError::Unreadable {
                file: dir.display().to_string(),
                source,
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, files, errors);
        } else if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
}

/// The verdict on one file.
#[derive(Debug, Clone)]
pub struct FileReport {
    pub file: String,
    pub kind: BodyKind,
    /// The file's `currentStatus/step` (`?` where it has none).
    pub status: String,
    /// Every scenario it was compared with.
    pub candidates: Vec<String>,
    /// The compatible scenario, or the closest.
    pub scenario: String,
    /// `Some(on)` when the scenario matched with the IP check set by the journey
    /// (`X-Mock-Ip-Check`) rather than as the scenario has it.
    pub ip_check: Option<bool>,
    /// The findings against that scenario, with paths into the file.
    pub findings: Vec<Finding>,
    pub compatible: bool,
    pub strict: bool,
}

impl FileReport {
    /// How the journey set the IP check, when that is what made the scenario fit.
    fn ip_note(&self) -> &'static str {
        match self.ip_check {
            Some(false) => " with the IP check off (X-Mock-Ip-Check: off)",
            Some(true) => " with the IP check on (X-Mock-Ip-Check: on)",
            None => "",
        }
    }

    /// How a finding counts here: under `--strict` every finding is an error.
    pub fn severity(&self, finding: &Finding) -> Severity {
        if self.strict {
            Severity::Error
        } else {
            finding.severity()
        }
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| self.severity(f) == severity)
            .count()
    }

    /// The report: a line for the verdict, then one line per finding, each starting with the
    /// file so that it stands alone.
    pub fn lines(&self) -> Vec<String> {
        let others = if self.candidates.len() > 1 {
            format!(
                " ({} of {} scenarios with this status: {})",
                if self.compatible { "one" } else { "closest" },
                self.candidates.len(),
                self.candidates.join(", ")
            )
        } else {
            String::new()
        };
        let warnings = self.count(Severity::Warning);
        let verdict = if self.compatible {
            let tail = match warnings {
                0 => String::new(),
                1 => ", 1 warning".to_string(),
                n => format!(", {n} warnings"),
            };
            format!(
                "compatible with scenario `{}`{}{tail}",
                self.scenario,
                self.ip_note()
            )
        } else {
            format!(
                "DRIFT against scenario `{}`{}: {} error{}",
                self.scenario,
                self.ip_note(),
                self.count(Severity::Error),
                if self.count(Severity::Error) == 1 {
                    ""
                } else {
                    "s"
                }
            )
        };
        let mut lines = vec![format!(
            "{}: {}, {}: {verdict}{others}",
            self.file,
            self.kind.as_str(),
            self.status
        )];
        for finding in &self.findings {
            lines.push(format!(
                "{}: {}: {finding}",
                self.file,
                self.severity(finding).as_str()
            ));
        }
        lines
    }
}

/// A scenario's name with the `currentStatus` and `step` it renders.
#[derive(Debug, Clone)]
struct RenderedStatus {
    name: String,
    status: Option<String>,
    step: Option<String>,
}

/// One scenario a recording was compared with.
struct Candidate {
    /// (errors, warnings, whether the IP check had to be flipped, disagreement): the lowest
    /// wins; catalogue order breaks ties.
    rank: (usize, usize, bool, usize),
    scenario: String,
    /// Whether the match needed the IP check the other way than the scenario's.
    flipped: Option<bool>,
    findings: Vec<Finding>,
}

/// Compares recordings with a catalogue's scenarios, rendering each scenario once.
pub struct Checker<'a> {
    catalogue: &'a Catalogue,
    maps: MapPaths,
    renders: usize,
    strict: bool,
    /// What every scenario renders, in catalogue order.
    statuses: Option<Vec<RenderedStatus>>,
    shapes: HashMap<String, MockShape>,
}

impl<'a> Checker<'a> {
    pub fn new(catalogue: &'a Catalogue, strict: bool) -> Self {
        Checker {
            catalogue,
            maps: MapPaths::otk(),
            renders: RENDERS,
            strict,
            statuses: None,
            shapes: HashMap::new(),
        }
    }

    /// Render each scenario for this many journeys instead of [`RENDERS`].
    pub fn renders(mut self, renders: usize) -> Self {
        self.renders = renders.max(1);
        self
    }

    fn shape(&mut self, name: &str) -> Result<&MockShape, InputError> {
        if !self.shapes.contains_key(name) {
            let scenario =
                self.catalogue
                    .find(name)
                    .ok_or_else(|| InputError::UnknownScenario {
                        name: name.to_string(),
                        known: self.catalogue.names().join(", "),
                    })?;
            let shape = MockShape::build(self.catalogue, scenario, self.renders, &self.maps)
                .map_err(|e| InputError::Render {
                    scenario: name.to_string(),
                    message: e.to_string(),
                })?;
            self.shapes.insert(name.to_string(), shape);
        }
        self.shapes
            .get(name)
            .ok_or_else(|| InputError::UnknownScenario {
                name: name.to_string(),
                known: String::new(),
            })
    }

    fn statuses(&mut self) -> Result<&[RenderedStatus], InputError> {
        if self.statuses.is_none() {
            let mut all = Vec::new();
            for scenario in self.catalogue.scenarios() {
                let document = super::mock::render(self.catalogue, scenario, 0).map_err(|e| {
                    InputError::Render {
                        scenario: scenario.name.clone(),
                        message: e.to_string(),
                    }
                })?;
                let text = |k: &str| document.get(k).and_then(Value::as_str).map(String::from);
                all.push(RenderedStatus {
                    name: scenario.name.clone(),
                    status: text("currentStatus"),
                    step: text("step"),
                });
            }
            self.statuses = Some(all);
        }
        Ok(self.statuses.as_deref().unwrap_or(&[]))
    }

    /// The scenarios a recording is compared with: the one named, or those whose rendered
    /// status and step are the recording's.
    pub fn candidates(
        &mut self,
        recording: &Recording,
        scenario: Option<&str>,
    ) -> Result<Vec<String>, InputError> {
        if let Some(name) = scenario {
            let found = self
                .catalogue
                .find(name)
                .ok_or_else(|| InputError::UnknownScenario {
                    name: name.to_string(),
                    known: self.catalogue.names().join(", "),
                })?;
            return Ok(vec![found.name.clone()]);
        }
        let (status, step) = recording.status();
        let (Some(status), Some(step)) = (status, step) else {
            return Err(InputError::NoScenario {
                file: recording.file.clone(),
                reason: "the document has no currentStatus and step strings to match a \
                         scenario by"
                    .to_string(),
            });
        };
        let all = self.statuses()?;
        let matching: Vec<String> = all
            .iter()
            .filter(|r| r.status.as_deref() == Some(status) && r.step.as_deref() == Some(step))
            .map(|r| r.name.clone())
            .collect();
        if matching.is_empty() {
            let known: Vec<String> = all
                .iter()
                .map(|r| {
                    format!(
                        "{} {}/{}",
                        r.name,
                        r.status.as_deref().unwrap_or("?"),
                        r.step.as_deref().unwrap_or("?")
                    )
                })
                .collect();
            return Err(InputError::NoScenario {
                file: recording.file.clone(),
                reason: format!(
                    "no scenario renders currentStatus {status:?} with step {step:?} \
                     (the catalogue has: {})",
                    known.join(", ")
                ),
            });
        }
        Ok(matching)
    }

    /// Compare one recording with its candidate scenarios.
    pub fn check(
        &mut self,
        recording: &Recording,
        scenario: Option<&str>,
    ) -> Result<FileReport, InputError> {
        let candidates = self.candidates(recording, scenario)?;
        let recorded = Schema::infer([&recording.document], &self.maps);
        let prefix: &[&str] = match recording.kind {
            BodyKind::GetJourney => &["result"],
            BodyKind::Callback => &[],
        };
        let strict = self.strict;
        let mut best: Option<Candidate> = None;
        for name in &candidates {
            let ip_check = self.catalogue.find(name).map(|s| s.ip_check);
            let base = self.shape(name)?;
            let variants = std::iter::once((base, None))
                .chain(base.flipped.as_deref().map(|f| (f, ip_check.map(|on| !on))));
            for (shape, flipped) in variants {
                let agreement = agreement(&recording.document, &shape.sample);
                let mock = shape.shape(recording.kind);
                let mut findings: Vec<Finding> = compare(&recorded.root, &mock.root)
                    .into_iter()
                    .map(|f| f.under(prefix))
                    .collect();
                // Errors first, each group in the recording's key order.
                findings.sort_by_key(Finding::severity);
                let errors = findings
                    .iter()
                    .filter(|f| strict || f.severity() == Severity::Error)
                    .count();
                let warnings = findings.len() - errors;
                let rank = (errors, warnings, flipped.is_some(), usize::MAX - agreement);
                if best.as_ref().is_none_or(|b| rank < b.rank) {
                    best = Some(Candidate {
                        rank,
                        scenario: name.clone(),
                        flipped,
                        findings,
                    });
                }
            }
        }
        let Candidate {
            rank: (errors, ..),
            scenario: chosen,
            flipped,
            findings,
        } = best.ok_or_else(|| InputError::NoScenario {
            file: recording.file.clone(),
            reason: "no candidate scenario".to_string(),
        })?;
        let (status, step) = recording.status();
        Ok(FileReport {
            file: recording.file.clone(),
            kind: recording.kind,
            status: format!("{}/{}", status.unwrap_or("?"), step.unwrap_or("?")),
            candidates,
            scenario: chosen,
            ip_check: flipped,
            findings,
            compatible: errors == 0,
            strict,
        })
    }
}

/// Everything a run of `contract check` found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub reports: Vec<FileReport>,
    pub problems: Vec<InputError>,
}

impl Outcome {
    /// 0 when every file is compatible, 1 on drift, 2 when a file could not be checked or
    /// nothing was: a check of nothing must not pass for a green one.
    pub fn exit_code(&self) -> u8 {
        if !self.problems.is_empty() || self.reports.is_empty() {
            2
        } else if self.reports.iter().any(|r| !r.compatible) {
            1
        } else {
            0
        }
    }

    /// The last line: how many files, and how they fared.
    pub fn summary(&self) -> String {
        let compatible = self.reports.iter().filter(|r| r.compatible).count();
        let drift = self.reports.len() - compatible;
        if self.reports.is_empty() {
            let problems = self.problems.len();
            return format!(
                "contract check: nothing checked ({problems} input problem{})",
                if problems == 1 { "" } else { "s" }
            );
        }
        // An unknown --scenario or an empty directory is not a file.
        let unchecked = self
            .problems
            .iter()
            .filter(|p| {
                !matches!(
                    p,
                    InputError::UnknownScenario { .. } | InputError::NoJsonFiles { .. }
                )
            })
            .count();
        let files = self.reports.len() + unchecked;
        format!(
            "contract check: {files} file{}: {compatible} compatible, {drift} with drift, {} not checked",
            if files == 1 { "" } else { "s" },
            unchecked
        )
    }
}

/// Check every file under `paths` against `catalogue`.
pub fn run(
    catalogue: &Catalogue,
    paths: &[PathBuf],
    scenario: Option<&str>,
    strict: bool,
) -> Outcome {
    let mut outcome = Outcome::default();
    if let Some(name) = scenario {
        if catalogue.find(name).is_none() {
            outcome.problems.push(InputError::UnknownScenario {
                name: name.to_string(),
                known: catalogue.names().join(", "),
            });
            return outcome;
        }
    }
    let (files, problems) = collect(paths);
    outcome.problems.extend(problems);
    let mut checker = Checker::new(catalogue, strict);
    for file in files {
        match read(&file).and_then(|recording| checker.check(&recording, scenario)) {
            Ok(report) => outcome.reports.push(report),
            Err(problem) => outcome.problems.push(problem),
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tells_a_get_journey_response_from_a_callback_body() {
        let r = classify("a", json!({"result": {"journeyId": "x"}})).unwrap();
        assert_eq!(r.kind, BodyKind::GetJourney);
        assert_eq!(r.document, json!({"journeyId": "x"}));
        let r = classify("b", json!({"journeyId": "x", "currentStatus": "COMPLETED"})).unwrap();
        assert_eq!(r.kind, BodyKind::Callback);
    }

    #[test]
    fn rejects_what_is_not_a_journey_with_a_reason() {
        for (value, needle) in [
            (json!([1]), "an array"),
            (json!({"result": "x"}), "`result` is a string"),
            (json!({"error": {"message": "no"}}), "error response"),
            (json!({"hello": 1}), "neither a get-journey response"),
        ] {
            let e = classify("f.json", value).unwrap_err().to_string();
            assert!(e.starts_with("f.json: "), "{e}");
            assert!(e.contains(needle), "{e}");
        }
    }
}
