//! Where a slot file goes: `<root>/app_id=<escaped>/date=<YYYY-MM-DD>/<pipeline>-<HHMM>.parquet`
//! (docs/design.md, "Layout").
//!
//! Partition values are escaped by [`crate::domain::escape`].

use object_store::path::{Path, PathPart};

pub use crate::domain::escape::{APP_COLUMN, app_segment};
use crate::plan::Slot;

/// Name of the date partition column.
pub(crate) const DATE_COLUMN: &str = "date";
/// Extension of finished slot files; temporary files never end with it.
pub(crate) const EXTENSION: &str = ".parquet";

/// The directory segment `date=<YYYY-MM-DD>` of the slot's UTC date.
pub(crate) fn date_segment(slot: &Slot) -> String {
    format!("{DATE_COLUMN}={}", slot.date())
}

/// What stands for `HHMM` in the name of a day's history file.
pub(crate) const HISTORY_STEM: &str = "history";

/// The file name `<pipeline>-<HHMM>.parquet`, or `<pipeline>-history.parquet` for a
/// day's history rows.
pub(crate) fn file_name(pipeline: &str, slot: &Slot) -> String {
    if slot.is_day() {
        format!("{pipeline}-{HISTORY_STEM}{EXTENSION}")
    } else {
        format!("{pipeline}-{}{EXTENSION}", slot.hhmm())
    }
}

/// `<root>/app_id=<escaped>/date=<YYYY-MM-DD>`.
pub(crate) fn slot_dir(root: &Path, app_id: &str, slot: &Slot) -> Path {
    let dir = push(root.clone(), &app_segment(app_id));
    push(dir, &date_segment(slot))
}

/// `<root>/app_id=<escaped>/date=<YYYY-MM-DD>/<pipeline>-<HHMM>.parquet`: the key of the one
/// file of this app and slot. Depends only on its arguments, never on the run.
pub fn slot_path(root: &Path, app_id: &str, slot: &Slot, pipeline: &str) -> Path {
    push(slot_dir(root, app_id, slot), &file_name(pipeline, slot))
}

/// Appends one segment kept exactly as given. `object_store` would percent-encode `%`
/// again if the segment were converted with `From`, so it is parsed instead. Parsing only
/// refuses `.`, `..`, `/` and control characters, which escaping and the fixed `column=`
/// prefix rule out; the fallback is unreachable, and would still stay inside the root.
pub(crate) fn push(path: Path, segment: &str) -> Path {
    match PathPart::parse(segment) {
        Ok(p) => path.join(p),
        Err(_) => {
            debug_assert!(false, "unparseable segment {segment:?}");
            path.join(PathPart::from(segment))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::escape::{escape_value, unescape_value};
    use chrono::{TimeDelta, TimeZone, Utc};
    use proptest::prelude::*;

    fn slot() -> Slot {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 23, 57, 10).unwrap();
        Slot::containing(t, TimeDelta::minutes(5))
    }

    #[test]
    fn escaping_table() {
        let cases = [
            ("demo-app", "demo-app"),
            ("a/b", "a%2Fb"),
            ("x=y", "x%3Dy"),
            ("../../etc", "%2E.%2F..%2Fetc"),
            ("..", "%2E."),
            (".hidden", "%2Ehidden"),
            ("_under", "%5Funder"),
            ("a_b.c", "a_b.c"),
            ("sp ace", "sp ace"),
            ("ünï", "ünï"),
            ("%41", "%2541"),
            ("0123", "0123"),
            ("a\"#'*:?\\{[]^b", "a%22%23%27%2A%3A%3F%5C%7B%5B%5D%5Eb"),
            ("tab\there", "tab%09here"),
            ("del\u{7f}", "del%7F"),
            ("nul\0", "nul%00"),
            ("}|<>~`", "}|<>~`"),
        ];
        for (raw, want) in cases {
            assert_eq!(escape_value(raw), want, "escaping {raw:?}");
            assert_eq!(unescape_value(want), raw, "unescaping {want:?}");
        }
    }

    #[test]
    fn unescape_follows_spark_on_odd_input() {
        assert_eq!(unescape_value("a%2fb"), "a/b");
        assert_eq!(unescape_value("100%"), "100%");
        assert_eq!(unescape_value("%4"), "%4");
        assert_eq!(unescape_value("%zz"), "%zz");
        assert_eq!(unescape_value("%41%"), "A%");
    }

    #[test]
    fn slot_path_text() {
        let s = slot();
        assert_eq!(
            slot_path(&Path::ROOT, "demo-app", &s, "demo").as_ref(),
            "app_id=demo-app/date=2026-11-25/demo-2355.parquet"
        );
        let root = Path::parse("bucket-prefix/rtc").unwrap();
        assert_eq!(
            slot_path(&root, "../../etc", &s, "demo").as_ref(),
            "bucket-prefix/rtc/app_id=%2E.%2F..%2Fetc/date=2026-11-25/demo-2355.parquet"
        );
        assert_eq!(
            slot_path(&root, "%41", &s, "p-1").as_ref(),
            "bucket-prefix/rtc/app_id=%2541/date=2026-11-25/p-1-2355.parquet"
        );
        assert_eq!(
            slot_dir(&Path::ROOT, "x=y", &s).as_ref(),
            "app_id=x%3Dy/date=2026-11-25"
        );
        let p = slot_path(&Path::ROOT, "a/b", &s, "demo");
        let parts: Vec<String> = p.parts().map(|x| x.as_ref().to_string()).collect();
        assert_eq!(
            parts,
            ["app_id=a%2Fb", "date=2026-11-25", "demo-2355.parquet"]
        );
    }

    #[test]
    fn a_days_history_file_is_named_for_the_day_not_a_time() {
        let t = Utc.with_ymd_and_hms(2026, 11, 2, 13, 35, 0).unwrap();
        assert_eq!(
            slot_path(&Path::ROOT, "a", &Slot::day_of(t), "demo").as_ref(),
            "app_id=a/date=2026-11-02/demo-history.parquet"
        );
        // An hour-long slot at midnight keeps its time.
        let s = Slot::containing(t, TimeDelta::hours(1));
        assert_eq!(
            slot_path(&Path::ROOT, "a", &s, "demo").as_ref(),
            "app_id=a/date=2026-11-02/demo-1300.parquet"
        );
    }

    #[test]
    fn date_is_the_slot_utc_date() {
        let t = Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59).unwrap();
        let s = Slot::containing(t, TimeDelta::minutes(15));
        assert_eq!(
            slot_path(&Path::ROOT, "a", &s, "p").as_ref(),
            "app_id=a/date=2026-12-31/p-2345.parquet"
        );
    }

    proptest! {
        #[test]
        fn any_value_stays_one_segment_and_roundtrips(value in "\\PC{0,40}|[./_%=a\\\\]{0,12}") {
            let escaped = escape_value(&value);
            prop_assert!(!escaped.contains('/'));
            prop_assert!(!escaped.starts_with('.') && !escaped.starts_with('_'));
            prop_assert!(!escaped.chars().any(|c| c.is_ascii_control()));
            let seg = app_segment(&value);
            prop_assert!(PathPart::parse(&seg).is_ok());
            prop_assert_eq!(unescape_value(&escaped), value.clone());
            let p = slot_path(&Path::ROOT, &value, &slot(), "demo");
            prop_assert_eq!(p.parts().count(), 3);
            let first = p.parts().next().unwrap().as_ref().to_string();
            prop_assert_eq!(first, seg);
        }
    }
}
