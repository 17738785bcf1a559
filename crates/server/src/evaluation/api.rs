//! The evaluation endpoints: `GET /api/v1/evaluation` (a dimension's ranking with the red
//! and black lists, or one unit's figures, score explained line by line with the case
//! numbers behind each line, and trend), `/evaluation/cases` (the drill-down from one
//! figure to its cases), `/evaluation/export` (XLSX, CSV, print-ready HTML),
//! `/evaluation/measures` (the definitions) and the saved monthly reports.

use super::export::{self, Format, Report};
use super::{
    dimension, dimension_within, facts, name_of, period, reach, table, unit, visible, Reach, Unit,
};
use crate::http::error::{ApiError, Problem};
use crate::http::extract::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cityos_core::evaluation::measures::{behind, figures, CaseFacts, Kind};
use cityos_core::evaluation::scoring::Score;
use cityos_core::evaluation::{Dim, Figures, Measure, Period};
use cityos_core::time::format_rfc3339;
use serde::Deserialize;
use serde_json::{json, Value};

type ApiResult = Result<Response, ApiError>;

/// Case numbers listed per explanation line at most (the drill-down lists them all).
pub const LINE_CASES: usize = 50;
/// Periods in a trend (this one and those before it).
pub const TREND: usize = 6;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalParams {
    pub period: String,
    pub dimension: Option<String>,
    pub unit: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesParams {
    pub period: String,
    pub unit: String,
    pub measure: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    pub period: String,
    pub dimension: Option<String>,
    pub unit: Option<String>,
    pub format: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatParam {
    pub format: Option<String>,
}

/// A figure as JSON.
pub fn value_json(f: &Figures, m: Measure) -> Value {
    let v = f.get(m);
    json!({"value": v.value, "numerator": v.numerator, "samples": v.samples})
}

pub fn figures_json(f: &Figures) -> Value {
    Value::Object(
        Measure::ALL
            .iter()
            .map(|m| (m.code().to_string(), value_json(f, *m)))
            .collect(),
    )
}

/// The measures' definitions, in report order.
pub fn definitions() -> Value {
    Value::Array(
        Measure::ALL
            .iter()
            .map(|m| {
                json!({
                    "code": m.code(), "name_zh": m.name_zh(), "name_en": m.name_en(),
                    "definition_zh": m.definition_zh(), "definition_en": m.definition_en(),
                    "kind": match m.kind() { Kind::Count => "count", Kind::Rate => "rate", Kind::MeanHours | Kind::P90Hours => "hours" },
                    "higher_is_better": m.higher_is_better(),
                })
            })
            .collect(),
    )
}

pub async fn measures() -> Json<Value> {
    Json(json!({"measures": definitions()}))
}

pub async fn evaluation(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<EvalParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    let r = reach(&p)?;
    let per = period(&q.period, st.now())?;
    let scheme = st.0.evaluation.scheme()?.clone();
    if let Some(u) = q.unit.as_deref() {
        let u = unit(&st.0.cfg, u, &r)?;
        let hidden = crate::cases::hidden_categories(&st, &p);
        return Ok(Json(unit_json(&st, &per, &u, &r, &hidden).await?).into_response());
    }
    let dim = match q.dimension.as_deref() {
        Some(d) => dimension(d)?,
        None => Dim::Department,
    };
    if !dimension_within(dim, &r) {
        return Err(ApiError::not_found(&format!("dimension {}", dim.as_str())));
    }
    let all = facts(&st, &per).await?;
    let seen = visible(&all, &r);
    let t = table(&st.0.cfg, &scheme, &seen, dim, &r);
    let rows: Vec<Value> = t
        .rows
        .iter()
        .map(|row| {
            json!({
                "unit": format!("{}:{}", dim.as_str(), row.code), "code": row.code, "name_zh": row.name, "name_en": name_en(&st.0.cfg, &row.code),
                "class": row.ranked.class, "rank": row.ranked.rank, "list": row.ranked.list,
                "score": row.score.score, "unranked": row.score.unranked,
                "figures": figures_json(&row.figures),
            })
        })
        .collect();
    let pick = |l: &str| -> Vec<Value> {
        t.rows
            .iter()
            .filter(|r| r.ranked.list == l)
            .map(|r| json!({"unit": format!("{}:{}", dim.as_str(), r.code), "name_zh": r.name, "name_en": name_en(&st.0.cfg, &r.code), "class": r.ranked.class, "score": r.score.score, "rank": r.ranked.rank}))
            .collect()
    };
    Ok(Json(json!({
        "period": per.to_string(), "from": format_rfc3339(per.from()), "to": format_rfc3339(per.to()),
        "generated_at": format_rfc3339(st.now()),
        "dimension": dim.as_str(), "scheme": scheme.name,
        "classes": scheme.classes.iter().map(|c| json!({"code": c.code, "name_zh": c.name_zh, "name_en": c.name_en})).collect::<Vec<_>>(),
        "cases": seen.len(),
        "units": rows, "red": pick("red"), "black": pick("black"),
        "measures": definitions(),
    }))
    .into_response())
}

/// The facts a unit's figures are taken over (its reach's cases).
async fn unit_facts(st: &AppState, per: &Period, r: &Reach) -> Result<Vec<CaseFacts>, ApiError> {
    Ok(visible(&facts(st, per).await?, r))
}

fn district(st: &AppState) -> String {
    let t = &st.0.cfg.territory;
    t.region(t.root()).code.clone()
}

/// One unit's figures in a period.
fn unit_figures(st: &AppState, f: &[CaseFacts], u: &Unit) -> Figures {
    figures(f, u.dim, &district(st))
        .remove(&u.code)
        .unwrap_or_default()
}

/// A unit's answer: figures, the score explained with the cases behind each line, its
/// place, and the trend.
pub async fn unit_json(
    st: &AppState,
    per: &Period,
    u: &Unit,
    r: &Reach,
    hidden: &[String],
) -> Result<Value, ApiError> {
    let scheme = st.0.evaluation.scheme()?.clone();
    let f = unit_facts(st, per, r).await?;
    let figs = unit_figures(st, &f, u);
    let score = scheme.score(&figs);
    // Its place among its dimension's units (over the same cases).
    let t = table(&st.0.cfg, &scheme, &f, u.dim, &Reach::All);
    let place = t
        .rows
        .iter()
        .find(|row| row.code == u.code)
        .map(|row| &row.ranked);
    let d = district(st);
    let lines: Vec<Value> = score
        .lines
        .iter()
        .map(|l| {
            // Cases of restricted categories the caller may not see are counted in the
            // figures but not named here.
            let cases: Vec<_> = behind(&f, u.dim, &d, &u.code, l.measure)
                .into_iter()
                .filter(|(c, _)| !hidden.contains(&c.category))
                .collect();
            json!({
                "measure": l.measure.code(), "name_zh": l.measure.name_zh(), "name_en": l.measure.name_en(),
                "kind": l.kind, "value": l.value, "numerator": l.numerator, "samples": l.samples,
                "factor": l.factor, "points": l.points, "counted": l.counted, "note": l.note,
                "cases": cases_brief(&cases, l.measure),
            })
        })
        .collect();
    let mut trend = Vec::new();
    let mut p = *per;
    let mut periods = vec![p];
    for _ in 1..TREND {
        p = p.previous();
        periods.push(p);
    }
    periods.reverse();
    for p in periods {
        let f = unit_facts(st, &p, r).await?;
        let figs = unit_figures(st, &f, u);
        let s = scheme.score(&figs);
        trend.push(json!({
            "period": p.to_string(), "score": s.score,
            "received": figs.get(Measure::Received).value,
            "handle_on_time": figs.get(Measure::HandleOnTime).value,
            "satisfaction": figs.get(Measure::Satisfaction).value,
        }));
    }
    Ok(json!({
        "period": per.to_string(), "from": format_rfc3339(per.from()), "to": format_rfc3339(per.to()),
        "generated_at": format_rfc3339(st.now()),
        "unit": u.to_string(), "dimension": u.dim.as_str(), "code": u.code,
        "name_zh": name_of(&st.0.cfg, u.dim, &u.code),
        "name_en": name_en(&st.0.cfg, &u.code),
        "figures": figures_json(&figs),
        "score": score_json(&score, lines),
        "rank": place.and_then(|x| x.rank), "class": place.map(|x| x.class.clone()), "list": place.map_or("", |x| x.list),
        "trend": trend,
        "measures": definitions(),
    }))
}

fn score_json(s: &Score, lines: Vec<Value>) -> Value {
    json!({"score": s.score, "unranked": s.unranked, "lines": lines})
}

/// The case numbers behind a line: for rates those counted yes and no, otherwise each
/// with its value; at most [`LINE_CASES`] each, with the totals.
fn cases_brief(cases: &[(&CaseFacts, f64)], m: Measure) -> Value {
    let take = |it: &mut dyn Iterator<Item = &(&CaseFacts, f64)>| -> Vec<Value> {
        it.take(LINE_CASES)
            .map(|(c, v)| {
                if m.kind() == Kind::Rate {
                    json!(c.number)
                } else {
                    json!({"number": c.number, "value": v})
                }
            })
            .collect()
    };
    if m.kind() == Kind::Rate {
        let yes = cases.iter().filter(|(_, v)| *v > 0.5).count();
        json!({
            "yes": take(&mut cases.iter().filter(|(_, v)| *v > 0.5)),
            "no": take(&mut cases.iter().filter(|(_, v)| *v <= 0.5)),
            "yes_total": yes, "no_total": cases.len() - yes,
        })
    } else {
        json!({"list": take(&mut cases.iter()), "total": cases.len()})
    }
}

pub async fn cases(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<CasesParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    let r = reach(&p)?;
    let per = period(&q.period, st.now())?;
    let u = unit(&st.0.cfg, &q.unit, &r)?;
    let m = Measure::parse(&q.measure).ok_or_else(|| {
        ApiError::new(
            Problem::InvalidParameter,
            format!(
                "measure {:?} is not one of {}",
                q.measure,
                Measure::ALL
                    .iter()
                    .map(|m| m.code())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })?;
    let f = unit_facts(&st, &per, &r).await?;
    let hidden = crate::cases::hidden_categories(&st, &p);
    let list: Vec<_> = behind(&f, u.dim, &district(&st), &u.code, m)
        .into_iter()
        .filter(|(c, _)| !hidden.contains(&c.category))
        .collect();
    let tax = &st.0.cfg.taxonomy;
    Ok(Json(json!({
        "period": per.to_string(), "unit": u.to_string(), "measure": m.code(),
        "name_zh": m.name_zh(), "definition_zh": m.definition_zh(), "definition_en": m.definition_en(),
        "total": list.len(),
        "sum": list.iter().map(|(_, v)| v).sum::<f64>(),
        "cases": list.iter().map(|(c, v)| json!({
            "id": c.id, "number": c.number, "value": v,
            "category": c.category, "category_name_zh": tax.category(&c.category).map(|x| x.name_zh.clone()), "category_name_en": tax.category(&c.category).map(|x| x.name_en.clone()),
            "state": c.state.as_str(), "created_at": format_rfc3339(c.created_at),
            "subdistrict": c.subdistrict, "community": c.community, "lead": c.last_lead(),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// Builds the report of a dimension (or one unit) for a period.
pub async fn report(
    st: &AppState,
    per: &Period,
    dim: Dim,
    u: Option<&Unit>,
    r: &Reach,
) -> Result<Report, ApiError> {
    let scheme = st.0.evaluation.scheme()?.clone();
    let f = unit_facts(st, per, r).await?;
    let mut trend = Vec::new();
    let mut p = *per;
    let mut periods = vec![p];
    for _ in 1..TREND {
        p = p.previous();
        periods.push(p);
    }
    periods.reverse();
    let trend_unit = u.cloned().unwrap_or_else(|| match r {
        Reach::Region(code) => Unit {
            dim: Dim::Subdistrict,
            code: code.clone(),
        },
        Reach::Department(d) => Unit {
            dim: Dim::Department,
            code: d.clone(),
        },
        Reach::All => Unit {
            dim: Dim::District,
            code: district(st),
        },
    });
    for p in periods {
        let pf = unit_facts(st, &p, r).await?;
        let figs = unit_figures(st, &pf, &trend_unit);
        trend.push((p.to_string(), scheme.score(&figs).score, figs));
    }
    Ok(match u {
        Some(u) => export::unit_report(&st.0.cfg, &scheme, per, &f, u, trend, st.now()),
        None => {
            let t = table(&st.0.cfg, &scheme, &f, dim, r);
            export::table_report(
                &scheme,
                per,
                &t,
                &name_of(&st.0.cfg, trend_unit.dim, &trend_unit.code),
                trend,
                st.now(),
            )
        }
    })
}

pub async fn export_handler(
    State(st): State<AppState>,
    crate::Q(q): crate::Q<ExportParams>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    let r = reach(&p)?;
    let format = Format::parse(&q.format)?;
    let per = period(&q.period, st.now())?;
    let dim = match q.dimension.as_deref() {
        Some(d) => dimension(d)?,
        None => Dim::Department,
    };
    let u = match q.unit.as_deref() {
        Some(x) => Some(unit(&st.0.cfg, x, &r)?),
        None => {
            if !dimension_within(dim, &r) {
                return Err(ApiError::not_found(&format!("dimension {}", dim.as_str())));
            }
            None
        }
    };
    let rep = report(&st, &per, dim, u.as_ref(), &r).await?;
    let name = match &u {
        Some(u) => format!("evaluation-{}-{}-{}", per, u.dim.as_str(), u.code),
        None => format!("evaluation-{}-{}", per, dim.as_str()),
    };
    export::respond(&rep, format, &name)
}

/// The saved monthly reports (district-wide: officers, analysts, administrators).
pub async fn saved_reports(State(st): State<AppState>, SignedIn(p): SignedIn) -> ApiResult {
    if reach(&p)? != Reach::All {
        return Err(ApiError::forbidden(
            "the district's monthly reports are for the district's officers and analysts",
        ));
    }
    let list = st.0.reads.run(|s| s.evaluation_reports()).await??;
    Ok(Json(json!({
        "reports": list.iter().map(|r| json!({
            "name": r.name, "created_at": format_rfc3339(r.created_at),
            "files": files_of(&r.name),
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

fn files_of(name: &str) -> Vec<String> {
    ["xlsx", "csv", "html"]
        .iter()
        .map(|f| format!("/api/v1/evaluation/reports/{name}?format={f}"))
        .collect()
}

pub async fn saved_report(
    State(st): State<AppState>,
    Path(name): Path<String>,
    crate::Q(q): crate::Q<FormatParam>,
    SignedIn(p): SignedIn,
) -> ApiResult {
    if reach(&p)? != Reach::All {
        return Err(ApiError::forbidden(
            "the district's monthly reports are for the district's officers and analysts",
        ));
    }
    let format = Format::parse(q.format.as_deref().unwrap_or("html"))?;
    let n = name.clone();
    let rep =
        st.0.reads
            .run(move |s| s.evaluation_report(&n))
            .await??
            .ok_or_else(|| ApiError::not_found(&format!("report {name}")))?;
    let file = format!("evaluation-{}", rep.name);
    Ok(match format {
        Format::Xlsx => export::file(rep.xlsx, Format::Xlsx, &file),
        Format::Csv => export::file(rep.csv.into_bytes(), Format::Csv, &file),
        Format::Html => export::file(rep.html.into_bytes(), Format::Html, &file),
    })
}

/// Sets the headers of a file answer.
pub fn headers_of(format: Format, name: &str) -> [(header::HeaderName, String); 2] {
    [
        (header::CONTENT_TYPE, format.content_type().to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!(
                "{}; filename=\"{name}.{}\"",
                if format == Format::Html {
                    "inline"
                } else {
                    "attachment"
                },
                format.extension()
            ),
        ),
    ]
}

/// A ranked unit's English name (English pages): a department's, or a region's pinyin.
fn name_en(cfg: &cityos_engine::config::Config, code: &str) -> Option<String> {
    if let Some(d) = cfg.taxonomy.department(code) {
        return Some(d.name_en.clone());
    }
    cfg.territory
        .by_code(code)
        .and_then(|id| cfg.territory.region(id).name_en.clone())
}
