//! Pacing and retry: one pacer for the whole process, so all requests in flight together
//! stay under the API's requests/second, and the backoff policy for retryable errors.

use std::time::Duration;

use backon::ExponentialBuilder;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spacing is stretched by this factor: a server that counts requests in a sliding
/// one-second window sees them arrive with some jitter (a new connection, scheduling),
/// and 2 % of slack (10 ms at 2 requests/second) keeps even a late arrival from
/// making three in one window.
pub(crate) const HEADROOM: f64 = 1.02;

/// How long every request of an action waits after one of them was throttled.
pub(crate) const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// Spaces request starts evenly at `rate` per second, with no bursts.
///
/// A token bucket of capacity one: each caller reserves the next free instant under a
/// lock and sleeps until it, so callers queue in order and the achieved rate equals the
/// configured one however many requests are in flight. Capacity one keeps us inside a
/// server's one-second sliding window even when requests arrive with jitter.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl Pacer {
    pub(crate) fn new(requests_per_second: f64) -> Self {
        let secs = if requests_per_second.is_finite() && requests_per_second > 0.0 {
            HEADROOM / requests_per_second
        } else {
            0.0
        };
        Pacer {
            interval: Duration::from_secs_f64(secs),
            next: Mutex::new(None),
        }
    }

    /// Waits for this caller's turn.
    pub(crate) async fn acquire(&self) {
        let at = self.reserve().await;
        tokio::time::sleep_until(at).await;
    }

    /// Takes the next turn without waiting for it: callers that reserve in order are
    /// served in that order, however their tasks are scheduled.
    pub(crate) async fn reserve(&self) -> Instant {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let at = match *next {
            Some(t) if t > now => t,
            _ => now,
        };
        *next = Some(at + self.interval);
        at
    }

    /// Pushes the next start back by `delay` ([`THROTTLE_PAUSE`] after a throttled answer): used after the server said we were too
    /// fast, so every request in flight slows down, not only the throttled one.
    pub(crate) async fn back_off(&self, delay: Duration) {
        let mut next = self.next.lock().await;
        let earliest = Instant::now() + delay;
        if next.is_none_or(|t| t < earliest) {
            *next = Some(earliest);
        }
    }
}

/// How often and how long to retry one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt.
    pub(crate) max_retries: usize,
    pub(crate) min_delay: Duration,
    pub(crate) max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 4,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff (factor 2) with full jitter, as backon implements it.
    pub(crate) fn backoff(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries)
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_starts_evenly() {
        let pacer = std::sync::Arc::new(Pacer::new(2.0));
        let t0 = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..5 {
            let p = pacer.clone();
            handles.push(tokio::spawn(async move {
                p.acquire().await;
                Instant::now() - t0
            }));
        }
        let mut got = Vec::new();
        for h in handles {
            got.push(h.await.unwrap().as_millis());
        }
        got.sort();
        assert_eq!(got, vec![0, 510, 1020, 1530, 2040]);
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_delays_the_next_start() {
        let pacer = Pacer::new(2.0);
        let t0 = Instant::now();
        pacer.acquire().await;
        pacer.back_off(Duration::from_secs(3)).await;
        pacer.acquire().await;
        assert_eq!((Instant::now() - t0).as_millis(), 3000);
        pacer.acquire().await;
        assert_eq!((Instant::now() - t0).as_millis(), 3510);
    }
}
