//! Hostile ids: app, room and user ids that look like paths, partition syntax, escapes,
//! odd Unicode or near-collisions go through a whole run (the binary against the
//! emulator) on local disk and on S3 (moto), stay inside the sink root as one path level
//! each, never share a directory, and read back exactly through DuckDB (local) and
//! pyarrow (S3). Invalid ids (empty, control characters, too long) are refused when the
//! config loads, naming the file, the key and the reason.
//!
//! Needs Python with duckdb, pyarrow and moto: `RTCQ_PYTHON`, else `.venv/bin/python`.

use std::collections::BTreeSet;
use std::path::Path;

use crate::kit::moto::{self, Moto};
use crate::kit::*;
use serde_json::Value;

/// Ids that are valid (printable, 1 to 128 bytes) but hostile as path parts. Pairs that
/// a careless encoding would merge: `A`/`%41`, NFC `é`/NFD `e\u{301}`, `a/b`/`a%2Fb`.
const HOSTILE: [&str; 22] = [
    "../../etc",
    "..",
    "a/b",
    "a%2Fb",
    "x=y",
    "app_id=evil",
    "date=2020-01-01",
    "%41",
    "A",
    ".hidden",
    "_under",
    "sp ace",
    "a*?[x]{y}^",
    "back\\slash\"quote'",
    "0123",
    "\u{FFFD}",
    "Ωmega-абв-漢字-عربي",
    "\u{200F}שלום\u{200E}-rtl",
    "\u{e9}",
    "e\u{301}",
    "~$HOME`id`|;<>",
    // 128 bytes, the longest id accepted.
    "LLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLLL",
];

/// For each id: an app-level, a room-level and a per-user target, all named by that id.
fn targets() -> String {
    let mut t = String::new();
    for id in HOSTILE {
        let id = toml_str(id);
        t.push_str(&format!(
            "[[targets]]\napp_id = {id}\nindicators = [\"stall_rate\"]\n\n\
             [[targets]]\napp_id = {id}\nindicators = [\"stall_rate\"]\nrooms = [{id}]\n\n\
             [[targets]]\napp_id = {id}\nindicators = [\"stall_rate\"]\nrooms = [{id}]\nusers = [{id}]\n\n"
        ));
    }
    t
}

fn run_args(cfg: &Path) -> Vec<String> {
    [
        "run",
        "--config",
        &cfg.display().to_string(),
        "--now",
        &t0().to_rfc3339(),
        "--summary",
        "-",
    ]
    .map(String::from)
    .to_vec()
}

/// (app, room, user, product, indicator, timestamp µs, value bits, stream, interval) as
/// JSON, the shape both Python readers print after dropping `date` and `unit`.
fn as_json(keys: &[Key]) -> Vec<String> {
    let mut out: Vec<String> = keys
        .iter()
        .map(|k| serde_json::json!([k.0, k.1, k.2, k.3, k.4, k.5, k.6, k.7, k.8]).to_string())
        .collect();
    out.sort();
    out
}

/// The readers' rows `[app, date, room, user, product, indicator, unit, ts, bits, stream,
/// interval]` in the shape of [`as_json`].
fn reader_rows(rows: &Value) -> Vec<String> {
    let mut out: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            serde_json::json!([r[0], r[2], r[3], r[4], r[5], r[7], r[8], r[9], r[10]]).to_string()
        })
        .collect();
    out.sort();
    out
}

/// Every data key relative to the root is `app_id=<one segment>/date=<day>/<file>`, and
/// the app directories are exactly one per id.
fn assert_layout(keys: &[String]) {
    let mut apps = BTreeSet::new();
    for k in keys {
        if k.starts_with("_state/") {
            continue;
        }
        let parts: Vec<&str> = k.split('/').collect();
        assert_eq!(parts.len(), 3, "{k} adds a path level");
        assert!(parts[0].starts_with("app_id="), "{k}");
        assert!(parts[1].starts_with("date=2026-11-25"), "{k}");
        assert!(
            parts[2].starts_with("ids-") && parts[2].ends_with(".parquet"),
            "{k}"
        );
        apps.insert(parts[0].to_string());
    }
    let want: BTreeSet<String> = HOSTILE
        .iter()
        .map(|id| rtcq::sink::partition::app_segment(id))
        .collect();
    assert_eq!(want.len(), HOSTILE.len(), "two ids share a directory");
    assert_eq!(apps, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_stay_in_the_sink_and_read_back_exactly_on_local_disk() {
    needs!(Python);
    let now = t0();
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "ids", &emu.url(), 200.0, &targets());
    let pipeline = load(&cfg);
    assert_eq!(pipeline.targets.len(), HOSTILE.len() * 3);

    let out = rtcq_async(run_args(&cfg)).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let summary: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(summary["requests_sent"], HOSTILE.len() * 3);
    assert_eq!(summary["points_dropped"]["user_not_applied"], 0);
    assert_eq!(emu.stats().status(400), 0, "the emulator took every id");

    // Nothing was written beside the sink root.
    let mut beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["data", "ids.toml"]);
    let root = dir.path().join("data");
    assert_layout(&relative_files(&root));

    let expected = expected_first_run(&pipeline, now);
    let got = read_dataset(&root);
    assert_eq!(got, expected, "rows as rtcq decodes them");
    let apps: BTreeSet<&str> = got.iter().map(|k| k.0.as_str()).collect();
    assert_eq!(apps, HOSTILE.iter().copied().collect());

    let root_text = root.display().to_string();
    let read = tokio::task::spawn_blocking(move || py_json("read_dataset.py", &[&root_text], &[]))
        .await
        .unwrap();
    let want = as_json(&expected);
    assert_eq!(reader_rows(&read["duckdb"]["rows"]), want, "DuckDB");
    assert_eq!(reader_rows(&read["pyarrow"]["rows"]), want, "pyarrow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_ids_stay_in_the_prefix_and_read_back_exactly_on_s3() {
    needs!(Python);
    let now = t0();
    let moto = Moto::start();
    moto.create_bucket("rtcq-ids");
    let emu = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let url = "s3://rtcq-ids/data/rtc";
    let cfg = write_pipeline_to(dir.path(), "ids", &emu.url(), 200.0, url, &targets());
    let pipeline = load(&cfg);

    let out = rtcq_async_env(run_args(&cfg), moto.env()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);

    // Every key the server holds is under the prefix, one level per part.
    let raw = moto.raw_keys("rtcq-ids");
    assert!(raw.iter().all(|k| k.starts_with("data/rtc/")), "{raw:?}");
    let root = moto.open(url);
    let keys = moto::keys(&root).await;
    assert_layout(&keys);

    let expected = expected_first_run(&pipeline, now);
    assert_eq!(moto::read_dataset(&root).await, expected);

    let endpoint = moto.endpoint();
    let env = moto.env();
    let read =
        tokio::task::spawn_blocking(move || py_json("read_pyarrow.py", &[url, &endpoint], &env))
            .await
            .unwrap();
    assert_eq!(
        reader_rows(&read["rows"]),
        as_json(&expected),
        "pyarrow over S3"
    );
}

fn rejection(app: &str, rooms: &str, users: &str) -> String {
    let text = format!(
        "name = \"ids\"\n[sink]\nurl = \"./data\"\n[[targets]]\napp_id = {app}\nindicators = [\"stall_rate\"]\nrooms = {rooms}\nusers = {users}\n"
    );
    let got = rtcq::config::parse(Path::new("pipelines/ids.toml"), &text)
        .unwrap_err()
        .to_string();
    // Each refusal points at its key's line; the rest is compared as written below.
    for (key, place) in [
        ("targets[0].app_id", " (line 5, column 10)"),
        ("targets[0].rooms", " (line 7, column 9)"),
        ("targets[0].users", " (line 8, column 9)"),
    ] {
        if let Some(rest) = got.strip_prefix(&format!("pipelines/ids.toml: {key}{place}")) {
            return format!("pipelines/ids.toml: {key}{rest}");
        }
    }
    got
}

#[test]
fn invalid_ids_are_refused_at_load_with_file_key_and_reason() {
    let ok = "\"ok\"";
    let ok_list = "[\"ok\"]";
    let mega = "m".repeat(1 << 20);
    let cases: Vec<(String, String, String, String)> = vec![
        (
            "\"\"".into(),
            ok_list.into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].app_id: is empty: ids must have at least one character".into(),
        ),
        (
            ok.into(),
            "[\"ok\", \"\"]".into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].rooms[1]: is empty: ids must have at least one character".into(),
        ),
        (
            ok.into(),
            ok_list.into(),
            "[\"\"]".into(),
            "pipelines/ids.toml: targets[0].users[0]: is empty: ids must have at least one character".into(),
        ),
        (
            toml_str(&mega),
            ok_list.into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].app_id: is 1048576 bytes long: ids may have at most 128 bytes".into(),
        ),
        (
            ok.into(),
            format!("[{}]", toml_str(&mega)),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].rooms[0]: is 1048576 bytes long: ids may have at most 128 bytes".into(),
        ),
        (
            ok.into(),
            ok_list.into(),
            format!("[\"ok\", {}]", toml_str(&"é".repeat(65))),
            "pipelines/ids.toml: targets[0].users[1]: is 130 bytes long: ids may have at most 128 bytes".into(),
        ),
        (
            "\"a\\u0000b\"".into(),
            ok_list.into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].app_id: \"a\\0b\" contains the control character U+0000: ids must be printable".into(),
        ),
        (
            ok.into(),
            "[\"line\\nbreak\"]".into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].rooms[0]: \"line\\nbreak\" contains the control character U+000A: ids must be printable".into(),
        ),
        (
            ok.into(),
            ok_list.into(),
            "[\"esc\\u001b[31m\"]".into(),
            "pipelines/ids.toml: targets[0].users[0]: \"esc\\u{1b}[31m\" contains the control character U+001B: ids must be printable".into(),
        ),
        (
            "\"del\\u007f\"".into(),
            ok_list.into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].app_id: \"del\\u{7f}\" contains the control character U+007F: ids must be printable".into(),
        ),
        (
            "\"c1\\u0085\"".into(),
            ok_list.into(),
            ok_list.into(),
            "pipelines/ids.toml: targets[0].app_id: \"c1\\u{85}\" contains the control character U+0085: ids must be printable".into(),
        ),
        (
            // 120 bytes that each become three: 7 + 360 bytes of directory name.
            toml_str(&"/".repeat(120)),
            ok_list.into(),
            ok_list.into(),
            format!(
                "pipelines/ids.toml: targets[0].app_id: {:?} becomes the 367-byte directory name {:?}: at most 255 bytes fit a file name",
                "/".repeat(120),
                format!("app_id={}", "%2F".repeat(120))
            ),
        ),
    ];
    for (app, rooms, users, want) in cases {
        assert_eq!(rejection(&app, &rooms, &users), want);
    }
}

#[test]
fn the_binary_refuses_an_invalid_id_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(
        dir.path(),
        "bad",
        "http://127.0.0.1:9",
        2.0,
        "[[targets]]\napp_id = \"app\"\nindicators = [\"stall_rate\"]\nrooms = [\"tab\\there\"]\n",
    );
    // What a person sees on a terminal: text logs.
    let out = rtcq(&[
        "run",
        "--config",
        &cfg.display().to_string(),
        "--log-format",
        "text",
    ]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    let want = format!(
        "error: {}: targets[0].rooms[0]: \"tab\\there\" contains the control character U+0009: ids must be printable",
        cfg.display()
    );
    assert!(out.stderr.contains(&want), "{}", out.stderr);
    assert!(!dir.path().join("data").exists(), "nothing was created");
}
