//! Calendar arithmetic for the provider's two time forms: epoch milliseconds and ISO-8601 UTC
//! strings with milliseconds and a `Z` (`2024-07-21T05:56:38.041Z`).
//!
//! A few lines of Howard Hinnant's public-domain civil-date algorithms serve here instead of a
//! date crate: writing these two forms is on the render hot path and needs nothing but UTC.
//! Reading times that people type (the journal's `since`) is left to `jiff`.
//!
//! Durations have one rule, the same for flags, environment variables, headers, scenario
//! files and fault rules ([`parse_duration`]): a number with a unit (`500ms`, `2s`, `1m30s`,
//! `1h`; humantime's units), or a bare whole number, which is seconds (`30` = `30s`).

use std::time::Duration;

use crate::text::{ascii_string, fill_digits, finish, push_padded};

/// (year, month, day) of a day counted from 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `2024-07-21T05:56:38.041Z` for an epoch-millisecond instant.
pub fn iso_from_millis(millis: i64) -> String {
    let days = millis.div_euclid(86_400_000);
    let rest = millis.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let (h, rest) = (rest / 3_600_000, rest % 3_600_000);
    let (min, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1_000, rest % 1_000);
    // Years 0 to 9999 (every journey) fill a template in place: three of these per new
    // journey, and writing them piece by piece cost a thousand instructions each.
    if let Ok(year @ 0..=9999) = u64::try_from(y) {
        let mut text = *b"0000-00-00T00:00:00.000Z";
        for (range, value) in [
            (0..4, year),
            (5..7, u64::from(m)),
            (8..10, u64::from(d)),
            (11..13, h.unsigned_abs()),
            (14..16, min.unsigned_abs()),
            (17..19, s.unsigned_abs()),
            (20..23, ms.unsigned_abs()),
        ] {
            fill_digits(&mut text[range], value);
        }
        return ascii_string(&text);
    }
    // Written digit by digit: `format!` here was a visible share of drawing a new journey.
    let mut out = Vec::with_capacity(24);
    // `{y:04}` counts a minus sign in the width.
    if y < 0 {
        out.push(b'-');
        push_padded(&mut out, y.unsigned_abs(), 3);
    } else {
        push_padded(&mut out, y.unsigned_abs(), 4);
    }
    for (sep, value, width) in [
        (b'-', u64::from(m), 2),
        (b'-', u64::from(d), 2),
        (b'T', h.unsigned_abs(), 2),
        (b':', min.unsigned_abs(), 2),
        (b':', s.unsigned_abs(), 2),
        (b'.', ms.unsigned_abs(), 3),
    ] {
        out.push(sep);
        push_padded(&mut out, value, width);
    }
    out.push(b'Z');
    finish(out)
}

/// Milliseconds since the epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A duration by the crate's one rule: a number with a unit (`500ms`, `2s`, `1m30s`, `1h`),
/// or a bare whole number of seconds. The error says what was wrong and what to write; the
/// caller adds where the text came from.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| DurationError(format!("{text:?} is too many seconds")));
    }
    humantime::parse_duration(text).map_err(|e| {
        DurationError(format!(
            "{text:?} is not a duration ({e}); write e.g. 500ms, 2s, 1m30s or 1h (a bare number is seconds)"
        ))
    })
}

/// A text that is not a duration; the message names it and shows the syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DurationError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_documented_updated_at() {
        // The documented sample: completedAt 1721541398034 beside updatedAt ...38.041Z.
        assert_eq!(
            iso_from_millis(1_721_541_398_041),
            "2024-07-21T05:56:38.041Z"
        );
        assert_eq!(iso_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_millis(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            iso_from_millis(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(
            iso_from_millis(253_402_300_800_000),
            "10000-01-01T00:00:00.000Z"
        );
        // Far from any journey, but the same text `format!` gave.
        assert_eq!(
            iso_from_millis(-62_198_755_200_000),
            "-001-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn civil_dates_agree_with_jiff() {
        use jiff::ToSpan;
        let epoch = jiff::civil::date(1970, 1, 1);
        for day in [-800_000, -1, 0, 59, 60, 11_016, 20_454, 2_932_896] {
            let date = epoch.checked_add(day.days()).unwrap();
            let expected = (
                i64::from(date.year()),
                date.month() as u32,
                date.day() as u32,
            );
            assert_eq!(civil_from_days(day), expected, "day {day}");
        }
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }

    #[test]
    fn durations_have_one_rule() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok(" 2s "), Duration::from_secs(2));
        assert_eq!(ok("1m30s"), Duration::from_secs(90));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("30"), Duration::from_secs(30));
        assert_eq!(ok("0"), Duration::ZERO);
        for bad in [
            "",
            "soon",
            "-1",
            "1.5",
            "2 parsecs",
            "99999999999999999999999",
        ] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("500ms") || e.contains("too many"), "{bad}: {e}");
        }
    }
}
