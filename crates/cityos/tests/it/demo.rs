//! `cityos demo`: on the embedded default it simulates a day and resumes on the next
//! run; it serves over a real socket and stops gracefully on SIGINT.

use crate::support::{
    cityos, free_addr, http, interrupt, report_noise, spawn_serving, stderr, stdout, tmp,
};
use std::process::Stdio;

#[test]
fn demo_runs_on_the_embedded_default_and_resumes() {
    let dir = tmp("demo");
    let data = dir.join("data");
    let demo = |seed: &str| {
        cityos(&[
            "demo",
            "--no-serve",
            "--data",
            data.to_str().unwrap(),
            "--seed",
            seed,
        ])
    };
    let o = demo("3");
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("徐汇区"), "{out}");
    assert!(out.contains("13 sub-districts, 306 communities"), "{out}");
    assert!(out.contains("cases by state"), "{out}");
    assert!(data.join("cityos.db").exists());
    // A second run continues on the same store with the next days.
    let o = demo("4");
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn demo_serves_over_a_real_socket_and_stops_gracefully() {
    let dir = tmp("serve");
    let addr = free_addr();
    let (mut child, printed, lines) = spawn_serving(
        &[
            "demo",
            "--addr",
            &addr,
            "--data",
            dir.join("data").to_str().unwrap(),
            "--seed",
            "5",
        ],
        Stdio::inherit(),
    );
    assert!(
        printed.contains(&format!("listening on http://{addr}")),
        "{printed}"
    );
    assert!(printed.contains("zhang.district"), "{printed}");
    assert!(
        printed.contains("scenario packs: datasets lifts 60, flats 40, residence_registrations "),
        "{printed}"
    );
    let (s, b) = http(&addr, "GET", "/healthz", None, None);
    assert_eq!(s, 200, "{b}");
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(r#"{"username":"zhang.district","password":"cityos-demo"}"#),
    );
    assert_eq!(s, 200, "{b}");
    let token = serde_json::from_str::<serde_json::Value>(&b).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, b) = http(&addr, "GET", "/api/v1/stats", Some(&token), None);
    assert_eq!(s, 200, "{b}");
    let total = serde_json::from_str::<serde_json::Value>(&b).unwrap()["total"]
        .as_i64()
        .unwrap();
    assert!(total > 1000, "the simulated day is there: {total}");
    // The scenario packs' datasets were imported at start, next to the lone elders'.
    let (s, b) = http(&addr, "GET", "/api/v1/datasets", Some(&token), None);
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let rows = |name: &str| {
        v["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["rows"].as_i64().unwrap())
    };
    assert_eq!(rows("lone_elder_households"), Some(30), "{b}");
    assert_eq!(rows("lifts"), Some(60), "{b}");
    assert_eq!(rows("flats"), Some(40), "{b}");
    assert!(
        rows("residence_registrations").is_some_and(|n| n > 100),
        "{b}"
    );
    // The lift-fault rate is a vital sign with a value (cases per 100 lifts, 30 days).
    let (s, b) = http(
        &addr,
        "GET",
        "/api/v1/indicators?domain=safety",
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    let lift = v["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == "lift_fault_rate")
        .cloned()
        .unwrap();
    assert!(lift["value"].as_f64().is_some_and(|x| x >= 0.0), "{lift}");
    // Every reading of the demo's devices is taken: known devices, declared metrics.
    let (s, b) = http(&addr, "GET", "/metrics", None, None);
    assert_eq!(s, 200, "{b}");
    for reason in ["unknown_device", "undeclared_metric", "out_of_range"] {
        let line = format!("cityos_readings_refused_total{{reason=\"{reason}\"}} 0");
        assert!(b.lines().any(|l| l == line), "{line} in\n{b}");
    }
    // The live simulator adds reports within a few seconds.
    let mut grew = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let (_, b) = http(&addr, "GET", "/api/v1/stats", Some(&token), None);
        if serde_json::from_str::<serde_json::Value>(&b).unwrap()["total"]
            .as_i64()
            .unwrap()
            > total
        {
            grew = true;
            break;
        }
    }
    assert!(grew, "the live simulator keeps reports arriving");
    let (s, b) = report_noise(&addr);
    assert_eq!(s, 201, "{b}");
    // A machine token issued from the same data directory reports on the sensor channel.
    let o = cityos(&[
        "token",
        "--name",
        "gateway-7",
        "--data",
        dir.join("data").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let machine = stdout(&o).trim().to_string();
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/reports",
        Some(&machine),
        Some(
            r#"{"category":"manhole_cover_tilt_alarm","lon":121.4454,"lat":31.2067,"text":"井盖倾斜报警"}"#,
        ),
    );
    assert_eq!(s, 201, "{b}");
    let v: serde_json::Value = serde_json::from_str(&b).unwrap();
    assert_eq!(v["case"]["channel"], "sensor");
    assert_eq!(v["case"]["state"], "dispatched");
    let o = cityos(&[
        "token",
        "--name",
        "x",
        "--role",
        "king",
        "--data",
        dir.join("data").to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && stderr(&o).contains("unknown role"),
        "{}",
        stderr(&o)
    );
    // Graceful stop on SIGINT.
    interrupt(&child);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "cityos stopped"), "{rest:?}");
    let _ = std::fs::remove_dir_all(dir);
}

/// The scenario packs' demo devices and datasets fit together: every lift controller has
/// its lifts row, a flat's two meters stand at exactly the same place (and no other
/// devices share one), the head counts lie inside their fences, the registrations and
/// meter history hold the group-renting patterns and their near misses.
#[test]
fn scenario_demo_devices_and_datasets_fit_together() {
    use cityos_engine::demo::{CATALOGUE_TOML, FLATS_CSV, LIFTS_CSV, SCENARIO_PACKS};
    use cityos_server::intake::data::parse_rows;
    use cityos_sim::scenes;
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    let cfg = cityos_engine::config::Config::xuhui();
    let devices = &cfg.sensing.devices;
    let by_id: HashMap<&str, &cityos_core::sensing::Device> =
        devices.iter().map(|d| (d.id.as_str(), d)).collect();
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for d in devices {
        *kinds.entry(d.kind.as_str()).or_default() += 1;
    }
    assert_eq!(kinds["lift_controller"], 60, "{kinds:?}");
    assert_eq!(kinds["gas_lel"], 40, "{kinds:?}");
    assert_eq!(kinds["electricity_meter"], 40, "{kinds:?}");
    assert_eq!(
        kinds["water_meter"], 70,
        "30 lone elders' + 40 flats': {kinds:?}"
    );
    assert_eq!(kinds["head_count"], 9, "{kinds:?}");
    assert_eq!(kinds["rain_gauge"], 8, "{kinds:?}");
    let catalogue = cityos_core::scenario::Catalogue::from_toml(CATALOGUE_TOML).unwrap();
    for k in kinds.keys() {
        assert!(
            catalogue.device_kinds.contains_key(*k),
            "{k} is in the catalogue"
        );
    }

    // Lifts: one row per lift controller, the catalogue's columns.
    let (cols, lifts, bad) = parse_rows(LIFTS_CSV.as_bytes(), false).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        cols,
        ["device", "building", "maintainer", "property_manager"]
    );
    assert_eq!(lifts.len(), 60);
    let listed: BTreeSet<&str> = lifts
        .iter()
        .map(|r| r["device"].as_str().unwrap())
        .collect();
    let controllers: BTreeSet<&str> = devices
        .iter()
        .filter(|d| d.kind == "lift_controller")
        .map(|d| d.id.as_str())
        .collect();
    assert_eq!(
        listed, controllers,
        "every lift controller has its lifts row, and only they"
    );

    // Flats: the water meter of the row and its electricity meter at the same place.
    let (cols, _, bad) = parse_rows(FLATS_CSV.as_bytes(), false).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(
        cols,
        [
            "flat",
            "address",
            "meter",
            "registered_occupants",
            "expected_water_m3_day",
            "expected_kwh_day"
        ]
    );
    let flats = scenes::flats(FLATS_CSV).unwrap();
    assert_eq!(flats.len(), 40);
    let mut paired = BTreeSet::new();
    for f in &flats {
        let w = by_id[f.meter.as_str()];
        let e = by_id[f.electricity_meter().as_str()];
        assert_eq!(
            (w.kind.as_str(), e.kind.as_str()),
            ("water_meter", "electricity_meter")
        );
        assert_eq!(
            (w.lon.to_bits(), w.lat.to_bits()),
            (e.lon.to_bits(), e.lat.to_bits()),
            "{}",
            f.flat
        );
        paired.insert(w.id.as_str());
        paired.insert(e.id.as_str());
        assert!(
            f.occupants >= 1.0 && f.water_m3_day > 0.0 && f.kwh_day > 0.0,
            "{f:?}"
        );
    }
    // A pack reads the metrics of the devices at the subject's place: devices sharing a
    // place never share a metric, and the scenario devices share a place only as a
    // flat's two meters.
    let mut places: HashMap<(u64, u64), Vec<&cityos_core::sensing::Device>> = HashMap::new();
    for d in devices {
        places
            .entry((d.lon.to_bits(), d.lat.to_bits()))
            .or_default()
            .push(d);
    }
    let scenario_kinds = [
        "lift_controller",
        "gas_lel",
        "electricity_meter",
        "head_count",
        "rain_gauge",
    ];
    for ds in places.values().filter(|v| v.len() > 1) {
        let ids: Vec<&str> = ds.iter().map(|d| d.id.as_str()).collect();
        let mut metrics = BTreeSet::new();
        for d in ds {
            for m in &catalogue.device_kinds[&d.kind] {
                assert!(metrics.insert(m.as_str()), "{ids:?} share a place and {m}");
            }
        }
        if ds
            .iter()
            .any(|d| scenario_kinds.contains(&d.kind.as_str()) || paired.contains(d.id.as_str()))
        {
            assert!(
                ids.len() == 2 && ids.iter().all(|i| paired.contains(i)),
                "{ids:?} share a place"
            );
        }
    }

    // Head counts inside the fence their tag names.
    let crowd = SCENARIO_PACKS
        .iter()
        .find(|(f, _)| *f == "crowd_fence.toml")
        .unwrap()
        .1;
    let pack = cityos_core::scenario::parse_pack(crowd).unwrap();
    let mut per_fence: BTreeMap<&str, usize> = BTreeMap::new();
    for d in devices.iter().filter(|d| d.kind == "head_count") {
        let fence = pack
            .fences
            .iter()
            .find(|f| d.tags.contains(&f.name))
            .unwrap();
        assert!(
            cityos_core::scenario::expr::point_in_ring((d.lon, d.lat), &fence.ring),
            "{} lies inside {}",
            d.id,
            fence.name
        );
        *per_fence.entry(fence.name.as_str()).or_default() += 1;
    }
    assert_eq!(
        per_fence.len(),
        3,
        "every fence has head counts: {per_fence:?}"
    );

    // Registrations: ≥ 12 distinct persons within 365 days at one address only; the near
    // miss has 11 (and older ones).
    let today = cityos_core::time::Date::new(2026, 11, 28).unwrap();
    let csv = scenes::registrations_csv(&flats, today, 7);
    assert_eq!(
        csv,
        scenes::registrations_csv(&flats, today, 7),
        "deterministic"
    );
    let (cols, regs, bad) = parse_rows(csv.as_bytes(), false).unwrap();
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(cols, ["address", "person", "registered_on"]);
    assert!(regs.len() > 100 && regs.len() < 400, "{}", regs.len());
    let mut within: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for r in &regs {
        let person = r["person"].as_str().unwrap();
        assert!(
            person.len() == 7
                && person.starts_with('P')
                && person[1..].chars().all(|c| c.is_ascii_digit()),
            "{person}"
        );
        let on = cityos_core::time::Date::parse(r["registered_on"].as_str().unwrap()).unwrap();
        assert!(on.days() <= today.days());
        if today.days() - on.days() <= 365 {
            within
                .entry(r["address"].as_str().unwrap())
                .or_default()
                .insert(person);
        }
    }
    let address = |flat: &str| {
        flats
            .iter()
            .find(|f| f.flat == flat)
            .unwrap()
            .address
            .as_str()
    };
    let many: Vec<&str> = within
        .iter()
        .filter(|(_, p)| p.len() >= 12)
        .map(|(a, _)| *a)
        .collect();
    assert_eq!(many, [address(scenes::MANY_REGISTERED)]);
    assert_eq!(within[address(scenes::MANY_REGISTERED)].len(), 14);
    assert_eq!(within[address(scenes::ELEVEN_REGISTERED)].len(), 11);

    // The meters' daily history: > 3× the expected water AND electricity over the last
    // 7 days only at the group-rented flats.
    let now = today.local_midnight() + 12 * cityos_core::time::HOUR;
    let history = scenes::flat_history(&flats, now, 14, 7);
    assert_eq!(history.len(), 14 * 40 * 2);
    let avg7 = |device: &str| {
        let v: Vec<f64> = history
            .iter()
            .filter(|(d, _, _, at)| d == device && *at >= now - 7 * cityos_core::time::DAY)
            .map(|(_, _, v, _)| *v)
            .collect();
        assert_eq!(v.len(), 7);
        v.iter().sum::<f64>() / 7.0
    };
    let mut over = Vec::new();
    for f in &flats {
        let water = avg7(&f.meter) > 3.0 * f.water_m3_day;
        let power = avg7(&f.electricity_meter()) > 3.0 * f.kwh_day;
        if f.flat == scenes::WATER_ONLY {
            assert!(water && !power, "the near miss uses water only");
        }
        if water && power {
            over.push(f.flat.as_str());
        }
    }
    assert_eq!(over, scenes::GROUP_RENTED);
}

/// The live devices' streams hold every pack's pattern and its near miss, each cycle,
/// deterministically by seed; every metric is one the catalogue declares for the kind.
#[test]
fn scenario_demo_streams_hold_every_pattern_and_its_near_miss() {
    use cityos_core::time::{Millis, MINUTE, SECOND};
    use cityos_sim::scenes::{Script, CYCLE, TICK};
    use std::collections::BTreeMap;
    let cfg = cityos_engine::config::Config::xuhui();
    let devices = &cfg.sensing.devices;
    let catalogue =
        cityos_core::scenario::Catalogue::from_toml(cityos_engine::demo::CATALOGUE_TOML).unwrap();
    let script = Script::new(devices, &cfg.indicators);
    let run = |seed: u64, span: Millis| {
        let mut rng = cityos_core::rng::Rng::new(seed);
        let mut series: BTreeMap<(usize, &'static str), Vec<(Millis, f64)>> = BTreeMap::new();
        let mut t = 0;
        while t < span {
            for r in script.frame(t, &mut rng) {
                series
                    .entry((r.device, r.metric))
                    .or_default()
                    .push((t, r.value));
            }
            t += TICK;
        }
        series
    };
    let series = run(11, 2 * CYCLE);
    assert_eq!(series, run(11, 2 * CYCLE), "deterministic by seed");
    for (d, m) in series.keys() {
        let kind = &devices[*d].kind;
        assert!(
            catalogue.device_kinds[kind].iter().any(|x| x == m),
            "{kind} declares {m}"
        );
    }
    // The longest time a predicate held over consecutive readings (None: never true).
    fn held(points: &[(Millis, bool)]) -> Option<Millis> {
        let (mut best, mut since) = (None, None);
        for &(t, ok) in points {
            match (ok, since) {
                (true, None) => since = Some(t),
                (false, _) => since = None,
                _ => {}
            }
            if let Some(s) = since {
                best = best.max(Some(t - s));
            }
        }
        best
    }
    let of = |kind: &str| -> Vec<usize> {
        (0..devices.len())
            .filter(|&i| devices[i].kind == kind)
            .collect()
    };
    let get = |d: usize, m: &str| series.get(&(d, m)).cloned().unwrap_or_default();
    // Several metrics of one device zipped by time.
    let zip = |d: usize, ms: &[&str], f: &dyn Fn(&[f64]) -> bool| -> Vec<(Millis, bool)> {
        let cols: Vec<Vec<(Millis, f64)>> = ms.iter().map(|m| get(d, m)).collect();
        (0..cols[0].len())
            .map(|i| {
                (
                    cols[0][i].0,
                    f(&cols.iter().map(|c| c[i].1).collect::<Vec<_>>()),
                )
            })
            .collect()
    };
    let min = MINUTE;

    // Lifts: [door_open, between_floors, alarm_button, running].
    let flags = ["door_open", "between_floors", "alarm_button", "running"];
    let (mut trapped, mut alarmed, mut door_open, mut short_stop, mut short_alarm) =
        (0, 0, 0, 0, 0);
    for d in of("lift_controller") {
        let between = held(&zip(d, &flags, &|v| {
            v[1] == 1.0 && v[3] == 0.0 && v[0] == 0.0
        }));
        let alarm = held(&zip(d, &flags, &|v| {
            v[2] == 1.0 && v[3] == 0.0 && v[0] == 0.0
        }));
        let at_floor_open = held(&zip(d, &flags, &|v| {
            v[1] == 0.0 && v[3] == 0.0 && v[0] == 1.0
        }));
        let hit = between >= Some(min) || alarm >= Some(min);
        trapped += usize::from(between >= Some(min));
        alarmed += usize::from(alarm >= Some(min));
        if !hit {
            door_open += usize::from(at_floor_open >= Some(2 * min));
            short_stop += usize::from(between.is_some());
            short_alarm += usize::from(alarm.is_some());
        }
    }
    assert_eq!(
        (trapped, alarmed),
        (2, 2),
        "one trapped car and one alarm per cycle"
    );
    // The lift_entrapments_active feed counts the lifts trapped at each round: those in
    // a stop (between floors or alarm held, door shut) that lasts a minute or more.
    let mut long_stops: Vec<(Millis, Millis)> = Vec::new();
    for d in of("lift_controller") {
        let stuck = zip(d, &flags, &|v| {
            v[3] == 0.0 && v[0] == 0.0 && (v[1] == 1.0 || v[2] == 1.0)
        });
        let mut since = None;
        for &(t, ok) in stuck.iter().chain([(2 * CYCLE, false)].iter()) {
            match (ok, since) {
                (true, None) => since = Some(t),
                (false, Some(s)) => {
                    if t - TICK - s >= min {
                        long_stops.push((s, t - TICK));
                    }
                    since = None;
                }
                _ => {}
            }
        }
    }
    let mut t = 0;
    while t < 2 * CYCLE {
        let now = long_stops
            .iter()
            .filter(|(a, b)| *a <= t && t <= *b)
            .count();
        assert_eq!(now, script.lifts_trapped(t), "at {t}");
        t += TICK;
    }
    assert!(
        door_open >= 2 && short_stop >= 2 && short_alarm >= 2,
        "near misses: {door_open} {short_stop} {short_alarm}"
    );

    // Gas: ≥ 25 at once, or ≥ 10 for a minute; near miss 9 %LEL held.
    let (mut sustained, mut spike, mut nine) = (0, 0, 0);
    for d in of("gas_lel") {
        let v = get(d, "lel_pct");
        let max = v.iter().map(|x| x.1).fold(0.0, f64::max);
        let ten = held(&v.iter().map(|&(t, x)| (t, x >= 10.0)).collect::<Vec<_>>());
        if max >= 25.0 {
            spike += 1;
            assert!(ten < Some(min), "a spike, not a sustained leak");
        } else if ten >= Some(min) {
            sustained += 1;
        } else if max >= 8.5 {
            nine += 1;
            assert!(
                held(&v.iter().map(|&(t, x)| (t, x >= 8.5)).collect::<Vec<_>>()) >= Some(2 * min)
            );
        }
    }
    assert_eq!((sustained, spike, nine), (2, 2, 2));

    // Gauges: > 15 cm for 2 minutes; near miss a 30-second spike.
    let (mut flood, mut blip) = (0, 0);
    for d in of("water_level") {
        let v = get(d, "depth_cm");
        match held(&v.iter().map(|&(t, x)| (t, x > 15.0)).collect::<Vec<_>>()) {
            Some(h) if h >= 2 * min => flood += 1,
            Some(h) => {
                assert!(h <= 30 * SECOND);
                blip += 1
            }
            None => {}
        }
    }
    assert_eq!((flood, blip), (2, 2));

    // Manhole covers: > 10° for 30 s; near miss 8° held.
    let (mut tilted, mut eight) = (0, 0);
    for d in of("manhole_tilt") {
        let v = get(d, "tilt_deg");
        let max = v.iter().map(|x| x.1).fold(0.0, f64::max);
        if held(&v.iter().map(|&(t, x)| (t, x > 10.0)).collect::<Vec<_>>()) >= Some(30 * SECOND) {
            tilted += 1;
        } else if max >= 7.0 {
            assert!(max < 10.0);
            eight += 1;
        }
    }
    assert_eq!((tilted, eight), (2, 2));

    // The station forecourt: ≥ 2.5 people/m² for 2 minutes, and a minute-long near miss.
    let station: Vec<usize> = of("head_count")
        .into_iter()
        .filter(|&d| devices[d].tags.iter().any(|t| t == "stadium_station"))
        .collect();
    for &d in &station {
        let v = get(d, "density_m2");
        let runs: Vec<Millis> = {
            let mut runs = Vec::new();
            let mut since = None;
            for &(t, x) in &v {
                match (x >= 2.5, since) {
                    (true, None) => since = Some(t),
                    (false, Some(s)) => {
                        runs.push(t - TICK - s);
                        since = None
                    }
                    _ => {}
                }
            }
            runs
        };
        assert_eq!(runs.len(), 4, "a surge and a near miss per cycle: {runs:?}");
        assert!(
            runs.iter().filter(|&&r| r >= 2 * min).count() == 2,
            "{runs:?}"
        );
        assert!(
            runs.iter().filter(|&&r| r < 2 * min).count() == 2,
            "{runs:?}"
        );
    }

    // Wukang: the fence's head counts add up to the feed and climb towards red.
    let wukang: Vec<usize> = of("head_count")
        .into_iter()
        .filter(|&d| devices[d].tags.iter().any(|t| t == "wukang"))
        .collect();
    let total = |t: Millis| -> f64 {
        wukang
            .iter()
            .map(|&d| get(d, "people").iter().find(|x| x.0 == t).unwrap().1)
            .sum()
    };
    let red = cfg
        .indicators
        .iter()
        .find(|i| i.code == "crowd_wukang")
        .unwrap()
        .thresholds
        .unwrap()
        .at;
    let (m2, m5, m8) = (total(2 * min), total(5 * min), total(8 * min));
    assert!(m2 < m5 && m5 < m8, "rising: {m2} {m5} {m8}");
    assert!(
        m2 < red[1] && m8 > red[2],
        "from below yellow past orange: {m2} {m8} {red:?}"
    );
    let feed = script.crowd("crowd_wukang", 8 * min).unwrap();
    assert!(
        (m8 - feed).abs() < 0.05 * feed,
        "the feed is the head counts' sum: {m8} {feed}"
    );
    assert!(get(wukang[0], "density_m2")
        .iter()
        .all(|x| x.1 >= 0.0 && x.1 < 10.0));
}
