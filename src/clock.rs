//! The run's one time source. Injected so that `--now` and tests can move time without
//! sleeping: it advances with tokio's clock, which tests pause and advance at will.
//!
//! It gives two readings. `Clock::now` is the data clock: what the horizon and the
//! windows are measured against, moved by `--now`. `Clock::wall` is the real time of
//! the process, for what other processes compare with it (lease expiry, `started_at`,
//! `updated_at`): `--now` never moves it. Request signatures use the system clock
//! directly, since the server checks them against its own.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};
use tokio::time::Instant;

/// A clock whose readings start at fixed instants and advance with tokio's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    data: DateTime<Utc>,
    wall: DateTime<Utc>,
    started: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl Clock {
    /// The real clock: both readings are the system's time.
    pub(crate) fn system() -> Self {
        Self::at(None)
    }

    /// A clock whose data reading starts at `now` (or the system's time when `None`),
    /// while its wall reading stays real.
    pub(crate) fn at(now: Option<DateTime<Utc>>) -> Self {
        let wall = Utc::now();
        Self {
            data: now.unwrap_or(wall),
            wall,
            started: Instant::now(),
        }
    }

    /// The wall instant the clock was made: when the run it times started.
    pub(crate) fn started(&self) -> DateTime<Utc> {
        self.wall
    }

    /// The data clock's current instant: the horizon and windows are measured from it.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.data + self.elapsed()
    }

    /// The real current instant, for what is compared across processes.
    pub(crate) fn wall(&self) -> DateTime<Utc> {
        self.wall + self.elapsed()
    }

    fn elapsed(&self) -> TimeDelta {
        TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::zero())
    }
}

/// An instant as every log field, summary and message writes it: RFC 3339, UTC, whole
/// seconds (`2026-11-25T12:00:10Z`).
pub(crate) fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Offsets smaller than this are within the `Date` header's one-second resolution (and
/// the time an answer takes): they are not applied.
pub(crate) const OFFSET_APPLIED_FROM: TimeDelta = TimeDelta::seconds(2);

/// Offsets larger than this are warned about.
pub(crate) const OFFSET_WARN: TimeDelta = TimeDelta::seconds(30);

/// The API's clock, as its answers tell it: every answer's HTTP `Date` against the data
/// clock. Windows, the horizon, the settled end and the cursors saved are on this clock,
/// so a host clock that is off (or a `--now` that is) neither asks past what the API has
/// settled nor starts before what it still keeps.
#[derive(Debug)]
pub(crate) struct ApiClock {
    clock: Clock,
    /// How far the API's clock is ahead of the data clock, in ms (negative: behind).
    offset_ms: AtomicI64,
    /// Answers that carried a usable `Date`.
    dated: AtomicU64,
    /// Answers without one.
    undated: AtomicU64,
    /// The large offset was warned about.
    warned: AtomicBool,
}

impl ApiClock {
    /// The API's clock over `clock`, its offset unknown (zero) until an answer or
    /// [`ApiClock::seed`] says otherwise.
    pub(crate) fn new(clock: Clock) -> Self {
        ApiClock {
            clock,
            offset_ms: AtomicI64::new(0),
            dated: AtomicU64::new(0),
            undated: AtomicU64::new(0),
            warned: AtomicBool::new(false),
        }
    }

    /// Starts from the offset an earlier run measured, unless an answer was seen.
    pub(crate) fn seed(&self, offset: TimeDelta) {
        if self.dated.load(Ordering::Relaxed) == 0 {
            self.offset_ms
                .store(offset.num_milliseconds(), Ordering::Relaxed);
        }
    }

    /// The measured offset: the API's clock minus the data clock.
    pub(crate) fn measured(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// The offset applied: the measured one, unless within [`OFFSET_APPLIED_FROM`].
    pub(crate) fn offset(&self) -> TimeDelta {
        let m = self.measured();
        if m.abs() < OFFSET_APPLIED_FROM {
            TimeDelta::zero()
        } else {
            m
        }
    }

    /// The API's current instant.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now() + self.offset()
    }

    /// Whether any answer carried a `Date`.
    pub(crate) fn was_measured(&self) -> bool {
        self.dated.load(Ordering::Relaxed) > 0
    }

    /// Takes in one answer's `Date` header (`None`: it had none). A `Date` names a whole
    /// second, so the API's instant is taken half a second into it.
    pub(crate) fn observe(&self, date: Option<&str>) {
        let parsed = date.and_then(|d| DateTime::parse_from_rfc2822(d.trim()).ok());
        let Some(date) = parsed else {
            if self.undated.fetch_add(1, Ordering::Relaxed) == 0 && !self.was_measured() {
                tracing::warn!(
                    "the API's answer has no usable Date header: windows are planned on the local clock"
                );
            }
            return;
        };
        let api = date.with_timezone(&Utc) + TimeDelta::milliseconds(500);
        let offset = api - self.clock.now();
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::Relaxed);
        self.dated.fetch_add(1, Ordering::Relaxed);
        if offset.abs() > OFFSET_WARN && !self.warned.swap(true, Ordering::Relaxed) {
            let seconds = (offset.num_milliseconds() as f64 / 1000.0).round() as i64;
            tracing::warn!(
                offset_seconds = seconds,
                "the API's clock is {} s {} this job's clock: windows and cursors follow the API's clock; check the host's time sync (or --now)",
                seconds.abs(),
                if offset > TimeDelta::zero() {
                    "ahead of"
                } else {
                    "behind"
                }
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn both_readings_advance_with_paused_time_and_only_the_data_one_is_moved() {
        let then: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Clock::at(Some(then));
        let wall = clock.wall();
        assert_eq!(clock.now(), then);
        tokio::time::sleep(Duration::from_secs(90)).await;
        assert_eq!(clock.now(), then + TimeDelta::seconds(90));
        assert_eq!(clock.wall(), wall + TimeDelta::seconds(90));
        assert!(wall > then, "the wall reading is not moved by --now");
    }

    #[tokio::test(start_paused = true)]
    async fn the_api_clock_follows_each_answers_date_from_two_seconds_off() {
        let then: DateTime<Utc> = "2026-01-01T00:00:10Z".parse().unwrap();
        let api = ApiClock::new(Clock::at(Some(then)));
        assert_eq!(api.now(), then);
        // Three minutes ahead: applied.
        api.observe(Some("Thu, 01 Jan 2026 00:03:10 GMT"));
        assert_eq!(api.measured(), TimeDelta::milliseconds(180_500));
        assert_eq!(api.now(), then + TimeDelta::milliseconds(180_500));
        // A second off: within the header's resolution, not applied.
        api.observe(Some("Thu, 01 Jan 2026 00:00:09 GMT"));
        assert_eq!(api.offset(), TimeDelta::zero());
        assert_eq!(api.now(), then);
        // Behind, and it follows the data clock as it advances.
        api.observe(Some("Wed, 31 Dec 2025 23:57:10 GMT"));
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        assert_eq!(
            api.now(),
            then + TimeDelta::seconds(60) - TimeDelta::milliseconds(179_500)
        );
        // No Date, or an unreadable one: the last measure stays.
        api.observe(None);
        api.observe(Some("yesterday"));
        assert_eq!(api.measured(), TimeDelta::milliseconds(-179_500));
        // A seed from the state counts only before any answer.
        api.seed(TimeDelta::zero());
        assert_eq!(api.measured(), TimeDelta::milliseconds(-179_500));
        let fresh = ApiClock::new(Clock::at(Some(then)));
        fresh.seed(TimeDelta::minutes(5));
        assert_eq!(fresh.now(), then + TimeDelta::minutes(5));
    }
}
