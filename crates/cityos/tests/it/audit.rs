//! `cityos audit verify`: a trail written as the service writes it verifies, with its
//! head; an entry edited by hand in the store (the append-only trigger dropped first) is
//! named as the first broken one and the command fails; a directory without a store is
//! named.

use crate::support::{cityos, stderr, stdout, tmp};
use cityos_core::audit::Entry;
use cityos_engine::store::sqlite::{rusqlite, Durability, SqliteStore};
use cityos_engine::store::ShareStore;

#[test]
fn audit_verify_proves_the_chain_and_names_a_hand_edited_entry() {
    let dir = tmp("audit-verify");
    let db = dir.join("cityos.db");
    let mut s = SqliteStore::open(&db, Durability::Normal).unwrap();
    let mut trail: Vec<Entry> = Vec::new();
    for i in 0..20 {
        let prev = trail.last().map(|e| (e.seq, e.hash.as_str()));
        trail.push(Entry::next(
            prev,
            1_000 + i,
            "liu.civil",
            "grant_approve",
            &format!("grant:{i}"),
            "{}",
        ));
    }
    s.append_audit(&trail).unwrap();
    drop(s);
    let data = dir.to_str().unwrap();
    let o = cityos(&["audit", "verify", "--data", data, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["intact"], true);
    assert_eq!(v["entries"], 20);
    assert_eq!(v["head_hash"], trail[19].hash.as_str());

    let conn = rusqlite::Connection::open(&db).unwrap();
    assert!(
        conn.execute("DELETE FROM audit_log WHERE seq = 7", [])
            .is_err(),
        "the trail is append-only"
    );
    conn.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone' WHERE seq = 12;",
    )
    .unwrap();
    drop(conn);
    let o = cityos(&["audit", "verify", "--data", data]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("entry 12") && err.contains("edited"), "{err}");

    let empty = tmp("audit-verify-empty");
    let o = cityos(&["audit", "verify", "--data", empty.to_str().unwrap()]);
    assert!(
        !o.status.success() && stderr(&o).contains("no store here"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}
