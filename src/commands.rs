//! What each subcommand does, returning the exit code the binary ends with. Errors are
//! printed here with what to do about them.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::auth::Credentials;
use crate::cli::{BackfillArgs, PipelineArgs, PlanArgs, RunArgs, StatusArgs};
use crate::clock::Clock;
use crate::config::{self, Pipeline};
use crate::plan::{Backfill, Plan, Window};
use crate::run::{self, Exit, RunOptions};
use crate::sink::Sink;
use crate::state::{GapLedger, LeaseOptions, StateStore, TargetState};

fn load_config(args: &PipelineArgs) -> Result<Pipeline, Exit> {
    let mut pipeline = config::load(&args.config).map_err(|e| fail(e, Exit::Usage))?;
    if let Some(endpoint) = &args.endpoint {
        pipeline
            .override_endpoint(endpoint)
            .map_err(|e| fail(e, Exit::Usage))?;
    }
    Ok(pipeline)
}

fn fail(msg: impl std::fmt::Display, code: Exit) -> Exit {
    tracing::error!("{msg}");
    eprintln!("error: {msg}");
    code
}

/// `rtcq run`.
pub async fn run(args: &RunArgs) -> Exit {
    run_with(args, None).await
}

/// `rtcq backfill`.
pub async fn backfill(args: &BackfillArgs) -> Exit {
    if args.from >= args.to {
        return fail(
            format!(
                "--from {} is not before --to {}: give a range such as --from 2026-11-25T11:00:00Z --to 2026-11-25T11:30:00Z",
                args.from.to_rfc3339(),
                args.to.to_rfc3339()
            ),
            Exit::Usage,
        );
    }
    run_with(
        &args.run,
        Some(Backfill {
            from: args.from,
            to: args.to,
        }),
    )
    .await
}

async fn run_with(args: &RunArgs, backfill: Option<Backfill>) -> Exit {
    let pipeline = match load_config(&args.pipeline) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let creds = match Credentials::from_env() {
        Ok(c) => c,
        Err(e) => return fail(e, Exit::Usage),
    };
    let lease = match lease_options(args) {
        Ok(l) => l,
        Err(e) => return fail(e, Exit::Usage),
    };
    let opts = RunOptions {
        now: args.pipeline.now,
        max_duration: args.max_duration,
        fail_on_gap: args.fail_on_gap,
        lease,
        retry: args.retry_policy(),
        timeouts: args.timeouts(),
        backfill,
        spill_rows: args.spill_rows.map(|n| n as usize),
        ..RunOptions::default()
    };
    let summary = match run::run(&pipeline, creds, &opts).await {
        Ok(s) => s,
        Err(e) => return fail(&e, e.exit()),
    };
    tracing::info!(
        requests = summary.requests_sent,
        retried = summary.requests_retried,
        throttled = summary.requests_throttled,
        failed = summary.requests_failed,
        rows = summary.rows_written,
        files = summary.files_written,
        slots_pending = summary.slots_pending,
        gaps = summary.gaps_recorded,
        exit_code = summary.exit_code as u8,
        "run finished"
    );
    if let Some(dest) = &args.summary {
        let json = match serde_json::to_string_pretty(&summary) {
            Ok(j) => j,
            Err(e) => return fail(format!("cannot serialise the summary: {e}"), Exit::Failed),
        };
        let written = if dest == "-" {
            writeln!(std::io::stdout(), "{json}")
        } else {
            std::fs::write(dest, format!("{json}\n"))
        };
        if let Err(e) = written {
            return fail(
                format!("cannot write the summary to {dest}: {e}"),
                Exit::Failed,
            );
        }
    }
    summary.exit_code
}

/// The lease TTL and renewal period from the hidden test knobs.
fn lease_options(args: &RunArgs) -> Result<LeaseOptions, String> {
    let secs = |name: &str, v: f64| {
        Duration::try_from_secs_f64(v)
            .map_err(|_| format!("{name} must be a number of seconds, not {v}"))
    };
    let mut opts = LeaseOptions::default();
    if let Some(v) = args.lease_ttl_seconds {
        let ttl = secs("RTCQ_LEASE_TTL_SECONDS", v)?;
        if ttl.is_zero() {
            return Err("RTCQ_LEASE_TTL_SECONDS must be more than 0".into());
        }
        opts = LeaseOptions::with_ttl(ttl);
    }
    if let Some(v) = args.lease_renew_seconds {
        let every = secs("RTCQ_LEASE_RENEW_SECONDS", v)?;
        opts.renew_every = (!every.is_zero()).then_some(every);
    }
    Ok(opts)
}

async fn read_state(pipeline: &Pipeline) -> Result<(Sink, Vec<TargetState>), Exit> {
    let sink = run::open_sink(pipeline).map_err(|e| fail(e, Exit::Failed))?;
    let store = StateStore::new(
        sink.store(),
        sink.root(),
        &pipeline.name,
        !sink.sink_root().is_local(),
    );
    let state = store
        .load(&pipeline.name, pipeline.sink.slot.num_seconds())
        .await
        .map_err(|e| fail(e, Exit::Failed))?;
    let prior = pipeline
        .targets
        .iter()
        .map(|t| {
            state
                .as_ref()
                .and_then(|s| s.targets.get(&t.key()).cloned())
                .unwrap_or_default()
        })
        .collect();
    Ok((sink, prior))
}

fn now_of(arg: Option<DateTime<Utc>>) -> DateTime<Utc> {
    arg.unwrap_or_else(|| Clock::system().now())
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `rtcq plan`.
pub async fn plan(args: &PlanArgs) -> Exit {
    let pipeline = match load_config(&args.pipeline) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (_, prior) = match read_state(&pipeline).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let now = now_of(args.pipeline.now);
    let window = Window::at(now, pipeline.sink.slot);
    let progress: Vec<_> = prior.iter().map(TargetState::progress).collect();
    let plan = Plan::build(&progress, window);
    let rate = pipeline.api.requests_per_second;
    let seconds = plan.requests.len() as f64 / rate;
    let slots: usize = plan.targets.iter().map(|t| t.slots.len()).sum();
    let lost: Vec<_> = plan
        .targets
        .iter()
        .zip(&pipeline.targets)
        .flat_map(|(tp, t)| tp.lost.iter().map(move |l| (t, l)))
        .collect();
    if args.json {
        let doc = serde_json::json!({
            "pipeline": pipeline.name,
            "now": now,
            "settled_end": window.settled_end,
            "horizon": window.horizon,
            "targets": pipeline.targets.len(),
            "slots": slots,
            "requests": plan.requests.iter().map(|r| serde_json::json!({
                "target": pipeline.targets[r.target].to_string(),
                "start": r.start, "end": r.end, "slots": r.slots.len(),
            })).collect::<Vec<_>>(),
            "seconds_at_rate": seconds,
            "requests_per_second": rate,
            "lost": lost.iter().map(|(t, l)| serde_json::json!({
                "target": t.to_string(), "start": l.start, "end": l.end,
            })).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
        return Exit::Done;
    }
    let mut out = String::new();
    out.push_str(&format!(
        "pipeline {}: {} targets, now {}, settled end {}, horizon {}\n",
        pipeline.name,
        pipeline.targets.len(),
        hm(now),
        hm(window.settled_end),
        hm(window.horizon)
    ));
    out.push_str(&format!(
        "{} requests covering {} slots: {:.1} s at {} requests/second\n",
        plan.requests.len(),
        slots,
        seconds,
        rate
    ));
    for r in &plan.requests {
        out.push_str(&format!(
            "  {}  [{}, {})  {} slot(s)\n",
            pipeline.targets[r.target],
            hm(r.start),
            hm(r.end),
            r.slots.len()
        ));
    }
    if lost.is_empty() {
        out.push_str("nothing is beyond the horizon\n");
    } else {
        out.push_str(&format!(
            "{} range(s) are already beyond the 60-minute horizon and will be recorded as lost:\n",
            lost.len()
        ));
        for (t, l) in &lost {
            out.push_str(&format!("  {t}  [{}, {})\n", hm(l.start), hm(l.end)));
        }
    }
    print!("{out}");
    Exit::Done
}

/// `rtcq status`.
pub async fn status(args: &StatusArgs) -> Exit {
    let pipeline = match load_config(&args.pipeline) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let (sink, prior) = match read_state(&pipeline).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let ledger = GapLedger::new(sink.store(), sink.root(), &pipeline.name);
    let gaps = match ledger.read().await {
        Ok(g) => g,
        Err(e) => return fail(e, Exit::Failed),
    };
    let gaps: Vec<_> = gaps
        .into_iter()
        .filter(|g| args.since.is_none_or(|s| g.detected_at >= s))
        .collect();
    let now = now_of(args.pipeline.now);
    let rows: Vec<_> = pipeline
        .targets
        .iter()
        .zip(&prior)
        .map(|(t, s)| {
            let oldest = s.incomplete.iter().next().copied().or(s.cursor);
            (t, s, oldest.map(|o| (now - o).num_seconds()))
        })
        .collect();
    if args.json {
        let doc = serde_json::json!({
            "pipeline": pipeline.name,
            "now": now,
            "targets": rows.iter().map(|(t, s, lag)| serde_json::json!({
                "target": t.to_string(),
                "app_id": t.app_id, "product_type": t.product_type.as_str(),
                "room_id": t.room_id, "user_id": t.user_id,
                "cursor": s.cursor, "pending_slots": s.incomplete.len(),
                "lag_seconds": lag,
            })).collect::<Vec<_>>(),
            "gaps": gaps,
        });
        println!("{doc:#}");
        return Exit::Done;
    }
    let mut out = format!("pipeline {}: now {}\n", pipeline.name, hm(now));
    out.push_str(&format!(
        "{:<60} {:<20} {:>10} {:>8}\n",
        "target", "cursor", "lag", "pending"
    ));
    for (t, s, lag) in &rows {
        out.push_str(&format!(
            "{:<60} {:<20} {:>10} {:>8}\n",
            t.to_string(),
            s.cursor.map(hm).unwrap_or_else(|| "never run".into()),
            lag.map(|l| format!("{}m{:02}s", l / 60, l % 60))
                .unwrap_or_else(|| "-".into()),
            s.incomplete.len()
        ));
    }
    out.push_str(&format!("{} gap(s) recorded\n", gaps.len()));
    for g in &gaps {
        out.push_str(&format!(
            "  {}  [{}, {})  detected {}\n",
            g.target,
            hm(g.start),
            hm(g.end),
            hm(g.detected_at)
        ));
    }
    print!("{out}");
    Exit::Done
}
