//! The scenario packs replayed: each of the seven fires on its pattern and not on its near
//! misses (a gas reading at 9 %LEL, a lift stopped at a floor with its door open, a gauge
//! spike shorter than `for`, a flat at 2.7× its expected water, eleven registrations, a
//! meter at 0.0117 m³ in 12 hours …), on both stores, the same hits for the same inputs.
//! The cases carry the playbook (priority, lead and joint lines, deadlines, checklist
//! ticked off in the log); a condition that clears is stood down; CAP where the playbook
//! says so; addresses never in a hit.

use crate::api_story;
use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_core::time::{format_rfc3339, Millis, DAY, HOUR, MINUTE, SECOND};
use cityos_core::workflow::NewReport;
use cityos_core::Role;
use cityos_engine::config::Config;
use cityos_server::http::auth::Principal;
use serde_json::{json, Value};

/// Devices of the test on top of the demo's: lifts, gas detectors, head counts inside the
/// crowd pack's fences, and two flats each with a water and an electricity meter at one
/// position.
const DEVICES: &str = "\
TL-1,lift_controller,121.4300,31.2000,dist-special-equipment,
TL-2,lift_controller,121.4310,31.2000,dist-special-equipment,
TL-3,lift_controller,121.4320,31.2000,dist-special-equipment,
TG-1,gas_lel,121.4454,31.2067,dist-emergency,
TG-2,gas_lel,121.4500,31.1700,dist-emergency,
TG-3,gas_lel,121.4600,31.1700,dist-emergency,
TC-ST,head_count,121.4362,31.1827,dist-emergency,
TC-ST2,head_count,121.4355,31.1822,dist-emergency,
TC-WK,head_count,121.4380,31.2050,dist-emergency,
TW-1,water_meter,121.4450,31.1600,dist-water,
TE-1,electricity_meter,121.4450,31.1600,dist-water,
TW-2,water_meter,121.4460,31.1610,dist-water,
TE-2,electricity_meter,121.4460,31.1610,dist-water,
";

const FLATS: &str =
    "flat,address,meter,registered_occupants,expected_water_m3_day,expected_kwh_day\n\
F-1,宜山路 10 弄 1 号 101 室,TW-1,1,0.3,5\n\
F-2,宜山路 12 弄 3 号 602 室,TW-2,1,0.3,5\n";

fn cfg() -> Config {
    let devices = format!("{}\n{DEVICES}", cityos_engine::demo::DEVICES_CSV.trim_end());
    Config::xuhui()
        .with_sensing(cityos_engine::demo::SENSING_TOML, &devices)
        .expect("test devices")
}

fn sensor(t: &TestApp) -> String {
    t.sign(&Principal {
        name: "gateway".into(),
        role: Role::System,
        department: None,
        scope: None,
        channel: Some("sensor".into()),
        expires_at: i64::MAX,
    })
}

/// Sends readings `(device, metric, value)` taken at `at`; answers the ingest's reply.
async fn read(t: &TestApp, token: &str, at: Millis, lines: &[(&str, &str, f64)]) -> Value {
    let body: Vec<String> = lines
        .iter()
        .map(|(d, m, v)| {
            json!({"device": d, "metric": m, "value": v, "at": format_rfc3339(at)}).to_string()
        })
        .collect();
    let auth = format!("Bearer {token}");
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            "/api/v1/readings",
            "application/x-ndjson",
            &body.join("\n"),
            &[("authorization", auth.as_str())],
        )
        .await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["accepted"], lines.len(), "{v}");
    v
}

async fn tick(t: &TestApp) -> Vec<Value> {
    let st = t.svc.as_ref().unwrap().state.clone();
    cityos_server::scenarios::runtime::tick(&st).await.unwrap()
}

async fn import(t: &TestApp, token: &str, name: &str, csv: &str) -> Value {
    let auth = format!("Bearer {token}");
    let (s, b, _) = t
        .raw_with(
            Method::POST,
            &format!("/api/v1/datasets/{name}?owner=dist-housing&sensitivity=sensitive"),
            "text/csv",
            csv,
            &[("authorization", auth.as_str())],
        )
        .await;
    let v: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

/// Every hit so far as (pack, place, kind), oldest first.
fn hits(t: &TestApp) -> Vec<(String, String, String)> {
    let st = t.svc.as_ref().unwrap().state.clone();
    let mut v = cityos_server::scenarios::runtime::hits(&st, None, None, true, 500);
    v.reverse();
    v.iter()
        .map(|h| {
            (
                h["pack"].as_str().unwrap().to_string(),
                h["place"].as_str().unwrap().to_string(),
                h["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn hit_of(t: &TestApp, pack: &str, place: &str) -> Value {
    let st = t.svc.as_ref().unwrap().state.clone();
    cityos_server::scenarios::runtime::hits(&st, Some(pack), None, true, 500)
        .into_iter()
        .find(|h| h["place"] == place && h["kind"] == "hit")
        .unwrap_or_else(|| panic!("no hit of {pack} at {place}"))
}

fn triple(p: &str, place: &str, kind: &str) -> (String, String, String) {
    (p.into(), place.into(), kind.into())
}

api_story!(every_pack_fires_on_its_pattern_and_not_on_its_near_misses);
async fn every_pack_fires_on_its_pattern_and_not_on_its_near_misses(mut t: TestApp) {
    t.reconfigure(cfg());
    t.seed().await;
    let gw = sensor(&t);
    let t0 = cityos_server::Clock::now(t.clock.as_ref());

    // t0: a lift stuck between floors with its door shut (TL-1); one stopped at a floor
    // with its door open (TL-2); one stuck only 40 s (TL-3). Gas at 30, 12 and 9 %LEL.
    // Gauges at 18 and 20 cm, manhole covers tilted 15°, the station forecourt crowded.
    let v = read(
        &t,
        &gw,
        t0,
        &[
            ("TL-1", "between_floors", 1.0),
            ("TL-1", "running", 0.0),
            ("TL-1", "door_open", 0.0),
            ("TL-2", "between_floors", 0.0),
            ("TL-2", "running", 0.0),
            ("TL-2", "door_open", 1.0),
            ("TL-3", "between_floors", 1.0),
            ("TL-3", "running", 0.0),
            ("TL-3", "door_open", 0.0),
            ("TG-1", "lel_pct", 30.0),
            ("TG-2", "lel_pct", 12.0),
            ("TG-3", "lel_pct", 9.0),
            ("WL-001", "depth_cm", 18.0),
            ("WL-002", "depth_cm", 20.0),
            ("MH-001", "tilt_deg", 15.0),
            ("MH-002", "tilt_deg", 15.0),
            ("TC-ST", "density_m2", 2.6),
            ("TC-ST2", "density_m2", 2.6),
        ],
    )
    .await;
    // 30 %LEL is an alarm at once: the hit comes with the readings' answer.
    assert_eq!(v["scenarios"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["scenarios"][0]["pack"], "gas_leak");
    assert_eq!(hits(&t), vec![triple("gas_leak", "TG-1", "hit")]);

    // +40 s: the near misses end: TL-3 runs again, MH-002 and WL-002 fall back, the
    // second forecourt counter drops; TG-2 stays at 12.
    t.clock.set(t0 + 40 * SECOND);
    read(
        &t,
        &gw,
        t0 + 40 * SECOND,
        &[
            ("TL-3", "running", 1.0),
            ("TL-3", "between_floors", 0.0),
            ("MH-002", "tilt_deg", 2.0),
            ("WL-002", "depth_cm", 5.0),
            ("TC-ST2", "density_m2", 2.0),
            ("TG-2", "lel_pct", 12.0),
            ("TG-3", "lel_pct", 9.0),
        ],
    )
    .await;
    // 40 s of MH-001's tilt: past the pack's 30 s.
    let out = tick(&t).await;
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0]["place"], "MH-001", "{out:?}");

    // +65 s: a minute has passed — the lift and the gas pre-alarm.
    t.clock.set(t0 + 65 * SECOND);
    tick(&t).await;
    // +130 s: two minutes — the gauge and the forecourt.
    t.clock.set(t0 + 130 * SECOND);
    tick(&t).await;
    t.clock.set(t0 + 6 * MINUTE);
    tick(&t).await;
    assert_eq!(
        hits(&t),
        vec![
            triple("gas_leak", "TG-1", "hit"),
            triple("manhole_cover", "MH-001", "hit"),
            triple("gas_leak", "TG-2", "hit"),
            triple("lift_entrapment", "TL-1", "hit"),
            triple("crowd_fence", "TC-ST", "hit"),
            triple("flooding", "WL-001", "hit"),
        ]
    );

    // The lift's case: red (urgent), special-equipment supervision leading with fire and
    // housing, a 30-minute rescue deadline, the checklist of four roles.
    let admin = t.login("admin").await;
    let lift = hit_of(&t, "lift_entrapment", "TL-1");
    let number = lift["case"].as_str().unwrap().to_string();
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&admin))
        .await;
    let case = &c["case"];
    assert_eq!(case["category"], "lift_entrapment", "{c}");
    assert_eq!(case["priority"], "urgent");
    let lead = case["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["lead"] == true)
        .unwrap();
    assert_eq!(lead["department"], "dist-special-equipment", "{c}");
    assert!(
        case["tasks"].as_array().unwrap().len() >= 2,
        "joint lines: {c}"
    );
    let created = cityos_core::time::parse_datetime(case["created_at"].as_str().unwrap()).unwrap();
    let handle = case["deadlines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["step"] == "handle")
        .unwrap();
    assert_eq!(
        handle["due"],
        format_rfc3339(created + 30 * MINUTE),
        "the pack's 30-minute rescue, not the category's limit: {c}"
    );
    let pb = &case["playbook"];
    assert_eq!(pb["scenario"], "lift_entrapment");
    assert_eq!(pb["checklist"].as_array().unwrap().len(), 4, "{pb}");
    // Ticked off in the log, once, by those who work the case.
    let officer = t.login("zhang.district").await;
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&officer))
        .await;
    assert!(
        c["actions"].as_array().unwrap().iter().any(|a| a == "tick"),
        "{c}"
    );
    let path = format!("/api/v1/cases/{number}/transitions");
    let (s, v) = t
        .post(
            &path,
            Some(&officer),
            json!({"action": "tick", "role": "fire", "item": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, c) = t
        .get(&format!("/api/v1/cases/{number}"), Some(&admin))
        .await;
    let item = &c["case"]["playbook"]["checklist"][3]["items"][0];
    assert_eq!(item["done_by"], "zhang.district", "{c}");
    assert!(item["done_at"].is_string());
    let last = c["log"].as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "tick");
    assert!(
        last["note"].as_str().unwrap().starts_with("☑ fire"),
        "{last}"
    );
    let (s, v) = t
        .post(
            &path,
            Some(&officer),
            json!({"action": "tick", "role": "fire", "item": 0}),
        )
        .await;
    assert!(s.is_client_error(), "{v}");
    assert!(v.to_string().contains("already ticked"), "{v}");
    let (s, v) = t
        .post(
            &path,
            Some(&officer),
            json!({"action": "tick", "role": "nobody", "item": 0}),
        )
        .await;
    assert!(s.is_client_error(), "{v}");
    assert!(
        v.to_string().contains("\\\"fire\\\""),
        "names the roles: {v}"
    );
    let (s, v) = t
        .post(
            &path,
            Some(&officer),
            json!({"action": "tick", "role": "fire", "item": 9}),
        )
        .await;
    assert!(
        s.is_client_error() && v.to_string().contains("no item 9"),
        "{v}"
    );

    // The hits API: every hit for the district; a sub-district officer sees those inside
    // 天平路街道 only.
    let (s, all) = t.get("/api/v1/scenarios/hits", Some(&officer)).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let n = all["hits"].as_array().unwrap().len();
    assert_eq!(n, 6, "{all}");
    let li = t.login("li.tianping").await;
    let (_, mine) = t.get("/api/v1/scenarios/hits", Some(&li)).await;
    let mine = mine["hits"].as_array().unwrap();
    assert!(!mine.is_empty() && mine.len() < n, "{mine:?}");
    assert!(mine.iter().all(|h| h["region"] == "310104003"), "{mine:?}");
    // … and the packs' hit counts are hers too.
    let (_, packs) = t.get("/api/v1/scenarios", Some(&li)).await;
    let counted: u64 = packs["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["hits"].as_u64().unwrap())
        .sum();
    assert_eq!(counted as usize, mine.len(), "{packs}");
    // Nobody outside the staff: anonymous 401, a citizen and a machine 403.
    let (s, _) = t.get("/api/v1/scenarios/hits", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    for (role, channel) in [(Role::Citizen, None), (Role::System, Some("sensor"))] {
        let tok = t.sign(&Principal {
            name: "x".into(),
            role,
            department: None,
            scope: None,
            channel: channel.map(String::from),
            expires_at: i64::MAX,
        });
        let (s, v) = t.get("/api/v1/scenarios/hits", Some(&tok)).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{role}: {v}");
    }
    let (s, _) = t
        .get("/api/v1/scenarios/hits?limit=0", Some(&officer))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .get("/api/v1/scenarios/hits?pack=nope", Some(&officer))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The manhole hit joined the cover's alarm case and brought its playbook.
    let mh = hit_of(&t, "manhole_cover", "MH-001");
    let (_, c) = t
        .get(
            &format!("/api/v1/cases/{}", mh["case"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(c["case"]["playbook"]["scenario"], "manhole_cover", "{c}");

    // The gas pre-alarm's case: acknowledge within 5 minutes; CAP published.
    let gas = hit_of(&t, "gas_leak", "TG-1");
    assert!(gas["cap"].is_string(), "{gas}");
    // TG-1 clears; fifteen minutes later the pack stands down: a note, the CAP cancelled.
    t.clock.set(t0 + 7 * MINUTE);
    read(&t, &gw, t0 + 7 * MINUTE, &[("TG-1", "lel_pct", 0.0)]).await;
    t.clock.set(t0 + 7 * MINUTE + 15 * MINUTE + SECOND);
    let out = tick(&t).await;
    let down: Vec<&Value> = out.iter().filter(|h| h["kind"] == "stand_down").collect();
    assert_eq!(down.len(), 1, "{out:?}");
    assert_eq!(down[0]["place"], "TG-1");
    assert!(
        down[0]["cap"].is_string(),
        "the warning is cancelled: {out:?}"
    );
    let (_, c) = t
        .get(
            &format!("/api/v1/cases/{}", gas["case"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert!(c.to_string().contains("条件已解除"), "{c}");
    let (_, feed, _) = t.call(Method::GET, "/cap/feed.atom", None, None, &[]).await;
    let _ = feed;

    // Wukang at red (pushed by a feed): the counter inside the fence hits, with CAP.
    let (s, v) = t
        .post(
            "/api/v1/indicators/crowd_wukang/values",
            Some(&officer),
            json!({"value": 2100}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let now = t0 + 23 * MINUTE;
    t.clock.set(now);
    let v = read(&t, &gw, now, &[("TC-WK", "people", 2100.0)]).await;
    assert_eq!(v["scenarios"][0]["pack"], "crowd_fence", "{v}");
    assert_eq!(v["scenarios"][0]["level"], "red", "{v}");
    assert!(v["scenarios"][0]["cap"].is_string(), "{v}");

    // A second counter inside the station's fence crowded too: the fence is one place, so
    // its hit is a repeat on the forecourt's open case.
    let station = hit_of(&t, "crowd_fence", "TC-ST");
    read(&t, &gw, now, &[("TC-ST2", "density_m2", 3.0)]).await;
    t.clock.set(now + 2 * MINUTE + SECOND);
    let out = tick(&t).await;
    let again: Vec<&Value> = out.iter().filter(|h| h["place"] == "TC-ST2").collect();
    assert_eq!(again.len(), 1, "{out:?}");
    assert_eq!(again[0]["kind"], "repeat", "{out:?}");
    assert_eq!(again[0]["case"], station["case"], "{out:?}");
    t.clock.set(now);

    // A pack reloaded while the service runs judges with its new text at once: gas at
    // 6 %LEL is nothing to 1.0.0 and a hit to 1.0.1 (threshold 5).
    let gas_text = cityos_engine::demo::SCENARIO_PACKS
        .iter()
        .find(|(f, _)| *f == "gas_leak.toml")
        .unwrap()
        .1
        .replace("version = \"1.0.0\"", "version = \"1.0.1\"")
        .replace("lel_pct >= 10 for 1m", "lel_pct >= 5");
    read(&t, &gw, now, &[("TG-3", "lel_pct", 6.0)]).await;
    assert!(!hits(&t).contains(&triple("gas_leak", "TG-3", "hit")));
    let auth = format!("Bearer {officer}");
    let (s, b, _) = t
        .raw_with(
            Method::PUT,
            "/api/v1/scenarios/gas_leak",
            "text/plain",
            &gas_text,
            &[("authorization", auth.as_str())],
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let v = read(&t, &gw, now, &[("TG-3", "lel_pct", 6.5)]).await;
    assert_eq!(v["scenarios"][0]["place"], "TG-3", "{v}");

    // Group renting, from complaints: three at one address within 30 days (not two).
    let st = t.svc.as_ref().unwrap().state.clone();
    for (i, cat) in ["noise", "neighbour_dispute", "ebike_charging"]
        .iter()
        .enumerate()
    {
        file(&st, cat, 121.4420 + i as f64 * 0.00003, 31.1650, now).await;
    }
    for cat in ["noise", "neighbour_dispute"] {
        file(&st, cat, 121.4405, 31.1705, now).await;
    }
    tick(&t).await;
    let renting: Vec<_> = hits(&t)
        .into_iter()
        .filter(|h| h.0 == "group_renting")
        .collect();
    assert_eq!(renting.len(), 1, "{renting:?}");

    // Group renting, from meters: a flat at 4× its expected water and electricity over a
    // week (not one at 2.7×), judged on the daily schedule.
    import(&t, &officer, "flats", FLATS).await;
    for d in (0..8).rev() {
        let at = now - d * DAY;
        read(
            &t,
            &gw,
            at,
            &[
                ("TW-1", "flow_m3", 1.2),
                ("TE-1", "kwh", 20.0),
                ("TW-2", "flow_m3", 0.8),
                ("TE-2", "kwh", 20.0),
            ],
        )
        .await;
    }
    let now = now + DAY + SECOND;
    t.clock.set(now);
    let officer = t.login("zhang.district").await; // a new day, a new session
    tick(&t).await;
    let flat = hit_of(&t, "group_renting", "TW-1");
    assert!(
        !flat.to_string().contains("宜山路"),
        "no address in a hit: {flat}"
    );
    let (_, c) = t
        .get(
            &format!("/api/v1/cases/{}", flat["case"].as_str().unwrap()),
            Some(&officer),
        )
        .await;
    assert!(c.to_string().contains("F-1"), "the evidence row: {c}");
    assert!(
        !c["case"]["title"].to_string().contains("宜山路"),
        "the address travels as the contact only: {c}"
    );
    // … and from registrations: twelve different people at F-2's address in a year (not
    // eleven at F-1's).
    let mut regs = String::from("address,person,registered_on\n");
    for i in 0..12 {
        regs.push_str(&format!(
            "宜山路 12 弄 3 号 602 室,P{i:04},2026-0{}-01\n",
            1 + i % 9
        ));
    }
    for i in 0..11 {
        regs.push_str(&format!(
            "宜山路 10 弄 1 号 101 室,Q{i:04},2026-0{}-01\n",
            1 + i % 9
        ));
    }
    let v = import(&t, &officer, "residence_registrations", &regs).await;
    let found: Vec<&Value> = v["scenarios"].as_array().unwrap().iter().collect();
    assert_eq!(found.len(), 1, "{v}");
    assert!(!v.to_string().contains("宜山路"), "{v}");

    // Lone elders: 0.0091 m³ in 12 hours is a welfare check; 0.0117 m³ is not.
    let households = "household,address,community,meter,elder_alone\n\
                      H-8,天平路 8 号,310104003001,WM-002,是\n\
                      H-9,天平路 9 号,310104003001,WM-003,是\n";
    import(&t, &officer, "lone_elder_households", households).await;
    // The live stream: an officer and a handler are listening.
    let handler = t.login("wang.urban").await;
    let officer_stream = open_stream(&t, &officer).await;
    let handler_stream = open_stream(&t, &handler).await;
    for h in (0..13).rev() {
        read(
            &t,
            &gw,
            now - h * HOUR,
            &[("WM-002", "flow_m3", 0.0009), ("WM-003", "flow_m3", 0.0007)],
        )
        .await;
    }
    tick(&t).await;
    let elders: Vec<_> = hits(&t)
        .into_iter()
        .filter(|h| h.0 == "lone_elder_water")
        .collect();
    assert_eq!(elders, vec![triple("lone_elder_water", "WM-003", "hit")]);
    // On the live stream the welfare hit reaches the officer, not the handler.
    let seen = scenario_events(officer_stream.into_body()).await;
    assert!(
        seen.iter().any(|h| h["pack"] == "lone_elder_water"),
        "{seen:?}"
    );
    let seen = scenario_events(handler_stream.into_body()).await;
    assert!(
        !seen.iter().any(|h| h["pack"] == "lone_elder_water"),
        "{seen:?}"
    );
    // Where an elder lives alone is for the command centres: a handler or an analyst sees
    // no welfare hit (nor counts it), an officer does.
    let path = "/api/v1/scenarios/hits?pack=lone_elder_water";
    let (_, v) = t.get(path, Some(&officer)).await;
    assert_eq!(v["hits"].as_array().unwrap().len(), 1, "{v}");
    for who in ["wang.urban", "sun.analyst"] {
        let tok = t.login(who).await;
        let (s, v) = t.get(path, Some(&tok)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(v["hits"].as_array().unwrap().is_empty(), "{who}: {v}");
        let (_, packs) = t.get("/api/v1/scenarios", Some(&tok)).await;
        let elder = packs["scenarios"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "lone_elder_water")
            .unwrap();
        assert_eq!(elder["hits"], 0, "{who}: {elder}");
        assert!(elder["last_hit"].is_null(), "{who}: {elder}");
    }
    // A meter quiet for 12 hours before its household is listed: the import itself is the
    // hit, and its next reading is the same place — no second hit. The firing WM-003,
    // judged again by the import, neither.
    for h in (0..13).rev() {
        read(&t, &gw, now - h * HOUR, &[("WM-001", "flow_m3", 0.0)]).await;
    }
    let more = format!("{households}H-7,天平路 7 号,310104003001,WM-001,是\n");
    let v = import(&t, &officer, "lone_elder_households", &more).await;
    let found = v["scenarios"].as_array().unwrap();
    assert_eq!(found.len(), 1, "{v}");
    assert_eq!(found[0]["place"], "WM-001", "{v}");
    let v = read(
        &t,
        &gw,
        now,
        &[("WM-001", "flow_m3", 0.0), ("WM-003", "flow_m3", 0.0)],
    )
    .await;
    assert!(v["scenarios"].as_array().unwrap().is_empty(), "{v}");
}

async fn open_stream(t: &TestApp, token: &str) -> axum::http::Response<axum::body::Body> {
    let req = axum::http::Request::builder()
        .uri("/api/v1/events/stream")
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let router = cityos_server::app(t.svc.as_ref().unwrap().state.clone());
    let res = tower::ServiceExt::oneshot(router, req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

/// The `scenario` events a stream carried within two seconds.
async fn scenario_events(mut body: axum::body::Body) -> Vec<Value> {
    use http_body_util::BodyExt;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    text.split("\n\n")
        .filter(|b| {
            b.lines()
                .any(|l| l.trim() == "event: scenario" || l.trim() == "event:scenario")
        })
        .filter_map(|b| {
            let d = b.lines().find_map(|l| l.strip_prefix("data:"))?;
            serde_json::from_str(d.trim()).ok()
        })
        .collect()
}

async fn file(st: &cityos_server::AppState, category: &str, lon: f64, lat: f64, at: Millis) {
    cityos_server::cases::file_report(
        st,
        NewReport {
            channel: cityos_core::case::Channel::Citizen,
            category: category.into(),
            lon,
            lat,
            text: format!("{category} 投诉"),
            contact: None,
            at,
            media: Vec::new(),
            priority: None,
            playbook: None,
            suggestion: None,
        },
    )
    .await
    .unwrap();
}
