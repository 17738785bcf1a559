//! `cityos bench audit`: the audit trail's costs.
//!
//! * `verify_s` — a SQLite store holding `--entries` chained entries (written here in
//!   transactions of 50,000, as the writer would append them), then `cityos audit verify`'s
//!   walk over all of them (pages of 50,000, every hash recomputed and every link checked).
//! * `api_ratio` — the API under audited traffic: each client files a report (as
//!   `bench api` does) and reads the case back as the district officer, a read of
//!   personal data that writes an audit entry. Run twice on fresh stores, the audit writer
//!   off and on; the ratio is throughput without ÷ throughput with (1.10 = 10 % slower).

use super::api::{pct, report_bodies, serve, temp_dir, Conn};
use cityos_core::audit::Entry;
use cityos_engine::config::Config;
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_engine::store::ShareStore;
use cityos_server::http::audit::{verify_store, Verdict};
use cityos_server::http::auth::{Principal, TokenKey};
use cityos_server::runtime::service::{Database, Service};
use cityos_server::{Clock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

fn fill(path: &std::path::Path, n: u64) -> Result<f64, String> {
    let mut s = SqliteStore::open(path, Durability::Normal).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let mut prev: Option<(i64, String)> = None;
    let mut batch = Vec::with_capacity(50_000);
    for i in 0..n {
        let e = Entry::next(
            prev.as_ref().map(|(s, h)| (*s, h.as_str())),
            1_780_000_000_000 + i as i64,
            if i % 3 == 0 {
                "zhang.district"
            } else {
                "chen.roads"
            },
            if i % 2 == 0 { "rows_read" } else { "case_read" },
            "dataset:lone_elder_households",
            r#"{"basis":"grant","grants":[1],"rows":50}"#,
        );
        prev = Some((e.seq, e.hash.clone()));
        batch.push(e);
        if batch.len() == 50_000 {
            s.append_audit(&batch).map_err(|e| e.to_string())?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        s.append_audit(&batch).map_err(|e| e.to_string())?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// One audited-traffic run: (requests/s, p99 ms, audit entries written).
fn traffic(
    reports: usize,
    clients: usize,
    audit_on: bool,
    dir: &std::path::Path,
) -> Result<(f64, f64, u64), String> {
    let cfg = Config::xuhui();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let key = TokenKey::random();
    let token = |name: &str, role| {
        key.sign(&Principal {
            name: name.into(),
            role,
            department: None,
            scope: None,
            channel: None,
            expires_at: i64::MAX,
        })
    };
    let app = Arc::new(token("bench-citizen-app", cityos_core::Role::Citizen));
    let officer = Arc::new(token("bench-officer", cityos_core::Role::DistrictOfficer));
    let _ = std::fs::remove_dir_all(dir);
    let svc = Service::start(
        cfg.clone(),
        &Database::Sqlite(dir.to_path_buf()),
        clock,
        key.clone(),
        4,
    )
    .map_err(|e| e.to_string())?;
    svc.state.0.audit.set_enabled(audit_on);
    let bodies = Arc::new(report_bodies(&cfg, reports));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let (lat, secs, errors) = rt.block_on(async {
        let (addr, server) = serve(&svc).await;
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
                let (bodies, next, app, officer) =
                    (bodies.clone(), next.clone(), app.clone(), officer.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0usize;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= bodies.len() {
                            break;
                        }
                        let t = Instant::now();
                        let (status, body) = c
                            .call("POST", "/api/v1/reports", Some(app.as_str()), &bodies[i])
                            .await;
                        let number = serde_json::from_str::<serde_json::Value>(&body)
                            .ok()
                            .and_then(|v| v["case"]["number"].as_str().map(String::from));
                        match number {
                            Some(n) if status == 201 || status == 200 => {
                                let (s, _) = c
                                    .call(
                                        "GET",
                                        &format!("/api/v1/cases/{n}"),
                                        Some(officer.as_str()),
                                        "",
                                    )
                                    .await;
                                if s != 200 {
                                    errors += 1;
                                }
                            }
                            _ => errors += 1,
                        }
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
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
    let state = svc.state.clone();
    svc.stop();
    let written = state
        .0
        .audit
        .entries_written
        .load(std::sync::atomic::Ordering::Relaxed);
    if errors > 0 {
        return Err(format!("{errors} requests failed"));
    }
    let mut lat = lat;
    lat.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    Ok((lat.len() as f64 / secs, pct(&lat, 0.99), written))
}

pub fn audit(
    entries: u64,
    reports: usize,
    clients: usize,
    json: bool,
    dir: Option<PathBuf>,
) -> Result<(), String> {
    let d = temp_dir("audit", &dir);
    let db = d.join("trail.db");
    let write_s = fill(&db, entries)?;
    println!(
        "{entries} chained audit entries written in {write_s:.1} s ({:.0} entries/s)",
        entries as f64 / write_s
    );
    let mut s = SqliteStore::open_secondary(&db, Durability::Normal).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let v = verify_store(&mut s).map_err(|e| e.to_string())?;
    let verify_s = t.elapsed().as_secs_f64();
    drop(s);
    let _ = std::fs::remove_file(&db);
    match v {
        Verdict::Intact { entries: n, .. } if n == entries => {
            println!(
                "verified {n} entries in {verify_s:.1} s ({:.0} entries/s)",
                n as f64 / verify_s
            )
        }
        other => return Err(format!("the bench's own trail did not verify: {other:?}")),
    }
    let (off, off_p99, _) = traffic(reports, clients, false, &d.join("off"))?;
    let (on, on_p99, written) = traffic(reports, clients, true, &d.join("on"))?;
    let ratio = off / on;
    println!("filing + officer read, {clients} clients, {reports} each run: audit off {off:.0}/s (p99 {off_p99:.1} ms), on {on:.0}/s (p99 {on_p99:.1} ms, {written} entries); ratio {ratio:.3}");
    if dir.is_none() {
        let _ = std::fs::remove_dir_all(&d);
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"bench": "audit", "entries": entries, "verify_s": (verify_s * 100.0).round() / 100.0, "api_ratio": (ratio * 1000.0).round() / 1000.0})
        );
    }
    Ok(())
}
