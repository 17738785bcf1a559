//! Data sharing (数据归集共享): grants and the rows API (each role on each endpoint, the
//! bad inputs, revocation and expiry that stop at once), the catalogue and data quality,
//! personal data masked on every path (real-looking phone, ID, bank card and e-mail
//! through the API, Open311, the live stream, the rows API, error messages and the log),
//! and the hash-chained audit trail and per-case chained case log (verified intact; a
//! hand-edited entry of either named).

use crate::api_story;
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::DAY;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

const ID: &str = "310104195512030040";
const PHONE: &str = "13912345678";
const CARD: &str = "6222021234567890128";
const MAIL: &str = "wang.xiuying@example.com";
const SECRETS: [&str; 5] = [ID, PHONE, CARD, MAIL, "王秀英"];

fn shows(body: &str) -> Vec<&'static str> {
    SECRETS
        .iter()
        .copied()
        .filter(|s| body.contains(s))
        .collect()
}

/// Households with personal columns; the third row's ID number has a bad check digit.
fn households() -> String {
    format!(
        "household,name,id_number,phone,address,community,meter,elder_alone\n\
         H-001,王秀英,{ID},{PHONE},天平路 1 弄 2 号 301 室,310104003001,WM-001,是\n\
         H-002,李建国,11010519491231002X,13812340000,天平路 3 号,310104003001,WM-002,是\n\
         H-003,赵六,310104198001011234,13700000000,天平路 5 号,310104003001,WM-003,否\n"
    )
}

async fn send(
    t: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    ct: &str,
    body: &str,
) -> (StatusCode, String) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let (s, b, _) = t.raw_with(method, path, ct, body, &headers).await;
    (s, b)
}

async fn import_households(t: &TestApp, admin: &str) -> Value {
    let (s, b) = send(
        t,
        Method::POST,
        "/api/v1/datasets/lone_elder_households?owner=dist-civil-affairs&sensitivity=sensitive",
        Some(admin),
        "text/csv",
        &households(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    serde_json::from_str(&b).unwrap()
}

fn citizen(t: &TestApp) -> String {
    t.sign(&Principal {
        name: "citizen-1".into(),
        role: Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    })
}

api_story!(grants_give_read_and_lose_access_at_once);
async fn grants_give_read_and_lose_access_at_once(t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let liu = t.login("liu.civil").await; // the owner department
    let chen = t.login("chen.roads").await; // the consumer
    let zhao = t.login("zhao.inspector").await;
    let sun = t.login("sun.analyst").await;
    let zhang = t.login("zhang.district").await;
    let cit = citizen(&t);
    // A malformed ID number refuses its row, named without the number.
    let v = import_households(&t, &admin).await;
    assert_eq!(v["rows"], 2, "{v}");
    let refused = v["refused"].to_string();
    assert!(
        refused.contains("check digit") && refused.contains("\"row\":3"),
        "{refused}"
    );
    assert!(!refused.contains("310104198001011234"), "{refused}");

    let rows = "/api/v1/datasets/lone_elder_households/rows";
    // Before any grant: who reads the rows.
    for (who, tok, want) in [
        ("anonymous", None, StatusCode::UNAUTHORIZED),
        ("citizen", Some(cit.as_str()), StatusCode::FORBIDDEN),
        ("inspector", Some(zhao.as_str()), StatusCode::FORBIDDEN),
        ("analyst", Some(sun.as_str()), StatusCode::FORBIDDEN),
        ("consumer", Some(chen.as_str()), StatusCode::FORBIDDEN),
        ("owner", Some(liu.as_str()), StatusCode::OK),
        ("admin", Some(admin.as_str()), StatusCode::OK),
        ("district", Some(zhang.as_str()), StatusCode::OK),
    ] {
        let (s, v) = t.get(rows, tok).await;
        assert_eq!(s, want, "{who}: {v}");
        if s == StatusCode::FORBIDDEN && who == "consumer" {
            assert_eq!(v["code"], "no_grant", "{v}");
        }
    }
    // The owner sees everything as written; administration sees personal columns masked.
    let (_, v) = t.get(rows, Some(&liu)).await;
    assert_eq!(v["basis"], "owner");
    assert!(
        v.to_string().contains(ID) && v.to_string().contains("王秀英"),
        "{v}"
    );
    let (_, v) = t.get(rows, Some(&admin)).await;
    assert_eq!(v["basis"], "oversight");
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    assert_eq!(v["rows"][0]["name"], "王**");
    assert_eq!(v["rows"][0]["household"], "H-001");

    // Requests: bad input named, each role.
    let ask = |cols: Value, until: &str| json!({"dataset": "lone_elder_households", "columns": cols, "purpose": "道路施工前上门告知独居老人", "until": until});
    let (s, v) = t
        .post(
            "/api/v1/grants",
            Some(&chen),
            ask(json!(["household", "salary"]), "2026-12-31"),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_columns")),
        "{v}"
    );
    assert!(v["detail"].as_str().unwrap().contains("salary"), "{v}");
    let (s, v) = t
        .post(
            "/api/v1/grants",
            Some(&chen),
            ask(json!(["household"]), "2026-01-01"),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("grant_expired")),
        "{v}"
    );
    let (s, v) = t.post("/api/v1/grants", Some(&chen), json!({"dataset": "nothing", "columns": ["a"], "purpose": "查看一下数据", "until": "2026-12-31"})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_dataset")),
        "{v}"
    );
    let (s, _) = t
        .post(
            "/api/v1/grants",
            Some(&liu),
            ask(json!(["household"]), "2026-12-31"),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the owner needs no grant"
    );
    for tok in [&zhao, &sun, &cit] {
        let (s, v) = t
            .post(
                "/api/v1/grants",
                Some(tok),
                ask(json!(["household"]), "2026-12-31"),
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    }
    let (s, _) = t
        .post(
            "/api/v1/grants",
            None,
            ask(json!(["household"]), "2026-12-31"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = t
        .post(
            "/api/v1/grants",
            Some(&chen),
            ask(
                json!(["household", "name", "phone", "community", "elder_alone"]),
                "2026-12-31",
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["grant"]["id"].as_i64().unwrap();
    assert_eq!(v["grant"]["state"], "requested");
    let (s, v) = t
        .post(
            "/api/v1/grants",
            Some(&chen),
            ask(json!(["phone", "meter"]), "2026-12-31"),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("grant_overlaps")),
        "{v}"
    );
    // Requested is not in force.
    assert_eq!(t.get(rows, Some(&chen)).await.0, StatusCode::FORBIDDEN);
    // Who decides.
    let decide = |id: i64, a: &str| format!("/api/v1/grants/{id}/{a}");
    for tok in [&chen, &zhao, &sun, &zhang] {
        let (s, v) = t.post(&decide(id, "approve"), Some(tok), json!({})).await;
        assert!(
            s == StatusCode::FORBIDDEN || s == StatusCode::NOT_FOUND,
            "{v}"
        );
    }
    let (s, v) = t.post(&decide(id, "refuse"), Some(&liu), json!({})).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a refusal needs its reason: {v}"
    );
    let (s, v) = t.post(&decide(id, "approve"), Some(&liu), json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["grant"]["in_force"], true);
    let (s, v) = t.post(&decide(id, "approve"), Some(&liu), json!({})).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("grant_not_pending")),
        "{v}"
    );
    assert_eq!(
        t.post(&decide(999, "approve"), Some(&liu), json!({}))
            .await
            .0,
        StatusCode::NOT_FOUND
    );

    // The consumer reads only its columns, personal ones masked.
    let (s, v) = t.get(rows, Some(&chen)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        v["columns"],
        json!(["household", "name", "phone", "community", "elder_alone"])
    );
    assert_eq!(v["masked"], json!(["name", "phone"]));
    assert_eq!(v["total"], 2);
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    assert!(v["rows"][0].get("address").is_none() && v["rows"][0].get("id_number").is_none());
    assert_eq!(v["rows"][0]["phone"], "*******5678");
    // Filters and paging; CSV.
    let (_, v) = t.get(&format!("{rows}?household=H-002"), Some(&chen)).await;
    assert_eq!(
        (v["total"].as_i64(), v["rows"][0]["household"].as_str()),
        (Some(1), Some("H-002")),
        "{v}"
    );
    let (_, v) = t
        .get(&format!("{rows}?limit=1&offset=1"), Some(&chen))
        .await;
    assert_eq!(v["rows"].as_array().unwrap().len(), 1);
    for (q, code) in [
        ("address=x", "unknown_columns"),
        ("salary=1", "unknown_columns"),
        ("phone=13912345678", "unknown_columns"),
    ] {
        let (s, v) = t.get(&format!("{rows}?{q}"), Some(&chen)).await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(code)),
            "{q}: {v}"
        );
        assert!(shows(&v.to_string()).is_empty(), "{v}");
    }
    assert_eq!(
        t.get(&format!("{rows}?limit=0"), Some(&chen)).await.0,
        StatusCode::BAD_REQUEST
    );
    let (s, csv) = send(
        &t,
        Method::GET,
        &format!("{rows}?format=csv"),
        Some(&chen),
        "",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        csv.starts_with("household,name,phone,community,elder_alone\r\n"),
        "{csv}"
    );
    assert!(
        csv.contains("H-001,王**,*******5678") && shows(&csv).is_empty(),
        "{csv}"
    );
    // Grants seen: the consumer and the owner theirs, the analyst all, an inspector none.
    for (tok, want) in [
        (&chen, Some(1)),
        (&liu, Some(1)),
        (&sun, Some(1)),
        (&admin, Some(1)),
        (&zhao, None),
    ] {
        let (s, v) = t.get("/api/v1/grants", Some(tok)).await;
        match want {
            Some(n) => assert_eq!(v["grants"].as_array().map(|a| a.len()), Some(n), "{v}"),
            None => assert_eq!(s, StatusCode::FORBIDDEN, "{v}"),
        }
    }
    // Revoked: stops at once; the same token is refused.
    let (s, v) = t
        .post(
            &decide(id, "revoke"),
            Some(&liu),
            json!({"reason": "施工结束"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t.get(rows, Some(&chen)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_grant")),
        "{v}"
    );
    let (s, _) = t.post(&decide(id, "revoke"), Some(&liu), json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT);
    // An unmasking grant that expires: names shown, then nothing once its day is over.
    let (s, v) = t
        .post("/api/v1/grants", Some(&chen), json!({"dataset": "lone_elder_households", "columns": ["household", "name"], "purpose": "上门告知，需要姓名", "until": "2026-11-26", "unmask": true}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id2 = v["grant"]["id"].as_i64().unwrap();
    assert_eq!(
        t.post(&decide(id2, "approve"), Some(&liu), json!({}))
            .await
            .0,
        StatusCode::OK
    );
    let (_, v) = t.get(rows, Some(&chen)).await;
    assert_eq!(v["rows"][0]["name"], "王秀英", "{v}");
    assert_eq!(v["masked"], json!([]));
    t.clock.advance(2 * DAY);
    // Sessions last 12 hours: everyone signs in again.
    let (chen, admin, zhang, sun) = (
        t.login("chen.roads").await,
        t.login("admin").await,
        t.login("zhang.district").await,
        t.login("sun.analyst").await,
    );
    let cit = citizen(&t);
    let (s, v) = t.get(rows, Some(&chen)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_grant")),
        "expired: {v}"
    );
    let (_, v) = t
        .get("/api/v1/grants?dataset=lone_elder_households", Some(&chen))
        .await;
    assert!(v.to_string().contains("\"expired\""), "{v}");

    // Every change and read is in the trail, and the trail is intact.
    let (s, v) = t.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "sign_in",
        "dataset_import",
        "grant_request",
        "grant_approve",
        "grant_revoke",
        "rows_read",
    ] {
        assert!(actions.contains(&a), "{a} missing in {actions:?}");
    }
    assert!(
        shows(&v.to_string()).is_empty(),
        "the trail holds no personal data: {v}"
    );
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(v["intact"], true, "{v}");
    assert_eq!(v["entries"].as_u64(), Some(actions.len() as u64));
    for tok in [&zhang, &chen, &sun, &cit] {
        assert_eq!(
            t.get("/api/v1/audit", Some(tok)).await.0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            t.get("/api/v1/audit/verify", Some(tok)).await.0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        t.get("/api/v1/audit", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The head is published as a metric.
    let m = crate::support::metrics_text(&t).await;
    assert!(
        m.contains(&format!(
            "cityos_audit_head_seq{{hash=\"{}\"}} {}",
            v["head"]["hash"].as_str().unwrap(),
            v["head"]["seq"]
        )),
        "{m}"
    );
}

api_story!(the_catalogue_lists_everything_with_sensitivity_lineage_and_quality);
async fn the_catalogue_lists_everything_with_sensitivity_lineage_and_quality(t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let chen = t.login("chen.roads").await;
    import_households(&t, &admin).await;
    for (tok, want) in [
        (None, StatusCode::UNAUTHORIZED),
        (Some(citizen(&t)), StatusCode::FORBIDDEN),
        (Some(chen.clone()), StatusCode::OK),
        (Some(t.login("zhao.inspector").await), StatusCode::OK),
    ] {
        assert_eq!(t.get("/api/v1/catalogue", tok.as_deref()).await.0, want);
        assert_eq!(t.get("/api/v1/data-quality", tok.as_deref()).await.0, want);
    }
    let (_, v) = t.get("/api/v1/catalogue", Some(&chen)).await;
    let entries = v["entries"].as_array().unwrap();
    for kind in ["dataset", "indicator", "device_feed", "export"] {
        assert!(entries.iter().any(|e| e["kind"] == kind), "{kind}");
    }
    let d = entries
        .iter()
        .find(|e| e["name"] == "lone_elder_households")
        .unwrap();
    assert_eq!(d["owner"]["code"], "dist-civil-affairs");
    let level = |c: &str| {
        d["schema"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == c)
            .unwrap()["sensitivity"]
            .clone()
    };
    assert_eq!(level("id_number"), "sensitive_personal");
    assert_eq!(level("name"), "sensitive_personal");
    assert_eq!(level("meter"), "internal");
    assert!(
        d["lineage"]["scenarios"]
            .to_string()
            .contains("lone_elder_water"),
        "{d}"
    );
    assert!(
        !d["lineage"]["indicators"].as_array().unwrap().is_empty(),
        "{d}"
    );
    assert_eq!(d["quality"]["status"], "ok", "{d}");
    assert_eq!(d["freshness"]["rows"], 2);
    // Search.
    let (_, v) = t
        .get("/api/v1/catalogue?q=%E7%8B%AC%E5%B1%85", Some(&chen))
        .await; // 独居
    assert!(
        v["entries"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["name"] == "lone_elder_households")),
        "{v}"
    );
    let (_, v) = t
        .get("/api/v1/catalogue?kind=device_feed", Some(&chen))
        .await;
    assert!(v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] == "device_feed"));
    assert_eq!(
        t.get("/api/v1/catalogue?kind=nonsense", Some(&chen))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
    // Data quality: never imported, then stale a month later.
    let (_, v) = t.get("/api/v1/data-quality", Some(&chen)).await;
    let st = |v: &Value, n: &str| {
        v["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == n)
            .unwrap()["status"]
            .clone()
    };
    assert_eq!(st(&v, "lone_elder_households"), "ok");
    assert_eq!(st(&v, "lifts"), "missing");
    t.clock.advance(31 * DAY);
    let chen = t.login("chen.roads").await;
    let (_, v) = t.get("/api/v1/data-quality", Some(&chen)).await;
    assert_eq!(st(&v, "lone_elder_households"), "stale", "{v}");
    // The checks' round: the vital sign rises and the owner gets one case, once.
    let state = t.svc.as_ref().unwrap().state.clone();
    let bad = cityos_server::intake::data::catalogue::quality_tick(&state)
        .await
        .unwrap();
    assert_eq!(bad, vec!["lone_elder_households".to_string()]);
    assert_eq!(
        cityos_server::intake::data::catalogue::quality_tick(&state)
            .await
            .unwrap()
            .len(),
        1
    );
    let zhang = t.login("zhang.district").await;
    let (_, v) = t.get("/api/v1/indicators", Some(&zhang)).await;
    let ind = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "data_feeds_unhealthy" && i["region"] == "310104")
        .expect("the indicator is listed")
        .clone();
    assert_eq!(ind["value"].as_f64(), Some(1.0), "{ind}");
    assert_ne!(
        ind["level"], "normal",
        "the vital sign's level rises: {ind}"
    );
    let (_, v) = t
        .get("/api/v1/cases?category=data_quality", Some(&zhang))
        .await;
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 1, "one case however many rounds: {v}");
    let (_, c) = t
        .get(
            &format!("/api/v1/cases/{}", cases[0]["number"].as_str().unwrap()),
            Some(&zhang),
        )
        .await;
    assert!(
        c.to_string().contains("dist-civil-affairs"),
        "the owner leads: {c}"
    );
    // A fresh import heals it: the indicator falls back to 0.
    import_households(&t, &t.login("admin").await).await;
    assert!(cityos_server::intake::data::catalogue::quality_tick(&state)
        .await
        .unwrap()
        .is_empty());
}

api_story!(personal_data_is_masked_on_every_path);
async fn personal_data_is_masked_on_every_path(t: TestApp) {
    t.seed().await;
    let p = spot("310104003", 3);
    let text = format!("楼下占道，联系人王秀英 电话{PHONE}，身份证{ID}，退款卡{CARD}，邮箱{MAIL}");
    let (s, v) = t
        .post("/api/v1/reports", None, json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": text, "contact": PHONE}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    // The anonymous answer, the anonymous case view and Open311.
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    for path in [
        format!("/open311/v2/requests/{number}.json"),
        format!("/open311/v2/requests/{number}.xml"),
        "/open311/v2/requests.json".to_string(),
    ] {
        let (_, body, _) = t.raw(Method::GET, &path, "", "", None).await;
        assert!(body.contains(&number), "{path}");
        assert!(shows(&body).is_empty(), "{path}: {body}");
    }
    // Staff without the right: the inspector's and a handler's views, lists, the stream.
    let zhao = t.login("zhao.inspector").await;
    let wang = t.login("wang.urban").await;
    for tok in [&zhao, &wang] {
        let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(tok)).await;
        assert!(
            !v.to_string().contains(ID)
                && !v.to_string().contains(CARD)
                && !v.to_string().contains(PHONE)
                && !v.to_string().contains(MAIL),
            "{v}"
        );
        let (_, v) = t.get("/api/v1/cases", Some(tok)).await;
        assert!(
            !v.to_string().contains(ID) && !v.to_string().contains(CARD),
            "{v}"
        );
    }
    let resp = crate::stream::open_stream(&t, &zhao, Some(0)).await;
    let events = crate::stream::read_events(resp.into_body(), 1).await;
    assert!(!events.is_empty());
    let all = format!("{events:?}");
    assert!(
        !all.contains(ID) && !all.contains(CARD) && !all.contains(PHONE) && !all.contains(MAIL),
        "{all}"
    );
    // The officer sees the whole text (and that read is audited).
    let li = t.login("li.tianping").await;
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&li)).await;
    assert!(v.to_string().contains(CARD), "{v}");
    let admin = t.login("admin").await;
    let (_, v) = t.get("/api/v1/audit?limit=1000", Some(&admin)).await;
    assert!(v.to_string().contains("case_read"), "{v}");
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    // Error messages never repeat a number sent with a bad request.
    let (_, body) = send(
        &t,
        Method::POST,
        &format!("/api/v1/datasets/x?owner={PHONE}"),
        Some(&admin),
        "text/csv",
        "a\n1\n",
    )
    .await;
    assert!(
        body.contains("unknown owner") && !body.contains(PHONE),
        "{body}"
    );
    let (_, body) = send(
        &t,
        Method::POST,
        "/api/v1/datasets/x?owner=dist-civil-affairs",
        Some(&admin),
        "application/json",
        &format!("[\"{ID}\"]"),
    )
    .await;
    assert!(!body.contains(ID), "{body}");
    let (_, v) = t.post("/api/v1/grants", Some(&t.login("chen.roads").await), json!({"dataset": "x", "columns": [CARD], "purpose": format!("打电话{PHONE}"), "until": "2026-12-31"})).await;
    assert!(shows(&v.to_string()).is_empty(), "{v}");
    // The log.
    let line = cityos_server::http::log::line("x", &[("card", &CARD), ("id", &ID)], false);
    assert!(shows(&line).is_empty(), "{line}");
}

/// A hand-edited entry (the append-only trigger dropped, a subject changed) is named by
/// verification, at that entry.
#[tokio::test]
async fn a_hand_edited_audit_entry_is_named() {
    let t = TestApp::sqlite();
    t.seed().await;
    for _ in 0..4 {
        t.login("sun.analyst").await;
    }
    let admin = t.login("admin").await;
    // A case with a few log entries: filed, then noted twice (each batch chains on).
    let p = spot("310104003", 3);
    let (s, c) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "占道经营"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let number = c["case"]["number"].as_str().unwrap().to_string();
    let li = t.login("li.tianping").await;
    for note in ["第一次备注", "第二次备注"] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{number}/transitions"),
                Some(&li),
                json!({"action": "note", "note": note}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(
        (v["intact"].as_bool(), v["entries"].as_u64()),
        (Some(true), Some(6)),
        "{v}"
    );
    assert_eq!(v["case_log"]["intact"], true, "{v}");
    assert!(v["case_log"]["entries"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["case_log"]["unchained"], 0, "{v}");
    let cityos_server::runtime::service::Database::Sqlite(dir) = &t.db else {
        unreachable!()
    };
    let conn =
        cityos_engine::store::sqlite::rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
    assert!(
        conn.execute(
            "UPDATE audit_log SET subject = 'account:admin' WHERE seq = 3",
            []
        )
        .is_err(),
        "the trail is append-only"
    );
    conn.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET subject = 'account:admin' WHERE seq = 3;")
        .unwrap();
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(v["intact"], false, "{v}");
    assert_eq!(v["first_broken"], 3, "{v}");
    assert!(v["problem"].as_str().unwrap().contains("edited"), "{v}");
    // A case log entry edited by hand — its note, not only its body, is under the chain:
    // its case and number are named.
    let case_id = c["case"]["id"].as_i64().unwrap();
    conn.execute_batch(&format!(
        "DROP TRIGGER case_log_no_update; UPDATE case_log SET note = note || ' ' WHERE case_id = {case_id} AND seq = 2;"
    ))
    .unwrap();
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(v["case_log"]["intact"], false, "{v}");
    assert_eq!(
        v["case_log"]["first_broken"],
        json!({"case": case_id, "seq": 2}),
        "{v}"
    );
    // Put back, the log verifies again; an entry whose chain is then removed (as if
    // written before the chain began) is named too.
    conn.execute_batch(&format!(
        "UPDATE case_log SET note = rtrim(note) WHERE case_id = {case_id} AND seq = 2;"
    ))
    .unwrap();
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(v["case_log"]["intact"], true, "{v}");
    conn.execute_batch(&format!(
        "UPDATE case_log SET chain = NULL WHERE case_id = {case_id} AND seq = 2;"
    ))
    .unwrap();
    let (_, v) = t.get("/api/v1/audit/verify", Some(&admin)).await;
    assert_eq!(v["case_log"]["intact"], false, "{v}");
    assert_eq!(
        v["case_log"]["first_broken"],
        json!({"case": case_id, "seq": 2}),
        "{v}"
    );
}

#[test]
fn the_embedded_declarations_parse_and_bad_ones_are_named() {
    use cityos_server::intake::data::catalogue::{column_level, parse_declarations, parse_every};
    use cityos_server::intake::data::grants::csv_field;
    // An undeclared dataset imported as sensitive: every column is personal.
    assert_eq!(
        column_level(None, "sensitive", "health_note"),
        "sensitive_personal"
    );
    assert_eq!(column_level(None, "internal", "health_note"), "internal");
    // CSV cells are never formulas; numbers stay numbers.
    assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
    assert_eq!(csv_field("-12.5"), "-12.5");
    assert_eq!(csv_field("a,b"), "\"a,b\"");
    let d = parse_declarations(cityos_engine::demo::DATASETS_TOML).unwrap();
    assert!(d.iter().any(|d| d.name == "lone_elder_households"));
    assert_eq!(parse_every("30m"), Some(1_800_000));
    assert_eq!(parse_every("1d"), Some(86_400_000));
    assert_eq!(parse_every("d"), None);
    assert_eq!(parse_every("0h"), None);
    let bad = "[[dataset]]\nname = \"a\"\nowner = \"x\"\nname_zh = \"a\"\nname_en = \"a\"\nevery = \"soon\"\n\n[[dataset]]\nname = \"a\"\nowner = \"x\"\nname_zh = \"a\"\nname_en = \"a\"\nevery = \"1d\"\n";
    let p = parse_declarations(bad).unwrap_err();
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].contains("declared twice") || p[1].contains("declared twice"));
}
