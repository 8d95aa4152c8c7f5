//! Wire types of `ListRoomInfo` (version 2023-11-01): the calls of an app, for room
//! discovery. A GET: the request is its query string. Every response field is optional,
//! as for `ListRealTimeQuality`; a missing field is empty, an unknown one is ignored.

use serde::{Deserialize, Serialize};

use super::types::ResponseMetadata;

/// The action name in the query string.
pub(crate) const ROOM_INFO_ACTION: &str = "ListRoomInfo";

/// The most calls one page may hold (a larger `PageSize` is treated as this).
pub(crate) const MAX_PAGE_SIZE: u32 = 100;

/// One page of the calls of `app_id` created in `[start_time, end_time)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoomInfoQuery {
    /// The app whose calls are listed.
    pub(crate) app_id: String,
    /// RFC 3339: calls created at or after this instant.
    pub(crate) start_time: String,
    /// RFC 3339: calls created before this instant (at most 24 hours after the start).
    pub(crate) end_time: String,
    /// 1-based page number.
    pub(crate) page_num: u32,
    /// Calls per page, at most [`MAX_PAGE_SIZE`].
    pub(crate) page_size: u32,
}

impl RoomInfoQuery {
    /// The query parameters after `Action` and `Version`, unencoded.
    pub(crate) fn params(&self) -> [(&'static str, String); 5] {
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
pub(crate) struct RoomInfoEnvelope {
    #[serde(rename = "ResponseMetadata", default)]
    pub(crate) metadata: ResponseMetadata,
    #[serde(rename = "Result", default)]
    pub(crate) result: Option<RoomInfoPage>,
}

/// `Result`: one page of calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct RoomInfoPage {
    /// Calls in the whole window (a room with two calls counts twice).
    pub(crate) total: u64,
    /// More calls exist than this page holds: ask for the next page.
    pub(crate) has_more: bool,
    /// The page answered.
    pub(crate) page_num: u32,
    /// The page size applied.
    pub(crate) page_size: u32,
    /// The calls of this page.
    pub(crate) room_list: Vec<CallInfo>,
}

/// One call: a room from its creation to its destruction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct CallInfo {
    /// The call's id: a room has a new one for each call.
    pub(crate) call_id: String,
    /// The room of the call.
    pub(crate) room_id: String,
    /// Whether the call has ended.
    pub(crate) is_finished: bool,
    /// RFC 3339: when the call began.
    pub(crate) created_time: String,
    /// RFC 3339: when the call ended; empty while it runs.
    pub(crate) destroy_time: String,
    /// Users in the call now.
    pub(crate) active_user_num: u64,
}
