//! The endpoint table — the single source of both the router and the OpenAPI 3.1
//! document served at `/api/openapi.json`. A route exists iff it is described here, so the
//! document cannot drift from the API.

use crate::{api, AppState};
use axum::routing::{delete, get, post, MethodRouter};
use serde_json::{json, Value};

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Anonymous callers get a reduced answer or may do less.
    Optional,
    Bearer,
}

pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// (name, JSON-schema type, description)
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// Request body schema name in components.
    pub body: Option<&'static str>,
    /// (status, response schema name or media type note)
    pub ok: &'static [(u16, &'static str)],
}

const LIST_QUERY: &[(&str, &str, &str)] = &[
    (
        "state",
        "string",
        "comma-separated states, e.g. reported,filed",
    ),
    ("category", "string", "comma-separated category codes"),
    (
        "domain",
        "string",
        "comma-separated: safety, construction, market, livelihood",
    ),
    ("region", "string", "a region code at any level"),
    (
        "department",
        "string",
        "a department code (cases with a task of it)",
    ),
    (
        "priority",
        "string",
        "minimum priority: low, normal, high, urgent",
    ),
    (
        "overdue",
        "boolean",
        "past (true) or within (false) the current deadline",
    ),
    ("from", "string", "created at or after (RFC 3339)"),
    ("to", "string", "created before (RFC 3339)"),
    ("q", "string", "text in the title, or an exact case number"),
    ("sort", "string", "deadline (default), created or updated"),
    ("order", "string", "asc (default) or desc"),
    ("limit", "integer", "1–200, default 50"),
    ("cursor", "string", "next_cursor of the previous page"),
];

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "get", path: "/healthz", id: "healthz", summary: "Liveness", access: Access::Public, query: &[], body: None, ok: &[(200, "Health")] },
    Endpoint { method: "get", path: "/api/openapi.json", id: "openapi", summary: "This document", access: Access::Public, query: &[], body: None, ok: &[(200, "OpenApi")] },
    Endpoint { method: "post", path: "/api/v1/auth/login", id: "login", summary: "Sign in with a password; returns a bearer token (and sets it as an HttpOnly session cookie for the web pages). After 5 failures of an account (or 20 from an address) in 15 minutes: 429 too_many_attempts with Retry-After", access: Access::Public, query: &[], body: Some("LoginIn"), ok: &[(200, "LoginOut")] },
    Endpoint { method: "post", path: "/api/v1/auth/logout", id: "logout", summary: "Sign out: clears the session cookie", access: Access::Public, query: &[], body: None, ok: &[(204, "NoContent")] },
    Endpoint { method: "post", path: "/api/v1/readings", id: "postReadings", summary: "Sensor readings as newline-delimited JSON {device, metric, value, at?}; alarm rules turn them into cases; refused lines are counted and named", access: Access::Bearer, query: &[], body: None, ok: &[(200, "ReadingsOut")] },
    Endpoint { method: "get", path: "/api/v1/readings/stats", id: "readingsStats", summary: "Readings taken and refused (by reason), devices, rules, alarms firing", access: Access::Bearer, query: &[], body: None, ok: &[(200, "ReadingsStats")] },
    Endpoint { method: "post", path: "/api/v1/datasets/{name}", id: "importDataset", summary: "Import (replace) a dataset from text/csv or a JSON array; bad rows are named, good ones kept; the data rules run at once", access: Access::Bearer, query: &[("owner", "string", "owner department code"), ("sensitivity", "string", "public, internal (default), sensitive or secret")], body: None, ok: &[(200, "DatasetImported")] },
    Endpoint { method: "get", path: "/api/v1/datasets", id: "listDatasets", summary: "The dataset registry: name, owner, columns, sensitivity, row count (never the rows)", access: Access::Bearer, query: &[], body: None, ok: &[(200, "Datasets")] },
    Endpoint { method: "get", path: "/api/v1/indicators", id: "listIndicators", summary: "The vital signs: each indicator's latest value and warning level (blue IV … red I) for the district or a sub-district", access: Access::Bearer, query: &[("domain", "string", "safety, construction, market or livelihood"), ("region", "string", "the district or a sub-district code")], body: None, ok: &[(200, "Indicators")] },
    Endpoint { method: "get", path: "/api/v1/indicators/{code}/history", id: "indicatorHistory", summary: "An indicator's values over time from its 1-minute and 1-hour rollups: count, avg, min, max, last per step", access: Access::Bearer, query: &[("region", "string", "the district (default) or a sub-district code"), ("from", "string", "RFC 3339; default 24 h before to"), ("to", "string", "RFC 3339; default now"), ("step", "string", "a whole number of minutes, e.g. 1m, 5m, 1h, 1d")], body: None, ok: &[(200, "IndicatorHistory")] },
    Endpoint { method: "get", path: "/api/v1/map", id: "map", summary: "Open cases in the caller's scope counted per sub-district, community or grid (aggregated in the store), the most urgent as markers, and today's closures and escalations", access: Access::Bearer, query: &[("level", "string", "subdistrict (default), community or grid"), ("region", "string", "a region code"), ("markers", "integer", "how many markers, at most 1000 (default 300)")], body: None, ok: &[(200, "Map")] },
    Endpoint { method: "get", path: "/api/v1/alerts", id: "listAlerts", summary: "Alerts pending and firing, with silences, inhibition, their cases, and groups", access: Access::Bearer, query: &[("state", "string", "pending or firing"), ("region", "string", "the district or a sub-district code")], body: None, ok: &[(200, "Alerts")] },
    Endpoint { method: "get", path: "/api/v1/alert-rules", id: "listAlertRules", summary: "The alert rules over the vital signs", access: Access::Bearer, query: &[], body: None, ok: &[(200, "AlertRules")] },
    Endpoint { method: "get", path: "/api/v1/silences", id: "listSilences", summary: "Silences in force", access: Access::Bearer, query: &[], body: None, ok: &[(200, "Silences")] },
    Endpoint { method: "post", path: "/api/v1/silences", id: "createSilence", summary: "Mute a rule's notices in a region until a time (owner and reason recorded)", access: Access::Bearer, query: &[], body: Some("SilenceIn"), ok: &[(201, "Silence")] },
    Endpoint { method: "delete", path: "/api/v1/silences/{id}", id: "expireSilence", summary: "End a silence now", access: Access::Bearer, query: &[], body: None, ok: &[(204, "NoContent")] },
    Endpoint { method: "get", path: "/cap/feed.atom", id: "capFeed", summary: "Public warnings: an Atom feed of CAP 1.2 messages", access: Access::Public, query: &[], body: None, ok: &[(200, "AtomFeed")] },
    Endpoint { method: "get", path: "/cap/alerts/{file}", id: "capAlert", summary: "One CAP 1.2 message ({identifier}.xml)", access: Access::Public, query: &[], body: None, ok: &[(200, "CapXml")] },
    Endpoint { method: "post", path: "/api/v1/indicators/{code}/values", id: "pushIndicator", summary: "Push a value of an external indicator (a feed's machine token or a district officer)", access: Access::Bearer, query: &[], body: Some("IndicatorValue"), ok: &[(200, "Indicator")] },
    Endpoint { method: "post", path: "/api/v1/media", id: "uploadMedia", summary: "Upload a photo (image/jpeg, image/png or image/webp as the body, at most 2 MiB); answers its media_url for a report's media or a transition's attachments", access: Access::Bearer, query: &[], body: None, ok: &[(201, "MediaOut")] },
    Endpoint { method: "post", path: "/api/v1/reports", id: "postReport", summary: "File a report; answers with the case it became or joined, and why", access: Access::Optional, query: &[], body: Some("ReportIn"), ok: &[(201, "ReportOut"), (200, "ReportOut")] },
    Endpoint { method: "get", path: "/api/v1/cases", id: "listCases", summary: "Cases in the caller's scope: filters, sort, keyset pagination", access: Access::Bearer, query: LIST_QUERY, body: None, ok: &[(200, "CasePage")] },
    Endpoint { method: "get", path: "/api/v1/cases/{id}", id: "getCase", summary: "A case (by id or number) with its log and reports; anonymous callers follow by number", access: Access::Optional, query: &[], body: None, ok: &[(200, "CaseDetail")] },
    Endpoint { method: "post", path: "/api/v1/cases/{id}/transitions", id: "postTransition", summary: "Act on a case: file, dispatch, acknowledge, start, handle, verify, reject_verification, close, evaluate, return, request/grant/refuse_postponement, suspend, resume, reopen, merge, split", access: Access::Optional, query: &[], body: Some("TransitionIn"), ok: &[(200, "TransitionOut")] },
    Endpoint { method: "get", path: "/api/v1/regions", id: "regions", summary: "Regions of one level as GeoJSON", access: Access::Public, query: &[("level", "string", "district, subdistrict (default), community or grid")], body: None, ok: &[(200, "FeatureCollection")] },
    Endpoint { method: "get", path: "/api/v1/locate", id: "locate", summary: "The region chain of a point", access: Access::Public, query: &[("lon", "number", "WGS-84 longitude"), ("lat", "number", "WGS-84 latitude")], body: None, ok: &[(200, "Chain")] },
    Endpoint { method: "get", path: "/api/v1/categories", id: "categories", summary: "Reportable categories with their time limits", access: Access::Public, query: &[], body: None, ok: &[(200, "Categories")] },
    Endpoint { method: "get", path: "/api/v1/departments", id: "departments", summary: "Departments (line, level, region)", access: Access::Public, query: &[], body: None, ok: &[(200, "Departments")] },
    Endpoint { method: "get", path: "/api/v1/stats", id: "stats", summary: "Counts by state, domain, sub-district and department; on-time rate; overdue; today's intake", access: Access::Bearer, query: LIST_QUERY, body: None, ok: &[(200, "Stats")] },
    Endpoint { method: "get", path: "/api/v1/inbox", id: "inbox", summary: "What awaits the caller's action, most urgent first", access: Access::Bearer, query: &[], body: None, ok: &[(200, "CaseList")] },
    Endpoint { method: "get", path: "/api/v1/events/stream", id: "events", summary: "Server-Sent Events of committed case changes in the caller's scope, resumable with Last-Event-ID; and, live only, vital-sign level changes and alerts (level_changed, alert_fired, alert_level_changed, alert_resolved)", access: Access::Bearer, query: &[("access_token", "string", "the bearer token, for EventSource"), ("last_event_id", "integer", "resume after this event")], body: None, ok: &[(200, "EventStream")] },
];

/// The handler of an endpoint.
pub fn handler(id: &str) -> MethodRouter<AppState> {
    match id {
        "healthz" => get(api::healthz),
        "openapi" => get(openapi_handler),
        "login" => post(api::login),
        "logout" => post(api::logout),
        "postReport" => post(api::post_report),
        "listCases" => get(api::list_cases),
        "getCase" => get(api::get_case),
        "postTransition" => post(api::post_transition),
        "regions" => get(api::regions),
        "locate" => get(api::locate),
        "categories" => get(api::categories),
        "departments" => get(api::departments),
        "stats" => get(api::stats),
        "inbox" => get(api::inbox),
        "events" => get(api::events_stream),
        "uploadMedia" => post(crate::media::upload),
        "listIndicators" => get(crate::vitals::list),
        "pushIndicator" => post(crate::vitals::push),
        "indicatorHistory" => get(crate::alerts::history),
        "map" => get(crate::ui::map),
        "listAlerts" => get(crate::alerts::list),
        "listAlertRules" => get(crate::alerts::rules),
        "listSilences" => get(crate::alerts::list_silences),
        "createSilence" => post(crate::alerts::create_silence),
        "expireSilence" => delete(crate::alerts::expire_silence),
        "capFeed" => get(crate::alerts::feed),
        "capAlert" => get(crate::alerts::cap_alert),
        "importDataset" => post(crate::data::import),
        "listDatasets" => get(crate::data::list),
        "postReadings" => post(crate::sensing::post_readings),
        "readingsStats" => get(crate::sensing::readings_stats),
        other => panic!("endpoint {other} has no handler"),
    }
}

async fn openapi_handler() -> axum::Json<Value> {
    axum::Json(document())
}

fn s(t: &str) -> Value {
    json!({"type": t})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn schemas() -> Value {
    let region_ref = json!({"type": ["object", "null"], "properties": {"code": s("string"), "name_zh": s("string")}});
    json!({
        "Problem": {"type": "object", "description": "RFC 9457 problem details", "required": ["type", "title", "status", "code", "detail"],
            "properties": {"type": s("string"), "title": s("string"), "status": s("integer"), "code": {"type": "string", "description": "stable machine code, e.g. transition_not_allowed"}, "detail": s("string")}},
        "Health": {"type": "object", "properties": {"status": s("string")}},
        "OpenApi": {"type": "object"},
        "LoginIn": {"type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {"username": s("string"), "password": s("string")}},
        "LoginOut": {"type": "object", "properties": {"token": s("string"), "expires_at": s("string"), "user": {"type": "object"}}},
        "ReportIn": {"type": "object", "required": ["category", "lon", "lat", "text"], "additionalProperties": false, "properties": {
            "category": {"type": "string", "description": "a category code from /api/v1/categories"},
            "lon": s("number"), "lat": s("number"), "text": {"type": "string", "maxLength": 4000},
            "contact": {"type": ["string", "null"], "maxLength": 100},
            "media": {"type": "array", "maxItems": 9, "items": s("string"), "description": "photo addresses from POST /api/v1/media"},
            "channel": {"type": ["string", "null"], "enum": ["citizen", "inspector", "sensor", "data", "staff", null], "description": "defaults to the caller's own channel"}}},
        "ReadingsOut": {"type": "object", "properties": {"accepted": s("integer"), "refused": {"type": "object", "properties": {"malformed": s("integer"), "unknown_device": s("integer"), "out_of_range": s("integer"), "future": s("integer")}}, "errors": {"type": "array", "items": {"type": "object", "properties": {"line": s("integer"), "problem": s("string")}}}, "alarms": {"type": "array", "items": {"type": "object", "properties": {"device": s("string"), "rule": s("string"), "change": {"type": "string", "enum": ["fired", "cleared"]}, "case": {"type": ["string", "null"]}}}}}},
        "ReadingsStats": {"type": "object", "properties": {"devices": s("integer"), "rules": s("integer"), "accepted": s("integer"), "refused": s("object"), "alarms_firing": s("integer")}},
        "DatasetImported": {"type": "object", "properties": {"name": s("string"), "columns": {"type": "array", "items": s("string")}, "rows": s("integer"), "refused": s("array"), "rules": s("array")}},
        "Datasets": {"type": "object", "properties": {"datasets": {"type": "array", "items": {"type": "object", "properties": {"name": s("string"), "owner": s("string"), "sensitivity": s("string"), "columns": s("array"), "rows": s("integer"), "imported_at": s("string")}}}}},
        "Indicator": {"type": "object", "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "domain": s("string"), "unit": s("string"), "source": s("string"), "region": s("string"), "value": {"type": ["number", "null"]}, "level": {"type": "string", "enum": ["normal", "blue", "yellow", "orange", "red"]}, "level_zh": s("string"), "at": {"type": ["string", "null"]}, "thresholds": {"type": ["object", "null"]}}},
        "Indicators": {"type": "object", "properties": {"region": s("string"), "indicators": {"type": "array", "items": r("Indicator")}}},
        "IndicatorHistory": {"type": "object", "properties": {"code": s("string"), "region": s("string"), "from": s("string"), "to": s("string"), "step_seconds": s("integer"),
            "points": {"type": "array", "items": {"type": "object", "properties": {"t": s("string"), "n": s("integer"), "avg": s("number"), "min": s("number"), "max": s("number"), "last": s("number")}}}}},
        "Alerts": {"type": "object", "properties": {"alerts": {"type": "array", "items": {"type": "object", "properties": {"fingerprint": s("string"), "rule": s("string"), "region": s("string"), "state": {"type": "string", "enum": ["pending", "firing"]}, "level": s("string"), "value": s("number"), "silenced": s("boolean"), "inhibited": s("boolean"), "case": {"type": ["object", "null"]}}}}, "groups": {"type": "array", "items": {"type": "object"}}}},
        "Map": {"type": "object", "properties": {"level": s("string"), "open": s("integer"), "counts": {"type": "object", "additionalProperties": s("integer")}, "markers": {"type": "array", "items": {"type": "object"}}, "today": {"type": ["object", "null"]}}},
        "AlertRules": {"type": "object", "properties": {"rules": {"type": "array", "items": {"type": "object"}}}},
        "SilenceIn": {"type": "object", "required": ["rule", "reason"], "additionalProperties": false, "properties": {"rule": s("string"), "region": {"type": ["string", "null"]}, "reason": s("string"), "ends_at": {"type": ["string", "null"]}, "duration": {"type": ["string", "null"], "description": "e.g. 2h; give this or ends_at"}}},
        "Silence": {"type": "object", "properties": {"id": s("integer"), "rule": s("string"), "region": s("string"), "owner": s("string"), "reason": s("string"), "ends_at": s("string")}},
        "Silences": {"type": "object", "properties": {"silences": {"type": "array", "items": r("Silence")}}},
        "NoContent": {"type": "null"},
        "AtomFeed": {"type": "string", "description": "application/atom+xml"},
        "CapXml": {"type": "string", "description": "application/cap+xml (OASIS CAP 1.2)"},
        "IndicatorValue": {"type": "object", "required": ["value"], "additionalProperties": false, "properties": {"value": s("number"), "region": {"type": ["string", "null"]}, "at": {"type": ["string", "null"]}}},
        "MediaOut": {"type": "object", "properties": {"media_id": s("string"), "media_url": s("string"), "content_type": s("string"), "size": s("integer")}},
        "ReportOut": {"type": "object", "properties": {"report_id": s("integer"), "report_token": {"type": ["string", "null"], "description": "citizens: the key to rate the case later (keep it)"}, "merged": s("boolean"), "reason": s("string"), "case": r("Case")}},
        "Task": {"type": "object", "properties": {"department": s("string"), "department_name": s("string"), "lead": s("boolean"), "state": s("string"), "since": s("string")}},
        "Deadline": {"type": "object", "properties": {"step": s("string"), "step_zh": s("string"), "due": s("string"), "met": {"type": ["string", "null"]}, "on_time": {"type": ["boolean", "null"]}}},
        "Case": {"type": "object", "properties": {
            "id": s("integer"), "number": s("string"), "category": s("string"), "category_name": s("string"),
            "domain": {"type": "string", "enum": ["safety", "construction", "market", "livelihood"]},
            "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]},
            "state": {"type": "string", "enum": cityos_core::State::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>()},
            "state_name": s("string"), "lon": s("number"), "lat": s("number"),
            "subdistrict": region_ref, "community": region_ref, "grid": region_ref,
            "title": s("string"), "channel": s("string"), "created_at": s("string"), "updated_at": s("string"),
            "reporters": s("integer"), "tasks": {"type": "array", "items": r("Task")}, "deadlines": {"type": "array", "items": r("Deadline")},
            "due": {"type": ["string", "null"]}, "time_left_ms": {"type": ["integer", "null"]}, "overdue": s("boolean"),
            "returns": s("integer"), "reworks": s("integer"), "escalations": s("integer"), "escalated_to": {"type": ["string", "null"]},
            "postponement_pending": s("boolean"), "suspended": s("boolean"), "merged_into": {"type": ["integer", "null"]},
            "evaluation": {"type": ["integer", "null"]}, "version": s("integer")}},
        "CasePage": {"type": "object", "properties": {"cases": {"type": "array", "items": r("Case")}, "next_cursor": {"type": ["string", "null"]}}},
        "CaseList": {"type": "object", "properties": {"cases": {"type": "array", "items": r("Case")}}},
        "LogEntry": {"type": "object", "properties": {"seq": s("integer"), "at": s("string"), "actor": s("string"), "role": s("string"), "action": s("string"), "from": {"type": ["string", "null"]}, "to": s("string"), "note": s("string"), "attachments": {"type": "array", "items": s("string")}, "changes": s("array")}},
        "Report": {"type": "object", "properties": {"id": s("integer"), "channel": s("string"), "text": s("string"), "contact": {"type": ["string", "null"]}, "at": s("string")}},
        "CaseDetail": {"type": "object", "properties": {"case": r("Case"), "log": {"type": "array", "items": r("LogEntry")}, "reports": {"type": "array", "items": r("Report")}}},
        "TransitionIn": {"type": "object", "required": ["action"], "properties": {
            "action": {"type": "string", "enum": cityos_core::workflow::RULES.iter().map(|r| r.action).collect::<Vec<_>>()},
            "note": s("string"), "attachments": {"type": "array", "items": s("string")},
            "version": {"type": "integer", "description": "refuse if the case moved on since this version"},
            "departments": {"type": "array", "description": "dispatch: departments to send to (default: routing)", "items": {"type": "object", "properties": {"department": s("string"), "lead": s("boolean")}}},
            "reason": {"type": "string", "description": "reject, return, suspend, reopen, request_postponement"},
            "extra": {"type": "string", "description": "request_postponement: extra time, e.g. 2wd"},
            "score": {"type": "integer", "minimum": 1, "maximum": 5, "description": "evaluate"}, "comment": s("string"),
            "report_token": {"type": "string", "description": "evaluate without an account: the report_token the filing answer gave (only the reporter may rate)"},
            "into": {"type": "integer", "description": "merge: the case that takes over"}, "report": {"type": "integer", "description": "split: the report to split out"}}},
        "TransitionOut": {"type": "object", "properties": {"case": r("Case"), "opened": {"oneOf": [r("Case"), {"type": "null"}]}}},
        "FeatureCollection": {"type": "object", "description": "GeoJSON (application/geo+json)"},
        "Chain": {"type": "object", "description": "district, subdistrict, community, grid: {code, name_zh, name_en}"},
        "Categories": {"type": "object", "properties": {"categories": s("array")}},
        "Departments": {"type": "object", "properties": {"departments": s("array")}},
        "Stats": {"type": "object", "properties": {"total": s("integer"), "by_state": s("object"), "by_domain": s("object"), "by_subdistrict": s("object"), "by_department": s("array"), "overdue": s("integer"), "today_intake": s("integer"), "on_time_rate": {"type": ["number", "null"]}}},
        "EventStream": {"type": "string", "description": "text/event-stream; each event has id (global number), event (created, merged, transitioned, escalated) and JSON data"},
    })
}

/// The OpenAPI 3.1 document of every endpoint in [`ENDPOINTS`].
pub fn document() -> Value {
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let mut params: Vec<Value> = e
            .query
            .iter()
            .map(|(n, t, d)| json!({"name": n, "in": "query", "required": false, "description": d, "schema": {"type": t}}))
            .collect();
        if e.path.contains("{id}") {
            params.push(json!({"name": "id", "in": "path", "required": true, "description": "case id or case number", "schema": {"type": "string"}}));
        }
        if e.id == "postReport" || e.id == "postTransition" {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "a retried request with the same key returns the first answer", "schema": {"type": "string", "maxLength": 200}}));
        }
        let mut responses = serde_json::Map::new();
        for (status, schema) in e.ok {
            let media = match *schema {
                "FeatureCollection" => "application/geo+json",
                "EventStream" => "text/event-stream",
                _ => "application/json",
            };
            responses.insert(
                status.to_string(),
                json!({"description": "success", "content": {media: {"schema": r(schema)}}}),
            );
        }
        responses.insert("default".into(), json!({"description": "a problem", "content": {"application/problem+json": {"schema": r("Problem")}}}));
        let mut op = json!({"operationId": e.id, "summary": e.summary, "parameters": params, "responses": responses});
        match e.access {
            Access::Public => {}
            Access::Bearer => op["security"] = json!([{"bearer": []}]),
            Access::Optional => op["security"] = json!([{}, {"bearer": []}]),
        }
        if let Some(b) = e.body {
            op["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": r(b)}}});
        }
        paths.entry(e.path.to_string()).or_insert_with(|| json!({}))[e.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "cityos API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The API of a City Operations Centre (城运中心): reports, cases and their closed loop, reference data, statistics, live events."},
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    })
}
