//! What the job remembers between runs, in the sink's own store under `_state/`:
//! per-target cursors and incomplete slots (`cursors`), lost and recovered ranges
//! (`gaps`), the lease that keeps one writer at a time (`lease`), and what the last
//! run did (`last_run`, for `status`).

pub(crate) mod cursors;
pub(crate) mod gaps;
pub(crate) mod last_run;
pub(crate) mod lease;

pub use cursors::StateError;
pub(crate) use cursors::{State, StateStore, TargetState};
pub use gaps::GapError;
pub(crate) use gaps::{GapLedger, RecoveryLedger};
pub use lease::LeaseError;
pub(crate) use lease::{Lease, LeaseOptions};
