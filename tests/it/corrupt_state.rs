//! A state file that cannot be understood stops the run with exit 1 and a message
//! naming the file, before anything is fetched, written, swept or locked for good:
//! every file is left byte for byte as it was.

use crate::kit::*;

const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = ["room-1"]
"#;

async fn refuses(state: &[u8], expect: &str) {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "corrupt", &emu.url(), 50.0, TARGETS);
    let out = rtcq_async_env(run_args(&cfg, now, &[]), vec![]).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = dir.path().join("data");
    let state_path = root.join("_state/corrupt.json");
    std::fs::write(&state_path, state).unwrap();
    // A leftover of a crashed run: a good run would sweep it, this one must not.
    let some_file = snapshot(&root)
        .into_keys()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let leftover = some_file
        .parent()
        .unwrap()
        .join(".corrupt-1100.parquet.tmp-1-0");
    std::fs::write(&leftover, b"partial").unwrap();
    let before = snapshot(&root);
    let requests = emu.requests();

    let out = rtcq_async_env(run_args(&cfg, now, &[]), vec![]).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let canonical = std::fs::canonicalize(&state_path).unwrap();
    let named = out.stderr.contains(&state_path.display().to_string())
        || out.stderr.contains(&canonical.display().to_string())
        || out.stderr.contains("_state/corrupt.json");
    assert!(named, "the message names the file: {}", out.stderr);
    assert!(out.stderr.contains(expect), "{}", out.stderr);
    // The summary still reports the stop, with nothing done.
    let summary: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(summary["exit_code"], 1);
    assert_eq!(summary["requests_sent"], 0);
    assert_eq!(summary["files_written"], 0);
    assert!(
        summary["errors"][0].as_str().unwrap().contains(expect),
        "{}",
        out.stdout
    );
    assert_eq!(emu.requests(), requests, "nothing was fetched");
    assert!(snapshot(&root) == before, "files changed");

    // Asked again, it says the same and still changes nothing.
    let again = rtcq_async_env(run_args(&cfg, now, &[]), vec![]).await;
    assert_eq!(again.code, 1);
    assert!(snapshot(&root) == before, "files changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_is_not_json_stops_the_run_and_changes_nothing() {
    refuses(
        b"{\"schema_version\": 1, \"pipeline\": \"corr",
        "is corrupt",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_from_a_newer_schema_stops_the_run_and_changes_nothing() {
    refuses(
        br#"{"schema_version": 5, "pipeline": "corrupt", "cursors": {}}"#,
        "schema version 5",
    )
    .await;
}
