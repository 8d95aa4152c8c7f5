//! Crash safety: `rtcq run` killed with SIGKILL at pseudo-random instants (while it
//! fetches, writes slot files, renames them, saves its state), again and again, then
//! left to finish, gives exactly the rows of one clean run: nothing twice, nothing
//! missing, no temporary file left.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kit::*;
use rtcq_emulator::EmulatorConfig;

/// Targets on two apps and two-minute slots: 30 files per app and run, the first cut
/// by the horizon.
const TARGETS: &str = r#"slot = "2m"

[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]

[[targets]]
app_id = "app-a"
indicators = ["join_room_success_rate"]
rooms = ["r1", "r2"]

[[targets]]
app_id = "app-b"
indicators = ["network_trans_delay"]
rooms = ["r1"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-c"
indicators = ["stall_rate"]
rooms = "active"
room_match = "live-*"
"#;

/// What one clean run at `now` writes: every listed target from the horizon, and every
/// `live-*` room of app-c during its calls inside the horizon (room discovery).
fn expected_rows(
    pipeline: &rtcq::config::Pipeline,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Key> {
    let mut rows = expected_first_run(pipeline, now);
    let window = rtcq::plan::Window::at(now, pipeline.sink.slot);
    for k in (0..rtcq_emulator::MODEL_ROOMS).step_by(2) {
        let room = stall_room_target("app-c", &rtcq_emulator::model_room(k));
        rows.extend(expected_for(&room, window.horizon, window.settled_end, now));
    }
    rows.sort();
    rows
}

/// Kills per round at most (a round ends early when a run finishes by itself). Few
/// enough that a round stays well inside the 20 s its emulator's data clock, started
/// 10 s past a bucket at `t0`, has before the settled end moves a bucket (runs follow
/// the API's clock): 8 kills took up to 20 s on a loaded 2-core machine.
const KILLS_PER_ROUND: usize = 4;
/// At least this many kills in all.
const MIN_KILLS: usize = 30;
/// Rounds at most: every loop is bounded.
const MAX_ROUNDS: usize = 30;

/// Where a round's dataset lives.
#[derive(Clone)]
enum Sink {
    Local,
    /// A bucket on the moto server whose environment is given.
    S3 {
        env: Vec<(String, String)>,
    },
}

impl Sink {
    fn env(&self) -> Vec<(String, String)> {
        match self {
            Sink::Local => Vec::new(),
            Sink::S3 { env } => {
                let mut env = env.clone();
                // A killed run leaves its lease object behind: keep it short-lived, and
                // wait it out before the next run (see `LEASE_WAIT`).
                env.push(("RTCQ_LEASE_TTL_SECONDS".into(), "0.3".into()));
                env
            }
        }
    }
}

/// How long a lease left by a killed run on S3 takes to expire (TTL 0.3 s), plus slack.
const LEASE_WAIT: Duration = Duration::from_millis(400);

fn command(cfg: &Path, endpoint: &str, sink: &Sink) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rtcq"));
    cmd.envs(sink.env());
    cmd.args(["run", "--config"])
        .arg(cfg)
        .args(["--now", &t0().to_rfc3339(), "--endpoint", endpoint])
        .env("VOLC_ACCESSKEY", AK)
        .env("VOLC_SECRETKEY", SK)
        .env_remove("VOLC_SESSION_TOKEN")
        .env("RUST_LOG", "warn")
        .env("RTCQ_RETRY_MAX", "2")
        .env("RTCQ_RETRY_MIN_MS", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Runs to the end; returns the exit code and stderr.
fn run_to_end(cfg: &Path, endpoint: &str, sink: &Sink) -> (i32, String) {
    if matches!(sink, Sink::S3 { .. }) {
        std::thread::sleep(LEASE_WAIT);
    }
    let out = command(cfg, endpoint, sink).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Starts a run and kills it after `delay`; returns whether it was still running.
fn run_and_kill(cfg: &Path, endpoint: &str, sink: &Sink, delay: Duration) -> bool {
    if matches!(sink, Sink::S3 { .. }) {
        std::thread::sleep(LEASE_WAIT);
    }
    let mut child = command(cfg, endpoint, sink)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let until = Instant::now() + delay;
    // Poll so a run that ends early is noticed (and not counted as killed).
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(
                matches!(status.code(), Some(0 | 3)),
                "a run failed by itself: {status}"
            );
            return false;
        }
        let now = Instant::now();
        if now >= until {
            break;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(2)));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    status.code().is_none() || {
        assert!(matches!(status.code(), Some(0 | 3)), "{status}");
        false
    }
}

/// Every file under the sink, relative, and asserts nothing else than slot files, the
/// state, the lease, the gap ledger and the last run's record is there.
fn assert_only_final_files(names: &[String], pipeline: &str) {
    for rel in names {
        let name = rel.rsplit('/').next().unwrap_or(rel).to_string();
        let ok = if let Some(state) = rel.strip_prefix("_state/") {
            state == format!("{pipeline}.json")
                || state == format!("{pipeline}.lease")
                || state == format!("{pipeline}.last-run.json")
                || state == format!("gaps/{pipeline}.jsonl")
        } else {
            rel.starts_with("app_id=")
                && !name.starts_with('.')
                && name.starts_with(&format!("{pipeline}-"))
                && name.ends_with(".parquet")
        };
        assert!(ok, "leftover file {rel}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_then_a_final_run_gives_one_clean_run() {
    crash_rounds(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_instants_on_s3_then_a_final_run_gives_one_clean_run() {
    needs!(Python);
    let moto = moto::Moto::start();
    crash_rounds(Some(&moto)).await;
}

/// Where round `n` writes: a local directory, or a fresh bucket on `moto`.
fn round_sink(dir: &Path, moto: Option<&moto::Moto>, n: usize) -> (Sink, String) {
    match moto {
        None => (Sink::Local, dir.join("data").display().to_string()),
        Some(m) => {
            let bucket = format!("crash-{n}");
            m.create_bucket(&bucket);
            (Sink::S3 { env: m.env() }, format!("s3://{bucket}/data"))
        }
    }
}

/// The rows and the relative names of everything under a round's sink.
async fn contents(moto: Option<&moto::Moto>, url: &str) -> (Vec<Key>, Vec<String>) {
    match moto {
        None => {
            let root = Path::new(url);
            let names = snapshot(root)
                .into_keys()
                .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
                .collect();
            (read_dataset(root), names)
        }
        Some(m) => {
            let root = m.open(url);
            (moto::read_dataset(&root).await, moto::keys(&root).await)
        }
    }
}

async fn crash_rounds(moto: Option<&moto::Moto>) {
    let now = t0();
    let started = Instant::now();
    let cfg_emu = EmulatorConfig {
        now: Some(now),
        requests_per_second: None,
        latency: Duration::from_millis(40),
        ..EmulatorConfig::default()
    };

    // A clean run: the reference rows and how long a run takes.
    let emu = emulator_with(cfg_emu.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let (sink, sink_url) = round_sink(dir.path(), moto, 0);
    let cfg = write_pipeline_to(dir.path(), "crash", &emu.url(), 20.0, &sink_url, TARGETS);
    let pipeline = load(&cfg);
    let expected = expected_rows(&pipeline, now);
    let url = emu.url();
    let (clean_cfg, clean_sink) = (cfg.clone(), sink.clone());
    let clean = tokio::task::spawn_blocking(move || {
        let t = Instant::now();
        let (code, stderr) = run_to_end(&clean_cfg, &url, &clean_sink);
        assert_eq!(code, 0, "{stderr}");
        t.elapsed()
    })
    .await
    .unwrap();
    assert_exact(&contents(moto, &sink_url).await.0, &expected);
    drop(emu);
    eprintln!("a clean run takes {clean:?}; {} rows", expected.len());

    let mut rng = Rng(0x5EED_2026);
    let mut kills = 0;
    let mut rounds = 0;
    let mut attempts = 0;
    // Kill delays are drawn from [0, span]; a run that ends before its kill shortens the
    // span to its own duration, so most attempts land inside a run.
    let mut span = clean;
    while kills < MIN_KILLS && rounds < MAX_ROUNDS {
        rounds += 1;
        // A fresh emulator and sink per round keeps the emulator's data clock near `now`.
        let emu = emulator_with(cfg_emu.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let (sink, sink_url) = round_sink(dir.path(), moto, rounds);
        let cfg = write_pipeline_to(dir.path(), "crash", &emu.url(), 20.0, &sink_url, TARGETS);
        let url = emu.url();
        let (round_cfg, round_url, seed) = (cfg.clone(), url.clone(), rng.next());
        let round_sink = sink.clone();
        let (killed, tried, new_span) = tokio::task::spawn_blocking(move || {
            let mut rng = Rng(seed);
            let (mut killed, mut tried, mut span) = (0, 0, span);
            while killed < KILLS_PER_ROUND && tried < 2 * KILLS_PER_ROUND {
                tried += 1;
                let delay = rng.below(span);
                let t = Instant::now();
                if run_and_kill(&round_cfg, &round_url, &round_sink, delay) {
                    killed += 1;
                } else {
                    // It finished: nothing is left to interrupt in this round.
                    span = span.min(t.elapsed());
                    break;
                }
            }
            (killed, tried, span)
        })
        .await
        .unwrap();
        kills += killed;
        attempts += tried;
        span = new_span;
        let (final_cfg, final_url, final_sink) = (cfg.clone(), url.clone(), sink.clone());
        let (code, stderr) =
            tokio::task::spawn_blocking(move || run_to_end(&final_cfg, &final_url, &final_sink))
                .await
                .unwrap();
        assert_eq!(code, 0, "round {rounds}: {stderr}");
        let (rows, names) = contents(moto, &sink_url).await;
        assert_exact(&rows, &expected);
        assert_only_final_files(&names, "crash");
        drop(emu);
    }
    eprintln!(
        "{kills} kills in {attempts} attempts and {rounds} rounds, {:?} in all",
        started.elapsed()
    );
    assert!(kills >= MIN_KILLS, "only {kills} kills in {rounds} rounds");
}
