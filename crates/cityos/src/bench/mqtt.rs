//! `cityos bench mqtt`: readings published through a real broker. First a bare
//! subscriber drains N messages (what the broker and the client library can move on this
//! machine); then the same N readings go to cityos's bridge, which parses them, looks up
//! each device and applies its alarm rules. Both with QoS 1 from the same publisher code.
//! `--payload` picks the shape the devices speak (issue 22): native, SenML, telemetry or
//! a vendor shape read through a declared mapping — one reading per message in each.

use cityos_engine::config::Config;
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, SystemClock};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn client(url: &str, name: &str) -> Result<(AsyncClient, rumqttc::EventLoop), String> {
    let (host, port) = cityos_server::intake::sensor::mqtt::parse_url(url)?;
    let mut o = MqttOptions::new(format!("{name}-{}", std::process::id()), host, port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_inflight(1000);
    Ok(AsyncClient::new(o, 10_000))
}

/// The readings: every demo device in turn, a normal value of its metric, as
/// (topic under the prefix, payload) in the given shape.
fn payloads(cfg: &Config, n: usize, shape: &str) -> Vec<(String, String)> {
    let devices = &cfg.sensing.devices;
    let now = cityos_server::Clock::now(&SystemClock);
    (0..n)
        .map(|i| {
            let d = &devices[i % devices.len()];
            let (metric, value) = match d.kind.as_str() {
                "water_level" => ("depth_cm", (i % 5) as f64),
                "manhole_tilt" => ("tilt_deg", (i % 2) as f64 * 0.5),
                "smoke" => ("obscuration_pct", 0.2),
                "lift_controller" => ("running", (i % 2) as f64),
                "gas_lel" => ("lel_pct", 0.5),
                "electricity_meter" => ("kwh", 0.4),
                "head_count" => ("people", 120.0),
                "rain_gauge" => ("rain_mm", 0.0),
                _ => ("flow_m3", 0.02),
            };
            let id = &d.id;
            match shape {
                "senml" => (
                    format!("senml/{id}"),
                    format!("[{{\"bn\":\"{id}:\",\"n\":\"{metric}\",\"v\":{value}}}]"),
                ),
                "telemetry" => (
                    format!("telemetry/{id}"),
                    format!("{{\"ts\":{now},\"values\":{{\"{metric}\":{value}}}}}"),
                ),
                "mapped" => (
                    format!("mapped/{}", d.kind),
                    format!("{{\"sn\":\"{id}\",\"ts\":{now},\"data\":{{\"type\":\"{metric}\",\"val\":{value}}}}}"),
                ),
                _ => (
                    format!("readings/{id}"),
                    format!("{{\"metric\":\"{metric}\",\"value\":{value}}}"),
                ),
            }
        })
        .collect()
}

/// The configuration of the run: for `mapped`, every device kind reads the bench's
/// vendor shape `{"sn", "ts", "data": {"type", "val"}}` (JSON pointers, epoch ms).
fn config_for(shape: &str) -> Config {
    let mut cfg = Config::xuhui();
    // Every kind on its own topic speaks cityos's own shape here (the demo declares
    // telemetry for the gas detectors): each run measures one shape only.
    let base = cfg.sensing.clone();
    let mut payloads = base.payloads.clone();
    payloads.shapes.clear();
    cfg.sensing = Arc::new(cityos_engine::config::Sensing {
        devices: base.devices.clone(),
        rules: base.rules.clone(),
        payloads,
    });
    if shape == "mapped" {
        let base = cfg.sensing.clone();
        let mut payloads = base.payloads.clone();
        for d in &base.devices {
            payloads.mappings.insert(
                d.kind.clone(),
                cityos_core::payload::Mapping {
                    items: None,
                    device: "/sn".into(),
                    time: Some("/ts".into()),
                    time_format: cityos_core::payload::TimeFormat::EpochMs,
                    zone_minutes: 8 * 60,
                    metrics: Vec::new(),
                    metric_value: Some(("/data/type".into(), "/data/val".into())),
                },
            );
        }
        cfg.sensing = Arc::new(cityos_engine::config::Sensing {
            devices: base.devices.clone(),
            rules: base.rules.clone(),
            payloads,
        });
    }
    cfg
}

/// How far the publisher may run ahead of the consumer: below the broker's queue per
/// client (Mosquitto keeps 1,000 QoS 1 messages beyond those in flight, then drops).
const WINDOW: usize = 600;

type Progress = Arc<dyn Fn() -> usize + Send + Sync>;

/// Publishes every payload under `prefix` (QoS 1), at most [`WINDOW`] ahead of what the
/// consumer has taken (closed loop: the consumer's speed is what is measured).
async fn publish(
    url: &str,
    prefix: &str,
    items: &[(String, String)],
    progress: Progress,
) -> Result<(), String> {
    let (c, mut ev) = client(url, &format!("{prefix}-pub"))?;
    let drive = tokio::spawn(async move {
        loop {
            match ev.poll().await {
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    for (i, (topic, payload)) in items.iter().enumerate() {
        while i >= progress() + WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        c.publish(
            format!("{prefix}/{topic}"),
            QoS::AtLeastOnce,
            false,
            payload.clone(),
        )
        .await
        .map_err(|e| e.to_string())?;
    }
    // Let the last messages leave before the publisher goes.
    tokio::time::sleep(Duration::from_millis(500)).await;
    drive.abort();
    Ok(())
}

/// Waits until `done()` or until nothing has moved for 10 s; returns the time taken.
async fn wait(start: Instant, progress: impl Fn() -> usize, n: usize) -> Result<f64, String> {
    let mut last = (0, Instant::now());
    loop {
        let p = progress();
        if p >= n {
            return Ok(start.elapsed().as_secs_f64());
        }
        if p != last.0 {
            last = (p, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(10) {
            return Err(format!("only {p} of {n} readings arrived"));
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

pub fn mqtt(n: usize, url: &str, json: bool, shape: &str) -> Result<(), String> {
    let cfg = config_for(shape);
    let items = payloads(&cfg, n, shape);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    // 1. A bare subscriber (run again after cityos; the better run counts, so that
    //    warm-up does not favour cityos).
    let bare_run = |round: u32| -> Result<f64, String> {
        rt.block_on(async {
            let prefix = format!("bench-bare-{}-{round}", std::process::id());
            let (sub, mut ev) = client(url, &format!("{prefix}-sub"))?;
            let got = Arc::new(AtomicUsize::new(0));
            let g = got.clone();
            let ready = Arc::new(AtomicBool::new(false));
            let r = ready.clone();
            let topic = format!("{prefix}/+/+");
            let drain = tokio::spawn(async move {
                loop {
                    match ev.poll().await {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            let _ = sub.subscribe(topic.clone(), QoS::AtLeastOnce).await;
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => r.store(true, Ordering::SeqCst),
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            // The least a consumer does: look at the payload.
                            std::hint::black_box(p.payload.len());
                            g.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            });
            while !ready.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let start = Instant::now();
            let url2 = url.to_string();
            let items2 = items.clone();
            let p2 = prefix.clone();
            let g2 = got.clone();
            let progress: Progress = Arc::new(move || g2.load(Ordering::Relaxed));
            let pubt = tokio::spawn(async move { publish(&url2, &p2, &items2, progress).await });
            let secs = wait(start, || got.load(Ordering::Relaxed), n).await;
            drain.abort();
            pubt.await.map_err(|e| e.to_string())??;
            secs
        })
    };
    let bare_first = bare_run(1)?;
    // 2. cityos's bridge.
    let dir = std::env::temp_dir().join(format!("cityos-bench-mqtt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let svc = Service::start(
        cfg.clone(),
        &Database::Sqlite(dir.clone()),
        clock,
        TokenKey::random(),
        2,
    )
    .map_err(|e| e.to_string())?;
    let st = svc.state.clone();
    let city = rt.block_on(async {
        let prefix = format!("bench-city-{}", std::process::id());
        let stop = Arc::new(AtomicBool::new(false));
        let bridge = tokio::spawn(cityos_server::intake::sensor::mqtt::run(
            st.clone(),
            url.to_string(),
            prefix.clone(),
            stop.clone(),
        ));
        let st3 = st.clone();
        let taken = Arc::new(move || {
            let s = st3.0.sensor.sensing.lock().expect("sensing");
            (s.accepted + s.refused.total()) as usize
        });
        // Wait for the subscription: probe readings until one arrives.
        let probe = vec![(
            "readings/WL-001".to_string(),
            "{\"metric\":\"depth_cm\",\"value\":1}".to_string(),
        )];
        for _ in 0..100 {
            publish(url, &prefix, &probe, Arc::new(|| 0)).await?;
            if taken() > 0 {
                break;
            }
        }
        let before = taken();
        if before == 0 {
            return Err("the bridge received nothing".to_string());
        }
        let start = Instant::now();
        let url2 = url.to_string();
        let items2 = items.clone();
        let p2 = prefix.clone();
        let t2 = taken.clone();
        let progress: Progress = Arc::new(move || t2() - before);
        let pubt = tokio::spawn(async move { publish(&url2, &p2, &items2, progress).await });
        let secs = wait(start, || taken() - before, n).await;
        stop.store(true, Ordering::SeqCst);
        pubt.await.map_err(|e| e.to_string())??;
        let _ = bridge.await;
        let s = st.0.sensor.sensing.lock().expect("sensing");
        if s.refused.total() > 0 {
            return Err(format!("readings were refused: {:?}", s.refused));
        }
        secs
    })?;
    let bare = bare_first.min(bare_run(2)?);
    drop(rt);
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (bare_rate, city_rate) = (n as f64 / bare, n as f64 / city);
    println!("{n} readings through {url} (QoS 1, one publisher; payload {shape})");
    println!("bare subscriber drained them in {bare:.2} s (better of two runs, before and after cityos): {bare_rate:.0}/s");
    println!(
        "cityos (bridge → parse → device → alarm rules) took them in {city:.2} s: {city_rate:.0}/s"
    );
    println!("ratio {:.2}", city_rate / bare_rate);
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "mqtt", "payload": shape, "readings_per_s": city_rate.round(), "broker_drain_per_s": bare_rate.round(), "ratio": ((city_rate / bare_rate) * 1000.0).round() / 1000.0})
        );
    }
    Ok(())
}
