//! The command line: `serve`, `scenarios`, `render`, `validate`, `health` (in [`health`]), and
//! the contract tools (`contract check`, `contract schema`, `record`, in [`contract`]).
//!
//! Every flag also reads an `OTK_MOCK_*` environment variable. Parsing is clap's; checking
//! what was parsed (a duration, a default scenario that exists) is a second step here, and
//! each failure maps to an exit code in [`Failure::exit_code`].
//!
//! The flags' doc comments are their `--help` text, written for a terminal, not for rustdoc.
#![allow(rustdoc::bare_urls, rustdoc::invalid_html_tags)]

pub mod contract;
pub mod health;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::catalogue::{sample_journey_id, Catalogue};
use crate::config::Config;
use crate::config::{parse_bytes, parse_duration};
use crate::scenario::loader::{CatalogueSource, LoadErrors};
use crate::wire::envelope_bytes;

/// A mock of Signzy's One Touch KYC (OTK) API, with scenario-driven journey results.
#[derive(Debug, Parser)]
#[command(name = "otk-mock", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// `serve` has many more flags than the other commands; the value is parsed once, so its size
// does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the mock server.
    Serve(ServeArgs),
    /// List the scenarios of the catalogue: name, aliases, status, description.
    Scenarios(CatalogueArgs),
    /// Print the get-journey body a scenario gives for a journey id.
    Render(RenderArgs),
    /// Load and render every scenario, check what serve checks; report every error; exit 2 on
    /// any. Says which scenarios are on the fast path, and what keeps the others off.
    Validate(ValidateArgs),
    /// Check recorded responses against the scenarios, or print the response's JSON Schema.
    Contract(contract::ContractArgs),
    /// Fetch real get-journey responses and write them, sanitized, as recorded files.
    Record(contract::RecordArgs),
    /// Ask a running server whether it is healthy: exit 0 if GET /__admin/health answers ok,
    /// 1 otherwise (for a container's HEALTHCHECK; no curl needed).
    Health(health::HealthArgs),
}

/// The value parser of a boolean flag's variable: `1/0`, `true/false`, `yes/no`, `on/off` (any
/// case), and an error that names the variable, since that is where the bad value came from
/// (a flag given on the command line takes no value).
pub(crate) fn boolean(
    variable: &'static str,
) -> impl Fn(&str) -> Result<bool, String> + Clone + Send + Sync + 'static {
    move |text: &str| match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "y" => Ok(true),
        "0" | "false" | "no" | "off" | "n" | "" => Ok(false),
        _ => Err(format!(
            "{variable}={text:?} is not a boolean; use 1/0, true/false, yes/no or on/off"
        )),
    }
}

/// Where the catalogue comes from, and the seed of its fake data.
#[derive(Debug, Clone, Args)]
pub struct CatalogueArgs {
    /// Directory of scenario files (*.toml) [default: the bundled catalogue].
    #[arg(long, env = "OTK_MOCK_SCENARIOS", value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Directory of templates (**/*.tera), laid over the bundled ones: a file of the same
    /// name wins, the others stay reachable (extend journey/base.json.tera from your own).
    #[arg(long, env = "OTK_MOCK_TEMPLATES", value_name = "DIR")]
    pub templates: Option<PathBuf>,
    /// Leave the bundled scenario templates out: only --templates DIR's (needs --scenarios
    /// and --templates). The hosted page's HTML still falls back to the bundled one.
    #[arg(long, env = "OTK_MOCK_NO_BUNDLED", value_parser = boolean("OTK_MOCK_NO_BUNDLED"))]
    pub no_bundled: bool,
    /// Seed of all generated data: the same seed and journey id give the same body.
    #[arg(long, env = "OTK_MOCK_SEED", default_value_t = 0)]
    pub seed: u64,
    /// A scenario or template file larger than this is refused at load, naming it (bytes,
    /// or KiB/MiB/GiB).
    #[arg(long, env = "OTK_MOCK_MAX_CATALOGUE_FILE_BYTES", default_value = "1MiB", value_parser = parse_bytes)]
    pub max_catalogue_file_bytes: u64,
}

impl CatalogueArgs {
    pub(crate) fn source(&self) -> CatalogueSource {
        CatalogueSource {
            scenarios_dir: self.scenarios.clone(),
            templates_dir: self.templates.clone(),
            max_file_bytes: self.max_catalogue_file_bytes,
            no_bundled: self.no_bundled,
        }
    }

    fn load(&self) -> Result<Catalogue, Failure> {
        Catalogue::load(&self.source(), self.seed).map_err(Failure::Catalogue)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
    /// Address to listen on, HOST:PORT (a host name is resolved once, at start); use
    /// 0.0.0.0:8080 in a container.
    #[arg(long, env = "OTK_MOCK_BIND", default_value = "127.0.0.1:8080", value_name = "HOST:PORT", value_parser = crate::config::parse_bind)]
    pub bind: SocketAddr,
    /// Accept only this Authorization token (repeatable; the variable is comma-separated).
    /// Without any, every non-empty token is accepted.
    #[arg(
        long = "token",
        env = "OTK_MOCK_TOKENS",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "T"
    )]
    pub tokens: Vec<String>,
    #[command(flatten)]
    pub roles: ScenarioRoles,
    /// Answer the provider's 404 for a journey id that selects no scenario.
    #[arg(long, env = "OTK_MOCK_STRICT", value_parser = boolean("OTK_MOCK_STRICT"))]
    pub strict: bool,
    /// Log format on stderr (the level comes from RUST_LOG, default info).
    #[arg(long, env = "OTK_MOCK_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes; larger ones get a 413.
    #[arg(long, env = "OTK_MOCK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Close a connection that has gone this long with no request in flight and no full
    /// request head (idle kept-alive connections included; a head cut short gets a 408).
    #[arg(long, env = "OTK_MOCK_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// A request body must arrive in full within this of its head; else a 408.
    #[arg(long, env = "OTK_MOCK_BODY_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// A whole request (head, body and the mock's work; not an injected delay) must take no
    /// longer: a 408 while its body is read, else its connection is closed.
    #[arg(long, env = "OTK_MOCK_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// Open connections at most; one more is closed as soon as it is accepted, counted and
    /// logged [default: the open-file limit, raised to its hard limit at start, less a
    /// quarter for everything else].
    #[arg(long, env = "OTK_MOCK_MAX_CONNECTIONS", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
    /// Journey ids longer than this many bytes get a 414 (get-journey and the admin API);
    /// at most 4096, below the 8 KiB bound on a whole request target.
    #[arg(long, env = "OTK_MOCK_MAX_JOURNEY_ID", default_value_t = 256, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub max_journey_id: u16,
    /// How many rendered bodies to keep in memory, within --cache-bytes (a body read again
    /// outlasts one-off ones; 0 disables).
    #[arg(long, env = "OTK_MOCK_CACHE_ENTRIES", default_value_t = 1024)]
    pub cache_entries: usize,
    /// Render every N-th body the fast path writes with Tera too; on a difference, log both,
    /// serve Tera's and count it in /__admin/metrics [default: off].
    #[arg(long, env = "OTK_MOCK_VERIFY_FAST_PATH", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub verify_fast_path: Option<u64>,
    /// How long shutdown waits for open requests.
    #[arg(long, env = "OTK_MOCK_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// The base of journeyUrl that users' browsers reach [default: http://<bound address>].
    #[arg(long, env = "OTK_MOCK_PUBLIC_URL", value_name = "URL", value_parser = crate::config::parse_public_url)]
    pub public_url: Option<String>,
    /// Where created journeys, callbacks, the journal and fault rules live: `memory` (this
    /// process alone), or `redis://HOST:PORT[/DB]`, shared by every replica that names it.
    #[arg(
        long,
        env = "OTK_MOCK_STORE",
        value_name = "STORE",
        default_value = "memory"
    )]
    pub store: crate::shared::StoreSpec,
    /// How many created journeys to keep; past it the oldest finished one is evicted first.
    #[arg(long, env = "OTK_MOCK_MAX_JOURNEYS", default_value_t = 10_000)]
    pub max_journeys: usize,
    /// A journey whose link is never opened completes with its scenario this long after
    /// creation; `never` waits for the hosted page or the admin API.
    #[arg(long, env = "OTK_MOCK_AUTO_COMPLETE_AFTER", default_value = "5s")]
    pub auto_complete_after: crate::config::AutoComplete,
    /// Delay before a callback's first attempt, unless the scenario or X-Mock-Callback-Delay sets one.
    #[arg(long, env = "OTK_MOCK_CALLBACK_DELAY", default_value = "0s", value_parser = parse_duration)]
    pub callback_delay: Duration,
    /// Each callback attempt must be answered within this.
    #[arg(long, env = "OTK_MOCK_CALLBACK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub callback_timeout: Duration,
    /// The header that carries authKeyForCallback.
    #[arg(long, env = "OTK_MOCK_CALLBACK_AUTH_HEADER", default_value = "Authorization", value_parser = crate::config::parse_header_name)]
    pub callback_auth_header: String,
    /// Wait after the first failed callback attempt; doubled after each further one.
    #[arg(long, env = "OTK_MOCK_CALLBACK_BACKOFF_INITIAL", default_value = "1s", value_parser = parse_duration)]
    pub callback_backoff_initial: Duration,
    /// The longest wait between two callback attempts.
    #[arg(long, env = "OTK_MOCK_CALLBACK_BACKOFF_MAX", default_value = "60s", value_parser = parse_duration)]
    pub callback_backoff_max: Duration,
    /// Attempts per callback, the first included.
    #[arg(long, env = "OTK_MOCK_CALLBACK_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub callback_max_attempts: u32,
    /// Sign callbacks with Standard Webhooks headers; `whsec_<base64>` or any other text.
    #[arg(long, env = "OTK_MOCK_CALLBACK_SIGNING_SECRET", hide_env_values = true, value_name = "SECRET", value_parser = crate::callback::SigningKey::parse)]
    pub callback_signing_secret: Option<crate::callback::SigningKey>,
    /// Callback intake slots: running journeys with a callbackUrl plus callbacks waiting for
    /// their first attempt. When all are taken, create-journey-url answers 503 with Retry-After.
    #[arg(long, env = "OTK_MOCK_CALLBACK_QUEUE", default_value_t = 10_000)]
    pub callback_queue: usize,
    /// Callbacks waiting between retries, at most; while it is full, create-journey-url with a
    /// callbackUrl answers 503 too.
    #[arg(long, env = "OTK_MOCK_CALLBACK_RETRY_QUEUE", default_value_t = 10_000)]
    pub callback_retry_queue: usize,
    /// The longest callback delay: X-Mock-Callback-Delay or a delay callback fault over it is a
    /// 400; a scenario's longer delay is cut to it.
    #[arg(long, env = "OTK_MOCK_CALLBACK_MAX_DELAY", default_value = "1h", value_parser = parse_duration)]
    pub callback_max_delay: Duration,
    /// Where callbacks may go: CIDR blocks, addresses, host names or *.<domain> (repeatable; the
    /// variable is comma-separated) [default: anywhere but this mock's own listeners].
    #[arg(long = "callback-allow", env = "OTK_MOCK_CALLBACK_ALLOW", value_delimiter = ',', value_name = "CIDR|HOST", value_parser = crate::config::parse_allow_rule)]
    pub callback_allow: Vec<crate::config::AllowRule>,
    /// Callback attempts in flight at once, at most (each holds a connection to a receiver).
    #[arg(long, env = "OTK_MOCK_CALLBACK_CONCURRENCY", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub callback_concurrency: u32,
    /// Callback attempts kept for GET /__admin/callbacks (oldest dropped first).
    #[arg(long, env = "OTK_MOCK_CALLBACK_LOG_ENTRIES", default_value_t = 10_000)]
    pub callback_log_entries: usize,
    /// On shutdown, callbacks due within this long are still attempted; the rest are logged undelivered.
    #[arg(long, env = "OTK_MOCK_CALLBACK_DRAIN", default_value = "5s", value_parser = parse_duration)]
    pub callback_drain: Duration,
    /// Provider requests kept for GET /__admin/requests (oldest dropped first; 0 keeps none).
    #[arg(long, env = "OTK_MOCK_JOURNAL_ENTRIES", default_value_t = 10_000)]
    pub journal_entries: usize,
    /// The longest an injected delay or hang holds a request; a hang then closes the connection.
    #[arg(long, env = "OTK_MOCK_FAULT_MAX_WAIT", default_value = "5m", value_parser = parse_duration)]
    pub fault_max_wait: Duration,
    /// Reload scenarios and templates when their files change (only --scenarios/--templates
    /// directories; the bundled catalogue cannot change). A broken change keeps the last good
    /// catalogue and is reported in the log and in GET /__admin/health.
    #[arg(long, env = "OTK_MOCK_WATCH", value_parser = boolean("OTK_MOCK_WATCH"))]
    pub watch: bool,
    /// How often --watch looks at the files.
    #[arg(long, env = "OTK_MOCK_WATCH_INTERVAL", default_value = "500ms", value_parser = parse_duration)]
    pub watch_interval: Duration,
    /// Bytes the request journal may hold (bytes, or KiB/MiB/GiB); a journey id, path or
    /// fault longer than an entry's share is kept cut, ending in "…".
    #[arg(long, env = "OTK_MOCK_JOURNAL_BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub journal_bytes: u64,
    /// Bytes of rendered bodies and their keys the body cache may hold.
    #[arg(long, env = "OTK_MOCK_CACHE_BYTES", default_value = "16MiB", value_parser = parse_bytes)]
    pub cache_bytes: u64,
    /// Bytes the created journeys may take, each counted with what the app sent; past it the
    /// oldest finished journey is evicted first.
    #[arg(long, env = "OTK_MOCK_JOURNEY_BYTES", default_value = "24MiB", value_parser = parse_bytes)]
    pub journey_bytes: u64,
    /// Bytes the callback log may hold; a URL or error longer than an entry's share is kept
    /// cut, ending in "…".
    #[arg(long, env = "OTK_MOCK_CALLBACK_LOG_BYTES", default_value = "8MiB", value_parser = parse_bytes)]
    pub callback_log_bytes: u64,
    /// Require `Authorization: Bearer <token>` on /__admin/* (GET /__admin/health stays open).
    /// Prefer the variable, which keeps the token out of shell history and `ps`.
    #[arg(long, env = "OTK_MOCK_ADMIN_TOKEN", hide_env_values = true, value_name = "TOKEN", value_parser = crate::config::AdminToken::parse)]
    pub admin_token: Option<crate::config::AdminToken>,
    /// Serve the admin API on this address, apart from the provider port (where /__admin/* is
    /// then a 404), e.g. 127.0.0.1:8081 while --bind is 0.0.0.0:8080.
    #[arg(long, env = "OTK_MOCK_ADMIN_BIND", value_name = "HOST:PORT", value_parser = crate::config::parse_bind)]
    pub admin_bind: Option<SocketAddr>,
}

/// Which scenario plays which part: `serve` and `validate` read the same flags.
#[derive(Debug, Clone, Args)]
pub struct ScenarioRoles {
    /// The scenario used when neither the journey id nor X-Mock-Scenario selects one.
    #[arg(long, env = "OTK_MOCK_DEFAULT_SCENARIO", default_value = "success")]
    pub default_scenario: String,
    /// The scenario that renders a journey that has not ended.
    #[arg(
        long,
        env = "OTK_MOCK_IN_PROGRESS_SCENARIO",
        default_value = "in_progress"
    )]
    pub in_progress_scenario: String,
    /// The scenario that renders a journey whose link or session expired.
    #[arg(
        long,
        env = "OTK_MOCK_EXPIRED_SCENARIO",
        default_value = "link_expired"
    )]
    pub expired_scenario: String,
}

impl ScenarioRoles {
    /// The default configuration with these roles.
    fn config(&self) -> Config {
        Config {
            default_scenario: self.default_scenario.clone(),
            in_progress_scenario: self.in_progress_scenario.clone(),
            expired_scenario: self.expired_scenario.clone(),
            ..Config::default()
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
    #[command(flatten)]
    pub roles: ScenarioRoles,
}

#[derive(Debug, Clone, Args)]
pub struct RenderArgs {
    /// The scenario, by name or alias.
    pub scenario: String,
    /// The journey id to render for [default: SCENARIO-sample].
    #[arg(long, value_name = "ID")]
    pub journey_id: Option<String>,
    /// Print the exact bytes get-journey serves instead of indented JSON.
    #[arg(long)]
    pub compact: bool,
    #[command(flatten)]
    pub catalogue: CatalogueArgs,
}

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage or configuration: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The catalogue did not load: exit 2, one line per error.
    #[error("{0}")]
    Catalogue(LoadErrors),
    /// Something failed while running: exit 1.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(_) | Failure::Catalogue(_) => 2,
            Failure::Runtime(_) => 1,
        }
    }
}

impl ServeArgs {
    /// The validated server configuration.
    pub fn config(&self) -> Config {
        Config {
            bind: self.bind,
            source: self.catalogue.source(),
            seed: self.catalogue.seed,
            tokens: self
                .tokens
                .iter()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect(),
            default_scenario: self.roles.default_scenario.clone(),
            strict: self.strict,
            max_body_bytes: self.max_body_bytes,
            header_read_timeout: self.header_read_timeout,
            body_read_timeout: self.body_read_timeout,
            request_timeout: self.request_timeout,
            max_connections: self.max_connections.map(|n| n as usize),
            max_journey_id: usize::from(self.max_journey_id),
            cache_entries: self.cache_entries,
            verify_fast_path: self.verify_fast_path.unwrap_or(0),
            shutdown_grace: self.shutdown_grace,
            public_url: self.public_url.clone(),
            max_journeys: self.max_journeys,
            store: self.store.clone(),
            auto_complete_after: self.auto_complete_after.0,
            in_progress_scenario: self.roles.in_progress_scenario.clone(),
            expired_scenario: self.roles.expired_scenario.clone(),
            callbacks: crate::callback::CallbackSettings {
                delay: self.callback_delay,
                timeout: self.callback_timeout,
                auth_header: self.callback_auth_header.clone(),
                backoff_initial: self.callback_backoff_initial,
                backoff_max: self.callback_backoff_max.max(self.callback_backoff_initial),
                max_attempts: self.callback_max_attempts,
                signing_key: self.callback_signing_secret.clone(),
                queue_capacity: self.callback_queue,
                retry_capacity: self.callback_retry_queue,
                // A default delay longer than the cap raises the cap, as --callback-backoff-max
                // follows --callback-backoff-initial.
                max_delay: self.callback_max_delay.max(self.callback_delay),
                allow: self.callback_allow.clone(),
                own_listeners: Vec::new(),
                log_entries: self.callback_log_entries,
                log_bytes: self.callback_log_bytes,
                drain_window: self.callback_drain,
                concurrency: self.callback_concurrency as usize,
            },
            journal_entries: self.journal_entries,
            fault_max_wait: self.fault_max_wait,
            watch: self.watch,
            watch_interval: self
                .watch_interval
                .max(std::time::Duration::from_millis(10)),
            journal_bytes: self.journal_bytes,
            cache_bytes: self.cache_bytes,
            journey_bytes: self.journey_bytes,
            admin_token: self.admin_token.clone(),
            admin_bind: self.admin_bind,
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Scenarios(args) => scenarios(&args),
        Command::Render(args) => render(&args),
        Command::Validate(args) => validate(&args),
        Command::Contract(args) => contract::run_contract(args),
        Command::Record(args) => contract::run_record(args),
        Command::Health(args) => health::run(&args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a CI log or a container's log driver gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

fn serve(args: ServeArgs) -> Result<(), Failure> {
    init_logging(args.log_format);
    // Before anything opens a file: --max-connections defaults to a share of this limit.
    crate::server::limits::raise_fd_limit();
    let config = args.config();
    let catalogue = args.catalogue.load()?;
    crate::app::check_catalogue(&config, &catalogue).map_err(Failure::Usage)?;
    crate::shared::check(&config.store).map_err(Failure::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let scenarios = catalogue.scenarios().len();
        let bind = config.bind;
        let server = crate::server::start(config, catalogue)
            .await
            .map_err(|e| Failure::Usage(format!("cannot listen on {bind}: {e}")))?;
        tracing::info!(
            address = %server.local_addr(),
            scenarios,
            max_connections = server.max_connections(),
            "otk-mock is listening on {}",
            server.base_url()
        );
        if let Some(admin) = server.admin_addr() {
            tracing::info!(address = %admin, "the admin API is listening on http://{admin}/__admin/");
        }
        server.wait_for_signal_then_shutdown().await;
        Ok(())
    })
}

fn scenarios(args: &CatalogueArgs) -> Result<(), Failure> {
    let catalogue = args.load()?;
    let rows: Vec<[String; 4]> = catalogue
        .scenarios()
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                s.aliases.join(","),
                format!("{}/{}", s.status, s.step),
                s.description.clone(),
            ]
        })
        .collect();
    let header = [
        "NAME".to_string(),
        "ALIASES".to_string(),
        "STATUS/STEP".to_string(),
        "DESCRIPTION".to_string(),
    ];
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        out.push_str(&format!(
            "{:w0$}  {:w1$}  {:w2$}  {}\n",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        ));
    }
    print_out(&out)
}

fn render(args: &RenderArgs) -> Result<(), Failure> {
    let catalogue = args.catalogue.load()?;
    let scenario = catalogue.find(&args.scenario).ok_or_else(|| {
        Failure::Usage(format!(
            "no scenario {:?}; known scenarios: {}",
            args.scenario,
            catalogue.names().join(", ")
        ))
    })?;
    let id = args
        .journey_id
        .clone()
        .unwrap_or_else(|| sample_journey_id(&scenario.name));
    let text = if args.compact {
        let document = catalogue
            .stateless_bytes(scenario, &id)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!(e)))?;
        String::from_utf8_lossy(&envelope_bytes(&document)).into_owned()
    } else {
        let document = catalogue
            .render_stateless(scenario, &id)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!(e)))?;
        let wrapped = serde_json::json!({ "result": document });
        serde_json::to_string_pretty(&wrapped)
            .map_err(|e| Failure::Runtime(anyhow::anyhow!("cannot serialize: {e}")))?
    };
    print_out(&format!("{text}\n"))
}

fn validate(args: &ValidateArgs) -> Result<(), Failure> {
    let catalogue = args.catalogue.load()?;
    // What serve refuses, validate refuses, with the same message and exit code.
    let config = args.roles.config();
    crate::app::check_catalogue(&config, &catalogue).map_err(Failure::Usage)?;
    for warning in crate::app::lifecycle_warnings(&config, &catalogue) {
        eprintln!("otk-mock: warning: {warning}");
    }
    let renderer = catalogue.renderer();
    let (fast, slow): (Vec<_>, Vec<_>) = catalogue
        .scenarios()
        .iter()
        .partition(|s| renderer.is_fast(s));
    let mut out = format!(
        "ok: {} scenarios load and render ({})",
        catalogue.scenarios().len(),
        catalogue.names().join(", ")
    );
    if slow.is_empty() {
        out.push_str("; all on the fast path\n");
    } else {
        let names: Vec<&str> = fast.iter().map(|s| s.name.as_str()).collect();
        out.push_str(&format!(
            "\non the fast path: {}\nrendered by Tera on every request (see README, Performance):\n",
            if names.is_empty() { "none".to_string() } else { names.join(", ") }
        ));
        for scenario in slow {
            let why = renderer.fast_path(scenario).err().unwrap_or_default();
            out.push_str(&format!("  {}: {why}\n", scenario.name));
        }
    }
    print_out(&out)
}

/// Write to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub(crate) fn print_out(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Runtime(anyhow::anyhow!(
            "cannot write output: {e}"
        ))),
    }
}
