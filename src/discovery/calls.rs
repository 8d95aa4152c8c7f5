//! Room discovery's words (docs/design.md, "Room discovery"): a pipeline entry with
//! `rooms = "active"` is a [`RoomScan`]: it covers every room of its app that had a call,
//! found with `ListRoomInfo`, narrowed by an optional glob on room ids.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{ProductType, Target, TimeRange};

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

/// How far back a scan starts before the previous one ended: calls show in
/// `ListRoomInfo` 20 s after they begin, so a short overlap catches the late ones.
pub(crate) const OVERLAP: TimeDelta = TimeDelta::minutes(5);

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
    /// Calls fetched to their end and let go that the next scan's overlap may list
    /// again as if new, by call id (their creation, to forget them once the overlap has
    /// moved past). A call created earlier needs no memory: every scan since listed it,
    /// so one the state does not know was handled (see [`ScanState::merge`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) done: BTreeMap<String, DateTime<Utc>>,
    /// Losses found while this entry's scan failed that only a running call may cover:
    /// when it ended is learnt from the next scan that succeeds, which records them cut
    /// to the calls as then known.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) unsure: Vec<UnsureLoss>,
    /// History (`[recovery] history`) of the rooms the first scan found: by room, the
    /// parts of its calls before its first horizon, each owed once at 5 minutes. A room
    /// leaves once all of it is loaded or past the offline API's lookback.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) history: BTreeMap<String, Vec<TimeRange>>,
}

/// A range a discovered room target lost that a call seen running may or may not have
/// covered (its scan failed, so its end is unknown).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsureLoss {
    /// `Target::key()` of the room target.
    pub(crate) target: String,
    /// The room.
    pub(crate) room: String,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// What a scan's listing changed in the state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Merged {
    /// Calls the state did not know: each owes its room the buckets it covers.
    pub(crate) new: usize,
    /// Calls listed again after they were fetched to their end and let go (their room
    /// retired): they owe nothing.
    pub(crate) listed_again: usize,
}

impl ScanState {
    /// Where a scan's listing starts to hold calls the previous scans may not have
    /// seen: `OVERLAP` before the previous scan ended. `None` before the first scan.
    fn fresh_from(&self) -> Option<DateTime<Utc>> {
        self.scanned_until.map(|u| u - OVERLAP)
    }

    /// Takes in the calls a scan up to `now` listed. A call the state knows is updated
    /// (a running call that has since ended). A call it does not know is new only if
    /// the previous scans could not have listed it: created inside the overlap (and not
    /// let go there), or any call on the first scan. An older call the state does not
    /// know was listed before and let go once fetched to its end: listed again (the
    /// scan reaches back to the oldest running call to learn when it ends), it owes
    /// nothing and does not bring its room back.
    pub(crate) fn merge(&mut self, found: Vec<(String, CallRecord)>, now: DateTime<Utc>) -> Merged {
        let fresh_from = self.fresh_from();
        let mut merged = Merged::default();
        for (room, call) in found {
            let known = self
                .rooms
                .get_mut(&room)
                .and_then(|calls| calls.iter_mut().find(|c| c.call_id == call.call_id));
            if let Some(known) = known {
                if call.destroyed.is_some() {
                    known.destroyed = call.destroyed;
                }
                continue;
            }
            let seen_before = fresh_from.is_some_and(|f| call.created < f);
            if seen_before || self.done.contains_key(&call.call_id) {
                merged.listed_again += 1;
                continue;
            }
            let calls = self.rooms.entry(room).or_default();
            calls.push(call);
            calls.sort();
            merged.new += 1;
        }
        self.scanned_until = Some(now);
        if let Some(f) = self.fresh_from() {
            self.done.retain(|_, created| *created >= f);
        }
        merged
    }

    /// Lets go of calls fetched to their end; the ones the next scan's overlap may list
    /// again are remembered until it has moved past them.
    fn let_go(&mut self, calls: impl IntoIterator<Item = CallRecord>) {
        let Some(f) = self.fresh_from() else { return };
        for c in calls {
            if c.created >= f {
                self.done.insert(c.call_id, c.created);
            }
        }
    }

    /// Retires `room`: its last call has ended and every target of it fetched past.
    pub(crate) fn retire(&mut self, room: &str) {
        if let Some(calls) = self.rooms.remove(room) {
            self.let_go(calls);
        }
    }

    /// Drops the calls of `room` that every one of its targets has fetched past
    /// (`fetched_until`: `None` when one of them still owes an older slot).
    pub(crate) fn prune(&mut self, room: &str, fetched_until: Option<DateTime<Utc>>) {
        let (Some(until), Some(calls)) = (fetched_until, self.rooms.get_mut(room)) else {
            return;
        };
        let (gone, kept): (Vec<CallRecord>, Vec<CallRecord>) = std::mem::take(calls)
            .into_iter()
            .partition(|c| c.destroyed.is_some_and(|d| d <= until));
        *calls = kept;
        self.let_go(gone);
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

    fn call(id: &str, created: &str, destroyed: Option<&str>) -> CallRecord {
        let t = |s: &str| format!("2026-11-25T{s}Z").parse::<DateTime<Utc>>().unwrap();
        CallRecord {
            created: t(created),
            call_id: id.into(),
            destroyed: destroyed.map(t),
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        format!("2026-11-25T{s}Z").parse().unwrap()
    }

    #[test]
    fn a_call_listed_again_after_its_room_retired_owes_nothing() {
        // Room A's one call was fetched to its end by the run at 00:32 (shown here a day
        // shifted: 23:27:47 is 11:27:47), and A retired; room B has a call running since
        // before it. The scan at 12:42 reaches back to B's start and lists A's call again.
        let mut state = ScanState {
            scanned_until: Some(at("12:32:10")),
            ..ScanState::default()
        };
        state
            .rooms
            .insert("B".into(), vec![call("b", "11:20:00", None)]);
        let found = vec![
            ("A".to_string(), call("a", "11:27:47", Some("11:41:13"))),
            ("B".to_string(), call("b", "11:20:00", Some("12:40:00"))),
            ("C".to_string(), call("c", "12:40:05", None)),
        ];
        let merged = state.merge(found, at("12:42:10"));
        assert_eq!(
            merged,
            Merged {
                new: 1,
                listed_again: 1
            }
        );
        let rooms: Vec<&String> = state.rooms.keys().collect();
        assert_eq!(rooms, ["B", "C"]);
        assert_eq!(state.rooms["B"][0].destroyed, Some(at("12:40:00")));
        assert_eq!(state.scanned_until, Some(at("12:42:10")));
    }

    #[test]
    fn a_call_let_go_inside_the_overlap_is_remembered_until_the_overlap_passes_it() {
        let mut state = ScanState::default();
        // The first scan: every call is new, even an old one.
        let first = vec![
            ("D".to_string(), call("d", "12:29:00", Some("12:30:40"))),
            ("E".to_string(), call("e", "10:00:00", Some("10:05:00"))),
        ];
        assert_eq!(state.merge(first, at("12:32:10")).new, 2);
        // D is fetched to its end and retires; it was created inside the overlap the next
        // scan lists again (from 12:27:10), so it is remembered; E is not.
        state.retire("D");
        state.retire("E");
        assert_eq!(state.done.keys().collect::<Vec<_>>(), ["d"]);
        let again = vec![
            ("D".to_string(), call("d", "12:29:00", Some("12:30:40"))),
            ("E".to_string(), call("e", "10:00:00", Some("10:05:00"))),
        ];
        assert_eq!(
            state.merge(again, at("12:37:10")),
            Merged {
                new: 0,
                listed_again: 2
            }
        );
        assert!(state.rooms.is_empty());
        // The overlap now starts at 12:32:10: D is forgotten, and could not be new again.
        assert!(state.done.is_empty());
        // A pruned call (its room still has a running one) is let go the same way.
        let next = vec![
            ("F".to_string(), call("f1", "12:35:00", Some("12:36:00"))),
            ("F".to_string(), call("f2", "12:36:30", None)),
        ];
        state.merge(next, at("12:38:10"));
        state.prune("F", Some(at("12:37:00")));
        assert_eq!(state.rooms["F"], [call("f2", "12:36:30", None)]);
        assert_eq!(state.done.keys().collect::<Vec<_>>(), ["f1"]);
        let relisted = vec![("F".to_string(), call("f1", "12:35:00", Some("12:36:00")))];
        assert_eq!(state.merge(relisted, at("12:43:10")).listed_again, 1);
        // A state saved before `done` existed still loads.
        let old: ScanState = serde_json::from_str(
            r#"{"scanned_until":"2026-11-25T12:00:00Z","rooms":{"A":[{"created":"2026-11-25T11:00:00Z","call_id":"a"}]}}"#,
        )
        .unwrap();
        assert!(old.done.is_empty());
        assert_eq!(old.rooms["A"], [call("a", "11:00:00", None)]);
    }

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
