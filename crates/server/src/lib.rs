//! cityos-server: the HTTP service of a City Operations Centre — JSON API under
//! `/api/v1`, RFC 9457 problems, accounts with roles and territorial scopes, idempotent
//! POSTs. `app(state)` builds the router; tests drive it in-process.
//!
//! Architecture Invariant: this is the only crate that speaks HTTP and JSON wire shapes;
//! it converts to and from core types and never writes a case itself — writes go to the
//! engine's run loop, reads to a pool of store connections (or the engine's cache).

#![recursion_limit = "512"]

pub mod access;
pub mod alerts;
pub mod api;
pub mod auth;
pub mod data;
pub mod devindex;
pub mod error;
pub mod listen;
pub mod log;
pub mod media;
pub mod metrics;
pub mod mqtt;
pub mod open311;
pub mod openapi;
pub mod sensing;
pub mod service;
pub mod ui;
pub mod vitals;
pub mod wire;

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::header;
use axum::Router;
use cityos_core::time::Millis;
use cityos_engine::config::Config;
use cityos_engine::runloop::EngineHandle;
use cityos_engine::Store;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};

/// Failed sign-ins of one account within [`LOGIN_WINDOW`] before it is locked.
pub const LOGIN_FAILURES: u32 = 5;
/// Failed sign-ins from one address (several people may share one) within the window.
pub const LOGIN_PEER_FAILURES: u32 = 20;
pub const LOGIN_WINDOW: Millis = 15 * cityos_core::time::MINUTE;
/// Anonymous case lookups (and reporter ratings) per address per minute.
pub const PUBLIC_LOOKUPS: u32 = 30;

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
    /// Committed case events, as the engine announces them (the live stream's source).
    pub events: tokio::sync::broadcast::Sender<Arc<cityos_engine::store::CaseEvent>>,
    idem_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Anonymous Open311 creates per peer address: (window start, count).
    open311_anonymous: Mutex<HashMap<String, (cityos_core::time::Millis, u32)>>,
    /// Failed sign-ins per account and per peer address (see `access`).
    pub login_accounts: access::Window,
    pub login_peers: access::Window,
    /// Anonymous lookups of cases by number per peer address.
    pub public_lookups: access::Window,
    /// Alarm states and reading counters of the sensing end.
    pub sensing: Mutex<sensing::SensingState>,
    /// Households with an open welfare-check case raised by the data rules.
    pub data_cases: Mutex<HashMap<String, cityos_core::case::CaseId>>,
    /// Latest values and levels of the vital signs.
    pub vitals: Mutex<vitals::VitalsState>,
    /// Request latencies for `/metrics`.
    pub http: metrics::HttpMetrics,
    /// Requests sent to the engine and not yet answered.
    pub engine_in_flight: std::sync::atomic::AtomicI64,
    /// One readings batch is applied at a time (back-pressure for floods).
    pub ingest_gate: Arc<tokio::sync::Semaphore>,
    /// HTTP reading batches waiting for the gate (bounded: see `sensing::MAX_WAITING`).
    pub ingest_waiting: std::sync::atomic::AtomicUsize,
    /// Reading batches turned away because the gate stayed shut.
    pub ingest_busy: std::sync::atomic::AtomicU64,
    /// Alerts, level changes and CAP messages, live (not resumable: not case events).
    pub vital_events: tokio::sync::broadcast::Sender<Arc<vitals::VitalEvent>>,
    /// Errors and last successes of the timers and tickers.
    pub loops: metrics::Loops,
    /// External indicator values refused as outside their range.
    pub indicator_refused: std::sync::atomic::AtomicU64,
    /// When set, `/metrics` asks for it as a Bearer token.
    pub metrics_token: std::sync::OnceLock<String>,
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
        let sensing = Mutex::new(sensing::SensingState::new(&cfg, clock.now()));
        let vitals = Mutex::new(vitals::VitalsState::new(&cfg));
        AppState(Arc::new(Inner {
            engine,
            reads: Arc::new(ReadPool::new(reads)),
            cfg,
            clock,
            key,
            session_ms: 12 * cityos_core::time::HOUR,
            events: tokio::sync::broadcast::channel(4096).0,
            idem_locks: Mutex::new(HashMap::new()),
            open311_anonymous: Mutex::new(HashMap::new()),
            login_accounts: access::Window::new(LOGIN_FAILURES, LOGIN_WINDOW),
            login_peers: access::Window::new(LOGIN_PEER_FAILURES, LOGIN_WINDOW),
            public_lookups: access::Window::new(PUBLIC_LOOKUPS, cityos_core::time::MINUTE),
            sensing,
            data_cases: Mutex::new(HashMap::new()),
            vitals,
            http: metrics::HttpMetrics::default(),
            engine_in_flight: std::sync::atomic::AtomicI64::new(0),
            ingest_gate: Arc::new(tokio::sync::Semaphore::new(1)),
            ingest_waiting: std::sync::atomic::AtomicUsize::new(0),
            ingest_busy: std::sync::atomic::AtomicU64::new(0),
            vital_events: tokio::sync::broadcast::channel(1024).0,
            loops: metrics::Loops::default(),
            indicator_refused: std::sync::atomic::AtomicU64::new(0),
            metrics_token: std::sync::OnceLock::new(),
        }))
    }

    pub fn now(&self) -> Millis {
        self.0.clock.now()
    }

    /// The lock serialising requests that carry the same idempotency key.
    fn idem_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self.0.idem_locks.lock().expect("lock");
        if m.len() > 10_000 {
            m.retain(|_, l| Arc::strong_count(l) > 1);
        }
        m.entry(key.to_string()).or_default().clone()
    }
}

/// A JSON body parsed by us, so bad input gets our problem format; keeps the raw bytes
/// (for idempotency fingerprints).
pub struct Body<T> {
    pub value: T,
    pub raw: Bytes,
}

/// The query string as `T`; a query that does not fit is a problem+json 400 that names
/// the parameter (instead of axum's plain-text rejection).
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or(""))
            .map(Q)
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_parameter",
                    format!("the query string does not fit: {e}"),
                )
            })
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if !ct.starts_with("application/json") {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!("send JSON with `Content-Type: application/json` (got {ct:?})"),
            ));
        }
        let raw = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body is larger than {BODY_LIMIT} bytes"),
                )
            } else {
                ApiError::bad_request("unreadable_body", e.body_text())
            }
        })?;
        let value: T = serde_json::from_slice(&raw).map_err(|e| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => ApiError::bad_request(
                    "invalid_json",
                    format!("the body is not valid JSON: {e}"),
                ),
                Category::Data => {
                    ApiError::unprocessable("invalid_body", format!("the body does not fit: {e}"))
                }
            }
        })?;
        refuse_control_characters(&raw)?;
        Ok(Body { value, raw })
    }
}

/// Refuses a body whose strings (or keys) hold a control character other than a line
/// break or tab: a NUL cannot be stored in PostgreSQL text, and none of them belongs in a
/// report. Only bodies that may hold one (an escape, or a raw DEL or C1 control) are
/// parsed again; the problem names the field.
fn refuse_control_characters(raw: &[u8]) -> Result<(), ApiError> {
    // Escapes (`\u0000`, `\b`, `\f`), or DEL and C1 controls, which JSON allows raw.
    let suspect = raw.contains(&0x7f)
        || raw.windows(2).any(|w| {
            (w[0] == b'\\' && matches!(w[1], b'u' | b'b' | b'f'))
                || (w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1]))
        });
    if !suspect {
        return Ok(());
    }
    fn bad(s: &str) -> Option<char> {
        s.chars()
            .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<(String, char)> {
        match v {
            serde_json::Value::String(s) => bad(s).map(|c| (path.to_string(), c)),
            serde_json::Value::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(m) => m.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match bad(k) {
                    Some(c) => Some((p, c)),
                    None => walk(x, &p),
                }
            }),
            _ => None,
        }
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw) else {
        return Ok(());
    };
    match walk(&v, "") {
        None => Ok(()),
        Some((field, c)) => Err(ApiError::bad_request(
            "control_character",
            format!(
                "{} contains the control character U+{:04X}; only line breaks and tabs are allowed in text",
                if field.is_empty() { "the body".to_string() } else { format!("field `{field}`") },
                c as u32
            ),
        )),
    }
}

/// The API router: one route per entry of [`openapi::ENDPOINTS`].
pub fn app(state: AppState) -> Router {
    let mut r = Router::new();
    for e in openapi::ENDPOINTS {
        r = r.route(e.path, openapi::handler(e.id));
    }
    r.merge(open311::routes())
        .route("/metrics", axum::routing::get(metrics::metrics))
        .route("/", axum::routing::get(ui::root))
        .route("/ui/{file}", axum::routing::get(ui::file))
        .route(
            "/favicon.ico",
            axum::routing::get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .fallback(api::not_found)
        // After the fallback, so that requests matching no route count (as `unmatched`).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            access::machine_guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(guard_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            log_refusals,
        ))
        .layer(axum::middleware::from_fn(access::csrf_guard))
        .layer(axum::middleware::from_fn(access::security_headers))
        .layer(axum::middleware::from_fn(open311::cors))
        .with_state(state)
}

/// The largest body a path accepts: photos, readings and datasets have their own limits,
/// Open311 takes photos; everything else [`BODY_LIMIT`].
pub fn body_limit(path: &str) -> usize {
    if path == "/api/v1/media" || path.starts_with("/open311/") {
        media::MEDIA_LIMIT
    } else if path == "/api/v1/readings" {
        sensing::READINGS_LIMIT
    } else if path.starts_with("/api/v1/datasets/") {
        data::DATASET_LIMIT
    } else {
        BODY_LIMIT
    }
}

/// Answers 413 at once when the declared `Content-Length` exceeds the path's limit, before
/// reading a byte of the body (a client announcing 2^62 bytes gets its answer now).
async fn guard_body(req: Request, next: axum::middleware::Next) -> axum::response::Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let limit = body_limit(req.uri().path());
    if declared.is_some_and(|n| n > limit as u64) {
        use axum::response::IntoResponse;
        return ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body may be at most {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}

/// Logs every refused request (401, 403, 404 on a known endpoint, 409, 422) with its caller.
async fn log_refusals(
    axum::extract::State(st): axum::extract::State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let caller = auth::principal_from(req.headers(), &st.0.key, st.now())
        .ok()
        .flatten()
        .map_or_else(
            || "anonymous".to_string(),
            |p| format!("{}({})", p.name, p.role),
        );
    let resp = next.run(req).await;
    let status = resp.status();
    if matches!(status.as_u16(), 401 | 403 | 404 | 409 | 422) {
        log::event(
            "refused",
            &[
                ("status", &status.as_u16()),
                ("method", &method),
                ("path", &path),
                ("caller", &caller),
            ],
        );
    }
    resp
}
