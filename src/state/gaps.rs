//! `_state/gaps/<pipeline>.jsonl`: every range the API no longer had when we came for
//! it, one JSON object a line, append-only. Written before the state that moves a cursor
//! past the range, so a loss is never forgotten; a range already on record is not
//! recorded twice.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::domain::Gap;

/// The ledger could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GapError {
    /// A line of the ledger cannot be parsed; rtcq will not append to it until fixed.
    #[error(
        "gap ledger {path}, line {line}: {reason}. Fix or move the file; rtcq will not append to a ledger it cannot read"
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
    #[error("cannot access gap ledger {path}: {source}")]
    Store {
        /// The ledger's key in the sink store.
        path: String,
        /// The store's error (permissions, network, …).
        #[source]
        source: object_store::Error,
    },
}

/// One pipeline's ledger.
#[derive(Debug, Clone)]
pub(crate) struct GapLedger {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl GapLedger {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, root: &Path, pipeline: &str) -> Self {
        GapLedger {
            store,
            path: root
                .clone()
                .join("_state")
                .join("gaps")
                .join(format!("{pipeline}.jsonl").as_str()),
        }
    }

    /// Every recorded gap, oldest record first.
    pub(crate) async fn read(&self) -> Result<Vec<Gap>, GapError> {
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

    /// Appends the gaps not already on record; returns those appended. The caller holds
    /// the lease, so read-modify-write is safe.
    pub(crate) async fn append(&self, new: &[Gap]) -> Result<Vec<Gap>, GapError> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let mut all = self.read().await?;
        let mut added = Vec::new();
        for g in new {
            if !all.iter().any(|o| o.same_range(g)) {
                all.push(g.clone());
                added.push(g.clone());
            }
        }
        if added.is_empty() {
            return Ok(added);
        }
        let mut body = Vec::new();
        for g in &all {
            // Serialising plain strings and timestamps cannot fail.
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
}
