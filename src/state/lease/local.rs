//! The lease on local disk: an exclusive `flock` on `_state/<pipeline>.lease`, released
//! by the kernel when the process dies, so a crashed run never blocks the next one
//! (docs/design.md, "Lease").

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::SecondsFormat;

use super::LeaseError;
use crate::clock::Clock;

/// A held local lease: the locked file.
#[derive(Debug)]
pub(super) struct Local {
    pub(super) path: PathBuf,
    file: Option<File>,
}

impl Local {
    /// Takes the local lease under `root/_state/`, or says who holds it.
    pub(super) fn acquire(
        root: &Path,
        pipeline: &str,
        run_id: &str,
        clock: Clock,
    ) -> Result<Local, LeaseError> {
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
            clock.wall().to_rfc3339_opts(SecondsFormat::Secs, true)
        );
        file.set_len(0).map_err(io)?;
        file.write_all(owner.as_bytes()).map_err(io)?;
        Ok(Local {
            path,
            file: Some(file),
        })
    }

    /// Empties and unlocks the lease file, once (best effort: the kernel unlocks it
    /// anyway when the process ends).
    pub(super) fn unlock(&mut self) {
        if let Some(file) = self.file.take() {
            let _ = file.set_len(0);
            let _ = file.unlock();
        }
    }
}
