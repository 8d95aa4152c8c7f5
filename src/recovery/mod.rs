//! Recovery of recorded gaps from the offline API (docs/design.md, "Recovery from the offline
//! API"): which part of a gap is still owed, when it can be asked for, and what the
//! recovery ledger says was recovered. Pure functions of the two ledgers and the data
//! clock, so `run` and `status` agree on every gap.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Gap, TimeRange};
use volc_rtc::limits::{OFFLINE_DELAY, OFFLINE_LOOKBACK, OFFLINE_MAX_SPAN};

pub(crate) mod history;

/// Waited beyond [`OFFLINE_DELAY`] before a gap is asked for: a late bucket would make
/// a recovery that is recorded, and so never asked again, short of data.
pub(crate) const DELAY_MARGIN: TimeDelta = TimeDelta::minutes(30);

/// Kept clear of the lookback's edge: a request planned at the edge would be refused a
/// moment later, when it is sent.
pub(crate) const LOOKBACK_MARGIN: TimeDelta = TimeDelta::hours(1);

/// The file name of the recovery ledger of `pipeline`, in the gap ledger's directory
/// (`state` writes it, `sink` sweeps its staging copies).
pub(crate) fn recovered_file(pipeline: &str) -> String {
    format!("{pipeline}.recovered.jsonl")
}

/// One range of a gap filled from the offline API, as the recovery ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Recovery {
    pub(crate) pipeline: String,
    /// `Target::key()`, as in the gap.
    pub(crate) target: String,
    /// The range asked for and written: `[start, end)`, within one gap.
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    /// Seconds each recovered point covers: 300.
    pub(crate) interval_s: i32,
    /// Points written (0 when the API had none: the range is still recovered).
    pub(crate) points: u64,
    pub(crate) recovered_at: DateTime<Utc>,
    pub(crate) run_id: String,
    /// A range of history (`[recovery] history`), not of a gap: absent for a gap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) history: bool,
}

impl Recovery {
    /// Whether `o` records the same range (the ledger keeps one line a range).
    pub(crate) fn same_range(&self, o: &Recovery) -> bool {
        self.target == o.target && self.start == o.start && self.end == o.end
    }
}

/// What became of a recorded gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum GapStatus {
    /// Not recovered yet: it can still be had from the offline API.
    Lost,
    /// Recovered from the offline API at 5-minute granularity (all of it the API still
    /// kept when it was asked).
    Recovered,
    /// Older than the offline API's 30 days and never recovered: lost for good.
    Final,
}

impl GapStatus {
    /// The word `status` prints.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GapStatus::Lost => "lost",
            GapStatus::Recovered => "recovered at 5min",
            GapStatus::Final => "final",
        }
    }
}

/// The oldest instant the offline API can be asked for at `now`, with its margin.
pub(crate) fn lookback_start(now: DateTime<Utc>) -> DateTime<Utc> {
    now - OFFLINE_LOOKBACK + LOOKBACK_MARGIN
}

/// The parts of `gap` no recovery of `recoveries` covers, in time order.
pub(crate) fn unrecovered(gap: &Gap, recoveries: &[Recovery]) -> Vec<TimeRange> {
    gap.range().minus(
        recoveries
            .iter()
            .filter(|r| r.target == gap.target)
            .map(|r| TimeRange {
                start: r.start,
                end: r.end,
            }),
    )
}

/// What `gap` is at `now`, given the recoveries on record.
pub(crate) fn status(gap: &Gap, recoveries: &[Recovery], now: DateTime<Utc>) -> GapStatus {
    let left = unrecovered(gap, recoveries);
    let edge = lookback_start(now);
    let recovered_any = left.len() != 1 || left[0].start != gap.start || left[0].end != gap.end;
    if left.iter().all(|r| r.end <= edge) {
        if recovered_any {
            GapStatus::Recovered
        } else {
            GapStatus::Final
        }
    } else {
        GapStatus::Lost
    }
}

/// One `ListQuality` request recovery owes: a range of gap `gap` (an index into the
/// gaps given to [`due`]), at most [`OFFLINE_MAX_SPAN`] long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) gap: usize,
    pub(crate) range: TimeRange,
}

/// How long a loss the offline API has waits for the rest of it: a loss recorded piece
/// by piece (each failing run found part of it) is asked in one request once its last
/// piece is due, unless that takes longer than this.
pub(crate) const JOIN_WAIT: TimeDelta = TimeDelta::hours(6);

/// The touching parts of one target's gaps, joined: `[start, end)` is due; `waits`
/// when a part not due yet touches it.
struct Joined<'g> {
    target: &'g str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    /// The first gap of the range.
    gap: usize,
    waits: bool,
}

/// Every request owed at `now`, oldest first: the unrecovered parts of the gaps that
/// ended at least the offline delay (and its margin) ago, within the lookback, the parts
/// of one target that touch joined into one range, cut into [`OFFLINE_MAX_SPAN`] pieces. A range
/// that touches a part not due yet waits for it (at most [`JOIN_WAIT`]). Each request
/// names the first gap of its range.
pub(crate) fn due(gaps: &[Gap], recoveries: &[Recovery], now: DateTime<Utc>) -> Vec<Due> {
    let ready_before = now - OFFLINE_DELAY - DELAY_MARGIN;
    let edge = lookback_start(now);
    // (target, start, end, gap) of every part owed, to be joined per target.
    let mut parts: Vec<(&str, DateTime<Utc>, DateTime<Utc>, usize)> = Vec::new();
    for (i, gap) in gaps.iter().enumerate() {
        for part in unrecovered(gap, recoveries) {
            let start = part.start.max(edge);
            if start < part.end {
                parts.push((&gap.target, start, part.end, i));
            }
        }
    }
    parts.sort();
    let mut joined: Vec<Joined<'_>> = Vec::new();
    for (target, start, end, gap) in parts {
        let is_due = gaps[gap].end <= ready_before;
        match joined.last_mut() {
            Some(last) if last.target == target && start <= last.end => {
                if !last.waits && is_due {
                    last.end = last.end.max(end);
                } else {
                    last.waits = true;
                }
            }
            _ => joined.push(Joined {
                target,
                start,
                end: if is_due { end } else { start },
                gap,
                waits: !is_due,
            }),
        }
    }
    joined.retain(|j| j.start < j.end && (!j.waits || ready_before - j.end >= JOIN_WAIT));
    joined.sort_by_key(|j| (j.start, j.gap));
    let mut out = Vec::new();
    for Joined {
        mut start,
        end,
        gap,
        ..
    } in joined
    {
        while start < end {
            let piece_end = (start + OFFLINE_MAX_SPAN).min(end);
            out.push(Due {
                gap,
                range: TimeRange {
                    start,
                    end: piece_end,
                },
            });
            start = piece_end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    fn gap(target: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Gap {
        Gap {
            pipeline: "demo".into(),
            target: target.into(),
            app_id: "a".into(),
            product_type: "native".into(),
            room_id: None,
            user_id: None,
            start,
            end,
            reason: crate::domain::range::GAP_REASON.into(),
            detected_at: end,
        }
    }

    fn recovery(target: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> Recovery {
        Recovery {
            pipeline: "demo".into(),
            target: target.into(),
            start,
            end,
            interval_s: 300,
            points: 1,
            recovered_at: end,
            run_id: "r".into(),
            history: false,
        }
    }

    fn range(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeRange {
        TimeRange { start, end }
    }

    #[test]
    fn a_gap_is_due_once_the_offline_delay_and_margin_have_passed() {
        let g = [gap("t", at(20, 1), at(20, 4))];
        // 04:00 + 8 h 30 min = 12:30.
        let just_before = at(20, 12) + TimeDelta::minutes(29);
        assert_eq!(due(&g, &[], just_before), vec![]);
        assert_eq!(status(&g[0], &[], just_before), GapStatus::Lost);
        let ready = at(20, 12) + TimeDelta::minutes(30);
        assert_eq!(
            due(&g, &[], ready),
            vec![Due {
                gap: 0,
                range: range(at(20, 1), at(20, 4))
            }]
        );
    }

    #[test]
    fn recovered_ranges_are_not_due_again_and_the_rest_is() {
        let g = [
            gap("t", at(20, 1), at(20, 6)),
            gap("u", at(20, 1), at(20, 2)),
        ];
        let r = [
            recovery("t", at(20, 2), at(20, 3)),
            // Another target's recovery covers nothing of t.
            recovery("u", at(20, 1), at(20, 2)),
        ];
        let now = at(21, 0);
        assert_eq!(
            due(&g, &r, now),
            vec![
                Due {
                    gap: 0,
                    range: range(at(20, 1), at(20, 2))
                },
                Due {
                    gap: 0,
                    range: range(at(20, 3), at(20, 6))
                },
            ]
        );
        assert_eq!(status(&g[0], &r, now), GapStatus::Lost);
        assert_eq!(status(&g[1], &r, now), GapStatus::Recovered);
    }

    #[test]
    fn pieces_of_one_loss_are_asked_in_one_request() {
        // The API down from 01:00: a failing run found [01:00, 02:00) beyond its horizon,
        // the first run after the outage [02:00, 04:00); another target's touching gap
        // is its own request, and an overlapping record of t adds nothing.
        let g = [
            gap("t", at(20, 1), at(20, 2)),
            gap("u", at(20, 2), at(20, 3)),
            gap("t", at(20, 2), at(20, 4)),
            gap("t", at(20, 3), at(20, 4)),
        ];
        assert_eq!(
            due(&g, &[], at(21, 0)),
            vec![
                Due {
                    gap: 0,
                    range: range(at(20, 1), at(20, 4))
                },
                Due {
                    gap: 1,
                    range: range(at(20, 2), at(20, 3))
                },
            ]
        );
        // Recovered in that one request, every piece is recovered.
        let r = [recovery("t", at(20, 1), at(20, 4))];
        for piece in [&g[0], &g[2], &g[3]] {
            assert_eq!(status(piece, &r, at(21, 0)), GapStatus::Recovered);
        }
        assert_eq!(due(&g, &r, at(21, 0)).len(), 1);
    }

    #[test]
    fn a_loss_still_growing_waits_for_its_last_piece_at_most_six_hours() {
        // Pieces [01:00, 02:00) and [02:00, 03:00), the second not due until 11:30.
        let g = [
            gap("t", at(20, 1), at(20, 2)),
            gap("t", at(20, 2), at(20, 3)),
        ];
        let only_first = at(20, 11);
        assert_eq!(due(&g, &[], only_first), vec![]);
        let both = at(20, 11) + TimeDelta::minutes(30);
        assert_eq!(
            due(&g, &[], both),
            vec![Due {
                gap: 0,
                range: range(at(20, 1), at(20, 3))
            }]
        );
        // A piece after it that keeps it waiting: after six hours the due part is asked.
        let g = [
            gap("t", at(20, 1), at(20, 2)),
            gap("t", at(20, 2), at(21, 0)),
        ];
        assert_eq!(due(&g, &[], at(20, 16)), vec![]);
        assert_eq!(
            due(&g, &[], at(20, 16) + TimeDelta::minutes(30)),
            vec![Due {
                gap: 0,
                range: range(at(20, 1), at(20, 2))
            }]
        );
    }

    #[test]
    fn long_gaps_are_cut_into_seven_day_requests_within_the_lookback() {
        // Lost from Nov 1 to Nov 20; asked on Nov 30 12:00: the lookback starts Oct 31
        // 13:00, so all of it can be had, in three requests.
        let g = [gap("t", at(1, 0), at(20, 0))];
        let now = at(30, 12);
        assert_eq!(
            due(&g, &[], now)
                .iter()
                .map(|d| (d.range.start, d.range.end))
                .collect::<Vec<_>>(),
            vec![
                (at(1, 0), at(8, 0)),
                (at(8, 0), at(15, 0)),
                (at(15, 0), at(20, 0))
            ]
        );
        // Ten days later its first nine and a half days are past the lookback.
        let later = now + TimeDelta::days(10);
        assert_eq!(lookback_start(later), at(10, 13));
        assert_eq!(
            due(&g, &[], later)
                .iter()
                .map(|d| (d.range.start, d.range.end))
                .collect::<Vec<_>>(),
            vec![(at(10, 13), at(17, 13)), (at(17, 13), at(20, 0))]
        );
    }

    #[test]
    fn a_gap_past_the_lookback_is_final_unless_it_was_recovered() {
        let g = gap("t", at(1, 0), at(1, 3));
        let now = at(1, 0) + OFFLINE_LOOKBACK + TimeDelta::days(1);
        assert_eq!(due(std::slice::from_ref(&g), &[], now), vec![]);
        assert_eq!(status(&g, &[], now), GapStatus::Final);
        let r = [recovery("t", at(1, 0), at(1, 3))];
        assert_eq!(status(&g, &r, now), GapStatus::Recovered);
        assert_eq!(GapStatus::Recovered.as_str(), "recovered at 5min");
    }
}
