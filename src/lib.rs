//! Create Instance, compatible with Cloud Elements' documented call, as one
//! AWS Lambda on DynamoDB and KMS. See README.md for the contract and design.

pub mod admin;
pub mod api;
pub mod app;
pub mod auth;
pub mod domain;
pub mod events;
pub mod hub;
pub mod logging;
pub mod outbound;
pub mod provider;
pub mod sdk;
pub mod seal;
pub mod service;
pub mod settings;
pub mod store;
