//! Reads and writes whole slot files, atomically (docs/design.md, "Idempotency and crash
//! safety").
//!
//! - Local: the file is first written as `.<pipeline>-<HHMM>.parquet.tmp-<pid>-<n>` in its
//!   final directory (the store flushes it before publishing it under that name), renamed
//!   over the final name, and then the file and its directory are fsynced. The temporary
//!   name starts with `.` and does not end in `.parquet`, so Spark, Hive, DuckDB globs and
//!   pyarrow never read it; the store's own staging files (`<name>#<k>`) inherit the `.`.
//!   A crash leaves at most such hidden files, which [`Sink::sweep_temp_files`] removes.
//! - S3: the final key is written with one `BufWriter` (a single PUT under 10 MiB,
//!   multipart above), aborted on error, so an object is either whole or absent.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;

use super::encode::FileMeta;
use super::error::SinkError;
use super::partition::{self, EXTENSION};
use super::store::SinkRoot;
use crate::plan::Slot;

/// Numbers temporary files within this process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// One slot file as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The object key, e.g. `app_id=demo/date=2026-11-25/demo-2355.parquet`.
    pub path: String,
    /// Rows in the file, after removing duplicates.
    pub rows: usize,
    /// File size in bytes.
    pub bytes: usize,
}

/// The dataset of one pipeline: reads and writes its slot files.
#[derive(Debug)]
pub struct Sink {
    root: SinkRoot,
    pipeline: String,
}

impl Sink {
    /// A sink writing files named after `pipeline`. The name must be 1 to 64 characters of
    /// `a-z`, `0-9`, `_`, `-`, starting with a letter or digit (a leading `_` or `.` would
    /// hide the files from Spark).
    pub fn new(root: SinkRoot, pipeline: &str) -> Result<Self, SinkError> {
        crate::domain::PipelineName::parse(pipeline).map_err(|reason| SinkError::PipelineName {
            name: pipeline.to_string(),
            reason,
        })?;
        Ok(Sink {
            root,
            pipeline: pipeline.to_string(),
        })
    }

    /// The store, shared with the `state` module for `_state/` files.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        self.root.store()
    }

    /// The pipeline whose files these are.
    pub(crate) fn pipeline(&self) -> &str {
        &self.pipeline
    }

    /// The dataset root inside [`Sink::store`].
    pub fn root(&self) -> &Path {
        self.root.root()
    }

    /// The opened sink (URL, local directory).
    pub fn sink_root(&self) -> &SinkRoot {
        &self.root
    }

    /// The key of the file of `app_id` and `slot`.
    pub fn slot_path(&self, app_id: &str, slot: &Slot) -> Path {
        partition::slot_path(self.root.root(), app_id, slot, &self.pipeline)
    }

    /// The bytes of an existing slot file and its key, or `None` if there is none.
    pub async fn read_slot_bytes(
        &self,
        app_id: &str,
        slot: &Slot,
    ) -> Result<Option<(Bytes, String)>, SinkError> {
        let path = self.slot_path(app_id, slot);
        let read_err = |source| SinkError::Read {
            path: path.to_string(),
            source,
        };
        match self.root.store().get(&path).await {
            Ok(got) => Ok(Some((
                got.bytes().await.map_err(read_err)?,
                path.to_string(),
            ))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(read_err(e)),
        }
    }

    /// What the slot file of `slot` says about itself.
    pub fn file_meta(&self, slot: &Slot) -> FileMeta {
        FileMeta {
            pipeline: self.pipeline.clone(),
            slot: *slot,
        }
    }

    /// Publishes a slot file encoded by the caller (a [`SlotEncoder`] of `n_rows` rows),
    /// replacing any existing file as one atomic step.
    ///
    /// [`SlotEncoder`]: super::SlotEncoder
    pub async fn write_slot_bytes(
        &self,
        app_id: &str,
        slot: &Slot,
        bytes: Bytes,
        n_rows: usize,
    ) -> Result<WrittenFile, SinkError> {
        let dir = partition::slot_dir(self.root.root(), app_id, slot);
        let path = partition::push(dir.clone(), &partition::file_name(&self.pipeline, slot));
        let size = bytes.len();
        if self.root.is_local() {
            self.publish_local(dir, &path, slot, bytes).await?;
        } else {
            self.publish_remote(&path, bytes).await?;
        }
        Ok(WrittenFile {
            path: path.to_string(),
            rows: n_rows,
            bytes: size,
        })
    }

    async fn publish_local(
        &self,
        dir: Path,
        path: &Path,
        slot: &Slot,
        bytes: Bytes,
    ) -> Result<(), SinkError> {
        let store = self.root.store();
        let temp_name = format!(
            ".{}.tmp-{}-{}",
            partition::file_name(&self.pipeline, slot),
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let temp = partition::push(dir, &temp_name);
        let write_err = |at: &Path| {
            let at = at.to_string();
            move |source| SinkError::Write { path: at, source }
        };
        store
            .put(&temp, bytes.into())
            .await
            .map_err(write_err(&temp))?;
        if let Err(e) = store.rename(&temp, path).await {
            // Best effort: the temp file is hidden anyway and swept at the next start.
            let _ = store.delete(&temp).await;
            return Err(write_err(path)(e));
        }
        let file = self.root.local_path(path).ok_or_else(|| SinkError::Io {
            path: PathBuf::from(path.as_ref()),
            action: "locating",
            source: std::io::Error::other("no file-system path for this key"),
        })?;
        tokio::task::spawn_blocking(move || fsync_file_and_dir(&file))
            .await
            .map_err(|e| SinkError::Task {
                what: format!("fsync of {path}"),
                reason: e.to_string(),
            })?
    }

    async fn publish_remote(&self, path: &Path, bytes: Bytes) -> Result<(), SinkError> {
        let write_err = |source| SinkError::Write {
            path: path.to_string(),
            source,
        };
        let mut w = BufWriter::new(self.root.store(), path.clone());
        if let Err(e) = w.put(bytes).await {
            // Removes any started multipart upload: nothing partial becomes visible.
            let _ = w.abort().await;
            return Err(write_err(e));
        }
        // On failure here the upload has already been aborted by the writer itself.
        w.shutdown().await.map_err(|source| SinkError::Upload {
            path: path.to_string(),
            source,
        })
    }

    /// Removes this pipeline's leftover temporary and staging files under
    /// `<root>/app_id=*/date=*/`, as a crash may leave them. Local roots only (S3 writes
    /// leave nothing behind); returns how many files were removed. Call it while holding
    /// the pipeline's lease: it would break a concurrent write of the same pipeline.
    pub async fn sweep_temp_files(&self) -> Result<usize, SinkError> {
        let Some(dir) = self.root.local_dir().map(|d| d.to_path_buf()) else {
            return Ok(0);
        };
        let pipeline = self.pipeline.clone();
        tokio::task::spawn_blocking(move || sweep(&dir, &pipeline))
            .await
            .map_err(|e| SinkError::Task {
                what: "sweeping temporary files".into(),
                reason: e.to_string(),
            })?
    }
}

/// The error of `action` on `path`, for `map_err`.
fn io(path: &std::path::Path, action: &'static str) -> impl FnOnce(std::io::Error) -> SinkError {
    let path = path.to_path_buf();
    move |source| SinkError::Io {
        path,
        action,
        source,
    }
}

fn fsync_file_and_dir(file: &std::path::Path) -> Result<(), SinkError> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(io(file, "fsync of file"))?;
    if let Some(dir) = file.parent() {
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .map_err(io(dir, "fsync of directory"))?;
    }
    Ok(())
}

/// Whether `name` is a leftover of `pipeline`: our temporary file
/// `.<pipeline>-<HHMM>.parquet.tmp-…` (or `-history` for `<HHMM>`) (and the store's `#<k>` staging copies of it), or a
/// staging copy `<pipeline>-<HHMM>.parquet#<k>` of a final file.
pub(crate) fn is_leftover(name: &str, pipeline: &str) -> bool {
    let (hidden, rest) = match name.strip_prefix('.') {
        Some(r) => (true, r),
        None => (false, name),
    };
    let Some(rest) = rest
        .strip_prefix(pipeline)
        .and_then(|r| r.strip_prefix('-'))
    else {
        return false;
    };
    let rest = match rest.strip_prefix(partition::HISTORY_STEM) {
        Some(rest) => rest,
        None => {
            let (hhmm, rest) = rest.split_at_checked(4).unwrap_or(("", ""));
            if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
                return false;
            }
            rest
        }
    };
    let Some(rest) = rest.strip_prefix(EXTENSION) else {
        return false;
    };
    if hidden {
        rest.starts_with(".tmp-")
    } else {
        rest.strip_prefix('#')
            .is_some_and(|k| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
    }
}

fn sweep(root: &std::path::Path, pipeline: &str) -> Result<usize, SinkError> {
    let subdirs = |dir: &std::path::Path, prefix: &str| -> Result<Vec<PathBuf>, SinkError> {
        let mut out = Vec::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(dir, "listing")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(dir, "listing"))?;
            let is_dir = entry
                .file_type()
                .map_err(io(&entry.path(), "inspecting"))?
                .is_dir();
            if is_dir && entry.file_name().to_string_lossy().starts_with(prefix) {
                out.push(entry.path());
            }
        }
        Ok(out)
    };
    let mut removed = 0;
    for app_dir in subdirs(root, "app_id=")? {
        for date_dir in subdirs(&app_dir, "date=")? {
            let entries = std::fs::read_dir(&date_dir).map_err(io(&date_dir, "listing"))?;
            for entry in entries {
                let entry = entry.map_err(io(&date_dir, "listing"))?;
                let name = entry.file_name();
                let Some(name) = name.to_str() else { continue };
                if !is_leftover(name, pipeline) {
                    continue;
                }
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io(&entry.path(), "removing")(e)),
                }
            }
        }
    }
    // The store's staging copies of this pipeline's state and ledgers, left by a
    // process killed while saving them.
    let gaps = root.join("_state").join("gaps");
    for (dir, file) in [
        (root.join("_state"), format!("{pipeline}.json")),
        (gaps.clone(), format!("{pipeline}.jsonl")),
        (gaps, crate::recovery::recovered_file(pipeline)),
    ] {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&dir, "listing")(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io(&dir, "listing"))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_staging_copy(name, &file) {
                continue;
            }
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&entry.path(), "removing")(e)),
            }
        }
    }
    Ok(removed)
}

/// Whether `name` is `<file>#<digits>`, the object store's staging name for `file`.
fn is_staging_copy(name: &str, file: &str) -> bool {
    name.strip_prefix(file)
        .and_then(|rest| rest.strip_prefix('#'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_staging_copies() {
        assert!(is_staging_copy("demo.json#3", "demo.json"));
        assert!(is_staging_copy("demo.jsonl#12", "demo.jsonl"));
        assert!(!is_staging_copy("demo.json", "demo.json"));
        assert!(!is_staging_copy("demo.json#", "demo.json"));
        assert!(!is_staging_copy("demo.json#1x", "demo.json"));
        assert!(!is_staging_copy("demo2.json#1", "demo.json"));
        assert!(!is_staging_copy("other.json#1", "demo.json"));
    }

    #[test]
    fn leftover_names() {
        let yes = [
            ".demo-2355.parquet.tmp-123-0",
            ".demo-2355.parquet.tmp-123-0#7",
            "demo-0000.parquet#12",
            ".demo-history.parquet.tmp-9-1",
            "demo-history.parquet#3",
        ];
        let no = [
            "demo-2355.parquet",
            ".demo-2355.parquet",
            "demo-2355.parquet#",
            "demo-2355.parquet#x1",
            ".demo-b-2355.parquet.tmp-1-0",
            ".other-2355.parquet.tmp-1-0",
            ".demo-235.parquet.tmp-1-0",
            "demo-history.parquet",
            ".demo-historyx.parquet.tmp-1-0",
            ".DS_Store",
            "_SUCCESS",
        ];
        for n in yes {
            assert!(is_leftover(n, "demo"), "{n}");
        }
        for n in no {
            assert!(!is_leftover(n, "demo"), "{n}");
        }
        assert!(is_leftover(".demo-b-2355.parquet.tmp-1-0", "demo-b"));
    }
}
