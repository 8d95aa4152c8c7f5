//! Wire types of `ListRoomInfo` (version 2023-11-01): the calls of an app, for room
//! discovery. A GET: the request is its query string. Every response field is optional,
//! as for `ListRealTimeQuality`; a missing field is empty, an unknown one is ignored.

use serde::{Deserialize, Serialize};

use crate::realtime::ResponseMetadata;

/// The action name in the query string.
pub const ROOM_INFO_ACTION: &str = "ListRoomInfo";

/// One page of the calls of `app_id` created in `[start_time, end_time)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfoQuery {
    /// The app whose calls are listed.
    pub app_id: String,
    /// RFC 3339: calls created at or after this instant.
    pub start_time: String,
    /// RFC 3339: calls created before this instant (at most 24 hours after the start).
    pub end_time: String,
    /// 1-based page number.
    pub page_num: u32,
    /// Calls per page, at most [`ROOM_INFO_MAX_PAGE_SIZE`](crate::limits::ROOM_INFO_MAX_PAGE_SIZE).
    pub page_size: u32,
}

impl RoomInfoQuery {
    /// The query parameters after `Action` and `Version`, unencoded.
    pub fn params(&self) -> [(&'static str, String); 5] {
        [
            ("AppId", self.app_id.clone()),
            ("StartTime", self.start_time.clone()),
            ("EndTime", self.end_time.clone()),
            ("PageNum", self.page_num.to_string()),
            ("PageSize", self.page_size.to_string()),
        ]
    }
}

/// The whole response document.
#[derive(Debug, Deserialize)]
pub struct RoomInfoEnvelope {
    #[serde(rename = "ResponseMetadata", default)]
    /// Request id, action and the error, if any.
    pub metadata: ResponseMetadata,
    #[serde(rename = "Result", default)]
    /// One page of calls; absent on an error.
    pub result: Option<RoomInfoPage>,
}

/// `Result`: one page of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RoomInfoPage {
    /// Calls in the whole window (a room with two calls counts twice).
    pub total: u64,
    /// More calls exist than this page holds: ask for the next page.
    pub has_more: bool,
    /// The page answered.
    pub page_num: u32,
    /// The page size applied.
    pub page_size: u32,
    /// The calls of this page.
    pub room_list: Vec<CallInfo>,
}

/// One call: a room from its creation to its destruction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CallInfo {
    /// The call's id: a room has a new one for each call.
    pub call_id: String,
    /// The room of the call.
    pub room_id: String,
    /// Whether the call has ended.
    pub is_finished: bool,
    /// RFC 3339: when the call began.
    pub created_time: String,
    /// RFC 3339: when the call ended; empty while it runs.
    pub destroy_time: String,
    /// Users in the call now.
    pub active_user_num: u64,
}
