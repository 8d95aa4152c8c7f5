//! Where each target's real-time data begins (`since` in the state), which is where its
//! history ends (docs/design.md, "History on day one"). A target the state knows
//! nothing of gets it from its first answer; a target of a state from before `since`
//! was recorded gets it, once history is wanted, from the oldest slot file of its app
//! (file names only), and keeps it in the state from then on.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::RunError;
use crate::config::Pipeline;
use crate::domain::Target;
use crate::sink::Sink;
use crate::state::State;

/// Each target's `since`, and whether it was never answered (its first answer sets it).
#[derive(Debug, Default)]
pub(crate) struct Since {
    pub(crate) since: Vec<Option<DateTime<Utc>>>,
    pub(crate) fresh: Vec<bool>,
    /// Targets of an old state whose `since` came from a slot file's name.
    pub(crate) derived: usize,
}

impl Since {
    /// Where each target's history ends as the next run will have it: its `since`, or
    /// for a target never answered the horizon `horizon` its first answer would start at.
    pub(crate) fn or_first(&self, horizon: DateTime<Utc>) -> Vec<Option<DateTime<Utc>>> {
        self.since
            .iter()
            .zip(&self.fresh)
            .map(|(s, fresh)| s.or(fresh.then_some(horizon)))
            .collect()
    }
}

/// `since` of every target of the run, in the run's order. Only a listed target of an
/// old state needs the store, and only with `[recovery] history` set.
pub(crate) async fn since_of(
    pipeline: &Pipeline,
    sink: &Sink,
    state: Option<&State>,
    targets: &[Target],
) -> Result<Since, RunError> {
    let wanted = pipeline.recovery.history.is_some();
    let listed = pipeline.targets.len();
    let mut out = Since::default();
    let mut oldest: HashMap<&str, Option<DateTime<Utc>>> = HashMap::new();
    for (i, t) in targets.iter().enumerate() {
        let known = state.and_then(|s| s.targets.get(&t.key()));
        let fresh = known
            .is_none_or(|k| k.since.is_none() && k.cursor.is_none() && k.incomplete.is_empty());
        let mut since = known.and_then(|k| k.since);
        if since.is_none() && !fresh && wanted && i < listed {
            let first = match oldest.get(t.app_id.as_str()) {
                Some(o) => *o,
                None => {
                    let o = sink.oldest_slot_start(&t.app_id).await?;
                    oldest.insert(&t.app_id, o);
                    o
                }
            };
            let owed = known.and_then(|k| {
                let oldest_owed = k.incomplete.first().copied();
                [k.cursor, oldest_owed].into_iter().flatten().min()
            });
            since = [first, owed].into_iter().flatten().min();
            if let Some(s) = since {
                out.derived += 1;
                tracing::debug!(target_id = %t, since = %crate::clock::rfc(s), "history ends where this target's data begins, found from the oldest slot file of its app");
            }
        }
        out.since.push(since);
        out.fresh.push(fresh);
    }
    Ok(out)
}
