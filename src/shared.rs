//! Where the state lives that replicas share: `--store` (`memory`, this process alone, or
//! `redis://HOST:PORT[/DB]`) and, for Redis, the connections to it.
//!
//! The store interfaces above (`journey::store`, the callback schedule, the journal, the fault
//! rules) are synchronous: a surface decides under a store's closure and answers without an
//! `.await`. So [`Redis`] speaks to the server with the `redis` crate's blocking connection,
//! one per caller at a time from a small pool, each with a read, write and connect timeout:
//! no call waits longer than [`TIMEOUT`], and no lock is held while one does (a connection is
//! taken out of the pool, used, and put back).
//!
//! When a call fails the store is *degraded*: for [`RETRY_AFTER`] every call fails at once
//! (so a lost Redis costs a request nothing, not a timeout), then the next call tries again;
//! the first that succeeds ends the degraded state. Health reports it, and the background
//! loops that call Redis anyway (callbacks, fault and reset sync) make it recover by itself
//! within a fraction of a second of Redis coming back.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use crate::time::now_millis;

/// The longest any one Redis call may take: connecting, writing or reading.
pub const TIMEOUT: Duration = Duration::from_secs(1);

/// How long a failed call makes every later one fail at once, before the next try.
pub const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Connections kept open for reuse; more are opened when needed and closed after use.
const POOL: usize = 16;

/// `--store`: where created journeys, callbacks, the journal and fault rules live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreSpec {
    /// In this process (the default): nothing is shared.
    #[default]
    Memory,
    /// On a Redis server that every replica names the same way.
    Redis(RedisUrl),
}

/// A checked `redis://HOST:PORT[/DB]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    host: String,
    port: u16,
    db: i64,
}

impl RedisUrl {
    /// The URL as given (for messages: it holds no password, see `parse`).
    pub fn as_str(&self) -> &str {
        &self.url
    }
}

impl std::fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<StoreSpec, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("memory") {
            return Ok(StoreSpec::Memory);
        }
        let usage = "write memory or redis://HOST:PORT[/DB], e.g. redis://127.0.0.1:6379/0";
        let Some(rest) = text.strip_prefix("redis://") else {
            return Err(format!("{text:?} is not a store; {usage}"));
        };
        if rest.contains('@') || rest.contains('?') || rest.contains('#') {
            return Err(format!(
                "{text:?}: credentials and parameters are not supported; {usage}"
            ));
        }
        let (authority, db) = match rest.split_once('/') {
            Some((authority, "")) => (authority, 0),
            Some((authority, db)) => match db.parse::<i64>() {
                Ok(n) if (0..=15_999).contains(&n) => (authority, n),
                _ => {
                    return Err(format!(
                        "{text:?}: the database {db:?} is not a number; {usage}"
                    ))
                }
            },
            None => (rest, 0),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                match port.parse::<u16>() {
                    Ok(p) if p > 0 => (host, p),
                    _ => {
                        return Err(format!(
                            "{text:?}: the port {port:?} is not a port; {usage}"
                        ))
                    }
                }
            }
            _ => (authority, 6379),
        };
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(format!("{text:?} names no host; {usage}"));
        }
        Ok(StoreSpec::Redis(RedisUrl {
            url: text.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            db,
        }))
    }
}

impl std::fmt::Display for StoreSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSpec::Memory => f.write_str("memory"),
            StoreSpec::Redis(url) => url.fmt(f),
        }
    }
}

/// Start-up: a Redis store must answer before anything is served; the error names the URL.
pub fn check(spec: &StoreSpec) -> Result<(), String> {
    let StoreSpec::Redis(url) = spec else {
        return Ok(());
    };
    Redis::new(url)
        .and_then(|redis| redis.check())
        .map_err(|e| format!("--store {url}: cannot reach Redis ({})", e.detail))
}

/// A Redis call that did not succeed, in words for a 503 and the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the shared store {url} is unavailable ({detail}); the mock recovers by itself when it is back"
)]
pub struct Unavailable {
    pub url: String,
    pub detail: String,
}

/// Connections to one Redis server.
pub struct Redis {
    client: redis::Client,
    url: RedisUrl,
    pool: Mutex<Vec<redis::Connection>>,
    /// Epoch milliseconds before which calls fail at once; 0: healthy.
    failing_until: AtomicI64,
    degraded: AtomicBool,
    /// This process among the replicas: attempts in the callback log carry it.
    replica: String,
}

impl Redis {
    /// Connections to `url` (none is opened yet: see [`Redis::check`]).
    pub fn new(url: &RedisUrl) -> Result<Redis, Unavailable> {
        let target = format!("redis://{}:{}/{}", bracketed(&url.host), url.port, url.db);
        let client = redis::Client::open(target).map_err(|e| Unavailable {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        Ok(Redis {
            client,
            url: url.clone(),
            pool: Mutex::new(Vec::new()),
            failing_until: AtomicI64::new(0),
            degraded: AtomicBool::new(false),
            replica: replica_name(),
        })
    }

    /// The URL, for messages.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// This replica's name: host name and process id, and a random part.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// Whether the last call failed and no call has succeeded since.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    /// Start-up: one `PING`, so that a wrong URL or a Redis that is not running is said at
    /// once instead of on the first request.
    pub fn check(&self) -> Result<(), Unavailable> {
        self.call(|c| redis::cmd("PING").query::<String>(c))
            .map(|_| ())
    }

    /// Run `f` on a pooled connection, within the timeouts; a failure marks the store
    /// degraded, and while it is, calls fail at once until [`RETRY_AFTER`] has passed.
    pub fn call<T>(
        &self,
        mut f: impl FnMut(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Unavailable> {
        let until = self.failing_until.load(Ordering::Relaxed);
        if until != 0 && now_millis() < until {
            return Err(self.unavailable("it did not answer a moment ago"));
        }
        let pooled = self.lock().pop();
        let reused = pooled.is_some();
        let mut connection = match pooled {
            Some(c) => c,
            None => self.connect().map_err(|e| self.failed(&e))?,
        };
        let mut result = f(&mut connection);
        if reused && result.as_ref().is_err_and(|e| e.is_connection_dropped()) {
            // A pooled connection that died while idle (Redis restarted, or closed it): the
            // server that took the call never saw it, so it goes once more on a fresh one,
            // rather than a good Redis answering 503 for the first call after its restart.
            self.lock().clear();
            connection = self.connect().map_err(|e| self.failed(&e))?;
            result = f(&mut connection);
        }
        match result {
            Ok(value) => {
                if self.degraded.swap(false, Ordering::Relaxed) {
                    tracing::info!(store = %self.url, "the shared store answers again");
                }
                self.failing_until.store(0, Ordering::Relaxed);
                let mut pool = self.lock();
                if pool.len() < POOL {
                    pool.push(connection);
                }
                Ok(value)
            }
            // An error Redis answered (a script's, a wrong type) leaves the connection good.
            Err(e)
                if !(e.is_io_error()
                    || e.is_timeout()
                    || e.is_connection_dropped()
                    || e.is_unrecoverable_error()) =>
            {
                let mut pool = self.lock();
                if pool.len() < POOL {
                    pool.push(connection);
                }
                tracing::error!(store = %self.url, error = %e, "the shared store refused a call");
                Err(self.unavailable(&e.to_string()))
            }
            Err(e) => {
                // The connection may be half-way through a reply: never reuse it, nor the
                // others, which are likely as dead.
                self.lock().clear();
                Err(self.failed(&e))
            }
        }
    }

    fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let connection = self.client.get_connection_with_timeout(TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        connection.set_write_timeout(Some(TIMEOUT))?;
        Ok(connection)
    }

    fn failed(&self, e: &redis::RedisError) -> Unavailable {
        let wait = i64::try_from(RETRY_AFTER.as_millis()).unwrap_or(250);
        self.failing_until
            .store(now_millis().saturating_add(wait), Ordering::Relaxed);
        if !self.degraded.swap(true, Ordering::Relaxed) {
            tracing::error!(store = %self.url, error = %e, "the shared store is unreachable: created journeys and callbacks answer 503 until it is back");
        }
        self.unavailable(&e.to_string())
    }

    fn unavailable(&self, detail: &str) -> Unavailable {
        Unavailable {
            url: self.url.to_string(),
            detail: detail.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<redis::Connection>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// An IPv6 address in brackets, as a URL writes it.
fn bracketed(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// `host-pid-xxxx`: readable in the callback log, unique among replicas that share a host
/// name (containers restarted with the same one).
fn replica_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "otk-mock".to_string());
    let salt: u16 = rand::random();
    format!("{host}-{}-{salt:04x}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_specs_parse_or_say_what_to_write() {
        assert_eq!("memory".parse::<StoreSpec>(), Ok(StoreSpec::Memory));
        let StoreSpec::Redis(url) = "redis://cache:6380/2".parse::<StoreSpec>().unwrap() else {
            panic!("a redis url")
        };
        assert_eq!((url.host.as_str(), url.port, url.db), ("cache", 6380, 2));
        let StoreSpec::Redis(url) = "redis://localhost".parse::<StoreSpec>().unwrap() else {
            panic!("a redis url")
        };
        assert_eq!((url.port, url.db), (6379, 0));
        for bad in [
            "redis:/x",
            "mysql://db",
            "redis://",
            "redis://:6379",
            "redis://h:port",
            "redis://h:0",
            "redis://h:1/x",
            "redis://user:pw@h:1",
            "redis://h:1/0?x=1",
        ] {
            let error = bad.parse::<StoreSpec>().unwrap_err();
            assert!(error.contains("redis://HOST:PORT"), "{bad}: {error}");
        }
    }
}
