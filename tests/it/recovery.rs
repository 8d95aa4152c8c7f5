//! Recovery from the offline API: a 3-hour outage is recorded as gaps, and a run once the
//! offline data exists (8 hours later) fills each gap with exactly the 5-minute points
//! the API has, `interval_s` 300, in the same slot files as the 30 s points; the
//! recovery is recorded, so a run after it sends no `ListQuality` request. Also: a
//! refusal leaves the gaps owed, stray points are dropped and counted, a crash during
//! recovery leaves exactly one copy, and `enabled = false` sends nothing.

use std::time::Duration;

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq_emulator::{EmulatorConfig, FaultKind, Faults, OfflineFault};
use serde_json::Value;

/// The run times: a first run, one after a 3-hour outage, one 9 hours later.
fn times() -> [DateTime<Utc>; 3] {
    let now = t0();
    [now, now + TimeDelta::hours(3), now + TimeDelta::hours(12)]
}

/// The gap each target's cursor (11:59) left when the run at 15:00:10 found the horizon
/// at 14:01.
const GAP: (&str, &str) = ("2026-11-25T11:59:00Z", "2026-11-25T14:01:00Z");

/// An emulator at `now` with its `ListQuality` fault.
async fn emulator(
    now: DateTime<Utc>,
    offline: Option<OfflineFault>,
) -> rtcq_emulator::RunningEmulator {
    emulator_with(EmulatorConfig {
        now: Some(now),
        requests_per_second: None,
        offline_requests_per_second: None,
        faults: Faults {
            offline,
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await
}

/// Where a scenario writes: local disk or a bucket on moto.
struct Place<'a> {
    moto: Option<&'a moto::Moto>,
    url: String,
}

impl Place<'_> {
    fn env(&self) -> Vec<(String, String)> {
        let mut env = fast_retries();
        if let Some(m) = self.moto {
            env.extend(m.env());
        }
        env
    }

    async fn rows(&self) -> Vec<Key> {
        match self.moto {
            None => read_dataset(std::path::Path::new(&self.url)),
            Some(m) => moto::read_dataset(&m.open(&self.url)).await,
        }
    }
}

/// Runs `cfg` at `now` against `emu`; the exit code and the summary.
async fn run(
    place: &Place<'_>,
    cfg: &std::path::Path,
    now: DateTime<Utc>,
    emu: &str,
) -> (i32, Value, String) {
    let out = rtcq_async_env(run_args(cfg, now, &["--endpoint", emu]), place.env()).await;
    let summary = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, summary, out.stderr)
}

/// What the dataset holds after the three runs: every 30 s point fetched, and (when
/// `recovered`) the 5-minute points over each target's gap.
fn expected(pipeline: &rtcq::config::Pipeline, recovered: bool) -> Vec<Key> {
    let [first, second, third] = times();
    let mut rows = expected_first_run(pipeline, first);
    for t in pipeline.targets.iter() {
        rows.extend(expected_for(
            t,
            at(GAP.1),
            at("2026-11-25T14:59:00Z"),
            second,
        ));
        rows.extend(expected_for(
            t,
            at("2026-11-25T23:01:00Z"),
            at("2026-11-25T23:59:00Z"),
            third,
        ));
        if recovered {
            rows.extend(expected_recovered(t, at(GAP.0), at(GAP.1), third));
        }
    }
    rows.sort();
    rows
}

/// The first two runs: the second records one gap per target.
async fn outage(place: &Place<'_>, dir: &std::path::Path) -> std::path::PathBuf {
    let [first, second, _] = times();
    let emu = emulator(first, None).await;
    let cfg = write_pipeline_to(dir, "rec", &emu.url(), 50.0, &place.url, TWO_APPS);
    let (code, s, err) = run(place, &cfg, first, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["recovery"]["recovery_requests"], 0);
    drop(emu);
    let emu = emulator(second, None).await;
    let (code, s, err) = run(place, &cfg, second, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["gaps_recorded"], 3);
    // Three hours old: the offline API does not have them yet.
    assert_eq!(s["recovery"]["recovery_requests"], 0);
    assert_eq!(s["recovery"]["gaps_owed"], 0);
    cfg
}

fn recovery_of(s: &Value) -> (u64, u64, u64, u64, u64) {
    let r = &s["recovery"];
    let n = |k: &str| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {r}"));
    (
        n("recovery_requests"),
        n("gaps_recovered"),
        n("points_recovered"),
        n("recovery_failed"),
        n("gaps_owed"),
    )
}

/// The scenario of the issue, with a refusal first and stray points in the answers.
async fn outage_then_recovery(place: Place<'_>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = outage(&place, dir.path()).await;
    let pipeline = load(&cfg);
    let [_, _, third] = times();

    // Nine hours later the account has no access to ListQuality: the refusal is
    // reported with its code, nothing else is sent, and the gaps stay owed.
    let emu = emulator(third, Some(OfflineFault::Denied)).await;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 5, "{err}");
    assert_eq!(s["gaps_recorded"], 3, "the 9-hour outage is recorded too");
    assert_eq!(recovery_of(&s), (1, 0, 0, 1, 3));
    let error = s["errors"][0].as_str().unwrap();
    assert!(
        error.starts_with(
            "app=app-a product=native: ListQuality [2026-11-25T11:59:00Z, 2026-11-25T14:01:00Z): "
        ) && error.contains("AccessDenied")
            && error.contains("User is not authorized to perform: rtc:ListQuality"),
        "{error}"
    );
    assert!(err.contains("the gap stays owed for the next run"), "{err}");
    assert_exact(&place.rows().await, &expected(&pipeline, false));
    drop(emu);

    // With access, at the same instant: one request per gap, the 5-minute points of
    // each gap and nothing else; the strays the answers carry are dropped and counted.
    let emu = emulator(third, Some(OfflineFault::Stray)).await;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    let want = expected(&pipeline, true);
    let recovered = want.iter().filter(|k| k.8 == 300).count() as u64;
    // 25 buckets (12:00 to 14:00) of two series for three targets, a few missing.
    assert!(recovered > 130 && recovered <= 150, "{recovered}");
    assert_eq!(recovery_of(&s), (3, 3, recovered, 0, 0));
    // Two strays per series: one before the range, one off the 5-minute grid.
    assert_eq!(s["points_dropped"]["outside_window"], 6);
    assert_eq!(s["points_dropped"]["off_grid"], 6);
    assert_eq!(s["gaps_recorded"], 0);
    assert_exact(&place.rows().await, &want);
    assert_eq!(emu.stats().offline_answers, 3);

    // One more run at the same instant sends no ListQuality request.
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(recovery_of(&s), (0, 0, 0, 0, 0));
    assert_eq!(emu.stats().offline_answers, 3);
    assert_exact(&place.rows().await, &want);

    // `status`: the first gaps recovered at 5 minutes, the 9-hour one still lost.
    let cfg_s = cfg.display().to_string();
    let now_s = third.to_rfc3339();
    let out = rtcq_async_env(
        ["status", "--config", &cfg_s, "--json", "--now", &now_s]
            .map(String::from)
            .to_vec(),
        place.env(),
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let status: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut gaps: Vec<(String, String, String)> = status["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["start"].as_str().unwrap().to_string(),
                g["end"].as_str().unwrap().to_string(),
                g["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    gaps.sort();
    let gap = |s: &str, e: &str, st: &str| (s.to_string(), e.to_string(), st.to_string());
    assert_eq!(
        gaps,
        vec![
            gap(GAP.0, GAP.1, "recovered"),
            gap(GAP.0, GAP.1, "recovered"),
            gap(GAP.0, GAP.1, "recovered"),
            gap("2026-11-25T14:59:00Z", "2026-11-25T23:01:00Z", "lost"),
            gap("2026-11-25T14:59:00Z", "2026-11-25T23:01:00Z", "lost"),
            gap("2026-11-25T14:59:00Z", "2026-11-25T23:01:00Z", "lost"),
        ]
    );
    let out = rtcq_async_env(
        ["status", "--config", &cfg_s, "--now", &now_s]
            .map(String::from)
            .to_vec(),
        place.env(),
    )
    .await;
    assert!(
        out.stdout.contains(
            "app=app-b product=native room=room-1  [2026-11-25 11:59:00, 2026-11-25 14:01:00)  2h02m00s, detected 2026-11-25 15:00:10: recovered at 5min"
        ),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_recovered_at_five_minutes_once_the_offline_api_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("data").display().to_string();
    outage_then_recovery(Place { moto: None, url }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_is_recovered_on_s3() {
    needs!(Python);
    let m = moto::Moto::start();
    m.create_bucket("recovery");
    outage_then_recovery(Place {
        moto: Some(&m),
        url: "s3://recovery/data".into(),
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_disabled_sends_no_list_quality_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("data").display().to_string();
    let place = Place { moto: None, url };
    let cfg = outage(&place, dir.path()).await;
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[sink]", "[recovery]\nenabled = false\n[sink]"),
    )
    .unwrap();
    let [_, _, third] = times();
    let emu = emulator(third, None).await;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s.get("recovery"), None);
    assert_eq!(emu.stats().offline_answers, 0);
    assert_exact(&place.rows().await, &expected(&load(&cfg), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_answer_leaves_the_gap_owed_for_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("data").display().to_string();
    let place = Place { moto: None, url };
    let cfg = outage(&place, dir.path()).await;
    let [_, _, third] = times();
    let emu = emulator(third, Some(OfflineFault::Kind(FaultKind::Malformed))).await;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 3, "{err}");
    // Each of the three requests tried three times (RTCQ_RETRY_MAX=2), all failed.
    assert_eq!(recovery_of(&s), (9, 0, 0, 3, 3));
    let errors: Vec<&str> = s["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors.iter().all(|e| e
            .contains(": ListQuality [2026-11-25T11:59:00Z, 2026-11-25T14:01:00Z): ")
            && e.contains("malformed response: expected value at line 1 column 1")),
        "{errors:?}"
    );
    assert_exact(&place.rows().await, &expected(&load(&cfg), false));
    assert!(
        !dir.path()
            .join("data/_state/gaps/rec.recovered.jsonl")
            .exists()
    );
    drop(emu);
    let emu = emulator(third, None).await;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(recovery_of(&s).1, 3);
    assert_exact(&place.rows().await, &expected(&load(&cfg), true));
}

/// Kills at most, and tries at most: the loop is bounded.
const KILLS: usize = 12;
const TRIES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_recovery_then_a_rerun_gives_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let url = dir.path().join("data").display().to_string();
    let place = Place { moto: None, url };
    let cfg = outage(&place, dir.path()).await;
    let [_, _, third] = times();
    let emu = emulator_with(EmulatorConfig {
        now: Some(third),
        requests_per_second: None,
        offline_requests_per_second: None,
        latency: Duration::from_millis(60),
        ..EmulatorConfig::default()
    })
    .await;
    // The real-time part first, recovery off: the runs killed below have nothing to do
    // but recover, so every kill lands in recovery (or the start-up before it).
    let text = std::fs::read_to_string(&cfg).unwrap();
    let with = |table: &str| text.replace("[sink]", &format!("[recovery]\n{table}\n[sink]"));
    std::fs::write(&cfg, with("enabled = false")).unwrap();
    let (code, _, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    // Slow recovery: a request every 0.2 s from a slow emulator.
    std::fs::write(&cfg, with("requests_per_second = 5.0")).unwrap();
    let ledger = dir.path().join("data/_state/gaps/rec.recovered.jsonl");
    let args = run_args(&cfg, third, &["--endpoint", &emu.url()]);
    // Kill delays sweep the run: 0, 80 ms, 160 ms, … until a run finishes by itself. A
    // kill is mid-recovery after an answer came back but before all was recorded.
    let recorded = || {
        std::fs::read_to_string(&ledger)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let Sweep {
        kills,
        mid: mid_recovery,
        ..
    } = kill_sweep(
        &args,
        &place.env(),
        Duration::from_millis(80),
        (KILLS, TRIES),
        || emu.stats().offline_answers,
        |answered| emu.stats().offline_answers > answered && recorded() < 3,
    )
    .await;
    assert!(kills >= 4, "only {kills} kills");
    assert!(
        mid_recovery >= 2,
        "only {mid_recovery} of {kills} kills mid-recovery"
    );
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["recovery"]["gaps_owed"], 0);
    assert_exact(&place.rows().await, &expected(&load(&cfg), true));
    // Each gap recovered once in the ledger, whatever the kills.
    let ledger = std::fs::read_to_string(&ledger).unwrap();
    let mut ranges: Vec<(String, String, String)> = ledger
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            assert_eq!(r["interval_s"], 300);
            (
                r["target"].as_str().unwrap().to_string(),
                r["start"].as_str().unwrap().to_string(),
                r["end"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ranges.sort();
    assert_eq!(
        ranges,
        [
            "[\"app-a\",\"native\",null,null]",
            "[\"app-a\",\"web\",null,null]",
            "[\"app-b\",\"native\",\"room-1\",null]"
        ]
        .map(|t| (t.to_string(), GAP.0.to_string(), GAP.1.to_string()))
        .to_vec()
    );
    // And a run after sends nothing more.
    let answered = emu.stats().offline_answers;
    let (code, s, err) = run(&place, &cfg, third, &emu.url()).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(s["recovery"]["recovery_requests"], 0);
    assert_eq!(emu.stats().offline_answers, answered);
}
