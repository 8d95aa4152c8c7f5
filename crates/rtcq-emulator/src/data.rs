//! The deterministic data the emulator serves.
//!
//! Every point is a pure function of (app, product type, room, users, series name,
//! bucket start): a small stable hash (FNV-1a over length-prefixed fields, finished with
//! splitmix64) picks its value, whether the bucket is missing (about 5 %), and its
//! `StreamId`. Nothing depends on the window asked for, so two requests that overlap see
//! the same points in the overlap, and tests can compute the exact rows they expect by
//! calling [`generate`].

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};

use super::hash::{Fnv, splitmix64};
use crate::rules::{BUCKET, DATA_DELAY};
use volc_rtc::ProductType;
use volc_rtc::time::ceil_to;
use volc_rtc::{DataPoint, QualityResult, Series};

/// Per mille of buckets missing in each series.
pub(crate) const MISSING_PER_MILLE: u64 = 50;

/// Offset the real API uses in `TimeStamp` (the docs' examples are `+08:00`).
const BEIJING_SECS: i32 = 8 * 3600;

/// The series one requested indicator comes back as, in response order; empty for an
/// indicator the API does not know.
pub fn series_names(indicator: &str) -> &'static [&'static str] {
    match indicator {
        "join_room_success_rate" => &["5s_join_room_success_rate", "10s_join_room_success_rate"],
        "stall_rate" => &["audio_stall_rate", "video_stall_rate"],
        "first_frame_send_success_rate" => &[
            "audio_first_frame_send_success_rate",
            "video_first_frame_send_success_rate",
        ],
        "first_frame_recv_success_rate" => &[
            "audio_first_frame_recv_success_rate",
            "video_first_frame_recv_success_rate",
        ],
        "network_trans_delay" => &["audio_network_trans_delay", "video_network_trans_delay"],
        _ => &[],
    }
}

/// Range of a series' values in hundredths of a percent, `[lo, hi]`.
fn value_range(series: &str) -> (u64, u64) {
    if series.ends_with("success_rate") {
        if series.starts_with("10s_") {
            (9700, 10000)
        } else {
            (9200, 10000)
        }
    } else if series.ends_with("stall_rate") {
        (0, 800)
    } else {
        // network_trans_delay: share of packets over the delay threshold.
        (0, 1500)
    }
}

/// The series data for one request. See the module doc; `now` is the emulator's data
/// clock, and only buckets `b` with `start <= b < end` and `b + 30 s <= now - 60 s`
/// (the documented one-minute delay) are returned.
///
/// `users` are echoed back as applied: empty ids and repeats are dropped (the real API
/// silently drops invalid ids). The data of a multi-user request is one aggregate, keyed
/// on the set of users, not their order.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    app_id: &str,
    product_type: ProductType,
    room_id: Option<&str>,
    users: &[String],
    indicators: &[String],
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
) -> QualityResult {
    let applied = applied_users(users);
    let mut user_key: Vec<&str> = applied.iter().map(String::as_str).collect();
    user_key.sort_unstable();
    let target = TargetKey {
        app: app_id,
        product: product_type.as_str(),
        room: room_id,
        users: &user_key,
    };

    let last_open = now - DATA_DELAY - BUCKET; // newest bucket start that is settled
    let mut buckets = Vec::new();
    // A room of the call model has data only while it is in a call.
    let calls = room_id.and_then(|r| super::calls::rhythm_of(app_id, r));
    let mut b = ceil_to(start, BUCKET);
    while b < end && b <= last_open {
        if calls.as_ref().is_none_or(|c| c.in_call(b, b + BUCKET)) {
            buckets.push(b);
        }
        b += BUCKET;
    }

    let mut seen: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for ind in indicators {
        if seen.contains(&ind.as_str()) {
            continue;
        }
        seen.push(ind);
        for &name in series_names(ind) {
            out.push(series(&target, name, &buckets));
        }
    }

    QualityResult {
        room_id: room_id.map(str::to_string),
        user_id: Some(applied),
        indicators: out,
    }
}

/// The users a request applies: non-empty, first occurrence kept.
pub(crate) fn applied_users(users: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for u in users {
        if !u.is_empty() && !out.contains(u) {
            out.push(u.clone());
        }
    }
    out
}

struct TargetKey<'a> {
    app: &'a str,
    product: &'a str,
    room: Option<&'a str>,
    users: &'a [&'a str],
}

impl TargetKey<'_> {
    fn hash(&self, purpose: &str, series: &str, bucket: i64) -> u64 {
        let mut h = Fnv::new();
        h.field(purpose.as_bytes());
        h.field(self.app.as_bytes());
        h.field(self.product.as_bytes());
        match self.room {
            Some(r) => {
                h.field(b"r");
                h.field(r.as_bytes());
            }
            None => h.field(b"-"),
        }
        h.field(&(self.users.len() as u64).to_le_bytes());
        for u in self.users {
            h.field(u.as_bytes());
        }
        h.field(series.as_bytes());
        h.field(&bucket.to_le_bytes());
        splitmix64(h.0)
    }
}

fn series(target: &TargetKey<'_>, name: &str, buckets: &[DateTime<Utc>]) -> Series {
    let (lo, hi) = value_range(name);
    // Streams: video series of rooms whose (app, room) hash says so.
    let streams = name.starts_with("video_")
        && target
            .room
            .is_some_and(|room| stream_room(target.app, room));
    let mut data = Vec::new();
    for &b in buckets {
        let ts = b.timestamp();
        if target.hash("missing", name, ts) % 1000 < MISSING_PER_MILLE {
            continue;
        }
        let cents = lo + target.hash("value", name, ts) % (hi - lo + 1);
        let stream_id = streams.then(|| {
            let base = target.users.first().copied().or(target.room).unwrap_or("");
            let kind = if target.hash("stream", name, ts).is_multiple_of(4) {
                "screen"
            } else {
                "main"
            };
            format!("{base}_{kind}")
        });
        data.push(DataPoint {
            time_stamp: format_timestamp(b),
            value: Some(cents as f64 / 100.0),
            stream_id,
        });
    }
    let overview = (!data.is_empty() && target.hash("overview", name, 0).is_multiple_of(3))
        .then(|| overview(&data));
    Series {
        name: name.to_string(),
        unit: "%".to_string(),
        data,
        overview,
    }
}

/// Whether the video series of this room carry `StreamId` (about one room in three).
pub(crate) fn stream_room(app_id: &str, room_id: &str) -> bool {
    let mut h = Fnv::new();
    h.field(b"stream-room");
    h.field(app_id.as_bytes());
    h.field(room_id.as_bytes());
    splitmix64(h.0).is_multiple_of(3)
}

/// Summary of the returned points: `{"Avg", "Max", "Min"}`, two decimals.
fn overview(data: &[DataPoint]) -> serde_json::Value {
    let values: Vec<f64> = data.iter().filter_map(|p| p.value).collect();
    let n = values.len().max(1) as f64;
    let avg = values.iter().sum::<f64>() / n;
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let r2 = |x: f64| (x * 100.0).round() / 100.0;
    serde_json::json!({ "Avg": r2(avg), "Max": r2(max), "Min": r2(min) })
}

/// A bucket start as the API writes it: RFC 3339, whole seconds, `+08:00`.
pub(crate) fn format_timestamp(t: DateTime<Utc>) -> String {
    let offset = FixedOffset::east_opt(BEIJING_SECS).unwrap_or_else(|| unreachable!());
    t.with_timezone(&offset)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// The newest bucket start the API has data for at `now`.
#[cfg(test)]
pub(crate) fn newest_bucket(now: DateTime<Utc>) -> DateTime<Utc> {
    volc_rtc::time::floor_to(now - DATA_DELAY - BUCKET, BUCKET)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, h, m, s).unwrap()
    }

    fn all() -> Vec<String> {
        crate::rules::INDICATORS
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// The inputs of one [`generate`] call, defaulted so each test spells out only what it varies.
    struct Gen<'a> {
        app: &'a str,
        product: ProductType,
        room: Option<&'a str>,
        users: Vec<String>,
        indicators: Vec<String>,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        now: DateTime<Utc>,
    }

    impl Default for Gen<'_> {
        fn default() -> Self {
            Gen {
                app: "app-1",
                product: ProductType::Native,
                room: None,
                users: Vec::new(),
                indicators: all(),
                start: t(11, 0, 0),
                end: t(11, 30, 0),
                now: t(12, 0, 0),
            }
        }
    }

    impl Gen<'_> {
        fn run(&self) -> QualityResult {
            generate(
                self.app,
                self.product,
                self.room,
                &self.users,
                &self.indicators,
                self.start,
                self.end,
                self.now,
            )
        }
    }

    fn gen_room(start: DateTime<Utc>, end: DateTime<Utc>, now: DateTime<Utc>) -> QualityResult {
        Gen {
            room: Some("room-1"),
            start,
            end,
            now,
            ..Gen::default()
        }
        .run()
    }

    #[test]
    fn series_names_follow_the_real_api() {
        assert_eq!(
            series_names("join_room_success_rate"),
            ["5s_join_room_success_rate", "10s_join_room_success_rate"]
        );
        assert_eq!(
            series_names("stall_rate"),
            ["audio_stall_rate", "video_stall_rate"]
        );
        assert_eq!(
            series_names("first_frame_send_success_rate"),
            [
                "audio_first_frame_send_success_rate",
                "video_first_frame_send_success_rate"
            ]
        );
        assert_eq!(
            series_names("first_frame_recv_success_rate"),
            [
                "audio_first_frame_recv_success_rate",
                "video_first_frame_recv_success_rate"
            ]
        );
        assert_eq!(
            series_names("network_trans_delay"),
            ["audio_network_trans_delay", "video_network_trans_delay"]
        );
        assert!(series_names("stalls").is_empty());
        for ind in crate::rules::INDICATORS {
            assert_eq!(series_names(ind).len(), 2, "{ind}");
        }
    }

    #[test]
    fn timestamps_use_plus_eight() {
        assert_eq!(format_timestamp(t(11, 0, 30)), "2024-05-01T19:00:30+08:00");
        assert_eq!(
            format_timestamp(Utc.with_ymd_and_hms(2024, 5, 1, 16, 0, 0).unwrap()),
            "2024-05-02T00:00:00+08:00"
        );
    }

    #[test]
    fn same_bucket_same_point_whatever_the_window() {
        let now = t(12, 0, 0);
        let wide = gen_room(t(11, 0, 0), t(11, 30, 0), now);
        let narrow = gen_room(t(11, 10, 0), t(11, 10, 30), now);
        let shifted = gen_room(t(11, 9, 45), t(11, 20, 0), now);
        let later_now = gen_room(t(11, 0, 0), t(11, 30, 0), t(12, 40, 0));
        assert_eq!(wide, later_now);
        for (w, n) in wide.indicators.iter().zip(&narrow.indicators) {
            assert_eq!(w.name, n.name);
            let want: Vec<&DataPoint> = w
                .data
                .iter()
                .filter(|p| p.time_stamp == "2024-05-01T19:10:00+08:00")
                .collect();
            let got: Vec<&DataPoint> = n.data.iter().collect();
            assert_eq!(got, want, "{}", w.name);
        }
        for (w, s) in wide.indicators.iter().zip(&shifted.indicators) {
            // The shifted window starts at 11:09:45, so its first bucket is 11:10:00.
            let want: Vec<&DataPoint> = w
                .data
                .iter()
                .filter(|p| {
                    p.time_stamp.as_str() >= "2024-05-01T19:10:00+08:00"
                        && p.time_stamp.as_str() < "2024-05-01T19:20:00+08:00"
                })
                .collect();
            let got: Vec<&DataPoint> = s.data.iter().collect();
            assert_eq!(got, want, "{}", w.name);
        }
    }

    type Points = (String, Vec<(String, Option<f64>)>);

    #[test]
    fn exact_values_are_pinned() {
        let r = Gen {
            app: "661e0000000000000543cf",
            indicators: vec!["join_room_success_rate".to_string()],
            end: t(11, 1, 30),
            ..Gen::default()
        }
        .run();
        let got: Vec<Points> = r
            .indicators
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    s.data
                        .iter()
                        .map(|p| (p.time_stamp.clone(), p.value))
                        .collect(),
                )
            })
            .collect();
        let want = vec![
            (
                "5s_join_room_success_rate".to_string(),
                vec![
                    ("2024-05-01T19:00:00+08:00".to_string(), Some(94.78)),
                    ("2024-05-01T19:00:30+08:00".to_string(), Some(94.18)),
                    // 19:01:00 is one of the missing buckets of this series
                ],
            ),
            (
                "10s_join_room_success_rate".to_string(),
                vec![
                    ("2024-05-01T19:00:00+08:00".to_string(), Some(99.05)),
                    ("2024-05-01T19:00:30+08:00".to_string(), Some(99.71)),
                    ("2024-05-01T19:01:00+08:00".to_string(), Some(98.23)),
                ],
            ),
        ];
        assert_eq!(got, want);
        assert_eq!(r.room_id, None);
        assert_eq!(r.user_id, Some(vec![]));
    }

    #[test]
    fn values_have_two_decimals_and_stay_in_range() {
        let r = gen_room(t(11, 0, 0), t(12, 0, 0), t(13, 0, 0));
        assert_eq!(r.indicators.len(), 10);
        for s in &r.indicators {
            assert_eq!(s.unit, "%");
            let (lo, hi) = value_range(&s.name);
            for p in &s.data {
                let v = p.value.unwrap();
                let cents = (v * 100.0).round();
                assert!((v * 100.0 - cents).abs() < 1e-6, "{v}");
                assert!(cents as u64 >= lo && cents as u64 <= hi, "{} {v}", s.name);
                // serde_json writes the shortest form, which has at most two decimals
                let text = serde_json::to_string(&v).unwrap();
                assert!(
                    text.split('.').nth(1).is_none_or(|d| d.len() <= 2),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn missing_rate_is_about_five_percent() {
        let mut total = 0usize;
        let mut present = 0usize;
        for day in 1..=3 {
            let start = Utc.with_ymd_and_hms(2024, 6, day, 0, 0, 0).unwrap();
            for hour in 0..8 {
                let s = start + TimeDelta::hours(hour);
                let r = gen_room(s, s + TimeDelta::hours(1), s + TimeDelta::hours(2));
                for series in &r.indicators {
                    total += 120;
                    present += series.data.len();
                }
            }
        }
        let missing = (total - present) as f64 / total as f64;
        assert_eq!(total, 3 * 8 * 10 * 120);
        assert!((0.04..0.06).contains(&missing), "missing rate {missing}");
    }

    #[test]
    fn availability_stops_a_minute_and_a_bucket_before_now() {
        // now = 12:00:10: newest settled bucket is [11:58:30, 11:59:00), since
        // 11:59:00 <= 11:59:10 but [11:59:00, 11:59:30) ends after now - 60 s.
        let now = t(12, 0, 10);
        assert_eq!(newest_bucket(now), t(11, 58, 30));
        let stalls = |start, end, now| {
            Gen {
                product: ProductType::Web,
                indicators: vec!["stall_rate".to_string()],
                start,
                end,
                now,
                ..Gen::default()
            }
            .run()
        };
        let r = stalls(t(11, 30, 0), t(12, 30, 0), now);
        let newest = format_timestamp(t(11, 58, 30));
        for s in &r.indicators {
            assert!(s.data.iter().all(|p| p.time_stamp <= newest), "{}", s.name);
        }
        // Exactly on the edge: [11:58:30, 11:59:00) becomes available at now = 12:00:00.
        let edge = stalls(t(11, 58, 30), t(11, 59, 0), t(11, 59, 59));
        assert!(edge.indicators.iter().all(|s| s.data.is_empty()));
        let edge = stalls(t(11, 58, 30), t(11, 59, 0), t(12, 0, 0));
        // Present unless this bucket happens to be one of the missing ones.
        let n: usize = edge.indicators.iter().map(|s| s.data.len()).sum();
        assert!(n >= 1, "{edge:?}");
    }

    #[test]
    fn window_bounds_are_half_open() {
        let r = gen_room(t(11, 0, 0), t(11, 5, 0), t(12, 0, 0));
        for s in &r.indicators {
            assert!(s.data.len() <= 10);
            assert!(
                s.data
                    .iter()
                    .all(|p| p.time_stamp.as_str() >= "2024-05-01T19:00:00+08:00"
                        && p.time_stamp.as_str() < "2024-05-01T19:05:00+08:00")
            );
        }
        assert!(
            gen_room(t(11, 0, 0), t(11, 0, 0), t(12, 0, 0))
                .indicators
                .iter()
                .all(|s| s.data.is_empty())
        );
    }

    #[test]
    fn targets_differ_and_users_are_a_set() {
        let g = |product, room, users: &[&str]| {
            Gen {
                product,
                room,
                users: users.iter().map(|s| s.to_string()).collect(),
                indicators: vec!["stall_rate".to_string()],
                ..Gen::default()
            }
            .run()
        };
        let app = g(ProductType::Native, None, &[]);
        let web = g(ProductType::Web, None, &[]);
        let room = g(ProductType::Native, Some("r"), &[]);
        let u1 = g(ProductType::Native, Some("r"), &["u1"]);
        let u12 = g(ProductType::Native, Some("r"), &["u1", "u2"]);
        let u21 = g(ProductType::Native, Some("r"), &["u2", "u1", "", "u2"]);
        assert_ne!(app.indicators, web.indicators);
        assert_ne!(app.indicators, room.indicators);
        assert_ne!(room.indicators, u1.indicators);
        assert_ne!(u1.indicators, u12.indicators);
        assert_eq!(u12.indicators, u21.indicators);
        assert_eq!(u21.user_id, Some(vec!["u2".to_string(), "u1".to_string()]));
        assert_eq!(u1.room_id.as_deref(), Some("r"));
    }

    #[test]
    fn streams_and_overviews_appear_on_some_series() {
        let rooms: Vec<String> = (0..30).map(|i| format!("room-{i}")).collect();
        let mut with_streams = 0;
        let mut with_overview = 0;
        for room in &rooms {
            let r = Gen {
                room: Some(room),
                ..Gen::default()
            }
            .run();
            for s in &r.indicators {
                let has = s.data.iter().any(|p| p.stream_id.is_some());
                if has {
                    assert!(s.name.starts_with("video_"), "{}", s.name);
                    assert!(s.data.iter().all(|p| p.stream_id.is_some()));
                }
                with_streams += usize::from(has);
                with_overview += usize::from(s.overview.is_some());
            }
            assert_eq!(
                stream_room("app-1", room),
                r.indicators
                    .iter()
                    .any(|s| s.data.first().is_some_and(|p| p.stream_id.is_some()))
            );
        }
        assert!(with_streams > 0 && with_overview > 0);
        assert!(with_streams < 30 * 5 && with_overview < 30 * 10);
        // App-level series never carry streams.
        let app = Gen::default().run();
        assert!(
            app.indicators
                .iter()
                .all(|s| s.data.iter().all(|p| p.stream_id.is_none()))
        );
    }

    #[test]
    fn repeated_indicators_come_back_once() {
        let r = Gen {
            app: "a",
            indicators: vec!["stall_rate".to_string(), "stall_rate".to_string()],
            end: t(11, 1, 0),
            ..Gen::default()
        }
        .run();
        assert_eq!(r.indicators.len(), 2);
    }
}
