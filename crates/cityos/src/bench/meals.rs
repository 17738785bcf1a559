//! `cityos bench meals`: the 11:00 peak of 为老助餐 — the demo's elders (3,000 by default)
//! with their opening balances, then `orders` orders (5,000) placed over loopback HTTP by
//! concurrent keep-alive clients (the proxy desks and the elders' phones) through
//! `POST /api/v1/meals/orders` — subsidy, cut-off, capacity and balance checked, the
//! order and its ledger entry written in one SQLite transaction (`synchronous=FULL`)
//! before the answer. Lunches of today and the next two days so the canteens' capacity
//! holds them. Orders arrive paced at `rate` per second (60 by default, seven times the
//! issue's peak of 5,000 in 10 minutes) and each one's latency counts from its arrival,
//! so a wait for a busy connection is latency too; `--rate 0` sends as fast as the
//! clients can (the saturation throughput, where latency is mostly queueing).
//!
//! With `--page`, then the elder's page (`/ui/meals.html`, signed in as `elder_demo`) in
//! headless Chromium over WebDriver on a throttled **slow-4G** profile (chromedriver's
//! `/session/{id}/chromium/network_conditions`: 562.5 ms latency, 1.44 Mbit/s down,
//! 0.675 Mbit/s up — Lighthouse's slow 4G, 150 ms RTT × 3.75 and 1.6 Mbit/s × 0.9 —, the
//! browser cache off): from the navigation until the home screen is usable (the usual
//! meal's button shown), and the bytes transferred once the page has settled (the
//! document, scripts, style and API answers, as Chromium's resource timing counts them).

use super::api::{pct, serve, Conn};
use cityos_core::time::{local, local_date, Date, HOUR};
use cityos_engine::config::Config;
use cityos_server::http::auth::{Principal, TokenKey};
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, ManualClock};
use std::sync::Arc;
use std::time::Instant;

pub fn meals(
    orders: usize,
    elders: usize,
    clients: usize,
    rate: f64,
    page: bool,
    json: bool,
) -> Result<(), String> {
    let cfg = Config::xuhui();
    let dir = std::env::temp_dir().join(format!("cityos-bench-meals-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    // 07:00 of a working day: every lunch still open.
    let day = local_date(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
    );
    let now = local(day, 7, 0);
    let clock = Arc::new(ManualClock::new(now));
    let key = TokenKey::random();
    let token = Arc::new(key.sign(&Principal {
        name: "bench-desk".into(),
        role: cityos_core::Role::DistrictOfficer,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    }));
    // The elder's own account (the demo's `elder_demo`, linked to the first elder), for
    // the page: signed in by the cookie the login page would set.
    let elder_token = key.sign(&Principal {
        name: "elder_demo".into(),
        role: cityos_core::Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    });
    let c: Arc<dyn Clock> = clock.clone();
    let svc = Service::start(cfg.clone(), &Database::Sqlite(dir.clone()), c, key, 4)
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let seed = cityos_sim::meals::seed(&cfg.territory, elders, now);
    let ids: Vec<(String, String)> = seed
        .elders
        .iter()
        .map(|e| (e.id.clone(), e.canteen.clone()))
        .collect();
    let res = rt.block_on(async {
        let n = cityos_server::meals::demo::seed(&svc.state, seed, now).await.map_err(|e| e.detail)?;
        println!("seeded {n} elders, 9 canteens, 49 meal points, menus for 9 days");
        let (addr, server) = serve(&svc).await;
        let bodies: Arc<Vec<String>> = Arc::new(
            (0..orders)
                .map(|i| {
                    let (e, c) = &ids[i % ids.len()];
                    let d = Date::from_days(day.days() + (i / ids.len()) as i64 % 3);
                    serde_json::json!({"elder": e, "canteen": c, "date": d.to_string(), "meal": "lunch",
                        "lines": [{"dish": format!("L{}", 1 + i % 5), "qty": 1}], "round": "pickup", "key": format!("bench-{i}")})
                    .to_string()
                })
                .collect(),
        );
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let mut conn = Conn::open(&addr).await;
            let (bodies, next, token) = (bodies.clone(), next.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= bodies.len() {
                        break;
                    }
                    // Paced: order i arrives at start + i / rate, and its latency counts
                    // from then (a busy connection's wait is latency too).
                    let t = if rate > 0.0 {
                        let due = started + std::time::Duration::from_secs_f64(i as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    } else {
                        Instant::now()
                    };
                    let (status, _) = conn.call("POST", "/api/v1/meals/orders", Some(&token), &bodies[i]).await;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    *statuses.entry(status).or_default() += 1;
                }
                (lat, statuses)
            }));
        }
        let mut lat = Vec::new();
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        for t in tasks {
            let (l, s) = t.await.map_err(|e| e.to_string())?;
            lat.extend(l);
            for (k, v) in s {
                *statuses.entry(k).or_default() += v;
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let page = if page {
            let a = addr.to_string();
            let tok = elder_token.clone();
            Some(tokio::task::spawn_blocking(move || elder_page(&a, &tok)).await.map_err(|e| e.to_string())??)
        } else {
            None
        };
        server.abort();
        Ok::<_, String>((lat, statuses, secs, page))
    });
    drop(rt);
    clock.advance(HOUR);
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (mut lat, statuses, secs, page) = res?;
    if statuses.keys().any(|s| *s >= 500) {
        return Err(format!("server errors: {statuses:?}"));
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let placed = statuses.get(&201).copied().unwrap_or(0);
    let per_s = lat.len() as f64 / secs;
    let pacing = if rate > 0.0 {
        format!("arriving {rate:.0}/s")
    } else {
        "unpaced".to_string()
    };
    println!("{} orders ({pacing}) over {clients} keep-alive connections in {secs:.2} s (SQLite, synchronous=FULL); answers by status {statuses:?} (409: a canteen's lunch full or a balance spent — refused kindly, nothing charged)", lat.len());
    println!("throughput {per_s:.0} orders/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", pct(&lat, 0.5), pct(&lat, 0.9), pct(&lat, 0.99), pct(&lat, 1.0));
    println!(
        "the issue's peak: 5,000 orders in 10 minutes is {:.1} orders/s",
        5000.0 / 600.0
    );
    if let Some((kb, ms)) = &page {
        println!("the elder's page on slow 4G (cache off): {kb:.1} KB transferred, usable after {ms:.0} ms (median of 3 loads)");
    }
    if json {
        let mut v = serde_json::json!({"bench": "meals", "orders": lat.len(), "placed": placed, "orders_per_s": per_s.round(), "p99_ms": (pct(&lat, 0.99) * 100.0).round() / 100.0});
        if let Some((kb, ms)) = page {
            v["page_kb"] = serde_json::json!((kb * 10.0).round() / 10.0);
            v["page_usable_ms"] = serde_json::json!(ms.round());
        }
        println!("{v}");
    }
    Ok(())
}

/// The elder's page on throttled slow 4G: (KB transferred, ms to usable), the median of
/// three loads with the cache off.
fn elder_page(addr: &str, token: &str) -> Result<(f64, f64), String> {
    use super::ui::wd;
    use serde_json::json;
    use std::time::Duration;
    let (mut driver, w) = super::ui::chromedriver()?;
    let r = (|| -> Result<(f64, f64), String> {
        let caps = json!({"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=360,740"]}}}});
        let session = wd(&w, "POST", "/session", Some(caps))?["sessionId"]
            .as_str()
            .ok_or("no session")?
            .to_string();
        let s = format!("/session/{session}");
        let base = format!("http://{addr}");
        let exec = |script: &str, args: serde_json::Value| {
            wd(
                &w,
                "POST",
                &format!("{s}/execute/sync"),
                Some(json!({"script": script, "args": args})),
            )
        };
        wd(
            &w,
            "POST",
            &format!("{s}/url"),
            Some(json!({"url": format!("{base}/ui/login.html")})),
        )?;
        exec("document.cookie = 'cityos_session=' + arguments[0] + '; path=/; samesite=strict'; localStorage.setItem('cityos.user', JSON.stringify({username: 'elder_demo', role: 'citizen', display_name: '测试老人'})); return true", json!([token]))?;
        wd(
            &w,
            "POST",
            &format!("{s}/goog/cdp/execute"),
            Some(json!({"cmd": "Network.setCacheDisabled", "params": {"cacheDisabled": true}})),
        )?;
        wd(
            &w,
            "POST",
            &format!("{s}/chromium/network_conditions"),
            Some(json!({"network_conditions": {
            "offline": false, "latency": 562.5, "download_throughput": 1_638_400.0 * 0.9 / 8.0, "upload_throughput": 750_000.0 * 0.9 / 8.0}})),
        )?;
        let mut loads = Vec::new();
        let mut kb = 0.0;
        for _ in 0..3 {
            let t = Instant::now();
            wd(
                &w,
                "POST",
                &format!("{s}/url"),
                Some(json!({"url": format!("{base}/ui/meals.html")})),
            )?;
            loop {
                let ok = exec("return !document.getElementById('s-home').hidden && !document.getElementById('usual').hidden", json!([]))?;
                if ok == json!(true) {
                    break;
                }
                if t.elapsed() > Duration::from_secs(60) {
                    return Err("the elder's page was not usable within 60 s".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            loads.push(t.elapsed().as_secs_f64() * 1000.0);
            // Settled: the usual's dish names in (the menu read after the screen showed).
            std::thread::sleep(Duration::from_secs(4));
            let bytes = exec("const n = performance.getEntriesByType('navigation')[0]; return [n].concat(performance.getEntriesByType('resource')).reduce((a, e) => a + (e.transferSize || 0), 0)", json!([]))?;
            kb = bytes.as_f64().unwrap_or(0.0) / 1024.0;
        }
        let _ = wd(&w, "DELETE", &s, None);
        loads.sort_by(f64::total_cmp);
        Ok((kb, loads[1]))
    })();
    let _ = driver.kill();
    let _ = driver.wait();
    r
}
