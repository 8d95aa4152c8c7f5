//! What each subcommand does, returning the exit code the binary ends with. Errors are
//! printed here with what to do about them.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use crate::auth::Credentials;
use crate::capacity::{Budget, Capacity};
use crate::cli::{BackfillArgs, BudgetArgs, PipelineArgs, PlanArgs, RunArgs, StatusArgs};
use crate::clock::Clock;
use crate::config::{self, Pipeline};
use crate::metrics;
use crate::plan::{Backfill, Plan, Progress, Window, leaves_horizon};
use crate::progress::Progress as Bar;
use crate::run::{self, Exit, RunOptions, Summary};
use crate::sink::Sink;
use crate::state::{GapLedger, LeaseOptions, StateStore};

fn load_config(args: &PipelineArgs) -> Result<Pipeline, Exit> {
    let mut pipeline = config::load(&args.config).map_err(|e| fail(e, Exit::Usage))?;
    if let Some(endpoint) = &args.endpoint {
        pipeline
            .override_endpoint(endpoint)
            .map_err(|e| fail(e, Exit::Usage))?;
    }
    Ok(pipeline)
}

/// Reports an error: one log line with JSON logs (nothing else may go to stderr
/// then), a plain `error: …` line otherwise. Returns `code`.
fn fail(msg: impl std::fmt::Display, code: Exit) -> Exit {
    if crate::logs::is_json() {
        tracing::error!("{msg}");
    } else {
        eprintln!("error: {msg}");
    }
    code
}

/// `rtcq run`: one run in its span, then its summary, metrics file and push. Every line
/// it logs after the config is read carries the pipeline and the run id.
pub async fn run(args: &RunArgs, progress: Bar) -> Exit {
    run_with(args, progress, None).await
}

/// `rtcq backfill`: a run that also re-fetches `[from, to)`.
pub async fn backfill(args: &BackfillArgs, progress: Bar) -> Exit {
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
    let range = Backfill {
        from: args.from,
        to: args.to,
    };
    run_with(&args.run, progress, Some(range)).await
}

async fn run_with(args: &RunArgs, progress: Bar, backfill: Option<Backfill>) -> Exit {
    let pipeline = match load_config(&args.pipeline) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let started_at = Utc::now();
    let run_id = run::new_run_id(started_at);
    let span = run::run_span(&pipeline.name, &run_id);
    run_and_report(args, &pipeline, &run_id, started_at, progress, backfill)
        .instrument(span)
        .await
}

async fn run_and_report(
    args: &RunArgs,
    pipeline: &Pipeline,
    run_id: &str,
    started_at: DateTime<Utc>,
    progress: Bar,
    backfill: Option<Backfill>,
) -> Exit {
    let stopped = |error: String, code: Exit| {
        Summary::stopped(
            &pipeline.name,
            run_id,
            started_at,
            args.pipeline.now.unwrap_or(started_at),
            pipeline.targets.len(),
            error,
            code,
        )
    };
    let mut summary = match start_run(args, pipeline, run_id, started_at, progress, backfill).await
    {
        Ok(s) => s,
        Err((msg, code, partial)) => {
            let code = fail(&msg, code);
            partial.unwrap_or_else(|| stopped(msg, code))
        }
    };
    tracing::info!(
        requests = summary.requests_sent,
        retried = summary.requests_retried,
        throttled = summary.requests_throttled,
        failed = summary.requests_failed,
        rows = summary.rows_written,
        files = summary.files_written,
        slots_pending = summary.slots_pending,
        served = summary.targets_served,
        deferred = summary.targets_deferred,
        at_risk = summary.targets_at_risk,
        gaps = summary.gaps_recorded,
        seconds = summary.duration_seconds(),
        exit_code = summary.exit_code as u8,
        "run finished"
    );
    if let Some(path) = &args.metrics_file
        && let Err(e) = metrics::write_file(path, &metrics::render(&summary))
    {
        summary.exit_code = fail(
            format!("cannot write the metrics to {}: {e}", path.display()),
            Exit::Failed,
        );
    }
    if let Some(url) = &args.pushgateway {
        // The data is written whatever the Pushgateway says: a failed push is logged,
        // it does not change the exit code.
        match metrics::push(url, &pipeline.name, &metrics::render(&summary)).await {
            Ok(()) => tracing::info!("metrics pushed to the Pushgateway"),
            Err(e) => tracing::error!(error = %e, "metrics not pushed"),
        }
    }
    // Last, so that with `--summary -` the summary is the last line on stdout.
    if let Some(dest) = &args.summary {
        let written = if dest == "-" {
            serde_json::to_string(&summary)
                .map_err(std::io::Error::other)
                .and_then(|j| writeln!(std::io::stdout(), "{j}"))
        } else {
            serde_json::to_string_pretty(&summary)
                .map_err(std::io::Error::other)
                .and_then(|j| std::fs::write(dest, format!("{j}\n")))
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

/// Credentials, lease options and the run itself; errors with their exit code and, for
/// a run that stopped part way, what it had done.
async fn start_run(
    args: &RunArgs,
    pipeline: &Pipeline,
    run_id: &str,
    started_at: DateTime<Utc>,
    progress: Bar,
    backfill: Option<Backfill>,
) -> Result<Summary, (String, Exit, Option<Summary>)> {
    let creds = Credentials::from_env().map_err(|e| (e.to_string(), Exit::Usage, None))?;
    let lease = lease_options(args).map_err(|e| (e, Exit::Usage, None))?;
    let opts = RunOptions {
        now: args.pipeline.now,
        max_duration: args.budget.max_duration,
        fail_on_gap: args.fail_on_gap,
        lease,
        schedule: Some(args.budget.schedule),
        progress,
        retry: args.retry_policy(),
        timeouts: args.timeouts(),
        backfill,
        spill_rows: args.spill_rows.map(|n| n as usize),
    };
    run::run_with_id(pipeline, creds, &opts, run_id, started_at)
        .await
        .map_err(|e| match e {
            run::RunError::Stopped { error, summary } => {
                (error.to_string(), error.exit(), Some(*summary))
            }
            e => (e.to_string(), e.exit(), None),
        })
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

async fn read_state(pipeline: &Pipeline) -> Result<(Sink, Vec<Progress>), Exit> {
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
    Ok((sink, run::prior_progress(pipeline, state.as_ref())))
}

fn now_of(arg: Option<DateTime<Utc>>) -> DateTime<Utc> {
    arg.unwrap_or_else(|| Clock::system().now())
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The pipeline's capacity at the budget of `args`.
fn capacity(pipeline: &Pipeline, args: &BudgetArgs) -> Capacity {
    Capacity {
        targets: pipeline.targets.len() as u64,
        budget: Budget::new(
            pipeline.api.requests_per_second,
            args.schedule,
            args.max_duration,
        ),
    }
}

/// The capacity as JSON, for `plan --json` and `status --json`.
fn capacity_json(c: &Capacity) -> serde_json::Value {
    let b = &c.budget;
    serde_json::json!({
        "targets": c.targets,
        "capacity": b.capacity(),
        "over_capacity": c.over(),
        "requests_per_second": b.requests_per_second,
        "schedule_seconds": b.schedule.as_secs(),
        "run_seconds": b.run_time.as_secs(),
        "requests_per_run": b.requests_per_run(),
        "serve_every_seconds": b.serve_every(c.targets).map(|d| d.as_secs()),
        "worst_lag_seconds": b.worst_lag(c.targets).map(|d| d.as_secs()),
        "text": c.to_string(),
    })
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
    let plan = Plan::build(prior, window, |i| pipeline.targets[i].max_lag);
    let rate = pipeline.api.requests_per_second;
    let seconds = plan.requests.len() as f64 / rate;
    let cap = capacity(&pipeline, &args.budget);
    let per_run = cap.budget.requests_per_run() as usize;
    let slots: usize = plan
        .requests
        .iter()
        .map(|r| r.slots(window.slot_len).count)
        .sum();
    let first = plan.requests.iter().filter(|r| r.first).count();
    if args.json {
        let doc = serde_json::json!({
            "pipeline": pipeline.name.as_str(),
            "now": now,
            "settled_end": window.settled_end,
            "horizon": window.horizon,
            "targets": pipeline.targets.len(),
            "slots": slots,
            "requests": plan.requests.iter().map(|r| serde_json::json!({
                "target": pipeline.targets[r.target].to_string(),
                "start": r.start, "end": r.end, "slots": r.slots(window.slot_len).count,
                "due": r.due, "first": r.first,
            })).collect::<Vec<_>>(),
            "never_fetched": first,
            "seconds_at_rate": seconds,
            "requests_per_second": rate,
            "requests_this_run": plan.requests.len().min(per_run),
            "capacity": capacity_json(&cap),
            "fits_schedule": !cap.over(),
            "lost": plan.lost.iter().map(|(t, l)| serde_json::json!({
                "target": pipeline.targets[*t].to_string(), "start": l.start, "end": l.end,
            })).collect::<Vec<_>>(),
        });
        emit(&format!("{doc:#}\n"));
        return Exit::Done;
    }
    let mut out = format!(
        "pipeline {}: {} targets, now {}, settled end {}, horizon {}\n{cap}\n",
        pipeline.name,
        pipeline.targets.len(),
        hm(now),
        hm(window.settled_end),
        hm(window.horizon)
    );
    out.push_str(&format!(
        "{} requests earliest due first ({first} for targets never fetched), covering {slots} slots: {seconds:.1} s at {rate} requests/second; a run sends the first {}\n",
        plan.requests.len(),
        plan.requests.len().min(per_run),
    ));
    for r in plan.requests.iter() {
        let due = if r.first {
            "first request".to_string()
        } else {
            format!("due {}", hm(r.due))
        };
        out.push_str(&format!(
            "  {}  [{}, {})  {due}\n",
            pipeline.targets[r.target],
            hm(r.start),
            hm(r.end),
        ));
    }
    if plan.lost.is_empty() {
        out.push_str("nothing is beyond the horizon\n");
    } else {
        out.push_str(&format!(
            "{} range(s) are already beyond the 60-minute horizon and will be recorded as lost:\n",
            plan.lost.len()
        ));
        for (t, l) in &plan.lost {
            out.push_str(&format!(
                "  {}  [{}, {})\n",
                pipeline.targets[*t],
                hm(l.start),
                hm(l.end)
            ));
        }
    }
    emit(&out);
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
    let window = Window::at(now, pipeline.sink.slot);
    let cap = capacity(&pipeline, &args.budget);
    let rows: Vec<_> = pipeline
        .targets
        .iter()
        .zip(&prior)
        .map(|(t, p)| {
            let lag = p.lag(now).map(|l| l.num_seconds());
            (t, p, lag, p.pending_slots(&window))
        })
        .collect();
    let max_lag = rows.iter().filter_map(|r| r.2).max();
    let never = prior.iter().filter(|p| p.is_new()).count();
    if args.json {
        let doc = serde_json::json!({
            "pipeline": pipeline.name.as_str(),
            "now": now,
            "capacity": capacity_json(&cap),
            "max_lag_seconds": max_lag,
            "targets_never_fetched": never,
            "targets": rows.iter().map(|(t, p, lag, pending)| serde_json::json!({
                "target": t.to_string(),
                "app_id": t.app_id, "product_type": t.product_type.as_str(),
                "room_id": t.room_id, "user_id": t.user_id,
                "cursor": p.cursor, "pending_slots": pending,
                "lag_seconds": lag,
                "leaves_horizon": p.owed_from().map(leaves_horizon),
            })).collect::<Vec<_>>(),
            "gaps": gaps,
        });
        emit(&format!("{doc:#}\n"));
        return Exit::Done;
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|(t, p, lag, pending)| {
            [
                t.to_string(),
                p.cursor.map(hm).unwrap_or_else(|| "never run".into()),
                lag.map(human_secs).unwrap_or_else(|| "-".into()),
                pending.to_string(),
                p.owed_from()
                    .map(|o| hm(leaves_horizon(o)))
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let pending: usize = rows.iter().map(|r| r.3).sum();
    let mut out = format!(
        "pipeline {}: {} targets, {} pending slot(s), now {}\n{cap}\n",
        pipeline.name,
        pipeline.targets.len(),
        pending,
        hm(now)
    );
    out.push_str(&format!(
        "most behind: {}; never fetched: {never}\n\n",
        max_lag.map(human_secs).unwrap_or_else(|| "-".into())
    ));
    out.push_str(&render_table(
        ["target", "cursor", "lag", "pending", "leaves horizon"],
        &table,
    ));
    out.push_str(&format!("\n{} gap(s) recorded", gaps.len()));
    if let Some(since) = args.since {
        out.push_str(&format!(" since {}", hm(since)));
    }
    out.push_str(if gaps.is_empty() { "\n" } else { ":\n" });
    for g in &gaps {
        out.push_str(&format!(
            "  {}  [{}, {})  {} lost, detected {}\n",
            g.target,
            hm(g.start),
            hm(g.end),
            human_secs((g.end - g.start).num_seconds()),
            hm(g.detected_at)
        ));
    }
    emit(&out);
    Exit::Done
}

/// Prints to stdout; a reader that went away (`| head`) is not an error.
fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// `310` as `5m10s`, `4000` as `1h06m40s`.
fn human_secs(s: i64) -> String {
    let (sign, s) = if s < 0 { ("-", -s) } else { ("", s) };
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sign}{sec}s"),
        (0, m, sec) => format!("{sign}{m}m{sec:02}s"),
        (h, m, sec) => format!("{sign}{h}h{m:02}m{sec:02}s"),
    }
}

/// A left-aligned text table (numbers right-aligned) sized to its contents.
fn render_table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..N)
        .map(|i| {
            rows.iter().any(|r| r[i] != "-")
                && rows
                    .iter()
                    .all(|r| r[i] == "-" || r[i].chars().all(|c| c.is_ascii_digit()))
        })
        .collect();
    let line = |cells: [&str; N]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i].saturating_sub(c.chars().count());
            if i > 0 {
                l.push_str("  ");
            }
            if numeric[i] {
                l.push_str(&" ".repeat(pad));
                l.push_str(c);
            } else {
                l.push_str(c);
                if i + 1 < N {
                    l.push_str(&" ".repeat(pad));
                }
            }
        }
        l.push('\n');
        l
    };
    let mut out = line(head);
    out.push_str(&line(
        width.map(|w| "-".repeat(w)).each_ref().map(String::as_str),
    ));
    for r in rows {
        out.push_str(&line(r.each_ref().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_fit_their_contents() {
        let rows = [
            ["app=a product=native".to_string(), "12".to_string()],
            ["app=b".to_string(), "3".to_string()],
        ];
        assert_eq!(
            render_table(["target", "pending"], &rows),
            "target                pending\n--------------------  -------\napp=a product=native       12\napp=b                       3\n"
        );
        assert_eq!(human_secs(310), "5m10s");
        assert_eq!(human_secs(4000), "1h06m40s");
        assert_eq!(human_secs(9), "9s");
    }
}
