//! `cityos bench …`: benchmarks as commands, never as timed tests.
//!
//! * `intake` — end-to-end durable case intake through the engine's pipelined run loop
//!   (locate, dedup, route, deadlines, group commit with `synchronous=FULL`, answers only
//!   after the commit) with concurrent submitters, compared in the same run with bare
//!   SQLite inserts of exactly the rows the engine wrote, at the same pragmas and
//!   transaction size.
//! * `locate` — point → region-chain lookups on the Xuhui territory;
//! * `api` and `query` — [`api`]: intake and reads over loopback HTTP;
//! * `cluster` — [`cluster`]: intake with 1, 2, 3… nodes on one PostgreSQL, and failover;
//! * `mqtt` — [`mqtt`]: readings through a broker against a bare subscriber;
//! * `ingest` — [`ingest`]: the sensing hot path against a bare parse;
//! * `scenarios` — [`scenarios`]: the same path with the seven scenario packs against none;
//! * `meals` — [`meals`]: 为老助餐's 11:00 peak of orders over loopback HTTP;
//! * `classify` — [`classify`]: the citizen-text classifier's training time, size and speed;
//! * `ui` — [`ui`]: the command centre in headless Chromium over WebDriver;
//! * `lifecircle` — [`lifecircle`]: the 15-minute life circle's coverage (straight line and
//!   over a 50,000-edge network) and a what-if.
//! * `assistance` — [`assistance`]: 精准救助 — the synthetic district recomputed whole, and
//!   an incremental import of changed rows.
//! * `audit` — [`audit`]: verifying a long audit trail and the API's cost of audited reads.
//! * `evaluation` — [`evaluation`]: a month's evaluation over many stored cases and a
//!   what-if replay of many reports.
//!
//! Each prints human-readable lines and, with `--json`, ends with one JSON object.

pub mod api;
pub mod assistance;
pub mod audit;
pub mod classify;
pub mod cluster;
pub mod evaluation;
pub mod ingest;
pub mod lifecircle;
pub mod meals;
pub mod mqtt;
pub mod scenarios;
pub mod ui;

use cityos_core::case::Channel;

/// NDJSON bytes cut into batches of at most `lines` lines, on line boundaries.
pub fn line_batches(bytes: &[u8], lines: usize) -> Vec<&[u8]> {
    let mut batches = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (mut end, mut n) = (0, 0);
        while end < rest.len() && n < lines {
            end += rest[end..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len() - end, |p| p + 1);
            n += 1;
        }
        batches.push(&rest[..end]);
        rest = &rest[end..];
    }
    batches
}
use cityos_core::rng::Rng;
use cityos_core::time::{local, Date, Millis};
use cityos_core::workflow::NewReport;
use cityos_core::Level;
use cityos_engine::config::Config;
use cityos_engine::engine::Request;
use cityos_engine::runloop::RunLoop;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

/// Random points inside the territory (deterministic).
pub fn points(cfg: &Config, n: usize, seed: u64) -> Vec<[f64; 2]> {
    let t = &cfg.territory;
    let root = t.region(t.root());
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let x = rng.range_f64(root.bbox[0], root.bbox[2]);
        let y = rng.range_f64(root.bbox[1], root.bbox[3]);
        if t.locate(x, y).is_ok() {
            out.push([x, y]);
        }
    }
    out
}

pub fn locate(lookups: usize, threads: usize, json: bool) {
    let cfg = Config::xuhui();
    let pts = Arc::new(points(&cfg, 1_000_000, 42));
    let run = |threads: usize| -> f64 {
        let per = lookups / threads;
        let started = Instant::now();
        std::thread::scope(|s| {
            for k in 0..threads {
                let pts = pts.clone();
                let terr = cfg.territory.clone();
                s.spawn(move || {
                    let mut acc = 0u64;
                    for i in 0..per {
                        let p = pts[(i * 7 + k * 131) % pts.len()];
                        let ch = terr.locate(p[0], p[1]).expect("inside");
                        acc = acc.wrapping_add(ch.at(Level::Grid).unwrap_or(0) as u64);
                    }
                    std::hint::black_box(acc);
                });
            }
        });
        (per * threads) as f64 / started.elapsed().as_secs_f64()
    };
    let single = run(1);
    let multi = if threads > 1 { run(threads) } else { single };
    println!(
        "territory: {} regions, {} grids",
        cfg.territory.regions().count(),
        cfg.territory.count(Level::Grid)
    );
    println!("locate, 1 thread:   {:>12.0} lookups/s", single);
    println!("locate, {threads} threads:  {:>12.0} lookups/s", multi);
    if json {
        println!(
            "{}",
            serde_json::json!({"bench":"locate","lookups_per_s":multi.round(),"single_thread_per_s":single.round(),"threads":threads})
        );
    }
}

fn make_reports(cfg: &Config, n: usize) -> Vec<NewReport> {
    let pts = points(cfg, n, 7);
    let mut rng = Rng::new(11);
    let cats = &cfg.taxonomy.categories;
    let t0 = local(Date::new(2026, 11, 25).expect("date"), 0, 0);
    pts.into_iter()
        .enumerate()
        .map(|(i, p)| {
            let cat = &cats[rng.below(cats.len() as u64) as usize];
            let channel = match rng.below(20) {
                0..=8 => Channel::Citizen,
                9..=15 => Channel::Inspector,
                16..=18 => Channel::Sensor,
                _ => Channel::Data,
            };
            NewReport {
                channel,
                category: cat.code.clone(),
                lon: p[0],
                lat: p[1],
                text: format!("{}，请尽快处理（基准测试 {i}）", cat.name_zh),
                contact: (channel == Channel::Citizen).then(|| format!("1380000{:04}", i % 10_000)),
                at: t0 + (i as Millis) * 86_400_000 / n as Millis,
                media: Vec::new(),
                priority: None,
                playbook: None,
                suggestion: None,
            }
        })
        .collect()
}

/// A submitter's window of requests in flight: lock-free on the fast path, parking only
/// when the window is full (or to wait for the last answers).
#[derive(Default)]
struct Window {
    n: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Window {
    fn acquire(&self, limit: usize) {
        while self.n.load(Ordering::Acquire) >= limit {
            let g = self.lock.lock().expect("lock");
            if self.n.load(Ordering::Acquire) >= limit {
                let _ = self.cv.wait_timeout(g, std::time::Duration::from_millis(5));
            }
        }
        self.n.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self, limit: usize) {
        let prev = self.n.fetch_sub(1, Ordering::AcqRel);
        if prev == limit || prev == 1 {
            let _g = self.lock.lock().expect("lock");
            self.cv.notify_all();
        }
    }

    fn wait_empty(&self) {
        while self.n.load(Ordering::Acquire) > 0 {
            let g = self.lock.lock().expect("lock");
            if self.n.load(Ordering::Acquire) > 0 {
                let _ = self.cv.wait_timeout(g, std::time::Duration::from_millis(5));
            }
        }
    }
}

pub struct IntakeOptions {
    pub reports: usize,
    pub submitters: usize,
    pub in_flight: usize,
    pub max_batch: usize,
    pub dir: Option<PathBuf>,
}

pub fn intake(o: &IntakeOptions, json: bool) -> Result<(), String> {
    let cfg = Config::xuhui();
    let dir = o.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("cityos-bench-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let engine_db = dir.join("engine.db");
    let raw_db = dir.join("raw.db");
    for p in [&engine_db, &raw_db] {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", p.display()));
        }
    }
    let reports = make_reports(&cfg, o.reports);
    let store = SqliteStore::open(&engine_db, Durability::Full).map_err(|e| e.to_string())?;
    let engine = cfg.engine(Box::new(store)).map_err(|e| e.to_string())?;
    let writer =
        SqliteStore::open_secondary(&engine_db, Durability::Full).map_err(|e| e.to_string())?;
    let rl = RunLoop::start_pipelined(engine, Box::new(writer), 65_536, o.max_batch);
    let merged = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let per = o.reports.div_ceil(o.submitters.max(1));
    let mut chunks = Vec::new();
    let mut rest = reports;
    while !rest.is_empty() {
        let tail = rest.split_off(per.min(rest.len()));
        chunks.push(std::mem::replace(&mut rest, tail));
    }
    std::thread::scope(|s| {
        for chunk in chunks {
            let h = rl.handle.clone();
            let (merged, failed) = (merged.clone(), failed.clone());
            let window = Arc::new(Window::default());
            let limit = o.in_flight.max(1);
            s.spawn(move || {
                for r in chunk {
                    window.acquire(limit);
                    let (w, merged, failed) = (window.clone(), merged.clone(), failed.clone());
                    h.send(Request::Report(r), move |a| {
                        match a {
                            Ok(cityos_engine::Response::Intake(i)) if i.merged => {
                                merged.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => {}
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        w.release(limit);
                    })
                    .expect("engine running");
                }
                window.wait_empty();
            });
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let (mut engine, stats) = rl.stop();
    let counts = engine.store().counts().map_err(|e| e.to_string())?;
    drop(engine);
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        return Err(format!("{failed} reports failed during the benchmark"));
    }
    let per_s = o.reports as f64 / secs;
    let avg_batch = (stats.requests as f64 / stats.batches.max(1) as f64).max(1.0);
    println!(
        "engine: {} reports → {} cases ({} merged), {} log entries in {:.2} s; {} batches, mean {:.0}, largest {}",
        o.reports, counts.cases, merged.load(Ordering::Relaxed), counts.log_entries, secs, stats.batches, avg_batch, stats.largest_batch
    );
    let raw_secs = raw_inserts(&engine_db, &raw_db, avg_batch as usize)?;
    let raw_per_s = o.reports as f64 / raw_secs;
    println!(
        "engine intake: {:>10.0} reports/s (durable, synchronous=FULL, {} submitters)",
        per_s, o.submitters
    );
    println!("bare SQLite:   {:>10.0} reports/s (the same rows, same pragmas, {:.0} reports per transaction)", raw_per_s, avg_batch);
    println!("ratio {:.2}", per_s / raw_per_s);
    if o.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench":"intake","cases_per_s":per_s.round(),"raw_per_s":raw_per_s.round(),"ratio":(per_s/raw_per_s*1000.0).round()/1000.0})
        );
    }
    Ok(())
}

/// Copies every row the engine wrote into a fresh database with bare prepared inserts in
/// transactions of `batch` cases (with their log, reports and tasks), and times it.
fn raw_inserts(from: &Path, to: &Path, batch: usize) -> Result<f64, String> {
    let e = |x: rusqlite_shim::Error| x.to_string();
    let src = rusqlite_shim::Connection::open(from).map_err(e)?;
    type Row = Vec<rusqlite_shim::types::Value>;
    let load = |sql: &str| -> Result<Vec<Row>, String> {
        let mut st = src.prepare(sql).map_err(e)?;
        let n = st.column_count();
        let rows = st
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get::<_, rusqlite_shim::types::Value>(i))
                    .collect::<Result<Row, _>>()
            })
            .map_err(e)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(e)?;
        Ok(rows)
    };
    let cases = load("SELECT * FROM cases ORDER BY id")?;
    let logs = load("SELECT * FROM case_log ORDER BY case_id, seq")?;
    let reports = load("SELECT * FROM reports ORDER BY case_id, id")?;
    let tasks = load("SELECT * FROM tasks ORDER BY case_id")?;
    drop(src);
    let mut dst = SqliteStore::open(to, Durability::Full).map_err(|x| x.to_string())?;
    let conn = dst.connection();
    let insert = |table: &str, width: usize| {
        let ph: Vec<String> = (1..=width).map(|i| format!("${i}")).collect();
        format!("INSERT INTO {table} VALUES ({})", ph.join(","))
    };
    let width = |rows: &[Row]| rows.first().map_or(0, |r| r.len());
    let (sc, sl, sr, st) = (
        insert("cases", width(&cases)),
        insert("case_log", width(&logs)),
        insert("reports", width(&reports)),
        insert("tasks", width(&tasks)),
    );
    let started = Instant::now();
    let (mut li, mut ri, mut ti) = (0, 0, 0);
    for chunk in cases.chunks(batch.max(1)) {
        let tx = conn.transaction().map_err(e)?;
        {
            let mut c = tx.prepare_cached(&sc).map_err(e)?;
            let mut l = tx.prepare_cached(&sl).map_err(e)?;
            let mut r = tx.prepare_cached(&sr).map_err(e)?;
            let mut t = tx.prepare_cached(&st).map_err(e)?;
            let last_id = |row: &Row| match &row[0] {
                rusqlite_shim::types::Value::Integer(i) => *i,
                _ => 0,
            };
            let upto = chunk.last().map(last_id).unwrap_or(0);
            for row in chunk {
                c.execute(rusqlite_shim::params_from_iter(row.iter()))
                    .map_err(e)?;
            }
            while li < logs.len() && last_id(&logs[li]) <= upto {
                l.execute(rusqlite_shim::params_from_iter(logs[li].iter()))
                    .map_err(e)?;
                li += 1;
            }
            while ri < reports.len()
                && matches!(&reports[ri][1], rusqlite_shim::types::Value::Integer(i) if *i <= upto)
            {
                r.execute(rusqlite_shim::params_from_iter(reports[ri].iter()))
                    .map_err(e)?;
                ri += 1;
            }
            while ti < tasks.len() && last_id(&tasks[ti]) <= upto {
                t.execute(rusqlite_shim::params_from_iter(tasks[ti].iter()))
                    .map_err(e)?;
                ti += 1;
            }
        }
        tx.commit().map_err(e)?;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    Ok(secs)
}

/// rusqlite as re-exported by the engine (the binary does not depend on it directly).
mod rusqlite_shim {
    pub use cityos_engine::store::sqlite::rusqlite::*;
}
