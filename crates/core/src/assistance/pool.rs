//! Fusion: the livelihood data pool. Persons and households are known only by keyed hashes;
//! each person belongs to the household the membership source (户籍/实有人口) gives. Each
//! field of each person or household holds one claim per source (value, source, import);
//! the value read is the claim of the source first in the field's precedence, and the
//! overruled claims stay for the explanation (a conflict). A later row of the same source
//! replaces that source's claim, so importing changed rows and re-evaluating the households
//! they touch gives what importing everything afresh would.

use super::keyed::{IdHash, IdKey, IdKind};
use super::sources::{ColType, Declarations, FieldType, Level};
use crate::time::Date;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// No household (a person whose membership row has not come yet cannot exist: only the
/// membership source creates persons, so this marks nothing in practice).
pub const NONE: u32 = u32::MAX;

/// Hasher for keys that are already uniformly distributed (keyed hashes).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u128(&mut self, i: u128) {
        self.0 = (i as u64) ^ ((i >> 64) as u64);
    }
}

type IdMap = HashMap<IdHash, u32, BuildHasherDefault<IdHasher>>;

/// One source's value of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub value: i32,
    pub source: u8,
    pub import: u16,
}

/// The claims on one field of one person or household.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Cell {
    #[default]
    Empty,
    One(Claim),
    Many(Box<Vec<Claim>>),
}

impl Cell {
    pub fn claims(&self) -> &[Claim] {
        match self {
            Cell::Empty => &[],
            Cell::One(c) => std::slice::from_ref(c),
            Cell::Many(v) => v,
        }
    }
    fn put(&mut self, c: Claim, union: bool) {
        match self {
            Cell::Empty => *self = Cell::One(c),
            Cell::One(o) if o.source == c.source => {
                let value = if union { o.value | c.value } else { c.value };
                *o = Claim { value, ..c };
            }
            Cell::One(o) => *self = Cell::Many(Box::new(vec![*o, c])),
            Cell::Many(v) => match v.iter_mut().find(|o| o.source == c.source) {
                Some(o) => {
                    let value = if union { o.value | c.value } else { c.value };
                    *o = Claim { value, ..c };
                }
                None => v.push(c),
            },
        }
    }
}

/// One month's value of a monthly field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MonthVal {
    /// year × 12 + month − 1.
    pub month: i32,
    pub value: i32,
    pub import: u16,
}

#[derive(Debug, Clone)]
enum Store {
    Plain(Vec<Cell>),
    Monthly(Vec<Vec<MonthVal>>),
}

/// One import of one source: its label (a batch name, a file) and the date it is as of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub source: usize,
    pub label: String,
    pub as_of: Date,
}

/// A row refused, by line (the header is line 1). Never holds the row's values: they may
/// be personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RowProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// What one import did.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub source: String,
    pub label: String,
    pub rows: usize,
    pub accepted: usize,
    /// The first [`MAX_PROBLEMS`] problems; `problem_count` counts them all.
    pub problems: Vec<RowProblem>,
    pub problem_count: usize,
    /// Households whose facts or members changed (sorted, when asked for).
    pub touched: Vec<u32>,
    /// The line number of every refused row (all of them, in order).
    pub refused_lines: Vec<usize>,
}

pub const MAX_PROBLEMS: usize = 200;

/// `YYYY-MM` as year × 12 + month − 1.
pub fn parse_month(s: &str) -> Option<i32> {
    let (y, m) = s.trim().split_once('-')?;
    let (y, m): (i32, i32) = (y.parse().ok()?, m.parse().ok()?);
    ((1..=12).contains(&m) && (1900..=9999).contains(&y)).then_some(y * 12 + m - 1)
}

pub fn month_of(d: Date) -> i32 {
    d.year * 12 + i32::from(d.month) - 1
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "true" | "TRUE" | "y" | "yes" | "是" => Some(true),
        "0" | "false" | "FALSE" | "n" | "no" | "否" => Some(false),
        _ => None,
    }
}

/// Splits one CSV line (RFC 4180 quoting within the line; a field may not hold a line
/// break). `out` receives the fields.
fn split_line<'a>(line: &'a str, out: &mut Vec<std::borrow::Cow<'a, str>>) -> Result<(), String> {
    out.clear();
    if !line.contains('"') {
        out.extend(line.split(',').map(std::borrow::Cow::Borrowed));
        return Ok(());
    }
    let b = line.as_bytes();
    let mut i = 0;
    loop {
        if i < b.len() && b[i] == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                match line[i..].find('"') {
                    None => {
                        return Err(
                            "a quoted field is never closed (a field may not hold a line break)"
                                .into(),
                        )
                    }
                    Some(p) => {
                        s.push_str(&line[i..i + p]);
                        i += p + 1;
                        if i < b.len() && b[i] == b'"' {
                            s.push('"');
                            i += 1;
                        } else {
                            break;
                        }
                    }
                }
            }
            out.push(std::borrow::Cow::Owned(s));
            if i == b.len() {
                return Ok(());
            }
            if b[i] != b',' {
                return Err("text after a closing quote".into());
            }
            i += 1;
        } else {
            let end = line[i..].find(',').map_or(b.len(), |p| i + p);
            if line[i..end].contains('"') {
                return Err("a quote in the middle of an unquoted field".into());
            }
            out.push(std::borrow::Cow::Borrowed(&line[i..end]));
            if end == b.len() {
                return Ok(());
            }
            i = end + 1;
        }
    }
}

/// The pool.
#[derive(Debug, Clone)]
pub struct Pool {
    key: IdKey,
    person_ix: IdMap,
    household_ix: IdMap,
    pub person_hash: Vec<IdHash>,
    pub person_household: Vec<u32>,
    pub household_hash: Vec<IdHash>,
    pub members: Vec<Vec<u32>>,
    stores: Vec<Store>,
    pub imports: Vec<Import>,
    pub tags: Vec<String>,
    tag_ix: HashMap<String, i32>,
    /// Id columns hold keyed hashes already (32 hexadecimal digits, see [`pseudonymise`]):
    /// a stored pool is replayed from its pseudonymised imports without any raw id.
    prehashed: bool,
}

/// A parsed value waiting to be applied (a row is applied whole or not at all).
#[derive(Clone, Copy)]
enum Pending {
    Value { field: usize, value: i32 },
    Month { field: usize, value: i32 },
}

impl Pool {
    pub fn new(decl: &Declarations, key: IdKey) -> Pool {
        Pool {
            key,
            person_ix: IdMap::default(),
            household_ix: IdMap::default(),
            person_hash: Vec::new(),
            person_household: Vec::new(),
            household_hash: Vec::new(),
            members: Vec::new(),
            stores: decl
                .fields
                .iter()
                .map(|f| {
                    if f.monthly {
                        Store::Monthly(Vec::new())
                    } else {
                        Store::Plain(Vec::new())
                    }
                })
                .collect(),
            imports: Vec::new(),
            tags: Vec::new(),
            tag_ix: HashMap::new(),
            prehashed: false,
        }
    }

    /// From now on, id columns are read as keyed hashes already made ([`pseudonymise`]'s
    /// output) rather than raw ids.
    pub fn set_prehashed(&mut self, on: bool) {
        self.prehashed = on;
    }

    fn id_hash(&self, kind: IdKind, v: &str) -> Result<IdHash, String> {
        if self.prehashed {
            if v.len() != 32 {
                return Err("an id is not a keyed hash (32 hexadecimal digits)".into());
            }
            u128::from_str_radix(v, 16)
                .map_err(|_| "an id is not a keyed hash (32 hexadecimal digits)".to_string())
        } else {
            Ok(self.key.hash(kind, v))
        }
    }

    pub fn key(&self) -> &IdKey {
        &self.key
    }
    pub fn persons(&self) -> usize {
        self.person_hash.len()
    }
    pub fn households(&self) -> usize {
        self.household_hash.len()
    }
    pub fn household_of_hash(&self, h: IdHash) -> Option<u32> {
        self.household_ix.get(&h).copied()
    }
    pub fn person_of_hash(&self, h: IdHash) -> Option<u32> {
        self.person_ix.get(&h).copied()
    }
    /// The household of a raw household id (hashed here; the raw id is not kept).
    pub fn household_of(&self, raw: &str) -> Option<u32> {
        self.household_of_hash(self.key.hash(IdKind::Household, raw))
    }

    /// The claims on a (non-monthly) field of an entity (a person or household index as
    /// the field's level says).
    pub fn cell(&self, field: usize, entity: u32) -> &Cell {
        match &self.stores[field] {
            Store::Plain(v) => v.get(entity as usize).unwrap_or(&Cell::Empty),
            Store::Monthly(_) => &Cell::Empty,
        }
    }

    /// The months held of a monthly field.
    pub fn months(&self, field: usize, entity: u32) -> &[MonthVal] {
        match &self.stores[field] {
            Store::Monthly(v) => v.get(entity as usize).map_or(&[], |m| m.as_slice()),
            Store::Plain(_) => &[],
        }
    }

    /// The value of a field as its precedence resolves it, with the winning claim.
    pub fn resolve(&self, decl: &Declarations, field: usize, entity: u32) -> Option<Claim> {
        resolve(decl, field, self.cell(field, entity))
    }

    pub fn tag(&self, i: i32) -> &str {
        self.tags.get(i as usize).map_or("?", |s| s.as_str())
    }

    fn intern(&mut self, s: &str) -> i32 {
        if let Some(i) = self.tag_ix.get(s) {
            return *i;
        }
        let i = self.tags.len() as i32;
        self.tags.push(s.to_string());
        self.tag_ix.insert(s.to_string(), i);
        i
    }

    fn put(&mut self, field: usize, entity: u32, c: Claim, union: bool) {
        if let Store::Plain(v) = &mut self.stores[field] {
            let e = entity as usize;
            if v.len() <= e {
                v.resize(e + 1, Cell::Empty);
            }
            v[e].put(c, union);
        }
    }

    fn put_month(&mut self, field: usize, entity: u32, m: MonthVal) {
        if let Store::Monthly(v) = &mut self.stores[field] {
            let e = entity as usize;
            if v.len() <= e {
                v.resize(e + 1, Vec::new());
            }
            let list = &mut v[e];
            match list.iter_mut().find(|o| o.month == m.month) {
                Some(o) => *o = m,
                None => list.push(m),
            }
        }
    }

    fn person(&mut self, h: IdHash) -> u32 {
        if let Some(i) = self.person_ix.get(&h) {
            return *i;
        }
        let i = self.person_hash.len() as u32;
        self.person_ix.insert(h, i);
        self.person_hash.push(h);
        self.person_household.push(NONE);
        i
    }

    fn household(&mut self, h: IdHash) -> u32 {
        if let Some(i) = self.household_ix.get(&h) {
            return *i;
        }
        let i = self.household_hash.len() as u32;
        self.household_ix.insert(h, i);
        self.household_hash.push(h);
        self.members.push(Vec::new());
        i
    }

    /// Imports one CSV file of a source as of a date. A file whose header does not match
    /// the declaration is refused whole (`Err`, nothing changed); a bad row is refused and
    /// named by line, the other rows are taken. With `track`, the report lists the
    /// households touched.
    pub fn import_csv(
        &mut self,
        decl: &Declarations,
        source: usize,
        label: &str,
        as_of: Date,
        text: &str,
        track: bool,
    ) -> Result<ImportReport, String> {
        let src = &decl.sources[source];
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut lines = text.split('\n');
        let header = lines.next().unwrap_or("").trim_end_matches('\r');
        let mut buf = Vec::new();
        split_line(header, &mut buf).map_err(|e| format!("line 1: {e}"))?;
        let mut map = Vec::new();
        for h in &buf {
            let h = h.trim();
            match src.columns.iter().position(|c| c.name == h) {
                Some(i) => map.push(i),
                None => {
                    return Err(format!(
                        "line 1: column {h:?} is not declared for source {:?} ({})",
                        src.name,
                        src.columns
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                }
            }
        }
        for (i, c) in src.columns.iter().enumerate() {
            if !map.contains(&i) {
                return Err(format!(
                    "line 1: the header lacks the declared column {:?} of source {:?}",
                    c.name, src.name
                ));
            }
        }
        if self.imports.len() >= u16::MAX as usize {
            return Err("too many imports in one pool".into());
        }
        let import = self.imports.len() as u16;
        self.imports.push(Import {
            source,
            label: label.to_string(),
            as_of,
        });
        let as_of_days = as_of.days() as i32;
        let as_of_month = month_of(as_of);
        let mut report = ImportReport {
            source: src.name.clone(),
            label: label.to_string(),
            ..Default::default()
        };
        let mut pending: Vec<Pending> = Vec::new();
        let mut touched = Vec::new();
        let membership_title = &decl.sources[decl.membership()].title;
        // Rows of one person or household often follow each other (a person's months):
        // the last id's hash is kept rather than computed again.
        let mut last_person: (String, IdHash) = (String::new(), 0);
        let mut last_household: (String, IdHash) = (String::new(), 0);
        for (n, raw) in lines.enumerate() {
            let line = n + 2;
            let raw = raw.trim_end_matches('\r');
            if raw.is_empty() {
                continue;
            }
            report.rows += 1;
            let problem = (|| -> Result<(), String> {
                split_line(raw, &mut buf)?;
                if buf.len() != map.len() {
                    return Err(format!(
                        "{} fields where the header has {}",
                        buf.len(),
                        map.len()
                    ));
                }
                pending.clear();
                let (mut person, mut household, mut month) = (None, None, None);
                for (v, &ci) in buf.iter().zip(&map) {
                    let col = &src.columns[ci];
                    let v = v.trim();
                    if v.is_empty() {
                        if src.key.contains(&ci) {
                            return Err(format!("key column {:?} is empty", col.name));
                        }
                        continue;
                    }
                    let bad = |what: &str| format!("column {:?}: not {what}", col.name);
                    let value = match col.ty {
                        ColType::Person => {
                            if last_person.0 != v || v.is_empty() {
                                last_person.0.clear();
                                last_person.0.push_str(v);
                                last_person.1 = self.id_hash(IdKind::Person, v)?;
                            }
                            person = Some(last_person.1);
                            continue;
                        }
                        ColType::Household => {
                            if last_household.0 != v || v.is_empty() {
                                last_household.0.clear();
                                last_household.0.push_str(v);
                                last_household.1 = self.id_hash(IdKind::Household, v)?;
                            }
                            household = Some(last_household.1);
                            continue;
                        }
                        ColType::Text => continue,
                        ColType::Int => v.parse::<i32>().map_err(|_| bad("a whole number"))?,
                        ColType::Date => {
                            let d = Date::parse(v).ok_or_else(|| bad("a date (YYYY-MM-DD)"))?;
                            let days = d.days() as i32;
                            if days > as_of_days {
                                return Err(format!(
                                    "column {:?}: the date is after the import's date {as_of}",
                                    col.name
                                ));
                            }
                            days
                        }
                        ColType::Month => {
                            let m = parse_month(v).ok_or_else(|| bad("a month (YYYY-MM)"))?;
                            if m > as_of_month {
                                return Err(format!(
                                    "column {:?}: the month is after the import's date {as_of}",
                                    col.name
                                ));
                            }
                            month = Some(m);
                            continue;
                        }
                        ColType::Bool => {
                            i32::from(parse_bool(v).ok_or_else(|| bad("yes/no (1/0)"))?)
                        }
                        ColType::Code => match col.field {
                            None => continue,
                            Some(f) => {
                                let codes = decl.fields[f].ty.codes();
                                let i = codes.iter().position(|c| c == v).ok_or_else(|| {
                                    format!(
                                        "column {:?}: the value is not one of {}",
                                        col.name,
                                        codes.join(", ")
                                    )
                                })? as i32;
                                if matches!(decl.fields[f].ty, FieldType::Set(_)) {
                                    1 << i
                                } else {
                                    i
                                }
                            }
                        },
                        ColType::Tag => {
                            if col.field.is_none() {
                                continue;
                            }
                            self.intern(v)
                        }
                    };
                    if let Some(f) = col.field {
                        pending.push(if decl.fields[f].monthly {
                            Pending::Month { field: f, value }
                        } else {
                            Pending::Value { field: f, value }
                        });
                    }
                }
                // Resolve the entities.
                let (p, h) = if src.membership {
                    let (Some(p), Some(h)) = (person, household) else {
                        return Err("the person and household ids are required".into());
                    };
                    let p = self.person(p);
                    let h = self.household(h);
                    let old = self.person_household[p as usize];
                    if old != h {
                        if old != NONE {
                            self.members[old as usize].retain(|m| *m != p);
                            if track {
                                touched.push(old);
                            }
                        }
                        self.members[h as usize].push(p);
                        self.person_household[p as usize] = h;
                    }
                    (Some(p), h)
                } else {
                    let p = match person {
                        None => None,
                        Some(p) => Some(*self.person_ix.get(&p).ok_or_else(|| {
                            format!("unknown person id (not in {membership_title})")
                        })?),
                    };
                    let h = match household {
                        Some(h) => *self.household_ix.get(&h).ok_or_else(|| {
                            format!("unknown household id (not in {membership_title})")
                        })?,
                        None => match p {
                            Some(p) => self.person_household[p as usize],
                            None => return Err("no person or household id".into()),
                        },
                    };
                    (p, h)
                };
                if pending.iter().any(|x| matches!(x, Pending::Month { .. })) && month.is_none() {
                    return Err("the month is required".into());
                }
                for x in &pending {
                    let (field, value, monthly) = match *x {
                        Pending::Value { field, value } => (field, value, false),
                        Pending::Month { field, value } => (field, value, true),
                    };
                    let fd = &decl.fields[field];
                    let entity = match fd.level {
                        Level::Person => match p {
                            Some(p) => p,
                            None => continue,
                        },
                        Level::Household => h,
                    };
                    if monthly {
                        self.put_month(
                            field,
                            entity,
                            MonthVal {
                                month: month.unwrap_or(0),
                                value,
                                import,
                            },
                        );
                    } else {
                        let union = matches!(fd.ty, FieldType::Set(_));
                        self.put(
                            field,
                            entity,
                            Claim {
                                value,
                                source: source as u8,
                                import,
                            },
                            union,
                        );
                    }
                }
                if track {
                    touched.push(h);
                }
                Ok(())
            })();
            match problem {
                Ok(()) => report.accepted += 1,
                Err(message) => {
                    report.problem_count += 1;
                    report.refused_lines.push(line);
                    if report.problems.len() < MAX_PROBLEMS {
                        report.problems.push(RowProblem { line, message });
                    }
                }
            }
        }
        if track {
            touched.sort_unstable();
            touched.dedup();
            report.touched = touched;
        }
        Ok(report)
    }
}

/// Resolves a cell by the field's precedence: sets are the union of every source's codes;
/// otherwise the claim of the first source in the precedence (a source not named, after
/// those named; the later import among equals).
pub fn resolve(decl: &Declarations, field: usize, cell: &Cell) -> Option<Claim> {
    match cell {
        Cell::Empty => None,
        Cell::One(c) => Some(*c),
        Cell::Many(v) => {
            let fd = &decl.fields[field];
            if matches!(fd.ty, FieldType::Set(_)) {
                let value = v.iter().fold(0, |a, c| a | c.value);
                let last = v.iter().max_by_key(|c| c.import)?;
                return Some(Claim { value, ..*last });
            }
            let rank = |c: &Claim| {
                fd.precedence
                    .iter()
                    .position(|s| *s == c.source as usize)
                    .unwrap_or(usize::MAX)
            };
            v.iter()
                .min_by(|a, b| rank(a).cmp(&rank(b)).then(b.import.cmp(&a.import)))
                .copied()
        }
    }
}

/// A pseudonymised file with the given lines (numbered as [`ImportReport::refused_lines`])
/// replaced by empty fields of the header's count: a refused row keeps nothing of its
/// values, and is refused again on replay (its key columns are empty).
pub fn blank_lines(csv: &str, refused: &[usize]) -> String {
    if refused.is_empty() {
        return csv.to_string();
    }
    let refused: std::collections::HashSet<usize> = refused.iter().copied().collect();
    let mut buf = Vec::new();
    let mut out = String::with_capacity(csv.len());
    let mut blank = String::new();
    for (n, l) in csv.split_inclusive('\n').enumerate() {
        if n == 0 {
            let header = l.trim_end_matches(['\r', '\n']);
            let fields = split_line(header, &mut buf).map_or(1, |_| buf.len().max(1));
            blank = vec![""; fields].join(",");
        }
        if n > 0 && refused.contains(&(n + 1)) {
            out.push_str(&blank);
            if l.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(l);
        }
    }
    out
}

/// A hash as the 32 hexadecimal digits [`pseudonymise`] writes.
pub fn hash_hex(h: IdHash) -> String {
    format!("{h:032x}")
}

/// The personal columns of one membership row, kept apart from the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalRow {
    /// The row's line in the file (the header is line 1).
    pub line: usize,
    pub person: IdHash,
    pub household: IdHash,
    /// The raw person id (an ID number).
    pub id: String,
    /// (column, value) of the columns declared personal.
    pub columns: Vec<(String, String)>,
}

/// A source file made fit for keeping with the pool: every person and household id
/// replaced by its keyed hash ([`hash_hex`]), every text column emptied, line for line
/// (a line that cannot be read is replaced by one that fails the same way, so a replay
/// names the same lines); and, for the membership source, the personal columns of each
/// row (for the source table, which is kept apart and read only by those allowed).
/// A header that does not match the declaration is refused as `Pool::import_csv` does.
pub fn pseudonymise(
    decl: &Declarations,
    source: usize,
    key: &IdKey,
    text: &str,
) -> Result<(String, Vec<PersonalRow>), String> {
    let src = &decl.sources[source];
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut lines = text.split('\n');
    let header = lines.next().unwrap_or("").trim_end_matches('\r');
    let mut buf = Vec::new();
    split_line(header, &mut buf).map_err(|e| format!("line 1: {e}"))?;
    let mut map = Vec::new();
    for h in &buf {
        match src.columns.iter().position(|c| c.name == h.trim()) {
            Some(i) => map.push(i),
            None => {
                return Err(format!(
                    "line 1: column {:?} is not declared for source {:?}",
                    h.trim(),
                    src.name
                ))
            }
        }
    }
    let mut out = String::with_capacity(text.len());
    out.push_str(header);
    out.push('\n');
    let mut personal = Vec::new();
    let blank = vec![""; map.len()].join(",");
    for (n, raw) in lines.enumerate() {
        let line = n + 2;
        let raw = raw.trim_end_matches('\r');
        if raw.is_empty() {
            out.push('\n');
            continue;
        }
        if split_line(raw, &mut buf).is_err() {
            out.push_str("\"\n");
            continue;
        }
        // A row with more or fewer fields than the header cannot be read column by
        // column (a name with an unquoted comma shifts every field after it): nothing
        // of it is kept — empty fields of the header's count, refused again on replay.
        if buf.len() != map.len() {
            out.push_str(&blank);
            out.push('\n');
            continue;
        }
        let (mut p, mut h, mut id) = (None, None, String::new());
        let mut cols = Vec::new();
        let mut fields = Vec::with_capacity(buf.len());
        for (i, v) in buf.iter().enumerate() {
            let v = v.trim();
            let col = map.get(i).map(|&c| &src.columns[c]);
            let cell = match col.map(|c| c.ty) {
                Some(ColType::Person) if !v.is_empty() => {
                    let x = key.hash(IdKind::Person, v);
                    p = Some(x);
                    id = v.to_string();
                    hash_hex(x)
                }
                Some(ColType::Household) if !v.is_empty() => {
                    let x = key.hash(IdKind::Household, v);
                    h = Some(x);
                    hash_hex(x)
                }
                Some(ColType::Text) => {
                    if let Some(c) = col.filter(|c| c.personal && !v.is_empty()) {
                        cols.push((c.name.clone(), v.to_string()));
                    }
                    String::new()
                }
                _ => v.to_string(),
            };
            if cell.contains([',', '"']) {
                fields.push(format!("\"{}\"", cell.replace('"', "\"\"")));
            } else {
                fields.push(cell);
            }
        }
        out.push_str(&fields.join(","));
        out.push('\n');
        if src.membership {
            if let (Some(person), Some(household)) = (p, h) {
                personal.push(PersonalRow {
                    line,
                    person,
                    household,
                    id,
                    columns: cols,
                });
            }
        }
    }
    Ok((out, personal))
}
