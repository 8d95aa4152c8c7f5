//! The checkpoint: where a run's work becomes durable. It holds the sink, the state
//! store and the two ledgers, what waits to be recorded in them, and the lease flag
//! that forbids any write once another run took the pipeline over (docs/design.md,
//! "Idempotency").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::Tally;
use crate::domain::{Gap, LostRange};
use crate::recovery::Recovery;
use crate::run::RunError;
use crate::sink::Sink;
use crate::state::{GapLedger, Lease, LeaseError, RecoveryLedger, State, StateStore};

/// The stores a run writes to, and what waits to be written.
pub(super) struct Checkpoint {
    pub(super) sink: Sink,
    state_store: StateStore,
    pub(super) ledger: GapLedger,
    pub(super) recoveries: RecoveryLedger,
    /// Set when the lease was found taken over: nothing more may be saved.
    pub(super) lease_lost: Arc<AtomicBool>,
    lease_location: String,
    /// Losses found, waiting for the gap ledger.
    pub(super) gaps_pending: Vec<Gap>,
    /// Recovered ranges whose rows wait for the next flush, recorded after it.
    pub(super) recovered_pending: Vec<Recovery>,
}

impl Checkpoint {
    pub(super) fn new(
        sink: Sink,
        state_store: StateStore,
        ledger: GapLedger,
        recoveries: RecoveryLedger,
        lease: &Lease,
        gaps_pending: Vec<Gap>,
    ) -> Self {
        Checkpoint {
            sink,
            state_store,
            ledger,
            recoveries,
            lease_lost: lease.lost_flag(),
            lease_location: lease.location(),
            gaps_pending,
            recovered_pending: Vec::new(),
        }
    }

    /// Fails once the lease is known to be lost.
    pub(super) fn check_lease(&self) -> Result<(), RunError> {
        if self.lease_lost.load(Ordering::SeqCst) {
            return Err(LeaseError::Lost {
                path: self.lease_location.clone(),
            }
            .into());
        }
        Ok(())
    }

    /// Appends the losses queued so far to the gap ledger, once each.
    pub(super) async fn flush_gaps(&mut self, tally: &mut Tally) -> Result<(), RunError> {
        if self.gaps_pending.is_empty() {
            return Ok(());
        }
        self.check_lease()?;
        let pending = std::mem::take(&mut self.gaps_pending);
        let added = self.ledger.append(&pending).await?;
        for g in &added {
            tracing::warn!(target_id = %g.label(), start = %crate::clock::rfc(g.start), end = %crate::clock::rfc(g.end), "lost: {}", g.reason);
            tally.lost.push(LostRange::from(g));
        }
        tally.gaps_recorded += added.len();
        Ok(())
    }

    /// Records the recovered ranges whose rows the files now hold.
    pub(super) async fn record_recoveries(&mut self, tally: &mut Tally) -> Result<(), RunError> {
        if self.recovered_pending.is_empty() {
            return Ok(());
        }
        self.check_lease()?;
        let pending = std::mem::take(&mut self.recovered_pending);
        let added = self.recoveries.append(&pending).await?;
        let history = added.iter().filter(|r| r.history).count();
        tally.recovery.recovered += added.len() - history;
        tally.recovery.history_recovered += history;
        Ok(())
    }

    /// Saves the gaps, then the state (data first, state after: the caller wrote the
    /// files the state covers).
    pub(super) async fn save_state(
        &mut self,
        state: State,
        tally: &mut Tally,
    ) -> Result<(), RunError> {
        self.check_lease()?;
        self.flush_gaps(tally).await?;
        self.state_store.save(&state).await?;
        Ok(())
    }
}
