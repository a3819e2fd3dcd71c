//! The library's API for Rust tests: start a mock on a free port in one line, point the app
//! under test at [`MockServer::uri`], then verify what it asked, drive its journeys and read
//! the callbacks it was sent. Dropping the server stops it.
//!
//! [`MockServer`] runs the same server as `otk-mock serve` on a thread and runtime of its own,
//! so it works under any test runtime (`#[tokio::test]`'s current-thread one included) and
//! beside blocking clients. [`MockApp`] is the same mock without a socket: it answers
//! `hyper::Request`s (`http::Request`) in process ([`MockApp::oneshot`]), exactly as the server would, for tests
//! that need no network. A `MockServer` derefs to its `MockApp`, so every verb below works
//! on both.
//!
//! The verbs are `async` because a shared store (Redis, for replicas) will answer them over
//! the network; today they answer at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::{Request, Response};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::app::{named_scenario, App};
use crate::callback::log::{Attempt, Lost};
use crate::callback::{SigningKey, Stats};
use crate::catalogue::Catalogue;
use crate::config::Config;
use crate::journal::{Filter, RecordedRequest};
use crate::journey::record::{CallbackStatus, Ending, JourneyRecord};
use crate::journey::JourneyError;
use crate::wire::Body;

/// A running mock of the provider, on `127.0.0.1` and a free port. Dropping it stops it.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otk_mock::{Filter, MockServer};
///
/// let server = MockServer::start().await;
/// // The app under test would be configured with this base URL instead of the provider's.
/// let url = format!("{}/api/v3/otk-service/get-journey/vpn_flagged-1", server.uri());
/// # let _ = send(&url).await;
/// assert_eq!(server.request_count(Filter::journey("vpn_flagged-1")).await, 1);
/// # }
/// # async fn send(url: &str) -> std::io::Result<()> {
/// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// #     let rest = url.strip_prefix("http://").unwrap();
/// #     let (host, path) = rest.split_at(rest.find('/').unwrap());
/// #     let mut stream = tokio::net::TcpStream::connect(host).await?;
/// #     let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
/// #     stream.write_all(head.as_bytes()).await?;
/// #     let mut reply = Vec::new();
/// #     stream.read_to_end(&mut reply).await?;
/// #     assert!(reply.starts_with(b"HTTP/1.1 200"));
/// #     Ok(())
/// # }
/// ```
pub struct MockServer {
    app: MockApp,
    /// The address asked for.
    address: SocketAddr,
    /// Dropped (or sent) to stop the server's thread.
    stop: Option<oneshot::Sender<()>>,
    /// Resolves once the server's thread has shut the server down.
    stopped: Option<oneshot::Receiver<()>>,
}

/// The mock without a socket: answers requests in process, as the server would.
///
/// Made by [`MockServerBuilder::in_process`]; callbacks and journey timers run on the Tokio
/// runtime it was made in, so make it inside one.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otk_mock::MockServer;
///
/// let app = MockServer::builder().in_process().unwrap();
/// let request = hyper::Request::post("/api/v3/otk-service/get-journey/liveness_failed-7")
///     .header("authorization", "any-token")
///     .body(String::new())
///     .unwrap();
/// let response = app.oneshot(request).await;
/// assert_eq!(response.status(), 200);
/// let body = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
/// let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
/// assert_eq!(json["result"]["selfieAnalysis"]["passiveLiveliness"]["liveness"], false);
/// # }
/// ```
#[derive(Clone)]
pub struct MockApp {
    app: Arc<App>,
}

/// How to start a [`MockServer`] or make a [`MockApp`]: the bundled catalogue, seed 0 and the
/// server's defaults unless told otherwise.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), otk_mock::StartError> {
/// use std::time::Duration;
/// use otk_mock::MockServer;
///
/// let server = MockServer::builder()
///     .seed(7)
///     .default_scenario("face_mismatch")
///     .auto_complete_after(None)
///     .callback_delay(Duration::from_millis(10))
///     .start()
///     .await?;
/// assert!(server.uri().starts_with("http://127.0.0.1:"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct MockServerBuilder {
    config: Config,
    signing_secret: Option<String>,
    store: Option<String>,
}

/// Why a mock did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The scenarios or templates did not load; one line per problem, naming its file.
    #[error("the catalogue did not load:\n{0}")]
    Catalogue(String),
    /// A setting is not usable (a default scenario the catalogue lacks, a bad secret...).
    #[error("{0}")]
    Setting(String),
    /// The address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// Why it could not be bound.
        source: std::io::Error,
    },
    /// The server's thread or runtime could not be started.
    #[error("cannot start the server's runtime: {0}")]
    Runtime(std::io::Error),
}

/// Why a verb on a journey or a fault rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MockError {
    /// No journey with that id was created (or bound) on this mock.
    #[error("journey {0} was not created here")]
    JourneyNotFound(String),
    /// The journey has already ended; nothing was changed.
    #[error("journey {id} has already ended ({state})")]
    JourneyEnded {
        /// The journey.
        id: String,
        /// Its state: `completed`, `terminated` or `expired`.
        state: &'static str,
    },
    /// The catalogue has no scenario of that name or alias.
    #[error("{0}")]
    UnknownScenario(String),
    /// The request cannot be done as asked (a scenario that does not end a journey, a fault
    /// rule that does not parse...); the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The shared store (`--store redis://…`) is out of reach; the message names it.
    #[error("{0}")]
    Unavailable(String),
}

/// A created journey, as the mock keeps it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JourneyInfo {
    /// The journey id (`journeyId`).
    pub id: String,
    /// The hosted page, `journeyUrl` of the create call.
    pub url: String,
    /// Where it is in its lifecycle.
    pub state: JourneyState,
    /// The scenario it is bound to (it ends with this one unless completion names another).
    pub scenario: String,
    /// The scenario it ended with, once it has.
    pub outcome: Option<String>,
    /// What ended it, once something has.
    pub ended_by: Option<EndedBy>,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// When it ended, epoch milliseconds.
    pub completed_at: Option<i64>,
    /// Where its callback stands.
    pub callback_status: CallbackStatus,
    /// `callbackSent`: whether any delivery got a 2xx.
    pub callback_sent: bool,
    /// Callback attempts made, over every delivery.
    pub callback_attempts: u32,
    /// The document family it was created with (`X-Mock-Document`, else `userInfo.id`), by
    /// name; `None` leaves it to the scenario and the journey id.
    pub document: Option<String>,
    /// The IP check it was created with (`X-Mock-Ip-Check`); `None` leaves it to the scenario.
    pub ip_check: Option<bool>,
}

pub use crate::journey::record::{Ending as EndedBy, State as JourneyState};

/// The callback log: every attempt, every callback lost, and the counters.
///
/// The counters balance: `created = delivered + failed + cancelled + pending`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use otk_mock::MockServer;
///
/// let app = MockServer::builder().in_process().unwrap();
/// let stats = app.callbacks().await.stats;
/// assert_eq!(
///     stats.created,
///     stats.delivered + stats.failed + stats.cancelled + stats.pending as u64
/// );
/// # }
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CallbackLog {
    /// Every attempt, oldest first (bounded by `--callback-log-entries`).
    pub attempts: Vec<Attempt>,
    /// Callbacks that were never attempted to the end (reason `fault`, `shutdown`, `reset`,
    /// `evicted`, `error`).
    pub lost: Vec<Lost>,
    /// The counters: created, delivered, failed, cancelled, pending (queued and retrying),
    /// reserved, refused, undelivered.
    pub stats: Stats,
}

/// A fault rule, as `POST /__admin/faults` takes it: a fault in the crate's one syntax
/// (`status:503`, `delay:2s; reset`...), for every provider request or only some.
///
/// ```
/// use otk_mock::FaultRule;
///
/// // The next two get-journey calls for this journey time out at the gateway.
/// let rule = FaultRule::new("status:504").journey("H3ZJ2Z79NL").times(2);
/// # let _ = rule;
/// ```
#[derive(Debug, Clone, Default)]
pub struct FaultRule {
    fields: Map<String, Value>,
}

impl FaultRule {
    /// A rule that injects `fault` into every provider request.
    pub fn new(fault: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("inject".into(), fault.into());
        FaultRule { fields }
    }

    /// Only into requests for this journey id.
    pub fn journey(mut self, id: &str) -> Self {
        self.fields.insert("journeyId".into(), id.into());
        self
    }

    /// Only into calls of this route: `get-journey` or `create-journey-url`.
    pub fn route(mut self, route: &str) -> Self {
        self.fields.insert("route".into(), route.into());
        self
    }

    /// Only with this probability (0 to 1), drawn from the rule's own seeded RNG.
    pub fn probability(mut self, p: f64) -> Self {
        self.fields.insert("probability".into(), p.into());
        self
    }

    /// The seed of the rule's draws (default: derived from the mock's seed and the rule).
    pub fn seed(mut self, seed: u64) -> Self {
        self.fields.insert("seed".into(), seed.into());
        self
    }

    /// Only the first `n` requests the rule matches.
    pub fn times(mut self, n: u64) -> Self {
        self.fields.insert("times".into(), n.into());
        self
    }
}

/// The base of `journeyUrl` in process, where there is no address to name.
const IN_PROCESS_URL: &str = "http://otk-mock.invalid";

impl Default for MockServerBuilder {
    fn default() -> Self {
        MockServerBuilder {
            config: Config::ephemeral(),
            signing_secret: None,
            store: None,
        }
    }
}

impl MockServerBuilder {
    /// The seed of all generated data (default 0): the same seed and journey id give the same
    /// body.
    pub fn seed(mut self, seed: u64) -> Self {
        self.config.seed = seed;
        self
    }

    /// Read scenarios (`*.toml`) from this directory instead of the bundled ones.
    pub fn scenarios_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.source.scenarios_dir = Some(dir.into());
        self
    }

    /// Read templates (`**/*.tera`) from this directory instead of the bundled ones.
    pub fn templates_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.config.source.templates_dir = Some(dir.into());
        self
    }

    /// The scenario used when neither the journey id nor `X-Mock-Scenario` selects one
    /// (default `success`).
    pub fn default_scenario(mut self, name: &str) -> Self {
        self.config.default_scenario = name.to_string();
        self
    }

    /// Answer the provider's 404 for a journey id that selects no scenario.
    pub fn strict(mut self, strict: bool) -> Self {
        self.config.strict = strict;
        self
    }

    /// Accept only this `Authorization` token (call again for more); without any, every
    /// non-empty token is accepted.
    pub fn token(mut self, token: &str) -> Self {
        self.config.tokens.push(token.trim().to_string());
        self
    }

    /// How long after creation a journey whose link was never opened completes by itself
    /// (default 5 s); `None`: only the hosted page or [`MockApp::complete`] ends it.
    pub fn auto_complete_after(mut self, after: Option<Duration>) -> Self {
        self.config.auto_complete_after = after;
        self
    }

    /// Delay before a callback's first attempt, unless the scenario or the create call's
    /// `X-Mock-Callback-Delay` sets one (default 0).
    pub fn callback_delay(mut self, delay: Duration) -> Self {
        self.config.callbacks.delay = delay;
        self
    }

    /// How long each callback attempt may take (default 10 s).
    pub fn callback_timeout(mut self, timeout: Duration) -> Self {
        self.config.callbacks.timeout = timeout;
        self
    }

    /// Attempts per callback (at least 1; default 8), and the wait after the first failed one,
    /// doubled after each further one up to `max_backoff` (defaults 1 s and 60 s).
    pub fn callback_retries(
        mut self,
        attempts: u32,
        backoff: Duration,
        max_backoff: Duration,
    ) -> Self {
        self.config.callbacks.max_attempts = attempts.max(1);
        self.config.callbacks.backoff_initial = backoff;
        self.config.callbacks.backoff_max = max_backoff.max(backoff);
        self
    }

    /// Callback intake slots (default 10,000): journeys with a `callbackUrl` that are running,
    /// plus callbacks waiting for their first attempt. When all are taken, create-journey-url
    /// answers 503 with `Retry-After`.
    pub fn callback_queue(mut self, slots: usize) -> Self {
        self.config.callbacks.queue_capacity = slots;
        self
    }

    /// Sign callbacks with Standard Webhooks headers: `whsec_<base64>` or any other text.
    pub fn callback_signing_secret(mut self, secret: &str) -> Self {
        self.signing_secret = Some(secret.to_string());
        self
    }

    /// Share journeys, callbacks, the journal and fault rules with other mocks through Redis
    /// (`redis://HOST:PORT[/DB]`), as `otk-mock serve --store` does; `memory` (the default)
    /// keeps them in this mock. Checked when the mock starts: a bad URL or a Redis that does
    /// not answer is a [`StartError::Setting`] naming it.
    ///
    /// ```no_run
    /// # async fn two() -> Result<(), otk_mock::StartError> {
    /// use otk_mock::MockServer;
    ///
    /// let a = MockServer::builder().store("redis://127.0.0.1:6379/0").start().await?;
    /// let b = MockServer::builder().store("redis://127.0.0.1:6379/0").start().await?;
    /// // A journey created through a.uri() is known, completed and called back through b.uri().
    /// # let _ = (a, b);
    /// # Ok(())
    /// # }
    /// ```
    pub fn store(mut self, store: &str) -> Self {
        self.store = Some(store.to_string());
        self
    }

    /// The base of `journeyUrl` that users' browsers reach (default: the server's own URI).
    pub fn public_url(mut self, url: &str) -> Self {
        self.config.public_url = Some(url.trim_end_matches('/').to_string());
        self
    }

    /// Render every `n`-th body the fast path writes with Tera too, and answer Tera's on a
    /// difference, as `otk-mock serve --verify-fast-path N` does (0, the default: never).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), otk_mock::StartError> {
    /// let server = otk_mock::MockServer::builder().verify_fast_path(1).start().await?;
    /// # drop(server);
    /// # Ok(())
    /// # }
    /// ```
    pub fn verify_fast_path(mut self, n: u64) -> Self {
        self.config.verify_fast_path = n;
        self
    }

    /// Every setting at once, as `otk-mock serve` has them (for this crate's own tests).
    #[doc(hidden)]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// The settings, checked, and the catalogue, loaded.
    fn prepare(self) -> Result<(Config, Catalogue), StartError> {
        let mut config = self.config;
        if let Some(secret) = &self.signing_secret {
            let key = SigningKey::parse(secret)
                .map_err(|e| StartError::Setting(format!("callback signing secret: {e}")))?;
            config.callbacks.signing_key = Some(key);
        }
        if let Some(store) = &self.store {
            config.store = store
                .parse()
                .map_err(|e: String| StartError::Setting(format!("store: {e}")))?;
        }
        let catalogue = Catalogue::load(&config.source, config.seed)
            .map_err(|errors| StartError::Catalogue(errors.to_string()))?;
        crate::app::check_catalogue(&config, &catalogue).map_err(StartError::Setting)?;
        crate::shared::check(&config.store).map_err(StartError::Setting)?;
        Ok((config, catalogue))
    }

    /// The mock without a socket, on the current Tokio runtime (where its callbacks and
    /// timers run). With no socket there is no hosted page to link to: `journeyUrl`s start
    /// with [`MockServerBuilder::public_url`] if set, else with `http://otk-mock.invalid`
    /// (a name that never resolves, RFC 2606).
    pub fn in_process(self) -> Result<MockApp, StartError> {
        let (mut config, catalogue) = self.prepare()?;
        if config.public_url.is_none() {
            config.public_url = Some(IN_PROCESS_URL.to_string());
        }
        let app = Arc::new(App::new(config, catalogue));
        app.start_replica_sync();
        Ok(MockApp { app })
    }

    /// Start the server on `127.0.0.1` and a free port, on a thread of its own; returns once
    /// it accepts connections.
    pub async fn start(self) -> Result<MockServer, StartError> {
        let (config, catalogue) = self.prepare()?;
        let (ready, started) = oneshot::channel();
        let (stop, stop_asked) = oneshot::channel::<()>();
        let (done, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("otk-mock".to_string())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(StartError::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let address = config.bind;
                    let server = match crate::server::start(config, catalogue).await {
                        Ok(server) => server,
                        Err(source) => {
                            let _ = ready.send(Err(StartError::Bind { address, source }));
                            return;
                        }
                    };
                    let _ = ready.send(Ok((server.local_addr(), server.app().clone())));
                    // A drop of the MockServer drops the sender: that stops it too.
                    let _ = stop_asked.await;
                    server.shutdown().await;
                });
                let _ = done.send(());
            })
            .map_err(StartError::Runtime)?;
        drop(thread);
        let (address, app) = started.await.map_err(|_| {
            StartError::Runtime(std::io::Error::other("the server's thread ended early"))
        })??;
        Ok(MockServer {
            app: MockApp { app },
            address,
            stop: Some(stop),
            stopped: Some(stopped),
        })
    }
}

impl MockServer {
    /// A mock with the bundled catalogue and every default, on a free port.
    ///
    /// # Panics
    ///
    /// If it cannot start: no port free on 127.0.0.1, or no thread or runtime can be made.
    /// [`MockServer::builder`] returns those as errors instead.
    pub async fn start() -> MockServer {
        match MockServer::builder().start().await {
            Ok(server) => server,
            Err(e) => panic!("otk-mock could not start: {e}"),
        }
    }

    /// A builder, to change the catalogue, seed or settings first.
    pub fn builder() -> MockServerBuilder {
        MockServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`: the base URL to give the app under test.
    pub fn uri(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Stop the server and wait until it has: open requests finish (within the shutdown
    /// grace) and callbacks due within the drain window are attempted. Dropping the server
    /// stops it too, without waiting.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }
}

impl std::ops::Deref for MockServer {
    type Target = MockApp;

    fn deref(&self) -> &MockApp {
        &self.app
    }
}

impl std::fmt::Debug for MockServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockServer")
            .field("address", &self.address)
            .finish()
    }
}

impl std::fmt::Debug for MockApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MockApp")
    }
}

impl MockApp {
    /// Answer one request without a socket, exactly as the server answers it on one. The
    /// URI's path is what matters (`/api/v3/otk-service/get-journey/ID`); connection faults
    /// (`reset`, `empty`, `hang`), which need a socket, answer 502 as a gateway would.
    pub async fn oneshot<B>(&self, request: Request<B>) -> Response<Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        crate::router::oneshot(&self.app, request).await
    }

    /// The provider requests recorded that `filter` accepts, oldest first: all of them that
    /// the journal keeps. Unlike `GET /__admin/requests`, which answers a page at a time so
    /// that no answer grows with the journal, this is not paged: it is a copy in process, and
    /// the journal's byte budget (`--journal-bytes`) bounds it.
    pub async fn requests(&self, filter: Filter) -> Vec<RecordedRequest> {
        self.app.requests(&filter)
    }

    /// How many provider requests recorded `filter` accepts: "did my app fetch this journey
    /// exactly once?". Requests are recorded before they are answered, so a count taken after
    /// the app got its answer includes that request.
    pub async fn request_count(&self, filter: Filter) -> usize {
        self.app.request_count(&filter)
    }

    /// A created journey, brought up to date (a deadline that has passed is applied first).
    pub async fn journey(&self, id: &str) -> Option<JourneyInfo> {
        self.app.journeys().get(id).map(|r| self.info(&r))
    }

    /// Every created journey, oldest first (read from the store a page at a time, so that
    /// the copy never holds the store's lock for long; the store's bounds bound it).
    pub async fn journeys(&self) -> Vec<JourneyInfo> {
        let list = self.app.journeys().list();
        list.iter().map(|r| self.info(r)).collect()
    }

    /// Bind a scenario to a journey: a running one will end with it; an id never created
    /// becomes a journey that has ended with it (or is in progress, for a scenario that does
    /// not end a journey).
    pub async fn bind(&self, id: &str, scenario: &str) -> Result<JourneyInfo, MockError> {
        let catalogue = self.app.catalogue();
        let scenario = named_scenario(&catalogue, scenario, "scenario")
            .map_err(|e| MockError::UnknownScenario(e.message))?;
        let (record, _) = self.app.journeys().bind(id, scenario)?;
        Ok(self.info(&record))
    }

    /// End a running journey now, as the hosted page would: with `scenario` (which must end
    /// a journey), or with the scenario it is bound to when `None`. Its callback goes out.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), otk_mock::MockError> {
    /// use otk_mock::{JourneyState, MockServer};
    ///
    /// let server = MockServer::start().await;
    /// // A journey the app would have created with create-journey-url:
    /// server.bind("H3ZJ2Z79NL", "in_progress").await?;
    /// let ended = server.complete("H3ZJ2Z79NL", "liveness_failed").await?;
    /// assert_eq!(ended.state, JourneyState::Completed);
    /// assert_eq!(ended.outcome.as_deref(), Some("liveness_failed"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn complete<'a>(
        &self,
        id: &str,
        scenario: impl Into<Option<&'a str>>,
    ) -> Result<JourneyInfo, MockError> {
        let catalogue = self.app.catalogue();
        let chosen = match scenario.into() {
            Some(name) => Some(
                named_scenario(&catalogue, name, "scenario")
                    .map_err(|e| MockError::UnknownScenario(e.message))?,
            ),
            None => None,
        };
        let record = self.app.journeys().complete(id, chosen, Ending::Admin)?;
        Ok(self.info(&record))
    }

    /// The callback log: every attempt (with status, error and duration), the callbacks
    /// lost, and the counters; everything the log keeps, not a page (the log's bounds,
    /// `--callback-log-entries` and `--callback-log-bytes`, bound it).
    ///
    /// An attempt is logged once its outcome is applied (the counters and the journey's
    /// `callbackSent` already show it). Your receiver gets the request before the mock gets
    /// its answer, though, so a test that has just seen the callback arrive should wait for
    /// the log (or for [`JourneyInfo::callback_sent`]), polling with a deadline.
    pub async fn callbacks(&self) -> CallbackLog {
        let callbacks = self.app.callbacks();
        CallbackLog {
            attempts: callbacks.attempts(None),
            lost: callbacks.lost(None),
            stats: callbacks.stats(),
        }
    }

    /// Add a fault rule; returns its id.
    pub async fn add_fault(&self, rule: FaultRule) -> Result<u64, MockError> {
        let spec =
            crate::fault::rules::parse_rule_fields(&rule.fields).map_err(MockError::Invalid)?;
        let body = serde_json::to_vec(&rule.fields).unwrap_or_default();
        let view = self
            .app
            .add_fault(spec, &body)
            .map_err(|e| MockError::Unavailable(e.to_string()))?;
        Ok(view["id"].as_u64().unwrap_or_default())
    }

    /// Remove every fault rule.
    pub async fn clear_faults(&self) {
        if let Err(e) = self.app.clear_faults() {
            tracing::error!(error = %e, "fault rules cleared on this replica only");
        }
    }

    /// Forget every created journey, callback, cached body, recorded request and fault rule.
    pub async fn reset(&self) {
        self.app.reset();
    }

    /// The app behind the verbs (for this crate's own tests).
    #[doc(hidden)]
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    fn info(&self, record: &JourneyRecord) -> JourneyInfo {
        JourneyInfo {
            id: record.id.clone(),
            url: self.app.journeys().journey_url(&record.id),
            state: record.state,
            scenario: record.scenario.clone(),
            outcome: record.outcome.clone(),
            ended_by: record.ended_by,
            created_at: record.created_at,
            completed_at: record.completed_at,
            callback_status: record.callback.status,
            callback_sent: record.callback.sent,
            callback_attempts: record.callback.attempts,
            document: record.document.clone(),
            ip_check: record.ip_check,
        }
    }
}

impl From<JourneyError> for MockError {
    fn from(error: JourneyError) -> Self {
        match error {
            JourneyError::NotFound(id) => MockError::JourneyNotFound(id),
            JourneyError::Ended { id, state } => MockError::JourneyEnded { id, state },
            JourneyError::Unavailable(message) => MockError::Unavailable(message),
            other => MockError::Invalid(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_setting_or_catalogue_is_an_error_not_a_panic() {
        let e = MockServer::builder()
            .default_scenario("nope")
            .in_process()
            .unwrap_err();
        assert!(
            matches!(e, StartError::Setting(ref m) if m.contains("nope")),
            "{e}"
        );
        let e = MockServer::builder()
            .scenarios_dir("/nonexistent/otk-mock-scenarios")
            .in_process()
            .unwrap_err();
        assert!(matches!(e, StartError::Catalogue(_)), "{e}");
        let e = MockServer::builder()
            .callback_signing_secret("  ")
            .in_process()
            .unwrap_err();
        assert!(matches!(e, StartError::Setting(_)), "{e}");
        let e = MockServer::builder()
            .store("redis:/nowhere")
            .in_process()
            .unwrap_err();
        assert!(
            matches!(e, StartError::Setting(ref m) if m.contains("redis:/nowhere")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn in_process_journey_urls_name_no_address() {
        let app = MockServer::builder()
            .auto_complete_after(None)
            .in_process()
            .unwrap();
        let made = app.bind("J1", "in_progress").await.unwrap();
        assert_eq!(made.url, "http://otk-mock.invalid/journey/J1");
        let app = MockServer::builder()
            .public_url("https://kyc.example.test/")
            .in_process()
            .unwrap();
        let made = app.bind("J2", "in_progress").await.unwrap();
        assert_eq!(made.url, "https://kyc.example.test/journey/J2");
    }

    #[test]
    fn fault_rules_are_checked_as_the_admin_api_checks_them() {
        let spec = crate::fault::rules::parse_rule_fields(
            &FaultRule::new("status:503").journey("x").times(2).fields,
        )
        .unwrap();
        assert_eq!(spec.times, Some(2));
        let bad = FaultRule::new("status:503")
            .route("create-journey-url")
            .journey("x");
        assert!(crate::fault::rules::parse_rule_fields(&bad.fields)
            .unwrap_err()
            .contains("journeyId cannot go with route create-journey-url"));
    }
}
