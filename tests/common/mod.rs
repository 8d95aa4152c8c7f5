//! Shared test helpers: the emulator over loopback, pipeline files, the binary, and
//! reading a dataset back row by row.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use rtcq::config::{self, Pipeline, Target};
use rtcq::emulator::{self, EmulatorConfig, RunningEmulator};
use rtcq::plan::{Plan, Progress, Window};

pub const AK: &str = emulator::DEMO_ACCESS_KEY;
pub const SK: &str = emulator::DEMO_SECRET_KEY;

/// A fixed "now" 10 s past a slot boundary, so client and emulator, started a moment
/// apart, see the same horizon and settled end.
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:10Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub async fn emulator_at(now: DateTime<Utc>, rate: Option<f64>) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(
        listener,
        EmulatorConfig {
            now: Some(now),
            requests_per_second: rate,
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Every target kind on both product types.
pub const MIXED_TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["join_room_success_rate", "stall_rate"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate", "network_trans_delay"]
product_types = ["native", "web"]
rooms = ["room-1", "room-2"]

[[targets]]
app_id = "app-a"
indicators = ["first_frame_recv_success_rate"]
product_types = ["native", "web"]
rooms = ["room-1"]
users = ["u1", "u2"]

[[targets]]
app_id = "app-b"
indicators = ["first_frame_send_success_rate"]
rooms = ["room-9"]
"#;

/// Writes `pipelines/<name>.toml` under `dir` with the sink at `dir/data`.
pub fn write_pipeline(dir: &Path, name: &str, endpoint: &str, rps: f64, targets: &str) -> PathBuf {
    let sink = dir.join("data");
    let text = format!(
        "name = \"{name}\"\n[api]\nendpoint = \"{endpoint}\"\nrequests_per_second = {rps:?}\n[sink]\nurl = \"{}\"\n{targets}",
        sink.display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The result of running the binary.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `rtcq` with the demo credentials.
pub fn rtcq(args: &[&str]) -> Output {
    rtcq_env(args, &[])
}

pub fn rtcq_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcq"));
    cmd.args(args)
        .env("VOLC_ACCESSKEY", AK)
        .env("VOLC_SECRETKEY", SK)
        .env_remove("VOLC_SESSION_TOKEN")
        .env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary off the async runtime so the in-process emulator keeps serving.
pub async fn rtcq_async(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        rtcq(&a)
    })
    .await
    .unwrap()
}

/// One row as a user would compare it: (app, room, user, product type, indicator,
/// timestamp µs, value bits, stream id).
pub type Key = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    u64,
    Option<String>,
);

/// Reads every slot file under `root` (local) and returns its rows, duplicates kept.
pub fn read_dataset(root: &Path) -> Vec<Key> {
    let mut out = Vec::new();
    let Ok(apps) = std::fs::read_dir(root) else {
        return out;
    };
    for app in apps {
        let app = app.unwrap().path();
        let name = app.file_name().unwrap().to_string_lossy().into_owned();
        let Some(escaped) = name.strip_prefix("app_id=") else {
            continue;
        };
        let app_id = rtcq::sink::partition::unescape_value(escaped);
        for date in std::fs::read_dir(&app).unwrap() {
            for file in std::fs::read_dir(date.unwrap().path()).unwrap() {
                let file = file.unwrap().path();
                let fname = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !fname.starts_with('.') && fname.ends_with(".parquet"),
                    "unexpected file {}",
                    file.display()
                );
                let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
                for r in rtcq::sink::decode(bytes).unwrap() {
                    out.push((
                        app_id.clone(),
                        r.room_id,
                        r.user_id,
                        r.product_type.as_str().to_string(),
                        r.indicator,
                        r.timestamp_us,
                        r.value.to_bits(),
                        r.stream_id,
                    ));
                }
            }
        }
    }
    out.sort();
    out
}

/// The rows one target should have over `[start, end)` according to the generator.
pub fn expected_for(
    target: &Target,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    emu_now: DateTime<Utc>,
) -> Vec<Key> {
    let users: Vec<String> = target.user_id.iter().cloned().collect();
    let result = emulator::generate(
        &target.app_id,
        target.product_type,
        target.room_id.as_deref(),
        &users,
        &target.indicators,
        start,
        end,
        emu_now,
    );
    let mut out = Vec::new();
    for s in result.indicators {
        for p in s.data {
            let ts = DateTime::parse_from_rfc3339(&p.time_stamp).unwrap();
            out.push((
                target.app_id.clone(),
                target.room_id.clone(),
                target.user_id.clone(),
                target.product_type.as_str().to_string(),
                s.name.clone(),
                ts.timestamp_micros(),
                p.value.unwrap().to_bits(),
                p.stream_id.clone(),
            ));
        }
    }
    out
}

/// What a first run at `now` should write for every target of `pipeline`: from the
/// horizon to the settled end.
pub fn expected_first_run(pipeline: &Pipeline, now: DateTime<Utc>) -> Vec<Key> {
    let window = Window::at(now, pipeline.sink.slot);
    let plan = Plan::build(&vec![Progress::default(); pipeline.targets.len()], window);
    let mut out = Vec::new();
    for r in &plan.requests {
        out.extend(expected_for(
            &pipeline.targets[r.target],
            r.start,
            r.end,
            now,
        ));
    }
    out.sort();
    out
}

pub fn load(path: &Path) -> Pipeline {
    config::load(path).unwrap()
}

/// File name -> bytes of every file under `root`, for "unchanged" checks.
pub fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// The Python interpreter of the test venv (`make venv`).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RTCQ_PYTHON") {
        return PathBuf::from(p);
    }
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "no Python test venv: run `make venv` (or `make test`), or set RTCQ_PYTHON"
    );
    p
}

/// An emulator with `cfg` on a free loopback port.
pub async fn emulator_with(cfg: EmulatorConfig) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(listener, cfg).await.unwrap()
}

/// [`rtcq_env`] off the async runtime so the in-process emulator keeps serving.
pub async fn rtcq_env_async(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        rtcq_env(&a, &e)
    })
    .await
    .unwrap()
}

/// A short retry policy and request timeout, so failing runs end in about a second.
pub fn fast_retries() -> Vec<(String, String)> {
    [
        ("RTCQ_RETRY_MAX", "2"),
        ("RTCQ_RETRY_MIN_MS", "10"),
        ("RTCQ_RETRY_MAX_MS", "40"),
        ("RTCQ_REQUEST_TIMEOUT_MS", "400"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `rtcq run` arguments: the config, `--now`, the summary on stdout, and `extra`.
pub fn run_args(cfg: &Path, now: DateTime<Utc>, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "run".to_string(),
        "--config".to_string(),
        cfg.display().to_string(),
        "--now".to_string(),
        now.to_rfc3339(),
        "--summary".to_string(),
        "-".to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Asserts `got` has no duplicate row and equals `expected` row for row.
pub fn assert_exact(got: &[Key], expected: &[Key]) {
    let mut dedup = got.to_vec();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "duplicate rows");
    assert_eq!(got.len(), expected.len(), "row count");
    assert!(got == expected, "rows differ from the expected rows");
}
