//! The lease on an object store (S3): `_state/<pipeline>.lease` is created only if
//! absent (`PutMode::Create`, `If-None-Match: *`) with a JSON body naming the owner and
//! the expiry. A background task renews it every `ttl / 3` with a conditional
//! `PutMode::Update` on the last ETag; a refused renewal flags the lease lost. An expired
//! lease is taken over only by a conditional update on its ETag, so of several takers
//! exactly one wins (docs/design.md, "Lease").

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{LeaseBody, LeaseError, LeaseOptions, Owner, ttl_delta};
use crate::clock::Clock;

/// How many times acquisition retries when the lease changes under it.
const ACQUIRE_ATTEMPTS: usize = 3;

/// A held lease object, and the task renewing it.
#[derive(Debug)]
pub(super) struct Remote {
    store: Arc<dyn ObjectStore>,
    pub(super) path: Path,
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

impl Remote {
    /// Takes the lease object `root/_state/<pipeline>.lease`: creates it if absent, takes
    /// it over if expired, else reports who holds it.
    pub(super) async fn acquire(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        pipeline: &str,
        run_id: &str,
        opts: LeaseOptions,
        clock: Clock,
        lost: &Arc<AtomicBool>,
    ) -> Result<Remote, LeaseError> {
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
                    return Ok(Self::start(store, path, version, body, opts, clock, lost));
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
                    return Ok(Self::start(store, path, version, body, opts, clock, lost));
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

    fn start(
        store: Arc<dyn ObjectStore>,
        path: Path,
        version: UpdateVersion,
        body: LeaseBody,
        opts: LeaseOptions,
        clock: Clock,
        lost: &Arc<AtomicBool>,
    ) -> Remote {
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
        Remote {
            store,
            path,
            version,
            renewer,
        }
    }

    /// Stops renewing (the lease then expires unless released).
    pub(super) fn stop_renewing(&mut self) {
        if let Some(h) = self.renewer.take() {
            h.abort();
        }
    }

    /// Stops renewing, then deletes the lease if it is still ours (best effort: a
    /// failure only leaves it to expire).
    pub(super) async fn release(&mut self) {
        if let Some(h) = self.renewer.take() {
            h.abort();
            let _ = h.await;
        }
        let ours = self.version.lock().await.clone();
        match self.store.head(&self.path).await {
            Ok(meta) if meta.e_tag.is_some() && meta.e_tag == ours.e_tag => {
                match self.store.delete(&self.path).await {
                    Ok(()) => tracing::info!(lease = %self.path, "lease released"),
                    Err(e) => {
                        tracing::warn!(lease = %self.path, error = %e, "cannot delete the lease: it will expire")
                    }
                }
            }
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(lease = %self.path, "lease no longer ours at release: left alone")
            }
            Err(e) => {
                tracing::warn!(lease = %self.path, error = %e, "cannot check the lease: it will expire")
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
