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
    pub app_id: String,
    /// RFC 3339, inclusive.
    pub start_time: String,
    /// RFC 3339, exclusive.
    pub end_time: String,
    pub indicator: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub user_id: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_type: Option<String>,
}

/// The whole response document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "ResponseMetadata", default)]
    pub metadata: ResponseMetadata,
    #[serde(rename = "Result", default, skip_serializing_if = "Option::is_none")]
    pub result: Option<QualityResult>,
}

/// `ResponseMetadata`: request id and, on failure, the error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

/// `ResponseMetadata.Error`. `CodeN` is set by the gateway only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_n: Option<i64>,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

/// `Result`: the series the API returned for one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QualityResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// The users the API actually applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<Vec<String>>,
    #[serde(default)]
    pub indicators: Vec<Series>,
}

/// One returned series: its `Name` is not the requested indicator (see the reference).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Series {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default)]
    pub data: Vec<DataPoint>,
    /// Extra summary some responses carry; kept opaque.
    #[serde(rename = "overview", default, skip_serializing_if = "Option::is_none")]
    pub overview: Option<serde_json::Value>,
}

/// One 30-second bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataPoint {
    /// Start of the bucket, RFC 3339 with any UTC offset.
    #[serde(default)]
    pub time_stamp: String,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_id: Option<String>,
}

/// The response document read without copying its strings: what a run parses (the
/// owned [`Envelope`] is for building answers, in the emulator and tests). A string
/// borrows from the body unless it has escapes; `overview` and unknown fields are
/// skipped.
#[derive(Debug, Deserialize)]
pub struct EnvelopeRef<'a> {
    #[serde(rename = "ResponseMetadata", default)]
    pub metadata: ResponseMetadata,
    #[serde(rename = "Result", default, borrow)]
    pub result: Option<QualityResultRef<'a>>,
}

/// [`QualityResult`], borrowed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct QualityResultRef<'a> {
    #[serde(default, borrow)]
    pub user_id: Option<Vec<Cow<'a, str>>>,
    #[serde(default, borrow)]
    pub indicators: Vec<SeriesRef<'a>>,
}

/// [`Series`], borrowed, without `overview`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SeriesRef<'a> {
    #[serde(default, borrow)]
    pub name: Cow<'a, str>,
    #[serde(default, borrow)]
    pub unit: Cow<'a, str>,
    #[serde(default, borrow)]
    pub data: Vec<DataPointRef<'a>>,
}

/// [`DataPoint`], borrowed.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DataPointRef<'a> {
    #[serde(default, borrow)]
    pub time_stamp: Cow<'a, str>,
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default, borrow)]
    pub stream_id: Option<Cow<'a, str>>,
}
