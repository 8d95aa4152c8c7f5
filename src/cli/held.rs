//! `rtcq status --check-gaps`: how much of each recorded gap the dataset holds at 30 s.
//!
//! A range is recorded as lost only when no run fetched it, so a true loss holds no
//! 30 s row of its target. Builds before the fix of "a room that retired stays retired"
//! recorded gaps for discovered rooms whose calls were already fetched; this check
//! finds them (their ranges hold 30 s rows) without changing anything.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::Gap;
use crate::plan::{Slot, SlotRange};
use crate::sink::{Sink, SinkError};
use volc_rtc::limits::REALTIME_BUCKET;

/// What the dataset holds of one gap's range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Held {
    /// 30 s buckets in the range.
    pub(crate) buckets: u64,
    /// Those with at least one 30 s row of the gap's target.
    pub(crate) held: u64,
}

impl Held {
    /// Whether the record claims a loss of data the dataset has: no true loss does.
    pub(crate) fn is_false_loss(&self) -> bool {
        self.held > 0
    }
}

/// The series heads of a slot file, by (room, user, product type): the 30 s buckets
/// each has a row at.
type SlotIndex = HashMap<(Option<String>, Option<String>, String), BTreeSet<i64>>;

/// For each gap, what the dataset holds of its range; reads each slot file once.
pub(crate) async fn check(
    sink: &Sink,
    slot_len: TimeDelta,
    gaps: &[Gap],
) -> Result<Vec<Held>, SinkError> {
    let mut files: HashMap<(String, DateTime<Utc>), SlotIndex> = HashMap::new();
    let mut out = Vec::with_capacity(gaps.len());
    for gap in gaps {
        let head = (
            gap.room_id.clone(),
            gap.user_id.clone(),
            gap.product_type.clone(),
        );
        let (from, to) = (gap.start.timestamp_micros(), gap.end.timestamp_micros());
        let mut held = BTreeSet::new();
        for slot in SlotRange::covering(gap.start, gap.end, slot_len).iter() {
            let index = match files.entry((gap.app_id.clone(), slot.start)) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(read_index(sink, &gap.app_id, &slot).await?),
            };
            if let Some(ts) = index.get(&head) {
                held.extend(ts.range(from..to).copied());
            }
        }
        out.push(Held {
            buckets: SlotRange::covering(gap.start, gap.end, REALTIME_BUCKET).count as u64,
            held: held.len() as u64,
        });
    }
    Ok(out)
}

/// The 30 s buckets each series head of one slot file has rows at (empty: no file).
async fn read_index(sink: &Sink, app_id: &str, slot: &Slot) -> Result<SlotIndex, SinkError> {
    let mut index = SlotIndex::new();
    let Some((bytes, path)) = sink.read_slot_bytes(app_id, slot).await? else {
        return Ok(index);
    };
    crate::sink::decode_each(bytes, &path, |r| {
        if r.interval_s != 30 {
            return;
        }
        index
            .entry((
                r.room_id.map(str::to_string),
                r.user_id.map(str::to_string),
                r.product_type.as_str().to_string(),
            ))
            .or_default()
            .insert(r.timestamp_us);
    })?;
    Ok(index)
}
