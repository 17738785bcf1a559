//! Vital signs over HTTP: the Xuhui pack in four domains, levels moving with readings,
//! pushed values with hysteresis, case statistics, and refusals (external values outside
//! an indicator's range); dataset indicators following imports.

use crate::api_story;
use crate::support::{metric, metrics_text};
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

fn find<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap_or_else(|| panic!("{code} in {v}"))
}

api_story!(vital_signs_move_with_readings_pushes_and_cases);
async fn vital_signs_move_with_readings_pushes_and_cases(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let (s, v) = t.get("/api/v1/indicators", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let all = v["indicators"].as_array().unwrap();
    assert!(all.len() >= 40, "{}", all.len());
    for d in ["safety", "construction", "market", "livelihood"] {
        assert!(all.iter().filter(|i| i["domain"] == d).count() >= 8, "{d}");
    }
    let (_, m) = t
        .get("/api/v1/indicators?domain=market", Some(&zhang))
        .await;
    assert!(m["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["domain"] == "market"));

    // Readings: the gauge's sub-district and the district see the flood.
    let sensor = t.sign(&Principal {
        name: "g".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    let auth = format!("Bearer {sensor}");
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            "/api/v1/readings",
            "application/x-ndjson",
            r#"{"device":"WL-001","metric":"depth_cm","value":25}"#,
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, v) = t
        .get("/api/v1/indicators?domain=safety", Some(&zhang))
        .await;
    let w = find(&v, "underpass_water_depth");
    assert_eq!(w["value"], 25.0, "{w}");
    assert_eq!(w["level"], "yellow");
    assert_eq!(w["thresholds"]["orange"], 30.0);

    // Pushed values, with hysteresis on the way down.
    let path = "/api/v1/indicators/crowd_wukang/values";
    let mut levels = Vec::new();
    for value in [1300.0, 1170.0, 1140.0, 2100.0] {
        let (s, v) = t.post(path, Some(&zhang), json!({"value": value})).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        levels.push(v["level"].as_str().unwrap().to_string());
    }
    assert_eq!(levels, vec!["yellow", "yellow", "blue", "red"]);
    // A sub-district's value is its own.
    let (s, v) = t
        .post(
            path,
            Some(&zhang),
            json!({"value": 100, "region": "310104003"}),
        )
        .await;
    assert_eq!((s, v["level"].as_str()), (StatusCode::OK, Some("normal")));
    let (_, d) = t
        .get("/api/v1/indicators?domain=safety", Some(&zhang))
        .await;
    assert_eq!(find(&d, "crowd_wukang")["level"], "red");

    // Case statistics.
    let p = spot("310104003", 3);
    t.post(
        "/api/v1/reports",
        None,
        json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商"}),
    )
    .await;
    let (_, v) = t
        .get("/api/v1/indicators?domain=livelihood", Some(&zhang))
        .await;
    assert_eq!(find(&v, "open_cases_total")["value"], 1.0, "{v}");
    assert_eq!(find(&v, "hotline_12345_per_hour")["value"], 1.0);
    let (_, v) = t
        .get(
            "/api/v1/indicators?region=310104003&domain=construction",
            Some(&zhang),
        )
        .await;
    assert_eq!(find(&v, "open_cases_construction")["value"], 1.0, "{v}");

    // Refusals.
    let li = t.login("li.tianping").await;
    for (tok, path, body, status) in [
        (
            zhang.as_str(),
            "/api/v1/indicators/no_such/values",
            json!({"value": 1}),
            StatusCode::NOT_FOUND,
        ),
        (
            zhang.as_str(),
            "/api/v1/indicators/underpass_water_depth/values",
            json!({"value": 1}),
            StatusCode::CONFLICT,
        ),
        (
            zhang.as_str(),
            path,
            json!({"value": "high"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            zhang.as_str(),
            path,
            json!({"value": 1, "region": "310104003001"}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            li.as_str(),
            path,
            json!({"value": 1}),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let (s, v) = t.post(path, Some(tok), body).await;
        assert_eq!(s, status, "{path}: {v}");
    }
    let (s, _) = t.get("/api/v1/indicators?region=999", Some(&zhang)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t.get("/api/v1/indicators", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
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

api_story!(dataset_indicators_follow_imports);
async fn dataset_indicators_follow_imports(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let csv = "household,address,community,meter,elder_alone\nH-1,a,,WM-001,是\nH-2,b,,WM-002,否\nH-3,c,,WM-003,yes\n";
    let auth = format!("Bearer {zhang}");
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            "/api/v1/datasets/lone_elder_households?owner=dist-civil-affairs&sensitivity=sensitive",
            "text/csv",
            csv,
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, v) = t
        .get("/api/v1/indicators?domain=livelihood", Some(&zhang))
        .await;
    let ind = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "lone_elder_households")
        .unwrap();
    assert_eq!(ind["value"], 2.0, "是 and yes count, 否 does not: {ind}");
    assert_eq!(ind["source"], "dataset");
}

api_story!(lift_fault_rate_counts_lift_cases_per_100_lifts);
/// The lift-fault rate (`per_100_devices`): lift entrapments and faults created in the
/// last 30 days per 100 lift controllers, in the district and per sub-district (the
/// lifts located there); other categories do not count.
async fn lift_fault_rate_counts_lift_cases_per_100_lifts(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let cfg = crate::support::config();
    let terr = &cfg.territory;
    let lifts_in = |sub: &str| {
        cfg.sensing
            .devices
            .iter()
            .filter(|d| d.kind == "lift_controller")
            .filter(|d| {
                terr.locate(d.lon, d.lat)
                    .is_ok_and(|chain| terr.codes(chain).subdistrict.as_deref() == Some(sub))
            })
            .count()
    };
    let total: usize = cfg
        .sensing
        .devices
        .iter()
        .filter(|d| d.kind == "lift_controller")
        .count();
    assert_eq!(total, 60);
    let sensor = t.sign(&Principal {
        name: "lift-gateway".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    });
    // Two sub-districts with lifts; one case each of entrapment and fault, plus a case
    // of another category that must not count.
    let subs: Vec<&str> = [
        "310104003",
        "310104004",
        "310104007",
        "310104008",
        "310104011",
    ]
    .into_iter()
    .filter(|s| lifts_in(s) > 0)
    .take(2)
    .collect();
    assert_eq!(subs.len(), 2);
    for (i, (sub, cat)) in [
        (subs[0], "lift_entrapment"),
        (subs[0], "lift_fault"),
        (subs[1], "lift_entrapment"),
        (subs[1], "street_vending"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = spot(sub, 2 + 5 * i);
        let (s, v) = t
            .post(
                "/api/v1/reports",
                Some(&sensor),
                json!({"category": cat, "lon": p[0], "lat": p[1], "text": "电梯"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
    }
    let (_, v) = t
        .get("/api/v1/indicators?domain=safety", Some(&zhang))
        .await;
    let l = find(&v, "lift_fault_rate");
    assert_eq!(l["value"], 3.0 * 100.0 / 60.0, "{l}");
    assert_eq!(l["level"], "yellow", "{l}");
    assert_eq!(l["source"], "cases");
    let (_, v) = t
        .get(
            &format!("/api/v1/indicators?domain=safety&region={}", subs[0]),
            Some(&zhang),
        )
        .await;
    let l = find(&v, "lift_fault_rate");
    assert_eq!(
        l["value"].as_f64().unwrap(),
        2.0 * 100.0 / lifts_in(subs[0]) as f64,
        "{l}"
    );
    // Thirty days on, those cases are out of the window.
    t.clock
        .advance(30 * cityos_core::time::DAY + cityos_core::time::MINUTE);
    let zhang = t.login("zhang.district").await;
    let (_, v) = t
        .get("/api/v1/indicators?domain=safety", Some(&zhang))
        .await;
    let l = find(&v, "lift_fault_rate");
    assert_eq!(l["value"], 0.0, "{l}");
    assert_eq!(l["level"], "normal", "{l}");
}

// The `indicator_value` port: a room feeding a vital sign it computes itself is held to
// the same rules as a pushed value (declared, external, a vital region, in range).
#[tokio::test]
async fn rooms_feed_external_indicators_through_the_port() {
    let t = TestApp::sqlite();
    t.seed().await;
    let st = t.svc.as_ref().unwrap().state.clone();
    let set = st.0.ports.indicator_value;
    let now = st.now();
    let e = set(&st, "no_such", "310104", 1.0, now).unwrap_err();
    assert!(e.contains("no_such"), "{e}");
    let e = set(&st, "river_water_level", "310104", -5.0, now).unwrap_err();
    assert!(e.contains("[0, 10]"), "{e}");
    let e = set(&st, "river_water_level", "999", 4.0, now).unwrap_err();
    assert!(e.contains("999"), "{e}");
    set(&st, "river_water_level", "310104", 4.3, now).unwrap();
    let zhang = t.login("zhang.district").await;
    let (_, v) = t.get("/api/v1/indicators", Some(&zhang)).await;
    assert_eq!(find(&v, "river_water_level")["value"], 4.3, "{v}");
}
