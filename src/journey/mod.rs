//! Journeys: what the mock knows about one KYC journey, whatever scenario renders it.
//!
//! A journey read by id alone (no create call before it) is *stateless*: its flow, user,
//! timestamps and pre-fill are all drawn from the journey's RNG, so the same id gives the same
//! document across restarts and replicas. Journeys made by create-journey-url carry what the
//! app sent instead:
//!
//! - [`create`] checks the create-journey-url body and makes ids and `ttl`;
//! - [`record`] is a created journey as kept; [`store`] keeps them (bounded, in memory), and
//!   [`shared_store`] in Redis, for replicas (`--store`);
//! - [`lifecycle`] holds the rules (created → in progress → completed, terminated, expired);
//! - [`service`] applies them: creation, completion, binding, timers and callbacks; the
//!   journey's document (which scenario renders it when) is beside it, in `document.rs`.

pub mod create;
mod document;
pub mod lifecycle;
pub mod record;
pub mod service;
pub mod shared_store;
pub mod store;

pub use record::JourneyRecord;
pub use service::{JourneyError, Journeys};
pub use store::{JourneyStore, MemoryStore};
