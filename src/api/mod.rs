//! The `ListRealTimeQuality` call: typed request and response, error classes, and the
//! signed HTTP client.

pub mod types;

pub use types::*;
