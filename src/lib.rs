//! otk-mock: a mock provider and contract-test server for Signzy's One Touch KYC (OTK) API.
//!
//! The architecture in a page:
//!
//! - [`scenario`] holds the model of one outcome and how a request picks one; its
//!   [`scenario::loader`] reads `scenarios/*.toml` from a directory or from the bundle compiled
//!   into the binary.
//! - [`render`] turns (scenario, journey, fake [`render::person`]) into a JSON document through
//!   Tera, or, for a new journey of a known shape, by filling a skeleton Tera rendered once
//!   ([`render::skeleton`]); [`catalogue`] loads scenarios and templates together and renders each once before
//!   anything is served, so a broken file stops start-up with every error named.
//! - [`journey`] holds what the mock knows of one journey: created journeys, their store and
//!   lifecycle; [`callback`] delivers their results to the app's `callbackUrl`.
//! - [`server`] is the hyper accept loop (limits, timeouts, graceful shutdown); [`routes`] the
//!   provider surface; [`page`] the hosted journey page; [`admin`] the `/__admin` API;
//!   [`error`] the provider's JSON error format, built in one place.
//! - [`journal`] records every provider request before it is answered; [`fault`] makes
//!   requests and callbacks misbehave on purpose; [`metrics`] counts for Prometheus;
//!   [`live`] holds the catalogue being served, which [`reload`] replaces under `--watch`;
//!   the journal and the callback log keep their newest entries in a [`ring`].
//! - [`contract`] infers schemas from JSON documents and reports, path by path, where recorded
//!   real responses and the scenarios disagree; it also records sanitized real responses.
//! - [`cli`] is the command line; `main.rs` only maps its result to an exit code.

pub mod admin;
pub mod api;
pub mod app;
pub mod cache;
pub mod callback;
pub mod catalogue;
pub mod cli;
pub mod client;
pub mod config;
pub mod contract;
pub mod fault;
pub mod hash;
pub mod journal;
pub mod journey;
pub mod live;
pub mod metrics;
pub mod page;
pub mod reload;
pub mod render;
pub mod ring;
pub mod router;
pub mod scenario;
pub mod server;
pub mod text;
pub mod time;
pub mod wire;
