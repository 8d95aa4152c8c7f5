//! How many targets a pipeline serves without loss at its rate and schedule, and
//! whether what a run leaves for later is safe until the runs that follow reach it.
//! See docs/design.md, "Budget and capacity".
//!
//! A run sends requests earliest due first until its time is up, so in steady state the
//! targets take turns: each is served once every `targets / requests per run` runs, and
//! its request covers everything since its last one. A target is safe while it is
//! served again within `SERVE_WITHIN` of its last request.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

use crate::api::limit::HEADROOM;
use crate::plan::HORIZON_MARGIN;
use volc_rtc::limits::{REALTIME_BUCKET, REALTIME_DELAY, REALTIME_HORIZON};

/// How soon after one request a target must be served again: its data starts at most
/// `REALTIME_DELAY + REALTIME_BUCKET` before the request was sent and leaves the horizon
/// `REALTIME_HORIZON - HORIZON_MARGIN` after that (58 minutes).
pub(crate) const SERVE_WITHIN: TimeDelta = REALTIME_HORIZON
    .checked_sub(&HORIZON_MARGIN)
    .unwrap()
    .checked_sub(&REALTIME_DELAY)
    .unwrap()
    .checked_sub(&REALTIME_BUCKET)
    .unwrap();

/// A pipeline's request budget: its rate, how often a run starts, and how long a run
/// may send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Budget {
    pub(crate) requests_per_second: f64,
    /// How often the scheduler starts a run (`--schedule`).
    pub(crate) schedule: Duration,
    /// How long one run sends requests: `--max-duration`, else the whole schedule.
    pub(crate) run_time: Duration,
}

impl Budget {
    /// A budget for runs every `schedule` that stop after `max_duration` (at most the
    /// schedule: a longer run would find the next one's lease taken).
    pub(crate) fn new(
        requests_per_second: f64,
        schedule: Duration,
        max_duration: Option<Duration>,
    ) -> Self {
        Budget {
            requests_per_second,
            schedule,
            run_time: max_duration.map_or(schedule, |d| d.min(schedule)),
        }
    }

    /// Requests actually sent per second: the pacer spaces them [`HEADROOM`] wider.
    fn rate(&self) -> f64 {
        if self.requests_per_second.is_finite() && self.requests_per_second > 0.0 {
            self.requests_per_second / HEADROOM
        } else {
            0.0
        }
    }

    /// Requests one run can send.
    pub(crate) fn requests_per_run(&self) -> u64 {
        (self.rate() * self.run_time.as_secs_f64()).floor() as u64
    }

    /// The longest time between two requests of one target when `targets` take turns:
    /// `m` whole runs, where `targets = m × per run + x`, plus the shift of `x`
    /// places and the idle end of a run; one schedule when all fit in one run.
    pub(crate) fn serve_every(&self, targets: u64) -> Option<Duration> {
        let per_run = self.requests_per_run();
        if per_run == 0 {
            return None;
        }
        let (m, x) = (targets / per_run, targets % per_run);
        let s = self.schedule.as_secs_f64();
        let secs = if x == 0 {
            m as f64 * s
        } else if m == 0 {
            // All fit in one run: each is served once a run, in the same order.
            s
        } else {
            m as f64 * s + (s - self.run_time.as_secs_f64()) + x as f64 / self.rate()
        };
        Some(Duration::from_secs_f64(secs))
    }

    /// The most targets served without loss: the most whose turns come round within
    /// [`SERVE_WITHIN`].
    pub(crate) fn capacity(&self) -> u64 {
        let per_run = self.requests_per_run();
        let within = SERVE_WITHIN.as_seconds_f64();
        let s = self.schedule.as_secs_f64();
        if per_run == 0 || s <= 0.0 {
            return 0;
        }
        // With `m` whole runs between turns, `x` more fit while the shift they cause
        // stays within the limit.
        let mut best = 0;
        let mut m = 0u64;
        while m as f64 * s <= within {
            best = best.max(m * per_run);
            let room = within - m as f64 * s - (s - self.run_time.as_secs_f64());
            if room > 0.0 {
                let x = ((room * self.rate()).floor() as u64).min(per_run);
                best = best.max(m * per_run + x);
            }
            m += 1;
        }
        best
    }

    /// The lag a target reaches just before its turn: the time between turns plus the
    /// settle delay its last request stopped short of.
    pub(crate) fn worst_lag(&self, targets: u64) -> Option<Duration> {
        let extra = (REALTIME_DELAY + REALTIME_BUCKET)
            .to_std()
            .unwrap_or_default();
        self.serve_every(targets).map(|d| d + extra)
    }

    /// How many of the targets due next would lose data before the following runs
    /// reach them, if each of those runs starts `schedule` after the one before (the
    /// first at `next_start`) and sends its requests earliest due first.
    ///
    /// `due` holds, per target with a request to make, when it is due (its order) and
    /// when its oldest owed data leaves the horizon (`None`: a target never fetched
    /// owes nothing and loses nothing by waiting).
    pub(crate) fn at_risk(
        &self,
        due: &mut [(DateTime<Utc>, Option<DateTime<Utc>>)],
        next_start: DateTime<Utc>,
    ) -> usize {
        due.sort_by_key(|(d, _)| *d);
        let per_run = self.requests_per_run();
        let rate = self.rate();
        due.iter()
            .enumerate()
            .filter(|(k, (_, leaves))| {
                let Some(leaves) = leaves else { return false };
                if per_run == 0 {
                    return true;
                }
                let k = *k as u64;
                let runs = (k / per_run) as f64 * self.schedule.as_secs_f64();
                let within = (k % per_run) as f64 / rate;
                let sent = next_start + TimeDelta::milliseconds(((runs + within) * 1e3) as i64);
                *leaves < sent
            })
            .count()
    }
}

/// `300 s` as "5 minutes", `90 s` as "90 seconds", `3600 s` as "1 hour".
pub(crate) fn every(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if s > 0 && s.is_multiple_of(3600) {
        plural(s / 3600, "hour")
    } else if s >= 60 && s.is_multiple_of(60) {
        plural(s / 60, "minute")
    } else {
        plural(s, "second")
    }
}

/// A pipeline's capacity in words, for `plan`, `status` and the run's warning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Capacity {
    pub(crate) targets: u64,
    pub(crate) budget: Budget,
}

impl Capacity {
    pub(crate) fn over(&self) -> bool {
        self.targets > self.budget.capacity()
    }
}

impl std::fmt::Display for Capacity {
    /// "capacity 1364 targets (120 requests per 30-second run every 5 minutes at 4
    /// requests/second); 1200 targets: each served every 50 minutes, worst lag 52
    /// minutes".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.budget;
        write!(
            f,
            "capacity {} targets ({} requests per {} run every {} at {} requests/second)",
            b.capacity(),
            b.requests_per_run(),
            every(b.run_time).trim_end_matches('s').replace(' ', "-"),
            every(b.schedule),
            b.requests_per_second
        )?;
        let minutes = |d: Duration| (d.as_secs_f64() / 60.0).ceil() as u64;
        match (b.serve_every(self.targets), b.worst_lag(self.targets)) {
            (Some(e), Some(l)) => write!(
                f,
                "; {} target{}: each served every {} min, worst lag {} min",
                self.targets,
                if self.targets == 1 { "" } else { "s" },
                minutes(e).max(1),
                minutes(l)
            )?,
            _ => write!(f, "; no request fits in one run")?,
        }
        if self.over() {
            write!(
                f,
                ": over capacity, {} more targets than can be served, so data will be lost every hour (split the targets across accounts, give this pipeline more of its account's rate, or let runs send longer)",
                self.targets - b.capacity()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn budget(rps: f64, schedule: u64, run: u64) -> Budget {
        Budget::new(
            rps,
            Duration::from_secs(schedule),
            Some(Duration::from_secs(run)),
        )
    }

    #[test]
    fn serve_within_is_58_minutes() {
        assert_eq!(SERVE_WITHIN, TimeDelta::minutes(58));
    }

    #[test]
    fn capacity_at_the_documented_settings() {
        // 2/s, 4-minute runs every 5 minutes: 470 requests per run (2 % headroom).
        let b = budget(2.0, 300, 240);
        assert_eq!(b.requests_per_run(), 470);
        assert_eq!(b.capacity(), 5_405);
        // 4/s, 30-second runs every 5 minutes.
        let b = budget(4.0, 300, 30);
        assert_eq!(b.requests_per_run(), 117);
        assert_eq!(b.capacity(), 1_287);
        // Runs as long as the schedule: close to 2 × 58 minutes of requests.
        let b = Budget::new(2.0, Duration::from_secs(300), None);
        assert_eq!(b.requests_per_run(), 588);
        assert_eq!(b.capacity(), 6_820);
        // 30-second runs at 2/s (the README's table).
        assert_eq!(budget(2.0, 300, 30).requests_per_run(), 58);
        assert_eq!(budget(2.0, 300, 30).capacity(), 638);
        assert_eq!(budget(0.001, 300, 30).capacity(), 0);
    }

    #[test]
    fn turns_and_lag() {
        let b = budget(4.0, 300, 30);
        // 1,200 targets: 10 whole runs and 30 more places.
        assert_eq!(b.serve_every(1_200).unwrap().as_secs(), 3_277);
        assert_eq!(b.serve_every(117 * 3).unwrap().as_secs(), 900);
        assert_eq!(b.worst_lag(117 * 3).unwrap().as_secs(), 990);
        assert!(b.serve_every(1_200).unwrap() <= SERVE_WITHIN.to_std().unwrap());
        assert!(b.serve_every(1_288).unwrap() > SERVE_WITHIN.to_std().unwrap());
        // All in one run (the demo: 12 targets, runs every 5 minutes): each is served
        // once a run, whatever the run's length.
        let demo = Budget::new(2.0, Duration::from_secs(300), None);
        assert_eq!(demo.serve_every(12).unwrap().as_secs(), 300);
        assert_eq!(demo.worst_lag(12).unwrap().as_secs(), 390);
        assert!(
            Capacity {
                targets: 12,
                budget: demo
            }
            .to_string()
            .ends_with("; 12 targets: each served every 5 min, worst lag 7 min")
        );
    }

    #[test]
    fn words() {
        let c = Capacity {
            targets: 1_200,
            budget: budget(4.0, 300, 30),
        };
        assert!(!c.over());
        assert_eq!(
            c.to_string(),
            "capacity 1287 targets (117 requests per 30-second run every 5 minutes at 4 requests/second); 1200 targets: each served every 55 min, worst lag 57 min"
        );
        let c = Capacity {
            targets: 1_400,
            budget: budget(4.0, 300, 30),
        };
        assert!(c.over());
        assert!(
            c.to_string().ends_with(": over capacity, 113 more targets than can be served, so data will be lost every hour (split the targets across accounts, give this pipeline more of its account's rate, or let runs send longer)"),
            "{c}"
        );
        assert_eq!(every(Duration::from_secs(90)), "90 seconds");
        assert_eq!(every(Duration::from_secs(3600)), "1 hour");
    }

    #[test]
    fn at_risk_counts_what_the_next_runs_cannot_reach() {
        let t =
            |m: i64| Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap() + TimeDelta::minutes(m);
        // Two requests per run, runs every 5 minutes starting at 12:05.
        let b = budget(2.04, 300, 1);
        assert_eq!(b.requests_per_run(), 2);
        let mut due = vec![
            (t(5), None),         // new: first place, loses nothing
            (t(6), Some(t(6))),   // second place at 12:05:00.5: safe
            (t(7), Some(t(7))),   // third place: the 12:10 run, too late
            (t(20), Some(t(20))), // fourth place at 12:10:00.5: safe
        ];
        assert_eq!(b.at_risk(&mut due, t(5)), 1);
        assert_eq!(b.at_risk(&mut [], t(5)), 0);
    }
}
