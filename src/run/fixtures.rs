//! Fixtures shared by the stage tests of `run`: a pipeline parsed from TOML with its sink
//! in a temporary directory, states saved and read back through the real state store,
//! the pipeline's lease, a runner prepared as a run prepares it, a fetcher, the emulator
//! on loopback, and slot files read back row by row. Real parts only, no mocks.

use std::collections::BTreeSet;
use std::path::Path;

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::prepare::{self, Prepared};
use super::runner::Runner;
use super::{FetchStats, Fetched, Fetcher, Outcome, RunOptions, open_sink};
use crate::api::limit::{Pacer, RetryPolicy};
use crate::api::{Client, Timeouts};
use crate::clock::Clock;
use crate::config::Pipeline;
use crate::plan::Slot;
use crate::sink::{Row, Sink};
use crate::state::{Lease, State, StateStore, TargetState};
use rtcq_emulator::{self as emulator, EmulatorConfig, RunningEmulator};
use volc_rtc::Credentials;

/// The pipeline's name, as in its file names and `_state/` keys.
pub(crate) const PIPELINE: &str = "demo";

/// The run id the fixtures' runs save their state with.
pub(crate) const RUN_ID: &str = "run-under-test";

/// An endpoint nothing listens on (the discard port of loopback): tests that must not
/// send use it, so a request sent by mistake fails instead of being answered.
pub(crate) const NOWHERE: &str = "http://127.0.0.1:9";

/// Three targets, in the pipeline's (sorted) order: 0 `app-a` native, 1 `app-a` web,
/// 2 `app-b` native.
pub(crate) const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
product_types = ["native", "web"]

[[targets]]
app_id = "app-b"
indicators = ["stall_rate"]
"#;

/// The run's "now": 10 s past a slot boundary (as in `tests/common`), so the window is
/// horizon 11:01:00, settled end 11:59:00 with 5-minute slots.
pub(crate) fn t0() -> DateTime<Utc> {
    at("12:00:10")
}

/// `HH:MM:SS` on the day of [`t0`], UTC.
pub(crate) fn at(hms: &str) -> DateTime<Utc> {
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("a date");
    let time = NaiveTime::parse_from_str(hms, "%H:%M:%S").expect("HH:MM:SS");
    day.and_time(time).and_utc()
}

/// The 5-minute slot starting at `hms`.
pub(crate) fn slot(hms: &str) -> Slot {
    let start = at(hms);
    Slot {
        start,
        end: start + TimeDelta::minutes(5),
    }
}

/// A pipeline `demo` with its sink under a temporary directory.
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pipeline: Pipeline,
}

impl Fixture {
    /// The pipeline of `targets` (TOML `[[targets]]` entries) calling `endpoint` at
    /// `rps` requests per second, its sink at `<tempdir>/data`.
    pub(crate) fn new(endpoint: &str, rps: f64, targets: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temporary directory");
        let sink = dir.path().join("data");
        let text = format!(
            "name = \"{PIPELINE}\"\n[api]\nendpoint = \"{endpoint}\"\nrequests_per_second = {rps:?}\n[sink]\nurl = \"{}\"\nslot = \"5m\"\n{targets}",
            sink.display()
        );
        let path = dir.path().join(format!("{PIPELINE}.toml"));
        let pipeline = crate::config::parse(&path, &text).expect("valid pipeline");
        Fixture { dir, pipeline }
    }

    /// The pipeline's sink, opened as a run opens it.
    pub(crate) fn sink(&self) -> Sink {
        open_sink(&self.pipeline).expect("local sink")
    }

    /// The sink's directory on disk.
    pub(crate) fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// The pipeline's state store, as a run makes it.
    pub(crate) fn state_store(&self, sink: &Sink) -> StateStore {
        StateStore::new(sink.store(), sink.root(), PIPELINE, false)
    }

    /// Saves a state (as an earlier run `earlier-run` would have) where target `i` has
    /// the cursor given; the other targets are unknown to it.
    pub(crate) async fn save_state(&self, cursors: &[(usize, DateTime<Utc>)]) {
        let mut state = State::new(PIPELINE, 300, "earlier-run", t0());
        for &(i, cursor) in cursors {
            state.targets.insert(
                self.pipeline.targets[i].key(),
                TargetState {
                    cursor: Some(cursor),
                    incomplete: BTreeSet::new(),
                    since: None,
                },
            );
        }
        let sink = self.sink();
        self.state_store(&sink)
            .save(&state)
            .await
            .expect("state saved");
    }

    /// The state on disk, read as the next run reads it.
    pub(crate) async fn load_state(&self) -> Option<State> {
        let sink = self.sink();
        self.state_store(&sink)
            .load(PIPELINE, 300)
            .await
            .expect("readable state")
    }

    /// A run's options with its clock at [`t0`] (advancing from there with tokio's
    /// clock); everything else is the default.
    pub(crate) fn opts(&self) -> RunOptions {
        RunOptions {
            clock: Clock::at(Some(t0())),
            ..RunOptions::default()
        }
    }

    /// The pipeline's lease, taken as a run takes it.
    pub(crate) fn lease(&self, sink: &Sink) -> Lease {
        let root = sink.sink_root().local_dir().expect("a local sink");
        Lease::acquire_local(root, PIPELINE, RUN_ID, Clock::at(Some(t0()))).expect("lease")
    }

    /// What [`prepare::prepare`] makes of the sink as it is.
    pub(super) async fn prepared(&self, opts: &RunOptions, sink: &Sink) -> Prepared {
        prepare::prepare(
            &self.pipeline,
            opts,
            sink,
            &std::sync::Arc::new(crate::clock::ApiClock::new(opts.clock)),
            None,
            None,
        )
        .await
        .expect("prepared")
    }

    /// A runner prepared from the sink as it is, as a run starts one, and the lease it
    /// holds.
    pub(super) async fn runner(&self, opts: &RunOptions) -> (Runner<'_>, Lease) {
        let sink = self.sink();
        let lease = self.lease(&sink);
        let prepared = self.prepared(opts, &sink).await;
        let runner = Runner::new(&self.pipeline, opts, sink, &lease, RUN_ID, prepared);
        (runner, lease)
    }
}

/// The run's fetcher for `endpoint` at `rps`, and the sender that stops it sending.
pub(crate) fn fetcher(endpoint: &str, rps: f64, clock: Clock) -> (Fetcher, watch::Sender<bool>) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let creds = Credentials::new(emulator::DEMO_ACCESS_KEY, emulator::DEMO_SECRET_KEY, None);
    let api = std::sync::Arc::new(crate::clock::ApiClock::new(clock));
    let fetcher = Fetcher {
        client: Client::new(endpoint, "cn-north-1", creds, Timeouts::default())
            .expect("client")
            .with_api_clock(api.clone()),
        pacer: std::sync::Arc::new(Pacer::new(rps)),
        policy: RetryPolicy::default(),
        api,
        stats: std::sync::Arc::new(FetchStats::default()),
        stop: stop_rx,
    };
    (fetcher, stop_tx)
}

/// The emulator on 127.0.0.1, its data clock at `now`, without a rate limit.
pub(crate) async fn emulator_at(now: DateTime<Utc>) -> RunningEmulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("loopback listener");
    emulator::spawn(
        listener,
        EmulatorConfig {
            now: Some(now),
            requests_per_second: None,
            ..EmulatorConfig::default()
        },
    )
    .await
    .expect("emulator")
}

/// The rows of the slot file of `app` and `slot`, in file order; `None` when there is no
/// file.
pub(crate) async fn slot_rows(sink: &Sink, app: &str, slot: Slot) -> Option<Vec<Row>> {
    let (bytes, path) = sink.read_slot_bytes(app, &slot).await.expect("readable")?;
    let mut rows = Vec::new();
    crate::sink::decode_each(bytes, &path, |r| rows.push(r.to_row())).expect("decodable");
    Some(rows)
}

/// The files under `dir`, relative to it, sorted (hidden ones included).
pub(crate) fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A row of a slot file of a target without room or user.
pub(crate) fn row(
    product_type: crate::domain::ProductType,
    indicator: &str,
    ts: DateTime<Utc>,
    value: f64,
    stream: Option<&str>,
) -> Row {
    Row {
        room_id: None,
        user_id: None,
        product_type,
        indicator: indicator.to_string(),
        unit: "%".to_string(),
        timestamp_us: ts.timestamp_micros(),
        value,
        stream_id: stream.map(str::to_string),
        interval_s: 30,
    }
}

/// An answer of one series `audio_stall_rate` (%) with these points (time, value,
/// stream).
pub(crate) fn answer(points: &[(&str, f64, Option<&str>)]) -> super::rows::Answer {
    super::rows::Answer {
        user_id: None,
        series: vec![super::rows::AnswerSeries {
            name: "audio_stall_rate".into(),
            unit: "%".into(),
            points: points
                .iter()
                .map(|(ts, v, stream)| crate::api::AnswerPoint::new(ts, Some(*v), *stream))
                .collect(),
        }],
    }
}

/// The outcome `outcome` of target `t`'s planned request, asked from where it was
/// planned.
pub(super) fn fetched(runner: &Runner<'_>, t: usize, outcome: Outcome) -> Fetched {
    let request = (0..runner.requests_planned())
        .find(|&i| runner.request(i).target == t)
        .expect("a request for the target");
    Fetched {
        request,
        start: runner.request(request).start,
        end: runner.request(request).end,
        outcome,
    }
}
