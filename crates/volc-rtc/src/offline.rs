//! Wire types of `ListQuality` (version 2023-11-01): the offline quality data, kept 30
//! days at 5-minute granularity, that recovery fills recorded gaps from. The answer has
//! the shape of `ListRealTimeQuality`'s `Result` without the room and user echo, so it is
//! read with the same borrowed types.

use serde::Serialize;

use crate::realtime::QualityRequest;

/// The action name in the query string.
pub const OFFLINE_ACTION: &str = "ListQuality";

/// The granularity recovery asks for: one point per 5 minutes, the mean over them.
pub const FIVE_MINUTES: &str = "5min";

/// The JSON body of one `ListQuality` request: the real-time body's fields (the same
/// names and rules) and the granularity.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OfflineRequest {
    #[serde(flatten)]
    /// The real-time body's fields.
    pub base: QualityRequest,
    /// `"5min"` or `"1d"`.
    #[serde(rename = "AggregateGranularity")]
    pub aggregate_granularity: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_real_time_body_plus_the_granularity() {
        let req = OfflineRequest {
            base: QualityRequest {
                app_id: "a".into(),
                start_time: "2026-11-25T00:00:00Z".into(),
                end_time: "2026-11-25T03:00:00Z".into(),
                indicator: vec!["stall_rate".into()],
                room_id: Some("r".into()),
                user_id: vec![],
                product_type: Some("web".into()),
            },
            aggregate_granularity: FIVE_MINUTES,
        };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"AppId":"a","StartTime":"2026-11-25T00:00:00Z","EndTime":"2026-11-25T03:00:00Z","Indicator":["stall_rate"],"RoomId":"r","ProductType":"web","AggregateGranularity":"5min"}"#
        );
    }
}
