//! Turns one API answer into the points a run keeps, each with its slot. Points the API
//! should not have sent (outside the asked window, off the 30 s grid, without a usable
//! value or time) are dropped and counted, never written.

use chrono::{DateTime, TimeDelta, Utc};

pub(crate) use crate::api::AnswerPoint;
use crate::api::QualityResultRef;
use crate::domain::Target;
use crate::obs::summary::Dropped;

/// The granularity of an answer: what grid its points must lie on, the `interval_s`
/// of their rows, and whether the answer echoes the users it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Grain {
    /// `ListRealTimeQuality`: 30 s points, users echoed.
    RealTime,
    /// `ListQuality` at `"5min"`: 5-minute means, no echo.
    FiveMinutes,
}

impl Grain {
    /// `interval_s` of the rows.
    pub(crate) fn interval_s(self) -> i32 {
        match self {
            Grain::RealTime => crate::sink::REAL_TIME_INTERVAL,
            Grain::FiveMinutes => crate::sink::RECOVERED_INTERVAL,
        }
    }

    /// Whether the answer names the users it applied: the offline API names none, its
    /// answer is for the users asked.
    fn echoes_users(self) -> bool {
        self == Grain::RealTime
    }

    fn step_us(self) -> i64 {
        i64::from(self.interval_s()) * 1_000_000
    }
}

/// An answer reduced to what rows are made of, built in the fetch task from the borrowed
/// parse: timestamps parsed, names once per series, no `String` per point.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// The users the API applied.
    pub(crate) user_id: Option<Vec<String>>,
    /// The returned series, in answer order.
    pub series: Vec<AnswerSeries>,
}

/// One returned series of an [`Answer`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerSeries {
    /// The series `Name`: the `indicator` column of its rows.
    pub name: String,
    pub(crate) unit: String,
    /// Its points, as returned (not yet filtered).
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
}

/// One kept point of an answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PointOf<'a> {
    /// Index of its series in `answer.series`.
    pub(crate) series: usize,
    /// Start of the slot it falls in.
    pub(crate) slot_start: DateTime<Utc>,
    /// Start of the 30-second bucket, µs since the Unix epoch, UTC.
    pub(crate) timestamp_us: i64,
    /// The metric's value for the bucket (always finite).
    pub(crate) value: f64,
    /// The stream the value is about, when the API names one.
    pub(crate) stream_id: Option<&'a str>,
}

/// Gives every point of `answer` (of granularity `grain`) that belongs in the dataset to
/// `f`, in answer order, counting the others in `dropped`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn for_each_point<'a>(
    target: &Target,
    answer: &'a Answer,
    grain: Grain,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    slot_len: TimeDelta,
    dropped: &mut Dropped,
    mut f: impl FnMut(PointOf<'a>),
) {
    if grain.echoes_users() && !user_applied(target, answer, dropped) {
        return;
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
            let Some((ts_us, value)) = readable(point, start_us..end_us, grain, dropped) else {
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

/// Whether the API applied the target's user filter; when it did not, every point of
/// the answer is someone else's and is dropped.
fn user_applied(target: &Target, answer: &Answer, dropped: &mut Dropped) -> bool {
    let Some(user) = &target.user_id else {
        return true;
    };
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
    }
    applied
}

/// A point's time (µs) and value when it belongs in the dataset: a readable time
/// inside the window asked and on the grain's grid, and a finite value. Else it is
/// counted in `dropped` under its reason.
fn readable(
    point: &AnswerPoint,
    window_us: std::ops::Range<i64>,
    grain: Grain,
    dropped: &mut Dropped,
) -> Option<(i64, f64)> {
    let Some(ts_us) = point.ts_us else {
        dropped.bad_timestamp += 1;
        return None;
    };
    if !window_us.contains(&ts_us) {
        dropped.outside_window += 1;
        return None;
    }
    if ts_us.rem_euclid(grain.step_us()) != 0 || point.fraction {
        dropped.off_grid += 1;
        return None;
    }
    let Some(value) = point.value.filter(|v| v.is_finite()) else {
        dropped.bad_value += 1;
        return None;
    };
    Some((ts_us, value))
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
    use crate::api::client::decode_response_with;
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

    /// The answer a run builds from a 200 response with this `Result`.
    fn answer(result: serde_json::Value) -> Answer {
        let body = serde_json::json!({"ResponseMetadata": {}, "Result": result});
        decode_response_with(200, &serde_json::to_vec(&body).unwrap(), Answer::from_ref).unwrap()
    }

    /// The kept points of `answer` over `[start, end)` in 5-minute slots, in the order
    /// given: (slot start, timestamp µs, value, stream, series index).
    #[allow(clippy::type_complexity)]
    fn points(
        target: &Target,
        answer: &Answer,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        dropped: &mut Dropped,
    ) -> Vec<(DateTime<Utc>, i64, f64, Option<String>, usize)> {
        points_of(target, answer, Grain::RealTime, start, end, dropped)
    }

    /// [`points`] of an answer of granularity `grain`.
    #[allow(clippy::type_complexity)]
    fn points_of(
        target: &Target,
        answer: &Answer,
        grain: Grain,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        dropped: &mut Dropped,
    ) -> Vec<(DateTime<Utc>, i64, f64, Option<String>, usize)> {
        let mut out = Vec::new();
        for_each_point(
            target,
            answer,
            grain,
            start,
            end,
            TimeDelta::minutes(5),
            dropped,
            |p| {
                out.push((
                    p.slot_start,
                    p.timestamp_us,
                    p.value,
                    p.stream_id.map(str::to_string),
                    p.series,
                ))
            },
        );
        out
    }

    #[test]
    fn normalises_offsets_splits_slots_and_drops_bad_points() {
        let answer = answer(serde_json::json!({
            "Indicators": [
                {"Name": "audio_stall_rate", "Unit": "%", "Data": [
                    {"TimeStamp": "2026-11-25T19:04:30+08:00", "Value": 1.5}, // 11:04:30Z
                    {"TimeStamp": "2026-11-25T11:05:00Z", "Value": 2.5},      // next slot
                    {"TimeStamp": "2026-11-25T19:10:00+08:00", "Value": 3.0}, // == end: outside
                    {"TimeStamp": "2026-11-25T10:59:30Z", "Value": 3.0},      // before start
                    {"TimeStamp": "2026-11-25T11:01:10Z", "Value": 3.0},      // off grid
                    {"TimeStamp": "yesterday", "Value": 3.0},
                    {"TimeStamp": "2026-11-25T11:02:00Z", "Value": null},
                    {"TimeStamp": "2026-11-25T11:02:30Z", "Value": "NaN"}
                ]},
                {"Name": "", "Unit": "%", "Data": [
                    {"TimeStamp": "2026-11-25T11:00:00Z", "Value": 1.0}
                ]}
            ]
        }));
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let end = Utc.with_ymd_and_hms(2026, 11, 25, 11, 10, 0).unwrap();
        let mut dropped = Dropped::default();
        let got = points(&target(None), &answer, start, end, &mut dropped);
        let us = |m: u32, s: u32| {
            Utc.with_ymd_and_hms(2026, 11, 25, 11, m, s)
                .unwrap()
                .timestamp_micros()
        };
        assert_eq!(
            got,
            vec![
                (start, us(4, 30), 1.5, None, 0),
                (start + TimeDelta::minutes(5), us(5, 0), 2.5, None, 0),
            ]
        );
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
    fn non_finite_values_are_dropped() {
        // JSON cannot carry them; an answer built in memory can.
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let answer = Answer {
            user_id: None,
            series: vec![AnswerSeries {
                name: "x".into(),
                unit: "%".into(),
                points: [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.5]
                    .into_iter()
                    .zip(0..)
                    .map(|(v, i)| {
                        let t = start + TimeDelta::seconds(30 * i);
                        AnswerPoint::new(&t.to_rfc3339(), Some(v), None)
                    })
                    .collect(),
            }],
        };
        let mut dropped = Dropped::default();
        let got = points(
            &target(None),
            &answer,
            start,
            start + TimeDelta::minutes(5),
            &mut dropped,
        );
        assert_eq!(
            got,
            vec![(start, start.timestamp_micros() + 90_000_000, 0.5, None, 0)]
        );
        assert_eq!(
            dropped,
            Dropped {
                bad_value: 3,
                ..Dropped::default()
            }
        );
    }

    #[test]
    fn per_user_answer_without_the_user_is_dropped() {
        let answer = answer(serde_json::json!({
            "UserId": [],
            "Indicators": [{"Name": "x", "Unit": "%", "Data": [
                {"TimeStamp": "2026-11-25T11:00:00Z", "Value": 1.0}
            ]}]
        }));
        let start = Utc.with_ymd_and_hms(2026, 11, 25, 11, 0, 0).unwrap();
        let mut dropped = Dropped::default();
        let got = points(
            &target(Some("u1")),
            &answer,
            start,
            start + TimeDelta::minutes(5),
            &mut dropped,
        );
        assert_eq!(got, vec![]);
        assert_eq!(
            dropped,
            Dropped {
                user_not_applied: 1,
                ..Dropped::default()
            }
        );
    }
}
