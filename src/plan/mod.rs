//! Slots on the UTC grid, the settled end and the horizon, and the requests one run
//! makes. See docs/design.md, "One run", steps 5 and 6.

pub mod capacity;

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::TimeRange;
use volc_rtc::limits::{REALTIME_BUCKET, REALTIME_DELAY, REALTIME_HORIZON, REALTIME_MAX_SPAN};
pub(crate) use volc_rtc::time::{ceil_to, floor_to};

/// Margin kept inside the horizon so a request is not rejected for arriving a moment late
/// or for a small clock difference with the server.
pub(crate) const HORIZON_MARGIN: TimeDelta = TimeDelta::seconds(30);

/// A half-open interval `[start, end)` on the UTC slot grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    /// First instant of the slot: names its file and `date=` partition.
    pub start: DateTime<Utc>,
    /// First instant after the slot: the next slot's start.
    pub end: DateTime<Utc>,
}

impl Slot {
    /// The slot of length `len` that contains `t`.
    pub fn containing(t: DateTime<Utc>, len: TimeDelta) -> Self {
        let start = floor_to(t, len);
        Slot {
            start,
            end: start + len,
        }
    }

    /// The UTC date of the slot, as in the `date=` partition.
    pub fn date(&self) -> String {
        self.start.format("%Y-%m-%d").to_string()
    }

    /// `HHMM` of the slot start, as in file names.
    pub(crate) fn hhmm(&self) -> String {
        self.start.format("%H%M").to_string()
    }

    /// The UTC day of `t`: the slot of a history file, which holds one app's 5-minute
    /// history rows of that day (docs/design.md, "Layout").
    pub fn day_of(t: DateTime<Utc>) -> Self {
        Slot::containing(t, DAY)
    }

    /// Whether this is a day's history slot rather than a slot of the configured length
    /// (which divides an hour).
    pub fn is_day(&self) -> bool {
        self.end - self.start == DAY
    }
}

/// The length of a history file's slot.
pub const DAY: TimeDelta = TimeDelta::days(1);

/// The time frame of one run: what is settled and what can still be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub(crate) now: DateTime<Utc>,
    pub(crate) slot_len: TimeDelta,
    /// The newest settled instant: `now - REALTIME_DELAY` on the 30 s grid. Requests end here,
    /// not at a slot boundary, so what a target owes starts as late as it can (up to a
    /// slot length more time before it leaves the horizon); the slot it cuts is written
    /// with what is settled and completed by a later run.
    pub settled_end: DateTime<Utc>,
    /// The oldest instant still asked for: `now - REALTIME_HORIZON + HORIZON_MARGIN`, on the
    /// 30 s grid.
    pub horizon: DateTime<Utc>,
}

impl Window {
    /// The window of a run that plans at `now` with slots of `slot_len`.
    pub fn at(now: DateTime<Utc>, slot_len: TimeDelta) -> Self {
        Window {
            now,
            slot_len,
            settled_end: settled_at(now),
            horizon: horizon_at(now),
        }
    }
}

/// The newest end a request sent at `now` may have: what the API has settled.
pub(crate) fn settled_at(now: DateTime<Utc>) -> DateTime<Utc> {
    floor_to(now - REALTIME_DELAY, REALTIME_BUCKET)
}

/// The oldest start a request sent at `now` may have.
pub(crate) fn horizon_at(now: DateTime<Utc>) -> DateTime<Utc> {
    ceil_to(now - REALTIME_HORIZON + HORIZON_MARGIN, REALTIME_BUCKET)
}

/// What a target owes: everything from `cursor` on, plus the `incomplete` parts before
/// it. A target with neither was never fetched and owes nothing yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    /// Everything before it is written, except `incomplete`; on the 30 s grid.
    pub(crate) cursor: Option<DateTime<Utc>>,
    /// Parts before `cursor` still owed, each as the instant it is owed from: the entry
    /// `i` owes `[i, min(end of its slot, cursor))`. Left by `rtcq backfill` and by
    /// states of earlier versions.
    pub(crate) incomplete: std::collections::BTreeSet<DateTime<Utc>>,
}

impl Progress {
    /// Whether the target was never fetched (it owes nothing until its first request).
    pub(crate) fn is_new(&self) -> bool {
        self.cursor.is_none() && self.incomplete.is_empty()
    }

    /// The oldest instant owed, if any.
    pub(crate) fn owed_from(&self) -> Option<DateTime<Utc>> {
        match (self.incomplete.first(), self.cursor) {
            (Some(i), Some(c)) => Some((*i).min(c)),
            (Some(i), None) => Some(*i),
            (None, c) => c,
        }
    }

    /// Gives up everything owed before `t` (it can no longer be fetched) and returns
    /// it, oldest first, adjacent ranges merged.
    pub(crate) fn cut_at(&mut self, t: DateTime<Utc>, slot_len: TimeDelta) -> Vec<TimeRange> {
        let mut lost = Vec::new();
        let Some(cursor) = self.cursor else {
            return lost;
        };
        let mut kept = std::collections::BTreeSet::new();
        for &i in &self.incomplete {
            let end = (floor_to(i, slot_len) + slot_len).min(cursor);
            if i >= end {
                continue;
            }
            if i < t {
                push_lost(&mut lost, i, end.min(t));
                if end > t {
                    kept.insert(t);
                }
            } else {
                kept.insert(i);
            }
        }
        if cursor < t {
            push_lost(&mut lost, cursor, t);
            self.cursor = Some(t);
        }
        self.incomplete = kept;
        lost
    }

    /// How far behind the target is at `now`: the age of its oldest owed data (`None`
    /// for a target never fetched, which owes nothing).
    pub(crate) fn lag(&self, now: DateTime<Utc>) -> Option<TimeDelta> {
        self.owed_from().map(|o| now - o)
    }

    /// The slots what the target owes touches, up to the settled end of `w`.
    pub(crate) fn pending_slots(&self, w: &Window) -> usize {
        self.owed_from().map_or(0, |o| {
            SlotRange::covering(o, w.settled_end, w.slot_len).count
        })
    }

    /// Whether the cursor is past the present of `w`, which no run can have written:
    /// from an older build, a clock that ran ahead, a `--now` in the future or a hand
    /// edit. A cursor between the settled end and the present is legitimate: a room
    /// found with a call that began in the last minute owes from that call's first
    /// bucket, which the API has not settled yet.
    pub(crate) fn is_in_future(&self, w: &Window) -> bool {
        self.cursor
            .is_some_and(|c| c > floor_to(w.now, REALTIME_BUCKET))
    }

    /// Rewinds a cursor in the future to the horizon of `w`: what the API still has is
    /// asked again (the slot rewrites keep one copy of each point); owed slots after the
    /// settled end are dropped, as the rewound cursor owes them.
    pub(crate) fn rewind_future(&mut self, w: &Window) -> bool {
        if !self.is_in_future(w) {
            return false;
        }
        self.incomplete.retain(|i| *i < w.horizon);
        self.cursor = Some(w.horizon);
        true
    }

    /// Everything before `end` is written.
    pub(crate) fn done_until(&mut self, end: DateTime<Utc>) {
        self.incomplete.retain(|i| *i >= end);
        self.cursor = Some(self.cursor.map_or(end, |c| c.max(end)));
    }
}

/// One request to send: `[start, end)` for one target, everything it owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Index of the target in the pipeline's target list.
    pub target: usize,
    /// The oldest instant owed (a new target: the horizon at plan time). At send time
    /// the start moves up to the horizon of that moment.
    pub start: DateTime<Utc>,
    /// Exclusive: the settled end, or 60 minutes after `start` (the API's longest span).
    pub end: DateTime<Utc>,
    /// The instant this request is due: its oldest owed data leaves the horizon then, or
    /// the target's lag passes its `max_lag`. A new target is due at once.
    pub(crate) due: DateTime<Utc>,
    /// The target was never fetched: the part before the horizon at send time was never
    /// owed, so nothing is lost when the start moves.
    pub(crate) first: bool,
}

impl Request {
    /// The slots `[start, end)` touches, as indexes from the slot of `start`.
    pub(crate) fn slots(&self, slot_len: TimeDelta) -> SlotRange {
        SlotRange::covering(self.start, self.end, slot_len)
    }
}

/// Consecutive slots `[first, first + count × len)`: how a request names its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotRange {
    pub(crate) first: DateTime<Utc>,
    pub(crate) count: usize,
    pub(crate) len: TimeDelta,
}

impl SlotRange {
    /// The slots that `[start, end)` touches.
    pub(crate) fn covering(start: DateTime<Utc>, end: DateTime<Utc>, len: TimeDelta) -> Self {
        let first = floor_to(start, len);
        let last = if start < end {
            ceil_to(end, len)
        } else {
            first
        };
        let n = (last - first).num_microseconds().unwrap_or(0)
            / len.num_microseconds().unwrap_or(1).max(1);
        SlotRange {
            first,
            count: usize::try_from(n).unwrap_or(0),
            len,
        }
    }

    /// The index of the slot that starts at `start`, if it is in the range.
    pub(crate) fn index_of(&self, start: DateTime<Utc>) -> Option<usize> {
        let d = (start - self.first).num_microseconds()?;
        let len = self.len.num_microseconds()?.max(1);
        let i = usize::try_from(d / len).ok()?;
        (d % len == 0 && i < self.count).then_some(i)
    }

    /// The `i`-th slot.
    pub(crate) fn get(&self, i: usize) -> Slot {
        let start = self.first + self.len * i as i32;
        Slot {
            start,
            end: start + self.len,
        }
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Slot> + '_ {
        (0..self.count).map(|i| self.get(i))
    }
}

/// The instant data owed from `owed_from` leaves the horizon: the last moment a
/// request can still ask for it.
pub(crate) fn leaves_horizon(owed_from: DateTime<Utc>) -> DateTime<Utc> {
    owed_from + REALTIME_HORIZON - HORIZON_MARGIN
}

/// When a target owing from `owed_from` is due: when that data leaves the horizon, or
/// earlier when its lag would pass `max_lag`.
pub(crate) fn due(owed_from: DateTime<Utc>, max_lag: Option<TimeDelta>) -> DateTime<Utc> {
    let leaves = leaves_horizon(owed_from);
    max_lag.map_or(leaves, |l| leaves.min(owed_from + l))
}

/// The whole run: what each target owes once the lost parts are given up, what was
/// lost, and the requests earliest due first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per target (the pipeline's order): what it owes after the losses below.
    pub(crate) progress: Vec<Progress>,
    /// Ranges already beyond the horizon, by target index.
    pub(crate) lost: Vec<(usize, TimeRange)>,
    /// Earliest due first (ties: target order); shared, not copied, with the fetches.
    pub requests: Arc<[Request]>,
}

impl Plan {
    /// Plans a run at `window` for targets whose progress is `progress`; `max_lag` gives
    /// a target's freshness goal by its index.
    pub fn build(
        mut progress: Vec<Progress>,
        window: Window,
        max_lag: impl Fn(usize) -> Option<TimeDelta>,
    ) -> Plan {
        let mut lost = Vec::new();
        let mut requests = Vec::new();
        for (i, p) in progress.iter_mut().enumerate() {
            lost.extend(
                p.cut_at(window.horizon, window.slot_len)
                    .into_iter()
                    .map(|l| (i, l)),
            );
            if let Some(r) = request_for(i, p, &window, max_lag(i)) {
                requests.push(r);
            }
        }
        requests.sort_by_key(|r| (r.due, r.target));
        Plan {
            progress,
            lost,
            requests: requests.into(),
        }
    }
}

/// The one request a target needs this run: everything it owes, up to the settled end
/// (never more than [`REALTIME_MAX_SPAN`]: what it owes starts at the horizon or later).
fn request_for(
    target: usize,
    p: &Progress,
    w: &Window,
    max_lag: Option<TimeDelta>,
) -> Option<Request> {
    let (start, due, first) = match p.owed_from() {
        None => (w.horizon, w.now, true),
        Some(o) => (o, due(o, max_lag), false),
    };
    let end = w.settled_end;
    (start < end).then(|| Request {
        target,
        start,
        end: end.min(start + REALTIME_MAX_SPAN),
        due,
        first,
    })
}

/// `rtcq backfill`: re-fetch and rewrite every slot of `[from, to)` that the API still
/// has, without moving any cursor backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backfill {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
}

impl Backfill {
    /// Marks the range's slots before the target's cursor as owed again, from the later of
    /// their start and the horizon: the part before the horizon was fetched once and is
    /// not lost, so it is reported by [`Backfill::unreachable`] instead of recorded as a
    /// gap. Slots at or after the cursor are pending anyway; a target that never ran has
    /// nothing to re-fetch.
    pub(crate) fn apply(&self, p: &mut Progress, w: &Window) {
        let Some(cursor) = p.cursor else { return };
        let end = self.to.min(w.settled_end).min(cursor);
        let mut s = floor_to(self.from, w.slot_len);
        while s < end {
            if s + w.slot_len > w.horizon {
                p.incomplete.insert(s.max(w.horizon));
            }
            s += w.slot_len;
        }
    }

    /// The part of the range the API no longer has.
    pub(crate) fn unreachable(&self, w: &Window) -> Option<TimeRange> {
        let end = self.to.min(w.horizon);
        (self.from < end).then_some(TimeRange {
            start: self.from,
            end,
        })
    }

    /// The part of the range that is not settled yet (a later run fetches it).
    pub(crate) fn unsettled(&self, w: &Window) -> Option<TimeRange> {
        let start = self.from.max(w.settled_end);
        (start < self.to).then_some(TimeRange {
            start,
            end: self.to,
        })
    }
}

fn push_lost(lost: &mut Vec<TimeRange>, start: DateTime<Utc>, end: DateTime<Utc>) {
    match lost.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => lost.push(TimeRange { start, end }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, h, m, s).unwrap()
    }

    #[test]
    fn a_cursor_is_in_the_future_only_past_the_present() {
        // Settled end 11:59:00.
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        let at = |c| Progress {
            cursor: Some(c),
            incomplete: BTreeSet::new(),
        };
        // A room whose call began at 11:59:40 owes from 11:59:30: not in the future.
        assert!(!at(t(11, 59, 30)).is_in_future(&w));
        assert!(!at(t(12, 0, 0)).is_in_future(&w));
        assert!(at(t(12, 0, 30)).is_in_future(&w));
        let mut p = at(t(11, 59, 30));
        assert!(!p.rewind_future(&w));
        assert_eq!(p.cursor, Some(t(11, 59, 30)));
    }

    fn at(cursor: DateTime<Utc>) -> Progress {
        Progress {
            cursor: Some(cursor),
            incomplete: BTreeSet::new(),
        }
    }

    fn build(progress: Vec<Progress>, now: DateTime<Utc>) -> Plan {
        Plan::build(progress, Window::at(now, TimeDelta::minutes(5)), |_| None)
    }

    #[test]
    fn the_settled_end_is_on_the_bucket_grid() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        assert_eq!(w.settled_end, t(11, 59, 0));
        assert_eq!(w.horizon, t(11, 1, 0));
        let w = Window::at(t(12, 0, 40), TimeDelta::minutes(5));
        assert_eq!(w.settled_end, t(11, 59, 30));
        assert_eq!(w.horizon, t(11, 1, 30));
    }

    #[test]
    fn a_new_target_starts_at_the_horizon_first_and_owes_nothing() {
        let plan = build(vec![Progress::default()], t(12, 0, 10));
        assert!(plan.lost.is_empty());
        assert_eq!(plan.progress, vec![Progress::default()]);
        assert_eq!(
            plan.requests.to_vec(),
            vec![Request {
                target: 0,
                start: t(11, 1, 0),
                end: t(11, 59, 0),
                due: t(12, 0, 10),
                first: true,
            }]
        );
        // However long it waits for budget, nothing is ever lost.
        let plan = build(vec![Progress::default()], t(23, 0, 10));
        assert!(plan.lost.is_empty());
        assert_eq!(plan.requests[0].start, t(22, 1, 0));
    }

    #[test]
    fn a_served_target_owes_from_its_cursor_and_is_due_when_that_leaves() {
        let plan = build(vec![at(t(11, 59, 0))], t(12, 0, 29));
        assert!(plan.requests.is_empty(), "nothing newly settled");
        let plan = build(vec![at(t(11, 59, 0))], t(12, 20, 10));
        assert_eq!(
            plan.requests.to_vec(),
            vec![Request {
                target: 0,
                start: t(11, 59, 0),
                end: t(12, 19, 0),
                due: t(12, 58, 30),
                first: false,
            }]
        );
    }

    #[test]
    fn requests_are_earliest_due_first_and_max_lag_pulls_a_target_forward() {
        let progress = vec![
            at(t(11, 50, 0)),
            at(t(11, 20, 0)),
            Progress::default(),
            at(t(11, 40, 0)),
            at(t(11, 45, 0)),
        ];
        let plan = Plan::build(
            progress,
            Window::at(t(12, 0, 10), TimeDelta::minutes(5)),
            |i| (i == 3).then(|| TimeDelta::minutes(10)),
        );
        let order: Vec<(usize, DateTime<Utc>)> =
            plan.requests.iter().map(|r| (r.target, r.due)).collect();
        assert_eq!(
            order,
            vec![
                (3, t(11, 50, 0)),
                (2, t(12, 0, 10)),
                (1, t(12, 19, 30)),
                (4, t(12, 44, 30)),
                (0, t(12, 49, 30)),
            ]
        );
    }

    #[test]
    fn an_outage_records_what_left_the_horizon_and_asks_for_the_rest() {
        // Cursor at 10:30, a backfilled part at 10:00, now 12:00:10: [10:00, 10:05)
        // and [10:30, 11:01) are gone.
        let p = Progress {
            cursor: Some(t(10, 30, 0)),
            incomplete: BTreeSet::from([t(10, 0, 0)]),
        };
        let plan = build(vec![p], t(12, 0, 10));
        assert_eq!(
            plan.lost,
            vec![
                (
                    0,
                    TimeRange {
                        start: t(10, 0, 0),
                        end: t(10, 5, 0)
                    }
                ),
                (
                    0,
                    TimeRange {
                        start: t(10, 30, 0),
                        end: t(11, 1, 0)
                    }
                )
            ]
        );
        assert_eq!(plan.progress, vec![at(t(11, 1, 0))]);
        assert_eq!(plan.requests[0].start, t(11, 1, 0));
        assert_eq!(plan.requests[0].due, t(12, 0, 30));
    }

    #[test]
    fn an_incomplete_part_is_owed_only_from_where_it_starts_and_up_to_the_cursor() {
        // [11:01, 11:05) owed, then everything from the cursor at 11:57.
        let p = Progress {
            cursor: Some(t(11, 57, 0)),
            incomplete: BTreeSet::from([t(11, 1, 0), t(11, 55, 0)]),
        };
        let plan = build(vec![p.clone()], t(12, 0, 10));
        assert!(plan.lost.is_empty());
        assert_eq!(plan.requests[0].start, t(11, 1, 0));
        // Two minutes later the horizon is 11:03: only [11:01, 11:03) is lost.
        let plan = build(vec![p], t(12, 2, 10));
        assert_eq!(
            plan.lost,
            vec![(
                0,
                TimeRange {
                    start: t(11, 1, 0),
                    end: t(11, 3, 0)
                }
            )]
        );
        assert_eq!(
            plan.progress[0].incomplete,
            BTreeSet::from([t(11, 3, 0), t(11, 55, 0)])
        );
        // Done up to 12:01: nothing is owed before it any more.
        let mut p = plan.progress[0].clone();
        p.done_until(t(12, 1, 0));
        assert_eq!(p, at(t(12, 1, 0)));
    }

    #[test]
    fn slot_ranges_name_the_slots_a_request_touches() {
        let r = SlotRange::covering(t(11, 1, 0), t(11, 59, 0), TimeDelta::minutes(5));
        assert_eq!(r.first, t(11, 0, 0));
        assert_eq!(r.count, 12);
        assert_eq!(r.index_of(t(11, 55, 0)), Some(11));
        assert_eq!(r.index_of(t(12, 0, 0)), None);
        assert_eq!(r.index_of(t(11, 56, 0)), None);
        assert_eq!(r.index_of(t(10, 55, 0)), None);
        assert_eq!(
            r.get(11),
            Slot {
                start: t(11, 55, 0),
                end: t(12, 0, 0)
            }
        );
        assert_eq!(r.iter().count(), 12);
        let r = SlotRange::covering(t(11, 0, 0), t(11, 5, 0), TimeDelta::minutes(5));
        assert_eq!(r.count, 1);
        let r = SlotRange::covering(t(11, 59, 0), t(11, 59, 0), TimeDelta::minutes(5));
        assert_eq!(r.count, 0);
    }

    #[test]
    fn backfill_reopens_written_parts_inside_the_horizon_only() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        let mut p = at(t(11, 50, 0));
        let b = Backfill {
            from: t(10, 30, 0),
            to: t(11, 20, 0),
        };
        b.apply(&mut p, &w);
        assert_eq!(
            p.incomplete,
            BTreeSet::from([t(11, 1, 0), t(11, 5, 0), t(11, 10, 0), t(11, 15, 0)])
        );
        assert_eq!(
            b.unreachable(&w),
            Some(TimeRange {
                start: t(10, 30, 0),
                end: t(11, 1, 0)
            })
        );
        let plan = Plan::build(vec![p], w, |_| None);
        // Nothing recorded as lost; one request from the backfill's start.
        assert!(plan.lost.is_empty());
        let ranges: Vec<_> = plan.requests.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(ranges, vec![(t(11, 1, 0), t(11, 59, 0))]);
        // A target that never ran has nothing to re-fetch.
        let mut fresh = Progress::default();
        b.apply(&mut fresh, &w);
        assert!(fresh.incomplete.is_empty());
        let late = Backfill {
            from: t(11, 40, 0),
            to: t(12, 30, 0),
        };
        assert_eq!(
            late.unsettled(&w),
            Some(TimeRange {
                start: t(11, 59, 0),
                end: t(12, 30, 0)
            })
        );
    }

    /// One simulated day of runs every `schedule` that each send the first
    /// `requests_per_run` requests of their plan at the paced rate: the ranges lost,
    /// and the mean minutes asked for per request.
    fn simulate(targets: usize, rps: f64, schedule_s: i64, run_s: u64) -> (usize, f64) {
        let budget = crate::plan::capacity::Budget::new(
            rps,
            std::time::Duration::from_secs(schedule_s as u64),
            Some(std::time::Duration::from_secs(run_s)),
        );
        let per_run = budget.requests_per_run() as usize;
        let spacing = TimeDelta::microseconds((crate::api::limit::HEADROOM / rps * 1e6) as i64);
        let mut progress = vec![Progress::default(); targets];
        let start = t(0, 2, 47);
        let (mut lost, mut minutes, mut sent) = (0, 0.0, 0);
        let runs = 24 * 3600 / schedule_s;
        for k in 0..runs {
            let now = start + TimeDelta::seconds(k * schedule_s);
            let plan = Plan::build(progress, Window::at(now, TimeDelta::minutes(5)), |_| None);
            lost += plan.lost.len();
            progress = plan.progress;
            for (j, r) in plan.requests.iter().take(per_run).enumerate() {
                let sent_at = now + spacing * j as i32;
                let asked = r.start.max(horizon_at(sent_at));
                if !r.first && asked > r.start {
                    lost += 1;
                }
                minutes += (r.end - asked).num_seconds() as f64 / 60.0;
                sent += 1;
                progress[r.target].done_until(r.end);
            }
        }
        (lost, minutes / sent as f64)
    }

    #[test]
    fn a_day_at_two_per_second_loses_nothing_within_capacity() {
        for targets in [1_000, 2_500, 5_000] {
            let (lost, mean) = simulate(targets, 2.0, 300, 240);
            assert_eq!(lost, 0, "{targets} targets");
            // Fewer, fuller requests as the targets grow.
            assert!(
                mean >= 5.0 * (targets as f64 / 470.0).floor(),
                "{targets}: {mean}"
            );
        }
    }

    #[test]
    fn a_day_beyond_capacity_records_gaps_and_the_warning_says_why() {
        let budget = crate::plan::capacity::Budget::new(
            2.0,
            std::time::Duration::from_secs(300),
            Some(std::time::Duration::from_secs(240)),
        );
        let targets = 6_000;
        let capacity = crate::plan::capacity::Capacity { targets, budget };
        assert!(capacity.over());
        assert!(
            capacity.to_string().contains("over capacity, 595 more targets than can be served, so data will be lost every hour"),
            "{capacity}"
        );
        let (lost, _) = simulate(targets as usize, 2.0, 300, 240);
        assert!(lost > 0);
    }

    #[test]
    fn the_checked_deployment_fits() {
        // 1,200 rooms at 4 requests/second, 30-second runs every 5 minutes.
        let (lost, mean) = simulate(1_200, 4.0, 300, 30);
        assert_eq!(lost, 0);
        assert!(mean > 45.0, "{mean}");
    }

    fn arb_case() -> impl Strategy<Value = (Progress, DateTime<Utc>, TimeDelta)> {
        let lens = prop::sample::select(vec![30i64, 60, 120, 300, 600, 900, 1200, 1800, 3600]);
        (
            lens,
            0i64..400_000,
            prop::option::of(0i64..8_000),
            prop::collection::vec(0i64..8_000, 0..6),
        )
            .prop_map(|(len, now_s, cursor_back, inc_back)| {
                let len = TimeDelta::seconds(len);
                let now =
                    t(0, 0, 0) + TimeDelta::seconds(now_s) + TimeDelta::milliseconds(now_s % 997);
                let grid = |back: i64| floor_to(now - TimeDelta::seconds(back), REALTIME_BUCKET);
                let cursor = cursor_back.map(grid);
                let incomplete = inc_back
                    .into_iter()
                    .map(grid)
                    .filter(|s| cursor.is_some_and(|c| *s < c))
                    .collect();
                (Progress { cursor, incomplete }, now, len)
            })
    }

    proptest! {
        #[test]
        fn requests_respect_every_api_limit((p, now, len) in arb_case()) {
            let w = Window::at(now, len);
            let plan = Plan::build(vec![p.clone()], w, |_| None);
            prop_assert!(plan.requests.len() <= 1);
            let after = &plan.progress[0];
            for r in plan.requests.iter() {
                prop_assert!(r.end - r.start <= REALTIME_MAX_SPAN);
                prop_assert!(r.start < r.end);
                prop_assert!(r.start >= now - REALTIME_HORIZON, "start {} before horizon", r.start);
                prop_assert!(r.end <= now - REALTIME_DELAY, "end {} not settled", r.end);
                prop_assert_eq!(r.start.timestamp() % 30, 0);
                prop_assert_eq!(r.end.timestamp() % 30, 0);
                prop_assert_eq!(r.start.timestamp_subsec_nanos(), 0);
                prop_assert_eq!(Some(r.start), after.owed_from().or(Some(w.horizon)));
                prop_assert_eq!(r.first, p.is_new());
            }
            // Lost ranges lie wholly before the horizon, and nothing owed is left
            // before it.
            for (_, l) in &plan.lost {
                prop_assert!(l.end <= w.horizon && l.start < l.end);
            }
            prop_assert!(after.owed_from().is_none_or(|o| o >= w.horizon));
            // A target never fetched loses nothing.
            if p.is_new() {
                prop_assert!(plan.lost.is_empty());
            }
        }
    }
}
