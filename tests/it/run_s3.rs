//! End to end on S3: the binary against the emulator over loopback and a moto S3 server,
//! compared with the same pipeline on local disk; the lease and the conditional state
//! save under concurrent and overlapping runs.
//!
//! Needs Python with moto and pyarrow: `RTCQ_PYTHON`, else `.venv/bin/python`.

use std::sync::Arc;
use std::time::Duration;

use crate::kit::moto::{self, Moto};
use crate::kit::*;
use chrono::TimeDelta;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

const BUCKET: &str = "rtcq";
const URL: &str = "s3://rtcq/data/rtc";
const ONE_TARGET: &str = "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\n";

fn arg(s: impl ToString) -> String {
    s.to_string()
}

fn with_endpoint(mut args: Vec<String>, endpoint: &str) -> Vec<String> {
    args.extend([arg("--endpoint"), arg(endpoint)]);
    args
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no summary ({e}): {}\n{}", out.stdout, out.stderr))
}

fn env_plus(moto: &Moto, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = moto.env();
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

async fn state_of(root: &rtcq::sink::SinkRoot, pipeline: &str) -> Option<serde_json::Value> {
    moto::get(root, &format!("_state/{pipeline}.json"))
        .await
        .map(|b| serde_json::from_slice(&b).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_first_run_writes_exactly_the_generator_rows_with_the_local_keys_and_second_run_fetches_nothing()
 {
    needs!(Python);
    let now = t0();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let emu = emulator_at(now, None).await;
    let s3_dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(s3_dir.path(), "mixed", &emu.url(), 50.0, URL, MIXED_TARGETS);
    let pipeline = load(&cfg);

    let out = rtcq_async_env(run_args(&cfg, now, &[]), moto.env()).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let first = summary(&out);
    assert_eq!(first["requests_planned"], 11);
    assert_eq!(first["requests_sent"], 11);
    assert_eq!(first["slots_pending"], 0);
    assert_eq!(first["gaps_recorded"], 0);
    assert_eq!(first["files_written"], 24);

    let root = moto.open(URL);
    let got = moto::read_dataset(&root).await;
    let expected = expected_first_run(&pipeline, now);
    assert!(expected.len() > 1000, "{}", expected.len());
    assert_eq!(got, expected);
    assert_eq!(first["rows_written"], expected.len());
    assert_eq!(
        state_of(&root, "mixed").await.unwrap()["run_id"],
        first["run_id"]
    );

    // The same pipeline on local disk: the same keys (the lease object is gone on S3, the
    // local lock file stays).
    let local_dir = tempfile::tempdir().unwrap();
    let local_cfg = write_pipeline(local_dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
    let out = rtcq_async(run_args(&local_cfg, now, &[])).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let local_files = relative_files(&local_dir.path().join("data"));
    let s3_keys = moto::keys(&root).await;
    let mut without_lock: Vec<String> = local_files
        .iter()
        .filter(|f| *f != "_state/mixed.lease")
        .cloned()
        .collect();
    without_lock.sort();
    assert_eq!(s3_keys, without_lock);
    assert_eq!(s3_keys.len(), 24 + 2);
    assert_eq!(
        s3_keys[0..2],
        ["_state/mixed.json", "_state/mixed.last-run.json"]
    );
    assert_eq!(
        moto.raw_keys(BUCKET),
        s3_keys
            .iter()
            .map(|k| format!("data/rtc/{k}"))
            .collect::<Vec<_>>(),
        "the server holds exactly these keys"
    );
    assert_eq!(read_dataset(&local_dir.path().join("data")), got);

    let before: Vec<_> = {
        let mut v = Vec::new();
        for k in &s3_keys {
            if k.ends_with(".parquet") {
                v.push((k.clone(), moto::get(&root, k).await.unwrap()));
            }
        }
        v
    };
    let out = rtcq_async_env(run_args(&cfg, now, &[]), moto.env()).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let second = summary(&out);
    assert_eq!(second["requests_sent"], 0);
    assert_eq!(second["files_written"], 0);
    assert_eq!(emu.requests(), 11 + 11);
    for (k, bytes) in &before {
        assert_eq!(moto::get(&root, k).await.as_ref(), Some(bytes), "{k}");
    }
    assert_eq!(moto::keys(&root).await, s3_keys);
    assert_eq!(
        state_of(&root, "mixed").await.unwrap()["run_id"],
        second["run_id"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyarrow_reads_the_same_rows_from_s3_as_from_local_disk() {
    needs!(Python);
    let now = t0();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let emu = emulator_at(now, None).await;
    let s3_dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(s3_dir.path(), "mixed", &emu.url(), 50.0, URL, MIXED_TARGETS);
    let out = rtcq_async_env(run_args(&cfg, now, &[]), moto.env()).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let local_dir = tempfile::tempdir().unwrap();
    let local_cfg = write_pipeline(local_dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
    let out = rtcq_async(run_args(&local_cfg, now, &[])).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);

    let endpoint = moto.endpoint();
    let env = moto.env();
    let (s3, local) = tokio::task::spawn_blocking(move || {
        let local_root = local_dir.path().join("data");
        (
            py_json("read_pyarrow.py", &[URL, &endpoint], &env),
            py_json("read_pyarrow.py", &[&local_root.display().to_string()], &[]),
        )
    })
    .await
    .unwrap();
    let expected = expected_first_run(&load(&cfg), now);
    assert_eq!(s3["rows"].as_array().unwrap().len(), expected.len());
    assert_eq!(s3["files"].as_array().unwrap().len(), 24);
    assert_eq!(s3["columns"], local["columns"]);
    assert_eq!(s3["files"], local["files"]);
    assert_eq!(s3["rows"], local["rows"]);
    assert_eq!(
        s3["columns"][0],
        serde_json::json!(["room_id", "string"]),
        "{}",
        s3["columns"]
    );
}

/// Two runs of one pipeline started together: exactly one writes, the other exits 4.
async fn race(sink_url: Option<&str>) {
    let now = t0();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    // Slow answers: the winner holds the lease long after the loser looked.
    let emu = emulator_slow(now, None, Duration::from_millis(1500)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = match sink_url {
        Some(url) => write_pipeline_to(dir.path(), "race", &emu.url(), 50.0, url, ONE_TARGET),
        None => write_pipeline(dir.path(), "race", &emu.url(), 50.0, ONE_TARGET),
    };
    let (a, b) = tokio::join!(
        rtcq_async_env(run_args(&cfg, now, &[]), moto.env()),
        rtcq_async_env(run_args(&cfg, now, &[]), moto.env())
    );
    let (winner, loser) = if a.code == 0 { (a, b) } else { (b, a) };
    assert_eq!(winner.code, 0, "stderr: {}", winner.stderr);
    assert_eq!(loser.code, 4, "stderr: {}", loser.stderr);
    // The loser's summary says so, with nothing sent (Airflow skips on exit 4).
    let lost = summary(&loser);
    assert_eq!(lost["exit_code"], 4);
    assert_eq!(lost["requests_sent"], 0);
    assert!(
        loser
            .stderr
            .contains("pipeline race is busy: another run holds the lease"),
        "{}",
        loser.stderr
    );
    let won = summary(&winner);
    assert_eq!(won["requests_sent"], 1);
    assert_eq!(emu.requests(), 1, "the loser sent nothing");
    let state: serde_json::Value = match sink_url {
        Some(url) => state_of(&moto.open(url), "race").await.unwrap(),
        None => serde_json::from_slice(
            &std::fs::read(dir.path().join("data/_state/race.json")).unwrap(),
        )
        .unwrap(),
    };
    assert_eq!(state["run_id"], won["run_id"]);
    let expected = expected_first_run(&load(&cfg), now);
    let got = match sink_url {
        Some(url) => {
            let root = moto.open(url);
            assert_eq!(
                moto::keys(&root)
                    .await
                    .iter()
                    .filter(|k| k.starts_with("_state/"))
                    .collect::<Vec<_>>(),
                ["_state/race.json", "_state/race.last-run.json"],
                "the lease is released; the last run is the winner's"
            );
            moto::read_dataset(&root).await
        }
        None => read_dataset(&dir.path().join("data")),
    };
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_together_on_s3_one_writes_the_other_exits_busy() {
    needs!(Python);
    race(Some(URL)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runs_started_together_on_local_disk_one_writes_the_other_exits_busy() {
    needs!(Python);
    race(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_renews_its_lease_so_a_later_run_is_still_busy() {
    needs!(Python);
    let now = t0();
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let slow = emulator_slow(now, None, Duration::from_secs(4)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(dir.path(), "renew", &slow.url(), 50.0, URL, ONE_TARGET);
    // TTL 1.5 s, renewed every 0.5 s: without renewal it would expire long before the
    // answer comes back.
    let env = env_plus(&moto, &[("RTCQ_LEASE_TTL_SECONDS", "1.5")]);
    let a = tokio::spawn(rtcq_async_env(run_args(&cfg, now, &[]), env.clone()));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let b = rtcq_async_env(run_args(&cfg, now, &[]), env).await;
    assert_eq!(b.code, 4, "stderr: {}", b.stderr);
    let a = a.await.unwrap();
    assert_eq!(a.code, 0, "stderr: {}", a.stderr);
    let root = moto.open(URL);
    assert_eq!(
        state_of(&root, "renew").await.unwrap()["run_id"],
        summary(&a)["run_id"]
    );
    assert_eq!(moto::get(&root, "_state/renew.lease").await, None);
}

/// Run A takes a 1 s lease renewed every `renew` seconds ("0": never) and waits 5 s for
/// its answer; run B starts 2.5 s in, takes the expired lease over and saves. A then
/// fails with `a_error` and exit 1, and B's state stays.
async fn taken_over(pipeline: &str, renew: &str, a_error: &str) {
    let now = t0();
    let later = now + TimeDelta::minutes(10);
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let fast_then = emulator_at(now, None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(
        dir.path(),
        pipeline,
        &fast_then.url(),
        50.0,
        URL,
        ONE_TARGET,
    );
    let root = moto.open(URL);

    // A first run leaves a state behind, so the next saves are conditional updates.
    let out = rtcq_async_env(run_args(&cfg, now, &[]), moto.env()).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);

    // Run A: a 1 s lease it never renews, and answers that take 5 s.
    let slow = emulator_slow(later, None, Duration::from_secs(5)).await;
    let fast = emulator_at(later, None).await;
    let a_env = env_plus(
        &moto,
        &[
            ("RTCQ_LEASE_TTL_SECONDS", "1"),
            ("RTCQ_LEASE_RENEW_SECONDS", renew),
        ],
    );
    let a = tokio::spawn(rtcq_async_env(
        with_endpoint(run_args(&cfg, later, &[]), &slow.url()),
        a_env,
    ));
    // Run B, once A's lease has expired: takes it over, fetches quickly, saves.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let b = rtcq_async_env(
        with_endpoint(run_args(&cfg, later, &[]), &fast.url()),
        moto.env(),
    )
    .await;
    assert_eq!(b.code, 0, "stderr: {}", b.stderr);
    let b_summary = summary(&b);
    assert_eq!(b_summary["requests_sent"], 1);
    let state_key = format!("_state/{pipeline}.json");
    let saved_by_b = moto::get(&root, &state_key).await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(&saved_by_b).unwrap();
    assert_eq!(state["run_id"], b_summary["run_id"]);
    assert!(
        b.stderr.contains("taking over an expired lease"),
        "{}",
        b.stderr
    );

    // A's answer comes back: it stops with exit 1, B's state stays.
    let a = a.await.unwrap();
    assert_eq!(a.code, 1, "stderr: {}", a.stderr);
    // Its summary has the error, the exit code and what it did before stopping.
    let a_summary = summary(&a);
    assert_eq!(a_summary["exit_code"], 1);
    assert_eq!(a_summary["requests_sent"], 1);
    assert!(
        a_summary["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains(a_error)),
        "{a_summary}"
    );
    assert!(a.stderr.contains(a_error), "{}", a.stderr);
    assert_eq!(slow.requests(), 1);
    assert_eq!(moto::get(&root, &state_key).await.unwrap(), saved_by_b);
    // B released its lease; A found it gone and left everything alone.
    assert_eq!(
        moto::get(&root, &format!("_state/{pipeline}.lease")).await,
        None
    );
    let pipeline = load(&cfg);
    let target = &pipeline.targets[0];
    // Same rows either way: A rewrote the same slot files with the same content.
    let mut expected = expected_first_run(&pipeline, now);
    expected.extend(expected_for(
        target,
        state_cursor(&state, target) - TimeDelta::minutes(10),
        state_cursor(&state, target),
        later,
    ));
    expected.sort();
    assert_eq!(moto::read_dataset(&root).await, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_expired_lease_was_taken_over_cannot_overwrite_the_newer_state() {
    needs!(Python);
    // Never renewed: A does not know it lost the lease; the conditional save stops it.
    taken_over(
        "stale",
        "0",
        "state file data/rtc/_state/stale.json changed under this run (another run took over the lease?): not overwriting it",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_finds_its_lease_taken_over_at_renewal_stops_at_its_next_write() {
    needs!(Python);
    // Renewed too late (3 s): the renewal is refused, A is flagged and writes nothing.
    taken_over(
        "lost",
        "3",
        "lost the lease data/rtc/_state/lost.lease: another run took it over",
    )
    .await;
}

fn state_cursor(
    state: &serde_json::Value,
    target: &rtcq::domain::Target,
) -> chrono::DateTime<chrono::Utc> {
    let s = state["targets"][target.key()]["cursor"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(s)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// What moto does with object_store's conditional requests (signed, as the job sends
/// them): `PutMode::Create` sends `If-None-Match: *`, `PutMode::Update` sends `If-Match`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_honours_if_none_match_and_if_match_on_put() {
    needs!(Python);
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let store = moto.open(URL).store();
    let key = object_store::path::Path::from("data/rtc/probe");
    let put = |mode: PutMode, body: &'static str| {
        let store = store.clone();
        let key = key.clone();
        async move {
            store
                .put_opts(
                    &key,
                    PutPayload::from(body),
                    PutOptions {
                        mode,
                        ..Default::default()
                    },
                )
                .await
        }
    };
    let v1 = put(PutMode::Create, "v1").await.unwrap();
    let e = put(PutMode::Create, "v2").await.unwrap_err();
    assert!(
        matches!(e, object_store::Error::AlreadyExists { .. }),
        "{e:?}"
    );
    assert!(format!("{e:?}").contains("status: 412"), "{e:?}");
    let version = |r: &object_store::PutResult| UpdateVersion {
        e_tag: r.e_tag.clone(),
        version: r.version.clone(),
    };
    let v2 = put(PutMode::Update(version(&v1)), "v2").await.unwrap();
    assert_ne!(v1.e_tag, v2.e_tag);
    // Stale ETag: 412.
    let e = put(PutMode::Update(version(&v1)), "v3").await.unwrap_err();
    assert!(
        matches!(e, object_store::Error::Precondition { .. }),
        "{e:?}"
    );
    assert!(format!("{e:?}").contains("status: 412"), "{e:?}");
    let body = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(&body[..], b"v2");
    // Missing key: moto answers 404 NoSuchKey, as AWS does; object_store reports it as a
    // failed precondition too.
    store.delete(&key).await.unwrap();
    let e = put(PutMode::Update(version(&v2)), "v4").await.unwrap_err();
    assert!(
        matches!(e, object_store::Error::Precondition { .. }),
        "{e:?}"
    );
    assert!(format!("{e:?}").contains("status: 404"), "{e:?}");
    // 16 concurrent creators: exactly one wins.
    let key = object_store::path::Path::from("data/rtc/race");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let store = Arc::clone(&store);
        let key = key.clone();
        tasks.spawn(async move {
            store
                .put_opts(
                    &key,
                    PutPayload::from(format!("{i}")),
                    PutOptions {
                        mode: PutMode::Create,
                        ..Default::default()
                    },
                )
                .await
                .is_ok()
        });
    }
    let wins = tasks.join_all().await.into_iter().filter(|w| *w).count();
    assert_eq!(wins, 1);
    // Unsigned raw requests are refused differently: 403 with an empty body where a
    // signed one gets 412.
    let reply = moto.request(
        "PUT",
        "/rtcq/data/rtc/race",
        &[
            ("If-None-Match", "*"),
            ("Content-Type", "application/octet-stream"),
        ],
        "x",
    );
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
}

/// `rtcq <command>` against the moto server's endpoint with no AWS credentials at all
/// (every `AWS_*` variable of the test's own environment removed), plus `extra`.
fn without_credentials(moto: &Moto, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = rtcq_command();
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("AWS_ENDPOINT", moto.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", moto::REGION)
        .envs(extra.iter().copied());
    output_of(&mut cmd)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_sink_without_credentials_is_a_config_error_naming_the_bucket_and_the_chain() {
    needs!(Python);
    let moto = Moto::start();
    moto.create_bucket(BUCKET);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(
        dir.path(),
        "nocreds",
        "http://127.0.0.1:9",
        50.0,
        URL,
        ONE_TARGET,
    );
    let cfg_s = cfg.display().to_string();
    let now = t0().to_rfc3339();
    // A closed loopback port stands in for an instance metadata service that is absent.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cases: [(&[(&str, &str)], &str); 3] = [
        (
            &[("AWS_EC2_METADATA_DISABLED", "true")],
            "none is set and AWS_EC2_METADATA_DISABLED=true rules out the instance metadata service",
        ),
        (
            &[("AWS_ACCESS_KEY_ID", "test")],
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both",
        ),
        (
            &[("AWS_METADATA_ENDPOINT", closed.as_str())],
            "the instance metadata service ",
        ),
    ];
    for (extra, reason) in cases {
        for command in ["run", "plan", "status"] {
            let out =
                without_credentials(&moto, &[command, "--config", &cfg_s, "--now", &now], extra);
            assert_eq!(out.code, 2, "{command} {extra:?}: {}", out.stderr);
            let want =
                format!("no usable credentials for the S3 sink (bucket \"{BUCKET}\"): {reason}");
            // As the JSON log line spells it.
            let want = serde_json::to_string(&want).unwrap();
            let want = want.trim_matches('"');
            assert!(
                out.stderr.contains(want),
                "{command} {extra:?}: {}",
                out.stderr
            );
            assert!(
                out.stderr.contains(
                    "rtcq looks for them in AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY"
                ),
                "{}",
                out.stderr
            );
            assert!(!out.stderr.contains("169.254.169.254"), "{}", out.stderr);
        }
    }
    assert!(moto.raw_keys(BUCKET).is_empty(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_named_with_the_endpoint() {
    needs!(Python);
    let moto = Moto::start();
    let emu = emulator_at(t0(), None).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline_to(dir.path(), "nobucket", &emu.url(), 50.0, URL, ONE_TARGET);
    let out = rtcq_async_env(run_args(&cfg, t0(), &[]), moto.env()).await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "cannot take the lease s3://{BUCKET}/data/rtc/_state/nobucket.lease"
        )) && out.stderr.contains(&format!(
            "check that bucket \\\"{BUCKET}\\\" exists at {}",
            moto.endpoint()
        )),
        "{}",
        out.stderr
    );
    assert_eq!(emu.requests(), 0, "nothing was asked of the API");
}
