//! The PostgreSQL store, for a city running several nodes on one shared database.
//! Same tables and SQL as SQLite (BIGINT times, TEXT JSON bodies); statements are
//! prepared once per connection. An optional schema name isolates test runs.

use super::*;
use crate::query::Param;
use ::postgres::types::ToSql;
use ::postgres::{Client, NoTls, Statement};
use std::time::{Duration, Instant};

const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_query_columns.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_accounts.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_event_sequence.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_sort_keys.sql"),
    ),
    (
        6,
        include_str!("../../migrations/postgres/0006_state_key.sql"),
    ),
    (
        7,
        include_str!("../../migrations/postgres/0007_case_counts.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_drop_redundant_indexes.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_overdue_counts.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_subdistrict_created.sql"),
    ),
    (11, include_str!("../../migrations/postgres/0011_media.sql")),
    (
        12,
        include_str!("../../migrations/postgres/0012_datasets.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_vitals.sql"),
    ),
    (
        14,
        include_str!("../../migrations/postgres/0014_room_state.sql"),
    ),
    (
        15,
        include_str!("../../migrations/postgres/0015_scenarios.sql"),
    ),
    (
        16,
        include_str!("../../migrations/postgres/0016_reports_at.sql"),
    ),
    (17, include_str!("../../migrations/postgres/0017_share.sql")),
    (18, include_str!("../../migrations/postgres/0018_meals.sql")),
    (
        19,
        include_str!("../../migrations/postgres/0019_evaluation.sql"),
    ),
    (
        20,
        include_str!("../../migrations/postgres/0020_lifecircle.sql"),
    ),
    (
        21,
        include_str!("../../migrations/postgres/0021_assistance.sql"),
    ),
    (
        22,
        include_str!("../../migrations/postgres/0022_cluster.sql"),
    ),
    (
        23,
        include_str!("../../migrations/postgres/0023_devices.sql"),
    ),
    (
        24,
        include_str!("../../migrations/postgres/0024_case_facts.sql"),
    ),
    (
        28,
        include_str!("../../migrations/postgres/0028_queue_marks.sql"),
    ),
    (
        29,
        include_str!("../../migrations/postgres/0029_figure_samples.sql"),
    ),
];

struct Prepared {
    ins_idem: Statement,
    ins_case: Statement,
    upd_case: Statement,
    ins_log: Statement,
    log_head: Statement,
    ins_rep: Statement,
    mv_rep: Statement,
    del_tasks: Statement,
    ins_task: Statement,
    upsert_count: Statement,
    sel_fold: Statement,
    put_fold: Statement,
}

pub struct PostgresStore {
    /// Always `Some` while the store lives (taken only by `Drop`).
    client: Option<Client>,
    st: Prepared,
    cfg: ::postgres::Config,
    schema: Option<String>,
    /// While reconnecting: no new attempt before this instant.
    retry_at: Option<Instant>,
    backoff: Duration,
}

/// How long a statement may run unless the URL's `options` set `statement_timeout`.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u64 = 10_000;
/// How long a session may sit inside a transaction doing nothing before the database
/// ends it (its locks go with it), unless the URL's `options` set
/// `idle_in_transaction_session_timeout`.
pub const IDLE_IN_TRANSACTION_MS: u64 = 5_000;
/// How long a statement waits for a lock before giving up (`store_timeout`), unless the
/// URL's `options` set `lock_timeout`.
pub const LOCK_TIMEOUT_MS: u64 = 5_000;
/// TCP keepalive: a peer gone without a word (a paused or cut-off host) is noticed after
/// about this plus 3 probes 5 s apart, not the system's two hours.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(15);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Sorts a driver error into what the service can say about it: the connection is gone
/// (`Unavailable`), the disk is full (`Full`), a statement was cancelled (`Timeout`), or
/// anything else.
fn db(e: ::postgres::Error) -> StoreError {
    if let Some(d) = e.as_db_error() {
        let code = d.code().code();
        let msg = format!("{code}: {}", d.message());
        return match code {
            "53100" => StoreError::Full(msg),
            // A cancelled statement; a lock not granted within `lock_timeout`.
            "57014" | "55P03" => StoreError::Timeout(msg),
            "57P01" | "57P02" | "57P03" => StoreError::Unavailable(msg),
            c if c.starts_with("08") => StoreError::Unavailable(msg),
            _ => StoreError::Db(msg),
        };
    }
    let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
    if e.is_closed() || io {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Db(e.to_string())
    }
}

/// Closes a client on a plain thread: the sync client's `Drop` blocks on its own runtime,
/// which panics on an async runtime's thread (the service's shutdown did exactly that).
fn close(c: Client) {
    let _ = std::thread::spawn(move || drop(c)).join();
}

/// Opens a session: the connection, its schema, its statement time limit, its prepared
/// statements. Migrations are not run here (see `connect`).
fn session(
    cfg: &::postgres::Config,
    schema: Option<&str>,
    migrate: bool,
) -> Result<(Client, Prepared), StoreError> {
    let mut client = cfg.connect(NoTls).map_err(db)?;
    let ok = (|| {
        if migrate {
            // Several nodes may start at once on a fresh database: one migrates at a
            // time (the lock is the session's; it goes with a failed connection).
            client
                .batch_execute("SELECT pg_advisory_lock(hashtext('cityos_migrate'))")
                .map_err(db)?;
        }
        if let Some(s) = schema {
            client
                .batch_execute(&format!(
                    "CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"
                ))
                .map_err(db)?;
        }
        if migrate {
            migrate_schema(&mut client)?;
            client
                .batch_execute("SELECT pg_advisory_unlock(hashtext('cityos_migrate'))")
                .map_err(db)?;
        }
        let own_timeout = cfg
            .get_options()
            .is_some_and(|o| o.contains("statement_timeout"));
        if !own_timeout {
            client
                .batch_execute(&format!(
                    "SET statement_timeout = {DEFAULT_STATEMENT_TIMEOUT_MS}"
                ))
                .map_err(db)?;
        }
        // Several nodes: a node paused (or cut off) inside a transaction must not keep
        // its row locks — `FOR SHARE` on its lease rows would stop every takeover — for
        // longer than a few lease times: the database ends such a session, and a lock
        // wait gives up, after these (unless the URL's `options` set them).
        for (name, ms) in [
            (
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_MS,
            ),
            ("lock_timeout", LOCK_TIMEOUT_MS),
        ] {
            if !cfg.get_options().is_some_and(|o| o.contains(name)) {
                client
                    .batch_execute(&format!("SET {name} = {ms}"))
                    .map_err(db)?;
            }
        }
        Ok(Prepared {
            ins_case: client.prepare(INSERT_CASE).map_err(db)?,
            upd_case: client.prepare(UPDATE_CASE).map_err(db)?,
            ins_log: client.prepare(INSERT_LOG).map_err(db)?,
            log_head: client.prepare(crate::store::SELECT_LOG_HEAD).map_err(db)?,
            ins_rep: client.prepare(INSERT_REPORT).map_err(db)?,
            mv_rep: client.prepare(MOVE_REPORT).map_err(db)?,
            del_tasks: client.prepare(DELETE_TASKS).map_err(db)?,
            ins_task: client.prepare(INSERT_TASK).map_err(db)?,
            upsert_count: client.prepare(crate::query::UPSERT_COUNT).map_err(db)?,
            ins_idem: client.prepare(INSERT_IDEMPOTENT).map_err(db)?,
            sel_fold: client.prepare(crate::store::SELECT_FOLD).map_err(db)?,
            put_fold: client.prepare(crate::store::UPSERT_FOLD).map_err(db)?,
        })
    })();
    match ok {
        Ok(st) => Ok((client, st)),
        Err(e) => {
            close(client);
            Err(e)
        }
    }
}

fn migrate_schema(client: &mut Client) -> Result<(), StoreError> {
    client
        .batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY)")
        .map_err(db)?;
    // Every migration not yet applied, by version (not only those above the highest:
    // branches may land their numbers out of order).
    let applied: std::collections::HashSet<i64> = client
        .query("SELECT version FROM schema_migrations", &[])
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (v, sql) in MIGRATIONS {
        if !applied.contains(v) {
            let mut tx = client.transaction().map_err(db)?;
            tx.batch_execute(sql).map_err(db)?;
            tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[v])
                .map_err(db)?;
            tx.commit().map_err(db)?;
        }
    }
    Ok(())
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            close(c);
        }
    }
}

impl PostgresStore {
    /// Connects, optionally switching to (and creating) `schema`, and migrates. The
    /// connection is named `cityos` (`application_name`) unless the URL names it; every
    /// statement is limited to [`DEFAULT_STATEMENT_TIMEOUT_MS`] unless the URL's
    /// `options` set `statement_timeout` (e.g. `?options=-c%20statement_timeout%3D5000`).
    pub fn connect(url: &str, schema: Option<&str>) -> Result<PostgresStore, StoreError> {
        if let Some(s) = schema {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(StoreError::Db(format!(
                    "schema name {s:?} must be [A-Za-z0-9_]"
                )));
            }
        }
        let mut cfg: ::postgres::Config = url
            .parse()
            .map_err(|e: ::postgres::Error| StoreError::Db(e.to_string()))?;
        if cfg.get_application_name().is_none() {
            cfg.application_name("cityos");
        }
        if cfg.get_connect_timeout().is_none() {
            cfg.connect_timeout(Duration::from_secs(5));
        }
        cfg.keepalives(true);
        if cfg.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60) {
            cfg.keepalives_idle(KEEPALIVE_IDLE);
        }
        if cfg.get_keepalives_interval().is_none() {
            cfg.keepalives_interval(Duration::from_secs(5));
        }
        if cfg.get_keepalives_retries().is_none() {
            cfg.keepalives_retries(3);
        }
        let (client, st) = session(&cfg, schema, true)?;
        Ok(PostgresStore {
            client: Some(client),
            st,
            cfg,
            schema: schema.map(String::from),
            retry_at: None,
            backoff: FIRST_BACKOFF,
        })
    }

    fn conn(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("the client lives as long as the store")
    }

    /// Makes sure the connection is up: a closed one is replaced, at most once per
    /// backoff interval (100 ms doubling to 5 s); meanwhile the store answers
    /// `Unavailable` at once.
    fn live(&mut self) -> Result<(), StoreError> {
        if !self.client.as_ref().is_some_and(|c| c.is_closed()) {
            return Ok(());
        }
        let now = Instant::now();
        if self.retry_at.is_some_and(|t| now < t) {
            return Err(StoreError::Unavailable(
                "the connection to PostgreSQL was lost; reconnecting".into(),
            ));
        }
        match session(&self.cfg, self.schema.as_deref(), false) {
            Ok((client, st)) => {
                if let Some(old) = self.client.replace(client) {
                    close(old);
                }
                self.st = st;
                self.retry_at = None;
                self.backoff = FIRST_BACKOFF;
                Ok(())
            }
            Err(e) => {
                self.retry_at = Some(now + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                Err(match e {
                    StoreError::Db(m) => StoreError::Unavailable(m),
                    other => other,
                })
            }
        }
    }

    /// Drops a schema and everything in it (test clean-up).
    pub fn drop_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        let mut client = Client::connect(url, NoTls).map_err(db)?;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .map_err(db)
    }

    fn bodies(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Case>, StoreError> {
        self.conn()
            .query(sql, params)
            .map_err(db)?
            .iter()
            .map(|r| parse_case(r.get::<_, &str>(0)))
            .collect()
    }

    fn reports(&mut self, sql: &str, key: i64) -> Result<Vec<Report>, StoreError> {
        self.rows(sql, &[&key], report_row)
    }

    /// Runs a statement; the number of rows it changed.
    fn exec(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        self.conn().execute(sql, &refs(args)).map_err(db)
    }

    /// Runs a statement once per row, all in one transaction.
    fn exec_each<'r, R: 'r, const N: usize>(
        &mut self,
        sql: &str,
        rows: &'r [R],
        args: impl Fn(&'r R) -> [Arg<'r>; N],
    ) -> Result<(), StoreError> {
        let mut tx = self.conn().transaction().map_err(db)?;
        let st = tx.prepare(sql).map_err(db)?;
        for x in rows {
            tx.execute(&st, &refs(&args(x))).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    /// Runs a query and builds one value per row.
    fn rows<T>(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
        build: impl Fn(&dyn RowRead) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.conn()
            .query(sql, params)
            .map_err(db)?
            .iter()
            .map(|r| build(r))
            .collect()
    }
}

/// Binds shared arguments as the client's parameters.
fn refs<'a>(args: &'a [Arg<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter()
        .map(|a| -> &'a (dyn ToSql + Sync) {
            match a {
                Arg::Int(v) => v,
                Arg::OptInt(v) => v,
                Arg::Float(v) => v,
                Arg::OptFloat(v) => v,
                Arg::Text(v) => v,
                Arg::OptText(v) => v,
                Arg::Bytes(v) => v,
            }
        })
        .collect()
}

fn bind(params: &[Param]) -> Vec<Box<dyn ToSql + Sync>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync> {
            match p {
                Param::Int(i) => Box::new(*i),
                Param::Text(t) => Box::new(t.clone()),
            }
        })
        .collect()
}

impl StoreConnection for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn healthy(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    fn query_list(&mut self, sql: &Sql) -> Result<Vec<(i64, i64, String)>, StoreError> {
        self.live()?;
        let owned = bind(&sql.params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        Ok(self
            .conn()
            .query(&sql.text, &refs)
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn query_groups(&mut self, sql: &Sql) -> Result<Vec<(String, i64, i64)>, StoreError> {
        self.live()?;
        let owned = bind(&sql.params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        Ok(self
            .conn()
            .query(&sql.text, &refs)
            .map_err(db)?
            .iter()
            .map(|r| {
                let sum: Option<i64> = if r.len() > 2 {
                    // SUM over BIGINT is NUMERIC in PostgreSQL; the query casts it.
                    r.get(2)
                } else {
                    None
                };
                (r.get(0), r.get(1), sum.unwrap_or(0))
            })
            .collect())
    }
}

impl CaseStore for PostgresStore {
    fn query_events(&mut self, sql: &Sql) -> Result<Vec<CaseEvent>, StoreError> {
        self.live()?;
        let owned = bind(&sql.params);
        let refs: Vec<&(dyn ToSql + Sync)> = owned.iter().map(|b| b.as_ref()).collect();
        self.rows(&sql.text, &refs, event_row)
    }

    fn put_idempotent(
        &mut self,
        a: &IdempotentAnswer,
    ) -> Result<Option<IdempotentAnswer>, StoreError> {
        self.live()?;
        if self.exec(INSERT_IDEMPOTENT, &idempotent_args(a))? == 1 {
            Ok(None)
        } else {
            self.idempotent(&a.key)
        }
    }

    fn idempotent(&mut self, key: &str) -> Result<Option<IdempotentAnswer>, StoreError> {
        self.live()?;
        Ok(self
            .rows(SELECT_IDEMPOTENT, &[&key], idempotent_row)?
            .into_iter()
            .next())
    }

    fn commit(&mut self, batches: &[Batch<'_>]) -> Result<(), StoreError> {
        self.live()?;
        let st = &self.st;
        let client = self
            .client
            .as_mut()
            .expect("the client lives as long as the store");
        let mut tx = client.transaction().map_err(db)?;
        let mut rows = Rows { tx: &mut tx, st };
        batch::write_batches(&mut rows, batches)?;
        tx.commit().map_err(db)
    }

    fn load_case(&mut self, id: CaseId) -> Result<Option<Case>, StoreError> {
        self.live()?;
        Ok(self
            .bodies("SELECT body FROM cases WHERE id=$1", &[&id])?
            .pop())
    }

    fn load_case_by_number(&mut self, number: &str) -> Result<Option<Case>, StoreError> {
        self.live()?;
        Ok(self
            .bodies("SELECT body FROM cases WHERE number=$1", &[&number])?
            .pop())
    }

    fn load_open_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        self.live()?;
        self.bodies(
            &format!("SELECT body FROM cases WHERE state IN {OPEN_STATES} ORDER BY id"),
            &[],
        )
    }

    fn load_all_cases(&mut self) -> Result<Vec<Case>, StoreError> {
        self.live()?;
        self.bodies("SELECT body FROM cases ORDER BY id", &[])
    }

    fn load_log(&mut self, id: CaseId) -> Result<Vec<LogEntry>, StoreError> {
        self.live()?;
        self.rows(SELECT_LOG, &[&id], log_entry)
    }

    fn load_report(&mut self, id: ReportId) -> Result<Option<Report>, StoreError> {
        self.live()?;
        Ok(self
            .reports(&format!("{SELECT_REPORT} WHERE id=$1"), id)?
            .pop())
    }

    fn recent_reports(
        &mut self,
        since: Millis,
        limit: i64,
    ) -> Result<Vec<(Report, String)>, StoreError> {
        self.rows(SELECT_RECENT_REPORTS, &[&since, &limit], recent_report_row)
    }

    fn reports_of(&mut self, case: CaseId) -> Result<Vec<Report>, StoreError> {
        self.live()?;
        self.reports(
            &format!("{SELECT_REPORT} WHERE case_id=$1 ORDER BY id"),
            case,
        )
    }

    fn max_ids(&mut self) -> Result<(CaseId, ReportId), StoreError> {
        self.live()?;
        let r = self
            .conn()
            .query_one(
                "SELECT (SELECT COALESCE(MAX(id),0) FROM cases), (SELECT COALESCE(MAX(id),0) FROM reports)",
                &[],
            )
            .map_err(db)?;
        Ok((r.get(0), r.get(1)))
    }

    fn counts(&mut self) -> Result<Counts, StoreError> {
        self.live()?;
        let r = self
            .conn()
            .query_one(
                "SELECT (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM case_log), (SELECT COUNT(*) FROM reports)",
                &[],
            )
            .map_err(db)?;
        Ok(Counts {
            cases: r.get(0),
            log_entries: r.get(1),
            reports: r.get(2),
        })
    }

    fn record_figures(&mut self, s: &crate::store::FigureSample) -> Result<(), StoreError> {
        self.live()?;
        self.exec(
            crate::store::INSERT_FIGURES,
            &[
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
            &[Arg::Int(s.bucket - crate::store::FIGURES_KEPT)],
        )
        .map(drop)
    }

    fn figures_at(
        &mut self,
        at: Millis,
        after: Millis,
    ) -> Result<Option<crate::store::FigureSample>, StoreError> {
        self.live()?;
        Ok(self
            .rows(
                crate::store::SELECT_FIGURES,
                &[&at, &after],
                crate::store::figures_row,
            )?
            .into_iter()
            .next())
    }
}

impl AccountStore for PostgresStore {
    fn put_user(&mut self, u: &User) -> Result<(), StoreError> {
        self.live()?;
        self.exec(UPSERT_USER, &user_args(u)).map(drop)
    }

    fn user(&mut self, username: &str) -> Result<Option<User>, StoreError> {
        self.live()?;
        Ok(self
            .rows(SELECT_USER, &[&username], user_row)?
            .into_iter()
            .next())
    }
}

impl DatasetStore for PostgresStore {
    fn put_dataset(&mut self, d: &Dataset) -> Result<(), StoreError> {
        self.live()?;
        self.exec(crate::store::UPSERT_DATASET, &dataset_args(d))
            .map(drop)
    }

    fn datasets(&mut self) -> Result<Vec<Dataset>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_DATASETS, &[], dataset_row)
    }

    fn put_rule_case(
        &mut self,
        rule: &str,
        subject: &str,
        case: Option<CaseId>,
    ) -> Result<(), StoreError> {
        self.live()?;
        match case {
            Some(c) => self
                .conn()
                .execute(crate::store::UPSERT_RULE_CASE, &[&rule, &subject, &c]),
            None => self
                .conn()
                .execute(crate::store::DELETE_RULE_CASE, &[&rule, &subject]),
        }
        .map_err(db)?;
        Ok(())
    }

    fn rule_cases(&mut self, rule: &str) -> Result<Vec<(String, CaseId)>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_RULE_CASES, &[&rule], case_link_row)
    }
}

impl DeviceStore for PostgresStore {
    fn put_devices(&mut self, rows: &[DeviceRow]) -> Result<(), StoreError> {
        self.live()?;
        self.exec_each(crate::store::UPSERT_DEVICE, rows, device_args)
    }

    fn registered_devices(&mut self) -> Result<Vec<DeviceRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_DEVICES, &[], device_row)
    }
}

impl SensingStore for PostgresStore {
    fn put_alarm_states(&mut self, rows: &[AlarmRow]) -> Result<(), StoreError> {
        self.live()?;
        self.exec_each(crate::store::UPSERT_ALARM, rows, alarm_args)
    }

    fn alarm_states(&mut self) -> Result<Vec<AlarmRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_ALARMS, &[], alarm_row)
    }

    fn put_alarm_states_fenced(
        &mut self,
        rows: &[AlarmRow],
        mark: Option<&QueueMark>,
        fence: &Fence,
    ) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        check_fence(&mut tx, fence)?;
        for r in rows {
            tx.execute(crate::store::UPSERT_ALARM, &refs(&alarm_args(r)))
                .map_err(db)?;
        }
        if let Some(m) = mark {
            tx.execute(
                crate::store::UPSERT_QUEUE_MARK,
                &[&m.queue, &m.seq, &m.above],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn queue_mark(&mut self, queue: &str) -> Result<Option<QueueMark>, StoreError> {
        self.live()?;
        let rows = self
            .conn()
            .query(crate::store::SELECT_QUEUE_MARK, &[&queue])
            .map_err(db)?;
        Ok(rows.first().map(|r| QueueMark {
            queue: queue.to_string(),
            seq: r.get(0),
            above: r.get(1),
        }))
    }
}

impl VitalsStore for PostgresStore {
    fn put_rollups(&mut self, r: &[Rollup]) -> Result<(), StoreError> {
        self.live()?;
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
        self.live()?;
        self.rows(
            crate::store::SELECT_ROLLUPS,
            &[&indicator, &region, &step, &from, &to],
            rollup_row,
        )
    }

    fn put_cap(&mut self, m: &CapMessage) -> Result<(), StoreError> {
        self.live()?;
        self.exec(crate::store::INSERT_CAP, &cap_args(m)).map(drop)
    }

    fn cap_messages(&mut self, limit: i64) -> Result<Vec<CapMessage>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_CAP_RECENT, &[&limit], cap_row)
    }

    fn cap_message(&mut self, identifier: &str) -> Result<Option<CapMessage>, StoreError> {
        self.live()?;
        Ok(self
            .rows(crate::store::SELECT_CAP_ONE, &[&identifier], cap_row)?
            .pop())
    }

    fn cap_chains(&mut self) -> Result<Vec<(String, String, i64)>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_CAP_CHAINS, &[], cap_chain_row)
    }

    fn put_alert_states(
        &mut self,
        upsert: &[AlertRow],
        delete: &[String],
    ) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        let up = tx.prepare(crate::store::UPSERT_ALERT).map_err(db)?;
        for a in upsert {
            tx.execute(&up, &refs(&alert_args(a))).map_err(db)?;
        }
        let del = tx.prepare(crate::store::DELETE_ALERT).map_err(db)?;
        for fp in delete {
            tx.execute(&del, &[fp]).map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn alert_states(&mut self) -> Result<Vec<AlertRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_ALERTS, &[], alert_row)
    }

    fn put_silence(&mut self, x: &SilenceRow) -> Result<(), StoreError> {
        self.live()?;
        self.exec(crate::store::UPSERT_SILENCE, &silence_args(x))
            .map(drop)
    }

    fn silences(&mut self) -> Result<Vec<SilenceRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_SILENCES, &[], silence_row)
    }

    fn put_alert_case(&mut self, fingerprint: &str, case: CaseId) -> Result<(), StoreError> {
        self.live()?;
        self.conn()
            .execute(crate::store::UPSERT_ALERT_CASE, &[&fingerprint, &case])
            .map_err(db)?;
        Ok(())
    }

    fn alert_cases(&mut self) -> Result<Vec<(String, CaseId)>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_ALERT_CASES, &[], case_link_row)
    }
}

impl ScenarioStore for PostgresStore {
    fn record_scenario(
        &mut self,
        pack: Option<&ScenarioPackRow>,
        audit: &ScenarioAuditRow,
    ) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        if let Some(p) = pack {
            tx.execute(
                crate::store::UPSERT_SCENARIO_PACK,
                &refs(&scenario_pack_args(p)),
            )
            .map_err(db)?;
        }
        tx.execute(
            crate::store::INSERT_SCENARIO_AUDIT,
            &refs(&scenario_audit_args(audit)),
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    fn scenario_packs(&mut self) -> Result<Vec<ScenarioPackRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_SCENARIO_PACKS, &[], scenario_pack_row)
    }

    fn scenario_audit(&mut self, pack: &str) -> Result<Vec<ScenarioAuditRow>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_SCENARIO_AUDIT,
            &[&pack],
            scenario_audit_row,
        )
    }
}

impl LifeCircleStore for PostgresStore {
    fn put_lifecircle_upload(&mut self, u: &LifeCircleUpload) -> Result<(), StoreError> {
        self.live()?;
        self.exec(
            crate::store::UPSERT_LIFECIRCLE_UPLOAD,
            &lifecircle_upload_args(u),
        )
        .map(drop)
    }

    fn delete_lifecircle_upload(&mut self, name: &str) -> Result<bool, StoreError> {
        self.live()?;
        Ok(self.exec(crate::store::DELETE_LIFECIRCLE_UPLOAD, &[Arg::Text(name)])? > 0)
    }

    fn lifecircle_uploads(&mut self) -> Result<Vec<LifeCircleUpload>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_LIFECIRCLE_UPLOADS,
            &[],
            lifecircle_upload_row,
        )
    }
}

impl ShareStore for PostgresStore {
    fn append_audit(&mut self, entries: &[AuditEntry]) -> Result<(), StoreError> {
        self.live()?;
        self.exec_each(crate::store::INSERT_AUDIT, entries, audit_args)
    }

    fn audit_head(&mut self) -> Result<Option<AuditEntry>, StoreError> {
        self.live()?;
        Ok(self
            .rows(crate::store::SELECT_AUDIT_HEAD, &[], audit_row)?
            .into_iter()
            .next())
    }

    fn audit_page(&mut self, after: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_AUDIT_PAGE,
            &[&after, &limit],
            audit_row,
        )
    }

    fn insert_grant(&mut self, g: &GrantRow) -> Result<i64, StoreError> {
        self.live()?;
        let args = grant_args(g);
        let ids = self.rows(crate::store::INSERT_GRANT, &refs(&args), |r| r.int(0))?;
        ids.into_iter()
            .next()
            .ok_or_else(|| StoreError::Db("INSERT … RETURNING gave no id".into()))
    }

    fn update_grant(&mut self, g: &GrantRow) -> Result<(), StoreError> {
        self.live()?;
        let mut args = grant_args(g).to_vec();
        args.push(Arg::Int(g.id));
        self.exec(crate::store::UPDATE_GRANT, &args).map(drop)
    }

    fn grants(&mut self) -> Result<Vec<GrantRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_GRANTS, &[], grant_row)
    }

    fn dataset(&mut self, name: &str) -> Result<Option<Dataset>, StoreError> {
        self.live()?;
        Ok(self
            .rows(crate::store::SELECT_DATASET, &[&name], dataset_row)?
            .into_iter()
            .next())
    }

    fn log_links(
        &mut self,
        after_case: i64,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<LogLink>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_LOG_LINKS,
            &[&after_case, &after_seq, &limit],
            log_link_row,
        )
    }
}

impl MealStore for PostgresStore {
    fn record_meals(
        &mut self,
        rows: &[MealRow],
        ledger: &[MealLedgerRow],
    ) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        record_meals_in(&mut tx, rows, ledger)?;
        tx.commit().map_err(db)
    }

    fn record_meals_fenced(
        &mut self,
        rows: &[MealRow],
        ledger: &[MealLedgerRow],
        fence: &Fence,
    ) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        check_fence(&mut tx, fence)?;
        record_meals_in(&mut tx, rows, ledger)?;
        tx.commit().map_err(db)
    }

    fn meal_rows(&mut self, kind: &str) -> Result<Vec<MealRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_MEAL_ROWS, &[&kind], meal_row)
    }

    fn meal_ledger(&mut self) -> Result<Vec<MealLedgerRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_MEAL_LEDGER, &[], meal_ledger_row)
    }
}

impl AssistanceStore for PostgresStore {
    fn record_assistance(&mut self, rows: &[AssistanceRow]) -> Result<(), StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        for r in rows {
            tx.execute(
                crate::store::UPSERT_ASSISTANCE_ROW,
                &refs(&meal_row_args(r)),
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)
    }

    fn assistance_rows(&mut self, kind: &str) -> Result<Vec<AssistanceRow>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_ASSISTANCE_ROWS, &[&kind], meal_row)
    }
}

impl MediaStore for PostgresStore {
    fn put_media(&mut self, m: &Media) -> Result<(), StoreError> {
        self.live()?;
        self.exec(crate::store::INSERT_MEDIA, &media_args(m))
            .map(drop)
    }

    fn media(&mut self, id: &str) -> Result<Option<Media>, StoreError> {
        self.live()?;
        Ok(self
            .rows(crate::store::SELECT_MEDIA, &[&id], media_row)?
            .into_iter()
            .next())
    }
}

impl RowRead for ::postgres::Row {
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn float(&self, i: usize) -> Result<f64, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn text(&self, i: usize) -> Result<String, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn opt_float(&self, i: usize) -> Result<Option<f64>, StoreError> {
        self.try_get(i).map_err(db)
    }
    fn bytes(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.try_get(i).map_err(db)
    }
}

/// The batch writer's statements (prepared at connection) inside one transaction.
struct Rows<'a, 'c> {
    tx: &'a mut ::postgres::Transaction<'c>,
    st: &'a Prepared,
}

impl Rows<'_, '_> {
    /// Runs a prepared statement with shared arguments; the number of rows it changed.
    fn run(&mut self, st: &Statement, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        self.tx.execute(st, &refs(args)).map_err(db)
    }
}

impl batch::RowWriter for Rows<'_, '_> {
    fn insert_report(&mut self, r: &Report) -> Result<(), StoreError> {
        self.run(&self.st.ins_rep, &report_args(r)).map(drop)
    }

    fn insert_case(&mut self, w: &CaseWrite<'_>, row: &CaseRow<'_>) -> Result<(), StoreError> {
        self.run(&self.st.ins_case, &case_insert_args(w, row))
            .map(drop)
    }

    fn update_case(
        &mut self,
        w: &CaseWrite<'_>,
        row: &CaseRow<'_>,
        prev: u64,
    ) -> Result<u64, StoreError> {
        self.run(&self.st.upd_case, &case_update_args(w, row, prev))
    }

    fn insert_log(
        &mut self,
        e: &LogEntry,
        body: &str,
        gseq: i64,
        chain: &str,
    ) -> Result<(), StoreError> {
        self.run(&self.st.ins_log, &log_args(e, body, gseq, chain))
            .map(drop)
    }

    fn log_head(&mut self, case: CaseId) -> Result<Option<String>, StoreError> {
        let rows = self.tx.query(&self.st.log_head, &[&case]).map_err(db)?;
        Ok(rows.first().and_then(|r| r.get::<_, Option<String>>(0)))
    }

    fn delete_tasks(&mut self, case: CaseId) -> Result<(), StoreError> {
        self.tx.execute(&self.st.del_tasks, &[&case]).map_err(db)?;
        Ok(())
    }

    fn insert_task(&mut self, case: CaseId, t: &cityos_core::case::Task) -> Result<(), StoreError> {
        self.run(&self.st.ins_task, &task_args(case, t)).map(drop)
    }

    fn move_report(&mut self, report: ReportId, case: CaseId) -> Result<(), StoreError> {
        self.tx
            .execute(&self.st.mv_rep, &[&case, &report])
            .map_err(db)?;
        Ok(())
    }

    fn insert_idempotent(&mut self, a: &IdempotentAnswer) -> Result<(), StoreError> {
        self.run(&self.st.ins_idem, &idempotent_args(a)).map(drop)
    }

    fn add_count(&mut self, k: &crate::query::CountKey, n: i64) -> Result<(), StoreError> {
        self.run(&self.st.upsert_count, &count_args(k, n)).map(drop)
    }

    fn fold_of(&mut self, case: CaseId) -> Result<Option<String>, StoreError> {
        let rows = self.tx.query(&self.st.sel_fold, &[&case]).map_err(db)?;
        Ok(rows.first().map(|r| r.get::<_, String>(0)))
    }

    fn put_fold(&mut self, case: CaseId, created_at: i64, fold: &str) -> Result<(), StoreError> {
        self.tx
            .execute(&self.st.put_fold, &[&case, &created_at, &fold])
            .map(drop)
            .map_err(db)
    }

    fn lease_held(&mut self, node: &str, partition: &str, epoch: i64) -> Result<bool, StoreError> {
        lease_held_in(self.tx, node, partition, epoch)
    }
}

/// Does `node` hold `partition` at `epoch`, unexpired, as `tx` sees it? The lease row
/// stays locked (shared) until the transaction ends, so no other node takes the
/// partition over while the transaction writes.
fn lease_held_in(
    tx: &mut ::postgres::Transaction<'_>,
    node: &str,
    partition: &str,
    epoch: i64,
) -> Result<bool, StoreError> {
    let rows = tx
        .query(
            &format!(
                "SELECT 1 FROM partition_leases WHERE partition = $1 AND owner = $2 \
                 AND epoch = $3 AND expires_at > {NOW_MS} FOR SHARE"
            ),
            &[&partition, &node, &epoch],
        )
        .map_err(db)?;
    Ok(!rows.is_empty())
}

/// The meals room's rows and ledger entries, inside `tx`.
fn record_meals_in(
    tx: &mut ::postgres::Transaction<'_>,
    rows: &[MealRow],
    ledger: &[MealLedgerRow],
) -> Result<(), StoreError> {
    for r in rows {
        tx.execute(crate::store::UPSERT_MEAL_ROW, &refs(&meal_row_args(r)))
            .map_err(db)?;
    }
    for e in ledger {
        tx.execute(
            crate::store::INSERT_MEAL_LEDGER,
            &refs(&meal_ledger_args(e)),
        )
        .map_err(db)?;
    }
    Ok(())
}

/// Fails with [`StoreError::Fenced`] unless the fence's node holds each of its leases
/// (locked until `tx` ends): a write of a room whose state only a lease's holder keeps.
fn check_fence(tx: &mut ::postgres::Transaction<'_>, f: &Fence) -> Result<(), StoreError> {
    for (partition, epoch) in super::batch::fence_order(f) {
        if !lease_held_in(tx, &f.node, partition, *epoch)? {
            return Err(StoreError::Fenced {
                partition: partition.clone(),
                epoch: *epoch,
            });
        }
    }
    Ok(())
}

/// The database's clock in milliseconds since the epoch: every lease time is read from
/// it, so the nodes' own clocks never decide who holds a partition.
/// The `cluster_nodes` row holding the cluster's settings (not a node: no node name has
/// `*`).
const CLUSTER_SETTINGS_ROW: &str = "*settings*";
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

/// Block sizes: each equals its sequence's increment (migration 22).
const ID_BLOCK: i64 = 64;
const EVENT_BLOCK: i64 = 1024;

fn lease_row(r: &::postgres::Row) -> Lease {
    Lease {
        partition: r.get(0),
        owner: r.get(1),
        address: r.get(2),
        epoch: r.get(3),
        remaining_ms: r.get(4),
    }
}

impl ClusterStore for PostgresStore {
    fn shared_ids(&self) -> bool {
        true
    }

    fn reserve_ids(&mut self, kind: IdKind) -> Result<(i64, i64), StoreError> {
        self.live()?;
        let (seq, n) = match kind {
            IdKind::Case => ("case_ids", ID_BLOCK),
            IdKind::Report => ("report_ids", ID_BLOCK),
            IdKind::Event => ("event_ids", EVENT_BLOCK),
        };
        let first: i64 = self
            .conn()
            .query_one(&format!("SELECT nextval('{seq}')"), &[])
            .map_err(db)?
            .get(0);
        Ok((first, n))
    }

    fn join_settings(
        &mut self,
        node: &str,
        settings: &str,
        ttl_ms: i64,
    ) -> Result<Result<(), String>, StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        // The settings live in a row of their own (`seen_at` 0: never counted as a node).
        tx.execute(
            "INSERT INTO cluster_nodes (node, address, seen_at) VALUES ($1, $2, 0) \
             ON CONFLICT (node) DO NOTHING",
            &[&CLUSTER_SETTINGS_ROW, &settings],
        )
        .map_err(db)?;
        let theirs: String = tx
            .query_one(
                "SELECT address FROM cluster_nodes WHERE node = $1 FOR UPDATE",
                &[&CLUSTER_SETTINGS_ROW],
            )
            .map_err(db)?
            .get(0);
        if theirs == settings {
            tx.commit().map_err(db)?;
            return Ok(Ok(()));
        }
        let live: i64 = tx
            .query_one(
                &format!(
                    "SELECT COUNT(*) FROM cluster_nodes WHERE node <> $1 AND node <> $2 \
                     AND seen_at > {NOW_MS} - $3"
                ),
                &[&CLUSTER_SETTINGS_ROW, &node, &ttl_ms],
            )
            .map_err(db)?
            .get(0);
        if live > 0 {
            return Ok(Err(theirs));
        }
        tx.execute(
            "UPDATE cluster_nodes SET address = $2 WHERE node = $1",
            &[&CLUSTER_SETTINGS_ROW, &settings],
        )
        .map_err(db)?;
        tx.commit().map_err(db)?;
        Ok(Ok(()))
    }

    fn lease_round(&mut self, r: &LeaseRound<'_>) -> Result<Vec<Lease>, StoreError> {
        self.live()?;
        let mut tx = self.conn().transaction().map_err(db)?;
        let now: i64 = tx
            .query_one(&format!("SELECT {NOW_MS}"), &[])
            .map_err(db)?
            .get(0);
        let until = now + r.ttl_ms;
        tx.execute(
            "INSERT INTO cluster_nodes (node, address, seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (node) DO UPDATE SET address = EXCLUDED.address, seen_at = EXCLUDED.seen_at",
            &[&r.node, &r.address, &now],
        )
        .map_err(db)?;
        tx.execute(
            "INSERT INTO partition_leases (partition, owner, address, epoch, expires_at) \
             SELECT p, '', '', 0, 0 FROM unnest($1::text[]) AS p ON CONFLICT (partition) DO NOTHING",
            &[&r.partitions],
        )
        .map_err(db)?;
        // Renew what the node holds at the epoch it holds it (an expired lease nobody
        // took still has that epoch: nobody else wrote under it, so renewing is safe).
        // In partition order, the order every commit locks its leases in
        // (`batch::write_batches`, `batch::fence_order`): a renewal and a commit never wait on each other in a
        // cycle (PostgreSQL would abort the renewal as a deadlock, and the lease lapse).
        let mut held: Vec<&(String, i64)> = r.held.iter().collect();
        held.sort();
        for (p, e) in held {
            tx.execute(
                "UPDATE partition_leases SET expires_at = $1, address = $2 \
                 WHERE partition = $3 AND owner = $4 AND epoch = $5",
                &[&until, &r.address, p, &r.node, e],
            )
            .map_err(db)?;
        }
        let live: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM cluster_nodes WHERE seen_at > $1",
                &[&(now - r.ttl_ms)],
            )
            .map_err(db)?
            .get(0);
        let share = (r.partitions.len() as i64 + live.max(1) - 1) / live.max(1);
        let held: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM partition_leases \
                 WHERE owner = $1 AND expires_at > $2 AND partition = ANY($3)",
                &[&r.node, &now, &r.partitions],
            )
            .map_err(db)?
            .get(0);
        if held < share {
            tx.execute(
                "UPDATE partition_leases SET owner = $1, address = $2, epoch = epoch + 1, expires_at = $3 \
                 WHERE partition IN (SELECT partition FROM partition_leases \
                   WHERE expires_at <= $4 AND partition = ANY($5) \
                   ORDER BY partition LIMIT $6 FOR UPDATE SKIP LOCKED)",
                &[&r.node, &r.address, &until, &now, &r.partitions, &(share - held)],
            )
            .map_err(db)?;
        } else if held > share {
            // Give back what is over the share: the other nodes take it next round.
            tx.execute(
                "UPDATE partition_leases SET expires_at = 0 \
                 WHERE partition IN (SELECT partition FROM partition_leases \
                   WHERE owner = $1 AND expires_at > $2 ORDER BY partition DESC LIMIT $3)",
                &[&r.node, &now, &(held - share)],
            )
            .map_err(db)?;
        }
        let mine = tx
            .query(
                "SELECT partition, owner, address, epoch, expires_at - $2 FROM partition_leases \
                 WHERE owner = $1 AND expires_at > $2 ORDER BY partition",
                &[&r.node, &now],
            )
            .map_err(db)?
            .iter()
            .map(lease_row)
            .collect();
        tx.commit().map_err(db)?;
        Ok(mine)
    }

    fn leases(&mut self) -> Result<Vec<Lease>, StoreError> {
        self.live()?;
        Ok(self
            .conn()
            .query(
                &format!(
                    "SELECT partition, owner, address, epoch, expires_at - {NOW_MS} \
                     FROM partition_leases ORDER BY partition"
                ),
                &[],
            )
            .map_err(db)?
            .iter()
            .map(lease_row)
            .collect())
    }

    fn load_open_cases_of(&mut self, subdistrict: Option<&str>) -> Result<Vec<Case>, StoreError> {
        self.live()?;
        match subdistrict {
            Some(s) => self.bodies(
                &format!(
                    "SELECT body FROM cases WHERE state IN {OPEN_STATES} AND subdistrict = $1 ORDER BY id"
                ),
                &[&s],
            ),
            None => self.bodies(
                &format!(
                    "SELECT body FROM cases WHERE state IN {OPEN_STATES} AND subdistrict IS NULL ORDER BY id"
                ),
                &[],
            ),
        }
    }

    fn database_now_ms(&mut self) -> Result<Option<i64>, StoreError> {
        self.live()?;
        let now: i64 = self
            .conn()
            .query_one(&format!("SELECT {NOW_MS}"), &[])
            .map_err(db)?
            .get(0);
        Ok(Some(now))
    }
}

impl EvaluationStore for PostgresStore {
    fn cohort_folds(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(CaseId, Option<String>),
    ) -> Result<(), StoreError> {
        self.live()?;
        let rows = self.rows(crate::store::SELECT_COHORT_FOLDS, &[&from, &to], |r| {
            Ok((r.int(0)?, r.opt_text(1)?))
        })?;
        for (id, f) in rows {
            each(id, f);
        }
        Ok(())
    }

    fn cohort_logs(
        &mut self,
        from: i64,
        to: i64,
        each: &mut dyn FnMut(Vec<LogEntry>),
    ) -> Result<(), StoreError> {
        self.live()?;
        let rows = self.rows(crate::store::SELECT_COHORT_LOGS, &[&from, &to], log_entry)?;
        crate::store::each_case(rows.into_iter().map(Ok), each)
    }

    fn citizen_cases(
        &mut self,
        from: i64,
        to: i64,
    ) -> Result<Vec<cityos_core::evaluation::measures::RepeatKey>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_CITIZEN_CASES,
            &[&from, &to],
            crate::store::repeat_row,
        )
    }

    fn cohort_reports(&mut self, from: i64, to: i64) -> Result<Vec<Report>, StoreError> {
        self.live()?;
        self.rows(
            crate::store::SELECT_COHORT_REPORTS,
            &[&from, &to],
            report_row,
        )
    }

    fn put_evaluation_report(&mut self, r: &SavedReport) -> Result<(), StoreError> {
        self.live()?;
        self.exec(
            crate::store::UPSERT_EVALUATION_REPORT,
            &crate::store::saved_report_args(r),
        )
        .map(drop)
    }

    fn evaluation_reports(&mut self) -> Result<Vec<SavedReport>, StoreError> {
        self.live()?;
        self.rows(crate::store::SELECT_EVALUATION_REPORTS, &[], |r| {
            crate::store::saved_report_row(r, false)
        })
    }

    fn evaluation_report(&mut self, name: &str) -> Result<Option<SavedReport>, StoreError> {
        self.live()?;
        Ok(self
            .rows(crate::store::SELECT_EVALUATION_REPORT, &[&name], |r| {
                crate::store::saved_report_row(r, true)
            })?
            .pop())
    }
}
