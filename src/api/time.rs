//! The API's time stamps: RFC 3339 with any UTC offset, read into microseconds since
//! the epoch. The shape the API sends is read directly (it is parsed once per point, so
//! it is on the hot path); anything else goes through chrono's full parser.

use chrono::DateTime;

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

fn fast_timestamp_us(b: &[u8]) -> Option<i64> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59
    {
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
    let days = days_from_civil(y, mo, d);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) - offset) * 1_000_000)
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
}
