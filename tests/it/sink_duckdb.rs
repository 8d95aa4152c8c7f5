//! What DuckDB and pyarrow read from a dataset the sink wrote: column types, every app id
//! (hostile ones included) decoded back exactly, and exactly the rows written, with
//! leftover temporary files ignored.
//!
//! Needs Python with duckdb and pyarrow: `RTCQ_PYTHON`, else `.venv/bin/python` (`make venv`).

use crate::kit::needs;

use chrono::{TimeDelta, TimeZone, Utc};
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::slot_file::Replaced;
use rtcq::sink::{Row, Sink, StoreOptions, open};
use serde_json::{Value, json};

const APPS: [&str; 10] = [
    "demo-app",
    "../../etc",
    "a/b",
    "x=y",
    ".hidden",
    "_under",
    "sp ace",
    "ünï",
    "%41",
    "0123",
];

fn read_dataset(root: &std::path::Path) -> Value {
    crate::kit::py_json("read_dataset.py", &[&root.display().to_string()], &[])
}

fn slots() -> [Slot; 2] {
    let len = TimeDelta::minutes(5);
    [
        Slot::containing(Utc.with_ymd_and_hms(2026, 11, 25, 23, 55, 0).unwrap(), len),
        Slot::containing(Utc.with_ymd_and_hms(2026, 11, 26, 0, 0, 0).unwrap(), len),
    ]
}

/// The rows of one app and slot: app-level, room-level and per-user, one with a stream.
fn rows_for(app_index: usize, slot: &Slot) -> Vec<Row> {
    let t = |bucket: i64| slot.start.timestamp_micros() + bucket * 30_000_000;
    let v = app_index as f64;
    vec![
        Row {
            room_id: None,
            user_id: None,
            product_type: ProductType::Native,
            indicator: "join_room_success_rate".into(),
            unit: "%".into(),
            timestamp_us: t(0),
            value: 99.5 - v,
            stream_id: None,
            interval_s: 30,
        },
        Row {
            room_id: Some("room-1".into()),
            user_id: None,
            product_type: ProductType::Web,
            indicator: "stall_rate".into(),
            unit: "%".into(),
            timestamp_us: t(3),
            value: 0.1 + v,
            stream_id: None,
            interval_s: 30,
        },
        Row {
            room_id: Some("room-1".into()),
            user_id: Some("user/ü".into()),
            product_type: ProductType::Native,
            indicator: "network_trans_delay".into(),
            unit: "ms".into(),
            timestamp_us: t(9),
            value: 1e-300 * (v + 1.0),
            stream_id: Some("stream-7".into()),
            interval_s: 30,
        },
    ]
}

fn expected_row(app: &str, date: &str, r: &Row) -> Value {
    json!([
        app,
        date,
        r.room_id,
        r.user_id,
        r.product_type.as_str(),
        r.indicator,
        r.unit,
        r.timestamp_us,
        r.value.to_bits(),
        r.stream_id,
        r.interval_s
    ])
}

fn sorted_rows(v: &Value) -> Vec<String> {
    let mut rows: Vec<String> = v
        .as_array()
        .expect("rows is an array")
        .iter()
        .map(|r| r.to_string())
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn duckdb_and_pyarrow_read_back_exactly() {
    needs!(Python);
    let tmp = tempfile::tempdir().unwrap();
    let root = open(tmp.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    let dir = root.local_dir().unwrap().to_path_buf();
    let sink = Sink::new(root, "demo").unwrap();

    let mut expected = Vec::new();
    let mut expected_files = Vec::new();
    for (i, app) in APPS.iter().enumerate() {
        for slot in slots() {
            let rows = rows_for(i, &slot);
            for r in &rows {
                expected.push(expected_row(app, &slot.date(), r));
            }
            let w = crate::kit::write_rows(&sink, app, slot, rows, &Replaced::new()).await;
            expected_files.push(w.unwrap().path);
        }
    }
    expected_files.sort();

    // Leftovers of a crashed writer, with valid Parquet content: if a reader picked them up
    // the row set would have duplicates.
    let [s1, _] = slots();
    let real = dir.join(sink.slot_path("demo-app", &s1).as_ref());
    let partition = real.parent().unwrap();
    std::fs::copy(&real, partition.join(".demo-2355.parquet.tmp-99-0")).unwrap();
    std::fs::copy(&real, partition.join(".demo-2355.parquet.tmp-99-1#3")).unwrap();

    let got = read_dataset(&dir);
    let duck = &got["duckdb"];
    let arrow = &got["pyarrow"];

    assert_eq!(
        duck["columns"],
        json!([
            ["room_id", "VARCHAR"],
            ["user_id", "VARCHAR"],
            ["product_type", "VARCHAR"],
            ["indicator", "VARCHAR"],
            ["unit", "VARCHAR"],
            ["timestamp", "TIMESTAMP WITH TIME ZONE"],
            ["value", "DOUBLE"],
            ["stream_id", "VARCHAR"],
            ["interval_s", "INTEGER"],
            ["app_id", "VARCHAR"],
            ["date", "DATE"]
        ])
    );
    assert_eq!(
        arrow["columns"],
        json!([
            ["room_id", "string"],
            ["user_id", "string"],
            ["product_type", "string"],
            ["indicator", "string"],
            ["unit", "string"],
            ["timestamp", "timestamp[us, tz=UTC]"],
            ["value", "double"],
            ["stream_id", "string"],
            ["interval_s", "int32"],
            ["app_id", "string"],
            ["date", "date32[day]"]
        ])
    );

    let want = sorted_rows(&Value::Array(expected));
    assert_eq!(want.len(), APPS.len() * 2 * 3);
    assert_eq!(sorted_rows(&duck["rows"]), want, "DuckDB rows");
    assert_eq!(sorted_rows(&arrow["rows"]), want, "pyarrow rows");

    for reader in [duck, arrow] {
        let mut apps: Vec<&str> = reader["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r[0].as_str().unwrap())
            .collect();
        apps.sort();
        apps.dedup();
        let mut want_apps = APPS.to_vec();
        want_apps.sort();
        assert_eq!(apps, want_apps);
    }

    assert_eq!(
        duck["files"],
        json!(expected_files),
        "DuckDB's glob skips temp files"
    );
    assert_eq!(
        arrow["files"],
        json!(expected_files),
        "pyarrow skips temp files"
    );
    assert_eq!(duck["compression"], json!(["ZSTD"]));
    let mut want_kv = serde_json::Map::new();
    for f in &expected_files {
        let (start, end) = if f.contains("/date=2026-11-25/") {
            ("2026-11-25T23:55:00Z", "2026-11-26T00:00:00Z")
        } else {
            ("2026-11-26T00:00:00Z", "2026-11-26T00:05:00Z")
        };
        let kv = json!({
            "rtcq.pipeline": "demo",
            "rtcq.schema_version": "2",
            "rtcq.slot_start": start,
            "rtcq.slot_end": end,
            "rtcq.writer": format!("rtcq {}", env!("CARGO_PKG_VERSION")),
        });
        want_kv.insert(f.clone(), kv);
    }
    assert_eq!(
        duck["kv"],
        Value::Object(want_kv),
        "key-value metadata as DuckDB sees it"
    );
}
