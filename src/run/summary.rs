//! What a run did, for people, schedulers and metrics, and the exit code that tells a
//! scheduler what happened.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::rows::Dropped;

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
pub struct TargetLag {
    pub target: String,
    pub app_id: String,
    pub product_type: String,
    pub room_id: Option<String>,
    pub user_id: Option<String>,
    pub cursor: Option<DateTime<Utc>>,
    pub lag_seconds: Option<i64>,
    pub pending_slots: usize,
}

/// A lost range reported by this run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostRange {
    pub target: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What a backfill could and could not do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackfillReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The part beyond the API's 60-minute horizon: not fetched again.
    pub unreachable: Option<Range>,
    /// The part not settled yet: a later run fetches it.
    pub unsettled: Option<Range>,
}

/// A plain time range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Range {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl BackfillReport {
    pub fn new(b: &crate::plan::Backfill, w: &crate::plan::Window) -> Self {
        let range = |l: crate::plan::Lost| Range {
            start: l.start,
            end: l.end,
        };
        BackfillReport {
            from: b.from,
            to: b.to,
            unreachable: b.unreachable(w).map(range),
            unsettled: b.unsettled(w).map(range),
        }
    }
}

/// The run summary (`--summary`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub pipeline: String,
    pub run_id: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The run's `now` (the real clock, or `--now`).
    pub now: DateTime<Utc>,
    pub targets: usize,
    /// The schedule the run was told it is on (`--schedule`), in seconds.
    pub schedule_seconds: u64,
    /// Whether the targets are within the capacity (`!over_capacity`).
    pub fits_schedule: bool,
    /// How many targets the rate, schedule and run time serve without loss.
    pub capacity: u64,
    /// More targets than the capacity: data will be lost every hour.
    pub over_capacity: bool,
    pub requests_planned: usize,
    pub requests_sent: u64,
    pub requests_retried: u64,
    pub requests_throttled: u64,
    pub requests_failed: u64,
    /// Targets whose request was answered (and written).
    pub targets_served: usize,
    /// Targets whose request was not sent before the run stopped: they wait for the
    /// next run.
    pub targets_deferred: usize,
    /// Targets never fetched yet (they owe nothing until their first request).
    pub targets_never_fetched: usize,
    /// Targets whose owed data leaves the horizon before the next runs can reach it.
    pub targets_at_risk: usize,
    /// The lag of the most-behind target: how old its oldest owed data is.
    pub max_lag_seconds: Option<i64>,
    pub rows_written: u64,
    pub files_written: u64,
    pub slots_pending: usize,
    pub points_dropped: Dropped,
    pub gaps_recorded: usize,
    pub lost: Vec<LostRange>,
    pub lag: Vec<TargetLag>,
    pub deadline_reached: bool,
    pub errors: Vec<String>,
    pub exit_code: Exit,
    /// Set by `rtcq backfill`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<BackfillReport>,
}

impl Summary {
    /// The summary of a run that stopped before it could fetch: what is known of it,
    /// zero counts, the error and the exit code.
    pub fn stopped(
        pipeline: &str,
        run_id: &str,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
        targets: usize,
        error: String,
        exit_code: Exit,
    ) -> Summary {
        Summary {
            pipeline: pipeline.to_string(),
            run_id: run_id.to_string(),
            started_at,
            finished_at: Utc::now(),
            now,
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
            lost: Vec::new(),
            lag: Vec::new(),
            deadline_reached: false,
            errors: vec![error],
            exit_code,
            backfill: None,
        }
    }

    /// How long the run took, in seconds.
    pub fn duration_seconds(&self) -> f64 {
        (self.finished_at - self.started_at)
            .to_std()
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}
