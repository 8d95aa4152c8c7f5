//! The one way a slot file is written, by runs and by tests alike: the existing file's
//! rows outside the replaced ranges, merged with the new rows (sorted, one row a key,
//! the new winning), encoded and published as one atomic step.

use std::collections::HashMap;

use super::blocking;
use super::buffer::{self, Point, RowStore, SlotRows};
use super::{Sink, SinkError, SlotEncoder, WrittenFile};
use crate::domain::ProductType;
use crate::plan::Slot;

/// The rows of one target at one granularity in a slot file: product type, room, user,
/// `interval_s`.
pub(crate) type SeriesKey<'a> = (ProductType, Option<&'a str>, Option<&'a str>, i32);

/// Per series, the time range `[from, to)` in µs whose old rows the new rows replace:
/// what an answer covered, points or not.
pub type Replaced<'a> = HashMap<SeriesKey<'a>, (i64, i64)>;

/// Rewrites the file of `app` and `slot` with `rows` plus the old rows not `replaced`.
/// Writes nothing, and returns `None`, when there would be no rows and no file was
/// there.
pub async fn rewrite(
    sink: &Sink,
    store: &mut RowStore,
    app: &str,
    slot: Slot,
    rows: SlotRows,
    replaced: &Replaced<'_>,
) -> Result<Option<WrittenFile>, SinkError> {
    let existing = sink.read_slot_bytes(app, &slot).await?;
    let had_file = existing.is_some();
    let encoded = blocking(|| -> Result<_, SinkError> {
        let mut old: Vec<Point> = Vec::new();
        if let Some((bytes, path)) = existing {
            crate::sink::decode_each(bytes, &path, |r| {
                let key = (r.product_type, r.room_id, r.user_id, r.interval_s);
                let is_replaced = replaced
                    .get(&key)
                    .is_some_and(|(a, b)| r.timestamp_us >= *a && r.timestamp_us < *b);
                if !is_replaced {
                    old.push(store.point(r));
                }
            })?;
        }
        if rows.is_empty() && old.is_empty() && !had_file {
            return Ok(None);
        }
        let mut enc = SlotEncoder::new(&sink.file_meta(&slot))?;
        store
            .merge(rows, old, |r| enc.push(r))
            .map_err(|e| match e {
                buffer::MergeError::Sink(e) => e,
                buffer::MergeError::Spill(path, source) => SinkError::Spill {
                    path: path.display().to_string(),
                    source,
                },
            })?;
        Ok(Some(enc.finish()?))
    })?;
    match encoded {
        Some((bytes, n)) => Ok(Some(sink.write_slot_bytes(app, &slot, bytes, n).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProductType::{Native, Web};
    use crate::run::fixtures::{Fixture, NOWHERE, TARGETS, at, files_under, row, slot, slot_rows};
    use crate::sink::Row;

    fn rows_of(store: &mut RowStore, rows: &[Row]) -> SlotRows {
        let points: Vec<Point> = rows.iter().map(|r| store.point(r.borrowed())).collect();
        let mut out = SlotRows::default();
        store.add(&mut out, &points);
        out
    }

    fn store(f: &Fixture) -> RowStore {
        RowStore::new(f.dir.path().join("spill"), buffer::DEFAULT_SPILL_POINTS)
    }

    fn in_room(mut r: Row, room: &str) -> Row {
        r.room_id = Some(room.to_string());
        r
    }

    #[tokio::test]
    async fn rewrite_with_nothing_to_write_and_no_file_writes_nothing() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let sink = f.sink();
        let mut store = store(&f);

        let written = rewrite(
            &sink,
            &mut store,
            "app-a",
            slot("11:50:00"),
            SlotRows::default(),
            &Replaced::new(),
        )
        .await
        .unwrap();

        assert_eq!(written, None);
        assert_eq!(slot_rows(&sink, "app-a", slot("11:50:00")).await, None);
        assert_eq!(files_under(&f.data_dir()), Vec::<String>::new());
    }

    #[tokio::test]
    async fn rewrite_replaces_only_the_replaced_range_of_its_series_and_keeps_the_rest() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let sink = f.sink();
        let mut store = store(&f);
        let s = slot("11:50:00");
        let old = vec![
            row(Native, "audio_stall_rate", at("11:50:00"), 1.0, None),
            row(Native, "audio_stall_rate", at("11:53:00"), 2.0, None),
            in_room(
                row(Native, "audio_stall_rate", at("11:50:00"), 5.0, None),
                "r1",
            ),
        ];
        let first = rows_of(&mut store, &old);
        let written = rewrite(&sink, &mut store, "app-a", s, first, &Replaced::new())
            .await
            .unwrap();
        assert_eq!(
            written.map(|w| (w.path, w.rows)),
            Some((
                "app_id=app-a/date=2026-11-25/demo-1150.parquet".to_string(),
                3
            ))
        );

        // App-level native data again over [11:50:00, 11:52:00): one row, changed.
        let new = rows_of(
            &mut store,
            &[row(Native, "audio_stall_rate", at("11:50:00"), 7.0, None)],
        );
        let replaced = Replaced::from([(
            (Native, None, None, 30),
            (
                at("11:50:00").timestamp_micros(),
                at("11:52:00").timestamp_micros(),
            ),
        )]);
        let written = rewrite(&sink, &mut store, "app-a", s, new, &replaced)
            .await
            .unwrap();

        assert_eq!(written.map(|w| w.rows), Some(3));
        assert_eq!(
            slot_rows(&sink, "app-a", s).await,
            Some(vec![
                row(Native, "audio_stall_rate", at("11:50:00"), 7.0, None),
                row(Native, "audio_stall_rate", at("11:53:00"), 2.0, None),
                in_room(
                    row(Native, "audio_stall_rate", at("11:50:00"), 5.0, None),
                    "r1"
                ),
            ])
        );
        assert_eq!(
            files_under(&f.data_dir()),
            ["app_id=app-a/date=2026-11-25/demo-1150.parquet"]
        );
    }

    #[tokio::test]
    async fn a_new_row_wins_over_an_old_row_of_the_same_key_even_outside_the_replaced_range() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let sink = f.sink();
        let mut store = store(&f);
        let s = slot("11:50:00");
        let old = rows_of(
            &mut store,
            &[row(Native, "audio_stall_rate", at("11:51:00"), 1.0, None)],
        );
        rewrite(&sink, &mut store, "app-a", s, old, &Replaced::new())
            .await
            .unwrap();
        let new = rows_of(
            &mut store,
            &[row(Native, "audio_stall_rate", at("11:51:00"), 2.0, None)],
        );
        rewrite(&sink, &mut store, "app-a", s, new, &Replaced::new())
            .await
            .unwrap();
        assert_eq!(
            slot_rows(&sink, "app-a", s).await,
            Some(vec![row(
                Native,
                "audio_stall_rate",
                at("11:51:00"),
                2.0,
                None
            )])
        );
    }

    #[tokio::test]
    async fn rewrite_with_no_new_rows_over_a_file_whose_rows_are_all_replaced_writes_it_empty() {
        let f = Fixture::new(NOWHERE, 2.0, TARGETS);
        let sink = f.sink();
        let mut store = store(&f);
        let s = slot("11:55:00");
        let first = rows_of(
            &mut store,
            &[row(Web, "audio_stall_rate", at("11:55:30"), 1.0, None)],
        );
        rewrite(&sink, &mut store, "app-a", s, first, &Replaced::new())
            .await
            .unwrap();
        let replaced = Replaced::from([(
            (Web, None, None, 30),
            (s.start.timestamp_micros(), s.end.timestamp_micros()),
        )]);

        let written = rewrite(
            &sink,
            &mut store,
            "app-a",
            s,
            SlotRows::default(),
            &replaced,
        )
        .await
        .unwrap();

        assert_eq!(written.map(|w| w.rows), Some(0));
        assert_eq!(slot_rows(&sink, "app-a", s).await, Some(vec![]));
    }
}
