//! No secret ever leaves the process: whole runs at `RUST_LOG=trace` (every crate's debug
//! and trace output: reqwest, hyper, object_store, rustls) with distinctive secret values,
//! on local disk and on S3 (moto), successful and failing, and every byte the run
//! produced is searched: stdout, stderr, every file under the sink, the summary file.
//!
//! Needs Python with moto for the S3 cases: `RTCQ_PYTHON`, else `.venv/bin/python`.

use std::path::Path;

use crate::kit::moto::{self, Moto};
use crate::kit::*;
use rtcq_emulator::{self as emulator, EmulatorConfig, RunningEmulator};

const VOLC_AK: &str = "AKLTsecurityTestAccessKey000001";
const VOLC_SK: &str = "VolcSecretKey-7Qz4Kx9Wm2Rb8Tn5";
const VOLC_TOKEN: &str = "VolcSessionToken-3Hj6Pv1Ls0Ye4Gc7";
const AWS_SK: &str = "AwsSecretAccessKey-5Nf8Ud2Zo6Ia3Xe9";
const AWS_TOKEN: &str = "AwsSessionToken-1Bq7Vm4Ck9Sw2Jr6";

const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = ["room-1"]
users = ["u1"]
"#;

/// Every string that must never appear: the secrets, a recognisable part of each (a
/// truncated or re-encoded copy is still a leak), and the markers of the two
/// `Authorization` headers (Volcengine's and S3's SigV4), whose signatures differ on
/// every request.
fn needles() -> Vec<String> {
    let mut out = Vec::new();
    for s in [VOLC_SK, VOLC_TOKEN, AWS_SK, AWS_TOKEN] {
        out.push(s.to_string());
        // The random tail alone.
        out.push(s.rsplit('-').next().unwrap().to_string());
    }
    out.extend(
        [
            "Signature=",
            "HMAC-SHA256 Credential",
            "AWS4-HMAC-SHA256",
            "SignedHeaders=",
        ]
        .map(String::from),
    );
    out
}

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    for n in needles() {
        assert!(
            !text.contains(&n),
            "{what} contains {n:?}:\n{}",
            excerpt(&text, &n)
        );
    }
}

fn excerpt(text: &str, needle: &str) -> String {
    let i = text.find(needle).unwrap_or(0);
    text.char_indices()
        .filter(|(j, _)| j + 300 >= i && *j <= i + 300)
        .map(|(_, c)| c)
        .collect()
}

fn assert_output_clean(out: &Output) {
    assert_clean("stdout", out.stdout.as_bytes());
    assert_clean("stderr", out.stderr.as_bytes());
}

/// Every file under `root`, searched.
fn assert_dir_clean(root: &Path) {
    let files = snapshot(root);
    assert!(!files.is_empty(), "nothing under {}", root.display());
    for (path, bytes) in files {
        assert_clean(&path.display().to_string(), &bytes);
    }
}

async fn emulator_with_token(now: chrono::DateTime<chrono::Utc>) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(
        listener,
        EmulatorConfig {
            access_key: VOLC_AK.into(),
            secret_key: VOLC_SK.into(),
            session_token: Some(VOLC_TOKEN.into()),
            now: Some(now),
            requests_per_second: None,
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap()
}

fn volc_env(secret: &str) -> Vec<(String, String)> {
    [
        ("VOLC_ACCESSKEY", VOLC_AK),
        ("VOLC_SECRETKEY", secret),
        ("VOLC_SESSION_TOKEN", VOLC_TOKEN),
        ("RUST_LOG", "trace"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn s3_env(moto: &Moto) -> Vec<(String, String)> {
    let mut env = moto.env();
    for (k, v) in env.iter_mut() {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = AWS_SK.to_string();
        }
    }
    env.push(("AWS_SESSION_TOKEN".into(), AWS_TOKEN.into()));
    env
}

fn run_args(cfg: &Path, summary: &Path, format: &str) -> Vec<String> {
    [
        "run",
        "--config",
        &cfg.display().to_string(),
        "--now",
        &t0().to_rfc3339(),
        "--summary",
        &summary.display().to_string(),
        "--log-format",
        format,
    ]
    .map(String::from)
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_level_local_runs_never_show_a_secret() {
    let emu = emulator_with_token(t0()).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "sec", &emu.url(), 50.0, TARGETS);
    let summary = dir.path().join("summary.json");

    // JSON logs (RTCQ_LOG_FORMAT=json, as the tests ask) and text logs.
    for format in ["json", "text"] {
        let _ = std::fs::remove_dir_all(dir.path().join("data"));
        let out = rtcq_async_env(run_args(&cfg, &summary, format), volc_env(VOLC_SK)).await;
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(
            out.stderr.contains("TRACE") || out.stderr.contains("\"level\":\"TRACE\""),
            "trace output is on: {}",
            out.stderr
        );
        let s: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        assert!(s["rows_written"].as_u64().unwrap() > 0, "{s}");
        assert_output_clean(&out);
        assert_clean("summary", &std::fs::read(&summary).unwrap());
        assert_dir_clean(&dir.path().join("data"));
    }

    // The failure paths: a wrong secret (SignatureDoesNotMatch) and a wrong token
    // (InvalidAccessKey) stop the run with exit 5, naming the code, not the secret.
    for (secret, token, code) in [
        (
            "VolcSecretKey-WRONG-0000",
            VOLC_TOKEN,
            "SignatureDoesNotMatch",
        ),
        (VOLC_SK, "VolcSessionToken-WRONG-0000", "InvalidAccessKey"),
    ] {
        let mut env = volc_env(secret);
        env.retain(|(k, _)| k != "VOLC_SESSION_TOKEN");
        env.push(("VOLC_SESSION_TOKEN".into(), token.into()));
        let fresh = tempfile::tempdir().unwrap();
        let cfg = write_pipeline(fresh.path(), "sec", &emu.url(), 50.0, TARGETS);
        let summary = fresh.path().join("summary.json");
        let out = rtcq_async_env(run_args(&cfg, &summary, "json"), env).await;
        assert_eq!(out.code, 5, "{}", out.stderr);
        assert!(out.stderr.contains(code), "{}", out.stderr);
        let s = std::fs::read(&summary).unwrap();
        assert!(String::from_utf8_lossy(&s).contains(code));
        assert_output_clean(&out);
        assert_clean("summary", &s);
        assert_dir_clean(&fresh.path().join("data"));
    }

    // A secret that is not printable ASCII is refused by name, without its value.
    let out = rtcq_async_env(
        run_args(&cfg, &summary, "json"),
        volc_env("VolcSecretKey-7Qz4Kx9Wm2Rb8Tn5\n"),
    )
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "\"message\":\"VOLC_SECRETKEY holds a character that is not printable ASCII (a stray newline or quote?): export the value exactly as issued\""
        ),
        "{}",
        out.stderr
    );
    assert_output_clean(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_level_s3_runs_never_show_a_secret() {
    needs!(Python);
    let moto = Moto::start();
    moto.create_bucket("rtcq-sec");
    let emu = emulator_with_token(t0()).await;
    let dir = tempfile::tempdir().unwrap();
    let url = "s3://rtcq-sec/data";
    let cfg = write_pipeline_to(dir.path(), "sec", &emu.url(), 50.0, url, TARGETS);
    let summary = dir.path().join("summary.json");
    let mut env = volc_env(VOLC_SK);
    env.extend(s3_env(&moto));

    let out = rtcq_async_env(run_args(&cfg, &summary, "json"), env.clone()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("\"level\":\"TRACE\""), "{}", out.stderr);
    assert_output_clean(&out);
    assert_clean("summary", &std::fs::read(&summary).unwrap());
    let root = rtcq::sink::store::open_with_env(
        "s3://rtcq-sec",
        &rtcq::sink::StoreOptions::default(),
        &s3_env(&moto),
    )
    .unwrap();
    let objects = moto::objects(&root).await;
    assert!(objects.len() >= 2, "{objects:?}");
    for (key, _) in &objects {
        let bytes = moto::get(&root, key).await.unwrap();
        assert_clean(key, &bytes);
    }

    // Failure paths on S3 at trace level: a bucket that does not exist (exit 1) and a
    // wrong Volcengine secret (exit 5).
    let missing = write_pipeline_to(
        dir.path(),
        "nobucket",
        &emu.url(),
        50.0,
        "s3://no-such-bucket/data",
        TARGETS,
    );
    let out = rtcq_async_env(run_args(&missing, &summary, "json"), env.clone()).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_output_clean(&out);

    let mut wrong = env.clone();
    wrong.retain(|(k, _)| k != "VOLC_SECRETKEY");
    wrong.push(("VOLC_SECRETKEY".into(), "VolcSecretKey-WRONG-0000".into()));
    let cfg2 = write_pipeline_to(
        dir.path(),
        "sec2",
        &emu.url(),
        50.0,
        "s3://rtcq-sec/other",
        TARGETS,
    );
    let out = rtcq_async_env(run_args(&cfg2, &summary, "json"), wrong).await;
    assert_eq!(out.code, 5, "{}", out.stderr);
    assert_output_clean(&out);
    assert_clean("summary", &std::fs::read(&summary).unwrap());
    for (key, _) in moto::objects(&root).await {
        let bytes = moto::get(&root, &key).await.unwrap();
        assert_clean(&key, &bytes);
    }
}

#[test]
fn debug_of_credential_types_is_redacted() {
    let creds = volc_rtc::sign::Credentials::new(VOLC_AK, VOLC_SK, Some(VOLC_TOKEN));
    let client = rtcq::api::Client::new(
        "https://rtc.volcengineapi.com",
        "cn-north-1",
        creds.clone(),
        rtcq::api::Timeouts::default(),
    )
    .unwrap();
    let signed = volc_rtc::sign::sign(
        &creds,
        &volc_rtc::sign::RequestToSign {
            method: "POST",
            host: "rtc.volcengineapi.com",
            path: "/",
            query: &[("Action", "ListRealTimeQuality")],
            content_type: "application/json",
            body: b"{}",
            region: "cn-north-1",
            service: "rtc",
            time: t0(),
        },
    );
    let env = [
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", AWS_SK),
        ("AWS_SESSION_TOKEN", AWS_TOKEN),
        ("AWS_REGION", "us-east-1"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let root = rtcq::sink::store::open_with_env(
        "s3://bucket-x/p",
        &rtcq::sink::StoreOptions::default(),
        &env,
    )
    .unwrap();
    let sink = rtcq::sink::Sink::new(root.clone(), "p").unwrap();
    let shown = format!(
        "{creds:?} {:?} {:?} {signed:?} {client:?} {root:?} {sink:?} {:?} {}",
        creds.secret_key,
        creds.session_token,
        root.store(),
        root.store()
    );
    assert_clean("Debug output", shown.as_bytes());
    assert!(shown.contains("redacted"), "{shown}");
}

#[test]
#[should_panic(expected = "contains")]
fn the_search_finds_a_planted_secret() {
    let line = format!("{{\"message\":\"x-security-token: {VOLC_TOKEN}\"}}");
    assert_clean("planted", line.as_bytes());
}
