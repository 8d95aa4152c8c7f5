//! What the job remembers between runs, in the sink's own store under `_state/`:
//! per-target cursors and incomplete slots (`cursors`), lost ranges (`gaps`), and the
//! lease that keeps one writer at a time (`lease`).

pub mod cursors;
pub mod gaps;
pub mod lease;

pub use cursors::{State, StateError, StateStore, TargetState};
pub use gaps::{GapError, GapLedger};
pub use lease::{Lease, LeaseError, LeaseOptions};
