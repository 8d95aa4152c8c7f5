//! Where a pipeline's data of an app begins, from file names alone: the oldest
//! `date=` directory holding one of the pipeline's slot files, and its earliest
//! `<pipeline>-<HHMM>.parquet`. States from before targets recorded their `since` find
//! where history ends with this, two listings an app, without reading any file.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::error::SinkError;
use super::partition::{self, DATE_COLUMN, EXTENSION, app_segment};
use super::writer::Sink;

impl Sink {
    /// The start of the oldest slot file of `app_id` (history files do not count), or
    /// `None` when the app has none.
    pub async fn oldest_slot_start(
        &self,
        app_id: &str,
    ) -> Result<Option<DateTime<Utc>>, SinkError> {
        let store = self.store();
        let app_dir = partition::push(self.root().clone(), &app_segment(app_id));
        let read_err = |path: &object_store::path::Path| {
            let path = path.to_string();
            move |source| SinkError::Read { path, source }
        };
        let listed = store
            .list_with_delimiter(Some(&app_dir))
            .await
            .map_err(read_err(&app_dir))?;
        let prefix = format!("{DATE_COLUMN}=");
        let mut dates: Vec<(NaiveDate, object_store::path::Path)> = listed
            .common_prefixes
            .into_iter()
            .filter_map(|dir| {
                let name = dir.filename()?.to_string();
                let day =
                    NaiveDate::parse_from_str(name.strip_prefix(&prefix)?, "%Y-%m-%d").ok()?;
                Some((day, dir))
            })
            .collect();
        dates.sort();
        for (day, dir) in dates {
            let files = store
                .list_with_delimiter(Some(&dir))
                .await
                .map_err(read_err(&dir))?;
            let first = files
                .objects
                .iter()
                .filter_map(|o| slot_time(o.location.filename()?, self.pipeline()))
                .min();
            if let Some(time) = first {
                return Ok(Some(day.and_time(time).and_utc()));
            }
        }
        Ok(None)
    }
}

/// The slot start `HH:MM` of `<pipeline>-<HHMM>.parquet`; `None` for any other name.
fn slot_time(name: &str, pipeline: &str) -> Option<NaiveTime> {
    let hhmm = name
        .strip_prefix(pipeline)?
        .strip_prefix('-')?
        .strip_suffix(EXTENSION)?;
    if hhmm.len() != 4 || !hhmm.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    NaiveTime::parse_from_str(hhmm, "%H%M").ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pipelines_slot_files_have_a_time() {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0);
        assert_eq!(slot_time("demo-2355.parquet", "demo"), t(23, 55));
        assert_eq!(slot_time("demo-0000.parquet", "demo"), t(0, 0));
        for other in [
            "demo-history.parquet",
            "demo-b-2355.parquet",
            "other-2355.parquet",
            ".demo-2355.parquet.tmp-1-0",
            "demo-2355.parquet#3",
            "demo-2465.parquet",
            "demo-235.parquet",
        ] {
            assert_eq!(slot_time(other, "demo"), None, "{other}");
        }
    }
}
