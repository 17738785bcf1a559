//! Assembling the running service: stores (engine, writer, readers), the pipelined run
//! loop, the escalation timer, the demo accounts — and taking it down in order.
//!
//! The escalation timer is durable because it keeps no state of its own: the due times
//! live in the engine's timer index, rebuilt from the stored cases at every start, and an
//! escalation that fired is in the case log. A server that was down across a deadline
//! fires it once at the next tick after start. A tick that fails (a full disk, a store
//! gone away) is logged and counted in `/metrics`
//! (`cityos_background_errors_total{loop="escalation"}`); the timer keeps running and the
//! next tick escalates everything due by then.

use crate::http::auth::{hash_password, TokenKey};
use crate::{AppState, Clock};
use cityos_core::time::{Millis, SECOND};
use cityos_engine::config::Config;
use cityos_engine::engine::Request;
use cityos_engine::runloop::{EngineHandle, RunLoop};
use cityos_engine::store::sqlite::{Durability, SqliteStore};
use cityos_engine::store::User;
use cityos_engine::{AccountStore, PostgresStore, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Where the data lives.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file `cityos.db` in this directory (the embedded default).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (optionally with `schema=`).
    Postgres(String),
}

impl Database {
    /// `postgres://…` → PostgreSQL; otherwise the data directory's SQLite file.
    pub fn from_url_or_dir(url: Option<&str>, data_dir: &Path) -> Database {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Database::Postgres(u.to_string())
            }
            Some(u) => Database::Sqlite(PathBuf::from(u.strip_prefix("sqlite://").unwrap_or(u))),
            None => Database::Sqlite(data_dir.to_path_buf()),
        }
    }

    fn connect(&self, primary: bool) -> Result<Box<dyn Store>, StoreError> {
        match self {
            Database::Sqlite(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StoreError::Db(format!("{}: {e}", dir.display())))?;
                let path = dir.join("cityos.db");
                Ok(if primary {
                    Box::new(SqliteStore::open(&path, Durability::Full)?)
                } else {
                    Box::new(SqliteStore::open_secondary(&path, Durability::Full)?)
                })
            }
            Database::Postgres(url) => {
                let (url, schema) = cityos_engine::split_schema(url);
                Ok(Box::new(PostgresStore::connect(&url, schema.as_deref())?))
            }
        }
    }
}

/// A demo account: username, display name, role, department, scope.
pub type DemoAccount = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

/// The demo accounts (also listed in README.md).
pub const DEMO_PASSWORD: &str = "cityos-demo";

pub fn demo_accounts() -> Vec<DemoAccount> {
    // username, display name, role, department, scope
    vec![
        ("admin", "系统管理员", "admin", None, None),
        (
            "zhang.district",
            "张伟（区城运中心值班长）",
            "district_officer",
            None,
            None,
        ),
        (
            "li.tianping",
            "李娜（天平路街道城运中心）",
            "subdistrict_officer",
            None,
            Some("310104003"),
        ),
        (
            "wang.urban",
            "王强（天平路街道城管执法中队）",
            "handler",
            Some("sub-urban-mgmt-310104003"),
            None,
        ),
        (
            "chen.roads",
            "陈刚（区市政设施管理中心）",
            "handler",
            Some("dist-roads"),
            None,
        ),
        (
            "zhao.inspector",
            "赵敏（天平路街道网格员）",
            "inspector",
            None,
            Some("310104003"),
        ),
        ("sun.analyst", "孙丽（数据分析）", "analyst", None, None),
        // 为老助餐: an elder, a daughter ordering for her mother, the 天平路 canteen's cook
        // (linked by the meals room's demo seed).
        ("elder_demo", "助餐老人（演示）", "citizen", None, None),
        ("family_demo", "老人家属（演示）", "citizen", None, None),
        (
            "canteen_c01",
            "天平路长者食堂（演示）",
            "handler",
            Some("sub-community-service-310104003"),
            None,
        ),
        (
            "liu.civil",
            "刘芳（区民政局，数据集所有方）",
            "handler",
            Some("dist-civil-affairs"),
            None,
        ),
        // 精准救助: the 天平路 community service office's assistance adviser.
        (
            "zhou.adviser",
            "周敏（天平路街道社区救助顾问）",
            "handler",
            Some("sub-community-service-310104003"),
            None,
        ),
    ]
}

/// Creates (or resets) the demo accounts, all with [`DEMO_PASSWORD`].
pub fn seed_demo_accounts(store: &mut dyn AccountStore, now: Millis) -> Result<(), StoreError> {
    let hash = hash_password(DEMO_PASSWORD);
    for (username, display, role, dept, scope) in demo_accounts() {
        store.put_user(&User {
            username: username.into(),
            display_name: display.into(),
            password_hash: hash.clone(),
            role: role.into(),
            department: dept.map(String::from),
            scope: scope.map(String::from),
            created_at: now,
        })?;
    }
    Ok(())
}

/// The running service (without the HTTP listener).
pub struct Service {
    pub state: AppState,
    runloop: Option<RunLoop>,
    timer: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Several nodes: the lease loop.
    leases: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
    /// Where the data lives (the lease loop opens its own connection).
    db: Database,
}

impl Service {
    /// Opens the stores, starts the engine (pipelined) and the escalation timer, with the
    /// embedded scenario packs.
    pub fn start(
        cfg: Config,
        db: &Database,
        clock: Arc<dyn Clock>,
        key: TokenKey,
        readers: usize,
    ) -> Result<Service, StoreError> {
        let packs = crate::scenarios::embedded(&cfg);
        Service::start_with(cfg, db, clock, key, readers, packs)
    }

    /// Like [`Service::start`], running the scenario packs `packs` (from
    /// `scenarios::sources`: the embedded ones and a directory's).
    pub fn start_with(
        cfg: Config,
        db: &Database,
        clock: Arc<dyn Clock>,
        key: TokenKey,
        readers: usize,
        packs: Vec<crate::scenarios::Source>,
    ) -> Result<Service, StoreError> {
        let bus = Arc::new(crate::runtime::bus::InProcessBus::default());
        Service::start_on_bus(cfg, db, clock, key, readers, packs, bus)
    }

    /// Like [`Service::start_with`], on the bus `bus` (several nodes: NATS JetStream,
    /// `runtime::jetstream`).
    pub fn start_on_bus(
        cfg: Config,
        db: &Database,
        clock: Arc<dyn Clock>,
        key: TokenKey,
        readers: usize,
        packs: Vec<crate::scenarios::Source>,
        bus: Arc<dyn crate::bus::Bus>,
    ) -> Result<Service, StoreError> {
        let engine = cfg
            .engine(db.connect(true)?)
            .map_err(|e| StoreError::Db(e.to_string()))?;
        let runloop = RunLoop::start_pipelined(engine, db.connect(false)?, 65_536, 4096);
        let reads = (0..readers.max(1))
            .map(|_| db.connect(false))
            .collect::<Result<Vec<_>, _>>()?;
        let state =
            AppState::new_with_bus(runloop.handle.clone(), reads, cfg, clock.clone(), key, bus);
        state.0.scenarios.load(packs, clock.now());
        restore(&state, &mut *db.connect(false)?, clock.now())?;
        let bus = state.0.bus.clone();
        let sink_state = state.clone();
        runloop
            .handle
            .with(move |e| {
                e.set_event_sink(move |events| {
                    for ev in events {
                        // The scenario packs count new cases (and judge them at the next
                        // tick).
                        crate::scenarios::runtime::case_committed(&sink_state, &ev);
                        bus.publish(crate::bus::BusEvent::Case(Arc::new(ev)));
                    }
                })
            })
            .map_err(|e| StoreError::Db(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let timer = spawn_timer(state.clone(), clock, stop.clone());
        Ok(Service {
            state,
            runloop: Some(runloop),
            timer: Some((stop, timer)),
            leases: None,
            db: db.clone(),
        })
    }

    /// Several nodes (issue 20): this node owns only the partitions it holds leases for;
    /// see `runtime::cluster`.
    pub fn join_cluster(
        &mut self,
        o: &crate::runtime::cluster::ClusterOptions,
    ) -> Result<(), String> {
        let store = self
            .db
            .connect(false)
            .map_err(|e| format!("PostgreSQL: cannot open the lease connection: {e}"))?;
        self.leases = Some(crate::runtime::cluster::join(&self.state, o, store)?);
        Ok(())
    }

    pub fn handle(&self) -> &EngineHandle {
        &self.state.0.engine
    }

    /// Stops the timer and the engine after the queued work is done.
    /// Stops the timer and the engine after the queued work; returns the run loop's
    /// batch figures.
    pub fn stop(mut self) -> Option<cityos_engine::runloop::LoopStats> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<cityos_engine::runloop::LoopStats> {
        if let Some((stop, t)) = self.timer.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        if let Some((stop, t)) = self.leases.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = t.join();
        }
        // Reads' audit entries still waiting for their round are written now.
        let audit = &self.state.0.audit;
        if let Err(e) = self.state.0.reads.blocking(|s| audit.flush_blocking(s)) {
            crate::http::log::event("audit_write_failed", &[("error", &e)]);
        }
        self.runloop.take().map(|rl| rl.stop().1)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Puts back the rooms' state kept in the store — the sensing alarms, the alerts
/// (states, silences, cases, CAP chains), the scenario packs' flags and reloaded texts,
/// the datasets they join and each pack's open case per place — before anything is served, so that a restart continues
/// where the last run stopped.
fn restore(st: &AppState, store: &mut dyn Store, now: Millis) -> Result<(), StoreError> {
    crate::intake::sensor::registry::restore(st, store, now)?;
    crate::intake::sensor::restore(st, store)?;
    crate::vitals::alerts::restore(st, store, now)?;
    crate::scenarios::restore(st, store)?;
    st.0.audit.restore(store)?;
    crate::scenarios::runtime::restore(st, store)
}

/// Ticks the engine whenever an escalation is due (checked at least every second, so a
/// hand-set clock in tests is noticed promptly). Errors never end it: each is logged and
/// counted, and the timer waits a round before trying again.
fn spawn_timer(
    st: AppState,
    clock: Arc<dyn Clock>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("cityos-timer".into())
        .spawn(move || {
            let h = st.0.engine.clone();
            while !stop.load(Ordering::SeqCst) {
                let now = clock.now();
                match h.with(|e| e.next_timer()) {
                    Ok(Some(at)) if at <= now => match h.call(Request::Tick { now }) {
                        Ok(_) => {
                            st.0.loops.success("escalation", now);
                            continue;
                        }
                        Err(e) => st.0.loops.error("escalation", &e),
                    },
                    Ok(_) => st.0.loops.success("escalation", now),
                    Err(e) => st.0.loops.error("escalation", &e),
                }
                for _ in 0..10 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis((SECOND / 10) as u64));
                }
            }
        })
        .expect("spawn timer thread")
}
