//! What a pipeline asks for: its targets, each one series of requests.

use std::fmt;
use std::sync::Arc;

use chrono::TimeDelta;

pub use volc_rtc::ProductType;

/// One series of requests: (app, product type, room or none, user or none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    /// The RTC app whose calls are measured.
    pub app_id: String,
    /// Which client platforms the series covers.
    pub product_type: ProductType,
    /// One room, or `None` for the whole app.
    pub room_id: Option<String>,
    /// One user of `room_id` (never set without it), or `None` for all its users.
    pub user_id: Option<String>,
    /// Requested indicators, sorted and unique; shared by the targets of one entry.
    pub indicators: Arc<[String]>,
    /// How far behind the target may fall (`max_lag`): it is due before its lag passes
    /// this, not only before its data leaves the horizon.
    pub max_lag: Option<TimeDelta>,
}

impl Target {
    /// A stable key for the state file. Ids are JSON-escaped so no id can collide with
    /// another tuple.
    pub fn key(&self) -> String {
        serde_json::json!([
            self.app_id,
            self.product_type.as_str(),
            self.room_id,
            self.user_id
        ])
        .to_string()
    }
}

/// A target as every message names it: `app=… product=… room=… user=…`, from its
/// parts (a gap record keeps the parts, not the target).
pub(crate) struct Label<'a> {
    pub(crate) app_id: &'a str,
    pub(crate) product_type: &'a str,
    pub(crate) room_id: Option<&'a str>,
    pub(crate) user_id: Option<&'a str>,
}

impl fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "app={} product={}", self.app_id, self.product_type)?;
        if let Some(room) = self.room_id {
            write!(f, " room={room}")?;
        }
        if let Some(user) = self.user_id {
            write!(f, " user={user}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Label {
            app_id: &self.app_id,
            product_type: self.product_type.as_str(),
            room_id: self.room_id.as_deref(),
            user_id: self.user_id.as_deref(),
        }
        .fmt(f)
    }
}
