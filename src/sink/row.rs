//! One flattened data point, as stored (docs/design.md, "Rows"). `app_id` and `date` are
//! partition columns and live in the path, not here.

use crate::domain::ProductType;

/// One 30-second value of one returned series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The room the series is about; `None` for an app-level target.
    pub room_id: Option<String>,
    /// The user the API echoed back; `None` unless the target is per-user.
    pub user_id: Option<String>,
    /// The client platform the data comes from, stored as `native` or `web`.
    pub product_type: ProductType,
    /// The returned series `Name`.
    pub indicator: String,
    /// Unit of `value` as the API gives it (e.g. `%`).
    pub unit: String,
    /// Start of the 30-second bucket, µs since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// The metric's value for the bucket, in `unit`.
    pub value: f64,
    /// The stream the value is about, when the API names one.
    pub stream_id: Option<String>,
    /// Seconds the value covers: [`REAL_TIME_INTERVAL`] for a real-time point,
    /// [`RECOVERED_INTERVAL`] for one recovered from the offline API. Part of the key: a
    /// recovered 5-minute point never replaces a 30 s one.
    pub interval_s: i32,
}

/// `interval_s` of a point from `ListRealTimeQuality`.
pub const REAL_TIME_INTERVAL: i32 = 30;
/// `interval_s` of a point recovered from `ListQuality` at 5-minute granularity.
pub const RECOVERED_INTERVAL: i32 = 300;

/// A row borrowed from wherever it is held: what the encoder takes and the decoder gives,
/// so neither needs an owned `String` per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowRef<'a> {
    /// The room the series is about; `None` for an app-level target.
    pub room_id: Option<&'a str>,
    /// The user the API echoed back; `None` unless the target is per-user.
    pub user_id: Option<&'a str>,
    /// The client platform the data comes from, stored as `native` or `web`.
    pub product_type: ProductType,
    /// The returned series `Name`.
    pub indicator: &'a str,
    /// Unit of `value` as the API gives it (e.g. `%`).
    pub unit: &'a str,
    /// Start of the 30-second bucket, µs since the Unix epoch, UTC.
    pub timestamp_us: i64,
    /// The metric's value for the bucket, in `unit`.
    pub value: f64,
    /// The stream the value is about, when the API names one.
    pub stream_id: Option<&'a str>,
    /// Seconds the value covers (see [`Row::interval_s`]).
    pub interval_s: i32,
}

impl RowRef<'_> {
    /// The owned row.
    pub fn to_row(&self) -> Row {
        Row {
            room_id: self.room_id.map(str::to_string),
            user_id: self.user_id.map(str::to_string),
            product_type: self.product_type,
            indicator: self.indicator.to_string(),
            unit: self.unit.to_string(),
            timestamp_us: self.timestamp_us,
            value: self.value,
            stream_id: self.stream_id.map(str::to_string),
            interval_s: self.interval_s,
        }
    }
}

/// See [`Row::sort_key`].
#[cfg(test)]
pub(crate) type SortKey<'a> = (
    Option<&'a str>,
    Option<&'a str>,
    ProductType,
    &'a str,
    i32,
    i64,
    Option<&'a str>,
);

impl Row {
    /// The row, borrowed.
    pub fn borrowed(&self) -> RowRef<'_> {
        RowRef {
            room_id: self.room_id.as_deref(),
            user_id: self.user_id.as_deref(),
            product_type: self.product_type,
            indicator: &self.indicator,
            unit: &self.unit,
            timestamp_us: self.timestamp_us,
            value: self.value,
            stream_id: self.stream_id.as_deref(),
            interval_s: self.interval_s,
        }
    }

    /// The sort and identity key within a slot file: (room, user, product type,
    /// indicator, interval, timestamp, stream). The run's merge orders by the same key.
    #[cfg(test)]
    pub(crate) fn sort_key(&self) -> SortKey<'_> {
        (
            self.room_id.as_deref(),
            self.user_id.as_deref(),
            self.product_type,
            &self.indicator,
            self.interval_s,
            self.timestamp_us,
            self.stream_id.as_deref(),
        )
    }
}
