//! The shadow check of `serve --verify-fast-path N`: every N-th body the fast path writes is
//! rendered with Tera too, and on any difference Tera's is served.
//!
//! The analysis and the start-up comparison make a wrong fast-path body a bug, not an
//! expected event; this is how a user who doubts it finds out on their own traffic. A
//! difference is logged (a warning naming the scenario, the journey id and where the bytes
//! part; both bodies at debug level), counted in `/__admin/metrics`, and takes the scenario
//! off the fast path until the catalogue is loaded again, so that no further body of it
//! depends on the fast path.

use std::sync::atomic::{AtomicU64, Ordering};

use super::facts::Journey;
use super::skeleton::Plan;
use super::RenderError;
use crate::scenario::Scenario;

/// Counters of one server's shadow checks; a reloaded catalogue keeps using the same one.
#[derive(Debug)]
pub struct Shadow {
    every: u64,
    seen: AtomicU64,
    checks: AtomicU64,
    differences: AtomicU64,
}

impl Shadow {
    /// Check every `every`-th fast-path body (1: all of them); `None` for 0.
    pub fn new(every: u64) -> Option<Shadow> {
        (every > 0).then(|| Shadow {
            every,
            seen: AtomicU64::new(0),
            checks: AtomicU64::new(0),
            differences: AtomicU64::new(0),
        })
    }

    /// Counts one fast-path body; whether this one is to be checked.
    pub fn due(&self) -> bool {
        (self.seen.fetch_add(1, Ordering::Relaxed) + 1).is_multiple_of(self.every)
    }

    /// Bodies checked against Tera so far.
    pub fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// Checked bodies that differed from Tera's.
    pub fn differences(&self) -> u64 {
        self.differences.load(Ordering::Relaxed)
    }

    /// Compare the fast path's body (`out[start..]`) with Tera's; on a difference, log it,
    /// count it, take the scenario off the fast path and leave Tera's answer in its place.
    pub(super) fn compare(
        &self,
        scenario: &Scenario,
        plan: &Plan,
        journey: &Journey,
        tera: Result<Vec<u8>, RenderError>,
        out: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), RenderError> {
        self.checks.fetch_add(1, Ordering::Relaxed);
        let fast = &out[start..];
        if tera.as_deref().is_ok_and(|tera| tera == fast) {
            return Ok(());
        }
        self.differences.fetch_add(1, Ordering::Relaxed);
        let fast_text = String::from_utf8_lossy(fast).into_owned();
        match &tera {
            Ok(tera) => {
                let at = tera
                    .iter()
                    .zip(fast)
                    .position(|(a, b)| a != b)
                    .unwrap_or(tera.len().min(fast.len()));
                tracing::warn!(
                    scenario = %scenario.name,
                    journey_id = %journey.id,
                    byte = at,
                    fast = %excerpt(fast, at),
                    tera = %excerpt(tera, at),
                    "--verify-fast-path: the fast path's body differs from Tera's; serving Tera's and rendering this scenario with Tera from now on"
                );
                tracing::debug!(
                    scenario = %scenario.name,
                    journey_id = %journey.id,
                    fast = %fast_text,
                    tera = %String::from_utf8_lossy(tera),
                    "--verify-fast-path: both bodies"
                );
            }
            Err(error) => {
                tracing::warn!(
                    scenario = %scenario.name,
                    journey_id = %journey.id,
                    %error,
                    "--verify-fast-path: the fast path gave a body where Tera fails; answering Tera's error and rendering this scenario with Tera from now on"
                );
                tracing::debug!(scenario = %scenario.name, journey_id = %journey.id, fast = %fast_text, "--verify-fast-path: the fast path's body");
            }
        }
        plan.disable(format!(
            "--verify-fast-path found a difference from Tera for journey {:?}",
            journey.id
        ));
        out.truncate(start);
        out.extend_from_slice(&tera?);
        Ok(())
    }
}

/// About 40 bytes either side of `at`, as text.
fn excerpt(bytes: &[u8], at: usize) -> String {
    let from = at.saturating_sub(40);
    let to = (at + 40).min(bytes.len());
    String::from_utf8_lossy(&bytes[from.min(to)..to]).into_owned()
}
