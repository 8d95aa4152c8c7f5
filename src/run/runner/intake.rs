//! The intake: answers turned into slot rows. Each answer's points go to the slots they
//! fall in, in the row store (in memory, spilled to disk past its budget), and the
//! slots remember which answers replace which targets' old rows; a checkpoint writes
//! them (docs/design.md, "One run").

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::Target;
use crate::obs::summary::Dropped;
use crate::plan::SlotRange;
use crate::run::RunError;
use crate::run::rows::{self, Grain};
use crate::sink::blocking;
use crate::sink::buffer::{Point, RowStore, SeriesOf, SlotRows};

/// The work on one slot file: which answers touch it and their rows.
#[derive(Debug, Default)]
pub(super) struct SlotWork {
    /// Indexes into [`Intake::answered`]: those targets' old rows in the part of this
    /// slot their answer covers are replaced (4 bytes a target and slot).
    pub(super) fetched: Vec<u32>,
    pub(super) rows: SlotRows,
}

/// One answered request whose rows wait for the next flush.
#[derive(Debug, Clone, Copy)]
pub(super) struct Answered {
    /// Into the run's targets for a real-time answer, [`Intake::recovering`] for a
    /// recovered one.
    pub(super) target: usize,
    pub(super) grain: Grain,
    /// The window asked: `[start, end)`.
    pub(super) start: DateTime<Utc>,
    pub(super) end: DateTime<Utc>,
}

/// The target of answer `a`: a real-time one among the run's `targets`, a recovered one
/// among the `recovering`.
pub(super) fn target_of<'t>(
    targets: &'t [Target],
    recovering: &'t [Target],
    a: &Answered,
) -> &'t Target {
    match a.grain {
        Grain::RealTime => &targets[a.target],
        Grain::FiveMinutes => &recovering[a.target],
    }
}

/// The answers taken in since the last checkpoint, and their rows by slot.
pub(super) struct Intake {
    /// Targets answered whose rows wait in `slots`.
    pub(super) answered: Vec<Answered>,
    /// Keyed by app, slot start and slot length (a day for history files).
    pub(super) slots: HashMap<(String, DateTime<Utc>, TimeDelta), SlotWork>,
    /// The rows of `slots`, in memory or spilled.
    pub(super) store: RowStore,
    /// Buffers of [`Intake::collect`], reused from answer to answer.
    scratch: Vec<Vec<Point>>,
    /// The targets of the recovered answers taken in.
    pub(super) recovering: Vec<Target>,
}

impl Intake {
    pub(super) fn new(store: RowStore) -> Self {
        Intake {
            answered: Vec::new(),
            slots: HashMap::new(),
            store,
            scratch: Vec::new(),
            recovering: Vec::new(),
        }
    }

    /// Puts the points of target `t`'s answer of granularity `grain` over `[start, end)`
    /// into their slots, and marks the range as replaced in every slot it touches (also
    /// those without points: the target's old rows there are gone from the API too).
    /// Returns the points kept.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn collect(
        &mut self,
        targets: &[Target],
        slot_len: TimeDelta,
        dropped_total: &mut Dropped,
        t: usize,
        grain: Grain,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        answer: &rows::Answer,
    ) -> u64 {
        let answered = Answered {
            target: t,
            grain,
            start,
            end,
        };
        let target = target_of(targets, &self.recovering, &answered);
        let slots = SlotRange::covering(start, end, slot_len);
        // The answer's points by slot index, in buffers kept across answers.
        let mut by_slot = std::mem::take(&mut self.scratch);
        by_slot.resize_with(slots.count, Vec::new);
        let mut dropped = Dropped::default();
        let store = &mut self.store;
        let series = series_ids(store, target, grain, answer);
        // Points come in runs of one slot: remember the last one's index.
        let mut last: Option<(DateTime<Utc>, Option<usize>)> = None;
        let mut kept = 0u64;
        rows::for_each_point(
            target,
            answer,
            grain,
            start,
            end,
            slots.len,
            &mut dropped,
            |p| {
                let index = match last {
                    Some((s, index)) if s == p.slot_start => index,
                    _ => {
                        let index = slots.index_of(p.slot_start);
                        last = Some((p.slot_start, index));
                        index
                    }
                };
                let Some(index) = index else { return };
                kept += 1;
                by_slot[index].push(Point {
                    series: series[p.series],
                    stream: store.stream_id(p.stream_id),
                    ts: p.timestamp_us,
                    value: p.value,
                });
            },
        );
        warn_dropped(target, &dropped);
        dropped_total.add(&dropped);
        let answer_id = self.answered.len() as u32;
        let app = target.app_id.clone();
        self.answered.push(answered);
        for (index, slot) in slots.iter().enumerate() {
            let work = self
                .slots
                .entry((app.clone(), slot.start, slots.len))
                .or_default();
            work.fetched.push(answer_id);
            self.store.add(&mut work.rows, &by_slot[index]);
        }
        for points in &mut by_slot {
            points.clear();
        }
        self.scratch = by_slot;
        kept
    }

    /// Moves every slot's rows in memory to disk.
    pub(super) fn spill(&mut self) -> Result<(), RunError> {
        let (store, slots) = (&mut self.store, &mut self.slots);
        let held = store.held();
        blocking(|| store.spill_all(slots.values_mut().map(|w| &mut w.rows))).map_err(
            |source| crate::sink::SinkError::Spill {
                path: self.store.dir().display().to_string(),
                source,
            },
        )?;
        tracing::debug!(rows = held, dir = %self.store.dir().display(), "rows spilled to disk");
        Ok(())
    }
}

/// The store's series id of each series of `target`'s answer, in answer order.
fn series_ids(
    store: &mut crate::sink::buffer::RowStore,
    target: &crate::domain::Target,
    grain: Grain,
    answer: &rows::Answer,
) -> Vec<u32> {
    answer
        .series
        .iter()
        .map(|s| {
            store.series_id(SeriesOf {
                room: target.room_id.as_deref(),
                user: target.user_id.as_deref(),
                product_type: target.product_type,
                indicator: &s.name,
                unit: &s.unit,
                interval_s: grain.interval_s(),
            })
        })
        .collect()
}

/// Says which points of `target`'s answer were dropped, and why, if any were.
fn warn_dropped(target: &crate::domain::Target, dropped: &Dropped) {
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
}
