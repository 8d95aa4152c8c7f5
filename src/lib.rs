//! rtcq copies Volcengine RTC `ListRealTimeQuality` metrics into a Hive-partitioned
//! Parquet dataset on local disk or S3. See `DESIGN.md` for the run, step by step.
//!
//! Each module owns one thing. From the bottom up: `domain` holds the words of the
//! design as types (targets, pipeline names, ranges and gaps, partition escaping);
//! `clock` is the one time source; `auth` signs requests, `api` talks HTTP, `limit`
//! paces and retries; `config` turns a pipeline file into domain types; `plan` turns
//! cursors into requests and `capacity` says how many targets a budget serves; `sink`
//! writes Parquet slot files and `state` keeps cursors, gaps and the lease; `run` is one
//! run as stages; `commands` is what each subcommand does, `cli` its arguments; `logs`,
//! `progress` and `metrics` are what a run shows; `emulator` is the local stand-in for
//! the real API.

pub mod api;
pub mod auth;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub(crate) mod discovery;
pub mod domain;
pub mod emulator;
pub mod limit;
pub mod logs;
pub mod metrics;
pub mod plan;
pub mod progress;
pub mod run;
pub mod sink;
pub mod state;
