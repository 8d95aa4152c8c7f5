//! Rows to Parquet to object store: one file per (app, slot).
//!
//! - [`store`] turns the `[sink] url` into an object store and a root prefix;
//! - [`partition`] escapes partition values and names each slot file;
//! - `encode` turns rows into Parquet bytes and back;
//! - `writer` reads and atomically writes slot files (`Sink`);
//! - `error` is the one error type of all of them.

pub(crate) mod encode;
pub(crate) mod error;
pub mod partition;
pub mod row;
pub mod store;
pub(crate) mod writer;

pub use encode::{FileMeta, SlotEncoder, decode_each, schema};
pub use error::SinkError;
pub use partition::slot_path;
pub use row::{REAL_TIME_INTERVAL, RECOVERED_INTERVAL, Row, RowRef};
pub use store::{SinkRoot, StoreOptions, open};
pub use writer::{Sink, WrittenFile};
