//! The life-circle room (15分钟社区生活圈, issue 18): the facility registry, walking
//! times, coverage per service type and ring, community cards, what-if and greedy siting
//! over [`cityos_core::lifecircle`], and the vital signs it feeds.
//!
//! The model is built once, on first use or by [`start`] when the service starts, from
//! the embedded Xuhui files (`data/xuhui/lifecircle/`: the type table, the OpenStreetMap
//! facilities — © OpenStreetMap contributors, ODbL — and the population estimate) plus the
//! meal service's canteens when the repository has them (`data/xuhui/meals/canteens.csv`,
//! embedded by the build script). A territory that is not Xuhui's (tests) gets an equal
//! population per community, said so in `population.basis`. Walking is straight-line ×
//! 1.3 at 4.5 km/h (3.6 for elders); the method is stated in every answer.
//!
//! Who: every signed-in staff role reads (the citizen role 403, anonymous 401); district
//! and sub-district officers and analysts ask what-ifs (others 403). The answers hold
//! facilities, places and population estimates only — no personal data.

pub mod api;

use crate::http::error::ApiError;
use crate::AppState;
use cityos_core::lifecircle::coverage::{demand_from, parse_population, Model};
use cityos_core::lifecircle::facility::{self, widen, Source};
use cityos_core::lifecircle::types::parse_types;
use cityos_core::lifecircle::{Plane, Walker};
use cityos_engine::store::LifeCircleUpload;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub const TYPES_TOML: &str = include_str!("../../../../data/xuhui/lifecircle/types.toml");
pub const FACILITIES_OSM_CSV: &str =
    include_str!("../../../../data/xuhui/lifecircle/facilities_osm.csv");
pub const POPULATION_CSV: &str = include_str!("../../../../data/xuhui/lifecircle/population.csv");
/// The meal service's canteens and meal points (`cityos meals generate`), read as the
/// `elder_meals` service.
pub const CANTEENS_CSV: Option<&str> =
    Some(include_str!("../../../../data/xuhui/meals/canteens.csv"));

/// The credit every answer and the map carry.
pub const ATTRIBUTION: &str = "© OpenStreetMap contributors (ODbL 1.0)";
/// How far outside the district's box a facility may stand (people walk across the line).
pub const MARGIN_M: f64 = 2_000.0;

/// The vital signs fed from the life circle: (indicator, service type, ring).
pub const FEEDS: [(&str, &str, u32); 4] = [
    ("life_circle_pharmacy_10", "pharmacy", 10),
    ("life_circle_health_15", "health", 15),
    ("life_circle_food_market_10", "food_market", 10),
    ("life_circle_elder_meals_10", "elder_meals", 10),
];

/// A built model with what it was built from.
pub struct Loaded {
    pub model: Model,
    /// How the population was estimated: (Chinese, English).
    pub basis: (String, String),
    /// Rows refused or notes while loading (named).
    pub notes: Vec<String>,
}

/// The room's state.
#[derive(Default)]
pub struct LifeCircle {
    loaded: RwLock<Option<Arc<Loaded>>>,
    /// One build at a time (the first use, an upload, a removal).
    building: tokio::sync::Mutex<()>,
}

/// The largest upload (a facility list or a walking network), bytes.
pub const UPLOAD_LIMIT: usize = 16 << 20;

/// Builds the model for a territory from the embedded files and the uploads (facility
/// lists, the walking network).
pub fn build(
    territory: &cityos_core::Territory,
    uploads: &[LifeCircleUpload],
) -> Result<Loaded, String> {
    let table = parse_types(TYPES_TOML).map_err(|e| format!("types.toml: {}", e.join("; ")))?;
    let root = territory.region(territory.root());
    let c = [
        (root.bbox[0] + root.bbox[2]) / 2.0,
        (root.bbox[1] + root.bbox[3]) / 2.0,
    ];
    let plane = Plane::new(c[0], c[1]);
    let bounds = widen(root.bbox, MARGIN_M);
    let mut notes = Vec::new();
    let (population, basis) = match parse_population(POPULATION_CSV, territory) {
        Ok(p) => (
            p,
            (
                "人口为本项目按社区（居委会）的估算：2020 年普查全区约 111.3 万人，各居委会平均分配，网格按面积分摊".to_string(),
                "population is the project's own estimate per community: the district's ~1,113,000 residents (2020 census) shared equally among residents' committees, grids by area".to_string(),
            ),
        ),
        Err(_) => {
            let p: HashMap<String, f64> = territory
                .regions()
                .filter(|(_, r)| r.level == cityos_core::Level::Community)
                .map(|(_, r)| (r.code.clone(), 1000.0))
                .collect();
            (
                p,
                (
                    "人口估算与本辖区不符：每个社区按 1,000 人计".to_string(),
                    "the population estimate does not fit this territory: 1,000 per community".to_string(),
                ),
            )
        }
    };
    let (demand, communities, subs) = demand_from(territory, &population, &plane);
    let mut facilities = Vec::new();
    let osm = facility::parse_csv(FACILITIES_OSM_CSV, &table, Source::Osm, bounds)?;
    if !osm.problems.is_empty() {
        notes.push(format!(
            "{} OpenStreetMap row(s) left out (first: {})",
            osm.problems.len(),
            osm.problems[0]
        ));
    }
    facilities.extend(osm.facilities);
    if let Some(text) = CANTEENS_CSV {
        match facility::parse_canteens(text, &table, bounds) {
            Ok(r) => {
                if !r.problems.is_empty() {
                    notes.push(format!(
                        "{} canteen row(s) left out (first: {})",
                        r.problems.len(),
                        r.problems[0]
                    ));
                }
                facilities.extend(r.facilities);
            }
            Err(e) => notes.push(format!("canteens.csv: {e}")),
        }
    } else {
        notes.push(
            "no canteens file (data/xuhui/meals/canteens.csv) yet: elder_meals has no facilities"
                .into(),
        );
    }
    let mut walker = Walker::default();
    for u in uploads {
        match (u.kind.as_str(), u.format.as_str()) {
            ("facilities", format) => {
                let r = if format == "geojson" {
                    facility::parse_geojson(&u.body, &table, Source::Import, bounds)
                } else {
                    facility::parse_csv(&u.body, &table, Source::Import, bounds)
                };
                match r {
                    Ok(r) => {
                        if !r.problems.is_empty() {
                            notes.push(format!(
                                "upload {}: {} row(s) left out",
                                u.name,
                                r.problems.len()
                            ));
                        }
                        facilities.extend(r.facilities);
                    }
                    Err(e) => notes.push(format!("upload {}: {e}", u.name)),
                }
            }
            ("network", _) => match cityos_core::lifecircle::Network::parse(&u.body, plane) {
                Ok(n) => walker = Walker::over(n),
                Err(e) => notes.push(format!("the walking network: {}", e.join("; "))),
            },
            (other, _) => notes.push(format!("upload {}: unknown kind {other}", u.name)),
        }
    }
    let model = Model::new(table, walker, plane, demand, communities, subs, facilities);
    if model.walker.network.is_some() && !model.off_network.is_empty() {
        notes.push(format!(
            "{} grid centre(s) are more than 500 m from the walking network and reach nothing over it (first: {})",
            model.off_network.len(),
            model.demand[model.off_network[0] as usize].code
        ));
    }
    Ok(Loaded {
        model,
        basis,
        notes,
    })
}

/// The model, built on first use (from the embedded files and the stored uploads).
pub async fn loaded(st: &AppState) -> Result<Arc<Loaded>, ApiError> {
    if let Some(l) =
        st.0.lifecircle
            .loaded
            .read()
            .expect("lifecircle lock")
            .clone()
    {
        return Ok(l);
    }
    let _one = st.0.lifecircle.building.lock().await;
    if let Some(l) =
        st.0.lifecircle
            .loaded
            .read()
            .expect("lifecircle lock")
            .clone()
    {
        return Ok(l);
    }
    rebuild_locked(st).await
}

/// Builds the model again (after an upload or a removal) and feeds the vital signs.
pub async fn rebuild(st: &AppState) -> Result<Arc<Loaded>, ApiError> {
    let _one = st.0.lifecircle.building.lock().await;
    rebuild_locked(st).await
}

async fn rebuild_locked(st: &AppState) -> Result<Arc<Loaded>, ApiError> {
    let uploads =
        st.0.reads
            .run(|s| s.lifecircle_uploads())
            .await?
            .map_err(ApiError::from)?;
    let st2 = st.clone();
    let l = tokio::task::spawn_blocking(move || build(&st2.0.cfg.territory, &uploads))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let l = Arc::new(l);
    *st.0.lifecircle.loaded.write().expect("lifecircle lock") = Some(l.clone());
    feed(st, &l.model);
    Ok(l)
}

/// Builds the model at start on its own thread (the vital signs get their values).
pub fn start(st: &AppState) {
    let st = st.clone();
    let _ = std::thread::Builder::new()
        .name("cityos-lifecircle".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    crate::http::log::event("lifecircle_build_failed", &[("error", &e)]);
                    return;
                }
            };
            if let Err(e) = rt.block_on(loaded(&st)) {
                crate::http::log::event("lifecircle_build_failed", &[("error", &e.detail)]);
            }
        });
}

/// Feeds the life-circle vital signs (district and each sub-district) through the
/// `indicator_value` port. Indicators the configuration does not declare are skipped.
pub fn feed(st: &AppState, m: &Model) {
    let now = st.now();
    let declared = |code: &str| st.0.cfg.indicators.iter().any(|i| i.code == code);
    for (code, ty, ring) in FEEDS {
        let Some(t) = m.table.index(ty) else { continue };
        if !declared(code) {
            continue;
        }
        let district =
            st.0.cfg
                .territory
                .region(st.0.cfg.territory.root())
                .code
                .clone();
        let mut values = vec![(district, m.share_in(t, ring, None))];
        for (i, s) in m.subdistricts.iter().enumerate() {
            values.push((s.code.clone(), m.share_in(t, ring, Some(i as u32))));
        }
        for (region, share) in values {
            let v = (share * 1000.0).round() / 10.0;
            if let Err(e) = (st.0.ports.indicator_value)(st, code, &region, v, now) {
                crate::http::log::event(
                    "lifecircle_feed_refused",
                    &[("indicator", &code), ("region", &region), ("error", &e)],
                );
            }
        }
    }
}
