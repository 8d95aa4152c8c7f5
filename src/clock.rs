//! The run's one time source. Injected so that `--now` and tests can move time without
//! sleeping: it advances with tokio's clock, which tests pause and advance at will.
//!
//! It gives two readings. `Clock::now` is the data clock: what the horizon and the
//! windows are measured against, moved by `--now`. `Clock::wall` is the real time of
//! the process, for what other processes compare with it (lease expiry, `started_at`,
//! `updated_at`): `--now` never moves it. Request signatures use the system clock
//! directly, since the server checks them against its own.

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
}
