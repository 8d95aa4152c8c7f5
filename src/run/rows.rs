//! Turns one API answer into rows, split by slot. Points the API should not have sent
//! (outside the asked window, off the 30 s grid, without a usable value or time) are
//! dropped and counted, never written.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::api::AnswerPoint;
use crate::api::{QualityResult, QualityResultRef};
use crate::domain::Target;
use crate::sink::Row;

/// Points dropped from answers, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    pub outside_window: u64,
    pub off_grid: u64,
    pub bad_timestamp: u64,
    pub bad_value: u64,
    pub unnamed_series: u64,
    /// Points of a per-user request whose answer did not apply that user.
    pub user_not_applied: u64,
    /// A point repeated in one answer (same series, stream and time): kept once.
    pub duplicate: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.outside_window
            + self.off_grid
            + self.bad_timestamp
            + self.bad_value
            + self.unnamed_series
            + self.user_not_applied
            + self.duplicate
    }

    pub fn add(&mut self, o: &Dropped) {
        self.outside_window += o.outside_window;
        self.off_grid += o.off_grid;
        self.bad_timestamp += o.bad_timestamp;
        self.bad_value += o.bad_value;
        self.unnamed_series += o.unnamed_series;
        self.user_not_applied += o.user_not_applied;
        self.duplicate += o.duplicate;
    }
}

/// An answer reduced to what rows are made of, built in the fetch task from the borrowed
/// parse: timestamps parsed, names once per series, no `String` per point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The users the API applied.
    pub user_id: Option<Vec<String>>,
    pub series: Vec<AnswerSeries>,
}

/// One returned series of an [`Answer`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerSeries {
    pub name: String,
    pub unit: String,
    pub points: Vec<AnswerPoint>,
}

impl Answer {
    /// From the borrowed parse of a response: its points are moved, not copied.
    pub fn from_ref(r: QualityResultRef<'_>) -> Self {
        Answer {
            user_id: r.user_id.map(|u| u.iter().map(|s| s.to_string()).collect()),
            series: r
                .indicators
                .into_iter()
                .map(|s| AnswerSeries {
                    name: s.name.into_owned(),
                    unit: s.unit.into_owned(),
                    points: s.data,
                })
                .collect(),
        }
    }

    /// From an owned response.
    pub fn from_result(r: &QualityResult) -> Self {
        Answer {
            user_id: r.user_id.clone(),
            series: r
                .indicators
                .iter()
                .map(|s| AnswerSeries {
                    name: s.name.clone(),
                    unit: s.unit.clone(),
                    points: s
                        .data
                        .iter()
                        .map(|p| AnswerPoint::new(&p.time_stamp, p.value, p.stream_id.as_deref()))
                        .collect(),
                })
                .collect(),
        }
    }
}

/// Rows of `result` for `target`, asked over `[start, end)`, grouped by the start of the
/// slot of length `slot_len` they fall in.
pub fn split_into_slots(
    target: &Target,
    result: &QualityResult,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    slot_len: TimeDelta,
    dropped: &mut Dropped,
) -> BTreeMap<DateTime<Utc>, Vec<Row>> {
    let mut out: BTreeMap<DateTime<Utc>, Vec<Row>> = BTreeMap::new();
    let answer = Answer::from_result(result);
    for_each_point(target, &answer, start, end, slot_len, dropped, |p| {
        let series = &answer.series[p.series];
        out.entry(p.slot_start).or_default().push(Row {
            room_id: target.room_id.clone(),
            user_id: target.user_id.clone(),
            product_type: target.product_type,
            indicator: series.name.clone(),
            unit: series.unit.clone(),
            timestamp_us: p.timestamp_us,
            value: p.value,
            stream_id: p.stream_id.map(str::to_string),
        });
    });
    out
}

/// One kept point of an answer.
#[derive(Debug, Clone, Copy)]
pub struct PointOf<'a> {
    /// Index of its series in `answer.series`.
    pub series: usize,
    /// Start of the slot it falls in.
    pub slot_start: DateTime<Utc>,
    pub timestamp_us: i64,
    pub value: f64,
    pub stream_id: Option<&'a str>,
}

/// Gives every point of `answer` that belongs in the dataset to `f`, in answer order,
/// counting the others in `dropped`: the allocation-free core of [`split_into_slots`].
pub fn for_each_point<'a>(
    target: &Target,
    answer: &'a Answer,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    slot_len: TimeDelta,
    dropped: &mut Dropped,
    mut f: impl FnMut(PointOf<'a>),
) {
    if let Some(user) = &target.user_id {
        let applied = answer
            .user_id
            .as_ref()
            .is_some_and(|users| users.iter().any(|u| u == user));
        if !applied {
            dropped.user_not_applied += answer
                .series
                .iter()
                .map(|s| s.points.len() as u64)
                .sum::<u64>();
            return;
        }
    }
    let (start_us, end_us) = (start.timestamp_micros(), end.timestamp_micros());
    let slot_us = slot_len.num_microseconds().unwrap_or(1).max(1);
    // The slot start of the previous point: points come in time order, so this is
    // almost always the answer and saves building a DateTime per point.
    let mut last: Option<(i64, DateTime<Utc>)> = None;
    // Same series name, stream and time: one point, even across repeated series. The
    // API sends each series once, in time order, so a set is only needed when a name
    // repeats or a series goes back in time; else no point can repeat.
    let check_duplicates = may_repeat(answer);
    let mut seen: std::collections::HashSet<(&str, Option<&str>, i64)> =
        std::collections::HashSet::new();
    for (i, series) in answer.series.iter().enumerate() {
        if series.name.is_empty() {
            dropped.unnamed_series += series.points.len() as u64;
            continue;
        }
        for point in &series.points {
            let Some(ts_us) = point.ts_us else {
                dropped.bad_timestamp += 1;
                continue;
            };
            if ts_us < start_us || ts_us >= end_us {
                dropped.outside_window += 1;
                continue;
            }
            if ts_us.rem_euclid(30_000_000) != 0 || point.fraction {
                dropped.off_grid += 1;
                continue;
            }
            let Some(value) = point.value.filter(|v| v.is_finite()) else {
                dropped.bad_value += 1;
                continue;
            };
            if check_duplicates
                && !seen.insert((series.name.as_str(), point.stream_id.as_deref(), ts_us))
            {
                dropped.duplicate += 1;
                continue;
            }
            let floored = ts_us - ts_us.rem_euclid(slot_us);
            let slot_start = match last {
                Some((us, t)) if us == floored => t,
                _ => {
                    let Some(t) = DateTime::from_timestamp_micros(floored) else {
                        dropped.bad_timestamp += 1;
                        continue;
                    };
                    last = Some((floored, t));
                    t
                }
            };
            f(PointOf {
                series: i,
                slot_start,
                timestamp_us: ts_us,
                value,
                stream_id: point.stream_id.as_deref(),
            });
        }
    }
}

/// Whether two points of `answer` could be the same point: a series name that repeats, or
/// a series whose readable time stamps do not strictly increase.
fn may_repeat(answer: &Answer) -> bool {
    let mut names = std::collections::HashSet::new();
    answer.series.iter().any(|s| {
        !names.insert(s.name.as_str()) || {
            let mut last = i64::MIN;
            s.points.iter().filter_map(|p| p.ts_us).any(|t| {
                let back = t <= last;
                last = t;
                back
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DataPoint, Series};
    use crate::domain::ProductType;
    use chrono::TimeZone;

    fn target(user: Option<&str>) -> Target {
        Target {
            app_id: "a".into(),
            product_type: ProductType::Web,
            room_id: Some("r".into()),
            user_id: user.map(str::to_string),
            indicators: vec!["stall_rate".into()].into(),
            max_lag: None,
        }
    }

    fn point(ts: &str, v: Option<f64>) -> DataPoint {
        DataPoint {
            time_stamp: ts.into(),
            value: v,
            stream_id: None,
        }
    }

    #[test]
    fn normalises_offsets_splits_slots_and_drops_bad_points() {
        let result = QualityResult {
            room_id: Some("r".into()),
            user_id: None,
            indicators: vec![
                Series {
                    name: "audio_stall_rate".into(),
                    unit: "%".into(),
                    data: vec![
                        point("2026-11-25T19:04:30+08:00", Some(1.5)), // 11:04:30Z
                        point("2026-11-25T11:05:00Z", Some(2.5)),      // next slot
                        point("2026-11-25T19:10:00+08:00", Some(3.0)), // == end: outside
                        point("2026-11-25T10:59:30Z", Some(3.0)),      // before start
                        point("2026-11-25T11:01:10Z", Some(3.0)),      // off grid
                        point("yesterday", Some(3.0)),
                        point("2026-11-25T11:02:00Z", None),
                        point("2026-11-25T11:02:30Z", Some(f64::NAN)),
                    ],
                    overview: None,
                },
                Series {
                    name: String::new(),
                    unit: "%".into(),
                    data: vec![point("2026-11-25T11:00:00Z", Some(1.0))],
                    overview: None,
                },
            ],
        };
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 11, 25, 11, 10, 0).unwrap();
        let mut dropped = Dropped::default();
        let slots = split_into_slots(
            &target(None),
            &result,
            start,
            end,
            TimeDelta::minutes(5),
            &mut dropped,
        );
        assert_eq!(slots.len(), 2);
        let first = &slots[&start];
        assert_eq!(first.len(), 1);
        assert_eq!(
            first[0].timestamp_us,
            Utc.with_ymd_and_hms(2026, 11, 25, 11, 4, 30)
                .unwrap()
                .timestamp_micros()
        );
        assert_eq!(first[0].value, 1.5);
        assert_eq!(first[0].room_id.as_deref(), Some("r"));
        assert_eq!(first[0].user_id, None);
        assert_eq!(
            dropped,
            Dropped {
                outside_window: 2,
                off_grid: 1,
                bad_timestamp: 1,
                bad_value: 2,
                unnamed_series: 1,
                user_not_applied: 0,
                duplicate: 0,
            }
        );
    }

    #[test]
    fn per_user_answer_without_the_user_is_dropped() {
        let result = QualityResult {
            room_id: Some("r".into()),
            user_id: Some(vec![]),
            indicators: vec![Series {
                name: "x".into(),
                unit: "%".into(),
                data: vec![point("2026-11-25T11:00:00Z", Some(1.0))],
                overview: None,
            }],
        };
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let mut dropped = Dropped::default();
        let slots = split_into_slots(
            &target(Some("u1")),
            &result,
            start,
            start + TimeDelta::minutes(5),
            TimeDelta::minutes(5),
            &mut dropped,
        );
        assert!(slots.is_empty());
        assert_eq!(dropped.user_not_applied, 1);
    }
}
