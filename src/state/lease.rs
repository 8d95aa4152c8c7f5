//! One writer at a time per pipeline (docs/design.md, "Lease").
//!
//! - Local disk: an exclusive `flock` on `_state/<pipeline>.lease`, released by the
//!   kernel when the process dies, so a crashed run never blocks the next one.
//! - Object stores (S3): `_state/<pipeline>.lease` is created only if absent
//!   (`PutMode::Create`, `If-None-Match: *`) with a JSON body naming the owner and the
//!   expiry. A background task renews it every `ttl / 3` with a conditional
//!   `PutMode::Update` on the last ETag; if a renewal is refused (someone else took it
//!   over), the lease is flagged lost and the run stops saving. An expired lease is taken
//!   over only by a conditional update on its ETag, so of several takers exactly one
//!   wins. Release deletes the object if its ETag is still ours. A crashed run's lease
//!   blocks the pipeline until it expires.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::clock::Clock;
use crate::sink::Sink;

/// Default time a lease on an object store stays valid without renewal.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(120);

/// How many times acquisition retries when the lease changes under it.
const ACQUIRE_ATTEMPTS: usize = 3;

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
    Local { path: PathBuf, file: Option<File> },
    Remote(Remote),
}

#[derive(Debug)]
struct Remote {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// The version we last wrote.
    version: Arc<Mutex<UpdateVersion>>,
    renewer: Option<JoinHandle<()>>,
}

/// A lease someone else holds, as read from the store.
struct Held {
    version: UpdateVersion,
    expires_at: DateTime<Utc>,
    who: String,
}

impl Held {
    /// Reads the lease at `path`; `None` when it is gone. An unreadable body counts as
    /// written with our own `ttl`.
    async fn read(
        store: &Arc<dyn ObjectStore>,
        path: &Path,
        ttl: Duration,
    ) -> Result<Option<Held>, object_store::Error> {
        let got = match store.get(path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let last_modified = got.meta.last_modified;
        let bytes = got.bytes().await?;
        let (expires_at, who) = match serde_json::from_slice::<LeaseBody>(&bytes) {
            Ok(b) => (b.expires_at, b.describe()),
            Err(_) => (
                last_modified + ttl_delta(ttl),
                "unreadable lease body".to_string(),
            ),
        };
        Ok(Some(Held {
            version,
            expires_at,
            who,
        }))
    }
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

    /// Takes the local lease under `root/_state/`, or says who holds it.
    pub(crate) fn acquire_local(
        root: &FsPath,
        pipeline: &str,
        run_id: &str,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
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
        Ok(Lease {
            lost: Arc::new(AtomicBool::new(false)),
            kind: Kind::Local {
                path,
                file: Some(file),
            },
        })
    }

    /// Takes the lease object `root/_state/<pipeline>.lease`: creates it if absent, takes
    /// it over if expired, else reports who holds it.
    pub(crate) async fn acquire_remote(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        pipeline: &str,
        run_id: &str,
        opts: LeaseOptions,
        clock: Clock,
    ) -> Result<Lease, LeaseError> {
        let path = root
            .clone()
            .join("_state")
            .join(format!("{pipeline}.lease").as_str());
        let shown = path.to_string();
        let io = |e: object_store::Error| LeaseError::Io {
            path: shown.clone(),
            reason: e.to_string(),
        };
        let owner = Owner::this_process();
        let mut holder = None;
        for _ in 0..ACQUIRE_ATTEMPTS {
            let now = clock.wall();
            let body = LeaseBody {
                owner: owner.clone(),
                run_id: run_id.to_string(),
                acquired_at: now,
                renewed_at: now,
                expires_at: now + ttl_delta(opts.ttl),
            };
            match put_body(&store, &path, &body, PutMode::Create).await {
                Ok(version) => {
                    tracing::info!(lease = %shown, expires_at = %crate::clock::rfc(body.expires_at), "lease taken");
                    return Ok(Self::remote(store, path, version, body, opts, clock));
                }
                Err(object_store::Error::AlreadyExists { .. }) => {}
                Err(e) => return Err(io(e)),
            }
            // Someone holds it: live or expired?
            let Some(Held {
                version: theirs,
                expires_at,
                who,
            }) = Held::read(&store, &path, opts.ttl).await.map_err(io)?
            else {
                // Released in between: try again.
                continue;
            };
            if clock.wall() < expires_at {
                holder = Some(who);
                break;
            }
            tracing::warn!(lease = %shown, holder = %who, "taking over an expired lease");
            match put_body(&store, &path, &body, PutMode::Update(theirs)).await {
                Ok(version) => {
                    tracing::info!(lease = %shown, expires_at = %crate::clock::rfc(body.expires_at), "lease taken over");
                    return Ok(Self::remote(store, path, version, body, opts, clock));
                }
                // Renewed, taken over or released in between: look again.
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => {
                    holder = Some(who);
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LeaseError::Busy {
            pipeline: pipeline.to_string(),
            path: shown,
            holder,
        })
    }

    fn remote(
        store: Arc<dyn ObjectStore>,
        path: Path,
        version: UpdateVersion,
        body: LeaseBody,
        opts: LeaseOptions,
        clock: Clock,
    ) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let version = Arc::new(Mutex::new(version));
        let renewer = opts.renew_every.map(|every| {
            let renewal = Renewal {
                store: store.clone(),
                path: path.clone(),
                version: version.clone(),
                lost: lost.clone(),
                body,
                ttl: opts.ttl,
                every: every.max(Duration::from_millis(100)),
                clock,
            };
            tokio::spawn(renewal.run().in_current_span())
        });
        Lease {
            lost,
            kind: Kind::Remote(Remote {
                store,
                path,
                version,
                renewer,
            }),
        }
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
            Kind::Local { path, .. } => path.display().to_string(),
            Kind::Remote(r) => r.path.to_string(),
        }
    }

    /// Releases the lease now. On an object store: stops renewing, then deletes the
    /// lease if it is still ours (best effort: a failure only leaves it to expire).
    pub(crate) async fn release(mut self) {
        match &mut self.kind {
            Kind::Local { file, .. } => unlock_local(file),
            Kind::Remote(r) => {
                if let Some(h) = r.renewer.take() {
                    h.abort();
                    let _ = h.await;
                }
                let ours = r.version.lock().await.clone();
                match r.store.head(&r.path).await {
                    Ok(meta) if meta.e_tag.is_some() && meta.e_tag == ours.e_tag => {
                        match r.store.delete(&r.path).await {
                            Ok(()) => tracing::info!(lease = %r.path, "lease released"),
                            Err(e) => {
                                tracing::warn!(lease = %r.path, error = %e, "cannot delete the lease: it will expire")
                            }
                        }
                    }
                    Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::warn!(lease = %r.path, "lease no longer ours at release: left alone")
                    }
                    Err(e) => {
                        tracing::warn!(lease = %r.path, error = %e, "cannot check the lease: it will expire")
                    }
                }
            }
        }
    }
}

impl Drop for Lease {
    /// Also when a run stops on an error: the local lease file is emptied and unlocked
    /// (left as it was found; the kernel unlocks it anyway if the process dies), and a
    /// remote lease stops being renewed.
    fn drop(&mut self) {
        match &mut self.kind {
            Kind::Local { file, .. } => unlock_local(file),
            Kind::Remote(r) => {
                if let Some(h) = r.renewer.take() {
                    h.abort();
                }
            }
        }
    }
}

async fn put_body(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    body: &LeaseBody,
    mode: PutMode,
) -> Result<UpdateVersion, object_store::Error> {
    let bytes = serde_json::to_vec(body).map_err(|e| object_store::Error::Generic {
        store: "lease",
        source: Box::new(e),
    })?;
    let opts = PutOptions {
        mode,
        ..Default::default()
    };
    let r = store.put_opts(path, PutPayload::from(bytes), opts).await?;
    Ok(UpdateVersion {
        e_tag: r.e_tag,
        version: r.version,
    })
}

/// The task that keeps an object-store lease alive: what it rewrites, and when.
struct Renewal {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// The version last written, shared with [`Lease::release`].
    version: Arc<Mutex<UpdateVersion>>,
    lost: Arc<AtomicBool>,
    body: LeaseBody,
    ttl: Duration,
    every: Duration,
    clock: Clock,
}

impl Renewal {
    /// Renews the lease every `every` until aborted or lost.
    async fn run(self) {
        let Renewal {
            store,
            path,
            version,
            lost,
            mut body,
            ttl,
            every,
            clock,
        } = self;
        loop {
            tokio::time::sleep(every).await;
            let now = clock.wall();
            body.renewed_at = now;
            body.expires_at = now + ttl_delta(ttl);
            let mut v = version.lock().await;
            match put_body(&store, &path, &body, PutMode::Update(v.clone())).await {
                Ok(new) => {
                    *v = new;
                    tracing::debug!(lease = %path, expires_at = %crate::clock::rfc(body.expires_at), "lease renewed");
                }
                Err(object_store::Error::Precondition { .. })
                | Err(object_store::Error::NotFound { .. }) => {
                    lost.store(true, Ordering::SeqCst);
                    tracing::error!(lease = %path, "lease lost: another run took it over");
                    return;
                }
                Err(e) => {
                    tracing::warn!(lease = %path, error = %e, "cannot renew the lease: retrying");
                }
            }
        }
    }
}

/// Empties and unlocks a local lease file, once (best effort: the kernel unlocks it
/// anyway when the process ends).
fn unlock_local(file: &mut Option<File>) {
    if let Some(file) = file.take() {
        let _ = file.set_len(0);
        let _ = file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

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
