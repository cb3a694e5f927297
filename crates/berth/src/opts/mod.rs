//! Flag values and their mapping to API requests.

pub mod container;
pub mod env;
pub mod mount;
pub mod units;
