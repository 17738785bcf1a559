//! `cityos bench api` and `cityos bench query`: the service measured over a real
//! loopback socket with keep-alive HTTP/1.1 clients (a minimal client written here, so
//! the measurement includes only the server's work plus the client's own parsing).
//!
//! * `api` — concurrent clients POST reports; throughput and latency percentiles.
//! * `query` — a store filled with N cases (through the engine, in large batches), then
//!   the case list with assorted filters and the stats endpoint; latency percentiles.

use cityos_core::case::Channel;
use cityos_core::rng::Rng;
use cityos_core::time::{Millis, MINUTE};
use cityos_core::workflow::NewReport;
use cityos_engine::config::Config;
use cityos_engine::engine::Request;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{seed_demo_accounts, Database, Service, DEMO_PASSWORD};
use cityos_server::{app, Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection.
pub(crate) struct Conn {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(addr: &str) -> Conn {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Conn {
            s,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Sends a request and reads the whole response; returns (status, body).
    pub(crate) async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.s.write_all(req.as_bytes()).await.expect("write");
        self.buf.clear();
        let mut tmp = [0u8; 16 * 1024];
        loop {
            let n = self.s.read(&mut tmp).await.expect("read");
            assert!(n > 0, "server closed the connection");
            self.buf.extend_from_slice(&tmp[..n]);
            if let Some(h) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..h]).to_string();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|x| x.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while self.buf.len() < h + 4 + len {
                    let n = self.s.read(&mut tmp).await.expect("read");
                    assert!(n > 0, "server closed the connection");
                    self.buf.extend_from_slice(&tmp[..n]);
                }
                return (
                    status,
                    String::from_utf8_lossy(&self.buf[h + 4..h + 4 + len]).to_string(),
                );
            }
        }
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

pub(crate) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

pub(crate) fn temp_dir(name: &str, keep: &Option<PathBuf>) -> PathBuf {
    let d = keep.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cityos-bench-{name}-{}", std::process::id()))
    });
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench directory");
    d
}

pub(crate) async fn serve(svc: &Service) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let router = app(svc.state.clone());
    let h = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (addr, h)
}

pub(crate) fn report_bodies(cfg: &Config, n: usize) -> Vec<String> {
    let pts = super::points(cfg, n, 3);
    let mut rng = Rng::new(5);
    let cats: Vec<_> = cfg
        .taxonomy
        .categories
        .iter()
        .filter(|c| c.public)
        .collect();
    pts.iter()
        .enumerate()
        .map(|(i, p)| {
            let c = cats[rng.below(cats.len() as u64) as usize];
            serde_json::json!({"category": c.code, "lon": p[0], "lat": p[1], "text": format!("{}（压测 {i}）", c.name_zh), "contact": "13800000000"}).to_string()
        })
        .collect()
}

pub fn api(reports: usize, clients: usize, json: bool, dir: Option<PathBuf>) -> Result<(), String> {
    let cfg = Config::xuhui();
    let d = temp_dir("api", &dir);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // The clients are a citizens' app with its token, as in production: anonymous
    // reports are limited per address.
    let key = TokenKey::random();
    let app = Arc::new(key.sign(&cityos_server::http::auth::Principal {
        name: "bench-citizen-app".into(),
        role: cityos_core::Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    }));
    let svc = Service::start(cfg.clone(), &Database::Sqlite(d.clone()), clock, key, 4)
        .map_err(|e| e.to_string())?;
    let bodies = Arc::new(report_bodies(&cfg, reports));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (lat, secs, errors) = rt.block_on(async {
        let (addr, server) = serve(&svc).await;
        // Warm up the connections.
        let mut conns = Vec::new();
        for _ in 0..clients {
            let mut c = Conn::open(&addr).await;
            let _ = c.call("GET", "/healthz", None, "").await;
            conns.push(c);
        }
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let (bodies, next, app) = (bodies.clone(), next.clone(), app.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0usize;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= bodies.len() {
                            break;
                        }
                        let t = Instant::now();
                        let (status, _) = c
                            .call("POST", "/api/v1/reports", Some(app.as_str()), &bodies[i])
                            .await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        if status != 201 && status != 200 {
                            errors += 1;
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let mut all = Vec::new();
        let mut errors = 0;
        for t in tasks {
            let (l, e) = t.await.expect("client task");
            all.extend(l);
            errors += e;
        }
        let secs = started.elapsed().as_secs_f64();
        server.abort();
        (all, secs, errors)
    });
    drop(rt);
    let loop_stats = svc.stop();
    if dir.is_none() {
        let _ = std::fs::remove_dir_all(&d);
    }
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    let mut lat = lat;
    lat.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let per_s = lat.len() as f64 / secs;
    println!("{} reports over {clients} keep-alive connections in {secs:.2} s (SQLite, synchronous=FULL)", lat.len());
    if let Some(l) = loop_stats {
        println!(
            "engine: {} batches, {:.1} requests per batch on average, largest {}",
            l.batches,
            l.requests as f64 / l.batches.max(1) as f64,
            l.largest_batch
        );
    }
    println!("throughput {per_s:.0} reports/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms", pct(&lat, 0.5), pct(&lat, 0.9), pct(&lat, 0.99), pct(&lat, 1.0));
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "api", "reports_per_s": per_s.round(), "p99_ms": (pct(&lat, 0.99) * 100.0).round() / 100.0})
        );
    }
    Ok(())
}

/// Fills a store with `n` cases through the engine (large batches, fast durability).
fn fill(cfg: &Config, d: &std::path::Path, n: usize, seed: u64) -> Result<(), String> {
    let store =
        SqliteStore::open(&d.join("cityos.db"), Durability::Normal).map_err(|e| e.to_string())?;
    let mut engine = cfg.engine(Box::new(store)).map_err(|e| e.to_string())?;
    let pts = super::points(cfg, 100_000, 9);
    let mut rng = Rng::new(17 + seed);
    let cats = &cfg.taxonomy.categories;
    let now = SystemClock.now();
    let t0 = now - 30 * 24 * 60 * MINUTE;
    let started = Instant::now();
    let mut done = 0;
    while done < n {
        let batch: Vec<Request> = (0..(n - done).min(5000))
            .map(|k| {
                let i = done + k;
                let mut p = pts[rng.below(pts.len() as u64) as usize];
                let c = &cats[rng.below(cats.len() as u64) as usize];
                // Jitter so that few reports merge (the store ends with about n cases),
                // keeping the point inside the territory.
                let q = [
                    p[0] + rng.range_f64(-0.0005, 0.0005),
                    p[1] + rng.range_f64(-0.0005, 0.0005),
                ];
                if cfg.territory.locate(q[0], q[1]).is_ok() {
                    p = q;
                }
                Request::Report(NewReport {
                    channel: [Channel::Citizen, Channel::Inspector, Channel::Sensor][i % 3],
                    category: c.code.clone(),
                    lon: p[0],
                    lat: p[1],
                    text: format!("{}（{i}）", c.name_zh),
                    contact: None,
                    at: t0 + (i as Millis) * (30 * 24 * 60 * MINUTE) / n as Millis,
                    media: Vec::new(),
                    priority: None,
                    playbook: None,
                    suggestion: None,
                })
            })
            .collect();
        done += batch.len();
        for a in engine.execute(batch) {
            a.map_err(|e| e.to_string())?;
        }
        if done % 100_000 < 5000 {
            eprintln!(
                "  filled {done} reports ({:.0}/s)",
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}

pub fn query(cases: usize, rounds: usize, json: bool, dir: Option<PathBuf>) -> Result<(), String> {
    let cfg = Config::xuhui();
    let d = dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("cityos-bench-query-{cases}")));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    let stored_cases = || {
        SqliteStore::open(&d.join("cityos.db"), Durability::Normal)
            .and_then(|mut s| {
                use cityos_engine::CaseStore;
                s.counts()
            })
            .map(|c| c.cases as usize)
            .unwrap_or(0)
    };
    // Some reports merge into existing cases: file more until the store holds `cases`.
    let mut have = stored_cases();
    if have >= cases {
        println!("reusing {} ({have} cases)", d.display());
    }
    while have < cases {
        let more = (cases - have).max(1000);
        println!(
            "filling {} ({have} cases) with {more} reports through the engine …",
            d.display()
        );
        fill(&cfg, &d, more, have as u64)?;
        have = stored_cases();
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let svc = Service::start(
        cfg.clone(),
        &Database::Sqlite(d.clone()),
        clock.clone(),
        TokenKey::random(),
        4,
    )
    .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stored = rt
        .block_on(svc.state.0.reads.run(|s| s.counts()))
        .map_err(|e| e.detail)?
        .map_err(|e| e.to_string())?;
    let (list, stats) = rt.block_on(async {
        let now = clock.now();
        svc.state
            .0
            .reads
            .run(move |s| seed_demo_accounts(s, now))
            .await
            .expect("pool")
            .expect("seed");
        let (addr, server) = serve(&svc).await;
        let mut c = Conn::open(&addr).await;
        let (_, b) = c
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                &format!(r#"{{"username":"zhang.district","password":"{DEMO_PASSWORD}"}}"#),
            )
            .await;
        let token = serde_json::from_str::<serde_json::Value>(&b).expect("login")["token"]
            .as_str()
            .expect("token")
            .to_string();
        let queries = [
            "/api/v1/cases?limit=50",
            "/api/v1/cases?state=reported,filed&limit=50",
            "/api/v1/cases?region=310104003&sort=created&order=desc&limit=50",
            "/api/v1/cases?domain=safety&priority=high&limit=50",
            "/api/v1/cases?overdue=true&limit=50",
            "/api/v1/cases?department=dist-roads&limit=50",
            "/api/v1/cases?category=noise&sort=updated&order=desc&limit=50",
            "/api/v1/cases?region=310104003001&limit=50",
        ];
        let mut list = Vec::new();
        let mut worst: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
        for r in 0..rounds {
            for q in &queries {
                let t = Instant::now();
                let (s, b) = c.call("GET", q, Some(&token), "").await;
                assert_eq!(s, 200, "{q}: {b}");
                if r > 0 {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    list.push(ms);
                    worst.entry(*q).or_default().push(ms);
                }
            }
        }
        let mut stats = Vec::new();
        for r in 0..rounds.div_ceil(2) + 1 {
            for q in ["/api/v1/stats", "/api/v1/stats?region=310104003"] {
                let t = Instant::now();
                let (s, b) = c.call("GET", q, Some(&token), "").await;
                assert_eq!(s, 200, "{q}: {b}");
                if r > 0 {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    stats.push(ms);
                    worst.entry(q).or_default().push(ms);
                }
            }
        }
        server.abort();
        for (q, mut t) in worst {
            t.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
            println!(
                "  {q}: p50 {:.2} ms, max {:.2} ms",
                pct(&t, 0.5),
                t.last().copied().unwrap_or(0.0)
            );
        }
        (list, stats)
    });
    drop(rt);
    svc.stop();
    let (mut list, mut stats) = (list, stats);
    list.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    stats.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    println!("{} cases stored", stored.cases);
    println!(
        "case list (8 filter mixes): p50 {:.2} ms, p99 {:.2} ms over {} requests",
        pct(&list, 0.5),
        pct(&list, 0.99),
        list.len()
    );
    println!(
        "stats (district, sub-district): p50 {:.2} ms, p99 {:.2} ms over {} requests",
        pct(&stats, 0.5),
        pct(&stats, 0.99),
        stats.len()
    );
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "query", "cases": stored.cases, "list_p99_ms": (pct(&list, 0.99) * 100.0).round() / 100.0, "stats_p99_ms": (pct(&stats, 0.99) * 100.0).round() / 100.0})
        );
    }
    Ok(())
}
