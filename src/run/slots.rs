//! Answers into slot files: an answer's points go to the slots they fall in; a flush
//! writes every slot that received an answer (the union with its existing file), then
//! moves the answered targets' cursors and saves the state.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::buffer::{self, Point};
use super::runner::{Answered, Runner, SlotWork};
use super::{Dropped, Fetched, Outcome, RunError, blocking, rows};
use crate::domain::ProductType;
use crate::plan::{Slot, SlotRange};
use crate::sink::SlotEncoder;

/// The rows of one target in a slot file: product type, room, user.
type SeriesKey<'a> = (ProductType, Option<&'a str>, Option<&'a str>);

impl Runner<'_> {
    /// Takes one answer in: its points wait in their slots for the next flush.
    pub fn take(&mut self, f: Fetched) -> Result<(), RunError> {
        let req = self.requests[f.request];
        let t = req.target;
        // What the target owed before the start actually asked is gone (nothing for a
        // target never fetched, or a request asked from where it was planned).
        self.record_lost(t, f.start.min(req.end));
        match &f.outcome {
            Outcome::Answer(answer) => {
                self.collect(t, f.start, req.end, answer);
                self.tally.answered += 1;
            }
            Outcome::Gone => {}
            Outcome::Deferred => self.tally.deferred += 1,
            Outcome::Failed(e) => {
                self.tally.failed += 1;
                if !e.is_retryable() {
                    self.tally.rejected = true;
                }
                let target = &self.pipeline.targets[t];
                tracing::error!(target_id = %target, error = %e, "request failed: what it owes waits for the next run");
                if self.tally.errors.len() < 20 {
                    self.tally.errors.push(format!("{target}: {e}"));
                }
            }
        }
        Ok(())
    }

    /// Puts the points of target `t`'s answer over `[start, end)` into their slots, and
    /// marks the range as replaced in every slot it touches (also those without points:
    /// the target's old rows there are gone from the API too).
    fn collect(
        &mut self,
        t: usize,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        answer: &rows::Answer,
    ) {
        let target = &self.pipeline.targets[t];
        let slots = SlotRange::covering(start, end, self.window.slot_len);
        // The answer's points by slot index, in buffers kept across answers.
        let mut by_slot = std::mem::take(&mut self.scratch);
        by_slot.resize_with(slots.count, Vec::new);
        let mut dropped = Dropped::default();
        let store = &mut self.store;
        let series: Vec<u32> = answer
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
        let mut last: Option<(DateTime<Utc>, Option<usize>)> = None;
        rows::for_each_point(target, answer, start, end, slots.len, &mut dropped, |p| {
            let index = match last {
                Some((s, index)) if s == p.slot_start => index,
                _ => {
                    let index = slots.index_of(p.slot_start);
                    last = Some((p.slot_start, index));
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
        });
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
        self.tally.dropped.add(&dropped);
        let answer_id = self.answered.len() as u32;
        self.answered.push(Answered {
            target: t,
            start,
            end,
        });
        for (index, slot) in slots.iter().enumerate() {
            let work = self
                .slots
                .entry((target.app_id.clone(), slot.start))
                .or_default();
            work.fetched.push(answer_id);
            self.store.add(&mut work.rows, &by_slot[index]);
        }
        for points in &mut by_slot {
            points.clear();
        }
        self.scratch = by_slot;
    }

    /// Writes every slot that received an answer, then moves the answered targets'
    /// cursors and saves the state.
    pub async fn flush(&mut self) -> Result<(), RunError> {
        self.check_lease()?;
        let mut slots: Vec<_> = self.slots.drain().collect();
        slots.sort_by(|a, b| a.0.cmp(&b.0));
        for ((app, start), work) in slots {
            let slot = Slot {
                start,
                end: start + self.window.slot_len,
            };
            self.write_slot(&app, slot, work).await?;
        }
        for a in std::mem::take(&mut self.answered) {
            self.progress[a.target].done_until(a.end);
        }
        // Every point is written: the next answers start from empty tables.
        self.store.forget_rows();
        self.save_state().await
    }

    /// Writes one slot file: the new rows plus the old rows of targets not replaced.
    async fn write_slot(&mut self, app: &str, slot: Slot, work: SlotWork) -> Result<(), RunError> {
        if work.fetched.is_empty() {
            return Ok(());
        }
        // One answer per target and flush: one range per series key (the hull, should
        // a key ever come twice).
        let mut replaced: HashMap<SeriesKey<'_>, (i64, i64)> =
            HashMap::with_capacity(work.fetched.len());
        for &id in &work.fetched {
            let a = self.answered[id as usize];
            let (from, to) = (a.start.max(slot.start), a.end.min(slot.end));
            let tg = &self.pipeline.targets[a.target];
            replaced
                .entry((
                    tg.product_type,
                    tg.room_id.as_deref(),
                    tg.user_id.as_deref(),
                ))
                .and_modify(|r| {
                    r.0 = r.0.min(from.timestamp_micros());
                    r.1 = r.1.max(to.timestamp_micros());
                })
                .or_insert((from.timestamp_micros(), to.timestamp_micros()));
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
                    let is_replaced = replaced
                        .get(&key)
                        .is_some_and(|(a, b)| r.timestamp_us >= *a && r.timestamp_us < *b);
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
            self.tally.rows_written += written.rows as u64;
            self.tally.files_written += 1;
            self.bar.rows(self.tally.rows_written);
            tracing::debug!(path = %written.path, rows = written.rows, bytes = written.bytes, "slot file written");
        }
        Ok(())
    }

    /// Moves every slot's rows in memory to disk.
    pub fn spill(&mut self) -> Result<(), RunError> {
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
}
