//! Rendering: `(scenario, journey) -> JSON document`, through Tera.
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

pub mod person;
pub mod time;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;
use tera::Tera;

use crate::journey::Journey;
use crate::scenario::loader::{LoadError, SourceFile};
use crate::scenario::Scenario;
use person::Person;

/// What a template sees of its scenario, under `scenario`.
#[derive(Serialize)]
struct ScenarioContext<'a> {
    name: &'a str,
    status: &'a str,
    step: &'a str,
    message: &'a str,
}

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
fn escape_json(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
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

/// The suffix of page templates, HTML-escaped.
pub const HTML_SUFFIX: &str = ".html.tera";

/// The compiled templates.
pub struct Renderer {
    tera: Tera,
    pages: Tera,
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
                        LoadError::new(&file.origin, message.replace('\n', " "))
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
                                    format!("extends {parent:?}, which is not in the templates directory"),
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
        Renderer { tera, pages }
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

    /// Render `scenario` for `journey` and parse the result.
    pub fn render(
        &self,
        scenario: &Scenario,
        journey: &Journey,
        person: &Person,
    ) -> Result<Value, RenderError> {
        let mut context = tera::Context::new();
        context.insert("journey", journey);
        context.insert("person", person);
        context.insert("vars", &scenario.variables);
        context.insert(
            "scenario",
            &ScenarioContext {
                name: &scenario.name,
                status: &scenario.status,
                step: &scenario.step,
                message: &scenario.message,
            },
        );
        let text = self
            .tera
            .render(&scenario.template, &context)
            .map_err(|e| RenderError::Template {
                template: scenario.template.clone(),
                message: chain(&e),
            })?;
        let value: Value = serde_json::from_str(&text).map_err(|e| RenderError::Json {
            template: scenario.template.clone(),
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
        })?;
        match value {
            Value::Object(_) => Ok(value),
            other => Err(RenderError::NotAnObject {
                template: scenario.template.clone(),
                kind: match other {
                    Value::Array(_) => "an array",
                    Value::String(_) => "a string",
                    Value::Number(_) => "a number",
                    Value::Bool(_) => "a boolean",
                    _ => "null",
                },
            }),
        }
    }
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
                    LoadError::new(origin, message.replace('\n', " "))
                        .at_line(parser_line(&message)),
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

fn line_of_text(text: &str, needle: &str) -> Option<usize> {
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// serde_json's message without its own " at line L column C" tail (we say it better).
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
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
    fn parser_line_reads_teras_pointer() {
        assert_eq!(parser_line("Failed to parse 'x'\n --> 3:17\n  |"), Some(3));
        assert_eq!(parser_line("no pointer"), None);
    }
}
