//! The run's notion of "now". Injected so that `--now` and tests can move time without
//! sleeping; the real clock is still used for request signatures.

use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};

/// A clock that starts at `base` and advances with real time from its creation.
///
/// `--now` builds one from the given instant, so a long run still sees the horizon move
/// as it would in production.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base: DateTime<Utc>,
    started: Instant,
}

impl Clock {
    /// The real wall clock.
    pub fn system() -> Self {
        Self::starting_at(Utc::now())
    }

    /// A clock that reads `base` now and advances in real time.
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        Self {
            base,
            started: Instant::now(),
        }
    }

    /// The current instant on this clock.
    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = TimeDelta::from_std(self.started.elapsed()).unwrap_or(TimeDelta::zero());
        self.base + elapsed
    }
}
