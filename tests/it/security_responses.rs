//! A whole run against a loopback server that answers what the real API never sends
//! (duplicates and junk points, a 100 MB body) writes each good point once, or stops with
//! the refusal's exit code. The decoding itself is unit-tested in the crate
//! (`src/run/untrusted_answers.rs`).

use std::sync::atomic::Ordering;

use crate::kit::*;
use rtcq_emulator::hostile::{Body, FakeApi};
use serde_json::{Value, json};

/// The cap on an answer's body (`api::client::MAX_BODY_BYTES`), as the error names it.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The answer the fake API gives to every request of the run below: duplicates, points
/// outside the window and off the grid, bad values and time stamps.
const FIXED: &str = r#"{"ResponseMetadata":{"RequestId":"fake"},"Result":{"Indicators":[
{"Name":"audio_stall_rate","Unit":"%","Data":[
 {"TimeStamp":"2026-11-25T11:05:00Z","Value":1.5},
 {"TimeStamp":"2026-11-25T19:05:00+08:00","Value":9.9},
 {"TimeStamp":"2026-11-25T11:05:00Z","Value":1.5},
 {"TimeStamp":"2026-11-25T11:05:30Z","Value":2.5},
 {"TimeStamp":"2026-11-25T11:05:30Z","Value":2.5,"StreamId":"s1"},
 {"TimeStamp":"2026-11-25T11:50:00Z","Value":4.0},
 {"TimeStamp":"2026-11-25T11:50:00Z","Value":4.0},
 {"TimeStamp":"2026-11-25T10:00:00Z","Value":3},
 {"TimeStamp":"2026-11-25T11:00:30Z","Value":3},
 {"TimeStamp":"2026-11-25T11:59:00Z","Value":3},
 {"TimeStamp":"2026-11-25T11:06:10Z","Value":3},
 {"TimeStamp":"2026-11-25T11:29:60Z","Value":3},
 {"TimeStamp":"2026-11-25T11:07:00Z","Value":"NaN"},
 {"TimeStamp":"2026-11-25T11:07:30Z","Value":null},
 {"TimeStamp":12345,"Value":1},
 {"TimeStamp":"2026-11-25T11:08:00Z","Value":1e308}
]},
{"Name":"","Unit":"%","Data":[{"TimeStamp":"2026-11-25T11:20:00Z","Value":1}]}
]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_server_sending_duplicates_and_junk_writes_each_point_once() {
    let server = FakeApi::start(Body::Fixed(FIXED), 4);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "junk",
        &server.url(),
        50.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\n",
    );
    let now = t0();
    let args: Vec<String> = [
        "run",
        "--config",
        &cfg.display().to_string(),
        "--now",
        &now.to_rfc3339(),
        "--summary",
        "-",
    ]
    .map(String::from)
    .to_vec();
    let out = rtcq_async(args.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(server.served.load(Ordering::SeqCst), 1);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    // The run asked for [11:01, 11:59).
    assert_eq!(
        summary["points_dropped"],
        json!({
            "outside_window": 3,
            "off_grid": 2,
            "bad_timestamp": 1,
            "bad_value": 2,
            "unnamed_series": 1,
            "user_not_applied": 0,
            "duplicate": 3,
        })
    );
    assert_eq!(summary["rows_written"], 5);
    assert!(
        out.stderr
            .contains("dropped points the answer should not have held"),
        "{}",
        out.stderr
    );
    let us = |s: &str| at(s).timestamp_micros();
    let row = |ts: &str, v: f64, stream: Option<&str>| -> Key {
        (
            "app-a".into(),
            None,
            None,
            "native".into(),
            "audio_stall_rate".into(),
            us(ts),
            v.to_bits(),
            stream.map(str::to_string),
            30,
        )
    };
    let mut want = vec![
        row("2026-11-25T11:05:00Z", 1.5, None),
        row("2026-11-25T11:05:30Z", 2.5, None),
        row("2026-11-25T11:05:30Z", 2.5, Some("s1")),
        row("2026-11-25T11:08:00Z", 1e308, None),
        row("2026-11-25T11:50:00Z", 4.0, None),
    ];
    want.sort();
    assert_eq!(read_dataset(&dir.path().join("data")), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_against_a_server_sending_100_mb_stops_with_exit_5() {
    let server = FakeApi::start(
        Body::Huge {
            len: 100 * 1024 * 1024,
            announce: false,
        },
        2,
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "huge",
        &server.url(),
        50.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\n",
    );
    let out = rtcq_async(
        [
            "run",
            "--config",
            &cfg.display().to_string(),
            "--now",
            &t0().to_rfc3339(),
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "response larger than {MAX_BODY_BYTES} bytes: refused"
        )),
        "{}",
        out.stderr
    );
    assert_eq!(server.served.load(Ordering::SeqCst), 1, "not retried");
}
