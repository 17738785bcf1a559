//! Territory: the tree of regions (district → sub-district → community → grid), imported
//! from GeoJSON, and point location returning the whole region chain in one call.
//!
//! Location is backed by an R-tree over the bounding boxes of the *leaf* regions (the
//! deepest level present, normally grids) followed by an exact even-odd point-in-polygon
//! test; the chain is then read off the parent links. Leaves must tile their parents,
//! which the generator guarantees for the demo and the importer checks for structure.
//!
//! Architecture Invariant: pure data and functions — no IO; the caller hands in text.
//! Architecture Invariant: a point outside every leaf is an error, never a default region.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::RTree;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// Index of a region inside its [`Territory`].
pub type RegionId = u32;

/// The four territorial levels (块), from the top.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    District,
    Subdistrict,
    Community,
    Grid,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::District,
        Level::Subdistrict,
        Level::Community,
        Level::Grid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::District => "district",
            Level::Subdistrict => "subdistrict",
            Level::Community => "community",
            Level::Grid => "grid",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }

    pub fn name_zh(self) -> &'static str {
        match self {
            Level::District => "区",
            Level::Subdistrict => "街镇",
            Level::Community => "居村委",
            Level::Grid => "网格",
        }
    }

    /// The level above, if any.
    pub fn up(self) -> Option<Level> {
        match self {
            Level::District => None,
            Level::Subdistrict => Some(Level::District),
            Level::Community => Some(Level::Subdistrict),
            Level::Grid => Some(Level::Community),
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One polygon: an exterior ring and holes, each ring a closed list of `[lon, lat]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Polygon {
    pub rings: Vec<Vec<[f64; 2]>>,
}

#[derive(Debug, Clone)]
pub struct Region {
    pub code: String,
    pub name_zh: String,
    pub name_en: Option<String>,
    pub level: Level,
    pub parent: Option<RegionId>,
    /// Derived from seed points rather than an official boundary.
    pub approximate: bool,
    pub polygons: Vec<Polygon>,
    pub bbox: [f64; 4],
}

impl Region {
    /// Even-odd test over every ring of every polygon.
    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        if lon < self.bbox[0] || lon > self.bbox[2] || lat < self.bbox[1] || lat > self.bbox[3] {
            return false;
        }
        self.polygons.iter().any(|p| polygon_contains(p, lon, lat))
    }
}

fn polygon_contains(p: &Polygon, x: f64, y: f64) -> bool {
    let mut inside = false;
    for ring in &p.rings {
        let n = ring.len();
        if n < 4 {
            continue;
        }
        let mut j = n - 1;
        for i in 0..n {
            let [xi, yi] = ring[i];
            let [xj, yj] = ring[j];
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
    }
    inside
}

/// The regions a point lies in, one per level present (`None` where the territory has no
/// such level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Chain(pub [Option<RegionId>; 4]);

impl Chain {
    pub fn at(&self, level: Level) -> Option<RegionId> {
        self.0[level.index()]
    }
    /// The deepest region in the chain.
    pub fn leaf(&self) -> Option<RegionId> {
        self.0.iter().rev().flatten().next().copied()
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TerritoryError {
    #[error("GeoJSON does not parse: {0}")]
    Json(String),
    #[error("expected a GeoJSON FeatureCollection, found {0}")]
    NotFeatureCollection(String),
    #[error("feature #{index}{code}: {problem}")]
    Feature {
        index: usize,
        code: String,
        problem: String,
    },
    #[error("region code {0:?} appears twice")]
    DuplicateCode(String),
    #[error("region {child:?} names parent {parent:?}, which is not in the territory")]
    UnknownParent { child: String, parent: String },
    #[error("region {child:?} ({child_level}) cannot sit under {parent:?} ({parent_level}): a parent must be exactly one level up")]
    BadParentLevel {
        child: String,
        child_level: Level,
        parent: String,
        parent_level: Level,
    },
    #[error("the territory has no regions")]
    Empty,
    #[error("the territory must have exactly one root region; found {0}")]
    Roots(usize),
    #[error("point ({lon}, {lat}) lies outside the territory")]
    Outside { lon: f64, lat: f64 },
    #[error("coordinates ({lon}, {lat}) are not a valid WGS-84 position")]
    InvalidPoint { lon: f64, lat: f64 },
}

type Leaf = GeomWithData<Rectangle<[f64; 2]>, RegionId>;

/// The region tree with its spatial index.
pub struct Territory {
    regions: Vec<Region>,
    by_code: HashMap<String, RegionId>,
    children: Vec<Vec<RegionId>>,
    index: RTree<Leaf>,
}

impl fmt::Debug for Territory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Territory")
            .field("regions", &self.regions.len())
            .finish()
    }
}

impl Territory {
    /// Parses one or more GeoJSON FeatureCollections (their features are concatenated).
    /// Each feature carries `code`, `name_zh`, `level` and `parent` properties (and optionally
    /// `name_en`, `approximate`), and a Polygon or MultiPolygon geometry in WGS-84.
    pub fn from_geojson(texts: &[&str]) -> Result<Territory, TerritoryError> {
        let mut raw = Vec::new();
        let mut index = 0usize;
        for text in texts {
            let v: Value =
                serde_json::from_str(text).map_err(|e| TerritoryError::Json(e.to_string()))?;
            let kind = v
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("no \"type\"");
            if kind != "FeatureCollection" {
                return Err(TerritoryError::NotFeatureCollection(kind.to_string()));
            }
            let features = v.get("features").and_then(Value::as_array).ok_or_else(|| {
                TerritoryError::NotFeatureCollection("no \"features\" array".into())
            })?;
            for f in features {
                raw.push(parse_feature(index, f)?);
                index += 1;
            }
        }
        Territory::build(raw)
    }

    fn build(raw: Vec<(Region, Option<String>)>) -> Result<Territory, TerritoryError> {
        if raw.is_empty() {
            return Err(TerritoryError::Empty);
        }
        let mut by_code = HashMap::with_capacity(raw.len());
        for (i, (r, _)) in raw.iter().enumerate() {
            if by_code.insert(r.code.clone(), i as RegionId).is_some() {
                return Err(TerritoryError::DuplicateCode(r.code.clone()));
            }
        }
        let mut regions = Vec::with_capacity(raw.len());
        let levels: Vec<Level> = raw.iter().map(|(r, _)| r.level).collect();
        let mut roots = 0;
        for (mut r, parent) in raw {
            match parent {
                Some(p) => {
                    let pid = *by_code
                        .get(&p)
                        .ok_or_else(|| TerritoryError::UnknownParent {
                            child: r.code.clone(),
                            parent: p.clone(),
                        })?;
                    let pl = levels[pid as usize];
                    if r.level.up() != Some(pl) {
                        return Err(TerritoryError::BadParentLevel {
                            child: r.code.clone(),
                            child_level: r.level,
                            parent: p,
                            parent_level: pl,
                        });
                    }
                    r.parent = Some(pid);
                }
                None => roots += 1,
            }
            regions.push(r);
        }
        if roots != 1 {
            return Err(TerritoryError::Roots(roots));
        }
        let mut children = vec![Vec::new(); regions.len()];
        for (i, r) in regions.iter().enumerate() {
            if let Some(p) = r.parent {
                children[p as usize].push(i as RegionId);
            }
        }
        let leaves: Vec<Leaf> = regions
            .iter()
            .enumerate()
            .filter(|(i, _)| children[*i].is_empty())
            .map(|(i, r)| {
                GeomWithData::new(
                    Rectangle::from_corners([r.bbox[0], r.bbox[1]], [r.bbox[2], r.bbox[3]]),
                    i as RegionId,
                )
            })
            .collect();
        Ok(Territory {
            regions,
            by_code,
            children,
            index: RTree::bulk_load(leaves),
        })
    }

    /// Locates a point: the full chain of regions containing it.
    pub fn locate(&self, lon: f64, lat: f64) -> Result<Chain, TerritoryError> {
        if !lon.is_finite() || !lat.is_finite() || lon.abs() > 180.0 || lat.abs() > 90.0 {
            return Err(TerritoryError::InvalidPoint { lon, lat });
        }
        let p = [lon, lat];
        let hit = self
            .index
            .locate_all_at_point(&p)
            .map(|leaf| leaf.data)
            .find(|&id| self.regions[id as usize].contains(lon, lat));
        match hit {
            Some(id) => Ok(self.chain_of(id)),
            None => Err(TerritoryError::Outside { lon, lat }),
        }
    }

    /// The chain from a region up to the root.
    pub fn chain_of(&self, id: RegionId) -> Chain {
        let mut chain = Chain::default();
        let mut cur = Some(id);
        while let Some(c) = cur {
            let r = &self.regions[c as usize];
            chain.0[r.level.index()] = Some(c);
            cur = r.parent;
        }
        chain
    }

    /// The codes of a chain's regions (what a case stores).
    pub fn codes(&self, chain: Chain) -> RegionCodes {
        let code = |l: Level| chain.at(l).map(|id| self.regions[id as usize].code.clone());
        RegionCodes {
            district: code(Level::District),
            subdistrict: code(Level::Subdistrict),
            community: code(Level::Community),
            grid: code(Level::Grid),
        }
    }

    pub fn region(&self, id: RegionId) -> &Region {
        &self.regions[id as usize]
    }

    pub fn by_code(&self, code: &str) -> Option<RegionId> {
        self.by_code.get(code).copied()
    }

    pub fn regions(&self) -> impl Iterator<Item = (RegionId, &Region)> {
        self.regions
            .iter()
            .enumerate()
            .map(|(i, r)| (i as RegionId, r))
    }

    pub fn children(&self, id: RegionId) -> &[RegionId] {
        &self.children[id as usize]
    }

    pub fn root(&self) -> RegionId {
        self.regions
            .iter()
            .position(|r| r.parent.is_none())
            .unwrap_or(0) as RegionId
    }

    pub fn count(&self, level: Level) -> usize {
        self.regions.iter().filter(|r| r.level == level).count()
    }

    /// Is `inner` the same as, or below, `outer`?
    pub fn is_within(&self, inner: RegionId, outer: RegionId) -> bool {
        let mut cur = Some(inner);
        while let Some(c) = cur {
            if c == outer {
                return true;
            }
            cur = self.regions[c as usize].parent;
        }
        false
    }

    /// A point guaranteed inside the region (the centre of its bounding box when that is
    /// inside, otherwise the first ring's vertex average nudged until inside; used by
    /// simulators and tests).
    pub fn interior_point(&self, id: RegionId) -> [f64; 2] {
        let r = &self.regions[id as usize];
        let c = [(r.bbox[0] + r.bbox[2]) / 2.0, (r.bbox[1] + r.bbox[3]) / 2.0];
        if r.contains(c[0], c[1]) && self.locate(c[0], c[1]).is_ok() {
            return c;
        }
        // Scan a lattice over the bbox for a point that locates inside the region.
        for n in [4, 8, 16, 32, 64] {
            for i in 1..n {
                for j in 1..n {
                    let x = r.bbox[0] + (r.bbox[2] - r.bbox[0]) * i as f64 / n as f64;
                    let y = r.bbox[1] + (r.bbox[3] - r.bbox[1]) * j as f64 / n as f64;
                    if let Ok(ch) = self.locate(x, y) {
                        if ch.at(r.level) == Some(id) {
                            return [x, y];
                        }
                    }
                }
            }
        }
        c
    }

    /// The regions of one level as a GeoJSON FeatureCollection (for maps and APIs).
    pub fn to_geojson(&self, level: Level) -> Value {
        let features: Vec<Value> = self
            .regions
            .iter()
            .filter(|r| r.level == level)
            .map(|r| {
                let coords: Vec<Value> = r
                    .polygons
                    .iter()
                    .map(|p| serde_json::json!(p.rings))
                    .collect();
                serde_json::json!({
                    "type": "Feature",
                    "properties": {
                        "code": r.code,
                        "name_zh": r.name_zh,
                        "name_en": r.name_en,
                        "level": r.level,
                        "parent": r.parent.map(|p| self.regions[p as usize].code.clone()),
                        "approximate": r.approximate,
                    },
                    "geometry": {"type": "MultiPolygon", "coordinates": coords},
                })
            })
            .collect();
        serde_json::json!({"type": "FeatureCollection", "features": features})
    }
}

fn parse_feature(index: usize, f: &Value) -> Result<(Region, Option<String>), TerritoryError> {
    let props = f.get("properties").and_then(Value::as_object);
    let code = props
        .and_then(|p| p.get("code"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let err = |problem: String| TerritoryError::Feature {
        index,
        code: code
            .as_ref()
            .map(|c| format!(" (code {c:?})"))
            .unwrap_or_default(),
        problem,
    };
    let props = props.ok_or_else(|| err("has no \"properties\" object".into()))?;
    let code = code
        .clone()
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| err("property \"code\" is missing or not a non-empty string".into()))?;
    let name_zh = props
        .get("name_zh")
        .and_then(Value::as_str)
        .ok_or_else(|| err("property \"name_zh\" is missing or not a string".into()))?
        .to_string();
    let name_en = props
        .get("name_en")
        .and_then(Value::as_str)
        .map(str::to_string);
    let level_s = props
        .get("level")
        .and_then(Value::as_str)
        .ok_or_else(|| err("property \"level\" is missing".into()))?;
    let level = Level::parse(level_s).ok_or_else(|| {
        err(format!(
            "level {level_s:?} is not one of district, subdistrict, community, grid"
        ))
    })?;
    let parent = match props.get("parent") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(err("property \"parent\" must be a string or null".into())),
    };
    let approximate = props
        .get("approximate")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let geom = f
        .get("geometry")
        .filter(|g| !g.is_null())
        .ok_or_else(|| err("has no geometry".into()))?;
    let gtype = geom.get("type").and_then(Value::as_str).unwrap_or("");
    let coords = geom
        .get("coordinates")
        .ok_or_else(|| err("geometry has no coordinates".into()))?;
    let polys = match gtype {
        "Polygon" => vec![parse_polygon(coords).map_err(&err)?],
        "MultiPolygon" => coords
            .as_array()
            .ok_or_else(|| err("MultiPolygon coordinates must be an array".into()))?
            .iter()
            .map(parse_polygon)
            .collect::<Result<Vec<_>, _>>()
            .map_err(&err)?,
        other => {
            return Err(err(format!(
                "geometry type {other:?} is not Polygon or MultiPolygon"
            )))
        }
    };
    if polys.is_empty() {
        return Err(err("geometry is empty".into()));
    }
    let mut bbox = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
    for p in &polys {
        for pt in &p.rings[0] {
            bbox[0] = bbox[0].min(pt[0]);
            bbox[1] = bbox[1].min(pt[1]);
            bbox[2] = bbox[2].max(pt[0]);
            bbox[3] = bbox[3].max(pt[1]);
        }
    }
    Ok((
        Region {
            code,
            name_zh,
            name_en,
            level,
            parent: None,
            approximate,
            polygons: polys,
            bbox,
        },
        parent,
    ))
}

fn parse_polygon(v: &Value) -> Result<Polygon, String> {
    let rings = v
        .as_array()
        .ok_or("polygon coordinates must be an array of rings")?;
    if rings.is_empty() {
        return Err("polygon has no rings".into());
    }
    let mut out = Vec::with_capacity(rings.len());
    for (ri, ring) in rings.iter().enumerate() {
        let pts = ring
            .as_array()
            .ok_or_else(|| format!("ring {ri} is not an array of positions"))?;
        let mut r = Vec::with_capacity(pts.len());
        for p in pts {
            let a = p.as_array().filter(|a| a.len() >= 2);
            let xy = a.and_then(|a| Some([a[0].as_f64()?, a[1].as_f64()?]));
            match xy {
                Some([x, y]) if x.abs() <= 180.0 && y.abs() <= 90.0 => r.push([x, y]),
                _ => return Err(format!("ring {ri} has an invalid position {p}")),
            }
        }
        if r.len() < 4 {
            return Err(format!(
                "ring {ri} has {} positions; a closed ring needs at least 4",
                r.len()
            ));
        }
        if r.first() != r.last() {
            return Err(format!("ring {ri} is not closed (first position ≠ last)"));
        }
        out.push(r);
    }
    Ok(Polygon { rings: out })
}

/// The regions a case lies in, by code (stable across territory reloads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RegionCodes {
    pub district: Option<String>,
    pub subdistrict: Option<String>,
    pub community: Option<String>,
    pub grid: Option<String>,
}

impl RegionCodes {
    pub fn contains(&self, code: &str) -> bool {
        [
            &self.district,
            &self.subdistrict,
            &self.community,
            &self.grid,
        ]
        .into_iter()
        .any(|c| c.as_deref() == Some(code))
    }
}
