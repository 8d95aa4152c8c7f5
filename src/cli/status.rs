//! `rtcq status`: each target's cursor, lag and pending slots, and the recorded gaps,
//! each lost, recovered at 5 minutes, or final. Also what `[recovery] history` still
//! owes, which `plan` says too.

use super::args::StatusArgs;
use super::held::Held;
use super::history::{HistoryOwed, owed_history};
use super::{View, capacity_json, emit, fail, hm, human_secs, render_table};
use crate::domain::{Gap, Target};
use crate::plan::{Progress, leaves_horizon};
use crate::recovery::{self, GapStatus};
use crate::run::Exit;
use crate::state::last_run::{self, LastRun};
use crate::state::{GapLedger, RecoveryLedger};

/// `rtcq status`.
pub async fn status(args: &StatusArgs) -> Exit {
    let view = match View::open(&args.pipeline, &args.budget).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let ledger = GapLedger::new(view.sink.store(), view.sink.root(), &view.pipeline.name);
    let gaps: Vec<Gap> = match ledger.read().await {
        Ok(g) => g
            .into_iter()
            .filter(|g| args.since.is_none_or(|s| g.detected_at >= s))
            .collect(),
        Err(e) => return fail(e, Exit::Failed),
    };
    let recoveries =
        RecoveryLedger::recoveries(view.sink.store(), view.sink.root(), &view.pipeline.name);
    let recovered = match recoveries.read().await {
        Ok(r) => r,
        Err(e) => return fail(e, Exit::Failed),
    };
    let held = if args.check_gaps {
        match super::held::check(&view.sink, view.pipeline.sink.slot, &gaps).await {
            Ok(h) => h.into_iter().map(Some).collect(),
            Err(e) => return fail(e, Exit::Failed),
        }
    } else {
        vec![None; gaps.len()]
    };
    let gaps: Vec<GapLine> = gaps
        .into_iter()
        .zip(held)
        .map(|(gap, held)| GapLine {
            status: recovery::status(&gap, &recovered, view.now),
            gap,
            held,
        })
        .collect();
    let rows = rows(&view);
    let history = match owed_history(&view, &recovered).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    let last = last_run::load(&view.sink.store(), view.sink.root(), &view.pipeline.name).await;
    if args.json {
        let mut v = json(&view, &rows, &gaps);
        if let Some(h) = &history {
            v["history"] = h.json();
        }
        v["last_run"] = serde_json::to_value(&last).unwrap_or_default();
        emit(&format!("{v:#}\n"));
    } else {
        let mut out = text(&view, &rows, &gaps, args, history.as_ref());
        // After the pipeline and sink lines.
        let at = out
            .match_indices('\n')
            .nth(1)
            .map_or(out.len(), |(i, _)| i + 1);
        out.insert_str(at, &last_run_line(last.as_ref()));
        emit(&out);
    }
    Exit::Done
}

/// `last run: …` for the text status.
fn last_run_line(last: Option<&LastRun>) -> String {
    match last {
        None => "last run: none recorded\n".to_string(),
        Some(l) => format!(
            "last run: {} (run {}), exit {}, {} request(s), {} row(s), {} gap(s), {} target(s) served, {} deferred{}\n",
            crate::clock::rfc(l.finished_at),
            l.run_id,
            l.exit_code,
            l.requests_sent,
            l.rows_written,
            l.gaps_recorded,
            l.targets_served,
            l.targets_deferred,
            l.error
                .as_deref()
                .map(|e| format!("; error: {e}"))
                .unwrap_or_default()
        ),
    }
}

/// One recorded gap and what became of it.
#[derive(serde::Serialize)]
struct GapLine {
    #[serde(flatten)]
    gap: Gap,
    /// `lost`, `recovered` or `final`.
    status: GapStatus,
    /// With `--check-gaps`: what the dataset holds of the range at 30 s.
    #[serde(skip_serializing_if = "Option::is_none")]
    held: Option<Held>,
}

/// One target's line of the status.
struct Row<'a> {
    target: &'a Target,
    progress: &'a Progress,
    /// Seconds its cursor is behind `now`; `None` before its first request.
    lag: Option<i64>,
    pending: usize,
    /// Its cursor is past the present: the next run rewinds it to the horizon.
    future: bool,
}

fn max_lag(rows: &[Row]) -> Option<i64> {
    rows.iter().filter_map(|r| r.lag).max()
}

fn never_fetched(view: &View) -> usize {
    view.prior.iter().filter(|p| p.is_new()).count()
}

/// `status --json`.
fn json(view: &View, rows: &[Row], gaps: &[GapLine]) -> serde_json::Value {
    serde_json::json!({
        "pipeline": view.pipeline.name.as_str(),
        "sink": view.sink.sink_root().url(),
        "now": view.now,
        "capacity": capacity_json(&view.capacity),
        "max_lag_seconds": max_lag(rows),
        "targets_never_fetched": never_fetched(view),
        "targets": rows.iter().map(|r| {
            let (t, p) = (r.target, r.progress);
            serde_json::json!({
                "target": t.to_string(),
                "app_id": t.app_id, "product_type": t.product_type.as_str(),
                "room_id": t.room_id, "user_id": t.user_id,
                "cursor": p.cursor, "pending_slots": r.pending,
                "cursor_in_future": r.future,
                "lag_seconds": r.lag,
                "leaves_horizon": p.owed_from().map(leaves_horizon),
            })
        }).collect::<Vec<_>>(),
        "gaps": gaps,
        "discovery": discovery_json(view),
        "api_clock_offset_seconds": view.api_clock_offset_ms.map(|ms| ms as f64 / 1000.0),
    })
}

/// `status` for a person: the totals, a table of targets, then the gaps.
fn text(
    view: &View,
    rows: &[Row],
    gaps: &[GapLine],
    args: &StatusArgs,
    history: Option<&HistoryOwed>,
) -> String {
    let pending: usize = rows.iter().map(|r| r.pending).sum();
    let mut out = format!(
        "pipeline {}: {} targets, {} pending slot(s), now {}\nsink {} (pipeline file {})\n{}\n",
        view.pipeline.name,
        view.targets.len(),
        pending,
        hm(view.now),
        view.sink.sink_root().url(),
        view.pipeline.file.display(),
        view.capacity,
    );
    out.push_str(&format!(
        "most behind: {}; never fetched: {}\n",
        max_lag(rows).map(human_secs).unwrap_or_else(|| "-".into()),
        never_fetched(view),
    ));
    if let Some(ms) = view.api_clock_offset_ms {
        let seconds = (ms as f64 / 1000.0).round() as i64;
        out.push_str(&format!(
            "API clock: {} s {} this host's at the last run (windows follow the API's clock; fix the host's time sync)\n",
            seconds.abs(),
            if seconds >= 0 { "ahead of" } else { "behind" }
        ));
    }
    if let Some(h) = history {
        out.push_str(&format!("{h}\n"));
    }
    out.push('\n');
    out.push_str(&render_table(
        ["target", "cursor", "lag", "pending", "leaves horizon"],
        &rows.iter().map(table_row).collect::<Vec<_>>(),
    ));
    out.push_str(&discovery_text(view));
    out.push_str(&format!("\n{} gap(s) recorded", gaps.len()));
    if let Some(since) = args.since {
        out.push_str(&format!(" since {}", hm(since)));
    }
    out.push_str(if gaps.is_empty() { "\n" } else { ":\n" });
    for GapLine {
        gap: g,
        status,
        held,
    } in gaps
    {
        let held = match held {
            Some(h) if h.is_false_loss() => format!(
                "; HELD: the dataset has 30 s rows at {} of its {} buckets, not a loss",
                h.held, h.buckets
            ),
            Some(h) => format!("; none of its {} buckets held", h.buckets),
            None => String::new(),
        };
        out.push_str(&format!(
            "  {}  [{}, {})  {}, detected {}: {}{held}\n",
            g.label(),
            hm(g.start),
            hm(g.end),
            human_secs((g.end - g.start).num_seconds()),
            hm(g.detected_at),
            status.as_str(),
        ));
    }
    out
}

/// Per `rooms = "active"` entry: when it last scanned, the rooms it knows, how many of
/// them are in a call, and how many of their targets wait with owed slots (the targets
/// are in the table above; retired rooms are gone from the state, and counted in each
/// run's summary).
fn discovery_json(view: &View) -> serde_json::Value {
    let apps: serde_json::Map<String, serde_json::Value> = view
        .pipeline
        .scans
        .iter()
        .map(|scan| {
            let state = view.discovery.get(&scan.app_id);
            let rooms = state.map(|s| s.rooms.len()).unwrap_or(0);
            let running = state
                .map(|s| {
                    s.rooms
                        .values()
                        .filter(|calls| calls.iter().any(|c| c.destroyed.is_none()))
                        .count()
                })
                .unwrap_or(0);
            // Discovered targets come after the listed ones.
            let listed = view.pipeline.targets.len();
            let waiting = view.targets[listed..]
                .iter()
                .zip(&view.prior[listed..])
                .filter(|(t, p)| t.app_id == scan.app_id && p.pending_slots(&view.window) > 0)
                .count();
            (
                scan.app_id.clone(),
                serde_json::json!({
                    "entry": scan.to_string(),
                    "scanned_until": state.and_then(|s| s.scanned_until),
                    "rooms_known": rooms,
                    "rooms_in_a_call": running,
                    "room_targets_waiting": waiting,
                }),
            )
        })
        .collect();
    serde_json::Value::Object(apps)
}

/// [`discovery_json`] for a person; empty for a pipeline without discovery.
fn discovery_text(view: &View) -> String {
    let serde_json::Value::Object(apps) = discovery_json(view) else {
        return String::new();
    };
    let mut out = String::new();
    for d in apps.values() {
        let scanned = d["scanned_until"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .map(hm)
            .unwrap_or_else(|| "never".into());
        out.push_str(&format!(
            "\n{}: {} room(s) known, {} in a call, {} room target(s) waiting; scanned until {scanned}\n",
            d["entry"].as_str().unwrap_or_default(),
            d["rooms_known"],
            d["rooms_in_a_call"],
            d["room_targets_waiting"],
        ));
    }
    out
}

fn table_row(r: &Row) -> [String; 5] {
    let p = r.progress;
    [
        r.target.to_string(),
        match p.cursor {
            None => "never run".into(),
            Some(c) if r.future => format!("{} (in the future: a run rewinds it)", hm(c)),
            Some(c) => hm(c),
        },
        r.lag.map(human_secs).unwrap_or_else(|| "-".into()),
        r.pending.to_string(),
        p.owed_from()
            .map(|o| hm(leaves_horizon(o)))
            .unwrap_or_else(|| "-".into()),
    ]
}

/// Each target's row: its cursor, lag and pending slots.
fn rows(view: &View) -> Vec<Row<'_>> {
    view.targets
        .iter()
        .zip(&view.prior)
        .map(|(target, p)| Row {
            target,
            progress: p,
            lag: p.lag(view.now).map(|l| l.num_seconds()),
            pending: p.pending_slots(&view.window),
            future: p.is_in_future(&view.window),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::PipelineArgs;
    use crate::cli::history::HistoryOwed;
    use crate::cli::history::tests::{HISTORY, OWED, budget, loading, now, owed};

    fn status_text(view: &View, history: Option<&HistoryOwed>) -> String {
        let rows = rows(view);
        let args = StatusArgs {
            pipeline: PipelineArgs {
                config: view.pipeline.file.clone(),
                now: Some(now()),
            },
            json: false,
            since: None,
            check_gaps: false,
            budget: budget(),
        };
        text(view, &rows, &[], &args, history)
    }

    #[tokio::test]
    async fn status_prints_the_history_owed_after_the_lag_and_nothing_without_history() {
        let dir = tempfile::tempdir().unwrap();
        let (args, done) = loading(dir.path(), HISTORY).await;
        let view = View::open(&args, &budget()).await.unwrap();
        let history = owed_history(&view, &done).await.unwrap().unwrap();
        assert_eq!(history, owed(10, 3, 3));
        let with = status_text(&view, Some(&history));
        let lines: Vec<&str> = with.lines().collect();
        assert!(lines[3].starts_with("most behind: "), "{with}");
        assert_eq!(lines[4], OWED);
        assert_eq!(lines[5], "");
        // The rest is as without history.
        assert_eq!(
            with.replacen(&format!("{OWED}\n"), "", 1),
            status_text(&view, None)
        );

        // Without the setting: nothing read, nothing said.
        let dir = tempfile::tempdir().unwrap();
        let (args, done) = loading(dir.path(), "").await;
        let view = View::open(&args, &budget()).await.unwrap();
        assert_eq!(owed_history(&view, &done).await.unwrap(), None);
        assert!(!status_text(&view, None).contains("history"));
    }
}
