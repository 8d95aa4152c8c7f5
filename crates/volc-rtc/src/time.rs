//! The API's time stamps: RFC 3339 with any UTC offset, read into microseconds since
//! the epoch. The shape the API sends is read directly (it is parsed once per point, so
//! it is on the hot path); anything else goes through chrono's full parser.

use std::cell::Cell;

use chrono::{DateTime, TimeDelta, Utc};

/// `t` rounded down to a multiple of `step` since the Unix epoch: the API's buckets
/// (30 s, 5 minutes) start on this grid.
pub fn floor_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let step_us = step.num_microseconds().unwrap_or(1).max(1);
    let us = t.timestamp_micros();
    DateTime::from_timestamp_micros(us - us.rem_euclid(step_us)).unwrap_or(t)
}

/// `t` rounded up to a multiple of `step` since the Unix epoch.
pub fn ceil_to(t: DateTime<Utc>, step: TimeDelta) -> DateTime<Utc> {
    let f = floor_to(t, step);
    if f == t { t } else { f + step }
}

/// Microseconds since the epoch of an RFC 3339 time. The shape the API sends
/// (`YYYY-MM-DDTHH:MM:SS` then `Z` or `+hh:mm`/`-hh:mm`, no fraction) is read directly;
/// anything else goes through chrono's full parser.
pub fn parse_timestamp_us(s: &str) -> Option<i64> {
    parse_time(s).0
}

/// [`parse_timestamp_us`], and whether the time had a sub-second part or a leap second
/// (which chrono folds into the microseconds; the fast path refuses both shapes).
pub fn parse_time(s: &str) -> (Option<i64>, bool) {
    match fast_timestamp_us(s.as_bytes()) {
        Some(us) => (Some(us), false),
        None => match DateTime::parse_from_rfc3339(s) {
            Ok(t) => (Some(t.timestamp_micros()), t.timestamp_subsec_nanos() != 0),
            Err(_) => (None, false),
        },
    }
}

thread_local! {
    /// The last date read and its day number: the points of an answer share one or two
    /// dates, and the calendar arithmetic is most of the cost of a time stamp.
    static LAST_DATE: Cell<Option<([u8; 10], i64)>> = const { Cell::new(None) };
}

fn fast_timestamp_us(b: &[u8]) -> Option<i64> {
    if b.len() < 20 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date: [u8; 10] = b[..10].try_into().ok()?;
    let days = match LAST_DATE.with(Cell::get) {
        Some((last, days)) if last == date => days,
        _ => {
            let days = civil_days(&date)?;
            LAST_DATE.with(|c| c.set(Some((date, days))));
            days
        }
    };
    let h = num_digits(b[11], b[12])?;
    let mi = num_digits(b[14], b[15])?;
    let sec = num_digits(b[17], b[18])?;
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let offset = match &b[19..] {
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = num_digits(*h1, *h2)?;
            let om = num_digits(*m1, *m2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset) * 1_000_000)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date, or `None` when it is not one.
fn civil_days(d: &[u8; 10]) -> Option<i64> {
    if d[4] != b'-' || d[7] != b'-' {
        return None;
    }
    let y = num_digits(d[0], d[1])? * 100 + num_digits(d[2], d[3])?;
    let mo = num_digits(d[5], d[6])?;
    let day = num_digits(d[8], d[9])?;
    if !(1..=12).contains(&mo) || day < 1 || day > days_in_month(y, mo) {
        return None;
    }
    Some(days_from_civil(y, mo, day))
}

fn num_digits(a: u8, b: u8) -> Option<i64> {
    (a.is_ascii_digit() && b.is_ascii_digit())
        .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, <https://howardhinnant.github.io/date_algorithms.html>).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_timestamps_match_chrono() {
        for s in [
            "2026-11-25T19:04:30+08:00",
            "2026-11-25T11:05:00Z",
            "2024-02-29T23:59:59-05:30",
            "1969-12-31T23:59:30Z",
            "2000-03-01T00:00:00+00:00",
            "2026-01-01T00:00:00z",
        ] {
            let want = DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
            assert_eq!(fast_timestamp_us(s.as_bytes()), Some(want), "{s}");
        }
        // Shapes the fast path leaves to chrono, and what chrono also refuses.
        assert_eq!(fast_timestamp_us(b"2026-11-25T11:05:00.5Z"), None);
        assert_eq!(
            parse_timestamp_us("2026-11-25T11:05:00.5Z"),
            Some(
                DateTime::parse_from_rfc3339("2026-11-25T11:05:00.5Z")
                    .unwrap()
                    .timestamp_micros()
            )
        );
        for bad in [
            "2026-02-30T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "yesterday",
            "2026-11-25T11:05:00+0800",
        ] {
            assert_eq!(fast_timestamp_us(bad.as_bytes()), None, "{bad}");
            assert_eq!(
                parse_timestamp_us(bad),
                DateTime::parse_from_rfc3339(bad)
                    .ok()
                    .map(|t| t.timestamp_micros()),
                "{bad}"
            );
        }
    }

    /// Many time stamps in a row, valid and broken, repeating dates as answers do: the
    /// cached date never lets a wrong value through.
    #[test]
    fn fast_path_with_its_date_cache_agrees_with_chrono() {
        let mut x = 7u64;
        let mut next = move |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        let offsets = [
            "Z", "+08:00", "-05:30", "+23:59", "+24:00", "+0800", "", "z",
        ];
        for _ in 0..20_000 {
            let y = 1900 + next(300);
            let mut s = format!(
                "{y:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
                1 + next(13),
                1 + next(31),
                next(25),
                next(61),
                next(61),
                offsets[next(offsets.len() as u64) as usize]
            );
            if next(20) == 0 {
                // A stray character anywhere.
                let i = next(s.len() as u64) as usize;
                s.replace_range(i..i + 1, "x");
            }
            let want = DateTime::parse_from_rfc3339(&s).ok();
            match fast_timestamp_us(s.as_bytes()) {
                Some(us) => assert_eq!(Some(us), want.map(|t| t.timestamp_micros()), "{s}"),
                None => assert_eq!(
                    parse_time(&s),
                    want.map_or((None, false), |t| (
                        Some(t.timestamp_micros()),
                        t.timestamp_subsec_nanos() != 0
                    )),
                    "{s}"
                ),
            }
        }
    }
}
