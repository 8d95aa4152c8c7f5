//! One writer at a time per pipeline (DESIGN.md, "Lease").
//!
//! Local disk: an exclusive `flock` on `_state/<pipeline>.lease`, released by the kernel
//! when the process dies, so a crashed run never blocks the next one.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};

use crate::sink::Sink;

/// The lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("pipeline {pipeline} is busy: another run holds the lease {path}{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Busy {
        pipeline: String,
        path: String,
        holder: Option<String>,
    },
    #[error("cannot take the lease {path}: {reason}")]
    Io { path: String, reason: String },
}

/// A held lease; dropping it releases it.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    file: Option<File>,
}

impl Lease {
    /// Takes the pipeline's lease in the sink's store.
    pub async fn acquire(sink: &Sink, pipeline: &str, run_id: &str) -> Result<Lease, LeaseError> {
        match sink.sink_root().local_dir() {
            Some(root) => Self::acquire_local(root, pipeline, run_id),
            None => Err(LeaseError::Io {
                path: format!("_state/{pipeline}.lease"),
                reason: "leases on object stores are not supported yet".into(),
            }),
        }
    }

    /// Takes the local lease under `root/_state/`, or says who holds it.
    pub fn acquire_local(root: &FsPath, pipeline: &str, run_id: &str) -> Result<Lease, LeaseError> {
        let dir = root.join("_state");
        let path = dir.join(format!("{pipeline}.lease"));
        let io = |e: std::io::Error| LeaseError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path)
                    .ok()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty());
                return Err(LeaseError::Busy {
                    pipeline: pipeline.to_string(),
                    path: path.display().to_string(),
                    holder,
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let owner = format!(
            "run {run_id}, pid {}, since {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.write_all(owner.as_bytes()).map_err(io)?;
        Ok(Lease {
            path,
            file: Some(file),
        })
    }

    /// Releases the lease now (dropping it does the same).
    pub fn release(self) {}

    pub fn path(&self) -> &FsPath {
        &self.path
    }
}

impl Drop for Lease {
    /// Empties the lease file and unlocks it, also when a run stops on an error, so the
    /// file is left as it was found (the kernel unlocks it anyway if the process dies).
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_taker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::acquire_local(dir.path(), "demo", "run-a").unwrap();
        let err = Lease::acquire_local(dir.path(), "demo", "run-b").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("pipeline demo is busy: another run holds the lease"),
            "{msg}"
        );
        assert!(msg.contains("run run-a, pid "), "{msg}");
        first.release();
        Lease::acquire_local(dir.path(), "demo", "run-c")
            .unwrap()
            .release();
    }
}
