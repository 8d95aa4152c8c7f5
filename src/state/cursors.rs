//! `_state/<pipeline>.json`: per-target cursors and incomplete slots. Saved only after
//! the data it covers is durable, with a compare-and-swap on S3 so a run that lost its
//! lease cannot overwrite a newer state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::discovery::calls::ScanState;
use crate::plan::Progress;

/// The newest state format this build reads: 2 added room discovery's calls, 3 the
/// calls discovery let go (`done`, `unsure`) and the API clock's offset, which a build
/// reading 2 would refuse as unknown, 4 each target's `since` and discovery's history. A state is written with
/// the oldest version that holds what it has: one with none of these is still 1, so
/// older builds keep reading it.
pub(crate) const SCHEMA_VERSION: u32 = 4;

/// The format of a state with discovery or an API clock offset but no `since`.
const SCHEMA_WITHOUT_SINCE: u32 = 3;

/// The format of a state without room discovery.
const SCHEMA_WITHOUT_DISCOVERY: u32 = 1;

/// The whole state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct State {
    pub(crate) schema_version: u32,
    pub(crate) pipeline: String,
    /// Slot length the files were cut with; changing it would rename every file.
    pub(crate) slot_seconds: i64,
    pub(crate) updated_at: DateTime<Utc>,
    /// The run that saved this state.
    pub(crate) run_id: String,
    /// Keyed by `Target::key()`.
    pub(crate) targets: BTreeMap<String, TargetState>,
    /// Room discovery, keyed by app id: what each `rooms = "active"` entry found.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) discovery: BTreeMap<String, ScanState>,
    /// How far the API's clock was ahead of the job's (negative: behind) when this
    /// state was saved, in ms; absent within 2 s. The next run plans with it before
    /// any answer tells it the clock again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) api_clock_offset_ms: Option<i64>,
}

/// One target's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetState {
    /// Everything before this is written, except `incomplete`.
    pub(crate) cursor: Option<DateTime<Utc>>,
    /// Slots before the cursor that are still owed, each as the instant it is owed
    /// from: the slot start, or later inside the slot when the part before was never
    /// owed (a new target starts at the horizon) or is already in the gap ledger.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub(crate) incomplete: BTreeSet<DateTime<Utc>>,
    /// Where the target's real-time data begins: the horizon its first answer started
    /// at. History (`[recovery] history`) ends here. Absent in states of builds before
    /// 4 and for a target not answered yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<DateTime<Utc>>,
}

impl TargetState {
    pub(crate) fn progress(&self) -> Progress {
        Progress {
            cursor: self.cursor,
            incomplete: self.incomplete.clone(),
        }
    }
}

impl State {
    pub(crate) fn new(
        pipeline: &str,
        slot_seconds: i64,
        run_id: &str,
        updated_at: DateTime<Utc>,
    ) -> Self {
        State {
            schema_version: SCHEMA_WITHOUT_DISCOVERY,
            pipeline: pipeline.to_string(),
            slot_seconds,
            updated_at,
            run_id: run_id.to_string(),
            targets: BTreeMap::new(),
            discovery: BTreeMap::new(),
            api_clock_offset_ms: None,
        }
    }

    /// Sets what room discovery knows and the API clock's offset, once the targets
    /// are in, and the oldest schema version that holds it all.
    pub(crate) fn set_discovery(
        &mut self,
        discovery: BTreeMap<String, ScanState>,
        api_clock_offset_ms: Option<i64>,
    ) {
        self.discovery = discovery;
        self.api_clock_offset_ms = api_clock_offset_ms;
        let has_history = self.targets.values().any(|t| t.since.is_some())
            || self.discovery.values().any(|d| !d.history.is_empty());
        self.schema_version = if has_history {
            SCHEMA_VERSION
        } else if self.discovery.is_empty() && self.api_clock_offset_ms.is_none() {
            SCHEMA_WITHOUT_DISCOVERY
        } else {
            SCHEMA_WITHOUT_SINCE
        };
    }
}

/// The state cannot be read or saved. A state that cannot be understood stops the run:
/// it never silently starts over.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state file is not valid JSON or not a state document; nothing was written.
    #[error(
        "state file {path} is corrupt: {reason}. Nothing was written; fix or restore the file (or delete it to start again from the horizon, losing nothing the API still has)"
    )]
    Corrupt {
        /// The state object's key in the sink store (`…/_state/<pipeline>.json`).
        path: String,
        /// Where and how the document fails to parse.
        reason: String,
    },
    /// The state was saved by a newer rtcq whose format this build cannot read.
    #[error(
        "state file {path} was written by a newer rtcq (schema version {found}, this build reads {SCHEMA_VERSION}): upgrade rtcq"
    )]
    NewerSchema {
        /// The state object's key in the sink store.
        path: String,
        /// The `schema_version` the file declares.
        found: u64,
    },
    /// The state file names another pipeline: two configs share one sink and name.
    #[error("state file {path} belongs to pipeline {found:?}, not {expected:?}")]
    OtherPipeline {
        /// The state object's key in the sink store.
        path: String,
        /// The pipeline the file says it belongs to.
        found: String,
        /// The pipeline this run is for.
        expected: String,
    },
    /// The config's slot length differs from the one the existing files were cut with.
    #[error(
        "state file {path} was written with slot length {found} s but the config says {expected} s: the slot length of a pipeline cannot change (use a new pipeline name)"
    )]
    SlotChanged {
        /// The state object's key in the sink store.
        path: String,
        /// Slot length in seconds recorded in the state.
        found: i64,
        /// Slot length in seconds the config asks for.
        expected: i64,
    },
    /// Someone saved the state since this run read it, so this run no longer owns it.
    #[error(
        "state file {path} changed under this run (another run took over the lease?): not overwriting it"
    )]
    Conflict {
        /// The state object's key in the sink store.
        path: String,
    },
    /// The store refused to read or write the state file.
    #[error("cannot access state file {path}: {source}")]
    Store {
        /// The state object's key in the sink store.
        path: String,
        /// The store's error (permissions, network, …).
        #[source]
        source: object_store::Error,
    },
}

/// Loads and saves one pipeline's state, remembering the version it last saw so the
/// next save is conditional on it.
#[derive(Debug)]
pub(crate) struct StateStore {
    store: Arc<dyn ObjectStore>,
    path: Path,
    /// Whether the store supports conditional updates (S3 does; local disk relies on
    /// the lease lock instead).
    conditional: bool,
    version: Mutex<Option<UpdateVersion>>,
}

impl StateStore {
    pub(crate) fn new(
        store: Arc<dyn ObjectStore>,
        root: &Path,
        pipeline: &str,
        conditional: bool,
    ) -> Self {
        StateStore {
            store,
            path: root
                .clone()
                .join("_state")
                .join(format!("{pipeline}.json").as_str()),
            conditional,
            version: Mutex::new(None),
        }
    }

    /// Reads the state; `None` if there is none yet.
    pub(crate) async fn load(
        &self,
        pipeline: &str,
        slot_seconds: i64,
    ) -> Result<Option<State>, StateError> {
        let path = self.path.to_string();
        let got = match self.store.get(&self.path).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(StateError::Store { path, source }),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.map_err(|source| StateError::Store {
            path: path.clone(),
            source,
        })?;
        let state = parse(&path, &bytes)?;
        if state.pipeline != pipeline {
            return Err(StateError::OtherPipeline {
                path,
                found: state.pipeline,
                expected: pipeline.to_string(),
            });
        }
        if state.slot_seconds != slot_seconds {
            return Err(StateError::SlotChanged {
                path,
                found: state.slot_seconds,
                expected: slot_seconds,
            });
        }
        *self.version.lock().await = Some(version);
        Ok(Some(state))
    }

    /// Saves the state: on S3 only if nobody saved since we last read or wrote it.
    pub(crate) async fn save(&self, state: &State) -> Result<(), StateError> {
        let path = self.path.to_string();
        let mut body = serde_json::to_vec_pretty(state).map_err(|e| StateError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        body.push(b'\n');
        let mut version = self.version.lock().await;
        let mode = match (&*version, self.conditional) {
            (Some(v), true) => PutMode::Update(v.clone()),
            (None, true) => PutMode::Create,
            _ => PutMode::Overwrite,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path, PutPayload::from(body), opts)
            .await
        {
            Ok(r) => {
                *version = Some(UpdateVersion {
                    e_tag: r.e_tag,
                    version: r.version,
                });
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::AlreadyExists { .. }) => Err(StateError::Conflict { path }),
            Err(source) => Err(StateError::Store { path, source }),
        }
    }
}

fn parse(path: &str, bytes: &[u8]) -> Result<State, StateError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| StateError::Corrupt {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let found = value.get("schema_version").and_then(|v| v.as_u64());
    match found {
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(StateError::NewerSchema {
                path: path.to_string(),
                found: v,
            });
        }
        None => {
            return Err(StateError::Corrupt {
                path: path.to_string(),
                reason: "no schema_version".into(),
            });
        }
        _ => {}
    }
    serde_json::from_value(value).map_err(|e| StateError::Corrupt {
        path: path.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn store() -> StateStore {
        StateStore::new(Arc::new(InMemory::new()), &Path::from("root"), "demo", true)
    }

    #[tokio::test]
    async fn roundtrip_and_conflict() {
        let s = store();
        assert_eq!(s.load("demo", 300).await.unwrap(), None);
        let mut st = State::new("demo", 300, "run-1", Utc::now());
        st.targets.insert("k".into(), TargetState::default());
        s.save(&st).await.unwrap();
        s.save(&st).await.unwrap();
        assert_eq!(s.load("demo", 300).await.unwrap(), Some(st.clone()));
        // Another writer saves in between: our next save must fail.
        let other = StateStore::new(s.store.clone(), &Path::from("root"), "demo", true);
        other.load("demo", 300).await.unwrap();
        other.save(&st).await.unwrap();
        assert!(matches!(
            s.save(&st).await,
            Err(StateError::Conflict { .. })
        ));
    }

    #[tokio::test]
    async fn refuses_corrupt_newer_and_mismatched_state() {
        let s = store();
        let put = |b: &'static str| {
            let st = s.store.clone();
            let p = s.path.clone();
            async move { st.put(&p, PutPayload::from(b.as_bytes())).await.unwrap() }
        };
        put("{not json").await;
        let e = s.load("demo", 300).await.unwrap_err().to_string();
        assert!(
            e.starts_with("state file root/_state/demo.json is corrupt: key must be a string"),
            "{e}"
        );
        put(r#"{"schema_version": 5, "future": true}"#).await;
        let e = s.load("demo", 300).await.unwrap_err().to_string();
        assert!(
            e.contains("written by a newer rtcq (schema version 5, this build reads 4)"),
            "{e}"
        );
        put(r#"{"schema_version":1,"pipeline":"demo","slot_seconds":600,"updated_at":"2026-01-01T00:00:00Z","run_id":"r","targets":{}}"#).await;
        let e = s.load("demo", 300).await.unwrap_err().to_string();
        assert!(
            e.contains("slot length 600 s but the config says 300 s"),
            "{e}"
        );
    }
}
