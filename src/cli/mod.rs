//! The command line: its arguments (`args`) and what each subcommand does, returning
//! the exit code the binary ends with. Errors are printed here with what to do about
//! them.
//!
//! One file a command: `run` (also `backfill`), `plan`, `status`, `check`; `held`
//! reads the dataset for `status --check-gaps`. This file holds what they share:
//! loading the pipeline, reading its state, and printing.

pub mod args;
mod check;
mod held;
mod history;
mod plan;
mod run;
mod status;

pub use check::check;
pub use plan::plan;
pub use run::{backfill, run};
pub use status::status;

pub use crate::obs::logs::LogFormat;
pub use args::{Cli, Command};

use std::io::Write;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{self, Pipeline};
use crate::discovery::calls::ScanState;
use crate::domain::Target;
use crate::plan::capacity::{Budget, Capacity};
use crate::plan::{Progress, Window};
use crate::run::{Exit, open_sink_to_read, targets_from_state};
use crate::sink::Sink;
use crate::state::{State, StateStore};
use args::{BudgetArgs, PipelineArgs};

/// Says when the pipeline asks for more than the API's documented rate; whether it did.
fn warn_rate(pipeline: &Pipeline) -> bool {
    let warning = pipeline.rate_warning();
    if let Some(w) = &warning {
        tracing::warn!("{w}");
    }
    warning.is_some()
}

/// The pipeline file at `path`, with `--endpoint` applied when given.
fn read_pipeline(
    path: &std::path::Path,
    endpoint: Option<&str>,
) -> Result<Pipeline, config::ConfigError> {
    let mut pipeline = config::load(path)?;
    if let Some(endpoint) = endpoint {
        pipeline.override_endpoint(endpoint)?;
    }
    Ok(pipeline)
}

/// [`read_pipeline`] for a command: an error is printed and is exit 2.
fn load_config(args: &PipelineArgs, endpoint: Option<&str>) -> Result<Pipeline, Exit> {
    read_pipeline(&args.config, endpoint).map_err(|e| fail(e, Exit::Usage))
}

/// Reports an error: one log line with JSON logs (nothing else may go to stderr
/// then), a plain `error: …` line otherwise. Returns `code`.
fn fail(msg: impl std::fmt::Display, code: Exit) -> Exit {
    if crate::obs::logs::is_json() {
        tracing::error!("{msg}");
    } else {
        eprintln!("error: {msg}");
    }
    code
}

/// What `plan` and `status` look at: the pipeline, its sink, each target's progress as
/// of the saved state, the window at `now` and the capacity at the budget asked.
struct View {
    pipeline: Pipeline,
    sink: Sink,
    /// The listed targets, then the discovered rooms the state knows.
    targets: Arc<[Target]>,
    prior: Vec<Progress>,
    /// What room discovery knows, by app.
    discovery: BTreeMap<String, ScanState>,
    now: DateTime<Utc>,
    window: Window,
    capacity: Capacity,
    /// How far the API's clock was ahead of the job's when the last run saved (none:
    /// within 2 s, or never measured).
    api_clock_offset_ms: Option<i64>,
    /// The state as read (for what history is still owed).
    state: Option<State>,
}

impl View {
    /// Loads the pipeline and reads its state; errors are printed, with their exit code.
    async fn open(args: &PipelineArgs, budget: &BudgetArgs) -> Result<View, Exit> {
        let pipeline = load_config(args, None)?;
        warn_rate(&pipeline);
        let (sink, state) = read_state(&pipeline).await?;
        let now = Clock::at(args.now).now();
        let window = Window::at(now, pipeline.sink.slot);
        let (targets, prior, discovery) = targets_from_state(&pipeline, state.as_ref(), &window);
        let capacity = capacity(&pipeline, targets.len(), budget);
        let api_clock_offset_ms = state.as_ref().and_then(|s| s.api_clock_offset_ms);
        Ok(View {
            pipeline,
            sink,
            targets,
            prior,
            discovery,
            now,
            window,
            capacity,
            api_clock_offset_ms,
            state,
        })
    }
}

async fn read_state(pipeline: &Pipeline) -> Result<(Sink, Option<State>), Exit> {
    let sink = open_sink_to_read(pipeline).map_err(|e| {
        let code = crate::run::exit_of_sink(&e);
        fail(e, code)
    })?;
    sink.sink_root()
        .check_credentials()
        .await
        .map_err(|e| fail(e, Exit::Usage))?;
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
    Ok((sink, state))
}

fn hm(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The pipeline's capacity at the budget of `args`.
fn capacity(pipeline: &Pipeline, targets: usize, args: &BudgetArgs) -> Capacity {
    Capacity {
        targets: targets as u64,
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
