//! Why the sink failed. Every variant names the URL, object path or file it was working
//! on, and the cause. Nothing here ever holds a credential: URLs are shown with any
//! user-info part removed (see [`super::store::redact`]).

use std::path::PathBuf;

/// Where rtcq (through object_store) looks for S3 credentials, in order: said in every
/// credentials error so the user knows what to set.
pub(crate) const CREDENTIAL_CHAIN: &str = "AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), then a web identity (AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN, as EKS sets), then container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, as ECS sets), then the instance metadata service (unless AWS_EC2_METADATA_DISABLED=true); profiles in ~/.aws are not read";

/// A failure of the sink: opening the store, encoding, decoding, reading or writing a file.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Rows could not be spilled to, read back from, or cleared from the local disk.
    #[error("spilling rows to {path}: {source}")]
    Spill {
        /// The spill directory or file on local disk.
        path: String,
        /// The operating system's error.
        source: std::io::Error,
    },

    /// The `[sink] url` cannot be used.
    #[error("sink url {url:?}: {reason}")]
    Url {
        /// The sink URL as configured, with any user-info (credentials) part removed.
        url: String,
        /// What is wrong with it, in words the user can act on.
        reason: String,
    },

    /// An S3 sink has no usable credentials: a config error (exit 2), checked before the
    /// first read or write.
    #[error(
        "no usable credentials for the S3 sink (bucket {bucket:?}): {reason}. rtcq looks for them in {}",
        CREDENTIAL_CHAIN
    )]
    Credentials {
        /// The bucket the sink writes to.
        bucket: String,
        /// Which source was tried and what it said, or why none can be.
        reason: String,
    },

    /// The local sink directory cannot be created or resolved.
    #[error("sink directory {}: cannot {action}: {source}", path.display())]
    LocalDir {
        /// The local directory the sink URL points at.
        path: PathBuf,
        /// The step that failed, as a verb phrase ("create the directory").
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The pipeline name cannot be used in file names (`reason` names it and the rule).
    #[error("{reason}")]
    PipelineName {
        /// The pipeline name as given in the config.
        name: String,
        /// Which naming rule it breaks; this is the whole error message.
        reason: String,
    },

    /// Rows could not be turned into Parquet.
    #[error("encoding {what}: {reason}")]
    Encode {
        /// The slot file being built, named by slot start and pipeline.
        what: String,
        /// The Parquet or Arrow step that failed, and why.
        reason: String,
    },

    /// A Parquet file could not be turned back into rows.
    #[error("decoding {path}: {reason}")]
    Decode {
        /// The object key of the unreadable file, as the user would look it up.
        path: String,
        /// Why its contents are not a usable rtcq slot file.
        reason: String,
    },

    /// A slot file was written by a different schema version.
    #[error(
        "{path}: written with rtcq schema version {found}, this rtcq reads versions up to {expected}: \
         upgrade rtcq, or move the file out of the dataset"
    )]
    SchemaVersion {
        /// The object key of the slot file.
        path: String,
        /// The `rtcq.schema_version` recorded in the file's metadata.
        found: String,
        /// The newest schema version this build reads (and the one it writes).
        expected: &'static str,
    },

    /// Reading an object failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The object key that could not be read, as the user would look it up.
        path: String,
        /// The store's error (permissions, network, …).
        #[source]
        source: object_store::Error,
    },

    /// Writing, renaming or deleting an object failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The object key that could not be written, as the user would look it up.
        path: String,
        /// The store's error (permissions, network, …).
        #[source]
        source: object_store::Error,
    },

    /// Finishing an upload failed (the upload was aborted).
    #[error("writing {path}: {source}")]
    Upload {
        /// The object key whose upload was aborted; nothing was written under it.
        path: String,
        /// Why the upload could not be completed.
        #[source]
        source: std::io::Error,
    },

    /// A local file-system step (fsync, listing, removing) failed.
    #[error("{} {}: {source}", action, path.display())]
    Io {
        /// The local file or directory the step was applied to.
        path: PathBuf,
        /// The step that failed, as it reads in the message ("fsync of file", "listing", …).
        action: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// A blocking task was cancelled or panicked.
    #[error("{what}: background task failed: {reason}")]
    Task {
        /// The work the task was doing (an fsync, the sweep of temporary files).
        what: String,
        /// Why the task ended: cancelled, or its panic message.
        reason: String,
    },
}

impl SinkError {
    /// Whether the user fixes this in the config or environment (the URL, the name,
    /// credentials) rather than in the store.
    pub fn is_config(&self) -> bool {
        matches!(
            self,
            SinkError::Url { .. } | SinkError::PipelineName { .. } | SinkError::Credentials { .. }
        )
    }
}
