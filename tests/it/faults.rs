//! Retries and repairs under API faults: every fault the emulator can inject, on every
//! request of one run, leaves the slots pending (exit 3) and writes nothing wrong; a
//! later run without faults completes the dataset exactly once.

use std::time::Duration;

use crate::kit::*;
use rtcq_emulator::{EmulatorConfig, FailRoom, FaultKind, Faults};

const TARGETS: &str = r#"
[[targets]]
app_id = "app-a"
indicators = ["join_room_success_rate", "stall_rate"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]
rooms = ["room-1"]
product_types = ["web"]
"#;

fn config(faults: Faults) -> EmulatorConfig {
    EmulatorConfig {
        now: Some(t0()),
        requests_per_second: None,
        faults,
        ..EmulatorConfig::default()
    }
}

fn summary(out: &Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("no summary ({e}): {}\n{}", out.stdout, out.stderr))
}

/// One run with `kind` on every request, then one without faults.
async fn fault_then_clean(kind: FaultKind) {
    let now = t0();
    let faults = Faults {
        seed: 42,
        latency: Duration::from_millis(300),
        // Longer than the client's 400 ms request timeout (`fast_retries`).
        timeout: Duration::from_millis(1500),
        ..Faults::default()
    }
    .with(kind, 1.0);
    let faulty = emulator_with(config(faults)).await;
    let dir = tempfile::tempdir().unwrap();
    let name = format!("f-{kind}");
    let cfg = write_pipeline(dir.path(), &name, &faulty.url(), 50.0, TARGETS);
    let pipeline = load(&cfg);
    let root = dir.path().join("data");
    let expected = expected_first_run(&pipeline, now);
    assert!(!expected.is_empty());

    let out = rtcq_async_env(run_args(&cfg, now, &[]), fast_retries()).await;
    let s = summary(&out);
    let stats = faulty.stats();
    assert!(stats.faults > 0, "{kind}: no fault injected: {stats:?}");
    if kind == FaultKind::Latency {
        // Slow answers are still answers: the run completes without retrying.
        assert_eq!(out.code, 0, "{kind}: {}", out.stderr);
        assert_eq!(s["requests_retried"], 0, "{kind}");
        assert_exact(&read_dataset(&root), &expected);
        return;
    }
    assert_eq!(out.code, 3, "{kind}: {}", out.stderr);
    assert_eq!(s["exit_code"], 3);
    assert_eq!(s["requests_planned"], 2);
    // Three attempts per request: the first and two retries.
    assert_eq!(s["requests_sent"], 6, "{kind}: {s}");
    assert_eq!(s["requests_retried"], 4, "{kind}: {s}");
    assert_eq!(s["requests_failed"], 2, "{kind}: {s}");
    // Both targets were never fetched: they owe nothing yet, and lose nothing.
    assert_eq!(s["targets_never_fetched"], 2, "{kind}: {s}");
    assert_eq!(s["gaps_recorded"], 0, "{kind}: {s}");
    assert_eq!(s["rows_written"], 0);
    assert_eq!(s["files_written"], 0);
    assert!(read_dataset(&root).is_empty(), "{kind}: rows were written");
    if kind == FaultKind::Throttle {
        assert_eq!(s["requests_throttled"], 6, "{kind}: {s}");
    }
    drop(faulty);

    let clean = emulator_with(config(Faults::default())).await;
    let out = rtcq_async_env(
        run_args(&cfg, now, &["--endpoint", &clean.url()]),
        fast_retries(),
    )
    .await;
    assert_eq!(out.code, 0, "{kind}: {}", out.stderr);
    let s = summary(&out);
    assert_eq!(s["requests_sent"], 2, "{kind}: {s}");
    assert_eq!(s["requests_retried"], 0);
    assert_eq!(s["slots_pending"], 0);
    assert_exact(&read_dataset(&root), &expected);
    assert_eq!(s["rows_written"], expected.len());
}

macro_rules! fault_cases {
    ($($name:ident => $kind:expr,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            fault_then_clean($kind).await;
        }
    )*};
}

fault_cases! {
    fault_throttle_429 => FaultKind::Throttle,
    fault_internal_error_500 => FaultKind::InternalError,
    fault_fail_to_connect_502 => FaultKind::FailToConnect,
    fault_service_unavailable_503 => FaultKind::Unavailable,
    fault_gateway_timeout_504 => FaultKind::GatewayTimeout,
    fault_error_inside_200 => FaultKind::ErrorIn200,
    fault_latency_only_slows => FaultKind::Latency,
    fault_client_timeout => FaultKind::Timeout,
    fault_dropped_connection => FaultKind::Drop,
    fault_truncated_body => FaultKind::Truncate,
    fault_malformed_body => FaultKind::Malformed,
}

/// Faults at a partial rate, chosen from a seed: the run retries its way through or
/// leaves slots pending, and a second run against the same faulty emulator finishes the
/// job; the dataset is exact either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_faults_at_partial_rates_converge_exactly_once() {
    let now = t0();
    let mut faults = Faults {
        seed: 7,
        timeout: Duration::from_millis(1500),
        latency: Duration::from_millis(50),
        ..Faults::default()
    };
    for kind in FaultKind::ALL {
        faults = faults.with(kind, 0.04);
    }
    let emu = emulator_with(config(faults)).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_pipeline(dir.path(), "mixed", &emu.url(), 50.0, MIXED_TARGETS);
    let pipeline = load(&cfg);
    let mut env = fast_retries();
    env.push(("RTCQ_RETRY_MAX".into(), "4".into()));
    let mut codes = Vec::new();
    for _ in 0..4 {
        let out = rtcq_async_env(run_args(&cfg, now, &[]), env.clone()).await;
        assert!(matches!(out.code, 0 | 3), "{}", out.stderr);
        codes.push(out.code);
        if out.code == 0 {
            break;
        }
    }
    assert_eq!(codes.last(), Some(&0), "{codes:?}");
    assert!(emu.stats().faults > 0);
    assert_exact(
        &read_dataset(&dir.path().join("data")),
        &expected_first_run(&pipeline, now),
    );
}

/// One room fails for a whole run while the other targets succeed: their data is
/// written, the room's slots stay pending, and the next run fetches only those and
/// completes every slot file with every target exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_room_is_repaired_by_the_next_run() {
    let now = t0();
    // The first run sends three attempts for room-2 (two retries): fail exactly those.
    let faults = Faults {
        fail_room: Some(FailRoom {
            app_id: "app-a".into(),
            room_id: "room-2".into(),
            requests: 3,
        }),
        ..Faults::default()
    };
    let emu = emulator_with(config(faults)).await;
    let dir = tempfile::tempdir().unwrap();
    let targets = r#"
[[targets]]
app_id = "app-a"
indicators = ["stall_rate"]

[[targets]]
app_id = "app-a"
indicators = ["stall_rate", "network_trans_delay"]
rooms = ["room-1", "room-2", "room-3"]

[[targets]]
app_id = "app-b"
indicators = ["stall_rate"]
rooms = ["room-2"]
"#;
    let cfg = write_pipeline(dir.path(), "repair", &emu.url(), 50.0, targets);
    let pipeline = load(&cfg);
    let root = dir.path().join("data");
    let expected = expected_first_run(&pipeline, now);
    let failing = |k: &Key| k.0 == "app-a" && k.1.as_deref() == Some("room-2");
    let others: Vec<Key> = expected.iter().filter(|k| !failing(k)).cloned().collect();
    assert!(others.len() < expected.len() && !others.is_empty());
    let failing_target = pipeline
        .targets
        .iter()
        .find(|t| t.app_id == "app-a" && t.room_id.as_deref() == Some("room-2"))
        .unwrap()
        .clone();

    let out = rtcq_async_env(run_args(&cfg, now, &[]), fast_retries()).await;
    assert_eq!(out.code, 3, "{}", out.stderr);
    let s = summary(&out);
    assert_eq!(s["requests_failed"], 1, "{s}");
    assert_eq!(s["targets_served"], pipeline.targets.len() - 1, "{s}");
    // Its first request failed: the room was never fetched, so it owes nothing yet.
    assert_eq!(s["targets_never_fetched"], 1, "{s}");
    assert_eq!(s["gaps_recorded"], 0, "{s}");
    assert!(
        out.stderr.contains("room=room-2"),
        "the failing target is named: {}",
        out.stderr
    );
    // The other targets' data is in the slot files, the failing room's is not.
    assert_exact(&read_dataset(&root), &others);
    let state_path = root.join("_state/repair.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(
        state["targets"][failing_target.key()]["cursor"],
        serde_json::Value::Null,
        "{state}"
    );
    for t in pipeline.targets.iter() {
        if t.key() != failing_target.key() {
            assert_eq!(
                state["targets"][t.key()]["cursor"],
                "2026-11-25T11:59:00Z",
                "{t}: {state}"
            );
        }
    }
    let files_before: Vec<_> = snapshot(&root).into_keys().collect();

    // The next run fetches only the failing room, with one request.
    let out = rtcq_async_env(run_args(&cfg, now, &[]), fast_retries()).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let s = summary(&out);
    assert_eq!(s["requests_sent"], 1, "{s}");
    assert_eq!(s["requests_planned"], 1, "{s}");
    assert_eq!(s["slots_pending"], 0);
    assert_eq!(s["targets_never_fetched"], 0);
    assert_eq!(s["gaps_recorded"], 0, "{s}");
    assert!(!root.join("_state/gaps/repair.jsonl").exists());
    let files_after: Vec<_> = snapshot(&root).into_keys().collect();
    assert_eq!(files_after, files_before, "no new file names");
    assert_exact(&read_dataset(&root), &expected);
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    assert_eq!(
        state["targets"][failing_target.key()]["cursor"],
        "2026-11-25T11:59:00Z",
        "{state}"
    );
}
