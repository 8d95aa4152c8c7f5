//! `rtcq run` and `rtcq backfill`: one run, then its summary, metrics file and push.

use std::io::Write;
use std::time::Duration;

use tracing::Instrument;

use super::args::{BackfillArgs, RunArgs};
use super::{fail, load_config};
use crate::clock::Clock;
use crate::config::Pipeline;
use crate::obs::metrics;
use crate::obs::progress::Progress as Bar;
use crate::plan::Backfill;
use crate::run::{self, Exit, Report, RunError, RunOptions};
use crate::state::LeaseOptions;
use volc_rtc::Credentials;

/// How far `--now` may be past the wall clock: a scheduler that passes its own "now"
/// (e.g. Airflow's logical time) a moment late is not refused.
const NOW_TOLERANCE: chrono::TimeDelta = chrono::TimeDelta::seconds(10);

/// `rtcq run`: one run in its span, then its summary, metrics file and push. Every line
/// it logs after the config is read carries the pipeline and the run id.
pub async fn run(args: &RunArgs, progress: Bar) -> Exit {
    run_with(args, progress, None).await
}

/// `rtcq backfill`: a run that also re-fetches `[from, to)`.
pub async fn backfill(args: &BackfillArgs, progress: Bar) -> Exit {
    if args.from >= args.to {
        return fail(
            format!(
                "--from {} is not before --to {}: give a range such as --from 2026-11-25T11:00:00Z --to 2026-11-25T11:30:00Z",
                args.from.to_rfc3339(),
                args.to.to_rfc3339()
            ),
            Exit::Usage,
        );
    }
    let range = Backfill {
        from: args.from,
        to: args.to,
    };
    run_with(&args.run, progress, Some(range)).await
}

async fn run_with(args: &RunArgs, progress: Bar, backfill: Option<Backfill>) -> Exit {
    let pipeline = match load_config(&args.pipeline, args.endpoint.as_deref()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Some(now) = args.pipeline.now {
        let wall = chrono::Utc::now();
        if now > wall + NOW_TOLERANCE {
            return fail(
                format!(
                    "--now {} is later than this host's clock ({}): a run may only pretend an earlier time (tests, replays); leave --now out to run on the real clock. Nothing was written",
                    now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    wall.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                Exit::Usage,
            );
        }
    }
    let clock = Clock::at(args.pipeline.now);
    let run_id = run::new_run_id(clock.started());
    let span = run::run_span(&pipeline.name, &run_id);
    let launch = Launch {
        args,
        pipeline: &pipeline,
        run_id: &run_id,
        clock,
        backfill,
    };
    span.in_scope(|| super::warn_rate(&pipeline));
    let report = launch.run(progress).instrument(span.clone()).await;
    finish(args, &pipeline.name, report).instrument(span).await
}

/// One run about to start: its arguments, pipeline, id and clock, fixed before anything
/// can fail so that even a run that stops at once has a report.
struct Launch<'a> {
    args: &'a RunArgs,
    pipeline: &'a Pipeline,
    run_id: &'a str,
    clock: Clock,
    backfill: Option<Backfill>,
}

impl Launch<'_> {
    /// Credentials, lease options and the run itself: the report of what was done, or
    /// of a run that could not start.
    async fn run(&self, progress: Bar) -> Report {
        let args = self.args;
        let mut opts = RunOptions {
            clock: self.clock,
            max_duration: args.budget.max_duration,
            fail_on_gap: args.fail_on_gap,
            lease: LeaseOptions::default(),
            schedule: Some(args.budget.schedule),
            progress,
            retry: args.retry_policy(),
            timeouts: args.timeouts(),
            backfill: self.backfill,
            spill_rows: args.spill_rows.map(|n| n as usize),
            spill_dir: args.spill_dir.clone(),
        };
        let setup = |e: String| run::stopped(self.pipeline, &opts, self.run_id, RunError::Setup(e));
        let creds = match Credentials::from_env() {
            Ok(c) => c,
            Err(e) => return setup(e.to_string()),
        };
        match lease_options(args) {
            Ok(lease) => opts.lease = lease,
            Err(e) => return setup(e),
        }
        run::run_with_id(self.pipeline, creds, &opts, self.run_id).await
    }
}

/// Prints the error that stopped the run, logs the run's end, then writes the metrics
/// file, pushes the metrics and writes the summary, as asked; returns the exit code.
async fn finish(args: &RunArgs, pipeline: &str, mut report: Report) -> Exit {
    if let Some(e) = &report.error {
        fail(e, report.exit());
    }
    let summary = &report.summary;
    tracing::info!(
        requests = summary.requests_sent,
        retried = summary.requests_retried,
        throttled = summary.requests_throttled,
        failed = summary.requests_failed,
        rows = summary.rows_written,
        files = summary.files_written,
        slots_pending = summary.slots_pending,
        served = summary.targets_served,
        deferred = summary.targets_deferred,
        at_risk = summary.targets_at_risk,
        gaps = summary.gaps_recorded,
        seconds = (summary.duration_seconds() * 1000.0).round() / 1000.0,
        exit_code = summary.exit_code as u8,
        "run finished"
    );
    if let Some(path) = &args.metrics_file
        && let Err(e) = metrics::write_file(path, &metrics::render(&report.summary))
    {
        let error = RunError::Output(format!(
            "cannot write the metrics to {}: {e}",
            path.display()
        ));
        fail(&error, Exit::Failed);
        report.report_failed(error);
    }
    if let Some(url) = &args.pushgateway {
        // The data is written whatever the Pushgateway says: a failed push is logged,
        // it does not change the exit code.
        match metrics::push(url, pipeline, &metrics::render(&report.summary)).await {
            Ok(()) => tracing::info!("metrics pushed to the Pushgateway"),
            Err(e) => tracing::error!(error = %e, "metrics not pushed"),
        }
    }
    // Last, so that with `--summary -` the summary is the last line on stdout.
    if let Some(dest) = &args.summary {
        let summary = &report.summary;
        let written = if dest == "-" {
            serde_json::to_string(summary)
                .map_err(std::io::Error::other)
                .and_then(|j| writeln!(std::io::stdout(), "{j}"))
        } else {
            serde_json::to_string_pretty(summary)
                .map_err(std::io::Error::other)
                .and_then(|j| std::fs::write(dest, format!("{j}\n")))
        };
        if let Err(e) = written {
            return fail(
                format!("cannot write the summary to {dest}: {e}"),
                Exit::Failed,
            );
        }
    }
    report.exit()
}

/// The lease TTL and renewal period from `--lease-ttl-seconds` and
/// `--lease-renew-seconds`.
fn lease_options(args: &RunArgs) -> Result<LeaseOptions, String> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .map_err(|_| format!("{name} must be a number of seconds, not {v}"))
    };
    let mut opts = LeaseOptions::default();
    if let Some(v) = args.lease_ttl_seconds {
        let ttl = secs("RTCQ_LEASE_TTL_SECONDS", v)?;
        if ttl.is_zero() {
            return Err("RTCQ_LEASE_TTL_SECONDS must be more than 0".into());
        }
        opts = LeaseOptions::with_ttl(ttl);
    }
    if let Some(v) = args.lease_renew_seconds {
        let every = secs("RTCQ_LEASE_RENEW_SECONDS", v)?;
        opts.renew_every = (!every.is_zero()).then_some(every);
    }
    Ok(opts)
}
