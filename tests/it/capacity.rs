//! Capacity: a pipeline larger than one run's budget, run every 5 simulated minutes
//! with a short `--max-duration`, serves every target earliest due first and loses
//! nothing; two pipelines of one account share its rate and one sink.

use std::collections::BTreeMap;

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq::plan::Window;

/// 29 rooms, and one more that must never fall more than 10 minutes behind.
fn targets() -> String {
    let rooms: Vec<String> = (0..29).map(|i| format!("\"r{i:02}\"")).collect();
    format!(
        r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = [{}]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = ["fresh"]
max_lag = "10m"
"#,
        rooms.join(", ")
    )
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no summary ({e}): {}\n{}", out.stdout, out.stderr))
}

fn cursors(root: &std::path::Path, name: &str) -> BTreeMap<String, Option<DateTime<Utc>>> {
    let text = std::fs::read_to_string(root.join(format!("_state/{name}.json"))).unwrap();
    let state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["targets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let cursor = v["cursor"]
                .as_str()
                .map(|c| DateTime::parse_from_rfc3339(c).unwrap().with_timezone(&Utc));
            (k.clone(), cursor)
        })
        .collect()
}

/// 30 targets at 4 requests/second, one-second runs every 5 simulated minutes: about 4
/// requests a run, so the targets take turns. No run records a gap or exits non-zero,
/// no request is throttled, the `max_lag` room stays fresh, and after a last run
/// without a limit the dataset holds exactly every target's data from its first
/// request on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgeted_runs_serve_every_target_earliest_due_first_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let cfg = write_pipeline(dir.path(), "cap", "http://127.0.0.1:9", 4.0, &targets());
    let pipeline = load(&cfg);
    let fresh = pipeline
        .targets
        .iter()
        .find(|t| t.room_id.as_deref() == Some("fresh"))
        .unwrap()
        .to_string();
    let mut first_start: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut served_per_run = Vec::new();
    let runs = 16;
    for k in 0..=runs {
        let now = t0() + TimeDelta::minutes(5 * k);
        let emu = emulator_at(now, Some(4.0)).await;
        let url = emu.url();
        let mut extra = vec!["--endpoint", url.as_str(), "--schedule", "5m"];
        if k < runs {
            extra.extend(["--max-duration", "1s"]);
        }
        let out = rtcq_async(run_args(&cfg, now, &extra)).await;
        let s = summary(&out);
        assert_eq!(out.code, 0, "run {k}: {}", out.stderr);
        assert_eq!(s["gaps_recorded"], 0, "run {k}: {s}");
        assert_eq!(s["requests_throttled"], 0, "run {k}: {s}");
        assert_eq!(s["requests_failed"], 0, "run {k}: {s}");
        assert_eq!(s["targets_at_risk"], 0, "run {k}: {s}");
        assert_eq!(s["over_capacity"], false, "run {k}: {s}");
        assert_eq!(emu.stats().status(429), 0);
        served_per_run.push(s["targets_served"].as_u64().unwrap());
        // Each target's first request started at the horizon of its run.
        let horizon = Window::at(now, pipeline.sink.slot).horizon;
        for (key, cursor) in cursors(&root, "cap") {
            if cursor.is_some() {
                first_start.entry(key).or_insert(horizon);
            }
        }
        if k > 0 {
            let lag = s["lag"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["target"] == fresh.as_str())
                .unwrap()["lag_seconds"]
                .as_i64()
                .unwrap();
            assert!(
                lag <= 11 * 60 + 10,
                "run {k}: the max_lag room is {lag} s behind"
            );
        }
        if k < runs {
            assert_eq!(s["deadline_reached"], true, "run {k}: {s}");
        }
    }
    // Every run used its budget; the turns came round well within the horizon.
    assert!(
        served_per_run[..runs as usize]
            .iter()
            .all(|&n| (3..=5).contains(&n)),
        "{served_per_run:?}"
    );
    assert_eq!(first_start.len(), 30, "every target was served");
    let last = t0() + TimeDelta::minutes(5 * runs);
    let end = Window::at(last, pipeline.sink.slot).settled_end;
    let mut expected = Vec::new();
    for t in pipeline.targets.iter() {
        assert_eq!(cursors(&root, "cap")[&t.key()], Some(end), "{t}");
        expected.extend(expected_for(t, first_start[&t.key()], end, last));
    }
    expected.sort();
    assert_exact(&read_dataset(&root), &expected);
    assert!(!root.join("_state/gaps/cap.jsonl").exists());
}

/// Two pipelines of one account, each given half of its 2 requests/second, run at the
/// same time into one sink: no request is throttled, their files have distinct names,
/// and the dataset holds both exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pipelines_share_one_account_and_one_sink() {
    let now = t0();
    let emu = emulator_at(now, Some(2.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let east = write_pipeline(
        dir.path(),
        "east",
        &emu.url(),
        1.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\nrooms = [\"e1\", \"e2\", \"e3\"]\n",
    );
    let west = write_pipeline(
        dir.path(),
        "west",
        &emu.url(),
        1.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\", \"network_trans_delay\"]\nrooms = [\"w1\", \"w2\"]\nproduct_types = [\"native\", \"web\"]\n",
    );
    let (a, b) = tokio::join!(
        rtcq_async(run_args(&east, now, &[])),
        rtcq_async(run_args(&west, now, &[]))
    );
    for (out, requests) in [(&a, 3), (&b, 4)] {
        assert_eq!(out.code, 0, "{}", out.stderr);
        let s = summary(out);
        assert_eq!(s["requests_sent"], requests, "{s}");
        assert_eq!(s["requests_throttled"], 0, "{s}");
    }
    assert_eq!(emu.stats().status(429), 0);
    // One file per pipeline and slot: 12 slots each.
    let files = relative_files(&root);
    let parquet: Vec<&String> = files.iter().filter(|f| f.ends_with(".parquet")).collect();
    assert_eq!(parquet.len(), 24, "{files:?}");
    for name in ["east", "west"] {
        let n = parquet
            .iter()
            .filter(|f| {
                f.rsplit('/')
                    .next()
                    .unwrap()
                    .starts_with(&format!("{name}-"))
            })
            .count();
        assert_eq!(n, 12, "{name}: {files:?}");
    }
    let mut expected = expected_first_run(&load(&east), now);
    expected.extend(expected_first_run(&load(&west), now));
    expected.sort();
    assert_exact(&read_dataset(&root), &expected);
}
