//! Checks a request body the way the RTC service does: every rejection is HTTP 400 with
//! a code `InvalidParameter` or `InvalidParameter.<reason>` and no `CodeN`.
//!
//! Decoding follows Go's `encoding/json`, which the service is written in: unknown keys
//! are ignored, `null` is the same as absent, key names match case-insensitively, and a
//! value of the wrong type fails the whole body with `InvalidParameter.Unmarshal`.
//! Then, in order: `AppId`, `StartTime`/`EndTime` (RFC 3339, any offset), `Indicator`,
//! `ProductType`, `RoomId`/`UserId`, for `ListQuality` its `AggregateGranularity`, and
//! finally the time window against the emulator's `now`, with each action's limits.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::rules::{INDICATORS, MAX_USERS, REALTIME_LOOKBACK, REALTIME_MAX_SPAN, id_exists};
use volc_rtc::ProductType;
use volc_rtc::offline::FIVE_MINUTES;

/// A body that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidRequest {
    pub(crate) app_id: String,
    pub(crate) product_type: ProductType,
    pub(crate) room_id: Option<String>,
    pub(crate) users: Vec<String>,
    /// As sent (order kept, repeats allowed).
    pub(crate) indicators: Vec<String>,
    pub(crate) start: DateTime<Utc>,
    pub(crate) end: DateTime<Utc>,
}

/// How far back a `ListQuality` `StartTime` may go.
pub(crate) const OFFLINE_LOOKBACK: TimeDelta = TimeDelta::days(30);

/// The longest window one `ListQuality` request covers.
pub(crate) const OFFLINE_MAX_SPAN: TimeDelta = TimeDelta::days(7);

/// The grid of the answer, `AggregateGranularity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Granularity {
    /// `5min`: one point per 5 minutes.
    FiveMinutes,
    /// `1d`: one point per UTC day.
    OneDay,
}

impl Granularity {
    /// The granularity named `name` on the wire, if the API knows it.
    pub(crate) fn parse(name: &str) -> Option<Granularity> {
        [Granularity::FiveMinutes, Granularity::OneDay]
            .into_iter()
            .find(|g| g.name() == name)
    }

    /// The name on the wire.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Granularity::FiveMinutes => FIVE_MINUTES,
            Granularity::OneDay => "1d",
        }
    }

    /// The length of one bucket.
    pub(crate) fn length(self) -> TimeDelta {
        match self {
            Granularity::FiveMinutes => TimeDelta::minutes(5),
            Granularity::OneDay => TimeDelta::days(1),
        }
    }
}

/// A `ListQuality` body that passed every check.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ValidOffline {
    /// The fields it shares with `ListRealTimeQuality`, under the same rules.
    pub(crate) request: ValidRequest,
    pub(crate) granularity: Granularity,
}

/// How far a request's window may reach, which is all the two actions' windows differ in.
struct WindowLimits {
    /// The longest `EndTime - StartTime`.
    max_span: TimeDelta,
    /// How long before `now` `StartTime` may be.
    lookback: TimeDelta,
}

const REAL_TIME: WindowLimits = WindowLimits {
    max_span: REALTIME_MAX_SPAN,
    lookback: REALTIME_LOOKBACK,
};

const OFFLINE: WindowLimits = WindowLimits {
    max_span: OFFLINE_MAX_SPAN,
    lookback: OFFLINE_LOOKBACK,
};

/// Validates a `ListRealTimeQuality` `body` at data-clock time `now`. A strict API
/// (`refuse_future_end`) also refuses an `EndTime` after `now`; the default answers
/// what it has, as the documented behaviour does not say.
pub(crate) fn validate(
    body: &[u8],
    now: DateTime<Utc>,
    refuse_future_end: bool,
) -> Result<ValidRequest, ApiError> {
    let obj = decode(body)?;
    let v = check_fields(read_fields(&obj)?)?;
    check_window(v.start, v.end, now, &REAL_TIME)?;
    if refuse_future_end && v.end > now {
        return Err(ApiError::invalid_parameter(
            Some("OutofTimeRange"),
            format!("EndTime {} is after now ({now})", v.end),
        ));
    }
    Ok(v)
}

/// Validates a `ListQuality` `body` at data-clock time `now`: the real-time body's
/// checks with the same codes and messages, its granularity, and the offline window.
pub(crate) fn validate_offline(body: &[u8], now: DateTime<Utc>) -> Result<ValidOffline, ApiError> {
    let obj = decode(body)?;
    // Read with the other fields: a granularity of the wrong type fails the decoding.
    let fields = read_fields(&obj)?;
    let granularity = string(&obj, "AggregateGranularity")?;
    let request = check_fields(fields)?;
    let granularity = parse_granularity(granularity)?;
    check_window(request.start, request.end, now, &OFFLINE)?;
    Ok(ValidOffline {
        request,
        granularity,
    })
}

/// The checks both actions make of the fields they share, in the module doc's order.
fn check_fields(raw: RawBody) -> Result<ValidRequest, ApiError> {
    let app_id = check_app_id(raw.app_id)?;
    let start = parse_time("StartTime", raw.start_time)?;
    let end = parse_time("EndTime", raw.end_time)?;
    let indicators = check_indicators(raw.indicator)?;
    let product_type = parse_product_type(raw.product_type)?;
    let (room_id, users) = check_room_and_users(raw.room_id, raw.user_id)?;
    Ok(ValidRequest {
        app_id,
        product_type,
        room_id,
        users,
        indicators,
        start,
        end,
    })
}

/// The granularity decides the answer's grid, so it is required and only the two the
/// API knows are taken.
fn parse_granularity(value: Option<String>) -> Result<Granularity, ApiError> {
    let text = value.unwrap_or_default();
    if text.is_empty() {
        return Err(bad("AggregateGranularity is required".into()));
    }
    Granularity::parse(&text).ok_or_else(|| {
        bad(format!(
            "AggregateGranularity {text:?} is not supported; use {} or {}",
            Granularity::FiveMinutes.name(),
            Granularity::OneDay.name()
        ))
    })
}

/// Most rejections are the bare `InvalidParameter` code, with only the message varying.
pub(crate) fn bad(message: String) -> ApiError {
    ApiError::invalid_parameter(None, message)
}

/// The app id is mandatory and must follow the same id rules rtcq's config enforces.
pub(crate) fn check_app_id(value: Option<String>) -> Result<String, ApiError> {
    let app_id = value.unwrap_or_default();
    if app_id.is_empty() {
        return Err(bad("AppId is required".into()));
    }
    // The real service's id rules are not documented; the emulator's account has the
    // ids of [`id_exists`] and refuses the rest with the real codes.
    id_exists(&app_id).map_err(|reason| {
        ApiError::invalid_parameter(Some("IllegalAppId"), format!("AppId {reason}"))
    })?;
    Ok(app_id)
}

/// `StartTime` and `EndTime` share their rules and messages, differing only in the name.
pub(crate) fn parse_time(name: &str, value: Option<String>) -> Result<DateTime<Utc>, ApiError> {
    let v = value.unwrap_or_default();
    if v.is_empty() {
        return Err(bad(format!("{name} is required")));
    }
    DateTime::parse_from_rfc3339(&v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad(format!("{name} {v:?} is not an RFC 3339 time")))
}

/// The data has series only for the documented indicators, so any other one is refused.
fn check_indicators(value: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let indicators = value.unwrap_or_default();
    if indicators.is_empty() {
        return Err(bad("Indicator is required".into()));
    }
    if let Some(unknown) = indicators
        .iter()
        .find(|i| !INDICATORS.contains(&i.as_str()))
    {
        return Err(bad(format!(
            "Indicator {unknown:?} is not supported; supported: {}",
            INDICATORS.join(", ")
        )));
    }
    Ok(indicators)
}

/// An absent or empty `ProductType` means native, so only a value actually sent can fail.
fn parse_product_type(value: Option<String>) -> Result<ProductType, ApiError> {
    let product = value.unwrap_or_default();
    if product.is_empty() {
        return Ok(ProductType::Native);
    }
    ProductType::parse(&product).ok_or_else(|| {
        bad(format!(
            "ProductType {product:?} is not supported; use native or web"
        ))
    })
}

/// Users only make sense within a room, and the API drops bad user ids rather than failing.
fn check_room_and_users(
    room_id: Option<String>,
    user_id: Option<Vec<String>>,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let room_id = room_id.filter(|r| !r.is_empty());
    if let Some(room) = &room_id {
        id_exists(room).map_err(|reason| {
            ApiError::invalid_parameter(Some("IllegalRoomID"), format!("RoomId {reason}"))
        })?;
    }
    let mut users = user_id.unwrap_or_default();
    if users.len() > MAX_USERS {
        return Err(bad(format!(
            "UserId names {} users; at most {MAX_USERS} are allowed",
            users.len()
        )));
    }
    if !users.is_empty() && room_id.is_none() {
        return Err(bad("UserId requires RoomId".into()));
    }
    // Invalid user ids are silently dropped, as the reference says the API does.
    users.retain(|u| id_exists(u).is_ok());
    Ok((room_id, users))
}

/// The window is checked last, against the data clock, with the API's own sub-codes.
fn check_window(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    now: DateTime<Utc>,
    limits: &WindowLimits,
) -> Result<(), ApiError> {
    if start >= end {
        return Err(ApiError::invalid_parameter(
            Some("StartTimeAfterEndTime"),
            format!("StartTime {start} is not before EndTime {end}"),
        ));
    }
    if end - start > limits.max_span {
        return Err(ApiError::invalid_parameter(
            Some("OutofTimeRange"),
            format!(
                "The query spans {} s; at most {} are allowed",
                (end - start).num_seconds(),
                spoken(limits.max_span)
            ),
        ));
    }
    if start < now - limits.lookback {
        return Err(ApiError::invalid_parameter(
            Some("OutofTimeRange"),
            format!(
                "StartTime {start} is more than {} before now ({now})",
                spoken(limits.lookback)
            ),
        ));
    }
    Ok(())
}

/// A limit in the unit people state it in: whole days as days, anything else in minutes.
fn spoken(d: TimeDelta) -> String {
    let days = d.num_days();
    if days > 0 && d == TimeDelta::days(days) {
        format!("{days} days")
    } else {
        format!("{} minutes", d.num_minutes())
    }
}

#[derive(Default)]
struct RawBody {
    app_id: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    indicator: Option<Vec<String>>,
    room_id: Option<String>,
    user_id: Option<Vec<String>>,
    product_type: Option<String>,
}

fn unmarshal(message: impl Into<String>) -> ApiError {
    ApiError::invalid_parameter(Some("Unmarshal"), message)
}

/// The body as a JSON object, which is all either action accepts.
fn decode(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| unmarshal(format!("The body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(unmarshal("The body is not a JSON object"));
    };
    Ok(obj)
}

/// The fields both actions share, each of the type Go's decoder would want.
fn read_fields(obj: &Map<String, Value>) -> Result<RawBody, ApiError> {
    Ok(RawBody {
        app_id: string(obj, "AppId")?,
        start_time: string(obj, "StartTime")?,
        end_time: string(obj, "EndTime")?,
        indicator: strings(obj, "Indicator")?,
        room_id: string(obj, "RoomId")?,
        user_id: strings(obj, "UserId")?,
        product_type: string(obj, "ProductType")?,
    })
}

/// The value of `name`: an exact key first, else one equal ignoring ASCII case (as Go).
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(unmarshal(format!(
            "{name} must be a string, not {}",
            kind(other)
        ))),
    }
}

fn strings(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match field(obj, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(unmarshal(format!(
                    "{name} must be an array of strings, not hold {}",
                    kind(other)
                ))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(unmarshal(format!(
            "{name} must be an array of strings, not {}",
            kind(other)
        ))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    /// The lenient API, as the emulator answers by default.
    fn validate(body: &[u8], now: DateTime<Utc>) -> Result<ValidRequest, ApiError> {
        super::validate(body, now, false)
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn good() -> Value {
        json!({
            "AppId": "app-1",
            "StartTime": "2024-05-01T19:00:00+08:00",
            "EndTime": "2024-05-01T11:30:00Z",
            "Indicator": ["stall_rate", "join_room_success_rate"],
            "RoomId": "room-1",
            "UserId": ["u1", "u2"],
            "ProductType": "web"
        })
    }

    fn with(edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
        let mut v = good();
        if let Value::Object(o) = &mut v {
            edit(o);
        }
        serde_json::to_vec(&v).unwrap()
    }

    fn code(body: &[u8]) -> String {
        let e = validate(body, now()).unwrap_err();
        assert_eq!(e.status.as_u16(), 400);
        assert_eq!(e.code_n, None);
        e.code
    }

    #[test]
    fn hostile_but_valid_ids_pass_and_invalid_ones_get_the_real_codes() {
        for id in [
            "../../etc",
            "a/b",
            "x=y",
            "%41",
            "\u{FFFD}",
            "\u{200F}עברית-abc",
            " ",
        ] {
            let r = validate(
                &with(|o| {
                    o.insert("AppId".into(), json!(id));
                    o.insert("RoomId".into(), json!(id));
                    o.insert("UserId".into(), json!([id]));
                }),
                now(),
            )
            .unwrap();
            assert_eq!((r.app_id.as_str(), r.room_id.as_deref()), (id, Some(id)));
            assert_eq!(r.users, [id]);
        }
        let long = "x".repeat(129);
        assert_eq!(
            code(&with(|o| {
                o.insert("AppId".into(), json!(long));
            })),
            "InvalidParameter.IllegalAppId"
        );
        assert_eq!(
            code(&with(|o| {
                o.insert("RoomId".into(), json!("a\u{1}b"));
            })),
            "InvalidParameter.IllegalRoomID"
        );
        let r = validate(
            &with(|o| {
                o.insert("UserId".into(), json!(["u1", "bad\n", ""]));
            }),
            now(),
        )
        .unwrap();
        assert_eq!(r.users, ["u1"], "invalid user ids are dropped silently");
    }

    #[test]
    fn a_good_body_is_read_in_utc() {
        let r = validate(&with(|_| {}), now()).unwrap();
        assert_eq!(r.app_id, "app-1");
        assert_eq!(r.product_type, ProductType::Web);
        assert_eq!(r.room_id.as_deref(), Some("room-1"));
        assert_eq!(r.users, ["u1", "u2"]);
        assert_eq!(r.start, Utc.with_ymd_and_hms(2024, 5, 1, 11, 0, 0).unwrap());
        assert_eq!(r.end, Utc.with_ymd_and_hms(2024, 5, 1, 11, 30, 0).unwrap());
        // Defaults, null as absent, case-insensitive keys, unknown keys ignored.
        let r = validate(
            &with(|o| {
                o.remove("ProductType");
                o.remove("UserId");
                o.insert("RoomId".into(), Value::Null);
                let app = o.remove("AppId").unwrap();
                o.insert("appid".into(), app);
                o.insert("Extra".into(), json!({"x": 1}));
            }),
            now(),
        )
        .unwrap();
        assert_eq!(r.product_type, ProductType::Native);
        assert_eq!(r.room_id, None);
        assert_eq!(r.app_id, "app-1");
    }

    #[test]
    fn each_bad_body_has_its_code() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not json".to_vec(), "InvalidParameter.Unmarshal"),
            (b"".to_vec(), "InvalidParameter.Unmarshal"),
            (b"[1,2]".to_vec(), "InvalidParameter.Unmarshal"),
            (vec![0xff, 0xfe, b'{'], "InvalidParameter.Unmarshal"),
            (
                with(|o| {
                    o.insert("AppId".into(), json!(12));
                }),
                "InvalidParameter.Unmarshal",
            ),
            (
                with(|o| {
                    o.insert("Indicator".into(), json!("stall_rate"));
                }),
                "InvalidParameter.Unmarshal",
            ),
            (
                with(|o| {
                    o.insert("UserId".into(), json!(["u", 1]));
                }),
                "InvalidParameter.Unmarshal",
            ),
            (
                with(|o| {
                    o.insert("StartTime".into(), json!(1714561200));
                }),
                "InvalidParameter.Unmarshal",
            ),
            (
                with(|o| {
                    o.remove("AppId");
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("AppId".into(), json!(""));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.remove("StartTime");
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("EndTime".into(), json!("2024-05-01 11:30"));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("Indicator".into(), json!([]));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("Indicator".into(), json!(["stall_rate", "stalls"]));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("ProductType".into(), json!("ios"));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.remove("RoomId");
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("RoomId".into(), json!(""));
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert(
                        "UserId".into(),
                        json!((0..21).map(|i| format!("u{i}")).collect::<Vec<_>>()),
                    );
                }),
                "InvalidParameter",
            ),
            (
                with(|o| {
                    o.insert("EndTime".into(), json!("2024-05-01T11:00:00Z"));
                }),
                "InvalidParameter.StartTimeAfterEndTime",
            ),
            (
                with(|o| {
                    o.insert("EndTime".into(), json!("2024-05-01T10:59:59Z"));
                }),
                "InvalidParameter.StartTimeAfterEndTime",
            ),
            (
                with(|o| {
                    o.insert("EndTime".into(), json!("2024-05-01T12:00:01Z"));
                }),
                "InvalidParameter.OutofTimeRange",
            ),
            (
                with(|o| {
                    o.insert("StartTime".into(), json!("2024-05-01T10:59:59Z"));
                    o.insert("EndTime".into(), json!("2024-05-01T11:10:00Z"));
                }),
                "InvalidParameter.OutofTimeRange",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(code(&body), want, "{}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn the_unknown_indicator_is_named() {
        let e = validate(
            &with(|o| {
                o.insert("Indicator".into(), json!(["stall_rate", "stalls"]));
            }),
            now(),
        )
        .unwrap_err();
        assert!(e.message.contains("\"stalls\""), "{}", e.message);
    }

    #[test]
    fn limits_are_inclusive() {
        // Exactly 60 minutes span, starting exactly 60 minutes ago, 20 users.
        let body = with(|o| {
            o.insert("StartTime".into(), json!("2024-05-01T11:00:00Z"));
            o.insert("EndTime".into(), json!("2024-05-01T12:00:00Z"));
            o.insert(
                "UserId".into(),
                json!((0..20).map(|i| format!("u{i}")).collect::<Vec<_>>()),
            );
        });
        let r = validate(&body, now()).unwrap();
        assert_eq!(r.users.len(), 20);
        // End in the future is fine.
        let body = with(|o| {
            o.insert("EndTime".into(), json!("2024-05-01T12:00:00Z"));
            o.insert("StartTime".into(), json!("2024-05-01T11:30:00Z"));
        });
        assert!(validate(&body, now() - chrono::TimeDelta::minutes(20)).is_ok());
        // A strict API refuses it, naming the end and its now.
        let e = super::validate(&body, now() - chrono::TimeDelta::minutes(20), true).unwrap_err();
        assert_eq!(e.code, "InvalidParameter.OutofTimeRange");
        assert_eq!(
            e.message,
            "EndTime 2024-05-01 12:00:00 UTC is after now (2024-05-01 11:40:00 UTC)"
        );
    }
}
