//! The per-access-key request limit: a sliding-window log.
//!
//! The API documents "2 requests per second" and nothing about the algorithm. A sliding
//! window ("at most 2 admitted requests in any rolling second") is the strictest of the
//! plausible readings: a token bucket of capacity 2 or fixed one-second windows (which
//! let 4 requests through across a window edge) admit everything it admits. A client
//! that stays inside this limit therefore stays inside the real one, whichever of those
//! the gateway uses; that is what an emulator for testing a client should check.
//!
//! For a rate `r` that is not a whole number the window holds `n = ceil(r)` requests
//! over `n / r` seconds (0.5/s: 1 per 2 s; 2.5/s: 3 per 1.2 s). Rejected requests do not
//! enter the log, so a client that backs off is admitted as soon as the window allows.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Sliding-window log per key. Time is passed in, so tests need no sleeping.
#[derive(Debug)]
pub(crate) struct SlidingWindow {
    /// Requests per second, as configured (for messages).
    rate: f64,
    capacity: usize,
    window: Duration,
    log: HashMap<String, VecDeque<Instant>>,
}

impl SlidingWindow {
    /// A limit of `rate` requests per second; `rate` must be finite and above 0.
    pub(crate) fn new(rate: f64) -> Self {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            1.0
        };
        let capacity = rate.ceil().clamp(1.0, 1_000_000.0);
        SlidingWindow {
            rate,
            capacity: capacity as usize,
            window: Duration::from_secs_f64(capacity / rate),
            log: HashMap::new(),
        }
    }

    /// Requests per second, as configured.
    pub(crate) fn rate(&self) -> f64 {
        self.rate
    }

    /// Requests admitted per window.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Length of the window.
    #[cfg(test)]
    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    /// Whether a request by `key` arriving at `now` is admitted; records it if so.
    pub(crate) fn admit(&mut self, key: &str, now: Instant) -> bool {
        // Forget keys idle for a whole window so the map cannot grow without bound.
        if self.log.len() > 1024 {
            let window = self.window;
            self.log.retain(|_, q| {
                q.back()
                    .is_some_and(|&t| now.saturating_duration_since(t) < window)
            });
        }
        let log = self.log.entry(key.to_string()).or_default();
        while let Some(&oldest) = log.front() {
            if now.saturating_duration_since(oldest) >= self.window {
                log.pop_front();
            } else {
                break;
            }
        }
        if log.len() < self.capacity {
            log.push_back(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn two_per_rolling_second() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2.0);
        assert_eq!((w.capacity(), w.window()), (2, ms(1000)));
        let got: Vec<bool> = (0..5).map(|_| w.admit("ak", t0)).collect();
        assert_eq!(got, [true, true, false, false, false]);
        assert!(!w.admit("ak", t0 + ms(999)));
        // Another key has its own window.
        assert!(w.admit("other", t0 + ms(999)));
        assert!(w.admit("ak", t0 + ms(1000)));
        assert!(w.admit("ak", t0 + ms(1000)));
        assert!(!w.admit("ak", t0 + ms(1500)));
    }

    #[test]
    fn paced_requests_all_pass_and_bursts_across_edges_do_not() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2.0);
        for i in 0..20 {
            assert!(w.admit("ak", t0 + ms(500 * i)), "{i}");
        }
        // Two at the end of one second and two at the start of the next: a fixed-window
        // limiter would admit all four, this one only the first two.
        let mut w = SlidingWindow::new(2.0);
        let t = t0 + ms(900);
        assert!(w.admit("ak", t) && w.admit("ak", t + ms(50)));
        assert!(!w.admit("ak", t0 + ms(1000)) && !w.admit("ak", t0 + ms(1050)));
    }

    #[test]
    fn fractional_rates() {
        let w = SlidingWindow::new(0.5);
        assert_eq!((w.capacity(), w.window()), (1, ms(2000)));
        let w = SlidingWindow::new(2.5);
        assert_eq!(w.capacity(), 3);
        assert_eq!(w.window(), ms(1200));
    }
}
