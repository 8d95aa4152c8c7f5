//! Room discovery against the emulator's call model: a pipeline with `rooms = "active"`
//! and a `room_match` runs every 5 minutes for half an hour, each run a new process on
//! the saved state; the dataset then holds exactly the points of every matching room
//! during its calls, and nothing of the others.

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq::domain::Target;
use rtcq::plan::Window;

const ACTIVE: &str = r#"
[[targets]]
app_id = "app-d"
indicators = ["stall_rate"]
rooms = "active"
room_match = "live-*"
"#;

/// A discovered room's target, as the pipeline above makes it.
fn room_target(room: &str) -> Target {
    stall_room_target("app-d", room)
}

/// Every point the call model has for the `live-*` rooms over `[from, to)`.
fn expected(from: DateTime<Utc>, to: DateTime<Utc>, emu_now: DateTime<Utc>) -> Vec<Key> {
    let mut out = Vec::new();
    for k in (0..rtcq_emulator::MODEL_ROOMS).step_by(2) {
        let room = rtcq_emulator::model_room(k);
        out.extend(expected_for(&room_target(&room), from, to, emu_now));
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_every_five_minutes_fetch_exactly_the_matching_rooms_during_their_calls() {
    let dir = tempfile::tempdir().unwrap();
    let first = t0();
    let mut last = first;
    let mut room_info_requests = 0;
    let mut quality_requests = 0;
    let mut empty = 0;
    let mut retired = 0;
    // Per run, the discovered rooms that were targets.
    let mut rooms_by_run: Vec<std::collections::BTreeSet<String>> = Vec::new();
    for i in 0..7 {
        let now = first + TimeDelta::minutes(5 * i);
        last = now;
        let emu = emulator_at(now, None).await;
        let cfg = write_pipeline(dir.path(), "rooms", &emu.url(), 50.0, ACTIVE);
        let out = rtcq_async(run_args(&cfg, now, &[])).await;
        assert_eq!(out.code, 0, "run {i}: {}", out.stderr);
        let stats = emu.shutdown().await;
        empty += stats.empty_answers;
        let s: serde_json::Value =
            serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        let d = &s["discovery"];
        assert_eq!(d["calls_dropped"], 0);
        assert_eq!(d["room_targets_waiting"], 0, "run {i}: {d}");
        room_info_requests += d["room_info_requests"].as_u64().unwrap();
        retired += d["rooms_retired"].as_u64().unwrap();
        let rooms: std::collections::BTreeSet<String> = s["lag"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["room_id"].as_str().map(str::to_string))
            .collect();
        // Every room target of the run is a discovered `live-*` room, and the count says so.
        assert!(!rooms.is_empty(), "run {i}: {s}");
        assert!(rooms.iter().all(|r| r.starts_with("live-")), "{rooms:?}");
        assert_eq!(d["rooms_active"], rooms.len(), "run {i}: {d}");
        rooms_by_run.push(rooms);
        quality_requests += s["requests_sent"].as_u64().unwrap();
        if i == 0 {
            // The first scan looks back 24 hours: several pages of 100 calls.
            assert!(d["room_info_requests"].as_u64().unwrap() >= 3, "{d}");
        }
        assert_eq!(s["gaps_recorded"], 0, "run {i}: {s}");
    }
    let from = Window::at(first, TimeDelta::minutes(5)).horizon;
    let to = Window::at(last, TimeDelta::minutes(5)).settled_end;
    let got = read_dataset(&dir.path().join("data"));
    assert!(
        got.iter()
            .all(|k| k.1.as_deref().is_some_and(|r| r.starts_with("live-"))),
        "only live-* rooms"
    );
    assert_exact(&got, &expected(from, to, last));
    assert!(room_info_requests >= 9, "{room_info_requests}");
    // Rooms retire when their call has ended and been fetched, and come back with
    // their next call.
    assert!(retired > 0);
    let came_back = (1..rooms_by_run.len()).any(|j| {
        rooms_by_run[j].iter().any(|r| {
            !rooms_by_run[j - 1].contains(r) && rooms_by_run[..j - 1].iter().any(|s| s.contains(r))
        })
    });
    assert!(came_back, "{rooms_by_run:?}");
    // `status` shows what discovery knows, and the rooms' targets with the listed ones.
    let emu = emulator_at(last, None).await;
    let cfg = write_pipeline(dir.path(), "rooms", &emu.url(), 50.0, ACTIVE);
    let out = rtcq_async(vec![
        "status".into(),
        "--config".into(),
        cfg.display().to_string(),
        "--now".into(),
        last.to_rfc3339(),
        "--json".into(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let d = &status["discovery"]["app-d"];
    assert_eq!(d["entry"], "app=app-d rooms=active room_match=live-*");
    assert_eq!(
        d["scanned_until"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        last
    );
    assert_eq!(d["room_targets_waiting"], 0, "{d}");
    let known = d["rooms_known"].as_u64().unwrap();
    assert!((1..=6).contains(&known), "{d}");
    let targets = status["targets"].as_array().unwrap();
    assert_eq!(
        targets.len() as u64,
        known,
        "one native target per room known"
    );
    assert!(
        targets
            .iter()
            .all(|t| t["room_id"].as_str().unwrap().starts_with("live-"))
    );
    // Rooms are asked for only while they owe call time: at most 10 % of the answers
    // come back empty.
    assert!(
        empty * 10 <= quality_requests,
        "{empty} empty answers of {quality_requests}"
    );
}

/// An app-level target, listed beside the discovery entry [`ACTIVE`].
const LISTED: &str = r#"
[[targets]]
app_id = "app-d"
indicators = ["stall_rate"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_list_room_info_changes_nothing_it_should_not_and_the_next_run_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let state_path = dir.path().join("data/_state/mixed.json");
    let discovery_of = || -> serde_json::Value {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
        state["discovery"].clone()
    };
    let first = t0();
    let mut last = first;
    for (i, broken) in [false, true, false].into_iter().enumerate() {
        let now = first + TimeDelta::minutes(5 * i as i64);
        last = now;
        let mut cfg = rtcq_emulator::EmulatorConfig {
            now: Some(now),
            requests_per_second: None,
            ..Default::default()
        };
        if broken {
            cfg.faults.room_info = Some(rtcq_emulator::FaultKind::Malformed);
        }
        let emu = emulator_with(cfg).await;
        let pipeline = write_pipeline(
            dir.path(),
            "mixed",
            &emu.url(),
            50.0,
            &format!("{LISTED}{ACTIVE}"),
        );
        let before = (i > 0).then(discovery_of);
        let out = rtcq_async_env(run_args(&pipeline, now, &[]), fast_retries()).await;
        let s: serde_json::Value =
            serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        if broken {
            assert_eq!(out.code, 3, "{}", out.stderr);
            let errors = s["errors"].to_string();
            assert!(
                errors.contains("app=app-d rooms=active room_match=live-*: ListRoomInfo: "),
                "{errors}"
            );
            // What discovery knew is kept as it was, and the rooms found before are
            // still fetched, as is the listed target.
            let after = discovery_of();
            assert_eq!(
                after["app-d"]["scanned_until"],
                before.unwrap()["app-d"]["scanned_until"]
            );
            assert!(s["discovery"]["rooms_active"].as_u64().unwrap() > 0, "{s}");
            assert!(s["requests_sent"].as_u64().unwrap() > 1, "{s}");
        } else {
            assert_eq!(out.code, 0, "run {i}: {}", out.stderr);
        }
        assert_eq!(s["gaps_recorded"], 0, "run {i}: {s}");
    }
    let from = Window::at(first, TimeDelta::minutes(5)).horizon;
    let to = Window::at(last, TimeDelta::minutes(5)).settled_end;
    let mut want = expected(from, to, last);
    let app_level = Target {
        room_id: None,
        ..room_target("x")
    };
    want.extend(expected_for(&app_level, from, to, last));
    want.sort();
    assert_exact(&read_dataset(&dir.path().join("data")), &want);
}

/// Every room of the app, no glob.
const ALL_ROOMS: &str = r#"
[[targets]]
app_id = "app-d"
indicators = ["stall_rate"]
rooms = "active"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_rooms_beyond_the_budget_wait_named_and_what_they_lose_is_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut gaps = 0;
    // Per run, the room targets left with owed slots.
    let mut waiting_rooms: Vec<std::collections::BTreeSet<String>> = Vec::new();
    for k in 0..2 {
        let now = t0() + TimeDelta::minutes(5 * k);
        let emu = emulator_at(now, None).await;
        // One request a second for one second every five minutes: far fewer than the
        // rooms in a call.
        let cfg = write_pipeline(dir.path(), "small", &emu.url(), 1.0, ALL_ROOMS);
        let out = rtcq_async(run_args(
            &cfg,
            now,
            &[
                "--schedule",
                "5m",
                "--max-duration",
                "1s",
                "--log-format",
                "json",
            ],
        ))
        .await;
        let s: serde_json::Value =
            serde_json::from_str(out.stdout.lines().last().unwrap()).unwrap();
        assert_eq!(out.code, 3, "run {k}: {}", out.stderr);
        assert_eq!(s["over_capacity"], true, "{s}");
        let waiting: std::collections::BTreeSet<String> = s["lag"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["pending_slots"].as_u64().unwrap() > 0)
            .map(|l| l["room_id"].as_str().unwrap().to_string())
            .collect();
        assert!(!waiting.is_empty(), "run {k}: {s}");
        assert_eq!(
            s["discovery"]["room_targets_waiting"],
            waiting.len(),
            "run {k}: {s}"
        );
        // One request a run at most, each for one room: the others are deferred.
        assert!(s["targets_served"].as_u64().unwrap() <= 2, "run {k}: {s}");
        assert_eq!(
            s["targets_served"].as_u64().unwrap() + s["targets_deferred"].as_u64().unwrap(),
            s["requests_planned"].as_u64().unwrap(),
            "run {k}: {s}"
        );
        waiting_rooms.push(waiting);
        assert!(
            out.stderr.contains(
                "discovered room target(s) wait for a later run: app=app-d product=native room="
            ),
            "{}",
            out.stderr
        );
        gaps += s["gaps_recorded"].as_u64().unwrap();
    }
    // The rooms left waiting in the first run owed data from its horizon: five minutes
    // later the start of it is gone, and the ledger says so, room by room.
    assert!(gaps > 0);
    let ledger = std::fs::read_to_string(dir.path().join("data/_state/gaps/small.jsonl")).unwrap();
    assert_eq!(ledger.lines().count() as u64, gaps);
    for line in ledger.lines() {
        let g: serde_json::Value = serde_json::from_str(line).unwrap();
        // Only a room the first run left waiting can have lost data.
        let room = g["room_id"].as_str().unwrap();
        assert!(
            waiting_rooms[0].contains(room),
            "{g} not in {:?}",
            waiting_rooms[0]
        );
        assert_eq!(
            g["reason"],
            "beyond the API's 60-minute horizon before it could be fetched"
        );
    }
}
