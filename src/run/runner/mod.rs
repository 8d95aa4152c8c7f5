//! What one run holds while it goes, how it saves progress, and the summary it ends
//! with.

mod checkpoint;
mod dispatch;
mod intake;
mod recover;
mod slots;
mod tally;

use checkpoint::Checkpoint;
use intake::Intake;
use tally::Tally;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::{DateTime, Utc};

use super::fetch::FetchStats;
use super::prepare::Prepared;
use super::report::{Report, Verdict};
use super::{Fetcher, RunError, RunOptions};
use crate::clock::Clock;
use crate::config::Pipeline;
use crate::discovery::Scanner;
use crate::discovery::calls::ScanState;
use crate::domain::{Gap, Target};
use crate::obs::progress::Progress as Bar;
use crate::obs::summary::{
    BackfillReport, DiscoveryReport, Exit, RecoveryReport, Summary, TargetLag,
};
use crate::plan::capacity::{Budget, Capacity};
use crate::plan::{Progress, Request, Window, due, leaves_horizon};
use crate::sink::Sink;
use crate::state::{Lease, State, TargetState};

/// Everything one run needs while it goes: the plan it works through and three parts,
/// each in its own file: the [`Intake`] that turns answers into slot rows, the
/// [`Checkpoint`] that writes slot files, gaps, recoveries and the state, and the
/// [`Tally`] that becomes the summary.
pub(super) struct Runner<'a> {
    pipeline: &'a Pipeline,
    run_id: String,
    window: Window,
    budget: Budget,
    fail_on_gap: bool,
    backfill: Option<BackfillReport>,
    /// Earliest due first, shared with the fetches.
    requests: Arc<[Request]>,
    /// Per target: what it owes, as of the files already written.
    progress: Vec<Progress>,
    /// Per target: where its real-time data begins, if known (history ends there).
    since: Vec<Option<DateTime<Utc>>>,
    /// Per target: never answered before this run, so its first answer sets `since`.
    fresh: Vec<bool>,
    /// The run's time source, for when the state was saved.
    clock: Clock,
    /// The run's targets: the listed ones, then the discovered rooms.
    targets: Arc<[Target]>,
    /// What room discovery knows, saved with the state.
    discovery: BTreeMap<String, ScanState>,
    /// The apps whose scan failed this run (see [`crate::discovery::lost_in_calls`]).
    stale: BTreeSet<String>,
    /// The API's clock; its offset is saved with the state.
    api: Arc<crate::clock::ApiClock>,
    bar: Bar,
    intake: Intake,
    checkpoint: Checkpoint,
    tally: Tally,
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
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
            recoveries,
            store,
            window,
            targets,
            plan,
            discovery,
            scan_errors,
            stale,
            confirmed,
            rooms_retired,
            api,
            since,
        } = prepared;
        let gaps_pending = plan
            .lost
            .iter()
            .map(|(t, l)| (&targets[*t], l))
            .chain(confirmed.iter().map(|(t, l)| (t, l)))
            .map(|(t, l)| Gap::beyond_horizon(&pipeline.name, t, *l, window.now))
            .collect();
        let tally = Tally {
            failed: scan_errors.len(),
            errors: scan_errors,
            rooms_retired,
            ..Tally::default()
        };
        Runner {
            pipeline,
            run_id: run_id.to_string(),
            window,
            budget: opts.budget(pipeline.api.requests_per_second),
            fail_on_gap: opts.fail_on_gap,
            backfill: opts.backfill.map(|b| BackfillReport::new(&b, &window)),
            requests: plan.requests,
            progress: plan.progress,
            since: since.since,
            fresh: since.fresh,
            intake: Intake::new(store),
            checkpoint: Checkpoint::new(sink, state_store, ledger, recoveries, lease, gaps_pending),
            tally,
            targets,
            discovery,
            stale,
            api,
            clock: opts.clock,
            bar: opts.progress.clone(),
        }
    }

    /// Gives up what target `t` owed before `at` (the horizon moved past it) and queues
    /// it for the gap ledger.
    pub(crate) fn record_lost(&mut self, t: usize, at: DateTime<Utc>) {
        let target = &self.targets[t];
        let mut lost = self.progress[t].cut_at(at, self.window.slot_len);
        if t >= self.pipeline.targets.len() {
            let (discovery, stale) = (&mut self.discovery, &self.stale);
            lost = lost
                .into_iter()
                .flat_map(|l| crate::discovery::lost_in_calls(discovery, stale, target, l))
                .collect();
        }
        for l in lost {
            tracing::warn!(target_id = %target, start = %crate::clock::rfc(l.start), end = %crate::clock::rfc(l.end), "range fell out of the horizon while queued: recorded as lost");
            let gap = Gap::beyond_horizon(&self.pipeline.name, target, l, self.window.now);
            self.checkpoint.gaps_pending.push(gap);
        }
    }

    /// The state as of the files written so far.
    fn current_state(&self) -> State {
        let mut state = State::new(
            &self.pipeline.name,
            self.pipeline.sink.slot.num_seconds(),
            &self.run_id,
            self.clock.wall(),
        );
        for ((target, p), since) in self.targets.iter().zip(&self.progress).zip(&self.since) {
            state.targets.insert(
                target.key(),
                TargetState {
                    cursor: p.cursor,
                    incomplete: p.incomplete.clone(),
                    since: *since,
                },
            );
        }
        let offset = self.api.offset();
        let offset = (!offset.is_zero()).then(|| offset.num_milliseconds());
        state.set_discovery(self.discovery_to_save(), offset);
        state
    }

    /// What discovery knows, without the calls every target of their room has
    /// fetched past.
    fn discovery_to_save(&self) -> BTreeMap<String, ScanState> {
        let mut discovery = self.discovery.clone();
        let mut fetched: BTreeMap<(&str, &str), Option<DateTime<Utc>>> = BTreeMap::new();
        for (t, room, p) in self.discovered() {
            let done = if p.incomplete.is_empty() {
                p.cursor
            } else {
                None
            };
            fetched
                .entry((&t.app_id, room))
                .and_modify(|f| *f = (*f).min(done))
                .or_insert(done);
        }
        for ((app, room), until) in fetched {
            if let Some(d) = discovery.get_mut(app) {
                d.prune(room, until);
            }
        }
        discovery
    }

    /// Saves the gaps, then the state (data first, state after: the caller wrote the
    /// files the state covers).
    pub(crate) async fn save_state(&mut self) -> Result<(), RunError> {
        let state = self.current_state();
        self.checkpoint.save_state(state, &mut self.tally).await
    }

    /// Records the losses found so far in the gap ledger.
    pub(crate) async fn flush_gaps(&mut self) -> Result<(), RunError> {
        self.checkpoint.flush_gaps(&mut self.tally).await
    }

    /// How many requests the run planned.
    pub(crate) fn requests_planned(&self) -> usize {
        self.requests.len()
    }

    /// The `i`-th planned request.
    #[cfg(test)]
    pub(crate) fn request(&self, i: usize) -> Request {
        self.requests[i]
    }

    /// Removes spilled rows: they are only useful within this run.
    pub(crate) fn finish_store(&mut self) {
        self.intake.store.cleanup();
        if self.intake.store.spilled > 0 {
            tracing::info!(
                rows = self.intake.store.spilled,
                "rows spilled to disk while waiting for their slots"
            );
        }
    }

    /// The discovered room targets (after the listed ones), with their room and
    /// progress.
    fn discovered(&self) -> impl Iterator<Item = (&Target, &str, &Progress)> {
        let listed = self.pipeline.targets.len();
        self.targets[listed..]
            .iter()
            .zip(&self.progress[listed..])
            .filter_map(|(t, p)| Some((t, t.room_id.as_deref()?, p)))
    }

    /// What room discovery found and did, when the pipeline has `rooms = "active"`.
    fn discovery_report(&self, scanner: Option<&Scanner>) -> Option<DiscoveryReport> {
        let scanner = scanner?;
        let rooms: BTreeSet<(&str, &str)> = self
            .discovered()
            .map(|(t, room, _)| (t.app_id.as_str(), room))
            .collect();
        let waiting: Vec<&Target> = self
            .discovered()
            .filter(|(_, _, p)| p.pending_slots(&self.window) > 0)
            .map(|(t, ..)| t)
            .collect();
        if !waiting.is_empty() {
            let named: Vec<String> = waiting.iter().take(10).map(|t| t.to_string()).collect();
            tracing::warn!(
                targets = waiting.len(),
                "{} discovered room target(s) wait for a later run: {}{}",
                waiting.len(),
                named.join(", "),
                if waiting.len() > named.len() {
                    ", …"
                } else {
                    ""
                }
            );
        }
        let s = &scanner.stats;
        Some(DiscoveryReport {
            room_info_requests: s.requests.load(Ordering::Relaxed),
            calls_found: s.calls_found.load(Ordering::Relaxed),
            calls_dropped: s.calls_dropped.load(Ordering::Relaxed),
            rooms_active: rooms.len(),
            rooms_retired: self.tally.rooms_retired,
            room_targets_waiting: waiting.len(),
        })
    }

    /// What the recovery stage did, when recovery is on.
    fn recovery_report(&self, stats: &FetchStats) -> RecoveryReport {
        let t = &self.tally.recovery;
        RecoveryReport {
            recovery_requests: stats.sent.load(Ordering::Relaxed),
            recovery_throttled: stats.throttled.load(Ordering::Relaxed),
            gaps_recovered: t.recovered,
            points_recovered: t.points,
            recovery_failed: stats.failed.load(Ordering::Relaxed) as usize,
            gaps_owed: t.due.saturating_sub(t.recovered),
            history_requests: t.history_asked,
            history_recovered: t.history_recovered,
            history_points: t.history_points,
            history_owed: t.history_left.saturating_sub(t.history_recovered),
        }
    }

    /// Each target's lag and pending slots, in the pipeline's order.
    fn lag(&self) -> Vec<TargetLag> {
        let targets = &self.targets;
        targets
            .iter()
            .zip(&self.progress)
            .map(|(t, p)| TargetLag {
                target: t.to_string(),
                app_id: t.app_id.clone(),
                product_type: t.product_type.as_str().to_string(),
                room_id: t.room_id.clone(),
                user_id: t.user_id.clone(),
                cursor: p.cursor,
                lag_seconds: p.lag(self.window.now).map(|l| l.num_seconds()),
                pending_slots: p.pending_slots(&self.window),
            })
            .collect()
    }

    /// What the run found about its own work, for the exit code ([`super::report`]).
    fn verdict(&self, at_risk: usize) -> Verdict {
        let t = &self.tally;
        Verdict {
            rejected: t.rejected,
            failed_on_gap: self.fail_on_gap && t.gaps_recorded > 0,
            incomplete: t.failed > 0 || at_risk > 0,
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
                Some(o) => (due(o, self.targets[i].max_lag), Some(leaves_horizon(o))),
            })
            .collect();
        self.budget.at_risk(&mut due_list, next_start)
    }

    /// The run's report: its summary, with `error` if the run stopped on one, and the
    /// exit code.
    pub(crate) fn report(
        &self,
        fetcher: &Fetcher,
        scanner: Option<&Scanner>,
        recovery: Option<&FetchStats>,
        deadline_reached: bool,
        error: Option<RunError>,
    ) -> Report {
        let now = self.window.now;
        let lag = self.lag();
        let slots_pending = lag.iter().map(|l| l.pending_slots).sum();
        let never_fetched = self.progress.iter().filter(|p| p.is_new()).count();
        let at_risk = self.at_risk();
        let capacity = Capacity {
            targets: self.targets.len() as u64,
            budget: self.budget,
        };
        let t = &self.tally;
        let verdict = self.verdict(at_risk);
        if at_risk > 0 {
            tracing::warn!(
                targets = at_risk,
                "{at_risk} target(s) owe data that leaves the API's horizon before the next runs can reach it"
            );
        }
        let s = &fetcher.stats;
        let summary = Summary {
            backfill: self.backfill.clone(),
            pipeline: self.pipeline.name.to_string(),
            run_id: self.run_id.clone(),
            started_at: self.clock.started(),
            finished_at: self.clock.wall(),
            now,
            targets: self.targets.len(),
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
            discovery: self.discovery_report(scanner),
            recovery: recovery.map(|r| self.recovery_report(r)),
            lost: t.lost.clone(),
            lag,
            deadline_reached,
            errors: t.errors.clone(),
            // Decided by `Report::new`, from the verdict and the error.
            exit_code: Exit::Done,
            api_clock_offset_seconds: self
                .api
                .was_measured()
                .then(|| self.api.measured().num_milliseconds() as f64 / 1000.0),
        };
        Report::new(summary, verdict, error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AnswerPoint;
    use crate::domain::LostRange;
    use crate::domain::range::GAP_REASON;
    use crate::run::Outcome;
    use crate::run::fixtures::{Fixture, NOWHERE, RUN_ID, TARGETS, at, fetched, fetcher};
    use crate::run::report::exit_code;
    use crate::run::rows::{Answer, AnswerSeries};
    use crate::state::LeaseError;

    #[tokio::test]
    async fn the_exit_code_is_the_most_serious_of_refused_gap_failed_or_at_risk_done() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        // (rejected, fail_on_gap, gaps recorded, failed, at risk) → exit code
        let cases = [
            ((true, true, 1, 1, 1), Exit::Rejected, 5),
            ((true, false, 0, 0, 0), Exit::Rejected, 5),
            ((false, true, 1, 1, 1), Exit::Gap, 6),
            ((false, true, 1, 0, 0), Exit::Gap, 6),
            ((false, false, 1, 1, 0), Exit::Incomplete, 3),
            ((false, true, 0, 1, 0), Exit::Incomplete, 3),
            ((false, false, 0, 0, 1), Exit::Incomplete, 3),
            ((false, false, 1, 0, 0), Exit::Done, 0),
            ((false, false, 0, 0, 0), Exit::Done, 0),
        ];
        for ((rejected, fail_on_gap, gaps, failed, at_risk), want, code) in cases {
            runner.tally.rejected = rejected;
            runner.fail_on_gap = fail_on_gap;
            runner.tally.gaps_recorded = gaps;
            runner.tally.failed = failed;
            let got = exit_code(runner.verdict(at_risk), None);
            assert_eq!(
                got, want,
                "rejected {rejected}, fail_on_gap {fail_on_gap}, gaps {gaps}, failed {failed}, at risk {at_risk}"
            );
            assert_eq!(u8::from(got), code);
        }
    }

    #[tokio::test]
    async fn the_summary_counts_served_deferred_and_never_fetched_targets() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        // app-a native 10 minutes behind, app-a web 30, app-b never fetched.
        f.save_state(&[(0, at("11:50:00")), (1, at("11:30:00"))])
            .await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        let (fetcher, _stop) = fetcher(NOWHERE, 2.0, opts.clock);
        let answer = Answer {
            user_id: None,
            series: vec![AnswerSeries {
                name: "audio_stall_rate".into(),
                unit: "%".into(),
                points: vec![AnswerPoint::new("2026-11-25T11:50:00Z", Some(1.5), None)],
            }],
        };
        let served = fetched(&runner, 0, Outcome::Answer(answer));
        runner.take(served).unwrap();
        for t in [1, 2] {
            let deferred = fetched(&runner, t, Outcome::Deferred);
            runner.take(deferred).unwrap();
        }
        runner.flush().await.unwrap();

        let s = runner.report(&fetcher, None, None, true, None).summary;

        assert_eq!(s.pipeline, "demo");
        assert_eq!(s.run_id, RUN_ID);
        assert_eq!(s.now, runner.window.now);
        assert_eq!(s.targets, 3);
        assert_eq!(s.requests_planned, 3);
        assert_eq!(s.requests_sent, 0);
        assert_eq!(s.targets_served, 1);
        assert_eq!(s.targets_deferred, 2);
        assert_eq!(s.targets_never_fetched, 1);
        assert_eq!(s.targets_at_risk, 0);
        assert_eq!((s.rows_written, s.files_written), (1, 1));
        assert_eq!(s.gaps_recorded, 0);
        assert!(s.lost.is_empty());
        assert!(s.deadline_reached);
        assert!(s.errors.is_empty());
        assert_eq!(s.exit_code, Exit::Done);
        // 2 requests/second every 5 minutes: 588 a run, 6,820 targets within 58 minutes.
        assert_eq!(s.schedule_seconds, 300);
        assert_eq!(s.capacity, 6820);
        assert!(s.fits_schedule && !s.over_capacity);
        let lag_seconds = |cursor: DateTime<Utc>| (s.now - cursor).num_seconds();
        assert_eq!(lag_seconds(at("11:59:00")), 70);
        assert_eq!(
            s.lag,
            vec![
                TargetLag {
                    target: "app=app-a product=native".into(),
                    app_id: "app-a".into(),
                    product_type: "native".into(),
                    room_id: None,
                    user_id: None,
                    cursor: Some(at("11:59:00")),
                    lag_seconds: Some(70),
                    pending_slots: 0,
                },
                TargetLag {
                    target: "app=app-a product=web".into(),
                    app_id: "app-a".into(),
                    product_type: "web".into(),
                    room_id: None,
                    user_id: None,
                    cursor: Some(at("11:30:00")),
                    lag_seconds: Some(1810),
                    pending_slots: 6,
                },
                TargetLag {
                    target: "app=app-b product=native".into(),
                    app_id: "app-b".into(),
                    product_type: "native".into(),
                    room_id: None,
                    user_id: None,
                    cursor: None,
                    lag_seconds: None,
                    pending_slots: 0,
                },
            ]
        );
        assert_eq!(s.max_lag_seconds, Some(1810));
        assert_eq!(s.slots_pending, 6);
    }

    #[tokio::test]
    async fn a_loss_found_while_planning_is_recorded_once_and_fails_the_run_with_fail_on_gap() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        f.save_state(&[(1, at("10:50:00"))]).await;
        let mut opts = f.opts();
        opts.fail_on_gap = true;
        let (fetcher, _stop) = fetcher(NOWHERE, 2.0, opts.clock);
        let lost = LostRange {
            target: f.pipeline.targets[1].key(),
            start: at("10:50:00"),
            end: at("11:01:00"),
        };
        {
            let (mut runner, _lease) = f.runner(&opts).await;
            assert_eq!(runner.checkpoint.gaps_pending.len(), 1);

            runner.flush_gaps().await.unwrap();
            runner.flush_gaps().await.unwrap();

            let gaps = runner.checkpoint.ledger.read().await.unwrap();
            assert_eq!(gaps.len(), 1);
            let g = &gaps[0];
            assert_eq!(
                (
                    g.target.as_str(),
                    g.app_id.as_str(),
                    g.product_type.as_str()
                ),
                (r#"["app-a","web",null,null]"#, "app-a", "web")
            );
            assert_eq!((g.start, g.end), (at("10:50:00"), at("11:01:00")));
            assert_eq!(g.reason, GAP_REASON);
            assert_eq!(g.detected_at, runner.window.now);
            let s = runner.report(&fetcher, None, None, false, None).summary;
            assert_eq!(s.gaps_recorded, 1);
            assert_eq!(s.lost, vec![lost.clone()]);
            // Still owed from 11:01:00, which leaves the horizon at 12:00:30, before the
            // next run (12:05:10): at risk too, but the gap comes first.
            assert_eq!(s.targets_at_risk, 1);
            assert_eq!(s.exit_code, Exit::Gap);
        }
        // The next run (same state: the cursor was not saved) finds the same loss on
        // record and adds nothing.
        let (mut runner, _lease) = f.runner(&opts).await;
        runner.flush_gaps().await.unwrap();
        assert_eq!(runner.checkpoint.ledger.read().await.unwrap().len(), 1);
        let s = runner.report(&fetcher, None, None, false, None).summary;
        assert_eq!(s.gaps_recorded, 0);
        assert!(s.lost.is_empty());
        assert_eq!(s.targets_at_risk, 1);
        assert_eq!(s.exit_code, Exit::Incomplete);
    }

    #[tokio::test]
    async fn a_runner_whose_lease_was_lost_saves_nothing() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        f.save_state(&[(0, at("11:50:00"))]).await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        runner.progress[0].done_until(at("11:59:00"));
        runner.checkpoint.lease_lost.store(true, Ordering::SeqCst);

        let err = runner.save_state().await.unwrap_err();

        assert!(
            matches!(&err, RunError::Lease(LeaseError::Lost { path }) if path.ends_with("_state/demo.lease")),
            "{err:?}"
        );
        let state = f.load_state().await.unwrap();
        assert_eq!(state.run_id, "earlier-run");
        assert_eq!(
            state.targets[&f.pipeline.targets[0].key()].cursor,
            Some(at("11:50:00"))
        );
        // With the lease held, the same save goes through.
        runner.checkpoint.lease_lost.store(false, Ordering::SeqCst);
        runner.save_state().await.unwrap();
        let state = f.load_state().await.unwrap();
        assert_eq!(state.run_id, RUN_ID);
        assert_eq!(
            state.targets[&f.pipeline.targets[0].key()].cursor,
            Some(at("11:59:00"))
        );
    }
}
