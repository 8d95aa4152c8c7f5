//! History (docs/design.md, "History on day one"): what the offline API still keeps of
//! the time before a target was first served, `[since − history, since)`, owed at
//! 5-minute granularity once. Nothing of it was lost, so it is never a gap: it is asked
//! through the recovery stage after every real gap, newest first, in few requests.
//! Pure functions of the target's `since`, the recovery ledger and the data clock, so
//! `run`, `plan` and `status` agree.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use super::{DELAY_MARGIN, Recovery, lookback_start};
use crate::discovery::calls::{RoomScan, ScanState};
use crate::domain::{Target, TimeRange};
use volc_rtc::limits::{OFFLINE_DELAY, OFFLINE_MAX_SPAN};
use volc_rtc::time::{ceil_to, floor_to};

/// The offline API's grid: history pieces start and end on it (but the last, at
/// `since`), so no piece splits a bucket.
const FIVE_MINUTES: TimeDelta = TimeDelta::minutes(5);

/// The part of history younger than this at its end (the offline delay and its margin,
/// as for gaps) is asked in one piece once all of it is due, not five minutes a run.
pub(crate) fn tail() -> TimeDelta {
    OFFLINE_DELAY + DELAY_MARGIN
}

/// All of the history a target served since `since` still owes or owed at `now`:
/// `[since − history, since)` cut to the offline API's lookback (with its margin, on the
/// 5-minute grid).
pub(crate) fn span(
    since: DateTime<Utc>,
    history: TimeDelta,
    now: DateTime<Utc>,
) -> Option<TimeRange> {
    let start = (since - history).max(ceil_to(lookback_start(now), FIVE_MINUTES));
    (start < since).then_some(TimeRange { start, end: since })
}

/// What of the history is not recovered yet: the span minus the ranges on record
/// (`done`, this target's), oldest first.
pub(crate) fn left(
    since: DateTime<Utc>,
    history: TimeDelta,
    done: &[TimeRange],
    now: DateTime<Utc>,
) -> Vec<TimeRange> {
    span(since, history, now).map_or_else(Vec::new, |s| s.minus(done.iter().copied()))
}

/// The history requests owed at `now` of the `parts` [`left`] gave, newest first: the
/// old part cut from its newest end into [`OFFLINE_MAX_SPAN`] pieces (so the lookback's
/// edge, moving a little each run, only ever shortens the oldest piece), and the young
/// part (the last [`tail`] before `since`) as one piece once all of it is due.
fn due_of(parts: &[TimeRange], since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<TimeRange> {
    let ready_before = now - OFFLINE_DELAY - DELAY_MARGIN;
    let young_from = young_from(since);
    let mut out = Vec::new();
    for part in parts.iter().rev() {
        // The young part: due only when the whole of it is.
        if part.end > young_from {
            if since <= ready_before {
                out.push(TimeRange {
                    start: part.start.max(young_from),
                    end: part.end,
                });
            }
            if part.start >= young_from {
                continue;
            }
        }
        cut_newest_first(
            part.start,
            part.end.min(young_from).min(ready_before),
            &mut out,
        );
    }
    out
}

/// Pushes `[start, end)` onto `out` cut from its end into [`OFFLINE_MAX_SPAN`] pieces,
/// newest first.
fn cut_newest_first(start: DateTime<Utc>, mut end: DateTime<Utc>, out: &mut Vec<TimeRange>) {
    while start < end {
        let piece_start = (end - OFFLINE_MAX_SPAN).max(start);
        out.push(TimeRange {
            start: piece_start,
            end,
        });
        end = piece_start;
    }
}

/// How many [`OFFLINE_MAX_SPAN`] pieces `[start, end)` takes.
fn pieces(start: DateTime<Utc>, end: DateTime<Utc>) -> usize {
    if start >= end {
        return 0;
    }
    let span_us = OFFLINE_MAX_SPAN.num_microseconds().unwrap_or(1).max(1);
    let us = (end - start).num_microseconds().unwrap_or(0);
    usize::try_from((us + span_us - 1) / span_us).unwrap_or(0)
}

/// Where the young part of the history of a target served since `since` begins: a
/// [`tail`] before it, on the 5-minute grid.
fn young_from(since: DateTime<Utc>) -> DateTime<Utc> {
    floor_to(since - tail(), FIVE_MINUTES)
}

/// How many requests the `parts` [`left`] gave take at most, asked as [`due_of`] cuts
/// them: for `plan` and `status` too.
fn requests_of(parts: &[TimeRange], since: DateTime<Utc>) -> usize {
    let young_from = young_from(since);
    parts
        .iter()
        .map(|p| pieces(p.start, p.end.min(young_from)) + usize::from(p.end > young_from))
        .sum()
}

/// What a discovered room's target still owes of the history found in its calls
/// (`spans`, see [`crate::discovery::history_in_calls`]): the spans within the lookback
/// less the ranges on record, oldest first.
pub(crate) fn left_in_calls(
    spans: &[TimeRange],
    done: &[TimeRange],
    now: DateTime<Utc>,
) -> Vec<TimeRange> {
    let edge = lookback_start(now);
    spans
        .iter()
        .filter(|s| s.end > edge)
        .flat_map(|s| {
            TimeRange {
                start: s.start.max(edge),
                end: s.end,
            }
            .minus(done.iter().copied())
        })
        .collect()
}

/// The requests due at `now` of the `parts` [`left_in_calls`] gave, newest first: a
/// part once its end is old enough (it is then asked whole, cut only past
/// [`OFFLINE_MAX_SPAN`]); nothing outside a call is asked.
fn due_in_calls_of(parts: &[TimeRange], now: DateTime<Utc>) -> Vec<TimeRange> {
    let ready_before = now - OFFLINE_DELAY - DELAY_MARGIN;
    let mut out = Vec::new();
    for part in parts.iter().rev().filter(|p| p.end <= ready_before) {
        cut_newest_first(part.start, part.end, &mut out);
    }
    out
}

/// What history a whole pipeline owes at `now`: what `run` asks, and what `plan` and
/// `status` count.
#[derive(Debug, Default)]
pub(crate) struct Owed {
    /// The requests due now, newest first over all targets.
    pub(crate) due: Vec<(Target, TimeRange)>,
    /// Requests all that is left takes, due or not.
    pub(crate) requests: usize,
    /// Targets with any left.
    pub(crate) targets: usize,
    /// Discovered rooms (app, room) with nothing left: their history can be let go.
    pub(crate) rooms_loaded: Vec<(String, String)>,
}

/// The history owed at `now` by the `listed` targets (each with its `since`, if known)
/// and by the rooms discovery's first scans found (`discovery`, followed by `scans`),
/// given the ranges on record (`recovered`), for a history of `length`.
pub(crate) fn owed<'t>(
    length: TimeDelta,
    listed: impl IntoIterator<Item = (&'t Target, Option<DateTime<Utc>>)>,
    scans: &[RoomScan],
    discovery: &BTreeMap<String, ScanState>,
    recovered: &[Recovery],
    now: DateTime<Utc>,
) -> Owed {
    let mut by_target: HashMap<&str, Vec<TimeRange>> = HashMap::new();
    for r in recovered {
        by_target.entry(&r.target).or_default().push(TimeRange {
            start: r.start,
            end: r.end,
        });
    }
    let done_of = |t: &Target| {
        by_target
            .get(t.key().as_str())
            .map_or(&[][..], Vec::as_slice)
    };
    let mut out = Owed::default();
    for (target, since) in listed {
        let Some(since) = since else { continue };
        let parts = left(since, length, done_of(target), now);
        let requests = requests_of(&parts, since);
        out.requests += requests;
        out.targets += usize::from(requests > 0);
        out.due.extend(
            due_of(&parts, since, now)
                .into_iter()
                .map(|r| (target.clone(), r)),
        );
    }
    for (app, state) in discovery {
        for (room, spans) in &state.history {
            let targets = scans
                .iter()
                .filter(|s| &s.app_id == app && s.follows(room))
                .flat_map(|s| s.targets(room));
            let mut room_left = 0;
            for target in targets {
                let parts = left_in_calls(spans, done_of(&target), now);
                let requests: usize = parts.iter().map(|p| pieces(p.start, p.end)).sum();
                room_left += requests;
                out.targets += usize::from(requests > 0);
                out.due.extend(
                    due_in_calls_of(&parts, now)
                        .into_iter()
                        .map(|r| (target.clone(), r)),
                );
            }
            out.requests += room_left;
            if room_left == 0 {
                out.rooms_loaded.push((app.clone(), room.clone()));
            }
        }
    }
    out.due
        .sort_by(|a, b| b.1.end.cmp(&a.1.end).then(a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn due(
        since: DateTime<Utc>,
        history: TimeDelta,
        done: &[TimeRange],
        now: DateTime<Utc>,
    ) -> Vec<TimeRange> {
        due_of(&left(since, history, done, now), since, now)
    }

    fn requests_left(
        since: DateTime<Utc>,
        history: TimeDelta,
        done: &[TimeRange],
        now: DateTime<Utc>,
    ) -> usize {
        requests_of(&left(since, history, done, now), since)
    }

    fn due_in_calls(spans: &[TimeRange], done: &[TimeRange], now: DateTime<Utc>) -> Vec<TimeRange> {
        due_in_calls_of(&left_in_calls(spans, done, now), now)
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
    }

    fn r(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeRange {
        TimeRange { start, end }
    }

    const DAYS_30: TimeDelta = TimeDelta::days(30);

    #[test]
    fn a_first_run_asks_the_old_part_newest_first_and_the_young_part_waits() {
        // First served at 11:00 on Nov 30, the run at 12:00.
        let since = at(30, 11, 0);
        let now = at(30, 12, 0);
        // The lookback starts Oct 31 13:00; the young part is [02:30, 11:00).
        let got = due(since, DAYS_30, &[], now);
        let young_from = at(30, 2, 30);
        assert_eq!(
            got,
            vec![
                r(young_from - TimeDelta::days(7), young_from),
                r(
                    young_from - TimeDelta::days(14),
                    young_from - TimeDelta::days(7)
                ),
                r(
                    young_from - TimeDelta::days(21),
                    young_from - TimeDelta::days(14)
                ),
                r(
                    young_from - TimeDelta::days(28),
                    young_from - TimeDelta::days(21)
                ),
                r(
                    Utc.with_ymd_and_hms(2026, 10, 31, 13, 0, 0).unwrap(),
                    young_from - TimeDelta::days(28)
                ),
            ]
        );
        assert_eq!(requests_left(since, DAYS_30, &[], now), 6);
        // Just before the young part is all due, nothing of it is asked; then one piece.
        let done: Vec<TimeRange> = got.clone();
        let later = at(30, 19, 29);
        assert_eq!(due(since, DAYS_30, &done, later), vec![]);
        assert_eq!(requests_left(since, DAYS_30, &done, later), 1);
        let ready = at(30, 19, 30);
        assert_eq!(
            due(since, DAYS_30, &done, ready),
            vec![r(young_from, since)]
        );
        let all: Vec<TimeRange> = done.into_iter().chain([r(young_from, since)]).collect();
        assert_eq!(due(since, DAYS_30, &all, ready), vec![]);
        assert_eq!(requests_left(since, DAYS_30, &all, ready), 0);
        assert_eq!(
            left(since, DAYS_30, &all, ready + TimeDelta::days(3)),
            vec![]
        );
    }

    #[test]
    fn a_capped_load_goes_on_from_where_it_stopped_and_the_edge_only_shortens_the_oldest_piece() {
        let since = at(30, 11, 0);
        let now = at(30, 12, 0);
        let first = due(since, DAYS_30, &[], now);
        // Three asked in the first run, the rest five minutes later.
        let done = &first[..3];
        let next = due(since, DAYS_30, done, now + TimeDelta::minutes(5));
        assert_eq!(next[0], first[3]);
        assert_eq!(
            next[1],
            r(first[4].start + TimeDelta::minutes(5), first[4].end)
        );
        assert_eq!(next.len(), 2);
    }

    #[test]
    fn a_rooms_history_is_asked_call_by_call_once_each_call_is_old_enough() {
        let spans = [
            r(at(29, 1, 0), at(29, 1, 40)),
            r(at(29, 3, 10), at(29, 3, 15)),
            r(at(30, 2, 0), at(30, 3, 0)),
        ];
        // At 11:00 on Nov 30 the last call ended 8 h ago: not yet.
        let now = at(30, 11, 0);
        assert_eq!(
            due_in_calls(&spans, &[], now),
            vec![spans[1], spans[0]],
            "newest first, nothing between the calls"
        );
        let done = [spans[1]];
        assert_eq!(
            due_in_calls(&spans, &done, at(30, 11, 30)),
            vec![spans[2], spans[0]]
        );
        assert_eq!(left_in_calls(&spans, &spans, now), vec![]);
        // Past the lookback, nothing is left.
        assert_eq!(
            left_in_calls(&spans, &[], at(30, 1, 0) + TimeDelta::days(31)),
            vec![]
        );
    }

    #[test]
    fn pieces_begin_and_end_on_the_five_minute_grid_but_the_last_ends_at_since() {
        // A first horizon on the 30 s grid, a run 10 s past a minute.
        let since = at(30, 11, 0) + TimeDelta::seconds(30);
        let now = at(30, 12, 0) + TimeDelta::seconds(10);
        let got = due(since, DAYS_30, &[], now);
        assert_eq!(got[0].end, at(30, 2, 30));
        assert_eq!(
            got[4].start,
            Utc.with_ymd_and_hms(2026, 10, 31, 13, 5, 0).unwrap()
        );
        let later = now + TimeDelta::hours(8);
        let young = due(since, DAYS_30, &got, later);
        assert_eq!(young, vec![r(at(30, 2, 30), since)]);
    }

    #[test]
    fn short_history_is_one_piece_once_due_and_nothing_older_than_the_lookback_is_owed() {
        let since = at(30, 11, 0);
        // Twelve hours: 3.5 h old enough now, the young 8.5 h later; two requests.
        let h = TimeDelta::hours(12);
        assert_eq!(
            due(since, h, &[], at(30, 12, 0)),
            vec![r(at(29, 23, 0), at(30, 2, 30))]
        );
        // Six hours: all young, asked in one piece when due.
        let h = TimeDelta::hours(6);
        assert_eq!(due(since, h, &[], at(30, 19, 0)), vec![]);
        assert_eq!(
            due(since, h, &[], at(30, 19, 30)),
            vec![r(at(30, 5, 0), since)]
        );
        // Forty days after, the lookback has passed all of it.
        assert_eq!(span(since, DAYS_30, since + TimeDelta::days(40)), None);
    }
}
