//! Rows to Parquet bytes and back (docs/design.md, "Rows").
//!
//! A slot file holds the rows sorted by the key (room, user, product type, indicator,
//! interval, timestamp, stream), one row a key: the merge of
//! [`crate::sink::slot_file::rewrite`] hands them to the [`SlotEncoder`] in that order.
//! Parquet settings: ZSTD level 3, dictionary encoding, page statistics,
//! `sorting_columns` on (room_id, user_id, product_type, indicator, interval_s,
//! timestamp) ascending with nulls first, timestamps as INT64 `TIMESTAMP(MICROS, UTC)`
//! (never INT96 or nanoseconds), and key-value metadata naming the pipeline, the slot,
//! the schema version and the writer.
//!
//! Schema version 2 added `interval_s` as the last column. A version 1 file (without it)
//! still reads, its rows as 30 s points; it is written as version 2 when next rewritten.

use std::sync::Arc;

use arrow_array::builder::{
    Float64Builder, Int32Builder, StringBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use chrono::SecondsFormat;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::error::SinkError;
use super::row::{REAL_TIME_INTERVAL, RowRef};
use crate::domain::ProductType;
use crate::plan::Slot;

/// The schema version this code writes.
pub(crate) const SCHEMA_VERSION: &str = "2";
/// The version before `interval_s`: read, never written.
const SCHEMA_VERSION_1: &str = "1";
/// The column version 2 added.
const INTERVAL: &str = "interval_s";
/// Key-value metadata keys.
pub(crate) const KEY_PIPELINE: &str = "rtcq.pipeline";
pub(crate) const KEY_SLOT_START: &str = "rtcq.slot_start";
pub(crate) const KEY_SLOT_END: &str = "rtcq.slot_end";
pub(crate) const KEY_SCHEMA_VERSION: &str = "rtcq.schema_version";
pub(crate) const KEY_WRITER: &str = "rtcq.writer";

/// ZSTD level: level 3 costs about the same CPU as level 1 and is about 6 % smaller.
const ZSTD_LEVEL: i32 = 3;

/// Column names, in file order.
#[cfg(test)]
pub(crate) const COLUMNS: [&str; 9] = [
    "room_id",
    "user_id",
    "product_type",
    "indicator",
    "unit",
    "timestamp",
    "value",
    "stream_id",
    "interval_s",
];

/// Indices of the columns the rows are sorted by, in key order.
const SORTED_BY: [usize; 6] = [0, 1, 2, 3, 8, 5];

/// What a slot file says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// The pipeline that wrote the file, recorded as `rtcq.pipeline`.
    pub pipeline: String,
    /// The slot the file holds, recorded as `rtcq.slot_start` and `rtcq.slot_end`.
    pub slot: Slot,
}

/// The Arrow schema of a slot file (`app_id` and `date` are in the path only).
pub fn schema() -> SchemaRef {
    let utf8 = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        utf8("room_id", true),
        utf8("user_id", true),
        utf8("product_type", false),
        utf8("indicator", false),
        utf8("unit", false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("value", DataType::Float64, false),
        utf8("stream_id", true),
        Field::new(INTERVAL, DataType::Int32, false),
    ]))
}

/// The writer name recorded in `rtcq.writer` and `created_by`.
pub(crate) fn writer_name() -> String {
    format!("rtcq {}", env!("CARGO_PKG_VERSION"))
}

/// Rows per Arrow batch handed to the Parquet writer: big enough to amortise the call,
/// small enough that the builders stay a few hundred KiB.
const BATCH_ROWS: usize = 8192;

/// A string builder for a batch whose values average up to `bytes`: sized so that a
/// typical batch never grows it (series names run to 35 bytes, `web` is 3).
fn strings(bytes: usize) -> StringBuilder {
    StringBuilder::with_capacity(BATCH_ROWS, BATCH_ROWS * bytes)
}

/// Average bytes a column's builder starts with, per value.
const ID_BYTES: usize = 16;
const NAME_BYTES: usize = 40;
const WORD_BYTES: usize = 8;

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::with_capacity(BATCH_ROWS).with_timezone("UTC")
}

/// Writes one slot file from rows given one at a time, already sorted by
/// the key (room, user, product type, indicator, timestamp, stream) and without duplicate keys (the caller's duty:
/// the file says it is sorted). Rows go through Arrow builders in batches of
/// `BATCH_ROWS`, so memory is the encoded file plus one batch, whatever the number of
/// rows.
pub struct SlotEncoder {
    writer: ArrowWriter<Vec<u8>>,
    what: String,
    room: StringBuilder,
    user: StringBuilder,
    product: StringBuilder,
    indicator: StringBuilder,
    unit: StringBuilder,
    ts: TimestampMicrosecondBuilder,
    value: Float64Builder,
    stream: StringBuilder,
    interval: Int32Builder,
    pending: usize,
    rows: usize,
}

impl SlotEncoder {
    /// Starts an empty slot file whose metadata names `meta`'s pipeline and slot.
    pub fn new(meta: &FileMeta) -> Result<Self, SinkError> {
        let what = format!(
            "slot {} of pipeline {}",
            meta.slot.start.to_rfc3339_opts(SecondsFormat::Secs, true),
            meta.pipeline
        );
        let err = |reason: String| SinkError::Encode {
            what: what.clone(),
            reason,
        };
        let props = properties(meta).map_err(|e| err(format!("writer settings: {e}")))?;
        let writer = ArrowWriter::try_new(Vec::with_capacity(64 * 1024), schema(), Some(props))
            .map_err(|e| err(format!("starting the Parquet writer: {e}")))?;
        Ok(SlotEncoder {
            writer,
            room: strings(ID_BYTES),
            user: strings(ID_BYTES),
            product: strings(WORD_BYTES),
            indicator: strings(NAME_BYTES),
            unit: strings(WORD_BYTES),
            ts: timestamps(),
            value: Float64Builder::with_capacity(BATCH_ROWS),
            stream: strings(ID_BYTES),
            interval: Int32Builder::with_capacity(BATCH_ROWS),
            pending: 0,
            rows: 0,
            what,
        })
    }

    fn err(&self, reason: String) -> SinkError {
        SinkError::Encode {
            what: self.what.clone(),
            reason,
        }
    }

    /// Appends one row (the next in key order).
    pub fn push(&mut self, r: RowRef<'_>) -> Result<(), SinkError> {
        self.room.append_option(r.room_id);
        self.user.append_option(r.user_id);
        self.product.append_value(r.product_type.as_str());
        self.indicator.append_value(r.indicator);
        self.unit.append_value(r.unit);
        self.ts.append_value(r.timestamp_us);
        self.value.append_value(r.value);
        self.stream.append_option(r.stream_id);
        self.interval.append_value(r.interval_s);
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if self.pending == 0 {
            return Ok(());
        }
        // `finish` leaves an empty builder behind: taking fresh ones with their full
        // capacity saves the builders growing again, step by step, in every batch.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(std::mem::replace(&mut self.room, strings(ID_BYTES)).finish()),
            Arc::new(std::mem::replace(&mut self.user, strings(ID_BYTES)).finish()),
            Arc::new(std::mem::replace(&mut self.product, strings(WORD_BYTES)).finish()),
            Arc::new(std::mem::replace(&mut self.indicator, strings(NAME_BYTES)).finish()),
            Arc::new(std::mem::replace(&mut self.unit, strings(WORD_BYTES)).finish()),
            Arc::new(std::mem::replace(&mut self.ts, timestamps()).finish()),
            Arc::new(
                std::mem::replace(&mut self.value, Float64Builder::with_capacity(BATCH_ROWS))
                    .finish(),
            ),
            Arc::new(std::mem::replace(&mut self.stream, strings(ID_BYTES)).finish()),
            Arc::new(
                std::mem::replace(&mut self.interval, Int32Builder::with_capacity(BATCH_ROWS))
                    .finish(),
            ),
        ];
        let batch = RecordBatch::try_new(schema(), columns)
            .map_err(|e| self.err(format!("building Arrow arrays: {e}")))?;
        self.writer
            .write(&batch)
            .map_err(|e| self.err(format!("writing rows: {e}")))?;
        self.rows += self.pending;
        self.pending = 0;
        Ok(())
    }

    /// Finishes the file: its bytes and its number of rows.
    pub fn finish(mut self) -> Result<(Bytes, usize), SinkError> {
        self.flush()?;
        let rows = self.rows;
        let what = self.what.clone();
        let done = |e: parquet::errors::ParquetError| SinkError::Encode {
            what: what.clone(),
            reason: format!("finishing the file: {e}"),
        };
        // Writes the footer, then gives the buffer back.
        let out = self.writer.into_inner().map_err(done)?;
        Ok((Bytes::from(out), rows))
    }
}

fn properties(meta: &FileMeta) -> Result<WriterProperties, parquet::errors::ParquetError> {
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let kv = vec![
        KeyValue::new(KEY_PIPELINE.into(), meta.pipeline.clone()),
        KeyValue::new(KEY_SLOT_START.into(), rfc3339(meta.slot.start)),
        KeyValue::new(KEY_SLOT_END.into(), rfc3339(meta.slot.end)),
        KeyValue::new(KEY_SCHEMA_VERSION.into(), SCHEMA_VERSION.to_string()),
        KeyValue::new(KEY_WRITER.into(), writer_name()),
    ];
    let sorting = SORTED_BY
        .iter()
        .map(|&i| SortingColumn {
            column_idx: i as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(kv))
        .set_created_by(writer_name())
        .build())
}

/// Reads a slot file written by a [`SlotEncoder`] and gives each row, in file order, to `f`:
/// one record batch is held at a time, never the whole file's rows.
pub fn decode_each(
    bytes: Bytes,
    path: &str,
    mut f: impl FnMut(RowRef<'_>),
) -> Result<(), SinkError> {
    let err = |reason: String| SinkError::Decode {
        path: path.to_string(),
        reason,
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| err(format!("not a readable Parquet file: {e}")))?;
    let version = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == KEY_SCHEMA_VERSION))
        .and_then(|k| k.value.clone());
    let has_interval = match version.as_deref() {
        Some(SCHEMA_VERSION) => true,
        Some(SCHEMA_VERSION_1) => false,
        Some(other) => {
            return Err(SinkError::SchemaVersion {
                path: path.to_string(),
                found: other.to_string(),
                expected: SCHEMA_VERSION,
            });
        }
        None => {
            return Err(err(format!(
                "has no {KEY_SCHEMA_VERSION} metadata: not an rtcq slot file; move it out of \
                 the dataset"
            )));
        }
    };
    check_columns(builder.schema(), has_interval).map_err(err)?;
    let reader = builder
        .build()
        .map_err(|e| err(format!("cannot read rows: {e}")))?;
    for batch in reader {
        let batch = batch.map_err(|e| err(format!("cannot read rows: {e}")))?;
        each_row(&batch, &mut f).map_err(err)?;
    }
    Ok(())
}

/// Whether the file has every column of [`schema`] with its type (`interval_s` only
/// from version 2 on).
fn check_columns(got: &Schema, has_interval: bool) -> Result<(), String> {
    let want = schema();
    for field in want.fields() {
        if field.name() == INTERVAL && !has_interval {
            continue;
        }
        match got.field_with_name(field.name()) {
            Ok(f) if f.data_type() == field.data_type() => {}
            Ok(f) => {
                return Err(format!(
                    "column {} is {}, expected {}",
                    field.name(),
                    f.data_type(),
                    field.data_type()
                ));
            }
            Err(_) => return Err(format!("has no column {}", field.name())),
        }
    }
    Ok(())
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column {name} is missing or has the wrong type"))
}

fn each_row(batch: &RecordBatch, f: &mut impl FnMut(RowRef<'_>)) -> Result<(), String> {
    let room = column::<StringArray>(batch, "room_id")?;
    let user = column::<StringArray>(batch, "user_id")?;
    let product = column::<StringArray>(batch, "product_type")?;
    let indicator = column::<StringArray>(batch, "indicator")?;
    let unit = column::<StringArray>(batch, "unit")?;
    let ts = column::<TimestampMicrosecondArray>(batch, "timestamp")?;
    let value = column::<Float64Array>(batch, "value")?;
    let stream = column::<StringArray>(batch, "stream_id")?;
    // A version 1 file has no interval: all its points are real-time ones.
    let interval = match batch.column_by_name(INTERVAL) {
        Some(_) => Some(column::<Int32Array>(batch, INTERVAL)?),
        None => None,
    };
    fn opt(a: &StringArray, i: usize) -> Option<&str> {
        a.is_valid(i).then(|| a.value(i))
    }
    let required = |a: &dyn Array, name: &str, i: usize| {
        if a.is_null(i) {
            Err(format!("row {i}: {name} is null"))
        } else {
            Ok(())
        }
    };
    for i in 0..batch.num_rows() {
        required(product, "product_type", i)?;
        required(indicator, "indicator", i)?;
        required(unit, "unit", i)?;
        required(ts, "timestamp", i)?;
        required(value, "value", i)?;
        if let Some(a) = interval {
            required(a, INTERVAL, i)?;
        }
        let pt = ProductType::parse(product.value(i)).ok_or_else(|| {
            format!(
                "row {i}: product_type {:?} is not \"native\" or \"web\"",
                product.value(i)
            )
        })?;
        f(RowRef {
            room_id: opt(room, i),
            user_id: opt(user, i),
            product_type: pt,
            indicator: indicator.value(i),
            unit: unit.value(i),
            timestamp_us: ts.value(i),
            value: value.value(i),
            stream_id: opt(stream, i),
            interval_s: interval.map_or(REAL_TIME_INTERVAL, |a| a.value(i)),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Row;
    use chrono::{TimeDelta, TimeZone, Utc};
    use parquet::basic::{LogicalType, Type as PhysicalType};
    use parquet::file::reader::{FileReader, SerializedFileReader};

    const T0: i64 = 1_795_651_200_000_000; // 2026-11-25T00:00:00Z

    /// The key a decoding error names.
    const PATH: &str = "app_id=demo/date=2026-11-25/demo-0000.parquet";

    fn meta() -> FileMeta {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap();
        FileMeta {
            pipeline: "demo".into(),
            slot: Slot::containing(t, TimeDelta::minutes(5)),
        }
    }

    /// `rows`, in the order given, through the encoder a run writes with.
    fn encode_rows(rows: &[Row]) -> Bytes {
        let mut enc = SlotEncoder::new(&meta()).unwrap();
        for r in rows {
            enc.push(r.borrowed()).unwrap();
        }
        let (bytes, n) = enc.finish().unwrap();
        assert_eq!(n, rows.len(), "rows counted by the encoder");
        bytes
    }

    /// Every row of a file, in file order, read the way a run reads it.
    fn decode_rows(bytes: Bytes) -> Result<Vec<Row>, SinkError> {
        let mut rows = Vec::new();
        decode_each(bytes, PATH, |r| rows.push(r.to_row()))?;
        Ok(rows)
    }

    fn row(
        room: Option<&str>,
        user: Option<&str>,
        pt: ProductType,
        ind: &str,
        t: i64,
        v: f64,
    ) -> Row {
        Row {
            room_id: room.map(str::to_string),
            user_id: user.map(str::to_string),
            product_type: pt,
            indicator: ind.into(),
            unit: "%".into(),
            timestamp_us: T0 + t * 30_000_000,
            value: v,
            stream_id: None,
            interval_s: 30,
        }
    }

    /// Rows with nulls, a stream, another unit, `-0.0` and `f64::MAX`, in key order (as
    /// the run's merge hands them to the encoder).
    fn sample() -> Vec<Row> {
        let mut with_stream = row(
            Some("r1"),
            Some("u1"),
            ProductType::Web,
            "stall_rate",
            1,
            0.25,
        );
        with_stream.stream_id = Some("s-1".into());
        with_stream.unit = "ms".into();
        let mut rows = vec![
            row(Some("r2"), None, ProductType::Native, "stall_rate", 0, 1.5),
            with_stream,
            row(None, None, ProductType::Web, "stall_rate", 0, 3.0),
            row(
                Some("r1"),
                Some("u1"),
                ProductType::Native,
                "stall_rate",
                1,
                0.5,
            ),
            row(None, None, ProductType::Native, "stall_rate", 1, 2.0),
            row(
                None,
                None,
                ProductType::Native,
                "join_room_success_rate",
                9,
                99.5,
            ),
            row(None, None, ProductType::Native, "stall_rate", 0, -0.0),
            row(
                Some("r1"),
                None,
                ProductType::Native,
                "stall_rate",
                0,
                f64::MAX,
            ),
        ];
        rows.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        rows
    }

    #[test]
    fn roundtrip_keeps_order_nulls_units_and_streams() {
        let rows = sample();
        let back = decode_rows(encode_rows(&rows)).unwrap();
        #[allow(clippy::type_complexity)]
        let got: Vec<(
            Option<&str>,
            Option<&str>,
            &str,
            &str,
            i64,
            f64,
            Option<&str>,
            &str,
        )> = back
            .iter()
            .map(|r| {
                (
                    r.room_id.as_deref(),
                    r.user_id.as_deref(),
                    r.product_type.as_str(),
                    r.indicator.as_str(),
                    (r.timestamp_us - T0) / 30_000_000,
                    r.value,
                    r.stream_id.as_deref(),
                    r.unit.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    None,
                    None,
                    "native",
                    "join_room_success_rate",
                    9,
                    99.5,
                    None,
                    "%"
                ),
                (None, None, "native", "stall_rate", 0, -0.0, None, "%"),
                (None, None, "native", "stall_rate", 1, 2.0, None, "%"),
                (None, None, "web", "stall_rate", 0, 3.0, None, "%"),
                (
                    Some("r1"),
                    None,
                    "native",
                    "stall_rate",
                    0,
                    f64::MAX,
                    None,
                    "%"
                ),
                (
                    Some("r1"),
                    Some("u1"),
                    "native",
                    "stall_rate",
                    1,
                    0.5,
                    None,
                    "%"
                ),
                (
                    Some("r1"),
                    Some("u1"),
                    "web",
                    "stall_rate",
                    1,
                    0.25,
                    Some("s-1"),
                    "ms"
                ),
                (Some("r2"), None, "native", "stall_rate", 0, 1.5, None, "%"),
            ]
        );
        assert_eq!(back, rows, "the file holds exactly the rows pushed");
        assert!(back[1].value.is_sign_negative(), "-0.0 kept bit for bit");
    }

    #[test]
    fn rows_over_several_batches_roundtrip() {
        let n = 2 * BATCH_ROWS + 5;
        let rows: Vec<Row> = (0..n as i64)
            .map(|i| row(None, None, ProductType::Native, "stall_rate", i, i as f64))
            .collect();
        let bytes = encode_rows(&rows);
        let reader = SerializedFileReader::new(bytes.clone()).unwrap();
        assert_eq!(reader.metadata().file_metadata().num_rows(), n as i64);
        assert_eq!(decode_rows(bytes).unwrap(), rows);
    }

    #[test]
    fn empty_file_roundtrips() {
        assert_eq!(decode_rows(encode_rows(&[])).unwrap(), Vec::<Row>::new());
    }

    #[test]
    fn parquet_metadata() {
        let bytes = encode_rows(&sample());
        let reader = SerializedFileReader::new(bytes).unwrap();
        let md = reader.metadata();
        let file = md.file_metadata();
        assert_eq!(file.num_rows(), 8);
        assert_eq!(
            file.created_by(),
            Some(format!("rtcq {}", env!("CARGO_PKG_VERSION")).as_str())
        );
        let kv: Vec<(String, Option<String>)> = file
            .key_value_metadata()
            .unwrap()
            .iter()
            .filter(|k| k.key.starts_with("rtcq."))
            .map(|k| (k.key.clone(), k.value.clone()))
            .collect();
        let s = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
        assert_eq!(
            kv,
            vec![
                s("rtcq.pipeline", "demo"),
                s("rtcq.slot_start", "2026-11-25T00:00:00Z"),
                s("rtcq.slot_end", "2026-11-25T00:05:00Z"),
                s("rtcq.schema_version", "2"),
                s(
                    "rtcq.writer",
                    &format!("rtcq {}", env!("CARGO_PKG_VERSION"))
                ),
            ]
        );

        let schema = file.schema_descr();
        let names: Vec<String> = (0..schema.num_columns())
            .map(|i| schema.column(i).name().to_string())
            .collect();
        assert_eq!(names, COLUMNS);
        let ts = schema.column(5);
        assert_eq!(ts.physical_type(), PhysicalType::INT64);
        assert_eq!(
            ts.logical_type_ref(),
            Some(&LogicalType::timestamp(
                true,
                parquet::basic::TimeUnit::MICROS
            ))
        );
        assert_eq!(schema.column(6).physical_type(), PhysicalType::DOUBLE);
        for (i, want_nullable) in [(0, true), (1, true), (2, false), (4, false), (7, true)] {
            assert_eq!(
                schema.column(i).self_type().is_optional(),
                want_nullable,
                "column {i}"
            );
        }

        assert_eq!(md.num_row_groups(), 1);
        let rg = md.row_group(0);
        let sorting: Vec<(i32, bool, bool)> = rg
            .sorting_columns()
            .unwrap()
            .iter()
            .map(|c| (c.column_idx, c.descending, c.nulls_first))
            .collect();
        assert_eq!(
            sorting,
            vec![
                (0, false, true),
                (1, false, true),
                (2, false, true),
                (3, false, true),
                (8, false, true),
                (5, false, true)
            ]
        );
        for c in rg.columns() {
            assert!(
                matches!(c.compression(), Compression::ZSTD(_)),
                "{} is {:?}",
                c.column_path(),
                c.compression()
            );
            assert!(
                c.statistics().is_some(),
                "{} has statistics",
                c.column_path()
            );
        }
        for i in [0, 1, 2, 3, 4, 7] {
            let c = rg.column(i);
            assert!(
                c.dictionary_page_offset().is_some(),
                "{} is dictionary encoded",
                c.column_path()
            );
        }
        // Statistics of the timestamp column are the first and last bucket.
        let ts_stats = rg.column(5).statistics().unwrap();
        assert_eq!(ts_stats.min_bytes_opt(), Some(&T0.to_le_bytes()[..]));
        assert_eq!(
            ts_stats.max_bytes_opt(),
            Some(&(T0 + 9 * 30_000_000).to_le_bytes()[..])
        );
    }

    #[test]
    fn arrow_schema_reads_back_as_utc_microseconds() {
        let bytes = encode_rows(&sample());
        let b = ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap();
        assert_eq!(b.schema().fields(), schema().fields());
    }

    /// The schema of version 1: no `interval_s`.
    fn schema_v1() -> SchemaRef {
        let s = schema();
        Arc::new(Schema::new(s.fields()[..8].to_vec()))
    }

    /// `rows` as a version 1 batch (no `interval_s`).
    fn to_batch(rows: &[Row]) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let mut enc_rows = Vec::with_capacity(rows.len());
        enc_rows.extend(rows.iter().map(Row::borrowed));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter(enc_rows.iter().map(|r| r.room_id))),
            Arc::new(StringArray::from_iter(enc_rows.iter().map(|r| r.user_id))),
            Arc::new(StringArray::from_iter_values(
                enc_rows.iter().map(|r| r.product_type.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                enc_rows.iter().map(|r| r.indicator),
            )),
            Arc::new(StringArray::from_iter_values(
                enc_rows.iter().map(|r| r.unit),
            )),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(
                    enc_rows.iter().map(|r| r.timestamp_us),
                )
                .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(
                enc_rows.iter().map(|r| r.value),
            )),
            Arc::new(StringArray::from_iter(enc_rows.iter().map(|r| r.stream_id))),
        ];
        RecordBatch::try_new(schema_v1(), columns)
    }

    fn with_kv(version: Option<&str>) -> Bytes {
        let mut out = Vec::new();
        let kv = version.map(|v| vec![KeyValue::new(KEY_SCHEMA_VERSION.into(), v.to_string())]);
        let props = WriterProperties::builder()
            .set_key_value_metadata(kv)
            .build();
        let mut w = ArrowWriter::try_new(&mut out, schema_v1(), Some(props)).unwrap();
        w.write(&to_batch(&sample()).unwrap()).unwrap();
        w.close().unwrap();
        Bytes::from(out)
    }

    #[test]
    fn rejects_other_schema_versions() {
        let err = decode_rows(with_kv(Some("3"))).unwrap_err().to_string();
        assert_eq!(
            err,
            "app_id=demo/date=2026-11-25/demo-0000.parquet: written with rtcq schema version 3, \
             this rtcq reads versions up to 2: upgrade rtcq, or move the file out of the dataset"
        );
        // A version 2 file must have the column version 2 added.
        let err = decode_rows(with_kv(Some("2"))).unwrap_err().to_string();
        assert_eq!(
            err,
            "decoding app_id=demo/date=2026-11-25/demo-0000.parquet: has no column interval_s"
        );
        let err = decode_rows(with_kv(None)).unwrap_err().to_string();
        assert_eq!(
            err,
            "decoding app_id=demo/date=2026-11-25/demo-0000.parquet: has no rtcq.schema_version \
             metadata: not an rtcq slot file; move it out of the dataset"
        );
        // A version 1 file (written before `interval_s`) reads as 30 s points.
        assert_eq!(decode_rows(with_kv(Some("1"))).unwrap(), sample());
        assert!(sample().iter().all(|r| r.interval_s == 30));
        let err = decode_rows(Bytes::from_static(b"not parquet"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "decoding app_id=demo/date=2026-11-25/demo-0000.parquet: not a readable Parquet \
                 file"
            ),
            "{err}"
        );
    }
}
