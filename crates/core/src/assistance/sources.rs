//! The declaration of the sources feeding the livelihood data pool (大民生数据池): the
//! fields of the pool (person or household level, typed, which sources feed them and which
//! wins when they disagree) and the sources (owner department, typed columns, key columns,
//! the column each field comes from). Parsed from TOML with every problem named by line.

use super::{line_of, Problem};
use serde::Deserialize;
use std::collections::HashMap;
use toml::Spanned;

/// Whom a field describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Person,
    Household,
}

/// The type of a field's value (held as an `i32` in the pool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Int,
    /// Days since 1970-01-01.
    Date,
    Bool,
    /// One of the listed codes (its index).
    Code(Vec<String>),
    /// A short free code compared only for equality (a community code), interned.
    Tag,
    /// A set of the listed codes (a bit each, at most 31).
    Set(Vec<String>),
}

impl FieldType {
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Int => "int",
            FieldType::Date => "date",
            FieldType::Bool => "bool",
            FieldType::Code(_) => "code",
            FieldType::Tag => "tag",
            FieldType::Set(_) => "set",
        }
    }
    pub fn codes(&self) -> &[String] {
        match self {
            FieldType::Code(c) | FieldType::Set(c) => c,
            _ => &[],
        }
    }
}

/// A field of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub title: String,
    pub level: Level,
    pub ty: FieldType,
    /// Values by month (a month column and a value): the field is the sum over the twelve
    /// months up to the evaluation date; `months(field)` counts the months above zero.
    pub monthly: bool,
    /// Sources in order of precedence (first wins) when several give the field.
    pub precedence: Vec<usize>,
    pub line: usize,
}

/// The type of a source column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    /// The raw person id (hashed on import, never fused).
    Person,
    /// The raw household id (hashed on import, never fused).
    Household,
    /// Text kept only in the source table (names, addresses): never fused.
    Text,
    Int,
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM`.
    Month,
    Bool,
    Code,
    Tag,
}

impl ColType {
    fn parse(s: &str) -> Option<ColType> {
        Some(match s {
            "person" => ColType::Person,
            "household" => ColType::Household,
            "text" => ColType::Text,
            "int" => ColType::Int,
            "date" => ColType::Date,
            "month" => ColType::Month,
            "bool" => ColType::Bool,
            "code" => ColType::Code,
            "tag" => ColType::Tag,
            _ => return None,
        })
    }
}

/// A column of a source.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: ColType,
    /// The pool field this column feeds.
    pub field: Option<usize>,
    /// Personal data (names, ID numbers, phones, addresses): stays in the source table.
    pub personal: bool,
}

/// A source line of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub name: String,
    pub title: String,
    pub owner: String,
    /// The population register: the only source that creates persons and households and
    /// says who lives in which household.
    pub membership: bool,
    pub columns: Vec<Column>,
    /// Columns identifying a row (a later row with the same key replaces it).
    pub key: Vec<usize>,
    pub person: Option<usize>,
    pub household: Option<usize>,
    pub month: Option<usize>,
    pub line: usize,
}

/// The whole declaration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Declarations {
    pub fields: Vec<Field>,
    pub sources: Vec<Source>,
}

impl Declarations {
    pub fn field(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
    pub fn source(&self, name: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.name == name)
    }
    /// The membership source (exactly one after parsing).
    pub fn membership(&self) -> usize {
        self.sources.iter().position(|s| s.membership).unwrap_or(0)
    }
    /// Sources feeding a field.
    pub fn feeders(&self, field: usize) -> Vec<usize> {
        (0..self.sources.len())
            .filter(|s| {
                self.sources[*s]
                    .columns
                    .iter()
                    .any(|c| c.field == Some(field))
            })
            .collect()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    field: Vec<Spanned<RawField>>,
    #[serde(default)]
    source: Vec<Spanned<RawSource>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawField {
    name: String,
    #[serde(default)]
    title: String,
    level: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    codes: Vec<String>,
    #[serde(default)]
    monthly: bool,
    #[serde(default)]
    precedence: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    name: String,
    title: String,
    owner: String,
    #[serde(default)]
    membership: bool,
    key: Vec<String>,
    columns: Vec<RawColumn>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    field: Option<String>,
    #[serde(default)]
    personal: bool,
}

fn compatible(col: ColType, ty: &FieldType) -> bool {
    matches!(
        (col, ty),
        (ColType::Int, FieldType::Int)
            | (ColType::Date, FieldType::Date)
            | (ColType::Bool, FieldType::Bool)
            | (ColType::Code, FieldType::Code(_))
            | (ColType::Code, FieldType::Set(_))
            | (ColType::Tag, FieldType::Tag)
    )
}

/// Parses and checks the declaration file; every problem is named with its line.
pub fn parse_declarations(text: &str) -> Result<Declarations, Vec<Problem>> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        vec![Problem {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut fields = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for f in &raw.field {
        let line = line_of(text, f.span().start);
        let r = f.get_ref();
        let mut bad = |m: String| problems.push(Problem { line, message: m });
        if names.insert(r.name.clone(), fields.len()).is_some() {
            bad(format!("field {:?} is declared twice", r.name));
        }
        let level = match r.level.as_str() {
            "person" => Level::Person,
            "household" => Level::Household,
            o => {
                bad(format!(
                    "field {:?}: level {o:?} is neither \"person\" nor \"household\"",
                    r.name
                ));
                Level::Person
            }
        };
        let ty = match r.ty.as_str() {
            "int" => FieldType::Int,
            "date" => FieldType::Date,
            "bool" => FieldType::Bool,
            "tag" => FieldType::Tag,
            "code" => FieldType::Code(r.codes.clone()),
            "set" => FieldType::Set(r.codes.clone()),
            o => {
                bad(format!(
                    "field {:?}: type {o:?} is not one of int, date, bool, code, tag, set",
                    r.name
                ));
                FieldType::Int
            }
        };
        if matches!(ty, FieldType::Code(_) | FieldType::Set(_)) && r.codes.is_empty() {
            bad(format!(
                "field {:?}: a {} field needs codes",
                r.name,
                ty.name()
            ));
        }
        if matches!(ty, FieldType::Set(_)) && r.codes.len() > 31 {
            bad(format!("field {:?}: a set holds at most 31 codes", r.name));
        }
        if r.monthly && ty != FieldType::Int {
            bad(format!(
                "field {:?}: only an int field can be monthly",
                r.name
            ));
        }
        fields.push(Field {
            name: r.name.clone(),
            title: r.title.clone(),
            level,
            ty,
            monthly: r.monthly,
            precedence: Vec::new(),
            line,
        });
    }
    let mut sources: Vec<Source> = Vec::new();
    for s in &raw.source {
        let line = line_of(text, s.span().start);
        let r = s.get_ref();
        let mut bad = |m: String| problems.push(Problem { line, message: m });
        if sources.iter().any(|o| o.name == r.name) {
            bad(format!("source {:?} is declared twice", r.name));
        }
        let mut columns = Vec::new();
        let (mut person, mut household, mut month) = (None, None, None);
        for (i, c) in r.columns.iter().enumerate() {
            let Some(ty) = ColType::parse(&c.ty) else {
                bad(format!(
                    "source {:?}, column {:?}: type {:?} is not one of person, household, text, int, date, month, bool, code, tag",
                    r.name, c.name, c.ty
                ));
                continue;
            };
            if columns.iter().any(|o: &Column| o.name == c.name) {
                bad(format!("source {:?}: column {:?} twice", r.name, c.name));
            }
            let slot = match ty {
                ColType::Person => Some(&mut person),
                ColType::Household => Some(&mut household),
                ColType::Month => Some(&mut month),
                _ => None,
            };
            if let Some(slot) = slot {
                if slot.is_some() {
                    bad(format!(
                        "source {:?}: more than one column of type {:?}",
                        r.name, c.ty
                    ));
                }
                *slot = Some(i);
            }
            let field = match &c.field {
                None => None,
                Some(name) => match names.get(name) {
                    None => {
                        bad(format!(
                            "source {:?}, column {:?}: no field {name:?} is declared",
                            r.name, c.name
                        ));
                        None
                    }
                    Some(&f) => {
                        if !compatible(ty, &fields[f].ty) {
                            bad(format!(
                                "source {:?}, column {:?}: a {} column cannot feed the {} field {name:?}",
                                r.name, c.name, c.ty, fields[f].ty.name()
                            ));
                        }
                        Some(f)
                    }
                },
            };
            if c.personal && field.is_some() {
                bad(format!(
                    "source {:?}, column {:?}: personal data is never fused into the pool",
                    r.name, c.name
                ));
            }
            columns.push(Column {
                name: c.name.clone(),
                ty,
                field,
                personal: c.personal,
            });
        }
        if person.is_none() && household.is_none() {
            bad(format!(
                "source {:?} has neither a person nor a household column",
                r.name
            ));
        }
        if r.membership && (person.is_none() || household.is_none()) {
            bad(format!(
                "source {:?}: the membership source needs a person and a household column",
                r.name
            ));
        }
        for c in &columns {
            if let Some(f) = c.field {
                if fields[f].monthly && month.is_none() {
                    bad(format!(
                        "source {:?}: the monthly field {:?} needs a month column",
                        r.name, fields[f].name
                    ));
                }
                if fields[f].level == Level::Person && person.is_none() {
                    bad(format!(
                        "source {:?}: the person field {:?} needs a person column",
                        r.name, fields[f].name
                    ));
                }
            }
        }
        let mut key = Vec::new();
        for k in &r.key {
            match columns.iter().position(|c| &c.name == k) {
                Some(i) => key.push(i),
                None => bad(format!(
                    "source {:?}: key column {k:?} is not a column",
                    r.name
                )),
            }
        }
        if key.is_empty() {
            bad(format!("source {:?}: the key is empty", r.name));
        }
        sources.push(Source {
            name: r.name.clone(),
            title: r.title.clone(),
            owner: r.owner.clone(),
            membership: r.membership,
            columns,
            key,
            person,
            household,
            month,
            line,
        });
    }
    let members = sources.iter().filter(|s| s.membership).count();
    if members != 1 {
        problems.push(Problem {
            line: 1,
            message: format!("exactly one source must be the membership source (membership = true), not {members}"),
        });
    }
    if sources.len() > 250 {
        problems.push(Problem {
            line: 1,
            message: "at most 250 sources".into(),
        });
    }
    let decl = Declarations {
        fields: fields.clone(),
        sources,
    };
    for (i, (f, rf)) in fields.iter_mut().zip(&raw.field).enumerate() {
        let feeders = decl.feeders(i);
        if feeders.is_empty() {
            problems.push(Problem {
                line: f.line,
                message: format!("field {:?} is fed by no source", f.name),
            });
        }
        if f.monthly && feeders.len() > 1 {
            problems.push(Problem {
                line: f.line,
                message: format!("monthly field {:?} must come from one source", f.name),
            });
        }
        for p in &rf.get_ref().precedence {
            match decl.source(p) {
                Some(s) if feeders.contains(&s) => f.precedence.push(s),
                Some(_) => problems.push(Problem {
                    line: f.line,
                    message: format!(
                        "field {:?}: precedence names {p:?}, which does not feed it",
                        f.name
                    ),
                }),
                None => problems.push(Problem {
                    line: f.line,
                    message: format!(
                        "field {:?}: precedence names {p:?}, which is not a source",
                        f.name
                    ),
                }),
            }
        }
        if feeders.len() > 1 && f.precedence.len() < feeders.len() && !f.monthly {
            problems.push(Problem {
                line: f.line,
                message: format!(
                    "field {:?} is fed by {} sources ({}): its precedence must name them all",
                    f.name,
                    feeders.len(),
                    feeders
                        .iter()
                        .map(|s| decl.sources[*s].name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(Declarations {
            fields,
            sources: decl.sources,
        })
    } else {
        problems.sort_by_key(|p| p.line);
        Err(problems)
    }
}
