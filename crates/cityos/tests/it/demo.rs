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
