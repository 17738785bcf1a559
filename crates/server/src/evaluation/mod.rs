//! The evaluation room (考核评价, issue 17): the measures of `cityos_core::evaluation`
//! over a period's case logs, scored by the district's scheme (`data/xuhui/scoring.toml`),
//! ranked per class with the red and black lists, each score explained down to case
//! numbers; exports (XLSX, CSV, print-ready HTML) and the saved monthly reports.
//!
//! Who sees what: the district officer, the analyst and the administrator every unit; a
//! sub-district officer the units inside their scope, figured over the cases inside it
//! (the district as a whole is outside); a handler their own department only; inspectors
//! and citizens nothing (403). A unit outside the caller's reach answers like a unit that
//! does not exist (404). Exports and reports carry case numbers, categories, regions and
//! departments only — never a reporter's text or contact.

pub mod api;
pub mod export;
pub mod monthly;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use cityos_core::evaluation::measures::{facts_of, figures, mark_repeats, REPEAT_WINDOW};
use cityos_core::evaluation::scoring::{Ranked, Score};
use cityos_core::evaluation::{CaseFacts, Dim, Figures, Period, PeriodError, Scheme};
use cityos_core::time::Millis;
use cityos_core::Role;
use cityos_engine::config::Config;
use cityos_engine::{EvaluationStore, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// How many periods' facts are kept (keyed by period, the last event number and the
/// minute of `now`, so a cached answer is never stale).
const CACHE_SLOTS: usize = 8;

type CacheKey = (Millis, Millis, i64, Millis);

/// The room's state: the scoring scheme and the last periods' facts.
pub struct Evaluation {
    /// The scheme, or why the embedded file was refused.
    pub scheme: Result<Scheme, String>,
    cache: Mutex<Vec<(CacheKey, Arc<Vec<CaseFacts>>)>>,
}

impl Evaluation {
    /// With the embedded scoring file, checked against the taxonomy's lines.
    pub fn new(cfg: &Config) -> Evaluation {
        Evaluation::with_text(cfg, cityos_engine::demo::SCORING_TOML)
    }

    pub fn with_text(cfg: &Config, text: &str) -> Evaluation {
        Evaluation {
            scheme: parse_scheme(cfg, text).map_err(|e| e.to_string()),
            cache: Mutex::new(Vec::new()),
        }
    }

    pub fn scheme(&self) -> Result<&Scheme, ApiError> {
        self.scheme.as_ref().map_err(ApiError::internal)
    }
}

/// Reads a scoring file against the configuration's department lines.
pub fn parse_scheme(
    cfg: &Config,
    text: &str,
) -> Result<Scheme, cityos_core::evaluation::ScoringError> {
    let mut lines: Vec<&str> = cfg
        .taxonomy
        .departments
        .iter()
        .map(|d| d.line.as_str())
        .collect();
    lines.sort_unstable();
    lines.dedup();
    Scheme::parse(text, &lines)
}

/// A period from the query, or the named problem.
pub fn period(text: &str, now: Millis) -> Result<Period, ApiError> {
    Period::parse(text, now).map_err(|e| {
        let p = match e {
            PeriodError::Malformed(_) => Problem::InvalidPeriod,
            PeriodError::Reversed(_) => Problem::PeriodReversed,
            PeriodError::Future(_) => Problem::PeriodInFuture,
        };
        ApiError::new(p, e.to_string())
    })
}

/// What a caller may see.
#[derive(Debug, Clone, PartialEq)]
pub enum Reach {
    All,
    /// The cases and units inside a region (a sub-district officer's scope).
    Region(String),
    /// One department's figures.
    Department(String),
}

pub fn reach(p: &Principal) -> Result<Reach, ApiError> {
    match p.role {
        Role::DistrictOfficer | Role::Analyst | Role::Admin => Ok(Reach::All),
        Role::SubdistrictOfficer => p
            .scope
            .clone()
            .map(Reach::Region)
            .ok_or_else(|| ApiError::forbidden("a sub-district officer without a scope sees nothing")),
        Role::Handler => p
            .department
            .clone()
            .map(Reach::Department)
            .ok_or_else(|| ApiError::forbidden("a handler without a department sees nothing")),
        r => Err(ApiError::forbidden(format!(
            "role {r} does not see the evaluation (officers, analysts, administrators and departments do)"
        ))),
    }
}

/// The facts a reach may count: a region's cases, or all.
pub fn visible(facts: &[CaseFacts], reach: &Reach) -> Vec<CaseFacts> {
    match reach {
        Reach::Region(code) => facts
            .iter()
            .filter(|f| {
                f.subdistrict.as_deref() == Some(code) || f.community.as_deref() == Some(code)
            })
            .cloned()
            .collect(),
        _ => facts.to_vec(),
    }
}

/// A unit: its dimension and code, e.g. `department:dist-roads`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Unit {
    pub dim: Dim,
    pub code: String,
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.dim.as_str(), self.code)
    }
}

/// Parses `dim:code` (400 when malformed) and checks that the unit exists and is within
/// reach (404 otherwise, alike).
pub fn unit(cfg: &Config, text: &str, reach: &Reach) -> Result<Unit, ApiError> {
    let (d, code) = text.split_once(':').ok_or_else(|| {
        ApiError::new(
            Problem::InvalidParameter,
            format!("unit {text:?} is not dimension:code, e.g. department:dist-roads or subdistrict:310104003"),
        )
    })?;
    let dim = dimension(d)?;
    let u = Unit {
        dim,
        code: code.to_string(),
    };
    if !exists(cfg, &u) || !within(cfg, &u, reach) {
        return Err(ApiError::not_found(&format!("unit {text}")));
    }
    Ok(u)
}

pub fn dimension(d: &str) -> Result<Dim, ApiError> {
    Dim::parse(d).ok_or_else(|| {
        ApiError::new(
            Problem::InvalidParameter,
            format!("dimension {d:?} is not one of district, department, subdistrict, community, category, domain"),
        )
    })
}

fn exists(cfg: &Config, u: &Unit) -> bool {
    let t = &cfg.territory;
    let level = |l: cityos_core::territory::Level| {
        t.by_code(&u.code).is_some_and(|id| t.region(id).level == l)
    };
    match u.dim {
        Dim::District => t.region(t.root()).code == u.code,
        Dim::Department => cfg.taxonomy.department(&u.code).is_some(),
        Dim::Subdistrict => level(cityos_core::territory::Level::Subdistrict),
        Dim::Community => level(cityos_core::territory::Level::Community),
        Dim::Category => cfg.taxonomy.category(&u.code).is_some(),
        Dim::Domain => cityos_core::Domain::parse(&u.code).is_some(),
    }
}

/// Whether a unit is within reach.
pub fn within(cfg: &Config, u: &Unit, reach: &Reach) -> bool {
    match reach {
        Reach::All => true,
        Reach::Department(d) => u.dim == Dim::Department && &u.code == d,
        Reach::Region(scope) => match u.dim {
            Dim::District => false,
            Dim::Subdistrict | Dim::Community => {
                let t = &cfg.territory;
                match (t.by_code(&u.code), t.by_code(scope)) {
                    (Some(a), Some(b)) => t.is_within(a, b),
                    _ => false,
                }
            }
            // Departments, categories and domains: figured over the scope's cases.
            _ => true,
        },
    }
}

/// A dimension's listing is within reach.
pub fn dimension_within(dim: Dim, reach: &Reach) -> bool {
    match reach {
        Reach::All => true,
        Reach::Department(_) => dim == Dim::Department,
        Reach::Region(_) => dim != Dim::District,
    }
}

/// The facts of a period's cohort, at `now`: from the cache or the store's logs.
pub async fn facts(st: &AppState, p: &Period) -> Result<Arc<Vec<CaseFacts>>, ApiError> {
    let now = st.now();
    let (from, to) = (p.from(), p.to().min(now + 1));
    let last = st.0.reads.run(|s| s.max_event()).await??;
    let key = (from, to, last, now / 60_000);
    if let Some(hit) =
        st.0.evaluation
            .cache
            .lock()
            .expect("cache lock")
            .iter()
            .find(|(k, _)| *k == key)
    {
        return Ok(hit.1.clone());
    }
    let cal = st.0.cfg.calendar.clone();
    let f =
        st.0.reads
            .run(move |s| load(s, &cal, from, to, now))
            .await??;
    let f = Arc::new(f);
    let mut c = st.0.evaluation.cache.lock().expect("cache lock");
    c.retain(|(k, _)| *k != key);
    if c.len() >= CACHE_SLOTS {
        c.remove(0);
    }
    c.push((key, f.clone()));
    Ok(f)
}

/// The facts of the cases received in `[from, to)`, in creation order; marks repeats.
/// Each case's fold is kept by the store beside the case (`case_facts`, written in the
/// batch transaction), so this reads one small row per case and finishes it at `now`;
/// a case without a row (stored before the folds were kept) or with one that does not
/// parse is folded from its log instead.
pub fn load<S: EvaluationStore + ?Sized>(
    s: &mut S,
    cal: &cityos_core::WorkCalendar,
    from: Millis,
    to: Millis,
    now: Millis,
) -> Result<Vec<CaseFacts>, StoreError> {
    use cityos_core::evaluation::CaseFold;
    // Reading and parsing overlap: the rows go in batches to a second thread.
    type Rows = Vec<(i64, Option<String>)>;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Rows>(16);
    let (mut slots, read) = std::thread::scope(|scope| {
        let parser = scope.spawn(move || {
            let mut out: Vec<(i64, Option<CaseFacts>)> = Vec::new();
            for batch in rx {
                for (id, text) in batch {
                    let f = text
                        .and_then(|t| serde_json::from_str::<CaseFold>(&t).ok())
                        .map(|f| f.facts(cal, now));
                    out.push((id, f));
                }
            }
            out
        });
        let mut batch = Vec::with_capacity(1024);
        let read = s.cohort_folds(from, to, &mut |id, text| {
            batch.push((id, text));
            if batch.len() >= 1024 {
                let _ = tx.send(std::mem::take(&mut batch));
            }
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        (parser.join().expect("parsing does not panic"), read)
    });
    read?;
    let missing: std::collections::HashMap<i64, usize> = slots
        .iter()
        .enumerate()
        .filter(|(_, (_, f))| f.is_none())
        .map(|(i, (id, _))| (*id, i))
        .collect();
    if !missing.is_empty() {
        s.cohort_logs(from, to, &mut |log| {
            if let Some(i) = log.first().and_then(|e| missing.get(&e.case_id)) {
                slots[*i].1 = facts_of(&log, cal, now);
            }
        })?;
    }
    let mut out: Vec<CaseFacts> = slots.into_iter().filter_map(|(_, f)| f).collect();
    let earlier = s.citizen_cases(from - REPEAT_WINDOW, to)?;
    mark_repeats(&mut out, &earlier);
    Ok(out)
}

/// A unit's display name (Chinese).
pub fn name_of(cfg: &Config, dim: Dim, code: &str) -> String {
    let t = &cfg.territory;
    match dim {
        Dim::Department => cfg
            .taxonomy
            .department(code)
            .map_or(code.to_string(), |d| d.name_zh.clone()),
        Dim::District | Dim::Subdistrict | Dim::Community => t
            .by_code(code)
            .map_or(code.to_string(), |id| t.region(id).name_zh.clone()),
        Dim::Category => cfg
            .taxonomy
            .category(code)
            .map_or(code.to_string(), |c| c.name_zh.clone()),
        Dim::Domain => {
            cityos_core::Domain::parse(code).map_or(code.to_string(), |d| d.name_zh().to_string())
        }
    }
}

/// The class a unit is ranked in: departments by their line, everything else "all".
pub fn class_of(cfg: &Config, scheme: &Scheme, dim: Dim, code: &str) -> String {
    match (dim, cfg.taxonomy.department(code)) {
        (Dim::Department, Some(d)) => scheme.class_of_line(&d.line).to_string(),
        _ => "all".to_string(),
    }
}

/// A dimension's table: every unit's figures and score, ranked.
pub struct Table {
    pub dim: Dim,
    pub rows: Vec<Row>,
}

pub struct Row {
    pub code: String,
    pub name: String,
    pub figures: Figures,
    pub score: Score,
    pub ranked: Ranked,
}

/// Ranks every unit of a dimension among the visible facts (a department reach keeps
/// its own row only, ranked among all departments: its place is its place).
pub fn table(cfg: &Config, scheme: &Scheme, facts: &[CaseFacts], dim: Dim, reach: &Reach) -> Table {
    let district = cfg.territory.region(cfg.territory.root()).code.clone();
    let figs: BTreeMap<String, Figures> = figures(facts, dim, &district);
    let scores: Vec<(String, Score)> = figs
        .iter()
        .map(|(u, f)| (u.clone(), scheme.score(f)))
        .collect();
    let units: Vec<(String, String, &Score)> = scores
        .iter()
        .map(|(u, s)| (u.clone(), class_of(cfg, scheme, dim, u), s))
        .collect();
    let ranked = scheme.rank(&units);
    let mut by_unit: BTreeMap<String, (Figures, Score)> = BTreeMap::new();
    for ((u, s), (_, f)) in scores.into_iter().zip(figs) {
        by_unit.insert(u, (f, s));
    }
    let mut rows = Vec::new();
    for r in ranked {
        if let Reach::Department(d) = reach {
            if &r.unit != d {
                continue;
            }
        }
        let Some((f, s)) = by_unit.remove(&r.unit) else {
            continue;
        };
        rows.push(Row {
            name: name_of(cfg, dim, &r.unit),
            code: r.unit.clone(),
            figures: f,
            score: s,
            ranked: r,
        });
    }
    Table { dim, rows }
}
