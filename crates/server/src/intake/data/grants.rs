//! Sharing grants (数据共享授权) and the rows API. A department (or a machine consumer)
//! asks for columns of another department's dataset for a purpose until a date; the
//! owner approves or refuses; an approved grant may be revoked (by the owner, an
//! administrator or the consumer itself). `GET /api/v1/datasets/{name}/rows` answers a
//! consumer only the columns its grants in force give — personal columns masked unless
//! a grant says `unmask` — and looks the grants up in the store on every call, so a
//! revoked or expired grant stops at once. Every change and every read is written to the
//! audit trail.

use super::catalogue::{column_level, columns_of, declared, masked_level};
use crate::http::auth::Principal;
use crate::http::error::{ApiError, Problem};
use crate::http::extract::{Body, SignedIn};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::privacy::mask_column;
use cityos_core::time::{format_rfc3339, Millis};
use cityos_core::Role;
use cityos_engine::store::{Dataset, GrantRow};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The consumer a caller acts as: its department, or `machine:NAME` for a data machine.
pub fn consumer_of(p: &Principal) -> Option<String> {
    match (p.role, &p.department) {
        (Role::System, _) if p.channel.as_deref() == Some("data") => {
            Some(format!("machine:{}", p.name))
        }
        (Role::Citizen | Role::System, _) => None,
        (_, Some(d)) => Some(d.clone()),
        _ => None,
    }
}

/// May the caller see every grant (administration and the district's oversight)?
fn oversees(p: &Principal) -> bool {
    matches!(p.role, Role::Admin | Role::DistrictOfficer | Role::Analyst)
}

/// The owner department: as the import named it.
fn owner_of(d: &Dataset) -> String {
    d.owner.clone()
}

fn grant_view(g: &GrantRow, now: Millis) -> Value {
    let in_force = g.state == "approved" && g.until > now;
    json!({
        "id": g.id,
        "dataset": g.dataset,
        "consumer": g.consumer,
        "columns": serde_json::from_str::<Value>(&g.columns).unwrap_or(Value::Null),
        "purpose": g.purpose,
        "until": format_rfc3339(g.until),
        "unmask": g.unmask,
        "state": if g.state == "approved" && !in_force { "expired" } else { g.state.as_str() },
        "in_force": in_force,
        "requested_by": g.requested_by,
        "requested_at": format_rfc3339(g.requested_at),
        "decided_by": g.decided_by,
        "decided_at": g.decided_at.map(format_rfc3339),
        "reason": g.reason,
    })
}

fn grant_columns(g: &GrantRow) -> Vec<String> {
    serde_json::from_str(&g.columns).unwrap_or_default()
}

async fn load_dataset(st: &AppState, name: &str) -> Result<Dataset, ApiError> {
    let n = name.to_string();
    st.0.reads
        .run(move |s| s.dataset(&n))
        .await??
        .ok_or_else(|| {
            ApiError::new(
                Problem::UnknownDataset,
                format!("no dataset named {name:?}"),
            )
        })
}

async fn all_grants(st: &AppState) -> Result<Vec<GrantRow>, ApiError> {
    Ok(st.0.reads.run(|s| s.grants()).await??)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    dataset: String,
    columns: Vec<String>,
    purpose: String,
    /// RFC 3339 time or a date (the grant ends at the end of that Beijing day).
    until: String,
    #[serde(default)]
    unmask: bool,
    /// The consuming department, when an administrator or the district officer asks on
    /// its behalf.
    #[serde(default)]
    consumer: Option<String>,
}

fn parse_until(s: &str) -> Option<Millis> {
    if s.len() > 10 {
        return cityos_core::time::parse_datetime(s);
    }
    let d = cityos_core::time::Date::parse(s)?;
    Some(d.local_midnight() + 86_400_000 - 1)
}

/// `POST /api/v1/grants` — asks for columns of a dataset.
pub async fn request(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
    body: Body<GrantIn>,
) -> Result<Response, ApiError> {
    let g = body.value;
    let consumer = match (&g.consumer, p.role) {
        (Some(c), Role::Admin | Role::DistrictOfficer) => {
            if st.0.cfg.taxonomy.department(c).is_none() {
                return Err(ApiError::new(
                    Problem::UnknownDepartment,
                    format!("unknown consumer department {c:?}"),
                ));
            }
            c.clone()
        }
        (Some(_), _) => {
            return Err(ApiError::forbidden(
                "only an administrator or the district officer asks on behalf of a department",
            ))
        }
        (None, _) => consumer_of(&p).ok_or_else(|| {
            ApiError::forbidden(format!(
                "role {} has no department to ask for a grant for",
                p.role
            ))
        })?,
    };
    if g.purpose.trim().chars().count() < 4 || g.purpose.chars().count() > 500 {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "purpose: state the purpose in 4 to 500 characters",
        ));
    }
    let now = st.now();
    let until = parse_until(&g.until).ok_or_else(|| {
        ApiError::new(
            Problem::InvalidBody,
            "until: give an RFC 3339 time or a date (YYYY-MM-DD)",
        )
    })?;
    if until <= now {
        return Err(ApiError::new(
            Problem::GrantExpired,
            format!("until {} has already passed", format_rfc3339(until)),
        ));
    }
    let d = load_dataset(&st, &g.dataset).await?;
    let owner = owner_of(&d);
    if owner == consumer {
        return Err(ApiError::new(
            Problem::InvalidArgument,
            "the owner department reads its own dataset without a grant",
        ));
    }
    let cols = columns_of(&d);
    if g.columns.is_empty() {
        return Err(ApiError::new(
            Problem::UnknownColumns,
            "columns: name at least one column",
        ));
    }
    let unknown: Vec<&String> = g.columns.iter().filter(|c| !cols.contains(c)).collect();
    if !unknown.is_empty() {
        return Err(ApiError::new(
            Problem::UnknownColumns,
            format!(
                "dataset {:?} has no columns {unknown:?} (it has {cols:?})",
                d.name
            ),
        ));
    }
    let mut columns = g.columns.clone();
    columns.sort();
    columns.dedup();
    let grants = all_grants(&st).await?;
    if let Some(o) = grants.iter().find(|o| {
        o.dataset == d.name
            && o.consumer == consumer
            && (o.state == "requested" || o.state == "approved")
            && o.until > now
            && grant_columns(o).iter().any(|c| columns.contains(c))
    }) {
        return Err(ApiError::new(
            Problem::GrantOverlaps,
            format!(
                "grant {} ({}) already covers some of these columns of {:?} for {consumer}",
                o.id, o.state, d.name
            ),
        ));
    }
    let mut row = GrantRow {
        id: 0,
        dataset: d.name.clone(),
        consumer: consumer.clone(),
        columns: serde_json::to_string(&columns).expect("strings"),
        purpose: g.purpose.trim().to_string(),
        until,
        unmask: g.unmask,
        state: "requested".into(),
        requested_by: p.name.clone(),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        reason: String::new(),
    };
    let r = row.clone();
    row.id = st.0.reads.write(move |s| s.insert_grant(&r)).await??;
    st.0.audit
        .record(
            &st,
            &p.name,
            "grant_request",
            &format!("grant:{}", row.id),
            json!({"dataset": row.dataset, "consumer": consumer, "columns": columns, "until": format_rfc3339(until), "unmask": row.unmask}),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"grant": grant_view(&row, now)})),
    )
        .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    dataset: Option<String>,
}

/// `GET /api/v1/grants` — the grants the caller may see: all for administrators, the
/// district officer and analysts; a department's as consumer or owner; a machine's own.
pub async fn list(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<ListParams>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    let me = consumer_of(&p);
    if !oversees(&p) && me.is_none() {
        return Err(ApiError::forbidden(format!(
            "role {} has no grants to see",
            p.role
        )));
    }
    let grants = all_grants(&st).await?;
    let datasets = st.0.reads.run(|s| s.datasets()).await??;
    let owner = |name: &str| {
        datasets
            .iter()
            .find(|d| d.name == name)
            .map(owner_of)
            .unwrap_or_default()
    };
    let now = st.now();
    let v: Vec<Value> = grants
        .iter()
        .filter(|g| q.dataset.as_deref().is_none_or(|d| g.dataset == d))
        .filter(|g| {
            oversees(&p)
                || me.as_deref() == Some(g.consumer.as_str())
                || me.as_deref() == Some(owner(&g.dataset).as_str())
        })
        .map(|g| {
            let mut v = grant_view(g, now);
            v["owner"] = json!(owner(&g.dataset));
            v
        })
        .collect();
    Ok(Json(json!({"grants": v})))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DecisionIn {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/grants/{id}/{approve|refuse|revoke}`.
pub async fn decide(
    State(st): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    SignedIn(p): SignedIn,
    body: Body<DecisionIn>,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::new(Problem::UnknownGrant, format!("no grant {id}"));
    let id: i64 = id.parse().map_err(|_| not_found())?;
    let grants = all_grants(&st).await?;
    let mut g = grants
        .into_iter()
        .find(|g| g.id == id)
        .ok_or_else(not_found)?;
    let d = load_dataset(&st, &g.dataset).await?;
    let owner = owner_of(&d);
    let me = consumer_of(&p);
    let is_owner = me.as_deref() == Some(owner.as_str());
    let is_consumer = me.as_deref() == Some(g.consumer.as_str());
    if !(is_owner || is_consumer || oversees(&p)) {
        return Err(not_found());
    }
    let may = match action.as_str() {
        "approve" | "refuse" => is_owner || p.role == Role::Admin,
        "revoke" => is_owner || is_consumer || p.role == Role::Admin,
        _ => {
            return Err(ApiError::new(
                Problem::NoSuchEndpoint,
                format!("no grant action {action:?} (approve, refuse, revoke)"),
            ))
        }
    };
    if !may {
        return Err(ApiError::forbidden(format!(
            "only the owner department ({owner}) or an administrator may {action} this grant"
        )));
    }
    let now = st.now();
    let (from, to) = match action.as_str() {
        "approve" => ("requested", "approved"),
        "refuse" => ("requested", "refused"),
        _ => ("approved", "revoked"),
    };
    if g.state != from {
        return Err(ApiError::new(
            Problem::GrantNotPending,
            format!("grant {id} is {}; only a {from} grant can be {to}", g.state),
        ));
    }
    if action == "approve" && g.until <= now {
        return Err(ApiError::new(
            Problem::GrantExpired,
            format!("grant {id} ended at {}", format_rfc3339(g.until)),
        ));
    }
    let reason = body.value.reason.unwrap_or_default();
    if action == "refuse" && reason.trim().is_empty() {
        return Err(ApiError::new(
            Problem::InvalidBody,
            "reason: a refusal states its reason",
        ));
    }
    g.state = to.into();
    g.decided_by = Some(p.name.clone());
    g.decided_at = Some(now);
    g.reason = reason.trim().to_string();
    let w = g.clone();
    st.0.reads.write(move |s| s.update_grant(&w)).await??;
    st.0.audit
        .record(
            &st,
            &p.name,
            &format!("grant_{action}"),
            &format!("grant:{id}"),
            json!({"dataset": g.dataset, "consumer": g.consumer, "reason": g.reason}),
        )
        .await?;
    Ok(Json(json!({"grant": grant_view(&g, now)})))
}

/// What a caller may read of a dataset: columns in the dataset's order, which of them
/// are masked, and the grants that gave them.
pub struct Access {
    pub columns: Vec<String>,
    pub masked: Vec<String>,
    pub grants: Vec<i64>,
    pub basis: &'static str,
}

/// The caller's access to `d` at `now`, or why there is none.
pub fn access(
    p: &Principal,
    d: &Dataset,
    grants: &[GrantRow],
    now: Millis,
) -> Result<Access, ApiError> {
    let cols = columns_of(d);
    let decl = declared(&d.name);
    let personal: Vec<String> = cols
        .iter()
        .filter(|c| masked_level(column_level(decl, &d.sensitivity, c)))
        .cloned()
        .collect();
    let me = consumer_of(p);
    if me.as_deref() == Some(owner_of(d).as_str()) {
        return Ok(Access {
            columns: cols,
            masked: Vec::new(),
            grants: Vec::new(),
            basis: "owner",
        });
    }
    if matches!(p.role, Role::Admin | Role::DistrictOfficer) {
        return Ok(Access {
            columns: cols,
            masked: personal,
            grants: Vec::new(),
            basis: "oversight",
        });
    }
    let Some(me) = me else {
        return Err(ApiError::new(
            Problem::NoGrant,
            format!("role {} reads no dataset rows", p.role),
        ));
    };
    let mine: Vec<&GrantRow> = grants
        .iter()
        .filter(|g| {
            g.dataset == d.name && g.consumer == me && g.state == "approved" && g.until > now
        })
        .collect();
    if mine.is_empty() {
        return Err(ApiError::new(
            Problem::NoGrant,
            format!(
                "{me} has no grant in force for {:?} (ask the owner with POST /api/v1/grants)",
                d.name
            ),
        ));
    }
    let mut given: Vec<String> = Vec::new();
    let mut unmasked: Vec<String> = Vec::new();
    for g in &mine {
        for c in grant_columns(g) {
            if g.unmask && !unmasked.contains(&c) {
                unmasked.push(c.clone());
            }
            if !given.contains(&c) {
                given.push(c);
            }
        }
    }
    let columns: Vec<String> = cols.into_iter().filter(|c| given.contains(c)).collect();
    let masked = columns
        .iter()
        .filter(|c| personal.contains(c) && !unmasked.contains(c))
        .cloned()
        .collect();
    Ok(Access {
        columns,
        masked,
        grants: mine.iter().map(|g| g.id).collect(),
        basis: "grant",
    })
}

/// The most rows one page answers.
pub const MAX_PAGE: usize = 1000;

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// One CSV cell, quoted when it must be, never a formula.
pub fn csv_field(s: &str) -> String {
    // A cell a spreadsheet would run as a formula (=, +, -, @, or a tab/CR first) is
    // prefixed with an apostrophe, unless it is a plain number.
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err();
    let s = if formula {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// `GET /api/v1/datasets/{name}/rows?limit=&offset=&format=json|csv&{column}=value` — the
/// rows the caller's grants give (equality filters on visible, unmasked columns).
pub async fn rows(
    State(st): State<AppState>,
    Path(name): Path<String>,
    crate::Q(q): crate::Q<BTreeMap<String, String>>,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
) -> Result<Response, ApiError> {
    let d = load_dataset(&st, &name).await?;
    let grants = all_grants(&st).await?;
    let now = st.now();
    let a = access(&p, &d, &grants, now)?;
    let bad = |m: String| ApiError::new(Problem::InvalidParameter, m);
    let mut limit = 100usize;
    let mut offset = 0usize;
    let mut csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.starts_with("text/csv"));
    let mut filters: Vec<(String, String)> = Vec::new();
    let all_cols = columns_of(&d);
    for (k, v) in q {
        match k.as_str() {
            "limit" => {
                limit = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| bad(format!("limit must be 1 to {MAX_PAGE}")))?
            }
            "offset" => {
                offset = v
                    .parse()
                    .map_err(|_| bad("offset must be a whole number ≥ 0".into()))?
            }
            "format" => match v.as_str() {
                "csv" => csv = true,
                "json" => csv = false,
                _ => return Err(bad("format is json or csv".into())),
            },
            col if a.columns.iter().any(|c| c == col) && !a.masked.iter().any(|c| c == col) => {
                filters.push((k.clone(), v))
            }
            col if a.columns.iter().any(|c| c == col) => {
                return Err(ApiError::new(
                    Problem::UnknownColumns,
                    format!("column {col:?} is masked for you; it cannot be filtered on"),
                ))
            }
            col if all_cols.iter().any(|c| c == col) => {
                return Err(ApiError::new(
                    Problem::UnknownColumns,
                    format!("column {col:?} is not in your grant"),
                ))
            }
            col => {
                return Err(ApiError::new(
                    Problem::UnknownColumns,
                    format!("dataset {name:?} has no column {col:?}"),
                ))
            }
        }
    }
    let stored: Vec<Map<String, Value>> = serde_json::from_str(&d.rows).unwrap_or_default();
    let matching: Vec<&Map<String, Value>> = stored
        .iter()
        .filter(|r| filters.iter().all(|(c, v)| cell(r.get(c)) == *v))
        .collect();
    let total = matching.len();
    let page: Vec<Vec<String>> = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| {
            a.columns
                .iter()
                .map(|c| {
                    let v = cell(r.get(c));
                    if a.masked.contains(c) {
                        // A masked column that holds no known kind of personal data
                        // (a restricted or declared-sensitive one) is hidden whole.
                        if cityos_core::privacy::column_kind(c).is_some() {
                            mask_column(c, &v)
                        } else if v.is_empty() {
                            v
                        } else {
                            cityos_core::privacy::CONTACT_MASK.to_string()
                        }
                    } else {
                        v
                    }
                })
                .collect()
        })
        .collect();
    let unmasked: Vec<&String> = a
        .columns
        .iter()
        .filter(|c| {
            masked_level(column_level(declared(&d.name), &d.sensitivity, c))
                && !a.masked.contains(c)
        })
        .collect();
    st.0.audit
        .record_soon(
            &st,
            &p.name,
            "rows_read",
            &format!("dataset:{name}"),
            json!({"basis": a.basis, "grants": a.grants, "columns": a.columns, "unmasked": unmasked, "rows": page.len(), "offset": offset}),
        )
        .await?;
    st.0.data
        .rows_served
        .fetch_add(page.len() as u64, std::sync::atomic::Ordering::Relaxed);
    if csv {
        let mut out = a
            .columns
            .iter()
            .map(|c| csv_field(c))
            .collect::<Vec<_>>()
            .join(",");
        out.push_str("\r\n");
        for r in &page {
            out.push_str(&r.iter().map(|c| csv_field(c)).collect::<Vec<_>>().join(","));
            out.push_str("\r\n");
        }
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            out,
        )
            .into_response());
    }
    let rows: Vec<Value> = page
        .into_iter()
        .map(|r| {
            Value::Object(
                a.columns
                    .iter()
                    .cloned()
                    .zip(r.into_iter().map(Value::String))
                    .collect(),
            )
        })
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "dataset": name,
            "basis": a.basis,
            "grants": a.grants,
            "columns": a.columns,
            "masked": a.masked,
            "total": total,
            "offset": offset,
            "limit": limit,
            "rows": rows,
        })),
    )
        .into_response())
}

/// The demo's grant: the district's road maintenance (dist-roads, `chen.roads`) asked
/// civil affairs (dist-civil-affairs, `liu.civil`) for the lone-elder households before
/// road works, and was granted four columns for 90 days (the address masked). Seeded
/// once: a data directory that already has a grant of that pair keeps it.
pub async fn seed_demo_grant(st: &AppState) -> Result<(), ApiError> {
    let now = st.now();
    let grants = all_grants(st).await?;
    if grants
        .iter()
        .any(|g| g.dataset == super::LONE_ELDER_DATASET && g.consumer == "dist-roads")
    {
        return Ok(());
    }
    let columns = ["address", "community", "elder_alone", "household"];
    let mut g = GrantRow {
        id: 0,
        dataset: super::LONE_ELDER_DATASET.into(),
        consumer: "dist-roads".into(),
        columns: serde_json::to_string(&columns).expect("strings"),
        purpose: "道路施工前上门告知独居老人（演示）".into(),
        until: now + 90 * cityos_core::time::DAY,
        unmask: false,
        state: "requested".into(),
        requested_by: "chen.roads".into(),
        requested_at: now,
        decided_by: None,
        decided_at: None,
        reason: String::new(),
    };
    let r = g.clone();
    g.id = st.0.reads.write(move |s| s.insert_grant(&r)).await??;
    st.0.audit
        .record(
            st,
            "chen.roads",
            "grant_request",
            &format!("grant:{}", g.id),
            json!({"dataset": g.dataset, "consumer": g.consumer, "columns": columns}),
        )
        .await?;
    g.state = "approved".into();
    g.decided_by = Some("liu.civil".into());
    g.decided_at = Some(now);
    let w = g.clone();
    st.0.reads.write(move |s| s.update_grant(&w)).await??;
    st.0.audit
        .record(
            st,
            "liu.civil",
            "grant_approve",
            &format!("grant:{}", g.id),
            json!({"dataset": g.dataset, "consumer": g.consumer}),
        )
        .await?;
    Ok(())
}
