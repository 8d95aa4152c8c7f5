//! Outages, backfills and run deadlines: the gap ledger holds exactly what was lost, by
//! value; a backfill rewrites what the API still has without moving cursors back; a run
//! stopped by its deadline saves progress and a later run completes the dataset.

use crate::kit::*;
use chrono::TimeDelta;

fn state(dir: &std::path::Path, name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(format!("data/_state/{name}.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hour_outage_records_exactly_the_lost_ranges_and_fail_on_gap_exits_6() {
    let now = t0();
    let later = now + TimeDelta::hours(3);
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_at(now, None).await;
    let cfg = write_pipeline(dir.path(), "outage", &emu.url(), 50.0, TWO_APPS);
    let out = rtcq_async(run_args(&cfg, now, &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    drop(emu);

    let emu = emulator_at(later, None).await;
    let out = rtcq_async(run_args(
        &cfg,
        later,
        &["--endpoint", &emu.url(), "--fail-on-gap"],
    ))
    .await;
    assert_eq!(out.code, 6, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["gaps_recorded"], 3);
    assert_eq!(summary["exit_code"], 6);
    assert_eq!(summary["slots_pending"], 0);

    // Cursors were at 11:59; at 15:00:10 the horizon is 14:01:00.
    let ledger = std::fs::read_to_string(dir.path().join("data/_state/gaps/outage.jsonl")).unwrap();
    let mut gaps: Vec<(String, String, Option<String>, String, String, String)> = ledger
        .lines()
        .map(|l| {
            let g: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(g["pipeline"], "outage");
            assert_eq!(
                g["reason"],
                "beyond the API's 60-minute horizon before it could be fetched"
            );
            assert_eq!(
                at(g["detected_at"].as_str().unwrap()).timestamp() / 60,
                later.timestamp() / 60
            );
            (
                g["app_id"].as_str().unwrap().to_string(),
                g["product_type"].as_str().unwrap().to_string(),
                g["room_id"].as_str().map(str::to_string),
                g["start"].as_str().unwrap().to_string(),
                g["end"].as_str().unwrap().to_string(),
                g["target"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    gaps.sort();
    let want = |app: &str, pt: &str, room: Option<&str>| {
        (
            app.to_string(),
            pt.to_string(),
            room.map(str::to_string),
            "2026-11-25T11:59:00Z".to_string(),
            "2026-11-25T14:01:00Z".to_string(),
            serde_json::json!([app, pt, room, null]).to_string(),
        )
    };
    assert_eq!(
        gaps,
        vec![
            want("app-a", "native", None),
            want("app-a", "web", None),
            want("app-b", "native", Some("room-1")),
        ]
    );

    // The dataset: the first run's hour and exactly the last 60 minutes now.
    let pipeline = load(&cfg);
    let mut expected = expected_first_run(&pipeline, now);
    for t in pipeline.targets.iter() {
        expected.extend(expected_for(
            t,
            at("2026-11-25T14:01:00Z"),
            at("2026-11-25T14:59:00Z"),
            later,
        ));
    }
    expected.sort();
    assert_exact(&read_dataset(&dir.path().join("data")), &expected);

    // A rerun finds nothing new to record: exit 0 even with --fail-on-gap.
    let out = rtcq_async(run_args(
        &cfg,
        later,
        &["--endpoint", &emu.url(), "--fail-on-gap"],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/_state/gaps/outage.jsonl")).unwrap(),
        ledger
    );

    // `rtcq status` lists them; --since after detection lists none.
    let cfg_s = cfg.display().to_string();
    let out = rtcq(&[
        "status",
        "--config",
        &cfg_s,
        "--json",
        "--now",
        &later.to_rfc3339(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["gaps"].as_array().unwrap().len(), 3);
    let since = (later + TimeDelta::minutes(5)).to_rfc3339();
    let out = rtcq(&["status", "--config", &cfg_s, "--json", "--since", &since]);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["gaps"].as_array().unwrap().len(), 0);

    // A record an older build wrote for data it had fetched (a room listed again):
    // `--check-gaps` tells it from the true losses by the 30 s rows its range holds.
    let first = ledger.lines().next().unwrap();
    let mut false_gap: serde_json::Value = serde_json::from_str(first).unwrap();
    false_gap["start"] = "2026-11-25T11:01:00Z".into();
    false_gap["end"] = "2026-11-25T11:30:00Z".into();
    let ledger_path = dir.path().join("data/_state/gaps/outage.jsonl");
    std::fs::write(&ledger_path, format!("{ledger}{false_gap}\n")).unwrap();
    let held_want = {
        let target: serde_json::Value =
            serde_json::from_str(false_gap["target"].as_str().unwrap()).unwrap();
        let rows = read_dataset(&dir.path().join("data"));
        let (from, to) = (at("2026-11-25T11:01:00Z"), at("2026-11-25T11:30:00Z"));
        let stamps: std::collections::BTreeSet<i64> = rows
            .iter()
            .filter(|k| {
                serde_json::json!([k.0, k.3, k.1, k.2]) == target
                    && k.8 == 30
                    && (from.timestamp_micros()..to.timestamp_micros()).contains(&k.5)
            })
            .map(|k| k.5)
            .collect();
        stamps.len()
    };
    assert!(held_want > 50, "{held_want}");
    let now_s = later.to_rfc3339();
    let args = [
        "status",
        "--config",
        &cfg_s,
        "--now",
        &now_s,
        "--check-gaps",
    ];
    let out = rtcq(&[&args[..], &["--json"]].concat());
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let held: Vec<serde_json::Value> = status["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["held"].clone())
        .collect();
    let none = serde_json::json!({"buckets": 244, "held": 0});
    assert_eq!(
        held,
        [
            none.clone(),
            none.clone(),
            none,
            serde_json::json!({"buckets": 58, "held": held_want})
        ]
    );
    // Nothing changed: the ledger is only read.
    assert_eq!(
        std::fs::read_to_string(&ledger_path).unwrap(),
        format!("{ledger}{false_gap}\n")
    );
    let out = rtcq(&args);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains(&format!(
            "HELD: the dataset has 30 s rows at {held_want} of its 58 buckets, not a loss"
        )),
        "{}",
        out.stdout
    );
    assert_eq!(
        out.stdout.matches("none of its 244 buckets held").count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_rewrites_what_the_api_still_has_and_reports_the_rest() {
    let now = t0();
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_at(now, None).await;
    let cfg = write_pipeline(dir.path(), "bf", &emu.url(), 50.0, TWO_APPS);
    let out = rtcq_async(run_args(&cfg, now, &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    drop(emu);

    // A bug lost two files; two minutes later, backfill 10:30-11:30.
    let root = dir.path().join("data");
    let f1 = root.join("app_id=app-a/date=2026-11-25/bf-1120.parquet");
    let f2 = root.join("app_id=app-b/date=2026-11-25/bf-1105.parquet");
    std::fs::remove_file(&f1).unwrap();
    std::fs::remove_file(&f2).unwrap();
    let later = now + TimeDelta::minutes(2);
    let emu = emulator_at(later, None).await;
    let cfg_s = cfg.display().to_string();
    let args: Vec<String> = [
        "backfill",
        "--config",
        &cfg_s,
        "--from",
        "2026-11-25T10:30:00Z",
        "--to",
        "2026-11-25T11:30:00Z",
        "--now",
        &later.to_rfc3339(),
        "--endpoint",
        &emu.url(),
        "--summary",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = rtcq_async(args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // At 12:02:10 the horizon is 11:03:00.
    assert_eq!(
        summary["backfill"]["unreachable"]["start"],
        "2026-11-25T10:30:00Z"
    );
    assert_eq!(
        summary["backfill"]["unreachable"]["end"],
        "2026-11-25T11:03:00Z"
    );
    assert_eq!(summary["backfill"]["unsettled"], serde_json::Value::Null);
    assert_eq!(summary["gaps_recorded"], 0);
    assert!(
        out.stderr
            .contains("beyond the API's 60-minute horizon and cannot be fetched again"),
        "{}",
        out.stderr
    );
    assert!(f1.exists() && f2.exists());
    // Cursors moved forward to the new settled end (12:01), never back.
    let st = state(dir.path(), "bf");
    for (_, t) in st["targets"].as_object().unwrap() {
        assert_eq!(t["cursor"], "2026-11-25T12:01:00Z");
    }

    let pipeline = load(&cfg);
    let mut expected = Vec::new();
    for t in pipeline.targets.iter() {
        expected.extend(expected_for(
            t,
            at("2026-11-25T11:01:00Z"),
            at("2026-11-25T12:01:00Z"),
            later,
        ));
    }
    expected.sort();
    assert_exact(&read_dataset(&root), &expected);

    let out = rtcq(&[
        "backfill",
        "--config",
        &cfg_s,
        "--from",
        "2026-11-25T11:30:00Z",
        "--to",
        "2026-11-25T11:00:00Z",
    ]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not before --to"), "{}", out.stderr);
}

/// A run stopped by its deadline writes every answer it got (nothing fetched is thrown
/// away), leaves the targets it did not reach never fetched (they owe nothing, so no gap),
/// exits 0 because what waits is safe until the next run, and the next run completes
/// the dataset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_stopped_by_its_deadline_keeps_what_it_fetched_and_the_next_completes_it() {
    let now = t0();
    let dir = tempfile::tempdir().unwrap();
    // 1.5 s per answer at 2 requests/second: two requests are sent within the
    // one-second deadline, their answers arrive after it and are kept.
    let emu = emulator_slow(now, None, std::time::Duration::from_millis(1500)).await;
    let cfg = write_pipeline(dir.path(), "deadline", &emu.url(), 2.0, TWO_APPS);
    let pipeline = load(&cfg);
    let out = rtcq_async(run_args(&cfg, now, &["--max-duration", "1s"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["deadline_reached"], true);
    assert_eq!(summary["requests_planned"], 3);
    assert_eq!(summary["requests_sent"], 2, "{summary}");
    assert_eq!(summary["targets_served"], 2);
    assert_eq!(summary["targets_deferred"], 1);
    assert_eq!(summary["targets_never_fetched"], 1);
    assert_eq!(summary["targets_at_risk"], 0);
    assert_eq!(summary["gaps_recorded"], 0);
    // The first two in the plan's order (all new: target order) were written.
    let plan = rtcq::plan::Plan::build(
        vec![rtcq::plan::Progress::default(); 3],
        rtcq::plan::Window::at(now, pipeline.sink.slot),
        |_| None,
    );
    let mut served = Vec::new();
    for r in plan.requests.iter().take(2) {
        served.extend(expected_for(
            &pipeline.targets[r.target],
            r.start,
            r.end,
            now,
        ));
    }
    served.sort();
    assert!(!served.is_empty());
    let root = dir.path().join("data");
    assert_exact(&read_dataset(&root), &served);
    assert_eq!(summary["rows_written"], served.len());
    let st = state(dir.path(), "deadline");
    let cursors: Vec<_> = pipeline
        .targets
        .iter()
        .map(|t| st["targets"][t.key()]["cursor"].clone())
        .collect();
    assert_eq!(
        cursors,
        vec![
            serde_json::json!("2026-11-25T11:59:00Z"),
            serde_json::json!("2026-11-25T11:59:00Z"),
            serde_json::Value::Null
        ]
    );
    drop(emu);

    // Two minutes later: the third target's first request starts at the horizon then,
    // the two served ones ask for what settled since.
    let later = now + TimeDelta::minutes(2);
    let emu = emulator_at(later, None).await;
    let out = rtcq_async(run_args(&cfg, later, &["--endpoint", &emu.url()])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], 3);
    assert_eq!(summary["gaps_recorded"], 0);
    let mut expected = Vec::new();
    for (i, t) in pipeline.targets.iter().enumerate() {
        let start = if i < 2 {
            at("2026-11-25T11:01:00Z")
        } else {
            at("2026-11-25T11:03:00Z")
        };
        expected.extend(expected_for(t, start, at("2026-11-25T12:01:00Z"), later));
    }
    expected.sort();
    assert_exact(&read_dataset(&root), &expected);
}
