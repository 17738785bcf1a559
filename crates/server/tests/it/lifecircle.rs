//! The life circle (15分钟社区生活圈, issue 18) on the embedded Xuhui data: who may read
//! and plan, what the answers hold (the method and the OSM credit in each), the named
//! problems, and the vital signs fed through the `indicator_value` port.

use crate::api_story;
use crate::support::TestApp;
use axum::http::StatusCode;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

const TIANPING: &str = "310104003";

fn token(t: &TestApp, role: Role, scope: Option<&str>) -> String {
    t.sign(&Principal {
        name: format!("{role}-x"),
        role,
        department: None,
        scope: scope.map(String::from),
        channel: None,
        expires_at: i64::MAX,
    })
}

fn stated(v: &Value) {
    assert_eq!(v["method"]["code"], "straight_line", "{v}");
    assert!(
        v["method"]["zh"].as_str().unwrap().contains("绕行系数 1.3"),
        "{v}"
    );
    assert!(
        v["method"]["en"].as_str().unwrap().contains("4.5 km/h"),
        "{v}"
    );
    assert!(
        v["attribution"]
            .as_str()
            .unwrap()
            .contains("© OpenStreetMap contributors"),
        "{v}"
    );
}

#[tokio::test]
async fn reads_by_role_with_method_and_credit() {
    let t = TestApp::sqlite();
    let paths = [
        "/api/v1/life-circle",
        "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
        "/api/v1/life-circle/communities/310104003001",
        "/api/v1/life-circle/facilities?type=pharmacy",
    ];
    let citizen = token(&t, Role::Citizen, None);
    for p in paths {
        assert_eq!(t.get(p, None).await.0, StatusCode::UNAUTHORIZED, "{p}");
        assert_eq!(
            t.get(p, Some(&citizen)).await.0,
            StatusCode::FORBIDDEN,
            "{p}"
        );
        for role in [
            Role::DistrictOfficer,
            Role::SubdistrictOfficer,
            Role::Handler,
            Role::Inspector,
            Role::Analyst,
            Role::Admin,
        ] {
            let scope = (role == Role::SubdistrictOfficer).then_some(TIANPING);
            let (s, v) = t.get(p, Some(&token(&t, role, scope))).await;
            assert_eq!(s, StatusCode::OK, "{p} {role}: {v}");
        }
    }
    let district = token(&t, Role::DistrictOfficer, None);
    let (_, v) = t.get("/api/v1/life-circle", Some(&district)).await;
    stated(&v);
    assert_eq!(v["communities"], 306);
    assert!(
        (v["population"].as_f64().unwrap() - 1_113_000.0).abs() < 2.0,
        "{}",
        v["population"]
    );
    let types = v["types"].as_array().unwrap();
    assert_eq!(types.len(), 12);
    let pharmacy = types.iter().find(|t| t["code"] == "pharmacy").unwrap();
    assert_eq!(pharmacy["target"], 10);
    assert!(pharmacy["facilities"].as_u64().unwrap() >= 20, "{pharmacy}");
    let s = pharmacy["shares"].as_array().unwrap();
    assert!(
        s[0].as_f64() <= s[1].as_f64() && s[1].as_f64() <= s[2].as_f64(),
        "{pharmacy}"
    );
    assert_eq!(v["subdistricts"].as_array().unwrap().len(), 13);
    assert!(
        v["notes"].to_string().contains("canteens")
            || types
                .iter()
                .any(|t| t["code"] == "elder_meals" && t["facilities"].as_u64() > Some(0))
    );

    let (_, c) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
            Some(&district),
        )
        .await;
    stated(&c);
    assert_eq!(c["grids"].as_array().unwrap().len(), 3000);
    assert_eq!(c["share"], s[1]);
    let reached = c["reached"].as_array().unwrap().len();
    let gaps = c["gaps"].as_array().unwrap();
    assert_eq!(reached + gaps.len(), 306);
    assert!(!gaps.is_empty());
    // Gaps: most people without it first.
    let without: Vec<f64> = gaps
        .iter()
        .map(|g| g["people_without"].as_f64().unwrap())
        .collect();
    assert!(without.windows(2).all(|w| w[0] >= w[1]), "{without:?}");
    // The type's target ring by default.
    let (_, d) = t
        .get("/api/v1/life-circle/coverage?type=health", Some(&district))
        .await;
    assert_eq!(d["ring"], 15);

    let (_, card) = t
        .get(
            "/api/v1/life-circle/communities/310104003001",
            Some(&district),
        )
        .await;
    stated(&card);
    assert_eq!(card["name_zh"], "上海新村居委会");
    assert_eq!(card["subdistrict"], TIANPING);
    assert_eq!(card["lines"].as_array().unwrap().len(), 12);
    let missing: Vec<&str> = card["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    for line in card["lines"].as_array().unwrap() {
        assert_eq!(
            line["met"] == false,
            missing.contains(&line["type"].as_str().unwrap()),
            "{line}"
        );
    }

    let (_, f) = t
        .get(
            "/api/v1/life-circle/facilities?type=pharmacy",
            Some(&district),
        )
        .await;
    assert_eq!(f["type"], "FeatureCollection");
    assert!(f["attribution"].as_str().unwrap().contains("OpenStreetMap"));
    let feats = f["features"].as_array().unwrap();
    assert_eq!(feats.len() as u64, pharmacy["facilities"].as_u64().unwrap());
    assert!(feats
        .iter()
        .all(|x| x["properties"]["type"] == "pharmacy" && x["properties"]["source"] == "osm"));
}

#[tokio::test]
async fn isochrones_from_a_point() {
    let t = TestApp::sqlite();
    let district = token(&t, Role::DistrictOfficer, None);
    let terr = crate::support::config().territory;
    let [lon, lat] = terr.interior_point(terr.by_code("310104003001001").unwrap());
    let (s, v) = t
        .get(
            &format!("/api/v1/life-circle/isochrone?lon={lon}&lat={lat}&minutes=10"),
            Some(&district),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    stated(&v);
    let grids = v["grids"].as_array().unwrap();
    assert_eq!(
        grids[0]["code"], "310104003001001",
        "the nearest first: its own grid"
    );
    assert!(grids.iter().all(|g| g["minutes"].as_f64().unwrap() <= 10.0));
    assert_eq!(v["geometry"]["type"], "Polygon");
    assert_eq!(
        v["geometry"]["coordinates"][0].as_array().unwrap().len(),
        37
    );
    // Elders reach fewer grids in the same time.
    let (_, e) = t
        .get(
            &format!("/api/v1/life-circle/isochrone?lon={lon}&lat={lat}&minutes=10&elders=true"),
            Some(&district),
        )
        .await;
    assert!(e["grids"].as_array().unwrap().len() < grids.len());
    let (s, v) = t
        .get(
            "/api/v1/life-circle/isochrone?lon=116.4&lat=39.9",
            Some(&district),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_point"))
    );
    let (s, _) = t
        .get(
            &format!("/api/v1/life-circle/isochrone?lon={lon}&lat={lat}&minutes=31"),
            Some(&district),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(
        t.get(
            &format!("/api/v1/life-circle/isochrone?lon={lon}&lat={lat}"),
            Some(&token(&t, Role::Citizen, None))
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        t.get(
            &format!("/api/v1/life-circle/isochrone?lon={lon}&lat={lat}"),
            None
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn bad_reads_are_named() {
    let t = TestApp::sqlite();
    let district = token(&t, Role::DistrictOfficer, None);
    let (s, v) = t
        .get("/api/v1/life-circle/coverage?type=zoo", Some(&district))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["code"], "unknown_service_type");
    assert!(v["detail"].as_str().unwrap().contains("pharmacy"), "{v}");
    let (s, v) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=7",
            Some(&district),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    let (s, v) = t.get("/api/v1/life-circle/coverage", Some(&district)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    let (s, _) = t
        .get("/api/v1/life-circle/communities/999", Some(&district))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = t
        .get("/api/v1/life-circle/facilities?type=zoo", Some(&district))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("unknown_service_type")
        )
    );
}

#[tokio::test]
async fn what_if_and_siting() {
    let t = TestApp::sqlite();
    let district = token(&t, Role::DistrictOfficer, None);
    let (_, cov) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
            Some(&district),
        )
        .await;
    // A gap community's grid: put a pharmacy there.
    let gap = cov["gaps"][0]["code"].as_str().unwrap().to_string();
    let terr = crate::support::config().territory;
    let [lon, lat] = terr.interior_point(terr.by_code(&gap).unwrap());
    let body =
        json!({"candidates": [{"type": "pharmacy", "lon": lon, "lat": lat, "name": "新药店"}]});

    for (role, scope, want) in [
        (Role::DistrictOfficer, None, StatusCode::OK),
        (Role::SubdistrictOfficer, Some(TIANPING), StatusCode::OK),
        (Role::Analyst, None, StatusCode::OK),
        (Role::Handler, None, StatusCode::FORBIDDEN),
        (Role::Inspector, None, StatusCode::FORBIDDEN),
        (Role::Admin, None, StatusCode::FORBIDDEN),
        (Role::Citizen, None, StatusCode::FORBIDDEN),
    ] {
        let (s, v) = t
            .post(
                "/api/v1/life-circle/whatif",
                Some(&token(&t, role, scope)),
                body.clone(),
            )
            .await;
        assert_eq!(s, want, "{role}: {v}");
    }
    assert_eq!(
        t.post("/api/v1/life-circle/whatif", None, body.clone())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (_, v) = t
        .post("/api/v1/life-circle/whatif", Some(&district), body)
        .await;
    stated(&v);
    let changes = v["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "one per ring");
    let ten = changes.iter().find(|c| c["ring"] == 10).unwrap();
    assert_eq!(ten["before"], cov["covered"]);
    assert!(ten["after"].as_f64() > ten["before"].as_f64(), "{ten}");
    assert!(
        ten["communities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == gap.as_str()),
        "{ten}"
    );
    // Nothing changed for real.
    let (_, again) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
            Some(&district),
        )
        .await;
    assert_eq!(again["covered"], cov["covered"]);

    // Greedy: k sites, each adding people, fewer each time.
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"suggest": {"type": "pharmacy", "k": 3}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let sites = v["suggestion"]["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 3);
    let people: Vec<f64> = sites
        .iter()
        .map(|s| s["people"].as_f64().unwrap())
        .collect();
    assert!(
        people[0] > 0.0 && people.windows(2).all(|w| w[0] >= w[1]),
        "{people:?}"
    );
    // A sub-district officer's suggestions stay in their sub-district; next door is 403.
    let sub = token(&t, Role::SubdistrictOfficer, Some(TIANPING));
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&sub),
            json!({"suggest": {"type": "elder_care", "k": 2}}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    for site in v["suggestion"]["sites"].as_array().unwrap() {
        assert!(
            site["community"].as_str().unwrap().starts_with(TIANPING),
            "{site}"
        );
    }
    let (s, _) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&sub),
            json!({"suggest": {"type": "elder_care", "region": "310104004"}}),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn bad_what_ifs_are_named() {
    let t = TestApp::sqlite();
    let district = token(&t, Role::DistrictOfficer, None);
    let many: Vec<Value> = (0..51)
        .map(|i| json!({"type": "pharmacy", "lon": 121.43 + i as f64 * 1e-4, "lat": 31.18}))
        .collect();
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"candidates": many}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("too_many_candidates")
        ),
        "{v}"
    );
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"candidates": [{"type": "zoo", "lon": 121.43, "lat": 31.18}, {"type": "pharmacy", "lon": 116.4, "lat": 39.9}, {"type": "pharmacy", "lon": 121.43, "lat": 31.18}]}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_facility")),
        "{v}"
    );
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{v}");
    assert!(problems[0]
        .as_str()
        .unwrap()
        .starts_with("candidate 1: unknown service type \"zoo\""));
    assert!(problems[1]
        .as_str()
        .unwrap()
        .contains("candidate 2: position"));
    let (s, v) = t
        .post("/api/v1/life-circle/whatif", Some(&district), json!({}))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body"))
    );
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"suggest": {"type": "pharmacy", "k": 11}}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_argument"))
    );
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"suggest": {"type": "pharmacy", "ring": 20}}),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    let (s, v) = t
        .post(
            "/api/v1/life-circle/whatif",
            Some(&district),
            json!({"candidates": [], "colour": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feeds_the_livelihood_vital_signs() {
    let t = TestApp::sqlite();
    let district = token(&t, Role::DistrictOfficer, None);
    // As `cityos serve` does: the model is built at start on its own thread, and the vital
    // signs have their values without anyone opening the page.
    cityos_server::lifecircle::start(&t.svc.as_ref().unwrap().state);
    let mut fed = false;
    for _ in 0..1200 {
        let (_, v) = t.get("/api/v1/indicators", Some(&district)).await;
        if v["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["code"] == "life_circle_pharmacy_10" && i["value"].is_number())
        {
            fed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(fed, "the start thread fed the vital signs");
    let (_, lc) = t.get("/api/v1/life-circle", Some(&district)).await;
    let share = |ty: &str, ring: usize| {
        lc["types"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["code"] == ty)
            .unwrap()["shares"][ring]
            .as_f64()
            .unwrap()
    };
    let (s, v) = t.get("/api/v1/indicators", Some(&district)).await;
    assert_eq!(s, StatusCode::OK);
    let ind = |code: &str| {
        v["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["code"] == code)
            .unwrap()
            .clone()
    };
    let p = ind("life_circle_pharmacy_10");
    assert_eq!(p["domain"], "livelihood");
    assert_eq!(p["source"], "external");
    assert_eq!(p["value"].as_f64().unwrap(), share("pharmacy", 1));
    assert_eq!(
        ind("life_circle_health_15")["value"].as_f64().unwrap(),
        share("health", 2)
    );
    // Each sub-district has its own value.
    let (_, tp) = t
        .get(
            &format!("/api/v1/indicators?region={TIANPING}"),
            Some(&district),
        )
        .await;
    let sub = tp["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "life_circle_food_market_10")
        .unwrap()
        .clone();
    let want = lc["subdistricts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["code"] == TIANPING)
        .unwrap()["shares"]["food_market"]
        .as_f64()
        .unwrap();
    assert_eq!(sub["value"].as_f64().unwrap(), want);
}

async fn put(t: &TestApp, path: &str, token: &str, ct: &str, body: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let (s, text, _) = t
        .raw_with(
            axum::http::Method::PUT,
            path,
            ct,
            body,
            &[("authorization", &auth)],
        )
        .await;
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn delete(t: &TestApp, path: &str, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    t.raw_with(
        axum::http::Method::DELETE,
        path,
        "",
        "",
        &[("authorization", &auth)],
    )
    .await
    .0
}

async fn pharmacies(t: &TestApp, token: &str) -> Vec<Value> {
    let (_, f) = t
        .get("/api/v1/life-circle/facilities?type=pharmacy", Some(token))
        .await;
    f["features"].as_array().unwrap().clone()
}

/// Facility lists and the walking network a district officer uploads: refused whole with
/// every problem named (nothing stored), kept across a restart, removed again.
async fn uploads_are_checked_kept_and_removed(mut t: TestApp) {
    let district = token(&t, Role::DistrictOfficer, None);
    let terr = crate::support::config().territory;
    let [lon, lat] = terr.interior_point(terr.by_code("310104003001").unwrap());
    let before = pharmacies(&t, &district).await.len();
    let (_, cov0) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
            Some(&district),
        )
        .await;

    let good = format!("id,type,name,lon,lat,hours\nP-1,pharmacy,社区药房,{lon},{lat},08:00-20:00\nP-2,chemist,便民药店,{},{lat},\n", lon + 0.01);
    let path = "/api/v1/life-circle/facilities/own-pharmacies";
    // Who may upload.
    assert_eq!(
        t.raw(axum::http::Method::PUT, path, "text/csv", &good, None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    for role in [
        Role::Handler,
        Role::Inspector,
        Role::Analyst,
        Role::SubdistrictOfficer,
        Role::Citizen,
    ] {
        let who = token(
            &t,
            role,
            (role == Role::SubdistrictOfficer).then_some(TIANPING),
        );
        assert_eq!(
            put(&t, path, &who, "text/csv", &good).await.0,
            StatusCode::FORBIDDEN,
            "{role}"
        );
        assert_eq!(
            delete(&t, path, &who).await,
            StatusCode::FORBIDDEN,
            "{role}"
        );
        assert_eq!(
            put(
                &t,
                "/api/v1/life-circle/network",
                &who,
                "application/geo+json",
                "{}"
            )
            .await
            .0,
            StatusCode::FORBIDDEN,
            "{role}"
        );
        assert_eq!(
            delete(&t, "/api/v1/life-circle/network", &who).await,
            StatusCode::FORBIDDEN,
            "{role}"
        );
    }
    assert_eq!(
        t.raw(axum::http::Method::DELETE, path, "", "", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // An administrator may upload and remove a list too.
    let admin = token(&t, Role::Admin, None);
    let (s, v) = put(
        &t,
        "/api/v1/life-circle/facilities/admin-list",
        &admin,
        "text/csv",
        &good,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(pharmacies(&t, &district).await.len(), before + 2);
    assert_eq!(
        delete(&t, "/api/v1/life-circle/facilities/admin-list", &admin).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(pharmacies(&t, &district).await.len(), before);
    // A bad row refuses the whole list; nothing is stored.
    let bad = format!("{good}P-3,zoo,动物园,{lon},{lat},\nP-4,pharmacy,远方,116.4,39.9,\n");
    let (s, v) = put(&t, path, &district, "text/csv", &bad).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_facility")),
        "{v}"
    );
    let problems: Vec<&str> = v["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 2, "{v}");
    assert!(
        problems[0].starts_with("line 4: unknown type \"zoo\""),
        "{problems:?}"
    );
    assert!(problems[1].starts_with("line 5: position"), "{problems:?}");
    assert_eq!(pharmacies(&t, &district).await.len(), before);
    assert_eq!(
        put(&t, path, &district, "application/pdf", &good).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        put(
            &t,
            "/api/v1/life-circle/facilities/Bad%20Name",
            &district,
            "text/csv",
            &good
        )
        .await
        .0,
        StatusCode::BAD_REQUEST
    );
    // A good list counts at once.
    let (s, v) = put(&t, path, &district, "text/csv", &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["facilities"], 2);
    let after = pharmacies(&t, &district).await;
    assert_eq!(after.len(), before + 2);
    let own = after
        .iter()
        .find(|f| f["properties"]["id"] == "P-1")
        .unwrap();
    assert_eq!(own["properties"]["source"], "import");
    assert_eq!(own["properties"]["hours"], "08:00-20:00");
    assert_eq!(own["properties"]["name"], "社区药房");
    let (_, cov1) = t
        .get(
            "/api/v1/life-circle/coverage?type=pharmacy&ring=10",
            Some(&district),
        )
        .await;
    assert!(
        cov1["covered"].as_f64() > cov0["covered"].as_f64(),
        "{} → {}",
        cov0["covered"],
        cov1["covered"]
    );

    // The walking network: not lines, or parts cut off, are refused by name.
    let line = |a: [f64; 2], b: [f64; 2]| {
        format!(
            r#"{{"type":"Feature","properties":{{}},"geometry":{{"type":"LineString","coordinates":[[{},{}],[{},{}],[{},{}]]}}}}"#,
            a[0],
            a[1],
            (a[0] + b[0]) / 2.0,
            (a[1] + b[1]) / 2.0,
            b[0],
            b[1]
        )
    };
    let cross = [
        line([lon - 0.01, lat], [lon + 0.01, lat]),
        line([lon, lat - 0.01], [lon, lat + 0.01]),
    ];
    let fc = |f: &[String]| {
        format!(
            r#"{{"type":"FeatureCollection","features":[{}]}}"#,
            f.join(",")
        )
    };
    let stray = line([lon + 0.03, lat + 0.03], [lon + 0.031, lat + 0.03]);
    let (s, v) = put(
        &t,
        "/api/v1/life-circle/network",
        &district,
        "application/geo+json",
        &fc(&[cross[0].clone(), cross[1].clone(), stray]),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_network")),
        "{v}"
    );
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("feature(s) 3 — cannot be reached"),
        "{v}"
    );
    let point = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[121.43,31.18]}}]}"#;
    let (s, v) = put(
        &t,
        "/api/v1/life-circle/network",
        &district,
        "application/geo+json",
        point,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_network"))
    );
    assert_eq!(
        v["problems"][0],
        "feature 1: geometry Point is not a LineString or MultiLineString"
    );
    assert_eq!(
        put(
            &t,
            "/api/v1/life-circle/network",
            &token(&t, Role::Analyst, None),
            "application/geo+json",
            &fc(&cross)
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
    let (s, v) = put(
        &t,
        "/api/v1/life-circle/network",
        &district,
        "application/geo+json",
        &fc(&cross),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        (v["nodes"].as_u64(), v["edges"].as_u64()),
        (Some(5), Some(4))
    );
    assert_eq!(v["method"]["code"], "network");
    let (_, lc) = t.get("/api/v1/life-circle", Some(&district)).await;
    assert_eq!(lc["method"]["code"], "network");
    assert!(lc["method"]["zh"].as_str().unwrap().contains("步行网络"));
    // A small network leaves most grids off it, and says so.
    assert!(
        lc["notes"]
            .to_string()
            .contains("more than 500 m from the walking network"),
        "{}",
        lc["notes"]
    );

    // Both are kept across a restart.
    t.restart();
    let district = token(&t, Role::DistrictOfficer, None);
    assert_eq!(pharmacies(&t, &district).await.len(), before + 2);
    let (_, lc) = t.get("/api/v1/life-circle", Some(&district)).await;
    assert_eq!(lc["method"]["code"], "network", "{}", lc["method"]);

    // And removed.
    assert_eq!(
        delete(&t, "/api/v1/life-circle/network", &district).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(&t, "/api/v1/life-circle/network", &district).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&t, path, &token(&t, Role::Handler, None)).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(delete(&t, path, &district).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(&t, path, &district).await, StatusCode::NOT_FOUND);
    assert_eq!(pharmacies(&t, &district).await.len(), before);
    let (_, lc) = t.get("/api/v1/life-circle", Some(&district)).await;
    assert_eq!(lc["method"]["code"], "straight_line");
    // Every upload and removal is a configuration change in the audit trail.
    let (s, v) = t
        .get(
            "/api/v1/audit?limit=1000",
            Some(&token(&t, Role::Admin, None)),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "lifecircle_facilities_put",
        "lifecircle_network_put",
        "lifecircle_network_delete",
        "lifecircle_facilities_delete",
    ] {
        assert!(actions.contains(&a), "{a} missing in {actions:?}");
    }
}
api_story!(uploads_are_checked_kept_and_removed);
