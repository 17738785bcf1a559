//! Evaluation (考核评价, issue 17) over HTTP on both stores: the figures of a small closed
//! loop, each role on each endpoint (200/401/403/404), bad periods and units named, the
//! score explained down to case numbers, exports (CSV, HTML, XLSX) and the saved monthly
//! report without any personal data.

use crate::api::act;
use crate::api_story;
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::DAY;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

const TIANPING: &str = "310104003";
const OTHER: &str = "310104016";
const SQUAD: &str = "sub-urban-mgmt-310104003";
const PHONE: &str = "13912345678";
const CONTACT: &str = "13987654321";

fn token(t: &TestApp, role: Role, department: Option<&str>, scope: Option<&str>) -> String {
    t.sign(&Principal {
        name: format!("{role}-e"),
        role,
        department: department.map(String::from),
        scope: scope.map(String::from),
        channel: None,
        expires_at: i64::MAX,
    })
}

async fn file(t: &TestApp, sub: &str, n: usize) -> (String, String) {
    let p = spot(sub, n);
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1],
                   "text": format!("第{n}处占道经营，联系人王先生电话{PHONE}"), "contact": CONTACT}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    (
        v["case"]["number"].as_str().unwrap().to_string(),
        v["report_token"].as_str().unwrap_or("").to_string(),
    )
}

async fn get_text(t: &TestApp, path: &str, token: &str) -> (StatusCode, String, String) {
    let (s, v, h) = t.call(Method::GET, path, Some(token), None, &[]).await;
    let ct = h
        .get("content-type")
        .map(|x| x.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    (s, ct, body)
}

api_story!(evaluation_figures_roles_exports_and_monthly_report);
async fn evaluation_figures_roles_exports_and_monthly_report(t: TestApp) {
    t.seed().await;
    // Tokens that outlive the ten days the clock moves on.
    let li = token(&t, Role::SubdistrictOfficer, None, Some(TIANPING));
    let wang = token(&t, Role::Handler, Some(SQUAD), None);
    let zhao = token(&t, Role::Inspector, None, Some(TIANPING));
    let zhang = token(&t, Role::DistrictOfficer, None, None);
    let sun = token(&t, Role::Analyst, None, None);
    let admin = token(&t, Role::Admin, None, None);
    let citizen = token(&t, Role::Citizen, None, None);
    // Three cases in 天平路 (far apart, so none joins another) and one elsewhere.
    let (a, a_token) = file(&t, TIANPING, 1).await;
    let (b, _) = file(&t, TIANPING, 12).await;
    let (c, _) = file(&t, TIANPING, 24).await;
    let (d, _) = file(&t, OTHER, 1).await;
    let mut numbers = vec![a.clone(), b.clone(), c.clone(), d.clone()];
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 4, "four separate cases");
    // A goes round the whole loop and is rated; B is acknowledged and left to run late.
    for (n, who, body) in [
        (&a, &li, json!({"action": "file"})),
        (&a, &li, json!({"action": "dispatch"})),
        (&a, &wang, json!({"action": "acknowledge"})),
        (&a, &wang, json!({"action": "handle"})),
        (
            &a,
            &zhao,
            json!({"action": "verify", "attachments": ["p.jpg"]}),
        ),
        (&a, &li, json!({"action": "close"})),
        (&b, &li, json!({"action": "file"})),
        (&b, &li, json!({"action": "dispatch"})),
        (&b, &wang, json!({"action": "acknowledge"})),
    ] {
        let (s, v) = act(&t, Some(who), n, body.clone()).await;
        assert_eq!(s, StatusCode::OK, "{n} {body}: {v}");
    }
    let (s, v) = act(
        &t,
        None,
        &a,
        json!({"action": "evaluate", "score": 5, "comment": "很快", "report_token": a_token}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Ten days later (5 December): B's handling deadline has long passed.
    t.clock.advance(10 * DAY);
    let q = "/api/v1/evaluation?period=2026-11";

    // The district officer: the sub-districts' table.
    let (s, v) = t
        .get(&format!("{q}&dimension=subdistrict"), Some(&zhang))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["cases"], 4);
    let units = v["units"].as_array().unwrap();
    let tp = units.iter().find(|u| u["code"] == TIANPING).unwrap();
    let f = &tp["figures"];
    assert_eq!(f["received"]["value"], 3.0);
    assert_eq!(f["ack_on_time"]["samples"], 2, "{f}");
    assert_eq!(f["ack_on_time"]["value"], 1.0);
    assert_eq!(f["handle_on_time"]["samples"], 2, "A handled, B late: {f}");
    assert_eq!(f["handle_on_time"]["value"], 0.5);
    assert_eq!(f["close_on_time"]["samples"], 1);
    assert_eq!(f["satisfaction"]["value"], 1.0);
    assert_eq!(f["satisfaction"]["samples"], 1);
    assert!(f["overdue_now"]["value"].as_f64().unwrap() >= 1.0, "{f}");
    assert!(units.iter().any(|u| u["code"] == OTHER));
    assert_eq!(v["measures"].as_array().unwrap().len(), 14);
    // The squad's score explained: its lines name the cases behind them.
    let unit = format!("department:{SQUAD}");
    let (s, v) = t.get(&format!("{q}&unit={unit}"), Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["figures"]["received"]["value"], 2.0, "{v}");
    let lines = v["score"]["lines"].as_array().unwrap();
    let handle = lines
        .iter()
        .find(|l| l["measure"] == "handle_on_time")
        .unwrap();
    assert_eq!(handle["cases"]["yes"], json!([a]));
    assert_eq!(handle["cases"]["no"], json!([b]));
    assert_eq!(v["trend"].as_array().unwrap().len(), 6);
    assert_eq!(v["trend"][5]["period"], "2026-11");
    // The drill-down from a figure to its cases.
    let (s, v) = t
        .get(
            &format!("/api/v1/evaluation/cases?period=2026-11&unit={unit}&measure=received"),
            Some(&zhang),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let mut got: Vec<&str> = v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap())
        .collect();
    got.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(got, want);
    assert!(!v.to_string().contains(PHONE) && !v.to_string().contains("王先生"));

    // Each role on the main endpoint.
    for tok in [&zhang, &sun, &admin] {
        let (s, v) = t.get(&format!("{q}&dimension=department"), Some(tok)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["units"][0]["code"], SQUAD, "{v}");
    }
    // The sub-district officer: her sub-district and what is inside; not the district,
    // not another sub-district.
    let (s, v) = t
        .get(&format!("{q}&dimension=subdistrict"), Some(&li))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec![TIANPING]);
    assert_eq!(v["cases"], 3);
    for path in [
        format!("{q}&unit=subdistrict:{OTHER}"),
        format!("{q}&unit=district:310104"),
        format!("{q}&dimension=district"),
    ] {
        let (s, v) = t.get(&path, Some(&li)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{path}"
        );
    }
    let (s, _) = t
        .get(&format!("{q}&unit=subdistrict:{TIANPING}"), Some(&li))
        .await;
    assert_eq!(s, StatusCode::OK);
    // The handler: their own department only.
    let (s, v) = t
        .get(&format!("{q}&dimension=department"), Some(&wang))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, vec![SQUAD]);
    assert_eq!(
        t.get(&format!("{q}&unit={unit}"), Some(&wang)).await.0,
        StatusCode::OK
    );
    for path in [
        format!("{q}&unit=department:dist-roads"),
        format!("{q}&dimension=subdistrict"),
    ] {
        assert_eq!(
            t.get(&path, Some(&wang)).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Inspectors and citizens: 403; nobody: 401.
    for tok in [&zhao, &citizen] {
        let (s, v) = t.get(q, Some(tok)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let (s, _) = t
            .get(
                &format!("/api/v1/evaluation/cases?period=2026-11&unit={unit}&measure=received"),
                Some(tok),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, _, _) = get_text(
            &t,
            "/api/v1/evaluation/export?period=2026-11&format=csv",
            tok,
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        assert_eq!(
            t.get("/api/v1/evaluation/reports", Some(tok)).await.0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(t.get(q, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        t.get("/api/v1/evaluation/reports", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The definitions are public.
    let (s, v) = t.get("/api/v1/evaluation/measures", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["measures"][2]["code"], "handle_on_time");
    assert!(v["measures"][2]["definition_zh"]
        .as_str()
        .unwrap()
        .contains("处置"));

    // Bad input, each named.
    for (path, code) in [
        ("/api/v1/evaluation?period=2026-13", "invalid_period"),
        ("/api/v1/evaluation?period=soon", "invalid_period"),
        (
            "/api/v1/evaluation?period=2026-11-10..2026-11-01",
            "period_reversed",
        ),
        ("/api/v1/evaluation?period=2027-01", "period_in_future"),
        (
            "/api/v1/evaluation?period=2026-11&unit=nonsense",
            "invalid_parameter",
        ),
        (
            "/api/v1/evaluation?period=2026-11&dimension=planet",
            "invalid_parameter",
        ),
        (
            "/api/v1/evaluation?period=2026-11&unit=department:nope",
            "not_found",
        ),
        (
            "/api/v1/evaluation/cases?period=2026-11&unit=district:310104&measure=speed",
            "invalid_parameter",
        ),
        (
            "/api/v1/evaluation/export?period=2026-11&format=pdf",
            "invalid_parameter",
        ),
        ("/api/v1/evaluation", "invalid_parameter"),
    ] {
        let (s, v) = t.get(path, Some(&zhang)).await;
        assert_eq!(v["code"].as_str(), Some(code), "{path}: {v}");
        assert!(s.is_client_error(), "{path}");
    }

    // Exports: CSV, HTML and XLSX; no personal data in any.
    for (format, ct) in [
        ("csv", "text/csv"),
        ("html", "text/html"),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    ] {
        for extra in [
            "",
            "&dimension=subdistrict",
            "&unit=department:sub-urban-mgmt-310104003",
        ] {
            let path = format!("/api/v1/evaluation/export?period=2026-11&format={format}{extra}");
            let (s, got, body) = get_text(&t, &path, &zhang).await;
            assert_eq!(s, StatusCode::OK, "{path}: {body}");
            assert!(got.starts_with(ct), "{path}: {got}");
            for secret in [PHONE, CONTACT, "王先生", "占道经营，"] {
                assert!(!body.contains(secret), "{path} leaks {secret}");
            }
            if format == "xlsx" {
                assert!(body.starts_with("PK"), "a zip container");
            } else if extra.contains("unit=") {
                assert!(
                    body.contains(&a) && body.contains(&b),
                    "{path}: the cases behind"
                );
            }
        }
    }
    let (_, _, html) = get_text(
        &t,
        "/api/v1/evaluation/export?period=2026-11&format=html&dimension=subdistrict",
        &zhang,
    )
    .await;
    assert!(html.contains("天平路街道") && html.contains("<svg") && !html.contains("<script"));
    let (_, _, csv) = get_text(
        &t,
        "/api/v1/evaluation/export?period=2026-11&format=csv&dimension=subdistrict",
        &li,
    )
    .await;
    assert!(
        csv.starts_with('\u{feff}') && csv.contains(TIANPING) && !csv.contains(OTHER),
        "{csv}"
    );

    // The monthly report: saved once for the month just ended, listed, downloadable.
    let st = t.svc.as_ref().unwrap().state.clone();
    let saved = cityos_server::evaluation::monthly::ensure(&st)
        .await
        .unwrap();
    assert_eq!(saved.as_deref(), Some("2026-11"));
    assert_eq!(
        cityos_server::evaluation::monthly::ensure(&st)
            .await
            .unwrap(),
        None
    );
    let (s, v) = t.get("/api/v1/evaluation/reports", Some(&sun)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["reports"][0]["name"], "2026-11");
    for format in ["csv", "html", "xlsx"] {
        let (s, _, body) = get_text(
            &t,
            &format!("/api/v1/evaluation/reports/2026-11?format={format}"),
            &zhang,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        for secret in [PHONE, CONTACT, "王先生"] {
            assert!(!body.contains(secret), "the saved {format} leaks {secret}");
        }
        if format == "csv" {
            assert!(
                body.contains(TIANPING) && body.contains("部门排名") && body.contains("街道排名"),
                "{body}"
            );
        }
    }
    assert_eq!(
        t.get("/api/v1/evaluation/reports/2026-10", Some(&zhang))
            .await
            .0,
        StatusCode::NOT_FOUND
    );
    for tok in [&li, &wang] {
        assert_eq!(
            t.get("/api/v1/evaluation/reports", Some(tok)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            t.get("/api/v1/evaluation/reports/2026-11", Some(tok))
                .await
                .0,
            StatusCode::FORBIDDEN
        );
    }
    // Every role on every endpoint.
    let unit_q = format!("period=2026-11&unit={unit}");
    let endpoints = [
        (
            format!("/api/v1/evaluation?{unit_q}"),
            [200, 200, 200, 200, 200, 403, 403, 401],
        ),
        (
            format!("/api/v1/evaluation/cases?{unit_q}&measure=received"),
            [200, 200, 200, 200, 200, 403, 403, 401],
        ),
        (
            format!("/api/v1/evaluation/export?{unit_q}&format=csv"),
            [200, 200, 200, 200, 200, 403, 403, 401],
        ),
        (
            "/api/v1/evaluation/reports".to_string(),
            [200, 200, 200, 403, 403, 403, 403, 401],
        ),
        (
            "/api/v1/evaluation/reports/2026-11?format=csv".to_string(),
            [200, 200, 200, 403, 403, 403, 403, 401],
        ),
        (
            "/api/v1/evaluation/measures".to_string(),
            [200, 200, 200, 200, 200, 200, 200, 200],
        ),
    ];
    let callers: [(&str, Option<&str>); 8] = [
        ("district officer", Some(&zhang)),
        ("analyst", Some(&sun)),
        ("admin", Some(&admin)),
        ("sub-district officer", Some(&li)),
        ("handler", Some(&wang)),
        ("inspector", Some(&zhao)),
        ("citizen", Some(&citizen)),
        ("anonymous", None),
    ];
    for (path, want) in &endpoints {
        for ((who, tok), w) in callers.iter().zip(want) {
            let (s, _, _) = t.call(Method::GET, path, *tok, None, &[]).await;
            assert_eq!(s.as_u16(), *w, "{who} on {path}");
        }
    }
    // Read back whole after a restart.
    let mut t = t;
    t.restart();
    let (_, _, csv2) = get_text(&t, "/api/v1/evaluation/reports/2026-11?format=csv", &zhang).await;
    assert!(csv2.contains("街道排名"));
    let _ = c;
}
