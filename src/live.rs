//! The catalogue being served, and what the server keeps beside each one: the scenario's
//! name as shared text, its metrics counters and the runtime state of its `[fault]`.
//!
//! [`Live`] holds the current [`Loaded`] in an `ArcSwap`: every request reads it without a
//! lock, and a hot reload replaces it in one store. A request that started on the old
//! catalogue finishes on it; the next one sees the new. Each load has a new generation, which
//! is part of every cached body's key, so nothing rendered from an old catalogue is served
//! after a reload.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::catalogue::Catalogue;
use crate::fault::rules::ScenarioFaultState;
use crate::metrics::Metrics;
use crate::scenario::Scenario;
use crate::time::now_millis;

/// What the server keeps for one scenario of a loaded catalogue.
pub struct ScenarioInfo {
    pub name: Arc<str>,
    /// Its key in the metrics (and so in the journal): the same for the same name across
    /// reloads.
    pub key: Option<u32>,
    pub fault: Option<ScenarioFaultState>,
}

impl std::fmt::Debug for ScenarioInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScenarioInfo")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("fault", &self.fault.is_some())
            .finish()
    }
}

/// One loaded catalogue.
pub struct Loaded {
    pub catalogue: Arc<Catalogue>,
    /// 1 for the catalogue loaded at start-up, then one more per successful reload.
    pub generation: u64,
    /// When it was loaded, epoch milliseconds.
    pub loaded_at: i64,
    /// In the catalogue's order.
    scenarios: Vec<ScenarioInfo>,
}

impl Loaded {
    fn new(catalogue: Arc<Catalogue>, generation: u64, metrics: &Metrics) -> Loaded {
        let scenarios = catalogue
            .scenarios()
            .iter()
            .map(|s| ScenarioInfo {
                name: Arc::from(s.name.as_str()),
                key: metrics.scenario_key(&s.name),
                fault: s
                    .fault
                    .clone()
                    .map(|f| ScenarioFaultState::new(f, catalogue.seed(), &s.name)),
            })
            .collect();
        Loaded {
            catalogue,
            generation,
            loaded_at: now_millis(),
            scenarios,
        }
    }

    /// The info of a scenario of this catalogue (found by where it sits in the catalogue's
    /// slice, so no name is hashed on the request path).
    pub fn info(&self, scenario: &Scenario) -> Option<&ScenarioInfo> {
        let all = self.catalogue.scenarios();
        let size = std::mem::size_of::<Scenario>().max(1);
        let offset = (scenario as *const Scenario as usize).wrapping_sub(all.as_ptr() as usize);
        let index = offset / size;
        (offset.is_multiple_of(size) && index < all.len())
            .then(|| self.scenarios.get(index))
            .flatten()
    }

    /// The info of the scenario with this name or alias.
    pub fn info_by_name(&self, name: &str) -> Option<&ScenarioInfo> {
        self.info(self.catalogue.find(name)?)
    }
}

/// Why the last reload failed.
#[derive(Debug, Clone)]
pub struct ReloadError {
    /// Epoch milliseconds.
    pub at: i64,
    pub message: String,
}

/// The swappable catalogue.
pub struct Live {
    current: ArcSwap<Loaded>,
    generation: AtomicU64,
    last_error: Mutex<Option<ReloadError>>,
}

impl Live {
    pub fn new(catalogue: Catalogue, metrics: &Metrics) -> Live {
        Live {
            current: ArcSwap::from_pointee(Loaded::new(Arc::new(catalogue), 1, metrics)),
            generation: AtomicU64::new(1),
            last_error: Mutex::new(None),
        }
    }

    /// The current catalogue and its extras. Cheap; do not hold it across an `.await`.
    pub fn load(&self) -> arc_swap::Guard<Arc<Loaded>> {
        self.current.load()
    }

    /// The current catalogue.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.current.load().catalogue.clone()
    }

    /// Serve `catalogue` from now on; returns its generation. Clears the last reload error.
    pub fn swap(&self, catalogue: Catalogue, metrics: &Metrics) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        self.current.store(Arc::new(Loaded::new(
            Arc::new(catalogue),
            generation,
            metrics,
        )));
        *self.lock_error() = None;
        generation
    }

    /// A reload failed: the current catalogue stays; the error is kept for health.
    pub fn failed(&self, message: String) {
        *self.lock_error() = Some(ReloadError {
            at: now_millis(),
            message,
        });
    }

    pub fn last_error(&self) -> Option<ReloadError> {
        self.lock_error().clone()
    }

    fn lock_error(&self) -> std::sync::MutexGuard<'_, Option<ReloadError>> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner())
    }
}
