//! `cityos simulate`: the same seed gives the same day, another seed another, and the
//! day on PostgreSQL equals the day in memory.

use crate::support::{cityos, postgres, stderr, stdout};

#[test]
fn simulate_is_deterministic_per_seed() {
    let a = cityos(&["simulate", "--seed", "5", "--reports", "400", "--json"]);
    assert!(a.status.success(), "{}", stderr(&a));
    let b = cityos(&["simulate", "--seed", "5", "--reports", "400", "--json"]);
    assert_eq!(stdout(&a), stdout(&b), "same seed, same result");
    let c = cityos(&["simulate", "--seed", "6", "--reports", "400", "--json"]);
    assert_ne!(stdout(&a), stdout(&c), "another seed, another day");
    let v: serde_json::Value = serde_json::from_str(stdout(&a).trim()).unwrap();
    assert_eq!(v["reports"], 400);
    let cases = v["cases"].as_u64().unwrap();
    assert!(
        cases > 250 && cases < 400,
        "{cases} cases (some reports merge)"
    );
    assert!(v["merged_reports"].as_u64().unwrap() > 0);
    assert!(v["returns"].as_u64().unwrap() > 0, "some returns");
    assert!(v["reworks"].as_u64().unwrap() > 0, "some reworks");
    assert!(v["escalations"].as_u64().unwrap() > 0, "some late");
    let on_time = v["on_time_rate"].as_f64().unwrap();
    assert!(on_time > 0.4 && on_time < 1.0, "{on_time}");
    assert!(v["by_state"]["closed"].as_u64().unwrap() > 0);
}

#[test]
fn the_same_day_on_postgresql_gives_the_same_result() {
    let Some(db) = postgres("cli") else {
        return;
    };
    let pg = cityos(&[
        "simulate",
        "--seed",
        "9",
        "--reports",
        "300",
        "--json",
        "--db",
        &db.schema_url,
    ]);
    let mem = cityos(&["simulate", "--seed", "9", "--reports", "300", "--json"]);
    db.drop_schema();
    assert!(pg.status.success(), "{}", stderr(&pg));
    assert_eq!(
        stdout(&pg),
        stdout(&mem),
        "PostgreSQL and SQLite store the same day identically"
    );
}
