//! The fast path: render a scenario's template once per *shape* into a skeleton of literal
//! text and holes, then fill the holes per journey without running Tera.
//!
//! Most of what differs between two journeys of one scenario is leaf values (a name, a date,
//! a URL) printed where the template says `{{ person.fullName }}`. The analysis
//! (`analysis.rs`, an allow-list) sorts every `journey.*`/`person.*` path the template uses
//! into *holes*, printed as they are where the output goes straight into the document, and
//! *structural* paths, used any other way; journeys that agree on the structural values share
//! one skeleton.
//!
//! A skeleton is made by rendering with Tera once, with each hole's value replaced by a marker
//! that no escaping touches; the output is minified and cut at the markers. Before it is
//! trusted, every hole must sit where any value keeps the document valid and equal to Tera's:
//! a text hole inside a JSON string (its value JSON-escaped, as Tera escapes it), a number
//! or boolean printed bare as a whole JSON value (checked per journey), a `json_encode` hole
//! as a whole JSON value; and the skeleton with placeholders must parse as a JSON object.
//! Filling it writes each hole's value the way Tera would have: printed straight from the
//! journey or person where `print.rs` knows the field, else as the walk of `collect.rs` found
//! it. Whatever cannot be filled falls back to Tera for that journey.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use serde_json::Value;
use tera::Tera;

use super::analysis::{self, HoleKind, Path, MARK_CLOSE, MARK_OPEN};
use super::collect::{Capture, Collected, Trie};
use super::print::{printer, scalar, AsJourney, AsPerson, Printer, Sources};

/// Skeletons kept per scenario; past this a new shape is rendered the ordinary way.
const MAX_SKELETONS: usize = 256;

#[derive(Debug, Clone)]
struct Hole {
    path: Path,
    kind: HoleKind,
}

#[derive(Debug)]
enum Segment {
    Text(Box<str>),
    /// A hole inside a JSON string, or a `json_encode` hole that is a whole JSON value; or,
    /// with [`BARE`] set in the index, a text hole printed as a whole JSON value, where only a
    /// number, `true`, `false` or `null` keeps the document valid, so each value is checked.
    /// No printer or collected value has such an index, so a bare hole is found where the
    /// lookups miss and the common hole pays nothing for it (about 170 segments a document:
    /// every instruction of the fill loop shows in a new journey).
    Hole(usize),
}

/// The bit of a [`Segment::Hole`] index that marks a bare hole.
const BARE: usize = 1 << (usize::BITS - 1);

#[derive(Debug)]
struct Skeleton {
    segments: Vec<Segment>,
    /// The length of all the literal text, to size the output once.
    literal_len: usize,
}

/// A hole that cannot be filled; the fill falls back ([`Fallback::Unprintable`]). Zero-sized,
/// so that the loop over a document's holes carries no error value.
struct Unfilled;

impl Skeleton {
    /// The body: the literal text, each hole filled by its printer when the journey and person
    /// are given as such (`direct`) and the hole has one, else with the value the walk collected.
    fn write(
        &self,
        values: &Collected,
        direct: Option<(Sources<'_>, &Printers)>,
        out: &mut Vec<u8>,
    ) -> Result<(), Unfilled> {
        out.reserve(self.literal_len + values.buf.len());
        // Two loops, one per source of values: a hole then costs one lookup and a call.
        match direct {
            Some((from, printers)) => {
                for segment in &self.segments {
                    match segment {
                        Segment::Text(text) => out.extend_from_slice(text.as_bytes()),
                        Segment::Hole(i) => match printers.get(*i) {
                            Some(printer) => printer.print(from, out),
                            None => match values.get(*i) {
                                Some(value) => out.extend_from_slice(value),
                                None => write_bare(*i, values, direct, out)?,
                            },
                        },
                    }
                }
            }
            None => {
                for segment in &self.segments {
                    match segment {
                        Segment::Text(text) => out.extend_from_slice(text.as_bytes()),
                        Segment::Hole(i) => match values.get(*i) {
                            Some(value) => out.extend_from_slice(value),
                            None => write_bare(*i, values, direct, out)?,
                        },
                    }
                }
            }
        }
        Ok(())
    }
}

/// Hole `index` that no lookup found: a bare hole (a few numbers per document), or a value
/// missing. A printer known to write only numbers and booleans (see
/// [`print::scalar`](super::print::scalar)) must have written something; anything else is
/// checked to be one JSON number, `true`, `false` or `null`.
#[inline(never)]
fn write_bare(
    index: usize,
    values: &Collected,
    direct: Option<(Sources<'_>, &Printers)>,
    out: &mut Vec<u8>,
) -> Result<(), Unfilled> {
    if index & BARE == 0 {
        return Err(Unfilled);
    }
    let i = index & !BARE;
    let start = out.len();
    let scalar = match direct.and_then(|(from, p)| Some((from, p.get(i)?, p.scalar(i)))) {
        Some((from, printer, scalar)) => {
            printer.print(from, out);
            scalar
        }
        None => {
            out.extend_from_slice(values.get(i).ok_or(Unfilled)?);
            false
        }
    };
    let written = &out[start..];
    if scalar && !written.is_empty() || is_scalar_token(written) {
        Ok(())
    } else {
        Err(Unfilled)
    }
}

/// Whether `text` is one JSON number, `true`, `false` or `null`.
fn is_scalar_token(text: &[u8]) -> bool {
    if matches!(text, b"true" | b"false" | b"null") {
        return true;
    }
    let digits = |t: &[u8]| t.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = text.strip_prefix(b"-").unwrap_or(text);
    let int = digits(rest);
    if int == 0 || (int > 1 && rest[0] == b'0') {
        return false;
    }
    let mut rest = &rest[int..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = digits(fraction);
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    if let Some(exponent) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exponent = exponent
            .strip_prefix(b"+")
            .or_else(|| exponent.strip_prefix(b"-"))
            .unwrap_or(exponent);
        let n = digits(exponent);
        if n == 0 {
            return false;
        }
        rest = &exponent[n..];
    }
    rest.is_empty()
}

/// The printer of each hole that has one (by hole index), and whether it writes only
/// numbers and booleans (apart: the common lookup reads the first alone).
struct Printers(Vec<Option<Printer>>, Vec<bool>);

impl Printers {
    fn get(&self, hole: usize) -> Option<&Printer> {
        self.0.get(hole)?.as_ref()
    }

    fn scalar(&self, hole: usize) -> bool {
        self.1.get(hole).copied().unwrap_or(false)
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
pub enum Fallback {
    /// A new shape, and the scenario has [`MAX_SKELETONS`] already.
    TooManyShapes,
    /// A value the template prints in a way the fast path cannot (an object printed as text,
    /// a string printed bare...): Tera decides what that gives.
    Unprintable,
    /// Tera failed to render the shape's skeleton; it fails the same way on the journey.
    Render,
    /// The skeleton Tera rendered cannot be filled safely (why): every journey of this shape
    /// goes to Tera.
    Skeleton(String),
}

/// How one scenario's template is filled without Tera.
#[derive(Debug)]
pub struct Plan {
    holes: Vec<Hole>,
    /// Each structural path, and the construct that made it so.
    structural: Vec<(Path, String)>,
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
    /// Why it was taken off the fast path, once it was.
    off: Mutex<Option<String>>,
    fallbacks: AtomicU64,
    /// Test hook (see [`Plan::corrupt`]): skeletons made from now on are wrong.
    corrupt: AtomicBool,
}

impl Plan {
    /// Read `template` and everything it renders with (see `analysis.rs`); the reason it
    /// cannot have a fast path otherwise.
    pub fn analyze(tera: &Tera, template: &str) -> Result<Plan, String> {
        let analysis = analysis::analyze(tera, template)?;
        let holes: Vec<Hole> = analysis
            .holes
            .into_iter()
            .map(|h| Hole {
                path: h.path,
                kind: h.kind,
            })
            .collect();
        let structural = analysis.structural;
        let mut trie = Trie::default();
        let mut walked = Trie::default();
        let mut printers = Vec::with_capacity(holes.len());
        let mut scalars = Vec::with_capacity(holes.len());
        for (i, hole) in holes.iter().enumerate() {
            let capture = match hole.kind {
                HoleKind::Plain => Capture::Plain,
                HoleKind::Json => Capture::Json,
            };
            trie.insert(&hole.path, i, capture);
            let json = hole.kind == HoleKind::Json;
            let print = printer(&hole.path, json);
            if print.is_none() {
                walked.insert(&hole.path, i, capture);
            }
            scalars.push(print.is_some() && !json && scalar(&hole.path));
            printers.push(print);
        }
        for (i, (path, _)) in structural.iter().enumerate() {
            trie.insert(path, holes.len() + i, Capture::Json);
            walked.insert(path, holes.len() + i, Capture::Json);
        }
        Ok(Plan {
            holes,
            structural,
            trie,
            printers: Printers(printers, scalars),
            walked,
            skeletons: ArcSwap::from_pointee(Shapes::default()),
            enabled: AtomicBool::new(true),
            off: Mutex::new(None),
            fallbacks: AtomicU64::new(0),
            corrupt: AtomicBool::new(false),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Take the scenario off the fast path for good, and say why.
    pub fn disable(&self, why: String) {
        let mut off = self.off.lock().unwrap_or_else(|p| p.into_inner());
        off.get_or_insert(why);
        self.enabled.store(false, Ordering::Relaxed);
    }

    /// Why the scenario was taken off the fast path, if it was.
    pub fn off_reason(&self) -> Option<String> {
        self.off.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The structural paths whose values differed in at least `min` of the shapes made so far,
    /// with the construct that made each structural: what splits journeys into shapes.
    pub fn varying(&self, min: usize) -> Vec<(String, String)> {
        let skeletons = self.skeletons.load();
        let mut distinct: Vec<BTreeSet<&[u8]>> = vec![BTreeSet::new(); self.structural.len()];
        for key in skeletons.keys() {
            // Values are JSON (no raw byte 1 in it) or a lone 0 for absent, each ended by a 1.
            for (i, value) in key
                .split(|b| *b == 1)
                .take(self.structural.len())
                .enumerate()
            {
                distinct[i].insert(value);
            }
        }
        self.structural
            .iter()
            .zip(distinct)
            .filter(|(_, values)| values.len() >= min)
            .map(|((path, why), _)| (path.join("."), why.clone()))
            .collect()
    }

    /// Test hook for `--verify-fast-path`: every skeleton made from now on carries an extra
    /// field, as a fast path that misreads a template would.
    pub fn corrupt(&self) {
        self.corrupt.store(true, Ordering::Relaxed);
        self.skeletons.store(Arc::new(Shapes::default()));
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
            .map_err(|_| Fallback::Unprintable)?;
        trie.collect("person", person, values)
            .map_err(|_| Fallback::Unprintable)?;
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
                return skeleton
                    .write(values, direct, out)
                    .map_err(|_| Fallback::Unprintable);
            }
        }
        if self.shapes() >= MAX_SKELETONS {
            return Err(Fallback::TooManyShapes);
        }
        let skeleton = Arc::new(self.make_skeleton(&roots(), render)?);
        skeleton
            .write(values, direct, out)
            .map_err(|_| Fallback::Unprintable)?;
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
        let mut placed = 0;
        for (i, hole) in self.holes.iter().enumerate() {
            if let Some(slot) = lookup_mut(&mut marked, &hole.path) {
                *slot = Value::String(format!("{MARK_OPEN}{i}{MARK_CLOSE}"));
                placed += 1;
            }
        }
        // Only our markers may carry the marker characters, or a value could pose as a hole.
        if count_marked(&marked) != placed {
            return Err(Fallback::Skeleton(
                "a value holds U+F0000 or U+F0001, the fast path's markers".into(),
            ));
        }
        let text = render(&marked).map_err(|_| Fallback::Render)?;
        let mut skeleton = cut(&super::minify_json(&text), &self.holes)?;
        if self.corrupt.load(Ordering::Relaxed) {
            if let Some(Segment::Text(first)) = skeleton.segments.first_mut() {
                if let Some(rest) = first.strip_prefix('{') {
                    *first = format!("{{\"otkMockCorrupted\":true,{rest}").into();
                }
            }
        }
        skeleton.literal_len = skeleton
            .segments
            .iter()
            .map(|s| match s {
                Segment::Text(text) => text.len(),
                Segment::Hole(_) => 0,
            })
            .sum();
        Ok(skeleton)
    }
}

/// How many strings in `value` (keys included) hold a marker character.
fn count_marked(value: &Value) -> usize {
    let marked = |s: &str| usize::from(s.contains([MARK_OPEN, MARK_CLOSE]));
    match value {
        Value::String(s) => marked(s),
        Value::Array(items) => items.iter().map(count_marked).sum(),
        Value::Object(map) => map.iter().map(|(k, v)| marked(k) + count_marked(v)).sum(),
        _ => 0,
    }
}

/// Cut minified, marked output at its markers, checking that each hole sits where any value
/// of its kind gives a valid document: a text hole inside a string or bare as a whole value,
/// a JSON hole as a whole value; and that the result, with placeholders, is a JSON object.
fn cut(text: &str, holes: &[Hole]) -> Result<Skeleton, Fallback> {
    fn flush(literal: &mut String, probe: &mut String, segments: &mut Vec<Segment>) {
        probe.push_str(literal);
        if !literal.is_empty() {
            segments.push(Segment::Text(std::mem::take(literal).into()));
        }
    }
    let reject = |why: String| Err(Fallback::Skeleton(why));
    // What precedes and follows a whole JSON value in minified JSON.
    let opens = |s: &str| s.ends_with([':', '[', ',']);
    let closes = |s: &str| s.starts_with([',', ']', '}']);
    let mut segments = Vec::new();
    // The skeleton with each hole replaced by a value of its kind, to parse.
    let mut probe = String::with_capacity(text.len());
    let mut literal = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c == MARK_CLOSE {
            return reject("a stray marker character in the output".into());
        }
        if c != MARK_OPEN {
            if in_string {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '"' {
                    in_string = false;
                }
            } else if c == '"' {
                in_string = true;
            }
            literal.push(c);
            continue;
        }
        let Some(end) = rest.find(MARK_CLOSE) else {
            return reject("a marker cut short in the output".into());
        };
        let Some(hole) = rest[..end]
            .parse::<u32>()
            .ok()
            .and_then(|i| Some((i, holes.get(i as usize)?)))
        else {
            return reject("a malformed marker in the output".into());
        };
        let (index, hole) = hole;
        rest = &rest[end + MARK_CLOSE.len_utf8()..];
        let name = hole.path.join(".");
        match hole.kind {
            // Tera JSON-escaped the value there, and so does the fill: the string stays one
            // string, which minifying leaves alone.
            HoleKind::Plain if in_string && !escaped => {
                flush(&mut literal, &mut probe, &mut segments);
                segments.push(Segment::Hole(index as usize));
            }
            HoleKind::Plain if opens(&literal) && closes(rest) => {
                flush(&mut literal, &mut probe, &mut segments);
                probe.push('0');
                segments.push(Segment::Hole(index as usize | BARE));
            }
            HoleKind::Plain => {
                return reject(format!(
                    "`{{{{ {name} }}}}` is printed where it is neither inside a JSON string (after any escape) nor a whole JSON value"
                ));
            }
            // json_encode wrote the marker as a string: its quotes must be that whole string,
            // standing as a whole value.
            HoleKind::Json => {
                let before = literal.strip_suffix('"').filter(|_| in_string);
                let after = rest.strip_prefix('"');
                match (before, after) {
                    (Some(before), Some(after)) if opens(before) && closes(after) => {
                        literal.truncate(before.len());
                        rest = after;
                        in_string = false;
                        flush(&mut literal, &mut probe, &mut segments);
                        probe.push_str("null");
                        segments.push(Segment::Hole(index as usize));
                    }
                    _ => {
                        return reject(format!(
                            "`{{{{ {name} | json_encode() | safe }}}}` is printed where it is not a whole JSON value"
                        ));
                    }
                }
            }
        }
    }
    flush(&mut literal, &mut probe, &mut segments);
    // Text holes inside strings left their strings empty in the probe: still valid JSON.
    if !probe.starts_with('{') || serde_json::from_str::<serde::de::IgnoredAny>(&probe).is_err() {
        return reject("the template's output is not one JSON object around its holes".into());
    }
    Ok(Skeleton {
        segments,
        literal_len: 0,
    })
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
    fn inheritance_and_macro_imports_are_followed() {
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
        // Importing macros is understood: their bodies' paths would be structural.
        assert!(Plan::analyze(&t, "m.json.tera").is_ok());
    }

    fn first_fill(t: &Tera, text: &str, roots: &Value) -> Result<String, Fallback> {
        let _ = text;
        let plan = Plan::analyze(t, "t.json.tera").map_err(Fallback::Skeleton)?;
        let mut out = Vec::new();
        plan.fill(
            &roots["journey"],
            &roots["person"],
            &mut out,
            || roots.clone(),
            |r| direct(t, "t.json.tera", r),
        )?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn holes_must_sit_where_any_value_keeps_the_document_valid() {
        let roots = json!({"journey": {"n": 5, "s": "x y"}, "person": {"name": "A"}});
        for (text, ok) in [
            // In a string, bare as a whole value, as a whole JSON value: fine.
            (
                r#"{"a": "{{ person.name }}", "b": {{ journey.n }}, "c": [{{ journey.n }}]}"#,
                true,
            ),
            (r#"{"a": {{ journey.s | json_encode() | safe }}}"#, true),
            // Glued to other text outside a string, or json_encode inside a string: refused.
            (r#"{"a": 1{{ journey.n }}}"#, false),
            (r#"{"a": "{{ journey.s | json_encode() | safe }}"}"#, false),
            (r#"{"a": "\{{ person.name }}"}"#, false),
            // Not an object around its holes.
            (r#"[{{ journey.n }}]"#, false),
        ] {
            let t = tera(&[("t.json.tera", text)]);
            let result = first_fill(&t, text, &roots);
            assert_eq!(result.is_ok(), ok, "{text}: {result:?}");
            if let Ok(fast) = result {
                let expected =
                    crate::render::minify_json(&direct(&t, "t.json.tera", &roots).unwrap());
                assert_eq!(fast, expected);
            }
        }
    }

    #[test]
    fn a_bare_hole_takes_only_numbers_and_literals() {
        let t = tera(&[("t.json.tera", r#"{"a": {{ journey.v }}}"#)]);
        for (v, ok) in [
            (json!(12), true),
            (json!(-0.5), true),
            (json!(true), true),
            (json!("12"), true),
            (json!("x y"), false),
            (json!(null), false),
            (json!("1 2"), false),
        ] {
            let roots = json!({"journey": {"v": v}, "person": {}});
            assert_eq!(first_fill(&t, "", &roots).is_ok(), ok, "{v}");
        }
        for (token, ok) in [
            ("0", true),
            ("-0.0e+5", true),
            ("01", false),
            ("1.", false),
            (".5", false),
            ("1e", false),
            ("nul", false),
            ("", false),
        ] {
            assert_eq!(is_scalar_token(token.as_bytes()), ok, "{token}");
        }
    }

    #[test]
    fn a_value_posing_as_a_marker_gets_no_skeleton() {
        let t = tera(&[(
            "t.json.tera",
            r#"{"a": "{{ person.name }}", "b": "{% if journey.k %}{{ journey.k | upper }}{% endif %}"}"#,
        )]);
        let roots = json!({"journey": {"k": "\u{F0000}0\u{F0001}"}, "person": {"name": "A"}});
        assert!(matches!(
            first_fill(&t, "", &roots),
            Err(Fallback::Skeleton(_))
        ));
    }

    #[test]
    fn what_the_analysis_does_not_understand_is_refused_with_a_reason() {
        for (text, reason) in [
            (r#"{"a": "{{ person[journey.k] }}"}"#, "bracket access"),
            (r#"{"a": "{{ get_env(name="HOME") }}"}"#, "get_env"),
            (r#"{% set person = 1 %}{}"#, "hides the context"),
            (
                r#"{% for journey in [1] %}{% endfor %}{}"#,
                "hides the context",
            ),
            (r#"{"a": "{{ __tera_context }}"}"#, "__tera_context"),
        ] {
            let t = tera(&[("t.json.tera", text)]);
            let why = Plan::analyze(&t, "t.json.tera").unwrap_err();
            assert!(why.contains(reason), "{text}: {why}");
            assert!(why.contains("t.json.tera"), "{why}");
        }
        let t = tera(&[("t.json", "{}")]);
        assert!(Plan::analyze(&t, "t.json")
            .unwrap_err()
            .contains(".json.tera"));
    }

    #[test]
    fn output_that_tera_transforms_has_no_holes() {
        let t = tera(&[
            (
                "base.json.tera",
                r#"{"a": {% filter upper %}{% block a %}1{% endblock a %}{% endfilter %}, "b": "{{ person.y }}"}"#,
            ),
            (
                "t.json.tera",
                r#"{% extends "base.json.tera" %}{% block a %}"{{ person.x }}"{% endblock a %}"#,
            ),
        ]);
        let plan = Plan::analyze(&t, "t.json.tera").unwrap();
        // The child's block a is rendered inside the parent's `upper`: person.x is structural.
        assert_eq!(plan.counts(), (1, 1));
        assert_eq!(plan.structural[0].0, ["person", "x"]);
        assert!(
            plan.structural[0].1.contains("filter upper"),
            "{:?}",
            plan.structural
        );
        let roots = json!({"journey": {}, "person": {"x": "low", "y": "low"}});
        assert_eq!(
            fast(&plan, &t, "t.json.tera", &roots),
            r#"{"a":"LOW","b":"low"}"#
        );
    }

    #[test]
    fn scalar_printers_write_only_numbers_booleans_or_nothing() {
        use crate::render::person::{generate, journey_rng};
        let paths = [
            "person.latitude",
            "person.longitude",
            "person.document.dType",
            "journey.flowVersion",
            "journey.createdAt",
            "journey.startedAt",
            "journey.completedAt",
            "journey.callbackSent",
        ];
        for n in 0..200 {
            let mut rng = journey_rng(n, "scalar");
            let mut person = generate(&mut rng);
            let mut journey = crate::render::facts::Journey::stateless("j", "c", &mut rng, &person);
            if n % 2 == 0 {
                journey.started_at = None;
                journey.completed_at = None;
                person.latitude = f64::NAN;
                person.longitude = -0.0;
            }
            for path in paths {
                let path: Vec<String> = path.split('.').map(str::to_string).collect();
                assert!(scalar(&path), "{path:?}");
                let print = printer(&path, false).expect("a printer");
                let mut out = Vec::new();
                print.print(
                    Sources {
                        journey: &journey,
                        person: &person,
                    },
                    &mut out,
                );
                assert!(out.is_empty() || is_scalar_token(&out), "{path:?}: {out:?}");
            }
        }
        assert!(!scalar(&["person".into(), "firstName".into()]));
    }
}
