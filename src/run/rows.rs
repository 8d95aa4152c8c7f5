//! Turns one API answer into rows, split by slot. Points the API should not have sent
//! (outside the asked window, off the 30 s grid, without a usable value or time) are
//! dropped and counted, never written.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::QualityResult;
use crate::config::Target;
use crate::plan::floor_to;
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
    /// Repeats of a point already in the same answer (same series, stream and time
    /// stamp): the first is kept.
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
    if let Some(user) = &target.user_id {
        let applied = result
            .user_id
            .as_ref()
            .is_some_and(|users| users.iter().any(|u| u == user));
        if !applied {
            dropped.user_not_applied += result
                .indicators
                .iter()
                .map(|s| s.data.len() as u64)
                .sum::<u64>();
            return out;
        }
    }
    let (start_us, end_us) = (start.timestamp_micros(), end.timestamp_micros());
    let mut seen: HashSet<(&str, Option<&str>, i64)> = HashSet::new();
    for series in &result.indicators {
        if series.name.is_empty() {
            dropped.unnamed_series += series.data.len() as u64;
            continue;
        }
        for point in &series.data {
            let Ok(ts) = DateTime::parse_from_rfc3339(&point.time_stamp) else {
                dropped.bad_timestamp += 1;
                continue;
            };
            let ts_us = ts.timestamp_micros();
            if ts_us < start_us || ts_us >= end_us {
                dropped.outside_window += 1;
                continue;
            }
            // On the grid: a whole multiple of 30 s, with no fraction (a leap second
            // `:60` or a nanosecond part would otherwise round onto the grid).
            if ts_us.rem_euclid(30_000_000) != 0 || ts.timestamp_subsec_nanos() != 0 {
                dropped.off_grid += 1;
                continue;
            }
            let Some(value) = point.value.filter(|v| v.is_finite()) else {
                dropped.bad_value += 1;
                continue;
            };
            if !seen.insert((&series.name, point.stream_id.as_deref(), ts_us)) {
                dropped.duplicate += 1;
                continue;
            }
            let ts_utc = ts.with_timezone(&Utc);
            out.entry(floor_to(ts_utc, slot_len))
                .or_default()
                .push(Row {
                    room_id: target.room_id.clone(),
                    user_id: target.user_id.clone(),
                    product_type: target.product_type,
                    indicator: series.name.clone(),
                    unit: series.unit.clone(),
                    timestamp_us: ts_us,
                    value,
                    stream_id: point.stream_id.clone(),
                });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{DataPoint, Series};
    use crate::config::ProductType;
    use chrono::TimeZone;

    fn target(user: Option<&str>) -> Target {
        Target {
            app_id: "a".into(),
            product_type: ProductType::Web,
            room_id: Some("r".into()),
            user_id: user.map(str::to_string),
            indicators: vec!["stall_rate".into()],
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
                duplicate: 0
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
