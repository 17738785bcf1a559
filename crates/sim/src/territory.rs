//! Deterministic generator of the demo territory of Xuhui District (徐汇区).
//!
//! The territory is the "1+13+306" hierarchy the district runs on, plus the
//! community grids (网格) below it:
//!
//! | level         | count  | geometry                                                     |
//! |---------------|--------|--------------------------------------------------------------|
//! | `district`    | 1      | the OpenStreetMap outline of 徐汇区 (main ring + 2 exclaves)  |
//! | `subdistrict` | 13     | 天平路 real (OSM); the other 12 approximate (see below)       |
//! | `community`   | 306    | approximate: Voronoi cells of seeded sample points            |
//! | `grid`        | ~3,000 | approximate: Voronoi cells inside each community              |
//!
//! # Inputs
//!
//! Seven files (the geometries in WGS-84), read by [`load_sources`] from one directory
//! (`data/xuhui/sources` in the repository):
//!
//! * `xuhui_district_boundary_osm_wgs84.geojson` — the district outline;
//! * `xuhui_subdistrict_tianpinglu_osm_wgs84.geojson` — the real 天平路街道;
//! * `xuhui_daxujiahui_4subdistricts_union_osm_wgs84.geojson` — the real union
//!   of 徐家汇 + 天平路 + 湖南路 + 枫林路;
//! * `xuhui_subdistrict_seed_points_approx_wgs84.csv` — one approximate point
//!   per sub-district;
//! * `xuhui_subdistricts.csv` — codes, names and pinyin of the sub-districts;
//! * `xuhui_residents_committees_2020.csv` — the residents' committees (NBS
//!   2020 codes). Rows whose sub-district has no seed point (the virtual
//!   community of the 漕河泾 development zone, `310104501`) are skipped;
//! * `xuhui_residents_committees_en.csv` — their English names in pinyin
//!   (`rc_code_12,rc_name,name_en`, "Shanghaixincun Community"), written once by
//!   `committees_pinyin.py` beside it (PyPI `pypinyin`, polyphonic readings
//!   checked by eye) and committed; the communities' `name_en`.
//!
//! # Method
//!
//! * 天平路 is its real polygon. The rest of the four-sub-district union is
//!   split between 徐家汇, 湖南路 and 枫林路 by the Voronoi cells of their seed
//!   points; the rest of the district is split among the other nine the same
//!   way (the two exclaves go to whichever cell they fall in). **Every
//!   sub-district boundary except 天平路's is therefore an approximation derived
//!   from hand-placed seed points, not an official boundary**, and is marked
//!   `"approximate": true`.
//! * Inside each sub-district, as many seed points as it has committees are
//!   drawn by rejection sampling, evened out by [`LLOYD_ROUNDS`] rounds of Lloyd
//!   relaxation, and their Voronoi cells clipped to the sub-district become the
//!   communities. Cells are put in reading order (north→south rows, west→east
//!   within a row) and given the committees in code order.
//! * About `target_grids` grids are shared among the communities in proportion
//!   to area (at least [`MIN_GRIDS_PER_COMMUNITY`] each) and built the same way
//!   inside each community. Grid codes are the community code plus a 3-digit
//!   sequence in reading order.
//!
//! All geometric work happens in a local metric plane (an equirectangular
//! projection centred on the district); output is WGS-84 lon/lat rounded to
//! 6 decimals, exterior rings counter-clockwise and holes clockwise
//! (RFC 7946). Parts smaller than [`MIN_AREA_M2`] are dropped. Children tile
//! their parent up to float noise.
//!
//! # Determinism
//!
//! The only randomness is a SplitMix64 generator seeded from the `seed`
//! argument and the code of the region being divided, so the same inputs and
//! seed always give byte-identical output, and changing one region's inputs
//! does not reshuffle the others.
//!
//! # Attribution
//!
//! The district outline, 天平路 and the four-sub-district union are
//! OpenStreetMap data: © OpenStreetMap contributors, available under the Open
//! Database License (ODbL 1.0). Anything that ships or shows the generated
//! territory must carry that credit; the generated file carries it in its
//! `attribution` member.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use cityos_core::rng::{fnv1a, Rng};
use geo::{
    Area, BooleanOps, BoundingRect, Centroid, Contains, Coord, LineString, MultiPolygon, Polygon,
    Validation,
};
use serde_json::Value;

/// File name of the district outline inside the sources directory.
pub const DISTRICT_FILE: &str = "xuhui_district_boundary_osm_wgs84.geojson";
/// File name of the real 天平路街道 polygon.
pub const TIANPINGLU_FILE: &str = "xuhui_subdistrict_tianpinglu_osm_wgs84.geojson";
/// File name of the union of 徐家汇 + 天平路 + 湖南路 + 枫林路.
pub const UNION4_FILE: &str = "xuhui_daxujiahui_4subdistricts_union_osm_wgs84.geojson";
/// File name of the approximate sub-district seed points.
pub const SEEDS_FILE: &str = "xuhui_subdistrict_seed_points_approx_wgs84.csv";
/// File name of the sub-district table.
pub const SUBDISTRICTS_FILE: &str = "xuhui_subdistricts.csv";
/// File name of the residents' committee table.
pub const COMMITTEES_FILE: &str = "xuhui_residents_committees_2020.csv";
/// File name of the residents' committees' English names (pinyin).
pub const COMMITTEES_EN_FILE: &str = "xuhui_residents_committees_en.csv";

/// Administrative code of 徐汇区.
pub const DISTRICT_CODE: &str = "310104";
/// Code of 天平路街道, the one sub-district with a real polygon.
const TIANPINGLU_CODE: &str = "310104003";
/// The other three sub-districts of the four-sub-district union
/// (湖南路, 枫林路, 徐家汇).
const UNION4_OTHER_CODES: [&str; 3] = ["310104004", "310104008", "310104014"];

/// Polygon parts (and holes) smaller than this many m² are dropped as slivers.
pub const MIN_AREA_M2: f64 = 1.0;
/// Rounds of Lloyd relaxation applied to community and grid seed points.
pub const LLOYD_ROUNDS: usize = 3;
/// Minimum number of grids per community.
pub const MIN_GRIDS_PER_COMMUNITY: usize = 3;
/// Output coordinates are rounded to this many decimals (~0.1 m).
const COORD_DECIMALS: i32 = 6;

/// Centre of the local projection (roughly the middle of the district).
const LON0: f64 = 121.44;
const LAT0: f64 = 31.17;

/// Contents of the seven source files (see the module documentation).
#[derive(Debug, Clone)]
pub struct Sources {
    /// GeoJSON of the district outline.
    pub district: String,
    /// GeoJSON of the real 天平路街道 polygon.
    pub tianpinglu: String,
    /// GeoJSON of the four-sub-district union.
    pub union4: String,
    /// CSV of sub-district seed points.
    pub seeds_csv: String,
    /// CSV of sub-districts.
    pub subdistricts_csv: String,
    /// CSV of residents' committees.
    pub committees_csv: String,
    /// CSV of the committees' English names.
    pub committees_en_csv: String,
}

/// Reads the seven source files from `dir` by their standard names.
pub fn load_sources(dir: &Path) -> std::io::Result<Sources> {
    let read = |name: &str| std::fs::read_to_string(dir.join(name));
    Ok(Sources {
        district: read(DISTRICT_FILE)?,
        tianpinglu: read(TIANPINGLU_FILE)?,
        union4: read(UNION4_FILE)?,
        seeds_csv: read(SEEDS_FILE)?,
        subdistricts_csv: read(SUBDISTRICTS_FILE)?,
        committees_csv: read(COMMITTEES_FILE)?,
        committees_en_csv: read(COMMITTEES_EN_FILE)?,
    })
}

/// Generates the territory as GeoJSON text: one `FeatureCollection` with the
/// district, the sub-districts, the communities and the grids, in that order,
/// one feature per line.
///
/// `seed` drives every random choice; `target_grids` is the total number of
/// grids wanted (the result is exactly that unless the per-community minimum
/// forces more).
pub fn generate(src: &Sources, seed: u64, target_grids: usize) -> Result<String, String> {
    let proj = Projection::new(LON0, LAT0);
    let district =
        clean(parse_geometry(&src.district, &proj).map_err(|e| format!("district: {e}"))?);
    let tianpinglu = parse_geometry(&src.tianpinglu, &proj).map_err(|e| format!("天平路: {e}"))?;
    let union4 = parse_geometry(&src.union4, &proj).map_err(|e| format!("union: {e}"))?;
    if district.0.is_empty() {
        return Err("district outline is empty".into());
    }

    let subdistricts = read_subdistricts(src, &proj)?;
    let committees = read_committees(&src.committees_csv, &subdistricts)?;
    let committees_en = read_committees_en(&src.committees_en_csv)?;

    let mut regions = vec![Region {
        code: DISTRICT_CODE.into(),
        name_zh: "徐汇区".into(),
        name_en: Some("Xuhui District".into()),
        level: Level::District,
        parent: None,
        approximate: false,
        geom: district.clone(),
    }];

    // Sub-districts.
    let sub_geoms = subdistrict_geometries(&district, &tianpinglu, &union4, &subdistricts)?;
    for sd in &subdistricts {
        regions.push(Region {
            code: sd.code.clone(),
            name_zh: sd.name_zh.clone(),
            name_en: sd.name_en.clone(),
            level: Level::Subdistrict,
            parent: Some(DISTRICT_CODE.into()),
            approximate: sd.code != TIANPINGLU_CODE,
            geom: sub_geoms[&sd.code].clone(),
        });
    }

    // Communities.
    let mut communities = Vec::new();
    for sd in &subdistricts {
        let rows = committees.get(&sd.code).map(Vec::as_slice).unwrap_or(&[]);
        if rows.is_empty() {
            return Err(format!(
                "sub-district {} has no residents' committee",
                sd.code
            ));
        }
        let parent = &sub_geoms[&sd.code];
        let cells = divide(parent, rows.len(), seed, &sd.code)
            .map_err(|e| format!("communities of {}: {e}", sd.code))?;
        // `rows` is sorted by code; `cells` is in reading order.
        for (row, geom) in rows.iter().zip(cells) {
            communities.push(Region {
                code: row.code.clone(),
                name_zh: row.name.clone(),
                name_en: committees_en.get(&row.code).cloned(),
                level: Level::Community,
                parent: Some(sd.code.clone()),
                approximate: true,
                geom,
            });
        }
    }
    communities.sort_by(|a, b| a.code.cmp(&b.code));

    // Grids.
    let areas: Vec<f64> = communities.iter().map(|c| c.geom.unsigned_area()).collect();
    let counts = allocate(&areas, target_grids, MIN_GRIDS_PER_COMMUNITY);
    let mut grids = Vec::new();
    for (community, &n) in communities.iter().zip(&counts) {
        if n > 999 {
            return Err(format!(
                "community {} would get {n} grids (max 999)",
                community.code
            ));
        }
        let cells = divide(&community.geom, n, seed, &community.code)
            .map_err(|e| format!("grids of {}: {e}", community.code))?;
        for (k, geom) in cells.into_iter().enumerate() {
            grids.push(Region {
                code: format!("{}{:03}", community.code, k + 1),
                name_zh: format!("{}第{}网格", community.name_zh, k + 1),
                name_en: None,
                level: Level::Grid,
                parent: Some(community.code.clone()),
                approximate: true,
                geom,
            });
        }
    }

    regions.extend(communities);
    regions.extend(grids);
    write_geojson(&regions, &proj, seed, target_grids)
}

// ---------------------------------------------------------------------------
// Territory model
// ---------------------------------------------------------------------------

/// Territorial level of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    District,
    Subdistrict,
    Community,
    Grid,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::District => "district",
            Level::Subdistrict => "subdistrict",
            Level::Community => "community",
            Level::Grid => "grid",
        }
    }
}

/// One feature of the output, geometry in the local metric plane.
struct Region {
    code: String,
    name_zh: String,
    name_en: Option<String>,
    level: Level,
    parent: Option<String>,
    approximate: bool,
    geom: MultiPolygon<f64>,
}

/// A sub-district as read from the two sub-district CSVs.
struct Subdistrict {
    code: String,
    name_zh: String,
    name_en: Option<String>,
    /// Seed point in the local plane.
    seed: Coord<f64>,
}

/// A residents' committee row.
struct Committee {
    code: String,
    name: String,
}

/// Reads the seed CSV (which defines the set of sub-districts) joined with the
/// sub-district table (names and pinyin), sorted by code.
fn read_subdistricts(src: &Sources, proj: &Projection) -> Result<Vec<Subdistrict>, String> {
    let table = Table::parse(&src.subdistricts_csv).map_err(|e| format!("sub-districts: {e}"))?;
    let mut info: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    for row in 0..table.rows.len() {
        let code = table.get(row, "code_9")?.to_string();
        let name = table.get(row, "name")?.to_string();
        let pinyin = table.get(row, "pinyin")?;
        let kind = table.get(row, "type").unwrap_or("");
        info.insert(code, (name, english_name(pinyin, kind)));
    }

    let seeds = Table::parse(&src.seeds_csv).map_err(|e| format!("seed points: {e}"))?;
    let mut out = Vec::new();
    for row in 0..seeds.rows.len() {
        let code = seeds.get(row, "code_9")?.to_string();
        let lon = parse_f64(seeds.get(row, "lon_wgs84")?)?;
        let lat = parse_f64(seeds.get(row, "lat_wgs84")?)?;
        let (name_zh, name_en) = match info.get(&code) {
            Some((name, en)) => (name.clone(), en.clone()),
            None => (seeds.get(row, "name")?.to_string(), None),
        };
        out.push(Subdistrict {
            code,
            name_zh,
            name_en,
            seed: proj.project(lon, lat),
        });
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    if out.windows(2).any(|w| w[0].code == w[1].code) {
        return Err("duplicate sub-district code in the seed points".into());
    }
    for code in std::iter::once(&TIANPINGLU_CODE).chain(UNION4_OTHER_CODES.iter()) {
        if !out.iter().any(|s| s.code == *code) {
            return Err(format!("no seed point for sub-district {code}"));
        }
    }
    Ok(out)
}

/// English name from pinyin: "tian ping lu" + 街道 → "Tianpinglu Subdistrict",
/// "hua jing" + 镇 → "Huajing Town".
fn english_name(pinyin: &str, kind: &str) -> Option<String> {
    let joined: String = pinyin.split_whitespace().collect();
    let mut chars = joined.chars();
    let first = chars.next()?;
    let suffix = if kind == "镇" { "Town" } else { "Subdistrict" };
    Some(format!(
        "{}{} {suffix}",
        first.to_uppercase(),
        chars.as_str()
    ))
}

/// Reads the committees' English names: code → name.
fn read_committees_en(text: &str) -> Result<BTreeMap<String, String>, String> {
    let table = Table::parse(text).map_err(|e| format!("committees' English names: {e}"))?;
    let mut out = BTreeMap::new();
    for row in 0..table.rows.len() {
        let code = table.get(row, "rc_code_12")?.to_string();
        let name = table.get(row, "name_en")?.trim().to_string();
        if name.is_empty() {
            continue;
        }
        if out.insert(code.clone(), name).is_some() {
            return Err(format!("duplicate English name for committee {code}"));
        }
    }
    Ok(out)
}

/// Reads the committee table, grouped by sub-district code (each group sorted
/// by committee code). Rows of unknown sub-districts are skipped.
fn read_committees(
    text: &str,
    subdistricts: &[Subdistrict],
) -> Result<BTreeMap<String, Vec<Committee>>, String> {
    let table = Table::parse(text).map_err(|e| format!("committees: {e}"))?;
    let known: BTreeSet<&str> = subdistricts.iter().map(|s| s.code.as_str()).collect();
    let mut seen = BTreeSet::new();
    let mut out: BTreeMap<String, Vec<Committee>> = BTreeMap::new();
    for row in 0..table.rows.len() {
        let code = table.get(row, "rc_code_12")?;
        let sub = table.get(row, "subdistrict_code_9")?;
        if !known.contains(sub) {
            continue;
        }
        if code.len() != 12 || !code.starts_with(sub) {
            return Err(format!("committee code {code} does not extend {sub}"));
        }
        if !seen.insert(code.to_string()) {
            return Err(format!("duplicate committee code {code}"));
        }
        out.entry(sub.to_string()).or_default().push(Committee {
            code: code.to_string(),
            name: table.get(row, "rc_name")?.to_string(),
        });
    }
    for rows in out.values_mut() {
        rows.sort_by(|a, b| a.code.cmp(&b.code));
    }
    Ok(out)
}

/// Builds the 13 sub-district geometries (keyed by code) so that they tile
/// the district.
fn subdistrict_geometries(
    district: &MultiPolygon<f64>,
    tianpinglu: &MultiPolygon<f64>,
    union4: &MultiPolygon<f64>,
    subdistricts: &[Subdistrict],
) -> Result<BTreeMap<String, MultiPolygon<f64>>, String> {
    let tianpinglu = clean(tianpinglu.intersection(district));
    let union4 = clean(union4.intersection(district));
    let inner = clean(union4.difference(&tianpinglu));
    let outer = clean(district.difference(&union4));

    let (group3, group9): (Vec<&Subdistrict>, Vec<&Subdistrict>) = subdistricts
        .iter()
        .filter(|s| s.code != TIANPINGLU_CODE)
        .partition(|s| UNION4_OTHER_CODES.contains(&s.code.as_str()));

    let mut out = BTreeMap::new();
    out.insert(TIANPINGLU_CODE.to_string(), tianpinglu);
    for (area, group) in [(&inner, group3), (&outer, group9)] {
        let seeds: Vec<Coord<f64>> = group.iter().map(|s| s.seed).collect();
        for (sd, cell) in group.iter().zip(voronoi_partition(area, &seeds)) {
            out.insert(sd.code.clone(), cell);
        }
    }
    for (code, geom) in &out {
        if geom.0.is_empty() {
            return Err(format!("sub-district {code} came out empty"));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Dividing a region into cells
// ---------------------------------------------------------------------------

/// Divides `parent` into `n` cells: seed points sampled in it with a PRNG
/// keyed by (`seed`, `code`), relaxed by Lloyd's algorithm, Voronoi cells
/// clipped to `parent`, returned in reading order.
fn divide(
    parent: &MultiPolygon<f64>,
    n: usize,
    seed: u64,
    code: &str,
) -> Result<Vec<MultiPolygon<f64>>, String> {
    let mut rng = Rng::new(seed ^ fnv1a(code.as_bytes()));
    let mut seeds = sample_points(parent, n, &mut rng)?;
    for _ in 0..LLOYD_ROUNDS {
        let cells = voronoi_partition(parent, &seeds);
        for (s, cell) in seeds.iter_mut().zip(&cells) {
            if let Some(c) = cell.centroid() {
                if parent.contains(&c) {
                    *s = c.0;
                }
            }
        }
    }
    let cells = voronoi_partition(parent, &seeds);
    if let Some(i) = cells.iter().position(|c| c.0.is_empty()) {
        return Err(format!("cell {i} of {n} is empty"));
    }
    let centroids: Vec<Coord<f64>> = cells
        .iter()
        .zip(&seeds)
        .map(|(c, s)| c.centroid().map_or(*s, |p| p.0))
        .collect();
    let order = reading_order(&centroids);
    let mut cells: Vec<Option<MultiPolygon<f64>>> = cells.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| cells[i].take()).collect())
}

/// Draws `n` distinct points uniformly inside `region` by rejection sampling
/// in its bounding box.
fn sample_points(
    region: &MultiPolygon<f64>,
    n: usize,
    rng: &mut Rng,
) -> Result<Vec<Coord<f64>>, String> {
    let rect = region.bounding_rect().ok_or("empty region")?;
    let (min, w, h) = (rect.min(), rect.width(), rect.height());
    let mut points: Vec<Coord<f64>> = Vec::with_capacity(n);
    let max_attempts = 10_000 + 1_000 * n;
    for _ in 0..max_attempts {
        if points.len() == n {
            break;
        }
        let p = Coord {
            x: min.x + rng.f64() * w,
            y: min.y + rng.f64() * h,
        };
        let too_close = points.iter().any(|q| (p.x - q.x).hypot(p.y - q.y) < 1.0);
        if !too_close && region.contains(&p) {
            points.push(p);
        }
    }
    if points.len() < n {
        return Err(format!("could only place {} of {n} points", points.len()));
    }
    Ok(points)
}

/// The Voronoi cells of `seeds`, each clipped to `region` (slivers dropped).
/// Together they tile `region`. Cell `i` belongs to `seeds[i]`.
fn voronoi_partition(region: &MultiPolygon<f64>, seeds: &[Coord<f64>]) -> Vec<MultiPolygon<f64>> {
    let Some(rect) = region.bounding_rect() else {
        return seeds.iter().map(|_| MultiPolygon::new(vec![])).collect();
    };
    // A box comfortably containing the region and every seed.
    let (mut lo, mut hi) = (rect.min(), rect.max());
    for s in seeds {
        lo = Coord {
            x: lo.x.min(s.x),
            y: lo.y.min(s.y),
        };
        hi = Coord {
            x: hi.x.max(s.x),
            y: hi.y.max(s.y),
        };
    }
    let margin = 1_000.0 + (hi.x - lo.x).max(hi.y - lo.y);
    let frame = vec![
        Coord {
            x: lo.x - margin,
            y: lo.y - margin,
        },
        Coord {
            x: hi.x + margin,
            y: lo.y - margin,
        },
        Coord {
            x: hi.x + margin,
            y: hi.y + margin,
        },
        Coord {
            x: lo.x - margin,
            y: hi.y + margin,
        },
    ];
    seeds
        .iter()
        .enumerate()
        .map(|(i, si)| {
            let mut cell = frame.clone();
            for (j, sj) in seeds.iter().enumerate() {
                if i != j && cell.len() >= 3 {
                    cell = clip_half_plane(&cell, *si, *sj);
                }
            }
            if cell.len() < 3 {
                return MultiPolygon::new(vec![]);
            }
            let cell = Polygon::new(LineString::from(cell), vec![]);
            clean(cell.intersection(region))
        })
        .collect()
}

/// Clips the convex polygon `poly` (open ring) to the half-plane of points at
/// least as close to `a` as to `b` (Sutherland–Hodgman with one edge).
fn clip_half_plane(poly: &[Coord<f64>], a: Coord<f64>, b: Coord<f64>) -> Vec<Coord<f64>> {
    let d = Coord {
        x: b.x - a.x,
        y: b.y - a.y,
    };
    let m = Coord {
        x: (a.x + b.x) / 2.0,
        y: (a.y + b.y) / 2.0,
    };
    let side = |p: Coord<f64>| (p.x - m.x) * d.x + (p.y - m.y) * d.y;
    let mut out = Vec::with_capacity(poly.len() + 1);
    for (k, &p) in poly.iter().enumerate() {
        let q = poly[(k + 1) % poly.len()];
        let (fp, fq) = (side(p), side(q));
        if fp <= 0.0 {
            out.push(p);
        }
        if (fp < 0.0 && fq > 0.0) || (fp > 0.0 && fq < 0.0) {
            let t = fp / (fp - fq);
            out.push(Coord {
                x: p.x + t * (q.x - p.x),
                y: p.y + t * (q.y - p.y),
            });
        }
    }
    out
}

/// Reading order of points: about √n rows from north to south, each row
/// west to east. Returns indices into `points`.
fn reading_order(points: &[Coord<f64>]) -> Vec<usize> {
    let n = points.len();
    if n == 0 {
        return Vec::new();
    }
    let rows = ((n as f64).sqrt().round() as usize).max(1);
    let per_row = n.div_ceil(rows);
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| {
        (points[b].y.total_cmp(&points[a].y)).then(points[a].x.total_cmp(&points[b].x))
    });
    let mut out = Vec::with_capacity(n);
    for row in idx.chunks(per_row) {
        let mut row = row.to_vec();
        row.sort_by(|&a, &b| {
            (points[a].x.total_cmp(&points[b].x)).then(points[b].y.total_cmp(&points[a].y))
        });
        out.extend(row);
    }
    out
}

/// Splits `total` items among parts in proportion to `weights`, each part
/// getting at least `min` (largest-remainder method; ties go to the lower
/// index). The sum is `total` unless the minimum forces more.
fn allocate(weights: &[f64], total: usize, min: usize) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    if weights.is_empty() || sum <= 0.0 {
        return vec![min; weights.len()];
    }
    let quotas: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut counts: Vec<usize> = quotas
        .iter()
        .map(|q| (q.floor() as usize).max(min))
        .collect();
    let remainder = |i: usize| quotas[i] - quotas[i].floor();
    let mut by_remainder: Vec<usize> = (0..weights.len()).collect();
    by_remainder.sort_by(|&a, &b| remainder(b).total_cmp(&remainder(a)).then(a.cmp(&b)));
    let mut assigned: usize = counts.iter().sum();
    // Too few: top up the largest remainders.
    for &i in by_remainder.iter().cycle().take(weights.len() * 2) {
        if assigned >= total {
            break;
        }
        counts[i] += 1;
        assigned += 1;
    }
    // Too many (because of the minimum): take back from the smallest
    // remainders, several passes if need be.
    while assigned > total {
        let mut changed = false;
        for &i in by_remainder.iter().rev() {
            if assigned > total && counts[i] > min {
                counts[i] -= 1;
                assigned -= 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    counts
}

/// Drops polygon parts and holes smaller than [`MIN_AREA_M2`].
fn clean(mp: MultiPolygon<f64>) -> MultiPolygon<f64> {
    let polygons =
        mp.0.into_iter()
            .filter(|p| p.unsigned_area() >= MIN_AREA_M2)
            .map(|p| {
                let (exterior, holes) = p.into_inner();
                let holes = holes
                    .into_iter()
                    .filter(|h| Polygon::new(h.clone(), vec![]).unsigned_area() >= MIN_AREA_M2)
                    .collect();
                Polygon::new(exterior, holes)
            })
            .collect();
    MultiPolygon::new(polygons)
}

// ---------------------------------------------------------------------------
// Projection, PRNG, input parsing
// ---------------------------------------------------------------------------

/// Local equirectangular projection: metres east/north of an origin. Over the
/// ~15 km of the district its scale error is below 0.1 %.
#[derive(Debug, Clone, Copy)]
struct Projection {
    lon0: f64,
    lat0: f64,
    /// Metres per degree of longitude / latitude at `lat0` (WGS-84 ellipsoid).
    kx: f64,
    ky: f64,
}

impl Projection {
    fn new(lon0: f64, lat0: f64) -> Self {
        const A: f64 = 6_378_137.0;
        const E2: f64 = 6.694_379_990_14e-3;
        let phi = lat0.to_radians();
        let w = 1.0 - E2 * phi.sin().powi(2);
        let meridional = A * (1.0 - E2) / w.powf(1.5);
        let normal = A / w.sqrt();
        Projection {
            lon0,
            lat0,
            kx: normal * phi.cos() * std::f64::consts::PI / 180.0,
            ky: meridional * std::f64::consts::PI / 180.0,
        }
    }

    fn project(&self, lon: f64, lat: f64) -> Coord<f64> {
        Coord {
            x: (lon - self.lon0) * self.kx,
            y: (lat - self.lat0) * self.ky,
        }
    }

    fn unproject(&self, c: Coord<f64>) -> (f64, f64) {
        (self.lon0 + c.x / self.kx, self.lat0 + c.y / self.ky)
    }
}

fn parse_f64(s: &str) -> Result<f64, String> {
    s.trim().parse().map_err(|_| format!("not a number: {s:?}"))
}

/// Reads a GeoJSON Feature, FeatureCollection (all features) or bare
/// Polygon/MultiPolygon geometry into a local-plane MultiPolygon.
fn parse_geometry(text: &str, proj: &Projection) -> Result<MultiPolygon<f64>, String> {
    let json: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let mut polygons = Vec::new();
    collect_polygons(&json, proj, &mut polygons)?;
    if polygons.is_empty() {
        return Err("no polygon found".into());
    }
    Ok(MultiPolygon::new(polygons))
}

fn collect_polygons(
    v: &Value,
    proj: &Projection,
    out: &mut Vec<Polygon<f64>>,
) -> Result<(), String> {
    match v.get("type").and_then(Value::as_str) {
        Some("FeatureCollection") => {
            let features = v["features"].as_array().ok_or("features is not an array")?;
            for f in features {
                collect_polygons(f, proj, out)?;
            }
        }
        Some("Feature") => collect_polygons(&v["geometry"], proj, out)?,
        Some("Polygon") => out.push(json_polygon(&v["coordinates"], proj)?),
        Some("MultiPolygon") => {
            let parts = v["coordinates"]
                .as_array()
                .ok_or("coordinates is not an array")?;
            for p in parts {
                out.push(json_polygon(p, proj)?);
            }
        }
        other => return Err(format!("unsupported GeoJSON type {other:?}")),
    }
    Ok(())
}

fn json_polygon(v: &Value, proj: &Projection) -> Result<Polygon<f64>, String> {
    let rings = v.as_array().ok_or("polygon is not an array of rings")?;
    let mut rings = rings.iter().map(|r| json_ring(r, proj));
    let exterior = rings.next().ok_or("polygon without rings")??;
    let holes = rings.collect::<Result<Vec<_>, _>>()?;
    Ok(Polygon::new(exterior, holes))
}

fn json_ring(v: &Value, proj: &Projection) -> Result<LineString<f64>, String> {
    let points = v.as_array().ok_or("ring is not an array")?;
    points
        .iter()
        .map(|p| {
            match (
                p.get(0).and_then(Value::as_f64),
                p.get(1).and_then(Value::as_f64),
            ) {
                (Some(lon), Some(lat)) => Ok(proj.project(lon, lat)),
                _ => Err(format!("bad position {p}")),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(LineString::from)
}

/// A CSV file with a header row. Fields may be double-quoted (with `""` for a
/// literal quote, and commas or newlines inside quotes).
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn parse(text: &str) -> Result<Table, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut records = Vec::new();
        let mut record = Vec::new();
        let mut field = String::new();
        let mut in_quotes = false;
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if in_quotes {
                match c {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    '"' => in_quotes = false,
                    _ => field.push(c),
                }
                continue;
            }
            match c {
                '"' => in_quotes = true,
                ',' => record.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    record.push(std::mem::take(&mut field));
                    records.push(std::mem::take(&mut record));
                }
                _ => field.push(c),
            }
        }
        if in_quotes {
            return Err("unterminated quoted field".into());
        }
        if !field.is_empty() || !record.is_empty() {
            record.push(field);
            records.push(record);
        }
        // Skip blank lines.
        records.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
        let mut records = records.into_iter();
        let header = records.next().ok_or("empty CSV")?;
        Ok(Table {
            header,
            rows: records.collect(),
        })
    }

    /// The field of `row` in column `name`.
    fn get(&self, row: usize, name: &str) -> Result<&str, String> {
        let col = self
            .header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("missing column {name}"))?;
        self.rows[row]
            .get(col)
            .map(|s| s.trim())
            .ok_or_else(|| format!("row {} has no column {name}", row + 2))
    }
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

/// Serialises the regions as a FeatureCollection, one feature per line.
fn write_geojson(
    regions: &[Region],
    proj: &Projection,
    seed: u64,
    target_grids: usize,
) -> Result<String, String> {
    let mut out = String::with_capacity(4 << 20);
    out.push_str("{\"type\":\"FeatureCollection\",\n");
    out.push_str("\"name\":\"xuhui_territory\",\n");
    out.push_str(
        "\"attribution\":\"District outline, 天平路街道 and the 徐家汇+天平路+湖南路+枫林路 \
         outline © OpenStreetMap contributors, ODbL 1.0. All other sub-district, community \
         and grid boundaries are generated approximations (approximate=true), not official \
         boundaries.\",\n",
    );
    let _ = writeln!(
        out,
        "\"generator\":{{\"name\":\"cityos territory_gen\",\"seed\":{seed},\"target_grids\":{target_grids}}},"
    );
    out.push_str("\"features\":[\n");
    for (i, r) in regions.iter().enumerate() {
        let polygons = output_polygons(&r.geom, proj)
            .map_err(|e| format!("{} {}: {e}", r.level.as_str(), r.code))?;
        let str_or_null = |s: Option<&String>| match s {
            Some(s) => Value::String(s.clone()).to_string(),
            None => "null".into(),
        };
        let _ = write!(
            out,
            "{{\"type\":\"Feature\",\"properties\":{{\"code\":{},\"name_zh\":{},\"name_en\":{},\
             \"level\":\"{}\",\"parent\":{},\"approximate\":{}}},\"geometry\":",
            Value::String(r.code.clone()),
            Value::String(r.name_zh.clone()),
            str_or_null(r.name_en.as_ref()),
            r.level.as_str(),
            str_or_null(r.parent.as_ref()),
            r.approximate,
        );
        write_geometry(&mut out, &polygons);
        out.push('}');
        if i + 1 < regions.len() {
            out.push(',');
        }
        out.push('\n');
    }
    out.push_str("]}\n");
    Ok(out)
}

/// Converts a local-plane geometry to rounded WGS-84 rings, oriented per
/// RFC 7946, and checks that the result is a valid, non-empty geometry.
fn output_polygons(mp: &MultiPolygon<f64>, proj: &Projection) -> Result<MultiPolygon<f64>, String> {
    let scale = 10f64.powi(COORD_DECIMALS);
    let round = |v: f64| (v * scale).round() / scale;
    // Minimum ring area in square degrees equivalent to MIN_AREA_M2.
    let min_deg2 = MIN_AREA_M2 / (proj.kx * proj.ky);
    let ring = |ls: &LineString<f64>, ccw: bool| -> Option<LineString<f64>> {
        let mut pts: Vec<Coord<f64>> = Vec::with_capacity(ls.0.len());
        for c in &ls.0 {
            let (lon, lat) = proj.unproject(*c);
            let c = Coord {
                x: round(lon),
                y: round(lat),
            };
            if pts.last() != Some(&c) {
                pts.push(c);
            }
        }
        while pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        if pts.len() < 3 {
            return None;
        }
        pts.push(pts[0]);
        let signed = Polygon::new(LineString::from(pts.clone()), vec![]).signed_area();
        if signed.abs() < min_deg2 {
            return None;
        }
        if (signed > 0.0) != ccw {
            pts.reverse();
        }
        Some(LineString::from(pts))
    };
    let polygons: Vec<Polygon<f64>> =
        mp.0.iter()
            .filter_map(|p| {
                let exterior = ring(p.exterior(), true)?;
                let holes = p
                    .interiors()
                    .iter()
                    .filter_map(|h| ring(h, false))
                    .collect();
                Some(Polygon::new(exterior, holes))
            })
            .collect();
    if polygons.is_empty() {
        return Err("empty geometry".into());
    }
    let result = MultiPolygon::new(polygons);
    if let Err(e) = result.check_validation() {
        return Err(format!("invalid geometry after rounding: {e}"));
    }
    Ok(result)
}

/// Appends `"type"` and `"coordinates"` of `mp` (a Polygon when it has one
/// part) and the closing brace of the geometry object.
fn write_geometry(out: &mut String, mp: &MultiPolygon<f64>) {
    let single = mp.0.len() == 1;
    out.push_str(if single {
        "{\"type\":\"Polygon\",\"coordinates\":"
    } else {
        "{\"type\":\"MultiPolygon\",\"coordinates\":["
    });
    for (i, p) in mp.0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, r) in std::iter::once(p.exterior())
            .chain(p.interiors())
            .enumerate()
        {
            if j > 0 {
                out.push(',');
            }
            out.push('[');
            for (k, c) in r.0.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let _ = write!(out, "[{},{}]", fmt_coord(c.x), fmt_coord(c.y));
            }
            out.push(']');
        }
        out.push(']');
    }
    out.push_str(if single { "}" } else { "]}" });
}

/// Formats a coordinate with at most [`COORD_DECIMALS`] decimals, without
/// trailing zeros.
fn fmt_coord(v: f64) -> String {
    let s = format!("{:.*}", COORD_DECIMALS as usize, v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use geo::Point;
    use std::collections::HashMap;
    use std::sync::OnceLock;

    const SEED: u64 = 20211;
    const TARGET: usize = 3000;

    fn sources() -> Sources {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/xuhui/sources");
        load_sources(&dir).expect("read data/xuhui/sources")
    }

    /// The generated territory, parsed once for all tests.
    struct Parsed {
        text: String,
        features: Vec<Feature>,
    }

    struct Feature {
        code: String,
        name_zh: String,
        level: String,
        parent: Option<String>,
        approximate: bool,
        /// Geometry in lon/lat.
        geom: MultiPolygon<f64>,
        /// Area in m².
        area: f64,
    }

    fn parsed() -> &'static Parsed {
        static PARSED: OnceLock<Parsed> = OnceLock::new();
        PARSED.get_or_init(|| {
            let text = generate(&sources(), SEED, TARGET).expect("generate");
            let json: Value = serde_json::from_str(&text).expect("valid JSON");
            let identity = Projection {
                lon0: 0.0,
                lat0: 0.0,
                kx: 1.0,
                ky: 1.0,
            };
            let proj = Projection::new(LON0, LAT0);
            let features = json["features"]
                .as_array()
                .expect("features")
                .iter()
                .map(|f| {
                    let p = &f["properties"];
                    let geom = parse_geometry(&f.to_string(), &identity).expect("geometry");
                    let local = parse_geometry(&f.to_string(), &proj).expect("geometry");
                    Feature {
                        code: p["code"].as_str().unwrap().to_string(),
                        name_zh: p["name_zh"].as_str().unwrap().to_string(),
                        level: p["level"].as_str().unwrap().to_string(),
                        parent: p["parent"].as_str().map(str::to_string),
                        approximate: p["approximate"].as_bool().unwrap(),
                        area: local.unsigned_area(),
                        geom,
                    }
                })
                .collect();
            Parsed { text, features }
        })
    }

    fn level(name: &str) -> Vec<&'static Feature> {
        parsed()
            .features
            .iter()
            .filter(|f| f.level == name)
            .collect()
    }

    #[test]
    fn same_seed_gives_identical_text_and_other_seed_differs() {
        let src = sources();
        let a = generate(&src, 7, 600).unwrap();
        let b = generate(&src, 7, 600).unwrap();
        assert_eq!(a, b);
        let c = generate(&src, 8, 600).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn counts_per_level_and_order() {
        let p = parsed();
        let levels: Vec<&str> = p.features.iter().map(|f| f.level.as_str()).collect();
        let rank = |l: &str| {
            ["district", "subdistrict", "community", "grid"]
                .iter()
                .position(|x| *x == l)
                .unwrap()
        };
        assert!(
            levels.windows(2).all(|w| rank(w[0]) <= rank(w[1])),
            "features out of level order"
        );
        assert_eq!(level("district").len(), 1);
        assert_eq!(level("subdistrict").len(), 13);
        assert_eq!(level("community").len(), 306);
        let grids = level("grid").len();
        assert!((2900..=3100).contains(&grids), "{grids} grids");
    }

    #[test]
    fn every_committee_appears_exactly_once() {
        let src = sources();
        let table = Table::parse(&src.committees_csv).unwrap();
        let mut expected = BTreeSet::new();
        for row in 0..table.rows.len() {
            if table.get(row, "subdistrict_code_9").unwrap() != "310104501" {
                expected.insert(table.get(row, "rc_code_12").unwrap().to_string());
            }
        }
        assert_eq!(expected.len(), 306);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for f in level("community") {
            *seen.entry(f.code.as_str()).or_default() += 1;
            assert_eq!(f.parent.as_deref(), Some(&f.code[..9]));
        }
        assert!(seen.values().all(|&n| n == 1));
        let seen: BTreeSet<String> = seen.keys().map(|s| s.to_string()).collect();
        assert_eq!(seen, expected);
    }

    #[test]
    fn parents_exist_and_grids_are_numbered() {
        let p = parsed();
        let by_code: HashMap<&str, &Feature> =
            p.features.iter().map(|f| (f.code.as_str(), f)).collect();
        assert_eq!(by_code.len(), p.features.len(), "duplicate codes");
        for f in &p.features {
            match &f.parent {
                None => assert_eq!(f.level, "district"),
                Some(parent) => assert!(
                    by_code.contains_key(parent.as_str()),
                    "{} has no parent {parent}",
                    f.code
                ),
            }
        }
        let mut per_community: HashMap<&str, usize> = HashMap::new();
        for g in level("grid") {
            let parent = g.parent.as_deref().unwrap();
            assert_eq!(g.code.len(), 15);
            assert!(g.code.starts_with(parent));
            let n = per_community.entry(parent).or_default();
            *n += 1;
            assert_eq!(g.code[12..], format!("{n:03}"));
            let community = by_code[parent];
            assert_eq!(g.name_zh, format!("{}第{}网格", community.name_zh, n));
            assert!(g.approximate);
        }
        assert_eq!(per_community.len(), 306);
        assert!(per_community
            .values()
            .all(|&n| n >= MIN_GRIDS_PER_COMMUNITY));
    }

    #[test]
    fn children_tile_their_parents() {
        let p = parsed();
        let mut child_area: HashMap<&str, f64> = HashMap::new();
        for f in &p.features {
            if let Some(parent) = &f.parent {
                *child_area.entry(parent.as_str()).or_default() += f.area;
            }
        }
        for f in p.features.iter().filter(|f| f.level != "grid") {
            let sum = child_area[f.code.as_str()];
            let rel = (sum - f.area).abs() / f.area;
            assert!(
                rel < 0.005,
                "{}: children {sum:.0} m² vs {:.0} m²",
                f.code,
                f.area
            );
        }
        // The district is about 55 km².
        let district = level("district")[0].area;
        assert!(
            (54.0e6..56.5e6).contains(&district),
            "district area {district}"
        );
    }

    #[test]
    fn geometry_is_valid_closed_and_ccw() {
        for f in &parsed().features {
            assert!(!f.geom.0.is_empty(), "{} empty", f.code);
            assert!(f.geom.is_valid(), "{} invalid", f.code);
            for poly in &f.geom.0 {
                assert!(poly.exterior().is_closed());
                assert!(
                    Polygon::new(poly.exterior().clone(), vec![]).signed_area() > 0.0,
                    "{} cw",
                    f.code
                );
                for h in poly.interiors() {
                    assert!(
                        Polygon::new(h.clone(), vec![]).signed_area() < 0.0,
                        "{} hole ccw",
                        f.code
                    );
                }
            }
        }
    }

    #[test]
    fn tianpinglu_is_real_and_contains_its_centroid() {
        let tp = parsed()
            .features
            .iter()
            .find(|f| f.code == TIANPINGLU_CODE)
            .unwrap();
        assert_eq!(tp.name_zh, "天平路街道");
        assert!(!tp.approximate);
        assert!(tp.geom.contains(&Point::new(121.4454, 31.2067)));
        assert!(
            (tp.area / 1e6 - 2.69).abs() < 0.05,
            "天平路 area {}",
            tp.area
        );
        let others = level("subdistrict");
        for f in others.iter().filter(|f| f.code != TIANPINGLU_CODE) {
            assert!(f.approximate);
            assert!(
                !f.geom.contains(&Point::new(121.4454, 31.2067)),
                "{}",
                f.code
            );
        }
    }

    #[test]
    fn english_names_and_attribution() {
        assert_eq!(
            english_name("tian ping lu", "街道").as_deref(),
            Some("Tianpinglu Subdistrict")
        );
        assert_eq!(
            english_name("hua jing", "镇").as_deref(),
            Some("Huajing Town")
        );
        assert_eq!(english_name("", "镇"), None);
        assert!(parsed().text.contains("© OpenStreetMap contributors"));
    }

    #[test]
    fn csv_handles_quotes() {
        let t = Table::parse("a,b,c\r\n1,\"x, \"\"y\"\"\",3\n\n4,5,6").unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.get(0, "b").unwrap(), "x, \"y\"");
        assert_eq!(t.get(1, "c").unwrap(), "6");
    }

    #[test]
    fn allocation_is_proportional_with_minimum() {
        assert_eq!(allocate(&[1.0, 1.0, 2.0], 8, 1), vec![2, 2, 4]);
        assert_eq!(allocate(&[100.0, 1.0], 10, 3), vec![7, 3]);
        assert_eq!(allocate(&[1.0, 1.0], 4, 3), vec![3, 3]);
    }

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        for _ in 0..100 {
            let x = a.f64();
            assert_eq!(x, b.f64());
            assert!((0.0..1.0).contains(&x));
        }
    }
}
