//! Devices as they come (issue 22), over HTTP on both stores: SenML, telemetry and a
//! mapped vendor shape reach the same alarm rule as the native NDJSON; bad records
//! (missing name, two values, times out of range, units that disagree, a mapping that
//! points at nothing, a kind without a mapping, a body over the limit) refused by reason,
//! named, counted by device kind, nothing else lost; a gateway's SenML pack for 1,000
//! devices; the device registry for every role, registered twice, decommissioned, moved,
//! audited and kept across a restart; late readings never fire alarms.

use crate::api_story;
use crate::support::{metric, metrics_text, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::MINUTE;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

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

async fn post(
    t: &TestApp,
    token: Option<&str>,
    path: &str,
    ctype: &str,
    body: &str,
) -> (StatusCode, Value) {
    let auth = token.map(|tk| format!("Bearer {tk}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let (s, b, _) = t.raw_with(Method::POST, path, ctype, body, &headers).await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn now_of(t: &TestApp) -> i64 {
    t.clock.0.load(std::sync::atomic::Ordering::SeqCst)
}

/// The same 18 cm, then 20 cm after the rule's two minutes, in the four shapes.
async fn four_shapes(t: &TestApp, m: &str, value: f64) -> Vec<Value> {
    let now = now_of(t);
    let s = now / 1000;
    let mut out = Vec::new();
    for (path, ctype, body) in [
        (
            "/api/v1/readings".to_string(),
            "application/x-ndjson",
            format!(r#"{{"device":"WL-001","metric":"depth_cm","value":{value}}}"#),
        ),
        (
            "/api/v1/readings".to_string(),
            "application/senml+json",
            format!(
                r#"[{{"bn":"urn:dev:mac:WL-002:","bt":{s},"bu":"cm","bver":10,"n":"depth_cm","v":{value}}}]"#
            ),
        ),
        (
            "/api/v1/readings?payload=telemetry&device=WL-003".to_string(),
            "application/json",
            format!(r#"{{"ts":{now},"values":{{"depth_cm":{value}}}}}"#),
        ),
        (
            "/api/v1/readings?payload=mapped&kind=water_level".to_string(),
            "application/json",
            format!(r#"{{"dev":"WL-004","ts":{s},"val":{value}}}"#),
        ),
    ] {
        let (st, v) = post(t, Some(m), &path, ctype, &body).await;
        assert_eq!(st, StatusCode::OK, "{path}: {v}");
        assert_eq!(v["accepted"], 1, "{path}: {v}");
        out.push(v);
    }
    out
}

api_story!(every_shape_reaches_the_same_alarm);
async fn every_shape_reaches_the_same_alarm(t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    for v in four_shapes(&t, &m, 18.0).await {
        assert!(v["alarms"].as_array().unwrap().is_empty(), "{v}");
    }
    t.clock.advance(3 * MINUTE);
    for v in four_shapes(&t, &m, 20.0).await {
        let a = v["alarms"].as_array().unwrap();
        assert_eq!(a.len(), 1, "{v}");
        assert_eq!(a[0]["rule"], "underpass_water_high");
        assert_eq!(a[0]["change"], "fired");
    }
    // A kind's declared shape on its own: the gas detectors speak telemetry.
    let (s, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?device=GAS-0001",
        "application/json",
        r#"{"lel_pct": 3}"#,
    )
    .await;
    assert_eq!((s, &v["accepted"]), (StatusCode::OK, &json!(1)), "{v}");
    let admin = t.login("admin").await;
    let (_, st) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    let rule = st["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "underpass_water_high")
        .unwrap()
        .clone();
    assert_eq!(rule["raised"], 4, "{st}");
    assert_eq!(rule["kind"], "water_level");
    assert_eq!(st["alarms_firing"], 4);
    let text = metrics_text(&t).await;
    assert_eq!(
        metric(
            &text,
            "cityos_sensing_alarms_raised_total{rule=\"underpass_water_high\",kind=\"water_level\"}"
        ),
        Some(4.0)
    );
    // The vital sign all four feed: the deepest underpass is 20 cm now.
    let (_, ind) = t.get("/api/v1/indicators", Some(&admin)).await;
    let text = ind.to_string();
    assert!(text.contains("underpass_water_depth"), "{text}");
}

api_story!(bad_records_are_refused_by_reason_and_the_rest_kept);
async fn bad_records_are_refused_by_reason_and_the_rest_kept(t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    let pack = r#"[
        {"bn":"WL-005:","bu":"cm","n":"depth_cm","v":3},
        {"v":1},
        {"n":"depth_cm","v":1,"vs":"high"},
        {"n":"depth_cm","v":1,"t":1e12},
        {"n":"depth_cm","v":1,"u":"m"},
        {"n":"depth_cm","v":4}
    ]"#;
    let (s, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?payload=senml",
        "application/json",
        pack,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 2, "{v}");
    for (reason, n) in [
        ("no_name", 1),
        ("malformed", 1),
        ("bad_time", 1),
        ("unit_mismatch", 1),
    ] {
        assert_eq!(v["refused"][reason], n, "{reason}: {v}");
    }
    let errors = v["errors"].as_array().unwrap();
    let reasons: Vec<&str> = errors
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        ["no_name", "malformed", "bad_time", "unit_mismatch"],
        "{v}"
    );
    assert_eq!(errors[1]["record"], 3);
    assert!(
        errors[1]["problem"].as_str().unwrap().contains("v and vs"),
        "{v}"
    );
    assert!(
        errors[3]["problem"].as_str().unwrap().contains("\"cm\""),
        "{v}"
    );

    // A mapping that points at nothing: that record refused, the good one kept.
    let now_s = now_of(&t) / 1000;
    let body = format!(
        r#"[{{"dev":"WL-006","val":2}},{{"dev":"WL-006","ts":{now_s}}},{{"dev":"WL-006","ts":{now_s},"val":3}}]"#
    );
    let (_, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?payload=mapped&kind=water_level",
        "application/json",
        &body,
    )
    .await;
    assert_eq!(v["accepted"], 1, "{v}");
    assert_eq!(v["refused"]["mapping_missing"], 2, "{v}");
    assert!(
        v["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("\"/ts\""),
        "{v}"
    );
    // A kind without a mapping; a payload name that is not one.
    let (_, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?payload=mapped&kind=gas_lel",
        "application/json",
        r#"{"x":1}"#,
    )
    .await;
    assert_eq!(v["refused"]["no_mapping"], 1, "{v}");
    let (s, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?payload=xml",
        "application/json",
        "{}",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Not SenML at all.
    let (_, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/senml+json",
        r#"{"n":1}"#,
    )
    .await;
    assert_eq!(v["refused"]["malformed"], 1, "{v}");
    // Over the size limit: refused whole, named, counted.
    let big = format!(
        "[{}]",
        vec![r#"{"n":"WL-001:depth_cm","v":1}"#; 300_000].join(",")
    );
    let (s, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings?payload=senml",
        "application/json",
        &big,
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("too_large"), "{v}");

    let admin = t.login("admin").await;
    let (_, st) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    assert_eq!(st["refused"]["too_large"], 1, "{st}");
    assert_eq!(
        st["refused_by_kind"]["water_level"]["unit_mismatch"], 1,
        "{st}"
    );
    assert_eq!(
        st["refused_by_kind"]["water_level"]["mapping_missing"], 2,
        "{st}"
    );
    assert_eq!(st["refused_by_kind"]["gas_lel"]["no_mapping"], 1, "{st}");
    assert_eq!(st["refused_by_kind"]["unknown"]["too_large"], 1, "{st}");
    let text = metrics_text(&t).await;
    assert_eq!(
        metric(
            &text,
            "cityos_readings_refused_total{reason=\"unit_mismatch\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &text,
            "cityos_readings_refused_by_kind_total{reason=\"mapping_missing\",kind=\"water_level\"}"
        ),
        Some(2.0)
    );
    // Every line of the exposition is a comment or `name{labels} number`.
    for l in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, n) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
        assert!(n.parse::<f64>().is_ok(), "{l}");
    }
}

api_story!(a_gateway_sends_1000_devices_in_one_senml_pack);
async fn a_gateway_sends_1000_devices_in_one_senml_pack(t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    // The gateway's devices, registered through the API in one CSV.
    let mut csv = String::from("id,kind,lon,lat,owner,tags\n");
    for i in 0..1000 {
        csv.push_str(&format!(
            "GW-{i:04},water_level,121.456286,31.192528,dist-drainage,underpass\n"
        ));
    }
    // Over the import's row limit: refused whole, named, nothing registered.
    let mut big = String::from("id,kind,lon,lat,owner,tags\n");
    for i in 0..10_001 {
        big.push_str(&format!(
            "BIG-{i:05},water_level,121.456286,31.192528,dist-drainage,underpass\n"
        ));
    }
    let (s, v) = post(&t, Some(&admin), "/api/v1/devices", "text/csv", &big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("10001"), "{v}");
    let (s, _, _) = t
        .call(
            Method::GET,
            "/api/v1/devices/BIG-00000",
            Some(&admin),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = post(&t, Some(&admin), "/api/v1/devices", "text/csv", &csv).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["registered"].as_array().unwrap().len(), 1000, "{v}");
    let m = machine(&t);
    let mut recs: Vec<String> = (0..1000)
        .map(|i| {
            format!(
                r#"{{"bn":"urn:dev:gw:GW-{i:04}:","n":"depth_cm","v":{}}}"#,
                i % 10
            )
        })
        .collect();
    recs.insert(
        500,
        r#"{"bn":"GW-0001:","n":"depth_cm","v":1,"vs":"x"}"#.into(),
    );
    let (s, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/senml+json",
        &format!("[{}]", recs.join(",")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], 1000, "{v}");
    assert_eq!(v["refused"]["malformed"], 1, "{v}");
    assert_eq!(v["errors"][0]["record"], 501, "{v}");
}

async fn devices_of(t: &TestApp, token: &str) -> Vec<String> {
    let (s, v) = t.get("/api/v1/devices", Some(token)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

api_story!(the_registry_changes_while_the_service_runs);
async fn the_registry_changes_while_the_service_runs(mut t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let roads = t.login("chen.roads").await; // handler of dist-roads (the manhole covers)
    let urban = t.login("wang.urban").await; // handler of another department
    let m = machine(&t);
    let new_mh =
        json!({"id": "MH-900", "kind": "manhole_tilt", "lon": 121.406431, "lat": 31.163972});

    // Who may: anonymous 401; roles without a department 403, on every endpoint.
    for (method, path, body) in [
        (Method::GET, "/api/v1/devices", None),
        (Method::POST, "/api/v1/devices", Some(new_mh.clone())),
        (Method::GET, "/api/v1/devices/MH-001", None),
        (
            Method::PATCH,
            "/api/v1/devices/MH-001",
            Some(json!({"lon": 121.41})),
        ),
        (Method::DELETE, "/api/v1/devices/MH-001", None),
    ] {
        let (s, _, _) = t.call(method.clone(), path, None, body.clone(), &[]).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{method} {path}");
        for user in [
            "zhang.district",
            "li.tianping",
            "zhao.inspector",
            "sun.analyst",
            "elder_demo",
        ] {
            let tk = t.login(user).await;
            let (s, v, _) = t
                .call(method.clone(), path, Some(&tk), body.clone(), &[])
                .await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{user} {method} {path}: {v}");
        }
        let (s, v, _) = t
            .call(method.clone(), path, Some(&m), body.clone(), &[])
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "machine {method} {path}: {v}");
    }
    // A department sees its own devices only, and registers for itself only.
    let mine = devices_of(&t, &roads).await;
    assert!(mine.iter().all(|d| d.starts_with("MH-")), "{mine:?}");
    assert_eq!(mine.len(), 60);
    let (s, _, _) = t
        .call(
            Method::GET,
            "/api/v1/devices/WL-001",
            Some(&roads),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _, _) = t
        .call(
            Method::DELETE,
            "/api/v1/devices/MH-001",
            Some(&urban),
            None,
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let mut theirs = new_mh.clone();
    theirs["owner"] = json!("dist-drainage");
    let (s, v) = t.post("/api/v1/devices", Some(&roads), theirs).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");

    // Registered by its department: in service at once.
    let (s, v) = t
        .post("/api/v1/devices", Some(&roads), new_mh.clone())
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["owner"], "dist-roads");
    let reading = r#"{"device":"MH-900","metric":"tilt_deg","value":15}"#;
    let (_, r) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/x-ndjson",
        reading,
    )
    .await;
    assert_eq!(r["accepted"], 1, "{r}");
    assert_eq!(r["alarms"][0]["rule"], "manhole_tilted", "{r}");
    // Registered twice: 409, named.
    let (s, v) = t
        .post("/api/v1/devices", Some(&admin), new_mh.clone())
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "device_exists");
    assert!(v["detail"].as_str().unwrap().contains("MH-900"));
    // Bad ones: unknown kind, outside the district, bad id.
    for bad in [
        json!({"id": "X-1", "kind": "tram", "lon": 121.43, "lat": 31.18}),
        json!({"id": "X-2", "kind": "smoke", "lon": 120.0, "lat": 30.0}),
        json!({"id": "X 3", "kind": "smoke", "lon": 121.43, "lat": 31.18}),
    ] {
        let (s, v) = t.post("/api/v1/devices", Some(&admin), bad.clone()).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {v}");
    }
    // GeoJSON import: the good feature kept, the bad ones named.
    let geo = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.454958, 31.175696]}, "properties": {"id": "SM-900", "kind": "smoke", "owner": "dist-fire"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.45, 31.17]}, "properties": {"id": "SM-001", "kind": "smoke"}},
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[121.45, 31.17], [121.46, 31.18]]}, "properties": {"id": "SM-901", "kind": "smoke"}}
    ]});
    let (s, v) = post(
        &t,
        Some(&admin),
        "/api/v1/devices",
        "application/geo+json",
        &geo.to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["registered"], json!(["SM-900"]), "{v}");
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    assert!(
        problems
            .iter()
            .any(|p| p["at"] == "feature 2" && p["code"] == "device_exists"),
        "{v}"
    );
    assert!(problems.iter().any(|p| p["at"] == "feature 3"), "{v}");

    // Moved; decommissioned: its readings refused by name.
    let (s, v, _) = t
        .call(
            Method::PATCH,
            "/api/v1/devices/MH-900",
            Some(&roads),
            Some(json!({"lon": 121.41})),
            &[],
        )
        .await;
    assert_eq!(
        (s, v["lon"].as_f64()),
        (StatusCode::OK, Some(121.41)),
        "{v}"
    );
    let (s, v, _) = t
        .call(
            Method::PATCH,
            "/api/v1/devices/MH-900",
            Some(&roads),
            Some(json!({"tags": ["x"]})),
            &[],
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v, _) = t
        .call(
            Method::DELETE,
            "/api/v1/devices/MH-900",
            Some(&roads),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (s, &v["status"]),
        (StatusCode::OK, &json!("retired")),
        "{v}"
    );
    let (_, r) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/x-ndjson",
        reading,
    )
    .await;
    assert_eq!(r["refused"]["unknown_device"], 1, "{r}");
    assert!(
        r["errors"][0]["problem"]
            .as_str()
            .unwrap()
            .contains("decommissioned"),
        "{r}"
    );
    // The changes are in the audit trail with their actors.
    let (_, audit) = t.get("/api/v1/audit?limit=50", Some(&admin)).await;
    let text = audit.to_string();
    for action in [
        "device_registered",
        "devices_imported",
        "device_changed",
        "device_retired",
    ] {
        assert!(text.contains(action), "{action}: {text}");
    }
    assert!(text.contains("chen.roads"));

    // Across a restart: the registry is the seed plus the stored changes.
    t.restart();
    let admin = t.login("admin").await;
    let (s, v) = t.get("/api/v1/devices/MH-900", Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "retired");
    assert_eq!(v["lon"], 121.41);
    let (s, v) = t.get("/api/v1/devices/SM-900", Some(&admin)).await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("active")), "{v}");
    let m = machine(&t);
    let (_, r) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/x-ndjson",
        r#"{"device":"SM-900","metric":"obscuration_pct","value":1}"#,
    )
    .await;
    assert_eq!(r["accepted"], 1, "{r}");
    let (s, v) = t.post("/api/v1/devices", Some(&admin), new_mh).await;
    assert_eq!(s, StatusCode::CONFLICT, "ids are never reused: {v}");
}

api_story!(late_readings_fire_no_alarm);
async fn late_readings_fire_no_alarm(t: TestApp) {
    t.seed().await;
    let m = machine(&t);
    let now = now_of(&t);
    // A backfill: an hour of 30 cm readings, a minute apart, ending ten minutes ago.
    let lines: Vec<String> = (10..70)
        .rev()
        .map(|k| {
            format!(
                r#"{{"device":"WL-007","metric":"depth_cm","value":30,"at":"{}"}}"#,
                cityos_core::time::format_rfc3339(now - k * MINUTE)
            )
        })
        .collect();
    let (_, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/x-ndjson",
        &lines.join("\n"),
    )
    .await;
    assert_eq!(v["accepted"], 60, "{v}");
    assert!(v["alarms"].as_array().unwrap().is_empty(), "{v}");
    let st = t.svc.as_ref().unwrap().state.clone();
    let fired = cityos_server::intake::sensor::tick(&st).await.unwrap();
    assert!(
        fired.is_empty(),
        "a backfill fires nothing on the next tick: {fired:?}"
    );
    let admin = t.login("admin").await;
    let (_, s) = t.get("/api/v1/readings/stats", Some(&admin)).await;
    assert_eq!(s["late"], 60, "{s}");
    assert_eq!(s["alarms_firing"], 0, "{s}");
    // A timely reading starts the `for` from its own time.
    let (_, v) = post(
        &t,
        Some(&m),
        "/api/v1/readings",
        "application/x-ndjson",
        r#"{"device":"WL-007","metric":"depth_cm","value":30}"#,
    )
    .await;
    assert!(v["alarms"].as_array().unwrap().is_empty(), "{v}");
    t.clock.advance(3 * MINUTE);
    let fired = cityos_server::intake::sensor::tick(&st).await.unwrap();
    assert_eq!(fired.len(), 1, "{fired:?}");
}
