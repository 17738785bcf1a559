//! `cityos serve`: a bad sensing configuration (or scenario pack) is refused with its place; on PostgreSQL
//! it stops cleanly on SIGINT.

use crate::support::{
    cityos, free_addr, http, interrupt, postgres, report_noise, spawn_serving, tmp,
};
use std::process::Stdio;

#[test]
fn serve_refuses_a_bad_sensing_configuration_and_names_the_problem() {
    let dir = std::env::temp_dir().join(format!("cityos-cli-sensing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let devices = dir.join("devices.csv");
    std::fs::write(
        &devices,
        "id,kind,lon,lat,owner,tags\nX-1,smoke,121.44,31.2,,\nX-2,smoke,100,10,,\n",
    )
    .unwrap();
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\ncode = \"a\"\nname_zh = \"x\"\nkind = \"smoke\"\nmetric = \"m\"\nabove = 5\nclear_below = 9\ncategory = \"fire_incident\"\n",
    )
    .unwrap();
    let indicators = dir.join("indicators.toml");
    std::fs::write(
        &indicators,
        "[[indicator]]\ncode = \"flood\"\nname_zh = \"x\"\nname_en = \"x\"\ndomain = \"safety\"\nsource = \"external\"\ndirection = \"up\"\nlevels = [30, 20, 40, 50]\n",
    )
    .unwrap();
    let vital = dir.join("vital.toml");
    std::fs::write(
        &vital,
        "[[rule]]\ncode = \"x\"\nname_zh = \"x\"\nname_en = \"x\"\nexpr = \"river_water_level >= purple\"\ncategory = \"waterlogging\"\n",
    )
    .unwrap();
    let scenarios = dir.join("scenarios");
    std::fs::create_dir_all(&scenarios).unwrap();
    let manhole = cityos_engine::demo::SCENARIO_PACKS
        .iter()
        .find(|(f, _)| f.starts_with("manhole_cover"))
        .unwrap()
        .1;
    std::fs::write(
        scenarios.join("manhole_cover.toml"),
        manhole.replace(
            "category = \"manhole_cover_tilt_alarm\"",
            "category = \"nope\"",
        ),
    )
    .unwrap();
    let data = dir.join("data");
    let d = data.to_str().unwrap();
    for (flag, path, needle) in [
        (
            "--devices",
            &devices,
            "line 3: device X-2 at (100, 10) lies outside the territory",
        ),
        (
            "--alarm-rules",
            &rules,
            "clear_below 9 must not be above the threshold 5",
        ),
        (
            "--indicators",
            &indicators,
            "indicator \"flood\": thresholds blue 30, yellow 20, orange 40, red 50 are out of order",
        ),
        (
            "--alert-rules",
            &vital,
            "alert rule \"x\": expression \"river_water_level >= purple\" does not parse",
        ),
        (
            "--scenarios",
            &scenarios,
            "manhole_cover.toml: 25:12: unknown category \"nope\"",
        ),
    ] {
        let out = cityos(&[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            d,
            flag,
            path.to_str().unwrap(),
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{flag}: {err}");
    }
    // An attribution without a tile server is refused naming both settings, by flag and
    // by environment variable.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args(["serve", "--addr", "127.0.0.1:0", "--data", d])
        .env("CITYOS_TILE_ATTRIBUTION", "© 徐汇区测绘")
        .env_remove("CITYOS_TILE_URL")
        .current_dir(crate::support::root())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "--tile-attribution (CITYOS_TILE_ATTRIBUTION) needs --tile-url (CITYOS_TILE_URL)"
        ),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cityos serve` on PostgreSQL stops cleanly on SIGINT (it used to abort with "Cannot
/// start a runtime from within a runtime", exit 134, every time: the synchronous client's
/// connections were closed on an async thread).
#[test]
fn serve_on_postgresql_stops_cleanly() {
    let Some(db) = postgres("cli_stop") else {
        return;
    };
    let dir = tmp("serve-pg");
    let addr = free_addr();
    let (child, _, _lines) = spawn_serving(
        &[
            "serve",
            "--addr",
            &addr,
            "--data",
            dir.to_str().unwrap(),
            "--database-url",
            &db.schema_url,
        ],
        Stdio::piped(),
    );
    let (s, b) = http(&addr, "GET", "/readyz", None, None);
    assert_eq!(s, 200, "{b}");
    let (s, b) = report_noise(&addr);
    assert_eq!(s, 201, "{b}");
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    db.drop_schema();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
