//! cityos-server: the HTTP service of a City Operations Centre — JSON API under
//! `/api/v1`, RFC 9457 problems, accounts with roles and territorial scopes, idempotent
//! POSTs. `app(state)` builds the router; tests drive it in-process.
//!
//! The crate is a set of rooms in layers (`http` ← `cases`, `smart` ← `api`, `intake/*`,
//! `vitals`, `scenarios`, `lifecircle`, `ui` ← `runtime`; see ARCHITECTURE.md). This root composes them: `AppState`
//! holds the shared parts (engine, reads, configuration, clock, key, bus, ports) and one
//! field per room's own state type; a room touches only its own field.
//!
//! Architecture Invariant: this is the only crate that speaks HTTP and JSON wire shapes;
//! it converts to and from core types and never writes a case itself — writes go to the
//! engine's run loop, reads to a pool of store connections (or the engine's cache).

#![recursion_limit = "512"]

pub mod api;
pub mod assistance;
pub mod bus;
pub mod cases;
pub mod evaluation;
pub mod http;
pub mod intake;
pub mod lifecircle;
pub mod meals;
pub mod ports;
pub mod runtime;
pub mod scenarios;
pub mod smart;
pub mod ui;
pub mod vitals;

pub use http::extract::{Body, Q};
pub use runtime::router::{app, body_limit};

use crate::http::error::ApiError;
use crate::http::{auth, metrics};
use crate::intake::sensor as sensing;
use cityos_core::time::Millis;
use cityos_engine::config::Config;
use cityos_engine::runloop::EngineHandle;
use cityos_engine::Store;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Failed sign-ins of one account within [`LOGIN_WINDOW`] before it is locked.
pub const LOGIN_FAILURES: u32 = 5;
/// Failed sign-ins from one address (several people may share one) within the window.
pub const LOGIN_PEER_FAILURES: u32 = 20;
pub const LOGIN_WINDOW: Millis = 15 * cityos_core::time::MINUTE;
/// Anonymous reports one address may file per [`ANONYMOUS_WINDOW`], through Open311 or
/// `POST /api/v1/reports` together.
pub const ANONYMOUS_LIMIT: u32 = 20;
pub const ANONYMOUS_WINDOW: Millis = 10 * cityos_core::time::MINUTE;
/// Photos one address may upload without signing in (Open311 `media`) per
/// [`ANONYMOUS_WINDOW`]: enough for a few reports of nine photos, not for filling the disk.
pub const ANONYMOUS_MEDIA: u32 = 60;
/// Anonymous case lookups (and reporter ratings) per address per minute.
pub const PUBLIC_LOOKUPS: u32 = 30;

/// Readings and pushed values stamped further ahead of now than this are refused.
pub const MAX_AHEAD: Millis = 5 * cityos_core::time::MINUTE;

/// The largest request body accepted (bytes).
pub const BODY_LIMIT: usize = 64 * 1024;

/// Where "now" comes from: the system clock, or a hand-set one in tests.
pub trait Clock: Send + Sync {
    fn now(&self) -> Millis;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}

/// A clock tests set by hand.
pub struct ManualClock(pub std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(t: Millis) -> ManualClock {
        ManualClock(std::sync::atomic::AtomicI64::new(t))
    }
    pub fn set(&self, t: Millis) {
        self.0.store(t, std::sync::atomic::Ordering::SeqCst);
    }
    pub fn advance(&self, ms: Millis) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Store connections for reads, used from blocking tasks.
pub struct ReadPool {
    stores: Mutex<Vec<Box<dyn Store>>>,
    ready: Condvar,
}

impl ReadPool {
    pub fn new(stores: Vec<Box<dyn Store>>) -> ReadPool {
        assert!(
            !stores.is_empty(),
            "a read pool needs at least one connection"
        );
        ReadPool {
            stores: Mutex::new(stores),
            ready: Condvar::new(),
        }
    }

    /// Do the idle connections believe they are connected (no round trip)?
    pub fn healthy(&self) -> bool {
        self.stores
            .lock()
            .expect("pool lock")
            .iter()
            .all(|s| s.healthy())
    }

    /// Runs `f` on a connection on the calling thread (outside the async runtime: the
    /// service's shutdown).
    pub fn blocking<T>(&self, f: impl FnOnce(&mut dyn Store) -> T) -> T {
        let mut store = {
            let mut g = self.stores.lock().expect("pool lock");
            loop {
                if let Some(s) = g.pop() {
                    break s;
                }
                g = self.ready.wait(g).expect("pool wait");
            }
        };
        let out = f(store.as_mut());
        self.stores.lock().expect("pool lock").push(store);
        self.ready.notify_one();
        out
    }

    /// Runs `f`, which writes, on a connection on the blocking thread pool: the request
    /// being served has changed something on this node from now on (several nodes: the
    /// forwarding layer never re-runs it whole on another node, and an engine step for a
    /// partition another node holds is sent to that node, `cases::remote`).
    pub async fn write<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        crate::http::node::mark_effect();
        self.run(f).await
    }

    /// Runs `f` on a connection on the blocking thread pool.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = {
                let mut g = pool.stores.lock().expect("pool lock");
                loop {
                    if let Some(s) = g.pop() {
                        break s;
                    }
                    g = pool.ready.wait(g).expect("pool wait");
                }
            };
            let out = f(store.as_mut());
            pool.stores.lock().expect("pool lock").push(store);
            pool.ready.notify_one();
            out
        })
        .await
        .map_err(ApiError::internal)
    }
}

pub struct Inner {
    pub engine: EngineHandle,
    pub reads: Arc<ReadPool>,
    pub cfg: Config,
    pub clock: Arc<dyn Clock>,
    pub key: auth::TokenKey,
    /// How long a signed-in session lasts.
    pub session_ms: Millis,
    /// The one event bus: case events as the engine announces them, vital and alert
    /// events, sensing alarms, dataset imports (the live stream's source).
    pub bus: Arc<dyn bus::Bus>,
    idem_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Anonymous reports per peer address ([`ANONYMOUS_LIMIT`] per [`ANONYMOUS_WINDOW`]),
    /// shared by Open311's creates and `POST /api/v1/reports`.
    pub anonymous_reports: http::access::Window,
    /// Anonymous photo uploads per address ([`ANONYMOUS_MEDIA`] per [`ANONYMOUS_WINDOW`]).
    pub anonymous_media: http::access::Window,
    /// The api room's windows: failed sign-ins, anonymous lookups.
    pub api: api::ApiLimits,
    /// The sensor room: alarm states, reading counters, the ingest gate.
    pub sensor: sensing::SensorState,
    /// The vitals room: latest values and levels of the vital signs.
    pub vitals: vitals::Vitals,
    /// The scenarios room: the scenario packs, their state and versions.
    pub scenarios: scenarios::Registry,
    /// The smart room: the classifier that reads reports without a category.
    pub smart: smart::Smart,
    /// The life-circle room: facilities, walking times and coverage (built on first use).
    pub lifecircle: lifecircle::LifeCircle,
    /// The meals room (为老助餐): canteens, menus, elders, orders, ledgers.
    pub meals: meals::Meals,
    /// The evaluation room: the scoring scheme and the last periods' facts.
    pub evaluation: evaluation::Evaluation,
    /// The narrow ways rooms reach each other, wired by `runtime::wiring`.
    pub ports: ports::Ports,
    /// Request latencies for `/metrics`.
    pub http: metrics::HttpMetrics,
    /// Requests sent to the engine and not yet answered.
    pub engine_in_flight: std::sync::atomic::AtomicI64,
    /// Errors and last successes of the timers and tickers.
    pub loops: metrics::Loops,
    /// When set, `/metrics` asks for it as a Bearer token.
    pub metrics_token: std::sync::OnceLock<String>,
    /// When set, the maps draw this tile server's raster tiles under the regions (and
    /// the pages' CSP allows its origin for images).
    pub tiles: std::sync::OnceLock<ui::Tiles>,
    /// The hash-chained audit trail's writer (any room may record to it).
    pub audit: http::audit::AuditLog,
    /// The data room (sharing): grants and data quality.
    pub data: intake::data::DataState,
    /// The precision-assistance room (精准救助): the pool, its cases and the pool key.
    pub assistance: assistance::Assistance,
    /// Several nodes: this node's name and address (unset: one node owns everything).
    pub cluster: std::sync::OnceLock<http::node::ClusterInfo>,
    /// Several nodes on NATS: the readings work queue (`runtime::readings`).
    pub readings_queue: std::sync::OnceLock<Arc<dyn http::node::ReadingsQueue>>,
}

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Inner>);

impl AppState {
    pub fn new(
        engine: EngineHandle,
        reads: Vec<Box<dyn Store>>,
        cfg: Config,
        clock: Arc<dyn Clock>,
        key: auth::TokenKey,
    ) -> AppState {
        let bus = Arc::new(runtime::bus::InProcessBus::default());
        AppState::new_with_bus(engine, reads, cfg, clock, key, bus)
    }

    /// Like [`AppState::new`], on the bus `bus` (several nodes: NATS JetStream).
    pub fn new_with_bus(
        engine: EngineHandle,
        reads: Vec<Box<dyn Store>>,
        cfg: Config,
        clock: Arc<dyn Clock>,
        key: auth::TokenKey,
        bus: Arc<dyn bus::Bus>,
    ) -> AppState {
        let sensor = sensing::SensorState::new(&cfg, clock.now());
        let evaluation = evaluation::Evaluation::new(&cfg);
        let vitals = vitals::Vitals::new(&cfg);
        let scenarios = scenarios::Registry::new(&cfg, scenarios::embedded(&cfg), clock.now());
        AppState(Arc::new(Inner {
            engine,
            reads: Arc::new(ReadPool::new(reads)),
            cfg,
            clock,
            key,
            session_ms: 12 * cityos_core::time::HOUR,
            bus,
            idem_locks: Mutex::new(HashMap::new()),
            anonymous_reports: http::access::Window::new(ANONYMOUS_LIMIT, ANONYMOUS_WINDOW),
            anonymous_media: http::access::Window::new(ANONYMOUS_MEDIA, ANONYMOUS_WINDOW),
            api: api::ApiLimits::default(),
            sensor,
            vitals,
            scenarios,
            smart: smart::Smart::default(),
            lifecircle: lifecircle::LifeCircle::default(),
            meals: meals::Meals::new(),
            evaluation,
            ports: runtime::wiring::ports(),
            http: metrics::HttpMetrics::default(),
            engine_in_flight: std::sync::atomic::AtomicI64::new(0),
            loops: metrics::Loops::default(),
            metrics_token: std::sync::OnceLock::new(),
            tiles: std::sync::OnceLock::new(),
            audit: http::audit::AuditLog::default(),
            data: intake::data::DataState::default(),
            assistance: assistance::Assistance::default(),
            cluster: std::sync::OnceLock::new(),
            readings_queue: std::sync::OnceLock::new(),
        }))
    }

    pub fn now(&self) -> Millis {
        self.0.clock.now()
    }

    /// The lock serialising requests that carry the same idempotency key.
    pub(crate) fn idem_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.idem_locks.lock().expect("lock");
        if m.len() > 10_000 {
            m.retain(|_, l| Arc::strong_count(l) > 1);
        }
        m.entry(key.to_string()).or_default().clone()
    }
}
