//! One delivery, from its first attempt to its last: sleep until due, attempt, back off,
//! and log each attempt. Runs as its own task, so a slow receiver holds up nothing else.

use std::sync::Arc;
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Method, StatusCode};
use rand::RngExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::log::Attempt;
use super::{Delivery, Dispatcher, End, Settled};
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
                self.cancel(id, &delivery.journey_id, "shutdown");
                return;
            }
            let (mut logged, retry_after) = self.attempt(id, attempt, due, &delivery).await;
            let end = End::after(&logged);
            // Counted once, here or by the reset or shutdown that ended it first (and whose
            // log this attempt then does not belong to).
            let live = match end {
                Some(end) => self.settle(id, end),
                None => self.to_retry(id),
            };
            if !live {
                return;
            }
            // The journey and the counters learn the outcome before the attempt is logged, so
            // whoever sees an attempt in the log sees its effects too.
            match end {
                Some(End::Delivered) => self.observer.settled(
                    &delivery.journey_id,
                    Settled::Delivered { attempts: attempt },
                ),
                Some(End::Failed) => {
                    tracing::warn!(journey_id = %delivery.journey_id, delivery = id, attempts = attempt, error = logged.error.unwrap_or(""), "callback failed: no more attempts");
                    self.observer
                        .settled(&delivery.journey_id, Settled::Failed { attempts: attempt });
                }
                None => self.observer.attempted(&delivery.journey_id),
            }
            if end.is_some() {
                self.attempts.push(logged);
                return;
            }
            let wait = match retry_after {
                Some(asked) => asked.min(self.settings.backoff_max),
                None => self.backoff(attempt),
            };
            let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            logged.next_attempt_at = Some(iso_from_millis(now_millis().saturating_add(wait_ms)));
            self.attempts.push(logged);
            due = later(wait);
            attempt += 1;
        }
    }

    /// The wait after failed attempt `n` (1-based): `initial × 2^(n-1)`, capped at the maximum,
    /// then "equal jitter" (a uniform draw from the upper half) so that many failing
    /// callbacks do not retry in lockstep.
    pub(super) fn backoff(&self, n: u32) -> Duration {
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
    /// applied), and the receiver's `Retry-After`, if it sent one.
    pub(super) async fn attempt(
        &self,
        id: u64,
        attempt: u32,
        due: Instant,
        delivery: &Delivery,
    ) -> (Attempt, Option<Duration>) {
        // Never fails: the semaphore is never closed.
        let _permit = self.in_flight.acquire().await.ok();
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
        let refused = self.destinations.check(&delivery.url).await.err();
        let result = match (&refused, &self.client) {
            (Some(refusal), _) => {
                tracing::warn!(journey_id = %delivery.journey_id, delivery = id, url = %delivery.url, reason = refusal.detail(), "callback refused before sending");
                Err(crate::client::OutboundError {
                    kind: crate::client::OutboundErrorKind::Other,
                    detail: refusal.detail().to_string(),
                })
            }
            (None, Some(client)) => {
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
            (None, None) => Err(crate::client::OutboundError {
                kind: crate::client::OutboundErrorKind::Other,
                detail: "no callback client".to_string(),
            }),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut retry_after = None;
        let mut stop = refused.is_some();
        let (delivered, status, error, detail) = match result {
            Ok(response) if response.status.is_success() => {
                (true, Some(response.status.as_u16()), None, None)
            }
            Ok(response) if response.status == StatusCode::GONE => {
                stop = true;
                (
                    false,
                    Some(410),
                    Some("gone"),
                    Some("the receiver answered 410 Gone: no more attempts".to_string()),
                )
            }
            Ok(response) => {
                retry_after = response
                    .headers
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                let asked = match retry_after {
                    Some(d) => format!(" (Retry-After: {}s)", d.as_secs()),
                    None => String::new(),
                };
                (
                    false,
                    Some(response.status.as_u16()),
                    Some("non_2xx"),
                    Some(format!("the receiver answered {}{asked}", response.status)),
                )
            }
            Err(_) if refused.is_some() => (
                false,
                None,
                refused.as_ref().map(|r| r.kind()),
                refused.as_ref().map(|r| r.detail().to_string()),
            ),
            Err(e) => (false, None, Some(e.kind.as_str()), Some(e.detail)),
        };
        let final_attempt = delivered || stop || attempt >= self.settings.max_attempts;
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
        let logged = Attempt {
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
            next_attempt_at: None,
            replica: None,
        };
        (logged, retry_after)
    }
}

/// A `Retry-After` value: whole seconds, or an HTTP-date (its distance from `now`, zero if it
/// has passed). Anything else is ignored, and the usual backoff applies.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// `d` from now; a duration too long for the clock means "in thirty years" rather than an
/// overflow (delays are capped by `--callback-max-delay` before they get here).
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
            None,
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
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(784_111_777); // 06 Nov 1994 08:49:37
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn absurd_delays_do_not_overflow_the_clock() {
        assert!(later(Duration::MAX) > Instant::now());
    }
}
