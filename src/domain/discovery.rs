//! Room discovery's words (DESIGN.md, "Room discovery"): a pipeline entry with
//! `rooms = "active"` is a [`RoomScan`]: it covers every room of its app that had a call,
//! found with `ListRoomInfo`, narrowed by an optional glob on room ids.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{ProductType, Target};

/// A glob on room ids (`live-*`): `*` any run, `?` one character, `[...]` a class.
#[derive(Clone)]
pub(crate) struct RoomMatch {
    text: String,
    pattern: glob::Pattern,
}

impl RoomMatch {
    /// Parses a glob; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<RoomMatch, String> {
        let pattern = glob::Pattern::new(text)
            .map_err(|e| format!("{text:?} is not a glob: {} (at character {})", e.msg, e.pos))?;
        Ok(RoomMatch {
            text: text.to_string(),
            pattern,
        })
    }

    /// Whether `room_id` is one of the rooms the scan follows.
    pub(crate) fn matches(&self, room_id: &str) -> bool {
        self.pattern.matches(room_id)
    }

    /// The glob as written.
    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for RoomMatch {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for RoomMatch {}

impl fmt::Debug for RoomMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RoomMatch({:?})", self.text)
    }
}

/// One `rooms = "active"` entry: the rooms of `app_id` that had a call, each room a
/// target per product type while one of its calls is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomScan {
    /// The app whose calls are listed.
    pub(crate) app_id: String,
    /// The product types each discovered room is fetched for, sorted and unique.
    pub(crate) product_types: Vec<ProductType>,
    /// Requested indicators, sorted and unique, for every discovered room.
    pub(crate) indicators: Arc<[String]>,
    /// Only rooms whose id matches; `None`: every room.
    pub(crate) room_match: Option<RoomMatch>,
    /// How far behind a discovered room may fall (`max_lag`).
    pub(crate) max_lag: Option<TimeDelta>,
}

impl RoomScan {
    /// Whether the scan follows `room_id`.
    pub(crate) fn follows(&self, room_id: &str) -> bool {
        self.room_match.as_ref().is_none_or(|m| m.matches(room_id))
    }

    /// The targets of one discovered room, one per product type.
    pub(crate) fn targets(&self, room_id: &str) -> impl Iterator<Item = Target> + '_ {
        let room = room_id.to_string();
        self.product_types.iter().map(move |&product_type| Target {
            app_id: self.app_id.clone(),
            product_type,
            room_id: Some(room.clone()),
            user_id: None,
            indicators: self.indicators.clone(),
            max_lag: self.max_lag,
        })
    }
}

impl fmt::Display for RoomScan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app={} rooms=active", self.app_id)?;
        if let Some(m) = &self.room_match {
            write!(f, " room_match={}", m.as_str())?;
        }
        Ok(())
    }
}

/// One call of a discovered room, as the state keeps it: enough to know which 30 s
/// buckets the room is owed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct CallRecord {
    /// When the call began.
    pub(crate) created: DateTime<Utc>,
    /// The call's id, unique per call.
    pub(crate) call_id: String,
    /// When the call ended; `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) destroyed: Option<DateTime<Utc>>,
}

/// What one `rooms = "active"` entry remembers between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanState {
    /// Calls created before this instant are known (the next scan starts a little
    /// earlier, for the API's delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scanned_until: Option<DateTime<Utc>>,
    /// The calls that still matter, by room: a room is dropped once its last call has
    /// ended and been fetched.
    #[serde(default)]
    pub(crate) rooms: BTreeMap<String, Vec<CallRecord>>,
}

impl ScanState {
    /// Adds `call` of `room_id`, or updates the call of the same id (a running call
    /// that has since ended).
    pub(crate) fn record(&mut self, room_id: &str, call: CallRecord) {
        let calls = self.rooms.entry(room_id.to_string()).or_default();
        match calls.iter_mut().find(|c| c.call_id == call.call_id) {
            Some(known) => {
                if call.destroyed.is_some() {
                    known.destroyed = call.destroyed;
                }
            }
            None => {
                calls.push(call);
                calls.sort();
            }
        }
    }
}

/// The calls of one room, for planning: where its owed data starts and ends.
pub(crate) trait Calls {
    /// The first instant at or after `t` inside one of the calls: `t` itself when a
    /// call covers it, else the next call's start; `None` when no call is at or after
    /// `t` (the room is done).
    fn next_covered(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>>;
}

impl Calls for [CallRecord] {
    fn next_covered(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.iter()
            .filter(|c| c.destroyed.is_none_or(|d| d > t))
            .map(|c| c.created.max(t))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glob_narrows_the_rooms_and_a_bad_one_says_where() {
        let m = RoomMatch::parse("live-*").unwrap();
        assert!(m.matches("live-1"));
        assert!(m.matches("live-"));
        assert!(!m.matches("xlive-1"));
        assert!(!m.matches("LIVE-1"));
        let m = RoomMatch::parse("room-?").unwrap();
        assert!(m.matches("room-7"));
        assert!(!m.matches("room-17"));
        assert_eq!(
            RoomMatch::parse("live-[").unwrap_err(),
            "\"live-[\" is not a glob: invalid range pattern (at character 5)"
        );
    }

    #[test]
    fn a_discovered_room_is_one_target_per_product_type() {
        let scan = RoomScan {
            app_id: "app".into(),
            product_types: vec![ProductType::Native, ProductType::Web],
            indicators: vec!["stall_rate".to_string()].into(),
            room_match: None,
            max_lag: None,
        };
        let t: Vec<String> = scan.targets("r1").map(|t| t.to_string()).collect();
        assert_eq!(
            t,
            [
                "app=app product=native room=r1",
                "app=app product=web room=r1"
            ]
        );
        assert!(scan.follows("anything"));
    }
}
