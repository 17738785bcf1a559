//! Issue 11 (trust), the protocols as their clients expect them: the escalation timer
//! survives a failing store; Open311's full descriptions, addresses, 404s, `Retry-After`
//! and CORS; real text with angle brackets stored as text; the event stream replays any
//! backlog; `/metrics` with bounded labels and an optional token; external indicator
//! values checked against their range; unknown transition fields, foreign media URLs and
//! invisible text refused.

use crate::api_story;
use crate::support::{spot, t0, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::HOUR;
use cityos_server::runtime::service::Database;
use serde_json::{json, Value};
use std::net::SocketAddr;

const FORM: &str = "application/x-www-form-urlencoded";
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

async fn create(t: &TestApp, fmt: &str, form: &str, peer: u8) -> (StatusCode, String) {
    let p: SocketAddr = format!("10.9.0.{peer}:5000").parse().unwrap();
    let (s, b, _) = t
        .raw(
            Method::POST,
            &format!("/open311/v2/requests.{fmt}"),
            FORM,
            form,
            Some(p),
        )
        .await;
    (s, b)
}

fn at(n: usize) -> String {
    let p = spot(TIANPING, n);
    format!("lat={}&long={}", p[1], p[0])
}

/// A value of a Prometheus series (first line that starts with `series `).
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_text(t: &TestApp) -> String {
    let (s, v, _) = t.call(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    v.as_str().unwrap().to_string()
}

/// Makes every store write of an escalation fail (as a full disk would), or lets it pass
/// again: a trigger on the log table, installed from outside the service.
fn break_escalations(db: &Database, broken: bool) {
    match db.clone() {
        Database::Sqlite(dir) => {
            let c = rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let sql = if broken {
                "CREATE TRIGGER inject_disk_full BEFORE INSERT ON case_log \
                 WHEN NEW.action = 'escalate' \
                 BEGIN SELECT RAISE(ABORT, 'injected: database or disk is full'); END;"
            } else {
                "DROP TRIGGER inject_disk_full;"
            };
            c.execute_batch(sql).unwrap();
        }
        Database::Postgres(url) => {
            std::thread::spawn(move || {
                let (url, schema) = cityos_engine::split_schema(&url);
                let schema = schema.unwrap();
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let sql = if broken {
                    format!(
                        "CREATE FUNCTION {schema}.inject_disk_full() RETURNS trigger AS $$ \
                         BEGIN RAISE EXCEPTION 'injected: could not extend file'; END $$ LANGUAGE plpgsql; \
                         CREATE TRIGGER inject_disk_full BEFORE INSERT ON {schema}.case_log \
                         FOR EACH ROW WHEN (NEW.action = 'escalate') EXECUTE FUNCTION {schema}.inject_disk_full();"
                    )
                } else {
                    format!(
                        "DROP TRIGGER inject_disk_full ON {schema}.case_log; \
                         DROP FUNCTION {schema}.inject_disk_full();"
                    )
                };
                c.batch_execute(&sql).unwrap();
            })
            .join()
            .unwrap();
        }
    }
}

// Item 8: a failed tick used to end the timer thread; no escalation until a restart.
api_story!(escalation_timer_survives_a_failing_store);
async fn escalation_timer_survives_a_failing_store(t: TestApp) {
    t.seed().await;
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("street_vending", spot(TIANPING, 2), "游商占道，请处理"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let zhang = t.login("zhang.district").await;
    break_escalations(&t.db, true);
    t.clock.set(t0() + 2 * HOUR);
    let series = "cityos_background_errors_total{loop=\"escalation\"}";
    let mut errors = 0.0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        errors = metric(&metrics_text(&t).await, series).unwrap();
        if errors >= 2.0 {
            break;
        }
    }
    assert!(errors >= 2.0, "the failing ticks are counted: {errors}");
    let (_, v) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
        .await;
    assert_eq!(v["case"]["escalations"], 0, "{v}");
    // The disk is freed: the same timer, still running, escalates what is due.
    break_escalations(&t.db, false);
    let mut escalated = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, v) = t
            .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
            .await;
        if v["case"]["escalations"].as_u64() == Some(1) {
            escalated = v;
            break;
        }
    }
    assert_eq!(escalated["case"]["escalated_to"], "dist-ccc", "{escalated}");
    let m = metrics_text(&t).await;
    let last = metric(
        &m,
        "cityos_background_last_success_seconds{loop=\"escalation\"}",
    )
    .unwrap();
    assert!(last >= ((t0() + 2 * HOUR) / 1000) as f64, "{m}");
}

// Item 15: the full description, the address, 404, Retry-After, CORS.
api_story!(open311_answers_as_its_clients_expect);
async fn open311_answers_as_its_clients_expect(t: TestApp) {
    t.seed().await;
    let long = format!(
        "{}——门口的井盖松动，晚上看不清，已经有两位老人差点绊倒，请尽快处理。",
        "天平路一小区东门".repeat(8)
    );
    assert!(long.chars().count() > 60);
    let form = format!(
        "service_code=noise&{}&description={}&address_string={}",
        at(4),
        enc(&long),
        enc("天平路 120 弄 3 号东门")
    );
    let (s, b) = create(&t, "json", &form, 1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let made: Value = serde_json::from_str(&b).unwrap();
    let id = made[0]["service_request_id"].as_str().unwrap().to_string();
    // Single and list, JSON and XML: the whole text, and the address as given.
    let (s, one, _) = t
        .call(
            Method::GET,
            &format!("/open311/v2/requests/{id}.json"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one[0]["description"], long.as_str(), "{one}");
    assert_eq!(one[0]["address"], "天平路 120 弄 3 号东门", "{one}");
    let (_, list, _) = t
        .call(Method::GET, "/open311/v2/requests.json", None, None, &[])
        .await;
    let r = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service_request_id"] == id.as_str())
        .unwrap();
    assert_eq!(r["description"], long.as_str());
    assert_eq!(r["address"], "天平路 120 弄 3 号东门");
    for path in [
        format!("/open311/v2/requests/{id}.xml"),
        "/open311/v2/requests.xml".to_string(),
    ] {
        let (s, x, _) = t.raw(Method::GET, &path, "text/plain", "", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            x.contains(&format!("<description>{long}</description>")),
            "{x}"
        );
        assert!(
            x.contains("<address>天平路 120 弄 3 号东门</address>"),
            "{x}"
        );
    }
    // Staff see the address in the report too.
    let zhang = t.login("zhang.district").await;
    let (_, c) = t.get(&format!("/api/v1/cases/{id}"), Some(&zhang)).await;
    assert!(
        c.to_string().contains("地址：天平路 120 弄 3 号东门"),
        "{c}"
    );
    // Without an address the regions are the address, as before.
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=noise&{}&description=x", at(5)),
        2,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id2 = serde_json::from_str::<Value>(&b).unwrap()[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, r2) = t
        .get(&format!("/open311/v2/requests/{id2}.json"), None)
        .await;
    assert!(r2[0]["address"]
        .as_str()
        .unwrap()
        .starts_with("徐汇区天平路街道"));
    // An address alone: 400 saying that coordinates are needed.
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=noise&address_string={}", enc("天平路 120 弄")),
        3,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("needs coordinates"), "{b}");
    // The cap on GET requests is stated in the discovery.
    let (_, d) = t.get("/open311/v2/discovery.json", None).await;
    assert_eq!(d["limits"]["requests_max_results"], 1000, "{d}");
    assert!(d["key_service"].as_str().unwrap().contains("1000"));
    // An unknown service: 404, in the definition and in a create.
    let (s, _) = t.get("/open311/v2/services/nope.json", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = create(&t, "xml", &format!("service_code=nope&{}", at(6)), 4).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    // An anonymous address over its limit: 429 with Retry-After.
    let peer: SocketAddr = "10.9.1.1:5000".parse().unwrap();
    let mut last = None;
    for i in 0..=cityos_server::intake::citizen::ANONYMOUS_LIMIT {
        let (s, b, h) = t
            .raw(
                Method::POST,
                "/open311/v2/requests.json",
                FORM,
                &format!("service_code=noise&{}&description=n{i}", at(7)),
                Some(peer),
            )
            .await;
        last = Some((s, b, h));
    }
    let (s, b, h) = last.unwrap();
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let wait: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    // CORS on the public ends, preflight included; not on the signed-in API.
    let (s, _, h) = t
        .call(
            Method::OPTIONS,
            "/open311/v2/requests.json",
            None,
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert!(h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase()
        .contains("content-type"));
    for path in [
        "/open311/v2/services.json",
        "/open311/v2/discovery.xml",
        "/cap/feed.atom",
    ] {
        let (s, _, h) = t
            .call(
                Method::GET,
                path,
                None,
                None,
                &[("origin", "https://app.example")],
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(h["access-control-allow-origin"], "*", "{path}");
    }
    let (_, _, h) = t
        .call(
            Method::GET,
            "/api/v1/categories",
            None,
            None,
            &[("origin", "https://app.example")],
        )
        .await;
    assert!(h.get("access-control-allow-origin").is_none());
    let (s, _, h) = t
        .call(
            Method::OPTIONS,
            "/api/v1/reports",
            None,
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "POST"),
            ],
        )
        .await;
    assert_ne!(s, StatusCode::NO_CONTENT);
    assert!(h.get("access-control-allow-origin").is_none());
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
            report("noise", spot(TIANPING, 9), text),
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

/// Reads SSE frames until `want` events with ids arrived (or a timeout): their ids.
async fn read_ids(body: axum::body::Body, want: usize) -> Vec<i64> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut text = String::new();
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while ids.len() < want {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await;
        let Ok(Some(Ok(frame))) = frame else { break };
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            for line in block.lines() {
                if let Some(id) = line.strip_prefix("id:") {
                    ids.push(id.trim().parse().unwrap());
                }
            }
        }
    }
    ids
}

// Item 17: a client more than 1,000 events behind used to lose everything between the
// first page and the live events.
api_story!(event_stream_replays_a_long_backlog);
async fn event_stream_replays_a_long_backlog(t: TestApp) {
    t.seed().await;
    let h = t.svc.as_ref().unwrap().handle().clone();
    // 1,300 reports straight to the engine (each is at least one event), in batches.
    let cfg = crate::support::config();
    let territory = &cfg.territory;
    let grids: Vec<[f64; 2]> = territory
        .regions()
        .filter(|(_, r)| r.level == cityos_core::Level::Grid)
        .map(|(id, _)| territory.interior_point(id))
        .take(50)
        .collect();
    let h2 = h.clone();
    std::thread::spawn(move || {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..1300usize {
            let p = grids[i % grids.len()];
            let r = cityos_core::workflow::NewReport {
                channel: cityos_core::case::Channel::Citizen,
                category: ["noise", "street_vending"][i % 2].into(),
                lon: p[0],
                lat: p[1],
                text: format!("第 {i} 条"),
                contact: None,
                at: t0() + i as i64,
                media: Vec::new(),
            };
            let tx = tx.clone();
            h2.send(cityos_engine::Request::Report(r), move |a| {
                let _ = tx.send(a.is_ok());
            })
            .unwrap();
        }
        drop(tx);
        assert!(rx.iter().all(|ok| ok), "every report was taken");
    })
    .join()
    .unwrap();
    let last = h.with(|e| e.last_event()).unwrap();
    assert!(last >= 1300, "{last}");
    let admin = t.login("admin").await;
    let req = axum::http::Request::builder()
        .uri("/api/v1/events/stream")
        .header("authorization", format!("Bearer {admin}"))
        .header("last-event-id", "0")
        .body(axum::body::Body::empty())
        .unwrap();
    use tower::ServiceExt;
    let resp = cityos_server::app(t.svc.as_ref().unwrap().state.clone())
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ids = read_ids(resp.into_body(), last as usize).await;
    assert_eq!(ids.len() as i64, last, "every event, none skipped");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, once each");
    assert_eq!(ids.last().copied(), Some(last));
}

// Item 19: invented methods and unknown paths add no series; the optional token.
#[tokio::test]
async fn metrics_labels_are_bounded_and_the_token_is_asked() {
    let t = TestApp::sqlite();
    for i in 0..50 {
        let m = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let _ = t
            .call(m, &format!("/no/such/path/{i}"), None, None, &[])
            .await;
        let m = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let _ = t.call(m, "/api/v1/categories", None, None, &[]).await;
    }
    let m = metrics_text(&t).await;
    assert!(!m.contains("INVENTED") && !m.contains("BREW"), "{m}");
    assert!(m.contains("method=\"other\",route=\"unmatched\""), "{m}");
    assert!(
        m.contains("method=\"other\",route=\"/api/v1/categories\""),
        "{m}"
    );
    assert!(!m.contains("/no/such/path"));
    let series = m
        .lines()
        .filter(|l| l.starts_with("cityos_http_request_duration_seconds_count"))
        .count();
    assert!(series <= 4, "{series} series: {m}");
    // With a token set, /metrics asks for it.
    let _ = t
        .svc
        .as_ref()
        .unwrap()
        .state
        .0
        .metrics_token
        .set("s3cret".into());
    let (s, v, _) = t.call(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["code"], "missing_token");
    let (s, _, _) = t
        .call(Method::GET, "/metrics", Some("wrong"), None, &[])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v, _) = t
        .call(Method::GET, "/metrics", Some("s3cret"), None, &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v
        .as_str()
        .unwrap()
        .contains("cityos_background_errors_total"));
}

// Item 20: external values outside the indicator's range are refused and counted.
#[tokio::test]
async fn external_values_outside_the_range_are_refused() {
    let t = TestApp::sqlite();
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    for bad in [json!(-5), json!(1e300)] {
        let (s, v) = t
            .post(
                "/api/v1/indicators/river_water_level/values",
                Some(&zhang),
                json!({"value": bad}),
            )
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["code"], "value_out_of_range");
        let d = v["detail"].as_str().unwrap();
        assert!(
            d.contains("river_water_level") && d.contains("[0, 10]"),
            "{d}"
        );
    }
    // Nothing turned red: the indicator has no value yet.
    let (_, v) = t.get("/api/v1/indicators", Some(&zhang)).await;
    let river = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "river_water_level")
        .unwrap()
        .clone();
    assert!(river["value"].is_null(), "{river}");
    assert_eq!(river["level"], "normal", "{river}");
    let (s, v) = t
        .post(
            "/api/v1/indicators/river_water_level/values",
            Some(&zhang),
            json!({"value": 4.3}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let m = metrics_text(&t).await;
    assert_eq!(
        metric(&m, "cityos_indicator_values_refused_total"),
        Some(2.0)
    );
    // Every indicator of the demo declares its range.
    for ind in crate::support::config().indicators.iter() {
        assert!(ind.range.0 < ind.range.1, "{}", ind.code);
    }
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

// Item 8: the tickers report their rounds in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickers_report_their_rounds() {
    let t = TestApp::sqlite();
    let st = t.svc.as_ref().unwrap().state.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let every = std::time::Duration::from_millis(50);
    let a = tokio::spawn(cityos_server::runtime::tickers::alerts(
        st.clone(),
        every,
        stop.clone(),
    ));
    let s = tokio::spawn(cityos_server::runtime::tickers::sensing(
        st.clone(),
        every,
        stop.clone(),
    ));
    let mut m = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        m = metrics_text(&t).await;
        if ["alerts", "sensing", "data"].iter().all(|l| {
            metric(
                &m,
                &format!("cityos_background_last_success_seconds{{loop=\"{l}\"}}"),
            )
            .is_some_and(|v| v > 0.0)
        }) {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = (a.await, s.await);
    for l in ["alerts", "sensing", "data"] {
        let at = metric(
            &m,
            &format!("cityos_background_last_success_seconds{{loop=\"{l}\"}}"),
        )
        .unwrap();
        assert_eq!(at, (t0() / 1000) as f64, "{l}: {m}");
        assert_eq!(
            metric(
                &m,
                &format!("cityos_background_errors_total{{loop=\"{l}\"}}")
            ),
            Some(0.0),
            "{l}"
        );
    }
}
