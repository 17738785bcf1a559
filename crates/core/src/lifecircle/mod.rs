//! The 15-minute community life circle (15分钟社区生活圈): which homes reach which everyday
//! services within a 5-, 10- and 15-minute walk, where the gaps are, and what a new
//! facility would fix. Pure: texts in, plain data out.
//!
//! * [`types`] — the district-editable table of service types (target ring, elders' speed,
//!   the OpenStreetMap classes that count as each), every problem named;
//! * [`facility`] — the facility registry's rows from CSV (the OSM-derived file, own
//!   facilities, imports), the meal service's canteens and GeoJSON points/areas; bad
//!   positions and unknown types named by line or feature;
//! * [`network`] — a walking network from GeoJSON lines: a graph, bounded shortest paths,
//!   isochrones, the parts that cannot be reached;
//! * [`walk`] — walking times, over the network when there is one, else straight-line
//!   distance × a detour factor at a walking speed; the method is always stated;
//! * [`coverage`] — demand points (grids weighted by population), times per point and
//!   type, coverage per type and ring, per-community cards, what-if and greedy siting.

pub mod coverage;
pub mod facility;
pub mod network;
pub mod types;
pub mod walk;

pub use coverage::{Demand, Model};
pub use facility::{Facility, Source};
pub use network::Network;
pub use types::{ServiceType, TypeTable};
pub use walk::{Method, Walker};

/// The three rings of the life circle, in minutes of walking.
pub const RINGS: [u32; 3] = [5, 10, 15];

/// Metres per degree of latitude.
const M_PER_DEG_LAT: f64 = 110_574.0;

/// A local metric plane (equirectangular around a reference latitude): good to a few
/// metres across a district.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plane {
    pub lon0: f64,
    pub lat0: f64,
    kx: f64,
}

impl Plane {
    pub fn new(lon0: f64, lat0: f64) -> Plane {
        Plane {
            lon0,
            lat0,
            kx: 111_320.0 * lat0.to_radians().cos(),
        }
    }
    /// Metres east and north of the reference point.
    pub fn xy(&self, lon: f64, lat: f64) -> [f64; 2] {
        [
            (lon - self.lon0) * self.kx,
            (lat - self.lat0) * M_PER_DEG_LAT,
        ]
    }
    pub fn lonlat(&self, xy: [f64; 2]) -> [f64; 2] {
        [
            xy[0] / self.kx + self.lon0,
            xy[1] / M_PER_DEG_LAT + self.lat0,
        ]
    }
}

/// Straight-line distance in metres.
pub fn dist(a: [f64; 2], b: [f64; 2]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt()
}

/// Lines starting with `#` become empty lines (kept, so line numbers stay those of the
/// file): CSV files here may carry comments above the header.
pub fn strip_comments(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with('#') {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
