//! Metrics for `GET /__admin/metrics`: counters and a latency histogram kept in our own
//! atomics, written out by prometheus-client in the OpenMetrics text format (1.0.0).
//!
//! The request path only does relaxed atomic additions, and on counters of its own thread's
//! shard (a cache line no other worker thread writes), so counting does not bounce lines
//! between cores. Each scenario name gets a small number, its key, when a catalogue is
//! loaded (the same name keeps its key and counters across reloads); a request finds its
//! counters by that key in a table, without a lock or a reference count. The shards are
//! summed at scrape time into a snapshot that implements prometheus-client's `Collector`;
//! the crate writes the text (HELP and TYPE lines, label escaping, `_total` and histogram
//! suffixes, the closing `# EOF`), so only the values are ours. prometheus-client's own
//! metric types are not used on the request path: a labelled family hashes its labels into
//! a read-locked map on every update, and each of its counters is one atomic that every
//! thread writes.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabel, EncodeLabelSet, EncodeLabelValue, EncodeMetric,
    LabelSetEncoder, LabelValueEncoder, NoLabelSet,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry as Exposition;

use crate::fault::{Fault, KINDS as FAULT_KINDS};
use crate::wire::RouteKind;

/// Status codes counted under their own label; anything else is `other`, no status `none`.
const STATUSES: [u16; 16] = [
    200, 201, 400, 401, 404, 405, 408, 409, 413, 414, 415, 429, 500, 502, 503, 504,
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

fn slot(status: Option<u16>) -> usize {
    match status {
        None => NONE,
        Some(code) => STATUSES.iter().position(|s| *s == code).unwrap_or(OTHER),
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

/// Connections as the server's accept loop counts them; read at scrape time.
#[derive(Debug, Default)]
pub struct ConnectionCounts {
    open: AtomicU64,
    max: AtomicU64,
    refused: AtomicU64,
    accept_errors: AtomicU64,
}

impl ConnectionCounts {
    pub fn opened(&self) {
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection closed as soon as accepted: `--max-connections` were open.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// `accept` failed (out of file descriptors, most likely).
    pub fn accept_failed(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The cap in force (`--max-connections`, or its default).
    pub fn set_max(&self, max: usize) {
        self.max.store(max as u64, Ordering::Relaxed);
    }

    /// Open, the cap, refused, accept errors.
    pub fn read(&self) -> [u64; 4] {
        [&self.open, &self.max, &self.refused, &self.accept_errors]
            .map(|n| n.load(Ordering::Relaxed))
    }
}

/// Values read from elsewhere at scrape time.
#[derive(Debug, Clone, Default)]
pub struct Gauges {
    pub callbacks_created: u64,
    pub callbacks_delivered: u64,
    pub callbacks_failed: u64,
    pub callbacks_cancelled: u64,
    pub callbacks_refused: u64,
    pub callbacks_undelivered: u64,
    pub callbacks_fault_dropped: u64,
    pub callbacks_duplicated: u64,
    /// Intake slots in use: reserved by running journeys, or held by first attempts.
    pub callback_queue_depth: usize,
    pub callback_queue_capacity: usize,
    pub callback_retrying: usize,
    pub callback_retry_capacity: usize,
    pub scenarios: usize,
    pub journeys: usize,
    pub journal_entries: usize,
    /// Open connections, the cap, connections refused at the cap, accept errors.
    pub connections: [u64; 4],
    /// `--verify-fast-path`: bodies checked against Tera, and those that differed.
    pub fast_path_checks: u64,
    pub fast_path_differences: u64,
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
            self.faults[outcome.slot()].fetch_add(1, Ordering::Relaxed);
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

    /// The exposition text, in the OpenMetrics text format (it ends with `# EOF`).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut exposition = Exposition::default();
        exposition.register_collector(Box::new(self.snapshot(gauges)));
        let mut out = String::with_capacity(8 * 1024);
        // Writing to a String cannot fail; if the encoder ever reports an error anyway, a
        // partial text (Prometheus rejects it for the missing `# EOF`) beats no answer.
        if let Err(error) = text::encode(&mut out, &exposition) {
            tracing::error!(%error, written = out.len(), "encoding the metrics text failed");
        }
        out
    }

    /// Every counter summed over its shards, once, for one scrape.
    fn snapshot(&self, gauges: &Gauges) -> Snapshot {
        let mut names: Vec<(Arc<str>, usize)> = self
            .scenario_names()
            .into_iter()
            .enumerate()
            .map(|(key, name)| (name, key))
            .collect();
        names.sort();
        let all = names
            .into_iter()
            .filter_map(|(name, key)| Some((name, &**self.by_scenario.get(key)?.get()?)))
            .chain(std::iter::once((Arc::from(""), &*self.no_scenario)));
        let mut requests = Vec::new();
        for (scenario, counters) in all {
            for route in RouteKind::ALL {
                for slot in 0..SLOTS {
                    let n = counters.total(route, slot);
                    // Only series that counted something: 4,096 names × routes × statuses
                    // of zeros would drown the few that matter.
                    if n > 0 {
                        requests.push(RequestSeries {
                            route,
                            scenario: scenario.clone(),
                            status: Status(slot),
                            n,
                        });
                    }
                }
            }
        }
        let latency = RouteKind::ALL.map(|route| {
            let h = &self.latency[route.index()];
            let buckets: [(f64, u64); BUCKETS_US.len() + 1] = std::array::from_fn(|i| {
                let le = BUCKETS_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
                (le, h.bucket(i))
            });
            LatencySeries {
                route,
                count: buckets.iter().map(|(_, n)| n).sum(),
                sum_seconds: h.sum_us() as f64 / 1e6,
                buckets,
            }
        });
        Snapshot {
            requests,
            latency,
            faults: self.faults.each_ref().map(|n| n.load(Ordering::Relaxed)),
            reloads_ok: self.reloads_ok.load(Ordering::Relaxed),
            reloads_failed: self.reloads_failed.load(Ordering::Relaxed),
            gauges: gauges.clone(),
        }
    }
}

/// What one scrape reads. It owns its values because prometheus-client keeps collectors as
/// `Box<dyn Collector + 'static>`, so a collector cannot borrow the live counters; reading
/// them all first also gives a histogram's count from the same loads as its buckets.
#[derive(Debug)]
struct Snapshot {
    requests: Vec<RequestSeries>,
    latency: [LatencySeries; ROUTES],
    faults: [u64; FAULT_KINDS.len()],
    reloads_ok: u64,
    reloads_failed: u64,
    gauges: Gauges,
}

/// One `otk_mock_requests_total` sample: its labels (see its `EncodeLabelSet`) and count.
#[derive(Debug)]
struct RequestSeries {
    route: RouteKind,
    scenario: Arc<str>,
    status: Status,
    n: u64,
}

/// One route's `otk_mock_request_duration_seconds` histogram.
#[derive(Debug)]
struct LatencySeries {
    route: RouteKind,
    /// Per-bucket counts (not cumulative: the encoder adds them up), the last one `+Inf`.
    buckets: [(f64, u64); BUCKETS_US.len() + 1],
    count: u64,
    sum_seconds: f64,
}

/// A status slot as its label: the code, `other` or `none`.
#[derive(Debug, Clone, Copy)]
struct Status(usize);

impl EncodeLabelValue for Status {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        match STATUSES.get(self.0) {
            Some(code) => code.encode(encoder),
            None if self.0 == OTHER => "other".encode(encoder),
            None => "none".encode(encoder),
        }
    }
}

impl EncodeLabelSet for RequestSeries {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> fmt::Result {
        ("route", self.route.as_str()).encode(encoder.encode_label())?;
        ("scenario", &*self.scenario).encode(encoder.encode_label())?;
        ("status", self.status).encode(encoder.encode_label())
    }
}

/// Encodes one counter family with one label; counters are named without `_total`, which
/// the encoder appends to the sample (the family keeps the bare name, as OpenMetrics wants).
fn counter_family<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    values: impl IntoIterator<Item = (&'a str, u64)>,
) -> fmt::Result {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in values {
        ConstCounter::new(n).encode(family.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut requests = encoder.encode_descriptor(
            "otk_mock_requests",
            "Requests to the provider surface by route, scenario and status (none: no status went out).",
            None,
            MetricType::Counter,
        )?;
        for series in &self.requests {
            ConstCounter::new(series.n).encode(requests.encode_family(series)?)?;
        }

        let mut latency = encoder.encode_descriptor(
            "otk_mock_request_duration_seconds",
            "Time from a provider request's arrival to its answer (injected delays included).",
            None,
            MetricType::Histogram,
        )?;
        for series in &self.latency {
            let labels = [("route", series.route.as_str())];
            latency
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    series.sum_seconds,
                    series.count,
                    &series.buckets,
                    None,
                )?;
        }

        counter_family(
            &mut encoder,
            "otk_mock_faults",
            "Faults injected into provider requests, by kind (a delay and an outcome count apart).",
            "kind",
            FAULT_KINDS.iter().copied().zip(self.faults),
        )?;

        let g = &self.gauges;
        counter_family(
            &mut encoder,
            "otk_mock_callbacks",
            "Callbacks by event: created, and how they ended (created = delivered + failed + cancelled + pending); refused_intake_full counts create and redelivery calls answered 503 (reset by POST /__admin/reset).",
            "outcome",
            [
                ("created", g.callbacks_created),
                ("delivered", g.callbacks_delivered),
                ("failed", g.callbacks_failed),
                ("cancelled", g.callbacks_cancelled),
                ("refused_intake_full", g.callbacks_refused),
                ("undelivered", g.callbacks_undelivered),
                ("dropped_by_fault", g.callbacks_fault_dropped),
                ("duplicated_by_fault", g.callbacks_duplicated),
            ],
        )?;

        for (name, help, value) in [
            (
                "otk_mock_callback_queue_depth",
                "Callback intake slots in use: running journeys with a callbackUrl, and deliveries waiting for or making their first attempt.",
                g.callback_queue_depth,
            ),
            (
                "otk_mock_callback_queue_capacity",
                "Callback intake slots (--callback-queue).",
                g.callback_queue_capacity,
            ),
            (
                "otk_mock_callback_retrying",
                "Callback deliveries waiting between retries, or retrying.",
                g.callback_retrying,
            ),
            (
                "otk_mock_callback_retry_capacity",
                "Callback deliveries that may wait between retries (--callback-retry-queue).",
                g.callback_retry_capacity,
            ),
            (
                "otk_mock_catalogue_scenarios",
                "Scenarios in the catalogue being served.",
                g.scenarios,
            ),
            (
                "otk_mock_journeys",
                "Journeys created and kept in memory.",
                g.journeys,
            ),
            (
                "otk_mock_journal_entries",
                "Requests kept in the request journal.",
                g.journal_entries,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }

        let [open, max, refused, accept_errors] = g.connections;
        for (name, help, value) in [
            (
                "otk_mock_connections_open",
                "Client connections open now.",
                open,
            ),
            (
                "otk_mock_connections_max",
                "The most client connections open at once (--max-connections).",
                max,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        for (name, help, value) in [
            (
                "otk_mock_connections_refused",
                "Connections closed as soon as accepted because --max-connections were open.",
                refused,
            ),
            (
                "otk_mock_accept_errors",
                "Failed accepts (out of file descriptors, most likely), each retried 50 ms later.",
                accept_errors,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }

        counter_family(
            &mut encoder,
            "otk_mock_catalogue_reloads",
            "Catalogue reloads under --watch, by result.",
            "result",
            [("ok", self.reloads_ok), ("error", self.reloads_failed)],
        )?;

        for (name, help, value) in [
            (
                "otk_mock_fast_path_checks",
                "Fast-path bodies also rendered with Tera under --verify-fast-path.",
                g.fast_path_checks,
            ),
            (
                "otk_mock_fast_path_differences",
                "Checked fast-path bodies that differed from Tera's (Tera's was served).",
                g.fast_path_differences,
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
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
            // prometheus-client puts `le` before the family's labels and writes bounds as
            // floats (`5.0`).
            r#"otk_mock_request_duration_seconds_bucket{le="0.001",route="get-journey"} 2"#,
            r#"otk_mock_request_duration_seconds_bucket{le="2.5",route="get-journey"} 2"#,
            r#"otk_mock_request_duration_seconds_bucket{le="5.0",route="get-journey"} 3"#,
            r#"otk_mock_request_duration_seconds_count{route="get-journey"} 3"#,
            r#"otk_mock_faults_total{kind="delay"} 1"#,
            r#"otk_mock_faults_total{kind="reset"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }

    /// One sample line, its label values unescaped.
    struct Sample {
        name: String,
        labels: Vec<(String, String)>,
        value: f64,
    }

    /// A line `name{key="value",…} number` or `name number`; `None` if it is not that shape.
    fn parse_sample(line: &str) -> Option<Sample> {
        let is_name = |s: &str| {
            !s.is_empty()
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        let (series, value) = line.rsplit_once(' ')?;
        let value = value.parse::<f64>().ok()?;
        let Some((name, rest)) = series.split_once('{') else {
            let name = series.to_string();
            return is_name(series).then_some(Sample {
                name,
                labels: Vec::new(),
                value,
            });
        };
        let mut labels = Vec::new();
        let mut chars = rest.chars();
        loop {
            let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
            if !is_name(&key) || chars.next()? != '"' {
                return None;
            }
            let mut text = String::new();
            loop {
                match chars.next()? {
                    '\\' => text.push(match chars.next()? {
                        'n' => '\n',
                        '\\' => '\\',
                        '"' => '"',
                        _ => return None,
                    }),
                    '"' => break,
                    '\n' => return None,
                    c => text.push(c),
                }
            }
            labels.push((key, text));
            match chars.next()? {
                ',' => {}
                '}' => break,
                _ => return None,
            }
        }
        let name = name.to_string();
        (chars.next().is_none() && is_name(&name)).then_some(Sample {
            name,
            labels,
            value,
        })
    }

    #[test]
    fn the_whole_text_is_openmetrics() {
        let metrics = Metrics::default();
        // A name that needs escaping in a label value.
        let odd = "back\\slash \"quoted\"\nnewline";
        let key = metrics.scenario_key(odd);
        metrics.request(RouteKind::GetJourney, key, Some(200), 1_200);
        metrics.request(RouteKind::Other, None, Some(404), 40_000_000);
        metrics.reload(true);
        let gauges = Gauges {
            callbacks_delivered: 3,
            callback_queue_capacity: 1024,
            scenarios: 14,
            ..Gauges::default()
        };
        let text = metrics.render(&gauges);

        assert!(text.ends_with("\n# EOF\n"), "{text}");
        let mut lines = text.lines().peekable();
        let mut families: Vec<(String, String)> = Vec::new();
        // Per latency series, by route: the last bucket bound and count read, and `_count`.
        #[derive(Default)]
        struct Seen {
            le: Option<f64>,
            cumulative: f64,
            count: Option<f64>,
        }
        let mut histograms: HashMap<String, Seen> = HashMap::new();
        let mut found_odd = false;
        while let Some(line) = lines.next() {
            if line == "# EOF" {
                assert_eq!(lines.next(), None, "text after # EOF");
                break;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect(line);
                assert!(!help.is_empty(), "{line}");
                let type_line = lines.next().expect("a TYPE line after HELP");
                let (type_name, kind) = type_line
                    .strip_prefix("# TYPE ")
                    .and_then(|t| t.split_once(' '))
                    .expect(type_line);
                assert_eq!(type_name, name, "{type_line}");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{kind}");
                assert!(
                    families.iter().all(|(n, _)| n != name),
                    "{name} appears twice"
                );
                families.push((name.to_string(), kind.to_string()));
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment {line}");
            let Sample {
                name,
                labels,
                value,
            } = parse_sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}"));
            let (family, kind) = families.last().expect("a sample before any HELP");
            let suffix = name
                .strip_prefix(family.as_str())
                .unwrap_or_else(|| panic!("{name} outside its family {family}"));
            let allowed: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "gauge" => &[""],
                _ => &["_bucket", "_sum", "_count"],
            };
            assert!(allowed.contains(&suffix), "{name} in a {kind}");
            assert!(value >= 0.0, "{line}");
            if labels.iter().any(|(k, v)| k == "scenario" && v == odd) {
                assert_eq!(value, 1.0, "{line}");
                found_odd = true;
            }
            if kind == "histogram" {
                let route = labels.iter().find(|(k, _)| k == "route").expect(line);
                let seen = histograms.entry(route.1.clone()).or_default();
                match suffix {
                    "_bucket" => {
                        let le = labels.iter().find(|(k, _)| k == "le").expect(line);
                        let le: f64 = le.1.parse().expect("a number or +Inf");
                        assert!(
                            seen.le.is_none_or(|last| le > last) && value >= seen.cumulative,
                            "buckets out of order at {line}"
                        );
                        seen.le = Some(le);
                        seen.cumulative = value;
                    }
                    "_count" => seen.count = Some(value),
                    _ => {}
                }
            }
        }
        assert!(
            found_odd,
            "the escaped scenario name did not come back\n{text}"
        );
        for route in RouteKind::ALL {
            let seen = &histograms[route.as_str()];
            assert_eq!(seen.le, Some(f64::INFINITY), "{route:?} has no +Inf bucket");
            assert_eq!(seen.count, Some(seen.cumulative), "{route:?}");
        }
        let names: Vec<&str> = families.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "otk_mock_requests",
                "otk_mock_request_duration_seconds",
                "otk_mock_faults",
                "otk_mock_callbacks",
                "otk_mock_callback_queue_depth",
                "otk_mock_callback_queue_capacity",
                "otk_mock_callback_retrying",
                "otk_mock_callback_retry_capacity",
                "otk_mock_catalogue_scenarios",
                "otk_mock_journeys",
                "otk_mock_journal_entries",
                "otk_mock_connections_open",
                "otk_mock_connections_max",
                "otk_mock_connections_refused",
                "otk_mock_accept_errors",
                "otk_mock_catalogue_reloads",
                "otk_mock_fast_path_checks",
                "otk_mock_fast_path_differences",
            ]
        );
    }
}
