//! Ranges of time and what was lost in them: the words "lost range" and "gap" of
//! DESIGN.md. `plan` finds them, `run` reports them, `state` keeps them in the ledger, and
//! recovery will fill them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Target;

/// A half-open range of time `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TimeRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Why a range is lost, as written in the gap ledger.
pub const GAP_REASON: &str = "beyond the API's 60-minute horizon before it could be fetched";

/// One lost range of one target, as the gap ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub pipeline: String,
    /// `Target::key()`.
    pub target: String,
    pub app_id: String,
    pub product_type: String,
    pub room_id: Option<String>,
    pub user_id: Option<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub reason: String,
    pub detected_at: DateTime<Utc>,
}

impl Gap {
    /// `range` of `target` left the API's horizon before it could be fetched; found at
    /// `detected_at`.
    pub fn beyond_horizon(
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

    /// Whether `o` records the same loss (the ledger keeps one line a loss).
    pub fn same_range(&self, o: &Gap) -> bool {
        self.target == o.target && self.start == o.start && self.end == o.end
    }
}

/// A lost range as a run's summary reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LostRange {
    pub target: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
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
