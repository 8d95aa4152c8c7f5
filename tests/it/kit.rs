//! Shared test helpers: the emulator over loopback, pipeline files, the binary, writing
//! and reading slot files the way a run does, and reading a dataset back row by row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, Utc};
use rtcq::config::{self, Pipeline};
use rtcq::domain::Target;
use rtcq::plan::{Plan, Progress, Slot, Window};
use rtcq::sink::buffer::{DEFAULT_SPILL_POINTS, Point, RowStore, SlotRows};
use rtcq::sink::slot_file::{Replaced, rewrite};
use rtcq::sink::{Row, RowRef, Sink, SinkError, WrittenFile};
use rtcq_emulator::{self as emulator, EmulatorConfig, RunningEmulator};

pub(crate) const AK: &str = emulator::DEMO_ACCESS_KEY;
pub(crate) const SK: &str = emulator::DEMO_SECRET_KEY;

/// An RFC 3339 instant, in UTC.
pub(crate) fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A fixed "now" 10 s past a slot boundary, so client and emulator, started a moment
/// apart, see the same horizon and settled end.
pub(crate) fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:10Z")
        .unwrap()
        .with_timezone(&Utc)
}

pub(crate) async fn emulator_at(now: DateTime<Utc>, rate: Option<f64>) -> RunningEmulator {
    emulator_slow(now, rate, std::time::Duration::ZERO).await
}

/// [`emulator_at`] that waits `latency` before every answer.
pub(crate) async fn emulator_slow(
    now: DateTime<Utc>,
    rate: Option<f64>,
    latency: std::time::Duration,
) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(
        listener,
        EmulatorConfig {
            now: Some(now),
            requests_per_second: rate,
            latency,
            ..EmulatorConfig::default()
        },
    )
    .await
    .unwrap()
}

/// Every target kind on both product types.
pub(crate) const MIXED_TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["join_room_success_rate", "stall_rate"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate", "network_trans_delay"]
product_types = ["native", "web"]
rooms = ["room-1", "room-2"]

[[targets]]
app_id = "app-a"
indicators = ["first_frame_recv_success_rate"]
product_types = ["native", "web"]
rooms = ["room-1"]
users = ["u1", "u2"]

[[targets]]
app_id = "app-b"
indicators = ["first_frame_send_success_rate"]
rooms = ["room-9"]
"#;

/// Writes `pipelines/<name>.toml` under `dir` with the sink at `dir/data`.
pub(crate) fn write_pipeline(
    dir: &Path,
    name: &str,
    endpoint: &str,
    rps: f64,
    targets: &str,
) -> PathBuf {
    let sink = dir.join("data");
    write_pipeline_to(
        dir,
        name,
        endpoint,
        rps,
        &sink.display().to_string(),
        targets,
    )
}

/// Writes `<dir>/<name>.toml` with the sink at `sink_url` (a path or `s3://bucket/prefix`).
pub(crate) fn write_pipeline_to(
    dir: &Path,
    name: &str,
    endpoint: &str,
    rps: f64,
    sink_url: &str,
    targets: &str,
) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\n[api]\nendpoint = \"{endpoint}\"\nrequests_per_second = {rps:?}\n[sink]\nurl = \"{sink_url}\"\n{targets}"
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The result of running the binary.
#[derive(Debug)]
pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `rtcq` with the demo credentials.
pub(crate) fn rtcq(args: &[&str]) -> Output {
    rtcq_env(args, &[])
}

pub(crate) fn rtcq_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = rtcq_command();
    cmd.args(args).envs(env.iter().copied());
    output_of(&mut cmd)
}

/// The binary as the tests start it: the demo key pair, info logs as JSON lines (the
/// tests read them unless they ask for text, the default).
pub(crate) fn rtcq_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcq"));
    cmd.env("VOLC_ACCESSKEY", AK)
        .env("VOLC_SECRETKEY", SK)
        .env_remove("VOLC_SESSION_TOKEN")
        .env("RUST_LOG", "info")
        .env("RTCQ_LOG_FORMAT", "json");
    cmd
}

/// Runs `cmd` to its end: its exit code and output.
pub(crate) fn output_of(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the binary off the async runtime so the in-process emulator keeps serving.
pub(crate) async fn rtcq_async(args: Vec<String>) -> Output {
    rtcq_async_env(args, Vec::new()).await
}

/// [`rtcq_async`] with extra environment variables.
pub(crate) async fn rtcq_async_env(args: Vec<String>, env: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        rtcq_env(&a, &e)
    })
    .await
    .unwrap()
}

/// One row as a user would compare it: (app, room, user, product type, indicator,
/// timestamp µs, value bits, stream id, interval_s).
pub(crate) type Key = (
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    u64,
    Option<String>,
    i32,
);

/// One row of `app_id` as a user would compare it.
fn key_of(app_id: &str, r: RowRef<'_>) -> Key {
    (
        app_id.to_string(),
        r.room_id.map(str::to_string),
        r.user_id.map(str::to_string),
        r.product_type.as_str().to_string(),
        r.indicator.to_string(),
        r.timestamp_us,
        r.value.to_bits(),
        r.stream_id.map(str::to_string),
        r.interval_s,
    )
}

/// Turns one slot file of `app_id`, at `path`, into comparable rows, read the way a run
/// reads it.
pub(crate) fn keys_of(app_id: &str, path: &str, bytes: bytes::Bytes) -> Vec<Key> {
    let mut out = Vec::new();
    rtcq::sink::decode_each(bytes, path, |r| out.push(key_of(app_id, r))).unwrap();
    out
}

/// Writes the file of `app` and `slot` the way a run does, through
/// [`rtcq::sink::slot_file::rewrite`]: `rows` (in any order, the later of two rows with
/// one key winning) plus the existing file's rows outside `replaced`. `None` when
/// nothing was written (no rows, no file).
pub(crate) async fn try_write_rows(
    sink: &Sink,
    app: &str,
    slot: Slot,
    rows: Vec<Row>,
    replaced: &Replaced<'_>,
) -> Result<Option<WrittenFile>, SinkError> {
    let spill = tempfile::tempdir().unwrap();
    let mut store = RowStore::new(spill.path().join("spill"), DEFAULT_SPILL_POINTS);
    let points: Vec<Point> = rows.iter().map(|r| store.point(r.borrowed())).collect();
    let mut slot_rows = SlotRows::default();
    store.add(&mut slot_rows, &points);
    rewrite(sink, &mut store, app, slot, slot_rows, replaced).await
}

/// [`try_write_rows`] that must succeed.
pub(crate) async fn write_rows(
    sink: &Sink,
    app: &str,
    slot: Slot,
    rows: Vec<Row>,
    replaced: &Replaced<'_>,
) -> Option<WrittenFile> {
    try_write_rows(sink, app, slot, rows, replaced)
        .await
        .unwrap()
}

/// The rows of the file of `app` and `slot`, in file order, read the way a run reads
/// them; `None` if there is no file.
pub(crate) async fn try_read_rows(
    sink: &Sink,
    app: &str,
    slot: Slot,
) -> Result<Option<Vec<Row>>, SinkError> {
    let Some((bytes, path)) = sink.read_slot_bytes(app, &slot).await? else {
        return Ok(None);
    };
    let mut rows = Vec::new();
    rtcq::sink::decode_each(bytes, &path, |r| rows.push(r.to_row()))?;
    Ok(Some(rows))
}

/// [`try_read_rows`] that must succeed.
pub(crate) async fn read_rows(sink: &Sink, app: &str, slot: Slot) -> Option<Vec<Row>> {
    try_read_rows(sink, app, slot).await.unwrap()
}

/// Reads every slot file under `root` (local) and returns its rows, duplicates kept.
pub(crate) fn read_dataset(root: &Path) -> Vec<Key> {
    let mut out = Vec::new();
    let Ok(apps) = std::fs::read_dir(root) else {
        return out;
    };
    for app in apps {
        let app = app.unwrap().path();
        let name = app.file_name().unwrap().to_string_lossy().into_owned();
        let Some(escaped) = name.strip_prefix("app_id=") else {
            continue;
        };
        let app_id = rtcq::domain::escape::unescape_value(escaped);
        for date in std::fs::read_dir(&app).unwrap() {
            for file in std::fs::read_dir(date.unwrap().path()).unwrap() {
                let file = file.unwrap().path();
                let fname = file.file_name().unwrap().to_string_lossy().into_owned();
                assert!(
                    !fname.starts_with('.') && fname.ends_with(".parquet"),
                    "unexpected file {}",
                    file.display()
                );
                let bytes = bytes::Bytes::from(std::fs::read(&file).unwrap());
                out.extend(keys_of(&app_id, &file.display().to_string(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// The row of `target`'s series `name` at `ts_us` as a user would compare it.
fn key(
    target: &Target,
    name: &str,
    ts_us: i64,
    value: f64,
    stream: Option<String>,
    interval_s: i32,
) -> Key {
    (
        target.app_id.clone(),
        target.room_id.clone(),
        target.user_id.clone(),
        target.product_type.as_str().to_string(),
        name.to_string(),
        ts_us,
        value.to_bits(),
        stream,
        interval_s,
    )
}

/// The rows one target should have over `[start, end)` according to the generator.
pub(crate) fn expected_for(
    target: &Target,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    emu_now: DateTime<Utc>,
) -> Vec<Key> {
    let users: Vec<String> = target.user_id.iter().cloned().collect();
    let result = emulator::generate(
        &target.app_id,
        target.product_type,
        target.room_id.as_deref(),
        &users,
        &target.indicators,
        start,
        end,
        emu_now,
    );
    let mut out = Vec::new();
    for s in result.indicators {
        for p in s.data {
            let ts = at(&p.time_stamp).timestamp_micros();
            let value = p.value.unwrap();
            out.push(key(target, &s.name, ts, value, p.stream_id.clone(), 30));
        }
    }
    out
}

/// The 5-minute points recovery should write for `target` over the gap `[start, end)`,
/// worked out from the emulator's 30 s values (not from its `ListQuality` answer): each
/// bucket whose start lies in the gap and that the offline API has at `emu_now` (8 hours
/// old), with the mean of its 30 s values rounded to two decimals, no stream,
/// `interval_s` 300.
pub(crate) fn expected_recovered(
    target: &Target,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    emu_now: DateTime<Utc>,
) -> Vec<Key> {
    let five = chrono::TimeDelta::minutes(5);
    let users: Vec<String> = target.user_id.iter().cloned().collect();
    let mut out = Vec::new();
    let first = (start.timestamp_micros() + 299_999_999).div_euclid(300_000_000) * 300;
    let mut b = DateTime::from_timestamp(first, 0).unwrap();
    while b < end && b + five <= emu_now - chrono::TimeDelta::hours(8) {
        let result = emulator::generate(
            &target.app_id,
            target.product_type,
            target.room_id.as_deref(),
            &users,
            &target.indicators,
            b,
            b + five,
            emu_now,
        );
        for s in result.indicators {
            let values: Vec<f64> = s.data.iter().filter_map(|p| p.value).collect();
            if values.is_empty() {
                continue;
            }
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            let value = (mean * 100.0).round() / 100.0;
            out.push(key(target, &s.name, b.timestamp_micros(), value, None, 300));
        }
        b += five;
    }
    out
}

/// What a first run at `now` should write for every target of `pipeline`: from the
/// horizon to the settled end.
pub(crate) fn expected_first_run(pipeline: &Pipeline, now: DateTime<Utc>) -> Vec<Key> {
    let window = Window::at(now, pipeline.sink.slot);
    let plan = Plan::build(
        vec![Progress::default(); pipeline.targets.len()],
        window,
        |_| None,
    );
    let mut out = Vec::new();
    for r in plan.requests.iter() {
        out.extend(expected_for(
            &pipeline.targets[r.target],
            r.start,
            r.end,
            now,
        ));
    }
    out.sort();
    out
}

pub(crate) fn load(path: &Path) -> Pipeline {
    config::load(path).unwrap()
}

/// Every file under `root`, relative to it with `/` separators, sorted.
pub(crate) fn relative_files(root: &Path) -> Vec<String> {
    snapshot(root)
        .keys()
        .map(|p| {
            p.strip_prefix(root)
                .unwrap()
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/")
        })
        .collect()
}

/// File name -> bytes of every file under `root`, for "unchanged" checks.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// Something a test needs from outside the project, which `make test` installs.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Need {
    /// The Python venv with DuckDB, pyarrow, pyspark, Airflow, moto and the SDK.
    Python,
    /// A Prometheus Pushgateway binary.
    Pushgateway,
    /// `promtool`, for the alert rules.
    Promtool,
    /// Java, for Spark.
    Java,
}

/// Why the first of `needs` that is missing cannot be had here, or `None` when all are.
pub(crate) fn missing(needs: &[Need]) -> Option<String> {
    needs.iter().find_map(|need| match need {
        Need::Python => (!python_path().exists())
            .then(|| "no Python test venv (run `make venv`, or set RTCQ_PYTHON)".to_string()),
        Need::Pushgateway => (!pushgateway_path().exists()).then(|| {
            "no Prometheus Pushgateway (run `make deps`, or set RTCQ_PUSHGATEWAY)".to_string()
        }),
        Need::Promtool => {
            (!on_path("promtool")).then(|| "no promtool (run `make deps`)".to_string())
        }
        Need::Java => (!on_path("java")).then(|| "no Java for Spark (run `make deps`)".to_string()),
    })
}

/// Skips the calling test, saying why, when something it needs is missing; with
/// `RTCQ_REQUIRE_ALL=1` (`make test`, CI) a missing need fails it instead. `cargo test`
/// on a machine without Python or Java thus passes and lists what it did not check.
macro_rules! needs {
    ($($need:ident),+) => {
        if let Some(why) = crate::kit::missing(&[$(crate::kit::Need::$need),+]) {
            let test = crate::kit::test_name();
            assert!(
                std::env::var_os("RTCQ_REQUIRE_ALL").is_none_or(|v| v != "1"),
                "{test}: {why}; RTCQ_REQUIRE_ALL=1 needs it"
            );
            // Straight to stderr, past the harness's capture, so the skip shows.
            let _ = std::io::Write::write_all(
                &mut std::io::stderr(),
                format!("skipped {test}: {why}\n").as_bytes(),
            );
            return;
        }
    };
}
pub(crate) use needs;

/// The running test's name (the test harness names its thread after the test).
pub(crate) fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

fn python_path() -> PathBuf {
    match std::env::var_os("RTCQ_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"),
    }
}

fn pushgateway_path() -> PathBuf {
    std::env::var_os("RTCQ_PUSHGATEWAY")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/bin/prometheus-pushgateway".into())
}

/// The Python interpreter of the test venv (`make venv`). Tests that reach it start
/// with `needs!(Python)`.
pub(crate) fn python() -> PathBuf {
    let p = python_path();
    assert!(
        p.exists(),
        "{}: no Python test venv at {}",
        test_name(),
        p.display()
    );
    p
}

/// `s` as a TOML basic string, quoted, with `\`, `"` and control characters escaped.
pub(crate) fn toml_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Runs `tests/py/<script>` with `args` and `env` on the test venv's Python, and returns
/// the JSON it printed; the test fails with the script's stderr when it does.
pub(crate) fn py_json(script: &str, args: &[&str], env: &[(String, String)]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new(python())
        .arg(&path)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap_or_else(|e| panic!("cannot start {script}: {e}"));
    assert!(
        out.status.success(),
        "{script} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON: {e}"))
}

/// Two apps, three targets: app-a on both platforms, app-b's room-1.
pub(crate) const TWO_APPS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-b"
indicators = ["join_room_success_rate"]
rooms = ["room-1"]
"#;

/// A real Prometheus Pushgateway (Debian's `prometheus-pushgateway`, installed by
/// `make deps`) on a free loopback port, stopped on drop.
pub(crate) struct Pushgateway {
    child: std::process::Child,
    pub port: u16,
}

impl Pushgateway {
    pub(crate) fn start() -> Pushgateway {
        let bin = pushgateway_path();
        assert!(
            bin.exists(),
            "{} is missing: run `make deps` (apt-get install prometheus-pushgateway) or set RTCQ_PUSHGATEWAY",
            bin.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(bin)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cannot start the Pushgateway");
        let pg = Pushgateway { child, port };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "no Pushgateway on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        pg
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET /metrics`, the reply. Asked as HTTP/1.0, so that a long body comes whole
    /// rather than in chunks whose size lines would split a metric's line.
    pub(crate) fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        let status = reply.lines().next().unwrap_or_default();
        assert!(
            status.starts_with("HTTP/1.") && status.contains(" 200 "),
            "{reply}"
        );
        assert!(!reply.contains("Transfer-Encoding: chunked"), "{reply}");
        reply
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) mod moto {
    //! A moto S3 server on a free loopback port, and reading a dataset back from it.

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use futures::TryStreamExt;
    use object_store::ObjectStoreExt;
    use object_store::path::Path;
    use rtcq::sink::StoreOptions;
    use rtcq::sink::store::{SinkRoot, open_with_env};

    use super::Key;

    pub(crate) const REGION: &str = "us-east-1";

    /// A moto S3 server, stopped on drop.
    pub(crate) struct Moto {
        child: Child,
        pub port: u16,
    }

    impl Moto {
        pub(crate) fn start() -> Moto {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Command::new(super::python())
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

        pub(crate) fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        /// One unsigned request (moto accepts them) with extra headers and a body;
        /// returns the whole reply.
        pub(crate) fn request(
            &self,
            method: &str,
            target: &str,
            headers: &[(&str, &str)],
            body: &str,
        ) -> String {
            let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
            let mut head = format!(
                "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
                self.port,
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body.as_bytes()).unwrap();
            let mut reply = Vec::new();
            s.read_to_end(&mut reply).unwrap();
            String::from_utf8(reply).unwrap()
        }

        /// One unsigned request that must succeed.
        pub(crate) fn raw(&self, method: &str, target: &str) -> String {
            let reply = self.request(method, target, &[], "");
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            reply
        }

        pub(crate) fn create_bucket(&self, bucket: &str) {
            self.raw("PUT", &format!("/{bucket}"));
        }

        /// The keys of `bucket` as the server stores them, from its ListObjectsV2 XML.
        pub(crate) fn raw_keys(&self, bucket: &str) -> Vec<String> {
            let reply = self.raw("GET", &format!("/{bucket}?list-type=2"));
            let mut keys: Vec<String> = reply
                .split("<Key>")
                .skip(1)
                .map(|k| k.split("</Key>").next().unwrap().to_string())
                .collect();
            keys.sort();
            keys
        }

        /// The environment a run needs to reach this server.
        pub(crate) fn env(&self) -> Vec<(String, String)> {
            [
                ("AWS_ENDPOINT", self.endpoint().as_str()),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", REGION),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        }

        /// Opens `url` (`s3://bucket/prefix`) the way the binary does with [`Moto::env`].
        pub(crate) fn open(&self, url: &str) -> SinkRoot {
            open_with_env(url, &StoreOptions::default(), &self.env()).unwrap()
        }
    }

    impl Drop for Moto {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Every key under the root, relative to it, with its full path, sorted.
    pub(crate) async fn objects(root: &SinkRoot) -> Vec<(String, Path)> {
        let prefix = root.root().clone();
        let mut keys: Vec<(String, Path)> = root
            .store()
            .list(Some(&prefix))
            .map_ok(|m| {
                let k = m.location.to_string();
                let rel = k
                    .strip_prefix(&format!("{prefix}/"))
                    .map(str::to_string)
                    .unwrap_or(k);
                (rel, m.location)
            })
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }

    /// Every key under the root, relative to it, sorted.
    pub(crate) async fn keys(root: &SinkRoot) -> Vec<String> {
        objects(root).await.into_iter().map(|(k, _)| k).collect()
    }

    /// Reads every slot file under the root and returns its rows, duplicates kept.
    pub(crate) async fn read_dataset(root: &SinkRoot) -> Vec<Key> {
        let mut out = Vec::new();
        for (key, path) in objects(root).await {
            if key.starts_with("_state/") {
                continue;
            }
            assert!(key.ends_with(".parquet"), "unexpected object {key}");
            let app = key
                .strip_prefix("app_id=")
                .and_then(|k| k.split('/').next())
                .unwrap_or_else(|| panic!("unexpected object {key}"));
            let app_id = rtcq::domain::escape::unescape_value(app);
            let bytes = root
                .store()
                .get(&path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            out.extend(super::keys_of(&app_id, &key, bytes));
        }
        out.sort();
        out
    }

    /// The bytes of one object under the root, `None` if absent.
    pub(crate) async fn get(root: &SinkRoot, key: &str) -> Option<Vec<u8>> {
        let path = Path::parse(format!("{}/{key}", root.root())).unwrap();
        match root.store().get(&path).await {
            Ok(g) => Some(g.bytes().await.unwrap().to_vec()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }
}

/// An emulator with `cfg` on a free loopback port.
pub(crate) async fn emulator_with(cfg: EmulatorConfig) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::spawn(listener, cfg).await.unwrap()
}

/// A short retry policy and request timeout, so failing runs end in about a second.
pub(crate) fn fast_retries() -> Vec<(String, String)> {
    [
        ("RTCQ_RETRY_MAX", "2"),
        ("RTCQ_RETRY_MIN_MS", "10"),
        ("RTCQ_RETRY_MAX_MS", "40"),
        ("RTCQ_REQUEST_TIMEOUT_MS", "400"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `rtcq run` arguments: the config, `--now`, the summary on stdout, and `extra`.
pub(crate) fn run_args(cfg: &Path, now: DateTime<Utc>, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "run".to_string(),
        "--config".to_string(),
        cfg.display().to_string(),
        "--now".to_string(),
        now.to_rfc3339(),
        "--summary".to_string(),
        "-".to_string(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Asserts `got` has no duplicate row and equals `expected` row for row.
pub(crate) fn assert_exact(got: &[Key], expected: &[Key]) {
    let mut dedup = got.to_vec();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len(), "duplicate rows");
    if got.len() != expected.len() {
        let missing: Vec<_> = expected
            .iter()
            .filter(|k| !got.contains(k))
            .take(5)
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|k| !expected.contains(k))
            .take(5)
            .collect();
        panic!(
            "row count: got {}, expected {}; missing {missing:?}; unexpected {extra:?}",
            got.len(),
            expected.len()
        );
    }
    assert!(got == expected, "rows differ from the expected rows");
}

/// A small deterministic generator (SplitMix64) for seeded kills, faults and budgets.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, max]`.
    pub(crate) fn below(&mut self, max: std::time::Duration) -> std::time::Duration {
        let us = max.as_micros() as u64;
        std::time::Duration::from_micros(self.next() % (us + 1))
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

/// The native target of discovered room `room` of `app_id` that an entry with
/// `indicators = ["stall_rate"]` and `rooms = "active"` makes.
pub(crate) fn stall_room_target(app_id: &str, room: &str) -> Target {
    Target {
        app_id: app_id.into(),
        product_type: rtcq::domain::ProductType::Native,
        room_id: Some(room.into()),
        user_id: None,
        indicators: vec!["stall_rate".to_string()].into(),
        max_lag: None,
    }
}

/// What [`kill_sweep`] did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sweep {
    pub(crate) kills: usize,
    pub(crate) tries: usize,
    /// Kills that [`kill_sweep`]'s `mid` judged to land mid-work.
    pub(crate) mid: usize,
}

/// Starts `rtcq args` (with `env` and the demo keys) again and again and SIGKILLs the
/// n-th start after n × `step` (0, step, 2 step, …), until `kills` kills, `tries`
/// starts, or a start that finishes by itself (which must exit 0). `count` is read
/// before each start; after each kill, `mid(count before)` says whether the kill landed
/// mid-work (e.g. after an answer came back and before it was all recorded).
pub(crate) async fn kill_sweep(
    args: &[String],
    env: &[(String, String)],
    step: std::time::Duration,
    (kills, tries): (usize, usize),
    count: impl Fn() -> u64,
    mut mid: impl FnMut(u64) -> bool,
) -> Sweep {
    let bin = env!("CARGO_BIN_EXE_rtcq");
    let mut sweep = Sweep {
        kills: 0,
        tries: 0,
        mid: 0,
    };
    while sweep.kills < kills && sweep.tries < tries {
        let before = count();
        let delay = step * sweep.tries as u32;
        sweep.tries += 1;
        let mut child = Command::new(bin)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("VOLC_ACCESSKEY", AK)
            .env("VOLC_SECRETKEY", SK)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let until = std::time::Instant::now() + delay;
        let finished = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() >= until {
                break None;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        };
        match finished {
            Some(status) => {
                assert_eq!(status.code(), Some(0), "a run failed by itself");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                sweep.kills += 1;
                if mid(before) {
                    sweep.mid += 1;
                }
            }
        }
    }
    eprintln!(
        "{} kills in {} tries, {} mid-work",
        sweep.kills, sweep.tries, sweep.mid
    );
    sweep
}

/// The rows `reader` (`"duckdb"` or `"pyarrow"`) saw, from `tests/py/read_dataset.py`'s
/// JSON, as [`Key`]s.
pub(crate) fn reader_rows(seen: &serde_json::Value, reader: &str) -> Vec<Key> {
    seen[reader]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |i: usize| r[i].as_str().map(str::to_string);
            (
                s(0).unwrap(),
                s(2),
                s(3),
                s(4).unwrap(),
                s(5).unwrap(),
                r[7].as_i64().unwrap(),
                r[8].as_u64().unwrap(),
                s(9),
                r[10].as_i64().unwrap() as i32,
            )
        })
        .collect()
}
