//! The data end: datasets into the registry (bad rows named, good kept, rows never served),
//! and the lone-elder scenario pack joining the households with their water meters; its
//! open case is found again after a restart.

use crate::api_story;
use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::time::HOUR;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::Value;

const HOUSEHOLDS: &str = "household,address,community,meter,elder_alone\n\
H-001,\"天平路 1 弄 2 号, 301 室\",310104003001,WM-001,是\n\
H-002,天平路 3 号,310104003001,WM-002,1\n\
H-003,天平路 5 号,310104003001,WM-003,0\n\
H-004,只有两列\n";

async fn import(
    t: &TestApp,
    token: Option<&str>,
    path: &str,
    ct: &str,
    body: &str,
) -> (StatusCode, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (s, b, _) = t.raw_with(Method::POST, path, ct, body, &headers).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

api_story!(datasets_and_the_lone_elder_rule);
async fn datasets_and_the_lone_elder_rule(t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let zhao = t.login("zhao.inspector").await;
    let path =
        "/api/v1/datasets/lone_elder_households?owner=dist-civil-affairs&sensitivity=sensitive";
    // Who may import, and what is refused.
    assert_eq!(
        import(&t, None, path, "text/csv", HOUSEHOLDS).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        import(&t, Some(&zhao), path, "text/csv", HOUSEHOLDS)
            .await
            .0,
        StatusCode::FORBIDDEN
    );
    for (p, ct, needle, status) in [
        (
            "/api/v1/datasets/Bad?owner=dist-civil-affairs",
            "text/csv",
            "lowercase",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/datasets/x?owner=nobody",
            "text/csv",
            "unknown owner",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/datasets/x?owner=dist-civil-affairs&sensitivity=top",
            "text/csv",
            "sensitivity",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v1/datasets/x?owner=dist-civil-affairs",
            "text/plain",
            "text/csv",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
    ] {
        let (s, v) = import(&t, Some(&admin), p, ct, HOUSEHOLDS).await;
        assert_eq!(s, status, "{p}: {v}");
        assert!(v.to_string().contains(needle), "{p}: {v}");
    }
    let (s, v) = import(
        &t,
        Some(&admin),
        "/api/v1/datasets/x?owner=dist-civil-affairs",
        "application/json",
        "{\"a\":1}",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // The import: three good rows, the bad one named by its line.
    let (s, v) = import(&t, Some(&admin), path, "text/csv", HOUSEHOLDS).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["rows"], 3);
    assert_eq!(v["refused"][0]["line"], 5, "{v}");
    assert_eq!(v["columns"][3], "meter");
    assert!(
        v["scenarios"].as_array().unwrap().is_empty(),
        "no water history yet: {v}"
    );
    // A JSON dataset too; the registry lists both, never their rows.
    let (s, _) = import(
        &t,
        Some(&admin),
        "/api/v1/datasets/food_shops?owner=dist-market&sensitivity=public",
        "application/json",
        r#"[{"shop":"S1","licence":"A"},{"shop":"S2"},7]"#,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (_, reg) = t.get("/api/v1/datasets", Some(&admin)).await;
    let names: Vec<&str> = reg["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["food_shops", "lone_elder_households"]);
    assert_eq!(reg["datasets"][1]["sensitivity"], "sensitive");
    assert_eq!(reg["datasets"][0]["rows"], 2);
    assert!(
        !reg.to_string().contains("天平路"),
        "rows are not served: {reg}"
    );

    // Thirteen hours of meter readings: H-001's meter barely moves, H-002's does,
    // H-003's does not but H-003 does not live alone.
    let sensor = t.sign(&Principal {
        name: "meters".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    let auth = format!("Bearer {sensor}");
    for _ in 0..14 {
        let body = "{\"device\":\"WM-001\",\"metric\":\"flow_m3\",\"value\":0.0005}\n\
                    {\"device\":\"WM-002\",\"metric\":\"flow_m3\",\"value\":0.05}\n\
                    {\"device\":\"WM-003\",\"metric\":\"flow_m3\",\"value\":0}";
        let (s, b, _) = t
            .raw_with(
                Method::POST,
                "/api/v1/readings",
                "application/x-ndjson",
                body,
                &[("authorization", auth.as_str())],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        t.clock.advance(HOUR);
    }
    let state = t.svc.as_ref().unwrap().state.clone();
    let fired = crate::support::elder_hits(&state).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["place"], "WM-001", "{fired:?}");
    let number = fired[0]["case"].as_str().unwrap().to_string();
    let admin = t.login("admin").await; // a new session: fourteen hours have passed
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&admin))
        .await;
    assert_eq!(c["case"]["category"], "lone_elder_welfare_check", "{c}");
    assert_eq!(c["case"]["channel"], "data");
    let text = c.to_string();
    // The household is named; its address is personal data, shown as written only to the
    // command centres (the report's contact), never in the title or text.
    assert!(
        text.contains("H-001") && !text.contains("301 室"),
        "an administrator sees the household, not the address: {c}"
    );
    let officer = t.login("zhang.district").await;
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&officer))
        .await;
    let text = c.to_string();
    assert!(
        text.contains("301 室") && !c["case"]["title"].to_string().contains("301 室"),
        "the district officer sees the address as the contact, not in the title: {c}"
    );
    // While that case is open, no second one.
    assert_eq!(crate::support::elder_hits(&state).await.len(), 1);
}

api_story!(the_lone_elder_case_is_found_after_a_restart);
async fn the_lone_elder_case_is_found_after_a_restart(mut t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let path =
        "/api/v1/datasets/lone_elder_households?owner=dist-civil-affairs&sensitivity=sensitive";
    let (s, v) = import(&t, Some(&admin), path, "text/csv", HOUSEHOLDS).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sensor = t.sign(&Principal {
        name: "meters".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    // Thirteen quiet hours of H-001's meter (the hourly sums live in memory, so they
    // are sent again after the restart).
    quiet(&t, &sensor).await;
    let state = t.svc.as_ref().unwrap().state.clone();
    let fired = crate::support::elder_hits(&state).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0]["place"], "WM-001", "{fired:?}");

    t.restart();
    quiet(&t, &sensor).await;
    let state = t.svc.as_ref().unwrap().state.clone();
    assert!(
        crate::support::elder_hits(&state).await.is_empty(),
        "the household's case is still open: no second one"
    );
}

/// Fourteen hours of H-001's meter barely moving.
async fn quiet(t: &TestApp, sensor: &str) {
    let auth = format!("Bearer {sensor}");
    for _ in 0..14 {
        let body = "{\"device\":\"WM-001\",\"metric\":\"flow_m3\",\"value\":0.0005}";
        let (s, b, _) = t
            .raw_with(
                Method::POST,
                "/api/v1/readings",
                "application/x-ndjson",
                body,
                &[("authorization", auth.as_str())],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        t.clock.advance(HOUR);
    }
}
