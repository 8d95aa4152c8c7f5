//! The emulator's calls: a deterministic model of rooms that have a call now and then,
//! listed by `ListRoomInfo`; room-level data of these rooms exists only during a call.
//!
//! Each app has [`MODEL_ROOMS`] rooms, `live-0`, `meet-1`, `live-2`, …: even ones start
//! with `live-`, odd ones with `meet-`, so a glob can pick half. Room `k` has a call every
//! `period` (20 to 90 minutes), lasting `duration` (3 minutes to `period` − 5), starting
//! at its own second offset, each call with a new id; the first [`LONG_ROOMS`] rooms have
//! calls of hours instead. Everything is a pure function of
//! the app, the room and the time, so tests can compute exactly what exists.

use chrono::{DateTime, TimeDelta, Utc};

use super::hash::hash_fields;

/// Rooms with calls in each app.
pub const MODEL_ROOMS: usize = 12;

/// The first rooms (`live-0`, `meet-1`) have long calls: 4 to 8 hours apart, each
/// lasting all but 20 to 60 minutes of that. A scan reaches back to such a call's start
/// to learn when it ends, and so lists again the short calls of other rooms that ended,
/// were fetched and retired meanwhile.
pub const LONG_ROOMS: usize = 2;

/// How long after its creation a call shows in `ListRoomInfo` (and after its end, its
/// destruction).
pub const LIST_DELAY: TimeDelta = TimeDelta::seconds(20);

/// One call: `room_id` from `created` until `destroyed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// A new id for each call of a room.
    pub call_id: String,
    /// The model room of the call.
    pub room_id: String,
    /// When the call began.
    pub created: DateTime<Utc>,
    /// When it ends (possibly after the emulator's now: then it is still running).
    pub destroyed: DateTime<Utc>,
}

/// The id of model room `k`.
pub fn model_room(k: usize) -> String {
    let prefix = if k.is_multiple_of(2) { "live" } else { "meet" };
    format!("{prefix}-{k}")
}

/// The index of a model room, `None` for any other room id.
fn room_index(room_id: &str) -> Option<usize> {
    let (prefix, n) = room_id.split_once('-')?;
    let k: usize = n.parse().ok()?;
    (k < MODEL_ROOMS && model_room(k) == room_id && (prefix == "live" || prefix == "meet"))
        .then_some(k)
}

/// When room `k` of `app_id` has its calls, in seconds: one every `period`, lasting
/// `duration`, the first at `offset` past the epoch.
pub(crate) struct Rhythm {
    period: i64,
    duration: i64,
    offset: i64,
}

impl Rhythm {
    fn of(app_id: &str, k: usize) -> Rhythm {
        let h = hash_fields(&[b"calls", app_id.as_bytes(), &(k as u64).to_le_bytes()]);
        if k < LONG_ROOMS {
            // A call of hours, with many short calls of the other rooms beginning and
            // ending inside it.
            let period = [4, 6, 8][(h % 3) as usize] * 3600;
            let duration = period - 1200 - ((h >> 8) % 2400) as i64;
            let offset = ((h >> 32) % period as u64) as i64;
            return Rhythm {
                period,
                duration,
                offset,
            };
        }
        let period = [20, 30, 45, 60, 90][(h % 5) as usize] * 60;
        let duration = 180 + ((h >> 8) % (period as u64 - 480)) as i64;
        let offset = ((h >> 32) % period as u64) as i64;
        Rhythm {
            period,
            duration,
            offset,
        }
    }

    /// Whether a call is on at some time in `[from, to)`: one began before `to` and less
    /// than `duration` before `from`.
    pub(crate) fn in_call(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.starts(from.timestamp() - self.duration + 1, to.timestamp())
            .next()
            .is_some()
    }

    /// The starts (Unix seconds) of the calls begun in `[from, to)`.
    fn starts(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
        let first = self.offset + (from - self.offset).div_euclid(self.period) * self.period;
        let first = if first < from {
            first + self.period
        } else {
            first
        };
        (0..)
            .map(move |n| first + n * self.period)
            .take_while(move |s| *s < to)
    }
}

fn call(app_id: &str, k: usize, start: i64, duration: i64) -> Option<Call> {
    let room_id = model_room(k);
    let id = hash_fields(&[
        b"call",
        app_id.as_bytes(),
        room_id.as_bytes(),
        &start.to_le_bytes(),
    ]);
    Some(Call {
        call_id: format!("{id:016x}"),
        room_id,
        created: DateTime::from_timestamp(start, 0)?,
        destroyed: DateTime::from_timestamp(start + duration, 0)?,
    })
}

/// Every call of `app_id` created in `[from, to)`, by creation time then room.
pub fn created_in(app_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Call> {
    let mut out = Vec::new();
    for k in 0..MODEL_ROOMS {
        let r = Rhythm::of(app_id, k);
        for s in r.starts(from.timestamp(), to.timestamp()) {
            out.extend(call(app_id, k, s, r.duration));
        }
    }
    out.sort_by(|a, b| (a.created, &a.room_id).cmp(&(b.created, &b.room_id)));
    out
}

/// Whether `room_id` of `app_id` is in a call at some time in `[from, to)`: `None` when
/// it is not a model room (such rooms always have data, as before discovery existed).
pub fn in_call(
    app_id: &str,
    room_id: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<bool> {
    Some(rhythm_of(app_id, room_id)?.in_call(from, to))
}

/// When `room_id` of `app_id` has its calls; `None` when it is not a model room. Worked
/// out once per request, then asked bucket by bucket.
pub(crate) fn rhythm_of(app_id: &str, room_id: &str) -> Option<Rhythm> {
    Some(Rhythm::of(app_id, room_index(room_id)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn model_rooms_are_live_or_meet_and_nothing_else_is() {
        assert_eq!(model_room(0), "live-0");
        assert_eq!(model_room(7), "meet-7");
        assert_eq!(room_index("meet-7"), Some(7));
        for other in ["live-1", "meet-0", "live-12", "room-1", "live-", "live-01"] {
            assert_eq!(room_index(other), None, "{other}");
        }
    }

    #[test]
    fn calls_recur_with_new_ids_and_data_exists_only_during_them() {
        let (from, to) = (at("2026-11-25T00:00:00Z"), at("2026-11-26T00:00:00Z"));
        let calls = created_in("app", from, to);
        // Every room has calls each day, at least 16 (90-minute period); a long room
        // 3 to 6, each over 3 hours, with short calls of other rooms inside.
        for k in 0..MODEL_ROOMS {
            let n = calls.iter().filter(|c| c.room_id == model_room(k)).count();
            if k < LONG_ROOMS {
                assert!((3..=6).contains(&n), "room {k}: {n} calls");
            } else {
                assert!(n >= 16, "room {k}: {n} calls");
            }
        }
        let long_calls = calls
            .iter()
            .filter(|c| c.room_id == model_room(0) && c.destroyed < to);
        for long in long_calls {
            assert!(long.destroyed - long.created >= TimeDelta::hours(3));
            let inside = calls.iter().filter(|c| {
                c.room_id != long.room_id
                    && c.created > long.created
                    && c.destroyed < long.destroyed
            });
            assert!(inside.count() >= 10);
        }
        let mut ids: Vec<&str> = calls.iter().map(|c| c.call_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), calls.len(), "call ids are unique");
        assert!(calls.windows(2).all(|w| w[0].created <= w[1].created));
        let c = &calls[3];
        let s = TimeDelta::seconds(1);
        assert!(c.destroyed - c.created >= TimeDelta::minutes(3));
        assert_eq!(
            in_call("app", &c.room_id, c.created, c.created + s),
            Some(true)
        );
        assert_eq!(
            in_call("app", &c.room_id, c.destroyed - s, c.destroyed),
            Some(true)
        );
        assert_eq!(
            in_call("app", &c.room_id, c.destroyed, c.destroyed + s),
            Some(false)
        );
        assert_eq!(
            in_call("app", &c.room_id, c.created - s, c.created),
            Some(false)
        );
        assert_eq!(in_call("app", "room-1", from, to), None);
        // The same calls whatever the window they are asked in.
        let halves = [
            created_in("app", from, at("2026-11-25T12:00:00Z")),
            created_in("app", at("2026-11-25T12:00:00Z"), to),
        ]
        .concat();
        assert_eq!(halves, calls);
    }
}
