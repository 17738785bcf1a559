//! The SQLite store: one file in the data directory, WAL journal, migrations applied at
//! open. `synchronous=FULL` by default: a committed batch survives power loss.

use super::*;
use crate::query::Param;
pub use rusqlite;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_query_columns.sql"),
    ),
    (3, include_str!("../../migrations/sqlite/0003_accounts.sql")),
    (
        4,
        include_str!("../../migrations/sqlite/0004_event_sequence.sql"),
    ),
    (
        5,
        include_str!("../../migrations/sqlite/0005_sort_keys.sql"),
    ),
    (
        6,
        include_str!("../../migrations/sqlite/0006_state_key.sql"),
    ),
    (
        7,
        include_str!("../../migrations/sqlite/0007_case_counts.sql"),
    ),
    (
        8,
        include_str!("../../migrations/sqlite/0008_drop_redundant_indexes.sql"),
    ),
    (
        9,
        include_str!("../../migrations/sqlite/0009_overdue_counts.sql"),
    ),
    (
        10,
        include_str!("../../migrations/sqlite/0010_subdistrict_created.sql"),
    ),
    (11, include_str!("../../migrations/sqlite/0011_media.sql")),
    (
        12,
        include_str!("../../migrations/sqlite/0012_datasets.sql"),
    ),
    (13, include_str!("../../migrations/sqlite/0013_vitals.sql")),
    (
        14,
        include_str!("../../migrations/sqlite/0014_room_state.sql"),
    ),
    (
        15,
        include_str!("../../migrations/sqlite/0015_scenarios.sql"),
    ),
    (
        16,
        include_str!("../../migrations/sqlite/0016_reports_at.sql"),
    ),
    (17, include_str!("../../migrations/sqlite/0017_share.sql")),
    (18, include_str!("../../migrations/sqlite/0018_meals.sql")),
    (
        19,
        include_str!("../../migrations/sqlite/0019_evaluation.sql"),
    ),
    (
        20,
        include_str!("../../migrations/sqlite/0020_lifecircle.sql"),
    ),
    (
        21,
        include_str!("../../migrations/sqlite/0021_assistance.sql"),
    ),
    (23, include_str!("../../migrations/sqlite/0023_devices.sql")),
    (
        24,
        include_str!("../../migrations/sqlite/0024_case_facts.sql"),
    ),
    (
        29,
        include_str!("../../migrations/sqlite/0029_figure_samples.sql"),
    ),
];

/// How hard a commit waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync on every commit (`synchronous=FULL`).
    Full,
    /// fsync at WAL checkpoints only (`synchronous=NORMAL`): a power cut may lose the
    /// last commits but never corrupts the database.
    Normal,
}

pub struct SqliteStore {
    conn: Connection,
    _checkpointer: Option<Checkpointer>,
}

/// Checkpoints the WAL from a background thread with its own connection, so that the
/// committing thread only appends to the WAL (and fsyncs it) and never copies pages back
/// into the database file on the hot path.
struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch("PRAGMA busy_timeout=5000;")
            .map_err(db)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cityos-checkpoint".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    for _ in 0..10 {
                        if flag.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(25));
                    }
                    // PASSIVE never blocks writers; errors (busy) just wait for the next round.
                    let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                }
                let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
            })
            .map_err(|e| StoreError::Db(format!("cannot start the checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn db(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e.to_string()),
        _ => StoreError::Db(e.to_string()),
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        let mut store = Self::init(conn, durability)?;
        store
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint=0;")
            .map_err(db)?;
        store._checkpointer = Some(Checkpointer::start(path)?);
        Ok(store)
    }

    /// A second connection to a database that another `SqliteStore` (which runs the
    /// checkpointer) has open: the pipelined run loop's writer.
    pub fn open_secondary(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path).map_err(db)?;
        let store = Self::init(conn, durability)?;
        store
            .conn
            .execute_batch("PRAGMA wal_autocheckpoint=0;")
            .map_err(db)?;
        Ok(store)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::init(
            Connection::open_in_memory().map_err(db)?,
            Durability::Normal,
        )
    }

    fn init(conn: Connection, durability: Durability) -> Result<SqliteStore, StoreError> {
        let sync = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous={sync}; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-8192;"
        ))
        .map_err(db)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY)",
        )
        .map_err(db)?;
        let mut store = SqliteStore {
            conn,
            _checkpointer: None,
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        // Every migration not yet applied, by version (not only those above the highest:
        // branches may land their numbers out of order).
        let applied: std::collections::HashSet<i64> = {
            let mut st = self
                .conn
                .prepare("SELECT version FROM schema_migrations")
                .map_err(db)?;
            let rows = st.query_map([], |r| r.get(0)).map_err(db)?;
            rows.collect::<Result<_, _>>().map_err(db)?
        };
        for (v, sql) in MIGRATIONS {
            if !applied.contains(v) {
                let tx = self.conn.transaction().map_err(db)?;
                tx.execute_batch(sql).map_err(db)?;
                tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", [v])
                    .map_err(db)?;
                tx.commit().map_err(db)?;
            }
        }
        Ok(())
    }

    /// The underlying connection (benchmarks compare against bare inserts on it).
    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    fn cases_where(&mut self, cond: &str) -> Result<Vec<Case>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT body FROM cases {cond} ORDER BY id"))
            .map_err(db)?;
        let rows = st
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        rows.iter().map(|b| parse_case(b)).collect()
    }
}

fn bind(params: &[Param]) -> Vec<rusqlite::types::Value> {
    params
        .iter()
        .map(|p| match p {
            Param::Int(i) => rusqlite::types::Value::Integer(*i),
            Param::Text(t) => rusqlite::types::Value::Text(t.clone()),
        })
        .collect()
}

impl StoreConnection for SqliteStore {
    fn limit_pages(&mut self, pages: Option<u64>) -> Result<(), StoreError> {
        // SQLite's own ceiling when lifted; a cap below the file's size holds it at its size.
        let n = pages.unwrap_or(4_294_967_294);
        self.conn
            .query_row(&format!("PRAGMA max_page_count = {n}"), [], |_| Ok(()))
            .map_err(db)
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn query_list(&mut self, sql: &Sql) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let mut st = self.conn.prepare_cached(&sql.text).map_err(db)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(bind(&sql.params)), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }

    fn query_groups(&mut self, sql: &Sql) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut st = self.conn.prepare_cached(&sql.text).map_err(db)?;
        let n = st.column_count();
        let rows = st
            .query_map(rusqlite::params_from_iter(bind(&sql.params)), |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    if n > 2 {
                        r.get::<_, Option<i64>>(2)?.unwrap_or(0)
                    } else {
                        0
                    },
                ))
            })
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(rows)
    }
}

impl CaseStore for SqliteStore {
    fn query_events(&mut self, sql: &Sql) -> Result<Vec<CaseEvent>, StoreError> {
        self.select(
            &sql.text,
            rusqlite::params_from_iter(bind(&sql.params)),
            event_row,
        )
    }

    fn put_idempotent(
        &mut self,
        a: &IdempotentAnswer,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        if self.exec(INSERT_IDEMPOTENT, idempotent_args(a))? == 1 {
            Ok(None)
        } else {
            self.idempotent(&a.key)
        }
    }

    fn idempotent(&mut self, key: &str) -> Result<Option<IdempotentAnswer>, StoreError> {
        Ok(self
            .select(SELECT_IDEMPOTENT, [key], idempotent_row)?
            .into_iter()
            .next())
    }

    fn commit(&mut self, batches: &[Batch<'_>]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut rows = Rows::new(&tx)?;
            batch::write_batches(&mut rows, batches)?;
        }
        tx.commit().map_err(db)
    }

    fn load_case(&mut self, id: CaseId) -> Result<Option<Case>, StoreError> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM cases WHERE id=$1")
            .map_err(db)?
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(db)?;
        body.map(|b| parse_case(&b)).transpose()
    }

    fn load_case_by_number(&mut self, number: &str) -> Result<Option<Case>, StoreError> {
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body FROM cases WHERE number=$1")
            .map_err(db)?
            .query_row([number], |r| r.get(0))
            .optional()
            .map_err(db)?;
        body.map(|b| parse_case(&b)).transpose()
    }

    fn load_open_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        self.cases_where(&format!("WHERE state IN {OPEN_STATES}"))
    }

    fn load_all_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        self.cases_where("")
    }

    fn load_log(&mut self, id: CaseId) -> Result<Vec<LogEntry>, StoreError> {
        self.select(SELECT_LOG, [id], log_entry)
    }

    fn load_report(&mut self, id: ReportId) -> Result<Option<Report>, StoreError> {
        Ok(self
            .reports(&format!("{SELECT_REPORT} WHERE id=$1"), id)?
            .pop())
    }

    fn recent_reports(
        &mut self,
        since: Millis,
        limit: i64,
    ) -> Result<Vec<(Report, String)>, StoreError> {
        self.select(SELECT_RECENT_REPORTS, [since, limit], recent_report_row)
    }

    fn reports_of(&mut self, case: CaseId) -> Result<Vec<Report>, StoreError> {
        self.reports(
            &format!("{SELECT_REPORT} WHERE case_id=$1 ORDER BY id"),
            case,
        )
    }

    fn max_ids(&mut self) -> Result<(CaseId, ReportId), StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT COALESCE(MAX(id),0) FROM cases), (SELECT COALESCE(MAX(id),0) FROM reports)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(db)
    }

    fn counts(&mut self) -> Result<Counts, StoreError> {
        self.conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM case_log), (SELECT COUNT(*) FROM reports)",
                [],
                |r| {
                    Ok(Counts {
                        cases: r.get(0)?,
                        log_entries: r.get(1)?,
                        reports: r.get(2)?,
                    })
                },
            )
            .map_err(db)
    }

    fn record_figures(&mut self, s: &crate::store::FigureSample) -> Result<(), StoreError> {
        self.exec(
            crate::store::INSERT_FIGURES,
            [
                Arg::Int(s.bucket),
                Arg::Int(s.at),
                Arg::Int(s.open),
                Arg::Int(s.overdue),
                Arg::Int(s.handled),
                Arg::Int(s.on_time),
            ],
        )?;
        self.exec(
            crate::store::PRUNE_FIGURES,
            [Arg::Int(s.bucket - crate::store::FIGURES_KEPT)],
        )
        .map(drop)
    }

    fn figures_at(
        &mut self,
        at: Millis,
        after: Millis,
    ) -> Result<Option<crate::store::FigureSample>, StoreError> {
        Ok(self
            .select(
                crate::store::SELECT_FIGURES,
                [at, after],
                crate::store::figures_row,
            )?
            .into_iter()
            .next())
    }
}

/// One process owns the file: the engine's counters, no leases.
impl ClusterStore for SqliteStore {}

impl AccountStore for SqliteStore {
    fn put_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.exec(UPSERT_USER, user_args(u)).map(drop)
    }

    fn user(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .select(SELECT_USER, [username], user_row)?
            .into_iter()
            .next())
    }
}

impl DatasetStore for SqliteStore {
    fn put_dataset(&mut self, d: &Dataset) -> Result<(), StoreError> {
        self.exec(crate::store::UPSERT_DATASET, dataset_args(d))
            .map(drop)
    }

    fn datasets(&mut self) -> Result<Vec<Dataset>, StoreError> {
        self.select(crate::store::SELECT_DATASETS, [], dataset_row)
    }

    fn put_rule_case(
        &mut self,
        rule: &str,
        subject: &str,
        case: Option<CaseId>,
    ) -> Result<(), StoreError> {
        match case {
            Some(c) => self
                .conn
                .prepare_cached(crate::store::UPSERT_RULE_CASE)
                .map_err(db)?
                .execute(params![rule, subject, c]),
            None => self
                .conn
                .prepare_cached(crate::store::DELETE_RULE_CASE)
                .map_err(db)?
                .execute(params![rule, subject]),
        }
        .map_err(db)?;
        Ok(())
    }

    fn rule_cases(&mut self, rule: &str) -> Result<Vec<(String, CaseId)>, StoreError> {
        self.select(crate::store::SELECT_RULE_CASES, [rule], case_link_row)
    }
}

impl DeviceStore for SqliteStore {
    fn put_devices(&mut self, rows: &[DeviceRow]) -> Result<(), StoreError> {
        self.exec_each(crate::store::UPSERT_DEVICE, rows, device_args)
    }

    fn registered_devices(&mut self) -> Result<Vec<DeviceRow>, StoreError> {
        self.select(crate::store::SELECT_DEVICES, [], device_row)
    }
}

impl SensingStore for SqliteStore {
    fn put_alarm_states(&mut self, rows: &[AlarmRow]) -> Result<(), StoreError> {
        self.exec_each(crate::store::UPSERT_ALARM, rows, alarm_args)
    }

    fn alarm_states(&mut self) -> Result<Vec<AlarmRow>, StoreError> {
        self.select(crate::store::SELECT_ALARMS, [], alarm_row)
    }
}

impl VitalsStore for SqliteStore {
    fn put_rollups(&mut self, r: &[Rollup]) -> Result<(), StoreError> {
        self.exec_each(crate::store::UPSERT_ROLLUP, r, rollup_args)
    }

    fn rollups(
        &mut self,
        indicator: &str,
        region: &str,
        step: i64,
        from: i64,
        to: i64,
    ) -> Result<Vec<Rollup>, StoreError> {
        self.select(
            crate::store::SELECT_ROLLUPS,
            params![indicator, region, step, from, to],
            rollup_row,
        )
    }

    fn put_cap(&mut self, m: &CapMessage) -> Result<(), StoreError> {
        self.exec(crate::store::INSERT_CAP, cap_args(m)).map(drop)
    }

    fn cap_messages(&mut self, limit: i64) -> Result<Vec<CapMessage>, StoreError> {
        self.select(crate::store::SELECT_CAP_RECENT, [limit], cap_row)
    }

    fn cap_message(&mut self, identifier: &str) -> Result<Option<CapMessage>, StoreError> {
        Ok(self
            .select(crate::store::SELECT_CAP_ONE, [identifier], cap_row)?
            .pop())
    }

    fn cap_chains(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.select(crate::store::SELECT_CAP_CHAINS, [], cap_chain_row)
    }

    fn put_alert_states(
        &mut self,
        upsert: &[AlertRow],
        delete: &[String],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut up = tx.prepare_cached(crate::store::UPSERT_ALERT).map_err(db)?;
            for a in upsert {
                run(&mut up, alert_args(a))?;
            }
            let mut del = tx.prepare_cached(crate::store::DELETE_ALERT).map_err(db)?;
            for fp in delete {
                del.execute([fp]).map_err(db)?;
            }
        }
        tx.commit().map_err(db)
    }

    fn alert_states(&mut self) -> Result<Vec<AlertRow>, StoreError> {
        self.select(crate::store::SELECT_ALERTS, [], alert_row)
    }

    fn put_silence(&mut self, x: &SilenceRow) -> Result<(), StoreError> {
        self.exec(crate::store::UPSERT_SILENCE, silence_args(x))
            .map(drop)
    }

    fn silences(&mut self) -> Result<Vec<SilenceRow>, StoreError> {
        self.select(crate::store::SELECT_SILENCES, [], silence_row)
    }

    fn put_alert_case(&mut self, fingerprint: &str, case: CaseId) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(crate::store::UPSERT_ALERT_CASE)
            .map_err(db)?
            .execute(params![fingerprint, case])
            .map_err(db)?;
        Ok(())
    }

    fn alert_cases(&mut self) -> Result<Vec<(String, CaseId)>, StoreError> {
        self.select(crate::store::SELECT_ALERT_CASES, [], case_link_row)
    }
}

impl ScenarioStore for SqliteStore {
    fn record_scenario(
        &mut self,
        pack: Option<&ScenarioPackRow>,
        audit: &ScenarioAuditRow,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        if let Some(p) = pack {
            run(
                &mut tx
                    .prepare_cached(crate::store::UPSERT_SCENARIO_PACK)
                    .map_err(db)?,
                scenario_pack_args(p),
            )?;
        }
        run(
            &mut tx
                .prepare_cached(crate::store::INSERT_SCENARIO_AUDIT)
                .map_err(db)?,
            scenario_audit_args(audit),
        )?;
        tx.commit().map_err(db)
    }

    fn scenario_packs(&mut self) -> Result<Vec<ScenarioPackRow>, StoreError> {
        self.select(crate::store::SELECT_SCENARIO_PACKS, [], scenario_pack_row)
    }

    fn scenario_audit(&mut self, pack: &str) -> Result<Vec<ScenarioAuditRow>, StoreError> {
        self.select(
            crate::store::SELECT_SCENARIO_AUDIT,
            [pack],
            scenario_audit_row,
        )
    }
}

impl LifeCircleStore for SqliteStore {
    fn put_lifecircle_upload(&mut self, u: &LifeCircleUpload) -> Result<(), StoreError> {
        self.exec(
            crate::store::UPSERT_LIFECIRCLE_UPLOAD,
            lifecircle_upload_args(u),
        )
        .map(drop)
    }

    fn delete_lifecircle_upload(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec(crate::store::DELETE_LIFECIRCLE_UPLOAD, [Arg::Text(name)])? > 0)
    }

    fn lifecircle_uploads(&mut self) -> Result<Vec<LifeCircleUpload>, StoreError> {
        self.select(
            crate::store::SELECT_LIFECIRCLE_UPLOADS,
            [],
            lifecircle_upload_row,
        )
    }
}

impl MealStore for SqliteStore {
    fn record_meals(
        &mut self,
        rows: &[MealRow],
        ledger: &[MealLedgerRow],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut up = tx
                .prepare_cached(crate::store::UPSERT_MEAL_ROW)
                .map_err(db)?;
            for r in rows {
                run(&mut up, meal_row_args(r))?;
            }
            let mut ins = tx
                .prepare_cached(crate::store::INSERT_MEAL_LEDGER)
                .map_err(db)?;
            for e in ledger {
                run(&mut ins, meal_ledger_args(e))?;
            }
        }
        tx.commit().map_err(db)
    }

    fn meal_rows(&mut self, kind: &str) -> Result<Vec<MealRow>, StoreError> {
        self.select(crate::store::SELECT_MEAL_ROWS, [kind], meal_row)
    }

    fn meal_ledger(&mut self) -> Result<Vec<MealLedgerRow>, StoreError> {
        self.select(crate::store::SELECT_MEAL_LEDGER, [], meal_ledger_row)
    }
}

impl AssistanceStore for SqliteStore {
    fn record_assistance(&mut self, rows: &[AssistanceRow]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut up = tx
                .prepare_cached(crate::store::UPSERT_ASSISTANCE_ROW)
                .map_err(db)?;
            for r in rows {
                run(&mut up, meal_row_args(r))?;
            }
        }
        tx.commit().map_err(db)
    }

    fn assistance_rows(&mut self, kind: &str) -> Result<Vec<AssistanceRow>, StoreError> {
        self.select(crate::store::SELECT_ASSISTANCE_ROWS, [kind], meal_row)
    }
}

impl ShareStore for SqliteStore {
    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut st = tx.prepare_cached(crate::store::INSERT_AUDIT).map_err(db)?;
            for e in entries {
                run(&mut st, audit_args(e))?;
            }
        }
        tx.commit().map_err(db)
    }

    fn audit_head(&mut self) -> Result<Option<AuditEntry>, StoreError> {
        Ok(self
            .select(crate::store::SELECT_AUDIT_HEAD, [], audit_row)?
            .into_iter()
            .next())
    }

    fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.select(crate::store::SELECT_AUDIT_PAGE, [after, limit], audit_row)
    }

    fn insert_grant(&mut self, g: &GrantRow) -> Result<i64, StoreError> {
        let ids = self.select(
            crate::store::INSERT_GRANT,
            rusqlite::params_from_iter(grant_args(g)),
            |r| r.int(0),
        )?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::Db("INSERT … RETURNING gave no id".into()))
    }

    fn update_grant(&mut self, g: &GrantRow) -> Result<(), StoreError> {
        let mut args = grant_args(g).to_vec();
        args.push(Arg::Int(g.id));
        self.exec(crate::store::UPDATE_GRANT, args).map(drop)
    }

    fn grants(&mut self) -> Result<Vec<GrantRow>, StoreError> {
        self.select(crate::store::SELECT_GRANTS, [], grant_row)
    }

    fn dataset(&mut self, name: &str) -> Result<Option<Dataset>, StoreError> {
        Ok(self
            .select(crate::store::SELECT_DATASET, [name], dataset_row)?
            .into_iter()
            .next())
    }

    fn log_links(
        &mut self,
        after_case: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLink>, StoreError> {
        self.select(
            crate::store::SELECT_LOG_LINKS,
            [after_case, after_seq, limit],
            log_link_row,
        )
    }
}

impl MediaStore for SqliteStore {
    fn put_media(&mut self, m: &Media) -> Result<(), StoreError> {
        self.exec(crate::store::INSERT_MEDIA, media_args(m))
            .map(drop)
    }

    fn media(&mut self, id: &str) -> Result<Option<Media>, StoreError> {
        Ok(self
            .select(crate::store::SELECT_MEDIA, [id], media_row)?
            .into_iter()
            .next())
    }
}

impl SqliteStore {
    fn reports(&mut self, sql: &str, key: i64) -> Result<Vec<Report>, StoreError> {
        self.select(sql, [key], report_row)
    }

    /// Prepares (cached) and runs a statement; the number of rows it changed.
    fn exec<'a>(
        &mut self,
        sql: &str,
        args: impl IntoIterator<Item = Arg<'a>>,
    ) -> Result<usize, StoreError> {
        run(&mut self.conn.prepare_cached(sql).map_err(db)?, args)
    }

    /// Runs a statement once per row, all in one transaction.
    fn exec_each<'r, R: 'r, const N: usize>(
        &mut self,
        sql: &str,
        rows: &'r [R],
        args: impl Fn(&'r R) -> [Arg<'r>; N],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(db)?;
        {
            let mut st = tx.prepare_cached(sql).map_err(db)?;
            for x in rows {
                run(&mut st, args(x))?;
            }
        }
        tx.commit().map_err(db)
    }

    /// Prepares (cached) and runs a query, building one value per row.
    fn select<T>(
        &mut self,
        sql: &str,
        params: impl rusqlite::Params,
        build: impl Fn(&dyn RowRead) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(db)?;
        rows(&mut st, params, build)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Arg::Int(v) => v.to_sql(),
            Arg::OptInt(v) => v.to_sql(),
            Arg::Float(v) => v.to_sql(),
            Arg::OptFloat(v) => v.to_sql(),
            Arg::Text(v) => v.to_sql(),
            Arg::OptText(v) => v.to_sql(),
            Arg::Bytes(v) => v.to_sql(),
        }
    }
}

impl RowRead for rusqlite::Row<'_> {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(db)
    }
    fn float(&self, i: usize) -> Result<f64, StoreError> {
        self.get(i).map_err(db)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.get(i).map_err(db)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.get(i).map_err(db)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(db)
    }
    fn opt_float(&self, i: usize) -> Result<Option<f64>, StoreError> {
        self.get(i).map_err(db)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.get(i).map_err(db)
    }
}

/// Runs a prepared statement and builds one value per row.
fn rows<T>(
    st: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
    build: impl Fn(&dyn RowRead) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut rs = st.query(params).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rs.next().map_err(db)? {
        out.push(build(r)?);
    }
    Ok(out)
}

/// Runs a prepared statement with shared arguments; the number of rows it changed.
fn run<'a>(
    st: &mut rusqlite::CachedStatement<'_>,
    args: impl IntoIterator<Item = Arg<'a>>,
) -> Result<usize, StoreError> {
    st.execute(rusqlite::params_from_iter(args)).map_err(db)
}

/// The batch writer's statements, prepared once per transaction.
struct Rows<'t> {
    ins_case: rusqlite::CachedStatement<'t>,
    upd_case: rusqlite::CachedStatement<'t>,
    ins_log: rusqlite::CachedStatement<'t>,
    log_head: rusqlite::CachedStatement<'t>,
    ins_rep: rusqlite::CachedStatement<'t>,
    del_tasks: rusqlite::CachedStatement<'t>,
    ins_task: rusqlite::CachedStatement<'t>,
    mv_rep: rusqlite::CachedStatement<'t>,
    ins_idem: rusqlite::CachedStatement<'t>,
    upsert_count: rusqlite::CachedStatement<'t>,
    sel_fold: rusqlite::CachedStatement<'t>,
    put_fold: rusqlite::CachedStatement<'t>,
}

impl<'t> Rows<'t> {
    fn new(conn: &'t Connection) -> Result<Rows<'t>, StoreError> {
        let st = |sql: &str| conn.prepare_cached(sql).map_err(db);
        Ok(Rows {
            ins_case: st(INSERT_CASE)?,
            upd_case: st(UPDATE_CASE)?,
            ins_log: st(INSERT_LOG)?,
            log_head: st(crate::store::SELECT_LOG_HEAD)?,
            ins_rep: st(INSERT_REPORT)?,
            del_tasks: st(DELETE_TASKS)?,
            ins_task: st(INSERT_TASK)?,
            mv_rep: st(MOVE_REPORT)?,
            ins_idem: st(INSERT_IDEMPOTENT)?,
            upsert_count: st(crate::query::UPSERT_COUNT)?,
            sel_fold: st(crate::store::SELECT_FOLD)?,
            put_fold: st(crate::store::UPSERT_FOLD)?,
        })
    }
}

impl batch::RowWriter for Rows<'_> {
    fn insert_report(&mut self, r: &Report) -> Result<(), StoreError> {
        run(&mut self.ins_rep, report_args(r)).map(drop)
    }

    fn insert_case(&mut self, w: &CaseWrite<'_>, row: &CaseRow<'_>) -> Result<(), StoreError> {
        run(&mut self.ins_case, case_insert_args(w, row)).map(drop)
    }

    fn update_case(
        &mut self,
        w: &CaseWrite<'_>,
        row: &CaseRow<'_>,
        prev: u64,
    ) -> Result<u64, StoreError> {
        Ok(run(&mut self.upd_case, case_update_args(w, row, prev))? as u64)
    }

    fn insert_log(
        &mut self,
        e: &LogEntry,
        body: &str,
        gseq: i64,
        chain: &str,
    ) -> Result<(), StoreError> {
        run(&mut self.ins_log, log_args(e, body, gseq, chain)).map(drop)
    }

    fn log_head(&mut self, case: CaseId) -> Result<Option<String>, StoreError> {
        self.log_head
            .query_row([case], |r| r.get::<_, Option<String>>(0))
            .optional()
            .map(Option::flatten)
            .map_err(db)
    }

    fn delete_tasks(&mut self, case: CaseId) -> Result<(), StoreError> {
        self.del_tasks.execute([case]).map_err(db)?;
        Ok(())
    }

    fn insert_task(&mut self, case: CaseId, t: &cityos_core::case::Task) -> Result<(), StoreError> {
        run(&mut self.ins_task, task_args(case, t)).map(drop)
    }

    fn move_report(&mut self, report: ReportId, case: CaseId) -> Result<(), StoreError> {
        self.mv_rep.execute(params![case, report]).map_err(db)?;
        Ok(())
    }

    fn insert_idempotent(&mut self, a: &IdempotentAnswer) -> Result<(), StoreError> {
        run(&mut self.ins_idem, idempotent_args(a)).map(drop)
    }

    fn add_count(&mut self, k: &crate::query::CountKey, n: i64) -> Result<(), StoreError> {
        run(&mut self.upsert_count, count_args(k, n)).map(drop)
    }

    fn fold_of(&mut self, case: CaseId) -> Result<Option<String>, StoreError> {
        self.sel_fold
            .query_row([case], |r| r.get::<_, String>(0))
            .optional()
            .map_err(db)
    }

    fn put_fold(&mut self, case: CaseId, created_at: i64, fold: &str) -> Result<(), StoreError> {
        self.put_fold
            .execute(params![case, created_at, fold])
            .map(drop)
            .map_err(db)
    }
}

impl EvaluationStore for SqliteStore {
    fn cohort_folds(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(CaseId, Option<String>),
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(crate::store::SELECT_COHORT_FOLDS)
            .map_err(db)?;
        let mut rows = st.query([from, to]).map_err(db)?;
        while let Some(r) = rows.next().map_err(db)? {
            each(r.get(0).map_err(db)?, r.get(1).map_err(db)?);
        }
        Ok(())
    }

    fn cohort_logs(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(Vec<LogEntry>),
    ) -> Result<(), StoreError> {
        let mut st = self
            .conn
            .prepare_cached(crate::store::SELECT_COHORT_LOGS)
            .map_err(db)?;
        let mut rows = st.query([from, to]).map_err(db)?;
        let mut err = None;
        let it = std::iter::from_fn(|| match rows.next() {
            Ok(Some(r)) => Some(log_entry(r)),
            Ok(None) => None,
            Err(e) => {
                err = Some(db(e));
                None
            }
        });
        crate::store::each_case(it, each)?;
        err.map_or(Ok(()), Err)
    }

    fn citizen_cases(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_core::evaluation::measures::RepeatKey>, StoreError> {
        self.select(
            crate::store::SELECT_CITIZEN_CASES,
            [from, to],
            crate::store::repeat_row,
        )
    }

    fn cohort_reports(&mut self, from: i64, to: i64) -> Result<Vec<Report>, StoreError> {
        self.select(crate::store::SELECT_COHORT_REPORTS, [from, to], report_row)
    }

    fn put_evaluation_report(&mut self, r: &SavedReport) -> Result<(), StoreError> {
        self.exec(
            crate::store::UPSERT_EVALUATION_REPORT,
            crate::store::saved_report_args(r),
        )
        .map(drop)
    }

    fn evaluation_reports(&mut self) -> Result<Vec<SavedReport>, StoreError> {
        self.select(crate::store::SELECT_EVALUATION_REPORTS, [], |r| {
            crate::store::saved_report_row(r, false)
        })
    }

    fn evaluation_report(&mut self, name: &str) -> Result<Option<SavedReport>, StoreError> {
        Ok(self
            .select(crate::store::SELECT_EVALUATION_REPORT, [name], |r| {
                crate::store::saved_report_row(r, true)
            })?
            .pop())
    }
}
