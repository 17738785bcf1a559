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

/// Issue 22: every payload shape through the broker — SenML on `{prefix}/senml/…` (a
/// gateway's pack for 1,000 devices among them), telemetry on `{prefix}/telemetry/{device}`
/// and on a gas detector's own topic (its kind's declared shape), a vendor's shape on
/// `{prefix}/mapped/{kind}` — reach the same alarm; a unit that disagrees, a mapping that
/// points at nothing and a message over the size limit are refused by reason and counted,
/// and nothing else in their messages is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_payload_shape_arrives_over_mqtt() {
    let Some(url) = broker() else { return };
    let mut t = TestApp::sqlite();
    // The gateway's 1,000 devices: in the seed this time (the registry API is tested
    // over HTTP).
    let mut cfg = crate::support::config();
    let mut devices = cityos_engine::demo::DEVICES_CSV.to_string();
    for i in 0..1000 {
        devices.push_str(&format!(
            "GW-{i:04},water_level,121.456286,31.192528,dist-drainage,underpass\n"
        ));
    }
    cfg = cfg
        .with_sensing(cityos_engine::demo::SENSING_TOML, &devices)
        .unwrap();
    t.reconfigure(cfg);
    let st = t.svc.as_ref().unwrap().state.clone();
    let prefix = format!("cityos-shapes-{}", std::process::id());
    let stop = Arc::new(AtomicBool::new(false));
    let bridge = tokio::spawn(cityos_server::intake::sensor::mqtt::run(
        st.clone(),
        url.clone(),
        prefix.clone(),
        stop.clone(),
    ));
    let (host, port) = cityos_server::intake::sensor::mqtt::parse_url(&url).unwrap();
    let mut opts = MqttOptions::new(format!("{prefix}-publisher"), host, port);
    opts.set_max_packet_size(8 << 20, 8 << 20); // the pack and the oversized message
    let (client, mut ev) = AsyncClient::new(opts, 100);
    tokio::spawn(async move {
        loop {
            if ev.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    let accepted = || st.0.sensor.sensing.lock().unwrap().accepted;
    for _ in 0..100 {
        client
            .publish(
                format!("{prefix}/readings/WL-009"),
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
    let now = st.now();
    let send = |topic: String, payload: String| {
        let c = client.clone();
        async move {
            c.publish(topic, QoS::AtLeastOnce, false, payload)
                .await
                .unwrap()
        }
    };
    let shapes = |value: f64, now: i64| {
        let s = now / 1000;
        vec![
            (
                format!("{prefix}/senml/gw-7"),
                format!(
                    r#"[{{"bn":"urn:dev:mac:WL-002:","bt":{s},"bu":"cm","n":"depth_cm","v":{value}}},{{"n":"depth_cm","u":"m","v":0.2}}]"#
                ),
            ),
            (
                format!("{prefix}/telemetry/WL-003"),
                format!(r#"[{{"ts":{now},"values":{{"depth_cm":{value}}}}}]"#),
            ),
            (
                format!("{prefix}/mapped/water_level"),
                format!(
                    r#"[{{"dev":"WL-004","ts":{s},"val":{value}}},{{"dev":"WL-004","val":1}}]"#
                ),
            ),
        ]
    };
    let before = accepted();
    for (topic, payload) in shapes(18.0, now) {
        send(topic, payload).await;
    }
    // A gas detector on its own topic speaks its kind's shape (telemetry).
    send(
        format!("{prefix}/readings/GAS-0001"),
        r#"{"lel_pct":2}"#.into(),
    )
    .await;
    // The gateway's pack: 1,000 devices in one message.
    let pack: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"bn":"GW-{i:04}:","n":"depth_cm","v":{}}}"#, i % 10))
        .collect();
    send(
        format!("{prefix}/senml/gateway"),
        format!("[{}]", pack.join(",")),
    )
    .await;
    // Over the size limit: refused whole and counted.
    let big = format!(
        "[{}]",
        vec![r#"{"n":"WL-005:depth_cm","v":1}"#; 12_000].join(",")
    );
    assert!(big.len() > cityos_server::intake::sensor::MESSAGE_LIMIT);
    send(format!("{prefix}/senml/big"), big).await;
    until(
        || {
            let s = st.0.sensor.sensing.lock().unwrap();
            s.accepted >= before + 4 + 1000
                && s.refused.unit_mismatch >= 1
                && s.refused.mapping_missing >= 1
                && s.refused.too_large >= 1
        },
        "every shape, the pack and the refusals",
    )
    .await;
    t.clock.advance(3 * MINUTE);
    for (topic, payload) in shapes(20.0, st.now()) {
        send(topic, payload).await;
    }
    // Firing once applied; raised once acted on (a moment later).
    until(
        || {
            let s = st.0.sensor.sensing.lock().unwrap();
            s.firing() == 3 && s.raised.iter().sum::<u64>() >= 3
        },
        "the three alarms",
    )
    .await;
    {
        let s = st.0.sensor.sensing.lock().unwrap();
        let k =
            st.0.cfg
                .sensing
                .rules
                .iter()
                .position(|r| r.code == "underpass_water_high")
                .unwrap();
        assert_eq!(s.raised[k], 3);
        assert_eq!(s.refused.unit_mismatch, 2);
        assert_eq!(s.refused.mapping_missing, 2);
        assert_eq!(s.refused.too_large, 1);
    }
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
