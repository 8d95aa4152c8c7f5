//! Time the job can trust: windows and cursors follow the API's clock (the `Date` of its
//! answers), whichever way the job's clock is off; `--now` never looks ahead; a host
//! that does not answer stops the run early with one named error.

use crate::kit::*;
use chrono::{DateTime, TimeDelta, Utc};
use rtcq::plan::Window;
use rtcq_emulator::EmulatorConfig;

/// One target of each kind is enough: the windows are what is checked.
const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["join_room_success_rate", "stall_rate"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = ["room-1"]
"#;

/// Runs every 5 minutes of the API's clock for half an hour with the job's clock `skew`
/// off it, against a `strict` API (refuses an `EndTime` after its now) or a lenient
/// one; checks every run exits 0, writes nothing the API had not settled and reports
/// the offset; then one run on the right clock. Returns the dataset and what it should
/// be: everything from the first run's horizon (on the API's clock) to the last
/// settled end.
async fn skewed_day(skew: TimeDelta, strict: bool) -> (Vec<Key>, Vec<Key>) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "skew", "http://127.0.0.1:9", 50.0, TARGETS);
    let pipeline = load(&cfg);
    let slot = pipeline.sink.slot;
    let api_times: Vec<DateTime<Utc>> = (0..=6).map(|i| t0() + TimeDelta::minutes(5 * i)).collect();
    for (i, api_now) in api_times.iter().enumerate() {
        let last = i + 1 == api_times.len();
        let job_now = if last { *api_now } else { *api_now + skew };
        let emu = emulator_with(EmulatorConfig {
            now: Some(*api_now),
            requests_per_second: None,
            refuse_future_end: strict,
            ..EmulatorConfig::default()
        })
        .await;
        let out = rtcq_async(run_args(&cfg, job_now, &["--endpoint", &emu.url()])).await;
        emu.shutdown().await;
        assert_eq!(
            out.code, 0,
            "run {i} (job at {job_now}, API at {api_now}): {}",
            out.stderr
        );
        let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(summary["requests_failed"], 0, "run {i}: {}", out.stderr);
        let offset = summary["api_clock_offset_seconds"].as_f64().unwrap();
        let want = if last {
            0.0
        } else {
            -skew.num_seconds() as f64
        };
        assert!(
            (offset - want).abs() < 2.0,
            "run {i}: offset {offset}, want {want}"
        );
        if !last && skew.abs() > TimeDelta::seconds(30) {
            assert_eq!(
                out.stderr.matches("the API's clock is").count(),
                1,
                "run {i}: the offset is warned about once: {}",
                out.stderr
            );
        }
        // `status` shows the offset the last run measured (none within 2 s).
        let cfg_s = cfg.display().to_string();
        let status = rtcq(&["status", "--config", &cfg_s, "--json"]);
        assert_eq!(status.code, 0, "{}", status.stderr);
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        match status["api_clock_offset_seconds"].as_f64() {
            Some(seen) => assert!(!last && (seen - want).abs() < 2.0, "run {i}: status {seen}"),
            None => assert!(last, "run {i}: status shows no offset"),
        }
        let settled = Window::at(*api_now, slot).settled_end.timestamp_micros();
        let past: Vec<_> = read_dataset(&dir.path().join("data"))
            .into_iter()
            .filter(|k| k.5 >= settled)
            .collect();
        assert!(
            past.is_empty(),
            "run {i} wrote rows past the API's settled end: {past:?}"
        );
    }
    let from = Window::at(api_times[0], slot).horizon;
    let last = *api_times.last().unwrap();
    let to = Window::at(last, slot).settled_end;
    let mut want: Vec<Key> = pipeline
        .targets
        .iter()
        .flat_map(|t| expected_for(t, from, to, last))
        .collect();
    want.sort();
    (read_dataset(&dir.path().join("data")), want)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_clock_three_minutes_ahead_of_a_strict_api_asks_nothing_it_refuses_and_loses_nothing()
{
    let (got, want) = skewed_day(TimeDelta::minutes(3), true).await;
    assert_exact(&got, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_clock_three_minutes_behind_a_strict_api_starts_inside_its_horizon_and_loses_nothing()
{
    let (got, want) = skewed_day(TimeDelta::minutes(-3), true).await;
    assert_exact(&got, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_clock_ten_minutes_ahead_of_a_lenient_api_moves_no_cursor_over_unsettled_time() {
    let (got, want) = skewed_day(TimeDelta::minutes(10), false).await;
    assert_exact(&got, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_a_now_later_than_the_wall_clock_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_at(t0(), None).await;
    let cfg = write_pipeline(dir.path(), "ahead", &emu.url(), 50.0, TARGETS);
    let out = rtcq_async(run_args(&cfg, t0(), &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = dir.path().join("data");
    let before = snapshot(&root);
    let requests = emu.requests();

    let ahead = Utc::now() + TimeDelta::days(1);
    let out = rtcq_async(run_args(&cfg, ahead, &[])).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("--now ") && out.stderr.contains("is later than this host's clock"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(&root), before, "the sink is byte-identical");
    assert_eq!(emu.requests(), requests, "nothing was asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_port_stops_the_run_early_with_one_error_naming_the_host() {
    // A port nothing listens on: bound, then closed.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let host = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    // Forty user targets: far more requests than it takes to see nothing answers.
    let users: Vec<String> = (0..40).map(|i| format!("\"u{i}\"")).collect();
    let targets = format!(
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\nrooms = [\"room-1\"]\nusers = [{}]\n",
        users.join(", ")
    );
    let cfg = write_pipeline(
        dir.path(),
        "closed",
        &format!("http://{host}"),
        2.0,
        &targets,
    );
    let out = rtcq_async_env(run_args(&cfg, t0(), &[]), fast_retries()).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let errors = summary["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors[0].as_str().unwrap();
    assert!(
        error.starts_with(&format!(
            "no answer from {host}: the connection was refused"
        )),
        "{error}"
    );
    assert!(
        error.ends_with("stopped after 6 requests in a row got no answer"),
        "{error}"
    );
    // Logs are JSON lines here (stderr is not a terminal): one error, and no warning
    // per failed request or retry.
    let level = |l: &str| {
        out.stderr
            .lines()
            .filter(|line| line.contains(&format!("\"level\":\"{l}\"")))
            .count()
    };
    assert_eq!(level("ERROR"), 1, "{}", out.stderr);
    assert_eq!(level("WARN"), 0, "{}", out.stderr);
    let planned = summary["requests_planned"].as_u64().unwrap();
    assert!(planned >= 40, "{planned}");
    assert!(
        summary["targets_deferred"].as_u64().unwrap() > planned / 2,
        "most requests were never sent: {summary}"
    );
    assert!(
        !dir.path().join("data").join("app_id=app-a").exists(),
        "no data was written"
    );
}
