//! What a run tells the people and systems watching it: JSON logs where every line names
//! the pipeline and the run, the summary, the metrics file, the push to a real
//! Pushgateway, and the schedule check of `plan` and `run`.

use std::net::TcpListener;

use crate::kit::*;

fn arg(s: impl ToString) -> String {
    s.to_string()
}

/// Parses every stderr line as a JSON object.
fn json_lines(stderr: &str) -> Vec<serde_json::Value> {
    stderr
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            v
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_pipeline_and_run_on_every_line_and_metrics_match_the_summary() {
    let now = t0();
    // The emulator allows 2 requests/second, the pipeline asks for 20: the throttled
    // answers are retried, and those lines (at debug level) come from the spawned fetch
    // tasks.
    let emu = emulator_at(now, Some(2.0)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "logs", &emu.url(), 20.0, MIXED_TARGETS);
    let metrics = dir.path().join("rtcq_logs.prom");
    let metrics_path = metrics.display().to_string();
    let out = rtcq_async_env(
        run_args(
            &cfg,
            now,
            &["--log-format", "json", "--metrics-file", &metrics_path],
        ),
        vec![("RUST_LOG".into(), "info,rtcq::run::fetch=debug".into())],
    )
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    // `--summary -` is one line on stdout, the last one (what Airflow pushes to XCom).
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let run_id = summary["run_id"].as_str().unwrap();
    assert!(summary["requests_throttled"].as_u64().unwrap() > 0);
    assert!(summary["requests_retried"].as_u64().unwrap() > 0);

    let lines = json_lines(&out.stderr);
    assert!(lines.len() >= 3, "{}", out.stderr);
    for l in &lines {
        assert_eq!(l["pipeline"], "logs", "{l}");
        assert_eq!(l["run_id"], run_id, "{l}");
        for key in ["timestamp", "level", "message", "target"] {
            assert!(l.get(key).is_some(), "{key} missing: {l}");
        }
    }
    let from = |target: &str, message: &str| {
        lines
            .iter()
            .any(|l| l["target"] == target && l["message"].as_str().unwrap().contains(message))
    };
    assert!(from("rtcq::run::fetch", "retrying"), "{}", out.stderr);
    assert!(from("rtcq::run::prepare", "planned"), "{}", out.stderr);
    let finished = lines
        .iter()
        .find(|l| l["message"] == "run finished")
        .expect("a run finished line");
    assert_eq!(finished["target"], "rtcq::cli::run");
    assert_eq!(finished["rows"], summary["rows_written"]);
    assert!(!out.stderr.contains(SK), "the secret key is in the logs");

    // The summary has what a scheduler needs.
    for key in [
        "run_id",
        "started_at",
        "finished_at",
        "targets",
        "requests_sent",
        "requests_retried",
        "requests_throttled",
        "rows_written",
        "files_written",
        "slots_pending",
        "targets_served",
        "targets_deferred",
        "targets_at_risk",
        "max_lag_seconds",
        "capacity",
        "over_capacity",
        "lag",
        "gaps_recorded",
        "exit_code",
    ] {
        assert!(summary.get(key).is_some(), "{key}");
    }
    assert_eq!(summary["lag"].as_array().unwrap().len(), 11);

    // The metrics file holds the same figures.
    let text = std::fs::read_to_string(&metrics).unwrap();
    let value = |name: &str| -> f64 {
        let prefix = format!("{name}{{pipeline=\"logs\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        line[prefix.len()..].parse().unwrap()
    };
    for (metric, field) in [
        ("rtcq_rows_written", "rows_written"),
        ("rtcq_files_written", "files_written"),
        ("rtcq_requests_sent", "requests_sent"),
        ("rtcq_requests_retried", "requests_retried"),
        ("rtcq_requests_throttled", "requests_throttled"),
        ("rtcq_slots_pending", "slots_pending"),
        ("rtcq_gaps_recorded", "gaps_recorded"),
        ("rtcq_last_run_exit_code", "exit_code"),
        ("rtcq_capacity_targets", "capacity"),
        ("rtcq_targets_deferred", "targets_deferred"),
        ("rtcq_targets_at_risk", "targets_at_risk"),
        ("rtcq_max_lag_seconds", "max_lag_seconds"),
    ] {
        assert_eq!(value(metric), summary[field].as_f64().unwrap(), "{metric}");
    }
    assert!(value("rtcq_run_duration_seconds") > 0.0);
    assert!(value("rtcq_last_run_timestamp_seconds") > 1.7e9);
    // Per app, not per target: the series stay bounded however many rooms come and go.
    for line in [
        "rtcq_app_targets{pipeline=\"logs\",app_id=\"app-a\"} 10\n",
        "rtcq_app_targets{pipeline=\"logs\",app_id=\"app-b\"} 1\n",
        "rtcq_app_rooms{pipeline=\"logs\",app_id=\"app-a\"} 2\n",
        "rtcq_app_max_lag_seconds{pipeline=\"logs\",app_id=\"app-a\"} 70\n",
        "rtcq_app_targets_waiting{pipeline=\"logs\",app_id=\"app-a\"} 0\n",
    ] {
        assert!(text.contains(line), "{line}{text}");
    }
    assert!(!text.contains("rtcq_target_lag_seconds"), "{text}");

    // `status` after the run: a table sized to the targets, and the same as JSON.
    let later = (now + chrono::TimeDelta::minutes(10)).to_rfc3339();
    let cfg_s = cfg.display().to_string();
    let out = rtcq(&["status", "--config", &cfg_s, "--now", &later]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    // Ten minutes after the run every target owes [11:59, 12:09): three slots each.
    assert_eq!(
        lines[0..5],
        [
            "pipeline logs: 11 targets, 33 pending slot(s), now 2026-11-25 12:10:10",
            &format!(
                "sink {} (pipeline file {cfg_s})",
                dir.path().join("data").display()
            ),
            &format!(
                "last run: {} (run {run_id}), exit 0, {} request(s), {} row(s), 0 gap(s), 11 target(s) served, 0 deferred",
                // The summary's instant, as status writes every instant: whole seconds.
                chrono::DateTime::parse_from_rfc3339(summary["finished_at"].as_str().unwrap())
                    .unwrap()
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                summary["requests_sent"],
                summary["rows_written"],
            ),
            "capacity 68231 targets (5882 requests per 5-minute run every 5 minutes at 20 requests/second); 11 targets: each served every 5 min, worst lag 7 min",
            "most behind: 11m10s; never fetched: 0",
        ],
        "{}",
        out.stdout
    );
    assert!(lines[6].starts_with("target "), "{}", out.stdout);
    assert!(
        lines[6].ends_with("lag     pending  leaves horizon"),
        "{}",
        out.stdout
    );
    let row = lines
        .iter()
        .find(|l| l.starts_with("app=app-b product=native room=room-9 "))
        .unwrap();
    assert!(
        row.ends_with("2026-11-25 11:59:00  11m10s        3  2026-11-25 12:58:30"),
        "{row}"
    );
    assert!(
        out.stdout.ends_with("\n0 gap(s) recorded\n"),
        "{}",
        out.stdout
    );
    let out = rtcq(&["status", "--config", &cfg_s, "--now", &later, "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status["targets"].as_array().unwrap().len(), 11);
    assert_eq!(status["targets"][0]["lag_seconds"], 670);
    assert_eq!(
        status["targets"][0]["leaves_horizon"],
        "2026-11-25T12:58:30Z"
    );
    assert_eq!(status["capacity"]["capacity"], 68231);
    assert_eq!(status["max_lag_seconds"], 670);
    assert_eq!(status["last_run"]["run_id"], run_id);
    assert_eq!(status["last_run"]["exit_code"], 0);
    assert_eq!(status["last_run"]["rows_written"], summary["rows_written"]);
}

#[test]
fn a_run_that_cannot_start_still_writes_its_summary_and_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "nocreds",
        "http://127.0.0.1:9",
        2.0,
        "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\n",
    );
    let metrics = dir.path().join("m.prom");
    let summary = dir.path().join("summary.json");
    let out = rtcq_env(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--summary",
            summary.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        &[("VOLC_SECRETKEY", "")],
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    for l in json_lines(&out.stderr) {
        assert_eq!(l["pipeline"], "nocreds", "{l}");
        assert!(l["run_id"].is_string(), "{l}");
    }
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["exit_code"], 2);
    assert_eq!(s["pipeline"], "nocreds");
    assert!(
        s["errors"][0]
            .as_str()
            .unwrap()
            .contains("VOLC_SECRETKEY is not set")
    );
    let text = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        text.contains("rtcq_last_run_exit_code{pipeline=\"nocreds\"} 2\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_the_run_figures_to_a_real_pushgateway() {
    needs!(Pushgateway);
    let pg = Pushgateway::start();
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "pushed",
        &emu.url(),
        50.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\nrooms = [\"r\\\"1\"]\n",
    );
    let out = rtcq_async(run_args(&cfg, now, &["--pushgateway", &pg.url()])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let rows = summary["rows_written"].as_u64().unwrap();
    assert!(rows > 0);
    let lines = json_lines(&out.stderr);
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "metrics pushed to the Pushgateway"),
        "{}",
        out.stderr
    );

    // The Pushgateway adds the grouping labels (job, pipeline) and an empty instance.
    let body = pg.metrics();
    let labels = "instance=\"\",job=\"rtcq\",pipeline=\"pushed\"";
    for want in [
        format!("rtcq_rows_written{{{labels}}} {rows}"),
        format!("rtcq_requests_sent{{{labels}}} 1"),
        format!("rtcq_last_run_exit_code{{{labels}}} 0"),
        format!("rtcq_files_written{{{labels}}} 12"),
        "# TYPE rtcq_app_max_lag_seconds gauge".to_string(),
    ] {
        assert!(body.contains(&want), "{want} not in:\n{body}");
    }
    assert!(
        body.contains("push_time_seconds{instance=\"\",job=\"rtcq\",pipeline=\"pushed\"}"),
        "{body}"
    );

    // An unreachable Pushgateway is logged; the run's exit code stands.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = rtcq_async(vec![
        arg("run"),
        arg("--config"),
        arg(cfg.display()),
        arg("--now"),
        arg(now.to_rfc3339()),
        arg("--pushgateway"),
        format!("http://user:pushsecret@127.0.0.1:{port}"),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("metrics not pushed"), "{}", out.stderr);
    assert!(!out.stderr.contains("pushsecret"), "{}", out.stderr);
}

/// 900 targets at 0.2 requests/second: 58 requests per 5-minute run, 673 targets
/// served without loss. `plan` says so with the numbers, `run` warns in its log and its
/// summary says over capacity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_run_say_when_the_targets_are_over_capacity() {
    let dir = tempfile::tempdir().unwrap();
    let rooms: Vec<String> = (0..450).map(|i| format!("\"r{i}\"")).collect();
    let cfg = write_pipeline(
        dir.path(),
        "big",
        "http://127.0.0.1:9",
        0.2,
        &format!(
            "[[targets]]\napp_id = \"a\"\nindicators = [\"stall_rate\"]\nproduct_types = [\"native\", \"web\"]\nrooms = [{}]\n",
            rooms.join(", ")
        ),
    );
    let over = "capacity 673 targets (58 requests per 5-minute run every 5 minutes at 0.2 requests/second); 900 targets: each served every 78 min, worst lag 80 min: over capacity, 227 more targets than can be served, so data will be lost every hour (split the targets across accounts, give this pipeline more of its account's rate, or let runs send longer)";
    let out = rtcq(&["plan", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.lines().nth(1), Some(over), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("900 requests earliest due first (900 for targets never fetched)"),
        "{}",
        out.stdout
    );
    let out = rtcq(&[
        "plan",
        "--config",
        cfg.to_str().unwrap(),
        "--schedule",
        "10m",
        "--json",
    ]);
    let plan: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(plan["fits_schedule"], false);
    assert_eq!(plan["capacity"]["schedule_seconds"], 600);
    assert_eq!(plan["capacity"]["requests_per_run"], 117);
    assert_eq!(plan["capacity"]["over_capacity"], true);
    assert_eq!(plan["requests_this_run"], 117);

    // `run` warns in its log and its summary (stopping here at its one-second
    // deadline, on a schedule whose runs may send for a whole 5 minutes).
    let now = t0();
    let emu = emulator_at(now, None).await;
    let url = emu.url();
    let out = rtcq_async(run_args(
        &cfg,
        now,
        &["--endpoint", &url, "--max-duration", "1s"],
    ))
    .await;
    let warned = json_lines(&out.stderr).into_iter().any(|l| {
        l["level"] == "WARN"
            && l["message"]
                .as_str()
                .unwrap()
                .starts_with("capacity 0 targets (0 requests per 1-second run every 5 minutes at 0.2 requests/second)")
    });
    assert!(warned, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["fits_schedule"], false);
    assert_eq!(summary["over_capacity"], true);
    assert_eq!(summary["capacity"], 0);
    assert_eq!(summary["schedule_seconds"], 300);
    assert_eq!(summary["targets_served"], 1);
    // The one target served owes what settles next, and no run can reach it.
    assert_eq!(summary["targets_at_risk"], 1);
    assert_eq!(out.code, 3, "{}", out.stderr);
}
