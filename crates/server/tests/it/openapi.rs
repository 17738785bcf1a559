//! The OpenAPI document is valid and true. Structure: every `{param}` of a path is a
//! declared, required path parameter (and nothing else is), operation ids are unique,
//! every `$ref` resolves, problems are problem+json, a 204 has no body, and every schema
//! keeps to the keywords the checker below understands. Truth: requests generated from
//! the document (a deterministic seed; valid values, boundaries and invalid ones, from
//! every operation's parameters and body schemas) go to the running service in-process,
//! anonymously and with signed-in tokens; every answer must have a documented status,
//! the documented media type, and a JSON body that fits the documented schema — and no
//! answer may be a 5xx.

use crate::support::{config, spot, TestApp};
use axum::body::Body;
use axum::http::{Method, Request};
use cityos_core::rng::Rng;
use cityos_server::runtime::openapi::{document, ENDPOINTS};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet};
use tower::ServiceExt;

/// Keywords the checker understands; `pattern`, `format`, `contentMediaType`,
/// `discriminator` and the annotations are read but not enforced.
const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "enum",
    "const",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "maxItems",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "oneOf",
    "pattern",
    "format",
    "description",
    "title",
    "discriminator",
    "contentMediaType",
];

fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    while let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/components/schemas/")
            .expect("local component ref");
        s = &doc["components"]["schemas"][name];
    }
    s
}

fn types(s: &Value) -> Vec<&str> {
    match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The problems of `v` against schema `s` (empty: it fits).
fn check(doc: &Value, s: &Value, v: &Value, at: &str, out: &mut Vec<String>) {
    let s = resolve(doc, s);
    if let Some(alts) = s["oneOf"].as_array() {
        let fits = alts
            .iter()
            .filter(|a| {
                let mut e = Vec::new();
                check(doc, a, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if fits != 1 {
            out.push(format!("{at}: fits {fits} of oneOf, not exactly one: {v}"));
        }
        return;
    }
    let ts = types(s);
    let t = type_of(v);
    let allowed = ts.is_empty() || ts.contains(&t) || (t == "integer" && ts.contains(&"number"));
    if !allowed {
        out.push(format!("{at}: {t} where {ts:?} is documented: {v}"));
        return;
    }
    if let Some(c) = s.get("const") {
        if c != v {
            out.push(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(e) = s["enum"].as_array() {
        if !e.contains(v) {
            out.push(format!("{at}: {v} is not one of {}", s["enum"]));
        }
    }
    match v {
        Value::String(x) => {
            let n = x.chars().count() as u64;
            if s["minLength"].as_u64().is_some_and(|m| n < m)
                || s["maxLength"].as_u64().is_some_and(|m| n > m)
            {
                out.push(format!("{at}: length {n} outside the documented bounds"));
            }
        }
        Value::Number(x) => {
            let x = x.as_f64().unwrap();
            if s["minimum"].as_f64().is_some_and(|m| x < m)
                || s["maximum"].as_f64().is_some_and(|m| x > m)
            {
                out.push(format!("{at}: {x} outside the documented bounds"));
            }
        }
        Value::Array(a) => {
            if s["maxItems"].as_u64().is_some_and(|m| a.len() as u64 > m) {
                out.push(format!("{at}: {} items, more than documented", a.len()));
            }
            if let Some(items) = s.get("items") {
                for (i, x) in a.iter().enumerate() {
                    check(doc, items, x, &format!("{at}[{i}]"), out);
                }
            }
        }
        Value::Object(o) => {
            for r in s["required"].as_array().into_iter().flatten() {
                let r = r.as_str().unwrap();
                if !o.contains_key(r) {
                    out.push(format!("{at}: required {r:?} is missing"));
                }
            }
            let props = s["properties"].as_object();
            for (k, x) in o {
                match props.and_then(|p| p.get(k)) {
                    Some(ps) => check(doc, ps, x, &format!("{at}.{k}"), out),
                    None => match s.get("additionalProperties") {
                        // Our own answers document every field they have.
                        None if props.is_some() => {
                            out.push(format!("{at}: {k:?} is not documented"))
                        }
                        Some(Value::Bool(false)) => {
                            out.push(format!("{at}: {k:?} is not documented"))
                        }
                        Some(extra @ Value::Object(_)) => {
                            check(doc, extra, x, &format!("{at}.{k}"), out)
                        }
                        _ => {}
                    },
                }
            }
        }
        _ => {}
    }
}

/// Every schema in `v` (recursively), with where it is.
fn walk_schemas<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
    out.push((at.clone(), v));
    for key in ["items", "additionalProperties"] {
        if let Some(x @ Value::Object(_)) = v.get(key) {
            walk_schemas(x, format!("{at}/{key}"), out);
        }
    }
    if let Some(p) = v["properties"].as_object() {
        for (k, x) in p {
            walk_schemas(x, format!("{at}/properties/{k}"), out);
        }
    }
    for (i, x) in v["oneOf"].as_array().into_iter().flatten().enumerate() {
        walk_schemas(x, format!("{at}/oneOf/{i}"), out);
    }
}

fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(o) => {
            if let Some(r) = o.get("$ref").and_then(Value::as_str) {
                out.push(r);
            }
            o.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn operations(doc: &Value) -> Vec<(&str, &str, &Value)> {
    let mut v = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                v.push((path.as_str(), *m, op));
            }
        }
    }
    v
}

/// Every problem code of the one table is in the document: in the Problem schema's `code`
/// enum (and nothing else is), and named in the description of its status's answers.
#[test]
fn every_problem_code_is_in_the_document() {
    use cityos_server::http::problems::Problem;
    let doc = document();
    let codes: Vec<&str> = Problem::ALL.iter().map(|p| p.code()).collect();
    let listed: Vec<&str> = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
        .as_array()
        .expect("the Problem schema lists its codes")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(listed, codes);
    let mut descriptions: HashMap<String, HashSet<String>> = HashMap::new();
    for (_, _, op) in operations(&doc) {
        for (status, r) in op["responses"].as_object().unwrap() {
            let status = if status == "default" { "500" } else { status };
            descriptions
                .entry(status.to_string())
                .or_default()
                .insert(r["description"].as_str().unwrap().to_string());
        }
    }
    for p in Problem::ALL {
        let status = p.status().as_u16().to_string();
        let named = format!("`{}`", p.code());
        let ds = descriptions.get(&status);
        assert!(
            ds.is_some_and(|ds| ds.iter().any(|d| d.contains(&named))),
            "{named} ({status}) is named in no answer of the document: {ds:?}"
        );
        // ... and only under its own status.
        for (other, ds) in &descriptions {
            if *other != status {
                assert!(
                    !ds.iter().any(|d| d.contains(&named)),
                    "{named} ({status}) is named under {other}"
                );
            }
        }
    }
}

#[test]
fn the_document_is_valid_openapi_3_1() {
    let doc = document();
    let mut bad = Vec::new();
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let mut ids = HashSet::new();
    for (path, method, op) in operations(&doc) {
        let at = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_default();
        if !ids.insert(id.to_string()) {
            bad.push(format!("{at}: operationId {id:?} is not unique"));
        }
        // Path parameters: exactly the path's {names}, each required.
        let in_path: Vec<&str> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|x| x.strip_suffix('}')))
            .collect();
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let declared: Vec<&Value> = params.iter().filter(|p| p["in"] == "path").collect();
        for name in &in_path {
            match declared.iter().find(|p| p["name"] == *name) {
                None => bad.push(format!("{at}: {{{name}}} is not declared")),
                Some(p) if p["required"] != true => {
                    bad.push(format!("{at}: {{{name}}} is not required"))
                }
                Some(_) => {}
            }
        }
        for p in &declared {
            if !in_path.contains(&p["name"].as_str().unwrap_or_default()) {
                bad.push(format!(
                    "{at}: path parameter {} is not in the path",
                    p["name"]
                ));
            }
        }
        let mut seen = HashSet::new();
        for p in &params {
            if !matches!(
                p["in"].as_str(),
                Some("path" | "query" | "header" | "cookie")
            ) || !p["schema"].is_object()
            {
                bad.push(format!("{at}: parameter {p} needs a place and a schema"));
            }
            if !seen.insert((p["in"].to_string(), p["name"].to_string())) {
                bad.push(format!("{at}: parameter {} twice", p["name"]));
            }
        }
        if let Some(b) = op.get("requestBody") {
            if b["content"].as_object().is_none_or(|c| c.is_empty()) {
                bad.push(format!("{at}: a request body without content"));
            }
        }
        let responses = op["responses"].as_object().unwrap();
        if !responses.keys().any(|k| k.starts_with('2')) {
            bad.push(format!("{at}: no success answer"));
        }
        for (status, r) in responses {
            if !r["description"].is_string() {
                bad.push(format!("{at} {status}: no description"));
            }
            let media: Vec<&String> = r["content"]
                .as_object()
                .map(|c| c.keys().collect())
                .unwrap_or_default();
            if (status == "204" || status == "304") && !media.is_empty() {
                bad.push(format!("{at} {status}: has a body"));
            }
            if (status.starts_with('4') || status.starts_with('5') || status == "default")
                && media != ["application/problem+json"]
            {
                bad.push(format!(
                    "{at} {status}: problems are application/problem+json, not {media:?}"
                ));
            }
            if status.starts_with('2') && status != "204" && media.is_empty() {
                bad.push(format!("{at} {status}: no media type"));
            }
        }
        match op["security"].as_array() {
            None => {}
            Some(s) => {
                for req in s.iter().filter_map(Value::as_object).flat_map(|o| o.keys()) {
                    if doc["components"]["securitySchemes"].get(req).is_none() {
                        bad.push(format!("{at}: security scheme {req} is not defined"));
                    }
                }
            }
        }
    }
    // The XML and stream endpoints say so.
    let media = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(media("/cap/feed.atom"), ["application/atom+xml"]);
    assert_eq!(media("/cap/alerts/{file}"), ["application/cap+xml"]);
    assert_eq!(media("/api/v1/events/stream"), ["text/event-stream"]);
    // Every $ref resolves.
    let mut rs = Vec::new();
    refs(&doc, &mut rs);
    for r in rs {
        let ok = r
            .strip_prefix("#/components/schemas/")
            .is_some_and(|n| doc["components"]["schemas"].get(n).is_some());
        if !ok {
            bad.push(format!("$ref {r} does not resolve"));
        }
    }
    // Every schema keeps to the keywords the checker understands.
    let mut all = Vec::new();
    for (name, s) in doc["components"]["schemas"].as_object().unwrap() {
        walk_schemas(s, format!("#/components/schemas/{name}"), &mut all);
    }
    for (path, method, op) in operations(&doc) {
        for (i, p) in op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            walk_schemas(
                &p["schema"],
                format!("{method} {path} parameter {i}"),
                &mut all,
            );
        }
        for (m, c) in op["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            walk_schemas(&c["schema"], format!("{method} {path} body {m}"), &mut all);
        }
    }
    for (at, s) in all {
        for k in s.as_object().into_iter().flat_map(|o| o.keys()) {
            if !KEYWORDS.contains(&k.as_str()) {
                bad.push(format!("{at}: keyword {k} is not checked"));
            }
        }
        for t in types(s) {
            if ![
                "null", "boolean", "integer", "number", "string", "array", "object",
            ]
            .contains(&t)
            {
                bad.push(format!("{at}: type {t}"));
            }
        }
        if s["required"].is_array() && !s["properties"].is_object() {
            bad.push(format!("{at}: required without properties"));
        }
        for r in s["required"].as_array().into_iter().flatten() {
            if s["properties"]
                .get(r.as_str().unwrap_or_default())
                .is_none()
            {
                bad.push(format!("{at}: required {r} is not a property"));
            }
        }
    }
    // The comma-separated states name every state there is.
    let pattern = doc["paths"]["/api/v1/cases"]["get"]["parameters"][0]["schema"]["pattern"]
        .as_str()
        .unwrap()
        .to_string();
    for st in cityos_core::State::ALL {
        assert!(
            pattern.contains(&format!("|{}|", st.as_str()))
                || pattern.contains(&format!("({}|", st.as_str()))
                || pattern.contains(&format!("|{})", st.as_str())),
            "{st:?}"
        );
    }
    // The table and the router agree: one operation per endpoint.
    assert_eq!(operations(&doc).len(), ENDPOINTS.len());
    assert!(
        bad.is_empty(),
        "the document is not valid:\n{}",
        bad.join("\n")
    );
}

/// Draws values from schemas: valid ones (with known-good values for names the service
/// must recognise, so that requests get past lookups), boundaries, and invalid ones.
struct Gen<'a> {
    rng: Rng,
    doc: &'a Value,
    hints: HashMap<&'static str, Vec<Value>>,
}

impl Gen<'_> {
    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.rng.below(xs.len() as u64) as usize].clone()
    }

    fn string(&mut self, min: usize, max: usize) -> String {
        const CHARS: &[char] = &[
            'a', 'b', 'z', '0', '7', '_', '-', ' ', '.', '城', '%', '/', '?', '&',
        ];
        let n = if self.rng.chance(0.3) {
            min
        } else {
            min + self.rng.below((max.min(min + 12) - min + 1) as u64) as usize
        };
        (0..n).map(|_| self.pick(CHARS)).collect()
    }

    fn valid(&mut self, s: &Value, name: &str, depth: usize) -> Value {
        let s = resolve(self.doc, s).clone();
        if let Some(h) = self.hints.get(name).cloned() {
            if self.rng.chance(0.7) {
                return self.pick(&h);
            }
        }
        if let Some(alts) = s["oneOf"].as_array() {
            let a = self.pick(alts);
            return self.valid(&a, name, depth);
        }
        if let Some(c) = s.get("const") {
            return c.clone();
        }
        if let Some(e) = s["enum"].as_array() {
            return self.pick(e);
        }
        let ts = types(&s);
        let t = match ts.as_slice() {
            [] => "string",
            [t] => t,
            many => {
                let non_null: Vec<&str> = many.iter().copied().filter(|t| *t != "null").collect();
                if self.rng.chance(0.2) || non_null.is_empty() {
                    "null"
                } else {
                    self.pick(&non_null)
                }
            }
        };
        match t {
            "null" => Value::Null,
            "boolean" => json!(self.rng.chance(0.5)),
            "integer" => {
                let lo = s["minimum"].as_i64().unwrap_or(-3);
                let hi = s["maximum"].as_i64().unwrap_or(lo.max(0) + 1_000);
                match self.rng.below(4) {
                    0 => json!(lo),
                    1 => json!(hi),
                    _ => json!(lo + self.rng.below((hi - lo + 1) as u64) as i64),
                }
            }
            "number" => {
                let lo = s["minimum"].as_f64().unwrap_or(-1e3);
                let hi = s["maximum"].as_f64().unwrap_or(1e6);
                json!(match self.rng.below(4) {
                    0 => lo,
                    1 => hi,
                    _ => self.rng.range_f64(lo, hi),
                })
            }
            "string" if s["format"] == "date-time" => {
                let day = 20 + self.rng.below(8);
                json!(format!(
                    "2026-11-{day}T{:02}:00:00+08:00",
                    self.rng.below(24)
                ))
            }
            "string" => {
                let min = s["minLength"].as_u64().unwrap_or(0) as usize;
                let max = s["maxLength"].as_u64().unwrap_or(40) as usize;
                json!(self.string(min, max))
            }
            "array" => {
                let max = s["maxItems"].as_u64().unwrap_or(3).min(3);
                let n = self.rng.below(max + 1);
                let items = s.get("items").cloned().unwrap_or(json!({}));
                json!((0..n)
                    .map(|_| self.valid(&items, name, depth + 1))
                    .collect::<Vec<_>>())
            }
            "object" => {
                let mut o = Map::new();
                let required: Vec<String> = s["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect();
                for (k, ps) in s["properties"].as_object().cloned().unwrap_or_default() {
                    if required.contains(&k) || (depth < 3 && self.rng.chance(0.5)) {
                        let v = self.valid(&ps, &k, depth + 1);
                        o.insert(k, v);
                    }
                }
                Value::Object(o)
            }
            _ => Value::Null,
        }
    }

    /// A value the schema refuses (or, where it refuses nothing, an odd valid one).
    fn invalid(&mut self, s: &Value, name: &str) -> Value {
        let s = resolve(self.doc, s).clone();
        let ts = types(&s);
        if s["oneOf"].is_array() {
            let mut v = self.valid(&s, name, 0);
            if let Some(o) = v.as_object_mut() {
                // Another action's field, or no action at all.
                if self.rng.chance(0.5) {
                    o.insert("comment".into(), json!("x"));
                    o.insert("reason".into(), json!(""));
                } else {
                    o.remove("action");
                }
            }
            return v;
        }
        if s["enum"].is_array() {
            return json!(self.pick(&["", "nope", "PENDING"]));
        }
        match ts.first().copied().unwrap_or("string") {
            "integer" => self.pick(&[
                json!(s["minimum"].as_i64().unwrap_or(0) - 1),
                json!(s["maximum"].as_i64().unwrap_or(1 << 40) + 1),
                json!(1.5),
                json!("x"),
                json!(-1),
            ]),
            "number" => self.pick(&[json!("x"), json!(true), json!(1e308), json!(-1e9)]),
            "boolean" => self.pick(&[json!("yes"), json!(1)]),
            "array" => {
                let n = s["maxItems"].as_u64().unwrap_or(3) + 1;
                let items = s.get("items").cloned().unwrap_or(json!({}));
                if self.rng.chance(0.5) {
                    json!((0..n)
                        .map(|_| self.valid(&items, name, 1))
                        .collect::<Vec<_>>())
                } else {
                    json!("not a list")
                }
            }
            "object" => {
                let mut v = self.valid(&s, name, 0);
                let o = v.as_object_mut().unwrap();
                match self.rng.below(3) {
                    0 => {
                        o.insert("unknown_field".into(), json!(1));
                    }
                    1 => {
                        if let Some(r) = s["required"].as_array().and_then(|r| r.first()) {
                            o.remove(r.as_str().unwrap());
                        }
                    }
                    _ => {
                        let props = s["properties"].as_object().cloned().unwrap_or_default();
                        if !props.is_empty() {
                            let keys: Vec<&String> = props.keys().collect();
                            let k = self.pick(&keys).clone();
                            let bad = self.invalid(&props[&k], &k);
                            o.insert(k, bad);
                        }
                    }
                }
                v
            }
            _ => {
                let max = s["maxLength"].as_u64().unwrap_or(300) as usize;
                self.pick(&[
                    json!(""),
                    json!(" "),
                    json!(7),
                    json!(Value::Null),
                    json!("x".repeat(max + 1)),
                    json!("%00\u{0}"),
                    json!("2026-13-45T99:00:00Z"),
                ])
            }
        }
    }
}

/// Checks an answer against its operation in the document: no 5xx, a documented status,
/// the documented media type, a JSON body that fits the schema. The status, or why not.
async fn judge(
    doc: &Value,
    op: &Value,
    resp: axum::response::Response,
) -> Result<u16, (u16, String)> {
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let fail = |e: String| Err((status, e));
    let Some(documented) = op["responses"]
        .get(status.to_string())
        .filter(|_| status < 500)
    else {
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        return fail(format!(
            "status {status} is not documented: {}",
            String::from_utf8_lossy(&body)
        ));
    };
    let content = documented["content"].as_object();
    if ct == "text/event-stream" {
        // A live stream does not end; its status and type are what can be checked.
        if content.is_none_or(|c| !c.contains_key("text/event-stream")) {
            return fail(format!("{status} text/event-stream is not documented"));
        }
        return Ok(status);
    }
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let Some(c) = content else {
        if !bytes.is_empty() {
            return fail(format!("{status} has a body where none is documented"));
        }
        return Ok(status);
    };
    let Some(m) = c.get(&ct) else {
        return fail(format!(
            "{status} answered {ct:?}, documented {:?}",
            c.keys().collect::<Vec<_>>()
        ));
    };
    if !ct.ends_with("json") {
        return Ok(status);
    }
    let v: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => return fail(format!("{status} {ct} is not JSON: {e}")),
    };
    let mut e = Vec::new();
    check(doc, &m["schema"], &v, "body", &mut e);
    if ct == "application/problem+json" && v["status"] != status {
        e.push(format!(
            "the problem's status {} is not {status}",
            v["status"]
        ));
    }
    if ct == "application/problem+json" {
        let named = format!("`{}`", v["code"].as_str().unwrap_or(""));
        if !documented["description"]
            .as_str()
            .is_some_and(|d| d.contains(&named))
        {
            e.push(format!(
                "the code {named} is not named in the {status} answer"
            ));
        }
    }
    if e.is_empty() {
        Ok(status)
    } else {
        fail(format!(
            "{status} does not fit its schema: {}",
            e.join("; ")
        ))
    }
}

/// A request known to succeed: (method, path template, URL, token, content type, body).
type Scripted<'a> = (&'a str, &'a str, String, &'a str, &'a str, Vec<u8>);

fn departments_hint(cfg: &cityos_engine::config::Config) -> String {
    cfg.taxonomy.departments[0].code.clone()
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn as_param(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_generated_from_the_document_get_documented_answers() {
    let t = TestApp::sqlite();
    t.seed().await;
    let admin = t.login("admin").await;
    let officer = t.login("li.tianping").await;
    // Mostly signed in (so that requests reach the handlers), sometimes anonymous or forged.
    let tokens: Vec<Option<String>> = vec![
        None,
        Some(admin.clone()),
        Some(admin.clone()),
        Some(admin.clone()),
        Some(officer.clone()),
        Some(officer.clone()),
        Some("v1.forged.token".into()),
    ];
    // Something to find: a case, and a photo.
    let [lon, lat] = spot("310104003", 0);
    let (s, rep) = t.post("/api/v1/reports", None, json!({"category": "manhole_cover_missing", "lon": lon, "lat": lat, "text": "路面破损"})).await;
    assert!(s.is_success(), "{rep}");
    let case_id = rep["case"]["id"].clone();
    let number = rep["case"]["number"].clone();
    let cfg = config();
    let district = cfg.territory.region(cfg.territory.root()).code.clone();
    let categories: Vec<Value> = cfg
        .taxonomy
        .categories
        .iter()
        .take(5)
        .map(|c| json!(c.code))
        .collect();
    let departments: Vec<Value> = cfg
        .taxonomy
        .departments
        .iter()
        .take(3)
        .map(|d| json!(d.code))
        .collect();
    let indicators: Vec<Value> = cfg.indicators.iter().map(|i| json!(i.code)).collect();
    let rules: Vec<Value> = cfg.alert_rules.iter().map(|r| json!(r.code)).collect();
    let doc = document();
    let mut g = Gen {
        // A fixed seed; CITYOS_OPENAPI_SEED explores others.
        rng: Rng::new(
            std::env::var("CITYOS_OPENAPI_SEED")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0x0a91_5eed),
        ),
        doc: &doc,
        hints: HashMap::from([
            (
                "id",
                vec![
                    json!(case_id.to_string()),
                    number.clone(),
                    json!("1"),
                    json!("2"),
                ],
            ),
            ("category", categories),
            ("lon", vec![json!(lon)]),
            ("lat", vec![json!(lat)]),
            ("region", vec![json!(district.clone()), json!("310104003")]),
            ("department", departments.clone()),
            ("owner", departments),
            ("code", indicators),
            ("rule", rules),
            ("username", vec![json!("admin"), json!("nobody")]),
            (
                "password",
                vec![json!(cityos_server::runtime::service::DEMO_PASSWORD)],
            ),
            (
                "name",
                vec![
                    json!("food_shops"),
                    json!("lone_elder_households"),
                    json!("manhole_cover"),
                ],
            ),
            ("file", vec![json!("nothing-here.xml")]),
            ("into", vec![case_id.clone()]),
            ("report", vec![json!(1)]),
            ("duration", vec![json!("2h")]),
            (
                "state",
                vec![json!("reported,filed"), json!("dispatched"), json!("")],
            ),
            ("domain", vec![json!("safety"), json!("market,livelihood")]),
            ("Idempotency-Key", vec![json!("k-1"), json!("k-2")]),
            ("step", vec![json!("5m"), json!("1h"), json!("7m")]),
            ("extra", vec![json!("2wd")]),
        ]),
    };
    let bodies: HashMap<&str, Vec<Vec<u8>>> = HashMap::from([
        ("application/x-ndjson", vec![
            b"{\"device\":\"WL-001\",\"metric\":\"depth_cm\",\"value\":3}\n{\"device\":\"WM-001\",\"metric\":\"flow_m3\",\"value\":0.01}".to_vec(),
            b"{\"device\":\"SM-001\",\"metric\":\"depth_cm\",\"value\":3}\nnot json\n".to_vec(),
            Vec::new(),
        ]),
        ("text/csv", vec![b"shop,street,licensed\nA,x,1\n".to_vec(), b"\"unterminated\n".to_vec(), Vec::new()]),
        ("image/png", vec![crate::open311::PNG.to_vec(), b"GIF89a".to_vec(), Vec::new()]),
        ("image/jpeg", vec![vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10], b"text".to_vec()]),
        ("image/webp", vec![b"RIFF\x10\0\0\0WEBPVP8 ".to_vec(), Vec::new()]),
    ]);
    let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut sent = 0;
    // First, requests known to succeed, so that every kind of success answer is checked.
    let op_of = |method: &str, path: &str| doc["paths"][path][method].clone();
    let case = case_id.to_string();
    let owner = departments_hint(&cfg);
    let manhole_next = cityos_engine::demo::SCENARIO_PACKS
        .iter()
        .find(|(f, _)| f.starts_with("manhole_cover"))
        .expect("the manhole pack")
        .1
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"");
    let scripted: Vec<Scripted> = vec![
        (
            "post",
            "/api/v1/cases/{id}/transitions",
            format!("/api/v1/cases/{case}/transitions"),
            &officer,
            "application/json",
            json!({"action": "file", "note": "立案"})
                .to_string()
                .into_bytes(),
        ),
        (
            "post",
            "/api/v1/cases/{id}/transitions",
            format!("/api/v1/cases/{case}/transitions"),
            &officer,
            "application/json",
            json!({"action": "dispatch", "version": null})
                .to_string()
                .into_bytes(),
        ),
        (
            "get",
            "/api/v1/cases/{id}",
            format!("/api/v1/cases/{case}"),
            &officer,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/cases",
            "/api/v1/cases?limit=1&state=dispatched".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/stats",
            "/api/v1/stats?domain=safety".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/inbox",
            "/api/v1/inbox".into(),
            &officer,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/locate",
            format!("/api/v1/locate?lon={lon}&lat={lat}"),
            "",
            "",
            Vec::new(),
        ),
        (
            "post",
            "/api/v1/indicators/{code}/values",
            "/api/v1/indicators/rainfall_mm_h/values".into(),
            &admin,
            "application/json",
            br#"{"value": 1.5}"#.to_vec(),
        ),
        (
            "get",
            "/api/v1/indicators/{code}/history",
            "/api/v1/indicators/rainfall_mm_h/history?step=1h".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "post",
            "/api/v1/datasets/{name}",
            format!("/api/v1/datasets/food_shops?owner={owner}&sensitivity=public"),
            &admin,
            "text/csv",
            b"shop,street\nA,x\n".to_vec(),
        ),
        (
            "post",
            "/api/v1/readings",
            "/api/v1/readings".into(),
            &admin,
            "application/x-ndjson",
            b"{\"device\":\"WL-001\",\"metric\":\"depth_cm\",\"value\":3}".to_vec(),
        ),
        (
            "post",
            "/api/v1/media",
            "/api/v1/media".into(),
            &admin,
            "image/png",
            crate::open311::PNG.to_vec(),
        ),
        (
            "post",
            "/api/v1/silences",
            "/api/v1/silences".into(),
            &admin,
            "application/json",
            json!({"rule": cfg.alert_rules[0].code, "reason": "drill", "duration": "1h"})
                .to_string()
                .into_bytes(),
        ),
        (
            "delete",
            "/api/v1/silences/{id}",
            "/api/v1/silences/1".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/scenarios",
            "/api/v1/scenarios".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/scenarios/{name}",
            "/api/v1/scenarios/flooding".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "post",
            "/api/v1/scenarios/{name}/disable",
            "/api/v1/scenarios/flooding/disable".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "post",
            "/api/v1/scenarios/{name}/enable",
            "/api/v1/scenarios/flooding/enable".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "put",
            "/api/v1/scenarios/{name}",
            "/api/v1/scenarios/manhole_cover".into(),
            &admin,
            "application/toml",
            manhole_next.clone().into_bytes(),
        ),
        (
            "get",
            "/api/v1/scenarios/{name}/audit",
            "/api/v1/scenarios/manhole_cover/audit".into(),
            &admin,
            "",
            Vec::new(),
        ),
        (
            "get",
            "/api/v1/events/stream",
            "/api/v1/events/stream?last_event_id=0".into(),
            &admin,
            "",
            Vec::new(),
        ),
    ];
    for (method, template, url, token, ct, body) in scripted {
        let mut b = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(&url)
            .header("host", "cityos.test");
        if !token.is_empty() {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        if !ct.is_empty() {
            b = b.header("content-type", ct);
        }
        let resp = router
            .clone()
            .oneshot(b.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        sent += 1;
        match judge(&doc, &op_of(method, template), resp).await {
            Ok(status) if (200..300).contains(&status) => {}
            Ok(status) => failures.push(format!("{method} {url}: {status}, expected success")),
            Err((_, e)) => failures.push(format!("{method} {url}: {e}")),
        }
    }
    let mut per_op: std::collections::BTreeMap<String, Vec<u16>> = Default::default();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for (path, method, op) in operations(&doc) {
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        for round in 0..12 {
            // Rounds 0–6 valid, 7–11 with one invalid part.
            let break_it = round >= 7;
            let mut url = path.to_string();
            let mut query = Vec::new();
            let mut headers: Vec<(String, String)> = Vec::new();
            let broken = if break_it {
                g.rng.below(params.len() as u64 + 1) as usize
            } else {
                usize::MAX
            };
            for (i, p) in params.iter().enumerate() {
                let name = p["name"].as_str().unwrap();
                let required = p["required"] == true;
                let v = if i == broken {
                    if !required && g.rng.chance(0.5) {
                        continue;
                    }
                    if required && p["in"] == "query" && g.rng.chance(0.3) {
                        continue;
                    } // omitted
                    g.invalid(&p["schema"], name)
                } else {
                    if !required && g.rng.chance(0.65) {
                        continue;
                    }
                    g.valid(&p["schema"], name, 0)
                };
                let text = as_param(&v);
                match p["in"].as_str().unwrap() {
                    "path" => {
                        url = url.replace(&format!("{{{name}}}"), &pct(&text.unwrap_or_default()))
                    }
                    "query" => {
                        if let Some(x) = text {
                            query.push(format!("{}={}", pct(name), pct(&x)))
                        }
                    }
                    "header" => {
                        if let Some(x) =
                            text.filter(|x| axum::http::HeaderValue::from_str(x).is_ok())
                        {
                            headers.push((name.to_string(), x))
                        }
                    }
                    _ => {}
                }
            }
            if !query.is_empty() {
                url = format!("{url}?{}", query.join("&"));
            }
            let token = g.pick(&tokens);
            let mut b = Request::builder()
                .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                .uri(&url)
                .header("host", "cityos.test");
            if let Some(tk) = &token {
                b = b.header("authorization", format!("Bearer {tk}"));
            }
            for (k, v) in &headers {
                b = b.header(k.as_str(), v.as_str());
            }
            let body = match op["requestBody"]["content"].as_object() {
                None => Vec::new(),
                Some(content) => {
                    let media: Vec<&String> = content.keys().collect();
                    let m = g.pick(&media).clone();
                    let ct = if break_it && broken == params.len() && g.rng.chance(0.3) {
                        "text/plain".to_string()
                    } else {
                        m.clone()
                    };
                    b = b.header("content-type", ct);
                    if m == "application/json" {
                        let s = &content[&m]["schema"];
                        let v = if break_it && broken == params.len() {
                            g.invalid(s, "")
                        } else {
                            g.valid(s, "", 0)
                        };
                        if break_it && g.rng.chance(0.1) {
                            b"{not json".to_vec()
                        } else {
                            v.to_string().into_bytes()
                        }
                    } else {
                        let options = bodies
                            .get(m.as_str())
                            .cloned()
                            .unwrap_or_else(|| vec![b"x".to_vec()]);
                        g.pick(&options)
                    }
                }
            };
            let req = b.body(Body::from(body)).unwrap();
            let what = format!(
                "{} {url} (token: {})",
                method.to_uppercase(),
                token.as_deref().map_or("none", |t| if t == admin {
                    "admin"
                } else if t.contains("forged") {
                    "forged"
                } else {
                    "officer"
                })
            );
            let status = match judge(&doc, op, router.clone().oneshot(req).await.unwrap()).await {
                Ok(status) => status,
                Err((status, e)) => {
                    failures.push(format!("{what}: {e}"));
                    status
                }
            };
            sent += 1;
            *by_status.entry(status).or_default() += 1;
            per_op
                .entry(op["operationId"].as_str().unwrap().to_string())
                .or_default()
                .push(status);
        }
    }
    eprintln!("{per_op:?}");
    eprintln!(
        "{sent} generated requests in {:?}; answers by status: {by_status:?}",
        started.elapsed()
    );
    assert!(
        by_status.keys().any(|s| (200..300).contains(s))
            && by_status.contains_key(&401)
            && by_status.contains_key(&404)
    );
    assert!(
        failures.is_empty(),
        "{} of {sent} answers disagree with the document:\n{}",
        failures.len(),
        failures[..failures.len().min(40)].join("\n")
    );
}
