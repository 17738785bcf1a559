//! The data catalogue (数据目录): every dataset (declared in `data/xuhui/datasets.toml` or
//! imported), indicator, device feed and export, with owner, description, schema,
//! per-column sensitivity, freshness and lineage (which indicators, alert rules, alarm
//! rules and scenario packs read it); and the data quality checks (completeness and
//! freshness against each dataset's declaration).

use crate::http::error::ApiError;
use crate::http::extract::Staff;
use crate::AppState;
use axum::extract::State;
use axum::Json;
use cityos_core::indicators::Source;
use cityos_core::privacy::column_kind;
use cityos_core::time::{format_rfc3339, Millis};
use cityos_engine::store::Dataset;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Column sensitivity levels, least to most.
pub const LEVELS: [&str; 4] = ["public", "internal", "sensitive_personal", "restricted"];

/// One dataset's declaration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Declared {
    pub name: String,
    pub owner: String,
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub description_zh: String,
    #[serde(default)]
    pub description_en: String,
    /// Expected update interval, e.g. `1d`.
    pub every: String,
    #[serde(default)]
    pub min_rows: i64,
    #[serde(default)]
    pub required: Vec<String>,
    /// Columns that are restricted whatever their name.
    #[serde(default)]
    pub restricted: Vec<String>,
    /// Columns that are personal though their name does not say so.
    #[serde(default)]
    pub sensitive: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeclarations {
    #[serde(default)]
    dataset: Vec<Declared>,
}

/// `30m`, `6h`, `1d`, `7d` → milliseconds.
pub fn parse_every(s: &str) -> Option<Millis> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit_ms = match unit {
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    Some(n * unit_ms)
}

/// Reads the declarations, naming every problem.
pub fn parse_declarations(text: &str) -> Result<Vec<Declared>, Vec<String>> {
    let raw: RawDeclarations =
        toml::from_str(text).map_err(|e| vec![format!("datasets.toml does not parse: {e}")])?;
    let mut problems = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in &raw.dataset {
        if !seen.insert(d.name.clone()) {
            problems.push(format!("dataset {:?} is declared twice", d.name));
        }
        if parse_every(&d.every).is_none() {
            problems.push(format!(
                "dataset {:?}: every = {:?} is not a duration such as 30m, 6h or 1d",
                d.name, d.every
            ));
        }
    }
    if problems.is_empty() {
        Ok(raw.dataset)
    } else {
        Err(problems)
    }
}

/// The embedded declarations (the demo's; checked by a test).
pub fn declarations() -> &'static [Declared] {
    static D: OnceLock<Vec<Declared>> = OnceLock::new();
    D.get_or_init(|| parse_declarations(cityos_engine::demo::DATASETS_TOML).unwrap_or_default())
}

pub fn declared(name: &str) -> Option<&'static Declared> {
    declarations().iter().find(|d| d.name == name)
}

/// A column's sensitivity level in a dataset of `dataset_level`.
pub fn column_level(decl: Option<&Declared>, dataset_level: &str, column: &str) -> &'static str {
    if decl.is_some_and(|d| d.restricted.iter().any(|c| c == column)) || dataset_level == "secret" {
        "restricted"
    } else if column_kind(column).is_some()
        || decl.is_some_and(|d| d.sensitive.iter().any(|c| c == column))
        // An undeclared dataset imported as sensitive: nothing says which of its columns
        // are harmless, so all of them are treated as personal.
        || (decl.is_none() && dataset_level == "sensitive")
    {
        "sensitive_personal"
    } else if dataset_level == "public" {
        "public"
    } else {
        "internal"
    }
}

/// Is a column of this level masked for someone without an unmasking grant?
pub fn masked_level(level: &str) -> bool {
    matches!(level, "sensitive_personal" | "restricted")
}

/// The columns of a stored dataset.
pub fn columns_of(d: &Dataset) -> Vec<String> {
    serde_json::from_str(&d.columns).unwrap_or_default()
}

/// The data quality of a dataset against its declaration, at `now`.
pub fn quality(decl: &Declared, d: Option<&Dataset>, now: Millis) -> Value {
    let Some(d) = d else {
        return json!({"status": "missing", "problems": ["never imported"]});
    };
    let mut problems: Vec<String> = Vec::new();
    let every = parse_every(&decl.every).unwrap_or(i64::MAX);
    let age = now - d.imported_at;
    let stale = age > every;
    if stale {
        problems.push(format!(
            "last import {} h ago; expected every {}",
            age / 3_600_000,
            decl.every
        ));
    }
    if d.row_count < decl.min_rows {
        problems.push(format!(
            "{} rows; a complete import has at least {}",
            d.row_count, decl.min_rows
        ));
    }
    let cols = columns_of(d);
    let missing: Vec<&String> = decl.required.iter().filter(|c| !cols.contains(c)).collect();
    if !missing.is_empty() {
        problems.push(format!("required columns missing: {missing:?}"));
    }
    let rows: Vec<serde_json::Map<String, Value>> =
        serde_json::from_str(&d.rows).unwrap_or_default();
    let mut completeness = BTreeMap::new();
    for c in &decl.required {
        let filled = rows
            .iter()
            .filter(|r| match r.get(c) {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => !s.trim().is_empty(),
                Some(_) => true,
            })
            .count();
        let share = if rows.is_empty() {
            0.0
        } else {
            filled as f64 / rows.len() as f64
        };
        if share < 0.95 {
            problems.push(format!(
                "column {c:?} is filled in {:.0} % of rows (at least 95 % expected)",
                share * 100.0
            ));
        }
        completeness.insert(c.clone(), (share * 1000.0).round() / 1000.0);
    }
    let incomplete = problems.iter().any(|p| !p.starts_with("last import"));
    let status = match (stale, incomplete) {
        (false, false) => "ok",
        (true, false) => "stale",
        (false, true) => "incomplete",
        (true, true) => "stale_incomplete",
    };
    json!({"status": status, "age_s": age / 1000, "completeness": completeness, "problems": problems})
}

fn department_name(st: &AppState, code: &str) -> Value {
    match st.0.cfg.taxonomy.department(code) {
        Some(d) => json!({"code": code, "name_zh": d.name_zh, "name_en": d.name_en}),
        None => json!({"code": code}),
    }
}

/// The whole catalogue (every entry), built from the running configuration and store.
pub async fn entries(st: &AppState) -> Result<Vec<Value>, ApiError> {
    let stored = st.0.reads.run(|s| s.datasets()).await??;
    let now = st.now();
    let packs = (st.0.ports.scenario_needs)(st);
    let cfg = &st.0.cfg;
    let scenario_cat =
        cityos_core::scenario::Catalogue::from_toml(cityos_engine::demo::CATALOGUE_TOML)
            .unwrap_or_default();
    let mut out = Vec::new();
    // Datasets: declared, stored or both.
    let mut names: Vec<String> = declarations().iter().map(|d| d.name.clone()).collect();
    for d in &stored {
        if !names.contains(&d.name) {
            names.push(d.name.clone());
        }
    }
    for name in names {
        let decl = declared(&name);
        let d = stored.iter().find(|d| d.name == name);
        let level = d.map(|d| d.sensitivity.as_str()).unwrap_or("internal");
        let types = scenario_cat.datasets.get(&name).map(|(_, c)| c.clone());
        let cols: Vec<String> = match (d, &types) {
            (Some(d), _) => columns_of(d),
            (None, Some(t)) => t.keys().cloned().collect(),
            (None, None) => Vec::new(),
        };
        let schema: Vec<Value> = cols
            .iter()
            .map(|c| {
                let ty = types
                    .as_ref()
                    .and_then(|t| t.get(c))
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_else(|| "string".into());
                json!({
                    "name": c,
                    "type": ty,
                    "sensitivity": column_level(decl, level, c),
                    "personal": column_kind(c).map(|k| k.as_str()),
                })
            })
            .collect();
        let indicators: Vec<&str> = cfg
            .indicators
            .iter()
            .filter(|i| matches!(&i.source, Source::Dataset { dataset, .. } if *dataset == name))
            .map(|i| i.code.as_str())
            .collect();
        let readers: Vec<&str> = packs
            .iter()
            .filter(|p| p.datasets.contains(&name))
            .map(|p| p.code.as_str())
            .collect();
        // The owner as imported (who grants); the declaration's until the first import.
        let owner = d
            .map(|d| d.owner.clone())
            .or_else(|| decl.map(|x| x.owner.clone()))
            .unwrap_or_default();
        out.push(json!({
            "kind": "dataset",
            "name": name,
            "title_zh": decl.map(|x| x.name_zh.as_str()).unwrap_or(""),
            "title_en": decl.map(|x| x.name_en.as_str()).unwrap_or(""),
            "owner": department_name(st, &owner),
            "description_zh": decl.map(|x| x.description_zh.as_str()).unwrap_or(""),
            "description_en": decl.map(|x| x.description_en.as_str()).unwrap_or(""),
            "sensitivity": level,
            "schema": schema,
            "every": decl.map(|x| x.every.as_str()),
            "freshness": {
                "imported_at": d.map(|d| format_rfc3339(d.imported_at)),
                "rows": d.map(|d| d.row_count),
            },
            "quality": decl.map(|x| quality(x, d, now)),
            "lineage": {"indicators": indicators, "scenarios": readers},
            "rows_api": d.map(|_| format!("/api/v1/datasets/{name}/rows")),
        }));
    }
    // Indicators.
    for i in cfg.indicators.iter() {
        let (source, reads) = match &i.source {
            Source::Readings {
                device_kind,
                metric,
                ..
            } => (
                "readings",
                json!({"device_kind": device_kind, "metric": metric}),
            ),
            Source::Cases { stat, .. } => ("cases", json!({"stat": stat})),
            Source::Dataset {
                dataset, column, ..
            } => ("dataset", json!({"dataset": dataset, "column": column})),
            Source::External => ("external", json!({})),
        };
        let rules: Vec<&str> = cfg
            .alert_rules
            .iter()
            .filter(|r| r.expr.indicators().contains(&i.code.as_str()))
            .map(|r| r.code.as_str())
            .collect();
        let readers: Vec<&str> = packs
            .iter()
            .filter(|p| p.indicators.contains(&i.code))
            .map(|p| p.code.as_str())
            .collect();
        out.push(json!({
            "kind": "indicator",
            "name": i.code,
            "title_zh": i.name_zh,
            "title_en": i.name_en,
            "owner": department_name(st, "dist-ccc"),
            "description_zh": format!("城运体征（{}），单位 {}", i.domain.as_str(), i.unit),
            "description_en": format!("Vital sign ({}), unit {}", i.domain.as_str(), i.unit),
            "sensitivity": "internal",
            "schema": [{"name": "value", "type": "number", "sensitivity": "internal"}, {"name": "level", "type": "level", "sensitivity": "internal"}],
            "every": if source == "readings" { Some("1m") } else { None },
            "source": source,
            "lineage": {"reads": reads, "alert_rules": rules, "scenarios": readers},
        }));
    }
    // Device feeds: one per device kind.
    let mut kinds: BTreeMap<&str, (usize, Vec<&str>)> = BTreeMap::new();
    for d in &cfg.sensing.devices {
        let e = kinds.entry(d.kind.as_str()).or_default();
        e.0 += 1;
        if let Some(o) = d.owner.as_deref() {
            if !e.1.contains(&o) {
                e.1.push(o);
            }
        }
    }
    for (kind, (count, owners)) in kinds {
        let metrics = scenario_cat
            .device_kinds
            .get(kind)
            .cloned()
            .unwrap_or_default();
        let alarms: Vec<&str> = cfg
            .sensing
            .rules
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| r.code.as_str())
            .collect();
        let indicators: Vec<&str> = cfg
            .indicators
            .iter()
            .filter(|i| matches!(&i.source, Source::Readings { device_kind, .. } if device_kind == kind))
            .map(|i| i.code.as_str())
            .collect();
        let readers: Vec<&str> = packs
            .iter()
            .filter(|p| p.device_kinds.iter().any(|k| k == kind))
            .map(|p| p.code.as_str())
            .collect();
        out.push(json!({
            "kind": "device_feed",
            "name": kind,
            "title_zh": format!("设备读数：{kind}"),
            "title_en": format!("Device readings: {kind}"),
            "owner": owners.first().map(|o| department_name(st, o)).unwrap_or(json!({"code": ""})),
            "description_zh": format!("{count} 台设备的实时读数（NDJSON / MQTT）"),
            "description_en": format!("Live readings of {count} devices (NDJSON / MQTT)"),
            "sensitivity": "internal",
            "schema": metrics.iter().map(|m| json!({"name": m, "type": "number", "sensitivity": "internal"})).collect::<Vec<_>>(),
            "every": "live",
            "freshness": {"devices": count},
            "lineage": {"alarm_rules": alarms, "indicators": indicators, "scenarios": readers},
        }));
    }
    // Exports.
    for (name, zh, en, level) in [
        (
            "open311_requests",
            "Open311 公开诉求",
            "Open311 public requests (masked)",
            "public",
        ),
        (
            "cap_feed",
            "CAP 预警信息源",
            "CAP public warnings feed",
            "public",
        ),
        (
            "classify_corrections",
            "分拨更正导出（CSV，数据目录内）",
            "Triage corrections export (CSV, stays in the data directory)",
            "sensitive_personal",
        ),
        (
            "dataset_rows",
            "授权数据集行（按授权脱敏）",
            "Granted dataset rows (masked by grant)",
            "sensitive_personal",
        ),
    ] {
        out.push(json!({
            "kind": "export",
            "name": name,
            "title_zh": zh,
            "title_en": en,
            "owner": department_name(st, "dist-ccc"),
            "description_zh": zh,
            "description_en": en,
            "sensitivity": level,
            "schema": [],
            "lineage": {},
        }));
    }
    let _ = LEVELS;
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogueParams {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// `GET /api/v1/catalogue?q=&kind=` — the catalogue, searchable (staff).
pub async fn catalogue(
    State(st): State<AppState>,
    crate::Q(p): crate::Q<CatalogueParams>,
    _: Staff,
) -> Result<Json<Value>, ApiError> {
    if let Some(k) = p.kind.as_deref() {
        if !["dataset", "indicator", "device_feed", "export"].contains(&k) {
            return Err(ApiError::new(
                crate::http::error::Problem::InvalidParameter,
                "kind is one of dataset, indicator, device_feed, export",
            ));
        }
    }
    let all = entries(&st).await?;
    let q = p.q.unwrap_or_default().to_lowercase();
    let kept: Vec<Value> = all
        .into_iter()
        .filter(|e| p.kind.as_deref().is_none_or(|k| e["kind"] == k))
        .filter(|e| q.is_empty() || e.to_string().to_lowercase().contains(&q))
        .collect();
    Ok(Json(json!({"entries": kept, "levels": LEVELS})))
}

/// `GET /api/v1/data-quality` — each declared dataset's completeness and freshness.
pub async fn data_quality(State(st): State<AppState>, _: Staff) -> Result<Json<Value>, ApiError> {
    let stored = st.0.reads.run(|s| s.datasets()).await??;
    let now = st.now();
    let v: Vec<Value> = declarations()
        .iter()
        .map(|decl| {
            let d = stored.iter().find(|d| d.name == decl.name);
            let mut q = quality(decl, d, now);
            q["name"] = json!(decl.name);
            q["owner"] = json!(decl.owner);
            q
        })
        .collect();
    Ok(Json(json!({"datasets": v})))
}

/// The vital sign the data quality checks feed.
pub const QUALITY_INDICATOR: &str = "data_feeds_unhealthy";
/// The category of a data quality case, and the key its open case is kept under.
pub const QUALITY_CATEGORY: &str = "data_quality";

/// One round of the data quality checks: every declared dataset that was imported is
/// judged (freshness, completeness); the number that are stale or incomplete becomes
/// the district's `data_feeds_unhealthy` value (its levels raise the vital sign), and
/// each such dataset has one open case for its owner department (lead line = the
/// owner's line), noted when it is healthy again. Answers the unhealthy datasets.
pub async fn quality_tick(st: &AppState) -> Result<Vec<String>, ApiError> {
    use cityos_core::case::{CasePlaybook, Channel};
    use cityos_core::workflow::NewReport;
    let stored = st.0.reads.run(|s| s.datasets()).await??;
    let now = st.now();
    let mut bad: Vec<(String, String, String)> = Vec::new();
    for decl in declarations() {
        let Some(d) = stored.iter().find(|d| d.name == decl.name) else {
            continue;
        };
        let q = quality(decl, Some(d), now);
        if q["status"] != "ok" {
            let why: Vec<String> = q["problems"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            bad.push((d.name.clone(), d.owner.clone(), why.join("；")));
        }
    }
    let district =
        st.0.cfg
            .territory
            .region(st.0.cfg.territory.root())
            .code
            .clone();
    if let Err(e) =
        (st.0.ports.indicator_value)(st, QUALITY_INDICATOR, &district, bad.len() as f64, now)
    {
        crate::http::log::event("data_quality_indicator", &[("error", &e)]);
    }
    let open = st.0.reads.run(|s| s.rule_cases(QUALITY_CATEGORY)).await??;
    for (name, owner, why) in &bad {
        let existing = open
            .iter()
            .find(|(subject, _)| subject == name)
            .map(|x| x.1);
        if crate::cases::still_open(st, existing).await?.is_some() {
            continue;
        }
        let Some(dept) = st.0.cfg.taxonomy.department(owner) else {
            continue;
        };
        let p = st.0.cfg.territory.interior_point(st.0.cfg.territory.root());
        let report = NewReport {
            channel: Channel::Sensor,
            category: QUALITY_CATEGORY.into(),
            lon: p[0],
            lat: p[1],
            text: format!("数据集 {name} 质量异常：{why}"),
            contact: None,
            at: now,
            media: Vec::new(),
            priority: None,
            playbook: Some(Box::new(CasePlaybook {
                scenario: QUALITY_CATEGORY.into(),
                version: "1".into(),
                lead: dept.line.clone(),
                joint: Vec::new(),
                limits: Default::default(),
                checklist: Vec::new(),
            })),
            suggestion: None,
        };
        let (id, _) = crate::cases::file_report(st, report).await?;
        let n = name.clone();
        st.0.reads
            .write(move |s| s.put_rule_case(QUALITY_CATEGORY, &n, Some(id)))
            .await??;
    }
    // Healthy again: the open case is told and let go.
    for (subject, case) in &open {
        if bad.iter().any(|b| &b.0 == subject) {
            continue;
        }
        if crate::cases::still_open(st, Some(*case)).await?.is_some() {
            crate::cases::note_case(st, *case, format!("数据集 {subject} 已恢复正常"), now).await?;
        }
        let n = subject.clone();
        st.0.reads
            .write(move |s| s.put_rule_case(QUALITY_CATEGORY, &n, None))
            .await??;
    }
    Ok(bad.into_iter().map(|b| b.0).collect())
}
