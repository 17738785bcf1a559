//! A service on a fresh SQLite directory (or PostgreSQL schema) with a hand-set clock,
//! and a small client that drives the router in-process.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use cityos_core::time::{local, Date, Millis};
use cityos_engine::config::Config;
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{seed_demo_accounts, Database, Service, DEMO_PASSWORD};
use cityos_server::{app, ManualClock};
use http_body_util::BodyExt;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tower::ServiceExt;

static N: AtomicUsize = AtomicUsize::new(0);

pub fn config() -> Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(Config::xuhui).clone()
}

/// Wednesday 2026-11-25 10:00 Beijing time.
pub fn t0() -> Millis {
    local(Date::new(2026, 11, 25).unwrap(), 10, 0)
}

pub struct TestApp {
    pub svc: Option<Service>,
    pub clock: Arc<ManualClock>,
    pub db: Database,
    dir: Option<PathBuf>,
    key: TokenKey,
    /// A configuration other than the embedded demo's (see [`TestApp::reconfigure`]).
    cfg: Option<Config>,
}

impl TestApp {
    pub fn sqlite() -> TestApp {
        let dir = std::env::temp_dir().join(format!(
            "cityos-server-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let mut t = TestApp {
            svc: None,
            clock: Arc::new(ManualClock::new(t0())),
            db: Database::Sqlite(dir.clone()),
            dir: Some(dir),
            key: TokenKey::new([7; 32]),
            cfg: None,
        };
        t.start();
        t
    }

    /// A fresh PostgreSQL schema, or `None` (skip) when no database URL is set — unless
    /// `CITYOS_REQUIRE_SERVICES=1`, which makes a missing database a failure.
    pub fn postgres() -> Option<TestApp> {
        Self::postgres_with("")
    }

    /// Like [`TestApp::postgres`], with extra URL parameters (`application_name=…`).
    pub fn postgres_with(params: &str) -> Option<TestApp> {
        let url = match std::env::var("CITYOS_TEST_POSTGRES_URL") {
            Ok(u) if !u.is_empty() => u,
            _ => {
                assert!(
                    std::env::var("CITYOS_REQUIRE_SERVICES").as_deref() != Ok("1"),
                    "CITYOS_TEST_POSTGRES_URL is required"
                );
                eprintln!("skipping PostgreSQL API story: CITYOS_TEST_POSTGRES_URL is not set");
                return None;
            }
        };
        let schema = format!(
            "api{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let (u2, s2) = (url.clone(), schema.clone());
        std::thread::spawn(move || cityos_engine::PostgresStore::drop_schema(&u2, &s2))
            .join()
            .unwrap()
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let mut t = TestApp {
            svc: None,
            clock: Arc::new(ManualClock::new(t0())),
            db: Database::Postgres(if params.is_empty() {
                format!("{url}{sep}schema={schema}")
            } else {
                format!("{url}{sep}schema={schema}&{params}")
            }),
            dir: None,
            key: TokenKey::new([7; 32]),
            cfg: None,
        };
        t.start();
        Some(t)
    }

    /// Starts the service on a plain thread: the synchronous PostgreSQL client may not
    /// block inside the test's async runtime.
    pub fn start(&mut self) {
        let (db, key) = (self.db.clone(), self.key.clone());
        let clock: Arc<dyn cityos_server::Clock> = self.clock.clone();
        let cfg = self.cfg.clone().unwrap_or_else(config);
        let svc = std::thread::spawn(move || Service::start(cfg, &db, clock, key, 2).unwrap())
            .join()
            .unwrap();
        // 精准救助's pool key (a deployment secret; `serve --assistance-key-file`).
        svc.state
            .0
            .assistance
            .set_key(cityos_core::assistance::IdKey::new(&[9u8; 32]).expect("a 32-byte key"));
        self.svc = Some(svc);
    }

    /// Runs on `cfg` from now on (restarted on the same store).
    pub fn reconfigure(&mut self, cfg: Config) {
        self.cfg = Some(cfg);
        self.restart();
    }

    pub fn restart(&mut self) {
        let svc = self.svc.take().unwrap();
        std::thread::spawn(move || svc.stop()).join().unwrap();
        self.start();
    }

    pub async fn seed(&self) {
        let now = self.clock.0.load(Ordering::SeqCst);
        self.svc
            .as_ref()
            .unwrap()
            .state
            .0
            .reads
            .run(move |s| seed_demo_accounts(s, now))
            .await
            .unwrap()
            .unwrap();
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Value, HeaderMap) {
        let mut b = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string()))
                .unwrap(),
            None => b.body(Body::empty()).unwrap(),
        };
        let router = app(self.svc.as_ref().unwrap().state.clone());
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let v = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, v, headers)
    }

    /// A request with a raw body and content type, as if from `peer`; the body comes back
    /// as text.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
        peer: Option<std::net::SocketAddr>,
    ) -> (StatusCode, String, HeaderMap) {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("host", "cityos.test")
            .body(Body::from(body.to_string()))
            .unwrap();
        if let Some(p) = peer {
            req.extensions_mut().insert(axum::extract::ConnectInfo(p));
        }
        let router = app(self.svc.as_ref().unwrap().state.clone());
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        )
    }

    /// Like [`TestApp::raw`], with extra headers.
    pub async fn raw_with(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, String, HeaderMap) {
        self.raw_from(method, path, content_type, body, headers, None)
            .await
    }

    /// Like [`TestApp::raw_with`], as if from `peer`.
    pub async fn raw_from(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: &str,
        headers: &[(&str, &str)],
        peer: Option<std::net::SocketAddr>,
    ) -> (StatusCode, String, HeaderMap) {
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .header("host", "cityos.test");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b.body(Body::from(body.to_string())).unwrap();
        if let Some(p) = peer {
            req.extensions_mut().insert(axum::extract::ConnectInfo(p));
        }
        let router = app(self.svc.as_ref().unwrap().state.clone());
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8_lossy(&bytes).into_owned(),
            headers,
        )
    }

    /// A token signed with the service's key (machine tokens, forged variants).
    pub fn sign(&self, p: &cityos_server::http::auth::Principal) -> String {
        self.key.sign(p)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, token, None, &[]).await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, token, Some(body), &[]).await;
        (s, v)
    }

    pub async fn login(&self, user: &str) -> String {
        let (s, v) = self
            .post(
                "/api/v1/auth/login",
                None,
                serde_json::json!({"username": user, "password": DEMO_PASSWORD}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["token"].as_str().unwrap().to_string()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.svc.take() {
            let _ = std::thread::spawn(move || s.stop()).join();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
        if let Database::Postgres(url) = &self.db {
            let (url, schema) = cityos_engine::split_schema(url);
            if let Some(schema) = schema {
                let _ = std::thread::spawn(move || {
                    cityos_engine::PostgresStore::drop_schema(&url, &schema)
                })
                .join();
            }
        }
    }
}

/// A point inside the n-th grid of a sub-district.
pub fn spot(sub: &str, n: usize) -> [f64; 2] {
    let c = config();
    let t = &c.territory;
    let s = t.by_code(sub).unwrap();
    let g = t
        .regions()
        .filter(|(id, r)| r.level == cityos_core::Level::Grid && t.is_within(*id, s))
        .nth(n)
        .unwrap()
        .0;
    t.interior_point(g)
}

/// Defines `<name>::sqlite` and `<name>::postgres` tests running the same async story.
#[macro_export]
macro_rules! api_story {
    ($name:ident) => {
        pub mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::TestApp::sqlite()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(t) = $crate::support::TestApp::postgres() {
                    super::$name(t).await;
                }
            }
        }
    };
}

/// A value of a Prometheus series (first line that starts with `series `).
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

pub async fn metrics_text(t: &TestApp) -> String {
    let (s, v, _) = t.call(Method::GET, "/metrics", None, None, &[]).await;
    assert_eq!(s, StatusCode::OK);
    v.as_str().unwrap().to_string()
}

/// The lone-elder pack's hits so far (after a scenario tick), oldest first.
pub async fn elder_hits(state: &cityos_server::AppState) -> Vec<serde_json::Value> {
    cityos_server::scenarios::runtime::tick(state)
        .await
        .unwrap();
    let mut v =
        cityos_server::scenarios::runtime::hits(state, Some("lone_elder_water"), None, true, 500);
    v.reverse();
    v.retain(|h| h["kind"] == "hit");
    v
}
