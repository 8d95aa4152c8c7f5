//! The `ListRealTimeQuality` call: typed request and response, error classes, and the
//! signed HTTP client.

pub mod client;
pub mod error;
pub mod time;
pub mod types;

pub use client::{Client, Timeouts};
pub use error::ApiError;
pub use types::*;
