//! `rtcq check`: every step passes on a good setup, on disk and on S3, leaving nothing
//! behind and sending one request per action; each kind of bad setup fails at its step
//! with its exit class and a fix.
//!
//! Needs Python with moto: `RTCQ_PYTHON`, else `.venv/bin/python`.

use crate::kit::moto::Moto;
use crate::kit::*;
use rtcq_emulator::{EmulatorConfig, Faults, OfflineFault};

/// A listed target, a discovery entry and recovery (on by default): every step runs.
const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = "active"
"#;

const STEPS: [&str; 7] = [
    "config",
    "store",
    "lease",
    "api clock",
    "ListRealTimeQuality",
    "ListRoomInfo",
    "ListQuality",
];

/// `rtcq check --json` on `cfg` with `env`: the exit code and each step's
/// (name, status, detail, fix).
async fn check(
    cfg: &std::path::Path,
    env: Vec<(String, String)>,
) -> (i32, Vec<(String, String, String, String)>, String) {
    let args = vec![
        "check".to_string(),
        "--config".to_string(),
        cfg.display().to_string(),
        "--json".to_string(),
    ];
    let out = rtcq_async_env(args, env).await;
    let v: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no JSON ({e}): {}\n{}", out.stdout, out.stderr));
    assert_eq!(v["exit_code"], out.code, "{v}");
    let steps = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let f = |k: &str| s[k].as_str().unwrap_or("").to_string();
            (f("step"), f("status"), f("detail"), f("fix"))
        })
        .collect();
    (out.code, steps, out.stderr)
}

/// The statuses in step order.
fn statuses(steps: &[(String, String, String, String)]) -> Vec<(&str, &str)> {
    steps
        .iter()
        .map(|(s, st, _, _)| (s.as_str(), st.as_str()))
        .collect()
}

/// The emulator on the real clock, refusing every `ListQuality` (`AccessDenied`).
async fn offline_denied() -> rtcq_emulator::RunningEmulator {
    emulator_with(EmulatorConfig {
        faults: Faults {
            offline: Some(OfflineFault::Denied),
            ..Faults::default()
        },
        ..EmulatorConfig::default()
    })
    .await
}

fn all_ok() -> Vec<(&'static str, &'static str)> {
    STEPS.iter().map(|s| (*s, "ok")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_on_disk_passes_every_step_with_one_request_per_action_and_leaves_nothing() {
    let emu = emulator_at(chrono::Utc::now(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "good", &emu.url(), 50.0, TARGETS);
    let (code, steps, stderr) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 0, "{steps:?} {stderr}");
    assert_eq!(statuses(&steps), all_ok());
    assert!(
        steps[1]
            .2
            .contains("read it back, was refused a second create"),
        "{steps:?}"
    );
    let stats = emu.stats();
    assert_eq!(stats.requests, 3, "one request per action: {stats:?}");
    assert_eq!((stats.room_info_answers, stats.offline_answers), (1, 1));
    assert_eq!(stats.clock_reads, 1);
    assert!(
        !dir.path().join("data").exists(),
        "the check left its sink behind"
    );

    // On a sink that already holds a run's data, nothing changes.
    let out = rtcq_async(run_args(&cfg, chrono::Utc::now(), &[])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let before = snapshot(&dir.path().join("data"));
    let (code, _, _) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 0);
    assert_eq!(snapshot(&dir.path().join("data")), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_setup_on_s3_passes_every_step_and_leaves_the_bucket_empty() {
    needs!(Python);
    let moto = Moto::start();
    moto.create_bucket("rtcq");
    let emu = emulator_at(chrono::Utc::now(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(
        dir.path(),
        "goods3",
        &emu.url(),
        50.0,
        "s3://rtcq/data",
        TARGETS,
    );
    let (code, steps, stderr) = check(&cfg, moto.env()).await;
    assert_eq!(code, 0, "{steps:?} {stderr}");
    assert_eq!(statuses(&steps), all_ok());
    assert!(
        steps[1].2.contains("replaced it conditionally, deleted it"),
        "{steps:?}"
    );
    assert!(
        moto.raw_keys("rtcq").is_empty(),
        "{:?}",
        moto.raw_keys("rtcq")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_api_setup_fails_at_its_step_with_its_exit_class() {
    let dir = tempfile::tempdir().unwrap();
    // A wrong secret: every signed request is refused; credentials are exit 2.
    let emu = emulator_with(EmulatorConfig {
        secret_key: "another-secret".into(),
        ..EmulatorConfig::default()
    })
    .await;
    let cfg = write_pipeline(dir.path(), "secret", &emu.url(), 50.0, TARGETS);
    let (code, steps, _) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 2, "{steps:?}");
    assert_eq!(steps[4].1, "fail");
    assert!(steps[4].2.contains("SignatureDoesNotMatch"), "{steps:?}");
    assert!(
        steps[4]
            .3
            .starts_with("check VOLC_ACCESSKEY and VOLC_SECRETKEY"),
        "{steps:?}"
    );
    assert_eq!(emu.stats().requests, 3);

    // An app the account does not have: a refusal, exit 5.
    let emu = emulator_with(EmulatorConfig {
        apps: Some(vec!["app-b".into()]),
        ..EmulatorConfig::default()
    })
    .await;
    let cfg = write_pipeline(dir.path(), "app", &emu.url(), 50.0, TARGETS);
    let (code, steps, _) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 5, "{steps:?}");
    assert!(
        steps[4].2.contains("InvalidParameter.NotExistAppId"),
        "{steps:?}"
    );
    assert!(steps[4].3.starts_with("check the app_id"), "{steps:?}");

    // ListQuality denied: only that step fails, and the fix offers turning recovery off.
    let emu = offline_denied().await;
    let cfg = write_pipeline(dir.path(), "denied", &emu.url(), 50.0, TARGETS);
    let (code, steps, _) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 5, "{steps:?}");
    let mut want = all_ok();
    want[6].1 = "fail";
    assert_eq!(statuses(&steps), want);
    assert!(steps[6].2.contains("AccessDenied"), "{steps:?}");
    assert_eq!(
        steps[6].3,
        "grant rtc:ListQuality to the access key's user or role (docs/operations.md, Permissions), or set [recovery] enabled = false to run without recovery"
    );

    // Nothing listens at the endpoint: the clock step names the host, the API steps
    // after it do not run, exit 3.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let cfg = write_pipeline(
        dir.path(),
        "closed",
        &format!("http://127.0.0.1:{port}"),
        50.0,
        TARGETS,
    );
    let (code, steps, _) = check(&cfg, Vec::new()).await;
    assert_eq!(code, 3, "{steps:?}");
    assert_eq!(
        statuses(&steps),
        all_ok()[..3]
            .iter()
            .copied()
            .chain([("api clock", "fail")])
            .collect::<Vec<_>>()
    );
    assert!(
        steps[3].2.contains(&format!(
            "no answer from 127.0.0.1:{port}: the connection was refused"
        )),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_store_setup_fails_at_the_store_step() {
    needs!(Python);
    let moto = Moto::start();
    let emu = emulator_at(chrono::Utc::now(), None).await;
    let dir = tempfile::tempdir().unwrap();
    // A bucket that does not exist: a storage failure, exit 1, the bucket named.
    let cfg = write_pipeline_to(
        dir.path(),
        "nobucket",
        &emu.url(),
        50.0,
        "s3://missing/data",
        TARGETS,
    );
    let (code, steps, _) = check(&cfg, moto.env()).await;
    assert_eq!(code, 1, "{steps:?}");
    assert_eq!(
        (steps[1].0.as_str(), steps[1].1.as_str()),
        ("store", "fail")
    );
    assert!(
        steps[1].2.contains("check that bucket \"missing\" exists"),
        "{steps:?}"
    );
    assert_eq!(steps[2].1, "skip");
    // The API steps still run, so one check shows every problem.
    assert_eq!(steps[4].1, "ok", "{steps:?}");

    // A store endpoint nothing listens on: named, exit 1.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .map(|(k, v)| {
            if k == "AWS_ENDPOINT" {
                (k, closed.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let (code, steps, _) = check(&cfg, env).await;
    assert_eq!(code, 1, "{steps:?}");
    assert!(
        steps[1]
            .2
            .contains(&format!("the S3 endpoint {closed} did not answer")),
        "{steps:?}"
    );

    // No AWS credentials at all: a config error, exit 2.
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && !k.starts_with("AWS_SECRET"))
        .chain([("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string())])
        .collect();
    let (code, steps, _) = check(&cfg, env).await;
    assert_eq!(code, 2, "{steps:?}");
    assert!(
        steps[1]
            .2
            .starts_with("no usable credentials for the S3 sink (bucket \"missing\")"),
        "{steps:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_text_report_has_one_line_per_step_and_a_fix_under_a_failure() {
    let emu = offline_denied().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "text", &emu.url(), 50.0, TARGETS);
    let cfg_s = cfg.display().to_string();
    let out = rtcq(&["check", "--config", &cfg_s]);
    assert_eq!(out.code, 5, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", out.stdout);
    for (line, step) in lines.iter().zip(STEPS) {
        let mark = if step == "ListQuality" {
            "FAIL"
        } else {
            "ok  "
        };
        assert!(line.starts_with(&format!("{mark}  {step} ")), "{line}");
    }
    assert!(
        lines[7]
            .trim_start()
            .starts_with("fix: grant rtc:ListQuality"),
        "{}",
        lines[7]
    );
}
