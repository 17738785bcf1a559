//! City-operation vital signs (城运体征): the indicator registry and China's four warning
//! levels — blue (IV), yellow (III), orange (II), red (I) — with a direction (is a high
//! value bad, or a low one) and hysteresis (a level is left only when the value is back
//! past its threshold by a margin, so a value hovering at a line does not flap).
//!
//! Pure: values come in, levels come out; where values come from (readings, cases,
//! datasets, external feeds) is the indicator's `source`, evaluated by the service.

use crate::taxonomy::Domain;
use serde::{Deserialize, Serialize};

/// Warning levels, least to most severe.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum WarnLevel {
    #[default]
    Normal,
    /// IV 蓝色
    Blue,
    /// III 黄色
    Yellow,
    /// II 橙色
    Orange,
    /// I 红色
    Red,
}

impl WarnLevel {
    pub const ALL: [WarnLevel; 5] = [
        WarnLevel::Normal,
        WarnLevel::Blue,
        WarnLevel::Yellow,
        WarnLevel::Orange,
        WarnLevel::Red,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            WarnLevel::Normal => "normal",
            WarnLevel::Blue => "blue",
            WarnLevel::Yellow => "yellow",
            WarnLevel::Orange => "orange",
            WarnLevel::Red => "red",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            WarnLevel::Normal => "正常",
            WarnLevel::Blue => "蓝色(IV级)",
            WarnLevel::Yellow => "黄色(III级)",
            WarnLevel::Orange => "橙色(II级)",
            WarnLevel::Red => "红色(I级)",
        }
    }
}

/// Which way is bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher values are worse (water level, crowding).
    Up,
    /// Lower values are worse (EV chargers free, on-time rate).
    Down,
}

/// The four thresholds, in the order of increasing severity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub direction: Direction,
    /// blue, yellow, orange, red
    pub at: [f64; 4],
    /// How far back past a threshold a value must go before its level is left.
    pub hysteresis: f64,
}

impl Thresholds {
    /// Checks the order: each line at least as severe as the one before, in the direction.
    pub fn new(direction: Direction, at: [f64; 4], hysteresis: f64) -> Result<Thresholds, String> {
        if at.iter().any(|x| !x.is_finite()) {
            return Err("thresholds must be numbers".into());
        }
        let ordered = at.windows(2).all(|w| match direction {
            Direction::Up => w[0] <= w[1],
            Direction::Down => w[0] >= w[1],
        });
        if !ordered {
            return Err(format!(
                "thresholds blue {}, yellow {}, orange {}, red {} are out of order for direction {}",
                at[0],
                at[1],
                at[2],
                at[3],
                if direction == Direction::Up { "up (each at least the one before)" } else { "down (each at most the one before)" }
            ));
        }
        if !(hysteresis >= 0.0 && hysteresis.is_finite()) {
            return Err("hysteresis must be a number of 0 or more".into());
        }
        Ok(Thresholds {
            direction,
            at,
            hysteresis,
        })
    }

    fn reaches(&self, value: f64, line: f64, margin: f64) -> bool {
        match self.direction {
            Direction::Up => value >= line - margin,
            Direction::Down => value <= line + margin,
        }
    }

    /// The level of a value on its own.
    pub fn level(&self, value: f64) -> WarnLevel {
        let mut l = WarnLevel::Normal;
        for (i, line) in self.at.iter().enumerate() {
            if self.reaches(value, *line, 0.0) {
                l = WarnLevel::ALL[i + 1];
            }
        }
        l
    }

    /// The level given the previous one: rising is immediate; a level is kept until the
    /// value is back past its threshold by the hysteresis.
    pub fn next(&self, prev: WarnLevel, value: f64) -> WarnLevel {
        if !value.is_finite() {
            return prev;
        }
        let plain = self.level(value);
        if plain >= prev {
            return plain;
        }
        // Falling: hold every level whose line is still reached within the margin.
        let mut l = plain;
        for (i, line) in self.at.iter().enumerate() {
            let lvl = WarnLevel::ALL[i + 1];
            if lvl <= prev && self.reaches(value, *line, self.hysteresis) {
                l = l.max(lvl);
            }
        }
        l
    }
}

/// Where an indicator's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// An aggregate over sensor readings of a device kind and metric.
    Readings {
        device_kind: String,
        metric: String,
        func: Func,
        window_ms: i64,
        sliding: bool,
    },
    /// A statistic over cases; `per_100_devices` also names what it counts.
    Cases {
        stat: String,
        rate: Option<CaseRate>,
    },
    /// An aggregate over a dataset's column, computed when the dataset is imported:
    /// `count` counts rows with a value; the others take the column's numbers.
    Dataset {
        dataset: String,
        column: String,
        func: Func,
    },
    /// Pushed through the API.
    External,
}

/// What the `per_100_devices` case statistic counts: cases of these categories created
/// within the window, per 100 devices of the kind in the region (lift faults per 100
/// lifts over 30 days). No value where the region has none of the devices.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseRate {
    pub categories: Vec<String>,
    pub window_ms: i64,
    pub device_kind: String,
}

/// Window functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Func {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    Last,
    /// Per second over the window.
    Rate,
}

/// Case statistics an indicator may show.
pub const CASE_STATS: [&str; 6] = [
    "open_cases",
    "overdue_rate",
    "on_time_rate",
    "reports_per_hour",
    "open_cases_in_domain",
    "per_100_devices",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Indicator {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub domain: Domain,
    pub unit: String,
    pub source: Source,
    pub thresholds: Option<Thresholds>,
    /// Plausible values, lowest and highest (required for every indicator): external
    /// values outside are refused, so one wrong number cannot turn an indicator red.
    pub range: (f64, f64),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    indicator: Vec<RawIndicator>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndicator {
    code: String,
    name_zh: String,
    name_en: String,
    domain: String,
    #[serde(default)]
    unit: String,
    source: String,
    device_kind: Option<String>,
    metric: Option<String>,
    func: Option<Func>,
    window: Option<String>,
    #[serde(default)]
    sliding: bool,
    stat: Option<String>,
    /// Case categories counted by the `per_100_devices` statistic.
    categories: Option<Vec<String>>,
    dataset: Option<String>,
    column: Option<String>,
    direction: Option<Direction>,
    /// [blue, yellow, orange, red]
    levels: Option<[f64; 4]>,
    #[serde(default)]
    hysteresis: f64,
    range: Option<[f64; 2]>,
}

/// Reads the indicator registry (TOML `[[indicator]]` tables); every problem is reported,
/// naming the indicator.
pub fn parse_indicators(text: &str) -> Result<Vec<Indicator>, Vec<String>> {
    let raw: RawFile =
        toml::from_str(text).map_err(|e| vec![format!("indicators do not parse: {e}")])?;
    let mut out: Vec<Indicator> = Vec::new();
    let mut problems = Vec::new();
    for r in raw.indicator {
        let mut bad = |m: String| problems.push(format!("indicator {:?}: {m}", r.code));
        if out.iter().any(|i| i.code == r.code) {
            bad("the code is used twice".into());
            continue;
        }
        let Some(domain) = Domain::parse(&r.domain) else {
            bad(format!(
                "unknown domain {:?} (safety, construction, market, livelihood)",
                r.domain
            ));
            continue;
        };
        let source = match r.source.as_str() {
            "readings" => {
                let window_ms = r.window.as_deref().and_then(crate::sensing::parse_duration);
                match (r.device_kind.clone(), r.metric.clone(), r.func, window_ms) {
                    (Some(device_kind), Some(metric), Some(func), Some(w)) if w > 0 => {
                        Source::Readings {
                            device_kind,
                            metric,
                            func,
                            window_ms: w,
                            sliding: r.sliding,
                        }
                    }
                    _ => {
                        bad("a readings indicator names device_kind, metric, func (count, sum, avg, min, max, last, rate) and a window such as \"1m\"".into());
                        continue;
                    }
                }
            }
            "cases" => match r.stat.clone() {
                Some(s) if s == "per_100_devices" => {
                    let window_ms = r.window.as_deref().and_then(crate::sensing::parse_duration);
                    match (r.categories.clone(), window_ms, r.device_kind.clone()) {
                        (Some(categories), Some(w), Some(device_kind))
                            if w > 0 && !categories.is_empty() && !device_kind.is_empty() =>
                        {
                            Source::Cases {
                                stat: s,
                                rate: Some(CaseRate {
                                    categories,
                                    window_ms: w,
                                    device_kind,
                                }),
                            }
                        }
                        _ => {
                            bad("the per_100_devices statistic names its categories = [...], a window such as \"30d\" and the device_kind counted".into());
                            continue;
                        }
                    }
                }
                Some(s) if CASE_STATS.contains(&s.as_str()) => {
                    if r.categories.is_some() {
                        bad(format!(
                            "categories are counted only by the per_100_devices statistic, not {s}"
                        ));
                        continue;
                    }
                    Source::Cases {
                        stat: s,
                        rate: None,
                    }
                }
                other => {
                    bad(format!(
                        "case statistic {other:?} is not one of {}",
                        CASE_STATS.join(", ")
                    ));
                    continue;
                }
            },
            "dataset" => match (r.dataset.clone(), r.column.clone(), r.func) {
                (Some(dataset), Some(column), Some(func)) if func != Func::Rate => {
                    Source::Dataset {
                        dataset,
                        column,
                        func,
                    }
                }
                _ => {
                    bad("a dataset indicator names its dataset, column and func (count, sum, avg, min, max, last)".into());
                    continue;
                }
            },
            "external" => Source::External,
            other => {
                bad(format!(
                    "unknown source {other:?} (readings, cases, dataset, external)"
                ));
                continue;
            }
        };
        let thresholds = match (r.levels, r.direction) {
            (Some(at), Some(d)) => match Thresholds::new(d, at, r.hysteresis) {
                Ok(t) => Some(t),
                Err(m) => {
                    bad(m);
                    continue;
                }
            },
            (Some(_), None) => {
                bad("levels need a direction: up (high is bad) or down (low is bad)".into());
                continue;
            }
            (None, _) => None,
        };
        let range = match r.range {
            Some([lo, hi]) if lo >= hi || !lo.is_finite() || !hi.is_finite() => {
                bad(format!("range [{lo}, {hi}] is empty"));
                continue;
            }
            Some([lo, hi]) => (lo, hi),
            None => {
                bad("a range = [lowest, highest] of plausible values is required".into());
                continue;
            }
        };
        if let Some(t) = &thresholds {
            if t.at.iter().any(|x| *x < range.0 || *x > range.1) {
                bad(format!(
                    "levels {:?} lie outside the range [{}, {}]",
                    t.at, range.0, range.1
                ));
                continue;
            }
        }
        out.push(Indicator {
            code: r.code,
            name_zh: r.name_zh,
            name_en: r.name_en,
            domain,
            unit: r.unit,
            source,
            thresholds,
            range,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}
