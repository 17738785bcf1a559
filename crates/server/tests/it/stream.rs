//! The live event stream: case events in the caller's scope, resumable with
//! `Last-Event-ID`, and a long backlog replayed page by page.

use crate::api::act;
use crate::api_story;
use crate::support::{spot, t0, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// Reads SSE frames until `want` events arrived (or a timeout), returning (id, event, data).
pub(crate) async fn read_events(body: axum::body::Body, want: usize) -> Vec<(i64, String, Value)> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut text = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while out.len() < want {
        let frame = tokio::time::timeout_at(deadline, body.frame()).await;
        let Ok(Some(Ok(frame))) = frame else { break };
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
        while let Some(i) = text.find("\n\n") {
            let block: String = text.drain(..i + 2).collect();
            let (mut id, mut ev, mut data) = (0, String::new(), Value::Null);
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().unwrap_or(0);
                } else if let Some(v) = line.strip_prefix("event:") {
                    ev = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data = serde_json::from_str(v.trim()).unwrap_or(Value::Null);
                }
            }
            if id > 0 {
                out.push((id, ev, data));
            }
        }
    }
    out
}

pub(crate) async fn open_stream(
    t: &TestApp,
    token: &str,
    last: Option<i64>,
) -> axum::http::Response<axum::body::Body> {
    let mut b = axum::http::Request::builder()
        .uri("/api/v1/events/stream")
        .header("authorization", format!("Bearer {token}"));
    if let Some(l) = last {
        b = b.header("last-event-id", l.to_string());
    }
    let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
    tower::ServiceExt::oneshot(router, b.body(axum::body::Body::empty()).unwrap())
        .await
        .unwrap()
}

api_story!(live_events_in_scope_and_resumable);
async fn live_events_in_scope_and_resumable(t: TestApp) {
    t.seed().await;
    let li = t.login("li.tianping").await;
    let zhang = t.login("zhang.district").await;
    // Live: the district officer's stream, opened before the reports.
    let live = open_stream(&t, &zhang, None).await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    let (_, a) = t
        .post(
            "/api/v1/reports",
            None,
            crate::api::report("noise", spot("310104003", 3)),
        )
        .await;
    let (_, b) = t
        .post(
            "/api/v1/reports",
            None,
            crate::api::report("noise", spot("310104016", 3)),
        )
        .await;
    let na = a["case"]["number"].as_str().unwrap().to_string();
    act(&t, Some(&li), &na, json!({"action": "file"})).await;
    let got = read_events(live.into_body(), 3).await;
    let kinds: Vec<&str> = got.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(kinds, ["created", "created", "transitioned"]);
    assert_eq!(got[0].2["number"], na.as_str());
    assert_eq!(got[1].2["number"], b["case"]["number"]);
    assert_eq!(got[2].2["to"], "filed");
    // Scope: the sub-district officer's replay holds only her sub-district's events.
    let mine = read_events(open_stream(&t, &li, Some(0)).await.into_body(), 2).await;
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.iter().all(|e| e.2["subdistrict"] == "310104003"));
    // Resume after the first event: the rest, in order, nothing twice.
    let rest = read_events(open_stream(&t, &zhang, Some(got[0].0)).await.into_body(), 2).await;
    assert_eq!(
        rest.iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![got[1].0, got[2].0]
    );
    // Without a token: refused; with a bad Last-Event-ID: a problem.
    let (s, _) = t.get("/api/v1/events/stream", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v, _) = t
        .call(
            Method::GET,
            "/api/v1/events/stream",
            Some(&zhang),
            None,
            &[("last-event-id", "yesterday")],
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    // Not an event id in the query either — alone, beside a good header, or negative.
    for (query, header) in [
        ("last_event_id=AAA", None),
        ("last_event_id=AAA", Some("0")),
        ("last_event_id=-1", None),
        ("last_event_id=0", Some("-1")),
    ] {
        let headers: Vec<(&str, &str)> = header.map(|h| ("last-event-id", h)).into_iter().collect();
        let (s, v, _) = t
            .call(
                Method::GET,
                &format!("/api/v1/events/stream?{query}"),
                Some(&zhang),
                None,
                &headers,
            )
            .await;
        assert_eq!(
            (s, v["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_parameter")),
            "{query} {header:?}"
        );
    }
    // EventSource can pass the token as a parameter.
    let (s, _, h) = {
        let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
        let req = axum::http::Request::builder()
            .uri(format!(
                "/api/v1/events/stream?access_token={zhang}&last_event_id=0"
            ))
            .body(axum::body::Body::empty())
            .unwrap();
        let r = tower::ServiceExt::oneshot(router, req).await.unwrap();
        (r.status(), (), r.headers().clone())
    };
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/event-stream");
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
                priority: None,
                playbook: None,
                suggestion: None,
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

/// `recent=n` without a resume point: the stream starts with the events among the last n
/// (those in scope) — a new page's feed is not empty; more than 500 is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_feed_starts_with_the_recent_events() {
    let t = TestApp::sqlite();
    t.seed().await;
    let token = t.login("zhang.district").await;
    for i in 0..6 {
        let p = spot("310104003", i);
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": format!("最近动态 {i}")}),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let open = |q: &str| {
        let req = axum::http::Request::builder()
            .uri(format!("/api/v1/events/stream{q}"))
            .header("authorization", format!("Bearer {token}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
        async move { tower::ServiceExt::oneshot(router, req).await.unwrap() }
    };
    let r = open("?recent=3").await;
    assert_eq!(r.status(), StatusCode::OK);
    let got = read_events(r.into_body(), 3).await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "in order: {got:?}");
    // Without `recent`: live only, nothing from before.
    let r = open("").await;
    let none = tokio::time::timeout(
        std::time::Duration::from_millis(500),
        read_events(r.into_body(), 1),
    )
    .await;
    assert!(
        none.is_err() || none.as_ref().is_ok_and(|v| v.is_empty()),
        "no backlog without recent: {none:?}"
    );
    // A sub-district officer gets the last 3 events of their own sub-district, even when
    // the district's last events all happened elsewhere.
    for i in 0..6 {
        let p = spot("310104004", i);
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": format!("别处动态 {i}")}),
            )
            .await;
        assert!(s.is_success(), "{v}");
    }
    let li = t.login("li.tianping").await;
    let req = axum::http::Request::builder()
        .uri("/api/v1/events/stream?recent=3")
        .header("authorization", format!("Bearer {li}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
    let r = tower::ServiceExt::oneshot(router, req).await.unwrap();
    let mine = read_events(r.into_body(), 3).await;
    assert_eq!(mine.len(), 3, "{mine:?}");
    assert!(
        mine.iter().all(|(_, _, v)| v["subdistrict"] == "310104003"),
        "{mine:?}"
    );
    assert_eq!(
        mine.last().unwrap().0,
        got.last().unwrap().0,
        "the newest of their own: {mine:?} {got:?}"
    );
    let r = open("?recent=501").await;
    use http_body_util::BodyExt;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value =
        serde_json::from_slice(&r.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(v["detail"].as_str().unwrap().contains("recent"), "{v}");
}
