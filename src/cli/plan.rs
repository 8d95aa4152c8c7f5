//! `rtcq plan`: what the next run would ask for, and what is already lost.

use super::args::PlanArgs;
use super::history::{HistoryOwed, owed_history};
use super::{View, capacity_json, emit, fail, hm};
use crate::plan::Plan;
use crate::run::Exit;
use crate::state::RecoveryLedger;

/// `rtcq plan`.
pub async fn plan(args: &PlanArgs) -> Exit {
    let view = match View::open(&args.pipeline, &args.budget).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let plan = Plan::build(view.prior.clone(), view.window, |i| view.targets[i].max_lag);
    let figures = Figures::of(&view, &plan);
    let history = match history_of(&view).await {
        Ok(h) => h,
        Err(code) => return code,
    };
    if args.json {
        let mut v = json(&view, &plan, &figures);
        if let Some(h) = &history {
            v["history"] = h.json();
        }
        emit(&format!("{v:#}\n"));
    } else {
        emit(&text(&view, &plan, &figures, history.as_ref()));
    }
    Exit::Done
}

/// The history still owed (`None` without `[recovery] history`): the recovery ledger
/// is read only then.
async fn history_of(view: &View) -> Result<Option<HistoryOwed>, Exit> {
    if view.pipeline.recovery.history.is_none() {
        return Ok(None);
    }
    let ledger =
        RecoveryLedger::recoveries(view.sink.store(), view.sink.root(), &view.pipeline.name);
    let recovered = ledger.read().await.map_err(|e| fail(e, Exit::Failed))?;
    owed_history(view, &recovered).await
}

/// The plan's totals, said the same way in text and JSON.
struct Figures {
    rate: f64,
    /// Seconds the whole plan takes at the rate.
    seconds: f64,
    /// Requests one run sends at most.
    per_run: usize,
    slots: usize,
    /// Requests for targets never fetched.
    first: usize,
}

impl Figures {
    fn of(view: &View, plan: &Plan) -> Figures {
        let rate = view.pipeline.api.requests_per_second;
        Figures {
            rate,
            seconds: plan.requests.len() as f64 / rate,
            per_run: view.capacity.budget.requests_per_run() as usize,
            slots: plan
                .requests
                .iter()
                .map(|r| r.slots(view.window.slot_len).count)
                .sum(),
            first: plan.requests.iter().filter(|r| r.first).count(),
        }
    }
}

/// `plan --json`.
fn json(view: &View, plan: &Plan, f: &Figures) -> serde_json::Value {
    let (pipeline, window) = (&view.pipeline, &view.window);
    serde_json::json!({
        "pipeline": pipeline.name.as_str(),
        "now": view.now,
        "settled_end": window.settled_end,
        "horizon": window.horizon,
        "targets": view.targets.len(),
        "slots": f.slots,
        "requests": plan.requests.iter().map(|r| serde_json::json!({
            "target": view.targets[r.target].to_string(),
            "start": r.start, "end": r.end, "slots": r.slots(window.slot_len).count,
            "due": r.due, "first": r.first,
        })).collect::<Vec<_>>(),
        "never_fetched": f.first,
        "seconds_at_rate": f.seconds,
        "requests_per_second": f.rate,
        "requests_this_run": plan.requests.len().min(f.per_run),
        "capacity": capacity_json(&view.capacity),
        "fits_schedule": !view.capacity.over(),
        "lost": plan.lost.iter().map(|(t, l)| serde_json::json!({
            "target": view.targets[*t].to_string(), "start": l.start, "end": l.end,
        })).collect::<Vec<_>>(),
    })
}

/// `plan` for a person: the totals, each request, then what is lost.
fn text(view: &View, plan: &Plan, f: &Figures, history: Option<&HistoryOwed>) -> String {
    let (pipeline, window) = (&view.pipeline, &view.window);
    let mut out = format!(
        "pipeline {}: {} targets, now {}, settled end {}, horizon {}\n{}\n",
        pipeline.name,
        view.targets.len(),
        hm(view.now),
        hm(window.settled_end),
        hm(window.horizon),
        view.capacity,
    );
    if let Some(h) = history {
        out.push_str(&format!("{h}\n"));
    }
    out.push_str(&format!(
        "{} requests earliest due first ({} for targets never fetched), covering {} slots: {:.1} s at {} requests/second; a run sends the first {}\n",
        plan.requests.len(),
        f.first,
        f.slots,
        f.seconds,
        f.rate,
        plan.requests.len().min(f.per_run),
    ));
    for r in plan.requests.iter() {
        let due = if r.first {
            "first request".to_string()
        } else {
            format!("due {}", hm(r.due))
        };
        out.push_str(&format!(
            "  {}  [{}, {})  {due}\n",
            view.targets[r.target],
            hm(r.start),
            hm(r.end),
        ));
    }
    if plan.lost.is_empty() {
        out.push_str("nothing is beyond the horizon\n");
        return out;
    }
    out.push_str(&format!(
        "{} range(s) are already beyond the 60-minute horizon and will be recorded as lost:\n",
        plan.lost.len()
    ));
    for (t, l) in &plan.lost {
        out.push_str(&format!(
            "  {}  [{}, {})\n",
            view.targets[*t],
            hm(l.start),
            hm(l.end)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::history::tests::{HISTORY, OWED, budget, loading};

    fn plan_text(view: &View, history: Option<&HistoryOwed>) -> String {
        let plan = Plan::build(view.prior.clone(), view.window, |i| view.targets[i].max_lag);
        let figures = Figures::of(view, &plan);
        text(view, &plan, &figures, history)
    }

    #[tokio::test]
    async fn plan_prints_the_history_owed_after_the_capacity_and_nothing_without_history() {
        let dir = tempfile::tempdir().unwrap();
        let (args, done) = loading(dir.path(), HISTORY).await;
        let view = View::open(&args, &budget()).await.unwrap();
        // The ledger as the plan reads it (none here): the old part of `app-a` native
        // is owed again, five more requests.
        let history = history_of(&view).await.unwrap().unwrap();
        assert_eq!(
            history.to_string(),
            "history: 15 ListQuality requests owed (3 targets); 5 runs at 3 a run; 1 day at 60 a day"
        );
        let history = owed_history(&view, &done).await.unwrap().unwrap();
        let with = plan_text(&view, Some(&history));
        let lines: Vec<&str> = with.lines().collect();
        assert!(lines[1].starts_with("capacity "), "{with}");
        assert_eq!(lines[2], OWED);
        assert!(lines[3].contains(" requests earliest due first "), "{with}");
        assert_eq!(
            with.replacen(&format!("{OWED}\n"), "", 1),
            plan_text(&view, None)
        );
        let json = history.json();
        assert_eq!(json["requests_owed"], 10);
        assert_eq!(json["runs_at_cap"], 4);

        let dir = tempfile::tempdir().unwrap();
        let (args, _) = loading(dir.path(), "").await;
        let view = View::open(&args, &budget()).await.unwrap();
        assert_eq!(history_of(&view).await.unwrap(), None);
        assert!(!plan_text(&view, None).contains("history"));
    }
}
