//! How every Open311 answer is written: the format named by the file's extension, one
//! JSON value rendered as JSON or XML (arrays repeat their item element, null is an
//! empty element, text escaped), GeoReport v2 error lists (`Open311Error`), the query
//! string and the jurisdiction check.

use crate::http::error::ApiError;
use crate::AppState;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Format {
    Json,
    Xml,
}

/// `name.json` / `name.xml` → (name, format).
pub(super) fn split_format(file: &str) -> Option<(&str, Format)> {
    if let Some(n) = file.strip_suffix(".json") {
        Some((n, Format::Json))
    } else {
        file.strip_suffix(".xml").map(|n| (n, Format::Xml))
    }
}

/// An error the way GeoReport v2 gives it: an HTTP status and a list of `{code, description}`.
#[derive(Debug)]
pub(super) struct Open311Error {
    pub(super) status: StatusCode,
    pub(super) description: String,
    /// Seconds for a `Retry-After` header (429, 503).
    pub(super) retry_after: Option<u32>,
}

impl Open311Error {
    pub(super) fn new(status: StatusCode, description: impl Into<String>) -> Open311Error {
        Open311Error {
            status,
            description: description.into(),
            retry_after: None,
        }
    }
    pub(super) fn bad(description: impl Into<String>) -> Open311Error {
        Open311Error::new(StatusCode::BAD_REQUEST, description)
    }
    pub(super) fn not_found(description: impl Into<String>) -> Open311Error {
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

pub(super) fn render(fmt: Format, status: StatusCode, root: &str, v: &Value) -> Response {
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

pub(super) fn render_error(fmt: Format, e: Open311Error) -> Response {
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

pub(super) fn check_jurisdiction(
    st: &AppState,
    params: &HashMap<String, String>,
) -> Result<(), Open311Error> {
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

pub(super) fn query_params(uri: &axum::http::Uri) -> Result<HashMap<String, String>, Open311Error> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query().unwrap_or(""))
        .map_err(|e| Open311Error::bad(format!("the query string is not valid: {e}")))?;
    Ok(pairs.into_iter().collect())
}
