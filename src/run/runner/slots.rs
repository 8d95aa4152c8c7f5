//! Answers into slot files: an answer's points go to the slots they fall in; a flush
//! writes every slot that received an answer (the union with its existing file), then
//! moves the answered targets' cursors and saves the state.

use std::collections::HashMap;

use super::Runner;
use super::intake::{self, SlotWork};
use crate::api::ApiError;
use crate::plan::Slot;
use crate::run::rows::Grain;
use crate::run::{Fetched, Outcome, RunError};
use crate::sink::slot_file::{self, Replaced};

impl Runner<'_> {
    /// Takes one answer in: its points wait in their slots for the next flush.
    pub(crate) fn take(&mut self, f: Fetched) -> Result<(), RunError> {
        let req = self.requests[f.request];
        let t = req.target;
        // What the target owed before the start actually asked is gone (nothing for a
        // target never fetched, or a request asked from where it was planned).
        self.record_lost(t, f.start.min(req.end));
        match &f.outcome {
            Outcome::Answer(answer) => {
                let kept = self.intake.collect(
                    &self.targets,
                    self.window.slot_len,
                    &mut self.tally.dropped,
                    t,
                    Grain::RealTime,
                    f.start,
                    f.end,
                    answer,
                );
                self.tally.answered += 1;
                self.tally.rows_fetched += kept;
                self.bar
                    .rows(self.tally.rows_fetched, self.tally.rows_written);
            }
            Outcome::Gone | Outcome::Unsettled => {}
            Outcome::Deferred => self.tally.deferred += 1,
            Outcome::Failed(e) => {
                self.tally.failed += 1;
                if !e.is_retryable() {
                    self.tally.rejected = true;
                }
                let target = &self.targets[t];
                if self.tally.unreachable && matches!(e, ApiError::Unreachable { .. }) {
                    // Said once, when the run stopped sending.
                    tracing::debug!(target_id = %target, error = %e, "request failed: what it owes waits for the next run");
                } else {
                    tracing::warn!(target_id = %target, error = %e, "request failed: what it owes waits for the next run");
                    if self.tally.errors.len() < 20 {
                        self.tally.errors.push(format!("{target}: {e}"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes every slot that received an answer, then records the recovered ranges,
    /// moves the answered targets' cursors and saves the state.
    pub(crate) async fn flush(&mut self) -> Result<(), RunError> {
        self.checkpoint.check_lease()?;
        let mut slots: Vec<_> = self.intake.slots.drain().collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        for ((app, start, len), work) in slots {
            let slot = Slot {
                start,
                end: start + len,
            };
            self.write_slot(&app, slot, work).await?;
        }
        self.checkpoint.record_recoveries(&mut self.tally).await?;
        for a in std::mem::take(&mut self.intake.answered) {
            if a.grain == Grain::RealTime {
                let p = &mut self.progress[a.target];
                // A target's first answer: its real-time data begins here.
                if self.since[a.target].is_none() && self.fresh[a.target] {
                    self.since[a.target] = Some(a.start);
                }
                p.done_until(a.end);
            }
        }
        self.intake.recovering.clear();
        // Every point is written: the next answers start from empty tables.
        self.intake.store.forget_rows();
        self.save_state().await
    }

    /// Writes one slot file: the new rows plus the old rows of targets not replaced.
    async fn write_slot(&mut self, app: &str, slot: Slot, work: SlotWork) -> Result<(), RunError> {
        if work.fetched.is_empty() {
            return Ok(());
        }
        // One answer per target and flush: one range per series key (the hull, should
        // a key ever come twice).
        let mut replaced: Replaced<'_> = HashMap::with_capacity(work.fetched.len());
        for &id in &work.fetched {
            let a = self.intake.answered[id as usize];
            let (from, to) = (a.start.max(slot.start), a.end.min(slot.end));
            let tg = intake::target_of(&self.targets, &self.intake.recovering, &a);
            replaced
                .entry((
                    tg.product_type,
                    tg.room_id.as_deref(),
                    tg.user_id.as_deref(),
                    a.grain.interval_s(),
                ))
                .and_modify(|r| {
                    r.0 = r.0.min(from.timestamp_micros());
                    r.1 = r.1.max(to.timestamp_micros());
                })
                .or_insert((from.timestamp_micros(), to.timestamp_micros()));
        }
        self.checkpoint.check_lease()?;
        let written = slot_file::rewrite(
            &self.checkpoint.sink,
            &mut self.intake.store,
            app,
            slot,
            work.rows,
            &replaced,
        )
        .await?;
        if let Some(written) = written {
            self.tally.rows_written += written.rows as u64;
            self.tally.files_written += 1;
            self.bar
                .rows(self.tally.rows_fetched, self.tally.rows_written);
            tracing::debug!(path = %written.path, rows = written.rows, bytes = written.bytes, "slot file written");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductType::{Native, Web};
    use crate::plan::Progress;
    use crate::run::fixtures::{
        Fixture, NOWHERE, RUN_ID, TARGETS, answer, at, fetched, files_under, row, slot, slot_rows,
    };
    use crate::state::TargetState;

    /// A run where app-a's two targets owe `[11:50:00, 11:59:00)` and app-b is new.
    async fn fixture() -> Fixture {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        f.save_state(&[(0, at("11:50:00")), (1, at("11:50:00"))])
            .await;
        f
    }

    /// Takes app-a native's and web's first answers in.
    fn take_first_answers(runner: &mut Runner<'_>) {
        let native = answer(&[
            ("2026-11-25T11:50:00Z", 1.5, None),
            ("2026-11-25T11:54:30Z", 2.0, None),
            ("2026-11-25T19:55:00+08:00", 3.0, Some("s1")),
        ]);
        let web = answer(&[("2026-11-25T11:52:00Z", 4.0, None)]);
        let f = fetched(runner, 0, Outcome::Answer(native));
        runner.take(f).unwrap();
        let f = fetched(runner, 1, Outcome::Answer(web));
        runner.take(f).unwrap();
    }

    #[tokio::test]
    async fn an_answer_taken_and_flushed_writes_its_rows_moves_the_cursor_and_saves_the_state() {
        let f = fixture().await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;

        take_first_answers(&mut runner);
        // Taken, not written: no slot file and the cursors where they were.
        assert_eq!(runner.tally.answered, 2);
        assert_eq!(
            files_under(&f.data_dir()),
            ["_state/demo.json", "_state/demo.lease"]
        );
        assert_eq!(runner.progress[0].cursor, Some(at("11:50:00")));

        runner.flush().await.unwrap();

        let sink = f.sink();
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:50:00")).await,
            Some(vec![
                row(Native, "audio_stall_rate", at("11:50:00"), 1.5, None),
                row(Native, "audio_stall_rate", at("11:54:30"), 2.0, None),
                row(Web, "audio_stall_rate", at("11:52:00"), 4.0, None),
            ])
        );
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:55:00")).await,
            Some(vec![row(
                Native,
                "audio_stall_rate",
                at("11:55:00"),
                3.0,
                Some("s1")
            )])
        );
        assert_eq!(
            files_under(&f.data_dir()),
            [
                "_state/demo.json",
                "_state/demo.lease",
                "app_id=app-a/date=2026-11-25/demo-1150.parquet",
                "app_id=app-a/date=2026-11-25/demo-1155.parquet",
            ]
        );
        assert_eq!(
            (runner.tally.files_written, runner.tally.rows_written),
            (2, 4)
        );
        // The answered targets' cursors move to the end they were asked to; the new
        // target, not answered, stays new.
        assert_eq!(
            runner.progress,
            vec![
                Progress {
                    cursor: Some(at("11:59:00")),
                    ..Progress::default()
                },
                Progress {
                    cursor: Some(at("11:59:00")),
                    ..Progress::default()
                },
                Progress::default(),
            ]
        );
        assert!(runner.intake.answered.is_empty() && runner.intake.slots.is_empty());
        let state = f.load_state().await.unwrap();
        assert_eq!(state.run_id, RUN_ID);
        let targets = &f.pipeline.targets;
        let cursor = |t: usize| state.targets.get(&targets[t].key()).cloned();
        assert_eq!(
            cursor(0),
            Some(TargetState {
                cursor: Some(at("11:59:00")),
                ..TargetState::default()
            })
        );
        assert_eq!(cursor(1), cursor(0));
        assert_eq!(cursor(2), Some(TargetState::default()));
    }

    #[tokio::test]
    async fn a_second_answer_for_the_same_range_replaces_the_targets_rows_and_keeps_the_others() {
        let f = fixture().await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        take_first_answers(&mut runner);
        runner.flush().await.unwrap();

        // app-a native again over [11:50, 11:59): 11:50:00 changed, the rest gone.
        let again = fetched(
            &runner,
            0,
            Outcome::Answer(answer(&[("2026-11-25T11:50:00Z", 9.0, None)])),
        );
        runner.take(again).unwrap();
        runner.flush().await.unwrap();

        let sink = f.sink();
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:50:00")).await,
            Some(vec![
                row(Native, "audio_stall_rate", at("11:50:00"), 9.0, None),
                row(Web, "audio_stall_rate", at("11:52:00"), 4.0, None),
            ])
        );
        // Its only row was native's: the file is rewritten empty, not left stale.
        assert_eq!(
            slot_rows(&sink, "app-a", slot("11:55:00")).await,
            Some(vec![])
        );
        assert_eq!(
            (runner.tally.files_written, runner.tally.rows_written),
            (4, 6)
        );
        assert_eq!(runner.progress[0].cursor, Some(at("11:59:00")));
        assert_eq!(runner.tally.answered, 3);
    }
}
