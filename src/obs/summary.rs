//! What a run did, for people, schedulers and metrics, and the exit code that tells a
//! scheduler what happened.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::Clock;
use crate::domain::{LostRange, TimeRange};

/// Exit codes (documented in the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(into = "u8")]
pub enum Exit {
    /// Done: what was fetched is written, and what waits is safe until the next runs.
    Done = 0,
    /// Something else failed (storage, I/O).
    Failed = 1,
    /// Usage or config error.
    Usage = 2,
    /// Requests failed after retries, or something waiting would leave the API's
    /// horizon before the next runs reach it; progress is saved.
    Incomplete = 3,
    /// Another run holds the pipeline's lease; nothing was written.
    Busy = 4,
    /// The API rejected a request as not retryable.
    Rejected = 5,
    /// `--fail-on-gap` and a new gap was recorded.
    Gap = 6,
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e as u8
    }
}

/// Lag of one target: how far its cursor is behind the run's `now`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TargetLag {
    pub(crate) target: String,
    pub(crate) app_id: String,
    pub(crate) product_type: String,
    pub(crate) room_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) cursor: Option<DateTime<Utc>>,
    pub(crate) lag_seconds: Option<i64>,
    pub(crate) pending_slots: usize,
}

/// What room discovery found and did in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct DiscoveryReport {
    /// `ListRoomInfo` requests sent, retries included.
    pub(crate) room_info_requests: u64,
    /// Calls listed that the scans follow (new or already known).
    pub(crate) calls_found: u64,
    /// Calls dropped as unusable: no room id, unreadable times, ended before begun.
    pub(crate) calls_dropped: u64,
    /// Discovered rooms that are targets of this run.
    pub(crate) rooms_active: usize,
    /// Discovered rooms retired by this run: their last call ended and was fetched.
    pub(crate) rooms_retired: usize,
    /// Discovered room targets left with owed slots for a later run (the budget did not
    /// reach them, or their requests failed); the `lag` list says which.
    pub(crate) room_targets_waiting: usize,
}

/// What recovery from the offline API did in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RecoveryReport {
    /// `ListQuality` requests sent, retries included.
    pub(crate) recovery_requests: u64,
    /// `ListQuality` answers that said we were too fast.
    pub(crate) recovery_throttled: u64,
    /// Gap ranges recovered and recorded (a gap over 7 days takes one per 7 days).
    pub(crate) gaps_recovered: usize,
    /// 5-minute points written.
    pub(crate) points_recovered: u64,
    /// `ListQuality` requests that failed for good: their ranges stay owed.
    pub(crate) recovery_failed: usize,
    /// Gap ranges the offline API has that are still not recovered (the cap, the
    /// deadline or a failure left them for a later run).
    pub(crate) gaps_owed: usize,
    /// History (`[recovery] history`): `ListQuality` requests sent for it, included in
    /// `recovery_requests` (retries not counted).
    pub(crate) history_requests: usize,
    /// History ranges loaded and recorded.
    pub(crate) history_recovered: usize,
    /// History 5-minute points written (not in `points_recovered`).
    pub(crate) history_points: u64,
    /// History requests still owed after this run, due now or later.
    pub(crate) history_owed: usize,
}

/// What a backfill could and could not do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct BackfillReport {
    pub(crate) from: DateTime<Utc>,
    pub(crate) to: DateTime<Utc>,
    /// The part beyond the API's 60-minute horizon: not fetched again.
    pub(crate) unreachable: Option<TimeRange>,
    /// The part not settled yet: a later run fetches it.
    pub(crate) unsettled: Option<TimeRange>,
}

impl BackfillReport {
    pub(crate) fn new(b: &crate::plan::Backfill, w: &crate::plan::Window) -> Self {
        BackfillReport {
            from: b.from,
            to: b.to,
            unreachable: b.unreachable(w),
            unsettled: b.unsettled(w),
        }
    }
}

/// The run summary (`--summary`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub(crate) pipeline: String,
    pub(crate) run_id: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    /// The run's `now` (the real clock, or `--now`).
    pub(crate) now: DateTime<Utc>,
    pub(crate) targets: usize,
    /// The schedule the run was told it is on (`--schedule`), in seconds.
    pub(crate) schedule_seconds: u64,
    /// Whether the targets are within the capacity (`!over_capacity`).
    pub(crate) fits_schedule: bool,
    /// How many targets the rate, schedule and run time serve without loss.
    pub(crate) capacity: u64,
    /// More targets than the capacity: data will be lost every hour.
    pub(crate) over_capacity: bool,
    pub(crate) requests_planned: usize,
    pub(crate) requests_sent: u64,
    pub(crate) requests_retried: u64,
    pub(crate) requests_throttled: u64,
    pub(crate) requests_failed: u64,
    /// Targets whose request was answered (and written).
    pub(crate) targets_served: usize,
    /// Targets whose request was not sent before the run stopped: they wait for the
    /// next run.
    pub(crate) targets_deferred: usize,
    /// Targets never fetched yet (they owe nothing until their first request).
    pub(crate) targets_never_fetched: usize,
    /// Targets whose owed data leaves the horizon before the next runs can reach it.
    pub(crate) targets_at_risk: usize,
    /// The lag of the most-behind target: how old its oldest owed data is.
    pub(crate) max_lag_seconds: Option<i64>,
    pub(crate) rows_written: u64,
    pub(crate) files_written: u64,
    pub(crate) slots_pending: usize,
    pub(crate) points_dropped: Dropped,
    pub(crate) gaps_recorded: usize,
    /// Room discovery, for pipelines with `rooms = "active"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) discovery: Option<DiscoveryReport>,
    /// Recovery from the offline API, unless `[recovery] enabled = false`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) recovery: Option<RecoveryReport>,
    pub(crate) lost: Vec<LostRange>,
    pub(crate) lag: Vec<TargetLag>,
    pub(crate) deadline_reached: bool,
    pub(crate) errors: Vec<String>,
    pub(crate) exit_code: Exit,
    /// Set by `rtcq backfill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backfill: Option<BackfillReport>,
    /// How far the API's clock (its answers' `Date`) is ahead of the job's, in seconds
    /// (negative: behind); `None` when no answer carried a `Date`.
    pub(crate) api_clock_offset_seconds: Option<f64>,
}

impl Summary {
    /// The summary of a run that stopped before it could fetch: what is known of it and
    /// zero counts (the run's report adds the error and the exit code).
    pub(crate) fn stopped(pipeline: &str, run_id: &str, clock: &Clock, targets: usize) -> Summary {
        Summary {
            pipeline: pipeline.to_string(),
            run_id: run_id.to_string(),
            started_at: clock.started(),
            finished_at: clock.wall(),
            now: clock.now(),
            targets,
            schedule_seconds: 0,
            fits_schedule: true,
            capacity: 0,
            over_capacity: false,
            requests_planned: 0,
            requests_sent: 0,
            requests_retried: 0,
            requests_throttled: 0,
            requests_failed: 0,
            targets_served: 0,
            targets_deferred: 0,
            targets_never_fetched: 0,
            targets_at_risk: 0,
            max_lag_seconds: None,
            rows_written: 0,
            files_written: 0,
            slots_pending: 0,
            points_dropped: Dropped::default(),
            gaps_recorded: 0,
            discovery: None,
            recovery: None,
            lost: Vec::new(),
            lag: Vec::new(),
            deadline_reached: false,
            errors: Vec::new(),
            exit_code: Exit::Done,
            backfill: None,
            api_clock_offset_seconds: None,
        }
    }

    /// How long the run took, in seconds.
    pub(crate) fn duration_seconds(&self) -> f64 {
        (self.finished_at - self.started_at)
            .to_std()
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// Points dropped from answers, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// Points timed outside the window the request asked for.
    pub outside_window: u64,
    /// Points not on the answer's grid (30 s, or 5 minutes for recovery), including
    /// sub-second or leap-second time stamps.
    pub off_grid: u64,
    /// Points whose `TimeStamp` is missing, unreadable or out of range.
    pub bad_timestamp: u64,
    /// Points whose value is missing, not a number, or not finite.
    pub bad_value: u64,
    /// Points of a series with an empty `Name`, which no row could be filed under.
    pub unnamed_series: u64,
    /// Points of a per-user request whose answer did not apply that user.
    pub user_not_applied: u64,
    /// A point repeated in one answer (same series, stream and time): kept once.
    pub duplicate: u64,
}

impl Dropped {
    /// All dropped points, whatever the reason.
    pub fn total(&self) -> u64 {
        self.outside_window
            + self.off_grid
            + self.bad_timestamp
            + self.bad_value
            + self.unnamed_series
            + self.user_not_applied
            + self.duplicate
    }

    pub(crate) fn add(&mut self, o: &Dropped) {
        self.outside_window += o.outside_window;
        self.off_grid += o.off_grid;
        self.bad_timestamp += o.bad_timestamp;
        self.bad_value += o.bad_value;
        self.unnamed_series += o.unnamed_series;
        self.user_not_applied += o.user_not_applied;
        self.duplicate += o.duplicate;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// `HH:MM:SS` on the day the tests run on.
    fn at(hms: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2026-11-25T{hms}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    /// A summary with one target behind, one lost range and a backfill.
    fn summary() -> Summary {
        let clock = crate::clock::Clock::at(Some(at("12:00:10")));
        let mut s = Summary::stopped("demo", "run-1", &clock, 1);
        s.errors.push("boom".into());
        s.exit_code = Exit::Incomplete;
        // The clock's wall readings are the real time: fixed here to compare them.
        s.started_at = at("12:00:10");
        s.now = at("12:00:10");
        s.finished_at = at("12:00:12");
        s.schedule_seconds = 300;
        s.capacity = 6820;
        s.targets_at_risk = 1;
        s.max_lag_seconds = Some(1810);
        s.points_dropped.off_grid = 2;
        s.lost = vec![LostRange {
            target: r#"["app-a","web",null,null]"#.into(),
            start: at("10:50:00"),
            end: at("11:01:00"),
        }];
        s.lag = vec![TargetLag {
            target: "app=app-a product=web".into(),
            app_id: "app-a".into(),
            product_type: "web".into(),
            room_id: None,
            user_id: None,
            cursor: Some(at("11:30:00")),
            lag_seconds: Some(1810),
            pending_slots: 6,
        }];
        s
    }

    fn keys(v: &Value) -> Vec<&str> {
        let mut k: Vec<&str> = v
            .as_object()
            .expect("an object")
            .keys()
            .map(String::as_str)
            .collect();
        k.sort_unstable();
        k
    }

    #[test]
    fn the_summary_serializes_the_field_names_the_docs_promise() {
        let v = serde_json::to_value(summary()).unwrap();

        // docs/operations.md, "The run summary", in its order; README: `backfill`
        // (only for `rtcq backfill`).
        let mut documented = vec![
            "run_id",
            "started_at",
            "finished_at",
            "targets",
            "schedule_seconds",
            "capacity",
            "over_capacity",
            "fits_schedule",
            "requests_planned",
            "requests_sent",
            "requests_retried",
            "requests_throttled",
            "requests_failed",
            "targets_served",
            "targets_deferred",
            "targets_never_fetched",
            "targets_at_risk",
            "max_lag_seconds",
            "rows_written",
            "files_written",
            "slots_pending",
            "points_dropped",
            "gaps_recorded",
            "lost",
            "lag",
            "api_clock_offset_seconds",
            "errors",
            "exit_code",
            // Not in the prose, read by the tests and scripts.
            "pipeline",
            "now",
            "deadline_reached",
        ];
        documented.sort_unstable();
        assert_eq!(keys(&v), documented);
        // The names the docs spell out, with their values.
        assert_eq!(v["capacity"], json!(6820));
        assert_eq!(v["over_capacity"], json!(false));
        assert_eq!(v["fits_schedule"], json!(true));
        assert_eq!(v["targets_at_risk"], json!(1));
        assert_eq!(v["max_lag_seconds"], json!(1810));
        assert_eq!(v["exit_code"], json!(3));
        assert_eq!(v["run_id"], json!("run-1"));
        assert_eq!(v["started_at"], json!("2026-11-25T12:00:10Z"));
        assert_eq!(v["finished_at"], json!("2026-11-25T12:00:12Z"));
        assert_eq!(v["schedule_seconds"], json!(300));
        assert_eq!(v["errors"], json!(["boom"]));
        // "points dropped and why".
        assert_eq!(
            v["points_dropped"],
            json!({
                "outside_window": 0,
                "off_grid": 2,
                "bad_timestamp": 0,
                "bad_value": 0,
                "unnamed_series": 0,
                "user_not_applied": 0,
                "duplicate": 0,
            })
        );
        // "the lost ranges".
        assert_eq!(
            v["lost"],
            json!([{
                "target": r#"["app-a","web",null,null]"#,
                "start": "2026-11-25T10:50:00Z",
                "end": "2026-11-25T11:01:00Z",
            }])
        );
        // "the lag of every target (cursor, seconds behind, pending slots)", with the
        // labels of `rtcq_target_lag_seconds`.
        assert_eq!(
            v["lag"],
            json!([{
                "target": "app=app-a product=web",
                "app_id": "app-a",
                "product_type": "web",
                "room_id": null,
                "user_id": null,
                "cursor": "2026-11-25T11:30:00Z",
                "lag_seconds": 1810,
                "pending_slots": 6,
            }])
        );
        let s = summary();
        assert_eq!(s.duration_seconds(), 2.0);
    }

    #[test]
    fn the_backfill_field_is_only_there_for_a_backfill() {
        let mut s = summary();
        assert!(serde_json::to_value(&s).unwrap().get("backfill").is_none());

        s.backfill = Some(BackfillReport {
            from: at("10:00:00"),
            to: at("11:30:00"),
            unreachable: Some(TimeRange {
                start: at("10:00:00"),
                end: at("11:01:00"),
            }),
            unsettled: None,
        });
        let v = serde_json::to_value(&s).unwrap();

        assert_eq!(
            v["backfill"],
            json!({
                "from": "2026-11-25T10:00:00Z",
                "to": "2026-11-25T11:30:00Z",
                "unreachable": {"start": "2026-11-25T10:00:00Z", "end": "2026-11-25T11:01:00Z"},
                "unsettled": null,
            })
        );
    }

    #[test]
    fn exit_codes_serialize_as_the_numbers_of_the_readme_table() {
        let codes = [
            (Exit::Done, 0),
            (Exit::Failed, 1),
            (Exit::Usage, 2),
            (Exit::Incomplete, 3),
            (Exit::Busy, 4),
            (Exit::Rejected, 5),
            (Exit::Gap, 6),
        ];
        for (exit, code) in codes {
            assert_eq!(serde_json::to_value(exit).unwrap(), json!(code), "{exit:?}");
            assert_eq!(u8::from(exit), code);
        }
    }
}
