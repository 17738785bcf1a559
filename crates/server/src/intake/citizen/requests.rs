//! Creating requests: `POST requests` (form-encoded; and `POST media`) — read by
//! `parse_request` (service questions answered, address kept as the text's last line,
//! anonymous creates counted) and filed by `file_request` through the same engine call as
//! `POST /api/v1/reports`.

use super::discovery::public_category;
use super::reply::{check_jurisdiction, render, render_error, split_format, Format, Open311Error};
use super::{ADDRESS_LINE, ANONYMOUS_LIMIT, ANONYMOUS_WINDOW};
use crate::cases::{token_of_report, MAX_DESCRIPTION};
use crate::http::auth::Principal;
use crate::AppState;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use cityos_core::case::Channel;
use cityos_core::taxonomy::{Category, Datatype};
use cityos_core::time::{parse_datetime, MINUTE};
use cityos_core::workflow::NewReport;
use cityos_engine::engine::{Request as EngineRequest, Response as EngineResponse};
use serde_json::{json, Value};
use std::net::SocketAddr;

/// `POST /open311/v2/requests.{json|xml}` (form-encoded).
pub(super) async fn post_top(
    State(st): State<AppState>,
    Path(file): Path<String>,
    req: Request,
) -> Response {
    let Some((name, fmt)) = split_format(&file) else {
        return render_error(
            Format::Json,
            Open311Error::not_found("name the resource with .json or .xml"),
        );
    };
    if name == "media" {
        // Uploads need no sign-in: counted per address, so nobody fills the disk.
        if let Err(wait) = st.0.anonymous_media.admit(&peer(&req), st.now()) {
            let mut e = Open311Error::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "too many photos from this address: at most {} per {} minutes; try again in {wait} s",
                    crate::ANONYMOUS_MEDIA,
                    ANONYMOUS_WINDOW / MINUTE,
                ),
            );
            e.retry_after = Some(wait);
            return render_error(fmt, e);
        }
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
pub(super) async fn read_form(req: Request) -> Result<Vec<(String, String)>, Open311Error> {
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
pub(super) fn form_value(pairs: &[(String, String)], k: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(x, _)| x == k)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// Collects `attribute[code]=v` and `attribute[code][]=v` pairs.
pub(super) fn attributes(pairs: &[(String, String)]) -> Vec<(String, String, bool)> {
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
pub(super) fn answers(
    c: &Category,
    pairs: &[(String, String)],
) -> Result<Vec<String>, Open311Error> {
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

pub(super) fn peer(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string())
}

async fn create_request(st: &AppState, req: Request) -> Result<Value, Open311Error> {
    let (report, dispatch) = parse_request(st, req).await?;
    file_request(st, report, dispatch).await
}

/// Reads a GeoReport v2 create request into a report: who asks (api_key or an anonymous
/// citizen, rate limited), the service, the position, the description, the photo, the
/// attributes, the address and the contact. Files nothing.
async fn parse_request(
    st: &AppState,
    req: Request,
) -> Result<(NewReport, Option<&'static str>), Open311Error> {
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
            if let Err(wait) = st.0.anonymous_reports.admit(&peer, now) {
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
    // Without a service_code the description is read (智能分拨): it is required, and a
    // place it names may stand in for lat/long.
    let cat = match one("service_code") {
        Some(code) => Some(public_category(st, &code).ok_or_else(|| {
            Open311Error::not_found(format!("unknown service_code {code:?} (see services.json)"))
        })?),
        // A description too short to read is no request without a service_code.
        None if one("description").is_some_and(|d| crate::smart::long_enough(&d)) => None,
        None => return Err(Open311Error::bad(
            "service_code is required (or leave it out and say what and where in the description)",
        )),
    };
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
    let position = match (coord("lat")?, coord("long")?) {
        (Some(lat), Some(lon)) => Some((lat, lon)),
        (None, None) if cat.is_none() => None,
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
    if let Some((lat, lon)) = position {
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(Open311Error::bad(format!(
                "lat {lat} / long {lon} is not a WGS84 position"
            )));
        }
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
    let lines = match cat {
        Some(cat) => answers(cat, &pairs)?,
        None => Vec::new(),
    };
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
    let mut text = match cat {
        Some(cat) if description.is_empty() => cat.name_zh.clone(),
        _ => description,
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
    let (category, lat, lon, priority, suggestion, dispatch) = match (cat, position) {
        (Some(cat), Some((lat, lon))) => (cat.code.clone(), lat, lon, None, None, None),
        _ => {
            let r = crate::smart::read(st, &text, position.map(|(lat, lon)| (lon, lat)))?;
            let dispatch = r.public_outcome();
            (
                r.category,
                r.lat,
                r.lon,
                r.priority,
                Some(Box::new(r.suggestion)),
                Some(dispatch),
            )
        }
    };
    Ok((
        NewReport {
            channel,
            category,
            lon,
            lat,
            text,
            contact,
            at: now,
            media,
            priority,
            playbook: None,
            suggestion,
        },
        dispatch,
    ))
}

/// Files a parsed request; answers GeoReport v2's create answer (the case number, the
/// token that lets its holder rate it, a notice).
async fn file_request(
    st: &AppState,
    report: NewReport,
    dispatch: Option<&'static str>,
) -> Result<Value, Open311Error> {
    match crate::cases::engine_call(st, EngineRequest::Report(report)).await? {
        EngineResponse::Intake(o) => Ok(json!([{
            "service_request_id": o.case.number,
            "token": token_of_report(st, o.report_id),
            "service_notice": if let (Some(d), false) = (dispatch, o.merged) {
                // A request without a service_code: the number and where it went, no more.
                format!("已受理，案件号 {}，{d}。", o.case.number)
            } else if o.merged {
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
