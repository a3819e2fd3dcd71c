//! Server settings, validated: what `serve` runs with, whether it came from flags, the
//! environment or a test.

use std::net::SocketAddr;
use std::time::Duration;

use crate::scenario::loader::CatalogueSource;

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
    /// A connection that has not sent a full request head within this is closed.
    pub header_read_timeout: Duration,
    /// How many rendered bodies are kept; the oldest is dropped first.
    pub cache_entries: usize,
    /// How long shutdown waits for open connections.
    pub shutdown_grace: Duration,
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
            cache_entries: 4096,
            shutdown_grace: Duration::from_secs(5),
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

    /// Whether `token` (the raw `Authorization` value) is accepted.
    pub fn accepts(&self, token: &str) -> bool {
        !token.is_empty() && (self.tokens.is_empty() || self.tokens.iter().any(|t| t == token))
    }
}
