//! Place names in a report's text (issue 14, item 3): a gazetteer of the territory's
//! sub-districts and communities (residents' committees) plus a district-editable list of
//! roads and landmarks, matched longest-first over the normalised text with a character
//! trie, and [`Gazetteer::locate`], which turns the matches into one position — the most
//! specific place named — and says which words matched.
//!
//! Short forms are a trap (「天平」 is both 天平路街道 and 天平居委会), so the matcher
//! knows a region by its exact name and, besides, by its name without the 街道 / 镇 /
//! 居委会 suffix (and 「X街道」 for 「X路街道」, 「X社区」 for 「X居委会」) only when that
//! short form has at least two characters, is nobody's exact name and names one region
//! alone.

use super::normalise;
use crate::case::PlaceMatch;
use crate::territory::{Level, Territory};
use std::collections::HashMap;

/// What kind of place a gazetteer entry names, most specific last in the enum's order of
/// regions (a landmark is a point).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaceKind {
    Subdistrict,
    Community,
    Road,
    Landmark,
}

impl PlaceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::Subdistrict => "subdistrict",
            PlaceKind::Community => "community",
            PlaceKind::Road => "road",
            PlaceKind::Landmark => "landmark",
        }
    }

    pub fn parse(s: &str) -> Option<PlaceKind> {
        Some(match s {
            "subdistrict" => PlaceKind::Subdistrict,
            "community" => PlaceKind::Community,
            "road" => PlaceKind::Road,
            "landmark" => PlaceKind::Landmark,
            _ => return None,
        })
    }

    /// How precisely the kind pins a position (higher is more specific): a landmark is a
    /// point, a community a few blocks, a road may run for kilometres, a sub-district is
    /// larger still.
    pub fn specificity(self) -> u8 {
        match self {
            PlaceKind::Landmark => 4,
            PlaceKind::Community => 3,
            PlaceKind::Road => 2,
            PlaceKind::Subdistrict => 1,
        }
    }
}

/// One named place.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub kind: PlaceKind,
    /// The region it is (a sub-district or community) or lies in (a road or landmark).
    pub region: Option<String>,
    /// Its position (WGS84 lon, lat): a landmark's point, a road's middle, a region's
    /// representative point.
    pub pos: Option<[f64; 2]>,
}

/// A place found in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The words as they appear in the (normalised) text.
    pub word: String,
    /// Index into [`Gazetteer::places`].
    pub place: usize,
    /// Character offset in the normalised text.
    pub at: usize,
}

/// Where a text puts a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    pub lon: f64,
    pub lat: f64,
    /// The place that gave the position.
    pub by: PlaceMatch,
}

/// The district's place names and a trie over them.
#[derive(Debug, Clone, Default)]
pub struct Gazetteer {
    pub places: Vec<Place>,
    /// Trie nodes: children by character; node 0 is the root.
    next: Vec<HashMap<char, u32>>,
    /// The place a node's path names, if any.
    term: Vec<Option<u32>>,
}

/// Region name suffixes that a short form may drop, longest first.
const SUFFIXES: [&str; 5] = ["路街道", "居委会", "街道", "社区", "镇"];

impl Gazetteer {
    /// The territory's sub-districts and communities (at their representative points)
    /// plus `extra` roads and landmarks. An extra entry with the same name as a region
    /// replaces the region's entry for that name.
    pub fn new(territory: &Territory, extra: Vec<Place>) -> Gazetteer {
        let mut places: Vec<Place> = Vec::new();
        for (id, r) in territory.regions() {
            let kind = match r.level {
                Level::Subdistrict => PlaceKind::Subdistrict,
                Level::Community => PlaceKind::Community,
                _ => continue,
            };
            places.push(Place {
                name: r.name_zh.clone(),
                kind,
                region: Some(r.code.clone()),
                pos: Some(territory.interior_point(id)),
            });
        }
        let mut keys: HashMap<String, usize> = HashMap::new();
        let mut all = Vec::new();
        for p in places.into_iter().chain(extra) {
            let key = normalise(&p.name);
            if key.is_empty() {
                continue;
            }
            if let Some(&i) = keys.get(&key) {
                all[i] = p; // the district's own entry wins
            } else {
                keys.insert(key, all.len());
                all.push(p);
            }
        }
        // Short forms: candidates per form, kept when unique and not an exact name.
        let mut short: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, p) in all.iter().enumerate() {
            if !matches!(p.kind, PlaceKind::Subdistrict | PlaceKind::Community) {
                continue;
            }
            for form in short_forms(&normalise(&p.name)) {
                let v = short.entry(form).or_default();
                if !v.contains(&i) {
                    v.push(i);
                }
            }
        }
        let mut g = Gazetteer {
            places: all,
            next: vec![HashMap::new()],
            term: vec![None],
        };
        let mut exact: Vec<(String, usize)> = keys.into_iter().collect();
        exact.sort();
        for (k, i) in &exact {
            g.insert(k, *i);
        }
        let exact: HashMap<String, usize> = exact.into_iter().collect();
        let mut short: Vec<(String, Vec<usize>)> = short.into_iter().collect();
        short.sort();
        for (form, who) in short {
            if who.len() == 1 && form.chars().count() >= 2 && !exact.contains_key(&form) {
                g.insert(&form, who[0]);
            }
        }
        g
    }

    fn insert(&mut self, key: &str, place: usize) {
        let mut node = 0usize;
        for c in key.chars() {
            node = match self.next[node].get(&c) {
                Some(&n) => n as usize,
                None => {
                    let n = self.next.len();
                    self.next.push(HashMap::new());
                    self.term.push(None);
                    self.next[node].insert(c, n as u32);
                    n
                }
            };
        }
        self.term[node] = Some(place as u32);
    }

    /// Every place named in the text, leftmost-longest (a match is never part of a longer
    /// one), in the order they appear.
    pub fn scan(&self, text: &str) -> Vec<Found> {
        let chars: Vec<char> = normalise(text).chars().collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let mut node = 0usize;
            let mut best: Option<(usize, u32)> = None;
            for (j, c) in chars[i..].iter().enumerate() {
                match self.next[node].get(c) {
                    Some(&n) => node = n as usize,
                    None => break,
                }
                if let Some(p) = self.term[node] {
                    best = Some((i + j + 1, p));
                }
            }
            match best {
                Some((end, p)) => {
                    out.push(Found {
                        word: chars[i..end].iter().collect(),
                        place: p as usize,
                        at: i,
                    });
                    i = end;
                }
                None => i += 1,
            }
        }
        out
    }

    /// The places named in the text, most specific first (each place once), as a case
    /// records them.
    pub fn matches(&self, text: &str) -> Vec<PlaceMatch> {
        self.ranked(text)
            .into_iter()
            .map(|f| self.place_match(&f))
            .collect()
    }

    fn place_match(&self, f: &Found) -> PlaceMatch {
        let p = &self.places[f.place];
        PlaceMatch {
            word: f.word.clone(),
            kind: p.kind.as_str().to_string(),
            region: p.region.clone(),
        }
    }

    /// Matches most specific first; among equals, the one named first.
    fn ranked(&self, text: &str) -> Vec<Found> {
        let mut found = self.scan(text);
        let mut seen = std::collections::HashSet::new();
        found.retain(|f| seen.insert(f.place));
        found.sort_by(|a, b| {
            let (pa, pb) = (&self.places[a.place], &self.places[b.place]);
            let sa = pa.kind.specificity() * 2 + u8::from(pa.pos.is_some());
            let sb = pb.kind.specificity() * 2 + u8::from(pb.pos.is_some());
            sb.cmp(&sa).then(a.at.cmp(&b.at))
        });
        found
    }

    /// The position the text names: the most specific place with a position (a landmark's
    /// point, a community's or sub-district's representative point, a road's middle), and
    /// which words gave it. `None` when the text names no place with a position.
    pub fn locate(&self, text: &str) -> Option<Located> {
        self.ranked(text).into_iter().find_map(|f| {
            let [lon, lat] = self.places[f.place].pos?;
            Some(Located {
                lon,
                lat,
                by: self.place_match(&f),
            })
        })
    }
}

/// A region name's short forms (normalised name in, forms out; the full name itself is
/// not among them).
fn short_forms(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for suf in SUFFIXES {
        if let Some(stem) = name.strip_suffix(suf) {
            if stem.is_empty() {
                continue;
            }
            out.push(stem.to_string());
            match suf {
                "路街道" => {
                    out.push(format!("{stem}街道"));
                    out.push(format!("{stem}路"));
                }
                "居委会" => {
                    out.push(format!("{stem}社区"));
                    out.push(format!("{stem}居委"));
                }
                "街道" => out.push(format!("{stem}社区")),
                _ => {}
            }
            break;
        }
    }
    out.retain(|f| f != name);
    out
}

/// Why a gazetteer file is refused: every bad row, by line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.join("; "))]
pub struct GazetteerError(pub Vec<String>);

/// Reads the district's gazetteer (CSV: `name,kind,region,lon,lat`; `region` and the
/// position may be empty, `kind` is road or landmark — or subdistrict/community to give a
/// region another name). A row's region, when empty, is where its position lies (the
/// community, else the sub-district). Every problem is named by its line.
pub fn parse_gazetteer(text: &str, territory: &Territory) -> Result<Vec<Place>, GazetteerError> {
    let table = match super::csv::parse(text) {
        Ok(t) => t,
        Err(super::csv::DataError::NoRows) => return Ok(Vec::new()),
        Err(e) => return Err(GazetteerError(vec![e.to_string()])),
    };
    let want = ["name", "kind", "region", "lon", "lat"];
    let col = |n: &str| table.header.iter().position(|h| h.trim() == n);
    let cols: Vec<Option<usize>> = want.iter().map(|n| col(n)).collect();
    let missing: Vec<&str> = want
        .iter()
        .zip(&cols)
        .filter(|(_, c)| c.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(GazetteerError(vec![format!(
            "line 1: the header lacks column(s) {} (want name,kind,region,lon,lat)",
            missing.join(", ")
        )]));
    }
    let cols: Vec<usize> = cols.into_iter().flatten().collect();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    for (line, row) in &table.rows {
        let get = |i: usize| row.get(cols[i]).map(|s| s.trim()).unwrap_or("");
        let (name, kind, region, lon, lat) = (get(0), get(1), get(2), get(3), get(4));
        if name.starts_with('#') {
            continue;
        }
        let mut bad = |m: String| problems.push(format!("line {line}: {m}"));
        if name.chars().count() < 2 {
            bad(format!("name {name:?} is shorter than 2 characters"));
            continue;
        }
        if let Some(first) = names.insert(normalise(name), *line) {
            bad(format!("{name:?} is listed already on line {first}"));
            continue;
        }
        let Some(kind) = PlaceKind::parse(kind) else {
            bad(format!(
                "kind {kind:?} is not one of road, landmark, subdistrict, community"
            ));
            continue;
        };
        let pos = match (lon, lat) {
            ("", "") => None,
            (a, b) => match (a.parse::<f64>(), b.parse::<f64>()) {
                (Ok(x), Ok(y)) if x.is_finite() && y.is_finite() => {
                    if territory.locate(x, y).is_err() {
                        bad(format!("position {x}, {y} is outside the territory"));
                        continue;
                    }
                    Some([x, y])
                }
                _ => {
                    bad(format!("lon {a:?} / lat {b:?} is not a position"));
                    continue;
                }
            },
        };
        let region = if region.is_empty() {
            pos.and_then(|[x, y]| territory.locate(x, y).ok())
                .and_then(|ch| ch.at(Level::Community).or(ch.at(Level::Subdistrict)))
                .map(|id| territory.region(id).code.clone())
        } else {
            match territory.by_code(region) {
                Some(_) => Some(region.to_string()),
                None => {
                    bad(format!(
                        "region {region:?} is not a region of the territory"
                    ));
                    continue;
                }
            }
        };
        if pos.is_none() && region.is_none() {
            bad("a place needs a region or a position".to_string());
            continue;
        }
        let pos = pos.or_else(|| {
            let id = territory.by_code(region.as_deref()?)?;
            Some(territory.interior_point(id))
        });
        out.push(Place {
            name: name.to_string(),
            kind,
            region,
            pos,
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(GazetteerError(problems))
    }
}
