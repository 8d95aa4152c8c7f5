//! The integration tests, one binary: each module is one area a user would check
//! (runs on local disk and S3, crashes, outages, recovery, discovery, the CLI's errors,
//! security, the deploy examples, the query guide), on real parts: the emulator over
//! loopback, a moto S3 server, DuckDB, pyarrow and Spark reading what runs wrote.
//! `kit` is what they share. Tests that need the Python venv, the Pushgateway, promtool
//! or Java say so and are skipped where those are missing, unless `RTCQ_REQUIRE_ALL=1`
//! (set by `make test` and CI), where a missing one fails the test.

mod kit;

mod capacity;
mod check;
mod cli_errors;
mod clock;
mod corrupt_state;
mod crash;
mod deploy;
mod discovery;
mod faults;
mod history;
mod observability;
mod outage;
mod query_guide;
mod recovery;
mod run_duckdb;
mod run_local;
mod run_s3;
mod security_config;
mod security_ids;
mod security_responses;
mod security_secrets;
mod sign_sdk;
mod sink_duckdb;
mod sink_local;
mod sink_s3;
mod sink_stores;
mod soak;
