//! Hot topics (热点问题, issue 14): `GET /api/v1/hot-topics` clusters the latest citizen
//! messages; officers and analysts only (a sub-district officer sees their sub-district),
//! labels masked, answers cached for a minute.

use crate::api_story;
use crate::support::{spot, TestApp};
use axum::http::StatusCode;
use cityos_core::time::SECOND;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

fn token(t: &TestApp, role: Role, department: Option<&str>, scope: Option<&str>) -> String {
    t.sign(&Principal {
        name: format!("{role}-x"),
        role,
        department: department.map(String::from),
        scope: scope.map(String::from),
        channel: None,
        expires_at: i64::MAX,
    })
}

async fn say(t: &TestApp, category: &str, p: [f64; 2], text: &str) -> Value {
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": category, "lon": p[0], "lat": p[1], "text": text}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    v
}

api_story!(hot_topics_cluster_mask_and_scope);
async fn hot_topics_cluster_mask_and_scope(t: TestApp) {
    const TIANPING: &str = "310104003";
    const XUJIAHUI: &str = "310104004";
    // Four people in 天平路 about missing manhole covers (a phone number in the text),
    // three in the next sub-district about a dark street light, one about something else.
    let mut numbers = Vec::new();
    for (n, text) in [
        "小区门口的井盖不见了很危险，电话13812345678",
        "小区门口井盖没了，很危险，电话13812345678",
        "小区门口的井盖不见了，太危险，电话13812345678",
        "小区门口井盖不见了很危险！电话13812345678",
    ]
    .iter()
    .enumerate()
    {
        let v = say(&t, "manhole_cover_missing", spot(TIANPING, n * 7), text).await;
        numbers.push(v["case"]["number"].as_str().unwrap().to_string());
    }
    for (n, text) in [
        "学校后门的路灯坏了，晚上一片漆黑",
        "学校后门路灯坏了晚上一片漆黑",
        "学校后门的路灯坏了晚上漆黑一片",
    ]
    .iter()
    .enumerate()
    {
        say(&t, "streetlight_fault", spot(XUJIAHUI, n * 7), text).await;
    }
    say(&t, "noise", spot(TIANPING, 3), "楼下饭店油烟太大，开窗就呛").await;
    let district = token(&t, Role::DistrictOfficer, None, None);
    let (s, v) = t.get("/api/v1/hot-topics?days=7", Some(&district)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["days"], 7);
    assert_eq!(v["messages"], 8);
    assert_eq!(v["truncated"], false);
    let topics = v["topics"].as_array().unwrap();
    assert_eq!(topics.len(), 2, "{v:#}");
    let a = &topics[0];
    assert_eq!(a["rank"], 1);
    assert_eq!(a["count"], 4);
    assert_eq!(a["category"], "manhole_cover_missing");
    assert!(a["category_name_zh"].is_string());
    assert_eq!(a["places"][0]["code"], TIANPING);
    assert_eq!(a["places"][0]["count"], 4);
    assert!(a["places"][0]["name_zh"].as_str().unwrap().contains("天平"));
    let label = a["label"].as_str().unwrap();
    assert!(label.contains("井盖"), "{label}");
    assert!(
        !label.contains("13812345678") && !label.contains("5678"),
        "{label}"
    );
    assert!(
        !v.to_string().contains("13812345678"),
        "no phone anywhere: {v}"
    );
    let samples: Vec<&str> = a["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    assert!(!samples.is_empty() && samples.len() <= 5);
    assert!(samples.iter().all(|s| numbers.iter().any(|n| n == s)));
    let cases = a["cases"].as_u64().unwrap();
    assert!((1..=4).contains(&cases));
    assert!(a["first_seen"].as_str().unwrap() <= a["last_seen"].as_str().unwrap());
    assert_eq!(topics[1]["count"], 3);
    assert_eq!(topics[1]["places"][0]["code"], XUJIAHUI);
    // The analyst sees the same; a region narrows it.
    let analyst = token(&t, Role::Analyst, None, None);
    let (s, w) = t.get("/api/v1/hot-topics", Some(&analyst)).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    assert_eq!(w["topics"], v["topics"]);
    let (_, r) = t
        .get(
            &format!("/api/v1/hot-topics?region={XUJIAHUI}"),
            Some(&district),
        )
        .await;
    assert_eq!(r["region"], XUJIAHUI);
    assert_eq!(r["topics"].as_array().unwrap().len(), 1, "{r:#}");
    assert_eq!(r["topics"][0]["category"], "streetlight_fault");
    // A sub-district officer sees their sub-district only, and may not look next door.
    let sub = token(&t, Role::SubdistrictOfficer, None, Some(TIANPING));
    let (s, mine) = t.get("/api/v1/hot-topics", Some(&sub)).await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    assert_eq!(mine["region"], TIANPING);
    assert_eq!(mine["messages"], 5);
    let mt = mine["topics"].as_array().unwrap();
    assert_eq!(mt.len(), 1, "{mine:#}");
    assert_eq!(mt[0]["category"], "manhole_cover_missing");
    let (s, e) = t
        .get(&format!("/api/v1/hot-topics?region={XUJIAHUI}"), Some(&sub))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    // Everyone else: anonymous 401, the rest 403.
    let (s, _) = t.get("/api/v1/hot-topics", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for (role, dept, scope) in [
        (Role::Citizen, None, None),
        (Role::Handler, Some("dist-roads"), None),
        (Role::Inspector, None, Some(TIANPING)),
        (Role::Admin, None, None),
    ] {
        let tok = token(&t, role, dept, scope);
        let (s, e) = t.get("/api/v1/hot-topics", Some(&tok)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}: {e}");
    }
    // Bad parameters are named.
    for (q, word) in [
        ("days=0", "days"),
        ("days=31", "days"),
        ("limit=0", "limit"),
        ("region=nowhere", "region"),
        ("colour=red", "colour"),
    ] {
        let (s, e) = t
            .get(&format!("/api/v1/hot-topics?{q}"), Some(&district))
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {e}");
        assert!(e.to_string().contains(word), "{q}: {e}");
    }
    let (_, one) = t.get("/api/v1/hot-topics?limit=1", Some(&district)).await;
    assert_eq!(one["topics"].as_array().unwrap().len(), 1);
    // Cached for a minute: a new message shows after it.
    say(
        &t,
        "manhole_cover_missing",
        spot(TIANPING, 40),
        "小区门口的井盖不见了，很危险",
    )
    .await;
    let (_, same) = t.get("/api/v1/hot-topics?days=7", Some(&district)).await;
    assert_eq!(same["topics"][0]["count"], 4, "cached");
    t.clock.advance(61 * SECOND);
    let (_, fresh) = t.get("/api/v1/hot-topics?days=7", Some(&district)).await;
    assert_eq!(fresh["topics"][0]["count"], 5, "{fresh:#}");
}
