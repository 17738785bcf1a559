//! The OpenAPI 3.1 document served at `/api/openapi.json` and the handler of each entry of
//! the endpoint table ([`crate::http::endpoints`]) — the single source of both the router
//! and the document, so the document cannot drift from the API.

pub use crate::http::endpoints::*;
use crate::{api, AppState};
use axum::routing::{delete, get, post, put, MethodRouter};
use serde_json::{json, Value};

/// The handler of an endpoint.
pub fn handler(id: &str) -> MethodRouter<AppState> {
    match id {
        "healthz" => get(api::healthz),
        "readyz" => get(api::readyz),
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
        "hotTopics" => get(api::hot_topics),
        "inbox" => get(api::inbox),
        "triageQueue" => get(api::triage_queue),
        "events" => get(api::events_stream),
        "uploadMedia" => post(crate::intake::inspector::upload),
        "listIndicators" => get(crate::vitals::list),
        "pushIndicator" => post(crate::vitals::push),
        "indicatorHistory" => get(crate::vitals::alerts::history),
        "map" => get(crate::ui::map),
        "caseRouting" => get(crate::ui::routing),
        "listAlerts" => get(crate::vitals::alerts::list),
        "listAlertRules" => get(crate::vitals::alerts::rules),
        "listSilences" => get(crate::vitals::alerts::list_silences),
        "createSilence" => post(crate::vitals::alerts::create_silence),
        "expireSilence" => delete(crate::vitals::alerts::expire_silence),
        "capFeed" => get(crate::vitals::alerts::feed),
        "capAlert" => get(crate::vitals::alerts::cap_alert),
        "importDataset" => post(crate::intake::data::import),
        "listDatasets" => get(crate::intake::data::list),
        "datasetRows" => get(crate::intake::data::grants::rows),
        "catalogue" => get(crate::intake::data::catalogue::catalogue),
        "dataQuality" => get(crate::intake::data::catalogue::data_quality),
        "requestGrant" => post(crate::intake::data::grants::request),
        "listGrants" => get(crate::intake::data::grants::list),
        "decideGrant" => post(crate::intake::data::grants::decide),
        "listAudit" => get(crate::intake::data::audit_list),
        "verifyAudit" => get(crate::intake::data::audit_verify),
        "postReadings" => post(crate::intake::sensor::post_readings),
        "readingsStats" => get(crate::intake::sensor::readings_stats),
        "listDevices" => get(crate::intake::sensor::registry::list_devices),
        "postDevices" => post(crate::intake::sensor::registry::post_devices),
        "getDevice" => get(crate::intake::sensor::registry::get_device),
        "patchDevice" => axum::routing::patch(crate::intake::sensor::registry::patch_device),
        "deleteDevice" => delete(crate::intake::sensor::registry::delete_device),
        "listScenarios" => get(crate::scenarios::admin::list),
        "scenarioHits" => get(crate::scenarios::admin::hits),
        "getScenario" => get(crate::scenarios::admin::get),
        "reloadScenario" => put(crate::scenarios::admin::reload),
        "enableScenario" => post(crate::scenarios::admin::enable),
        "disableScenario" => post(crate::scenarios::admin::disable),
        "scenarioAudit" => get(crate::scenarios::admin::audit),
        "lifeCircle" => get(crate::lifecircle::api::summary),
        "lifeCircleCoverage" => get(crate::lifecircle::api::coverage),
        "lifeCircleCard" => get(crate::lifecircle::api::card),
        "lifeCircleFacilities" => get(crate::lifecircle::api::facilities),
        "lifeCircleWhatIf" => post(crate::lifecircle::api::whatif),
        "lifeCircleIsochrone" => get(crate::lifecircle::api::isochrone),
        "lifeCircleImport" => put(crate::lifecircle::api::put_facilities),
        "lifeCircleDeleteImport" => delete(crate::lifecircle::api::delete_facilities),
        "lifeCircleNetwork" => put(crate::lifecircle::api::put_network),
        "lifeCircleDeleteNetwork" => delete(crate::lifecircle::api::delete_network),
        "mealCanteens" => get(crate::meals::api::list_canteens),
        "mealCommunities" => get(crate::meals::api::list_communities),
        "mealMyCanteens" => get(crate::meals::api::my_canteens),
        "mealMenu" => get(crate::meals::api::get_menu),
        "mealPutMenu" => put(crate::meals::api::put_menu),
        "mealKitchen" => get(crate::meals::api::kitchen),
        "mealRounds" => get(crate::meals::api::rounds),
        "mealDepart" => post(crate::meals::api::depart),
        "mealElders" => get(crate::meals::api::list_elders),
        "mealRegisterElder" => post(crate::meals::api::register_elder),
        "mealElder" => get(crate::meals::api::get_elder),
        "mealTopUp" => post(crate::meals::api::top_up),
        "mealOrder" => post(crate::meals::api::post_order),
        "mealCancel" => post(crate::meals::api::cancel_order),
        "mealHandover" => post(crate::meals::api::handover),
        "mealSummary" => get(crate::meals::api::summary),
        "mealCoverage" => get(crate::meals::api::coverage),
        "assistanceSources" => get(crate::assistance::api::sources),
        "assistanceImport" => post(crate::assistance::api::import_source),
        "assistanceCases" => get(crate::assistance::api::list_cases),
        "assistanceCase" => get(crate::assistance::api::get_case),
        "assistancePersonal" => get(crate::assistance::api::personal),
        "assistanceVisit" => post(crate::assistance::api::record_visit),
        "assistanceSummary" => get(crate::assistance::api::summary),
        "evaluationMeasures" => get(crate::evaluation::api::measures),
        "evaluation" => get(crate::evaluation::api::evaluation),
        "evaluationCases" => get(crate::evaluation::api::cases),
        "evaluationExport" => get(crate::evaluation::api::export_handler),
        "evaluationReports" => get(crate::evaluation::api::saved_reports),
        "evaluationReport" => get(crate::evaluation::api::saved_report),
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
    let problem_codes: Vec<&str> = crate::http::problems::Problem::ALL
        .iter()
        .map(|p| p.code())
        .collect();
    let region_ref = json!({"type": ["object", "null"], "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string")}});
    json!({
        "Problem": {"type": "object", "description": "RFC 9457 problem details", "required": ["type", "title", "status", "code", "detail"],
            "properties": {"type": s("string"), "title": s("string"), "status": {"type": "integer", "minimum": 400, "maximum": 599}, "code": {"type": "string", "enum": problem_codes, "description": "stable machine code, e.g. transition_not_allowed; the codes each status is answered with are named in its response's description"}, "detail": s("string"), "problems": {"type": "array", "items": s("string"), "description": "every problem found in a submitted document, as line:column: message (invalid_scenario_pack)"}}},
        "Health": {"type": "object", "required": ["status", "store"], "properties": {"status": {"type": "string", "enum": ["ok", "ready"]}, "store": {"type": "string", "enum": ["ok"]}}},
        "OpenApi": {"type": "object", "required": ["openapi", "info", "paths"], "properties": {"openapi": {"const": "3.1.0"}, "info": s("object"), "paths": s("object"), "components": s("object")}},
        "LoginIn": {"type": "object", "required": ["username", "password"], "additionalProperties": false, "properties": {"username": s("string"), "password": s("string")}},
        "LoginOut": {"type": "object", "required": ["token", "expires_at", "user"], "properties": {"token": s("string"), "expires_at": s("string"), "user": {"type": "object", "properties": {"username": s("string"), "display_name": s("string"), "role": s("string"), "department": {"type": ["string", "null"]}, "scope": {"type": ["string", "null"]}}}}},
        "ReportIn": {"type": "object", "required": ["text"], "additionalProperties": false, "properties": {
            "category": {"type": ["string", "null"], "description": "a category code from /api/v1/categories; left out (or empty), the text is read: a confident suggestion routes the case, otherwise it waits in the 待分拨 triage queue"},
            "lon": {"type": ["number", "null"], "description": "with lat; required with a category; without one a place named in the text may stand in"}, "lat": {"type": ["number", "null"]}, "text": {"type": "string", "minLength": 1, "maxLength": 4000, "description": "what the problem is (not only spaces)"},
            "contact": {"type": ["string", "null"], "maxLength": 100},
            "media": {"type": "array", "maxItems": 9, "items": s("string"), "description": "photo addresses from POST /api/v1/media"},
            "channel": {"type": ["string", "null"], "enum": ["citizen", "inspector", "sensor", "data", "staff", null], "description": "defaults to the caller's own channel"}}},
        "ReadingsOut": {"type": "object", "properties": {"accepted": s("integer"), "refused": r("RefusedReadings"), "errors": {"type": "array", "items": {"type": "object", "properties": {"line": s("integer"), "message": s("integer"), "record": s("integer"), "reason": s("string"), "problem": s("string")}}}, "alarms": {"type": "array", "items": {"type": "object", "properties": {"device": s("string"), "rule": s("string"), "change": {"type": "string", "enum": ["fired", "cleared"]}, "case": {"type": ["string", "null"]}}}}, "scenarios": {"type": "array", "items": r("ScenarioHit"), "description": "the scenario hits the batch caused"}}},
        "ReadingsIn": {"type": "string", "description": "one JSON reading per line: {\"device\": \"WL-001\", \"metric\": \"depth_cm\", \"value\": 18.5, \"at\": \"2026-11-26T09:30:00+08:00\"} (at optional; a metric is taken only from devices whose kind declares it)"},
        "RefusedReadings": {"type": "object", "required": ["malformed", "unknown_device", "undeclared_metric", "out_of_range", "future"], "properties": {"malformed": s("integer"), "unknown_device": s("integer"), "undeclared_metric": s("integer"), "out_of_range": s("integer"), "future": s("integer"), "no_name": s("integer"), "bad_time": s("integer"), "unit_mismatch": s("integer"), "not_numeric": s("integer"), "mapping_missing": s("integer"), "no_mapping": s("integer"), "too_large": s("integer")}},
        "Device": {"type": "object", "required": ["id", "kind", "lon", "lat", "status"], "properties": {"id": s("string"), "kind": s("string"), "lon": s("number"), "lat": s("number"), "owner": {"type": ["string", "null"]}, "tags": {"type": "array", "items": s("string")}, "status": {"type": "string", "enum": ["active", "retired"]}}},
        "DeviceList": {"type": "object", "properties": {"total": s("integer"), "items": {"type": "array", "items": r("Device")}}},
        "NewDevice": {"type": "object", "required": ["id", "kind", "lon", "lat"], "additionalProperties": false, "properties": {"id": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"}, "kind": s("string"), "lon": s("number"), "lat": s("number"), "owner": s("string"), "tags": {"type": "array", "items": s("string")}}},
        "DevicePatch": {"type": "object", "additionalProperties": false, "properties": {"lon": s("number"), "lat": s("number"), "owner": s("string")}},
        "DevicesImported": {"type": "object", "properties": {"registered": {"type": "array", "items": s("string")}, "problems": {"type": "array", "items": {"type": "object", "properties": {"at": s("string"), "code": s("string"), "problem": s("string")}}}}},
        "ReadingsStats": {"type": "object", "properties": {"devices": s("integer"), "rules": s("integer"), "accepted": s("integer"), "late": s("integer"), "refused": r("RefusedReadings"), "refused_by_kind": {"type": "object", "additionalProperties": {"type": "object", "additionalProperties": s("integer")}}, "alarms": {"type": "array", "items": {"type": "object", "properties": {"rule": s("string"), "kind": s("string"), "raised": s("integer"), "cleared": s("integer")}}}, "alarms_firing": s("integer")}},
        "DatasetImported": {"type": "object", "properties": {"name": s("string"), "columns": {"type": "array", "items": s("string")}, "rows": s("integer"), "refused": s("array"), "scenarios": {"type": "array", "items": r("ScenarioHit"), "description": "the scenario hits the import caused"}}},
        "Datasets": {"type": "object", "properties": {"datasets": {"type": "array", "items": {"type": "object", "properties": {"name": s("string"), "owner": s("string"), "sensitivity": s("string"), "columns": s("array"), "rows": s("integer"), "imported_at": s("string")}}}}},
        "Indicator": {"type": "object", "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "domain": s("string"), "unit": s("string"), "source": s("string"), "region": s("string"), "value": {"type": ["number", "null"]}, "level": {"type": "string", "enum": ["normal", "blue", "yellow", "orange", "red"]}, "level_zh": s("string"), "at": {"type": ["string", "null"]}, "thresholds": {"type": ["object", "null"]}}},
        "Indicators": {"type": "object", "properties": {"region": s("string"), "indicators": {"type": "array", "items": r("Indicator")}}},
        "IndicatorHistory": {"type": "object", "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "unit": s("string"), "thresholds": {"type": ["object", "array", "null"]}, "region": s("string"), "from": s("string"), "to": s("string"), "step_seconds": s("integer"),
            "points": {"type": "array", "items": {"type": "object", "properties": {"t": s("string"), "n": s("integer"), "avg": s("number"), "min": s("number"), "max": s("number"), "last": s("number")}}}}},
        "Alerts": {"type": "object", "properties": {"alerts": {"type": "array", "items": {"type": "object", "properties": {"fingerprint": s("string"), "rule": s("string"), "region": s("string"), "state": {"type": "string", "enum": ["pending", "firing"]}, "level": s("string"), "value": s("number"), "silenced": s("boolean"), "inhibited": s("boolean"), "case": {"type": ["object", "null"]}}}}, "groups": {"type": "array", "items": {"type": "object"}}}},
        "CaseRouting": {"type": "object", "required": ["case", "state", "routing", "returned", "suggested", "choices"], "properties": {"case": s("string"), "state": s("string"), "problem": {"type": ["string", "null"]},
            "routing": {"type": "array", "items": {"type": "object", "required": ["department", "lead", "reason"], "properties": {"department": s("string"), "name_zh": s("string"), "name_en": s("string"), "line": s("string"), "level": s("string"), "lead": s("boolean"), "reason": s("string")}}},
            "returned": {"type": "array", "items": s("string")},
            "suggested": {"type": "array", "items": {"type": "object", "required": ["department", "lead", "why"], "properties": {"department": s("string"), "lead": s("boolean"), "why": {"type": "string", "enum": ["routing", "next_up"]}}}},
            "choices": {"type": "array", "items": {"type": "object", "required": ["department", "name_zh"], "properties": {"department": s("string"), "name_zh": s("string"), "name_en": s("string"), "line": s("string"), "level": s("string")}}}}},
        "Map": {"type": "object", "required": ["level", "open", "counts", "markers"], "properties": {"level": {"type": "string", "enum": ["subdistrict", "community", "grid"]}, "open": s("integer"), "counts": {"type": "object", "additionalProperties": s("integer")},
            "markers": {"type": "array", "items": {"type": "object", "required": ["id", "number", "lon", "lat", "state"], "properties": {"id": s("integer"), "number": s("string"), "category_name": s("string"), "title": s("string"), "lon": s("number"), "lat": s("number"), "state": s("string"), "state_name": s("string"), "priority": s("string"), "due": {"type": ["string", "null"]}, "overdue": s("boolean")}}},
            "today": {"type": ["object", "null"], "description": "for accounts that see the whole district: today's actions by kind, and the standing figures now (open in any open state, overdue, on-time rate; whole district, every category) by the computation the yesterday sample uses", "properties": {"open": {"type": ["integer", "null"]}, "overdue": {"type": ["integer", "null"]}, "on_time_rate": {"type": ["number", "null"]}}, "additionalProperties": s("integer")}, "yesterday": {"type": ["object", "null"], "description": "the same counts yesterday up to this time of day, and the standing figures (open, overdue, on-time rate) at this time yesterday from the 5-minute figure samples — null without a sample within 15 minutes of it (whole-district accounts)", "properties": {"open": {"type": ["integer", "null"]}, "overdue": {"type": ["integer", "null"]}, "on_time_rate": {"type": ["number", "null"]}}, "additionalProperties": s("integer")}}},
        "AlertRules": {"type": "object", "required": ["rules"], "properties": {"rules": {"type": "array", "items": {"type": "object", "required": ["code"], "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "indicators": {"type": "array", "items": s("string")}, "for_seconds": s("integer"), "level": {"type": ["string", "null"]}, "case_levels": {"type": "array", "items": s("string")}, "category": {"type": ["string", "null"]}, "group": {"type": ["string", "null"]}, "cap_category": {"type": ["string", "null"]}, "inhibits": {"type": "array", "items": s("string")}}}}}},
        "DatasetRows": {"type": "object", "required": ["dataset", "columns", "masked", "rows"], "properties": {"dataset": s("string"), "basis": {"type": "string", "enum": ["owner", "oversight", "grant"]}, "grants": {"type": "array", "items": s("integer")}, "columns": {"type": "array", "items": s("string")}, "masked": {"type": "array", "items": s("string")}, "total": s("integer"), "offset": s("integer"), "limit": s("integer"), "rows": {"type": "array", "items": {"type": "object"}}}},
        "Catalogue": {"type": "object", "properties": {"entries": {"type": "array", "items": {"type": "object", "properties": {"kind": {"type": "string", "enum": ["dataset", "indicator", "device_feed", "export"]}, "name": s("string"), "title_zh": s("string"), "title_en": s("string"), "description_zh": s("string"), "description_en": s("string"), "owner": s("object"), "sensitivity": s("string"), "schema": s("array"), "every": {"type": ["string", "null"]}, "freshness": s("object"), "quality": {"type": ["object", "null"]}, "source": s("string"), "rows_api": {"type": ["string", "null"]}, "lineage": s("object")}}}, "levels": {"type": "array", "items": s("string")}}},
        "DataQuality": {"type": "object", "properties": {"datasets": {"type": "array", "items": {"type": "object", "properties": {"name": s("string"), "owner": s("string"), "status": {"type": "string", "enum": ["ok", "stale", "incomplete", "stale_incomplete", "missing"]}, "problems": {"type": "array", "items": s("string")}}}}}},
        "GrantIn": {"type": "object", "required": ["dataset", "columns", "purpose", "until"], "additionalProperties": false, "properties": {"dataset": s("string"), "columns": {"type": "array", "items": s("string"), "description": "at least one"}, "purpose": {"type": "string", "minLength": 4, "maxLength": 500}, "until": {"type": "string", "description": "RFC 3339 time or a date YYYY-MM-DD (to the end of that day)"}, "unmask": {"type": "boolean", "description": "personal columns unmasked"}, "consumer": {"type": ["string", "null"], "description": "the consuming department (administrators and the district officer only)"}}},
        "GrantDecision": {"type": "object", "additionalProperties": false, "properties": {"reason": {"type": ["string", "null"], "description": "required when refusing"}}},
        "Grant": {"type": "object", "required": ["id", "dataset", "consumer", "columns", "purpose", "until", "state", "in_force"], "properties": {"id": s("integer"), "dataset": s("string"), "consumer": s("string"), "owner": s("string"), "columns": {"type": "array", "items": s("string")}, "purpose": s("string"), "until": s("string"), "unmask": s("boolean"), "state": {"type": "string", "enum": ["requested", "approved", "refused", "revoked", "expired"]}, "in_force": s("boolean"), "requested_by": s("string"), "requested_at": s("string"), "decided_by": {"type": ["string", "null"]}, "decided_at": {"type": ["string", "null"]}, "reason": s("string")}},
        "GrantOut": {"type": "object", "properties": {"grant": r("Grant")}},
        "Grants": {"type": "object", "properties": {"grants": {"type": "array", "items": r("Grant")}}},
        "AuditTrail": {"type": "object", "properties": {"entries": {"type": "array", "items": {"type": "object", "properties": {"seq": s("integer"), "at": s("string"), "actor": s("string"), "action": s("string"), "subject": s("string"), "detail": {}, "prev": s("string"), "hash": s("string")}}}, "head": s("object")}},
        "AuditVerdict": {"type": "object", "required": ["intact"], "properties": {"intact": s("boolean"), "entries": s("integer"), "head": s("object"), "first_broken": s("integer"), "problem": s("string"), "case_log": {"type": "object", "description": "the case log's per-case chains: intact with entries, cases and unchained (pre-v17) entries, or the first broken {case, seq} and the problem"}}},
        "SilenceIn": {"type": "object", "required": ["rule", "reason"], "additionalProperties": false, "properties": {"rule": {"type": "string", "minLength": 1, "description": "an alert rule code"}, "region": {"type": ["string", "null"], "description": "the district (default) or a sub-district inside the caller's scope"}, "reason": {"type": "string", "minLength": 1, "description": "why (not only spaces)"}, "ends_at": {"type": ["string", "null"], "format": "date-time", "description": "at most 30 days ahead"}, "duration": {"type": ["string", "null"], "description": "e.g. 2h; give this or ends_at, not both"}}},
        "Silence": {"type": "object", "required": ["id", "rule", "region", "owner", "reason", "ends_at"], "properties": {"id": s("integer"), "rule": s("string"), "region": s("string"), "region_name": {"type": ["string", "null"]}, "owner": s("string"), "reason": s("string"), "ends_at": s("string")}},
        "Silences": {"type": "object", "properties": {"silences": {"type": "array", "items": r("Silence")}}},
        "AtomFeed": {"type": "string", "description": "application/atom+xml"},
        "XlsxFile": {"type": "string", "description": "an Office Open XML workbook (XLSX)"},
        "CsvFile": {"type": "string", "description": "CSV (RFC 4180), UTF-8 with a byte-order mark"},
        "HtmlFile": {"type": "string", "description": "a print-ready HTML page (no script)"},
        "EvaluationFigure": {"type": "object", "required": ["value", "numerator", "samples"], "properties": {"value": {"type": ["number", "null"], "description": "rates as a share 0–1, hours, or a count; null with nothing to judge"}, "numerator": s("number"), "samples": s("integer")}},
        "EvaluationFigures": {"type": "object", "additionalProperties": r("EvaluationFigure"), "description": "by measure code"},
        "EvaluationMeasure": {"type": "object", "required": ["code", "name_zh", "name_en", "definition_zh", "definition_en", "kind", "higher_is_better"], "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "definition_zh": s("string"), "definition_en": s("string"), "kind": {"type": "string", "enum": ["count", "rate", "hours"]}, "higher_is_better": s("boolean")}},
        "EvaluationMeasures": {"type": "object", "required": ["measures"], "properties": {"measures": {"type": "array", "items": r("EvaluationMeasure")}}},
        "Evaluation": {"type": "object", "required": ["period", "measures"], "properties": {
            "period": s("string"), "from": s("string"), "to": s("string"), "generated_at": s("string"), "dimension": s("string"), "scheme": s("string"), "cases": s("integer"),
            "classes": {"type": "array", "items": s("object")},
            "units": {"type": "array", "items": {"type": "object", "required": ["unit", "code", "figures"], "properties": {"unit": s("string"), "code": s("string"), "name_zh": s("string"), "name_en": {"type": ["string", "null"]}, "class": s("string"), "rank": {"type": ["integer", "null"]}, "list": {"type": "string", "enum": ["red", "black", ""]}, "score": {"type": ["number", "null"]}, "unranked": {"type": ["string", "null"]}, "figures": r("EvaluationFigures")}}},
            "red": {"type": "array", "items": s("object")}, "black": {"type": "array", "items": s("object")},
            "unit": s("string"), "code": s("string"), "name_zh": s("string"), "name_en": {"type": ["string", "null"]}, "figures": r("EvaluationFigures"),
            "score": {"type": "object", "properties": {"score": {"type": ["number", "null"]}, "unranked": {"type": ["string", "null"]}, "lines": {"type": "array", "items": {"type": "object", "properties": {"measure": s("string"), "kind": {"type": "string", "enum": ["weight", "deduction"]}, "value": {"type": ["number", "null"]}, "samples": s("integer"), "factor": s("number"), "points": s("number"), "counted": s("boolean"), "note": s("string"), "cases": {"type": "object", "description": "rates: yes/no case numbers (at most 50 each) and totals; otherwise list of {number, value} and total"}}}}}},
            "rank": {"type": ["integer", "null"]}, "class": {"type": ["string", "null"]}, "list": s("string"),
            "trend": {"type": "array", "items": {"type": "object", "properties": {"period": s("string"), "score": {"type": ["number", "null"]}, "received": {"type": ["number", "null"]}, "handle_on_time": {"type": ["number", "null"]}, "satisfaction": {"type": ["number", "null"]}}}},
            "measures": {"type": "array", "items": r("EvaluationMeasure")}}},
        "EvaluationCases": {"type": "object", "required": ["period", "unit", "measure", "total", "cases"], "properties": {"period": s("string"), "unit": s("string"), "measure": s("string"), "name_zh": s("string"), "definition_zh": s("string"), "definition_en": s("string"), "total": s("integer"), "sum": s("number"),
            "cases": {"type": "array", "items": {"type": "object", "required": ["number", "value"], "properties": {"id": s("integer"), "number": s("string"), "value": s("number"), "category": s("string"), "category_name_zh": {"type": ["string", "null"]}, "category_name_en": {"type": ["string", "null"]}, "state": s("string"), "created_at": s("string"), "subdistrict": {"type": ["string", "null"]}, "community": {"type": ["string", "null"]}, "lead": {"type": ["string", "null"]}}}}}},
        "EvaluationReports": {"type": "object", "required": ["reports"], "properties": {"reports": {"type": "array", "items": {"type": "object", "properties": {"name": s("string"), "created_at": s("string"), "files": {"type": "array", "items": s("string")}}}}}},
        "CapXml": {"type": "string", "description": "application/cap+xml (OASIS CAP 1.2)"},
        "IndicatorValue": {"type": "object", "required": ["value"], "additionalProperties": false, "properties": {"value": s("number"), "region": {"type": ["string", "null"]}, "at": {"type": ["string", "null"]}}},
        "Photo": {"type": "string", "description": "the image's bytes (JPEG, PNG or WebP, at most 2 MiB, not empty)"},
        "MediaOut": {"type": "object", "properties": {"media_id": s("string"), "media_url": s("string"), "content_type": s("string"), "size": s("integer")}},
        "ReportOut": {"type": "object", "properties": {"report_id": s("integer"), "report_token": {"type": ["string", "null"], "description": "citizens: the key to rate the case later (keep it)"}, "merged": s("boolean"), "reason": s("string"), "dispatch": {"type": ["string", "null"], "enum": ["已转相关部门", "待人工分拨", null], "description": "a report without a category: passed on to the department, or waiting for a person to pick the category"}, "case": {"oneOf": [r("Case"), r("PublicCase"), {"type": "null"}], "description": "staff: the case if it is in their scope; citizens: the public view of a public case; null when the caller may not see the case the report joined"}}},
        "Task": {"type": "object", "properties": {"department": s("string"), "department_name": s("string"), "lead": s("boolean"), "state": s("string"), "since": s("string")}},
        "Deadline": {"type": "object", "properties": {"step": s("string"), "step_zh": s("string"), "due": s("string"), "met": {"type": ["string", "null"]}, "on_time": {"type": ["boolean", "null"]}}},
        "Case": {"type": "object", "required": ["id", "number", "category", "state", "version"], "properties": {
            "id": s("integer"), "number": s("string"), "category": s("string"), "category_name": s("string"), "category_name_en": s("string"),
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
            "evaluation": {"type": ["integer", "null"]}, "version": s("integer"),
            "media": {"type": "array", "items": s("string"), "description": "the reports' photo addresses"},
            "suggestion": r("Suggestion"),
            "playbook": {"type": "object", "description": "cases opened by a scenario pack: the pack, lead and joint lines, deadlines, and the checklist per role (each item with done_at and done_by once ticked)", "properties": {"scenario": s("string"), "version": s("string"), "lead": s("string"), "joint": {"type": "array", "items": s("string")}, "deadlines": {"type": "object", "additionalProperties": s("string")},
                "checklist": {"type": "array", "items": {"type": "object", "properties": {"role": s("string"), "items": {"type": "array", "items": {"type": "object", "properties": {"item": s("integer"), "text": s("string"), "done_at": {"type": ["string", "null"]}, "done_by": {"type": ["string", "null"]}}}}}}}}}}},
        "CasePage": {"type": "object", "properties": {"cases": {"type": "array", "items": r("Case")}, "next_cursor": {"type": ["string", "null"]}}},
        "TriageQueue": {"type": "object", "required": ["cases"], "properties": {"cases": {"type": "array", "items": {"type": "object", "required": ["id", "number", "text", "created_at", "version"], "properties": {
            "id": s("integer"), "number": s("string"), "title": s("string"), "text": {"type": "string", "description": "the first report's whole text (officers only)"},
            "channel": s("string"), "priority": s("string"), "state": s("string"), "state_name": s("string"), "created_at": s("string"), "reporters": s("integer"),
            "lon": s("number"), "lat": s("number"), "subdistrict": region_ref, "community": region_ref, "grid": region_ref,
            "suggestion": {"oneOf": [r("Suggestion"), {"type": "null"}]}, "due": {"type": ["string", "null"]}, "time_left_ms": {"type": ["integer", "null"]}, "overdue": s("boolean"), "version": s("integer")}}},
            "next_cursor": {"type": ["string", "null"]}}},
        "Suggestion": {"type": "object", "description": "what reading the report's text suggested (officers only)", "properties": {"category": s("string"), "name_zh": s("string"), "name_en": s("string"), "score": {"type": "number", "minimum": 0, "maximum": 1},
            "line": {"type": ["string", "null"]}, "department": {"type": ["string", "null"]},
            "top": {"type": "array", "maxItems": 3, "items": {"type": "object", "properties": {"category": s("string"), "name_zh": s("string"), "name_en": s("string"), "score": s("number")}}},
            "model": s("string"), "routed": s("boolean"), "reason": s("string"),
            "places": {"type": "array", "items": {"type": "object", "properties": {"word": s("string"), "kind": s("string"), "region": {"type": ["string", "null"]}, "region_name": {"type": ["string", "null"]}}}},
            "located_by_text": s("boolean"), "cues": {"type": "array", "items": s("string")}}},
        "CaseList": {"type": "object", "properties": {"cases": {"type": "array", "items": r("Case")}}},
        "LogEntry": {"type": "object", "properties": {"seq": s("integer"), "at": s("string"), "actor": s("string"), "actor_name": {"type": "string", "description": "a staff account's display name"}, "actor_department": {"type": "string", "description": "that account's department"}, "role": s("string"), "action": s("string"), "from": {"type": ["string", "null"]}, "to": s("string"), "note": s("string"), "attachments": {"type": "array", "items": s("string")}, "changes": s("array")}},
        "Report": {"type": "object", "properties": {"id": s("integer"), "channel": s("string"), "text": s("string"), "contact": {"type": ["string", "null"]}, "at": s("string")}},
        "PublicCase": {"type": "object", "description": "what an anonymous caller following a case by its number sees", "required": ["number", "state", "closed", "can_evaluate"], "properties": {
            "number": s("string"), "category_name": s("string"), "state": {"type": "string", "enum": cityos_core::State::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>()},
            "state_name": s("string"), "title": s("string"), "created_at": s("string"), "due": {"type": ["string", "null"]}, "closed": s("boolean"), "can_evaluate": s("boolean")}},
        "CaseDetail": {"type": "object", "required": ["case"], "properties": {"case": {"oneOf": [r("Case"), r("PublicCase")], "description": "the full case for signed-in callers; the public view for anonymous ones"}, "actions": {"type": "array", "items": s("string"), "description": "what the caller may do now (signed-in callers)"}, "log": {"type": "array", "items": r("LogEntry")}, "reports": {"type": "array", "items": r("Report")}}},
        "TransitionIn": transition_in(),
        "TransitionOut": {"type": "object", "properties": {"case": r("Case"), "opened": {"oneOf": [r("Case"), {"type": "null"}]}}},
        "FeatureCollection": {"type": "object", "description": "GeoJSON (application/geo+json)"},
        "Region": {"type": "object", "required": ["code"], "properties": {"code": s("string"), "name_zh": s("string"), "name_en": {"type": ["string", "null"]}}},
        "Chain": {"type": "object", "description": "the regions containing the point, by level", "properties": {"district": r("Region"), "subdistrict": r("Region"), "community": r("Region"), "grid": r("Region")}},
        "Categories": {"type": "object", "required": ["categories"], "properties": {"categories": {"type": "array", "items": {"type": "object", "required": ["code", "name_zh", "domain"], "properties": {
            "code": s("string"), "name_zh": s("string"), "name_en": {"type": ["string", "null"]}, "domain": {"type": "string", "enum": ["safety", "construction", "market", "livelihood"]}, "domain_zh": s("string"), "parent": {"type": ["string", "null"]},
            "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]}, "public": s("boolean"), "lead": {"type": ["string", "null"]}, "assist": {"type": "array", "items": s("string")}, "lowest_level": {"type": ["string", "null"]},
            "keywords": {"type": "array", "items": s("string"), "description": "words people use for it (the citizen page's category search)"},
            "dedup_radius_m": s("number"), "dedup_window_h": s("number"), "deadlines": {"type": "object", "additionalProperties": s("string"), "description": "time limit per step, e.g. 2wh"}}}}}},
        "Departments": {"type": "object", "required": ["departments"], "properties": {"departments": {"type": "array", "items": {"type": "object", "required": ["code", "name_zh"], "properties": {
            "code": s("string"), "name_zh": s("string"), "name_en": {"type": ["string", "null"]}, "line": s("string"), "level": s("string"), "region": {"type": ["string", "null"]}}}}}},
        "LifeCircle": {"type": "object", "required": ["method", "attribution", "types"], "properties": {"method": {"$ref": "#/components/schemas/WalkMethod"}, "attribution": s("string"), "population_basis": {"type": "object"}, "rings": {"type": "array", "items": s("integer")}, "population": s("number"), "communities": s("integer"), "types": {"type": "array", "items": {"type": "object", "properties": {"code": s("string"), "name_zh": s("string"), "name_en": s("string"), "target": s("integer"), "elders": s("boolean"), "facilities": s("integer"), "shares": {"type": "array", "items": s("number"), "description": "% of the population within 5, 10, 15 minutes"}}}}, "subdistricts": {"type": "array", "items": {"type": "object"}}, "notes": {"type": "array", "items": s("string")}}},
        "WalkMethod": {"type": "object", "required": ["code", "zh", "en"], "properties": {"code": {"type": "string", "enum": ["straight_line", "network"]}, "zh": s("string"), "en": s("string")}},
        "LifeCircleCoverage": {"type": "object", "required": ["method", "attribution", "type", "ring", "share", "grids"], "properties": {"method": {"$ref": "#/components/schemas/WalkMethod"}, "attribution": s("string"), "population_basis": {"type": "object"}, "name_zh": s("string"), "name_en": s("string"), "type": s("string"), "ring": s("integer"), "target": s("integer"), "population": s("number"), "covered": s("number"), "share": s("number"), "reached": {"type": "array", "items": {"type": "object"}}, "gaps": {"type": "array", "items": {"type": "object"}}, "grids": {"type": "array", "items": {"type": "object", "properties": {"code": s("string"), "community": s("string"), "minutes": {"type": ["number", "null"]}, "population": s("number")}}}}},
        "LifeCircleCard": {"type": "object", "required": ["method", "code", "lines", "missing"], "properties": {"method": {"$ref": "#/components/schemas/WalkMethod"}, "attribution": s("string"), "population_basis": {"type": "object"}, "subdistrict_name_zh": s("string"), "code": s("string"), "name_zh": s("string"), "subdistrict": s("string"), "population": s("number"), "lines": {"type": "array", "items": {"type": "object"}}, "missing": {"type": "array", "items": s("string")}}},
        "LifeCircleWhatIfIn": {"type": "object", "additionalProperties": false, "properties": {"candidates": {"type": "array", "maxItems": 50, "items": {"type": "object", "required": ["type", "lon", "lat"], "additionalProperties": false, "properties": {"type": s("string"), "lon": s("number"), "lat": s("number"), "name": s("string")}}}, "suggest": {"type": "object", "required": ["type"], "additionalProperties": false, "properties": {"type": s("string"), "ring": {"type": "integer", "enum": [5, 10, 15]}, "k": {"type": "integer", "minimum": 1, "maximum": 10}, "region": s("string")}}}},
        "LifeCircleIsochrone": {"type": "object", "required": ["method", "minutes", "grids", "geometry"], "properties": {"method": {"$ref": "#/components/schemas/WalkMethod"}, "attribution": s("string"), "population_basis": {"type": "object"}, "minutes": s("integer"), "elders": s("boolean"), "population": s("number"), "grids": {"type": "array", "items": {"type": "object", "properties": {"code": s("string"), "minutes": s("number"), "population": s("number")}}}, "geometry": {"type": "object", "description": "GeoJSON geometry: Polygon (straight line) or MultiPoint (network nodes)"}}},
        "LifeCircleUpload": {"type": "object", "properties": {"name": s("string"), "facilities": s("integer"), "total": s("integer"), "nodes": s("integer"), "edges": s("integer"), "method": {"$ref": "#/components/schemas/WalkMethod"}}},
        "FacilityCsv": {"type": "string", "description": "CSV with the header id,type,name,lon,lat and optionally hours (WGS-84)"},
        "LifeCircleWhatIf": {"type": "object", "required": ["method", "changes"], "properties": {"method": {"$ref": "#/components/schemas/WalkMethod"}, "attribution": s("string"), "population_basis": {"type": "object"}, "changes": {"type": "array", "items": {"type": "object"}}, "suggestion": {"type": "object"}}},
        "HotTopics": {"type": "object", "required": ["topics"], "properties": {"days": s("integer"), "region": {"type": ["string", "null"]}, "since": s("string"), "generated_at": s("string"), "messages": s("integer"), "truncated": s("boolean"), "topics": {"type": "array", "items": {"type": "object", "properties": {"rank": s("integer"), "label": {"type": "string", "description": "the most representative message's beginning, personal data masked"}, "count": s("integer"), "cases": s("integer"), "category": s("string"), "category_name_zh": {"type": ["string", "null"]}, "places": {"type": "array", "items": {"type": "object", "properties": {"code": s("string"), "name_zh": {"type": ["string", "null"]}, "count": s("integer")}}}, "first_seen": s("string"), "last_seen": s("string"), "samples": {"type": "array", "items": s("string"), "description": "case numbers, newest first"}}}}}},
        "Stats": {"type": "object", "required": ["total"], "properties": {"total": s("integer"), "by_state": {"type": "object", "additionalProperties": s("integer")}, "by_domain": {"type": "object", "additionalProperties": s("integer")}, "by_subdistrict": {"type": "object", "additionalProperties": s("integer")}, "by_department": {"type": "array", "items": s("object")}, "overdue": s("integer"), "today_intake": s("integer"), "on_time_rate": {"type": ["number", "null"]}}},
        "ScenarioPlaybook": {"type": "object", "required": ["category", "priority", "lead"], "properties": {"category": s("string"), "priority": {"type": "string", "enum": ["low", "normal", "high", "urgent"]}, "lead": s("string"), "joint": {"type": "array", "items": s("string")}, "notify": {"type": "array", "items": s("string")}, "cap_category": {"type": ["string", "null"]},
            "deadlines": {"type": "object", "additionalProperties": s("string")}, "checklist": {"type": "array", "items": {"type": "object", "properties": {"role": s("string"), "items": {"type": "array", "items": s("string")}}}}, "cap_level": {"type": ["string", "null"]}, "stand_down_after_seconds": s("integer")}},
        "Scenario": {"type": "object", "required": ["name", "status", "version", "owner", "name_zh", "name_en", "loaded_at", "problems", "playbook"], "properties": {"name": s("string"), "status": {"type": "string", "enum": ["enabled", "disabled"]}, "version": s("string"), "owner": s("string"), "name_zh": s("string"), "name_en": s("string"),
            "origin": {"type": "string", "enum": ["embedded", "directory", "reload"]}, "loaded_at": s("string"), "problems": {"type": "array", "items": s("string"), "description": "the last refused reload's problems (line:column: message)"}, "playbook": r("ScenarioPlaybook"), "text": {"type": "string", "description": "the running pack's TOML (one pack only)"}, "hits": s("integer"), "last_hit": {"oneOf": [r("ScenarioHit"), {"type": "null"}]}}},
        "ScenarioHit": {"type": "object", "required": ["seq", "pack", "kind", "at"], "properties": {"seq": s("integer"), "pack": s("string"), "name_zh": s("string"), "name_en": s("string"), "kind": {"type": "string", "enum": ["hit", "repeat", "stand_down"]}, "place": s("string"), "fence": {"type": ["string", "null"], "description": "the pack fence the place lies in (its devices share one case)"}, "lon": {"type": ["number", "null"]}, "lat": {"type": ["number", "null"]}, "at": s("string"), "case": {"type": ["string", "null"]}, "level": {"type": ["string", "null"]}, "cap": {"type": ["string", "null"], "description": "the CAP message published or cancelled"}, "text": s("string"), "region": s("string"), "officers_only": {"type": "boolean", "description": "a non-public pack's hit: shown to the command centres' officers only"}}},
        "ScenarioHits": {"type": "object", "required": ["hits"], "properties": {"hits": {"type": "array", "items": r("ScenarioHit")}}},
        "Scenarios": {"type": "object", "required": ["scenarios"], "properties": {"scenarios": {"type": "array", "items": r("Scenario")}}},
        "ScenarioPack": {"type": "string", "description": "a scenario pack's TOML (docs/scenarios.md); its code must be the name in the address and its version must change"},
        "ScenarioAudit": {"type": "object", "required": ["name", "audit"], "properties": {"name": s("string"), "audit": {"type": "array", "items": {"type": "object", "required": ["id", "at", "actor", "action", "version", "ok", "problems"], "properties": {"id": s("integer"), "at": s("string"), "actor": s("string"), "action": {"type": "string", "enum": ["enable", "disable", "reload"]}, "version": s("string"), "ok": s("boolean"), "problems": {"type": "array", "items": s("string")}}}}}},
        "EventStream": {"type": "object", "description": "one event of the text/event-stream: id (the global event number, on case events), event (created, merged, transitioned, escalated; live only level_changed, alert_fired, alert_level_changed, alert_resolved, scenario) and data (JSON text)", "required": ["event", "data"], "properties": {"id": s("string"), "event": s("string"), "data": s("string")}},
    })
}

/// The fields an action takes beyond `action`, `note`, `attachments` and `version`:
/// (name, JSON schema, required).
fn action_fields(action: &str) -> Vec<(&'static str, Value, bool)> {
    let reason = || ("reason", json!({"type": "string", "minLength": 1}), true);
    match action {
        "reject" | "return" | "suspend" | "reopen" => vec![reason()],
        "merge" => vec![(
            "into",
            json!({"type": "integer", "minimum": 1, "description": "the case that takes over"}),
            true,
        )],
        "classify" => vec![(
            "category",
            json!({"type": "string", "minLength": 1, "description": "the category picked (a reportable category, not a group nor triage; see /api/v1/categories)"}),
            true,
        )],
        "split" => vec![(
            "report",
            json!({"type": "integer", "minimum": 1, "description": "the report to split out"}),
            true,
        )],
        "dispatch" => vec![(
            "departments",
            json!({"type": "array", "description": "departments to send to (default: routing)",
            "items": {"type": "object", "required": ["department"], "additionalProperties": false, "properties": {"department": s("string"), "lead": s("boolean")}}}),
            false,
        )],
        "evaluate" => vec![
            (
                "score",
                json!({"type": "integer", "minimum": 1, "maximum": 5}),
                true,
            ),
            ("comment", json!({"type": "string"}), false),
            (
                "report_token",
                json!({"type": "string", "description": "evaluate without an account: the report_token the filing answer gave (only the reporter may rate)"}),
                false,
            ),
        ],
        "tick" => vec![
            (
                "role",
                json!({"type": "string", "minLength": 1, "description": "the role as the playbook's checklist names it"}),
                true,
            ),
            (
                "item",
                json!({"type": "integer", "minimum": 0, "description": "the item's position in that role's list"}),
                true,
            ),
        ],
        "request_postponement" => vec![
            (
                "extra",
                json!({"type": "string", "minLength": 1, "description": "extra time, e.g. 2wd"}),
                true,
            ),
            reason(),
        ],
        _ => Vec::new(),
    }
}

/// `POST …/transitions`: one object shape per action (each refuses the others' fields).
fn transition_in() -> Value {
    let mut seen: Vec<&str> = Vec::new();
    let mut shapes = Vec::new();
    for rule in cityos_core::workflow::RULES {
        if seen.contains(&rule.action) {
            continue;
        }
        seen.push(rule.action);
        let mut props = serde_json::Map::new();
        props.insert("action".into(), json!({"const": rule.action}));
        props.insert("note".into(), json!({"type": ["string", "null"]}));
        props.insert("attachments".into(), json!({"type": ["array", "null"], "items": s("string"), "description": "photo addresses from POST /api/v1/media"}));
        props.insert("version".into(), json!({"type": ["integer", "null"], "minimum": 0, "description": "refuse if the case moved on since this version"}));
        let mut required = vec![json!("action")];
        for (name, schema, req) in action_fields(rule.action) {
            props.insert(name.into(), schema);
            if req {
                required.push(json!(name));
            }
        }
        shapes.push(json!({"type": "object", "title": rule.action, "required": required, "additionalProperties": false, "properties": props}));
    }
    json!({"oneOf": shapes, "discriminator": {"propertyName": "action"}})
}

/// A schema given as a component name, or as JSON text.
fn schema_of(text: &str) -> Value {
    if text.starts_with('{') {
        serde_json::from_str(text).expect("the endpoint table's schemas are JSON")
    } else {
        r(text)
    }
}

/// The OpenAPI 3.1 document of every endpoint in [`ENDPOINTS`].
pub fn document() -> Value {
    let problem = json!({"application/problem+json": {"schema": r("Problem")}});
    let mut paths = serde_json::Map::new();
    for e in ENDPOINTS {
        let mut params: Vec<Value> = e
            .path_params
            .iter()
            .map(|(n, sch, d)| json!({"name": n, "in": "path", "required": true, "description": d, "schema": schema_of(sch)}))
            .collect();
        params.extend(e.query.iter().map(|(n, req, sch, d)| {
            json!({"name": n, "in": "query", "required": req, "description": d, "schema": schema_of(sch)})
        }));
        if e.id == "postReport" || e.id == "postTransition" {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false, "description": "a retried request with the same key returns the first answer", "schema": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": "^[!-~]+$"}}));
        }
        if e.id == "events" {
            params.push(json!({"name": "Last-Event-ID", "in": "header", "required": false, "description": "resume after this event", "schema": {"type": "integer", "minimum": 0}}));
        }
        let mut responses = serde_json::Map::new();
        for (status, media, schema) in e.ok {
            let v = if media.is_empty() {
                json!({"description": "done; no content"})
            } else {
                json!({"description": "success", "content": {*media: {"schema": schema_of(schema)}}})
            };
            // Several media types of one status (a file in the format asked for) share it.
            match responses.get_mut(&status.to_string()) {
                Some(prev) if !media.is_empty() => {
                    prev["content"][*media] = json!({"schema": schema_of(schema)});
                }
                _ => {
                    responses.insert(status.to_string(), v);
                }
            }
        }
        for status in problem_statuses(e) {
            let mut v = json!({"description": problem_description(status), "content": problem});
            if matches!(status, 429 | 503) {
                v["headers"] = json!({"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer", "minimum": 0}}});
            }
            responses.insert(status.to_string(), v);
        }
        responses.insert(
            "default".into(),
            json!({"description": problem_description(500), "content": problem}),
        );
        let mut op = json!({"operationId": e.id, "summary": e.summary, "parameters": params, "responses": responses});
        match e.access {
            Access::Public => {}
            Access::Bearer => op["security"] = json!([{"bearer": []}]),
            Access::Optional => op["security"] = json!([{}, {"bearer": []}]),
        }
        if !e.body.is_empty() {
            let content: serde_json::Map<String, Value> = e
                .body
                .iter()
                .map(|(m, sch)| (m.to_string(), json!({"schema": schema_of(sch)})))
                .collect();
            op["requestBody"] = json!({"required": true, "content": content});
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
