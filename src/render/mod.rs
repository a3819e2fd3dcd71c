//! Rendering: `(scenario, journey) -> JSON document`, through Tera or its fast path
//! (`skeleton.rs`, allowed by `analysis.rs`; checked by `shadow.rs` under `--verify-fast-path`).
//! [`Renderer::render_into`] is the one entry point, for created and stateless journeys alike.
//!
//! Templates ending in `.json.tera` are auto-escaped with a JSON string escaper, so a template
//! writes `"{{ person.fullName }}"` and any quote or backslash in the value stays valid JSON;
//! `{{ value | json_encode() | safe }}` inserts a whole JSON value. The rendered text is
//! parsed once: a template that renders invalid JSON is an error naming the template, never a
//! broken response.
//!
//! Templates ending in `.html.tera` (the hosted journey page under `html/`) live in a second
//! Tera instance whose auto-escape is Tera's HTML escaper: Tera has one escape function per
//! instance, so JSON and HTML escaping cannot share one. Page templates missing from a
//! `--templates` directory are taken from the bundle, so a custom catalogue need not copy them.

#[cfg(test)]
mod agreement;
mod analysis;
mod collect;
pub mod extract;
pub mod facts;
pub mod family;
pub mod person;
mod print;
pub mod shadow;
pub mod skeleton;

use crate::text::strip_position;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use tera::Tera;

use crate::scenario::loader::{LoadError, SourceFile};
use crate::scenario::Scenario;
use facts::Journey;
use person::Person;
use shadow::Shadow;
use skeleton::{Fallback, Plan};

/// Why a render failed.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template `{template}` failed to render: {message}")]
    Template { template: String, message: String },
    #[error(
        "template `{template}` rendered invalid JSON at line {line}, column {column} of its output: {message} (near `{near}`)"
    )]
    Json {
        template: String,
        line: usize,
        column: usize,
        message: String,
        near: String,
    },
    #[error("template `{template}` rendered {kind}, not a JSON object")]
    NotAnObject {
        template: String,
        kind: &'static str,
    },
}

/// JSON string escaping for Tera's auto-escape: the value lands between quotes the template
/// wrote, so quotes, backslashes and control characters must be escaped.
pub(crate) fn escape_json(input: &str) -> String {
    let mut out = Vec::with_capacity(input.len());
    escape_json_into(input, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// [`escape_json`] appending to a buffer (the fast path writes bodies this way).
pub(crate) fn escape_json_into(input: &str, out: &mut Vec<u8>) {
    let bytes = input.as_bytes();
    // Most values (names, URLs, dates) need no escaping: copy them whole.
    if !needs_escape(bytes) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escaped.is_empty() {
            out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
        } else {
            out.extend_from_slice(escaped);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Whether any byte is a quote, a backslash or a control character. Eight bytes at a time:
/// every value of a new journey passes through here, and the byte-by-byte scan was a tenth of
/// rendering one.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte that is zero in `x` (exact, unlike the shorter form).
    let zero_bytes = |x: u64| !(((x & !HIGHS).wrapping_add(!HIGHS)) | x) & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Bytes below 0x20 are those whose top three bits are all zero.
        let control = zero_bytes(x & (0xe0 * ONES));
        let quote = zero_bytes(x ^ (u64::from(b'"') * ONES));
        let backslash = zero_bytes(x ^ (u64::from(b'\\') * ONES));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// JSON text without the whitespace between tokens (strings are kept byte for byte).
pub(crate) fn minify_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            out.push(c);
        }
    }
    out
}

/// The full source chain of a Tera error, which is where its useful part is.
fn chain(error: &tera::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        message.push_str(": ");
        message.push_str(&e.to_string());
        source = e.source();
    }
    message
}

/// The line Tera's parser points at (`--> 3:17`), if it gives one.
fn parser_line(message: &str) -> Option<usize> {
    let at = message.find("--> ")? + 4;
    let digits: String = message[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The useful sentence of a Tera parse error: pest's `= expected …` line when there is one
/// (the drawing above it repeats the source line), else the whole message on one line.
fn parser_message(message: &str) -> String {
    let expected = message
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("= "));
    match expected {
        Some(text) => format!("syntax error: {text}"),
        None => message.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The suffix of page templates, HTML-escaped.
pub const HTML_SUFFIX: &str = ".html.tera";

/// The compiled templates, and a fast-path plan for each scenario whose template allows one.
///
/// [`Renderer::render_into`] is the one way a journey's document is rendered, created or
/// stateless, served or sent as a callback: it decides between the fast path and Tera, so the
/// two kinds of journey cannot drift apart in format.
pub struct Renderer {
    tera: Tera,
    pages: Tera,
    plans: HashMap<String, Plan, foldhash::fast::RandomState>,
    /// Scenarios the analysis keeps off the fast path, and why.
    refused: HashMap<String, String, foldhash::fast::RandomState>,
    /// `--verify-fast-path`: shared by every catalogue a server loads.
    shadow: Option<Arc<Shadow>>,
}

impl Renderer {
    /// Compile every template, reporting each one that does not parse, or that extends or
    /// includes one that is not there, with its file and line.
    pub fn compile(files: &[SourceFile], errors: &mut Vec<LoadError>) -> Renderer {
        let (page_files, files): (Vec<&SourceFile>, Vec<&SourceFile>) =
            files.iter().partition(|f| f.name.ends_with(HTML_SUFFIX));
        let pages = compile_pages(&page_files, errors);
        let mut parsed = BTreeMap::new();
        for file in files {
            match tera::Template::new(&file.name, None, &file.text) {
                Ok(template) => {
                    parsed.insert(file.name.clone(), (file, template));
                }
                Err(e) => {
                    let message = chain(&e);
                    errors.push(
                        LoadError::new(&file.origin, parser_message(&message))
                            .at_line(parser_line(&message)),
                    );
                }
            }
        }
        // A template whose parent is missing would fail the whole set in Tera; report it here
        // and leave it (and anything built on it) out, so the others can still be checked.
        let mut missing: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = missing.len();
            for (name, (file, template)) in &parsed {
                if missing.contains(name) {
                    continue;
                }
                if let Some(parent) = &template.parent {
                    if !parsed.contains_key(parent) || missing.contains(parent) {
                        missing.insert(name.clone());
                        if !parsed.contains_key(parent) {
                            errors.push(
                                LoadError::new(
                                    &file.origin,
                                    format!("extends {parent:?}, which is not among the templates (the directory's, and the bundled ones unless --no-bundled)"),
                                )
                                .at_line(line_of_text(&file.text, "extends")),
                            );
                        }
                    }
                }
            }
            if missing.len() == before {
                break;
            }
        }
        // Tera renders an include cycle until the stack overflows: refuse it here.
        for (name, (file, _)) in &parsed {
            if let Some(cycle) = include_cycle(name, &parsed) {
                missing.insert(name.clone());
                errors.push(
                    LoadError::new(
                        &file.origin,
                        format!(
                            "includes itself ({}); Tera would never finish rendering it",
                            cycle.join(" includes ")
                        ),
                    )
                    .at_line(line_of_text(&file.text, "include")),
                );
            }
        }
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".json.tera"]);
        tera.set_escape_fn(escape_json);
        let good: Vec<(String, String)> = parsed
            .iter()
            .filter(|(name, _)| !missing.contains(*name))
            .map(|(name, (file, _))| (name.clone(), file.text.clone()))
            .collect();
        if let Err(e) = tera.add_raw_templates(good) {
            errors.push(LoadError::new("templates", chain(&e).replace('\n', " ")));
        }
        Renderer {
            tera,
            pages,
            plans: HashMap::default(),
            refused: HashMap::default(),
            shadow: None,
        }
    }

    /// Prepare the fast path for `scenario` (see [`skeleton`]); a template the analysis does
    /// not fully understand stays on Tera, and the reason is kept for `validate`.
    pub fn plan(&mut self, scenario: &Scenario) {
        match Plan::analyze(&self.tera, &scenario.template) {
            Ok(plan) => {
                self.plans.insert(scenario.name.clone(), plan);
            }
            Err(why) => {
                self.refused.insert(scenario.name.clone(), why);
            }
        }
    }

    /// Whether `scenario` renders through the fast path.
    pub fn is_fast(&self, scenario: &Scenario) -> bool {
        self.plans.get(&scenario.name).is_some_and(Plan::is_enabled)
    }

    /// `Ok` when `scenario` is on the fast path, else what keeps it off.
    pub fn fast_path(&self, scenario: &Scenario) -> Result<(), String> {
        match self.plans.get(&scenario.name) {
            Some(plan) if plan.is_enabled() => Ok(()),
            Some(plan) => Err(plan
                .off_reason()
                .unwrap_or_else(|| "taken off the fast path".to_string())),
            None => Err(self
                .refused
                .get(&scenario.name)
                .cloned()
                .unwrap_or_else(|| "not analysed".to_string())),
        }
    }

    /// How many renders of `scenario` fell back from the fast path to Tera.
    pub fn fallbacks(&self, scenario: &Scenario) -> Option<u64> {
        self.plans.get(&scenario.name).map(Plan::fallbacks)
    }

    /// How many fast-path skeletons `scenario` has made (`None` when it has no fast path).
    pub fn shapes(&self, scenario: &Scenario) -> Option<usize> {
        self.plans.get(&scenario.name).map(Plan::shapes)
    }

    /// Compare the fast path with Tera on sample journeys before it is trusted (start-up).
    /// A difference, a skeleton that cannot be filled safely, or a shape that changes with
    /// (nearly) every journey takes the scenario off the fast path, with the reason.
    pub fn check_fast_path(&self, scenario: &Scenario, samples: &[(Journey, Person)]) {
        let Some(plan) = self.plans.get(&scenario.name) else {
            return;
        };
        for (journey, person) in samples {
            let mut fast = Vec::new();
            let filled = plan.fill(
                &JourneyContext::new(journey),
                person,
                &mut fast,
                || context_roots(scenario, journey, person),
                |r| self.render_text(&scenario.template, r),
            );
            match filled {
                Ok(()) => {
                    let tera = self.render_tera(scenario, journey, person);
                    if tera.as_ref().ok() != Some(&fast) {
                        plan.disable(format!(
                            "the fast path gave other bytes than Tera for journey {:?}",
                            journey.id
                        ));
                    }
                }
                Err(Fallback::Skeleton(why)) => plan.disable(why),
                // That journey renders through Tera, as it should.
                Err(_) => {}
            }
            if !plan.is_enabled() {
                tracing::warn!(scenario = %scenario.name, reason = ?plan.off_reason(), "rendering this scenario with Tera only");
                return;
            }
        }
        // A skeleton is a Tera render and more: worth it only if journeys share them.
        let varying = plan.varying((samples.len() * 3).div_ceil(4).max(2));
        if !varying.is_empty() && plan.shapes() > samples.len() / 2 {
            let paths: Vec<String> = varying
                .iter()
                .map(|(path, why)| format!("`{path}` ({why})"))
                .collect();
            plan.disable(format!(
                "its output depends on {}, which differs from journey to journey",
                paths.join(", ")
            ));
        }
    }

    /// Test hook for `--verify-fast-path`: the skeletons of `scenario` made from now on are
    /// wrong. Returns whether it has a fast path to corrupt.
    pub fn corrupt_fast_path(&self, scenario: &str) -> bool {
        self.plans.get(scenario).map(Plan::corrupt).is_some()
    }

    /// Check every `shadow.every`-th fast-path body against Tera (`--verify-fast-path`).
    pub fn set_shadow(&mut self, shadow: Option<Arc<Shadow>>) {
        self.shadow = shadow;
    }

    /// Whether a template of that name was compiled.
    pub fn has_template(&self, name: &str) -> bool {
        self.tera.get_template_names().any(|n| n == name)
    }

    /// Names of the compiled templates under `dir/` (the HTML pages, for example).
    pub fn tera(&self) -> &Tera {
        &self.tera
    }

    /// Whether a page template of that name was compiled.
    pub fn has_page(&self, name: &str) -> bool {
        self.pages.get_template_names().any(|n| n == name)
    }

    /// Render a page template (HTML-escaped) with `context`.
    pub fn render_page(&self, name: &str, context: &tera::Context) -> Result<String, RenderError> {
        self.pages
            .render(name, context)
            .map_err(|e| RenderError::Template {
                template: name.to_string(),
                message: chain(&e),
            })
    }

    /// Render `scenario` for `journey` and parse the result (the bytes of
    /// [`Renderer::render_into`], as a value).
    pub fn render(
        &self,
        scenario: &Scenario,
        journey: &Journey,
        person: &Person,
    ) -> Result<Value, RenderError> {
        let bytes = self.render_bytes(scenario, journey, person)?;
        serde_json::from_slice(&bytes).map_err(|e| RenderError::Json {
            template: scenario.template.clone(),
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
            near: String::new(),
        })
    }

    /// [`Renderer::render_into`], into a buffer of its own.
    pub fn render_bytes(
        &self,
        scenario: &Scenario,
        journey: &Journey,
        person: &Person,
    ) -> Result<Vec<u8>, RenderError> {
        // Sized by the fill, which knows the length: a guess that is too small costs a copy.
        let mut out = Vec::new();
        self.render_into(scenario, journey, person, &mut out)?;
        Ok(out)
    }

    /// The minified JSON document of `journey`, appended to `out`: through the fast path when
    /// the scenario has one, else through Tera with the output checked as JSON. Every journey
    /// document (stateless or created, get-journey or callback) is rendered here.
    pub fn render_into(
        &self,
        scenario: &Scenario,
        journey: &Journey,
        person: &Person,
        out: &mut Vec<u8>,
    ) -> Result<(), RenderError> {
        if let Some(plan) = self.plans.get(&scenario.name).filter(|p| p.is_enabled()) {
            let start = out.len();
            let filled = plan.fill(
                &JourneyContext::new(journey),
                person,
                out,
                || context_roots(scenario, journey, person),
                |r| self.render_text(&scenario.template, r),
            );
            if filled.is_ok() {
                return match &self.shadow {
                    Some(shadow) if shadow.due() => {
                        let tera = self.render_tera(scenario, journey, person);
                        shadow.compare(scenario, plan, journey, tera, out, start)
                    }
                    _ => Ok(()),
                };
            }
        }
        let direct = self.render_tera(scenario, journey, person)?;
        out.extend_from_slice(&direct);
        Ok(())
    }

    /// Tera's document alone, checked to be one JSON object, minified: what the fast path
    /// must give.
    pub fn render_tera(
        &self,
        scenario: &Scenario,
        journey: &Journey,
        person: &Person,
    ) -> Result<Vec<u8>, RenderError> {
        self.render_direct(&scenario.template, context_roots(scenario, journey, person))
    }

    fn render_text(&self, template: &str, roots: &Value) -> Result<String, String> {
        let context = tera::Context::from_value(roots.clone()).map_err(|e| chain(&e))?;
        self.tera.render(template, &context).map_err(|e| chain(&e))
    }

    /// Tera's output, checked to be one JSON object, minified.
    fn render_direct(&self, template: &str, roots: Value) -> Result<Vec<u8>, RenderError> {
        let context = tera::Context::from_value(roots).map_err(|e| RenderError::Template {
            template: template.to_string(),
            message: chain(&e),
        })?;
        let text = self
            .tera
            .render(template, &context)
            .map_err(|e| RenderError::Template {
                template: template.to_string(),
                message: chain(&e),
            })?;
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&text) {
            return Err(RenderError::Json {
                template: template.to_string(),
                line: e.line(),
                column: e.column(),
                message: strip_position(&e.to_string()),
                near: text
                    .lines()
                    .nth(e.line().saturating_sub(1))
                    .unwrap_or("")
                    .trim()
                    .chars()
                    .take(80)
                    .collect(),
            });
        }
        if !text.trim_start().starts_with('{') {
            let kind = match serde_json::from_str::<Value>(&text) {
                Ok(Value::Array(_)) => "an array",
                Ok(Value::String(_)) => "a string",
                Ok(Value::Number(_)) => "a number",
                Ok(Value::Bool(_)) => "a boolean",
                _ => "null",
            };
            return Err(RenderError::NotAnObject {
                template: template.to_string(),
                kind,
            });
        }
        Ok(minify_json(&text).into_bytes())
    }
}

/// What a template sees under `journey`: the journey, and which pre-fill fields the app sent
/// (`prefilled.name`...). Templates branch on these booleans rather than on `userInfo`
/// itself, so that journeys share a skeleton on the fast path.
#[derive(Serialize)]
struct JourneyContext<'a> {
    #[serde(flatten)]
    journey: &'a Journey,
    prefilled: Prefilled,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Prefilled {
    name: bool,
    date_of_birth: bool,
    address: bool,
    phone_number: bool,
    email_address: bool,
    id: bool,
}

impl print::AsJourney for JourneyContext<'_> {
    fn as_journey(&self) -> Option<&Journey> {
        Some(self.journey)
    }
}

impl<'a> JourneyContext<'a> {
    fn new(journey: &'a Journey) -> Self {
        let mut prefilled = Prefilled {
            name: false,
            date_of_birth: false,
            address: false,
            phone_number: false,
            email_address: false,
            id: false,
        };
        // One pass over the few supplied fields: a lookup per flag would hash each key name
        // with SipHash, the map's hasher, six times per journey.
        journey.user_info.each_field(|key, null| {
            let flag = match key {
                "name" => &mut prefilled.name,
                "dateOfBirth" => &mut prefilled.date_of_birth,
                "address" => &mut prefilled.address,
                "phoneNumber" => &mut prefilled.phone_number,
                "emailAddress" => &mut prefilled.email_address,
                "id" => &mut prefilled.id,
                _ => return,
            };
            *flag = !null;
        });
        JourneyContext { journey, prefilled }
    }
}

/// The template context as one JSON object: `journey`, `person`, `vars`, `scenario`.
fn context_roots(scenario: &Scenario, journey: &Journey, person: &Person) -> Value {
    let mut roots = serde_json::Map::with_capacity(4);
    // Plain structs of strings and numbers always serialize; Null would only hide a bug
    // that the first render at start-up shows.
    let journey_value = serde_json::to_value(JourneyContext::new(journey)).unwrap_or(Value::Null);
    roots.insert("journey".into(), journey_value);
    roots.insert(
        "person".into(),
        serde_json::to_value(person).unwrap_or(Value::Null),
    );
    roots.insert("vars".into(), Value::Object(scenario.variables.clone()));
    let mut about = serde_json::Map::with_capacity(4);
    for (key, value) in [
        ("name", &scenario.name),
        ("status", &scenario.status),
        ("step", &scenario.step),
        ("message", &scenario.message),
    ] {
        about.insert(key.into(), Value::String(value.clone()));
    }
    roots.insert("scenario".into(), Value::Object(about));
    Value::Object(roots)
}

/// Compile the page templates: the bundled ones, each replaced by a file of the same name from
/// a `--templates` directory where one is given.
fn compile_pages(files: &[&SourceFile], errors: &mut Vec<LoadError>) -> Tera {
    let mut sources: BTreeMap<String, (String, String)> = crate::scenario::bundled::TEMPLATES
        .iter()
        .filter(|(name, _)| name.ends_with(HTML_SUFFIX))
        .map(|(name, text)| {
            (
                name.to_string(),
                (format!("<bundled>/templates/{name}"), text.to_string()),
            )
        })
        .collect();
    for file in files {
        sources.insert(file.name.clone(), (file.origin.clone(), file.text.clone()));
    }
    let mut pages = Tera::default();
    pages.autoescape_on(vec![HTML_SUFFIX]);
    let mut good = Vec::new();
    for (name, (origin, text)) in sources {
        match tera::Template::new(&name, None, &text) {
            Ok(_) => good.push((name, text)),
            Err(e) => {
                let message = chain(&e);
                errors.push(
                    LoadError::new(origin, parser_message(&message)).at_line(parser_line(&message)),
                );
            }
        }
    }
    if let Err(e) = pages.add_raw_templates(good) {
        errors.push(LoadError::new(
            "templates/html",
            chain(&e).replace('\n', " "),
        ));
    }
    pages
}

/// The templates each node list includes (the first existing name of each include: Tera's).
fn includes<'a>(
    nodes: &'a [tera::ast::Node],
    exists: &dyn Fn(&str) -> bool,
    out: &mut Vec<&'a str>,
) {
    use tera::ast::Node;
    for node in nodes {
        match node {
            Node::Include(_, names, _) => {
                out.extend(names.iter().find(|n| exists(n)).map(String::as_str))
            }
            Node::Block(_, block, _) => includes(&block.body, exists, out),
            Node::If(branches, _) => {
                for (_, _, body) in &branches.conditions {
                    includes(body, exists, out);
                }
                if let Some((_, body)) = &branches.otherwise {
                    includes(body, exists, out);
                }
            }
            Node::Forloop(_, forloop, _) => {
                includes(&forloop.body, exists, out);
                if let Some(body) = &forloop.empty_body {
                    includes(body, exists, out);
                }
            }
            Node::FilterSection(_, section, _) => includes(&section.body, exists, out),
            Node::MacroDefinition(_, definition, _) => includes(&definition.body, exists, out),
            _ => {}
        }
    }
}

/// The include path from `start` back to itself, if there is one.
fn include_cycle(
    start: &str,
    parsed: &BTreeMap<String, (&SourceFile, tera::Template)>,
) -> Option<Vec<String>> {
    let exists = |n: &str| parsed.contains_key(n);
    let mut path = vec![start.to_string()];
    let mut seen = BTreeSet::new();
    fn walk(
        at: &str,
        start: &str,
        parsed: &BTreeMap<String, (&SourceFile, tera::Template)>,
        exists: &dyn Fn(&str) -> bool,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        let Some((_, template)) = parsed.get(at) else {
            return false;
        };
        let mut next = Vec::new();
        includes(&template.ast, exists, &mut next);
        for name in next {
            path.push(name.to_string());
            if name == start {
                return true;
            }
            if seen.insert(name.to_string()) && walk(name, start, parsed, exists, path, seen) {
                return true;
            }
            path.pop();
        }
        false
    }
    walk(start, start, parsed, &exists, &mut path, &mut seen).then_some(path)
}

fn line_of_text(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_json_strings_cannot_hold() {
        assert_eq!(escape_json(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_json("x\ny\u{1}"), "x\\ny\\u0001");
        assert_eq!(escape_json("ذكر"), "ذكر");
    }

    #[test]
    fn the_word_scan_finds_what_the_byte_scan_finds() {
        let slow = |b: &[u8]| b.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        let mut cases: Vec<Vec<u8>> = vec![Vec::new(), b"plain text, long enough".to_vec()];
        for special in [
            0u8, 0x1f, b'"', b'\\', b'\n', 0x7f, 0x80, 0xff, b' ', b'!', b'#', b'[',
        ] {
            for at in 0..19 {
                let mut v = b"abcdefghijklmnopqrs".to_vec();
                v[at] = special;
                cases.push(v);
            }
        }
        for case in cases {
            assert_eq!(needs_escape(&case), slow(&case), "{case:?}");
        }
    }

    #[test]
    fn minify_keeps_strings_and_drops_the_rest() {
        assert_eq!(
            minify_json("{\n  \"a b\": [1, \"x \\\" y\"],\n\t\"c\": {} }"),
            r#"{"a b":[1,"x \" y"],"c":{}}"#
        );
    }

    #[test]
    fn page_templates_escape_html_and_json_templates_escape_json() {
        let files = vec![
            SourceFile {
                name: "html/t.html.tera".into(),
                origin: "t".into(),
                text: "<p>{{ v }}</p>".into(),
            },
            SourceFile {
                name: "journey/t.json.tera".into(),
                origin: "j".into(),
                text: r#"{"v": "{{ v }}"}"#.into(),
            },
        ];
        let mut errors = Vec::new();
        let renderer = Renderer::compile(&files, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        let mut context = tera::Context::new();
        context.insert("v", "<b>\"x\"</b>");
        let html = renderer.render_page("html/t.html.tera", &context).unwrap();
        assert_eq!(html, "<p>&lt;b&gt;&quot;x&quot;&lt;&#x2F;b&gt;</p>");
        let json = renderer
            .tera()
            .render("journey/t.json.tera", &context)
            .unwrap();
        assert_eq!(json, r#"{"v": "<b>\"x\"</b>"}"#);
    }

    #[test]
    fn an_include_cycle_is_a_load_error_not_a_stack_overflow() {
        let file = |name: &str, text: &str| SourceFile {
            name: name.into(),
            origin: format!("templates/{name}"),
            text: text.into(),
        };
        let files = vec![
            file(
                "journey/a.json.tera",
                r#"{"a": {% include "journey/b.json.tera" %}}"#,
            ),
            file(
                "journey/b.json.tera",
                "{% if x %}\n{% include \"journey/a.json.tera\" %}{% endif %}",
            ),
            file(
                "journey/c.json.tera",
                r#"{"c": {% include "journey/d.json.tera" %}}"#,
            ),
            file("journey/d.json.tera", "1"),
        ];
        let mut errors = Vec::new();
        Renderer::compile(&files, &mut errors);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].file, "templates/journey/a.json.tera");
        assert!(
            errors[0].message.contains(
                "journey/a.json.tera includes journey/b.json.tera includes journey/a.json.tera"
            ),
            "{errors:?}"
        );
        assert_eq!(errors[1].line, Some(2));
    }

    #[test]
    fn parser_line_reads_teras_pointer() {
        assert_eq!(parser_line("Failed to parse 'x'\n --> 3:17\n  |"), Some(3));
        assert_eq!(parser_line("no pointer"), None);
        assert_eq!(
            parser_message("Failed\n --> 4:1\n  |\n4 | }\n  |\n  = expected a filter"),
            "syntax error: expected a filter"
        );
    }
}
