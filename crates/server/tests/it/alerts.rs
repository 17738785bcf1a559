//! Alert rules in the service: an alert pending → firing → resolved with `for`, becoming a
//! case with its snapshot and writing its resolution into the case's log; CAP Alert,
//! Update and Cancel with references on the Atom feed; silences and inhibition over the
//! API; rollups and history; a firing alert and a silence across restarts (no second
//! case, the CAP chain continued, the silence still holding).

use crate::api_story;
use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::time::MINUTE;
use serde_json::{json, Value};

const CROWD: &str = "/api/v1/indicators/crowd_wukang/values";

async fn tick(t: &TestApp) -> Vec<Value> {
    cityos_server::vitals::alerts::tick(&t.svc.as_ref().unwrap().state)
        .await
        .unwrap()
}

async fn push(t: &TestApp, tok: &str, path: &str, value: f64) {
    let (s, v) = t.post(path, Some(tok), json!({"value": value})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

fn alert<'a>(v: &'a Value, rule: &str) -> Option<&'a Value> {
    v["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == rule)
}

/// The text between `<tag>` and `</tag>`.
fn el<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let from = xml
        .find(&open)
        .unwrap_or_else(|| panic!("<{tag}> in {xml}"))
        + open.len();
    let to = xml[from..].find(&format!("</{tag}>")).unwrap() + from;
    &xml[from..to]
}

async fn cap(t: &TestApp, id: &str) -> String {
    let (s, body, h) = t
        .raw(Method::GET, &format!("/cap/alerts/{id}.xml"), "", "", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/cap+xml"));
    body
}

api_story!(an_alert_fires_into_a_case_publishes_cap_and_resolves);
async fn an_alert_fires_into_a_case_publishes_cap_and_resolves(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let mut events = t.svc.as_ref().unwrap().state.0.bus.subscribe();

    // Yellow: pending for the rule's 3 minutes.
    push(&t, &zhang, CROWD, 1300.0).await;
    assert!(tick(&t).await.is_empty());
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    let a = alert(&v, "crowding_wukang").expect("pending");
    assert_eq!(a["state"], "pending");
    assert_eq!(a["region"], "310104");
    assert_eq!(a["case"], Value::Null);

    // Three minutes later at orange: it fires, becomes a case and a CAP Alert.
    t.clock.advance(3 * MINUTE);
    push(&t, &zhang, CROWD, 1700.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted.len(), 1, "{acted:?}");
    let fired = &acted[0];
    assert_eq!(fired["kind"], "alert_fired");
    assert_eq!(fired["level"], "orange");
    let number = fired["case"].as_str().expect("a case").to_string();
    let alert_id = fired["cap"]
        .as_str()
        .expect("public: a CAP message")
        .to_string();
    let (_, v) = t.get("/api/v1/alerts?state=firing", Some(&zhang)).await;
    let a = alert(&v, "crowding_wukang").unwrap();
    assert_eq!(a["case"]["number"], number.as_str());
    assert_eq!(v["groups"][0]["group"], "crowd");
    assert_eq!(v["groups"][0]["firing"], 1);
    let case_id = a["case"]["id"].as_i64().unwrap();
    let (_, c) = t
        .get(&format!("/api/v1/cases/{case_id}"), Some(&zhang))
        .await;
    assert_eq!(c["case"]["category"], "crowd_overlimit", "{c}");
    let text = c["reports"][0]["text"].as_str().unwrap();
    assert!(
        text.contains("武康大楼电子围栏人数 = 1700") && text.contains("橙色"),
        "the snapshot is the evidence: {text}"
    );
    let xml = cap(&t, &alert_id).await;
    assert_eq!(el(&xml, "msgType"), "Alert");
    assert_eq!(el(&xml, "severity"), "Severe");
    assert_eq!(el(&xml, "category"), "Safety");
    assert!(xml.contains("<polygon>"));

    // Red: the case's log notes the change; a CAP Update references the Alert.
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted[0]["kind"], "alert_level_changed");
    let update = cap(&t, acted[0]["cap"].as_str().unwrap()).await;
    assert_eq!(el(&update, "msgType"), "Update");
    assert!(el(&update, "references").contains(&alert_id));
    assert_eq!(el(&update, "severity"), "Extreme");

    // Back to calm: resolved, written into the case's log; CAP Cancel.
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 300.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted[0]["kind"], "alert_resolved");
    assert_eq!(acted[0]["case"], number.as_str());
    let cancel = cap(&t, acted[0]["cap"].as_str().unwrap()).await;
    assert_eq!(el(&cancel, "msgType"), "Cancel");
    assert_eq!(el(&cancel, "urgency"), "Past");
    let refs = el(&cancel, "references");
    assert!(
        refs.contains(&alert_id) && refs.split(' ').count() == 2,
        "{refs}"
    );
    let (_, c) = t
        .get(&format!("/api/v1/cases/{case_id}"), Some(&zhang))
        .await;
    let notes: Vec<&str> = c["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(notes.iter().any(|n| n.contains("级别变化")), "{notes:?}");
    assert!(notes.iter().any(|n| n.starts_with("告警解除")), "{notes:?}");
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    assert!(alert(&v, "crowding_wukang").is_none());

    // The Atom feed lists all three, newest first, each at its own URL; no sign-in.
    let (s, feed, h) = t.raw(Method::GET, "/cap/feed.atom", "", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/atom+xml"));
    assert_eq!(feed.matches("<entry>").count(), 3, "{feed}");
    assert!(feed.find("Cancel").unwrap() < feed.find("term=\"Alert\"").unwrap());
    assert!(feed.contains(&format!("/cap/alerts/{alert_id}.xml")));
    let (s, _, _) = t
        .raw(Method::GET, "/cap/alerts/nope.xml", "", "", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The live stream was told: level changes and the alert's life.
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let cityos_server::bus::BusEvent::Vital(v) = e {
            kinds.push(v.kind);
        }
    }
    for k in [
        "level_changed",
        "alert_fired",
        "alert_level_changed",
        "alert_resolved",
    ] {
        assert!(kinds.contains(&k), "{k} in {kinds:?}");
    }
}

api_story!(rollups_are_stored_and_history_reads_them);
async fn rollups_are_stored_and_history_reads_them(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let start = t.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    // Ten minutes, two values a minute.
    for m in 0..10 {
        push(&t, &zhang, CROWD, 100.0 + m as f64).await;
        t.clock.advance(30_000);
        push(&t, &zhang, CROWD, 200.0 + m as f64).await;
        t.clock.advance(30_000);
        tick(&t).await;
    }
    let q = |step: &str| {
        format!(
            "/api/v1/indicators/crowd_wukang/history?step={step}&from={}&to={}",
            cityos_core::time::format_rfc3339(start).replace('+', "%2B"),
            cityos_core::time::format_rfc3339(start + 10 * MINUTE).replace('+', "%2B")
        )
    };
    let (s, v) = t.get(&q("1m"), Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 10, "{v}");
    assert_eq!(pts[3]["n"], 2);
    assert_eq!(pts[3]["min"], 103.0);
    assert_eq!(pts[3]["max"], 203.0);
    assert_eq!(pts[3]["avg"], 153.0);
    assert_eq!(pts[3]["last"], 203.0);
    let (_, v) = t.get(&q("5m"), Some(&zhang)).await;
    let pts = v["points"].as_array().unwrap();
    assert_eq!(pts.len(), 2, "{v}");
    assert_eq!(pts[0]["n"], 10);
    assert_eq!(pts[1]["max"], 209.0);
    // The hourly rollup holds all twenty values.
    let (_, v) = t.get(&q("1h"), Some(&zhang)).await;
    let n: i64 = v["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["n"].as_i64().unwrap())
        .sum();
    assert_eq!(n, 20, "{v}");
    // A day is a Beijing day.
    let (_, v) = t.get(&q("1d"), Some(&zhang)).await;
    assert_eq!(v["points"][0]["t"], "2026-11-25T00:00:00+08:00", "{v}");
    assert_eq!(v["points"][0]["n"], 20);
    // Rollups survive a restart.
    let mut t = t;
    t.restart();
    let zhang = t.login("zhang.district").await;
    let (_, v) = t.get(&q("1m"), Some(&zhang)).await;
    assert_eq!(v["points"].as_array().unwrap().len(), 10);

    // Bad questions.
    for (path, says) in [
        (q("30s"), "whole minutes under an hour or whole hours"),
        (q("90m"), "whole minutes under an hour or whole hours"),
        (q("32d"), "whole minutes under an hour or whole hours"),
        (
            "/api/v1/indicators/crowd_wukang/history?from=2026-11-01T00:00:00%2B08:00&step=10m".to_string(),
            "at most 7 days",
        ),
        (q("1m").replace("crowd_wukang", "nope"), "was not found"),
        (
            "/api/v1/indicators/crowd_wukang/history?from=2026-11-26T00:00:00%2B08:00&to=2026-11-25T00:00:00%2B08:00".to_string(),
            "from must be before to",
        ),
        (
            "/api/v1/indicators/crowd_wukang/history?from=2016-01-01T00:00:00%2B08:00&step=1m".to_string(),
            "at most 10000",
        ),
        (
            "/api/v1/indicators/crowd_wukang/history?region=310104003001".to_string(),
            "not the district or one of its sub-districts",
        ),
        (
            "/api/v1/indicators/crowd_wukang/history?from=yesterday".to_string(),
            "not a datetime",
        ),
    ] {
        let (s, v) = t.get(&path, Some(&zhang)).await;
        assert!(s.is_client_error(), "{path}: {s}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{path}: {v}");
    }
}

api_story!(silences_and_inhibition_mute_notices_but_keep_the_state);
async fn silences_and_inhibition_mute_notices_but_keep_the_state(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let wang = t.login("wang.urban").await;
    // Refused silences, each named.
    for (body, status, says) in [
        (
            json!({"rule": "nope", "reason": "x", "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown alert rule",
        ),
        (
            json!({"rule": "crowding_wukang", "reason": " ", "duration": "1h"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reason",
        ),
        (
            json!({"rule": "crowding_wukang", "reason": "演练", "ends_at": "2020-01-01T00:00:00+08:00"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "end in the future",
        ),
        (
            json!({"rule": "crowding_wukang", "reason": "演练"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "either ends_at or duration",
        ),
        (
            json!({"rule": "crowding_wukang", "reason": "演练", "duration": "forever"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a length",
        ),
        (
            json!({"rule": "crowding_wukang", "reason": "演练", "duration": "1h", "region": "999"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not the district",
        ),
    ] {
        let (s, v) = t.post("/api/v1/silences", Some(&zhang), body).await;
        assert_eq!(s, status, "{v}");
        assert!(v["detail"].as_str().unwrap().contains(says), "{v}");
    }
    let body = json!({"rule": "crowding_wukang", "reason": "跨年夜演练", "duration": "2h"});
    let (s, _) = t.post("/api/v1/silences", Some(&wang), body.clone()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, sil) = t.post("/api/v1/silences", Some(&zhang), body).await;
    assert_eq!(s, StatusCode::CREATED, "{sil}");
    assert_eq!(sil["owner"], "zhang.district");
    let (_, l) = t.get("/api/v1/silences", Some(&zhang)).await;
    assert_eq!(l["silences"].as_array().unwrap().len(), 1);

    // Silenced: the alert fires (and shows so), but no case and no CAP.
    push(&t, &zhang, CROWD, 2100.0).await;
    tick(&t).await;
    t.clock.advance(3 * MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    assert!(tick(&t).await.is_empty());
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    let a = alert(&v, "crowding_wukang").unwrap();
    assert_eq!(
        (a["state"].as_str(), a["silenced"].as_bool()),
        (Some("firing"), Some(true))
    );
    assert_eq!(a["case"], Value::Null);
    let id = sil["id"].as_u64().unwrap();
    let path = format!("/api/v1/silences/{id}");
    let (s, _, _) = t.call(Method::DELETE, &path, Some(&zhang), None, &[]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, _) = t.call(Method::DELETE, &path, Some(&zhang), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "already ended");
    // Silence over, still firing: now it is news — a case and a CAP Alert.
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    let acted = tick(&t).await;
    let fired = acted
        .iter()
        .find(|a| a["rule"] == "crowding_wukang")
        .expect("told once the silence ends");
    assert_eq!(fired["kind"], "alert_fired");
    assert!(
        fired["case"].is_string() && fired["cap"].is_string(),
        "{fired}"
    );
    // Silenced again, it still resolves aloud: the warning it published is cancelled.
    let (s, _) = t
        .post(
            "/api/v1/silences",
            Some(&zhang),
            json!({"rule": "crowding_wukang", "reason": "演练", "duration": "1h"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    push(&t, &zhang, CROWD, 100.0).await;
    let acted = tick(&t).await;
    let resolved = acted
        .iter()
        .find(|a| a["rule"] == "crowding_wukang")
        .expect("resolution told");
    assert_eq!(resolved["kind"], "alert_resolved");
    let xml = cap(&t, resolved["cap"].as_str().unwrap()).await;
    assert_eq!(el(&xml, "msgType"), "Cancel");

    // A wide power outage mutes the streetlight alerts inside it.
    let outage = "/api/v1/indicators/power_outage_households/values";
    push(&t, &zhang, outage, 800.0).await;
    let acted = tick(&t).await;
    let fired = acted
        .iter()
        .find(|a| a["rule"] == "wide_power_outage")
        .expect("fires at once");
    assert!(fired["case"].is_string(), "orange opens a case: {fired}");
    let lights = "/api/v1/indicators/streetlights_out/values";
    push(&t, &zhang, lights, 150.0).await;
    tick(&t).await;
    t.clock.advance(10 * MINUTE);
    push(&t, &zhang, outage, 800.0).await;
    push(&t, &zhang, lights, 450.0).await;
    let acted = tick(&t).await;
    assert!(
        !acted.iter().any(|a| a["rule"] == "streetlights_out"),
        "{acted:?}"
    );
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    let a = alert(&v, "streetlights_out").unwrap();
    assert_eq!(
        (a["state"].as_str(), a["inhibited"].as_bool()),
        (Some("firing"), Some(true))
    );
    let (s, _) = t.get("/api/v1/alerts?state=burning", Some(&zhang)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (_, r) = t.get("/api/v1/alert-rules", Some(&zhang)).await;
    assert!(r["rules"].as_array().unwrap().len() >= 10);
}

api_story!(a_firing_alert_continues_across_a_restart);
async fn a_firing_alert_continues_across_a_restart(mut t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    push(&t, &zhang, CROWD, 1700.0).await;
    tick(&t).await;
    t.clock.advance(3 * MINUTE);
    push(&t, &zhang, CROWD, 1700.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted[0]["kind"], "alert_fired", "{acted:?}");
    let number = acted[0]["case"].as_str().unwrap().to_string();
    let alert_id = acted[0]["cap"].as_str().unwrap().to_string();

    t.restart();
    let zhang = t.login("zhang.district").await;
    // Still firing after the restart, with its case, before any new value arrives.
    assert!(tick(&t).await.is_empty(), "no value yet: nothing resolves");
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    let a = alert(&v, "crowding_wukang").expect("kept");
    assert_eq!(a["state"], "firing", "{a}");
    assert_eq!(a["case"]["number"], number.as_str(), "{a}");
    // Still breaching: no second firing, no second case.
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 1700.0).await;
    assert!(tick(&t).await.is_empty());
    // Red: noted on the same case; the CAP Update references the Alert sent before.
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted.len(), 1, "{acted:?}");
    assert_eq!(acted[0]["kind"], "alert_level_changed");
    assert_eq!(acted[0]["case"], number.as_str());
    let update_id = acted[0]["cap"].as_str().unwrap().to_string();
    let update = cap(&t, &update_id).await;
    assert_eq!(el(&update, "msgType"), "Update");
    assert!(el(&update, "references").contains(&alert_id));

    // Another restart, then calm: the Cancel references every earlier message.
    t.restart();
    let zhang = t.login("zhang.district").await;
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 300.0).await;
    let acted = tick(&t).await;
    assert_eq!(acted[0]["kind"], "alert_resolved", "{acted:?}");
    assert_eq!(acted[0]["case"], number.as_str());
    let cancel = cap(&t, acted[0]["cap"].as_str().unwrap()).await;
    assert_eq!(el(&cancel, "msgType"), "Cancel");
    let refs = el(&cancel, "references");
    assert!(
        refs.contains(&alert_id) && refs.contains(&update_id) && refs.split(' ').count() == 2,
        "{refs}"
    );
    let (_, list) = t
        .get("/api/v1/cases?category=crowd_overlimit", Some(&zhang))
        .await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(1), "{list}");

    // Resolved stays resolved across a restart; the next firing starts a new chain.
    t.restart();
    let zhang = t.login("zhang.district").await;
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    assert!(alert(&v, "crowding_wukang").is_none(), "{v}");
    push(&t, &zhang, CROWD, 1700.0).await;
    tick(&t).await;
    t.clock.advance(3 * MINUTE);
    push(&t, &zhang, CROWD, 1700.0).await;
    let acted = tick(&t).await;
    let xml = cap(&t, acted[0]["cap"].as_str().unwrap()).await;
    assert_eq!(el(&xml, "msgType"), "Alert", "a new chain");
}

api_story!(a_silence_holds_across_a_restart);
async fn a_silence_holds_across_a_restart(mut t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let body = json!({"rule": "crowding_wukang", "reason": "跨年夜演练", "duration": "2h"});
    let (s, sil) = t.post("/api/v1/silences", Some(&zhang), body).await;
    assert_eq!(s, StatusCode::CREATED, "{sil}");
    let id = sil["id"].as_u64().unwrap();

    t.restart();
    let zhang = t.login("zhang.district").await;
    let (_, l) = t.get("/api/v1/silences", Some(&zhang)).await;
    assert_eq!(l["silences"][0]["id"], id, "{l}");
    assert_eq!(l["silences"][0]["reason"], "跨年夜演练");
    // Silenced still: the alert fires (and shows so) but no case and no CAP.
    push(&t, &zhang, CROWD, 2100.0).await;
    tick(&t).await;
    t.clock.advance(3 * MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    assert!(tick(&t).await.is_empty());
    let (_, v) = t.get("/api/v1/alerts", Some(&zhang)).await;
    let a = alert(&v, "crowding_wukang").unwrap();
    assert_eq!(
        (a["state"].as_str(), a["silenced"].as_bool()),
        (Some("firing"), Some(true))
    );
    assert_eq!(a["case"], Value::Null);

    // Ended, it stays ended after a restart, and its id is not given again.
    let path = format!("/api/v1/silences/{id}");
    let (s, _, _) = t.call(Method::DELETE, &path, Some(&zhang), None, &[]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    t.restart();
    let zhang = t.login("zhang.district").await;
    let (_, l) = t.get("/api/v1/silences", Some(&zhang)).await;
    assert_eq!(l["silences"].as_array().map(Vec::len), Some(0), "{l}");
    let (s, _, _) = t.call(Method::DELETE, &path, Some(&zhang), None, &[]).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let body = json!({"rule": "crowding_wukang", "reason": "演练", "duration": "1h"});
    let (_, again) = t.post("/api/v1/silences", Some(&zhang), body).await;
    assert!(again["id"].as_u64().unwrap() > id, "{again}");
    // The firing alert, no longer silenced after the restart, is news now.
    t.restart();
    let zhang = t.login("zhang.district").await;
    let (s, _, _) = t
        .call(
            Method::DELETE,
            &format!("/api/v1/silences/{}", again["id"]),
            Some(&zhang),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    t.clock.advance(MINUTE);
    push(&t, &zhang, CROWD, 2100.0).await;
    let acted = tick(&t).await;
    let fired = acted
        .iter()
        .find(|a| a["rule"] == "crowding_wukang")
        .expect("told once the silence ends");
    assert_eq!(fired["kind"], "alert_fired");
    assert!(fired["case"].is_string(), "{fired}");
}
