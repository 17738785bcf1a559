//! The district's subsidy rules file (`data/xuhui/meals/subsidies.txt`): one rule a line,
//! fields separated by spaces, `#` starts a comment.
//!
//! ```text
//! age    60-69  lunch  200  district        # 60–69 岁午餐每餐补 2 元
//! age    80+    lunch  500  district
//! status dibao  lunch  500  civil_affairs   # 低保老人另补
//! min_self_pay  lunch  200                  # 老人每餐至少自付
//! ```
//!
//! Amounts are whole fen. Age bands may not overlap for one meal; every problem is named
//! with its line.

use super::ledger::Fen;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A meal of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Meal {
    Breakfast,
    Lunch,
}

impl Meal {
    pub const ALL: [Meal; 2] = [Meal::Breakfast, Meal::Lunch];
    pub fn as_str(self) -> &'static str {
        match self {
            Meal::Breakfast => "breakfast",
            Meal::Lunch => "lunch",
        }
    }
    pub fn parse(s: &str) -> Option<Meal> {
        Meal::ALL.into_iter().find(|m| m.as_str() == s)
    }
    pub fn zh(self) -> &'static str {
        match self {
            Meal::Breakfast => "早餐",
            Meal::Lunch => "午餐",
        }
    }
}

/// A subsidy by age band: ages `min..=max` (`max` = `None`: and older).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Band {
    pub min: u32,
    pub max: Option<u32>,
    pub meal: Meal,
    pub fen: Fen,
    pub source: String,
    pub line: usize,
}

impl Band {
    pub fn contains(&self, age: u32) -> bool {
        age >= self.min && self.max.is_none_or(|m| age <= m)
    }
    pub fn label(&self) -> String {
        match self.max {
            Some(m) => format!("{}-{}", self.min, m),
            None => format!("{}+", self.min),
        }
    }
}

/// A subsidy for a status (低保 `dibao`, 特困 `tekun`, …), added to the age band's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusRate {
    pub status: String,
    pub meal: Meal,
    pub fen: Fen,
    pub source: String,
}

/// The rules in force.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SubsidyRules {
    pub bands: Vec<Band>,
    pub statuses: Vec<StatusRate>,
    /// The least an elder pays for a meal, per meal (0 when not given).
    pub min_self_pay: BTreeMap<Meal, Fen>,
}

/// A problem of the rules file, with its line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The youngest age the service subsidises.
pub const MIN_AGE: u32 = 60;
/// Older than this is not a plausible age.
pub const MAX_AGE: u32 = 120;

fn amount(s: &str) -> Result<Fen, String> {
    if s.contains('.') {
        return Err(format!(
            "amount `{s}` must be whole fen (分) without a decimal point, e.g. 350 for 3.50 yuan"
        ));
    }
    match s.parse::<Fen>() {
        Ok(v) if v < 0 => Err(format!("amount `{s}` is negative")),
        Ok(v) if v > 100_000 => Err(format!("amount `{s}` fen is over 1,000 yuan a meal")),
        Ok(v) => Ok(v),
        Err(_) => Err(format!("amount `{s}` is not a whole number of fen")),
    }
}

fn band(s: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("age band `{s}` must look like 60-69 or 80+");
    let (min, max) = if let Some(m) = s.strip_suffix('+') {
        (m.parse::<u32>().map_err(|_| bad())?, None)
    } else {
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let a = a.parse::<u32>().map_err(|_| bad())?;
        let b = b.parse::<u32>().map_err(|_| bad())?;
        if b < a {
            return Err(format!("age band `{s}` ends before it starts"));
        }
        (a, Some(b))
    };
    if !(MIN_AGE..=MAX_AGE).contains(&min) || max.is_some_and(|m| m > MAX_AGE) {
        return Err(format!(
            "age band `{s}` must lie within {MIN_AGE}–{MAX_AGE} (the service is for people of {MIN_AGE} and over)"
        ));
    }
    Ok((min, max))
}

fn meal(s: &str) -> Result<Meal, String> {
    Meal::parse(s).ok_or_else(|| format!("unknown meal `{s}` (breakfast, lunch)"))
}

fn word(s: &str, what: &str) -> Result<String, String> {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{what} `{s}` must be lower-case letters, digits or _"
        ))
    }
}

/// Parses the rules file; every problem is named with its line.
pub fn parse_rules(text: &str) -> Result<SubsidyRules, Vec<RuleProblem>> {
    let mut rules = SubsidyRules::default();
    let mut problems = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let f: Vec<&str> = content.split_whitespace().collect();
        let r: Result<(), String> = (|| {
            match f[0] {
                "age" => {
                    if f.len() != 5 {
                        return Err(format!(
                            "`age` takes 4 fields: band meal fen source (found {})",
                            f.len() - 1
                        ));
                    }
                    let (min, max) = band(f[1])?;
                    let m = meal(f[2])?;
                    let fen = amount(f[3])?;
                    let source = word(f[4], "source")?;
                    let new = Band {
                        min,
                        max,
                        meal: m,
                        fen,
                        source,
                        line,
                    };
                    if let Some(o) = rules.bands.iter().find(|b| {
                        b.meal == m
                            && b.min <= new.max.unwrap_or(u32::MAX)
                            && new.min <= b.max.unwrap_or(u32::MAX)
                    }) {
                        return Err(format!(
                            "age band {} overlaps {} of line {} for {}",
                            new.label(),
                            o.label(),
                            o.line,
                            m.as_str()
                        ));
                    }
                    rules.bands.push(new);
                }
                "status" => {
                    if f.len() != 5 {
                        return Err(format!(
                            "`status` takes 4 fields: status meal fen source (found {})",
                            f.len() - 1
                        ));
                    }
                    let status = word(f[1], "status")?;
                    let m = meal(f[2])?;
                    let fen = amount(f[3])?;
                    let source = word(f[4], "source")?;
                    if rules
                        .statuses
                        .iter()
                        .any(|s| s.status == status && s.meal == m)
                    {
                        return Err(format!("status {status} for {} is given twice", m.as_str()));
                    }
                    rules.statuses.push(StatusRate {
                        status,
                        meal: m,
                        fen,
                        source,
                    });
                }
                "min_self_pay" => {
                    if f.len() != 3 {
                        return Err(format!(
                            "`min_self_pay` takes 2 fields: meal fen (found {})",
                            f.len() - 1
                        ));
                    }
                    let m = meal(f[1])?;
                    let fen = amount(f[2])?;
                    if rules.min_self_pay.insert(m, fen).is_some() {
                        return Err(format!("min_self_pay for {} is given twice", m.as_str()));
                    }
                }
                other => {
                    return Err(format!(
                        "unknown rule `{other}` (age, status, min_self_pay)"
                    ))
                }
            }
            Ok(())
        })();
        if let Err(message) = r {
            problems.push(RuleProblem { line, message });
        }
    }
    if problems.is_empty() && rules.bands.is_empty() {
        problems.push(RuleProblem {
            line: text.lines().count().max(1),
            message: "no `age` rule: at least one age band is needed".into(),
        });
    }
    if problems.is_empty() {
        Ok(rules)
    } else {
        Err(problems)
    }
}

impl SubsidyRules {
    /// Is `status` one the rules know?
    pub fn knows_status(&self, status: &str) -> bool {
        self.statuses.iter().any(|s| s.status == status)
    }

    /// The subsidy for one meal of an elder of `age` with `statuses`, priced `price`,
    /// split by source (age band first, then statuses in file order), capped so the
    /// elder pays at least the meal's `min_self_pay` (and never below zero).
    pub fn subsidy(
        &self,
        age: u32,
        statuses: &[String],
        m: Meal,
        price: Fen,
    ) -> Vec<(String, Fen)> {
        let mut parts: Vec<(String, Fen)> = Vec::new();
        let mut add = |source: &str, fen: Fen| {
            if fen <= 0 {
                return;
            }
            match parts.iter_mut().find(|(s, _)| s == source) {
                Some(p) => p.1 += fen,
                None => parts.push((source.to_string(), fen)),
            }
        };
        if let Some(b) = self.bands.iter().find(|b| b.meal == m && b.contains(age)) {
            add(&b.source, b.fen);
        }
        for s in &self.statuses {
            if s.meal == m && statuses.contains(&s.status) {
                add(&s.source, s.fen);
            }
        }
        let room = (price - self.min_self_pay.get(&m).copied().unwrap_or(0)).max(0);
        let mut left = room;
        let mut out = Vec::new();
        for (source, fen) in parts {
            let take = fen.min(left);
            left -= take;
            if take > 0 {
                out.push((source, take));
            }
        }
        out
    }
}
