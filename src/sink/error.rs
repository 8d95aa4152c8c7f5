//! Why the sink failed. Every variant names the URL, object path or file it was working
//! on, and the cause. Nothing here ever holds a credential: URLs are shown with any
//! user-info part removed (see [`super::store::redact`]).

use std::path::PathBuf;

/// A failure of the sink: opening the store, encoding, decoding, reading or writing a file.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The `[sink] url` cannot be used.
    #[error("sink url {url:?}: {reason}")]
    Url { url: String, reason: String },

    /// The local sink directory cannot be created or resolved.
    #[error("sink directory {}: cannot {action}: {source}", path.display())]
    LocalDir {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// The pipeline name cannot be used in file names (`reason` names it and the rule).
    #[error("{reason}")]
    PipelineName { name: String, reason: String },

    /// Rows could not be turned into Parquet.
    #[error("encoding {what}: {reason}")]
    Encode { what: String, reason: String },

    /// A Parquet file could not be turned back into rows.
    #[error("decoding {path}: {reason}")]
    Decode { path: String, reason: String },

    /// A slot file was written by a different schema version.
    #[error(
        "{path}: written with rtcq schema version {found}, this rtcq reads version {expected}: \
         upgrade rtcq, or move the file out of the dataset"
    )]
    SchemaVersion {
        path: String,
        found: String,
        expected: &'static str,
    },

    /// Reading an object failed.
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// Writing, renaming or deleting an object failed.
    #[error("writing {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: object_store::Error,
    },

    /// Finishing an upload failed (the upload was aborted).
    #[error("writing {path}: {source}")]
    Upload {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// A local file-system step (fsync, listing, removing) failed.
    #[error("{} {}: {source}", action, path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    /// A blocking task was cancelled or panicked.
    #[error("{what}: background task failed: {reason}")]
    Task { what: String, reason: String },
}
