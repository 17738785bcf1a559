//! The citizens' end as Open311 GeoReport v2 (`/open311/v2/…`): discovery, services and
//! their definitions, creating requests (form-encoded), following them, tokens — in
//! JSON and XML, with the specification's field names, `open`/`closed` statuses and
//! `{code, description}` error lists.
//!
//! A service is a public category of the taxonomy; a service request is the case a report
//! became or joined (`service_request_id` is the case number, so reports merged into one
//! case follow the same request). Only public categories are listed or answered:
//! welfare checks and other non-public cases never appear here.
//!
//! A request's `description` is the citizen's full text (the first report of the case,
//! with the answers to the service's questions), not the case's 60-character title; an
//! `address_string` sent with the coordinates is kept as the report's last line
//! (`地址：…`) and answered as `address` (otherwise `address` names the regions).
//! This server cannot geocode: a request needs `lat` and `long`, and an address alone is
//! answered 400 saying so. An unknown `service_code` is 404; an anonymous address over its
//! limit gets 429 with `Retry-After`; `GET requests` answers at most 1,000 requests.
//! The public ends (`/open311/`, `/cap/`, `/media/`) answer browsers on any origin (CORS,
//! no credentials); the signed-in API under `/api/v1` does not.

use crate::cases::{report_of_token, token_of_report, MAX_DESCRIPTION};
use crate::http::auth::Principal;
use crate::http::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use cityos_core::case::{Case, Channel};
use cityos_core::taxonomy::{Category, Datatype};
use cityos_core::time::{format_rfc3339, parse_datetime, Millis, DAY, MINUTE};
use cityos_core::workflow::NewReport;
use cityos_engine::engine::{Request as EngineRequest, Response as EngineResponse};
use cityos_engine::query::{CaseQuery, Sort};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Anonymous requests one address may create per window.
pub const ANONYMOUS_LIMIT: u32 = 20;
pub const ANONYMOUS_WINDOW: Millis = 10 * MINUTE;
/// The widest `start_date`–`end_date` span, and the default look-back.
const MAX_SPAN: Millis = 90 * DAY;
/// The most requests one `GET requests` answers (newest first; narrow the dates for more).
pub const MAX_RESULTS: usize = 1000;
/// The line that carries a request's `address_string` in its report text.
const ADDRESS_LINE: &str = "地址：";

/// Paths a browser app on another origin may use: Open311, the public CAP feed and the
/// photos. The signed-in API (`/api/v1`, cookies and tokens) is not among them.
fn cross_origin(path: &str) -> bool {
    ["/open311/", "/cap/", "/media/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// Middleware: CORS for the public ends — `Access-Control-Allow-Origin: *` on their
/// answers (no credentials), and preflight `OPTIONS` answered 204 with the methods and
/// headers a client may use.
pub async fn cors(req: Request, next: axum::middleware::Next) -> Response {
    use axum::http::{HeaderValue, Method};
    if !cross_origin(req.uri().path()) {
        return next.run(req).await;
    }
    let methods = if req.uri().path().starts_with("/open311/") {
        "GET, POST, OPTIONS"
    } else {
        "GET, HEAD, OPTIONS"
    };
    let mut resp = if req.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(methods),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Accept, Accept-Language"),
        );
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        h.insert(header::ALLOW, HeaderValue::from_static(methods));
        r
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Retry-After"),
    );
    resp
}

/// The Open311 routes (merged into the service's router).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/open311/v2/{file}", get(get_top).post(post_top))
        .route("/open311/v2/services/{file}", get(get_service))
        .route("/open311/v2/requests/{file}", get(get_request))
        .route("/open311/v2/tokens/{file}", get(get_token))
        .route("/open311/v2/requests/{id}/{file}", post(post_rating))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Json,
    Xml,
}

/// `name.json` / `name.xml` → (name, format).
fn split_format(file: &str) -> Option<(&str, Format)> {
    if let Some(n) = file.strip_suffix(".json") {
        Some((n, Format::Json))
    } else {
        file.strip_suffix(".xml").map(|n| (n, Format::Xml))
    }
}

/// An error the way GeoReport v2 gives it: an HTTP status and a list of `{code, description}`.
#[derive(Debug)]
struct Open311Error {
    status: StatusCode,
    description: String,
    /// Seconds for a `Retry-After` header (429, 503).
    retry_after: Option<u32>,
}

impl Open311Error {
    fn new(status: StatusCode, description: impl Into<String>) -> Open311Error {
        Open311Error {
            status,
            description: description.into(),
            retry_after: None,
        }
    }
    fn bad(description: impl Into<String>) -> Open311Error {
        Open311Error::new(StatusCode::BAD_REQUEST, description)
    }
    fn not_found(description: impl Into<String>) -> Open311Error {
        Open311Error::new(StatusCode::NOT_FOUND, description)
    }
}

impl From<ApiError> for Open311Error {
    fn from(e: ApiError) -> Open311Error {
        // GeoReport v2 knows 404, 403 and 400 (plus what the transport needs).
        let status = match e.status.as_u16() {
            401 | 403 => StatusCode::FORBIDDEN,
            404 | 413 | 415 | 429 | 503 | 500 => e.status,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut out = Open311Error::new(status, e.detail);
        out.retry_after = e.retry_after;
        out
    }
}

fn render(fmt: Format, status: StatusCode, root: &str, v: &Value) -> Response {
    match fmt {
        Format::Json => (
            status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            v.to_string(),
        )
            .into_response(),
        Format::Xml => {
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>");
            xml(root, v, &mut out);
            (
                status,
                [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                out,
            )
                .into_response()
        }
    }
}

fn render_error(fmt: Format, e: Open311Error) -> Response {
    let v = json!([{"code": e.status.as_u16(), "description": e.description}]);
    let mut r = render(fmt, e.status, "errors", &v);
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(s));
    }
    r
}

/// The element name of one item of a list element (the XML shape of GeoReport v2).
fn item_name(list: &str) -> &str {
    match list {
        "services" => "service",
        "service_requests" => "request",
        "errors" => "error",
        "attributes" => "attribute",
        "values" => "value",
        "endpoints" => "endpoint",
        "formats" => "format",
        "tokens" => "token",
        "uploads" => "upload",
        "ratings" => "rating",
        _ => "item",
    }
}

/// JSON → XML: objects become child elements, arrays repeat the item element, null is
/// an empty element.
fn xml(name: &str, v: &Value, out: &mut String) {
    match v {
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            for (k, x) in m {
                xml(k, x, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Array(a) => {
            out.push_str(&format!("<{name}>"));
            for x in a {
                xml(item_name(name), x, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::String(s) => {
            out.push_str(&format!("<{name}>"));
            escape_into(s, out);
            out.push_str(&format!("</{name}>"));
        }
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn escape_into(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
}

fn public_category<'a>(st: &'a AppState, code: &str) -> Option<&'a Category> {
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

fn check_jurisdiction(st: &AppState, params: &HashMap<String, String>) -> Result<(), Open311Error> {
    let Some(j) = params.get("jurisdiction_id").filter(|j| !j.is_empty()) else {
        return Ok(());
    };
    let t = &st.0.cfg.territory;
    let root = t.region(t.root());
    if j == &root.code {
        Ok(())
    } else {
        Err(Open311Error::not_found(format!(
            "unknown jurisdiction_id {j:?}: this server answers for {} ({})",
            root.code, root.name_zh
        )))
    }
}

fn query_params(uri: &axum::http::Uri) -> Result<HashMap<String, String>, Open311Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| Open311Error::bad(format!("the query string is not valid: {e}")))?;
    Ok(pairs.into_iter().collect())
}

/// `GET /open311/v2/{discovery|services|requests}.{json|xml}`
async fn get_top(
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

fn discovery(st: &AppState, headers: &HeaderMap) -> Value {
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
async fn get_service(State(st): State<AppState>, Path(file): Path<String>, uri: Uri) -> Response {
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

/// A report's text split into the citizen's description and the `address_string` they
/// gave (kept as the text's last line).
fn split_address(text: &str) -> (&str, Option<&str>) {
    match text.rsplit_once('\n') {
        Some((d, last)) if last.starts_with(ADDRESS_LINE) => (
            d,
            Some(&last[ADDRESS_LINE.len()..]).filter(|a| !a.is_empty()),
        ),
        _ => (text, None),
    }
}

/// The full text of each case's first report (the case's own title when it has none).
async fn first_texts(st: &AppState, cases: &[Case]) -> Result<Vec<String>, Open311Error> {
    let firsts: Vec<(Option<i64>, String)> = cases
        .iter()
        .map(|c| (c.reports.first().copied(), c.title.clone()))
        .collect();
    Ok(st
        .0
        .reads
        .run(move |s| {
            firsts
                .into_iter()
                .map(|(r, title)| {
                    Ok(match r {
                        Some(r) => s.load_report(r)?.map_or(title, |r| r.text),
                        None => title,
                    })
                })
                .collect::<Result<Vec<_>, cityos_engine::StoreError>>()
        })
        .await?
        .map_err(ApiError::from)?)
}

/// Cases as GeoReport v2 service requests, with their full descriptions.
async fn request_views(st: &AppState, cases: &[Case]) -> Result<Value, Open311Error> {
    let texts = first_texts(st, cases).await?;
    Ok(Value::Array(
        cases
            .iter()
            .zip(&texts)
            .map(|(c, t)| request_view(st, c, t))
            .collect(),
    ))
}

/// A case as a GeoReport v2 service request, as the public sees it (`text` is its first
/// report's text): phone numbers, ID numbers and e-mail addresses in the description
/// and the address are masked.
fn request_view(st: &AppState, c: &Case, text: &str) -> Value {
    let mut v = request_fields(st, c, text);
    for field in ["description", "address"] {
        if let Some(Value::String(d)) = v.get_mut(field) {
            *d = cityos_core::privacy::mask_personal(d);
        }
    }
    v
}

fn request_fields(st: &AppState, c: &Case, text: &str) -> Value {
    let cfg = &st.0.cfg;
    let t = &cfg.territory;
    let (description, given_address) = split_address(text);
    let regions: String = [
        &c.regions.district,
        &c.regions.subdistrict,
        &c.regions.community,
    ]
    .into_iter()
    .flatten()
    .filter_map(|code| t.by_code(code).map(|id| t.region(id).name_zh.clone()))
    .collect::<Vec<_>>()
    .join("");
    let address = given_address.map_or(regions, str::to_string);
    let agency = c
        .lead_task()
        .and_then(|task| cfg.taxonomy.department(&task.department))
        .map(|d| d.name_zh.clone());
    let expected = c
        .deadline(cityos_core::Step::Handle)
        .map(|d| d.due)
        .or_else(|| c.due());
    json!({
        "service_request_id": c.number,
        "status": if c.state.is_open() { "open" } else { "closed" },
        "status_notes": format!("{} {}", c.state.name_zh(), c.state.as_str().replace('_', " ")),
        "service_name": cfg.taxonomy.category(&c.category).map(|x| x.name_zh.clone()),
        "service_code": c.category,
        "description": description,
        "agency_responsible": agency,
        "service_notice": Value::Null,
        "requested_datetime": format_rfc3339(c.created_at),
        "updated_datetime": format_rfc3339(c.updated_at),
        "expected_datetime": expected.map(format_rfc3339),
        "address": address,
        "address_id": Value::Null,
        "zipcode": Value::Null,
        "lat": c.lat,
        "long": c.lon,
        "media_url": c.media.first(),
    })
}

async fn list_requests(
    st: &AppState,
    params: &HashMap<String, String>,
) -> Result<Value, Open311Error> {
    let nonempty = |k: &str| params.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    // service_request_id overrides every other filter.
    if let Some(ids) = nonempty("service_request_id") {
        let ids: Vec<String> = ids
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .take(MAX_RESULTS)
            .collect();
        let cases =
            st.0.reads
                .run(move |s| {
                    ids.iter()
                        .map(|n| s.load_case_by_number(n))
                        .collect::<Result<Vec<_>, _>>()
                })
                .await?
                .map_err(ApiError::from)?;
        let cases: Vec<Case> = cases
            .into_iter()
            .flatten()
            .filter(|c| public_category(st, &c.category).is_some())
            .collect();
        return request_views(st, &cases).await;
    }
    let date = |k: &str| -> Result<Option<Millis>, Open311Error> {
        nonempty(k)
            .map(|s| {
                parse_datetime(s).ok_or_else(|| {
                    Open311Error::bad(format!(
                        "{k} {s:?} is not a W3C datetime such as 2026-11-26T09:30:00+08:00"
                    ))
                })
            })
            .transpose()
    };
    let now = st.now();
    let (start, end) = (date("start_date")?, date("end_date")?);
    let (from, to) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (Some(s), None) => (s, (s + MAX_SPAN).min(now + 1).max(s)),
        (None, Some(e)) => (e - MAX_SPAN, e),
        // The specification's default: the last 90 days.
        (None, None) => (now + 1 - MAX_SPAN, now + 1),
    };
    if to < from {
        return Err(Open311Error::bad("end_date is before start_date"));
    }
    if to - from > MAX_SPAN {
        return Err(Open311Error::bad(
            "start_date and end_date may be at most 90 days apart",
        ));
    }
    let categories = match nonempty("service_code") {
        Some(code) => {
            let mut v = code
                .split(',')
                .map(|c| {
                    public_category(st, c.trim())
                        .map(|c| c.code.clone())
                        .ok_or_else(|| Open311Error::bad(format!("unknown service_code {c:?}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // Repeats are one value: the query stays as small as the taxonomy.
            v.sort();
            v.dedup();
            v
        }
        None => {
            st.0.cfg
                .taxonomy
                .categories
                .iter()
                .filter(|c| c.public)
                .map(|c| c.code.clone())
                .collect()
        }
    };
    let states = match nonempty("status") {
        None => Vec::new(),
        Some(s) => {
            let mut open = false;
            let mut closed = false;
            for x in s.split(',') {
                match x.trim() {
                    "open" => open = true,
                    "closed" => closed = true,
                    other => {
                        return Err(Open311Error::bad(format!(
                            "unknown status {other:?}: use open or closed"
                        )))
                    }
                }
            }
            cityos_core::case::State::ALL
                .into_iter()
                .filter(|st| if st.is_open() { open } else { closed })
                .filter(|st| *st != cityos_core::case::State::Merged)
                .collect()
        }
    };
    let q = CaseQuery {
        states,
        categories,
        created_from: Some(from),
        created_to: Some(to),
        sort: Sort::Created,
        descending: true,
        limit: MAX_RESULTS,
        now,
        ..Default::default()
    };
    let page =
        st.0.reads
            .run(move |s| s.list_cases(&q))
            .await?
            .map_err(ApiError::from)?;
    request_views(st, &page.cases).await
}

/// `GET /open311/v2/requests/{id}.{json|xml}`
async fn get_request(State(st): State<AppState>, Path(file): Path<String>, uri: Uri) -> Response {
    let Some((id, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the request with .json or .xml"),
        );
    };
    let id = id.to_string();
    let r = async {
        check_jurisdiction(&st, &query_params(&uri)?)?;
        let number = id.clone();
        let case =
            st.0.reads
                .run(move |s| s.load_case_by_number(&number))
                .await?
                .map_err(ApiError::from)?
                .filter(|c| public_category(&st, &c.category).is_some())
                .ok_or_else(|| Open311Error::not_found(format!("there is no request {id:?}")))?;
        request_views(&st, std::slice::from_ref(&case)).await
    }
    .await;
    match r {
        Ok(v) => render(fmt, StatusCode::OK, "service_requests", &v),
        Err(e) => render_error(fmt, e),
    }
}

/// `GET /open311/v2/tokens/{token}.{json|xml}` — the token is the report's number.
async fn get_token(State(st): State<AppState>, Path(file): Path<String>, uri: Uri) -> Response {
    let Some((token, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the token with .json or .xml"),
        );
    };
    let token = token.to_string();
    let r = async {
        check_jurisdiction(&st, &query_params(&uri)?)?;
        let unknown = || Open311Error::not_found(format!("there is no token {token:?}"));
        let id = report_of_token(&st, &token).ok_or_else(unknown)?;
        let case =
            st.0.reads
                .run(
                    move |s| -> Result<Option<Case>, cityos_engine::StoreError> {
                        match s.load_report(id)? {
                            Some(r) => s.load_case(r.case_id),
                            None => Ok(None),
                        }
                    },
                )
                .await?
                .map_err(ApiError::from)?
                .filter(|c| public_category(&st, &c.category).is_some())
                .ok_or_else(unknown)?;
        Ok::<_, Open311Error>(json!([{"service_request_id": case.number, "token": token}]))
    }
    .await;
    match r {
        Ok(v) => render(fmt, StatusCode::OK, "service_requests", &v),
        Err(e) => render_error(fmt, e),
    }
}

/// `POST /open311/v2/requests.{json|xml}` (form-encoded).
async fn post_top(State(st): State<AppState>, Path(file): Path<String>, req: Request) -> Response {
    let Some((name, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the resource with .json or .xml"),
        );
    };
    if name == "media" {
        let (parts, body) = req.into_parts();
        return match crate::cases::media::store_photo(&st, &parts.headers, body).await {
            Ok(v) => render(fmt, StatusCode::CREATED, "uploads", &v),
            Err(e) => render_error(fmt, e.into()),
        };
    }
    if name != "requests" {
        return render_error(
            fmt,
            Open311Error::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{name} cannot be POSTed to; create service requests at requests.{}",
                    if fmt == Format::Json { "json" } else { "xml" }
                ),
            ),
        );
    }
    match create_request(&st, req).await {
        Ok(v) => render(fmt, StatusCode::OK, "service_requests", &v),
        Err(e) => render_error(fmt, e),
    }
}

/// A form-encoded body as its (name, value) pairs, in order.
async fn read_form(req: Request) -> Result<Vec<(String, String)>, Open311Error> {
    let body = axum::body::to_bytes(req.into_body(), crate::BODY_LIMIT)
        .await
        .map_err(|_| {
            Open311Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} bytes",
                    crate::BODY_LIMIT
                ),
            )
        })?;
    serde_urlencoded::from_bytes(&body)
        .map_err(|e| Open311Error::bad(format!("the form is not valid: {e}")))
}

/// A form field's value (the last one given), trimmed; `None` when absent or blank.
fn form_value(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Collects `attribute[code]=v` and `attribute[code][]=v` pairs.
fn attributes(pairs: &[(String, String)]) -> Vec<(String, String, bool)> {
    pairs
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("attribute[")?;
            if let Some(code) = rest.strip_suffix("][]") {
                Some((code.to_string(), v.clone(), true))
            } else {
                rest.strip_suffix(']')
                    .map(|code| (code.to_string(), v.clone(), false))
            }
        })
        .collect()
}

/// The answers to a category's questions, checked; as text lines for the report.
fn answers(c: &Category, pairs: &[(String, String)]) -> Result<Vec<String>, Open311Error> {
    let given = attributes(pairs);
    for (code, _, _) in &given {
        if !c.questions.iter().any(|q| &q.code == code) {
            return Err(Open311Error::bad(format!(
                "service {} asks no question {code:?} (see services/{}.json)",
                c.code, c.code
            )));
        }
    }
    let mut lines = Vec::new();
    for q in &c.questions {
        let vals: Vec<&(String, String, bool)> =
            given.iter().filter(|(k, _, _)| k == &q.code).collect();
        let vals: Vec<&str> = vals
            .iter()
            .map(|(_, v, _)| v.trim())
            .filter(|v| !v.is_empty())
            .collect();
        if vals.is_empty() {
            if q.required {
                return Err(Open311Error::bad(format!(
                    "attribute[{}] is required: {}",
                    q.code, q.description
                )));
            }
            continue;
        }
        if q.datatype != Datatype::Multivaluelist && vals.len() > 1 {
            return Err(Open311Error::bad(format!(
                "attribute[{}] takes one value, got {}",
                q.code,
                vals.len()
            )));
        }
        let mut shown = Vec::new();
        for v in &vals {
            match q.datatype {
                Datatype::Singlevaluelist | Datatype::Multivaluelist => {
                    let Some((_, name)) = q.values.iter().find(|(k, _)| k == v) else {
                        return Err(Open311Error::bad(format!(
                            "attribute[{}] = {v:?} is not one of: {}",
                            q.code,
                            q.values
                                .iter()
                                .map(|(k, _)| k.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    };
                    shown.push(name.clone());
                }
                Datatype::Number => {
                    if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                        return Err(Open311Error::bad(format!(
                            "attribute[{}] = {v:?} is not a number",
                            q.code
                        )));
                    }
                    shown.push(v.to_string());
                }
                Datatype::Datetime => {
                    if parse_datetime(v).is_none() {
                        return Err(Open311Error::bad(format!(
                            "attribute[{}] = {v:?} is not a datetime such as 2026-11-26T09:30:00+08:00",
                            q.code
                        )));
                    }
                    shown.push(v.to_string());
                }
                Datatype::String | Datatype::Text => {
                    if v.chars().count() > 1000 {
                        return Err(Open311Error::bad(format!(
                            "attribute[{}] must be text of at most 1000 characters",
                            q.code
                        )));
                    }
                    shown.push(v.to_string());
                }
            }
        }
        lines.push(format!("{}: {}", q.code, shown.join("、")));
    }
    Ok(lines)
}

fn peer(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

async fn create_request(st: &AppState, req: Request) -> Result<Value, Open311Error> {
    let report = parse_request(st, req).await?;
    file_request(st, report).await
}

/// Reads a GeoReport v2 create request into a report: who asks (api_key or an anonymous
/// citizen, rate limited), the service, the position, the description, the photo, the
/// attributes, the address and the contact. Files nothing.
async fn parse_request(st: &AppState, req: Request) -> Result<NewReport, Open311Error> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !ct.starts_with("application/x-www-form-urlencoded") {
        return Err(Open311Error::bad(
            "send the request as application/x-www-form-urlencoded, as GeoReport v2 specifies",
        ));
    }
    let peer = peer(&req);
    let host = crate::cases::media::request_host(req.headers()).map(str::to_string);
    let pairs = read_form(req).await?;
    let one = |k: &str| form_value(&pairs, k);
    check_jurisdiction(st, &pairs.iter().cloned().collect())?;
    let now = st.now();
    // Who is asking: a registered app (api_key) or an anonymous citizen (rate limited).
    let channel = match one("api_key") {
        Some(k) => {
            let p: Principal = st.0.key.verify(&k, now).map_err(|_| {
                Open311Error::new(
                    StatusCode::FORBIDDEN,
                    "invalid api_key: it was not issued by this server or has expired",
                )
            })?;
            // Machine tokens report on their own channel, never as citizens.
            if p.role != cityos_core::Role::Citizen {
                let m = format!("api_key of role {} is not for citizen reports", p.role);
                return Err(Open311Error::new(StatusCode::FORBIDDEN, m));
            }
            Channel::Citizen
        }
        None => {
            if let Err(wait) = st.0.citizen.allow(&peer, now) {
                let mut e = Open311Error::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many anonymous requests from this address: at most {ANONYMOUS_LIMIT} per {} minutes; try again in {} s or register for an api_key",
                        ANONYMOUS_WINDOW / MINUTE,
                        wait
                    ),
                );
                e.retry_after = Some(wait);
                return Err(e);
            }
            Channel::Citizen
        }
    };
    let code = one("service_code").ok_or_else(|| Open311Error::bad("service_code is required"))?;
    let cat = public_category(st, &code).ok_or_else(|| {
        Open311Error::not_found(format!("unknown service_code {code:?} (see services.json)"))
    })?;
    let coord = |k: &str| -> Result<Option<f64>, Open311Error> {
        one(k)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| Open311Error::bad(format!("{k} {v:?} is not a number")))
            })
            .transpose()
    };
    let (lat, lon) = match (coord("lat")?, coord("long")?) {
        (Some(lat), Some(lon)) => (lat, lon),
        (None, None) => {
            return Err(Open311Error::bad(
                if one("address_string").is_some() || one("address_id").is_some() {
                    "this server needs coordinates: send lat and long (WGS84) with the address_string; it cannot locate an address_string or address_id alone"
                } else {
                    "a location is required: lat and long (WGS84)"
                },
            ))
        }
        _ => return Err(Open311Error::bad("send both lat and long")),
    };
    if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
        return Err(Open311Error::bad(format!(
            "lat {lat} / long {lon} is not a WGS84 position"
        )));
    }
    // A description of only invisible characters says nothing: the service's name is used.
    let description = one("description")
        .filter(|d| !cityos_core::workflow::is_blank(d))
        .unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(Open311Error::bad(format!(
            "description is longer than {MAX_DESCRIPTION} characters"
        )));
    }
    let media = match one("media_url") {
        Some(u) => vec![crate::cases::media::check_media_url(st, host.as_deref(), &u).await?],
        None => Vec::new(),
    };
    let lines = answers(cat, &pairs)?;
    let address = one("address_string");
    if address
        .as_ref()
        .is_some_and(|a| a.chars().count() > 200 || a.contains(['\n', '\r']))
    {
        return Err(Open311Error::bad(
            "address_string must be one line of at most 200 characters",
        ));
    }
    let contact: Vec<String> = ["first_name", "last_name", "phone", "email"]
        .into_iter()
        .filter_map(one)
        .collect();
    let contact = (!contact.is_empty()).then(|| contact.join(" "));
    if contact.as_ref().is_some_and(|c| c.chars().count() > 100) {
        return Err(Open311Error::bad(
            "first_name, last_name, phone and email together must be at most 100 characters",
        ));
    }
    let mut text = if description.is_empty() {
        cat.name_zh.clone()
    } else {
        description
    };
    for l in lines {
        text.push('\n');
        text.push_str(&l);
    }
    if let Some(a) = address {
        text.push('\n');
        text.push_str(ADDRESS_LINE);
        text.push_str(&a);
    }
    Ok(NewReport {
        channel,
        category: cat.code.clone(),
        lon,
        lat,
        text,
        contact,
        at: now,
        media,
    })
}

/// Files a parsed request; answers GeoReport v2's create answer (the case number, the
/// token that lets its holder rate it, a notice).
async fn file_request(st: &AppState, report: NewReport) -> Result<Value, Open311Error> {
    match crate::cases::engine_call(st, EngineRequest::Report(report)).await? {
        EngineResponse::Intake(o) => Ok(json!([{
            "service_request_id": o.case.number,
            "token": token_of_report(st, o.report_id),
            "service_notice": if o.merged {
                format!("已并入案件 {}：{}", o.case.number, o.reason)
            } else {
                format!("已受理，案件号 {}。{}", o.case.number, o.reason)
            },
            "account_id": Value::Null,
        }])),
        other => Err(Open311Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected engine answer {other:?}"),
        )),
    }
}

/// The citizen room's state: anonymous Open311 creates per peer address (window start,
/// count).
#[derive(Default)]
pub struct CitizenLimits {
    anonymous: std::sync::Mutex<HashMap<String, (Millis, u32)>>,
}

impl CitizenLimits {
    /// Counts an anonymous create from `peer`; when its window is full, the seconds until
    /// it opens again.
    fn allow(&self, peer: &str, now: Millis) -> Result<(), u32> {
        let mut g = self.anonymous.lock().expect("limiter lock");
        if g.len() > 100_000 {
            g.retain(|_, (start, _)| now - *start < ANONYMOUS_WINDOW);
        }
        let e = g.entry(peer.to_string()).or_insert((now, 0));
        if now - e.0 >= ANONYMOUS_WINDOW {
            *e = (now, 0);
        }
        if e.1 >= ANONYMOUS_LIMIT {
            let left = (e.0 + ANONYMOUS_WINDOW - now).max(1);
            return Err(((left + 999) / 1000).max(1) as u32);
        }
        e.1 += 1;
        Ok(())
    }
}

/// `POST /open311/v2/requests/{id}/rating.{json|xml}` (cityos extension, 回访): the
/// reporter rates the result of a closed request — form fields `token` (from the
/// create answer), `satisfaction` 1–5 and an optional `comment`.
async fn post_rating(
    State(st): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    req: Request,
) -> Response {
    let Some(("rating", fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found(format!("there is no resource {file:?} under a request")),
        );
    };
    match rate(&st, &id, req).await {
        Ok(v) => render(fmt, StatusCode::OK, "ratings", &v),
        Err(e) => render_error(fmt, e),
    }
}

async fn rate(st: &AppState, number: &str, req: Request) -> Result<Value, Open311Error> {
    let pairs = read_form(req).await?;
    let one = |k: &str| form_value(&pairs, k);
    let token = one("token")
        .ok_or_else(|| Open311Error::bad("token is required: the one the create answer gave"))?;
    let score: u8 = one("satisfaction")
        .and_then(|v| v.parse().ok())
        .filter(|v| (1..=5).contains(v))
        .ok_or_else(|| Open311Error::bad("satisfaction must be a whole number from 1 to 5"))?;
    let comment = one("comment").unwrap_or_default();
    if comment.chars().count() > 500 {
        return Err(Open311Error::bad("comment must be at most 500 characters"));
    }
    let forbidden = || {
        Open311Error::new(
            StatusCode::FORBIDDEN,
            "the token does not belong to this request",
        )
    };
    let report = report_of_token(st, &token).ok_or_else(forbidden)?;
    let n = number.to_string();
    let (case, report) =
        st.0.reads
            .run(move |s| -> Result<_, cityos_engine::StoreError> {
                Ok((s.load_case_by_number(&n)?, s.load_report(report)?))
            })
            .await?
            .map_err(ApiError::from)?;
    let case = case
        .filter(|c| public_category(st, &c.category).is_some())
        .ok_or_else(|| Open311Error::not_found(format!("there is no request {number:?}")))?;
    if report.is_none_or(|r| !case.reports.contains(&r.id)) {
        return Err(forbidden());
    }
    let command = cityos_core::workflow::Command::new(
        cityos_core::workflow::Action::Evaluate {
            score,
            comment: comment.clone(),
        },
        cityos_core::workflow::Actor {
            id: format!("open311:{token}"),
            role: cityos_core::Role::Citizen,
            department: None,
            scope: None,
        },
    );
    let now = st.now();
    match crate::cases::engine_call(
        st,
        EngineRequest::Transition {
            case: case.id,
            command,
            now,
        },
    )
    .await?
    {
        EngineResponse::Transition(o) => Ok(json!([{
            "service_request_id": o.case.number,
            "satisfaction": score,
            "comment": comment,
            "status": if o.case.state.is_open() { "open" } else { "closed" },
        }])),
        other => Err(Open311Error::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unexpected engine answer {other:?}"),
        )),
    }
}
