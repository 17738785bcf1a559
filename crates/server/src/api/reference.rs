//! Reference data: regions (by level), locating a point in the territory, the
//! categories and the departments.

use super::ApiResult;
use crate::http::error::{ApiError, Problem};
use crate::AppState;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use cityos_core::Level;
use serde::Deserialize;
use serde_json::{json, Value};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionParams {
    level: Option<String>,
}

pub async fn regions(State(st): State<AppState>, crate::Q(p): crate::Q<RegionParams>) -> ApiResult {
    let level = match p.level.as_deref() {
        None => Level::Subdistrict,
        Some(l) => Level::parse(l).ok_or_else(|| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("level must be district, subdistrict, community or grid, not {l:?}"),
            )
        })?,
    };
    let body = st.0.cfg.territory.to_geojson(level).to_string();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocateParams {
    lon: Option<String>,
    lat: Option<String>,
}

pub async fn locate(State(st): State<AppState>, crate::Q(p): crate::Q<LocateParams>) -> ApiResult {
    let num = |v: &Option<String>, what: &str| -> Result<f64, ApiError> {
        let s = v.as_deref().ok_or_else(|| {
            ApiError::new(Problem::InvalidParameter, format!("{what} is required"))
        })?;
        s.parse().map_err(|_| {
            ApiError::new(
                Problem::InvalidParameter,
                format!("{what} {s:?} is not a number"),
            )
        })
    };
    let (lon, lat) = (num(&p.lon, "lon")?, num(&p.lat, "lat")?);
    let t = &st.0.cfg.territory;
    let chain = t
        .locate(lon, lat)
        .map_err(|e| ApiError::from(cityos_engine::EngineError::from(e)))?;
    let mut out = serde_json::Map::new();
    for l in Level::ALL {
        if let Some(id) = chain.at(l) {
            let r = t.region(id);
            out.insert(
                l.as_str().into(),
                json!({"code": r.code, "name_zh": r.name_zh, "name_en": r.name_en}),
            );
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

pub async fn categories(State(st): State<AppState>) -> Json<Value> {
    let cats: Vec<Value> = st
        .0
        .cfg
        .taxonomy
        .categories
        .iter()
        .map(|c| {
            json!({
                "code": c.code, "name_zh": c.name_zh, "name_en": c.name_en, "domain": c.domain,
                "domain_zh": c.domain.name_zh(), "parent": c.parent, "priority": c.priority, "public": c.public,
                "lead": c.lead, "assist": c.assist, "lowest_level": c.lowest_level, "keywords": c.keywords,
                "dedup_radius_m": c.dedup_radius_m, "dedup_window_h": c.dedup_window_ms as f64 / 3.6e6,
                "deadlines": cityos_core::Step::ALL.iter().map(|s| (s.as_str().to_string(), json!(c.limit(*s).to_string()))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    Json(json!({ "categories": cats }))
}

pub async fn departments(State(st): State<AppState>) -> Json<Value> {
    Json(json!({ "departments": st.0.cfg.taxonomy.departments }))
}
