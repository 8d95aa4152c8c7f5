//! What one run hands back: its summary and, when it stopped, the error that stopped
//! it. The run's exit code is decided here, once, by [`exit_code`]; the summary, the
//! last-run record, the metrics and the process all carry that one value.

use super::RunError;
use crate::obs::summary::{Exit, Summary};
use crate::sink::SinkError;
use crate::state::LeaseError;

/// What a run found about its own work, for its exit code: the parts of the outcome the
/// summary's counts do not say on their own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Verdict {
    /// A request was refused as not retryable.
    pub(crate) rejected: bool,
    /// A new gap was recorded and the run was told to fail on one (`--fail-on-gap`).
    pub(crate) failed_on_gap: bool,
    /// Requests, scans or recoveries failed for good, or owed data would leave the
    /// horizon before the next runs reach it.
    pub(crate) incomplete: bool,
}

/// One run's outcome: what it did, and why it stopped if it did not finish.
#[derive(Debug)]
pub struct Report {
    /// What the run did (up to where it stopped), with the exit code set.
    pub summary: Summary,
    /// What stopped the run, if anything did.
    pub error: Option<RunError>,
}

impl Report {
    /// The report of `summary` and `error`: the error is added to the summary's errors
    /// and the exit code decided.
    pub(crate) fn new(mut summary: Summary, verdict: Verdict, error: Option<RunError>) -> Report {
        if let Some(e) = &error {
            summary.errors.push(e.to_string());
        }
        summary.exit_code = exit_code(verdict, error.as_ref());
        Report { summary, error }
    }

    /// The exit code the run ends with.
    pub fn exit(&self) -> Exit {
        self.summary.exit_code
    }

    /// Records that reporting itself failed (a metrics file not written): the run fails
    /// with this error unless it had already stopped on another.
    pub(crate) fn report_failed(&mut self, error: RunError) {
        if self.error.is_none() {
            self.summary.errors.push(error.to_string());
            self.summary.exit_code = exit_of(&error);
            self.error = Some(error);
        }
    }
}

/// The exit code of a run: the error that stopped it decides; otherwise the most
/// serious of a refusal, a gap the user fails on, then anything left undone or at risk.
pub(crate) fn exit_code(verdict: Verdict, error: Option<&RunError>) -> Exit {
    match error {
        Some(e) => exit_of(e),
        None if verdict.rejected => Exit::Rejected,
        None if verdict.failed_on_gap => Exit::Gap,
        None if verdict.incomplete => Exit::Incomplete,
        None => Exit::Done,
    }
}

/// The exit code of a run stopped by `e`.
fn exit_of(e: &RunError) -> Exit {
    match e {
        RunError::Lease(LeaseError::Busy { .. }) => Exit::Busy,
        RunError::Client(_) | RunError::SpillDir { .. } | RunError::Setup(_) => Exit::Usage,
        RunError::Sink(e) => exit_of_sink(e),
        _ => Exit::Failed,
    }
}

/// The exit code of a run or command stopped by a sink error: 2 for what the user fixes
/// in the config or environment (the URL, the name, credentials), else 1.
pub(crate) fn exit_of_sink(e: &SinkError) -> Exit {
    if e.is_config() {
        Exit::Usage
    } else {
        Exit::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exit_code_is_the_error_s_else_the_most_serious_of_the_verdict() {
        let v = |rejected, failed_on_gap, incomplete| Verdict {
            rejected,
            failed_on_gap,
            incomplete,
        };
        for (verdict, want) in [
            (v(true, true, true), Exit::Rejected),
            (v(false, true, true), Exit::Gap),
            (v(false, false, true), Exit::Incomplete),
            (v(false, false, false), Exit::Done),
        ] {
            assert_eq!(exit_code(verdict, None), want, "{verdict:?}");
        }
        let busy = RunError::Lease(LeaseError::Busy {
            pipeline: "demo".into(),
            path: "p".into(),
            holder: None,
        });
        assert_eq!(exit_code(v(true, true, true), Some(&busy)), Exit::Busy);
        let setup = RunError::Setup("VOLC_ACCESSKEY is not set".into());
        assert_eq!(exit_code(Verdict::default(), Some(&setup)), Exit::Usage);
        let sink = RunError::Sink(SinkError::Url {
            url: "ftp://x".into(),
            reason: "unsupported".into(),
        });
        assert_eq!(exit_code(Verdict::default(), Some(&sink)), Exit::Usage);
        let output = RunError::Output("cannot write the metrics".into());
        assert_eq!(exit_code(Verdict::default(), Some(&output)), Exit::Failed);
    }
}
