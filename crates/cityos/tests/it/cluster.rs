//! Several nodes (issue 20), with the real binary: three `cityos serve --node …` on one
//! PostgreSQL schema, keyed reports sent to every node (each forwards what another node
//! owns), `kill -9` of one node under that load — nothing acknowledged lost, nothing
//! doubled, its partitions taken over within 10 s — and a node paused (SIGSTOP) past its
//! lease that, resumed, loses its partitions and commits nothing under them.
//! With NATS JetStream (`--nats-url`, from `CITYOS_TEST_NATS_URL`): an SSE client on one
//! node sees every case event filed on another once, and resumes on a third node by
//! `Last-Event-ID` without a gap or a repeat; NATS unreachable at start is named.
//! PostgreSQL (and NATS) only; `.ci/run` fails unless these ran.

use crate::crash::{healthz, points, post, TOKEN_KEY};
use crate::support::{free_addr, postgres};
use cityos_engine::{CaseStore, ClusterStore};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The lease time the nodes run with: a stopped node's partitions move within about
/// 1.25 × this.
const LEASE_MS: u64 = 2_000;
const TAKEOVER_LIMIT: Duration = Duration::from_secs(10);

struct Node {
    name: String,
    addr: String,
    child: Child,
    log: PathBuf,
}

/// A node left running by a failed test is killed (a passing test stops its nodes
/// itself, gracefully).
impl Drop for Node {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn start(name: &str, dir: &Path, db: &str) -> Node {
    start_with(name, dir, db, &[])
}

fn start_with(name: &str, dir: &Path, db: &str, extra: &[&str]) -> Node {
    start_env(name, dir, db, extra, &[])
}

fn start_env(name: &str, dir: &Path, db: &str, extra: &[&str], env: &[(&str, &str)]) -> Node {
    let data = dir.join(name);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("token.key"), TOKEN_KEY).unwrap();
    let addr = free_addr();
    let log = data.join("stderr.log");
    let child = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "serve",
            "--addr",
            &addr,
            "--data",
            data.to_str().unwrap(),
            "--database-url",
            db,
            "--node",
            name,
            "--lease-ms",
            &LEASE_MS.to_string(),
        ])
        .args(extra)
        .env_remove("CITYOS_DATABASE_URL")
        .env_remove("CITYOS_NATS_URL")
        .env_remove("CITYOS_CLOCK_SKEW_MS")
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start cityos serve");
    Node {
        name: name.into(),
        addr,
        child,
        log,
    }
}

fn wait_healthy(n: &mut Node) {
    let t = Instant::now();
    while !healthz(&n.addr) {
        if let Ok(Some(status)) = n.child.try_wait() {
            panic!(
                "node {} exited during start: {status}\n{}",
                n.name,
                std::fs::read_to_string(&n.log).unwrap_or_default()
            );
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "node {} did not start",
            n.name
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(n: &Node, sig: &str) {
    Command::new("kill")
        .args([sig, &n.child.id().to_string()])
        .status()
        .unwrap();
}

/// Who holds each partition now (unexpired leases only).
fn owners(s: &mut dyn cityos_engine::Store) -> BTreeMap<String, String> {
    s.leases()
        .unwrap()
        .into_iter()
        .filter(|l| l.remaining_ms > 0)
        .map(|l| (l.partition, l.owner))
        .collect()
}

/// Waits until every partition is held by one of `alive`, each holding some; how long.
fn wait_held(
    s: &mut dyn cityos_engine::Store,
    all: usize,
    alive: &[&str],
    limit: Duration,
) -> Duration {
    let t = Instant::now();
    loop {
        let o = owners(s);
        let by: BTreeSet<&str> = o.values().map(|v| v.as_str()).collect();
        if o.len() == all
            && o.values().all(|v| alive.contains(&v.as_str()))
            && alive.iter().all(|a| by.contains(a))
        {
            return t.elapsed();
        }
        assert!(
            t.elapsed() < limit,
            "partitions not held by {alive:?} within {limit:?}: {o:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[derive(Default)]
struct Ledger {
    bodies: BTreeMap<String, String>,
    acked: BTreeMap<String, i64>,
    pending: BTreeSet<String>,
    /// Answers that came from a node other than the one asked (forwarded).
    statuses: BTreeMap<u16, usize>,
}

fn send(addr: &str, key: &str, body: &str, ledger: &Mutex<Ledger>) {
    let answer = post(addr, "/api/v1/reports", key, body);
    let mut l = ledger.lock().unwrap();
    *l.statuses
        .entry(answer.as_ref().map_or(0, |a| a.0))
        .or_default() += 1;
    match answer {
        Some((200 | 201, a)) => {
            let v: serde_json::Value = serde_json::from_str(&a).expect("a JSON answer");
            let id = v["report_id"].as_i64().expect("a report id");
            if let Some(prev) = l.acked.insert(key.to_string(), id) {
                assert_eq!(prev, id, "key {key} answered with two reports");
            }
            l.pending.remove(key);
        }
        // 503: nothing written, try again; 502 `outcome_unknown`: forwarded to a node
        // killed before it answered — maybe written, so sent again with the same key
        // (which must then answer the one report).
        Some((503, _)) | None => {
            l.pending.insert(key.to_string());
        }
        Some((502, a)) if a.contains("outcome_unknown") => {
            l.pending.insert(key.to_string());
        }
        Some((status, a)) => panic!("key {key} at {addr}: {status} {a}"),
    }
}

/// Clients sending keyed reports all over the district, round robin over `addrs`.
fn load(
    addrs: Arc<Mutex<Vec<String>>>,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<AtomicBool>,
    tag: &'static str,
) -> Vec<std::thread::JoinHandle<()>> {
    let pts = Arc::new(points());
    (0..4)
        .map(|c| {
            let (addrs, ledger, stop, pts) =
                (addrs.clone(), ledger.clone(), stop.clone(), pts.clone());
            std::thread::spawn(move || {
                let mut i = 0usize;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("{tag}-{c}-{i}");
                    let p = pts[(c * 13 + i * 7) % pts.len()];
                    let category = ["noise", "street_vending", "exposed_garbage"][(c + i) % 3];
                    let body = serde_json::json!({
                        "category": category,
                        "lon": p[0],
                        "lat": p[1],
                        "text": format!("集群测试 {key}"),
                    })
                    .to_string();
                    ledger
                        .lock()
                        .unwrap()
                        .bodies
                        .insert(key.clone(), body.clone());
                    let addr = {
                        let a = addrs.lock().unwrap();
                        a[(c + i) % a.len()].clone()
                    };
                    send(&addr, &key, &body, &ledger);
                    i += 1;
                }
            })
        })
        .collect()
}

/// Retries every unanswered key (with its very body) until all are answered.
fn settle(addrs: &[String], ledger: &Mutex<Ledger>) {
    let t = Instant::now();
    loop {
        let retry: Vec<(String, String)> = {
            let l = ledger.lock().unwrap();
            l.pending
                .iter()
                .map(|k| (k.clone(), l.bodies[k].clone()))
                .collect()
        };
        if retry.is_empty() {
            return;
        }
        for (i, (k, b)) in retry.iter().enumerate() {
            send(&addrs[i % addrs.len()], k, b, ledger);
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "still unanswered after 30 s: {:?}",
            ledger.lock().unwrap().pending
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every acknowledged report stored once, under its key; no key made two reports.
fn check_ledger(s: &mut dyn cityos_engine::Store, l: &Ledger) {
    assert_eq!(l.acked.len(), l.bodies.len(), "every key was answered");
    let counts = s.counts().unwrap();
    assert_eq!(
        counts.reports as usize,
        l.acked.len(),
        "one report per key, none lost, none twice"
    );
    let distinct: BTreeSet<i64> = l.acked.values().copied().collect();
    assert_eq!(distinct.len(), l.acked.len(), "no two keys share a report");
    for (key, id) in &l.acked {
        let r = s
            .load_report(*id)
            .unwrap()
            .unwrap_or_else(|| panic!("{key}: acknowledged report {id} is stored"));
        assert!(
            r.text.ends_with(key.as_str()),
            "{key}: report {id} is {r:?}"
        );
        assert!(s.load_case(r.case_id).unwrap().is_some(), "{key}: its case");
    }
}

fn partitions() -> usize {
    // The sub-districts' partitions and the singleton (the background jobs' lease).
    cityos_engine::engine::Partitioning::Subdistrict
        .all(&cityos_engine::config::Config::xuhui().territory)
        .len()
        + 1
}

#[test]
fn three_nodes_survive_kill_9_of_one() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster3") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-cluster3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes: Vec<Node> = ["n1", "n2", "n3"]
        .iter()
        .map(|n| start(n, &dir, &db.schema_url))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["n1", "n2", "n3"], Duration::from_secs(15));
    let addrs = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>(),
    ));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(addrs.clone(), ledger.clone(), stop.clone(), "k9");
    std::thread::sleep(Duration::from_millis(1500));
    // kill -9 the first node under load; the clients go on with the others.
    let mut victim = nodes.remove(0);
    let held_before: Vec<String> = owners(&mut s)
        .into_iter()
        .filter(|(_, o)| o == "n1")
        .map(|(p, _)| p)
        .collect();
    assert!(!held_before.is_empty());
    victim.child.kill().unwrap();
    let _ = victim.child.wait();
    addrs.lock().unwrap().retain(|a| *a != victim.addr);
    let took = wait_held(&mut s, all, &["n2", "n3"], TAKEOVER_LIMIT);
    eprintln!("partitions {held_before:?} of the killed node taken over in {took:?}");
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let live: Vec<String> = addrs.lock().unwrap().clone();
    settle(&live, &ledger);
    let l = ledger.lock().unwrap();
    eprintln!(
        "{} keyed reports acknowledged; answers by status {:?}",
        l.acked.len(),
        l.statuses
    );
    assert!(l.acked.len() > 20, "the load ran");
    check_ledger(&mut s, &l);
    drop(l);
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_paused_node_cannot_commit_when_resumed() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_pause") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusterp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes: Vec<Node> = ["p1", "p2"]
        .iter()
        .map(|n| start(n, &dir, &db.schema_url))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["p1", "p2"], Duration::from_secs(15));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    // Pause p1 past its lease: p2 takes everything over.
    signal(&nodes[0], "-STOP");
    wait_held(&mut s, all, &["p2"], TAKEOVER_LIMIT);
    let before = s.counts().unwrap();
    let epochs: BTreeMap<String, i64> = s
        .leases()
        .unwrap()
        .into_iter()
        .map(|l| (l.partition, l.epoch))
        .collect();
    // Resumed, p1 gets requests at once, before its lease loop has run: every one is
    // either refused (503) or forwarded to p2, the owner; p1 writes nothing itself.
    signal(&nodes[0], "-CONT");
    let pts = points();
    let mut sent = 0;
    for (i, p) in pts.iter().enumerate().step_by(5).take(20) {
        let key = format!("paused-{i}");
        let body = serde_json::json!({
            "category": "noise", "lon": p[0], "lat": p[1], "text": format!("暂停测试 {key}"),
        })
        .to_string();
        ledger
            .lock()
            .unwrap()
            .bodies
            .insert(key.clone(), body.clone());
        send(&nodes[0].addr, &key, &body, &ledger);
        sent += 1;
    }
    settle(std::slice::from_ref(&nodes[1].addr), &ledger);
    let l = ledger.lock().unwrap();
    assert_eq!(l.acked.len(), sent);
    let after = s.counts().unwrap();
    assert_eq!(after.reports - before.reports, sent as i64);
    check_ledger(&mut s, &l);
    drop(l);
    // No partition went back to p1 at its old epoch: every change of owner raised it.
    for lease in s.leases().unwrap() {
        assert!(lease.epoch >= epochs[&lease.partition]);
    }
    // p1 learned that it lost its partitions (its log says so).
    let t = Instant::now();
    loop {
        let log = std::fs::read_to_string(&nodes[0].log).unwrap_or_default();
        if log.contains("partitions_moved") && log.contains("lost") {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "p1 never noticed: {log}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // A body too large for the endpoint is refused by its size (never run empty), and a
    // request claiming to be forwarded with a tag this cluster's key did not make is
    // refused, not run nor sent on.
    let big = format!(r#"{{"category":"noise","text":"{}"}}"#, "x".repeat(70_000));
    let (status, body) = post(&nodes[0].addr, "/api/v1/reports", "too-big", &big).unwrap();
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    let (status, body) = forged(&nodes[0].addr);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("forward tag"), "{body}");
    // A node with another token key (or partitioning) cannot join the running nodes.
    for (name, key, by, says) in [
        ("p3", other_key(), "subdistrict", "token key differs"),
        (
            "p4",
            TOKEN_KEY.to_string(),
            "district",
            "--partition-by is district here",
        ),
    ] {
        let data = dir.join(name);
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("token.key"), key).unwrap();
        let mut c = Command::new(env!("CARGO_BIN_EXE_cityos"))
            .args([
                "serve",
                "--addr",
                &free_addr(),
                "--data",
                data.to_str().unwrap(),
            ])
            .args(["--database-url", &db.schema_url, "--node", name])
            .args(["--lease-ms", &LEASE_MS.to_string(), "--partition-by", by])
            .env_remove("CITYOS_DATABASE_URL")
            .env_remove("CITYOS_TOKEN_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        let status = loop {
            if let Some(st) = c.try_wait().unwrap() {
                break st;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let _ = c.kill();
                panic!("node {name} with other settings joined");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut c.stderr.take().unwrap(), &mut err).unwrap();
        assert!(!status.success(), "{err}");
        assert!(err.contains(says), "{err}");
    }
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token key other than the test nodes'.
fn other_key() -> String {
    TOKEN_KEY
        .chars()
        .map(|c| if c == '0' { '1' } else { '0' })
        .collect()
}

/// A report sent as if forwarded by node `p2`, with a made-up tag.
fn forged(addr: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let body = r#"{"category":"noise","lon":121.44,"lat":31.2,"text":"forged"}"#;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /api/v1/reports HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAuthorization: Bearer {}\r\n\
         cityos-forwarded-by: p2\r\ncityos-forwarded-for: 10.0.0.9\r\n\
         cityos-forward-tag: made-up\r\nContent-Length: {}\r\n\r\n{body}",
        crate::crash::app_token(),
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    (
        head.split(' ').nth(1).unwrap().parse().unwrap(),
        body.to_string(),
    )
}

#[test]
fn several_nodes_refuse_bad_settings_by_name() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cityos"))
            .args(args)
            .env_remove("CITYOS_DATABASE_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusterbad-{}", std::process::id()));
    let data = dir.to_str().unwrap();
    let e = run(&["serve", "--data", data, "--node", "a"]);
    assert!(e.contains("need a shared PostgreSQL database"), "{e}");
    let e = run(&["serve", "--data", data, "--advertise", "http://x:1"]);
    assert!(e.contains("need --node"), "{e}");
    let pg = "postgres://postgres@127.0.0.1:1/test";
    let e = run(&[
        "serve",
        "--data",
        data,
        "--database-url",
        pg,
        "--node",
        "a b",
    ]);
    assert!(e.contains("node name"), "{e}");
    let e = run(&[
        "serve",
        "--data",
        data,
        "--database-url",
        pg,
        "--node",
        "a",
        "--partition-by",
        "street",
    ]);
    assert!(e.contains("unknown partitioning"), "{e}");
    let e = run(&[
        "serve",
        "--data",
        data,
        "--database-url",
        pg,
        "--node",
        "a",
        "--lease-ms",
        "10",
    ]);
    assert!(e.contains("--lease-ms 10"), "{e}");
    let e = run(&[
        "serve",
        "--data",
        data,
        "--database-url",
        pg,
        "--node",
        "a",
        "--advertise",
        "x:1",
    ]);
    assert!(e.contains("must be http://host:port"), "{e}");
    // Nothing listens on port 1: the error names PostgreSQL.
    let e = run(&[
        "serve",
        "--addr",
        &free_addr(),
        "--data",
        data,
        "--database-url",
        pg,
        "--node",
        "a",
    ]);
    assert!(e.contains("cannot reach PostgreSQL"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test NATS server's URL, or `None` (skipped) when unset and not required.
fn nats() -> Option<String> {
    match std::env::var("CITYOS_TEST_NATS_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "CITYOS_TEST_NATS_URL is required"
            );
            eprintln!("CITYOS_TEST_NATS_URL unset: NATS test skipped");
            None
        }
    }
}

/// A district officer's token (sees the whole district's stream).
fn officer_token() -> String {
    cityos_server::http::auth::TokenKey::from_hex(TOKEN_KEY)
        .unwrap()
        .sign(&cityos_server::http::auth::Principal {
            name: "zhang.district".into(),
            role: cityos_core::Role::DistrictOfficer,
            department: None,
            scope: None,
            channel: None,
            expires_at: i64::MAX,
        })
}

/// An SSE client: every case event as (SSE id, the event's JSON), in arrival order.
struct Sse {
    seen: Arc<Mutex<Vec<(u64, serde_json::Value)>>>,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<Option<u16>>>,
}

fn sse(addr: &str, last_event_id: Option<u64>) -> Sse {
    use std::io::{Read, Write};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(None));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let resume = last_event_id
        .map(|i| format!("Last-Event-ID: {i}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET /api/v1/events/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n{resume}\r\n",
        officer_token()
    )
    .unwrap();
    let (seen2, stop2, status2) = (seen.clone(), stop.clone(), status.clone());
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 8192];
        let mut id = None;
        while !stop2.load(Ordering::SeqCst) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => continue,
            }
            if status2.lock().unwrap().is_none() {
                if let Some(code) = text.split(' ').nth(1).and_then(|c| c.parse().ok()) {
                    *status2.lock().unwrap() = Some(code);
                }
            }
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                let line = line.trim_end();
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(d) = line.strip_prefix("data:") {
                    if let (Some(i), Ok(v)) = (id.take(), serde_json::from_str(d)) {
                        seen2.lock().unwrap().push((i, v));
                    }
                }
            }
        }
    });
    Sse { seen, stop, status }
}

impl Sse {
    /// Waits until `n` case events arrived (at most 20 s); all of them.
    fn wait(&self, n: usize) -> Vec<(u64, serde_json::Value)> {
        let t = Instant::now();
        loop {
            let v = self.seen.lock().unwrap().clone();
            if v.len() >= n {
                return v;
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "the stream gave {} of {n} events (status {:?}): {v:?}",
                v.len(),
                self.status.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sse {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The log's event ids in a stream's events.
fn log_ids(v: &[(u64, serde_json::Value)]) -> Vec<i64> {
    v.iter().map(|(_, e)| e["id"].as_i64().unwrap()).collect()
}

#[test]
fn sse_across_nodes_over_nats() {
    let Some(nats) = nats() else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_nats") else {
        return;
    };
    // A stream of its own: tests running at once do not share events.
    let stream = format!(
        "CITYOS_TEST_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let dir = std::env::temp_dir().join(format!("cityos-clustern-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    let mut nodes: Vec<Node> = ["a", "b", "c"]
        .iter()
        .map(|n| start_with(n, &dir, &db.schema_url, &extra))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(
        &mut s,
        partitions(),
        &["a", "b", "c"],
        Duration::from_secs(15),
    );
    // An SSE client on b; cases filed on a (a forwards what it does not own).
    let on_b = sse(&nodes[1].addr, None);
    std::thread::sleep(Duration::from_millis(500));
    let ledger = Mutex::new(Ledger::default());
    let pts = points();
    let file = |range: std::ops::Range<usize>, ledger: &Mutex<Ledger>| {
        for i in range {
            let p = pts[(i * 13) % pts.len()];
            let key = format!("nats-{i}");
            let body = serde_json::json!({
                "category": if i % 2 == 0 { "noise" } else { "road_damage" },
                "lon": p[0], "lat": p[1], "text": format!("总线测试 {key}"),
            })
            .to_string();
            ledger
                .lock()
                .unwrap()
                .bodies
                .insert(key.clone(), body.clone());
            send(&nodes[0].addr, &key, &body, ledger);
        }
    };
    file(0..12, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let stored = |s: &mut cityos_engine::PostgresStore| -> Vec<i64> {
        s.events_after(0, 10_000, None, None)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    let all = stored(&mut s);
    assert!(all.len() >= 12, "every report made an event: {all:?}");
    let got = on_b.wait(all.len());
    // Once each: no repeat (a node's own events come back through the stream too), no
    // gap, and the SSE ids (stream sequences) increase.
    let mut ids = log_ids(&got);
    assert_eq!(ids.len(), all.len(), "each event once on b: {got:?}");
    ids.sort();
    assert_eq!(ids, all, "b saw exactly the stored events");
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "ids increase: {got:?}"
    );
    // Resume on c from the middle of what b saw, while more cases are filed on a: c
    // gives exactly the rest, in the same order with the same ids.
    let (mid, _) = got[got.len() / 2];
    let on_c = sse(&nodes[2].addr, Some(mid));
    file(12..20, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let all = stored(&mut s);
    let got_b = on_b.wait(all.len());
    assert_eq!(got_b.len(), all.len(), "b: each event once: {got_b:?}");
    let rest: Vec<(u64, i64)> = got_b
        .iter()
        .filter(|(i, _)| *i > mid)
        .map(|(i, e)| (*i, e["id"].as_i64().unwrap()))
        .collect();
    on_c.wait(rest.len());
    std::thread::sleep(Duration::from_millis(500));
    let got_c: Vec<(u64, i64)> = on_c
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(i, e)| (*i, e["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        got_c, rest,
        "c resumed after {mid}: nothing missed, nothing twice"
    );
    let l = ledger.lock().unwrap();
    check_ledger(&mut s, &l);
    drop(l);
    drop((on_b, on_c));
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn nats_unreachable_at_start_is_named() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_cityos"))
            .args(args)
            .env_remove("CITYOS_DATABASE_URL")
            .env_remove("CITYOS_NATS_URL")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusternats-{}", std::process::id()));
    let data = dir.to_str().unwrap();
    let addr = free_addr();
    // Nothing listens on port 1: the error names NATS and the URL.
    let e = run(&[
        "serve",
        "--addr",
        &addr,
        "--data",
        data,
        "--nats-url",
        "nats://127.0.0.1:1",
    ]);
    assert!(e.contains("cannot reach NATS at nats://127.0.0.1:1"), "{e}");
    let e = run(&[
        "serve",
        "--addr",
        &addr,
        "--data",
        data,
        "--nats-url",
        "http://127.0.0.1:4222",
    ]);
    assert!(e.contains("must be nats://host[:port]"), "{e}");
    let e = run(&[
        "serve",
        "--addr",
        &addr,
        "--data",
        data,
        "--nats-url",
        "nats://127.0.0.1:1",
        "--nats-stream",
        "a.b",
    ]);
    assert!(e.contains("NATS stream name \"a.b\""), "{e}");
    let e = run(&[
        "serve",
        "--addr",
        &addr,
        "--data",
        data,
        "--nats-stream",
        "X",
    ]);
    assert!(e.contains("--nats-stream needs --nats-url"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A NATS server of the test's own (`nats-server` on the PATH), to stop and start again.
struct OwnNats {
    child: Child,
    dir: PathBuf,
}

impl OwnNats {
    fn start(port: u16, dir: &Path) -> Option<OwnNats> {
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "nats-server is required: {e}"
                );
                eprintln!("no nats-server ({e}): NATS outage test skipped");
                return None;
            }
        };
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(OwnNats {
            child,
            dir: dir.to_path_buf(),
        })
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn nats_lost_mid_run_writes_go_on_and_sse_sees_each_event_once() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_natslost") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-natslost-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port: u16 = free_addr().rsplit(':').next().unwrap().parse().unwrap();
    let Some(mut nats) = OwnNats::start(port, &dir.join("nats")) else {
        db.drop_schema();
        return;
    };
    let url = format!("nats://127.0.0.1:{port}");
    let mut node = start_with("solo", &dir, &db.schema_url, &["--nats-url", &url]);
    wait_healthy(&mut node);
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["solo"], Duration::from_secs(15));
    let watch = sse(&node.addr, None);
    std::thread::sleep(Duration::from_millis(500));
    let ledger = Mutex::new(Ledger::default());
    let pts = points();
    let file = |range: std::ops::Range<usize>, ledger: &Mutex<Ledger>| {
        for i in range {
            let p = pts[(i * 17) % pts.len()];
            let key = format!("lost-{i}");
            let body = serde_json::json!({
                "category": "noise", "lon": p[0], "lat": p[1], "text": format!("断连测试 {key}"),
            })
            .to_string();
            ledger
                .lock()
                .unwrap()
                .bodies
                .insert(key.clone(), body.clone());
            send(&node.addr, &key, &body, ledger);
        }
    };
    file(0..3, &ledger);
    let events = |s: &mut cityos_engine::PostgresStore| -> Vec<i64> {
        s.events_after(0, 10_000, None, None)
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect()
    };
    watch.wait(events(&mut s).len());
    // NATS goes away: writes are still answered (the events are in the store).
    nats.kill();
    file(3..8, &ledger);
    {
        let l = ledger.lock().unwrap();
        assert!(
            l.pending.is_empty(),
            "writes answered without NATS: {:?}",
            l.statuses
        );
        check_ledger(&mut s, &l);
    }
    // NATS back on the same port and storage: the node reconnects by itself and the SSE
    // client, still connected, gets the outage's events late — each once, in order.
    let _nats = OwnNats::start(port, &nats.dir.clone()).unwrap();
    let all = events(&mut s);
    watch.wait(all.len());
    std::thread::sleep(Duration::from_millis(500));
    let got = watch.seen.lock().unwrap().clone();
    let mut ids = log_ids(&got);
    assert_eq!(ids.len(), all.len(), "each event once: {got:?}");
    ids.sort();
    assert_eq!(ids, all);
    assert!(
        got.windows(2).all(|w| w[0].0 < w[1].0),
        "ids increase: {got:?}"
    );
    let log = std::fs::read_to_string(&node.log).unwrap_or_default();
    assert!(
        log.contains("nats_lost") && log.contains("nats_back"),
        "{log}"
    );
    // /metrics shows the link up again and nothing dropped.
    let metrics = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&node.addr).unwrap();
        write!(
            c,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out
    };
    assert!(metrics.contains("cityos_bus_connected 1"), "{metrics}");
    assert!(metrics.contains("cityos_bus_dropped_total 0"), "{metrics}");
    drop(watch);
    signal(&node, "-INT");
    let _ = node.child.wait();
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sse_on_survivors_sees_every_event_once_after_kill_9() {
    let Some(nats) = nats() else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_natsk9") else {
        return;
    };
    let stream = format!(
        "CITYOS_TEST_K9_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let dir = std::env::temp_dir().join(format!("cityos-natsk9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    let mut nodes: Vec<Node> = ["k1", "k2", "k3"]
        .iter()
        .map(|n| start_with(n, &dir, &db.schema_url, &extra))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["k1", "k2", "k3"], Duration::from_secs(15));
    let watchers = [sse(&nodes[1].addr, None), sse(&nodes[2].addr, None)];
    std::thread::sleep(Duration::from_millis(500));
    let addrs = Arc::new(Mutex::new(
        nodes.iter().map(|n| n.addr.clone()).collect::<Vec<_>>(),
    ));
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(addrs.clone(), ledger.clone(), stop.clone(), "nk9");
    std::thread::sleep(Duration::from_millis(1500));
    let mut victim = nodes.remove(0);
    victim.child.kill().unwrap();
    let _ = victim.child.wait();
    addrs.lock().unwrap().retain(|a| *a != victim.addr);
    wait_held(&mut s, all, &["k2", "k3"], TAKEOVER_LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }
    let live: Vec<String> = addrs.lock().unwrap().clone();
    settle(&live, &ledger);
    check_ledger(&mut s, &ledger.lock().unwrap());
    // Every stored event reaches the SSE clients on both survivors, each once — the
    // killed node's too (those it committed but never handed to NATS are published
    // again by their partitions' new owners).
    let stored: Vec<i64> = s
        .events_after(0, 10_000, None, None)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    for w in &watchers {
        w.wait(stored.len());
        std::thread::sleep(Duration::from_millis(300));
        let got = w.seen.lock().unwrap().clone();
        let mut ids = log_ids(&got);
        ids.sort();
        let distinct: BTreeSet<i64> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "no event twice");
        assert_eq!(ids, stored, "every stored event once");
    }
    // (Whether the killed node left events unpublished depends on the instant of the
    // kill; when it did, a new owner logs `bus_takeover` with how many it published.)
    drop(watchers);
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A token of the given role, scope and channel, signed with the nodes' key.
fn token_of(
    name: &str,
    role: cityos_core::Role,
    scope: Option<&str>,
    channel: Option<&str>,
) -> String {
    cityos_server::http::auth::TokenKey::from_hex(TOKEN_KEY)
        .unwrap()
        .sign(&cityos_server::http::auth::Principal {
            name: name.into(),
            role,
            department: None,
            scope: scope.map(String::from),
            channel: channel.map(String::from),
            expires_at: i64::MAX,
        })
}

/// One HTTP request with a bearer token (and extra headers): (status, body).
fn call(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    content_type: &str,
    body: &str,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(s, "{head}\r\n{body}").unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// A readings batch sent to a node (applied by the singleton lease's holder, where
/// readings go) raises alarms in every sub-district, many of them
/// held by the other node: each alarm's case is filed once, by the node holding its
/// sub-district (the engine step goes there, authenticated, with a key of its own) —
/// never `partly_applied`, never twice; a step claimed by someone else is refused; a
/// step sent twice under one key files once; a node not holding its partition refuses it.
#[test]
fn an_engine_step_for_another_nodes_partition_reaches_its_owner() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_step") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusterstep-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start(n, &dir, &db.schema_url))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["a", "b"], Duration::from_secs(15));
    let held = owners(&mut s);
    // Every manhole tilted at once, sent to a.
    let cfg = cityos_engine::config::Config::xuhui();
    let manholes: Vec<&str> = cfg
        .sensing
        .devices
        .iter()
        .filter(|d| d.kind == "manhole_tilt")
        .map(|d| d.id.as_str())
        .collect();
    assert!(manholes.len() > 10, "{manholes:?}");
    let lines: Vec<String> = manholes
        .iter()
        .map(|d| format!(r#"{{"device":"{d}","metric":"tilt_deg","value":30}}"#))
        .collect();
    let sensor = token_of("sensors", cityos_core::Role::System, None, Some("sensor"));
    let (status, body) = call(
        &nodes[0].addr,
        "POST",
        "/api/v1/readings",
        Some(&sensor),
        &[],
        "application/x-ndjson",
        &lines.join("\n"),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let alarms = v["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), manholes.len(), "{v}");
    // The batch is applied by the singleton's holder (readings go there, forwarded by
    // the other node); each alarm's case stored, in its sub-district; those of the other
    // node's sub-districts filed through it (one step each), none by the holder's engine.
    let holder = held
        .get(cityos_engine::engine::SINGLETON)
        .cloned()
        .expect("the singleton is held");
    let (hi, other) = if holder == "a" { (0, "b") } else { (1, "a") };
    let mut on_b = 0;
    for a in alarms {
        assert_eq!(a["change"], "fired", "{a}");
        let n = a["case"].as_str().unwrap_or_else(|| panic!("a case: {a}"));
        let c = s
            .load_case_by_number(n)
            .unwrap()
            .unwrap_or_else(|| panic!("case {n} stored"));
        let sd = c.regions.subdistrict.clone().unwrap_or_else(|| "-".into());
        if held.get(&sd).map(String::as_str) == Some(other) {
            on_b += 1;
        }
    }
    assert!(
        on_b > 0,
        "some alarms fell in {other}'s sub-districts: {held:?}"
    );
    let before = s.counts().unwrap().reports;
    assert_eq!(
        before as usize,
        manholes.len(),
        "one report per alarm, none twice"
    );
    let log_a = std::fs::read_to_string(&nodes[hi].log).unwrap_or_default();
    assert_eq!(
        log_a.matches("engine_step_on_owner").count(),
        on_b,
        "{holder} sent {other} exactly {other}'s steps: {log_a}"
    );
    assert!(!log_a.contains("partly_applied"), "{log_a}");
    // A step from outside the cluster (no tag, or a forged one) is refused, not run.
    for headers in [
        vec![],
        vec![
            ("cityos-node", "a"),
            ("cityos-node-tag", "0000000000000000"),
        ],
    ] {
        let (status, body) = call(
            &nodes[1].addr,
            "POST",
            "/cluster/v1/engine",
            None,
            &headers,
            "application/json",
            r#"{"key":"cluster-step:x","request":{"report":{}}}"#,
        );
        assert_eq!(status, 403, "{body}");
    }
    assert_eq!(s.counts().unwrap().reports, before);
    // A step sent twice under one key (a retry after an unknown outcome) files one
    // report: the second answer is the first's, from the record. Sent to a node that
    // does not hold its partition, it is refused with 503 and nothing is written.
    let (sd, owner) = held
        .iter()
        .find(|(p, o)| p.chars().all(|c| c.is_ascii_digit()) && o.as_str() == "b")
        .map(|(p, o)| (p.clone(), o.clone()))
        .unwrap();
    let t = &cfg.territory;
    let [lon, lat] = t.interior_point(t.by_code(&sd).unwrap());
    let report = cityos_core::workflow::NewReport {
        channel: cityos_core::case::Channel::Staff,
        category: "noise".into(),
        lon,
        lat,
        text: "节点间重试测试".into(),
        contact: None,
        at: 1_800_000_000_000,
        media: Vec::new(),
        priority: None,
        playbook: None,
        suggestion: None,
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let key = cityos_server::http::auth::TokenKey::from_hex(TOKEN_KEY).unwrap();
    // A step signed two minutes ago (captured, sent again later) is refused by name,
    // though its tag is good; nothing is written.
    let old_body = serde_json::json!({"key": "cluster-step:test-stale", "at": now_ms - 120_000, "request": {"report": report}})
        .to_string();
    let old_tag = key.tag_full(&format!("engine-step|a|{old_body}"));
    let (status, refused) = call(
        &nodes[1].addr,
        "POST",
        "/cluster/v1/engine",
        None,
        &[("cityos-node", "a"), ("cityos-node-tag", &old_tag)],
        "application/json",
        &old_body,
    );
    assert_eq!(status, 403, "{refused}");
    assert!(refused.contains("stale"), "{refused}");
    assert_eq!(s.counts().unwrap().reports, before);
    // The short tag (8 bytes) is no longer enough.
    let body = serde_json::json!({"key": "cluster-step:test-retry", "at": now_ms, "request": {"report": report}})
        .to_string();
    let short = key.tag(&format!("engine-step|a|{body}"));
    let (status, refused) = call(
        &nodes[1].addr,
        "POST",
        "/cluster/v1/engine",
        None,
        &[("cityos-node", "a"), ("cityos-node-tag", &short)],
        "application/json",
        &body,
    );
    assert_eq!(status, 403, "{refused}");
    let tag = key.tag_full(&format!("engine-step|a|{body}"));
    let step = |addr: &str| {
        call(
            addr,
            "POST",
            "/cluster/v1/engine",
            None,
            &[("cityos-node", "a"), ("cityos-node-tag", &tag)],
            "application/json",
            &body,
        )
    };
    let (status, refused) = step(&nodes[0].addr);
    assert_eq!(status, 503, "a does not hold {sd}: {refused}");
    assert_eq!(s.counts().unwrap().reports, before);
    assert_eq!(owner, "b");
    let (s1, first) = step(&nodes[1].addr);
    let (s2, again) = step(&nodes[1].addr);
    assert_eq!((s1, s2), (200, 200), "{first} {again}");
    let (v1, v2): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&first).unwrap(),
        serde_json::from_str(&again).unwrap(),
    );
    assert_eq!(
        v1["intake"]["report_id"], v2["intake"]["report_id"],
        "{v1} {v2}"
    );
    assert_eq!(
        v1["intake"]["case"]["number"],
        v2["intake"]["case"]["number"]
    );
    assert_eq!(s.counts().unwrap().reports, before + 1, "filed once");
    // A request with an Idempotency-Key whose step an earlier attempt passed to the
    // owner (recorded there under the step key only) and which now reaches the owner
    // itself, with nothing done yet there, is answered from that record: one report.
    let raw =
        serde_json::json!({"category": "noise", "lon": lon, "lat": lat, "text": "键重试测试"})
            .to_string();
    let hash =
        cityos_server::http::idempotency::request_hash("POST /api/v1/reports", raw.as_bytes());
    let staff_report = cityos_core::workflow::NewReport {
        text: "键重试测试".into(),
        ..report.clone()
    };
    let body = serde_json::json!({
        "key": format!("cluster-step:zhang.district|k-retry#{hash}"),
        "at": now_ms,
        "request": {"report": staff_report},
    })
    .to_string();
    let tag = key.tag_full(&format!("engine-step|a|{body}"));
    let (status, stepped) = call(
        &nodes[1].addr,
        "POST",
        "/cluster/v1/engine",
        None,
        &[("cityos-node", "a"), ("cityos-node-tag", &tag)],
        "application/json",
        &body,
    );
    assert_eq!(status, 200, "{stepped}");
    let stepped: serde_json::Value = serde_json::from_str(&stepped).unwrap();
    assert_eq!(s.counts().unwrap().reports, before + 2);
    let (status, answer) = call(
        &nodes[1].addr,
        "POST",
        "/api/v1/reports",
        Some(&officer_token()),
        &[("Idempotency-Key", "k-retry")],
        "application/json",
        &raw,
    );
    assert!(status == 200 || status == 201, "{status} {answer}");
    assert!(
        answer.contains(stepped["intake"]["case"]["number"].as_str().unwrap()),
        "the step's case: {answer}"
    );
    assert_eq!(
        s.counts().unwrap().reports,
        before + 2,
        "not filed a second time"
    );
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stream of its own per test (tests running at once do not share events).
fn stream_name(tag: &str) -> String {
    format!(
        "CITYOS_TEST_{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

/// An SSE client with a token and query of its own.
fn sse_as(addr: &str, token: &str, query: &str) -> Sse {
    use std::io::{Read, Write};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let status = Arc::new(Mutex::new(None));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    write!(
        s,
        "GET /api/v1/events/stream{query} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let (seen2, stop2, status2) = (seen.clone(), stop.clone(), status.clone());
    std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 8192];
        let mut id = None;
        while !stop2.load(Ordering::SeqCst) {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => continue,
            }
            if status2.lock().unwrap().is_none() {
                if let Some(code) = text.split(' ').nth(1).and_then(|c| c.parse().ok()) {
                    *status2.lock().unwrap() = Some(code);
                }
            }
            while let Some(end) = text.find('\n') {
                let line: String = text.drain(..=end).collect();
                let line = line.trim_end();
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<u64>().ok();
                } else if let Some(d) = line.strip_prefix("data:") {
                    if let (Some(i), Ok(v)) = (id.take(), serde_json::from_str(d)) {
                        seen2.lock().unwrap().push((i, v));
                    }
                }
            }
        }
    });
    Sse { seen, stop, status }
}

fn file_reports(addr: &str, tag: &str, range: std::ops::Range<usize>, ledger: &Mutex<Ledger>) {
    let pts = points();
    for i in range {
        let p = pts[(i * 11) % pts.len()];
        let key = format!("{tag}-{i}");
        let body = serde_json::json!({
            "category": "noise", "lon": p[0], "lat": p[1], "text": format!("集群测试 {key}"),
        })
        .to_string();
        ledger
            .lock()
            .unwrap()
            .bodies
            .insert(key.clone(), body.clone());
        send(addr, &key, &body, ledger);
    }
}

/// `recent=n` in cluster mode: a new client on another node starts with the caller's own
/// last n case events read back from the stream (a district officer: the district's; a
/// sub-district officer: their sub-district's), ids = stream sequences, then goes live.
#[test]
fn recent_on_a_cluster_stream_starts_with_the_callers_last_events() {
    let Some(nats) = nats() else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_recent") else {
        return;
    };
    let stream = stream_name("RECENT");
    let dir = std::env::temp_dir().join(format!("cityos-clusterrecent-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start_with(n, &dir, &db.schema_url, &extra))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["a", "b"], Duration::from_secs(15));
    // A witness from the start: the stream's whole order.
    let all = sse(&nodes[1].addr, None);
    std::thread::sleep(Duration::from_millis(500));
    let ledger = Mutex::new(Ledger::default());
    file_reports(&nodes[0].addr, "recent", 0..30, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let stored = s.events_after(0, 10_000, None, None).unwrap();
    let seen = all.wait(stored.len());
    let pick = |v: &[(u64, serde_json::Value)]| -> Vec<(u64, i64)> {
        v.iter()
            .map(|(i, e)| (*i, e["id"].as_i64().unwrap()))
            .collect()
    };
    let whole = pick(&seen);
    // The district officer on b: the district's last 5, in the stream's order.
    let district = sse_as(&nodes[1].addr, &officer_token(), "?recent=5");
    let got = pick(&district.wait(5));
    assert_eq!(
        got,
        whole[whole.len() - 5..].to_vec(),
        "the district's last 5"
    );
    // A sub-district officer: the last 3 of their sub-district (not of the district).
    let sd = stored
        .iter()
        .filter_map(|e| e.subdistrict.clone())
        .fold(BTreeMap::<String, usize>::new(), |mut m, sd| {
            *m.entry(sd).or_default() += 1;
            m
        })
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(sd, _)| sd)
        .unwrap();
    let theirs: Vec<(u64, i64)> = seen
        .iter()
        .filter(|(_, e)| e["subdistrict"].as_str() == Some(sd.as_str()))
        .map(|(i, e)| (*i, e["id"].as_i64().unwrap()))
        .collect();
    assert!(theirs.len() >= 3, "{sd}: {theirs:?}");
    let officer = token_of(
        "li.subdistrict",
        cityos_core::Role::SubdistrictOfficer,
        Some(&sd),
        None,
    );
    let local = sse_as(&nodes[0].addr, &officer, "?recent=3");
    let got = pick(&local.wait(3));
    assert_eq!(got, theirs[theirs.len() - 3..].to_vec(), "{sd}'s last 3");
    // Then live, with nothing repeated: one more report in the district.
    file_reports(&nodes[0].addr, "recent", 30..31, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let n = s.events_after(0, 10_000, None, None).unwrap().len();
    let whole = pick(&all.wait(n));
    let got = pick(&district.wait(5 + (n - stored.len())));
    assert_eq!(got, whole[whole.len() - 5 - (n - stored.len())..].to_vec());
    check_ledger(&mut s, &ledger.lock().unwrap());
    drop((all, district, local));
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Publishes one message to NATS with a header (as a node whose ack was lost and whose
/// duplicate window passed would send an event again).
fn publish_raw(url: &str, subject: &str, msg_id: &str, payload: &str) {
    use std::io::{Read, Write};
    let hostport = url.trim_start_matches("nats://");
    let mut c = std::net::TcpStream::connect(hostport).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let headers = format!("NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n");
    write!(
        c,
        "CONNECT {{\"verbose\":false,\"headers\":true}}\r\nHPUB {subject} {} {}\r\n{headers}{payload}\r\nPING\r\n",
        headers.len(),
        headers.len() + payload.len()
    )
    .unwrap();
    // Wait for the PONG: the message was taken.
    let mut buf = [0u8; 4096];
    let mut got = String::new();
    let t = Instant::now();
    while !got.contains("PONG") && t.elapsed() < Duration::from_secs(5) {
        if let Ok(n) = c.read(&mut buf) {
            got.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    }
    assert!(got.contains("PONG"), "{got}");
}

/// A second copy of a case event on the stream under another message id — what a node
/// sends after an outage longer than JetStream's duplicate window — is shown by no SSE
/// client: neither live, nor read back from the start, nor resumed on another node.
#[test]
fn a_second_copy_of_an_event_on_the_stream_is_shown_once() {
    let Some(nats) = nats() else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_copy") else {
        return;
    };
    let stream = stream_name("COPY");
    let dir = std::env::temp_dir().join(format!("cityos-clustercopy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let extra = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start_with(n, &dir, &db.schema_url, &extra))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["a", "b"], Duration::from_secs(15));
    let live = sse(&nodes[0].addr, None);
    std::thread::sleep(Duration::from_millis(500));
    let ledger = Mutex::new(Ledger::default());
    file_reports(&nodes[0].addr, "copy", 0..4, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let stored = s.events_after(0, 10_000, None, None).unwrap();
    let first = live.wait(stored.len());
    // The first event again, as it is on the stream, under a message id of its own.
    let e = &stored[0];
    let payload = serde_json::json!({"t": "case", "event": e}).to_string();
    let subject = format!(
        "{}.case.{}",
        stream.to_lowercase(),
        e.subdistrict.as_deref().unwrap_or("_")
    );
    publish_raw(&nats, &subject, "resent-after-the-window", &payload);
    file_reports(&nodes[0].addr, "copy", 4..6, &ledger);
    settle(std::slice::from_ref(&nodes[0].addr), &ledger);
    let all = s.events_after(0, 10_000, None, None).unwrap();
    let got = live.wait(all.len());
    std::thread::sleep(Duration::from_millis(1000));
    let check = |what: &str, v: &[(u64, serde_json::Value)]| {
        let mut ids = log_ids(v);
        ids.sort();
        let want: Vec<i64> = all.iter().map(|e| e.id).collect();
        assert_eq!(ids, want, "{what}: each event once: {v:?}");
    };
    check("live on a", &live.seen.lock().unwrap().clone());
    assert_eq!(got.len(), all.len());
    // Read back from the start on b, and resumed on b after the first copy.
    let from_start = sse(&nodes[1].addr, Some(0));
    from_start.wait(all.len());
    std::thread::sleep(Duration::from_millis(1000));
    check("read back on b", &from_start.seen.lock().unwrap().clone());
    let after_first = first
        .iter()
        .find(|(_, v)| v["id"].as_i64() == Some(e.id))
        .map(|(seq, _)| *seq)
        .unwrap();
    let rest: Vec<(u64, i64)> = got
        .iter()
        .filter(|(seq, _)| *seq > after_first)
        .map(|(seq, v)| (*seq, v["id"].as_i64().unwrap()))
        .collect();
    let resumed = sse(&nodes[1].addr, Some(after_first));
    resumed.wait(rest.len());
    std::thread::sleep(Duration::from_millis(1000));
    let v = resumed.seen.lock().unwrap().clone();
    let seen: Vec<(u64, i64)> = v
        .iter()
        .map(|(seq, x)| (*seq, x["id"].as_i64().unwrap()))
        .collect();
    assert_eq!(seen, rest, "resumed: the rest once");
    assert!(
        !log_ids(&v).contains(&e.id),
        "resumed after {after_first}: the copy of {} not shown: {v:?}",
        e.id
    );
    check_ledger(&mut s, &ledger.lock().unwrap());
    drop((live, from_start, resumed));
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Clock skew within the stated bound (30 s): a node whose clock runs 20 s ahead joins,
/// holds partitions, answers and forwards; when the other node is killed it takes every
/// partition over within 10 s (leases go by the database's clock, never a node's).
/// A node 60 s off is refused at start, by name.
#[test]
fn a_node_with_a_skewed_clock_within_the_bound_behaves() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_skew") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusterskew-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes = vec![
        start("plain", &dir, &db.schema_url),
        start_env(
            "ahead",
            &dir,
            &db.schema_url,
            &[],
            &[("CITYOS_CLOCK_SKEW_MS", "20000")],
        ),
    ];
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(
        &mut s,
        partitions(),
        &["plain", "ahead"],
        Duration::from_secs(15),
    );
    let log = std::fs::read_to_string(&nodes[1].log).unwrap_or_default();
    assert!(log.contains("clock_skew"), "the skew is noted: {log}");
    let ledger = Mutex::new(Ledger::default());
    let addrs: Vec<String> = nodes.iter().map(|n| n.addr.clone()).collect();
    for (i, a) in addrs.iter().enumerate() {
        file_reports(a, &format!("skew{i}"), 0..10, &ledger);
    }
    settle(&addrs, &ledger);
    check_ledger(&mut s, &ledger.lock().unwrap());
    // The plain node dies: the one ahead takes everything over by the database's clock.
    signal(&nodes[0], "-9");
    let _ = nodes[0].child.wait();
    let took = wait_held(&mut s, partitions(), &["ahead"], TAKEOVER_LIMIT);
    assert!(took < TAKEOVER_LIMIT, "{took:?}");
    file_reports(&addrs[1], "skew-after", 0..10, &ledger);
    settle(&addrs[1..], &ledger);
    check_ledger(&mut s, &ledger.lock().unwrap());
    // 60 s off: refused at start, saying so.
    std::fs::create_dir_all(dir.join("far")).unwrap();
    std::fs::write(dir.join("far").join("token.key"), TOKEN_KEY).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "serve",
            "--addr",
            &free_addr(),
            "--data",
            dir.join("far").to_str().unwrap(),
            "--database-url",
            &db.schema_url,
            "--node",
            "far",
        ])
        .env("CITYOS_CLOCK_SKEW_MS", "-60000")
        .env_remove("CITYOS_DATABASE_URL")
        .env_remove("CITYOS_NATS_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("60 s behind the database's") && err.contains("at most 30 s"),
        "{err}"
    );
    signal(&nodes[1], "-INT");
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The test MQTT broker's URL, or `None` (skipped) when unset and not required.
fn mqtt() -> Option<String> {
    match std::env::var("CITYOS_TEST_MQTT_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "CITYOS_TEST_MQTT_URL is required"
            );
            eprintln!("CITYOS_TEST_MQTT_URL unset: MQTT test skipped");
            None
        }
    }
}

/// A unique name for a test's stream and MQTT prefix.
fn unique(tag: &str) -> String {
    format!(
        "{tag}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
    )
}

/// A device's manhole reading in cityos's own shape, tilted past the alarm line (the
/// `manhole_tilted` rule fires at once), taken at `at`.
fn tilted(at: i64) -> String {
    format!(
        r#"{{"metric":"tilt_deg","value":20,"at":"{}"}}"#,
        cityos_core::time::format_rfc3339(at)
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Publishes readings to the broker (QoS 1) from a thread of its own.
struct Publisher {
    client: rumqttc::Client,
    net: Option<std::thread::JoinHandle<()>>,
}

impl Publisher {
    fn new(url: &str, id: &str) -> Publisher {
        let rest = url.strip_prefix("mqtt://").unwrap();
        let (host, port) = rest.rsplit_once(':').unwrap();
        let mut o = rumqttc::MqttOptions::new(id, host, port.parse::<u16>().unwrap());
        o.set_keep_alive(Duration::from_secs(30));
        o.set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut conn) = rumqttc::Client::new(o, 10_000);
        let net = std::thread::spawn(move || {
            for e in conn.iter() {
                if e.is_err() {
                    return;
                }
            }
        });
        Publisher {
            client,
            net: Some(net),
        }
    }

    fn send(&self, topic: &str, payload: String) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        // Let what was queued leave before the connection closes.
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.client.disconnect();
        if let Some(n) = self.net.take() {
            let _ = n.join();
        }
    }
}

/// A GET with the officer's token: (status, JSON).
fn get_json(addr: &str, path: &str) -> (u16, serde_json::Value) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\r\n",
        officer_token()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    // A chunked body: the JSON is between the first chunk size and the end.
    let json = body
        .find('{')
        .and_then(|a| body.rfind('}').map(|b| &body[a..=b]))
        .unwrap_or("null");
    (status, serde_json::from_str(json).unwrap_or_default())
}

/// A POST with the district officer's token: (status, body).
fn post_as_officer(addr: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n{body}",
        officer_token(),
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A JetStream API request over a plain connection (the test's own, tiny): its answer.
fn js_request(url: &str, subject: &str) -> serde_json::Value {
    js_call(url, subject, "")
}

/// [`js_request`] with a body.
fn js_call(url: &str, subject: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let addr = url.strip_prefix("nats://").unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "CONNECT {{\"verbose\":false}}\r\nSUB _INBOX.cityostest 1\r\nPUB {subject} _INBOX.cityostest {}\r\n{body}\r\n",
        body.len()
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut tmp = [0u8; 65536];
    loop {
        let n = s.read(&mut tmp).unwrap();
        assert!(n > 0, "NATS closed the connection");
        buf.extend_from_slice(&tmp[..n]);
        let text = String::from_utf8_lossy(&buf).into_owned();
        if let Some(i) = text.find("MSG _INBOX.cityostest") {
            let rest = &text[i..];
            if let Some((head, body)) = rest.split_once("\r\n") {
                let len: usize = head.split_whitespace().last().unwrap().parse().unwrap();
                if body.len() >= len {
                    return serde_json::from_str(&body[..len]).unwrap();
                }
            }
        }
    }
}

/// Waits (at most 40 s) until the readings queue beside `stream` has stored exactly `sent`
/// messages and holds none: each stored once though several nodes handed it in, all
/// applied and acknowledged (a batch a dead holder never acknowledged comes again after
/// the ack wait).
fn assert_drained(nats: &str, stream: &str, sent: usize) {
    let t = Instant::now();
    let info = loop {
        let info = js_request(nats, &format!("$JS.API.STREAM.INFO.{stream}_READINGS"));
        let done = info["state"]["messages"].as_u64() == Some(0)
            && info["state"]["last_seq"].as_u64() == Some(sent as u64);
        if done || t.elapsed() > Duration::from_secs(40) {
            break info;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(
        info["state"]["last_seq"].as_u64(),
        Some(sent as u64),
        "{info}"
    );
    assert_eq!(info["state"]["messages"].as_u64(), Some(0), "{info}");
}

/// Deletes a test's streams on NATS: the bus's and the readings queue's.
fn delete_streams(nats: &str, stream: &str) {
    let _ = cityos_server::runtime::jetstream::JetStreamBus::delete_stream(nats, stream);
    let _ = cityos_server::runtime::readings::ReadingsQueue::delete(nats, stream);
}

/// The alarm state the store holds for each `manhole_tilted` device: (state, since).
fn tilt_alarms(s: &mut cityos_engine::PostgresStore) -> BTreeMap<String, (String, i64)> {
    use cityos_engine::SensingStore;
    s.alarm_states()
        .unwrap()
        .into_iter()
        .filter(|r| r.rule == "manhole_tilted")
        .map(|r| (r.device, (r.state, r.since)))
        .collect()
}

/// The MQTT tests share the broker's topic space: one at a time.
static MQTT_TURN: Mutex<()> = Mutex::new(());

#[test]
fn readings_heard_by_a_non_holder_over_mqtt_are_applied_once() {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_mqtt1") else {
        return;
    };
    let stream = unique("CITYOS_TEST_RQ");
    let prefix = unique("cityos-test-rq");
    let dir = std::env::temp_dir().join(format!("cityos-rq1-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let nats_args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    // r1 alone first: it holds everything, the singleton lease (the readings) included.
    let mut r1 = start_with("r1", &dir, &db.schema_url, &nats_args);
    wait_healthy(&mut r1);
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["r1"], Duration::from_secs(15));
    // r2 hears the broker; r1 does not.
    let mut with_mqtt: Vec<&str> = nats_args.to_vec();
    with_mqtt.extend(["--mqtt-url", mqtt.as_str()]);
    let env = [("CITYOS_MQTT_PREFIX", prefix.as_str())];
    let mut r2 = start_env("r2", &dir, &db.schema_url, &with_mqtt, &env);
    wait_healthy(&mut r2);
    wait_held(&mut s, all, &["r1", "r2"], Duration::from_secs(15));
    assert_eq!(
        owners(&mut s)
            .get(cityos_engine::engine::SINGLETON)
            .map(String::as_str),
        Some("r1"),
        "the first node keeps the singleton lease"
    );
    // Let r2's bridge subscribe.
    std::thread::sleep(Duration::from_millis(1500));
    let p = Publisher::new(&mqtt, &unique("cityos-test-pub1"));
    let devices: Vec<String> = (1..=40).map(|i| format!("MH-{i:03}")).collect();
    // Five readings per device, a second apart (times are sent to the second), the
    // first 200 s ago.
    let t0 = now_ms() / 1000 * 1000 - 200_000;
    let mut first = BTreeMap::new();
    let sent = 200usize;
    // First a message of 1.5 MiB — over the sensor room's 256 KiB and over what NATS takes
    // (1 MiB): refused as too large, and the readings after it still flow.
    p.send(
        &format!("{prefix}/readings/{}", devices[0]),
        format!("[{}]", vec!["1"; 786_432].join(",")),
    );
    for i in 0..sent {
        let d = &devices[i % devices.len()];
        let at = t0 + (i / devices.len()) as i64 * 1000;
        first.entry(d.clone()).or_insert(at);
        p.send(&format!("{prefix}/readings/{d}"), tilted(at));
    }
    drop(p);
    // Applied on r1 (the holder), each once; r2 applied nothing itself.
    let t = Instant::now();
    loop {
        let (_, v) = get_json(&r1.addr, "/api/v1/readings/stats");
        let got = v["accepted"].as_u64().unwrap_or(0) as usize;
        if got >= sent || t.elapsed() > Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(500));
            let (_, v) = get_json(&r1.addr, "/api/v1/readings/stats");
            assert_eq!(v["accepted"].as_u64(), Some(sent as u64), "{v}");
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, v) = get_json(&r1.addr, "/api/v1/readings/stats");
    assert_eq!(v["refused"]["too_large"].as_u64(), Some(1), "{v}");
    let (_, v2) = get_json(&r2.addr, "/api/v1/readings/stats");
    assert_eq!(v2["accepted"].as_u64(), Some(0), "{v2}");
    // Readings posted to the node that does not apply them are forwarded to the one that
    // does, and answered as usual.
    let line = format!(
        r#"{{"device":"MH-041","metric":"tilt_deg","value":20,"at":"{}"}}"#,
        cityos_core::time::format_rfc3339(t0)
    );
    let (status, body) = post_as_officer(&r2.addr, "/api/v1/readings", &line);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""accepted":1"#), "{body}");
    let (_, v) = get_json(&r1.addr, "/api/v1/readings/stats");
    assert_eq!(v["accepted"].as_u64(), Some(sent as u64 + 1), "{v}");
    first.insert("MH-041".into(), t0);
    let devices: Vec<String> = first.keys().cloned().collect();
    // Every device's alarm fired once, at its first reading.
    let t = Instant::now();
    let alarms = loop {
        let a = tilt_alarms(&mut s);
        if devices.iter().all(|d| a.contains_key(d)) || t.elapsed() > Duration::from_secs(10) {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    for d in &devices {
        assert_eq!(
            alarms.get(d),
            Some(&("firing".to_string(), first[d])),
            "device {d}"
        );
    }
    // The queue holds each message once and has handed everything over.
    let info = js_request(&nats, &format!("$JS.API.STREAM.INFO.{stream}_READINGS"));
    assert_eq!(
        info["state"]["last_seq"].as_u64(),
        Some(sent as u64 + 1),
        "{info}"
    );
    assert_eq!(info["state"]["messages"].as_u64(), Some(0), "{info}");
    for n in [&r1, &r2] {
        signal(n, "-INT");
    }
    let _ = r1.child.wait();
    let _ = r2.child.wait();
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A steady sensor (issue 20 with several nodes): a device publishing the same reading
/// without a time of its own again and again (`{"metric","value"}` every 1.2 s), heard
/// by two nodes' bridges, is applied once per repeat — not merged into one by the work
/// queue's duplicate window — and once only though both nodes handed each repeat in;
/// a reading with a time of its own sent twice is applied once.
#[test]
fn untimed_repeats_of_a_steady_sensor_are_each_applied_once() {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_mqtt_steady") else {
        return;
    };
    let stream = unique("CITYOS_TEST_RQS");
    let prefix = unique("cityos-test-rqs");
    let dir = std::env::temp_dir().join(format!("cityos-rqs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
        "--mqtt-url",
        mqtt.as_str(),
    ];
    let env = [("CITYOS_MQTT_PREFIX", prefix.as_str())];
    let mut nodes: Vec<Node> = ["s1", "s2"]
        .iter()
        .map(|n| start_env(n, &dir, &db.schema_url, &args, &env))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["s1", "s2"], Duration::from_secs(15));
    // Let both bridges subscribe.
    std::thread::sleep(Duration::from_millis(1500));
    let holder = owners(&mut s)[cityos_engine::engine::SINGLETON].clone();
    let holder = nodes.iter().find(|n| n.name == holder).unwrap();
    let p = Publisher::new(&mqtt, &unique("cityos-test-pubs"));
    let topic = format!("{prefix}/readings/MH-007");
    let timed = format!(
        r#"{{"metric":"tilt_deg","value":2,"at":"{}"}}"#,
        cityos_core::time::format_rfc3339(now_ms() / 1000 * 1000 - 60_000)
    );
    p.send(&topic, timed.clone());
    let repeats = 8u64;
    for i in 0..repeats {
        if i > 0 {
            std::thread::sleep(Duration::from_millis(1200));
        }
        p.send(&topic, r#"{"metric":"tilt_deg","value":1}"#.to_string());
    }
    // The timed reading again: the same reading, kept once.
    p.send(&topic, timed);
    drop(p);
    let want = repeats + 1;
    let t = Instant::now();
    loop {
        let (_, v) = get_json(&holder.addr, "/api/v1/readings/stats");
        let got = v["accepted"].as_u64().unwrap_or(0);
        if got >= want || t.elapsed() > Duration::from_secs(20) {
            // Anything applied twice would come by now.
            std::thread::sleep(Duration::from_millis(1500));
            let (_, v) = get_json(&holder.addr, "/api/v1/readings/stats");
            assert_eq!(
                v["accepted"].as_u64(),
                Some(want),
                "{repeats} repeats without a time and one timed reading sent twice: {v}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both bridges handed every repeat in; the queue holds nothing left over.
    let info = js_request(&nats, &format!("$JS.API.STREAM.INFO.{stream}_READINGS"));
    assert_eq!(info["state"]["messages"].as_u64(), Some(0), "{info}");
    assert!(info["state"]["last_seq"].as_u64() >= Some(want), "{info}");
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn kill_9_of_the_readings_holder_loses_no_reading_and_raises_no_alarm_twice() {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_mqtt9") else {
        return;
    };
    let stream = unique("CITYOS_TEST_RQ9");
    let prefix = unique("cityos-test-rq9");
    let dir = std::env::temp_dir().join(format!("cityos-rq9-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
        "--mqtt-url",
        mqtt.as_str(),
    ];
    let env = [("CITYOS_MQTT_PREFIX", prefix.as_str())];
    let mut nodes: Vec<Node> = ["q1", "q2", "q3"]
        .iter()
        .map(|n| start_env(n, &dir, &db.schema_url, &args, &env))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["q1", "q2", "q3"], Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1500));
    let holder = owners(&mut s)[cityos_engine::engine::SINGLETON].clone();
    // A stream of readings (every node hears each): each device's first fires its alarm;
    // the repeats must not fire it again, before or after the takeover.
    let p = Publisher::new(&mqtt, &unique("cityos-test-pub9"));
    let devices: Vec<String> = (1..=60).map(|i| format!("MH-{i:03}")).collect();
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    // Distinct messages (times are sent to the second: a device's repeat within the
    // same second is the same message, kept once).
    let mut distinct: BTreeSet<(String, i64)> = BTreeSet::new();
    let started = Instant::now();
    let mut killed = None;
    let mut i = 0usize;
    // A device's first reading carries a time of its own, before every repeat's.
    let t0 = now_ms() / 1000 * 1000 - 200_000;
    while started.elapsed() < Duration::from_secs(6) {
        // Devices join the stream over time, so that some first fire after the kill.
        let live = (1 + i / 20).min(devices.len());
        let k = i % live;
        let d = &devices[k];
        let at = if first.contains_key(d) {
            now_ms() / 1000 * 1000
        } else {
            t0 + k as i64 * 1000
        };
        first.entry(d.clone()).or_insert(at);
        distinct.insert((d.clone(), at));
        p.send(&format!("{prefix}/readings/{d}"), tilted(at));
        i += 1;
        if killed.is_none() && started.elapsed() > Duration::from_secs(2) {
            let k = nodes.iter().position(|n| n.name == holder).unwrap();
            let mut victim = nodes.remove(k);
            victim.child.kill().unwrap();
            let _ = victim.child.wait();
            killed = Some(victim.name.clone());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(p);
    let sent = distinct.len();
    let alive: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    wait_held(&mut s, all, &alive, TAKEOVER_LIMIT);
    // Drained: everything handed in was applied and acknowledged (a batch the killed
    // holder had pulled but not acknowledged comes again after the ack wait).
    assert_drained(&nats, &stream, sent);
    // Every device's alarm fired once — at its first reading: a reading lost would
    // leave the alarm unfired or fired later, an alarm raised again after the takeover
    // would carry a later time.
    std::thread::sleep(Duration::from_millis(500));
    let alarms = tilt_alarms(&mut s);
    let mut n = 0;
    for (d, at) in &first {
        assert_eq!(
            alarms.get(d),
            Some(&("firing".to_string(), *at)),
            "device {d} (killed {killed:?})"
        );
        n += 1;
    }
    assert!(n >= 10, "devices {n}");
    // The new holder raised only the alarms first fired after it took over.
    let new_holder = owners(&mut s)[cityos_engine::engine::SINGLETON].clone();
    let nh = nodes.iter().find(|n| n.name == new_holder).unwrap();
    let (_, v) = get_json(&nh.addr, "/api/v1/readings/stats");
    let raised = v["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["rule"] == "manhole_tilted")
        .and_then(|a| a["raised"].as_u64())
        .unwrap();
    assert!(
        raised < first.len() as u64,
        "raised {raised} of {}",
        first.len()
    );
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The meals room on two nodes (issue 16): its book lives in the memory of the holder of
/// the singleton lease, and every `/api/v1/meals/…` request another node takes — reads
/// too — is forwarded there. An elder registered, topped up and ordering on the node
/// without the lease is seen whole on the holder and back; a keyed top-up sent to both
/// credits once; orders sent to both nodes in turn stop at the slot's capacity, exactly;
/// a holder that lost the lease (paused) and took it back reads the book again, so what
/// the other holder wrote meanwhile is in it.
#[test]
fn the_meal_book_is_one_across_nodes() {
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_meals") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-clusterm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut nodes: Vec<Node> = ["a", "b"]
        .iter()
        .map(|n| start(n, &dir, &db.schema_url))
        .collect();
    for n in &mut nodes {
        wait_healthy(n);
    }
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["a", "b"], Duration::from_secs(15));
    let holder = owners(&mut s)[cityos_engine::engine::SINGLETON].clone();
    let (on, off) = if holder == "a" {
        (nodes[0].addr.clone(), nodes[1].addr.clone())
    } else {
        (nodes[1].addr.clone(), nodes[0].addr.clone())
    };
    let (on, off) = (on.as_str(), off.as_str());
    let officer = officer_token();
    let call = |addr: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        let body = body.map(|b| b.to_string());
        let (status, text) =
            crate::support::http(addr, method, path, Some(officer.as_str()), body.as_deref());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        (status, v)
    };
    // A citizen's meal page from the node without the lease carries the first screen (the
    // page request is sent to the holder, which keeps the book).
    let citizen = token_of("family_cluster", cityos_core::Role::Citizen, None, None);
    let (st, page) =
        crate::support::http(off, "GET", "/ui/meals.html", Some(citizen.as_str()), None);
    assert_eq!(st, 200);
    let island = page
        .split_once(r#"<script type="application/json" id="meals-first">"#)
        .and_then(|(_, rest)| rest.split_once("</script>"))
        .map(|(json, _)| json.to_string())
        .unwrap_or_else(|| panic!("no first screen on the node without the lease: {page}"));
    let island: serde_json::Value = serde_json::from_str(&island).unwrap();
    assert_eq!(island["account"], "family_cluster", "{island}");
    assert!(
        island["canteens"].as_array().is_some_and(|c| !c.is_empty()),
        "{island}"
    );
    // A community the canteen C01 serves, read through the node without the lease.
    let (st, cs) = call(off, "GET", "/api/v1/meals/communities", None);
    assert_eq!(st, 200, "{cs}");
    let community = cs["communities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["subdistrict"] == "310104003")
        .expect("a community of 天平路")["code"]
        .as_str()
        .unwrap()
        .to_string();
    let (st, e) = call(
        off,
        "POST",
        "/api/v1/meals/elders",
        Some(
            serde_json::json!({"name": "集群测试老人", "phone": "13900002222", "address": "天平路1号",
            "birth_date": "1940-02-02", "community": community, "canteen": "C01"}),
        ),
    );
    assert_eq!(st, 201, "{e}");
    let elder = e["id"].as_str().unwrap().to_string();
    // A keyed top-up on each node: credited once.
    let top = serde_json::json!({"amount_fen": 50_000, "key": "cluster-top-up-1"});
    let (s1, t1) = call(
        off,
        "POST",
        &format!("/api/v1/meals/elders/{elder}/top-ups"),
        Some(top.clone()),
    );
    let (s2, t2) = call(
        on,
        "POST",
        &format!("/api/v1/meals/elders/{elder}/top-ups"),
        Some(top),
    );
    assert!(matches!(s1, 200 | 201), "{t1}");
    assert!(matches!(s2, 200 | 201), "{t2}");
    assert_eq!(
        (t1["replayed"].as_bool(), t2["replayed"].as_bool()),
        (Some(false), Some(true)),
        "{t1} {t2}"
    );
    assert_eq!(t2["balance_fen"], 50_000, "{t2}");
    // Breakfast two days ahead (its cut-off is the evening before): 120 portions.
    let date = cityos_core::time::Date::from_days(
        cityos_core::time::local_date(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
        )
        .days()
            + 2,
    )
    .to_string();
    let (st, m) = call(
        off,
        "PUT",
        "/api/v1/meals/canteens/C01/menu",
        Some(serde_json::json!({"date": date, "meal": "breakfast",
            "dishes": [{"id": "B1", "name": "白粥", "price": 300, "tags": ["soft"]}]})),
    );
    assert_eq!(st, 200, "{m}");
    let mut placed = Vec::new();
    let mut sold_out = 0;
    for i in 0..42 {
        let addr = if i % 2 == 0 { off } else { on };
        let (st, o) = call(
            addr,
            "POST",
            "/api/v1/meals/orders",
            Some(
                serde_json::json!({"elder": elder, "canteen": "C01", "date": date, "meal": "breakfast",
                "lines": [{"dish": "B1", "qty": 3}], "round": "pickup", "key": format!("cluster-order-{i}")}),
            ),
        );
        match st {
            201 => placed.push(o["id"].as_str().unwrap().to_string()),
            409 | 422 if o["code"] == "meal_sold_out" => sold_out += 1,
            _ => panic!("order {i} on {addr}: {st} {o}"),
        }
    }
    assert_eq!((placed.len(), sold_out), (40, 2), "120 portions, 3 each");
    // The same key on the other node answers the same order (200), charges nothing more.
    let (st, again) = call(
        on,
        "POST",
        "/api/v1/meals/orders",
        Some(
            serde_json::json!({"elder": elder, "canteen": "C01", "date": date, "meal": "breakfast",
            "lines": [{"dish": "B1", "qty": 3}], "round": "pickup", "key": "cluster-order-0"}),
        ),
    );
    assert_eq!(
        (st, again["id"].as_str()),
        (200, Some(placed[0].as_str())),
        "{again}"
    );
    // Both nodes answer the same: the elder's latest orders and balance, the kitchen's 120.
    let mut seen = Vec::new();
    for addr in [off, on] {
        let (st, v) = call(addr, "GET", &format!("/api/v1/meals/elders/{elder}"), None);
        assert_eq!(st, 200, "{v}");
        let ids: BTreeSet<String> = v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            ids.len() == 10 && ids.iter().all(|i| placed.contains(i)),
            "{v}"
        );
        let (st, k) = call(
            addr,
            "GET",
            &format!("/api/v1/meals/canteens/C01/kitchen?date={date}&meal=breakfast"),
            None,
        );
        assert_eq!(st, 200, "{k}");
        assert_eq!(k["portions"], 120, "{k}");
        seen.push((ids, v["balance_fen"].clone()));
    }
    assert_eq!(seen[0], seen[1]);
    assert!(seen[0].1.as_i64().unwrap() < 50_000, "{:?}", seen[0].1);
    // The holder paused past its lease: the other node takes the meal book (reading it from
    // the store) and takes a top-up; the old holder, resumed, loses the lease; with the new
    // holder killed it takes the lease back and reads the book again — the top-up is there.
    let (hi, oi) = if holder == "a" { (0, 1) } else { (1, 0) };
    let other = nodes[oi].name.clone();
    let before = seen[0].1.as_i64().unwrap();
    let singleton_held_by = |s: &mut dyn cityos_engine::Store, who: &str| {
        let t = Instant::now();
        while owners(s)
            .get(cityos_engine::engine::SINGLETON)
            .map(String::as_str)
            != Some(who)
        {
            assert!(
                t.elapsed() < TAKEOVER_LIMIT,
                "the singleton lease did not move to {who}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    signal(&nodes[hi], "-STOP");
    singleton_held_by(&mut s, &other);
    let (st, t3) = call(
        off,
        "POST",
        &format!("/api/v1/meals/elders/{elder}/top-ups"),
        Some(serde_json::json!({"amount_fen": 1_000, "key": "cluster-top-up-2"})),
    );
    assert!(matches!(st, 200 | 201), "{t3}");
    assert_eq!(t3["balance_fen"], before + 1_000, "{t3}");
    signal(&nodes[hi], "-CONT");
    std::thread::sleep(Duration::from_millis(2 * LEASE_MS));
    nodes[oi].child.kill().unwrap();
    let _ = nodes[oi].child.wait();
    singleton_held_by(&mut s, &holder);
    let (st, v) = call(on, "GET", &format!("/api/v1/meals/elders/{elder}"), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["balance_fen"], before + 1_000, "the book read again");
    for n in &nodes {
        signal(n, "-INT");
    }
    for mut n in nodes {
        let _ = n.child.wait();
    }
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A node refused for its clock writes nothing first: on a database no node has used,
/// the cluster's settings row is still absent after the refusal (a node joining later
/// with the right clock sets it).
#[test]
fn a_node_refused_for_its_clock_leaves_no_settings() {
    use cityos_engine::StoreConnection;
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_skew_first") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("cityos-skewfirst-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("token.key"), TOKEN_KEY).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cityos"))
        .args([
            "serve",
            "--addr",
            &free_addr(),
            "--data",
            dir.to_str().unwrap(),
            "--database-url",
            &db.schema_url,
            "--node",
            "far",
        ])
        .env("CITYOS_CLOCK_SKEW_MS", "90000")
        .env_remove("CITYOS_DATABASE_URL")
        .env_remove("CITYOS_NATS_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("90 s ahead of the database's"), "{err}");
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let rows = s
        .query_groups(&cityos_engine::query::Sql {
            text: "SELECT node, COUNT(*), 0::bigint FROM cluster_nodes GROUP BY node".into(),
            params: vec![],
        })
        .unwrap();
    assert!(
        rows.is_empty(),
        "nothing written by the refused node: {rows:?}"
    );
    drop(s);
    db.drop_schema();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two nodes hearing the broker; the first (the readings holder) aborts — like `kill -9`
/// — at `stage` of the first batch it applies that reaches the 120th message
/// (`CITYOS_FAULT_READINGS_ABORT`). Devices
/// join the stream over time, so that batch holds first readings (alarms firing).
/// Answers (readings sent, the aborting holder's log, the survivor's log, the survivor's
/// accepted count); checks that the queue drained, every alarm fired once at its device's
/// first reading and each alarm filed exactly one report.
fn readings_holder_aborts(stage: &str, tag: &str) -> (usize, String, String, u64) {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return (0, String::new(), String::new(), 0);
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres(&format!("cluster_{tag}")) else {
        return (0, String::new(), String::new(), 0);
    };
    let stream = unique(&format!("CITYOS_TEST_{}", tag.to_uppercase()));
    let prefix = unique(&format!("cityos-test-{tag}"));
    let dir = std::env::temp_dir().join(format!("cityos-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
        "--mqtt-url",
        mqtt.as_str(),
    ];
    let fault = format!("{stage}:120");
    let env1 = [
        ("CITYOS_MQTT_PREFIX", prefix.as_str()),
        ("CITYOS_FAULT_READINGS_ABORT", fault.as_str()),
    ];
    let env2 = [("CITYOS_MQTT_PREFIX", prefix.as_str())];
    // The first node alone first: it holds the singleton lease (the readings).
    let mut f1 = start_env("f1", &dir, &db.schema_url, &args, &env1);
    wait_healthy(&mut f1);
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["f1"], Duration::from_secs(15));
    let mut f2 = start_env("f2", &dir, &db.schema_url, &args, &env2);
    wait_healthy(&mut f2);
    wait_held(&mut s, all, &["f1", "f2"], Duration::from_secs(15));
    assert_eq!(
        owners(&mut s)[cityos_engine::engine::SINGLETON],
        "f1",
        "the first node keeps the singleton lease"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let p = Publisher::new(&mqtt, &unique(&format!("cityos-test-pub-{tag}")));
    let devices: Vec<String> = (1..=40).map(|i| format!("MH-{i:03}")).collect();
    let t0 = now_ms() / 1000 * 1000 - 200_000;
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let sent = 400usize;
    for i in 0..sent {
        // A new device every 10 readings; each reading of a device a second after its
        // last (distinct messages, in order).
        let live = (1 + i / 10).min(devices.len());
        let d = &devices[i % live];
        let at = seen.get(d).map_or(t0, |t| t + 1000);
        seen.insert(d.clone(), at);
        first.entry(d.clone()).or_insert(at);
        p.send(&format!("{prefix}/readings/{d}"), tilted(at));
        std::thread::sleep(Duration::from_millis(12));
    }
    drop(p);
    // The holder aborted at the fault; the other node takes the lease over.
    let t = Instant::now();
    while f1.child.try_wait().unwrap().is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "the holder did not abort: {}",
            std::fs::read_to_string(&f1.log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log1 = std::fs::read_to_string(&f1.log).unwrap_or_default();
    wait_held(&mut s, all, &["f2"], TAKEOVER_LIMIT);
    // Drained: each message stored once, everything applied and acknowledged (the
    // batch the holder never acknowledged comes again after the ack wait).
    assert_drained(&nats, &stream, sent);
    std::thread::sleep(Duration::from_millis(500));
    // Every alarm fired once, at its device's first reading, and filed one report.
    let alarms = tilt_alarms(&mut s);
    for (d, at) in &first {
        assert_eq!(
            alarms.get(d),
            Some(&("firing".to_string(), *at)),
            "device {d}\n{log1}"
        );
    }
    assert_eq!(first.len(), devices.len());
    assert_eq!(
        s.counts().unwrap().reports as usize,
        first.len(),
        "one report per alarm, none twice\n{log1}"
    );
    let (_, v) = get_json(&f2.addr, "/api/v1/readings/stats");
    let accepted = v["accepted"].as_u64().unwrap();
    let log2 = std::fs::read_to_string(&f2.log).unwrap_or_default();
    signal(&f2, "-INT");
    let _ = f2.child.wait();
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
    (sent, log1, log2, accepted)
}

/// The `seq=` a log line `event … seq=N` names.
fn logged_seq(log: &str, event: &str) -> Option<u64> {
    logged(log, event, "seq")
}

/// The number field `field` of the first log line of `event`.
fn logged(log: &str, event: &str, field: &str) -> Option<u64> {
    log.lines()
        .find(|l| l.starts_with(event))?
        .split_whitespace()
        .find_map(|f| f.strip_prefix(&format!("{field}=")))?
        .parse()
        .ok()
}

/// The holder applied a batch — its alarm states and the queue's mark written in one
/// transaction — and died before acknowledging it: the batch comes again to the new
/// holder, which acknowledges it without applying it. Counted exactly: the new holder
/// applied every reading after the dead holder's mark, and not one more.
#[test]
fn a_batch_applied_but_not_acknowledged_by_a_dead_holder_is_not_applied_again() {
    let (sent, log1, log2, accepted) = readings_holder_aborts("before_ack", "rqack");
    if sent == 0 {
        return;
    }
    let mark = logged_seq(&log1, "fault_abort_before_ack")
        .unwrap_or_else(|| panic!("the holder aborted before its acknowledgement: {log1}"));
    assert!(mark >= 120 && (mark as usize) < sent, "mark {mark}");
    // What the dead holder applied, counted by itself just before it died.
    let applied = logged(&log1, "fault_abort_before_ack", "accepted").unwrap();
    assert!(
        log2.contains("readings_queue_skipped"),
        "the unacknowledged batch came again and was passed over: {log2}"
    );
    assert_eq!(
        accepted,
        sent as u64 - applied,
        "the new holder applied exactly the readings the dead one had not (mark {mark})"
    );
}

/// The holder filed a batch's alarm cases and died before writing their states and the
/// queue's mark: the new holder applies the batch again, and each alarm it fires again
/// finds the case already filed under its key (device, rule, time fired) — one report
/// per alarm, none twice.
#[test]
fn a_batch_whose_holder_died_before_its_mark_files_no_alarm_twice() {
    let (sent, log1, log2, accepted) = readings_holder_aborts("before_mark", "rqmark");
    if sent == 0 {
        return;
    }
    let top = logged_seq(&log1, "fault_abort_before_mark")
        .unwrap_or_else(|| panic!("the holder aborted before its mark: {log1}"));
    assert!(top > 0 && (top as usize) < sent, "top {top}");
    // That batch had fired alarms and filed their cases (else nothing was at stake).
    let fired = logged(&log1, "fault_abort_before_mark", "alarms").unwrap_or(0);
    assert!(fired > 0, "the aborted batch fired no alarm: {log1}");
    // The aborted batch was applied again by the new holder (nothing skipped).
    assert!(!log2.contains("readings_queue_skipped"), "{log2}");
    assert!(
        accepted > sent as u64 - top,
        "accepted {accepted}, top {top}"
    );
}

/// Both streams a node opens on NATS — the bus's and the readings queue's — made earlier
/// with JetStream's default 2-minute duplicate window (an older version, another tool)
/// are widened to 10 minutes when the node starts (`jetstream::ensure_stream`), so a
/// copy handed in late is still dropped by the stream.
#[test]
fn streams_made_with_a_shorter_duplicate_window_are_widened() {
    let Some(nats) = nats() else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_window") else {
        return;
    };
    let stream = unique("CITYOS_TEST_WIN");
    let two_min = 120_000_000_000u64;
    for (name, subject) in [
        (stream.clone(), format!("{}.>", stream.to_lowercase())),
        (
            format!("{stream}_READINGS"),
            format!("{}-readings.in", stream.to_lowercase()),
        ),
    ] {
        let v = js_call(
            &nats,
            &format!("$JS.API.STREAM.CREATE.{name}"),
            &serde_json::json!({"name": name, "subjects": [subject], "storage": "memory",
                "duplicate_window": two_min})
            .to_string(),
        );
        assert!(v.get("error").is_none(), "{v}");
    }
    let dir = std::env::temp_dir().join(format!("cityos-win-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
    ];
    let mut n = start_with("w1", &dir, &db.schema_url, &args);
    wait_healthy(&mut n);
    let window = |name: &str| {
        js_request(&nats, &format!("$JS.API.STREAM.INFO.{name}"))["config"]["duplicate_window"]
            .as_u64()
    };
    let t = Instant::now();
    let readings = format!("{stream}_READINGS");
    while window(&readings) == Some(two_min) && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(window(&stream), Some(600_000_000_000), "the bus's stream");
    assert_eq!(
        window(&readings),
        Some(600_000_000_000),
        "the readings queue"
    );
    let log = std::fs::read_to_string(&n.log).unwrap_or_default();
    assert_eq!(
        log.matches("nats_duplicate_window_raised").count(),
        2,
        "{log}"
    );
    signal(&n, "-INT");
    let _ = n.child.wait();
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A batch delivered again after newer ones (a pull cut short, a holder that let go) is
/// applied when it comes, never passed over as covered by the newer ones: the queue's
/// mark is the set of sequences applied, not the highest. One node; a batch of it is
/// let go unapplied (`CITYOS_FAULT_READINGS_ABORT=drop:60`: the batch reaching the 60th
/// message) and comes again after the ack wait, behind the rest. Counted exactly: every reading sent is applied once.
#[test]
fn a_batch_delivered_again_after_newer_ones_is_applied_not_passed_over() {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_rqdrop") else {
        return;
    };
    let stream = unique("CITYOS_TEST_RQDROP");
    let prefix = unique("cityos-test-rqdrop");
    let dir = std::env::temp_dir().join(format!("cityos-rqdrop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
        "--mqtt-url",
        mqtt.as_str(),
    ];
    let env = [
        ("CITYOS_MQTT_PREFIX", prefix.as_str()),
        ("CITYOS_FAULT_READINGS_ABORT", "drop:60"),
    ];
    let mut n = start_env("d1", &dir, &db.schema_url, &args, &env);
    wait_healthy(&mut n);
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    wait_held(&mut s, partitions(), &["d1"], Duration::from_secs(15));
    std::thread::sleep(Duration::from_millis(1500));
    let p = Publisher::new(&mqtt, &unique("cityos-test-pub-rqdrop"));
    let t0 = now_ms() / 1000 * 1000 - 200_000;
    let sent = 300usize;
    for i in 0..sent {
        let d = format!("MH-{:03}", 1 + i % 30);
        p.send(
            &format!("{prefix}/readings/{d}"),
            tilted(t0 + (i / 30) as i64 * 1000),
        );
        std::thread::sleep(Duration::from_millis(12));
    }
    drop(p);
    assert_drained(&nats, &stream, sent);
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(&n.log).unwrap_or_default();
    let dropped = logged_seq(&log, "fault_drop_batch")
        .unwrap_or_else(|| panic!("the second batch was let go: {log}"));
    assert!(dropped > 0 && (dropped as usize) < sent, "{dropped}");
    let (_, v) = get_json(&n.addr, "/api/v1/readings/stats");
    assert_eq!(
        v["accepted"].as_u64(),
        Some(sent as u64),
        "every reading applied once, the batch let go too\n{log}"
    );
    assert!(!log.contains("readings_queue_skipped"), "{log}");
    signal(&n, "-INT");
    let _ = n.child.wait();
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Once the holder's batch waits at the fault: freezes the holder (`SIGSTOP`); once the
/// other node holds the singleton lease: continues it and lets the batch go on (removes
/// the gate). Answers whether it was continued.
fn freeze_and_continue(
    holder: &Node,
    s: &mut cityos_engine::PostgresStore,
    gate: &Path,
    frozen: &mut bool,
) -> bool {
    if !*frozen {
        if std::fs::read_to_string(&holder.log)
            .unwrap_or_default()
            .contains("fault_stop_before_mark")
        {
            signal(holder, "-STOP");
            *frozen = true;
        }
        return false;
    }
    if owners(s)
        .get(cityos_engine::engine::SINGLETON)
        .is_some_and(|o| *o != holder.name)
    {
        signal(holder, "-CONT");
        let _ = std::fs::remove_file(gate);
        return true;
    }
    false
}

/// The readings holder paused (`SIGSTOP`, as a frozen machine) after applying a batch and
/// filing its alarms' cases, before writing the batch's alarm states and the queue's mark
/// (`CITYOS_FAULT_READINGS_ABORT=stop_before_mark:120`); the other node takes the lease
/// over; the paused node is continued at once: its write is refused by the fence (nothing
/// of it stored), so the new holder applies that batch itself. Counted exactly: the two
/// nodes together applied every reading once, plus that batch a second time — in the
/// paused node's memory only. Without the fence the paused node's mark would land and the
/// new holder would pass the batch over.
#[test]
fn a_readings_holder_paused_past_its_lease_writes_nothing_when_continued() {
    let _turn = MQTT_TURN.lock().unwrap_or_else(|e| e.into_inner());
    let (Some(nats), Some(mqtt)) = (nats(), mqtt()) else {
        return;
    };
    let _nodes = crate::support::nodes_turn();
    let Some(db) = postgres("cluster_rqstop") else {
        return;
    };
    let stream = unique("CITYOS_TEST_RQSTOP");
    let prefix = unique("cityos-test-rqstop");
    let dir = std::env::temp_dir().join(format!("cityos-rqstop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let args = [
        "--nats-url",
        nats.as_str(),
        "--nats-stream",
        stream.as_str(),
        "--mqtt-url",
        mqtt.as_str(),
    ];
    // The batch waits at the fault while this file exists; the test freezes the whole
    // process meanwhile (SIGSTOP), then continues it and removes the file.
    std::fs::create_dir_all(&dir).unwrap();
    let gate = dir.join("gate");
    std::fs::write(&gate, b"").unwrap();
    let env1 = [
        ("CITYOS_MQTT_PREFIX", prefix.as_str()),
        ("CITYOS_FAULT_READINGS_ABORT", "stop_before_mark:120"),
        ("CITYOS_FAULT_GATE", gate.to_str().unwrap()),
    ];
    let env2 = [("CITYOS_MQTT_PREFIX", prefix.as_str())];
    let mut f1 = start_env("p1", &dir, &db.schema_url, &args, &env1);
    wait_healthy(&mut f1);
    let mut s = cityos_engine::PostgresStore::connect(&db.url, Some(&db.schema)).unwrap();
    let all = partitions();
    wait_held(&mut s, all, &["p1"], Duration::from_secs(15));
    let mut f2 = start_env("p2", &dir, &db.schema_url, &args, &env2);
    wait_healthy(&mut f2);
    wait_held(&mut s, all, &["p1", "p2"], Duration::from_secs(15));
    assert_eq!(owners(&mut s)[cityos_engine::engine::SINGLETON], "p1");
    std::thread::sleep(Duration::from_millis(1500));
    let p = Publisher::new(&mqtt, &unique("cityos-test-pub-rqstop"));
    let devices: Vec<String> = (1..=40).map(|i| format!("MH-{i:03}")).collect();
    let t0 = now_ms() / 1000 * 1000 - 200_000;
    let mut first: BTreeMap<String, i64> = BTreeMap::new();
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let sent = 400usize;
    let (mut continued, mut frozen) = (false, false);
    for i in 0..sent {
        let live = (1 + i / 10).min(devices.len());
        let d = &devices[i % live];
        let at = seen.get(d).map_or(t0, |t| t + 1000);
        seen.insert(d.clone(), at);
        first.entry(d.clone()).or_insert(at);
        p.send(&format!("{prefix}/readings/{d}"), tilted(at));
        std::thread::sleep(Duration::from_millis(12));
        // Once the holder stopped itself and the other node holds the singleton: continue
        // it (before the new holder's ack wait is over).
        if !continued {
            continued = freeze_and_continue(&f1, &mut s, &gate, &mut frozen);
        }
    }
    drop(p);
    let t = Instant::now();
    while !continued {
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "the holder never stopped"
        );
        continued = freeze_and_continue(&f1, &mut s, &gate, &mut frozen);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Drained: everything stored once, applied and acknowledged.
    assert_drained(&nats, &stream, sent);
    std::thread::sleep(Duration::from_millis(1000));
    let log1 = std::fs::read_to_string(&f1.log).unwrap_or_default();
    let batch = logged(&log1, "fault_stop_before_mark", "batch").unwrap();
    assert!(batch > 0, "{log1}");
    let stopped_at = log1.find("fault_stop_before_mark").unwrap();
    assert!(
        log1[stopped_at..].contains("alarm_states_fenced"),
        "the continued node's write was refused by the fence: {log1}"
    );
    // Every alarm fired once, at its device's first reading, one report each.
    let alarms = tilt_alarms(&mut s);
    for (d, at) in &first {
        assert_eq!(
            alarms.get(d),
            Some(&("firing".to_string(), *at)),
            "device {d}"
        );
    }
    assert_eq!(s.counts().unwrap().reports as usize, first.len(), "{log1}");
    let accepted = |n: &Node| {
        get_json(&n.addr, "/api/v1/readings/stats").1["accepted"]
            .as_u64()
            .unwrap()
    };
    let (a1, a2) = (accepted(&f1), accepted(&f2));
    assert_eq!(
        a1 + a2,
        sent as u64 + batch,
        "p1 {a1} + p2 {a2}: every reading once, the refused batch twice"
    );
    for n in [&f1, &f2] {
        signal(n, "-INT");
    }
    let _ = f1.child.wait();
    let _ = f2.child.wait();
    drop(s);
    db.drop_schema();
    delete_streams(&nats, &stream);
    let _ = std::fs::remove_dir_all(&dir);
}
