//! The district's scoring scheme (考核办法, `data/xuhui/scoring.toml`): weights per rate
//! measure, deductions per count or hour, minimum samples, comparable classes of
//! departments; the score of a unit with its explanation line by line, the ranking per
//! class and the red/black list (红黑榜).
//!
//! Score = 100 × Σ weight × v / Σ weight over the weighted measures that have at least
//! their `min_samples` judged items (v is the rate, or 1 − rate where lower is better),
//! minus each deduction `min(max, points × max(0, value − above))`. A unit with fewer
//! than `min_received` cases received, or without any weighted measure, is not ranked.

use super::measures::{Figures, Kind, Measure};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

/// A problem in a scoring file, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("scoring file: {}", .0.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ScoringError(pub Vec<Problem>);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<String>,
    min_received: Option<Spanned<i64>>,
    red: Option<RawList>,
    black: Option<RawList>,
    #[serde(default)]
    weight: Vec<RawWeight>,
    #[serde(default)]
    deduction: Vec<RawDeduction>,
    #[serde(default)]
    class: Vec<RawClass>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    top: Option<Spanned<i64>>,
    bottom: Option<Spanned<i64>>,
    min_score: Option<f64>,
    max_score: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeight {
    measure: Spanned<String>,
    weight: Spanned<f64>,
    #[serde(default)]
    min_samples: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeduction {
    measure: Spanned<String>,
    points: Spanned<f64>,
    max: Option<Spanned<f64>>,
    #[serde(default)]
    above: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClass {
    code: Spanned<String>,
    name_zh: String,
    #[serde(default)]
    name_en: Option<String>,
    lines: Vec<Spanned<String>>,
}

/// A weighted rate measure.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub measure: Measure,
    pub weight: f64,
    pub min_samples: u64,
}

/// A deduction per unit of a count or of hours above a threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Deduction {
    pub measure: Measure,
    pub points: f64,
    pub max: f64,
    pub above: f64,
}

/// A class of comparable departments (by functional line).
#[derive(Debug, Clone, PartialEq)]
pub struct Class {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub lines: Vec<String>,
}

/// The scoring scheme.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    pub name: String,
    pub min_received: u64,
    pub red_top: usize,
    pub red_min: f64,
    pub black_bottom: usize,
    pub black_max: f64,
    pub weights: Vec<Weight>,
    pub deductions: Vec<Deduction>,
    pub classes: Vec<Class>,
}

/// One line of a score's explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub measure: Measure,
    /// "weight" or "deduction".
    pub kind: &'static str,
    pub value: Option<f64>,
    pub numerator: f64,
    pub samples: u64,
    /// The weight (weights) or the points per unit (deductions).
    pub factor: f64,
    /// Points this line gives (weights: share of 100; deductions: negative).
    pub points: f64,
    /// False when the measure had fewer judged items than its minimum (left out).
    pub counted: bool,
    pub note: String,
}

/// A unit's score with its explanation.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub score: Option<f64>,
    pub lines: Vec<Line>,
    /// Why the unit is not ranked, if it is not.
    pub unranked: Option<String>,
}

/// A unit's place.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub unit: String,
    pub class: String,
    pub score: Option<f64>,
    /// 1-based within its class; None when not ranked.
    pub rank: Option<usize>,
    /// "red", "black" or "".
    pub list: &'static str,
}

struct Lines<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Scheme {
    /// Reads a scoring file. `lines` are the functional lines the taxonomy knows (a class
    /// naming another is refused). Every problem is named with its line and column.
    pub fn parse(text: &str, lines: &[&str]) -> Result<Scheme, ScoringError> {
        let mut p = Lines {
            text,
            problems: Vec::new(),
        };
        let raw: RawFile = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let off = e.span().map_or(0, |s| s.start);
                p.at(off, e.message().to_string());
                return Err(ScoringError(p.problems));
            }
        };
        let count = |p: &mut Lines, v: &Option<Spanned<i64>>, default: i64, what: &str| -> i64 {
            match v {
                Some(s) if *s.get_ref() < 0 => {
                    p.at(s.span().start, format!("{what} must not be negative"));
                    default
                }
                Some(s) => *s.get_ref(),
                None => default,
            }
        };
        let min_received = count(&mut p, &raw.min_received, 1, "min_received") as u64;
        let (red_top, red_min) = match &raw.red {
            Some(r) => (
                count(&mut p, &r.top, 3, "red.top"),
                r.min_score.unwrap_or(0.0),
            ),
            None => (3, 0.0),
        };
        let (black_bottom, black_max) = match &raw.black {
            Some(r) => (
                count(&mut p, &r.bottom, 3, "black.bottom"),
                r.max_score.unwrap_or(100.0),
            ),
            None => (3, 100.0),
        };
        let mut weights: Vec<Weight> = Vec::new();
        for w in &raw.weight {
            let Some(m) = Measure::parse(w.measure.get_ref()) else {
                p.at(w.measure.span().start, unknown(w.measure.get_ref()));
                continue;
            };
            if m.kind() != Kind::Rate {
                p.at(
                    w.measure.span().start,
                    format!(
                        "{} is not a rate; counts and hours score through [[deduction]]",
                        m.code()
                    ),
                );
                continue;
            }
            if !w.weight.get_ref().is_finite() || *w.weight.get_ref() <= 0.0 {
                p.at(w.weight.span().start, "weight must be a positive number");
                continue;
            }
            if weights.iter().any(|x| x.measure == m) {
                p.at(
                    w.measure.span().start,
                    format!("{} is weighted twice", m.code()),
                );
                continue;
            }
            let min_samples = count(&mut p, &w.min_samples, 1, "min_samples") as u64;
            weights.push(Weight {
                measure: m,
                weight: *w.weight.get_ref(),
                min_samples,
            });
        }
        let mut deductions = Vec::new();
        for d in &raw.deduction {
            let Some(m) = Measure::parse(d.measure.get_ref()) else {
                p.at(d.measure.span().start, unknown(d.measure.get_ref()));
                continue;
            };
            if m.kind() == Kind::Rate {
                p.at(
                    d.measure.span().start,
                    format!("{} is a rate; rates score through [[weight]]", m.code()),
                );
                continue;
            }
            if !d.points.get_ref().is_finite() || *d.points.get_ref() < 0.0 {
                p.at(d.points.span().start, "points must be a number ≥ 0");
                continue;
            }
            let max = match &d.max {
                Some(x) if !x.get_ref().is_finite() || *x.get_ref() < 0.0 => {
                    p.at(x.span().start, "max must be a number ≥ 0");
                    continue;
                }
                Some(x) => *x.get_ref(),
                None => 100.0,
            };
            deductions.push(Deduction {
                measure: m,
                points: *d.points.get_ref(),
                max,
                above: d.above.unwrap_or(0.0),
            });
        }
        let mut classes: Vec<Class> = Vec::new();
        for c in &raw.class {
            if classes.iter().any(|x| &x.code == c.code.get_ref()) {
                p.at(
                    c.code.span().start,
                    format!("class {:?} is defined twice", c.code.get_ref()),
                );
            }
            for l in &c.lines {
                if !lines.contains(&l.get_ref().as_str()) {
                    p.at(
                        l.span().start,
                        format!("unknown department line {:?}", l.get_ref()),
                    );
                } else if let Some(o) = classes.iter().find(|x| x.lines.contains(l.get_ref())) {
                    p.at(
                        l.span().start,
                        format!("line {:?} is already in class {:?}", l.get_ref(), o.code),
                    );
                }
            }
            classes.push(Class {
                code: c.code.get_ref().clone(),
                name_zh: c.name_zh.clone(),
                name_en: c
                    .name_en
                    .clone()
                    .unwrap_or_else(|| c.code.get_ref().clone()),
                lines: c.lines.iter().map(|l| l.get_ref().clone()).collect(),
            });
        }
        if raw.weight.is_empty() {
            p.at(0, "at least one [[weight]] is needed");
        }
        if !p.problems.is_empty() {
            return Err(ScoringError(p.problems));
        }
        Ok(Scheme {
            name: raw.name.unwrap_or_else(|| "考核".into()),
            min_received,
            red_top: red_top as usize,
            red_min,
            black_bottom: black_bottom as usize,
            black_max,
            weights,
            deductions,
            classes,
        })
    }

    /// The class of a department by its line ("other" when no class names it).
    pub fn class_of_line(&self, line: &str) -> &str {
        self.classes
            .iter()
            .find(|c| c.lines.iter().any(|l| l == line))
            .map_or("other", |c| c.code.as_str())
    }

    /// A unit's score, line by line.
    pub fn score(&self, f: &Figures) -> Score {
        let mut lines = Vec::new();
        let (mut got, mut total) = (0.0, 0.0);
        for w in &self.weights {
            let v = f.get(w.measure);
            let counted = v.samples >= w.min_samples && v.value.is_some();
            let x = v.value.map(|r| {
                if w.measure.higher_is_better() {
                    r
                } else {
                    1.0 - r
                }
            });
            if counted {
                got += w.weight * x.unwrap_or(0.0);
                total += w.weight;
            }
            lines.push(Line {
                measure: w.measure,
                kind: "weight",
                value: v.value,
                numerator: v.numerator,
                samples: v.samples,
                factor: w.weight,
                points: 0.0,
                counted,
                note: if counted {
                    String::new()
                } else {
                    format!("样本不足 {} < {}，不计", v.samples, w.min_samples)
                },
            });
        }
        for l in lines.iter_mut().filter(|l| l.counted) {
            let x = l.value.map(|r| {
                if l.measure.higher_is_better() {
                    r
                } else {
                    1.0 - r
                }
            });
            l.points = round2(100.0 * l.factor * x.unwrap_or(0.0) / total);
        }
        let mut score = (total > 0.0).then(|| 100.0 * got / total);
        for d in &self.deductions {
            let v = f.get(d.measure);
            let x = v.value.unwrap_or(0.0);
            let points = (d.points * (x - d.above).max(0.0)).min(d.max);
            if let Some(s) = score.as_mut() {
                *s -= points;
            }
            lines.push(Line {
                measure: d.measure,
                kind: "deduction",
                value: v.value,
                numerator: v.numerator,
                samples: v.samples,
                factor: d.points,
                points: -round2(points),
                counted: true,
                note: if d.above > 0.0 {
                    format!(
                        "超过 {} 的部分每单位扣 {} 分，最多 {} 分",
                        d.above, d.points, d.max
                    )
                } else {
                    format!("每单位扣 {} 分，最多 {} 分", d.points, d.max)
                },
            });
        }
        let received = f.get(Measure::Received).numerator as u64;
        let unranked = if received < self.min_received {
            Some(format!(
                "受理 {received} 件，少于 {} 件，不参与排名",
                self.min_received
            ))
        } else if score.is_none() {
            Some("没有达到最少样本数的计分指标，不参与排名".to_string())
        } else {
            None
        };
        Score {
            score: score.map(round2),
            lines,
            unranked,
        }
    }

    /// Ranks units within their classes and marks the red and black lists. `units` are
    /// (unit, class, score); a unit without a score or marked unranked is listed last.
    pub fn rank(&self, units: &[(String, String, &Score)]) -> Vec<Ranked> {
        let mut by_class: BTreeMap<&str, Vec<(&String, &Score)>> = BTreeMap::new();
        for (u, c, s) in units {
            by_class.entry(c.as_str()).or_default().push((u, *s));
        }
        let mut out = Vec::new();
        for (class, mut v) in by_class {
            v.sort_by(|a, b| {
                let key = |s: &Score| if s.unranked.is_some() { None } else { s.score };
                match (key(a.1), key(b.1)) {
                    (Some(x), Some(y)) => y.total_cmp(&x).then_with(|| a.0.cmp(b.0)),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => a.0.cmp(b.0),
                }
            });
            let ranked: Vec<_> = v
                .iter()
                .filter(|(_, s)| s.unranked.is_none() && s.score.is_some())
                .collect();
            let n = ranked.len();
            for (i, (u, s)) in v.iter().enumerate() {
                let is_ranked = s.unranked.is_none() && s.score.is_some();
                let score = s.score.unwrap_or(0.0);
                let list = if !is_ranked {
                    ""
                } else if i < self.red_top && score >= self.red_min {
                    "red"
                } else if i + self.black_bottom >= n && score <= self.black_max && n > self.red_top
                {
                    "black"
                } else {
                    ""
                };
                out.push(Ranked {
                    unit: (*u).clone(),
                    class: class.to_string(),
                    score: s.score,
                    rank: is_ranked.then_some(i + 1),
                    list,
                });
            }
        }
        out
    }
}

fn unknown(code: &str) -> String {
    format!(
        "unknown measure {code:?} (known: {})",
        Measure::ALL
            .iter()
            .map(|m| m.code())
            .collect::<Vec<_>>()
            .join(", ")
    )
}
