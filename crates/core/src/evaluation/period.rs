//! Periods (考核周期): a day, an ISO week, a month, a quarter, or a custom range of days,
//! always whole local (Beijing) days, as `[from, to)` in milliseconds.
//!
//! Written forms: `2026-11-05` (day), `2026-W45` (ISO week), `2026-11` (month),
//! `2026-Q4` (quarter), `2026-11-01..2026-11-15` (custom, both days included).

use crate::time::{local_date, Date, Millis};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    Day,
    Week,
    Month,
    Quarter,
    Custom,
}

/// A period of whole local days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub kind: PeriodKind,
    /// The first day.
    pub first: Date,
    /// The last day (included).
    pub last: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("period {0:?} is not a day (2026-11-05), week (2026-W45), month (2026-11), quarter (2026-Q4) or range (2026-11-01..2026-11-15)")]
    Malformed(String),
    #[error("period {0:?} ends before it starts")]
    Reversed(String),
    #[error("period {0:?} starts in the future")]
    Future(String),
}

impl Period {
    /// Parses a period and checks it against `now`: a period may not start after today
    /// (a running period is fine: it is evaluated up to now).
    pub fn parse(s: &str, now: Millis) -> Result<Period, PeriodError> {
        let t = s.trim();
        let bad = || PeriodError::Malformed(s.to_string());
        let p = if let Some((a, b)) = t.split_once("..") {
            let (first, last) = (
                Date::parse(a).ok_or_else(bad)?,
                Date::parse(b).ok_or_else(bad)?,
            );
            if last < first {
                return Err(PeriodError::Reversed(s.to_string()));
            }
            Period {
                kind: PeriodKind::Custom,
                first,
                last,
            }
        } else if let Some((y, w)) = t.split_once("-W") {
            let (y, w): (i32, u32) = (y.parse().map_err(|_| bad())?, w.parse().map_err(|_| bad())?);
            let first = iso_week_monday(y, w).ok_or_else(bad)?;
            Period {
                kind: PeriodKind::Week,
                first,
                last: Date::from_days(first.days() + 6),
            }
        } else if let Some((y, q)) = t.split_once("-Q") {
            let (y, q): (i32, u8) = (y.parse().map_err(|_| bad())?, q.parse().map_err(|_| bad())?);
            if !(1..=4).contains(&q) {
                return Err(bad());
            }
            let first = Date::new(y, (q - 1) * 3 + 1, 1).ok_or_else(bad)?;
            let next = if q == 4 {
                Date::new(y + 1, 1, 1)
            } else {
                Date::new(y, q * 3 + 1, 1)
            }
            .ok_or_else(bad)?;
            Period {
                kind: PeriodKind::Quarter,
                first,
                last: Date::from_days(next.days() - 1),
            }
        } else if t.len() == 7 && t.as_bytes()[4] == b'-' {
            let (y, m): (i32, u8) = (
                t[..4].parse().map_err(|_| bad())?,
                t[5..].parse().map_err(|_| bad())?,
            );
            let first = Date::new(y, m, 1).ok_or_else(bad)?;
            let next = if m == 12 {
                Date::new(y + 1, 1, 1)
            } else {
                Date::new(y, m + 1, 1)
            }
            .ok_or_else(bad)?;
            Period {
                kind: PeriodKind::Month,
                first,
                last: Date::from_days(next.days() - 1),
            }
        } else {
            let d = Date::parse(t).filter(|_| t.len() == 10).ok_or_else(bad)?;
            Period {
                kind: PeriodKind::Day,
                first: d,
                last: d,
            }
        };
        if p.first > local_date(now) {
            return Err(PeriodError::Future(s.to_string()));
        }
        Ok(p)
    }

    /// The month holding an instant.
    pub fn month_of(t: Millis) -> Period {
        let d = local_date(t);
        let first = Date::new(d.year, d.month, 1).expect("a valid month");
        let next = if d.month == 12 {
            Date::new(d.year + 1, 1, 1)
        } else {
            Date::new(d.year, d.month + 1, 1)
        }
        .expect("a valid month");
        Period {
            kind: PeriodKind::Month,
            first,
            last: Date::from_days(next.days() - 1),
        }
    }

    /// Start (local midnight of the first day), in ms.
    pub fn from(&self) -> Millis {
        self.first.local_midnight()
    }

    /// End (local midnight after the last day), exclusive, in ms.
    pub fn to(&self) -> Millis {
        self.last.succ().local_midnight()
    }

    /// The period of the same kind and length just before this one (for trends).
    pub fn previous(&self) -> Period {
        match self.kind {
            PeriodKind::Month => Period::month_of(self.from() - 1),
            PeriodKind::Quarter => {
                let d = Date::from_days(self.first.days() - 1);
                let q = (d.month - 1) / 3 + 1;
                Period::parse(&format!("{}-Q{q}", d.year), i64::MAX / 2).expect("a quarter")
            }
            _ => {
                let len = self.last.days() - self.first.days() + 1;
                Period {
                    kind: self.kind,
                    first: Date::from_days(self.first.days() - len),
                    last: Date::from_days(self.first.days() - 1),
                }
            }
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Day => write!(f, "{}", self.first),
            PeriodKind::Month => write!(f, "{:04}-{:02}", self.first.year, self.first.month),
            PeriodKind::Quarter => write!(
                f,
                "{:04}-Q{}",
                self.first.year,
                (self.first.month - 1) / 3 + 1
            ),
            PeriodKind::Week => {
                let (y, w) = iso_week_of(self.first);
                write!(f, "{y:04}-W{w:02}")
            }
            PeriodKind::Custom => write!(f, "{}..{}", self.first, self.last),
        }
    }
}

/// The Monday of ISO week `w` of year `y`.
fn iso_week_monday(y: i32, w: u32) -> Option<Date> {
    if !(1..=53).contains(&w) {
        return None;
    }
    let jan4 = Date::new(y, 1, 4)?;
    let week1 = jan4.days() - jan4.weekday() as i64;
    let monday = Date::from_days(week1 + (w as i64 - 1) * 7);
    (iso_week_of(monday) == (y, w)).then_some(monday)
}

/// The ISO (year, week) of a date.
fn iso_week_of(d: Date) -> (i32, u32) {
    let thursday = Date::from_days(d.days() - d.weekday() as i64 + 3);
    let jan1 = Date::new(thursday.year, 1, 1).expect("January 1st");
    (
        thursday.year,
        ((thursday.days() - jan1.days()) / 7 + 1) as u32,
    )
}
