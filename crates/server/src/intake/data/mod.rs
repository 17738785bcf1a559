//! The data end (数据端): datasets imported into a registry (name, owner department,
//! columns, sensitivity). What is done with the rows is declared, not coded: an import
//! reaches the vital signs (indicators over datasets) and the scenario packs (joins and
//! `row` triggers, e.g. the lone-elder welfare check of `lone_elder_water.toml`), and the
//! import's answer lists the scenario hits it caused.
//!
//! Sharing (数据归集共享): `catalogue` — the data catalogue and the data quality checks;
//! `grants` — grants of columns to other departments and the rows API. Rows are kept in
//! the store with their dataset (`datasets.rows`); ID-number columns are checked on
//! import (birth date and check digit) and bad rows refused by line, never repeating the
//! number.

pub mod catalogue;
pub mod grants;

use crate::http::error::{ApiError, Problem};
use crate::http::extract::{SignedIn, Staff};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::Role;
use cityos_engine::store::Dataset;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::atomic::AtomicU64;

/// The data room's state: counters of what it served.
#[derive(Default)]
pub struct DataState {
    /// Rows answered by the rows API.
    pub rows_served: AtomicU64,
    /// Rows refused at import for a malformed ID number.
    pub bad_id_rows: AtomicU64,
}

/// Refuses rows whose ID-number columns (by name) hold a malformed number; the problem
/// names the row and column, never the number.
fn check_id_columns(
    columns: &[String],
    rows: Vec<Map<String, Value>>,
    errors: &mut Vec<Value>,
) -> Vec<Map<String, Value>> {
    use cityos_core::privacy::{check_id_number, column_kind, Personal};
    let id_cols: Vec<&String> = columns
        .iter()
        .filter(|c| column_kind(c) == Some(Personal::IdNumber))
        .collect();
    if id_cols.is_empty() {
        return rows;
    }
    let mut kept = Vec::with_capacity(rows.len());
    for (i, r) in rows.into_iter().enumerate() {
        let bad = id_cols.iter().find_map(|c| match r.get(*c) {
            Some(Value::String(v)) if !v.trim().is_empty() => {
                check_id_number(v).err().map(|p| (c.to_string(), p))
            }
            _ => None,
        });
        match bad {
            Some((c, p)) => {
                // The row's place among the data rows (1 = the first after the header).
                errors.push(json!({"row": i + 1, "column": c, "problem": p.to_string()}));
            }
            None => kept.push(r),
        }
    }
    kept
}

pub const SENSITIVITY: [&str; 4] = ["public", "internal", "sensitive", "secret"];
/// Largest dataset body accepted.
pub const DATASET_LIMIT: usize = 16 * 1024 * 1024;

/// The demo's lone-elder households (read by the `lone_elder_water` scenario pack).
pub const LONE_ELDER_DATASET: &str = "lone_elder_households";

/// One CSV line split into fields (double quotes may enclose commas and `""`).
fn csv_fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if cur.is_empty() => quoted = true,
            (',', false) => out.push(std::mem::take(&mut cur).trim().to_string()),
            (c, _) => cur.push(c),
        }
    }
    if quoted {
        return Err("a quoted field is not closed".into());
    }
    out.push(cur.trim().to_string());
    Ok(out)
}

/// (columns, good rows, problems with the bad rows).
pub type Parsed = (Vec<String>, Vec<Map<String, Value>>, Vec<Value>);

/// Rows of a CSV (first line: the columns) or a JSON array of objects. Good rows are kept;
/// bad ones are named by line (CSV) or position (JSON).
pub fn parse_rows(body: &[u8], json_body: bool) -> Result<Parsed, String> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    if json_body {
        let v: Value =
            serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
        let Value::Array(items) = v else {
            return Err("a JSON dataset is an array of objects".into());
        };
        let mut columns: Vec<String> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            match item {
                Value::Object(m) => {
                    for k in m.keys() {
                        if !columns.contains(k) {
                            columns.push(k.clone());
                        }
                    }
                    rows.push(m);
                }
                other => {
                    let kind = match other {
                        Value::Array(_) => "an array",
                        Value::String(_) => "a string",
                        Value::Number(_) => "a number",
                        Value::Bool(_) => "a boolean",
                        _ => "null",
                    };
                    errors
                        .push(json!({"row": i + 1, "problem": format!("not an object but {kind}")}))
                }
            }
        }
        return Ok((columns, rows, errors));
    }
    let text = std::str::from_utf8(body).map_err(|_| "the CSV is not UTF-8 text".to_string())?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    let (_, head) = lines.next().ok_or("the CSV is empty")?;
    let columns = csv_fields(head.trim_start_matches('\u{feff}'))?;
    if columns.iter().any(|c| c.is_empty()) {
        return Err("every column needs a name".into());
    }
    for (i, line) in lines {
        match csv_fields(line) {
            Ok(f) if f.len() == columns.len() => rows.push(
                columns
                    .iter()
                    .cloned()
                    .zip(f.into_iter().map(Value::String))
                    .collect(),
            ),
            Ok(f) => errors.push(json!({"line": i + 1, "problem": format!("{} fields, the header has {}", f.len(), columns.len())})),
            Err(e) => errors.push(json!({"line": i + 1, "problem": e})),
        }
    }
    Ok((columns, rows, errors))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    owner: String,
    #[serde(default)]
    sensitivity: Option<String>,
}

fn may_import(p: &crate::http::auth::Principal) -> bool {
    match p.role {
        Role::System => p.channel.as_deref() == Some("data"),
        Role::Admin | Role::DistrictOfficer => true,
        _ => false,
    }
}

/// `POST /api/v1/datasets/{name}?owner=&sensitivity=` — a CSV (`text/csv`) or JSON array
/// body replaces the dataset; the data rules run at once.
pub async fn import(
    State(st): State<AppState>,
    Path(name): Path<String>,
    crate::Q(q): crate::Q<ImportParams>,
    headers: HeaderMap,
    SignedIn(p): SignedIn,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    if !may_import(&p) {
        return Err(ApiError::forbidden(format!(
            "role {} does not import datasets",
            p.role
        )));
    }
    let bad = |m: String| ApiError::new(Problem::InvalidDataset, m);
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(bad(format!(
            "dataset name {name:?} must be lowercase letters, digits, '_' or '-'"
        )));
    }
    if st.0.cfg.taxonomy.department(&q.owner).is_none() {
        return Err(bad(format!("unknown owner department {:?}", q.owner)));
    }

    let sensitivity = q.sensitivity.unwrap_or_else(|| "internal".into());
    if !SENSITIVITY.contains(&sensitivity.as_str()) {
        return Err(bad(format!(
            "sensitivity {sensitivity:?} is not one of {}",
            SENSITIVITY.join(", ")
        )));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let json_body = ct.starts_with("application/json");
    if !json_body && !ct.starts_with("text/csv") {
        return Err(ApiError::new(
            Problem::UnsupportedMediaType,
            "send a dataset as text/csv or application/json",
        ));
    }
    let bytes = axum::body::to_bytes(body, DATASET_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                Problem::PayloadTooLarge,
                format!("a dataset may be at most {} MiB", DATASET_LIMIT >> 20),
            )
        })?;
    let v = store_dataset(&st, &name, &q.owner, &sensitivity, &bytes, json_body).await?;
    st.0.audit
        .record(
            &st,
            &p.name,
            "dataset_import",
            &format!("dataset:{name}"),
            json!({"owner": q.owner, "sensitivity": sensitivity, "rows": v["rows"], "refused": v["refused"].as_array().map_or(0, |a| a.len())}),
        )
        .await?;
    Ok((StatusCode::OK, Json(v)).into_response())
}

/// Parses and stores a dataset (replacing one of the same name), then runs the data rules.
pub async fn store_dataset(
    st: &AppState,
    name: &str,
    owner: &str,
    sensitivity: &str,
    bytes: &[u8],
    json_body: bool,
) -> Result<Value, ApiError> {
    let bad = |m: String| ApiError::new(Problem::InvalidDataset, m);
    let (columns, rows, mut errors) = parse_rows(bytes, json_body).map_err(bad)?;
    let before = rows.len();
    let rows = check_id_columns(&columns, rows, &mut errors);
    st.0.data.bad_id_rows.fetch_add(
        (before - rows.len()) as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    if rows.is_empty() {
        return Err(bad(format!(
            "no good rows (problems: {})",
            Value::Array(errors)
        )));
    }
    let d = Dataset {
        name: name.to_string(),
        owner: owner.to_string(),
        sensitivity: sensitivity.to_string(),
        columns: serde_json::to_string(&columns).expect("strings serialise"),
        rows: serde_json::to_string(&rows).expect("values serialise"),
        row_count: rows.len() as i64,
        imported_at: st.now(),
    };
    let at = d.imported_at;
    st.0.reads.write(move |s| s.put_dataset(&d)).await??;
    (st.0.ports.dataset_imported)(st, name, &rows, at);
    st.0.bus.publish(crate::bus::BusEvent::DatasetImported {
        name: name.to_string(),
        rows: rows.len(),
    });
    let hits = (st.0.ports.scenario_flush)(st).await;
    Ok(
        json!({"name": name, "columns": columns, "rows": rows.len(), "refused": errors, "scenarios": hits}),
    )
}

/// `GET /api/v1/datasets` — the registry (never the rows: they may be sensitive).
pub async fn list(State(st): State<AppState>, _: Staff) -> Result<Response, ApiError> {
    let all = st.0.reads.run(|s| s.datasets()).await??;
    let v: Vec<Value> = all
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "owner": d.owner,
                "sensitivity": d.sensitivity,
                "columns": serde_json::from_str::<Value>(&d.columns).unwrap_or(Value::Null),
                "rows": d.row_count,
                "imported_at": cityos_core::time::format_rfc3339(d.imported_at),
            })
        })
        .collect();
    Ok(Json(json!({"datasets": v})).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<i64>,
}

fn auditor(p: &crate::http::auth::Principal) -> Result<(), ApiError> {
    if p.role == Role::Admin {
        Ok(())
    } else {
        Err(ApiError::forbidden("the audit trail is for administrators"))
    }
}

/// `GET /api/v1/audit?after=&limit=` — audit trail entries in order (administrators).
pub async fn audit_list(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<AuditParams>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    auditor(&p)?;
    let after = q.after.unwrap_or(0).max(0);
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page =
        st.0.reads
            .run(move |s| s.audit_page(after, limit))
            .await??;
    let (seq, hash) = st.0.audit.head();
    let v: Vec<Value> = page
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "at": cityos_core::time::format_rfc3339(e.at),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
                "prev": e.prev,
                "hash": e.hash,
            })
        })
        .collect();
    Ok(Json(
        json!({"entries": v, "head": {"seq": seq, "hash": hash}}),
    ))
}

/// `GET /api/v1/audit/verify` — walks the whole stored trail (administrators).
pub async fn audit_verify(
    State(st): State<AppState>,
    SignedIn(p): SignedIn,
) -> Result<Json<Value>, ApiError> {
    auditor(&p)?;
    use crate::http::audit::{verify_case_logs, verify_store, LogVerdict, Verdict};
    let (v, logs) =
        st.0.reads
            .run(|s| verify_store(s).and_then(|v| Ok((v, verify_case_logs(s)?))))
            .await??;
    let case_log = match logs {
        LogVerdict::Intact {
            entries,
            cases,
            unchained,
        } => json!({"intact": true, "entries": entries, "cases": cases, "unchained": unchained}),
        LogVerdict::Broken { case, seq, problem } => {
            json!({"intact": false, "first_broken": {"case": case, "seq": seq}, "problem": problem})
        }
    };
    Ok(Json(match v {
        Verdict::Intact { entries, seq, hash } => {
            json!({"intact": true, "entries": entries, "head": {"seq": seq, "hash": hash}, "case_log": case_log})
        }
        Verdict::Broken(b) => {
            json!({"intact": false, "first_broken": b.seq(), "problem": b.to_string(), "case_log": case_log})
        }
    }))
}
