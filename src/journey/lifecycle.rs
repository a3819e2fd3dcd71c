//! The lifecycle rules: created → in progress → completed, terminated or expired, as pure
//! functions of a record and the clock, so they can be checked without a server.
//!
//! Time-based transitions (auto-completion, link expiry, session expiry) are applied by
//! whoever looks first: a Tokio timer set for the journey's next deadline, or any read of the
//! journey after that deadline. Both go through [`next_due`] and apply the transition under
//! the store's lock, so it happens exactly once, stamped with the deadline itself rather than
//! the moment it was noticed.

use std::time::Duration;

use super::record::{Ending, JourneyRecord, State};

/// The lifecycle settings.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// A journey whose link was never opened completes on its own this long after creation
    /// (`None`: never).
    pub auto_complete_after: Option<Duration>,
}

/// What happens at a journey's next deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    AutoComplete,
    LinkExpiry,
    SessionExpiry,
}

impl Due {
    pub fn ending(self) -> Ending {
        match self {
            Due::AutoComplete => Ending::AutoComplete,
            Due::LinkExpiry => Ending::LinkExpired,
            Due::SessionExpiry => Ending::SessionExpired,
        }
    }
}

/// When the journey changes by itself next, and how (epoch milliseconds).
///
/// - created: auto-completion (if enabled and the bound scenario ends a journey) or link
///   expiry, whichever comes first;
/// - in progress: session expiry, counted from the moment the page was opened. Opening the
///   page cancels auto-completion: a tester on the page chooses the outcome.
pub fn next_due(record: &JourneyRecord, policy: &Policy) -> Option<(i64, Due)> {
    match record.state {
        State::Created => {
            let link = record.created_at.saturating_add(record.link_validity_ms());
            let auto = record
                .auto_complete
                .after(policy.auto_complete_after)
                .filter(|_| record.scenario_terminal)
                .map(|d| {
                    record
                        .created_at
                        .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                });
            match auto {
                Some(at) if at <= link => Some((at, Due::AutoComplete)),
                _ => Some((link, Due::LinkExpiry)),
            }
        }
        State::InProgress => Some((
            record
                .started_at
                .unwrap_or(record.created_at)
                .saturating_add(record.session_expiry_ms()),
            Due::SessionExpiry,
        )),
        State::Completed | State::Terminated | State::Expired => None,
    }
}

/// The hosted page was opened: created → in progress. Returns whether anything changed.
pub fn open(record: &mut JourneyRecord, now: i64) -> bool {
    if record.state != State::Created {
        return false;
    }
    record.state = State::InProgress;
    record.started_at = Some(now);
    record.updated_at = now;
    true
}

/// End a running journey with `outcome` (a scenario name) at `at`. `completed` says whether
/// the outcome's status is `COMPLETED`. Returns whether anything changed (not if it had
/// already ended).
///
/// A journey that ends without its page having been opened gets `startedAt` = `completedAt`,
/// unless it expired (an expired link was never started). `updatedAt` follows `completedAt`
/// by a few milliseconds, as in the provider's documented sample.
pub fn end(
    record: &mut JourneyRecord,
    outcome: &str,
    completed: bool,
    ending: Ending,
    at: i64,
) -> bool {
    if record.state.is_terminal() {
        return false;
    }
    let expired = matches!(ending, Ending::LinkExpired | Ending::SessionExpired);
    record.state = if expired {
        State::Expired
    } else if completed {
        State::Completed
    } else {
        State::Terminated
    };
    if record.started_at.is_none() && !expired {
        record.started_at = Some(at);
    }
    record.outcome = Some(outcome.to_string());
    record.ended_by = Some(ending);
    record.completed_at = Some(at);
    record.updated_at = at + 7;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::store::tests::record;

    fn policy(auto: Option<u64>) -> Policy {
        Policy {
            auto_complete_after: auto.map(Duration::from_millis),
        }
    }

    #[test]
    fn created_journeys_auto_complete_before_the_link_expires() {
        let mut r = record("A");
        r.created_at = 1_000;
        assert_eq!(
            next_due(&r, &policy(Some(5_000))),
            Some((6_000, Due::AutoComplete))
        );
        // Link validity 3600 s by default; auto-completion disabled: the link expires.
        assert_eq!(
            next_due(&r, &policy(None)),
            Some((3_601_000, Due::LinkExpiry))
        );
        r.processing_config
            .insert("journeyLinkValidity".into(), serde_json::json!(2));
        assert_eq!(
            next_due(&r, &policy(Some(5_000))),
            Some((3_000, Due::LinkExpiry))
        );
        // A non-terminal binding never completes by itself.
        r.scenario_terminal = false;
        r.processing_config
            .insert("journeyLinkValidity".into(), serde_json::json!(3600));
        assert_eq!(
            next_due(&r, &policy(Some(5_000))).unwrap().1,
            Due::LinkExpiry
        );
    }

    #[test]
    fn opening_cancels_auto_completion_and_starts_the_session_clock() {
        let mut r = record("A");
        assert!(open(&mut r, 2_000));
        assert!(!open(&mut r, 3_000));
        assert_eq!(r.started_at, Some(2_000));
        assert_eq!(
            next_due(&r, &policy(Some(1))),
            Some((602_000, Due::SessionExpiry))
        );
    }

    #[test]
    fn ending_sets_state_and_timestamps_once() {
        let mut r = record("A");
        assert!(end(&mut r, "success", true, Ending::Admin, 9_000));
        assert_eq!(r.state, State::Completed);
        assert_eq!(
            (r.started_at, r.completed_at, r.updated_at),
            (Some(9_000), Some(9_000), 9_007)
        );
        assert!(!end(&mut r, "x", false, Ending::Admin, 10_000));
        assert_eq!(next_due(&r, &policy(Some(1))), None);

        let mut r = record("B");
        assert!(end(&mut r, "link_expired", false, Ending::LinkExpired, 5));
        assert_eq!((r.state, r.started_at), (State::Expired, None));

        let mut r = record("C");
        end(&mut r, "retries_exceeded", false, Ending::HostedPage, 5);
        assert_eq!(r.state, State::Terminated);
    }
}
