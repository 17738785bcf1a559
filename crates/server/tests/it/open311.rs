//! The citizens' end as Open311 GeoReport v2: every response's fields against the
//! specification's lists, in JSON and XML; form-encoded creates; errors as
//! `{code, description}` lists with the specification's HTTP statuses; bad input stores
//! nothing; the anonymous rate limit; full descriptions, addresses, 404s, `Retry-After`
//! and CORS as its clients expect them.

use crate::api_story;
use crate::support::{spot, t0, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::HOUR;
use cityos_core::Role;
use cityos_server::http::auth::Principal;
use serde_json::Value;
use std::net::SocketAddr;

const FORM: &str = "application/x-www-form-urlencoded";
const TIANPING: &str = "310104003";

/// The fields GeoReport v2 gives each resource.
const SERVICE_FIELDS: &[&str] = &[
    "service_code",
    "service_name",
    "description",
    "metadata",
    "type",
    "keywords",
    "group",
];
const ATTRIBUTE_FIELDS: &[&str] = &[
    "variable",
    "code",
    "datatype",
    "required",
    "datatype_description",
    "order",
    "description",
    "values",
];
const REQUEST_FIELDS: &[&str] = &[
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
];
const DATATYPES: &[&str] = &[
    "string",
    "number",
    "datetime",
    "text",
    "singlevaluelist",
    "multivaluelist",
];

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(fields: &[&str]) -> Vec<String> {
    let mut k: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    k.sort();
    k
}

/// The texts of every `<name>` element in an XML document (a small reader for checks).
fn xml_all(doc: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let j = after.find(&close).expect("closed element");
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    // Empty elements count too.
    out.extend(doc.matches(&format!("<{name}/>")).map(|_| String::new()));
    out
}

async fn get_json(t: &TestApp, path: &str) -> (StatusCode, Value) {
    let (s, b, h) = t.raw(Method::GET, path, FORM, "", None).await;
    if s.is_success() {
        assert!(
            h["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
    }
    (
        s,
        serde_json::from_str(&b).unwrap_or_else(|_| panic!("{path}: {b}")),
    )
}

async fn get_xml(t: &TestApp, path: &str) -> (StatusCode, String) {
    let (s, b, h) = t.raw(Method::GET, path, FORM, "", None).await;
    assert!(
        h["content-type"].to_str().unwrap().starts_with("text/xml"),
        "{path}"
    );
    assert!(
        b.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{b}"
    );
    (s, b)
}

pub async fn create(t: &TestApp, fmt: &str, form: &str, peer: u8) -> (StatusCode, String) {
    let p: SocketAddr = format!("10.0.0.{peer}:5000").parse().unwrap();
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

fn point_form(sub: &str, n: usize) -> String {
    let p = spot(sub, n);
    format!("lat={}&long={}", p[1], p[0])
}

api_story!(services_and_definitions);
async fn services_and_definitions(t: TestApp) {
    let (s, d) = get_json(&t, "/open311/v2/discovery.json").await;
    assert_eq!(s, StatusCode::OK);
    for k in ["changeset", "contact", "key_service", "endpoints"] {
        assert!(d.get(k).is_some(), "discovery lacks {k}: {d}");
    }
    let ep = &d["endpoints"][0];
    assert_eq!(ep["specification"], "http://wiki.open311.org/GeoReport_v2");
    assert_eq!(ep["url"], "http://cityos.test/open311/v2");
    assert_eq!(
        ep["formats"],
        serde_json::json!(["text/xml", "application/json"])
    );
    let (_, x) = get_xml(&t, "/open311/v2/discovery.xml").await;
    assert_eq!(xml_all(&x, "format"), vec!["text/xml", "application/json"]);
    assert_eq!(xml_all(&x, "type"), vec!["production"]);

    let (s, v) = get_json(&t, "/open311/v2/services.json").await;
    assert_eq!(s, StatusCode::OK);
    let services = v.as_array().unwrap();
    let cfg = crate::support::config();
    let public = cfg.taxonomy.categories.iter().filter(|c| c.public).count();
    assert_eq!(services.len(), public);
    assert!(
        public < cfg.taxonomy.categories.len(),
        "some categories are not public"
    );
    for s in services {
        assert_eq!(keys(s), sorted(SERVICE_FIELDS), "{s}");
        assert_eq!(s["type"], "realtime");
        let c = cfg
            .taxonomy
            .category(s["service_code"].as_str().unwrap())
            .unwrap();
        assert!(c.public);
        assert_eq!(s["metadata"], !c.questions.is_empty());
    }
    // Sensor-only categories are not offered to citizens.
    assert!(!services
        .iter()
        .any(|s| s["service_code"] == "manhole_cover_tilt_alarm"));
    let (_, x) = get_xml(&t, "/open311/v2/services.xml").await;
    assert_eq!(xml_all(&x, "service").len(), public);
    assert_eq!(xml_all(&x, "service_code").len(), public);

    // A service definition: attributes with the specification's fields and datatypes.
    let (s, def) = get_json(&t, "/open311/v2/services/lift_entrapment.json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(keys(&def), sorted(&["service_code", "attributes"]));
    let attrs = def["attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 2);
    for (i, a) in attrs.iter().enumerate() {
        assert_eq!(keys(a), sorted(ATTRIBUTE_FIELDS), "{a}");
        assert!(DATATYPES.contains(&a["datatype"].as_str().unwrap()));
        assert_eq!(a["order"], i + 1);
        for v in a["values"].as_array().unwrap() {
            assert_eq!(keys(v), sorted(&["key", "name"]));
        }
    }
    assert_eq!(attrs[0]["code"], "people_trapped");
    assert_eq!(attrs[0]["required"], true);
    let (_, x) = get_xml(&t, "/open311/v2/services/lift_entrapment.xml").await;
    assert_eq!(xml_all(&x, "attribute").len(), 2);
    assert_eq!(
        xml_all(&x, "key"),
        vec!["1", "2-5", "6+", "yes", "no", "unknown"]
    );

    // Unknown services and formats: 404 with an error list.
    let (s, e) = get_json(&t, "/open311/v2/services/no_such_thing.json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e[0]["code"], 404);
    assert!(e[0]["description"]
        .as_str()
        .unwrap()
        .contains("no_such_thing"));
    let (s, x) = get_xml(&t, "/open311/v2/services/manhole_cover_tilt_alarm.xml").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(xml_all(&x, "code"), vec!["404"]);
    let (s, _, _) = t
        .raw(Method::GET, "/open311/v2/services.csv", FORM, "", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, e) = get_json(&t, "/open311/v2/services.json?jurisdiction_id=sfgov.org").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, _) = get_json(&t, "/open311/v2/services.json?jurisdiction_id=310104").await;
    assert_eq!(s, StatusCode::OK);
}

api_story!(create_and_follow);
async fn create_and_follow(t: TestApp) {
    t.seed().await;
    let form = format!(
        "service_code=lift_entrapment&{}&description={}&attribute[people_trapped]=2-5&first_name={}&phone=13800000000",
        point_form(TIANPING, 3),
        enc("天平路一小区3号楼电梯困人"),
        enc("王")
    );
    let (s, b) = create(&t, "json", &form, 1).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let made = &v[0];
    for k in ["service_request_id", "service_notice", "account_id"] {
        assert!(made.get(k).is_some(), "{made}");
    }
    let id = made["service_request_id"].as_str().unwrap().to_string();
    let token = made["token"].as_str().unwrap().to_string();

    // Follow it: every field of the specification, nothing else.
    let (s, r) = get_json(&t, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(s, StatusCode::OK);
    let r = &r[0];
    assert_eq!(keys(r), sorted(REQUEST_FIELDS), "{r}");
    assert_eq!(r["status"], "open");
    assert_eq!(r["service_code"], "lift_entrapment");
    assert_eq!(r["service_name"], "电梯困人");
    assert!(r["description"].as_str().unwrap().contains("电梯困人"));
    assert!(r["description"]
        .as_str()
        .unwrap()
        .contains("people_trapped: 2–5人"));
    assert!(r["address"]
        .as_str()
        .unwrap()
        .starts_with("徐汇区天平路街道"));
    assert_eq!(r["requested_datetime"], "2026-11-25T10:00:00+08:00");
    // The deadline the case runs against, with its time zone.
    let expected = r["expected_datetime"].as_str().unwrap();
    assert!(expected.ends_with("+08:00") && expected > "2026-11-25T10:00:00+08:00");
    // The reporter's contact is never published.
    assert!(!serde_json::to_string(r).unwrap().contains("13800000000"));
    let (_, x) = get_xml(&t, &format!("/open311/v2/requests/{id}.xml")).await;
    assert_eq!(xml_all(&x, "request").len(), 1);
    for f in REQUEST_FIELDS {
        assert_eq!(xml_all(&x, f).len(), 1, "{f} in {x}");
    }
    assert_eq!(xml_all(&x, "status"), vec!["open"]);

    // The token names the request.
    let (s, tk) = get_json(&t, &format!("/open311/v2/tokens/{token}.json")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(tk[0]["service_request_id"], id.as_str());
    let (s, _) = get_json(&t, "/open311/v2/tokens/999999.json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A second report nearby joins the same case: same service_request_id, and a notice.
    let (s, b) = create(
        &t,
        "xml",
        &format!(
            "service_code=lift_entrapment&{}&attribute[people_trapped]=1&attribute[anyone_unwell]=no",
            point_form(TIANPING, 3)
        ),
        2,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(xml_all(&b, "service_request_id"), vec![id.clone()]);
    assert!(xml_all(&b, "service_notice")[0].contains("并入"));

    // Another service, elsewhere; then the list filters.
    let (s, b) = create(
        &t,
        "json",
        &format!(
            "service_code=waterlogging&{}&attribute[depth_cm]=35",
            point_form("310104004", 1)
        ),
        3,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let water: Value = serde_json::from_str(&b).unwrap();
    let water = water[0]["service_request_id"].as_str().unwrap().to_string();
    let (_, all) = get_json(&t, "/open311/v2/requests.json").await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    for r in all.as_array().unwrap() {
        assert_eq!(keys(r), sorted(REQUEST_FIELDS));
    }
    let (_, only) = get_json(&t, "/open311/v2/requests.json?service_code=waterlogging").await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["service_request_id"], water.as_str());
    let (_, by_id) = get_json(
        &t,
        &format!("/open311/v2/requests.json?service_request_id={id},{water}&status=closed"),
    )
    .await;
    assert_eq!(
        by_id.as_array().unwrap().len(),
        2,
        "ids override other filters"
    );
    let (_, closed) = get_json(&t, "/open311/v2/requests.json?status=closed").await;
    assert!(closed.as_array().unwrap().is_empty());
    let (_, window) = get_json(
        &t,
        "/open311/v2/requests.json?start_date=2026-11-24T00:00:00%2B08:00&end_date=2026-11-25T09:00:00%2B08:00",
    )
    .await;
    assert!(window.as_array().unwrap().is_empty());
    let (_, x) = get_xml(&t, "/open311/v2/requests.xml?status=open").await;
    assert_eq!(xml_all(&x, "request").len(), 2);

    // The officer rejects the water case: it reads as closed, with a note.
    let officer = t.login("zhang.district").await;
    let (_, case) = t
        .get(&format!("/api/v1/cases/{water}"), Some(&officer))
        .await;
    let case_id = case["case"]["id"]
        .as_i64()
        .or(case["id"].as_i64())
        .unwrap_or_else(|| panic!("{case}"));
    t.clock.advance(HOUR);
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{case_id}/transitions"),
            Some(&officer),
            serde_json::json!({"action": "reject", "reason": "已排水，现场无积水"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, r) = get_json(&t, &format!("/open311/v2/requests/{water}.json")).await;
    assert_eq!(r[0]["status"], "closed");
    assert!(r[0]["status_notes"].as_str().unwrap().contains("不予立案"));
    assert!(
        r[0]["updated_datetime"].as_str().unwrap() > r[0]["requested_datetime"].as_str().unwrap()
    );
    let (_, closed) = get_json(&t, "/open311/v2/requests.json?status=closed").await;
    assert_eq!(closed.as_array().unwrap().len(), 1);
    let _ = t0();
}

api_story!(bad_input_is_refused_and_stores_nothing);
async fn bad_input_is_refused_and_stores_nothing(t: TestApp) {
    t.seed().await;
    let at = point_form(TIANPING, 5);
    let forged = {
        let p = Principal {
            name: "app".into(),
            role: Role::Citizen,
            department: None,
            scope: None,
            channel: None,
            expires_at: i64::MAX,
        };
        let good = t.sign(&p);
        // Same payload, wrong signature.
        let (head, _) = good.rsplit_once('.').unwrap();
        format!("{head}.{}", "00".repeat(32))
    };
    let long = "长".repeat(4001);
    let cases: Vec<(String, StatusCode, &str)> = vec![
        (
            format!("{at}&description=x"),
            StatusCode::BAD_REQUEST,
            "service_code is required",
        ),
        (
            "service_code=noise&description=x".into(),
            StatusCode::BAD_REQUEST,
            "location is required",
        ),
        (
            "service_code=noise&address_string=somewhere".into(),
            StatusCode::BAD_REQUEST,
            "address_string",
        ),
        (
            "service_code=noise&lat=31.2".into(),
            StatusCode::BAD_REQUEST,
            "both lat and long",
        ),
        (
            "service_code=noise&lat=abc&long=121.4".into(),
            StatusCode::BAD_REQUEST,
            "not a number",
        ),
        (
            "service_code=noise&lat=30.0&long=120.0".into(),
            StatusCode::BAD_REQUEST,
            "outside the territory",
        ),
        // GeoReport v2: an unknown service_code is 404 (issue 11, item 15).
        (
            format!("service_code=nope&{at}"),
            StatusCode::NOT_FOUND,
            "unknown service_code",
        ),
        (
            format!("service_code=manhole_cover_tilt_alarm&{at}"),
            StatusCode::NOT_FOUND,
            "unknown service_code",
        ),
        (
            format!("service_code=noise&{at}&description={}", enc(&long)),
            StatusCode::BAD_REQUEST,
            "longer than 4000",
        ),
        (
            format!("service_code=lift_entrapment&{at}"),
            StatusCode::BAD_REQUEST,
            "attribute[people_trapped] is required",
        ),
        (
            format!("service_code=lift_entrapment&{at}&attribute[people_trapped]=99"),
            StatusCode::BAD_REQUEST,
            "is not one of",
        ),
        (
            format!("service_code=waterlogging&{at}&attribute[depth_cm]=deep"),
            StatusCode::BAD_REQUEST,
            "not a number",
        ),
        (
            format!("service_code=noise&{at}&attribute[colour]=red"),
            StatusCode::BAD_REQUEST,
            "asks no question",
        ),
        (
            format!("service_code=noise&{at}&media_url=javascript:alert(1)"),
            StatusCode::BAD_REQUEST,
            "media_url",
        ),
        (
            format!("service_code=noise&{at}&api_key=abc"),
            StatusCode::FORBIDDEN,
            "api_key",
        ),
        (
            format!("service_code=noise&{at}&api_key={forged}"),
            StatusCode::FORBIDDEN,
            "api_key",
        ),
        (
            format!("service_code=noise&{at}&jurisdiction_id=sfgov.org"),
            StatusCode::NOT_FOUND,
            "jurisdiction",
        ),
    ];
    for (i, (form, status, needle)) in cases.iter().enumerate() {
        for fmt in ["json", "xml"] {
            let (s, b) = create(&t, fmt, form, 100 + i as u8).await;
            assert_eq!(s, *status, "{form}: {b}");
            if fmt == "json" {
                let e: Value = serde_json::from_str(&b).unwrap();
                assert_eq!(e[0]["code"], status.as_u16(), "{b}");
                let d = e[0]["description"].as_str().unwrap();
                assert!(d.contains(needle), "{form}: {d}");
            } else {
                assert_eq!(
                    xml_all(&b, "code"),
                    vec![status.as_u16().to_string()],
                    "{b}"
                );
                assert_eq!(xml_all(&b, "error").len(), 1);
            }
        }
    }
    // Not a form.
    let (s, b, _) = t
        .raw(
            Method::POST,
            "/open311/v2/requests.json",
            "application/json",
            "{\"service_code\":\"noise\"}",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("x-www-form-urlencoded"));
    // Nothing was stored by any of it.
    let (_, all) = get_json(&t, "/open311/v2/requests.json").await;
    assert!(all.as_array().unwrap().is_empty(), "{all}");
    let admin = t.login("admin").await;
    let (_, stats) = t.get("/api/v1/stats", Some(&admin)).await;
    assert_eq!(stats["total"], 0, "{stats}");

    // A registered app's key works; a staff token is not an app key.
    let app_key = t.sign(&Principal {
        name: "12345-app".into(),
        role: Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=noise&{at}&api_key={app_key}"),
        1,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let officer = t.login("zhang.district").await;
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=noise&{at}&api_key={officer}"),
        1,
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
}

api_story!(anonymous_creates_are_rate_limited);
async fn anonymous_creates_are_rate_limited(t: TestApp) {
    let limit = cityos_server::intake::citizen::ANONYMOUS_LIMIT as usize;
    for i in 0..limit {
        let (s, b) = create(
            &t,
            "json",
            &format!("service_code=noise&{}", point_form(TIANPING, i)),
            7,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{i}: {b}");
    }
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=noise&{}", point_form(TIANPING, 0)),
        7,
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert!(b.contains("api_key"));
    // Another address is not affected; the window passes.
    let (s, _) = create(
        &t,
        "json",
        &format!("service_code=noise&{}", point_form(TIANPING, 1)),
        8,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    t.clock
        .advance(cityos_server::intake::citizen::ANONYMOUS_WINDOW);
    let (s, _) = create(
        &t,
        "json",
        &format!("service_code=noise&{}", point_form(TIANPING, 2)),
        7,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
}

/// A small valid PNG (1×1), and its bytes with a wrong signature.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE,
    0x42, 0x60, 0x82,
];

async fn upload(t: &TestApp, ct: &str, bytes: Vec<u8>) -> (StatusCode, String) {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/open311/v2/media.json")
        .header("content-type", ct)
        .header("host", "cityos.test")
        .body(Body::from(bytes))
        .unwrap();
    let resp = cityos_server::app(t.svc.as_ref().unwrap().state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let s = resp.status();
    let b = resp.into_body().collect().await.unwrap().to_bytes();
    (s, String::from_utf8_lossy(&b).into_owned())
}

api_story!(anonymous_photo_uploads_are_limited_per_address);
async fn anonymous_photo_uploads_are_limited_per_address(t: TestApp) {
    for i in 0..cityos_server::ANONYMOUS_MEDIA {
        let (s, b) = upload(&t, "image/png", PNG.to_vec()).await;
        assert_eq!(s, StatusCode::CREATED, "upload {i}: {b}");
    }
    let (s, b) = upload(&t, "image/png", PNG.to_vec()).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert!(b.contains("too many photos"), "{b}");
}

api_story!(photos_upload_and_attach);
async fn photos_upload_and_attach(t: TestApp) {
    let (s, b) = upload(&t, "image/png", PNG.to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let url = v[0]["media_url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://cityos.test/media/") && url.ends_with(".png"),
        "{url}"
    );
    assert_eq!(v[0]["size"], PNG.len());
    // The same bytes again: the same address.
    let (_, b2) = upload(&t, "image/png", PNG.to_vec()).await;
    assert_eq!(
        serde_json::from_str::<Value>(&b2).unwrap()[0]["media_url"],
        url.as_str()
    );
    // It is served back, byte for byte, as what it is.
    let path = url.trim_start_matches("http://cityos.test");
    let (s, body, h) = t.raw(Method::GET, path, FORM, "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(body.len(), String::from_utf8_lossy(PNG).len());
    let (s, _, _) = t
        .raw(
            Method::GET,
            "/media/00000000000000000000000000000000.png",
            FORM,
            "",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Refused: other types, bytes that are not what they claim, too large, empty.
    let (s, b) = upload(&t, "text/html", b"<script>alert(1)</script>".to_vec()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(b.contains("image/jpeg, image/png or image/webp"));
    let (s, b) = upload(&t, "image/jpeg", PNG.to_vec()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{b}");
    assert!(b.contains("not a image/jpeg image"));
    let mut big = vec![0xFF, 0xD8, 0xFF];
    big.resize(cityos_server::cases::media::MEDIA_LIMIT + 1, 0);
    let (s, b) = upload(&t, "image/jpeg", big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    let (s, _) = upload(&t, "image/png", Vec::new()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // A request with the photo shows it; a /media/ address that names nothing is refused.
    let (s, b) = create(
        &t,
        "json",
        &format!(
            "service_code=exposed_garbage&{}&media_url={}",
            point_form(TIANPING, 2),
            enc(&url)
        ),
        1,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let id = serde_json::from_str::<Value>(&b).unwrap()[0]["service_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, r) = get_json(&t, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(r[0]["media_url"], url.as_str());
    let (s, b) = create(
        &t,
        "json",
        &format!(
            "service_code=exposed_garbage&{}&media_url={}",
            point_form(TIANPING, 4),
            enc("http://cityos.test/media/ffffffffffffffffffffffffffffffff.png")
        ),
        1,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b.contains("names no uploaded photo"));
}

api_story!(reporters_rate_closed_requests);
async fn reporters_rate_closed_requests(t: TestApp) {
    t.seed().await;
    let (s, b) = create(
        &t,
        "json",
        &format!("service_code=street_vending&{}", point_form(TIANPING, 6)),
        1,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let made: Value = serde_json::from_str(&b).unwrap();
    let id = made[0]["service_request_id"].as_str().unwrap().to_string();
    let token = made[0]["token"].as_str().unwrap().to_string();
    let path = format!("/open311/v2/requests/{id}/rating.json");
    let t = &t;
    let rate = |form: String| {
        let path = path.clone();
        async move {
            let (s, b, _) = t.raw(Method::POST, &path, FORM, &form, None).await;
            (s, b)
        }
    };
    // Not closed yet.
    let (s, b) = rate(format!("token={token}&satisfaction=5")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Run the case to closure through the API.
    let li = t.login("li.tianping").await;
    let wang = t.login("wang.urban").await;
    let zhao = t.login("zhao.inspector").await;
    let steps: [(&str, &str); 7] = [
        (&li, "file"),
        (&li, "dispatch"),
        (&wang, "acknowledge"),
        (&wang, "start"),
        (&wang, "handle"),
        (&zhao, "verify"),
        (&li, "close"),
    ];
    for (who, action) in steps {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{id}/transitions"),
                Some(who),
                serde_json::json!({"action": action, "attachments": ["现场照片.jpg"]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
    let (_, r) = get_json(t, &format!("/open311/v2/requests/{id}.json")).await;
    assert_eq!(r[0]["status"], "closed");
    // Bad ratings change nothing.
    for (form, status) in [
        ("satisfaction=5".to_string(), StatusCode::BAD_REQUEST),
        (
            format!("token={token}&satisfaction=6"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("token={token}&satisfaction=good"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "token=1-0000000000000000&satisfaction=5".to_string(),
            StatusCode::FORBIDDEN,
        ),
        // Markup in a comment is text now (issue 11, item 16); a comment too long is not.
        (
            format!(
                "token={token}&satisfaction=4&comment={}",
                enc(&"好".repeat(501))
            ),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (s, b) = rate(form.clone()).await;
        assert_eq!(s, status, "{form}: {b}");
        let e: Value = serde_json::from_str(&b).unwrap();
        assert_eq!(e[0]["code"], status.as_u16());
    }
    // Another reporter's token does not rate this request.
    let (_, other) = create(
        t,
        "json",
        &format!("service_code=noise&{}", point_form("310104004", 2)),
        2,
    )
    .await;
    let other_token = serde_json::from_str::<Value>(&other).unwrap()[0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, _) = rate(format!("token={other_token}&satisfaction=1")).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // The reporter rates it: the case is evaluated, with the comment in its log.
    let (s, b) = rate(format!(
        "token={token}&satisfaction=4&comment={}",
        enc("处理及时")
    ))
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v[0]["satisfaction"], 4);
    let zhang = t.login("zhang.district").await;
    let (_, c) = t.get(&format!("/api/v1/cases/{id}"), Some(&zhang)).await;
    let text = c.to_string();
    assert!(
        text.contains("evaluated") && text.contains("处理及时"),
        "{c}"
    );
    // The reporter's secret token is never written into the log staff and the stream read.
    let tag = token.split('-').nth(1).unwrap();
    assert!(
        !text.contains(tag),
        "the token's tag leaked into the case: {c}"
    );
    // Once only.
    let (s, _) = rate(format!("token={token}&satisfaction=1")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

fn at(n: usize) -> String {
    let p = spot(TIANPING, n);
    format!("lat={}&long={}", p[1], p[0])
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
