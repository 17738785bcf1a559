//! `cityos bench scenarios`: the sensing hot path with the seven scenario packs judging
//! every reading of their kinds, against the same path with no pack running, in the same
//! run, on the same bytes. The fleet holds every kind the packs watch (lifts, gas
//! detectors, head counts in the fences, gauges, manhole covers, flats' water and
//! electricity meter pairs); the packs join 100,000 dataset rows (flats, lone-elder
//! households, lifts, residence registrations).

use cityos_core::sensing::Device;
use cityos_core::time::format_rfc3339;
use cityos_engine::config::{Config, Sensing};
use cityos_server::http::auth::TokenKey;
use cityos_server::intake::sensor::apply;
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, ManualClock};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 2000;

/// The metrics a kind sends, with a plausible value for reading `x` (mostly quiet, now and
/// then the patterns the packs look for).
fn readings_of(kind: &str, x: u64) -> Vec<(&'static str, f64)> {
    let f = (x % 1000) as f64 / 1000.0;
    match kind {
        "water_meter" => vec![("flow_m3", f * 0.05)],
        "electricity_meter" => vec![("kwh", f * 2.0)],
        "lift_controller" => {
            let stuck = x.is_multiple_of(97);
            vec![
                ("between_floors", if stuck { 1.0 } else { 0.0 }),
                ("running", if stuck { 0.0 } else { 1.0 }),
                ("door_open", 0.0),
            ]
        }
        "gas_lel" => vec![(
            "lel_pct",
            if x.is_multiple_of(211) { 12.0 } else { f * 3.0 },
        )],
        "head_count" => vec![("people", 200.0 + f * 600.0), ("density_m2", f * 2.7)],
        "water_level" => vec![("depth_cm", f * 18.0)],
        "manhole_tilt" => vec![("tilt_deg", f * 11.0)],
        "rain_gauge" => vec![("rain_mm", f * 20.0)],
        _ => vec![("obscuration_pct", f)],
    }
}

pub fn scenarios(readings: usize, rows: usize, json: bool) -> Result<(), String> {
    let base = Config::xuhui();
    let kinds = [
        "lift_controller",
        "gas_lel",
        "head_count",
        "water_level",
        "manhole_tilt",
        "rain_gauge",
    ];
    let templates: Vec<&Device> = base
        .sensing
        .devices
        .iter()
        .filter(|d| kinds.contains(&d.kind.as_str()))
        .collect();
    if templates.is_empty() {
        return Err("the demo has no devices of the packs' kinds".into());
    }
    // 20,000 devices: half of them flats' meter pairs (a water and an electricity meter at
    // one position), half the other kinds, each at its template's place nudged apart.
    let devices = 20_000usize;
    let flat_pos: Vec<(f64, f64)> = base
        .sensing
        .devices
        .iter()
        .filter(|d| d.kind == "water_meter")
        .map(|d| (d.lon, d.lat))
        .collect();
    let mut fleet = Vec::with_capacity(devices);
    for i in 0..devices / 4 {
        let (lon, lat) = flat_pos[i % flat_pos.len()];
        let nudge = (i / flat_pos.len()) as f64 * 1e-6;
        for (p, kind) in [("W", "water_meter"), ("E", "electricity_meter")] {
            fleet.push(Device {
                id: format!("{p}{i:06}"),
                kind: kind.into(),
                lon: lon + nudge,
                lat: lat + nudge,
                owner: None,
                tags: Vec::new(),
            });
        }
    }
    for i in 0..devices / 2 {
        let t = templates[i % templates.len()];
        let nudge = (i / templates.len()) as f64 * 1e-6;
        fleet.push(Device {
            id: format!("K{i:06}"),
            kind: t.kind.clone(),
            lon: t.lon + nudge,
            lat: t.lat + nudge,
            owner: t.owner.clone(),
            tags: t.tags.clone(),
        });
    }
    let mut cfg = base.clone();
    cfg.sensing = Arc::new(Sensing {
        devices: fleet,
        rules: base.sensing.rules.clone(),
        payloads: base.sensing.payloads.clone(),
    });

    // The datasets: a flat per water meter, lone-elder households on a fifth of the water
    // meters, every lift registered, the rest residence registrations.
    let flats = devices / 4;
    let mut data: Vec<(&str, Vec<Map<String, Value>>)> = Vec::new();
    let row = |pairs: &[(&str, String)]| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.clone())))
            .collect()
    };
    data.push((
        "flats",
        (0..flats)
            .map(|i| {
                row(&[
                    ("flat", format!("F{i:06}")),
                    ("address", format!("测试路 {} 弄 {} 号", i / 100, i % 100)),
                    ("meter", format!("W{i:06}")),
                    ("registered_occupants", "2".into()),
                    ("expected_water_m3_day", "0.4".into()),
                    ("expected_kwh_day", "12".into()),
                ])
            })
            .collect(),
    ));
    data.push((
        "lone_elder_households",
        (0..flats / 5)
            .map(|i| {
                row(&[
                    ("household", format!("H{i:06}")),
                    ("address", format!("测试路 {} 弄 {} 号", i / 100, i % 100)),
                    ("community", String::new()),
                    ("meter", format!("W{:06}", i * 5)),
                    ("elder_alone", "1".into()),
                ])
            })
            .collect(),
    ));
    let lifts: Vec<String> = cfg
        .sensing
        .devices
        .iter()
        .filter(|d| d.kind == "lift_controller")
        .map(|d| d.id.clone())
        .collect();
    data.push((
        "lifts",
        lifts
            .iter()
            .map(|id| {
                row(&[
                    ("device", id.clone()),
                    ("building", "测试楼".into()),
                    ("maintainer", "维保公司".into()),
                    ("property_manager", "物业".into()),
                ])
            })
            .collect(),
    ));
    let so_far: usize = data.iter().map(|(_, r)| r.len()).sum();
    data.push((
        "residence_registrations",
        (0..rows.saturating_sub(so_far))
            .map(|i| {
                row(&[
                    (
                        "address",
                        format!("测试路 {} 弄 {} 号", (i % flats) / 100, i % 100),
                    ),
                    ("person", format!("P{i:07}")),
                    ("registered_on", format!("2026-0{}-15", 1 + i % 9)),
                ])
            })
            .collect(),
    ));
    let total_rows: usize = data.iter().map(|(_, r)| r.len()).sum();

    // The readings: every device in turn, 10 s apart per round, until `readings` lines.
    let t0 = cityos_core::time::local(cityos_core::time::Date::new(2026, 11, 26).unwrap(), 10, 0);
    let mut bytes = Vec::with_capacity(readings * 96);
    let mut n = 0usize;
    let mut x = 0x9e37_79b9_u64;
    let mut round = 0i64;
    'outer: loop {
        let at = format_rfc3339(t0 + round * 10_000);
        for d in cfg.sensing.devices.iter() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for (m, v) in readings_of(&d.kind, x) {
                use std::io::Write;
                let _ = writeln!(
                    bytes,
                    r#"{{"device":"{}","metric":"{m}","value":{v},"at":"{at}"}}"#,
                    d.id
                );
                n += 1;
                if n == readings {
                    break 'outer;
                }
            }
        }
        round += 1;
    }
    let batches = super::line_batches(&bytes, BATCH);
    let now = t0 + (round + 1) * 10_000;

    // One run: a fresh service with these packs, the datasets imported, then the readings.
    let run = |packs: Vec<cityos_server::scenarios::Source>| -> Result<(f64, f64, usize), String> {
        let clock = Arc::new(ManualClock::new(now));
        let dir = std::env::temp_dir().join(format!(
            "cityos-bench-scenarios-{}-{}",
            std::process::id(),
            packs.len()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let svc = Service::start_with(
            cfg.clone(),
            &Database::Sqlite(dir.clone()),
            dyn_clock,
            TokenKey::random(),
            1,
            packs,
        )
        .map_err(|e| e.to_string())?;
        let st = svc.state.clone();
        let t = Instant::now();
        for (name, rows) in &data {
            cityos_server::scenarios::runtime::dataset_imported(&st, name, rows, now);
        }
        let import_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut accepted = 0u64;
        for b in &batches {
            accepted += apply(&st, b, now).accepted;
        }
        let secs = t.elapsed().as_secs_f64();
        if accepted as usize != n {
            return Err(format!("only {accepted} of {n} readings were accepted"));
        }
        let queued = st.0.scenarios.live.queued();
        svc.stop();
        let _ = std::fs::remove_dir_all(&dir);
        Ok((n as f64 / secs, import_s, queued))
    };
    // Alternating, three of each on fresh services; the best of each counts (the machine's
    // noise only ever slows a run down).
    let packs = cityos_server::scenarios::embedded(&cfg);
    let count = packs.len();
    let (mut without, mut with, mut import_s, mut hits) = (0f64, 0f64, 0f64, 0usize);
    for _ in 0..3 {
        without = without.max(run(Vec::new())?.0);
        let (w, i, h) = run(packs.clone())?;
        if w > with {
            (with, import_s, hits) = (w, i, h);
        }
    }
    let ratio = with / without;
    if !json {
        println!(
            "scenarios: {n} readings from {} devices in batches of {BATCH}; {total_rows} dataset rows",
            cfg.sensing.devices.len()
        );
        println!("  with the {count} packs  {with:>12.0} readings/s  ({hits} hits and stand-downs judged; best of 3, alternating)");
        println!("  without packs    {without:>12.0} readings/s");
        println!("  ratio            {ratio:.2}");
        println!("  the packs indexed the {total_rows} rows in {import_s:.2} s");
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "scenarios",
            "readings_per_s": with.round(),
            "without_packs_per_s": without.round(),
            "ratio": (ratio * 1000.0).round() / 1000.0,
        })
    );
    Ok(())
}
