//! `cityos bench cluster`: API intake on PostgreSQL with one, two, three… real
//! `cityos serve --node …` processes on one database (the same clients, spread round
//! robin over the nodes; a write for a partition another node holds is forwarded), and
//! the failover time: `kill -9` of one node until every partition is held again by the
//! others.
//!
//! With `--nats-url` the nodes run their bus on NATS JetStream and hear the MQTT broker
//! (`CITYOS_TEST_MQTT_URL`, else 127.0.0.1:1883; a topic prefix of the run's own): then
//! also 20,000 readings published to the broker, every node handing each to the readings
//! work queue, timed until the holder of the singleton lease has applied them all.
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

/// MQTT readings sent through the readings work queue per node count (with NATS).
const READINGS: usize = 20_000;

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
        .args(
            nats.map(|_| vec!["--mqtt-url".to_string(), mqtt_url()])
                .unwrap_or_default(),
        )
        .env(
            "CITYOS_MQTT_PREFIX",
            nats.map_or(String::new(), |(_, s)| s.to_lowercase()),
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

/// The broker the nodes' bridges hear when the benchmark runs on NATS.
fn mqtt_url() -> String {
    std::env::var("CITYOS_TEST_MQTT_URL").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".into())
}

/// A JetStream API request over a plain connection: the answer's JSON.
fn js_info(url: &str, subject: &str) -> Result<serde_json::Value, String> {
    use std::io::{Read, Write};
    let addr = url
        .strip_prefix("nats://")
        .ok_or("--nats-url must be nats://")?;
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| format!("NATS: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.cityosbench 1\r\nPUB {subject} _INBOX.cityosbench 0\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        let n = s.read(&mut tmp).map_err(|e| format!("NATS: {e}"))?;
        if n == 0 {
            return Err("NATS closed the connection".into());
        }
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(i) = text.find("MSG _INBOX.cityosbench") {
            if let Some((head, body)) = text[i..].split_once("\r\n") {
                let len: usize = head
                    .split_whitespace()
                    .last()
                    .and_then(|l| l.parse().ok())
                    .ok_or("NATS sent a bad line")?;
                if body.len() >= len {
                    return serde_json::from_str(&body[..len]).map_err(|e| e.to_string());
                }
            }
        }
    }
}

/// Readings over MQTT through the readings work queue: `count` manhole readings (no
/// alarm: tilts under 10°) published to the broker every node hears, each node handing
/// each to the queue; readings/s until the holder has applied and acknowledged them all.
fn readings_through_queue(nats: &(String, String), count: usize) -> Result<f64, String> {
    let (url, stream) = nats;
    let queue = format!("$JS.API.STREAM.INFO.{stream}_READINGS");
    let state = |k: &str| -> Result<u64, String> {
        let v = js_info(url, &queue)?;
        Ok(v["state"][k].as_u64().unwrap_or(0))
    };
    let (host, port) = cityos_server::intake::sensor::mqtt::parse_url(&mqtt_url())?;
    let mut o = rumqttc::MqttOptions::new(
        format!("cityos-bench-cluster-{}", std::process::id()),
        host,
        port,
    );
    o.set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = rumqttc::Client::new(o, 10_000);
    let net = std::thread::spawn(move || {
        for e in conn.iter() {
            if e.is_err() {
                return;
            }
        }
    });
    // The bridges subscribe after the node starts: let them.
    std::thread::sleep(Duration::from_secs(2));
    let prefix = stream.to_lowercase();
    let now = cityos_server::Clock::now(&cityos_server::SystemClock) / 1000 * 1000;
    let at = cityos_core::time::format_rfc3339(now);
    let before = state("last_seq")?;
    let started = Instant::now();
    for i in 0..count {
        let payload = format!(
            r#"{{"metric":"tilt_deg","value":{},"at":"{at}"}}"#,
            (i % 10_000) as f64 / 1000.0
        );
        client
            .publish(
                format!("{prefix}/readings/MH-{:03}", 1 + i % 60),
                rumqttc::QoS::AtLeastOnce,
                false,
                payload,
            )
            .map_err(|e| e.to_string())?;
        // At most 500 on their way: the broker queues 1,000 messages per client (its
        // default) and drops what comes beyond for a bridge that lags.
        if i % 100 == 99 {
            let t = Instant::now();
            while state("last_seq")? + 400 < before + i as u64 {
                if t.elapsed() > Duration::from_secs(60) {
                    return Err("the readings queue stopped taking readings".into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let t = Instant::now();
    loop {
        if state("last_seq")? >= before + count as u64 && state("messages")? == 0 {
            break;
        }
        if t.elapsed() > Duration::from_secs(120) {
            return Err(format!(
                "the readings queue did not drain: {} of {count} stored",
                state("last_seq")? - before
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let per_s = count as f64 / started.elapsed().as_secs_f64();
    let _ = client.disconnect();
    let _ = net.join();
    Ok(per_s)
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
) -> Result<(f64, f64, Option<f64>, Option<f64>), String> {
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
    // The sub-districts and the singleton (the background jobs' lease).
    let all = Partitioning::Subdistrict.all(&cfg.territory).len() + 1;
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
                    let (mut lat, mut errors) = (Vec::new(), Refusals::default());
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= bodies.len() {
                            break;
                        }
                        let t = Instant::now();
                        let (status, body) = c
                            .call("POST", "/api/v1/reports", Some(token.as_str()), &bodies[i])
                            .await;
                        if status == 200 || status == 201 {
                            lat.push(t.elapsed().as_secs_f64() * 1000.0);
                        } else {
                            errors.add(status, &body);
                        }
                    }
                    (lat, errors)
                })
            })
            .collect();
        let (mut all, mut errors) = (Vec::new(), Refusals::default());
        for t in tasks {
            let (l, e) = t.await.expect("client task");
            all.extend(l);
            errors.merge(e);
        }
        (all, started.elapsed().as_secs_f64(), errors)
    });
    drop(rt);
    let mut lat = lat;
    lat.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    let per_s = lat.len() as f64 / secs;
    println!(
        "{n} node(s): {} reports in {secs:.2} s over {clients} connections — {per_s:.0} reports/s, p50 {:.1} ms, p99 {:.1} ms, {errors}",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    let readings = match &nats {
        Some(q) => {
            let r = readings_through_queue(q, READINGS);
            if let Err(e) = &r {
                stop(nodes);
                return Err(e.clone());
            }
            let r = r.unwrap_or_default();
            println!("{n} node(s): {READINGS} MQTT readings through the readings queue — {r:.0} readings/s");
            Some(r)
        }
        None => None,
    };
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
    Ok((per_s, pct(&lat, 0.99), fail, readings))
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
        let (per_s, p99, f, readings) = run(
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
        let mut row = serde_json::json!({"nodes": n, "reports_per_s": per_s.round(), "p99_ms": (p99 * 10.0).round() / 10.0});
        if let Some(r) = readings {
            row["readings_per_s"] = serde_json::json!(r.round());
        }
        rows.push(row);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "cluster", "nats": nats_url.is_some(), "nodes": rows, "failover_s": failover.map(|f| (f * 100.0).round() / 100.0)})
        );
    }
    Ok(())
}

/// The reports the nodes did not take (any answer but 200/201), by status, with the first
/// answer's body to say why.
#[derive(Default)]
struct Refusals {
    by_status: std::collections::BTreeMap<u16, usize>,
    first: Option<String>,
}

impl Refusals {
    fn add(&mut self, status: u16, body: &str) {
        *self.by_status.entry(status).or_default() += 1;
        if self.first.is_none() {
            self.first = Some(body.chars().take(200).collect());
        }
    }

    fn merge(&mut self, o: Refusals) {
        for (k, n) in o.by_status {
            *self.by_status.entry(k).or_default() += n;
        }
        if self.first.is_none() {
            self.first = o.first;
        }
    }
}

impl std::fmt::Display for Refusals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n: usize = self.by_status.values().sum();
        if n == 0 {
            return write!(f, "0 refused");
        }
        let by: Vec<String> = self
            .by_status
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect();
        write!(
            f,
            "{n} refused ({}; the first: {})",
            by.join(", "),
            self.first.as_deref().unwrap_or("")
        )
    }
}
