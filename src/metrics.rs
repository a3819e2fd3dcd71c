//! Metrics for `GET /__admin/metrics`, in the Prometheus text format (version 0.0.4),
//! written by hand: a few counters, one histogram and some gauges need no metrics crate.
//!
//! The request path only does relaxed atomic additions on counters it already holds: each
//! scenario's counters are looked up by name once per catalogue load (and kept by name, so
//! a reload does not reset them), never per request. The text is built at scrape time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::fault::Fault;
use crate::journal::RouteKind;

/// Status codes counted under their own label; anything else is `other`, no status `none`.
const STATUSES: [u16; 13] = [
    200, 201, 400, 401, 404, 405, 409, 413, 429, 500, 502, 503, 504,
];
const OTHER: usize = STATUSES.len();
const NONE: usize = STATUSES.len() + 1;
const SLOTS: usize = STATUSES.len() + 2;
const ROUTES: usize = RouteKind::ALL.len();

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
    counts: [[AtomicU64; SLOTS]; ROUTES],
}

impl RequestCounters {
    fn new() -> Self {
        RequestCounters {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }

    pub fn hit(&self, route: RouteKind, status: Option<u16>) {
        self.counts[route.index()][slot(status)].fetch_add(1, Ordering::Relaxed);
    }
}

struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, us: u64) {
        if let Some(i) = BUCKETS_US.iter().position(|le| us <= *le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
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
    by_scenario: Mutex<BTreeMap<String, Arc<RequestCounters>>>,
    no_scenario: RequestCounters,
    latency: [Histogram; ROUTES],
    faults: [AtomicU64; FAULT_KINDS.len()],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            by_scenario: Mutex::new(BTreeMap::new()),
            no_scenario: RequestCounters::new(),
            latency: std::array::from_fn(|_| Histogram::new()),
            faults: std::array::from_fn(|_| AtomicU64::new(0)),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// The counters of the scenario called `name`, the same ones across reloads. Called when
    /// a catalogue is loaded, not per request.
    pub fn scenario(&self, name: &str) -> Arc<RequestCounters> {
        let mut map = self.by_scenario.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(name.to_string())
            .or_insert_with(|| Arc::new(RequestCounters::new()))
            .clone()
    }

    /// One answered (or faulted) provider request.
    pub fn request(
        &self,
        route: RouteKind,
        scenario: Option<&RequestCounters>,
        status: Option<u16>,
        latency_us: u64,
    ) {
        scenario.unwrap_or(&self.no_scenario).hit(route, status);
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
        let scenarios: Vec<(String, Arc<RequestCounters>)> = self
            .by_scenario
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let all = scenarios
            .iter()
            .map(|(name, c)| (name.as_str(), &**c))
            .chain(std::iter::once(("", &self.no_scenario)));
        for (name, counters) in all {
            for route in RouteKind::ALL {
                for (slot, n) in counters.counts[route.index()].iter().enumerate() {
                    let n = n.load(Ordering::Relaxed);
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
            for (le, n) in BUCKETS_US.iter().zip(&h.buckets) {
                cumulative += n.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "otk_mock_request_duration_seconds_bucket{{route=\"{label}\",le=\"{}\"}} {cumulative}",
                    *le as f64 / 1e6
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "otk_mock_request_duration_seconds_bucket{{route=\"{label}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "otk_mock_request_duration_seconds_sum{{route=\"{label}\"}} {}",
                h.sum_us.load(Ordering::Relaxed) as f64 / 1e6
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
        let metrics = Metrics::default();
        let success = metrics.scenario("success");
        metrics.request(RouteKind::GetJourney, Some(&success), Some(200), 700);
        metrics.request(RouteKind::GetJourney, Some(&success), Some(200), 3_000_000);
        metrics.request(RouteKind::CreateJourneyUrl, None, Some(401), 10);
        metrics.request(RouteKind::GetJourney, None, None, 10);
        metrics.fault(&"delay:1s; reset".parse().unwrap());
        // The same counters come back for the same name, as after a reload.
        assert!(Arc::ptr_eq(&success, &metrics.scenario("success")));
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
