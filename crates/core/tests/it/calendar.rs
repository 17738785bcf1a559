//! Working-time arithmetic around weekends, holidays, 调休 and working-hour boundaries.

use cityos_core::calendar::{TimeLimit, WorkCalendar};
use cityos_core::rng::Rng;
use cityos_core::time::*;

fn cal() -> WorkCalendar {
    WorkCalendar::weekdays_only()
        .with_holidays_csv(include_str!("../../../../data/calendar/cn-2026.csv"))
        .unwrap()
}

fn at(y: i32, m: u8, d: u8, h: u32, min: u32) -> Millis {
    local(Date::new(y, m, d).unwrap(), h, min)
}

fn check(start: Millis, work_h: f64, expected: Millis) {
    let got = cal().add_working(start, (work_h * HOUR as f64) as Millis);
    assert_eq!(
        format_local(got),
        format_local(expected),
        "{} + {work_h} wh",
        format_local(start)
    );
}

#[test]
fn dates_roundtrip_and_weekdays() {
    for z in -800_000..800_000i64 {
        if z % 997 == 0 {
            assert_eq!(Date::from_days(z).days(), z);
        }
    }
    assert_eq!(
        Date::new(2026, 11, 26).unwrap().weekday(),
        3,
        "2026-11-26 is a Thursday"
    );
    assert_eq!(Date::new(2026, 2, 29), None);
    assert_eq!(
        Date::parse("2024-02-29").unwrap().succ(),
        Date::new(2024, 3, 1).unwrap()
    );
    assert_eq!(
        local_date(at(2026, 1, 1, 0, 0)),
        Date::new(2026, 1, 1).unwrap()
    );
    assert_eq!(
        local_date(at(2026, 1, 1, 0, 0) - 1),
        Date::new(2025, 12, 31).unwrap()
    );
}

#[test]
fn datetime_parsing() {
    assert_eq!(
        parse_datetime("2026-11-26T09:30:00+08:00"),
        Some(at(2026, 11, 26, 9, 30))
    );
    assert_eq!(
        parse_datetime("2026-11-26T01:30:00Z"),
        Some(at(2026, 11, 26, 9, 30))
    );
    assert_eq!(
        parse_datetime("2026-11-26 09:30"),
        Some(at(2026, 11, 26, 9, 30))
    );
    assert_eq!(parse_datetime("2026-13-26 09:30"), None);
    // The exact device form and the general parser agree, offsets either way.
    assert_eq!(
        parse_datetime("2026-11-26T03:30:00-06:00"),
        Some(at(2026, 11, 26, 17, 30))
    );
    assert_eq!(
        parse_datetime("2026-11-26T09:30:07+08:00"),
        parse_datetime("2026-11-26T09:30:07.000+08:00")
    );
    for bad in [
        "2026-02-30T09:30:00+08:00",
        "2026-11-26T24:30:00+08:00",
        "2026-11-26T09:60:00+08:00",
        "2026-11-26T09:30:00+08:61",
        "2026-11-2aT09:30:00+08:00",
        "2026-11-26X09:30:00+08:00",
    ] {
        assert_eq!(parse_datetime(bad), None, "{bad}");
    }
    assert_eq!(parse_datetime("yesterday"), None);
    assert_eq!(
        format_rfc3339(at(2026, 11, 26, 9, 30)),
        "2026-11-26T09:30:00+08:00"
    );
}

#[test]
fn working_days_follow_the_2026_notice() {
    let c = cal();
    let d = |m, d| Date::new(2026, m, d).unwrap();
    assert!(!c.is_working_day(d(10, 1)), "National Day");
    assert!(!c.is_working_day(d(10, 7)));
    assert!(c.is_working_day(d(10, 8)));
    assert!(c.is_working_day(d(10, 10)), "make-up Saturday");
    assert!(c.is_working_day(d(9, 20)), "make-up Sunday before 中秋");
    assert!(c.is_working_day(d(2, 14)), "make-up Saturday before 春节");
    assert!(!c.is_working_day(d(2, 16)));
    assert!(!c.is_working_day(d(11, 28)), "ordinary Saturday");
    assert!(c.is_working_day(d(11, 26)));
    assert_eq!(c.years_covered(), &[2026]);
    assert_eq!(c.day_length(), 8 * HOUR);
}

#[test]
fn add_working_time() {
    // Within a morning.
    check(at(2026, 11, 26, 9, 0), 2.0, at(2026, 11, 26, 11, 0));
    // Across lunch.
    check(at(2026, 11, 26, 11, 0), 2.0, at(2026, 11, 26, 14, 0));
    // Starting during lunch counts from 13:00.
    check(at(2026, 11, 26, 12, 30), 1.0, at(2026, 11, 26, 14, 0));
    // Starting before opening counts from 09:00.
    check(at(2026, 11, 26, 6, 0), 1.0, at(2026, 11, 26, 10, 0));
    // Friday afternoon over the weekend.
    check(at(2026, 11, 27, 16, 0), 3.0, at(2026, 11, 30, 10, 0));
    // Friday evening, after hours.
    check(at(2026, 11, 27, 20, 0), 1.0, at(2026, 11, 30, 10, 0));
    // Exactly to the end of a period stays at its end.
    check(at(2026, 11, 26, 17, 0), 1.0, at(2026, 11, 26, 18, 0));
    // Into National Day: 30 minutes left on 9-30, then 10-01…10-07 off.
    check(at(2026, 9, 30, 17, 30), 1.0, at(2026, 10, 8, 9, 30));
    // 调休: Friday 2-13 17:00 + 4 wh → Saturday 2-14 is a working day.
    check(at(2026, 2, 13, 17, 0), 4.0, at(2026, 2, 14, 12, 0));
    // Spring Festival: 2-14 (Sat, working) 17:00 + 2 wh → 2-15…2-23 off → 2-24 10:00.
    check(at(2026, 2, 14, 17, 0), 2.0, at(2026, 2, 24, 10, 0));
    // Zero duration is the start itself.
    check(at(2026, 11, 28, 3, 0), 0.0, at(2026, 11, 28, 3, 0));
    // Five working days from Monday 9:00 is Friday 18:00.
    check(at(2026, 11, 23, 9, 0), 40.0, at(2026, 11, 27, 18, 0));
}

#[test]
fn working_between_inverts_add_working() {
    let c = cal();
    let mut rng = Rng::new(7);
    let base = at(2026, 1, 1, 0, 0);
    for _ in 0..2000 {
        let start = base + rng.below(360 * DAY as u64) as Millis;
        let work = rng.below(80 * HOUR as u64) as Millis;
        let end = c.add_working(start, work);
        assert!(end >= start);
        assert_eq!(
            c.working_between(start, end),
            work,
            "from {}",
            format_local(start)
        );
    }
    assert_eq!(
        c.working_between(at(2026, 11, 27, 17, 0), at(2026, 11, 26, 9, 0)),
        0
    );
}

#[test]
fn time_limits() {
    let c = cal();
    let s = at(2026, 11, 26, 17, 0);
    let t = |x: &str| TimeLimit::parse(x).unwrap();
    assert_eq!(t("30m").deadline(&c, s, 1.0), s + 30 * MINUTE);
    assert_eq!(t("2h").deadline(&c, s, 0.5), s + HOUR);
    assert_eq!(t("2wh").deadline(&c, s, 1.0), at(2026, 11, 27, 10, 0));
    assert_eq!(t("1wd").deadline(&c, s, 1.0), at(2026, 11, 27, 17, 0));
    assert_eq!(t("3wd").to_string(), "3wd");
    for bad in ["", "wh", "0h", "3 days", "-1h", "2x"] {
        assert!(TimeLimit::parse(bad).is_err(), "{bad:?} should be refused");
    }
    assert!(TimeLimit::parse("2x").unwrap_err().contains("unit"));
}

#[test]
fn bad_calendar_files_name_the_line() {
    let e = WorkCalendar::weekdays_only()
        .with_holidays_csv(
            "date,kind,name,year\n2026-10-01,holiday,x,2026\n2026-13-01,holiday,x,2026\n",
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "calendar line 3: \"2026-13-01\" is not a date (YYYY-MM-DD)"
    );
    let e = WorkCalendar::weekdays_only()
        .with_holidays_csv("2026-10-08,workday,x,2026\n")
        .unwrap_err();
    assert!(e.to_string().contains("not a Saturday or Sunday"), "{e}");
    let e = WorkCalendar::weekdays_only()
        .with_holidays_csv("2026-10-08,vacation,x,2026\n")
        .unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    let bad = |v: &[&str]| {
        WorkCalendar::weekdays_only()
            .with_work_hours(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&["18:00-09:00"]).contains("ends before it starts"));
    assert!(bad(&["09:00-12:00", "11:00-13:00"]).contains("overlaps"));
    assert!(bad(&["9-12"]).contains("HH:MM"));
    assert!(bad(&[]).contains("at least one"));
}
