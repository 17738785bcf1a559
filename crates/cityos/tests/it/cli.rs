//! The `cityos` binary as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn cityos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run cityos")
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cityos-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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
fn demo_runs_on_the_embedded_default_and_resumes() {
    let dir = tmp("demo");
    let data = dir.join("data");
    let o = cityos(&[
        "demo",
        "--no-serve",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("徐汇区"), "{out}");
    assert!(out.contains("13 sub-districts, 306 communities"), "{out}");
    assert!(out.contains("cases by state"), "{out}");
    assert!(data.join("cityos.db").exists());
    // A second run continues on the same store with the next days.
    let o = cityos(&[
        "demo",
        "--no-serve",
        "--data",
        data.to_str().unwrap(),
        "--seed",
        "4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn check_reports_every_problem_with_its_line() {
    let dir = tmp("check");
    let ok = cityos(&["check"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(
        stdout(&ok).starts_with("ok: 3320 regions") && stdout(&ok).contains("44 indicators"),
        "{}",
        stdout(&ok)
    );
    let text = std::fs::read_to_string(root().join("data/xuhui/taxonomy.toml")).unwrap();
    let bad = text
        .replacen("level = \"district\"", "level = \"province\"", 1)
        .replacen("handle = \"", "handle = \"x", 1);
    let f = dir.join("bad.toml");
    std::fs::write(&f, &bad).unwrap();
    let o = cityos(&["check", "--taxonomy", f.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("problem(s)"), "{err}");
    assert!(
        err.contains("level \"province\" must be district, subdistrict or community"),
        "{err}"
    );
    assert!(err.contains("deadlines.handle"), "{err}");
    assert!(err.matches("line ").count() >= 2, "{err}");
    let o = cityos(&["check", "--territory", "/no/such/file.geojson"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("/no/such/file.geojson"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_committed_territory_is_what_the_generator_makes() {
    let dir = tmp("territory");
    let out = dir.join("t.geojson");
    let o = cityos(&["territory", "generate", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let generated = std::fs::read(&out).unwrap();
    let committed = std::fs::read(root().join("data/xuhui/territory.geojson")).unwrap();
    assert!(
        generated == committed,
        "data/xuhui/territory.geojson is stale: run `cargo run -- territory generate`"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn workflow_table_and_help() {
    let o = cityos(&["workflow-table"]);
    assert!(
        stdout(&o).contains("| `dispatch` | filed, returned | dispatched |"),
        "{}",
        stdout(&o)
    );
    let o = cityos(&["--help"]);
    for cmd in ["demo", "simulate", "bench", "territory", "check"] {
        assert!(stdout(&o).contains(cmd), "{cmd}");
    }
    let o = cityos(&["simulate", "--seed", "banana"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("invalid value 'banana'"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_same_day_on_postgresql_gives_the_same_result() {
    let url = match std::env::var("CITYOS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "CITYOS_TEST_POSTGRES_URL is required"
            );
            eprintln!("skipping: CITYOS_TEST_POSTGRES_URL is not set");
            return;
        }
    };
    let schema = format!("cli_{}", std::process::id());
    cityos_engine::PostgresStore::drop_schema(&url, &schema).unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let pg = cityos(&[
        "simulate",
        "--seed",
        "9",
        "--reports",
        "300",
        "--json",
        "--db",
        &format!("{url}{sep}schema={schema}"),
    ]);
    let mem = cityos(&["simulate", "--seed", "9", "--reports", "300", "--json"]);
    cityos_engine::PostgresStore::drop_schema(&url, &schema).unwrap();
    assert!(pg.status.success(), "{}", stderr(&pg));
    assert_eq!(
        stdout(&pg),
        stdout(&mem),
        "PostgreSQL and SQLite store the same day identically"
    );
}

/// A minimal HTTP/1.1 exchange over a real socket.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn demo_serves_over_a_real_socket_and_stops_gracefully() {
    use std::io::BufRead;
    let dir = tmp("serve");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "demo",
            "--addr",
            &addr,
            "--data",
            dir.join("data").to_str().unwrap(),
            "--seed",
            "5",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
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
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/reports",
        None,
        Some(r#"{"category":"noise","lon":121.4454,"lat":31.2067,"text":"夜间施工噪声"}"#),
    );
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
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l == "cityos stopped"), "{rest:?}");
    let _ = std::fs::remove_dir_all(dir);
}

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
    let _ = std::fs::remove_dir_all(&dir);
}

/// `cityos serve` on PostgreSQL stops cleanly on SIGINT (it used to abort with "Cannot
/// start a runtime from within a runtime", exit 134, every time: the synchronous client's
/// connections were closed on an async thread).
#[test]
fn serve_on_postgresql_stops_cleanly() {
    use std::io::BufRead;
    let url = match std::env::var("CITYOS_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => {
            assert!(
                std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "CITYOS_TEST_POSTGRES_URL is required"
            );
            eprintln!("skipping: CITYOS_TEST_POSTGRES_URL is not set");
            return;
        }
    };
    let schema = format!("cli_stop_{}", std::process::id());
    cityos_engine::PostgresStore::drop_schema(&url, &schema).unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let dir = tmp("serve-pg");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "serve",
            "--addr",
            &addr,
            "--data",
            dir.to_str().unwrap(),
            "--database-url",
            &format!("{url}{sep}schema={schema}"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().starts_with("Ctrl-C") {
            break;
        }
    }
    let (s, b) = http(&addr, "GET", "/readyz", None, None);
    assert_eq!(s, 200, "{b}");
    let (s, b) = http(
        &addr,
        "POST",
        "/api/v1/reports",
        None,
        Some(r#"{"category":"noise","lon":121.4454,"lat":31.2067,"text":"夜间施工噪声"}"#),
    );
    assert_eq!(s, 201, "{b}");
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    cityos_engine::PostgresStore::drop_schema(&url, &schema).unwrap();
    let _ = std::fs::remove_dir_all(dir);
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}
