//! What one run holds while it goes, how it saves progress, and the summary it ends
//! with.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};

use super::buffer::{Point, RowStore, SlotRows};
use super::prepare::Prepared;
use super::summary::{BackfillReport, Exit, LostRange, Summary, TargetLag};
use super::{Dropped, Fetcher, RunError, RunOptions, make_gap};
use crate::capacity::{Budget, Capacity};
use crate::config::Pipeline;
use crate::plan::{Progress, Request, Window, due, leaves_horizon};
use crate::progress::Progress as Bar;
use crate::sink::Sink;
use crate::state::{Gap, GapLedger, Lease, LeaseError, State, StateStore, TargetState};

/// The work on one slot file: which answers touch it and their rows.
#[derive(Debug, Default)]
pub(super) struct SlotWork {
    /// Indexes into [`Runner::answered`]: those targets' old rows in the part of this
    /// slot their answer covers are replaced (4 bytes a target and slot).
    pub fetched: Vec<u32>,
    pub rows: SlotRows,
}

/// One answered request whose rows wait for the next flush.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answered {
    pub target: usize,
    /// The window asked: `[start, end)`.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What the run did, for the summary.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub gaps_recorded: usize,
    pub lost: Vec<LostRange>,
    pub rows_written: u64,
    pub files_written: u64,
    pub dropped: Dropped,
    pub errors: Vec<String>,
    /// A request was refused as not retryable.
    pub rejected: bool,
    /// Requests answered (their targets served).
    pub answered: usize,
    /// Requests that failed for good.
    pub failed: usize,
    /// Requests not sent because the run stopped first.
    pub deferred: usize,
}

/// Everything one run needs while it goes.
pub(super) struct Runner<'a> {
    pub pipeline: &'a Pipeline,
    pub sink: Sink,
    pub state_store: StateStore,
    pub ledger: GapLedger,
    pub run_id: String,
    pub window: Window,
    pub budget: Budget,
    pub fail_on_gap: bool,
    pub backfill: Option<BackfillReport>,
    /// Earliest due first, shared with the fetches.
    pub requests: Arc<[Request]>,
    /// Per target: what it owes, as of the files already written.
    pub progress: Vec<Progress>,
    /// Targets answered whose rows wait in `slots`.
    pub answered: Vec<Answered>,
    pub slots: HashMap<(String, DateTime<Utc>), SlotWork>,
    /// The rows of `slots`, in memory or spilled.
    pub store: RowStore,
    pub gaps_pending: Vec<Gap>,
    pub tally: Tally,
    /// Set when the lease was found taken over: nothing more may be saved.
    pub lease_lost: Arc<AtomicBool>,
    pub lease_location: String,
    pub bar: Bar,
    /// Buffers of [`Runner::take`], reused from answer to answer.
    pub scratch: Vec<Vec<Point>>,
}

impl<'a> Runner<'a> {
    pub fn new(
        pipeline: &'a Pipeline,
        opts: &RunOptions,
        sink: Sink,
        lease: &Lease,
        run_id: &str,
        prepared: Prepared,
    ) -> Self {
        let Prepared {
            state_store,
            ledger,
            store,
            window,
            plan,
        } = prepared;
        let gaps_pending = plan
            .lost
            .iter()
            .map(|(t, l)| make_gap(&pipeline.name, &pipeline.targets[*t], l, window.now))
            .collect();
        Runner {
            pipeline,
            sink,
            state_store,
            ledger,
            run_id: run_id.to_string(),
            window,
            budget: opts.budget(pipeline.api.requests_per_second),
            fail_on_gap: opts.fail_on_gap,
            backfill: opts.backfill.map(|b| BackfillReport::new(&b, &window)),
            requests: plan.requests,
            progress: plan.progress,
            answered: Vec::new(),
            slots: HashMap::new(),
            store,
            gaps_pending,
            tally: Tally::default(),
            lease_lost: lease.lost_flag(),
            lease_location: lease.location(),
            bar: opts.progress.clone(),
            scratch: Vec::new(),
        }
    }

    /// Gives up what target `t` owed before `at` (the horizon moved past it) and queues
    /// it for the gap ledger.
    pub fn record_lost(&mut self, t: usize, at: DateTime<Utc>) {
        let target = &self.pipeline.targets[t];
        for l in self.progress[t].cut_at(at, self.window.slot_len) {
            tracing::warn!(target_id = %target, start = %l.start, end = %l.end, "range fell out of the horizon while queued: recorded as lost");
            let gap = make_gap(&self.pipeline.name, target, &l, self.window.now);
            self.gaps_pending.push(gap);
        }
    }

    pub async fn flush_gaps(&mut self) -> Result<(), RunError> {
        if self.gaps_pending.is_empty() {
            return Ok(());
        }
        self.check_lease()?;
        let pending = std::mem::take(&mut self.gaps_pending);
        let added = self.ledger.append(&pending).await?;
        for g in &added {
            tracing::warn!(target_id = %g.target, start = %g.start, end = %g.end, "lost: {}", g.reason);
            self.tally.lost.push(LostRange {
                target: g.target.clone(),
                start: g.start,
                end: g.end,
            });
        }
        self.tally.gaps_recorded += added.len();
        Ok(())
    }

    /// The state as of the files written so far.
    fn current_state(&self) -> State {
        let mut state = State::new(
            &self.pipeline.name,
            self.pipeline.sink.slot.num_seconds(),
            &self.run_id,
        );
        for (target, p) in self.pipeline.targets.iter().zip(&self.progress) {
            state.targets.insert(
                target.key(),
                TargetState {
                    cursor: p.cursor,
                    incomplete: p.incomplete.clone(),
                },
            );
        }
        state
    }

    /// Fails once the lease is known to be lost.
    pub fn check_lease(&self) -> Result<(), RunError> {
        if self.lease_lost.load(Ordering::SeqCst) {
            return Err(LeaseError::Lost {
                path: self.lease_location.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Saves the gaps, then the state (data first, state after: the caller wrote the
    /// files the state covers).
    pub async fn save_state(&mut self) -> Result<(), RunError> {
        self.check_lease()?;
        self.flush_gaps().await?;
        let state = self.current_state();
        self.state_store.save(&state).await?;
        Ok(())
    }

    /// Removes spilled rows: they are only useful within this run.
    pub fn finish_store(&mut self) {
        self.store.cleanup();
        if self.store.spilled > 0 {
            tracing::info!(
                rows = self.store.spilled,
                "rows spilled to disk while waiting for their slots"
            );
        }
    }

    /// How many targets' owed data would leave the horizon before the runs that follow
    /// reach it, each next run starting a schedule after this one.
    fn at_risk(&self) -> usize {
        let next_start =
            self.window.now + chrono::TimeDelta::from_std(self.budget.schedule).unwrap_or_default();
        let mut due_list: Vec<_> = self
            .progress
            .iter()
            .enumerate()
            .map(|(i, p)| match p.owed_from() {
                None => (next_start, None),
                Some(o) => (
                    due(o, self.pipeline.targets[i].max_lag),
                    Some(leaves_horizon(o)),
                ),
            })
            .collect();
        self.budget.at_risk(&mut due_list, next_start)
    }

    pub fn summary(
        &self,
        fetcher: &Fetcher,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        deadline_reached: bool,
    ) -> Summary {
        let now = self.window.now;
        let mut slots_pending = 0;
        let lag: Vec<TargetLag> = self
            .pipeline
            .targets
            .iter()
            .zip(&self.progress)
            .map(|(t, p)| {
                let pending = p.pending_slots(&self.window);
                slots_pending += pending;
                TargetLag {
                    target: t.to_string(),
                    app_id: t.app_id.clone(),
                    product_type: t.product_type.as_str().to_string(),
                    room_id: t.room_id.clone(),
                    user_id: t.user_id.clone(),
                    cursor: p.cursor,
                    lag_seconds: p.lag(now).map(|l| l.num_seconds()),
                    pending_slots: pending,
                }
            })
            .collect();
        let never_fetched = self.progress.iter().filter(|p| p.is_new()).count();
        let at_risk = self.at_risk();
        let capacity = Capacity {
            targets: self.pipeline.targets.len() as u64,
            budget: self.budget,
        };
        let t = &self.tally;
        let exit_code = if t.rejected {
            Exit::Rejected
        } else if self.fail_on_gap && t.gaps_recorded > 0 {
            Exit::Gap
        } else if t.failed > 0 || at_risk > 0 {
            Exit::Incomplete
        } else {
            Exit::Done
        };
        if at_risk > 0 {
            tracing::warn!(
                targets = at_risk,
                "{at_risk} target(s) owe data that leaves the API's horizon before the next runs can reach it"
            );
        }
        let s = &fetcher.stats;
        Summary {
            backfill: self.backfill.clone(),
            pipeline: self.pipeline.name.to_string(),
            run_id: self.run_id.clone(),
            started_at,
            finished_at,
            now,
            targets: self.pipeline.targets.len(),
            schedule_seconds: self.budget.schedule.as_secs(),
            fits_schedule: !capacity.over(),
            capacity: capacity.budget.capacity(),
            over_capacity: capacity.over(),
            requests_planned: self.requests.len(),
            requests_sent: s.sent.load(Ordering::Relaxed),
            requests_retried: s.retried.load(Ordering::Relaxed),
            requests_throttled: s.throttled.load(Ordering::Relaxed),
            requests_failed: s.failed.load(Ordering::Relaxed),
            targets_served: t.answered,
            targets_deferred: t.deferred,
            targets_never_fetched: never_fetched,
            targets_at_risk: at_risk,
            max_lag_seconds: lag.iter().filter_map(|l| l.lag_seconds).max(),
            rows_written: t.rows_written,
            files_written: t.files_written,
            slots_pending,
            points_dropped: t.dropped,
            gaps_recorded: t.gaps_recorded,
            lost: t.lost.clone(),
            lag,
            deadline_reached,
            errors: t.errors.clone(),
            exit_code,
        }
    }
}
