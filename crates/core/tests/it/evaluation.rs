//! Evaluation (issue 17), the pure parts: periods and their named problems, the scoring
//! file's problems by line, scores explained line by line, ranking per class and the
//! red/black lists, the embedded Xuhui scheme.

use cityos_core::evaluation::measures::{Figures, Hit};
use cityos_core::evaluation::period::PeriodError;
use cityos_core::evaluation::{Measure, Period, Scheme};
use cityos_core::time::{Date, DAY};

const LINES: &[&str] = &["command", "roads", "urban_management"];

#[test]
fn periods_in_every_form_and_the_bad_ones_named() {
    let now = Date::new(2026, 12, 6).unwrap().local_midnight() + 10 * 3_600_000;
    let p = |s| Period::parse(s, now);
    assert_eq!(p("2026-11").unwrap().last, Date::new(2026, 11, 30).unwrap());
    assert_eq!(
        p("2026-11").unwrap().to() - p("2026-11").unwrap().from(),
        30 * DAY
    );
    assert_eq!(p("2026-02").unwrap().last, Date::new(2026, 2, 28).unwrap());
    assert_eq!(p("2026-Q4").unwrap().to_string(), "2026-Q4");
    assert_eq!(p("2026-Q4").unwrap().last, Date::new(2026, 12, 31).unwrap());
    assert_eq!(
        p("2026-W01").unwrap().first,
        Date::new(2025, 12, 29).unwrap()
    );
    assert_eq!(p("2026-W49").unwrap().to_string(), "2026-W49");
    assert_eq!(
        p("2026-11-05").unwrap().to() - p("2026-11-05").unwrap().from(),
        DAY
    );
    assert_eq!(
        p("2026-11-01..2026-11-15").unwrap().to() - p("2026-11-01..2026-11-15").unwrap().from(),
        15 * DAY
    );
    // Today's period is fine (evaluated up to now); tomorrow's is not.
    assert!(p("2026-12-06").is_ok());
    assert!(matches!(p("2026-12-07"), Err(PeriodError::Future(_))));
    assert!(matches!(p("2027-01"), Err(PeriodError::Future(_))));
    assert!(matches!(
        p("2026-11-10..2026-11-01"),
        Err(PeriodError::Reversed(_))
    ));
    for bad in [
        "2026-13",
        "2026-W54",
        "2026-Q5",
        "soon",
        "",
        "2026-11-31",
        "2026/11",
    ] {
        assert!(matches!(p(bad), Err(PeriodError::Malformed(_))), "{bad}");
    }
    assert_eq!(p("2026-11").unwrap().previous().to_string(), "2026-10");
    assert_eq!(p("2026-01").unwrap().previous().to_string(), "2025-12");
    assert_eq!(p("2026-Q1").unwrap().previous().to_string(), "2025-Q4");
    assert_eq!(p("2026-W01").unwrap().previous().to_string(), "2025-W52");
}

fn problems(text: &str) -> Vec<String> {
    Scheme::parse(text, LINES)
        .unwrap_err()
        .0
        .iter()
        .map(|p| p.to_string())
        .collect()
}

#[test]
fn bad_scoring_files_are_named_by_line() {
    let p = problems("[[weight]]\nmeasure = \"handle_on_time\"\nweight = \"lots\"\n");
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("3:"), "{p:?}");
    let p = problems("[[weight]]\nmeasure = \"speed\"\nweight = 10\n");
    assert!(
        p[0].starts_with("2:") && p[0].contains("unknown measure \"speed\""),
        "{p:?}"
    );
    let p = problems("[[weight]]\nmeasure = \"received\"\nweight = 10\n");
    assert!(p[0].contains("not a rate"), "{p:?}");
    let p = problems("[[weight]]\nmeasure = \"handle_on_time\"\nweight = -1\n");
    assert!(p[0].starts_with("3:") && p[0].contains("positive"), "{p:?}");
    let p = problems(
        "[[weight]]\nmeasure = \"handle_on_time\"\nweight = 1\n[[weight]]\nmeasure = \"handle_on_time\"\nweight = 2\n",
    );
    assert!(p[0].starts_with("5:") && p[0].contains("twice"), "{p:?}");
    let p = problems("[[weight]]\nmeasure = \"satisfaction\"\nweight = 1\n[[deduction]]\nmeasure = \"satisfaction\"\npoints = 1\n");
    assert!(p[0].starts_with("5:") && p[0].contains("rate"), "{p:?}");
    let p = problems("[[weight]]\nmeasure = \"satisfaction\"\nweight = 1\n[[class]]\ncode = \"x\"\nname_zh = \"甲\"\nlines = [\"space\"]\n");
    assert!(
        p[0].starts_with("7:") && p[0].contains("unknown department line"),
        "{p:?}"
    );
    let p = problems("name = \"x\"\n");
    assert!(p[0].contains("at least one [[weight]]"), "{p:?}");
    let p = problems("[[weight]]\nmeasure = \"satisfaction\"\nweight = 1\nbonus = 3\n");
    assert!(p[0].starts_with("4:"), "unknown keys named: {p:?}");
}

fn figures(rate_yes: u64, rate_no: u64, overdue: u64, received: u64) -> Figures {
    let mut f = Figures::default();
    let mut add = |m: Measure, v: f64| {
        f.add(&Hit {
            unit: "u".into(),
            measure: m,
            value: v,
        })
    };
    for _ in 0..received {
        add(Measure::Received, 1.0);
    }
    for _ in 0..rate_yes {
        add(Measure::HandleOnTime, 1.0);
        add(Measure::ReturnRate, 0.0);
    }
    for _ in 0..rate_no {
        add(Measure::HandleOnTime, 0.0);
        add(Measure::ReturnRate, 1.0);
    }
    for _ in 0..overdue {
        add(Measure::OverdueNow, 1.0);
    }
    f
}

const SCHEME: &str = r#"
min_received = 3
[red]
top = 1
min_score = 80
[black]
bottom = 1
max_score = 60
[[weight]]
measure = "handle_on_time"
weight = 3
min_samples = 2
[[weight]]
measure = "return_rate"
weight = 1
min_samples = 50
[[deduction]]
measure = "overdue_now"
points = 2
max = 5
[[class]]
code = "a"
name_zh = "甲类"
lines = ["roads"]
"#;

#[test]
fn scores_explained_ranked_and_listed() {
    let s = Scheme::parse(SCHEME, LINES).unwrap();
    // 8 of 10 on time: 80; the return rate has too few samples and is left out; one
    // overdue case costs 2 points.
    let sc = s.score(&figures(8, 2, 1, 10));
    assert_eq!(sc.score, Some(78.0));
    assert_eq!(sc.lines.len(), 3);
    assert!(sc.lines[0].counted && (sc.lines[0].points - 80.0).abs() < 1e-9);
    assert!(!sc.lines[1].counted && sc.lines[1].note.contains("样本不足"));
    assert_eq!(sc.lines[2].points, -2.0);
    // The deduction stops at its maximum.
    assert_eq!(s.score(&figures(10, 0, 9, 10)).score, Some(95.0));
    // Too few cases: scored but not ranked.
    let few = s.score(&figures(2, 0, 0, 2));
    assert!(few.unranked.is_some());
    let units = [
        ("best", s.score(&figures(10, 0, 0, 10))),
        ("mid", s.score(&figures(7, 3, 0, 10))),
        ("worst", s.score(&figures(5, 5, 0, 10))),
        ("few", few),
    ];
    let rows: Vec<(String, String, &cityos_core::evaluation::scoring::Score)> = units
        .iter()
        .map(|(u, sc)| (u.to_string(), "a".to_string(), sc))
        .collect();
    let r = s.rank(&rows);
    let by = |u: &str| r.iter().find(|x| x.unit == u).unwrap();
    assert_eq!((by("best").rank, by("best").list), (Some(1), "red"));
    assert_eq!((by("mid").rank, by("mid").list), (Some(2), ""));
    assert_eq!((by("worst").rank, by("worst").list), (Some(3), "black"));
    assert_eq!((by("few").rank, by("few").list), (None, ""));
    assert_eq!(r.last().unwrap().unit, "few", "unranked units come last");
    assert_eq!(s.class_of_line("roads"), "a");
    assert_eq!(s.class_of_line("command"), "other");
}

#[test]
fn the_xuhui_scheme_loads() {
    let cfg = cityos_engine_free_lines();
    let s = Scheme::parse(include_str!("../../../../data/xuhui/scoring.toml"), &cfg).unwrap();
    assert!(s.weights.len() >= 5);
    let total: f64 = s.weights.iter().map(|w| w.weight).sum();
    assert_eq!(total, 100.0);
    assert_eq!(s.class_of_line("roads"), "infrastructure");
}

/// Every functional line the Xuhui taxonomy names (read from the file, as the server
/// reads it from the loaded taxonomy).
fn cityos_engine_free_lines() -> Vec<&'static str> {
    let text: &'static str = include_str!("../../../../data/xuhui/taxonomy.toml");
    let mut v: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("line = \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[test]
fn the_docs_list_every_measure_as_defined() {
    let table = cityos_core::evaluation::measures::markdown_table();
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/evaluation.md"
    ))
    .unwrap();
    assert!(
        doc.contains(&table),
        "docs/evaluation.md must hold the measures table as generated:\n{table}"
    );
}
