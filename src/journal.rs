//! The request journal: every request to the provider surface, recorded before its answer
//! goes out, so that a test can ask "did my app fetch this journey, and how often?" without
//! racing the client.
//!
//! Bounded by `--journal-entries` (the oldest entry is dropped first): a [`Ring`], so two
//! requests recorded on two threads do not wait for each other, and an entry's id is the
//! sequence number the ring gave it. An entry holds no string the request does not need (the
//! path of a provider route is rebuilt when read, the scenario is shared, a short journey id is
//! stored inline): every slot written is a cache line or two the request path pays for.
//!
//! Bounded by `--journal-bytes` too, without evicting by bytes (see [`crate::ring`]): the
//! ring's slots are fixed, and each entry may hold an equal share of what they leave of the
//! budget on the heap (670 bytes at the defaults). A journey id, path or fault longer than
//! that is kept cut, ending in `…`, with `truncated` set (the longest string is cut first);
//! an exact `journeyId` or `path` filter does not find it by its whole text. Checking an
//! entry that fits is three length reads on the request path.
//!
//! Filters, the same as query parameters (`GET /__admin/requests?…`) and as a JSON object
//! (`POST /__admin/requests/count`): `journeyId` (exact), `path` (exact, or a prefix ending
//! in `*`), `status` (a code, a class such as `5xx`, or `none` for requests answered by no
//! status: reset, empty, hang), `since` (epoch milliseconds or ISO-8601, inclusive) and
//! `scenario` (name).

use std::sync::Arc;

use hyper::Method;
use jiff::civil::Time;
use jiff::fmt::temporal::DateTimeParser;
use jiff::tz::Offset;
use serde::Serialize;
use serde_json::Value;

use crate::ring::{Budget, Ring};
use crate::text::{cut_marked, fair_cap};
use crate::time::iso_from_millis;
use crate::wire::{RouteKind, API_PREFIX};

/// A string stored inline when short (journey ids are), so recording one allocates nothing.
#[derive(Clone)]
pub enum ShortStr {
    Inline { len: u8, bytes: [u8; 30] },
    Heap(Box<str>),
}

impl ShortStr {
    pub fn new(text: &str) -> Self {
        let mut bytes = [0u8; 30];
        match bytes.get_mut(..text.len()) {
            Some(slot) => {
                slot.copy_from_slice(text.as_bytes());
                ShortStr::Inline {
                    len: text.len() as u8,
                    bytes,
                }
            }
            None => ShortStr::Heap(text.into()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            // Always a whole copy of a `&str`, so always UTF-8.
            ShortStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or("")
            }
            ShortStr::Heap(s) => s,
        }
    }

    /// What it holds on the heap.
    fn heap_bytes(&self) -> usize {
        match self {
            ShortStr::Inline { .. } => 0,
            ShortStr::Heap(s) => s.len(),
        }
    }
}

impl std::fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// One request as recorded; its id is the sequence number the journal's ring keeps beside it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// When the request arrived, epoch milliseconds.
    pub time_ms: i64,
    pub method: Method,
    pub route: RouteKind,
    /// The path, kept only for [`RouteKind::Other`]; provider paths are rebuilt.
    pub other_path: Option<Box<str>>,
    pub journey_id: Option<ShortStr>,
    /// The scenario chosen, by its metrics key (see [`crate::metrics::Metrics::scenario_names`]).
    pub scenario: Option<u32>,
    /// Why the scenario was chosen: `binding`, `prefix`, `header`, `default` (get-journey);
    /// `header`, `external_reference_id`, `default` (create-journey-url).
    pub selection: Option<&'static str>,
    /// `None` when no status went out (reset, empty, hang).
    pub status: Option<u16>,
    /// From arrival to the moment the answer was handed over (or the fault began).
    pub latency_us: u64,
    pub fault: Option<Arc<str>>,
    pub fault_source: Option<&'static str>,
    /// A string was cut to keep the entry within its share of `--journal-bytes`.
    pub truncated: bool,
}

impl Entry {
    /// What the entry holds on the heap, counted against the journal's byte budget (a fault
    /// text may be shared with a rule; it is counted whole all the same).
    pub fn heap_bytes(&self) -> usize {
        self.journey_id.as_ref().map_or(0, ShortStr::heap_bytes)
            + self.other_path.as_ref().map_or(0, |p| p.len())
            + self.fault.as_ref().map_or(0, |f| f.len())
    }

    /// Cut the entry's strings, the longest first, until it holds at most `heap` bytes.
    fn fit(&mut self, heap: usize) {
        if self.heap_bytes() <= heap {
            return;
        }
        let lens = [
            self.journey_id.as_ref().map_or(0, ShortStr::heap_bytes),
            self.other_path.as_ref().map_or(0, |p| p.len()),
            self.fault.as_ref().map_or(0, |f| f.len()),
        ];
        let cap = fair_cap(&lens, heap);
        if let Some(cut) = self.journey_id.as_ref().and_then(|id| match id {
            ShortStr::Heap(s) => cut_marked(s, cap),
            ShortStr::Inline { .. } => None,
        }) {
            self.journey_id = Some(ShortStr::new(&cut));
        }
        if let Some(cut) = self.other_path.as_ref().and_then(|p| cut_marked(p, cap)) {
            self.other_path = Some(cut.into());
        }
        if let Some(cut) = self.fault.as_ref().and_then(|f| cut_marked(f, cap)) {
            self.fault = Some(cut.into());
        }
        self.truncated = true;
    }

    pub fn path(&self) -> String {
        match (self.route, &self.journey_id, &self.other_path) {
            (RouteKind::CreateJourneyUrl, ..) => format!("{API_PREFIX}create-journey-url"),
            (RouteKind::GetJourney, Some(id), _) => {
                format!("{API_PREFIX}get-journey/{}", id.as_str())
            }
            (_, _, Some(path)) => path.to_string(),
            _ => String::new(),
        }
    }

    fn view(&self, id: u64, names: &[Arc<str>]) -> RecordedRequest {
        RecordedRequest {
            id,
            time: iso_from_millis(self.time_ms),
            time_ms: self.time_ms,
            method: self.method.as_str().to_string(),
            path: self.path(),
            route: self.route.as_str(),
            journey_id: self.journey_id.as_ref().map(|id| id.as_str().to_string()),
            scenario: scenario_name(self.scenario, names).map(str::to_string),
            selection: self.selection,
            status: self.status,
            latency_ms: self.latency_us as f64 / 1000.0,
            fault: self.fault.as_deref().map(str::to_string),
            fault_source: self.fault_source,
            truncated: self.truncated,
        }
    }
}

/// One request to the provider surface, as the journal recorded it (and as
/// `GET /__admin/requests` lists it, in these JSON names).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordedRequest {
    /// 1 for the first request recorded, then one more for each; never reused.
    pub id: u64,
    /// When the request arrived, ISO-8601 UTC.
    pub time: String,
    /// [`RecordedRequest::time`] in epoch milliseconds.
    pub time_ms: i64,
    /// The request method (`POST`, `GET`...).
    pub method: String,
    /// The request path (without the query).
    pub path: String,
    /// `create-journey-url`, `get-journey`, or `other` (a path the provider does not serve).
    pub route: &'static str,
    /// The journey id of a get-journey path, or the one a create call made.
    pub journey_id: Option<String>,
    /// The scenario chosen for the request.
    pub scenario: Option<String>,
    /// Why that scenario: `binding`, `prefix`, `header`, `default` (get-journey);
    /// `header`, `external_reference_id`, `default` (create-journey-url).
    pub selection: Option<&'static str>,
    /// The status answered; `None` when none went out (a reset, empty or hang fault).
    pub status: Option<u16>,
    /// From arrival to the moment the answer was handed over (or the fault began).
    pub latency_ms: f64,
    /// The fault the request got, as written (`delay:2s; status:504`).
    pub fault: Option<String>,
    /// Where the fault came from: `header`, `journey_rule`, `rule` or `scenario`.
    pub fault_source: Option<&'static str>,
    /// Whether the journey id, path or fault was kept cut (ending in `…`) to stay within the
    /// entry's share of `--journal-bytes`.
    pub truncated: bool,
}

fn scenario_name(key: Option<u32>, names: &[Arc<str>]) -> Option<&str> {
    names.get(key? as usize).map(|n| &**n)
}

/// The default of `--journal-bytes`: 8 MiB, 838 bytes an entry at 10,000 entries.
pub const DEFAULT_BYTES: u64 = 8 << 20;

/// The heap an entry is given at least: a journey id of the longest length accepted
/// (`--max-journey-id`, 256 bytes) is kept whole. A budget too small to give every entry
/// this much keeps fewer entries.
const MIN_HEAP_PER_ENTRY: usize = 256;

/// A page of the journal: the entries, and the id to read the next page after, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub requests: Vec<RecordedRequest>,
    pub next: Option<u64>,
}

/// The bounded journal.
pub struct Journal {
    ring: Ring<Entry>,
    /// What one entry may hold on the heap.
    heap_per_entry: usize,
}

impl Journal {
    /// A journal of at most `entries` entries within `bytes` bytes (fewer entries when the
    /// budget cannot give each 256 bytes besides its slot).
    pub fn new(entries: usize, bytes: u64) -> Self {
        let budget = Budget::new::<Entry>(entries, bytes, MIN_HEAP_PER_ENTRY);
        if budget.capacity < entries {
            tracing::warn!(
                entries,
                bytes,
                kept = budget.capacity,
                "--journal-bytes cannot hold --journal-entries entries: the journal keeps fewer"
            );
        }
        Journal {
            ring: Ring::new(budget.capacity),
            heap_per_entry: budget.heap_per_entry,
        }
    }

    /// How many entries it keeps at most.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// The bytes it holds now: its allocated slots and what their entries hold on the heap.
    /// Never more than the byte budget it was made with.
    pub fn bytes(&self) -> usize {
        self.ring.bytes(Entry::heap_bytes)
    }

    pub fn is_enabled(&self) -> bool {
        self.ring.capacity() > 0
    }

    /// Record one request; its id is assigned here, from 1 up. Its strings are cut to the
    /// entry's share of the byte budget first, if they need to be.
    pub fn push(&self, mut entry: Entry) {
        entry.fit(self.heap_per_entry);
        self.ring.push(entry);
    }

    /// The oldest `limit` entries `filter` accepts with ids above `after`, and the id to read
    /// the next page after (`None`: this is the last page).
    pub fn page(&self, filter: &Filter, after: u64, limit: usize, names: &[Arc<str>]) -> Page {
        let (entries, more) = self.ring.page(after, limit, |e| filter.accepts(e, names));
        let next = entries.last().filter(|_| more).map(|(id, _)| *id);
        Page {
            requests: entries.iter().map(|(id, e)| e.view(*id, names)).collect(),
            next,
        }
    }

    /// The entries `filter` accepts, oldest first; `names` are the scenario names by key.
    pub fn query(&self, filter: &Filter, names: &[Arc<str>]) -> Vec<RecordedRequest> {
        self.ring
            .snapshot_with_seq(|e| filter.accepts(e, names))
            .iter()
            .map(|(id, e)| e.view(*id, names))
            .collect()
    }

    pub fn count(&self, filter: &Filter, names: &[Arc<str>]) -> usize {
        self.ring.count(|e| filter.accepts(e, names))
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Forget every entry; how many there were. Ids go on from where they were.
    pub fn clear(&self) -> usize {
        self.ring.clear()
    }
}

/// The journal of every replica (`--store redis://…`): a Redis stream capped at
/// `--journal-entries` (approximately: Redis trims whole nodes), written before each answer
/// goes out as the memory journal is, so a count asked of any replica after a client's
/// request has returned includes it.
///
/// A stream rather than per-replica rings merged on read: a replica cannot reach the others'
/// memory (nor know they exist), a stream keeps one order across replicas, and one capped
/// key is all a reset deletes. A read takes the stream into a [`Journal`] of its own, whose
/// filters and pages answer as the memory one does; its ids are positions in what the
/// stream holds at that moment.
pub struct SharedJournal {
    redis: Arc<crate::shared::Redis>,
    capacity: usize,
}

/// The stream's key.
const STREAM: &str = "otk:journal";

/// An entry as the stream keeps it: the scenario by name (keys are per process).
#[derive(serde::Serialize, serde::Deserialize)]
struct Streamed {
    t: i64,
    m: String,
    r: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    j: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sel: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    st: Option<u16>,
    l: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fs: Option<String>,
    #[serde(default)]
    tr: bool,
}

const SELECTIONS: &[&str] = &[
    "binding",
    "prefix",
    "header",
    "default",
    "external_reference_id",
];
const FAULT_SOURCES: &[&str] = &["header", "journey_rule", "rule", "scenario"];

fn known(text: Option<String>, words: &[&'static str]) -> Option<&'static str> {
    let text = text?;
    words.iter().find(|w| **w == text).copied()
}

impl SharedJournal {
    pub fn new(redis: Arc<crate::shared::Redis>, capacity: usize) -> SharedJournal {
        SharedJournal { redis, capacity }
    }

    /// Add one entry; `names` are the scenario names by key. A Redis out of reach loses the
    /// entry from the shared journal (this replica's own keeps it): a request never waits
    /// for it.
    pub fn push(&self, entry: &Entry, names: &[Arc<str>]) {
        if self.capacity == 0 {
            return;
        }
        let streamed = Streamed {
            t: entry.time_ms,
            m: entry.method.as_str().to_string(),
            r: entry.route.as_str().to_string(),
            p: entry.other_path.as_deref().map(str::to_string),
            j: entry.journey_id.as_ref().map(|j| j.as_str().to_string()),
            s: scenario_name(entry.scenario, names).map(str::to_string),
            sel: entry.selection.map(str::to_string),
            st: entry.status,
            l: entry.latency_us,
            f: entry.fault.as_deref().map(str::to_string),
            fs: entry.fault_source.map(str::to_string),
            tr: entry.truncated,
        };
        let text = serde_json::to_string(&streamed).unwrap_or_default();
        let written = self.redis.call(|c| {
            redis::cmd("XADD")
                .arg(STREAM)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.capacity)
                .arg("*")
                .arg("e")
                .arg(&text)
                .query::<String>(c)
        });
        if let Err(e) = written {
            tracing::debug!(error = %e, "a request is missing from the shared journal");
        }
    }

    /// Every replica's entries, as a journal of their own to query (at most `capacity`
    /// newest, `bytes` as `--journal-bytes`).
    pub fn read(
        &self,
        bytes: u64,
        names: &[Arc<str>],
    ) -> Result<Journal, crate::shared::Unavailable> {
        type Item = (String, Vec<(String, String)>);
        let items: Vec<Item> = self.redis.call(|c| {
            redis::cmd("XREVRANGE")
                .arg(STREAM)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(self.capacity.max(1))
                .query(c)
        })?;
        let journal = Journal::new(self.capacity.max(1), bytes);
        for (_, fields) in items.into_iter().rev() {
            let Some((_, text)) = fields.into_iter().find(|(k, _)| k == "e") else {
                continue;
            };
            let Ok(s) = serde_json::from_str::<Streamed>(&text) else {
                continue;
            };
            let route = match s.r.as_str() {
                "other" => RouteKind::Other,
                r => RouteKind::parse_provider(r).unwrap_or(RouteKind::Other),
            };
            let scenario =
                s.s.and_then(|name| names.iter().position(|n| **n == *name))
                    .and_then(|i| u32::try_from(i).ok());
            journal.push(Entry {
                time_ms: s.t,
                method: Method::from_bytes(s.m.as_bytes()).unwrap_or(Method::GET),
                route,
                other_path: s.p.map(String::into_boxed_str),
                journey_id: s.j.as_deref().map(ShortStr::new),
                scenario,
                selection: known(s.sel, SELECTIONS),
                status: s.st,
                latency_us: s.l,
                fault: s.f.map(Arc::from),
                fault_source: known(s.fs, FAULT_SOURCES),
                truncated: s.tr,
            });
        }
        Ok(journal)
    }

    /// Forget every replica's entries.
    pub fn clear(&self) {
        if let Err(e) = self
            .redis
            .call(|c| redis::cmd("DEL").arg(STREAM).query::<i64>(c))
        {
            tracing::error!(error = %e, "the shared journal was not cleared");
        }
    }
}

/// Which recorded requests a query wants: every condition given must match, and the default
/// ([`Filter::all`]) matches every request.
///
/// ```
/// use otk_mock::Filter;
///
/// // get-journey of one id that was answered 200, since a moment in epoch milliseconds.
/// let filter = Filter::journey("vpn_flagged-1").with_status(200).since_ms(1_767_225_600_000);
/// // Every create-journey-url call that failed with a 5xx.
/// let failed = Filter::path("/api/v3/otk-service/create-journey-url").with_status_class(5);
/// # let _ = (filter, failed);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    journey_id: Option<String>,
    path: Option<PathFilter>,
    status: Option<StatusFilter>,
    /// Epoch milliseconds, inclusive.
    since: Option<i64>,
    scenario: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathFilter {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusFilter {
    Code(u16),
    /// `5xx`: the hundreds digit.
    Class(u16),
    /// No status went out.
    None,
}

const FILTER_FIELDS: [&str; 5] = ["journeyId", "path", "status", "since", "scenario"];

impl Filter {
    /// Every request.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Requests for this journey id (get-journey of it, or the create call that made it).
    pub fn journey(id: impl Into<String>) -> Filter {
        Filter::all().with_journey(id)
    }

    /// Requests to this path; a path ending in `*` is a prefix (`/api/v3/otk-service/*`).
    pub fn path(path: impl Into<String>) -> Filter {
        Filter::all().with_path(path)
    }

    /// Requests for which this scenario was chosen.
    pub fn scenario(name: impl Into<String>) -> Filter {
        Filter::all().with_scenario(name)
    }

    /// Only requests for this journey id, too.
    pub fn with_journey(mut self, id: impl Into<String>) -> Filter {
        self.journey_id = Some(id.into());
        self
    }

    /// Only requests to this path (or prefix, ending in `*`), too.
    pub fn with_path(mut self, path: impl Into<String>) -> Filter {
        let path = path.into();
        self.path = Some(match path.strip_suffix('*') {
            Some(prefix) => PathFilter::Prefix(prefix.to_string()),
            None => PathFilter::Exact(path),
        });
        self
    }

    /// Only requests for which this scenario was chosen, too.
    pub fn with_scenario(mut self, name: impl Into<String>) -> Filter {
        self.scenario = Some(name.into());
        self
    }

    /// Only requests answered with this status, too.
    pub fn with_status(mut self, code: u16) -> Filter {
        self.status = Some(StatusFilter::Code(code));
        self
    }

    /// Only requests answered with a status of this class (`5` for 5xx), too.
    pub fn with_status_class(mut self, class: u16) -> Filter {
        self.status = Some(StatusFilter::Class(class));
        self
    }

    /// Only requests that got no status at all (a reset, empty or hang fault), too.
    pub fn with_no_status(mut self) -> Filter {
        self.status = Some(StatusFilter::None);
        self
    }

    /// Only requests that arrived at or after this time (epoch milliseconds), too.
    pub fn since_ms(mut self, epoch_ms: i64) -> Filter {
        self.since = Some(epoch_ms);
        self
    }

    fn accepts(&self, e: &Entry, names: &[Arc<str>]) -> bool {
        if let Some(id) = &self.journey_id {
            if e.journey_id.as_ref().map(ShortStr::as_str) != Some(id.as_str()) {
                return false;
            }
        }
        if let Some(since) = self.since {
            if e.time_ms < since {
                return false;
            }
        }
        if let Some(scenario) = &self.scenario {
            if scenario_name(e.scenario, names) != Some(scenario.as_str()) {
                return false;
            }
        }
        match (self.status, e.status) {
            (None, _) => {}
            (Some(StatusFilter::Code(c)), Some(s)) if c == s => {}
            (Some(StatusFilter::Class(c)), Some(s)) if s / 100 == c => {}
            (Some(StatusFilter::None), None) => {}
            _ => return false,
        }
        match &self.path {
            None => true,
            Some(PathFilter::Exact(p)) => e.path() == *p,
            Some(PathFilter::Prefix(p)) => e.path().starts_with(p.as_str()),
        }
    }

    /// From query parameters (`journeyId=…&status=5xx`). Unknown or repeated parameters
    /// and bad values are errors naming the parameter.
    pub fn from_query(query: &str) -> Result<Filter, String> {
        Filter::from_pairs(
            form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())),
        )
    }

    /// From query parameters already decoded, as [`Filter::from_query`] reads them.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Filter, String> {
        let mut filter = Filter::default();
        let mut seen: Vec<String> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key) {
                return Err(format!("{key} is given more than once"));
            }
            filter.set(&key, &Value::String(value), true)?;
            seen.push(key);
        }
        Ok(filter)
    }

    /// From a JSON object (`{"journeyId": "…", "status": 200}`); an empty body is no filter.
    pub fn from_json(body: &[u8]) -> Result<Filter, String> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Filter::default());
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            format!("Request body is not valid JSON: {e}; send e.g. {{\"journeyId\": \"vpn_flagged-1\"}}")
        })?;
        let Value::Object(map) = value else {
            return Err("value must be of type object".to_string());
        };
        let mut filter = Filter::default();
        for (key, value) in &map {
            filter.set(key, value, false)?;
        }
        Ok(filter)
    }

    fn set(&mut self, key: &str, value: &Value, from_query: bool) -> Result<(), String> {
        let text = |v: &Value| -> Result<String, String> {
            match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Value::String(_) => Err(format!("{key} is not allowed to be empty")),
                _ => Err(format!("{key} must be a string")),
            }
        };
        match key {
            "journeyId" => self.journey_id = Some(text(value)?),
            "scenario" => self.scenario = Some(text(value)?),
            "path" => {
                let p = text(value)?;
                self.path = Some(match p.strip_suffix('*') {
                    Some(prefix) => PathFilter::Prefix(prefix.to_string()),
                    None => PathFilter::Exact(p),
                });
            }
            "status" => {
                self.status = Some(match value {
                    Value::Number(n) if !from_query => {
                        StatusFilter::Code(n.as_u64().and_then(|n| u16::try_from(n).ok()).filter(|n| (100..600).contains(n)).ok_or_else(|| "status must be an HTTP status code (100 to 599), a class such as 5xx, or none".to_string())?)
                    }
                    Value::String(s) => parse_status(s)?,
                    _ => return Err("status must be an HTTP status code (100 to 599), a class such as 5xx, or none".to_string()),
                })
            }
            "since" => {
                self.since = Some(match value {
                    Value::Number(n) if !from_query => n.as_i64().ok_or_else(|| {
                        "since must be epoch milliseconds (an integer) or an ISO-8601 time"
                            .to_string()
                    })?,
                    // In a query string a `+` arrives as a space: `+05:30` as ` 05:30`.
                    Value::String(s) if from_query && s.trim().contains(' ') => parse_since(s)
                        .map_err(|e| {
                            format!("{e} (in a query string, write the + of an offset as %2B)")
                        })?,
                    Value::String(s) => parse_since(s)?,
                    _ => {
                        return Err(
                            "since must be epoch milliseconds or an ISO-8601 time".to_string()
                        )
                    }
                })
            }
            other => {
                return Err(format!(
                    "{other} is not allowed (filters: {})",
                    FILTER_FIELDS.join(", ")
                ))
            }
        }
        Ok(())
    }
}

fn parse_status(text: &str) -> Result<StatusFilter, String> {
    let t = text.trim().to_ascii_lowercase();
    let bad = || {
        format!("status {text:?} must be an HTTP status code (100 to 599), a class such as 5xx, or none")
    };
    if t == "none" {
        return Ok(StatusFilter::None);
    }
    if let Some(digit) = t.strip_suffix("xx") {
        return match digit.parse::<u16>() {
            Ok(d) if (1..=5).contains(&d) => Ok(StatusFilter::Class(d)),
            _ => Err(bad()),
        };
    }
    match t.parse::<u16>() {
        Ok(code) if (100..600).contains(&code) => Ok(StatusFilter::Code(code)),
        _ => Err(bad()),
    }
}

/// `since`: epoch milliseconds, or ISO-8601 (`2026-01-01T10:00:00Z`, fractional seconds and
/// an offset such as `+05:30` allowed; no offset means UTC; a date alone means its midnight UTC).
pub fn parse_since(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if let Ok(ms) = t.parse::<i64>() {
        return Ok(ms);
    }
    parse_iso(t).map_err(|why| {
        format!("since {text:?} is neither epoch milliseconds nor an ISO-8601 time such as 2026-01-01T10:00:00Z: {why}")
    })
}

/// jiff's reader of the ISO-8601 forms (RFC 3339 and the Temporal grammar), with its defaults.
static ISO_8601: DateTimeParser = DateTimeParser::new();

/// Epoch milliseconds of an ISO-8601 date, or date and time; the error says why not.
fn parse_iso(t: &str) -> Result<i64, String> {
    // Pieces rather than a `Timestamp`: a `since` may leave out the offset (UTC) or the time
    // (midnight), which a timestamp may not.
    let pieces = ISO_8601.parse_pieces(t).map_err(|e| e.to_string())?;
    if pieces.time_zone_annotation().is_some() {
        // Naming a zone would need a time zone database for one filter.
        return Err("a time zone name is not read here; write an offset such as +05:30".into());
    }
    if pieces.time().is_some() && !gives_seconds(t) {
        return Err("give the seconds too, as in 2026-01-01T10:00:00Z".into());
    }
    let time = pieces.time().unwrap_or(Time::midnight());
    let offset = pieces.to_numeric_offset().unwrap_or(Offset::UTC);
    let instant = offset
        .to_timestamp(pieces.date().to_datetime(time))
        .map_err(|e| e.to_string())?;
    Ok(instant.as_millisecond())
}

/// Whether the time of day of `t`, text jiff has read, gives its seconds. jiff also reads
/// ISO-8601's reduced precision (`T10:00`, `T10`); `since` asks for the seconds, as it always
/// has: a filter's accepted forms can be loosened later, not tightened without breaking
/// someone. Digits are counted, so the basic form (`T100000`) passes too.
fn gives_seconds(t: &str) -> bool {
    // In text jiff has read, the first of these is the separator between date and time.
    let Some(at) = t.find(['T', 't', ' ']) else {
        return true;
    };
    let time = t.get(at + 1..).unwrap_or("");
    let end = time
        .find(|c: char| !(c.is_ascii_digit() || c == ':'))
        .unwrap_or(time.len());
    time.get(..end)
        .unwrap_or("")
        .bytes()
        .filter(u8::is_ascii_digit)
        .count()
        >= 6
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::CHUNK;

    fn names() -> Vec<Arc<str>> {
        vec![Arc::from("success")]
    }

    fn entry(id: &str, status: Option<u16>, time_ms: i64) -> Entry {
        Entry {
            time_ms,
            method: Method::POST,
            route: RouteKind::GetJourney,
            other_path: None,
            journey_id: Some(ShortStr::new(id)),
            scenario: Some(0),
            selection: Some("default"),
            status,
            latency_us: 1500,
            fault: None,
            fault_source: None,
            truncated: false,
        }
    }

    #[test]
    fn keeps_the_newest_entries_and_filters_them() {
        let journal = Journal::new(3, DEFAULT_BYTES);
        journal.push(entry("a", Some(200), 1));
        journal.push(entry("b", Some(503), 2));
        journal.push(entry("a", None, 3));
        journal.push(entry("a", Some(200), 4));
        assert_eq!(journal.len(), 3);
        let count = |q: &str| journal.count(&Filter::from_query(q).unwrap(), &names());
        assert_eq!(count(""), 3);
        assert_eq!(count("journeyId=a"), 2);
        assert_eq!(count("status=5xx"), 1);
        assert_eq!(count("status=none"), 1);
        assert_eq!(count("status=200&since=4"), 1);
        assert_eq!(count("path=/api/v3/otk-service/get-journey/b"), 1);
        assert_eq!(count("path=/api/v3/otk-service/get-journey/*"), 3);
        let all = journal.query(&Filter::default(), &names());
        assert_eq!(all[0].journey_id.as_deref(), Some("b"));
        assert_eq!(all[0].latency_ms, 1.5);
        let ids: Vec<u64> = all.iter().map(|e| e.id).collect();
        assert_eq!(ids, [2, 3, 4]);
        // The admin API's JSON names.
        let json = serde_json::to_value(&all[0]).unwrap();
        assert_eq!(json["journeyId"], "b");
        assert_eq!(json["latencyMs"], 1.5);
        assert_eq!(json["faultSource"], Value::Null);
        // The builder asks what the query parameters ask.
        let built = Filter::journey("a").with_status(200).since_ms(4);
        assert_eq!(
            built,
            Filter::from_query("journeyId=a&status=200&since=4").unwrap()
        );
        assert_eq!(
            Filter::path("/api/v3/otk-service/get-journey/*").with_status_class(5),
            Filter::from_query("path=/api/v3/otk-service/get-journey/*&status=5xx").unwrap()
        );
        assert_eq!(journal.count(&Filter::all().with_no_status(), &names()), 1);
        assert_eq!(journal.clear(), 3);
        assert!(journal.is_empty());
        // Ids go on after a clear, so an id a test kept never names another request.
        journal.push(entry("c", Some(200), 5));
        assert_eq!(journal.query(&Filter::default(), &names())[0].id, 5);
    }

    #[test]
    fn a_large_journal_wraps_across_chunks() {
        let journal = Journal::new(CHUNK + 10, DEFAULT_BYTES);
        for i in 0..(3 * CHUNK as i64) {
            journal.push(entry("x", Some(200), i));
        }
        assert_eq!(journal.len(), CHUNK + 10);
        let all = journal.query(&Filter::default(), &names());
        assert_eq!(all.len(), CHUNK + 10);
        let first = 3 * CHUNK as i64 - (CHUNK as i64 + 10);
        assert_eq!(all[0].time_ms, first);
        assert_eq!(all.last().unwrap().time_ms, 3 * CHUNK as i64 - 1);
    }

    #[test]
    fn hostile_entries_stay_within_the_byte_budget() {
        let budget = 64 * 1024;
        let journal = Journal::new(10_000, budget);
        // Fewer entries than asked: the budget cannot give each its minimum.
        assert!(journal.capacity() < 10_000);
        let long = "x".repeat(60_000);
        for i in 0..3 * journal.capacity() {
            let mut e = entry(&format!("{long}{i}"), Some(200), 1);
            e.route = RouteKind::Other;
            e.other_path = Some(format!("/{long}").into());
            e.fault = Some(long.as_str().into());
            journal.push(e);
            assert!(journal.bytes() <= budget as usize, "{}", journal.bytes());
        }
        let all = journal.query(&Filter::default(), &names());
        assert_eq!(all.len(), journal.capacity());
        assert!(all.iter().all(|r| r.truncated));
        assert!(all[0].journey_id.as_ref().unwrap().ends_with('…'));
        // A journey id of the longest length accepted is kept whole.
        let journal = Journal::new(10_000, DEFAULT_BYTES);
        journal.push(entry(&"y".repeat(256), Some(200), 1));
        let kept = journal.query(&Filter::journey("y".repeat(256)), &names());
        assert_eq!(kept.len(), 1);
        assert!(!kept[0].truncated);
    }

    #[test]
    fn paging_walks_the_journal_without_gaps_or_repeats() {
        let journal = Journal::new(CHUNK + 10, DEFAULT_BYTES);
        for i in 0..(2 * CHUNK as i64) {
            journal.push(entry(if i % 2 == 0 { "a" } else { "b" }, Some(200), i));
        }
        let filter = Filter::journey("a");
        let mut seen = Vec::new();
        let mut after = 0;
        loop {
            let page = journal.page(&filter, after, 100, &names());
            seen.extend(page.requests.iter().map(|r| r.id));
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        let all: Vec<u64> = journal
            .query(&filter, &names())
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(seen, all);
    }

    #[test]
    fn bad_filters_name_the_field() {
        for (q, needle) in [
            ("colour=red", "colour is not allowed"),
            ("status=abc", "status"),
            ("status=6xx", "status"),
            ("since=yesterday", "since"),
            ("journeyId=", "empty"),
            ("journeyId=a&journeyId=b", "more than once"),
        ] {
            let e = Filter::from_query(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
        assert!(Filter::from_json(br#"{"status": "5xx", "since": 0}"#).is_ok());
        assert!(Filter::from_json(br#"{"status": true}"#).is_err());
        assert!(Filter::from_json(b"[]").is_err());
        assert_eq!(Filter::from_json(b"").unwrap(), Filter::default());
    }

    #[test]
    fn since_reads_epoch_ms_and_iso_8601() {
        assert_eq!(parse_since("1767225600000"), Ok(1_767_225_600_000));
        assert_eq!(parse_since("2026-01-01T00:00:00Z"), Ok(1_767_225_600_000));
        assert_eq!(parse_since("2026-01-01"), Ok(1_767_225_600_000));
        assert_eq!(
            parse_since("2026-01-01T00:00:00.250Z"),
            Ok(1_767_225_600_250)
        );
        assert_eq!(parse_since("2026-01-01T00:00:00.5"), Ok(1_767_225_600_500));
        assert_eq!(
            parse_since("2026-01-01T05:30:00+05:30"),
            Ok(1_767_225_600_000)
        );
        assert_eq!(
            parse_since("2025-12-31T19:00:00-0500"),
            Ok(1_767_225_600_000)
        );
        for bad in [
            "2026-13-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00",
            "soon",
            "2026-01-01T00:00:00+5",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn since_reads_every_form_of_offset() {
        const MIDNIGHT: i64 = 1_767_225_600_000;
        for text in [
            "2026-01-01T05:30:00+05:30",
            "2026-01-01T05:30:00+0530",
            "2026-01-01T05:00:00+05",
            "2025-12-31T18:30:00-05:30",
            "2025-12-31T19:00:00.000-05:00",
            "2026-01-01T00:00:00+00:00",
            "2026-01-01T00:00:00-00:00",
            "2026-01-01t00:00:00z",
            "2026-01-01 00:00:00Z",
            "2026-01-01T00:00:00",
        ] {
            assert_eq!(parse_since(text), Ok(MIDNIGHT), "{text}");
        }
        assert_eq!(
            parse_since("2026-01-01T05:30:00.123456+05:30"),
            Ok(MIDNIGHT + 123)
        );
    }

    #[test]
    fn since_refuses_a_date_the_calendar_lacks() {
        assert_eq!(parse_since("2028-02-29"), Ok(1_835_395_200_000));
        for bad in [
            "2026-02-30",
            "2026-02-29",
            "2026-04-31T00:00:00Z",
            "2026-02-30T10:00:00+05:30",
        ] {
            let e = parse_since(bad).unwrap_err();
            assert!(e.starts_with(&format!("since {bad:?}")), "{e}");
            assert!(e.contains("2026-01-01T10:00:00Z"), "{e}");
        }
    }

    #[test]
    fn since_errors_say_what_to_write() {
        for (bad, needle) in [
            ("2026-01-01T10:00", "give the seconds"),
            ("2026-01-01T10:00:00[Asia/Kolkata]", "offset such as +05:30"),
            ("yesterday", "2026-01-01T10:00:00Z"),
        ] {
            let e = parse_since(bad).unwrap_err();
            assert!(e.starts_with("since "), "{e}");
            assert!(e.contains(needle), "{bad}: {e}");
        }
        // `+` in a query string is a space once decoded.
        let e = Filter::from_query("since=2026-01-01T05:30:00+05:30").unwrap_err();
        assert!(e.contains("%2B"), "{e}");
        assert_eq!(
            Filter::from_query("since=2026-01-01T05:30:00%2B05:30").map(|f| f.since),
            Ok(Some(1_767_225_600_000))
        );
    }

    /// The ring keeps the id beside the entry, so the entry does not carry it: a slot is
    /// still the 160 bytes (168 with its lock) it was when the id was a field.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_recorded_entry_stays_within_its_size() {
        assert!(std::mem::size_of::<(u64, Entry)>() <= 160);
    }

    #[test]
    fn short_strings_round_trip() {
        for s in ["", "Q7K2M9X4ZA", &"x".repeat(30), &"y".repeat(31), "é-ü"] {
            assert_eq!(ShortStr::new(s).as_str(), s);
        }
    }
}
