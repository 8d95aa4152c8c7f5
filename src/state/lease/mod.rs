//! One writer at a time per pipeline (docs/design.md, "Lease"): `local` holds a file
//! lock on local disk, `remote` a conditionally written object on S3, renewed while the
//! run goes. A crashed run's local lock goes with its process; its remote lease blocks
//! the pipeline until it expires. Release deletes the object if its ETag is still ours.

mod local;
mod remote;

use std::path::Path as FsPath;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use object_store::ObjectStore;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::clock::Clock;
use crate::sink::Sink;
use local::Local;
use remote::Remote;

/// Default time a lease on an object store stays valid without renewal.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// The lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another run of the pipeline holds the lease: this run exits with the "busy" code.
    #[error("pipeline {pipeline} is busy: another run holds the lease {path}{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    Busy {
        /// The pipeline whose lease is held.
        pipeline: String,
        /// The lease file path (local) or object key (S3), as the user would look it up.
        path: String,
        /// Who holds it (run id, host, pid, expiry), when the lease says so.
        holder: Option<String>,
    },
    /// The lease could not be created, locked or read.
    #[error("cannot take the lease {path}: {reason}")]
    Io {
        /// The lease file path (local) or object key (S3).
        path: String,
        /// The file-system or store error.
        reason: String,
    },
    /// A renewal was refused: another run took the lease over, so this run must not save.
    #[error(
        "lost the lease {path}: another run took it over (this run was too slow to renew it); stopping without saving"
    )]
    Lost {
        /// The lease object's key in the store.
        path: String,
    },
}

/// How long an object-store lease lives and how often it is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LeaseOptions {
    /// Validity of the lease after each renewal.
    pub(crate) ttl: Duration,
    /// Renewal period; `None` never renews (tests only: the lease then expires mid-run).
    pub(crate) renew_every: Option<Duration>,
}

impl Default for LeaseOptions {
    fn default() -> Self {
        LeaseOptions::with_ttl(DEFAULT_TTL)
    }
}

impl LeaseOptions {
    /// `ttl`, renewed every third of it.
    pub(crate) fn with_ttl(ttl: Duration) -> Self {
        LeaseOptions {
            ttl,
            renew_every: Some(ttl / 3),
        }
    }
}

/// The body of an object-store lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LeaseBody {
    pub(crate) owner: Owner,
    pub(crate) run_id: String,
    pub(crate) acquired_at: DateTime<Utc>,
    pub(crate) renewed_at: DateTime<Utc>,
    pub(crate) expires_at: DateTime<Utc>,
}

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Owner {
    pub(crate) host: String,
    pub(crate) pid: u32,
}

impl Owner {
    fn this_process() -> Owner {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".into());
        Owner {
            host,
            pid: std::process::id(),
        }
    }
}

impl LeaseBody {
    fn describe(&self) -> String {
        format!(
            "run {}, host {}, pid {}, expires {}",
            self.run_id,
            self.owner.host,
            self.owner.pid,
            self.expires_at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    }
}

/// A held lease. Local leases are released on drop; object-store leases need
/// [`Lease::release`] (else they expire after their TTL).
#[derive(Debug)]
pub(crate) struct Lease {
    lost: Arc<AtomicBool>,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Local(Local),
    Remote(Remote),
}

fn ttl_delta(ttl: Duration) -> TimeDelta {
    TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX)
}

impl Lease {
    /// Takes the pipeline's lease in the sink's store.
    pub(crate) async fn acquire_with(
        sink: &Sink,
        pipeline: &str,
        run_id: &str,
        opts: LeaseOptions,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
        match sink.sink_root().local_dir() {
            Some(root) => Self::acquire_local(root, pipeline, run_id, clock),
            None => {
                let store = sink.store();
                Self::acquire_remote(store, sink.root(), pipeline, run_id, opts, clock)
                    .await
                    .map_err(|e| match e {
                        LeaseError::Io { path, reason } => LeaseError::Io {
                            path: sink.sink_root().locate(&path),
                            reason: sink.sink_root().explain(reason),
                        },
                        e => e,
                    })
            }
        }
    }

    /// Takes the local lease file (see [`Local::acquire`]).
    pub(crate) fn acquire_local(
        root: &FsPath,
        pipeline: &str,
        run_id: &str,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
        Ok(Lease {
            lost: Arc::new(AtomicBool::new(false)),
            kind: Kind::Local(Local::acquire(root, pipeline, run_id, clock)?),
        })
    }

    /// Takes the lease object on an object store (see [`Remote::acquire`]).
    pub(crate) async fn acquire_remote(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        pipeline: &str,
        run_id: &str,
        opts: LeaseOptions,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
        let lost = Arc::new(AtomicBool::new(false));
        let remote = Remote::acquire(store, root, pipeline, run_id, opts, clock, &lost).await?;
        Ok(Lease {
            lost,
            kind: Kind::Remote(remote),
        })
    }

    /// Set once a renewal found the lease taken over: the run must stop saving.
    pub(crate) fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    /// Whether the lease is known to be lost.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Where the lease lives (a file path, or an object key).
    pub(crate) fn location(&self) -> String {
        match &self.kind {
            Kind::Local(l) => l.path.display().to_string(),
            Kind::Remote(r) => r.path.to_string(),
        }
    }

    /// Releases the lease now. On an object store: stops renewing, then deletes the
    /// lease if it is still ours (best effort: a failure only leaves it to expire).
    pub(crate) async fn release(mut self) {
        match &mut self.kind {
            Kind::Local(l) => l.unlock(),
            Kind::Remote(r) => r.release().await,
        }
    }
}

impl Drop for Lease {
    /// Also when a run stops on an error: the local lease file is emptied and unlocked
    /// (left as it was found; the kernel unlocks it anyway if the process dies), and a
    /// remote lease stops being renewed.
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Local(l) => l.unlock(),
            Kind::Remote(r) => r.stop_renewing(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn second_taker_is_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lease::acquire_local(dir.path(), "demo", "run-a", Clock::system()).unwrap();
        let err = Lease::acquire_local(dir.path(), "demo", "run-b", Clock::system()).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("pipeline demo is busy: another run holds the lease"),
            "{msg}"
        );
        assert!(msg.contains("run run-a, pid "), "{msg}");
        first.release().await;
        Lease::acquire_local(dir.path(), "demo", "run-c", Clock::system())
            .unwrap()
            .release()
            .await;
    }

    /// Takes `root/_state/demo.lease` as `run_id` for 300 ms, never renewed.
    async fn take(
        store: &Arc<dyn ObjectStore>,
        run_id: &str,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
        let opts = LeaseOptions {
            ttl: Duration::from_millis(300),
            renew_every: None,
        };
        let root = Path::from("root");
        Lease::acquire_remote(store.clone(), &root, "demo", run_id, opts, clock).await
    }

    #[tokio::test(start_paused = true)]
    async fn remote_lease_is_exclusive_expires_and_is_released_only_by_its_owner() {
        let clock = Clock::system();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let key = Path::from("root/_state/demo.lease");
        let a = take(&store, "run-a", clock).await.unwrap();
        let body: LeaseBody =
            serde_json::from_slice(&store.get(&key).await.unwrap().bytes().await.unwrap()).unwrap();
        assert_eq!(body.run_id, "run-a");
        assert_eq!(body.owner.pid, std::process::id());
        assert_eq!(
            body.expires_at - body.acquired_at,
            TimeDelta::milliseconds(300)
        );
        let e = take(&store, "run-b", clock).await.unwrap_err();
        assert!(matches!(e, LeaseError::Busy { .. }), "{e}");
        assert!(e.to_string().contains("(run run-a, host "), "{e}");

        tokio::time::sleep(Duration::from_millis(350)).await;
        let b = take(&store, "run-b", clock).await.unwrap();
        // A's release leaves B's lease alone.
        a.release().await;
        let body: LeaseBody =
            serde_json::from_slice(&store.get(&key).await.unwrap().bytes().await.unwrap()).unwrap();
        assert_eq!(body.run_id, "run-b");
        b.release().await;
        assert!(matches!(
            store.head(&key).await,
            Err(object_store::Error::NotFound { .. })
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn renewal_keeps_the_lease_and_a_takeover_flags_it_lost() {
        let clock = Clock::system();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let root = Path::from("root");
        let key = Path::from("root/_state/demo.lease");
        let opts = LeaseOptions {
            ttl: Duration::from_millis(600),
            renew_every: Some(Duration::from_millis(150)),
        };
        let a = Lease::acquire_remote(store.clone(), &root, "demo", "run-a", opts, clock)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let e = Lease::acquire_remote(store.clone(), &root, "demo", "run-b", opts, clock)
            .await
            .unwrap_err();
        assert!(matches!(e, LeaseError::Busy { .. }), "{e}");
        assert!(!a.is_lost());
        // Someone overwrites it behind A's back: A's next renewal notices.
        store.put(&key, PutPayload::from("{}")).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(a.is_lost());
        a.release().await;
        assert!(store.head(&key).await.is_ok(), "not ours: not deleted");
    }
}
