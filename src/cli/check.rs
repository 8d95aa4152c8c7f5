//! `rtcq check`: the step between writing a pipeline and scheduling it. Proves each part
//! a run depends on with the smallest action that can (one probe object, one lease, at
//! most one request per API action, never retried), and says for each what to fix. No
//! data is written and no cursor moves.

use std::sync::Arc;

use chrono::{DateTime, DurationRound, SecondsFormat, TimeDelta, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::Serialize;

use super::args::CheckArgs;
use super::emit;
use crate::api::offline::{FIVE_MINUTES, OfflineRequest};
use crate::api::room_info::RoomInfoQuery;
use crate::api::{ApiError, Client};
use crate::clock::{ApiClock, Clock, OFFSET_WARN};
use crate::config::Pipeline;
use crate::domain::Target;
use crate::plan;
use crate::recovery::DELAY_MARGIN;
use crate::run::fetch::request_body;
use crate::run::{Exit, open_sink};
use crate::sink::Sink;
use crate::state::{Lease, LeaseOptions};
use volc_rtc::Credentials;
use volc_rtc::limits::OFFLINE_DELAY;

/// One step's outcome.
#[derive(Debug, Serialize)]
struct Step {
    step: &'static str,
    status: Status,
    /// What was proven, or what failed.
    detail: String,
    /// What to do about a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
    /// The exit code this failure stands for.
    #[serde(skip)]
    exit: Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Fail,
    Skip,
}

impl Step {
    fn ok(step: &'static str, detail: impl Into<String>) -> Step {
        Step {
            step,
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
            exit: Exit::Done,
        }
    }

    fn skip(step: &'static str, detail: impl Into<String>) -> Step {
        Step {
            status: Status::Skip,
            ..Step::ok(step, detail)
        }
    }

    fn fail(
        step: &'static str,
        detail: impl Into<String>,
        fix: impl Into<String>,
        exit: Exit,
    ) -> Step {
        Step {
            step,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
            exit,
        }
    }
}

/// `rtcq check`.
pub async fn check(args: &CheckArgs) -> Exit {
    let steps = steps(args).await;
    let exit = steps
        .iter()
        .find(|s| s.status == Status::Fail)
        .map_or(Exit::Done, |s| s.exit);
    if args.json {
        let v = serde_json::json!({
            "config": args.config.display().to_string(),
            "steps": steps,
            "exit_code": exit as u8,
        });
        emit(&format!("{v:#}\n"));
    } else {
        emit(&text(&steps));
    }
    exit
}

/// Every step, in order; a step that needs an earlier one that failed is skipped.
async fn steps(args: &CheckArgs) -> Vec<Step> {
    let mut steps = Vec::new();
    let pipeline = match super::read_pipeline(&args.config, args.endpoint.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            steps.push(Step::fail(
                "config",
                e.to_string(),
                "correct the pipeline file (or --endpoint) as the message says; `rtcq plan` reads it the same way",
                Exit::Usage,
            ));
            return steps;
        }
    };
    let mut described = describe(&pipeline, &args.config);
    if super::warn_rate(&pipeline) {
        described.push_str(&format!(
            " (warning: api.requests_per_second = {} is above the documented {} a second)",
            pipeline.api.requests_per_second,
            volc_rtc::limits::REQUESTS_PER_SECOND
        ));
    }
    steps.push(Step::ok("config", described));
    let run_id = crate::run::new_run_id(Utc::now());
    let left = Leftovers::before(&pipeline);
    match store(&pipeline, &run_id).await {
        Ok(sink) => {
            steps.push(Step::ok("store", sink.1));
            steps.push(lease(&pipeline, &sink.0, &run_id).await);
            left.clean(&sink.0, &pipeline);
        }
        Err(step) => {
            steps.push(step);
            steps.push(Step::skip("lease", "the store failed"));
        }
    }
    steps.extend(api(&pipeline, args).await);
    steps
}

/// What of a local sink existed before the check, so that what the check made (the
/// directory, `_state/`, the lease file a local lease keeps) is removed after it.
struct Leftovers {
    dir: Option<std::path::PathBuf>,
    existed: [bool; 3],
}

impl Leftovers {
    fn before(pipeline: &Pipeline) -> Leftovers {
        let url = pipeline.sink.url.trim();
        let dir = (!url.contains("://") || url.starts_with("file://"))
            .then(|| std::path::PathBuf::from(url.trim_start_matches("file://")));
        let existed = match &dir {
            Some(d) => {
                let state = d.join("_state");
                [
                    d.exists(),
                    state.exists(),
                    state
                        .join(format!("{}.lease", pipeline.name.as_str()))
                        .exists(),
                ]
            }
            None => [true; 3],
        };
        Leftovers { dir, existed }
    }

    /// Removes what the check created, innermost first; a directory only when empty.
    fn clean(&self, sink: &Sink, pipeline: &Pipeline) {
        let (Some(_), Some(dir)) = (&self.dir, sink.sink_root().local_dir()) else {
            return;
        };
        let state = dir.join("_state");
        if !self.existed[2] {
            let _ = std::fs::remove_file(state.join(format!("{}.lease", pipeline.name.as_str())));
        }
        if !self.existed[1] {
            let _ = std::fs::remove_dir(&state);
        }
        if !self.existed[0] {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The config step's line: what the file asks for.
fn describe(pipeline: &Pipeline, file: &std::path::Path) -> String {
    format!(
        "{}: pipeline {}, {} listed target(s), {} room discovery entr{}, recovery {}",
        file.display(),
        pipeline.name.as_str(),
        pipeline.targets.len(),
        pipeline.scans.len(),
        if pipeline.scans.len() == 1 {
            "y"
        } else {
            "ies"
        },
        if pipeline.recovery.enabled {
            "on"
        } else {
            "off"
        },
    )
}

/// Opens the sink, checks its credentials, and proves the writes a run makes under
/// `_state/` with one probe object: create, read back, a second create refused, a
/// conditional replace (S3) and a delete.
async fn store(pipeline: &Pipeline, run_id: &str) -> Result<(Sink, String), Step> {
    let url = &pipeline.sink.url;
    let sink = open_sink(pipeline).map_err(|e| {
        let exit = crate::run::exit_of_sink(&e);
        Step::fail("store", e.to_string(), "correct [sink] url", exit)
    })?;
    sink.sink_root().check_credentials().await.map_err(|e| {
        Step::fail(
            "store",
            e.to_string(),
            "give the job S3 credentials from one of the sources named",
            Exit::Usage,
        )
    })?;
    let key = sink
        .root()
        .clone()
        .join("_state")
        .join(format!("check-{}-{run_id}.probe", pipeline.name.as_str()).as_str());
    let shown = sink.sink_root().locate(key.as_ref());
    let store = sink.store();
    let remote = !sink.sink_root().is_local();
    match probe(&*store, &key, remote).await {
        Ok(()) => {
            let replaced = if remote {
                "replaced it conditionally, "
            } else {
                ""
            };
            Ok((
                sink,
                format!(
                    "{url}: created {shown}, read it back, was refused a second create, {replaced}deleted it"
                ),
            ))
        }
        Err((what, e)) => {
            // Whatever the probe got to, it leaves nothing behind.
            let _ = store.delete(&key).await;
            Err(Step::fail(
                "store",
                format!(
                    "{url}: cannot {what} {shown}: {}",
                    sink.sink_root().explain(e)
                ),
                "check [sink] url and endpoint, and the permissions under the prefix (read, write, delete); on S3 the store must honour If-None-Match and If-Match",
                Exit::Failed,
            ))
        }
    }
}

/// The probe's writes; on failure, which one and why.
async fn probe(
    store: &dyn ObjectStore,
    key: &Path,
    remote: bool,
) -> Result<(), (&'static str, String)> {
    let body = PutPayload::from_static(b"rtcq check probe\n");
    let create = PutOptions::from(PutMode::Create);
    let put = store
        .put_opts(key, body.clone(), create.clone())
        .await
        .map_err(|e| ("create", e.to_string()))?;
    let read = store
        .get(key)
        .await
        .map_err(|e| ("read back", e.to_string()))?
        .bytes()
        .await
        .map_err(|e| ("read back", e.to_string()))?;
    if read.as_ref() != b"rtcq check probe\n" {
        return Err((
            "read back",
            "the object read back differs from what was written".into(),
        ));
    }
    match store.put_opts(key, body.clone(), create).await {
        Err(object_store::Error::AlreadyExists { .. }) => {}
        Err(e) => return Err(("create again (it must be refused)", e.to_string())),
        Ok(_) => {
            return Err((
                "create again",
                "a second create-if-absent succeeded: the store ignores If-None-Match, so two runs could both take the lease".into(),
            ));
        }
    }
    if remote {
        let version = UpdateVersion {
            e_tag: put.e_tag,
            version: put.version,
        };
        store
            .put_opts(key, body, PutOptions::from(PutMode::Update(version)))
            .await
            .map_err(|e| ("replace conditionally", e.to_string()))?;
    }
    store
        .delete(key)
        .await
        .map_err(|e| ("delete", e.to_string()))
}

/// Takes the pipeline's lease and gives it back.
async fn lease(pipeline: &Pipeline, sink: &Sink, run_id: &str) -> Step {
    let clock = Clock::at(None);
    match Lease::acquire_with(
        sink,
        pipeline.name.as_str(),
        run_id,
        LeaseOptions::default(),
        clock,
    )
    .await
    {
        Ok(lease) => {
            lease.release().await;
            Step::ok(
                "lease",
                format!(
                    "took and released the lease of pipeline {}",
                    pipeline.name.as_str()
                ),
            )
        }
        Err(e @ crate::state::LeaseError::Busy { .. }) => Step::fail(
            "lease",
            e.to_string(),
            "a run is going on now: check again when it ends (a lease left by a killed run expires by itself)",
            Exit::Busy,
        ),
        Err(e) => Step::fail(
            "lease",
            e.to_string(),
            "check the sink's permissions",
            Exit::Failed,
        ),
    }
}

/// The API steps: credentials, clock, then one request per action the pipeline uses.
async fn api(pipeline: &Pipeline, args: &CheckArgs) -> Vec<Step> {
    let mut steps = Vec::new();
    let creds = match Credentials::from_env() {
        Ok(c) => c,
        Err(e) => {
            steps.push(Step::fail(
                "api credentials",
                e.to_string(),
                "export VOLC_ACCESSKEY and VOLC_SECRETKEY (and VOLC_SESSION_TOKEN for temporary keys)",
                Exit::Usage,
            ));
            return steps;
        }
    };
    let endpoint = &pipeline.api.endpoint;
    let api = Arc::new(ApiClock::new(Clock::at(None)));
    let client = match Client::new(endpoint, &pipeline.api.region, creds, args.timeouts()) {
        Ok(c) => c.with_api_clock(api.clone()),
        Err(e) => {
            steps.push(Step::fail(
                "api clock",
                e.to_string(),
                "correct [api] endpoint",
                Exit::Usage,
            ));
            return steps;
        }
    };
    if let Err(e) = client.read_clock().await {
        let (fix, exit) = classify(&e, "");
        steps.push(Step::fail(
            "api clock",
            format!("{endpoint}: {e}"),
            fix,
            exit,
        ));
        return steps;
    }
    steps.push(clock_step(endpoint, &api));
    let api_now = api.now();
    let Some(target) = first_target(pipeline) else {
        steps.push(Step::skip(
            "ListRealTimeQuality",
            "the pipeline has no target",
        ));
        return steps;
    };
    steps.push(real_time(&client, &target, api_now).await);
    match pipeline.scans.first() {
        Some(scan) => steps.push(room_info(&client, &scan.app_id, api_now).await),
        None => steps.push(Step::skip("ListRoomInfo", "no rooms = \"active\" entry")),
    }
    if pipeline.recovery.enabled {
        steps.push(offline(&client, &target, api_now).await);
    } else {
        steps.push(Step::skip("ListQuality", "[recovery] enabled = false"));
    }
    steps
}

/// The clock step: the offset, and whether it matters.
fn clock_step(endpoint: &str, api: &ApiClock) -> Step {
    if !api.was_measured() {
        return Step::ok(
            "api clock",
            format!("{endpoint} answered without a Date: runs plan on this host's clock"),
        );
    }
    let offset = api.measured();
    let seconds = offset.num_milliseconds() as f64 / 1000.0;
    let advice = if offset.abs() > OFFSET_WARN {
        " (runs follow the API's clock, but fix this host's time sync)"
    } else {
        ""
    };
    Step::ok(
        "api clock",
        format!(
            "{endpoint} answered; its clock is {:.1} s {} this host's{advice}",
            seconds.abs(),
            if seconds >= 0.0 { "ahead of" } else { "behind" }
        ),
    )
}

/// The target the API steps ask for: the first listed one, else a discovery entry's
/// app as a whole.
fn first_target(pipeline: &Pipeline) -> Option<Target> {
    if let Some(t) = pipeline.targets.first() {
        return Some(t.clone());
    }
    let scan = pipeline.scans.first()?;
    Some(Target {
        app_id: scan.app_id.clone(),
        product_type: *scan.product_types.first()?,
        room_id: None,
        user_id: None,
        indicators: scan.indicators.clone(),
        max_lag: None,
    })
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One `ListRealTimeQuality` request for `target` over the last settled minute.
async fn real_time(client: &Client, target: &Target, api_now: DateTime<Utc>) -> Step {
    const STEP: &str = "ListRealTimeQuality";
    let end = plan::settled_at(api_now);
    let start = end - TimeDelta::minutes(1);
    let body = request_body(target, start, end);
    match client.list_real_time_quality(&body).await {
        Ok(r) => {
            let points: usize = r.indicators.iter().map(|s| s.data.len()).sum();
            Step::ok(
                STEP,
                format!(
                    "{target} over {} to {}: {points} point(s)",
                    rfc(start),
                    rfc(end)
                ),
            )
        }
        Err(e) => {
            let (fix, exit) = classify(&e, STEP);
            Step::fail(STEP, format!("{target}: {e}"), fix, exit)
        }
    }
}

/// One page of `ListRoomInfo` for `app_id` over the last 10 minutes.
async fn room_info(client: &Client, app_id: &str, api_now: DateTime<Utc>) -> Step {
    const STEP: &str = "ListRoomInfo";
    let query = RoomInfoQuery {
        app_id: app_id.to_string(),
        start_time: rfc(api_now - TimeDelta::minutes(10)),
        end_time: rfc(api_now),
        page_num: 1,
        page_size: 1,
    };
    match client.list_room_info(&query).await {
        Ok(page) => Step::ok(
            STEP,
            format!(
                "app {app_id}: {} call(s) created in the last 10 minutes",
                page.total
            ),
        ),
        Err(e) => {
            let (fix, exit) = classify(&e, STEP);
            Step::fail(STEP, format!("app {app_id}: {e}"), fix, exit)
        }
    }
}

/// One `ListQuality` request for `target` over the newest 5 minutes the offline API
/// has settled.
async fn offline(client: &Client, target: &Target, api_now: DateTime<Utc>) -> Step {
    const STEP: &str = "ListQuality";
    let five = TimeDelta::minutes(5);
    let ready = api_now - OFFLINE_DELAY - DELAY_MARGIN;
    let start = ready.duration_trunc(five).unwrap_or(ready) - five;
    let body = OfflineRequest {
        base: request_body(target, start, start + five),
        aggregate_granularity: FIVE_MINUTES,
    };
    match client
        .list_quality_with(&body, |r| r.indicators.len())
        .await
    {
        Ok(series) => Step::ok(
            STEP,
            format!(
                "{target} over {} to {}: {series} series",
                rfc(start),
                rfc(start + five)
            ),
        ),
        Err(e) => {
            let (fix, exit) = classify(&e, STEP);
            let fix = if matches!(exit, Exit::Rejected)
                && e.code().is_some_and(|c| c.starts_with("AccessDenied"))
            {
                format!("{fix}, or set [recovery] enabled = false to run without recovery")
            } else {
                fix
            };
            Step::fail(STEP, format!("{target}: {e}"), fix, exit)
        }
    }
}

/// What to do about an API error, and the exit class it falls in: 2 for credentials or
/// the clock, 5 for a refusal (permission, parameters), 3 for a failure that may pass.
fn classify(e: &ApiError, action: &str) -> (String, Exit) {
    if let ApiError::Unreachable { .. } = e {
        return (
            "check [api] endpoint (or --endpoint) and that this host can reach it".into(),
            Exit::Incomplete,
        );
    }
    match e.code() {
        Some("SignatureDoesNotMatch" | "InvalidAccessKey" | "MissingRequestInfo") => (
            "check VOLC_ACCESSKEY and VOLC_SECRETKEY (exactly as issued, no spaces) and VOLC_SESSION_TOKEN for temporary keys".into(),
            Exit::Usage,
        ),
        Some("InvalidTimestamp") => (
            "this host's clock is off by more than 15 minutes: enable time sync (NTP)".into(),
            Exit::Usage,
        ),
        Some(c) if c.starts_with("AccessDenied") => (
            format!("grant rtc:{action} to the access key's user or role (docs/operations.md, Permissions)"),
            Exit::Rejected,
        ),
        Some(c) if c.contains("AppId") => (
            "check the app_id in the pipeline file: the account has no such app".into(),
            Exit::Rejected,
        ),
        _ if e.is_retryable() => (
            "the API failed for now: check again; if it persists, see the API's status".into(),
            Exit::Incomplete,
        ),
        _ => (
            "the API refused the request: see the message".into(),
            Exit::Rejected,
        ),
    }
}

/// One line per step: a mark, the step, what it proved or why it failed, and the fix.
fn text(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        let mark = match s.status {
            Status::Ok => "ok  ",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        };
        out.push_str(&format!("{mark}  {:<19} {}\n", s.step, s.detail));
        if let Some(fix) = &s.fix {
            out.push_str(&format!("      {:<19} fix: {fix}\n", ""));
        }
    }
    out
}
