//! Duplicate detection: a new report of the same category within the category's radius
//! and time window of an open case's latest report belongs to that case.
//!
//! [`DedupIndex`] keeps the open cases bucketed by category and a ~500 m lon/lat cell, so a
//! lookup touches a handful of entries whatever the number of open cases. The engine
//! inserts a case when it opens, refreshes it on each merged report and removes it when
//! the case leaves the open states.
//!
//! Architecture Invariant: in-memory data structure only; no IO, no clock.

use crate::case::CaseId;
use crate::time::Millis;
use std::collections::HashMap;

const CELL_DEG: f64 = 0.005;
const M_PER_DEG_LAT: f64 = 111_320.0;

/// Distance in metres between two WGS-84 points (equirectangular; exact enough below a few km).
pub fn distance_m(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let mean_lat = ((lat1 + lat2) / 2.0).to_radians();
    let dx = (lon2 - lon1) * M_PER_DEG_LAT * mean_lat.cos();
    let dy = (lat2 - lat1) * M_PER_DEG_LAT;
    (dx * dx + dy * dy).sqrt()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    pub case: CaseId,
    pub lon: f64,
    pub lat: f64,
    pub last_report_at: Millis,
}

/// A match: the case and how far/long ago its latest report was.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub case: CaseId,
    pub distance_m: f64,
    pub age_ms: Millis,
}

#[derive(Debug)]
pub struct DedupIndex {
    cells: HashMap<(u16, i32, i32), Vec<Entry>>,
    where_is: HashMap<CaseId, (u16, i32, i32)>,
    /// Cell size in degrees.
    cell_deg: f64,
}

impl Default for DedupIndex {
    fn default() -> Self {
        DedupIndex::with_cell(CELL_DEG)
    }
}

impl DedupIndex {
    pub fn new() -> DedupIndex {
        DedupIndex::default()
    }

    /// An index with cells of `deg` degrees (smaller cells for an index holding every
    /// category under one key, so a lookup scans fewer entries).
    pub fn with_cell(deg: f64) -> DedupIndex {
        DedupIndex {
            cells: HashMap::new(),
            where_is: HashMap::new(),
            cell_deg: deg,
        }
    }

    fn cell(&self, lon: f64, lat: f64) -> (i32, i32) {
        (
            (lon / self.cell_deg).floor() as i32,
            (lat / self.cell_deg).floor() as i32,
        )
    }

    pub fn len(&self) -> usize {
        self.where_is.len()
    }

    pub fn is_empty(&self) -> bool {
        self.where_is.is_empty()
    }

    /// Inserts or refreshes an open case.
    pub fn upsert(&mut self, category: u16, e: Entry) {
        self.remove(e.case);
        let (cx, cy) = self.cell(e.lon, e.lat);
        let key = (category, cx, cy);
        self.cells.entry(key).or_default().push(e);
        self.where_is.insert(e.case, key);
    }

    pub fn remove(&mut self, case: CaseId) {
        if let Some(key) = self.where_is.remove(&case) {
            if let Some(v) = self.cells.get_mut(&key) {
                v.retain(|e| e.case != case);
                if v.is_empty() {
                    self.cells.remove(&key);
                }
            }
        }
    }

    /// Every open case of `category` within `radius_m` whose latest report is no older
    /// than `window_ms` at `at` (in no particular order).
    pub fn within(
        &self,
        category: u16,
        lon: f64,
        lat: f64,
        at: Millis,
        radius_m: f64,
        window_ms: Millis,
    ) -> Vec<Match> {
        let mut out = Vec::new();
        self.scan(category, lon, lat, at, radius_m, window_ms, |m| out.push(m));
        out
    }

    /// The nearest open case of `category` within `radius_m` whose latest report is no
    /// older than `window_ms` at `at`.
    pub fn find(
        &self,
        category: u16,
        lon: f64,
        lat: f64,
        at: Millis,
        radius_m: f64,
        window_ms: Millis,
    ) -> Option<Match> {
        let mut best: Option<Match> = None;
        self.scan(category, lon, lat, at, radius_m, window_ms, |m| {
            if best.is_none_or(|b| m.distance_m < b.distance_m) {
                best = Some(m);
            }
        });
        best
    }

    #[allow(clippy::too_many_arguments)]
    fn scan(
        &self,
        category: u16,
        lon: f64,
        lat: f64,
        at: Millis,
        radius_m: f64,
        window_ms: Millis,
        mut found: impl FnMut(Match),
    ) {
        if radius_m <= 0.0 || window_ms <= 0 {
            return;
        }
        let (cx, cy) = self.cell(lon, lat);
        let deg = self.cell_deg;
        let lat_cells = (radius_m / (deg * M_PER_DEG_LAT)).ceil() as i32;
        let lon_cells =
            (radius_m / (deg * M_PER_DEG_LAT * lat.to_radians().cos().max(0.01))).ceil() as i32;
        for x in cx - lon_cells..=cx + lon_cells {
            for y in cy - lat_cells..=cy + lat_cells {
                let Some(v) = self.cells.get(&(category, x, y)) else {
                    continue;
                };
                for e in v {
                    let age = at - e.last_report_at;
                    if age > window_ms || age < -window_ms {
                        continue;
                    }
                    let d = distance_m(lon, lat, e.lon, e.lat);
                    if d <= radius_m {
                        found(Match {
                            case: e.case,
                            distance_m: d,
                            age_ms: age,
                        });
                    }
                }
            }
        }
    }
}
