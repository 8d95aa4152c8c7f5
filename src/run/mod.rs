//! One run of a pipeline, wiring the other modules (docs/design.md, "One run"): lease, state,
//! plan, fetch earliest due first, write slot files, save state, summary.
//!
//! The stages, each in its own file: `prepare` (state, sweep, plan), `dispatch`
//! (pacing, in-flight requests, the deadline), `slots` (answers into slot files),
//! `runner` (what the run holds, state saves and the summary).

pub(crate) mod fetch;
#[cfg(test)]
pub(crate) mod fixtures;
mod prepare;
mod recoverer;
pub(crate) mod report;
pub mod rows;
mod runner;
pub(crate) mod since;
#[cfg(test)]
mod untrusted_answers;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::api::client::ClientError;
use crate::api::limit::{Pacer, RetryPolicy};
use crate::api::{Client, Timeouts};
use crate::clock::{ApiClock, Clock};
use crate::config::Pipeline;
use crate::discovery::Scanner;
use crate::obs::progress::Progress;
use crate::plan::Backfill;
use crate::plan::capacity::{Budget, Capacity};
use crate::sink::{Sink, SinkError};
use crate::state::{GapError, Lease, LeaseError, LeaseOptions, StateError};
use volc_rtc::Credentials;

pub use crate::obs::summary::Dropped;
pub(crate) use crate::obs::summary::Exit;
pub use crate::obs::summary::Summary;
pub(crate) use fetch::{FetchStats, Fetched, Fetcher, Outcome};
pub(crate) use prepare::targets_from_state;
pub use report::Report;
pub(crate) use report::{Verdict, exit_of_sink};

use runner::Runner;

/// How a run behaves beyond its pipeline file.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunOptions {
    /// The run's time source: `--now` moves its data reading.
    pub(crate) clock: Clock,
    /// Stop sending after this long: write what was fetched and leave the rest for the
    /// next run.
    pub(crate) max_duration: Option<Duration>,
    /// Exit 6 when this run records a new gap.
    pub(crate) fail_on_gap: bool,
    pub(crate) retry: RetryPolicy,
    pub(crate) timeouts: Timeouts,
    /// TTL and renewal of the lease on object stores.
    pub(crate) lease: LeaseOptions,
    /// Also re-fetch and rewrite this range (`rtcq backfill`).
    pub(crate) backfill: Option<Backfill>,
    /// How often the scheduler starts a run: the next run's start, for judging what is
    /// left pending, and the capacity the run warns about.
    pub(crate) schedule: Option<Duration>,
    /// The progress bar (off by default).
    pub(crate) progress: Progress,
    /// Rows held in memory before they are spilled to disk; default
    /// [`buffer::DEFAULT_SPILL_POINTS`].
    pub(crate) spill_rows: Option<usize>,
    /// Where rows are spilled (`--spill-dir`); default: the local sink's folder, or the
    /// system's temporary folder for S3.
    pub(crate) spill_dir: Option<std::path::PathBuf>,
}

/// The schedule assumed when none is given: the README's and the deploy examples'.
pub(crate) const DEFAULT_SCHEDULE: Duration = Duration::from_secs(300);

impl RunOptions {
    /// The request budget the run is on.
    pub(crate) fn budget(&self, requests_per_second: f64) -> Budget {
        Budget::new(
            requests_per_second,
            self.schedule.unwrap_or(DEFAULT_SCHEDULE),
            self.max_duration,
        )
    }
}

/// A run that could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The pipeline's lease could not be taken or was lost; "busy" has its own exit code.
    #[error(transparent)]
    Lease(#[from] LeaseError),
    /// The dataset could not be opened, read or written.
    #[error(transparent)]
    Sink(#[from] SinkError),
    /// The state could not be loaded or saved; the run stops rather than start over.
    #[error(transparent)]
    State(#[from] StateError),
    /// The gap ledger could not be read or appended to.
    #[error(transparent)]
    Gaps(#[from] GapError),
    /// The API endpoint is unusable or the HTTP client cannot be built (a usage error).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The run cannot start as asked: credentials missing from the environment, a bad
    /// test knob (a usage error).
    #[error("{0}")]
    Setup(String),
    /// The run's own outputs could not be written (the metrics file).
    #[error("{0}")]
    Output(String),
    /// The spill folder cannot be written: a config error, found before anything is
    /// fetched.
    #[error(
        "spill directory {path} is not writable ({source}): give --spill-dir (or RTCQ_SPILL_DIR) a writable folder, such as an emptyDir volume on Kubernetes"
    )]
    SpillDir {
        /// The folder the run would spill to.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// A fresh id for a run: time and a random-ish suffix.
pub(crate) fn new_run_id(now: DateTime<Utc>) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        nanos ^ std::process::id().rotate_left(16)
    )
}

/// The span every log line of a run is in: it names the pipeline and the run.
pub(crate) fn run_span(pipeline: &str, run_id: &str) -> tracing::Span {
    tracing::info_span!("run", pipeline = %pipeline, run_id = %run_id)
}

/// Runs `pipeline` once, with an id and start time the caller chose, in the caller's
/// span (which should be [`run_span`], so that the caller's own lines carry the same
/// fields). Whatever happens, the report says what the run did and why it stopped.
pub(crate) async fn run_with_id(
    pipeline: &Pipeline,
    creds: Credentials,
    opts: &RunOptions,
    run_id: &str,
) -> Report {
    let clock = opts.clock;
    let sink = match open_sink(pipeline) {
        Ok(s) => s,
        Err(e) => return stopped(pipeline, opts, run_id, e.into()),
    };
    if let Err(e) = sink.sink_root().check_credentials().await {
        return stopped(pipeline, opts, run_id, e.into());
    }
    let lease = match Lease::acquire_with(&sink, &pipeline.name, run_id, opts.lease, clock).await {
        Ok(l) => l,
        Err(e) => return stopped(pipeline, opts, run_id, e.into()),
    };
    // Whatever happens next, the lease is released before returning.
    let report = run_leased(pipeline, creds, opts, sink, &lease, run_id).await;
    lease.release().await;
    report
}

/// The report of a run stopped by `error` before it could fetch anything.
pub(crate) fn stopped(
    pipeline: &Pipeline,
    opts: &RunOptions,
    run_id: &str,
    error: RunError,
) -> Report {
    let summary = Summary::stopped(&pipeline.name, run_id, &opts.clock, pipeline.targets.len());
    Report::new(summary, Verdict::default(), Some(error))
}

/// Says once, before anything is fetched, when the run's targets (listed and
/// discovered) exceed what the budget can serve without loss.
fn warn_over_capacity(pipeline: &Pipeline, opts: &RunOptions, targets: usize) {
    let capacity = Capacity {
        targets: targets as u64,
        budget: opts.budget(pipeline.api.requests_per_second),
    };
    if capacity.over() {
        tracing::warn!(
            targets = capacity.targets,
            capacity = capacity.budget.capacity(),
            "{capacity}"
        );
    }
}

/// The part of [`run`] done while holding the lease: prepare, fetch and write, report.
async fn run_leased(
    pipeline: &Pipeline,
    creds: Credentials,
    opts: &RunOptions,
    sink: Sink,
    lease: &Lease,
    run_id: &str,
) -> Report {
    let api = std::sync::Arc::new(ApiClock::new(opts.clock));
    let client = match Client::new(
        &pipeline.api.endpoint,
        &pipeline.api.region,
        creds,
        opts.timeouts,
    ) {
        Ok(c) => c.with_api_clock(api.clone()),
        Err(e) => return stopped(pipeline, opts, run_id, e.into()),
    };
    let scanner = (!pipeline.scans.is_empty()).then(|| {
        Scanner::new(
            client.clone(),
            pipeline.api.room_info_requests_per_second,
            opts.retry,
        )
    });
    let recoverer = pipeline.recovery.enabled.then(|| {
        recoverer::Recoverer::new(
            client.clone(),
            pipeline.recovery.requests_per_second,
            opts.retry,
        )
    });
    let prepared = match prepare::prepare(
        pipeline,
        opts,
        &sink,
        &api,
        Some(&client),
        scanner.as_ref(),
    )
    .await
    {
        Ok(p) => p,
        Err(e) => return stopped(pipeline, opts, run_id, e),
    };
    warn_over_capacity(pipeline, opts, prepared.targets.len());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let fetcher = Fetcher {
        client,
        pacer: std::sync::Arc::new(Pacer::new(pipeline.api.requests_per_second)),
        policy: opts.retry,
        api,
        stats: std::sync::Arc::new(FetchStats::default()),
        stop: stop_rx,
    };
    let (store, root) = (sink.store(), sink.root().clone());
    let mut runner = Runner::new(pipeline, opts, sink, lease, run_id, prepared);
    let outcome = async {
        // Losses found while planning are recorded before anything else moves.
        runner.flush_gaps().await?;
        let deadline = opts.max_duration.map(|d| tokio::time::Instant::now() + d);
        opts.progress.start(runner.requests_planned());
        let fetched = runner.fetch_all(&fetcher, stop_tx, deadline).await;
        opts.progress.finish();
        // Whatever stopped the fetching, what came back is written (not after a lost
        // lease: `flush` refuses then).
        let flushed = runner.flush().await;
        let deadline_reached = fetched?;
        flushed?;
        // Real-time first: recovery has what time the run has left.
        if let Some(r) = &recoverer
            && !deadline_reached
        {
            runner.recover(r, deadline).await?;
        }
        Ok::<_, RunError>(deadline_reached)
    }
    .await;
    runner.finish_store();
    let (deadline_reached, error) = match outcome {
        Ok(deadline_reached) => (deadline_reached, None),
        // What the run did before it stopped, with the error.
        Err(error) => (false, Some(error)),
    };
    let report = runner.report(
        &fetcher,
        scanner.as_ref(),
        recoverer.as_ref().map(|r| &r.stats),
        deadline_reached,
        error,
    );
    // What the run did, for `status`: only while this run still owns the pipeline.
    if !lease.is_lost() {
        crate::state::last_run::save(&store, &root, &pipeline.name, &report.summary).await;
    }
    report
}

/// Opens the pipeline's sink.
pub(crate) fn open_sink(pipeline: &Pipeline) -> Result<Sink, SinkError> {
    let root = crate::sink::open(&pipeline.sink.url, &pipeline.sink.store_options())?;
    Sink::new(root, &pipeline.name)
}

/// Opens the pipeline's sink as `plan` and `status` read it: nothing is created.
pub(crate) fn open_sink_to_read(pipeline: &Pipeline) -> Result<Sink, SinkError> {
    let root =
        crate::sink::store::open_to_read(&pipeline.sink.url, &pipeline.sink.store_options())?;
    Sink::new(root, &pipeline.name)
}
