//! The web UI's server side: embedded pages with their security headers, the map
//! aggregation (counts per region, markers), and the actions a case offers each role.

use crate::api_story;
use crate::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use cityos_core::time::{DAY, HOUR, MINUTE};
use serde_json::json;

api_story!(the_map_aggregates_and_the_case_offers_only_what_the_role_may_do);
async fn the_map_aggregates_and_the_case_offers_only_what_the_role_may_do(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let mut ids = Vec::new();
    for (i, sub) in ["310104003", "310104003", "310104004"].iter().enumerate() {
        let p = spot(sub, i);
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": format!("游商 {i}")}),
            )
            .await;
        assert!(s.is_success(), "{v}");
        ids.push(v["case"]["id"].as_i64().unwrap());
    }
    let (s, m) = t.get("/api/v1/map", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["open"], 3);
    assert_eq!(m["counts"]["310104003"], 2);
    assert_eq!(m["counts"]["310104004"], 1);
    assert_eq!(m["markers"].as_array().unwrap().len(), 3);
    assert_eq!(m["today"]["reported"], 3, "{m}");
    let (_, g) = t
        .get("/api/v1/map?level=grid&markers=1", Some(&zhang))
        .await;
    assert_eq!(g["level"], "grid");
    assert_eq!(g["markers"].as_array().unwrap().len(), 1);
    let grids: i64 = g["counts"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(grids, 3);
    // The same counts yesterday up to this time of day: none today; the next morning
    // before 10:00, yesterday's 3 reports are not yet counted, just after 10:00 they are.
    assert_eq!(m["yesterday"]["reported"], 0, "{m}");
    let t0 = crate::support::t0();
    for (later, today, yesterday) in [(DAY - HOUR, 0, 0), (DAY + MINUTE, 0, 3)] {
        t.clock.set(t0 + later);
        let z = t.login("zhang.district").await;
        let (_, m) = t.get("/api/v1/map", Some(&z)).await;
        assert_eq!(
            (&m["today"]["reported"], &m["yesterday"]["reported"]),
            (&json!(today), &json!(yesterday)),
            "{later}: {m}"
        );
    }
    t.clock.set(t0);
    // A sub-district officer sees their sub-district only, and no district-wide figures.
    let li = t.login("li.tianping").await;
    let (_, m) = t.get("/api/v1/map", Some(&li)).await;
    assert_eq!(m["open"], 2);
    assert!(m["today"].is_null());
    assert!(m["yesterday"].is_null());
    for bad in ["/api/v1/map?level=street", "/api/v1/map?region=999"] {
        let (s, _) = t.get(bad, Some(&zhang)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (s, _) = t.get("/api/v1/map", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // The actions offered follow the state and the role.
    let (_, c) = t
        .get(&format!("/api/v1/cases/{}", ids[0]), Some(&zhang))
        .await;
    let actions: Vec<&str> = c["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"file") && actions.contains(&"reject"),
        "{actions:?}"
    );
    assert!(!actions.contains(&"verify") && !actions.contains(&"escalate"));
    let wang = t.login("wang.urban").await;
    let (s, c) = t
        .get(&format!("/api/v1/cases/{}", ids[0]), Some(&wang))
        .await;
    if s == StatusCode::OK {
        assert!(
            !c["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "acknowledge" || a == "file"),
            "a handler without a task may do nothing but see it: {c}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_embedded_with_their_security_headers() {
    let t = TestApp::sqlite();
    let (s, _, h) = t.raw(Method::GET, "/", "", "", None).await;
    assert_eq!(s, StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(h["location"], "/ui/login.html");
    for page in cityos_server::ui::FILES {
        let (s, body, h) = t
            .raw(Method::GET, &format!("/ui/{}", page.0), "", "", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{}", page.0);
        assert_eq!(h["content-type"], page.1);
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
        assert_eq!(h["x-content-type-options"], "nosniff");
        if page.0.ends_with(".html") {
            // No inline script or style: the policy would block them.
            assert!(
                !body.contains("<script>") && !body.contains("style="),
                "{}",
                page.0
            );
            for src in body.split("src=\"/ui/").skip(1) {
                let file = &src[..src.find('"').unwrap()];
                assert!(
                    cityos_server::ui::FILES.iter().any(|f| f.0 == file),
                    "{} refers to {file}, which is not embedded",
                    page.0
                );
            }
        }
    }
    let (s, _, _) = t.raw(Method::GET, "/ui/nope.html", "", "", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// The 场景 page is served like the others (its own policy headers, its scripts embedded)
/// and the staff pages' navigation leads to it; no script builds markup from strings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenarios_page_is_served_and_linked_from_the_staff_navigation() {
    let t = TestApp::sqlite();
    for (file, ct) in [
        ("scenarios.html", "text/html; charset=utf-8"),
        ("scenarios.js", "text/javascript; charset=utf-8"),
    ] {
        let (s, body, h) = t
            .raw(Method::GET, &format!("/ui/{file}"), "", "", None)
            .await;
        assert_eq!(s, StatusCode::OK, "{file}");
        assert_eq!(h["content-type"], ct);
        assert_eq!(h["x-content-type-options"], "nosniff");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        if file.ends_with(".html") {
            for script in ["/ui/app.js", "/ui/map.js", "/ui/scenarios.js"] {
                assert!(body.contains(&format!("src=\"{script}\"")), "{script}");
            }
        }
    }
    let js = |name: &str| {
        cityos_server::ui::FILES
            .iter()
            .find(|f| f.0 == name)
            .unwrap()
            .2
    };
    // The roles that see packs have the page in their navigation; the others do not.
    let app = js("app.js");
    let pages = &app[app.find("const ROLE_PAGES = {").unwrap()..];
    let pages = &pages[..pages.find("};").unwrap()];
    for line in pages.lines().skip(1) {
        let Some((role, list)) = line.trim().split_once(':') else {
            continue;
        };
        let staff = matches!(
            role,
            "district_officer" | "subdistrict_officer" | "admin" | "analyst"
        );
        assert_eq!(list.contains("\"scenarios\""), staff, "{role}: {list}");
    }
    for f in cityos_server::ui::FILES
        .iter()
        .filter(|f| f.0.ends_with(".js"))
    {
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!f.2.contains(sink), "{} uses {sink}", f.0);
        }
    }
}

/// Every key the pages use has both languages.
#[test]
fn every_text_key_has_both_languages() {
    let js = cityos_server::ui::FILES
        .iter()
        .find(|f| f.0 == "app.js")
        .unwrap()
        .2;
    let block = |lang: &str| -> Vec<String> {
        let head = format!("  {lang}: {{");
        let from = js.find(&head).unwrap() + head.len();
        let body = &js[from..from + js[from..].find("\n  },").unwrap()];
        body.split(&[',', '{', '\n'][..])
            .filter_map(|p| p.trim().split_once(':').map(|x| x.0.trim().to_string()))
            .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
            .collect()
    };
    let zh = block("zh");
    let en = block("en");
    assert!(zh.len() > 100, "{}", zh.len());
    for k in &zh {
        assert!(en.contains(k), "{k} has no English");
    }
    for page in cityos_server::ui::FILES
        .iter()
        .filter(|f| f.0.ends_with(".html"))
    {
        for part in page.2.split("data-i18n=\"").skip(1) {
            let key = &part[..part.find('"').unwrap()];
            assert!(
                zh.iter().any(|k| k == key),
                "{}: key {key} is not translated",
                page.0
            );
        }
    }
}

/// The UI's problem messages are exactly the server's table of problems: every code the
/// service can answer has its Chinese and English title, and the UI translates no code
/// the server never sends.
#[test]
fn the_ui_translates_exactly_the_problem_codes() {
    use cityos_server::http::problems::Problem;
    let js = cityos_server::ui::FILES
        .iter()
        .find(|f| f.0 == "app.js")
        .unwrap()
        .2;
    let problems = &js[js.find("const PROBLEMS = {").expect("app.js has PROBLEMS")..];
    let problems = &problems[..problems.find("\n};").unwrap()];
    let block = |lang: &str| -> Vec<(String, String)> {
        let head = format!("  {lang}: {{\n");
        let from = problems.find(&head).unwrap() + head.len();
        let body = &problems[from..from + problems[from..].find("\n  },").unwrap()];
        body.lines()
            .map(|l| {
                let (k, v) = l.trim().split_once(": ").expect("one code a line");
                let v = v.trim_end_matches(',').trim_matches('"');
                (k.to_string(), v.to_string())
            })
            .collect()
    };
    let zh = block("zh");
    let en = block("en");
    let want_zh: Vec<(String, String)> = Problem::ALL
        .iter()
        .map(|p| (p.code().to_string(), p.zh().to_string()))
        .collect();
    let want_en: Vec<(String, String)> = Problem::ALL
        .iter()
        .map(|p| (p.code().to_string(), p.en().to_string()))
        .collect();
    assert_eq!(zh, want_zh);
    assert_eq!(en, want_en);
}

/// Pages, scripts and JSON answers are gzipped for a client that accepts gzip (and read
/// back whole, byte for byte); a client that does not gets them plain; the live event
/// stream is never buffered for compression.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_answers_are_compressed_when_the_client_accepts_it() {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use std::io::Read;
    use tower::ServiceExt;
    let t = TestApp::sqlite();
    t.seed().await;
    let token = t.login("zhang.district").await;
    let state = t.svc.as_ref().unwrap().state.clone();
    let get = |path: &str, accept: Option<&str>, auth: bool| {
        let mut b = axum::http::Request::builder().uri(path);
        if let Some(a) = accept {
            b = b.header("accept-encoding", a);
        }
        if auth {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        let req = b.body(Body::empty()).unwrap();
        let router = cityos_server::app(state.clone());
        async move {
            let resp = router.oneshot(req).await.unwrap();
            let h = resp.headers().clone();
            (resp.status(), h, resp)
        }
    };
    let gunzip = |b: &[u8]| {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(b)
            .read_to_end(&mut out)
            .expect("a gzip body");
        out
    };
    for (file, _, body) in cityos_server::ui::FILES {
        let (s, h, resp) = get(&format!("/ui/{file}"), Some("gzip, deflate, br"), false).await;
        assert_eq!(s, StatusCode::OK, "{file}");
        assert_eq!(h["vary"], "accept-encoding", "{file}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        if body.len() >= 1024 {
            assert_eq!(h["content-encoding"], "gzip", "{file}");
            assert!(bytes.len() < body.len(), "{file}");
            assert_eq!(gunzip(&bytes), body.as_bytes(), "{file} read back");
        } else {
            assert_eq!(&bytes[..], body.as_bytes(), "{file}");
        }
    }
    // Not accepted (absent, or refused with q=0): plain.
    for accept in [None, Some("gzip;q=0"), Some("br")] {
        let (_, h, resp) = get("/ui/app.js", accept, false).await;
        assert!(h.get("content-encoding").is_none(), "{accept:?}");
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(bytes.starts_with(b"// cityos"), "{accept:?}");
    }
    // JSON: the map's answer, gzipped and whole.
    let (s, h, resp) = get("/api/v1/regions?level=grid", Some("gzip"), true).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-encoding"], "gzip");
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&gunzip(&bytes)).unwrap();
    assert!(v["features"].as_array().unwrap().len() > 100, "grids");
    // The live stream: passes through as a stream, never gzipped.
    let (s, h, _) = get("/api/v1/events/stream", Some("gzip"), true).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-type"], "text/event-stream");
    assert!(h.get("content-encoding").is_none());
}

/// 派遣 with a choice: routing's choice and reasons for a duty officer; a returned case
/// suggests the next candidate of the returning department's line instead of the same
/// department; other roles and anonymous callers are refused; an explicit choice of lead
/// and joint departments is what the case gets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatch_form_shows_routing_and_a_returned_case_offers_the_next_candidate() {
    let t = TestApp::sqlite();
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let p = spot("310104003", 0);
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商占道"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let id = v["case"]["id"].as_i64().unwrap();
    let path = format!("/api/v1/cases/{id}/routing");
    let (s, r) = t.get(&path, Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    let lead = r["routing"][0]["department"].as_str().unwrap().to_string();
    assert_eq!(lead, "sub-urban-mgmt-310104003", "{r}");
    assert_eq!(r["routing"][0]["lead"], true);
    assert!(r["routing"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("最低处置层级"));
    assert_eq!(r["suggested"][0]["department"], lead.as_str());
    assert_eq!(r["suggested"][0]["why"], "routing");
    assert_eq!(r["returned"], json!([]));
    let choices: Vec<&str> = r["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["department"].as_str().unwrap())
        .collect();
    assert!(
        choices.contains(&lead.as_str()) && choices.contains(&"dist-ccc"),
        "{choices:?}"
    );
    // Every role: officers see it, the others are refused; anonymous callers too.
    for (user, want) in [
        ("li.tianping", StatusCode::OK),
        ("admin", StatusCode::OK),
        ("wang.urban", StatusCode::FORBIDDEN),
        ("zhao.inspector", StatusCode::FORBIDDEN),
        ("sun.analyst", StatusCode::FORBIDDEN),
        ("elder_demo", StatusCode::FORBIDDEN),
    ] {
        let tok = t.login(user).await;
        let (s, v) = t.get(&path, Some(&tok)).await;
        assert_eq!(s, want, "{user}: {v}");
    }
    let (s, _) = t.get(&path, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v) = t.get("/api/v1/cases/99999999/routing", Some(&zhang)).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    // File and dispatch as routing says; the department returns it.
    for body in [json!({"action": "file"}), json!({"action": "dispatch"})] {
        let (s, v) = t
            .post(
                &format!("/api/v1/cases/{id}/transitions"),
                Some(&zhang),
                body,
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let wang = t.login("wang.urban").await;
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{id}/transitions"),
            Some(&wang),
            json!({"action": "return", "reason": "不属于本中队"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, r) = t.get(&path, Some(&zhang)).await;
    assert_eq!(r["state"], "returned", "{r}");
    assert_eq!(r["returned"], json!([lead]), "{r}");
    let next = r["suggested"][0]["department"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(next, lead, "the same department again: {r}");
    assert_eq!(r["suggested"][0]["why"], "next_up");
    assert_eq!(r["suggested"][0]["lead"], true);
    assert!(next.starts_with("dist-"), "{r}");
    // The officer's choice: the suggestion as lead plus a joint department.
    let (s, v) = t
        .post(
            &format!("/api/v1/cases/{id}/transitions"),
            Some(&zhang),
            json!({"action": "dispatch", "departments": [{"department": next, "lead": true}, {"department": "dist-ccc", "lead": false}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, c) = t.get(&format!("/api/v1/cases/{id}"), Some(&zhang)).await;
    let tasks: Vec<(String, bool)> = c["case"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["department"].as_str().unwrap().to_string(),
                x["lead"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tasks,
        vec![(next, true), ("dist-ccc".to_string(), false)],
        "{c}"
    );
}

api_story!(the_map_compares_open_overdue_and_on_time_with_the_same_time_yesterday);
/// The centre's standing figures against the same time yesterday: sampled every 5
/// minutes (open cases, those marked overdue, handled and on time), the map's
/// `yesterday` names the sample taken at this time yesterday — exactly its numbers, the
/// newest one at or before then, none when no sample was taken within 15 minutes of it.
async fn the_map_compares_open_overdue_and_on_time_with_the_same_time_yesterday(t: TestApp) {
    use cityos_server::ui::sample_figures;
    t.seed().await;
    let state = t.svc.as_ref().unwrap().state.clone();
    let t0 = crate::support::t0();
    // Three reports far apart in 天平路; A goes through to handled, on time.
    let mut numbers = Vec::new();
    for i in [1, 12, 24] {
        let p = spot("310104003", i);
        let (s, v) = t
            .post(
                "/api/v1/reports",
                None,
                json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": format!("游商 {i}")}),
            )
            .await;
        assert!(s.is_success(), "{v}");
        numbers.push(v["case"]["number"].as_str().unwrap().to_string());
    }
    numbers.dedup();
    assert_eq!(numbers.len(), 3, "three separate cases");
    let li = t.login("li.tianping").await;
    let wang = t.login("wang.urban").await;
    for (who, action) in [
        (&li, "file"),
        (&li, "dispatch"),
        (&wang, "acknowledge"),
        (&wang, "handle"),
    ] {
        let (s, v) = crate::api::act(&t, Some(who), &numbers[0], json!({"action": action})).await;
        assert_eq!(s, StatusCode::OK, "{action}: {v}");
    }
    // The first sample; the same 5-minute bucket is not sampled twice.
    assert!(sample_figures(&state).await.unwrap());
    t.clock.set(t0 + 4 * MINUTE);
    assert!(!sample_figures(&state).await.unwrap());
    // Two hours on, the deadline timer has marked the two unfiled reports overdue.
    t.clock.set(t0 + 2 * HOUR);
    let zhang = t.login("zhang.district").await;
    let mut overdue = 0;
    for _ in 0..100 {
        let (_, s) = t.get("/api/v1/stats", Some(&zhang)).await;
        overdue = s["overdue"].as_i64().unwrap();
        if overdue == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(overdue, 2, "the timer marked the unfiled two overdue");
    assert!(sample_figures(&state).await.unwrap());
    // A third case the next day changes today's figures, not yesterday's.
    t.clock.set(t0 + DAY);
    let p = spot("310104004", 3);
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商 次日"}),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let y = |m: &serde_json::Value| {
        (
            m["yesterday"]["open"].clone(),
            m["yesterday"]["overdue"].clone(),
            m["yesterday"]["on_time_rate"].clone(),
        )
    };
    for (at, want) in [
        (DAY + MINUTE, (json!(3), json!(0), json!(1.0))),
        (DAY + 30 * MINUTE, (json!(null), json!(null), json!(null))),
        (
            DAY + 2 * HOUR + 14 * MINUTE,
            (json!(3), json!(2), json!(1.0)),
        ),
    ] {
        t.clock.set(t0 + at);
        let z = t.login("zhang.district").await;
        let (s, m) = t.get("/api/v1/map", Some(&z)).await;
        assert_eq!(s, StatusCode::OK, "{m}");
        assert_eq!(m["open"], 4, "{m}");
        assert_eq!(y(&m), want, "{at}: {m}");
        // Today's standing figures by the sample's own computation (every open state,
        // every category, the whole district), to compare like with like.
        assert_eq!(m["today"]["open"], 4, "{m}");
        assert_eq!(m["today"]["on_time_rate"], 1.0, "{m}");
        if at == DAY + MINUTE {
            assert_eq!(m["today"]["overdue"], 2, "{m}");
        }
    }
    // Samples are kept 8 days: the next one then deletes those older (by bucket).
    let figures = |at: i64| {
        let st = state.clone();
        async move {
            st.0.reads
                .run(move |s| s.figures_at(at, at - 1))
                .await
                .unwrap()
                .unwrap()
        }
    };
    let b0 = t0 - t0.rem_euclid(cityos_server::ui::FIGURES_EVERY);
    let b2 = b0 + 2 * HOUR;
    assert!(figures(b0).await.is_some() && figures(b2).await.is_some());
    t.clock.set(b2 + 8 * DAY);
    assert!(sample_figures(&state).await.unwrap());
    assert_eq!(figures(b0).await, None, "older than 8 days: pruned");
    assert_eq!(
        figures(b2).await.map(|f| f.open),
        Some(3),
        "8 days old: kept"
    );
    assert!(figures(b2 + 8 * DAY).await.is_some());
    // Whole-district figures only: a sub-district officer gets none.
    let li = t.login("li.tianping").await;
    let (_, m) = t.get("/api/v1/map", Some(&li)).await;
    assert!(m["yesterday"].is_null() && m["today"].is_null(), "{m}");
}

/// The optional tile base layer: a template is checked (http(s), a host, {z}/{x}/{y} once
/// each, nothing that could break the CSP header); off, the pages' CSP allows images from
/// this server only and `/ui/places.json` names no tiles; on, the CSP adds the tile
/// server's origin to `img-src` alone and the places name the template and attribution.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tile_server_is_checked_and_only_its_origin_enters_the_csp() {
    use cityos_server::ui::Tiles;
    let t = Tiles::new(
        "https://tiles.example:8443/xh/{z}/{x}/{y}.png",
        Some(" © 徐汇区测绘 "),
    )
    .unwrap();
    assert_eq!(
        (t.origin.as_str(), t.attribution.as_str()),
        ("https://tiles.example:8443", "© 徐汇区测绘")
    );
    for (bad, why) in [
        ("ftp://tiles.example/{z}/{x}/{y}.png", "http:// or https://"),
        ("https:///{z}/{x}/{y}.png", "host"),
        ("https://tiles.example/{z}/{x}.png", "{y} once"),
        ("https://tiles.example/{z}/{x}/{y}/{y}.png", "{y} once"),
        (
            "https://tiles.example/{z}/{x}/{y}.png;script-src *",
            "semicolons",
        ),
        (
            "https://tiles.example/{z}/{x}/{y}.png 'unsafe-inline'",
            "spaces",
        ),
        ("https://evil.example'/{z}/{x}/{y}", "host"),
    ] {
        let e = Tiles::new(bad, None).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    assert!(Tiles::new("https://a.example/{z}/{x}/{y}", Some(&"长".repeat(201))).is_err());

    let app = TestApp::sqlite();
    let page = |app: &TestApp| {
        let app = app.svc.as_ref().unwrap().state.clone();
        async move {
            let router = cityos_server::app(app);
            let resp = tower::ServiceExt::oneshot(
                router,
                axum::http::Request::builder()
                    .uri("/ui/centre.html")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
            resp.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    let csp = page(&app).await;
    assert!(csp.contains("img-src 'self' data: blob:; "), "{csp}");
    let (_, places) = app.get("/ui/places.json", None).await;
    assert!(places["tiles"].is_null(), "no tiles by default");
    let _ = app.svc.as_ref().unwrap().state.0.tiles.set(t);
    let csp = page(&app).await;
    assert!(
        csp.contains("img-src 'self' data: blob: https://tiles.example:8443; "),
        "{csp}"
    );
    assert!(
        csp.contains("connect-src 'self';") && csp.contains("default-src 'self';"),
        "{csp}"
    );
    let (_, places, headers) = app
        .call(axum::http::Method::GET, "/ui/places.json", None, None, &[])
        .await;
    // Revalidated like the pages' CSP, so a tile change takes effect on both at once.
    assert_eq!(headers["cache-control"], "no-cache");
    assert_eq!(
        places["tiles"],
        json!({"url": "https://tiles.example:8443/xh/{z}/{x}/{y}.png", "attribution": "© 徐汇区测绘"})
    );
}
