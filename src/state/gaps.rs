//! The ledgers under `_state/gaps/`, one JSON object a line, append-only:
//!
//! - `<pipeline>.jsonl`: every range the API no longer had when we came for it. Written
//!   before the state that moves a cursor past the range, so a loss is never forgotten.
//! - `<pipeline>.recovered.jsonl`: every range of a gap recovered from the offline API.
//!   Written after the slot files that hold the recovered rows, so a recovery is
//!   recorded only once it is in the dataset, and is then never asked again.
//!
//! A range already on record is not recorded twice (of a gap, only the part not on
//! record is). Recoveries have their own file so
//! that a build without recovery still reads the gap ledger.

use std::marker::PhantomData;
use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::domain::Gap;
use crate::recovery::{Recovery, recovered_file};

/// The ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GapError {
    /// A line of the ledger cannot be parsed; rtcq will not append to it until fixed.
    #[error(
        "ledger {path}, line {line}: {reason}. Fix or move the file; rtcq will not append to a ledger it cannot read"
    )]
    Corrupt {
        /// The ledger's key in the sink store (`…/_state/gaps/<pipeline>.jsonl`).
        path: String,
        /// The 1-based line number of the bad record.
        line: usize,
        /// Why that line is not a gap record.
        reason: String,
    },
    /// The store refused to read or write the ledger.
    #[error("cannot access ledger {path}: {source}")]
    Store {
        /// The ledger's key in the sink store.
        path: String,
        /// The store's error (permissions, network, …).
        #[source]
        source: object_store::Error,
    },
}

/// A record of a ledger: how it tells a repeat.
pub(crate) trait Record: Serialize + DeserializeOwned + Clone {
    /// What of this record is not on record yet: itself, nothing, or (a gap) the parts
    /// of its range no record of its target holds.
    fn remainder(&self, on_record: &[Self]) -> Vec<Self>;
}

impl Record for Gap {
    /// A loss is recorded once: a run killed after recording it and before saving its
    /// state finds it again, cut later by a horizon that has moved on, and records only
    /// what the ledger does not hold.
    fn remainder(&self, on_record: &[Self]) -> Vec<Self> {
        let held = on_record
            .iter()
            .filter(|o| o.target == self.target)
            .map(Gap::range);
        self.range()
            .minus(held)
            .into_iter()
            .map(|r| Gap {
                start: r.start,
                end: r.end,
                ..self.clone()
            })
            .collect()
    }
}

impl Record for Recovery {
    fn remainder(&self, on_record: &[Self]) -> Vec<Self> {
        if on_record.iter().any(|o| o.same_range(self)) {
            Vec::new()
        } else {
            vec![self.clone()]
        }
    }
}

/// One pipeline's ledger of records `T`.
#[derive(Debug, Clone)]
pub(crate) struct Ledger<T> {
    store: Arc<dyn ObjectStore>,
    path: Path,
    records: PhantomData<fn() -> T>,
}

/// The ledger of lost ranges.
pub(crate) type GapLedger = Ledger<Gap>;

/// The ledger of recovered ranges.
pub(crate) type RecoveryLedger = Ledger<Recovery>;

impl GapLedger {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, root: &Path, pipeline: &str) -> Self {
        Ledger::at(store, root, &format!("{pipeline}.jsonl"))
    }
}

impl RecoveryLedger {
    pub(crate) fn recoveries(store: Arc<dyn ObjectStore>, root: &Path, pipeline: &str) -> Self {
        Ledger::at(store, root, &recovered_file(pipeline))
    }
}

impl<T: Record> Ledger<T> {
    fn at(store: Arc<dyn ObjectStore>, root: &Path, file: &str) -> Self {
        Ledger {
            store,
            path: root.clone().join("_state").join("gaps").join(file),
            records: PhantomData,
        }
    }

    /// Every record, oldest first.
    pub(crate) async fn read(&self) -> Result<Vec<T>, GapError> {
        let path = self.path.to_string();
        let bytes = match self.store.get(&self.path).await {
            Ok(g) => g.bytes().await.map_err(|source| GapError::Store {
                path: path.clone(),
                source,
            })?,
            Err(object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(source) => return Err(GapError::Store { path, source }),
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut gaps = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let gap = serde_json::from_str(line).map_err(|e| GapError::Corrupt {
                path: path.clone(),
                line: i + 1,
                reason: e.to_string(),
            })?;
            gaps.push(gap);
        }
        Ok(gaps)
    }

    /// Appends the records not already on record; returns those appended. The caller
    /// holds the lease, so read-modify-write is safe.
    pub(crate) async fn append(&self, new: &[T]) -> Result<Vec<T>, GapError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut all = self.read().await?;
        let mut added = Vec::new();
        for g in new {
            for part in g.remainder(&all) {
                all.push(part.clone());
                added.push(part);
            }
        }
        if added.is_empty() {
            return Ok(added);
        }
        let mut body = Vec::new();
        for g in &all {
            // Serialising plain strings, numbers and timestamps cannot fail.
            if let Ok(line) = serde_json::to_string(g) {
                body.extend_from_slice(line.as_bytes());
                body.push(b'\n');
            }
        }
        self.store
            .put(&self.path, PutPayload::from(body))
            .await
            .map_err(|source| GapError::Store {
                path: self.path.to_string(),
                source,
            })?;
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use chrono::Utc;
    use object_store::memory::InMemory;

    fn gap(target: &str, h: u32) -> Gap {
        Gap {
            pipeline: "demo".into(),
            target: target.into(),
            app_id: "a".into(),
            product_type: "native".into(),
            room_id: None,
            user_id: None,
            start: Utc.with_ymd_and_hms(2026, 1, 1, h, 0, 0).unwrap(),
            end: Utc.with_ymd_and_hms(2026, 1, 1, h + 1, 0, 0).unwrap(),
            reason: "beyond the 60-minute horizon".into(),
            detected_at: Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(),
        }
    }

    #[tokio::test]
    async fn appends_only_new_ranges() {
        let ledger = GapLedger::new(Arc::new(InMemory::new()), &Path::from("r"), "demo");
        assert_eq!(
            ledger
                .append(&[gap("t1", 1), gap("t2", 1)])
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            ledger.append(&[gap("t1", 1), gap("t1", 2)]).await.unwrap(),
            vec![gap("t1", 2)]
        );
        assert_eq!(
            ledger.read().await.unwrap(),
            vec![gap("t1", 1), gap("t2", 1), gap("t1", 2)]
        );
    }

    #[tokio::test]
    async fn a_loss_found_again_by_a_later_horizon_records_only_what_is_new() {
        let ledger = GapLedger::new(Arc::new(InMemory::new()), &Path::from("r"), "demo");
        let first = gap("t1", 1);
        ledger.append(std::slice::from_ref(&first)).await.unwrap();
        // A run killed after recording [01:00, 02:00) and before saving its state: the
        // next run finds the loss from 01:00 again, now up to 02:30, and one of another
        // target overlapping in time.
        let later = Gap {
            end: first.end + chrono::TimeDelta::minutes(30),
            ..first.clone()
        };
        let around = Gap {
            start: first.start - chrono::TimeDelta::minutes(10),
            ..later.clone()
        };
        let added = ledger
            .append(&[later.clone(), around, gap("t2", 1)])
            .await
            .unwrap();
        let ranges: Vec<(String, u32, u32)> = added
            .iter()
            .map(|g| {
                let m = |t: chrono::DateTime<Utc>| t.timestamp() as u32 / 60 % (24 * 60);
                (g.target.clone(), m(g.start), m(g.end))
            })
            .collect();
        assert_eq!(
            ranges,
            [
                ("t1".to_string(), 120, 150),
                ("t1".to_string(), 50, 60),
                ("t2".to_string(), 60, 120)
            ]
        );
        assert_eq!(ledger.read().await.unwrap().len(), 4);
    }

    #[tokio::test]
    async fn recoveries_have_their_own_file_next_to_the_gaps() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let root = Path::from("r");
        let gaps = GapLedger::new(store.clone(), &root, "demo");
        let recoveries = RecoveryLedger::recoveries(store.clone(), &root, "demo");
        let g = gap("t1", 1);
        let r = Recovery {
            history: false,
            pipeline: "demo".into(),
            target: "t1".into(),
            start: g.start,
            end: g.end,
            interval_s: 300,
            points: 24,
            recovered_at: g.detected_at,
            run_id: "run-1".into(),
        };
        gaps.append(std::slice::from_ref(&g)).await.unwrap();
        assert_eq!(
            recoveries.append(&[r.clone(), r.clone()]).await.unwrap(),
            vec![r.clone()]
        );
        assert_eq!(
            recoveries.append(std::slice::from_ref(&r)).await.unwrap(),
            vec![]
        );
        assert_eq!(gaps.read().await.unwrap(), vec![g]);
        let text = store
            .get(&Path::from("r/_state/gaps/demo.recovered.jsonl"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(
            std::str::from_utf8(&text).unwrap(),
            "{\"pipeline\":\"demo\",\"target\":\"t1\",\"start\":\"2026-01-01T01:00:00Z\",\"end\":\"2026-01-01T02:00:00Z\",\"interval_s\":300,\"points\":24,\"recovered_at\":\"2026-01-01T12:00:00Z\",\"run_id\":\"run-1\"}\n"
        );
    }
}
