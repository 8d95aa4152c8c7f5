//! A seeded soak of scheduled runs: listed targets and room discovery (long calls with
//! short ones beginning and ending inside them), runs every 5 simulated minutes with
//! budgets, kills, injected server errors and truncated bodies, an outage of the API,
//! then runs every 30 minutes until recovery has refilled the outage from the offline
//! API. It checks what a user would: every point the API offered landed exactly once,
//! the gap ledger holds exactly the outage's unreachable ranges (per target, a
//! discovered room only during its calls), the 5-minute rows are exactly those ranges'
//! points once, no run that was not killed or in the outage exited non-zero, and no
//! request was rejected. It prints one score line. With `SOAK_HISTORY_HOURS` the
//! pipeline also loads that much history (`[recovery] history`), and the 5-minute rows
//! must be exactly the outage's and the history's points, once.
//!
//! The short version runs in the suite; `scripts/soak.sh` runs a whole day (and on S3).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq::domain::{ProductType, Target};
use rtcq::plan::Window;
use rtcq_emulator::{EmulatorConfig, FaultKind, Faults, OfflineFault};

const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate", "join_room_success_rate"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-a"
indicators = ["network_trans_delay"]
rooms = ["room-1"]
users = ["u1"]

[[targets]]
app_id = "app-b"
indicators = ["stall_rate"]
rooms = "active"
"#;

/// The pipeline's name, in its state and ledger files.
const NAME: &str = "soak";

/// The listed targets of [`TARGETS`].
fn listed() -> Vec<Target> {
    let t = |pt, room: Option<&str>, user: Option<&str>, ind: &[&str]| Target {
        app_id: "app-a".into(),
        product_type: pt,
        room_id: room.map(str::to_string),
        user_id: user.map(str::to_string),
        indicators: ind.iter().map(|s| s.to_string()).collect::<Vec<_>>().into(),
        max_lag: None,
    };
    let both = ["join_room_success_rate", "stall_rate"];
    vec![
        t(ProductType::Native, None, None, &both),
        t(ProductType::Web, None, None, &both),
        t(
            ProductType::Native,
            Some("room-1"),
            Some("u1"),
            &["network_trans_delay"],
        ),
    ]
}

/// What a soak does.
struct Soak {
    seed: u64,
    /// Runs every 5 minutes.
    runs: usize,
    /// The runs, among those, during which the API answers nothing but errors.
    outage: std::ops::Range<usize>,
    /// Where the dataset goes: a local folder, or a bucket on moto.
    s3: Option<moto::Moto>,
    /// `[recovery] history` in hours: the listed targets and the rooms of the first
    /// scan also load that much history, checked as exactly as the outage's recovery.
    history_hours: Option<i64>,
}

/// How one scheduled run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Exit(i32),
    Killed,
}

/// One scheduled run.
struct RunRecord {
    now: DateTime<Utc>,
    in_outage: bool,
    outcome: Outcome,
    /// The summary's `errors`, when it printed one.
    errors: usize,
}

/// The tallies behind the score line.
#[derive(Debug, Default)]
struct Score {
    runs: usize,
    killed: usize,
    budgeted: usize,
    points: usize,
    points_expected: usize,
    gap_ranges: usize,
    gap_ranges_expected: usize,
    /// Ranges on record that no outage lost.
    false_gaps: usize,
    recovered_points: usize,
    recovered_expected: usize,
    false_exits: usize,
    rejected: u64,
    offline_requests: u64,
}

impl Score {
    fn line(&self, seed: u64) -> String {
        let ok = self.points == self.points_expected
            && self.gap_ranges == self.gap_ranges_expected
            && self.false_gaps == 0
            && self.recovered_points == self.recovered_expected
            && self.false_exits == 0
            && self.rejected == 0;
        format!(
            "soak seed={seed} runs={} killed={} budgeted={}: 30 s points {}/{} once, gap ranges {}/{} exact and {} false, 5-min points {}/{} once ({} ListQuality requests), false non-zero exits {}, rejected requests {}: {}",
            self.runs,
            self.killed,
            self.budgeted,
            self.points,
            self.points_expected,
            self.gap_ranges,
            self.gap_ranges_expected,
            self.false_gaps,
            self.recovered_points,
            self.recovered_expected,
            self.offline_requests,
            self.false_exits,
            self.rejected,
            if ok { "PASS 100%" } else { "FAIL" }
        )
    }
}

/// The run times: every 5 minutes for `runs`, then every 30 minutes until the outage is
/// 9 hours old (its gaps due at the offline API), and one more.
fn schedule(soak: &Soak) -> Vec<(DateTime<Utc>, &'static str)> {
    let mut times: Vec<(DateTime<Utc>, &str)> = (0..soak.runs)
        .map(|i| (t0() + TimeDelta::minutes(5 * i as i64), "5m"))
        .collect();
    let outage_end = t0() + TimeDelta::minutes(5 * soak.outage.end as i64);
    let mut t = times.last().map_or(t0(), |l| l.0);
    while t < outage_end + TimeDelta::minutes(9 * 60 + 30) {
        t += TimeDelta::minutes(30);
        times.push((t, "30m"));
    }
    times
}

/// The faults of a run's emulator: the soak's random ones, or an API answering only
/// errors during the outage.
fn faults(seed: u64, in_outage: bool) -> Faults {
    if in_outage {
        return Faults {
            seed,
            room_info: Some(FaultKind::Unavailable),
            offline: Some(OfflineFault::Kind(FaultKind::Unavailable)),
            ..Faults::default()
        }
        .with(FaultKind::Unavailable, 1.0);
    }
    Faults {
        seed,
        ..Faults::default()
    }
    .with(FaultKind::InternalError, 0.05)
    .with(FaultKind::Truncate, 0.03)
}

/// The environment of every run: the store's, and retries quick enough for a test.
fn env(soak: &Soak) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("RTCQ_RETRY_MAX", "5"),
        ("RTCQ_RETRY_MIN_MS", "5"),
        ("RTCQ_RETRY_MAX_MS", "20"),
        ("RTCQ_REQUEST_TIMEOUT_MS", "2000"),
        ("RUST_LOG", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(m) = &soak.s3 {
        env.extend(m.env());
        // A killed run leaves its lease object: short-lived, waited out before the next.
        env.push(("RTCQ_LEASE_TTL_SECONDS".into(), "0.3".into()));
    }
    env
}

/// Starts `args` and kills it after `after`; `None` if it ended first (its exit code).
fn run_and_kill(args: &[String], env: &[(String, String)], after: Duration) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcq"))
        .args(args)
        .env("VOLC_ACCESSKEY", AK)
        .env("VOLC_SECRETKEY", SK)
        .env_remove("VOLC_SESSION_TOKEN")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + after;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Outcome::Exit(status.code().unwrap_or(-1));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    match child.wait().unwrap().code() {
        Some(code) => Outcome::Exit(code),
        None => Outcome::Killed,
    }
}

/// Runs the schedule; returns each run's record.
async fn drive(soak: &Soak, cfg: &Path, slow_cfg: &Path) -> (Vec<RunRecord>, Score, u64) {
    let mut rng = Rng(soak.seed);
    let env = env(soak);
    let mut records = Vec::new();
    let mut score = Score::default();
    let mut rejected = 0;
    let mut offline = 0;
    let times = schedule(soak);
    for (i, (now, every)) in times.iter().enumerate() {
        let in_outage = soak.outage.contains(&i);
        // The first run, the one before the outage, the one after it and the last one
        // finish and are not budgeted (they bound what is owed: a target is owed from
        // the horizon of its first request, and the score counts up to the last run's
        // settled end); so do the runs every 30 minutes.
        let bounding =
            i == 0 || i + 1 == soak.outage.start || i == soak.outage.end || i + 1 == times.len();
        let free = !in_outage && !bounding && *every == "5m";
        let kill = free && (i % 8 == 5 || rng.chance(0.1));
        let budget = free && !kill && (i % 8 == 2 || rng.chance(0.15));
        let emu = emulator_with(EmulatorConfig {
            now: Some(*now),
            requests_per_second: None,
            offline_requests_per_second: None,
            faults: faults(rng.next(), in_outage),
            ..EmulatorConfig::default()
        })
        .await;
        let file = if budget { slow_cfg } else { cfg };
        let mut args = run_args(file, *now, &["--endpoint", &emu.url(), "--schedule", every]);
        if budget {
            args.extend(["--max-duration".to_string(), "1s".to_string()]);
            score.budgeted += 1;
        }
        if soak.s3.is_some() {
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
        let (outcome, errors) = if kill {
            let after = Duration::from_millis(20 + rng.next() % 400);
            let (a, e) = (args.clone(), env.clone());
            let outcome = tokio::task::spawn_blocking(move || run_and_kill(&a, &e, after))
                .await
                .unwrap();
            (outcome, 0)
        } else {
            let out = rtcq_async_env(args, env.clone()).await;
            let errors = out
                .stdout
                .lines()
                .last()
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .and_then(|s| s["errors"].as_array().map(Vec::len))
                .unwrap_or(0);
            if out.code != 0 && !in_outage {
                eprintln!("run {i} at {now} exited {}: {}", out.code, out.stderr);
            }
            (Outcome::Exit(out.code), errors)
        };
        let stats = emu.shutdown().await;
        if !in_outage {
            rejected += (400..500)
                .filter(|s| *s != 429)
                .map(|s| stats.status(s))
                .sum::<u64>();
            offline += stats.offline_answers;
        }
        if std::env::var("SOAK_VERBOSE").is_ok() {
            eprintln!(
                "run {i} at {now}: {outcome:?} kill={kill} budget={budget} outage={in_outage} offline={} requests={}",
                stats.offline_answers, stats.requests
            );
        }
        if outcome == Outcome::Killed {
            score.killed += 1;
        }
        records.push(RunRecord {
            now: *now,
            in_outage,
            outcome,
            errors,
        });
    }
    score.runs = records.len();
    score.offline_requests = offline;
    (records, score, rejected)
}

/// The buckets a room's calls cover inside `[from, to)`, merged, on the 30 s grid.
fn call_spans(room: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(i64, i64)> {
    let calls = rtcq_emulator::created_in("app-b", from - TimeDelta::days(1), to);
    let mut spans: Vec<(i64, i64)> = calls
        .iter()
        .filter(|c| c.room_id == room)
        .map(|c| {
            let s = c.created.timestamp().div_euclid(30) * 30;
            let e = (c.destroyed.timestamp() + 29).div_euclid(30) * 30;
            (s.max(from.timestamp()), e.min(to.timestamp()))
        })
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort();
    merge(spans)
}

/// A room's history as the first scan found it: the calls created since `scanned_from`,
/// clipped to `[from, to)` (no rounding: history asks exactly a call's time), merged.
fn history_spans(
    room: &str,
    scanned_from: DateTime<Utc>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let spans: Vec<(i64, i64)> = rtcq_emulator::created_in("app-b", scanned_from, to)
        .iter()
        .filter(|c| c.room_id == room)
        .map(|c| {
            (
                c.created.max(from).timestamp(),
                c.destroyed.min(to).timestamp(),
            )
        })
        .filter(|(s, e)| s < e)
        .collect();
    merge(spans)
        .into_iter()
        .map(|(s, e)| {
            (
                DateTime::from_timestamp(s, 0).unwrap(),
                DateTime::from_timestamp(e, 0).unwrap(),
            )
        })
        .collect()
}

fn merge(mut spans: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    spans.sort();
    let mut out: Vec<(i64, i64)> = Vec::new();
    for (s, e) in spans {
        match out.last_mut() {
            Some(l) if s <= l.1 => l.1 = l.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// The gap ledger, per target key: its ranges merged, as Unix seconds.
fn ledger(lines: &str) -> BTreeMap<String, Vec<(i64, i64)>> {
    let mut by_target: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for line in lines.lines().filter(|l| !l.trim().is_empty()) {
        let g: serde_json::Value = serde_json::from_str(line).unwrap();
        let t = |k: &str| at(g[k].as_str().unwrap()).timestamp();
        by_target
            .entry(g["target"].as_str().unwrap().to_string())
            .or_default()
            .push((t("start"), t("end")));
    }
    by_target.into_iter().map(|(k, v)| (k, merge(v))).collect()
}

/// Runs `soak` and checks it; returns the score.
async fn run_soak(soak: Soak) -> Score {
    let dir = tempfile::tempdir().unwrap();
    if std::env::var("SOAK_VERBOSE").is_ok() {
        eprintln!("soak folder {}", dir.path().display());
    }
    let url = match &soak.s3 {
        Some(m) => {
            m.create_bucket("soak");
            "s3://soak/data".to_string()
        }
        None => dir.path().join("data").display().to_string(),
    };
    let tables = match soak.history_hours {
        Some(h) => format!("[recovery]\nhistory = \"{h}h\"\nrequests_per_second = 20.0\n{TARGETS}"),
        None => TARGETS.to_string(),
    };
    let cfg = write_pipeline_to(dir.path(), NAME, "http://127.0.0.1:9", 50.0, &url, &tables);
    // The same pipeline at 5 requests a second: with `--max-duration 1s`, a run that
    // sends about half of what is owed and leaves the rest to the next runs.
    let slow = dir.path().join("slow");
    std::fs::create_dir_all(&slow).unwrap();
    let slow_cfg = write_pipeline_to(&slow, NAME, "http://127.0.0.1:9", 5.0, &url, &tables);
    let (records, mut score, rejected) = drive(&soak, &cfg, &slow_cfg).await;
    score.rejected = rejected;

    // Where the outage left what no run could reach: from the settled end of the last
    // run before it to the horizon of the first run after it.
    let slot = TimeDelta::minutes(5);
    let pre = Window::at(records[soak.outage.start - 1].now, slot);
    let post = Window::at(records[soak.outage.end].now, slot);
    let first = Window::at(records[0].now, slot);
    let last = records.last().unwrap();
    let end = Window::at(last.now, slot).settled_end;
    let lost = (pre.settled_end, post.horizon);
    let reachable = [(first.horizon, pre.settled_end), (post.horizon, end)];

    // Every run not killed exits 0, except in the outage, where it exits 3 naming what
    // failed.
    for (i, r) in records.iter().enumerate() {
        let Outcome::Exit(code) = r.outcome else {
            continue;
        };
        let fine = if r.in_outage {
            code == 3 && r.errors > 0
        } else {
            code == 0
        };
        if !fine {
            eprintln!("run {i} at {}: exit {code}", r.now);
            score.false_exits += 1;
        }
    }

    // The expected 30 s points, gaps and 5-minute points, per target.
    let mut expected_points = Vec::new();
    let mut expected_gaps: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    let mut expected_recovered = Vec::new();
    let lost_s = (lost.0.timestamp(), lost.1.timestamp());
    let rooms: Vec<String> = (0..rtcq_emulator::MODEL_ROOMS)
        .map(rtcq_emulator::model_room)
        .collect();
    let targets = listed().into_iter().map(|t| (t, None)).chain(
        rooms
            .iter()
            .map(|r| (stall_room_target("app-b", r), Some(r.clone()))),
    );
    for (target, room) in targets {
        for (from, to) in reachable {
            expected_points.extend(expected_for(&target, from, to, last.now));
        }
        let spans = match &room {
            None => vec![lost_s],
            Some(r) => call_spans(r, lost.0, lost.1),
        };
        for (s, e) in &spans {
            let (s, e) = (
                DateTime::from_timestamp(*s, 0).unwrap(),
                DateTime::from_timestamp(*e, 0).unwrap(),
            );
            expected_recovered.extend(crate::kit::expected_recovered(&target, s, e, last.now));
        }
        if !spans.is_empty() {
            expected_gaps.insert(target.key(), spans);
        }
        // History ends at the first horizon; a room has it only inside the calls the
        // first scan (back the history and an hour) found.
        if let Some(hours) = soak.history_hours {
            let (since, history) = (first.horizon, TimeDelta::hours(hours));
            let spans = match &room {
                None => vec![(since - history, since)],
                Some(r) => {
                    // The first scan reaches back a day, or the history and an hour.
                    let reach = (history + TimeDelta::hours(1)).max(TimeDelta::hours(24));
                    history_spans(r, records[0].now - reach, since - history, since)
                }
            };
            for (s, e) in spans {
                expected_recovered.extend(crate::kit::expected_recovered(&target, s, e, last.now));
            }
        }
    }
    expected_points.sort();
    expected_recovered.sort();

    let (got, gap_text) = match &soak.s3 {
        Some(m) => {
            let root = m.open(&url);
            let gaps = moto::get(&root, &format!("_state/gaps/{NAME}.jsonl"))
                .await
                .unwrap_or_default();
            (
                moto::read_dataset(&root).await,
                String::from_utf8(gaps).unwrap(),
            )
        }
        None => {
            let data = dir.path().join("data");
            let gaps = std::fs::read_to_string(data.join(format!("_state/gaps/{NAME}.jsonl")))
                .unwrap_or_default();
            (read_dataset(&data), gaps)
        }
    };
    let (fine, coarse): (Vec<Key>, Vec<Key>) = got.into_iter().partition(|k| k.8 == 30);
    score.points_expected = expected_points.len();
    score.points = count_exact(&fine, &expected_points);
    score.recovered_expected = expected_recovered.len();
    score.recovered_points = count_exact(&coarse, &expected_recovered);
    let got_gaps = ledger(&gap_text);
    score.gap_ranges_expected = expected_gaps.values().map(Vec::len).sum();
    score.gap_ranges = expected_gaps
        .iter()
        .map(|(k, spans)| {
            let got = got_gaps.get(k).map_or(&[][..], Vec::as_slice);
            spans.iter().filter(|s| got.contains(s)).count()
        })
        .sum();
    // Ranges on record that are not the outage's: a false gap each.
    score.false_gaps = got_gaps
        .iter()
        .map(|(k, spans)| {
            let want = expected_gaps.get(k).map_or(&[][..], Vec::as_slice);
            spans.iter().filter(|s| !want.contains(s)).count()
        })
        .sum();
    if score.false_gaps > 0 {
        let extra: Vec<_> = got_gaps
            .iter()
            .filter(|(k, v)| expected_gaps.get(*k) != Some(v))
            .collect();
        eprintln!("ledger differs: got {extra:?}\nexpected {expected_gaps:?}");
    }
    println!("{}", score.line(soak.seed));
    if std::env::var("SOAK_KEEP").is_ok() {
        std::mem::forget(dir);
    }
    score
}

/// How many of `expected` `got` holds when it holds exactly them, once each; otherwise
/// fewer (duplicates, missing and unexpected rows each count against it), with a report.
fn count_exact(got: &[Key], expected: &[Key]) -> usize {
    if got == expected {
        return expected.len();
    }
    let mut dedup = got.to_vec();
    dedup.dedup();
    let exp: std::collections::BTreeSet<&Key> = expected.iter().collect();
    let have: std::collections::BTreeSet<&Key> = dedup.iter().collect();
    let missing: Vec<_> = exp.difference(&have).take(3).collect();
    let unexpected: Vec<_> = have.difference(&exp).take(3).collect();
    eprintln!(
        "rows differ: {} got ({} duplicates), {} expected; missing {missing:?}; unexpected {unexpected:?}",
        got.len(),
        got.len() - dedup.len(),
        expected.len()
    );
    let bad =
        (got.len() - dedup.len()) + exp.difference(&have).count() + have.difference(&exp).count();
    expected.len().saturating_sub(bad.max(1))
}

fn assert_perfect(s: &Score) {
    assert_eq!(s.points, s.points_expected, "30 s points");
    assert!(s.points_expected > 1000, "{s:?}");
    assert_eq!(s.gap_ranges, s.gap_ranges_expected, "gap ranges");
    assert_eq!(s.false_gaps, 0, "false gap ranges");
    assert!(s.gap_ranges_expected > 3, "{s:?}");
    assert_eq!(s.recovered_points, s.recovered_expected, "5-minute points");
    assert!(s.recovered_expected > 100, "{s:?}");
    assert_eq!(s.false_exits, 0);
    assert_eq!(s.rejected, 0);
    assert!(s.killed > 0 && s.budgeted > 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_afternoon_of_scheduled_runs_lands_every_point_once_and_records_only_the_outage() {
    // Three hours every 5 minutes, the API down for 90 minutes of it, then every 30
    // minutes until recovery has run.
    let score = run_soak(Soak {
        seed: 23,
        runs: 36,
        outage: 10..28,
        s3: None,
        history_hours: None,
    })
    .await;
    assert_perfect(&score);
}

/// The benchmark (`scripts/soak.sh`): a day every 5 minutes with a 3-hour outage, on
/// local disk or, with `SOAK_S3=1`, on moto; `SOAK_SEED` picks the seed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a simulated day: run by scripts/soak.sh"]
async fn a_day_of_scheduled_runs() {
    let seed = std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let hours: usize = std::env::var("SOAK_HOURS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    let runs = hours * 12;
    let start = (runs / 3).max(2);
    let s3 = std::env::var("SOAK_S3").is_ok_and(|v| v == "1");
    let history_hours = std::env::var("SOAK_HISTORY_HOURS")
        .ok()
        .and_then(|s| s.parse().ok());
    let score = run_soak(Soak {
        seed,
        runs,
        outage: start..(start + 36).min(runs - 1),
        s3: s3.then(moto::Moto::start),
        history_hours,
    })
    .await;
    assert_perfect(&score);
}
