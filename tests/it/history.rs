//! History on day one (`[recovery] history = "30d"`): a new pipeline's first run sets
//! each target's `since` at its horizon, and runs every few minutes load the 30 days
//! before it from `ListQuality` at 5 minutes, at most `max_requests_per_run` a run,
//! newest first, in six requests a target, into one file per app and day. Checked as a
//! user would: the dataset holds exactly those 5-minute points once and every 30 s point
//! after `since`, no gap is recorded, every run exits 0, a further run sends no
//! `ListQuality` request; the same on S3. Also: a crash during the load, history with a
//! later outage, an old state that had no `since`, and a denied `ListQuality`.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq::plan::Window;
use rtcq_emulator::{EmulatorConfig, Faults, OfflineFault};
use serde_json::Value;

/// History of 30 days, three `ListQuality` requests a run.
const HISTORY: &str =
    "[recovery]\nrequests_per_second = 50.0\nhistory = \"30d\"\nmax_requests_per_run = 3\n";

/// Where a scenario writes: local disk or a bucket on moto.
struct Place<'a> {
    moto: Option<&'a moto::Moto>,
    url: String,
}

impl Place<'_> {
    fn local(dir: &std::path::Path) -> Self {
        Place {
            moto: None,
            url: dir.join("data").display().to_string(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        // Quick retries, but time for a 7-day answer from a debug-built emulator.
        let mut env: Vec<(String, String)> = fast_retries()
            .into_iter()
            .filter(|(k, _)| k != "RTCQ_REQUEST_TIMEOUT_MS")
            .collect();
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

    /// Every data file's key below the sink, relative to it.
    async fn files(&self) -> Vec<String> {
        match self.moto {
            None => relative_files(std::path::Path::new(&self.url))
                .into_iter()
                .filter(|f| !f.contains("_state/"))
                .collect(),
            Some(m) => moto::keys(&m.open(&self.url))
                .await
                .into_iter()
                .filter(|k| !k.contains("_state/"))
                .collect(),
        }
    }
}

/// The pipeline `hist` in `dir`, writing to `place`, with `tables` after `[sink]`
/// (each run gives the endpoint).
fn pipeline_in(dir: &std::path::Path, place: &Place<'_>, tables: &str) -> std::path::PathBuf {
    write_pipeline_to(dir, "hist", "http://127.0.0.1:9", 50.0, &place.url, tables)
}

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

/// Runs `cfg` at `now` against a fresh emulator at `now`: exit code, summary, stderr.
async fn run_at(
    place: &Place<'_>,
    cfg: &std::path::Path,
    now: DateTime<Utc>,
    offline: Option<OfflineFault>,
) -> (i32, Value, String) {
    let emu = emulator(now, offline).await;
    let out = rtcq_async_env(run_args(cfg, now, &["--endpoint", &emu.url()]), place.env()).await;
    let summary = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, summary, out.stderr)
}

fn n(s: &Value, key: &str) -> u64 {
    s["recovery"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("recovery.{key} in {s}"))
}

/// The oldest instant a history request sent at `now` may ask for: 30 days back, less
/// the hour recovery keeps from the lookback's edge.
fn edge(now: DateTime<Utc>) -> DateTime<Utc> {
    now - TimeDelta::days(30) + TimeDelta::hours(1)
}

/// Where the young part of history begins: 8 h 30 min before `since`, on the
/// 5-minute grid.
fn young_from(since: DateTime<Utc>) -> DateTime<Utc> {
    floor_5min(since - TimeDelta::minutes(8 * 60 + 30))
}

fn floor_5min(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp().div_euclid(300) * 300, 0).unwrap()
}

/// The first horizon of a pipeline first run at `now`: where `since` is set.
fn first_horizon(now: DateTime<Utc>) -> DateTime<Utc> {
    Window::at(now, TimeDelta::minutes(5)).horizon
}

/// The 30 s points of every target over `[from, settled end of last)`.
fn realtime(
    pipeline: &rtcq::config::Pipeline,
    from: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Vec<Key> {
    let to = Window::at(last, pipeline.sink.slot).settled_end;
    let mut rows = Vec::new();
    for t in pipeline.targets.iter() {
        rows.extend(expected_for(t, from, to, last));
    }
    rows
}

/// The 5-minute points of every target over `[from, to)`, as the offline API has them
/// at `last`.
fn five_minute(
    pipeline: &rtcq::config::Pipeline,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    last: DateTime<Utc>,
) -> Vec<Key> {
    let mut rows = Vec::new();
    for t in pipeline.targets.iter() {
        rows.extend(expected_recovered(t, from, to, last));
    }
    rows
}

/// Data files per app and date, for the dates before `day`.
fn files_per_day_before(files: &[String], day: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for f in files {
        let parts: Vec<&str> = f.split('/').collect();
        let [app, date, name] = parts[parts.len() - 3..] else {
            panic!("{f}")
        };
        if date < day {
            out.entry((app.to_string(), date.to_string()))
                .or_default()
                .push(name.to_string());
        }
    }
    out
}

/// The run times: every `every` minutes (after the first five runs, 5 minutes apart)
/// until 9 hours, then once more at that instant.
fn schedule(every: i64) -> Vec<DateTime<Utc>> {
    let mut times: Vec<_> = (0..5).map(|i| t0() + TimeDelta::minutes(5 * i)).collect();
    let mut t = t0() + TimeDelta::minutes(20 + every);
    while t <= t0() + TimeDelta::hours(9) {
        times.push(t);
        t += TimeDelta::minutes(every);
    }
    times.push(*times.last().unwrap());
    times
}

/// The scenario: a new pipeline of listed targets with `history = "30d"` and a
/// cap of 3, run on [`schedule`] for 9 hours and once more.
async fn thirty_days_on_day_one(place: Place<'_>, dir: &std::path::Path, every: i64) {
    let times = schedule(every);
    let cfg = pipeline_in(dir, &place, &format!("{HISTORY}{TWO_APPS}"));
    let pipeline = load(&cfg);
    let targets = pipeline.targets.len() as u64;
    let since = first_horizon(times[0]);
    let mut asked = 0;
    let mut oldest_asked_at = None;
    for (i, &now) in times.iter().enumerate() {
        let (code, s, err) = run_at(&place, &cfg, now, None).await;
        assert_eq!(code, 0, "run {i} at {now}: {err}");
        assert_eq!(s["gaps_recorded"], 0, "run {i}");
        assert_eq!(n(&s, "gaps_recovered"), 0, "run {i}");
        let sent = n(&s, "history_requests");
        assert_eq!(sent, n(&s, "recovery_requests"), "run {i}: no retry");
        assert!(sent <= 3, "run {i}: the cap");
        assert_eq!(n(&s, "history_recovered"), sent, "run {i}");
        asked += sent;
        match i {
            // Five 7-day pieces a target, newest first, three a run; then the young
            // 8 h 30 min waits until all of it is due.
            0 => assert_eq!((sent, n(&s, "history_owed")), (3, 6 * targets - 3)),
            1..=4 => assert_eq!(sent, 3, "run {i}"),
            _ => {}
        }
        if i == 4 {
            oldest_asked_at = Some(now);
            assert_eq!(n(&s, "history_owed"), targets, "the young pieces wait");
        }
        if now < since + TimeDelta::minutes(8 * 60 + 30) {
            assert!(
                i <= 4 || sent == 0,
                "run {i} at {now}: the young part waits"
            );
        }
        if i == times.len() - 1 {
            assert_eq!(sent, 0, "the last run sends no ListQuality request");
            assert_eq!(n(&s, "history_owed"), 0);
        }
    }
    assert_eq!(asked, 6 * targets, "six requests a target");

    let last = *times.last().unwrap();
    let from = edge(oldest_asked_at.unwrap());
    assert!(since - from >= TimeDelta::days(29));
    let mut want = realtime(&pipeline, since, last);
    want.extend(five_minute(&pipeline, from, since, last));
    want.sort();
    assert_exact(&place.rows().await, &want);

    // One file per app and day before the first horizon's day: the day's history.
    let files = place.files().await;
    let before = files_per_day_before(&files, &format!("date={}", since.format("%Y-%m-%d")));
    let days = (since.date_naive() - from.date_naive()).num_days() as usize;
    assert_eq!(days, 30);
    assert_eq!(
        before.len(),
        2 * days,
        "two apps, a file a day back to {from}"
    );
    for ((app, date), names) in &before {
        assert_eq!(names, &["hist-history.parquet"], "{app}/{date}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_of_history_load_in_six_requests_a_target_into_a_file_a_day() {
    let dir = tempfile::tempdir().unwrap();
    thirty_days_on_day_one(Place::local(dir.path()), dir.path(), 5).await;
    let gaps = dir.path().join("data/_state/gaps/hist.jsonl");
    assert!(!gaps.exists(), "no gap ledger");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_days_of_history_load_on_s3() {
    needs!(Python);
    let moto = moto::Moto::start();
    moto.create_bucket("hist");
    let dir = tempfile::tempdir().unwrap();
    let place = Place {
        moto: Some(&moto),
        url: "s3://hist/rtc".to_string(),
    };
    // Every 20 minutes after the first five runs: the same loads in fewer S3 runs.
    thirty_days_on_day_one(place, dir.path(), 20).await;
    assert!(
        !moto
            .raw_keys("hist")
            .iter()
            .any(|k| k.ends_with("gaps/hist.jsonl")),
        "no gap ledger"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_list_quality_reports_history_not_loadable_and_keeps_the_real_time_data() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(dir.path(), &place, &format!("{HISTORY}{TWO_APPS}"));
    let pipeline = load(&cfg);
    let now = t0();
    let (code, s, err) = run_at(&place, &cfg, now, Some(OfflineFault::Denied)).await;
    // As for recovery: a refusal exits 5, and nothing else is sent.
    assert_eq!(code, 5, "{err}");
    assert_eq!(s["gaps_recorded"], 0);
    assert_eq!(
        (
            n(&s, "history_requests"),
            n(&s, "history_recovered"),
            n(&s, "recovery_failed")
        ),
        (1, 0, 1)
    );
    assert_eq!(n(&s, "history_owed"), 6 * pipeline.targets.len() as u64);
    let error = s["errors"][0].as_str().unwrap();
    assert!(
        error.contains(": ListQuality history [") && error.contains("AccessDenied"),
        "{error}"
    );
    assert!(err.contains("history is not loaded"), "{err}");
    let mut want = realtime(&pipeline, first_horizon(now), now);
    want.sort();
    assert_exact(&place.rows().await, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_and_a_later_outage_are_each_recovered_once() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(dir.path(), &place, &format!("{HISTORY}{TWO_APPS}"));
    let pipeline = load(&cfg);
    let since = first_horizon(t0());
    // The old part of history in five runs; then the API is out for three hours.
    let mut times: Vec<_> = (0..5).map(|i| t0() + TimeDelta::minutes(5 * i)).collect();
    let before_outage = times[4];
    let after_outage = before_outage + TimeDelta::hours(3);
    times.push(after_outage);
    for &now in &times {
        let (code, _, err) = run_at(&place, &cfg, now, None).await;
        assert_eq!(code, 0, "{now}: {err}");
    }
    // Twelve hours later: the gaps first (three, one a target), then the young history.
    let late = after_outage + TimeDelta::hours(9);
    let (code, s, err) = run_at(&place, &cfg, late, None).await;
    assert_eq!(code, 0, "{err}");
    // The 9-hour jump is recorded too; only the 3-hour gaps are due.
    assert_eq!(s["gaps_recorded"], 3);
    assert_eq!(
        (n(&s, "gaps_recovered"), n(&s, "history_requests")),
        (3, 0),
        "the cap goes to the gaps first"
    );
    let (code, s, err) = run_at(&place, &cfg, late, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        (n(&s, "gaps_recovered"), n(&s, "history_recovered")),
        (0, 3)
    );
    let (code, s, err) = run_at(&place, &cfg, late, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&s, "recovery_requests"), 0);

    let settled = |now| Window::at(now, pipeline.sink.slot).settled_end;
    let horizon = |now| Window::at(now, pipeline.sink.slot).horizon;
    let mut want = Vec::new();
    for t in pipeline.targets.iter() {
        want.extend(expected_for(t, since, settled(before_outage), late));
        want.extend(expected_for(
            t,
            horizon(after_outage),
            settled(after_outage),
            late,
        ));
        want.extend(expected_for(t, horizon(late), settled(late), late));
        want.extend(expected_recovered(
            t,
            settled(before_outage),
            horizon(after_outage),
            late,
        ));
        want.extend(expected_recovered(t, edge(times[4]), since, late));
    }
    want.sort();
    assert_exact(&place.rows().await, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_from_before_history_loads_it_up_to_its_oldest_slot_file() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(
        dir.path(),
        &place,
        &format!("[recovery]\nrequests_per_second = 50.0\n{TWO_APPS}"),
    );
    let pipeline = load(&cfg);
    let (code, _, err) = run_at(&place, &cfg, t0(), None).await;
    assert_eq!(code, 0, "{err}");
    // A state as an older build wrote it: no `since`.
    let state_path = dir.path().join("data/_state/hist.json");
    let mut state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    for t in state["targets"].as_object_mut().unwrap().values_mut() {
        assert!(t.as_object_mut().unwrap().remove("since").is_some());
    }
    state["schema_version"] = 1.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    // History switched on: it ends at the oldest slot file, 11:00.
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        text.replace("[recovery]\n", "[recovery]\nhistory = \"12h\"\n"),
    )
    .unwrap();
    let oldest = at("2026-11-25T11:00:00Z");
    let later = t0() + TimeDelta::minutes(30);
    let (code, s, err) = run_at(&place, &cfg, later, None).await;
    assert_eq!(code, 0, "{err}");
    // 12 hours before 11:00: 3.5 hours old enough now, one request a target.
    assert_eq!(n(&s, "history_recovered"), 3, "{s}");
    let state: Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    for t in state["targets"].as_object().unwrap().values() {
        assert_eq!(t["since"], "2026-11-25T11:00:00Z", "{state}");
    }
    assert_eq!(state["schema_version"], 4);
    let young = young_from(oldest);
    let mut want = realtime(&pipeline, first_horizon(t0()), later);
    want.extend(five_minute(
        &pipeline,
        oldest - TimeDelta::hours(12),
        young,
        later,
    ));
    want.sort();
    assert_exact(&place.rows().await, &want);
}

const KILLS: usize = 10;
const TRIES: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_during_the_history_load_then_a_rerun_gives_one_copy() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(
        dir.path(),
        &place,
        &format!("[recovery]\nrequests_per_second = 5.0\nhistory = \"30d\"\n{TWO_APPS}"),
    );
    let pipeline = load(&cfg);
    let now = t0();
    let emu = emulator_with(EmulatorConfig {
        now: Some(now),
        requests_per_second: None,
        offline_requests_per_second: None,
        latency: Duration::from_millis(60),
        ..EmulatorConfig::default()
    })
    .await;
    let ledger = dir.path().join("data/_state/gaps/hist.recovered.jsonl");
    let args = run_args(&cfg, now, &["--endpoint", &emu.url()]);
    // Kill delays sweep the run: 0, 150 ms, 300 ms, … until a run finishes by itself. A
    // kill is mid-load after an answer came back but before all 15 ranges were recorded.
    let recorded = || {
        std::fs::read_to_string(&ledger)
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let Sweep {
        kills,
        mid: mid_load,
        ..
    } = kill_sweep(
        &args,
        &place.env(),
        Duration::from_millis(150),
        (KILLS, TRIES),
        || emu.stats().offline_answers,
        |answered| emu.stats().offline_answers > answered && recorded() < 15,
    )
    .await;
    assert!(kills >= 4, "only {kills} kills");
    assert!(mid_load >= 2, "only {mid_load} of {kills} kills mid-load");
    let out = rtcq_async_env(args.clone(), place.env()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        n(&s, "history_owed"),
        pipeline.targets.len() as u64,
        "the young parts wait"
    );
    // Each range on record once, and each point in the dataset once.
    let text = std::fs::read_to_string(&ledger).unwrap();
    let mut ranges: Vec<(String, String)> = text
        .lines()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap();
            assert_eq!(r["history"], true);
            (r["target"].to_string(), r["end"].to_string())
        })
        .collect();
    let all = ranges.len();
    ranges.sort();
    ranges.dedup();
    assert_eq!((all, ranges.len()), (15, 15));
    let since = first_horizon(now);
    let mut want = realtime(&pipeline, since, now);
    want.extend(five_minute(&pipeline, edge(now), young_from(since), now));
    want.sort();
    assert_exact(&place.rows().await, &want);
}

/// Rooms found by discovery: the first scan reaches back the history's 2 days (not
/// only the usual 24 hours), and each `live-*` room gets history only inside its calls
/// before its first horizon, each call once it is old enough, nothing between calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovered_rooms_get_history_only_inside_their_calls() {
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(
        dir.path(),
        &place,
        "[recovery]\nrequests_per_second = 50.0\nhistory = \"2d\"\nmax_requests_per_run = 1000\n\
         [[targets]]\napp_id = \"app-d\"\nindicators = [\"stall_rate\"]\nrooms = \"active\"\nroom_match = \"live-*\"\n",
    );
    let times = [t0(), t0() + TimeDelta::minutes(5)];
    let mut asked = 0;
    for &now in &times {
        let (code, s, err) = run_at(&place, &cfg, now, None).await;
        assert_eq!(code, 0, "{now}: {err}");
        assert_eq!(s["gaps_recorded"], 0);
        asked += n(&s, "history_recovered");
    }
    let (code, s, err) = run_at(&place, &cfg, times[1], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&s, "recovery_requests"), 0, "nothing asked twice");

    let since = first_horizon(times[0]);
    let from = since - TimeDelta::days(2);
    let last = times[1];
    let ready_before = last - TimeDelta::minutes(8 * 60 + 30);
    let mut want = Vec::new();
    let mut spans_owed = 0;
    for k in (0..rtcq_emulator::MODEL_ROOMS).step_by(2) {
        let room = rtcq_emulator::model_room(k);
        let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> =
            // The calls the first scan lists: created since the history's start, less
            // the horizon's hour (one running from before is not known).
            rtcq_emulator::created_in("app-d", times[0] - TimeDelta::days(2) - TimeDelta::hours(1), since)
                .into_iter()
                .filter(|c| c.room_id == room)
                .map(|c| (c.created.max(from), c.destroyed.min(since)))
                .filter(|(s, e)| s < e)
                .collect();
        spans.sort();
        let mut merged: Vec<(DateTime<Utc>, DateTime<Utc>)> = Vec::new();
        for (s, e) in spans {
            match merged.last_mut() {
                Some(l) if s <= l.1 => l.1 = l.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        let target = stall_room_target("app-d", &room);
        for (s, e) in merged.into_iter().filter(|(_, e)| *e <= ready_before) {
            spans_owed += 1;
            want.extend(expected_recovered(&target, s, e, last));
        }
    }
    assert_eq!(asked, spans_owed, "one request a call");
    assert!(spans_owed > 20, "{spans_owed}");
    // Calls more than a day before the first run: found only by the longer scan.
    assert!(
        want.iter()
            .any(|k| k.5 < (since - TimeDelta::hours(30)).timestamp_micros())
    );
    want.sort();
    let got: Vec<Key> = place
        .rows()
        .await
        .into_iter()
        .filter(|k| k.8 == 300)
        .collect();
    assert_exact(&got, &want);
}

/// History files are read by the same DuckDB and pyarrow queries as the rest: a day's
/// history file and that day's slot files side by side, each row once, its `date`
/// partition the UTC date of its timestamp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_history_files_like_any_other() {
    needs!(Python);
    let dir = tempfile::tempdir().unwrap();
    let place = Place::local(dir.path());
    let cfg = pipeline_in(
        dir.path(),
        &place,
        &format!("[recovery]\nrequests_per_second = 50.0\nhistory = \"12h\"\n{TWO_APPS}"),
    );
    let pipeline = load(&cfg);
    let now = t0();
    let (code, s, err) = run_at(&place, &cfg, now, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(n(&s, "history_recovered"), 3);
    let since = first_horizon(now);
    // From 23:00:30 the day before to 02:30: history files on both dates.
    let mut want = realtime(&pipeline, since, now);
    want.extend(five_minute(
        &pipeline,
        since - TimeDelta::hours(12),
        young_from(since),
        now,
    ));
    want.sort();
    let files = place.files().await;
    for f in [
        "app_id=app-a/date=2026-11-24/hist-history.parquet",
        "app_id=app-a/date=2026-11-25/hist-history.parquet",
        "app_id=app-b/date=2026-11-25/hist-1100.parquet",
    ] {
        assert!(files.iter().any(|x| x == f), "{f} in {files:?}");
    }
    let seen = py_json("read_dataset.py", &[&place.url], &[]);
    for reader in ["duckdb", "pyarrow"] {
        let rows = seen[reader]["rows"].as_array().unwrap();
        let mut got = reader_rows(&seen, reader);
        got.sort();
        assert_exact(&got, &want);
        for r in rows {
            let ts = DateTime::from_timestamp_micros(r[7].as_i64().unwrap()).unwrap();
            assert_eq!(
                r[1].as_str().unwrap(),
                ts.format("%Y-%m-%d").to_string(),
                "{reader}"
            );
        }
    }
}
