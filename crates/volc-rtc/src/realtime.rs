//! Wire types of `ListRealTimeQuality` (version 2023-11-01).
//!
//! Every response field is optional, as in the official Go model: a missing field is
//! `None` or empty, an unknown one is ignored.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// The action and version every request names in its query string.
pub const ACTION: &str = "ListRealTimeQuality";
/// API version of the action.
pub const VERSION: &str = "2023-11-01";
/// Service name used in the signature scope.
pub const SERVICE: &str = "rtc";

/// The JSON body of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QualityRequest {
    /// The RTC app whose calls are measured.
    pub app_id: String,
    /// RFC 3339, inclusive.
    pub start_time: String,
    /// RFC 3339, exclusive.
    pub end_time: String,
    /// Indicators to return; one can come back as several series (see [`Series`]).
    pub indicator: Vec<String>,
    /// Only this room; `None` asks for the whole app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// Only these users (at most 20, honoured with `room_id` only); the API silently
    /// drops ids it does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_id: Vec<String>,
    /// `native` or `web`; `None` lets the API default to `native`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
}

/// The whole response document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Request id, and the error when the call failed.
    #[serde(rename = "ResponseMetadata", default)]
    pub metadata: ResponseMetadata,
    /// The data; absent when the call failed.
    #[serde(rename = "Result", default, skip_serializing_if = "Option::is_none")]
    pub result: Option<QualityResult>,
}

/// `ResponseMetadata`: request id and, on failure, the error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The gateway's id of this request, for support tickets.
    pub request_id: Option<String>,
    /// The action that answered, echoed by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The API version that answered, echoed by the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The service that answered (`rtc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The region that answered, e.g. `cn-north-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Set when the call failed, whatever the HTTP status: a 200 can carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `ResponseMetadata.Error`. `CodeN` is set by the gateway only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The gateway's numeric code, when it sends one.
    pub code_n: Option<i64>,
    #[serde(default)]
    /// The error code, e.g. `InvalidParameter.OutofTimeRange`.
    pub code: String,
    #[serde(default)]
    /// The API's explanation.
    pub message: String,
}

/// `Result`: the series the API returned for one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QualityResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The room asked for, echoed.
    pub room_id: Option<String>,
    /// The users the API actually applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Vec<String>>,
    /// The series returned, named by the API rather than by the request.
    #[serde(default)]
    pub indicators: Vec<Series>,
}

/// One returned series: its `Name` is not the requested indicator (see the reference).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Series {
    /// The series as returned, often the requested indicator with a threshold or media
    /// prefix (`audio_stall_rate`): data is keyed on it.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    /// The series' unit, e.g. `%` or `ms`.
    pub unit: String,
    /// The series' points, each one 30-second bucket.
    #[serde(default)]
    pub data: Vec<DataPoint>,
    /// Extra summary some responses carry; kept opaque.
    #[serde(rename = "overview", default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<serde_json::Value>,
}

/// One 30-second bucket.
///
/// `TimeStamp` and `Value` are read leniently: a value of the wrong JSON type becomes an
/// empty time stamp or a missing value, which the run drops and counts (`bad_timestamp`,
/// `bad_value`) instead of failing the whole answer for one bad point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataPoint {
    /// Start of the bucket, RFC 3339 with any UTC offset.
    #[serde(default, deserialize_with = "lenient::string")]
    pub time_stamp: String,
    /// The bucket's value (two decimals); `None` when missing or not a number.
    #[serde(default, deserialize_with = "lenient::number")]
    pub value: Option<f64>,
    /// The stream the point is about, when the API sends one (2023-11-01 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

/// Deserializers that accept any JSON value and keep only the expected type.
mod lenient {
    use std::fmt;

    use serde::Deserializer;
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

    /// A string, or `""` for any other value.
    pub(super) fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(Any::<String>::default())
    }

    /// A number, or `None` for any other value.
    pub(super) fn number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        d.deserialize_any(Any::<Option<f64>>::default())
    }

    #[derive(Default)]
    struct Any<T>(std::marker::PhantomData<T>);

    /// What each JSON scalar becomes; arrays and objects become `T::default()`.
    trait Pick: Default {
        fn pick_str(_: &str) -> Self {
            Self::default()
        }
        fn pick_f64(_: f64) -> Self {
            Self::default()
        }
    }

    impl Pick for String {
        fn pick_str(s: &str) -> Self {
            s.to_string()
        }
    }

    impl Pick for Option<f64> {
        fn pick_f64(v: f64) -> Self {
            Some(v)
        }
    }

    impl<'de, T: Pick> Visitor<'de> for Any<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            Ok(T::pick_f64(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            Ok(T::pick_f64(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            Ok(T::pick_f64(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            Ok(T::pick_str(v))
        }
        fn visit_unit<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<T, E> {
            Ok(T::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(T::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(T::default())
        }
    }

    /// The keys of a point; any other key is skipped.
    enum PointField {
        TimeStamp,
        Value,
        StreamId,
        Other,
    }

    impl<'de> de::Deserialize<'de> for PointField {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_identifier(PointFieldVisitor)
        }
    }

    struct PointFieldVisitor;

    impl Visitor<'_> for PointFieldVisitor {
        type Value = PointField;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a field name")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<PointField, E> {
            Ok(match v {
                "TimeStamp" => PointField::TimeStamp,
                "Value" => PointField::Value,
                "StreamId" => PointField::StreamId,
                _ => PointField::Other,
            })
        }
    }

    /// [`cow_str`] as a value type.
    struct LenientStr<'de>(std::borrow::Cow<'de, str>);

    impl<'de> de::Deserialize<'de> for LenientStr<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            cow_str(d).map(LenientStr)
        }
    }

    /// A string or null, borrowed from the body when it has no escapes (a plain
    /// `Option<Cow<str>>` would copy every one); any other value is an error, as for
    /// `Option<String>`.
    struct OptStr<'de>(Option<std::borrow::Cow<'de, str>>);

    impl<'de> de::Deserialize<'de> for OptStr<'de> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_option(OptStrVisitor)
        }
    }

    struct OptStrVisitor;

    impl<'de> Visitor<'de> for OptStrVisitor {
        type Value = OptStr<'de>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(OptStr(None))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(OptStr(None))
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(self)
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(OptStr(Some(std::borrow::Cow::Borrowed(v))))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(OptStr(Some(std::borrow::Cow::Owned(v.to_string()))))
        }
    }

    /// [`number`] as a value type.
    struct LenientNumber(Option<f64>);

    impl<'de> de::Deserialize<'de> for LenientNumber {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            number(d).map(LenientNumber)
        }
    }

    /// Reads a `Data` element straight into an [`AnswerPoint`](super::AnswerPoint),
    /// parsing `TimeStamp` on the way, with the rules of the derived `DataPoint` reader:
    /// missing fields are empty, unknown ones skipped, a repeated one is an error.
    pub(super) struct PointVisitor;

    impl<'de> Visitor<'de> for PointVisitor {
        type Value = super::AnswerPoint;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a data point object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut time: Option<(Option<i64>, bool)> = None;
            let mut value: Option<Option<f64>> = None;
            let mut stream: Option<Option<Box<str>>> = None;
            while let Some(key) = map.next_key::<PointField>()? {
                match key {
                    PointField::TimeStamp => {
                        if time.is_some() {
                            return Err(de::Error::duplicate_field("TimeStamp"));
                        }
                        let s: LenientStr<'de> = map.next_value()?;
                        time = Some(crate::time::parse_time(&s.0));
                    }
                    PointField::Value => {
                        if value.is_some() {
                            return Err(de::Error::duplicate_field("Value"));
                        }
                        value = Some(map.next_value::<LenientNumber>()?.0);
                    }
                    PointField::StreamId => {
                        if stream.is_some() {
                            return Err(de::Error::duplicate_field("StreamId"));
                        }
                        let s: OptStr<'de> = map.next_value()?;
                        stream = Some(s.0.map(|s| Box::from(&*s)));
                    }
                    PointField::Other => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            let (ts_us, fraction) = time.unwrap_or((None, false));
            Ok(super::AnswerPoint {
                ts_us,
                fraction,
                value: value.flatten(),
                stream_id: stream.flatten(),
            })
        }
    }

    /// A borrowed string (owned when it has escapes), or `""` for any other value.
    pub(super) fn cow_str<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::borrow::Cow<'de, str>, D::Error> {
        d.deserialize_any(CowStr)
    }

    struct CowStr;

    impl<'de> Visitor<'de> for CowStr {
        type Value = std::borrow::Cow<'de, str>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Borrowed(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Owned(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(std::borrow::Cow::Owned(v))
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Default::default())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok(Default::default())
        }
    }
}

/// The response document read without copying its strings: what a run parses (the
/// owned [`Envelope`] is for building answers, in the emulator and tests). A string
/// borrows from the body unless it has escapes; `overview` and unknown fields are
/// skipped.
#[derive(Debug, Deserialize)]
pub struct EnvelopeRef<'a> {
    #[serde(rename = "ResponseMetadata", default)]
    /// Request id, action and the error, if any.
    pub metadata: ResponseMetadata,
    #[serde(rename = "Result", default, borrow)]
    /// The data; absent on an error.
    pub result: Option<QualityResultRef<'a>>,
}

/// [`QualityResult`], borrowed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QualityResultRef<'a> {
    #[serde(default, borrow)]
    /// The users asked for, echoed.
    pub user_id: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    /// One entry per series.
    pub indicators: Vec<SeriesRef<'a>>,
}

/// [`Series`], borrowed, without `overview`; its points are parsed as they are read.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeriesRef<'a> {
    #[serde(default, borrow)]
    /// The series' name (not always the indicator asked for).
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    /// The series' unit.
    pub unit: Cow<'a, str>,
    #[serde(default)]
    /// The points, parsed as they are read.
    pub data: Vec<AnswerPoint>,
}

/// One point of an answer as a run keeps it: the time stamp is parsed while the body is
/// read, so a point owns no string unless it has a `StreamId`. Fields are read leniently,
/// as in [`DataPoint`]; `ts_us` is `None` when `TimeStamp` is missing or unreadable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerPoint {
    /// Microseconds since the epoch; `None` when `TimeStamp` is missing or unreadable.
    pub ts_us: Option<i64>,
    /// The time stamp had a sub-second part or was a leap second (`:60`): never on
    /// the grid, even where rounding would put it there.
    pub fraction: bool,
    /// The value; `None` when missing or not a number.
    pub value: Option<f64>,
    /// The stream the point measures, when the API names one.
    pub stream_id: Option<Box<str>>,
}

impl AnswerPoint {
    /// Parses the time stamp once: its microseconds, and whether it had a fraction.
    pub fn new(time_stamp: &str, value: Option<f64>, stream_id: Option<&str>) -> Self {
        let (ts_us, fraction) = crate::time::parse_time(time_stamp);
        AnswerPoint {
            ts_us,
            fraction,
            value,
            stream_id: stream_id.map(Box::from),
        }
    }
}

impl<'de> Deserialize<'de> for AnswerPoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(lenient::PointVisitor)
    }
}
