//! End to end on local disk: the binary against the emulator over loopback.

use crate::kit::*;

fn arg(s: impl ToString) -> String {
    s.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_writes_exactly_the_generator_rows_and_second_run_fetches_nothing() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
    let pipeline = load(&cfg);
    assert_eq!(pipeline.targets.len(), 2 + 4 + 4 + 1);

    let out = rtcq_async(run_args(&cfg, now, &[])).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_planned"], 11);
    assert_eq!(summary["requests_sent"], 11);
    assert_eq!(summary["slots_pending"], 0);
    assert_eq!(summary["gaps_recorded"], 0);
    assert_eq!(summary["exit_code"], 0);

    let root = dir.path().join("data");
    let got = read_dataset(&root);
    let expected = expected_first_run(&pipeline, now);
    assert!(expected.len() > 1000, "{}", expected.len());
    assert_exact(&got, &expected);
    assert_eq!(summary["rows_written"], expected.len());
    // 12 slots of 5 minutes ([11:00, 12:00), the last one up to 11:59) for each of
    // two apps.
    assert_eq!(summary["files_written"], 24);

    let before = snapshot(&root);
    let out = rtcq_async(run_args(&cfg, now, &[])).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], 0);
    assert_eq!(summary["files_written"], 0);
    let after = snapshot(&root);
    let data_only = |m: &std::collections::BTreeMap<std::path::PathBuf, Vec<u8>>| {
        m.iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(data_only(&before), data_only(&after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ninety_minutes_later_fetches_only_the_horizon_and_warns_about_the_rest() {
    let now = t0();
    let later = now + chrono::TimeDelta::minutes(90);
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "outage",
        &emu.url(),
        50.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\n",
    );
    let out = rtcq_async(vec![
        arg("run"),
        arg("--config"),
        arg(cfg.display()),
        arg("--now"),
        arg(now.to_rfc3339()),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    drop(emu);

    let emu = emulator_at(later, None).await;
    let url = emu.url();
    let out = rtcq_async(run_args(
        &cfg,
        later,
        &["--endpoint", &url, "--log-format", "json"],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // Cursor was 11:59; now 13:30:10: horizon 12:31:00, settled end 13:29.
    assert_eq!(summary["lost"][0]["start"], "2026-11-25T11:59:00Z");
    assert_eq!(summary["lost"][0]["end"], "2026-11-25T12:31:00Z");
    assert_eq!(summary["gaps_recorded"], 1);
    assert!(
        out.stderr
            .contains("lost: beyond the API's 60-minute horizon"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.stats().status(400), 0);

    let pipeline = load(&cfg);
    let target = &pipeline.targets[0];
    let mut expected = expected_for(
        target,
        parse("2026-11-25T11:01:00Z"),
        parse("2026-11-25T11:59:00Z"),
        now,
    );
    expected.extend(expected_for(
        target,
        parse("2026-11-25T12:31:00Z"),
        parse("2026-11-25T13:29:00Z"),
        later,
    ));
    expected.sort();
    assert_eq!(read_dataset(&dir.path().join("data")), expected);
}

fn parse(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_clock_runs_are_never_rejected_for_their_time_range() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    // The real clock on both sides and the API's real rate limit.
    let emu = rtcq_emulator::spawn(listener, rtcq_emulator::EmulatorConfig::default())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "realclock",
        &emu.url(),
        2.0,
        "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\", \"join_room_success_rate\"]\nproduct_types = [\"native\", \"web\"]\nrooms = [\"r1\", \"r2\"]\n",
    );
    let out = rtcq_async(vec![
        arg("run"),
        arg("--config"),
        arg(cfg.display()),
        arg("--summary"),
        arg("-"),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], 4);
    assert_eq!(summary["requests_throttled"], 0);
    let stats = emu.stats();
    assert_eq!(stats.status(200), 4, "{stats:?}");
    assert_eq!(stats.requests, 4, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spilling_rows_to_disk_writes_the_same_files_and_leaves_nothing_behind() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let mut files = Vec::new();
    for spill in ["100000000", "97"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = write_pipeline(dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
        let args = run_args(&cfg, now, &[]);
        let env = vec![(arg("RTCQ_SPILL_ROWS"), arg(spill))];
        let out = rtcq_async_env(args, env).await;
        assert_eq!(out.code, 0, "stderr: {}", out.stderr);
        let root = dir.path().join("data");
        assert_eq!(
            read_dataset(&root),
            expected_first_run(&load(&cfg), now),
            "spill budget {spill}"
        );
        assert!(
            !root.join(".rtcq-spill-mixed").exists(),
            "spill directory left behind"
        );
        let data: Vec<(String, Vec<u8>)> = snapshot(&root)
            .into_iter()
            .filter(|(p, _)| p.extension().is_some_and(|e| e == "parquet"))
            .map(|(p, b)| (p.strip_prefix(&root).unwrap().display().to_string(), b))
            .collect();
        files.push(data);
    }
    assert_eq!(files[0].len(), 24);
    assert_eq!(files[0], files[1], "spilling changed the files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_spill_to_the_spill_dir_which_is_checked_writable_before_anything_is_fetched() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
    // Not a folder that can be made (its parent is a file): exit 2 naming it, nothing
    // fetched or written.
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let bad = file.join("spill");
    let env = vec![(arg("RTCQ_SPILL_DIR"), arg(bad.display()))];
    let out = rtcq_async_env(run_args(&cfg, now, &["--log-format", "text"]), env).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("spill directory {}", bad.display()))
            && out
                .stderr
                .contains("give --spill-dir (or RTCQ_SPILL_DIR) a writable folder"),
        "{}",
        out.stderr
    );
    assert_eq!(emu.requests(), 0);
    assert!(
        relative_files(&dir.path().join("data"))
            .iter()
            .all(|f| !f.ends_with(".parquet"))
    );

    // A writable one: the rows go through it, and nothing is left in it.
    let spill = tempfile::tempdir().unwrap();
    let env = vec![
        (arg("RTCQ_SPILL_ROWS"), arg(97)),
        (arg("RUST_LOG"), arg("info,rtcq::run::runner::intake=debug")),
    ];
    let args = run_args(
        &cfg,
        now,
        &[
            "--spill-dir",
            spill.path().to_str().unwrap(),
            "--log-format",
            "text",
        ],
    );
    let out = rtcq_async_env(args, env).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("dir={}", spill.path().display())),
        "{}",
        out.stderr
    );
    assert_eq!(
        std::fs::read_dir(spill.path()).unwrap().count(),
        0,
        "left behind"
    );
    assert_eq!(
        read_dataset(&dir.path().join("data")),
        expected_first_run(&load(&cfg), now)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_in_the_future_is_named_rewound_to_the_horizon_and_refetched_once() {
    // A run with --now a day ahead (as an older build allowed) saved cursors a day
    // ahead; the run at the right time finds them past its settled end.
    let now = t0();
    let ahead = now + chrono::TimeDelta::days(1);
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator_at(ahead, None).await;
    let cfg = write_pipeline(dir.path(), "future", &emu.url(), 50.0, MIXED_TARGETS);
    let out = rtcq_async(run_args(&cfg, ahead, &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    emu.shutdown().await;
    let pipeline = load(&cfg);
    let targets = pipeline.targets.len();

    // `status` names every such cursor.
    let cfg_s = cfg.display().to_string();
    let now_s = now.to_rfc3339();
    let status = rtcq(&["status", "--config", &cfg_s, "--now", &now_s, "--json"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    let v: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let future = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["cursor_in_future"] == true)
        .count();
    assert_eq!(future, targets);
    let text = rtcq(&["status", "--config", &cfg_s, "--now", &now_s]);
    assert_eq!(
        text.stdout
            .matches("(in the future: a run rewinds it)")
            .count(),
        targets,
        "{}",
        text.stdout
    );

    // The run rewinds them to its horizon, says so once, and fetches the last hour.
    let emu = emulator_at(now, None).await;
    let out = rtcq_async(run_args(&cfg, now, &["--endpoint", &emu.url()])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr
            .matches("had a cursor past the settled end")
            .count(),
        1,
        "{}",
        out.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], targets);
    assert_eq!(summary["gaps_recorded"], 0);
    let mut want = expected_first_run(&pipeline, ahead);
    want.extend(expected_first_run(&pipeline, now));
    want.sort();
    assert_exact(&read_dataset(&dir.path().join("data")), &want);
    // Then as usual: a rerun fetches nothing and no cursor is in the future.
    let out = rtcq_async(run_args(&cfg, now, &["--endpoint", &emu.url()])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        !out.stderr.contains("past the settled end"),
        "{}",
        out.stderr
    );
    let summary: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], 0);
}

/// The binary run from folder `cwd`.
fn rtcq_in(cwd: &std::path::Path, args: &[&str]) -> Output {
    output_of(rtcq_command().current_dir(cwd).args(args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_sink_is_beside_the_pipeline_file_and_plan_and_status_create_nothing() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let pipelines = dir.path().join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    let cfg = write_pipeline_to(
        &pipelines,
        "beside",
        &emu.url(),
        50.0,
        "./data",
        MIXED_TARGETS,
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let cfg_s = cfg.display().to_string();
    let now_s = now.to_rfc3339();

    // Before any run, from another folder: nothing is created anywhere.
    for command in ["plan", "status"] {
        let out = rtcq_in(
            elsewhere.path(),
            &[command, "--config", &cfg_s, "--now", &now_s],
        );
        assert_eq!(out.code, 0, "{command}: {}", out.stderr);
    }
    assert!(!pipelines.join("data").exists());
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);

    // A run from the other folder writes beside the pipeline file.
    let out = rtcq_in(
        elsewhere.path(),
        &["run", "--config", &cfg_s, "--now", &now_s, "--summary", "-"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    let pipeline = load(&cfg);
    assert_eq!(
        read_dataset(&pipelines.join("data")),
        expected_first_run(&pipeline, now)
    );

    // `status` from yet another folder finds it, and names the sink.
    let out = rtcq_in(
        dir.path(),
        &["status", "--config", &cfg_s, "--now", &now_s, "--json"],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["targets_never_fetched"], 0, "{v}");
    assert_eq!(v["sink"], pipelines.join("data").display().to_string());
}
