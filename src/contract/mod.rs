//! Contract checks: does the mock still look like the real provider?
//!
//! - [`schema`] infers the shape of any set of JSON documents: key paths, JSON types, arrays as
//!   the union of their elements, `null` as nullable, and the objects whose keys are data
//!   ([`schema::OTK_MAP_PATHS`]) as maps;
//! - [`diff`] compares a recorded shape with the mock's and names every difference by JSON path;
//!
//! How a team uses them is in `docs/contract.md`.

pub mod diff;
pub mod schema;
