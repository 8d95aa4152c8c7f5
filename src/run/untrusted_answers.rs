//! API answers are not trusted: arbitrary bytes and mutated valid answers never panic
//! `decode_response`, `decode_response_with` or `for_each_point`; points outside the
//! asked window, off the 30 s grid, without a usable time or value, or repeated are
//! dropped and counted; deep nesting and oversized bodies fail cleanly with an error that
//! says what was wrong. (Whole runs against such a server are in the integration tests,
//! `tests/it/security_responses.rs`.)

use crate::api::client::{MAX_BODY_BYTES, decode_response, decode_response_with};
use crate::api::{ApiError, Client, QualityRequest, Timeouts};
use crate::domain::{ProductType, Target};
use crate::run::Dropped;
use crate::run::rows::{Answer, Grain, for_each_point};
use chrono::{DateTime, TimeDelta, Utc};
use proptest::prelude::*;
use rtcq_emulator::hostile::{Body, FakeApi};
use rtcq_emulator::{DEMO_ACCESS_KEY as AK, DEMO_SECRET_KEY as SK};
use serde_json::{Value, json};
use volc_rtc::sign::Credentials;

/// An RFC 3339 instant, in UTC.
fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn start() -> DateTime<Utc> {
    at("2026-11-25T11:00:00Z")
}

fn end() -> DateTime<Utc> {
    at("2026-11-25T11:10:00Z")
}

fn target(user: Option<&str>) -> Target {
    Target {
        app_id: "a".into(),
        product_type: ProductType::Native,
        room_id: user.map(|_| "r".to_string()),
        user_id: user.map(str::to_string),
        indicators: vec!["stall_rate".into()].into(),
        max_lag: None,
    }
}

/// The answer a run builds from a response (the borrowed parse of `body`).
fn answer_of(status: u16, body: &[u8]) -> Result<Answer, ApiError> {
    decode_response_with(status, body, Answer::from_ref)
}

/// The kept points of `answer` for `target`, as (slot start, timestamp µs, value bits,
/// stream), in answer order, and the dropped ones counted.
#[allow(clippy::type_complexity)]
fn points_of(
    target: &Target,
    answer: &Answer,
) -> (
    Vec<(DateTime<Utc>, i64, u64, Option<String>, usize)>,
    Dropped,
) {
    let mut dropped = Dropped::default();
    let mut out = Vec::new();
    for_each_point(
        target,
        answer,
        Grain::RealTime,
        start(),
        end(),
        TimeDelta::minutes(5),
        &mut dropped,
        |p| {
            out.push((
                p.slot_start,
                p.timestamp_us,
                p.value.to_bits(),
                p.stream_id.map(str::to_string),
                p.series,
            ))
        },
    );
    (out, dropped)
}

/// Splits `answer` into points and checks what every answer must satisfy: each point is
/// either kept or counted as dropped; kept points lie in the window, on the grid, in
/// their slot, with a finite value, and no key twice.
fn split_checked(answer: &Answer, user: Option<&str>) -> Result<Dropped, TestCaseError> {
    let (kept, dropped) = points_of(&target(user), answer);
    let points: u64 = answer.series.iter().map(|s| s.points.len() as u64).sum();
    prop_assert_eq!(kept.len() as u64 + dropped.total(), points);
    let mut keys = std::collections::HashSet::new();
    for (slot, ts, value, stream, series) in &kept {
        prop_assert!(*ts >= start().timestamp_micros());
        prop_assert!(*ts < end().timestamp_micros());
        prop_assert_eq!(ts % 30_000_000, 0);
        prop_assert!(*ts >= slot.timestamp_micros());
        prop_assert!(*ts < slot.timestamp_micros() + 300_000_000);
        prop_assert!(f64::from_bits(*value).is_finite());
        let name = answer.series[*series].name.clone();
        prop_assert!(keys.insert((name, stream.clone(), *ts)));
    }
    Ok(dropped)
}

/// What every refused body must satisfy: an error that says something, bounded in size
/// whatever the body holds.
fn check_error(e: &ApiError) -> Result<(), TestCaseError> {
    let msg = e.to_string();
    prop_assert!(!msg.is_empty());
    prop_assert!(msg.len() < 2000, "{} bytes", msg.len());
    Ok(())
}

// ---- generated answers ----

fn timestamp() -> impl Strategy<Value = Value> {
    prop_oneof![
        // On the grid, in or near the window, in several offsets.
        (
            0i64..40,
            prop_oneof![Just(0i32), Just(8 * 3600), Just(-(5 * 3600 + 1800))]
        )
            .prop_map(|(k, off)| {
                let t = at("2026-11-25T10:55:00Z") + TimeDelta::seconds(30 * k);
                let fixed = chrono::FixedOffset::east_opt(off).unwrap();
                json!(t.with_timezone(&fixed).to_rfc3339())
            }),
        // Anywhere, to the second.
        (-4_000_000_000i64..4_000_000_000).prop_map(|s| {
            json!(
                DateTime::from_timestamp(1_764_000_000 + s, 0)
                    .unwrap()
                    .to_rfc3339()
            )
        }),
        Just(json!("2026-11-25T11:04:59.999999999Z")),
        Just(json!("2026-11-25T11:04:60Z")),
        Just(json!("0000-01-01T00:00:00Z")),
        Just(json!("9999-12-31T23:59:59+23:59")),
        "\\PC{0,30}".prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!(["2026-11-25T11:00:00Z"])),
        Just(json!({"t": 1})),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-1000.0f64..1000.0).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!("NaN")),
        Just(json!("1.5")),
        Just(json!(f64::MAX)),
        Just(json!(true)),
        Just(Value::Null),
        Just(json!([1.0])),
        Just(json!({"v": 1.0})),
    ]
}

fn point() -> impl Strategy<Value = Value> {
    (
        timestamp(),
        number(),
        proptest::option::of(prop_oneof![Just("s1"), Just("s2")]),
        any::<bool>(),
    )
        .prop_map(|(t, v, stream, omit_value)| {
            let mut p = json!({"TimeStamp": t});
            if !omit_value {
                p["Value"] = v;
            }
            if let Some(s) = stream {
                p["StreamId"] = json!(s);
            }
            p
        })
}

fn series() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("audio_stall_rate"), Just("video_stall_rate"), Just("")],
        proptest::collection::vec(point(), 0..30),
        any::<bool>(),
    )
        .prop_map(|(name, mut data, repeat)| {
            if repeat && !data.is_empty() {
                // Duplicates: the same points again.
                let again = data.clone();
                data.extend(again);
            }
            json!({"Name": name, "Unit": "%", "Data": data, "overview": {"x": [1, {"y": null}]}})
        })
}

fn answer() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(series(), 0..4),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![Just("u1"), Just("u2")],
            0..3,
        )),
    )
        .prop_map(|(series, users)| {
            let mut result = json!({"RoomId": "r", "Indicators": series});
            if let Some(u) = users {
                result["UserId"] = json!(u);
            }
            json!({"ResponseMetadata": {"RequestId": "x"}, "Result": result})
        })
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Cut(usize),
    Insert(usize, Vec<u8>),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        any::<usize>().prop_map(Edit::Cut),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                proptest::sample::select(vec![
                    b"[".to_vec(),
                    b"{".to_vec(),
                    b"\"".to_vec(),
                    b"1e400".to_vec(),
                    b"-".to_vec(),
                    b"null,".to_vec(),
                    b"\\u0000".to_vec(),
                    b"\xff\xfe".to_vec(),
                ]),
            ]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let n = bytes.len().max(1);
        match e {
            Edit::Flip(i, b) if !bytes.is_empty() => bytes[i % n] ^= b,
            Edit::Cut(i) => bytes.truncate(i % n),
            Edit::Insert(i, b) => {
                let at = i % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        status in prop_oneof![Just(200u16), Just(400u16), Just(500u16), 0u16..1000],
        body in proptest::collection::vec(any::<u8>(), 0..2000),
    ) {
        let _ = decode_response(status, &body);
        if let Ok(a) = answer_of(status, &body) {
            split_checked(&a, None)?;
        }
    }

    #[test]
    fn generated_answers_split_into_clean_rows_and_counted_drops(
        a in answer(),
        user in proptest::option::of(prop_oneof![Just("u1"), Just("u3")]),
    ) {
        let body = serde_json::to_vec(&a).unwrap();
        decode_response(200, &body).unwrap();
        split_checked(&answer_of(200, &body).unwrap(), user)?;
    }

    #[test]
    fn mutated_answers_never_panic(
        a in answer(),
        edits in proptest::collection::vec(edit(), 1..5),
        status in prop_oneof![Just(200u16), Just(429u16), Just(503u16)],
    ) {
        let body = mutate(serde_json::to_vec(&a).unwrap(), &edits);
        if let Err(e) = decode_response(status, &body) {
            check_error(&e)?;
        }
        match answer_of(status, &body) {
            Ok(a) => { split_checked(&a, None)?; }
            Err(e) => check_error(&e)?,
        }
    }
}

#[test]
fn every_kind_of_bad_point_is_dropped_and_counted() {
    let body = json!({"ResponseMetadata": {}, "Result": {"Indicators": [
        {"Name": "audio_stall_rate", "Unit": "%", "Data": [
            {"TimeStamp": "2026-11-25T11:05:00Z", "Value": 1.5},
            {"TimeStamp": "2026-11-25T19:05:00+08:00", "Value": 9.9},
            {"TimeStamp": "2026-11-25T11:05:30Z", "Value": 2.5},
            {"TimeStamp": "2026-11-25T11:05:30Z", "Value": 2.5, "StreamId": "s1"},
            {"TimeStamp": "2026-11-25T10:00:00Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:10:00Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:06:10Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:06:59.000001Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:04:60Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:07:00.000000001Z", "Value": 3},
            {"TimeStamp": "2026-11-25T11:07:00Z", "Value": "NaN"},
            {"TimeStamp": "2026-11-25T11:07:30Z", "Value": null},
            {"TimeStamp": "2026-11-25T11:09:30Z"},
            {"TimeStamp": "2026-11-25T11:08:00Z", "Value": 1e308},
            {"TimeStamp": 12345, "Value": 1},
            {"TimeStamp": "yesterday", "Value": 1},
            {"Value": 1},
            {"TimeStamp": "2026-11-25T11:08:30Z", "Value": -0.0}
        ]},
        {"Name": "", "Data": [{"TimeStamp": "2026-11-25T11:00:00Z", "Value": 1}]}
    ]}});
    let answer = answer_of(200, &serde_json::to_vec(&body).unwrap()).unwrap();
    let (kept, dropped) = points_of(&target(None), &answer);
    assert_eq!(
        dropped,
        Dropped {
            outside_window: 2,
            off_grid: 4,
            bad_timestamp: 3,
            bad_value: 3,
            unnamed_series: 1,
            user_not_applied: 0,
            duplicate: 1,
        }
    );
    let us = |s: &str| at(s).timestamp_micros();
    let slot = at("2026-11-25T11:05:00Z");
    assert_eq!(
        kept,
        [
            (slot, us("2026-11-25T11:05:00Z"), 1.5f64.to_bits(), None, 0),
            (slot, us("2026-11-25T11:05:30Z"), 2.5f64.to_bits(), None, 0),
            (
                slot,
                us("2026-11-25T11:05:30Z"),
                2.5f64.to_bits(),
                Some("s1".into()),
                0
            ),
            (
                slot,
                us("2026-11-25T11:08:00Z"),
                1e308f64.to_bits(),
                None,
                0
            ),
            (
                slot,
                us("2026-11-25T11:08:30Z"),
                (-0.0f64).to_bits(),
                None,
                0
            ),
        ]
    );
}

#[test]
fn malformed_answers_say_what_was_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            br#"{"Result":{"Indicators":"no"}}"#.to_vec(),
            "malformed response: invalid type: string \"no\", expected a sequence at line 1 column 28",
        ),
        (
            br#"{"Result":{"Indicators":[{"Name":7}]}}"#.to_vec(),
            "malformed response: invalid type: integer `7`, expected a string at line 1 column 34",
        ),
        (
            br#"{"Result":{"Indicators":[{"Name":"x","Data":[{"Value":1e400}]}]}}"#.to_vec(),
            "malformed response: number out of range at line 1 column",
        ),
        (
            b"\xff\xfe{}".to_vec(),
            "malformed response: expected value at line 1 column 1",
        ),
        (
            b"".to_vec(),
            "malformed response: EOF while parsing a value",
        ),
    ];
    for (body, want) in cases {
        let got = decode_response(200, &body).unwrap_err().to_string();
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
    // A megabyte-long string in the wrong place is not copied whole into the error.
    let long = "x".repeat(1 << 20);
    let body = format!(r#"{{"Result":{{"Indicators":[{{"Name":"{long}","Unit":5}}]}}}}"#);
    let got = decode_response(200, body.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(got.len() < 1500, "{} bytes", got.len());
    // An API error with a huge message and control characters is cut and cleaned.
    let msg = format!("line1\nline2\u{1b}[31m{}", "m".repeat(1 << 20));
    let body = json!({"ResponseMetadata": {"Error": {"Code": "InternalError", "Message": msg}}});
    let e = decode_response(500, &serde_json::to_vec(&body).unwrap()).unwrap_err();
    let got = e.to_string();
    assert!(
        got.starts_with("API error InternalError (HTTP 500): line1line2[31mmmm"),
        "{got:.80}"
    );
    assert!(got.len() < 1500 && !got.contains('\n') && !got.contains('\u{1b}'));
    assert!(got.ends_with('…'));
}

#[test]
fn deep_nesting_fails_cleanly_everywhere() {
    let deep = |open: &str, n: usize| open.repeat(n);
    let in_series = |field: &str, nested: String| {
        format!(r#"{{"Result":{{"Indicators":[{{"Name":"x","{field}":{nested}"#)
    };
    let in_point = |field: &str, nested: String| {
        format!(r#"{{"Result":{{"Indicators":[{{"Name":"x","Data":[{{"{field}":{nested}"#)
    };
    // 100 000 levels, never closed: serde_json's recursion limit (128) stops the parts
    // it builds (`overview` is kept as a JSON value); fields it skips are skipped without
    // recursion and end at the end of the body. Either way an error, never a stack
    // overflow.
    let cases = [
        (
            deep("[", 100_000),
            "invalid type: sequence, expected a string at line 1 column 2",
        ),
        (
            deep("{\"a\":", 100_000),
            "EOF while parsing a value at line 1 column 500000",
        ),
        (
            in_series("overview", deep("[", 100_000)),
            "recursion limit exceeded at line 1 column 172",
        ),
        (
            in_point("Value", deep("[", 100_000)),
            "EOF while parsing a list",
        ),
        (
            in_point("TimeStamp", deep("{\"a\":", 100_000)),
            "EOF while parsing a value",
        ),
        (
            in_point("StreamId", deep("[", 100_000)),
            "invalid type: sequence, expected a string at line 1 column 57",
        ),
    ];
    for (body, want) in cases {
        let e = decode_response(200, body.as_bytes()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ApiError::Decode(_)), "{msg:.200}");
        assert!(
            msg.starts_with(&format!("malformed response: {want}")),
            "got {msg:.200}, want {want}"
        );
        assert!(msg.len() < 1500);
    }
    // Closed nesting 100 levels deep in `overview` is fine; 200 levels are refused.
    let closed = |n: usize| format!("{}{}", deep("[", n), deep("]", n));
    let series = |nested: String| {
        format!(r#"{{"Result":{{"Indicators":[{{"Name":"x","overview":{nested}}}]}}}}"#)
    };
    assert!(decode_response(200, series(closed(100)).as_bytes()).is_ok());
    let e = decode_response(200, series(closed(200)).as_bytes()).unwrap_err();
    assert!(e.to_string().contains("recursion limit exceeded"), "{e}");
    // A closed 100 000-level value where a number belongs is skipped: the point is
    // dropped as a bad value.
    let body = format!(
        r#"{{"Result":{{"Indicators":[{{"Name":"x","Data":[{{"TimeStamp":"2026-11-25T11:00:00Z","Value":{}}}]}}]}}}}"#,
        closed(100_000)
    );
    decode_response(200, body.as_bytes()).unwrap();
    let (kept, dropped) = points_of(&target(None), &answer_of(200, body.as_bytes()).unwrap());
    assert_eq!(kept, []);
    assert_eq!(
        dropped,
        Dropped {
            bad_value: 1,
            ..Dropped::default()
        }
    );
}

/// Peak resident memory of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn request() -> QualityRequest {
    QualityRequest {
        app_id: "a".into(),
        start_time: "2026-11-25T11:00:00Z".into(),
        end_time: "2026-11-25T11:10:00Z".into(),
        indicator: vec!["stall_rate".into()],
        room_id: None,
        user_id: vec![],
        product_type: Some("native".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_body_is_refused_at_the_cap_with_bounded_memory() {
    const HUNDRED_MB: usize = 100 * 1024 * 1024;
    let before = peak_rss();
    for announce in [true, false] {
        let server = FakeApi::start(
            Body::Huge {
                len: HUNDRED_MB,
                announce,
            },
            1,
        );
        let client = Client::new(
            &server.url(),
            "cn-north-1",
            Credentials::new(AK, SK, None),
            Timeouts::default(),
        )
        .unwrap();
        let e = client.list_real_time_quality(&request()).await.unwrap_err();
        assert_eq!(
            e,
            ApiError::TooLarge {
                limit: MAX_BODY_BYTES
            }
        );
        assert_eq!(
            e.to_string(),
            format!("response larger than {MAX_BODY_BYTES} bytes: refused")
        );
        assert!(!e.is_retryable());
        drop(client);
        drop(server);
    }
    let grown = peak_rss().saturating_sub(before);
    assert!(
        grown < (MAX_BODY_BYTES as u64) * 2 + 16 * 1024 * 1024,
        "peak memory grew by {grown} bytes"
    );
}
