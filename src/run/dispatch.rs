//! Sending the plan's requests, earliest due first: several in flight, paced by the
//! fetcher, answers taken in as they come, progress written every
//! [`CHECKPOINT_EVERY`], and a stop at the run's deadline that keeps what was fetched.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::runner::Runner;
use super::{Fetched, Fetcher, Outcome, RunError};
use crate::api::ApiError;

/// How often the rows fetched so far are written and the state saved: a run that
/// crashes loses at most this much fetching, and the targets served first (the most
/// urgent) are safe early.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// How long answers to requests already sent are awaited after the deadline: they were
/// paid for with the rate, so they are kept when they come back in time.
const GRACE: Duration = Duration::from_secs(10);

/// Whether an API error means no other request can succeed either.
fn stops_everything(e: &ApiError) -> bool {
    matches!(
        e.code(),
        Some(
            "SignatureDoesNotMatch"
                | "InvalidAccessKey"
                | "InvalidTimestamp"
                | "MissingRequestInfo"
                | "InvalidActionOrVersion"
                | "AccessDenied"
                | "AccessDenied.ServiceNotEnabled"
        )
    )
}

impl Runner<'_> {
    /// Sends the requests in order until all are answered or `deadline` passes, taking
    /// each answer in as it comes. Returns whether the deadline cut the run short.
    pub async fn fetch_all(
        &mut self,
        fetcher: &Fetcher,
        stop_sending: watch::Sender<bool>,
        deadline: Option<Instant>,
    ) -> Result<bool, RunError> {
        let in_flight =
            ((self.pipeline.api.requests_per_second * 8.0).ceil() as usize).clamp(4, 64);
        // Answers waiting for the runner are parsed (about 100 KiB each): a short queue,
        // so a runner slower than the network holds back the fetches instead of
        // buffering answers.
        let (tx, mut rx) = mpsc::channel::<Fetched>(in_flight.min(8));
        let dispatcher = self.spawn_dispatcher(fetcher, in_flight, tx);
        let mut last_checkpoint = Instant::now();
        let mut deadline_reached = false;
        let mut give_up: Option<Instant> = None;
        loop {
            let next = tokio::select! {
                f = rx.recv() => f,
                () = sleep_until(deadline), if !deadline_reached => {
                    deadline_reached = true;
                    let _ = stop_sending.send(true);
                    give_up = Some(Instant::now() + GRACE);
                    tracing::warn!("run deadline reached: writing what was fetched, the rest waits for the next run");
                    continue;
                }
                () = sleep_until(give_up) => None,
            };
            let Some(f) = next else { break };
            if let Outcome::Failed(e) = &f.outcome
                && stops_everything(e)
            {
                let _ = stop_sending.send(true);
            }
            self.take(f)?;
            self.bar.request_done();
            if self.store.over_budget() {
                self.spill()?;
            }
            if last_checkpoint.elapsed() >= CHECKPOINT_EVERY {
                self.flush().await?;
                last_checkpoint = Instant::now();
            }
        }
        // Requests never handed out, or still in flight when the grace ran out, wait
        // for the next run.
        dispatcher.abort();
        let _ = dispatcher.await;
        let taken = self.tally.answered + self.tally.failed + self.tally.deferred;
        self.tally.deferred += self.requests.len().saturating_sub(taken);
        Ok(deadline_reached)
    }

    /// Hands the requests out in order, at most `in_flight` at once; stops handing out
    /// once the run stops sending (its deadline, or an answer that says no request can
    /// succeed).
    fn spawn_dispatcher(
        &self,
        fetcher: &Fetcher,
        in_flight: usize,
        tx: mpsc::Sender<Fetched>,
    ) -> tokio::task::JoinHandle<()> {
        let requests = self.requests.clone();
        let targets = self.pipeline.targets.clone();
        let fetcher = fetcher.clone();
        tokio::spawn(
            async move {
                let permits = Arc::new(Semaphore::new(in_flight));
                let mut tasks = JoinSet::new();
                for i in 0..requests.len() {
                    let Ok(permit) = permits.clone().acquire_owned().await else {
                        break;
                    };
                    if *fetcher.stop.borrow() {
                        break;
                    }
                    // Turns are taken here, in plan order: the earliest due is sent first
                    // however the tasks below are scheduled.
                    let turn = fetcher.pacer.reserve().await;
                    let (fetcher, requests, targets, tx) = (
                        fetcher.clone(),
                        requests.clone(),
                        targets.clone(),
                        tx.clone(),
                    );
                    tasks.spawn(
                        async move {
                            let req = &requests[i];
                            let f = fetcher.fetch(i, &targets[req.target], req, turn).await;
                            // The permit is held until the runner has the answer:
                            // released before, answers of a fast API would pile up in
                            // memory behind a slower runner.
                            let _ = tx.send(f).await;
                            drop(permit);
                        }
                        .in_current_span(),
                    );
                    while tasks.try_join_next().is_some() {}
                }
                drop(tx);
                while tasks.join_next().await.is_some() {}
            }
            .in_current_span(),
        )
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
