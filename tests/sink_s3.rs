//! The sink on S3, against a local moto server: exact object keys (Hive escapes kept, not
//! re-encoded), read-back, union rewrite, nothing left but the final objects.
//!
//! Needs Python with moto: `RTCQ_PYTHON`, else `.venv/bin/python` (`make venv`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, TimeZone, Utc};
use futures::TryStreamExt;
use rtcq::config::ProductType;
use rtcq::plan::Slot;
use rtcq::sink::store::open_with_env;
use rtcq::sink::{Row, Sink, StoreOptions};

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("RTCQ_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "no Python for the S3 tests: run `make venv` (creates {}) or set RTCQ_PYTHON to a \
         python with moto",
        venv.display()
    );
    venv
}

/// A moto S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    fn start() -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(python())
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start moto.server");
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        moto
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned request (moto accepts them); returns the whole reply.
    fn raw(&self, method: &str, target: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            s,
            "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .unwrap();
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).unwrap();
        let reply = String::from_utf8(reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        reply
    }

    fn create_bucket(&self, bucket: &str) {
        self.raw("PUT", &format!("/{bucket}"));
    }

    /// The keys of `bucket` as the server stores them, from its ListObjectsV2 XML.
    fn raw_keys(&self, bucket: &str) -> Vec<String> {
        let reply = self.raw("GET", &format!("/{bucket}?list-type=2"));
        let mut keys: Vec<String> = reply
            .split("<Key>")
            .skip(1)
            .map(|k| k.split("</Key>").next().unwrap().to_string())
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
    let moto = Moto::start();
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
