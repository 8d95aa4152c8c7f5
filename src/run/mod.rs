//! One run of a pipeline, wiring the other modules (DESIGN.md, "One run"): lease, state,
//! plan, fetch, write slot files, save state, summary.

pub mod buffer;
pub mod fetch;
pub mod rows;
pub mod summary;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::api::client::ClientError;
use crate::api::{ApiError, Client, Timeouts};
use crate::auth::Credentials;
use crate::clock::Clock;
use crate::config::{Pipeline, ProductType, Target};
use crate::limit::{Pacer, RetryPolicy};
use crate::plan::{Backfill, Lost, Plan, ScheduleFit, Slot, Window};
use crate::progress::Progress;
use crate::sink::{Sink, SinkError, SlotEncoder};
use crate::state::{
    Gap, GapError, GapLedger, Lease, LeaseError, LeaseOptions, State, StateError, StateStore,
    TargetState,
};

use buffer::{Point, RowStore, SlotRows};
pub use fetch::{FetchStats, Fetched, Fetcher};
pub use rows::Dropped;
pub use summary::{Exit, LostRange, Summary, TargetLag};

/// How a run behaves beyond its pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Pretend the current time is this instant (planning only).
    pub now: Option<DateTime<Utc>>,
    /// Stop in time: save what is done and leave the rest pending.
    pub max_duration: Option<Duration>,
    /// Exit 6 when this run records a new gap.
    pub fail_on_gap: bool,
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// Requests in flight at once; default from the rate.
    pub in_flight: Option<usize>,
    /// TTL and renewal of the lease on object stores.
    pub lease: LeaseOptions,
    /// Also re-fetch and rewrite this range (`rtcq backfill`).
    pub backfill: Option<Backfill>,
    /// How often the scheduler starts a run (warns when the targets do not fit it).
    pub schedule: Option<Duration>,
    /// The progress bar (off by default).
    pub progress: Progress,
    /// Rows held in memory before they are spilled to disk; default
    /// [`buffer::DEFAULT_SPILL_POINTS`].
    pub spill_rows: Option<usize>,
}

/// A run that could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Gaps(#[from] GapError),
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The run stopped part way: the error and what it had done by then.
    #[error("{error}")]
    Stopped {
        error: Box<RunError>,
        summary: Box<Summary>,
    },
    #[error("spilling rows to {path}: {source}")]
    Spill {
        path: String,
        source: std::io::Error,
    },
}

impl RunError {
    pub fn exit(&self) -> Exit {
        match self {
            RunError::Lease(LeaseError::Busy { .. }) => Exit::Busy,
            RunError::Client(_) => Exit::Usage,
            RunError::Stopped { error, .. } => error.exit(),
            _ => Exit::Failed,
        }
    }
}

/// Why a loss happened, as written in the gap ledger.
pub const GAP_REASON: &str = "beyond the API's 60-minute horizon before it could be fetched";

/// How often progress is saved during a long run.
const SAVE_EVERY: Duration = Duration::from_secs(5);

/// A fresh id for a run: time and a random-ish suffix.
pub fn new_run_id(now: DateTime<Utc>) -> String {
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

/// Whether an API error means no other request can succeed either.
fn stops_everything(e: &ApiError) -> bool {
    matches!(
        e.code(),
        Some(
            "SignatureDoesNotMatch"
                | "InvalidAccessKey"
                | "InvalidTimestamp"
                | "MissingRequestInfo"
                | "InvalidActionOrVersion"
                | "AccessDenied"
                | "AccessDenied.ServiceNotEnabled"
        )
    )
}

/// The work on one slot file: which targets were asked for it and what came back.
#[derive(Debug, Default)]
struct SlotWork {
    remaining: usize,
    /// Targets whose answer covers `[from, to)` of this slot: their old rows in that
    /// range are replaced.
    fetched: Vec<(usize, DateTime<Utc>, DateTime<Utc>)>,
    rows: SlotRows,
}

/// The rows of one target in a slot file: product type, room, user.
type SeriesKey<'a> = (ProductType, Option<&'a str>, Option<&'a str>);

/// Everything one run needs while it goes.
struct Runner<'a> {
    pipeline: &'a Pipeline,
    sink: Sink,
    state_store: StateStore,
    ledger: GapLedger,
    run_id: String,
    window: Window,
    plan: Plan,
    /// Per target: slot starts written this run.
    done: Vec<BTreeSet<DateTime<Utc>>>,
    slots: HashMap<(String, DateTime<Utc>), SlotWork>,
    /// The rows of `slots`, in memory or spilled.
    store: RowStore,
    gaps_pending: Vec<Gap>,
    gaps_recorded: usize,
    lost: Vec<LostRange>,
    rows_written: u64,
    files_written: u64,
    dropped: Dropped,
    errors: Vec<String>,
    rejected: bool,
    /// Set when the lease was found taken over: nothing more may be saved.
    lease_lost: Arc<AtomicBool>,
    lease_location: String,
    /// Per (target, slot start): where a failed request's slot was cut by the horizon
    /// at send time (the part before is recorded as lost).
    cut: HashMap<(usize, DateTime<Utc>), DateTime<Utc>>,
    progress: Progress,
    /// Buffers of [`Runner::take`], reused from answer to answer.
    scratch: Vec<Vec<Point>>,
}

/// The span every log line of a run is in: it names the pipeline and the run.
pub fn run_span(pipeline: &str, run_id: &str) -> tracing::Span {
    tracing::info_span!("run", pipeline = %pipeline, run_id = %run_id)
}

/// Runs `pipeline` once, in its own [`run_span`].
pub async fn run(
    pipeline: &Pipeline,
    creds: Credentials,
    opts: &RunOptions,
) -> Result<Summary, RunError> {
    let started_at = Utc::now();
    let run_id = new_run_id(started_at);
    let span = run_span(&pipeline.name, &run_id);
    run_with_id(pipeline, creds, opts, &run_id, started_at)
        .instrument(span)
        .await
}

/// [`run`] with an id and start time the caller chose, in the caller's span (which
/// should be [`run_span`], so that the caller's own lines carry the same fields).
pub async fn run_with_id(
    pipeline: &Pipeline,
    creds: Credentials,
    opts: &RunOptions,
    run_id: &str,
    started_at: DateTime<Utc>,
) -> Result<Summary, RunError> {
    let clock = opts.now.map_or_else(Clock::system, Clock::starting_at);
    let run_id = run_id.to_string();
    if let Some(schedule) = opts.schedule {
        let fit = ScheduleFit {
            targets: pipeline.targets.len(),
            requests_per_second: pipeline.api.requests_per_second,
            schedule,
        };
        if !fit.fits() {
            tracing::warn!(
                targets = fit.targets,
                seconds_needed = fit.seconds_needed(),
                schedule_seconds = schedule.as_secs(),
                "{fit}: split the targets across pipelines (one per account) or schedule less often"
            );
        }
    }

    let sink = open_sink(pipeline)?;
    let lease = Lease::acquire_with(&sink, &pipeline.name, &run_id, opts.lease).await?;
    // Whatever happens next, the lease is released before returning.
    let result = run_leased(
        pipeline, creds, opts, sink, &lease, started_at, clock, run_id,
    )
    .await;
    lease.release().await;
    result
}

/// The part of [`run`] done while holding the lease.
#[allow(clippy::too_many_arguments)]
async fn run_leased(
    pipeline: &Pipeline,
    creds: Credentials,
    opts: &RunOptions,
    sink: Sink,
    lease: &Lease,
    started_at: DateTime<Utc>,
    clock: Clock,
    run_id: String,
) -> Result<Summary, RunError> {
    let slot_seconds = pipeline.sink.slot.num_seconds();
    let state_store = StateStore::new(
        sink.store(),
        sink.root(),
        &pipeline.name,
        !sink.sink_root().is_local(),
    );
    let ledger = GapLedger::new(sink.store(), sink.root(), &pipeline.name);
    // A state that cannot be understood stops the run before anything is changed.
    let old = state_store.load(&pipeline.name, slot_seconds).await?;
    // Only once the state is known to be readable: a run that stops on a bad state
    // leaves every file as it found it.
    let swept = sink.sweep_temp_files().await?;
    if swept > 0 {
        tracing::info!(
            files = swept,
            "removed temporary files left by an interrupted run"
        );
    }
    let spill_dir = spill_dir(&sink, &pipeline.name);
    if spill_dir.exists() {
        tracing::info!(dir = %spill_dir.display(), "removed spilled rows left by an interrupted run");
        std::fs::remove_dir_all(&spill_dir).map_err(|source| RunError::Spill {
            path: spill_dir.display().to_string(),
            source,
        })?;
    }
    let store = RowStore::new(
        spill_dir,
        opts.spill_rows.unwrap_or(buffer::DEFAULT_SPILL_POINTS),
    );
    let prior: Vec<TargetState> = pipeline
        .targets
        .iter()
        .map(|t| {
            old.as_ref()
                .and_then(|s| s.targets.get(&t.key()).cloned())
                .unwrap_or_default()
        })
        .collect();
    let now = clock.now();
    let window = Window::at(now, pipeline.sink.slot);
    let mut progress: Vec<_> = prior.iter().map(TargetState::progress).collect();
    if let Some(b) = &opts.backfill {
        for p in &mut progress {
            b.apply(p, &window);
        }
        if let Some(l) = b.unreachable(&window) {
            tracing::warn!(start = %l.start, end = %l.end, "backfill: this part of the range is beyond the API's 60-minute horizon and cannot be fetched again");
        }
        if let Some(l) = b.unsettled(&window) {
            tracing::warn!(start = %l.start, end = %l.end, "backfill: this part of the range is not settled yet; a later run fetches it");
        }
    }
    let plan = Plan::build(&progress, window);

    let client = Client::new(
        &pipeline.api.endpoint,
        &pipeline.api.region,
        creds,
        opts.timeouts,
    )?;
    let fetcher = Fetcher {
        client,
        pacer: Arc::new(Pacer::new(pipeline.api.requests_per_second)),
        policy: opts.retry,
        clock,
        stats: Arc::new(FetchStats::default()),
    };

    let mut runner = Runner {
        pipeline,
        sink,
        state_store,
        ledger,
        run_id: run_id.clone(),
        window,
        done: vec![BTreeSet::new(); pipeline.targets.len()],
        slots: HashMap::new(),
        store,
        plan,
        gaps_pending: Vec::new(),
        gaps_recorded: 0,
        lost: Vec::new(),
        rows_written: 0,
        files_written: 0,
        dropped: Dropped::default(),
        errors: Vec::new(),
        rejected: false,
        lease_lost: lease.lost_flag(),
        lease_location: lease.location(),
        cut: HashMap::new(),
        progress: opts.progress.clone(),
        scratch: Vec::new(),
    };
    for (t, tp) in runner.plan.targets.iter().enumerate() {
        for l in &tp.lost {
            let gap = make_gap(&pipeline.name, &pipeline.targets[t], l, now);
            runner.gaps_pending.push(gap);
        }
    }
    for req in runner.plan.requests.iter() {
        let app = &pipeline.targets[req.target].app_id;
        for s in &req.slots {
            runner
                .slots
                .entry((app.clone(), s.start))
                .or_default()
                .remaining += 1;
        }
    }
    tracing::info!(
        targets = pipeline.targets.len(),
        requests = runner.plan.requests.len(),
        settled_end = %window.settled_end,
        horizon = %window.horizon,
        "planned"
    );
    // Record losses found while planning before anything else moves.
    let outcome = async {
        runner.flush_gaps().await?;
        let deadline = opts.max_duration.map(|d| tokio::time::Instant::now() + d);
        opts.progress.start(runner.plan.requests.len());
        let fetched = runner.fetch_and_write(&fetcher, opts, deadline).await;
        opts.progress.finish();
        let deadline_reached = fetched?;
        runner.save_state().await?;
        Ok::<_, RunError>(deadline_reached)
    }
    .await;
    // Spilled rows are only useful within this run, whatever its outcome.
    runner.store.cleanup();
    if runner.store.spilled > 0 {
        tracing::info!(
            rows = runner.store.spilled,
            "rows spilled to disk while waiting for their slots"
        );
    }
    let finished_at = Utc::now();
    match outcome {
        Ok(deadline_reached) => Ok(runner.summary(
            &fetcher,
            opts,
            started_at,
            finished_at,
            now,
            deadline_reached,
        )),
        // What the run did before it stopped, with the error and its exit code.
        Err(error) => {
            let mut summary = runner.summary(&fetcher, opts, started_at, finished_at, now, false);
            summary.exit_code = error.exit();
            summary.errors.push(error.to_string());
            Err(RunError::Stopped {
                error: Box::new(error),
                summary: Box::new(summary),
            })
        }
    }
}

/// Where a run of `pipeline` spills rows: a hidden directory of a local sink root (on
/// the same disk as the dataset, ignored by readers), else one under the system temp
/// directory named after the pipeline and the sink URL. Only the lease holder uses it,
/// so whatever is there at start was left by an interrupted run.
fn spill_dir(sink: &Sink, pipeline: &str) -> std::path::PathBuf {
    match sink.sink_root().local_dir() {
        Some(dir) => dir.join(format!(".rtcq-spill-{pipeline}")),
        None => {
            // FNV-1a of the URL: stable across runs and builds.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in sink.sink_root().url().bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            std::env::temp_dir().join(format!("rtcq-spill-{pipeline}-{h:016x}"))
        }
    }
}

/// Runs CPU-bound work on the runner's task without stalling the other tasks of a
/// multi-threaded runtime.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Opens the pipeline's sink.
pub fn open_sink(pipeline: &Pipeline) -> Result<Sink, SinkError> {
    let root = crate::sink::open(
        &pipeline.sink.url,
        &crate::sink::StoreOptions {
            endpoint: pipeline.sink.endpoint.clone(),
            region: pipeline.sink.region.clone(),
        },
    )?;
    Sink::new(root, &pipeline.name)
}

fn make_gap(pipeline: &str, target: &Target, l: &Lost, now: DateTime<Utc>) -> Gap {
    Gap {
        pipeline: pipeline.to_string(),
        target: target.key(),
        app_id: target.app_id.clone(),
        product_type: target.product_type.as_str().to_string(),
        room_id: target.room_id.clone(),
        user_id: target.user_id.clone(),
        start: l.start,
        end: l.end,
        reason: GAP_REASON.to_string(),
        detected_at: now,
    }
}

impl Runner<'_> {
    /// Sends every planned request and writes each slot file as soon as all its
    /// requests are back. Returns whether the deadline cut the run short.
    async fn fetch_and_write(
        &mut self,
        fetcher: &Fetcher,
        opts: &RunOptions,
        deadline: Option<tokio::time::Instant>,
    ) -> Result<bool, RunError> {
        let in_flight = opts.in_flight.unwrap_or_else(|| {
            ((self.pipeline.api.requests_per_second * 8.0).ceil() as usize).clamp(4, 64)
        });
        let stop = Arc::new(AtomicBool::new(false));
        // Answers waiting for the runner are parsed (about 100 KiB each): a short queue,
        // so a runner slower than the network holds back the fetches instead of
        // buffering answers.
        let (tx, mut rx) = mpsc::channel::<Fetched>(in_flight.min(8));
        let requests = self.plan.requests.clone();
        let targets = self.pipeline.targets.clone();
        let dispatcher = {
            let stop = stop.clone();
            let fetcher = fetcher.clone();
            tokio::spawn(
                async move {
                    let permits = Arc::new(Semaphore::new(in_flight));
                    let mut tasks = JoinSet::new();
                    for i in 0..requests.len() {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let (fetcher, requests, targets, tx) = (
                            fetcher.clone(),
                            requests.clone(),
                            targets.clone(),
                            tx.clone(),
                        );
                        tasks.spawn(
                            async move {
                                let req = &requests[i];
                                let f = fetcher.fetch(i, &targets[req.target], req).await;
                                // The permit is held until the runner has the answer:
                                // released before, answers of a fast API would pile up
                                // in memory behind a slower runner.
                                let _ = tx.send(f).await;
                                drop(permit);
                            }
                            .in_current_span(),
                        );
                        while tasks.try_join_next().is_some() {}
                    }
                    drop(tx);
                    while tasks.join_next().await.is_some() {}
                }
                .in_current_span(),
            )
        };
        let mut last_save = tokio::time::Instant::now();
        let mut deadline_reached = false;
        loop {
            let next = match deadline {
                Some(d) => tokio::select! {
                    f = rx.recv() => f,
                    _ = tokio::time::sleep_until(d) => {
                        deadline_reached = true;
                        None
                    }
                },
                None => rx.recv().await,
            };
            let Some(f) = next else { break };
            if let Err(e) = &f.outcome
                && stops_everything(e)
            {
                stop.store(true, Ordering::Relaxed);
            }
            self.take(f).await?;
            opts.progress.request_done();
            if self.store.over_budget() {
                self.spill()?;
            }
            if last_save.elapsed() >= SAVE_EVERY {
                self.save_state().await?;
                last_save = tokio::time::Instant::now();
            }
        }
        if deadline_reached {
            stop.store(true, Ordering::Relaxed);
            dispatcher.abort();
            tracing::warn!("run deadline reached: saving progress, the rest stays pending");
        } else {
            let _ = dispatcher.await;
        }
        Ok(deadline_reached)
    }

    /// Takes one answer in, writing every slot it completes.
    async fn take(&mut self, f: Fetched) -> Result<(), RunError> {
        // The plan's requests are shared: holding them borrows nothing from `self`, so
        // an answer's request is not copied.
        let requests = self.plan.requests.clone();
        let req = &requests[f.request];
        let t = req.target;
        let target = &self.pipeline.targets[t];
        let app = target.app_id.clone();
        if let Some(l) = &f.lost {
            tracing::warn!(target_id = %target, start = %l.start, end = %l.end, "range fell out of the horizon while queued: recorded as lost");
            let gap = make_gap(&self.pipeline.name, target, l, self.window.now);
            self.gaps_pending.push(gap);
        }
        // The answer's points by the index of their slot in `req.slots`, in buffers kept
        // across answers (no allocation per answer once they have grown).
        let mut by_slot = std::mem::take(&mut self.scratch);
        by_slot.resize_with(req.slots.len(), Vec::new);
        let ok = match &f.outcome {
            Ok(Some(result)) => {
                let mut dropped = Dropped::default();
                let store = &mut self.store;
                let series: Vec<u32> = result
                    .series
                    .iter()
                    .map(|s| {
                        store.series_id(
                            target.room_id.as_deref(),
                            target.user_id.as_deref(),
                            target.product_type,
                            &s.name,
                            &s.unit,
                        )
                    })
                    .collect();
                // Points come in runs of one slot: remember the last one's index.
                let mut last_slot: Option<(DateTime<Utc>, Option<usize>)> = None;
                rows::for_each_point(
                    target,
                    result,
                    f.start,
                    req.end,
                    self.pipeline.sink.slot,
                    &mut dropped,
                    |p| {
                        let index = match last_slot {
                            Some((start, index)) if start == p.slot_start => index,
                            _ => {
                                let index = req
                                    .slots
                                    .binary_search_by(|s| s.start.cmp(&p.slot_start))
                                    .ok();
                                last_slot = Some((p.slot_start, index));
                                index
                            }
                        };
                        let Some(index) = index else { return };
                        by_slot[index].push(Point {
                            series: series[p.series],
                            stream: store.stream_id(p.stream_id),
                            ts: p.timestamp_us,
                            value: p.value,
                        });
                    },
                );
                if dropped.total() > 0 {
                    tracing::warn!(
                        target_id = %target,
                        outside_window = dropped.outside_window,
                        off_grid = dropped.off_grid,
                        bad_timestamp = dropped.bad_timestamp,
                        bad_value = dropped.bad_value,
                        unnamed_series = dropped.unnamed_series,
                        user_not_applied = dropped.user_not_applied,
                        duplicate = dropped.duplicate,
                        "dropped points the answer should not have held"
                    );
                }
                self.dropped.add(&dropped);
                true
            }
            Ok(None) => true,
            Err(e) => {
                if !e.is_retryable() {
                    self.rejected = true;
                }
                let msg = format!("{target}: {e}");
                tracing::error!(target_id = %target, error = %e, "request failed: its slots stay pending");
                if self.errors.len() < 20 {
                    self.errors.push(msg);
                }
                false
            }
        };
        for (index, slot) in req.slots.iter().enumerate() {
            let key = (app.clone(), slot.start);
            let Some(work) = self.slots.get_mut(&key) else {
                continue;
            };
            if !ok && f.start > slot.start {
                self.cut.insert((t, slot.start), f.start);
            }
            if ok {
                work.fetched.push((t, f.start.max(slot.start), slot.end));
                self.store.add(&mut work.rows, &by_slot[index]);
            }
            work.remaining = work.remaining.saturating_sub(1);
            if work.remaining == 0
                && let Some(work) = self.slots.remove(&key)
            {
                self.finish_slot(&app, *slot, work).await?;
            }
        }
        for points in &mut by_slot {
            points.clear();
        }
        self.scratch = by_slot;
        Ok(())
    }

    /// Writes one slot file: the new rows plus the old rows of targets not replaced.
    async fn finish_slot(&mut self, app: &str, slot: Slot, work: SlotWork) -> Result<(), RunError> {
        if work.fetched.is_empty() {
            return Ok(());
        }
        let mut replaced: HashMap<SeriesKey<'_>, Vec<(i64, i64)>> = HashMap::new();
        for (t, from, to) in &work.fetched {
            let tg = &self.pipeline.targets[*t];
            replaced
                .entry((
                    tg.product_type,
                    tg.room_id.as_deref(),
                    tg.user_id.as_deref(),
                ))
                .or_default()
                .push((from.timestamp_micros(), to.timestamp_micros()));
        }
        self.check_lease()?;
        let existing = self.sink.read_slot_bytes(app, &slot).await?;
        let had_file = existing.is_some();
        let store = &mut self.store;
        let encoded = blocking(|| -> Result<_, RunError> {
            let mut old: Vec<Point> = Vec::new();
            if let Some((bytes, path)) = existing {
                crate::sink::decode_each(bytes, &path, |r| {
                    let key = (r.product_type, r.room_id, r.user_id);
                    let is_replaced = replaced.get(&key).is_some_and(|ranges| {
                        ranges
                            .iter()
                            .any(|(a, b)| r.timestamp_us >= *a && r.timestamp_us < *b)
                    });
                    if !is_replaced {
                        old.push(store.point(r));
                    }
                })?;
            }
            if work.rows.is_empty() && old.is_empty() && !had_file {
                return Ok(None);
            }
            let mut enc = SlotEncoder::new(&self.sink.file_meta(&slot))?;
            store
                .merge(work.rows, old, |r| enc.push(r))
                .map_err(|e| match e {
                    buffer::MergeError::Sink(e) => RunError::Sink(e),
                    buffer::MergeError::Spill(path, source) => RunError::Spill {
                        path: path.display().to_string(),
                        source,
                    },
                })?;
            Ok(Some(enc.finish()?))
        })?;
        if let Some((bytes, rows)) = encoded {
            let written = self.sink.write_slot_bytes(app, &slot, bytes, rows).await?;
            self.rows_written += written.rows as u64;
            self.files_written += 1;
            self.progress.rows(self.rows_written);
            tracing::debug!(path = %written.path, rows = written.rows, bytes = written.bytes, "slot file written");
        }
        for (t, _, _) in &work.fetched {
            self.done[*t].insert(slot.start);
        }
        Ok(())
    }

    /// Moves every slot's rows in memory to disk.
    fn spill(&mut self) -> Result<(), RunError> {
        let (store, slots) = (&mut self.store, &mut self.slots);
        let held = store.held();
        blocking(|| store.spill_all(slots.values_mut().map(|w| &mut w.rows))).map_err(
            |source| RunError::Spill {
                path: self.store.dir().display().to_string(),
                source,
            },
        )?;
        tracing::debug!(rows = held, "rows spilled to disk");
        Ok(())
    }

    async fn flush_gaps(&mut self) -> Result<(), RunError> {
        if self.gaps_pending.is_empty() {
            return Ok(());
        }
        self.check_lease()?;
        let pending = std::mem::take(&mut self.gaps_pending);
        let added = self.ledger.append(&pending).await?;
        for g in &added {
            tracing::warn!(target_id = %g.target, start = %g.start, end = %g.end, "lost: {}", g.reason);
            self.lost.push(LostRange {
                target: g.target.clone(),
                start: g.start,
                end: g.end,
            });
        }
        self.gaps_recorded += added.len();
        Ok(())
    }

    /// The state as of now: each cursor at the end of its plan, and every planned slot
    /// not yet written listed as incomplete. Safe to save at any moment: nothing is
    /// marked done before its file is durable.
    fn current_state(&self) -> State {
        let mut state = State::new(
            &self.pipeline.name,
            self.pipeline.sink.slot.num_seconds(),
            &self.run_id,
        );
        for (t, target) in self.pipeline.targets.iter().enumerate() {
            let tp = &self.plan.targets[t];
            // A slot is owed from its start, or from the horizon (or a later cut) when
            // the part before was never owed or is already in the gap ledger.
            let incomplete = tp
                .slots
                .iter()
                .filter(|s| !self.done[t].contains(&s.start))
                .filter_map(|s| {
                    let cut = self.cut.get(&(t, s.start)).copied();
                    let owed = s.start.max(self.window.horizon).max(cut.unwrap_or(s.start));
                    (owed < s.end).then_some(owed)
                })
                .collect();
            state.targets.insert(
                target.key(),
                TargetState {
                    cursor: tp.cursor,
                    incomplete,
                },
            );
        }
        state
    }

    /// Fails once the lease is known to be lost.
    fn check_lease(&self) -> Result<(), RunError> {
        if self.lease_lost.load(Ordering::SeqCst) {
            return Err(LeaseError::Lost {
                path: self.lease_location.clone(),
            }
            .into());
        }
        Ok(())
    }

    async fn save_state(&mut self) -> Result<(), RunError> {
        self.check_lease()?;
        self.flush_gaps().await?;
        let state = self.current_state();
        self.state_store.save(&state).await?;
        Ok(())
    }

    fn summary(
        &self,
        fetcher: &Fetcher,
        opts: &RunOptions,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        now: DateTime<Utc>,
        deadline_reached: bool,
    ) -> Summary {
        let state = self.current_state();
        let mut slots_pending = 0;
        let lag: Vec<TargetLag> = self
            .pipeline
            .targets
            .iter()
            .map(|t| {
                let ts = state.targets.get(&t.key()).cloned().unwrap_or_default();
                slots_pending += ts.incomplete.len();
                TargetLag {
                    target: t.to_string(),
                    app_id: t.app_id.clone(),
                    product_type: t.product_type.as_str().to_string(),
                    room_id: t.room_id.clone(),
                    user_id: t.user_id.clone(),
                    cursor: ts.cursor,
                    lag_seconds: ts.cursor.map(|c| (now - c).num_seconds()),
                    pending_slots: ts.incomplete.len(),
                }
            })
            .collect();
        let exit_code = if self.rejected {
            Exit::Rejected
        } else if opts.fail_on_gap && self.gaps_recorded > 0 {
            Exit::Gap
        } else if slots_pending > 0 || deadline_reached {
            Exit::Incomplete
        } else {
            Exit::Done
        };
        let s = &fetcher.stats;
        Summary {
            backfill: opts
                .backfill
                .map(|b| summary::BackfillReport::new(&b, &self.window)),
            pipeline: self.pipeline.name.clone(),
            run_id: self.run_id.clone(),
            started_at,
            finished_at,
            now,
            targets: self.pipeline.targets.len(),
            schedule_seconds: opts.schedule.map_or(0, |s| s.as_secs()),
            fits_schedule: opts.schedule.is_none_or(|schedule| {
                ScheduleFit {
                    targets: self.pipeline.targets.len(),
                    requests_per_second: self.pipeline.api.requests_per_second,
                    schedule,
                }
                .fits()
            }),
            requests_planned: self.plan.requests.len(),
            requests_sent: s.sent.load(Ordering::Relaxed),
            requests_retried: s.retried.load(Ordering::Relaxed),
            requests_throttled: s.throttled.load(Ordering::Relaxed),
            requests_failed: s.failed.load(Ordering::Relaxed),
            rows_written: self.rows_written,
            files_written: self.files_written,
            slots_pending,
            points_dropped: self.dropped,
            gaps_recorded: self.gaps_recorded,
            lost: self.lost.clone(),
            lag,
            deadline_reached,
            errors: self.errors.clone(),
            exit_code,
        }
    }
}
