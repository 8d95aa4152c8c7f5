//! Before the first request: read the state (a state that cannot be understood stops
//! the run with nothing changed), sweep what an interrupted run left, and plan.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

use super::{RunError, RunOptions};
use crate::api::Client;
use crate::clock::ApiClock;
use crate::config::Pipeline;
use crate::discovery::calls::ScanState;
use crate::discovery::{self, Scanner};
use crate::domain::{Target, TimeRange};
use crate::plan::{Plan, Progress, Window};
use crate::sink::Sink;
use crate::sink::buffer::{self, RowStore};
use crate::state::{GapLedger, RecoveryLedger, State, StateStore, TargetState};

/// What a run starts from.
pub(super) struct Prepared {
    pub(crate) state_store: StateStore,
    pub(crate) ledger: GapLedger,
    pub(crate) recoveries: RecoveryLedger,
    pub(crate) store: RowStore,
    pub(crate) window: Window,
    /// The run's targets: the listed ones, then the discovered rooms still owed data.
    pub(crate) targets: Arc<[Target]>,
    pub(crate) plan: Plan,
    /// What room discovery knows, to save with the state.
    pub(crate) discovery: BTreeMap<String, ScanState>,
    /// Scans that failed: their rooms stay where they were; the run exits 3.
    pub(crate) scan_errors: Vec<String>,
    /// The apps whose scan failed: what their rooms lose while a call's end is unknown
    /// waits for a scan that succeeds.
    pub(crate) stale: BTreeSet<String>,
    /// Losses found while an earlier scan failed, now cut to the calls as known.
    pub(crate) confirmed: Vec<(Target, TimeRange)>,
    /// The API's clock, whose offset the state keeps for the next run.
    pub(crate) api: Arc<ApiClock>,
    /// Discovered rooms retired by this run: their last call ended and was fetched.
    pub(crate) rooms_retired: usize,
    /// Where each target's real-time data begins (history ends there).
    pub(crate) since: super::since::Since,
}

pub(super) async fn prepare(
    pipeline: &Pipeline,
    opts: &RunOptions,
    sink: &Sink,
    api: &Arc<ApiClock>,
    client: Option<&Client>,
    scanner: Option<&Scanner>,
) -> Result<Prepared, RunError> {
    let state_store = StateStore::new(
        sink.store(),
        sink.root(),
        &pipeline.name,
        !sink.sink_root().is_local(),
    );
    let ledger = GapLedger::new(sink.store(), sink.root(), &pipeline.name);
    let recoveries = RecoveryLedger::recoveries(sink.store(), sink.root(), &pipeline.name);
    let old = state_store
        .load(&pipeline.name, pipeline.sink.slot.num_seconds())
        .await?;
    // Only once the state is known to be readable: a run that stops on a bad state
    // leaves every file as it found it.
    let swept = sink.sweep_temp_files().await?;
    if swept > 0 {
        tracing::info!(
            files = swept,
            "removed temporary files left by an interrupted run"
        );
    }
    let store = RowStore::new(
        clean_spill_dir(sink, &pipeline.name, opts.spill_dir.as_deref())?,
        opts.spill_rows.unwrap_or(buffer::DEFAULT_SPILL_POINTS),
    );
    // On the API's clock: as the last run measured it, read again before planning (an
    // answer that spends no rate) and corrected by every answer after.
    if let Some(ms) = old.as_ref().and_then(|s| s.api_clock_offset_ms) {
        api.seed(chrono::TimeDelta::milliseconds(ms));
    }
    if let Some(client) = client
        && let Err(e) = client.read_clock().await
    {
        tracing::debug!(error = %e, "cannot read the API's clock before planning");
    }
    let mut discovery = old
        .as_ref()
        .map(|s| s.discovery.clone())
        .unwrap_or_default();
    // The entries scanning for the first time: with history, they reach back further.
    let first_scans: BTreeSet<String> = pipeline
        .scans
        .iter()
        .filter(|s| {
            discovery
                .get(&s.app_id)
                .is_none_or(|d| d.scanned_until.is_none())
        })
        .map(|s| s.app_id.clone())
        .collect();
    let (scan_errors, stale) = match scanner {
        Some(scanner) => scan_all(pipeline, scanner, &mut discovery, api.now()).await,
        None => (Vec::new(), BTreeSet::new()),
    };
    let window = Window::at(api.now(), pipeline.sink.slot);
    if let Some(history) = pipeline.recovery.history {
        let from = (window.horizon - history).max(window.now - discovery::MAX_LOOKBACK);
        for app in first_scans.difference(&stale) {
            if let Some(state) = discovery.get_mut(app) {
                state.history = discovery::history_in_calls(state, from, window.horizon);
            }
        }
    }
    // Before rooms retire: a room whose call ended during an outage keeps its calls
    // until its unsure losses are cut to them.
    let mut confirmed = Vec::new();
    for scan in pipeline.scans.iter().filter(|s| !stale.contains(&s.app_id)) {
        if let Some(state) = discovery.get_mut(&scan.app_id) {
            confirmed.extend(discovery::confirm_unsure(scan, state));
        }
    }
    let Discovered {
        targets,
        mut progress,
        retired,
    } = discovered(pipeline, &mut discovery, old.as_ref(), &window);
    rewind_future(&targets, &mut progress, &window);
    let since = super::since::since_of(pipeline, sink, old.as_ref(), &targets).await?;
    if since.derived > 0 {
        tracing::info!(
            targets = since.derived,
            "history ends where each target's data begins: for {} target(s) of a state from before that was recorded, found from the oldest slot file of its app",
            since.derived
        );
    }
    if let Some(b) = &opts.backfill {
        for p in &mut progress {
            b.apply(p, &window);
        }
        if let Some(l) = b.unreachable(&window) {
            tracing::warn!(start = %crate::clock::rfc(l.start), end = %crate::clock::rfc(l.end), "backfill: this part of the range is beyond the API's 60-minute horizon and cannot be fetched again");
        }
        if let Some(l) = b.unsettled(&window) {
            tracing::warn!(start = %crate::clock::rfc(l.start), end = %crate::clock::rfc(l.end), "backfill: this part of the range is not settled yet; a later run fetches it");
        }
    }
    let mut plan = Plan::build(progress, window, |i| targets[i].max_lag);
    plan.lost = clip_to_calls(
        plan.lost,
        pipeline.targets.len(),
        &targets,
        &mut discovery,
        &stale,
    );
    log_plan(&targets, &plan, &window);
    Ok(Prepared {
        state_store,
        ledger,
        recoveries,
        store,
        window,
        targets,
        plan,
        discovery,
        scan_errors,
        stale,
        confirmed,
        rooms_retired: retired,
        api: api.clone(),
        since,
    })
}

/// Rewinds every cursor past the settled end to the horizon, and says so once, with
/// their count and the first of them.
fn rewind_future(targets: &[Target], progress: &mut [Progress], window: &Window) {
    let mut rewound = Vec::new();
    for (t, p) in targets.iter().zip(progress.iter_mut()) {
        if p.rewind_future(window) {
            rewound.push(t.to_string());
        }
    }
    if let Some(first) = rewound.first() {
        tracing::warn!(
            targets = rewound.len(),
            first = %first,
            settled_end = %crate::clock::rfc(window.settled_end),
            "{} target(s) had a cursor past the settled end (an older build, a clock ahead, a --now in the future or a hand edit): rewound to the horizon, fetching again what the API still has",
            rewound.len()
        );
    }
}

/// Scans every `rooms = "active"` entry; a scan that fails leaves its state as it was
/// and is reported, with its app.
async fn scan_all(
    pipeline: &Pipeline,
    scanner: &Scanner,
    discovery: &mut BTreeMap<String, ScanState>,
    now: DateTime<Utc>,
) -> (Vec<String>, BTreeSet<String>) {
    let mut errors = Vec::new();
    let mut stale = BTreeSet::new();
    for scan in pipeline.scans.iter() {
        let state = discovery.entry(scan.app_id.clone()).or_default();
        // With history, back to the first horizon less the history.
        let reach = pipeline.recovery.history.map_or(TimeDelta::zero(), |h| {
            h + volc_rtc::limits::REALTIME_HORIZON
        });
        if let Err(e) = scanner.scan(scan, state, now, reach).await {
            tracing::error!(app_id = %scan.app_id, error = %e, "room discovery failed: the rooms found before stay as they were");
            errors.push(format!("{scan}: ListRoomInfo: {e}"));
            stale.insert(scan.app_id.clone());
        }
    }
    (errors, stale)
}

/// What the discovered targets (from index `listed` on) lost, cut to their rooms'
/// calls: the time between calls had no data, so nothing of it was lost (see
/// [`discovery::lost_in_calls`] for an app whose scan failed).
fn clip_to_calls(
    lost: Vec<(usize, TimeRange)>,
    listed: usize,
    targets: &[Target],
    discovery: &mut BTreeMap<String, ScanState>,
    stale: &BTreeSet<String>,
) -> Vec<(usize, TimeRange)> {
    let mut out = Vec::with_capacity(lost.len());
    for (t, l) in lost {
        if t < listed {
            out.push((t, l));
        } else {
            let parts = discovery::lost_in_calls(discovery, stale, &targets[t], l);
            out.extend(parts.into_iter().map(|p| (t, p)));
        }
    }
    out
}

/// The targets a run at `window` would have, with their progress and what discovery
/// knows, from the saved state alone (no scan): what `plan` and `status` show.
pub(crate) fn targets_from_state(
    pipeline: &Pipeline,
    state: Option<&State>,
    window: &Window,
) -> (Arc<[Target]>, Vec<Progress>, BTreeMap<String, ScanState>) {
    let mut discovery = state.map(|s| s.discovery.clone()).unwrap_or_default();
    let d = discovered(pipeline, &mut discovery, state, window);
    (d.targets, d.progress, discovery)
}

/// The run's targets and their progress: the listed targets, then each discovered room
/// that still owes data.
struct Discovered {
    targets: Arc<[Target]>,
    progress: Vec<Progress>,
    retired: usize,
}

/// Builds the run's targets from the pipeline and what discovery knows, fits each
/// discovered room's progress to its calls, and retires the rooms that are done (from
/// `discovery` too, once every product type of the room is done).
fn discovered(
    pipeline: &Pipeline,
    discovery: &mut BTreeMap<String, ScanState>,
    state: Option<&State>,
    window: &Window,
) -> Discovered {
    // Only what the entries still follow is kept: an entry removed, or a narrower
    // room_match, drops its rooms.
    discovery.retain(|app, _| pipeline.scans.iter().any(|s| &s.app_id == app));
    for scan in pipeline.scans.iter() {
        if let Some(d) = discovery.get_mut(&scan.app_id) {
            d.rooms.retain(|room, _| scan.follows(room));
        }
    }
    let mut targets: Vec<Target> = pipeline.targets.to_vec();
    let mut progress = progress_of(&targets, state);
    let first_scans: BTreeSet<String> = pipeline
        .scans
        .iter()
        .filter(|s| {
            state
                .and_then(|st| st.discovery.get(&s.app_id))
                .is_none_or(|d| d.scanned_until.is_none())
        })
        .map(|s| s.app_id.clone())
        .collect();
    // Each discovered target fitted to its room's calls; `true`: it still owes data.
    let fitted: Vec<(Target, String, Progress, bool)> =
        discovery::room_targets(&pipeline.scans, discovery, &targets)
            .into_iter()
            .map(|(target, room)| {
                let calls = discovery
                    .get(&target.app_id)
                    .and_then(|d| d.rooms.get(&room))
                    .map_or(&[][..], Vec::as_slice);
                let mut p = state
                    .and_then(|s| s.targets.get(&target.key()))
                    .map(TargetState::progress)
                    .unwrap_or_default();
                let late = !first_scans.contains(&target.app_id);
                let owes = discovery::fit_to_calls(&mut p, calls, window, late);
                (target, room, p, owes)
            })
            .collect();
    // A room stays while any of its targets owes data; then all its targets stay (a done
    // one owing nothing up to the settled end, as `fit_to_calls` left it).
    let live: BTreeSet<(String, String)> = fitted
        .iter()
        .filter(|f| f.3)
        .map(|(t, room, ..)| (t.app_id.clone(), room.clone()))
        .collect();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    for (target, room, p, _) in fitted {
        let key = (target.app_id.clone(), room);
        seen.insert(key.clone());
        if !live.contains(&key) {
            continue;
        }
        targets.push(target);
        progress.push(p);
    }
    let retired = seen.difference(&live).count();
    for (app, room) in seen.difference(&live) {
        if let Some(d) = discovery.get_mut(app) {
            d.retire(room);
        }
    }
    Discovered {
        targets: targets.into(),
        progress,
        retired,
    }
}

/// Each of `targets`' progress as `state` has it; a target the state does not know (new,
/// or newly added to the config) was never fetched.
fn progress_of(targets: &[Target], state: Option<&State>) -> Vec<Progress> {
    targets
        .iter()
        .map(|t| {
            state
                .and_then(|s| s.targets.get(&t.key()))
                .map(TargetState::progress)
                .unwrap_or_default()
        })
        .collect()
}

fn log_plan(targets: &[Target], plan: &Plan, window: &Window) {
    let first = plan.requests.iter().filter(|r| r.first).count();
    let due: String = plan
        .requests
        .first()
        .map(|r| crate::clock::rfc(r.due))
        .unwrap_or_else(|| "none".to_string());
    tracing::info!(
        targets = targets.len(),
        requests = plan.requests.len(),
        never_fetched = first,
        earliest_due = %due,
        settled_end = %crate::clock::rfc(window.settled_end),
        horizon = %crate::clock::rfc(window.horizon),
        "planned"
    );
}

/// Where a run of `pipeline` spills rows, emptied of what an interrupted run left: a
/// hidden directory of a local sink root (on the same disk as the dataset, ignored by
/// readers), else one under the system temp directory named after the pipeline and the
/// sink URL. Only the lease holder uses it.
fn clean_spill_dir(
    sink: &Sink,
    pipeline: &str,
    base: Option<&std::path::Path>,
) -> Result<std::path::PathBuf, RunError> {
    let dir = match (base, sink.sink_root().local_dir()) {
        (Some(base), _) => base.join(format!("rtcq-spill-{pipeline}-{:016x}", url_hash(sink))),
        (None, Some(dir)) => dir.join(format!(".rtcq-spill-{pipeline}")),
        (None, None) => {
            std::env::temp_dir().join(format!("rtcq-spill-{pipeline}-{:016x}", url_hash(sink)))
        }
    };
    if dir.exists() {
        tracing::info!(dir = %dir.display(), "removed spilled rows left by an interrupted run");
        std::fs::remove_dir_all(&dir).map_err(|source| crate::sink::SinkError::Spill {
            path: dir.display().to_string(),
            source,
        })?;
    }
    check_writable(&dir)?;
    Ok(dir)
}

/// FNV-1a of the sink's URL: one spill folder per sink, stable across runs and builds.
fn url_hash(sink: &Sink) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in sink.sink_root().url().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Proves the spill folder can be made and written before anything is fetched: a big
/// run finds out at once, not after minutes of fetching. Leaves nothing behind.
fn check_writable(dir: &std::path::Path) -> Result<(), RunError> {
    let bad = |source| RunError::SpillDir {
        path: dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(bad)?;
    let probe = dir.join("probe");
    std::fs::write(&probe, b"rtcq").map_err(bad)?;
    std::fs::remove_file(&probe).map_err(bad)?;
    std::fs::remove_dir(dir).map_err(bad)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use chrono::TimeDelta;
    use object_store::ObjectStoreExt;

    use super::*;
    use crate::domain::TimeRange;
    use crate::plan::Request;
    use crate::run::fixtures::{Fixture, NOWHERE, PIPELINE, TARGETS, at, files_under, t0};
    use crate::state::StateError;

    #[test]
    fn prior_progress_maps_the_states_targets_by_key_and_a_new_target_has_no_cursor() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let targets = &f.pipeline.targets;
        let keys: Vec<String> = targets.iter().map(|t| t.key()).collect();
        assert_eq!(
            keys,
            [
                r#"["app-a","native",null,null]"#,
                r#"["app-a","web",null,null]"#,
                r#"["app-b","native",null,null]"#,
            ]
        );
        let mut state = State::new(PIPELINE, 300, "earlier-run", t0());
        // Inserted out of the pipeline's order, plus a target no longer configured.
        state.targets.insert(
            keys[2].clone(),
            TargetState {
                cursor: Some(at("11:30:00")),
                incomplete: BTreeSet::from([at("11:05:00")]),
                since: None,
            },
        );
        state.targets.insert(
            keys[0].clone(),
            TargetState {
                cursor: Some(at("11:45:00")),
                incomplete: BTreeSet::new(),
                since: None,
            },
        );
        state.targets.insert(
            r#"["app-gone","native",null,null]"#.to_string(),
            TargetState {
                cursor: Some(at("11:00:00")),
                incomplete: BTreeSet::new(),
                since: None,
            },
        );

        let progress = progress_of(&f.pipeline.targets, Some(&state));

        assert_eq!(
            progress,
            vec![
                Progress {
                    cursor: Some(at("11:45:00")),
                    incomplete: BTreeSet::new(),
                },
                Progress::default(),
                Progress {
                    cursor: Some(at("11:30:00")),
                    incomplete: BTreeSet::from([at("11:05:00")]),
                },
            ]
        );
        assert!(progress[1].is_new());
        assert_eq!(progress[1].cursor, None);
        // No state at all: every target is new.
        assert_eq!(
            progress_of(&f.pipeline.targets, None),
            vec![Progress::default(); 3]
        );
    }

    #[tokio::test]
    async fn prepare_plans_the_owed_requests_earliest_due_first_and_reports_the_lost() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        // app-a native is 29 minutes behind; app-a web is behind the horizon (11:01:00);
        // app-b native is unknown to the state.
        f.save_state(&[(0, at("11:30:00")), (1, at("10:50:00"))])
            .await;
        // A temporary file an interrupted run left: swept once the state is readable.
        let date_dir = f.data_dir().join("app_id=app-a").join("date=2026-11-25");
        std::fs::create_dir_all(&date_dir).unwrap();
        std::fs::write(date_dir.join(".demo-1150.parquet.tmp-1-0"), b"half").unwrap();
        let opts = f.opts();
        let sink = f.sink();

        let prepared = f.prepared(&opts, &sink).await;

        let w = prepared.window;
        assert_eq!(w.slot_len, TimeDelta::minutes(5));
        assert_eq!(w.horizon, at("11:01:00"));
        assert_eq!(w.settled_end, at("11:59:00"));
        assert!(w.now >= t0() && w.now - t0() < TimeDelta::seconds(5));
        let plan = &prepared.plan;
        assert_eq!(
            plan.requests.to_vec(),
            vec![
                // Never fetched: from the horizon, due at once.
                Request {
                    target: 2,
                    start: at("11:01:00"),
                    end: at("11:59:00"),
                    due: w.now,
                    first: true,
                },
                // From the horizon it was moved to: due when 11:01:00 leaves it.
                Request {
                    target: 1,
                    start: at("11:01:00"),
                    end: at("11:59:00"),
                    due: at("12:00:30"),
                    first: false,
                },
                Request {
                    target: 0,
                    start: at("11:30:00"),
                    end: at("11:59:00"),
                    due: at("12:29:30"),
                    first: false,
                },
            ]
        );
        assert_eq!(
            plan.lost,
            vec![(
                1,
                TimeRange {
                    start: at("10:50:00"),
                    end: at("11:01:00"),
                }
            )]
        );
        assert_eq!(
            plan.progress,
            vec![
                Progress {
                    cursor: Some(at("11:30:00")),
                    incomplete: BTreeSet::new(),
                },
                Progress {
                    cursor: Some(at("11:01:00")),
                    incomplete: BTreeSet::new(),
                },
                Progress::default(),
            ]
        );
        // Planning writes nothing: the state is as saved, the leftover is gone.
        assert_eq!(files_under(&f.data_dir()), ["_state/demo.json"]);
        let state = f.load_state().await.unwrap();
        assert_eq!(state.run_id, "earlier-run");
        assert_eq!(state.targets.len(), 2);
    }

    #[tokio::test]
    async fn a_state_from_a_newer_schema_stops_prepare_with_its_error_and_changes_nothing() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let sink = f.sink();
        let state_path = sink.root().clone().join("_state").join("demo.json");
        let newer = br#"{"schema_version": 5, "pipeline": "demo", "slot_seconds": 300}"#;
        sink.store()
            .put(&state_path, newer.to_vec().into())
            .await
            .unwrap();
        let date_dir = f.data_dir().join("app_id=app-a").join("date=2026-11-25");
        std::fs::create_dir_all(&date_dir).unwrap();
        std::fs::write(date_dir.join(".demo-1150.parquet.tmp-1-0"), b"half").unwrap();
        let opts = f.opts();

        let err = match prepare(
            &f.pipeline,
            &opts,
            &sink,
            &Arc::new(ApiClock::new(opts.clock)),
            None,
            None,
        )
        .await
        {
            Ok(_) => panic!("a newer state must stop the run"),
            Err(e) => e,
        };

        match &err {
            RunError::State(StateError::NewerSchema { path, found }) => {
                assert_eq!(path, "_state/demo.json");
                assert_eq!(*found, 5);
            }
            other => panic!("expected NewerSchema, got {other:?}"),
        }
        assert_eq!(
            crate::run::report::exit_code(Default::default(), Some(&err)),
            crate::run::Exit::Failed
        );
        assert!(err.to_string().contains("upgrade rtcq"), "{err}");
        // Every file as it was: the state untouched, the leftover not swept, no spill
        // directory.
        assert_eq!(
            files_under(&f.data_dir()),
            [
                "_state/demo.json",
                "app_id=app-a/date=2026-11-25/.demo-1150.parquet.tmp-1-0",
            ]
        );
        assert_eq!(
            std::fs::read(f.data_dir().join("_state/demo.json")).unwrap(),
            newer.to_vec()
        );
    }

    #[test]
    fn discovered_rooms_stay_while_any_target_owes_and_retire_when_all_are_done() {
        use crate::discovery::calls::CallRecord;
        let text = r#"
name = "demo"
[sink]
url = "./data"
[[targets]]
app_id = "app"
indicators = ["stall_rate"]
rooms = "active"
room_match = "live-*"
product_types = ["native", "web"]
"#;
        let pipeline = crate::config::parse(std::path::Path::new("t.toml"), text).unwrap();
        let window = Window::at(t0(), TimeDelta::minutes(5));
        let call = |from: &str, to: Option<&str>| CallRecord {
            created: at(from),
            call_id: format!("c-{from}"),
            destroyed: to.map(at),
        };
        let mut scan = ScanState {
            scanned_until: Some(at("11:55:00")),
            ..ScanState::default()
        };
        // live-1: its call ended at 11:30; native has fetched past it, web has not.
        scan.rooms
            .insert("live-1".into(), vec![call("11:20:00", Some("11:30:00"))]);
        // live-2: both product types fetched past its call's end: retired.
        scan.rooms
            .insert("live-2".into(), vec![call("11:10:00", Some("11:15:00"))]);
        // meet-3: no longer followed (room_match): dropped.
        scan.rooms
            .insert("meet-3".into(), vec![call("11:40:00", None)]);
        let mut state = State::new("demo", 300, "r", t0());
        let key = |room: &str, pt: &str| {
            serde_json::json!(["app", pt, room, serde_json::Value::Null]).to_string()
        };
        let cursor = |t: &str| TargetState {
            cursor: Some(at(t)),
            incomplete: BTreeSet::new(),
            since: None,
        };
        state
            .targets
            .insert(key("live-1", "native"), cursor("11:35:00"));
        state
            .targets
            .insert(key("live-1", "web"), cursor("11:25:00"));
        state
            .targets
            .insert(key("live-2", "native"), cursor("11:20:00"));
        state
            .targets
            .insert(key("live-2", "web"), cursor("11:20:00"));
        state.discovery.insert("app".into(), scan);
        let mut discovery = state.discovery.clone();

        let d = discovered(&pipeline, &mut discovery, Some(&state), &window);

        let names: Vec<String> = d.targets.iter().map(|t| t.to_string()).collect();
        assert_eq!(
            names,
            [
                "app=app product=native room=live-1",
                "app=app product=web room=live-1"
            ]
        );
        // The done target owes nothing up to the settled end; the other keeps its cursor.
        let cursors: Vec<_> = d.progress.iter().map(|p| p.cursor).collect();
        assert_eq!(cursors, [Some(window.settled_end), Some(at("11:25:00"))]);
        assert_eq!(d.retired, 1);
        let rooms: Vec<&String> = discovery["app"].rooms.keys().collect();
        assert_eq!(rooms, ["live-1"]);
    }
}
