//! Facilities: a service type at a position, with where the row came from. Read from CSV
//! (`id,type,name,lon,lat[,hours]` — `type` a type code or an OSM class of the table, or
//! the OSM-derived file's `class`), from the meal service's canteens
//! (`id,kind,name,subdistrict,lon,lat`, kind `canteen` | `meal_point` → `elder_meals`) and
//! from GeoJSON (points, or polygons taken at their vertex average; properties `type` or
//! `fclass`, `name`, `id`/`osm_id`, `opening_hours`). Each bad row is named by its line or
//! feature and left out; good rows are kept.

use super::types::TypeTable;
use crate::classify::csv;
use serde_json::Value;

/// Where a facility comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// OpenStreetMap (© OpenStreetMap contributors, ODbL).
    Osm,
    /// cityos's own (canteens and meal points, stations).
    Own,
    /// Imported by a user.
    Import,
    /// A what-if candidate, not a real facility.
    Candidate,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Osm => "osm",
            Source::Own => "cityos",
            Source::Import => "import",
            Source::Candidate => "candidate",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Facility {
    pub id: String,
    /// Index of its service type in the table.
    pub kind: usize,
    pub name: String,
    pub lon: f64,
    pub lat: f64,
    pub source: Source,
    /// Opening hours where known (OSM `opening_hours` syntax or free text).
    pub hours: Option<String>,
}

/// The plausible area for facility positions: `[min_lon, min_lat, max_lon, max_lat]`
/// (the district's box widened a little: people walk across the line).
pub type Bounds = [f64; 4];

/// Widens a lon/lat box by `metres` on every side.
pub fn widen(b: Bounds, metres: f64) -> Bounds {
    let dlat = metres / 110_574.0;
    let dlon = metres / (111_320.0 * ((b[1] + b[3]) / 2.0).to_radians().cos());
    [b[0] - dlon, b[1] - dlat, b[2] + dlon, b[3] + dlat]
}

/// Why a position is refused, if it is.
pub fn check_position(lon: f64, lat: f64, bounds: Bounds) -> Result<(), String> {
    if !lon.is_finite()
        || !lat.is_finite()
        || !(-180.0..=180.0).contains(&lon)
        || !(-90.0..=90.0).contains(&lat)
    {
        return Err(format!(
            "position ({lon}, {lat}) is not a WGS-84 longitude, latitude"
        ));
    }
    if lon < bounds[0] || lon > bounds[2] || lat < bounds[1] || lat > bounds[3] {
        return Err(format!(
            "position ({lon:.6}, {lat:.6}) is outside the plausible area ({:.4}–{:.4} E, {:.4}–{:.4} N)",
            bounds[0], bounds[2], bounds[1], bounds[3]
        ));
    }
    Ok(())
}

/// Facilities read, and the rows refused (each named).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Read {
    pub facilities: Vec<Facility>,
    pub problems: Vec<String>,
}

fn number(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Reads facilities from CSV. The type column is `type` (a type code or a mapped OSM
/// class) or `class` (an OSM class; a class the table does not map is skipped silently —
/// the OSM file carries classes the district may map later).
pub fn parse_csv(
    text: &str,
    table: &TypeTable,
    source: Source,
    bounds: Bounds,
) -> Result<Read, String> {
    let t = csv::parse(&super::strip_comments(text)).map_err(|e| e.to_string())?;
    let col = |n: &str| t.header.iter().position(|h| h == n);
    let need = |n: &str| {
        col(n).ok_or_else(|| format!("no column {n:?} (the header has {})", t.header.join(",")))
    };
    let (type_col, by_class) = match (col("type"), col("class")) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => {
            return Err(format!(
                "no column \"type\" or \"class\" (the header has {})",
                t.header.join(",")
            ))
        }
    };
    let (id, name, lon, lat) = (need("id")?, need("name")?, need("lon")?, need("lat")?);
    let hours = col("hours");
    let mut out = Read::default();
    for (line, row) in &t.rows {
        if row.len() != t.header.len() {
            out.problems.push(format!(
                "line {line}: {} fields, the header has {}",
                row.len(),
                t.header.len()
            ));
            continue;
        }
        let ty = row[type_col].trim();
        let kind = if by_class {
            table.of_class(ty)
        } else {
            table.resolve(ty)
        };
        let Some(kind) = kind else {
            if !by_class {
                out.problems
                    .push(format!("line {line}: unknown type {ty:?}"));
            }
            continue;
        };
        let (Some(x), Some(y)) = (number(&row[lon]), number(&row[lat])) else {
            out.problems.push(format!(
                "line {line}: lon/lat {:?}, {:?} are not numbers",
                row[lon], row[lat]
            ));
            continue;
        };
        if let Err(e) = check_position(x, y, bounds) {
            out.problems.push(format!("line {line}: {e}"));
            continue;
        }
        let fid = row[id].trim();
        if fid.is_empty() {
            out.problems.push(format!("line {line}: empty id"));
            continue;
        }
        out.facilities.push(Facility {
            id: fid.to_string(),
            kind,
            name: row[name].trim().to_string(),
            lon: x,
            lat: y,
            source,
            hours: hours
                .map(|h| row[h].trim().to_string())
                .filter(|h| !h.is_empty()),
        });
    }
    Ok(out)
}

/// Reads the meal service's canteens and meal points (`id,kind,name,subdistrict,lon,lat`,
/// kind `canteen` | `meal_point`) as own facilities of type `elder_meals`.
pub fn parse_canteens(text: &str, table: &TypeTable, bounds: Bounds) -> Result<Read, String> {
    let Some(meals) = table.index("elder_meals") else {
        return Err("the type table has no \"elder_meals\" type".into());
    };
    let t = csv::parse(&super::strip_comments(text)).map_err(|e| e.to_string())?;
    let col = |n: &str| {
        t.header
            .iter()
            .position(|h| h == n)
            .ok_or_else(|| format!("no column {n:?} (the header has {})", t.header.join(",")))
    };
    let (id, kind, name, lon, lat) = (
        col("id")?,
        col("kind")?,
        col("name")?,
        col("lon")?,
        col("lat")?,
    );
    let mut out = Read::default();
    for (line, row) in &t.rows {
        if row.len() != t.header.len() {
            out.problems.push(format!(
                "line {line}: {} fields, the header has {}",
                row.len(),
                t.header.len()
            ));
            continue;
        }
        if !matches!(row[kind].trim(), "canteen" | "meal_point") {
            out.problems.push(format!(
                "line {line}: kind {:?} is neither canteen nor meal_point",
                row[kind]
            ));
            continue;
        }
        let (Some(x), Some(y)) = (number(&row[lon]), number(&row[lat])) else {
            out.problems.push(format!(
                "line {line}: lon/lat {:?}, {:?} are not numbers",
                row[lon], row[lat]
            ));
            continue;
        };
        if let Err(e) = check_position(x, y, bounds) {
            out.problems.push(format!("line {line}: {e}"));
            continue;
        }
        out.facilities.push(Facility {
            id: row[id].trim().to_string(),
            kind: meals,
            name: row[name].trim().to_string(),
            lon: x,
            lat: y,
            source: Source::Own,
            hours: None,
        });
    }
    Ok(out)
}

/// Reads facilities from a GeoJSON FeatureCollection.
pub fn parse_geojson(
    text: &str,
    table: &TypeTable,
    source: Source,
    bounds: Bounds,
) -> Result<Read, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Some(features) = v.get("features").and_then(Value::as_array) else {
        return Err("not a GeoJSON FeatureCollection (no \"features\" array)".into());
    };
    let mut out = Read::default();
    for (i, f) in features.iter().enumerate() {
        let at = format!("feature {}", i + 1);
        let p = f.get("properties").cloned().unwrap_or(Value::Null);
        let s = |k: &str| match p.get(k) {
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let ty = s("type").or_else(|| s("fclass")).unwrap_or_default();
        let Some(kind) = table.resolve(&ty) else {
            out.problems.push(format!("{at}: unknown type {ty:?}"));
            continue;
        };
        let g = f.get("geometry").unwrap_or(&Value::Null);
        let Some(pos) = position_of(g) else {
            out.problems.push(format!(
                "{at}: geometry {} is not a Point or Polygon with numeric coordinates",
                g.get("type").and_then(Value::as_str).unwrap_or("missing")
            ));
            continue;
        };
        if let Err(e) = check_position(pos[0], pos[1], bounds) {
            out.problems.push(format!("{at}: {e}"));
            continue;
        }
        let id = s("id")
            .or_else(|| s("osm_id"))
            .unwrap_or_else(|| format!("f{}", i + 1));
        out.facilities.push(Facility {
            id,
            kind,
            name: s("name").unwrap_or_default(),
            lon: pos[0],
            lat: pos[1],
            source,
            hours: s("opening_hours").filter(|h| !h.is_empty()),
        });
    }
    Ok(out)
}

/// A point's position, or a polygon's (multipolygon's first) outer ring vertex average.
fn position_of(g: &Value) -> Option<[f64; 2]> {
    let c = g.get("coordinates")?;
    let pt = |v: &Value| -> Option<[f64; 2]> {
        let a = v.as_array()?;
        Some([a.first()?.as_f64()?, a.get(1)?.as_f64()?])
    };
    let ring_avg = |r: &Value| -> Option<[f64; 2]> {
        let pts: Vec<[f64; 2]> = r.as_array()?.iter().map(pt).collect::<Option<_>>()?;
        let n = pts.len().saturating_sub(1).max(1).min(pts.len());
        if n == 0 {
            return None;
        }
        let (sx, sy) = pts[..n]
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        Some([sx / n as f64, sy / n as f64])
    };
    match g.get("type")?.as_str()? {
        "Point" => pt(c),
        "Polygon" => ring_avg(c.as_array()?.first()?),
        "MultiPolygon" => ring_avg(c.as_array()?.first()?.as_array()?.first()?),
        _ => None,
    }
}
