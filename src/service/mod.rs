//! The use cases, one file each, over the narrow store calls each needs.
//! They speak the domain's types and render answers through
//! `domain::representation`; nothing here knows HTTP.

pub mod change;
pub mod create;
pub mod enable;
pub mod read;
pub mod remove;
pub mod update;
pub mod verify;

pub use crate::domain::time::iso8601;

/// Writes a change attempts when another change lands between its read and
/// its write (each write is conditioned on the version it read); past them,
/// `503` with `Retry-After`.
pub const ATTEMPTS: usize = 3;
pub use create::{create_instance, draft, CreateError, Created, Draft, REPLAY_WINDOW};
