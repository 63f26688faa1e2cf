//! `--to-datetime` values: `YYYY-MM-DDTHH:mm:SS[.sss][Z|±HH:MM]` to epoch milliseconds,
//! the format `kafka-consumer-groups.sh` takes. Without a zone the time is UTC (Kafka
//! uses the JVM's zone; servers usually run in UTC, and a fixed rule is reproducible).

/// Parses a datetime; the error names what is wrong.
pub(super) fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = || format!("expected YYYY-MM-DDTHH:mm:SS[.sss][Z|+HH:MM], got {s:?}");
    let (date, time) = s.split_once('T').ok_or_else(bad)?;
    let (time, zone_ms) = split_zone(time).ok_or_else(bad)?;
    let [year, month, day] = fields::<3>(date, '-').ok_or_else(bad)?;
    let (hms, millis) = match time.split_once('.') {
        Some((hms, frac)) => (hms, fraction_ms(frac).ok_or_else(bad)?),
        None => (time, 0),
    };
    let [hour, minute, second] = fields::<3>(hms, ':').ok_or_else(bad)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("no such date in {s:?}"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(format!("no such time in {s:?}"));
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Ok(seconds * 1000 + millis - zone_ms)
}

/// Splits off a trailing `Z` or `±HH:MM`, returning the time and the zone's offset in ms.
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(t) = time.strip_suffix('Z') {
        return Some((t, 0));
    }
    match time.rfind(['+', '-']) {
        Some(at) => {
            let sign = if time[at..].starts_with('-') { -1 } else { 1 };
            let [h, m] = fields::<2>(&time[at + 1..], ':')?;
            (h <= 23 && m <= 59).then_some((&time[..at], sign * (h * 3600 + m * 60) * 1000))
        }
        None => Some((time, 0)),
    }
}

/// Exactly `N` all-digit fields separated by `sep`.
fn fields<const N: usize>(s: &str, sep: char) -> Option<[i64; N]> {
    let mut out = [0; N];
    let mut parts = s.split(sep);
    for slot in &mut out {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) || part.len() > 4 {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// `.5` is 500 ms, `.123` 123 ms; digits past milliseconds are dropped.
fn fraction_ms(frac: &str) -> Option<i64> {
    if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{frac:0<3}");
    padded[..3].parse().ok()
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafkas_format_with_and_without_zone() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00.000"), Ok(0));
        assert_eq!(
            parse_datetime("2023-11-14T22:13:20.123Z"),
            Ok(1_700_000_000_123)
        );
        assert_eq!(
            parse_datetime("2023-11-15T00:13:20+02:00"),
            Ok(1_700_000_000_000)
        );
        assert_eq!(
            parse_datetime("2023-11-14T21:13:20.5-01:00"),
            Ok(1_700_000_000_500)
        );
        assert_eq!(parse_datetime("2024-02-29T00:00:00"), Ok(1_709_164_800_000));
        assert_eq!(parse_datetime("1969-12-31T23:59:59.999"), Ok(-1));
    }

    #[test]
    fn rejects_malformed_and_impossible_values() {
        for s in [
            "2023-11-14",
            "2023-11-14 22:13:20",
            "2023-13-01T00:00:00",
            "2023-02-29T00:00:00",
            "2023-01-01T24:00:00",
            "2023-01-01T00:00",
            "2023-01-01T00:00:00.",
            "2023-01-01T00:00:00+25:00",
            "2023-01-01T00:00:0x",
        ] {
            assert!(parse_datetime(s).is_err(), "{s}");
        }
    }
}
