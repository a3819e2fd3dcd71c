//! Reading scenario files, from a directory or from the bundle, into checked [`Scenario`]s.
//!
//! Every problem becomes a [`LoadError`] naming the file, the line where the parser gives one,
//! and the field; loading goes on after an error so that one run reports all of them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::{bundled, Scenario};

/// One file of the catalogue: the name it is known by, where it came from, its text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// `success` for a scenario; `journey/success.json.tera` for a template.
    pub name: String,
    /// What messages call it: a path on disk, or `<bundled>/scenarios/success.toml`.
    pub origin: String,
    pub text: String,
}

/// The raw catalogue: scenario files and template files, not yet checked.
#[derive(Debug, Clone, Default)]
pub struct CatalogueFiles {
    pub scenarios: Vec<SourceFile>,
    pub templates: Vec<SourceFile>,
}

/// Where the catalogue comes from: a directory given on the command line, or the bundle.
/// Scenarios come from one or the other; templates from the directory laid over the bundle
/// (the directory's files win), or from the directory alone under `no_bundled`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueSource {
    pub scenarios_dir: Option<PathBuf>,
    pub templates_dir: Option<PathBuf>,
    /// `--no-bundled`: no bundled scenario template beneath the directory's.
    pub no_bundled: bool,
    /// A scenario or template file larger than this is refused (`--max-catalogue-file-bytes`).
    pub max_file_bytes: u64,
}

/// The default of `--max-catalogue-file-bytes`: the bundled files are a few KB each.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 1 << 20;

impl Default for CatalogueSource {
    fn default() -> Self {
        CatalogueSource {
            scenarios_dir: None,
            templates_dir: None,
            no_bundled: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// A problem with one file of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl LoadError {
    pub fn new(file: impl Into<String>, message: impl Into<String>) -> Self {
        LoadError {
            file: file.into(),
            line: None,
            field: None,
            message: message.into(),
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Self {
        self.line = line;
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ": field `{field}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found while loading a catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LoadErrors(pub Vec<LoadError>);

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(
            f,
            "the scenario catalogue has {n} error{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Read the catalogue's files, from disk where a directory is given, else from the bundle.
pub fn read(source: &CatalogueSource) -> Result<CatalogueFiles, LoadErrors> {
    let mut errors = Vec::new();
    let scenarios = match &source.scenarios_dir {
        Some(dir) => read_dir(dir, "toml", true, source.max_file_bytes, &mut errors),
        None => from_bundle(bundled::SCENARIOS, "scenarios", true),
    };
    let templates = match &source.templates_dir {
        Some(dir) => overlay(
            read_dir(dir, "tera", false, source.max_file_bytes, &mut errors),
            source.no_bundled,
        ),
        None => from_bundle(bundled::TEMPLATES, "templates", false),
    };
    if source.no_bundled && (source.scenarios_dir.is_none() || source.templates_dir.is_none()) {
        errors.push(LoadError::new(
            "--no-bundled",
            "leaves out the bundled templates, so it needs both --scenarios DIR and --templates DIR; give them, or drop --no-bundled",
        ));
    }
    if errors.is_empty() {
        Ok(CatalogueFiles {
            scenarios,
            templates,
        })
    } else {
        Err(LoadErrors(errors))
    }
}

/// The user's templates laid over the bundled ones: a file of the same name wins, every other
/// bundled template stays reachable (a user's scenario can `{% extends
/// "journey/base.json.tera" %}`); under `--no-bundled`, the user's alone.
fn overlay(user: Vec<SourceFile>, no_bundled: bool) -> Vec<SourceFile> {
    if no_bundled {
        return user;
    }
    let mine: std::collections::BTreeSet<&str> = user.iter().map(|f| f.name.as_str()).collect();
    let beneath: Vec<SourceFile> = from_bundle(bundled::TEMPLATES, "templates", false)
        .into_iter()
        .filter(|f| !mine.contains(f.name.as_str()))
        .collect();
    user.into_iter().chain(beneath).collect()
}

fn from_bundle(table: &[(&str, &str)], dir: &str, stem: bool) -> Vec<SourceFile> {
    table
        .iter()
        .map(|(path, text)| SourceFile {
            name: if stem {
                file_stem(path)
            } else {
                path.to_string()
            },
            origin: format!("<bundled>/{dir}/{path}"),
            text: text.to_string(),
        })
        .collect()
}

fn file_stem(path: &str) -> String {
    Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Files ending in `.{ext}` under `dir`: only its top level for scenarios, the whole tree for
/// templates (named by their path relative to `dir`, with `/`), walked by [`super::walk`]'s
/// rules (links followed, each real directory once, a loop an error naming it). A file
/// larger than `max_bytes` is refused, naming it.
fn read_dir(
    dir: &Path,
    ext: &str,
    stem: bool,
    max_bytes: u64,
    errors: &mut Vec<LoadError>,
) -> Vec<SourceFile> {
    let walk = super::walk::walk(dir, ext, !stem);
    errors.extend(walk.errors);
    let mut paths = Vec::new();
    for found in walk.files {
        if found.meta.len() > max_bytes {
            errors.push(too_large(&found.path, found.meta.len(), max_bytes));
        } else {
            paths.push(found.path);
        }
    }
    let mut files = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        match read_within(&path, max_bytes) {
            Ok(None) => errors.push(too_large(&path, max_bytes + 1, max_bytes)),
            Ok(Some(text)) => {
                let name = if stem {
                    file_stem(&origin)
                } else {
                    path.strip_prefix(dir)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .replace('\\', "/")
                };
                files.push(SourceFile { name, origin, text });
            }
            Err(e) => errors.push(LoadError::new(
                origin,
                format!("cannot read this file: {e}"),
            )),
        }
    }
    if files.is_empty() && errors.is_empty() {
        errors.push(LoadError::new(
            dir.display().to_string(),
            format!("no .{ext} files here"),
        ));
    }
    files
}

/// The file's text, or `None` when it holds more than `max_bytes` (it may have grown since
/// its size was read: the read itself stops past the limit).
fn read_within(path: &Path, max_bytes: u64) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max_bytes.saturating_add(1))
        .read_to_string(&mut text)?;
    Ok((text.len() as u64 <= max_bytes).then_some(text))
}

fn too_large(path: &Path, len: u64, max_bytes: u64) -> LoadError {
    let size = if len > max_bytes.saturating_add(1) {
        format!("{len} bytes")
    } else {
        "more than that".to_string()
    };
    LoadError::new(
        path.display().to_string(),
        format!("is over the limit of {max_bytes} bytes for a catalogue file ({size}); split it, or raise --max-catalogue-file-bytes"),
    )
}

/// A scenario file as written. Unknown keys are errors, so a typo never passes silently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    description: String,
    template: String,
    #[serde(default)]
    aliases: Vec<String>,
    status: String,
    step: String,
    message: String,
    #[serde(default = "default_terminal")]
    terminal: bool,
    /// The document family this scenario's journeys carry unless the journey names one.
    #[serde(default)]
    document: Option<String>,
    /// Whether the flow's IP check is on, unless the journey says otherwise.
    #[serde(default = "default_terminal")]
    ip_check: bool,
    #[serde(default)]
    variables: toml::Table,
    #[serde(default)]
    callback: Option<CallbackFile>,
    #[serde(default)]
    fault: Option<FaultFile>,
}

fn default_terminal() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallbackFile {
    delay: Option<String>,
    fault: Option<String>,
}

/// `[fault]`: a fault for get-journey requests that render the scenario.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    /// In the `X-Mock-Fault` syntax.
    inject: String,
    probability: Option<f64>,
    seed: Option<u64>,
    times: Option<u64>,
}

/// Whether `name` can be a scenario name or alias: it must be usable as a journey-id prefix.
fn valid_key(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map(|before| before.matches('\n').count() + 1)
        .unwrap_or(1)
}

/// The line on which `key = ...` is written at the start of a line, if it is.
fn line_of_key(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

/// The field a serde message is about (`unknown field `colour``, `missing field `template``).
fn field_in_message(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// Parse and check one scenario file; problems are pushed to `errors`.
pub fn parse_scenario(file: &SourceFile, errors: &mut Vec<LoadError>) -> Option<Scenario> {
    let raw: ScenarioFile = match toml::from_str(&file.text) {
        Ok(raw) => raw,
        Err(e) => {
            let message = e.message().trim().to_string();
            let mut err = LoadError::new(&file.origin, &message)
                .at_line(e.span().map(|s| line_of(&file.text, s.start)));
            if let Some(field) = field_in_message(&message) {
                err = err.field(field);
            }
            errors.push(err);
            return None;
        }
    };
    let before = errors.len();
    if !valid_key(&file.name) {
        errors.push(LoadError::new(
            &file.origin,
            "a scenario file's name must be letters, digits and `_` (it is used as a journey-id prefix); rename the file",
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for alias in &raw.aliases {
        let again = if alias == &file.name {
            Some("is the scenario's own name (the file's name)")
        } else if !seen.insert(alias) {
            Some("is listed twice")
        } else {
            None
        };
        if let Some(why) = again {
            errors.push(
                LoadError::new(
                    &file.origin,
                    format!("alias {alias:?} {why}; list each alias once"),
                )
                .at_line(line_of_key(&file.text, "aliases"))
                .field("aliases"),
            );
        }
        if !valid_key(alias) {
            errors.push(
                LoadError::new(
                    &file.origin,
                    format!("alias {alias:?} must be letters, digits and `_`"),
                )
                .at_line(line_of_key(&file.text, "aliases"))
                .field("aliases"),
            );
        }
    }
    for (field, value) in [
        ("status", &raw.status),
        ("step", &raw.step),
        ("message", &raw.message),
        ("template", &raw.template),
    ] {
        if value.trim().is_empty() {
            errors.push(
                LoadError::new(&file.origin, "must not be empty")
                    .at_line(line_of_key(&file.text, field))
                    .field(field),
            );
        }
    }
    let mut callback_delay = None;
    if let Some(CallbackFile {
        delay: Some(delay), ..
    }) = &raw.callback
    {
        match crate::time::parse_duration(delay) {
            Ok(d) => callback_delay = Some(d),
            Err(e) => errors.push(
                LoadError::new(&file.origin, e.to_string())
                    .at_line(line_of_key(&file.text, "delay"))
                    .field("callback.delay"),
            ),
        }
    }
    let mut callback_fault = None;
    if let Some(CallbackFile {
        fault: Some(text), ..
    }) = &raw.callback
    {
        match text.parse::<crate::fault::CallbackFault>() {
            Ok(f) => callback_fault = Some(f),
            Err(e) => errors.push(
                LoadError::new(&file.origin, e.to_string())
                    .at_line(line_of_key_in(&file.text, "callback", "fault"))
                    .field("callback.fault"),
            ),
        }
    }
    let fault = raw
        .fault
        .as_ref()
        .and_then(|f| parse_fault_table(f, file, errors));
    if errors.len() > before {
        return None;
    }
    let variables = match serde_json::to_value(&raw.variables) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let ocr = match super::Ocr::from_variables(&variables) {
        Ok(ocr) => ocr,
        Err((var, why)) => {
            errors.push(
                LoadError::new(&file.origin, why)
                    .at_line(line_of_key(&file.text, &var))
                    .field(format!("variables.{var}")),
            );
            return None;
        }
    };
    Some(Scenario {
        document: raw.document,
        ip_check: raw.ip_check,
        ocr,
        name: file.name.clone(),
        description: raw.description,
        template: raw.template,
        aliases: raw.aliases,
        status: raw.status,
        step: raw.step,
        message: raw.message,
        terminal: raw.terminal,
        variables,
        callback_delay,
        callback_fault,
        fault,
        source: file.origin.clone(),
    })
}

/// Check a `[fault]` table; problems are pushed to `errors` with their line and field.
fn parse_fault_table(
    raw: &FaultFile,
    file: &SourceFile,
    errors: &mut Vec<LoadError>,
) -> Option<crate::fault::rules::ScenarioFault> {
    let at = |key: &str, message: String| {
        LoadError::new(&file.origin, message)
            .at_line(line_of_key_in(&file.text, "fault", key))
            .field(format!("fault.{key}"))
    };
    let before = errors.len();
    let inject = match raw.inject.parse::<crate::fault::Fault>() {
        Ok(f) => Some(f),
        Err(e) => {
            errors.push(at("inject", e.to_string()));
            None
        }
    };
    let probability = raw.probability.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&probability) {
        errors.push(at(
            "probability",
            format!("{probability} must be between 0 and 1"),
        ));
    }
    if raw.times == Some(0) {
        errors.push(at("times", "must be at least 1".to_string()));
    }
    if errors.len() > before {
        return None;
    }
    Some(crate::fault::rules::ScenarioFault {
        inject: std::sync::Arc::new(inject?),
        probability,
        seed: raw.seed,
        times: raw.times,
    })
}

/// The line of `key = ...` inside the `[table]` section, if it is written there.
fn line_of_key_in(text: &str, table: &str, key: &str) -> Option<usize> {
    let header = format!("[{table}]");
    let start = text.lines().position(|l| l.trim() == header)?;
    text.lines()
        .enumerate()
        .skip(start + 1)
        .take_while(|(_, l)| !l.trim_start().starts_with('['))
        .find(|(_, l)| {
            l.trim_start()
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|(i, _)| i + 1)
}

/// Parse every scenario file, then check names and aliases are unique across the catalogue.
pub fn parse_scenarios(files: &[SourceFile], errors: &mut Vec<LoadError>) -> Vec<Scenario> {
    let scenarios: Vec<Scenario> = files
        .iter()
        .filter_map(|f| parse_scenario(f, errors))
        .collect();
    let mut owners: BTreeMap<&str, &Scenario> = BTreeMap::new();
    for s in &scenarios {
        for key in std::iter::once(&s.name).chain(&s.aliases) {
            if let Some(other) = owners.insert(key, s) {
                if other.name != s.name {
                    errors.push(
                        LoadError::new(
                            &s.source,
                            format!(
                                "{key:?} is already the name or an alias of scenario `{}` ({})",
                                other.name, other.source
                            ),
                        )
                        .field("aliases"),
                    );
                }
            }
        }
    }
    scenarios
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            origin: format!("scenarios/{name}.toml"),
            text: text.into(),
        }
    }

    const GOOD: &str = r#"
description = "ok"
template = "journey/success.json.tera"
status = "COMPLETED"
step = "COMPLETE"
message = "Journey Completed"
"#;

    #[test]
    fn unknown_key_names_file_line_and_field() {
        let mut errors = Vec::new();
        let text = format!("{GOOD}colour = \"red\"\n");
        assert!(parse_scenario(&file("s", &text), &mut errors).is_none());
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert_eq!(e.file, "scenarios/s.toml");
        assert_eq!(e.line, Some(7));
        assert_eq!(e.field.as_deref(), Some("colour"));
        assert!(e
            .to_string()
            .starts_with("scenarios/s.toml:7: field `colour`: unknown field"));
    }

    #[test]
    fn missing_field_and_bad_delay_are_reported() {
        let mut errors = Vec::new();
        parse_scenario(&file("s", "description = \"x\"\n"), &mut errors);
        assert_eq!(errors[0].field.as_deref(), Some("template"));

        let mut errors = Vec::new();
        let text = format!("{GOOD}[callback]\ndelay = \"soon\"\n");
        parse_scenario(&file("s", &text), &mut errors);
        assert_eq!(errors[0].field.as_deref(), Some("callback.delay"));
        assert_eq!(errors[0].line, Some(8));
    }

    #[test]
    fn fault_tables_parse_and_their_mistakes_name_line_and_field() {
        let mut errors = Vec::new();
        let text = format!(
            "{GOOD}[fault]\ninject = \"delay:uniform(10ms,20ms)\"\nprobability = 0.5\ntimes = 3\n[callback]\nfault = \"duplicate; wrong_auth\"\n"
        );
        let s = parse_scenario(&file("s", &text), &mut errors).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let fault = s.fault.unwrap();
        assert_eq!((fault.probability, fault.times), (0.5, Some(3)));
        assert!(s.callback_fault.unwrap().duplicate);

        for (table, field, line) in [
            ("[fault]\ninject = \"explode\"\n", "fault.inject", 8),
            (
                "[fault]\ninject = \"reset\"\nprobability = 2.0\n",
                "fault.probability",
                9,
            ),
            ("[fault]\ninject = \"reset\"\ncolour = 1\n", "colour", 9),
            ("[callback]\nfault = \"explode\"\n", "callback.fault", 8),
        ] {
            let mut errors = Vec::new();
            let text = format!("{GOOD}{table}");
            assert!(parse_scenario(&file("s", &text), &mut errors).is_none());
            assert_eq!(errors[0].field.as_deref(), Some(field), "{errors:?}");
            assert_eq!(errors[0].line, Some(line), "{errors:?}");
        }
    }

    #[test]
    fn the_same_alias_twice_in_one_file_names_the_file_and_line() {
        let mut errors = Vec::new();
        let text = format!("{GOOD}aliases = [\"x1\", \"x1\", \"s\"]\n");
        assert!(parse_scenario(&file("s", &text), &mut errors).is_none());
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(
            errors[0].to_string(),
            "scenarios/s.toml:7: field `aliases`: alias \"x1\" is listed twice; list each alias once"
        );
        assert!(errors[1].message.contains("own name"), "{errors:?}");
        assert_eq!(errors[1].line, Some(7));
    }

    #[test]
    fn a_template_directory_overlays_the_bundle_unless_told_not_to() {
        let dir = std::env::temp_dir().join(format!("otk-overlay-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("journey")).unwrap();
        std::fs::write(dir.join("journey/base.json.tera"), "{}").unwrap();
        std::fs::write(dir.join("journey/mine.json.tera"), "{}").unwrap();
        let read_with = |no_bundled| {
            read(&CatalogueSource {
                scenarios_dir: None,
                templates_dir: Some(dir.clone()),
                no_bundled,
                ..CatalogueSource::default()
            })
        };
        let files = read_with(false).unwrap();
        let base: Vec<&SourceFile> = files
            .templates
            .iter()
            .filter(|f| f.name == "journey/base.json.tera")
            .collect();
        // The user's base wins; the bundled success template is still there.
        assert_eq!(base.len(), 1);
        assert!(
            !base[0].origin.starts_with("<bundled>"),
            "{}",
            base[0].origin
        );
        assert!(files
            .templates
            .iter()
            .any(|f| f.name == "journey/success.json.tera"));
        // --no-bundled without --scenarios is refused, naming the flag.
        let errors = read_with(true).unwrap_err();
        assert_eq!(errors.0[0].file, "--no-bundled");
        let files = read(&CatalogueSource {
            scenarios_dir: Some(dir.clone()),
            templates_dir: Some(dir.clone()),
            no_bundled: true,
            ..CatalogueSource::default()
        });
        // (No .toml there: that error, but the templates are the user's two alone.)
        assert!(files.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn duplicate_alias_is_an_error() {
        let mut errors = Vec::new();
        let a = format!("{GOOD}aliases = [\"x\"]\n");
        parse_scenarios(&[file("a", &a), file("x", GOOD)], &mut errors);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].message.contains("already"));
    }
}
