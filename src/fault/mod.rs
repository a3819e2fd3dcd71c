//! Faults: making the provider surface misbehave on purpose, the way real networks and
//! gateways do.
//!
//! A [`Fault`] is written in one syntax everywhere (the `X-Mock-Fault` header, a scenario's
//! `[fault] inject`, `POST /__admin/faults`): an optional delay and an optional outcome,
//! separated by `;`.
//!
//! ```text
//! delay:500ms                                      hold the answer this long
//! delay:uniform(100ms,2s)                          a uniform draw between two bounds
//! delay:lognormal(median=200ms,sigma=0.8,cap=5s)   a lognormal draw, never above the cap
//! status:503                                       429, 500, 502, 503 or 504, provider body
//! status:429(retry-after=30s)                      with its Retry-After (429 always has one)
//! reset | empty | malformed | truncated | hang     what happens to the connection or body
//! delay:2s; status:504                             both: wait, then answer 504
//! ```
//!
//! [`CallbackFault`] is the callback side (`drop`, `duplicate`, `delay:<d>`, `wrong_auth`).
//! Which fault a request gets, and the random draws, are [`rules`]' concern.

pub mod rules;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use rand::{Rng, RngExt};
use serde::{Serialize, Serializer};

/// A fault as written, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    pub delay: Option<Delay>,
    pub outcome: Option<Outcome>,
    /// The text it was parsed from, trimmed: what the journal and the admin API show.
    text: Arc<str>,
}

/// How long an answer is held.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Delay {
    Fixed(Duration),
    Uniform(Duration, Duration),
    LogNormal {
        median: Duration,
        sigma: f64,
        cap: Duration,
    },
}

/// What the client gets instead of (or in place of a good part of) the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An error status with a body in the provider's format.
    Status {
        code: StatusCode,
        retry_after: Option<Duration>,
    },
    /// The connection is reset (TCP RST) instead of answered.
    Reset,
    /// The connection is closed (FIN) with no answer.
    Empty,
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 whose body stops short of its Content-Length; then the connection closes.
    Truncated,
    /// No answer until the client gives up (or `--fault-max-wait`, or shutdown).
    Hang,
}

/// The status codes a `status:` fault may give.
pub const FAULT_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// Retry-After of a 429 when the fault does not give one.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);

/// A fault or callback fault that does not parse; the message names the part at fault and
/// shows the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FaultSyntaxError(pub String);

const SYNTAX: &str = "write e.g. delay:500ms, delay:uniform(100ms,2s), \
delay:lognormal(median=200ms,sigma=0.8,cap=5s), status:503, status:429(retry-after=30s), \
reset, empty, malformed, truncated or hang; join a delay and an outcome with `;`";

const CALLBACK_SYNTAX: &str =
    "write drop, duplicate, wrong_auth or delay:<duration>; join several with `;`";

fn bad(message: impl fmt::Display) -> FaultSyntaxError {
    FaultSyntaxError(format!("{message}; {SYNTAX}"))
}

/// Every kind a fault is counted under, by [`Fault::kind`] and [`Outcome::slot`]: a delay,
/// then each outcome.
pub const KINDS: [&str; 7] = [
    "delay",
    "status",
    "reset",
    "empty",
    "malformed",
    "truncated",
    "hang",
];

impl Outcome {
    /// Where the outcome's kind sits in [`KINDS`] (the match makes every new outcome take
    /// one; the index into `KINDS` makes it name one).
    pub fn slot(self) -> usize {
        match self {
            Outcome::Status { .. } => 1,
            Outcome::Reset => 2,
            Outcome::Empty => 3,
            Outcome::Malformed => 4,
            Outcome::Truncated => 5,
            Outcome::Hang => 6,
        }
    }

    /// The name metrics and logs use.
    pub fn kind(self) -> &'static str {
        KINDS[self.slot()]
    }
}

impl Fault {
    pub fn text(&self) -> &Arc<str> {
        &self.text
    }

    /// The kind metrics count this fault under: its outcome, else `delay`.
    pub fn kind(&self) -> &'static str {
        self.outcome.map(Outcome::kind).unwrap_or("delay")
    }

    /// The delay to apply this time, drawn from `rng` when it is random.
    pub fn draw_delay<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Duration> {
        self.delay.map(|d| d.draw(rng))
    }

    /// Whether a draw is needed (a random delay); fixed faults never touch an RNG.
    pub fn is_random(&self) -> bool {
        matches!(
            self.delay,
            Some(Delay::Uniform(..) | Delay::LogNormal { .. })
        )
    }
}

impl Delay {
    /// One draw. Uniform: `low + (high - low) × u`. Lognormal: `median × e^(σ·z)` with `z`
    /// standard normal (Box–Muller), at most `cap`.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Delay::Fixed(d) => d,
            Delay::Uniform(low, high) => {
                let u: f64 = rng.random();
                let span = high.saturating_sub(low).as_secs_f64();
                low.saturating_add(seconds(span * u))
            }
            Delay::LogNormal { median, sigma, cap } => {
                // 1 - u is in (0, 1], so its logarithm is finite.
                let u1: f64 = 1.0 - rng.random::<f64>();
                let u2: f64 = rng.random();
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                seconds(median.as_secs_f64() * (sigma * z).exp()).min(cap)
            }
        }
    }
}

/// Seconds as a duration, saturating instead of panicking on huge or odd values.
fn seconds(s: f64) -> Duration {
    if s.is_nan() || s <= 0.0 {
        Duration::ZERO
    } else {
        Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
    }
}

impl std::str::FromStr for Fault {
    type Err = FaultSyntaxError;

    fn from_str(text: &str) -> Result<Fault, FaultSyntaxError> {
        let text = text.trim();
        let mut delay = None;
        let mut outcome = None;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let lower = part.to_ascii_lowercase();
            if let Some(rest) = lower.strip_prefix("delay:") {
                if delay.is_some() {
                    return Err(bad(format!("{part:?}: only one delay per fault")));
                }
                delay = Some(parse_delay(rest.trim())?);
                continue;
            }
            let parsed = match lower.as_str() {
                "reset" => Outcome::Reset,
                "empty" => Outcome::Empty,
                "malformed" => Outcome::Malformed,
                "truncated" => Outcome::Truncated,
                "hang" => Outcome::Hang,
                _ => match lower.strip_prefix("status:") {
                    Some(rest) => parse_status(rest.trim())?,
                    None => return Err(bad(format!("{part:?} is not a fault"))),
                },
            };
            if outcome.is_some() {
                return Err(bad(format!(
                    "{part:?}: only one outcome per fault (a delay may come with it)"
                )));
            }
            outcome = Some(parsed);
        }
        if delay.is_none() && outcome.is_none() {
            return Err(bad("the fault is empty"));
        }
        Ok(Fault {
            delay,
            outcome,
            text: Arc::from(text),
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A duration of the fault syntax, by the crate's one rule ([`crate::time::parse_duration`]).
fn parse_duration(text: &str, what: &str) -> Result<Duration, FaultSyntaxError> {
    crate::time::parse_duration(text).map_err(|e| bad(format!("{what}: {e}")))
}

/// `name(args)` → `args`, when `text` is that call.
fn call<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn parse_delay(text: &str) -> Result<Delay, FaultSyntaxError> {
    if let Some(args) = call(text, "uniform") {
        let bounds: Vec<&str> = args.split(',').map(str::trim).collect();
        let [low, high] = bounds.as_slice() else {
            return Err(bad(format!(
                "uniform({args}) needs two bounds, low and high"
            )));
        };
        let low = parse_duration(low, "the low bound")?;
        let high = parse_duration(high, "the high bound")?;
        if low > high {
            return Err(bad(format!(
                "uniform({args}): the low bound is above the high bound"
            )));
        }
        return Ok(Delay::Uniform(low, high));
    }
    if let Some(args) = call(text, "lognormal") {
        let (mut median, mut sigma, mut cap) = (None, None, None);
        for pair in args.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(bad(format!("lognormal: {pair:?} is not key=value")));
            };
            match key.trim() {
                "median" => median = Some(parse_duration(value, "median")?),
                "cap" => cap = Some(parse_duration(value, "cap")?),
                "sigma" => {
                    let s: f64 = value
                        .trim()
                        .parse()
                        .map_err(|_| bad(format!("lognormal: sigma {value:?} is not a number")))?;
                    if !(0.0..=10.0).contains(&s) {
                        return Err(bad(format!(
                            "lognormal: sigma {s} must be between 0 and 10"
                        )));
                    }
                    sigma = Some(s);
                }
                other => {
                    return Err(bad(format!(
                        "lognormal: unknown parameter {other:?} (median, sigma, cap)"
                    )))
                }
            }
        }
        let (Some(median), Some(sigma), Some(cap)) = (median, sigma, cap) else {
            return Err(bad("lognormal needs median, sigma and cap"));
        };
        return Ok(Delay::LogNormal { median, sigma, cap });
    }
    parse_duration(text, "the delay").map(Delay::Fixed)
}

fn parse_status(text: &str) -> Result<Outcome, FaultSyntaxError> {
    let (code_text, params) = match text.split_once('(') {
        Some((code, rest)) => {
            let params = rest
                .strip_suffix(')')
                .ok_or_else(|| bad(format!("status:{text}: a `(` without its `)`")))?;
            (code.trim(), Some(params))
        }
        None => (text, None),
    };
    let code: u16 = code_text
        .parse()
        .ok()
        .filter(|c| FAULT_STATUSES.contains(c))
        .ok_or_else(|| {
            bad(format!(
                "status:{code_text}: the status must be one of 429, 500, 502, 503, 504"
            ))
        })?;
    let code = StatusCode::from_u16(code).map_err(|e| bad(e.to_string()))?;
    let mut retry_after = (code == StatusCode::TOO_MANY_REQUESTS).then_some(DEFAULT_RETRY_AFTER);
    for pair in params
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some((key, value)) if key.trim() == "retry-after" => {
                if !matches!(code.as_u16(), 429 | 503) {
                    return Err(bad(format!(
                        "status:{code_text}: retry-after goes with 429 or 503"
                    )));
                }
                retry_after = Some(parse_duration(value, "retry-after")?);
            }
            _ => {
                return Err(bad(format!(
                    "status:{text}: unknown parameter {pair:?} (retry-after)"
                )))
            }
        }
    }
    Ok(Outcome::Status { code, retry_after })
}

/// What happens to a journey's callback: set per scenario (`[callback] fault`), per journey
/// (`X-Mock-Callback-Fault` on create, or the admin API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackFault {
    /// Never sent: logged as lost with reason `fault`.
    pub drop: bool,
    /// Sent twice: two deliveries with the same body and `webhook-id`.
    pub duplicate: bool,
    /// Added to the callback's delay.
    pub delay: Option<Duration>,
    /// The auth header carries a key that is not `authKeyForCallback`.
    pub wrong_auth: bool,
    text: String,
}

impl CallbackFault {
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::str::FromStr for CallbackFault {
    type Err = FaultSyntaxError;

    fn from_str(text: &str) -> Result<CallbackFault, FaultSyntaxError> {
        let text = text.trim();
        let mut fault = CallbackFault {
            text: text.to_string(),
            ..CallbackFault::default()
        };
        let cbad = |m: String| FaultSyntaxError(format!("{m}; {CALLBACK_SYNTAX}"));
        let mut parts = 0;
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            parts += 1;
            let lower = part.to_ascii_lowercase();
            match lower.as_str() {
                "drop" => fault.drop = true,
                "duplicate" => fault.duplicate = true,
                "wrong_auth" | "wrong-auth" => fault.wrong_auth = true,
                _ => match lower.strip_prefix("delay:") {
                    Some(d) => {
                        fault.delay = Some(
                            crate::time::parse_duration(d)
                                .map_err(|e| cbad(format!("{part:?}: {e}")))?,
                        )
                    }
                    None => return Err(cbad(format!("{part:?} is not a callback fault"))),
                },
            }
        }
        if parts == 0 {
            return Err(cbad("the callback fault is empty".to_string()));
        }
        if fault.drop && parts > 1 {
            return Err(cbad(
                "drop cannot be combined: a dropped callback is never sent".to_string(),
            ));
        }
        Ok(fault)
    }
}

impl Serialize for CallbackFault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn parse(text: &str) -> Fault {
        text.parse().unwrap()
    }

    #[test]
    fn every_documented_form_parses() {
        assert_eq!(
            parse("delay:500ms").delay,
            Some(Delay::Fixed(Duration::from_millis(500)))
        );
        assert_eq!(
            parse("delay:uniform(100ms, 2s)").delay,
            Some(Delay::Uniform(
                Duration::from_millis(100),
                Duration::from_secs(2)
            ))
        );
        assert_eq!(
            parse("delay:lognormal(median=200ms,sigma=0.8,cap=5s)").delay,
            Some(Delay::LogNormal {
                median: Duration::from_millis(200),
                sigma: 0.8,
                cap: Duration::from_secs(5)
            })
        );
        assert_eq!(
            parse("status:429").outcome,
            Some(Outcome::Status {
                code: StatusCode::TOO_MANY_REQUESTS,
                retry_after: Some(DEFAULT_RETRY_AFTER)
            })
        );
        assert_eq!(
            parse("status:503(retry-after=30s)").outcome,
            Some(Outcome::Status {
                code: StatusCode::SERVICE_UNAVAILABLE,
                retry_after: Some(Duration::from_secs(30))
            })
        );
        for (text, outcome) in [
            ("reset", Outcome::Reset),
            ("EMPTY", Outcome::Empty),
            ("malformed", Outcome::Malformed),
            ("truncated", Outcome::Truncated),
            ("hang", Outcome::Hang),
        ] {
            assert_eq!(parse(text).outcome, Some(outcome));
        }
        let both = parse(" delay:2s; status:504 ");
        assert_eq!(both.delay, Some(Delay::Fixed(Duration::from_secs(2))));
        assert_eq!(both.kind(), "status");
        assert_eq!(both.to_string(), "delay:2s; status:504");
    }

    #[test]
    fn mistakes_are_named() {
        for (text, needle) in [
            ("", "empty"),
            ("explode", "\"explode\" is not a fault"),
            ("status:418", "429, 500"),
            ("status:500(retry-after=1s)", "retry-after goes with"),
            ("delay:5x", "not a duration"),
            ("delay:uniform(2s,1s)", "above"),
            ("delay:uniform(1s)", "two bounds"),
            ("delay:lognormal(median=1s,sigma=1)", "cap"),
            ("delay:lognormal(median=1s,sigma=-1,cap=2s)", "sigma"),
            ("reset; empty", "only one outcome"),
            ("delay:1s; delay:2s", "only one delay"),
        ] {
            let e = text.parse::<Fault>().unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(e.contains("write e.g."), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_bare_number_is_seconds_as_everywhere_else() {
        let fault: Fault = "delay:5".parse().unwrap();
        assert_eq!(fault.delay, Some(Delay::Fixed(Duration::from_secs(5))));
        let callback: CallbackFault = "delay:2".parse().unwrap();
        assert_eq!(callback.delay, Some(Duration::from_secs(2)));
    }

    #[test]
    fn random_delays_stay_within_their_bounds() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let uniform = Delay::Uniform(Duration::from_millis(100), Duration::from_millis(200));
        let lognormal = Delay::LogNormal {
            median: Duration::from_millis(200),
            sigma: 2.0,
            cap: Duration::from_millis(900),
        };
        let mut capped = 0;
        for _ in 0..2000 {
            let u = uniform.draw(&mut rng);
            assert!(u >= Duration::from_millis(100) && u <= Duration::from_millis(200));
            let l = lognormal.draw(&mut rng);
            assert!(l <= Duration::from_millis(900));
            capped += usize::from(l == Duration::from_millis(900));
        }
        assert!(capped > 0, "sigma 2 reaches a cap of 4.5 × the median");
    }

    #[test]
    fn callback_faults_parse_and_refuse_nonsense() {
        let f: CallbackFault = "duplicate; delay:2s; wrong_auth".parse().unwrap();
        assert!(f.duplicate && f.wrong_auth && !f.drop);
        assert_eq!(f.delay, Some(Duration::from_secs(2)));
        assert!("drop".parse::<CallbackFault>().unwrap().drop);
        assert!("drop; duplicate".parse::<CallbackFault>().is_err());
        assert!("explode".parse::<CallbackFault>().is_err());
        assert!("".parse::<CallbackFault>().is_err());
    }
}
