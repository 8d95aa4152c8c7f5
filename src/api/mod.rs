//! The signed HTTP client of the three API calls (`ListRealTimeQuality`, `ListRoomInfo`,
//! `ListQuality`) and its errors. The wire types, signing and the error codes' classes
//! are `volc_rtc`'s.

pub mod client;
pub(crate) mod error;
pub mod limit;

pub use client::{Client, Timeouts};
pub(crate) use error::RetryRule;
pub use error::{ApiError, Unreachable};
pub use volc_rtc::realtime::*;
pub(crate) use volc_rtc::{offline, room_info};
