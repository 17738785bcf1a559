//! Input taken as written and input refused: real Chinese text with angle brackets
//! stored and shown as text; unknown transition fields, foreign media URLs and invisible
//! text refused.

use crate::api_story;
use crate::open311::create;
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

const TIANPING: &str = "310104003";

fn report(category: &str, p: [f64; 2], text: &str) -> Value {
    json!({"category": category, "lon": p[0], "lat": p[1], "text": text})
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn at(n: usize) -> String {
    let p = spot(TIANPING, n);
    format!("lat={}&long={}", p[1], p[0])
}

// Item 16: ASCII angle brackets as book-title marks are text, not HTML.
api_story!(chinese_text_with_angle_brackets_is_text);
async fn chinese_text_with_angle_brackets_is_text(t: TestApp) {
    t.seed().await;
    let text = "《‹A市A6区征地补偿安置办法>》第<3>条：补偿款未到位 <script>x</script> & 更多";
    let (s, b) = create(
        &t,
        "xml",
        &format!("service_code=noise&{}&description={}", at(8), enc(text)),
        9,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = b
        .split("<service_request_id>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let (_, x, _) = t
        .raw(
            Method::GET,
            &format!("/open311/v2/requests/{id}.xml"),
            "text/plain",
            "",
            None,
        )
        .await;
    assert!(
        x.contains("《‹A市A6区征地补偿安置办法&gt;》第&lt;3&gt;条：补偿款未到位 &lt;script&gt;x&lt;/script&gt; &amp; 更多"),
        "escaped in XML: {x}"
    );
    assert!(!x.contains("<script>"));
    let (_, j) = t
        .get(&format!("/open311/v2/requests/{id}.json"), None)
        .await;
    assert_eq!(j[0]["description"], text);
    // The JSON API takes it too, and answers it as it was written.
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            // Elsewhere: the same words nearby would join the Open311 case as the same
            // complaint (issue 14).
            report("noise", spot("310104004", 9), text),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // Attribute answers and ratings' comments are text as well.
    let (s, b) = create(
        &t,
        "json",
        &format!(
            "service_code=lift_entrapment&{}&attribute[people_trapped]=2-5&description={}",
            at(10),
            enc("<1号楼>电梯")
        ),
        10,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
}

// Item 21: unknown transition fields, foreign media URLs, invisible text.
api_story!(smaller_refusals);
async fn smaller_refusals(t: TestApp) {
    t.seed().await;
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("street_vending", spot(TIANPING, 11), "游商占道"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["case"]["id"].as_i64().unwrap();
    let li = t.login("li.tianping").await;
    let path = format!("/api/v1/cases/{id}/transitions");
    for (body, field) in [
        (json!({"action": "file", "priority": "urgent"}), "priority"),
        (
            json!({"action": "reject", "reason": "重复", "reson": "x"}),
            "reson",
        ),
    ] {
        let (s, v) = t.post(&path, Some(&li), body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "invalid_body");
        assert!(v["detail"].as_str().unwrap().contains(field), "{v}");
    }
    let (_, c) = t.get(&format!("/api/v1/cases/{id}"), Some(&li)).await;
    assert_eq!(c["case"]["state"], "reported", "nothing happened: {c}");
    // The documented fields still work.
    let (s, v) = t
        .post(
            &path,
            Some(&li),
            json!({"action": "file", "note": "受理", "version": c["case"]["version"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Photos only from this server.
    for url in [
        "http://evil.example/x.jpg",
        "https://evil.example/media/0123456789abcdef0123456789abcdef.jpg",
        "http://cityos.test/uploads/0123456789abcdef0123456789abcdef.jpg",
        "ftp://cityos.test/media/0123456789abcdef0123456789abcdef.jpg",
    ] {
        let mut r = report("street_vending", spot(TIANPING, 12), "游商");
        r["media"] = json!([url]);
        let (s, v, _) = t
            .call(
                Method::POST,
                "/api/v1/reports",
                None,
                Some(r),
                &[("host", "cityos.test")],
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{url}: {v}");
        assert_eq!(v["code"], "invalid_media_url", "{url}");
    }
    let (s, b) = create(
        &t,
        "json",
        &format!(
            "service_code=noise&{}&media_url={}",
            at(12),
            enc("http://evil.example/a.png")
        ),
        12,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Text of invisible characters says nothing.
    for text in ["\u{200B}\u{200C}\u{200D}", "\u{FEFF} \u{2060}\t", " \n "] {
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                report("noise", spot(TIANPING, 13), text),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text:?}: {v}");
        assert!(v["detail"].as_str().unwrap().contains("say what"));
    }
    let (s, v) = t
        .post(
            &path,
            Some(&li),
            json!({"action": "note", "note": "\u{200B}\u{200B}"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}
