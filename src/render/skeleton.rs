//! The fast path: render a scenario's template once per *shape* into a skeleton of literal
//! text and holes, then fill the holes per journey without running Tera.
//!
//! Most of what differs between two journeys of one scenario is leaf values (a name, a date,
//! a URL) printed where the template says `{{ person.fullName }}`. [`Plan::analyze`] reads the
//! template's syntax tree (and its parents') and sorts every `journey.*`/`person.*` path it
//! uses into:
//!
//! - **holes**: paths only ever printed as they are, `{{ path }}` or
//!   `{{ path | json_encode() | safe }}`. Their values can be spliced in afterwards.
//! - **structural** paths: used anywhere else (an `if`, a loop, a filter, a `set`...). Their
//!   values decide the output's shape, so they form the skeleton's key: journeys that agree
//!   on them share one skeleton.
//!
//! A skeleton is made by rendering with Tera once, with each hole's value replaced by a marker
//! that no escaping touches; the output is minified and cut at the markers. Filling it writes
//! each hole's value the way Tera would have (JSON-escaped text, or `json_encode`'s output):
//! printed straight from the journey or person where `print.rs` knows the field, else as the
//! walk of `collect.rs` found it. Anything the analysis does not understand (macros, includes, bracket paths) leaves the
//! scenario on the ordinary Tera path; the catalogue also compares both paths byte for byte
//! on sample journeys before enabling this one.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;

use serde_json::Value;
use tera::ast::{Expr, ExprVal, FunctionCall, Node};
use tera::Tera;

use super::collect::{Capture, Collected, Trie};
use super::print::{printer, AsJourney, AsPerson, Printer, Sources};

/// The context roots whose values change from journey to journey.
const DYNAMIC_ROOTS: [&str; 2] = ["journey", "person"];
/// Skeletons kept per scenario; past this a new shape is rendered the ordinary way.
const MAX_SKELETONS: usize = 256;

const MARK_OPEN: char = '\u{F0000}';
const MARK_CLOSE: char = '\u{F0001}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HoleKind {
    /// `{{ path }}`: the value's text, JSON-escaped.
    Plain,
    /// `{{ path | json_encode() | safe }}`: the value as JSON.
    Json,
}

#[derive(Debug, Clone)]
struct Hole {
    path: Vec<String>,
    kind: HoleKind,
}

#[derive(Debug)]
enum Segment {
    Text(Box<str>),
    Hole(usize),
}

#[derive(Debug)]
struct Skeleton {
    segments: Vec<Segment>,
    /// The length of all the literal text, to size the output once.
    literal_len: usize,
}

impl Skeleton {
    /// The body: the literal text, each hole filled by its printer when the journey and person
    /// are given as such (`direct`) and the hole has one, else with the value the walk collected.
    fn write(
        &self,
        values: &Collected,
        direct: Option<(Sources<'_>, &Printers)>,
        out: &mut Vec<u8>,
    ) -> Result<(), Fallback> {
        out.reserve(self.literal_len + values.buf.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.extend_from_slice(text.as_bytes()),
                Segment::Hole(i) => match direct.and_then(|(from, p)| Some((from, p.get(*i)?))) {
                    Some((from, printer)) => printer.print(from, out),
                    None => out.extend_from_slice(values.get(*i).ok_or(Fallback)?),
                },
            }
        }
        Ok(())
    }
}

/// The printer of each hole that has one (by hole index).
struct Printers(Vec<Option<Printer>>);

impl Printers {
    fn get(&self, hole: usize) -> Option<&Printer> {
        self.0.get(hole)?.as_ref()
    }
}

impl std::fmt::Debug for Printers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.0.iter().filter(|p| p.is_some()).count();
        write!(f, "Printers({count} of {})", self.0.len())
    }
}

type Shapes = HashMap<Box<[u8]>, Arc<Skeleton>, foldhash::fast::RandomState>;

/// Buffers a fill works in, kept per thread so that a fill allocates nothing of its own.
#[derive(Default)]
struct Scratch {
    values: Collected,
    /// The structural values joined: which skeleton this journey takes.
    key: Vec<u8>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Why a fill could not be done; the caller renders the ordinary way instead.
#[derive(Debug)]
pub struct Fallback;

/// How one scenario's template is filled without Tera.
#[derive(Debug)]
pub struct Plan {
    holes: Vec<Hole>,
    structural: Vec<Vec<String>>,
    /// Holes are slots `0..holes.len()`, structural paths the slots after them.
    trie: Trie,
    /// The holes a [`Printer`] writes straight from the journey and person...
    printers: Printers,
    /// ...and `trie` without them: what is left to walk when both are given as such.
    walked: Trie,
    /// The skeletons made so far, by shape key. Read without a lock on every fill (an
    /// `arc-swap` load holds no shared counter); a new shape, rare, swaps in a copy of the map.
    skeletons: ArcSwap<Shapes>,
    enabled: AtomicBool,
    fallbacks: AtomicU64,
}

/// Paths found in a template, before overlaps are settled.
#[derive(Default)]
struct Usage {
    plain: BTreeSet<Vec<String>>,
    json: BTreeSet<Vec<String>>,
    structural: BTreeSet<Vec<String>>,
    unsupported: bool,
}

impl Usage {
    fn ident(&mut self, ident: &str) -> Option<Vec<String>> {
        if ident.contains('[') || ident.starts_with("__tera") {
            self.unsupported = true;
            return None;
        }
        let path: Vec<String> = ident.split('.').map(str::to_string).collect();
        DYNAMIC_ROOTS.contains(&path[0].as_str()).then_some(path)
    }

    fn structural_expr(&mut self, expr: &Expr) {
        self.structural_val(&expr.val);
        for filter in &expr.filters {
            self.structural_call(filter);
        }
    }

    fn structural_call(&mut self, call: &FunctionCall) {
        for arg in call.args.values() {
            self.structural_expr(arg);
        }
    }

    fn structural_val(&mut self, val: &ExprVal) {
        match val {
            ExprVal::Ident(ident) => {
                if let Some(path) = self.ident(ident) {
                    self.structural.insert(path);
                }
            }
            ExprVal::Math(m) => {
                self.structural_expr(&m.lhs);
                self.structural_expr(&m.rhs);
            }
            ExprVal::Logic(l) => {
                self.structural_expr(&l.lhs);
                self.structural_expr(&l.rhs);
            }
            ExprVal::Test(t) => {
                if let Some(path) = self.ident(&t.ident) {
                    self.structural.insert(path);
                }
                for arg in &t.args {
                    self.structural_expr(arg);
                }
            }
            ExprVal::FunctionCall(call) => self.structural_call(call),
            ExprVal::Array(items) => items.iter().for_each(|e| self.structural_expr(e)),
            ExprVal::StringConcat(concat) => {
                for v in &concat.values {
                    self.structural_val(v);
                }
            }
            ExprVal::In(i) => {
                self.structural_expr(&i.lhs);
                self.structural_expr(&i.rhs);
            }
            ExprVal::MacroCall(_) => self.unsupported = true,
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
        }
    }

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
                        HoleKind::Plain => self.plain.insert(path),
                        HoleKind::Json => self.json.insert(path),
                    };
                }
                return;
            }
        }
        self.structural_expr(expr);
    }

    fn nodes(&mut self, nodes: &[Node]) {
        for node in nodes {
            match node {
                Node::Text(_) | Node::Comment(..) | Node::Super | Node::Extends(..) => {}
                Node::Raw(..) | Node::Break(_) | Node::Continue(_) => {}
                Node::VariableBlock(_, expr) => self.printed(expr),
                Node::Block(_, block, _) => self.nodes(&block.body),
                Node::If(branches, _) => {
                    for (_, condition, body) in &branches.conditions {
                        self.structural_expr(condition);
                        self.nodes(body);
                    }
                    if let Some((_, body)) = &branches.otherwise {
                        self.nodes(body);
                    }
                }
                Node::Forloop(_, forloop, _) => {
                    if DYNAMIC_ROOTS.contains(&forloop.value.as_str())
                        || forloop
                            .key
                            .as_deref()
                            .is_some_and(|k| DYNAMIC_ROOTS.contains(&k))
                    {
                        self.unsupported = true;
                    }
                    self.structural_expr(&forloop.container);
                    self.nodes(&forloop.body);
                    if let Some(body) = &forloop.empty_body {
                        self.nodes(body);
                    }
                }
                Node::Set(_, set) => {
                    if DYNAMIC_ROOTS.contains(&set.key.as_str()) {
                        self.unsupported = true;
                    }
                    self.structural_expr(&set.value);
                }
                Node::FilterSection(_, section, _) => {
                    self.structural_call(&section.filter);
                    self.nodes(&section.body);
                }
                Node::MacroDefinition(..) | Node::Include(..) | Node::ImportMacro(..) => {
                    self.unsupported = true;
                }
            }
        }
    }
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

impl Plan {
    /// Read `template` and its parents; `None` when it uses something the fast path does not
    /// understand.
    pub fn analyze(tera: &Tera, template: &str) -> Option<Plan> {
        let mut usage = Usage::default();
        let tpl = tera.get_template(template).ok()?;
        usage.nodes(&tpl.ast);
        for parent in &tpl.parents {
            usage.nodes(&tera.get_template(parent).ok()?.ast);
        }
        if usage.unsupported {
            return None;
        }
        // A path printed both ways, or overlapping another path, is settled by its value.
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
            let clash = candidates
                .iter()
                .enumerate()
                .any(|(j, other)| i != j && overlaps(&hole.path, &other.path))
                || structural.iter().any(|s| overlaps(&hole.path, s));
            if clash {
                structural.insert(hole.path.clone());
            } else {
                holes.push(hole.clone());
            }
        }
        let structural: Vec<Vec<String>> = structural.into_iter().collect();
        let mut trie = Trie::default();
        let mut walked = Trie::default();
        let mut printers = Vec::with_capacity(holes.len());
        for (i, hole) in holes.iter().enumerate() {
            let capture = match hole.kind {
                HoleKind::Plain => Capture::Plain,
                HoleKind::Json => Capture::Json,
            };
            trie.insert(&hole.path, i, capture);
            let print = printer(&hole.path, hole.kind == HoleKind::Json);
            if print.is_none() {
                walked.insert(&hole.path, i, capture);
            }
            printers.push(print);
        }
        for (i, path) in structural.iter().enumerate() {
            trie.insert(path, holes.len() + i, Capture::Json);
            walked.insert(path, holes.len() + i, Capture::Json);
        }
        Some(Plan {
            holes,
            structural,
            trie,
            printers: Printers(printers),
            walked,
            skeletons: ArcSwap::from_pointee(Shapes::default()),
            enabled: AtomicBool::new(true),
            fallbacks: AtomicU64::new(0),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
    }

    /// How many skeletons (distinct shapes) have been made so far.
    pub fn shapes(&self) -> usize {
        self.skeletons.load().len()
    }

    /// How many holes and structural paths the analysis found.
    #[cfg(test)]
    pub fn counts(&self) -> (usize, usize) {
        (self.holes.len(), self.structural.len())
    }

    /// How many fills fell back to Tera (a new shape past the limit, a value it cannot print).
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Write the document into `out`. The values come from walking `journey` and `person`
    /// (the context's two dynamic roots); `roots` builds the whole context and `render` runs
    /// Tera on it, both only when this shape has no skeleton yet.
    pub fn fill<J: AsJourney + ?Sized, P: AsPerson + ?Sized>(
        &self,
        journey: &J,
        person: &P,
        out: &mut Vec<u8>,
        roots: impl FnOnce() -> Value,
        render: impl FnOnce(&Value) -> Result<String, String>,
    ) -> Result<(), Fallback> {
        let start = out.len();
        let result = self.try_fill(journey, person, out, roots, render);
        if result.is_err() {
            out.truncate(start);
            self.fallbacks.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    fn try_fill<J: AsJourney + ?Sized, P: AsPerson + ?Sized>(
        &self,
        journey: &J,
        person: &P,
        out: &mut Vec<u8>,
        roots: impl FnOnce() -> Value,
        render: impl FnOnce(&Value) -> Result<String, String>,
    ) -> Result<(), Fallback> {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => self.fill_with(&mut scratch, journey, person, out, roots, render),
            // Only a fill inside a fill could get here; it simply gets buffers of its own.
            Err(_) => self.fill_with(&mut Scratch::default(), journey, person, out, roots, render),
        })
    }

    fn fill_with<J: AsJourney + ?Sized, P: AsPerson + ?Sized>(
        &self,
        scratch: &mut Scratch,
        journey: &J,
        person: &P,
        out: &mut Vec<u8>,
        roots: impl FnOnce() -> Value,
        render: impl FnOnce(&Value) -> Result<String, String>,
    ) -> Result<(), Fallback> {
        let Scratch { values, key } = scratch;
        values.clear();
        let direct = match (journey.as_journey(), person.as_person()) {
            (Some(journey), Some(person)) => Some((Sources { journey, person }, &self.printers)),
            _ => None,
        };
        let trie = if direct.is_some() {
            &self.walked
        } else {
            &self.trie
        };
        trie.collect("journey", journey, values)
            .map_err(|_| Fallback)?;
        trie.collect("person", person, values)
            .map_err(|_| Fallback)?;
        key.clear();
        for i in 0..self.structural.len() {
            match values.get(self.holes.len() + i) {
                Some(text) => key.extend_from_slice(text),
                None => key.push(0),
            }
            key.push(1);
        }
        {
            // The guard is held through the write (a few microseconds): loading it touched no
            // memory that other threads write, where a lock or a reference count would have
            // bounced between cores on every fill.
            let skeletons = self.skeletons.load();
            if let Some(skeleton) = skeletons.get(key.as_slice()) {
                return skeleton.write(values, direct, out);
            }
        }
        if self.shapes() >= MAX_SKELETONS {
            return Err(Fallback);
        }
        let skeleton = Arc::new(self.make_skeleton(&roots(), render)?);
        skeleton.write(values, direct, out)?;
        // Two threads making the same shape at once both succeed; the first one stays.
        self.skeletons.rcu(|shapes| {
            let mut shapes = Shapes::clone(shapes);
            shapes
                .entry(key.as_slice().into())
                .or_insert_with(|| skeleton.clone());
            shapes
        });
        Ok(())
    }

    fn make_skeleton(
        &self,
        roots: &Value,
        render: impl FnOnce(&Value) -> Result<String, String>,
    ) -> Result<Skeleton, Fallback> {
        let mut marked = roots.clone();
        for (i, hole) in self.holes.iter().enumerate() {
            if let Some(slot) = lookup_mut(&mut marked, &hole.path) {
                *slot = Value::String(format!("{MARK_OPEN}{i}{MARK_CLOSE}"));
            }
        }
        let text = render(&marked).map_err(|_| Fallback)?;
        let text = super::minify_json(&text);
        let mut segments = Vec::new();
        let mut rest = text.as_str();
        while let Some(start) = rest.find(MARK_OPEN) {
            let after = &rest[start + MARK_OPEN.len_utf8()..];
            let end = after.find(MARK_CLOSE).ok_or(Fallback)?;
            let index: usize = after[..end].parse().map_err(|_| Fallback)?;
            let hole = self.holes.get(index).ok_or(Fallback)?;
            let mut literal = &rest[..start];
            let mut tail = &after[end + MARK_CLOSE.len_utf8()..];
            if hole.kind == HoleKind::Json {
                // json_encode wrote the marker as a JSON string: its quotes go with it.
                literal = literal.strip_suffix('"').ok_or(Fallback)?;
                tail = tail.strip_prefix('"').ok_or(Fallback)?;
            }
            if !literal.is_empty() {
                segments.push(Segment::Text(literal.into()));
            }
            segments.push(Segment::Hole(index));
            rest = tail;
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.into()));
        }
        let literal_len = segments
            .iter()
            .map(|s| match s {
                Segment::Text(text) => text.len(),
                Segment::Hole(_) => 0,
            })
            .sum();
        Ok(Skeleton {
            segments,
            literal_len,
        })
    }
}

fn lookup_mut<'a>(root: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(root, |v, key| match v {
        Value::Object(map) => map.get_mut(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tera(templates: &[(&str, &str)]) -> Tera {
        let mut tera = Tera::default();
        tera.autoescape_on(vec![".json.tera"]);
        tera.set_escape_fn(crate::render::escape_json);
        tera.add_raw_templates(
            templates
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string())),
        )
        .unwrap();
        tera
    }

    fn direct(tera: &Tera, name: &str, roots: &Value) -> Result<String, String> {
        let context = tera::Context::from_value(roots.clone()).map_err(|e| e.to_string())?;
        tera.render(name, &context).map_err(|e| e.to_string())
    }

    fn fast(plan: &Plan, tera: &Tera, name: &str, roots: &Value) -> String {
        let mut out = Vec::new();
        plan.fill(
            &roots["journey"],
            &roots["person"],
            &mut out,
            || roots.clone(),
            |r| direct(tera, name, r),
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn holes_and_structure_are_told_apart() {
        let t = tera(&[(
            "t.json.tera",
            r#"{"n": "{{ person.name }}", "u": {{ journey.userInfo | json_encode() | safe }},
               "c": {% if person.country == "AE" %}"uae"{% else %}"other"{% endif %},
               "up": "{{ person.name | upper }}", "k": "{{ vars.k }}"}"#,
        )]);
        let plan = Plan::analyze(&t, "t.json.tera").unwrap();
        // person.name is printed plainly and through a filter: it is structural.
        assert_eq!(plan.counts(), (1, 2));
    }

    #[test]
    fn fill_matches_tera_for_every_value_kind() {
        let t = tera(&[(
            "t.json.tera",
            "{\n  \"n\": \"{{ person.name }}\",\n  \"num\": {{ journey.at }},\n  \"f\": {{ person.f }},\n  \"b\": {{ journey.b }},\n  \"u\": {{ journey.userInfo | json_encode() | safe }},\n  \"s\": {{ journey.s | json_encode() | safe }},\n  \"c\": {% if person.country == \"AE\" %}1{% else %}2{% endif %},\n  \"v\": \"{{ vars.k }}\"\n}",
        )]);
        let plan = Plan::analyze(&t, "t.json.tera").unwrap();
        for (name, country, s) in [
            ("Zoë \"Q\" O'Neil\\", "AE", json!(null)),
            ("plain", "IN", json!(12)),
            ("new\nline\u{1}", "AE", json!("x")),
        ] {
            let roots = json!({
                "journey": {"at": 1721541339746i64, "b": true, "userInfo": {"a": [1, "two"]}, "s": s},
                "person": {"name": name, "f": 0.9670456647872925, "country": country},
                "vars": {"k": "const"}
            });
            let expected = crate::render::minify_json(&direct(&t, "t.json.tera", &roots).unwrap());
            assert_eq!(fast(&plan, &t, "t.json.tera", &roots), expected);
        }
        // Two shapes (AE and IN), each made once.
        assert_eq!(plan.skeletons.load().len(), 2);
    }

    #[test]
    fn inheritance_is_followed_and_macros_are_refused() {
        let t = tera(&[
            (
                "base.json.tera",
                r#"{"a": {% block a %}"{{ person.x }}"{% endblock a %}}"#,
            ),
            (
                "child.json.tera",
                r#"{% extends "base.json.tera" %}{% block a %}{% if journey.y %}1{% else %}"{{ person.x }}"{% endif %}{% endblock a %}"#,
            ),
            ("m.json.tera", r#"{% import "base.json.tera" as b %}{}"#),
        ]);
        let plan = Plan::analyze(&t, "child.json.tera").unwrap();
        assert_eq!(plan.counts(), (1, 1));
        let roots = json!({"journey": {"y": false}, "person": {"x": "v"}});
        assert_eq!(fast(&plan, &t, "child.json.tera", &roots), r#"{"a":"v"}"#);
        assert!(Plan::analyze(&t, "m.json.tera").is_none());
    }
}
