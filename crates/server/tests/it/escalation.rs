//! Escalation by the timer: exactly once across a restart, and a timer that survives a
//! failing store (its rounds fail, are counted, and it escalates once the store is back).

use crate::api_story;
use crate::support::{metric, metrics_text};
use crate::support::{spot, t0, TestApp};
use axum::http::StatusCode;
use cityos_core::time::{HOUR, MINUTE};
use cityos_server::runtime::service::Database;
use serde_json::{json, Value};

const TIANPING: &str = "310104003";

fn report(category: &str, p: [f64; 2], text: &str) -> Value {
    json!({"category": category, "lon": p[0], "lat": p[1], "text": text})
}

api_story!(escalation_fires_once_across_a_restart);
async fn escalation_fires_once_across_a_restart(mut t: TestApp) {
    t.seed().await;
    let (_, v) = t
        .post(
            "/api/v1/reports",
            None,
            crate::api::report("street_vending", spot("310104003", 2)),
        )
        .await;
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let zhang = t.login("zhang.district").await;
    // Stop before the filing deadline; start again after it.
    t.restart();
    t.clock.set(t0() + 2 * HOUR);
    let mut escalated = Value::Null;
    for _ in 0..60 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, v) = t
            .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
            .await;
        if v["case"]["escalations"].as_u64() == Some(1) {
            escalated = v;
            break;
        }
    }
    assert_eq!(escalated["case"]["overdue"], true, "{escalated}");
    assert_eq!(escalated["case"]["escalated_to"], "dist-ccc");
    t.restart();
    t.clock.advance(10 * MINUTE);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (_, v) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
        .await;
    let n = v["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "escalate")
        .count();
    assert_eq!(n, 1, "exactly once");
}

/// Makes every store write of an escalation fail (as a full disk would), or lets it pass
/// again: a trigger on the log table, installed from outside the service.
fn break_escalations(db: &Database, broken: bool) {
    match db.clone() {
        Database::Sqlite(dir) => {
            let c = rusqlite::Connection::open(dir.join("cityos.db")).unwrap();
            c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
            let sql = if broken {
                "CREATE TRIGGER inject_disk_full BEFORE INSERT ON case_log \
                 WHEN NEW.action = 'escalate' \
                 BEGIN SELECT RAISE(ABORT, 'injected: database or disk is full'); END;"
            } else {
                "DROP TRIGGER inject_disk_full;"
            };
            c.execute_batch(sql).unwrap();
        }
        Database::Postgres(url) => {
            std::thread::spawn(move || {
                let (url, schema) = cityos_engine::split_schema(&url);
                let schema = schema.unwrap();
                let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
                let sql = if broken {
                    format!(
                        "CREATE FUNCTION {schema}.inject_disk_full() RETURNS trigger AS $$ \
                         BEGIN RAISE EXCEPTION 'injected: could not extend file'; END $$ LANGUAGE plpgsql; \
                         CREATE TRIGGER inject_disk_full BEFORE INSERT ON {schema}.case_log \
                         FOR EACH ROW WHEN (NEW.action = 'escalate') EXECUTE FUNCTION {schema}.inject_disk_full();"
                    )
                } else {
                    format!(
                        "DROP TRIGGER inject_disk_full ON {schema}.case_log; \
                         DROP FUNCTION {schema}.inject_disk_full();"
                    )
                };
                c.batch_execute(&sql).unwrap();
            })
            .join()
            .unwrap();
        }
    }
}

// Item 8: a failed tick used to end the timer thread; no escalation until a restart.
api_story!(escalation_timer_survives_a_failing_store);
async fn escalation_timer_survives_a_failing_store(t: TestApp) {
    t.seed().await;
    let (s, v) = t
        .post(
            "/api/v1/reports",
            None,
            report("street_vending", spot(TIANPING, 2), "游商占道，请处理"),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let number = v["case"]["number"].as_str().unwrap().to_string();
    let zhang = t.login("zhang.district").await;
    break_escalations(&t.db, true);
    t.clock.set(t0() + 2 * HOUR);
    let series = "cityos_background_errors_total{loop=\"escalation\"}";
    let mut errors = 0.0;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        errors = metric(&metrics_text(&t).await, series).unwrap();
        if errors >= 2.0 {
            break;
        }
    }
    assert!(errors >= 2.0, "the failing ticks are counted: {errors}");
    let (_, v) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
        .await;
    assert_eq!(v["case"]["escalations"], 0, "{v}");
    // The disk is freed: the same timer, still running, escalates what is due.
    break_escalations(&t.db, false);
    let mut escalated = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (_, v) = t
            .get(&format!("/api/v1/cases/{number}"), Some(&zhang))
            .await;
        if v["case"]["escalations"].as_u64() == Some(1) {
            escalated = v;
            break;
        }
    }
    assert_eq!(escalated["case"]["escalated_to"], "dist-ccc", "{escalated}");
    let m = metrics_text(&t).await;
    let last = metric(
        &m,
        "cityos_background_last_success_seconds{loop=\"escalation\"}",
    )
    .unwrap();
    assert!(last >= ((t0() + 2 * HOUR) / 1000) as f64, "{m}");
}
