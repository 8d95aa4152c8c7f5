//! One planned request, sent with pacing and retries. Each attempt re-checks the
//! horizon, so a request that waited in the queue is never rejected for starting too
//! far back: the part that fell out is reported as lost instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::api::{ApiError, Client, QualityRequest};
use crate::clock::Clock;
use crate::config::Target;
use crate::limit::{Pacer, RetryPolicy};
use crate::plan::{self, Lost};
use crate::run::rows::Answer;

/// Request counters shared by every fetch of a run.
#[derive(Debug, Default)]
pub struct FetchStats {
    /// Attempts sent.
    pub sent: AtomicU64,
    /// Attempts that were retries.
    pub retried: AtomicU64,
    /// Answers that said we were too fast.
    pub throttled: AtomicU64,
    /// Requests that failed for good.
    pub failed: AtomicU64,
}

/// The outcome of one planned request.
#[derive(Debug)]
pub struct Fetched {
    /// Index into the plan's requests.
    pub request: usize,
    /// The start actually asked for (after any horizon cut at send time).
    pub start: DateTime<Utc>,
    /// The part cut off because it fell out of the horizon while queued.
    pub lost: Option<Lost>,
    /// `Ok(None)`: everything fell out of the horizon, nothing was asked.
    pub outcome: Result<Option<Answer>, ApiError>,
}

/// What every fetch of a run shares.
#[derive(Debug, Clone)]
pub struct Fetcher {
    pub client: Client,
    pub pacer: Arc<Pacer>,
    pub policy: RetryPolicy,
    pub clock: Clock,
    pub stats: Arc<FetchStats>,
}

/// How long everyone waits after a throttled answer.
const THROTTLE_PAUSE: Duration = Duration::from_secs(1);

impl Fetcher {
    pub async fn fetch(&self, index: usize, target: &Target, req: &plan::Request) -> Fetched {
        let mut start = req.start;
        let mut resigned = false;
        let attempt = || async {
            let horizon = plan::horizon_at(self.clock.now());
            let asked = req.start.max(horizon);
            if asked >= req.end {
                return Ok((asked, None));
            }
            self.pacer.acquire().await;
            self.stats.sent.fetch_add(1, Ordering::Relaxed);
            let body = QualityRequest {
                app_id: target.app_id.clone(),
                start_time: asked.to_rfc3339_opts(SecondsFormat::Secs, true),
                end_time: req.end.to_rfc3339_opts(SecondsFormat::Secs, true),
                indicator: target.indicators.clone(),
                room_id: target.room_id.clone(),
                user_id: target.user_id.iter().cloned().collect(),
                product_type: Some(target.product_type.as_str().to_string()),
            };
            match self
                .client
                .list_real_time_quality_with(&body, Answer::from_ref)
                .await
            {
                Ok(r) => Ok((asked, Some(r))),
                Err(e) => {
                    if e.is_throttle() {
                        self.stats.throttled.fetch_add(1, Ordering::Relaxed);
                        self.pacer.back_off(THROTTLE_PAUSE).await;
                    }
                    Err(e)
                }
            }
        };
        let result = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &ApiError| {
                if e.is_clock() && !resigned {
                    resigned = true;
                    return true;
                }
                e.is_retryable()
            })
            .notify(|e: &ApiError, after: Duration| {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target_id = %target, error = %e, retry_in_ms = after.as_millis() as u64, "request failed, retrying");
            })
            .await;
        let outcome = match result {
            Ok((asked, r)) => {
                start = asked;
                Ok(r)
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        };
        let lost = (start > req.start).then_some(Lost {
            start: req.start,
            end: start.min(req.end),
        });
        Fetched {
            request: index,
            start,
            lost,
            outcome,
        }
    }
}
