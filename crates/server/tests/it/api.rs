//! The API as clients use it: sign-in, reports, the closed loop over HTTP, scopes,
//! idempotency, bad input, tokens, reference data, unknown query parameters.

use super::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::HOUR;
use serde_json::{json, Value};

/// A citizen's report; its text names the category and a few characters generated from
/// the place, so that reports at different places say different things (alike texts
/// nearby join one case as the same complaint, issue 14).
pub fn report(category: &str, p: [f64; 2]) -> Value {
    let mut r = cityos_core::rng::Rng::new(cityos_core::rng::fnv1a(
        format!("{category}{}{}", p[0], p[1]).as_bytes(),
    ));
    let words: String = (0..8)
        .map(|_| char::from_u32(0x4E00 + r.below(0x5000) as u32).unwrap())
        .collect();
    json!({"category": category, "lon": p[0], "lat": p[1], "text": format!("{category}：路口有问题，请处理（{words}）"), "contact": "13912345678"})
}

#[tokio::test]
async fn health_and_unknown_endpoints() {
    let t = TestApp::sqlite();
    let (s, v) = t.get("/healthz", None).await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v, h) = t.call(Method::GET, "/api/v1/nope", None, None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["code"], "no_such_endpoint");
    assert_eq!(h["content-type"], "application/problem+json");
}

#[tokio::test]
async fn sign_in_and_tokens() {
    let t = TestApp::sqlite();
    t.seed().await;
    let token = t.login("li.tianping").await;
    let (s, v) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "li.tianping", "password": "wrong"}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    let (s, v) = t
        .post(
            "/api/v1/auth/login",
            None,
            json!({"username": "nobody", "password": "x"}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("bad_credentials"))
    );
    // Listing needs a token; a forged one is refused.
    let (s, v) = t.get("/api/v1/cases", None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token"))
    );
    let mut forged = token.clone();
    let i = forged.len() - 3;
    forged.replace_range(i..i + 1, if &forged[i..i + 1] == "0" { "1" } else { "0" });
    let (s, v) = t.get("/api/v1/cases", Some(&forged)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
    let (s, _) = t.get("/api/v1/cases", Some("garbage")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = t.get("/api/v1/cases", Some(&token)).await;
    assert_eq!(s, StatusCode::OK);
    // Sessions expire.
    t.clock.advance(13 * HOUR);
    let (s, v) = t.get("/api/v1/cases", Some(&token)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("expired_token"))
    );
}

#[tokio::test]
async fn bad_bodies_get_problems() {
    let t = TestApp::sqlite();
    let cases: Vec<(Option<&str>, String, StatusCode, &str)> = vec![
        (
            Some("application/json"),
            "{not json".into(),
            StatusCode::BAD_REQUEST,
            "invalid_json",
        ),
        (
            Some("application/json"),
            r#"{"category":"noise","lon":"east","lat":31.2,"text":"x"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("application/json"),
            r#"{"category":"noise","lon":121.4,"lat":31.2,"text":"x","colour":"red"}"#.into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            Some("text/plain"),
            "{}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            None,
            "{}".into(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        ),
        (
            Some("application/json"),
            format!(r#"{{"text":"{}"}}"#, "x".repeat(70_000)),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
    ];
    for (ct, body, status, code) in cases {
        let mut b = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/reports");
        if let Some(ct) = ct {
            b = b.header("content-type", ct);
        }
        let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
        let resp =
            tower::ServiceExt::oneshot(router, b.body(axum::body::Body::from(body)).unwrap())
                .await
                .unwrap();
        assert_eq!(resp.status(), status, "{code}");
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["code"], code);
        assert_eq!(v["status"], status.as_u16());
        assert!(v["detail"].as_str().unwrap().len() > 10);
    }
    // Nothing was stored.
    let n = t
        .svc
        .as_ref()
        .unwrap()
        .state
        .0
        .reads
        .run(|s| s.counts())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.cases, 0);
}

crate::api_story!(reports_merge_and_retries_are_idempotent);
async fn reports_merge_and_retries_are_idempotent(t: TestApp) {
    let p = spot("310104003", 0);
    let (s, v) = t
        .post("/api/v1/reports", None, report("exposed_garbage", p))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["case"]["state"], "reported");
    assert_eq!(v["case"]["subdistrict"]["name_zh"], "天平路街道");
    assert_eq!(v["case"]["channel"], "citizen");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    // A second citizen reports the same problem: merged.
    let (s, v2) = t
        .post(
            "/api/v1/reports",
            None,
            report("exposed_garbage", [p[0] + 0.0001, p[1]]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v2["merged"], true);
    assert_eq!(v2["case"]["number"], number.as_str());
    // A retried POST with the same key returns the first answer and creates nothing.
    let body = report("noise", spot("310104003", 5));
    let (s1, a, _) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(body.clone()),
            &[("idempotency-key", "phone-42-1")],
        )
        .await;
    let (s2, b, h) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(body.clone()),
            &[("idempotency-key", "phone-42-1")],
        )
        .await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(a, b);
    assert_eq!(h["idempotent-replayed"], "true");
    let (s3, c, _) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(report("noise", spot("310104003", 9))),
            &[("idempotency-key", "phone-42-1")],
        )
        .await;
    assert_eq!(
        (s3, c["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("idempotency_key_reused")
        )
    );
    let n = t
        .svc
        .as_ref()
        .unwrap()
        .state
        .0
        .reads
        .run(|s| s.counts())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n.cases, 2, "one merged, one idempotent");
    // Bad reports.
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("exposed_garbage", [121.4737, 31.2304]),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("outside_territory"))
    );
    let (s, v) = t.post("/api/v1/reports", None, report("no_such", p)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_category"))
    );
    let (s, v) = t.post("/api/v1/reports", None, json!({"category": "noise", "lon": p[0], "lat": p[1], "text": "x", "channel": "sensor"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden")),
        "{v}"
    );
    // Citizens follow their case by number.
    let (s, v) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["case"]["state_name"], "待立案");
    assert!(v["case"].get("lon").is_none(), "the public view is reduced");
    // 预计完成: the whole case, later than the current step's (filing's) deadline — the
    // dispatch, handling, verifying and closing limits still to come, chained.
    let (due, done) = (
        v["case"]["due"].as_str().unwrap().to_string(),
        v["case"]["expected_done"].as_str().unwrap().to_string(),
    );
    let ms = |s: &str| cityos_core::time::parse_datetime(s).unwrap();
    assert!(
        ms(&done) - ms(&due) >= 14 * 3600 * 1000,
        "the whole case ({done}) well after the filing step ({due})"
    );
    let (s, _) = t.get("/api/v1/cases/1", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

pub async fn act(
    t: &TestApp,
    token: Option<&str>,
    number: &str,
    body: Value,
) -> (StatusCode, Value) {
    t.post(&format!("/api/v1/cases/{number}/transitions"), token, body)
        .await
}

crate::api_story!(the_closed_loop_over_http_with_scopes);
async fn the_closed_loop_over_http_with_scopes(t: TestApp) {
    t.seed().await;
    let (_, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("street_vending", spot("310104003", 1)),
        )
        .await;
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let report_token = v["report_token"].as_str().unwrap().to_string();
    let (_, other) = t
        .post(
            "/api/v1/reports",
            None,
            report("street_vending", spot("310104016", 1)),
        )
        .await;
    let other_number = other["case"]["number"].as_str().unwrap().to_string();
    let li = t.login("li.tianping").await;
    let wang = t.login("wang.urban").await;
    let zhao = t.login("zhao.inspector").await;
    let zhang = t.login("zhang.district").await;
    let chen = t.login("chen.roads").await;
    let sun = t.login("sun.analyst").await;
    // The sub-district officer sees her own sub-district only; the other case "does not exist".
    let (s, v) = t.get("/api/v1/cases", Some(&li)).await;
    assert_eq!(s, StatusCode::OK);
    let numbers: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec![number.as_str()]);
    assert_eq!(
        t.get(&format!("/api/v1/cases/{other_number}"), Some(&li))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    let (s, v) = act(&t, Some(&li), &other_number, json!({"action": "file"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    // The district sees both.
    let (_, v) = t.get("/api/v1/cases", Some(&zhang)).await;
    assert_eq!(v["cases"].as_array().unwrap().len(), 2);
    // Inbox: the officer has the new report waiting.
    let (_, v) = t.get("/api/v1/inbox", Some(&li)).await;
    assert_eq!(v["cases"][0]["number"], number.as_str());
    // File and dispatch.
    let (s, v) = act(
        &t,
        Some(&li),
        &number,
        json!({"action": "file", "note": "属实，立案"}),
    )
    .await;
    assert_eq!(
        (s, v["case"]["state"].as_str()),
        (StatusCode::OK, Some("filed")),
        "{v}"
    );
    let (s, v) = act(&t, Some(&li), &number, json!({"action": "dispatch"})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["case"]["tasks"][0]["department"],
        "sub-urban-mgmt-310104003"
    );
    // Wrong role, wrong state, wrong department.
    let (s, v) = act(&t, Some(&sun), &number, json!({"action": "close"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, v) = act(&t, Some(&li), &number, json!({"action": "close"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("transition_not_allowed"))
    );
    assert_eq!(
        t.get(&format!("/api/v1/cases/{number}"), Some(&chen))
            .await
            .0,
        StatusCode::NOT_FOUND,
        "another department"
    );
    let (s, v) = act(&t, Some(&li), &number, json!({"action": "teleport"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_action"))
    );
    // The department's handler sees it in the inbox and works it.
    let (_, v) = t.get("/api/v1/inbox", Some(&wang)).await;
    assert_eq!(v["cases"][0]["number"], number.as_str());
    for a in ["acknowledge", "start", "handle"] {
        let (s, v) = act(
            &t,
            Some(&wang),
            &number,
            json!({"action": a, "note": "处理中"}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{a}: {v}");
    }
    // Optimistic concurrency over HTTP.
    let (s, v) = act(
        &t,
        Some(&zhao),
        &number,
        json!({"action": "verify", "version": 1, "attachments": ["photo-1.jpg"]}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("version_conflict"))
    );
    let (s, v) = act(
        &t,
        Some(&zhao),
        &number,
        json!({"action": "verify", "attachments": ["photo-1.jpg"]}),
    )
    .await;
    assert_eq!(
        (s, v["case"]["state"].as_str()),
        (StatusCode::OK, Some("verified")),
        "{v}"
    );
    let (s, _) = act(&t, Some(&li), &number, json!({"action": "close"})).await;
    assert_eq!(s, StatusCode::OK);
    // The citizen rates it by number, without an account, with the filing's token.
    let (s, v) = act(
        &t,
        None,
        &number,
        json!({"action": "evaluate", "score": 5, "comment": "很快", "report_token": report_token}),
    )
    .await;
    assert_eq!(
        (s, v["case"]["state"].as_str()),
        (StatusCode::OK, Some("evaluated")),
        "{v}"
    );
    let (s, v) = act(&t, None, &number, json!({"action": "file"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    // The detail has the whole log; contacts are masked for non-officers.
    let (_, v) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
        .await;
    let actions: Vec<&str> = v["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "report",
            "file",
            "dispatch",
            "acknowledge",
            "start",
            "handle",
            "verify",
            "close",
            "evaluate"
        ]
    );
    assert_eq!(v["log"][6]["attachments"][0], "photo-1.jpg");
    assert_eq!(v["reports"][0]["contact"], "13912345678");
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&wang)).await;
    assert_eq!(v["reports"][0]["contact"], "******", "masked whole");
    // Stats, scoped.
    let (s, v) = t.get("/api/v1/stats", Some(&li)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["total"], 1);
    let (_, v) = t.get("/api/v1/stats", Some(&zhang)).await;
    assert_eq!(v["total"], 2);
    assert_eq!(v["today_intake"], 2);
    // Filters and their errors.
    let (s, v) = t
        .get(
            "/api/v1/cases?state=evaluated&sort=created&order=desc&limit=5",
            Some(&zhang),
        )
        .await;
    assert_eq!(
        (s, v["cases"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let (s, v) = t.get("/api/v1/cases?state=flying", Some(&zhang)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    let (s, _) = t.get("/api/v1/cases?limit=0", Some(&zhang)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t.get("/api/v1/cases?colour=red", Some(&zhang)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn reference_data() {
    let t = TestApp::sqlite();
    let (s, v) = t.get("/api/v1/locate?lon=121.4454&lat=31.2067", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["subdistrict"]["name_zh"], "天平路街道");
    assert!(v["grid"]["code"].as_str().unwrap().starts_with("310104003"));
    let (s, v) = t.get("/api/v1/locate?lon=121.4737&lat=31.2304", None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("outside_territory"))
    );
    let (s, _) = t.get("/api/v1/locate?lon=abc&lat=31", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v, h) = t
        .call(
            Method::GET,
            "/api/v1/regions?level=subdistrict",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "application/geo+json");
    assert_eq!(v["features"].as_array().unwrap().len(), 13);
    let (s, _) = t.get("/api/v1/regions?level=planet", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, v) = t.get("/api/v1/categories", None).await;
    assert!(v["categories"].as_array().unwrap().len() >= 60);
    let (_, v) = t.get("/api/v1/departments", None).await;
    assert!(v["departments"].as_array().unwrap().len() >= 20);
}

crate::api_story!(unknown_query_parameters_are_problems);
async fn unknown_query_parameters_are_problems(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    for path in [
        "/api/v1/cases?text=x",
        "/api/v1/regions?level=grid&colour=red",
    ] {
        let (s, v, h) = t
            .call(axum::http::Method::GET, path, Some(&zhang), None, &[])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(h["content-type"], "application/problem+json", "{path}");
        assert_eq!(v["code"], "invalid_parameter", "{path}: {v}");
        assert!(
            v["detail"].as_str().unwrap().contains("does not fit"),
            "{path}: {v}"
        );
    }
}
