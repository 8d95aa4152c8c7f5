//! Sending the plan's requests, earliest due first: several in flight, paced by the
//! fetcher, answers taken in as they come, progress written every
//! [`CHECKPOINT_EVERY`], and a stop at the run's deadline that keeps what was fetched.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tracing::Instrument;

use super::Runner;
use crate::api::ApiError;
use crate::run::fetch::UNANSWERED_STOP;
use crate::run::{Fetched, Fetcher, Outcome, RunError};

/// How often the rows fetched so far are written and the state saved: a run that
/// crashes loses at most this much fetching, and the targets served first (the most
/// urgent) are safe early.
pub(super) const CHECKPOINT_EVERY: Duration = Duration::from_secs(60);

/// How long answers to requests already sent are awaited after the deadline: they were
/// paid for with the rate, so they are kept when they come back in time.
const GRACE: Duration = Duration::from_secs(10);

impl Runner<'_> {
    /// Sends the requests in order until all are answered or `deadline` passes, taking
    /// each answer in as it comes. Returns whether the deadline cut the run short.
    pub(crate) async fn fetch_all(
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
        // Answers taken in, whatever their outcome: the requests not among them wait.
        let mut taken = 0;
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
            if let Outcome::Failed(e) = &f.outcome {
                if e.stops_everything() {
                    let _ = stop_sending.send(true);
                } else if matches!(e, ApiError::Unreachable { .. })
                    && fetcher.stats.unreachable()
                    && !self.tally.unreachable
                {
                    self.tally.unreachable = true;
                    let _ = stop_sending.send(true);
                    tracing::error!(error = %e, "{UNANSWERED_STOP} requests in a row got no answer: stopped sending; what was fetched is written, the rest waits for the next run");
                    self.tally.errors.push(format!(
                        "{e}; stopped after {UNANSWERED_STOP} requests in a row got no answer"
                    ));
                }
            }
            self.take(f)?;
            taken += 1;
            self.bar.request_done();
            if self.intake.store.over_budget() {
                self.intake.spill()?;
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
        let targets = self.targets.clone();
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::run::fixtures::{Fixture, NOWHERE, TARGETS, at, emulator_at, fetcher, t0};

    #[tokio::test(start_paused = true)]
    async fn with_the_deadline_already_reached_nothing_is_sent_and_every_request_is_deferred() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        f.save_state(&[(0, at("11:30:00"))]).await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        assert_eq!(runner.requests.len(), 3);
        // A room scan failed before the fetching: it is not a request taken.
        runner.tally.failed = 1;
        let (fetcher, stop) = fetcher(NOWHERE, 2.0, opts.clock);
        let mut stopped = fetcher.stop.clone();

        let deadline_reached = runner
            .fetch_all(&fetcher, stop, Some(Instant::now()))
            .await
            .unwrap();

        assert!(deadline_reached);
        assert!(
            *stopped.borrow_and_update(),
            "the fetches were told to stop"
        );
        assert_eq!(fetcher.stats.sent.load(Ordering::Relaxed), 0);
        assert_eq!(fetcher.stats.failed.load(Ordering::Relaxed), 0);
        let t = &runner.tally;
        assert_eq!((t.answered, t.failed, t.deferred), (0, 1, 3));
        assert!(runner.intake.answered.is_empty());
        assert!(runner.intake.slots.is_empty());
        // Nothing moved: the next run owes what this one did.
        assert_eq!(runner.progress[0].cursor, Some(at("11:30:00")));
        assert!(runner.progress[1].is_new() && runner.progress[2].is_new());
    }

    #[tokio::test]
    async fn with_the_emulator_every_planned_request_is_answered_once() {
        let emu = emulator_at(t0()).await;
        let f = Fixture::new(&emu.url(), 1000.0, TARGETS);
        f.save_state(&[(0, at("11:30:00")), (1, at("11:45:00"))])
            .await;
        let opts = f.opts();
        let (mut runner, _lease) = f.runner(&opts).await;
        let (fetcher, stop) = fetcher(&emu.url(), 1000.0, opts.clock);

        let deadline_reached = runner.fetch_all(&fetcher, stop, None).await.unwrap();

        assert!(!deadline_reached);
        let s = &fetcher.stats;
        assert_eq!(s.sent.load(Ordering::Relaxed), 3);
        assert_eq!(s.retried.load(Ordering::Relaxed), 0);
        assert_eq!(s.failed.load(Ordering::Relaxed), 0);
        let stats = emu.stats();
        assert_eq!(stats.requests, 3);
        assert_eq!(stats.status(200), 3);
        let t = &runner.tally;
        assert_eq!((t.answered, t.failed, t.deferred), (3, 0, 0));
        assert!(t.errors.is_empty(), "{:?}", t.errors);
        // Each target answered once, over exactly the range it owed.
        let mut answered: Vec<_> = runner
            .intake
            .answered
            .iter()
            .map(|a| (a.target, a.start, a.end))
            .collect();
        answered.sort();
        assert_eq!(
            answered,
            vec![
                (0, at("11:30:00"), at("11:59:00")),
                (1, at("11:45:00"), at("11:59:00")),
                (2, at("11:01:00"), at("11:59:00")),
            ]
        );
        // Rows wait in their slots for the flush: app-a's slots from 11:30, app-b's from
        // 11:00.
        let mut slots: Vec<_> = runner
            .intake
            .slots
            .keys()
            .map(|(app, start, _)| (app.clone(), start.format("%H%M").to_string()))
            .collect();
        slots.sort();
        let want: Vec<(String, String)> = ["1130", "1135", "1140", "1145", "1150", "1155"]
            .iter()
            .map(|s| ("app-a".to_string(), s.to_string()))
            .chain(
                [
                    "1100", "1105", "1110", "1115", "1120", "1125", "1130", "1135", "1140", "1145",
                    "1150", "1155",
                ]
                .iter()
                .map(|s| ("app-b".to_string(), s.to_string())),
            )
            .collect();
        assert_eq!(slots, want);
    }
}
