//! The API's rules as the emulator enforces them, written from `docs/api.md` and kept
//! apart from the job's own reading of the same page: a misunderstanding of a limit in
//! the job then shows as a refused request in a test instead of being shared by both.

use chrono::{DateTime, TimeDelta, Utc};

/// `ListRealTimeQuality` serves `StartTime` at most this long ago.
pub(crate) const REALTIME_LOOKBACK: TimeDelta = TimeDelta::minutes(60);
/// The longest window one `ListRealTimeQuality` request may ask for.
pub(crate) const REALTIME_MAX_SPAN: TimeDelta = TimeDelta::minutes(60);
/// One real-time point per 30-second bucket, stamped with the bucket's start.
pub(crate) const BUCKET: TimeDelta = TimeDelta::seconds(30);
/// The real-time data's delay: a bucket's point appears this long after it ends.
pub(crate) const DATA_DELAY: TimeDelta = TimeDelta::minutes(1);
/// At most this many `UserId`s in one request.
pub(crate) const MAX_USERS: usize = 20;
/// The indicators both quality actions accept.
pub(crate) const INDICATORS: [&str; 5] = [
    "join_room_success_rate",
    "stall_rate",
    "first_frame_send_success_rate",
    "first_frame_recv_success_rate",
    "network_trans_delay",
];
/// The region the emulator answers for (the API's default region).
pub(crate) const REGION: &str = "cn-north-1";
/// Longest id the emulator's account knows: longer app, room and user ids do not
/// exist there.
const MAX_ID_BYTES: usize = 128;

/// Whether an app, room or user id can exist in the emulator's account: not empty, at
/// most [`MAX_ID_BYTES`] bytes, printable. The reason when it cannot.
pub(crate) fn id_exists(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("is empty: ids must have at least one character".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Err(format!(
            "is {} bytes long: ids may have at most {MAX_ID_BYTES} bytes",
            id.len()
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{id:?} contains the control character U+{:04X}: ids must be printable",
            c as u32
        ));
    }
    Ok(())
}

/// An instant as the emulator logs it: RFC 3339, UTC, whole seconds.
pub(crate) fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The emulator's data clock: starts at a fixed instant (or the real time) and advances
/// with tokio's clock, so tests that pause time move it too.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DataClock {
    start: DateTime<Utc>,
    started: tokio::time::Instant,
}

impl DataClock {
    /// A clock reading `now` (the real time when `None`) at this moment.
    pub(crate) fn at(now: Option<DateTime<Utc>>) -> Self {
        DataClock {
            start: now.unwrap_or_else(Utc::now),
            started: tokio::time::Instant::now(),
        }
    }

    /// The data clock's current instant.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.start + TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::zero())
    }
}
