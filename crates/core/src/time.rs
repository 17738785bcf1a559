//! Time as the whole project sees it: `i64` milliseconds since the Unix epoch (UTC).
//!
//! The district runs on Beijing time (UTC+8, no daylight saving), so local dates and
//! clock times are a fixed offset away and need no time-zone database. Civil-date
//! arithmetic uses Howard Hinnant's days-from-civil algorithm.
//!
//! Architecture Invariant: nothing here reads the clock; callers pass `now`.

use std::fmt;

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;
/// Beijing time is UTC+8 all year.
pub const LOCAL_OFFSET: Millis = 8 * HOUR;

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    pub fn new(year: i32, month: u8, day: u8) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Option<Date> {
        let mut it = s.trim().splitn(3, '-');
        let y = it.next()?.parse().ok()?;
        let m = it.next()?.parse().ok()?;
        let d = it.next()?.parse().ok()?;
        Date::new(y, m, d)
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i64 {
        let y = self.year as i64 - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    pub fn from_days(z: i64) -> Date {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
        Date {
            year: y,
            month: m,
            day: d,
        }
    }

    /// 0 = Monday … 6 = Sunday.
    pub fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (3).
        ((self.days() + 3).rem_euclid(7)) as u8
    }

    pub fn is_weekend(self) -> bool {
        self.weekday() >= 5
    }

    /// Local midnight of this date, as UTC milliseconds.
    pub fn local_midnight(self) -> Millis {
        self.days() * DAY - LOCAL_OFFSET
    }

    pub fn succ(self) -> Date {
        Date::from_days(self.days() + 1)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u8) -> u8 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(y) => 29,
        2 => 28,
        _ => 0,
    }
}

/// The local (Beijing) date of an instant.
pub fn local_date(t: Millis) -> Date {
    Date::from_days((t + LOCAL_OFFSET).div_euclid(DAY))
}

/// Milliseconds since local midnight.
pub fn local_time_of_day(t: Millis) -> Millis {
    (t + LOCAL_OFFSET).rem_euclid(DAY)
}

/// Builds an instant from a local date and clock time.
pub fn local(date: Date, hour: u32, minute: u32) -> Millis {
    date.local_midnight() + hour as Millis * HOUR + minute as Millis * MINUTE
}

/// Formats an instant as local `YYYY-MM-DD HH:MM`.
pub fn format_local(t: Millis) -> String {
    let d = local_date(t);
    let tod = local_time_of_day(t);
    format!("{d} {:02}:{:02}", tod / HOUR, (tod % HOUR) / MINUTE)
}

/// Formats an instant as RFC 3339 with the +08:00 offset, to the second.
pub fn format_rfc3339(t: Millis) -> String {
    let d = local_date(t);
    let tod = local_time_of_day(t);
    format!(
        "{d}T{:02}:{:02}:{:02}+08:00",
        tod / HOUR,
        (tod % HOUR) / MINUTE,
        (tod % MINUTE) / SECOND
    )
}

/// The common exact form `YYYY-MM-DDTHH:MM:SS±HH:MM` (what devices send), without
/// allocating or splitting; anything else falls through to the general parser.
fn parse_exact(b: &[u8]) -> Option<Millis> {
    if b.len() != 25
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !(b[19] == b'+' || b[19] == b'-')
        || b[22] != b':'
    {
        return None;
    }
    let n = |i: usize, len: usize| -> Option<i64> {
        b[i..i + len].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let date = Date::new(n(0, 4)? as i32, n(5, 2)? as u8, n(8, 2)? as u8)?;
    let (h, m, sec) = (n(11, 2)?, n(14, 2)?, n(17, 2)?);
    let (oh, om) = (n(20, 2)?, n(23, 2)?);
    if h > 23 || m > 59 || sec > 60 || oh > 23 || om > 59 {
        return None;
    }
    let sign = if b[19] == b'-' { -1 } else { 1 };
    Some(date.days() * DAY + h * HOUR + m * MINUTE + sec * 1000 - sign * (oh * HOUR + om * MINUTE))
}

/// Parses `YYYY-MM-DDTHH:MM[:SS][Z|±HH:MM]` (or with a space); no offset means local time.
pub fn parse_datetime(s: &str) -> Option<Millis> {
    let s = s.trim();
    if let Some(t) = parse_exact(s.as_bytes()) {
        return Some(t);
    }
    if s.len() < 16 {
        return None;
    }
    let date = Date::parse(s.get(..10)?)?;
    let sep = s.as_bytes()[10];
    if sep != b'T' && sep != b' ' {
        return None;
    }
    let rest = &s[11..];
    let (clock, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut parts = clock.split(':');
    let h: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let sec: f64 = parts.next().map(|x| x.parse().ok()).unwrap_or(Some(0.0))?;
    if parts.next().is_some() || h > 23 || m > 59 || !(0.0..61.0).contains(&sec) {
        return None;
    }
    let offset_ms = match offset {
        "" => LOCAL_OFFSET,
        "Z" => 0,
        o => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            let (oh, om) = o[1..].split_once(':')?;
            let (oh, om) = (oh.parse::<i64>().ok()?, om.parse::<i64>().ok()?);
            if !(0..24).contains(&oh) || !(0..60).contains(&om) {
                return None;
            }
            sign * (oh * HOUR + om * MINUTE)
        }
    };
    Some(date.days() * DAY + h * HOUR + m * MINUTE + (sec * 1000.0) as i64 - offset_ms)
}
