//! The tally: what a run did, counted as it goes, which becomes its summary and the
//! verdict its exit code is decided from.

use crate::domain::LostRange;
use crate::obs::summary::Dropped;

/// What the recovery stage did, for the summary.
#[derive(Debug, Default)]
pub(super) struct RecoveryTally {
    /// Ranges owed when the stage began.
    pub(super) due: usize,
    /// Ranges recorded as recovered.
    pub(super) recovered: usize,
    /// Points written by recovery.
    pub(super) points: u64,
    /// History requests owed when the stage began (`[recovery] history`).
    pub(super) history_due: usize,
    /// History requests still owed in all, due or not, when the stage began.
    pub(super) history_left: usize,
    /// History requests sent (answered or not).
    pub(super) history_asked: usize,
    /// History ranges recorded as loaded.
    pub(super) history_recovered: usize,
    /// History points written.
    pub(super) history_points: u64,
}

/// What the run did, for the summary.
#[derive(Debug, Default)]
pub(super) struct Tally {
    pub(super) gaps_recorded: usize,
    pub(super) lost: Vec<LostRange>,
    pub(super) rows_written: u64,
    /// Points taken in from answers, for the progress bar (written at checkpoints).
    pub(super) rows_fetched: u64,
    pub(super) files_written: u64,
    pub(super) dropped: Dropped,
    pub(super) errors: Vec<String>,
    /// A request was refused as not retryable.
    pub(super) rejected: bool,
    /// Requests answered (their targets served).
    pub(super) answered: usize,
    /// Requests, scans and recoveries that failed for good: the run exits 3.
    pub(super) failed: usize,
    /// Requests not sent because the run stopped first.
    pub(super) deferred: usize,
    /// The run stopped sending because the API gave no answer to many requests in a
    /// row: their failures are said once, not one line each.
    pub(super) unreachable: bool,
    /// Discovered rooms retired: their last call ended and was fetched.
    pub(super) rooms_retired: usize,
    pub(super) recovery: RecoveryTally,
}
