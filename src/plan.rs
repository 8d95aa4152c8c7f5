//! Slots on the UTC grid, the settled end and the horizon, and the requests one run
//! makes. See DESIGN.md, "One run", steps 2 to 4.

use chrono::{DateTime, TimeDelta, Utc};

/// Width of one API bucket.
pub const BUCKET: TimeDelta = TimeDelta::seconds(30);
/// How far back the API answers.
pub const HORIZON: TimeDelta = TimeDelta::minutes(60);
/// Margin kept inside the horizon so a request is not rejected for arriving a moment late
/// or for a small clock difference with the server.
pub const HORIZON_MARGIN: TimeDelta = TimeDelta::seconds(30);
/// The documented data delay: the newest minute is not settled.
pub const SETTLE: TimeDelta = TimeDelta::minutes(1);
/// Longest span one request may cover.
pub const MAX_SPAN: TimeDelta = TimeDelta::minutes(60);

/// A half-open interval `[start, end)` on the UTC slot grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Slot {
    /// The slot of length `len` that contains `t`.
    pub fn containing(t: DateTime<Utc>, len: TimeDelta) -> Self {
        let start = floor_to(t, len);
        Slot {
            start,
            end: start + len,
        }
    }

    /// The slot length.
    pub fn len(&self) -> TimeDelta {
        self.end - self.start
    }

    /// The UTC date of the slot, as in the `date=` partition.
    pub fn date(&self) -> String {
        self.start.format("%Y-%m-%d").to_string()
    }

    /// `HHMM` of the slot start, as in file names.
    pub fn hhmm(&self) -> String {
        self.start.format("%H%M").to_string()
    }
}

/// Rounds `t` down to a multiple of `step` since the Unix epoch.
pub fn floor_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let step_us = step.num_microseconds().unwrap_or(1).max(1);
    let us = t.timestamp_micros();
    let floored = us - us.rem_euclid(step_us);
    DateTime::from_timestamp_micros(floored).unwrap_or(t)
}

/// Rounds `t` up to a multiple of `step` since the Unix epoch.
pub fn ceil_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let f = floor_to(t, step);
    if f == t { t } else { f + step }
}
