//! `cityos bench ui`: the command centre in headless Chromium with many open cases —
//! from navigating to `/ui/centre.html` until the map has its markers, the four vital-sign
//! tiles and today's figures. Needs `chromium` and `chromedriver` on the PATH; speaks W3C
//! WebDriver over plain HTTP (a blocking exchange per command).

use cityos_core::Role;
use cityos_engine::config::Config;
use cityos_server::http::auth::{Principal, TokenKey};
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, SystemClock};
use serde_json::{json, Value};
use std::io::{BufRead, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One WebDriver command: (status, the answer's `value`).
pub(crate) fn wd(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("chromedriver: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .map_err(|e| e.to_string())?;
    let mut r = std::io::BufReader::new(s);
    let (mut status, mut length) = (0u16, 0usize);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).map_err(|e| e.to_string())? == 0 || line == "\r\n" {
            break;
        }
        let l = line.to_ascii_lowercase();
        if l.starts_with("http/") {
            status = l
                .split(' ')
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
        } else if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut raw = vec![0; length];
    r.read_exact(&mut raw).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("{method} {path}: {status} {v}"));
    }
    Ok(v["value"].clone())
}

pub fn ui(reports: usize, rounds: usize, json_out: bool) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("cityos-bench-ui-{}", std::process::id()));
    // Fill the store: reports over HTTP (every one stays open).
    super::api::api(reports, 64, true, Some(dir.clone()))?;
    let key = TokenKey::random();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let now = clock.now();
    let svc = Service::start(
        Config::xuhui(),
        &Database::Sqlite(dir.clone()),
        clock,
        key.clone(),
        4,
    )
    .map_err(|e| e.to_string())?;
    let token = key.sign(&Principal {
        name: "bench-ui".into(),
        role: Role::DistrictOfficer,
        department: None,
        scope: None,
        channel: None,
        expires_at: now + cityos_core::time::HOUR,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (addr, _server) = rt.block_on(super::api::serve(&svc));
    let (mut driver, wd_addr) = chromedriver()?;
    let result = (|| -> Result<(i64, Vec<f64>), String> {
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1920,1080"]}}}});
        let session = wd(&wd_addr, "POST", "/session", Some(caps))?["sessionId"]
            .as_str()
            .ok_or("no session")?
            .to_string();
        let s = format!("/session/{session}");
        let base = format!("http://{addr}");
        wd(
            &wd_addr,
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("{base}/ui/login.html")})),
        )?;
        wd(
            &wd_addr,
            "POST",
            &format!("{s}/execute/sync"),
            Some(
                json!({"script": "document.cookie = 'cityos_session=' + arguments[0] + '; path=/; samesite=strict'; localStorage.setItem('cityos.user', JSON.stringify({username: 'bench-ui', role: 'district_officer', display_name: 'bench'})); return true", "args": [token]}),
            ),
        )?;
        let ready = "return document.querySelectorAll('#map .marker').length >= Math.min(300, arguments[0]) && document.querySelectorAll('#tiles .tile').length === 4 && document.querySelectorAll('#figures .figure').length >= 5";
        let mut times = Vec::new();
        let mut open = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            wd(
                &wd_addr,
                "POST",
                &format!("{s}/url"),
                Some(json!({"url": format!("{base}/ui/centre.html")})),
            )?;
            loop {
                let ok = wd(
                    &wd_addr,
                    "POST",
                    &format!("{s}/execute/sync"),
                    Some(json!({"script": ready, "args": [reports]})),
                )?;
                if ok == json!(true) {
                    break;
                }
                if t.elapsed() > Duration::from_secs(30) {
                    return Err("the command centre was not ready within 30 s".into());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            open = wd(&wd_addr, "POST", &format!("{s}/execute/sync"), Some(json!({"script": "return Number(document.querySelectorAll('#figures .figure .v')[5].textContent)", "args": []})))?
                .as_i64()
                .unwrap_or(0);
        }
        let _ = wd(&wd_addr, "DELETE", &s, None);
        Ok((open, times))
    })();
    let _ = driver.kill();
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (open, mut times) = result?;
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let max = *times.last().unwrap_or(&0.0);
    if !json_out {
        println!("ui: the command centre with {open} open cases, {rounds} loads: median {median:.0} ms, slowest {max:.0} ms");
    }
    println!(
        "{}",
        json!({"bench": "ui", "open_cases": open, "usable_ms_median": median.round(), "usable_ms_max": max.round()})
    );
    Ok(())
}

/// Starts chromedriver on a free port and waits (up to 20 s) until it listens: the child
/// (to kill) and its address.
pub(crate) fn chromedriver() -> Result<(std::process::Child, String), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let driver = std::process::Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| format!("chromedriver (apt-get install chromium chromium-driver): {e}"))?;
    let addr = format!("127.0.0.1:{port}");
    let t = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() && t.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((driver, addr))
}
