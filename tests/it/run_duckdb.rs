//! A run's dataset as DuckDB and pyarrow see it: the columns and types users query, and
//! exactly the rows the emulator's generator says.

use crate::kit::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duckdb_and_pyarrow_read_a_run_exactly() {
    needs!(Python);
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "duck", &emu.url(), 50.0, MIXED_TARGETS);
    let out = rtcq_async(vec![
        "run".into(),
        "--config".into(),
        cfg.display().to_string(),
        "--now".into(),
        now.to_rfc3339(),
    ])
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    let root = dir.path().join("data");
    let seen = py_json("read_dataset.py", &[&root.display().to_string()], &[]);

    let columns: Vec<(String, String)> = seen["duckdb"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        ("room_id", "VARCHAR"),
        ("user_id", "VARCHAR"),
        ("product_type", "VARCHAR"),
        ("indicator", "VARCHAR"),
        ("unit", "VARCHAR"),
        ("timestamp", "TIMESTAMP WITH TIME ZONE"),
        ("value", "DOUBLE"),
        ("stream_id", "VARCHAR"),
        ("interval_s", "INTEGER"),
        ("app_id", "VARCHAR"),
        ("date", "DATE"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(columns, want);

    let expected = expected_first_run(&load(&cfg), now);
    for reader in ["duckdb", "pyarrow"] {
        let mut rows = reader_rows(&seen, reader);
        rows.sort();
        assert_eq!(rows.len(), expected.len(), "{reader}");
        assert_eq!(rows, expected, "{reader}");
        // Every row's date partition is the UTC date of its timestamp.
        for r in seen[reader]["rows"].as_array().unwrap() {
            let ts = chrono::DateTime::from_timestamp_micros(r[7].as_i64().unwrap()).unwrap();
            assert_eq!(r[1].as_str().unwrap(), ts.format("%Y-%m-%d").to_string());
        }
    }
}
