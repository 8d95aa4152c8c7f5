//! The API's documented limits (`docs/api.md`), each stated once and named for what it
//! limits. The job plans with them; the emulator keeps rules of its own, written from
//! the same page, so that a misreading shared by both would still show in a test.

use chrono::TimeDelta;

/// Default endpoint of the OpenAPI gateway.
pub const DEFAULT_ENDPOINT: &str = "https://rtc.volcengineapi.com";
/// Default signing region.
pub const DEFAULT_REGION: &str = "cn-north-1";
/// Requests per second one account may send (`ListRealTimeQuality` and `ListQuality`).
pub const REQUESTS_PER_SECOND: f64 = 2.0;

/// How far back `ListRealTimeQuality` serves: `StartTime` at most this long ago.
pub const REALTIME_HORIZON: TimeDelta = TimeDelta::minutes(60);
/// Longest span one `ListRealTimeQuality` request may ask for.
pub const REALTIME_MAX_SPAN: TimeDelta = TimeDelta::minutes(60);
/// The width of one real-time point: each is stamped with its bucket's start.
pub const REALTIME_BUCKET: TimeDelta = TimeDelta::seconds(30);
/// How long after a bucket ends its real-time point is final.
pub const REALTIME_DELAY: TimeDelta = TimeDelta::minutes(1);
/// Most users one request may name (`UserId`, only with `RoomId`).
pub const MAX_USERS_PER_REQUEST: usize = 20;
/// The indicators `ListRealTimeQuality` and `ListQuality` accept.
pub const INDICATORS: [&str; 5] = [
    "join_room_success_rate",
    "stall_rate",
    "first_frame_send_success_rate",
    "first_frame_recv_success_rate",
    "network_trans_delay",
];

/// How far back `ListRoomInfo` lists calls (BytePlus).
pub const ROOM_INFO_LOOKBACK: TimeDelta = TimeDelta::days(14);
/// Longest window one `ListRoomInfo` request covers; a longer one is cut (BytePlus).
pub const ROOM_INFO_MAX_SPAN: TimeDelta = TimeDelta::hours(24);
/// Most calls one `ListRoomInfo` page holds (a larger `PageSize` is treated as this).
pub const ROOM_INFO_MAX_PAGE_SIZE: u32 = 100;

/// How far back `ListQuality` serves.
pub const OFFLINE_LOOKBACK: TimeDelta = TimeDelta::days(30);
/// Longest span one `ListQuality` request may ask for.
pub const OFFLINE_MAX_SPAN: TimeDelta = TimeDelta::days(7);
/// How long after the fact `ListQuality` has the data.
pub const OFFLINE_DELAY: TimeDelta = TimeDelta::hours(8);
/// The width of one `ListQuality` point at the granularity rtcq asks for.
pub const OFFLINE_BUCKET: TimeDelta = TimeDelta::minutes(5);
