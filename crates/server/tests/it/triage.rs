//! The 待分拨 triage queue: a report filed in category `triage` (with the model's
//! suggestion) waits there, oldest first, with its whole text, place and suggestion for
//! the officers; the role matrix on the queue and on the `classify` transition; a pick
//! routes the case to the category's department, leaves the queue and logs the pick
//! beside the suggestion; a sub-district officer neither sees nor classifies another
//! sub-district's case; the case view shows the suggestion to officers only.

use crate::api_story;
use crate::support::{spot, t0, TestApp};
use axum::http::StatusCode;
use cityos_core::case::{Channel, PlaceMatch, Scored, Suggestion};
use cityos_core::time::{Millis, MINUTE};
use cityos_core::workflow::NewReport;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

fn suggestion(top: &[(&str, f32)]) -> Suggestion {
    Suggestion {
        category: top[0].0.into(),
        line: None,
        department: None,
        score: top[0].1,
        top: top
            .iter()
            .map(|(c, s)| Scored {
                category: (*c).into(),
                score: *s,
            })
            .collect(),
        model: "test-model 1".into(),
        routed: false,
        reason: "模型建议 0.41 < 阈值 0.70".into(),
        places: vec![PlaceMatch {
            word: "天平路".into(),
            kind: "subdistrict".into(),
            region: Some("310104003".into()),
        }],
        located_by_text: false,
        cues: vec!["老人".into()],
    }
}

async fn file_triage(t: &TestApp, text: &str, p: [f64; 2], at: Millis, s: Suggestion) -> i64 {
    let st = &t.svc.as_ref().unwrap().state;
    cityos_server::cases::file_report(
        st,
        NewReport {
            channel: Channel::Citizen,
            category: "triage".into(),
            lon: p[0],
            lat: p[1],
            text: text.into(),
            contact: Some("13900001111".into()),
            at,
            media: Vec::new(),
            priority: None,
            playbook: None,
            suggestion: Some(Box::new(s)),
        },
    )
    .await
    .unwrap()
    .0
}

fn citizen(t: &TestApp) -> String {
    t.sign(&Principal {
        name: "citizen-app".into(),
        role: Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    })
}

fn ids(v: &Value) -> Vec<i64> {
    v["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect()
}

api_story!(the_triage_queue_is_worked_by_officers);
async fn the_triage_queue_is_worked_by_officers(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let li = t.login("li.tianping").await;
    let (here, there) = (spot("310104003", 2), spot("310104016", 2));
    let long = "天平路一二三弄门口有人摆摊卖水果，占了人行道，老人走路要绕到机动车道上，请尽快派人来看看，联系电话 13900001111，谢谢你们";
    assert!(long.chars().count() > 60);
    let a = file_triage(
        &t,
        long,
        here,
        t0(),
        suggestion(&[
            ("street_vending", 0.41),
            ("exposed_garbage", 0.22),
            ("illegal_parking", 0.1),
        ]),
    )
    .await;
    let b = file_triage(
        &t,
        "这里的垃圾好几天没人清了",
        there,
        t0() + MINUTE,
        suggestion(&[("exposed_garbage", 0.55)]),
    )
    .await;
    let c = file_triage(
        &t,
        "路边有东西",
        here,
        t0() + 2 * MINUTE,
        suggestion(&[("illegal_parking", 0.3)]),
    )
    .await;

    // The district officer sees the whole queue, oldest first, with the whole text.
    let (s, q) = t.get("/api/v1/triage", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(ids(&q), vec![a, b, c]);
    let first = &q["cases"][0];
    assert_eq!(first["text"], long);
    assert_eq!(first["subdistrict"]["code"], "310104003");
    assert_eq!(first["state"], "reported");
    assert!(first["due"].is_string(), "{first}");
    let sg = &first["suggestion"];
    assert_eq!(sg["category"], "street_vending");
    assert_eq!(sg["name_zh"], "无照经营游商");
    assert_eq!(sg["score"], 0.41);
    assert_eq!(sg["top"].as_array().unwrap().len(), 3);
    assert_eq!(sg["top"][1]["category"], "exposed_garbage");
    assert_eq!(sg["top"][1]["name_en"], "Exposed garbage");
    assert_eq!(sg["reason"], "模型建议 0.41 < 阈值 0.70");
    assert_eq!(sg["places"][0]["word"], "天平路");
    assert_eq!(sg["cues"], json!(["老人"]));
    // Pages: two, then the rest.
    let (s, p1) = t.get("/api/v1/triage?limit=2", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(ids(&p1), vec![a, b]);
    let cur = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = t
        .get(
            &format!("/api/v1/triage?limit=2&cursor={cur}"),
            Some(&zhang),
        )
        .await;
    assert_eq!(ids(&p2), vec![c]);
    for bad in [
        "limit=0",
        "limit=201",
        "limit=x",
        "cursor=nope",
        "sort=created",
    ] {
        let (s, v) = t.get(&format!("/api/v1/triage?{bad}"), Some(&zhang)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {v}");
        assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    }

    // The sub-district officer sees their sub-district's only.
    let (s, q) = t.get("/api/v1/triage", Some(&li)).await;
    assert_eq!(s, StatusCode::OK, "{q}");
    assert_eq!(ids(&q), vec![a, c]);

    // Role matrix on the queue.
    let (s, _) = t.get("/api/v1/triage", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let cit = citizen(&t);
    for (who, token) in [
        ("admin", t.login("admin").await),
        ("wang.urban", t.login("wang.urban").await),
        ("zhao.inspector", t.login("zhao.inspector").await),
        ("sun.analyst", t.login("sun.analyst").await),
        ("citizen", cit.clone()),
    ] {
        let (s, v) = t.get("/api/v1/triage", Some(&token)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{who}: {v}");
        // And none of them may classify.
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{a}/transitions"),
                Some(&token),
                json!({"action": "classify", "category": "street_vending"}),
            )
            .await;
        assert!(
            matches!(s, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
            "{who} classifies: {s} {v}"
        );
    }
    let (s, _) = t
        .post(
            &format!("/api/v1/cases/{a}/transitions"),
            None,
            json!({"action": "classify", "category": "street_vending"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The case view: officers see the suggestion and may classify; a handler does not.
    let (s, v) = t.get(&format!("/api/v1/cases/{a}"), Some(&li)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["suggestion"]["category"], "street_vending");
    assert!(v["actions"]
        .as_array()
        .unwrap()
        .contains(&json!("classify")));
    let (_, v) = t.get(&format!("/api/v1/cases/{a}"), Some(&zhang)).await;
    assert_eq!(
        v["case"]["suggestion"]["top"][2]["category"],
        "illegal_parking"
    );

    // A sub-district officer cannot classify another sub-district's case (it does not
    // exist for them).
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{b}/transitions"),
            Some(&li),
            json!({"action": "classify", "category": "exposed_garbage"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");

    // Bad picks are named.
    for (cat, says) in [
        ("no_such", "no_such"),
        ("triage", "triage"),
        ("evt_street_order", "is a group"),
    ] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{a}/transitions"),
                Some(&li),
                json!({"action": "classify", "category": cat}),
            )
            .await;
        assert!(s.is_client_error(), "{cat}: {s} {v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{cat}: {v}");
    }
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{a}/transitions"),
            Some(&li),
            json!({"action": "classify"}),
        )
        .await;
    assert!(s.is_client_error(), "{v}");

    // The sub-district officer takes the model's suggestion.
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{a}/transitions"),
            Some(&li),
            json!({"action": "classify", "category": "street_vending"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["category"], "street_vending");
    assert_eq!(v["case"]["state"], "reported");
    // The district officer corrects the model on another.
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{b}/transitions"),
            Some(&zhang),
            json!({"action": "classify", "category": "dirty_road", "note": "是道路不洁"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // They leave the queue.
    let (_, q) = t.get("/api/v1/triage", Some(&zhang)).await;
    assert_eq!(ids(&q), vec![c]);

    // The route is the category's, and filing then dispatching sends it there.
    let (_, v) = t.get(&format!("/api/v1/cases/{a}"), Some(&zhang)).await;
    let log = v["log"].as_array().unwrap();
    let entry = log.iter().find(|e| e["action"] == "classify").unwrap();
    assert_eq!(
        entry["note"],
        "分拨：待分拨诉求 → 无照经营游商 street_vending（人工 li.tianping；模型建议 无照经营游商 0.41，采纳建议 / suggestion taken）"
    );
    let (_, v) = t.get(&format!("/api/v1/cases/{b}"), Some(&zhang)).await;
    let log = v["log"].as_array().unwrap();
    let note = log.iter().find(|e| e["action"] == "classify").unwrap()["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains(
            "→ 道路不洁 dirty_road（人工 zhang.district；模型建议 暴露垃圾 0.55，更正建议"
        ),
        "{note}"
    );
    assert!(note.ends_with("；是道路不洁"), "{note}");
    for (to, action) in [(a, "file"), (a, "dispatch")] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{to}/transitions"),
                Some(&zhang),
                json!({"action": action}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
    let (_, v) = t.get(&format!("/api/v1/cases/{a}"), Some(&zhang)).await;
    let lead = v["case"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["lead"] == true)
        .unwrap()["department"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(lead, "sub-urban-mgmt-310104003");
    // A handler of that department sees the case, without the suggestion.
    let wang = t.login("wang.urban").await;
    let (s, v) = t.get(&format!("/api/v1/cases/{a}"), Some(&wang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v["case"].get("suggestion").is_none(), "{v}");
    assert!(
        !v.to_string().contains("13900001111"),
        "masked for a handler: {v}"
    );
    // And a dispatched case can no longer be classified.
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{a}/transitions"),
            Some(&zhang),
            json!({"action": "classify", "category": "exposed_garbage"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");

    // The case list and statistics see the new categories.
    let (_, l) = t
        .get("/api/v1/cases?category=dirty_road", Some(&zhang))
        .await;
    assert_eq!(ids(&l), vec![b]);
    let (_, l) = t.get("/api/v1/cases?category=triage", Some(&zhang)).await;
    assert_eq!(ids(&l), vec![c]);

    // Staff (a trusted channel) may file a report for triage: it is filed, not
    // dispatched, and waits in the queue; citizens may not name the category.
    let (s, r) = t
        .post(
            "/api/v1/reports",
            Some(&zhang),
            json!({"category": "triage", "lon": here[0], "lat": here[1], "text": "来电内容不清，待分拨"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    assert_eq!(r["case"]["state"], "filed");
    assert_eq!(r["case"]["tasks"], json!([]));
    let d = r["case"]["id"].as_i64().unwrap();
    let (_, q) = t.get("/api/v1/triage", Some(&li)).await;
    assert_eq!(
        ids(&q),
        vec![d, c],
        "oldest first (d was filed at the clock's t0)"
    );
    let (s, v) = t
        .post(
            "/api/v1/reports",
            Some(&cit),
            json!({"category": "triage", "lon": here[0], "lat": here[1], "text": "不知道选什么"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "category_not_public");
}
