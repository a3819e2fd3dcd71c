//! Server settings, validated: what `serve` runs with, whether it came from flags, the
//! environment or a test.

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::callback::{AllowRule, CallbackSettings, OwnListener, SigningKey};
use crate::scenario::loader::CatalogueSource;

/// A duration flag or variable, by the crate's one rule (`time::parse_duration`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::time::parse_duration(text).map_err(|e| e.to_string())
}

/// A duration that must be above zero (`record --timeout`: a zero timeout fails every fetch).
pub fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!(
            "{text:?} is zero; give a duration above zero, e.g. 30s"
        )),
        d => Ok(d),
    }
}

/// `--bind` / `--admin-bind`: `HOST:PORT`, where HOST is an address (`0.0.0.0`, `[::1]`) or a
/// name resolved once at start (`localhost`). A name with several addresses binds the first
/// IPv4 one, else the first: one listener, as an address would give.
pub fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!(
            "{text:?} has no port; write HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080"
        ));
    };
    if host.is_empty() {
        return Err(format!(
            "{text:?} has no host; write HOST:PORT, e.g. 0.0.0.0{text} to listen everywhere"
        ));
    }
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "{port:?} in {text:?} is not a port (0 to 65535); write HOST:PORT"
        ));
    }
    let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("cannot resolve {host:?} in {text:?}: {e}"))?
        .collect();
    addresses
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addresses.first())
        .copied()
        .ok_or_else(|| format!("{host:?} in {text:?} resolves to no address"))
}

/// Everything the server needs besides the catalogue.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen; port 0 picks a free one (tests read the bound address back).
    pub bind: SocketAddr,
    pub source: CatalogueSource,
    /// The global seed every journey's fake data is derived from.
    pub seed: u64,
    /// Accepted `Authorization` tokens; empty accepts any non-empty token.
    pub tokens: Vec<String>,
    /// The scenario used when nothing else selects one.
    pub default_scenario: String,
    /// Answer 404 for a journey id that selects no scenario, as the real API does.
    pub strict: bool,
    /// Request bodies larger than this get a 413.
    pub max_body_bytes: usize,
    /// A connection with no request in flight and no full request head for this long is
    /// closed (see `server::connection`).
    pub header_read_timeout: Duration,
    /// A request body must have arrived in full this long after its head, or the request is
    /// answered 408 (`router`).
    pub body_read_timeout: Duration,
    /// A whole request — its head, its body and our work, not an injected delay or hang —
    /// must take no longer, or it is answered 408 (while its body is read) or its connection
    /// closed (`server::connection`).
    pub request_timeout: Duration,
    /// Open connections at most; one more is closed as soon as it is accepted. `None`: sized
    /// to the file-descriptor limit when the server starts (`server::limits`).
    pub max_connections: Option<usize>,
    /// Journey ids longer than this many bytes get a 414 (get-journey, the admin API).
    pub max_journey_id: usize,
    /// How many rendered bodies are kept, within a byte budget of 16 KiB per entry (see
    /// `BodyCache::new`).
    pub cache_entries: usize,
    /// Every this many fast-path bodies, one is rendered with Tera too and Tera's is served if
    /// they differ (`--verify-fast-path`); 0: never.
    pub verify_fast_path: u64,
    /// How long shutdown waits for open connections.
    pub shutdown_grace: Duration,
    /// The base of `journeyUrl` that users' browsers reach; `None`: `http://<bound address>`
    /// (`localhost` for an unspecified address such as 0.0.0.0).
    pub public_url: Option<String>,
    /// How many created journeys are kept; past it the oldest finished one is evicted first.
    pub max_journeys: usize,
    /// `--store`: this process's memory, or a Redis that replicas share.
    pub store: crate::shared::StoreSpec,
    /// A journey whose link is never opened completes on its own this long after creation;
    /// `None` never.
    pub auto_complete_after: Option<Duration>,
    /// The scenario that renders a journey that has not ended.
    pub in_progress_scenario: String,
    /// The scenario that renders a journey whose link or session expired.
    pub expired_scenario: String,
    /// Callback delivery: delay, timeout, retries, signing, queue.
    pub callbacks: CallbackSettings,
    /// Provider requests kept in the request journal; the oldest is dropped first (0: none).
    pub journal_entries: usize,
    /// The longest an injected delay or hang holds a request; a hang that reaches it closes
    /// the connection without an answer.
    pub fault_max_wait: Duration,
    /// Reload the catalogue when the files under `--scenarios` / `--templates` change.
    pub watch: bool,
    /// How often `--watch` looks at the files.
    pub watch_interval: Duration,
    /// Byte budgets, beside the entry counts above (see each structure for how it keeps
    /// within its own): the request journal, the body cache, the journey store.
    pub journal_bytes: u64,
    pub cache_bytes: u64,
    pub journey_bytes: u64,
    /// `--admin-token`: `/__admin/*` (but health) needs `Authorization: Bearer <token>`.
    pub admin_token: Option<AdminToken>,
    /// `--admin-bind`: the admin API on a listener of its own (the provider port then answers
    /// 404 under `/__admin/`). The server replaces it with the address actually bound.
    pub admin_bind: Option<SocketAddr>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            source: CatalogueSource::default(),
            seed: 0,
            tokens: Vec::new(),
            default_scenario: "success".to_string(),
            strict: false,
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: None,
            max_journey_id: 256,
            cache_entries: 1024,
            verify_fast_path: 0,
            shutdown_grace: Duration::from_secs(5),
            public_url: None,
            max_journeys: 10_000,
            store: crate::shared::StoreSpec::Memory,
            auto_complete_after: Some(Duration::from_secs(5)),
            in_progress_scenario: "in_progress".to_string(),
            expired_scenario: "link_expired".to_string(),
            callbacks: CallbackSettings::default(),
            journal_entries: 10_000,
            fault_max_wait: Duration::from_secs(300),
            watch: false,
            watch_interval: Duration::from_millis(500),
            journal_bytes: crate::journal::DEFAULT_BYTES,
            cache_bytes: crate::cache::DEFAULT_BYTES,
            journey_bytes: crate::journey::store::DEFAULT_BYTES,
            admin_token: None,
            admin_bind: None,
        }
    }
}

impl Config {
    /// A configuration for tests and embedding: port 0 on loopback, the bundled catalogue.
    pub fn ephemeral() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }

    /// The base of `journeyUrl` for a server bound to `bound`, without a trailing `/`.
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if bound.ip().is_unspecified() => format!("http://localhost:{}", bound.port()),
            None => format!("http://{bound}"),
        }
    }

    /// Whether `token` (the raw `Authorization` value) is accepted.
    pub fn accepts(&self, token: &str) -> bool {
        !token.is_empty() && (self.tokens.is_empty() || self.tokens.iter().any(|t| t == token))
    }
}

/// `--admin-token`: a secret that is never printed (its `Debug` is redacted) and is compared
/// in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token as given on the command line: visible ASCII (it travels in a header), not empty.
    pub fn parse(text: &str) -> Result<AdminToken, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("the admin token is empty".to_string());
        }
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(
                "the admin token must be visible ASCII without spaces (it is sent in a header)"
                    .to_string(),
            );
        }
        Ok(AdminToken(text.to_string()))
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        bool::from(self.0.as_bytes().ct_eq(presented))
    }
}

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

/// `--auto-complete-after`: a duration, or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoComplete(pub Option<Duration>);

impl std::str::FromStr for AutoComplete {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("never") {
            return Ok(AutoComplete(None));
        }
        crate::time::parse_duration(text)
            .map(|d| AutoComplete(Some(d)))
            .map_err(|e| format!("{e}, or never"))
    }
}

/// `--public-url`: an http(s) URL with a host (a trailing `/` is dropped).
pub fn parse_public_url(text: &str) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    if crate::journey::create::is_http_url(url) {
        Ok(url.to_string())
    } else {
        Err(format!(
            "{text:?} is not an http(s) URL with a host; write e.g. http://localhost:8080"
        ))
    }
}

/// A byte size flag: a number of bytes, or one with a binary unit (`512KiB`, `8MiB`, `1GiB`;
/// `K`, `M`, `G` mean the same).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        _ => {
            return Err(format!(
                "{text:?} is not a size; write a number of bytes or one with a binary unit: 512KiB, 8MiB, 1GiB"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("{text:?} is not a size; write e.g. 8MiB or 8388608"))
}

/// `--callback-allow`: one CIDR block, address, host name or `*.<domain>`.
pub fn parse_allow_rule(text: &str) -> Result<AllowRule, String> {
    text.parse()
}

/// `--callback-auth-header`: a valid HTTP header name.
pub fn parse_header_name(text: &str) -> Result<String, String> {
    hyper::header::HeaderName::try_from(text.trim())
        .map(|_| text.trim().to_string())
        .map_err(|_| format!("{text:?} is not an HTTP header name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_takes_addresses_and_host_names() {
        assert_eq!(
            parse_bind("0.0.0.0:8080"),
            Ok(SocketAddr::from(([0, 0, 0, 0], 8080)))
        );
        assert_eq!(
            parse_bind("[::1]:9"),
            "[::1]:9".parse::<SocketAddr>().map_err(|e| e.to_string())
        );
        let local = parse_bind("localhost:8080").unwrap();
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 8080);
        for (bad, needle) in [
            ("localhost", "has no port"),
            (":8080", "has no host"),
            ("localhost:http", "is not a port"),
            ("localhost:70000", "is not a port"),
            ("no-such-host.invalid:8080", "cannot resolve"),
        ] {
            let e = parse_bind(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn positive_durations_refuse_zero() {
        assert_eq!(parse_positive_duration("2s"), Ok(Duration::from_secs(2)));
        for zero in ["0", "0s", "0ms"] {
            let e = parse_positive_duration(zero).unwrap_err();
            assert!(e.contains("above zero"), "{e}");
        }
    }

    #[test]
    fn auto_complete_reads_durations_and_never() {
        assert_eq!("never".parse(), Ok(AutoComplete(None)));
        assert_eq!("5s".parse(), Ok(AutoComplete(Some(Duration::from_secs(5)))));
        assert!("soon".parse::<AutoComplete>().is_err());
    }

    #[test]
    fn sizes_read_bytes_and_binary_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("8MiB"), Ok(8 << 20));
        assert_eq!(parse_bytes(" 512 KiB "), Ok(512 << 10));
        assert_eq!(parse_bytes("1g"), Ok(1 << 30));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["", "MiB", "8MB", "-1", "1.5MiB", "99999999999999999999G"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_base_uses_the_flag_or_the_bound_address() {
        let mut config = Config::default();
        let bound: SocketAddr = "127.0.0.1:9999".parse().unwrap();
        assert_eq!(config.public_base(bound), "http://127.0.0.1:9999");
        assert_eq!(
            config.public_base("0.0.0.0:8080".parse().unwrap()),
            "http://localhost:8080"
        );
        config.public_url = Some("https://kyc.example.test/".into());
        assert_eq!(config.public_base(bound), "https://kyc.example.test");
        assert!(parse_public_url("ftp://x").is_err());
        assert_eq!(parse_public_url("http://h:1/").unwrap(), "http://h:1");
        assert!(parse_header_name("X Bad").is_err());
    }

    #[test]
    fn admin_tokens_are_checked_matched_and_never_printed() {
        let token = AdminToken::parse(" s3cret-T0ken ").unwrap();
        assert!(token.matches(b"s3cret-T0ken"));
        assert!(!token.matches(b"s3cret-T0kem"));
        assert!(!token.matches(b"s3cret"));
        assert_eq!(format!("{token:?}"), "AdminToken(<redacted>)");
        assert!(AdminToken::parse("  ").is_err());
        assert!(AdminToken::parse("two words").is_err());
    }
}
