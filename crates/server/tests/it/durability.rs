//! Durability and availability over HTTP: an idempotency key recorded with its case even
//! when the caller is gone, control characters refused at the edge, bounded list filters,
//! a full disk (507, reads still work), and PostgreSQL dropping the connections (503 with
//! `Retry-After`, then recovery with nothing lost).

use super::support::{spot, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn report(category: &str, p: [f64; 2], text: &str) -> Value {
    json!({"category": category, "lon": p[0], "lat": p[1], "text": text})
}

async fn counts(t: &TestApp) -> cityos_engine::store::Counts {
    t.svc
        .as_ref()
        .unwrap()
        .state
        .0
        .reads
        .run(|s| s.counts())
        .await
        .unwrap()
        .unwrap()
}

crate::api_story!(key_is_recorded_even_when_the_caller_is_gone);
/// The caller gives up (its connection drops) after the report reached the engine: the
/// case is still created, and its key with it, so the retry gets the first answer instead
/// of a second case (the window a `kill -9` opened when the key was written afterwards).
async fn key_is_recorded_even_when_the_caller_is_gone(t: TestApp) {
    let svc = t.svc.as_ref().unwrap();
    let h = svc.handle().clone();
    // Hold the engine so the report waits in its queue.
    let hold = std::thread::spawn(move || {
        h.with(|_| std::thread::sleep(Duration::from_millis(600)))
            .unwrap()
    });
    std::thread::sleep(Duration::from_millis(50));
    let body = report("noise", spot("310104003", 3), "夜间施工噪声");
    let first = {
        let router = cityos_server::app(svc.state.clone());
        let req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/api/v1/reports")
            .header("content-type", "application/json")
            .header("idempotency-key", "gone-1")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        tokio::spawn(async move {
            use tower::ServiceExt;
            router.oneshot(req).await
        })
    };
    tokio::time::sleep(Duration::from_millis(250)).await;
    first.abort(); // the caller is gone before the answer
    tokio::task::spawn_blocking(move || hold.join().unwrap())
        .await
        .unwrap();
    // The engine commits the queued report; its key lands with it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while counts(&t).await.cases == 0 {
        assert!(Instant::now() < deadline, "the queued report was committed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (s, v, hd) = t
        .call(
            Method::POST,
            "/api/v1/reports",
            None,
            Some(body),
            &[("idempotency-key", "gone-1")],
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(hd["idempotent-replayed"], "true", "{v}");
    assert_eq!(counts(&t).await.cases, 1, "the retry created nothing");
}

crate::api_story!(control_characters_are_refused_at_the_edge);
/// A NUL (or any control character but line breaks and tabs) is a 400 naming the field,
/// never a store error; text with line breaks is fine.
async fn control_characters_are_refused_at_the_edge(t: TestApp) {
    let p = spot("310104003", 1);
    for (body, field) in [
        (report("noise", p, "x\u{0}"), "text"),
        (
            json!({"category": "noise", "lon": p[0], "lat": p[1], "text": "ok", "contact": "138\u{7}"}),
            "contact",
        ),
        (
            json!({"category": "noise", "lon": p[0], "lat": p[1], "text": "ok", "media": ["\u{1b}[31m"]}),
            "media[0]",
        ),
        (report("noise", p, "raw C1 \u{85} and DEL \u{7f}"), "text"),
    ] {
        let (s, v, h) = t
            .call(Method::POST, "/api/v1/reports", None, Some(body), &[])
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        assert_eq!(v["code"], "control_character");
        assert!(
            v["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("`{field}`")),
            "{v}"
        );
        assert_eq!(h["content-type"], "application/problem+json");
    }
    assert_eq!(counts(&t).await.cases, 0);
    let (full, _) = t
        .svc
        .as_ref()
        .unwrap()
        .handle()
        .with(|e| e.reloads())
        .unwrap();
    assert_eq!(full, 0, "no reload of every open case");
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("noise", p, "第一行\n第二行\t完"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

crate::api_story!(list_parameters_are_bounded);
/// A list parameter carries at most 50 values, each a known one (the 5,000-value
/// `state=` answered 500 on SQLite and held PostgreSQL for minutes).
async fn list_parameters_are_bounded(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let many = vec!["reported"; 5000].join(",");
    for param in ["state", "category", "domain"] {
        let value = match param {
            "state" => many.clone(),
            "category" => vec!["noise"; 51].join(","),
            _ => vec!["city_management"; 51].join(","),
        };
        for path in ["/api/v1/cases", "/api/v1/stats"] {
            let (s, v) = t
                .get(&format!("{path}?{param}={value}"), Some(&zhang))
                .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path} {param}: {v}");
            assert_eq!(v["code"], "invalid_parameter");
            assert!(v["detail"].as_str().unwrap().starts_with(param), "{v}");
        }
    }
    // 50 repeats of a known value are one value.
    let fifty = vec!["reported"; 50].join(",");
    let (s, v) = t
        .get(&format!("/api/v1/cases?state={fifty}"), Some(&zhang))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = t
        .get("/api/v1/cases?state=reported,flying", Some(&zhang))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_parameter"))
    );
    // Open311's service_code list: repeats are one value.
    let codes = vec!["noise"; 5000].join(",");
    let (s, _, _) = t
        .call(
            Method::GET,
            &format!("/open311/v2/requests.json?service_code={codes}"),
            None,
            None,
            &[],
        )
        .await;
    assert!(s != StatusCode::INTERNAL_SERVER_ERROR && s != StatusCode::SERVICE_UNAVAILABLE);
}

/// A full disk: writes answer 507 `insufficient_storage`, reads keep working, nothing is
/// half-written, and once there is room again writes work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_507_and_reads_keep_working() {
    let t = TestApp::sqlite();
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let h = t.svc.as_ref().unwrap().handle().clone();
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("noise", spot("310104003", 0), "噪声"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The writer's database may not grow: the disk is "full".
    h.with_writer(|s| s.limit_pages(Some(1))).unwrap().unwrap();
    let long = "占道经营，".repeat(700);
    let mut acknowledged = 1;
    let mut full = None;
    for i in 0..400 {
        let (s, v, hd) = t
            .call(
                Method::POST,
                "/api/v1/reports",
                None,
                Some(report(
                    ["noise", "street_vending", "exposed_garbage"][i % 3],
                    spot("310104003", i % 40),
                    &long,
                )),
                &[],
            )
            .await;
        match s {
            StatusCode::CREATED | StatusCode::OK => acknowledged += 1,
            StatusCode::INSUFFICIENT_STORAGE => {
                assert_eq!(v["code"], "insufficient_storage");
                assert_eq!(hd["content-type"], "application/problem+json");
                full = Some(v);
                break;
            }
            other => panic!("{other}: {v}"),
        }
    }
    assert!(full.is_some(), "the capped database filled up");
    // Reads keep working.
    let (s, v) = t.get("/api/v1/cases?limit=5", Some(&zhang)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = t.get("/healthz", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        counts(&t).await.reports,
        acknowledged,
        "nothing half-written"
    );
    // Room again: writes work again.
    h.with_writer(|s| s.limit_pages(None)).unwrap().unwrap();
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("noise", spot("310104003", 45), "噪声"),
        )
        .await;
    assert!(s == StatusCode::CREATED || s == StatusCode::OK, "{v}");
    assert_eq!(counts(&t).await.reports, acknowledged + 1);
    assert_eq!(
        h.with(|e| e.reloads()).unwrap().0,
        0,
        "no reload of every open case"
    );
}

/// PostgreSQL drops the service's connections (`pg_terminate_backend`, repeatedly for a
/// while): requests answer 503 `store_unavailable` with `Retry-After` (never 500),
/// `/healthz` and `/readyz` tell the truth, and once the database lets them back the
/// connections come back by themselves with every acknowledged report stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_come_back_after_being_terminated() {
    let app_name = format!("cityos_reconnect_{}", std::process::id());
    let Some(t) = TestApp::postgres_with(&format!("application_name={app_name}")) else {
        return;
    };
    let url = std::env::var("CITYOS_TEST_POSTGRES_URL").unwrap();
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let mut numbers = Vec::new();
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("noise", spot("310104003", 0), "噪声"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    numbers.push(v["case"]["number"].as_str().unwrap().to_string());
    // Terminate this service's connections (only ours: others test on the same
    // database) every 25 ms for 1.5 s.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (stop, url, app_name) = (stop.clone(), url.clone(), app_name.clone());
        let schema = match &t.db {
            cityos_server::runtime::service::Database::Postgres(u) => {
                cityos_engine::split_schema(u).1
            }
            _ => None,
        };
        std::thread::spawn(move || {
            use cityos_engine::query::{Param, Sql};
            use cityos_engine::StoreConnection;
            let mut c = cityos_engine::PostgresStore::connect(&url, schema.as_deref()).unwrap();
            let kill = Sql {
                // The victims are chosen first (a materialised CTE), so the planner cannot
                // call pg_terminate_backend on anyone else's connection.
                text: "WITH v AS MATERIALIZED (SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) SELECT 'k', COUNT(*) FROM v WHERE pg_terminate_backend(v.pid)".into(),
                params: vec![Param::Text(app_name)],
            };
            let mut killed = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                killed += c.query_groups(&kill).unwrap().first().map_or(0, |r| r.1);
                std::thread::sleep(Duration::from_millis(25));
            }
            killed
        })
    };
    let (mut unavailable, mut healthz_down) = (0, 0);
    // A citizen app's token: anonymous filings are limited per address, and this loop
    // files as fast as it can.
    let app = t.sign(&cityos_server::http::auth::Principal {
        name: "citizen-app".into(),
        role: cityos_core::Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    let until = Instant::now() + Duration::from_millis(1500);
    let mut i = 1;
    while Instant::now() < until {
        let (s, v, hd) = t
            .call(
                Method::POST,
                "/api/v1/reports",
                Some(&app),
                Some(report(
                    ["noise", "street_vending", "exposed_garbage"][i % 3],
                    spot("310104003", i % 40),
                    "上报",
                )),
                &[],
            )
            .await;
        i += 1;
        match s {
            StatusCode::CREATED | StatusCode::OK => {
                numbers.push(v["case"]["number"].as_str().unwrap().to_string())
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(v["code"], "store_unavailable", "{v}");
                assert!(hd.contains_key("retry-after"));
                unavailable += 1;
            }
            other => panic!("{other}: {v}"),
        }
        let (s, v) = t.get("/api/v1/cases?limit=3", Some(&zhang)).await;
        match s {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => assert_eq!(v["code"], "store_unavailable"),
            other => panic!("{other}: {v}"),
        }
        let (s, _) = t.get("/healthz", None).await;
        if s == StatusCode::SERVICE_UNAVAILABLE {
            healthz_down += 1;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let killed = tokio::task::spawn_blocking(move || killer.join().unwrap())
        .await
        .unwrap();
    assert!(killed > 0, "connections were terminated");
    assert!(unavailable > 0, "some requests saw the store unavailable");
    assert!(
        healthz_down > 0,
        "/healthz said so while the connections were down"
    );
    eprintln!("terminated {killed} connections; {unavailable} writes answered 503; /healthz down {healthz_down} times");
    // Recovery: within a few seconds everything answers again.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (s1, _) = t.get("/readyz", None).await;
        let (s2, v) = t
            .post(
                "/api/v1/reports",
                None,
                report("noise", spot("310104003", 47), "恢复后上报"),
            )
            .await;
        let (s3, _) = t.get("/api/v1/cases?limit=3", Some(&zhang)).await;
        let (s4, _) = t.get("/healthz", None).await;
        if [s1, s2, s3, s4].iter().all(|s| s.is_success()) {
            numbers.push(v["case"]["number"].as_str().unwrap().to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recovered: {s1} {s2} {s3} {s4} {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every acknowledged report's case is there.
    for n in &numbers {
        let (s, v) = t.get(&format!("/api/v1/cases/{n}"), Some(&zhang)).await;
        assert_eq!(s, StatusCode::OK, "{n}: {v}");
    }
}

/// The store's troubles as the API says them.
#[test]
fn store_errors_have_their_own_problems() {
    use cityos_engine::StoreError as E;
    for (e, status, code, retry) in [
        (E::Unavailable("x".into()), 503, "store_unavailable", true),
        (E::Timeout("x".into()), 503, "store_timeout", true),
        (E::Full("x".into()), 507, "insufficient_storage", false),
        (E::Db("x".into()), 500, "internal", false),
    ] {
        let a = cityos_server::http::error::ApiError::from(e);
        assert_eq!((a.status.as_u16(), a.code), (status, code));
        assert_eq!(a.retry_after.is_some(), retry);
    }
}
