//! One planned request, sent with pacing and retries. Each attempt re-checks the
//! horizon, so a request that waited in the queue is never rejected for starting too
//! far back: the part that fell out is reported as lost instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::api::limit::{Pacer, RetryPolicy, THROTTLE_PAUSE};
use crate::api::{ApiError, Client, QualityRequest, RetryRule};
use crate::clock::ApiClock;
use crate::domain::Target;
use crate::plan;
use crate::run::rows::Answer;

/// Request counters shared by every fetch of a run.
#[derive(Debug, Default)]
pub(crate) struct FetchStats {
    /// Attempts sent.
    pub(crate) sent: AtomicU64,
    /// Attempts that were retries.
    pub(crate) retried: AtomicU64,
    /// Answers that said we were too fast.
    pub(crate) throttled: AtomicU64,
    /// Requests that failed for good.
    pub(crate) failed: AtomicU64,
    /// Attempts in a row that got no answer at all (reset by any answer): past
    /// [`UNANSWERED_STOP`], the API is taken as unreachable and the run stops sending.
    pub(crate) unanswered_in_a_row: AtomicU64,
}

/// Attempts in a row without any answer after which no request is sent: at thousands
/// of targets, retrying each against an unreachable host would spend the run's whole
/// deadline and log a line per request.
pub(crate) const UNANSWERED_STOP: u64 = 6;

impl FetchStats {
    /// Sends one attempt: counts it and, when the answer says we were too fast, slows
    /// `pacer` down, so every request paced by it waits, not only this one.
    pub(crate) async fn attempt<T>(
        &self,
        pacer: &Pacer,
        send: impl Future<Output = Result<T, ApiError>>,
    ) -> Result<T, ApiError> {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let answer = send.await;
        if matches!(answer, Err(ApiError::Unreachable { .. })) {
            self.unanswered_in_a_row.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unanswered_in_a_row.store(0, Ordering::Relaxed);
        }
        if let Err(e) = &answer
            && e.is_throttle()
        {
            self.throttled.fetch_add(1, Ordering::Relaxed);
            pacer.back_off(THROTTLE_PAUSE).await;
        }
        answer
    }

    /// Whether so many attempts in a row got no answer that the API is unreachable.
    pub(crate) fn unreachable(&self) -> bool {
        self.unanswered_in_a_row.load(Ordering::Relaxed) >= UNANSWERED_STOP
    }
}

/// The outcome of one planned request.
#[derive(Debug)]
pub(crate) struct Fetched {
    /// Index into the plan's requests.
    pub(crate) request: usize,
    /// The start actually asked for (after any horizon cut at send time).
    pub(crate) start: DateTime<Utc>,
    /// The end the answer is taken up to: the planned end, or earlier when the API's
    /// clock has settled less (a host clock ahead of it).
    pub(crate) end: DateTime<Utc>,
    pub(crate) outcome: Outcome,
}

/// What came of one planned request.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The API answered.
    Answer(Answer),
    /// Everything it would have asked for fell out of the horizon: nothing was asked.
    Gone,
    /// On the API's clock nothing of it is settled yet: it waits for the next run.
    Unsettled,
    /// The run stopped (its deadline) before the request could be sent: it waits for
    /// the next run.
    Deferred,
    /// It failed for good.
    Failed(ApiError),
}

/// Why one attempt did not answer.
#[derive(Debug)]
enum AttemptError {
    Api(ApiError),
    Stopped,
}

/// What one attempt came to: the window asked (on the API's clock at that moment) and
/// the answer, if anything was left to ask.
struct Attempt {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    answer: Option<Answer>,
}

/// What every fetch of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct Fetcher {
    pub(crate) client: Client,
    pub(crate) pacer: Arc<Pacer>,
    pub(crate) policy: RetryPolicy,
    /// The API's clock: each attempt's window is cut to its horizon and settled end.
    pub(crate) api: Arc<ApiClock>,
    pub(crate) stats: Arc<FetchStats>,
    /// Turns true when the run stops sending (its deadline): requests not yet sent are
    /// deferred, not sent late.
    pub(crate) stop: tokio::sync::watch::Receiver<bool>,
}

impl Fetcher {
    /// Sends request `index` (the first attempt at the pacer turn `turn`, reserved in
    /// plan order by the caller) and retries it as the policy says.
    pub(crate) async fn fetch(
        &self,
        index: usize,
        target: &Target,
        req: &plan::Request,
        turn: tokio::time::Instant,
    ) -> Fetched {
        let turn = std::sync::Mutex::new(Some(turn));
        // The offset each attempt was planned with: a window refused for its time range
        // is asked once more when an answer since has shown the clock was off.
        let planned_offset = AtomicI64::new(self.api.offset().num_milliseconds());
        let attempt = || async {
            planned_offset.store(self.api.offset().num_milliseconds(), Ordering::Relaxed);
            let api_now = self.api.now();
            let start = req.start.max(plan::horizon_at(api_now));
            let end = req.end.min(plan::settled_at(api_now));
            if start >= end {
                return Ok(Attempt {
                    start,
                    end,
                    answer: None,
                });
            }
            let first = turn.lock().ok().and_then(|mut t| t.take());
            self.wait_turn(first).await?;
            let answer = self.send(&request_body(target, start, end)).await?;
            Ok(Attempt {
                start,
                end,
                answer: Some(answer),
            })
        };
        let mut rule = RetryRule::default();
        let mut clock_retried = false;
        let result = attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|e: &AttemptError| {
                let AttemptError::Api(e) = e else {
                    return false;
                };
                let replanned = planned_offset.load(Ordering::Relaxed)
                    != self.api.offset().num_milliseconds();
                if e.is_window() && replanned && !clock_retried {
                    clock_retried = true;
                    tracing::warn!(target_id = %target, error = %e, "window refused: the API's clock differs from this job's; asking again on the API's clock");
                    return true;
                }
                !(matches!(e, ApiError::Unreachable { .. }) && self.stats.unreachable())
                    && rule.allows(e)
            })
            .notify(|e: &AttemptError, after: Duration| {
                if let AttemptError::Api(e) = e {
                    self.stats.retried.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(target_id = %target, error = %e, retry_in_ms = after.as_millis() as u64, "request failed, retrying");
                }
            })
            .await;
        let (start, end, outcome) = match result {
            Ok(Attempt {
                start,
                end,
                answer: Some(r),
            }) => {
                // The answer's Date may have shown the API settled less than asked (a
                // lenient API answers a future window): only what it settled is kept.
                let end = end.min(plan::settled_at(self.api.now()));
                if start < end {
                    (start, end, Outcome::Answer(r))
                } else {
                    (start, end, Outcome::Unsettled)
                }
            }
            Ok(Attempt { start, end, .. }) if start >= req.end => (start, end, Outcome::Gone),
            Ok(Attempt { start, end, .. }) => (start, end, Outcome::Unsettled),
            Err(AttemptError::Stopped) => (req.start, req.end, Outcome::Deferred),
            Err(AttemptError::Api(e)) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                // The horizon at the last attempt: what is before it is gone either way.
                let asked = req.start.max(plan::horizon_at(self.api.now())).min(req.end);
                (asked, req.end, Outcome::Failed(e))
            }
        };
        Fetched {
            request: index,
            start,
            end,
            outcome,
        }
    }

    /// Waits for the attempt's pacer turn (the reserved one for a first attempt), unless
    /// the run stops sending first.
    async fn wait_turn(&self, first: Option<tokio::time::Instant>) -> Result<(), AttemptError> {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return Err(AttemptError::Stopped);
        }
        let wait = async {
            match first {
                Some(at) => tokio::time::sleep_until(at).await,
                None => self.pacer.acquire().await,
            }
        };
        tokio::select! {
            () = wait => Ok(()),
            _ = stop.wait_for(|s| *s) => Err(AttemptError::Stopped),
        }
    }

    /// Sends one attempt; a throttled answer slows every fetch of the run down.
    async fn send(&self, body: &QualityRequest) -> Result<Answer, AttemptError> {
        let send = self
            .client
            .list_real_time_quality_with(body, Answer::from_ref);
        self.stats
            .attempt(&self.pacer, send)
            .await
            .map_err(AttemptError::Api)
    }
}

/// The body asking for `target`'s data in `[start, end)`.
pub(crate) fn request_body(
    target: &Target,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> QualityRequest {
    QualityRequest {
        app_id: target.app_id.clone(),
        start_time: start.to_rfc3339_opts(SecondsFormat::Secs, true),
        end_time: end.to_rfc3339_opts(SecondsFormat::Secs, true),
        indicator: target.indicators.to_vec(),
        room_id: target.room_id.clone(),
        user_id: target.user_id.iter().cloned().collect(),
        product_type: Some(target.product_type.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::clock::Clock;
    use crate::run::fixtures::{fetcher, t0};
    use rtcq_emulator::{self as emulator, EmulatorConfig};

    #[tokio::test]
    async fn a_window_refused_for_its_time_after_the_clock_moved_is_asked_again_once_on_the_api_clock()
     {
        // A strict API at t0; the job's clock 3 minutes ahead and its offset not yet
        // known (no clock read): the first window ends past the API's now.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let emu = emulator::spawn(
            listener,
            EmulatorConfig {
                now: Some(t0()),
                requests_per_second: None,
                refuse_future_end: true,
                ..EmulatorConfig::default()
            },
        )
        .await
        .unwrap();
        let (f, _stop) = fetcher(
            &emu.url(),
            100.0,
            Clock::at(Some(t0() + TimeDelta::minutes(3))),
        );
        let target = Target {
            app_id: "app-a".into(),
            product_type: crate::domain::ProductType::Native,
            room_id: None,
            user_id: None,
            indicators: vec!["stall_rate".to_string()].into(),
            max_lag: None,
        };
        let job_settled = plan::settled_at(t0() + TimeDelta::minutes(3));
        let req = plan::Request {
            target: 0,
            start: job_settled - TimeDelta::minutes(10),
            end: job_settled,
            due: t0(),
            first: false,
        };
        let got = f.fetch(0, &target, &req, tokio::time::Instant::now()).await;
        assert!(
            matches!(got.outcome, Outcome::Answer(_)),
            "{:?}",
            got.outcome
        );
        assert_eq!(
            got.end,
            plan::settled_at(t0()),
            "cut to the API's settled end"
        );
        let stats = emu.stats();
        assert_eq!(stats.status(400), 1, "one refusal: {stats:?}");
        assert_eq!(stats.status(200), 1, "then one answer: {stats:?}");
        assert_eq!(f.stats.retried.load(Ordering::Relaxed), 1);
    }
}
