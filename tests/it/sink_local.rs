//! The sink on a local directory only: concurrent atomic publishes, the sweep of
//! leftovers, file-system limits. What every store must do is in `sink_stores.rs`.

use std::path::Path as FsPath;

use crate::kit::{read_rows, relative_files, try_write_rows, write_rows};
use chrono::{TimeDelta, TimeZone, Utc};
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::slot_file::Replaced;
use rtcq::sink::{Row, Sink, SlotEncoder, StoreOptions, open};

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
        interval_s: 30,
    }
}

fn sink(dir: &FsPath, pipeline: &str) -> Sink {
    let root = open(dir.to_str().unwrap(), &StoreOptions::default()).unwrap();
    Sink::new(root, pipeline).unwrap()
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
    // Each writer replaces the whole slot of the one series: the file is one of them.
    let replaced = Replaced::from([(
        (ProductType::Native, None, None, 30),
        (s.start.timestamp_micros(), s.end.timestamp_micros()),
    )]);
    let (ra, rb) = tokio::join!(
        write_rows(&sink, "x", s, a.clone(), &replaced),
        write_rows(&sink, "x", s, b.clone(), &replaced)
    );
    assert_eq!(ra.unwrap().rows, 10);
    assert_eq!(rb.unwrap().rows, 10);
    let back = read_rows(&sink, "x", s).await.unwrap();
    assert!(
        back == a || back == b,
        "the file is one writer's whole content"
    );
    assert_eq!(
        relative_files(tmp.path()),
        ["app_id=x/date=2026-11-25/demo-0100.parquet"]
    );
}

#[tokio::test]
async fn sweep_removes_only_this_pipelines_leftovers() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let s = slot(23, 55);
    let rows = vec![row(None, None, "stall_rate", &s, 0, 1.0)];
    write_rows(&sink, "app", s, rows.clone(), &Replaced::new()).await;
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
        relative_files(tmp.path()),
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
    assert_eq!(read_rows(&sink, "app", s).await, Some(rows));
}

#[test]
fn bad_pipeline_name_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let root = open(tmp.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
    let err = Sink::new(root, "_hidden").unwrap_err().to_string();
    assert_eq!(
        err,
        "\"_hidden\" is not a valid pipeline name: use 1 to 64 characters of a-z, 0-9, '_' and \
         '-', starting with a letter or digit (a leading '_' would hide the files from Spark)"
    );
}

#[tokio::test]
async fn over_long_escaped_id_fails_with_the_path_named() {
    // 128 '/' (config's longest id) escape to 384 bytes: longer than a file-system name may be.
    let tmp = tempfile::tempdir().unwrap();
    let sink = sink(tmp.path(), "demo");
    let dir = sink.sink_root().local_dir().unwrap().display().to_string();
    let s = slot(0, 0);
    let id = "/".repeat(128);
    let key = format!(
        "app_id={}/date=2026-11-25/demo-0000.parquet",
        "%2F".repeat(128)
    );

    // A run stops at reading the slot's existing file.
    let rows = vec![row(None, None, "stall_rate", &s, 0, 1.0)];
    let err = try_write_rows(&sink, &id, s, rows.clone(), &Replaced::new())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "reading {key}: Generic LocalFileSystem error: Unable to open file {dir}/{key}: File \
             name too long (os error 36)"
        )
    );

    // Publishing the encoded file fails the same way, naming where it wrote.
    let mut enc = SlotEncoder::new(&sink.file_meta(&s)).unwrap();
    enc.push(rows[0].borrowed()).unwrap();
    let (bytes, n) = enc.finish().unwrap();
    let err = sink
        .write_slot_bytes(&id, &s, bytes, n)
        .await
        .unwrap_err()
        .to_string();
    // The temporary name holds this process's id and a counter shared by its writers.
    let partition = format!("app_id={}/date=2026-11-25", "%2F".repeat(128));
    let temp_prefix = format!("{partition}/.demo-0000.parquet.tmp-{}-", std::process::id());
    let seq = err
        .strip_prefix(&format!("writing {temp_prefix}"))
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("{err}"));
    let temp = format!("{temp_prefix}{seq}");
    assert_eq!(
        err,
        format!(
            "writing {temp}: Generic LocalFileSystem error: Unable to open file {dir}/{temp}#1: \
             File name too long (os error 36)"
        )
    );
    assert_eq!(
        relative_files(tmp.path()),
        Vec::<String>::new(),
        "nothing half-written"
    );
}
