//! The command line: `rtcq run | backfill | plan | status | check`.

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::obs::logs::LogFormat;

/// Copies Volcengine RTC real-time quality metrics into Hive-partitioned Parquet.
#[derive(Debug, Parser)]
#[command(name = "rtcq", version, about, max_term_width = 100)]
pub struct Cli {
    /// Log format on stderr: human-readable text, or one JSON object per line for log
    /// collectors (auto: JSON when stderr is not a terminal). Filter with RUST_LOG
    /// (e.g. RUST_LOG=rtcq=debug).
    #[arg(long, global = true, value_enum, env = "RTCQ_LOG_FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What this invocation does.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; each variant's doc is its `--help` summary.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch everything pending and write it (one run of the job).
    Run(RunArgs),
    /// Re-fetch and rewrite every slot of a range the API still has (after a bug fix),
    /// plus whatever a run would fetch; no cursor moves backwards.
    Backfill(BackfillArgs),
    /// Show what a run would fetch, without fetching.
    Plan(PlanArgs),
    /// Show each target's cursor, lag and pending slots, and recorded gaps.
    Status(StatusArgs),
    /// Prove a pipeline's setup before scheduling it: the config, the store, the lease,
    /// the API's clock and one request per API action it uses; writes no data.
    Check(CheckArgs),
}

/// Options shared by commands that read a pipeline.
#[derive(Debug, Args)]
pub(crate) struct PipelineArgs {
    /// The pipeline file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Pretend the current time is this instant (RFC 3339). Planning only: requests are
    /// still signed with the real clock.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub(crate) now: Option<DateTime<Utc>>,
}

/// Arguments of `rtcq run`, also taken by `rtcq backfill`.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// Use this API endpoint instead of the file's `[api] endpoint` (e.g. the emulator).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
    /// Exit 6 when this run records a new gap.
    #[arg(long)]
    pub(crate) fail_on_gap: bool,
    /// Write the run summary as JSON to FILE (`-`: one line on stdout, e.g. for
    /// Airflow's XCom).
    #[arg(long, value_name = "FILE")]
    pub(crate) summary: Option<String>,
    /// Write the run's figures as Prometheus metrics to FILE (for node-exporter's
    /// textfile collector: name it *.prom).
    #[arg(long, value_name = "FILE")]
    pub(crate) metrics_file: Option<PathBuf>,
    /// Push the run's figures to this Prometheus Pushgateway (e.g.
    /// http://pushgateway:9091), grouped by job rtcq and the pipeline.
    #[arg(long, value_name = "URL")]
    pub(crate) pushgateway: Option<String>,
    /// How long the lease on an object store stays valid without renewal: how long a
    /// killed run blocks the pipeline [default: 120].
    #[arg(long, value_name = "SECONDS", env = "RTCQ_LEASE_TTL_SECONDS")]
    pub(crate) lease_ttl_seconds: Option<f64>,
    /// How often the lease on an object store is renewed [default: a third of the
    /// TTL]; 0 never renews, so a run longer than the TTL loses its lease.
    #[arg(long, value_name = "SECONDS", env = "RTCQ_LEASE_RENEW_SECONDS")]
    pub(crate) lease_renew_seconds: Option<f64>,
    /// Retries of a failed request after its first attempt [default: 4].
    #[arg(long, value_name = "N", env = "RTCQ_RETRY_MAX")]
    pub(crate) retry_max: Option<usize>,
    /// First retry delay in milliseconds; it doubles, with jitter [default: 500].
    #[arg(long, value_name = "MS", env = "RTCQ_RETRY_MIN_MS")]
    pub(crate) retry_min_ms: Option<u64>,
    /// Longest retry delay in milliseconds [default: 8000].
    #[arg(long, value_name = "MS", env = "RTCQ_RETRY_MAX_MS")]
    pub(crate) retry_max_ms: Option<u64>,
    /// Rows held in memory before they are spilled to disk, about 24 bytes each
    /// [default: 262144].
    #[arg(long, value_name = "N", env = "RTCQ_SPILL_ROWS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) spill_rows: Option<u64>,
    /// Folder for rows spilled to disk during big runs (a catch-up), checked writable
    /// at start [default: the local sink's folder, or the system's temporary folder
    /// for S3].
    #[arg(long, value_name = "DIR", env = "RTCQ_SPILL_DIR")]
    pub(crate) spill_dir: Option<PathBuf>,
    /// Give up on one attempt of a request after this many milliseconds [default: 60000].
    #[arg(long, value_name = "MS", env = "RTCQ_REQUEST_TIMEOUT_MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) request_timeout_ms: Option<u64>,
}

impl RunArgs {
    /// The retry policy: the defaults, overridden by the flags given.
    pub(crate) fn retry_policy(&self) -> crate::api::limit::RetryPolicy {
        let mut p = crate::api::limit::RetryPolicy::default();
        if let Some(n) = self.retry_max {
            p.max_retries = n;
        }
        if let Some(ms) = self.retry_min_ms {
            p.min_delay = Duration::from_millis(ms);
        }
        if let Some(ms) = self.retry_max_ms {
            p.max_delay = Duration::from_millis(ms);
        }
        p.max_delay = p.max_delay.max(p.min_delay);
        p
    }

    /// The HTTP timeouts: the defaults, the request timeout overridden if given.
    pub(crate) fn timeouts(&self) -> crate::api::Timeouts {
        crate::api::Timeouts::with_request_ms(self.request_timeout_ms)
    }
}

/// Arguments of `rtcq check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The pipeline file (TOML).
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: PathBuf,
    /// Use this API endpoint instead of the file's `[api] endpoint` (e.g. the emulator).
    #[arg(long, value_name = "URL")]
    pub(crate) endpoint: Option<String>,
    /// Print the steps as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Give up on a request after this many milliseconds [default: 60000].
    #[arg(long, value_name = "MS", env = "RTCQ_REQUEST_TIMEOUT_MS",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) request_timeout_ms: Option<u64>,
}

impl CheckArgs {
    /// The HTTP timeouts: the defaults, the request timeout overridden if given.
    pub(crate) fn timeouts(&self) -> crate::api::Timeouts {
        crate::api::Timeouts::with_request_ms(self.request_timeout_ms)
    }
}

/// Arguments of `rtcq backfill`: the range to rewrite, and those of a run.
#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Start of the range (RFC 3339), rounded down to its slot.
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub(crate) from: DateTime<Utc>,
    /// End of the range (RFC 3339, exclusive).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub(crate) to: DateTime<Utc>,
    #[command(flatten)]
    pub(crate) run: RunArgs,
}

/// Arguments of `rtcq plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// Print the plan as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
}

/// The request budget of the runs: how often they start and how long each may send.
#[derive(Debug, Args)]
pub(crate) struct BudgetArgs {
    /// How often the scheduler starts a run: what a run leaves is judged safe or not by
    /// when the next runs start, and the capacity is stated for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_schedule, default_value = "5m")]
    pub(crate) schedule: Duration,
    /// Stop sending after this long (e.g. 4m, 90s), write what was fetched and leave the
    /// rest, earliest due first, to the next runs.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) max_duration: Option<Duration>,
}

/// Arguments of `rtcq status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub(crate) pipeline: PipelineArgs,
    /// Print as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Only gaps detected at or after this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub(crate) since: Option<DateTime<Utc>>,
    /// Read the dataset to tell, per gap, how many of its 30 s buckets it holds: a true
    /// loss holds none (see the changelog on gaps recorded by older builds).
    #[arg(long)]
    pub(crate) check_gaps: bool,
    #[command(flatten)]
    pub(crate) budget: BudgetArgs,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-25T12:00:00Z: {e}"))
}

/// Parses `90s`, `4m`, `1h`, `1h30m`.
/// A `--schedule`: a duration no longer than the time a target may go unserved, since
/// runs further apart leave data behind that the API drops before the next one.
fn parse_schedule(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let within = crate::plan::capacity::SERVE_WITHIN.num_seconds() as u64;
    if d.as_secs() > within {
        return Err(format!(
            "runs {} apart lose data: the API keeps 60 minutes, so runs must start at most {} minutes apart (5m is a good default)",
            crate::plan::capacity::every(d),
            within / 60
        ));
    }
    Ok(d)
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration: write it like 90s, 4m or 1h30m");
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let mult = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => return Err(bad()),
        };
        total = n
            .checked_mul(mult)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("4m"), Ok(Duration::from_secs(240)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        for bad in ["", "4", "m", "0s", "4x", "-1m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
