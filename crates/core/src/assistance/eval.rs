//! Evaluation: every household (or only those a batch touched) against every policy and
//! the hardship score; and, for one household and policy, the explanation — the facts each
//! condition read (member, field, value, source, import and its date), the conditions that
//! would rule it out with the facts they looked at, the conflicts between sources among
//! those facts, and the members whose registered and actual communities differ (人户分离).

use super::expr::{age_years, eval, Cx, Read, Tracer};
use super::keyed::short;
use super::pool::{resolve, Cell, Claim, Pool};
use super::rulebook::{Cond, Rulebook, DIMENSIONS};
use super::sources::{Declarations, FieldType, Level};
use crate::time::Date;
use serde::Serialize;

/// A household's hardship from its score.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hardship {
    #[default]
    Low,
    Medium,
    High,
}

/// One household's result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HouseholdResult {
    /// A bit per policy (rulebook order): the household is a candidate (all conditions
    /// hold, nothing rules it out).
    pub candidates: u32,
    /// Points per dimension.
    pub dims: [u8; 6],
    pub hardship: Hardship,
}

impl HouseholdResult {
    pub fn score(&self) -> u32 {
        self.dims.iter().map(|d| u32::from(*d)).sum()
    }
}

/// The results of every household, by household index.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub as_of: Date,
    pub results: Vec<HouseholdResult>,
}

impl Evaluation {
    /// Candidate households of a policy.
    pub fn candidates(&self, policy: usize) -> impl Iterator<Item = u32> + '_ {
        self.results
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.candidates & (1 << policy) != 0)
            .map(|(i, _)| i as u32)
    }
}

fn holds(c: &Cond, cx: &Cx, hh: u32, t: &mut Tracer) -> bool {
    let v = eval(&c.node, cx, hh, u32::MAX, t);
    v != 0.0 && !v.is_nan()
}

fn household(cx: &Cx, book: &Rulebook, hh: u32) -> HouseholdResult {
    let mut r = HouseholdResult::default();
    if cx.pool.members[hh as usize].is_empty() {
        return r;
    }
    let mut t = Tracer::default();
    for (i, p) in book.policies.iter().enumerate() {
        if p.when.iter().all(|c| holds(c, cx, hh, &mut t))
            && !p.unless.iter().any(|c| holds(c, cx, hh, &mut t))
        {
            r.candidates |= 1 << i;
        }
    }
    for s in &book.score {
        if holds(&s.cond, cx, hh, &mut t) {
            let d = &mut r.dims[s.dimension];
            *d = d.saturating_add(s.points);
        }
    }
    let total = r.score();
    r.hardship = if total >= book.high {
        Hardship::High
    } else if total >= book.medium {
        Hardship::Medium
    } else {
        Hardship::Low
    };
    r
}

/// Evaluates every household as of a date.
pub fn evaluate(decl: &Declarations, pool: &Pool, book: &Rulebook, as_of: Date) -> Evaluation {
    let cx = Cx::new(decl, pool, as_of);
    Evaluation {
        as_of,
        results: (0..pool.households() as u32)
            .map(|h| household(&cx, book, h))
            .collect(),
    }
}

/// Re-evaluates only the given households (those an import touched), growing the results
/// for households created since.
pub fn evaluate_some(
    decl: &Declarations,
    pool: &Pool,
    book: &Rulebook,
    ev: &mut Evaluation,
    households: &[u32],
) {
    let cx = Cx::new(decl, pool, ev.as_of);
    if ev.results.len() < pool.households() {
        let from = ev.results.len();
        ev.results
            .resize(pool.households(), HouseholdResult::default());
        for h in from..pool.households() {
            ev.results[h] = household(&cx, book, h as u32);
        }
    }
    for &h in households {
        ev.results[h as usize] = household(&cx, book, h);
    }
}

/// A member as an explanation names them: position in the household, relation and age —
/// never a name or an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberRef {
    pub index: usize,
    pub relation: Option<String>,
    pub age: Option<i32>,
}

/// One fact read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fact {
    pub member: Option<MemberRef>,
    pub field: String,
    pub title: String,
    pub value: String,
    /// Source name ("" when no source holds the fact).
    pub source: String,
    pub source_title: String,
    pub owner: String,
    /// The import's label and date.
    pub import: String,
    pub as_of: String,
}

/// A condition, whether it holds, and the facts it read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Clause {
    pub text: String,
    pub line: usize,
    pub holds: bool,
    pub facts: Vec<Fact>,
}

/// Sources that disagree on a fact: the value kept by precedence and those overruled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Conflict {
    pub member: Option<MemberRef>,
    pub field: String,
    pub kept: Fact,
    pub overruled: Vec<Fact>,
}

/// Why a household is (or is not) a candidate for a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub policy: String,
    pub name: String,
    /// The household's keyed hash, shortened.
    pub household: String,
    pub candidate: bool,
    /// Conditions that must all hold.
    pub when: Vec<Clause>,
    /// Conditions any of which would rule the household out.
    pub rule_out: Vec<Clause>,
    pub conflicts: Vec<Conflict>,
    /// Members whose registered and actual communities differ (人户分离).
    pub separated: Vec<MemberRef>,
    pub score: [u8; 6],
    pub dimensions: [&'static str; 6],
    pub hardship: Hardship,
}

struct Explainer<'a> {
    decl: &'a Declarations,
    pool: &'a Pool,
    cx: Cx<'a>,
    hh: u32,
}

impl Explainer<'_> {
    fn member(&self, person: u32) -> MemberRef {
        let index = self.pool.members[self.hh as usize]
            .iter()
            .position(|m| *m == person)
            .unwrap_or(usize::MAX);
        let relation = self.decl.field("relation").and_then(|f| {
            let c = self.pool.resolve(self.decl, f, person)?;
            Some(self.format(f, c.value))
        });
        let age = self.decl.field("birth_date").and_then(|f| {
            let c = self.pool.resolve(self.decl, f, person)?;
            Some(age_years(c.value, self.cx.as_of_days))
        });
        MemberRef {
            index,
            relation,
            age,
        }
    }

    fn format(&self, field: usize, v: i32) -> String {
        match &self.decl.fields[field].ty {
            FieldType::Int => v.to_string(),
            FieldType::Date => Date::from_days(v as i64).to_string(),
            FieldType::Bool => if v != 0 { "yes" } else { "no" }.into(),
            FieldType::Code(c) => c.get(v as usize).cloned().unwrap_or_default(),
            FieldType::Tag => self.pool.tag(v).to_string(),
            FieldType::Set(c) => {
                let s: Vec<&str> = c
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| v & (1 << i) != 0)
                    .map(|(_, c)| c.as_str())
                    .collect();
                if s.is_empty() {
                    "(none)".into()
                } else {
                    s.join("+")
                }
            }
        }
    }

    fn fact(
        &self,
        field: usize,
        entity: u32,
        value: String,
        source: Option<usize>,
        import: Option<u16>,
    ) -> Fact {
        let fd = &self.decl.fields[field];
        let member = (fd.level == Level::Person).then(|| self.member(entity));
        let src = source.map(|s| &self.decl.sources[s]);
        let imp = import.map(|i| &self.pool.imports[i as usize]);
        Fact {
            member,
            field: fd.name.clone(),
            title: fd.title.clone(),
            value,
            source: src.map_or(String::new(), |s| s.name.clone()),
            source_title: src.map_or(String::new(), |s| s.title.clone()),
            owner: src.map_or(String::new(), |s| s.owner.clone()),
            import: imp.map_or(String::new(), |i| i.label.clone()),
            as_of: imp.map_or(String::new(), |i| i.as_of.to_string()),
        }
    }

    fn claim_fact(&self, field: usize, entity: u32, c: &Claim) -> Fact {
        self.fact(
            field,
            entity,
            self.format(field, c.value),
            Some(c.source as usize),
            Some(c.import),
        )
    }

    /// The fact a read looked at (the latest import of the feeding sources when no source
    /// holds it: "none as of …").
    fn read_fact(&self, r: &Read) -> Option<Fact> {
        if r.field == usize::MAX {
            let n = self.pool.members[r.entity as usize].len();
            let src = self.decl.membership();
            let imp = self.pool.imports.iter().rposition(|i| i.source == src);
            let s = &self.decl.sources[src];
            return Some(Fact {
                member: None,
                field: "members".into(),
                title: "户内人数".into(),
                value: n.to_string(),
                source: s.name.clone(),
                source_title: s.title.clone(),
                owner: s.owner.clone(),
                import: imp.map_or(String::new(), |i| self.pool.imports[i].label.clone()),
                as_of: imp.map_or(String::new(), |i| self.pool.imports[i].as_of.to_string()),
            });
        }
        let fd = &self.decl.fields[r.field];
        if fd.monthly {
            let lo = self.cx.as_of_month - 12;
            let ms: Vec<_> = self
                .pool
                .months(r.field, r.entity)
                .iter()
                .filter(|m| m.month > lo && m.month <= self.cx.as_of_month)
                .collect();
            let sum: i64 = ms.iter().map(|m| m.value as i64).sum();
            let last = ms.iter().map(|m| m.import).max();
            let src = self.decl.feeders(r.field).first().copied();
            return Some(self.fact(
                r.field,
                r.entity,
                format!("{sum} ({} months)", ms.len()),
                src,
                last,
            ));
        }
        match self.pool.resolve(self.decl, r.field, r.entity) {
            Some(c) if r.as_age => {
                let mut f = self.claim_fact(r.field, r.entity, &c);
                f.field = "age".into();
                f.title = "年龄（周岁）".into();
                f.value = age_years(c.value, self.cx.as_of_days).to_string();
                Some(f)
            }
            Some(c) => Some(self.claim_fact(r.field, r.entity, &c)),
            None => {
                let feeders = self.decl.feeders(r.field);
                let imp = self
                    .pool
                    .imports
                    .iter()
                    .rposition(|i| feeders.contains(&i.source))
                    .map(|i| i as u16);
                let src = imp
                    .map(|i| self.pool.imports[i as usize].source)
                    .or(feeders.first().copied());
                Some(self.fact(r.field, r.entity, "(none)".into(), src, imp))
            }
        }
    }

    fn clause(&self, c: &Cond, conflicts: &mut Vec<Conflict>) -> Clause {
        let mut t = Tracer {
            on: true,
            reads: Vec::new(),
        };
        let v = eval(&c.node, &self.cx, self.hh, u32::MAX, &mut t);
        let mut facts = Vec::new();
        for r in &t.reads {
            if let Some(f) = self.read_fact(r) {
                facts.push(f);
            }
            if r.field != usize::MAX && !self.decl.fields[r.field].monthly {
                if let Cell::Many(claims) = self.pool.cell(r.field, r.entity) {
                    let fd = &self.decl.fields[r.field];
                    let differ = claims.iter().any(|x| x.value != claims[0].value);
                    if differ && !matches!(fd.ty, FieldType::Set(_)) {
                        let kept = resolve(self.decl, r.field, self.pool.cell(r.field, r.entity))
                            .expect("a cell with claims resolves");
                        let conflict = Conflict {
                            member: (fd.level == Level::Person).then(|| self.member(r.entity)),
                            field: fd.name.clone(),
                            kept: self.claim_fact(r.field, r.entity, &kept),
                            overruled: claims
                                .iter()
                                .filter(|x| **x != kept)
                                .map(|x| self.claim_fact(r.field, r.entity, x))
                                .collect(),
                        };
                        if !conflicts.contains(&conflict) {
                            conflicts.push(conflict);
                        }
                    }
                }
            }
        }
        Clause {
            text: c.text.clone(),
            line: c.line,
            holds: v != 0.0 && !v.is_nan(),
            facts,
        }
    }
}

/// Explains one household against one policy (rulebook index).
pub fn explain(
    decl: &Declarations,
    pool: &Pool,
    book: &Rulebook,
    as_of: Date,
    household: u32,
    policy: usize,
) -> Explanation {
    let x = Explainer {
        decl,
        pool,
        cx: Cx::new(decl, pool, as_of),
        hh: household,
    };
    let p = &book.policies[policy];
    let mut conflicts = Vec::new();
    let when: Vec<Clause> = p.when.iter().map(|c| x.clause(c, &mut conflicts)).collect();
    let rule_out: Vec<Clause> = p
        .unless
        .iter()
        .map(|c| x.clause(c, &mut conflicts))
        .collect();
    let mut separated = Vec::new();
    if let (Some(reg), Some(act)) = (
        decl.field("registered_community"),
        decl.field("actual_community"),
    ) {
        for &m in &pool.members[household as usize] {
            let (a, b) = (pool.resolve(decl, reg, m), pool.resolve(decl, act, m));
            if let (Some(a), Some(b)) = (a, b) {
                if a.value != b.value {
                    separated.push(x.member(m));
                }
            }
        }
    }
    let r = household_result(&x.cx, book, household);
    Explanation {
        policy: p.code.clone(),
        name: p.name.clone(),
        household: short(pool.household_hash[household as usize]),
        candidate: when.iter().all(|c| c.holds) && !rule_out.iter().any(|c| c.holds),
        when,
        rule_out,
        conflicts,
        separated,
        score: r.dims,
        dimensions: DIMENSIONS,
        hardship: r.hardship,
    }
}

fn household_result(cx: &Cx, book: &Rulebook, hh: u32) -> HouseholdResult {
    household(cx, book, hh)
}
