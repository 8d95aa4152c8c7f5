//! Slots on the UTC grid, the settled end and the horizon, and the requests one run
//! makes. See DESIGN.md, "One run", steps 2 to 4.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

/// Width of one API bucket.
pub const BUCKET: TimeDelta = TimeDelta::seconds(30);
/// How far back the API answers.
pub const HORIZON: TimeDelta = TimeDelta::minutes(60);
/// Margin kept inside the horizon so a request is not rejected for arriving a moment late
/// or for a small clock difference with the server.
pub const HORIZON_MARGIN: TimeDelta = TimeDelta::seconds(30);
/// The documented data delay: the newest minute is not settled.
pub const SETTLE: TimeDelta = TimeDelta::minutes(1);
/// Longest span one request may cover.
pub const MAX_SPAN: TimeDelta = TimeDelta::minutes(60);

/// A half-open interval `[start, end)` on the UTC slot grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub start: DateTime<Utc>,
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

    /// The slot length.
    pub fn len(&self) -> TimeDelta {
        self.end - self.start
    }

    /// The UTC date of the slot, as in the `date=` partition.
    pub fn date(&self) -> String {
        self.start.format("%Y-%m-%d").to_string()
    }

    /// `HHMM` of the slot start, as in file names.
    pub fn hhmm(&self) -> String {
        self.start.format("%H%M").to_string()
    }
}

/// Rounds `t` down to a multiple of `step` since the Unix epoch.
pub fn floor_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let step_us = step.num_microseconds().unwrap_or(1).max(1);
    let us = t.timestamp_micros();
    let floored = us - us.rem_euclid(step_us);
    DateTime::from_timestamp_micros(floored).unwrap_or(t)
}

/// Rounds `t` up to a multiple of `step` since the Unix epoch.
pub fn ceil_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let f = floor_to(t, step);
    if f == t { t } else { f + step }
}

/// The time frame of one run: what is settled and what can still be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub now: DateTime<Utc>,
    pub slot_len: TimeDelta,
    /// End of the newest slot with `end <= now - SETTLE`.
    pub settled_end: DateTime<Utc>,
    /// The oldest instant still asked for: `now - HORIZON + HORIZON_MARGIN`, on the
    /// 30 s grid.
    pub horizon: DateTime<Utc>,
}

impl Window {
    pub fn at(now: DateTime<Utc>, slot_len: TimeDelta) -> Self {
        Window {
            now,
            slot_len,
            settled_end: floor_to(now - SETTLE, slot_len),
            horizon: horizon_at(now),
        }
    }
}

/// The oldest start a request sent at `now` may have.
pub fn horizon_at(now: DateTime<Utc>) -> DateTime<Utc> {
    ceil_to(now - HORIZON + HORIZON_MARGIN, BUCKET)
}

/// What a target has already: everything before `cursor` except the `incomplete` slots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub cursor: Option<DateTime<Utc>>,
    /// Slots before `cursor` that are still owed, each as the instant it is owed from:
    /// its start, or a later instant inside it when the part before was never owed (a
    /// new target starting at the horizon) or is already recorded as lost.
    pub incomplete: std::collections::BTreeSet<DateTime<Utc>>,
}

/// A range the API no longer has, so it can never be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lost {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// One request to send: `[start, end)` for one target, covering `slots`. `start` is
/// after the first slot's start when the horizon cut that slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub target: usize,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub slots: Vec<Slot>,
}

/// What one target needs this run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPlan {
    /// Slots to fetch, oldest first.
    pub slots: Vec<Slot>,
    /// Ranges lost before they could be fetched, oldest first, merged.
    pub lost: Vec<Lost>,
    /// The cursor once every planned slot is written.
    pub cursor: Option<DateTime<Utc>>,
}

/// The whole run: per target plans and the requests, oldest first across targets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<TargetPlan>,
    /// Shared, not copied, with a run's fetches.
    pub requests: Arc<[Request]>,
}

impl Plan {
    /// Builds the plan for targets whose progress is `progress` (same order as the
    /// pipeline's targets).
    pub fn build(progress: &[Progress], window: Window) -> Plan {
        let mut targets = Vec::with_capacity(progress.len());
        let mut requests = Vec::new();
        for (i, p) in progress.iter().enumerate() {
            let tp = plan_target(p, &window);
            requests.extend(requests_for(i, &tp.slots, window.horizon));
            targets.push(tp);
        }
        requests.sort_by_key(|a| (a.start, a.target));
        Plan {
            targets,
            requests: requests.into(),
        }
    }
}

fn plan_target(p: &Progress, w: &Window) -> TargetPlan {
    let len = w.slot_len;
    // A new target starts at the horizon: nothing was owed before it existed.
    let owed_from = p.cursor;
    let from = p.cursor.unwrap_or_else(|| floor_to(w.horizon, len));
    // Slot start -> the instant it is owed from.
    let mut incomplete: std::collections::BTreeMap<DateTime<Utc>, DateTime<Utc>> =
        std::collections::BTreeMap::new();
    for s in p.incomplete.iter().copied().filter(|s| *s < w.settled_end) {
        let o = incomplete.entry(floor_to(s, len)).or_insert(s);
        *o = (*o).min(s);
    }
    let mut starts: std::collections::BTreeSet<DateTime<Utc>> =
        incomplete.keys().copied().collect();
    let mut t = from;
    while t < w.settled_end {
        starts.insert(t);
        t += len;
    }
    let mut slots = Vec::new();
    let mut lost: Vec<Lost> = Vec::new();
    for start in starts {
        let slot = Slot {
            start,
            end: start + len,
        };
        // The slot is owed from where it was left incomplete, or from its start if the
        // target had a cursor at or before it; a new target owes nothing before it.
        let owed = incomplete
            .get(&start)
            .copied()
            .or_else(|| owed_from.filter(|c| *c <= start).map(|_| start));
        if slot.end <= w.horizon {
            if let Some(o) = owed.filter(|o| *o < slot.end) {
                push_lost(&mut lost, o, slot.end);
            }
            continue;
        }
        if let Some(o) = owed.filter(|o| *o < w.horizon) {
            push_lost(&mut lost, o, w.horizon);
        }
        slots.push(slot);
    }
    let cursor = match p.cursor {
        Some(c) if c >= w.settled_end => Some(c),
        _ if from < w.settled_end => Some(w.settled_end),
        other => other,
    };
    TargetPlan {
        slots,
        lost,
        cursor,
    }
}

/// `rtcq backfill`: re-fetch and rewrite every slot of `[from, to)` that the API still
/// has, without moving any cursor backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backfill {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Backfill {
    /// Marks the range's slots before the target's cursor as owed again, from the later of
    /// their start and the horizon: the part before the horizon was fetched once and is
    /// not lost, so it is reported by [`Backfill::unreachable`] instead of recorded as a
    /// gap. Slots at or after the cursor are pending anyway; a target that never ran has
    /// nothing to re-fetch.
    pub fn apply(&self, p: &mut Progress, w: &Window) {
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
    pub fn unreachable(&self, w: &Window) -> Option<Lost> {
        let end = self.to.min(w.horizon);
        (self.from < end).then_some(Lost {
            start: self.from,
            end,
        })
    }

    /// The part of the range that is not settled yet (a later run fetches it).
    pub fn unsettled(&self, w: &Window) -> Option<Lost> {
        let start = self.from.max(w.settled_end);
        (start < self.to).then_some(Lost {
            start,
            end: self.to,
        })
    }
}

fn push_lost(lost: &mut Vec<Lost>, start: DateTime<Utc>, end: DateTime<Utc>) {
    match lost.last_mut() {
        Some(last) if last.end == start => last.end = end,
        _ => lost.push(Lost { start, end }),
    }
}

/// Consecutive slots merge into requests of at most [`MAX_SPAN`].
fn requests_for(target: usize, slots: &[Slot], horizon: DateTime<Utc>) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    for slot in slots {
        let start = slot.start.max(horizon);
        match out.last_mut() {
            Some(r) if r.end == slot.start && slot.end - r.start <= MAX_SPAN => {
                r.end = slot.end;
                r.slots.push(*slot);
            }
            _ => out.push(Request {
                target,
                start,
                end: slot.end,
                slots: vec![*slot],
            }),
        }
    }
    out
}

/// Whether a pipeline's steady state, one request per target per run, fits its schedule
/// at the configured request rate. A catch-up after an outage sends more (one request per
/// 60 minutes owed) but only once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScheduleFit {
    pub targets: usize,
    pub requests_per_second: f64,
    pub schedule: std::time::Duration,
}

impl ScheduleFit {
    /// Seconds of requests one steady-state run needs.
    pub fn seconds_needed(&self) -> f64 {
        self.targets as f64 / self.requests_per_second
    }

    pub fn fits(&self) -> bool {
        self.seconds_needed() <= self.schedule.as_secs_f64()
    }
}

impl std::fmt::Display for ScheduleFit {
    /// "612 targets need 306 s per run: more than a 5-minute schedule allows".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let need = self.seconds_needed();
        let need = if need >= 10.0 {
            format!("{need:.0}")
        } else {
            format!("{need:.1}")
        };
        let s = self.schedule.as_secs();
        let every = if s.is_multiple_of(3600) {
            format!("{}-hour", s / 3600)
        } else if s.is_multiple_of(60) {
            format!("{}-minute", s / 60)
        } else {
            format!("{s}-second")
        };
        let targets = match self.targets {
            1 => "1 target needs".to_string(),
            n => format!("{n} targets need"),
        };
        if self.fits() {
            write!(
                f,
                "{targets} {need} s per run at {} requests/second: fits a {every} schedule",
                self.requests_per_second
            )
        } else {
            write!(
                f,
                "{targets} {need} s per run at {} requests/second: more than a {every} schedule allows",
                self.requests_per_second
            )
        }
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
    fn an_incomplete_slot_is_owed_only_from_where_it_was_cut() {
        let len = TimeDelta::minutes(5);
        // A new target's first slot [11:00, 11:05) was cut at the 11:01 horizon, and
        // its request failed: it is owed from 11:01 only.
        let p = Progress {
            cursor: Some(t(11, 55, 0)),
            incomplete: BTreeSet::from([t(11, 1, 0)]),
        };
        let plan = Plan::build(std::slice::from_ref(&p), Window::at(t(12, 0, 10), len));
        assert!(
            plan.targets[0].lost.is_empty(),
            "{:?}",
            plan.targets[0].lost
        );
        assert_eq!(plan.requests[0].start, t(11, 1, 0));
        assert_eq!(plan.targets[0].slots[0].start, t(11, 0, 0));
        // Two minutes later the horizon is 11:03: only [11:01, 11:03) is lost.
        let plan = Plan::build(&[p], Window::at(t(12, 2, 10), len));
        assert_eq!(
            plan.targets[0].lost,
            vec![Lost {
                start: t(11, 1, 0),
                end: t(11, 3, 0)
            }]
        );
    }

    #[test]
    fn first_run_starts_at_the_horizon_without_a_gap() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        assert_eq!(w.settled_end, t(11, 55, 0));
        assert_eq!(w.horizon, t(11, 1, 0));
        let plan = Plan::build(&[Progress::default()], w);
        let tp = &plan.targets[0];
        assert_eq!(tp.slots.first().unwrap().start, t(11, 0, 0));
        assert_eq!(tp.slots.len(), 11);
        assert!(tp.lost.is_empty());
        assert_eq!(tp.cursor, Some(t(11, 55, 0)));
        assert_eq!(
            plan.requests.to_vec(),
            vec![Request {
                target: 0,
                start: t(11, 1, 0),
                end: t(11, 55, 0),
                slots: tp.slots.clone()
            }]
        );
    }

    #[test]
    fn second_run_right_after_fetches_nothing() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        let p = Progress {
            cursor: Some(t(11, 55, 0)),
            incomplete: BTreeSet::new(),
        };
        let plan = Plan::build(&[p], Window::at(t(12, 0, 50), TimeDelta::minutes(5)));
        assert!(plan.requests.is_empty());
        assert_eq!(plan.targets[0].cursor, Some(t(11, 55, 0)));
        let _ = w;
    }

    #[test]
    fn outage_records_the_lost_range_and_cuts_the_first_slot() {
        // Cursor at 10:30, now 12:00:10: [10:30, 11:01) is gone.
        let p = Progress {
            cursor: Some(t(10, 30, 0)),
            incomplete: BTreeSet::from([t(10, 0, 0)]),
        };
        let plan = Plan::build(&[p], Window::at(t(12, 0, 10), TimeDelta::minutes(5)));
        let tp = &plan.targets[0];
        assert_eq!(
            tp.lost,
            vec![
                Lost {
                    start: t(10, 0, 0),
                    end: t(10, 5, 0)
                },
                Lost {
                    start: t(10, 30, 0),
                    end: t(11, 1, 0)
                }
            ]
        );
        assert_eq!(plan.requests[0].start, t(11, 1, 0));
        assert_eq!(plan.requests[0].slots[0].start, t(11, 0, 0));
    }

    #[test]
    fn requests_are_oldest_first_across_targets() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        let a = Progress {
            cursor: Some(t(11, 50, 0)),
            incomplete: BTreeSet::new(),
        };
        let b = Progress {
            cursor: Some(t(11, 20, 0)),
            incomplete: BTreeSet::from([t(11, 5, 0)]),
        };
        let plan = Plan::build(&[a, b], w);
        let order: Vec<(usize, DateTime<Utc>)> =
            plan.requests.iter().map(|r| (r.target, r.start)).collect();
        assert_eq!(
            order,
            vec![(1, t(11, 5, 0)), (1, t(11, 20, 0)), (0, t(11, 50, 0))]
        );
    }

    #[test]
    fn backfill_reopens_written_slots_inside_the_horizon_only() {
        let w = Window::at(t(12, 0, 10), TimeDelta::minutes(5));
        let mut p = Progress {
            cursor: Some(t(11, 50, 0)),
            incomplete: BTreeSet::new(),
        };
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
            Some(Lost {
                start: t(10, 30, 0),
                end: t(11, 1, 0)
            })
        );
        let plan = Plan::build(&[p], w);
        let tp = &plan.targets[0];
        // Nothing recorded as lost, cursor not moved back.
        assert!(tp.lost.is_empty());
        assert_eq!(tp.cursor, Some(t(11, 55, 0)));
        let starts: Vec<_> = plan.requests.iter().map(|r| (r.start, r.end)).collect();
        assert_eq!(
            starts,
            vec![(t(11, 1, 0), t(11, 20, 0)), (t(11, 50, 0), t(11, 55, 0))]
        );
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
            Some(Lost {
                start: t(11, 55, 0),
                end: t(12, 30, 0)
            })
        );
    }

    #[test]
    fn schedule_fit_says_whether_targets_fit() {
        let fit = |targets, rps, secs| ScheduleFit {
            targets,
            requests_per_second: rps,
            schedule: std::time::Duration::from_secs(secs),
        };
        let f = fit(612, 2.0, 300);
        assert!(!f.fits());
        assert_eq!(
            f.to_string(),
            "612 targets need 306 s per run at 2 requests/second: more than a 5-minute schedule allows"
        );
        let f = fit(11, 2.0, 300);
        assert!(f.fits());
        assert_eq!(
            f.to_string(),
            "11 targets need 5.5 s per run at 2 requests/second: fits a 5-minute schedule"
        );
        assert!(fit(600, 2.0, 300).fits());
        assert_eq!(
            fit(1, 0.5, 90).to_string(),
            "1 target needs 2.0 s per run at 0.5 requests/second: fits a 90-second schedule"
        );
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
                let grid = |back: i64| floor_to(now - TimeDelta::seconds(back), len);
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
            let plan = Plan::build(std::slice::from_ref(&p), w);
            let mut covered = BTreeSet::new();
            for r in plan.requests.iter() {
                prop_assert!(r.end - r.start <= MAX_SPAN);
                prop_assert!(r.start < r.end);
                prop_assert!(r.start >= now - HORIZON, "start {} before horizon", r.start);
                prop_assert!(r.end <= now - SETTLE, "end {} not settled", r.end);
                prop_assert_eq!(r.start.timestamp() % 30, 0);
                prop_assert_eq!(r.end.timestamp() % 30, 0);
                prop_assert_eq!(r.start.timestamp_subsec_nanos(), 0);
                prop_assert_eq!(r.start, r.slots[0].start.max(w.horizon));
                prop_assert_eq!(r.end, r.slots.last().unwrap().end);
                for s in &r.slots {
                    prop_assert!(covered.insert(s.start), "slot {} twice", s.start);
                }
            }
            // Every pending slot still inside the horizon is covered, exactly once.
            let tp = &plan.targets[0];
            let planned: BTreeSet<_> = tp.slots.iter().map(|s| s.start).collect();
            prop_assert_eq!(&covered, &planned);
            let mut expected = BTreeSet::new();
            let from = p.cursor.unwrap_or_else(|| floor_to(w.horizon, len));
            let mut s = from;
            while s < w.settled_end {
                if s + len > w.horizon { expected.insert(s); }
                s += len;
            }
            for s in &p.incomplete {
                if *s + len > w.horizon && *s < w.settled_end { expected.insert(*s); }
            }
            prop_assert_eq!(planned, expected);
            // Lost ranges lie wholly before the horizon and never overlap a request.
            for l in &tp.lost {
                prop_assert!(l.end <= w.horizon && l.start < l.end);
            }
        }
    }
}
