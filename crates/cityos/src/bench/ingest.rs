//! `cityos bench ingest`: NDJSON readings from a million simulated devices through the
//! sensing end's hot path — parse, device lookup, range checks, vital-sign windows and
//! indicators, alarm rules, the scenario packs that watch gauges and manhole covers —
//! against a bare `serde_json` parse of the same bytes into the
//! same borrowed struct, in the same run, on one thread each. Also the live state per
//! device.

use cityos_core::sensing::Device;
use cityos_core::time::{format_rfc3339, Millis};
use cityos_engine::config::{Config, Sensing};
use cityos_server::http::auth::TokenKey;
use cityos_server::intake::sensor::{apply, Reading};
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, ManualClock};
use std::sync::Arc;
use std::time::Instant;

/// Lines per batch, as an MQTT batch or a modest HTTP body.
const BATCH: usize = 2000;

fn rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// A device's registry entry as it lives in memory.
fn device_bytes(d: &Device) -> usize {
    std::mem::size_of::<Device>()
        + d.id.capacity()
        + d.kind.capacity()
        + d.owner.as_ref().map_or(0, |o| o.capacity())
        + d.tags.iter().map(|t| t.capacity() + 24).sum::<usize>()
}

pub fn ingest(devices: usize, rounds: usize, json: bool) -> Result<(), String> {
    let base = Config::xuhui();
    // The demo's gauges, covers and smoke detectors as templates (water meters keep hours
    // of flow for the data end and are not part of this stream; nor are the scenario
    // packs' lifts, gas detectors, meters and head counts, so the figure stays comparable).
    let templates: Vec<&Device> = base
        .sensing
        .devices
        .iter()
        .filter(|d| matches!(d.kind.as_str(), "water_level" | "manhole_tilt" | "smoke"))
        .collect();
    let rss0 = rss_bytes();
    let t_build = Instant::now();
    let fleet: Vec<Device> = (0..devices)
        .map(|i| {
            let t = templates[i % templates.len()];
            Device {
                id: format!("D{i:07}"),
                kind: t.kind.clone(),
                lon: t.lon,
                lat: t.lat,
                owner: t.owner.clone(),
                tags: t.tags.clone(),
            }
        })
        .collect();
    let registry: usize = fleet.iter().map(device_bytes).sum();
    let mut cfg = base.clone();
    cfg.sensing = Arc::new(Sensing {
        devices: fleet,
        rules: base.sensing.rules.clone(),
        payloads: base.sensing.payloads.clone(),
    });
    let t0 = cityos_core::time::local(cityos_core::time::Date::new(2026, 11, 26).unwrap(), 10, 0);
    let clock = Arc::new(ManualClock::new(t0 + (rounds as Millis + 1) * 10_000));
    let dir = std::env::temp_dir().join(format!("cityos-bench-ingest-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let svc = Service::start(
        cfg.clone(),
        &Database::Sqlite(dir.clone()),
        dyn_clock,
        TokenKey::random(),
        1,
    )
    .map_err(|e| e.to_string())?;
    let st = svc.state.clone();
    let rss1 = rss_bytes();
    let build_s = t_build.elapsed().as_secs_f64();

    // The stream: every device reports once per round (10 s apart), each with its time.
    let metric = |kind: &str| match kind {
        "water_level" => "depth_cm",
        "manhole_tilt" => "tilt_deg",
        "smoke" => "obscuration_pct",
        _ => "value",
    };
    let mut bytes = Vec::with_capacity(devices * rounds * 96);
    let mut x = 0x9e37_79b9_u64;
    for r in 0..rounds {
        let at = format_rfc3339(t0 + r as Millis * 10_000);
        for (i, d) in cfg.sensing.devices.iter().enumerate() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let v = (x % 400) as f64 / 100.0;
            use std::io::Write;
            let _ = writeln!(
                bytes,
                r#"{{"device":"D{i:07}","metric":"{}","value":{v},"at":"{at}"}}"#,
                metric(&d.kind)
            );
        }
    }
    let n = devices * rounds;
    // Batches on line boundaries.
    let batches = super::line_batches(&bytes, BATCH);

    // The bare parse of the same bytes into the same struct.
    let parse_only = {
        let t = Instant::now();
        let mut ok = 0usize;
        for b in &batches {
            for line in b.split(|c| *c == b'\n') {
                if line.is_empty() {
                    continue;
                }
                if let Ok(r) = serde_json::from_slice::<Reading>(line) {
                    std::hint::black_box(&r);
                    ok += 1;
                }
            }
        }
        assert_eq!(ok, n, "every line parses");
        n as f64 / t.elapsed().as_secs_f64()
    };

    // The whole path.
    let now = clock.now();
    let t = Instant::now();
    let mut accepted = 0u64;
    let mut alarms = 0usize;
    for b in &batches {
        let out = apply(&st, b, now);
        accepted += out.accepted;
        alarms += out.changes();
    }
    let secs = t.elapsed().as_secs_f64();
    if accepted as usize != n {
        return Err(format!("only {accepted} of {n} readings were accepted"));
    }
    let readings_per_s = n as f64 / secs;
    let ratio = readings_per_s / parse_only;

    let (sensing_bytes, vitals_bytes) = {
        let s = st.0.sensor.sensing.lock().expect("sensing lock");
        let v = st.0.vitals.state.lock().expect("vitals lock");
        (s.bytes_per_device(), v.bytes_per_device())
    };
    let scenario_bytes = st.0.scenarios.live.bytes_per_device();
    let bytes_per_device =
        sensing_bytes + vitals_bytes + scenario_bytes + registry as f64 / devices as f64;
    let rss_per_device = match (rss0, rss1) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / devices as f64),
        _ => None,
    };
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    if !json {
        println!("ingest: {n} readings from {devices} devices in batches of {BATCH} (set-up {build_s:.1} s)");
        println!(
            "  cityos  {readings_per_s:>12.0} readings/s  ({secs:.2} s; alarm changes {alarms})"
        );
        println!("  parse   {parse_only:>12.0} readings/s  (serde_json only)");
        println!("  ratio   {ratio:.2}");
        println!(
            "  live state per device: {bytes_per_device:.0} bytes (registry {:.0}, sensing {sensing_bytes:.0}, vital signs {vitals_bytes:.1}, scenario packs {scenario_bytes:.0}){}",
            registry as f64 / devices as f64,
            rss_per_device.map_or(String::new(), |r| format!("; process RSS grew {r:.0} bytes per device while the fleet and service were built"))
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "ingest",
            "readings_per_s": readings_per_s.round(),
            "parse_only_per_s": parse_only.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
            "bytes_per_device": bytes_per_device.round(),
        })
    );
    Ok(())
}
