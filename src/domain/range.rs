//! Ranges of time and what was lost in them: the words "lost range" and "gap" of
//! docs/design.md. `plan` finds them, `run` reports them, `state` keeps them in the ledger, and
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

impl TimeRange {
    /// The parts of this range that none of `others` covers, oldest first.
    pub(crate) fn minus(self, others: impl IntoIterator<Item = TimeRange>) -> Vec<TimeRange> {
        let mut cuts: Vec<TimeRange> = others
            .into_iter()
            .filter(|o| o.start < self.end && o.end > self.start)
            .collect();
        cuts.sort();
        let mut out = Vec::new();
        let mut from = self.start;
        for c in cuts {
            if c.start > from {
                out.push(TimeRange {
                    start: from,
                    end: c.start,
                });
            }
            from = from.max(c.end);
        }
        if from < self.end {
            out.push(TimeRange {
                start: from,
                end: self.end,
            });
        }
        out
    }
}

/// `ranges` with the overlapping and touching ones joined, oldest first; empty ones
/// dropped.
pub(crate) fn merged(mut ranges: Vec<TimeRange>) -> Vec<TimeRange> {
    ranges.retain(|r| r.start < r.end);
    ranges.sort();
    let mut out: Vec<TimeRange> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
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
    /// The target as logs and `status` name targets (`app=… product=…`), not its state
    /// key.
    pub(crate) fn label(&self) -> super::target::Label<'_> {
        super::target::Label {
            app_id: &self.app_id,
            product_type: &self.product_type,
            room_id: self.room_id.as_deref(),
            user_id: self.user_id.as_deref(),
        }
    }

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

    /// The range lost.
    pub(crate) fn range(&self) -> TimeRange {
        TimeRange {
            start: self.start,
            end: self.end,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn r(a: u32, b: u32) -> TimeRange {
        let t = |m: u32| DateTime::from_timestamp(i64::from(m) * 60, 0).unwrap();
        TimeRange {
            start: t(a),
            end: t(b),
        }
    }

    #[test]
    fn minus_leaves_what_nothing_covers_and_merged_joins_what_touches() {
        // Cuts in any order, overlapping, touching the edges or outside.
        assert_eq!(
            r(0, 60).minus([r(40, 50), r(10, 20), r(15, 25), r(55, 70), r(80, 90)]),
            [r(0, 10), r(25, 40), r(50, 55)]
        );
        assert_eq!(r(0, 60).minus([]), [r(0, 60)]);
        assert_eq!(r(10, 20).minus([r(0, 30)]), []);
        assert_eq!(
            merged(vec![r(30, 40), r(0, 10), r(10, 20), r(35, 50), r(60, 60)]),
            [r(0, 20), r(30, 50)]
        );
    }
}
