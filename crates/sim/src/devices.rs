//! The demo's devices and feeds, driving the running service from outside it: the
//! devices (readings over MQTT or straight into the sensor room; what they say is
//! [`crate::scenes::Script`]'s), the water meters' backfilled history, the scenario
//! packs' datasets, and the external feeds of the vital signs.

use cityos_core::indicators::Source;
use cityos_core::time::format_rfc3339;
use cityos_server::http::error::ApiError;
use cityos_server::intake::sensor::ingest;
use cityos_server::AppState;
use serde_json::Value;

/// The demo's devices: every device reports every `every` what the scenario script
/// says — normal values, and every 10 minutes each pack's pattern and its near miss (a
/// lift trapped between floors, gas at 12 %LEL, an underpass flooding, a tilted cover, a
/// crowded station forecourt…), so that alarms and scenario hits fire, become cases and
/// clear. Runs until `stop`.
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
    let payloads = st.0.cfg.sensing.payloads.clone();
    let script = crate::scenes::Script::new(&devices, &st.0.cfg.indicators);
    let start = st.now();
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let mut messages = Vec::new();
        let now = st.now();
        for r in script.frame(now - start, &mut rng) {
            let d = &devices[r.device];
            let (topic, payload) = shaped(d, r.device, r.metric, r.value, now, &payloads);
            if let Some(c) = &publisher {
                if c.publish(
                    format!("cityos/{topic}"),
                    rumqttc::QoS::AtMostOnce,
                    false,
                    payload,
                )
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
            if let Some(m) = cityos_server::intake::sensor::mqtt::message_of(
                &format!("cityos/{topic}"),
                "cityos",
                payload.into(),
            ) {
                messages.push(m);
            }
        }
        if messages.is_empty() {
        } else if let Err(e) = cityos_server::intake::sensor::ingest_input(
            &st,
            cityos_server::intake::sensor::Input::Messages(messages),
            None,
        )
        .await
        {
            cityos_server::http::log::event("sensing_demo_failed", &[("error", &e.detail)]);
        }
        tokio::time::sleep(every).await;
    }
}

/// What a demo device says, in the shape it speaks (issue 22), as (topic under the
/// prefix, payload): a kind with a declared shape speaks it on its own topic (the gas
/// detectors: telemetry); the water-level gauges and smoke detectors take turns by index —
/// cityos's own JSON, SenML, the telemetry shape, and their vendor's shape through the
/// kind's mapping — so that every shape reaches the same alarms and vital signs.
pub fn shaped(
    d: &cityos_core::sensing::Device,
    index: usize,
    metric: &str,
    value: f64,
    now: cityos_core::time::Millis,
    payloads: &cityos_core::payload::Payloads,
) -> (String, String) {
    use cityos_core::payload::Shape;
    let id = &d.id;
    let own = || {
        (
            format!("readings/{id}"),
            format!("{{\"metric\":\"{metric}\",\"value\":{value}}}"),
        )
    };
    let senml = || {
        let unit = payloads
            .units
            .get(metric)
            .map(|u| format!(",\"u\":\"{u}\""))
            .unwrap_or_default();
        (
            format!("senml/{id}"),
            format!(
                "[{{\"bn\":\"urn:dev:demo:{id}:\",\"bt\":{}.{:03},\"n\":\"{metric}\"{unit},\"v\":{value}}}]",
                now / 1000,
                now % 1000
            ),
        )
    };
    let telemetry = |topic: String| {
        (
            topic,
            format!("{{\"ts\":{now},\"values\":{{\"{metric}\":{value}}}}}"),
        )
    };
    match payloads.shape_of(&d.kind) {
        Shape::Telemetry => return telemetry(format!("readings/{id}")),
        Shape::Senml => return (format!("readings/{id}"), senml().1),
        Shape::Native | Shape::Mapped => {}
    }
    match (d.kind.as_str(), index % 4) {
        ("water_level" | "smoke", 1) => senml(),
        ("water_level" | "smoke", 2) => telemetry(format!("telemetry/{id}")),
        ("water_level", 3) => (
            "mapped/water_level".into(),
            format!("{{\"dev\":\"{id}\",\"ts\":{},\"val\":{value}}}", now / 1000),
        ),
        ("smoke", 3) => (
            "mapped/smoke".into(),
            format!(
                "{{\"sn\":\"{id}\",\"time\":\"{}\",\"data\":{{\"smoke_density\":{value}}}}}",
                &format_rfc3339(now)[..19]
            ),
        ),
        _ => own(),
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
                .filter(|d| d.kind == "water_meter" && !d.tags.iter().any(|t| t == "flat"))
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

/// The scenario packs' demo data, through the data end as any import: the flats' meters'
/// last 14 days (one reading a day, so the group-renting pack's 7-day averages are
/// covered), then the datasets — the lift register, the flats and the residence
/// registrations as of today. Answers the rows imported per dataset.
pub async fn load_scenario_data(st: &AppState, seed: u64) -> Result<Value, ApiError> {
    use cityos_server::intake::data::store_dataset;
    let bad = |m: String| ApiError::internal(m);
    let flats = crate::scenes::flats(cityos_engine::demo::FLATS_CSV).map_err(bad)?;
    let now = st.now();
    let mut lines = String::new();
    for (device, metric, value, at) in crate::scenes::flat_history(&flats, now, 14, seed) {
        lines.push_str(&format!(
            "{{\"device\":\"{device}\",\"metric\":\"{metric}\",\"value\":{value},\"at\":\"{}\"}}\n",
            format_rfc3339(at)
        ));
    }
    ingest(st, lines.into(), None).await?;
    let today = cityos_core::time::local_date(now);
    let registrations = crate::scenes::registrations_csv(&flats, today, seed);
    let mut rows = serde_json::Map::new();
    for (name, owner, sensitivity, csv) in [
        (
            "lifts",
            "dist-special-equipment",
            "internal",
            cityos_engine::demo::LIFTS_CSV,
        ),
        (
            "flats",
            "dist-housing",
            "sensitive",
            cityos_engine::demo::FLATS_CSV,
        ),
        (
            "residence_registrations",
            "dist-police",
            "sensitive",
            registrations.as_str(),
        ),
    ] {
        let v = store_dataset(st, name, owner, sensitivity, csv.as_bytes(), false).await?;
        rows.insert(name.into(), v["rows"].clone());
    }
    Ok(Value::Object(rows))
}

/// The demo's external feeds: every external indicator gets a plausible district value
/// every `every`; and in turn, every 15 minutes, one of a few indicators lives through an
/// episode ([`crate::scenes::feed_heat`]) — it climbs past its yellow and orange lines,
/// stays up for several minutes and comes back down — so that alerts fire, become cases,
/// publish CAP warnings, and resolve. The crowd feeds are what the fences' head counts add
/// up to, the active lift entrapments the lifts the script traps; rainfall rises with the
/// river.
pub async fn simulate_feeds(
    st: AppState,
    seed: u64,
    every: std::time::Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let start = st.now();
    let mut rng = cityos_core::rng::Rng::new(seed ^ 0x5ee1);
    let inds = st.0.cfg.indicators.clone();
    let script = crate::scenes::Script::new(&st.0.cfg.sensing.devices, &inds);
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let now = st.now();
        let elapsed = now - start;
        {
            let mut v = st.0.vitals.state.lock().expect("vitals lock");
            for (i, ind) in inds.iter().enumerate() {
                // Rooms feed their own external indicators (data quality, the meal
                // service, the life circle): the simulator leaves them alone.
                if ind.source != Source::External || fed_by_a_room(&ind.code) {
                    continue;
                }
                let noise = rng.range_f64(0.95, 1.05);
                let (calm, high) = crate::scenes::calm_high(ind);
                let heat = crate::scenes::feed_heat(&ind.code, elapsed);
                // A crowd fence's feed is what its head counts add up to.
                let value = if let Some(people) = script.crowd(&ind.code, elapsed) {
                    people
                } else if ind.code == "lift_entrapments_active" {
                    script.lifts_trapped(elapsed) as f64
                } else if heat > 0.0 {
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

/// External indicators a room of the service computes and feeds itself through the
/// `indicator_value` port (the data room's data quality, the meal service, the life
/// circle) — the simulator's external feeds never overwrite them.
pub fn fed_by_a_room(code: &str) -> bool {
    code == "data_feeds_unhealthy" || code.starts_with("meal_") || code.starts_with("life_circle_")
}
