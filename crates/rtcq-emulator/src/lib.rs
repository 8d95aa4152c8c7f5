//! A local stand-in for `ListRealTimeQuality`, used by the demo, the integration tests
//! and the benchmarks. It behaves like the real API as far as the job can tell: it
//! verifies the `HMAC-SHA256` signature, throttles each access key to 2 requests per
//! second, validates the body with the real error codes and serves deterministic data
//! with the real series names, bucket grid, one-minute delay and 60-minute horizon.
//!
//! - `data`: the data, a pure function tests can call to know the exact rows.
//! - `verify`: route and signature checks (gateway errors, with `CodeN`).
//! - `validate`: body checks (`InvalidParameter*`).
//! - `room_info`: `ListRoomInfo` over the call model of `calls`.
//! - `offline`: `ListQuality`, the offline data: means of the real-time data over 5
//!   minutes or a day, 8 hours late, with its own limit.
//! - `throttle`: the per-key sliding-window limit.
//! - `faults`: injected failures (errors, latency, timeouts, dropped connections,
//!   cut bodies), chosen per request from a seed.
//! - `server`: the hyper server, `spawn` and `serve_forever`.
//! - `hostile`: a server answering a fixed or oversized body, for the tests of what the
//!   real API never sends.
//! - `rules`: the API's limits as the emulator enforces them, from `docs/api.md`.
//! - `cli`: the `rtcq-emulator` binary's arguments and `run_cli`.
//!
//! Without credentials in the environment it accepts the demo pair
//! [`DEMO_ACCESS_KEY`] / [`DEMO_SECRET_KEY`]; they are public and grant nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};

pub(crate) mod calls;
pub(crate) mod cli;
pub(crate) mod data;
pub(crate) mod error;
pub(crate) mod faults;
pub(crate) mod hash;
pub mod hostile;
pub(crate) mod offline;
pub(crate) mod room_info;
pub(crate) mod rules;
pub(crate) mod server;
pub(crate) mod throttle;
pub(crate) mod validate;
pub(crate) mod verify;

pub use calls::{Call, LIST_DELAY, LONG_ROOMS, MODEL_ROOMS, created_in, in_call, model_room};
pub use cli::{EmulatorArgs, run_cli};
pub use data::{generate, series_names};
pub use error::ApiError;
pub use faults::{FailRoom, FaultKind, Faults, OfflineFault};
pub use server::{RunningEmulator, Stats, serve_forever, spawn};

/// The demo access key the emulator accepts by default. Public; grants nothing.
pub const DEMO_ACCESS_KEY: &str = "AKLTdemo0000000000000000000000";
/// The demo secret key paired with [`DEMO_ACCESS_KEY`]. Public; grants nothing.
pub const DEMO_SECRET_KEY: &str = "demo-secret-do-not-use";

/// The API's documented limit, requests per second per access key.
pub(crate) const DEFAULT_REQUESTS_PER_SECOND: f64 = 2.0;

/// How the emulator behaves. `Default` is the demo pair, the real clock, the documented
/// 2 requests/second and no added latency.
#[derive(Debug, Clone, PartialEq)]
pub struct EmulatorConfig {
    /// The only access key accepted: any other gets `InvalidAccessKey`.
    pub access_key: String,
    /// The secret key signatures are checked with.
    pub secret_key: String,
    /// When set, requests must carry this `X-Security-Token`, signed.
    pub session_token: Option<String>,
    /// The data clock starts here and advances in real time; `None` is the real clock.
    /// Signatures are always checked against the real clock.
    pub now: Option<DateTime<Utc>>,
    /// Per access key; `None` is unlimited.
    pub requests_per_second: Option<f64>,
    /// `ListRoomInfo`'s own limit per access key; `None` is unlimited.
    pub room_info_requests_per_second: Option<f64>,
    /// `ListQuality`'s own limit per access key (it does not share
    /// `ListRealTimeQuality`'s); `None` is unlimited.
    pub offline_requests_per_second: Option<f64>,
    /// Slept before every answer.
    pub latency: Duration,
    /// Injected failures, off by default.
    pub faults: Faults,
    /// Refuse a real-time window ending after the data clock's now, as a strict API
    /// would; off: answer what is settled.
    pub refuse_future_end: bool,
    /// The account's apps: any other `AppId` gets `InvalidParameter.NotExistAppId`;
    /// `None`: every app exists.
    pub apps: Option<Vec<String>>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            access_key: DEMO_ACCESS_KEY.to_string(),
            secret_key: DEMO_SECRET_KEY.to_string(),
            session_token: None,
            now: None,
            requests_per_second: Some(DEFAULT_REQUESTS_PER_SECOND),
            room_info_requests_per_second: Some(10.0),
            offline_requests_per_second: Some(offline::REQUESTS_PER_SECOND),
            latency: Duration::ZERO,
            faults: Faults::default(),
            refuse_future_end: false,
            apps: None,
        }
    }
}
