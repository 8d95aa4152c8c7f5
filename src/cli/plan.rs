//! `rtcq plan`: what the next run would ask for, and what is already lost.

use super::args::PlanArgs;
use super::{View, capacity_json, emit, hm};
use crate::plan::Plan;
use crate::run::Exit;

/// `rtcq plan`.
pub async fn plan(args: &PlanArgs) -> Exit {
    let view = match View::open(&args.pipeline, &args.budget).await {
        Ok(v) => v,
        Err(code) => return code,
    };
    let plan = Plan::build(view.prior.clone(), view.window, |i| view.targets[i].max_lag);
    let figures = Figures::of(&view, &plan);
    if args.json {
        emit(&format!("{:#}\n", json(&view, &plan, &figures)));
    } else {
        emit(&text(&view, &plan, &figures));
    }
    Exit::Done
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
fn text(view: &View, plan: &Plan, f: &Figures) -> String {
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
