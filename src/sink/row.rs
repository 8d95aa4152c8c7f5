//! One flattened data point, as stored (DESIGN.md, "Rows"). `app_id` and `date` are
//! partition columns and live in the path, not here.

use crate::domain::ProductType;

/// One 30-second value of one returned series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub room_id: Option<String>,
    pub user_id: Option<String>,
    pub product_type: ProductType,
    /// The returned series `Name`.
    pub indicator: String,
    pub unit: String,
    /// Start of the bucket, microseconds since the Unix epoch, UTC.
    pub timestamp_us: i64,
    pub value: f64,
    pub stream_id: Option<String>,
}

/// A row borrowed from wherever it is held: what the encoder takes and the decoder gives,
/// so neither needs an owned `String` per row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowRef<'a> {
    pub room_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub product_type: ProductType,
    pub indicator: &'a str,
    pub unit: &'a str,
    pub timestamp_us: i64,
    pub value: f64,
    pub stream_id: Option<&'a str>,
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
        }
    }
}

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
        }
    }

    /// The sort and identity key within a slot file: (room, user, product type,
    /// indicator, stream, timestamp).
    pub fn sort_key(
        &self,
    ) -> (
        Option<&str>,
        Option<&str>,
        ProductType,
        &str,
        i64,
        Option<&str>,
    ) {
        (
            self.room_id.as_deref(),
            self.user_id.as_deref(),
            self.product_type,
            &self.indicator,
            self.timestamp_us,
            self.stream_id.as_deref(),
        )
    }
}
