//! What the fast path may do with a template: an allow-list reading of its syntax tree.
//!
//! [`analyze`] walks a scenario's template, its parents, what it includes and the macros it
//! can call, and sorts every `journey.*`/`person.*` path it meets:
//!
//! - a **hole** is a path printed as it is, `{{ path }}` or `{{ path | json_encode() | safe }}`,
//!   at a place whose output goes straight into the document: the template's top level, a
//!   block, the body of an `if` or a `for`. Its value can be spliced in after Tera ran.
//! - every other use of a path makes it **structural**: a condition, a loop's container, a
//!   `set`, a filter or a test on it, a macro's argument, and any print inside output that Tera
//!   transforms afterwards (a `{% filter %}` section, a macro's body, a block rendered inside
//!   either, through `super()` or inheritance). Journeys that agree on every structural value
//!   share one skeleton, so whatever those constructs do, Tera did it for them.
//!
//! Only the constructs listed here are understood. Anything else (bracket access, a function
//! other than `range`, a filter or test Tera does not ship, a `set` or loop variable that hides
//! `journey` or `person`, a template not JSON-escaped...) refuses the scenario, with a reason
//! that `otk-mock validate` prints; the scenario is then rendered by Tera alone. A construct
//! Tera adds later is refused until someone teaches this module what it does.

use std::collections::{BTreeMap, BTreeSet};

use tera::ast::{Expr, ExprVal, FunctionCall, Node};
use tera::Tera;

/// The context roots whose values change from journey to journey.
pub(super) const DYNAMIC_ROOTS: [&str; 2] = ["journey", "person"];

/// Characters the fast path marks holes with; a template may not contain them.
pub(super) const MARK_OPEN: char = '\u{F0000}';
pub(super) const MARK_CLOSE: char = '\u{F0001}';

/// Filters Tera ships (without its optional features): pure functions of their input and
/// arguments. `default` and `safe` are Tera's own keywords in filter position.
const FILTERS: &[&str] = &[
    "upper",
    "lower",
    "trim",
    "trim_start",
    "trim_end",
    "trim_start_matches",
    "trim_end_matches",
    "truncate",
    "wordcount",
    "replace",
    "capitalize",
    "title",
    "linebreaksbr",
    "indent",
    "striptags",
    "spaceless",
    "escape",
    "escape_xml",
    "addslashes",
    "split",
    "int",
    "float",
    "first",
    "last",
    "nth",
    "join",
    "sort",
    "unique",
    "slice",
    "group_by",
    "filter",
    "map",
    "concat",
    "abs",
    "pluralize",
    "round",
    "length",
    "reverse",
    "json_encode",
    "as_str",
    "get",
    "default",
    "safe",
];

/// Tests Tera ships: pure functions of the value and their arguments.
const TESTS: &[&str] = &[
    "defined",
    "undefined",
    "odd",
    "even",
    "string",
    "number",
    "divisibleby",
    "iterable",
    "object",
    "starting_with",
    "ending_with",
    "containing",
    "matching",
];

/// Functions whose result depends only on their arguments (`throw` always fails, on both
/// paths). `get_env`, `now` and `get_random` read the world on every render.
const FUNCTIONS: &[&str] = &["range", "throw"];

/// A context path: `["person", "images", "files", "3"]`.
pub(super) type Path = Vec<String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoleKind {
    /// `{{ path }}`: the value's text, JSON-escaped.
    Plain,
    /// `{{ path | json_encode() | safe }}`: the value as JSON.
    Json,
}

#[derive(Debug, Clone)]
pub(super) struct Hole {
    pub path: Path,
    pub kind: HoleKind,
}

/// What the fast path may splice in, and what decides a skeleton.
#[derive(Debug)]
pub(super) struct Analysis {
    pub holes: Vec<Hole>,
    /// Each structural path, with the construct that made it structural (for reports).
    pub structural: Vec<(Path, String)>,
}

/// Read `template` (the one a scenario renders) and everything it renders with; the
/// reason it cannot be on the fast path otherwise.
pub(super) fn analyze(tera: &Tera, template: &str) -> Result<Analysis, String> {
    if !template.ends_with(".json.tera") {
        return Err(format!(
            "`{template}` does not end in .json.tera, so Tera does not JSON-escape what it prints"
        ));
    }
    let root = tera
        .get_template(template)
        .map_err(|e| format!("`{template}` is not compiled: {e}"))?;
    // Blocks that Tera renders inside transformed output (a filter section around a block, or
    // around `super()`) are walked as transformed wherever they are defined. Finding one can
    // reveal another (a block nested in it), so walk until no new one turns up.
    let mut transformed: BTreeMap<String, String> = BTreeMap::new();
    let usage = loop {
        let mut walk = Walk::new(tera, &transformed);
        walk.template(template, &Mode::Document);
        for parent in &root.parents {
            walk.template(parent, &Mode::Document);
        }
        let usage = walk.usage;
        if let Some(reason) = usage.refused {
            return Err(reason);
        }
        let new: Vec<(String, String)> = usage
            .transformed_blocks
            .iter()
            .filter(|(name, _)| !transformed.contains_key(*name))
            .map(|(name, why)| (name.clone(), why.clone()))
            .collect();
        if new.is_empty() {
            break usage;
        }
        transformed.extend(new);
    };
    Ok(settle(usage))
}

/// Paths found, before overlaps are settled.
#[derive(Default)]
struct Usage {
    plain: BTreeSet<Path>,
    json: BTreeSet<Path>,
    structural: BTreeMap<Path, String>,
    /// The first construct not understood.
    refused: Option<String>,
    /// Blocks met inside transformed output, with what transforms it.
    transformed_blocks: BTreeMap<String, String>,
}

/// Where a node's output goes.
#[derive(Debug, Clone)]
enum Mode {
    /// Straight into the document.
    Document,
    /// Into something Tera transforms afterwards (the reason, for reports).
    Transformed(String),
}

struct Walk<'t> {
    tera: &'t Tera,
    usage: Usage,
    /// Block names to walk as transformed, from the previous pass.
    transformed: &'t BTreeMap<String, String>,
    /// The template being walked, for messages.
    template: String,
    /// Enclosing blocks, innermost last.
    blocks: Vec<String>,
    /// Templates being included, for cycles.
    includes: Vec<String>,
    /// Templates whose macros were walked.
    macro_files: BTreeSet<String>,
}

impl<'t> Walk<'t> {
    fn new(tera: &'t Tera, transformed: &'t BTreeMap<String, String>) -> Self {
        Walk {
            tera,
            usage: Usage::default(),
            transformed,
            template: String::new(),
            blocks: Vec::new(),
            includes: Vec::new(),
            macro_files: BTreeSet::new(),
        }
    }

    fn refuse(&mut self, what: impl std::fmt::Display) {
        if self.usage.refused.is_none() {
            self.usage.refused = Some(format!("{what} in `{}`", self.template));
        }
    }

    /// Walk one template file: the macros it defines or imports, then its nodes.
    fn template(&mut self, name: &str, mode: &Mode) {
        let Ok(template) = self.tera.get_template(name) else {
            // Tera fails on it at render time, on both paths alike.
            return;
        };
        let outer = std::mem::replace(&mut self.template, name.to_string());
        self.macros(name);
        self.nodes(&template.ast, mode);
        self.template = outer;
    }

    /// The macros `name` defines and imports. A macro's output is a string Tera prints (and
    /// escapes) afterwards, and its body can read the context: all of it is transformed.
    fn macros(&mut self, name: &str) {
        if !self.macro_files.insert(name.to_string()) {
            return;
        }
        let Ok(template) = self.tera.get_template(name) else {
            return;
        };
        let outer = std::mem::replace(&mut self.template, name.to_string());
        let mut macros: Vec<_> = template.macros.iter().collect();
        macros.sort_by(|a, b| a.0.cmp(b.0));
        for (macro_name, definition) in macros {
            let why = format!("the body of macro `{macro_name}`");
            for default in definition.args.values().flatten() {
                self.expr(
                    default,
                    &format!("a default argument of macro `{macro_name}`"),
                );
            }
            self.nodes(&definition.body, &Mode::Transformed(why));
        }
        for (file, _) in &template.imported_macro_files {
            self.macros(file);
        }
        self.template = outer;
    }

    fn nodes(&mut self, nodes: &[Node], mode: &Mode) {
        for node in nodes {
            self.node(node, mode);
        }
    }

    fn node(&mut self, node: &Node, mode: &Mode) {
        match node {
            Node::Text(text) | Node::Raw(_, text, _) => self.literal(text),
            Node::Comment(..)
            | Node::Extends(..)
            | Node::Break(_)
            | Node::Continue(_)
            // Walked by `macros`, for every template that can call them.
            | Node::MacroDefinition(..)
            | Node::ImportMacro(..) => {}
            Node::Super => {
                // The parent's block is rendered here: if this output is transformed, so is it.
                if let (Mode::Transformed(why), Some(block)) = (mode, self.blocks.last()) {
                    self.usage
                        .transformed_blocks
                        .entry(block.clone())
                        .or_insert_with(|| why.clone());
                }
            }
            Node::VariableBlock(_, expr) => match mode {
                Mode::Document => self.printed(expr),
                Mode::Transformed(why) => self.expr(expr, &format!("a print in {why}")),
            },
            Node::Block(_, block, _) => {
                let mode = match (mode, self.transformed.get(&block.name)) {
                    (Mode::Document, Some(why)) => Mode::Transformed(why.clone()),
                    _ => mode.clone(),
                };
                if let Mode::Transformed(why) = &mode {
                    self.usage
                        .transformed_blocks
                        .entry(block.name.clone())
                        .or_insert_with(|| why.clone());
                }
                self.blocks.push(block.name.clone());
                self.nodes(&block.body, &mode);
                self.blocks.pop();
            }
            Node::If(branches, _) => {
                for (_, condition, body) in &branches.conditions {
                    self.expr(condition, "an `{% if %}` condition");
                    self.nodes(body, mode);
                }
                if let Some((_, body)) = &branches.otherwise {
                    self.nodes(body, mode);
                }
            }
            Node::Forloop(_, forloop, _) => {
                for name in std::iter::once(&forloop.value).chain(&forloop.key) {
                    self.shadows(name, "a `{% for %}` variable");
                }
                self.expr(&forloop.container, "the container of a `{% for %}` loop");
                self.nodes(&forloop.body, mode);
                if let Some(body) = &forloop.empty_body {
                    self.nodes(body, mode);
                }
            }
            Node::Set(_, set) => {
                self.shadows(&set.key, "`{% set %}`");
                self.expr(&set.value, &format!("`{{% set {} %}}`", set.key));
            }
            Node::FilterSection(_, section, _) => {
                let name = &section.filter.name;
                self.call(&section.filter, &format!("`{{% filter {name} %}}`"));
                if !FILTERS.contains(&name.as_str()) {
                    self.refuse(format_args!("the filter section `{{% filter {name} %}}`"));
                }
                // `safe` writes the body as it is (Tera special-cases it).
                let inner = if name == "safe" {
                    mode.clone()
                } else {
                    Mode::Transformed(format!("a `{{% filter {name} %}}` section"))
                };
                self.nodes(&section.body, &inner);
            }
            Node::Include(_, names, _) => {
                // Tera renders the first that exists, with the same context, in place.
                let Some(name) = names.iter().find(|n| self.tera.get_template(n).is_ok()) else {
                    return;
                };
                if self.includes.contains(name) || self.includes.len() > 16 {
                    self.refuse(format_args!("an `{{% include %}}` cycle through `{name}`"));
                    return;
                }
                self.includes.push(name.clone());
                self.template(name, mode);
                self.includes.pop();
            }
        }
    }

    fn literal(&mut self, text: &str) {
        if text.contains([MARK_OPEN, MARK_CLOSE]) {
            self.refuse("the characters U+F0000 or U+F0001 (the fast path's markers)");
        }
    }

    fn shadows(&mut self, name: &str, what: &str) {
        if DYNAMIC_ROOTS.contains(&name) {
            self.refuse(format_args!(
                "{what} named `{name}`, which hides the context's `{name}`"
            ));
        }
    }

    /// A context path, if `ident` is one under a dynamic root.
    fn ident(&mut self, ident: &str) -> Option<Path> {
        if ident.contains('[') {
            self.refuse(format_args!("the bracket access `{ident}`"));
            return None;
        }
        if ident.starts_with("__tera") {
            self.refuse(format_args!("`{ident}`"));
            return None;
        }
        let path: Path = ident.split('.').map(str::to_string).collect();
        DYNAMIC_ROOTS.contains(&path[0].as_str()).then_some(path)
    }

    fn structural(&mut self, path: Path, why: &str) {
        self.usage
            .structural
            .entry(path)
            .or_insert_with(|| why.to_string());
    }

    /// `{{ expr }}` where its output goes straight into the document.
    fn printed(&mut self, expr: &Expr) {
        if let (ExprVal::Ident(ident), false) = (&expr.val, expr.negated) {
            let names: Vec<&str> = expr.filters.iter().map(|f| f.name.as_str()).collect();
            let kind = match names.as_slice() {
                [] => Some(HoleKind::Plain),
                ["json_encode", "safe"] if expr.filters[0].args.is_empty() => Some(HoleKind::Json),
                _ => None,
            };
            if let Some(kind) = kind {
                if let Some(path) = self.ident(ident) {
                    match kind {
                        HoleKind::Plain => self.usage.plain.insert(path),
                        HoleKind::Json => self.usage.json.insert(path),
                    };
                }
                return;
            }
        }
        let why = match expr.filters.first() {
            Some(filter) => format!("a print through `| {}`", filter.name),
            None => "a printed expression".to_string(),
        };
        self.expr(expr, &why);
    }

    /// Every path in `expr` is structural.
    fn expr(&mut self, expr: &Expr, why: &str) {
        self.val(&expr.val, why);
        for filter in &expr.filters {
            if !FILTERS.contains(&filter.name.as_str()) {
                self.refuse(format_args!("the filter `{}`", filter.name));
            }
            self.call(filter, why);
        }
    }

    fn call(&mut self, call: &FunctionCall, why: &str) {
        for arg in call.args.values() {
            self.expr(arg, why);
        }
    }

    fn val(&mut self, val: &ExprVal, why: &str) {
        match val {
            ExprVal::Ident(ident) => {
                if let Some(path) = self.ident(ident) {
                    self.structural(path, why);
                }
            }
            ExprVal::String(text) => self.literal(text),
            ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
            ExprVal::Math(m) => {
                self.expr(&m.lhs, why);
                self.expr(&m.rhs, why);
            }
            ExprVal::Logic(l) => {
                self.expr(&l.lhs, why);
                self.expr(&l.rhs, why);
            }
            ExprVal::Test(t) => {
                if !TESTS.contains(&t.name.as_str()) {
                    self.refuse(format_args!("the test `is {}`", t.name));
                }
                let why = format!("the test `is {}`", t.name);
                if let Some(path) = self.ident(&t.ident) {
                    self.structural(path, &why);
                }
                for arg in &t.args {
                    self.expr(arg, &why);
                }
            }
            ExprVal::FunctionCall(call) => {
                if !FUNCTIONS.contains(&call.name.as_str()) {
                    self.refuse(format_args!("the function `{}()`", call.name));
                }
                self.call(call, why);
            }
            ExprVal::MacroCall(call) => {
                // The body is walked with the template's macros; the arguments are read here.
                let why = format!("an argument of macro `{}::{}`", call.namespace, call.name);
                for arg in call.args.values() {
                    self.expr(arg, &why);
                }
            }
            ExprVal::Array(items) => items.iter().for_each(|e| self.expr(e, why)),
            ExprVal::StringConcat(concat) => {
                for v in &concat.values {
                    self.val(v, why);
                }
            }
            ExprVal::In(i) => {
                self.expr(&i.lhs, why);
                self.expr(&i.rhs, why);
            }
        }
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

/// Holes and structural paths from what the walk found: a path printed both ways, or
/// overlapping another hole or a structural path, is settled by its value (structural).
fn settle(usage: Usage) -> Analysis {
    let mut structural = usage.structural;
    let candidates: Vec<Hole> = usage
        .plain
        .iter()
        .map(|p| (p, HoleKind::Plain))
        .chain(usage.json.iter().map(|p| (p, HoleKind::Json)))
        .map(|(p, kind)| Hole {
            path: p.clone(),
            kind,
        })
        .collect();
    let mut holes = Vec::new();
    for (i, hole) in candidates.iter().enumerate() {
        let other_hole = candidates
            .iter()
            .enumerate()
            .find(|(j, other)| i != *j && overlaps(&hole.path, &other.path))
            .map(|(_, other)| other.path.join("."));
        let other_use = structural
            .iter()
            .find(|(s, _)| overlaps(&hole.path, s))
            .map(|(s, why)| format!("{} ({why})", s.join(".")));
        let why = match (other_hole, other_use) {
            (_, Some(other)) => format!("printed, and overlapping {other}"),
            (Some(other), None) if other == hole.path.join(".") => {
                "printed both as text and as JSON".to_string()
            }
            (Some(other), None) => format!("printed, and overlapping the print of {other}"),
            (None, None) => {
                holes.push(hole.clone());
                continue;
            }
        };
        structural.entry(hole.path.clone()).or_insert(why);
    }
    Analysis {
        holes,
        structural: structural.into_iter().collect(),
    }
}
