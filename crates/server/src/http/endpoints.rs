//! The endpoint table: every operation's method, path, access, parameters, bodies and
//! answers. The router (`runtime::router`) routes exactly these, the OpenAPI document
//! (`runtime::openapi`) describes exactly these, and the machine guard reads their access.

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// Anonymous callers get a reduced answer or may do less.
    Optional,
    Bearer,
}

/// A path parameter: (name, JSON schema, description).
pub type PathParam = (&'static str, &'static str, &'static str);
/// A query parameter: (name, required, JSON schema, description).
pub type QueryParam = (&'static str, bool, &'static str, &'static str);

pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub id: &'static str,
    pub summary: &'static str,
    pub access: Access,
    /// Every `{name}` of the path, in order.
    pub path_params: &'static [PathParam],
    pub query: &'static [QueryParam],
    /// The request body: each media type taken, with its schema (a component name, or a
    /// JSON schema text starting with `{`). Empty: no body.
    pub body: &'static [(&'static str, &'static str)],
    /// Successful answers: (status, media type, schema as in `body`); an empty media type
    /// means no content.
    pub ok: &'static [(u16, &'static str, &'static str)],
    /// Problem statuses particular to this endpoint, beyond those its shape implies
    /// (see [`problem_statuses`]).
    pub errors: &'static [u16],
}

/// Problem statuses every operation may answer: 413 when a declared `Content-Length`
/// exceeds the route's limit (before routing), 503 when the store cannot be reached or a
/// statement ran out of time (`store_unavailable`, `store_timeout`, with `Retry-After`).
/// Writes (`post`, `put`, `delete`) may also answer 507 (`insufficient_storage`) and, with
/// several nodes, 502 (`outcome_unknown`).
pub const EVERY_OPERATION: &[u16] = &[413, 503];

/// What each problem status means, for the document, with the codes it is answered with
/// (from [`crate::http::problems`]).
pub fn problem_description(status: u16) -> String {
    let meaning = match status {
        400 => "a parameter or the body's syntax is wrong",
        401 => "no valid token",
        403 => "the caller's role or scope does not allow this",
        404 => "nothing by that name, or outside the caller's scope",
        409 => "the current state does not allow it",
        413 => "the body is larger than this endpoint takes",
        415 => "the body's media type is not one this endpoint takes",
        422 => "the body is well-formed but its content is refused",
        429 => "too many requests; see Retry-After",
        500 => "an unexpected problem (logged)",
        502 => "several nodes: passed on to the node in charge, whose answer was lost — it may have been applied",
        503 => "busy or unavailable; see Retry-After",
        507 => "no room left to store it",
        _ => "a problem",
    };
    let codes: Vec<String> = crate::http::problems::codes_of(status)
        .iter()
        .map(|c| format!("`{c}`"))
        .collect();
    format!("{meaning} ({})", codes.join(", "))
}

/// Every problem status an endpoint answers: [`EVERY_OPERATION`], those its shape implies
/// (query parameters → 400, path parameters → 404, a token → 401, a JSON body → 400, 415,
/// 422) and its own `errors`.
pub fn problem_statuses(e: &Endpoint) -> Vec<u16> {
    let mut v = EVERY_OPERATION.to_vec();
    if !e.query.is_empty() {
        v.push(400);
    }
    if e.method != "get" {
        // Several nodes: a write passed on to the node in charge whose answer was lost.
        v.extend([502, 507]);
    }
    if !e.path_params.is_empty() {
        v.push(404);
    }
    if e.access != Access::Public {
        v.push(401);
    }
    if e.body.iter().any(|(m, _)| *m == "application/json") {
        v.extend([400, 415, 422]);
    }
    v.extend_from_slice(e.errors);
    v.sort_unstable();
    v.dedup();
    v
}

const LIST_QUERY: &[QueryParam] = &[
    (
        "state",
        false,
        r#"{"type": "string", "pattern": "^ *((reported|filed|rejected|merged|dispatched|acknowledged|in_progress|handled|rework|verified|closed|evaluated|returned|suspended) *)?(, *((reported|filed|rejected|merged|dispatched|acknowledged|in_progress|handled|rework|verified|closed|evaluated|returned|suspended) *)?)*$"}"#,
        "comma-separated states, e.g. reported,filed",
    ),
    (
        "category",
        false,
        r#"{"type": "string"}"#,
        "comma-separated category codes from /api/v1/categories (an unknown one is answered 400)",
    ),
    (
        "domain",
        false,
        r#"{"type": "string", "pattern": "^ *((safety|construction|market|livelihood) *)?(, *((safety|construction|market|livelihood) *)?)*$"}"#,
        "comma-separated: safety, construction, market, livelihood",
    ),
    (
        "region",
        false,
        r#"{"type": "string", "minLength": 1}"#,
        "a region code at any level",
    ),
    (
        "department",
        false,
        r#"{"type": "string", "minLength": 1}"#,
        "a department code (cases with a task of it)",
    ),
    (
        "priority",
        false,
        r#"{"type": "string", "enum": ["low", "normal", "high", "urgent"]}"#,
        "minimum priority",
    ),
    (
        "overdue",
        false,
        r#"{"type": "boolean"}"#,
        "past (true) or within (false) the current deadline",
    ),
    (
        "from",
        false,
        r#"{"type": "string", "format": "date-time"}"#,
        "created at or after (RFC 3339)",
    ),
    (
        "to",
        false,
        r#"{"type": "string", "format": "date-time"}"#,
        "created before (RFC 3339)",
    ),
    (
        "q",
        false,
        r#"{"type": "string"}"#,
        "text in the title, or an exact case number; for all but the command-centre officers (who see titles unmasked) digits and @ are accepted only as a whole case number (else 400 invalid_parameter)",
    ),
    (
        "sort",
        false,
        r#"{"type": "string", "enum": ["deadline", "created", "updated"]}"#,
        "deadline (default), created or updated",
    ),
    (
        "order",
        false,
        r#"{"type": "string", "enum": ["asc", "desc"]}"#,
        "asc (default) or desc",
    ),
    (
        "limit",
        false,
        r#"{"type": "integer", "minimum": 1, "maximum": 200}"#,
        "default 50",
    ),
    (
        "cursor",
        false,
        r#"{"type": "string", "minLength": 1}"#,
        "next_cursor of the previous page",
    ),
];

const REGION_VITAL: &str = r#"{"type": "string", "minLength": 1}"#;
const INDICATOR_CODE: PathParam = (
    "code",
    r#"{"type": "string", "minLength": 1}"#,
    "an indicator code from /api/v1/indicators",
);
const CASE_ID: PathParam = (
    "id",
    r#"{"type": "string", "minLength": 1}"#,
    "case id or case number",
);

const SCENARIO_NAME: PathParam = (
    "name",
    r#"{"type": "string", "minLength": 1}"#,
    "a scenario pack's name (its code) from /api/v1/scenarios",
);

const MEAL_CANTEEN: PathParam = (
    "id",
    r#"{"type": "string", "minLength": 1}"#,
    "a canteen or meal point id from /api/v1/meals/canteens",
);
const MEAL_ELDER: PathParam = (
    "id",
    r#"{"type": "string", "minLength": 1}"#,
    "an elder's number (E000123)",
);
const MEAL_ORDER: PathParam = ("id", r#"{"type": "string", "minLength": 1}"#, "an order id");
const MEAL_DATE: &str = r#"{"type": "string", "format": "date"}"#;
const EVAL_PERIOD: QueryParam = (
    "period",
    true,
    r#"{"type": "string", "minLength": 1}"#,
    "a day (2026-11-05), ISO week (2026-W45), month (2026-11), quarter (2026-Q4) or range (2026-11-01..2026-11-15); reversed (period_reversed) or starting after today (period_in_future) is 400",
);
const EVAL_UNIT_SCHEMA: &str = r#"{"type": "string", "pattern": "^[a-z]+:.+$"}"#;
const EVAL_DIMENSION: QueryParam = (
    "dimension",
    false,
    r#"{"type": "string", "enum": ["district", "department", "subdistrict", "community", "category", "domain"]}"#,
    "the units ranked (department by default)",
);
const EVAL_QUERY: &[QueryParam] = &[
    EVAL_PERIOD,
    EVAL_DIMENSION,
    (
        "unit",
        false,
        EVAL_UNIT_SCHEMA,
        "one unit as dimension:code, e.g. department:dist-roads, subdistrict:310104003",
    ),
];
const EVAL_EXPORT_QUERY: &[QueryParam] = &[
    EVAL_PERIOD,
    EVAL_DIMENSION,
    (
        "unit",
        false,
        EVAL_UNIT_SCHEMA,
        "one unit's report instead of a ranking",
    ),
    (
        "format",
        true,
        r#"{"type": "string", "enum": ["xlsx", "csv", "html"]}"#,
        "the file format",
    ),
];

pub const ENDPOINTS: &[Endpoint] = &[
    Endpoint { method: "get", path: "/healthz", id: "healthz", summary: "Liveness: 503 while the store's connections are known to be lost (no round trip)", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Health")], errors: &[503] },
    Endpoint { method: "get", path: "/readyz", id: "readyz", summary: "Readiness: a round trip to the store (503 store_unavailable when it fails)", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Health")], errors: &[503] },
    Endpoint { method: "get", path: "/api/openapi.json", id: "openapi", summary: "This document", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "OpenApi")], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/auth/login", id: "login", summary: "Sign in with a password; returns a bearer token (and sets it as an HttpOnly session cookie for the web pages). After 5 failures of an account (or 20 from an address) in 15 minutes: 429 too_many_attempts with Retry-After (attempts are counted before the password is checked); a username over 64 characters: 400", access: Access::Public, path_params: &[], query: &[], body: &[("application/json", "LoginIn")], ok: &[(200, "application/json", "LoginOut")], errors: &[401, 429] },
    Endpoint { method: "post", path: "/api/v1/auth/logout", id: "logout", summary: "Sign out: clears the session cookie", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(204, "", "")], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/readings", id: "postReadings", summary: "Sensor readings as newline-delimited JSON {device, metric, value, at?}; or one payload in another shape: SenML JSON (RFC 8428; payload=senml or Content-Type application/senml+json), telemetry {ts, values} (payload=telemetry&device=), a device kind's declared mapping (payload=mapped&kind=), or device= alone for that device kind's declared shape; alarm rules turn them into cases; refused readings are counted by reason and named", access: Access::Bearer, path_params: &[], query: &[("payload", false, r#"{"type": "string", "enum": ["native", "senml", "telemetry", "mapped"]}"#, "the payload's shape (native NDJSON by default)"), ("device", false, r#"{"type": "string", "minLength": 1}"#, "the device the payload is from"), ("kind", false, r#"{"type": "string", "minLength": 1}"#, "the device kind whose mapping reads it")], body: &[("application/x-ndjson", "ReadingsIn")], ok: &[(200, "application/json", "ReadingsOut")], errors: &[400, 403, 503] },
    Endpoint { method: "get", path: "/api/v1/devices", id: "listDevices", summary: "The device registry in service (the configuration's seed plus what the API registered): administrators every device, a department's staff their department's devices; others 403", access: Access::Bearer, path_params: &[], query: &[("kind", false, r#"{"type": "string", "minLength": 1}"#, "only devices of this kind"), ("status", false, r#"{"type": "string", "enum": ["active", "retired"]}"#, "only active or decommissioned devices")], body: &[], ok: &[(200, "application/json", "DeviceList")], errors: &[400, 403] },
    Endpoint { method: "post", path: "/api/v1/devices", id: "postDevices", summary: "Register devices while the service runs (administrators; a department's staff for their own department): one as JSON (201; an id in use is 409 device_exists), or many as text/csv (id,kind,lon,lat[,owner[,tags]]) or application/geo+json Point features — every good one registered, every bad one named by line or feature; kept in the store and audited", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", "NewDevice"), ("text/csv", r#"{"type": "string"}"#), ("application/geo+json", "FeatureCollection")], ok: &[(201, "application/json", "Device"), (200, "application/json", "DevicesImported")], errors: &[400, 403, 409, 415, 422] },
    Endpoint { method: "get", path: "/api/v1/devices/{id}", id: "getDevice", summary: "One device of the registry (administrators; the owning department)", access: Access::Bearer, path_params: &[("id", r#"{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}"#, "the device id")], query: &[], body: &[], ok: &[(200, "application/json", "Device")], errors: &[403] },
    Endpoint { method: "patch", path: "/api/v1/devices/{id}", id: "patchDevice", summary: "Move a device (lon, lat) or give it to another department (owner; administrators only); kind and tags are not changed (decommission and register a new id); audited", access: Access::Bearer, path_params: &[("id", r#"{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}"#, "the device id")], query: &[], body: &[("application/json", "DevicePatch")], ok: &[(200, "application/json", "Device")], errors: &[400, 403, 422] },
    Endpoint { method: "delete", path: "/api/v1/devices/{id}", id: "deleteDevice", summary: "Decommission a device: its readings are refused from now on and its alarms no longer judged; the id is never reused; audited", access: Access::Bearer, path_params: &[("id", r#"{"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}"#, "the device id")], query: &[], body: &[], ok: &[(200, "application/json", "Device")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/readings/stats", id: "readingsStats", summary: "Readings taken and refused (by reason), devices, rules, alarms firing", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "ReadingsStats")], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/datasets/{name}", id: "importDataset", summary: "Import (replace) a dataset from text/csv or a JSON array; bad rows are named, good ones kept; the scenario packs re-index it and judge its rows at once", access: Access::Bearer, path_params: &[("name", r#"{"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}"#, "the dataset's name")], query: &[("owner", true, r#"{"type": "string", "minLength": 1}"#, "owner department code"), ("sensitivity", false, r#"{"type": "string", "enum": ["public", "internal", "sensitive", "secret"]}"#, "internal by default")], body: &[("text/csv", r#"{"type": "string", "description": "a header line, then one row per line; quoted fields allowed"}"#), ("application/json", r#"{"type": "array", "items": {"type": "object"}}"#)], ok: &[(200, "application/json", "DatasetImported")], errors: &[400, 403, 415] },
    Endpoint { method: "get", path: "/api/v1/datasets", id: "listDatasets", summary: "The dataset registry: name, owner, columns, sensitivity, row count (never the rows)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Datasets")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/datasets/{name}/rows", id: "datasetRows", summary: "A dataset's rows as the caller's grants give them: the owner department everything; a consumer only its granted columns, personal columns masked unless the grant unmasks them; administrators and the district officer every column, personal ones masked. Any other query parameter filters a visible unmasked column by equality. Every read is written to the audit trail", access: Access::Bearer, path_params: &[("name", r#"{"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}"#, "the dataset's name")], query: &[("limit", false, r#"{"type": "integer", "minimum": 1, "maximum": 1000}"#, "rows per page (100 by default)"), ("offset", false, r#"{"type": "integer", "minimum": 0}"#, "rows skipped"), ("format", false, r#"{"type": "string", "enum": ["json", "csv"]}"#, "json (default) or csv (or Accept: text/csv)")], body: &[], ok: &[(200, "application/json", "DatasetRows"), (200, "text/csv", r#"{"type": "string"}"#)], errors: &[403, 422] },
    Endpoint { method: "get", path: "/api/v1/catalogue", id: "catalogue", summary: "The data catalogue (数据目录): datasets, indicators, device feeds and exports with owner, description, schema with per-column sensitivity, freshness, data quality and lineage; q searches every field", access: Access::Bearer, path_params: &[], query: &[("q", false, r#"{"type": "string", "maxLength": 100}"#, "search text"), ("kind", false, r#"{"type": "string", "enum": ["dataset", "indicator", "device_feed", "export"]}"#, "only entries of this kind")], body: &[], ok: &[(200, "application/json", "Catalogue")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/data-quality", id: "dataQuality", summary: "Each declared dataset's completeness and freshness against its declaration", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "DataQuality")], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/grants", id: "requestGrant", summary: "Ask for columns of another department's dataset for a purpose until a date (a department's staff or a data machine for itself; an administrator or the district officer for a named consumer)", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", "GrantIn")], ok: &[(201, "application/json", "GrantOut")], errors: &[403, 404, 409, 422] },
    Endpoint { method: "get", path: "/api/v1/grants", id: "listGrants", summary: "Grants the caller may see: all for administrators, the district officer and analysts; a department's as consumer or owner", access: Access::Bearer, path_params: &[], query: &[("dataset", false, r#"{"type": "string"}"#, "only grants of this dataset")], body: &[], ok: &[(200, "application/json", "Grants")], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/grants/{id}/{action}", id: "decideGrant", summary: "The owner approves or refuses (with a reason) a requested grant; the owner, an administrator or the consumer revokes an approved one — it stops at once", access: Access::Bearer, path_params: &[("id", r#"{"type": "integer"}"#, "the grant's id"), ("action", r#"{"type": "string", "enum": ["approve", "refuse", "revoke"]}"#, "the decision")], query: &[], body: &[("application/json", "GrantDecision")], ok: &[(200, "application/json", "GrantOut")], errors: &[403, 409, 422] },
    Endpoint { method: "get", path: "/api/v1/audit", id: "listAudit", summary: "The hash-chained audit trail in order, with the chain's head (administrators)", access: Access::Bearer, path_params: &[], query: &[("after", false, r#"{"type": "integer", "minimum": 0}"#, "entries after this sequence number"), ("limit", false, r#"{"type": "integer", "minimum": 1, "maximum": 1000}"#, "entries (100 by default)")], body: &[], ok: &[(200, "application/json", "AuditTrail")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/audit/verify", id: "verifyAudit", summary: "Walks the whole stored audit trail: intact with its head, or the first broken entry (administrators)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "AuditVerdict")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/indicators", id: "listIndicators", summary: "The vital signs: each indicator's latest value and warning level (blue IV … red I) for the district or a sub-district", access: Access::Bearer, path_params: &[], query: &[("domain", false, r#"{"type": "string", "enum": ["safety", "construction", "market", "livelihood"]}"#, "only this domain's indicators"), ("region", false, REGION_VITAL, "the district (default) or a sub-district code")], body: &[], ok: &[(200, "application/json", "Indicators")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/indicators/{code}/history", id: "indicatorHistory", summary: "An indicator's values over time from its 1-minute and 1-hour rollups: count, avg, min, max, last per step", access: Access::Bearer, path_params: &[INDICATOR_CODE], query: &[("region", false, REGION_VITAL, "the district (default) or a sub-district code"), ("from", false, r#"{"type": "string", "format": "date-time"}"#, "RFC 3339; default 24 h before to"), ("to", false, r#"{"type": "string", "format": "date-time"}"#, "RFC 3339; default now"), ("step", false, r#"{"type": "string", "pattern": "^[0-9]+[mhd]$"}"#, "whole minutes under an hour or whole hours up to 31 days, e.g. 1m, 5m, 1h, 1d")], body: &[], ok: &[(200, "application/json", "IndicatorHistory")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/map", id: "map", summary: "Open cases in the caller's scope counted per sub-district, community or grid (aggregated in the store), the most urgent as markers, and today's closures and escalations", access: Access::Bearer, path_params: &[], query: &[("level", false, r#"{"type": "string", "enum": ["subdistrict", "community", "grid"]}"#, "subdistrict by default"), ("region", false, r#"{"type": "string", "minLength": 1}"#, "a region code"), ("markers", false, r#"{"type": "integer", "minimum": 0, "maximum": 1000}"#, "how many markers (default 300)")], body: &[], ok: &[(200, "application/json", "Map")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/alerts", id: "listAlerts", summary: "Alerts pending and firing, with silences, inhibition, their cases, and groups", access: Access::Bearer, path_params: &[], query: &[("state", false, r#"{"type": "string", "enum": ["pending", "firing"]}"#, "only alerts in this state"), ("region", false, REGION_VITAL, "the district or a sub-district code")], body: &[], ok: &[(200, "application/json", "Alerts")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/alert-rules", id: "listAlertRules", summary: "The alert rules over the vital signs", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "AlertRules")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/silences", id: "listSilences", summary: "Silences in force", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Silences")], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/silences", id: "createSilence", summary: "Mute a rule's notices in a region until a time (owner and reason recorded)", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", "SilenceIn")], ok: &[(201, "application/json", "Silence")], errors: &[403] },
    Endpoint { method: "delete", path: "/api/v1/silences/{id}", id: "expireSilence", summary: "End a silence now", access: Access::Bearer, path_params: &[("id", r#"{"type": "integer", "minimum": 0}"#, "the silence's id")], query: &[], body: &[], ok: &[(204, "", "")], errors: &[400, 403] },
    Endpoint { method: "get", path: "/cap/feed.atom", id: "capFeed", summary: "Public warnings: an Atom feed of CAP 1.2 messages", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/atom+xml", "AtomFeed")], errors: &[] },
    Endpoint { method: "get", path: "/cap/alerts/{file}", id: "capAlert", summary: "One CAP 1.2 message", access: Access::Public, path_params: &[("file", r#"{"type": "string", "pattern": "^.+\\.xml$"}"#, "{identifier}.xml")], query: &[], body: &[], ok: &[(200, "application/cap+xml", "CapXml")], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/indicators/{code}/values", id: "pushIndicator", summary: "Push a value of an external indicator (a feed's machine token or a district officer)", access: Access::Bearer, path_params: &[INDICATOR_CODE], query: &[], body: &[("application/json", "IndicatorValue")], ok: &[(200, "application/json", "Indicator")], errors: &[403, 409] },
    Endpoint { method: "post", path: "/api/v1/media", id: "uploadMedia", summary: "Upload a photo (the image as the body, at most 2 MiB); answers its media_url for a report's media or a transition's attachments", access: Access::Bearer, path_params: &[], query: &[], body: &[("image/jpeg", "Photo"), ("image/png", "Photo"), ("image/webp", "Photo")], ok: &[(201, "application/json", "MediaOut")], errors: &[400, 415] },
    Endpoint { method: "post", path: "/api/v1/reports", id: "postReport", summary: "File a report; answers with the case it became or joined, and why. Without a token, at most 20 reports per address per 10 minutes (shared with Open311's anonymous creates): 429 too_many_requests with Retry-After", access: Access::Optional, path_params: &[], query: &[], body: &[("application/json", "ReportIn")], ok: &[(201, "application/json", "ReportOut"), (200, "application/json", "ReportOut")], errors: &[403, 429, 503] },
    Endpoint { method: "get", path: "/api/v1/cases", id: "listCases", summary: "Cases in the caller's scope: filters, sort, keyset pagination", access: Access::Bearer, path_params: &[], query: LIST_QUERY, body: &[], ok: &[(200, "application/json", "CasePage")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/cases/{id}/routing", id: "caseRouting", summary: "For the dispatch form (duty officers): what routing would choose now and why, the department that returned the case, the suggestion (a returning department replaced by its line's next level up) and the departments serving the case's place", access: Access::Bearer, path_params: &[CASE_ID], query: &[], body: &[], ok: &[(200, "application/json", "CaseRouting")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/cases/{id}", id: "getCase", summary: "A case (by id or number) with its log and reports; anonymous callers follow by number", access: Access::Optional, path_params: &[CASE_ID], query: &[], body: &[], ok: &[(200, "application/json", "CaseDetail")], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/cases/{id}/transitions", id: "postTransition", summary: "Act on a case: file, dispatch, acknowledge, start, handle, verify, reject_verification, close, evaluate, return, request/grant/refuse_postponement, suspend, resume, reopen, merge, split, note, tick (a scenario playbook's checklist item)", access: Access::Optional, path_params: &[CASE_ID], query: &[], body: &[("application/json", "TransitionIn")], ok: &[(200, "application/json", "TransitionOut")], errors: &[403, 409, 503] },
    Endpoint { method: "get", path: "/api/v1/regions", id: "regions", summary: "Regions of one level as GeoJSON", access: Access::Public, path_params: &[], query: &[("level", false, r#"{"type": "string", "enum": ["district", "subdistrict", "community", "grid"]}"#, "subdistrict by default")], body: &[], ok: &[(200, "application/geo+json", "FeatureCollection")], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/locate", id: "locate", summary: "The region chain of a point", access: Access::Public, path_params: &[], query: &[("lon", true, r#"{"type": "number"}"#, "WGS-84 longitude"), ("lat", true, r#"{"type": "number"}"#, "WGS-84 latitude")], body: &[], ok: &[(200, "application/json", "Chain")], errors: &[422] },
    Endpoint { method: "get", path: "/api/v1/categories", id: "categories", summary: "Reportable categories with their time limits", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Categories")], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/departments", id: "departments", summary: "Departments (line, level, region)", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Departments")], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/stats", id: "stats", summary: "Counts by state, domain, sub-district and department; on-time rate; overdue; today's intake", access: Access::Bearer, path_params: &[], query: LIST_QUERY, body: &[], ok: &[(200, "application/json", "Stats")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/hot-topics", id: "hotTopics", summary: "Hot topics (热点问题): the latest days' citizen messages clustered by text and place, most messages first, labels masked (district officer and analyst: everything; a sub-district officer: their sub-district)", access: Access::Bearer, path_params: &[], query: &[("days", false, r#"{"type": "integer", "minimum": 1, "maximum": 30}"#, "the window in days (7)"), ("limit", false, r#"{"type": "integer", "minimum": 1, "maximum": 50}"#, "at most this many topics (10)"), ("region", false, r#"{"type": "string"}"#, "only messages inside this region (code)")], body: &[], ok: &[(200, "application/json", "HotTopics")], errors: &[400, 403] },
    Endpoint { method: "get", path: "/api/v1/inbox", id: "inbox", summary: "What awaits the caller's action, most urgent first", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "CaseList")], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/events/stream", id: "events", summary: "Server-Sent Events of committed case changes in the caller's scope, resumable with Last-Event-ID; and, live only, vital-sign level changes and alerts (level_changed, alert_fired, alert_level_changed, alert_resolved)", access: Access::Bearer, path_params: &[], query: &[("access_token", false, r#"{"type": "string", "minLength": 1}"#, "the bearer token, for EventSource"), ("last_event_id", false, r#"{"type": "integer", "minimum": 0}"#, "resume after this event"), ("recent", false, r#"{"type": "integer", "minimum": 0, "maximum": 500}"#, "without a resume point: start with the events among the last this many (those in scope), so a new page's feed is not empty")], body: &[], ok: &[(200, "text/event-stream", "EventStream")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/triage", id: "triageQueue", summary: "The 待分拨 triage queue: open cases whose text gave no confident category, oldest first, with the first report's text, place, the model's suggestion (top 3) and the deadline (district officer: all; sub-district officer: their sub-district); pick with the classify transition", access: Access::Bearer, path_params: &[], query: &[("limit", false, r#"{"type": "integer", "minimum": 1, "maximum": 200}"#, "at most this many (50)"), ("cursor", false, r#"{"type": "string"}"#, "the next_cursor of the previous page")], body: &[], ok: &[(200, "application/json", "TriageQueue")], errors: &[400, 403] },
    Endpoint { method: "get", path: "/api/v1/scenarios", id: "listScenarios", summary: "The scenario packs (signed-in staff): status, version, owner, names, playbook in brief, the problems of the last refused reload", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "Scenarios")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/scenarios/hits", id: "scenarioHits", summary: "The scenario packs' last hits, repeats and stand-downs, newest first (signed-in staff; a caller confined to a region sees those inside it)", access: Access::Bearer, path_params: &[], query: &[("pack", false, r#"{"type": "string"}"#, "only this pack's"), ("limit", false, r#"{"type": "integer", "minimum": 1, "maximum": 500}"#, "at most this many (50)")], body: &[], ok: &[(200, "application/json", "ScenarioHits")], errors: &[400, 403, 404] },
    Endpoint { method: "get", path: "/api/v1/scenarios/{name}", id: "getScenario", summary: "One scenario pack with its running text and whole playbook", access: Access::Bearer, path_params: &[SCENARIO_NAME], query: &[], body: &[], ok: &[(200, "application/json", "Scenario")], errors: &[403] },
    Endpoint { method: "put", path: "/api/v1/scenarios/{name}", id: "reloadScenario", summary: "Reload a scenario pack from its TOML (administrators and the district officer): validated against the running configuration; a refused pack is 422 with every problem and the running version stays; the same version is 409; audited either way", access: Access::Bearer, path_params: &[SCENARIO_NAME], query: &[], body: &[("application/toml", "ScenarioPack"), ("text/plain", "ScenarioPack")], ok: &[(200, "application/json", "Scenario")], errors: &[400, 403, 409, 415, 422] },
    Endpoint { method: "post", path: "/api/v1/scenarios/{name}/enable", id: "enableScenario", summary: "Enable a scenario pack (administrators and the district officer; audited)", access: Access::Bearer, path_params: &[SCENARIO_NAME], query: &[], body: &[], ok: &[(200, "application/json", "Scenario")], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/scenarios/{name}/disable", id: "disableScenario", summary: "Disable a scenario pack (administrators and the district officer; audited)", access: Access::Bearer, path_params: &[SCENARIO_NAME], query: &[], body: &[], ok: &[(200, "application/json", "Scenario")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/scenarios/{name}/audit", id: "scenarioAudit", summary: "A scenario pack's audit trail: every enable, disable, reload and refused reload with actor and time, oldest first", access: Access::Bearer, path_params: &[SCENARIO_NAME], query: &[], body: &[], ok: &[(200, "application/json", "ScenarioAudit")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/life-circle", id: "lifeCircle", summary: "The 15-minute life circle (15分钟社区生活圈, signed-in staff): the walking method, the service types with the district's population shares within 5/10/15 minutes, each sub-district's share at each type's target ring; facilities © OpenStreetMap contributors (ODbL)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "LifeCircle")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/life-circle/coverage", id: "lifeCircleCoverage", summary: "Coverage of one service type within a ring (signed-in staff): per grid the minutes to the nearest facility (null beyond 15), the population share, the communities reaching it and the gaps (most people without it first); the method stated", access: Access::Bearer, path_params: &[], query: &[("type", true, r#"{"type": "string", "minLength": 1}"#, "a service type code (see /api/v1/life-circle; unknown: 422 unknown_service_type)"), ("ring", false, r#"{"type": "integer", "enum": [5, 10, 15]}"#, "minutes (the type's target ring by default)")], body: &[], ok: &[(200, "application/json", "LifeCircleCoverage")], errors: &[403, 422] },
    Endpoint { method: "get", path: "/api/v1/life-circle/communities/{code}", id: "lifeCircleCard", summary: "A community's life-circle card (signed-in staff): per service type the shares of its people within 5/10/15 minutes, whether its target ring is met, the nearest facility; the missing types", access: Access::Bearer, path_params: &[("code", r#"{"type": "string"}"#, "the community's code")], query: &[], body: &[], ok: &[(200, "application/json", "LifeCircleCard")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/life-circle/facilities", id: "lifeCircleFacilities", summary: "The facility registry as GeoJSON points (signed-in staff): OpenStreetMap (© OpenStreetMap contributors, ODbL), cityos's own canteens and meal points", access: Access::Bearer, path_params: &[], query: &[("type", false, r#"{"type": "string"}"#, "only this service type")], body: &[], ok: &[(200, "application/geo+json", "FeatureCollection")], errors: &[403, 422] },
    Endpoint { method: "put", path: "/api/v1/life-circle/facilities/{name}", id: "lifeCircleImport", summary: "Add (or replace) a named facility list (the district officer and administrators): CSV `id,type,name,lon,lat[,hours]` or GeoJSON points/areas with `type` (a service type or a mapped OSM class); any bad row (unknown type, implausible position) refuses the whole list with every row named (invalid_facility) and nothing is stored; kept in the store, coverage recomputed at once", access: Access::Bearer, path_params: &[("name", r#"{"type": "string", "pattern": "^[a-z0-9_-]{1,40}$"}"#, "the list's name")], query: &[], body: &[("text/csv", "FacilityCsv"), ("application/geo+json", "FeatureCollection")], ok: &[(200, "application/json", "LifeCircleUpload")], errors: &[400, 403, 415, 422] },
    Endpoint { method: "delete", path: "/api/v1/life-circle/facilities/{name}", id: "lifeCircleDeleteImport", summary: "Remove an uploaded facility list (the district officer and administrators)", access: Access::Bearer, path_params: &[("name", r#"{"type": "string", "pattern": "^[a-z0-9_-]{1,40}$"}"#, "the list's name")], query: &[], body: &[], ok: &[(204, "", "")], errors: &[400, 403] },
    Endpoint { method: "put", path: "/api/v1/life-circle/network", id: "lifeCircleNetwork", summary: "Supply the walking network as GeoJSON lines (the district officer and administrators): walking times are then shortest paths over it; a feature that is not a line, or parts that cannot be reached from the rest (each named), refuse it (invalid_network); kept in the store", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/geo+json", "FeatureCollection")], ok: &[(200, "application/json", "LifeCircleUpload")], errors: &[403, 415, 422] },
    Endpoint { method: "delete", path: "/api/v1/life-circle/network", id: "lifeCircleDeleteNetwork", summary: "Remove the walking network: back to straight-line distance × 1.3 (the district officer and administrators)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(204, "", "")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/life-circle/isochrone", id: "lifeCircleIsochrone", summary: "How far one walks from a point in so many minutes (signed-in staff): the grids reached with their minutes and people, and the area — a circle of the straight-line reach, or the walking network's nodes reached; the method stated", access: Access::Bearer, path_params: &[], query: &[("lon", true, r#"{"type": "number"}"#, "WGS-84 longitude"), ("lat", true, r#"{"type": "number"}"#, "WGS-84 latitude"), ("minutes", false, r#"{"type": "integer", "minimum": 1, "maximum": 30}"#, "minutes of walking (15)"), ("elders", false, r#"{"type": "boolean"}"#, "at the elders' speed")], body: &[], ok: &[(200, "application/json", "LifeCircleIsochrone")], errors: &[403, 422] },
    Endpoint { method: "post", path: "/api/v1/life-circle/whatif", id: "lifeCircleWhatIf", summary: "Siting what-if (district and sub-district officers, analysts): how coverage per ring changes with candidate facilities (at most 50: too_many_candidates) and for which communities; with `suggest`, the k best grid centres for a new facility of a type (greedy)", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", "LifeCircleWhatIfIn")], ok: &[(200, "application/json", "LifeCircleWhatIf")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/meals/canteens", id: "mealCanteens", summary: "为老助餐: the canteens (长者食堂) and meal points (助餐点) — position, sub-district, hours, capacity per meal, cut-offs, delivery area, the driverless round (public)", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/meals/communities", id: "mealCommunities", summary: "为老助餐: the communities (居委会) of the sub-districts the canteens and meal points serve — code, names, sub-district — for the registration form (public)", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/meals/my-canteens", id: "mealMyCanteens", summary: "The canteens the caller runs (their staff; officers in scope)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/meals/canteens/{id}/menu", id: "mealMenu", summary: "A canteen's (or its meal point's kitchen's) menus of a day: dishes with prices in fen and nutrition tags, cut-off, open or closed, portions left (public)", access: Access::Public, path_params: &[MEAL_CANTEEN], query: &[("date", false, MEAL_DATE, "YYYY-MM-DD (today by default)")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "put", path: "/api/v1/meals/canteens/{id}/menu", id: "mealPutMenu", summary: "Set one meal's menu of a day (the canteen's staff, the district officer, administrators)", access: Access::Bearer, path_params: &[MEAL_CANTEEN], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["date", "meal", "dishes"], "properties": {"date": {"type": "string"}, "meal": {"type": "string", "enum": ["breakfast", "lunch"]}, "dishes": {"type": "array", "items": {"type": "object", "required": ["id", "name", "price"], "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "price": {"type": "integer", "description": "fen"}, "tags": {"type": "array", "items": {"type": "string", "enum": ["low_salt", "soft", "diabetic", "halal", "vegetarian"]}}}}}}}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/meals/canteens/{id}/kitchen", id: "mealKitchen", summary: "What to cook: a meal's portions by dish (with the diets asked), by round, cut-off (the canteen's staff, officers in scope)", access: Access::Bearer, path_params: &[MEAL_CANTEEN], query: &[("date", false, MEAL_DATE, "YYYY-MM-DD (today)"), ("meal", false, r#"{"type": "string", "enum": ["breakfast", "lunch"]}"#, "lunch by default")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/meals/canteens/{id}/rounds", id: "mealRounds", summary: "The day's lunch rounds: the driverless vehicle's stops in order (departs 11:00), the staff round, pick-ups; departure and each handover (the canteen's staff, officers in scope)", access: Access::Bearer, path_params: &[MEAL_CANTEEN], query: &[("date", false, MEAL_DATE, "YYYY-MM-DD (today)")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/meals/canteens/{id}/rounds/{round}/depart", id: "mealDepart", summary: "A delivery round leaves: its orders are out for delivery (409 when it has already left)", access: Access::Bearer, path_params: &[MEAL_CANTEEN, ("round", r#"{"type": "string", "enum": ["staff", "driverless"]}"#, "the round")], query: &[], body: &[("application/json", r#"{"type": "object", "properties": {"date": {"type": "string"}}}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403, 409] },
    Endpoint { method: "get", path: "/api/v1/meals/elders", id: "mealElders", summary: "A citizen's own elders (self, family) whole; for the proxy-order desk (canteen staff, community workers, officers) up to 20 matches of q — elder number, the phone's last four digits or the name's start — masked", access: Access::Bearer, path_params: &[], query: &[("q", false, r#"{"type": "string"}"#, "what to look for (the desk)")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "post", path: "/api/v1/meals/elders", id: "mealRegisterElder", summary: "Register an elder (a community worker in their area, the district officer, or a family member, who is linked to them): age from the date of birth (60 and over; an impossible one is refused kindly), community, address, diet, lone-elder flag, statuses for the subsidy, family contacts, home canteen", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["name", "phone", "address", "birth_date", "community", "canteen"], "properties": {"name": {"type": "string"}, "phone": {"type": "string"}, "address": {"type": "string"}, "birth_date": {"type": "string", "format": "date"}, "community": {"type": "string", "description": "the community (居委会) region code"}, "lon": {"type": "number"}, "lat": {"type": "number"}, "diet": {"type": "array", "items": {"type": "string", "enum": ["low_salt", "soft", "diabetic", "halal", "vegetarian"]}}, "lone": {"type": "boolean"}, "statuses": {"type": "array", "items": {"type": "string"}}, "family": {"type": "array", "items": {"type": "object", "required": ["name", "phone"], "properties": {"name": {"type": "string"}, "phone": {"type": "string"}, "relation": {"type": "string"}}}}, "canteen": {"type": "string"}, "account": {"type": "string", "description": "the elder's own citizen account (community workers)"}}}"#)], ok: &[(201, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/meals/elders/{id}", id: "mealElder", summary: "One elder whole — details, usual meal, balance, ledger, recent orders — for the elder, their family, their canteen's staff and community workers (others: 404)", access: Access::Bearer, path_params: &[MEAL_ELDER], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/meals/elders/{id}/top-ups", id: "mealTopUp", summary: "Put money (whole fen) into an elder's meal account (the elder, family, staff, workers)", access: Access::Bearer, path_params: &[MEAL_ELDER], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["amount_fen"], "properties": {"amount_fen": {"type": "integer", "minimum": 1, "maximum": 500000}}}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[] },
    Endpoint { method: "post", path: "/api/v1/meals/orders", id: "mealOrder", summary: "Order a meal for an elder — or their usual (`usual: true`) for the next meal still open; the subsidy by age band and status is applied, the elder's share paid from the account; the same `key` answers the same order (200). Kind refusals: meal_after_cutoff, meal_sold_out, meal_balance_low, dish_not_on_menu, no_usual_meal, no_delivery", access: Access::Bearer, path_params: &[], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["elder"], "properties": {"elder": {"type": "string"}, "usual": {"type": "boolean", "description": "reorder the usual meal for the next meal still open"}, "canteen": {"type": "string"}, "date": {"type": "string", "format": "date"}, "meal": {"type": "string", "enum": ["breakfast", "lunch"]}, "lines": {"type": "array", "items": {"type": "object", "required": ["dish"], "properties": {"dish": {"type": "string"}, "qty": {"type": "integer", "minimum": 1, "maximum": 3}}}}, "round": {"type": "string", "enum": ["pickup", "staff", "driverless"]}, "point": {"type": "string"}, "key": {"type": "string", "description": "the same key answers the same order"}, "make_usual": {"type": "boolean"}}}"#)], ok: &[(201, "application/json", r#"{"type": "object"}"#), (200, "application/json", r#"{"type": "object"}"#)], errors: &[404, 409] },
    Endpoint { method: "post", path: "/api/v1/meals/orders/{id}/cancel", id: "mealCancel", summary: "Cancel an order and refund the elder's share (the elder's side until the cut-off: meal_cancel_closed after; the canteen until served)", access: Access::Bearer, path_params: &[MEAL_ORDER], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[409] },
    Endpoint { method: "post", path: "/api/v1/meals/orders/{id}/handover", id: "mealHandover", summary: "The canteen confirms a meal handed over or picked up, or that nobody answered (handed: false), which opens a welfare check for the residents' committee", access: Access::Bearer, path_params: &[MEAL_ORDER], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["handed"], "properties": {"handed": {"type": "boolean"}}}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403, 409] },
    Endpoint { method: "get", path: "/api/v1/meals/summary", id: "mealSummary", summary: "The day's summary per canteen: orders, meals served, not handed over, cancelled; what elders paid, subsidies by source, refunds (staff; analysts and administrators all canteens)", access: Access::Bearer, path_params: &[], query: &[("date", false, MEAL_DATE, "YYYY-MM-DD (today)"), ("canteen", false, r#"{"type": "string"}"#, "one canteen")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/meals/coverage", id: "mealCoverage", summary: "Meal coverage per community on a day: elders registered, elders served, deliveries late (after noon) and not handed over, with the sub-districts' and the district's sums — the vital signs' figures, which have no community level (staff in scope; analysts and administrators every community; counts only)", access: Access::Bearer, path_params: &[], query: &[("date", false, MEAL_DATE, "YYYY-MM-DD (today)")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/assistance/sources", id: "assistanceSources", summary: "精准救助: the declared sources of the livelihood data pool (owner, columns, which are personal) with their imports, the pool's size and as-of date, the policies (the civil-affairs line, officers, administrators; others 403)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403, 503] },
    Endpoint { method: "post", path: "/api/v1/assistance/sources/{source}", id: "assistanceImport", summary: "Import one declared source file (text/csv) as of a date (the district civil-affairs bureau, administrators): ids become keyed hashes before fusion, personal columns stay in the source table; bad rows named by line without their values; the touched households re-evaluated and new candidates opened as assistance cases", access: Access::Bearer, path_params: &[("source", r#"{"type": "string"}"#, "a source of data/xuhui/assistance/sources.toml")], query: &[("as_of", false, r#"{"type": "string", "format": "date"}"#, "the date the file is as of (today by default; not in the future)"), ("label", false, r#"{"type": "string"}"#, "the import's label"), ("hold", false, r#"{"type": "boolean"}"#, "more files of this delivery follow: raise no case yet")], body: &[("text/csv", r#"{"type": "string"}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[400, 403, 404, 413, 415, 503] },
    Endpoint { method: "get", path: "/api/v1/assistance/cases", id: "assistanceCases", summary: "The caller's assistance cases (社区救助顾问: their sub-district; the district civil-affairs bureau and officers in scope), masked: household reference, policies, hardship, the head's name and address masked, visit deadline and outcome; format=csv exports the same", access: Access::Bearer, path_params: &[], query: &[("open", false, r#"{"type": "boolean"}"#, "only open (true) or closed (false) cases"), ("format", false, r#"{"type": "string", "enum": ["json", "csv"]}"#, "json (default) or csv")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#), (200, "text/csv", r#"{"type": "string"}"#)], errors: &[400, 403, 503] },
    Endpoint { method: "get", path: "/api/v1/assistance/cases/{number}", id: "assistanceCase", summary: "One assistance case with its explanation per policy: members by position, relation and age; each condition with the facts read, their source, owner and import; what would rule it out; conflicts; 人户分离 — never a name, id or birth date", access: Access::Bearer, path_params: &[("number", r#"{"type": "string"}"#, "the case number")], query: &[], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[403, 404, 503] },
    Endpoint { method: "get", path: "/api/v1/assistance/cases/{number}/personal", id: "assistancePersonal", summary: "The household members' names, ID numbers and addresses: whole for the household's adviser and the district civil-affairs bureau with a stated purpose (400 without), each view written to the audit trail (who, whose household, when, why) before the answer (503 when the trail is off); only while the case is open or within personal_after_visit_days of the visit and while the household still lives in the adviser's sub-district (else masked, lapsed = true); masked for officers", access: Access::Bearer, path_params: &[("number", r#"{"type": "string"}"#, "the case number")], query: &[("purpose", false, r#"{"type": "string", "minLength": 4, "maxLength": 200}"#, "why the data is opened (required for whole values)")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[400, 403, 404, 503] },
    Endpoint { method: "post", path: "/api/v1/assistance/cases/{number}/visit", id: "assistanceVisit", summary: "The adviser records the home visit: enrolled, not_eligible (with a reason), declined or unreachable; the assistance case closes and the engine's case is handled for the sub-district centre to verify and close (409 when already recorded)", access: Access::Bearer, path_params: &[("number", r#"{"type": "string"}"#, "the case number")], query: &[], body: &[("application/json", r#"{"type": "object", "required": ["outcome"], "properties": {"outcome": {"type": "string", "enum": ["enrolled", "not_eligible", "declined", "unreachable"]}, "reason": {"type": "string"}, "note": {"type": "string"}}}"#)], ok: &[(200, "application/json", r#"{"type": "object"}"#)], errors: &[400, 403, 404, 409, 415, 422, 503] },
    Endpoint { method: "get", path: "/api/v1/assistance/summary", id: "assistanceSummary", summary: "Households found, cases, open and enrolled by sub-district and policy; any cell under 5 households is null (\"<5\" in the CSV) — analysts, officers, the civil-affairs line, administrators", access: Access::Bearer, path_params: &[], query: &[("format", false, r#"{"type": "string", "enum": ["json", "csv"]}"#, "json (default) or csv")], body: &[], ok: &[(200, "application/json", r#"{"type": "object"}"#), (200, "text/csv", r#"{"type": "string"}"#)], errors: &[400, 403, 503] },
    Endpoint { method: "get", path: "/api/v1/evaluation/measures", id: "evaluationMeasures", summary: "The evaluation's measures (考核指标): code, Chinese and English name and definition, kind, whether higher is better", access: Access::Public, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "EvaluationMeasures")], errors: &[] },
    Endpoint { method: "get", path: "/api/v1/evaluation", id: "evaluation", summary: "考核评价: without unit, a dimension's units ranked per class with scores, every measure and the red/black lists (红黑榜); with unit, that unit's figures, its score explained line by line with the case numbers behind each line, its place and trend. District officer, analyst, administrator: everything; a sub-district officer: the units and cases inside their scope; a handler: their own department; others 403; a unit outside the caller's reach 404", access: Access::Bearer, path_params: &[], query: EVAL_QUERY, body: &[], ok: &[(200, "application/json", "Evaluation")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/evaluation/cases", id: "evaluationCases", summary: "The drill-down: the cases behind one unit's measure in a period, each with what it counts (1/0 for rates, the number or hours otherwise); no text or contact", access: Access::Bearer, path_params: &[], query: &[EVAL_PERIOD, ("unit", true, EVAL_UNIT_SCHEMA, "dimension:code"), ("measure", true, r#"{"type": "string", "minLength": 1}"#, "a measure code from /api/v1/evaluation/measures")], body: &[], ok: &[(200, "application/json", "EvaluationCases")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/evaluation/export", id: "evaluationExport", summary: "A report as a file: a dimension's ranking (or one unit's explained score and cases) with the trend, as XLSX, CSV or a print-ready HTML page; no personal data", access: Access::Bearer, path_params: &[], query: EVAL_EXPORT_QUERY, body: &[], ok: &[(200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XlsxFile"), (200, "text/csv", "CsvFile"), (200, "text/html", "HtmlFile")], errors: &[403, 404] },
    Endpoint { method: "get", path: "/api/v1/evaluation/reports", id: "evaluationReports", summary: "The saved monthly reports (generated once each month has ended), newest first (district officer, analyst, administrator)", access: Access::Bearer, path_params: &[], query: &[], body: &[], ok: &[(200, "application/json", "EvaluationReports")], errors: &[403] },
    Endpoint { method: "get", path: "/api/v1/evaluation/reports/{name}", id: "evaluationReport", summary: "One saved monthly report as XLSX, CSV or HTML (html by default)", access: Access::Bearer, path_params: &[("name", r#"{"type": "string", "minLength": 1}"#, "the month, e.g. 2026-11")], query: &[("format", false, r#"{"type": "string", "enum": ["xlsx", "csv", "html"]}"#, "html (default), xlsx or csv")], body: &[], ok: &[(200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "XlsxFile"), (200, "text/csv", "CsvFile"), (200, "text/html", "HtmlFile")], errors: &[403] },
];
