//! Discovery and services: `GET discovery`, `GET services` (public categories only) and
//! a service's definition (its questions); the `GET` dispatcher of the top-level files.

use super::reply::{
    check_jurisdiction, query_params, render, render_error, split_format, Format, Open311Error,
};
use super::views::list_requests;
use super::{ANONYMOUS_LIMIT, ANONYMOUS_WINDOW, MAX_RESULTS, MAX_SPAN};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::Response;
use cityos_core::taxonomy::Category;
use cityos_core::time::{DAY, MINUTE};
use serde_json::{json, Value};

pub(super) fn public_category<'a>(st: &'a AppState, code: &str) -> Option<&'a Category> {
    st.0.cfg.taxonomy.category(code).filter(|c| c.public)
}

fn service_view(st: &AppState, c: &Category) -> Value {
    let tax = &st.0.cfg.taxonomy;
    json!({
        "service_code": c.code,
        "service_name": c.name_zh,
        "description": c.name_en,
        "metadata": !c.questions.is_empty(),
        "type": "realtime",
        "keywords": c.keywords.join(","),
        "group": c.parent.as_deref().and_then(|p| tax.group(p)).map(|g| g.name_zh.clone()),
    })
}

fn service_definition(c: &Category) -> Value {
    let attributes: Vec<Value> = c
        .questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            json!({
                "variable": true,
                "code": q.code,
                "datatype": q.datatype.as_str(),
                "required": q.required,
                "datatype_description": if q.datatype_description.is_empty() { Value::Null } else { json!(q.datatype_description) },
                "order": i + 1,
                "description": q.description,
                "values": q.values.iter().map(|(k, n)| json!({"key": k, "name": n})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({"service_code": c.code, "attributes": attributes})
}
/// `GET /open311/v2/{discovery|services|requests}.{json|xml}`
pub(super) async fn get_top(
    State(st): State<AppState>,
    Path(file): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let Some((name, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found(format!(
                "{file:?} is not an Open311 resource: name it with .json or .xml"
            )),
        );
    };
    let r = async {
        let params = query_params(&uri)?;
        check_jurisdiction(&st, &params)?;
        match name {
            "discovery" => Ok(("discovery", discovery(&st, &headers))),
            "services" => {
                let v: Vec<Value> =
                    st.0.cfg
                        .taxonomy
                        .categories
                        .iter()
                        .filter(|c| c.public)
                        .map(|c| service_view(&st, c))
                        .collect();
                Ok(("services", Value::Array(v)))
            }
            "requests" => list_requests(&st, &params)
                .await
                .map(|v| ("service_requests", v)),
            _ => Err(Open311Error::not_found(format!(
                "there is no Open311 resource {name:?}"
            ))),
        }
    }
    .await;
    match r {
        Ok((root, v)) => render(fmt, StatusCode::OK, root, &v),
        Err(e) => render_error(fmt, e),
    }
}

pub(super) fn discovery(st: &AppState, headers: &HeaderMap) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let t = &st.0.cfg.territory;
    let root = t.region(t.root());
    let changeset = "2026-11-26T00:00:00+08:00";
    json!({
        "changeset": changeset,
        "contact": format!("{}城市运行管理中心 City Operations Centre of {}", root.name_zh, root.name_en.as_deref().unwrap_or(&root.code)),
        "key_service": format!("Apps obtain an api_key from the operations centre (`cityos token --role citizen …`); anonymous requests are accepted at a limited rate ({ANONYMOUS_LIMIT} per address per {} minutes, then 429 with Retry-After). GET requests answers at most {MAX_RESULTS} requests, newest first, over at most 90 days. Requests need lat and long: addresses are not geocoded.", ANONYMOUS_WINDOW / MINUTE),
        "limits": {"requests_max_results": MAX_RESULTS, "date_span_days": MAX_SPAN / DAY, "anonymous_creates": ANONYMOUS_LIMIT, "anonymous_window_minutes": ANONYMOUS_WINDOW / MINUTE},
        "endpoints": [{
            "specification": "http://wiki.open311.org/GeoReport_v2",
            "url": format!("http://{host}/open311/v2"),
            "changeset": changeset,
            "type": "production",
            "formats": ["text/xml", "application/json"],
        }],
    })
}

/// `GET /open311/v2/services/{code}.{json|xml}` — the service definition.
pub(super) async fn get_service(
    State(st): State<AppState>,
    Path(file): Path<String>,
    uri: Uri,
) -> Response {
    let Some((code, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the service definition with .json or .xml"),
        );
    };
    let r = query_params(&uri)
        .and_then(|p| check_jurisdiction(&st, &p))
        .and_then(|()| {
            public_category(&st, code)
                .map(service_definition)
                .ok_or_else(|| Open311Error::not_found(format!("there is no service {code:?}")))
        });
    match r {
        Ok(v) => render(fmt, StatusCode::OK, "service_definition", &v),
        Err(e) => render_error(fmt, e),
    }
}
