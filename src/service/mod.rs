//! The use cases, one file each, over the narrow store calls each needs.
//! They speak the domain's types and render answers through
//! `domain::representation`; nothing here knows HTTP.

pub mod create;
pub mod enable;
pub mod read;
pub mod remove;
pub mod update;

pub use crate::domain::time::iso8601;
pub use create::{create_instance, draft, CreateError, Created, Draft, REPLAY_WINDOW};
