//! docs/querying.md's query guide works: every DuckDB and Spark snippet runs against a dataset
//! a run wrote, including an all-digit app id, and Spark (pyspark in local mode on the
//! machine's Java) sees every column with the right type and the same rows as DuckDB.

mod common;

use std::process::Command;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_query_guide_snippet_runs_and_spark_agrees_with_duckdb() {
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let targets = format!(
        "{MIXED_TARGETS}\n[[targets]]\napp_id = \"007\"\nindicators = [\"stall_rate\", \"join_room_success_rate\"]\n"
    );
    let cfg = write_pipeline(dir.path(), "guide", &emu.url(), 50.0, &targets);
    let out = rtcq_async(vec![
        "run".into(),
        "--config".into(),
        cfg.display().to_string(),
        "--now".into(),
        now.to_rfc3339(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let expected = expected_first_run(&load(&cfg), now);

    let guide = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/querying.md");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/query_guide.py");
    let py = python();
    let cwd = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(&py)
            .arg(script)
            .arg(guide)
            .current_dir(cwd)
            .env("SPARK_LOCAL_IP", "127.0.0.1")
            .env("TZ", "UTC")
            .env("PYSPARK_PYTHON", &py)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    let reference = &seen["reference"];
    assert_eq!(reference["rows"], expected.len());
    assert_eq!(
        reference["app_ids"],
        serde_json::json!(["007", "app-a", "app-b"])
    );
    assert_eq!(reference["dates"], serde_json::json!(["2026-11-25"]));

    let duck = seen["duckdb"].as_array().unwrap();
    assert!(duck.len() >= 2, "{seen}");
    for (i, d) in duck.iter().enumerate() {
        assert!(d["rows"].as_u64().unwrap() > 0, "DuckDB snippet {i}: {d}");
    }
    // The first snippet covers every app, "007" as a string.
    assert_eq!(duck[0]["app_ids"], reference["app_ids"]);
    // The view snippet filters on app_id = '007': it only matches if app_id stayed text.
    assert_eq!(duck[1]["app_ids"], serde_json::json!(["007"]));

    let spark = seen["spark"].as_array().unwrap();
    assert!(!spark.is_empty(), "{seen}");
    for s in spark {
        let types = s["types"].as_object().unwrap();
        let want = [
            ("room_id", "string"),
            ("user_id", "string"),
            ("product_type", "string"),
            ("indicator", "string"),
            ("unit", "string"),
            ("timestamp", "timestamp"),
            ("value", "double"),
            ("stream_id", "string"),
            ("app_id", "string"),
            ("date", "date"),
        ];
        assert_eq!(types.len(), want.len(), "{s}");
        for (name, ty) in want {
            assert_eq!(types[name], ty, "{name}: {s}");
        }
        assert_eq!(s["session_time_zone"], "UTC");
        assert_eq!(s["rows"], reference["rows"]);
        assert_eq!(s["min_ts_us"], reference["min_ts_us"]);
        assert_eq!(s["max_ts_us"], reference["max_ts_us"]);
        assert_eq!(s["app_ids"], reference["app_ids"]);
        assert_eq!(s["dates"], reference["dates"]);
    }
    // The instants are the generator's, in UTC.
    let min = expected.iter().map(|k| k.5).min().unwrap();
    assert_eq!(reference["min_ts_us"], min);
}
