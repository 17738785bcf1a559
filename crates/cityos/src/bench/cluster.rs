//! `cityos bench cluster`: API intake on PostgreSQL with one, two, three… real
//! `cityos serve --node …` processes on one database (the same clients, spread round
//! robin over the nodes; a write for a partition another node holds is forwarded), and
//! the failover time: `kill -9` of one node until every partition is held again by the
//! others.
//!
//! Each node count runs on a fresh schema of the database (`--database-url`, default
//! `CITYOS_TEST_POSTGRES_URL` or the local `test` database), dropped afterwards.

use super::api::{pct, report_bodies, Conn};
use cityos_engine::config::Config;
use cityos_engine::engine::Partitioning;
use cityos_engine::{ClusterStore, PostgresStore};
use cityos_server::http::auth::TokenKey;
use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The lease time of the benchmark's nodes (the failover is about 1.25 × this).
const LEASE_MS: i64 = 2_000;

struct Node {
    name: String,
    addr: String,
    child: Child,
}

fn free_addr() -> Result<String, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.to_string())
}

fn start(
    name: &str,
    url: &str,
    dir: &std::path::Path,
    key: &str,
    nats: Option<&(String, String)>,
) -> Result<Node, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let addr = free_addr()?;
    let data = dir.join(name);
    std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
    let child = Command::new(exe)
        .args([
            "serve",
            "--addr",
            &addr,
            "--data",
            data.to_str().ok_or("a UTF-8 temporary directory")?,
            "--database-url",
            url,
            "--node",
            name,
            "--lease-ms",
            &LEASE_MS.to_string(),
        ])
        .args(
            nats.map(|(u, s)| vec!["--nats-url", u.as_str(), "--nats-stream", s.as_str()])
                .unwrap_or_default(),
        )
        .env("CITYOS_TOKEN_KEY", key)
        .env_remove("CITYOS_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start a node: {e}"))?;
    Ok(Node {
        name: name.into(),
        addr,
        child,
    })
}

fn healthy(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

/// Waits until every partition is held by one of `alive` and each of them holds some;
/// how long it took.
fn wait_held(
    s: &mut PostgresStore,
    all: usize,
    alive: &[String],
    limit: Duration,
) -> Result<Duration, String> {
    let t = Instant::now();
    loop {
        let leases = s.leases().map_err(|e| e.to_string())?;
        let held: Vec<_> = leases.iter().filter(|l| l.remaining_ms > 0).collect();
        let owners: BTreeSet<&str> = held.iter().map(|l| l.owner.as_str()).collect();
        if held.len() == all
            && held.iter().all(|l| alive.contains(&l.owner))
            && alive.iter().all(|a| owners.contains(a.as_str()))
        {
            return Ok(t.elapsed());
        }
        if t.elapsed() > limit {
            return Err(format!(
                "the partitions were not held by {alive:?} within {limit:?}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(nodes: Vec<Node>) {
    for mut n in nodes {
        let _ = n.child.kill();
        let _ = n.child.wait();
    }
}

/// One node count: throughput over `reports` keyed-less reports; with `failover`, then
/// the time from `kill -9` of a node until the others hold every partition.
fn run(
    n: usize,
    base: &str,
    reports: usize,
    clients: usize,
    failover: bool,
    cfg: &Config,
    nats_url: Option<&str>,
) -> Result<(f64, f64, Option<f64>), String> {
    // With NATS: a stream of this run's own (and its readings queue), deleted afterwards.
    let nats = nats_url.map(|u| {
        (
            u.to_string(),
            format!("BENCH_CLUSTER_{}_{n}", std::process::id()),
        )
    });
    let schema = format!("bench_cluster_{}_{n}", std::process::id());
    PostgresStore::drop_schema(base, &schema).map_err(|e| format!("PostgreSQL: {e}"))?;
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let key = TokenKey::random();
    let token = Arc::new(key.sign(&cityos_server::http::auth::Principal {
        name: "bench-citizen-app".into(),
        role: cityos_core::Role::Citizen,
        department: None,
        scope: None,
        channel: None,
        expires_at: i64::MAX,
    }));
    let dir = std::env::temp_dir().join(format!("cityos-bench-cluster-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // The first node migrates the fresh schema; the others start once it answers.
    let mut nodes = Vec::new();
    for i in 0..n {
        let node = start(
            &format!("b{}", i + 1),
            &url,
            &dir,
            &key.to_hex(),
            nats.as_ref(),
        )?;
        let t = Instant::now();
        while !healthy(&node.addr) {
            if t.elapsed() > Duration::from_secs(60) {
                stop(vec![node]);
                stop(nodes);
                return Err("a node did not start within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        nodes.push(node);
    }
    let mut store = PostgresStore::connect(base, Some(&schema)).map_err(|e| e.to_string())?;
    let all = Partitioning::Subdistrict.all(&cfg.territory).len();
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    if let Err(e) = wait_held(&mut store, all, &names, Duration::from_secs(30)) {
        stop(nodes);
        return Err(e);
    }
    let bodies = Arc::new(report_bodies(cfg, reports));
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (lat, secs, errors) = rt.block_on(async {
        let mut conns = Vec::new();
        for c in 0..clients {
            let mut conn = Conn::open(&addrs[c % addrs.len()]).await;
            let _ = conn.call("GET", "/healthz", None, "").await;
            conns.push(conn);
        }
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = conns
            .into_iter()
            .map(|mut c| {
                let (bodies, next, token) = (bodies.clone(), next.clone(), token.clone());
                tokio::spawn(async move {
                    let (mut lat, mut errors) = (Vec::new(), 0usize);
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= bodies.len() {
                            break;
                        }
                        let t = Instant::now();
                        let (status, _) = c
                            .call("POST", "/api/v1/reports", Some(token.as_str()), &bodies[i])
                            .await;
                        if status == 200 || status == 201 {
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        } else {
                            errors += 1;
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut all, mut errors) = (Vec::new(), 0);
        for t in tasks {
            let (l, e) = t.await.expect("client task");
            all.extend(l);
            errors += e;
        }
        (all, started.elapsed().as_secs_f64(), errors)
    });
    drop(rt);
    let mut lat = lat;
    lat.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let per_s = lat.len() as f64 / secs;
    println!(
        "{n} node(s): {} reports in {secs:.2} s over {clients} connections — {per_s:.0} reports/s, p50 {:.1} ms, p99 {:.1} ms, {errors} refused",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    let mut fail = None;
    if failover && n >= 2 {
        let mut victim = nodes.remove(0);
        let killed = Instant::now();
        let _ = victim.child.kill();
        let _ = victim.child.wait();
        let rest: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let r = wait_held(&mut store, all, &rest, Duration::from_secs(30));
        let took = killed.elapsed();
        match r {
            Ok(_) => {
                println!(
                    "failover: kill -9 of {} → every partition held by {rest:?} after {:.2} s (leases of {LEASE_MS} ms)",
                    victim.name,
                    took.as_secs_f64()
                );
                fail = Some(took.as_secs_f64());
            }
            Err(e) => {
                stop(nodes);
                return Err(e);
            }
        }
    }
    stop(nodes);
    drop(store);
    let _ = PostgresStore::drop_schema(base, &schema);
    let _ = std::fs::remove_dir_all(&dir);
    if let Some((u, s)) = &nats {
        let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(u, s);
        let _ = cityos_server::runtime::readings::ReadingsQueue::delete(u, s);
    }
    Ok((per_s, pct(&lat, 0.99), fail))
}

pub fn cluster(
    nodes: &str,
    reports: usize,
    clients: usize,
    database_url: Option<String>,
    nats_url: Option<String>,
    json: bool,
) -> Result<(), String> {
    if let Some(u) = &nats_url {
        cityos_server::runtime::jetstream::parse_url(u)?;
    }
    let counts: Vec<usize> = nodes
        .split(',')
        .map(|s| {
            s.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=8).contains(n))
                .ok_or_else(|| format!("--nodes {nodes:?}: each count must be 1 to 8, e.g. 1,2,3"))
        })
        .collect::<Result<_, _>>()?;
    let base = database_url
        .or_else(|| std::env::var("CITYOS_TEST_POSTGRES_URL").ok())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    if !base.starts_with("postgres://") && !base.starts_with("postgresql://") {
        return Err("--database-url must be postgres://… (several nodes share PostgreSQL)".into());
    }
    let cfg = Config::xuhui();
    let largest = counts.iter().copied().max().unwrap_or(1);
    let mut rows = Vec::new();
    let mut failover = None;
    for &n in &counts {
        let (per_s, p99, f) = run(
            n,
            &base,
            reports,
            clients,
            n == largest && failover.is_none(),
            &cfg,
            nats_url.as_deref(),
        )?;
        if f.is_some() {
            failover = f;
        }
        rows.push(serde_json::json!({"nodes": n, "reports_per_s": per_s.round(), "p99_ms": (p99 * 10.0).round() / 10.0}));
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "cluster", "nats": nats_url.is_some(), "nodes": rows, "failover_s": failover.map(|f| (f * 100.0).round() / 100.0)})
        );
    }
    Ok(())
}
