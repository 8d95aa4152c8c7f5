//! The sink on S3 only, against a local moto server: the store's own listing shows the
//! keys exactly as the server holds them (Hive escapes kept, not re-encoded), and there
//! is nothing to sweep. What every store must do is in `sink_stores.rs`.
//!
//! Needs Python with moto: `RTCQ_PYTHON`, else `.venv/bin/python` (`make venv`).

use crate::kit::needs;
use crate::kit::write_rows;
use chrono::{TimeDelta, TimeZone, Utc};
use futures::TryStreamExt;
use rtcq::domain::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::slot_file::Replaced;
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
        interval_s: 30,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_shows_the_stored_keys_and_sweep_is_a_no_op() {
    needs!(Python);
    let moto = crate::kit::moto::Moto::start();
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

    for app in ["a/b", "%41", "ünï"] {
        let rows = vec![row(None, &s, 0, 1.0), row(Some("r"), &s, 1, 2.0)];
        let w = write_rows(&sink, app, s, rows, &Replaced::new()).await;
        assert_eq!(w.map(|w| w.rows), Some(2), "{app}");
    }

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
