//! The authorisation matrix: every endpoint × every kind of caller × inside/outside its
//! scope. Any leak (a case seen or changed outside a scope, an existence revealed) fails.

use super::support::{spot, TestApp};
use axum::http::StatusCode;
use cityos_core::Role;
use cityos_server::http::auth::{Principal, TokenKey};
use serde_json::{json, Value};

const U: StatusCode = StatusCode::UNAUTHORIZED;
const F: StatusCode = StatusCode::FORBIDDEN;
const N: StatusCode = StatusCode::NOT_FOUND;
const OK: StatusCode = StatusCode::OK;

/// (caller, GET A, GET B, list contains (A, B), acknowledge A, stats total)
type Row = (
    &'static str,
    StatusCode,
    StatusCode,
    Option<(bool, bool)>,
    StatusCode,
    Option<i64>,
);

crate::api_story!(every_endpoint_every_role_inside_and_outside_scope);
async fn every_endpoint_every_role_inside_and_outside_scope(t: TestApp) {
    t.seed().await;
    let mut tokens: Vec<(&str, Option<String>)> = vec![("anonymous", None)];
    for u in [
        "admin",
        "zhang.district",
        "li.tianping",
        "wang.urban",
        "chen.roads",
        "zhao.inspector",
        "sun.analyst",
    ] {
        tokens.push((u, Some(t.login(u).await)));
    }
    let machine = TokenKey::new([7; 32]).sign(&Principal {
        name: "gateway-1".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    tokens.push(("machine", Some(machine)));
    let tok = |name: &str| tokens.iter().find(|t| t.0 == name).unwrap().1.clone();
    // Case A in 天平路 (dispatched to its street squad), case B in 龙华.
    let zhao = tok("zhao.inspector");
    let (s, a) = t.post("/api/v1/reports", zhao.as_deref(), json!({"category": "street_vending", "lon": spot("310104003", 4)[0], "lat": spot("310104003", 4)[1], "text": "游商占道"})).await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    assert_eq!(
        a["case"]["state"], "dispatched",
        "inspector reports are dispatched at once"
    );
    let (_, b) = t.post("/api/v1/reports", None, json!({"category": "street_vending", "lon": spot("310104016", 4)[0], "lat": spot("310104016", 4)[1], "text": "游商占道"})).await;
    let (na, nb) = (
        a["case"]["number"].as_str().unwrap().to_string(),
        b["case"]["number"].as_str().unwrap().to_string(),
    );
    let (ida, idb) = (
        a["case"]["id"].as_i64().unwrap(),
        b["case"]["id"].as_i64().unwrap(),
    );

    // (caller, GET A, GET B, list contains (A, B), acknowledge A, stats total)
    let expect: Vec<Row> = vec![
        ("anonymous", U, U, None, U, None),
        ("admin", OK, OK, Some((true, true)), F, Some(2)),
        ("zhang.district", OK, OK, Some((true, true)), F, Some(2)),
        ("li.tianping", OK, N, Some((true, false)), F, Some(1)),
        ("wang.urban", OK, N, Some((true, false)), OK, Some(1)),
        ("chen.roads", N, N, Some((false, false)), N, Some(0)),
        ("zhao.inspector", OK, N, Some((true, false)), F, Some(1)),
        ("sun.analyst", OK, OK, Some((true, true)), F, Some(2)),
        // A machine token reaches only its channel's endpoints (see the test below).
        ("machine", F, F, None, F, None),
    ];
    for (who, get_a, get_b, listed, ack, total) in expect {
        let token = tok(who);
        let tk = token.as_deref();
        let denied = if who == "machine" { F } else { U };
        assert_eq!(
            t.get(&format!("/api/v1/cases/{ida}"), tk).await.0,
            get_a,
            "{who} GET A"
        );
        assert_eq!(
            t.get(&format!("/api/v1/cases/{idb}"), tk).await.0,
            get_b,
            "{who} GET B"
        );
        let (s, v) = t.get("/api/v1/cases", tk).await;
        match listed {
            None => assert_eq!(s, denied, "{who} list"),
            Some((la, lb)) => {
                assert_eq!(s, OK, "{who} list");
                let nums: Vec<&str> = v["cases"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["number"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    (nums.contains(&na.as_str()), nums.contains(&nb.as_str())),
                    (la, lb),
                    "{who} list {nums:?}"
                );
            }
        }
        // Acting on B outside the scope answers as if B did not exist.
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{nb}/transitions"),
                tk,
                json!({"action": "acknowledge"}),
            )
            .await;
        let outside = match who {
            "anonymous" => U,
            "li.tianping" | "wang.urban" | "chen.roads" | "zhao.inspector" => N,
            _ => F,
        };
        assert_eq!(s, outside, "{who} acts on B: {v}");
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{na}/transitions"),
                tk,
                json!({"action": "acknowledge"}),
            )
            .await;
        assert_eq!(s, ack, "{who} acknowledges A: {v}");
        let (s, v) = t.get("/api/v1/stats", tk).await;
        match total {
            None => assert_eq!(s, denied),
            Some(0) => assert!(s == OK || s == F, "{who} stats {s}"),
            Some(n) => assert_eq!((s, v["total"].as_i64()), (OK, Some(n)), "{who} stats"),
        }
        let (s, _) = t.get("/api/v1/inbox", tk).await;
        let inbox = match who {
            "anonymous" => U,
            "machine" => F,
            _ => OK,
        };
        assert_eq!(s, inbox, "{who} inbox");
        // Reference data is public.
        for path in [
            "/api/v1/categories",
            "/api/v1/departments",
            "/api/v1/regions",
            "/api/v1/locate?lon=121.4454&lat=31.2067",
            "/healthz",
            "/api/openapi.json",
        ] {
            assert_eq!(t.get(path, tk).await.0, OK, "{who} {path}");
        }
    }
    // Reports: analysts and administrators do not file them; everyone else may.
    for (who, token) in &tokens {
        let tk = token.as_deref();
        let who = *who;
        let (s, v) = t
            .post(
                "/api/v1/reports",
                tk,
                json!({"category": "noise", "lon": 121.4454, "lat": 31.2067, "text": "噪声"}),
            )
            .await;
        let want = match who {
            "admin" | "sun.analyst" => F,
            _ => s, // created or merged
        };
        assert_eq!(s, want, "{who} report: {v}");
        assert!(
            s == F || s == OK || s == StatusCode::CREATED,
            "{who} report: {s} {v}"
        );
    }
    // An expired or foreign-key token is refused everywhere that needs one.
    let foreign = TokenKey::new([9; 32]).sign(&Principal {
        name: "x".into(),
        role: Role::DistrictOfficer,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    for path in [
        "/api/v1/cases",
        "/api/v1/stats",
        "/api/v1/inbox",
        "/api/v1/events/stream",
    ] {
        let (s, v): (StatusCode, Value) = t.get(path, Some(&foreign)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (U, Some("invalid_token")),
            "{path}"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_every_route() {
    let t = TestApp::sqlite();
    let (s, doc) = t.get("/api/openapi.json", None).await;
    assert_eq!(s, OK);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for required in [
        "/api/v1/reports",
        "/api/v1/cases",
        "/api/v1/cases/{id}",
        "/api/v1/cases/{id}/transitions",
        "/api/v1/regions",
        "/api/v1/locate",
        "/api/v1/categories",
        "/api/v1/departments",
        "/api/v1/stats",
        "/api/v1/inbox",
        "/healthz",
        "/api/openapi.json",
        "/api/v1/events/stream",
        "/api/v1/auth/login",
    ] {
        assert!(paths.contains_key(required), "{required} is documented");
    }
    // Every $ref resolves; every operation has an id and a problem response.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name: String = part.chars().take_while(|c| c.is_alphanumeric()).collect();
        assert!(schemas.contains_key(&name), "unresolved $ref {name}");
    }
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["operationId"].is_string(), "{method} {path}");
            assert!(op["responses"]["default"].is_object(), "{method} {path}");
            // The documented route exists (is not the fallback).
            let concrete = path.replace("{id}", "1");
            let m = method.to_uppercase().parse::<axum::http::Method>().unwrap();
            let (_, v, _) = t
                .call(
                    m,
                    &concrete,
                    None,
                    (method == "post").then(|| json!({})),
                    &[],
                )
                .await;
            assert_ne!(v["code"], "no_such_endpoint", "{method} {path} is routed");
        }
    }
    // One body shape per action (each with its own fields), covering every action.
    let actions: std::collections::BTreeSet<&str> = doc["components"]["schemas"]["TransitionIn"]
        ["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["properties"]["action"]["const"].as_str().unwrap())
        .collect();
    let rules: std::collections::BTreeSet<&str> = cityos_core::workflow::RULES
        .iter()
        .map(|r| r.action)
        .collect();
    assert_eq!(actions, rules);
}

crate::api_story!(machine_tokens_reach_only_their_channel_and_scope);
async fn machine_tokens_reach_only_their_channel_and_scope(t: TestApp) {
    use axum::http::Method;
    t.seed().await;
    let p = spot("310104003", 6);
    let (s, c) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let (n, id) = (
        c["case"]["number"].as_str().unwrap().to_string(),
        c["case"]["id"].as_i64().unwrap(),
    );
    let (_, c2) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0] + 0.01, "lat": p[1], "text": "游商"}),
        )
        .await;
    let other = c2["case"]["id"].as_i64().unwrap();
    let token = |channel: &str, scope: Option<&str>| {
        t.sign(&Principal {
            name: format!("{channel}-1"),
            role: Role::System,
            department: None,
            scope: scope.map(str::to_string),
            channel: Some(channel.into()),
            expires_at: i64::MAX,
        })
    };
    let transitions = format!("/api/v1/cases/{n}/transitions");
    // (method, path, content type, body) of every endpoint a machine might try.
    let calls: Vec<(Method, String, &str, String)> = vec![
        (Method::GET, "/api/v1/cases".into(), "", String::new()),
        (Method::GET, format!("/api/v1/cases/{n}"), "", String::new()),
        (
            Method::GET,
            format!("/api/v1/cases/{id}"),
            "",
            String::new(),
        ),
        (Method::GET, "/api/v1/stats".into(), "", String::new()),
        (Method::GET, "/api/v1/inbox".into(), "", String::new()),
        (
            Method::GET,
            "/api/v1/events/stream".into(),
            "",
            String::new(),
        ),
        (Method::GET, "/api/v1/map".into(), "", String::new()),
        (Method::GET, "/api/v1/indicators".into(), "", String::new()),
        (Method::GET, "/api/v1/alerts".into(), "", String::new()),
        (Method::GET, "/api/v1/silences".into(), "", String::new()),
        (
            Method::POST,
            transitions.clone(),
            "application/json",
            json!({"action": "file"}).to_string(),
        ),
        (
            Method::POST,
            transitions.clone(),
            "application/json",
            json!({"action": "merge", "into": other}).to_string(),
        ),
        (
            Method::POST,
            transitions.clone(),
            "application/json",
            json!({"action": "close"}).to_string(),
        ),
        (
            Method::POST,
            transitions.clone(),
            "application/json",
            json!({"action": "note", "note": "x"}).to_string(),
        ),
        (
            Method::POST,
            "/api/v1/readings".into(),
            "application/x-ndjson",
            "{\"device\":\"WL-001\",\"metric\":\"depth_cm\",\"value\":1}".into(),
        ),
        (
            Method::GET,
            "/api/v1/readings/stats".into(),
            "",
            String::new(),
        ),
        (
            Method::POST,
            "/api/v1/datasets/probe?owner=dist-market".into(),
            "text/csv",
            "a,b\n1,2\n".into(),
        ),
        (Method::GET, "/api/v1/datasets".into(), "", String::new()),
    ];
    // What each channel may reach: the rest answers 403.
    let allowed = |channel: &str, path: &str| match channel {
        "sensor" => path.starts_with("/api/v1/readings"),
        "data" => path.starts_with("/api/v1/datasets"),
        _ => false,
    };
    for channel in ["sensor", "data", "weather"] {
        let tk = token(channel, None);
        let auth = format!("Bearer {tk}");
        for (m, path, ct, body) in &calls {
            let (s, b, _) = t
                .raw_with(
                    m.clone(),
                    path,
                    ct,
                    body,
                    &[("authorization", auth.as_str())],
                )
                .await;
            if allowed(channel, path) {
                assert_eq!(s, OK, "{channel} {m} {path}: {b}");
            } else {
                assert_eq!(s, F, "{channel} {m} {path}: {b}");
            }
        }
        // Reports on its own channel only, never as a citizen.
        let report = |ch: Option<&str>| {
            let mut r =
                json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "报警"});
            if let Some(ch) = ch {
                r["channel"] = json!(ch);
            }
            r
        };
        let (s, v) = t
            .post("/api/v1/reports", Some(&tk), report(Some("citizen")))
            .await;
        assert_eq!(s, F, "{channel} files a citizen report: {v}");
        if channel != "weather" {
            let cat = if channel == "sensor" {
                "road_damage"
            } else {
                "exposed_garbage"
            };
            let mut r = report(None);
            r["category"] = json!(cat);
            let (s, v) = t.post("/api/v1/reports", Some(&tk), r).await;
            assert_eq!(s, StatusCode::CREATED, "{channel}: {v}");
            assert_eq!(v["case"]["channel"], channel, "{v}");
        }
    }
    // The stated scope: a token confined to 龙华 reports only there.
    let scoped = token("sensor", Some("310104016"));
    let (s, v) = t
        .post(
            "/api/v1/reports",
            Some(&scoped),
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "报警"}),
        )
        .await;
    assert_eq!(s, F, "outside its scope: {v}");
    let q = spot("310104016", 1);
    let (s, v) = t
        .post(
            "/api/v1/reports",
            Some(&scoped),
            json!({"category": "street_vending", "lon": q[0], "lat": q[1], "text": "报警"}),
        )
        .await;
    assert!(s == OK || s == StatusCode::CREATED, "inside its scope: {v}");
    // Readings too: a gateway confined to 天平路 sends only its devices' readings.
    let here = cityos_core::Level::ALL;
    let cfg = super::support::config();
    let region_of = |d: &cityos_core::sensing::Device| {
        let chain = cfg.territory.locate(d.lon, d.lat).unwrap();
        here.iter()
            .filter_map(|l| chain.at(*l))
            .map(|id| cfg.territory.region(id).code.clone())
            .collect::<Vec<_>>()
    };
    let inside = cfg
        .sensing
        .devices
        .iter()
        .find(|d| region_of(d).contains(&"310104003".to_string()))
        .unwrap();
    let outside = cfg
        .sensing
        .devices
        .iter()
        .find(|d| !region_of(d).contains(&"310104003".to_string()))
        .unwrap();
    let gw = format!("Bearer {}", token("sensor", Some("310104003")));
    for (d, want) in [(inside, OK), (outside, F)] {
        let line = format!("{{\"device\":\"{}\",\"metric\":\"x\",\"value\":1}}", d.id);
        let (s, b, _) = t
            .raw_with(
                Method::POST,
                "/api/v1/readings",
                "application/x-ndjson",
                &line,
                &[("authorization", gw.as_str())],
            )
            .await;
        assert_eq!(s, want, "{}: {b}", d.id);
    }
    // Open311 does not take a machine token as a citizen app's api_key.
    let form = format!(
        "api_key={}&service_code=street_vending&lat={}&long={}&description=x",
        token("sensor", None),
        p[1],
        p[0]
    );
    let (s, b, _) = t
        .raw(
            Method::POST,
            "/open311/v2/requests.json",
            "application/x-www-form-urlencoded",
            &form,
            None,
        )
        .await;
    assert_eq!(s, F, "{b}");
    // Nothing the machines tried changed the citizen's case.
    let admin = t.login("admin").await;
    let (_, v) = t.get(&format!("/api/v1/cases/{n}"), Some(&admin)).await;
    assert_eq!(v["case"]["state"], "reported", "{v}");
    assert_eq!(v["log"].as_array().unwrap().len(), 1, "{v}");
}
