//! `ListQuality` as the emulator serves it: the offline data, which must agree with the
//! real-time data the emulator served for the same time, or recovery could not be
//! tested against it. So each bucket's value is the mean of the emulator's own 30 s
//! values ([`data::generate`], same app, product, room, users and series) over the
//! bucket, rounded to two decimals; a bucket without any 30 s value is absent.
//!
//! As the reference describes: buckets of 5 minutes or one day aligned to the epoch
//! (a day starts at UTC midnight), a bucket returned when its start lies in
//! `[StartTime, EndTime)` and only once it is 8 hours old (`start + length <= now - 8h`),
//! a 30-day lookback, at most 7 days per request, and no `RoomId`/`UserId` echo.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::data::{self, format_timestamp};
use super::validate::{Granularity, ValidOffline};
use volc_rtc::time::{ceil_to, floor_to};
use volc_rtc::{DataPoint, QualityResult, Series};

/// How old a bucket's end must be before the offline data has it.
pub(crate) const DELAY: TimeDelta = TimeDelta::hours(8);

/// `ListQuality`'s own limit, requests per second per access key.
pub(crate) const REQUESTS_PER_SECOND: f64 = 2.0;

/// The `Result` of a `ListQuality` answer: the real-time `Result`'s shape without the
/// room and user echo (left `None`, so not written), plus the granularity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct OfflineResult {
    #[serde(rename = "AggregateGranularity")]
    pub(crate) aggregate_granularity: &'static str,
    #[serde(flatten)]
    pub(crate) quality: QualityResult,
}

/// Answers the validated request `v` at data-clock time `now`.
pub(crate) fn answer(v: &ValidOffline, now: DateTime<Utc>) -> OfflineResult {
    let r = &v.request;
    let len = v.granularity.length();
    // The asked buckets that are old enough, as one span of 30 s buckets: both ends are
    // on the grid, so `b < ceil(EndTime)` is `b < EndTime` and `b + len <= floor(now -
    // DELAY)` is `b + len <= now - DELAY`.
    let first = ceil_to(r.start, len);
    let end = ceil_to(r.end, len).min(floor_to(now - DELAY, len));
    let fine = data::generate(
        &r.app_id,
        r.product_type,
        r.room_id.as_deref(),
        &r.users,
        &r.indicators,
        first,
        end,
        now,
    );
    let indicators = fine
        .indicators
        .into_iter()
        .map(|s| Series {
            data: means(&s.data, len),
            name: s.name,
            unit: s.unit,
            overview: None,
        })
        .collect();
    OfflineResult {
        aggregate_granularity: v.granularity.name(),
        quality: QualityResult {
            room_id: None,
            user_id: None,
            indicators,
        },
    }
}

/// One point per bucket of `len` holding any of `points` (30 s points in time order):
/// their mean, two decimals, no `StreamId`.
fn means(points: &[DataPoint], len: TimeDelta) -> Vec<DataPoint> {
    // (bucket start, sum, count), in time order since `points` are.
    let mut buckets: Vec<(DateTime<Utc>, f64, u32)> = Vec::new();
    for p in points {
        let (Some(value), Ok(at)) = (p.value, DateTime::parse_from_rfc3339(&p.time_stamp)) else {
            continue;
        };
        let bucket = floor_to(at.with_timezone(&Utc), len);
        match buckets.last_mut() {
            Some((b, sum, n)) if *b == bucket => {
                *sum += value;
                *n += 1;
            }
            _ => buckets.push((bucket, value, 1)),
        }
    }
    buckets
        .into_iter()
        .map(|(b, sum, n)| DataPoint {
            time_stamp: format_timestamp(b),
            value: Some((sum / f64::from(n) * 100.0).round() / 100.0),
            stream_id: None,
        })
        .collect()
}

/// Adds [`super::faults::OfflineFault::Stray`]'s two bad points to every series of
/// `result`, answered for `v`, keeping each series in time order.
pub(crate) fn add_strays(result: &mut OfflineResult, v: &ValidOffline) {
    // Before the bucket holding `StartTime`, so before `StartTime` whatever it is.
    let five = Granularity::FiveMinutes.length();
    let outside = floor_to(v.request.start, five) - five;
    let off_grid = ceil_to(v.request.start, v.granularity.length()) + TimeDelta::seconds(150);
    for series in &mut result.quality.indicators {
        for at in [outside, off_grid] {
            series.data.push(DataPoint {
                time_stamp: format_timestamp(at),
                value: Some(1.0),
                stream_id: None,
            });
        }
        // One format and offset throughout, so text order is time order.
        series.data.sort_by(|a, b| a.time_stamp.cmp(&b.time_stamp));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;
    use crate::validate::validate_offline;
    use volc_rtc::ProductType;

    fn validate(
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Result<crate::validate::ValidRequest, ApiError> {
        crate::validate::validate(body, now, false)
    }
    use serde_json::{Map, Value, json};

    type Points = Vec<(String, Vec<(String, f64)>)>;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn now() -> DateTime<Utc> {
        at("2024-05-01T12:00:00Z")
    }

    /// Ten 5-minute buckets, 10:00 to 10:50 in Beijing, all older than 8 hours at [`now`].
    fn good() -> Value {
        json!({
            "AppId": "app-1",
            "StartTime": "2024-05-01T02:00:00Z",
            "EndTime": "2024-05-01T10:50:00+08:00",
            "Indicator": ["stall_rate"],
            "RoomId": "room-1",
            "ProductType": "web",
            "AggregateGranularity": "5min"
        })
    }

    fn with(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let mut v = good();
        if let Value::Object(o) = &mut v {
            edit(o);
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn window(start: &str, end: &str) -> Vec<u8> {
        with(|o| {
            o.insert("StartTime".into(), json!(start));
            o.insert("EndTime".into(), json!(end));
        })
    }

    fn ask(body: &[u8], now: DateTime<Utc>) -> OfflineResult {
        answer(&validate_offline(body, now).unwrap(), now)
    }

    fn points(r: &OfflineResult) -> Points {
        r.quality
            .indicators
            .iter()
            .map(|s| {
                let data = s
                    .data
                    .iter()
                    .map(|p| (p.time_stamp.clone(), p.value.unwrap()));
                (s.name.clone(), data.collect())
            })
            .collect()
    }

    fn stamps(r: &OfflineResult) -> Vec<String> {
        r.quality.indicators[0]
            .data
            .iter()
            .map(|p| p.time_stamp.clone())
            .collect()
    }

    /// The expected answer worked out independently: one `generate` per bucket of `len`
    /// starting at `from`, its values averaged here, a bucket without values left out.
    fn expected(room: Option<&str>, from: DateTime<Utc>, buckets: i32, len: TimeDelta) -> Points {
        let names = data::series_names("stall_rate");
        let mut out: Points = names.iter().map(|n| (n.to_string(), Vec::new())).collect();
        for i in 0..buckets {
            let b = from + len * i;
            let r = data::generate(
                "app-1",
                ProductType::Web,
                room,
                &[],
                &["stall_rate".to_string()],
                b,
                b + len,
                now() + TimeDelta::days(30),
            );
            for (series, (name, points)) in r.indicators.iter().zip(&mut out) {
                assert_eq!(&series.name, name);
                let values: Vec<f64> = series.data.iter().map(|p| p.value.unwrap()).collect();
                if values.is_empty() {
                    continue;
                }
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                points.push((format_timestamp(b), (mean * 100.0).round() / 100.0));
            }
        }
        out
    }

    #[test]
    fn five_minute_points_are_the_means_of_the_30_s_values() {
        let r = ask(&with(|_| {}), now());
        assert_eq!(r.aggregate_granularity, "5min");
        let five = TimeDelta::minutes(5);
        let want = expected(Some("room-1"), at("2024-05-01T02:00:00Z"), 10, five);
        assert_eq!(points(&r), want);
        let names: Vec<&str> = r
            .quality
            .indicators
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["audio_stall_rate", "video_stall_rate"]);
        let first = &r.quality.indicators[0].data;
        assert_eq!(first.len(), 10);
        assert_eq!(first[0].time_stamp, "2024-05-01T10:00:00+08:00");
        assert_eq!(first[9].time_stamp, "2024-05-01T10:45:00+08:00");
        // Pinned, so a change to the data or the averaging shows.
        assert_eq!((first[0].value, first[1].value), (Some(3.15), Some(4.17)));
        assert!(r.quality.indicators.iter().all(|s| s.unit == "%"));
    }

    #[test]
    fn a_bucket_without_any_30_s_value_is_absent() {
        // A room of the call model has data only during its calls.
        let body = with(|o| {
            o.insert("RoomId".into(), json!("live-2"));
            o.insert("StartTime".into(), json!("2024-05-01T00:00:00Z"));
            o.insert("EndTime".into(), json!("2024-05-01T03:00:00Z"));
        });
        let r = ask(&body, now());
        let want = expected(
            Some("live-2"),
            at("2024-05-01T00:00:00Z"),
            36,
            TimeDelta::minutes(5),
        );
        assert_eq!(points(&r), want);
        let n = r.quality.indicators[0].data.len();
        assert!(n > 0 && n < 36, "{n} of 36 buckets have data");
    }

    #[test]
    fn buckets_show_once_eight_hours_old() {
        let body = window("2024-05-01T03:30:00Z", "2024-05-01T05:00:00Z");
        let newest = |now: &str| stamps(&ask(&body, at(now))).last().cloned().unwrap();
        // [03:55, 04:00) ends 8 hours before 12:00; [04:00, 04:05) only at 12:05.
        assert_eq!(newest("2024-05-01T12:00:00Z"), "2024-05-01T11:55:00+08:00");
        assert_eq!(newest("2024-05-01T12:04:59Z"), "2024-05-01T11:55:00+08:00");
        assert_eq!(newest("2024-05-01T12:05:00Z"), "2024-05-01T12:00:00+08:00");
        // A window entirely newer than that has its series, without points.
        let r = ask(
            &window("2024-05-01T04:00:00Z", "2024-05-01T05:00:00Z"),
            now(),
        );
        assert_eq!(r.quality.indicators.len(), 2);
        assert!(r.quality.indicators.iter().all(|s| s.data.is_empty()));
    }

    #[test]
    fn a_bucket_is_returned_when_its_start_is_in_the_window() {
        let first = |start: &str, end: &str| {
            let s = stamps(&ask(&window(start, end), now()));
            (s[0].clone(), s[s.len() - 1].clone())
        };
        // 02:02:30 is inside [02:00, 02:05), which starts before StartTime.
        assert_eq!(
            first("2024-05-01T02:02:30Z", "2024-05-01T02:50:00Z"),
            (
                "2024-05-01T10:05:00+08:00".to_string(),
                "2024-05-01T10:45:00+08:00".to_string()
            )
        );
        assert_eq!(
            first("2024-05-01T02:05:00Z", "2024-05-01T02:45:00Z").1,
            "2024-05-01T10:40:00+08:00"
        );
        assert_eq!(
            first("2024-05-01T02:05:00Z", "2024-05-01T02:45:01Z").1,
            "2024-05-01T10:45:00+08:00"
        );
    }

    #[test]
    fn one_day_buckets_start_at_utc_midnight() {
        let body = with(|o| {
            o.remove("RoomId");
            o.insert("StartTime".into(), json!("2024-04-30T23:00:00Z"));
            o.insert("EndTime".into(), json!("2024-05-04T00:00:00Z"));
            o.insert("AggregateGranularity".into(), json!("1d"));
        });
        let r = ask(&body, at("2024-05-10T12:00:00Z"));
        assert_eq!(r.aggregate_granularity, "1d");
        let day = TimeDelta::days(1);
        assert_eq!(
            points(&r),
            expected(None, at("2024-05-01T00:00:00Z"), 3, day)
        );
        assert_eq!(
            stamps(&r),
            [
                "2024-05-01T08:00:00+08:00",
                "2024-05-02T08:00:00+08:00",
                "2024-05-03T08:00:00+08:00"
            ]
        );
        // The day of 05-03 ends at 05-04 00:00, 8 hours before 08:00.
        assert_eq!(stamps(&ask(&body, at("2024-05-04T07:59:59Z"))).len(), 2);
        assert_eq!(stamps(&ask(&body, at("2024-05-04T08:00:00Z"))).len(), 3);
    }

    #[test]
    fn the_answer_has_no_echo_no_stream_and_no_overview() {
        // A room whose video series carry `StreamId` in the real-time data.
        let room = (0..30)
            .map(|i| format!("room-{i}"))
            .find(|r| data::stream_room("app-1", r))
            .unwrap();
        let body = with(|o| {
            o.insert("RoomId".into(), json!(room));
            o.insert("UserId".into(), json!(["u1"]));
            o.insert("EndTime".into(), json!("2024-05-01T02:05:00Z"));
        });
        let r = ask(&body, now());
        let text = serde_json::to_string(&r).unwrap();
        assert!(
            text.starts_with(r#"{"AggregateGranularity":"5min","Indicators":[{"Name":"audio_stall_rate","Unit":"%","Data":[{"TimeStamp":"2024-05-01T10:00:00+08:00","Value":"#),
            "{text}"
        );
        for absent in ["RoomId", "UserId", "StreamId", "overview"] {
            assert!(!text.contains(absent), "{absent} in {text}");
        }
    }

    fn error(body: &[u8], now: DateTime<Utc>) -> (String, String) {
        let e = validate_offline(body, now).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code_n), (400, None));
        (e.code, e.message)
    }

    fn pair(code: &str, message: &str) -> (String, String) {
        (code.to_string(), message.to_string())
    }

    #[test]
    fn the_granularity_is_required_and_one_of_two() {
        let set = |v: Value| {
            with(|o| {
                o.insert("AggregateGranularity".into(), v);
            })
        };
        let unsupported = r#"AggregateGranularity "1h" is not supported; use 5min or 1d"#;
        assert_eq!(
            error(&set(json!("1h")), now()),
            pair("InvalidParameter", unsupported)
        );
        let required = pair("InvalidParameter", "AggregateGranularity is required");
        assert_eq!(error(&set(json!("")), now()), required);
        assert_eq!(error(&set(Value::Null), now()), required);
        assert_eq!(
            error(&set(json!(5)), now()),
            pair(
                "InvalidParameter.Unmarshal",
                "AggregateGranularity must be a string, not a number"
            )
        );
        // The real-time body ignores the member, as Go ignores unknown keys.
        let rt = real_time(|o| {
            o.insert("AggregateGranularity".into(), json!(5));
        });
        assert!(validate(&rt, now()).is_ok());
    }

    /// A body with a window the real-time rules also accept at [`now`], then `edit`ed.
    fn real_time(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        with(|o| {
            o.insert("StartTime".into(), json!("2024-05-01T11:00:00Z"));
            o.insert("EndTime".into(), json!("2024-05-01T11:30:00Z"));
            edit(o);
        })
    }

    #[test]
    fn the_window_has_the_offline_limits() {
        let ok = |s: &str, e: &str| validate_offline(&window(s, e), now()).is_ok();
        assert!(ok("2024-04-24T00:00:00Z", "2024-05-01T00:00:00Z"), "7 days");
        assert!(
            ok("2024-04-01T12:00:00Z", "2024-04-01T13:00:00Z"),
            "30 days ago"
        );
        assert!(
            ok("2024-05-01T11:00:00Z", "2024-05-02T00:00:00Z"),
            "ends later"
        );
        assert_eq!(
            error(
                &window("2024-04-20T00:00:00Z", "2024-04-28T00:00:00Z"),
                now()
            ),
            pair(
                "InvalidParameter.OutofTimeRange",
                "The query spans 691200 s; at most 7 days are allowed"
            )
        );
        assert_eq!(
            error(
                &window("2024-03-31T12:00:00Z", "2024-03-31T13:00:00Z"),
                now()
            ),
            pair(
                "InvalidParameter.OutofTimeRange",
                "StartTime 2024-03-31 12:00:00 UTC is more than 30 days before now (2024-05-01 12:00:00 UTC)"
            )
        );
        assert_eq!(
            error(
                &window("2024-04-01T11:59:59Z", "2024-04-01T13:00:00Z"),
                now()
            )
            .0,
            "InvalidParameter.OutofTimeRange"
        );
        assert_eq!(
            error(
                &window("2024-05-01T02:00:00Z", "2024-05-01T02:00:00Z"),
                now()
            ),
            pair(
                "InvalidParameter.StartTimeAfterEndTime",
                "StartTime 2024-05-01 02:00:00 UTC is not before EndTime 2024-05-01 02:00:00 UTC"
            )
        );
    }

    #[test]
    fn the_shared_fields_fail_as_in_the_real_time_body() {
        let edits: [fn(&mut Map<String, Value>); 8] = [
            |o| {
                o.remove("AppId");
            },
            |o| {
                o.insert("AppId".into(), json!("x".repeat(129)));
            },
            |o| {
                o.insert("StartTime".into(), json!("yesterday"));
            },
            |o| {
                o.insert("Indicator".into(), json!(["stall_rate", "mos"]));
            },
            |o| {
                o.insert("ProductType".into(), json!("ios"));
            },
            |o| {
                o.remove("RoomId");
                o.insert("UserId".into(), json!(["u1"]));
            },
            |o| {
                let users: Vec<String> = (0..21).map(|i| format!("u{i}")).collect();
                o.insert("UserId".into(), json!(users));
            },
            |o| {
                o.insert("Indicator".into(), json!("stall_rate"));
            },
        ];
        for edit in edits {
            let body = real_time(edit);
            let offline: ApiError = validate_offline(&body, now()).unwrap_err();
            let real_time: ApiError = validate(&body, now()).unwrap_err();
            assert_eq!(offline, real_time);
        }
        // Invalid user ids are dropped silently here too.
        let body = with(|o| {
            o.insert("UserId".into(), json!(["u1", "bad\n", ""]));
        });
        assert_eq!(
            validate_offline(&body, now()).unwrap().request.users,
            ["u1"]
        );
    }

    #[test]
    fn stray_points_are_outside_the_window_and_off_the_grid() {
        let body = window("2024-05-01T02:02:30Z", "2024-05-01T02:50:00Z");
        let v = validate_offline(&body, now()).unwrap();
        let clean = answer(&v, now());
        let mut r = clean.clone();
        add_strays(&mut r, &v);
        for (dirty, clean) in r.quality.indicators.iter().zip(&clean.quality.indicators) {
            assert_eq!(dirty.data.len(), clean.data.len() + 2);
            let stray: Vec<(&str, Option<f64>)> = dirty
                .data
                .iter()
                .filter(|p| !clean.data.contains(p))
                .map(|p| (p.time_stamp.as_str(), p.value))
                .collect();
            assert_eq!(
                stray,
                [
                    ("2024-05-01T09:55:00+08:00", Some(1.0)),
                    ("2024-05-01T10:07:30+08:00", Some(1.0))
                ]
            );
            assert!(dirty.data.is_sorted_by(|a, b| a.time_stamp <= b.time_stamp));
        }
    }
}
