//! One flattened data point, as stored (DESIGN.md, "Rows"). `app_id` and `date` are
//! partition columns and live in the path, not here.

use crate::config::ProductType;

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

impl Row {
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
