//! `cityos serve` and the serving part of `cityos demo`: configuration (file < env <
//! flags), the token key in the data directory, the HTTP listener (`cityos_server::http::listen`:
//! read timeouts, a connection limit), graceful shutdown on
//! Ctrl-C or SIGTERM (the engine finishes and commits what it has queued).

use cityos_engine::demo::Config;
use cityos_server::http::auth::TokenKey;
use cityos_server::runtime::service::{
    demo_accounts, seed_demo_accounts, Database, Service, DEMO_PASSWORD,
};
use cityos_server::{app, Clock, SystemClock};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Flags of `cityos serve`; each can also come from the environment or the config file.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// A TOML file with any of: addr, data, database_url, log_format, mqtt_url, devices,
    /// alarm_rules, indicators, vital_rules, metrics_token.
    #[arg(long, env = "CITYOS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CITYOS_ADDR")]
    addr: Option<String>,
    /// Data directory: the SQLite database and the token key [default: cityos-data].
    #[arg(long, env = "CITYOS_DATA")]
    data: Option<PathBuf>,
    /// postgres://… to use PostgreSQL instead of SQLite in the data directory.
    #[arg(long, env = "CITYOS_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "CITYOS_LOG_FORMAT")]
    log_format: Option<String>,
    /// mqtt://host:port of a broker: sensor readings arrive on cityos/readings/{device}.
    #[arg(long, env = "CITYOS_MQTT_URL")]
    mqtt_url: Option<String>,
    /// The device registry (CSV: id,kind,lon,lat,owner,tags) instead of the demo's.
    #[arg(long, env = "CITYOS_DEVICES")]
    devices: Option<PathBuf>,
    /// The sensing end's alarm rules (TOML) instead of the demo's.
    #[arg(long, env = "CITYOS_ALARM_RULES")]
    alarm_rules: Option<PathBuf>,
    /// The vital-sign indicators (TOML) instead of the demo's.
    #[arg(long, env = "CITYOS_INDICATORS")]
    indicators: Option<PathBuf>,
    /// Alert rules over the vital signs (TOML) instead of the demo's.
    #[arg(long, env = "CITYOS_VITAL_RULES")]
    vital_rules: Option<PathBuf>,
    /// When set, GET /metrics asks for it: `Authorization: Bearer <token>` [default: open].
    #[arg(long, env = "CITYOS_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<String>,
    data: Option<PathBuf>,
    database_url: Option<String>,
    log_format: Option<String>,
    mqtt_url: Option<String>,
    devices: Option<PathBuf>,
    alarm_rules: Option<PathBuf>,
    indicators: Option<PathBuf>,
    vital_rules: Option<PathBuf>,
    metrics_token: Option<String>,
}

/// Resolved settings.
pub struct Settings {
    pub addr: String,
    pub data: PathBuf,
    pub database_url: Option<String>,
    pub log_format: String,
    pub mqtt_url: Option<String>,
    /// Device registry and alarm rules files (the embedded demo ones when absent).
    pub devices: Option<PathBuf>,
    pub alarm_rules: Option<PathBuf>,
    /// Vital-sign indicators and their alert rules (the embedded demo ones when absent).
    pub indicators: Option<PathBuf>,
    pub vital_rules: Option<PathBuf>,
    /// The Bearer token `/metrics` asks for (open when absent).
    pub metrics_token: Option<String>,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("addr", &self.addr)
            .field("data", &self.data)
            .field(
                "database_url",
                &self.database_url.as_ref().map(|_| "<redacted>"),
            )
            .field("log_format", &self.log_format)
            .field("mqtt_url", &self.mqtt_url)
            .field("devices", &self.devices)
            .field("alarm_rules", &self.alarm_rules)
            .field("indicators", &self.indicators)
            .field("vital_rules", &self.vital_rules)
            .field(
                "metrics_token",
                &self.metrics_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl ServeArgs {
    pub fn resolve(self) -> Result<Settings, String> {
        let file = match &self.config {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let log_format = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        if !matches!(log_format.as_str(), "text" | "json") {
            return Err(format!(
                "log format must be text or json, not {log_format:?}"
            ));
        }
        Ok(Settings {
            addr: self
                .addr
                .or(file.addr)
                .unwrap_or_else(|| "127.0.0.1:8080".into()),
            data: self
                .data
                .or(file.data)
                .unwrap_or_else(|| PathBuf::from("cityos-data")),
            database_url: self.database_url.or(file.database_url),
            log_format,
            mqtt_url: match self.mqtt_url.or(file.mqtt_url) {
                Some(u) => {
                    cityos_server::intake::sensor::mqtt::parse_url(&u)?;
                    Some(u)
                }
                None => None,
            },
            devices: self.devices.or(file.devices),
            alarm_rules: self.alarm_rules.or(file.alarm_rules),
            indicators: self.indicators.or(file.indicators),
            vital_rules: self.vital_rules.or(file.vital_rules),
            metrics_token: self
                .metrics_token
                .or(file.metrics_token)
                .filter(|t| !t.trim().is_empty()),
        })
    }
}

pub struct DemoOptions {
    pub live: bool,
    pub seed: u64,
}

/// The token key: `CITYOS_TOKEN_KEY` (hex), else `token.key` in the data directory,
/// created on first start.
pub fn token_key(data: &Path) -> Result<TokenKey, String> {
    if let Ok(k) = std::env::var("CITYOS_TOKEN_KEY") {
        return TokenKey::from_hex(&k)
            .ok_or_else(|| "CITYOS_TOKEN_KEY must be 64 hex digits".to_string());
    }
    let path = data.join("token.key");
    match std::fs::read_to_string(&path) {
        Ok(s) => TokenKey::from_hex(&s)
            .ok_or_else(|| format!("{} is not a token key (64 hex digits)", path.display())),
        Err(_) => {
            std::fs::create_dir_all(data).map_err(|e| format!("{}: {e}", data.display()))?;
            let k = TokenKey::random();
            std::fs::write(&path, k.to_hex()).map_err(|e| format!("{}: {e}", path.display()))?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
            }
            Ok(k)
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

pub fn run(s: Settings, demo: Option<DemoOptions>) -> Result<(), String> {
    cityos_server::http::log::set_format(s.log_format == "json");
    let cfg = if s.devices.is_some()
        || s.alarm_rules.is_some()
        || s.indicators.is_some()
        || s.vital_rules.is_some()
    {
        let read = |p: &Option<PathBuf>, embedded: &'static str| -> Result<String, String> {
            match p {
                Some(p) => std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display())),
                None => Ok(embedded.to_string()),
            }
        };
        use cityos_engine::demo as d;
        let (rules, devices, indicators, vital_rules) = (
            read(&s.alarm_rules, d::SENSING_TOML)?,
            read(&s.devices, d::DEVICES_CSV)?,
            read(&s.indicators, d::INDICATORS_TOML)?,
            read(&s.vital_rules, d::ALERT_RULES_TOML)?,
        );
        Config::from_texts(d::TERRITORY_GEOJSON, d::TAXONOMY_TOML, d::CALENDAR_CSV)
            .and_then(|c| c.with_sensing(&rules, &devices))
            .and_then(|c| c.with_indicators(&indicators))
            .and_then(|c| c.with_alert_rules(&vital_rules))
            .map_err(|e| format!("configuration: {e}"))?
    } else {
        Config::xuhui()
    };
    let key = token_key(&s.data)?;
    let db = Database::from_url_or_dir(s.database_url.as_deref(), &s.data);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let svc = Service::start(cfg.clone(), &db, clock.clone(), key, 4)
        .map_err(|e| format!("cannot open the database: {e}"))?;
    if let Some(t) = &s.metrics_token {
        let _ = svc.state.0.metrics_token.set(t.clone());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let stop_live = Arc::new(AtomicBool::new(false));
    let mut live = None;
    let result = rt.block_on(async {
        if let Some(d) = &demo {
            let now = clock.now();
            svc.state.0.reads.run(move |st| seed_demo_accounts(st, now)).await.map_err(|e| e.detail)?.map_err(|e| e.to_string())?;
            // The water meters' recent history, then the data end's demo dataset: the
            // lone-elder rule joins them at import and raises its welfare check at once.
            cityos_server::runtime::demo::backfill_meters(&svc.state, 13, d.seed).await.map_err(|e| e.detail)?;
            cityos_server::intake::data::store_dataset(&svc.state, cityos_server::intake::data::LONE_ELDER_DATASET, "dist-civil-affairs", "sensitive", cityos_engine::demo::LONE_ELDER_CSV.as_bytes(), false).await.map_err(|e| e.detail)?;
            if d.live {
                live = Some(crate::live::start(svc.handle().clone(), cfg.clone(), clock.clone(), stop_live.clone(), d.seed));
                // The demo's sensors report every 10 seconds over the embedded path.
                tokio::spawn(cityos_server::runtime::demo::simulate_devices(svc.state.clone(), d.seed, std::time::Duration::from_secs(10), stop_live.clone(), s.mqtt_url.clone()));
                // External feeds (rain, river, crowds, power…), with an episode every 15 minutes.
                tokio::spawn(cityos_server::runtime::demo::simulate_feeds(svc.state.clone(), d.seed, std::time::Duration::from_secs(10), stop_live.clone()));
            }
        }
        if let Some(url) = s.mqtt_url.clone() {
            println!("sensor readings over MQTT: {url} topic cityos/readings/{{device}}");
            let (st, stop) = (svc.state.clone(), stop_live.clone());
            tokio::spawn(async move {
                if let Err(e) = cityos_server::intake::sensor::mqtt::run(st, url, "cityos".into(), stop).await {
                    eprintln!("MQTT bridge stopped: {e}");
                }
            });
        }
        tokio::spawn(cityos_server::runtime::tickers::sensing(svc.state.clone(), std::time::Duration::from_secs(30), stop_live.clone()));
        // Vital signs: case statistics, alert rules, rollups to the store.
        tokio::spawn(cityos_server::runtime::tickers::alerts(svc.state.clone(), std::time::Duration::from_secs(5), stop_live.clone()));
        let listener = tokio::net::TcpListener::bind(&s.addr).await.map_err(|e| format!("cannot listen on {}: {e}", s.addr))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("cityos listening on http://{local}  (API: http://{local}/api/v1, health: http://{local}/healthz)");
        if demo.is_some() {
            println!("demo accounts (password {DEMO_PASSWORD:?}):");
            for (user, name, role, dept, scope) in demo_accounts() {
                let extra = dept.or(scope).map(|x| format!(" [{x}]")).unwrap_or_default();
                println!("  {user:<16} {role:<20} {name}{extra}");
            }
            println!("citizens (Open311 GeoReport v2): http://{local}/open311/v2/services.json");
            println!("public warnings (CAP 1.2 Atom feed): http://{local}/cap/feed.atom");
            println!("try: curl -s -X POST http://{local}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"username\":\"zhang.district\",\"password\":\"{DEMO_PASSWORD}\"}}'");
        }
        if demo.as_ref().is_some_and(|d| d.live) {
            // The citizens' and inspectors' ends, over HTTP to this very listener.
            let seed = demo.as_ref().map_or(0, |d| d.seed);
            tokio::spawn(crate::live_ends::run(svc.state.clone(), local.to_string(), cfg.clone(), seed, std::time::Duration::from_secs(15), stop_live.clone()));
        }
        println!("Ctrl-C stops the server; queued work is committed first.");
        // Header and body read timeouts, a connection limit; the peer address reaches
        // handlers (Open311's anonymous rate limit).
        cityos_server::http::listen::serve(listener, app(svc.state.clone()), cityos_server::http::listen::Limits::default(), shutdown_signal())
            .await
            .map_err(|e| e.to_string())
    });
    stop_live.store(true, Ordering::SeqCst);
    if let Some(t) = live {
        let _ = t.join();
    }
    svc.stop();
    println!("cityos stopped");
    result
}
