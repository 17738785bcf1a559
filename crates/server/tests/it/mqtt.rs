//! The MQTT bridge against the local broker: readings published to
//! `{prefix}/readings/{device}` reach the sensing end; malformed payloads and unknown
//! devices are counted; an alarm fires into a case.

use crate::support::TestApp;
use cityos_core::time::MINUTE;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The broker URL, or `None` (skip) — unless `CITYOS_REQUIRE_SERVICES=1`.
fn broker() -> Option<String> {
    match std::env::var("CITYOS_TEST_MQTT_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ if std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("CITYOS_TEST_MQTT_URL is not set but CITYOS_REQUIRE_SERVICES=1")
        }
        _ => None,
    }
}

/// Waits (up to 10 s) until `f` holds.
async fn until(mut f: impl FnMut() -> bool, what: &str) {
    for _ in 0..200 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readings_arrive_over_mqtt() {
    let Some(url) = broker() else { return };
    let t = TestApp::sqlite();
    let st = t.svc.as_ref().unwrap().state.clone();
    let prefix = format!("cityos-test-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = tokio::spawn(cityos_server::intake::sensor::mqtt::run(
        st.clone(),
        url.clone(),
        prefix.clone(),
        stop.clone(),
    ));
    let (host, port) = cityos_server::intake::sensor::mqtt::parse_url(&url).unwrap();
    let (client, mut ev) = AsyncClient::new(
        MqttOptions::new(format!("{prefix}-publisher"), host, port),
        100,
    );
    tokio::spawn(async move {
        loop {
            if ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let topic = |d: &str| format!("{prefix}/readings/{d}");
    let accepted = || st.0.sensor.sensing.lock().unwrap().accepted;
    // Until the bridge has subscribed, publish a harmless reading now and then.
    for _ in 0..100 {
        client
            .publish(
                topic("WL-003"),
                QoS::AtLeastOnce,
                false,
                r#"{"metric":"depth_cm","value":1}"#,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if accepted() > 0 {
            break;
        }
    }
    assert!(accepted() > 0, "the bridge received nothing from {url}");
    let before = accepted();
    // A reading, a batch of two, a malformed payload and an unknown device.
    client
        .publish(
            topic("WL-001"),
            QoS::AtLeastOnce,
            false,
            r#"{"metric":"depth_cm","value":20}"#,
        )
        .await
        .unwrap();
    client
        .publish(
            topic("MH-001"),
            QoS::AtLeastOnce,
            false,
            r#"[{"metric":"tilt_deg","value":0.5},{"metric":"tilt_deg","value":0.7}]"#,
        )
        .await
        .unwrap();
    client
        .publish(topic("WL-001"), QoS::AtLeastOnce, false, "水位很高")
        .await
        .unwrap();
    client
        .publish(
            topic("XX-404"),
            QoS::AtLeastOnce,
            false,
            r#"{"metric":"depth_cm","value":1}"#,
        )
        .await
        .unwrap();
    until(
        || {
            let s = st.0.sensor.sensing.lock().unwrap();
            s.accepted >= before + 3 && s.refused.malformed >= 1 && s.refused.unknown_device >= 1
        },
        "the readings, the malformed payload and the unknown device",
    )
    .await;
    // Still high after the rule's two minutes: the alarm fires into a case.
    t.clock.advance(3 * MINUTE);
    client
        .publish(
            topic("WL-001"),
            QoS::AtLeastOnce,
            false,
            r#"{"metric":"depth_cm","value":22}"#,
        )
        .await
        .unwrap();
    until(
        || st.0.sensor.sensing.lock().unwrap().firing() == 1,
        "the alarm",
    )
    .await;
    let admin = {
        t.seed().await;
        t.login("admin").await
    };
    let (_, v) = t
        .get("/api/v1/cases?category=waterlogging", Some(&admin))
        .await;
    assert_eq!(v["cases"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["cases"][0]["channel"], "sensor");
    stop.store(true, Ordering::SeqCst);
    bridge.await.unwrap().unwrap();
}

#[test]
fn broker_urls_are_checked() {
    use cityos_server::intake::sensor::mqtt::parse_url;
    assert_eq!(
        parse_url("mqtt://127.0.0.1:1883").unwrap(),
        ("127.0.0.1".into(), 1883)
    );
    assert_eq!(parse_url("mqtt://broker").unwrap(), ("broker".into(), 1883));
    assert!(parse_url("http://broker").unwrap_err().contains("mqtt://"));
    assert!(parse_url("mqtt://broker:abc")
        .unwrap_err()
        .contains("not a number"));
    assert!(parse_url("mqtt://:1883").unwrap_err().contains("no host"));
}
