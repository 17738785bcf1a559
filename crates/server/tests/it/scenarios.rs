//! The scenarios room: the seven packs listed at start; enabled and disabled by an
//! administrator (a handler is refused); reloads refused with every problem named (an
//! unknown category, a condition that does not parse, an unchanged version) while the
//! running version stays; a good reload bumps the version; the audit trail names every
//! change with its actor and time; and the state survives a restart — on both stores.

use crate::api_story;
use crate::support::TestApp;
use axum::http::{Method, StatusCode};
use cityos_engine::demo::SCENARIO_PACKS;
use serde_json::Value;

fn manhole() -> &'static str {
    SCENARIO_PACKS
        .iter()
        .find(|(f, _)| f.starts_with("manhole_cover"))
        .expect("the manhole pack")
        .1
}

async fn put(t: &TestApp, token: &str, name: &str, ct: &str, body: &str) -> (StatusCode, Value) {
    let auth = format!("Bearer {token}");
    let (s, b, _) = t
        .raw_with(
            Method::PUT,
            &format!("/api/v1/scenarios/{name}"),
            ct,
            body,
            &[("authorization", auth.as_str())],
        )
        .await;
    (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
}

fn pack<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {list}"))
}

api_story!(scenario_packs_are_listed_changed_audited_and_kept);
async fn scenario_packs_are_listed_changed_audited_and_kept(mut t: TestApp) {
    t.seed().await;
    let admin = t.login("admin").await;
    let zhang = t.login("zhang.district").await;
    let handler = t.login("chen.roads").await;

    // The seven packs, all enabled, each with its version, owner, names and playbook.
    let (s, list) = t.get("/api/v1/scenarios", Some(&handler)).await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "crowd_fence",
            "flooding",
            "gas_leak",
            "group_renting",
            "lift_entrapment",
            "lone_elder_water",
            "manhole_cover"
        ]
    );
    let m = pack(&list, "manhole_cover");
    assert_eq!(m["status"], "enabled");
    assert_eq!(m["version"], "1.0.0");
    assert_eq!(m["owner"], "dist-roads");
    assert_eq!(m["name_zh"], "井盖异常");
    assert_eq!(m["playbook"]["category"], "manhole_cover_tilt_alarm");
    assert_eq!(m["playbook"]["lead"], "roads");
    assert_eq!(m["problems"], serde_json::json!([]));
    assert_eq!(
        t.get("/api/v1/scenarios", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, one) = t
        .get("/api/v1/scenarios/manhole_cover", Some(&handler))
        .await;
    assert_eq!(s, StatusCode::OK, "{one}");
    assert_eq!(one["text"], manhole());
    assert_eq!(one["playbook"]["deadlines"]["dispatch"], "10m");
    assert_eq!(one["playbook"]["stand_down_after_seconds"], 1800);
    let (s, v) = t.get("/api/v1/scenarios/nothing", Some(&handler)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_scenario"))
    );

    // Disable and enable: administrators and the district officer; a handler is refused.
    let (s, v) = t
        .post(
            "/api/v1/scenarios/flooding/disable",
            Some(&handler),
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (s, v) = t
        .post(
            "/api/v1/scenarios/flooding/disable",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "disabled");
    t.clock.advance(60_000);
    let (s, v) = t
        .post(
            "/api/v1/scenarios/gas_leak/disable",
            Some(&zhang),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    t.clock.advance(60_000);
    let (s, v) = t
        .post(
            "/api/v1/scenarios/gas_leak/enable",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("enabled")));
    let state = t.svc.as_ref().unwrap().state.clone();
    let enabled: Vec<String> = state
        .0
        .scenarios
        .enabled()
        .iter()
        .map(|p| p.code.clone())
        .collect();
    assert_eq!(enabled.len(), 6);
    assert!(!enabled.contains(&"flooding".to_string()));

    // A reload naming an unknown category: 422 with the problem's place; 1.0.0 runs on.
    let unknown_category = manhole()
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace(
            "category = \"manhole_cover_tilt_alarm\"",
            "category = \"no_such_category\"",
        );
    let (s, v) = put(
        &t,
        &admin,
        "manhole_cover",
        "application/toml",
        &unknown_category,
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["code"], "invalid_scenario_pack");
    let problems = v["problems"].as_array().unwrap();
    assert!(
        problems.iter().any(|p| {
            let p = p.as_str().unwrap();
            p.contains("no_such_category")
                && p.split(':').take(2).all(|n| n.parse::<usize>().is_ok())
        }),
        "{v}"
    );
    // A condition that does not parse: its line and column.
    let bad_condition = manhole()
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace("tilt_deg > 10 for 30s", "tilt_deg > > 10 for 30s");
    let (s, v) = put(&t, &admin, "manhole_cover", "text/plain", &bad_condition).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let p = v["problems"][0].as_str().unwrap();
    assert!(
        p.starts_with("9:"),
        "the condition's first line is line 9: {v}"
    );
    let (_, list) = t.get("/api/v1/scenarios", Some(&admin)).await;
    let m = pack(&list, "manhole_cover");
    assert_eq!(m["version"], "1.0.0", "the running version stays");
    assert_eq!(
        m["problems"][0], v["problems"][0],
        "the last problems are shown"
    );
    // The same version again: 409; a handler: 403; another media type: 415.
    let (s, v) = put(&t, &admin, "manhole_cover", "application/toml", manhole()).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("scenario_version_unchanged"))
    );
    let (s, _) = put(&t, &handler, "manhole_cover", "application/toml", manhole()).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = put(&t, &admin, "manhole_cover", "application/json", "{}").await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A pack under another pack's name.
    let (s, v) = put(
        &t,
        &admin,
        "flooding",
        "application/toml",
        &manhole().replace("1.0.0", "9.0.0"),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // A good reload bumps the version.
    t.clock.advance(60_000);
    let good = manhole()
        .replace("version = \"1.0.0\"", "version = \"1.1.0\"")
        .replace("dispatch = \"10m\"", "dispatch = \"15m\"");
    let (s, v) = put(&t, &zhang, "manhole_cover", "application/toml", &good).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], "1.1.0");
    assert_eq!(v["origin"], "reload");
    assert_eq!(v["problems"], serde_json::json!([]));
    let (_, one) = t
        .get("/api/v1/scenarios/manhole_cover", Some(&handler))
        .await;
    assert_eq!(one["playbook"]["deadlines"]["dispatch"], "15m");
    assert_eq!(one["text"], good.as_str());

    // The audit trail: every change, with actor and time, oldest first.
    let (s, a) = t
        .get("/api/v1/scenarios/manhole_cover/audit", Some(&handler))
        .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    let rows: Vec<(&str, &str, &str, bool)> = a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert!(r["at"].as_str().unwrap().starts_with("2026-11-25T"), "{r}");
            (
                r["actor"].as_str().unwrap(),
                r["action"].as_str().unwrap(),
                r["version"].as_str().unwrap(),
                r["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("admin", "reload", "1.1.0", false),
            ("admin", "reload", "1.1.0", false),
            ("admin", "reload", "1.0.0", false),
            ("zhang.district", "reload", "1.1.0", true),
        ]
    );
    assert!(a["audit"][0]["problems"][0]
        .as_str()
        .unwrap()
        .contains("no_such_category"));
    let (_, a) = t
        .get("/api/v1/scenarios/gas_leak/audit", Some(&admin))
        .await;
    let rows: Vec<(&str, &str)> = a["audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["actor"].as_str().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("zhang.district", "disable"), ("admin", "enable")]);
    assert_ne!(a["audit"][0]["at"], a["audit"][1]["at"]);
    let (_, a) = t
        .get("/api/v1/scenarios/flooding/audit", Some(&admin))
        .await;
    assert_eq!(
        a["audit"].as_array().unwrap().len(),
        2,
        "disable, refused reload: {a}"
    );

    // After a restart: flooding still disabled, manhole_cover still at 1.1.0.
    t.restart();
    let (_, list) = t.get("/api/v1/scenarios", Some(&admin)).await;
    assert_eq!(pack(&list, "flooding")["status"], "disabled");
    assert_eq!(pack(&list, "gas_leak")["status"], "enabled");
    let m = pack(&list, "manhole_cover");
    assert_eq!(
        (m["version"].as_str(), m["origin"].as_str()),
        (Some("1.1.0"), Some("reload"))
    );
    let (_, one) = t.get("/api/v1/scenarios/manhole_cover", Some(&admin)).await;
    assert_eq!(one["text"], good.as_str());
    assert_eq!(one["playbook"]["deadlines"]["dispatch"], "15m");
    let state = t.svc.as_ref().unwrap().state.clone();
    assert_eq!(state.0.scenarios.enabled().len(), 6);
    // Disabling the reloaded pack keeps its text across the next restart too.
    let (s, _) = t
        .post(
            "/api/v1/scenarios/manhole_cover/disable",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    t.restart();
    let (_, one) = t.get("/api/v1/scenarios/manhole_cover", Some(&admin)).await;
    assert_eq!(
        (one["status"].as_str(), one["version"].as_str()),
        (Some("disabled"), Some("1.1.0"))
    );
    let (_, a) = t
        .get("/api/v1/scenarios/manhole_cover/audit", Some(&admin))
        .await;
    assert_eq!(a["audit"].as_array().unwrap().len(), 5);
}

#[test]
fn a_scenarios_directory_replaces_packs_by_name_and_refuses_bad_ones() {
    let cfg = crate::support::config();
    let dir = std::env::temp_dir().join(format!("cityos-scenarios-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let newer = manhole().replace("version = \"1.0.0\"", "version = \"2.0.0\"");
    std::fs::write(dir.join("manhole_cover.toml"), &newer).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a pack").unwrap();
    let packs = cityos_server::scenarios::sources(&cfg, Some(&dir)).unwrap();
    assert_eq!(packs.len(), 7);
    let m = packs
        .iter()
        .find(|p| p.pack.code == "manhole_cover")
        .unwrap();
    assert_eq!(m.pack.version, "2.0.0");
    assert_eq!(m.origin, cityos_server::scenarios::Origin::Directory);
    // A file naming another pack, and a bad one: both named.
    std::fs::write(dir.join("flooding.toml"), &newer).unwrap();
    std::fs::write(dir.join("gas_leak.toml"), "code = ").unwrap();
    let e = cityos_server::scenarios::sources(&cfg, Some(&dir)).unwrap_err();
    assert!(
        e.contains("flooding.toml") && e.contains("gas_leak.toml"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
