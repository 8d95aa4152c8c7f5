//! The deployment examples under deploy/ keep working: the CronJob manifest and the
//! Airflow DAG are checked by tests/py/check_deploy.py (YAML, Airflow's DagBag, the
//! Dockerfile's shape), then the CronJob's container arguments and its pipeline file,
//! and each Airflow task's shell command, are run against the emulator.

use std::path::Path;
use std::process::Command;

use crate::kit::*;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs check_deploy.py and returns what it printed last (JSON).
fn check_deploy(pipeline_dir: &Path) -> serde_json::Value {
    let airflow_home = tempfile::tempdir().unwrap();
    let out = Command::new(python())
        .arg(repo().join("tests/py/check_deploy.py"))
        .arg(repo())
        .arg(env!("CARGO_BIN_EXE_rtcq"))
        .arg(pipeline_dir)
        .env("AIRFLOW_HOME", airflow_home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap()
}

/// A CronJob container's arguments as check_deploy.py read them, with the pipeline
/// file at `cfg`, the Pushgateway at `pushgateway`, and the emulator's endpoint and
/// clock added.
fn container_args(
    cronjob: &serde_json::Value,
    cfg: &Path,
    pushgateway: &str,
    endpoint: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<String> {
    let mut args: Vec<String> = cronjob["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let at = |args: &[String], flag: &str| args.iter().position(|a| a == flag).unwrap() + 1;
    let i = at(&args, "--config");
    args[i] = cfg.display().to_string();
    let i = at(&args, "--pushgateway");
    args[i] = pushgateway.to_string();
    args.extend([
        "--endpoint".to_string(),
        endpoint.to_string(),
        "--now".to_string(),
        now.to_rfc3339(),
    ]);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_and_airflow_dag_run_as_written() {
    needs!(Python, Pushgateway, Promtool);
    let dir = tempfile::tempdir().unwrap();
    let pipeline_dir = dir.path().join("pipelines");
    std::fs::create_dir(&pipeline_dir).unwrap();
    let checked = check_deploy(&pipeline_dir);
    // The alert rules passed promtool (check and unit tests) inside check_deploy.py.
    assert_eq!(
        checked["alerts"],
        serde_json::json!([
            "RtcqApiClockOff",
            "RtcqGapsRecorded",
            "RtcqLagHigh",
            "RtcqNotRunning",
            "RtcqOverCapacity",
            "RtcqRecoveryOwed",
            "RtcqRunFailed"
        ])
    );

    // The CronJob: its pipeline file loads; its arguments run, with only the sink
    // moved to local disk, the endpoint to the emulator and the Pushgateway to a real
    // one on loopback.
    let now = t0();
    let emu = emulator_at(now, None).await;
    let pg = Pushgateway::start();
    let toml = checked["cronjob"]["pipeline"].as_str().unwrap();
    let sink = dir.path().join("k8s-data");
    let local = toml.replace(
        "url = \"s3://my-rtcq-bucket/rtcq\"",
        &format!("url = \"{}\"", sink.display()),
    );
    assert_ne!(
        local, toml,
        "the manifest's sink URL changed: update this test"
    );
    let cfg = dir.path().join("cronjob.toml");
    std::fs::write(&cfg, &local).unwrap();
    let pipeline = load(&cfg);
    let args = container_args(&checked["cronjob"], &cfg, &pg.url(), &emu.url(), now);
    // As in the pod: the temporary folder not writable (read-only root), the spill
    // folder (the emptyDir, here a temporary folder) writable, and a run that spills.
    assert_eq!(checked["cronjob"]["spill_dir"], "/spill");
    let spill = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("read-only-root");
    std::fs::write(&read_only, b"not a folder").unwrap();
    let env = vec![
        ("TMPDIR".to_string(), read_only.display().to_string()),
        (
            "RTCQ_SPILL_DIR".to_string(),
            spill.path().display().to_string(),
        ),
        ("RTCQ_SPILL_ROWS".to_string(), "100".to_string()),
    ];
    let out = rtcq_async_env(args, env).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
    for l in out.stderr.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["pipeline"], "demo", "{l}");
        assert!(v["run_id"].is_string(), "{l}");
    }
    assert_eq!(read_dataset(&sink), expected_first_run(&pipeline, now));
    assert!(
        pg.metrics()
            .contains("rtcq_last_run_exit_code{instance=\"\",job=\"rtcq\",pipeline=\"demo\"} 0")
    );

    // The local-disk variant: its arguments, with the volume's path (/data/rtcq) moved
    // under a temporary folder, the endpoint to the emulator and the Pushgateway local.
    let local = &checked["cronjob_local_disk"];
    assert_eq!(local["sink"], "/data/rtcq");
    let volume = dir.path().join("volume");
    let toml = local["pipeline"].as_str().unwrap().replace(
        "url = \"/data/rtcq\"",
        &format!("url = \"{}\"", volume.join("rtcq").display()),
    );
    let cfg = dir.path().join("cronjob-local.toml");
    std::fs::write(&cfg, &toml).unwrap();
    let args = container_args(local, &cfg, &pg.url(), &emu.url(), now);
    let out = rtcq_async(args).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        read_dataset(&volume.join("rtcq")),
        expected_first_run(&load(&cfg), now)
    );

    // The Airflow task: its command, as the BashOperator runs it, on the real clock.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let live = rtcq_emulator::spawn(listener, rtcq_emulator::EmulatorConfig::default())
        .await
        .unwrap();
    let tasks = checked["airflow"]["tasks"].as_object().unwrap();
    assert!(tasks.contains_key("rtcq_demo"), "{tasks:?}");
    for (task, command) in tasks {
        let name = task.strip_prefix("rtcq_").unwrap();
        write_pipeline_to(
            &pipeline_dir,
            name,
            &live.url(),
            2.0,
            &dir.path()
                .join(format!("airflow-{name}"))
                .display()
                .to_string(),
            "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\nproduct_types = [\"native\", \"web\"]\n",
        );
        let command = command.as_str().unwrap().to_string();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("bash")
                .arg("-c")
                .arg(&command)
                .env("VOLC_ACCESSKEY", AK)
                .env("VOLC_SECRETKEY", SK)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{task}: {stderr}");
        // The BashOperator pushes the last line of output to XCom: the summary.
        let summary: serde_json::Value =
            serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        assert_eq!(summary["pipeline"], name);
        assert_eq!(summary["requests_sent"], 2, "{stderr}");
        assert!(summary["rows_written"].as_u64().unwrap() > 0);
    }
}
