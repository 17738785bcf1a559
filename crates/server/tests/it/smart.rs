//! Smart intake (智能分拨, issue 14): reports without a category through the API and
//! Open311 — routed on a confident suggestion (the log names the score), left in the
//! 待分拨 queue when unsure, without a model or with a corrupt one; urgency cues skip
//! triage and raise the priority; a place named in the text locates a report without a
//! position; bad text is a clear 400; public answers show the number and where it went,
//! never the suggestion or unmasked personal data. A small model is trained in the test
//! on generated text.

use crate::support::{config, spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::classify::generate;
use serde_json::{json, Value};
use std::sync::OnceLock;

const TIANPING: &str = "310104003";
const YONGKANG: &str = "310104003026";
const FORM: &str = "application/x-www-form-urlencoded";

/// A small model over a few categories, trained once per test binary.
fn model_bytes() -> &'static [u8] {
    static M: OnceLock<Vec<u8>> = OnceLock::new();
    M.get_or_init(|| {
        let cfg = config();
        let keep = [
            "manhole_cover_missing",
            "noise",
            "illegal_parking",
            "street_vending",
            "exposed_garbage",
            "streetlight_fault",
            "water_outage",
            "lift_fault",
        ];
        let places = generate::place_names(&cfg.intake.gazetteer);
        let examples: Vec<_> = generate::messages(&cfg.taxonomy, &places, 6000, 11)
            .into_iter()
            .filter(|e| keep.contains(&e.label.as_str()))
            .collect();
        let o = cityos_core::classify::TrainOptions {
            seed: 11,
            min_df: 2,
            ..Default::default()
        };
        cityos_core::classify::train(&examples, &o)
            .unwrap()
            .to_bytes()
    })
}

fn dir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "cityos-smart-{}-{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A service whose model file holds `bytes` (none: no file at all).
async fn app(bytes: Option<&[u8]>) -> TestApp {
    let t = TestApp::sqlite();
    t.seed().await;
    let file = dir().join(cityos_server::smart::MODEL_FILE);
    if let Some(b) = bytes {
        std::fs::write(&file, b).unwrap();
    }
    t.svc.as_ref().unwrap().state.0.smart.set_model_file(&file);
    t
}

async fn report(t: &TestApp, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    t.post("/api/v1/reports", token, body).await
}

async fn officer_view(t: &TestApp, number: &str) -> Value {
    let tok = t.login("zhang.district").await;
    let (s, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&tok)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Nothing of the suggestion's internals in a public answer.
fn no_internals(v: &Value) {
    let s = v.to_string();
    for w in [
        "suggestion",
        "模型",
        "阈值",
        "置信度",
        "classifier",
        "score",
    ] {
        assert!(!s.contains(w), "{w:?} in a public answer: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_about_a_manhole_goes_to_the_roads_department_with_the_suggestion_on_the_case() {
    let t = app(Some(model_bytes())).await;
    let [lon, lat] = spot(TIANPING, 3);
    let (s, v) = report(
        &t,
        None,
        json!({"text": "您好，这里的井盖被盗了，没有井盖很危险，请尽快处理", "lon": lon, "lat": lat, "category": ""}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["dispatch"], "已转相关部门");
    assert_eq!(v["case"]["category"], "manhole_cover_missing");
    no_internals(&v);
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let o = officer_view(&t, &number).await;
    let sg = &o["case"]["suggestion"];
    assert_eq!(sg["category"], "manhole_cover_missing", "{o}");
    assert_eq!(sg["routed"], true);
    let score = sg["score"].as_f64().unwrap();
    assert!(score >= 0.6, "{score}");
    // Citizens' reports are filed by staff before dispatch: the route is in the log.
    let route = &o["log"][0]["changes"][1];
    assert_eq!(route["kind"], "route");
    assert_eq!(
        sg["department"], route["assignments"][0]["department"],
        "{o}"
    );
    assert_eq!(sg["department"], "dist-roads");
    assert!(sg["model"]
        .as_str()
        .unwrap()
        .starts_with("classifier.model#"));
    assert_eq!(sg["top"][0]["category"], "manhole_cover_missing");
    let reason = format!("模型建议 {score:.2} ≥ 阈值 0.60");
    assert_eq!(sg["reason"], reason.as_str());
    let note = o["log"][0]["note"].as_str().unwrap();
    assert!(note.contains(&reason), "{note}");
    assert!(note.contains("dist-roads"), "{note}");
    // The sub-district's officer sees it too; other staff and the public do not.
    let tok = t.login("li.tianping").await;
    let (_, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&tok)).await;
    assert_eq!(v["case"]["suggestion"]["category"], "manhole_cover_missing");
    for who in ["chen.roads", "sun.analyst"] {
        let tok = t.login(who).await;
        let (s, v) = t.get(&format!("/api/v1/cases/{number}"), Some(&tok)).await;
        assert_eq!(s, StatusCode::OK, "{who}: {v}");
        assert!(v["case"].get("suggestion").is_none(), "{who}: {v}");
    }
    let (s, v) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    no_internals(&v);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsure_text_waits_in_triage_with_the_suggestions() {
    let t = app(Some(model_bytes())).await;
    let [lon, lat] = spot(TIANPING, 5);
    let (s, v) = report(
        &t,
        None,
        json!({"text": "想咨询一下这个事情应该找哪个部门办理", "lon": lon, "lat": lat}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["dispatch"], "待人工分拨");
    assert_eq!(v["case"]["category"], "triage");
    no_internals(&v);
    let number = v["case"]["number"].as_str().unwrap().to_string();
    // The reporter follows it by its number while it waits, here and through Open311.
    let (s, p) = t.get(&format!("/api/v1/cases/{number}"), None).await;
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(p["case"]["category_name"], "待分拨诉求");
    no_internals(&p);
    let (s, b, _) = t
        .raw(
            Method::GET,
            &format!("/open311/v2/requests/{number}.json"),
            FORM,
            "",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    no_internals(&serde_json::from_str(&b).unwrap());
    let o = officer_view(&t, &number).await;
    let sg = &o["case"]["suggestion"];
    assert_eq!(sg["routed"], false, "{o}");
    // Unsure either way: a low score, or a high share that no label's scorer claims
    // (calibrated scores share 1 out among the labels a small model knows).
    let score = sg["score"].as_f64().unwrap();
    if score < 0.6 {
        assert_eq!(
            sg["reason"],
            format!("置信度 {score:.2} < 阈值 0.60，转待分拨").as_str()
        );
    } else {
        assert!(
            sg["reason"]
                .as_str()
                .unwrap()
                .contains("没有类别认领这段文字"),
            "{sg}"
        );
    }
    assert!(!sg["top"].as_array().unwrap().is_empty());
    assert_eq!(
        o["log"][0]["changes"][1]["assignments"][0]["department"], "dist-ccc",
        "{o}"
    );
    assert!(o["log"][0]["note"].as_str().unwrap().contains("转待分拨"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgency_cue_skips_triage_and_raises_the_priority() {
    let t = app(Some(model_bytes())).await;
    let [lon, lat] = spot(TIANPING, 7);
    // Traditional spelling; the model knows nothing of gas.
    let (s, v) = report(
        &t,
        None,
        json!({"text": "樓道裡有很重的煤氣味，大家都很擔心", "lon": lon, "lat": lat}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["dispatch"], "已转相关部门");
    assert_eq!(v["case"]["category"], "gas_alarm");
    assert_eq!(v["case"]["priority"], "urgent");
    let o = officer_view(&t, v["case"]["number"].as_str().unwrap()).await;
    let sg = &o["case"]["suggestion"];
    assert_eq!(sg["reason"], "紧急线索「煤气味」：跳过分拨");
    assert_eq!(sg["cues"], json!(["煤气味"]));
    assert_eq!(sg["routed"], true);
    // Negated: no cue, the model's unsure pick waits in triage at its own priority.
    let (_, v) = report(
        &t,
        None,
        json!({"text": "没有煤气味，就是想问问燃气费怎么交", "lon": lon, "lat": lat}),
    )
    .await;
    assert_eq!(v["case"]["category"], "triage", "{v}");
    assert_ne!(v["case"]["priority"], "urgent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_community_locates_a_report_without_a_position() {
    let t = app(Some(model_bytes())).await;
    let (s, v) = report(
        &t,
        None,
        json!({"text": "永康居委会门口的井盖被盗了，晚上看不见很危险"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["case"]["community"]["code"], YONGKANG, "{v}");
    let o = officer_view(&t, v["case"]["number"].as_str().unwrap()).await;
    let sg = &o["case"]["suggestion"];
    assert_eq!(sg["located_by_text"], true);
    assert_eq!(
        sg["places"][0],
        json!({"word": "永康居委会", "kind": "community", "region": YONGKANG, "region_name": "永康居委会"})
    );
    assert!(sg["reason"]
        .as_str()
        .unwrap()
        .contains("按文中地名「永康居委会」定位"));
    // No position and no place: triage at the district's point, saying so.
    let (s, v) = report(&t, None, json!({"text": "井盖被盗了，很危险"})).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["case"]["category"], "triage");
    assert_eq!(v["dispatch"], "待人工分拨");
    let o = officer_view(&t, v["case"]["number"].as_str().unwrap()).await;
    let sg = &o["case"]["suggestion"];
    assert_eq!(sg["located_by_text"], false, "{sg}");
    assert!(
        sg["reason"].as_str().unwrap().contains("未找到地名"),
        "{sg}"
    );
    // The model's pick is still offered to staff.
    assert_eq!(sg["category"], "manhole_cover_missing");
    // A position given wins over the text's places.
    let [lon, lat] = spot("310104008", 1);
    let (_, v) = report(
        &t,
        None,
        json!({"text": "永康居委会的井盖被盗了", "lon": lon, "lat": lat}),
    )
    .await;
    assert_ne!(v["case"]["community"]["code"], YONGKANG, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_or_with_a_corrupt_one_every_text_waits_in_triage() {
    let [lon, lat] = spot(TIANPING, 2);
    let body = json!({"text": "井盖被盗了，很危险", "lon": lon, "lat": lat});
    for (bytes, why) in [
        (None, "无可用模型：模型文件 classifier.model 不存在"),
        (
            Some(&b"not a model at all"[..]),
            "无可用模型：模型文件 classifier.model 无法读取",
        ),
    ] {
        let t = app(bytes).await;
        let (s, v) = report(&t, None, body.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        assert_eq!(v["case"]["category"], "triage");
        assert_eq!(v["dispatch"], "待人工分拨");
        no_internals(&v);
        let o = officer_view(&t, v["case"]["number"].as_str().unwrap()).await;
        let sg = &o["case"]["suggestion"];
        assert!(sg["reason"].as_str().unwrap().starts_with(why), "{sg}");
        assert_eq!(sg["routed"], false);
        assert_eq!(sg["score"], 0.0);
        // A cue with a category still routes.
        let (_, v) = report(
            &t,
            None,
            json!({"text": "有人困在电梯里了", "lon": lon, "lat": lat}),
        )
        .await;
        assert_eq!(v["case"]["category"], "lift_entrapment", "{v}");
        assert_eq!(v["case"]["priority"], "urgent");
    }
    // A model written later is picked up (here at once; the service looks every 10 s).
    let t = app(None).await;
    let file = dir().join(cityos_server::smart::MODEL_FILE);
    std::fs::write(&file, model_bytes()).unwrap();
    let smart = &t.svc.as_ref().unwrap().state.0.smart;
    assert!(smart.status().is_err());
    smart.set_model_file(&file);
    assert!(smart.status().unwrap().starts_with("classifier.model#"));
    let (_, v) = report(&t, None, body).await;
    assert_eq!(v["case"]["category"], "manhole_cover_missing", "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_text_is_a_clear_error_naming_the_problem() {
    let t = app(Some(model_bytes())).await;
    let [lon, lat] = spot(TIANPING, 2);
    let cases: [(String, &str); 5] = [
        (String::new(), "text must say what the problem is"),
        ("   ".into(), "text must say what the problem is"),
        (
            "！！！？？？……😀😀".into(),
            "only punctuation, symbols or emoji",
        ),
        ("井盖".repeat(2500), "longer than 4000 characters"),
        ("井盖!!".into(), "too short to read without a category"),
    ];
    for (text, want) in &cases {
        let (s, v) = report(&t, None, json!({"text": text, "lon": lon, "lat": lat})).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{want}: {v}");
        assert!(v["detail"].as_str().unwrap().contains(want), "{v}");
    }
    // 100 KB is refused before it is read.
    let (s, v) = report(&t, None, json!({"text": "井".repeat(34_000)})).await;
    assert!(s.is_client_error(), "{s} {v}");
    assert!(
        v.to_string().contains("65536") || v.to_string().contains("64"),
        "{v}"
    );
    // Half a position, or a category without one.
    let (s, v) = report(&t, None, json!({"text": "井盖被盗了", "lon": lon})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        v["detail"].as_str().unwrap().contains("both or neither"),
        "{v}"
    );
    let (s, v) = report(
        &t,
        None,
        json!({"text": "井盖被盗了", "category": "manhole_cover_missing"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["detail"]
        .as_str()
        .unwrap()
        .contains("lon and lat are required with a category"));
    // Nothing was stored.
    let tok = t.login("zhang.district").await;
    let (_, v) = t.get("/api/v1/cases", Some(&tok)).await;
    assert_eq!(v["items"].as_array().map_or(0, |a| a.len()), 0, "{v}");
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

async fn open311(t: &TestApp, form: &str) -> (StatusCode, Value) {
    let p: std::net::SocketAddr = "10.0.0.9:5000".parse().unwrap();
    let (s, b, _) = t
        .raw(
            Method::POST,
            "/open311/v2/requests.json",
            FORM,
            form,
            Some(p),
        )
        .await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open311_takes_a_description_alone() {
    let t = app(Some(model_bytes())).await;
    // No service_code, no lat/long: the description names the place.
    let text = "永康居委会门口井盖被盗了，我的电话13812345678";
    let (s, v) = open311(&t, &format!("description={}", enc(text))).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let id = v[0]["service_request_id"].as_str().unwrap().to_string();
    assert!(!id.is_empty());
    assert_eq!(
        v[0]["service_notice"],
        format!("已受理，案件号 {id}，已转相关部门。").as_str()
    );
    no_internals(&v);
    assert!(!v.to_string().contains("13812345678"), "{v}");
    // Its public view: masked text, no suggestion.
    let (s, b, _) = t
        .raw(
            Method::GET,
            &format!("/open311/v2/requests/{id}.json"),
            FORM,
            "",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(!b.contains("13812345678"), "{b}");
    no_internals(&serde_json::from_str(&b).unwrap());
    // The API's anonymous answer is masked too.
    let (_, v) = report(&t, None, json!({"text": text})).await;
    assert!(!v.to_string().contains("13812345678"), "{v}");
    no_internals(&v);
    // With lat/long and an unsure description: triage.
    let [lon, lat] = spot(TIANPING, 4);
    let (s, v) = open311(
        &t,
        &format!(
            "description={}&lat={lat}&long={lon}",
            enc("想问一下这件事找谁办理")
        ),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(v[0]["service_notice"]
        .as_str()
        .unwrap()
        .ends_with("待人工分拨。"));
    // The old errors stand for the other cases.
    let (s, v) = open311(&t, &format!("lat={lat}&long={lon}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(v[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("service_code is required"));
    let (s, v) = open311(
        &t,
        &format!(
            "service_code=manhole_cover_missing&description={}",
            enc(text)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v[0]["description"],
        "a location is required: lat and long (WGS84)"
    );
    let (s, v) = open311(&t, &format!("description={}&lat={lat}", enc(text))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v[0]["description"], "send both lat and long");
    // A description with nothing (or too little) to read is no request without a code.
    for d in ["？？？！！！", "x", "井盖"] {
        let (s, v) = open311(&t, &format!("description={}&lat={lat}&long={lon}", enc(d))).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert!(v[0]["description"]
            .as_str()
            .unwrap()
            .starts_with("service_code is required (or leave it out"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_files_text_or_is_refused_as_before() {
    let t = app(Some(model_bytes())).await;
    for (n, (who, want)) in [
        ("zhao.inspector", StatusCode::CREATED),
        ("wang.urban", StatusCode::CREATED),
        ("li.tianping", StatusCode::CREATED),
        ("zhang.district", StatusCode::CREATED),
        ("sun.analyst", StatusCode::FORBIDDEN),
        ("admin", StatusCode::FORBIDDEN),
    ]
    .into_iter()
    .enumerate()
    {
        // Apart and about different things, so that no report joins another's case.
        let [lon, lat] = spot(TIANPING, 10 * n);
        let text = [
            "这里的井盖被盗了，很危险",
            "路灯坏了好几天，晚上一片漆黑",
            "门口有人摆摊卖水果，占了人行道",
            "楼下垃圾堆了三天没人清理，很臭",
            "电梯又停了，老人上下楼很困难",
            "晚上广场舞音响太吵影响休息",
        ][n];
        let body = json!({"text": text, "lon": lon, "lat": lat});
        let tok = t.login(who).await;
        let (s, v) = report(&t, Some(&tok), body.clone()).await;
        assert_eq!(s, want, "{who}: {v}");
        if s == StatusCode::CREATED {
            assert!(v["dispatch"].is_string(), "{who}: {v}");
            let officer = ["li.tianping", "zhang.district"].contains(&who);
            let case = &v["case"];
            assert_eq!(case.get("suggestion").is_some(), officer, "{who}: {v}");
        }
    }
}
