pub mod domain;
pub mod seal;
pub mod store;
