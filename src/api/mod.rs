//! The API calls (`ListRealTimeQuality`, `ListRoomInfo`, `ListQuality`): typed requests
//! and responses, error classes, and the signed HTTP client.

pub mod client;
pub(crate) mod error;
pub(crate) mod offline;
pub(crate) mod room_info;
pub(crate) mod time;
pub(crate) mod types;

pub use client::{Client, Timeouts};
pub(crate) use error::RetryRule;
pub use error::{ApiError, Unreachable};
pub use types::*;
