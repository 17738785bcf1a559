//! The life circle's endpoints: summary, coverage of a type within a ring, a community's
//! card, the facilities (GeoJSON) and the what-if with greedy siting.

use super::{loaded, Loaded, ATTRIBUTION};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Caller, Staff};
use crate::AppState;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::lifecircle::coverage::FAR;
use cityos_core::lifecircle::facility::{check_position, widen};
use cityos_core::lifecircle::RINGS;
use cityos_core::Role;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

/// The most candidate facilities one what-if takes.
pub const MAX_CANDIDATES: usize = 50;
/// The most sites one greedy suggestion picks.
pub const MAX_SITES: usize = 10;

fn pct(x: f64) -> f64 {
    (x * 1000.0).round() / 10.0
}

fn method(l: &Loaded) -> Value {
    let (zh, en) = l.model.walker.describe();
    json!({"code": l.model.walker.method().as_str(), "zh": zh, "en": en})
}

fn head(l: &Loaded) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("method".into(), method(l));
    m.insert("attribution".into(), json!(ATTRIBUTION));
    m.insert(
        "population_basis".into(),
        json!({"zh": l.basis.0, "en": l.basis.1}),
    );
    m
}

fn type_of(l: &Loaded, code: &str) -> Result<usize, ApiError> {
    l.model.table.index(code).ok_or_else(|| {
        ApiError::new(
            Problem::UnknownServiceType,
            format!(
                "there is no service type {code:?} (types: {})",
                l.model
                    .table
                    .types
                    .iter()
                    .map(|t| t.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

fn ring_of(ring: Option<u32>, default: u32) -> Result<u32, ApiError> {
    let r = ring.unwrap_or(default);
    if RINGS.contains(&r) {
        Ok(r)
    } else {
        Err(ApiError::new(
            Problem::InvalidParameter,
            format!("ring must be 5, 10 or 15 minutes, not {r}"),
        ))
    }
}

/// `GET /api/v1/life-circle`: the method, the types with their district shares per ring,
/// the sub-districts' shares at each type's target ring.
pub async fn summary(State(st): State<AppState>, Staff(_p): Staff) -> Result<Response, ApiError> {
    let l = loaded(&st).await?;
    let m = &l.model;
    let mut counts = vec![0usize; m.table.len()];
    for f in &m.facilities {
        counts[f.kind] += 1;
    }
    let types: Vec<Value> = m
        .table
        .types
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"code": t.code, "name_zh": t.name_zh, "name_en": t.name_en, "target": t.target,
                "elders": t.elders, "facilities": counts[i],
                "shares": RINGS.map(|r| pct(m.share_in(i, r, None)))})
        })
        .collect();
    let subs: Vec<Value> = m
        .subdistricts
        .iter()
        .enumerate()
        .map(|(s, sd)| {
            let shares: serde_json::Map<String, Value> = m
                .table
                .types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    (
                        t.code.clone(),
                        json!(pct(m.share_in(i, t.target, Some(s as u32)))),
                    )
                })
                .collect();
            json!({"code": sd.code, "name_zh": sd.name, "shares": shares})
        })
        .collect();
    let mut out = head(&l);
    out.insert("rings".into(), json!(RINGS));
    out.insert(
        "population".into(),
        json!(m.demand.iter().map(|d| d.population).sum::<f64>().round()),
    );
    out.insert("communities".into(), json!(m.communities.len()));
    out.insert("types".into(), json!(types));
    out.insert("subdistricts".into(), json!(subs));
    out.insert("notes".into(), json!(l.notes));
    Ok(Json(Value::Object(out)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoverageParams {
    #[serde(rename = "type")]
    pub ty: String,
    pub ring: Option<u32>,
}

fn community_row(l: &Loaded, c: u32, share: f64) -> Value {
    let com = &l.model.communities[c as usize];
    json!({"code": com.code, "name_zh": com.name, "share": pct(share),
        "people_without": ((1.0 - share) * com.population).round()})
}

/// `GET /api/v1/life-circle/coverage?type=&ring=`: per grid the minutes to the nearest
/// facility of the type, the district's share, the communities reaching it and the gaps.
pub async fn coverage(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<CoverageParams>,
    Staff(_who): Staff,
) -> Result<Response, ApiError> {
    let l = loaded(&st).await?;
    let t = type_of(&l, &p.ty)?;
    let m = &l.model;
    let ring = ring_of(p.ring, m.table.get(t).target)?;
    let c = m.coverage(t, ring);
    let grids: Vec<Value> = m
        .demand
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let min = m.time(i, t);
            json!({"code": d.code, "community": m.communities[d.community as usize].code,
                "minutes": if min == FAR { Value::Null } else { json!((min * 10.0).round() / 10.0) },
                "population": d.population.round()})
        })
        .collect();
    let mut out = head(&l);
    out.insert("type".into(), json!(m.table.get(t).code));
    out.insert("name_zh".into(), json!(m.table.get(t).name_zh));
    out.insert("name_en".into(), json!(m.table.get(t).name_en));
    out.insert("target".into(), json!(m.table.get(t).target));
    out.insert("ring".into(), json!(ring));
    out.insert("population".into(), json!(c.total.round()));
    out.insert("covered".into(), json!(c.covered.round()));
    out.insert("share".into(), json!(pct(c.share)));
    out.insert(
        "reached".into(),
        json!(c
            .reached
            .iter()
            .map(|&(i, s)| community_row(&l, i, s))
            .collect::<Vec<_>>()),
    );
    out.insert(
        "gaps".into(),
        json!(c
            .gaps
            .iter()
            .map(|&(i, s)| community_row(&l, i, s))
            .collect::<Vec<_>>()),
    );
    out.insert("grids".into(), json!(grids));
    Ok(Json(Value::Object(out)).into_response())
}

/// `GET /api/v1/life-circle/communities/{code}`: the community's life-circle card.
pub async fn card(
    State(st): State<AppState>,
    Path(code): Path<String>,
    Staff(_who): Staff,
) -> Result<Response, ApiError> {
    let l = loaded(&st).await?;
    let m = &l.model;
    let Some(ci) = m.communities.iter().position(|c| c.code == code) else {
        return Err(ApiError::not_found(&format!("community {code:?}")));
    };
    let card = m.card(ci);
    let com = &m.communities[ci];
    let lines: Vec<Value> = card
        .lines
        .iter()
        .map(|ln| {
            let t = m.table.get(ln.t);
            let nearest = ln.nearest.map(|(min, f)| {
                let f = &m.facilities[f as usize];
                json!({"id": f.id, "name": f.name, "source": f.source.as_str(), "minutes": (min * 10.0).round() / 10.0,
                    "lon": f.lon, "lat": f.lat, "hours": f.hours})
            });
            json!({"type": t.code, "name_zh": t.name_zh, "name_en": t.name_en, "target": t.target,
                "shares": ln.shares.map(pct), "met": ln.met, "nearest": nearest})
        })
        .collect();
    let mut out = head(&l);
    out.insert("code".into(), json!(com.code));
    out.insert("name_zh".into(), json!(com.name));
    out.insert(
        "subdistrict".into(),
        json!(m.subdistricts[com.subdistrict as usize].code),
    );
    out.insert(
        "subdistrict_name_zh".into(),
        json!(m.subdistricts[com.subdistrict as usize].name),
    );
    out.insert("population".into(), json!(com.population.round()));
    out.insert("lines".into(), json!(lines));
    out.insert(
        "missing".into(),
        json!(card
            .missing()
            .map(|t| m.table.get(t).code.clone())
            .collect::<Vec<_>>()),
    );
    Ok(Json(Value::Object(out)).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilityParams {
    #[serde(rename = "type")]
    pub ty: Option<String>,
}

/// `GET /api/v1/life-circle/facilities[?type=]`: the registry as GeoJSON, with the credit.
pub async fn facilities(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<FacilityParams>,
    Staff(_who): Staff,
) -> Result<Response, ApiError> {
    let l = loaded(&st).await?;
    let m = &l.model;
    let only = match p.ty.as_deref().filter(|s| !s.is_empty()) {
        Some(code) => Some(type_of(&l, code)?),
        None => None,
    };
    let features: Vec<Value> = m
        .facilities
        .iter()
        .filter(|f| only.is_none_or(|t| f.kind == t))
        .map(|f| {
            json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [f.lon, f.lat]},
                "properties": {"id": f.id, "type": m.table.get(f.kind).code, "name": f.name,
                    "source": f.source.as_str(), "hours": f.hours}})
        })
        .collect();
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/geo+json")],
        Json(json!({"type": "FeatureCollection", "attribution": ATTRIBUTION, "method": method(&l), "features": features})),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Candidate {
    #[serde(rename = "type")]
    pub ty: String,
    pub lon: f64,
    pub lat: f64,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Suggest {
    #[serde(rename = "type")]
    pub ty: String,
    pub ring: Option<u32>,
    pub k: Option<usize>,
    /// Only grid centres inside this region (a sub-district or community code).
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhatIfIn {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default)]
    pub suggest: Option<Suggest>,
}

/// `POST /api/v1/life-circle/whatif`: how coverage changes with candidate facilities, and
/// (with `suggest`) the k best grid centres for a new facility of a type.
pub async fn whatif(
    State(st): State<AppState>,
    caller: Caller,
    body: crate::Body<WhatIfIn>,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    if !matches!(
        p.role,
        Role::DistrictOfficer | Role::SubdistrictOfficer | Role::Analyst
    ) {
        return Err(ApiError::forbidden(format!(
            "role {} does not plan facilities (district and sub-district officers and analysts do)",
            p.role
        )));
    }
    let b = body.value;
    if b.candidates.len() > MAX_CANDIDATES {
        return Err(ApiError::new(
            Problem::TooManyCandidates,
            format!(
                "{} candidates; a what-if takes at most {MAX_CANDIDATES}",
                b.candidates.len()
            ),
        ));
    }
    if b.candidates.is_empty() && b.suggest.is_none() {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "give candidates, a suggest request, or both",
        ));
    }
    let l = loaded(&st).await?;
    let m = &l.model;
    let root = st.0.cfg.territory.region(st.0.cfg.territory.root());
    let bounds = widen(root.bbox, super::MARGIN_M);
    let mut problems = Vec::new();
    let mut cands = Vec::new();
    for (i, c) in b.candidates.iter().enumerate() {
        let Some(t) = m.table.index(&c.ty) else {
            problems.push(format!(
                "candidate {}: unknown service type {:?}",
                i + 1,
                c.ty
            ));
            continue;
        };
        if let Err(e) = check_position(c.lon, c.lat, bounds) {
            problems.push(format!("candidate {}: {e}", i + 1));
            continue;
        }
        cands.push((t, c.lon, c.lat));
    }
    if !problems.is_empty() {
        return Err(
            ApiError::new(Problem::InvalidFacility, problems.join("; ")).with_problems(problems)
        );
    }
    let suggest = match &b.suggest {
        None => None,
        Some(s) => {
            let t = type_of(&l, &s.ty)?;
            let ring = ring_of(s.ring, m.table.get(t).target)?;
            let k = s.k.unwrap_or(3);
            if !(1..=MAX_SITES).contains(&k) {
                return Err(ApiError::new(
                    Problem::InvalidArgument,
                    format!("k must be 1 to {MAX_SITES}, not {k}"),
                ));
            }
            let terr = &st.0.cfg.territory;
            let region = match s
                .region
                .as_deref()
                .filter(|r| !r.is_empty())
                .or(p.scope.as_deref())
            {
                Some(code) => {
                    let Some(r) = terr.by_code(code) else {
                        return Err(ApiError::new(
                            Problem::InvalidArgument,
                            format!("there is no region {code:?}"),
                        ));
                    };
                    if let Some(scope) = p.scope.as_deref().and_then(|s| terr.by_code(s)) {
                        if !terr.is_within(r, scope) {
                            return Err(ApiError::forbidden(
                                "the region is outside the area this account may see",
                            ));
                        }
                    }
                    Some(r)
                }
                None => None,
            };
            let allowed: Vec<bool> = m
                .communities
                .iter()
                .map(|c| {
                    region.is_none_or(|r| {
                        terr.by_code(&c.code)
                            .is_some_and(|id| terr.is_within(id, r))
                    })
                })
                .collect();
            Some((t, ring, k, allowed))
        }
    };
    let l2: Arc<Loaded> = l.clone();
    let (changes, sites) = tokio::task::spawn_blocking(move || {
        let m = &l2.model;
        let changes = if cands.is_empty() {
            Vec::new()
        } else {
            m.what_if(&cands)
        };
        let sites = suggest.map(|(t, ring, k, allowed)| {
            (
                t,
                ring,
                m.greedy(t, ring, k, |d| allowed[d.community as usize]),
            )
        });
        (changes, sites)
    })
    .await
    .map_err(ApiError::internal)?;
    let changes: Vec<Value> = changes
        .iter()
        .map(|w| {
            let t = m.table.get(w.t);
            json!({"type": t.code, "name_zh": t.name_zh, "ring": w.ring, "before": w.before.round(), "after": w.after.round(),
                "population": w.total.round(),
                "share_before": pct(if w.total > 0.0 { w.before / w.total } else { 0.0 }),
                "share_after": pct(if w.total > 0.0 { w.after / w.total } else { 0.0 }),
                "communities": w.communities.iter().map(|g| {
                    let c = &m.communities[g.community as usize];
                    json!({"code": c.code, "name_zh": c.name, "share_before": pct(g.before), "share_after": pct(g.after), "people": g.people.round()})
                }).collect::<Vec<_>>()})
        })
        .collect();
    let mut out = head(&l);
    out.insert("changes".into(), json!(changes));
    if let Some((t, ring, sites)) = sites {
        let rows: Vec<Value> = sites
            .iter()
            .map(|s| {
                let d = &m.demand[s.point as usize];
                let c = &m.communities[d.community as usize];
                json!({"grid": d.code, "community": c.code, "community_name_zh": c.name,
                    "lon": (d.lonlat[0] * 1e6).round() / 1e6, "lat": (d.lonlat[1] * 1e6).round() / 1e6,
                    "people": s.people.round(),
                    "communities": s.communities.iter().map(|&x| m.communities[x as usize].code.clone()).collect::<Vec<_>>()})
            })
            .collect();
        out.insert(
            "suggestion".into(),
            json!({"type": m.table.get(t).code, "ring": ring, "sites": rows,
                "note_zh": "在网格中心中逐个挑选新增覆盖人口最多的位置（贪心算法）",
                "note_en": "grid centres picked one at a time, each adding the most people not yet reached (greedy)"}),
        );
    }
    Ok(Json(Value::Object(out)).into_response())
}

/// The caller may change the district's uploads: the district officer and administrators.
fn may_upload(p: &crate::http::auth::Principal) -> Result<(), ApiError> {
    if matches!(p.role, Role::DistrictOfficer | Role::Admin) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "role {} does not change the life circle's facilities or network (the district officer and administrators do)",
            p.role
        )))
    }
}

/// The body as UTF-8 text, and whether it is GeoJSON (else CSV), from its media type.
async fn upload_text(
    headers: &axum::http::HeaderMap,
    body: axum::body::Body,
    csv_ok: bool,
) -> Result<(String, bool), ApiError> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let geojson = ct.starts_with("application/geo+json") || ct.starts_with("application/json");
    let csv = csv_ok && ct.starts_with("text/csv");
    if !(geojson || csv) {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            if csv_ok {
                "send facilities as text/csv or application/geo+json"
            } else {
                "send the walking network as application/geo+json"
            },
        ));
    }
    let bytes = axum::body::to_bytes(body, super::UPLOAD_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!("an upload may be at most {} MiB", super::UPLOAD_LIMIT >> 20),
            )
        })?;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::new(Problem::UnreadableBody, "the upload is not UTF-8 text"))?;
    Ok((text, geojson))
}

fn upload_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name != "network"
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Problem::InvalidParameter,
            format!(
                "an upload's name is 1–40 of a-z, 0-9, _ and - (and not \"network\"), not {name:?}"
            ),
        ))
    }
}

async fn keep(st: &AppState, u: cityos_engine::store::LifeCircleUpload) -> Result<(), ApiError> {
    st.0.reads
        .write(move |s| s.put_lifecircle_upload(&u))
        .await?
        .map_err(ApiError::from)
}

/// `PUT /api/v1/life-circle/facilities/{name}`: a facility list (CSV `id,type,name,lon,lat[,hours]`
/// or GeoJSON points/areas with `type`) the district adds; refused whole, with every bad row
/// named, when any row is bad; kept in the store and counted at once.
pub async fn put_facilities(
    State(st): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    may_upload(&p)?;
    upload_name(&name)?;
    let (text, geojson) = upload_text(&headers, body, true).await?;
    let l = loaded(&st).await?;
    let root = st.0.cfg.territory.region(st.0.cfg.territory.root());
    let bounds = widen(root.bbox, super::MARGIN_M);
    let table = &l.model.table;
    let read = if geojson {
        cityos_core::lifecircle::facility::parse_geojson(
            &text,
            table,
            cityos_core::lifecircle::Source::Import,
            bounds,
        )
    } else {
        cityos_core::lifecircle::facility::parse_csv(
            &text,
            table,
            cityos_core::lifecircle::Source::Import,
            bounds,
        )
    }
    .map_err(|e| ApiError::new(Problem::InvalidFacility, e))?;
    if !read.problems.is_empty() {
        let n = read.problems.len();
        return Err(ApiError::new(
            Problem::InvalidFacility,
            format!(
                "{n} row(s) refused; nothing was stored (first: {})",
                read.problems[0]
            ),
        )
        .with_problems(read.problems.into_iter().take(100).collect()));
    }
    if read.facilities.is_empty() {
        return Err(ApiError::new(
            Problem::InvalidFacility,
            "the upload holds no facility",
        ));
    }
    let count = read.facilities.len();
    keep(
        &st,
        cityos_engine::store::LifeCircleUpload {
            name: name.clone(),
            kind: "facilities".into(),
            format: if geojson { "geojson" } else { "csv" }.into(),
            body: text,
            actor: p.name.clone(),
            at: st.now(),
        },
    )
    .await?;
    st.0.audit
        .record(
            &st,
            &p.name,
            "lifecircle_facilities_put",
            &name,
            json!({"facilities": count}),
        )
        .await?;
    let l = super::rebuild(&st).await?;
    Ok(Json(json!({"name": name, "facilities": count, "total": l.model.facilities.len(), "method": method(&l)})).into_response())
}

/// `DELETE /api/v1/life-circle/facilities/{name}`: removes an uploaded facility list.
pub async fn delete_facilities(
    State(st): State<AppState>,
    Path(name): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    may_upload(&p)?;
    upload_name(&name)?;
    let n = name.clone();
    let gone =
        st.0.reads
            .write(move |s| s.delete_lifecircle_upload(&n))
            .await?
            .map_err(ApiError::from)?;
    if !gone {
        return Err(ApiError::not_found(&format!("facility upload {name:?}")));
    }
    st.0.audit
        .record(
            &st,
            &p.name,
            "lifecircle_facilities_delete",
            &name,
            json!({}),
        )
        .await?;
    super::rebuild(&st).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

/// `PUT /api/v1/life-circle/network`: the walking network (GeoJSON lines). Refused when a
/// feature is not a line or when parts of it cannot be reached from the rest (each part
/// named); kept in the store, and every time is then walked over it.
pub async fn put_network(
    State(st): State<AppState>,
    headers: axum::http::HeaderMap,
    caller: Caller,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    may_upload(&p)?;
    let (text, _) = upload_text(&headers, body, false).await?;
    let l = loaded(&st).await?;
    let plane = l.model.plane;
    let t2 = text.clone();
    let checked = tokio::task::spawn_blocking(move || {
        cityos_core::lifecircle::Network::parse(&t2, plane).map(|n| {
            (
                n.nodes(),
                n.edges(),
                n.parts.iter().map(|x| x.describe()).collect::<Vec<_>>(),
            )
        })
    })
    .await
    .map_err(ApiError::internal)?;
    let (nodes, edges) = match checked {
        Err(problems) => {
            return Err(ApiError::new(
                Problem::InvalidNetwork,
                format!("{} problem(s); first: {}", problems.len(), problems[0]),
            )
            .with_problems(problems.into_iter().take(100).collect()))
        }
        Ok((_, _, parts)) if !parts.is_empty() => {
            return Err(ApiError::new(
                Problem::InvalidNetwork,
                format!(
                "{} part(s) cannot be reached from the largest part; join them or leave them out",
                parts.len()
            ),
            )
            .with_problems(parts.into_iter().take(100).collect()))
        }
        Ok((n, e, _)) => (n, e),
    };
    keep(
        &st,
        cityos_engine::store::LifeCircleUpload {
            name: "network".into(),
            kind: "network".into(),
            format: "geojson".into(),
            body: text,
            actor: p.name.clone(),
            at: st.now(),
        },
    )
    .await?;
    st.0.audit
        .record(
            &st,
            &p.name,
            "lifecircle_network_put",
            "network",
            json!({"nodes": nodes, "edges": edges}),
        )
        .await?;
    let l = super::rebuild(&st).await?;
    Ok(Json(json!({"nodes": nodes, "edges": edges, "method": method(&l)})).into_response())
}

/// `DELETE /api/v1/life-circle/network`: back to straight lines.
pub async fn delete_network(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let p = caller.signed_in()?;
    may_upload(&p)?;
    let gone =
        st.0.reads
            .write(|s| s.delete_lifecircle_upload("network"))
            .await?
            .map_err(ApiError::from)?;
    if !gone {
        return Err(ApiError::not_found("the walking network"));
    }
    st.0.audit
        .record(
            &st,
            &p.name,
            "lifecircle_network_delete",
            "network",
            json!({}),
        )
        .await?;
    super::rebuild(&st).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IsochroneParams {
    pub lon: f64,
    pub lat: f64,
    pub minutes: Option<u32>,
    pub elders: Option<bool>,
}

/// The most minutes an isochrone walks.
pub const MAX_ISOCHRONE_MIN: u32 = 30;

/// `GET /api/v1/life-circle/isochrone?lon=&lat=&minutes=&elders=`: how far one walks from a
/// point: the grids reached with their minutes and people, and the area (a circle of the
/// straight-line reach, or the network's nodes reached).
pub async fn isochrone(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<IsochroneParams>,
    Staff(_who): Staff,
) -> Result<Response, ApiError> {
    let minutes = q.minutes.unwrap_or(15);
    if !(1..=MAX_ISOCHRONE_MIN).contains(&minutes) {
        return Err(ApiError::new(
            Problem::InvalidParameter,
            format!("minutes must be 1 to {MAX_ISOCHRONE_MIN}, not {minutes}"),
        ));
    }
    let root = st.0.cfg.territory.region(st.0.cfg.territory.root());
    if let Err(e) = check_position(q.lon, q.lat, widen(root.bbox, super::MARGIN_M)) {
        return Err(ApiError::new(Problem::InvalidPoint, e));
    }
    let l = loaded(&st).await?;
    let elders = q.elders.unwrap_or(false);
    let l2 = l.clone();
    let (reached, geometry) = tokio::task::spawn_blocking(move || {
        let m = &l2.model;
        let mpm = m.walker.m_per_min(elders);
        let max_m = minutes as f64 * mpm;
        let mut s = cityos_core::lifecircle::network::Scratch::default();
        let mut reached = m.reach(m.plane.xy(q.lon, q.lat), max_m, &mut s);
        reached.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
        let geometry = match &m.walker.network {
            Some(n) => {
                let pts: Vec<Value> = n
                    .isochrone(q.lon, q.lat, max_m)
                    .into_iter()
                    .map(|p| json!([(p[0] * 1e6).round() / 1e6, (p[1] * 1e6).round() / 1e6]))
                    .collect();
                json!({"type": "MultiPoint", "coordinates": pts})
            }
            None => {
                let r = max_m / m.walker.detour;
                let c = m.plane.xy(q.lon, q.lat);
                let ring: Vec<Value> = (0..=36)
                    .map(|i| {
                        let a = (i % 36) as f64 * std::f64::consts::PI / 18.0;
                        let p = m.plane.lonlat([c[0] + r * a.cos(), c[1] + r * a.sin()]);
                        json!([(p[0] * 1e6).round() / 1e6, (p[1] * 1e6).round() / 1e6])
                    })
                    .collect();
                json!({"type": "Polygon", "coordinates": [ring]})
            }
        };
        let reached: Vec<(String, f64, f64)> = reached
            .into_iter()
            .map(|(d, metres)| {
                let d = &m.demand[d as usize];
                (d.code.clone(), metres / mpm, d.population)
            })
            .collect();
        (reached, geometry)
    })
    .await
    .map_err(ApiError::internal)?;
    let mut out = head(&l);
    out.insert("minutes".into(), json!(minutes));
    out.insert("elders".into(), json!(elders));
    out.insert(
        "population".into(),
        json!(reached.iter().map(|r| r.2).sum::<f64>().round()),
    );
    out.insert(
        "grids".into(),
        json!(reached
            .iter()
            .map(|(code, min, pop)| json!({"code": code, "minutes": (min * 10.0).round() / 10.0, "population": pop.round()}))
            .collect::<Vec<_>>()),
    );
    out.insert("geometry".into(), geometry);
    Ok(Json(Value::Object(out)).into_response())
}
