//! Privacy and access: non-public cases stay out of public views (Open311, the anonymous
//! case view), only the reporter (or staff) rates a case, anonymous lookups, anonymous
//! reports (one limit for Open311 and `/api/v1/reports`) and failed sign-ins (also in
//! parallel) are throttled, personal data in free text is masked for the public and
//! cannot be searched back out of masked titles, anonymous callers' idempotency keys are
//! per address and report-token tags are compared whole, the vital signs, alerts and
//! datasets are for staff only (not the citizen role), alerts are scoped and show only
//! cases the caller may see, and the web pages' session cookie with
//! its CSRF rule and security headers.

use crate::api_story;
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::{HOUR, MINUTE};
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use cityos_server::runtime::service::DEMO_PASSWORD;
use serde_json::{json, Value};

fn machine(t: &TestApp, channel: &str, scope: Option<&str>) -> String {
    t.sign(&Principal {
        name: format!("{channel}-gateway"),
        role: Role::System,
        department: None,
        scope: scope.map(str::to_string),
        channel: Some(channel.into()),
        expires_at: i64::MAX,
    })
}

async fn send(t: &TestApp, token: &str, path: &str, ct: &str, body: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let (s, b, _) = t
        .raw_with(Method::POST, path, ct, body, &[("authorization", &auth)])
        .await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

/// A welfare-check case raised by the data end (the household's address in its text).
async fn welfare_case(t: &TestApp) -> String {
    let admin = t.login("admin").await;
    let households = "household,address,community,meter,elder_alone\n\
                      H-007,衡山路 283 弄 28 号,310104003001,WM-001,是\n";
    let (s, v) = send(
        t,
        &admin,
        "/api/v1/datasets/lone_elder_households?owner=dist-civil-affairs&sensitivity=sensitive",
        "text/csv",
        households,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sensor = machine(t, "sensor", None);
    for _ in 0..14 {
        let (s, v) = send(
            t,
            &sensor,
            "/api/v1/readings",
            "application/x-ndjson",
            "{\"device\":\"WM-001\",\"metric\":\"flow_m3\",\"value\":0}",
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        t.clock.advance(HOUR);
    }
    let state = t.svc.as_ref().unwrap().state.clone();
    let fired = crate::support::elder_hits(&state).await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    fired[0]["case"].as_str().unwrap().to_string()
}

/// A sensor case: a manhole cover tilts.
async fn sensor_case(t: &TestApp) -> String {
    let sensor = machine(t, "sensor", None);
    let (s, v) = send(
        t,
        &sensor,
        "/api/v1/readings",
        "application/x-ndjson",
        "{\"device\":\"MH-001\",\"metric\":\"tilt_deg\",\"value\":40}",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["alarms"][0]["case"].as_str().unwrap().to_string()
}

api_story!(non_public_cases_answer_like_missing_ones);
async fn non_public_cases_answer_like_missing_ones(t: TestApp) {
    t.seed().await;
    let cfg = crate::support::config();
    for code in [
        "lone_elder_welfare_check",
        "manhole_cover_tilt_alarm",
        "crowd_overlimit",
    ] {
        assert!(!cfg.taxonomy.category(code).unwrap().public, "{code}");
    }
    assert!(cfg.taxonomy.category("street_vending").unwrap().public);
    let welfare = welfare_case(&t).await;
    let sensor = sensor_case(&t).await;
    // Citizens cannot file into a non-public category (the answer would show the case
    // their report joined).
    let wm = [121.456286, 31.192528];
    for category in ["lone_elder_welfare_check", "manhole_cover_tilt_alarm"] {
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                json!({"category": category, "lon": wm[0], "lat": wm[1], "text": "x"}),
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("category_not_public")
            ),
            "{v}"
        );
        assert!(!v.to_string().contains("H-007"));
    }
    let admin = t.login("admin").await;
    for number in [&welfare, &sensor] {
        // Staff see it ...
        let (s, _) = t
            .get(&format!("/api/v1/cases/{number}"), Some(&admin))
            .await;
        assert_eq!(s, StatusCode::OK);
        // ... the public does not, exactly as if it did not exist.
        let (s, v) = t.get(&format!("/api/v1/cases/{number}"), None).await;
        let (s2, v2) = t.get("/api/v1/cases/XH209901010001", None).await;
        assert_eq!((s, &v), (s2, &v2), "{number} answers like a missing case");
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, body, _) = t
            .raw(
                Method::GET,
                &format!("/open311/v2/requests/{number}.json"),
                "",
                "",
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    }
    for path in [
        "/open311/v2/requests.json?service_code=lone_elder_welfare_check",
        "/open311/v2/requests.json",
        "/open311/v2/requests.xml",
        &format!("/open311/v2/requests.json?service_request_id={welfare},{sensor}"),
    ] {
        let (_, body, _) = t.raw(Method::GET, path, "", "", None).await;
        for secret in ["H-007", "衡山路", "用水", welfare.as_str(), sensor.as_str()] {
            assert!(!body.contains(secret), "{path} shows {secret}: {body}");
        }
    }
}

api_story!(only_the_reporter_or_staff_rate_a_case);
async fn only_the_reporter_or_staff_rate_a_case(t: TestApp) {
    t.seed().await;
    let p = spot("310104003", 2);
    let file =
        |text: &str| json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": text});
    let (s, mine) = t.post("/api/v1/reports", None, file("游商占道")).await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let number = mine["case"]["number"].as_str().unwrap().to_string();
    let token = mine["report_token"].as_str().unwrap().to_string();
    // Another citizen's report elsewhere: its token is not a key to this case.
    let q = spot("310104016", 2);
    let (_, theirs) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": q[0], "lat": q[1], "text": "游商"}),
        )
        .await;
    let other_token = theirs["report_token"].as_str().unwrap().to_string();
    // Close the case through the loop.
    let li = t.login("li.tianping").await;
    let wang = t.login("wang.urban").await;
    let zhao = t.login("zhao.inspector").await;
    for (tok, body) in [
        (&li, json!({"action": "file"})),
        (&li, json!({"action": "dispatch"})),
        (&wang, json!({"action": "acknowledge"})),
        (&wang, json!({"action": "start"})),
        (&wang, json!({"action": "handle", "note": "已处理"})),
        (
            &zhao,
            json!({"action": "verify", "attachments": ["photo.jpg"]}),
        ),
        (&li, json!({"action": "close"})),
    ] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{number}/transitions"),
                Some(tok),
                body,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let rate = |extra: Value| {
        let mut b = json!({"action": "evaluate", "score": 1});
        if let Value::Object(m) = extra {
            b.as_object_mut().unwrap().extend(m);
        }
        b
    };
    let path = format!("/api/v1/cases/{number}/transitions");
    let (s, v) = t.post(&path, None, rate(json!({}))).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_token")),
        "{v}"
    );
    let (s, v) = t
        .post(&path, None, rate(json!({"report_token": other_token})))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = t
        .post(
            &path,
            None,
            rate(json!({"report_token": "1-0000000000000000"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (_, c) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_eq!(c["case"]["state"], "closed", "nothing changed: {c}");
    let (s, v) = t
        .post(
            &path,
            None,
            rate(json!({"report_token": token, "score": 4})),
        )
        .await;
    assert_eq!(
        (s, v["case"]["state"].as_str()),
        (StatusCode::OK, Some("evaluated")),
        "{v}"
    );
    assert_eq!(v["case"]["evaluation"], 4);
    // Anonymous lookups by number are limited per address, with Retry-After.
    let mut last = (StatusCode::OK, None);
    for _ in 0..cityos_server::PUBLIC_LOOKUPS + 1 {
        let (s, v, h) = t
            .call(
                Method::GET,
                &format!("/api/v1/cases/{number}"),
                None,
                None,
                &[],
            )
            .await;
        last = (
            s,
            h.get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        );
        if s != StatusCode::OK {
            assert_eq!(v["code"], "too_many_requests", "{v}");
            break;
        }
    }
    assert_eq!(last.0, StatusCode::TOO_MANY_REQUESTS);
    let secs: u64 = last.1.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&secs));
    // Staff are not limited; a minute later the public may look again.
    assert_eq!(
        t.get(&format!("/api/v1/cases/{number}"), Some(&li)).await.0,
        StatusCode::OK
    );
    t.clock.advance(MINUTE);
    assert_eq!(
        t.get(&format!("/api/v1/cases/{number}"), None).await.0,
        StatusCode::OK
    );
}

api_story!(personal_data_is_masked_in_public_views);
async fn personal_data_is_masked_in_public_views(t: TestApp) {
    t.seed().await;
    let p = spot("310104003", 3);
    let text = "楼下游商占道，联系人张三 13812345678，邮箱 zhangsan@example.com，身份证 310104198001011234";
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": text, "contact": "张三"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let secrets = ["13812345678", "zhangsan@example.com", "310104198001011234"];
    let shows = |body: &str| secrets.iter().filter(|s| body.contains(*s)).count();
    // The anonymous case view and Open311 (JSON and XML, single and list).
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_eq!(shows(&v.to_string()), 0, "{v}");
    assert!(v["case"]["title"].as_str().unwrap().contains("游商"), "{v}");
    for path in [
        format!("/open311/v2/requests/{number}.json"),
        format!("/open311/v2/requests/{number}.xml"),
        "/open311/v2/requests.json".to_string(),
        "/open311/v2/requests.xml".to_string(),
    ] {
        let (s, body, _) = t.raw(Method::GET, &path, "", "", None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert!(body.contains(&number), "{path}: {body}");
        assert_eq!(shows(&body), 0, "{path}: {body}");
    }
    // Staff: the officer sees everything; others see the text masked and no contact.
    let li = t.login("li.tianping").await;
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&li)).await;
    assert_eq!(v["reports"][0]["text"], text);
    assert_eq!(v["reports"][0]["contact"], "张三");
    assert!(v["case"]["title"].as_str().unwrap().contains("13812345678"));
    let zhao = t.login("zhao.inspector").await;
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&zhao)).await;
    assert_eq!(shows(&v.to_string()), 0, "{v}");
    let (_, list) = t.get("/api/v1/cases", Some(&zhao)).await;
    assert_eq!(shows(&list.to_string()), 0, "{list}");
    assert_eq!(
        v["reports"][0]["contact"], "******",
        "a short contact is masked whole"
    );
}

api_story!(text_search_cannot_recover_masked_numbers);
async fn text_search_cannot_recover_masked_numbers(t: TestApp) {
    t.seed().await;
    let p = spot("310104003", 4);
    let text = "井盖缺失，联系人 13812345678";
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": text}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let numbers = |v: &Value| -> Vec<String> {
        v["cases"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| c["number"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    // Whoever sees titles masked may not search digits or @ (a substring search would
    // tell the masked number digit by digit) — in the list and in the statistics.
    for user in ["wang.urban", "zhao.inspector", "sun.analyst", "admin"] {
        let tok = t.login(user).await;
        for q in [
            "138",
            "1381234",
            "%40",
            "%EF%BC%A0",
            "%EF%BC%91%EF%BC%93",
            "%E8%81%94%E7%B3%BB%E4%BA%BA+13",
        ] {
            for path in ["/api/v1/cases", "/api/v1/stats"] {
                let (s, v) = t.get(&format!("{path}?q={q}"), Some(&tok)).await;
                assert_eq!(
                    (s, v["code"].as_str()),
                    (StatusCode::BAD_REQUEST, Some("invalid_parameter")),
                    "{user} {path}?q={q}: {v}"
                );
                assert!(v["detail"].as_str().unwrap().contains("case number"), "{v}");
            }
        }
        // Words and the exact case number are still searched.
        let (s, v) = t
            .get(&format!("/api/v1/cases?q={number}"), Some(&tok))
            .await;
        assert_eq!(s, StatusCode::OK, "{user}: {v}");
        let (s, v) = t
            .get("/api/v1/stats?q=%E4%BA%95%E7%9B%96", Some(&tok))
            .await;
        assert_eq!(s, StatusCode::OK, "{user}: {v}");
    }
    for user in ["zhao.inspector", "sun.analyst"] {
        let tok = t.login(user).await;
        let (_, v) = t
            .get(&format!("/api/v1/cases?q={number}"), Some(&tok))
            .await;
        assert_eq!(numbers(&v), vec![number.clone()], "{user}: {v}");
        let (_, v) = t
            .get("/api/v1/cases?q=%E4%BA%95%E7%9B%96", Some(&tok))
            .await;
        assert_eq!(numbers(&v), vec![number.clone()], "{user}: {v}");
    }
    // The command-centre officers see titles whole, so their search is whole too.
    for user in ["li.tianping", "zhang.district"] {
        let tok = t.login(user).await;
        let (s, v) = t.get("/api/v1/cases?q=138", Some(&tok)).await;
        assert_eq!(s, StatusCode::OK, "{user}: {v}");
        assert_eq!(numbers(&v), vec![number.clone()], "{user}: {v}");
        let (s, v) = t.get("/api/v1/stats?q=138", Some(&tok)).await;
        assert_eq!(s, StatusCode::OK, "{user}: {v}");
    }
}

/// Signs in with `password` from `peer`; (status, code, Retry-After, Set-Cookie).
async fn sign_in(
    t: &TestApp,
    user: &str,
    password: &str,
    peer: &str,
) -> (StatusCode, Value, Option<String>, Option<String>) {
    let body = json!({"username": user, "password": password}).to_string();
    let (s, b, h) = t
        .raw(
            Method::POST,
            "/api/v1/auth/login",
            "application/json",
            &body,
            Some(peer.parse().unwrap()),
        )
        .await;
    let get = |k: &str| h.get(k).map(|v| v.to_str().unwrap().to_string());
    (
        s,
        serde_json::from_str(&b).unwrap_or(Value::Null),
        get("retry-after"),
        get("set-cookie"),
    )
}

api_story!(failed_sign_ins_are_throttled_per_account_and_address);
async fn failed_sign_ins_are_throttled_per_account_and_address(t: TestApp) {
    t.seed().await;
    let a = "10.0.0.1:1000";
    for _ in 0..cityos_server::LOGIN_FAILURES {
        let (s, v, _, _) = sign_in(&t, "li.tianping", "wrong", a).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    }
    // Locked: even the right password, and from another address.
    for peer in [a, "10.0.0.2:1000"] {
        let (s, v, retry, cookie) = sign_in(&t, "li.tianping", DEMO_PASSWORD, peer).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::TOO_MANY_REQUESTS, Some("too_many_attempts")),
            "{v}"
        );
        let secs: i64 = retry.expect("Retry-After").parse().unwrap();
        assert!((1..=15 * 60).contains(&secs), "{secs}");
        assert!(cookie.is_none());
    }
    // Other accounts are not slowed.
    assert_eq!(
        sign_in(&t, "wang.urban", DEMO_PASSWORD, a).await.0,
        StatusCode::OK
    );
    // After the window, the right password works and clears the count.
    t.clock.advance(cityos_server::LOGIN_WINDOW);
    assert_eq!(
        sign_in(&t, "li.tianping", DEMO_PASSWORD, a).await.0,
        StatusCode::OK
    );
    for _ in 0..cityos_server::LOGIN_FAILURES - 1 {
        sign_in(&t, "li.tianping", "wrong", a).await;
    }
    assert_eq!(
        sign_in(&t, "li.tianping", DEMO_PASSWORD, a).await.0,
        StatusCode::OK
    );
    // One address guessing many accounts is stopped too (unknown accounts count).
    let b = "10.0.0.9:1000";
    for i in 0..cityos_server::LOGIN_PEER_FAILURES {
        let (s, _, _, _) = sign_in(&t, &format!("guess{i}"), "x", b).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, _, retry, _) = sign_in(&t, "zhang.district", DEMO_PASSWORD, b).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    assert_eq!(
        sign_in(&t, "zhang.district", DEMO_PASSWORD, a).await.0,
        StatusCode::OK
    );
}

api_story!(parallel_sign_ins_cannot_outrun_the_throttle);
async fn parallel_sign_ins_cannot_outrun_the_throttle(t: TestApp) {
    t.seed().await;
    // Twenty wrong passwords at once (from several addresses): each takes its slot
    // before the hashing, so at most five are checked at all.
    let one = |i: usize| {
        let t = &t;
        async move { sign_in(t, "li.tianping", "wrong", &format!("10.2.0.{}:1", i % 3)).await }
    };
    let answers = futures_util::future::join_all((0..20).map(one)).await;
    let count = |s: StatusCode| answers.iter().filter(|a| a.0 == s).count();
    let limit = cityos_server::LOGIN_FAILURES as usize;
    assert!(count(StatusCode::UNAUTHORIZED) <= limit, "{answers:?}");
    assert_eq!(
        count(StatusCode::UNAUTHORIZED) + count(StatusCode::TOO_MANY_REQUESTS),
        20,
        "{answers:?}"
    );
    for a in answers
        .iter()
        .filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS)
    {
        assert_eq!(a.1["code"], "too_many_attempts", "{a:?}");
        assert!(a.2.is_some(), "Retry-After: {a:?}");
    }
    // The account is locked now, even for the right password.
    let (s, _, _, _) = sign_in(&t, "li.tianping", DEMO_PASSWORD, "10.2.0.9:1").await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    // A username longer than 64 characters is refused before it is counted or looked up.
    let long = "a".repeat(65);
    let (s, v, _, _) = sign_in(&t, &long, "x", "10.2.1.1:1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let sixty_four = "密".repeat(64);
    let (s, v, _, _) = sign_in(&t, &sixty_four, "x", "10.2.1.1:1").await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "64 characters are a name: {v}");
    // Successful sign-ins do not use up their address's failures.
    let c = "10.2.2.1:1";
    for _ in 0..cityos_server::LOGIN_PEER_FAILURES + 1 {
        assert_eq!(
            sign_in(&t, "wang.urban", DEMO_PASSWORD, c).await.0,
            StatusCode::OK
        );
    }
}

#[test]
fn a_window_holds_a_bounded_number_of_keys() {
    use cityos_server::http::access::Window;
    let w = Window::with_keys(2, 60_000, 3);
    for k in ["a", "b", "c"] {
        assert_eq!(w.admit(k, 0), Ok(()));
    }
    // Full of live keys: a new key waits for the oldest window; known keys go on.
    assert_eq!(w.admit("d", 1_000), Err(59));
    assert_eq!(w.admit("a", 1_000), Ok(()));
    assert_eq!(w.admit("a", 1_000), Err(59));
    // Once the windows end, the expired keys make room.
    assert_eq!(w.admit("d", 60_000), Ok(()));
}

api_story!(anonymous_reports_share_the_open311_limit);
async fn anonymous_reports_share_the_open311_limit(t: TestApp) {
    t.seed().await;
    let limit = cityos_server::ANONYMOUS_LIMIT as usize;
    let report = |i: usize, auth: Option<String>, peer: &'static str| {
        let t = &t;
        async move {
            let p = spot("310104003", i);
            let body = json!({"category": "street_vending", "lon": p[0], "lat": p[1],
                              "text": format!("占道经营 {i}")})
            .to_string();
            let headers: Vec<(&str, &str)> =
                auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let (s, b, h) = t
                .raw_from(
                    Method::POST,
                    "/api/v1/reports",
                    "application/json",
                    &body,
                    &headers,
                    Some(peer.parse().unwrap()),
                )
                .await;
            let v: Value = serde_json::from_str(&b).unwrap_or(Value::String(b));
            (
                s,
                v,
                h.get("retry-after")
                    .map(|v| v.to_str().unwrap().to_string()),
            )
        }
    };
    let a = "10.3.0.1:1";
    for i in 0..limit {
        let (s, v, _) = report(i, None, a).await;
        assert_eq!(s, StatusCode::CREATED, "{i}: {v}");
    }
    // The 21st anonymous report from the address within the window is refused.
    let (s, v, retry) = report(limit, None, a).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_requests")),
        "{v}"
    );
    let secs: i64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=10 * 60).contains(&secs), "{secs}");
    // One limit for both ends: Open311's anonymous create from the address waits too.
    let form = {
        let p = spot("310104003", 1);
        format!(
            "service_code=noise&lat={}&long={}&description=%E5%90%B5",
            p[1], p[0]
        )
    };
    let (s, b, h) = t
        .raw(
            Method::POST,
            "/open311/v2/requests.json",
            "application/x-www-form-urlencoded",
            &form,
            Some(a.parse().unwrap()),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert!(h.contains_key("retry-after"));
    // A signed-in citizen app is not limited this way; another address is not affected.
    let app = t.sign(&Principal {
        name: "citizen-app".into(),
        role: Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    let (s, v, _) = report(limit + 1, Some(format!("Bearer {app}")), a).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v, _) = report(limit + 2, None, "10.3.0.2:1").await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The window passes.
    t.clock.advance(cityos_server::ANONYMOUS_WINDOW);
    let (s, v, _) = report(limit + 3, None, a).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

api_story!(the_pages_session_cookie);
async fn the_pages_session_cookie(t: TestApp) {
    t.seed().await;
    let (s, v, _, cookie) = sign_in(&t, "zhang.district", DEMO_PASSWORD, "10.1.0.1:1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cookie = cookie.expect("Set-Cookie");
    for part in [
        "cityos_session=v1.",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(part), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    // Behind a TLS proxy the cookie is Secure.
    let body = json!({"username": "li.tianping", "password": DEMO_PASSWORD}).to_string();
    let (_, _, h) = t
        .raw_with(
            Method::POST,
            "/api/v1/auth/login",
            "application/json",
            &body,
            &[("x-forwarded-proto", "https")],
        )
        .await;
    assert!(h["set-cookie"].to_str().unwrap().contains("; Secure"));
    let session = cookie.split(';').next().unwrap().to_string();
    // The cookie authenticates reads like a bearer token.
    let (s, v, _) = t
        .call(
            Method::GET,
            "/api/v1/cases",
            None,
            None,
            &[("cookie", &session)],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // State changes by cookie need X-Requested-With from this origin.
    let p = spot("310104003", 5);
    let report = json!({"category": "noise", "lon": p[0], "lat": p[1], "text": "噪声"});
    let (s, v, _) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(report.clone()),
            &[("cookie", &session)],
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("csrf_check_failed")),
        "{v}"
    );
    let (s, v, _) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(report.clone()),
            &[
                ("cookie", &session),
                ("x-requested-with", "cityos"),
                ("origin", "https://evil.example"),
                ("host", "cityos.test"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v, _) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(report.clone()),
            &[
                ("cookie", &session),
                ("x-requested-with", "cityos"),
                ("origin", "http://cityos.test"),
                ("host", "cityos.test"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(
        v["case"]["channel"], "staff",
        "filed as the signed-in officer: {v}"
    );
    // Sign-out clears the cookie.
    let (s, _, h) = t
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            None,
            None,
            &[("x-requested-with", "cityos")],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let cleared = h["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("cityos_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Security headers: every answer has a Referrer-Policy; pages may not be framed.
    for path in ["/ui/login.html", "/api/v1/categories", "/healthz"] {
        let (_, _, h) = t.call(Method::GET, path, None, None, &[]).await;
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
    }
    let (_, _, h) = t
        .call(Method::GET, "/ui/centre.html", None, None, &[])
        .await;
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
}

#[test]
fn log_lines_mask_personal_data() {
    let user = "13812345678";
    let case = "XH2026112500001";
    for json in [false, true] {
        let l = cityos_server::http::log::line(
            "sign_in_throttled",
            &[("account", &user), ("case", &case)],
            json,
        );
        assert!(!l.contains(user) && l.contains(case), "{l}");
    }
}

api_story!(a_joined_case_is_shown_only_as_far_as_the_caller_may_see_it);
async fn a_joined_case_is_shown_only_as_far_as_the_caller_may_see_it(t: TestApp) {
    t.seed().await;
    // A case in another sub-district (徐家汇, 310104016), filed anonymously.
    let p = spot("310104016", 4);
    let body = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商占道，联系13912345678"});
    let (s, first) = t.post("/api/v1/reports", None, body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let number = first["case"]["number"].as_str().unwrap().to_string();
    // A sub-district officer of 天平路 files the same thing there: it joins that case, and
    // the answer does not show a case outside their scope.
    let li = t.login("li.tianping").await;
    let (s, v) = t.post("/api/v1/reports", Some(&li), body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["merged"], true);
    assert!(
        v["case"].is_null(),
        "a case outside the scope is not shown: {v}"
    );
    assert!(!v.to_string().contains(&number), "{v}");
    // Another citizen joining it sees only the public view: no place, no reports, masked.
    let (s, v) = t.post("/api/v1/reports", None, body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["number"], number.as_str());
    let shown = v.to_string();
    for hidden in ["13912345678", "lon", "reports", "tasks"] {
        assert!(
            !shown.contains(hidden),
            "{hidden} shown to another citizen: {v}"
        );
    }
}

api_story!(machine_tokens_never_read_the_stream);
async fn machine_tokens_never_read_the_stream(t: TestApp) {
    let sensor = machine(&t, "sensor", None);
    for path in [
        "/api/v1/events/stream".to_string(),
        format!("/api/v1/events/stream?access_token={sensor}"),
    ] {
        let token = path.contains("access_token").then_some(sensor.as_str());
        let (s, v) = t
            .get(&path, if token.is_some() { None } else { Some(&sensor) })
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
    }
}

api_story!(anonymous_callers_do_not_share_idempotent_answers);
async fn anonymous_callers_do_not_share_idempotent_answers(t: TestApp) {
    t.seed().await;
    let p = spot("310104003", 2);
    let body = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商占道"})
        .to_string();
    let file = |peer: &str| {
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        let body = body.clone();
        let t = &t;
        async move {
            let (s, b, _) = t
                .raw_from(
                    Method::POST,
                    "/api/v1/reports",
                    "application/json",
                    &body,
                    &[("idempotency-key", "phone-1")],
                    Some(peer),
                )
                .await;
            let v: Value = serde_json::from_str(&b).unwrap();
            (s, v)
        }
    };
    let (s, a) = file("198.51.100.7:4000").await;
    assert_eq!(s, StatusCode::CREATED, "{a}");
    // Another address: its own report (merged into the same case), with its own token.
    let (s, b) = file("203.0.113.9:4000").await;
    assert!(s.is_success(), "{s} {b}");
    assert_ne!(a["report_id"], b["report_id"], "{a} {b}");
    assert_ne!(a["report_token"], b["report_token"]);
    // The same address retrying gets its own answer again.
    let (s, again) = file("198.51.100.7:5000").await;
    assert!(s.is_success(), "{s} {again}");
    assert_eq!(again["report_id"], a["report_id"]);
    assert_eq!(again["report_token"], a["report_token"]);
}

#[test]
fn token_tags_are_compared_whole() {
    use cityos_server::cases::same;
    assert!(same(b"abc123", b"abc123"));
    assert!(same(b"", b""));
    assert!(!same(b"abc123", b"abc124"));
    assert!(!same(b"abc123", b"xbc123"));
    assert!(!same(b"abc123", b"abc12"));
    assert!(!same(b"abc", b"abc123"));
}

api_story!(the_vital_signs_are_for_staff_only);
async fn the_vital_signs_are_for_staff_only(t: TestApp) {
    t.seed().await;
    let citizen = t.sign(&Principal {
        name: "citizen-app".into(),
        role: Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    let staff = t.login("li.tianping").await;
    for path in [
        "/api/v1/datasets",
        "/api/v1/indicators",
        "/api/v1/indicators/crowd_wukang/history",
        "/api/v1/alerts",
        "/api/v1/alert-rules",
        "/api/v1/silences",
    ] {
        let (s, v) = t.get(path, Some(&citizen)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{path}: {v}");
        let (s, v) = t.get(path, Some(&staff)).await;
        assert_eq!(s, StatusCode::OK, "{path}: {v}");
    }
}

api_story!(alerts_are_scoped_and_hide_cases_out_of_sight);
async fn alerts_are_scoped_and_hide_cases_out_of_sight(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let li = t.login("li.tianping").await; // 天平路 310104003
    let crowd = "/api/v1/indicators/crowd_wukang/values";
    let tick = || async {
        cityos_server::vitals::alerts::tick(&t.svc.as_ref().unwrap().state)
            .await
            .unwrap()
    };
    for region in [None, Some("310104003"), Some("310104016")] {
        let (s, v) = t
            .post(
                crowd,
                Some(&zhang),
                json!({"value": 1300.0, "region": region}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    tick().await;
    let regions = |v: &Value| -> Vec<String> {
        let mut r: Vec<String> = v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule"] == "crowding_wukang")
            .map(|a| a["region"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };
    let (s, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(regions(&v), ["310104", "310104003", "310104016"], "{v}");
    // The sub-district officer: the district's alerts and its own sub-district's.
    let (s, v) = t.get("/api/v1/alerts", Some(&li)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(regions(&v), ["310104", "310104003"], "{v}");
    let (s, v) = t.get("/api/v1/alerts?region=310104016", Some(&li)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = t.get("/api/v1/alerts?region=310104003", Some(&li)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(regions(&v), ["310104003"], "{v}");

    // The district's alert fires into a district case: the sub-district officer sees the
    // alert but not that case.
    t.clock.advance(3 * MINUTE);
    let (s, v) = t.post(crowd, Some(&zhang), json!({"value": 1700.0})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    tick().await;
    let district = |v: &Value| {
        v["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["rule"] == "crowding_wukang" && a["region"] == "310104")
            .cloned()
            .unwrap_or_else(|| panic!("{v}"))
    };
    let (_, v) = t.get("/api/v1/alerts?state=firing", Some(&zhang)).await;
    let a = district(&v);
    assert!(a["case"]["number"].is_string(), "{a}");
    let id = a["case"]["id"].as_i64().unwrap();
    let (s, _) = t.get(&format!("/api/v1/cases/{id}"), Some(&li)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the officer may not see the case");
    let (_, v) = t.get("/api/v1/alerts?state=firing", Some(&li)).await;
    let a = district(&v);
    assert_eq!(a["case"], Value::Null, "{a}");
}
