//! `cityos audit verify`: walks the stored audit trail and the case log's per-case chains (the data directory's SQLite store,
//! or a database URL) and proves its hash chain intact, or names the first broken entry
//! (exit status 1).

use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_engine::Store;
use cityos_server::http::audit::{verify_case_logs, verify_store, LogVerdict, Verdict};
use std::path::Path;

/// Opens the store of `data_dir` (or `db`) read-side.
pub fn open(data_dir: &Path, db: Option<&str>) -> Result<Box<dyn Store>, String> {
    match db {
        Some(url) => cityos_engine::open_store(url).map_err(|e| e.to_string()),
        None => {
            let path = data_dir.join("cityos.db");
            if !path.exists() {
                return Err(format!(
                    "{}: no store here (give the data directory the server runs on with --data, or --db URL)",
                    path.display()
                ));
            }
            Ok(Box::new(
                SqliteStore::open_secondary(&path, Durability::Normal)
                    .map_err(|e| format!("{}: {e}", path.display()))?,
            ))
        }
    }
}

pub fn verify_cmd(data_dir: &Path, db: Option<&str>, json: bool) -> Result<(), String> {
    let mut store = open(data_dir, db)?;
    let t = std::time::Instant::now();
    let v = verify_store(store.as_mut()).map_err(|e| e.to_string())?;
    let logs = verify_case_logs(store.as_mut()).map_err(|e| e.to_string())?;
    let secs = t.elapsed().as_secs_f64();
    let case_log = match &logs {
        LogVerdict::Intact {
            entries,
            cases,
            unchained,
        } => {
            serde_json::json!({"intact": true, "entries": entries, "cases": cases, "unchained": unchained})
        }
        LogVerdict::Broken { case, seq, problem } => {
            serde_json::json!({"intact": false, "first_broken": {"case": case, "seq": seq}, "problem": problem})
        }
    };
    match v {
        Verdict::Intact { entries, seq, hash } => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"intact": true, "entries": entries, "head_seq": seq, "head_hash": hash, "case_log": case_log, "seconds": secs})
                );
            } else {
                println!("audit trail intact: {entries} entries, head {seq} {hash} ({secs:.2} s)");
                println!("case log: {case_log}");
            }
            match logs {
                LogVerdict::Broken { problem, .. } => Err(format!("case log broken at {problem}")),
                LogVerdict::Intact { .. } => Ok(()),
            }
        }
        Verdict::Broken(b) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"intact": false, "first_broken": b.seq(), "problem": b.to_string(), "case_log": case_log})
                );
            }
            Err(format!("audit trail broken at {b}"))
        }
    }
}
