//! The inspectors' mobile end: photos uploaded and attached to reports, GPS reports from
//! the grid, the verification list, verification only with photo evidence, and a phone's
//! offline queue replayed with its Idempotency-Keys creating nothing twice.

use crate::api_story;
use crate::open311::PNG;
use crate::support::{spot, TestApp};
use axum::body::Body;
use axum::http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

async fn upload(t: &TestApp, token: Option<&str>, bytes: &[u8]) -> (StatusCode, Value) {
    let mut b = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/api/v1/media")
        .header("content-type", "image/png")
        .header("host", "cityos.test");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let resp = cityos_server::app(t.svc.as_ref().unwrap().state.clone())
        .oneshot(b.body(Body::from(bytes.to_vec())).unwrap())
        .await
        .unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (s, serde_json::from_slice(&b).unwrap())
}

async fn queued(
    t: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value) {
    let (s, v, _) = t
        .call(
            Method::POST,
            path,
            Some(token),
            Some(body),
            &[("idempotency-key", key)],
        )
        .await;
    (s, v)
}

api_story!(inspector_reports_and_verifies_with_photos);
async fn inspector_reports_and_verifies_with_photos(t: TestApp) {
    t.seed().await;
    let zhao = t.login("zhao.inspector").await;
    let wang = t.login("wang.urban").await;
    let admin = t.login("admin").await;
    // Photos need a signed-in caller.
    let (s, v) = upload(&t, None, PNG).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let (s, photo) = upload(&t, Some(&zhao), PNG).await;
    assert_eq!(s, StatusCode::CREATED, "{photo}");
    let url = photo["media_url"].as_str().unwrap().to_string();

    // A report from the grid with GPS and photos, sent twice by a phone that lost the answer.
    let p = spot("310104003", 7);
    let report = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商占道，已拍照", "media": [url]});
    let (s, first) = queued(&t, &zhao, "/api/v1/reports", "phone-7-q1", report.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    let (s, again) = queued(&t, &zhao, "/api/v1/reports", "phone-7-q1", report.clone()).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(first["case"]["number"], again["case"]["number"]);
    let number = first["case"]["number"].as_str().unwrap().to_string();
    assert_eq!(first["case"]["channel"], "inspector");
    assert_eq!(
        first["case"]["state"], "dispatched",
        "inspector reports skip filing"
    );
    let (_, stats) = t.get("/api/v1/stats", Some(&admin)).await;
    assert_eq!(stats["total"], 1, "the replay created nothing");
    // A photo address that names nothing, and too many photos, are refused.
    let bad = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "x", "media": ["http://cityos.test/media/ffffffffffffffffffffffffffffffff.png"]});
    let (s, v) = t.post("/api/v1/reports", Some(&zhao), bad).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unknown_media")),
        "{v}"
    );
    let many = json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "x", "media": vec![url.clone(); 10]});
    let (s, _) = t.post("/api/v1/reports", Some(&zhao), many).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The squad handles it; then it awaits the inspector's on-site verification.
    for a in ["acknowledge", "start", "handle"] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{number}/transitions"),
                Some(&wang),
                json!({"action": a}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{a}: {v}");
    }
    let (_, inbox) = t.get("/api/v1/inbox", Some(&zhao)).await;
    assert_eq!(inbox["cases"][0]["number"], number.as_str(), "{inbox}");

    // Without a photo the verification is refused and nothing changes.
    let path = format!("/api/v1/cases/{number}/transitions");
    let (s, v) = t
        .post(&path, Some(&zhao), json!({"action": "verify"}))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("evidence_required")),
        "{v}"
    );
    let (_, c) = t.get(&format!("/api/v1/cases/{number}"), Some(&zhao)).await;
    assert_eq!(
        c["state"].as_str().or(c["case"]["state"].as_str()),
        Some("handled"),
        "{c}"
    );

    // With the photo, queued offline and sent twice: verified once.
    let (s, photo2) = upload(&t, Some(&zhao), &[PNG, b"x"].concat()).await;
    assert_eq!(s, StatusCode::CREATED);
    let evidence =
        json!({"action": "verify", "note": "现场已清理", "attachments": [photo2["media_url"]]});
    let (s, v1) = queued(&t, &zhao, &path, "phone-7-q2", evidence.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v1}");
    let (s, v2) = queued(&t, &zhao, &path, "phone-7-q2", evidence).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v1, v2, "the replay answers the first answer");
    let (_, c) = t.get(&format!("/api/v1/cases/{number}"), Some(&zhao)).await;
    let log = c["log"]
        .as_array()
        .or(c["case"]["log"].as_array())
        .unwrap_or_else(|| panic!("{c}"));
    let verifies = log.iter().filter(|e| e["action"] == "verify").count();
    assert_eq!(verifies, 1, "{c}");
    let text = c.to_string();
    assert!(
        text.contains(photo2["media_url"].as_str().unwrap()),
        "the evidence is in the log"
    );
    assert!(text.contains(&url), "the report's photo is on the case");
}
