//! Metrics for `GET /__admin/metrics`, in the Prometheus text format (version 0.0.4),
//! written by hand: a few counters, one histogram and some gauges need no metrics crate.
//!
//! The request path only does relaxed atomic additions, and on counters of its own thread's
//! shard (a cache line no other worker thread writes), so counting does not bounce lines
//! between cores. Each scenario name gets a small number, its key, when a catalogue is
//! loaded (the same name keeps its key and counters across reloads); a request finds its
//! counters by that key in a table, without a lock or a reference count. The text is built,
//! and the shards summed, at scrape time.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::fault::Fault;
use crate::wire::RouteKind;

/// Status codes counted under their own label; anything else is `other`, no status `none`.
const STATUSES: [u16; 13] = [
    200, 201, 400, 401, 404, 405, 409, 413, 429, 500, 502, 503, 504,
];
const OTHER: usize = STATUSES.len();
const NONE: usize = STATUSES.len() + 1;
const SLOTS: usize = STATUSES.len() + 2;
const ROUTES: usize = RouteKind::ALL.len();
/// Counters are split this many ways; a thread always adds to the same shard.
const SHARDS: usize = 8;
/// Distinct scenario names one process counts apart; past it (thousands of reloads with
/// new names), requests are counted without a scenario label.
const MAX_SCENARIOS: usize = 4096;

/// One cache line (two, on CPUs that fetch pairs) per shard.
#[repr(align(128))]
struct Shard<T>(T);

/// The shard of the current thread: given out round-robin the first time it counts.
fn shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|cell| {
        let mut s = cell.get();
        if s == usize::MAX {
            s = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
            cell.set(s);
        }
        s
    })
}

/// Upper bounds of the latency buckets, in microseconds (0.5 ms to 30 s).
const BUCKETS_US: [u64; 15] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

const FAULT_KINDS: [&str; 7] = [
    "delay",
    "status",
    "reset",
    "empty",
    "malformed",
    "truncated",
    "hang",
];

fn slot(status: Option<u16>) -> usize {
    match status {
        None => NONE,
        Some(code) => STATUSES.iter().position(|s| *s == code).unwrap_or(OTHER),
    }
}

fn slot_label(slot: usize) -> String {
    match STATUSES.get(slot) {
        Some(code) => code.to_string(),
        None if slot == OTHER => "other".to_string(),
        None => "none".to_string(),
    }
}

/// Requests of one scenario (or of none) by route and status.
pub struct RequestCounters {
    shards: [Shard<[[AtomicU64; SLOTS]; ROUTES]>; SHARDS],
}

impl RequestCounters {
    fn new() -> Self {
        RequestCounters {
            shards: std::array::from_fn(|_| {
                Shard(std::array::from_fn(|_| {
                    std::array::from_fn(|_| AtomicU64::new(0))
                }))
            }),
        }
    }

    fn hit(&self, route: RouteKind, status: Option<u16>) {
        self.shards[shard()].0[route.index()][slot(status)].fetch_add(1, Ordering::Relaxed);
    }

    fn total(&self, route: RouteKind, slot: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0[route.index()][slot].load(Ordering::Relaxed))
            .sum()
    }
}

/// Per-bucket counts (not cumulative) with one more bucket past the last bound; the count
/// is their sum, computed at scrape time, so an observation is two atomic additions.
struct HistogramShard {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

struct Histogram {
    shards: [Shard<HistogramShard>; SHARDS],
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            shards: std::array::from_fn(|_| {
                Shard(HistogramShard {
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                    sum_us: AtomicU64::new(0),
                })
            }),
        }
    }

    fn observe(&self, us: u64) {
        let i = BUCKETS_US
            .iter()
            .position(|le| us <= *le)
            .unwrap_or(BUCKETS_US.len());
        let shard = &self.shards[shard()].0;
        shard.buckets[i].fetch_add(1, Ordering::Relaxed);
        shard.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn bucket(&self, i: usize) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.buckets[i].load(Ordering::Relaxed))
            .sum()
    }

    fn sum_us(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0.sum_us.load(Ordering::Relaxed))
            .sum()
    }
}

/// Scenario names and their keys.
#[derive(Default)]
struct Registry {
    keys: HashMap<String, u32>,
    names: Vec<Arc<str>>,
}

/// Values read from elsewhere at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub callbacks_delivered: u64,
    pub callbacks_failed: u64,
    pub callbacks_dropped: u64,
    pub callbacks_undelivered: u64,
    pub callbacks_fault_dropped: u64,
    pub callbacks_duplicated: u64,
    pub callback_queue_depth: usize,
    pub callback_queue_capacity: usize,
    pub scenarios: usize,
    pub journeys: usize,
    pub journal_entries: usize,
}

/// Every counter of one server.
pub struct Metrics {
    registry: Mutex<Registry>,
    /// Counters by scenario key.
    by_scenario: Box<[OnceLock<Box<RequestCounters>>]>,
    no_scenario: Box<RequestCounters>,
    latency: [Histogram; ROUTES],
    faults: [AtomicU64; FAULT_KINDS.len()],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            registry: Mutex::new(Registry::default()),
            by_scenario: (0..MAX_SCENARIOS).map(|_| OnceLock::new()).collect(),
            no_scenario: Box::new(RequestCounters::new()),
            latency: std::array::from_fn(|_| Histogram::new()),
            faults: std::array::from_fn(|_| AtomicU64::new(0)),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key of the scenario called `name`, the same across reloads (`None` once
    /// [`MAX_SCENARIOS`] names are known). Called when a catalogue is loaded, not per request.
    pub fn scenario_key(&self, name: &str) -> Option<u32> {
        let mut registry = self.registry();
        if let Some(key) = registry.keys.get(name) {
            return Some(*key);
        }
        let key = registry.names.len();
        let slot = self.by_scenario.get(key)?;
        slot.get_or_init(|| Box::new(RequestCounters::new()));
        let key = u32::try_from(key).ok()?;
        registry.keys.insert(name.to_string(), key);
        registry.names.push(Arc::from(name));
        Some(key)
    }

    /// Every scenario name known, indexed by key.
    pub fn scenario_names(&self) -> Vec<Arc<str>> {
        self.registry().names.clone()
    }

    /// One answered (or faulted) provider request.
    pub fn request(
        &self,
        route: RouteKind,
        scenario: Option<u32>,
        status: Option<u16>,
        latency_us: u64,
    ) {
        let counters = scenario
            .and_then(|key| self.by_scenario.get(key as usize)?.get())
            .unwrap_or(&self.no_scenario);
        counters.hit(route, status);
        self.latency[route.index()].observe(latency_us);
    }

    /// One injected fault: its delay and its outcome are counted apart.
    pub fn fault(&self, fault: &Fault) {
        if fault.delay.is_some() {
            self.faults[0].fetch_add(1, Ordering::Relaxed);
        }
        if let Some(outcome) = fault.outcome {
            if let Some(i) = FAULT_KINDS.iter().position(|k| *k == outcome.kind()) {
                self.faults[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub fn reload(&self, ok: bool) {
        let counter = if ok {
            &self.reloads_ok
        } else {
            &self.reloads_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(8 * 1024);
        header(
            &mut out,
            "otk_mock_requests_total",
            "counter",
            "Requests to the provider surface by route, scenario and status (none: no status went out).",
        );
        let mut names: Vec<(Arc<str>, usize)> = self
            .scenario_names()
            .into_iter()
            .enumerate()
            .map(|(key, name)| (name, key))
            .collect();
        names.sort();
        let all = names
            .iter()
            .filter_map(|(name, key)| Some((&**name, &**self.by_scenario.get(*key)?.get()?)))
            .chain(std::iter::once(("", &*self.no_scenario)));
        for (name, counters) in all {
            for route in RouteKind::ALL {
                for slot in 0..SLOTS {
                    let n = counters.total(route, slot);
                    if n > 0 {
                        let _ = writeln!(
                            out,
                            "otk_mock_requests_total{{route=\"{}\",scenario=\"{}\",status=\"{}\"}} {n}",
                            route.as_str(),
                            escape(name),
                            slot_label(slot)
                        );
                    }
                }
            }
        }
        header(
            &mut out,
            "otk_mock_request_duration_seconds",
            "histogram",
            "Time from a provider request's arrival to its answer (injected delays included).",
        );
        for route in RouteKind::ALL {
            let h = &self.latency[route.index()];
            let label = route.as_str();
            let mut cumulative = 0;
            for (i, le) in BUCKETS_US.iter().enumerate() {
                cumulative += h.bucket(i);
                let _ = writeln!(
                    out,
                    "otk_mock_request_duration_seconds_bucket{{route=\"{label}\",le=\"{}\"}} {cumulative}",
                    *le as f64 / 1e6
                );
            }
            let count = cumulative + h.bucket(BUCKETS_US.len());
            let _ = writeln!(
                out,
                "otk_mock_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "otk_mock_request_duration_seconds_sum{{route=\"{label}\"}} {}",
                h.sum_us() as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "otk_mock_request_duration_seconds_count{{route=\"{label}\"}} {count}"
            );
        }
        header(
            &mut out,
            "otk_mock_faults_total",
            "counter",
            "Faults injected into provider requests, by kind (a delay and an outcome count apart).",
        );
        for (kind, n) in FAULT_KINDS.iter().zip(&self.faults) {
            let _ = writeln!(
                out,
                "otk_mock_faults_total{{kind=\"{kind}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        header(
            &mut out,
            "otk_mock_callbacks_total",
            "counter",
            "Callbacks by outcome (reset by POST /__admin/reset).",
        );
        for (outcome, n) in [
            ("delivered", gauges.callbacks_delivered),
            ("failed", gauges.callbacks_failed),
            ("dropped_queue_full", gauges.callbacks_dropped),
            ("undelivered", gauges.callbacks_undelivered),
            ("dropped_by_fault", gauges.callbacks_fault_dropped),
            ("duplicated_by_fault", gauges.callbacks_duplicated),
        ] {
            let _ = writeln!(out, "otk_mock_callbacks_total{{outcome=\"{outcome}\"}} {n}");
        }
        for (name, kind, help, value) in [
            (
                "otk_mock_callback_queue_depth",
                "gauge",
                "Callback deliveries waiting, between retries or in flight.",
                gauges.callback_queue_depth as u64,
            ),
            (
                "otk_mock_callback_queue_capacity",
                "gauge",
                "The most callback deliveries that may be pending (--callback-queue).",
                gauges.callback_queue_capacity as u64,
            ),
            (
                "otk_mock_catalogue_scenarios",
                "gauge",
                "Scenarios in the catalogue being served.",
                gauges.scenarios as u64,
            ),
            (
                "otk_mock_journeys",
                "gauge",
                "Journeys created and kept in memory.",
                gauges.journeys as u64,
            ),
            (
                "otk_mock_journal_entries",
                "gauge",
                "Requests kept in the request journal.",
                gauges.journal_entries as u64,
            ),
        ] {
            header(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        header(
            &mut out,
            "otk_mock_catalogue_reloads_total",
            "counter",
            "Catalogue reloads under --watch, by result.",
        );
        for (result, n) in [("ok", &self.reloads_ok), ("error", &self.reloads_failed)] {
            let _ = writeln!(
                out,
                "otk_mock_catalogue_reloads_total{{result=\"{result}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it (backslash, quote and newline escaped).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_up_in_the_text() {
        let metrics = Arc::new(Metrics::default());
        let success = metrics.scenario_key("success");
        metrics.request(RouteKind::GetJourney, success, Some(200), 700);
        // Another thread counts in another shard; the text sums them.
        let elsewhere = metrics.clone();
        std::thread::spawn(move || {
            elsewhere.request(RouteKind::GetJourney, success, Some(200), 3_000_000)
        })
        .join()
        .unwrap();
        metrics.request(RouteKind::CreateJourneyUrl, None, Some(401), 10);
        metrics.request(RouteKind::GetJourney, None, None, 10);
        metrics.fault(&"delay:1s; reset".parse().unwrap());
        // The same key comes back for the same name, as after a reload.
        assert_eq!(success, metrics.scenario_key("success"));
        assert_ne!(success, metrics.scenario_key("other"));
        let text = metrics.render(&Gauges::default());
        for line in [
            r#"otk_mock_requests_total{route="get-journey",scenario="success",status="200"} 2"#,
            r#"otk_mock_requests_total{route="create-journey-url",scenario="",status="401"} 1"#,
            r#"otk_mock_requests_total{route="get-journey",scenario="",status="none"} 1"#,
            r#"otk_mock_request_duration_seconds_bucket{route="get-journey",le="0.001"} 2"#,
            r#"otk_mock_request_duration_seconds_bucket{route="get-journey",le="2.5"} 2"#,
            r#"otk_mock_request_duration_seconds_bucket{route="get-journey",le="5"} 3"#,
            r#"otk_mock_request_duration_seconds_count{route="get-journey"} 3"#,
            r#"otk_mock_faults_total{kind="delay"} 1"#,
            r#"otk_mock_faults_total{kind="reset"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
