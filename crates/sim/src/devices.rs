//! The demo's devices and feeds, driving the running service from outside it: the
//! devices (readings over MQTT or straight into the sensor room), the water meters'
//! backfilled history, and the external feeds of the vital signs.

use cityos_core::indicators::Source;
use cityos_core::time::{format_rfc3339, Millis, MINUTE};
use cityos_server::http::error::ApiError;
use cityos_server::intake::sensor::ingest;
use cityos_server::AppState;
use serde_json::Value;

/// The demo's devices: every gauge reports a normal value; now and then one water-level
/// gauge floods for a few minutes, or a manhole cover tilts, so that alarms fire, become
/// cases and clear. Runs until `stop`.
pub async fn simulate_devices(
    st: AppState,
    seed: u64,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    mqtt: Option<String>,
) {
    // Over MQTT when a broker is given (the bridge takes them in), else the embedded path.
    let publisher = match mqtt
        .as_deref()
        .map(cityos_server::intake::sensor::mqtt::parse_url)
    {
        Some(Ok((host, port))) => {
            let opts = rumqttc::MqttOptions::new(
                format!("cityos-demo-devices-{}", std::process::id()),
                host,
                port,
            );
            let (client, mut events) = rumqttc::AsyncClient::new(opts, 1000);
            tokio::spawn(async move {
                loop {
                    if events.poll().await.is_err() {
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
            });
            Some(client)
        }
        _ => None,
    };
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0x5e45);
    let devices = st.0.cfg.sensing.devices.clone();
    // (device index, rounds left) of the incident under way.
    let mut incident: Option<(usize, u32)> = None;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        if incident.is_none() && rng.chance(0.2) {
            let candidates: Vec<usize> = (0..devices.len())
                .filter(|&i| matches!(devices[i].kind.as_str(), "water_level" | "manhole_tilt"))
                .collect();
            if !candidates.is_empty() {
                let i = candidates[rng.below(candidates.len() as u64) as usize];
                incident = Some((i, 12 + rng.below(12) as u32));
            }
        }
        let mut lines = String::new();
        for (i, d) in devices.iter().enumerate() {
            let hot = incident.is_some_and(|(x, _)| x == i);
            let (metric, value) = match d.kind.as_str() {
                "water_level" if hot => ("depth_cm", rng.range_f64(18.0, 40.0)),
                "water_level" => ("depth_cm", rng.range_f64(0.0, 4.0)),
                "manhole_tilt" if hot => ("tilt_deg", rng.range_f64(12.0, 30.0)),
                "manhole_tilt" => ("tilt_deg", rng.range_f64(0.0, 1.5)),
                "smoke" => ("obscuration_pct", rng.range_f64(0.0, 1.0)),
                // One elder's tap stays shut: after 12 hours the data end's rule asks the
                // community to visit.
                "water_meter" if d.id == "WM-007" => ("flow_m3", 0.0),
                "water_meter" => ("flow_m3", rng.range_f64(0.0, 0.05)),
                _ => continue,
            };
            let value = (value * 100.0).round() / 100.0;
            if let Some(c) = &publisher {
                let payload = format!("{{\"metric\":\"{metric}\",\"value\":{value}}}");
                let topic = format!("cityos/readings/{}", d.id);
                if c.publish(topic, rumqttc::QoS::AtMostOnce, false, payload)
                    .await
                    .is_err()
                {
                    cityos_server::http::log::event(
                        "sensing_demo_publish_failed",
                        &[("device", &d.id)],
                    );
                }
                continue;
            }
            lines.push_str(&format!(
                "{{\"device\":\"{}\",\"metric\":\"{metric}\",\"value\":{value}}}\n",
                d.id
            ));
        }
        if let Some((i, left)) = incident {
            incident = (left > 1).then_some((i, left - 1));
        }
        if lines.is_empty() {
        } else if let Err(e) = ingest(&st, lines.into(), None).await {
            cityos_server::http::log::event("sensing_demo_failed", &[("error", &e.detail)]);
        }
        tokio::time::sleep(every).await;
    }
}

/// The demo's water meters' last `hours` of readings (hourly), so that the data end's
/// 12-hour rule has history to judge at once; WM-007's elder used no water.
pub async fn backfill_meters(st: &AppState, hours: i64, seed: u64) -> Result<Value, ApiError> {
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0xa7e7);
    let now = st.now();
    let mut lines = String::new();
    for k in (1..=hours).rev() {
        let at = format_rfc3339(now - k * cityos_core::time::HOUR);
        for d in
            st.0.cfg
                .sensing
                .devices
                .iter()
                .filter(|d| d.kind == "water_meter")
        {
            let v = if d.id == "WM-007" {
                0.0
            } else {
                (rng.range_f64(0.01, 0.08) * 1000.0).round() / 1000.0
            };
            lines.push_str(&format!(
                "{{\"device\":\"{}\",\"metric\":\"flow_m3\",\"value\":{v},\"at\":\"{at}\"}}\n",
                d.id
            ));
        }
    }
    ingest(st, lines.into(), None).await
}

/// The demo's external feeds: every external indicator gets a plausible district value
/// every `every`; and in turn, every 15 minutes, one of a few indicators lives through an
/// episode — it climbs past its yellow and orange lines, stays up for several minutes and
/// comes back down — so that alerts fire, become cases, publish CAP warnings, and resolve.
pub async fn simulate_feeds(
    st: AppState,
    seed: u64,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    const EPISODES: [&str; 4] = [
        "crowd_wukang",
        "river_water_level",
        "power_outage_households",
        "crowd_xujiahui",
    ];
    const CYCLE: Millis = 15 * MINUTE;
    let start = st.now();
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0x5ee1);
    let inds = st.0.cfg.indicators.clone();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let now = st.now();
        let elapsed = now - start;
        let episode = EPISODES[((elapsed / CYCLE) as usize) % EPISODES.len()];
        // 0–1 min calm, 1–3 climbing, 3–10 high, 10–12 falling, then calm.
        let m = (elapsed % CYCLE) as f64 / MINUTE as f64;
        let heat = if m < 1.0 {
            0.0
        } else if m < 3.0 {
            (m - 1.0) / 2.0
        } else if m < 10.0 {
            1.0
        } else if m < 12.0 {
            (12.0 - m) / 2.0
        } else {
            0.0
        };
        {
            let mut v = st.0.vitals.state.lock().expect("vitals lock");
            for (i, ind) in inds.iter().enumerate() {
                if ind.source != Source::External {
                    continue;
                }
                let noise = rng.range_f64(0.95, 1.05);
                let (calm, high) = match ind.thresholds {
                    Some(t) => {
                        let calm = match t.direction {
                            cityos_core::indicators::Direction::Up => t.at[0] * 0.6,
                            cityos_core::indicators::Direction::Down => t.at[0] * 1.4,
                        };
                        (calm, (t.at[2] + t.at[3]) / 2.0)
                    }
                    None => (100.0, 100.0),
                };
                let value = if ind.code == episode {
                    calm + (high - calm) * heat
                } else {
                    calm * noise
                };
                let value = (value * 100.0).round() / 100.0;
                v.set(ind, i, 0, value, now);
            }
        }
        tokio::time::sleep(every).await;
    }
}
