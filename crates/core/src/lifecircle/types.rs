//! The service types of the life circle: a TOML table the district edits.
//!
//! ```toml
//! [[type]]
//! code = "pharmacy"
//! name_zh = "药店"
//! name_en = "Pharmacy"
//! target = 10          # the ring (5, 10 or 15 minutes) it should be reached in
//! elders = false       # walk at the elders' speed
//! osm = ["pharmacy", "chemist"]
//! ```

use super::RINGS;
use serde::Deserialize;
use std::collections::HashMap;

/// One service type.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceType {
    pub code: String,
    pub name_zh: String,
    pub name_en: String,
    /// The ring (minutes) the type should be reached within.
    pub target: u32,
    /// Times to this type are walked at the elders' speed.
    pub elders: bool,
    /// OSM classes counted as this type.
    pub osm: Vec<String>,
}

/// The table: types in file order, OSM classes → type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeTable {
    pub types: Vec<ServiceType>,
    by_code: HashMap<String, usize>,
    by_class: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "type", default)]
    types: Vec<Row>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    code: String,
    name_zh: String,
    name_en: String,
    target: u32,
    #[serde(default)]
    elders: bool,
    #[serde(default)]
    osm: Vec<String>,
}

/// Parses the table; every problem is named (the TOML error with its line, or each
/// type's problem by its code and position).
pub fn parse_types(text: &str) -> Result<TypeTable, Vec<String>> {
    let file: File = toml::from_str(text).map_err(|e| vec![e.to_string().trim().to_string()])?;
    let mut problems = Vec::new();
    if file.types.is_empty() {
        problems.push("no [[type]] in the table".to_string());
    }
    let mut t = TypeTable::default();
    for (i, r) in file.types.into_iter().enumerate() {
        let at = format!("type {} ({:?})", i + 1, r.code);
        let code_ok = !r.code.is_empty()
            && r.code
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !code_ok {
            problems.push(format!(
                "{at}: code must be lower-case letters, digits and _"
            ));
        }
        if r.name_zh.trim().is_empty() || r.name_en.trim().is_empty() {
            problems.push(format!("{at}: name_zh and name_en must not be empty"));
        }
        if !RINGS.contains(&r.target) {
            problems.push(format!(
                "{at}: target {} is not a ring (5, 10 or 15 minutes)",
                r.target
            ));
        }
        if let Some(j) = t.by_code.get(&r.code) {
            problems.push(format!("{at}: code repeats type {}", j + 1));
        }
        let idx = t.types.len();
        for c in &r.osm {
            if let Some(&j) = t.by_class.get(c) {
                if j != idx {
                    problems.push(format!(
                        "{at}: OSM class {c:?} is already mapped to {:?}",
                        t.types[j].code
                    ));
                }
            } else {
                t.by_class.insert(c.clone(), idx);
            }
        }
        t.by_code.entry(r.code.clone()).or_insert(idx);
        t.types.push(ServiceType {
            code: r.code,
            name_zh: r.name_zh,
            name_en: r.name_en,
            target: r.target,
            elders: r.elders,
            osm: r.osm,
        });
    }
    if problems.is_empty() {
        Ok(t)
    } else {
        Err(problems)
    }
}

impl TypeTable {
    pub fn len(&self) -> usize {
        self.types.len()
    }
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
    /// A type by its code.
    pub fn index(&self, code: &str) -> Option<usize> {
        self.by_code.get(code).copied()
    }
    /// The type an OSM class counts as.
    pub fn of_class(&self, class: &str) -> Option<usize> {
        self.by_class.get(class).copied()
    }
    /// A type code, or else an OSM class mapped to a type.
    pub fn resolve(&self, code_or_class: &str) -> Option<usize> {
        self.index(code_or_class)
            .or_else(|| self.of_class(code_or_class))
    }
    pub fn get(&self, i: usize) -> &ServiceType {
        &self.types[i]
    }
}
