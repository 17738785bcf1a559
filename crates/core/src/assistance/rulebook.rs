//! The policy rulebook (`data/xuhui/assistance/policies.toml`): parameters (amounts in
//! yuan), the policies — each a list of conditions that must all hold (`when`) and
//! conditions any of which rules the household out (`unless`, plus "already receives the
//! benefit") — and the hardship score: points per dimension when a condition holds, and
//! the totals from which a household's hardship is high or medium. Every problem is named
//! by line, a condition's also by column.

use super::expr::{compile, Node};
use super::sources::{Declarations, FieldType, Level};
use super::{line_of, Problem};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// The six hardship dimensions.
pub const DIMENSIONS: [&str; 6] = [
    "material",
    "health",
    "education",
    "employment",
    "social_support",
    "children",
];

/// A compiled condition with its text and line.
#[derive(Debug, Clone, PartialEq)]
pub struct Cond {
    pub text: String,
    pub line: usize,
    pub node: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub dimension: usize,
    /// The benefit code (of the rulebook's benefits field) a household already receiving
    /// it is not a candidate for.
    pub benefit: Option<String>,
    pub when: Vec<Cond>,
    /// Any of these holding rules the household out (the benefit's check first).
    pub unless: Vec<Cond>,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScoreItem {
    pub dimension: usize,
    pub points: u8,
    pub label: String,
    pub cond: Cond,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rulebook {
    pub params: BTreeMap<String, f64>,
    pub policies: Vec<Policy>,
    pub score: Vec<ScoreItem>,
    /// Total points from which a household's hardship is high / medium.
    pub high: u32,
    pub medium: u32,
}

impl Rulebook {
    pub fn policy(&self, code: &str) -> Option<usize> {
        self.policies.iter().position(|p| p.code == code)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBook {
    benefits: Spanned<String>,
    #[serde(default)]
    params: BTreeMap<String, f64>,
    #[serde(default)]
    policy: Vec<Spanned<RawPolicy>>,
    #[serde(default)]
    score: Vec<Spanned<RawScore>>,
    levels: RawLevels,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    code: String,
    name: String,
    #[serde(default)]
    name_en: String,
    dimension: String,
    benefit: Option<String>,
    when: Vec<Spanned<String>>,
    #[serde(default)]
    unless: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScore {
    dimension: String,
    points: u8,
    #[serde(default)]
    label: String,
    when: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLevels {
    high: u32,
    medium: u32,
}

/// Reads and checks a rulebook against the declared sources.
pub fn parse_rulebook(text: &str, decl: &Declarations) -> Result<Rulebook, Vec<Problem>> {
    let raw: RawBook = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let benefits_line = line_of(text, raw.benefits.span().start);
    let benefits = raw.benefits.get_ref().clone();
    match decl.field(&benefits) {
        Some(f)
            if matches!(decl.fields[f].ty, FieldType::Set(_))
                && decl.fields[f].level == Level::Household => {}
        _ => problems.push(Problem {
            line: benefits_line,
            message: format!(
                "benefits = {benefits:?} must name a household set field of the sources"
            ),
        }),
    }
    let params = raw.params.clone();
    let cond = |s: &Spanned<String>, whose: &str, problems: &mut Vec<Problem>| -> Option<Cond> {
        let line = line_of(text, s.span().start);
        match compile(s.get_ref(), decl, &params) {
            Ok(node) => Some(Cond {
                text: s.get_ref().clone(),
                line,
                node,
            }),
            Err(e) => {
                problems.push(Problem {
                    line,
                    message: format!("{whose}: {e}"),
                });
                None
            }
        }
    };
    let dim = |d: &str| DIMENSIONS.iter().position(|x| *x == d);
    let mut policies = Vec::new();
    for p in &raw.policy {
        let line = line_of(text, p.span().start);
        let r = p.get_ref();
        let whose = format!("policy {:?}", r.code);
        if policies.iter().any(|o: &Policy| o.code == r.code) {
            problems.push(Problem {
                line,
                message: format!("{whose} is declared twice"),
            });
        }
        let dimension = dim(&r.dimension).unwrap_or_else(|| {
            problems.push(Problem {
                line,
                message: format!(
                    "{whose}: dimension {:?} is not one of {}",
                    r.dimension,
                    DIMENSIONS.join(", ")
                ),
            });
            0
        });
        if r.when.is_empty() {
            problems.push(Problem {
                line,
                message: format!("{whose} has no conditions"),
            });
        }
        let when: Vec<Cond> = r
            .when
            .iter()
            .filter_map(|s| cond(s, &whose, &mut problems))
            .collect();
        let mut unless = Vec::new();
        if let Some(b) = &r.benefit {
            let s = Spanned::new(p.span(), format!("{benefits}(\"{b}\")"));
            match compile(s.get_ref(), decl, &params) {
                Ok(node) => unless.push(Cond {
                    text: s.get_ref().clone(),
                    line,
                    node,
                }),
                Err(_) => problems.push(Problem {
                    line,
                    message: format!("{whose}: benefit {b:?} is not a code of {benefits:?}"),
                }),
            }
        }
        unless.extend(
            r.unless
                .iter()
                .filter_map(|s| cond(s, &whose, &mut problems)),
        );
        policies.push(Policy {
            code: r.code.clone(),
            name: r.name.clone(),
            name_en: r.name_en.clone(),
            dimension,
            benefit: r.benefit.clone(),
            when,
            unless,
            line,
        });
    }
    if policies.len() > 32 {
        problems.push(Problem {
            line: 1,
            message: "at most 32 policies".into(),
        });
    }
    let mut score = Vec::new();
    for s in &raw.score {
        let line = line_of(text, s.span().start);
        let r = s.get_ref();
        let Some(dimension) = dim(&r.dimension) else {
            problems.push(Problem {
                line,
                message: format!(
                    "score: dimension {:?} is not one of {}",
                    r.dimension,
                    DIMENSIONS.join(", ")
                ),
            });
            continue;
        };
        if let Some(c) = cond(&r.when, "score", &mut problems) {
            score.push(ScoreItem {
                dimension,
                points: r.points,
                label: r.label.clone(),
                cond: c,
            });
        }
    }
    if raw.levels.medium == 0 || raw.levels.high <= raw.levels.medium {
        problems.push(Problem {
            line: 1,
            message: "levels: need 0 < medium < high".into(),
        });
    }
    if problems.is_empty() {
        Ok(Rulebook {
            params,
            policies,
            score,
            high: raw.levels.high,
            medium: raw.levels.medium,
        })
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}
