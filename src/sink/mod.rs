//! Rows to Parquet to object store: one file per (app, slot).
//!
//! - [`store`] turns the `[sink] url` into an object store and a root prefix;
//! - [`partition`] escapes partition values and names each slot file;
//! - `encode` turns rows into Parquet bytes and back;
//! - `writer` reads and atomically writes slot files (`Sink`), and `oldest` finds an
//!   app's oldest slot file from names alone;
//! - `error` is the one error type of all of them;
//! - [`buffer`] holds a run's rows until they are written, spilling to disk past a
//!   budget, and [`slot_file`] rewrites one slot file with them.

pub mod buffer;
pub(crate) mod encode;
pub(crate) mod error;
mod oldest;
pub mod partition;
pub mod row;
pub mod slot_file;
pub mod store;
pub(crate) mod writer;

pub use encode::{FileMeta, SlotEncoder, decode_each, schema};
pub use error::SinkError;
pub use partition::slot_path;
pub use row::{REAL_TIME_INTERVAL, RECOVERED_INTERVAL, Row, RowRef};
pub use store::{SinkRoot, StoreOptions, open};
pub use writer::{Sink, WrittenFile};

/// Runs CPU-bound work (encoding, spilling) on the caller's task without stalling the
/// other tasks of a multi-threaded runtime.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
