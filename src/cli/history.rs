//! What `[recovery] history` still owes a pipeline, as `plan` and `status` say it: in
//! `ListQuality` requests, and in runs at the cap and days at the documented quota
//! (docs/design.md, "History on day one"). Counted by [`history::owed`], as a run
//! would ask it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{View, fail};
use crate::config::Pipeline;
use crate::discovery::calls::ScanState;
use crate::recovery::{Recovery, history};
use crate::run::Exit;
use crate::run::since::since_of;

/// `ListQuality` requests a day that BytePlus documents for its version of the action:
/// what an account held to it gets through in a day.
const QUOTA_PER_DAY: usize = 60;

/// The history (`[recovery] history`, docs/design.md "History on day one") a pipeline
/// still owes, for `plan` and `status`: in `ListQuality` requests, as the run cuts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HistoryOwed {
    /// Requests what is left takes (the young part counted too, though not due yet).
    pub(super) requests: usize,
    /// Targets that owe any.
    pub(super) targets: usize,
    /// `[recovery] max_requests_per_run`.
    pub(super) per_run: usize,
}

impl HistoryOwed {
    /// Runs the requests take at `max_requests_per_run`, nothing else asked.
    pub(super) fn runs_at_cap(&self) -> usize {
        self.requests.div_ceil(self.per_run.max(1))
    }

    /// Days the requests take at [`QUOTA_PER_DAY`].
    pub(super) fn days_at_quota(&self) -> usize {
        self.requests.div_ceil(QUOTA_PER_DAY)
    }

    /// The `history` object of `plan --json` and `status --json`.
    pub(super) fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "requests_owed": self.requests,
            "targets_owed": self.targets,
            "runs_at_cap": self.runs_at_cap(),
            "days_at_quota": self.days_at_quota(),
        })
    }
}

impl std::fmt::Display for HistoryOwed {
    /// "history: 12 ListQuality requests owed (2 targets); 4 runs at 3 a run; 1 day at
    /// 60 a day", or "history: loaded (nothing owed)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.requests == 0 {
            return write!(f, "history: loaded (nothing owed)");
        }
        let s = |n: usize| if n == 1 { "" } else { "s" };
        let (runs, days) = (self.runs_at_cap(), self.days_at_quota());
        write!(
            f,
            "history: {} ListQuality request{} owed ({} target{}); {runs} run{} at {} a run; {days} day{} at {QUOTA_PER_DAY} a day",
            self.requests,
            s(self.requests),
            self.targets,
            s(self.targets),
            s(runs),
            self.per_run,
            s(days),
        )
    }
}

/// What history `view`'s pipeline still owes, given the recovery ledger's records;
/// `None` without `[recovery] history`. Each listed target's history ends where the
/// next run will have it end ([`since_of`]: the state's `since`, the horizon for a
/// target never answered, an app's oldest slot file for a state from before `since`).
/// Errors are printed, with their exit code.
pub(super) async fn owed_history(
    view: &View,
    recovered: &[Recovery],
) -> Result<Option<HistoryOwed>, Exit> {
    if view.pipeline.recovery.history.is_none() {
        return Ok(None);
    }
    let p = &view.pipeline;
    let since = since_of(p, &view.sink, view.state.as_ref(), &p.targets)
        .await
        .map_err(|e| fail(e, Exit::Failed))?
        .or_first(view.window.horizon);
    Ok(Some(count(
        p,
        &since,
        &view.discovery,
        recovered,
        view.window.now,
    )))
}

/// [`owed_history`] once each listed target's `since` is known (`None`: it owes none).
fn count(
    p: &Pipeline,
    since: &[Option<DateTime<Utc>>],
    discovery: &BTreeMap<String, ScanState>,
    recovered: &[Recovery],
    now: DateTime<Utc>,
) -> HistoryOwed {
    let owed = history::owed(
        p.recovery.history.unwrap_or_default(),
        p.targets.iter().zip(since.iter().copied()),
        &p.scans,
        discovery,
        recovered,
        now,
    );
    HistoryOwed {
        requests: owed.requests,
        targets: owed.targets,
        per_run: p.recovery.max_requests_per_run as usize,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::path::Path;
    use std::time::Duration;

    use chrono::{TimeDelta, TimeZone};
    use object_store::ObjectStoreExt;

    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};

    use super::*;
    use crate::cli::args::{BudgetArgs, PipelineArgs};
    use crate::config::Pipeline;
    use crate::discovery::calls::ScanState;
    use crate::domain::TimeRange;
    use crate::plan::{Slot, Window};
    use crate::state::{State, StateStore, TargetState};

    /// `day` November 2026 at `h:m`, UTC (day 0 is 31 October).
    fn at(day: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, h, m, 0).unwrap() + TimeDelta::days(i64::from(day) - 1)
    }

    /// The plan's and status's clock: 10 s past 12:00 on 30 November, so the horizon is
    /// 11:01:00 and the offline API's lookback (less its hour) starts 31 October 13:00:10.
    pub(in crate::cli) fn now() -> DateTime<Utc> {
        at(30, 12, 0) + TimeDelta::seconds(10)
    }

    /// Three listed targets: `app-a` native and web, `app-b` native.
    const TARGETS: &str = "[[targets]]\napp_id = \"app-a\"\nindicators = [\"stall_rate\"]\nproduct_types = [\"native\", \"web\"]\n\n[[targets]]\napp_id = \"app-b\"\nindicators = [\"stall_rate\"]\n";

    /// Thirty days of history, three requests a run.
    pub(in crate::cli) const HISTORY: &str =
        "[recovery]\nhistory = \"30d\"\nmax_requests_per_run = 3\n";

    fn key(app: &str, product_type: &str) -> String {
        serde_json::json!([app, product_type, null, null]).to_string()
    }

    fn pipeline(recovery: &str, more: &str) -> Pipeline {
        let text = format!("name = \"demo\"\n[sink]\nurl = \"data\"\n{recovery}\n{TARGETS}{more}");
        crate::config::parse(Path::new("pipelines/demo.toml"), &text).unwrap()
    }

    /// A recovery of `target`'s `[start, end)` as the ledger has it.
    fn recovered(target: String, start: DateTime<Utc>, end: DateTime<Utc>) -> Recovery {
        Recovery {
            pipeline: "demo".into(),
            target,
            start,
            end,
            interval_s: 300,
            points: 0,
            recovered_at: now(),
            run_id: "r".into(),
            history: true,
        }
    }

    pub(in crate::cli) fn owed(requests: usize, targets: usize, per_run: usize) -> HistoryOwed {
        HistoryOwed {
            requests,
            targets,
            per_run,
        }
    }

    #[test]
    fn the_history_line_says_requests_runs_at_the_cap_and_days_at_the_quota() {
        assert_eq!(
            owed(12, 2, 3).to_string(),
            "history: 12 ListQuality requests owed (2 targets); 4 runs at 3 a run; 1 day at 60 a day"
        );
        assert_eq!(
            owed(1, 1, 120).to_string(),
            "history: 1 ListQuality request owed (1 target); 1 run at 120 a run; 1 day at 60 a day"
        );
        assert_eq!(
            owed(130, 22, 120).to_string(),
            "history: 130 ListQuality requests owed (22 targets); 2 runs at 120 a run; 3 days at 60 a day"
        );
        assert_eq!(owed(0, 0, 3).to_string(), "history: loaded (nothing owed)");
        assert_eq!(
            owed(130, 22, 120).json(),
            serde_json::json!({
                "requests_owed": 130,
                "targets_owed": 22,
                "runs_at_cap": 2,
                "days_at_quota": 3,
            })
        );
        assert_eq!(
            owed(0, 0, 3).json(),
            serde_json::json!({
                "requests_owed": 0,
                "targets_owed": 0,
                "runs_at_cap": 0,
                "days_at_quota": 0,
            })
        );
    }

    #[test]
    fn targets_never_served_owe_thirty_days_from_the_horizon_and_loaded_ones_nothing() {
        let window = Window::at(now(), TimeDelta::minutes(5));
        let no_rooms = BTreeMap::new();
        // A new pipeline: each target's first answer starts at the horizon, and thirty
        // days before it take six requests.
        let p = pipeline(HISTORY, "");
        let first = vec![Some(window.horizon); p.targets.len()];
        let got = count(&p, &first, &no_rooms, &[], now());
        assert_eq!(got, owed(18, 3, 3));
        assert_eq!(
            got.to_string(),
            "history: 18 ListQuality requests owed (3 targets); 6 runs at 3 a run; 1 day at 60 a day"
        );
        // All of it on record: loaded.
        let since = at(30, 11, 0);
        let mut done = Vec::new();
        for t in p.targets.iter() {
            done.push(recovered(t.key(), since - TimeDelta::days(30), since));
        }
        let served = vec![Some(since); p.targets.len()];
        let got = count(&p, &served, &no_rooms, &done, now());
        assert_eq!(got.to_string(), "history: loaded (nothing owed)");
        // A room the first scan found owes the parts of its calls not on record, one
        // request each.
        let p = pipeline(
            HISTORY,
            "\n[[targets]]\napp_id = \"app-c\"\nindicators = [\"stall_rate\"]\nrooms = \"active\"\n",
        );
        let calls = vec![
            TimeRange {
                start: at(29, 1, 0),
                end: at(29, 1, 40),
            },
            TimeRange {
                start: at(29, 3, 0),
                end: at(29, 3, 5),
            },
        ];
        let rooms = BTreeMap::from([(
            "app-c".to_string(),
            ScanState {
                history: BTreeMap::from([("room-7".to_string(), calls)]),
                ..ScanState::default()
            },
        )]);
        let room = serde_json::json!(["app-c", "native", "room-7", null]).to_string();
        done.push(recovered(room, at(29, 3, 0), at(29, 3, 5)));
        let got = count(&p, &served, &rooms, &done, now());
        assert_eq!(
            got.to_string(),
            "history: 1 ListQuality request owed (1 target); 1 run at 3 a run; 1 day at 60 a day"
        );
    }

    /// The pipeline file `dir/pipelines/demo.toml`, its sink `dir/data`, with
    /// `recovery` as its `[recovery]` table.
    fn write_pipeline(dir: &Path, recovery: &str) -> PipelineArgs {
        let file = dir.join("pipelines/demo.toml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        let text = format!("name = \"demo\"\n[sink]\nurl = \"../data\"\n{recovery}\n{TARGETS}");
        std::fs::write(&file, text).unwrap();
        PipelineArgs {
            config: file,
            now: Some(now()),
        }
    }

    pub(in crate::cli) fn budget() -> BudgetArgs {
        BudgetArgs {
            schedule: Duration::from_secs(300),
            max_duration: None,
        }
    }

    /// A pipeline in `dir` whose `app-a` native target has loaded all but the young
    /// part of its history, whose `app-a` web target was never served, and whose
    /// `app-b` target is of a state from before `since`, its app's oldest slot file
    /// (history files do not count) from 10 November. Returns its file's arguments
    /// and the recovery ledger's records.
    pub(in crate::cli) async fn loading(
        dir: &Path,
        recovery: &str,
    ) -> (PipelineArgs, Vec<Recovery>) {
        let args = write_pipeline(dir, recovery);
        let p = crate::config::load(&args.config).unwrap();
        let sink = crate::run::open_sink_to_read(&p).unwrap();
        let mut state = State::new("demo", 300, "r", now());
        let cursor = |since| TargetState {
            cursor: Some(at(30, 11, 55)),
            incomplete: Default::default(),
            since,
        };
        state
            .targets
            .insert(key("app-a", "native"), cursor(Some(at(30, 11, 0))));
        state.targets.insert(key("app-b", "native"), cursor(None));
        state.set_discovery(BTreeMap::new(), None);
        StateStore::new(sink.store(), sink.root(), "demo", false)
            .save(&state)
            .await
            .unwrap();
        for slot in [
            Slot::containing(at(10, 0, 0), TimeDelta::minutes(5)),
            Slot::containing(at(12, 9, 0), TimeDelta::minutes(5)),
            Slot::day_of(at(5, 0, 0)),
        ] {
            let path = sink.slot_path("app-b", &slot);
            sink.store().put(&path, Vec::new().into()).await.unwrap();
        }
        let done = vec![recovered(
            key("app-a", "native"),
            at(0, 0, 0),
            at(30, 2, 30),
        )];
        (args, done)
    }

    /// One young part (`app-a` native), six requests from the horizon (`app-a` web) and
    /// three from 10 November (`app-b`).
    pub(in crate::cli) const OWED: &str =
        "history: 10 ListQuality requests owed (3 targets); 4 runs at 3 a run; 1 day at 60 a day";
}
