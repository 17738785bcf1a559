//! The sensing end over HTTP: NDJSON readings, refused lines counted by reason, alarms with
//! `for` and hysteresis becoming one case per device and rule, repeats and the all-clear
//! written into that case's log, silent devices; bounded memory and back-pressure on a
//! flood of readings (cases stay responsive); alarm states across a restart.

use crate::api_story;
use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::time::{format_rfc3339, MINUTE};
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::Value;

fn machine(t: &TestApp) -> String {
    t.sign(&Principal {
        name: "gateway-1".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    })
}

async fn send(t: &TestApp, token: Option<&str>, lines: &[String]) -> (StatusCode, Value) {
    let body = lines.join("\n");
    let mut headers = vec![];
    let auth;
    if let Some(tk) = token {
        auth = format!("Bearer {tk}");
        headers.push(("authorization", auth.as_str()));
    }
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            "/api/v1/readings",
            "application/x-ndjson",
            &body,
            &headers,
        )
        .await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn reading(device: &str, metric: &str, value: f64) -> String {
    format!(r#"{{"device":"{device}","metric":"{metric}","value":{value}}}"#)
}

async fn log_notes(t: &TestApp, number: &str) -> Vec<String> {
    let admin = t.login("admin").await;
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&admin))
        .await;
    let log = c["log"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("{c}"));
    log.iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["note"].as_str().unwrap_or("")
            )
        })
        .collect()
}

api_story!(readings_become_alarms_and_cases);
async fn readings_become_alarms_and_cases(t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    let now = t.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    // Who may send.
    let (s, _) = send(&t, None, &[reading("WL-001", "depth_cm", 1.0)]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let zhao = t.login("zhao.inspector").await;
    let (s, _) = send(&t, Some(&zhao), &[reading("WL-001", "depth_cm", 1.0)]).await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // A batch with good and bad lines: the good are taken, the bad counted and named.
    let future = format_rfc3339(now + 60 * MINUTE);
    let (s, v) = send(
        &t,
        Some(&m),
        &[
            reading("WL-001", "depth_cm", 5.0),
            reading("WL-001", "depth_cm", 18.0),
            "{nope".into(),
            reading("XX-999", "depth_cm", 1.0),
            reading("WL-001", "depth_cm", 900.0),
            format!(r#"{{"device":"WL-001","metric":"depth_cm","value":1,"at":"{future}"}}"#),
            r#"{"device":"WL-001","metric":"depth_cm","value":"high"}"#.into(),
            String::new(),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2, "{v}");
    assert_eq!(v["refused"]["malformed"], 2);
    assert_eq!(v["refused"]["unknown_device"], 1);
    assert_eq!(v["refused"]["out_of_range"], 1);
    assert_eq!(v["refused"]["future"], 1);
    let lines: Vec<i64> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7]);
    assert!(v["errors"][1]["problem"]
        .as_str()
        .unwrap()
        .contains("XX-999"));
    assert!(
        v["alarms"].as_array().unwrap().is_empty(),
        "18 cm must hold for 2 minutes first"
    );

    // Still high after the `for` duration: the alarm fires and becomes a case.
    t.clock.advance(3 * MINUTE);
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 20.0)]).await;
    let alarms = v["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 1, "{v}");
    assert_eq!(alarms[0]["rule"], "underpass_water_high");
    assert_eq!(alarms[0]["change"], "fired");
    let number = alarms[0]["case"].as_str().unwrap().to_string();
    let admin = t.login("admin").await;
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&admin))
        .await;
    assert_eq!(c["case"]["category"], "waterlogging", "{c}");
    assert_eq!(c["case"]["channel"], "sensor");
    // Firing stays firing; between the lines nothing changes (hysteresis).
    for value in [25.0, 12.0] {
        let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", value)]).await;
        assert!(v["alarms"].as_array().unwrap().is_empty(), "{value}: {v}");
    }
    let (_, st) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    assert_eq!(st["alarms_firing"], 1, "{st}");
    // Below the clear line: cleared, and the case's log says so.
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 8.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "cleared", "{v}");
    assert_eq!(v["alarms"][0]["case"], number.as_str());
    // It rises again: the same open case takes the repeat.
    t.clock.advance(MINUTE);
    send(&t, Some(&m), &[reading("WL-001", "depth_cm", 30.0)]).await;
    t.clock.advance(3 * MINUTE);
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 31.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "fired", "{v}");
    assert_eq!(
        v["alarms"][0]["case"],
        number.as_str(),
        "one open case per device and rule"
    );
    let notes = log_notes(&t, &number).await;
    assert!(
        notes.iter().any(|n| n.starts_with("note 报警解除")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n.starts_with("note 报警：")),
        "{notes:?}"
    );
    let (_, st) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    assert_eq!(st["refused"]["unknown_device"], 1);
    assert_eq!(st["accepted"], 8, "{st}");
    assert_eq!(st["devices"], 367);
}

api_story!(silent_devices_raise_alarms);
async fn silent_devices_raise_alarms(t: TestApp) {
    let m = machine(&t);
    // Every water-level gauge reports now; then WL-002 falls silent for 31 minutes.
    let all: Vec<String> = (1..=40)
        .map(|i| reading(&format!("WL-{i:03}"), "depth_cm", 2.0))
        .collect();
    let (_, v) = send(&t, Some(&m), &all).await;
    assert_eq!(v["accepted"], 40, "{v}");
    t.clock.advance(20 * MINUTE);
    let others: Vec<String> = (1..=40)
        .filter(|i| *i != 2)
        .map(|i| reading(&format!("WL-{i:03}"), "depth_cm", 2.0))
        .collect();
    send(&t, Some(&m), &others).await;
    t.clock.advance(11 * MINUTE);
    let fired = cityos_server::intake::sensor::tick(&t.svc.as_ref().unwrap().state)
        .await
        .unwrap();
    let offline: Vec<&Value> = fired
        .iter()
        .filter(|a| a["rule"] == "device_offline")
        .collect();
    assert_eq!(offline.len(), 1, "{fired:?}");
    assert_eq!(offline[0]["device"], "WL-002");
    assert!(offline[0]["case"].is_string());
    // Its next reading clears it.
    let (_, v) = send(&t, Some(&m), &[reading("WL-002", "depth_cm", 2.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "cleared", "{v}");
    assert_eq!(v["alarms"][0]["rule"], "device_offline");
}

#[test]
fn the_device_index_finds_every_id_and_nothing_else() {
    let long = "a-device-id-longer-than-twenty-three-bytes";
    let ids: Vec<String> = (0..5000)
        .map(|i| format!("D{i:07}"))
        .chain([long.to_string(), "x".into(), "D0000001".into()])
        .collect();
    let d =
        cityos_server::intake::sensor::devindex::DeviceIndex::new(ids.iter().map(String::as_str));
    for (i, id) in ids.iter().enumerate().take(5002) {
        assert_eq!(d.get(id), Some(i as u32), "{id}");
    }
    assert_eq!(
        d.get("D0000001"),
        Some(1),
        "a repeated id keeps its first index"
    );
    for miss in [
        "",
        "D",
        "D00000010",
        "d0000001",
        "a-device-id-longer-than-twenty-three-byteS",
    ] {
        assert_eq!(d.get(miss), None, "{miss:?}");
    }
    assert!(
        d.bytes() <= 5003 * 128,
        "at most 4 slots of 32 bytes per id"
    );
}

api_story!(a_flood_of_readings_keeps_memory_bounded);
/// A flood of water-meter readings at every time of the last day, and metrics no device
/// is declared for: the meters' history stays a fixed ring of hourly sums, the undeclared
/// pairs are refused and counted by reason, and the 12-hour consumption is still right.
async fn a_flood_of_readings_keeps_memory_bounded(t: TestApp) {
    let token = machine(&t);
    let now = cityos_server::Clock::now(t.clock.as_ref());
    let state = t.svc.as_ref().unwrap().state.clone();
    let meters = t
        .svc
        .as_ref()
        .unwrap()
        .state
        .0
        .cfg
        .sensing
        .devices
        .iter()
        .filter(|d| d.kind == "water_meter")
        .count();
    for round in 0..10 {
        let mut lines = Vec::with_capacity(5_000);
        for i in 0..5_000i64 {
            // Spread over the last 24 hours, every minute a different one.
            let at = now - ((round * 5_000 + i) % 1_440) * MINUTE;
            lines.push(format!(
                r#"{{"device":"WM-00{}","metric":"flow_m3","value":0.001,"at":"{}"}}"#,
                1 + i % 3,
                format_rfc3339(at)
            ));
        }
        lines.push(reading("WM-001", "depth_cm", 1.0));
        lines.push(reading("SM-001", "flow_m3", 1.0));
        let (s, v) = send(&t, Some(&token), &lines).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["accepted"], 5_000, "{v}");
        assert_eq!(v["refused"]["undeclared_metric"], 2, "{v}");
        // The packs keep a meter's flows in at most BUCKETS buckets (plus the one in
        // progress), however many readings arrive.
        let held = state.0.scenarios.live.held_points();
        let most = meters * (cityos_server::scenarios::facts::BUCKETS as usize + 2);
        assert!(held <= most, "{held} buckets held for {meters} meters");
    }
    // What the lone-elder pack reads: WM-001's flows over exactly the last 12 hours.
    let hour = 60 * MINUTE;
    let mut expected = 0.0;
    for round in 0..10 {
        for i in (0..5_000i64).filter(|i| i % 3 == 0) {
            let at = now - ((round * 5_000 + i) % 1_440) * MINUTE;
            // To one bucket: the window's oldest bucket may start before its start (the
            // buckets span the longest window a pack reads flows over).
            let width = state.0.scenarios.live.bucket_width("flow_m3").unwrap();
            if at.div_euclid(width) * width + width > now - 12 * hour {
                expected += 0.001;
            }
        }
    }
    let used = state.0.scenarios.live.aggregate(
        "WM-001",
        "flow_m3",
        now,
        12 * hour,
        cityos_core::scenario::expr::Agg::Sum,
    );
    // The series reaches back 24 hours: the window is covered.
    let used = used.expect("covered");
    assert!((used - expected).abs() < 1e-6, "{used} != {expected}");
    let (_, st) = t.get("/api/v1/readings/stats", Some(&token)).await;
    assert_eq!(st["refused"]["undeclared_metric"], 20, "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_readings_meets_back_pressure_and_cases_stay_responsive() {
    let t = TestApp::sqlite();
    t.seed().await;
    let st = t.svc.as_ref().unwrap().state.clone();
    let sensor = t.sign(&Principal {
        name: "g".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    let auth = format!("Bearer {sensor}");
    let zhang = t.login("zhang.district").await;
    // While a batch holds the gate, the next waits its 2 s and is told to come back.
    let permit = st.0.sensor.ingest_gate.acquire().await.unwrap();
    let line = r#"{"device":"WL-001","metric":"depth_cm","value":2}"#;
    let (s, b, h) = t
        .raw_with(
            Method::POST,
            "/api/v1/readings",
            "application/x-ndjson",
            line,
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{b}");
    assert_eq!(h["retry-after"], "1");
    assert!(b.contains("busy"), "{b}");
    // The case API does not wait for the readings.
    let (s, _) = t.get("/api/v1/cases", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK);
    drop(permit);

    // More senders than may wait are refused before their bodies are read.
    let permit = st.0.sensor.ingest_gate.acquire().await.unwrap();
    let headers = [("authorization", auth.as_str())];
    let one = |_| {
        t.raw_with(
            Method::POST,
            "/api/v1/readings",
            "application/x-ndjson",
            r#"{"device":"WL-001","metric":"depth_cm","value":2}"#,
            &headers,
        )
    };
    let started = std::time::Instant::now();
    let statuses: Vec<StatusCode> = futures_util::future::join_all((0..12).map(one))
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{statuses:?}"
    );
    drop(permit);

    // A flood: many large batches at once, each waiting its turn; the case API answers
    // meanwhile, and every reading is counted.
    let body: String = (0..5000)
        .map(|i| {
            format!(
                "{{\"device\":\"WL-00{}\",\"metric\":\"depth_cm\",\"value\":{}}}\n",
                1 + i % 5,
                i % 7
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (st, body) = (st.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            cityos_server::intake::sensor::ingest(&st, body.into(), None).await
        }));
    }
    let (s, _) = t.get("/api/v1/cases", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK);
    let mut taken = 0;
    for task in tasks {
        let v = task.await.unwrap().unwrap();
        assert_eq!(v["accepted"], 5000);
        taken += 1;
    }
    assert_eq!(taken, 20);
    let (_, m, _) = t.raw(Method::GET, "/metrics", "", "", None).await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("cityos_readings_batches_busy_total ")
                && l.trim_end()
                    .rsplit(' ')
                    .next()
                    .unwrap()
                    .parse::<u64>()
                    .unwrap()
                    >= 13),
        "{m}"
    );
    let (_, stats) = t.get("/api/v1/readings/stats", Some(&zhang)).await;
    assert_eq!(stats["accepted"], 5000 * taken);
}

api_story!(a_firing_alarm_continues_across_a_restart);
async fn a_firing_alarm_continues_across_a_restart(mut t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    send(&t, Some(&m), &[reading("WL-001", "depth_cm", 18.0)]).await;
    t.clock.advance(3 * MINUTE);
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 20.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "fired", "{v}");
    let number = v["alarms"][0]["case"].as_str().unwrap().to_string();
    // Pending before the restart: its `for` counts from before it.
    send(&t, Some(&m), &[reading("WL-002", "depth_cm", 18.0)]).await;

    t.restart();
    let m = machine(&t);
    let admin = t.login("admin").await;
    let (_, st) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    assert_eq!(st["alarms_firing"], 1, "{st}");
    // Still breaching: no second firing, no second case.
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 25.0)]).await;
    assert!(v["alarms"].as_array().unwrap().is_empty(), "{v}");
    t.clock.advance(3 * MINUTE);
    let (_, v) = send(&t, Some(&m), &[reading("WL-002", "depth_cm", 19.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "fired", "pending kept: {v}");
    // The all-clear is noted on the case filed before the restart.
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 8.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "cleared", "{v}");
    assert_eq!(v["alarms"][0]["case"], number.as_str());
    let notes = log_notes(&t, &number).await;
    assert!(
        notes.iter().any(|n| n.starts_with("note 报警解除")),
        "{notes:?}"
    );
    // Rising again after another restart: the same open case takes the repeat.
    t.restart();
    let m = machine(&t);
    send(&t, Some(&m), &[reading("WL-001", "depth_cm", 30.0)]).await;
    t.clock.advance(3 * MINUTE);
    let (_, v) = send(&t, Some(&m), &[reading("WL-001", "depth_cm", 31.0)]).await;
    assert_eq!(v["alarms"][0]["change"], "fired", "{v}");
    assert_eq!(v["alarms"][0]["case"], number.as_str());
}

api_story!(an_alarm_firing_again_at_the_same_time_after_its_case_closed_gets_a_new_case);
/// An alarm's case is filed under a key of device, rule and the time it fired (so a batch
/// applied twice files it once). The same reading sent again after the all-clear and after
/// the case was closed fires the alarm again with the same time: it gets a new open case,
/// keyed by the closed one — and again after that one is closed (a chain), never the
/// closed case.
async fn an_alarm_firing_again_at_the_same_time_after_its_case_closed_gets_a_new_case(t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    let officer = t.login("zhang.district").await;
    let now = t.clock.0.load(std::sync::atomic::Ordering::SeqCst);
    let at = format_rfc3339(now - MINUTE);
    let tilted = format!(r#"{{"device":"MH-001","metric":"tilt_deg","value":20,"at":"{at}"}}"#);
    let mut numbers: Vec<String> = Vec::new();
    for round in 0..3 {
        let (s, v) = send(&t, Some(&m), std::slice::from_ref(&tilted)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["alarms"][0]["change"], "fired", "round {round}: {v}");
        let number = v["alarms"][0]["case"].as_str().unwrap().to_string();
        assert!(
            !numbers.contains(&number),
            "round {round}: a closed case {number} taken again ({numbers:?})"
        );
        let (_, c) = t
            .get(&format!("/api/v1/cases/{number}"), Some(&officer))
            .await;
        let id = c["case"]["id"].as_i64().unwrap_or_else(|| panic!("{c}"));
        // The all-clear, then the case taken round the loop to closed.
        let (_, v) = send(
            &t,
            Some(&m),
            &[format!(
                r#"{{"device":"MH-001","metric":"tilt_deg","value":0,"at":"{}"}}"#,
                format_rfc3339(now)
            )],
        )
        .await;
        assert_eq!(v["alarms"][0]["change"], "cleared", "{v}");
        let depts: Vec<String> = c["case"]["tasks"]
            .as_array()
            .unwrap_or_else(|| panic!("tasks: {c}"))
            .iter()
            .map(|x| x["department"].as_str().unwrap().to_string())
            .collect();
        let sub = c["case"]["subdistrict"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("a sub-district: {c}"))
            .to_string();
        let who = |role: Role, department: Option<&str>, scope: Option<&str>| {
            t.sign(&Principal {
                name: format!("{role:?}").to_lowercase(),
                role,
                department: department.map(String::from),
                scope: scope.map(String::from),
                channel: None,
                expires_at: i64::MAX,
            })
        };
        let inspector = who(Role::Inspector, None, Some(&sub));
        let mut steps = Vec::new();
        for d in &depts {
            let handler = who(Role::Handler, Some(d), None);
            steps.push((
                handler.clone(),
                serde_json::json!({"action": "acknowledge"}),
            ));
            steps.push((handler, serde_json::json!({"action": "handle"})));
        }
        steps.push((
            inspector,
            serde_json::json!({"action": "verify", "attachments": ["p.jpg"]}),
        ));
        steps.push((officer.clone(), serde_json::json!({"action": "close"})));
        for (token, body) in &steps {
            let (s, v) = t
                .post(
                    &format!("/api/v1/cases/{id}/transitions"),
                    Some(token),
                    body.clone(),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "round {round}, {body}: {v}");
        }
        numbers.push(number);
    }
}
