//! Scenario packs (应用场景): one TOML file per recurring problem — what it needs, what
//! triggers it, a condition in a small language ([`expr`]), fences, and a playbook (case
//! category and priority, lead and joint lines, deadlines, checklists, whom to notify, CAP,
//! stand-down). [`parse_pack`] reads and type-checks a pack, naming every problem by line
//! and column of the file; [`validate`] checks it against what the district has.
//! Pure: the runtime (a later `scenarios` room) feeds [`expr::Facts`] and acts on hits.

pub mod expr;

use crate::calendar::TimeLimit;
use crate::indicators::{Indicator, WarnLevel};
use crate::taxonomy::{Priority, Problem, Step, Taxonomy};
use crate::time::Millis;
use expr::{Expr, Scopes, Type};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// A name referred to by a pack, with where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Ref {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// A dataset a pack needs: its key column (joined to the event) and typed columns.
#[derive(Debug, Clone, PartialEq)]
pub struct NeedDataset {
    pub name: Ref,
    pub key: String,
    pub columns: BTreeMap<String, Type>,
}

/// What fires a pack's evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Readings of a device kind, for these metrics (all when empty).
    Reading {
        kind: Ref,
        metrics: Vec<String>,
    },
    Alarm {
        kind: Ref,
    },
    Row {
        dataset: Ref,
    },
    Cases {
        categories: Vec<Ref>,
    },
    Level {
        indicator: Ref,
        at: WarnLevel,
    },
    Schedule {
        every: Millis,
    },
}

/// A geofence: a closed ring of [lon, lat] points (WGS84).
#[derive(Debug, Clone, PartialEq)]
pub struct Fence {
    pub name: String,
    pub name_zh: String,
    pub ring: Vec<[f64; 2]>,
}

/// The checklist of one role.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checklist {
    pub role: String,
    pub items: Vec<String>,
}

/// What a hit does.
#[derive(Debug, Clone, PartialEq)]
pub struct Playbook {
    pub category: Ref,
    pub priority: Priority,
    /// The lead line (a department line of the taxonomy).
    pub lead: Ref,
    /// Joint responders (联勤联动), by line.
    pub joint: Vec<Ref>,
    /// Per-step time limits overriding the category's.
    pub deadlines: BTreeMap<Step, TimeLimit>,
    pub checklist: Vec<Checklist>,
    /// Lines told of a hit.
    pub notify: Vec<Ref>,
    /// A CAP category when a hit is published as a public warning.
    pub cap: Option<&'static str>,
    /// Published only at or above this level (when the pack has levels).
    pub cap_level: Option<WarnLevel>,
    /// The condition must stay clear this long before the stand-down note.
    pub stand_down_after: Millis,
}

/// A parsed, type-checked pack.
#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    pub owner: Ref,
    pub version: String,
    pub devices: Vec<Ref>,
    pub datasets: Vec<NeedDataset>,
    pub indicators: Vec<Ref>,
    pub triggers: Vec<Trigger>,
    pub condition: Expr,
    /// Where the condition sits in the file, for problems about names inside it.
    pub condition_at: (usize, usize),
    pub fences: Vec<Fence>,
    pub playbook: Playbook,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    code: String,
    name_zh: String,
    name_en: String,
    owner: Spanned<String>,
    version: String,
    condition: Spanned<String>,
    #[serde(default)]
    needs: RawNeeds,
    #[serde(default)]
    trigger: Vec<Spanned<RawTrigger>>,
    #[serde(default)]
    fence: Vec<RawFence>,
    playbook: RawPlaybook,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNeeds {
    #[serde(default)]
    devices: Vec<Spanned<String>>,
    #[serde(default)]
    indicators: Vec<Spanned<String>>,
    #[serde(default)]
    dataset: Vec<RawDataset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    name: Spanned<String>,
    key: String,
    #[serde(default)]
    columns: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    reading: Option<Spanned<String>>,
    #[serde(default)]
    metrics: Vec<String>,
    alarm: Option<Spanned<String>>,
    row: Option<Spanned<String>>,
    cases: Option<Vec<Spanned<String>>>,
    level: Option<Spanned<String>>,
    at: Option<WarnLevel>,
    every: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFence {
    name: Spanned<String>,
    name_zh: String,
    ring: Vec<[f64; 2]>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    category: Spanned<String>,
    priority: Spanned<String>,
    lead: Spanned<String>,
    #[serde(default)]
    joint: Vec<Spanned<String>>,
    #[serde(default)]
    deadlines: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    checklist: Vec<Checklist>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    cap_category: Option<Spanned<String>>,
    cap_level: Option<WarnLevel>,
    stand_down_after: Option<Spanned<String>>,
}

struct Ctx<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Ctx<'_> {
    fn pos(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }
    fn at(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = self.pos(offset);
        self.problems.push(Problem {
            line,
            column,
            message: message.into(),
        });
    }
    fn r(&self, s: &Spanned<String>) -> Ref {
        let (line, column) = self.pos(s.span().start);
        Ref {
            name: s.get_ref().clone(),
            line,
            column,
        }
    }
}

/// Where the characters of a TOML string value start, given the offset of its quote.
fn string_body(text: &str, start: usize) -> usize {
    let rest = &text[start..];
    if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
        let after = start + 3;
        if text[after..].starts_with("\r\n") {
            after + 2
        } else if text[after..].starts_with('\n') {
            after + 1
        } else {
            after
        }
    } else {
        start + 1
    }
}

/// The file offset of byte `off` of a string value's decoded text whose characters start
/// at `body`: literal strings map one to one; in basic strings each escape (`\"`, `\n`,
/// `\u00e9`, …) is stepped over as one decoded character.
fn raw_offset(text: &str, body: usize, basic: bool, off: usize) -> usize {
    if !basic {
        return body + off;
    }
    let raw = &text.as_bytes()[body..];
    let (mut i, mut d) = (0, 0);
    while d < off && i < raw.len() {
        if raw[i] == b'\\' {
            let hex = |n: usize| {
                let h = std::str::from_utf8(raw.get(i + 2..i + 2 + n)?).ok()?;
                char::from_u32(u32::from_str_radix(h, 16).ok()?)
            };
            let (len, decoded) = match raw.get(i + 1) {
                Some(b'u') => (6, hex(4).map_or(1, |c| c.len_utf8())),
                Some(b'U') => (10, hex(8).map_or(1, |c| c.len_utf8())),
                _ => (2, 1),
            };
            i += len;
            d += decoded;
        } else {
            i += 1;
            d += 1;
        }
    }
    body + i.min(raw.len())
}

/// Checks a fence ring: closed, at least four points, finite WGS84 coordinates and no two
/// non-adjacent edges crossing.
pub fn check_ring(ring: &[[f64; 2]]) -> Result<(), String> {
    if ring.len() < 4 {
        return Err(format!(
            "a ring needs at least 4 points (closed), it has {}",
            ring.len()
        ));
    }
    if ring.first() != ring.last() {
        return Err("a ring must be closed: its last point repeats its first".into());
    }
    for p in ring {
        if !(p[0].is_finite()
            && p[1].is_finite()
            && (-180.0..=180.0).contains(&p[0])
            && (-90.0..=90.0).contains(&p[1]))
        {
            return Err(format!("point {p:?} is not a [lon, lat] in degrees"));
        }
    }
    let n = ring.len() - 1;
    for i in 0..n {
        for j in i + 1..n {
            if j == i + 1 || (i == 0 && j == n - 1) {
                continue;
            }
            if crosses(ring[i], ring[i + 1], ring[j], ring[j + 1]) {
                return Err(format!(
                    "the ring intersects itself (edges {} and {})",
                    i + 1,
                    j + 1
                ));
            }
        }
    }
    Ok(())
}

fn crosses(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> bool {
    let orient = |p: [f64; 2], q: [f64; 2], r: [f64; 2]| {
        let v = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]);
        if v > 0.0 {
            1
        } else if v < 0.0 {
            -1
        } else {
            0
        }
    };
    let (o1, o2, o3, o4) = (
        orient(a, b, c),
        orient(a, b, d),
        orient(c, d, a),
        orient(c, d, b),
    );
    o1 != o2 && o3 != o4 && o1 * o2 <= 0 && o3 * o4 <= 0 && !(o1 == 0 && o2 == 0)
}

/// Parses a pack file; every problem is named by line and column (a problem inside the
/// condition by the condition's place plus its offset in the string).
pub fn parse_pack(text: &str) -> Result<Pack, Vec<Problem>> {
    let raw: RawPack = toml::from_str(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(s) => Ctx {
                text,
                problems: vec![],
            }
            .pos(s.start),
            None => (0, 0),
        };
        vec![Problem {
            line,
            column,
            message: format!("the pack does not parse: {}", e.message()),
        }]
    })?;
    let mut cx = Ctx {
        text,
        problems: Vec::new(),
    };
    let mut datasets = Vec::new();
    let mut scopes = Scopes::default();
    for d in &raw.needs.dataset {
        let mut columns = BTreeMap::new();
        for (c, t) in &d.columns {
            match Type::parse(t.get_ref()) {
                Some(ty) => {
                    columns.insert(c.clone(), ty);
                }
                None => cx.at(
                    t.span().start,
                    format!(
                        "column {c:?}: type {:?} is not number, bool, level or string",
                        t.get_ref()
                    ),
                ),
            }
        }
        scopes
            .datasets
            .insert(d.name.get_ref().clone(), columns.clone());
        datasets.push(NeedDataset {
            name: cx.r(&d.name),
            key: d.key.clone(),
            columns,
        });
    }
    let mut fences = Vec::new();
    for f in &raw.fence {
        if let Err(m) = check_ring(&f.ring) {
            cx.at(
                f.name.span().start,
                format!("fence {:?}: {m}", f.name.get_ref()),
            );
        }
        scopes.fences.push(f.name.get_ref().clone());
        fences.push(Fence {
            name: f.name.get_ref().clone(),
            name_zh: f.name_zh.clone(),
            ring: f.ring.clone(),
        });
    }
    let cond_start = string_body(text, raw.condition.span().start);
    let condition_at = cx.pos(cond_start);
    let condition = match Expr::parse(raw.condition.get_ref(), &scopes) {
        Ok(e) => Some(e),
        Err(e) => {
            let basic = text[raw.condition.span().start..].starts_with('"');
            let at = raw_offset(text, cond_start, basic, e.offset);
            cx.at(at, format!("condition: {}", e.message));
            None
        }
    };
    let mut triggers = Vec::new();
    for t in &raw.trigger {
        let r = t.get_ref();
        let kinds = [
            r.reading.is_some(),
            r.alarm.is_some(),
            r.row.is_some(),
            r.cases.is_some(),
            r.level.is_some(),
            r.every.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            cx.at(
                t.span().start,
                "a trigger names exactly one of reading, alarm, row, cases, level, every",
            );
            continue;
        }
        let trig = if let Some(k) = &r.reading {
            Trigger::Reading {
                kind: cx.r(k),
                metrics: r.metrics.clone(),
            }
        } else if let Some(k) = &r.alarm {
            Trigger::Alarm { kind: cx.r(k) }
        } else if let Some(d) = &r.row {
            Trigger::Row { dataset: cx.r(d) }
        } else if let Some(cs) = &r.cases {
            Trigger::Cases {
                categories: cs.iter().map(|c| cx.r(c)).collect(),
            }
        } else if let Some(i) = &r.level {
            Trigger::Level {
                indicator: cx.r(i),
                at: r.at.unwrap_or(WarnLevel::Blue),
            }
        } else {
            let e = r.every.as_ref().expect("one is set");
            match crate::sensing::parse_duration(e.get_ref()) {
                Some(ms) if ms > 0 => Trigger::Schedule { every: ms },
                _ => {
                    cx.at(
                        e.span().start,
                        format!("every {:?} is not a duration such as \"1h\"", e.get_ref()),
                    );
                    continue;
                }
            }
        };
        triggers.push(trig);
    }
    if raw.trigger.is_empty() {
        cx.at(0, "a pack needs at least one [[trigger]]");
    }
    let p = &raw.playbook;
    let priority = Priority::parse(p.priority.get_ref()).unwrap_or_else(|| {
        cx.at(
            p.priority.span().start,
            format!(
                "priority {:?} is not low, normal, high or urgent",
                p.priority.get_ref()
            ),
        );
        Priority::Normal
    });
    let mut deadlines = BTreeMap::new();
    for (step, limit) in &p.deadlines {
        let Some(s) = Step::ALL.into_iter().find(|s| s.as_str() == step) else {
            cx.at(limit.span().start, format!("deadlines: {step:?} is not a step (file, dispatch, acknowledge, handle, verify, close)"));
            continue;
        };
        match TimeLimit::parse(limit.get_ref()) {
            Ok(l) => {
                deadlines.insert(s, l);
            }
            Err(m) => cx.at(limit.span().start, format!("deadlines.{step}: {m}")),
        }
    }
    let cap = match &p.cap_category {
        None => None,
        Some(c) => match crate::cap::CATEGORIES.iter().find(|x| **x == c.get_ref()) {
            Some(x) => Some(*x),
            None => {
                cx.at(
                    c.span().start,
                    format!(
                        "cap_category {:?} is not one of {}",
                        c.get_ref(),
                        crate::cap::CATEGORIES.join(", ")
                    ),
                );
                None
            }
        },
    };
    let stand_down_after = match &p.stand_down_after {
        None => 0,
        Some(s) => crate::sensing::parse_duration(s.get_ref()).unwrap_or_else(|| {
            cx.at(
                s.span().start,
                format!(
                    "stand_down_after {:?} is not a duration such as \"30m\"",
                    s.get_ref()
                ),
            );
            0
        }),
    };
    let playbook = Playbook {
        category: cx.r(&p.category),
        priority,
        lead: cx.r(&p.lead),
        joint: p.joint.iter().map(|j| cx.r(j)).collect(),
        deadlines,
        checklist: p.checklist.clone(),
        notify: p.notify.iter().map(|j| cx.r(j)).collect(),
        cap,
        cap_level: p.cap_level,
        stand_down_after,
    };
    let (Some(condition), true) = (condition, cx.problems.is_empty()) else {
        cx.problems.sort_by_key(|p| (p.line, p.column));
        return Err(cx.problems);
    };
    Ok(Pack {
        code: raw.code,
        name_zh: raw.name_zh,
        name_en: raw.name_en,
        owner: cx.r(&raw.owner),
        version: raw.version,
        devices: raw.needs.devices.iter().map(|d| cx.r(d)).collect(),
        datasets,
        indicators: raw.needs.indicators.iter().map(|d| cx.r(d)).collect(),
        triggers,
        condition,
        condition_at,
        fences,
        playbook,
    })
}

/// What the district offers to packs beyond the taxonomy and the indicators: device kinds
/// with their metrics, datasets with their key and typed columns (`catalogue.toml`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalogue {
    pub device_kinds: BTreeMap<String, Vec<String>>,
    pub datasets: BTreeMap<String, (String, BTreeMap<String, Type>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatalogue {
    #[serde(default)]
    device_kind: Vec<RawKind>,
    #[serde(default)]
    dataset: Vec<RawCatDataset>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKind {
    kind: String,
    #[allow(dead_code)]
    name_zh: String,
    metrics: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCatDataset {
    name: String,
    #[allow(dead_code)]
    name_zh: String,
    key: String,
    columns: BTreeMap<String, String>,
}

impl Catalogue {
    /// Reads the catalogue (TOML `[[device_kind]]` and `[[dataset]]` tables).
    pub fn from_toml(text: &str) -> Result<Catalogue, Vec<String>> {
        let raw: RawCatalogue =
            toml::from_str(text).map_err(|e| vec![format!("catalogue does not parse: {e}")])?;
        let mut out = Catalogue::default();
        let mut problems = Vec::new();
        for k in raw.device_kind {
            if out.device_kinds.insert(k.kind.clone(), k.metrics).is_some() {
                problems.push(format!("device kind {:?} is given twice", k.kind));
            }
        }
        for d in raw.dataset {
            let mut cols = BTreeMap::new();
            for (c, t) in &d.columns {
                match Type::parse(t) {
                    Some(t) => {
                        cols.insert(c.clone(), t);
                    }
                    None => problems.push(format!(
                        "dataset {:?}: column {c:?} has unknown type {t:?}",
                        d.name
                    )),
                }
            }
            if !cols.contains_key(&d.key) {
                problems.push(format!(
                    "dataset {:?}: key {:?} is not one of its columns",
                    d.name, d.key
                ));
            }
            if out.datasets.insert(d.name.clone(), (d.key, cols)).is_some() {
                problems.push(format!("dataset {:?} is given twice", d.name));
            }
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(problems)
        }
    }
}

/// What a district has, for [`validate`].
pub struct District<'a> {
    pub taxonomy: &'a Taxonomy,
    pub indicators: &'a [Indicator],
    pub catalogue: &'a Catalogue,
}

/// Checks a parsed pack against the district: its owner department, the lines of its
/// playbook, its categories, indicators, device kinds (and the metrics its condition
/// uses), datasets (key and column types). Every unknown reference is named with its place.
pub fn validate(pack: &Pack, d: &District) -> Result<(), Vec<Problem>> {
    let mut problems = Vec::new();
    let mut bad = |r: &Ref, m: String| {
        problems.push(Problem {
            line: r.line,
            column: r.column,
            message: m,
        })
    };
    let line_known = |l: &str| d.taxonomy.departments.iter().any(|x| x.line == l);
    if d.taxonomy.department(&pack.owner.name).is_none() {
        bad(
            &pack.owner,
            format!("unknown department {:?}", pack.owner.name),
        );
    }
    for r in std::iter::once(&pack.playbook.lead)
        .chain(&pack.playbook.joint)
        .chain(&pack.playbook.notify)
    {
        if !line_known(&r.name) {
            bad(r, format!("unknown department line {:?}", r.name));
        }
    }
    if d.taxonomy.category(&pack.playbook.category.name).is_none() {
        bad(
            &pack.playbook.category,
            format!("unknown category {:?}", pack.playbook.category.name),
        );
    }
    let indicator_known = |c: &str| d.indicators.iter().any(|i| i.code == c);
    for r in &pack.indicators {
        if !indicator_known(&r.name) {
            bad(r, format!("unknown indicator {:?}", r.name));
        }
    }
    for r in &pack.devices {
        if !d.catalogue.device_kinds.contains_key(&r.name) {
            bad(r, format!("unknown device kind {:?}", r.name));
        }
    }
    for n in &pack.datasets {
        match d.catalogue.datasets.get(&n.name.name) {
            None => bad(&n.name, format!("unknown dataset {:?}", n.name.name)),
            Some((key, cols)) => {
                if key != &n.key {
                    bad(
                        &n.name,
                        format!(
                            "dataset {:?} is keyed by {key:?}, not {:?}",
                            n.name.name, n.key
                        ),
                    );
                }
                for (c, t) in &n.columns {
                    match cols.get(c) {
                        None => bad(
                            &n.name,
                            format!("dataset {:?} has no column {c:?}", n.name.name),
                        ),
                        Some(have) if have != t => bad(
                            &n.name,
                            format!(
                                "dataset {:?}: column {c:?} is a {}, not a {}",
                                n.name.name,
                                have.as_str(),
                                t.as_str()
                            ),
                        ),
                        Some(_) => {}
                    }
                }
            }
        }
    }
    for t in &pack.triggers {
        match t {
            Trigger::Reading { kind, metrics } => match d.catalogue.device_kinds.get(&kind.name) {
                None => bad(kind, format!("unknown device kind {:?}", kind.name)),
                Some(have) => {
                    for m in metrics.iter().filter(|m| !have.contains(m)) {
                        bad(
                            kind,
                            format!("device kind {:?} has no metric {m:?}", kind.name),
                        );
                    }
                }
            },
            Trigger::Alarm { kind } if !d.catalogue.device_kinds.contains_key(&kind.name) => {
                bad(kind, format!("unknown device kind {:?}", kind.name))
            }
            Trigger::Row { dataset }
                if !pack.datasets.iter().any(|n| n.name.name == dataset.name) =>
            {
                bad(
                    dataset,
                    format!("dataset {:?} is not among the pack's needs", dataset.name),
                )
            }
            Trigger::Cases { categories } => {
                for c in categories
                    .iter()
                    .filter(|c| d.taxonomy.category(&c.name).is_none())
                {
                    bad(c, format!("unknown category {:?}", c.name));
                }
            }
            Trigger::Level { indicator, .. } if !indicator_known(&indicator.name) => {
                bad(indicator, format!("unknown indicator {:?}", indicator.name))
            }
            _ => {}
        }
    }
    let (line, column) = pack.condition_at;
    let here = Ref {
        name: String::new(),
        line,
        column,
    };
    let metrics: Vec<&String> = pack
        .devices
        .iter()
        .filter_map(|k| d.catalogue.device_kinds.get(&k.name))
        .flatten()
        .collect();
    for m in pack.condition.metrics() {
        let is_metric = metrics.iter().any(|x| *x == m);
        let is_indicator = pack.indicators.iter().any(|i| i.name == m);
        if !is_metric && !is_indicator {
            bad(&here, format!("condition: {m:?} is neither a metric of the needed devices nor a needed indicator"));
        }
    }
    for i in pack.condition.indicators() {
        if !pack.indicators.iter().any(|x| x.name == i) {
            bad(
                &here,
                format!("condition: level({i}) names an indicator not among the pack's needs"),
            );
        }
    }
    for c in pack.condition.categories() {
        if d.taxonomy.category(c).is_none() {
            bad(&here, format!("condition: unknown category {c:?}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.sort_by_key(|p| (p.line, p.column));
        Err(problems)
    }
}
