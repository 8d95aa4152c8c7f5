//! Recovery (docs/design.md, "Recovery from the offline API"): after the real-time requests,
//! each gap of the ledger that the offline API now has is asked for with `ListQuality`
//! at 5-minute granularity, one request per target and range of at most 7 days, at its
//! own rate and at most `max_requests_per_run` a run. The points go into the same slot
//! files with `interval_s = 300`, replacing only earlier recovered points of the range;
//! the recovery is recorded after the files are written, so a crash before that asks
//! again and rewrites the same points, and a recorded range is never asked again. A
//! request that fails leaves its range owed for the next run.
//!
//! History (`[recovery] history`, "History on day one") goes the same way after every
//! gap, newest first, into one file per app and day.

use std::collections::HashMap;

use chrono::SecondsFormat;
use tokio::time::Instant;

use super::Runner;
use super::dispatch::CHECKPOINT_EVERY;
use crate::api::ApiError;
use crate::domain::{Gap, Target, TimeRange};
use crate::plan::DAY;
use crate::recovery::{self, Recovery, history};
use crate::run::RunError;
use crate::run::recoverer::Recoverer;
use crate::run::rows::{Answer, Grain};

/// One `ListQuality` request the stage owes.
#[derive(Debug, Clone)]
pub(super) struct Owed {
    target: Target,
    range: TimeRange,
    /// Of history, not of a gap.
    history: bool,
}

impl Runner<'_> {
    /// Recovers what the ledger owes, oldest gap first, then history, newest first,
    /// until the cap, the deadline or an error that no request can get past; then
    /// writes the points and records the ranges recovered.
    pub(crate) async fn recover(
        &mut self,
        rec: &Recoverer,
        deadline: Option<Instant>,
    ) -> Result<(), RunError> {
        let gaps = self.checkpoint.ledger.read().await?;
        // Most pipelines: nothing ever lost and no history, no recovery ledger to read.
        let done = if gaps.is_empty() && !self.owes_history() {
            Vec::new()
        } else {
            self.checkpoint.recoveries.read().await?
        };
        let mut owed = self.owed_recoveries(&gaps, &done);
        let history = self.owed_history(&done);
        self.tally.recovery.due = owed.len();
        self.tally.recovery.history_due = history.len();
        owed.extend(history);
        if owed.is_empty() {
            return Ok(());
        }
        let cap = self.pipeline.recovery.max_requests_per_run as usize;
        let asked = owed.len().min(cap);
        if self.tally.recovery.history_due > 0 {
            self.bar.start_history(asked);
        }
        let mut last_checkpoint = Instant::now();
        for o in owed.into_iter().take(cap) {
            let sent = rec.fetch(&o.target, o.range);
            let answer = match deadline {
                Some(at) => match tokio::time::timeout_at(at, sent).await {
                    Ok(a) => a,
                    Err(_) => break,
                },
                None => sent.await,
            };
            if o.history {
                self.tally.recovery.history_asked += 1;
            }
            match answer {
                Ok(answer) => self.take_recovered(o, &answer),
                Err(e) => {
                    let stop = e.stops_everything();
                    self.recovery_failed(&o, e);
                    if stop {
                        break;
                    }
                }
            }
            self.bar.request_done();
            if self.intake.store.over_budget() {
                self.intake.spill()?;
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.flush().await?;
                last_checkpoint = Instant::now();
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                break;
            }
        }
        self.bar.finish();
        self.flush().await
    }

    /// The requests recovery owes now, oldest gap first, each with its target. A gap of
    /// a target the pipeline no longer has (removed from the file, or a room no entry
    /// follows) cannot be asked for: it is left out, and said once.
    fn owed_recoveries(&self, gaps: &[Gap], done: &[Recovery]) -> Vec<Owed> {
        let due = recovery::due(gaps, done, self.window.now);
        if due.is_empty() {
            return Vec::new();
        }
        let keys: HashMap<String, usize> = self
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.key(), i))
            .collect();
        let mut owed = Vec::with_capacity(due.len());
        let mut orphans = 0;
        for d in due {
            match self.recovery_target(&gaps[d.gap], &keys) {
                Some(target) => owed.push(Owed {
                    target,
                    range: d.range,
                    history: false,
                }),
                None => orphans += 1,
            }
        }
        if orphans > 0 {
            tracing::warn!(
                ranges = orphans,
                "{orphans} gap range(s) of targets the pipeline no longer has: not recovered"
            );
        }
        owed
    }

    /// Whether any target or room may owe history: `[recovery] history` is set and a
    /// listed target's `since` is known or a first scan found rooms.
    fn owes_history(&self) -> bool {
        let listed = self.pipeline.targets.len();
        self.pipeline.recovery.history.is_some()
            && (self.since[..listed].iter().any(Option::is_some)
                || self.discovery.values().any(|d| !d.history.is_empty()))
    }

    /// The history requests owed now, newest first over all targets (see
    /// [`history::owed`]). A discovered room whose history is all loaded (or past the
    /// lookback) is let go.
    fn owed_history(&mut self, recovered: &[Recovery]) -> Vec<Owed> {
        let Some(length) = self.pipeline.recovery.history else {
            return Vec::new();
        };
        if !self.owes_history() {
            return Vec::new();
        }
        let listed = self.pipeline.targets.len();
        let owed = history::owed(
            length,
            self.targets[..listed]
                .iter()
                .zip(self.since.iter().copied()),
            &self.pipeline.scans,
            &self.discovery,
            recovered,
            self.window.now,
        );
        for (app, room) in owed.rooms_loaded {
            if let Some(d) = self.discovery.get_mut(&app) {
                d.history.remove(&room);
            }
        }
        self.tally.recovery.history_left = owed.requests;
        owed.due
            .into_iter()
            .map(|(target, range)| Owed {
                target,
                range,
                history: true,
            })
            .collect()
    }

    /// The target a gap was recorded for: one of the run's, else a room an entry still
    /// follows (its room retired since).
    fn recovery_target(&self, gap: &Gap, keys: &HashMap<String, usize>) -> Option<Target> {
        if let Some(&i) = keys.get(&gap.target) {
            return Some(self.targets[i].clone());
        }
        let room = gap.room_id.as_deref()?;
        self.pipeline
            .scans
            .iter()
            .filter(|s| s.app_id == gap.app_id && s.follows(room))
            .flat_map(|s| s.targets(room))
            .find(|t| t.key() == gap.target)
    }

    /// Takes one recovered answer in: its points wait in their slots (history in its
    /// day's file), and the range is recorded once the next flush has written them.
    fn take_recovered(&mut self, o: Owed, answer: &Answer) {
        let Owed {
            target,
            range,
            history,
        } = o;
        let t = self.intake.recovering.len();
        let key = target.key();
        self.intake.recovering.push(target);
        let slot_len = if history { DAY } else { self.window.slot_len };
        let points = self.intake.collect(
            &self.targets,
            slot_len,
            &mut self.tally.dropped,
            t,
            Grain::FiveMinutes,
            range.start,
            range.end,
            answer,
        );
        let (start, end) = (crate::clock::rfc(range.start), crate::clock::rfc(range.end));
        let target_id = &self.intake.recovering[t];
        if history {
            self.tally.recovery.history_points += points;
            tracing::info!(target_id = %target_id, %start, %end, points, "history loaded from the offline API at 5-minute granularity");
        } else {
            self.tally.recovery.points += points;
            tracing::info!(target_id = %target_id, %start, %end, points, "gap recovered from the offline API at 5-minute granularity");
        }
        self.checkpoint.recovered_pending.push(Recovery {
            pipeline: self.pipeline.name.to_string(),
            target: key,
            start: range.start,
            end: range.end,
            interval_s: Grain::FiveMinutes.interval_s(),
            points,
            recovered_at: self.clock.wall(),
            run_id: self.run_id.clone(),
            history,
        });
    }

    fn recovery_failed(&mut self, o: &Owed, e: ApiError) {
        self.tally.failed += 1;
        if !e.is_retryable() {
            self.tally.rejected = true;
        }
        let span = format!(
            "[{}, {})",
            o.range.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            o.range.end.to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        let target = &o.target;
        if o.history {
            tracing::error!(target_id = %target, range = %span, error = %e, "history request failed: history is not loaded, and stays owed for the next run");
        } else {
            tracing::error!(target_id = %target, range = %span, error = %e, "recovery request failed: the gap stays owed for the next run");
        }
        if self.tally.errors.len() < 20 {
            let what = if o.history { "history " } else { "" };
            self.tally
                .errors
                .push(format!("{target}: ListQuality {what}{span}: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use crate::api::Client;
    use crate::api::limit::RetryPolicy;
    use crate::domain::ProductType::{Native, Web};
    use crate::run::fixtures::{
        Fixture, NOWHERE, TARGETS, answer, at, fetched, row, slot, slot_rows,
    };
    use crate::run::{Outcome, rows};
    use crate::sink::Row;

    fn recovered(mut r: Row) -> Row {
        r.interval_s = 300;
        r
    }

    fn gap(target: Target) -> Owed {
        Owed {
            target,
            range: gap_range(),
            history: false,
        }
    }

    fn gap_range() -> TimeRange {
        TimeRange {
            start: at("11:52:30"),
            end: at("12:05:00"),
        }
    }

    #[tokio::test]
    async fn recovered_points_join_the_30_s_points_and_are_recorded_after_the_files() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        f.save_state(&[(0, at("11:50:00"))]).await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        // A real-time answer for app-a native over [11:50, 11:59).
        let live = answer(&[
            ("2026-11-25T11:55:00Z", 1.0, None),
            ("2026-11-25T11:55:30Z", 2.0, None),
        ]);
        runner
            .take(fetched(&runner, 0, Outcome::Answer(live)))
            .unwrap();
        // A recovered answer for app-a native's gap [11:52:30, 12:05): the 11:50 bucket
        // starts before the gap and 11:57:30 is off the 5-minute grid.
        let target = runner.targets[0].clone();
        let offline = answer(&[
            ("2026-11-25T19:50:00+08:00", 9.0, None),
            ("2026-11-25T19:55:00+08:00", 1.55, None),
            ("2026-11-25T19:57:30+08:00", 7.0, None),
            ("2026-11-25T20:00:00+08:00", 2.25, None),
        ]);
        runner.take_recovered(gap(target.clone()), &offline);
        assert_eq!(runner.tally.recovery.points, 2);
        assert_eq!(runner.tally.dropped.outside_window, 1);
        assert_eq!(runner.tally.dropped.off_grid, 1);
        // Nothing is recorded before the files are written.
        assert_eq!(runner.checkpoint.recoveries.read().await.unwrap(), vec![]);

        runner.flush().await.unwrap();

        let sink = f.sink();
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:55:00")).await,
            // The file's order: the key has interval_s before the timestamp.
            Some(vec![
                row(Native, "audio_stall_rate", at("11:55:00"), 1.0, None),
                row(Native, "audio_stall_rate", at("11:55:30"), 2.0, None),
                recovered(row(Native, "audio_stall_rate", at("11:55:00"), 1.55, None)),
            ])
        );
        assert_eq!(
            slot_rows(&sink, "app-a", slot("12:00:00")).await,
            Some(vec![recovered(row(
                Native,
                "audio_stall_rate",
                at("12:00:00"),
                2.25,
                None
            ))])
        );
        // The real-time answer moved its cursor; the recovery moved none.
        assert_eq!(runner.progress[0].cursor, Some(at("11:59:00")));
        assert_eq!(runner.progress[1].cursor, None);
        let records = runner.checkpoint.recoveries.read().await.unwrap();
        assert_eq!(records.len(), 1);
        let r = &records[0];
        assert_eq!(
            (r.target.as_str(), r.start, r.end, r.interval_s, r.points),
            (
                target.key().as_str(),
                at("11:52:30"),
                at("12:05:00"),
                300,
                2
            )
        );
        assert_eq!(runner.tally.recovery.recovered, 1);

        // The same range recovered again replaces the recovered points only.
        let again = answer(&[("2026-11-25T11:55:00Z", 1.75, None)]);
        runner.take_recovered(gap(target), &again);
        runner.flush().await.unwrap();
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:55:00")).await,
            Some(vec![
                row(Native, "audio_stall_rate", at("11:55:00"), 1.0, None),
                row(Native, "audio_stall_rate", at("11:55:30"), 2.0, None),
                recovered(row(Native, "audio_stall_rate", at("11:55:00"), 1.75, None)),
            ])
        );
        assert_eq!(
            slot_rows(&sink, "app-a", slot("12:00:00")).await,
            Some(vec![])
        );
        // On record once.
        assert_eq!(runner.checkpoint.recoveries.read().await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_request_leaves_its_gap_owed_and_a_removed_targets_gap_is_not_asked() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        let day_before = |hms: &str| at(hms) - chrono::TimeDelta::days(1);
        let range = crate::domain::TimeRange {
            start: day_before("10:00:00"),
            end: day_before("11:00:00"),
        };
        let gone = Target {
            app_id: "app-gone".into(),
            ..runner.targets[0].clone()
        };
        let gaps = [&runner.targets[0], &gone]
            .map(|t| Gap::beyond_horizon("demo", t, range, day_before("11:30:00")));
        runner.checkpoint.ledger.append(&gaps).await.unwrap();
        // Nothing listens at NOWHERE: the one request sent fails (after quick retries).
        let client = runner_client();
        let policy = RetryPolicy {
            max_retries: 1,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        };
        let rec = Recoverer::new(client, 100.0, policy);

        runner.recover(&rec, None).await.unwrap();

        assert_eq!(
            rec.stats.sent.load(Ordering::Relaxed),
            2,
            "one request, retried once"
        );
        let t = &runner.tally.recovery;
        assert_eq!((t.due, t.recovered), (1, 0));
        assert_eq!(rec.stats.failed.load(Ordering::Relaxed), 1);
        assert_eq!(rec.stats.retried.load(Ordering::Relaxed), 1);
        assert_eq!(runner.tally.failed, 1, "the run exits 3");
        assert_eq!(runner.tally.errors.len(), 1);
        assert!(
            runner.tally.errors[0].starts_with(
                "app=app-a product=native: ListQuality [2026-11-24T10:00:00Z, 2026-11-24T11:00:00Z): "
            ),
            "{:?}",
            runner.tally.errors
        );
        assert_eq!(runner.checkpoint.recoveries.read().await.unwrap(), vec![]);
    }

    fn runner_client() -> Client {
        let creds = volc_rtc::Credentials::new(
            rtcq_emulator::DEMO_ACCESS_KEY,
            rtcq_emulator::DEMO_SECRET_KEY,
            None,
        );
        Client::new(
            NOWHERE,
            "cn-north-1",
            creds,
            crate::api::Timeouts::default(),
        )
        .unwrap()
    }

    #[test]
    fn recovered_answers_need_no_user_echo_and_sit_on_the_5_minute_grid() {
        let target = Target {
            app_id: "a".into(),
            product_type: Web,
            room_id: Some("r".into()),
            user_id: Some("u1".into()),
            indicators: vec!["stall_rate".into()].into(),
            max_lag: None,
        };
        let a = answer(&[
            ("2026-11-25T12:00:00Z", 1.0, None),
            ("2026-11-25T12:00:30Z", 2.0, None),
            ("2026-11-25T12:05:00Z", 3.0, None),
        ]);
        let kept = |grain| {
            let mut dropped = crate::obs::summary::Dropped::default();
            let mut out = Vec::new();
            rows::for_each_point(
                &target,
                &a,
                grain,
                at("12:00:00"),
                at("12:10:00"),
                chrono::TimeDelta::minutes(5),
                &mut dropped,
                |p| out.push(p.value),
            );
            (out, dropped.off_grid, dropped.user_not_applied)
        };
        // Real time: no echo of u1, so nothing is the user's.
        assert_eq!(kept(Grain::RealTime), (vec![], 0, 3));
        // Recovered: the offline API echoes nobody; 12:00:30 is off the 5-minute grid.
        assert_eq!(kept(Grain::FiveMinutes), (vec![1.0, 3.0], 1, 0));
    }
}
