//! Parsed types, validation and the catalog. No I/O here: everything after
//! the edge trusts these types.

pub mod catalog;
pub mod ceql;
pub mod configuration;
pub mod credentials;
pub mod events;
pub mod idempotency;
pub mod instance;
pub mod listing;
pub mod nulls;
pub mod origin;
pub mod pages;
pub mod poll;
pub mod representation;
pub mod request;
pub mod secret;
pub(crate) mod suggest;
pub mod text;
pub mod time;
pub mod token;
pub mod update;
