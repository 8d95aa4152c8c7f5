//! What the job remembers between runs, in the sink's own store under `_state/`:
//! per-target cursors and incomplete slots (`cursors`), and the lease that keeps one
//! writer at a time (`lease`).

pub mod cursors;
pub mod lease;

pub use cursors::{State, StateError, StateStore, TargetState};
pub use lease::{Lease, LeaseError};
