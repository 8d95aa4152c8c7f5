//! rtcq copies Volcengine RTC `ListRealTimeQuality` metrics into a Hive-partitioned
//! Parquet dataset on local disk or S3. See `DESIGN.md` for the run, step by step.
//!
//! Each module owns one thing: `config` parses pipeline files, `auth` signs requests,
//! `api` talks HTTP, `limit` paces and retries, `plan` turns cursors into requests, `capacity` says how many targets a budget serves,
//! `sink` writes Parquet slot files, `state` keeps cursors and the lease, `run` wires
//! one run together, `cli` is the command line, `logs` and `progress` are what a run
//! shows while it goes, `metrics` is its summary for Prometheus, and `emulator` is the
//! local stand-in for the real API.

pub mod api;
pub mod auth;
pub mod capacity;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
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
