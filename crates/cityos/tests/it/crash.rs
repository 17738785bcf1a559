//! A crash test that stays: the real `cityos serve` binary, several clients sending
//! reports with an `Idempotency-Key`, `kill -9` at seeded random moments over ten rounds,
//! a restart after each, every unanswered request retried with its key. Afterwards every
//! acknowledged report is stored, no key made two reports, the store is consistent
//! (SQLite's `integrity_check`; the maintained counts equal counting the cases, every
//! report's case exists) and every restart answered `/healthz` within 2 s.

use crate::support::{free_addr, interrupt, postgres};
use cityos_engine::query::Sql;
use cityos_engine::Store;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;
const CLIENTS: usize = 4;
/// Longest a restart may take until `/healthz` answers.
const RESTART_LIMIT: Duration = Duration::from_secs(2);

/// SplitMix64: the seeded moments of the kills.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The token key written into each test's data directory, so the clients can sign in as a
/// citizens' app: anonymous reports are limited per address, an app's are not.
pub const TOKEN_KEY: &str = "6372617368207465737420746f6b656e206b657920666f7220636974796f7321";

/// The citizens' app token the clients send (signed with [`TOKEN_KEY`]).
pub fn app_token() -> &'static str {
    static TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TOKEN.get_or_init(|| {
        cityos_server::http::auth::TokenKey::from_hex(TOKEN_KEY)
            .expect("a token key")
            .sign(&cityos_server::http::auth::Principal {
                name: "crash-test-app".into(),
                role: cityos_core::Role::Citizen,
                department: None,
                scope: None,
                channel: None,
                expires_at: i64::MAX,
            })
    })
}

/// One HTTP/1.1 exchange; `None` when no complete answer came (the server died).
pub fn post(addr: &str, path: &str, key: &str, body: &str) -> Option<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nIdempotency-Key: {key}\r\nContent-Length: {}\r\n\r\n{body}", app_token(), body.len()).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_string())
        })?
        .parse()
        .ok()?;
    (body.len() == len).then(|| (status, body.to_string()))
}

pub fn healthz(addr: &str) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(
        s,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return false;
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.starts_with("HTTP/1.1 200")
}

struct Server {
    child: Child,
}

/// Starts `cityos serve` and waits for `/healthz`; returns the server and how long that took.
fn start(addr: &str, data: &Path, database_url: Option<&str>) -> (Server, Duration) {
    let t = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cityos"));
    cmd.args(["serve", "--addr", addr, "--data", data.to_str().unwrap()])
        .env_remove("CITYOS_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(u) = database_url {
        cmd.args(["--database-url", u]);
    }
    let mut child = cmd.spawn().expect("start cityos serve");
    while !healthz(addr) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cityos serve exited during start: {status}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "cityos serve did not answer /healthz"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    (Server { child }, t.elapsed())
}

impl Server {
    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        let _ = self.child.wait();
    }

    fn interrupt(mut self) {
        interrupt(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "a clean stop: {status:?}");
    }
}

/// What the clients know: the body sent under each key, the report id acknowledged for
/// it, and the keys still without an answer.
#[derive(Default)]
struct Ledger {
    bodies: BTreeMap<String, String>,
    acked: BTreeMap<String, i64>,
    pending: BTreeSet<String>,
}

/// Sends one keyed report; records the answer, or leaves the key pending.
fn send(addr: &str, key: &str, body: &str, ledger: &Mutex<Ledger>) {
    match post(addr, "/api/v1/reports", key, body) {
        Some((200 | 201, answer)) => {
            let v: serde_json::Value = serde_json::from_str(&answer).expect("a JSON answer");
            let id = v["report_id"].as_i64().expect("a report id");
            let mut l = ledger.lock().unwrap();
            if let Some(prev) = l.acked.insert(key.to_string(), id) {
                assert_eq!(prev, id, "key {key} answered with two reports");
            }
            l.pending.remove(key);
        }
        // Back-pressure or the store not ready yet: the retry comes later.
        Some((503, _)) | None => {
            ledger.lock().unwrap().pending.insert(key.to_string());
        }
        Some((status, answer)) => panic!("key {key}: {status} {answer}"),
    }
}

pub fn points() -> Vec<[f64; 2]> {
    let c = cityos_engine::config::Config::xuhui();
    let t = &c.territory;
    t.regions()
        .filter(|(_, r)| r.level == cityos_core::Level::Grid)
        .map(|(id, _)| t.interior_point(id))
        .step_by(7)
        .take(200)
        .collect()
}

/// The whole test against one store; `open` opens the store directly afterwards.
fn crash_rounds(name: &str, database_url: Option<&str>, open: impl Fn() -> Box<dyn Store>) {
    let _nodes = crate::support::nodes_turn();
    let data = std::env::temp_dir().join(format!("cityos-crash-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("token.key"), TOKEN_KEY).unwrap();
    let addr = free_addr();
    let points = Arc::new(points());
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(0x000C_1705 ^ name.len() as u64);
    let mut restarts = Vec::new();
    let cats = [
        "noise",
        "street_vending",
        "exposed_garbage",
        "illegal_parking",
    ];
    for round in 0..=ROUNDS {
        let (server, took) = start(&addr, &data, database_url);
        if round > 0 {
            restarts.push(took);
        }
        // Retry every unanswered request with its key (and its very body).
        let retry: Vec<(String, String)> = {
            let l = ledger.lock().unwrap();
            l.pending
                .iter()
                .map(|k| (k.clone(), l.bodies[k].clone()))
                .collect()
        };
        for (k, b) in &retry {
            send(&addr, k, b, &ledger);
        }
        if round == ROUNDS {
            let l = ledger.lock().unwrap();
            assert!(l.pending.is_empty(), "still unanswered: {:?}", l.pending);
            drop(l);
            server.interrupt();
            break;
        }
        // Clients send new keyed reports until the kill.
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let clients: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (addr, ledger, stop, points) =
                    (addr.clone(), ledger.clone(), stop.clone(), points.clone());
                std::thread::spawn(move || {
                    let mut i = 0usize;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let key = format!("crash-{round}-{c}-{i}");
                        let p = points[(round * 31 + c * 7 + i) % points.len()];
                        let body = serde_json::json!({
                            "category": cats[(c + i) % cats.len()],
                            "lon": p[0],
                            "lat": p[1],
                            "text": format!("崩溃测试 {key}"),
                        })
                        .to_string();
                        ledger
                            .lock()
                            .unwrap()
                            .bodies
                            .insert(key.clone(), body.clone());
                        send(&addr, &key, &body, &ledger);
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + rng.below(650)));
        server.kill9();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for c in clients {
            c.join().unwrap();
        }
    }
    let l = ledger.lock().unwrap();
    eprintln!(
        "{name}: {} keyed reports over {ROUNDS} kills; restarts took {restarts:?}",
        l.acked.len()
    );
    assert_eq!(l.acked.len(), l.bodies.len(), "every key was answered");
    for (i, t) in restarts.iter().enumerate() {
        assert!(
            *t < RESTART_LIMIT,
            "restart {i} took {t:?} (limit {RESTART_LIMIT:?})"
        );
    }
    // The store, opened directly.
    let mut s = open();
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
        assert!(
            s.load_case(r.case_id).unwrap().is_some(),
            "{key}: its case exists"
        );
        let a = s
            .idempotent(&format!("crash-test-app|{key}"))
            .unwrap()
            .unwrap_or_else(|| panic!("{key}: its key is stored"));
        let v: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(v["report_id"].as_i64(), Some(*id), "{key}");
    }
    let groups = |s: &mut dyn Store, text: &str| -> BTreeMap<String, i64> {
        s.query_groups(&Sql {
            text: text.into(),
            params: vec![],
        })
        .unwrap()
        .into_iter()
        .filter(|r| r.1 != 0)
        .map(|r| (r.0, r.1))
        .collect()
    };
    assert_eq!(
        groups(
            s.as_mut(),
            "SELECT state, CAST(SUM(n) AS BIGINT) FROM case_counts GROUP BY state"
        ),
        groups(
            s.as_mut(),
            "SELECT state, COUNT(*) FROM cases GROUP BY state"
        ),
        "the maintained counts equal counting the cases"
    );
    assert_eq!(
        groups(
            s.as_mut(),
            "SELECT 'orphans', COUNT(*) FROM reports r LEFT JOIN cases c ON c.id = r.case_id WHERE c.id IS NULL"
        ),
        BTreeMap::new(),
        "every report's case exists"
    );
    assert_eq!(
        groups(
            s.as_mut(),
            "SELECT 'logless', COUNT(*) FROM cases c WHERE NOT EXISTS (SELECT 1 FROM case_log l WHERE l.case_id = c.id)"
        ),
        BTreeMap::new(),
        "every case has its log"
    );
    drop(s);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn kill_9_under_load_loses_nothing_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("cityos-crash-{}-sqlite", std::process::id()));
    let db = dir.join("cityos.db");
    crash_rounds("sqlite", None, move || {
        let mut s = cityos_engine::store::sqlite::SqliteStore::open(
            &db,
            cityos_engine::store::sqlite::Durability::Full,
        )
        .unwrap();
        let check: String = s
            .connection()
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "SQLite's integrity check");
        Box::new(s)
    });
}

#[test]
fn kill_9_under_load_loses_nothing_on_postgres() {
    let Some(db) = postgres("crash") else {
        return;
    };
    let (u2, s2) = (db.url.clone(), db.schema.clone());
    crash_rounds("postgres", Some(&db.schema_url), move || {
        Box::new(cityos_engine::PostgresStore::connect(&u2, Some(&s2)).unwrap())
    });
    db.drop_schema();
}
