//! The precision-assistance room (精准救助, "政策找人", issue 15): the livelihood data
//! pool on the server. The declared sources (`data/xuhui/assistance/sources.toml`) are
//! imported one file at a time; each file is pseudonymised first (`pool::pseudonymise`:
//! every person and household id a keyed BLAKE2b hash under the deployment's pool key,
//! text columns emptied) and that copy is what the pool fuses and what the store keeps —
//! the pool is replayed from it on start. The membership source's personal columns (ID
//! number, name, address) are kept apart by person hash (`person` rows) and shown only
//! through the purpose-bound, audited view.
//!
//! After each import the touched households are re-evaluated against the rulebook
//! (`policies.toml`); a household newly found for a policy it does not receive opens one
//! assistance case (category `assistance_home_visit`, not public, routed to the
//! sub-district's civil-affairs line — the 社区救助顾问) carrying the explanation (the
//! keyed household reference, members by position, relation and age, the facts with their
//! source and import — never a name, id or birth date), the policies and the home-visit
//! deadline. The visit's outcome (enrolled, not eligible with its reason, declined, could
//! not reach) is recorded by the adviser; it closes the room's case and hands the engine's
//! case (acknowledged, handled) to the sub-district centre to verify and close. A
//! household is not raised again for the same policy within `reraise_after_days` unless
//! the facts the policy read changed.
//!
//! Who sees what: the adviser (a handler of the civil-affairs department of the
//! household's sub-district) and the district civil-affairs bureau see personal values
//! after stating a purpose (each view written to the audit trail: who, whose household,
//! when, why); officers see masked values (`cityos_core::privacy::mask_field`); analysts
//! only counts by sub-district and policy with cells under 5 households suppressed.
//!
//! Architecture Invariant: no raw person or household id, name, ID number, phone or
//! address in the pool, the case text, logs, or any answer to a caller without the right.

pub mod api;
pub mod demo;

use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use cityos_core::assistance::eval::Hardship;
use cityos_core::assistance::pool::{blank_lines, hash_hex, pseudonymise, ImportReport};
use cityos_core::assistance::{
    evaluate, evaluate_some, explain, parse_declarations, parse_rulebook, problems_text,
    Declarations, Evaluation, IdHash, IdKey, Pool, Rulebook,
};
use cityos_core::case::Channel;
use cityos_core::time::{local_date, Date, Millis, DAY};
use cityos_core::workflow::NewReport;
use cityos_core::Role;
use cityos_engine::store::AssistanceRow;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

pub const SOURCES_TOML: &str = include_str!("../../../../data/xuhui/assistance/sources.toml");
pub const POLICIES_TOML: &str = include_str!("../../../../data/xuhui/assistance/policies.toml");

/// The case category of an assistance home visit.
pub const CATEGORY: &str = "assistance_home_visit";
/// The line the adviser works in.
pub const LINE: &str = "civil_affairs";
/// The smallest count an analyst sees; smaller cells are suppressed.
pub use cityos_core::privacy::MIN_CELL;
/// Visit outcomes.
pub const OUTCOMES: [&str; 4] = ["enrolled", "not_eligible", "declined", "unreachable"];

/// One member's personal columns (the membership source's), by person hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Person {
    pub household: String,
    pub id_number: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub address: String,
}

/// The recorded home visit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Visit {
    pub outcome: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub note: String,
    pub by: String,
    pub at: Millis,
}

/// An assistance case as the room keeps it (the engine keeps its workflow).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AssistCase {
    pub number: String,
    /// The household's keyed hash (hex).
    pub household: String,
    pub policies: Vec<String>,
    pub subdistrict: String,
    pub community: String,
    pub hardship: String,
    pub score: u32,
    /// One explanation per policy (as `assistance::explain` gives it).
    pub explanations: Vec<Value>,
    pub raised_at: Millis,
    /// The home visit is due by then.
    pub visit_by: Millis,
    #[serde(default)]
    pub visit: Option<Visit>,
}

/// When a household was last raised for a policy, on which facts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Raised {
    pub fingerprint: String,
    pub at: Millis,
    pub case: String,
}

/// The room's state in memory.
pub struct Room {
    pub loaded: bool,
    pub decl: Declarations,
    pub book: Rulebook,
    pub pool: Pool,
    pub ev: Option<Evaluation>,
    pub imports: usize,
    /// The id of the next stored import: one more than the largest stored (not a count
    /// of those read back, which an unreadable row would make collide).
    pub next_import: u64,
    /// (source, label, as_of, rows, accepted) of each import.
    pub import_log: Vec<(String, String, String, usize, usize)>,
    pub persons: HashMap<IdHash, Person>,
    pub cases: BTreeMap<String, AssistCase>,
    /// By `household:policy`.
    pub raised: HashMap<String, Raised>,
    /// Households touched by imports held back (`hold`) and not yet raised.
    pub pending: Vec<u32>,
}

/// The room.
pub struct Assistance {
    key: std::sync::RwLock<Option<IdKey>>,
    room: tokio::sync::Mutex<Option<Room>>,
}

impl Default for Assistance {
    fn default() -> Self {
        Assistance {
            key: std::sync::RwLock::new(None),
            room: tokio::sync::Mutex::new(None),
        }
    }
}

fn shipped() -> (Declarations, Rulebook) {
    let decl = parse_declarations(SOURCES_TOML)
        .unwrap_or_else(|p| panic!("the shipped sources.toml is refused: {}", problems_text(&p)));
    let book = parse_rulebook(POLICIES_TOML, &decl).unwrap_or_else(|p| {
        panic!(
            "the shipped policies.toml is refused: {}",
            problems_text(&p)
        )
    });
    (decl, book)
}

impl Assistance {
    /// Sets the pool key (the deployment's secret; `serve --assistance-key-file`).
    pub fn set_key(&self, key: IdKey) {
        *self.key.write().expect("key lock") = Some(key);
    }

    /// Forgets the pool key (a service started without one; for tests).
    pub fn unset_key(&self) {
        *self.key.write().expect("key lock") = None;
    }

    fn key(&self) -> Result<IdKey, ApiError> {
        self.key.read().expect("key lock").clone().ok_or_else(|| {
            ApiError::new(
                Problem::Unavailable,
                "the assistance pool has no key: start serve with --assistance-key-file (or CITYOS_ASSISTANCE_KEY_FILE) / 精准救助数据池未配置密钥",
            )
        })
    }
}

/// A room row.
fn row(kind: &str, id: &str, body: &impl Serialize, at: Millis) -> AssistanceRow {
    AssistanceRow {
        kind: kind.into(),
        id: id.into(),
        body: serde_json::to_string(body).expect("a row serialises"),
        at,
    }
}

#[derive(Serialize, Deserialize)]
struct StoredImport {
    source: String,
    label: String,
    as_of: String,
    csv: String,
}

async fn write(st: &AppState, rows: Vec<AssistanceRow>) -> Result<(), ApiError> {
    if rows.is_empty() {
        return Ok(());
    }
    st.0.reads
        .write(move |s| s.record_assistance(&rows))
        .await?
        .map_err(ApiError::from)
}

/// The constant whose keyed hash is kept as the pool key's check value.
const KEY_CHECK: &str = "cityos assistance pool key check v1";

/// Checks the pool key against the check value in the store (a keyed hash of a
/// constant, written with the first use of a key): a different key would split every
/// household from its earlier imports, so it is refused with a clear error.
pub async fn check_key(st: &AppState) -> Result<(), ApiError> {
    let key = st.0.assistance.key()?;
    let mine = hash_hex(key.hash(cityos_core::assistance::IdKind::Person, KEY_CHECK));
    let stored =
        st.0.reads
            .run(|s| s.assistance_rows("keycheck"))
            .await?
            .map_err(ApiError::from)?;
    match stored.iter().find(|r| r.id == "pool") {
        Some(r) if r.body != serde_json::to_string(&mine).expect("a string serialises") => {
            Err(ApiError::new(
                Problem::Unavailable,
                "the assistance pool key does not match the key the pool was built with (its check value differs): start serve with the pool's own --assistance-key-file / 精准救助数据池密钥与原密钥不符",
            ))
        }
        Some(_) => Ok(()),
        None => write(st, vec![row("keycheck", "pool", &mine, st.now())]).await,
    }
}

/// The room, loaded from the store (the pool replayed from its pseudonymised imports)
/// when first used.
pub async fn room(st: &AppState) -> Result<tokio::sync::MappedMutexGuard<'_, Room>, ApiError> {
    let key = st.0.assistance.key()?;
    let mut g = st.0.assistance.room.lock().await;
    if g.as_ref().is_none_or(|r| !r.loaded) {
        check_key(st).await?;
        let (imports, persons, cases, raised) =
            st.0.reads
                .run(|s| -> Result<_, cityos_engine::StoreError> {
                    Ok((
                        s.assistance_rows("import")?,
                        s.assistance_rows("person")?,
                        s.assistance_rows("case")?,
                        s.assistance_rows("raised")?,
                    ))
                })
                .await?
                .map_err(ApiError::from)?;
        let (decl, book) = shipped();
        let mut pool = Pool::new(&decl, key);
        pool.set_prehashed(true);
        let mut r = Room {
            loaded: true,
            decl,
            book,
            pool,
            ev: None,
            imports: 0,
            next_import: 0,
            import_log: Vec::new(),
            persons: HashMap::new(),
            cases: BTreeMap::new(),
            raised: HashMap::new(),
            pending: Vec::new(),
        };
        let mut as_of: Option<Date> = None;
        for i in imports {
            if let Ok(n) = i.id.parse::<u64>() {
                r.next_import = r.next_import.max(n + 1);
            }
            let Ok(x) = serde_json::from_str::<StoredImport>(&i.body) else {
                continue;
            };
            let (Some(src), Some(d)) = (r.decl.source(&x.source), Date::parse(&x.as_of)) else {
                continue;
            };
            if let Ok(rep) = r.pool.import_csv(&r.decl, src, &x.label, d, &x.csv, false) {
                r.import_log
                    .push((x.source, x.label, x.as_of, rep.rows, rep.accepted));
            }
            as_of = as_of.max(Some(d));
            r.imports += 1;
        }
        for p in persons {
            if let (Ok(h), Ok(body)) = (
                u128::from_str_radix(&p.id, 16),
                serde_json::from_str::<Person>(&p.body),
            ) {
                r.persons.insert(h, body);
            }
        }
        for c in cases {
            if let Ok(c) = serde_json::from_str::<AssistCase>(&c.body) {
                r.cases.insert(c.number.clone(), c);
            }
        }
        for x in raised {
            if let Ok(b) = serde_json::from_str::<Raised>(&x.body) {
                r.raised.insert(x.id, b);
            }
        }
        if let Some(d) = as_of {
            r.ev = Some(evaluate(&r.decl, &r.pool, &r.book, d));
        }
        *g = Some(r);
    }
    Ok(tokio::sync::MutexGuard::map(g, |r| {
        r.as_mut().expect("the room was just loaded")
    }))
}

/// What an import did, for the answer (problems by line, never a row's values).
pub fn report_json(r: &ImportReport, opened: &[String]) -> Value {
    json!({
        "source": r.source,
        "label": r.label,
        "rows": r.rows,
        "accepted": r.accepted,
        "refused": r.problem_count,
        "problems": r.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "households_touched": r.touched.len(),
        "cases_opened": opened,
    })
}

/// Imports one source file as of a date: pseudonymised, fused, kept; the touched
/// households re-evaluated and — unless `hold` (more files of one delivery follow) — new
/// candidates among every household touched since the last raise opened as cases.
/// Answers the report.
pub async fn import(
    st: &AppState,
    source: &str,
    label: &str,
    as_of: Date,
    text: &str,
    hold: bool,
    now: Millis,
) -> Result<Value, ApiError> {
    let key = st.0.assistance.key()?;
    let mut g = room(st).await?;
    let r = &mut *g;
    let src = r.decl.source(source).ok_or_else(|| {
        ApiError::new(
            Problem::NotFound,
            format!(
                "source {source:?} is not declared (one of {})",
                r.decl
                    .sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    if as_of > local_date(now) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("as_of: {as_of} is in the future"),
        ));
    }
    let bad = |m: String| ApiError::new(Problem::InvalidDataset, m);
    let (csv, personal) = pseudonymise(&r.decl, src, &key, text).map_err(bad)?;
    let rep = r
        .pool
        .import_csv(&r.decl, src, label, as_of, &csv, true)
        .map_err(bad)?;
    // A refused row keeps nothing (it is refused again on replay), and its personal
    // columns are not kept either: only the rows the import accepted.
    let csv = blank_lines(&csv, &rep.refused_lines);
    let refused: std::collections::HashSet<usize> = rep.refused_lines.iter().copied().collect();
    let id = r.next_import;
    let mut rows = vec![row(
        "import",
        &format!("{id:08}"),
        &StoredImport {
            source: source.into(),
            label: label.into(),
            as_of: as_of.to_string(),
            csv,
        },
        now,
    )];
    let mut people = Vec::new();
    for p in personal.into_iter().filter(|p| !refused.contains(&p.line)) {
        let get = |c: &str| {
            p.columns
                .iter()
                .find(|(n, _)| n == c)
                .map_or(String::new(), |(_, v)| v.clone())
        };
        let body = Person {
            household: hash_hex(p.household),
            id_number: p.id.clone(),
            name: get("name"),
            address: get("address"),
        };
        rows.push(row("person", &hash_hex(p.person), &body, now));
        people.push((p.person, body));
    }
    if let Err(e) = write(st, rows).await {
        // The pool already holds the file: reload from the store next time.
        r.loaded = false;
        return Err(e);
    }
    r.imports += 1;
    r.next_import = id + 1;
    r.import_log.push((
        source.into(),
        label.into(),
        as_of.to_string(),
        rep.rows,
        rep.accepted,
    ));
    r.persons.extend(people);
    let mut touched = rep.touched.clone();
    match &mut r.ev {
        Some(ev) if ev.as_of >= as_of => {
            touched.sort_unstable();
            touched.dedup();
            evaluate_some(&r.decl, &r.pool, &r.book, ev, &touched);
        }
        _ => {
            let ev = evaluate(&r.decl, &r.pool, &r.book, as_of);
            touched = (0..r.pool.households() as u32).collect();
            r.ev = Some(ev);
        }
    }
    r.pending.extend(touched);
    let mut raise_failed = None;
    let opened = if hold {
        Vec::new()
    } else {
        // Pending households stay pending until they are raised: a raise failing
        // midway is taken up by the next import (nothing is raised twice: each case
        // is filed once per key, see `file_once`).
        r.pending.sort_unstable();
        r.pending.dedup();
        let all = r.pending.clone();
        match raise(st, r, &all, now).await {
            Ok(opened) => {
                r.pending.clear();
                opened
            }
            Err(e) => {
                // The file is kept: the import stands (and is audited); the households
                // wait for the next import to be raised.
                raise_failed = Some(e.detail.clone());
                crate::http::log::event("assistance_raise_failed", &[("error", &e.detail)]);
                Vec::new()
            }
        }
    };
    crate::http::log::event(
        "assistance_import",
        &[
            ("source", &source),
            ("rows", &rep.rows),
            ("refused", &rep.problem_count),
            ("cases", &opened.len()),
        ],
    );
    let mut v = report_json(&rep, &opened);
    if let Some(e) = raise_failed {
        v["raise_failed"] = json!(format!(
            "{e}; the households found wait for the next import / 个案生成失败，下次导入时重试"
        ));
    }
    Ok(v)
}

/// The sub-district the household lives in now (its members' actual community's).
pub fn household_subdistrict(st: &AppState, r: &Room, household: &str) -> Option<String> {
    let h = u128::from_str_radix(household, 16)
        .ok()
        .and_then(|h| r.pool.household_of_hash(h))?;
    let t = &st.0.cfg.territory;
    let c = t.by_code(&community_of(r, h)?)?;
    t.region(c).parent.map(|p| t.region(p).code.clone())
}

fn param(r: &Room, name: &str, default: f64) -> f64 {
    r.book.params.get(name).copied().unwrap_or(default)
}

/// A fingerprint of the facts an explanation read (member, field, value), so a household
/// is raised again before its period only when they changed.
fn fingerprint(x: &Value) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |s: &str| {
        for b in s.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for part in ["when", "rule_out"] {
        for c in x[part].as_array().into_iter().flatten() {
            for f in c["facts"].as_array().into_iter().flatten() {
                eat(&f["member"]["index"].to_string());
                eat(f["field"].as_str().unwrap_or(""));
                eat(f["value"].as_str().unwrap_or(""));
            }
        }
    }
    format!("{h:016x}")
}

/// The household's community (its members' actual community, the head's first).
fn community_of(r: &Room, hh: u32) -> Option<String> {
    let f = r.decl.field("actual_community")?;
    let rel = r.decl.field("relation");
    let mut members = r.pool.members[hh as usize].clone();
    members.sort_by_key(|m| {
        rel.and_then(|rf| r.pool.resolve(&r.decl, rf, *m))
            .map_or(9, |c| c.value)
    });
    members
        .iter()
        .find_map(|m| r.pool.resolve(&r.decl, f, *m))
        .map(|c| r.pool.tag(c.value).to_string())
}

/// Files the engine's case of one raise at most once: keyed by the household, its
/// policies and the cases it was last raised with, through the engine's idempotency
/// record (written in the same transaction as the case). A raise that failed after the
/// engine opened the case (the room's rows not written) finds that case again instead of
/// opening another.
async fn file_once(
    st: &AppState,
    raised: &HashMap<String, Raised>,
    hh: &str,
    policies: &[(String, String)],
    report: NewReport,
    now: Millis,
) -> Result<String, ApiError> {
    let before: Vec<String> = policies
        .iter()
        .map(|(c, _)| {
            let last = raised
                .get(&format!("{hh}:{c}"))
                .map_or("-", |m| m.case.as_str());
            format!("{c}={last}")
        })
        .collect();
    let key = format!("assistance-raise|{hh}|{}", before.join(","));
    Ok(crate::cases::file_report_once(st, report, &key, now)
        .await?
        .1)
}

/// Opens a case for each household among `households` newly found for policies it does
/// not receive. Answers the case numbers.
async fn raise(
    st: &AppState,
    r: &mut Room,
    households: &[u32],
    now: Millis,
) -> Result<Vec<String>, ApiError> {
    let Some(ev) = r.ev.as_ref() else {
        return Ok(Vec::new());
    };
    let as_of = ev.as_of;
    let period = (param(r, "reraise_after_days", 180.0) * DAY as f64) as Millis;
    let visit_days = param(r, "visit_days", 10.0) as i64;
    let t = &st.0.cfg.territory;
    let mut opened = Vec::new();
    let mut due = Vec::new();
    for &h in households {
        let res = ev.results[h as usize];
        if res.candidates == 0 {
            continue;
        }
        let hh = hash_hex(r.pool.household_hash[h as usize]);
        let mut policies = Vec::new();
        let mut explanations = Vec::new();
        for (k, p) in r.book.policies.iter().enumerate() {
            if res.candidates & (1 << k) == 0 {
                continue;
            }
            let open = r
                .cases
                .values()
                .any(|c| c.household == hh && c.visit.is_none() && c.policies.contains(&p.code));
            if open {
                continue;
            }
            let x = serde_json::to_value(explain(&r.decl, &r.pool, &r.book, as_of, h, k))
                .unwrap_or(Value::Null);
            let fp = fingerprint(&x);
            if let Some(before) = r.raised.get(&format!("{hh}:{}", p.code)) {
                if before.fingerprint == fp && now - before.at < period {
                    continue;
                }
            }
            policies.push((p.code.clone(), fp));
            explanations.push(x);
        }
        if policies.is_empty() {
            continue;
        }
        let Some(community) = community_of(r, h) else {
            continue;
        };
        let Some(cid) = t.by_code(&community) else {
            continue;
        };
        let subdistrict = t
            .region(cid)
            .parent
            .map(|p| t.region(p).code.clone())
            .unwrap_or_default();
        due.push((
            h,
            hh,
            policies,
            explanations,
            community,
            cid,
            subdistrict,
            res,
        ));
    }
    for (_h, hh, policies, explanations, community, cid, subdistrict, res) in due {
        let [lon, lat] = t.interior_point(cid);
        let hardship = match res.hardship {
            Hardship::High => "high",
            Hardship::Medium => "medium",
            Hardship::Low => "low",
        };
        // The engine's case text is generic: which policies and how hard the household's
        // situation is stay in the room (for those allowed), not in the case log.
        let text = format!(
            "精准救助上门核实：数据池发现住户 {} 可能有尚未享受的救助，请社区救助顾问在 {} 个工作日内上门核实并记录结果。详情见精准救助页面。",
            &hh[..12],
            visit_days,
        );
        let report = NewReport {
            channel: Channel::Data,
            category: CATEGORY.into(),
            lon,
            lat,
            text,
            contact: None,
            at: now,
            media: vec![],
            priority: None,
            playbook: None,
            suggestion: None,
        };
        let number = file_once(st, &r.raised, &hh, &policies, report, now).await?;
        let c = AssistCase {
            number: number.clone(),
            household: hh.clone(),
            policies: policies.iter().map(|(c, _)| c.clone()).collect(),
            subdistrict,
            community,
            hardship: hardship.into(),
            score: res.score(),
            explanations,
            raised_at: now,
            visit_by: now + visit_days * DAY,
            visit: None,
        };
        let mut rows = vec![row("case", &number, &c, now)];
        let mut marks = Vec::new();
        for (code, fp) in &policies {
            let m = Raised {
                fingerprint: fp.clone(),
                at: now,
                case: number.clone(),
            };
            rows.push(row("raised", &format!("{hh}:{code}"), &m, now));
            marks.push((format!("{hh}:{code}"), m));
        }
        write(st, rows).await?;
        r.raised.extend(marks);
        r.cases.insert(number.clone(), c);
        opened.push(number);
    }
    Ok(opened)
}

/// How the caller stands to an assistance case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The adviser of the household's sub-district, or the district civil-affairs bureau:
    /// personal values after stating a purpose; records the visit.
    Adviser,
    /// Officers in scope: masked values only.
    Masked,
    None,
}

/// The caller's standing toward a case of `subdistrict`.
pub fn standing(st: &AppState, p: &Principal, subdistrict: &str) -> Standing {
    let tax = &st.0.cfg.taxonomy;
    match p.role {
        Role::Handler => {
            let d = p.department.as_deref().and_then(|d| tax.department(d));
            match d {
                Some(d)
                    if d.line == LINE
                        && (d.level == cityos_core::Level::District || d.region == subdistrict) =>
                {
                    Standing::Adviser
                }
                _ => Standing::None,
            }
        }
        Role::DistrictOfficer | Role::SubdistrictOfficer => {
            let in_scope = p
                .scope
                .as_deref()
                .is_none_or(|s| subdistrict.starts_with(s) || s == st.district_code());
            if in_scope && (p.role == Role::DistrictOfficer || p.scope.is_some()) {
                Standing::Masked
            } else {
                Standing::None
            }
        }
        _ => Standing::None,
    }
}

/// May the caller import source files? The district civil-affairs bureau and
/// administrators.
pub fn may_import(st: &AppState, p: &Principal) -> bool {
    match p.role {
        Role::Admin => true,
        Role::Handler => p
            .department
            .as_deref()
            .and_then(|d| st.0.cfg.taxonomy.department(d))
            .is_some_and(|d| d.line == LINE && d.level == cityos_core::Level::District),
        _ => false,
    }
}

impl AppState {
    /// The district's region code.
    pub fn district_code(&self) -> String {
        let t = &self.0.cfg.territory;
        t.region(t.root()).code.clone()
    }
}
