//! The sink on a local directory: file names on disk, atomic rewrites, read-back, unions
//! and the sweep of leftovers.

use std::path::Path as FsPath;

use chrono::{TimeDelta, TimeZone, Utc};
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::{Row, Sink, SinkError, StoreOptions, WrittenFile, open};

fn slot(h: u32, m: u32) -> Slot {
    let t = Utc.with_ymd_and_hms(2026, 11, 25, h, m, 0).unwrap();
    Slot::containing(t, TimeDelta::minutes(5))
}

fn row(
    room: Option<&str>,
    user: Option<&str>,
    indicator: &str,
    slot: &Slot,
    bucket: i64,
    value: f64,
) -> Row {
    Row {
        room_id: room.map(str::to_string),
        user_id: user.map(str::to_string),
        product_type: ProductType::Native,
        indicator: indicator.to_string(),
        unit: "%".to_string(),
        timestamp_us: slot.start.timestamp_micros() + bucket * 30_000_000,
        value,
        stream_id: None,
    }
}

/// Every file under `root`, as `/`-separated paths relative to it, sorted.
fn files(root: &FsPath) -> Vec<String> {
    fn walk(dir: &FsPath, prefix: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &rel, out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

fn sink(dir: &FsPath, pipeline: &str) -> Sink {
    let root = open(dir.to_str().unwrap(), &StoreOptions::default()).unwrap();
    Sink::new(root, pipeline).unwrap()
}

#[tokio::test]
async fn writes_named_files_and_reads_them_back() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let sink = sink(&dir, "demo");
    let s1 = slot(23, 55);
    let s2 = slot(0, 0);

    let rows_a = vec![
        row(Some("r1"), None, "stall_rate", &s1, 1, 0.5),
        row(None, None, "stall_rate", &s1, 0, 1.0),
        row(None, None, "stall_rate", &s1, 0, 2.0), // same key: the later row wins
    ];
    let w = sink.write_slot("demo-app", &s1, rows_a).await.unwrap();
    let on_disk = dir
        .canonicalize()
        .unwrap()
        .join("app_id=demo-app/date=2026-11-25/demo-2355.parquet");
    assert_eq!(
        w,
        WrittenFile {
            path: "app_id=demo-app/date=2026-11-25/demo-2355.parquet".into(),
            rows: 2,
            bytes: std::fs::metadata(&on_disk).unwrap().len() as usize,
        }
    );
    sink.write_slot("a/b", &s2, vec![row(None, None, "stall_rate", &s2, 3, 9.0)])
        .await
        .unwrap();
    sink.write_slot(
        "../../etc",
        &s2,
        vec![row(None, None, "stall_rate", &s2, 3, 7.0)],
    )
    .await
    .unwrap();

    assert_eq!(
        files(&dir),
        [
            "app_id=%2E.%2F..%2Fetc/date=2026-11-25/demo-0000.parquet",
            "app_id=a%2Fb/date=2026-11-25/demo-0000.parquet",
            "app_id=demo-app/date=2026-11-25/demo-2355.parquet",
        ]
    );
    assert_eq!(
        files(tmp.path()).len(),
        3,
        "nothing was written outside the root"
    );

    let back = sink.read_slot("demo-app", &s1).await.unwrap().unwrap();
    assert_eq!(
        back,
        vec![
            row(None, None, "stall_rate", &s1, 0, 2.0),
            row(Some("r1"), None, "stall_rate", &s1, 1, 0.5),
        ]
    );
    let back = sink.read_slot("../../etc", &s2).await.unwrap().unwrap();
    assert_eq!(back, vec![row(None, None, "stall_rate", &s2, 3, 7.0)]);
    assert_eq!(sink.read_slot("demo-app", &s2).await.unwrap(), None);
    assert_eq!(sink.read_slot("nobody", &s1).await.unwrap(), None);
}

#[tokio::test]
async fn rewrite_with_union_replaces_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(12, 5);
    let first = vec![
        row(Some("r1"), Some("u1"), "stall_rate", &s, 0, 1.0),
        row(Some("r1"), Some("u1"), "stall_rate", &s, 1, 1.5),
        row(Some("r2"), None, "stall_rate", &s, 0, 4.0),
    ];
    sink.write_slot("app", &s, first).await.unwrap();

    // A refetch of target r1/u1 only: keep r2's rows, replace r1/u1's.
    let old = sink.read_slot("app", &s).await.unwrap().unwrap();
    let refetched = vec![
        row(Some("r1"), Some("u1"), "stall_rate", &s, 1, 1.75),
        row(Some("r1"), Some("u1"), "stall_rate", &s, 2, 2.0),
    ];
    let mut union = old;
    union.extend(refetched);
    let w = sink.write_slot("app", &s, union).await.unwrap();
    assert_eq!(w.rows, 4);

    assert_eq!(
        sink.read_slot("app", &s).await.unwrap().unwrap(),
        vec![
            row(Some("r1"), Some("u1"), "stall_rate", &s, 0, 1.0),
            row(Some("r1"), Some("u1"), "stall_rate", &s, 1, 1.75),
            row(Some("r1"), Some("u1"), "stall_rate", &s, 2, 2.0),
            row(Some("r2"), None, "stall_rate", &s, 0, 4.0),
        ]
    );
    assert_eq!(
        files(tmp.path()),
        ["app_id=app/date=2026-11-25/demo-1205.parquet"]
    );
}

#[tokio::test]
async fn concurrent_writers_of_one_slot_leave_one_whole_file() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(1, 0);
    let a: Vec<Row> = (0..10)
        .map(|i| row(None, None, "stall_rate", &s, i, 1.0))
        .collect();
    let b: Vec<Row> = (0..10)
        .map(|i| row(None, None, "stall_rate", &s, i, 2.0))
        .collect();
    let (ra, rb) = tokio::join!(
        sink.write_slot("x", &s, a.clone()),
        sink.write_slot("x", &s, b.clone())
    );
    ra.unwrap();
    rb.unwrap();
    let back = sink.read_slot("x", &s).await.unwrap().unwrap();
    assert!(
        back == a || back == b,
        "the file is one writer's whole content"
    );
    assert_eq!(
        files(tmp.path()),
        ["app_id=x/date=2026-11-25/demo-0100.parquet"]
    );
}

#[tokio::test]
async fn sweep_removes_only_this_pipelines_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(23, 55);
    sink.write_slot("app", &s, vec![row(None, None, "stall_rate", &s, 0, 1.0)])
        .await
        .unwrap();
    let d = tmp.path().join("app_id=app/date=2026-11-25");
    let other = tmp.path().join("app_id=b/date=2026-11-24");
    std::fs::create_dir_all(&other).unwrap();
    for name in [
        ".demo-2355.parquet.tmp-4242-0",
        ".demo-2355.parquet.tmp-4242-1#3",
        "demo-2355.parquet#17",
        ".other-2355.parquet.tmp-1-0",
        ".DS_Store",
        "notes.txt",
    ] {
        std::fs::write(d.join(name), b"junk").unwrap();
    }
    std::fs::write(other.join(".demo-0005.parquet.tmp-1-9"), b"junk").unwrap();
    std::fs::write(
        tmp.path().join(".demo-0000.parquet.tmp-1-1"),
        b"not under a partition",
    )
    .unwrap();

    assert_eq!(sink.sweep_temp_files().await.unwrap(), 4);
    assert_eq!(
        files(tmp.path()),
        [
            ".demo-0000.parquet.tmp-1-1",
            "app_id=app/date=2026-11-25/.DS_Store",
            "app_id=app/date=2026-11-25/.other-2355.parquet.tmp-1-0",
            "app_id=app/date=2026-11-25/demo-2355.parquet",
            "app_id=app/date=2026-11-25/notes.txt",
        ]
    );
    assert_eq!(sink.sweep_temp_files().await.unwrap(), 0);
    // The real file is untouched.
    assert_eq!(sink.read_slot("app", &s).await.unwrap().unwrap().len(), 1);
}

#[tokio::test]
async fn unreadable_slot_file_names_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(0, 5);
    let d = tmp.path().join("app_id=app/date=2026-11-25");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("demo-0005.parquet"), b"PAR1 but not really").unwrap();
    let err = sink.read_slot("app", &s).await.unwrap_err();
    assert!(matches!(err, SinkError::Decode { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.starts_with(
            "decoding app_id=app/date=2026-11-25/demo-0005.parquet: not a readable Parquet file"
        ),
        "{msg}"
    );
}

#[test]
fn bad_pipeline_name_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = open(tmp.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    let err = Sink::new(root, "_hidden").unwrap_err().to_string();
    assert!(
        err.starts_with(
            "\"_hidden\" is not a valid pipeline name: use 1 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn over_long_escaped_id_fails_with_the_path_named() {
    // 128 '/' (config's longest id) escape to 384 bytes: longer than a file-system name may be.
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(0, 0);
    let id = "/".repeat(128);
    let err = sink
        .write_slot(&id, &s, vec![row(None, None, "stall_rate", &s, 0, 1.0)])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!(
            "writing app_id={}/date=2026-11-25/",
            "%2F".repeat(128)
        )),
        "{msg}"
    );
    assert_eq!(
        files(tmp.path()),
        Vec::<String>::new(),
        "nothing half-written"
    );
}
