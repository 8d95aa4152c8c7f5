//! The sink on S3, against a local moto server: exact object keys (Hive escapes kept, not
//! re-encoded), read-back, union rewrite, nothing left but the final objects.
//!
//! Needs Python with moto: `RTCQ_PYTHON`, else `.venv/bin/python` (`make venv`).

mod common;

use chrono::{TimeDelta, TimeZone, Utc};
use futures::TryStreamExt;
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::store::open_with_env;
use rtcq::sink::{Row, Sink, StoreOptions};

fn row(room: Option<&str>, slot: &Slot, bucket: i64, value: f64) -> Row {
    Row {
        room_id: room.map(str::to_string),
        user_id: None,
        product_type: ProductType::Native,
        indicator: "stall_rate".into(),
        unit: "%".into(),
        timestamp_us: slot.start.timestamp_micros() + bucket * 30_000_000,
        value,
        stream_id: Some("s".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_keys_are_exactly_the_hive_escaped_paths() {
    let moto = common::moto::Moto::start();
    moto.create_bucket("rtcq-test");
    let env: Vec<(String, String)> = [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let opts = StoreOptions {
        endpoint: Some(moto.endpoint()),
        region: Some("us-east-1".into()),
    };
    let root = open_with_env("s3://rtcq-test/data/rtc/", &opts, &env).unwrap();
    assert!(!root.is_local());
    let sink = Sink::new(root, "demo").unwrap();
    let s = Slot::containing(
        Utc.with_ymd_and_hms(2026, 11, 25, 23, 55, 0).unwrap(),
        TimeDelta::minutes(5),
    );

    for app in ["a/b", "../../etc", "%41", ".hidden", "ünï"] {
        let w = sink
            .write_slot(
                app,
                &s,
                vec![row(None, &s, 0, 1.0), row(Some("r"), &s, 1, 2.0)],
            )
            .await
            .unwrap();
        assert_eq!(w.rows, 2);
    }
    assert_eq!(sink.read_slot("nobody", &s).await.unwrap(), None);

    // Union rewrite: keep room r, replace the app-level row.
    let mut rows = sink.read_slot("a/b", &s).await.unwrap().unwrap();
    rows.push(row(None, &s, 0, 1.5));
    sink.write_slot("a/b", &s, rows).await.unwrap();
    assert_eq!(
        sink.read_slot("a/b", &s).await.unwrap().unwrap(),
        vec![row(None, &s, 0, 1.5), row(Some("r"), &s, 1, 2.0)]
    );

    let mut keys: Vec<String> = sink
        .store()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    keys.sort();
    assert_eq!(
        keys,
        [
            "data/rtc/app_id=%2541/date=2026-11-25/demo-2355.parquet",
            "data/rtc/app_id=%2E.%2F..%2Fetc/date=2026-11-25/demo-2355.parquet",
            "data/rtc/app_id=%2Ehidden/date=2026-11-25/demo-2355.parquet",
            "data/rtc/app_id=a%2Fb/date=2026-11-25/demo-2355.parquet",
            "data/rtc/app_id=ünï/date=2026-11-25/demo-2355.parquet",
        ]
    );
    assert_eq!(
        moto.raw_keys("rtcq-test"),
        keys,
        "the server holds exactly these keys"
    );
    assert_eq!(
        sink.sweep_temp_files().await.unwrap(),
        0,
        "nothing to sweep on S3"
    );
}
