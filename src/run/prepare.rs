//! Before the first request: read the state (a state that cannot be understood stops
//! the run with nothing changed), sweep what an interrupted run left, and plan.

use super::buffer::{self, RowStore};
use super::{RunError, RunOptions};
use crate::clock::Clock;
use crate::config::Pipeline;
use crate::plan::{Plan, Progress, Window};
use crate::sink::Sink;
use crate::state::{GapLedger, State, StateStore, TargetState};

/// What a run starts from.
pub(super) struct Prepared {
    pub state_store: StateStore,
    pub ledger: GapLedger,
    pub store: RowStore,
    pub window: Window,
    pub plan: Plan,
}

pub(super) async fn prepare(
    pipeline: &Pipeline,
    opts: &RunOptions,
    sink: &Sink,
    clock: Clock,
) -> Result<Prepared, RunError> {
    let state_store = StateStore::new(
        sink.store(),
        sink.root(),
        &pipeline.name,
        !sink.sink_root().is_local(),
    );
    let ledger = GapLedger::new(sink.store(), sink.root(), &pipeline.name);
    let old = state_store
        .load(&pipeline.name, pipeline.sink.slot.num_seconds())
        .await?;
    // Only once the state is known to be readable: a run that stops on a bad state
    // leaves every file as it found it.
    let swept = sink.sweep_temp_files().await?;
    if swept > 0 {
        tracing::info!(
            files = swept,
            "removed temporary files left by an interrupted run"
        );
    }
    let store = RowStore::new(
        clean_spill_dir(sink, &pipeline.name)?,
        opts.spill_rows.unwrap_or(buffer::DEFAULT_SPILL_POINTS),
    );
    let window = Window::at(clock.now(), pipeline.sink.slot);
    let mut progress = prior_progress(pipeline, old.as_ref());
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
    let plan = Plan::build(progress, window, |i| pipeline.targets[i].max_lag);
    log_plan(pipeline, &plan, &window);
    Ok(Prepared {
        state_store,
        ledger,
        store,
        window,
        plan,
    })
}

/// Each target's progress in the pipeline's order; a target the state does not know
/// (new, or newly added to the config) was never fetched.
pub(crate) fn prior_progress(pipeline: &Pipeline, state: Option<&State>) -> Vec<Progress> {
    pipeline
        .targets
        .iter()
        .map(|t| {
            state
                .and_then(|s| s.targets.get(&t.key()))
                .map(TargetState::progress)
                .unwrap_or_default()
        })
        .collect()
}

fn log_plan(pipeline: &Pipeline, plan: &Plan, window: &Window) {
    let first = plan.requests.iter().filter(|r| r.first).count();
    let due: String = plan
        .requests
        .first()
        .map(|r| r.due.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    tracing::info!(
        targets = pipeline.targets.len(),
        requests = plan.requests.len(),
        never_fetched = first,
        earliest_due = %due,
        settled_end = %window.settled_end,
        horizon = %window.horizon,
        "planned"
    );
}

/// Where a run of `pipeline` spills rows, emptied of what an interrupted run left: a
/// hidden directory of a local sink root (on the same disk as the dataset, ignored by
/// readers), else one under the system temp directory named after the pipeline and the
/// sink URL. Only the lease holder uses it.
fn clean_spill_dir(sink: &Sink, pipeline: &str) -> Result<std::path::PathBuf, RunError> {
    let dir = match sink.sink_root().local_dir() {
        Some(dir) => dir.join(format!(".rtcq-spill-{pipeline}")),
        None => {
            // FNV-1a of the URL: stable across runs and builds.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for b in sink.sink_root().url().bytes() {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
            }
            std::env::temp_dir().join(format!("rtcq-spill-{pipeline}-{h:016x}"))
        }
    };
    if dir.exists() {
        tracing::info!(dir = %dir.display(), "removed spilled rows left by an interrupted run");
        std::fs::remove_dir_all(&dir).map_err(|source| RunError::Spill {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(dir)
}
