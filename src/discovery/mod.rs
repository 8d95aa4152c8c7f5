//! Room discovery (docs/design.md, "Room discovery"): each `rooms = "active"` entry scans
//! `ListRoomInfo` for the calls created since its last scan, keeps the calls that still
//! matter in the state, and turns every room that still owes data into targets.
//!
//! A room is owed only the time its calls cover: a cursor that falls between two calls
//! moves to the next call, and a room whose last call has ended and been fetched is
//! retired (it comes back with its next call). A room found by a later scan owes from its
//! call's start, so a call the runs could not reach in time is recorded as a gap; on the
//! first scan of a pipeline a room owes only from the horizon, like a new target.

pub(crate) mod calls;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::Retryable;
use chrono::{DateTime, SecondsFormat, SubsecRound, TimeDelta, Utc};

use crate::api::limit::{Pacer, RetryPolicy, THROTTLE_PAUSE};
use crate::api::room_info::{CallInfo, RoomInfoQuery};
use crate::api::{ApiError, Client};
use crate::discovery::calls::{CallRecord, Calls, OVERLAP, ScanState, UnsureLoss};
use crate::domain::range::merged;
use crate::domain::{Target, TimeRange};
use crate::plan::{Progress, Window, ceil_to, floor_to};
use calls::RoomScan;
use volc_rtc::limits::{REALTIME_BUCKET, ROOM_INFO_MAX_PAGE_SIZE, ROOM_INFO_MAX_SPAN};

/// How far back the first scan of a pipeline looks, to find calls begun long ago and
/// still running inside the horizon: the most one request covers.
pub(crate) const FIRST_LOOKBACK: TimeDelta = TimeDelta::hours(24);

/// How far back `ListRoomInfo` answers (14 days), with a margin.
pub(crate) const MAX_LOOKBACK: TimeDelta = TimeDelta::days(13);

/// The history of the rooms a first scan found: for each room, the parts of its calls
/// inside `[from, until)` (`until`: the first horizon, where the rooms' real-time data
/// begins), merged. Nothing outside a call is owed.
pub(crate) fn history_in_calls(
    state: &ScanState,
    from: DateTime<Utc>,
    until: DateTime<Utc>,
) -> BTreeMap<String, Vec<TimeRange>> {
    let mut out = BTreeMap::new();
    for (room, calls) in &state.rooms {
        let spans: Vec<TimeRange> = calls
            .iter()
            .map(|c| TimeRange {
                start: c.created.max(from),
                end: c.destroyed.unwrap_or(until).min(until),
            })
            .filter(|r| r.start < r.end)
            .collect();
        let spans = merged(spans);
        if !spans.is_empty() {
            out.insert(room.clone(), spans);
        }
    }
    out
}

/// Pages one window may take before the answer is judged endless (a misbehaving
/// server): 100,000 calls.
const MAX_PAGES: u32 = 1000;

/// What the scans of one run did, for the summary and metrics.
#[derive(Debug, Default)]
pub(crate) struct ScanStats {
    /// `ListRoomInfo` requests sent, retries included.
    pub(crate) requests: AtomicU64,
    /// Calls the answers listed that the scans follow (new or already known).
    pub(crate) calls_found: AtomicU64,
    /// Calls dropped as unusable: no room id, unreadable times, or ended before begun.
    pub(crate) calls_dropped: AtomicU64,
}

/// Scans `ListRoomInfo` at its own pace, with the run's retry policy.
pub(crate) struct Scanner {
    client: Client,
    pacer: Pacer,
    policy: RetryPolicy,
    /// The scans' counters.
    pub(crate) stats: Arc<ScanStats>,
}

impl Scanner {
    /// A scanner sending with `client` at `requests_per_second`.
    pub(crate) fn new(client: Client, requests_per_second: f64, policy: RetryPolicy) -> Self {
        Scanner {
            client,
            pacer: Pacer::new(requests_per_second),
            policy,
            stats: Arc::new(ScanStats::default()),
        }
    }

    /// Scans the calls of `scan` created since `state`'s last scan (the last
    /// `first_lookback`, at least [`FIRST_LOOKBACK`] and at most the API's 14 days less a
    /// day, the first time) up to `now`, and records them in `state`. On an error
    /// nothing is recorded: the next run scans the same window again.
    ///
    /// `ListRoomInfo` matches calls by creation time, so the end of a call seen running
    /// is learnt only by listing its creation again: the scan starts no later than the
    /// oldest call still running (within the API's lookback).
    pub(crate) async fn scan(
        &self,
        scan: &RoomScan,
        state: &mut ScanState,
        now: DateTime<Utc>,
        first_lookback: TimeDelta,
    ) -> Result<(), ApiError> {
        // Whole seconds, as the query carries them.
        let now = now.trunc_subsecs(0);
        let since_last = state
            .scanned_until
            .map_or(now - first_lookback.max(FIRST_LOOKBACK), |t| t - OVERLAP);
        let oldest_running = state
            .rooms
            .values()
            .flatten()
            .filter(|c| c.destroyed.is_none())
            .map(|c| c.created)
            .min();
        let from = oldest_running
            .map_or(since_last, |t| since_last.min(t))
            .max(now - MAX_LOOKBACK);
        let mut found = Vec::new();
        let mut start = from;
        while start < now {
            let end = (start + ROOM_INFO_MAX_SPAN).min(now);
            self.scan_window(scan, start, end, &mut found).await?;
            start = end;
        }
        let merged = state.merge(found, now);
        tracing::debug!(app_id = %scan.app_id, new = merged.new, listed_again = merged.listed_again, "room discovery scanned");
        Ok(())
    }

    /// Every page of the calls of `scan.app_id` created in `[start, end)`.
    async fn scan_window(
        &self,
        scan: &RoomScan,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        found: &mut Vec<(String, CallRecord)>,
    ) -> Result<(), ApiError> {
        let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        for page_num in 1..=MAX_PAGES {
            let query = RoomInfoQuery {
                app_id: scan.app_id.clone(),
                start_time: rfc(start),
                end_time: rfc(end),
                page_num,
                page_size: ROOM_INFO_MAX_PAGE_SIZE,
            };
            let page = self.page(&query).await?;
            let full = page.room_list.len() >= ROOM_INFO_MAX_PAGE_SIZE as usize;
            // A short page ends the list unless `HasMore` says more exist; an empty page
            // ends it whatever `HasMore` says, so a stuck flag costs one request.
            let last = page.room_list.is_empty() || (!full && !page.has_more);
            for info in page.room_list {
                if let Some((room, call)) = self.accept(scan, info) {
                    found.push((room, call));
                }
            }
            if last {
                return Ok(());
            }
        }
        Err(ApiError::Decode(format!(
            "ListRoomInfo for app {} kept answering more pages after {MAX_PAGES}",
            scan.app_id
        )))
    }

    /// One page, paced and retried as `ListRealTimeQuality` requests are.
    async fn page(
        &self,
        query: &RoomInfoQuery,
    ) -> Result<crate::api::room_info::RoomInfoPage, ApiError> {
        let attempt = || async {
            self.pacer.acquire().await;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let page = self.client.list_room_info(query).await;
            if let Err(e) = &page
                && e.is_throttle()
            {
                self.pacer.back_off(THROTTLE_PAUSE).await;
            }
            page
        };
        attempt
            .retry(self.policy.backoff())
            .sleep(tokio::time::sleep)
            .when(ApiError::is_retryable)
            .notify(|e: &ApiError, after: Duration| {
                tracing::warn!(app_id = %query.app_id, page = query.page_num, error = %e, retry_in_ms = after.as_millis() as u64, "ListRoomInfo failed, retrying");
            })
            .await
    }

    /// A listed call as the state keeps it, when usable and followed by `scan`.
    fn accept(&self, scan: &RoomScan, info: CallInfo) -> Option<(String, CallRecord)> {
        let Some((room, call)) = usable_call(&info) else {
            self.stats.calls_dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(app_id = %scan.app_id, room_id = %info.room_id, call_id = %info.call_id, "dropped a call ListRoomInfo listed without a room id or with unreadable times");
            return None;
        };
        if !scan.follows(&room) {
            return None;
        }
        self.stats.calls_found.fetch_add(1, Ordering::Relaxed);
        Some((room, call))
    }
}

/// A listed call as the state keeps it; `None` for one without a usable room id, with
/// a creation or end time that does not parse, that ends before it begins, or that is
/// finished without an end time (it would be followed as running forever).
fn usable_call(info: &CallInfo) -> Option<(String, CallRecord)> {
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    crate::config::check_id(&info.room_id).ok()?;
    let created = parse(&info.created_time)?;
    let destroyed = match info.destroy_time.as_str() {
        "" if info.is_finished => return None,
        "" => None,
        t => Some(parse(t).filter(|d| *d >= created)?),
    };
    Some((
        info.room_id.clone(),
        CallRecord {
            created,
            call_id: info.call_id.clone(),
            destroyed,
        },
    ))
}

/// The targets of the rooms `discovery` knows for `scans`, in scan then room order,
/// without the ones already in `listed`.
pub(crate) fn room_targets(
    scans: &[RoomScan],
    discovery: &BTreeMap<String, ScanState>,
    listed: &[Target],
) -> Vec<(Target, String)> {
    let mut out = Vec::new();
    if scans.is_empty() {
        // Most pipelines list every target: no key set to build at each start.
        return out;
    }
    let listed: BTreeSet<String> = listed.iter().map(Target::key).collect();
    for scan in scans {
        let Some(state) = discovery.get(&scan.app_id) else {
            continue;
        };
        for room in state.rooms.keys().filter(|r| scan.follows(r)) {
            for t in scan.targets(room) {
                if !listed.contains(&t.key()) {
                    out.push((t, room.clone()));
                }
            }
        }
    }
    out
}

/// Fits a discovered room target's progress to its calls at `window`; `false` when the
/// target is done (nothing of its calls is left to fetch): its room retires unless
/// another of its targets still owes, and then this one owes nothing up to the settled
/// end.
///
/// `found_late`: the room was found by a scan after the first, so a target without a
/// cursor owes from its first call's start (what of it left the horizon is a gap); on
/// the first scan it owes only from the horizon. Either way the cursor moves past time
/// without a call.
pub(crate) fn fit_to_calls(
    p: &mut Progress,
    calls: &[CallRecord],
    window: &Window,
    found_late: bool,
) -> bool {
    if !p.incomplete.is_empty() {
        return true;
    }
    let first_call = calls
        .iter()
        .map(|c| floor_to(c.created, REALTIME_BUCKET))
        .min();
    let from = match p.cursor {
        Some(c) => c,
        None if found_late => first_call.unwrap_or(window.settled_end),
        None => window.horizon,
    };
    match calls.next_covered(from) {
        None => {
            p.cursor = Some(from.max(window.settled_end));
            false
        }
        Some(t) => {
            // Owed from the call's first bucket: nothing is asked for before it, so no
            // request comes back empty for time the room had no call.
            p.cursor = Some(from.max(floor_to(t, REALTIME_BUCKET)));
            true
        }
    }
}

/// What discovered room `target` lost in `range`, to record now: the parts its calls
/// cover. When its entry's scan failed this run (its app in `stale`) a call seen running may
/// have ended since: the parts only such a call covers are kept in the state as unsure,
/// for the next scan that succeeds to cut to the call's end ([`confirm_unsure`]).
pub(crate) fn lost_in_calls(
    discovery: &mut BTreeMap<String, ScanState>,
    stale: &BTreeSet<String>,
    target: &Target,
    range: TimeRange,
) -> Vec<TimeRange> {
    let (Some(room), Some(state)) = (target.room_id.as_deref(), discovery.get_mut(&target.app_id))
    else {
        return Vec::new();
    };
    let calls = state.rooms.get(room).map_or(&[][..], Vec::as_slice);
    if !stale.contains(&target.app_id) {
        return covered(calls, range);
    }
    let sure = covered(calls.iter().filter(|c| c.destroyed.is_some()), range);
    let unsure: Vec<TimeRange> = covered(calls.iter().filter(|c| c.destroyed.is_none()), range)
        .into_iter()
        .flat_map(|part| part.minus(sure.iter().copied()))
        .collect();
    state.unsure.extend(unsure.into_iter().map(|r| UnsureLoss {
        target: target.key(),
        room: room.to_string(),
        start: r.start,
        end: r.end,
    }));
    sure
}

/// The unsure losses of `scan`'s rooms, now that its scan succeeded: each cut to the
/// room's calls as now known, with its target; taken out of `state`. A loss of a target
/// the entry no longer makes (a product type removed) is dropped.
pub(crate) fn confirm_unsure(scan: &RoomScan, state: &mut ScanState) -> Vec<(Target, TimeRange)> {
    let mut out = Vec::new();
    for u in std::mem::take(&mut state.unsure) {
        let Some(target) = scan.targets(&u.room).find(|t| t.key() == u.target) else {
            continue;
        };
        let calls = state.rooms.get(&u.room).map_or(&[][..], Vec::as_slice);
        let range = TimeRange {
            start: u.start,
            end: u.end,
        };
        for r in covered(calls, range) {
            out.push((target.clone(), r));
        }
    }
    out
}

/// The parts of `range` that `calls` cover, on the 30 s grid, oldest first: a room has
/// data only during its calls, so what a discovered room lost is only there (a running
/// call covers up to the end of `range`).
pub(crate) fn covered<'c>(
    calls: impl IntoIterator<Item = &'c CallRecord>,
    range: TimeRange,
) -> Vec<TimeRange> {
    merged(
        calls
            .into_iter()
            .map(|c| TimeRange {
                start: floor_to(c.created, REALTIME_BUCKET).max(range.start),
                end: c
                    .destroyed
                    .map_or(range.end, |d| ceil_to(d, REALTIME_BUCKET))
                    .min(range.end),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(room: &str, created: &str, destroyed: &str) -> CallInfo {
        CallInfo {
            call_id: "c1".into(),
            room_id: room.into(),
            created_time: created.into(),
            destroy_time: destroyed.into(),
            ..CallInfo::default()
        }
    }

    #[test]
    fn unusable_calls_are_dropped_and_times_are_read_with_their_offset() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            usable_call(&info(
                "r1",
                "2026-11-25T19:00:05+08:00",
                "2026-11-25T19:10:00+08:00"
            )),
            Some((
                "r1".to_string(),
                CallRecord {
                    created: t("2026-11-25T11:00:05Z"),
                    call_id: "c1".into(),
                    destroyed: Some(t("2026-11-25T11:10:00Z")),
                }
            ))
        );
        let running = usable_call(&info("r1", "2026-11-25T11:00:00Z", "")).unwrap();
        assert_eq!(running.1.destroyed, None);
        for bad in [
            info("", "2026-11-25T11:00:00Z", ""),
            info("a\u{0}b", "2026-11-25T11:00:00Z", ""),
            info("r1", "yesterday", ""),
            info("r1", "", ""),
            info("r1", "2026-11-25T11:00:00Z", "soon"),
            info("r1", "2026-11-25T11:00:00Z", "2026-11-25T10:59:59Z"),
            CallInfo {
                is_finished: true,
                ..info("r1", "2026-11-25T11:00:00Z", "")
            },
        ] {
            assert_eq!(usable_call(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_discovered_room_lost_only_what_its_calls_cover() {
        let t = |s: &str| format!("2026-11-25T{s}Z").parse::<DateTime<Utc>>().unwrap();
        let call = |id: &str, from: &str, to: Option<&str>| CallRecord {
            created: t(from),
            call_id: id.into(),
            destroyed: to.map(t),
        };
        let calls = [
            call("a", "10:05:10", Some("10:20:40")),
            call("b", "10:18:00", Some("10:25:00")),
            call("c", "10:40:50", None),
        ];
        let range = |a: &str, b: &str| TimeRange {
            start: t(a),
            end: t(b),
        };
        // Calls on the 30 s grid (overlapping ones as one), the time between them left
        // out, a running call up to the end of the range.
        assert_eq!(
            covered(&calls, range("10:00:00", "11:00:00")),
            [range("10:05:00", "10:25:00"), range("10:40:30", "11:00:00")]
        );
        assert_eq!(
            covered(&calls, range("10:21:00", "10:41:00")),
            [range("10:21:00", "10:25:00"), range("10:40:30", "10:41:00")]
        );
        assert_eq!(covered(&calls, range("10:25:00", "10:40:30")), []);
        assert_eq!(covered(&[], range("10:00:00", "11:00:00")), []);
    }

    #[test]
    fn a_cursor_between_calls_moves_to_the_next_call_and_a_done_room_retires() {
        let t = |s: &str| format!("2026-11-25T{s}Z").parse::<DateTime<Utc>>().unwrap();
        let calls = [
            CallRecord {
                created: t("11:10:10"),
                call_id: "a".into(),
                destroyed: Some(t("11:20:00")),
            },
            CallRecord {
                created: t("11:40:40"),
                call_id: "b".into(),
                destroyed: None,
            },
        ];
        let window = Window::at(t("12:00:10"), TimeDelta::minutes(5));
        let at = |cursor: &str| Progress {
            cursor: Some(t(cursor)),
            incomplete: Default::default(),
        };
        // Inside a call: stays. Between calls: moves to the next call's first bucket.
        let mut p = at("11:15:00");
        assert!(fit_to_calls(&mut p, &calls, &window, true));
        assert_eq!(p.cursor, Some(t("11:15:00")));
        let mut p = at("11:25:00");
        assert!(fit_to_calls(&mut p, &calls, &window, true));
        assert_eq!(p.cursor, Some(t("11:40:30")));
        // Found late and new: owed from its first call; on the first scan, from the
        // horizon (11:01) at the earliest.
        let mut p = Progress::default();
        assert!(fit_to_calls(&mut p, &calls, &window, true));
        assert_eq!(p.cursor, Some(t("11:10:00")));
        let mut p = Progress::default();
        assert!(fit_to_calls(&mut p, &calls, &window, false));
        assert_eq!(p.cursor, Some(t("11:10:00").max(window.horizon)));
        // Past the last call's end: done.
        let ended = &calls[..1];
        let mut p = at("11:20:00");
        assert!(!fit_to_calls(&mut p, ended, &window, true));
    }
}
