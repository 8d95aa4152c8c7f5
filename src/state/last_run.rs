//! `_state/<pipeline>.last-run.json`: what the last run did, for `status`. Written by
//! each run as it ends (while it still holds the lease), read by `status`; never read by
//! a run, so a missing or unreadable one changes nothing but what `status` can say.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::obs::summary::Summary;

/// The last run, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LastRun {
    pub(crate) run_id: String,
    pub(crate) started_at: DateTime<Utc>,
    pub(crate) finished_at: DateTime<Utc>,
    pub(crate) exit_code: u8,
    pub(crate) requests_sent: u64,
    pub(crate) rows_written: u64,
    pub(crate) gaps_recorded: usize,
    pub(crate) targets_served: usize,
    pub(crate) targets_deferred: usize,
    /// The first error, if the run had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

impl LastRun {
    pub(crate) fn of(s: &Summary) -> LastRun {
        LastRun {
            run_id: s.run_id.clone(),
            started_at: s.started_at,
            finished_at: s.finished_at,
            exit_code: s.exit_code as u8,
            requests_sent: s.requests_sent,
            rows_written: s.rows_written,
            gaps_recorded: s.gaps_recorded,
            targets_served: s.targets_served,
            targets_deferred: s.targets_deferred,
            error: s.errors.first().cloned(),
        }
    }
}

fn key(root: &Path, pipeline: &str) -> Path {
    root.clone()
        .join("_state")
        .join(format!("{pipeline}.last-run.json").as_str())
}

/// Records `summary` as the pipeline's last run. A failure is logged, not returned:
/// the run's data and state are already saved.
pub(crate) async fn save(store: &Arc<dyn ObjectStore>, root: &Path, pipeline: &str, s: &Summary) {
    let body = match serde_json::to_vec_pretty(&LastRun::of(s)) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "last run not recorded");
            return;
        }
    };
    if let Err(e) = store
        .put(&key(root, pipeline), PutPayload::from(body))
        .await
    {
        tracing::warn!(error = %e, "last run not recorded for status");
    }
}

/// The pipeline's last run, if one was recorded and is readable.
pub(crate) async fn load(
    store: &Arc<dyn ObjectStore>,
    root: &Path,
    pipeline: &str,
) -> Option<LastRun> {
    let bytes = store
        .get(&key(root, pipeline))
        .await
        .ok()?
        .bytes()
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
