//! The scenario runtime: judges the enabled packs as things happen and acts on their hits.
//!
//! - **Readings** reach it from the sensing end in batches ([`readings`], a port): each
//!   reading of a kind some pack needs goes into its series, and the packs whose reading
//!   triggers name that kind (and metric) judge the reading's device at the reading's time.
//! - **Datasets** ([`dataset_imported`], a port) are indexed for joins; packs with a `row`
//!   trigger on the dataset judge every key of it (a device id is that device; anything
//!   else is an address).
//! - **Cases** committed by the engine ([`case_committed`], the engine's event sink) are
//!   remembered for `cases(...)` counts; packs with a `cases` trigger judge the new case's
//!   place at the next [`tick`].
//! - **Time** ([`tick`], each sensing round): schedules (`every`), indicator levels (`level`
//!   triggers judge every subject the pack has seen), `for` clauses still waiting, and
//!   stand-downs.
//!
//! A subject (a device or a place) of a pack is *firing* from the judgement that finds the
//! condition holding until it has stayed clear for the playbook's `stand_down_after`. One
//! hit per pack and place: the hit files a case with the playbook (priority, lead and joint
//! lines, deadlines, checklist); a hit while that case is still open is noted on it (a
//! repeat); the stand-down is noted too. Each is announced on the bus (the live feed's
//! `scenario` event) and kept in the last [`KEEP_HITS`] for `GET /api/v1/scenarios/hits`.
//! The case of each (pack, place) is kept in the store (`data_rule_cases`, rule
//! `scenario:<code>`), so a restart files no second case.
//!
//! Judging is synchronous under the runtime's lock; acting (cases, notes, CAP) is async in
//! [`flush`], after a batch, an import or a tick.

use super::facts::{HashMap, Judge, SeenCase, Series, Slots, Subject, Table, UNSET};
use crate::cases::{file_report, note_case, still_open};
use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::case::{CaseId, CasePlaybook, Channel, ChecklistItem, ChecklistRole};
use cityos_core::indicators::WarnLevel;
use cityos_core::scenario::expr::{Expr, Held, Value};
use cityos_core::scenario::{Catalogue, Pack, Trigger};
use cityos_core::time::{format_rfc3339, Millis};
use cityos_core::workflow::NewReport;
use serde_json::json;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

/// Devices at exactly one position read as one place at most (a flat's meters).
pub const MAX_PLACE_DEVICES: usize = 8;

/// Hits kept for the API and the 场景 page.
pub const KEEP_HITS: usize = 500;
/// Cases remembered for counting at most (the oldest go first).
pub const KEEP_CASES: usize = 200_000;

/// What never changes while the service runs: metric names, device kinds and positions.
pub struct Fixed {
    metric_ids: HashMap<String, u16>,
    /// Per device: its kind's index in `kinds` (`u16::MAX` when the catalogue lacks it).
    kind_of: Vec<u16>,
    kinds: Vec<String>,
    /// Per device: the devices at exactly its position, itself first.
    siblings: HashMap<u32, Vec<u32>>,
    device_ids: Vec<String>,
    device_pos: Vec<(f64, f64)>,
    by_id: HashMap<String, u32>,
    slots: Slots,
    /// Per kind: its metrics' names and ids (a few: found by comparing, not hashing).
    kind_names: Vec<Vec<(String, u16)>>,
    catalogue: Catalogue,
}

impl Fixed {
    /// The id of `metric` when device `d`'s kind has it.
    #[inline]
    pub fn metric_of(&self, d: u32, metric: &str) -> Option<u16> {
        let k = *self.kind_of.get(d as usize)?;
        self.kind_names
            .get(k as usize)?
            .iter()
            .find(|(n, _)| n == metric)
            .map(|(_, m)| *m)
    }
}

impl Fixed {
    fn new(cfg: &cityos_engine::config::Config, catalogue: Catalogue) -> Fixed {
        let mut metric_ids = HashMap::default();
        for m in catalogue.device_kinds.values().flatten() {
            let n = metric_ids.len() as u16;
            metric_ids.entry(m.clone()).or_insert(n);
        }
        let kinds: Vec<String> = catalogue.device_kinds.keys().cloned().collect();
        let devices = &cfg.sensing.devices;
        let kind_of: Vec<u16> = devices
            .iter()
            .map(|d| {
                kinds
                    .iter()
                    .position(|k| *k == d.kind)
                    .map_or(u16::MAX, |k| k as u16)
            })
            .collect();
        let mut at: HashMap<(u64, u64), Vec<u32>> = HashMap::default();
        for (i, d) in devices.iter().enumerate() {
            at.entry((d.lon.to_bits(), d.lat.to_bits()))
                .or_default()
                .push(i as u32);
        }
        // A few devices at exactly one position are one place (a flat's meters); many (a
        // generated fleet stacked on a few points) are not, and would cost n² memory.
        let mut siblings = HashMap::default();
        for group in at
            .into_values()
            .filter(|g| g.len() > 1 && g.len() <= MAX_PLACE_DEVICES)
        {
            for &d in &group {
                let mut v = vec![d];
                v.extend(group.iter().copied().filter(|x| *x != d));
                siblings.insert(d, v);
            }
        }
        let kind_of: Vec<u16> = kind_of;
        let kind_metrics: Vec<Vec<u16>> = kinds
            .iter()
            .map(|k| {
                catalogue.device_kinds[k]
                    .iter()
                    .map(|m| metric_ids[m])
                    .collect()
            })
            .collect();
        let mut next = 0u32;
        let base = kind_of
            .iter()
            .map(|&k| match kind_metrics.get(k as usize) {
                Some(ms) => {
                    let b = next;
                    next += ms.len() as u32;
                    b
                }
                None => u32::MAX,
            })
            .collect();
        let slots = Slots {
            base,
            kind_of: kind_of.clone(),
            kind_metrics,
            len: next as usize,
        };
        let kind_names = kinds
            .iter()
            .map(|k| {
                catalogue.device_kinds[k]
                    .iter()
                    .map(|m| (m.clone(), metric_ids[m]))
                    .collect()
            })
            .collect();
        Fixed {
            slots,
            kind_names,
            metric_ids,
            kind_of,
            kinds,
            siblings,
            device_ids: devices.iter().map(|d| d.id.clone()).collect(),
            device_pos: devices.iter().map(|d| (d.lon, d.lat)).collect(),
            by_id: devices
                .iter()
                .enumerate()
                .map(|(i, d)| (d.id.clone(), i as u32))
                .collect(),
            catalogue,
        }
    }
}

/// Who a judgement is for: a device (its subject made once), or a place.
enum Who {
    /// A device, and whether any of its values changed since it was last judged.
    Device(u32, bool),
    Place(Subject),
}

/// One subject of one pack.
#[derive(Debug, Clone, Default)]
struct Subj {
    s: Subject,
    held: Held,
    firing: bool,
    clear_since: Option<Millis>,
    case: Option<CaseId>,
    /// The CAP messages published for this firing (identifier, sent).
    cap: Vec<(String, Millis)>,
    /// The datasets' generation when the device's address was last looked for.
    addr_gen: u64,
    /// The datasets' generation at the last judgement (`None`: never judged).
    judged_gen: Option<u64>,
}

/// A pack's subjects in one array, found by key, and by device index on the hot path
/// (one array read instead of hashing a device id).
#[derive(Default)]
struct Subjects {
    all: Vec<Subj>,
    by_key: HashMap<String, u32>,
    /// Per device index: its subject's place in `all` (`u32::MAX`: none yet).
    by_dev: Vec<u32>,
}

impl Subjects {
    fn values(&self) -> impl Iterator<Item = &Subj> {
        self.all.iter()
    }
    fn values_mut(&mut self) -> impl Iterator<Item = &mut Subj> {
        self.all.iter_mut()
    }
    /// Device `d`'s subject, when it has one.
    fn find_dev(&mut self, d: u32) -> Option<usize> {
        if let Some(&i) = self.by_dev.get(d as usize).filter(|i| **i != u32::MAX) {
            return Some(i as usize);
        }
        None
    }
    fn contains_key(&self, k: &str) -> bool {
        self.by_key.contains_key(k)
    }
    fn get(&self, k: &str) -> Option<&Subj> {
        self.by_key.get(k).map(|&i| &self.all[i as usize])
    }
    fn get_mut(&mut self, k: &str) -> Option<&mut Subj> {
        let i = *self.by_key.get(k)?;
        Some(&mut self.all[i as usize])
    }
    /// The place of key `k`'s subject, made (empty) when there is none.
    fn entry(&mut self, k: &str) -> usize {
        if let Some(&i) = self.by_key.get(k) {
            return i as usize;
        }
        self.by_key.insert(k.to_string(), self.all.len() as u32);
        self.all.push(Subj::default());
        self.all.len() - 1
    }
    /// The place of device `d`'s subject (its key is the device id).
    fn device(&mut self, d: u32, key: &str) -> usize {
        if let Some(&i) = self.by_dev.get(d as usize).filter(|i| **i != u32::MAX) {
            return i as usize;
        }
        let i = self.entry(key);
        if self.by_dev.len() <= d as usize {
            self.by_dev.resize(d as usize + 1, u32::MAX);
        }
        self.by_dev[d as usize] = i as u32;
        i
    }
}

/// One pack as the runtime runs it.
struct PackRun {
    pack: Arc<Pack>,
    enabled: bool,
    /// The condition reads only latest values, rows and fences ([`Expr::is_instant`]).
    instant: bool,
    /// The condition counts dataset rows by address (a device needs its address).
    by_address: bool,
    /// The open case of each fence (`fence:<name>`): the devices inside share it.
    place_cases: HashMap<String, CaseId>,
    subjects: Subjects,
    last_schedule: Millis,
    hits: u64,
    last_hit: Option<serde_json::Value>,
}

/// Something a judgement asks to be done.
#[derive(Debug, Clone)]
pub struct Act {
    pack: Arc<Pack>,
    key: String,
    subject: Subject,
    stand_down: bool,
    at: Millis,
    level: Option<WarnLevel>,
    /// What held: the terms of the condition with their values.
    evidence: String,
    /// The joined dataset rows (no addresses or personal columns).
    rows: String,
    case: Option<CaseId>,
}

/// The runtime's changing state (one lock).
#[derive(Default)]
pub struct Runtime {
    series: HashMap<(u32, u16), Series>,
    /// Every device's latest value per metric (time, value), by [`Slots`].
    latest: Vec<(Millis, f64)>,
    /// How far back each metric is kept (by metric id); `None`: no pack reads it.
    keep: Vec<Option<Millis>>,
    /// Sampled indicator values (for trends over indicators).
    indicators: HashMap<String, Series>,
    ind_keep: HashMap<String, Millis>,
    tables: HashMap<String, Table>,
    /// Bumped at every dataset import (joins may find other rows).
    gen: u64,
    /// Address → a device whose joined row has that address (where the place is).
    addr_dev: HashMap<String, u32>,
    cases: VecDeque<SeenCase>,
    case_keep: Millis,
    pending_cases: Vec<SeenCase>,
    /// The packs ever run (never removed: their places keep their cases), and where each
    /// is by code.
    runs: Vec<PackRun>,
    run_ix: BTreeMap<String, usize>,
    /// Per device kind: the packs (codes) whose reading triggers name it, with the metrics
    /// (empty: all).
    by_kind: Vec<Vec<(usize, Vec<u16>)>>,
    queue: Vec<Act>,
    hits: VecDeque<serde_json::Value>,
    seq: u64,
    synced: Vec<(String, usize)>,
}

/// The scenarios room's runtime: fixed facts and the changing state.
pub struct Live {
    pub fixed: Fixed,
    pub rt: Mutex<Runtime>,
}

impl Live {
    /// Live bytes per device the runtime holds for the hot path: each device's kind, slot
    /// base and latest values, the packs' device → subject indexes, and the series.
    pub fn bytes_per_device(&self) -> f64 {
        let n = self.fixed.device_ids.len().max(1) as f64;
        let rt = self.rt.lock().expect("scenario lock");
        let fixed = self.fixed.slots.base.capacity() * 4
            + self.fixed.slots.kind_of.capacity() * 2
            + self.fixed.kind_of.capacity() * 2;
        let latest = rt.latest.capacity() * std::mem::size_of::<(Millis, f64)>();
        let subjects: usize = rt
            .runs
            .iter()
            .map(|r| {
                r.subjects.by_dev.capacity() * 4
                    + r.subjects.all.capacity() * std::mem::size_of::<Subj>()
            })
            .sum();
        let series: usize = rt.series.values().map(|s| s.len() * 48 + 48).sum();
        (fixed + latest + subjects + series) as f64 / n
    }

    /// Hits and stand-downs judged and not yet acted on.
    pub fn queued(&self) -> usize {
        self.rt.lock().expect("scenario lock").queue.len()
    }

    /// Points held over all series (bounded by each metric's longest window).
    pub fn held_points(&self) -> usize {
        let rt = self.rt.lock().expect("scenario lock");
        rt.series.values().map(Series::len).sum::<usize>()
            + rt.indicators.values().map(Series::len).sum::<usize>()
    }

    /// An aggregate of a device's metric as the packs read it (for tests and checks).
    pub fn aggregate(
        &self,
        device: &str,
        metric: &str,
        now: Millis,
        window: Millis,
        agg: cityos_core::scenario::expr::Agg,
    ) -> Option<f64> {
        let d = *self.fixed.by_id.get(device)?;
        let m = *self.fixed.metric_ids.get(metric)?;
        let rt = self.rt.lock().expect("scenario lock");
        rt.series.get(&(d, m))?.aggregate(now, window, agg)
    }

    /// The bucket width of a metric's series: its longest window over [`BUCKETS`]
    /// (`None` when no enabled pack reads the metric).
    pub fn bucket_width(&self, metric: &str) -> Option<Millis> {
        let m = *self.fixed.metric_ids.get(metric)?;
        let rt = self.rt.lock().expect("scenario lock");
        let keep = (*rt.keep.get(m as usize)?)?;
        Some((keep / super::facts::BUCKETS).max(1_000))
    }

    pub fn new(cfg: &cityos_engine::config::Config, catalogue: Catalogue) -> Live {
        Live {
            fixed: Fixed::new(cfg, catalogue),
            rt: Mutex::new(Runtime::default()),
        }
    }
}

/// The indicators' current values and levels, district-wide, as the packs see them.
type Levels = HashMap<String, (f64, WarnLevel)>;

/// What a judgement needs besides the runtime.
struct Cx<'a> {
    fx: &'a Fixed,
    levels: &'a Levels,
    cfg: &'a cityos_engine::config::Config,
}

fn duration(ms: Millis) -> String {
    let s = ms / 1000;
    match s {
        s if s % 86_400 == 0 && s > 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 && s > 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 && s > 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Number(x) if x.fract() == 0.0 && x.abs() < 1e12 => format!("{x:.0}"),
        Value::Number(x) => format!("{x:.3}"),
        Value::Bool(b) => b.to_string(),
        Value::Level(l) => l.as_str().to_string(),
        Value::Str(s) => format!("{s:?}"),
    }
}

/// The terms of a condition with their values now: what the case says held.
fn evidence(e: &Expr, j: &Judge, now: Millis) -> Vec<String> {
    let mut out = Vec::new();
    let walk = |e: &Expr, out: &mut Vec<String>| {
        let name = match e {
            Expr::Metric(m) => m.clone(),
            // A personal column's value never goes into a case's text or a hit.
            Expr::Column(_, c) if personal_column(c) => return,
            Expr::Column(d, c) => format!("{d}.{c}"),
            Expr::Window(agg, m, w) => format!(
                "{}({m}, {})",
                format!("{agg:?}").to_lowercase(),
                duration(*w)
            ),
            Expr::Cases {
                categories, window, ..
            } => {
                format!("cases({}, {})", categories.join(", "), duration(*window))
            }
            Expr::Distinct {
                dataset,
                column,
                window,
                ..
            } => {
                format!("distinct({dataset}.{column}, {})", duration(*window))
            }
            Expr::Level(i) => format!("level({i})"),
            Expr::Trend(m, w) => format!("trend({m}, {}) /h", duration(*w)),
            _ => return,
        };
        if let Some(v) = e.eval(j, now, &mut Held::default()) {
            let line = format!("{name} = {}", show(&v));
            if !out.contains(&line) {
                out.push(line);
            }
        }
    };
    e.walk(&mut |x| match x {
        // `trend(m, w) reaches …`: the trend's value is what the case should say.
        Expr::Reaches { metric, window, .. } => {
            walk(&Expr::Trend(metric.clone(), *window), &mut out)
        }
        x => walk(x, &mut out),
    });
    out
}

/// Does a condition count rows or cases relative to the subject's place?
fn counts_by_address(e: &Expr) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        found |= matches!(x, Expr::Distinct { scope, .. }
            if *scope != cityos_core::scenario::expr::Scope::Anywhere)
    });
    found
}

/// Columns never written into a case's text or a hit (personal data).
fn personal_column(c: &str) -> bool {
    ["address", "name", "phone", "person", "id_number", "contact"]
        .iter()
        .any(|p| c == *p || c.ends_with(&format!("_{p}")))
}

impl Runtime {
    fn run(&self, code: &str) -> Option<&PackRun> {
        self.run_ix.get(code).map(|&i| &self.runs[i])
    }

    fn run_mut(&mut self, code: &str) -> Option<&mut PackRun> {
        let i = *self.run_ix.get(code)?;
        Some(&mut self.runs[i])
    }

    /// Brings the packs in line with the registry's enabled ones: new versions replace old
    /// ones (their places keep their cases), disabled packs keep their places idle.
    fn sync(&mut self, fx: &Fixed, enabled: &[Arc<Pack>]) {
        let sig: Vec<(String, usize)> = enabled
            .iter()
            .map(|p| (p.code.clone(), Arc::as_ptr(p) as usize))
            .collect();
        if sig == self.synced {
            return;
        }
        self.synced = sig;
        for r in self.runs.iter_mut() {
            r.enabled = false;
        }
        for p in enabled {
            let i = match self.run_ix.get(&p.code) {
                Some(&i) => i,
                None => {
                    self.run_ix.insert(p.code.clone(), self.runs.len());
                    self.runs.push(PackRun {
                        pack: p.clone(),
                        enabled: true,
                        instant: p.condition.is_instant(),
                        by_address: counts_by_address(&p.condition),
                        place_cases: HashMap::default(),
                        subjects: Subjects::default(),
                        last_schedule: Millis::MIN,
                        hits: 0,
                        last_hit: None,
                    });
                    self.runs.len() - 1
                }
            };
            let r = &mut self.runs[i];
            if !Arc::ptr_eq(&r.pack, p) {
                r.pack = p.clone();
                r.instant = p.condition.is_instant();
                r.by_address = counts_by_address(&p.condition);
                for s in r.subjects.values_mut() {
                    s.held = Held::default();
                }
            }
            r.enabled = true;
        }
        // What to keep, and which packs each device kind triggers.
        self.keep = vec![None; fx.metric_ids.len()];
        self.by_kind = vec![Vec::new(); fx.kinds.len()];
        self.case_keep = 0;
        self.ind_keep.clear();
        for p in enabled {
            let c = &p.condition;
            for m in c.metrics() {
                if let Some(&id) = fx.metric_ids.get(m) {
                    let k = &mut self.keep[id as usize];
                    *k = Some(k.unwrap_or(0));
                }
            }
            for (m, w) in c.windows() {
                match fx.metric_ids.get(m) {
                    Some(&id) => {
                        let k = &mut self.keep[id as usize];
                        *k = Some(k.unwrap_or(0).max(w));
                    }
                    None => {
                        let k = self.ind_keep.entry(m.to_string()).or_insert(0);
                        *k = (*k).max(w);
                    }
                }
            }
            for i in c.indicators() {
                self.ind_keep.entry(i.to_string()).or_insert(0);
            }
            self.case_keep = self.case_keep.max(c.case_window());
            for t in &p.triggers {
                // An alarm trigger judges every reading of its kind: the alarm rules read
                // the same readings, so the pack sees what raised the alarm.
                let (kind, metrics) = match t {
                    Trigger::Reading { kind, metrics } => (kind, metrics.as_slice()),
                    Trigger::Alarm { kind } => (kind, &[][..]),
                    _ => continue,
                };
                {
                    if let Some(k) = fx.kinds.iter().position(|x| *x == kind.name) {
                        let ms: Vec<u16> = metrics
                            .iter()
                            .filter_map(|m| fx.metric_ids.get(m).copied())
                            .collect();
                        let ix = self.run_ix[&p.code];
                        let list = &mut self.by_kind[k];
                        match list.iter_mut().find(|(c, _)| *c == ix) {
                            // Two triggers on one kind: judged once per reading.
                            Some((_, have)) if have.is_empty() || ms.is_empty() => have.clear(),
                            Some((_, have)) => have.extend(ms),
                            None => list.push((ix, ms)),
                        }
                    }
                }
            }
        }
    }

    /// One reading: its device's latest value, and its series when a pack reads the
    /// metric over a window.
    /// Answers whether the device's latest value changed.
    fn keep_reading(&mut self, fx: &Fixed, d: u32, m: u16, v: f64, at: Millis) -> bool {
        if self.latest.len() != fx.slots.len {
            self.latest = vec![UNSET; fx.slots.len];
        }
        let mut changed = true;
        if let Some(i) = fx.slots.slot(d, m) {
            let was = self.latest[i];
            if at >= was.0 {
                changed = was.0 == Millis::MIN || was.1 != v;
                self.latest[i] = (at, v);
            }
        }
        if let Some(Some(keep)) = self.keep.get(m as usize) {
            if *keep > 0 {
                self.series
                    .entry((d, m))
                    .or_insert_with(|| Series::new(at))
                    .push(at, v, *keep);
            }
        }
        changed
    }

    /// A device's readings of one instant (metrics `ms`) are in: the packs they trigger
    /// judge the device at that instant, once however many metrics came.
    fn judge_readings(&mut self, cx: &Cx, d: u32, ms: &[u16], at: Millis, changed: bool) {
        let k = cx.fx.kind_of.get(d as usize).copied().unwrap_or(u16::MAX);
        let n = self.by_kind.get(k as usize).map_or(0, Vec::len);
        for i in 0..n {
            let (ix, want) = &self.by_kind[k as usize][i];
            if want.is_empty() || ms.iter().any(|m| want.contains(m)) {
                let ix = *ix;
                self.judge_at(cx, ix, Who::Device(d, changed), at);
            }
        }
    }

    /// Judges a subject for pack `code` at `now`, and queues what follows.
    fn judge(&mut self, cx: &Cx, code: &str, who: Who, now: Millis) {
        if let Some(&ix) = self.run_ix.get(code) {
            self.judge_at(cx, ix, who, now);
        }
    }

    /// Judges a subject for the pack at `ix` of `runs`.
    fn judge_at(&mut self, cx: &Cx, ix: usize, who: Who, now: Millis) {
        let Runtime {
            runs,
            series,
            indicators,
            tables,
            cases,
            queue,
            gen,
            latest,
            ..
        } = self;
        let Some(run) = runs.get_mut(ix).filter(|r| r.enabled) else {
            return;
        };
        let pack = run.pack.clone();
        // A place's subject is refreshed with what is known of it now (one restored at
        // start knows only its key). A device gets a subject of its own only once it has
        // something to remember (a `for` waiting, firing, a stand-down waiting, a case):
        // until then it is judged on a subject made for the judgement, so a million quiet
        // devices cost no memory here.
        let (stored, dev) = match &who {
            Who::Device(d, _) => (run.subjects.find_dev(*d), Some(*d)),
            // A device named as a place (a dataset row, a schedule) is that device's
            // subject, found by index like its readings' judgements.
            Who::Place(s) => match s.device {
                Some(d) if cx.fx.device_ids[d as usize] == s.key => {
                    (Some(run.subjects.device(d, &s.key)), None)
                }
                _ => (Some(run.subjects.entry(&s.key)), None),
            },
        };
        let mut temp = Subj::default();
        let subj: &mut Subj = match stored {
            Some(i) => &mut run.subjects.all[i],
            None => {
                let d = dev.expect("a device");
                temp.s = Subject {
                    key: String::new(),
                    device: Some(d),
                    address: None,
                    pos: Some(cx.fx.device_pos[d as usize]),
                    grid: None,
                };
                &mut temp
            }
        };
        // An instant condition judged again on the same values and rows answers the same:
        // skipped, unless a `for` clause or a stand-down waits on time.
        if let (Who::Device(_, false), Some(_)) = (&who, stored) {
            if run.instant
                && !subj.held.pending()
                && subj.clear_since.is_none()
                && subj.judged_gen == Some(*gen)
            {
                return;
            }
        }
        subj.judged_gen = Some(*gen);
        match who {
            Who::Device(d, _) if subj.s.key.is_empty() && stored.is_some() => {
                subj.s = device_subject(cx, d)
            }
            Who::Device(..) => {}
            Who::Place(s) => subj.s = s,
        }
        let own: u32;
        let siblings: &[u32] = match subj.s.device {
            Some(d) => match cx.fx.siblings.get(&d) {
                Some(v) => v,
                None => {
                    own = d;
                    std::slice::from_ref(&own)
                }
            },
            None => &[],
        };
        let thresholds = |i: &str, l: WarnLevel| {
            let ind = cx.cfg.indicators.iter().find(|x| x.code == i)?;
            let t = ind.thresholds?;
            let k = WarnLevel::ALL.iter().position(|x| *x == l)?;
            k.checked_sub(1).map(|k| t.at[k])
        };
        // A device's address is that of the row it joins (when a pack dataset has one);
        // looked up when the condition counts by address, or for a hit (below).
        if run.by_address && subj.s.address.is_none() && subj.addr_gen != *gen {
            subj.addr_gen = *gen;
            if let Some(id) = subj.s.device.and_then(|d| cx.fx.device_ids.get(d as usize)) {
                subj.s.address = pack.datasets.iter().find_map(|nd| {
                    let t = tables.get(&nd.name.name)?;
                    match t.rows.get(*t.by_key.get(id)?)?.get("address")? {
                        Value::Str(a) => Some(a.clone()),
                        _ => None,
                    }
                });
            }
        }
        let j = Judge {
            pack: &pack,
            subject: &subj.s,
            device_ids: &cx.fx.device_ids,
            series,
            metric_ids: &cx.fx.metric_ids,
            siblings,
            indicators,
            levels: cx.levels,
            thresholds: &thresholds,
            tables,
            cases,
            grid_at: &|p| grid_of(cx.cfg, p),
            slots: &cx.fx.slots,
            latest,
            metric_of: &|d, m| cx.fx.metric_of(d, m),
            now,
        };
        let holds = pack.condition.holds(&j, now, &mut subj.held);
        let hit = match (holds, subj.firing) {
            (true, false) => {
                subj.firing = true;
                subj.clear_since = None;
                Some(false)
            }
            (true, true) => {
                subj.clear_since = None;
                None
            }
            (false, true) => {
                let since = *subj.clear_since.get_or_insert(now);
                if now - since >= pack.playbook.stand_down_after {
                    subj.firing = false;
                    subj.clear_since = None;
                    Some(true)
                } else {
                    None
                }
            }
            (false, false) => None,
        };
        let keep =
            subj.firing || subj.held.pending() || subj.clear_since.is_some() || subj.case.is_some();
        let Some(stand_down) = hit else {
            if stored.is_none() && keep {
                let d = dev.expect("a device");
                let i = run.subjects.device(d, &cx.fx.device_ids[d as usize]);
                let mut t = std::mem::take(&mut temp);
                t.s.key = cx.fx.device_ids[d as usize].clone();
                run.subjects.all[i] = t;
            }
            return;
        };
        // The hit's level: the highest warning among the pack's indicators (none when
        // all are normal).
        let level = pack
            .condition
            .indicators()
            .into_iter()
            .chain(pack.indicators.iter().map(|r| r.name.as_str()))
            .filter_map(|i| cx.levels.get(i).map(|l| l.1))
            .max()
            .filter(|l| *l > WarnLevel::Normal);
        let rows = pack
            .datasets
            .iter()
            .filter_map(|nd| {
                let r = cityos_core::scenario::expr::Facts::row(&j, &nd.name.name)?;
                let cols: Vec<String> = r
                    .iter()
                    .filter(|(c, _)| !personal_column(c))
                    .map(|(c, v)| format!("{c}={}", show(v)))
                    .collect();
                Some(format!("{}: {}", nd.name.name, cols.join(", ")))
            })
            .collect::<Vec<_>>()
            .join("; ");
        let ev = evidence(&pack.condition, &j, now).join("; ");
        if subj.s.address.is_none() {
            if let Some(id) = subj.s.device.and_then(|d| cx.fx.device_ids.get(d as usize)) {
                subj.s.address = pack.datasets.iter().find_map(|nd| {
                    let t = tables.get(&nd.name.name)?;
                    match t.rows.get(*t.by_key.get(id)?)?.get("address")? {
                        Value::Str(a) => Some(a.clone()),
                        _ => None,
                    }
                });
            }
        }
        if subj.s.key.is_empty() {
            subj.s.key = subj
                .s
                .device
                .map(|d| cx.fx.device_ids[d as usize].clone())
                .unwrap_or_default();
        }
        queue.push(Act {
            pack: pack.clone(),
            key: subj.s.key.clone(),
            subject: subj.s.clone(),
            stand_down,
            at: now,
            level,
            evidence: ev,
            rows,
            case: subj.case,
        });
        if stored.is_none() {
            let d = dev.expect("a device");
            let i = run.subjects.device(d, &cx.fx.device_ids[d as usize]);
            run.subjects.all[i] = std::mem::take(&mut temp);
        }
    }

    /// Every subject a pack has seen, and the devices of its kinds that have sent a reading.
    fn subjects_of(&self, cx: &Cx, code: &str) -> Vec<Subject> {
        let Some(run) = self.run(code) else {
            return Vec::new();
        };
        let mut out: Vec<Subject> = run.subjects.values().map(|s| s.s.clone()).collect();
        let kinds: Vec<u16> = run
            .pack
            .devices
            .iter()
            .filter_map(|r| cx.fx.kinds.iter().position(|k| *k == r.name))
            .map(|k| k as u16)
            .collect();
        // Devices of the pack's kinds that have sent something.
        let sent = |d: u32| {
            let s = &cx.fx.slots;
            let (b, k) = (s.base[d as usize], s.kind_of[d as usize] as usize);
            b != u32::MAX
                && (0..s.kind_metrics[k].len()).any(|j| {
                    self.latest
                        .get(b as usize + j)
                        .is_some_and(|v| v.0 != Millis::MIN)
                })
        };
        let devices = (0..cx.fx.device_ids.len() as u32)
            .filter(|d| kinds.contains(&cx.fx.kind_of[*d as usize]))
            .filter(|d| !run.subjects.contains_key(&cx.fx.device_ids[*d as usize]))
            .filter(|d| sent(*d));
        out.extend(devices.map(|d| device_subject(cx, d)));
        out
    }
}

fn grid_of(cfg: &cityos_engine::config::Config, (lon, lat): (f64, f64)) -> Option<String> {
    let t = &cfg.territory;
    let chain = t.locate(lon, lat).ok()?;
    chain
        .at(cityos_core::Level::Grid)
        .map(|id| t.region(id).code.clone())
}

fn device_subject(cx: &Cx, d: u32) -> Subject {
    let pos = cx.fx.device_pos[d as usize];
    Subject {
        key: cx.fx.device_ids[d as usize].clone(),
        device: Some(d),
        address: None,
        pos: Some(pos),
        // Found when needed (a `same area` count, the hit's place): locating costs.
        grid: None,
    }
}

/// A place named by an address. Where a device's row has that address it is that device's
/// place (one place, one key); else its key is a hash of the address, so that no address
/// is written where the pack's cases are kept.
fn address_subject(cx: &Cx, addr_dev: &HashMap<String, u32>, address: &str) -> Subject {
    let dev = addr_dev.get(address).copied();
    let pos = dev.map(|d| cx.fx.device_pos[d as usize]);
    Subject {
        key: match dev {
            Some(d) => cx.fx.device_ids[d as usize].clone(),
            None => format!("addr:{:016x}", fnv(address)),
        },
        device: dev,
        address: Some(address.to_string()),
        pos,
        grid: None,
    }
}

fn place_subject(lon: f64, lat: f64, grid: Option<String>) -> Subject {
    Subject {
        key: format!("at:{lon:.4},{lat:.4}"),
        device: None,
        address: None,
        pos: Some((lon, lat)),
        grid,
    }
}

/// FNV-1a: a hash that stays the same across builds and runs.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The subject a stored key names (at start, for the cases kept in the store); an
/// address's key gets its address back when the place is judged again.
fn subject_of_key(cx: &Cx, key: &str) -> Subject {
    if key.starts_with("addr:") {
        return Subject {
            key: key.to_string(),
            ..Default::default()
        };
    }
    if let Some(p) = key.strip_prefix("at:") {
        if let Some((lon, lat)) = p.split_once(',') {
            if let (Ok(lon), Ok(lat)) = (lon.parse(), lat.parse()) {
                return place_subject(lon, lat, None);
            }
        }
    }
    match cx.fx.by_id.get(key) {
        Some(&d) => device_subject(cx, d),
        None => Subject {
            key: key.to_string(),
            ..Default::default()
        },
    }
}

/// The values and levels of the indicators the enabled packs read (district-wide).
fn levels(st: &AppState, packs: &[Arc<Pack>]) -> Levels {
    let mut names: Vec<&str> = Vec::new();
    for p in packs {
        names.extend(p.condition.indicators());
        names.extend(p.indicators.iter().map(|r| r.name.as_str()));
        names.extend(p.triggers.iter().filter_map(|t| match t {
            Trigger::Level { indicator, .. } => Some(indicator.name.as_str()),
            _ => None,
        }));
        // Trends may read indicators too.
        names.extend(
            p.condition
                .windows()
                .into_iter()
                .map(|(m, _)| m)
                .filter(|m| st.0.cfg.indicators.iter().any(|i| i.code == *m)),
        );
    }
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| Some((n.to_string(), (st.0.ports.indicator)(st, n)?)))
        .collect()
}

fn live(st: &AppState) -> &Live {
    &st.0.scenarios.live
}

/// A batch of readings for the packs ([`crate::ports::Ports::scenario_readings`]): the
/// readings are gathered without a lock and judged when the batch settles.
struct Batch<'a> {
    st: &'a AppState,
    got: Vec<(u32, u16, f64, Millis)>,
}

impl crate::ports::ReadingBatch for Batch<'_> {
    #[inline]
    fn reading(&mut self, device: usize, metric: &str, value: f64, at: Millis) {
        let fx = &live(self.st).fixed;
        if let Some(m) = fx.metric_of(device as u32, metric) {
            self.got.push((device as u32, m, value, at));
        }
    }

    fn settle(self: Box<Self>) {
        if self.got.is_empty() {
            return;
        }
        let st = self.st;
        let enabled = st.0.scenarios.enabled();
        if enabled.is_empty() {
            return;
        }
        let lv = levels(st, &enabled);
        let l = live(st);
        let cx = Cx {
            fx: &l.fixed,
            levels: &lv,
            cfg: &st.0.cfg,
        };
        let mut rt = l.rt.lock().expect("scenario lock");
        rt.sync(&l.fixed, &enabled);
        // A device's readings of one instant (a lift's door, car and button) arrive
        // together: judged once, after all of them are in, before its next instant.
        let mut pending: Option<(u32, Millis)> = None;
        let mut ms: Vec<u16> = Vec::new();
        let mut changed = false;
        for (d, m, v, at) in self.got {
            if pending.is_some_and(|p| p != (d, at)) {
                let (pd, pat) = pending.expect("some");
                rt.judge_readings(&cx, pd, &ms, pat, changed);
                ms.clear();
                changed = false;
            }
            changed |= rt.keep_reading(&l.fixed, d, m, v, at);
            ms.push(m);
            pending = Some((d, at));
        }
        if let Some((pd, pat)) = pending {
            rt.judge_readings(&cx, pd, &ms, pat, changed);
        }
    }
}

/// Opens a batch of readings for the scenario packs.
pub fn readings(st: &AppState) -> Box<dyn crate::ports::ReadingBatch + '_> {
    Box::new(Batch {
        st,
        got: Vec::new(),
    })
}

/// A dataset was imported ([`crate::ports::Ports::dataset_imported`]): indexed when the
/// catalogue knows it; the packs with a `row` trigger on it judge each of its keys.
pub fn dataset_imported(
    st: &AppState,
    name: &str,
    rows: &[serde_json::Map<String, serde_json::Value>],
    now: Millis,
) {
    let l = live(st);
    let Some((key, columns)) = l.fixed.catalogue.datasets.get(name) else {
        return;
    };
    let table = Table::new(rows, key, columns);
    let enabled = st.0.scenarios.enabled();
    let lv = levels(st, &enabled);
    let cx = Cx {
        fx: &l.fixed,
        levels: &lv,
        cfg: &st.0.cfg,
    };
    let mut rt = l.rt.lock().expect("scenario lock");
    rt.sync(&l.fixed, &enabled);
    index(&mut rt, &l.fixed, name, table);
    let mut keys: Vec<String> = rt.tables[name].by_key.keys().cloned().collect();
    keys.sort();
    for p in &enabled {
        let triggered = p
            .triggers
            .iter()
            .any(|t| matches!(t, Trigger::Row { dataset } if dataset.name == name));
        if !triggered {
            continue;
        }
        for k in &keys {
            let s = match l.fixed.by_id.get(k) {
                Some(&d) => device_subject(&cx, d),
                None => address_subject(&cx, &rt.addr_dev, k),
            };
            rt.judge(&cx, &p.code, Who::Place(s), now);
        }
    }
}

/// Puts a dataset's table in place and learns where its addresses are.
fn index(rt: &mut Runtime, fx: &Fixed, name: &str, table: Table) {
    for (k, &i) in &table.by_key {
        if let (Some(&d), Some(Value::Str(a))) = (fx.by_id.get(k), table.rows[i].get("address")) {
            rt.addr_dev.insert(a.clone(), d);
        }
    }
    rt.tables.insert(name.to_string(), table);
    rt.gen += 1;
}

/// A case event committed by the engine (its event sink): created cases are remembered
/// for the packs' counts and judged at the next tick.
pub fn case_committed(st: &AppState, ev: &cityos_engine::store::CaseEvent) {
    if ev.kind != "created" {
        return;
    }
    let mut rt = live(st).rt.lock().expect("scenario lock");
    rt.pending_cases.push(SeenCase {
        at: ev.at,
        category: ev.category.clone(),
        lon: ev.lon,
        lat: ev.lat,
        grid: ev.grid.clone(),
    });
}

/// Time passes: cases committed since the last tick are counted and judged, schedules and
/// level triggers run, waiting `for` clauses and stand-downs are judged at `now`; then
/// the hits are acted on.
pub async fn tick(st: &AppState) -> Result<Vec<serde_json::Value>, ApiError> {
    let now = st.now();
    let enabled = st.0.scenarios.enabled();
    let lv = levels(st, &enabled);
    {
        let l = live(st);
        let cx = Cx {
            fx: &l.fixed,
            levels: &lv,
            cfg: &st.0.cfg,
        };
        let mut rt = l.rt.lock().expect("scenario lock");
        let rt = &mut *rt;
        rt.sync(&l.fixed, &enabled);
        // Indicators sampled (trends over indicators).
        for (name, keep) in rt.ind_keep.clone() {
            if let Some((v, _)) = lv.get(&name) {
                rt.indicators
                    .entry(name)
                    .or_insert_with(|| Series::new(now))
                    .push(now, *v, keep.max(cityos_core::time::MINUTE));
            }
        }
        // New cases.
        let fresh = std::mem::take(&mut rt.pending_cases);
        for c in &fresh {
            rt.cases.push_back(c.clone());
        }
        while rt.cases.len() > KEEP_CASES
            || rt
                .cases
                .front()
                .is_some_and(|c| c.at < now - rt.case_keep.max(cityos_core::time::DAY))
        {
            rt.cases.pop_front();
        }
        for p in &enabled {
            let cats: Vec<&str> = p
                .triggers
                .iter()
                .filter_map(|t| match t {
                    Trigger::Cases { categories } => Some(categories),
                    _ => None,
                })
                .flatten()
                .map(|r| r.name.as_str())
                .collect();
            for c in fresh.iter().filter(|c| cats.contains(&c.category.as_str())) {
                // One place per address: a case within SAME_ADDRESS_M of a place the pack
                // already knows is judged as that place.
                let near = rt.run(&p.code).and_then(|r| {
                    r.subjects
                        .values()
                        .filter(|s| s.s.key.starts_with("at:"))
                        .find(|s| {
                            s.s.pos.is_some_and(|q| {
                                super::facts::metres(q, (c.lon, c.lat))
                                    <= super::facts::SAME_ADDRESS_M
                            })
                        })
                        .map(|s| s.s.clone())
                });
                let s = near.unwrap_or_else(|| place_subject(c.lon, c.lat, c.grid.clone()));
                rt.judge(&cx, &p.code, Who::Place(s), now);
            }
            // Schedules and levels judge every subject seen; otherwise only those waiting.
            let due = p.triggers.iter().any(|t| match t {
                Trigger::Schedule { every } => rt.run(&p.code).is_some_and(|r| {
                    r.last_schedule == Millis::MIN || now - r.last_schedule >= *every
                }),
                Trigger::Level { indicator, at } => {
                    lv.get(&indicator.name).is_some_and(|(_, l)| l >= at)
                }
                _ => false,
            });
            if p.triggers
                .iter()
                .any(|t| matches!(t, Trigger::Schedule { .. }))
                && due
            {
                if let Some(r) = rt.run_mut(&p.code) {
                    if p.triggers.iter().any(|t| match t {
                        Trigger::Schedule { every } => {
                            r.last_schedule == Millis::MIN || now - r.last_schedule >= *every
                        }
                        _ => false,
                    }) {
                        r.last_schedule = now;
                    }
                }
            }
            let mut subjects: Vec<Subject> = if due {
                rt.subjects_of(&cx, &p.code)
            } else {
                rt.run(&p.code)
                    .map(|r| {
                        r.subjects
                            .values()
                            .filter(|s| s.held.pending() || s.clear_since.is_some())
                            .map(|s| s.s.clone())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            // In key order: the same inputs give the same hits in the same order.
            subjects.sort_by(|a, b| a.key.cmp(&b.key));
            for s in subjects {
                rt.judge(&cx, &p.code, Who::Place(s), now);
            }
        }
    }
    Ok(flush(st).await)
}

/// Acts on the queued hits and stand-downs: cases filed or noted, CAP published, hits
/// announced. Answers the hits. A failure is logged and leaves the rest to go on.
pub async fn flush(st: &AppState) -> Vec<serde_json::Value> {
    let acts = std::mem::take(&mut live(st).rt.lock().expect("scenario lock").queue);
    let mut out = Vec::new();
    for a in acts {
        let code = a.pack.code.clone();
        match act(st, a).await {
            Ok(v) => out.push(v),
            Err(e) => crate::http::log::event(
                "scenario_act_failed",
                &[("pack", &code), ("error", &e.detail)],
            ),
        }
    }
    out
}

fn lines_zh(st: &AppState, lines: &[String]) -> String {
    lines
        .iter()
        .map(|l| {
            // A line is named by its district department (e.g. 区市场监管局).
            let t = &st.0.cfg.territory;
            st.0.cfg
                .taxonomy
                .department_for(l, &t.region(t.root()).code)
                .map(|d| d.name_zh.clone())
                .unwrap_or_else(|| l.clone())
        })
        .collect::<Vec<_>>()
        .join("、")
}

/// Where a hit is, for people: the device, or the grid of a place (never an address).
fn place_label(st: &AppState, s: &Subject) -> String {
    if s.device.is_some() && !s.key.starts_with("addr:") {
        return s.key.clone();
    }
    let grid = s.grid.clone().or_else(|| grid_of(&st.0.cfg, s.pos?));
    match &grid {
        Some(g) => {
            st.0.cfg
                .territory
                .by_code(g)
                .map(|id| st.0.cfg.territory.region(id).name_zh.clone())
                .unwrap_or_else(|| g.clone())
        }
        None => "（位置见工单）".into(),
    }
}

fn region_of(st: &AppState, pos: Option<(f64, f64)>) -> String {
    let t = &st.0.cfg.territory;
    pos.and_then(|(lon, lat)| t.locate(lon, lat).ok())
        .and_then(|c| c.at(cityos_core::Level::Subdistrict))
        .map(|id| t.region(id).code.clone())
        .unwrap_or_else(|| t.region(t.root()).code.clone())
}

async fn act(st: &AppState, a: Act) -> Result<serde_json::Value, ApiError> {
    let now = st.now();
    let p = &a.pack;
    let pb = &p.playbook;
    // Devices inside one of the pack's fences share the fence as their place: one case
    // per fence, the other devices' hits are repeats on it.
    let fence = a.subject.pos.and_then(|pos| {
        p.fences
            .iter()
            .find(|f| cityos_core::scenario::expr::point_in_ring(pos, &f.ring))
    });
    let place_key = fence.map_or_else(|| a.key.clone(), |f| format!("fence:{}", f.name));
    let place = place_label(st, &a.subject);
    // How people read the place: the fence's name with the device.
    let where_ = match fence {
        Some(f) => format!("{}（{place}）", f.name_zh),
        None => place.clone(),
    };
    let place_case = {
        let rt = live(st).rt.lock().expect("scenario lock");
        rt.run(&p.code)
            .and_then(|r| r.place_cases.get(&place_key).copied())
    };
    let open = still_open(st, a.case.or(place_case)).await?;
    let (kind, number, case) = match (a.stand_down, open) {
        (false, Some(id)) => {
            let n = note_case(
                st,
                id,
                format!("【{}】再次触发（{where_}）：{}", p.name_zh, a.evidence),
                now,
            )
            .await?;
            ("repeat", n, Some(id))
        }
        (false, None) => match a.subject.pos {
            None => ("hit", None, None),
            Some((lon, lat)) => {
                let mut text = format!("【场景·{}】{where_}：{}。", p.name_zh, a.evidence);
                if !a.rows.is_empty() {
                    text.push_str(&format!("依据：{}。", a.rows));
                }
                text.push_str(&format!(
                    "预案 {} v{}：{}牵头，{}联动。",
                    p.code,
                    p.version,
                    lines_zh(st, std::slice::from_ref(&pb.lead.name)),
                    lines_zh(
                        st,
                        &pb.joint.iter().map(|r| r.name.clone()).collect::<Vec<_>>()
                    )
                ));
                let report = NewReport {
                    // A pack that joins datasets reports through the data end; one over
                    // devices alone through the sensing end.
                    channel: if p.datasets.is_empty() && a.subject.device.is_some() {
                        Channel::Sensor
                    } else {
                        Channel::Data
                    },
                    category: pb.category.name.clone(),
                    lon,
                    lat,
                    text,
                    // An address travels as the contact, which only command centres see.
                    contact: a.subject.address.clone(),
                    at: now,
                    media: Vec::new(),
                    priority: Some(pb.priority),
                    playbook: Some(Box::new(CasePlaybook {
                        scenario: p.code.clone(),
                        version: p.version.clone(),
                        lead: pb.lead.name.clone(),
                        joint: pb.joint.iter().map(|r| r.name.clone()).collect(),
                        limits: pb.deadlines.clone(),
                        checklist: pb
                            .checklist
                            .iter()
                            .map(|c| ChecklistRole {
                                role: c.role.clone(),
                                items: c
                                    .items
                                    .iter()
                                    .map(|t| ChecklistItem {
                                        text: t.clone(),
                                        done_at: None,
                                        done_by: None,
                                    })
                                    .collect(),
                            })
                            .collect(),
                    })),
                    suggestion: None,
                };
                let (id, number) = file_report(st, report).await?;
                let (rule, key) = (format!("scenario:{}", p.code), place_key.clone());
                st.0.reads
                    .write(move |s| s.put_rule_case(&rule, &key, Some(id)))
                    .await??;
                if !pb.notify.is_empty() {
                    let names: Vec<String> = pb.notify.iter().map(|r| r.name.clone()).collect();
                    note_case(st, id, format!("按预案通知：{}", lines_zh(st, &names)), now).await?;
                }
                ("hit", Some(number), Some(id))
            }
        },
        (true, Some(id)) => {
            let n = note_case(
                st,
                id,
                format!(
                    "【{}】条件已解除 {} 以上（{where_}）：{}。可按预案撤除。",
                    p.name_zh,
                    duration(pb.stand_down_after),
                    a.evidence
                ),
                now,
            )
            .await?;
            ("stand_down", n, Some(id))
        }
        (true, None) => ("stand_down", None, None),
    };
    // CAP: a public warning at the playbook's level; cancelled at the stand-down.
    // CAP: a hit (not a repeat on a case already warned about) at the playbook's level
    // publishes; a stand-down cancels what this place published.
    let published = match pb.cap {
        Some(category)
            if a.stand_down
                || (kind == "hit"
                    && pb
                        .cap_level
                        .is_none_or(|min| a.level.is_some_and(|l| l >= min))) =>
        {
            publish_cap(st, &a, category, &where_, now).await?
        }
        _ => None,
    };
    let mut l = live(st).rt.lock().expect("scenario lock");
    l.seq += 1;
    let hit = json!({
        "seq": l.seq,
        "pack": p.code,
        "name_zh": p.name_zh,
        "name_en": p.name_en,
        "kind": kind,
        "place": place,
        "fence": fence.map(|f| f.name_zh.clone()),
        "lon": a.subject.pos.map(|x| x.0),
        "lat": a.subject.pos.map(|x| x.1),
        "at": format_rfc3339(a.at),
        "case": number,
        "level": a.level.map(|x| x.as_str()),
        "cap": published,
        "text": format!("{}：{}", p.name_zh, a.evidence),
        "region": region_of(st, a.subject.pos),
        "officers_only": officers_only(st, p),
    });
    if let Some(r) = l.run_mut(&p.code) {
        if kind != "stand_down" {
            r.hits += 1;
        }
        r.last_hit = Some(hit.clone());
        if let Some(s) = r.subjects.get_mut(&a.key) {
            if case.is_some() {
                s.case = case;
            }
        }
        if let (Some(id), true) = (case, fence.is_some()) {
            r.place_cases.insert(place_key.clone(), id);
        }
    }
    l.hits.push_front(hit.clone());
    l.hits.truncate(KEEP_HITS);
    drop(l);
    st.0.bus.publish(crate::bus::BusEvent::Vital(Arc::new(
        crate::bus::VitalEvent {
            kind: "scenario",
            region: hit["region"].as_str().unwrap_or_default().to_string(),
            data: hit.to_string(),
            officers_only: officers_only(st, p),
        },
    )));
    Ok(hit)
}

/// Publishes (or, at the stand-down, cancels) the CAP warning of a hit; answers its
/// identifier. The area is the fence the place lies in, else a square of about 100 m.
async fn publish_cap(
    st: &AppState,
    a: &Act,
    category: &'static str,
    place: &str,
    now: Millis,
) -> Result<Option<String>, ApiError> {
    use cityos_core::cap::{CapAlert, MsgType, Reference};
    let p = &a.pack;
    let earlier: Vec<(String, Millis)> = {
        let rt = live(st).rt.lock().expect("scenario lock");
        rt.run(&p.code)
            .and_then(|r| r.subjects.get(&a.key))
            .map(|s| s.cap.clone())
            .unwrap_or_default()
    };
    let msg_type = match (a.stand_down, earlier.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => MsgType::Cancel,
        (false, true) => MsgType::Alert,
        (false, false) => MsgType::Update,
    };
    let fp = format!("scenario:{}:{}", p.code, a.key);
    let identifier =
        cityos_core::cap::identifier(&format!("{fp}-{now}-{}", msg_type.as_str().to_lowercase()));
    let t = &st.0.cfg.territory;
    let sender = cityos_core::cap::sender(&t.region(t.root()).code);
    let polygon = match a.subject.pos {
        Some(pos) => p
            .fences
            .iter()
            .find(|f| cityos_core::scenario::expr::point_in_ring(pos, &f.ring))
            .map(|f| f.ring.clone())
            .unwrap_or_else(|| {
                let (x, y, d) = (pos.0, pos.1, 0.0005);
                vec![
                    [x - d, y - d],
                    [x + d, y - d],
                    [x + d, y + d],
                    [x - d, y + d],
                    [x - d, y - d],
                ]
            }),
        None => Vec::new(),
    };
    let level = a.level.unwrap_or(WarnLevel::Orange);
    let (headline, description) = match msg_type {
        MsgType::Cancel => (
            format!("{place}{}预警解除", p.name_zh),
            format!("{place}{}已解除。", p.name_zh),
        ),
        _ => (
            format!("{place}{}{}预警", p.name_zh, level.name_zh()),
            format!("{}：{}", p.name_zh, a.evidence),
        ),
    };
    let alert = CapAlert {
        identifier: identifier.clone(),
        sender: sender.clone(),
        sent: now,
        msg_type,
        references: earlier
            .iter()
            .map(|(id, sent)| Reference {
                sender: sender.clone(),
                identifier: id.clone(),
                sent: *sent,
            })
            .collect(),
        category,
        event: p.name_zh.clone(),
        level,
        headline: headline.clone(),
        description,
        instruction: match msg_type {
            MsgType::Cancel => String::new(),
            _ => "请远离该区域，听从现场工作人员指挥，关注官方发布的信息。".into(),
        },
        sender_name: format!("{}城市运行管理中心", t.region(t.root()).name_zh),
        area_desc: place.to_string(),
        polygon,
        expires: (msg_type != MsgType::Cancel).then_some(now + 6 * cityos_core::time::HOUR),
    };
    let m = cityos_engine::store::CapMessage {
        identifier: identifier.clone(),
        fingerprint: fp,
        msg_type: msg_type.as_str().to_string(),
        sent: now,
        headline,
        xml: alert.to_xml(),
    };
    st.0.reads.write(move |s| s.put_cap(&m)).await??;
    let mut rt = live(st).rt.lock().expect("scenario lock");
    if let Some(s) = rt.run_mut(&p.code).and_then(|r| r.subjects.get_mut(&a.key)) {
        if msg_type == MsgType::Cancel {
            s.cap.clear();
        } else {
            s.cap.push((identifier.clone(), now));
        }
    }
    Ok(Some(identifier))
}

/// Puts back what the store keeps (at start): the datasets the packs join, and each
/// pack's open case per place (firing, so that a condition still holding files no
/// second case).
pub fn restore(
    st: &AppState,
    store: &mut (impl cityos_engine::DatasetStore + ?Sized),
) -> Result<(), cityos_engine::StoreError> {
    let l = live(st);
    let enabled = st.0.scenarios.enabled();
    let lv = Levels::default();
    let cx = Cx {
        fx: &l.fixed,
        levels: &lv,
        cfg: &st.0.cfg,
    };
    let mut rt = l.rt.lock().expect("scenario lock");
    rt.sync(&l.fixed, &enabled);
    for d in store.datasets()? {
        if let Some((key, columns)) = l.fixed.catalogue.datasets.get(&d.name) {
            let rows: Vec<serde_json::Map<String, serde_json::Value>> =
                serde_json::from_str(&d.rows).unwrap_or_default();
            index(&mut rt, &l.fixed, &d.name, Table::new(&rows, key, columns));
        }
    }
    let codes: Vec<String> = rt.run_ix.keys().cloned().collect();
    for code in codes {
        for (key, case) in store.rule_cases(&format!("scenario:{code}"))? {
            if key.starts_with("fence:") {
                if let Some(r) = rt.run_mut(&code) {
                    r.place_cases.insert(key, case);
                }
                continue;
            }
            let s = subject_of_key(&cx, &key);
            if let Some(r) = rt.run_mut(&code) {
                let dev = s.device.filter(|d| l.fixed.device_ids[*d as usize] == key);
                let subj = Subj {
                    s,
                    firing: true,
                    case: Some(case),
                    ..Default::default()
                };
                // A device's place is found by its index on the hot path.
                let i = match dev {
                    Some(d) => r.subjects.device(d, &key),
                    None => r.subjects.entry(&key),
                };
                r.subjects.all[i] = subj;
            }
        }
    }
    Ok(())
}

/// Are a pack's hits for the command centres' officers only? Those of a pack whose case
/// category is not public (a welfare check: where an elder lives alone, and that they do,
/// is personal data).
fn officers_only(st: &AppState, p: &Pack) -> bool {
    st.0.cfg
        .taxonomy
        .category(&p.playbook.category.name)
        .is_some_and(|c| !c.public)
}

/// The hits a caller may see (newest first): all, or those of one pack; a caller confined
/// to a region sees those inside it; only officers see a non-public pack's hits
/// (`officer`).
pub fn hits(
    st: &AppState,
    pack: Option<&str>,
    scope: Option<&str>,
    officer: bool,
    limit: usize,
) -> Vec<serde_json::Value> {
    let rt = live(st).rt.lock().expect("scenario lock");
    rt.hits
        .iter()
        .filter(|h| pack.is_none_or(|p| h["pack"] == p))
        .filter(|h| officer || h["officers_only"] != true)
        .filter(|h| {
            scope.is_none_or(|s| {
                // Region codes nest by prefix: a sub-district's hits are seen in it, in
                // its communities and grids, and by the district.
                h["region"]
                    .as_str()
                    .is_some_and(|r| s.starts_with(r) || r.starts_with(s))
            })
        })
        .take(limit)
        .cloned()
        .collect()
}

/// A pack's hit count since start and its last hit.
pub fn pack_hits(st: &AppState, code: &str) -> (u64, Option<serde_json::Value>) {
    let rt = live(st).rt.lock().expect("scenario lock");
    rt.run(code)
        .map(|r| (r.hits, r.last_hit.clone()))
        .unwrap_or((0, None))
}
