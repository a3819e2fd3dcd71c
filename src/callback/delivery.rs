//! One delivery, from its first attempt to its last: sleep until due, attempt, back off,
//! and log each attempt. Runs as its own task, so a slow receiver holds up nothing else.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, USER_AGENT};
use hyper::Method;
use rand::RngExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::log::Attempt;
use super::{Delivery, Dispatcher, Settled};
use crate::time::{iso_from_millis, now_millis};

impl Dispatcher {
    /// One delivery, from its first attempt to its last.
    pub(super) async fn run(self: Arc<Self>, id: u64, delivery: Delivery) {
        let mut drain = self.drain.subscribe();
        let mut due = later(delivery.delay);
        let mut attempt = 1u32;
        loop {
            if !wait_until(due, &mut drain).await {
                tracing::warn!(journey_id = %delivery.journey_id, delivery = id, attempt, "callback undelivered: not due before the end of the drain window");
                self.lose(&delivery.journey_id, Some(id), "shutdown", ());
                break;
            }
            let logged = self.attempt(id, attempt, due, &delivery).await;
            let delivered = logged.outcome == "delivered";
            // The journey and the counters learn the outcome before the attempt is logged, so
            // whoever sees an attempt in the log sees its effects too.
            if delivered {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.observer.settled(
                    &delivery.journey_id,
                    Settled::Delivered { attempts: attempt },
                );
            } else if logged.final_attempt {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(journey_id = %delivery.journey_id, delivery = id, attempts = attempt, "callback failed: attempts exhausted");
                self.observer
                    .settled(&delivery.journey_id, Settled::Failed { attempts: attempt });
            } else {
                self.observer.attempted(&delivery.journey_id);
            }
            let last = logged.final_attempt;
            self.attempts.push(logged);
            if last {
                break;
            }
            due = later(self.backoff(attempt));
            attempt += 1;
        }
        self.finish(id);
    }

    /// The wait after failed attempt `n` (1-based): `initial × 2^(n-1)`, capped at the maximum,
    /// then "equal jitter" (a uniform draw from the upper half) so that many failing
    /// callbacks do not retry in lockstep.
    fn backoff(&self, n: u32) -> Duration {
        let base = self
            .settings
            .backoff_initial
            .saturating_mul(2u32.saturating_pow(n.saturating_sub(1).min(30)))
            .min(self.settings.backoff_max);
        let half = base / 2;
        let extra = rand::rng().random_range(0..=half.as_micros().min(u128::from(u64::MAX)) as u64);
        half + Duration::from_micros(extra)
    }

    /// One attempt, as the log will record it (the caller logs it, once its outcome is
    /// applied).
    async fn attempt(&self, id: u64, attempt: u32, due: Instant, delivery: &Delivery) -> Attempt {
        let scheduled_at = now_millis()
            - i64::try_from(Instant::now().saturating_duration_since(due).as_millis()).unwrap_or(0);
        let started_at = now_millis();
        let started = Instant::now();
        let mut headers = vec![
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                USER_AGENT,
                HeaderValue::from_static(concat!("otk-mock/", env!("CARGO_PKG_VERSION"))),
            ),
        ];
        let key = if delivery.wrong_auth {
            Some(super::WRONG_AUTH_KEY)
        } else {
            delivery.auth_key.as_deref()
        };
        if let (Some(name), Some(key)) = (&self.auth_header, key) {
            match HeaderValue::from_str(key) {
                Ok(value) => headers.push((name.clone(), value)),
                Err(_) => {
                    tracing::warn!(journey_id = %delivery.journey_id, "authKeyForCallback cannot be sent in a header (control characters); sent without it")
                }
            }
        }
        if let Some(key) = &self.settings.signing_key {
            let timestamp = started_at.div_euclid(1000);
            let signature = key.sign(&delivery.webhook_id, timestamp, &delivery.body);
            for (name, value) in [
                ("webhook-id", delivery.webhook_id.clone()),
                ("webhook-timestamp", timestamp.to_string()),
                ("webhook-signature", signature),
            ] {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.push((HeaderName::from_static(name), value));
                }
            }
        }
        let result = match &self.client {
            Some(client) => {
                client
                    .send(
                        Method::POST,
                        &delivery.url,
                        &headers,
                        delivery.body.clone(),
                        self.settings.timeout,
                    )
                    .await
            }
            None => Err(crate::client::OutboundError {
                kind: crate::client::OutboundErrorKind::Other,
                detail: "no callback client".to_string(),
            }),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (delivered, status, error, detail) = match result {
            Ok(response) if response.status.is_success() => {
                (true, Some(response.status.as_u16()), None, None)
            }
            Ok(response) => (
                false,
                Some(response.status.as_u16()),
                Some("non_2xx"),
                Some(format!("the receiver answered {}", response.status)),
            ),
            Err(e) => (false, None, Some(e.kind.as_str()), Some(e.detail)),
        };
        let final_attempt = delivered || attempt >= self.settings.max_attempts;
        tracing::info!(
            journey_id = %delivery.journey_id,
            delivery = id,
            attempt,
            scheduled_at = %iso_from_millis(scheduled_at),
            started_at = %iso_from_millis(started_at),
            duration_ms,
            status = status.unwrap_or(0),
            error = error.unwrap_or(""),
            final_attempt,
            "callback attempt {}",
            if delivered { "delivered" } else { "failed" }
        );
        Attempt {
            journey_id: delivery.journey_id.clone(),
            delivery: id,
            attempt,
            url: delivery.url.clone(),
            webhook_id: delivery.webhook_id.clone(),
            scheduled_at: iso_from_millis(scheduled_at),
            started_at: iso_from_millis(started_at),
            duration_ms,
            outcome: if delivered { "delivered" } else { "failed" },
            status,
            error,
            detail,
            final_attempt,
        }
    }
}

/// `d` from now; a duration too long for the clock (`X-Mock-Callback-Delay: 10000y`) means
/// "in thirty years" rather than an overflow.
pub(super) fn later(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400)))
        .unwrap_or(now)
}

/// Sleep until `due`; `false` when a drain has begun whose deadline comes before `due`.
async fn wait_until(due: Instant, drain: &mut watch::Receiver<Option<Instant>>) -> bool {
    loop {
        let deadline = *drain.borrow_and_update();
        if deadline.is_some_and(|d| due > d) {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(due) => return true,
            changed = drain.changed() => {
                if changed.is_err() {
                    // The dispatcher is gone; nobody will drain: just wait.
                    tokio::time::sleep_until(due).await;
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::tests::Nobody;
    use crate::callback::CallbackSettings;

    #[test]
    fn backoff_doubles_is_capped_and_jittered_within_the_upper_half() {
        let dispatcher = Dispatcher::new(
            CallbackSettings {
                backoff_initial: Duration::from_millis(100),
                backoff_max: Duration::from_millis(350),
                ..CallbackSettings::default()
            },
            Arc::new(Nobody),
        );
        for _ in 0..50 {
            let one = dispatcher.backoff(1);
            assert!(one >= Duration::from_millis(50) && one <= Duration::from_millis(100));
            let two = dispatcher.backoff(2);
            assert!(two >= Duration::from_millis(100) && two <= Duration::from_millis(200));
            let capped = dispatcher.backoff(40);
            assert!(capped >= Duration::from_millis(175) && capped <= Duration::from_millis(350));
        }
    }

    #[test]
    fn absurd_delays_do_not_overflow_the_clock() {
        assert!(later(Duration::MAX) > Instant::now());
    }
}
