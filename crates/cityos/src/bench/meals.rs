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
        server.abort();
        Ok::<_, String>((lat, statuses, secs))
    });
    drop(rt);
    clock.advance(HOUR);
    svc.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let (mut lat, statuses, secs) = res?;
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
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "meals", "orders": lat.len(), "placed": placed, "orders_per_s": per_s.round(), "p99_ms": (pct(&lat, 0.99) * 100.0).round() / 100.0})
        );
    }
    Ok(())
}
