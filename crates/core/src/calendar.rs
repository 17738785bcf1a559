//! The working-time calendar: which days are working days (weekends, public holidays and
//! make-up working days 调休 from a calendar file) and which hours of them are working
//! hours; deadline arithmetic over working time.
//!
//! A date the file does not list is a working day Monday–Friday and a day off on
//! Saturday/Sunday. The calendar file is CSV `date,kind,name,year` with kind `holiday`
//! (a day off) or `workday` (a make-up working day), as published by the State Council.
//!
//! Architecture Invariant: pure arithmetic on `Millis`; no clock, no IO.

use crate::time::{local_date, Date, Millis, HOUR, MINUTE};
use std::collections::HashSet;
use std::fmt;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalendarError {
    #[error("calendar line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("working hours {0:?}: {1}")]
    Hours(String, String),
}

/// Working days and hours.
#[derive(Debug, Clone)]
pub struct WorkCalendar {
    holidays: HashSet<i64>,
    workdays: HashSet<i64>,
    /// Working periods within a day, as [start, end) milliseconds after local midnight.
    periods: Vec<(Millis, Millis)>,
    years: Vec<i32>,
}

impl WorkCalendar {
    /// A calendar with only weekends off, working 09:00–12:00 and 13:00–18:00.
    pub fn weekdays_only() -> WorkCalendar {
        WorkCalendar {
            holidays: HashSet::new(),
            workdays: HashSet::new(),
            periods: vec![(9 * HOUR, 12 * HOUR), (13 * HOUR, 18 * HOUR)],
            years: Vec::new(),
        }
    }

    /// Reads the holiday CSV and adds it to this calendar.
    pub fn with_holidays_csv(mut self, text: &str) -> Result<WorkCalendar, CalendarError> {
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = line.trim();
            if line.is_empty() || (i == 0 && line.starts_with("date")) {
                continue;
            }
            let cols: Vec<&str> = line.split(',').collect();
            let err = |problem: String| CalendarError::Line {
                line: line_no,
                problem,
            };
            let date = Date::parse(cols[0])
                .ok_or_else(|| err(format!("{:?} is not a date (YYYY-MM-DD)", cols[0])))?;
            let kind = cols.get(1).map(|s| s.trim()).unwrap_or("");
            match kind {
                "holiday" => {
                    self.holidays.insert(date.days());
                }
                "workday" => {
                    if !date.is_weekend() {
                        return Err(err(format!(
                            "{date} is a make-up working day but not a Saturday or Sunday"
                        )));
                    }
                    self.workdays.insert(date.days());
                }
                other => {
                    return Err(err(format!(
                        "kind {other:?} is neither \"holiday\" nor \"workday\""
                    )))
                }
            }
            if !self.years.contains(&date.year) {
                self.years.push(date.year);
            }
        }
        Ok(self)
    }

    /// Sets the working periods from strings like `"09:00-12:00"`.
    pub fn with_work_hours(mut self, periods: &[String]) -> Result<WorkCalendar, CalendarError> {
        let mut out = Vec::new();
        for p in periods {
            let bad = |why: &str| CalendarError::Hours(p.clone(), why.to_string());
            let (a, b) = p
                .split_once('-')
                .ok_or_else(|| bad("expected HH:MM-HH:MM"))?;
            let parse = |s: &str| -> Option<Millis> {
                let (h, m) = s.trim().split_once(':')?;
                let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
                (h <= 24 && m < 60 && h * 60 + m <= 24 * 60).then_some(h * HOUR + m * MINUTE)
            };
            let (s, e) = (
                parse(a).ok_or_else(|| bad("start is not HH:MM"))?,
                parse(b).ok_or_else(|| bad("end is not HH:MM"))?,
            );
            if e <= s {
                return Err(bad("ends before it starts"));
            }
            if out.last().is_some_and(|&(_, pe)| s < pe) {
                return Err(bad("overlaps or precedes the previous period"));
            }
            out.push((s, e));
        }
        if out.is_empty() {
            return Err(CalendarError::Hours(
                String::new(),
                "at least one working period is needed".into(),
            ));
        }
        self.periods = out;
        Ok(self)
    }

    /// Years for which the calendar file lists holidays.
    pub fn years_covered(&self) -> &[i32] {
        &self.years
    }

    pub fn is_working_day(&self, d: Date) -> bool {
        let n = d.days();
        if self.holidays.contains(&n) {
            false
        } else if self.workdays.contains(&n) {
            true
        } else {
            !d.is_weekend()
        }
    }

    /// Working milliseconds in one working day (8 h by default).
    pub fn day_length(&self) -> Millis {
        self.periods.iter().map(|(s, e)| e - s).sum()
    }

    pub fn is_working_time(&self, t: Millis) -> bool {
        let d = local_date(t);
        if !self.is_working_day(d) {
            return false;
        }
        let tod = t - d.local_midnight();
        self.periods.iter().any(|&(s, e)| tod >= s && tod < e)
    }

    /// The instant when `work` milliseconds of working time have passed after `start`.
    /// Time outside working hours does not count; `work == 0` returns `start`.
    pub fn add_working(&self, start: Millis, work: Millis) -> Millis {
        if work <= 0 {
            return start;
        }
        let mut remaining = work;
        let mut day = local_date(start);
        let mut t = start;
        // Bounded: no real calendar has a year without working days.
        for _ in 0..20_000 {
            if self.is_working_day(day) {
                let midnight = day.local_midnight();
                for &(ps, pe) in &self.periods {
                    let (s, e) = (midnight + ps, midnight + pe);
                    if t >= e {
                        continue;
                    }
                    let from = t.max(s);
                    let avail = e - from;
                    if remaining <= avail {
                        return from + remaining;
                    }
                    remaining -= avail;
                    t = e;
                }
            }
            day = day.succ();
            t = day.local_midnight();
        }
        t
    }

    /// Working time between two instants (0 if `end <= start`).
    pub fn working_between(&self, start: Millis, end: Millis) -> Millis {
        if end <= start {
            return 0;
        }
        let mut total = 0;
        let mut day = local_date(start);
        while day.local_midnight() < end {
            if self.is_working_day(day) {
                let midnight = day.local_midnight();
                for &(ps, pe) in &self.periods {
                    let (s, e) = ((midnight + ps).max(start), (midnight + pe).min(end));
                    if e > s {
                        total += e - s;
                    }
                }
            }
            day = day.succ();
        }
        total
    }
}

/// A step's time limit as configured: natural minutes/hours, or working hours/days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TimeLimit {
    pub amount: u32,
    pub unit: LimitUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitUnit {
    Minutes,
    Hours,
    WorkingHours,
    WorkingDays,
}

impl TimeLimit {
    pub fn parse(s: &str) -> Result<TimeLimit, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let amount: u32 = num.parse().map_err(|_| {
            format!("time limit {s:?} must start with a whole number, e.g. \"30m\", \"2h\", \"4wh\", \"3wd\"")
        })?;
        let unit = match unit {
            "m" => LimitUnit::Minutes,
            "h" => LimitUnit::Hours,
            "wh" => LimitUnit::WorkingHours,
            "wd" => LimitUnit::WorkingDays,
            other => {
                return Err(format!(
                    "time limit {s:?} has unit {other:?}; use m, h (natural) or wh, wd (working)"
                ))
            }
        };
        if amount == 0 {
            return Err(format!("time limit {s:?} must be more than zero"));
        }
        Ok(TimeLimit { amount, unit })
    }

    pub fn is_working(&self) -> bool {
        matches!(self.unit, LimitUnit::WorkingHours | LimitUnit::WorkingDays)
    }

    /// The deadline for a step starting at `start`, the limit scaled by `factor`
    /// (the priority's multiplier).
    pub fn deadline(&self, cal: &WorkCalendar, start: Millis, factor: f64) -> Millis {
        let scaled = |ms: Millis| ((ms as f64) * factor).round() as Millis;
        let n = self.amount as Millis;
        match self.unit {
            LimitUnit::Minutes => start + scaled(n * MINUTE),
            LimitUnit::Hours => start + scaled(n * HOUR),
            LimitUnit::WorkingHours => cal.add_working(start, scaled(n * HOUR)),
            LimitUnit::WorkingDays => cal.add_working(start, scaled(n * cal.day_length())),
        }
    }
}

impl TryFrom<String> for TimeLimit {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        TimeLimit::parse(&s)
    }
}

impl From<TimeLimit> for String {
    fn from(t: TimeLimit) -> String {
        t.to_string()
    }
}

impl fmt::Display for TimeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = match self.unit {
            LimitUnit::Minutes => "m",
            LimitUnit::Hours => "h",
            LimitUnit::WorkingHours => "wh",
            LimitUnit::WorkingDays => "wd",
        };
        write!(f, "{}{}", self.amount, u)
    }
}
