//! `/metrics` in the Prometheus text format: latency histograms by route template,
//! readings counters, cases by state, engine and timer gauges; bounded labels and the
//! optional token; every background loop reporting its rounds.

use crate::api_story;
use crate::support::{metric, metrics_text};
use crate::support::{spot, t0, TestApp};
use axum::http::{Method, StatusCode};
use serde_json::json;

/// Every sample line of an exposition, as (name with labels, value).
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            (
                k.to_string(),
                v.parse::<f64>()
                    .unwrap_or_else(|_| panic!("bad value in {l:?}")),
            )
        })
        .collect()
}

api_story!(metrics_describe_the_service);
async fn metrics_describe_the_service(t: TestApp) {
    t.seed().await;
    let zhang = t.login("zhang.district").await;
    let p = spot("310104003", 2);
    let (s, _) = t
        .post(
            "/api/v1/reports",
            None,
            json!({"category": "street_vending", "lon": p[0], "lat": p[1], "text": "游商"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    for _ in 0..3 {
        t.get("/api/v1/stats", Some(&zhang)).await;
    }
    let (s, _) = t.get("/api/v1/cases/XH0000", Some(&zhang)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, text, h) = t.raw(Method::GET, "/metrics", "text/plain", "", None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let all = samples(&text);
    let get = |k: &str| all.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
    // Every metric family is declared.
    for family in [
        "cityos_http_request_duration_seconds histogram",
        "cityos_readings_accepted_total counter",
        "cityos_readings_refused_total counter",
        "cityos_alarms_firing gauge",
        "cityos_readings_batches_busy_total counter",
        "cityos_readings_batch_applying gauge",
        "cityos_vital_alerts gauge",
        "cityos_engine_requests_in_flight gauge",
        "cityos_timer_lag_seconds gauge",
        "cityos_cases gauge",
        "cityos_cases_overdue gauge",
        "cityos_event_stream_subscribers gauge",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family}")),
            "{family}:\n{text}"
        );
    }
    // Latency by route template: three stats calls, the 404 under its template.
    let stats = "method=\"GET\",route=\"/api/v1/stats\",status=\"2xx\"";
    assert_eq!(
        get(&format!(
            "cityos_http_request_duration_seconds_count{{{stats}}}"
        )),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        get(&format!(
            "cityos_http_request_duration_seconds_bucket{{{stats},le=\"+Inf\"}}"
        )),
        Some(3.0)
    );
    assert!(
        text.contains("route=\"/api/v1/cases/{id}\",status=\"4xx\""),
        "{text}"
    );
    // Buckets never decrease.
    let buckets: Vec<f64> = all
        .iter()
        .filter(|(n, _)| {
            n.starts_with(&format!(
                "cityos_http_request_duration_seconds_bucket{{{stats}"
            ))
        })
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert_eq!(get("cityos_cases{state=\"reported\"}"), Some(1.0), "{text}");
    assert_eq!(get("cityos_engine_requests_in_flight"), Some(0.0));
    assert_eq!(get("cityos_timer_lag_seconds"), Some(0.0));
    assert_eq!(
        get("cityos_readings_refused_total{reason=\"unknown_device\"}"),
        Some(0.0)
    );
}

// Item 19: invented methods and unknown paths add no series; the optional token.
#[tokio::test]
async fn metrics_labels_are_bounded_and_the_token_is_asked() {
    let t = TestApp::sqlite();
    for i in 0..50 {
        let m = Method::from_bytes(format!("INVENTED{i}").as_bytes()).unwrap();
        let _ = t
            .call(m, &format!("/no/such/path/{i}"), None, None, &[])
            .await;
        let m = Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        let _ = t.call(m, "/api/v1/categories", None, None, &[]).await;
    }
    let m = metrics_text(&t).await;
    assert!(!m.contains("INVENTED") && !m.contains("BREW"), "{m}");
    assert!(m.contains("method=\"other\",route=\"unmatched\""), "{m}");
    assert!(
        m.contains("method=\"other\",route=\"/api/v1/categories\""),
        "{m}"
    );
    assert!(!m.contains("/no/such/path"));
    let series = m
        .lines()
        .filter(|l| l.starts_with("cityos_http_request_duration_seconds_count"))
        .count();
    assert!(series <= 4, "{series} series: {m}");
    // With a token set, /metrics asks for it.
    let _ = t
        .svc
        .as_ref()
        .unwrap()
        .state
        .0
        .metrics_token
        .set("s3cret".into());
    let (s, v, _) = t.call(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["code"], "missing_token");
    let (s, _, _) = t
        .call(Method::GET, "/metrics", Some("wrong"), None, &[])
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, v, _) = t
        .call(Method::GET, "/metrics", Some("s3cret"), None, &[])
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(v
        .as_str()
        .unwrap()
        .contains("cityos_background_errors_total"));
}

// Item 8: the tickers report their rounds in /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickers_report_their_rounds() {
    let t = TestApp::sqlite();
    let st = t.svc.as_ref().unwrap().state.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let every = std::time::Duration::from_millis(50);
    let a = tokio::spawn(cityos_server::runtime::tickers::alerts(
        st.clone(),
        every,
        stop.clone(),
    ));
    let s = tokio::spawn(cityos_server::runtime::tickers::sensing(
        st.clone(),
        every,
        stop.clone(),
    ));
    let mut m = String::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        m = metrics_text(&t).await;
        if ["alerts", "figures", "sensing", "scenarios"]
            .iter()
            .all(|l| {
                metric(
                    &m,
                    &format!("cityos_background_last_success_seconds{{loop=\"{l}\"}}"),
                )
                .is_some_and(|v| v > 0.0)
            })
        {
            break;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let _ = (a.await, s.await);
    for l in ["alerts", "figures", "sensing", "scenarios"] {
        let at = metric(
            &m,
            &format!("cityos_background_last_success_seconds{{loop=\"{l}\"}}"),
        )
        .unwrap();
        assert_eq!(at, (t0() / 1000) as f64, "{l}: {m}");
        assert_eq!(
            metric(
                &m,
                &format!("cityos_background_errors_total{{loop=\"{l}\"}}")
            ),
            Some(0.0),
            "{l}"
        );
    }
}
