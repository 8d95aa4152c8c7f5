//! `ListRoomInfo` as the emulator serves it: the query checked like the real service
//! (`InvalidParameter` codes), then one page of the calls of the call model created in
//! the window, as the reference describes: calls matched by creation time, a 14-day
//! lookback, a span over 24 hours cut to 24 hours without an error, pages of at most 100,
//! and a 20 s delay before a call (or its end) shows.

use chrono::{DateTime, TimeDelta, Utc};

use super::calls::{self, LIST_DELAY};
use super::data::format_timestamp;
use super::error::ApiError;
use super::validate::{bad, check_app_id, parse_time};
use volc_rtc::room_info::{CallInfo, RoomInfoPage};

/// How far back `StartTime` may go.
pub(crate) const LOOKBACK: TimeDelta = TimeDelta::days(14);

/// The longest window one request covers; a longer one is cut to this.
pub(crate) const MAX_SPAN: TimeDelta = TimeDelta::hours(24);

/// The most calls one page holds: a larger `PageSize` is treated as this.
const MAX_PAGE_SIZE: u32 = 100;

/// The page size when none is asked.
const DEFAULT_PAGE_SIZE: u32 = 20;

/// Answers the query `pairs` (decoded) at data-clock time `now`.
pub(crate) fn answer(
    pairs: &[(String, String)],
    now: DateTime<Utc>,
) -> Result<RoomInfoPage, ApiError> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };
    // The same rules and messages as `ListRealTimeQuality`'s body.
    let owned = |key: &str| get(key).map(str::to_string);
    let app_id = &check_app_id(owned("AppId"))?;
    let start = parse_time("StartTime", owned("StartTime"))?;
    let end = parse_time("EndTime", owned("EndTime"))?;
    if start >= end {
        return Err(bad(format!(
            "StartTime {} is not before EndTime {}",
            get("StartTime").unwrap_or_default(),
            get("EndTime").unwrap_or_default()
        )));
    }
    if start < now - LOOKBACK {
        return Err(bad(format!(
            "StartTime {} is more than 14 days ago",
            get("StartTime").unwrap_or_default()
        )));
    }
    let page_num = number("PageNum", get("PageNum"), 1)?;
    let page_size = number("PageSize", get("PageSize"), DEFAULT_PAGE_SIZE)?.min(MAX_PAGE_SIZE);
    let end = end.min(start + MAX_SPAN).min(now - LIST_DELAY);
    let calls = if start < end {
        calls::created_in(app_id, start, end)
    } else {
        Vec::new()
    };
    Ok(page(&calls, page_num, page_size, now))
}

/// Page `page_num` of `calls`, as seen at `now`.
fn page(calls: &[calls::Call], page_num: u32, page_size: u32, now: DateTime<Utc>) -> RoomInfoPage {
    let from = (page_num as usize - 1).saturating_mul(page_size as usize);
    let shown: Vec<CallInfo> = calls
        .iter()
        .skip(from)
        .take(page_size as usize)
        .map(|c| {
            let finished = c.destroyed + LIST_DELAY <= now;
            CallInfo {
                call_id: c.call_id.clone(),
                room_id: c.room_id.clone(),
                is_finished: finished,
                created_time: format_timestamp(c.created),
                destroy_time: if finished {
                    format_timestamp(c.destroyed)
                } else {
                    String::new()
                },
                active_user_num: if finished { 0 } else { 2 },
            }
        })
        .collect();
    RoomInfoPage {
        total: calls.len() as u64,
        has_more: from + shown.len() < calls.len(),
        page_num,
        page_size,
        room_list: shown,
    }
}

fn number(name: &str, value: Option<&str>, default: u32) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(format!("{name} {v:?} is not a whole number of at least 1"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pages_hold_the_calls_created_in_the_window_and_running_ones_have_no_end() {
        let now = at("2026-11-25T12:00:00Z");
        let (from, to) = ("2026-11-25T00:00:00Z", "2026-11-25T12:00:00Z");
        let all = calls::created_in("app", at(from), now - LIST_DELAY);
        assert!(all.len() > 100, "{} calls: enough for two pages", all.len());
        let mut seen = Vec::new();
        for n in 1.. {
            let n_text = n.to_string();
            let p = answer(
                &query(&[
                    ("AppId", "app"),
                    ("StartTime", from),
                    ("EndTime", to),
                    ("PageNum", &n_text),
                    ("PageSize", "100"),
                ]),
                now,
            )
            .unwrap();
            assert_eq!(p.total, all.len() as u64);
            seen.extend(p.room_list.iter().map(|c| c.call_id.clone()));
            if !p.has_more {
                assert!(p.room_list.len() < 100 || seen.len() == all.len());
                break;
            }
            assert_eq!(p.room_list.len(), 100);
        }
        let want: Vec<String> = all.iter().map(|c| c.call_id.clone()).collect();
        assert_eq!(seen, want);
        let p = answer(
            &query(&[
                ("AppId", "app"),
                ("StartTime", from),
                ("EndTime", to),
                ("PageSize", "1000"),
            ]),
            now,
        )
        .unwrap();
        assert_eq!((p.page_num, p.page_size, p.room_list.len()), (1, 100, 100));
        let running = all.iter().find(|c| c.destroyed + LIST_DELAY > now).unwrap();
        let p = answer(
            &query(&[
                ("AppId", "app"),
                ("StartTime", &running.created.to_rfc3339()),
                ("EndTime", to),
            ]),
            now,
        )
        .unwrap();
        let shown = p
            .room_list
            .iter()
            .find(|c| c.call_id == running.call_id)
            .unwrap();
        assert!(!shown.is_finished);
        assert_eq!(shown.destroy_time, "");
    }

    #[test]
    fn the_query_is_checked_with_the_real_codes() {
        let now = at("2026-11-25T12:00:00Z");
        let err = |pairs: &[(&str, &str)]| answer(&query(pairs), now).unwrap_err().to_string();
        assert!(
            err(&[
                ("StartTime", "2026-11-25T11:00:00Z"),
                ("EndTime", "2026-11-25T12:00:00Z")
            ])
            .contains("AppId is required")
        );
        assert!(
            err(&[
                ("AppId", "a"),
                ("StartTime", "yesterday"),
                ("EndTime", "2026-11-25T12:00:00Z")
            ])
            .contains("StartTime \"yesterday\" is not an RFC 3339 time")
        );
        assert!(
            err(&[
                ("AppId", "a"),
                ("StartTime", "2026-11-01T11:00:00Z"),
                ("EndTime", "2026-11-01T12:00:00Z")
            ])
            .contains("is more than 14 days ago")
        );
        assert!(
            err(&[
                ("AppId", "a"),
                ("StartTime", "2026-11-25T11:00:00Z"),
                ("EndTime", "2026-11-25T12:00:00Z"),
                ("PageNum", "0")
            ])
            .contains("PageNum \"0\" is not a whole number")
        );
    }
}
