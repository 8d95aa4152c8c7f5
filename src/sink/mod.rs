//! Rows to Parquet to object store: one file per (app, slot).

pub mod row;

pub use row::Row;
