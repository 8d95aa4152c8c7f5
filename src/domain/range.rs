//! Ranges of time and what was lost in them: the words "lost range" and "gap" of
//! DESIGN.md. `plan` finds them, `run` reports them, `state` keeps them in the ledger, and
//! recovery fills them (`recovery`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Target;

/// A half-open range of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct TimeRange {
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// Why a range is lost, as written in the gap ledger.
pub(crate) const GAP_REASON: &str = "beyond the API's 60-minute horizon before it could be fetched";

/// One lost range of one target, as the gap ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Gap {
    pub(crate) pipeline: String,
    /// `Target::key()`.
    pub(crate) target: String,
    pub(crate) app_id: String,
    pub(crate) product_type: String,
    pub(crate) room_id: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
    pub(crate) reason: String,
    pub(crate) detected_at: DateTime<Utc>,
}

impl Gap {
    /// `range` of `target` left the API's horizon before it could be fetched; found at
    /// `detected_at`.
    pub(crate) fn beyond_horizon(
        pipeline: &str,
        target: &Target,
        range: TimeRange,
        detected_at: DateTime<Utc>,
    ) -> Gap {
        Gap {
            pipeline: pipeline.to_string(),
            target: target.key(),
            app_id: target.app_id.clone(),
            product_type: target.product_type.as_str().to_string(),
            room_id: target.room_id.clone(),
            user_id: target.user_id.clone(),
            start: range.start,
            end: range.end,
            reason: GAP_REASON.to_string(),
            detected_at,
        }
    }
}

/// A lost range as a run's summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LostRange {
    pub(crate) target: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

impl From<&Gap> for LostRange {
    fn from(g: &Gap) -> Self {
        LostRange {
            target: g.target.clone(),
            start: g.start,
            end: g.end,
        }
    }
}
