//! Contract checks: does the mock still look like the real provider?
//!
//! - [`schema`] infers the shape of any set of JSON documents: key paths, JSON types, arrays as
//!   the union of their elements, `null` as nullable, and the objects whose keys are data
//!   ([`schema::OTK_MAP_PATHS`]) as maps;
//! - [`mock`] renders each scenario for many journeys and folds them into the mock's shape;
//! - [`diff`] compares a recorded shape with the mock's and names every difference by JSON path;
//! - [`check`] reads recorded files (get-journey responses or callback bodies), picks the
//!   scenarios to compare with, and gives a verdict per file: `otk-mock contract check`;
//! - [`export`] writes the mock's shape as a JSON Schema: `otk-mock contract schema`;
//! - [`sanitize`] and [`record`] fetch real responses and make them safe to commit:
//!   `otk-mock record`.
//!
//! Their command line is the CLI's (`crate::cli`).
//!
//! How a team uses them is in `docs/contract.md`.

pub mod check;
pub mod diff;
pub mod export;
pub mod mock;
pub mod record;
pub mod sanitize;
pub mod schema;
