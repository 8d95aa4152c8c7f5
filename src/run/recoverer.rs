//! `Recoverer`: sends recovery's `ListQuality` requests, the offline counterpart of
//! [`super::Fetcher`]: its own pacer (the action has its own limit) and the run's retry
//! policy (docs/design.md, "Recovery from the offline API").

use std::sync::atomic::Ordering;
use std::time::Duration;

use backon::Retryable;

use super::fetch::{self, FetchStats};
use super::rows::Answer;
use crate::api::limit::{Pacer, RetryPolicy};
use crate::api::offline::{FIVE_MINUTES, OfflineRequest};
use crate::api::{ApiError, Client, RetryRule};
use crate::domain::{Target, TimeRange};

/// Sends `ListQuality` requests: its own pacer (the action has its own limit) and the
/// run's retry policy.
#[derive(Debug)]
pub(crate) struct Recoverer {
    client: Client,
    pacer: Pacer,
    policy: RetryPolicy,
    /// `ListQuality` requests: sent, retried, throttled, failed for good.
    pub(crate) stats: FetchStats,
}

impl Recoverer {
    pub(crate) fn new(client: Client, requests_per_second: f64, policy: RetryPolicy) -> Self {
        Recoverer {
            client,
            pacer: Pacer::new(requests_per_second),
            policy,
            stats: FetchStats::default(),
        }
    }

    /// Asks for `target`'s 5-minute points over `range`, retrying as the policy says.
    pub(crate) async fn fetch(
        &self,
        target: &Target,
        range: TimeRange,
    ) -> Result<Answer, ApiError> {
        let body = OfflineRequest {
            base: fetch::request_body(target, range.start, range.end),
            aggregate_granularity: FIVE_MINUTES,
        };
        let attempt = || async {
            self.pacer.acquire().await;
            let send = self.client.list_quality_with(&body, Answer::from_ref);
            self.stats.attempt(&self.pacer, send).await
        };
        let mut rule = RetryRule::default();
        let answer = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &ApiError| rule.allows(e))
            .notify(|e: &ApiError, after: Duration| {
                self.stats.retried.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(target_id = %target, error = %e, retry_in_ms = after.as_millis() as u64, "recovery request failed, retrying");
            })
            .await;
        if answer.is_err() {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }
}
