//! One suite of sink behaviour, run on every kind of store: a local directory and S3 (a
//! local moto server). Files are written the way a run writes them
//! (`run::slot_file::rewrite`: the RowStore merge and the Parquet encoder) and read back
//! the way a run reads them (`Sink::read_slot_bytes` and `sink::decode_each`).
//!
//! The S3 half needs Python with moto: `RTCQ_PYTHON`, else `.venv/bin/python`
//! (`make venv`).

use crate::kit::needs;
use crate::kit::{read_rows, try_read_rows, try_write_rows, write_rows};
use chrono::{TimeDelta, TimeZone, Utc};
use object_store::ObjectStoreExt;
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::slot_file::Replaced;
use rtcq::sink::{Row, Sink, StoreOptions, WrittenFile, open};

fn slot(d: u32, h: u32, m: u32) -> Slot {
    let t = Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap();
    Slot::containing(t, TimeDelta::minutes(5))
}

/// A native `stall_rate` row in `%`, without stream, `bucket` 30 s steps into `slot`.
fn row(room: Option<&str>, user: Option<&str>, slot: &Slot, bucket: i64, value: f64) -> Row {
    Row {
        room_id: room.map(str::to_string),
        user_id: user.map(str::to_string),
        product_type: ProductType::Native,
        indicator: "stall_rate".to_string(),
        unit: "%".to_string(),
        timestamp_us: slot.start.timestamp_micros() + bucket * 30_000_000,
        value,
        stream_id: None,
        interval_s: 30,
    }
}

/// The time `bucket` 30 s steps into `slot`, in µs.
fn at(slot: &Slot, bucket: i64) -> i64 {
    slot.start.timestamp_micros() + bucket * 30_000_000
}

/// The object key of `rel` (relative to the dataset root) in the sink's store.
fn store_key(sink: &Sink, rel: &str) -> String {
    let root = sink.root().as_ref();
    if root.is_empty() {
        rel.to_string()
    } else {
        format!("{root}/{rel}")
    }
}

/// The file written for `rel` with `rows` rows: its key and its size as stored.
async fn written(sink: &Sink, app: &str, slot: Slot, rel: &str, rows: usize) -> WrittenFile {
    let (bytes, path) = sink.read_slot_bytes(app, &slot).await.unwrap().unwrap();
    assert_eq!(path, store_key(sink, rel));
    WrittenFile {
        path,
        rows,
        bytes: bytes.len(),
    }
}

/// Everything a sink must do, whatever its store. `dataset` is where the dataset root
/// sits in what `list` shows: every object or file of the whole bucket or directory the
/// root is in (hidden and temporary ones included), sorted.
async fn sink_behaviour(sink: &Sink, dataset: &str, list: impl Fn() -> Vec<String>) {
    assert_eq!(list(), Vec::<String>::new(), "the store starts empty");
    let none = Replaced::new();
    let s1 = slot(25, 23, 55);
    let s2 = slot(26, 0, 0);

    // Nothing to write and no file: nothing is written, nothing is there to read.
    assert_eq!(write_rows(sink, "nobody", s1, vec![], &none).await, None);
    assert_eq!(read_rows(sink, "nobody", s1).await, None);

    // Rows come back exactly: sorted by (room, user, product type, indicator, time,
    // stream), nulls first, the later of two rows with one key kept, units, streams,
    // -0.0 and f64::MAX as written.
    let mut other_stream = row(None, None, &s1, 0, 7.0);
    other_stream.stream_id = Some("s".into());
    let mut web = row(Some("r1"), Some("u1"), &s1, 1, 0.25);
    web.product_type = ProductType::Web;
    web.stream_id = Some("s-1".into());
    web.unit = "ms".into();
    let mut join = row(None, None, &s1, 9, 99.5);
    join.indicator = "join_room_success_rate".into();
    let mut web_app = row(None, None, &s1, 0, 3.0);
    web_app.product_type = ProductType::Web;
    let given = vec![
        row(Some("r2"), None, &s1, 0, 1.5),
        web.clone(),
        row(None, None, &s1, 0, 1.0),
        web_app.clone(),
        row(None, None, &s1, 1, 5.0),
        row(Some("r1"), Some("u1"), &s1, 1, 0.5),
        other_stream.clone(),
        join.clone(),
        row(None, None, &s1, 0, 2.0),
        row(Some("r1"), None, &s1, 0, f64::MAX),
        row(None, None, &s1, 0, -0.0), // same key as 1.0 and 2.0, given last: kept
    ];
    let want = vec![
        join,
        row(None, None, &s1, 0, -0.0),
        other_stream,
        row(None, None, &s1, 1, 5.0),
        web_app,
        row(Some("r1"), None, &s1, 0, f64::MAX),
        row(Some("r1"), Some("u1"), &s1, 1, 0.5),
        web,
        row(Some("r2"), None, &s1, 0, 1.5),
    ];
    let rel = "app_id=demo-app/date=2026-11-25/demo-2355.parquet";
    let w = write_rows(sink, "demo-app", s1, given, &none).await;
    assert_eq!(w, Some(written(sink, "demo-app", s1, rel, 9).await));
    let back = read_rows(sink, "demo-app", s1).await.unwrap();
    assert_eq!(back, want);
    assert!(back[1].value.is_sign_negative(), "-0.0 kept bit for bit");
    assert_eq!(read_rows(sink, "demo-app", s2).await, None, "other slot");

    // Keys are exactly the Hive-escaped paths, whatever the app id, in the slot's date.
    let apps = [
        ("a/b", "a%2Fb"),
        ("../../etc", "%2E.%2F..%2Fetc"),
        ("%41", "%2541"),
        (".hidden", "%2Ehidden"),
        ("ünï", "ünï"),
    ];
    for (i, (app, escaped)) in apps.iter().enumerate() {
        let rows = vec![
            row(None, None, &s2, 3, i as f64),
            row(Some("r"), None, &s2, 1, 2.0),
        ];
        let rel = format!("app_id={escaped}/date=2026-11-26/demo-0000.parquet");
        let w = write_rows(sink, app, s2, rows.clone(), &none).await;
        assert_eq!(w, Some(written(sink, app, s2, &rel, 2).await), "{app}");
        assert_eq!(read_rows(sink, app, s2).await, Some(rows), "{app}");
    }

    // A rewrite replaces the replaced range of the replaced series (all its indicators),
    // and keeps the rest: the series' rows before the range, and the other series.
    let s3 = slot(25, 12, 5);
    let mut delay = row(Some("r1"), Some("u1"), &s3, 2, 80.0);
    delay.indicator = "network_trans_delay".into();
    delay.unit = "ms".into();
    let first = vec![
        row(Some("r1"), Some("u1"), &s3, 0, 1.0),
        row(Some("r1"), Some("u1"), &s3, 1, 1.5),
        row(Some("r1"), Some("u1"), &s3, 3, 3.0), // in the range, not answered again: gone
        delay,                                    // other indicator, in the range: gone
        row(Some("r2"), None, &s3, 0, 4.0),
        row(Some("r2"), None, &s3, 5, 4.5),
    ];
    write_rows(sink, "app", s3, first, &none).await.unwrap();
    let replaced = Replaced::from([(
        (ProductType::Native, Some("r1"), Some("u1"), 30),
        (at(&s3, 1), at(&s3, 10)),
    )]);
    let refetched = vec![
        row(Some("r1"), Some("u1"), &s3, 2, 2.0),
        row(Some("r1"), Some("u1"), &s3, 1, 1.75),
    ];
    let rel = "app_id=app/date=2026-11-25/demo-1205.parquet";
    let w = write_rows(sink, "app", s3, refetched, &replaced).await;
    assert_eq!(w, Some(written(sink, "app", s3, rel, 5).await));
    assert_eq!(
        read_rows(sink, "app", s3).await.unwrap(),
        vec![
            row(Some("r1"), Some("u1"), &s3, 0, 1.0),
            row(Some("r1"), Some("u1"), &s3, 1, 1.75),
            row(Some("r1"), Some("u1"), &s3, 2, 2.0),
            row(Some("r2"), None, &s3, 0, 4.0),
            row(Some("r2"), None, &s3, 5, 4.5),
        ]
    );
    // A series answered with nothing over the whole slot loses its rows there; the file
    // stays, with the others' rows; with no rows left at all it stays, empty.
    let whole = |room| {
        (
            (ProductType::Native, room, None, 30),
            (at(&s3, 0), at(&s3, 10)),
        )
    };
    let r2 = Replaced::from([whole(Some("r2"))]);
    let w = write_rows(sink, "app", s3, vec![], &r2).await;
    assert_eq!(w, Some(written(sink, "app", s3, rel, 3).await));
    assert_eq!(
        read_rows(sink, "app", s3).await.unwrap(),
        vec![
            row(Some("r1"), Some("u1"), &s3, 0, 1.0),
            row(Some("r1"), Some("u1"), &s3, 1, 1.75),
            row(Some("r1"), Some("u1"), &s3, 2, 2.0),
        ]
    );
    let mut all = Replaced::from([whole(Some("r2"))]);
    all.insert(
        (ProductType::Native, Some("r1"), Some("u1"), 30),
        (at(&s3, 0), at(&s3, 10)),
    );
    let w = write_rows(sink, "app", s3, vec![], &all).await;
    assert_eq!(w, Some(written(sink, "app", s3, rel, 0).await));
    assert_eq!(read_rows(sink, "app", s3).await, Some(vec![]));

    // A file that is not Parquet is named in the error, by reading and by rewriting, and
    // is left as it was.
    let bad = sink.slot_path("junk", &s1);
    sink.store()
        .put(
            &bad,
            bytes::Bytes::from_static(b"PAR1 but not really").into(),
        )
        .await
        .unwrap();
    let want = format!(
        "decoding {}: not a readable Parquet file: Parquet error: Invalid Parquet file. \
         Corrupt footer",
        store_key(sink, "app_id=junk/date=2026-11-25/demo-2355.parquet")
    );
    let err = try_read_rows(sink, "junk", s1).await.unwrap_err();
    assert_eq!(err.to_string(), want);
    let err = try_write_rows(sink, "junk", s1, vec![row(None, None, &s1, 0, 1.0)], &none)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), want);
    let (bytes, _) = sink.read_slot_bytes("junk", &s1).await.unwrap().unwrap();
    assert_eq!(&bytes[..], b"PAR1 but not really");
    sink.store().delete(&bad).await.unwrap();

    // The store holds the final files and nothing else: no temporary or staging file,
    // nothing outside the root.
    let mut want: Vec<String> = [
        "app_id=app/date=2026-11-25/demo-1205.parquet",
        "app_id=demo-app/date=2026-11-25/demo-2355.parquet",
    ]
    .iter()
    .map(|k| format!("{dataset}{k}"))
    .chain(
        apps.iter()
            .map(|(_, e)| format!("{dataset}app_id={e}/date=2026-11-26/demo-0000.parquet")),
    )
    .collect();
    want.sort();
    assert_eq!(list(), want);
}

#[tokio::test]
async fn sink_on_local_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let root = open(
        tmp.path().join("data").to_str().unwrap(),
        &StoreOptions::default(),
    )
    .unwrap();
    assert!(root.is_local());
    let sink = Sink::new(root, "demo").unwrap();
    sink_behaviour(&sink, "data/", || crate::kit::relative_files(tmp.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_on_s3() {
    needs!(Python);
    let moto = crate::kit::moto::Moto::start();
    moto.create_bucket("rtcq-test");
    // Opened as the binary does, from the environment (sink_s3.rs opens it with the
    // pipeline's endpoint and region keys instead).
    let root = moto.open("s3://rtcq-test/data/rtc/");
    assert!(!root.is_local());
    let sink = Sink::new(root, "demo").unwrap();
    sink_behaviour(&sink, "data/rtc/", || moto.raw_keys("rtcq-test")).await;
}
