//! otk-mock: a mock provider and contract-test server for Signzy's One Touch KYC (OTK) API.
//!
//! # Use from Rust tests
//!
//! Start a mock on a free port, give its [`MockServer::uri`] to the app under test instead of
//! the provider's host, and ask the mock what happened:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use otk_mock::{Filter, MockServer};
//!
//! let server = MockServer::builder().seed(7).auto_complete_after(None).start().await?;
//! let base_url = server.uri(); // "http://127.0.0.1:PORT": configure the app with it
//! # let _ = base_url;
//! // ... exercise the app ...
//! assert_eq!(server.request_count(Filter::journey("vpn_flagged-1")).await, 0);
//! assert!(server.callbacks().await.attempts.is_empty());
//! server.reset().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`MockServer`] and [`MockApp`] (the same mock answering in process, without a socket) are
//! the library's API; the rest of the crate is the `otk-mock` program.
//!
//! # The architecture in a page
//!
//! Layers, with imports pointing down only (`../shared/tools/module-cycles` checks it in CI):
//!
//! ```text
//!  entry points  mock (MockServer, MockApp) · cli · server (accept loop, connection driver,
//!                the --admin-bind listener, file-descriptor limits) · reload (--watch)
//!  router        request → surface → app::conclude; any http_body::Body, socket or not
//!  surfaces      api (provider routes) · admin (/__admin) · console (/__admin/ui, HTML)
//!                · page (/journey/{id})
//!                plain functions over &App that return an Outcome
//!  app           App: the shared state; Outcome → response, journal, metrics, fault act
//!  domain        scenario · catalogue · render · journey · callback · fault · journal
//!                · metrics · live · cache · inbox · contract
//!  bottom        wire (Body, ApiError, responses, read_body, RouteKind, Connection handle)
//!                · time · text · hash · ring · client (outbound HTTP) · shared (`--store`:
//!                the Redis connection replicas share, with its timeouts and degraded state)
//! ```
//!
//! - `scenario` is the model of one outcome and its loader; `render` turns (scenario, journey
//!   facts, fake person) into a document through one entry point for every journey, created
//!   or stateless (the person's document is of a family read from `families/*.toml`, and is
//!   settled for the scenario and the app's pre-fill before the template runs): it fills a skeleton Tera rendered once where an allow-list analysis of the
//!   template permits, and runs Tera otherwise; `catalogue` loads and checks scenarios and
//!   templates together, rendering each before anything is served; `live` is the catalogue
//!   being served (`reload` swaps it).
//! - `journey` holds created journeys (store, lifecycle, creation, completion, timers) and
//!   hands finished ones to `callback`, which delivers them with retries and keeps a log; a
//!   journey with a `callbackUrl` reserves its callback's intake slot when it is created, so
//!   a full intake is a 503 to the create call, never a callback dropped later.
//! - With `--store redis://…`, replicas share one state: `journey::shared_store` behind the
//!   same store trait, `callback`'s schedule claimed under leases, `journal`'s stream, and
//!   `app`'s sync of fault rules, resets and deadlines; the memory store runs the code it
//!   always ran.
//! - `journal` records every provider request before it is answered; `fault` makes requests
//!   and callbacks misbehave on purpose; `metrics` counts for Prometheus; `cache` keeps
//!   rendered bodies.
//! - `contract` infers schemas from JSON documents and reports where recorded real
//!   responses and the scenarios disagree; it also records sanitized real responses.
//! - A surface decides an `app::Outcome` (the answer, and for provider requests a trace:
//!   route, journey, scenario and why, fault); `App::conclude` alone writes the journal and
//!   the metrics and acts out the fault, so no handler can forget to, or do it twice.

#![warn(missing_docs)]

mod admin;
mod api;
#[doc(hidden)]
pub mod app;
mod cache;
mod callback;
#[doc(hidden)]
pub mod catalogue;
#[doc(hidden)]
pub mod cli;
mod client;
#[doc(hidden)]
pub mod config;
mod console;
#[doc(hidden)]
pub mod contract;
mod fault;
mod hash;
mod inbox;
mod journal;
mod journey;
mod live;
mod metrics;
mod mock;
mod page;
mod reload;
mod render;
mod ring;
mod router;
#[doc(hidden)]
pub mod scenario;
#[doc(hidden)]
pub mod server;
#[doc(hidden)]
pub mod shared;
mod text;
mod time;
#[doc(hidden)]
pub mod wire;

pub use callback::log::{Attempt as CallbackAttempt, Lost as LostCallback};
pub use callback::{Stats as CallbackStats, WRONG_AUTH_KEY};
pub use journal::{Filter, RecordedRequest};
pub use journey::record::CallbackStatus;
pub use mock::{
    CallbackLog, EndedBy, FaultRule, JourneyInfo, JourneyState, MockApp, MockError, MockServer,
    MockServerBuilder, StartError,
};
pub use wire::Body;
